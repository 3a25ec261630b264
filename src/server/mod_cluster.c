/*
 * mod_cluster.c - the "cluster" module: the agent protocol endpoint,
 * virtual clusters (list, detail, and run-time create / resize / delete
 * through vcs.c) and SKU types, and our equivalents of OpenPAI's
 * Kubernetes endpoints (nodes and tasks shaped as NodeList / PodList).
 *
 * The job engine (ctx->engine, owned by the jobs module) holds the nodes and
 * the scheduler; these handlers only read it or feed it agent syncs.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "server/auth.h"
#include "engine/engine.h"
#include "server/server.h"

static void h_agent_sync(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    json_t *body = http_body_json(req, resp);
    if (!body)
        return;
    json_t *out = NULL;
    char err[256] = "";
    pai_err_t rc = engine_agent_sync(ctx->engine, body, &out, err, sizeof err);
    json_decref(body);
    if (rc != PAI_OK)
        http_reply_error(resp, rc, "%s", err);
    else
        http_reply_json(resp, 200, out);
}

static void h_vcs(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    (void)req;
    http_reply_json(resp, 200, engine_vcs_json(ctx->engine, NULL));
}

static void h_vc(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    const char *vc = http_param(req, "vc");
    json_t *o = engine_vcs_json(ctx->engine, vc);
    if (!o)
        http_reply_error(resp, PAI_E_NO_VC, "virtual cluster %s is not found", vc);
    else
        http_reply_json(resp, 200, o);
}

/* PUT /api/v2/virtual-clusters/{vc} {"virtualCells": [...]}: create or resize. */
static void h_vc_put(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    const char *vc = http_param(req, "vc");
    json_t *body = http_body_json(req, resp);
    if (!body)
        return;
    char err[512] = "";
    bool created = false;
    pai_err_t rc = engine_vc_change(ctx->engine, vc, body, &created, err, sizeof err);
    json_decref(body);
    if (rc == PAI_OK && created && auth_vc_added(ctx, vc) != PAI_OK)
        log_warn("vc=%s created but its group could not be made", vc);
    if (rc != PAI_OK) {
        http_reply_error(resp, rc, "%s", err);
        return;
    }
    char *m = str_printf("%s virtual cluster %s successfully", created ? "create" : "update", vc);
    http_reply_json(resp, created ? 201 : 200, xjson_pack("{ss}", "message", m ? m : ""));
    free(m);
}

static void h_vc_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    const char *vc = http_param(req, "vc");
    char err[512] = "";
    bool created = false;
    pai_err_t rc = engine_vc_change(ctx->engine, vc, NULL, &created, err, sizeof err);
    if (rc == PAI_OK && auth_vc_removed(ctx, vc) != PAI_OK)
        log_warn("vc=%s deleted but the group ACLs still name it", vc);
    if (rc != PAI_OK) {
        http_reply_error(resp, rc, "%s", err);
        return;
    }
    char *m = str_printf("remove virtual cluster %s successfully", vc);
    http_reply_json(resp, 200, xjson_pack("{ss}", "message", m ? m : ""));
    free(m);
}

static void h_skus(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    (void)req;
    http_reply_json(resp, 200, engine_skus_json(ctx->engine));
}

/* GET /api/v2/virtual-clusters/{vc}/sku-types (OpenPAI's JS SDK,
 * getVirtualClusterSkuTypes): the SKU types of /cluster/sku-types that the VC has. */
static void h_vc_skus(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    const char *vc = http_param(req, "vc");
    json_t *v = engine_vcs_json(ctx->engine, vc);
    if (!v) {
        http_reply_error(resp, PAI_E_NO_VC, "virtual cluster %s is not found", vc);
        return;
    }
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
}

static void h_nodes(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    (void)req;
    http_reply_json(resp, 200, engine_nodes_json(ctx->engine));
}

static void h_pods(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    http_reply_json(resp, 200, engine_pods_json(ctx->engine, http_query(req, "namespace")));
}

static const http_route_t cluster_routes[] = {
    {"POST", "/api/v1/agent/sync", h_agent_sync, PERM_AGENT},
    {"GET", "/api/v2/virtual-clusters", h_vcs, PERM_SESSION},
    {"GET", "/api/v2/virtual-clusters/{vc}", h_vc, PERM_SESSION},
    {"PUT", "/api/v2/virtual-clusters/{vc}", h_vc_put, PERM_ADMIN},
    {"DELETE", "/api/v2/virtual-clusters/{vc}", h_vc_delete, PERM_ADMIN},
    {"GET", "/api/v2/virtual-clusters/{vc}/sku-types", h_vc_skus, PERM_SESSION},
    {"GET", "/api/v2/cluster/sku-types", h_skus, PERM_SESSION},
    {"GET", "/api/v2/cluster/nodes", h_nodes, PERM_SESSION},
    {"GET", "/api/v2/kubernetes/nodes", h_nodes, PERM_ADMIN},
    {"GET", "/api/v2/kubernetes/pods", h_pods, PERM_ADMIN},
    {NULL, NULL, NULL, PERM_ANON},
};

const server_module_t server_module_cluster = {"cluster", NULL, NULL, cluster_routes};
