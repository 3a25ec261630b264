/*
 * nodecred.h - node identity: the credential each node holds, bound to its
 * name (docs/agent-protocol.md, "Node identity"; docs/security.md).
 *
 * The cluster's agent token is a *join* token: it may register a node name
 * that holds no credential in use.  Registering issues a credential
 * ("pn1." + 64 hex digits, 32 random bytes) in the sync's answer; the agent
 * keeps it and presents it from then on.  Only its SHA-256 is kept here (and
 * in the node's store record), as user tokens are.
 *
 * States of a node's credential:
 *   NONE     never issued, or revoked by an admin: the join token (or an
 *            admin's login token) may register the name;
 *   PENDING  issued, never presented: the join token may still register the
 *            name again (the agent may have died before keeping it; a new
 *            credential replaces this one);
 *   ACTIVE   presented once: only this credential syncs as the node; the
 *            join token is refused for the name until an admin revokes it.
 * Rotation (an admin's request) issues a new credential at the node's next
 * sync with its current one; the current one keeps working until the new one
 * is presented, which makes it the node's (ACTIVE) and the old one invalid.
 *
 * Approval (node_approval: manual): a name that never held a credential, or
 * whose credential an admin revoked, registering with the join token is
 * held (awaiting): it syncs, is listed, but gets no credential and no task
 * until an admin approves it (nodecred_approve); then the join token
 * registers it as above.  With node_approval: auto (the default) nothing is
 * held.
 *
 * Pure: no locks, no I/O (the caller holds the engine's mutex and persists
 * the node record when a call says it changed); unit-tested in
 * tests/unit/test_nodecred.c.
 */
#ifndef PAI_ENGINE_NODECRED_H
#define PAI_ENGINE_NODECRED_H

#include <jansson.h>
#include <stdbool.h>

#include "common/err.h"
#include "common/limits.h"

typedef enum { NODECRED_NONE, NODECRED_PENDING, NODECRED_ACTIVE } nodecred_state_t;

typedef struct {
    nodecred_state_t state;
    char hash[65]; /* SHA-256 (hex) of the current credential; "" in NONE */
    char next[65]; /* rotation: SHA-256 of the issued successor; "" none */
    bool rotate;   /* an admin asked for a new credential */
    bool revoked;  /* NONE because an admin revoked it (for the views) */
    bool awaiting; /* held for an admin's approval: no credential, no task (NONE) */
    /* The secret the server presents to the node's log server, in clear
     * (the server must present it): AGENTWIRE_LOGKEY_PREFIX + 64 hex, new
     * with every credential issued, sent in every version 2 answer; ""
     * when none (then the join token is presented). */
    char log_key[PAI_MAX_NODE_CRED + 1];
} nodecred_t;

/* What a sync may do, from nodecred_check. */
typedef struct {
    bool issue;   /* answer with a new credential (nodecred_issue) */
    bool changed; /* the record changed: persist it before answering */
} nodecred_verdict_t;

/* May a sync present cred (NULL: the join token or an admin's login token)
 * as the node whose credential is c?  can_issue: the agent speaks a wire
 * version that carries credentials (2+).  On PAI_OK *v says whether to
 * issue a credential and whether c changed (a PENDING one presented becomes
 * ACTIVE; a rotation's successor presented replaces the current one).
 * PAI_E_FORBIDDEN with the reason in e (naming node) otherwise: a
 * credential that is not this node's, or the join token for a node that
 * holds an ACTIVE credential. */
PAI_MUST_CHECK pai_err_t nodecred_check(nodecred_t *c, const char *node, const char *cred,
                                        bool can_issue, nodecred_verdict_t *v, pai_error_t *e);

/* A new credential into out; its hash becomes c's current one (PENDING)
 * or, while c is ACTIVE and rotating, its successor.  A new log key too. */
void nodecred_issue(nodecred_t *c, char out[PAI_MAX_NODE_CRED + 1]);

/* An admin's revocation: every credential of the node stops working; the
 * join token may register the name again. */
void nodecred_revoke(nodecred_t *c);
/* An admin's rotation request; PAI_E_INVALID when the node holds no
 * credential in use (nothing to rotate: it registers with the join token). */
PAI_MUST_CHECK pai_err_t nodecred_rotate(nodecred_t *c);

/* node_approval: manual, for a sync nodecred_check let in with the join
 * token: must the node wait for an admin's approval?  known: the name has a
 * record (a new name always waits).  True for a new name, one already
 * waiting and one whose credential was revoked; then the caller sets
 * c->awaiting and issues nothing. */
bool nodecred_needs_approval(const nodecred_t *c, bool known);
/* An admin's approval; PAI_E_INVALID when c is not waiting for one. */
PAI_MUST_CHECK pai_err_t nodecred_approve(nodecred_t *c);

/* "none", "pending", "active", "rotating", "revoked", "awaiting-approval":
 * for the views. */
const char *nodecred_state_name(const nodecred_t *c);

/* The credential part of a node's store record, and back (hashes only);
 * nodecred_decode leaves c NONE for NULL or an unreadable object. */
json_t *nodecred_encode(const nodecred_t *c);
void nodecred_decode(const json_t *o, nodecred_t *c);

#endif
