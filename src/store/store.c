/*
 * store.c - the store interface over its backends, and group commit.
 *
 * DESIGN
 *   - store_open picks the backend from the URL ("sqlite:", a bare path, or
 *     "postgres://" / "postgresql://") and starts one committer thread.
 *   - Writes: callers enqueue a request and wait.  The committer takes every
 *     request queued so far and runs them in ONE transaction, each inside its
 *     own savepoint so that a failing request rolls back alone, commits once
 *     (one fsync / WAL flush for the whole group) and wakes every waiter.  N
 *     concurrent writers thus share one durable commit.
 *   - Reads go straight to the backend, which is safe from any thread.
 *
 * Invariant: a write call returns only after its change is durable, or
 * failed and left no trace.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "store/backend.h"

/* One caller's write, queued for the committer (lives on the caller's stack). */
typedef struct wreq {
    const store_op_t *ops;
    size_t n;
    bool strict_del; /* store_del: a missing record is an error */
    pai_err_t rc;
    bool done;
    struct wreq *next;
} wreq_t;

struct store {
    const store_backend_t *be;
    void *impl;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;    /* committer waits for work */
    pthread_cond_t donecond; /* writers wait for their group */
    wreq_t *qhead, *qtail;
    bool stopping;
    pthread_t committer;
    bool committer_started;
};

static pai_err_t apply_req(store_t *st, wreq_t *r)
{
    pai_err_t rc = st->be->savepoint(st->impl);
    if (rc != PAI_OK)
        return rc;
    for (size_t i = 0; i < r->n && rc == PAI_OK; i++) {
        const store_op_t *op = &r->ops[i];
        if (!op->kind || !op->key || (op->op != STORE_OP_DEL && !op->json))
            rc = PAI_E_INVALID;
        else
            rc = st->be->apply(st->impl, op, r->strict_del);
    }
    pai_err_t rel = st->be->release(st->impl, rc != PAI_OK);
    return rc != PAI_OK ? rc : rel;
}

/* Run one group of requests in one transaction. */
static void commit_group(store_t *st, wreq_t *list)
{
    pai_err_t txrc = st->be->begin(st->impl);
    for (wreq_t *r = list; r; r = r->next)
        r->rc = txrc == PAI_OK ? apply_req(st, r) : txrc;
    if (txrc == PAI_OK && st->be->commit(st->impl) != PAI_OK) {
        log_error("store: commit failed; %s rolled back the whole group", st->be->name);
        st->be->rollback(st->impl);
        for (wreq_t *r = list; r; r = r->next)
            r->rc = PAI_E_IO;
    }
}

static void *committer_main(void *arg)
{
    store_t *st = arg;
    pthread_mutex_lock(&st->qlock);
    for (;;) {
        while (!st->qhead && !st->stopping)
            pthread_cond_wait(&st->qcond, &st->qlock);
        if (!st->qhead && st->stopping)
            break;
        wreq_t *list = st->qhead;
        st->qhead = st->qtail = NULL;
        pthread_mutex_unlock(&st->qlock);
        commit_group(st, list);
        pthread_mutex_lock(&st->qlock);
        for (wreq_t *r = list, *next; r; r = next) {
            next = r->next;
            r->done = true; /* r belongs to its waiter from here on */
        }
        pthread_cond_broadcast(&st->donecond);
    }
    pthread_mutex_unlock(&st->qlock);
    return NULL;
}

static pai_err_t submit(store_t *st, const store_op_t *ops, size_t n, bool strict_del)
{
    wreq_t r = {.ops = ops, .n = n, .strict_del = strict_del, .rc = PAI_E_INTERNAL};
    pthread_mutex_lock(&st->qlock);
    if (st->stopping) {
        pthread_mutex_unlock(&st->qlock);
        return PAI_E_UNAVAILABLE;
    }
    if (st->qtail)
        st->qtail->next = &r;
    else
        st->qhead = &r;
    st->qtail = &r;
    pthread_cond_signal(&st->qcond);
    while (!r.done)
        pthread_cond_wait(&st->donecond, &st->qlock);
    pthread_mutex_unlock(&st->qlock);
    return r.rc;
}

pai_err_t store_put(store_t *st, const char *kind, const char *key, int64_t seq, const char *json)
{
    store_op_t op = {STORE_OP_PUT, kind, key, seq, json};
    return submit(st, &op, 1, false);
}

pai_err_t store_insert(store_t *st, const char *kind, const char *key, int64_t seq,
                       const char *json)
{
    store_op_t op = {STORE_OP_INSERT, kind, key, seq, json};
    return submit(st, &op, 1, false);
}

pai_err_t store_del(store_t *st, const char *kind, const char *key)
{
    store_op_t op = {STORE_OP_DEL, kind, key, 0, NULL};
    return submit(st, &op, 1, true);
}

pai_err_t store_batch(store_t *st, const store_op_t *ops, size_t n)
{
    if (n == 0)
        return PAI_OK;
    return submit(st, ops, n, false);
}

pai_err_t store_get(store_t *st, const char *kind, const char *key, char **json_out)
{
    *json_out = NULL;
    return st->be->get(st->impl, kind, key, json_out);
}

pai_err_t store_scan(store_t *st, const char *kind, store_scan_fn cb, void *ud)
{
    return st->be->scan(st->impl, kind, cb, ud);
}

static const store_backend_t *backend_for(const char *url)
{
    if (str_has_prefix(url, "postgres://") || str_has_prefix(url, "postgresql://"))
        return &store_backend_pg;
    return &store_backend_sqlite;
}

pai_err_t store_open(const char *url, store_t **out, char *err, size_t errlen)
{
    *out = NULL;
    store_t *st = xcalloc(1, sizeof(*st));
    st->be = backend_for(url);
    pthread_mutex_init(&st->qlock, NULL);
    pthread_cond_init(&st->qcond, NULL);
    pthread_cond_init(&st->donecond, NULL);
    pai_err_t rc = st->be->open(url, &st->impl, err, errlen);
    if (rc != PAI_OK)
        goto fail;
    if (pthread_create(&st->committer, NULL, committer_main, st) != 0) {
        snprintf(err, errlen, "store: cannot start the committer thread");
        rc = PAI_E_INTERNAL;
        goto fail;
    }
    st->committer_started = true;
    *out = st;
    return PAI_OK;
fail:
    store_close(st);
    return rc;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    if (st->committer_started) {
        pthread_mutex_lock(&st->qlock);
        st->stopping = true;
        pthread_cond_broadcast(&st->qcond);
        pthread_mutex_unlock(&st->qlock);
        pthread_join(st->committer, NULL);
    }
    if (st->impl)
        st->be->close(st->impl);
    pthread_mutex_destroy(&st->qlock);
    pthread_cond_destroy(&st->qcond);
    pthread_cond_destroy(&st->donecond);
    free(st);
}
