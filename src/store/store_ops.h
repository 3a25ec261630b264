/*
 * store_ops.h - the backend interface behind store.h (internal to src/store).
 *
 * store.c owns the public store_* functions: it picks a backend from the URL
 * in store_open, checks arguments and bounds once for every backend, and
 * forwards to the backend's ops.  A backend keeps its own state behind the
 * opaque `be` pointer it returns from open.
 *
 * Writes are group-committed by store.c (see there): every writer queues a
 * store_req_t; the writer that leads (one at a time) hands everything queued
 * so far to the backend's commit_group, which applies the group in as few
 * transactions as it can (one fsync for N writers) and sets each request's
 * rc.  A backend has only its SQL to write, not the batching.  strict_del asks
 * that deleting an absent record fail with PAI_E_NOT_FOUND (store_del); in a
 * batch it is a no-op.
 */
#ifndef PAI_STORE_STORE_OPS_H
#define PAI_STORE_STORE_OPS_H

#include <pthread.h>
#include <stdbool.h>

#include "store/store.h"

/* Where a queued writer sleeps (store.c: state is a WAKE_* under mu). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
} store_wake_t;

/* One caller's write: ops applied atomically, all or none. */
typedef struct store_req {
    const store_op_t *ops;
    size_t n;
    bool strict_del;
    pai_err_t rc;           /* set by commit_group: PAI_OK once durable */
    bool taken;             /* store.c, under its lock: in a group */
    store_wake_t wake;      /* store.c: where its writer waits */
    struct store_req *next; /* the group, in queue order */
} store_req_t;

/* What a scan reads: every record of kind in (seq, key) order; with
 * prefix, only keys in [lo, hi) in key order; with kind NULL, every record
 * in (kind, key) order. */
typedef struct {
    const char *kind;
    const char *lo, *hi;
} store_range_t;

typedef struct store_ops {
    const char *name;
    /* url is the full URL as given to store_open. */
    pai_err_t (*open)(const char *url, void **be, char *err, size_t errlen);
    /* Called after the last commit_group has returned. */
    void (*close)(void *be);
    /* Apply a group of requests (on the thread of the writer that leads it,
     * one group at a time) and set every request's rc; one failing request must not fail
     * its neighbours.  Returns when every PAI_OK is durable. */
    void (*commit_group)(void *be, store_req_t *list);
    pai_err_t (*get)(void *be, const char *kind, const char *key, char **json_out);
    pai_err_t (*scan)(void *be, const store_range_t *q, store_scan_all_fn cb, void *ud);
    /* Leader election and fencing (store.h); NULL where the backend has
     * none (SQLite). */
    pai_err_t (*lease_acquire)(void *be, const char *holder, const char *url, int64_t term,
                               int64_t lease_ms, store_lease_t *out);
    pai_err_t (*lease_release)(void *be, const char *holder, int64_t term);
    void (*set_fence)(void *be, int64_t term, int64_t hold_ms);
    /* Bound on one round trip to a database server (store_set_timeout);
     * NULL where nothing is remote (SQLite). */
    void (*set_timeout)(void *be, int64_t ms);
    /* The store's change marker (store_generation); NULL where there is
     * none (SQLite). */
    pai_err_t (*generation)(void *be, int64_t *gen);
    /* What changed since a point (store_changes); NULL where unknown. */
    pai_err_t (*changes)(void *be, const char *since, store_scan_all_fn cb, void *ud, char **point);
} store_ops_t;

extern const store_ops_t store_sqlite_ops;
extern const store_ops_t store_pg_ops;

#endif
