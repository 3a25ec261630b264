/*
 * bench/curlsync.c - what one agent sync costs in libcurl on the agent's
 * side (src/agent/node.c's sync_send, agent_main.c's loop;
 * docs/benchmarks-history.md, "The agents' sync, eleventh round").
 *
 * A local libmicrohttpd server (its own thread) answers every POST with
 * ANSWER bytes; the calling thread posts REQUEST-byte syncs one after the
 * other the agent's way: one easy handle on a multi handle, libcurl's
 * socket and timer callbacks, poll, curl_multi_socket_action, the handle
 * removed when done and added again for the next sync (its connection
 * kept).  Measures on the calling thread's CPU clock (libcurl's work, the
 * loopback TCP send and receive, the polls), the mean over N syncs, for:
 *   text    the URL as text (CURLOPT_URL), every option set at every sync
 *           (the agent before 2026-12-06 22:00 UTC: libcurl parses the
 *           text again at every transfer);
 *   parsed  the URL parsed once (CURLOPT_CURLU), the options that do not
 *           change set once (node.c now).
 * ROUNDS rounds, the two interleaved.  Prints the figures, asserts nothing.
 *   make bench-curlsync   (N=4000 ROUNDS=6 by default)
 */
#include <curl/curl.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ANSWER  850 /* bench-e2e's mean answer, agent protocol 7 */
#define REQUEST 750 /* and request body */

static char answer[ANSWER];

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result on_req(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *ver, const char *data, size_t *sz,
                              void **ptr)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)ver;
    (void)data;
    if (!*ptr) {
        *ptr = answer;
        return MHD_YES;
    }
    if (*sz) {
        *sz = 0;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof answer, answer, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return rc;
}

/* the agent's loop, reduced to one transfer at a time */
static curl_socket_t socks[8];
static short want[8];
static int nsock;
static int64_t due = INT64_MAX;

static int on_sock(CURL *e, curl_socket_t s, int what, void *u, void *sp)
{
    (void)e;
    (void)u;
    (void)sp;
    int i = 0;
    while (i < nsock && socks[i] != s)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < nsock) {
            socks[i] = socks[--nsock];
            want[i] = want[nsock];
        }
        return 0;
    }
    if (i == nsock) {
        if (nsock == 8)
            return -1;
        socks[nsock++] = s;
    }
    want[i] = (short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
    return 0;
}

static int on_timer(CURLM *m, long t, void *u)
{
    (void)m;
    (void)u;
    due = t < 0 ? INT64_MAX : mono_ms() + t;
    return 0;
}

static size_t on_body(char *d, size_t s, size_t n, void *u)
{
    (void)d;
    *(size_t *)u += s * n;
    return s * n;
}

static bool finished(CURLM *m)
{
    int left;
    CURLMsg *msg;
    bool done = false;
    while ((msg = curl_multi_info_read(m, &left)))
        done = done || msg->msg == CURLMSG_DONE;
    return done;
}

static void transfer(CURLM *m, CURL *e)
{
    int running;
    curl_multi_add_handle(m, e);
    for (;;) {
        if (mono_ms() >= due) {
            due = INT64_MAX;
            curl_multi_socket_action(m, CURL_SOCKET_TIMEOUT, 0, &running);
        }
        if (finished(m))
            break;
        struct pollfd p[8];
        int ns = nsock;
        for (int j = 0; j < ns; j++)
            p[j] = (struct pollfd){socks[j], want[j], 0};
        int64_t now = mono_ms();
        poll(p, (nfds_t)ns, due == INT64_MAX ? 1000 : (int)(due > now ? due - now : 0));
        for (int j = 0; j < ns; j++)
            if (p[j].revents) {
                short r = p[j].revents;
                int ev = (r & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) |
                         (r & POLLOUT ? CURL_CSELECT_OUT : 0);
                curl_multi_socket_action(m, p[j].fd, ev, &running);
            }
        if (finished(m))
            break;
    }
    curl_multi_remove_handle(m, e);
}

/* n syncs, the URL as text (parsed == false) or parsed once; us a sync */
static double run(CURLM *m, const char *url, bool parsed, int n)
{
    static char body[REQUEST];
    size_t got = 0;
    memset(body, 'y', sizeof body);
    CURL *e = curl_easy_init();
    CURLU *u = curl_url();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    h = curl_slist_append(h, "Authorization: Bearer pn1.0123456789abcdef0123456789abcdef0123456789"
                             "abcdef0123456789abcdef");
    curl_url_set(u, CURLUPART_URL, url, 0);
    if (parsed) {
        curl_easy_setopt(e, CURLOPT_CURLU, u);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &got);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    }
    double t0 = 0;
    for (int i = 0; i < n + 100; i++) {
        if (i == 100)
            t0 = cpu_us(); /* the connection made, the code warm */
        if (!parsed) {
            char *text = strdup(url); /* the agent's str_printf of it */
            curl_easy_setopt(e, CURLOPT_URL, text);
            free(text);
        }
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)sizeof body);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
        if (!parsed) {
            curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(e, CURLOPT_WRITEDATA, &got);
            curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
            curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        }
        transfer(m, e);
    }
    double us = (cpu_us() - t0) / n;
    if (got != (size_t)(n + 100) * ANSWER)
        fprintf(stderr, "curlsync: %zu bytes answered, not %zu\n", got, (size_t)(n + 100) * ANSWER);
    curl_easy_cleanup(e);
    curl_url_cleanup(u);
    curl_slist_free_all(h);
    return us;
}

int main(void)
{
    int n = getenv("N") ? (int)strtol(getenv("N"), NULL, 10) : 4000;
    int rounds = getenv("ROUNDS") ? (int)strtol(getenv("ROUNDS"), NULL, 10) : 6;
    if (n < 1 || rounds < 1) {
        fprintf(stderr, "curlsync: N and ROUNDS must be positive\n");
        return 2;
    }
    memset(answer, 'x', sizeof answer);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0,
                                            NULL, NULL, on_req, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "curlsync: no server\n");
        return 1;
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/v1/agent/sync",
             (int)MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_sock);
    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_timer);
    printf("curlsync: %d syncs a round (%d-byte requests, %d-byte answers), us of the calling "
           "thread's CPU a sync\n",
           n, REQUEST, ANSWER);
    for (int r = 0; r < rounds; r++) {
        bool first = r % 2; /* ABBA */
        double a = run(m, url, first, n), b = run(m, url, !first, n);
        printf("  round %d   text %6.2f   parsed %6.2f\n", r + 1, first ? b : a, first ? a : b);
    }
    curl_multi_cleanup(m);
    MHD_stop_daemon(d);
    curl_global_cleanup();
    return 0;
}
