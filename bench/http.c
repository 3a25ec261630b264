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
    char *data;
    size_t len;
} mem_t;

static size_t grow(char *p, size_t sz, size_t n, void *ud)
{
    mem_t *m = ud;
    m->data = xrealloc(m->data, m->len + sz * n + 1);
    memcpy(m->data + m->len, p, sz * n);
    m->len += sz * n;
    m->data[m->len] = '\0';
    return sz * n;
}

static char *login(const char *base, const char *password)
{
    char url[512], body[256];
    snprintf(url, sizeof(url), "%s/api/v2/authn/basic/login", base);
    snprintf(body, sizeof(body), "{\"username\":\"admin\",\"password\":\"%s\"}", password);
    mem_t m = {0};
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &m);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    json_t *j = rc == CURLE_OK && m.data ? json_loads(m.data, 0, NULL) : NULL;
    const char *t = json_string_value(json_object_get(j, "token"));
    char *out = t ? xstrdup(t) : NULL;
    json_decref(j);
    free(m.data);
    return out;
}

/* Start `pai server` on a free port; the URL goes into url. */
static pid_t start_server(const char *pai, const char *dir, char *url, size_t n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(pai, pai, "server", "--port", "0", "--data-dir", dir, "--admin-password",
              "bench-pw-1", "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[512];
    url[0] = '\0';
    while (f && fgets(line, sizeof(line), f)) {
        char *p = strstr(line, "listening on ");
        if (p) {
            str_copy(url, p + strlen("listening on "), n);
            url[strcspn(url, "\r\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    return url[0] ? pid : -1;
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
        if (!mkdtemp(dir) || (pid = start_server(pai, dir, base, sizeof(base))) < 0) {
            fprintf(stderr, "bench/http: could not start %s\n", pai);
            return 1;
        }
        token = login(base, "bench-pw-1");
    }
    if (!*base || !token) {
        fprintf(stderr, "bench/http: need a server (--pai or --url) and a token\n");
        return 1;
    }
    char url[512], authz[512];
    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(authz, sizeof(authz), "Authorization: Bearer %s", token);
    client_t *c = xcalloc((size_t)clients, sizeof(*c));
    pthread_t *th = xcalloc((size_t)clients, sizeof(*th));
    int64_t t0 = time_mono_us();
    for (int i = 0; i < clients; i++) {
        c[i] = (client_t){url, authz, t0 + (int64_t)seconds * 1000000, 0, 0};
        pthread_create(&th[i], NULL, client_main, &c[i]);
    }
    long ok = 0, bad = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        ok += c[i].ok;
        bad += c[i].bad;
    }
    double el = (double)(time_mono_us() - t0) / 1e6;
    printf("http: GET %s, %d keep-alive clients, %ds: %.0f requests/s (%ld ok, %ld failed)\n", path,
           clients, seconds, (double)ok / el, ok, bad);
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench/http: could not remove %s\n", dir);
    }
    free(c);
    free(th);
    free(token);
    curl_global_cleanup();
    return bad ? 1 : 0;
}
