/* agent_fixture.h - the agent's unit tests' nodes: a hollow node's config,
 * one on the process runtime in a fresh work dir, small file helpers. */
#ifndef PAI_TEST_AGENT_FIXTURE_H
#define PAI_TEST_AGENT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "test.h"

static inline agent_cfg_t hollow_cfg(void)
{
    agent_cfg_t c;
    memset(&c, 0, sizeof(c));
    c.server = "http://127.0.0.1:1";
    c.token = "t";
    c.address = "127.0.0.1";
    c.work_dir = "/nonexistent";
    c.hollow = true;
    c.nodes = 1;
    c.gpus = 8;
    c.gpu_model = "A100";
    c.wait_ms = 25000;
    return c;
}

/* hollow_cfg's node on the process runtime, working in a fresh directory:
 * work is a mkdtemp(3) template, made into its name; remove_work_dir(work)
 * at the end. */
static inline agent_cfg_t work_dir_cfg(char *work)
{
    CHECK(mkdtemp(work) != NULL);
    agent_cfg_t c = hollow_cfg();
    c.hollow = false;
    c.work_dir = work;
    return c;
}

static inline void remove_work_dir(const char *work)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
    CHECK(system(cmd) == 0);
}

static inline void put_file(const char *dir, const char *name, const char *text)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "we");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

#endif
