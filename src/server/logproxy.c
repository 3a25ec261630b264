/*
 * logproxy.c - a task log streamed from the agent to the API client (see
 * logproxy.h for the life cycle).
 *
 * The transfer itself is a curlstream (curlstream.h: the agent's answer
 * read in bounded memory, the transfer paused while the client has not
 * taken what is buffered); this file opens it with the agent's URL and
 * key, tries once more when the agent's log server closed the connection
 * before answering, and maps the agent's answer to the API's errors.
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

#include "common/log.h"
#include "common/strmap.h"
#include "common/util.h"
#include "server/curlstream.h"

struct logproxy {
    curlstream_t *cs;
    struct curl_slist *headers;
    char *url;
};

/* The connection closed before an answer: under a flood the agent's log
 * server closes connections that have not sent their request yet to make
 * room (docs/operations.md, "Hostile clients"); worth one more try. */
static bool closed_early(const curlstream_info_t *in)
{
    return in->done && !in->headers_done &&
           (in->result == CURLE_GOT_NOTHING || in->result == CURLE_SEND_ERROR ||
            in->result == CURLE_RECV_ERROR);
}

static logproxy_t *lp_new(const logproxy_req_t *q)
{
    logproxy_t *lp = xcalloc(1, sizeof(*lp));
    CURL *c = curl_easy_init();
    if (!c)
        util_oom(); /* libcurl allocates with its own malloc */
    char *eid = curl_easy_escape(c, q->attempt_id, 0);
    lp->url = str_printf("%s/logs/%s/%s%s", q->log_url, eid ? eid : "", q->kind,
                         q->tail ? "?tail=65536" : "");
    curl_free(eid);
    /* no secret, no header: never "Bearer " with nothing after it */
    if (q->token && *q->token) {
        char *auth = str_printf("Authorization: Bearer %s", q->token);
        lp->headers = curl_slist_append(NULL, auth);
        free(auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, lp->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, lp->headers);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)LOGPROXY_OPEN_MS);
    /* an https:// log server (agent --tls-cert): always verified */
    if (q->ca_file && *q->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, q->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
    /* log_url comes from the agent: never let it name a file:// or other scheme */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    lp->cs = curlstream_new(c, LOGPROXY_STALL_MS);
    return lp;
}

/* The node's log server refused the read (401, 403): this server presents
 * the wrong secret, or none.  Not the user's fault: a configuration error,
 * said as such, with what to check. */
static pai_err_t refused(const logproxy_req_t *q, long status, pai_error_t *e)
{
    if (!q->token || !*q->token)
        return pai_error_set(e, PAI_E_BAD_CONFIG,
                             "the node serving this log refused the read (HTTP %ld): this server "
                             "has no log key for the node and no agent token to present instead "
                             "(agent_token, or <data_dir>/agent.token)",
                             status);
    return pai_error_set(e, PAI_E_BAD_CONFIG,
                         "the node serving this log refused this server's key (HTTP %ld): the "
                         "node's log key or agent token differs from the one this server holds",
                         status);
}

pai_err_t logproxy_open(const logproxy_req_t *q, logproxy_t **out, int *retry_after_s,
                        pai_error_t *e)
{
    *out = NULL;
    *retry_after_s = 0;
    logproxy_t *lp = lp_new(q);
    const curlstream_info_t *in = curlstream_info(lp->cs);
    int64_t deadline = time_mono_ms() + LOGPROXY_OPEN_MS;
    curlstream_start(lp->cs);
    curlstream_wait_headers(lp->cs, deadline);
    if (closed_early(in)) {
        curlstream_start(lp->cs);
        curlstream_wait_headers(lp->cs, deadline);
    }
    pai_err_t rc = PAI_OK;
    if (in->headers_done && in->status == 200) {
        *out = lp;
        return PAI_OK;
    }
    if (in->headers_done && in->status == 404) {
        rc = pai_error_set(e, PAI_E_NO_TASK_LOG, PAI_MSG_NO_TASK_LOG);
    } else if (in->headers_done && (in->status == 401 || in->status == 403)) {
        rc = refused(q, in->status, e);
    } else if (in->headers_done && in->status == 503) {
        int v = 0;
        *retry_after_s = sscanf(in->retry_after, "%d", &v) == 1 && v > 0 && v < 3600 ? v : 1;
        rc = pai_error_set(e, PAI_E_UNAVAILABLE,
                           "the node serving this log is busy (too many log reads at once); "
                           "retry in %d s",
                           *retry_after_s);
    } else if (in->headers_done) {
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "the node serving this log answered HTTP %ld",
                           in->status);
    } else if (!in->done) {
        rc = pai_error_set(e, PAI_E_UNAVAILABLE,
                           "the node serving this log did not answer within %d s",
                           LOGPROXY_OPEN_MS / 1000);
    } else {
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "the node serving this log is unreachable (%s)",
                           curl_easy_strerror(in->result));
    }
    logproxy_free(lp);
    return rc;
}

long logproxy_read(void *ud, char *out, size_t max)
{
    return curlstream_read(((logproxy_t *)ud)->cs, out, max);
}

void logproxy_free(void *ud)
{
    logproxy_t *lp = ud;
    if (!lp)
        return;
    curlstream_free(lp->cs);
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
