/*
 * mod_cluster.c - the "cluster" module: the agent protocol endpoint,
 * virtual clusters (list, detail, and run-time create / resize / delete
 * through vcs.c) and SKU types, and our equivalents of OpenPAI's
 * Kubernetes endpoints (nodes and tasks shaped as NodeList / PodList), and
 * an admin's revocation and rotation of a node's credential, approval of a
 * new node (node_approval: manual), and GPU-hours
 * held versus used (GET /api/v2/usage, a pai extension).
 *
 * The job engine (ctx->engine, owned by the jobs module) holds the nodes and
 * the scheduler; these handlers only read it or feed it agent syncs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "server/auth.h"
#include "engine/engine.h"
#include "server/server.h"

/* A held agent poll (http_reply_hold over engine_poll_t). */
static void poll_arm(server_ctx_t *ctx, void *ud, const http_waker_t *w)
{
    (void)ctx;
    engine_waker_t ew = {.fn = w->fn, .ud = w->ud, .ticket = w->ticket};
    engine_poll_arm(ud, &ew);
}

static void poll_free(void *ud)
{
    engine_poll_free(ud);
}

/* The sync's answer, written as text by the engine (taken). */
static void reply_answer(http_resp_t *resp, char *text)
{
    http_reply_text(resp, 200, "application/json", text, strlen(text));
    free(text);
}

/* Stored and answerable, or held again (stored, now a long-poll). */
static pai_err_t poll_finish(server_ctx_t *ctx, void *ud, http_resp_t *resp, pai_error_t *e)
{
    (void)ctx;
    char *out = NULL;
    int64_t wait_ms = 0;
    pai_err_t rc = engine_poll_resume(ud, &out, &wait_ms, e);
    if (rc != PAI_OK)
        return rc;
    if (out)
        reply_answer(resp, out);
    else
        http_reply_hold(resp, wait_ms, poll_arm, poll_finish, poll_free, ud);
    return PAI_OK;
}

/* The agent sync: answered at once, or held without a thread until the
 * node's desired set changes or the wait ends (engine.h). */
static pai_err_t h_agent_sync(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e)
{
    json_t *body = NULL;
    char *out = NULL;
    engine_poll_t *held = NULL;
    int64_t wait_ms = 0;
    pai_err_t rc = http_body_json(req, &body, e);
    if (rc == PAI_OK)
        rc = engine_agent_sync_begin(ctx->engine, body, req->who.node_credential, &out, &held,
                                     &wait_ms, e);
    json_decref(body);
    if (rc == PAI_OK && held)
        http_reply_hold(resp, wait_ms, poll_arm, poll_finish, poll_free, held);
    else if (rc == PAI_OK)
        reply_answer(resp, out);
    return rc;
}

/* The agent syncs queued at one moment, run by one write worker as one
 * batch (engine_agent_sync_batch: one engine lock for all, one commit
 * before their answers); each answered as h_agent_sync would, a refused or
 * unreadable one failing alone. */
void cluster_agent_sync_batch(server_ctx_t *ctx, http_call_t *calls, size_t n)
{
    engine_sync_call_t *sc = xcalloc(n, sizeof(*sc));
    size_t *of = xcalloc(n, sizeof(*of)); /* sc[k] is calls[of[k]] */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *body = NULL;
        calls[i].rc = http_body_json(calls[i].req, &body, calls[i].e);
        if (calls[i].rc != PAI_OK)
            continue;
        sc[m] = (engine_sync_call_t){.req = body, .credential = calls[i].req->who.node_credential};
        of[m++] = i;
    }
    engine_agent_sync_batch(ctx->engine, sc, m);
    for (size_t k = 0; k < m; k++) {
        http_call_t *c = &calls[of[k]];
        json_decref(sc[k].req);
        c->rc = sc[k].rc;
        if (c->rc != PAI_OK) {
            *c->e = sc[k].err; /* its message and details move to the call */
            continue;
        }
        pai_error_free(&sc[k].err);
        if (sc[k].held)
            http_reply_hold(c->resp, sc[k].wait_ms, poll_arm, poll_finish, poll_free, sc[k].held);
        else
            reply_answer(c->resp, sc[k].resp);
    }
    free(of);
    free(sc);
}

static pai_err_t h_vcs(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    (void)req, (void)e;
    http_reply_json(resp, 200, engine_vcs_json(ctx->engine, NULL));
    return PAI_OK;
}

static pai_err_t h_vc(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    const char *vc = http_param(req, "vc");
    json_t *o = engine_vcs_json(ctx->engine, vc);
    if (!o)
        return pai_error_set(e, PAI_E_NO_VC, PAI_MSG_NO_VC, vc);
    http_reply_json(resp, 200, o);
    return PAI_OK;
}

/* PUT /api/v2/virtual-clusters/{vc} {"virtualCells": [...]}: create or resize. */
static pai_err_t h_vc_put(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    const char *vc = http_param(req, "vc");
    json_t *body = NULL;
    bool created = false;
    pai_err_t rc = http_body_json(req, &body, e);
    if (rc == PAI_OK)
        rc = engine_vc_change(ctx->engine, vc, body, &created, e);
    json_decref(body);
    if (rc != PAI_OK)
        return rc;
    /* The VC exists from here on: a group that cannot be made is logged, and
     * an admin can create it by hand (PUT /api/v2/groups). */
    pai_err_t grc = created ? auth_vc_added(ctx, vc) : PAI_OK;
    if (grc != PAI_OK)
        log_warn("vc=%s created but its group could not be made: %s", vc, pai_err_msg(grc));
    char *m = str_printf("%s virtual cluster %s successfully", created ? "create" : "update", vc);
    http_reply_json(resp, created ? 201 : 200, xjson_pack("{ss}", "message", m ? m : ""));
    free(m);
    return PAI_OK;
}

static pai_err_t h_vc_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                             pai_error_t *e)
{
    const char *vc = http_param(req, "vc");
    bool created = false;
    pai_err_t rc = engine_vc_change(ctx->engine, vc, NULL, &created, e);
    if (rc != PAI_OK)
        return rc;
    /* The VC is gone: ACLs that still name it grant nothing, so this is logged. */
    pai_err_t grc = auth_vc_removed(ctx, vc);
    if (grc != PAI_OK)
        log_warn("vc=%s deleted but the group ACLs still name it: %s", vc, pai_err_msg(grc));
    char *m = str_printf("remove virtual cluster %s successfully", vc);
    http_reply_json(resp, 200, xjson_pack("{ss}", "message", m ? m : ""));
    free(m);
    return PAI_OK;
}

static pai_err_t h_skus(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    (void)req, (void)e;
    http_reply_json(resp, 200, engine_skus_json(ctx->engine));
    return PAI_OK;
}

/* GET /api/v2/virtual-clusters/{vc}/sku-types (OpenPAI's JS SDK,
 * getVirtualClusterSkuTypes): the SKU types of /cluster/sku-types that the VC has. */
static pai_err_t h_vc_skus(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    const char *vc = http_param(req, "vc");
    json_t *v = engine_vcs_json(ctx->engine, vc);
    if (!v)
        return pai_error_set(e, PAI_E_NO_VC, PAI_MSG_NO_VC, vc);
    json_t *all = engine_skus_json(ctx->engine), *out = json_object(), *sku;
    const char *name;
    json_object_foreach(all, name, sku)
    {
        if (json_object_get(json_object_get(v, "skus"), name))
            json_object_set(out, name, sku);
    }
    json_decref(all);
    json_decref(v);
    http_reply_json(resp, 200, out);
    return PAI_OK;
}

static pai_err_t h_nodes(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                         pai_error_t *e)
{
    (void)req, (void)e;
    http_reply_json(resp, 200, engine_nodes_json(ctx->engine));
    return PAI_OK;
}

/* DELETE /api/v2/cluster/nodes/{node}/credential (revoke) and POST
 * .../credential/rotate: an admin's actions on a node's credential
 * (docs/operations.md, "Node credentials"). */
static pai_err_t node_cred_action(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                  bool revoke, pai_error_t *e)
{
    const char *node = http_param(req, "node");
    pai_err_t rc = engine_node_credential(ctx->engine, node, revoke, e);
    if (rc != PAI_OK)
        return rc;
    log_info("node=%s credential %s by %s", node, revoke ? "revoked" : "rotation asked",
             req->who.username ? req->who.username : "?");
    char *m = str_printf(revoke ? "revoked the credential of node %s"
                                : "node %s gets a new credential at its next sync",
                         node);
    http_reply_json(resp, 200, xjson_pack("{ss}", "message", m ? m : ""));
    free(m);
    return PAI_OK;
}

static pai_err_t h_node_revoke(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                               pai_error_t *e)
{
    return node_cred_action(ctx, req, resp, true, e);
}

static pai_err_t h_node_rotate(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                               pai_error_t *e)
{
    return node_cred_action(ctx, req, resp, false, e);
}

/* POST /api/v2/cluster/nodes/{node}/approve: an admin lets a node waiting
 * for approval (node_approval: manual) register. */
static pai_err_t h_node_approve(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                pai_error_t *e)
{
    const char *node = http_param(req, "node");
    pai_err_t rc = engine_node_approve(ctx->engine, node, e);
    if (rc != PAI_OK)
        return rc;
    log_info("node=%s approved by %s", node, req->who.username ? req->who.username : "?");
    char *m = str_printf("node %s approved: it registers at its next sync", node);
    http_reply_json(resp, 200, xjson_pack("{ss}", "message", m ? m : ""));
    free(m);
    return PAI_OK;
}

static pai_err_t h_pods(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    (void)e;
    http_reply_json(resp, 200, engine_pods_json(ctx->engine, http_query(req, "namespace")));
    return PAI_OK;
}

/* A period boundary: milliseconds since the epoch, or an ISO-8601 UTC date
 * "YYYY-MM-DD[THH:MM[:SS]][Z]"; absent: def. */
static pai_err_t usage_time(const http_req_t *req, const char *name, int64_t def, int64_t *out,
                            pai_error_t *e)
{
    const char *s = http_query(req, name);
    if (!s || !*s) {
        *out = def;
        return PAI_OK;
    }
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end && *end == '\0' && v >= 0) {
        *out = v;
        return PAI_OK;
    }
    struct tm tm = {0};
    int n = 0, len = 0;
    char z[2] = "";
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &len) == 3)
        n = len;
    if (n && (s[n] == 'T' || s[n] == ' ') &&
        sscanf(s + n + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &len) == 2) {
        n += 1 + len;
        if (s[n] == ':' && sscanf(s + n + 1, "%2d%n", &tm.tm_sec, &len) == 1)
            n += 1 + len;
    }
    if (n && sscanf(s + n, "%1[Z]", z) == 1)
        n++;
    if (!n || s[n] || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return pai_error_set(e, PAI_E_INVALID,
                             "%s must be milliseconds since the epoch or an ISO-8601 UTC time",
                             name);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm) * 1000;
    return PAI_OK;
}

/* GET /api/v2/usage?from=&to=&groupBy=vc|user|job: GPU-hours held and used
 * (admins: every job; users: their own). */
static pai_err_t h_usage(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                         pai_error_t *e)
{
    int64_t now = time_wall_ms(), from = 0, to = 0;
    pai_err_t rc = usage_time(req, "to", now, &to, e);
    if (rc == PAI_OK)
        rc = usage_time(req, "from", to - 7 * 86400 * 1000LL, &from, e);
    if (rc != PAI_OK)
        return rc;
    if (from >= to)
        return pai_error_set(e, PAI_E_INVALID, "from must be before to");
    const char *by = http_query(req, "groupBy");
    if (!by || !*by)
        by = "vc";
    if (strcmp(by, "vc") != 0 && strcmp(by, "user") != 0 && strcmp(by, "job") != 0)
        return pai_error_set(e, PAI_E_INVALID, "groupBy must be vc, user or job");
    const char *user = req->who.admin ? NULL : req->who.username ? req->who.username : "";
    http_reply_json(resp, 200, engine_usage_json(ctx->engine, from, to, by, user));
    return PAI_OK;
}

static const http_route_t cluster_routes[] = {
    {"POST", "/api/v1/agent/sync", h_agent_sync, PERM_AGENT}, /* batched: modules.c */
    {"GET", "/api/v2/virtual-clusters", h_vcs, PERM_SESSION},
    {"GET", "/api/v2/virtual-clusters/{vc}", h_vc, PERM_SESSION},
    {"PUT", "/api/v2/virtual-clusters/{vc}", h_vc_put, PERM_ADMIN},
    {"DELETE", "/api/v2/virtual-clusters/{vc}", h_vc_delete, PERM_ADMIN},
    {"GET", "/api/v2/virtual-clusters/{vc}/sku-types", h_vc_skus, PERM_SESSION},
    {"GET", "/api/v2/cluster/sku-types", h_skus, PERM_SESSION},
    {"GET", "/api/v2/cluster/nodes", h_nodes, PERM_SESSION},
    {"DELETE", "/api/v2/cluster/nodes/{node}/credential", h_node_revoke, PERM_ADMIN},
    {"POST", "/api/v2/cluster/nodes/{node}/credential/rotate", h_node_rotate, PERM_ADMIN},
    {"POST", "/api/v2/cluster/nodes/{node}/approve", h_node_approve, PERM_ADMIN},
    {"GET", "/api/v2/kubernetes/nodes", h_nodes, PERM_ADMIN},
    {"GET", "/api/v2/kubernetes/pods", h_pods, PERM_ADMIN},
    {"GET", "/api/v2/usage", h_usage, PERM_SESSION},
    {NULL, NULL, NULL, PERM_ANON},
};

const server_module_t server_module_cluster = {"cluster", NULL, NULL, cluster_routes};
