/*
 * mod_auth.c - the auth module's REST API: basic login/logout, tokens,
 * users and groups (OpenPAI REST API v2; see docs/api.md for where pai
 * differs).  The model lives in auth.c.
 *
 * Every mutation holds the model's wlock from validation to commit, so two
 * admins editing the same user cannot interleave.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "server/auth_int.h"
#include "server/config.h"

/* ---- body helpers ------------------------------------------------------ */

/* A field of an expected JSON type; replies 400 and returns false when the
 * field is present with the wrong type (or absent while required). */
bool mod_auth_field(const json_t *o, const char *name, json_type type, bool required, json_t **out,
                    http_resp_t *resp)
{
    static const char *const tn[] = {"object", "array", "string", "integer",
                                     "real",   "true",  "false",  "null"};
    json_t *v = json_object_get(o, name);
    *out = v;
    if (!v) {
        if (required)
            http_reply_error(resp, PAI_E_INVALID, "field '%s' is required", name);
        return !required;
    }
    bool ok =
        json_typeof(v) == type || (type == JSON_TRUE && (json_is_true(v) || json_is_false(v)));
    if (!ok)
        http_reply_error(resp, PAI_E_INVALID, "field '%s' must be a %s", name,
                         type == JSON_TRUE ? "boolean" : tn[type]);
    return ok;
}

bool mod_auth_string_array(const json_t *a, const char *name, http_resp_t *resp)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || !auth_name_ok(json_string_value(v))) {
            http_reply_error(resp, PAI_E_INVALID, "%s[%zu] must be a valid name", name, i);
            return false;
        }
    }
    return true;
}

void mod_auth_reply_msg(http_resp_t *resp, int status, const char *msg)
{
    http_reply_json(resp, status, xjson_pack("{s:s}", "message", msg));
}

/* ---- login, logout, tokens --------------------------------------------- */

/* expiration: integer, or a numeric string (form bodies). 0 when absent. */
static bool login_expiration(const json_t *body, int64_t ttl, int64_t *out, http_resp_t *resp)
{
    json_t *e = json_object_get(body, "expiration");
    int64_t v = ttl;
    if (json_is_integer(e))
        v = json_integer_value(e);
    else if (json_is_string(e) && str_to_i64(json_string_value(e), 1, INT64_MAX, &v) != PAI_OK)
        v = 0;
    else if (e && !json_is_string(e))
        v = 0;
    if (v < 1) {
        http_reply_error(resp, PAI_E_INVALID, "expiration must be a positive number of seconds");
        return false;
    }
    *out = v > ttl ? ttl : v;
    return true;
}

static void h_login(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    json_t *body = http_body_object(req, resp), *ju, *jp;
    char *hash = NULL, *tok = NULL;
    int64_t exp;
    if (!body || !mod_auth_field(body, "username", JSON_STRING, true, &ju, resp) ||
        !mod_auth_field(body, "password", JSON_STRING, true, &jp, resp) ||
        !login_expiration(body, ctx->cfg->token_ttl, &exp, resp))
        goto out;
    const char *user = json_string_value(ju);
    pthread_rwlock_rdlock(&a->lock);
    const char *h =
        json_string_value(json_object_get(json_object_get(a->users, user), "passwordHash"));
    hash = h ? xstrdup(h) : NULL;
    pthread_rwlock_unlock(&a->lock);
    if (!hash) {
        log_info("auth: login failed user=%s (no such user)",
                 auth_name_ok(user) ? user : "(invalid name)"); /* no log injection */
        /* 400, not NoUserError's usual 404: OpenPAI's login answers
         * "Bad Request" here and its SDK's API tests expect that status. */
        http_reply_error(resp, PAI_E_NO_USER, "User %s is not found.", user);
        resp->status = 400;
        goto out;
    }
    if (!auth_check_password(hash, json_string_value(jp))) {
        log_info("auth: login failed user=%s (wrong password)", user);
        http_reply_error(resp, PAI_E_BAD_PASSWORD, "Password is incorrect.");
        goto out;
    }
    pai_err_t rc = auth_token_new(a, user, false, exp, &tok);
    if (rc != PAI_OK) {
        http_reply_error(resp, rc, "cannot create a token");
        goto out;
    }
    http_reply_json(resp, 200,
                    xjson_pack("{s:s, s:s, s:b}", "token", tok, "user", user, "admin",
                               auth_user_is_admin(ctx, user)));
    log_info("auth: user=%s logged in", user);
out:
    free(hash);
    free(tok);
    json_decref(body);
}

static void h_logout(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    pai_err_t rc = auth_token_del(ctx->auth, req->who.token_id ? req->who.token_id : "");
    if (rc != PAI_OK && rc != PAI_E_NOT_FOUND) {
        http_reply_error(resp, rc, NULL);
        return;
    }
    mod_auth_reply_msg(resp, 200, "Logout successfully");
}

static void h_tokens_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    json_t *detail = auth_token_list(ctx->auth, req->who.username);
    json_t *ids = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(detail, i, t)
    {
        json_array_append(ids, json_object_get(t, "token"));
    }
    http_reply_json(resp, 200, xjson_pack("{s:o, s:o}", "tokens", ids, "detail", detail));
}

static void h_token_app(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    char *tok = NULL;
    pai_err_t rc = auth_token_new(ctx->auth, req->who.username, true, 0, &tok);
    if (rc != PAI_OK) {
        http_reply_error(resp, rc, "cannot create a token");
        return;
    }
    http_reply_json(resp, 200, xjson_pack("{s:s, s:b}", "token", tok, "application", 1));
    free(tok);
}

static void h_token_revoke(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    const char *arg = http_param(req, "token");
    char id[64];
    size_t idlen = strcspn(arg, ".");
    if (idlen == 0 || idlen >= sizeof(id)) {
        http_reply_error(resp, PAI_E_NOT_FOUND, "no such token");
        return;
    }
    memcpy(id, arg, idlen);
    id[idlen] = '\0';
    char *owner = auth_token_owner(ctx->auth, id);
    if (!owner) {
        http_reply_error(resp, PAI_E_NOT_FOUND, "no such token");
    } else if (!req->who.admin && strcmp(owner, req->who.username) != 0) {
        http_reply_error(resp, PAI_E_FORBIDDEN, "the token belongs to another user");
    } else {
        pai_err_t rc = auth_token_del(ctx->auth, id);
        if (rc == PAI_OK || rc == PAI_E_NOT_FOUND)
            mod_auth_reply_msg(resp, 200, "revoke successfully");
        else
            http_reply_error(resp, rc, NULL);
    }
    free(owner);
}

/* ---- groups ------------------------------------------------------------ */

static void h_groups_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    (void)req;
    auth_t *a = ctx->auth;
    json_t *out = json_array();
    const char *k;
    json_t *g;
    pthread_rwlock_rdlock(&a->lock);
    json_object_foreach(a->groups, k, g)
    {
        json_array_append_new(out, json_deep_copy(g));
    }
    pthread_rwlock_unlock(&a->lock);
    http_reply_json(resp, 200, out);
}

/* Validate extension.acls; fills defaults.  ext is modified in place. */
static bool check_acls(json_t *ext, http_resp_t *resp)
{
    json_t *acls, *adm, *vcs, *sts;
    if (!mod_auth_field(ext, "acls", JSON_OBJECT, false, &acls, resp))
        return false;
    if (!acls) {
        acls = json_object();
        json_object_set_new(ext, "acls", acls);
    }
    if (!mod_auth_field(acls, "admin", JSON_TRUE, false, &adm, resp) ||
        !mod_auth_field(acls, "virtualClusters", JSON_ARRAY, false, &vcs, resp) ||
        !mod_auth_field(acls, "storageConfigs", JSON_ARRAY, false, &sts, resp) ||
        (vcs && !mod_auth_string_array(vcs, "virtualClusters", resp)) ||
        (sts && !mod_auth_string_array(sts, "storageConfigs", resp)))
        return false;
    if (!adm)
        json_object_set_new(acls, "admin", json_false());
    if (!vcs)
        json_object_set_new(acls, "virtualClusters", json_array());
    if (!sts)
        json_object_set_new(acls, "storageConfigs", json_array());
    return true;
}

/* Apply group fields from d onto g (patch: keep absent ones). */
static bool apply_group_fields(json_t *g, const json_t *d, bool patch, http_resp_t *resp)
{
    json_t *desc, *ext_name, *ext;
    if (!mod_auth_field(d, "description", JSON_STRING, false, &desc, resp) ||
        !mod_auth_field(d, "externalName", JSON_STRING, false, &ext_name, resp) ||
        !mod_auth_field(d, "extension", JSON_OBJECT, false, &ext, resp))
        return false;
    if (desc || !patch)
        json_object_set_new(g, "description", json_string(desc ? json_string_value(desc) : ""));
    if (ext_name || !patch)
        json_object_set_new(g, "externalName",
                            json_string(ext_name ? json_string_value(ext_name) : ""));
    if (ext || !patch) {
        json_t *e = ext ? json_deep_copy(ext) : json_object();
        json_object_set_new(g, "extension", e);
        if (!check_acls(e, resp))
            return false;
    }
    /* the built-in groups keep their admin flag */
    const char *name = json_string_value(json_object_get(g, "groupname"));
    if (auth_is_builtin_group(name))
        json_object_set_new(json_object_get(json_object_get(g, "extension"), "acls"), "admin",
                            json_boolean(strcmp(name, AUTH_ADMIN_GROUP) == 0));
    return true;
}

static void h_group_create(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    json_t *body = http_body_json(req, resp), *jn, *g = NULL;
    pthread_mutex_lock(&a->wlock);
    if (!body || !mod_auth_field(body, "groupname", JSON_STRING, true, &jn, resp))
        goto out;
    const char *name = json_string_value(jn);
    if (!auth_name_ok(name)) {
        http_reply_error(resp, PAI_E_INVALID, "groupname must match [A-Za-z0-9_.-]{1,64}");
        goto out;
    }
    if (json_object_get(a->groups, name)) {
        http_reply_error(resp, PAI_E_CONFLICT_GROUP, "group %s already exists", name);
        goto out;
    }
    g = xjson_pack("{s:s}", "groupname", name);
    if (!apply_group_fields(g, body, false, resp))
        goto out;
    auth_change_t ch = {"group", name, g};
    pai_err_t rc = auth_commit(a, &ch, 1);
    if (rc != PAI_OK)
        http_reply_error(resp, rc, NULL);
    else
        mod_auth_reply_msg(resp, 201, "group is created successfully");
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(g);
    json_decref(body);
}

static bool group_grants_admin(const json_t *g)
{
    return json_is_true(
        json_object_get(json_object_get(json_object_get(g, "extension"), "acls"), "admin"));
}

static void h_group_update(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    bool patch = false;
    json_t *body = auth_users_update_body(req, resp, &patch), *jn, *g = NULL;
    json_t *d = json_object_get(body, "data");
    pthread_mutex_lock(&a->wlock);
    if (!body || !mod_auth_field(d, "groupname", JSON_STRING, true, &jn, resp))
        goto out;
    const char *name = json_string_value(jn);
    const json_t *old = json_object_get(a->groups, name);
    if (!old) {
        http_reply_error(resp, PAI_E_NO_GROUP, "group %s does not exist", name);
        goto out;
    }
    g = json_deep_copy(old);
    if (!apply_group_fields(g, d, patch, resp))
        goto out;
    if (group_grants_admin(old) && !group_grants_admin(g) &&
        auth_admins_left_locked(a, name, NULL) == 0) {
        http_reply_error(resp, PAI_E_REMOVE_ADMIN, "no admin would be left");
        goto out;
    }
    auth_change_t ch = {"group", name, g};
    pai_err_t rc = auth_commit(a, &ch, 1);
    char msg[160];
    snprintf(msg, sizeof(msg), "update group %s successfully.", name);
    if (rc != PAI_OK)
        http_reply_error(resp, rc, NULL);
    else
        mod_auth_reply_msg(resp, 201, msg);
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(g);
    json_decref(body);
}

static void h_group_get(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "group");
    pthread_rwlock_rdlock(&a->lock);
    json_t *g = json_deep_copy(json_object_get(a->groups, name));
    pthread_rwlock_unlock(&a->lock);
    if (!g)
        http_reply_error(resp, PAI_E_NO_GROUP, "group %s does not exist", name);
    else
        http_reply_json(resp, 200, g);
}

/* Users whose grouplist names group, without it (for a group delete). */
static json_t *users_without_group(auth_t *a, const char *group)
{
    json_t *out = json_object();
    const char *k;
    json_t *u;
    json_object_foreach(a->users, k, u)
    {
        if (!auth_json_has_str(json_object_get(u, "grouplist"), group))
            continue;
        json_t *nu = json_deep_copy(u);
        auth_users_set_member(json_object_get(nu, "grouplist"), group, false);
        json_object_set_new(out, k, nu);
    }
    return out;
}

static void h_group_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "group");
    pthread_mutex_lock(&a->wlock);
    const json_t *old = json_object_get(a->groups, name);
    if (!old) {
        http_reply_error(resp, PAI_E_NO_GROUP, "group %s does not exist", name);
    } else if (auth_is_builtin_group(name)) {
        http_reply_error(resp, PAI_E_FORBIDDEN, "%s is a built-in group", name);
    } else if (group_grants_admin(old) && auth_admins_left_locked(a, name, NULL) == 0) {
        http_reply_error(resp, PAI_E_REMOVE_ADMIN, "no admin would be left");
    } else {
        json_t *users = users_without_group(a, name);
        size_t n = json_object_size(users) + 1, i = 0;
        auth_change_t *ch = xcalloc(n, sizeof(*ch));
        const char *k;
        json_t *u;
        json_object_foreach(users, k, u)
        {
            ch[i++] = (auth_change_t){"user", k, u};
        }
        ch[i++] = (auth_change_t){"group", name, NULL};
        pai_err_t rc = auth_commit(a, ch, i);
        if (rc != PAI_OK)
            http_reply_error(resp, rc, NULL);
        else
            mod_auth_reply_msg(resp, 201, "group is removed successfully");
        free(ch);
        json_decref(users);
    }
    pthread_mutex_unlock(&a->wlock);
}

static void h_group_userlist(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "group");
    json_t *out = json_array();
    const char *k;
    json_t *u;
    pthread_rwlock_rdlock(&a->lock);
    bool exists = json_object_get(a->groups, name) != NULL;
    json_object_foreach(a->users, k, u)
    {
        if (auth_json_has_str(json_object_get(u, "grouplist"), name))
            json_array_append_new(out, xjson_pack("{s:s, s:b}", "username", k, "clusterAdmin",
                                                  auth_user_admin_locked(a, u)));
    }
    pthread_rwlock_unlock(&a->lock);
    if (!exists) {
        json_decref(out);
        http_reply_error(resp, PAI_E_NO_GROUP, "group %s does not exist", name);
        return;
    }
    http_reply_json(resp, 200, out);
}

/* ---- module ------------------------------------------------------------ */

static const http_route_t auth_routes[] = {
    {"POST", "/api/v2/authn/basic/login", h_login, PERM_ANON},
    {"DELETE", "/api/v2/authn/basic/logout", h_logout, PERM_USER},
    {"GET", "/api/v2/tokens", h_tokens_list, PERM_SESSION},
    {"POST", "/api/v2/tokens/application", h_token_app, PERM_SESSION},
    {"DELETE", "/api/v2/tokens/{token}", h_token_revoke, PERM_SESSION},
    {"GET", "/api/v2/users", auth_users_h_list, PERM_ADMIN},
    {"POST", "/api/v2/users", auth_users_h_create, PERM_ADMIN},
    {"PUT", "/api/v2/users", auth_users_h_update, PERM_ADMIN},
    {"PUT", "/api/v2/users/me", auth_users_h_me, PERM_SESSION},
    {"GET", "/api/v2/users/{user}", auth_users_h_get, PERM_SESSION},
    {"DELETE", "/api/v2/users/{user}", auth_users_h_delete, PERM_ADMIN},
    {"PUT", "/api/v2/users/{user}/group", auth_users_h_group_add, PERM_ADMIN},
    {"DELETE", "/api/v2/users/{user}/group", auth_users_h_group_del, PERM_ADMIN},
    {"PUT", "/api/v2/users/{user}/grouplist", auth_users_h_grouplist, PERM_ADMIN},
    {"GET", "/api/v2/groups", h_groups_list, PERM_SESSION},
    {"POST", "/api/v2/groups", h_group_create, PERM_ADMIN},
    {"PUT", "/api/v2/groups", h_group_update, PERM_ADMIN},
    {"GET", "/api/v2/groups/{group}", h_group_get, PERM_SESSION},
    {"DELETE", "/api/v2/groups/{group}", h_group_delete, PERM_ADMIN},
    {"GET", "/api/v2/groups/{group}/userlist", h_group_userlist, PERM_SESSION},
    {NULL, NULL, NULL, PERM_ANON},
};

static pai_err_t auth_init(server_ctx_t *ctx)
{
    char err[512];
    pai_err_t rc = auth_new(ctx, &ctx->auth, err, sizeof(err));
    if (rc != PAI_OK)
        log_error("auth: %s", err);
    return rc;
}

static void auth_fini(server_ctx_t *ctx)
{
    auth_free(ctx->auth);
    ctx->auth = NULL;
}

const server_module_t server_module_auth = {"auth", auth_init, auth_fini, auth_routes};
