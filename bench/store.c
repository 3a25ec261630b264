/*
 * bench/store.c - durable inserts per second into the SQLite store, with 1
 * and with N concurrent writers (group commit shares fsyncs between them).
 *
 *   build/bench/store [--writers N] [--seconds S] [--dir DIR] [--url URL]
 *
 * Each writer inserts small JSON records ("job" kind, unique keys) one call
 * at a time, as the REST API does per acknowledged request.  The store is
 * created in DIR (default: a fresh directory under /tmp, removed after).
 * --url benchmarks another store instead, e.g. a PostgreSQL database
 * (`make bench-store-pg` starts a private cluster for it).
 *
 * The yardstick, measured in the same run (before and after, averaged) for
 * a SQLite store: bare durable appends/s in the same directory (write of a
 * record of the same size + fdatasync, one writer), the most a store with
 * one sync per commit can reach on this disk at this moment.  The ratios
 * come first: about 1 for one writer means a sync per insert and nothing
 * more; above 1 with N writers is what group commit shares.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"

#include "benchclean.h"

typedef struct {
    store_t *st;
    int id;
    int64_t until_us;
    long done;
    long failed;
} writer_t;

static const char *const record = "{\"name\":\"bench\",\"state\":\"WAITING\",\"vc\":\"default\","
                                  "\"submissionTime\":1700000000000,\"retries\":0}";

static void *writer_main(void *p)
{
    writer_t *w = p;
    char key[64];
    while (time_mono_us() < w->until_us) {
        snprintf(key, sizeof(key), "bench~w%d-%ld", w->id, w->done + w->failed);
        if (store_insert(w->st, "job", key, w->done, record) == PAI_OK)
            w->done++;
        else
            w->failed++;
    }
    return NULL;
}

static double run(store_t *st, int nwriters, double seconds, long *failed)
{
    writer_t *w = xcalloc((size_t)nwriters, sizeof(*w));
    pthread_t *th = xcalloc((size_t)nwriters, sizeof(*th));
    static int round;
    int64_t t0 = time_mono_us();
    for (int i = 0; i < nwriters; i++) {
        w[i] = (writer_t){st, i + 1000 * ++round, t0 + (int64_t)(seconds * 1e6), 0, 0};
        pthread_create(&th[i], NULL, writer_main, &w[i]);
    }
    long total = 0;
    *failed = 0;
    for (int i = 0; i < nwriters; i++) {
        pthread_join(th[i], NULL);
        total += w[i].done;
        *failed += w[i].failed;
    }
    double el = (double)(time_mono_us() - t0) / 1e6;
    free(w);
    free(th);
    return (double)total / el;
}

/* Bare durable appends/s of the record to a file in dir (write + fdatasync). */
static double bare_syncs(const char *dir, double seconds)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/bare-sync.bench", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;
    long n = 0;
    int64_t t0 = time_mono_us(), until = t0 + (int64_t)(seconds * 1e6);
    while (time_mono_us() < until && write(fd, record, strlen(record)) > 0 && fdatasync(fd) == 0)
        n++;
    double el = (double)(time_mono_us() - t0) / 1e6;
    close(fd);
    unlink(p);
    return (double)n / el;
}

int main(int argc, char **argv)
{
    util_alloc_init(); /* allocation failures abort (common/util.h) */
    util_alloc_init();
    int writers = 16;
    double seconds = 3;
    char dir[512] = "", url[600] = "";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--writers") == 0 && str_to_int(argv[i + 1], 1, 1024, &writers) == 0)
            continue;
        if (strcmp(argv[i], "--seconds") == 0) {
            int s;
            if (str_to_int(argv[i + 1], 1, 600, &s) == PAI_OK)
                seconds = s;
            continue;
        }
        if (strcmp(argv[i], "--url") == 0) {
            str_copy(url, argv[i + 1], sizeof(url));
            continue;
        }
        if (strcmp(argv[i], "--dir") == 0) {
            str_copy(dir, argv[i + 1], sizeof(dir));
            continue;
        }
        fprintf(stderr, "usage: %s [--writers N] [--seconds S] [--dir DIR] [--url URL]\n", argv[0]);
        return 2;
    }
    bool tmp = !*dir && !*url;
    if (tmp) {
        char t[] = "/tmp/pai-bench-store-XXXXXX";
        if (!mkdtemp(t)) {
            perror("mkdtemp");
            return 1;
        }
        str_copy(dir, t, sizeof(dir));
        bench_clean_dir(dir); /* removed also if a signal ends the bench */
    }
    char err[512];
    if (!*url)
        snprintf(url, sizeof(url), "sqlite:%s/bench.db", dir);
    store_t *st = NULL;
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK) {
        fprintf(stderr, "bench/store: %s\n", err);
        return 1;
    }
    long f1, fn;
    bool sqlite = *dir != '\0' && strncmp(url, "sqlite:", 7) == 0;
    double bare0 = sqlite ? bare_syncs(dir, seconds / 2) : 0;
    double one = run(st, 1, seconds, &f1);
    double many = run(st, writers, seconds, &fn);
    double bare1 = sqlite ? bare_syncs(dir, seconds / 2) : 0;
    double bare = (bare0 + bare1) / 2;
    if (bare > 0) {
        printf("store: ratio, 1 writer:    %8.2f (inserts/s / bare durable appends/s)\n",
               one / bare);
        printf("store: ratio, %d writers: %8.2f\n", writers, many / bare);
        printf("store: bare durable appends/s: %8.0f (write + fdatasync in the same dir, 1 "
               "writer; before %.0f, after %.0f)\n",
               bare, bare0, bare1);
    }
    printf("store: durable inserts/s, 1 writer:   %8.0f (fsync per insert)\n", one);
    printf("store: durable inserts/s, %d writers: %8.0f (group commit)\n", writers, many);
    if (f1 || fn)
        printf("store: %ld failed inserts\n", f1 + fn);
    store_close(st);
    if (tmp) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench/store: could not remove %s\n", dir);
        bench_clean_dir_gone(dir);
    }
    return f1 || fn ? 1 : 0;
}
