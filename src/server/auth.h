/*
 * auth.h - users, groups, tokens and what a caller may do.
 *
 * The auth module keeps every user, group and token in memory (the store
 * has the durable copy), so identifying a request never touches the disk.
 * Tokens are "<id>.<secret>"; only the id and a SHA-256 of the whole token
 * are stored.  Passwords are argon2id hashes (libsodium).
 *
 * Groups carry ACLs in extension.acls: {admin: bool, virtualClusters: [...],
 * storageConfigs: [...]}.  Built-in groups: `admingroup` (admin) and
 * `default` (virtual cluster "default"); every user is in `default`.
 *
 * Every function here is thread-safe.
 */
#ifndef PAI_SERVER_AUTH_H
#define PAI_SERVER_AUTH_H

#include <jansson.h>
#include <stdbool.h>

#include "common/limits.h"
#include "server/http.h"
#include "server/server.h"

#define AUTH_ADMIN_GROUP   "admingroup"
#define AUTH_DEFAULT_GROUP "default"

/* An identity with its own storage: who's pointers point into this struct,
 * so do not copy it by value after auth_identify filled it. */
typedef struct {
    http_identity_t who;
    char username[PAI_MAX_NAME + 1];
    char token_id[64];
    char node_cred[PAI_MAX_NODE_CRED + 1];
} auth_ident_t;

/* The one reader of the agent (join) token, never generated here: the
 * configured agent_token, else the first line of <data_dir>/agent.token (16
 * bytes at least), into out (cap bytes).  False, out = "", when neither.
 * The leader's load (then generated when none), a standby's view and the
 * bearer exec and the log proxy present to a node without a log key
 * (jobs_agent_key) all read it here. */
bool auth_agent_token_read(const server_config_t *cfg, char *out, size_t cap);

/* A standby's read-only view of the store's users, groups and tokens as
 * they are now (auth_load.c; nothing written, nothing purged, no admin
 * made; server/standby.h rebuilds it every standby_refresh_s).  A token it
 * does not know is read from the store when presented.  ctx: the view's
 * own context (its store and cfg are used).  Freed with auth_free. */
PAI_MUST_CHECK pai_err_t auth_view_new(server_ctx_t *ctx, auth_t **out);
void auth_free(auth_t *a);

/* Identify the caller from an Authorization header value ("Bearer TOKEN";
 * NULL or "" means anonymous).  Returns PAI_OK (anonymous or valid) or
 * PAI_E_UNAUTHORIZED for a token that is unknown, expired or revoked. */
PAI_MUST_CHECK pai_err_t auth_identify(auth_t *a, const char *authorization, auth_ident_t *id);

/* Queries other modules use.  username may be NULL (then: false / empty). */
bool auth_user_exists(server_ctx_t *ctx, const char *username);
bool auth_user_is_admin(server_ctx_t *ctx, const char *username);
/* When the user was created (ms since the epoch; 0 for users stored before
 * pai kept it, or unknown).  Jobs of that name submitted earlier belong to a
 * deleted user of the same name, not to this one. */
int64_t auth_user_since(server_ctx_t *ctx, const char *username);
/* The user's task uid offset (assigned at its creation, never given to
 * another user, even after it is deleted; docs/security.md, "Task
 * identities"); -1 for an unknown user or one created before pai assigned
 * them. */
int64_t auth_user_task_uid(server_ctx_t *ctx, const char *username);
/* Is the user a member of the group (its grouplist names it)?  false for
 * an unknown user or group. */
bool auth_user_in_group(server_ctx_t *ctx, const char *username, const char *group);
bool auth_group_exists(server_ctx_t *ctx, const char *group);
/* A copy of the user's grouplist (caller decrefs; [] for an unknown user). */
json_t *auth_user_groups(server_ctx_t *ctx, const char *username);
/* The user's e-mail address (malloc'ed; NULL when none or unknown). */
char *auth_user_email(server_ctx_t *ctx, const char *username);
/* The user's notification settings (a copy; NULL when none). */
json_t *auth_user_notification(server_ctx_t *ctx, const char *username);
/* Admins may use every VC; others the VCs their groups' ACLs list. */
bool auth_user_can_use_vc(server_ctx_t *ctx, const char *username, const char *vc);
/* The VCs a user's groups grant (admins: only those listed); caller decrefs. */
json_t *auth_user_vcs(server_ctx_t *ctx, const char *username);
/* The public keys of the user's profile, extension.sshKeys as OpenPAI's
 * portal stores them ([{"title","value","time"}]); a new array, maybe
 * empty.  For the ssh runtime plugin (docs/ssh.md). */
json_t *auth_user_ssh_keys(server_ctx_t *ctx, const char *username);
/* Admins see every storage; others those their groups' storageConfigs list
 * or whose config `groups` names one of their groups. */
bool auth_user_can_use_storage(server_ctx_t *ctx, const char *username, const char *storage);

/* For the cluster module: make sure a group named after a new VC exists and
 * grants it (OpenPAI keeps one group per VC); and drop a VC from every ACL. */
PAI_MUST_CHECK pai_err_t auth_vc_added(server_ctx_t *ctx, const char *vc);
PAI_MUST_CHECK pai_err_t auth_vc_removed(server_ctx_t *ctx, const char *vc);

#endif
