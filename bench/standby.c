/*
 * bench/standby.c - what a standby's view of the store costs to build, and
 * where the time goes (docs/benchmarks.md, "Standbys and lost machines").
 *
 *   build/bench/standby --url postgres://... [--jobs N] [--rounds R]
 *
 * Fills the store up to N waiting jobs (one submitted through the engine,
 * the rest copies of its records made in SQL, so filling 100,000 takes
 * seconds), then times, R rounds each:
 *   read:    the records a view's restore reads (every job, every node),
 *            streamed from the store into a callback that does nothing;
 *   decode:  the same job records, held in memory, parsed and decoded
 *            (json_loads + codec_job_decode), no store, no engine;
 *   restore: a whole read-only engine built from the store (engine_new,
 *            read_only: what a standby's view rebuild runs for the jobs);
 *   changes: store_changes from a point taken before the round (nothing
 *            changed: the fixed cost of asking), then after K jobs were
 *            rewritten (K = N / 100).
 * The store's URL must name a database the bench may fill (it adds
 * records "bench~*" and leaves them).
 */
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "engine/codec.h"
#include "engine/engine.h"
#include "engine/lifecycle.h"
#include "store/store.h"

typedef struct {
    char **texts;
    size_t n, cap;
} texts_t;

static int count_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)key, (void)seq, (void)json;
    (*(long *)ud)++;
    return 0;
}

static int keep_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    texts_t *t = ud;
    (void)key, (void)seq;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->texts = xrealloc(t->texts, t->cap * sizeof(*t->texts));
    }
    t->texts[t->n++] = xstrdup(json);
    return 0;
}

static int change_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    (void)kind, (void)key, (void)seq, (void)json;
    (*(long *)ud)++;
    return 0;
}

static bool sql(const char *url, const char *text)
{
    PGconn *c = PQconnectdb(url);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, text);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "standby bench: %s", PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

static const char *const YAML = "protocolVersion: 2\n"
                                "name: tmpl\n"
                                "type: job\n"
                                "prerequisites:\n"
                                "  - {type: dockerimage, name: img, uri: busybox}\n"
                                "taskRoles:\n"
                                "  worker:\n"
                                "    instances: 1\n"
                                "    dockerImage: img\n"
                                "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 256}\n"
                                "    commands:\n"
                                "      - sleep 600\n"
                                "defaults:\n"
                                "  virtualCluster: default\n";

static engine_t *engine_open(store_t *st, bool read_only)
{
    engine_opts_t o = {.starvation_ms = -1, .no_threads = true, .read_only = read_only};
    engine_t *e = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    if (engine_new(st, &o, NULL, &e, &err) != PAI_OK) {
        fprintf(stderr, "standby bench: engine_new: %s\n", pai_error_msg(&err));
        pai_error_free(&err);
        return NULL;
    }
    return e;
}

/* Up to n jobs: the template through the engine, copies in SQL. */
static bool fill(const char *url, store_t *st, long n)
{
    long have = 0;
    if (store_scan(st, "job", count_cb, &have) != PAI_OK)
        return false;
    if (have >= n)
        return true;
    if (have == 0) {
        engine_t *e = engine_open(st, false);
        char *name = NULL;
        pai_error_t err = PAI_ERROR_INIT;
        bool ok = e && engine_submit(e, "bench", YAML, strlen(YAML), &name, &err) == PAI_OK;
        if (!ok && e)
            fprintf(stderr, "standby bench: submit: %s\n", pai_error_msg(&err));
        pai_error_free(&err);
        free(name);
        engine_free(e);
        if (!ok)
            return false;
        have = 1;
    }
    char *q = str_printf("INSERT INTO pai_records (kind, key, seq, json)"
                         " SELECT kind, replace(key, 'bench~tmpl', 'bench~t' || i), seq + i,"
                         " replace(json, 'tmpl', 't' || i) FROM pai_records,"
                         " generate_series(%ld, %ld) i"
                         " WHERE key = 'bench~tmpl' OR key LIKE 'bench~tmpl/%%'",
                         have, n - 1);
    bool ok = sql(url, q);
    free(q);
    return ok;
}

/* This thread's CPU time, in microseconds: the machine may be shared, so
 * wall-clock figures include waits for a CPU; both are printed. */
static int64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t cpu0;

static double ms_since(int64_t t0)
{
    return (double)(time_mono_us() - t0) / 1000.0;
}

static double cpu_ms(void)
{
    return (double)(cpu_us() - cpu0) / 1000.0;
}

#define START() (cpu0 = cpu_us(), time_mono_us())

static void round_once(const char *url, store_t *st, long jobs)
{
    int64_t t0 = START();
    long n = 0;
    pai_err_t rc = store_scan(st, "node", count_cb, &n);
    if (rc == PAI_OK)
        rc = store_scan(st, "job", count_cb, &n);
    double read = ms_since(t0), read_cpu = cpu_ms();

    texts_t t = {0};
    if (store_scan(st, "job", keep_cb, &t) != PAI_OK)
        fprintf(stderr, "standby bench: scan failed\n");
    t0 = START();
    for (size_t i = 0; i < t.n; i++) {
        json_t *rec = json_loads(t.texts[i], 0, NULL);
        lc_job_t *job = NULL;
        if (rec && codec_job_decode(rec, &job) == PAI_OK)
            lc_job_free(job);
        json_decref(rec);
    }
    double decode = ms_since(t0), decode_cpu = cpu_ms();
    for (size_t i = 0; i < t.n; i++)
        free(t.texts[i]);
    free(t.texts);

    char *point = NULL;
    if (store_changes(st, NULL, NULL, NULL, &point) != PAI_OK)
        fprintf(stderr, "standby bench: no change point\n");
    t0 = START();
    engine_t *e = engine_open(st, true);
    double restore = ms_since(t0), restore_cpu = cpu_ms();
    engine_free(e);

    long none = 0, some = 0;
    char *next = NULL;
    t0 = START();
    rc = store_changes(st, point, change_cb, &none, &next);
    double ask = ms_since(t0);
    free(point);
    point = next;
    char *q = str_printf("UPDATE pai_records SET json = json WHERE kind = 'job'"
                         " AND key IN (SELECT 'bench~t' || i FROM generate_series(1, %ld) i)",
                         jobs / 100);
    (void)sql(url, q);
    free(q);
    t0 = START();
    next = NULL;
    pai_err_t rc2 = store_changes(st, point, change_cb, &some, &next);
    double changed = ms_since(t0);
    free(point);
    free(next);
    printf("standby view, %ld records: wall (this thread's CPU) ms: read %.0f (%.0f), decode"
           " %.0f (%.0f), restore (engine_new) %.0f (%.0f); changes: none %.1f (%ld, %s), %ld"
           " rewritten %.1f (%ld, %s)\n",
           n, read, read_cpu, decode, decode_cpu, restore, restore_cpu, ask, none, pai_err_msg(rc),
           jobs / 100, changed, some, pai_err_msg(rc2));
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    int64_t jobs = 10000, rounds = 3;
    bool bad = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--url") == 0)
            url = argv[i + 1];
        else if (strcmp(argv[i], "--jobs") == 0)
            bad |= str_to_i64(argv[i + 1], 1, 10000000, &jobs) != PAI_OK;
        else if (strcmp(argv[i], "--rounds") == 0)
            bad |= str_to_i64(argv[i + 1], 1, 1000, &rounds) != PAI_OK;
        else
            bad = true;
    }
    if (!url || bad) {
        fprintf(stderr, "usage: %s --url postgres://... [--jobs N] [--rounds R]\n", argv[0]);
        return 2;
    }
    util_alloc_init();
    store_t *st = NULL;
    char err[512];
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK) {
        fprintf(stderr, "standby bench: %s\n", err);
        return 1;
    }
    if (!fill(url, st, (long)jobs)) {
        store_close(st);
        return 1;
    }
    for (int64_t r = 0; r < rounds; r++)
        round_once(url, st, (long)jobs);
    store_close(st);
    return 0;
}
