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

    /* A smaller need in one field at the run's end, already visited: the
     * run's failures do not cover it, and it binds.  CPUs: the freed GPUs'
     * node has no CPU left, the run asks 16, the last job none.  The
     * largest task: nodes with 2 GPUs free each, the run asks 4 on one
     * node, the last job 2 x 2 (as many GPUs in all). */
    static const struct {
        int a_gpus, a_cpus, b_gpus; /* two jobs of each, one per node */
        int n_free;                 /* B jobs that end */
        int w_tasks, w_gpus, w_cpus, l_tasks, l_gpus, l_cpus;
    } cases[] = {{2, 32, 6, 1, 1, 1, 16, 1, 1, 0}, {6, 0, 2, 2, 1, 4, 0, 2, 2, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        t = 0;
        s = two_nodes(&o);
        CHECK(s != NULL);
        if (!s)
            return;
        for (int i = 0; i < 4; i++) {
            snprintf(id, sizeof(id), "%s%d", i < 2 ? "a" : "b", i % 2);
            CHECK(submit(s, id, 10, i, 1, i < 2 ? cases[c].a_gpus : cases[c].b_gpus,
                         i < 2 ? cases[c].a_cpus : 0, 0) == PAI_OK);
        }
        CHECK(sched_schedule(s, 0, &d, &n) == PAI_OK);
        CHECK_INT_EQ(n, 4);
        for (int i = 0; i < 50; i++) {
            snprintf(id, sizeof(id), "w%03d", i);
            CHECK(submit(s, id, 10, 100 + i, cases[c].w_tasks, cases[c].w_gpus, cases[c].w_cpus,
                         0) == PAI_OK);
        }
        CHECK(submit(s, "last", 10, 300, cases[c].l_tasks, cases[c].l_gpus, cases[c].l_cpus, 0) ==
              PAI_OK);
        CHECK(sched_schedule(s, 1, &d, &n) == PAI_OK); /* all wait: no GPU free */
        CHECK_INT_EQ(n, 0);
        for (int i = 0; i < cases[c].n_free; i++) {
            snprintf(id, sizeof(id), "b%d", i);
            CHECK(sched_release(s, id) == PAI_OK);
        }
        CHECK(sched_schedule(s, 2, &d, &n) == PAI_OK);
        CHECK_INT_EQ(n, 1);
        CHECK(find(d, n, "last") && find(d, n, "last")->kind == SCHED_BIND);
        sched_free(s);
    }
}

/* The jump decides as the entry-by-entry pass: random queues of jobs of
 * two priorities, gang or not, opportunistic or not, 1-8 GPUs, with and
 * without CPUs and memory, one to three tasks, submitted, released and
 * scheduled at random on two schedulers, one with memo_no_jump: the same
 * decisions (kind, job, nodes and GPUs) in every pass, and the jump taken. */
static unsigned rnd(unsigned *seed, unsigned n)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) % n;
}

static void same_decisions(const sched_decision_t *a, size_t na, const sched_decision_t *b,
                           size_t nb, int *bad)
{
    if (na != nb) {
        (*bad)++;
        return;
    }
    for (size_t i = 0; i < na; i++) {
        if (a[i].kind != b[i].kind || strcmp(a[i].job_id, b[i].job_id) != 0 ||
            a[i].n_tasks != b[i].n_tasks) {
            (*bad)++;
            return;
        }
        for (size_t k = 0; k < a[i].n_tasks; k++)
            if (strcmp(a[i].tasks[k].node, b[i].tasks[k].node) != 0 ||
                a[i].tasks[k].n_gpus != b[i].tasks[k].n_gpus ||
                memcmp(a[i].tasks[k].gpus, b[i].tasks[k].gpus,
                       sizeof(int) * (size_t)a[i].tasks[k].n_gpus) != 0)
                (*bad)++;
    }
}

TEST(the_jump_decides_as_the_pass_over_each_entry)
{
    int64_t t = 0;
    sched_opts_t o = {.clock_us = tick, .clock_ctx = &t, .quiet_waits = true};
    sched_opts_t on = o;
    on.memo_no_jump = true;
    sched_t *s[2] = {two_nodes(&o), two_nodes(&on)};
    CHECK(s[0] && s[1]);
    if (!s[0] || !s[1])
        return;
    unsigned seed = 7;
    int bad = 0, next = 0;
    char running[4096][16];
    int n_run = 0;
    for (int step = 0; step < 3000; step++) {
        unsigned what = rnd(&seed, 10);
        if (what < 6) { /* a few submissions */
            int k = 1 + (int)rnd(&seed, 6);
            for (int i = 0; i < k; i++, next++) {
                char id[16];
                snprintf(id, sizeof(id), "j%05d", next);
                static const int gpus[] = {1, 1, 1, 1, 2, 2, 2, 4, 4, 8};
                int g = gpus[rnd(&seed, 10)], tasks = 1 + (int)rnd(&seed, 3) * (rnd(&seed, 3) == 0);
                int prio = rnd(&seed, 6) == 0 ? 50 : rnd(&seed, 10) == 0 ? -1 : 10;
                int cpus = 6 * (int)rnd(&seed, 3); /* CPUs and memory that bind too */
                int64_t mem = rnd(&seed, 2) ? 256 : rnd(&seed, 2) ? 0 : 20000;
                sched_role_t r = {
                    .name = "main", .instances = tasks, .gpus = g, .cpus = cpus, .memory_mb = mem};
                sched_request_t q = {.job_id = id,
                                     .vc = "default",
                                     .priority = prio,
                                     .gang = rnd(&seed, 3) != 0,
                                     .submit_ms = step,
                                     .roles = &r,
                                     .n_roles = 1};
                for (int m = 0; m < 2; m++)
                    if (sched_submit(s[m], &q, NULL, 0) != PAI_OK)
                        bad++;
            }
        } else if (what < 8 && n_run) { /* some end */
            int k = 1 + (int)rnd(&seed, 4);
            for (int i = 0; i < k && n_run; i++) {
                int at = (int)rnd(&seed, (unsigned)n_run);
                for (int m = 0; m < 2; m++)
                    if (sched_release(s[m], running[at]) != PAI_OK)
                        bad++;
                memcpy(running[at], running[--n_run], sizeof(running[at]));
            }
        } else { /* a pass */
            const sched_decision_t *d[2];
            size_t n[2];
            for (int m = 0; m < 2; m++)
                if (sched_schedule(s[m], step, &d[m], &n[m]) != PAI_OK)
                    bad++;
            same_decisions(d[0], n[0], d[1], n[1], &bad);
            for (size_t i = 0; i < n[0]; i++) {
                if (d[0][i].kind == SCHED_PREEMPT)
                    for (size_t v = 0; v < d[0][i].n_victims; v++)
                        for (int r = 0; r < n_run; r++)
                            if (strcmp(running[r], d[0][i].victims[v]) == 0) {
                                for (int m = 0; m < 2; m++)
                                    if (sched_release(s[m], running[r]) != PAI_OK)
                                        bad++;
                                memcpy(running[r], running[--n_run], sizeof(running[r]));
                                break;
                            }
                bool known = false; /* a job bound task by task binds again */
                for (int r = 0; r < n_run && !known; r++)
                    known = strcmp(running[r], d[0][i].job_id) == 0;
                if (d[0][i].kind == SCHED_BIND && !known && n_run < 4096)
                    snprintf(running[n_run++], sizeof(running[0]), "%s", d[0][i].job_id);
            }
        }
    }
    sched_summary_t a, b;
    sched_summary(s[0], &a);
    sched_summary(s[1], &b);
    CHECK_INT_EQ(bad, 0);
    CHECK(a.tail_passed_over > 1000);
    CHECK_INT_EQ(b.tail_passed_over, 0);
    CHECK_INT_EQ(a.waiting_jobs, b.waiting_jobs);
    sched_free(s[0]);
    sched_free(s[1]);
}

RUN_TESTS(deep_queue_of_single_tasks_costs_one_attempt_per_pass,
          the_jump_decides_as_the_pass_over_each_entry,
          a_pass_jumps_over_a_run_the_memo_covers_whole, memo_with_more_kinds_than_its_table,
          memo_counts_a_single_tasks_cpus_and_memory,
          a_job_that_can_never_fit_is_refused_in_its_first_pass,
          queue_keeps_pass_order_across_passes)
