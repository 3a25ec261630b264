/*
 * pg_write.c - the PostgreSQL backend's write path: one group of requests
 * (store.c's group commit) in one transaction on the writer connection.
 * pg.c's DESIGN block tells the whole story (pipelining, the half-failed
 * batch re-run with savepoints, each request retried alone after an error,
 * a failed COMMIT reported and never retried); the fence is pg_lease.c's.
 *
 * Invariant: COMMIT is sent only once every result of the group is in, so
 * a group that failed before it left nothing committed and may be retried.
 */
#include "store/pg_write.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "store/pg.h"

#define PG_PIPELINE_MAX 1024 /* operations per pipelined group */

static const char *const SQL_FENCE = "SELECT pai_fence_check($1::bigint, $2::bigint)";

/* The outcome of the fence check (pg_lease.c): PAI_OK, PAI_E_FENCED (a newer
 * leader was elected: never retried), or PAI_E_IO. */
static pai_err_t fence_status(conn_t *c, const PGresult *res)
{
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return PAI_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, PG_FENCED_STATE) == 0) {
        log_error("store: postgres: write refused: leader term %lld is over (fenced)",
                  (long long)c->fence_term);
        return PAI_E_FENCED;
    }
    char m[512];
    log_error("store: postgres: fence: %s", pg_msg(c->pg, m, sizeof(m)));
    return res_err(c, res);
}

static void fence_params(const conn_t *c, char t[24], char h[24], const char *vals[2])
{
    snprintf(t, 24, "%lld", (long long)c->fence_term);
    snprintf(h, 24, "%lld", (long long)c->fence_hold_ms);
    vals[0] = t;
    vals[1] = h;
}

/* Inside an open transaction: check the fence (when one is set). */
static pai_err_t conn_fence(conn_t *c)
{
    if (c->fence_term <= 0)
        return PAI_OK;
    char t[24], h[24];
    const char *vals[2];
    fence_params(c, t, h, vals);
    PGresult *res = conn_exec_params(c, SQL_FENCE, 2, vals);
    pai_err_t rc = fence_status(c, res);
    PQclear(res);
    return rc;
}

/* Run one operation.  *aborted is set when the statement failed at the SQL
 * level (the transaction is then unusable); logical outcomes (EXISTS,
 * NOT_FOUND) leave the transaction intact. */
static pai_err_t run_op(conn_t *c, const store_op_t *op, bool strict_del, bool *aborted)
{
    int q = op->op == STORE_OP_PUT ? Q_PUT : op->op == STORE_OP_INSERT ? Q_INSERT : Q_DEL;
    char seq[24];
    snprintf(seq, sizeof(seq), "%lld", (long long)op->seq);
    const char *vals[4] = {op->kind, op->key, seq, op->json};
    PGresult *res = conn_exec_prepared(c, pg_queries[q].name, pg_queries[q].nparams, vals);
    pai_err_t rc = PAI_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char m[512];
        log_error("store: postgres: %s %s/%s: %s", q == Q_DEL ? "delete" : "write", op->kind,
                  op->key, c->broken ? "timed out" : pg_msg(c->pg, m, sizeof(m)));
        *aborted = true;
        rc = res_err(c, res);
    } else if (strcmp(PQcmdTuples(res), "0") == 0) {
        if (q == Q_INSERT)
            rc = PAI_E_EXISTS;
        else if (q == Q_DEL && strict_del)
            rc = PAI_E_NOT_FOUND;
    }
    PQclear(res);
    return rc;
}

/* One request inside the open transaction; a multi-operation request runs
 * inside a SAVEPOINT so that its failure undoes only its own changes. */
static pai_err_t apply_req(conn_t *c, const store_req_t *r, bool *aborted)
{
    bool multi = r->n > 1;
    if (multi && !conn_cmd(c, "SAVEPOINT pai_req")) {
        *aborted = true;
        return conn_err(c);
    }
    pai_err_t rc = PAI_OK;
    for (size_t i = 0; i < r->n && rc == PAI_OK; i++)
        rc = run_op(c, &r->ops[i], r->strict_del, aborted);
    if (!multi || *aborted)
        return rc;
    if (rc != PAI_OK && !conn_cmd(c, "ROLLBACK TO SAVEPOINT pai_req"))
        *aborted = true;
    else if (!conn_cmd(c, "RELEASE SAVEPOINT pai_req"))
        *aborted = true;
    return *aborted ? PAI_E_IO : rc;
}

/* One request in a transaction of its own (the retry path). */
static pai_err_t commit_alone(conn_t *c, const store_req_t *r)
{
    bool aborted = false;
    if (!conn_ensure(c) || !conn_cmd(c, "BEGIN"))
        return PAI_E_UNAVAILABLE;
    pai_err_t rc = conn_fence(c);
    if (rc == PAI_OK)
        rc = apply_req(c, r, &aborted);
    if (rc != PAI_OK) {
        (void)conn_cmd(c, "ROLLBACK");
        return rc;
    }
    return conn_cmd(c, "COMMIT") ? PAI_OK : conn_err(c);
}

/* The group in one transaction, one statement at a time (savepoints for
 * multi-operation requests); see DESIGN for the retry. */
static void commit_sequential(conn_t *c, store_req_t *list)
{
    bool aborted = !conn_ensure(c) || !conn_cmd(c, "BEGIN");
    pai_err_t fenced = aborted ? PAI_OK : conn_fence(c);
    if (fenced == PAI_E_FENCED) {
        (void)conn_cmd(c, "ROLLBACK");
        for (store_req_t *r = list; r; r = r->next)
            r->rc = PAI_E_FENCED;
        return;
    }
    aborted = aborted || fenced != PAI_OK;
    for (store_req_t *r = list; r && !aborted; r = r->next)
        r->rc = apply_req(c, r, &aborted);
    if (!aborted) {
        if (conn_cmd(c, "COMMIT"))
            return;
        /* The outcome of a failed COMMIT is unknown: report, never retry. */
        pai_err_t rc = conn_err(c);
        for (store_req_t *r = list; r; r = r->next)
            r->rc = rc;
        return;
    }
    if (conn_ok(c))
        (void)conn_cmd(c, "ROLLBACK");
    for (store_req_t *r = list; r; r = r->next)
        r->rc = commit_alone(c, r);
}

static bool send_op(conn_t *c, const store_op_t *op)
{
    int q = op->op == STORE_OP_PUT ? Q_PUT : op->op == STORE_OP_INSERT ? Q_INSERT : Q_DEL;
    char seq[24];
    snprintf(seq, sizeof(seq), "%lld", (long long)op->seq);
    const char *vals[4] = {op->kind, op->key, seq, op->json};
    return PQsendQueryPrepared(c->pg, pg_queries[q].name, pg_queries[q].nparams, vals, NULL, NULL,
                               0);
}

/* The next result in pipeline mode (and the NULL that ends it). */
static ExecStatusType next_result(conn_t *c, bool *zero_rows)
{
    PGresult *res = conn_result(c);
    ExecStatusType s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    *zero_rows = res && strcmp(PQcmdTuples(res), "0") == 0;
    if (s == PGRES_FATAL_ERROR && res) {
        char m[512];
        log_error("store: postgres: write: %s", pg_msg(c->pg, m, sizeof(m)));
    }
    PQclear(res);
    if (res && s != PGRES_PIPELINE_SYNC)
        PQclear(conn_result(c));
    return s;
}

/* PIPE_DONE: commit.  PIPE_HALF: a batch failed half-way (undo, re-run
 * one statement at a time).  PIPE_ERROR: a statement failed or the
 * connection dropped (undo, retry each request alone).  PIPE_FENCED: the
 * fence refused the group (undo, fail every request). */
typedef enum { PIPE_DONE, PIPE_HALF, PIPE_ERROR, PIPE_FENCED } pipe_outcome_t;

/* The fence's result in the pipeline (and the NULL that ends it). */
static pai_err_t next_fence_result(conn_t *c)
{
    PGresult *res = conn_result(c);
    pai_err_t rc = fence_status(c, res);
    PQclear(res);
    if (res)
        PQclear(conn_result(c));
    return rc;
}

/* Read the pipeline's results into the requests. */
static pipe_outcome_t read_pipeline(conn_t *c, store_req_t *list)
{
    bool zero, half = false, error = next_result(c, &zero) != PGRES_COMMAND_OK;
    pai_err_t fence = c->fence_term > 0 ? next_fence_result(c) : PAI_OK;
    error = error || fence != PAI_OK;
    for (store_req_t *r = list; r; r = r->next) {
        r->rc = PAI_OK;
        for (size_t i = 0; i < r->n; i++) {
            if (next_result(c, &zero) != PGRES_COMMAND_OK) {
                error = true;
                continue;
            }
            if (zero && r->ops[i].op == STORE_OP_INSERT && r->rc == PAI_OK)
                r->rc = PAI_E_EXISTS;
            else if (zero && r->ops[i].op == STORE_OP_DEL && r->strict_del && r->rc == PAI_OK)
                r->rc = PAI_E_NOT_FOUND;
        }
        /* its other changes are in the transaction */
        if (r->rc != PAI_OK && r->n > 1)
            half = true;
    }
    if (next_result(c, &zero) != PGRES_PIPELINE_SYNC)
        error = true;
    if (fence == PAI_E_FENCED)
        return PIPE_FENCED;
    return error ? PIPE_ERROR : half ? PIPE_HALF : PIPE_DONE;
}

/* The whole group in one round trip: BEGIN and every operation pipelined,
 * then COMMIT once all results are in (COMMIT is never sent before we know
 * the transaction is good, so a failure here is always safe to retry). */
static void commit_pipelined(conn_t *c, store_req_t *list)
{
    if (!conn_ensure(c) || !PQenterPipelineMode(c->pg)) {
        commit_sequential(c, list);
        return;
    }
    bool sent = PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
    char t[24], h[24];
    const char *fv[2];
    fence_params(c, t, h, fv);
    if (sent && c->fence_term > 0)
        sent = PQsendQueryParams(c->pg, SQL_FENCE, 2, NULL, fv, NULL, NULL, 0);
    for (store_req_t *r = list; r && sent; r = r->next)
        for (size_t i = 0; i < r->n && sent; i++)
            sent = send_op(c, &r->ops[i]);
    sent = sent && PQpipelineSync(c->pg) && conn_flush(c);
    pipe_outcome_t out = sent ? read_pipeline(c, list) : PIPE_ERROR;
    /* results left unread (a send failed half-way, or the time ran out):
     * a fresh connection before the next use */
    if (!PQexitPipelineMode(c->pg))
        c->broken = true;
    if (out == PIPE_DONE) {
        if (conn_cmd(c, "COMMIT"))
            return;
        pai_err_t rc = conn_err(c); /* the outcome of a failed COMMIT is unknown */
        for (store_req_t *r = list; r; r = r->next)
            r->rc = rc;
        return;
    }
    if (conn_ok(c) && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        (void)conn_cmd(c, "ROLLBACK");
    if (out == PIPE_FENCED) {
        for (store_req_t *r = list; r; r = r->next)
            r->rc = PAI_E_FENCED;
        return;
    }
    if (out == PIPE_HALF) {
        commit_sequential(c, list);
        return;
    }
    for (store_req_t *r = list; r; r = r->next)
        r->rc = commit_alone(c, r);
}

void pg_write_group(conn_t *c, store_req_t *list)
{
    size_t ops = 0;
    for (store_req_t *r = list; r; r = r->next)
        ops += r->n;
    /* a bounded pipeline: its results must fit the socket buffers */
    if (ops <= PG_PIPELINE_MAX)
        commit_pipelined(c, list);
    else
        commit_sequential(c, list);
}
