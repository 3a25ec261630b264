/* test_sched_status.c - the VC rows (sched_vc_status) that the scheduler
 * keeps up to date against the same rows computed from the whole model
 * (sched_vc_status_recount), after every one of thousands of random
 * operations: submissions of every kind, passes, preemptions, lazy
 * downgrades, releases, cancels, health changes and nodes joining. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "test.h"

#define MAX_ROWS 64
#define MAX_IDS  4000

static const char two_skus_cfg[] =
    "physicalCluster:\n"
    "  skuTypes: {K80: {gpu: 1, cpu: 4, memory: 8192Mi}, V100: {gpu: 1, cpu: 8, memory: "
    "16384Mi}}\n"
    "  cellTypes:\n"
    "    K80-NODE: {childCellType: K80, childCellNumber: 4, isNodeLevel: true}\n"
    "    K80-POOL: {childCellType: K80-NODE, childCellNumber: 4}\n"
    "    V100-NODE: {childCellType: V100, childCellNumber: 8, isNodeLevel: true}\n"
    "    V100-POOL: {childCellType: V100-NODE, childCellNumber: 2}\n"
    "  physicalCells:\n"
    "  - cellType: K80-POOL\n"
    "    cellChildren: [{cellAddress: k1}, {cellAddress: k2}, {cellAddress: k3}, "
    "{cellAddress: k4}]\n"
    "  - cellType: V100-POOL\n"
    "    cellChildren: [{cellAddress: v1}, {cellAddress: v2}]\n"
    "virtualClusters:\n"
    "  a: {virtualCells: [{cellType: K80-POOL.K80-NODE, cellNumber: 2}, "
    "{cellType: V100-POOL.V100-NODE, cellNumber: 1}]}\n"
    "  b: {virtualCells: [{cellType: K80-POOL.K80-NODE, cellNumber: 1}]}\n"
    "  default: {virtualCells: [{cellType: V100-POOL.V100-NODE, cellNumber: 1}]}\n";

typedef struct {
    sched_t *s;
    unsigned long x; /* the generator's state */
    int n_ids;
    const char *const *vcs, *const *skus, *const *nodes;
    int n_vcs, n_skus, n_nodes;
    bool derived; /* add nodes as it goes */
    int added;
    int64_t now;
    int compared, differed;
    int ok[6]; /* operations the scheduler took, by kind (as in run_ops) */
} run_t;

static unsigned rnd(run_t *r, unsigned n)
{
    r->x = r->x * 6364136223846793005ul + 1442695040888963407ul;
    return (unsigned)(r->x >> 33) % n;
}

static bool same_row(const sched_vc_status_t *a, const sched_vc_status_t *b)
{
    return strcmp(a->vc, b->vc) == 0 && strcmp(a->sku, b->sku) == 0 &&
           a->guaranteed_gpus == b->guaranteed_gpus && a->used_gpus == b->used_gpus &&
           a->oppo_gpus == b->oppo_gpus && a->total_gpus == b->total_gpus &&
           a->doomed_cells == b->doomed_cells && a->bad_gpus == b->bad_gpus &&
           a->guaranteed_cpus == b->guaranteed_cpus && a->used_cpus == b->used_cpus &&
           a->guaranteed_memory_mb == b->guaranteed_memory_mb &&
           a->used_memory_mb == b->used_memory_mb && a->running_jobs == b->running_jobs &&
           a->waiting_jobs == b->waiting_jobs;
}

static void print_row(const char *what, const sched_vc_status_t *r)
{
    fprintf(stderr,
            "    %s: %s/%s g %d used %d oppo %d total %d doomed %d bad %d cpus %lld/%lld "
            "mem %lld/%lld running %d waiting %d\n",
            what, r->vc, r->sku, r->guaranteed_gpus, r->used_gpus, r->oppo_gpus, r->total_gpus,
            r->doomed_cells, r->bad_gpus, (long long)r->guaranteed_cpus, (long long)r->used_cpus,
            (long long)r->guaranteed_memory_mb, (long long)r->used_memory_mb, r->running_jobs,
            r->waiting_jobs);
}

/* The kept rows against a recount; the first difference is printed. */
static void compare(run_t *r, int step, const char *op)
{
    static sched_vc_status_t kept[MAX_ROWS], full[MAX_ROWS];
    size_t nk = sched_vc_status(r->s, kept, MAX_ROWS);
    size_t nf = sched_vc_status_recount(r->s, full, MAX_ROWS);
    r->compared++;
    bool same = nk == nf && nk <= MAX_ROWS;
    for (size_t i = 0; same && i < nk; i++)
        same = same_row(&kept[i], &full[i]);
    if (same || r->differed++)
        return;
    fprintf(stderr, "  step %d (%s): %zu rows kept, %zu recounted\n", step, op, nk, nf);
    for (size_t i = 0; i < nk && i < nf && i < MAX_ROWS; i++)
        if (!same_row(&kept[i], &full[i]))
            print_row("kept", &kept[i]), print_row("recount", &full[i]);
}

static void op_submit(run_t *r)
{
    static const int prios[] = {-1, 0, 1, 5, 20};
    char id[32];
    snprintf(id, sizeof(id), "j%d", r->n_ids++);
    sched_role_t roles[2];
    int n_roles = 1 + (int)rnd(r, 2);
    for (int i = 0; i < n_roles; i++) {
        int gpus = (int)rnd(r, 5); /* 0: CPU-only */
        roles[i] = (sched_role_t){.name = i ? "ps" : "worker",
                                  .instances = 1 + (int)rnd(r, 2),
                                  .gpus = gpus,
                                  .cpus = gpus ? (int)rnd(r, 3) : 1 + (int)rnd(r, 4),
                                  .memory_mb = rnd(r, 2) ? 1024 : 0,
                                  .sku = gpus ? r->skus[rnd(r, (unsigned)r->n_skus)] : NULL};
    }
    sched_request_t q = {.job_id = id,
                         .vc = r->vcs[rnd(r, (unsigned)r->n_vcs)],
                         .priority = prios[rnd(r, 5)],
                         .gang = rnd(r, 4) != 0,
                         .lazy_preempt = rnd(r, 2),
                         .submit_ms = r->now,
                         .roles = roles,
                         .n_roles = (size_t)n_roles};
    r->ok[0] += sched_submit(r->s, &q, NULL, 0) == PAI_OK; /* a malformed one is refused */
}

/* A pass; preempted jobs go at once or a few operations later (released by
 * op_release as any running job). */
static void op_pass(run_t *r)
{
    const sched_decision_t *d;
    size_t n;
    r->now += 1000;
    CHECK(sched_schedule(r->s, r->now, &d, &n) == PAI_OK);
    char victims[64][32];
    int nv = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; d[i].kind == SCHED_PREEMPT && k < d[i].n_victims && nv < 64; k++)
            if (rnd(r, 2))
                snprintf(victims[nv++], sizeof(victims[0]), "%s", d[i].victims[k]);
    for (int i = 0; i < nv; i++)
        r->ok[2] += sched_release(r->s, victims[i]) == PAI_OK;
}

static void op_release_or_cancel(run_t *r, bool release)
{
    char id[32];
    if (!r->n_ids)
        return;
    snprintf(id, sizeof(id), "j%u", rnd(r, (unsigned)r->n_ids));
    if (release)
        r->ok[2] += sched_release(r->s, id) == PAI_OK;
    else
        r->ok[3] += sched_cancel(r->s, id) == PAI_OK;
}

static void op_health(run_t *r)
{
    char name[32];
    if (r->derived) {
        if (!r->added)
            return;
        snprintf(name, sizeof(name), "n%u", rnd(r, (unsigned)r->added));
    } else {
        snprintf(name, sizeof(name), "%s", r->nodes[rnd(r, (unsigned)r->n_nodes)]);
    }
    r->ok[4] += sched_node_set_health(r->s, name, rnd(r, 3) != 0) == PAI_OK;
}

/* Derived model: a node joins (a GPU model, or none). */
static void op_add_node(run_t *r)
{
    static const char *const models[] = {"A100", "V100", NULL};
    static const int gpus[] = {8, 4, 0};
    char name[32];
    int m = (int)rnd(r, 3);
    snprintf(name, sizeof(name), "n%d", r->added++);
    sched_node_t nd = {.name = name,
                       .gpus = gpus[m],
                       .sku = models[m],
                       .cpus = 32,
                       .memory_mb = 65536,
                       .healthy = true};
    CHECK(sched_node_update(r->s, &nd) == PAI_OK);
}

static void run_ops(run_t *r, int steps)
{
    static const char *const names[] = {"submit", "pass", "release", "cancel", "health", "node"};
    for (int step = 0; step < steps && r->n_ids < MAX_IDS; step++) {
        unsigned op = rnd(r, r->derived && r->added < 24 ? 12 : 11);
        if (op < 4)
            op_submit(r), op = 0;
        else if (op < 6)
            op_pass(r), op = 1;
        else if (op < 9)
            op_release_or_cancel(r, true), op = 2;
        else if (op < 10)
            op_release_or_cancel(r, false), op = 3;
        else if (op < 11)
            op_health(r), op = 4;
        else
            op_add_node(r), op = 5;
        compare(r, step, names[op]);
    }
}

TEST(kept_rows_match_a_recount_on_a_config_with_two_skus)
{
    static const char *const vcs[] = {"a", "b", "default", "nope"};
    static const char *const skus[] = {"K80", "V100", ""};
    static const char *const nodes[] = {"k1", "k2", "k3", "k4", "v1", "v2"};
    for (unsigned long seed = 1; seed <= 4; seed++) {
        sched_opts_t o = {.assume_healthy = true, .check = true};
        run_t r = {.x = seed,
                   .vcs = vcs,
                   .n_vcs = 4,
                   .skus = skus,
                   .n_skus = 3,
                   .nodes = nodes,
                   .n_nodes = 6};
        char err[256] = "";
        CHECK(sched_new_config(two_skus_cfg, strlen(two_skus_cfg), &o, &r.s, err, sizeof(err)) ==
              PAI_OK);
        if (!r.s) {
            fprintf(stderr, "  %s\n", err);
            return;
        }
        run_ops(&r, 1500);
        CHECK_INT_EQ(r.differed, 0);
        CHECK(r.compared >= 1500);
        CHECK_INT_EQ(sched_check_failures(r.s, NULL), 0);
        sched_summary_t sum;
        sched_summary(r.s, &sum);
        CHECK(sum.preemptions > 0); /* the operations reached preemption */
        CHECK(r.ok[0] > 100 && r.ok[2] > 50 && r.ok[3] > 10 && r.ok[4] > 50);
        sched_free(r.s);
    }
}

TEST(kept_rows_match_a_recount_as_nodes_join_a_derived_model)
{
    static const char *const vcs[] = {"default", "nope"};
    static const char *const skus[] = {"A100", "V100", ""};
    for (unsigned long seed = 1; seed <= 4; seed++) {
        sched_opts_t o = {.check = true};
        run_t r = {.x = seed, .vcs = vcs, .n_vcs = 2, .skus = skus, .n_skus = 3, .derived = true};
        CHECK(sched_new_nodes(&o, &r.s) == PAI_OK);
        run_ops(&r, 1500);
        CHECK_INT_EQ(r.differed, 0);
        CHECK(r.added >= 24);
        CHECK(r.ok[0] > 100 && r.ok[2] > 50 && r.ok[3] > 10 && r.ok[4] > 50);
        CHECK_INT_EQ(sched_check_failures(r.s, NULL), 0);
        sched_free(r.s);
    }
}

RUN_TESTS(kept_rows_match_a_recount_on_a_config_with_two_skus,
          kept_rows_match_a_recount_as_nodes_join_a_derived_model)
