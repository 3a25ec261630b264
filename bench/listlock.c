/*
 * bench/listlock.c - how long a job list holds the engine lock, in process:
 * an engine (the unit tests' rig: fake clock, no threads, SQLite in
 * /dev/shm) with --jobs jobs (1 GPU each, one 8-GPU node: 8 run, the rest
 * wait), then lists of 50,000, 5,000 and 50 jobs in submission order and
 * of 50,000 by name, three times each: the whole call's time and the part
 * under the engine lock (until engine_ops_t.list_unlocked is called:
 * src/engine/joblist.c).  The first list builds the jobs' rows; the next
 * ones reuse them.
 *
 *   build/bench/listlock [--jobs 100000]
 */
#include <time.h>

#include "../tests/unit/engine_fixture.h"

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

static void one_list(rig_t *r, const char *order, int64_t limit)
{
    engine_filter_t f = {.order = order, .limit = limit};
    json_t *out = NULL;
    t_unlocked = 0;
    double t0 = now_s();
    if (engine_list(r->e, &f, &out, NULL) != PAI_OK) {
        fprintf(stderr, "listlock: the list failed\n");
        exit(1);
    }
    double t1 = now_s();
    printf("listlock: %-14s limit %-6lld %6zu rows: %8.2f ms in all, %7.2f ms under the lock\n",
           order ? order : "submission", (long long)limit, json_array_size(out), (t1 - t0) * 1e3,
           ((t_unlocked ? t_unlocked : t1) - t0) * 1e3);
    json_decref(out);
}

int main(int argc, char **argv)
{
    util_alloc_init();
    int n = 100000;
    if (argc == 3 && strcmp(argv[1], "--jobs") == 0) {
        if (str_to_int(argv[2], 1, 10000000, &n) != PAI_OK)
            return 2;
    } else if (argc != 1) {
        fprintf(stderr, "usage: listlock [--jobs N]\n");
        return 2;
    }
    rig_t r;
    memset(&r, 0, sizeof r);
    r.now = T0_MS;
    snprintf(r.dir, sizeof r.dir, "/dev/shm/pai-listlock-XXXXXX");
    char url[128], err[256] = "";
    if (!mkdtemp(r.dir))
        return 1;
    snprintf(url, sizeof url, "sqlite:%s/pai.db", r.dir);
    if (store_open(url, &r.st, err, sizeof err) != PAI_OK || !rig_start(&r)) {
        fprintf(stderr, "listlock: cannot open the engine: %s\n", err);
        return 1;
    }
    log_set_level(LOG_ERROR);
    if (!fill(&r, n))
        return 1;
    r.e->ops.list_unlocked = unlocked;
    static const int64_t limits[] = {50000, 5000, 50};
    for (size_t i = 0; i < ARRAY_LEN(limits); i++)
        for (int rep = 0; rep < 3; rep++)
            one_list(&r, NULL, limits[i]);
    for (int rep = 0; rep < 3; rep++)
        one_list(&r, "jobName,ASC", 50000);
    rig_close(&r);
    return 0;
}
