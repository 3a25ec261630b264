/*
 * pg_conn.c - a PostgreSQL connection whose every round trip is bounded
 * (pg_conn.h): nonblocking sends flushed with poll(2), results awaited with
 * a deadline, reconnects bounded by connect_timeout and spaced by the
 * store's backoff while the database is down.
 *
 * Invariant: no call here waits longer than the link's timeout for one
 * result, or libpq's connect_timeout for one connect.
 */
#include "store/pg_conn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define PG_CONNECT_TIMEOUT "5" /* seconds; a URL may set its own */

const char *pg_msg(const PGconn *pg, char *buf, size_t len)
{
    str_copy(buf, pg ? PQerrorMessage(pg) : "out of memory", len);
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = (p[1] ? ' ' : '\0');
    return buf;
}

/* ---- connect ------------------------------------------------------------ */

/* Where we tried to connect, without the password. */
static void describe_target(const PGconn *pg, char *buf, size_t len)
{
    const char *host = pg ? PQhost(pg) : NULL, *port = pg ? PQport(pg) : NULL;
    const char *db = pg ? PQdb(pg) : NULL;
    snprintf(buf, len, "%s:%s/%s", host && *host ? host : "?", port && *port ? port : "?",
             db && *db ? db : "?");
}

/* Server notices ("relation already exists, skipping") go to the debug log,
 * not to stderr as libpq would print them. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    log_debug("store: postgres: %.200s", msg);
}

/* A fresh connection: nonblocking (sends never wait on a full socket). */
static bool conn_ready_io(conn_t *c)
{
    PQsetNoticeProcessor(c->pg, on_notice, NULL);
    return PQsetnonblocking(c->pg, 1) == 0;
}

pai_err_t conn_open(conn_t *c, const pg_link_t *link, char *err, size_t errlen)
{
    /* Processed in order: the URL (dbname, expanded) overrides the defaults
     * before it, so a URL may set its own.  The TCP settings notice a dead
     * peer or network path within about a minute instead of the kernel's
     * default of many minutes. */
    const char *const kw[] = {"connect_timeout",
                              "application_name",
                              "client_encoding",
                              "keepalives_idle",
                              "keepalives_interval",
                              "keepalives_count",
                              "tcp_user_timeout",
                              "dbname",
                              NULL};
    const char *const val[] = {PG_CONNECT_TIMEOUT, "pai", "UTF8", "30", "10", "3", "60000",
                               link->url,          NULL};
    bool writer = c->writer;
    memset(c, 0, sizeof(*c));
    c->link = link;
    c->writer = writer;
    c->pg = PQconnectdbParams(kw, val, 1);
    char m[512], where[256];
    if (!c->pg) {
        snprintf(err, errlen, "store: PostgreSQL: out of memory");
        return PAI_E_NOMEM;
    }
    if (PQstatus(c->pg) != CONNECTION_OK || !conn_ready_io(c)) {
        describe_target(c->pg, where, sizeof(where));
        snprintf(err, errlen, "store: cannot connect to PostgreSQL at %s: %s", where,
                 pg_msg(c->pg, m, sizeof(m)));
        conn_close(c);
        return PAI_E_UNAVAILABLE;
    }
    return PAI_OK;
}

void conn_close(conn_t *c)
{
    PQfinish(c->pg);
    c->pg = NULL;
    c->ready = false;
    c->broken = false;
}

bool conn_ok(const conn_t *c)
{
    return c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK;
}

bool conn_reconnect(conn_t *c)
{
    if (conn_ok(c))
        return true;
    pg_link_t *link = (pg_link_t *)c->link;
    if (time_mono_ms() < atomic_load(&link->down_until_ms))
        return false; /* a reconnect failed a moment ago: the database is down */
    /* a fresh connection, whatever state the old one was left in (a
     * pipeline with results unread, a statement in flight) */
    PQfinish(c->pg);
    c->pg = NULL;
    c->ready = false;
    c->broken = false;
    char err[600];
    bool ok = conn_open(c, link, err, sizeof(err)) == PAI_OK; /* bounded by connect_timeout */
    if (!ok)
        log_error("store: postgres: reconnect failed: %s", err);
    if (!ok) {
        atomic_store(&link->down_until_ms, time_mono_ms() + PG_DOWN_BACKOFF_MS);
        return false;
    }
    log_info("store: postgres: reconnected");
    return true;
}

/* ---- bounded round trips ------------------------------------------------- */

/* The time ran out: nothing more goes over this connection until it is reset. */
static void conn_timed_out(conn_t *c, const char *what)
{
    if (!c->broken)
        log_error("store: postgres: no answer within %lld ms (%s); the connection is reset "
                  "before its next use",
                  (long long)atomic_load(&c->link->timeout_ms), what);
    c->broken = true;
}

/* Wait until the socket is ready for events (or anything on error); false
 * when the deadline passed. */
static bool wait_socket(conn_t *c, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - time_mono_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = PQsocket(c->pg), .events = events};
        if (p.fd < 0)
            return true; /* libpq reports the error */
        int n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (n > 0 || (n < 0 && errno != EINTR))
            return true;
    }
}

bool conn_flush(conn_t *c)
{
    if (!conn_ok(c))
        return false;
    int64_t deadline = time_mono_ms() + atomic_load(&c->link->timeout_ms);
    int r;
    while ((r = PQflush(c->pg)) == 1) {
        if (!wait_socket(c, POLLIN | POLLOUT, deadline)) {
            conn_timed_out(c, "sending");
            return false;
        }
        /* the server may wait for us to read before it reads more */
        if (!PQconsumeInput(c->pg))
            return false;
    }
    return r == 0;
}

PGresult *conn_result(conn_t *c)
{
    if (!c->pg || c->broken)
        return NULL;
    int64_t deadline = time_mono_ms() + atomic_load(&c->link->timeout_ms);
    while (PQisBusy(c->pg)) {
        if (!wait_socket(c, POLLIN, deadline)) {
            conn_timed_out(c, "waiting for a result");
            return NULL;
        }
        if (!PQconsumeInput(c->pg))
            break; /* connection lost: PQgetResult reports it */
    }
    return PQgetResult(c->pg);
}

/* Collect a sent statement's results; the last one (PQexec's rule: an error
 * wins over what follows it). */
static PGresult *last_result(conn_t *c, bool sent)
{
    if (!sent || !conn_flush(c))
        return NULL;
    PGresult *last = NULL, *res;
    while ((res = conn_result(c))) {
        if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(res);
            continue;
        }
        PQclear(last);
        last = res;
    }
    if (c->broken) {
        PQclear(last);
        return NULL;
    }
    return last;
}

PGresult *conn_exec_params(conn_t *c, const char *sql, int n, const char *const *vals)
{
    if (!conn_ok(c))
        return NULL;
    return last_result(c, PQsendQueryParams(c->pg, sql, n, NULL, vals, NULL, NULL, 0));
}

PGresult *conn_exec_prepared(conn_t *c, const char *name, int n, const char *const *vals)
{
    if (!conn_ok(c))
        return NULL;
    return last_result(c, PQsendQueryPrepared(c->pg, name, n, vals, NULL, NULL, 0));
}

PGresult *conn_prepare(conn_t *c, const char *name, const char *sql, int n)
{
    if (!conn_ok(c))
        return NULL;
    return last_result(c, PQsendPrepare(c->pg, name, sql, n, NULL));
}

bool conn_cmd(conn_t *c, const char *sql)
{
    if (!conn_ok(c))
        return false;
    /* PQsendQuery: several statements in one text (migrations) are allowed */
    PGresult *res = last_result(c, PQsendQuery(c->pg, sql));
    ExecStatusType s = PQresultStatus(res);
    bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok && !c->broken) {
        char m[512];
        log_error("store: postgres: %.40s: %s", sql, pg_msg(c->pg, m, sizeof(m)));
    }
    PQclear(res);
    return ok;
}

/* ---- errors ------------------------------------------------------------- */

/* The error of a failed round trip: the connection's (UNAVAILABLE: the
 * database is gone or silent), or the statement's (IO). */
pai_err_t conn_err(const conn_t *c)
{
    return conn_ok(c) ? PAI_E_IO : PAI_E_UNAVAILABLE;
}

/* The error of a failed statement: UNAVAILABLE when the database is going
 * or gone (SQLSTATE class 08, connection exception; 57P01-57P03, a shutdown
 * or a server not accepting connections) or the connection is, else IO. */
pai_err_t res_err(const conn_t *c, const PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (st && (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0))
        return PAI_E_UNAVAILABLE;
    return conn_err(c);
}
