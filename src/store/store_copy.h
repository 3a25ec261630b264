/*
 * store_copy.h - moving a whole store to another (`pai store migrate`):
 * count the records of each kind, wipe a target, copy every record in
 * batches.  Works between any two backends (store.h) through the public
 * store calls only, so what one backend holds the other receives as is:
 * users, groups, tokens, jobs and their configs, commands and events,
 * nodes and their credentials, VC config ("meta") - every record there is.
 *
 * Neither store may be written by a server meanwhile: stop the server
 * first (docs/operations.md, "Moving from SQLite to PostgreSQL").
 */
#ifndef PAI_STORE_STORE_COPY_H
#define PAI_STORE_STORE_COPY_H

#include <stddef.h>

#include "store/store.h"

/* Records per kind, kinds in byte order. */
typedef struct {
    char **kinds;
    long *counts;
    size_t n;
    long total;
} store_counts_t;

/* Count every record of st.  Free with store_counts_free. */
PAI_MUST_CHECK pai_err_t store_copy_count(store_t *st, store_counts_t *out);
void store_counts_free(store_counts_t *c);
/* Records of kind in c (0 when none). */
long store_counts_get(const store_counts_t *c, const char *kind);

/* Delete every record of st, in batches; *deleted counts them. */
PAI_MUST_CHECK pai_err_t store_copy_wipe(store_t *st, long *deleted);

/* Called every `every` records copied, and once at the end. */
typedef void (*store_copy_progress_fn)(void *ud, long copied);

/* Copy every record of src into dst (insert only: a key dst already holds
 * fails the copy with PAI_E_EXISTS), in batches of up to `batch` records
 * (and about 16 MiB), each one durable transaction of dst.  *copied counts
 * the records committed (a failed batch leaves nothing of itself). */
PAI_MUST_CHECK pai_err_t store_copy_run(store_t *src, store_t *dst, size_t batch, long *copied,
                                        store_copy_progress_fn progress, void *ud);

#endif
