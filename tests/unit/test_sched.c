/* test_sched.c - the scheduler's API: configs, derived models, decisions, restore, status. */
#include <dirent.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/limits.h"
#include "sched/sched.h"
#include "test.h"

/* The HiveD example configs, copied into the repository (tests/data/README.md);
 * tests run from the repository root. */
#define CFG_DIR "tests/data/reference/hived-configs"

static sched_t *from_yaml(const char *yaml, char *err, size_t errlen)
{
    sched_opts_t o = {.assume_healthy = true};
    sched_t *s = NULL;
    if (sched_new_config(yaml, strlen(yaml), &o, &s, err, errlen) != PAI_OK)
        return NULL;
    return s;
}

TEST(every_reference_hived_config_loads)
{
    const char *dir = CFG_DIR;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        buf_t b;
        buf_init(&b, PAI_MAX_CONFIG_FILE);
        CHECK(buf_read_file(&b, path) == PAI_OK);
        char err[256] = "";
        sched_t *s = from_yaml(buf_str(&b), err, sizeof(err));
        if (!s)
            fprintf(stderr, "  %s: %s\n", path, err);
        CHECK(s != NULL);
        sched_free(s);
        buf_free(&b);
        n++;
    }
    closedir(d);
    CHECK(n >= 11);
}

static const char base_cfg[] = "physicalCluster:\n"
                               "  skuTypes: {K80: {gpu: 1, cpu: 4, memory: 8192Mi}}\n"
                               "  cellTypes:\n"
                               "    K80-NODE: {childCellType: K80, childCellNumber: 4, "
                               "isNodeLevel: true}\n"
                               "    POOL: {childCellType: K80-NODE, childCellNumber: 2}\n"
                               "  physicalCells:\n"
                               "  - cellType: POOL\n"
                               "    cellChildren: [{cellAddress: n1}, {cellAddress: n2}]\n";

TEST(invalid_configs_are_refused_with_a_reason)
{
    static const struct {
        const char *tail, *want;
    } cases[] = {
        {"virtualClusters: {a: {virtualCells: [{cellType: POOL.K80-NODE, cellNumber: 3}]}}\n",
         "asks more"},
        {"virtualClusters: {a: {virtualCells: [{cellType: NOPE, cellNumber: 1}]}}\n",
         "unknown cellType"},
        {"virtualClusters: {a: {pinnedCells: [{pinnedCellId: ghost}]}}\n", "ghost"},
        /* a VC given twice: refused, not the second one silently kept */
        {"virtualClusters:\n  a: {virtualCells: [{cellType: POOL.K80-NODE, cellNumber: 1}]}\n"
         "  a: {virtualCells: [{cellType: POOL.K80-NODE, cellNumber: 2}]}\n",
         "duplicate key 'a'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[2048], err[256] = "";
        snprintf(yaml, sizeof(yaml), "%s%s", base_cfg, cases[i].tail);
        sched_t *s = from_yaml(yaml, err, sizeof(err));
        CHECK(s == NULL);
        CHECK_STR_CONTAINS(err, cases[i].want);
        sched_free(s);
    }
    char err[256] = "";
    CHECK(from_yaml("physicalCluster:\n  skuTypes: {K80: {gpu: 1}}\n  cellTypes:\n"
                    "    N: {childCellType: K81, childCellNumber: 2, isNodeLevel: true}\n",
                    err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "unknown childCellType K81");
    CHECK(from_yaml("physicalCluster:\n  cellTypes:\n"
                    "    N: {childCellType: G, childCellNumber: 2, isNodeLevel: true}\n"
                    "  physicalCells:\n  - {cellType: N, cellAddress: a, pinnedCellId: p}\n"
                    "  - {cellType: N, cellAddress: b, pinnedCellId: p}\n",
                    err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "used twice");
}

static pai_err_t submit1(sched_t *s, const char *id, const char *vc, int prio, int tasks, int gpus,
                         int cpus)
{
    sched_role_t r = {.name = "worker", .instances = tasks, .gpus = gpus, .cpus = cpus};
    sched_request_t q = {
        .job_id = id, .vc = vc, .priority = prio, .gang = true, .roles = &r, .n_roles = 1};
    return sched_submit(s, &q, NULL, 0);
}

TEST(derived_model_mixes_gpu_models_and_cpu_only_nodes)
{
    sched_t *s = NULL;
    CHECK(sched_new_nodes(NULL, &s) == PAI_OK);
    sched_node_t a = {.name = "a", .gpus = 8, .sku = "A100", .cpus = 64, .healthy = true};
    sched_node_t b = {.name = "b", .gpus = 4, .sku = "V100", .cpus = 32, .healthy = true};
    sched_node_t c = {.name = "c", .gpus = 0, .cpus = 16, .healthy = true};
    CHECK(sched_node_update(s, &a) == PAI_OK);
    CHECK(sched_node_update(s, &b) == PAI_OK);
    CHECK(sched_node_update(s, &c) == PAI_OK);
    sched_role_t r = {.name = "w", .instances = 1, .gpus = 4, .sku = "V100"};
    sched_request_t q = {
        .job_id = "v", .vc = "default", .priority = 10, .gang = true, .roles = &r, .n_roles = 1};
    CHECK(sched_submit(s, &q, NULL, 0) == PAI_OK);
    CHECK(submit1(s, "cpu", "default", 10, 1, 0, 8) == PAI_OK);
    const sched_decision_t *d;
    size_t n;
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    int binds = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i].kind != SCHED_BIND)
            continue;
        binds++;
        if (strcmp(d[i].job_id, "v") == 0)
            CHECK_STR_EQ(d[i].tasks[0].node, "b");
        else
            CHECK_STR_EQ(d[i].tasks[0].node, "c"); /* CPU work prefers CPU-only nodes */
    }
    CHECK_INT_EQ(binds, 2);
    sched_vc_status_t rows[8];
    size_t nr = sched_vc_status(s, rows, 8);
    CHECK_INT_EQ(nr, 2); /* default x {A100, V100} */
    sched_summary_t sum;
    sched_summary(s, &sum);
    CHECK_INT_EQ(sum.gpus, 12);
    CHECK_INT_EQ(sum.used_gpus, 4);
    CHECK(sched_release(s, "v") == PAI_OK);
    CHECK(sched_release(s, "v") == PAI_E_NO_JOB);
    sched_free(s);
}

TEST(submit_rejects_duplicates_and_malformed_requests)
{
    sched_t *s = NULL;
    CHECK(sched_new_nodes(NULL, &s) == PAI_OK);
    CHECK(submit1(s, "x", "default", 10, 1, 1, 0) == PAI_OK);
    CHECK(submit1(s, "x", "default", 10, 1, 1, 0) == PAI_E_CONFLICT_JOB);
    CHECK(submit1(s, "y", "default", 10, 0, 1, 0) == PAI_E_INVALID);
    CHECK(submit1(s, "", "default", 10, 1, 1, 0) == PAI_E_INVALID);
    CHECK(sched_cancel(s, "x") == PAI_OK);
    CHECK(sched_cancel(s, "x") == PAI_E_NO_JOB);
    sched_free(s);
}

static int64_t fake_clock(void *ctx)
{
    int64_t *t = ctx;
    return *t += 250;
}

TEST(latency_counters_use_the_injected_clock)
{
    int64_t t = 0;
    sched_opts_t o = {.clock_us = fake_clock, .clock_ctx = &t};
    sched_t *s = NULL;
    const char *names[] = {"a"};
    int nodes[] = {1};
    CHECK(sched_new_uniform(1, 8, 0, names, nodes, 1, &o, &s, NULL, 0) == PAI_OK);
    CHECK(submit1(s, "j", "a", 10, 1, 1, 0) == PAI_OK);
    const sched_decision_t *d;
    size_t n;
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    sched_summary_t sum;
    sched_summary(s, &sum);
    CHECK_INT_EQ(sum.latency_count, 1);
    CHECK(sum.latency_sum_s > 0.0002 && sum.latency_sum_s < 0.0003);
    CHECK_INT_EQ(sum.latency_le[0], 0);
    CHECK_INT_EQ(sum.latency_le[1], 1);
    CHECK_INT_EQ(sum.decisions[SCHED_BIND], 1);
    /* the whole pass: its start, the decision's two readings, its end */
    CHECK_INT_EQ(sum.pass_count, 1);
    CHECK(sum.pass_sum_s > 0.0007 && sum.pass_sum_s < 0.0008);
    CHECK_INT_EQ(sum.pass_le[0], 0);
    CHECK_INT_EQ(sum.pass_le[1], 1);
    CHECK_INT_EQ(sum.pass_le[5], 1);
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK); /* nothing waits: a pass all the same */
    sched_summary(s, &sum);
    CHECK_INT_EQ(sum.pass_count, 2);
    CHECK_INT_EQ(sum.latency_count, 1);
    sched_free(s);
}

TEST(restore_rebuilds_usage_and_rejects_conflicts)
{
    sched_t *s = NULL;
    const char *names[] = {"a"};
    int nodes[] = {2};
    sched_opts_t o = {.assume_healthy = true};
    CHECK(sched_new_uniform(2, 8, 0, names, nodes, 1, &o, &s, NULL, 0) == PAI_OK);
    sched_role_t r = {.name = "w", .instances = 1, .gpus = 2};
    sched_request_t q = {
        .job_id = "old", .vc = "a", .priority = 10, .gang = true, .roles = &r, .n_roles = 1};
    int g[] = {2, 3};
    sched_alloc_t al = {.role = "w", .index = 0, .node = "node-00001", .n_gpus = 2, .gpus = g};
    bool down = true;
    CHECK(sched_restore(s, &q, &al, 1, &down) == PAI_OK);
    CHECK(!down);
    q.job_id = "clash";
    CHECK(sched_restore(s, &q, &al, 1, &down) == PAI_E_INVALID);
    sched_node_status_t ns[2];
    CHECK_INT_EQ(sched_node_status(s, ns, 2), 2);
    CHECK_INT_EQ(ns[1].used_gpus, 2);
    CHECK_STR_EQ(ns[1].vc, "a");
    sched_free(s);
}

static size_t pass(sched_t *s, int64_t now, sched_kind_t kind, const char *job)
{
    const sched_decision_t *d;
    size_t n, hits = 0;
    if (sched_schedule(s, now, &d, &n) != PAI_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        hits += d[i].kind == kind && strcmp(d[i].job_id, job) == 0;
    return hits;
}

TEST(summary_counts_preemptions_and_lazy_moves)
{
    sched_t *s = NULL;
    const char *names[] = {"a"};
    int nodes[] = {1};
    CHECK(sched_new_uniform(3, 8, 0, names, nodes, 1, NULL, &s, NULL, 0) == PAI_OK);
    sched_role_t r = {.name = "w", .instances = 1, .gpus = 8};
    sched_request_t q = {.job_id = "lazy",
                         .vc = "a",
                         .priority = 10,
                         .gang = true,
                         .lazy_preempt = true,
                         .roles = &r,
                         .n_roles = 1};
    CHECK(sched_submit(s, &q, NULL, 0) == PAI_OK);
    CHECK_INT_EQ(pass(s, 0, SCHED_BIND, "lazy"), 1);
    CHECK(submit1(s, "prod", "a", 100, 1, 8, 0) == PAI_OK);
    CHECK_INT_EQ(pass(s, 1, SCHED_BIND, "prod"), 1); /* the guarantee moved, nobody died */
    sched_summary_t sum;
    sched_summary(s, &sum);
    CHECK_INT_EQ(sum.lazy_preemptions, 1);
    CHECK_INT_EQ(sum.preemptions, 0);
    CHECK(submit1(s, "crit", "a", 120, 1, 8, 0) == PAI_OK);
    CHECK_INT_EQ(pass(s, 2, SCHED_PREEMPT, "crit"), 1); /* prod is not lazy: it is the victim */
    sched_summary(s, &sum);
    CHECK_INT_EQ(sum.preemptions, 1);
    CHECK_INT_EQ(sum.decisions[SCHED_PREEMPT], 1);
    CHECK_INT_EQ(sum.running_jobs, 2);
    CHECK_INT_EQ(sum.waiting_jobs, 1);
    sched_vc_status_t row;
    CHECK_INT_EQ(sched_vc_status(s, &row, 1), 1);
    CHECK_INT_EQ(row.used_gpus, 8);
    CHECK_INT_EQ(row.oppo_gpus, 8);
    sched_free(s);
}

TEST(lazy_downgrade_is_visible_and_survives_a_restore)
{
    sched_t *s = NULL;
    const char *names[] = {"a"};
    int nodes[] = {1};
    sched_opts_t o = {.check = true};
    CHECK(sched_new_uniform(2, 8, 0, names, nodes, 1, &o, &s, NULL, 0) == PAI_OK);
    sched_role_t r = {.name = "w", .instances = 1, .gpus = 8};
    sched_request_t lazy = {.job_id = "lazy",
                            .vc = "a",
                            .priority = 10,
                            .gang = true,
                            .lazy_preempt = true,
                            .roles = &r,
                            .n_roles = 1};
    CHECK(sched_submit(s, &lazy, NULL, 0) == PAI_OK);
    CHECK_INT_EQ(pass(s, 0, SCHED_BIND, "lazy"), 1);
    CHECK(!sched_job_opportunistic(s, "lazy"));
    CHECK(submit1(s, "prod", "a", 100, 1, 8, 0) == PAI_OK);
    CHECK_INT_EQ(pass(s, 1, SCHED_BIND, "prod"), 1);
    CHECK(sched_job_opportunistic(s, "lazy")); /* moved out of the guarantee */
    CHECK(!sched_job_opportunistic(s, "prod"));
    CHECK(!sched_job_opportunistic(s, "nobody"));
    sched_node_status_t ns[2];
    CHECK_INT_EQ(sched_node_status(s, ns, 2), 2);
    char n0[64], n1[64]; /* the rows' strings live in the scheduler */
    snprintf(n0, sizeof(n0), "%s", ns[0].name);
    snprintf(n1, sizeof(n1), "%s", ns[1].name);
    bool lazy_on0 = ns[0].used_gpus == 8 && strcmp(ns[0].vc, "") == 0;
    sched_free(s);
    /* restart: both restored where they ran, the downgraded one as such */
    CHECK(sched_new_uniform(2, 8, 0, names, nodes, 1, &o, &s, NULL, 0) == PAI_OK);
    int g[] = {0, 1, 2, 3, 4, 5, 6, 7};
    sched_alloc_t on0 = {.role = "w", .node = n0, .n_gpus = 8, .gpus = g};
    sched_alloc_t on1 = {.role = "w", .node = n1, .n_gpus = 8, .gpus = g};
    lazy.opportunistic = true;
    bool down = true;
    CHECK(sched_restore(s, &lazy, lazy_on0 ? &on0 : &on1, 1, &down) == PAI_OK);
    CHECK(!down);
    sched_role_t r2 = {.name = "w", .instances = 1, .gpus = 8};
    sched_request_t prod = {
        .job_id = "prod", .vc = "a", .priority = 100, .gang = true, .roles = &r2, .n_roles = 1};
    CHECK(sched_restore(s, &prod, lazy_on0 ? &on1 : &on0, 1, &down) == PAI_OK);
    CHECK(!down); /* it keeps the guarantee the lazy job gave up */
    CHECK(sched_job_opportunistic(s, "lazy"));
    CHECK_INT_EQ(sched_check_failures(s, NULL), 0);
    sched_free(s);
}

TEST(checker_finds_nothing_wrong_in_a_fresh_or_busy_model)
{
    sched_t *s = NULL;
    const char *names[] = {"a", "b"};
    int nodes[] = {2, 1};
    sched_opts_t o = {.check = true};
    CHECK(sched_new_uniform(4, 8, 2, names, nodes, 2, &o, &s, NULL, 0) == PAI_OK);
    sched_violation_t v[4];
    CHECK_INT_EQ(sched_check(s, v, 4), 0);
    CHECK(submit1(s, "g", "a", 10, 2, 8, 0) == PAI_OK);
    CHECK(submit1(s, "o", "b", -1, 1, 4, 0) == PAI_OK);
    CHECK_INT_EQ(pass(s, 0, SCHED_BIND, "g"), 1);
    CHECK_INT_EQ(sched_check(s, v, 4), 0);
    CHECK(sched_node_set_health(s, "node-00003", false) == PAI_OK);
    CHECK(sched_release(s, "g") == PAI_OK);
    CHECK_INT_EQ(sched_check(s, v, 4), 0);
    const char *first = NULL;
    CHECK_INT_EQ(sched_check_failures(s, &first), 0);
    CHECK(first != NULL);
    sched_free(s);
}

/* The checker sees a group "within one cell" that is not: a restore (which
 * takes allocations as they are) of a 2-task group within one NODE on two
 * nodes is reported; the same group on one node is not. */
TEST(checker_reports_a_group_outside_its_within_cell)
{
    sched_t *s = NULL;
    const char *names[] = {"a"};
    int nodes[] = {2};
    sched_opts_t o = {.assume_healthy = true};
    CHECK(sched_new_uniform(2, 8, 2, names, nodes, 1, &o, &s, NULL, 0) == PAI_OK);
    sched_role_t r = {.name = "w", .instances = 2, .gpus = 2, .within_cell = "NODE"};
    sched_request_t q = {
        .job_id = "one", .vc = "a", .priority = 10, .gang = true, .roles = &r, .n_roles = 1};
    int g0[] = {0, 1}, g1[] = {2, 3}, g2[] = {4, 5};
    sched_alloc_t same[] = {{"w", 0, "node-00000", 2, g0, NULL},
                            {"w", 1, "node-00000", 2, g1, NULL}};
    sched_alloc_t split[] = {{"w", 0, "node-00000", 2, g2, NULL},
                             {"w", 1, "node-00001", 2, g1, NULL}};
    bool down = false;
    sched_violation_t v[4];
    CHECK(sched_restore(s, &q, same, 2, &down) == PAI_OK);
    CHECK_INT_EQ(sched_check(s, v, 4), 0);
    q.job_id = "two";
    CHECK(sched_restore(s, &q, split, 2, &down) == PAI_OK);
    CHECK_INT_EQ(sched_check(s, v, 4), 1);
    CHECK_STR_CONTAINS(v[0].what, "job two: affinity group of role w is not within one NODE cell");
    sched_free(s);
}

TEST(priorities_outside_hiveds_range_are_refused)
{
    sched_t *s = NULL;
    const char *names[] = {"a"};
    int nodes[] = {1};
    CHECK(sched_new_uniform(1, 8, 0, names, nodes, 1, NULL, &s, NULL, 0) == PAI_OK);
    CHECK(submit1(s, "low", "a", -2, 1, 1, 0) == PAI_E_INVALID);
    CHECK(submit1(s, "high", "a", 1001, 1, 1, 0) == PAI_E_INVALID);
    CHECK(submit1(s, "oppo", "a", -1, 1, 1, 0) == PAI_OK);
    CHECK(submit1(s, "top", "a", 1000, 1, 1, 0) == PAI_OK);
    sched_free(s);
}

RUN_TESTS(every_reference_hived_config_loads, invalid_configs_are_refused_with_a_reason,
          derived_model_mixes_gpu_models_and_cpu_only_nodes,
          submit_rejects_duplicates_and_malformed_requests, latency_counters_use_the_injected_clock,
          restore_rebuilds_usage_and_rejects_conflicts, summary_counts_preemptions_and_lazy_moves,
          lazy_downgrade_is_visible_and_survives_a_restore,
          checker_reports_a_group_outside_its_within_cell,
          checker_finds_nothing_wrong_in_a_fresh_or_busy_model,
          priorities_outside_hiveds_range_are_refused)
