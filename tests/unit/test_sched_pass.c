/* test_sched_pass.c - a scheduling pass over a deep queue: the dominance
 * memo (single tasks with CPUs and memory), refusals in a job's first pass,
 * the queue kept in pass order across passes. */
#include <stdlib.h>

#include "sched/sched.h"
#include "test.h"

static pai_err_t submit(sched_t *s, const char *id, int prio, int64_t at, int tasks, int gpus,
                        int cpus, int64_t mem)
{
    sched_role_t r = {
        .name = "main", .instances = tasks, .gpus = gpus, .cpus = cpus, .memory_mb = mem};
    sched_request_t q = {.job_id = id,
                         .vc = "default",
                         .priority = prio,
                         .gang = true,
                         .submit_ms = at,
                         .roles = &r,
                         .n_roles = 1};
    return sched_submit(s, &q, NULL, 0);
}

static int64_t tick(void *ctx)
{
    int64_t *t = ctx;
    return *t += 10;
}

/* Two reported nodes x 8 GPUs, 32 CPUs, 64 GB (the server's derived model). */
static sched_t *two_nodes(sched_opts_t *o)
{
    sched_t *s = NULL;
    if (sched_new_nodes(o, &s) != PAI_OK)
        return NULL;
    for (int i = 0; i < 2; i++) {
        sched_node_t nd = {.name = i ? "n1" : "n0",
                           .gpus = 8,
                           .sku = "SIM",
                           .cpus = 32,
                           .memory_mb = 65536,
                           .healthy = true};
        if (sched_node_update(s, &nd) != PAI_OK) {
            sched_free(s);
            return NULL;
        }
    }
    return s;
}

static const sched_decision_t *find(const sched_decision_t *d, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].job_id, id) == 0)
            return &d[i];
    return NULL;
}

/* A full cluster and 200 waiting one-task jobs with CPUs and memory (the
 * server's burst): the first that finds no place decides for the rest, so
 * a pass makes one placement attempt, not 200; each still binds in order
 * once GPUs free up. */
TEST(deep_queue_of_single_tasks_costs_one_attempt_per_pass)
{
    int64_t t = 0;
    sched_opts_t o = {.clock_us = tick, .clock_ctx = &t, .quiet_waits = true};
    sched_t *s = two_nodes(&o);
    CHECK(s != NULL);
    if (!s)
        return;
    char id[32];
    for (int i = 0; i < 16; i++) {
        snprintf(id, sizeof(id), "run%02d", i);
        CHECK(submit(s, id, 10, i, 1, 1, 1, 256) == PAI_OK);
    }
    const sched_decision_t *d;
    size_t n;
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 16);
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "w%03d", i);
        CHECK(submit(s, id, 10, 100 + i, 1, 1 + (i % 4 == 3), 1 + i % 3, 256) == PAI_OK);
    }
    sched_summary_t a, b;
    sched_summary(s, &a);
    CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 0); /* quiet: no WAIT decisions */
    sched_summary(s, &b);
    CHECK_INT_EQ(b.latency_count - a.latency_count, 1); /* one attempt: w000's */
    CHECK_INT_EQ(b.waiting_jobs, 200);
    /* two GPUs free: the first two in pass order bind */
    CHECK(sched_release(s, "run00") == PAI_OK);
    CHECK(sched_release(s, "run01") == PAI_OK);
    CHECK(sched_schedule(s, 2, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 2);
    CHECK(find(d, n, "w000") && find(d, n, "w000")->kind == SCHED_BIND);
    CHECK(find(d, n, "w001") && find(d, n, "w001")->kind == SCHED_BIND);
    sched_free(s);
}

/* A single task that failed for lack of CPUs decides only for tasks needing
 * at least its GPUs, CPUs and memory: a smaller one after it still binds. */
TEST(memo_counts_a_single_tasks_cpus_and_memory)
{
    sched_opts_t o = {.quiet_waits = true};
    sched_t *s = two_nodes(&o);
    CHECK(s != NULL);
    if (!s)
        return;
    /* each node: 4 GPUs and 30 CPUs taken */
    CHECK(submit(s, "r0", 10, 0, 1, 4, 30, 0) == PAI_OK);
    CHECK(submit(s, "r1", 10, 1, 1, 4, 30, 0) == PAI_OK);
    const sched_decision_t *d;
    size_t n;
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 2);
    CHECK(submit(s, "cpu8", 10, 10, 1, 1, 8, 0) == PAI_OK);     /* no node has 8 CPUs */
    CHECK(submit(s, "cpu9", 10, 11, 1, 2, 9, 100) == PAI_OK);   /* dominated: waits */
    CHECK(submit(s, "mem", 10, 12, 1, 1, 2, 70000) == PAI_OK);  /* memory: no node */
    CHECK(submit(s, "mem2", 10, 13, 1, 4, 2, 80000) == PAI_OK); /* dominated by mem */
    CHECK(submit(s, "small", 10, 14, 1, 2, 2, 1000) == PAI_OK); /* fits */
    CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 1);
    CHECK_STR_EQ(d[0].job_id, "small");
    CHECK(d[0].kind == SCHED_BIND);
    char buf[SCHED_EXPLAIN_MAX];
    CHECK(sched_explain(s, "cpu9", buf, sizeof(buf)) == PAI_OK);
    CHECK_STR_CONTAINS(buf, "CPU");
    sched_free(s);
}

/* A job that can never fit is refused in its first pass even when a job
 * before it that needs less already failed (the memo does not hide it). */
TEST(a_job_that_can_never_fit_is_refused_in_its_first_pass)
{
    for (int quiet = 0; quiet < 2; quiet++) {
        sched_opts_t o = {.quiet_waits = quiet};
        sched_t *s = two_nodes(&o);
        CHECK(s != NULL);
        if (!s)
            return;
        CHECK(submit(s, "full0", 10, 0, 1, 8, 0, 0) == PAI_OK);
        CHECK(submit(s, "full1", 10, 1, 1, 8, 0, 0) == PAI_OK);
        const sched_decision_t *d;
        size_t n;
        CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
        CHECK(submit(s, "small", 10, 10, 1, 1, 0, 0) == PAI_OK);
        CHECK(submit(s, "huge", 10, 11, 1, 16, 0, 0) == PAI_OK);      /* > any node */
        CHECK(submit(s, "hugecpu", 10, 12, 1, 2, 64, 256) == PAI_OK); /* CPUs > any node */
        CHECK(submit(s, "gang", 10, 13, 5, 4, 0, 0) == PAI_OK);       /* 20 > the VC's 16 */
        CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK);
        const char *never[] = {"huge", "hugecpu", "gang"};
        for (size_t i = 0; i < 3; i++) {
            const sched_decision_t *x = find(d, n, never[i]);
            CHECK(x && x->kind == SCHED_REFUSE);
        }
        const sched_decision_t *w = find(d, n, "small");
        CHECK(quiet ? w == NULL : w && w->kind == SCHED_WAIT);
        sched_summary_t sum;
        sched_summary(s, &sum);
        CHECK_INT_EQ(sum.waiting_jobs, 1);
        sched_free(s);
    }
}

/* The queue stays in pass order across passes: jobs queued later but
 * submitted earlier or with a higher priority go first; a cancel and a
 * release in the middle keep the rest in order. */
TEST(queue_keeps_pass_order_across_passes)
{
    sched_opts_t o = {.quiet_waits = true};
    sched_t *s = two_nodes(&o);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(submit(s, "a", 10, 0, 1, 8, 0, 0) == PAI_OK);
    CHECK(submit(s, "b", 10, 1, 1, 8, 0, 0) == PAI_OK);
    const sched_decision_t *d;
    size_t n;
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 2);
    char id[32];
    for (int i = 0; i < 50; i++) { /* 50 waiting, submitted at 100..149 */
        snprintf(id, sizeof(id), "q%02d", i);
        CHECK(submit(s, id, 10, 100 + i, 1, 8, 0, 0) == PAI_OK);
    }
    CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK);
    CHECK(submit(s, "late-early", 10, 50, 1, 8, 0, 0) == PAI_OK);  /* before every q */
    CHECK(submit(s, "late-prio", 100, 500, 1, 8, 0, 0) == PAI_OK); /* before all */
    CHECK(submit(s, "late", 10, 120, 1, 8, 0, 0) == PAI_OK);       /* after q20 */
    CHECK(sched_cancel(s, "q00") == PAI_OK);
    CHECK(sched_cancel(s, "late-early") == PAI_OK);
    CHECK(sched_schedule(s, 2, &d, &n) == PAI_OK);
    CHECK(sched_cancel(s, "q01") == PAI_OK);
    /* free one node at a time and see who binds */
    const char *want[] = {"late-prio", "q02", "q03"};
    const char *ends[] = {"a", "b", "late-prio"};
    for (int k = 0; k < 3; k++) {
        CHECK(sched_release(s, ends[k]) == PAI_OK);
        CHECK(sched_schedule(s, 3 + k, &d, &n) == PAI_OK);
        CHECK_INT_EQ(n, 1);
        if (n == 1)
            CHECK_STR_EQ(d[0].job_id, want[k]);
    }
    for (int i = 4; i <= 20; i++) { /* q04..q20, then "late" (120, queued after q20) */
        snprintf(id, sizeof(id), "q%02d", i - 2);
        CHECK(sched_release(s, id) == PAI_OK);
        CHECK(sched_schedule(s, 10 + i, &d, &n) == PAI_OK);
        CHECK_INT_EQ(n, 1);
        snprintf(id, sizeof(id), "q%02d", i);
        if (n == 1)
            CHECK_STR_EQ(d[0].job_id, id);
    }
    CHECK(sched_release(s, "q19") == PAI_OK);
    CHECK(sched_schedule(s, 40, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 1);
    if (n == 1)
        CHECK_STR_EQ(d[0].job_id, "late");
    sched_free(s);
}

/* More kinds of jobs (here priorities) than the memo's table indexes: the
 * pass falls back to scanning every entry and decides the same. */
TEST(memo_with_more_kinds_than_its_table)
{
    int64_t t = 0;
    sched_opts_t o = {.clock_us = tick, .clock_ctx = &t, .quiet_waits = true};
    sched_t *s = two_nodes(&o);
    CHECK(s != NULL);
    if (!s)
        return;
    CHECK(submit(s, "top0", 1000, 0, 1, 8, 0, 0) == PAI_OK);
    CHECK(submit(s, "top1", 1000, 1, 1, 8, 0, 0) == PAI_OK);
    const sched_decision_t *d;
    size_t n;
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 2);
    char id[32];
    for (int k = 0; k < 2; k++) /* two jobs of each of 300 priorities */
        for (int p = 0; p < 300; p++) {
            snprintf(id, sizeof(id), "p%03d-%d", p, k);
            CHECK(submit(s, id, p, 10 + k, 1, 1 + k, 1, 256) == PAI_OK);
        }
    sched_summary_t a, b;
    sched_summary(s, &a);
    CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 0);
    sched_summary(s, &b);
    CHECK_INT_EQ(b.latency_count - a.latency_count, 300); /* one attempt per priority */
    CHECK(sched_release(s, "top0") == PAI_OK);
    CHECK(sched_schedule(s, 2, &d, &n) == PAI_OK);
    /* 8 GPUs: p299-0 (1), p299-1 (2), p298-0 (1), p298-1 (2), p297-0 (1), then
     * p297-1 finds 1 GPU left; p296-0 takes it */
    const char *want[] = {"p299-0", "p299-1", "p298-0", "p298-1", "p297-0", "p296-0"};
    CHECK_INT_EQ(n, 6);
    for (size_t i = 0; i < n && i < 6; i++)
        CHECK_STR_EQ(d[i].job_id, want[i]);
    sched_free(s);
}

/* A run of waiting jobs at the queue's end that the memo covers as a whole
 * (each needs at least what a job that failed this pass needed) is passed
 * over without a look at each entry: the pass jumps past it; jobs queued
 * since the last pass are still visited one by one (their first visit
 * checks that they can ever fit).  A run with a smaller job in it is not
 * covered by a bigger job's failure: that job is still visited, and binds. */
TEST(a_pass_jumps_over_a_run_the_memo_covers_whole)
{
    int64_t t = 0;
    sched_opts_t o = {.clock_us = tick, .clock_ctx = &t, .quiet_waits = true};
    sched_t *s = two_nodes(&o);
    CHECK(s != NULL);
    if (!s)
        return;
    char id[32];
    for (int i = 0; i < 16; i++) {
        snprintf(id, sizeof(id), "run%02d", i);
        CHECK(submit(s, id, 10, i, 1, 1, 1, 256) == PAI_OK);
    }
    const sched_decision_t *d;
    size_t n;
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 16);
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "w%03d", i);
        CHECK(submit(s, id, 10, 100 + i, 1, 1 + i % 2, 1, 256) == PAI_OK);
    }
    sched_summary_t a, b;
    sched_summary(s, &a);
    CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK); /* every entry new: each visited */
    CHECK_INT_EQ(n, 0);
    sched_summary(s, &b);
    CHECK_INT_EQ(b.tail_passed_over - a.tail_passed_over, 0);
    for (int i = 0; i < 3; i++) { /* new ones after the run */
        snprintf(id, sizeof(id), "x%d", i);
        CHECK(submit(s, id, 10, 400 + i, 1, 1, 1, 256) == PAI_OK);
    }
    CHECK(sched_release(s, "run00") == PAI_OK);
    sched_summary(s, &a);
    CHECK(sched_schedule(s, 2, &d, &n) == PAI_OK);
    sched_summary(s, &b);
    CHECK_INT_EQ(n, 1);
    CHECK(find(d, n, "w000") && find(d, n, "w000")->kind == SCHED_BIND);
    /* w001 (2 GPUs) fails, then w002 (1 GPU) covers w003..w199 */
    CHECK_INT_EQ(b.tail_passed_over - a.tail_passed_over, 197);
    CHECK_INT_EQ(b.latency_count - a.latency_count, 3); /* w000, w001, w002 */
    CHECK_INT_EQ(b.waiting_jobs, 202);
    sched_free(s);

    /* 2-GPU jobs, then a smaller one at the end, already visited once */
    t = 0;
    s = two_nodes(&o);
    CHECK(s != NULL);
    if (!s)
        return;
    for (int i = 0; i < 16; i++) {
        snprintf(id, sizeof(id), "run%02d", i);
        CHECK(submit(s, id, 10, i, 1, 1, 0, 0) == PAI_OK);
    }
    CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "w%03d", i);
        CHECK(submit(s, id, 10, 100 + i, 1, 2, 0, 0) == PAI_OK);
    }
    CHECK(submit(s, "small", 10, 300, 1, 1, 0, 0) == PAI_OK);
    CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK);
    CHECK_INT_EQ(n, 0);
    CHECK(sched_release(s, "run00") == PAI_OK);
    sched_summary(s, &a);
    CHECK(sched_schedule(s, 2, &d, &n) == PAI_OK);
    sched_summary(s, &b);
    CHECK_INT_EQ(n, 1);
    CHECK(find(d, n, "small") && find(d, n, "small")->kind == SCHED_BIND);
    CHECK_INT_EQ(b.tail_passed_over - a.tail_passed_over, 0);
    sched_free(s);
}

RUN_TESTS(deep_queue_of_single_tasks_costs_one_attempt_per_pass,
          a_pass_jumps_over_a_run_the_memo_covers_whole, memo_with_more_kinds_than_its_table,
          memo_counts_a_single_tasks_cpus_and_memory,
          a_job_that_can_never_fit_is_refused_in_its_first_pass,
          queue_keeps_pass_order_across_passes)
