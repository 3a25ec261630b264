/*
 * auth_int.h - internals shared by auth.c (the model) and mod_auth.c +
 * auth_users.c (its REST handlers) only.  Nothing else includes this.
 *
 * Locking: `lock` (rwlock) guards the three maps for readers; `wlock`
 * serializes mutations, so a mutator may read the maps without `lock`,
 * writes the store first (durable), and only then swaps the new record in
 * under the write lock.  Readers copy what they need before unlocking.
 */
#ifndef PAI_SERVER_AUTH_INT_H
#define PAI_SERVER_AUTH_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/auth.h"
#include "server/config.h"
#include "server/throttle.h"

struct auth {
    server_ctx_t *ctx;
    pthread_rwlock_t lock;
    pthread_mutex_t wlock;
    json_t *users;  /* name -> {username, passwordHash, email, grouplist, extension} */
    json_t *groups; /* name -> {groupname, description, externalName, extension{acls}} */
    json_t *tokens; /* id -> {id, username, hash, application, createdTime, expireTime} */
    char agent_token[256];
    unsigned long created;          /* tokens created since start (under lock) */
    throttle_t *fail_user;          /* failed logins by user name (lower case) */
    throttle_t *fail_addr;          /* failed logins by client address */
    char *dummy_hash;               /* checked for unknown names, so they take as long */
    atomic_ullong logins_failed;    /* wrong password or unknown name, since start */
    atomic_ullong logins_throttled; /* answered 429 without a password check */
    bool readonly;                  /* a standby's view (auth_view_new): never written */
};

/* auth_load.c: the leader's auth, loaded (and bootstrapped) from the store. */
PAI_MUST_CHECK pai_err_t auth_new(server_ctx_t *ctx, auth_t **out, pai_error_t *e);
/* auth_load.c: a view's miss: read token tid (and its user, when the view
 * lacks it) from the store into the view.  True when the store has it. */
bool auth_view_fetch_token(auth_t *a, const char *tid);
/* auth.c: the model.  *_locked functions expect `lock` (read) or `wlock`. */
/* Lower-case hex of n bytes into dst (2n + 1 bytes). */
void auth_hex(char *dst, const unsigned char *src, size_t n);
/* Delete every expired token (memory and store). */
void auth_purge_expired(auth_t *a);

bool auth_name_ok(const char *name);
/* Does the JSON array a hold the string s? */
bool auth_json_has_str(const json_t *a, const char *s);
/* A group made for one VC (named after it, granting it)? */
bool auth_is_vc_group(const char *name, const json_t *group);
/* Admins left if group `without` stopped granting admin and user `minus`
 * (may be NULL) stopped being admin. */
size_t auth_admins_left_locked(auth_t *a, const char *without, const char *minus);
/* argon2id hash of pw (malloc'ed) or NULL. */
char *auth_hash_password(const server_config_t *cfg, const char *pw);
bool auth_check_password(const char *hash, const char *pw);

/* A new token for username; *token_out malloc'ed; ttl_s 0 = never expires. */
PAI_MUST_CHECK pai_err_t auth_token_new(auth_t *a, const char *username, bool app, int64_t ttl_s,
                                        char **token_out);
/* Delete one token by id (no permission check). */
PAI_MUST_CHECK pai_err_t auth_token_del(auth_t *a, const char *id);
/* Tokens of a user as public descriptions (caller decrefs). */
json_t *auth_token_list(auth_t *a, const char *username);
/* Owner of token id (malloc'ed) or NULL. */
char *auth_token_owner(auth_t *a, const char *id);
/* Revoke the user's login tokens (all, or all but keep_id); app tokens too when apps. */
PAI_MUST_CHECK pai_err_t auth_revoke_user_tokens(auth_t *a, const char *username,
                                                 const char *keep_id, bool apps);

/* UserInfo as the API answers it (caller decrefs); NULL when absent. */
json_t *auth_user_info_locked(auth_t *a, const char *username);
bool auth_user_admin_locked(auth_t *a, const json_t *user);
/* Number of users that are admins. */
size_t auth_admin_count_locked(auth_t *a);
/* Put records durably, then into memory.  recs: kind "user"/"group" -> new
 * record or NULL (delete).  Call with wlock held. */
typedef struct {
    const char *kind; /* "user", "group" */
    const char *key;
    json_t *rec; /* borrowed; NULL = delete */
} auth_change_t;
PAI_MUST_CHECK pai_err_t auth_commit(auth_t *a, const auth_change_t *ch, size_t n);

/* The VC group for vc: created (in the returned change list) when absent. */
bool auth_is_builtin_group(const char *name);
json_t *auth_group_new(const char *name, const char *description, json_t *acls);

/* mod_auth.c: body helpers shared with auth_users.c. */
/* A field of an expected JSON type; PAI_E_INVALID (reason in *e) when the
 * field is present with the wrong type (or absent while required). */
PAI_MUST_CHECK pai_err_t mod_auth_field(const json_t *o, const char *name, json_type type,
                                        bool required, json_t **out, pai_error_t *e);
/* Is a (named name in the message) an array of valid names?  PAI_E_INVALID when not. */
PAI_MUST_CHECK pai_err_t mod_auth_string_array(const json_t *a, const char *name, pai_error_t *e);
/* Reply {message} with the HTTP status (successes). */
void mod_auth_reply_msg(http_resp_t *resp, int status, const char *msg);
/* A failed auth_commit (or token revocation): rc with its reason.  Returns rc. */
pai_err_t auth_commit_error(pai_error_t *e, pai_err_t rc);

/* auth_users.c: user helpers and handlers routed by mod_auth.c. */
/* The store kind of auth's own counters (not kept in memory by auth_commit). */
#define AUTH_META_KIND "authmeta"
/* Give the new user record u the next task uid offset ("taskUid") and fill
 * *ch with the counter's record to commit with it (ch->rec: a new
 * reference, the caller decrefs).  wlock held.  PAI_E_IO when the counter
 * cannot be read. */
PAI_MUST_CHECK pai_err_t auth_users_take_task_uid(auth_t *a, json_t *u, auth_change_t *ch);
/* Add group to (member) or remove it from a user's grouplist. */
void auth_users_set_member(json_t *grouplist, const char *group, bool member);
/* The request body {data: {...}, patch: bool} into *out (caller decrefs). */
PAI_MUST_CHECK pai_err_t auth_users_update_body(const http_req_t *req, json_t **out, bool *patch,
                                                pai_error_t *e);
/* GET /api/v2/users */
pai_err_t auth_users_h_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                            pai_error_t *e);
/* POST /api/v2/users */
pai_err_t auth_users_h_create(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e);
/* PUT /api/v2/users (admin update) */
pai_err_t auth_users_h_update(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e);
/* PUT /api/v2/users/me (own email, password, extension) */
pai_err_t auth_users_h_me(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e);
/* GET /api/v2/users/{user} */
pai_err_t auth_users_h_get(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e);
/* DELETE /api/v2/users/{user} */
pai_err_t auth_users_h_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e);
/* PUT /api/v2/users/{user}/group */
pai_err_t auth_users_h_group_add(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                 pai_error_t *e);
/* DELETE /api/v2/users/{user}/group */
pai_err_t auth_users_h_group_del(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                 pai_error_t *e);
/* PUT /api/v2/users/{user}/grouplist */
pai_err_t auth_users_h_grouplist(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                 pai_error_t *e);

#endif
