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
 * bound STORE_MAX_VALUE (PAI_E_TOO_LARGE), so backends agree on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/store.h"
#include "store/store_ops.h"

struct store {
    const store_ops_t *ops;
    void *be;
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
    *out = st;
    return PAI_OK;
}

void store_close(store_t *st)
{
    if (!st)
        return;
    st->ops->close(st->be);
    free(st);
}

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

static pai_err_t write_ops(store_t *st, const store_op_t *ops, size_t n, bool strict_del)
{
    pai_err_t rc = check_ops(ops, n);
    if (rc != PAI_OK)
        return rc;
    return st->ops->write(st->be, ops, n, strict_del);
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
    if (!kind || !key)
        return PAI_E_INVALID;
    return st->ops->get(st->be, kind, key, json_out);
}

pai_err_t store_scan(store_t *st, const char *kind, store_scan_fn cb, void *ud)
{
    if (!kind || !cb)
        return PAI_E_INVALID;
    return st->ops->scan(st->be, kind, cb, ud);
}
