/*
 * bench/api.c - the job API under load, against a real `pai server`:
 *
 *   1. durable submissions/s with 1 client, then with 16 concurrent clients
 *      (each 202 means the job is committed to the store, fsync included);
 *   2. job-detail GETs/s (16 keep-alive clients, random existing jobs);
 *   3. listing 10,000 jobs (GET /api/v2/jobs?limit=10000): ms per listing;
 *   4. the server's RSS once 100,000 jobs are stored.
 *
 *   build/bench/api --pai build/pai [--jobs 100000] [--seconds 5] [--store URL]
 *
 * --store postgres://...: the server keeps its store there ($PAI_STORE)
 * instead of SQLite in its data dir (use an empty database).
 *
 * It starts its own server (fresh data dir, free port), registers one fake
 * node of 8 GPUs through the agent protocol so that jobs are accepted and
 * wait in the scheduler's queue, and stops the server at the end.  Jobs
 * beyond the throughput phases are submitted and stopped right away (a
 * store of mostly finished jobs, as real clusters have); the RSS is printed
 * both with every job waiting (after the throughput phases) and at 100k.
 * Load generator: libcurl, one thread per client, keep-alive, on the same
 * 2-core machine as the server, so the figures are what both get together.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchsrv.h"
#include "common/util.h"

/* One keep-alive connection. */
typedef struct {
    CURL *h;
    struct curl_slist *hdr;
    char base[256];
} conn_t;

static void conn_init(conn_t *c, const char *base, const char *authz, const char *ctype)
{
    c->h = curl_easy_init();
    c->hdr = curl_slist_append(NULL, authz);
    if (ctype)
        c->hdr = curl_slist_append(c->hdr, ctype);
    str_copy(c->base, base, sizeof c->base);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdr);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
}

static void conn_free(conn_t *c)
{
    curl_slist_free_all(c->hdr);
    curl_easy_cleanup(c->h);
}

/* method "GET", "POST" or "PUT"; body may be NULL.  Returns the status. */
static long conn_do(conn_t *c, const char *method, const char *path, const char *body, mem_t *out)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    if (body) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    long code = 0;
    if (curl_easy_perform(c->h) != CURLE_OK ||
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
        return -1;
    return code;
}

static char *job_yaml(int n)
{
    return str_printf("protocolVersion: 2\nname: b%d\ntype: job\nprerequisites:\n"
                      "  - {type: dockerimage, name: img, uri: busybox}\ntaskRoles:\n"
                      "  main:\n    instances: 1\n    dockerImage: img\n"
                      "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 1024}\n"
                      "    commands: [\"sleep 60\"]\n",
                      n);
}

/* ---------------------------------------------------------------- phases */

typedef struct {
    const char *base, *authz;
    int first, count; /* job numbers [first, first+count) */
    bool stop_after;  /* STOP each job right after submitting it */
    int64_t until_us; /* GET phase: run until */
    int njobs;        /* GET phase: pick among jobs b(first) to b(first+njobs-1) */
    long ok, bad;
    unsigned seed;
} worker_t;

static void *submit_main(void *arg)
{
    worker_t *w = arg;
    conn_t c, s;
    conn_init(&c, w->base, w->authz, "Content-Type: text/yaml");
    conn_init(&s, w->base, w->authz, "Content-Type: application/json");
    for (int i = w->first; i < w->first + w->count; i++) {
        char *y = job_yaml(i);
        long code = conn_do(&c, "POST", "/api/v2/jobs", y, NULL);
        free(y);
        if (code == 202)
            w->ok++;
        else
            w->bad++;
        if (w->stop_after && code == 202) {
            char path[128];
            snprintf(path, sizeof path, "/api/v2/jobs/admin~b%d/executionType", i);
            if (conn_do(&s, "PUT", path, "{\"value\":\"STOP\"}", NULL) != 202)
                w->bad++;
        }
    }
    conn_free(&c);
    conn_free(&s);
    return NULL;
}

static void *get_main(void *arg)
{
    worker_t *w = arg;
    conn_t c;
    conn_init(&c, w->base, w->authz, NULL);
    while (time_mono_us() < w->until_us) {
        char path[128];
        snprintf(path, sizeof path, "/api/v2/jobs/admin~b%d",
                 w->first + rand_r(&w->seed) % w->njobs);
        if (conn_do(&c, "GET", path, NULL, NULL) == 200)
            w->ok++;
        else
            w->bad++;
    }
    conn_free(&c);
    return NULL;
}

/* Run n workers of fn; returns elapsed seconds; ok/bad summed into ok and bad. */
static double run_workers(worker_t *proto, int n, void *(*fn)(void *), long *ok, long *bad)
{
    worker_t *w = xcalloc((size_t)n, sizeof(*w));
    pthread_t *th = xcalloc((size_t)n, sizeof(*th));
    int per = proto->count / n, extra = proto->count % n, next = proto->first;
    bool get = fn == get_main;
    int64_t t0 = time_mono_us();
    for (int i = 0; i < n; i++) {
        w[i] = *proto;
        w[i].first = get ? proto->first : next;
        w[i].count = per + (i < extra);
        w[i].seed = (unsigned)(i * 7919 + 1);
        next += w[i].count;
        pthread_create(&th[i], NULL, fn, &w[i]);
    }
    *ok = *bad = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        *ok += w[i].ok;
        *bad += w[i].bad;
    }
    double el = (double)(time_mono_us() - t0) / 1e6;
    free(w);
    free(th);
    return el;
}

/* ---------------------------------------------------------------- server */

/* One fake node (8 GPUs) through the agent protocol, so jobs are accepted. */
static bool register_node(const char *base, const char *dir)
{
    char path[512], tok[256] = "";
    snprintf(path, sizeof path, "%s/agent.token", dir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(tok, sizeof tok, f)) {
        if (f)
            fclose(f);
        return false;
    }
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    char authz[300];
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", tok);
    conn_t c;
    conn_init(&c, base, authz, "Content-Type: application/json");
    const char *body =
        "{\"version\":1,\"node\":{\"name\":\"bench-node\",\"address\":\"127.0.0.1\","
        "\"boot_id\":\"b\",\"cpus\":64,\"memory_mb\":512000,\"gpu_model\":\"A100\","
        "\"hollow\":true,\"gpus\":[{\"index\":0},{\"index\":1},{\"index\":2},{\"index\":3},"
        "{\"index\":4},{\"index\":5},{\"index\":6},{\"index\":7}]},\"known_seq\":0,"
        "\"wait_ms\":0,\"tasks\":[]}";
    long code = conn_do(&c, "POST", "/api/v1/agent/sync", body, NULL);
    conn_free(&c);
    return code == 200;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static double list_ms(const char *base, const char *authz, int reps, size_t *bytes)
{
    conn_t c;
    conn_init(&c, base, authz, NULL);
    int64_t t0 = time_mono_us();
    for (int i = 0; i < reps; i++) {
        mem_t m = {0};
        if (conn_do(&c, "GET", "/api/v2/jobs?limit=10000", NULL, &m) != 200)
            fprintf(stderr, "bench/api: list failed\n");
        *bytes = m.len;
        free(m.data);
    }
    conn_free(&c);
    return (double)(time_mono_us() - t0) / 1e3 / reps;
}

/* ---------------------------------------------------------------- main */

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --pai PAI [--jobs N (>= 20000)] [--seconds S] [--waiting yes]\n"
            "  [--store postgres://...]   (default: SQLite in the server's data dir)\n"
            "  --waiting yes: the jobs past the throughput phases stay waiting\n"
            "  (default: each is stopped, a store of mostly finished jobs)\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    util_alloc_init(); /* allocation failures abort (common/util.h) */
    util_alloc_init();
    const char *pai = NULL, *store = NULL;
    int total = 100000, seconds = 5;
    bool keep_waiting = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pai") == 0)
            pai = argv[i + 1];
        else if (strcmp(argv[i], "--store") == 0)
            store = argv[i + 1];
        else if (strcmp(argv[i], "--jobs") == 0 &&
                 str_to_int(argv[i + 1], 20000, 10000000, &total) == PAI_OK)
            continue;
        else if (strcmp(argv[i], "--waiting") == 0 && strcmp(argv[i + 1], "yes") == 0)
            keep_waiting = true;
        else if (strcmp(argv[i], "--seconds") == 0 &&
                 str_to_int(argv[i + 1], 1, 600, &seconds) == PAI_OK)
            continue;
        else
            return usage(argv[0]);
    }
    if (!pai)
        return usage(argv[0]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[] = "/tmp/pai-bench-api-XXXXXX", base[256];
    pid_t pid = -1;
    char *token = NULL;
    int status = 1;
    if (mkdtemp(dir))
        bench_clean_dir(dir); /* removed also if a signal ends the bench */
    else
        dir[0] = '\0';
    static const char *const extra[] = {"--log-level", "error", "--node-lost-timeout-s", "3600",
                                        NULL};
    if (store) /* the store in PostgreSQL (the data dir keeps the agent token) */
        setenv("PAI_STORE", store, 1);
    if (!dir[0] || (pid = bench_server_start(pai, dir, extra, base, sizeof base)) < 0 ||
        !(token = bench_server_login(base)) || !register_node(base, dir)) {
        fprintf(stderr, "bench/api: could not start and prepare %s\n", pai);
        goto out;
    }
    char authz[512];
    snprintf(authz, sizeof authz, "Authorization: Bearer %s", token);
    long ok, bad, bad_total = 0;
    const int n1 = 2000, n16 = 16000;
    worker_t p = {.base = base, .authz = authz, .first = 0, .count = n1};
    double el = run_workers(&p, 1, submit_main, &ok, &bad);
    bad_total += bad;
    printf("api: durable submissions, 1 client:    %7.0f jobs/s (%ld ok, %ld failed)\n",
           (double)ok / el, ok, bad);
    p.first = n1;
    p.count = n16;
    el = run_workers(&p, 16, submit_main, &ok, &bad);
    bad_total += bad;
    printf("api: durable submissions, 16 clients:  %7.0f jobs/s (%ld ok, %ld failed)\n",
           (double)ok / el, ok, bad);
    printf("api: server RSS with %d waiting jobs:   %7.1f MB\n", n1 + n16,
           (double)rss_kb(pid) / 1024);
    worker_t g = {.base = base,
                  .authz = authz,
                  .njobs = n1 + n16,
                  .until_us = time_mono_us() + (int64_t)seconds * 1000000};
    el = run_workers(&g, 16, get_main, &ok, &bad);
    bad_total += bad;
    printf("api: job detail GETs, 16 clients:     %7.0f GETs/s (%ld ok, %ld failed)\n",
           (double)ok / el, ok, bad);
    size_t bytes = 0;
    double ms = list_ms(base, authz, 5, &bytes);
    printf("api: list 10,000 jobs:                 %7.1f ms per listing (%zu bytes)\n", ms, bytes);
    p.first = n1 + n16;
    p.count = total - n1 - n16;
    p.stop_after = !keep_waiting;
    el = run_workers(&p, 16, submit_main, &ok, &bad);
    bad_total += bad;
    printf("api: fill to %d jobs (%s):  %7.0f jobs/s (%ld ok, %ld failed)\n", total,
           keep_waiting ? "all waiting" : "submit + stop", (double)ok / el, ok, bad);
    sleep(1);
    printf("api: server RSS with %d jobs stored:  %7.1f MB\n", total, (double)rss_kb(pid) / 1024);
    ms = list_ms(base, authz, 3, &bytes);
    printf("api: list 10,000 of %d jobs:          %7.1f ms per listing\n", total, ms);
    worker_t f = {.base = base,
                  .authz = authz,
                  .first = n1 + n16,
                  .njobs = total - n1 - n16,
                  .until_us = time_mono_us() + (int64_t)seconds * 1000000};
    el = run_workers(&f, 16, get_main, &ok, &bad);
    bad_total += bad;
    printf("api: %s detail GETs, 16 clients:     %7.0f GETs/s (%ld ok, %ld failed)\n",
           keep_waiting ? "waiting-job" : "finished-job (from the store)", (double)ok / el, ok,
           bad);
    status = bad_total ? 1 : 0;
out:
    bench_server_stop(pid, dir, "bench/api");
    free(token);
    curl_global_cleanup();
    return status;
}
