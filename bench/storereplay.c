/*
 * bench/storereplay.c - the store's CPU per job for the writes of a
 * bench-e2e burst, without the rest of the server: one thread commits, in
 * the order a burst makes them, the records a one-task job's life writes.
 *
 *   build/bench/storereplay [--jobs N] [--dir DIR] [--rounds R] [--keep 1]
 *
 * The pattern (measured in a `MIX=mix` bench-e2e run of main 5eaf33f, per
 * job: ~7.3 statements, 0.52 commits; docs/benchmarks-history.md, "The server's
 * share, twelfth round"): a submission commit of SUB jobs writes each one's
 * "job" (INSERT, ~520 bytes), "jobcfg" (INSERT, ~410), "jobcmd" (PUT, ~100)
 * and its first event (PUT, ~220); a sync commit LAG jobs behind rewrites
 * the job records of the tasks that started (PUT, same seq, ~880 bytes) and
 * of those that ended (PUT, and an event).  R rounds, each on a fresh store
 * in DIR (default: under /tmp, removed after), print the process's CPU
 * (user + system, getrusage: the store's statements, its WAL writes and
 * fdatasyncs, its checkpoints) per job and per commit.  STOREREPLAY_ALT=
 * NAME=VALUE sets NAME=VALUE in the environment of rounds 1, 2, 5, 6, ...
 * (ABBA) and unsets it in the others, for a variant that a build under
 * test reads from its environment; the means of both come last.  The
 * figures are steadier than bench-e2e's server share (one thread, no
 * network, no scheduler), but they are the store's alone: a change that
 * makes some commits slower can cost the server more in bench-e2e than it
 * saves here (docs/benchmarks-history.md has such a case).  --keep 1: one round
 * stopped once half its jobs are submitted, its store left in DIR as the
 * writer left it, WAL and all (no close, so no last checkpoint): the
 * frames since the WAL last started over (up to ~4,000) for
 * bench/walpages.py to sort by b-tree.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"

#include "benchclean.h"

#define SUB 3  /* jobs a submission commit stores */
#define LAG 64 /* jobs between a submission and its start */

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* A record of about len bytes for job k (JSON-like text, varied). */
static char *text(const char *what, int k, size_t len)
{
    char *t = xmalloc(len + 64);
    int n = snprintf(t, len + 64, "{\"name\":\"admin~b%05d\",\"what\":\"%s\",\"pad\":\"", k, what);
    for (; (size_t)n < len - 2; n++)
        t[n] = (char)('a' + (n * 7 + k) % 26);
    memcpy(t + n, "\"}", 3);
    return t;
}

typedef struct {
    store_op_t ops[64];
    char *texts[64];
    char keys[64][64];
    size_t n;
} batch_t;

static void add(batch_t *b, store_op_kind_t op, const char *kind, const char *key, int64_t seq,
                char *json)
{
    snprintf(b->keys[b->n], sizeof(b->keys[b->n]), "%s", key);
    b->texts[b->n] = json;
    b->ops[b->n] = (store_op_t){op, kind, b->keys[b->n], seq, json};
    b->n++;
}

/* One commit of what b holds; a store that refuses one ends the bench:
 * its figures would leave that work out. */
static void commit(store_t *st, batch_t *b)
{
    if (store_batch(st, b->ops, b->n) != PAI_OK) {
        fprintf(stderr, "storereplay: a commit of %zu records failed\n", b->n);
        exit(1);
    }
    for (size_t i = 0; i < b->n; i++)
        free(b->texts[i]);
    b->n = 0;
}

static void job_key(char *k, size_t len, int j)
{
    snprintf(k, len, "admin~b%05d", j);
}

static void event(batch_t *b, int j, int num)
{
    char k[64];
    snprintf(k, sizeof(k), "admin~b%05d/%010d", j, num);
    add(b, STORE_OP_PUT, "event", k, 1700000000000 + j, text("event", j, 220));
}

static bool keep_; /* --keep 1 */

/* One round: njobs jobs' records; the CPU seconds it took; commits in *nc. */
static double round_run(const char *dir, int njobs, long *nc)
{
    char url[512], err[256];
    snprintf(url, sizeof(url), "sqlite:%s/pai.db", dir);
    store_t *st;
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK) {
        fprintf(stderr, "storereplay: %s\n", err);
        exit(1);
    }
    batch_t *b = xcalloc(1, sizeof(*b));
    char k[64];
    double t0 = cpu_s();
    *nc = 0;
    int started = 0, ended = 0;
    for (int s = 0; (s < njobs || ended < njobs) && !(keep_ && s >= njobs / 2);) {
        for (int i = 0; i < SUB && s < njobs; i++, s++) {
            job_key(k, sizeof(k), s);
            add(b, STORE_OP_INSERT, "job", k, s, text("job", s, 520));
            add(b, STORE_OP_INSERT, "jobcfg", k, s, text("jobcfg", s, 410));
            add(b, STORE_OP_PUT, "jobcmd", k, s, text("jobcmd", s, 100));
            event(b, s, 0);
        }
        if (b->n) {
            commit(st, b);
            (*nc)++;
        }
        /* the sync: starts LAG behind the submissions, ends LAG behind those */
        for (int i = 0; i < SUB && started < njobs && (started < s - LAG || s >= njobs); i++) {
            job_key(k, sizeof(k), started);
            add(b, STORE_OP_PUT, "job", k, started, text("running", started, 880));
            started++;
        }
        for (int i = 0; i < SUB && ended < started && (ended < started - LAG / 2 || s >= njobs);
             i++) {
            job_key(k, sizeof(k), ended);
            add(b, STORE_OP_PUT, "job", k, ended, text("ended", ended, 880));
            event(b, ended, 1);
            ended++;
        }
        if (b->n) {
            commit(st, b);
            (*nc)++;
        }
    }
    double t = cpu_s() - t0;
    free(b);
    if (keep_) { /* the WAL as the last commit left it */
        printf("kept: %s\n", dir);
        fflush(stdout);
        _exit(0);
    }
    store_close(st);
    return t;
}

int main(int argc, char **argv)
{
    int njobs = 2000, rounds = 6, keep = 0;
    const char *dir = NULL;
    bool ok = true;
    int i = 1;
    for (; ok && i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            ok = false;
        else if (!strcmp(argv[i], "--jobs"))
            ok = str_to_int(v, 1, 10000000, &njobs) == PAI_OK;
        else if (!strcmp(argv[i], "--rounds"))
            ok = str_to_int(v, 1, 10000, &rounds) == PAI_OK;
        else if (!strcmp(argv[i], "--keep"))
            ok = str_to_int(v, 0, 1, &keep) == PAI_OK;
        else if (!strcmp(argv[i], "--dir"))
            dir = v;
        else
            ok = false;
    }
    if (!ok) {
        fprintf(stderr, "storereplay: %s: an unknown option or a bad or missing value\n",
                argv[i - 2]);
        fprintf(stderr, "usage: %s [--jobs N] [--dir DIR] [--rounds R] [--keep 0|1]\n", argv[0]);
        return 2;
    }
    keep_ = keep;
    const char *alt = getenv("STOREREPLAY_ALT");
    char *altname = alt ? xstrdup(alt) : NULL, *altval = NULL;
    if (altname && (altval = strchr(altname, '=')))
        *altval++ = '\0';
    char base[256];
    snprintf(base, sizeof(base), "%s/storereplay.XXXXXX", dir ? dir : "/tmp");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    bench_clean_dir(base);
    double sum[2] = {0, 0};
    int cnt[2] = {0, 0};
    for (int r = 0; r < rounds; r++) {
        int variant = altval && (r % 4 == 1 || r % 4 == 2); /* ABBA */
        if (variant)
            setenv(altname, altval, 1);
        else if (altname)
            unsetenv(altname);
        char d[300];
        snprintf(d, sizeof(d), "%s/r%d", base, r);
        mkdir(d, 0700);
        long nc;
        double t = round_run(d, njobs, &nc);
        sum[variant] += t;
        cnt[variant]++;
        printf("round %d %s: %.1f us a job, %.1f us a commit (%.2f commits a job)\n", r,
               variant ? alt : "default", t * 1e6 / njobs, t * 1e6 / (double)nc,
               (double)nc / njobs);
        fflush(stdout);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
        if (system(cmd) != 0)
            fprintf(stderr, "storereplay: cannot remove %s\n", d);
    }
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) == 0)
        bench_clean_dir_gone(base);
    for (int v = 0; v < 2; v++)
        if (cnt[v])
            printf("mean %s: %.1f us a job (%d rounds)\n", v ? alt : "default",
                   sum[v] * 1e6 / njobs / cnt[v], cnt[v]);
    free(altname);
    return 0;
}
