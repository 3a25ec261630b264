/*
 * logproxy.c - a task log streamed from the agent to the API client (see
 * logproxy.h for the life cycle).
 *
 * Design: the connection thread drives a libcurl multi handle of one
 * transfer itself; there is no other thread and no lock.
 *  - on_header watches the agent's status line, Retry-After and the blank
 *    line that ends the headers;
 *  - on_body appends a 200 answer's bytes to buf (LOGPROXY_BUF); when they
 *    do not fit it returns CURL_WRITEFUNC_PAUSE: libcurl keeps that block
 *    (at most CURL_MAX_WRITE_SIZE) and stops reading the socket, so TCP
 *    holds the agent back until the client has taken what is buffered;
 *  - logproxy_read hands out buffered bytes; when none are left it resumes
 *    a paused transfer and runs it (curl_multi_perform/curl_multi_poll)
 *    until bytes come, the transfer ends or it stalls.
 * Invariant: off + len <= LOGPROXY_BUF, and the transfer is paused only
 * while buf cannot take the block libcurl offered.
 * The per-user quota (logproxy_quota_t) is apart: shared by every read,
 * so it has its own mutex, held only to count.
 */
#include "server/logproxy.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/strmap.h"
#include "common/util.h"

struct logproxy {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    long status;       /* of the agent's answer (the last status line seen) */
    bool headers_done; /* the final answer's headers are in */
    bool done;         /* the transfer has ended, with result */
    CURLcode result;
    bool paused; /* on_body asked libcurl to pause */
    int retry_after_s;
    size_t off, len; /* the buffered bytes: buf[off, off + len) */
    char buf[LOGPROXY_BUF];
};

/* ---- libcurl callbacks ---------------------------------------------------- */

/* One header line (not NUL-terminated). */
static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    logproxy_t *lp = ud;
    size_t len = size * n;
    char line[64];
    size_t k = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
    memcpy(line, data, k);
    line[k] = '\0';
    int v;
    if (strncmp(line, "HTTP/", 5) == 0) { /* a new answer (after a 1xx, the final one) */
        const char *sp = strchr(line, ' ');
        lp->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        lp->retry_after_s = 0;
    } else if (strncasecmp(line, "Retry-After:", 12) == 0 && sscanf(line + 12, "%d", &v) == 1) {
        lp->retry_after_s = v > 0 && v < 3600 ? v : 1;
    } else if (line[0] == '\r' || line[0] == '\n') {
        lp->headers_done = lp->status >= 200;
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    logproxy_t *lp = ud;
    size_t len = size * n;
    if (lp->status != 200)
        return len; /* an error's body: the status says enough */
    if (len > sizeof(lp->buf))
        return 0; /* more than libcurl ever hands at once: fail the transfer */
    if (len > sizeof(lp->buf) - lp->len) {
        lp->paused = true;
        return CURL_WRITEFUNC_PAUSE; /* offered again once resumed */
    }
    if (lp->off + lp->len + len > sizeof(lp->buf)) {
        memmove(lp->buf, lp->buf + lp->off, lp->len);
        lp->off = 0;
    }
    memcpy(lp->buf + lp->off + lp->len, data, len);
    lp->len += len;
    return len;
}

/* ---- running the transfer --------------------------------------------------- */

/* Run the transfer once, then wait up to wait_ms for its socket. */
static void pump(logproxy_t *lp, int wait_ms)
{
    int running = 0, queued;
    if (curl_multi_perform(lp->multi, &running) != CURLM_OK) {
        lp->done = true;
        lp->result = CURLE_FAILED_INIT;
        return;
    }
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(lp->multi, &queued)) != NULL)
        if (msg->msg == CURLMSG_DONE) {
            lp->done = true;
            lp->result = msg->data.result;
        }
    if (!lp->done && lp->len == 0 && wait_ms > 0)
        curl_multi_poll(lp->multi, NULL, 0, wait_ms, NULL);
}

/* (Re)start the transfer from scratch. */
static void start(logproxy_t *lp)
{
    curl_multi_remove_handle(lp->multi, lp->easy);
    lp->status = 0;
    lp->headers_done = lp->done = lp->paused = false;
    lp->result = CURLE_OK;
    lp->off = lp->len = 0;
    lp->retry_after_s = 0;
    curl_multi_add_handle(lp->multi, lp->easy);
}

/* Run until the final answer's headers are in, the transfer ends, or the
 * deadline passes. */
static void wait_headers(logproxy_t *lp, int64_t deadline_ms)
{
    while (!lp->headers_done && !lp->done && time_mono_ms() < deadline_ms)
        pump(lp, 100);
}

/* The connection closed before an answer: under a flood the agent's log
 * server closes connections that have not sent their request yet to make
 * room (docs/operations.md, "Hostile clients"); worth one more try. */
static bool closed_early(const logproxy_t *lp)
{
    return lp->done && !lp->headers_done &&
           (lp->result == CURLE_GOT_NOTHING || lp->result == CURLE_SEND_ERROR ||
            lp->result == CURLE_RECV_ERROR);
}

static logproxy_t *lp_new(const logproxy_req_t *q)
{
    logproxy_t *lp = xcalloc(1, sizeof(*lp));
    lp->multi = curl_multi_init();
    lp->easy = curl_easy_init();
    if (!lp->multi || !lp->easy)
        util_oom(); /* libcurl allocates with its own malloc */
    char *eid = curl_easy_escape(lp->easy, q->attempt_id, 0);
    lp->url = str_printf("%s/logs/%s/%s%s", q->log_url, eid ? eid : "", q->kind,
                         q->tail ? "?tail=65536" : "");
    curl_free(eid);
    char *auth = str_printf("Authorization: Bearer %s", q->token ? q->token : "");
    lp->headers = curl_slist_append(NULL, auth);
    free(auth);
    CURL *c = lp->easy;
    curl_easy_setopt(c, CURLOPT_URL, lp->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, lp->headers);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, lp);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, lp);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)LOGPROXY_OPEN_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* an https:// log server (agent --tls-cert): always verified */
    if (q->ca_file && *q->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, q->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
    /* log_url comes from the agent: never let it name a file:// or other scheme */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    return lp;
}

pai_err_t logproxy_open(const logproxy_req_t *q, logproxy_t **out, int *retry_after_s,
                        pai_error_t *e)
{
    *out = NULL;
    *retry_after_s = 0;
    logproxy_t *lp = lp_new(q);
    int64_t deadline = time_mono_ms() + LOGPROXY_OPEN_MS;
    start(lp);
    wait_headers(lp, deadline);
    if (closed_early(lp)) {
        start(lp);
        wait_headers(lp, deadline);
    }
    pai_err_t rc = PAI_OK;
    if (lp->headers_done && lp->status == 200) {
        *out = lp;
        return PAI_OK;
    }
    if (lp->headers_done && lp->status == 404) {
        rc = pai_error_set(e, PAI_E_NO_TASK_LOG, PAI_MSG_NO_TASK_LOG);
    } else if (lp->headers_done && lp->status == 503) {
        *retry_after_s = lp->retry_after_s > 0 ? lp->retry_after_s : 1;
        rc = pai_error_set(e, PAI_E_UNAVAILABLE,
                           "the node serving this log is busy (too many log reads at once); "
                           "retry in %d s",
                           *retry_after_s);
    } else if (lp->headers_done) {
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "the node serving this log answered HTTP %ld",
                           lp->status);
    } else if (!lp->done) {
        rc = pai_error_set(e, PAI_E_UNAVAILABLE,
                           "the node serving this log did not answer within %d s",
                           LOGPROXY_OPEN_MS / 1000);
    } else {
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "the node serving this log is unreachable (%s)",
                           curl_easy_strerror(lp->result));
    }
    logproxy_free(lp);
    return rc;
}

long logproxy_read(void *ud, char *out, size_t max)
{
    logproxy_t *lp = ud;
    int64_t since = time_mono_ms();
    while (lp->len == 0) {
        if (lp->done)
            return lp->result == CURLE_OK ? 0 : -1;
        if (lp->paused) {
            lp->paused = false;
            curl_easy_pause(lp->easy, CURLPAUSE_CONT); /* may call on_body at once */
            continue;
        }
        pump(lp, 200);
        if (lp->len == 0 && time_mono_ms() - since > LOGPROXY_STALL_MS)
            return -1;
    }
    size_t n = lp->len < max ? lp->len : max;
    memcpy(out, lp->buf + lp->off, n);
    lp->off += n;
    lp->len -= n;
    if (lp->len == 0)
        lp->off = 0;
    return (long)n;
}

void logproxy_free(void *ud)
{
    logproxy_t *lp = ud;
    if (!lp)
        return;
    curl_multi_remove_handle(lp->multi, lp->easy);
    curl_easy_cleanup(lp->easy);
    curl_multi_cleanup(lp->multi);
    curl_slist_free_all(lp->headers);
    free(lp->url);
    free(lp);
}

/* ---- per-user quota --------------------------------------------------------- */

struct logproxy_quota {
    pthread_mutex_t mu;
    strmap_t *reads; /* user -> reads in flight, as a pointer-sized count (>= 1) */
    unsigned per_user;
};

logproxy_quota_t *logproxy_quota_new(unsigned per_user)
{
    logproxy_quota_t *q = xcalloc(1, sizeof(*q));
    pthread_mutex_init(&q->mu, NULL);
    q->reads = strmap_new(NULL);
    q->per_user = per_user;
    return q;
}

void logproxy_quota_free(logproxy_quota_t *q)
{
    if (!q)
        return;
    strmap_free(q->reads);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

bool logproxy_quota_take(logproxy_quota_t *q, const char *user)
{
    if (!q->per_user)
        return true;
    pthread_mutex_lock(&q->mu);
    uintptr_t n = (uintptr_t)strmap_get(q->reads, user);
    bool ok = n < q->per_user && strmap_put(q->reads, user, (void *)(n + 1)) == PAI_OK;
    pthread_mutex_unlock(&q->mu);
    if (!ok)
        log_info("user=%s log read refused: %u already in flight (log_reads_per_user)", user,
                 q->per_user);
    return ok;
}

void logproxy_quota_give(logproxy_quota_t *q, const char *user)
{
    if (!q->per_user)
        return;
    pthread_mutex_lock(&q->mu);
    uintptr_t n = (uintptr_t)strmap_get(q->reads, user);
    if (n > 1) {
        if (strmap_put(q->reads, user, (void *)(n - 1)) != PAI_OK)
            strmap_del(q->reads, user); /* out of memory: forget rather than keep it held */
    } else {
        strmap_del(q->reads, user);
    }
    pthread_mutex_unlock(&q->mu);
}
