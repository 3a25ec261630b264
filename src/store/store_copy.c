/*
 * store_copy.c - count, wipe and copy whole stores (store_copy.h).
 *
 * The copy streams the source (store_scan_all: PostgreSQL in single-row
 * mode, SQLite step by step) and writes the target in batches from the
 * scan's callback: memory holds one batch, whatever the store's size.  The
 * two are different stores, so writing one from the other's scan is safe.
 */
#include "store/store_copy.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/vec.h"

#define COPY_BATCH_BYTES (16u * 1024 * 1024) /* a batch ends past this many bytes of values */
#define WIPE_BATCH       1000

/* ---------------------------------------------------------------- counts */

static int count_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    store_counts_t *c = ud;
    (void)key, (void)seq, (void)json;
    /* scan_all comes in (kind, key) order: a new kind is the last one */
    if (c->n == 0 || strcmp(c->kinds[c->n - 1], kind) != 0) {
        c->kinds = xrealloc(c->kinds, (c->n + 1) * sizeof(*c->kinds));
        c->counts = xrealloc(c->counts, (c->n + 1) * sizeof(*c->counts));
        c->kinds[c->n] = xstrdup(kind);
        c->counts[c->n++] = 0;
    }
    c->counts[c->n - 1]++;
    c->total++;
    return 0;
}

pai_err_t store_copy_count(store_t *st, store_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    pai_err_t rc = store_scan_all(st, count_cb, out);
    if (rc != PAI_OK)
        store_counts_free(out);
    return rc;
}

void store_counts_free(store_counts_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->kinds[i]);
    free(c->kinds);
    free(c->counts);
    memset(c, 0, sizeof(*c));
}

long store_counts_get(const store_counts_t *c, const char *kind)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->kinds[i], kind) == 0)
            return c->counts[i];
    return 0;
}

/* ---------------------------------------------------------------- batches */

/* Operations whose strings the batch owns. */
typedef struct {
    store_op_t *ops;
    size_t n, cap, bytes, max;
    store_t *dst;
    long done;
    pai_err_t rc;
    store_copy_progress_fn progress;
    void *ud;
    long next_report;
} batch_t;

static void batch_clear(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((char *)b->ops[i].kind);
        free((char *)b->ops[i].key);
        free((char *)b->ops[i].json);
    }
    b->n = 0;
    b->bytes = 0;
}

static void batch_add(batch_t *b, store_op_kind_t op, const char *kind, const char *key,
                      int64_t seq, const char *json)
{
    VEC_XRESERVE(b->ops, b->cap, b->n + 1);
    b->ops[b->n++] =
        (store_op_t){op, xstrdup(kind), xstrdup(key), seq, json ? xstrdup(json) : NULL};
    b->bytes += strlen(key) + (json ? strlen(json) : 0);
}

static pai_err_t batch_commit(batch_t *b)
{
    pai_err_t rc = b->n ? store_batch(b->dst, b->ops, b->n) : PAI_OK;
    if (rc == PAI_OK)
        b->done += (long)b->n;
    batch_clear(b);
    if (rc == PAI_OK && b->progress && b->done >= b->next_report) {
        b->progress(b->ud, b->done);
        b->next_report = b->done + 10000;
    }
    return rc;
}

/* ---------------------------------------------------------------- wipe, copy */

static int wipe_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    batch_t *b = ud;
    (void)seq, (void)json;
    batch_add(b, STORE_OP_DEL, kind, key, 0, NULL);
    return b->n >= WIPE_BATCH; /* stop: delete these, then scan again */
}

pai_err_t store_copy_wipe(store_t *st, long *deleted)
{
    batch_t b = {.dst = st};
    pai_err_t rc;
    size_t n;
    do {
        rc = store_scan_all(st, wipe_cb, &b);
        n = b.n;
        if (rc == PAI_OK)
            rc = batch_commit(&b);
        batch_clear(&b);
    } while (rc == PAI_OK && n >= WIPE_BATCH);
    free(b.ops);
    *deleted = b.done;
    return rc;
}

static int copy_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    batch_t *b = ud;
    batch_add(b, STORE_OP_INSERT, kind, key, seq, json);
    if (b->n < b->max && b->bytes < COPY_BATCH_BYTES)
        return 0;
    b->rc = batch_commit(b);
    return b->rc != PAI_OK;
}

pai_err_t store_copy_run(store_t *src, store_t *dst, size_t batch, long *copied,
                         store_copy_progress_fn progress, void *ud)
{
    batch_t b = {.dst = dst,
                 .max = batch ? batch : 500,
                 .rc = PAI_OK,
                 .progress = progress,
                 .ud = ud,
                 .next_report = 10000};
    pai_err_t rc = store_scan_all(src, copy_cb, &b);
    if (b.rc != PAI_OK)
        rc = b.rc;
    if (rc == PAI_OK)
        rc = batch_commit(&b);
    batch_clear(&b);
    free(b.ops);
    if (rc == PAI_OK && progress)
        progress(ud, b.done);
    *copied = b.done;
    return rc;
}
