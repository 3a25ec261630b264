/*
 * pg_conn.h - one PostgreSQL connection of the store backend, with every
 * round trip bounded in time (internal to src/store; used by pg.c and
 * pg_write.c).
 *
 * A server that hangs (paused, a dead network path whose kernel still
 * answers, a lock that never comes) must not hang pai: every statement is
 * sent in nonblocking mode and each result awaited at most the link's
 * timeout_ms (poll(2) on the socket).  A round trip that runs out of time
 * marks the connection broken: nothing more is sent on it, and it is reset
 * (a fresh session) before its next use.  libpq's connect_timeout bounds
 * each (re)connect.  After a failed reconnect, further reconnects of the
 * same store fail at once for PG_DOWN_BACKOFF_MS, so while the database is
 * gone callers get an answer quickly instead of one connect timeout each.
 */
#ifndef PAI_STORE_PG_CONN_H
#define PAI_STORE_PG_CONN_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define PG_TIMEOUT_MS      10000 /* default bound on one round trip (store_set_timeout) */
#define PG_DOWN_BACKOFF_MS 2000  /* after a failed reconnect: no new try for this long */

/* What every connection of one store shares. */
typedef struct {
    const char *url;
    _Atomic int64_t timeout_ms;    /* bound on each round trip */
    _Atomic int64_t down_until_ms; /* monotonic ms: reconnects fail at once until then */
} pg_link_t;

typedef struct {
    PGconn *pg;
    const pg_link_t *link;
    bool ready;  /* session set up and statements prepared (pg.c) */
    bool broken; /* a round trip ran out of time: reset before the next use */
    bool writer; /* the store's write connection (kept across reconnects) */
    /* The writer's fence for the group being committed (store_set_fence):
     * term 0 = none. */
    int64_t fence_term, fence_hold_ms;
} conn_t;

/* libpq's last message on one line, into buf. */
const char *pg_msg(const PGconn *pg, char *buf, size_t len);

/* Connect c to link's URL.  err gets the reason (no password) on failure:
 * PAI_E_UNAVAILABLE when the server cannot be reached. */
PAI_MUST_CHECK pai_err_t conn_open(conn_t *c, const pg_link_t *link, char *err, size_t errlen);
void conn_close(conn_t *c);
/* Usable for a new statement: connected, not broken. */
bool conn_ok(const conn_t *c);
/* Make c connected again when it is not conn_ok (reset, or open when it
 * never was); clears ready after a reset.  False when that failed or the
 * store's backoff says the database is down. */
bool conn_reconnect(conn_t *c);

/* After PQsend*(): push everything out within the timeout. */
bool conn_flush(conn_t *c);
/* The next result within the timeout (PQgetResult); NULL when there is
 * none left, or when the time ran out (then c->broken). */
PGresult *conn_result(conn_t *c);
/* Like PQexec / PQexecParams / PQexecPrepared / PQprepare: the last
 * result (the caller PQclear()s it), or NULL when nothing could be sent
 * or the time ran out. */
PGresult *conn_exec_params(conn_t *c, const char *sql, int n, const char *const *vals);
PGresult *conn_exec_prepared(conn_t *c, const char *name, int n, const char *const *vals);
PGresult *conn_prepare(conn_t *c, const char *name, const char *sql, int n);
/* A fixed statement (no parameters, no data: BEGIN, COMMIT, DDL); true when
 * it succeeded.  Logs a failure. */
bool conn_cmd(conn_t *c, const char *sql);

/* The error of a failed round trip: PAI_E_UNAVAILABLE when the connection
 * is gone or timed out, else PAI_E_IO (the statement failed). */
PAI_MUST_CHECK pai_err_t conn_err(const conn_t *c);
/* The error of a failed statement res (may be NULL): PAI_E_UNAVAILABLE when
 * its SQLSTATE says the database is going or gone, else conn_err(c). */
PAI_MUST_CHECK pai_err_t res_err(const conn_t *c, const PGresult *res);

#endif
