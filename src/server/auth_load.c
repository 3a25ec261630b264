/*
 * auth_load.c - auth's state from the store: the leader's load at start
 * (expired tokens purged, built-in groups and the first admin created, the
 * agent secret read or generated) and a standby's read-only view
 * (auth_view_new: loaded as it is, never written; a token it does not know
 * is read from the store when presented, auth_view_fetch_token).  See
 * auth.h for the model, auth_int.h for the locking and server/standby.h for
 * the view's life.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "server/auth_int.h"
#include "server/config.h"

/* ---- load and bootstrap ------------------------------------------------ */

static int load_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)seq;
    json_t *j = json_loads(json, 0, NULL);
    if (j)
        json_object_set_new(ud, key, j);
    else
        log_error("auth: store record %s is not JSON; ignored", key);
    return 0;
}

static pai_err_t load_all(auth_t *a)
{
    pai_err_t rc;
    if ((rc = store_scan(a->ctx->store, "user", load_cb, a->users)) != PAI_OK ||
        (rc = store_scan(a->ctx->store, "group", load_cb, a->groups)) != PAI_OK ||
        (rc = store_scan(a->ctx->store, "token", load_cb, a->tokens)) != PAI_OK)
        return rc;
    auth_purge_expired(a); /* drop expired tokens for good */
    return PAI_OK;
}

static json_t *default_group_acls(const server_config_t *cfg)
{
    json_t *st = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(cfg->storages, i, s)
    {
        if (json_is_true(json_object_get(s, "default")))
            json_array_append(st, json_object_get(s, "name"));
    }
    return xjson_pack("{s:b, s:[s], s:o}", "admin", 0, "virtualClusters", "default",
                      "storageConfigs", st);
}

static pai_err_t ensure_builtin_groups(auth_t *a)
{
    pai_err_t rc = PAI_OK;
    if (!json_object_get(a->groups, AUTH_ADMIN_GROUP)) {
        json_t *g = auth_group_new(
            AUTH_ADMIN_GROUP, "built-in: cluster administrators",
            xjson_pack("{s:b, s:[], s:[]}", "admin", 1, "virtualClusters", "storageConfigs"));
        auth_change_t ch = {"group", AUTH_ADMIN_GROUP, g};
        rc = auth_commit(a, &ch, 1);
        json_decref(g);
    }
    if (rc == PAI_OK && !json_object_get(a->groups, AUTH_DEFAULT_GROUP)) {
        json_t *g = auth_group_new(AUTH_DEFAULT_GROUP, "built-in: every user",
                                   default_group_acls(a->ctx->cfg));
        auth_change_t ch = {"group", AUTH_DEFAULT_GROUP, g};
        rc = auth_commit(a, &ch, 1);
        json_decref(g);
    }
    return rc;
}

static pai_err_t bootstrap_admin(auth_t *a, pai_error_t *e)
{
    const server_config_t *cfg = a->ctx->cfg;
    if (json_object_size(a->users) > 0)
        return PAI_OK;
    char gen[33];
    const char *pw = cfg->admin_password;
    if (!pw || !*pw) {
        unsigned char r[16];
        randombytes_buf(r, sizeof(r));
        auth_hex(gen, r, sizeof(r));
        pw = gen;
    }
    if (!auth_name_ok(cfg->admin_username) || strlen(pw) < 6) {
        return pai_error_set(e, PAI_E_INVALID,
                             "admin_username must be a valid name and the password >= 6 chars");
    }
    char *hash = auth_hash_password(cfg, pw);
    if (!hash) {
        return pai_error_set(e, PAI_E_NOMEM,
                             "cannot hash the admin password (pwhash limits too high?)");
    }
    json_t *u =
        xjson_pack("{s:s, s:s, s:s, s:[s,s], s:{}, s:I}", "username", cfg->admin_username,
                   "passwordHash", hash, "email", "", "grouplist", AUTH_ADMIN_GROUP,
                   AUTH_DEFAULT_GROUP, "extension", "createdTime", (json_int_t)time_wall_ms());
    free(hash);
    auth_change_t ch[2] = {{"user", cfg->admin_username, u}};
    pai_err_t rc = auth_users_take_task_uid(a, u, &ch[1]);
    if (rc == PAI_OK)
        rc = auth_commit(a, ch, 2);
    json_decref(ch[1].rec);
    json_decref(u);
    if (rc != PAI_OK) {
        return pai_error_set(e, rc, "cannot store the admin user: %s", pai_err_msg(rc));
    }
    if (pw == gen)
        printf("pai server: created admin user '%s' with password: %s\n", cfg->admin_username, gen);
    else
        printf("pai server: created admin user '%s' with the configured password\n",
               cfg->admin_username);
    fflush(stdout);
    return PAI_OK;
}

bool auth_agent_token_read(const server_config_t *cfg, char *out, size_t cap)
{
    out[0] = '\0';
    if (cfg->agent_token && *cfg->agent_token) {
        str_copy(out, cfg->agent_token, cap);
        return true;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/agent.token", cfg->data_dir);
    buf_t b;
    buf_init(&b, cap - 1);
    if (buf_read_file(&b, path) == PAI_OK && b.len >= 16) {
        str_copy(out, buf_str(&b), cap);
        out[strcspn(out, "\r\n")] = '\0';
    }
    buf_free(&b);
    return out[0] != '\0';
}

/* The agent secret as the leader has it, never generated here (empty when
 * there is none: a standby serves no agent).  Has it one? */
static bool view_agent_token(auth_t *a)
{
    return auth_agent_token_read(a->ctx->cfg, a->agent_token, sizeof(a->agent_token));
}

/* The agent secret: configured, or read from / generated into data_dir. */
static pai_err_t load_agent_token(auth_t *a, pai_error_t *e)
{
    const server_config_t *cfg = a->ctx->cfg;
    if (view_agent_token(a))
        return PAI_OK;
    char path[4096];
    snprintf(path, sizeof(path), "%s/agent.token", cfg->data_dir);
    unsigned char r[24];
    randombytes_buf(r, sizeof(r));
    auth_hex(a->agent_token, r, sizeof(r));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, a->agent_token, strlen(a->agent_token)) < 0 || fsync(fd) != 0) {
        pai_error_set(e, PAI_E_IO, "cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return PAI_E_IO;
    }
    close(fd);
    log_info("auth: generated the agent token into %s", path);
    return PAI_OK;
}

pai_err_t auth_new(server_ctx_t *ctx, auth_t **out, pai_error_t *e)
{
    if (sodium_init() < 0)
        return pai_error_set(e, PAI_E_INTERNAL, "libsodium failed to initialize");
    auth_t *a = xcalloc(1, sizeof(*a));
    a->ctx = ctx;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->wlock, NULL);
    a->users = json_object();
    a->groups = json_object();
    a->tokens = json_object();
    a->fail_user = throttle_new(&(throttle_opts_t){
        .free_failures = (unsigned)ctx->cfg->login_fail_free_user,
        .base_ms = ctx->cfg->login_lock_s * 1000,
        .max_ms = ctx->cfg->login_lock_max_s * 1000,
        .forget_ms = ctx->cfg->login_lock_max_s * 1000,
        .slots = PAI_MAX_LOGIN_KEYS,
    });
    a->fail_addr = throttle_new(&(throttle_opts_t){
        .free_failures = (unsigned)ctx->cfg->login_fail_free_addr,
        .base_ms = ctx->cfg->login_lock_s * 1000,
        .max_ms = ctx->cfg->login_lock_max_s * 1000,
        .forget_ms = ctx->cfg->login_lock_max_s * 1000,
        .slots = PAI_MAX_LOGIN_KEYS,
    });
    unsigned char r[16];
    char pw[33];
    randombytes_buf(r, sizeof(r));
    auth_hex(pw, r, sizeof(r));
    pai_err_t rc = PAI_E_NOMEM;
    if (!(a->dummy_hash = auth_hash_password(ctx->cfg, pw))) {
        pai_error_set(e, rc, "cannot hash a password (pwhash limits too high?)");
        goto fail;
    }
    rc = load_all(a);
    if (rc != PAI_OK) {
        pai_error_set(e, rc, "cannot load users, groups and tokens: %s", pai_err_msg(rc));
        goto fail;
    }
    if ((rc = ensure_builtin_groups(a)) != PAI_OK) {
        pai_error_set(e, rc, "cannot create the built-in groups: %s", pai_err_msg(rc));
        goto fail;
    }
    if ((rc = bootstrap_admin(a, e)) != PAI_OK || (rc = load_agent_token(a, e)) != PAI_OK)
        goto fail;
    *out = a;
    return PAI_OK;
fail:
    auth_free(a);
    return rc;
}

/* ---- a standby's read-only view ---------------------------------------- */

pai_err_t auth_view_new(server_ctx_t *ctx, auth_t **out)
{
    if (sodium_init() < 0)
        return PAI_E_INTERNAL;
    auth_t *a = xcalloc(1, sizeof(*a));
    a->ctx = ctx;
    a->readonly = true;
    pthread_rwlock_init(&a->lock, NULL);
    pthread_mutex_init(&a->wlock, NULL);
    a->users = json_object();
    a->groups = json_object();
    a->tokens = json_object();
    pai_err_t rc;
    if ((rc = store_scan(ctx->store, "user", load_cb, a->users)) != PAI_OK ||
        (rc = store_scan(ctx->store, "group", load_cb, a->groups)) != PAI_OK ||
        (rc = store_scan(ctx->store, "token", load_cb, a->tokens)) != PAI_OK) {
        auth_free(a);
        return rc;
    }
    view_agent_token(a);
    *out = a;
    return PAI_OK;
}

/* One record from the store, parsed; NULL when absent or unreadable. */
static json_t *fetch(auth_t *a, const char *kind, const char *key)
{
    char *text = NULL;
    if (store_get(a->ctx->store, kind, key, &text) != PAI_OK)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

bool auth_view_fetch_token(auth_t *a, const char *tid)
{
    /* only what auth_token_new makes: 16 hex digits (a bounded query) */
    if (strlen(tid) != 16 || strspn(tid, "0123456789abcdef") != 16)
        return false;
    json_t *t = fetch(a, "token", tid);
    const char *user = json_string_value(json_object_get(t, "username"));
    if (!user) {
        json_decref(t);
        return false;
    }
    pthread_rwlock_rdlock(&a->lock);
    bool have_user = json_object_get(a->users, user) != NULL;
    pthread_rwlock_unlock(&a->lock);
    json_t *u = have_user ? NULL : fetch(a, "user", user);
    pthread_rwlock_wrlock(&a->lock);
    json_object_set(a->tokens, tid, t);
    if (u && !json_object_get(a->users, user))
        json_object_set(a->users, user, u);
    pthread_rwlock_unlock(&a->lock);
    json_decref(t);
    json_decref(u);
    return true;
}
