/*
 * bench/submit.c - bench/e2e's load generator: posts job YAMLs to a
 * `pai server` from a few keep-alive connections, one thread each.
 *
 *   build/bench/submit --url http://127.0.0.1:PORT --token TOKEN
 *                      [--threads 4] [--rate JOBS_PER_S] < bodies
 *
 * The bodies come on stdin, each ended by a NUL byte (bench/e2e.py writes
 * them: the YAML is the tests' own, tests/blackbox/e2etest.py).  Thread i
 * posts bodies [i*n/threads, (i+1)*n/threads) in order, as bench/e2e.py's
 * Python threads did; with --rate, thread i's k-th post waits until
 * k*threads/rate seconds after the start (a steady stream in all).
 * Prints "ok N" and "bad M" on stdout, and the first answers that were
 * not 202 Accepted on stderr.
 *
 * Why C: a Python client cost ~0.17 ms of CPU per job on the 2-vCPU VM
 * (docs/benchmarks-history.md, "Where it stands at the end of the seventh
 * round"), about a tenth of a bare process start, taken from the same two
 * cores as the cluster it measures.  This one is libcurl, as bench/api is.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"

#define MAX_THREADS 64
#define BODIES_MAX  (256u << 20) /* bodies in all */
#define SHOW_ERRORS 10

typedef struct {
    const char *url, *authz;
    char **bodies;
    size_t first, count;
    int threads;
    double rate;
    struct timespec t0;
    long ok, bad;
} worker_t;

static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static int nerrors;

/* An answer's first bytes, kept to show a failure. */
typedef struct {
    char text[512];
    size_t len;
} answer_t;

static size_t keep(char *p, size_t sz, size_t n, void *ud)
{
    answer_t *a = ud;
    size_t len = sz * n, room = sizeof(a->text) - 1 - a->len;
    size_t k = len < room ? len : room;
    memcpy(a->text + a->len, p, k);
    a->len += k;
    a->text[a->len] = '\0';
    return len;
}

static void wait_until(const struct timespec *t0, double after_s)
{
    struct timespec at = *t0;
    long long ns = (long long)(after_s * 1e9) + at.tv_nsec;
    at.tv_sec += (time_t)(ns / 1000000000LL);
    at.tv_nsec = (long)(ns % 1000000000LL);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) != 0)
        ;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    CURL *h = curl_easy_init();
    if (!h) {
        w->bad += (long)w->count;
        return NULL;
    }
    struct curl_slist *hdr = curl_slist_append(NULL, w->authz);
    hdr = curl_slist_append(hdr, "Content-Type: text/yaml");
    hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
    answer_t ans;
    curl_easy_setopt(h, CURLOPT_URL, w->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    for (size_t k = 0; k < w->count; k++) {
        if (w->rate > 0)
            wait_until(&w->t0, (double)k * w->threads / w->rate);
        ans.len = 0;
        ans.text[0] = '\0';
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, w->bodies[w->first + k]);
        long code = 0;
        CURLcode rc = curl_easy_perform(h);
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (code == 202) {
            w->ok++;
            continue;
        }
        w->bad++;
        pthread_mutex_lock(&err_mu);
        if (nerrors++ < SHOW_ERRORS)
            fprintf(stderr, "submit: job %zu: %s %ld %s\n", w->first + k,
                    rc == CURLE_OK ? "status" : curl_easy_strerror(rc), code, ans.text);
        pthread_mutex_unlock(&err_mu);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

/* stdin, whole, its NUL-ended bodies into *out (pointers into *buf). */
static size_t read_bodies(char **buf, char ***out)
{
    size_t len = 0, cap = 1 << 20;
    char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) {
            if (cap >= BODIES_MAX) {
                fprintf(stderr, "submit: more than %u bytes of bodies\n", BODIES_MAX);
                exit(2);
            }
            char *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    if (!b) {
        fprintf(stderr, "submit: out of memory\n");
        exit(2);
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += b[i] == '\0';
    char **v = calloc(n ? n : 1, sizeof(*v));
    if (!v) {
        fprintf(stderr, "submit: out of memory\n");
        exit(2);
    }
    for (size_t i = 0, s = 0, k = 0; i < len; i++)
        if (b[i] == '\0') {
            v[k++] = b + s;
            s = i + 1;
        }
    *buf = b;
    *out = v;
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: submit --url URL --token TOKEN [--threads N] [--rate JOBS_PER_S]"
                    " < NUL-ended bodies\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *token = NULL;
    int threads = 4;
    double rate = 0;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (!strcmp(argv[i], "--url"))
            url = argv[++i];
        else if (!strcmp(argv[i], "--token"))
            token = argv[++i];
        else if (!strcmp(argv[i], "--threads")) {
            if (str_to_int(argv[++i], 1, MAX_THREADS, &threads) != PAI_OK)
                usage();
        } else if (!strcmp(argv[i], "--rate")) {
            char *end;
            errno = 0;
            rate = strtod(argv[++i], &end);
            if (errno || end == argv[i] || *end || !(rate >= 0 && rate <= 1e9))
                usage();
        } else
            usage();
    }
    if (!url || !token || threads < 1 || threads > MAX_THREADS || rate < 0)
        usage();
    char *buf, **bodies;
    size_t n = read_bodies(&buf, &bodies);
    char authz[1024], post[1024];
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
    snprintf(post, sizeof post, "%s/api/v2/jobs", url);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    worker_t w[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++) {
        size_t lo = n * (size_t)i / (size_t)threads, hi = n * (size_t)(i + 1) / (size_t)threads;
        w[i] = (worker_t){.url = post,
                          .authz = authz,
                          .bodies = bodies,
                          .first = lo,
                          .count = hi - lo,
                          .threads = threads,
                          .rate = rate,
                          .t0 = t0};
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "submit: cannot start a thread\n");
            return 2;
        }
    }
    long ok = 0, bad = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        bad += w[i].bad;
    }
    printf("ok %ld\nbad %ld\n", ok, bad);
    curl_global_cleanup();
    free(bodies);
    free(buf);
    return bad ? 1 : 0;
}
