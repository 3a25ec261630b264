/*
 * mod_core.c - cluster info, storages, /metrics, and the OpenPAI endpoints
 * pai answers with NotImplementedError (OIDC, alerts).
 */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "common/version.h"
#include "engine/engine.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/leader.h"
#include "server/metrics.h"

#define METRICS_MAX (64u * 1024 * 1024)

static pai_err_t h_info(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    (void)req, (void)e;
    json_t *o =
        xjson_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "PAI RESTful API", "version", PAI_VERSION,
                   "launcherType", "k8s", "authnMethod", "basic", "implementation", "pai");
    if (ctx->leader) { /* pai's: role, leader, term (high availability) */
        json_t *who = leader_info_json(ctx->leader);
        json_object_update(o, who);
        json_decref(who);
    }
    http_reply_json(resp, 200, o);
    return PAI_OK;
}

/* The public summary of a storage definition. */
static json_t *storage_summary(const json_t *s)
{
    const char *name = json_string_value(json_object_get(s, "name"));
    const char *vol = json_string_value(json_object_get(s, "volumeName"));
    return xjson_pack("{s:s, s:b, s:s, s:b}", "name", name, "share",
                      !json_is_false(json_object_get(s, "share")), "volumeName", vol ? vol : name,
                      "default", json_is_true(json_object_get(s, "default")));
}

static pai_err_t h_storages(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                            pai_error_t *e)
{
    (void)e;
    const char *only_default = http_query(req, "default");
    bool want_default = only_default && strcmp(only_default, "true") == 0;
    json_t *out = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(ctx->cfg->storages, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!auth_user_can_use_storage(ctx, req->who.username, name))
            continue;
        if (want_default && !json_is_true(json_object_get(s, "default")))
            continue;
        json_array_append_new(out, storage_summary(s));
    }
    http_reply_json(resp, 200, xjson_pack("{s:o}", "storages", out));
    return PAI_OK;
}

static pai_err_t h_storage(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    const char *name = http_param(req, "storage");
    const json_t *def = NULL;
    size_t i;
    json_t *s;
    json_array_foreach(ctx->cfg->storages, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            def = s;
    }
    if (!def)
        return pai_error_set(e, PAI_E_NO_STORAGE, PAI_MSG_NO_STORAGE, name);
    if (!auth_user_can_use_storage(ctx, req->who.username, name))
        return pai_error_set(e, PAI_E_FORBIDDEN, PAI_MSG_STORAGE_DENIED, req->who.username, name);
    json_t *out = storage_summary(def);
    const char *type = json_string_value(json_object_get(def, "type"));
    json_t *data = json_object_get(def, "data");
    json_object_set_new(out, "type", json_string(type ? type : "unknown"));
    json_object_set_new(out, "data", data ? json_deep_copy(data) : json_object());
    http_reply_json(resp, 200, out);
    return PAI_OK;
}

static pai_err_t h_metrics(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    (void)req, (void)e;
    buf_t b;
    buf_init(&b, METRICS_MAX);
    metrics_collect(ctx->metrics, &b);
    http_reply_text(resp, 200, "text/plain; version=0.0.4", buf_str(&b), b.len);
    buf_free(&b);
    return PAI_OK;
}

static pai_err_t h_not_implemented(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                   pai_error_t *e)
{
    (void)ctx, (void)resp;
    return pai_error_set(e, PAI_E_NOT_IMPLEMENTED,
                         "%s is not implemented by pai: it supports basic authentication only "
                         "(POST /api/v2/authn/basic/login)",
                         req->path);
}

/* Prometheus HTTP service discovery of the agents (docs/monitoring.md):
 * an admin's token, login or application (the application token is the
 * one to give Prometheus: long-lived, revocable, see deploy/prometheus/).
 * The route is PERM_USER because PERM_ADMIN refuses application tokens. */
static pai_err_t h_metrics_targets(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                   pai_error_t *e)
{
    if (!req->who.admin)
        return pai_error_set(e, PAI_E_FORBIDDEN, PAI_MSG_NON_ADMIN);
    http_reply_json(resp, 200, engine_metrics_targets_json(ctx->engine));
    return PAI_OK;
}

static const http_route_t core_routes[] = {
    {"GET", "/api/v2/info", h_info, PERM_ANON},
    {"GET", "/api/v2/storages", h_storages, PERM_SESSION},
    {"GET", "/api/v2/storages/{storage}", h_storage, PERM_SESSION},
    {"GET", "/metrics", h_metrics, PERM_ANON},
    {"GET", "/api/v2/metrics/targets", h_metrics_targets, PERM_USER},
    {"GET", "/api/v2/authn/oidc/login", h_not_implemented, PERM_ANON},
    {"GET", "/api/v2/authn/oidc/logout", h_not_implemented, PERM_ANON},
    {"GET", "/api/v2/authn/oidc/return", h_not_implemented, PERM_ANON},
    {"POST", "/api/v2/authn/oidc/return", h_not_implemented, PERM_ANON},
    {NULL, NULL, NULL, PERM_ANON},
};

const server_module_t server_module_core = {"core", NULL, NULL, core_routes};
