/*
 * test_engine_usage.c - GPU use now for the metrics history
 * (src/engine/usage.c): the figures per cluster, VC, node and running job,
 * and that the answer is built from copies taken under the engine lock,
 * after it has been let go.
 */
#include "engine_fixture.h"

/* Bring every task in a's desired set to running. */
static void run_all(rig_t *r, agent_t *a)
{
    tick(r); /* the timer's flush: bound attempts become durable and are sent */
    sync_quiet(r, a, NULL);
    json_t *rep = json_array();
    for (size_t k = 0; k < ndesired(a); k++)
        json_array_append_new(rep, report(desired_id(a, k), "running", 0));
    sync_quiet(r, a, rep);
}

static const engine_gauge_t *gauge(const engine_gauge_t *g, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0)
            return &g[i];
    return NULL;
}

/* Is gauge name (in g[0..n)) at used and other? */
static bool gauge_is(const engine_gauge_t *g, size_t n, const char *name, int used, int other)
{
    const engine_gauge_t *x = gauge(g, n, name);
    if (!x)
        fprintf(stderr, "  no gauge %s\n", name);
    else if (x->used != used || x->other != other)
        fprintf(stderr, "  %s: %d %d, not %d %d\n", name, x->used, x->other, used, other);
    return x && x->used == used && x->other == other;
}

/* n1: 4 GPUs at 30%, jobs a (1 GPU) and b (2); n2: 4 GPUs reporting no
 * utilization, job c (4); d (4) waits.  Every figure as history.c gets it. */
static bool two_nodes(rig_t *r, agent_t *n1, agent_t *n2)
{
    if (!rig_open(r))
        return false;
    sync_quiet(r, n1, NULL);
    CHECK(submit(r, "a", 1, 0) && submit(r, "b", 2, 0));
    run_all(r, n1);
    sync_quiet(r, n2, NULL);
    CHECK(submit(r, "c", 4, 0));
    run_all(r, n2);
    CHECK(submit(r, "d", 4, 0));
    tick(r);
    return true;
}

TEST(usage_counts_the_cluster_its_vcs_nodes_and_running_jobs)
{
    rig_t r;
    agent_t n1 = {.name = "n1", .address = "10.0.0.1", .ngpus = 4, .util = 30, .has_util = true};
    agent_t n2 = {.name = "n2", .address = "10.0.0.2", .ngpus = 4};
    if (!two_nodes(&r, &n1, &n2)) {
        CHECK(!"rig_open");
        return;
    }
    CHECK_STR_EQ(state_of(&r, "alice~c"), "RUNNING");
    engine_usage_t u;
    engine_usage(r.e, &u);
    CHECK_INT_EQ(u.gpus_total, 8);
    CHECK_INT_EQ(u.gpus_used, 7);
    CHECK(gauge_is(u.vcs, u.nvcs, "default", 7, 8));
    CHECK_INT_EQ(u.nnodes, 2);
    CHECK(gauge_is(u.nodes, u.nnodes, "n1", 3, 30));
    CHECK(gauge_is(u.nodes, u.nnodes, "n2", 4, -1));
    CHECK_INT_EQ(u.njobs, 3); /* d waits: not running, not counted */
    CHECK(gauge_is(u.jobs, u.njobs, "alice~a", 1, 30));
    CHECK(gauge_is(u.jobs, u.njobs, "alice~b", 2, 30));
    CHECK(gauge_is(u.jobs, u.njobs, "alice~c", 4, -1));
    engine_usage_free(&u);
    /* a's end: it leaves the jobs, its GPU the node's use */
    json_t *end = json_array();
    for (size_t k = 0; k < ndesired(&n1); k++)
        if (strncmp(desired_id(&n1, k), "alice~a/", 8) == 0)
            json_array_append_new(end, report(desired_id(&n1, k), "exited", 0));
    CHECK_INT_EQ(json_array_size(end), 1);
    sync_quiet(&r, &n1, end);
    engine_usage(r.e, &u);
    CHECK(gauge(u.jobs, u.njobs, "alice~a") == NULL);
    CHECK(gauge_is(u.nodes, u.nnodes, "n1", 2, 30));
    engine_usage_free(&u);
    agent_free(&n1);
    agent_free(&n2);
    rig_close(&r);
}

/* engine_usage's mark after its copies: the lock is free, and the node
 * changes what it reports meanwhile. */
static agent_t *g_n1;
static bool g_lock_free;

static void meanwhile(void *ud)
{
    rig_t *r = ud;
    g_lock_free = engine_lock_within(r->e, 10000);
    if (g_lock_free)
        engine_unlock(r->e);
    g_n1->util = 90; /* n1's GPU list is replaced by the next sync */
    sync_quiet(r, g_n1, NULL);
    r->e->ops.list_unlocked = NULL;
}

TEST(usage_builds_its_answer_from_copies_after_letting_go_of_the_lock)
{
    rig_t r;
    agent_t n1 = {.name = "n1", .address = "10.0.0.1", .ngpus = 4, .util = 30, .has_util = true};
    agent_t n2 = {.name = "n2", .address = "10.0.0.2", .ngpus = 4};
    if (!two_nodes(&r, &n1, &n2)) {
        CHECK(!"rig_open");
        return;
    }
    g_n1 = &n1;
    r.e->ops.list_unlocked = meanwhile;
    engine_usage_t u;
    engine_usage(r.e, &u);
    CHECK(g_lock_free);
    /* the answer is the cluster when the copies were taken */
    CHECK(gauge_is(u.nodes, u.nnodes, "n1", 3, 30));
    CHECK(gauge_is(u.jobs, u.njobs, "alice~b", 2, 30));
    engine_usage_free(&u);
    engine_usage(r.e, &u);
    CHECK(gauge_is(u.nodes, u.nnodes, "n1", 3, 90));
    CHECK(gauge_is(u.jobs, u.njobs, "alice~b", 2, 90));
    engine_usage_free(&u);
    agent_free(&n1);
    agent_free(&n2);
    rig_close(&r);
}

RUN_TESTS(usage_counts_the_cluster_its_vcs_nodes_and_running_jobs,
          usage_builds_its_answer_from_copies_after_letting_go_of_the_lock)
