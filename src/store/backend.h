/*
 * backend.h - what a store backend provides (internal to src/store).
 *
 * store.c owns everything backends share: URL dispatch, the write queue and
 * the committer thread (group commit).  A backend only knows how to run
 * statements on its database:
 *
 *   - writes come from the committer thread only, one group at a time:
 *       begin; { savepoint; apply...; release(rollback?) } x N; commit
 *     (so a write connection needs no lock);
 *   - reads (get, scan) may come from any thread at any time, also from
 *     inside a scan callback.
 */
#ifndef PAI_STORE_BACKEND_H
#define PAI_STORE_BACKEND_H

#include <stdbool.h>

#include "store/store.h"

typedef struct {
    const char *name;
    /* url without the scheme check (the backend parses it). */
    PAI_MUST_CHECK pai_err_t (*open)(const char *url, void **impl, char *err, size_t errlen);
    void (*close)(void *impl);

    PAI_MUST_CHECK pai_err_t (*begin)(void *impl);
    PAI_MUST_CHECK pai_err_t (*savepoint)(void *impl);
    /* End the savepoint; rollback undoes everything since it. */
    PAI_MUST_CHECK pai_err_t (*release)(void *impl, bool rollback);
    /* One op.  INSERT of an existing key: PAI_E_EXISTS.  DEL of an absent
     * key: PAI_E_NOT_FOUND when strict_del, else PAI_OK. */
    PAI_MUST_CHECK pai_err_t (*apply)(void *impl, const store_op_t *op, bool strict_del);
    PAI_MUST_CHECK pai_err_t (*commit)(void *impl);
    void (*rollback)(void *impl);

    PAI_MUST_CHECK pai_err_t (*get)(void *impl, const char *kind, const char *key, char **json_out);
    PAI_MUST_CHECK pai_err_t (*scan)(void *impl, const char *kind, store_scan_fn cb, void *ud);
} store_backend_t;

extern const store_backend_t store_backend_sqlite;
extern const store_backend_t store_backend_pg;

#endif
