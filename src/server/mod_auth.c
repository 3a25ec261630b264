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
#include "common/promtext.h"
#include "common/util.h"
#include "server/auth_int.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/standby.h"

/* ---- body helpers ------------------------------------------------------ */

/* A field of an expected JSON type; PAI_E_INVALID when the field is present
 * with the wrong type (or absent while required). */
pai_err_t mod_auth_field(const json_t *o, const char *name, json_type type, bool required,
                         json_t **out, pai_error_t *e)
{
    static const char *const tn[] = {"object", "array", "string", "integer",
                                     "real",   "true",  "false",  "null"};
    json_t *v = json_object_get(o, name);
    *out = v;
    if (!v)
        return required ? pai_error_set(e, PAI_E_INVALID, "field '%s' is required", name) : PAI_OK;
    bool ok =
        json_typeof(v) == type || (type == JSON_TRUE && (json_is_true(v) || json_is_false(v)));
    if (!ok)
        return pai_error_set(e, PAI_E_INVALID, "field '%s' must be a %s", name,
                             type == JSON_TRUE ? "boolean" : tn[type]);
    return PAI_OK;
}

pai_err_t mod_auth_string_array(const json_t *a, const char *name, pai_error_t *e)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v) || !auth_name_ok(json_string_value(v)))
            return pai_error_set(e, PAI_E_INVALID, "%s[%zu] must be a valid name", name, i);
    }
    return PAI_OK;
}

void mod_auth_reply_msg(http_resp_t *resp, int status, const char *msg)
{
    http_reply_json(resp, status, xjson_pack("{s:s}", "message", msg));
}

pai_err_t auth_commit_error(pai_error_t *e, pai_err_t rc)
{
    return pai_error_set(e, rc, "cannot store the change: %s", pai_err_msg(rc));
}

/* ---- login, logout, tokens --------------------------------------------- */

/* expiration: integer, or a numeric string (form bodies). 0 when absent. */
static pai_err_t login_expiration(const json_t *body, int64_t ttl, int64_t *out, pai_error_t *e)
{
    json_t *je = json_object_get(body, "expiration");
    int64_t v = ttl;
    if (json_is_integer(je))
        v = json_integer_value(je);
    else if (json_is_string(je) && str_to_i64(json_string_value(je), 1, INT64_MAX, &v) != PAI_OK)
        v = 0;
    else if (je && !json_is_string(je))
        v = 0;
    if (v < 1)
        return pai_error_set(e, PAI_E_INVALID, "expiration must be a positive number of seconds");
    *out = v > ttl ? ttl : v;
    return PAI_OK;
}

/* The throttle keys of a login: the name in lower case (names are unique
 * regardless of case) and the client address. */
typedef struct {
    char user[2 + 64 + 1];
    char addr[2 + 64];
} login_keys_t;

static void login_keys(server_ctx_t *ctx, const http_req_t *req, const char *user, login_keys_t *k)
{
    size_t i = 0;
    k->user[0] = 'u', k->user[1] = ':';
    for (; user[i] && i < 64; i++)
        k->user[2 + i] = (char)((user[i] >= 'A' && user[i] <= 'Z') ? user[i] - 'A' + 'a' : user[i]);
    k->user[2 + i] = '\0';
    k->addr[0] = 'a', k->addr[1] = ':';
    /* the client's own address when a standby forwarded the login */
    standby_client_addr(ctx, req, k->addr + 2, sizeof(k->addr) - 2);
}

/* A throttled name or address: 429 with Retry-After, before any password
 * is checked (a locked key's tries do not add failures). */
static pai_err_t login_throttled(auth_t *a, const login_keys_t *k, http_resp_t *resp,
                                 pai_error_t *e)
{
    int64_t now = time_mono_ms();
    int64_t wu = throttle_wait(a->fail_user, k->user, now);
    int64_t wa = throttle_wait(a->fail_addr, k->addr, now);
    int64_t wait_s = ((wu > wa ? wu : wa) + 999) / 1000;
    if (wait_s <= 0)
        return PAI_OK;
    atomic_fetch_add_explicit(&a->logins_throttled, 1, memory_order_relaxed);
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)wait_s);
    http_add_header(resp, "Retry-After", v);
    log_debug("auth: login refused %s %s: throttled for %llds", k->user, k->addr,
              (long long)wait_s);
    return pai_error_set(e, PAI_E_TOO_MANY_LOGINS,
                         "Too many failed logins; try again in %lld seconds.", (long long)wait_s);
}

/* The password hash of user (malloc'ed), or NULL for an unknown name. */
static char *user_hash(auth_t *a, const char *user)
{
    pthread_rwlock_rdlock(&a->lock);
    const char *h =
        json_string_value(json_object_get(json_object_get(a->users, user), "passwordHash"));
    char *hash = h ? xstrdup(h) : NULL;
    pthread_rwlock_unlock(&a->lock);
    return hash;
}

static pai_err_t h_login(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                         pai_error_t *e)
{
    auth_t *a = ctx->auth;
    json_t *body = NULL, *ju, *jp;
    char *hash = NULL, *tok = NULL;
    int64_t exp = 0;
    login_keys_t keys;
    pai_err_t rc;
    if ((rc = http_body_object(req, &body, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "username", JSON_STRING, true, &ju, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "password", JSON_STRING, true, &jp, e)) != PAI_OK ||
        (rc = login_expiration(body, ctx->cfg->token_ttl, &exp, e)) != PAI_OK)
        goto out;
    const char *user = json_string_value(ju);
    login_keys(ctx, req, user, &keys);
    if ((rc = login_throttled(a, &keys, resp, e)) != PAI_OK)
        goto out;
    hash = user_hash(a, user);
    /* an unknown name costs a hash check too and gets the same answer as a
     * wrong password, so neither the reply nor its time tells names apart */
    bool good = auth_check_password(hash ? hash : a->dummy_hash, json_string_value(jp)) && hash;
    if (!good) {
        log_info("auth: login failed user=%s addr=%s (%s)",
                 auth_name_ok(user) ? user : "(invalid name)", /* no log injection */
                 keys.addr + 2, hash ? "wrong password" : "no such user");
        int64_t now = time_mono_ms();
        atomic_fetch_add_explicit(&a->logins_failed, 1, memory_order_relaxed);
        (void)throttle_fail(a->fail_user, keys.user, now);
        (void)throttle_fail(a->fail_addr, keys.addr, now);
        rc = pai_error_set(e, PAI_E_BAD_PASSWORD, NULL);
        goto out;
    }
    throttle_reset(a->fail_user, keys.user);
    if ((rc = auth_token_new(a, user, false, exp, &tok)) != PAI_OK) {
        pai_error_set(e, rc, "cannot create a token: %s", pai_err_msg(rc));
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
    return rc;
}

static pai_err_t h_logout(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    pai_err_t rc = auth_token_del(ctx->auth, req->who.token_id ? req->who.token_id : "");
    /* a token revoked meanwhile is logged out all the same */
    if (rc != PAI_OK && rc != PAI_E_NOT_FOUND)
        return pai_error_set(e, rc, "cannot revoke the token: %s", pai_err_msg(rc));
    mod_auth_reply_msg(resp, 200, "Logout successfully");
    return PAI_OK;
}

static pai_err_t h_tokens_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                               pai_error_t *e)
{
    (void)e;
    json_t *detail = auth_token_list(ctx->auth, req->who.username);
    json_t *ids = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(detail, i, t)
    {
        json_array_append(ids, json_object_get(t, "token"));
    }
    http_reply_json(resp, 200, xjson_pack("{s:o, s:o}", "tokens", ids, "detail", detail));
    return PAI_OK;
}

/* The longest expiration an application token may be given (10 years). */
#define APP_TOKEN_MAX_S (3650LL * 86400)

/* pai's extension: an optional body {expiration: seconds} (integer or
 * numeric string, 1..10 years); no body or no field: no expiry, as OpenPAI. */
static pai_err_t app_expiration(const http_req_t *req, int64_t *out, pai_error_t *e)
{
    json_t *body = NULL;
    *out = 0;
    pai_err_t rc = PAI_OK;
    if (req->body_len == 0 || strspn(req->body, " \t\r\n") == req->body_len)
        return PAI_OK;
    if ((rc = http_body_object(req, &body, e)) != PAI_OK)
        return rc;
    json_t *je = json_object_get(body, "expiration");
    int64_t v = 0;
    if (je && !(json_is_integer(je) && (v = json_integer_value(je)) >= 1) &&
        !(json_is_string(je) &&
          str_to_i64(json_string_value(je), 1, APP_TOKEN_MAX_S, &v) == PAI_OK))
        v = -1;
    if (je && (v < 1 || v > APP_TOKEN_MAX_S))
        rc =
            pai_error_set(e, PAI_E_INVALID, "expiration must be a number of seconds from 1 to %lld",
                          (long long)APP_TOKEN_MAX_S);
    else
        *out = v;
    json_decref(body);
    return rc;
}

static pai_err_t h_token_app(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                             pai_error_t *e)
{
    char *tok = NULL;
    int64_t ttl = 0;
    pai_err_t rc = app_expiration(req, &ttl, e);
    if (rc != PAI_OK)
        return rc;
    if ((rc = auth_token_new(ctx->auth, req->who.username, true, ttl, &tok)) != PAI_OK)
        return pai_error_set(e, rc, "cannot create a token: %s", pai_err_msg(rc));
    http_reply_json(resp, 200, xjson_pack("{s:s, s:b}", "token", tok, "application", 1));
    free(tok);
    return PAI_OK;
}

static pai_err_t h_token_revoke(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                pai_error_t *e)
{
    const char *arg = http_param(req, "token");
    char id[64];
    size_t idlen = strcspn(arg, ".");
    if (idlen == 0 || idlen >= sizeof(id))
        return pai_error_set(e, PAI_E_NOT_FOUND, "no such token");
    memcpy(id, arg, idlen);
    id[idlen] = '\0';
    char *owner = auth_token_owner(ctx->auth, id);
    pai_err_t rc = PAI_OK;
    if (!owner) {
        rc = pai_error_set(e, PAI_E_NOT_FOUND, "no such token");
    } else if (!req->who.admin && strcmp(owner, req->who.username) != 0) {
        rc = pai_error_set(e, PAI_E_FORBIDDEN, "User %s is not allowed to do this operation.",
                           req->who.username);
    } else {
        rc = auth_token_del(ctx->auth, id);
        if (rc == PAI_E_NOT_FOUND) /* revoked meanwhile: the same outcome */
            rc = PAI_OK;
        if (rc == PAI_OK)
            mod_auth_reply_msg(resp, 200, "revoke successfully");
        else
            pai_error_set(e, rc, "cannot revoke the token: %s", pai_err_msg(rc));
    }
    free(owner);
    return rc;
}

/* ---- groups ------------------------------------------------------------ */

static pai_err_t h_groups_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                               pai_error_t *e)
{
    (void)req, (void)e;
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
    return PAI_OK;
}

/* Validate extension.acls; fills defaults.  ext is modified in place. */
static pai_err_t check_acls(json_t *ext, pai_error_t *e)
{
    json_t *acls, *adm, *vcs, *sts;
    pai_err_t rc;
    if ((rc = mod_auth_field(ext, "acls", JSON_OBJECT, false, &acls, e)) != PAI_OK)
        return rc;
    if (!acls) {
        acls = json_object();
        json_object_set_new(ext, "acls", acls);
    }
    if ((rc = mod_auth_field(acls, "admin", JSON_TRUE, false, &adm, e)) != PAI_OK ||
        (rc = mod_auth_field(acls, "virtualClusters", JSON_ARRAY, false, &vcs, e)) != PAI_OK ||
        (rc = mod_auth_field(acls, "storageConfigs", JSON_ARRAY, false, &sts, e)) != PAI_OK ||
        (vcs && (rc = mod_auth_string_array(vcs, "virtualClusters", e)) != PAI_OK) ||
        (sts && (rc = mod_auth_string_array(sts, "storageConfigs", e)) != PAI_OK))
        return rc;
    if (!adm)
        json_object_set_new(acls, "admin", json_false());
    if (!vcs)
        json_object_set_new(acls, "virtualClusters", json_array());
    if (!sts)
        json_object_set_new(acls, "storageConfigs", json_array());
    return PAI_OK;
}

/* Apply group fields from d onto g (patch: keep absent ones). */
static pai_err_t apply_group_fields(json_t *g, const json_t *d, bool patch, pai_error_t *e)
{
    json_t *desc, *ext_name, *ext;
    pai_err_t rc;
    if ((rc = mod_auth_field(d, "description", JSON_STRING, false, &desc, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "externalName", JSON_STRING, false, &ext_name, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "extension", JSON_OBJECT, false, &ext, e)) != PAI_OK)
        return rc;
    if (desc || !patch)
        json_object_set_new(g, "description", json_string(desc ? json_string_value(desc) : ""));
    if (ext_name || !patch)
        json_object_set_new(g, "externalName",
                            json_string(ext_name ? json_string_value(ext_name) : ""));
    if (ext || !patch) {
        json_t *x = ext ? json_deep_copy(ext) : json_object();
        json_object_set_new(g, "extension", x);
        if ((rc = check_acls(x, e)) != PAI_OK)
            return rc;
    }
    /* the built-in groups keep their admin flag */
    const char *name = json_string_value(json_object_get(g, "groupname"));
    if (auth_is_builtin_group(name))
        json_object_set_new(json_object_get(json_object_get(g, "extension"), "acls"), "admin",
                            json_boolean(strcmp(name, AUTH_ADMIN_GROUP) == 0));
    return PAI_OK;
}

static pai_err_t h_group_create(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                pai_error_t *e)
{
    auth_t *a = ctx->auth;
    json_t *body = NULL, *jn, *g = NULL;
    pthread_mutex_lock(&a->wlock);
    pai_err_t rc;
    if ((rc = http_body_json(req, &body, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "groupname", JSON_STRING, true, &jn, e)) != PAI_OK)
        goto out;
    const char *name = json_string_value(jn);
    if (!auth_name_ok(name)) {
        rc = pai_error_set(e, PAI_E_INVALID, "groupname must match [A-Za-z0-9_.-]{1,64}");
        goto out;
    }
    if (json_object_get(a->groups, name)) {
        rc = pai_error_set(e, PAI_E_CONFLICT_GROUP, "Group name %s already exists.", name);
        goto out;
    }
    g = xjson_pack("{s:s}", "groupname", name);
    if ((rc = apply_group_fields(g, body, false, e)) != PAI_OK)
        goto out;
    auth_change_t ch = {"group", name, g};
    if ((rc = auth_commit(a, &ch, 1)) != PAI_OK)
        auth_commit_error(e, rc);
    else
        mod_auth_reply_msg(resp, 201, "group is created successfully");
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(g);
    json_decref(body);
    return rc;
}

static bool group_grants_admin(const json_t *g)
{
    return json_is_true(
        json_object_get(json_object_get(json_object_get(g, "extension"), "acls"), "admin"));
}

static pai_err_t h_group_update(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                pai_error_t *e)
{
    auth_t *a = ctx->auth;
    bool patch = false;
    json_t *body = NULL, *jn, *g = NULL;
    pthread_mutex_lock(&a->wlock);
    pai_err_t rc;
    if ((rc = auth_users_update_body(req, &body, &patch, e)) != PAI_OK ||
        (rc = mod_auth_field(json_object_get(body, "data"), "groupname", JSON_STRING, true, &jn,
                             e)) != PAI_OK)
        goto out;
    const char *name = json_string_value(jn);
    const json_t *old = json_object_get(a->groups, name);
    if (!old) {
        rc = pai_error_set(e, PAI_E_NO_GROUP, PAI_MSG_NO_GROUP, name);
        goto out;
    }
    g = json_deep_copy(old);
    if ((rc = apply_group_fields(g, json_object_get(body, "data"), patch, e)) != PAI_OK)
        goto out;
    if (group_grants_admin(old) && !group_grants_admin(g) &&
        auth_admins_left_locked(a, name, NULL) == 0) {
        rc = pai_error_set(e, PAI_E_REMOVE_ADMIN, "no admin would be left");
        goto out;
    }
    auth_change_t ch = {"group", name, g};
    char msg[160];
    snprintf(msg, sizeof(msg), "update group %s successfully.", name);
    if ((rc = auth_commit(a, &ch, 1)) != PAI_OK)
        auth_commit_error(e, rc);
    else
        mod_auth_reply_msg(resp, 201, msg);
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(g);
    json_decref(body);
    return rc;
}

static pai_err_t h_group_get(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                             pai_error_t *e)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "group");
    pthread_rwlock_rdlock(&a->lock);
    json_t *g = json_deep_copy(json_object_get(a->groups, name));
    pthread_rwlock_unlock(&a->lock);
    if (!g)
        return pai_error_set(e, PAI_E_NO_GROUP, PAI_MSG_NO_GROUP, name);
    http_reply_json(resp, 200, g);
    return PAI_OK;
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

static pai_err_t h_group_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                pai_error_t *e)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "group");
    pai_err_t rc = PAI_OK;
    pthread_mutex_lock(&a->wlock);
    const json_t *old = json_object_get(a->groups, name);
    if (!old) {
        rc = pai_error_set(e, PAI_E_NO_GROUP, PAI_MSG_NO_GROUP, name);
    } else if (auth_is_builtin_group(name)) {
        rc = pai_error_set(e, PAI_E_FORBIDDEN, "%s is a built-in group", name);
    } else if (group_grants_admin(old) && auth_admins_left_locked(a, name, NULL) == 0) {
        rc = pai_error_set(e, PAI_E_REMOVE_ADMIN, "no admin would be left");
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
        if ((rc = auth_commit(a, ch, i)) != PAI_OK)
            auth_commit_error(e, rc);
        else
            mod_auth_reply_msg(resp, 201, "group is removed successfully");
        free(ch);
        json_decref(users);
    }
    pthread_mutex_unlock(&a->wlock);
    return rc;
}

static pai_err_t h_group_userlist(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                  pai_error_t *e)
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
        return pai_error_set(e, PAI_E_NO_GROUP, PAI_MSG_NO_GROUP, name);
    }
    http_reply_json(resp, 200, out);
    return PAI_OK;
}

/* ---- module ------------------------------------------------------------ */

static const http_route_t auth_routes[] = {
    {"POST", "/api/v2/authn/basic/login", h_login, PERM_ANON},
    {"DELETE", "/api/v2/authn/basic/logout", h_logout, PERM_SESSION},
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
    {"GET", "/api/v2/groups/{group}/userlist", h_group_userlist, PERM_ADMIN},
    {NULL, NULL, NULL, PERM_ANON},
};

/* /metrics: failed and throttled logins, and the throttle's tables. */
static void auth_metrics(void *ud, buf_t *out)
{
    auth_t *a = ud;
    prom_counter(out, "pai_logins_failed_total",
                 "Logins refused for a wrong password or an unknown name.",
                 (double)atomic_load(&a->logins_failed));
    prom_counter(out, "pai_logins_throttled_total",
                 "Logins answered 429: their name or address had failed too often.",
                 (double)atomic_load(&a->logins_throttled));
    prom_family(out, "pai_login_throttle_keys", "gauge",
                "Names and addresses the login throttle remembers (bounded).");
    prom_sample(out, "pai_login_throttle_keys", "kind=\"user\"",
                (double)throttle_count(a->fail_user));
    prom_sample(out, "pai_login_throttle_keys", "kind=\"addr\"",
                (double)throttle_count(a->fail_addr));
}

static pai_err_t auth_init(server_ctx_t *ctx)
{
    pai_error_t e = PAI_ERROR_INIT;
    pai_err_t rc = auth_new(ctx, &ctx->auth, &e);
    if (rc != PAI_OK)
        log_error("auth: %s", pai_error_msg(&e));
    pai_error_free(&e);
    if (rc == PAI_OK && ctx->metrics)
        rc = metrics_register(ctx->metrics, "auth", auth_metrics, ctx->auth);
    return rc;
}

static void auth_fini(server_ctx_t *ctx)
{
    auth_free(ctx->auth);
    ctx->auth = NULL;
}

const server_module_t server_module_auth = {"auth", auth_init, auth_fini, auth_routes};
