/*
 * env_fixture.h - the job whose tasks' environments test_env.c and
 * test_agentwire_v5.c compare: two roles (role1 x1, role2 x2) with three
 * port labels each and GPUs, all placed.  Static: each test file is its
 * own program.
 */
#ifndef PAI_TESTS_ENV_FIXTURE_H
#define PAI_TESTS_ENV_FIXTURE_H

#include "common/util.h"
#include "engine/lifecycle.h"

static void add_role(lc_job_t *j, int r, const char *name, int instances, int gpu)
{
    lc_role_t *role = &j->roles[r];
    role->name = xstrdup(name);
    role->instances = instances;
    role->gpu = gpu;
    role->cpu = 2 + r;
    role->mem_mb = 1024;
    role->shm_mb = 64;
    role->min_failed = 1;
    role->min_succeeded = -1;
    role->nports = 3;
    role->ports = xcalloc(3, sizeof(lc_port_spec_t));
    static const char *const labels[] = {"ssh", "http", "tb"};
    for (int p = 0; p < 3; p++) {
        role->ports[p].label = xstrdup(labels[p]);
        role->ports[p].count = p + 1 - (p == 2 && r == 1) * 3; /* tb: 3, then 0 */
    }
    role->command = xstrdup("true");
    j->total_tasks += (uint32_t)instances;
}

/* The job: role1 x1 (no GPU), role2 x2 (3 GPUs each), all placed. */
static lc_job_t *job_of(const char *role1, const char *role2)
{
    lc_job_t *j = xcalloc(1, sizeof(*j));
    j->name = xstrdup("carol~env1");
    j->user_len = 5;
    j->vc = xstrdup("vcA");
    j->nroles = 2;
    j->roles = xcalloc(2, sizeof(lc_role_t));
    add_role(j, 0, role1, 1, 0);
    add_role(j, 1, role2, 2, 3);
    int p0[] = {30000, 30001, 30002, 30003, 30004, 30005}, p1[] = {31000, 31001, 31002},
        p2[] = {32000, 32001, 32002};
    lc_place_t ps[1] = {{"n1", "10.0.0.1", 0, p0, 6, NULL}};
    lc_place_t wk[2] = {{"n2", "10.0.0.2", 0x25, p1, 3, NULL},
                        {"n3", "10.0.0.3", 0x80000001ull, p2, 2, NULL}};
    const lc_place_t *rows[2] = {ps, wk};
    lc_effects_t fx = {0};
    lc_attempt_begin(j, rows, 1000, &fx);
    return j;
}

#endif
