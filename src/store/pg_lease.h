/*
 * pg_lease.h - leader election on PostgreSQL (internal to src/store; the
 * public calls are store_lease_* in store.h, forwarded by pg.c).  See
 * pg_lease.c for the design and the fencing argument.
 */
#ifndef PAI_STORE_PG_LEASE_H
#define PAI_STORE_PG_LEASE_H

#include "store/store.h"

typedef struct pg_lease pg_lease_t;

/* A lease client on its own connection to url (opened on first use);
 * timeout_ms bounds each of its statements and lock waits. */
pg_lease_t *pg_lease_new(const char *url, int64_t timeout_ms);
void pg_lease_free(pg_lease_t *l);

/* See store_lease_acquire / store_lease_release. */
PAI_MUST_CHECK pai_err_t pg_lease_acquire(pg_lease_t *l, const char *holder, const char *url,
                                          int64_t term, int64_t lease_ms, store_lease_t *out);
PAI_MUST_CHECK pai_err_t pg_lease_release(pg_lease_t *l, const char *holder, int64_t term);

#endif
