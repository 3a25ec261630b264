/*
 * auth_users.c - the auth module's user handlers: list, create, update
 * (PUT /users and /users/me), get, delete, and group membership (OpenPAI
 * REST API v2).  The routes are in mod_auth.c, the model in auth.c.
 *
 * Every mutation holds the model's wlock from validation to commit.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "server/auth_int.h"
#include "server/config.h"

#define MIN_PASSWORD 6

/* ---- users ------------------------------------------------------------- */

/* Groups a user gets for a virtualCluster list: new VC groups go into ch. */
static void vc_groups(auth_t *a, const json_t *vcs, json_t *grouplist, json_t *newgroups)
{
    size_t i;
    json_t *v;
    json_array_foreach(vcs, i, v)
    {
        const char *vc = json_string_value(v);
        if (!json_object_get(a->groups, vc) && !json_object_get(newgroups, vc))
            json_object_set_new(
                newgroups, vc,
                auth_group_new(vc, "virtual cluster group",
                               xjson_pack("{s:b, s:[s], s:[]}", "admin", 0, "virtualClusters", vc,
                                          "storageConfigs")));
        if (!auth_json_has_str(grouplist, vc))
            json_array_append(grouplist, v);
    }
}

/* grouplist without the VC groups (the ones a virtualCluster list manages). */
static json_t *without_vc_groups(auth_t *a, const json_t *grouplist)
{
    json_t *out = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(grouplist, i, g)
    {
        const char *gn = json_string_value(g);
        if (gn && !auth_is_vc_group(gn, json_object_get(a->groups, gn)))
            json_array_append(out, g);
    }
    return out;
}

void auth_users_set_member(json_t *grouplist, const char *group, bool member)
{
    for (size_t i = json_array_size(grouplist); i-- > 0;)
        if (strcmp(json_string_value(json_array_get(grouplist, i)) ?: "", group) == 0)
            json_array_remove(grouplist, i);
    if (member)
        json_array_append_new(grouplist, json_string(group));
}

/* Commit user u (and any new VC groups) with wlock held. */
static pai_err_t commit_user(auth_t *a, const char *name, json_t *u, json_t *newgroups)
{
    size_t n = json_object_size(newgroups) + 1, i = 0;
    auth_change_t *ch = xcalloc(n, sizeof(*ch));
    const char *k;
    json_t *g;
    json_object_foreach(newgroups, k, g)
    {
        ch[i++] = (auth_change_t){"group", k, g};
    }
    ch[i++] = (auth_change_t){"user", name, u};
    pai_err_t rc = auth_commit(a, ch, i);
    free(ch);
    return rc;
}

typedef struct {
    json_t *email, *password, *admin, *vcs, *ext;
} user_fields_t;

static bool user_fields(const json_t *d, const char *pwfield, user_fields_t *f, http_resp_t *resp)
{
    if (!mod_auth_field(d, "email", JSON_STRING, false, &f->email, resp) ||
        !mod_auth_field(d, pwfield, JSON_STRING, false, &f->password, resp) ||
        !mod_auth_field(d, "admin", JSON_TRUE, false, &f->admin, resp) ||
        !mod_auth_field(d, "virtualCluster", JSON_ARRAY, false, &f->vcs, resp) ||
        !mod_auth_field(d, "extension", JSON_OBJECT, false, &f->ext, resp))
        return false;
    if (f->vcs && !mod_auth_string_array(f->vcs, "virtualCluster", resp))
        return false;
    if (f->password && strlen(json_string_value(f->password)) < MIN_PASSWORD) {
        http_reply_error(resp, PAI_E_INVALID, "the password needs at least %d characters",
                         MIN_PASSWORD);
        return false;
    }
    return true;
}

/* Apply fields to user u (a copy).  patch=false resets absent fields. */
static void apply_user_fields(auth_t *a, json_t *u, const user_fields_t *f, bool patch,
                              json_t *newgroups)
{
    if (f->email || !patch)
        json_object_set_new(u, "email", json_string(f->email ? json_string_value(f->email) : ""));
    if (f->ext || !patch)
        json_object_set_new(u, "extension", f->ext ? json_deep_copy(f->ext) : json_object());
    json_t *gl = json_object_get(u, "grouplist");
    if (f->admin || !patch)
        auth_users_set_member(gl, AUTH_ADMIN_GROUP, json_is_true(f->admin));
    if (f->vcs || !patch) {
        json_t *kept = without_vc_groups(a, gl);
        json_t *none = json_array();
        vc_groups(a, f->vcs ? f->vcs : none, kept, newgroups);
        json_decref(none);
        json_object_set_new(u, "grouplist", kept);
    }
}

void auth_users_h_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    (void)req;
    auth_t *a = ctx->auth;
    json_t *out = json_array();
    const char *k;
    json_t *u;
    pthread_rwlock_rdlock(&a->lock);
    json_object_foreach(a->users, k, u)
    {
        json_array_append_new(out, auth_user_info_locked(a, k));
    }
    pthread_rwlock_unlock(&a->lock);
    http_reply_json(resp, 200, out);
}

void auth_users_h_create(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    json_t *body = http_body_json(req, resp), *jn, *newgroups = json_object(), *u = NULL;
    user_fields_t f = {0};
    char *hash = NULL;
    bool locked = false;
    if (!body || !mod_auth_field(body, "username", JSON_STRING, true, &jn, resp) ||
        !user_fields(body, "password", &f, resp))
        goto out;
    const char *name = json_string_value(jn);
    if (!auth_name_ok(name)) {
        http_reply_error(resp, PAI_E_INVALID, "username must match [A-Za-z0-9_.-]{1,64}");
        goto out;
    }
    if (!f.password) {
        http_reply_error(resp, PAI_E_INVALID, "field 'password' is required");
        goto out;
    }
    if (!(hash = auth_hash_password(ctx->cfg, json_string_value(f.password)))) {
        http_reply_error(resp, PAI_E_NOMEM, "cannot hash the password");
        goto out;
    }
    pthread_mutex_lock(&a->wlock);
    locked = true;
    if (json_object_get(a->users, name)) {
        http_reply_error(resp, PAI_E_CONFLICT_USER, "user %s already exists", name);
        goto out;
    }
    u = xjson_pack("{s:s, s:s, s:s, s:[s], s:{}}", "username", name, "passwordHash", hash, "email",
                   "", "grouplist", AUTH_DEFAULT_GROUP, "extension");
    apply_user_fields(a, u, &f, false, newgroups);
    /* tokens of an earlier user of this name must not come back to life */
    pai_err_t rc = auth_revoke_user_tokens(a, name, NULL, true);
    if (rc == PAI_OK)
        rc = commit_user(a, name, u, newgroups);
    if (rc != PAI_OK)
        http_reply_error(resp, rc, NULL);
    else
        mod_auth_reply_msg(resp, 201, "User is created successfully");
out:
    if (locked)
        pthread_mutex_unlock(&a->wlock);
    free(hash);
    json_decref(u);
    json_decref(newgroups);
    json_decref(body);
}

/* {data: {...}, patch: bool} */
json_t *auth_users_update_body(const http_req_t *req, http_resp_t *resp, bool *patch)
{
    json_t *body = http_body_json(req, resp), *d, *p;
    if (!body || !mod_auth_field(body, "data", JSON_OBJECT, true, &d, resp) ||
        !mod_auth_field(body, "patch", JSON_TRUE, false, &p, resp)) {
        json_decref(body);
        return NULL;
    }
    *patch = json_is_true(p);
    return body;
}

/* Common tail of the user updates: commit, revoke tokens on a new password. */
static void finish_user_update(auth_t *a, const char *name, json_t *u, json_t *newgroups,
                               bool new_password, const char *keep_token, http_resp_t *resp)
{
    pai_err_t rc = commit_user(a, name, u, newgroups);
    if (rc == PAI_OK && new_password)
        rc = auth_revoke_user_tokens(a, name, keep_token, false);
    if (rc != PAI_OK) {
        http_reply_error(resp, rc, NULL);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "update user %s successfully.", name);
    mod_auth_reply_msg(resp, 201, msg);
}

static bool set_password(const server_config_t *cfg, json_t *u, const json_t *pw, http_resp_t *resp)
{
    char *hash = auth_hash_password(cfg, json_string_value(pw));
    if (!hash) {
        http_reply_error(resp, PAI_E_NOMEM, "cannot hash the password");
        return false;
    }
    json_object_set_new(u, "passwordHash", json_string(hash));
    free(hash);
    return true;
}

void auth_users_h_update(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    bool patch = false, locked = false;
    json_t *body = auth_users_update_body(req, resp, &patch), *jn, *u = NULL,
           *newgroups = json_object();
    json_t *d = json_object_get(body, "data");
    user_fields_t f = {0};
    if (!body || !mod_auth_field(d, "username", JSON_STRING, true, &jn, resp) ||
        !user_fields(d, "password", &f, resp))
        goto out;
    const char *name = json_string_value(jn);
    pthread_mutex_lock(&a->wlock);
    locked = true;
    const json_t *old = json_object_get(a->users, name);
    if (!old) {
        http_reply_error(resp, PAI_E_NO_USER, "user %s does not exist", name);
        goto out;
    }
    u = json_deep_copy(old);
    apply_user_fields(a, u, &f, patch, newgroups);
    if (auth_user_admin_locked(a, old) && !auth_user_admin_locked(a, u) &&
        auth_admins_left_locked(a, NULL, name) == 0) {
        http_reply_error(resp, PAI_E_REMOVE_ADMIN, "%s is the last admin", name);
        goto out;
    }
    if (f.password && !set_password(ctx->cfg, u, f.password, resp))
        goto out;
    finish_user_update(a, name, u, newgroups, f.password != NULL, NULL, resp);
out:
    if (locked)
        pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(newgroups);
    json_decref(body);
}

void auth_users_h_me(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    bool patch = false, locked = false;
    json_t *body = auth_users_update_body(req, resp, &patch), *email, *np, *op, *ext, *u = NULL;
    json_t *d = json_object_get(body, "data");
    const char *name = req->who.username;
    json_t *juser;
    if (!body || !mod_auth_field(d, "username", JSON_STRING, false, &juser, resp) ||
        !mod_auth_field(d, "email", JSON_STRING, false, &email, resp) ||
        !mod_auth_field(d, "newPassword", JSON_STRING, false, &np, resp) ||
        !mod_auth_field(d, "oldPassword", JSON_STRING, np != NULL, &op, resp) ||
        !mod_auth_field(d, "extension", JSON_OBJECT, false, &ext, resp))
        goto out;
    /* OpenPAI's clients send the user name along (the SDK does); another
     * user's name is refused, as OpenPAI does. */
    if (juser && strcmp(json_string_value(juser), name) != 0) {
        http_reply_error(resp, PAI_E_FORBIDDEN, "users/me may only update the caller (%s)", name);
        goto out;
    }
    if (np && strlen(json_string_value(np)) < MIN_PASSWORD) {
        http_reply_error(resp, PAI_E_INVALID, "the password needs at least %d characters",
                         MIN_PASSWORD);
        goto out;
    }
    pthread_mutex_lock(&a->wlock);
    locked = true;
    const json_t *old = json_object_get(a->users, name);
    if (!old) {
        http_reply_error(resp, PAI_E_NO_USER, "user %s does not exist", name);
        goto out;
    }
    if (np && !auth_check_password(json_string_value(json_object_get(old, "passwordHash")),
                                   json_string_value(op))) {
        http_reply_error(resp, PAI_E_BAD_PASSWORD, "the old password is not correct");
        goto out;
    }
    u = json_deep_copy(old);
    if (email || !patch)
        json_object_set_new(u, "email", json_string(email ? json_string_value(email) : ""));
    if (ext || !patch)
        json_object_set_new(u, "extension", ext ? json_deep_copy(ext) : json_object());
    if (np && !set_password(ctx->cfg, u, np, resp))
        goto out;
    finish_user_update(a, name, u, NULL, np != NULL, req->who.token_id, resp);
out:
    if (locked)
        pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(body);
}

void auth_users_h_get(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user");
    if (!req->who.admin && strcmp(name, req->who.username) != 0) {
        http_reply_error(resp, PAI_E_FORBIDDEN, "only admins may read other users");
        return;
    }
    pthread_rwlock_rdlock(&a->lock);
    json_t *info = auth_user_info_locked(a, name);
    pthread_rwlock_unlock(&a->lock);
    if (!info)
        http_reply_error(resp, PAI_E_NO_USER, "user %s does not exist", name);
    else
        http_reply_json(resp, 200, info);
}

void auth_users_h_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user");
    pthread_mutex_lock(&a->wlock);
    const json_t *old = json_object_get(a->users, name);
    pai_err_t rc = PAI_OK;
    if (!old) {
        http_reply_error(resp, PAI_E_NO_USER, "user %s does not exist", name);
    } else if (auth_user_admin_locked(a, old) && auth_admins_left_locked(a, NULL, name) == 0) {
        http_reply_error(resp, PAI_E_REMOVE_ADMIN, "%s is the last admin", name);
    } else {
        /* the user first, then its tokens: a login racing this cannot leave a
         * token behind (and user creation clears any stale ones) */
        auth_change_t ch = {"user", name, NULL};
        if ((rc = auth_commit(a, &ch, 1)) != PAI_OK ||
            (rc = auth_revoke_user_tokens(a, name, NULL, true)) != PAI_OK)
            http_reply_error(resp, rc, NULL);
        else
            mod_auth_reply_msg(resp, 200, "user is removed successfully");
    }
    pthread_mutex_unlock(&a->wlock);
}

/* The user and group names of /users/{user}/group with body {groupname}. */
static json_t *membership_body(auth_t *a, const http_req_t *req, http_resp_t *resp,
                               const char **group)
{
    json_t *body = http_body_json(req, resp), *jg;
    if (!body || !mod_auth_field(body, "groupname", JSON_STRING, true, &jg, resp)) {
        json_decref(body);
        return NULL;
    }
    *group = json_string_value(jg);
    if (!json_object_get(a->users, http_param(req, "user"))) {
        http_reply_error(resp, PAI_E_NO_USER, "user %s does not exist", http_param(req, "user"));
    } else if (!json_object_get(a->groups, *group)) {
        http_reply_error(resp, PAI_E_NO_GROUP, "group %s does not exist", *group);
    } else {
        return body;
    }
    json_decref(body);
    return NULL;
}

static void change_membership(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, bool add)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user"), *group = NULL;
    pthread_mutex_lock(&a->wlock);
    json_t *body = membership_body(a, req, resp, &group), *u = NULL;
    if (!body)
        goto out;
    if (!add && strcmp(group, AUTH_DEFAULT_GROUP) == 0) {
        http_reply_error(resp, PAI_E_FORBIDDEN, "every user stays in the group default");
        goto out;
    }
    u = json_deep_copy(json_object_get(a->users, name));
    auth_users_set_member(json_object_get(u, "grouplist"), group, add);
    if (!add && auth_user_admin_locked(a, json_object_get(a->users, name)) &&
        !auth_user_admin_locked(a, u) && auth_admins_left_locked(a, NULL, name) == 0) {
        http_reply_error(resp, PAI_E_REMOVE_ADMIN, "%s is the last admin", name);
        goto out;
    }
    auth_change_t ch = {"user", name, u};
    pai_err_t rc = auth_commit(a, &ch, 1);
    char msg[300];
    snprintf(msg, sizeof(msg),
             add ? "User %s is added into group %s" : "User %s is removed from group %s", name,
             group);
    if (rc != PAI_OK)
        http_reply_error(resp, rc, NULL);
    else
        mod_auth_reply_msg(resp, 201, msg);
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(body);
}

void auth_users_h_group_add(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    change_membership(ctx, req, resp, true);
}

void auth_users_h_group_del(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    change_membership(ctx, req, resp, false);
}

void auth_users_h_grouplist(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user");
    json_t *body = http_body_json(req, resp), *gl, *u = NULL;
    pthread_mutex_lock(&a->wlock);
    if (!body || !mod_auth_field(body, "grouplist", JSON_ARRAY, true, &gl, resp) ||
        !mod_auth_string_array(gl, "grouplist", resp))
        goto out;
    const json_t *old = json_object_get(a->users, name);
    if (!old) {
        http_reply_error(resp, PAI_E_NO_USER, "user %s does not exist", name);
        goto out;
    }
    size_t i;
    json_t *g;
    json_array_foreach(gl, i, g)
    {
        if (!json_object_get(a->groups, json_string_value(g))) {
            http_reply_error(resp, PAI_E_NO_GROUP, "group %s does not exist", json_string_value(g));
            goto out;
        }
    }
    u = json_deep_copy(old);
    json_t *ngl = json_deep_copy(gl);
    auth_users_set_member(ngl, AUTH_DEFAULT_GROUP, true);
    json_object_set_new(u, "grouplist", ngl);
    if (auth_user_admin_locked(a, old) && !auth_user_admin_locked(a, u) &&
        auth_admins_left_locked(a, NULL, name) == 0) {
        http_reply_error(resp, PAI_E_REMOVE_ADMIN, "%s is the last admin", name);
        goto out;
    }
    auth_change_t ch = {"user", name, u};
    pai_err_t rc = auth_commit(a, &ch, 1);
    if (rc != PAI_OK)
        http_reply_error(resp, rc, NULL);
    else
        mod_auth_reply_msg(resp, 201, "update user grouplist successfully.");
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(body);
}
