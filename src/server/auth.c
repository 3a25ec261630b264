/*
 * auth.c - the auth model: users, groups and tokens in memory, the store
 * underneath, identification of requests, and the permission queries other
 * modules call.  See auth.h for the model and auth_int.h for the locking.
 *
 * Invariants:
 *  - every record in memory is also in the store (written first);
 *  - a token is valid iff its id is in `tokens`, the SHA-256 of the
 *    presented token matches, it has not expired, and its user exists;
 *  - the built-in groups always exist; there is always at least one admin;
 *  - user names are unique regardless of case (checked at creation; stores
 *    from before may hold names that differ only in case, which keep working);
 *  - a user's createdTime (ms) never changes: jobs submitted before it belong
 *    to an earlier, deleted user of the same name (auth_user_since).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "server/auth_int.h"
#include "server/config.h"
#include "wire/agentwire.h"

#define TOKEN_ID_BYTES     8
#define TOKEN_SECRET_BYTES 24

/* ---- small helpers ----------------------------------------------------- */

bool auth_name_ok(const char *name)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > 64 || strcmp(name, "me") == 0)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* argon2id needs pwhash_memlimit_kib per hash and every connection has a
 * thread, so a burst of logins could ask for gigabytes: at most
 * PWHASH_PARALLEL hashes run at once, the others wait their turn. */
#define PWHASH_PARALLEL 4
static sem_t pwhash_slots;
static pthread_once_t pwhash_once = PTHREAD_ONCE_INIT;

static void pwhash_init(void)
{
    sem_init(&pwhash_slots, 0, PWHASH_PARALLEL);
}

static void pwhash_enter(void)
{
    pthread_once(&pwhash_once, pwhash_init);
    while (sem_wait(&pwhash_slots) != 0 && errno == EINTR)
        ;
}

char *auth_hash_password(const server_config_t *cfg, const char *pw)
{
    char out[crypto_pwhash_STRBYTES];
    pwhash_enter();
    int r = crypto_pwhash_str(out, pw, strlen(pw), (unsigned long long)cfg->pwhash_opslimit,
                              (size_t)cfg->pwhash_memlimit_kib * 1024);
    sem_post(&pwhash_slots);
    return r == 0 ? xstrdup(out) : NULL;
}

bool auth_check_password(const char *hash, const char *pw)
{
    if (!hash)
        return false;
    pwhash_enter();
    bool ok = crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
    sem_post(&pwhash_slots);
    return ok;
}

void auth_hex(char *dst, const unsigned char *src, size_t n)
{
    sodium_bin2hex(dst, n * 2 + 1, src, n);
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    auth_hex(out, h, sizeof(h));
}

bool auth_is_builtin_group(const char *name)
{
    return strcmp(name, AUTH_ADMIN_GROUP) == 0 || strcmp(name, AUTH_DEFAULT_GROUP) == 0;
}

json_t *auth_group_new(const char *name, const char *description, json_t *acls)
{
    if (!acls)
        acls = xjson_pack("{s:b, s:[], s:[]}", "admin", 0, "virtualClusters", "storageConfigs");
    return xjson_pack("{s:s, s:s, s:s, s:{s:o}}", "groupname", name, "description", description,
                      "externalName", "", "extension", "acls", acls);
}

static const json_t *group_acls(const json_t *g)
{
    return json_object_get(json_object_get(g, "extension"), "acls");
}

bool auth_json_has_str(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* ---- queries (lock held for reading) ----------------------------------- */

bool auth_user_admin_locked(auth_t *a, const json_t *user)
{
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(user, "grouplist"), i, g)
    {
        const json_t *grp = json_object_get(a->groups, json_string_value(g));
        if (json_is_true(json_object_get(group_acls(grp), "admin")))
            return true;
    }
    return false;
}

bool auth_is_vc_group(const char *name, const json_t *group)
{
    const json_t *acls = group_acls(group);
    return !auth_is_builtin_group(name) && !json_is_true(json_object_get(acls, "admin")) &&
           auth_json_has_str(json_object_get(acls, "virtualClusters"), name);
}

size_t auth_admins_left_locked(auth_t *a, const char *without, const char *minus)
{
    size_t n = 0;
    const char *k;
    json_t *u;
    json_object_foreach(a->users, k, u)
    {
        if (minus && strcmp(k, minus) == 0)
            continue;
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(u, "grouplist"), i, g)
        {
            const char *gn = json_string_value(g);
            if (gn && (!without || strcmp(gn, without) != 0) &&
                json_is_true(
                    json_object_get(group_acls(json_object_get(a->groups, gn)), "admin"))) {
                n++;
                break;
            }
        }
    }
    return n;
}

size_t auth_admin_count_locked(auth_t *a)
{
    size_t n = 0;
    const char *k;
    json_t *u;
    json_object_foreach(a->users, k, u)
    {
        n += auth_user_admin_locked(a, u);
    }
    return n;
}

/* Union of one ACL list over the user's groups. */
static json_t *acl_union_locked(auth_t *a, const json_t *user, const char *acl)
{
    json_t *out = json_array();
    size_t i, k;
    json_t *g, *v;
    json_array_foreach(json_object_get(user, "grouplist"), i, g)
    {
        const json_t *grp = json_object_get(a->groups, json_string_value(g));
        json_array_foreach(json_object_get(group_acls(grp), acl), k, v)
        {
            /* a copy: readers share the lock, and an incref of the shared
             * value would be a write (ThreadSanitizer: a race in jansson) */
            if (json_is_string(v) && !auth_json_has_str(out, json_string_value(v)))
                json_array_append_new(out, json_string(json_string_value(v)));
        }
    }
    return out;
}

static bool storage_allowed_locked(auth_t *a, const json_t *user, const json_t *storage)
{
    const char *name = json_string_value(json_object_get(storage, "name"));
    if (!name)
        return false;
    if (auth_user_admin_locked(a, user))
        return true;
    json_t *acl = acl_union_locked(a, user, "storageConfigs");
    bool ok = auth_json_has_str(acl, name);
    json_decref(acl);
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(user, "grouplist"), i, g)
    {
        if (json_is_string(g) &&
            auth_json_has_str(json_object_get(storage, "groups"), json_string_value(g)))
            ok = true;
    }
    return ok;
}

json_t *auth_user_info_locked(auth_t *a, const char *username)
{
    const json_t *u = json_object_get(a->users, username);
    if (!u)
        return NULL;
    json_t *storages = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(a->ctx->cfg->storages, i, s)
    {
        if (storage_allowed_locked(a, u, s))
            json_array_append(storages, json_object_get(s, "name"));
    }
    /* notification: pai's, the user's notification settings (when set) */
    return xjson_pack("{s:s, s:s, s:O, s:O, s:b, s:o, s:o, s:O*, s:O*}", "username", username,
                      "email", json_string_value(json_object_get(u, "email")) ?: "", "grouplist",
                      json_object_get(u, "grouplist"), "extension", json_object_get(u, "extension"),
                      "admin", auth_user_admin_locked(a, u), "virtualCluster",
                      acl_union_locked(a, u, "virtualClusters"), "storageConfig", storages,
                      "notification", json_object_get(u, "notification"), "taskUid",
                      json_object_get(u, "taskUid"));
}

/* ---- public queries ---------------------------------------------------- */

bool auth_user_exists(server_ctx_t *ctx, const char *username)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return false;
    pthread_rwlock_rdlock(&a->lock);
    bool ok = json_object_get(a->users, username) != NULL;
    pthread_rwlock_unlock(&a->lock);
    return ok;
}

/* A copy of one field of a user's record (NULL when absent). */
static json_t *user_field_copy(server_ctx_t *ctx, const char *username, const char *key)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return NULL;
    pthread_rwlock_rdlock(&a->lock);
    json_t *v = json_object_get(json_object_get(a->users, username), key);
    json_t *copy = v ? json_deep_copy(v) : NULL;
    pthread_rwlock_unlock(&a->lock);
    return copy;
}

char *auth_user_email(server_ctx_t *ctx, const char *username)
{
    json_t *v = user_field_copy(ctx, username, "email");
    const char *s = json_string_value(v);
    char *out = s && *s ? xstrdup(s) : NULL;
    json_decref(v);
    return out;
}

json_t *auth_user_notification(server_ctx_t *ctx, const char *username)
{
    return user_field_copy(ctx, username, "notification");
}

int64_t auth_user_since(server_ctx_t *ctx, const char *username)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return 0;
    pthread_rwlock_rdlock(&a->lock);
    int64_t since =
        json_integer_value(json_object_get(json_object_get(a->users, username), "createdTime"));
    pthread_rwlock_unlock(&a->lock);
    return since;
}

bool auth_user_is_admin(server_ctx_t *ctx, const char *username)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return false;
    pthread_rwlock_rdlock(&a->lock);
    const json_t *u = json_object_get(a->users, username);
    bool ok = u && auth_user_admin_locked(a, u);
    pthread_rwlock_unlock(&a->lock);
    return ok;
}

json_t *auth_user_vcs(server_ctx_t *ctx, const char *username)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return json_array();
    pthread_rwlock_rdlock(&a->lock);
    const json_t *u = json_object_get(a->users, username);
    json_t *out = u ? acl_union_locked(a, u, "virtualClusters") : json_array();
    pthread_rwlock_unlock(&a->lock);
    return out;
}

json_t *auth_user_ssh_keys(server_ctx_t *ctx, const char *username)
{
    auth_t *a = ctx->auth;
    if (!a || !username)
        return json_array();
    pthread_rwlock_rdlock(&a->lock);
    const json_t *u = json_object_get(a->users, username);
    json_t *keys = json_object_get(json_object_get(u, "extension"), "sshKeys");
    json_t *out = json_is_array(keys) ? json_deep_copy(keys) : json_array();
    pthread_rwlock_unlock(&a->lock);
    return out;
}

bool auth_user_can_use_vc(server_ctx_t *ctx, const char *username, const char *vc)
{
    auth_t *a = ctx->auth;
    if (!a || !username || !vc)
        return false;
    pthread_rwlock_rdlock(&a->lock);
    const json_t *u = json_object_get(a->users, username);
    bool ok = false;
    if (u && auth_user_admin_locked(a, u)) {
        ok = true;
    } else if (u) {
        json_t *vcs = acl_union_locked(a, u, "virtualClusters");
        ok = auth_json_has_str(vcs, vc);
        json_decref(vcs);
    }
    pthread_rwlock_unlock(&a->lock);
    return ok;
}

bool auth_user_can_use_storage(server_ctx_t *ctx, const char *username, const char *storage)
{
    auth_t *a = ctx->auth;
    if (!a || !username || !storage)
        return false;
    const json_t *def = NULL;
    size_t i;
    json_t *s;
    json_array_foreach(ctx->cfg->storages, i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "name")) ?: "", storage) == 0)
            def = s;
    }
    if (!def)
        return false;
    pthread_rwlock_rdlock(&a->lock);
    const json_t *u = json_object_get(a->users, username);
    bool ok = u && storage_allowed_locked(a, u, def);
    pthread_rwlock_unlock(&a->lock);
    return ok;
}

/* ---- identification (the hot path) ------------------------------------- */

/* The token (tid, h: its id and the SHA-256 of the whole) against the maps. */
static pai_err_t identify_known(auth_t *a, const char *tid, const char *h, auth_ident_t *id)
{
    pai_err_t rc = PAI_E_UNAUTHORIZED;
    pthread_rwlock_rdlock(&a->lock);
    const json_t *t = json_object_get(a->tokens, tid);
    const char *want = json_string_value(json_object_get(t, "hash"));
    int64_t exp = json_integer_value(json_object_get(t, "expireTime"));
    const char *user = json_string_value(json_object_get(t, "username"));
    const json_t *u = user ? json_object_get(a->users, user) : NULL;
    if (want && strlen(want) == 64 && sodium_memcmp(want, h, 64) == 0 && u &&
        (exp == 0 || exp > time_wall_ms())) {
        str_copy(id->username, user, sizeof(id->username));
        str_copy(id->token_id, tid, sizeof(id->token_id));
        id->who.authenticated = true;
        id->who.username = id->username;
        id->who.token_id = id->token_id;
        id->who.app_token = json_is_true(json_object_get(t, "application"));
        id->who.admin = auth_user_admin_locked(a, u);
        rc = PAI_OK;
    }
    pthread_rwlock_unlock(&a->lock);
    return rc;
}

/* A standby's view (auth_view_new) does not know the tokens made since it
 * was loaded: on a miss it reads the token (and its user) from the store. */
static pai_err_t identify_token(auth_t *a, const char *tok, auth_ident_t *id)
{
    const char *dot = strchr(tok, '.');
    if (!dot || dot == tok || (size_t)(dot - tok) >= sizeof(id->token_id) || strlen(tok) > 256)
        return PAI_E_UNAUTHORIZED;
    char tid[64], h[65];
    memcpy(tid, tok, (size_t)(dot - tok));
    tid[dot - tok] = '\0';
    sha256_hex(tok, h);
    pai_err_t rc = identify_known(a, tid, h, id);
    if (rc != PAI_OK && a->readonly && auth_view_fetch_token(a, tid))
        rc = identify_known(a, tid, h, id);
    return rc;
}

pai_err_t auth_identify(auth_t *a, const char *authorization, auth_ident_t *id)
{
    memset(&id->who, 0, sizeof(id->who));
    id->username[0] = id->token_id[0] = id->node_cred[0] = '\0';
    if (!authorization || !*authorization)
        return PAI_OK;
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return PAI_E_UNAUTHORIZED;
    const char *tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    size_t alen = strlen(a->agent_token), tlen = strlen(tok);
    if (alen && tlen == alen && sodium_memcmp(tok, a->agent_token, alen) == 0) {
        str_copy(id->username, "pai-agent", sizeof(id->username));
        id->who.authenticated = true;
        id->who.agent = true;
        id->who.username = id->username;
        return PAI_OK;
    }
    /* A node credential: checked by the agent sync against the node the
     * body names (engine/nodes.h), the only route an agent may call. */
    if (str_has_prefix(tok, AGENTWIRE_CRED_PREFIX) && tlen <= PAI_MAX_NODE_CRED) {
        str_copy(id->node_cred, tok, sizeof(id->node_cred));
        str_copy(id->username, "pai-node", sizeof(id->username));
        id->who.authenticated = true;
        id->who.agent = true;
        id->who.username = id->username;
        id->who.node_credential = id->node_cred;
        return PAI_OK;
    }
    return identify_token(a, tok, id);
}

/* ---- durable changes --------------------------------------------------- */

pai_err_t auth_commit(auth_t *a, const auth_change_t *ch, size_t n)
{
    store_op_t *ops = xcalloc(n ? n : 1, sizeof(*ops));
    char **texts = xcalloc(n ? n : 1, sizeof(*texts));
    pai_err_t rc = PAI_OK;
    for (size_t i = 0; i < n; i++) {
        ops[i] =
            (store_op_t){ch[i].rec ? STORE_OP_PUT : STORE_OP_DEL, ch[i].kind, ch[i].key, 0, NULL};
        if (ch[i].rec)
            texts[i] = xjson_dumps(ch[i].rec, JSON_COMPACT);
        ops[i].json = texts[i];
    }
    if ((rc = store_batch(a->ctx->store, ops, n)) != PAI_OK)
        goto out;
    pthread_rwlock_wrlock(&a->lock);
    for (size_t i = 0; i < n; i++) {
        json_t *map = strcmp(ch[i].kind, "user") == 0    ? a->users
                      : strcmp(ch[i].kind, "group") == 0 ? a->groups
                      : strcmp(ch[i].kind, "token") == 0 ? a->tokens
                                                         : NULL; /* AUTH_META_KIND */
        if (!map)
            continue;
        if (ch[i].rec)
            json_object_set(map, ch[i].key, ch[i].rec);
        else
            json_object_del(map, ch[i].key);
    }
    pthread_rwlock_unlock(&a->lock);
out:
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(ops);
    return rc;
}

/* ---- tokens ------------------------------------------------------------ */

#define PURGE_EVERY 256 /* token creations between two sweeps of expired tokens */

/* Delete every expired token (memory and store). */
void auth_purge_expired(auth_t *a)
{
    int64_t now = time_wall_ms();
    json_t *dead = json_array();
    const char *k;
    json_t *t;
    pthread_rwlock_rdlock(&a->lock);
    json_object_foreach(a->tokens, k, t)
    {
        int64_t exp = json_integer_value(json_object_get(t, "expireTime"));
        if (exp && exp <= now)
            json_array_append_new(dead, json_string(k));
    }
    pthread_rwlock_unlock(&a->lock);
    size_t n = json_array_size(dead);
    auth_change_t *ch = xcalloc(n ? n : 1, sizeof(*ch));
    for (size_t i = 0; i < n; i++)
        ch[i] = (auth_change_t){"token", json_string_value(json_array_get(dead, i)), NULL};
    if (n && auth_commit(a, ch, n) != PAI_OK)
        log_warn("auth: could not purge %zu expired tokens", n);
    else if (n)
        log_info("auth: purged %zu expired tokens", n);
    free(ch);
    json_decref(dead);
}

pai_err_t auth_token_new(auth_t *a, const char *username, bool app, int64_t ttl_s, char **token_out)
{
    unsigned char idb[TOKEN_ID_BYTES], sec[TOKEN_SECRET_BYTES];
    char idh[TOKEN_ID_BYTES * 2 + 1], sech[TOKEN_SECRET_BYTES * 2 + 1], h[65];
    randombytes_buf(idb, sizeof(idb));
    randombytes_buf(sec, sizeof(sec));
    auth_hex(idh, idb, sizeof(idb));
    auth_hex(sech, sec, sizeof(sec));
    char *tok = str_printf("%s.%s", idh, sech);
    sha256_hex(tok, h);
    int64_t now = time_wall_ms();
    json_t *rec = xjson_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "id", idh, "username", username,
                             "hash", h, "application", app, "createdTime", (json_int_t)now,
                             "expireTime", (json_int_t)(ttl_s ? now + ttl_s * 1000 : 0));
    char *text = xjson_dumps(rec, JSON_COMPACT);
    pai_err_t rc = store_insert(a->ctx->store, "token", idh, now, text);
    if (rc == PAI_OK) {
        pthread_rwlock_wrlock(&a->lock);
        json_object_set(a->tokens, idh, rec);
        bool sweep = ++a->created % PURGE_EVERY == 0;
        pthread_rwlock_unlock(&a->lock);
        if (sweep)
            auth_purge_expired(a);
        *token_out = tok;
        tok = NULL;
    }
    free(text);
    free(tok);
    json_decref(rec);
    return rc;
}

pai_err_t auth_token_del(auth_t *a, const char *id)
{
    pai_err_t rc = store_del(a->ctx->store, "token", id);
    if (rc == PAI_OK || rc == PAI_E_NOT_FOUND) {
        pthread_rwlock_wrlock(&a->lock);
        json_object_del(a->tokens, id);
        pthread_rwlock_unlock(&a->lock);
    }
    return rc;
}

json_t *auth_token_list(auth_t *a, const char *username)
{
    json_t *out = json_array();
    int64_t now = time_wall_ms();
    const char *k;
    json_t *t;
    pthread_rwlock_rdlock(&a->lock);
    json_object_foreach(a->tokens, k, t)
    {
        int64_t exp = json_integer_value(json_object_get(t, "expireTime"));
        if (strcmp(json_string_value(json_object_get(t, "username")) ?: "", username) != 0 ||
            (exp && exp <= now))
            continue;
        json_array_append_new(out, xjson_pack("{s:s, s:O, s:O, s:O}", "token", k, "application",
                                              json_object_get(t, "application"), "createdTime",
                                              json_object_get(t, "createdTime"), "expireTime",
                                              json_object_get(t, "expireTime")));
    }
    pthread_rwlock_unlock(&a->lock);
    return out;
}

char *auth_token_owner(auth_t *a, const char *id)
{
    pthread_rwlock_rdlock(&a->lock);
    const char *u = json_string_value(json_object_get(json_object_get(a->tokens, id), "username"));
    char *out = u ? xstrdup(u) : NULL;
    pthread_rwlock_unlock(&a->lock);
    return out;
}

pai_err_t auth_revoke_user_tokens(auth_t *a, const char *username, const char *keep_id, bool apps)
{
    json_t *ids = json_array();
    const char *k;
    json_t *t;
    pthread_rwlock_rdlock(&a->lock);
    json_object_foreach(a->tokens, k, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "username")) ?: "", username) == 0 &&
            (!keep_id || strcmp(k, keep_id) != 0) &&
            (apps || !json_is_true(json_object_get(t, "application"))))
            json_array_append_new(ids, json_string(k));
    }
    pthread_rwlock_unlock(&a->lock);
    size_t n = json_array_size(ids);
    auth_change_t *ch = xcalloc(n ? n : 1, sizeof(*ch));
    for (size_t i = 0; i < n; i++)
        ch[i] = (auth_change_t){"token", json_string_value(json_array_get(ids, i)), NULL};
    pai_err_t rc = auth_commit(a, ch, n);
    free(ch);
    json_decref(ids);
    return rc;
}

void auth_free(auth_t *a)
{
    if (!a)
        return;
    json_decref(a->users);
    json_decref(a->groups);
    json_decref(a->tokens);
    throttle_free(a->fail_user);
    throttle_free(a->fail_addr);
    free(a->dummy_hash);
    pthread_rwlock_destroy(&a->lock);
    pthread_mutex_destroy(&a->wlock);
    sodium_memzero(a->agent_token, sizeof(a->agent_token));
    free(a);
}

/* ---- VC hooks for the cluster module ----------------------------------- */

pai_err_t auth_vc_added(server_ctx_t *ctx, const char *vc)
{
    auth_t *a = ctx->auth;
    if (!a || !auth_name_ok(vc))
        return PAI_E_INVALID;
    pthread_mutex_lock(&a->wlock);
    pai_err_t rc = PAI_OK;
    if (!json_object_get(a->groups, vc)) {
        json_t *g = auth_group_new(
            vc, "virtual cluster group",
            xjson_pack("{s:b, s:[s], s:[]}", "admin", 0, "virtualClusters", vc, "storageConfigs"));
        auth_change_t ch = {"group", vc, g};
        rc = auth_commit(a, &ch, 1);
        json_decref(g);
    }
    pthread_mutex_unlock(&a->wlock);
    return rc;
}

pai_err_t auth_vc_removed(server_ctx_t *ctx, const char *vc)
{
    auth_t *a = ctx->auth;
    if (!a)
        return PAI_E_INVALID;
    pthread_mutex_lock(&a->wlock);
    json_t *changed = json_object();
    const char *k;
    json_t *g;
    json_object_foreach(a->groups, k, g)
    {
        json_t *vcs = json_object_get(group_acls(g), "virtualClusters");
        if (!auth_json_has_str(vcs, vc))
            continue;
        json_t *ng = json_deep_copy(g);
        json_t *nv = json_object_get(group_acls(ng), "virtualClusters");
        for (size_t i = json_array_size(nv); i-- > 0;)
            if (strcmp(json_string_value(json_array_get(nv, i)) ?: "", vc) == 0)
                json_array_remove(nv, i);
        json_object_set_new(changed, k, ng);
    }
    size_t n = json_object_size(changed), i = 0;
    auth_change_t *ch = xcalloc(n ? n : 1, sizeof(*ch));
    json_object_foreach(changed, k, g)
    {
        ch[i++] = (auth_change_t){"group", k, g};
    }
    pai_err_t rc = auth_commit(a, ch, n);
    free(ch);
    json_decref(changed);
    pthread_mutex_unlock(&a->wlock);
    return rc;
}
