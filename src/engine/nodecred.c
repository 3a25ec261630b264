/*
 * nodecred.c - node credentials: check, issue, rotate, revoke (see
 * nodecred.h for the states and who may do what).
 *
 * Comparisons are of SHA-256 hashes with sodium_memcmp (constant time), so
 * a refused credential tells nothing of the node's.
 */
#include "engine/nodecred.h"

#include <sodium.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "wire/agentwire.h"

#define CRED_BYTES 32

static void sha256_hex(const char *s, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
    sodium_bin2hex(out, 65, h, sizeof h);
}

static bool hash_eq(const char *a, const char *b)
{
    return strlen(a) == 64 && strlen(b) == 64 && sodium_memcmp(a, b, 64) == 0;
}

/* The join token (or an admin's login token) for the node. */
static pai_err_t check_join(nodecred_t *c, const char *node, bool can_issue, nodecred_verdict_t *v,
                            pai_error_t *e)
{
    if (c->state == NODECRED_ACTIVE) {
        log_warn("node=%s sync refused: the join token for a node that holds a credential "
                 "(a stolen join token, or the agent lost its credential file)",
                 node);
        return pai_error_set(e, PAI_E_FORBIDDEN,
                             "node %s is registered and must sync with its own credential; "
                             "an administrator may revoke it (pai nodes revoke %s) so that it "
                             "registers again",
                             node, node);
    }
    v->issue = can_issue;
    return PAI_OK;
}

pai_err_t nodecred_check(nodecred_t *c, const char *node, const char *cred, bool can_issue,
                         nodecred_verdict_t *v, pai_error_t *e)
{
    *v = (nodecred_verdict_t){0};
    if (!cred)
        return check_join(c, node, can_issue, v, e);
    char h[65];
    sha256_hex(cred, h);
    if (c->state != NODECRED_NONE && hash_eq(h, c->hash)) {
        if (c->state == NODECRED_PENDING) {
            c->state = NODECRED_ACTIVE;
            v->changed = true;
            log_info("node=%s credential in use", node);
        }
        v->issue = c->rotate && can_issue; /* again at each sync until the successor is used */
        return PAI_OK;
    }
    if (c->state == NODECRED_ACTIVE && *c->next && hash_eq(h, c->next)) {
        memcpy(c->hash, c->next, sizeof c->hash);
        c->next[0] = '\0';
        c->rotate = false;
        v->changed = true;
        log_info("node=%s credential rotated: the previous one no longer syncs", node);
        return PAI_OK;
    }
    log_warn("node=%s sync refused: a credential that is not this node's (%s)", node,
             c->state == NODECRED_NONE ? (c->revoked ? "revoked" : "none issued")
                                       : "another node's, an old or a made-up one");
    return pai_error_set(e, PAI_E_FORBIDDEN,
                         "this credential is not node %s's (revoked, replaced or another "
                         "node's): sync refused",
                         node);
}

/* prefix + 64 random hex digits into out. */
static void random_secret(const char *prefix, char out[PAI_MAX_NODE_CRED + 1])
{
    unsigned char r[CRED_BYTES];
    char hex[2 * CRED_BYTES + 1];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(hex, sizeof hex, r, sizeof r);
    snprintf(out, PAI_MAX_NODE_CRED + 1, "%s%s", prefix, hex);
    sodium_memzero(r, sizeof r);
    sodium_memzero(hex, sizeof hex);
}

void nodecred_issue(nodecred_t *c, char out[PAI_MAX_NODE_CRED + 1])
{
    random_secret(AGENTWIRE_CRED_PREFIX, out);
    random_secret(AGENTWIRE_LOGKEY_PREFIX, c->log_key);
    if (c->state == NODECRED_ACTIVE && c->rotate) {
        sha256_hex(out, c->next);
        return;
    }
    sha256_hex(out, c->hash);
    c->state = NODECRED_PENDING;
    c->revoked = false;
}

void nodecred_revoke(nodecred_t *c)
{
    *c = (nodecred_t){.state = NODECRED_NONE, .revoked = true};
}

pai_err_t nodecred_rotate(nodecred_t *c)
{
    if (c->state == NODECRED_NONE)
        return PAI_E_INVALID;
    /* A PENDING credential was never used: the next registration replaces
     * it anyway, and a rotation would be issued to whoever syncs first. */
    if (c->state == NODECRED_PENDING)
        return PAI_E_INVALID;
    c->rotate = true;
    return PAI_OK;
}

bool nodecred_needs_approval(const nodecred_t *c, bool known)
{
    return !known || c->awaiting || (c->state == NODECRED_NONE && c->revoked);
}

pai_err_t nodecred_approve(nodecred_t *c)
{
    if (!c->awaiting)
        return PAI_E_INVALID;
    c->awaiting = false;
    c->revoked = false;
    return PAI_OK;
}

const char *nodecred_state_name(const nodecred_t *c)
{
    if (c->awaiting)
        return "awaiting-approval";
    switch (c->state) {
    case NODECRED_NONE:
        return c->revoked ? "revoked" : "none";
    case NODECRED_PENDING:
        return "pending";
    case NODECRED_ACTIVE:
        return c->rotate ? "rotating" : "active";
    }
    return "none";
}

json_t *nodecred_encode(const nodecred_t *c)
{
    static const char *names[] = {"none", "pending", "active"};
    json_t *o = xjson_pack("{ss ss sb sb}", "state", names[c->state], "hash", c->hash, "rotate",
                           c->rotate, "revoked", c->revoked);
    if (c->awaiting)
        json_object_set_new(o, "awaiting", json_true());
    if (*c->next)
        json_object_set_new(o, "next", json_string(c->next));
    if (*c->log_key)
        json_object_set_new(o, "log_key", json_string(c->log_key));
    return o;
}

void nodecred_decode(const json_t *o, nodecred_t *c)
{
    *c = (nodecred_t){0};
    const char *st = json_string_value(json_object_get(o, "state"));
    const char *h = json_string_value(json_object_get(o, "hash"));
    const char *next = json_string_value(json_object_get(o, "next"));
    const char *lk = json_string_value(json_object_get(o, "log_key"));
    c->revoked = json_is_true(json_object_get(o, "revoked"));
    c->awaiting = json_is_true(json_object_get(o, "awaiting"));
    if (!st || !h || strlen(h) != 64)
        return;
    if (lk && str_has_prefix(lk, AGENTWIRE_LOGKEY_PREFIX))
        str_copy(c->log_key, lk, sizeof c->log_key);
    if (strcmp(st, "pending") == 0)
        c->state = NODECRED_PENDING;
    else if (strcmp(st, "active") == 0)
        c->state = NODECRED_ACTIVE;
    else
        return;
    str_copy(c->hash, h, sizeof c->hash);
    c->rotate = c->state == NODECRED_ACTIVE && json_is_true(json_object_get(o, "rotate"));
    if (c->rotate && next && strlen(next) == 64)
        str_copy(c->next, next, sizeof c->next);
}
