/*
 * nodeadmin.c - an administrator's operations on a node's identity
 * (docs/agent-protocol.md, "Node identity"): approving a node that waits
 * for it (node_approval: manual), revoking or rotating its credential.
 * Each is stored before it returns; the node hears of it at its next sync
 * (agentsync.c).
 */
#include "common/log.h"
#include "engine/engine_int.h"

pai_err_t engine_node_approve(engine_t *j, const char *node, pai_error_t *e)
{
    pai_err_t rc = PAI_OK;
    engine_lock(j);
    engine_node_t *n = nodes_find(j->nodes, node);
    if (!n) {
        rc = pai_error_set(e, PAI_E_NOT_FOUND, "no such node: %s", node);
    } else if ((rc = nodecred_approve(&n->cred)) != PAI_OK) {
        pai_error_set(e, rc, "node %s is not waiting for approval", node);
    } else {
        nodes_mark_dirty(j->nodes, n);
        engine_node_to_sched(j, n);
        j->pass.need = true;
        engine_kick(j);
        nodes_bump(n); /* its held poll answers: the next sync registers it */
        log_info("node=%s approved by an administrator: registers at its next sync", node);
    }
    engine_unlock(j);
    if (rc == PAI_OK && engine_flush(j) != PAI_OK)
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "the store is unavailable");
    return rc;
}

pai_err_t engine_node_credential(engine_t *j, const char *node, bool revoke, pai_error_t *e)
{
    pai_err_t rc = PAI_OK;
    engine_lock(j);
    engine_node_t *n = nodes_find(j->nodes, node);
    if (!n) {
        rc = pai_error_set(e, PAI_E_NOT_FOUND, "no such node: %s", node);
    } else if (revoke) {
        nodecred_revoke(&n->cred);
        nodes_mark_dirty(j->nodes, n);
        log_warn("node=%s credential revoked by an administrator", node);
    } else if ((rc = nodecred_rotate(&n->cred)) != PAI_OK) {
        pai_error_set(e, rc, "node %s holds no credential in use to rotate", node);
    } else {
        nodes_mark_dirty(j->nodes, n);
        log_info("node=%s credential rotation asked: issued at its next sync", node);
    }
    engine_unlock(j);
    if (rc == PAI_OK && engine_flush(j) != PAI_OK)
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "the store is unavailable");
    return rc;
}
