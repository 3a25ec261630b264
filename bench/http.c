/*
 * bench/http.c - authenticated GETs per second through the whole HTTP layer
 * (libmicrohttpd, route table, token check from the in-memory cache,
 * handler, JSON reply), keep-alive, N client threads (libcurl).
 *
 *   build/bench/http --pai build/pai [--clients N] [--seconds S] [--path P]
 *   build/bench/http --url http://HOST:PORT --token TOKEN [...]
 *
 * With --pai it starts its own `pai server` on a free port with a fresh data
 * directory, logs in as the bootstrap admin, and stops it afterwards.  The
 * clients run on the same machine, so the figure is what server and clients
 * together get out of its cores.
 *
 * The yardstick, measured in the same run (before and after, half the
 * seconds each, averaged): the same clients against a bare libmicrohttpd
 * server in this process, in pai's threading mode (a thread per
 * connection), answering every GET with a fixed 200 of the same size as
 * pai's answer and nothing else.  The ratio pai / bare comes first: what
 * routing, the token check, the handler and the JSON cost on top of HTTP.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchsrv.h"
#include "common/util.h"

typedef struct {
    const char *url;
    const char *authz;
    int64_t until_us;
    long ok, bad;
} client_t;

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    (void)p, (void)ud;
    return sz * n;
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, c->authz);
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    while (time_mono_us() < c->until_us) {
        long code = 0;
        if (curl_easy_perform(h) == CURLE_OK &&
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200)
            c->ok++;
        else
            c->bad++;
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

typedef struct {
    char body[8192];
    size_t len;
} bare_t;

static enum MHD_Result bare_answer(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **ctx)
{
    bare_t *b = cls;
    (void)url, (void)method, (void)version, (void)upload, (void)upload_size;
    if (!*ctx) { /* headers only: answering now would close the connection */
        *ctx = b;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b->len, b->body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* N keep-alive clients GETting url for seconds: 200s per second. */
static double run_clients(const char *url, const char *authz, int clients, double seconds,
                          long *ok_out, long *bad_out)
{
    client_t *c = xcalloc((size_t)clients, sizeof(*c));
    pthread_t *th = xcalloc((size_t)clients, sizeof(*th));
    int64_t t0 = time_mono_us();
    for (int i = 0; i < clients; i++) {
        c[i] = (client_t){url, authz, t0 + (int64_t)(seconds * 1e6), 0, 0};
        pthread_create(&th[i], NULL, client_main, &c[i]);
    }
    long ok = 0, bad = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        ok += c[i].ok;
        bad += c[i].bad;
    }
    double el = (double)(time_mono_us() - t0) / 1e6;
    free(c);
    free(th);
    *ok_out = ok;
    *bad_out = bad;
    return (double)ok / el;
}

/* Requests/s of the clients against a bare MHD server answering with a
 * body of len bytes; 0 when it cannot start. */
static double bare_rate(const char *authz, size_t len, int clients, double seconds)
{
    static bare_t b;
    b.len = len < sizeof(b.body) ? len : sizeof(b.body);
    memset(b.body, 'x', b.len);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD, 0, NULL,
                         NULL, bare_answer, &b, MHD_OPTION_END);
    const union MHD_DaemonInfo *di = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!di) {
        if (d)
            MHD_stop_daemon(d);
        return 0;
    }
    char url[128];
    long ok, bad;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/bare", (unsigned)di->port);
    double r = run_clients(url, authz, clients, seconds, &ok, &bad);
    MHD_stop_daemon(d);
    return bad ? 0 : r;
}

/* Size of pai's answer to one GET of url (the bare server answers as much). */
static size_t answer_size(const char *url, const char *authz)
{
    mem_t m = {0};
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, authz);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
    curl_easy_perform(h);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    free(m.data);
    return m.len;
}

int main(int argc, char **argv)
{
    util_alloc_init(); /* allocation failures abort (common/util.h) */
    util_alloc_init();
    const char *pai = NULL, *path = "/api/v2/groups/default";
    char base[256] = "", *token = NULL;
    int clients = 8, seconds = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--pai") == 0)
            pai = v;
        else if (strcmp(k, "--url") == 0)
            str_copy(base, v, sizeof(base));
        else if (strcmp(k, "--token") == 0)
            token = xstrdup(v);
        else if (strcmp(k, "--path") == 0)
            path = v;
        else if (strcmp(k, "--clients") == 0 && str_to_int(v, 1, 1000, &clients) == PAI_OK)
            continue;
        else if (strcmp(k, "--seconds") == 0 && str_to_int(v, 1, 600, &seconds) == PAI_OK)
            continue;
        else {
            fprintf(stderr,
                    "usage: %s --pai PAI | --url URL --token T [--clients N] "
                    "[--seconds S] [--path P]\n",
                    argv[0]);
            return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char dir[] = "/tmp/pai-bench-http-XXXXXX";
    pid_t pid = -1;
    if (pai) {
        if (mkdtemp(dir))
            bench_clean_dir(dir); /* removed also if a signal ends the bench */
        else
            dir[0] = '\0';
        static const char *const extra[] = {"--log-level", "warn", NULL};
        if (!dir[0] || (pid = bench_server_start(pai, dir, extra, base, sizeof(base))) < 0) {
            fprintf(stderr, "bench/http: could not start %s\n", pai);
            return 1;
        }
        token = bench_server_login(base);
    }
    if (!*base || !token) {
        fprintf(stderr, "bench/http: need a server (--pai or --url) and a token\n");
        return 1;
    }
    char url[512], authz[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(authz, sizeof(authz), "Authorization: Bearer %s", token);
    size_t size = answer_size(url, authz);
    double bare0 = bare_rate(authz, size, clients, seconds / 2.0);
    long ok = 0, bad = 0;
    double rate = run_clients(url, authz, clients, seconds, &ok, &bad);
    double bare1 = bare_rate(authz, size, clients, seconds / 2.0);
    double bare = (bare0 + bare1) / 2;
    if (bare > 0)
        printf("http: ratio %.2f (pai requests/s / a bare libmicrohttpd server's, same clients, "
               "%zu-byte answers: %.0f/s; before %.0f, after %.0f)\n",
               rate / bare, size, bare, bare0, bare1);
    printf("http: GET %s, %d keep-alive clients, %ds: %.0f requests/s (%ld ok, %ld failed)\n", path,
           clients, seconds, rate, ok, bad);
    if (pid > 0)
        bench_server_stop(pid, dir, "bench/http");
    free(token);
    curl_global_cleanup();
    return bad ? 1 : 0;
}
