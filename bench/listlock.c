/*
 * bench/listlock.c - how long a job list holds the engine lock, in process:
 * an engine (the unit tests' rig: fake clock, no threads, SQLite in
 * /dev/shm) with --jobs jobs (1 GPU each, one 8-GPU node: 8 run, the rest
 * wait), then lists of 50,000, 5,000 and 50 jobs in submission order, by
 * name and by state, three times each: the whole call's time and the part
 * under the engine lock (until engine_ops_t.list_unlocked is called:
 * src/engine/joblist.c).  The first list builds the jobs' rows; the next
 * ones reuse them.
 *
 * With --nodes N, the metrics history's read instead (engine_usage,
 * src/engine/usage.c): N nodes of 8 GPUs reporting utilization, --jobs
 * jobs of 1 GPU, as many running as fit; three reads, the whole call and
 * the part under the lock.
 *
 *   build/bench/listlock [--jobs 100000] [--nodes 10000]
 *
 * PAI_BENCH_LOCK=/tmp/pai-bench.lock takes that lock after the fill, for
 * the measurements only (run it so, not under flock(1) as well: the two
 * would wait on each other).
 */
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>

#include "../tests/unit/engine_fixture.h"
#include "benchclean.h"

static double t_unlocked;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void unlocked(void *ud)
{
    (void)ud;
    t_unlocked = now_s();
}

static bool fill(rig_t *r, int n)
{
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 8};
    sync_quiet(r, &a, NULL);
    agent_free(&a);
    for (int k = 0; k < n; k++) {
        char name[32];
        snprintf(name, sizeof name, "j%07d", k);
        if (!submit(r, name, 1, 0))
            return false;
        if (k % 1000 == 999)
            tick(r); /* the timer's flush */
    }
    tick(r);
    return true;
}

/* nodes agents of 8 GPUs, n jobs of 1 GPU, those placed brought to running. */
static bool fill_nodes(rig_t *r, int nodes, int n)
{
    agent_t *a = xcalloc((size_t)nodes, sizeof(*a));
    char(*names)[2][32] = xcalloc((size_t)nodes, sizeof(*names));
    for (int k = 0; k < nodes; k++) {
        snprintf(names[k][0], sizeof names[k][0], "node-%05d", k);
        snprintf(names[k][1], sizeof names[k][1], "10.%d.%d.%d", k >> 16, (k >> 8) & 255, k & 255);
        a[k] = (agent_t){
            .name = names[k][0], .address = names[k][1], .ngpus = 8, .util = 40, .has_util = true};
        sync_quiet(r, &a[k], NULL);
    }
    for (int k = 0; k < n; k++) {
        char name[32];
        snprintf(name, sizeof name, "j%07d", k);
        if (!submit(r, name, 1, 0))
            return false;
        if (k % 1000 == 999)
            tick(r);
    }
    tick(r);
    size_t running = 0;
    for (int k = 0; k < nodes; k++) {
        sync_quiet(r, &a[k], NULL);
        json_t *rep = json_array();
        for (size_t i = 0; i < ndesired(&a[k]); i++)
            json_array_append_new(rep, report(desired_id(&a[k], i), "running", 0));
        running += ndesired(&a[k]);
        sync_quiet(r, &a[k], rep);
        agent_free(&a[k]);
    }
    printf("listlock: %d nodes, %d jobs, %zu tasks running\n", nodes, n, running);
    free(a);
    free(names);
    return true;
}

static void one_usage(rig_t *r)
{
    engine_usage_t u;
    t_unlocked = 0;
    double t0 = now_s();
    engine_usage(r->e, &u);
    double t1 = now_s();
    printf("listlock: usage %5zu nodes %6zu jobs: %8.2f ms in all, %7.2f ms under the lock\n",
           u.nnodes, u.njobs, (t1 - t0) * 1e3, ((t_unlocked ? t_unlocked : t1) - t0) * 1e3);
    engine_usage_free(&u);
}

/* $PAI_BENCH_LOCK (a file, e.g. /tmp/pai-bench.lock): held for the
 * measurements only, not for the fill, which is long at 10,000 nodes. */
static void bench_lock(void)
{
    const char *path = getenv("PAI_BENCH_LOCK");
    int fd = path && *path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    if (fd >= 0 && flock(fd, LOCK_EX) == 0)
        printf("listlock: holding %s for the measurements\n", path);
    fflush(stdout); /* the fd stays open (and the lock held) until exit */
}

static bool one_list(rig_t *r, const char *order, int64_t limit)
{
    engine_filter_t f = {.order = order, .limit = limit};
    json_t *out = NULL;
    t_unlocked = 0;
    double t0 = now_s();
    if (engine_list(r->e, &f, &out, NULL) != PAI_OK) {
        fprintf(stderr, "listlock: the list failed\n");
        return false;
    }
    double t1 = now_s();
    printf("listlock: %-14s limit %-6lld %6zu rows: %8.2f ms in all, %7.2f ms under the lock\n",
           order ? order : "submission", (long long)limit, json_array_size(out), (t1 - t0) * 1e3,
           ((t_unlocked ? t_unlocked : t1) - t0) * 1e3);
    json_decref(out);
    return true;
}

/* The usage reads (--nodes). */
static bool usage_run(rig_t *r, int nodes, int n)
{
    if (!fill_nodes(r, nodes, n))
        return false;
    bench_lock();
    r->e->ops.list_unlocked = unlocked;
    for (int rep = 0; rep < 3; rep++)
        one_usage(r);
    return true;
}

/* The lists, in each order. */
static bool list_run(rig_t *r, int n)
{
    if (!fill(r, n))
        return false;
    bench_lock();
    r->e->ops.list_unlocked = unlocked;
    static const int64_t limits[] = {50000, 5000, 50};
    static const char *const orders[] = {NULL, "jobName,ASC", "state,DESC"};
    for (size_t o = 0; o < ARRAY_LEN(orders); o++)
        for (size_t i = 0; i < ARRAY_LEN(limits); i++)
            for (int rep = 0; rep < 3; rep++)
                if (!one_list(r, orders[o], limits[i]))
                    return false;
    return true;
}

int main(int argc, char **argv)
{
    util_alloc_init();
    int n = 100000, nodes = 0;
    for (int i = 1; i < argc; i += 2) {
        int *v = strcmp(argv[i], "--jobs") == 0    ? &n
                 : strcmp(argv[i], "--nodes") == 0 ? &nodes
                                                   : NULL;
        if (!v || i + 1 >= argc || str_to_int(argv[i + 1], 1, 10000000, v) != PAI_OK) {
            fprintf(stderr, "usage: listlock [--jobs N] [--nodes N]\n");
            return 2;
        }
    }
    rig_t r;
    memset(&r, 0, sizeof r);
    r.now = T0_MS;
    snprintf(r.dir, sizeof r.dir, "/dev/shm/pai-listlock-XXXXXX");
    char url[128], err[256] = "";
    if (!mkdtemp(r.dir))
        return 1;
    bench_clean_dir(r.dir); /* removed also if a signal ends the bench */
    bool ok = false;
    snprintf(url, sizeof url, "sqlite:%s/pai.db", r.dir);
    if (store_open(url, &r.st, err, sizeof err) != PAI_OK || !rig_start(&r)) {
        fprintf(stderr, "listlock: cannot open the engine: %s\n", err);
    } else {
        log_set_level(LOG_ERROR);
        ok = nodes ? usage_run(&r, nodes, n) : list_run(&r, n);
    }
    rig_close(&r);
    bench_clean_dir_gone(r.dir);
    return ok ? 0 : 1;
}
