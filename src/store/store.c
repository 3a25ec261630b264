/*
 * store.c - the public store interface: picks a backend by URL and forwards.
 *
 * URL schemes (a table, first match wins):
 *   postgres://... and postgresql://...  -> src/store/pg.c
 *   sqlite:PATH, sqlite://PATH or a bare path  -> src/store/sqlite.c
 * Anything else with a "scheme://" prefix is refused, so a typo never
 * silently creates an SQLite file named after a URL.
 *
 * Checks shared by every backend live here: NULL arguments and the value
 * bound STORE_MAX_VALUE (PAI_E_TOO_LARGE), so backends agree on them, and
 * the debug check that no store call happens under a lock that forbids it
 * (store_io_forbid).
 *
 * Group commit, for every backend, without a thread of its own: a writer
 * queues its request; when no group is committing, it leads: it takes every
 * request queued so far (its own among them), hands the group to the
 * backend's commit_group (one transaction, one fsync, for however many
 * writers were waiting) and then wakes the group's other writers.  While a
 * group commits, the next one gathers; when it ends, the writer at the
 * head of the queue leads the next.  Each writer sleeps on a condition
 * variable of its own (see below), so a group's end wakes its writers and the next leader
 * only.  So a lone writer commits on its
 * own thread (no hand-off to a committer thread and back: two context
 * switches per write fewer), and N concurrent writers still share one
 * commit.  One group commits at a time (`committing`), so a backend's
 * write connection is used by one thread at a time, though not always the
 * same one.  A write returns only after its change is durable (or failed
 * and left no trace).  store_close waits until the queue is empty and no
 * group commits; a write after that is PAI_E_UNAVAILABLE.
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"
#include "store/store_ops.h"

struct store {
    const store_ops_t *ops;
    void *be;

    pthread_mutex_t qlock;
    pthread_cond_t idle; /* a group ended with the queue empty (store_close) */
    store_req_t *qhead, *qtail;
    bool committing; /* a writer leads a group in commit_group now */
    bool stopping;
    atomic_uint_fast64_t commits; /* groups with a write committed (store_commits) */
};

static const struct {
    const char *prefix;
    const store_ops_t *ops;
} schemes[] = {
    {"postgres://", &store_pg_ops},
    {"postgresql://", &store_pg_ops},
    {"sqlite:", &store_sqlite_ops},
};

static const store_ops_t *pick_backend(const char *url)
{
    for (size_t i = 0; i < ARRAY_LEN(schemes); i++)
        if (str_has_prefix(url, schemes[i].prefix))
            return schemes[i].ops;
    if (strstr(url, "://"))
        return NULL;
    return &store_sqlite_ops;
}

/* ---- group commit --------------------------------------------------- */

/* A waiting writer sleeps on a condition variable of its own, under a
 * mutex of its own (store_req_t.wake), not on one condition variable that
 * all share under qlock: the end of a group wakes exactly its writers and
 * the one that leads next, and none of them takes qlock to return (with a
 * shared one every waiter woke at every group's end and queued on qlock).
 * The state is the signal: another thread's last touch of a request is
 * setting it to WAKE_DONE and unlocking the request's mutex, after which
 * its writer may return.  Lock order: qlock, then a request's mutex.
 * (Raw futex words did the same; interleaved bench/store and bench-e2e
 * hollow runs showed no loss from the change: docs/benchmarks-history.md.) */
enum {
    WAKE_WAIT, /* queued, or in a group that commits */
    WAKE_LEAD, /* at the head of the queue when a group ended: lead the next */
    WAKE_DONE, /* its group committed: rc is set */
};

static void wake_init(store_wake_t *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->state = WAKE_WAIT;
}

static void wake_destroy(store_wake_t *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void wake_set(store_wake_t *w, int v)
{
    pthread_mutex_lock(&w->mu);
    w->state = v;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Sleep until the state leaves WAKE_WAIT; returns what it became. */
static int wake_wait(store_wake_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->state == WAKE_WAIT)
        pthread_cond_wait(&w->cv, &w->mu);
    int v = w->state;
    pthread_mutex_unlock(&w->mu);
    return v;
}

/* WAKE_LEAD back to WAKE_WAIT (qlock held); false when it is WAKE_DONE. */
static bool wake_rearm(store_wake_t *w)
{
    pthread_mutex_lock(&w->mu);
    bool lead = w->state == WAKE_LEAD;
    if (lead)
        w->state = WAKE_WAIT;
    pthread_mutex_unlock(&w->mu);
    return lead;
}

/* Lead one group (qlock held, no group committing, self queued and not
 * taken): commit everything queued so far without the lock, then hand the
 * next group to the queue's head and wake the group's writers.  Returns
 * with qlock released. */
static void lead_group(store_t *st, store_req_t *self)
{
    store_req_t *list = st->qhead;
    st->qhead = st->qtail = NULL;
    for (store_req_t *r = list; r; r = r->next)
        r->taken = true;
    st->committing = true;
    pthread_mutex_unlock(&st->qlock);
    st->ops->commit_group(st->be, list);
    for (store_req_t *r = list; r; r = r->next)
        if (r->rc == PAI_OK) { /* one transaction (and fsync) for the group */
            atomic_fetch_add_explicit(&st->commits, 1, memory_order_relaxed);
            break;
        }
    pthread_mutex_lock(&st->qlock);
    st->committing = false;
    /* the head is woken under qlock: once qlock is released another
     * group may take it and it may return */
    if (st->qhead)
        wake_set(&st->qhead->wake, WAKE_LEAD);
    else
        pthread_cond_broadcast(&st->idle); /* store_close may go on */
    pthread_mutex_unlock(&st->qlock);
    for (store_req_t *r = list, *rnext; r; r = rnext) {
        rnext = r->next; /* read first: after WAKE_DONE, r may be gone */
        if (r != self)
            wake_set(&r->wake, WAKE_DONE);
    }
}

/* Queue one request and return once its group has committed: led by this
 * thread when no group commits, else by the writer that leads next. */
static pai_err_t group_write(store_t *st, const store_op_t *ops, size_t n, bool strict_del)
{
    store_req_t r = {.ops = ops, .n = n, .strict_del = strict_del, .rc = PAI_E_INTERNAL};
    pthread_mutex_lock(&st->qlock);
    if (st->stopping) {
        pthread_mutex_unlock(&st->qlock);
        return PAI_E_UNAVAILABLE;
    }
    wake_init(&r.wake);
    if (st->qtail)
        st->qtail->next = &r;
    else
        st->qhead = &r;
    st->qtail = &r;
    for (;;) {
        /* Queued while no group commits: lead (a group that ended handed
         * the queue's head WAKE_LEAD, so someone always does). */
        if (!r.taken && !st->committing) {
            lead_group(st, &r);
            break;
        }
        pthread_mutex_unlock(&st->qlock);
        if (wake_wait(&r.wake) == WAKE_DONE)
            break;
        pthread_mutex_lock(&st->qlock);
        /* WAKE_LEAD: look again; its group may have ended meanwhile */
        if (!wake_rearm(&r.wake)) {
            pthread_mutex_unlock(&st->qlock);
            break;
        }
    }
    wake_destroy(&r.wake);
    return r.rc;
}

static void sync_destroy(store_t *st)
{
    pthread_mutex_destroy(&st->qlock);
    pthread_cond_destroy(&st->idle);
}

/* ---- open / close ----------------------------------------------------- */

pai_err_t store_open(const char *url, store_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!url || !*url) {
        snprintf(err, errlen, "store: empty store URL");
        return PAI_E_INVALID;
    }
    const store_ops_t *ops = pick_backend(url);
    if (!ops) {
        snprintf(err, errlen,
                 "store: unknown URL scheme in '%.64s' (use sqlite:PATH or postgres://...)", url);
        return PAI_E_INVALID;
    }
    void *be = NULL;
    pai_err_t rc = ops->open(url, &be, err, errlen);
    if (rc != PAI_OK)
        return rc;
    store_t *st = xcalloc(1, sizeof(*st));
    st->ops = ops;
    st->be = be;
    atomic_init(&st->commits, 0);
    pthread_mutex_init(&st->qlock, NULL);
    pthread_cond_init(&st->idle, NULL);
    *out = st;
    return PAI_OK;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->qlock);
    st->stopping = true;
    /* the writers queued before stopping lead and end their groups */
    while (st->committing || st->qhead)
        pthread_cond_wait(&st->idle, &st->qlock);
    pthread_mutex_unlock(&st->qlock);
    st->ops->close(st->be);
    sync_destroy(st);
    free(st);
}

/* ---- the public calls -------------------------------------------------- */

static pai_err_t check_ops(const store_op_t *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const store_op_t *op = &ops[i];
        if (!op->kind || !op->key || (op->op != STORE_OP_DEL && !op->json))
            return PAI_E_INVALID;
        if (op->op != STORE_OP_DEL && strlen(op->json) > STORE_MAX_VALUE)
            return PAI_E_TOO_LARGE;
    }
    return PAI_OK;
}

/* How many locks that forbid store I/O this thread holds (store_io_forbid). */
static _Thread_local int io_forbidden;

void store_io_forbid(bool on)
{
    io_forbidden += on ? 1 : -1;
}

#define ASSERT_IO_ALLOWED() assert(io_forbidden == 0 && "no store I/O under the engine lock")

static pai_err_t write_ops(store_t *st, const store_op_t *ops, size_t n, bool strict_del)
{
    ASSERT_IO_ALLOWED();
    pai_err_t rc = check_ops(ops, n);
    if (rc != PAI_OK)
        return rc;
    return group_write(st, ops, n, strict_del);
}

pai_err_t store_put(store_t *st, const char *kind, const char *key, int64_t seq, const char *json)
{
    store_op_t op = {STORE_OP_PUT, kind, key, seq, json};
    return write_ops(st, &op, 1, false);
}

pai_err_t store_insert(store_t *st, const char *kind, const char *key, int64_t seq,
                       const char *json)
{
    store_op_t op = {STORE_OP_INSERT, kind, key, seq, json};
    return write_ops(st, &op, 1, false);
}

pai_err_t store_del(store_t *st, const char *kind, const char *key)
{
    store_op_t op = {STORE_OP_DEL, kind, key, 0, NULL};
    return write_ops(st, &op, 1, true);
}

pai_err_t store_batch(store_t *st, const store_op_t *ops, size_t n)
{
    if (n == 0)
        return PAI_OK;
    return write_ops(st, ops, n, false);
}

pai_err_t store_get(store_t *st, const char *kind, const char *key, char **json_out)
{
    *json_out = NULL;
    ASSERT_IO_ALLOWED();
    if (!kind || !key)
        return PAI_E_INVALID;
    return st->ops->get(st->be, kind, key, json_out);
}

/* store_scan's callback behind the backends' one row callback. */
typedef struct {
    store_scan_fn cb;
    void *ud;
} scan_adapter_t;

static int scan_adapt(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    const scan_adapter_t *a = ud;
    (void)kind;
    return a->cb(a->ud, key, seq, json);
}

pai_err_t store_scan(store_t *st, const char *kind, store_scan_fn cb, void *ud)
{
    ASSERT_IO_ALLOWED();
    if (!kind || !cb)
        return PAI_E_INVALID;
    scan_adapter_t a = {cb, ud};
    store_range_t q = {.kind = kind};
    return st->ops->scan(st->be, &q, scan_adapt, &a);
}

pai_err_t store_scan_prefix(store_t *st, const char *kind, const char *prefix, store_scan_fn cb,
                            void *ud)
{
    ASSERT_IO_ALLOWED();
    size_t n = prefix ? strlen(prefix) : 0;
    /* the keys in [prefix, prefix with its last byte + 1) */
    if (!kind || !cb || n == 0 || n >= 1024 || (unsigned char)prefix[n - 1] >= 0x7f)
        return PAI_E_INVALID;
    char hi[1024];
    memcpy(hi, prefix, n + 1);
    hi[n - 1]++;
    scan_adapter_t a = {cb, ud};
    store_range_t q = {.kind = kind, .lo = prefix, .hi = hi};
    return st->ops->scan(st->be, &q, scan_adapt, &a);
}

pai_err_t store_scan_all(store_t *st, store_scan_all_fn cb, void *ud)
{
    ASSERT_IO_ALLOWED();
    if (!cb)
        return PAI_E_INVALID;
    store_range_t q = {0};
    return st->ops->scan(st->be, &q, cb, ud);
}

void store_set_timeout(store_t *st, int64_t ms)
{
    if (st->ops->set_timeout && ms > 0)
        st->ops->set_timeout(st->be, ms);
}

pai_err_t store_generation(store_t *st, int64_t *gen)
{
    *gen = 0;
    ASSERT_IO_ALLOWED();
    if (!st->ops->generation)
        return PAI_E_NOT_IMPLEMENTED;
    return st->ops->generation(st->be, gen);
}

pai_err_t store_changes(store_t *st, const char *since, store_scan_all_fn cb, void *ud,
                        char **point)
{
    *point = NULL;
    ASSERT_IO_ALLOWED();
    if (!st->ops->changes)
        return PAI_E_NOT_IMPLEMENTED;
    if (since && !cb)
        return PAI_E_INVALID;
    return st->ops->changes(st->be, since, cb, ud, point);
}

uint64_t store_commits(store_t *st)
{
    return atomic_load_explicit(&st->commits, memory_order_relaxed);
}

const char *store_backend(const store_t *st)
{
    return st->ops->name;
}

/* ---- high availability ----------------------------------------------------- */

bool store_has_lease(const store_t *st)
{
    return st->ops->lease_acquire != NULL;
}

pai_err_t store_lease_acquire(store_t *st, const char *holder, const char *url, int64_t term,
                              int64_t lease_ms, store_lease_t *out)
{
    memset(out, 0, sizeof(*out));
    ASSERT_IO_ALLOWED();
    if (!st->ops->lease_acquire)
        return PAI_E_NOT_IMPLEMENTED;
    if (!holder || !*holder || !url || term < 0 || lease_ms <= 0)
        return PAI_E_INVALID;
    return st->ops->lease_acquire(st->be, holder, url, term, lease_ms, out);
}

pai_err_t store_lease_release(store_t *st, const char *holder, int64_t term)
{
    ASSERT_IO_ALLOWED();
    if (!st->ops->lease_release)
        return PAI_E_NOT_IMPLEMENTED;
    return st->ops->lease_release(st->be, holder, term);
}

void store_set_fence(store_t *st, int64_t term, int64_t hold_ms)
{
    if (st->ops->set_fence)
        st->ops->set_fence(st->be, term, hold_ms);
}
