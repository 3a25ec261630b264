/*
 * bench/benchsrv.h - a real `pai server` for a bench program (bench/api,
 * bench/http): started on a free loopback port with a fresh data dir, an
 * admin login, and its stop; the server and its dir are also stopped and
 * removed when a signal ends the bench (benchclean.h).  Plus the answer
 * buffer their libcurl transfers share.
 *
 * Each bench is one .c file: the functions are static.
 */
#ifndef PAI_BENCH_BENCHSRV_H
#define PAI_BENCH_BENCHSRV_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchclean.h"
#include "common/util.h"

#define BENCH_PASSWORD "bench-pw-1" /* the admin's */

/* An answer collected by grow() (NUL-terminated; the caller frees data). */
typedef struct {
    char *data;
    size_t len;
} mem_t;

/* CURLOPT_WRITEFUNCTION into the mem_t at ud (NULL: dropped). */
static size_t grow(char *p, size_t sz, size_t n, void *ud)
{
    mem_t *m = ud;
    if (!m)
        return sz * n;
    m->data = xrealloc(m->data, m->len + sz * n + 1);
    memcpy(m->data + m->len, p, sz * n);
    m->len += sz * n;
    m->data[m->len] = '\0';
    return sz * n;
}

/* Start `pai server` (binary pai) on a free port with data dir dir (made
 * by the caller) and the arguments extra (NULL-terminated, may be NULL);
 * its URL into url.  Returns its pid, or -1 (it did not say where it
 * listens).  The environment is the bench's ($PAI_STORE...). */
static pid_t bench_server_start(const char *pai, const char *dir, const char *const *extra,
                                char *url, size_t n)
{
    const char *argv[32] = {pai,          "server", "--port",           "0",
                            "--data-dir", dir,      "--admin-password", BENCH_PASSWORD};
    size_t k = 8;
    for (size_t i = 0; extra && extra[i] && k < ARRAY_LEN(argv) - 1; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid > 0)
        bench_clean_pid(pid); /* stopped if a signal ends the bench */
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv(pai, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[512];
    url[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
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

/* The admin's token from a login at base (malloc'ed), or NULL. */
static char *bench_server_login(const char *base)
{
    char url[512];
    snprintf(url, sizeof url, "%s/api/v2/authn/basic/login", base);
    mem_t m = {0};
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                     "{\"username\":\"admin\",\"password\":\"" BENCH_PASSWORD "\"}");
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

/* Stop the server pid (if > 0: SIGTERM, and wait) and remove dir (if
 * set); who names the bench in a failure's message. */
static void bench_server_stop(pid_t pid, const char *dir, const char *who)
{
    if (pid > 0) {
        bench_clean_pid_gone(pid);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    if (!dir || !dir[0])
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "%s: could not remove %s\n", who, dir);
    bench_clean_dir_gone(dir);
}

#endif
