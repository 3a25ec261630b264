/*
 * http_dispatch.c - a request to its handler (http.c calls these on the
 * pool thread, or on a write worker for the handlers that change state):
 * the route (404, 405, CORS preflights), who leads (a standby answers
 * reads from its view of the store and forwards the rest), the caller's
 * identity and the route's permission, then the handler.
 */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/http_int.h"
#include "server/leader.h"
#include "server/server.h"
#include "server/standby.h"

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

/* The Access-Control-Allow-Origin to answer a request with, or NULL (no
 * CORS).  cors_allow_origin lists the allowed origins, separated by commas
 * or spaces ("" = CORS off, the default; "*" = any origin, OpenPAI's); a
 * listed origin is answered with itself, so the reply must vary by Origin. */
const char *http_cors_origin(const http_server_t *s, struct MHD_Connection *conn)
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
const route_ent_t *http_find_route(http_server_t *s, reqstate_t *rs, const char *method,
                                   const char *url, http_req_t *req, http_resp_t *resp)
{
    char *segs[HTTP_MAX_SEGS];
    size_t offs[HTTP_MAX_SEGS];
    bool path_known = false;
    if (strlen(url) > HTTP_MAX_PATH) {
        http_reply_errorf(resp, PAI_E_NO_API, "path too long");
        return NULL;
    }
    free(rs->pathcopy); /* a held answer dispatched again routes again */
    rs->pathcopy = xstrdup(url);
    size_t n = http_split_path(rs->pathcopy, segs, offs);
    for (size_t i = 0; n <= HTTP_MAX_SEGS && i < s->nroutes; i++) {
        if (!http_route_match(&s->routes[i], segs, offs, n, url, req))
            continue;
        if (strcmp(s->routes[i].r->method, method) == 0)
            return &s->routes[i];
        path_known = true;
    }
    req->nparams = 0;
    if (path_known && strcmp(method, "OPTIONS") == 0 && http_cors_origin(s, req->conn_))
        cors_preflight(resp);
    else if (path_known)
        http_reply_errorf(resp, PAI_E_METHOD_NOT_ALLOWED, "%s is not allowed on %s", method, url);
    else
        http_reply_errorf(resp, PAI_E_NO_API, "API %s is not found.", url); /* OpenPAI's text */
    return NULL;
}

/* Identify the caller (an anonymous route ignores a bad token) with ctx's
 * auth: the server's, or a standby's view's. */
static pai_err_t identify(server_ctx_t *ctx, const route_ent_t *e, reqstate_t *rs, http_req_t *req,
                          pai_error_t *err)
{
    const char *authz = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    pai_err_t rc = ctx->auth ? auth_identify(ctx->auth, authz, &rs->ident) : PAI_OK;
    if (rc == PAI_OK)
        req->who = rs->ident.who;
    else if (e->r->perm != PERM_ANON)
        return pai_error_set(err, rc, PAI_MSG_BAD_TOKEN);
    return PAI_OK;
}

/* This server does not lead (the gate said rc, e names the leader): a read
 * its view of the store answers runs against the view (*view, held, and
 * *ctx, the view's context); any other request but the agents' is
 * forwarded to the leader (*forwarded: answered in resp or e).  Else rc
 * stands: 421 naming the leader, or 503 while nobody leads. */
static pai_err_t standby_route(http_server_t *s, const route_ent_t *ent, http_req_t *req,
                               http_resp_t *resp, pai_err_t rc, pai_error_t *e,
                               standby_view_t **view, server_ctx_t **ctx, bool *forwarded)
{
    standby_t *sb = s->ctx->standby;
    const char *leader = json_string_value(json_object_get(e->details, "leader"));
    bool can_forward = sb && rc == PAI_E_NOT_LEADER && leader && standby_forwards(ent->r, req);
    /* from the view unless the client asks for the leader's answer (the CLI
     * does) or the view is older than a write this standby forwarded, and
     * a leader can answer instead.  Not Cache-Control: browsers send
     * no-cache with every fetch the portal makes. */
    const char *rd = http_header(req, STANDBY_READ_HEADER);
    bool fresh = can_forward && rd && strcasecmp(rd, "leader") == 0;
    if (sb && standby_reads(ent->r) && !fresh && (*view = standby_view_get(sb, can_forward))) {
        *ctx = standby_view_ctx(*view);
        pai_error_free(e);
        return PAI_OK;
    }
    if (!can_forward)
        return rc;
    char *url = xstrdup(leader);
    pai_error_free(e);
    *forwarded = true;
    rc = standby_forward(s->ctx, url, req, resp, e);
    free(url);
    return rc;
}

/* A request's steps before its handler: who leads (a standby answers
 * reads from its view of the store and forwards the rest:
 * server/standby.h), the caller's identity and the route's permission.
 * *ctx: the context the handler runs in (a view's, held in *view, or the
 * server's); *forwarded: answered by the leader already. */
static pai_err_t route_begin(http_server_t *s, const route_ent_t *e, reqstate_t *rs,
                             http_req_t *req, http_resp_t *resp, pai_error_t *err,
                             server_ctx_t **ctx, standby_view_t **view, bool *forwarded)
{
    pai_err_t rc = PAI_OK;
    bool modules = true; /* a standby's own routes run without them */
    *ctx = s->ctx;
    *view = NULL;
    *forwarded = false; /* the leader identifies and answers */
    if (s->ctx->leader)
        rc = leader_gate(s->ctx->leader, e->r->method, e->r->pattern, &modules, err);
    if (rc != PAI_OK)
        rc = standby_route(s, e, req, resp, rc, err, view, ctx, forwarded);
    if (rc == PAI_OK && (modules || *view) && !*forwarded)
        rc = identify(*ctx, e, rs, req, err);
    if (rc == PAI_OK && !*forwarded)
        rc = check_perm(e->r->perm, &req->who, err);
    return rc;
}

/* After the handler: its error, if any, answered with http_reply_err(). */
static void route_end(http_server_t *s, standby_view_t *view, http_resp_t *resp, pai_err_t rc,
                      pai_error_t *err)
{
    standby_view_put(s->ctx->standby, view); /* a view's routes answer at once */
    if (rc != PAI_OK) {
        err->code = rc; /* a handler that returned a code without setting err */
        http_reply_err(resp, err);
    } else if (resp->status == 0 && !resp->defer.finish) {
        pai_error_set(err, PAI_E_INTERNAL, "the handler gave no answer");
        http_reply_err(resp, err);
    }
    pai_error_free(err);
}

void http_run_route(http_server_t *s, const route_ent_t *e, reqstate_t *rs, http_req_t *req,
                    http_resp_t *resp)
{
    pai_error_t err = PAI_ERROR_INIT;
    server_ctx_t *ctx;
    standby_view_t *view;
    bool forwarded;
    pai_err_t rc = route_begin(s, e, rs, req, resp, &err, &ctx, &view, &forwarded);
    if (rc == PAI_OK && !forwarded)
        rc = e->r->fn(ctx, req, resp, &err);
    route_end(s, view, resp, rc, &err);
}

void http_run_route_batch(http_server_t *s, const route_ent_t *e, reqstate_t *const *rss, size_t n)
{
    http_call_t *calls = xcalloc(n, sizeof(*calls));
    pai_error_t *errs = xcalloc(n, sizeof(*errs));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        reqstate_t *rs = rss[i];
        pai_error_t err = PAI_ERROR_INIT;
        server_ctx_t *ctx;
        standby_view_t *view;
        bool forwarded;
        pai_err_t rc = route_begin(s, e, rs, &rs->req, &rs->ready, &err, &ctx, &view, &forwarded);
        if (rc == PAI_OK && !forwarded && !view && ctx == s->ctx) { /* into the batch */
            errs[m] = err;
            calls[m] = (http_call_t){.req = &rs->req, .resp = &rs->ready, .e = &errs[m]};
            m++;
            continue;
        }
        if (rc == PAI_OK && !forwarded)
            rc = e->r->fn(ctx, &rs->req, &rs->ready, &err);
        route_end(s, view, &rs->ready, rc, &err);
    }
    if (m > 0)
        e->batch(s->ctx, calls, m);
    for (size_t i = 0; i < m; i++)
        route_end(s, NULL, calls[i].resp, calls[i].rc, calls[i].e);
    free(errs);
    free(calls);
}
