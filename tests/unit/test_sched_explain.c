/* test_sched_explain.c - sched_explain(): why a waiting job waits, read only. */
#include <stdlib.h>

#include "sched/sched.h"
#include "test.h"

static pai_err_t submit1(sched_t *s, const char *id, const char *vc, int tasks, int gpus, int cpus)
{
    sched_role_t r = {.name = "worker", .instances = tasks, .gpus = gpus, .cpus = cpus};
    sched_request_t q = {
        .job_id = id, .vc = vc, .priority = 10, .gang = true, .roles = &r, .n_roles = 1};
    return sched_submit(s, &q, NULL, 0);
}

static size_t binds(sched_t *s, int64_t now, const char *job)
{
    const sched_decision_t *d;
    size_t n, hits = 0;
    if (sched_schedule(s, now, &d, &n) != PAI_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        hits += d[i].kind == SCHED_BIND && strcmp(d[i].job_id, job) == 0;
    return hits;
}

TEST(explains_quiet_waits_and_changes_nothing)
{
    sched_t *s = NULL;
    const char *names[] = {"a", "b"};
    int nodes[] = {1, 1};
    sched_opts_t o = {.quiet_waits = true};
    CHECK(sched_new_uniform(2, 8, 0, names, nodes, 2, &o, &s, NULL, 0) == PAI_OK);
    CHECK(submit1(s, "run", "a", 1, 8, 0) == PAI_OK);
    CHECK_INT_EQ(binds(s, 0, "run"), 1);
    CHECK(submit1(s, "w", "a", 1, 4, 0) == PAI_OK);
    CHECK_INT_EQ(binds(s, 1, "w"), 0);
    char buf[SCHED_EXPLAIN_MAX];
    for (int i = 0; i < 50; i++) /* asking is read only */
        CHECK(sched_explain(s, "w", buf, sizeof(buf)) == PAI_OK);
    CHECK_STR_CONTAINS(buf, "VC a: 0 of 8 guaranteed GPU free, job needs 1 task x 4 GPU");
    CHECK_STR_CONTAINS(buf, "0 of 1 task x 4 GPU fit");
    sched_summary_t sum;
    sched_summary(s, &sum);
    CHECK_INT_EQ(sum.used_gpus, 8);
    CHECK_INT_EQ(sum.waiting_jobs, 1);
    CHECK(sched_explain(s, "run", buf, sizeof(buf)) == PAI_OK);
    CHECK_STR_EQ(buf, "bound (not waiting)");
    CHECK(sched_explain(s, "nope", buf, sizeof(buf)) == PAI_E_NO_JOB);
    char tiny[8];
    CHECK(sched_explain(s, "w", tiny, sizeof(tiny)) == PAI_OK);
    CHECK_INT_EQ((int)strlen(tiny), 7); /* truncated, terminated */
    CHECK(sched_release(s, "run") == PAI_OK);
    CHECK_INT_EQ(binds(s, 2, "w"), 1);
    sched_free(s);
}

static const char cfg[] = "physicalCluster:\n"
                          "  skuTypes: {K80: {gpu: 1, cpu: 4, memory: 8192Mi}}\n"
                          "  cellTypes:\n"
                          "    K80-NODE: {childCellType: K80, childCellNumber: 4, "
                          "isNodeLevel: true}\n"
                          "    POOL: {childCellType: K80-NODE, childCellNumber: 2}\n"
                          "  physicalCells:\n"
                          "  - cellType: POOL\n"
                          "    cellChildren: [{cellAddress: n1}, {cellAddress: n2}]\n"
                          "virtualClusters: {a: {virtualCells: [{cellType: POOL.K80-NODE, "
                          "cellNumber: 2}]}}\n";

TEST(explains_doomed_cells_and_unhealthy_nodes)
{
    sched_opts_t o = {.assume_healthy = true, .quiet_waits = true};
    sched_t *s = NULL;
    char err[256];
    CHECK(sched_new_config(cfg, strlen(cfg), &o, &s, err, sizeof(err)) == PAI_OK);
    if (!s)
        return;
    CHECK(sched_node_set_health(s, "n2", false) == PAI_OK);
    CHECK(submit1(s, "g", "a", 2, 4, 0) == PAI_OK);
    CHECK_INT_EQ(binds(s, 0, "g"), 0);
    char buf[SCHED_EXPLAIN_MAX];
    CHECK(sched_explain(s, "g", buf, sizeof(buf)) == PAI_OK);
    CHECK_STR_CONTAINS(buf, "VC a: 8 of 8 guaranteed K80 free, job needs 2 tasks x 4 K80");
    CHECK_STR_CONTAINS(buf, "4 K80 of the guarantee are doomed");
    CHECK_STR_CONTAINS(buf, "1 of 2 tasks x 4 K80 fit");
    CHECK(sched_node_set_health(s, "n2", true) == PAI_OK);
    CHECK(sched_explain(s, "g", buf, sizeof(buf)) == PAI_OK);
    CHECK_STR_CONTAINS(buf, "each role fits alone now");
    CHECK_INT_EQ(binds(s, 1, "g"), 1);
    sched_free(s);
}

TEST(explains_cpu_only_jobs_by_cpus)
{
    sched_opts_t o = {.quiet_waits = true};
    sched_t *s = NULL;
    CHECK(sched_new_nodes(&o, &s) == PAI_OK);
    sched_node_t c = {.name = "c", .gpus = 0, .cpus = 16, .healthy = true};
    CHECK(sched_node_update(s, &c) == PAI_OK);
    CHECK(submit1(s, "c1", "default", 1, 0, 12) == PAI_OK);
    CHECK(submit1(s, "c2", "default", 1, 0, 8) == PAI_OK);
    CHECK_INT_EQ(binds(s, 0, "c1"), 1);
    char buf[SCHED_EXPLAIN_MAX];
    CHECK(sched_explain(s, "c2", buf, sizeof(buf)) == PAI_OK);
    CHECK_STR_CONTAINS(buf, "CPU-only: job needs 1 task");
    CHECK_STR_CONTAINS(buf, "only 0 of 1 task fit by CPU/memory");
    CHECK_STR_CONTAINS(buf, "most free on one node: 4 CPUs");
    CHECK(strstr(buf, "GPU") == NULL);
    sched_free(s);
}

RUN_TESTS(explains_quiet_waits_and_changes_nothing, explains_doomed_cells_and_unhealthy_nodes,
          explains_cpu_only_jobs_by_cpus)
