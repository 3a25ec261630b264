/*
 * bench/sched.c - scheduler decision latency and memory.
 *
 * For clusters of 1,000 and 10,000 nodes x 8 GPUs (racks of 32 nodes, one VC
 * owning every node) filled to 50% and 90% of GPUs (70% of the fill as
 * whole-node jobs, 30% as 1/2/4-GPU jobs that fragment nodes), it times
 * sched_schedule() deciding one new job alone in the queue:
 *   - a 1-GPU job (1,000 decisions, each released afterwards);
 *   - a 32-task x 8-GPU gang (50 decisions, each released afterwards).
 * It prints p50/p99/max in microseconds, whether the job bound, and the
 * resident memory the scheduler added for the model and the fill.
 *
 * Then a deep queue, as the server meets it in `make bench-e2e MIX=mix`
 * (--deep: only this): 16 reported nodes x 8 GPUs (node-derived model,
 * 32 CPUs and 64 GB each), quiet waits and a clock as in the server, 2,000
 * one-task jobs of 1,1,1,1,2,2,2,4,4,8 GPUs (1 CPU, 256 MB) queued at once;
 * then passes until the queue is empty, each after 4 running jobs end
 * (oldest first), the queue topped up to 2,000 after each pass until 6,000
 * were submitted.  It prints the mean and p50/p99 pass time over all
 * passes, the jobs bound per pass, the mean queue and a hash of the
 * decisions (to show that a change of the pass decides the same).  Then
 * the same with 16 VCs of one node each, the jobs' VCs in turn: 16 kinds
 * of jobs for the pass's memo.
 *   usage: bench/sched [--nodes N] [--quick] [--deep]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "sched/sched.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int submit(sched_t *s, const char *id, int tasks, int gpus)
{
    sched_role_t r = {.name = "w", .instances = tasks, .gpus = gpus};
    sched_request_t q = {
        .job_id = id, .vc = "a", .priority = 10, .gang = true, .roles = &r, .n_roles = 1};
    return sched_submit(s, &q, NULL, 0) == PAI_OK ? 0 : -1;
}

static int schedule(sched_t *s, int *binds)
{
    const sched_decision_t *d;
    size_t n;
    if (sched_schedule(s, 0, &d, &n) != PAI_OK)
        return -1;
    for (size_t i = 0; i < n; i++)
        *binds += d[i].kind == SCHED_BIND;
    return 0;
}

/* Fill to occ of all GPUs; returns GPUs bound. */
static long fill(sched_t *s, int nodes, double occ)
{
    long target = (long)((double)nodes * 8 * occ), whole = (long)((double)target * 0.7) / 8;
    long used = 0, k = 0;
    char id[32];
    int binds = 0;
    unsigned seed = 12345;
    for (long i = 0; i < whole; i++, k++) {
        snprintf(id, sizeof(id), "fill%ld", k);
        if (submit(s, id, 1, 8) == 0)
            used += 8;
    }
    while (used < target) {
        seed = seed * 1103515245u + 12345u;
        int g = 1 << ((seed >> 16) % 3);
        snprintf(id, sizeof(id), "fill%ld", k++);
        if (submit(s, id, 1, g) == 0)
            used += g;
    }
    schedule(s, &binds);
    return used;
}

static void ignore_rc(pai_err_t rc)
{
    (void)rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void measure(sched_t *s, const char *what, int tasks, int gpus, int reps)
{
    double *t = malloc(sizeof(double) * (size_t)reps);
    int binds = 0;
    char id[32];
    for (int i = 0; t && i < reps; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        if (submit(s, id, tasks, gpus) != 0)
            break;
        double t0 = now_us();
        int before = binds;
        schedule(s, &binds);
        t[i] = now_us() - t0;
        if (binds > before ? sched_release(s, id) != PAI_OK : sched_cancel(s, id) != PAI_OK)
            break;
    }
    if (!t)
        return;
    qsort(t, (size_t)reps, sizeof(double), cmp_d);
    printf("    %-22s p50 %8.1f us  p99 %8.1f us  max %8.1f us  bound %d/%d\n", what, t[reps / 2],
           t[(int)((reps - 1) * 0.99)], t[reps - 1], binds, reps);
    free(t);
}

/* sched_explain() of a waiting gang one node larger than the free GPUs (what a
 * job-detail GET of a waiting job costs the server under its lock). */
static void measure_explain(sched_t *s, int reps)
{
    sched_summary_t sum;
    sched_summary(s, &sum);
    int tasks = (sum.gpus - sum.used_gpus) / 8 + 1, binds = 0;
    double *t = malloc(sizeof(double) * (size_t)reps);
    char buf[SCHED_EXPLAIN_MAX];
    if (!t || submit(s, "explain", tasks, 8) != 0 || schedule(s, &binds) != 0) {
        free(t);
        return;
    }
    for (int i = 0; i < reps; i++) {
        double t0 = now_us();
        if (sched_explain(s, "explain", buf, sizeof(buf)) != PAI_OK)
            buf[0] = 0;
        t[i] = now_us() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_d);
    printf("    %-22s p50 %8.1f us  p99 %8.1f us  (%d x 8-GPU gang waits)\n",
           "explain (detail GET)", t[reps / 2], t[(int)((reps - 1) * 0.99)], tasks);
    ignore_rc(sched_cancel(s, "explain"));
    free(t);
}

static int run(int nodes, double occ, bool quick)
{
    const char *names[] = {"a"};
    int vcn[] = {nodes};
    sched_t *s = NULL;
    char err[256];
    long rss0 = rss_kb();
    double t0 = now_us();
    if (sched_new_uniform(nodes, 8, 32, names, vcn, 1, NULL, &s, err, sizeof(err)) != PAI_OK) {
        fprintf(stderr, "bench/sched: %s\n", err);
        return 1;
    }
    double tb = now_us();
    long used = fill(s, nodes, occ);
    double tf = now_us();
    sched_summary_t sum;
    sched_summary(s, &sum);
    printf("%6d nodes x 8 GPUs, %2.0f%% occupied (%d of %d GPUs bound, %d jobs): build %.0f ms, "
           "fill %.0f ms, RSS +%ld MB\n",
           nodes, occ * 100, sum.used_gpus, sum.gpus, sum.running_jobs, (tb - t0) / 1000,
           (tf - tb) / 1000, (rss_kb() - rss0) / 1024);
    (void)used;
    measure(s, "1-GPU job", 1, 1, quick ? 100 : 1000);
    measure(s, "32 x 8-GPU gang", 32, 8, quick ? 5 : 50);
    measure_explain(s, quick ? 20 : 200);
    sched_free(s);
    return 0;
}

/* ---- a deep queue (the server's burst) -------------------------------- */

static int64_t deep_clock(void *ctx)
{
    (void)ctx;
    return (int64_t)now_us();
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

static int deep_submit(sched_t *s, int k, int vcs)
{
    static const int mix[] = {1, 1, 1, 1, 2, 2, 2, 4, 4, 8};
    char id[32], vc[16] = "default";
    snprintf(id, sizeof(id), "d%05d", k);
    if (vcs > 1)
        snprintf(vc, sizeof(vc), "vc%02d", k % vcs);
    sched_role_t r = {.name = "main",
                      .instances = 1,
                      .gpus = mix[k % (int)(sizeof(mix) / sizeof(mix[0]))],
                      .cpus = 1,
                      .memory_mb = 256};
    sched_request_t q = {.job_id = id,
                         .vc = vc,
                         .priority = 10,
                         .gang = true,
                         .submit_ms = k,
                         .roles = &r,
                         .n_roles = 1};
    return sched_submit(s, &q, NULL, 0) == PAI_OK ? 0 : -1;
}

/* vcs 1: the server's node-derived model; else a uniform cluster of vcs VCs
 * owning 16 / vcs nodes each (kinds of jobs for the memo). */
static sched_t *deep_cluster(int vcs)
{
    sched_opts_t o = {.clock_us = deep_clock, .quiet_waits = true};
    sched_t *s = NULL;
    if (vcs > 1) {
        char names[16][8];
        const char *np[16];
        int nodes[16];
        for (int i = 0; i < vcs && i < 16; i++) {
            snprintf(names[i], sizeof(names[i]), "vc%02d", i);
            np[i] = names[i];
            nodes[i] = 16 / vcs;
        }
        return sched_new_uniform(16, 8, 0, np, nodes, (size_t)vcs, &o, &s, NULL, 0) == PAI_OK
                   ? s
                   : NULL;
    }
    if (sched_new_nodes(&o, &s) != PAI_OK)
        return NULL;
    for (int i = 0; i < 16; i++) {
        char name[16];
        snprintf(name, sizeof(name), "n%02d", i);
        sched_node_t nd = {.name = name,
                           .address = "127.0.0.1",
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

static int run_deep(int vcs)
{
    sched_t *s = deep_cluster(vcs);
    if (!s)
        return 1;
    enum { FIRST = 2000, TOTAL = 6000, ENDS = 4 };
    int submitted = 0, *running = malloc(sizeof(int) * TOTAL), n_run = 0, r0 = 0, binds = 0;
    double *t = malloc(sizeof(double) * TOTAL * 2);
    int passes = 0;
    uint64_t hash = 14695981039346656037u;
    char id[32];
    for (; submitted < FIRST; submitted++)
        if (deep_submit(s, submitted, vcs) != 0)
            return 1;
    double t_all = 0, depth = 0;
    for (;;) {
        const sched_decision_t *d;
        size_t n;
        double t0 = now_us();
        if (sched_schedule(s, passes, &d, &n) != PAI_OK)
            return 1;
        t[passes] = now_us() - t0;
        t_all += t[passes++];
        for (size_t i = 0; i < n; i++) {
            hash = fnv(hash, d[i].job_id, strlen(d[i].job_id) + 1);
            hash = fnv(hash, &d[i].kind, sizeof(d[i].kind));
            for (size_t k = 0; k < d[i].n_tasks; k++) {
                hash = fnv(hash, d[i].tasks[k].node, strlen(d[i].tasks[k].node));
                hash = fnv(hash, d[i].tasks[k].gpus, sizeof(int) * (size_t)d[i].tasks[k].n_gpus);
            }
            if (d[i].kind == SCHED_BIND) {
                running[n_run++] = (int)strtol(d[i].job_id + 1, NULL, 10);
                binds++;
            }
        }
        sched_summary_t sum;
        sched_summary(s, &sum);
        depth += sum.waiting_jobs;
        for (int k = sum.waiting_jobs; k < FIRST && submitted < TOTAL; k++)
            if (deep_submit(s, submitted++, vcs) != 0)
                return 1;
        if ((sum.waiting_jobs == 0 && submitted == TOTAL) || r0 == n_run || passes >= TOTAL * 2)
            break;
        for (int k = 0; k < ENDS && r0 < n_run; k++) {
            snprintf(id, sizeof(id), "d%05d", running[r0++]);
            if (sched_release(s, id) != PAI_OK)
                return 1;
        }
    }
    qsort(t, (size_t)passes, sizeof(double), cmp_d);
    printf("deep queue: 16 nodes x 8 GPUs%s, %d one-task jobs (GPU mix, 1 CPU / 256 MB), a pass "
           "after every %d ends\n",
           vcs > 1 ? " in 16 VCs of one node (16 kinds of jobs)" : "", submitted, ENDS);
    printf("    %-22s mean %6.1f us  p50 %8.1f us  p99 %8.1f us  passes %d, %d bound (%.1f per "
           "pass), mean queue %.0f\n",
           "pass", t_all / passes, t[passes / 2], t[(int)((passes - 1) * 0.99)], passes, binds,
           (double)binds / passes, depth / passes);
    printf("    decisions' hash %016llx (the same decisions give the same hash)\n",
           (unsigned long long)hash);
    free(t);
    free(running);
    sched_free(s);
    return 0;
}

int main(int argc, char **argv)
{
    util_alloc_init(); /* allocation failures abort (common/util.h) */
    util_alloc_init();
    bool quick = false, deep = false;
    int only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--deep") == 0)
            deep = true;
        else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
            only = (int)strtol(argv[++i], NULL, 10);
    }
    if (deep)
        return run_deep(1) || run_deep(16);
    static const int sizes[] = {1000, 10000};
    static const double occs[] = {0.5, 0.9};
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < 2; k++)
            if ((!only || only == sizes[i]) && run(sizes[i], occs[k], quick) != 0)
                return 1;
    return only ? 0 : run_deep(1) || run_deep(16);
}
