/*
 * pg.h - what pg.c shares with its write path, pg_write.c (internal to
 * src/store): the prepared statements every connection carries and the
 * call that makes a connection ready for them.
 */
#ifndef PAI_STORE_PG_H
#define PAI_STORE_PG_H

#include <stdbool.h>

#include "store/pg_conn.h"

#define PG_FENCED_STATE "PAI01" /* SQLSTATE of a fenced write (migration 2) */

enum { Q_GET, Q_PUT, Q_INSERT, Q_DEL, Q_SCAN, Q_SCAN_RANGE, Q_SCAN_ALL, Q__COUNT };

typedef struct {
    const char *name;
    int nparams;
    const char *sql;
} pg_query_t;

/* Prepared on every connection at its setup, by name. */
extern const pg_query_t pg_queries[Q__COUNT];

/* Make c usable: reconnect when the connection broke or timed out (not
 * while the database is known down: pg_conn.h), prepare the statements when
 * new.  False when that failed. */
bool conn_ensure(conn_t *c);

#endif
