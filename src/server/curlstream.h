/*
 * curlstream.h - one libcurl transfer read as a pull stream in bounded
 * memory: the piece shared by the task-log proxy (logproxy.c: the agent's
 * log streamed to the API client) and a standby's forwards
 * (standby_proxy.c: the leader's answer streamed to the client).
 *
 * The caller configures a CURL easy handle (URL, method, request headers,
 * body, TLS) and hands it over; the stream sets the header and body
 * callbacks itself and drives the transfer from the calling thread with a
 * multi handle of its own (no other thread, no lock).  It holds at most
 * CURLSTREAM_BUF bytes of the answer's body (plus libcurl's receive
 * buffer), whatever its size: when the caller has not taken what is
 * buffered, the transfer is paused and TCP holds the peer back.
 *
 * Life cycle, on the HTTP layer's bounded workers (http_reply_offload,
 * http_reply_stream: blocking is allowed there, one call at a time; the
 * stream may move between workers, the layer orders the calls):
 *   curlstream_new()          takes the configured easy handle;
 *   curlstream_start()        (re)starts the transfer from scratch;
 *   curlstream_wait_headers() until the final answer's status line and
 *                             headers are in, the transfer ended, or a
 *                             deadline passed;
 *   curlstream_read()         the body, as an http_stream_fn;
 *   curlstream_free()         aborts the transfer if it still runs.
 */
#ifndef PAI_SERVER_CURLSTREAM_H
#define PAI_SERVER_CURLSTREAM_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CURLSTREAM_BUF (64u * 1024) /* body bytes held per stream */

typedef struct curlstream curlstream_t;

/* What the stream knows of the transfer (curlstream_info). */
typedef struct {
    long status;       /* of the final answer (0: none yet) */
    bool headers_done; /* its headers are all in */
    bool done;         /* the transfer has ended, with result */
    CURLcode result;
    char content_type[128]; /* of the final answer ("" when none or too long) */
    char retry_after[32];   /* its Retry-After as sent ("" when none) */
} curlstream_info_t;

/* Take easy (configured but for the header and body callbacks, which the
 * stream sets); body reads give up after stall_ms without a byte from the
 * peer.  Never NULL (out of memory aborts). */
curlstream_t *curlstream_new(CURL *easy, int stall_ms);
/* (Re)start the transfer from scratch (after a failed try: a new
 * connection; the caller decides whether a retry is safe). */
void curlstream_start(curlstream_t *cs);
/* Run the transfer until the final answer's headers are in, it ended, or
 * deadline_ms (time_mono_ms) passed. */
void curlstream_wait_headers(curlstream_t *cs, int64_t deadline_ms);
const curlstream_info_t *curlstream_info(const curlstream_t *cs);
/* The easy handle (curl_easy_getinfo); still the stream's. */
CURL *curlstream_easy(curlstream_t *cs);
/* The whole body when the transfer has ended well and all of it is
 * buffered (*len its length), else NULL. */
const char *curlstream_whole(const curlstream_t *cs, size_t *len);
/* http_stream_fn over a curlstream_t: the next bytes of the body (blocks
 * until some come), 0 at its end, -1 when the transfer failed (the peer
 * closed early, a TLS or protocol error) or stalled. */
long curlstream_read(void *cs, char *buf, size_t max);
/* Abort the transfer if it still runs and free cs (NULL: nothing). */
void curlstream_free(void *cs);

#endif
