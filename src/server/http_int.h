/*
 * http_int.h - internals shared by the files of the HTTP layer only:
 * http.c (the daemon: admission, dispatch, TLS, start and stop),
 * http_dispatch.c (a request's route, leader gate, identity, permission),
 * http_route.c (the compiled route table and its request counters) and
 * http_reply.c (what handlers call: request fields, replies, bodies).
 * Nothing outside them includes this.
 *
 * Threads: the route table is built before the daemon starts and only read
 * afterwards; the counters are atomics; a request's http_req_t/http_resp_t
 * belong to the connection being served.
 */
#ifndef PAI_SERVER_HTTP_INT_H
#define PAI_SERVER_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/connlimit.h"
#include "common/ratelog.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/offload.h"
#include "server/waiters.h"

struct MHD_Daemon;

#define HTTP_MAX_SEGS 32
#define HTTP_MAX_PATH 4096
/* A connection's memory in libmicrohttpd when not configured (start in
 * http.c says why). */
#define HTTP_CONN_MEMORY (32 * 1024)
/* A request queued on a write worker this long is run only if its client
 * is still there (client_gone in http.c). */
#define HTTP_GONE_AFTER_US (500 * 1000)
/* An offloaded answer is resumed no sooner than this after its request
 * arrived (http.c, resume: libmicrohttpd loses one that comes too soon). */
#define HTTP_RESUME_AFTER_US 2000

/* Counted statuses (http_route.c's counted_status[], the last slot for the
 * others) and latency buckets (its lat_bounds[], then +Inf). */
#define HTTP_NSTATUS  17
#define HTTP_NBUCKETS 10

typedef struct {
    atomic_ullong by_status[HTTP_NSTATUS];
    atomic_ullong bucket[HTTP_NBUCKETS + 1]; /* last: +Inf */
    atomic_ullong sum_us;
    atomic_ullong count;
} route_stats_t;

typedef struct {
    const http_route_t *r;
    char *segs[HTTP_MAX_SEGS];
    size_t nsegs;
    bool wildcard; /* pattern ends in a star segment */
    route_stats_t stats;
    http_batch_fn batch; /* its entry in server_batch_routes[], or NULL */
} route_ent_t;

/* The write workers' queues (offload.h classes): see write_class in http.c. */
enum { HTTP_WRITE_USER, HTTP_WRITE_AGENT, HTTP_WRITE_NCLASSES };

struct http_server {
    server_ctx_t *ctx;
    struct MHD_Daemon *d;
    connlimit_t *admit;
    ratelog_t mhdlog; /* libmicrohttpd's messages: one warn line per 10 s at most */
    route_ent_t *routes;
    size_t nroutes;
    route_stats_t unmatched;
    int port;
    char *tls_cert, *tls_key; /* PEM text while the daemon runs (tls_cert/tls_key files) */
    waiters_t *wait;          /* held answers (http_reply_hold) */
    offload_t *work;          /* work waiting on a peer: offloaded answers, streamed bodies */
    offload_t *writes;        /* handlers of requests that change state (not GET), by class */
    unsigned threads;         /* the pool's size */
    int64_t agent_stall_ms;   /* test hook: PAI_TEST_AGENT_SYNC_STALL_MS */
    pthread_mutex_t arm_mu;   /* guards each reqstate_t's arming (hold in http.c) */
    pthread_cond_t arm_cv;    /* an arm returned */
};

/* Per-request state, MHD's con_cls.  Touched by the connection's pool
 * thread only, except while the connection is suspended for an offloaded
 * answer: then by the worker that makes it (ready), until it resumes the
 * connection. */
typedef struct {
    buf_t body;
    bool too_large;
    bool keep_busy; /* marked busy (connlimit.h): until on_completed, answer sent */
    char *pathcopy;
    auth_ident_t ident;
    /* a deferred answer (http_reply_hold / _offload) while suspended */
    bool deferred;
    http_defer_t defer;
    http_resp_t ready;  /* offloaded: the answer made by the worker */
    atomic_bool arming; /* a hold's arm runs (cleared under the server's arm_mu) */
    http_req_t req;     /* a handler run on a write worker: its request */
    const route_ent_t *route;
    int64_t t0_us;
    http_server_t *s;
    struct MHD_Connection *conn;
} reqstate_t;

/* ---- http_route.c ---- */

/* Split path into segments (in place), offsets into the original path in
 * offs; HTTP_MAX_SEGS + 1 when it has more segments than that. */
size_t http_split_path(char *p, char **segs, size_t *offs);
/* Does e match the split path?  Fills req's params on success. */
bool http_route_match(const route_ent_t *e, char **segs, const size_t *offs, size_t n,
                      const char *path, http_req_t *req);
/* Compile every module's routes (server_modules[]) into s->routes. */
PAI_MUST_CHECK pai_err_t http_routes_build(http_server_t *s);
void http_routes_free(http_server_t *s);
/* Count one answered request and its latency (thread-safe). */
void http_stats_record(route_stats_t *st, int status, int64_t us);
/* The request counters and latency histograms, in Prometheus text. */
void http_routes_collect(const http_server_t *s, buf_t *out);

/* ---- http_dispatch.c ---- */

/* The Access-Control-Allow-Origin to answer conn's request with, or NULL. */
const char *http_cors_origin(const http_server_t *s, struct MHD_Connection *conn);
/* The route of method url (req's params filled), or NULL with resp
 * answered (404, 405, a CORS preflight). */
const route_ent_t *http_find_route(http_server_t *s, reqstate_t *rs, const char *method,
                                   const char *url, http_req_t *req, http_resp_t *resp);
/* Run route e for req into resp: leader gate, identity, permission, the
 * handler; its error answered as OpenPAI's body. */
void http_run_route(http_server_t *s, const route_ent_t *e, reqstate_t *rs, http_req_t *req,
                    http_resp_t *resp);
/* The same for n requests of route e (e->batch set) on one worker:
 * each one's steps before the handler, then the batch handler once for
 * those it may serve (the others: e->r->fn), each answer into its
 * rs->ready. */
void http_run_route_batch(http_server_t *s, const route_ent_t *e, reqstate_t *const *rss, size_t n);

/* ---- http_reply.c ---- */

/* The layer's own errors (no route, too large, refused token). */
void http_reply_errorf(http_resp_t *resp, pai_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Free what resp owns (body, headers, a stream never sent). */
void http_resp_free(http_resp_t *resp);

#endif
