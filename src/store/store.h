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

/* Debug check for a lock no store I/O may happen under (the job engine's
 * mu; src/engine/engine_int.h, "Locking"): between store_io_forbid(true) and
 * store_io_forbid(false) on a thread, every store call on that thread fails
 * an assert() (builds without NDEBUG).  Calls nest. */
void store_io_forbid(bool on);

#endif
