/* test_lifecycle_nodes.c - node registry: port pools, desired sets, seq. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/nodes.h"
#include "engine/lifecycle.h"
#include "test.h"

static lc_reaction_t react(int code)
{
    (void)code;
    return LC_NEVER_RETRY;
}

TEST(ports_are_unique_per_address_and_freed)
{
    nodes_t *ns = nodes_new(30000, 8);
    int a[4], b[4], c[4];
    CHECK(nodes_ports_alloc(ns, "10.0.0.1", 4, a));
    CHECK(nodes_ports_alloc(ns, "10.0.0.1", 4, b));
    CHECK(!nodes_ports_alloc(ns, "10.0.0.1", 1, c)); /* pool of 8 is full */
    CHECK(nodes_ports_alloc(ns, "10.0.0.2", 4, c));  /* another address has its own */
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            CHECK(a[i] != b[k]);
    CHECK(a[0] >= 30000 && b[3] < 30008);
    nodes_ports_free(ns, "10.0.0.1", a, 4);
    CHECK(nodes_ports_alloc(ns, "10.0.0.1", 4, c));
    nodes_free(ns);
}

static lc_job_t *job_on(const char *node, int instances)
{
    lc_job_t *j = xcalloc(1, sizeof(*j));
    j->name = xstrdup("u~j");
    j->user_len = 1;
    j->vc = xstrdup("default");
    j->gang = true;
    j->nroles = 1;
    j->roles = xcalloc(1, sizeof(lc_role_t));
    j->roles[0].name = xstrdup("r");
    j->roles[0].instances = instances;
    j->roles[0].min_failed = 1;
    j->roles[0].min_succeeded = -1;
    lc_place_t *pl = xcalloc((size_t)instances, sizeof(*pl));
    static int ports[2] = {30000, 30001};
    for (int i = 0; i < instances; i++)
        pl[i] = (lc_place_t){node, "10.0.0.1", 0, &ports[i % 2], 1, NULL};
    const lc_place_t *rows[1] = {pl};
    lc_effects_t fx = {0};
    lc_attempt_begin(j, rows, 1, &fx);
    free(pl);
    return j;
}

static size_t live(const engine_node_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->nrefs; i++)
        k += nodes_ref_live(&n->refs[i]);
    return k;
}

TEST(desired_set_follows_the_lifecycle_and_bumps_seq)
{
    nodes_t *ns = nodes_new(30000, 100);
    bool created;
    engine_node_t *n = nodes_get(ns, "n1", &created);
    CHECK(created);
    uint64_t s0 = n->seq;
    lc_job_t *j = job_on("n1", 2);
    nodes_sync_job(ns, j);
    CHECK_INT_EQ(live(n), 2);
    /* Not committed yet: left out of the desired set, and the commit
     * (mark_durable in engine.c) bumps seq, not the attachment. */
    CHECK_INT_EQ(n->seq, s0);
    lc_job_t *j2 = job_on("n1", 1);
    lc_find(j2, 0, 0, 0, 0)->durable = 2; /* restored: already committed */
    nodes_sync_job(ns, j2);
    CHECK(n->seq > s0);
    uint64_t s1 = n->seq;
    nodes_sync_job(ns, j); /* nothing changed: no bump */
    CHECK_INT_EQ(n->seq, s1);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 0, 2, NULL, 5, react, &fx); /* fails: the other one stops */
    nodes_sync_job(ns, j);
    CHECK_INT_EQ(live(n), 1);  /* j2's */
    CHECK_INT_EQ(n->nrefs, 2); /* the stopping task stays until it is gone */
    CHECK(n->seq > s1);
    lc_task_exited(j, 0, 1, 143, NULL, 6, react, &fx);
    nodes_sync_job(ns, j);
    CHECK_INT_EQ(n->nrefs, 1); /* j2's */
    CHECK_INT_EQ(j->state, JOB_FAILED);
    lc_job_free(j);
    lc_job_free(j2);
    nodes_free(ns);
}

TEST(clearing_a_lost_node_frees_its_refs)
{
    nodes_t *ns = nodes_new(30000, 2);
    bool created;
    engine_node_t *n = nodes_get(ns, "n1", &created);
    lc_job_t *j = job_on("n1", 1);
    nodes_sync_job(ns, j);
    CHECK_INT_EQ(n->nrefs, 1);
    nodes_clear_refs(ns, n);
    CHECK_INT_EQ(n->nrefs, 0);
    int p[2];
    CHECK(nodes_ports_alloc(ns, "10.0.0.1", 2, p)); /* the task's port is free again */
    lc_job_free(j);
    nodes_free(ns);
}

RUN_TESTS(ports_are_unique_per_address_and_freed, desired_set_follows_the_lifecycle_and_bumps_seq,
          clearing_a_lost_node_frees_its_refs)
