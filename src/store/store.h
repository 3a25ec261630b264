/*
 * store.h - the durable store, behind one interface.
 *
 * Backends side by side behind an ops struct (store_ops.h, dispatch in
 * store.c): src/store/sqlite.c (embedded default, WAL) and src/store/pg.c
 * (PostgreSQL).  Nothing above this header speaks SQL.
 *
 * Model: records of JSON text addressed by (kind, key), e.g.
 *   ("user", "alice"), ("group", "admingroup"), ("token", "<sha256 of token>"),
 *   ("job", "alice~train1"), ("vc", "research"), ("meta", "schema").
 * Each record also carries an optional integer `seq` (a secondary order,
 * e.g. a job's submission sequence) so scans come back in a stable order.
 * The server keeps what it needs to answer queries in memory and uses the
 * store for durability and for the large parts of records (job configs).
 *
 * Durability: store_put/store_del/store_batch return only after the
 * change is committed to disk (fsync).  Concurrent callers are batched into
 * one transaction (group commit), so many clients share one fsync.
 * All functions are thread-safe.
 */
#ifndef PAI_STORE_STORE_H
#define PAI_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct store store_t;

/* Largest JSON value one record may hold; bigger writes fail with
 * PAI_E_TOO_LARGE (every backend). */
#define STORE_MAX_VALUE (64u * 1024 * 1024)

/* url: "sqlite:/path/to/pai.db" (or a bare path), or a libpq URL
 * "postgres://user@host:port/db?..." / "postgresql://...".
 * Runs numbered schema migrations.  err gets a message on failure
 * (bad URL: PAI_E_INVALID; unreachable server: PAI_E_UNAVAILABLE). */
PAI_MUST_CHECK pai_err_t store_open(const char *url, store_t **out, char *err, size_t errlen);
void store_close(store_t *st);

/* Insert or replace (kind, key).  json is copied. */
PAI_MUST_CHECK pai_err_t store_put(store_t *st, const char *kind, const char *key, int64_t seq,
                                   const char *json);
/* Insert only: PAI_E_EXISTS when (kind, key) is already there. */
PAI_MUST_CHECK pai_err_t store_insert(store_t *st, const char *kind, const char *key, int64_t seq,
                                      const char *json);
/* *json_out is malloc'ed (caller frees).  PAI_E_NOT_FOUND when absent. */
PAI_MUST_CHECK pai_err_t store_get(store_t *st, const char *kind, const char *key, char **json_out);
/* PAI_E_NOT_FOUND when absent. */
PAI_MUST_CHECK pai_err_t store_del(store_t *st, const char *kind, const char *key);

/* Calls cb for every record of kind in (seq, key) order; stops early when
 * cb returns non-zero. */
typedef int (*store_scan_fn)(void *ud, const char *key, int64_t seq, const char *json);
PAI_MUST_CHECK pai_err_t store_scan(store_t *st, const char *kind, store_scan_fn cb, void *ud);
/* Calls cb for every record of kind whose key starts with prefix (not
 * empty), in key order (bytewise); stops early when cb returns non-zero.
 * E.g. a job's events: prefix "alice~train1/". */
PAI_MUST_CHECK pai_err_t store_scan_prefix(store_t *st, const char *kind, const char *prefix,
                                           store_scan_fn cb, void *ud);
/* Calls cb for every record of every kind, in (kind, key) order; stops
 * early when cb returns non-zero.  For copying or counting a whole store
 * (`pai store migrate`). */
typedef int (*store_scan_all_fn)(void *ud, const char *kind, const char *key, int64_t seq,
                                 const char *json);
PAI_MUST_CHECK pai_err_t store_scan_all(store_t *st, store_scan_all_fn cb, void *ud);
/* Bound every round trip to a remote store (PostgreSQL) by ms: a server
 * that hangs or is cut off makes a call fail with PAI_E_UNAVAILABLE after
 * about ms (plus a reconnect's connect_timeout), never hang (pg_conn.h).
 * Default 10 s.  No effect on SQLite. */
void store_set_timeout(store_t *st, int64_t ms);
/* The store's generation: a number that grows in every committed
 * transaction that changes a record, whoever wrote it (a trigger bumps it
 * inside that transaction), so a reader that reads it before reading the
 * records and later finds it unchanged knows nothing changed in between
 * (a standby's view, server/standby.c).  PostgreSQL only; SQLite answers
 * PAI_E_NOT_IMPLEMENTED (one server: no standby reads it). */
PAI_MUST_CHECK pai_err_t store_generation(store_t *st, int64_t *gen);
/* What changed since a point (a standby's incremental refresh,
 * server/standby.c).  since NULL: only *point, the store as of now: take it
 * BEFORE reading records whole, and every change committed after that
 * read began is reported by the next call from it.  Else cb gets every
 * record written (json) or deleted (json NULL, seq 0) by a transaction
 * that had not committed when `since` was taken, each key once, in no
 * order; records written again unchanged may be reported too.  *point
 * (malloc'ed, the caller frees): the point to ask from next time, set only
 * on PAI_OK.  A cb that returns non-zero stops the read (PAI_E_INTERNAL).
 * PAI_E_NOT_FOUND: the changes since `since` are no longer all kept (the
 * deletions' retention, 15 minutes, passed): read the records whole again.
 * PostgreSQL only (pg_changes.c has the argument why no change is missed);
 * SQLite answers PAI_E_NOT_IMPLEMENTED. */
PAI_MUST_CHECK pai_err_t store_changes(store_t *st, const char *since, store_scan_all_fn cb,
                                       void *ud, char **point);
/* Write transactions committed since store_open: one per group of
 * concurrent writes (group commit) that stored anything, i.e. one fsync on
 * SQLite, one COMMIT on PostgreSQL (pai_store_commits_total).  Any thread. */
uint64_t store_commits(store_t *st);
/* The backend's name: "sqlite" or "postgres". */
const char *store_backend(const store_t *st);

/* Several changes in one atomic, durable transaction. */
typedef enum { STORE_OP_PUT, STORE_OP_INSERT, STORE_OP_DEL } store_op_kind_t;
typedef struct {
    store_op_kind_t op;
    const char *kind;
    const char *key;
    int64_t seq;
    const char *json; /* NULL for DEL */
} store_op_t;
PAI_MUST_CHECK pai_err_t store_batch(store_t *st, const store_op_t *ops, size_t n);

/* ---- high availability: leader election and fencing ---------------------
 *
 * PostgreSQL only (src/store/pg_lease.c has the design and the argument);
 * SQLite answers PAI_E_NOT_IMPLEMENTED: it serves one server.  One lease
 * per database, held by one server at a time; its term (the fencing token)
 * grows by one at every change of holder. */
typedef struct {
    int64_t term;         /* the lease's term now */
    char holder[256];     /* who holds it (or held it last) */
    char url[512];        /* the holder's advertised URL */
    int64_t remaining_ms; /* what is left of it, on the database's clock (<= 0: expired) */
    bool held;            /* the caller holds it now */
} store_lease_t;

/* True when the backend elects leaders (PostgreSQL). */
bool store_has_lease(const store_t *st);
/* One election round on a connection of its own: renew the lease when
 * `holder` holds it under `term` (the term stays), take it over when it
 * expired or when `holder` held it under another term (a restart; the term
 * grows), else leave it.  lease_ms: the lease's length from now on the
 * database's clock; each statement is bounded by a third of it.  *out: the
 * lease as it is after the round.  PAI_E_UNAVAILABLE when the database
 * could not be asked (nothing is held then). */
PAI_MUST_CHECK pai_err_t store_lease_acquire(store_t *st, const char *holder, const char *url,
                                             int64_t term, int64_t lease_ms, store_lease_t *out);
/* Give the lease up now (a clean shutdown), so a standby takes over at
 * once.  The caller must have stopped acting first. */
PAI_MUST_CHECK pai_err_t store_lease_release(store_t *st, const char *holder, int64_t term);
/* Fence every later write: each commits only while the fence still holds
 * `term` (the caller's term as leader), else fails with PAI_E_FENCED and
 * leaves no trace.  hold_ms bounds how long a write transaction may sit
 * idle holding the fence (a partitioned leader).  term 0: no fence. */
void store_set_fence(store_t *st, int64_t term, int64_t hold_ms);

/* Debug check for a lock no store I/O may happen under (the job engine's
 * mu; src/engine/engine_int.h, "Locking"): between store_io_forbid(true) and
 * store_io_forbid(false) on a thread, every store call on that thread fails
 * an assert() (builds without NDEBUG).  Calls nest. */
void store_io_forbid(bool on);

#endif
