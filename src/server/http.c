/*
 * http.c - the REST layer over libmicrohttpd (see http.h for the contract).
 *
 * Request procedure (on the pool thread serving the connection):
 *  1. First call: allocate the request state; a Content-Length over
 *     PAI_MAX_HTTP_BODY is answered 413 at once, without reading the body.
 *  2. Body chunks go into a buf_t capped at PAI_MAX_HTTP_BODY (a chunked
 *     body that grows past it is answered 413 at the end).
 *  3. Last call: match the route table (404 NoApiError, 405 for a known
 *     path with the wrong method), identify the caller from the token,
 *     check the route's permission, run the handler, send its response,
 *     and count the request and its latency for /metrics.
 *
 * Routes are compiled once at start into segment arrays (http_route.c);
 * finding a request's route and running it (leader gate, identity,
 * permission) is http_dispatch.c; what handlers call to read the request
 * and reply is http_reply.c.
 *
 * Connections: a fixed pool of threads (MHD's internal thread pool over
 * epoll: no FD_SETSIZE ceiling, no thread per connection); every
 * connection is admitted by common/connlimit.h, which bounds the idle
 * connections of each address and evicts idle ones when the server is full,
 * so a connection is held against eviction from the moment its request has
 * been read whole until its answer (deferred, streamed or not) has been
 * sent; a request read on a connection evicted just before is answered 503
 * with Retry-After and not run (refuse_evicted).
 *
 * Deferred answers (http_reply_hold / _offload) and streamed bodies never
 * block a pool thread: the connection is suspended (MHD_suspend_connection)
 * and resumed by the waiter thread (waiters.h: woken or due) or by the
 * worker that did the blocking work (offload.h); MHD then calls on_request
 * (or the content reader) again on the pool thread, which answers.
 * docs/architecture.md, "Threads of the HTTP layer", states the locking.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/connlimit.h"
#include "common/limits.h"
#include "common/ratelog.h"
#include "common/log.h"
#include "common/promtext.h"
#include "common/util.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/http_int.h"
#include "server/server.h"
#include "server/standby.h"

/* ---- streamed bodies (http_reply_stream) ------------------------------ */

/* A streamed body as MHD's content reader.  Its source may block (a remote
 * peer), so it never runs on a pool thread: when nothing is buffered the
 * reader suspends the connection and returns 0, a worker (offload.h) fills
 * buf and resumes the connection, and MHD calls the reader again.  buf and
 * the counts belong to the worker from the suspension to the resumption,
 * to the pool thread otherwise (MHD's resumption orders the two). */
typedef struct {
    http_server_t *s;
    struct MHD_Connection *conn;
    http_stream_fn read;
    void *ud;
    void (*free_ud)(void *ud);
    char *buf; /* HTTP_STREAM_BLOCK bytes, from the first fill */
    size_t off, len;
    int end; /* 0: more may come; 1: the body ended; -1: it failed */
} stream_t;

static void stream_fill(void *arg)
{
    stream_t *st = arg;
    if (!st->buf)
        st->buf = xmalloc(HTTP_STREAM_BLOCK);
    long n = st->read(st->ud, st->buf, HTTP_STREAM_BLOCK);
    st->off = 0;
    st->len = n > 0 ? ((size_t)n < HTTP_STREAM_BLOCK ? (size_t)n : HTTP_STREAM_BLOCK) : 0;
    if (n <= 0)
        st->end = n == 0 ? 1 : -1;
    MHD_resume_connection(st->conn);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *st = cls;
    (void)pos;
    if (st->len > 0) {
        size_t n = st->len < max ? st->len : max;
        memcpy(buf, st->buf + st->off, n);
        st->off += n;
        st->len -= n;
        return (ssize_t)n;
    }
    if (st->end)
        return st->end > 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    /* 0 only with the connection suspended: MHD asks again once resumed */
    MHD_suspend_connection(st->conn);
    offload_run(st->s->work, stream_fill, st);
    return 0;
}

static void stream_free(void *cls)
{
    stream_t *st = cls;
    if (st->free_ud)
        st->free_ud(st->ud);
    free(st->buf);
    free(st);
}

/* The MHD response for resp; its body (or stream) moves into it. */
static struct MHD_Response *make_response(http_server_t *s, struct MHD_Connection *conn,
                                          http_resp_t *resp)
{
    struct MHD_Response *r;
    if (resp->stream) {
        stream_t *st = xcalloc(1, sizeof(*st));
        *st = (stream_t){.s = s,
                         .conn = conn,
                         .read = resp->stream,
                         .ud = resp->stream_ud,
                         .free_ud = resp->stream_free};
        resp->stream = NULL;
        resp->stream_ud = NULL;
        resp->stream_free = NULL;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK, stream_read, st,
                                              stream_free);
        if (!r)
            stream_free(st);
        return r;
    }
    r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
    if (!r)
        free(resp->body);
    resp->body = NULL;
    return r;
}

static enum MHD_Result send_resp(http_server_t *s, struct MHD_Connection *conn, http_resp_t *resp)
{
    const char *cors = http_cors_origin(s, conn);
    struct MHD_Response *r = make_response(s, conn, resp);
    if (!r)
        return MHD_NO;
    if (resp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
    if (cors) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", cors);
        if (strcmp(cors, "*") != 0)
            MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Send resp (taken), count it and log it. */
static enum MHD_Result answer(http_server_t *s, struct MHD_Connection *conn, reqstate_t *rs,
                              http_resp_t *resp, const char *method, const char *url)
{
    int status = resp->status;
    enum MHD_Result ret = send_resp(s, conn, resp);
    http_resp_free(resp);
    http_stats_record(rs->route ? (route_stats_t *)&rs->route->stats : &s->unmatched, status,
                      time_mono_us() - rs->t0_us);
    if (status >= 500)
        log_warn("http: %s %s -> %d", method, url, status);
    else
        log_debug("http: %s %s -> %d", method, url, status);
    return ret;
}

/* ---- deferred answers (http_reply_hold, http_reply_offload) ------------ */

/* Run the deferred answer's finish into resp and free its ud. */
static void defer_finish(http_server_t *s, reqstate_t *rs, http_resp_t *resp)
{
    pai_error_t err = PAI_ERROR_INIT;
    http_defer_t d = rs->defer;
    rs->defer = (http_defer_t){0};
    pai_err_t rc = d.finish(s->ctx, d.ud, resp, &err);
    bool again = rc == PAI_OK && resp->defer.finish;     /* held again: the caller defers it */
    if (d.free_ud && !(again && resp->defer.ud == d.ud)) /* else ud passed to the new hold */
        d.free_ud(d.ud);
    if (again) {
        pai_error_free(&err);
        return;
    }
    if (rc != PAI_OK) {
        err.code = rc;
        http_reply_err(resp, &err);
    } else if (resp->status == 0) {
        pai_error_set(&err, PAI_E_INTERNAL, "the handler gave no answer");
        http_reply_err(resp, &err);
    }
    pai_error_free(&err);
}

static void held_due(void *arg);

/* Hold the suspended connection of rs (rs->defer has an arm): add it to the
 * waiters, then arm it (the engine leaves the waker on the node).  Runs on
 * the pool thread (defer_start) or, for an answer made on a worker, on
 * that worker (hold_here): the engine's arm takes its lock, which under a
 * storm is held for whole scheduling passes, and a pool thread waiting for
 * it would stall all its other connections.  When it is due (woken, or at
 * its deadline) its finish is queued on a write worker at once (held_due),
 * possibly before the arm has returned (woken by the arm itself): the
 * finish waits for the arm (arm_wait), never freeing what the arm still
 * uses; the connection stays suspended until that finish resumes it. */
static void hold(http_server_t *s, reqstate_t *rs)
{
    struct MHD_Connection *conn = rs->conn;
    int64_t wait = rs->defer.wait_ms > 0 ? rs->defer.wait_ms : 0;
    /* Held until wait after the request arrived, not after now: its
     * client's timeout runs from its send (an agent's: its wait + 15 s),
     * and a sync that waited in a loaded server's queue and was then held
     * a whole wait timed out, was sent again on a new connection and
     * evicted another (docs/benchmarks-history.md, "Scale").  Past it: due now. */
    int64_t deadline = rs->t0_us / 1000 + wait;
    atomic_store(&rs->arming, true);
    uint64_t ticket = waiters_add(s->wait, deadline, held_due, rs);
    if (ticket) {
        http_waker_t w = {.fn = waiters_wake, .ud = s->wait, .ticket = ticket};
        rs->defer.arm(s->ctx, rs->defer.ud, &w);
    }
    /* from here on rs may be freed (on_completed), once it sees false */
    pthread_mutex_lock(&s->arm_mu);
    atomic_store(&rs->arming, false);
    pthread_cond_broadcast(&s->arm_cv);
    pthread_mutex_unlock(&s->arm_mu);
    if (!ticket) /* shutting down: answer now (nobody else can have resumed it) */
        MHD_resume_connection(conn);
}

/* Until the arm of rs's hold has returned (see hold): before its finish
 * runs, and before on_completed frees rs. */
static void arm_wait(http_server_t *s, reqstate_t *rs)
{
    if (!atomic_load(&rs->arming))
        return;
    pthread_mutex_lock(&s->arm_mu);
    while (atomic_load(&rs->arming))
        pthread_cond_wait(&s->arm_cv, &s->arm_mu);
    pthread_mutex_unlock(&s->arm_mu);
}

/* On a worker, the answer just made (rs->ready) is held (http_reply_hold):
 * hold its connection from here, still suspended, instead of resuming it
 * for the pool thread to hold.  False when the answer is not held. */
static bool hold_here(http_server_t *s, reqstate_t *rs)
{
    if (!rs->ready.defer.finish || !rs->ready.defer.arm)
        return false;
    rs->defer = rs->ready.defer;
    rs->ready.defer = (http_defer_t){0};
    http_resp_free(&rs->ready);
    hold(s, rs);
    return true;
}

/* Resume rs's connection, its answer made (after which the caller touches
 * nothing of rs).  libmicrohttpd 0.9.75 can lose a resume that comes within
 * moments of the suspension it ends: the connection then waits for its
 * pool thread's next wake-up, up to ~1 s (agent syncs answered without a
 * commit, agent protocol 6: bench-e2e RATE=100 wait p95 943-1021 ms).  An
 * agent sync's answer is resumed no sooner than HTTP_RESUME_AFTER_US after
 * the request arrived (p99 30-90 ms; docs/benchmarks-history.md, eighth round). */
static unsigned write_class(const route_ent_t *e);

static void resume(reqstate_t *rs)
{
    int64_t left = rs->t0_us + HTTP_RESUME_AFTER_US - time_mono_us();
    if (write_class(rs->route) != HTTP_WRITE_AGENT)
        left = 0; /* only agent syncs were seen late; a sleep is a switch */
    if (left > 0)
        usleep((useconds_t)left);
    MHD_resume_connection(rs->conn);
}

/* An offloaded answer, or a held one's finish, on a worker: make it, then
 * resume the connection (after which the worker touches nothing of rs), or
 * hold it again. */
static void defer_work(void *arg)
{
    reqstate_t *rs = arg;
    arm_wait(rs->s, rs);
    defer_finish(rs->s, rs, &rs->ready);
    if (!hold_here(rs->s, rs))
        resume(rs);
}

/* The handler deferred its answer (resp->defer, taken): suspend the
 * connection, then hold it (waiters.h) or queue its work (offload.h). */
static void defer_start(http_server_t *s, struct MHD_Connection *conn, reqstate_t *rs,
                        http_resp_t *resp)
{
    rs->defer = resp->defer;
    resp->defer = (http_defer_t){0};
    http_resp_free(resp);
    rs->deferred = rs->keep_busy = true;
    rs->s = s;
    rs->conn = conn;
    MHD_suspend_connection(conn);
    if (!rs->defer.arm) {
        offload_run(s->work, defer_work, rs);
        return;
    }
    hold(s, rs);
}

/* The write workers' queue of a route: the agent protocol's (syncs by the
 * thousand, and their held answers' finish) apart from the users' requests
 * (submissions, job control, logins), so that a user's request never waits
 * behind a storm of syncs, nor a sync behind a storm of submissions
 * (offload.h: round robin; users' requests on at most half the workers,
 * syncs on at most 3/4). */
static unsigned write_class(const route_ent_t *e)
{
    return e && e->r->perm == PERM_AGENT ? HTTP_WRITE_AGENT : HTTP_WRITE_USER;
}

/* Held answers that are due (woken, or at their deadline), on a write
 * worker: each one's finish (defer_work), in the order they became due.
 * Many polls woken by one scheduling pass are taken by one worker: one
 * wake-up, and the engine lock's hand-offs of one thread. */
static void held_batch(void **uds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        defer_work(uds[i]);
}

/* A held answer is due (waiters.h: on the waker's thread, maybe under the
 * engine lock): queue its finish on a write worker, the connection still
 * suspended.  Only the queue's lock is taken here. */
static void held_due(void *arg)
{
    reqstate_t *rs = arg;
    offload_run_batch_in(rs->s->writes, write_class(rs->route), held_batch, rs);
}

/* Called again once the connection is resumed: answer (or, when a handler
 * run on a worker deferred its answer, defer it now). */
static enum MHD_Result defer_answer(http_server_t *s, struct MHD_Connection *conn, reqstate_t *rs,
                                    const char *method, const char *url)
{
    http_resp_t resp = {0};
    if (rs->defer.finish) { /* held while the waiters stopped: its finish on a write worker */
        MHD_suspend_connection(conn);
        offload_run_in(s->writes, write_class(rs->route), defer_work, rs);
        return MHD_YES;
    }
    rs->deferred = false;
    resp = rs->ready; /* made by a worker */
    rs->ready = (http_resp_t){0};
    if (resp.defer.finish) {
        defer_start(s, conn, rs, &resp);
        return MHD_YES;
    }
    return answer(s, conn, rs, &resp, method, url);
}

/* ---- handlers that change state, on the write workers ------------------ */

/* Does the route's handler run on the write workers?  Every method but
 * GET, HEAD and OPTIONS: the handlers that change state wait for the
 * store's group commit, a scheduling pass or a password hash, and (agent
 * syncs by the thousand) for the engine lock; on a pool thread they would
 * stall that thread's other connections.  Reads stay on the pool. */
static bool on_write_workers(const route_ent_t *e)
{
    const char *m = e->r->method;
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

/* Has the client closed its side of a suspended connection (libmicrohttpd
 * does not notice while it is suspended)?  A request that waited in the
 * queue past its client's timeout is not run: under a storm (thousands of
 * agents registering at once) running them would only lengthen the queue
 * that made their clients give up and retry.  Only a request read
 * HTTP_GONE_AFTER_US ago or more is looked at (a recv each): no client's
 * timeout is that short, and in a burst nearly every request reaches its
 * worker within a few milliseconds. */
static bool client_gone(const reqstate_t *rs)
{
    if (time_mono_us() - rs->t0_us < HTTP_GONE_AFTER_US)
        return false;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rs->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char c;
    return ci && recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* On a write worker: run the route into rs->ready, then resume the
 * connection (after which the worker touches nothing of rs), or hold it
 * from here when the answer is held (an agent's long-poll). */
static void route_work(void *arg)
{
    reqstate_t *rs = arg;
    if (rs->s->agent_stall_ms > 0 && write_class(rs->route) == HTTP_WRITE_AGENT)
        usleep((useconds_t)rs->s->agent_stall_ms * 1000); /* test hook, see http_server_start */
    if (client_gone(rs))
        http_reply_errorf(&rs->ready, PAI_E_UNAVAILABLE, "the client has gone");
    else
        http_run_route(rs->s, rs->route, rs, &rs->req, &rs->ready);
    if (!hold_here(rs->s, rs))
        resume(rs);
}

/* On a write worker: the requests of batched routes (server_batch_routes[])
 * queued at one moment, each route's run with one call (http_run_route_batch),
 * then each connection resumed or held from here, as route_work does. */
static void route_work_batch(void **uds, size_t n)
{
    reqstate_t *mine[OFFLOAD_BATCH_MAX], *run[OFFLOAD_BATCH_MAX];
    http_server_t *s = ((reqstate_t *)uds[0])->s;
    if (s->agent_stall_ms > 0 && write_class(((reqstate_t *)uds[0])->route) == HTTP_WRITE_AGENT)
        usleep((useconds_t)s->agent_stall_ms * 1000); /* test hook: once a batch */
    while (n > 0) {                                   /* one route at a time, each in queue order */
        const route_ent_t *e = ((reqstate_t *)uds[0])->route;
        size_t nmine = 0, nrun = 0, left = 0;
        for (size_t i = 0; i < n; i++) {
            reqstate_t *rs = uds[i];
            if (rs->route != e) {
                uds[left++] = rs;
                continue;
            }
            mine[nmine++] = rs;
            if (client_gone(rs)) /* answered alone */
                http_reply_errorf(&rs->ready, PAI_E_UNAVAILABLE, "the client has gone");
            else
                run[nrun++] = rs;
        }
        if (nrun > 0)
            http_run_route_batch(s, e, run, nrun);
        if (left == 0) /* the next batch may start before these answers go */
            offload_batch_answered();
        for (size_t i = 0; i < nmine; i++)
            if (!hold_here(s, mine[i]))
                resume(mine[i]);
        n = left;
    }
}

/* Suspend the connection and queue its handler on the write workers. */
static void route_offload(http_server_t *s, struct MHD_Connection *conn, reqstate_t *rs,
                          const http_req_t *req)
{
    rs->req = *req; /* its strings live in rs and the connection until on_completed */
    rs->deferred = rs->keep_busy = true;
    rs->s = s;
    rs->conn = conn;
    MHD_suspend_connection(conn);
    if (rs->route->batch)
        offload_run_batch_in(s->writes, write_class(rs->route), route_work_batch, rs);
    else
        offload_run_in(s->writes, write_class(rs->route), route_work, rs);
}

static enum MHD_Result dispatch(http_server_t *s, struct MHD_Connection *conn, reqstate_t *rs,
                                const char *url, const char *method)
{
    rs->t0_us = time_mono_us();
    http_req_t req = {.method = method, .path = url, .conn_ = conn};
    http_resp_t resp = {0};
    req.body = buf_str(&rs->body);
    req.body_len = rs->body.len;
    req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const route_ent_t *e = http_find_route(s, rs, method, url, &req, &resp);
    rs->route = e;
    if (e && rs->too_large)
        http_reply_errorf(&resp, PAI_E_TOO_LARGE, "request body larger than %u bytes",
                          PAI_MAX_HTTP_BODY);
    else if (e && on_write_workers(e)) {
        route_offload(s, conn, rs, &req);
        return MHD_YES;
    } else if (e)
        http_run_route(s, e, rs, &req, &resp);
    if (resp.defer.finish) {
        defer_start(s, conn, rs, &resp);
        return MHD_YES;
    }
    return answer(s, conn, rs, &resp, method, url);
}

/* URL unescaping: MHD's own, except that a string with an encoded NUL
 * ("%00") is left undecoded, so a name can never be cut short by it. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls, (void)conn;
    for (const char *p = s; (p = strchr(p, '%')) != NULL; p++)
        if (p[1] == '0' && p[2] == '0')
            return strlen(s);
    return MHD_http_unescape(s);
}

static enum MHD_Result reject_too_large(http_server_t *s, struct MHD_Connection *conn)
{
    http_resp_t resp = {0};
    http_reply_errorf(&resp, PAI_E_TOO_LARGE, "request body larger than %u bytes",
                      PAI_MAX_HTTP_BODY);
    http_add_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = send_resp(s, conn, &resp);
    http_resp_free(&resp);
    http_stats_record(&s->unmatched, 413, 0);
    return ret;
}

/* The connection was evicted (connlimit.h) just as this request arrived,
 * and the request was read after all: it is not run but answered 503 with
 * Retry-After, and the connection closed, so that its client never sees a
 * reset after a request the server handled, nor one it is unsure of. */
static enum MHD_Result refuse_evicted(http_server_t *s, struct MHD_Connection *conn)
{
    http_resp_t resp = {0};
    http_reply_errorf(&resp, PAI_E_UNAVAILABLE,
                      "the server closed this connection to admit another (max_connections); "
                      "the request was not run: send it again");
    http_add_header(&resp, "Retry-After", "1");
    http_add_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = send_resp(s, conn, &resp);
    http_resp_free(&resp);
    http_stats_record(&s->unmatched, 503, 0);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    http_server_t *s = cls;
    reqstate_t *rs = *con_cls;
    if (!rs) {
        rs = xcalloc(1, sizeof(*rs));
        buf_init(&rs->body, PAI_MAX_HTTP_BODY);
        *con_cls = rs;
        /* forwarded by a standby: its connection counts against its client */
        const union MHD_ConnectionInfo *sc =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        standby_count_client(
            s->ctx, s->admit, sc ? sc->socket_context : NULL,
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, STANDBY_CLIENT_HEADER),
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, STANDBY_PROOF_HEADER), method, url);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        int64_t len;
        if (cl && str_to_i64(cl, 0, INT64_MAX, &len) == PAI_OK && len > PAI_MAX_HTTP_BODY) {
            rs->too_large = true;
            return reject_too_large(s, conn);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->too_large && buf_append(&rs->body, upload_data, *upload_data_size) != PAI_OK) {
            rs->too_large = true;
            buf_free(&rs->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    connlimit_conn_t *cc = ci ? ci->socket_context : NULL;
    if (rs->deferred) /* resumed; busy since dispatch */
        return defer_answer(s, conn, rs, method, url);
    if (!connlimit_busy(s->admit, cc, true))
        return refuse_evicted(s, conn);
    /* never evicted from here until on_completed, when its answer has been
     * sent whole: not while the handler runs or its answer is deferred, nor
     * while the answer is queued or on its way (evicted then, a request
     * already run would reach its client as a reset) */
    rs->keep_busy = true;
    return dispatch(s, conn, rs, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server_t *s = cls;
    (void)toe;
    reqstate_t *rs = *con_cls;
    if (!rs)
        return;
    arm_wait(s, rs); /* a worker may still be arming its held poll */
    if (rs->keep_busy) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        connlimit_busy(s->admit, ci ? ci->socket_context : NULL, false);
    }
    if (rs->defer.finish && rs->defer.free_ud) /* ended while held, never answered */
        rs->defer.free_ud(rs->defer.ud);
    http_resp_free(&rs->ready);
    buf_free(&rs->body);
    free(rs->pathcopy);
    free(rs);
    *con_cls = NULL;
}

/* ---- admission (common/connlimit.h) ------------------------------------ */

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    http_server_t *s = cls;
    (void)addrlen;
    return connlimit_admit(s->admit, addr) ? MHD_YES : MHD_NO;
}

/* Called on the pool thread that serves the connection: STARTED once it is
 * accepted, CLOSED before its socket is closed. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server_t *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        connlimit_close(s->admit, *socket_context);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *a =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *f =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    *socket_context = a && f ? connlimit_open(s->admit, a->client_addr, f->connect_fd) : NULL;
}

/* ---- metrics ----------------------------------------------------------- */

static void collect_http(void *ud, buf_t *out)
{
    http_server_t *s = ud;
    http_routes_collect(s, out);
    connlimit_stats_t cs;
    connlimit_get_stats(s->admit, &cs);
    prom_family(out, "pai_http_connections", "gauge",
                "Open REST API connections (busy: a handler runs for them).");
    prom_sample(out, "pai_http_connections", "state=\"idle\"", (double)(cs.live - cs.busy));
    prom_sample(out, "pai_http_connections", "state=\"busy\"", (double)cs.busy);
    prom_family(out, "pai_http_held", "gauge",
                "Answers held without a thread (suspended agent long-polls).");
    prom_sample(out, "pai_http_held", NULL, (double)waiters_count(s->wait));
    prom_family(out, "pai_http_offload_pending", "gauge",
                "Blocking work (log reads) queued or running on the HTTP layer's workers.");
    prom_sample(out, "pai_http_offload_pending", NULL, (double)offload_pending(s->work));
    prom_family(out, "pai_http_write_pending", "gauge",
                "Requests that change state queued or running on the HTTP layer's write workers, "
                "by queue (agent: agent syncs; user: every other).");
    prom_sample(out, "pai_http_write_pending", "class=\"user\"",
                (double)offload_pending_in(s->writes, HTTP_WRITE_USER));
    prom_sample(out, "pai_http_write_pending", "class=\"agent\"",
                (double)offload_pending_in(s->writes, HTTP_WRITE_AGENT));
    prom_family(out, "pai_http_threads", "gauge", "Threads of the HTTP layer's pool.");
    prom_sample(out, "pai_http_threads", NULL, (double)s->threads);
    prom_family(out, "pai_http_connections_evicted_total", "counter",
                "Idle connections closed to make room (per-address bound or server full).");
    prom_sample(out, "pai_http_connections_evicted_total", NULL, (double)cs.evicted);
    prom_family(out, "pai_http_connections_refused_total", "counter",
                "Connections refused: the server was full and every connection busy.");
    prom_sample(out, "pai_http_connections_refused_total", NULL, (double)cs.refused);
    prom_family(out, "pai_http_connections_examined_total", "counter",
                "Idle connections looked at to find one to evict (admissions at a bound, rekeys).");
    prom_sample(out, "pai_http_connections_examined_total", NULL, (double)cs.examined);
}

/* ---- TLS --------------------------------------------------------------- */

/* Read a PEM file of the config (capped) into *out. */
static pai_err_t read_pem(const char *opt, const char *path, char **out, pai_error_t *e)
{
    buf_t b;
    buf_init(&b, 1024 * 1024);
    pai_err_t rc = buf_read_file(&b, path);
    if (rc == PAI_OK && (b.len == 0 || !strstr(buf_str(&b), "-----BEGIN ")))
        rc = PAI_E_INVALID;
    if (rc != PAI_OK) {
        buf_free(&b);
        return pai_error_set(e, PAI_E_INVALID, "%s %s: cannot read a PEM file (%s)", opt, path,
                             pai_err_msg(rc));
    }
    *out = xstrdup(buf_str(&b));
    sodium_memzero(b.data, b.len);
    buf_free(&b);
    return PAI_OK;
}

/* Native TLS (libmicrohttpd with GnuTLS) when tls_cert and tls_key are set:
 * fills opts (MHD_OPTION_ARRAY items, ended) and adds MHD_USE_TLS to *flags. */
static pai_err_t setup_tls(http_server_t *s, struct MHD_OptionItem opts[3], unsigned *flags,
                           pai_error_t *e)
{
    const server_config_t *cfg = s->ctx->cfg;
    const char *cert = cfg && cfg->tls_cert ? cfg->tls_cert : "";
    const char *key = cfg && cfg->tls_key ? cfg->tls_key : "";
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (!*cert && !*key)
        return PAI_OK;
    if (!*cert || !*key)
        return pai_error_set(e, PAI_E_INVALID, "TLS needs both tls_cert and tls_key");
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return pai_error_set(e, PAI_E_INVALID, "this libmicrohttpd was built without TLS");
    pai_err_t rc;
    if ((rc = read_pem("tls_cert", cert, &s->tls_cert, e)) != PAI_OK ||
        (rc = read_pem("tls_key", key, &s->tls_key, e)) != PAI_OK)
        return rc;
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key};
    opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    *flags |= MHD_USE_TLS;
    return PAI_OK;
}

/* ---- start / stop ------------------------------------------------------ */

/* The pool's size: asked, else 2 per core and 4 at least. */
static unsigned pool_size(unsigned asked)
{
    if (asked)
        return asked;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 2 ? (unsigned)cores * 2 : 4;
}

static pai_err_t start(server_ctx_t *ctx, const char *addr, int port, const http_limits_t *lim,
                       http_server_t **out, pai_error_t *e)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return pai_error_set(e, PAI_E_INVALID, "listen address '%s' is not an IPv4 address", addr);
    http_server_t *s = xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    pthread_mutex_init(&s->arm_mu, NULL);
    pthread_cond_init(&s->arm_cv, NULL);
    s->admit = connlimit_new(lim->max_connections, lim->per_addr_idle);
    ratelog_init(&s->mhdlog, "http", 10000);
    pai_err_t rc = http_routes_build(s);
    if (rc != PAI_OK) {
        pai_error_set(e, rc, "cannot compile the route table");
        goto fail;
    }
    s->threads = pool_size(lim->threads);
    /* Test hook (tests/blackbox/test_http_write_classes.py): every agent
     * sync (a batch of them, once) stalls its write worker this long, as
     * thousands of syncs queued on the engine lock do, so a test can show
     * what waits behind them. */
    const char *stall = getenv("PAI_TEST_AGENT_SYNC_STALL_MS");
    if (stall && str_to_i64(stall, 0, 60000, &s->agent_stall_ms) != PAI_OK)
        s->agent_stall_ms = 0;
    unsigned nw = lim->write_threads ? lim->write_threads : 32;
    /* users' requests on at most half the workers: a submission waiting
     * for its scheduling pass holds one, and 50 of them must not leave
     * the syncs of 10,000 agents a handful; syncs on at most 3/4 */
    unsigned most[HTTP_WRITE_NCLASSES] = {nw - nw / 2, nw - nw / 4};
    if (waiters_new(&s->wait) != PAI_OK ||
        offload_new("pai-offload", lim->offload_threads ? lim->offload_threads : 8, &s->work) !=
            PAI_OK ||
        offload_new_classes("pai-write", nw, HTTP_WRITE_NCLASSES, most, &s->writes) != PAI_OK) {
        rc = pai_error_set(e, PAI_E_IO, "cannot start the HTTP layer's threads");
        goto fail;
    }
    /* users' batches (job submissions, each waiting for a commit) one at
     * a time while they keep coming: those queued while one commits are
     * the next batch of the same worker, one commit for all of them */
    offload_serial_batches(s->writes, HTTP_WRITE_USER);
    /* MHD's own cap only backs ours up: evicted connections still count in
     * MHD until their socket is closed, so it gets as much again. */
    unsigned mhd_cap = lim->max_connections * 2;
    /* Each connection's memory (libmicrohttpd's pool: the read buffer, the
     * request line and headers, the answer's headers): 32 KiB by default
     * (http_connection_memory_kib), libmicrohttpd's own.  It zeroes the
     * whole pool at every request's end and half of it again as it reads
     * the next (0.9.75: ~48 KiB per request at 32 KiB, the pool threads'
     * largest user-space cost in a burst, ~5 us a job: docs/benchmarks-history.md,
     * "The server's HTTP side, seventh round"); 16 halves that, and the
     * room for headers: one line ~7.8 KB, all ~10 KB, a Cookie header
     * ~4.6 KB (libmicrohttpd keeps a parsed copy), against ~16, ~20 and
     * ~9 KB at 32.  A body is read in parts of up to half of it, whatever
     * its size. */
    const size_t conn_memory =
        lim->conn_memory_kib ? (size_t)lim->conn_memory_kib * 1024 : HTTP_CONN_MEMORY;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    struct MHD_OptionItem tls[3];
    if ((rc = setup_tls(s, tls, &flags, e)) != PAI_OK)
        goto fail;
    /* the logger comes first: MHD logs to stderr until it has read it */
    s->d = MHD_start_daemon(
        flags, (uint16_t)port, on_accept, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, ratelog_v,
        &s->mhdlog, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_CONNECTION_LIMIT, mhd_cap,
        MHD_OPTION_CONNECTION_TIMEOUT, lim->idle_timeout_s, MHD_OPTION_THREAD_POOL_SIZE, s->threads,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, conn_memory, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(512 * 1024), MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!s->d) {
        rc = pai_error_set(
            e, PAI_E_IO, "cannot listen on %s:%d (in use, or not an address of this host%s)", addr,
            port, (flags & MHD_USE_TLS) ? ", or tls_key does not match tls_cert" : "");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : port;
    if (ctx->metrics && (rc = metrics_register(ctx->metrics, "http", collect_http, s)) != PAI_OK) {
        pai_error_set(e, rc, "cannot register the HTTP metrics");
        goto fail;
    }
    *out = s;
    return PAI_OK;
fail:
    http_server_stop(s);
    return rc;
}

/* The HTTP layer's threads under SCHED_BATCH (taken by the threads this
 * thread creates until batch_end).  They hand every request from thread to
 * thread (a pool thread queues it on a write worker, which resumes the
 * connection for the pool thread to send the answer; a held poll's waker
 * queues its finish), and on a loaded machine with few cores the kernel's
 * wake-up preemption made each hand-off a context switch: the woken thread
 * ran at once, the waker was preempted, mid-batch.  A SCHED_BATCH thread
 * does not preempt the running one when it is woken (its turn comes when
 * the waker blocks or at the tick), so a worker resumes its whole batch
 * before the pool thread sends the answers, and a pool thread queues
 * every request it has read before a worker takes them: fewer switches,
 * larger batches, fewer commits.  But a woken request also waits for every
 * other process's turn: on a loaded machine end-to-end throughput of the
 * hollow runtime fell to 0.4x, so it is off unless http_sched_batch is 1
 * (docs/benchmarks-history.md, "The server's request side, third round").  Its
 * priority (nice) is unchanged, and no privilege is needed.  False when
 * the policy could not be set (nothing to undo). */
static bool batch_begin(int *policy, struct sched_param *was)
{
    struct sched_param zero = {0};
    if (pthread_getschedparam(pthread_self(), policy, was) != 0 || *policy == SCHED_BATCH)
        return false;
    return pthread_setschedparam(pthread_self(), SCHED_BATCH, &zero) == 0;
}

static void batch_end(bool set, int policy, const struct sched_param *was)
{
    if (set && pthread_setschedparam(pthread_self(), policy, was) != 0)
        log_warn("http: the starting thread's scheduling policy could not be restored");
}

pai_err_t http_server_start(server_ctx_t *ctx, const char *addr, int port, const http_limits_t *lim,
                            http_server_t **out, pai_error_t *e)
{
    int policy = SCHED_OTHER;
    struct sched_param was = {0};
    bool batch = lim->sched_batch && batch_begin(&policy, &was);
    pai_err_t rc = start(ctx, addr, port, lim, out, e);
    batch_end(batch, policy, &was);
    return rc;
}

int http_server_port(const http_server_t *s)
{
    return s->port;
}

void http_server_stop(http_server_t *s)
{
    if (!s)
        return;
    /* MHD refuses to stop with suspended connections: answer the held ones
     * and finish the offloaded work first (both answer at once from now on) */
    waiters_stop(s->wait);
    offload_stop(s->writes); /* before work: a handler may still hand work on */
    offload_stop(s->work);
    if (s->d)
        MHD_stop_daemon(s->d);
    waiters_free(s->wait);
    offload_free(s->writes);
    offload_free(s->work);
    connlimit_free(s->admit);
    ratelog_destroy(&s->mhdlog);
    free(s->tls_cert);
    if (s->tls_key)
        sodium_memzero(s->tls_key, strlen(s->tls_key));
    free(s->tls_key);
    http_routes_free(s);
    pthread_cond_destroy(&s->arm_cv);
    pthread_mutex_destroy(&s->arm_mu);
    free(s);
}
