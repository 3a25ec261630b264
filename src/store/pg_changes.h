/*
 * pg_changes.h - what changed in pai_records since a point (internal to
 * src/store; the public call is store_changes in store.h, forwarded by
 * pg.c).  See pg_changes.c for the design and why no change is missed.
 */
#ifndef PAI_STORE_PG_CHANGES_H
#define PAI_STORE_PG_CHANGES_H

#include "store/pg_conn.h"
#include "store/store.h"

typedef struct pg_changes pg_changes_t;

/* Migration 4 (pg.c migrations[]): each record's writing transaction,
 * the deleted records' tombstones and their pruning. */
extern const char pg_migration_changes[];

/* A change reader on its own connection to link's database (opened on
 * first use); link must outlive it. */
pg_changes_t *pg_changes_new(const pg_link_t *link);
void pg_changes_free(pg_changes_t *ch);

/* See store_changes. */
PAI_MUST_CHECK pai_err_t pg_changes_read(pg_changes_t *ch, const char *since, store_scan_all_fn cb,
                                         void *ud, char **point);

#endif
