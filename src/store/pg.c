/*
 * pg.c - the PostgreSQL store backend (libpq).
 *
 * DESIGN
 *   - The same model as sqlite.c: one table `pai_records(kind, key, seq,
 *     json)`; numbered migrations recorded in `pai_schema(version)`, applied
 *     under an advisory lock so two servers starting together do not race.
 *   - Every statement is prepared once per connection (PQprepare) and run
 *     with PQexecPrepared: values never reach SQL text.
 *   - The write connection belongs to store.c's committer thread (group
 *     commit lives there).  COMMIT with synchronous_commit=on (forced per
 *     session) returns after the WAL is flushed: durable.
 *   - INSERT uses ON CONFLICT DO NOTHING and looks at the row count, so an
 *     existing key is PAI_E_EXISTS without aborting the transaction.
 *   - Reads: a small pool of connections; when all are busy a caller gets a
 *     temporary one, so a scan callback may call the store again.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "store/backend.h"

#define PG_READ_POOL 4
#define PG_LOCK_KEY  "7270616900" /* advisory lock id for migrations */

static const char *const pg_migrations[] = {
    /* 1: the record table and its scan order. */
    "CREATE TABLE pai_records (kind TEXT NOT NULL, key TEXT NOT NULL, seq BIGINT NOT NULL "
    "DEFAULT 0, json TEXT NOT NULL, PRIMARY KEY (kind, key));"
    "CREATE INDEX pai_records_scan ON pai_records (kind, seq, key);",
};

enum { PQ_GET, PQ_PUT, PQ_INSERT, PQ_DEL, PQ_SCAN, PQ__COUNT };
static const char *const pq_name[PQ__COUNT] = {"get", "put", "ins", "del", "scan"};
static const char *const pq_sql[PQ__COUNT] = {
    [PQ_GET] = "SELECT json FROM pai_records WHERE kind = $1 AND key = $2",
    [PQ_PUT] = "INSERT INTO pai_records (kind, key, seq, json) VALUES ($1, $2, $3, $4) "
               "ON CONFLICT (kind, key) DO UPDATE SET seq = EXCLUDED.seq, json = EXCLUDED.json",
    [PQ_INSERT] = "INSERT INTO pai_records (kind, key, seq, json) VALUES ($1, $2, $3, $4) "
                  "ON CONFLICT (kind, key) DO NOTHING",
    [PQ_DEL] = "DELETE FROM pai_records WHERE kind = $1 AND key = $2",
    [PQ_SCAN] = "SELECT key, seq, json FROM pai_records WHERE kind = $1 ORDER BY seq, key",
};

typedef struct {
    char *url;
    PGconn *writer;
    PGconn *readers[PG_READ_POOL];
    bool busy[PG_READ_POOL];
    pthread_mutex_t rlock;
} pg_t;

static pai_err_t pg_exec(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    pai_err_t rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? PAI_OK : PAI_E_IO;
    if (rc != PAI_OK) {
        if (err)
            snprintf(err, errlen, "postgres: %s", PQerrorMessage(c));
        else
            log_error("store: postgres: %s", PQerrorMessage(c));
    }
    PQclear(r);
    return rc;
}

static PGconn *pg_connect(const char *url, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(url);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "postgres: cannot connect: %s",
                 c ? PQerrorMessage(c) : "out of memory");
        PQfinish(c);
        return NULL;
    }
    if (pg_exec(c, "SET synchronous_commit = on; SET client_min_messages = warning", err, errlen) !=
        PAI_OK) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

static pai_err_t pg_prepare_all(PGconn *c, char *err, size_t errlen)
{
    for (int i = 0; i < PQ__COUNT; i++) {
        PGresult *r = PQprepare(c, pq_name[i], pq_sql[i], 0, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            snprintf(err, errlen, "postgres: prepare %s: %s", pq_name[i], PQerrorMessage(c));
            return PAI_E_IO;
        }
    }
    return PAI_OK;
}

static int pg_schema_version(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT max(version) FROM pai_schema");
    int v = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
        str_to_int(PQgetvalue(r, 0, 0), 0, 1 << 30, &v) != PAI_OK)
        v = 0;
    PQclear(r);
    return v;
}

static pai_err_t pg_migrate_locked(PGconn *c, char *err, size_t errlen)
{
    if (pg_exec(c, "CREATE TABLE IF NOT EXISTS pai_schema (version INT PRIMARY KEY)", err,
                errlen) != PAI_OK)
        return PAI_E_IO;
    int have = pg_schema_version(c), want = (int)ARRAY_LEN(pg_migrations);
    if (have > want) {
        snprintf(err, errlen, "store schema version %d is newer than this pai (%d)", have, want);
        return PAI_E_BAD_CONFIG;
    }
    for (int v = have; v < want; v++) {
        char ver[96];
        snprintf(ver, sizeof(ver), "INSERT INTO pai_schema (version) VALUES (%d)", v + 1);
        if (pg_exec(c, "BEGIN", err, errlen) != PAI_OK)
            return PAI_E_IO;
        if (pg_exec(c, pg_migrations[v], err, errlen) != PAI_OK ||
            pg_exec(c, ver, err, errlen) != PAI_OK || pg_exec(c, "COMMIT", err, errlen) != PAI_OK) {
            (void)pg_exec(c, "ROLLBACK", NULL, 0);
            return PAI_E_IO;
        }
        log_info("store: applied postgres migration %d", v + 1);
    }
    return PAI_OK;
}

static pai_err_t pg_migrate(PGconn *c, char *err, size_t errlen)
{
    if (pg_exec(c, "SELECT pg_advisory_lock(" PG_LOCK_KEY ")", err, errlen) != PAI_OK)
        return PAI_E_IO;
    pai_err_t rc = pg_migrate_locked(c, err, errlen);
    (void)pg_exec(c, "SELECT pg_advisory_unlock(" PG_LOCK_KEY ")", NULL, 0);
    return rc;
}

/* ---- writes (committer thread only) ------------------------------------ */

static pai_err_t pgw(void *impl, const char *sql)
{
    return pg_exec(((pg_t *)impl)->writer, sql, NULL, 0);
}

static pai_err_t pg_begin(void *impl)
{
    pg_t *p = impl;
    if (PQstatus(p->writer) != CONNECTION_OK) { /* the server restarted: reconnect */
        char err[512];
        PQreset(p->writer);
        if (PQstatus(p->writer) != CONNECTION_OK ||
            pg_exec(p->writer, "SET synchronous_commit = on", err, sizeof(err)) != PAI_OK ||
            pg_prepare_all(p->writer, err, sizeof(err)) != PAI_OK) {
            log_error("store: postgres writer cannot reconnect: %s", PQerrorMessage(p->writer));
            return PAI_E_UNAVAILABLE;
        }
    }
    return pgw(impl, "BEGIN");
}

static pai_err_t pg_savepoint(void *impl)
{
    return pgw(impl, "SAVEPOINT req");
}

static pai_err_t pg_release(void *impl, bool rollback)
{
    if (rollback && pgw(impl, "ROLLBACK TO SAVEPOINT req") != PAI_OK)
        return PAI_E_IO;
    return pgw(impl, "RELEASE SAVEPOINT req");
}

static pai_err_t pg_commit(void *impl)
{
    return pgw(impl, "COMMIT");
}

static void pg_rollback(void *impl)
{
    (void)pgw(impl, "ROLLBACK");
}

static pai_err_t pg_apply(void *impl, const store_op_t *op, bool strict_del)
{
    PGconn *c = ((pg_t *)impl)->writer;
    int which = op->op == STORE_OP_PUT ? PQ_PUT : op->op == STORE_OP_INSERT ? PQ_INSERT : PQ_DEL;
    char seq[32];
    snprintf(seq, sizeof(seq), "%lld", (long long)op->seq);
    const char *vals[4] = {op->kind, op->key, seq, op->json};
    PGresult *r = PQexecPrepared(c, pq_name[which], which == PQ_DEL ? 2 : 4, vals, NULL, NULL, 0);
    pai_err_t rc = PAI_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_error("store: postgres %s %s/%s: %s", pq_name[which], op->kind, op->key,
                  PQerrorMessage(c));
        rc = PAI_E_IO;
    } else if (strcmp(PQcmdTuples(r), "0") == 0) {
        if (which == PQ_INSERT)
            rc = PAI_E_EXISTS;
        else if (which == PQ_DEL && strict_del)
            rc = PAI_E_NOT_FOUND;
    }
    PQclear(r);
    return rc;
}

/* ---- reads ------------------------------------------------------------- */

static PGconn *pg_reader_get(pg_t *p, int *slot)
{
    pthread_mutex_lock(&p->rlock);
    for (int i = 0; i < PG_READ_POOL; i++) {
        if (!p->busy[i] && p->readers[i]) {
            p->busy[i] = true;
            pthread_mutex_unlock(&p->rlock);
            if (PQstatus(p->readers[i]) != CONNECTION_OK)
                PQreset(p->readers[i]);
            *slot = i;
            return p->readers[i];
        }
    }
    pthread_mutex_unlock(&p->rlock);
    char err[512];
    *slot = -1;
    PGconn *c = pg_connect(p->url, err, sizeof(err));
    if (c && pg_prepare_all(c, err, sizeof(err)) != PAI_OK) {
        PQfinish(c);
        c = NULL;
    }
    if (!c)
        log_error("store: %s", err);
    return c;
}

static void pg_reader_put(pg_t *p, PGconn *c, int slot)
{
    if (slot < 0) {
        PQfinish(c);
        return;
    }
    pthread_mutex_lock(&p->rlock);
    p->busy[slot] = false;
    pthread_mutex_unlock(&p->rlock);
}

static pai_err_t pg_get(void *impl, const char *kind, const char *key, char **json_out)
{
    pg_t *p = impl;
    int slot;
    PGconn *c = pg_reader_get(p, &slot);
    if (!c)
        return PAI_E_IO;
    const char *vals[2] = {kind, key};
    PGresult *r = PQexecPrepared(c, pq_name[PQ_GET], 2, vals, NULL, NULL, 0);
    pai_err_t rc = PAI_E_NOT_FOUND;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_error("store: postgres get %s/%s: %s", kind, key, PQerrorMessage(c));
        rc = PAI_E_IO;
    } else if (PQntuples(r) == 1) {
        *json_out = xstrdup(PQgetvalue(r, 0, 0));
        rc = PAI_OK;
    }
    PQclear(r);
    pg_reader_put(p, c, slot);
    return rc;
}

static pai_err_t pg_scan(void *impl, const char *kind, store_scan_fn cb, void *ud)
{
    pg_t *p = impl;
    int slot;
    PGconn *c = pg_reader_get(p, &slot);
    if (!c)
        return PAI_E_IO;
    const char *vals[1] = {kind};
    PGresult *r = PQexecPrepared(c, pq_name[PQ_SCAN], 1, vals, NULL, NULL, 0);
    pai_err_t rc = PAI_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_error("store: postgres scan %s: %s", kind, PQerrorMessage(c));
        rc = PAI_E_IO;
    }
    /* the result is in memory: give the connection back before the callbacks */
    pg_reader_put(p, c, slot);
    for (int i = 0; rc == PAI_OK && i < PQntuples(r); i++) {
        int64_t seq = 0;
        if (str_to_i64(PQgetvalue(r, i, 1), INT64_MIN, INT64_MAX, &seq) != PAI_OK)
            seq = 0;
        if (cb(ud, PQgetvalue(r, i, 0), seq, PQgetvalue(r, i, 2)))
            break;
    }
    PQclear(r);
    return rc;
}

/* ---- open / close ------------------------------------------------------ */

static void pg_close(void *impl)
{
    pg_t *p = impl;
    for (int i = 0; i < PG_READ_POOL; i++)
        PQfinish(p->readers[i]);
    PQfinish(p->writer);
    pthread_mutex_destroy(&p->rlock);
    free(p->url);
    free(p);
}

static pai_err_t pg_open(const char *url, void **impl, char *err, size_t errlen)
{
    pg_t *p = xcalloc(1, sizeof(*p));
    p->url = xstrdup(url);
    pthread_mutex_init(&p->rlock, NULL);
    pai_err_t rc = PAI_E_IO;
    if (!(p->writer = pg_connect(url, err, errlen)))
        goto fail;
    if ((rc = pg_migrate(p->writer, err, errlen)) != PAI_OK ||
        (rc = pg_prepare_all(p->writer, err, errlen)) != PAI_OK)
        goto fail;
    for (int i = 0; i < PG_READ_POOL; i++) {
        rc = PAI_E_IO;
        if (!(p->readers[i] = pg_connect(url, err, errlen)) ||
            (rc = pg_prepare_all(p->readers[i], err, errlen)) != PAI_OK)
            goto fail;
    }
    *impl = p;
    return PAI_OK;
fail:
    pg_close(p);
    return rc;
}

const store_backend_t store_backend_pg = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .apply = pg_apply,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .get = pg_get,
    .scan = pg_scan,
};
