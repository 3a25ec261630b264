/*
 * store_ops.h - the backend interface behind store.h (internal to src/store).
 *
 * store.c owns the public store_* functions: it picks a backend from the URL
 * in store_open, checks arguments and bounds once for every backend, and
 * forwards to the backend's ops.  A backend keeps its own state behind the
 * opaque `be` pointer it returns from open.
 *
 * Every write goes through one entry point, write(): a list of operations
 * applied atomically and durably.  strict_del asks that deleting an absent
 * record fail with PAI_E_NOT_FOUND (store_del); in a batch it is a no-op.
 */
#ifndef PAI_STORE_STORE_OPS_H
#define PAI_STORE_STORE_OPS_H

#include <stdbool.h>

#include "store/store.h"

typedef struct store_ops {
    const char *name;
    /* url is the full URL as given to store_open. */
    pai_err_t (*open)(const char *url, void **be, char *err, size_t errlen);
    void (*close)(void *be);
    pai_err_t (*write)(void *be, const store_op_t *ops, size_t n, bool strict_del);
    pai_err_t (*get)(void *be, const char *kind, const char *key, char **json_out);
    pai_err_t (*scan)(void *be, const char *kind, store_scan_fn cb, void *ud);
} store_ops_t;

extern const store_ops_t store_sqlite_ops;
extern const store_ops_t store_pg_ops;

#endif
