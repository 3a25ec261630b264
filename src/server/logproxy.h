/*
 * logproxy.h - one task log read through the server: the agent's log server
 * (src/agent/logsrv.c, GET {log_url}/logs/{attempt_id}/{kind}[?tail=N])
 * streamed to the API client in constant memory.
 *
 * Life cycle, on the HTTP layer's bounded workers (http_reply_offload and
 * http_reply_stream: blocking is allowed there, one call at a time):
 *   logproxy_open()  in the handler: connects and waits for the agent's
 *                    status line and headers (bounded by LOGPROXY_OPEN_MS);
 *                    any failure up to there is a pai_error_t, answered as
 *                    OpenPAI's {code, message};
 *   logproxy_read()  the body source given to http_reply_stream();
 *   logproxy_free()  once, by the HTTP layer when the reply is done.
 * Each reader holds at most CURLSTREAM_BUF bytes of log (plus libcurl's
 * receive buffer), whatever the log's size: the transfer from the agent is
 * paused whenever the client has not taken what was already read (the
 * transfer is a curlstream, curlstream.h, shared with a standby's forwards).
 */
#ifndef PAI_SERVER_LOGPROXY_H
#define PAI_SERVER_LOGPROXY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define LOGPROXY_OPEN_MS  10000 /* connect + the agent's headers */
#define LOGPROXY_STALL_MS 30000 /* no byte from the agent this long: the body is cut */

typedef struct logproxy logproxy_t;

typedef struct {
    const char *log_url;    /* the node's log server, "http://host:port" */
    const char *attempt_id; /* the task attempt's id on that node */
    const char *kind;       /* "stdout", "stderr" or "all" */
    bool tail;              /* only the last 64 KiB */
    const char *token;      /* the node's log key or the agent token (Bearer; NULL or "": no
                             * Authorization header at all) */
    const char *ca_file;    /* https:// log servers: the CA that signs them (NULL: system's) */
} logproxy_req_t;

/* Start the read and wait for the agent's answer.  PAI_OK: *out streams a
 * 200 answer's body.  Otherwise *e says why: PAI_E_NO_TASK_LOG (the node has
 * no such log), PAI_E_BAD_CONFIG (the node refused the server's secret or
 * its lack of one: 401, 403), PAI_E_UNAVAILABLE (unreachable, no answer in
 * time, or busy: the node answered 503; then *retry_after_s is its
 * Retry-After, else 0). */
PAI_MUST_CHECK pai_err_t logproxy_open(const logproxy_req_t *q, logproxy_t **out,
                                       int *retry_after_s, pai_error_t *e);
/* http_stream_fn over a logproxy_t: the next bytes of the log (blocks until
 * some come), 0 at its end, -1 when the transfer failed or stalled. */
long logproxy_read(void *lp, char *buf, size_t max);
/* Abort the transfer if it still runs and free lp (NULL: nothing). */
void logproxy_free(void *lp);

/* Log reads a user may have in flight through the server at once
 * (log_reads_per_user): a node's log server streams at most 64, and one
 * user must not hold them all.  Thread-safe (one mutex); counts live in
 * memory only. */
typedef struct logproxy_quota logproxy_quota_t;
/* per_user 0: unbounded (take always succeeds). */
logproxy_quota_t *logproxy_quota_new(unsigned per_user);
void logproxy_quota_free(logproxy_quota_t *q);
/* One more read for user: false when it has per_user already. */
bool logproxy_quota_take(logproxy_quota_t *q, const char *user);
/* The read took by logproxy_quota_take has ended. */
void logproxy_quota_give(logproxy_quota_t *q, const char *user);

#endif
