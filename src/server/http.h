/*
 * http.h - the server's HTTP layer over libmicrohttpd.
 *
 * Threading: a fixed pool of threads (libmicrohttpd's internal thread pool,
 * epoll) serves every connection, so a handler must not block for long: a
 * blocked handler stalls the other connections of its thread.  The
 * handlers of GET (HEAD, OPTIONS) routes run on the pool: reads, short
 * waits for the engine lock.  Every other method's handler runs on a
 * bounded set of write workers (http_write_threads), its connection
 * suspended meanwhile: they wait for the store's group commit, a scheduling
 * pass, a password hash or, agent syncs by the thousand, for the engine
 * lock.  A handler that has to wait
 * for an event (the agent long-poll) answers with http_reply_hold: its
 * connection is suspended, costing no thread, until woken or its deadline.
 * A handler that waits on a remote peer (a task log read from the agent)
 * answers with http_reply_offload, and a streamed body's source
 * (http_reply_stream) may block: both run on a small bounded set of
 * workers (offload.h), their connections suspended meanwhile.
 * Everything a handler touches must be thread-safe.
 *
 * Routes are tables: each module exports a NULL-terminated http_route_t[]
 * and server_main registers them.  Path patterns use {name} for one path
 * segment, e.g. "/api/v2/jobs/{job}/attempts/{attempt}"; a pattern ending in
 * "/\*" (slash, star) matches any rest of the path (param "*").  The layer checks
 * the route's permission before calling the handler, bounds the body
 * (PAI_MAX_HTTP_BODY -> 413), and answers errors as OpenPAI does:
 * {"code": "NoJobError", "message": "..."} with the status from err.h.
 *
 * Errors: a handler answers a success itself (http_reply_json/_text, or
 * http_reply_stream for a body too large to hold) and returns PAI_OK; on failure it fills its
 * pai_error_t (err.h) and returns the code, and the layer answers with http_reply_err(), the one
 * function that writes an error body.  No handler writes an error body itself.
 */
#ifndef PAI_SERVER_HTTP_H
#define PAI_SERVER_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct server_ctx server_ctx_t; /* see server/server.h */

typedef enum {
    PERM_ANON,    /* anyone, even without a token (info, login, portal files) */
    PERM_USER,    /* any valid token, user or application token */
    PERM_SESSION, /* a user's login token only (application tokens refused) */
    PERM_ADMIN,   /* a login token of an admin */
    PERM_AGENT,   /* the join token, a node credential (or an admin's token) */
} http_perm_t;

/* Who is calling; filled by the auth layer before the handler runs. */
typedef struct {
    bool authenticated;
    const char *username; /* NULL when anonymous */
    bool admin;
    bool app_token; /* an application token */
    bool agent;     /* the agent (join) token or a node credential */
    const char *token_id;
    /* A node credential ("pn1.<hex>"), not yet checked: the agent sync
     * checks it against the node its body names (src/engine/nodes.h).
     * NULL for every other caller. */
    const char *node_credential;
} http_identity_t;

#define HTTP_MAX_PARAMS 8

typedef struct http_req {
    const char *method;
    const char *path;
    const char *param_names[HTTP_MAX_PARAMS];
    const char *param_values[HTTP_MAX_PARAMS]; /* URL-decoded path params */
    size_t nparams;
    const char *body; /* NUL-terminated, may be "" */
    size_t body_len;
    const char *content_type; /* may be NULL */
    http_identity_t who;
    void *conn_; /* internal: the MHD connection */
} http_req_t;

/* A streamed body's source (http_reply_stream): called on a worker of the
 * layer's bounded set (never two calls at once for one body) each time the
 * client has taken what was read before; it may block until it has bytes.  Writes at most max bytes
 * to buf and returns how many (> 0), 0 at the end of the body, or -1 on a failure, which ends the
 * body short (the client sees the connection close before the chunked body's end). */
typedef long (*http_stream_fn)(void *ud, char *buf, size_t max);

/* A held answer's wake-up: fn(ud, ticket) makes the layer answer it soon.
 * Callable from any thread under any lock (it only queues the wake-up). */
typedef struct {
    void (*fn)(void *ud, uint64_t ticket);
    void *ud;
    uint64_t ticket;
} http_waker_t;

/* A deferred answer's parts (http_reply_hold, http_reply_offload). */
typedef struct http_resp http_resp_t;
typedef pai_err_t (*http_finish_fn)(server_ctx_t *ctx, void *ud, http_resp_t *resp, pai_error_t *e);
typedef void (*http_arm_fn)(server_ctx_t *ctx, void *ud, const http_waker_t *w);
typedef struct {
    http_finish_fn finish; /* NULL: not deferred */
    http_arm_fn arm;       /* NULL: offloaded (finish runs on a worker) */
    void (*free_ud)(void *ud);
    void *ud;
    int64_t wait_ms;
} http_defer_t;

struct http_resp {
    int status;
    char *body; /* owned, malloc'ed */
    size_t body_len;
    const char *content_type; /* static string */
    char *headers[8][2];      /* extra headers, owned */
    size_t nheaders;
    http_stream_fn stream; /* set by http_reply_stream: the body comes from it */
    void *stream_ud;       /* owned: stream_free(stream_ud) once the reply is done */
    void (*stream_free)(void *ud);
    http_defer_t defer; /* set by http_reply_hold/_offload: answered later */
};

/* On failure: fill *e (pai_error_set) and return its code; resp untouched. */
typedef pai_err_t (*http_handler_fn)(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                     pai_error_t *e);

/* One request of a batch (http_batch_route_t): its request, its answer and
 * its error, as a handler gets them; rc its result, as a handler's. */
typedef struct {
    const http_req_t *req;
    http_resp_t *resp;
    pai_error_t *e;
    pai_err_t rc;
} http_call_t;
/* n (>= 1) requests of one route, each answered as its handler would (a
 * failure fails its own request only). */
typedef void (*http_batch_fn)(server_ctx_t *ctx, http_call_t *calls, size_t n);

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/v2/jobs/{job}" */
    http_handler_fn fn;
    http_perm_t perm;
} http_route_t;

/* A route run on the write workers whose requests queued at one moment (up
 * to OFFLOAD_BATCH_MAX) are run by one worker with one call of batch, so
 * that what each would wait for alone (the engine lock, a commit) is
 * waited for once (agent syncs).  Identity and permission are checked per
 * request first; the route's own handler serves the requests a batch
 * cannot (a standby's).  server_batch_routes[] (modules.c) lists them,
 * ended by an entry with method NULL. */
typedef struct {
    const char *method;
    const char *pattern;
    http_batch_fn batch;
} http_batch_route_t;

/* A path parameter by name, or NULL. */
const char *http_param(const http_req_t *req, const char *name);
/* A query-string argument, or NULL. */
const char *http_query(const http_req_t *req, const char *name);
/* The query string as sent on ("?a=1&b=x%20y", re-encoded; "" when none),
 * malloc'ed; at most HTTP_MAX_QUERY bytes (longer: cut at an argument). */
#define HTTP_MAX_QUERY 8192
char *http_query_string(const http_req_t *req);
/* A request header, or NULL. */
const char *http_header(const http_req_t *req, const char *name);
/* The client's IP address as text into buf ("?" when unknown); returns buf. */
const char *http_client_addr(const http_req_t *req, char *buf, size_t len);

/* Replies.  http_reply_json takes ownership of j. */
void http_reply_json(http_resp_t *resp, int status, json_t *j);
void http_reply_text(http_resp_t *resp, int status, const char *content_type, const char *text,
                     size_t len);
/* A reply whose body is streamed (chunked, length unknown) from read(ud, ...)
 * after the handler has returned PAI_OK, so a large body costs only a block
 * of HTTP_STREAM_BLOCK bytes in the layer, never the whole body.  Takes
 * ownership of ud: free_ud(ud) runs exactly once, when the body has ended,
 * the client has gone, or the reply was never sent (free_ud may be NULL).
 * The connection counts as busy while the body streams (it is never closed
 * as idle to make room, common/connlimit.h).  Errors found before the reply
 * is made still go through pai_error_t and http_reply_err; once the status
 * is sent, a failure can only cut the body short (http_stream_fn). */
#define HTTP_STREAM_BLOCK (64u * 1024)
void http_reply_stream(http_resp_t *resp, int status, const char *content_type, http_stream_fn read,
                       void (*free_ud)(void *ud), void *ud);
/* Answer later, without holding a thread: after the handler returns PAI_OK
 * the connection is suspended; arm(ctx, ud, w) is called at once (on the
 * handler's thread) with the waker that answers it early; finish(ctx, ud,
 * resp, e) makes the answer, as a handler does, on a pool thread once w was
 * called or wait_ms has passed, whichever comes first (or at shutdown).
 * finish may hold again (http_reply_hold on resp, even with the same ud,
 * whose ownership then passes to the new hold).  Takes ownership of ud:
 * free_ud(ud) runs exactly once, after finish or when the connection ended
 * without it.  Headers or a body set before are
 * dropped: finish makes the whole answer.  The connection is busy (never
 * evicted) while held. */
void http_reply_hold(http_resp_t *resp, int64_t wait_ms, http_arm_fn arm, http_finish_fn finish,
                     void (*free_ud)(void *ud), void *ud);
/* Answer from work that may block on a remote peer: fn(ctx, ud, resp, e)
 * runs on a worker of the layer's bounded set (queued when all are busy),
 * the connection suspended meanwhile, and answers as a handler does (it may
 * reply with http_reply_stream).  Ownership of ud as in http_reply_hold. */
void http_reply_offload(http_resp_t *resp, http_finish_fn fn, void (*free_ud)(void *ud), void *ud);
/* The error reply: status pai_err_status(e->code), body
 * {"code": pai_err_code(e->code), "message": pai_error_msg(e)} plus the
 * fields of e->details, if any (e.g. "errors", the problems of a refused job). */
void http_reply_err(http_resp_t *resp, const pai_error_t *e);
void http_add_header(http_resp_t *resp, const char *name, const char *value);

/* Parse the body as a JSON object into *out (caller decrefs); on failure
 * PAI_E_INVALID with the reason in *e. */
PAI_MUST_CHECK pai_err_t http_body_json(const http_req_t *req, json_t **out, pai_error_t *e);
/* Extension: the body as a JSON object whether it was sent as JSON or as
 * application/x-www-form-urlencoded (form fields become strings). */
PAI_MUST_CHECK pai_err_t http_body_object(const http_req_t *req, json_t **out, pai_error_t *e);

/* ---- the server (used by server_main) ---------------------------------- */

typedef struct http_server http_server_t;

/* What the listener lets clients hold (see "Hostile clients" in
 * docs/operations.md and common/connlimit.h). */
typedef struct {
    unsigned max_connections; /* live connections in all */
    unsigned per_addr_idle;   /* idle connections one address may hold; 0: no bound */
    unsigned idle_timeout_s;  /* a connection silent this long is closed */
    unsigned threads;         /* the pool serving connections; 0: 2 per core, 4 at least */
    unsigned offload_threads; /* workers for work waiting on a peer (offload.h); 0: 8 */
    unsigned write_threads;   /* workers for handlers that change state (not GET); 0: 32 */
    unsigned conn_memory_kib; /* libmicrohttpd's memory per connection; 0: HTTP_CONN_MEMORY */
    bool sched_batch;         /* its threads under SCHED_BATCH (http.c, batch_begin) */
} http_limits_t;

/* Register every module's routes (server_modules[]) and start listening on
 * addr:port (port 0 = any free port).  A pool of lim->threads threads over
 * epoll (no FD_SETSIZE ceiling), held answers suspended (waiters.h),
 * blocking work on lim->offload_threads workers; admission by
 * common/connlimit.h. */
PAI_MUST_CHECK pai_err_t http_server_start(server_ctx_t *ctx, const char *addr, int port,
                                           const http_limits_t *lim, http_server_t **out,
                                           pai_error_t *e);
/* The port actually bound. */
int http_server_port(const http_server_t *s);
/* Answer every held connection, finish the offloaded work, stop the pool
 * threads, free everything. */
void http_server_stop(http_server_t *s);

#endif
