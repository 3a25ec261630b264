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
 *   usage: bench/sched [--nodes N] [--quick]
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

int main(int argc, char **argv)
{
    util_alloc_init(); /* allocation failures abort (common/util.h) */
    util_alloc_init();
    bool quick = false;
    int only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            quick = true;
        else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
            only = (int)strtol(argv[++i], NULL, 10);
    }
    static const int sizes[] = {1000, 10000};
    static const double occs[] = {0.5, 0.9};
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < 2; k++)
            if ((!only || only == sizes[i]) && run(sizes[i], occs[k], quick) != 0)
                return 1;
    return 0;
}
