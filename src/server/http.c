/*
 * http.c - the REST layer over libmicrohttpd (see http.h for the contract).
 *
 * Request procedure (one MHD connection thread):
 *  1. First call: allocate the request state; a Content-Length over
 *     PAI_MAX_HTTP_BODY is answered 413 at once, without reading the body.
 *  2. Body chunks go into a buf_t capped at PAI_MAX_HTTP_BODY (a chunked
 *     body that grows past it is answered 413 at the end).
 *  3. Last call: match the route table (404 NoApiError, 405 for a known
 *     path with the wrong method), identify the caller from the token,
 *     check the route's permission, run the handler, send its response,
 *     and count the request and its latency for /metrics.
 *
 * Routes are compiled once at start into segment arrays; matching is a scan
 * of the table without allocation.
 *
 * Connections: one thread each, waiting in poll(2) (no FD_SETSIZE ceiling);
 * every connection is admitted by common/connlimit.h, which bounds the idle
 * connections of each address and evicts idle ones when the server is full,
 * so a connection is held against eviction only while its handler runs or
 * its streamed answer (http_reply_stream) is being sent.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/connlimit.h"
#include "common/limits.h"
#include "common/ratelog.h"
#include "common/log.h"
#include "common/promtext.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/server.h"

#define HTTP_MAX_SEGS 32
#define HTTP_MAX_PATH 4096

/* Status codes counted individually; others go to the last slot. */
static const int counted_status[] = {200, 201, 202, 204, 302, 400, 401, 403, 404,
                                     405, 409, 413, 429, 500, 501, 503, 0};
#define NSTATUS ARRAY_LEN(counted_status)

/* Latency histogram buckets, seconds. */
static const double lat_bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
#define NBUCKETS ARRAY_LEN(lat_bounds)

typedef struct {
    atomic_ullong by_status[NSTATUS];
    atomic_ullong bucket[NBUCKETS + 1]; /* last: +Inf */
    atomic_ullong sum_us;
    atomic_ullong count;
} route_stats_t;

typedef struct {
    const http_route_t *r;
    char *segs[HTTP_MAX_SEGS];
    size_t nsegs;
    bool wildcard; /* pattern ends in a star segment */
    route_stats_t stats;
} route_ent_t;

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
};

/* Per-request state, MHD's con_cls. */
typedef struct {
    buf_t body;
    bool too_large;
    bool streaming; /* a streamed reply was queued: busy until on_completed */
    char *pathcopy;
    auth_ident_t ident;
} reqstate_t;

/* ---- route table ------------------------------------------------------- */

/* Split path into segments (in place); offsets into the original path too. */
static size_t split_path(char *p, char **segs, size_t *offs)
{
    size_t n = 0;
    char *base = p;
    while (*p && n < HTTP_MAX_SEGS) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        segs[n] = p;
        offs[n++] = (size_t)(p - base);
        while (*p && *p != '/')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return *p ? HTTP_MAX_SEGS + 1 : n;
}

static void compile_route(route_ent_t *e, const http_route_t *r)
{
    char *copy = xstrdup(r->pattern);
    char *segs[HTTP_MAX_SEGS];
    size_t offs[HTTP_MAX_SEGS];
    size_t n = split_path(copy, segs, offs);
    e->r = r;
    if (n > HTTP_MAX_SEGS)
        n = HTTP_MAX_SEGS;
    for (size_t i = 0; i < n; i++)
        e->segs[i] = xstrdup(segs[i]);
    e->nsegs = n;
    if (n > 0 && strcmp(e->segs[n - 1], "*") == 0) {
        e->wildcard = true;
        e->nsegs = n - 1;
    }
    free(copy);
}

/* Does e match the split path?  Fills req's params on success. */
static bool route_match(const route_ent_t *e, char **segs, const size_t *offs, size_t n,
                        const char *path, http_req_t *req)
{
    if (e->wildcard ? n < e->nsegs : n != e->nsegs)
        return false;
    size_t np = 0;
    for (size_t i = 0; i < e->nsegs; i++) {
        const char *ps = e->segs[i];
        if (ps[0] == '{') {
            if (np < HTTP_MAX_PARAMS) {
                req->param_names[np] = ps; /* "{name}": http_param compares inside braces */
                req->param_values[np++] = segs[i];
            }
        } else if (strcmp(ps, segs[i]) != 0) {
            return false;
        }
    }
    if (e->wildcard && np < HTTP_MAX_PARAMS) {
        req->param_names[np] = "{*}";
        req->param_values[np++] = n > e->nsegs ? path + offs[e->nsegs] : "";
    }
    req->nparams = np;
    return true;
}

static pai_err_t build_routes(http_server_t *s)
{
    size_t n = 0;
    for (size_t m = 0; server_modules[m]; m++)
        for (const http_route_t *r = server_modules[m]->routes; r && r->method; r++)
            n++;
    s->routes = xcalloc(n ? n : 1, sizeof(*s->routes));
    for (size_t m = 0; server_modules[m]; m++)
        for (const http_route_t *r = server_modules[m]->routes; r && r->method; r++)
            compile_route(&s->routes[s->nroutes++], r);
    return PAI_OK;
}

static void free_routes(http_server_t *s)
{
    for (size_t i = 0; i < s->nroutes; i++)
        for (size_t k = 0; k < HTTP_MAX_SEGS; k++)
            free(s->routes[i].segs[k]);
    free(s->routes);
}

/* ---- public request helpers -------------------------------------------- */

const char *http_param(const http_req_t *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->nparams; i++) {
        const char *pn = req->param_names[i] + 1; /* skip '{' */
        if (strncmp(pn, name, len) == 0 && pn[len] == '}')
            return req->param_values[i];
    }
    return NULL;
}

const char *http_query(const http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn_, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn_, MHD_HEADER_KIND, name);
}

const char *http_client_addr(const http_req_t *req, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn_, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const void *ip = NULL;
    if (sa && sa->sa_family == AF_INET)
        ip = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        ip = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!ip || !inet_ntop(sa->sa_family, ip, buf, (socklen_t)len))
        str_copy(buf, "?", len);
    return buf;
}

/* Forget a streamed body that will not be sent (another reply replaces it). */
static void stream_drop(http_resp_t *resp)
{
    if (resp->stream_free)
        resp->stream_free(resp->stream_ud);
    resp->stream = NULL;
    resp->stream_ud = NULL;
    resp->stream_free = NULL;
}

void http_reply_json(http_resp_t *resp, int status, json_t *j)
{
    stream_drop(resp);
    free(resp->body);
    resp->status = status;
    resp->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->content_type = "application/json";
    json_decref(j);
    if (!resp->body && j)
        resp->status = 500;
}

void http_reply_text(http_resp_t *resp, int status, const char *content_type, const char *text,
                     size_t len)
{
    stream_drop(resp);
    free(resp->body);
    resp->status = status;
    resp->body = xmalloc(len + 1);
    memcpy(resp->body, text, len);
    resp->body[len] = '\0';
    resp->body_len = len;
    resp->content_type = content_type;
}

void http_reply_stream(http_resp_t *resp, int status, const char *content_type, http_stream_fn read,
                       void (*free_ud)(void *ud), void *ud)
{
    stream_drop(resp);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = status;
    resp->content_type = content_type;
    resp->stream = read;
    resp->stream_ud = ud;
    resp->stream_free = free_ud;
}

void http_reply_err(http_resp_t *resp, const pai_error_t *e)
{
    pai_err_t code = e->code == PAI_OK ? PAI_E_INTERNAL : e->code;
    json_t *body =
        xjson_pack("{s:s, s:s}", "code", pai_err_code(code), "message",
                   e->code == PAI_OK ? "the handler failed without a reason" : pai_error_msg(e));
    const char *k;
    json_t *v;
    json_object_foreach(e->details, k, v)
    {
        if (body && strcmp(k, "code") != 0 && strcmp(k, "message") != 0)
            json_object_set(body, k, v);
    }
    http_reply_json(resp, pai_err_status(code), body);
}

/* The layer's own errors (no route, too large, refused token). */
static void reply_error(http_resp_t *resp, pai_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(http_resp_t *resp, pai_err_t code, const char *fmt, ...)
{
    pai_error_t e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    http_reply_err(resp, &e);
}

void http_add_header(http_resp_t *resp, const char *name, const char *value)
{
    if (resp->nheaders >= ARRAY_LEN(resp->headers))
        return;
    resp->headers[resp->nheaders][0] = xstrdup(name);
    resp->headers[resp->nheaders][1] = xstrdup(value);
    resp->nheaders++;
}

pai_err_t http_body_json(const http_req_t *req, json_t **out, pai_error_t *e)
{
    json_error_t jerr;
    *out = NULL;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return pai_error_set(e, PAI_E_INVALID, "malformed JSON body: %s (line %d)", jerr.text,
                             jerr.line);
    if (!json_is_object(j)) {
        json_decref(j);
        return pai_error_set(e, PAI_E_INVALID, "the body must be a JSON object");
    }
    *out = j;
    return PAI_OK;
}

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    json_t *obj = cls;
    const char *prev = off ? json_string_value(json_object_get(obj, key)) : "";
    char *joined = str_printf("%s%.*s", prev ? prev : "", (int)size, data ? data : "");
    if (!joined)
        return MHD_NO;
    json_object_set_new(obj, key, json_string(joined));
    free(joined);
    return MHD_YES;
}

pai_err_t http_body_object(const http_req_t *req, json_t **out, pai_error_t *e)
{
    const char *ct = req->content_type ? req->content_type : "";
    if (!str_has_prefix(ct, "application/x-www-form-urlencoded"))
        return http_body_json(req, out, e);
    *out = NULL;
    json_t *obj = json_object();
    struct MHD_PostProcessor *pp = MHD_create_post_processor(req->conn_, 4096, form_field, obj);
    if (!pp || MHD_post_process(pp, req->body, req->body_len) != MHD_YES) {
        if (pp)
            MHD_destroy_post_processor(pp);
        json_decref(obj);
        return pai_error_set(e, PAI_E_INVALID, "malformed form body");
    }
    MHD_destroy_post_processor(pp);
    *out = obj;
    return PAI_OK;
}

/* ---- dispatch ---------------------------------------------------------- */

/* The permission check; PAI_OK when the caller may run the route.  The
 * messages are OpenPAI's (rest-server middlewares/token.js). */
static pai_err_t check_perm(http_perm_t perm, const http_identity_t *who, pai_error_t *e)
{
    bool user = who->authenticated && !who->agent;
    switch (perm) {
    case PERM_ANON:
        return PAI_OK;
    case PERM_USER:
        return user ? PAI_OK : pai_error_set(e, PAI_E_UNAUTHORIZED, NULL);
    case PERM_SESSION:
        if (!user)
            return pai_error_set(e, PAI_E_UNAUTHORIZED, NULL);
        return who->app_token ? pai_error_set(e, PAI_E_FORBIDDEN_TOKEN, NULL) : PAI_OK;
    case PERM_ADMIN:
        if (!user)
            return pai_error_set(e, PAI_E_UNAUTHORIZED, NULL);
        if (who->app_token)
            return pai_error_set(e, PAI_E_FORBIDDEN_TOKEN, NULL);
        return who->admin ? PAI_OK : pai_error_set(e, PAI_E_FORBIDDEN, PAI_MSG_NON_ADMIN);
    case PERM_AGENT:
        if (who->agent || (who->admin && !who->app_token))
            return PAI_OK;
        if (who->authenticated)
            return pai_error_set(e, PAI_E_FORBIDDEN, "only the agent token may do this operation");
        return pai_error_set(e, PAI_E_UNAUTHORIZED, NULL);
    }
    return pai_error_set(e, PAI_E_FORBIDDEN, NULL);
}

static void stats_record(route_stats_t *st, int status, int64_t us)
{
    size_t si = NSTATUS - 1;
    for (size_t i = 0; i + 1 < NSTATUS; i++)
        if (counted_status[i] == status) {
            si = i;
            break;
        }
    atomic_fetch_add_explicit(&st->by_status[si], 1, memory_order_relaxed);
    double sec = (double)us / 1e6;
    size_t b = 0;
    while (b < NBUCKETS && sec > lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&st->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_us, (unsigned long long)us, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
}

/* The Access-Control-Allow-Origin to answer a request with, or NULL (no
 * CORS).  cors_allow_origin lists the allowed origins, separated by commas
 * or spaces ("" = CORS off, the default; "*" = any origin, OpenPAI's); a
 * listed origin is answered with itself, so the reply must vary by Origin. */
static const char *cors_origin(const http_server_t *s, struct MHD_Connection *conn)
{
    const server_config_t *cfg = s->ctx->cfg;
    const char *list = cfg && cfg->cors_allow_origin ? cfg->cors_allow_origin : "";
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    size_t olen = origin ? strlen(origin) : 0;
    for (const char *p = list; *p;) {
        p += strspn(p, ", \t");
        size_t n = strcspn(p, ", \t");
        if (n == 1 && *p == '*')
            return "*";
        if (n && n == olen && strncasecmp(p, origin, n) == 0)
            return origin;
        p += n;
    }
    return NULL;
}

/* A CORS preflight: which methods and headers browsers may use. */
static void cors_preflight(http_resp_t *resp)
{
    http_reply_text(resp, 204, "text/plain", "", 0);
    http_add_header(resp, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS");
    http_add_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    http_add_header(resp, "Access-Control-Max-Age", "86400");
}

/* Find the route; *stats gets where to count.  Replies 404/405 (and CORS
 * preflights) itself. */
static const route_ent_t *find_route(http_server_t *s, reqstate_t *rs, const char *method,
                                     const char *url, http_req_t *req, http_resp_t *resp)
{
    char *segs[HTTP_MAX_SEGS];
    size_t offs[HTTP_MAX_SEGS];
    bool path_known = false;
    if (strlen(url) > HTTP_MAX_PATH) {
        reply_error(resp, PAI_E_NO_API, "path too long");
        return NULL;
    }
    rs->pathcopy = xstrdup(url);
    size_t n = split_path(rs->pathcopy, segs, offs);
    for (size_t i = 0; n <= HTTP_MAX_SEGS && i < s->nroutes; i++) {
        if (!route_match(&s->routes[i], segs, offs, n, url, req))
            continue;
        if (strcmp(s->routes[i].r->method, method) == 0)
            return &s->routes[i];
        path_known = true;
    }
    req->nparams = 0;
    if (path_known && strcmp(method, "OPTIONS") == 0 && cors_origin(s, req->conn_))
        cors_preflight(resp);
    else if (path_known)
        reply_error(resp, PAI_E_METHOD_NOT_ALLOWED, "%s is not allowed on %s", method, url);
    else
        reply_error(resp, PAI_E_NO_API, "API %s is not found.", url); /* OpenPAI's text */
    return NULL;
}

/* Identify the caller, check the route's permission, run the handler and
 * answer its error, if any, with http_reply_err(). */
static void run_route(http_server_t *s, const route_ent_t *e, reqstate_t *rs, http_req_t *req,
                      http_resp_t *resp)
{
    pai_error_t err = PAI_ERROR_INIT;
    const char *authz = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    pai_err_t rc = s->ctx->auth ? auth_identify(s->ctx->auth, authz, &rs->ident) : PAI_OK;
    if (rc == PAI_OK)
        req->who = rs->ident.who;
    else if (e->r->perm != PERM_ANON)
        rc = pai_error_set(&err, rc, PAI_MSG_BAD_TOKEN);
    else
        rc = PAI_OK; /* an anonymous route ignores a bad token */
    if (rc == PAI_OK)
        rc = check_perm(e->r->perm, &req->who, &err);
    if (rc == PAI_OK)
        rc = e->r->fn(s->ctx, req, resp, &err);
    if (rc != PAI_OK) {
        err.code = rc; /* a handler that returned a code without setting err */
        http_reply_err(resp, &err);
    } else if (resp->status == 0) {
        pai_error_set(&err, PAI_E_INTERNAL, "the handler gave no answer");
        http_reply_err(resp, &err);
    }
    pai_error_free(&err);
}

/* A streamed body as MHD's content reader (http_reply_stream). */
typedef struct {
    http_stream_fn read;
    void *ud;
    void (*free_ud)(void *ud);
} stream_t;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_t *st = cls;
    (void)pos;
    long n = st->read(st->ud, buf, max);
    if (n > 0)
        return (size_t)n < max ? (ssize_t)n : (ssize_t)max;
    /* never 0: in thread-per-connection mode MHD would call again at once */
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    stream_t *st = cls;
    if (st->free_ud)
        st->free_ud(st->ud);
    free(st);
}

/* The MHD response for resp; its body (or stream) moves into it. */
static struct MHD_Response *make_response(http_resp_t *resp)
{
    struct MHD_Response *r;
    if (resp->stream) {
        stream_t *st = xmalloc(sizeof(*st));
        *st = (stream_t){.read = resp->stream, .ud = resp->stream_ud, .free_ud = resp->stream_free};
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

static enum MHD_Result send_resp(struct MHD_Connection *conn, http_resp_t *resp,
                                 const char *cors_origin)
{
    struct MHD_Response *r = make_response(resp);
    if (!r)
        return MHD_NO;
    if (resp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i][0], resp->headers[i][1]);
    if (cors_origin) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", cors_origin);
        if (strcmp(cors_origin, "*") != 0)
            MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void resp_free(http_resp_t *resp)
{
    stream_drop(resp);
    free(resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i][0]);
        free(resp->headers[i][1]);
    }
}

static enum MHD_Result dispatch(http_server_t *s, struct MHD_Connection *conn, reqstate_t *rs,
                                const char *url, const char *method)
{
    int64_t t0 = time_mono_us();
    http_req_t req = {.method = method, .path = url, .conn_ = conn};
    http_resp_t resp = {0};
    req.body = buf_str(&rs->body);
    req.body_len = rs->body.len;
    req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    const route_ent_t *e = find_route(s, rs, method, url, &req, &resp);
    if (e && rs->too_large)
        reply_error(&resp, PAI_E_TOO_LARGE, "request body larger than %u bytes", PAI_MAX_HTTP_BODY);
    else if (e)
        run_route(s, e, rs, &req, &resp);
    int status = resp.status;
    bool stream = resp.stream != NULL;
    enum MHD_Result ret = send_resp(conn, &resp, cors_origin(s, conn));
    rs->streaming = stream && ret == MHD_YES;
    resp_free(&resp);
    stats_record(e ? (route_stats_t *)&e->stats : &s->unmatched, status, time_mono_us() - t0);
    if (status >= 500)
        log_warn("http: %s %s -> %d", method, url, status);
    else
        log_debug("http: %s %s -> %d", method, url, status);
    return ret;
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
    reply_error(&resp, PAI_E_TOO_LARGE, "request body larger than %u bytes", PAI_MAX_HTTP_BODY);
    http_add_header(&resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = send_resp(conn, &resp, cors_origin(s, conn));
    resp_free(&resp);
    stats_record(&s->unmatched, 413, 0);
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
    connlimit_busy(s->admit, cc, true); /* a running handler is never evicted */
    enum MHD_Result ret = dispatch(s, conn, rs, url, method);
    if (!rs->streaming) /* nor a streaming answer: on_completed ends it */
        connlimit_busy(s->admit, cc, false);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_server_t *s = cls;
    (void)toe;
    reqstate_t *rs = *con_cls;
    if (!rs)
        return;
    if (rs->streaming) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        connlimit_busy(s->admit, ci ? ci->socket_context : NULL, false);
    }
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

/* Called in the listening thread: STARTED before the connection's thread
 * exists, CLOSED after it ended and before its socket is closed. */
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

static void collect_route(buf_t *out, const char *method, const char *pattern, route_stats_t *st)
{
    char pat[512], lab[640];
    prom_escape(pat, sizeof(pat), pattern);
    for (size_t i = 0; i < NSTATUS; i++) {
        unsigned long long v = atomic_load(&st->by_status[i]);
        if (!v)
            continue;
        char code[8] = "other";
        if (counted_status[i])
            snprintf(code, sizeof(code), "%d", counted_status[i]);
        snprintf(lab, sizeof(lab), "method=\"%s\",route=\"%s\",status=\"%s\"", method, pat, code);
        prom_sample(out, "pai_api_requests_total", lab, (double)v);
    }
}

static void collect_hist(buf_t *out, const char *method, const char *pattern, route_stats_t *st)
{
    unsigned long long count = atomic_load(&st->count), cum = 0;
    if (!count)
        return;
    char pat[512], lab[700];
    prom_escape(pat, sizeof(pat), pattern);
    for (size_t b = 0; b <= NBUCKETS; b++) {
        cum += atomic_load(&st->bucket[b]);
        char le[32] = "+Inf";
        if (b < NBUCKETS)
            snprintf(le, sizeof(le), "%g", lat_bounds[b]);
        snprintf(lab, sizeof(lab), "method=\"%s\",route=\"%s\",le=\"%s\"", method, pat, le);
        prom_sample(out, "pai_api_request_duration_seconds_bucket", lab, (double)cum);
    }
    snprintf(lab, sizeof(lab), "method=\"%s\",route=\"%s\"", method, pat);
    prom_sample(out, "pai_api_request_duration_seconds_sum", lab,
                (double)atomic_load(&st->sum_us) / 1e6);
    prom_sample(out, "pai_api_request_duration_seconds_count", lab, (double)count);
}

static void collect_http(void *ud, buf_t *out)
{
    http_server_t *s = ud;
    prom_family(out, "pai_api_requests_total", "counter",
                "REST API requests by method, route pattern and status.");
    for (size_t i = 0; i < s->nroutes; i++)
        collect_route(out, s->routes[i].r->method, s->routes[i].r->pattern, &s->routes[i].stats);
    collect_route(out, "any", "unmatched", &s->unmatched);
    prom_family(out, "pai_api_request_duration_seconds", "histogram",
                "REST API request latency by method and route pattern.");
    for (size_t i = 0; i < s->nroutes; i++)
        collect_hist(out, s->routes[i].r->method, s->routes[i].r->pattern, &s->routes[i].stats);
    collect_hist(out, "any", "unmatched", &s->unmatched);
    connlimit_stats_t cs;
    connlimit_get_stats(s->admit, &cs);
    prom_family(out, "pai_http_connections", "gauge",
                "Open REST API connections (busy: a handler runs for them).");
    prom_sample(out, "pai_http_connections", "state=\"idle\"", (double)(cs.live - cs.busy));
    prom_sample(out, "pai_http_connections", "state=\"busy\"", (double)cs.busy);
    prom_family(out, "pai_http_connections_evicted_total", "counter",
                "Idle connections closed to make room (per-address bound or server full).");
    prom_sample(out, "pai_http_connections_evicted_total", NULL, (double)cs.evicted);
    prom_family(out, "pai_http_connections_refused_total", "counter",
                "Connections refused: the server was full and every connection busy.");
    prom_sample(out, "pai_http_connections_refused_total", NULL, (double)cs.refused);
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

pai_err_t http_server_start(server_ctx_t *ctx, const char *addr, int port, const http_limits_t *lim,
                            http_server_t **out, pai_error_t *e)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return pai_error_set(e, PAI_E_INVALID, "listen address '%s' is not an IPv4 address", addr);
    http_server_t *s = xcalloc(1, sizeof(*s));
    s->ctx = ctx;
    s->admit = connlimit_new(lim->max_connections, lim->per_addr_idle);
    ratelog_init(&s->mhdlog, "http", 10000);
    pai_err_t rc = build_routes(s);
    if (rc != PAI_OK) {
        pai_error_set(e, rc, "cannot compile the route table");
        goto fail;
    }
    /* MHD's own cap only backs ours up: evicted connections still count in
     * MHD until their thread has ended, so it gets as much again. */
    unsigned mhd_cap = lim->max_connections * 2;
    unsigned flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem tls[3];
    if ((rc = setup_tls(s, tls, &flags, e)) != PAI_OK)
        goto fail;
    /* the logger comes first: MHD logs to stderr until it has read it */
    s->d = MHD_start_daemon(
        flags, (uint16_t)port, on_accept, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, ratelog_v,
        &s->mhdlog, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_CONNECTION_LIMIT, mhd_cap,
        MHD_OPTION_CONNECTION_TIMEOUT, lim->idle_timeout_s, MHD_OPTION_THREAD_STACK_SIZE,
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

int http_server_port(const http_server_t *s)
{
    return s->port;
}

void http_server_stop(http_server_t *s)
{
    if (!s)
        return;
    if (s->d)
        MHD_stop_daemon(s->d);
    connlimit_free(s->admit);
    ratelog_destroy(&s->mhdlog);
    free(s->tls_cert);
    if (s->tls_key)
        sodium_memzero(s->tls_key, strlen(s->tls_key));
    free(s->tls_key);
    free_routes(s);
    free(s);
}
