/*
 * runtime_fixture.h - the rig shared by the runtime's unit tests
 * (test_runtime.c: processes, logs, monitors; test_runtime_cgroup.c:
 * cgroups, limits, OOM, the cgroup pool): a temporary directory per test
 * program, removed at exit, and a task spec with a fixed environment.
 * Functions are static inline: each test file is its own program and uses
 * only some of them.
 */
#ifndef PAI_TESTS_RUNTIME_FIXTURE_H
#define PAI_TESTS_RUNTIME_FIXTURE_H

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "runtime/runtime.h"
#include "test.h"
#include "tmpbase.h"

static inline void setup_dirs(const char *name, char *dir, size_t n)
{
    snprintf(dir, n, "%s/%s", base, name);
    mkdir(dir, 0755);
}

__attribute__((unused)) static char *env_base[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                                   "FOO=bar baz", NULL};

/* "<dir>/": the log prefix (rt_spec_t.log_prefix) of logs kept in dir (a
 * few may be alive at once). */
static inline const char *in_dir(const char *dir)
{
    static char ring[8][1100];
    static int k;
    char *p = ring[k++ % 8];
    snprintf(p, sizeof(ring[0]), "%s/", dir);
    return p;
}

static inline void spec_init(rt_spec_t *s, const char *dir, const char *cmd)
{
    memset(s, 0, sizeof(*s));
    s->attempt_id = "u~j/0/r/0/0";
    s->name = "u~j+0+r+0+0";
    s->command = cmd;
    s->env = env_base;
    s->state_dir = dir;
    s->cwd = dir;
    s->log_prefix = in_dir(dir);
    s->log_max_bytes = 1 << 20;
}

/* Wait (bounded) for the attempt to end. */
static inline bool wait_done(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res, int secs)
{
    for (int i = 0; i < secs * 50; i++) {
        if (ops->poll(ops, t, res))
            return true;
        struct pollfd p = {rt_notify_fd(t), POLLIN, 0};
        poll(&p, p.fd >= 0 ? 1 : 0, 20);
    }
    return false;
}

static inline char *slurp(const char *dir, const char *kind)
{
    size_t len;
    char *s = rt_log_tail(in_dir(dir), kind, 1 << 20, &len);
    return s ? s : xstrdup("");
}

__attribute__((constructor)) static void init(void)
{
    tmpbase_make("/tmp/pai-test-runtime-XXXXXX");
}

#endif
