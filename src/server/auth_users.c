/*
 * auth_users.c - the auth module's user handlers: list, create, update
 * (PUT /users and /users/me), get, delete, and group membership (OpenPAI
 * REST API v2), and the membership queries other modules ask (auth.h).
 * The routes are in mod_auth.c, the model in auth.c.
 *
 * Every mutation holds the model's wlock from validation to commit.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/util.h"
#include "server/auth_int.h"
#include "server/config.h"
#include "server/notify.h"
#include "store/store.h"

#define MIN_PASSWORD 6

/* ---- users ------------------------------------------------------------- */

/* pai's `notification` field of a user update: the settings checked
 * (server/notify.h), null to remove them; absent: unchanged, patch or not
 * (OpenPAI's clients do not know it).  *out borrowed from d. */
static pai_err_t notification_field(server_ctx_t *ctx, const json_t *d, json_t **out,
                                    pai_error_t *e)
{
    *out = json_object_get(d, "notification");
    if (!*out || json_is_null(*out))
        return PAI_OK;
    return notify_prefs_check(ctx->notify, *out, e);
}

/* Apply a checked notification field to user u. */
static void apply_notification(json_t *u, json_t *notif)
{
    if (json_is_null(notif))
        json_object_del(u, "notification");
    else if (notif)
        json_object_set(u, "notification", notif);
}

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
/* The counter's key: the next offset ({"next": N}).  It only grows, so a
 * deleted user's offset is never given to another (or a re-created) user. */
#define TASK_UID_KEY "task_uid_next"

pai_err_t auth_users_take_task_uid(auth_t *a, json_t *u, auth_change_t *ch)
{
    char *text = NULL;
    json_int_t next = 0;
    pai_err_t rc = store_get(a->ctx->store, AUTH_META_KIND, TASK_UID_KEY, &text);
    if (rc == PAI_OK) {
        json_t *o = json_loads(text, 0, NULL);
        next = json_integer_value(json_object_get(o, "next"));
        json_decref(o);
        free(text);
    } else if (rc != PAI_E_NOT_FOUND) {
        return rc; /* the store's own error: UNAVAILABLE while the database is gone */
    }
    const char *k;
    json_t *v;
    json_object_foreach(a->users, k, v) /* belt and braces: a counter behind a user */
    {
        json_t *tu = json_object_get(v, "taskUid");
        if (json_is_integer(tu) && json_integer_value(tu) >= next)
            next = json_integer_value(tu) + 1;
    }
    json_object_set_new(u, "taskUid", json_integer(next));
    *ch = (auth_change_t){AUTH_META_KIND, TASK_UID_KEY, xjson_pack("{sI}", "next", next + 1)};
    return PAI_OK;
}

int64_t auth_user_task_uid(server_ctx_t *ctx, const char *username)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return -1;
    pthread_rwlock_rdlock(&a->lock);
    json_t *tu = json_object_get(json_object_get(a->users, username), "taskUid");
    int64_t out = json_is_integer(tu) ? (int64_t)json_integer_value(tu) : -1;
    pthread_rwlock_unlock(&a->lock);
    return out;
}

static pai_err_t commit_user(auth_t *a, const char *name, json_t *u, json_t *newgroups,
                             const auth_change_t *extra)
{
    size_t n = json_object_size(newgroups) + 2, i = 0;
    auth_change_t *ch = xcalloc(n, sizeof(*ch));
    const char *k;
    json_t *g;
    json_object_foreach(newgroups, k, g)
    {
        ch[i++] = (auth_change_t){"group", k, g};
    }
    ch[i++] = (auth_change_t){"user", name, u};
    if (extra && extra->kind)
        ch[i++] = *extra;
    pai_err_t rc = auth_commit(a, ch, i);
    free(ch);
    return rc;
}

typedef struct {
    json_t *email, *password, *admin, *vcs, *ext, *notif;
} user_fields_t;

static pai_err_t user_fields(server_ctx_t *ctx, const json_t *d, const char *pwfield,
                             user_fields_t *f, pai_error_t *e)
{
    pai_err_t rc;
    if ((rc = notification_field(ctx, d, &f->notif, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "email", JSON_STRING, false, &f->email, e)) != PAI_OK ||
        (rc = mod_auth_field(d, pwfield, JSON_STRING, false, &f->password, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "admin", JSON_TRUE, false, &f->admin, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "virtualCluster", JSON_ARRAY, false, &f->vcs, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "extension", JSON_OBJECT, false, &f->ext, e)) != PAI_OK)
        return rc;
    if (f->vcs && (rc = mod_auth_string_array(f->vcs, "virtualCluster", e)) != PAI_OK)
        return rc;
    if (f->password && strlen(json_string_value(f->password)) < MIN_PASSWORD)
        return pai_error_set(e, PAI_E_INVALID, "the password needs at least %d characters",
                             MIN_PASSWORD);
    return PAI_OK;
}

/* Apply fields to user u (a copy).  patch=false resets absent fields. */
static void apply_user_fields(auth_t *a, json_t *u, const user_fields_t *f, bool patch,
                              json_t *newgroups)
{
    if (f->email || !patch)
        json_object_set_new(u, "email", json_string(f->email ? json_string_value(f->email) : ""));
    if (f->ext || !patch)
        json_object_set_new(u, "extension", f->ext ? json_deep_copy(f->ext) : json_object());
    apply_notification(u, f->notif);
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

pai_err_t auth_users_h_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                            pai_error_t *e)
{
    (void)req, (void)e;
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
    return PAI_OK;
}

/* Is name taken, regardless of case (`ALICE` when `alice` exists)?  wlock held. */
static bool name_taken(auth_t *a, const char *name)
{
    const char *k;
    json_t *u;
    json_object_foreach(a->users, k, u)
    {
        if (strcasecmp(k, name) == 0)
            return true;
    }
    return false;
}

pai_err_t auth_users_h_create(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e)
{
    auth_t *a = ctx->auth;
    json_t *body = NULL, *jn, *newgroups = json_object(), *u = NULL;
    user_fields_t f = {0};
    char *hash = NULL;
    bool locked = false;
    auth_change_t counter = {0};
    pai_err_t rc;
    if ((rc = http_body_json(req, &body, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "username", JSON_STRING, true, &jn, e)) != PAI_OK ||
        (rc = user_fields(ctx, body, "password", &f, e)) != PAI_OK)
        goto out;
    const char *name = json_string_value(jn);
    if (!auth_name_ok(name)) {
        rc = pai_error_set(e, PAI_E_INVALID, "username must match [A-Za-z0-9_.-]{1,64}");
        goto out;
    }
    if (!f.password) {
        rc = pai_error_set(e, PAI_E_INVALID, "field 'password' is required");
        goto out;
    }
    if (!(hash = auth_hash_password(ctx->cfg, json_string_value(f.password)))) {
        rc = pai_error_set(e, PAI_E_NOMEM, "cannot hash the password");
        goto out;
    }
    pthread_mutex_lock(&a->wlock);
    locked = true;
    if (name_taken(a, name)) {
        rc = pai_error_set(e, PAI_E_CONFLICT_USER, PAI_MSG_CONFLICT_USER, name);
        goto out;
    }
    /* createdTime tells this user's jobs from those of a deleted user of the
     * same name (auth_user_since) */
    u = xjson_pack("{s:s, s:s, s:s, s:[s], s:{}, s:I}", "username", name, "passwordHash", hash,
                   "email", "", "grouplist", AUTH_DEFAULT_GROUP, "extension", "createdTime",
                   (json_int_t)time_wall_ms());
    apply_user_fields(a, u, &f, false, newgroups);
    /* tokens of an earlier user of this name must not come back to life */
    if ((rc = auth_users_take_task_uid(a, u, &counter)) != PAI_OK ||
        (rc = auth_revoke_user_tokens(a, name, NULL, true)) != PAI_OK ||
        (rc = commit_user(a, name, u, newgroups, &counter)) != PAI_OK)
        auth_commit_error(e, rc);
    else
        mod_auth_reply_msg(resp, 201, "User is created successfully");
out:
    if (locked)
        pthread_mutex_unlock(&a->wlock);
    free(hash);
    json_decref(counter.rec);
    json_decref(u);
    json_decref(newgroups);
    json_decref(body);
    return rc;
}

/* {data: {...}, patch: bool} */
pai_err_t auth_users_update_body(const http_req_t *req, json_t **out, bool *patch, pai_error_t *e)
{
    json_t *body = NULL, *d, *p;
    pai_err_t rc;
    *out = NULL;
    if ((rc = http_body_json(req, &body, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "data", JSON_OBJECT, true, &d, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "patch", JSON_TRUE, false, &p, e)) != PAI_OK) {
        json_decref(body);
        return rc;
    }
    *patch = json_is_true(p);
    *out = body;
    return PAI_OK;
}

/* Common tail of the user updates: commit; a new password revokes every
 * token of the user, application tokens included, but keep_token (the
 * session that changed its own password). */
static pai_err_t finish_user_update(auth_t *a, const char *name, json_t *u, json_t *newgroups,
                                    bool new_password, const char *keep_token, http_resp_t *resp,
                                    pai_error_t *e)
{
    pai_err_t rc = commit_user(a, name, u, newgroups, NULL);
    if (rc == PAI_OK && new_password)
        rc = auth_revoke_user_tokens(a, name, keep_token, true);
    if (rc != PAI_OK)
        return auth_commit_error(e, rc);
    char msg[160];
    snprintf(msg, sizeof(msg), "update user %s successfully.", name);
    mod_auth_reply_msg(resp, 201, msg);
    return PAI_OK;
}

static pai_err_t set_password(const server_config_t *cfg, json_t *u, const json_t *pw,
                              pai_error_t *e)
{
    char *hash = auth_hash_password(cfg, json_string_value(pw));
    if (!hash)
        return pai_error_set(e, PAI_E_NOMEM, "cannot hash the password");
    json_object_set_new(u, "passwordHash", json_string(hash));
    free(hash);
    return PAI_OK;
}

pai_err_t auth_users_h_update(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e)
{
    auth_t *a = ctx->auth;
    bool patch = false, locked = false;
    json_t *body = NULL, *jn, *u = NULL, *newgroups = json_object();
    user_fields_t f = {0};
    pai_err_t rc = auth_users_update_body(req, &body, &patch, e);
    json_t *d = json_object_get(body, "data");
    if (rc != PAI_OK || (rc = mod_auth_field(d, "username", JSON_STRING, true, &jn, e)) != PAI_OK ||
        (rc = user_fields(ctx, d, "password", &f, e)) != PAI_OK)
        goto out;
    const char *name = json_string_value(jn);
    pthread_mutex_lock(&a->wlock);
    locked = true;
    const json_t *old = json_object_get(a->users, name);
    if (!old) {
        rc = pai_error_set(e, PAI_E_NO_USER, PAI_MSG_NO_USER, name);
        goto out;
    }
    u = json_deep_copy(old);
    apply_user_fields(a, u, &f, patch, newgroups);
    if (auth_user_admin_locked(a, old) && !auth_user_admin_locked(a, u) &&
        auth_admins_left_locked(a, NULL, name) == 0) {
        rc = pai_error_set(e, PAI_E_REMOVE_ADMIN, "%s is the last admin", name);
        goto out;
    }
    if (f.password && (rc = set_password(ctx->cfg, u, f.password, e)) != PAI_OK)
        goto out;
    rc = finish_user_update(a, name, u, newgroups, f.password != NULL, NULL, resp, e);
out:
    if (locked)
        pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(newgroups);
    json_decref(body);
    return rc;
}

pai_err_t auth_users_h_me(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    auth_t *a = ctx->auth;
    bool patch = false, locked = false;
    json_t *body = NULL, *email, *np = NULL, *op, *ext, *notif = NULL, *u = NULL;
    pai_err_t rc = auth_users_update_body(req, &body, &patch, e);
    json_t *d = json_object_get(body, "data");
    const char *name = req->who.username;
    json_t *juser;
    if (rc != PAI_OK ||
        (rc = mod_auth_field(d, "username", JSON_STRING, false, &juser, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "email", JSON_STRING, false, &email, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "newPassword", JSON_STRING, false, &np, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "oldPassword", JSON_STRING, np != NULL, &op, e)) != PAI_OK ||
        (rc = mod_auth_field(d, "extension", JSON_OBJECT, false, &ext, e)) != PAI_OK ||
        (rc = notification_field(ctx, d, &notif, e)) != PAI_OK)
        goto out;
    /* OpenPAI's clients send the user name along (the SDK does); another
     * user's name is refused, as OpenPAI does. */
    if (juser && strcmp(json_string_value(juser), name) != 0) {
        rc = pai_error_set(e, PAI_E_FORBIDDEN, "Can't update other user's data");
        goto out;
    }
    if (np && strlen(json_string_value(np)) < MIN_PASSWORD) {
        rc = pai_error_set(e, PAI_E_INVALID, "the password needs at least %d characters",
                           MIN_PASSWORD);
        goto out;
    }
    pthread_mutex_lock(&a->wlock);
    locked = true;
    const json_t *old = json_object_get(a->users, name);
    if (!old) {
        rc = pai_error_set(e, PAI_E_NO_USER, PAI_MSG_NO_USER, name);
        goto out;
    }
    if (np && !auth_check_password(json_string_value(json_object_get(old, "passwordHash")),
                                   json_string_value(op))) {
        rc = pai_error_set(e, PAI_E_FORBIDDEN, "Pls input the correct password."); /* OpenPAI's */
        goto out;
    }
    u = json_deep_copy(old);
    if (email || !patch)
        json_object_set_new(u, "email", json_string(email ? json_string_value(email) : ""));
    if (ext || !patch)
        json_object_set_new(u, "extension", ext ? json_deep_copy(ext) : json_object());
    apply_notification(u, notif);
    if (np && (rc = set_password(ctx->cfg, u, np, e)) != PAI_OK)
        goto out;
    rc = finish_user_update(a, name, u, NULL, np != NULL, req->who.token_id, resp, e);
out:
    if (locked)
        pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(body);
    return rc;
}

pai_err_t auth_users_h_get(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user");
    if (!req->who.admin && strcmp(name, req->who.username) != 0)
        return pai_error_set(e, PAI_E_FORBIDDEN, PAI_MSG_NON_ADMIN);
    pthread_rwlock_rdlock(&a->lock);
    json_t *info = auth_user_info_locked(a, name);
    pthread_rwlock_unlock(&a->lock);
    if (!info)
        return pai_error_set(e, PAI_E_NO_USER, PAI_MSG_NO_USER, name);
    http_reply_json(resp, 200, info);
    return PAI_OK;
}

pai_err_t auth_users_h_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user");
    pthread_mutex_lock(&a->wlock);
    const json_t *old = json_object_get(a->users, name);
    pai_err_t rc = PAI_OK;
    if (!old) {
        rc = pai_error_set(e, PAI_E_NO_USER, PAI_MSG_NO_USER, name);
    } else if (auth_user_admin_locked(a, old) && auth_admins_left_locked(a, NULL, name) == 0) {
        rc = pai_error_set(e, PAI_E_REMOVE_ADMIN, "Admin %s is not allowed to remove.", name);
    } else {
        /* the user first, then its tokens: a login racing this cannot leave a
         * token behind (and user creation clears any stale ones) */
        auth_change_t ch = {"user", name, NULL};
        if ((rc = auth_commit(a, &ch, 1)) != PAI_OK ||
            (rc = auth_revoke_user_tokens(a, name, NULL, true)) != PAI_OK)
            auth_commit_error(e, rc);
        else
            mod_auth_reply_msg(resp, 200, "user is removed successfully");
    }
    pthread_mutex_unlock(&a->wlock);
    return rc;
}

/* The user and group names of /users/{user}/group with body {groupname}. */
static pai_err_t membership_body(auth_t *a, const http_req_t *req, json_t **out, const char **group,
                                 pai_error_t *e)
{
    json_t *body = NULL, *jg;
    pai_err_t rc;
    *out = NULL;
    if ((rc = http_body_json(req, &body, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "groupname", JSON_STRING, true, &jg, e)) != PAI_OK) {
        json_decref(body);
        return rc;
    }
    *group = json_string_value(jg);
    if (!json_object_get(a->users, http_param(req, "user")))
        rc = pai_error_set(e, PAI_E_NO_USER, PAI_MSG_NO_USER, http_param(req, "user"));
    else if (!json_object_get(a->groups, *group))
        rc = pai_error_set(e, PAI_E_NO_GROUP, PAI_MSG_NO_GROUP, *group);
    if (rc != PAI_OK)
        json_decref(body);
    else
        *out = body;
    return rc;
}

static pai_err_t change_membership(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                   bool add, pai_error_t *e)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user"), *group = NULL;
    pthread_mutex_lock(&a->wlock);
    json_t *body = NULL, *u = NULL;
    pai_err_t rc = membership_body(a, req, &body, &group, e);
    if (rc != PAI_OK)
        goto out;
    if (!add && strcmp(group, AUTH_DEFAULT_GROUP) == 0) {
        rc = pai_error_set(e, PAI_E_FORBIDDEN, "every user stays in the group default");
        goto out;
    }
    u = json_deep_copy(json_object_get(a->users, name));
    auth_users_set_member(json_object_get(u, "grouplist"), group, add);
    if (!add && auth_user_admin_locked(a, json_object_get(a->users, name)) &&
        !auth_user_admin_locked(a, u) && auth_admins_left_locked(a, NULL, name) == 0) {
        rc = pai_error_set(e, PAI_E_REMOVE_ADMIN, "%s is the last admin", name);
        goto out;
    }
    auth_change_t ch = {"user", name, u};
    rc = auth_commit(a, &ch, 1);
    char msg[300];
    snprintf(msg, sizeof(msg),
             add ? "User %s is added into group %s" : "User %s is removed from group %s", name,
             group);
    if (rc != PAI_OK)
        auth_commit_error(e, rc);
    else
        mod_auth_reply_msg(resp, 201, msg);
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(body);
    return rc;
}

pai_err_t auth_users_h_group_add(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                 pai_error_t *e)
{
    return change_membership(ctx, req, resp, true, e);
}

pai_err_t auth_users_h_group_del(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                 pai_error_t *e)
{
    return change_membership(ctx, req, resp, false, e);
}

pai_err_t auth_users_h_grouplist(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                 pai_error_t *e)
{
    auth_t *a = ctx->auth;
    const char *name = http_param(req, "user");
    json_t *body = NULL, *gl, *u = NULL;
    pthread_mutex_lock(&a->wlock);
    pai_err_t rc;
    if ((rc = http_body_json(req, &body, e)) != PAI_OK ||
        (rc = mod_auth_field(body, "grouplist", JSON_ARRAY, true, &gl, e)) != PAI_OK ||
        (rc = mod_auth_string_array(gl, "grouplist", e)) != PAI_OK)
        goto out;
    const json_t *old = json_object_get(a->users, name);
    if (!old) {
        rc = pai_error_set(e, PAI_E_NO_USER, PAI_MSG_NO_USER, name);
        goto out;
    }
    size_t i;
    json_t *g;
    json_array_foreach(gl, i, g)
    {
        if (!json_object_get(a->groups, json_string_value(g))) {
            rc = pai_error_set(e, PAI_E_NO_GROUP, PAI_MSG_NO_GROUP, json_string_value(g));
            goto out;
        }
    }
    u = json_deep_copy(old);
    json_t *ngl = json_deep_copy(gl);
    auth_users_set_member(ngl, AUTH_DEFAULT_GROUP, true);
    json_object_set_new(u, "grouplist", ngl);
    if (auth_user_admin_locked(a, old) && !auth_user_admin_locked(a, u) &&
        auth_admins_left_locked(a, NULL, name) == 0) {
        rc = pai_error_set(e, PAI_E_REMOVE_ADMIN, "%s is the last admin", name);
        goto out;
    }
    auth_change_t ch = {"user", name, u};
    if ((rc = auth_commit(a, &ch, 1)) != PAI_OK)
        auth_commit_error(e, rc);
    else
        mod_auth_reply_msg(resp, 201, "update user grouplist successfully.");
out:
    pthread_mutex_unlock(&a->wlock);
    json_decref(u);
    json_decref(body);
    return rc;
}

/* ---- group membership, for other modules (auth.h) ---------------------- */

bool auth_user_in_group(server_ctx_t *ctx, const char *username, const char *group)
{
    auth_t *a = ctx->auth;
    if (!a || !username || !group)
        return false;
    pthread_rwlock_rdlock(&a->lock);
    const json_t *u = json_object_get(a->users, username);
    bool ok = u && auth_json_has_str(json_object_get(u, "grouplist"), group);
    pthread_rwlock_unlock(&a->lock);
    return ok;
}

json_t *auth_user_groups(server_ctx_t *ctx, const char *username)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return json_array();
    pthread_rwlock_rdlock(&a->lock);
    const json_t *gl = json_object_get(json_object_get(a->users, username), "grouplist");
    json_t *out = json_is_array(gl) ? json_deep_copy(gl) : json_array();
    pthread_rwlock_unlock(&a->lock);
    return out;
}

bool auth_group_exists(server_ctx_t *ctx, const char *group)
{
    auth_t *a = ctx->auth;
    if (!a || !group)
        return false;
    pthread_rwlock_rdlock(&a->lock);
    bool ok = json_object_get(a->groups, group) != NULL;
    pthread_rwlock_unlock(&a->lock);
    return ok;
}
