/*
 * pg.c - the PostgreSQL store backend (libpq), for large or highly available
 * installs.  Same contract as sqlite.c (see store.h); chosen by a
 * postgres:// or postgresql:// URL in store_open.
 *
 * DESIGN
 *   - One table `pai_records(kind, key, seq, json)`; `key` uses the "C"
 *     collation so scans order keys bytewise, as SQLite does.  Schema changes
 *     are the numbered migrations in migrations[]; the table
 *     `pai_schema_migrations` records each applied number.  Migrations run in
 *     one transaction under an advisory lock, so two servers starting at once
 *     do not race.  A schema newer than this binary is refused.
 *   - Values only travel as parameters of prepared statements (PQprepare /
 *     PQexecPrepared); no SQL text is ever built from data.
 *   - Writes (pg_write.c): group commit (store.c).  The writer leading a group owns the write
 *     connection and runs each group in one transaction, COMMITting once
 *     (synchronous_commit on: the WAL is flushed before COMMIT returns).
 *     The group travels in one round trip (libpq
 *     pipeline mode: BEGIN and every operation, then a sync); COMMIT is sent
 *     only once every result is in, so until then a failure leaves nothing
 *     committed and the group can safely be tried again.  INSERT uses
 *     ON CONFLICT DO NOTHING and DELETE reports 0 rows, so a single-operation
 *     request cannot half-fail.  When a multi-operation request (a batch)
 *     failed half-way, the transaction is rolled back and the group re-run
 *     one statement at a time, each batch inside a SAVEPOINT.  When a
 *     statement fails at the SQL level (which aborts the transaction) or the
 *     connection drops, the group is rolled back and every request retried
 *     alone in its own transaction after reconnecting, so one bad request
 *     never fails its neighbours.  The outcome of a failed COMMIT is unknown:
 *     it is reported (PAI_E_UNAVAILABLE when the connection failed, else
 *     PAI_E_IO), never retried: the caller was not told it succeeded.
 *   - Reads: a lazily opened pool of connections.  When all are busy a caller
 *     waits a little, then gets a temporary connection, so a scan callback
 *     may call the store again.  Scans stream rows (single-row mode) instead
 *     of holding a whole kind in memory.
 *   - Every round trip is bounded (pg_conn.c): a server that hangs or is
 *     cut off fails the call with PAI_E_UNAVAILABLE after the store's
 *     timeout (store_set_timeout), and the connection is replaced before
 *     its next use; on the writer statement_timeout makes the server stop
 *     too (not on readers: a scan lasts as long as its caller's callback).
 *     Connections that break are replaced before their next use;
 *     connect_timeout bounds every connect, and after a failed one the
 *     store does not try again for PG_DOWN_BACKOFF_MS, so while the
 *     database is gone calls fail at once (503) instead of hanging.  A
 *     timed-out group never sent its COMMIT: it left no trace.
 *
 * Invariant: a write call returns only after its change is durable (or
 * failed and left no trace).
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "store/pg.h"
#include "store/pg_changes.h"
#include "store/pg_conn.h"
#include "store/pg_lease.h"
#include "store/pg_write.h"
#include "store/store.h"
#include "store/store_ops.h"

#define PG_READ_POOL      8
#define PG_POOL_WAIT_MS   1000               /* then a temporary connection */
#define PG_MIGRATION_LOCK "7046414953746f72" /* pg_advisory_xact_lock key */

typedef struct pg_store pg_store_t;

static const char *const migrations[] = {
    /* 1: the record table and its scan order. */
    "CREATE TABLE pai_records (kind text NOT NULL, key text COLLATE \"C\" NOT NULL,"
    " seq bigint NOT NULL DEFAULT 0, json text NOT NULL, PRIMARY KEY (kind, key));"
    "CREATE INDEX pai_records_scan ON pai_records (kind, seq, key);",
    /* 2: leader election: the lease, the fence and its check (pg_lease.c). */
    "CREATE TABLE pai_leader (id integer PRIMARY KEY CHECK (id = 1), term bigint NOT NULL,"
    " holder text NOT NULL, url text NOT NULL, expires_at timestamptz NOT NULL);"
    "INSERT INTO pai_leader VALUES (1, 0, '', '', '-infinity');"
    "CREATE TABLE pai_fence (id integer PRIMARY KEY CHECK (id = 1), term bigint NOT NULL);"
    "INSERT INTO pai_fence VALUES (1, 0);"
    "CREATE FUNCTION pai_fence_check(t bigint, hold_ms bigint) RETURNS void LANGUAGE plpgsql AS $f$"
    " BEGIN"
    "  PERFORM set_config('idle_in_transaction_session_timeout', hold_ms::text, true);"
    "  PERFORM 1 FROM pai_fence WHERE id = 1 AND term = t FOR SHARE;"
    "  IF NOT FOUND THEN"
    "   RAISE EXCEPTION 'pai: leader term % is over: a newer leader was elected', t"
    "    USING ERRCODE = '" PG_FENCED_STATE "';"
    "  END IF;"
    " END $f$;",
    /* 3: the store's generation (store_generation): a trigger bumps it once
     * in every transaction that writes pai_records, whatever wrote it, so a
     * reader that sees it unchanged has seen every committed change. */
    "CREATE TABLE pai_generation (id integer PRIMARY KEY CHECK (id = 1), gen bigint NOT NULL);"
    "INSERT INTO pai_generation VALUES (1, 0);"
    "CREATE FUNCTION pai_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    "  IF coalesce(current_setting('pai.generation_bumped', true), '') <> 'on' THEN"
    "   UPDATE pai_generation SET gen = gen + 1 WHERE id = 1;"
    "   PERFORM set_config('pai.generation_bumped', 'on', true);"
    "  END IF;"
    "  RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER pai_records_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
    " ON pai_records FOR EACH STATEMENT EXECUTE FUNCTION pai_generation_bump();",
    /* 4: what changed since a point (store_changes): each record's writing
     * transaction and the deleted records' tombstones (pg_changes.c). */
    pg_migration_changes,
};

const pg_query_t pg_queries[Q__COUNT] = {
    [Q_GET] = {"pai_get", 2, "SELECT json FROM pai_records WHERE kind = $1 AND key = $2"},
    [Q_PUT] = {"pai_put", 4,
               "INSERT INTO pai_records (kind, key, seq, json) VALUES ($1, $2, $3, $4)"
               " ON CONFLICT (kind, key) DO UPDATE SET seq = EXCLUDED.seq, json = EXCLUDED.json"},
    [Q_INSERT] = {"pai_insert", 4,
                  "INSERT INTO pai_records (kind, key, seq, json) VALUES ($1, $2, $3, $4)"
                  " ON CONFLICT (kind, key) DO NOTHING"},
    [Q_DEL] = {"pai_del", 2, "DELETE FROM pai_records WHERE kind = $1 AND key = $2"},
    /* scans: kind, key, seq, json (store_range_t) */
    [Q_SCAN] = {"pai_scan", 1,
                "SELECT kind, key, seq, json FROM pai_records WHERE kind = $1 ORDER BY seq, key"},
    [Q_SCAN_RANGE] = {"pai_scan_range", 3,
                      "SELECT kind, key, seq, json FROM pai_records WHERE kind = $1"
                      " AND key >= $2 AND key < $3 ORDER BY key"},
    [Q_SCAN_ALL] = {"pai_scan_all", 0,
                    "SELECT kind, key, seq, json FROM pai_records ORDER BY kind, key"},
};

struct pg_store {
    char *url;
    pg_link_t link; /* what every connection shares: URL, timeout, backoff */
    conn_t writer;

    conn_t readers[PG_READ_POOL];
    bool reader_busy[PG_READ_POOL];
    pthread_mutex_t rlock;
    pthread_cond_t rcond;

    /* High availability: the election's own connection (created on first
     * use, by the elector thread) and the fence the writer checks. */
    pg_lease_t *lease;
    pg_changes_t *changes; /* store_changes' own connection (pg_changes.c) */
    _Atomic int64_t fence_term, fence_hold_ms;
};

/* ---- connections ------------------------------------------------------- */

static bool conn_setup(conn_t *c)
{
    /* The server ends a write statement that runs past the bound too (a
     * lock wait), so its work stops when we stop waiting for it.  Not on
     * readers: a scan streams for as long as its caller takes over the
     * rows (a restore, a store copy); each row is awaited with the bound. */
    char sql[96];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %lld",
             (long long)atomic_load(&c->link->timeout_ms));
    if (!conn_cmd(c, "SET synchronous_commit = on") || (c->writer && !conn_cmd(c, sql)))
        return false;
    for (int i = 0; i < Q__COUNT; i++) {
        PGresult *res =
            conn_prepare(c, pg_queries[i].name, pg_queries[i].sql, pg_queries[i].nparams);
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            char m[512];
            if (!c->broken)
                log_error("store: postgres: prepare %s: %s", pg_queries[i].name,
                          pg_msg(c->pg, m, sizeof(m)));
            return false;
        }
    }
    c->ready = true;
    return true;
}

bool conn_ensure(conn_t *c)
{
    if (!conn_reconnect(c))
        return false;
    return c->ready || conn_setup(c);
}

/* ---- migrations -------------------------------------------------------- */

static pai_err_t schema_version(conn_t *c, int *have, char *err, size_t errlen)
{
    PGresult *res =
        conn_exec_params(c, "SELECT coalesce(max(version), 0) FROM pai_schema_migrations", 0, NULL);
    pai_err_t rc = PAI_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        str_to_int(PQgetvalue(res, 0, 0), 0, 1 << 30, have) != PAI_OK) {
        char m[512];
        snprintf(err, errlen, "store: postgres: reading the schema version: %s",
                 pg_msg(c->pg, m, sizeof(m)));
        rc = PAI_E_IO;
    }
    PQclear(res);
    return rc;
}

static pai_err_t record_migration(conn_t *c, int v, char *err, size_t errlen)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", v);
    const char *vals[1] = {num};
    PGresult *res =
        conn_exec_params(c, "INSERT INTO pai_schema_migrations (version) VALUES ($1)", 1, vals);
    pai_err_t rc = PAI_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char m[512];
        snprintf(err, errlen, "store: postgres: migration %d: %s", v, pg_msg(c->pg, m, sizeof(m)));
        rc = PAI_E_IO;
    }
    PQclear(res);
    return rc;
}

static pai_err_t migrate_locked(conn_t *c, char *err, size_t errlen)
{
    int have = 0, want = (int)ARRAY_LEN(migrations);
    pai_err_t rc = schema_version(c, &have, err, errlen);
    if (rc != PAI_OK)
        return rc;
    if (have > want) {
        snprintf(err, errlen, "store schema version %d is newer than this pai (%d)", have, want);
        return PAI_E_BAD_CONFIG;
    }
    for (int v = have; v < want; v++) {
        if (!conn_cmd(c, migrations[v])) {
            char m[512];
            snprintf(err, errlen, "store: postgres: migration %d: %s", v + 1,
                     pg_msg(c->pg, m, sizeof(m)));
            return PAI_E_IO;
        }
        if ((rc = record_migration(c, v + 1, err, errlen)) != PAI_OK)
            return rc;
        log_info("store: applied migration %d", v + 1);
    }
    return PAI_OK;
}

static pai_err_t migrate(conn_t *c, char *err, size_t errlen)
{
    char m[512];
    if (!conn_cmd(c, "BEGIN") ||
        !conn_cmd(c, "SELECT pg_advisory_xact_lock(x'" PG_MIGRATION_LOCK "'::bigint)") ||
        !conn_cmd(c, "CREATE TABLE IF NOT EXISTS pai_schema_migrations (version integer PRIMARY"
                     " KEY, applied_at timestamptz NOT NULL DEFAULT now())")) {
        snprintf(err, errlen, "store: postgres: preparing migrations: %s",
                 pg_msg(c->pg, m, sizeof(m)));
        (void)conn_cmd(c, "ROLLBACK");
        return PAI_E_IO;
    }
    pai_err_t rc = migrate_locked(c, err, errlen);
    if (rc != PAI_OK) {
        (void)conn_cmd(c, "ROLLBACK");
        return rc;
    }
    if (!conn_cmd(c, "COMMIT")) {
        snprintf(err, errlen, "store: postgres: committing migrations: %s",
                 pg_msg(c->pg, m, sizeof(m)));
        return PAI_E_IO;
    }
    return PAI_OK;
}

/* ---- writes (pg_write.c) ---------------------------------------------- */

/* Run one group of requests in one transaction, under the fence set last. */
static void pg_commit_group(void *be, store_req_t *list)
{
    pg_store_t *st = be;
    st->writer.fence_term = atomic_load(&st->fence_term);
    st->writer.fence_hold_ms = atomic_load(&st->fence_hold_ms);
    pg_write_group(&st->writer, list);
}

/* ---- reads ------------------------------------------------------------- */

static int free_slot(pg_store_t *st)
{
    for (int i = 0; i < PG_READ_POOL; i++)
        if (!st->reader_busy[i])
            return i;
    return -1;
}

/* Wait up to PG_POOL_WAIT_MS for a pool slot; -1 when none came free. */
static int reader_slot(pg_store_t *st)
{
    struct timespec until = time_after_ms(CLOCK_REALTIME, PG_POOL_WAIT_MS);
    pthread_mutex_lock(&st->rlock);
    int slot;
    while ((slot = free_slot(st)) < 0)
        if (pthread_cond_timedwait(&st->rcond, &st->rlock, &until) != 0)
            break;
    if (slot < 0)
        slot = free_slot(st);
    if (slot >= 0)
        st->reader_busy[slot] = true;
    pthread_mutex_unlock(&st->rlock);
    return slot;
}

/* A ready read connection: pooled (*slot >= 0) or temporary (*slot = -1). */
static conn_t *reader_get(pg_store_t *st, conn_t *temp, int *slot)
{
    *slot = reader_slot(st);
    conn_t *c = *slot >= 0 ? &st->readers[*slot] : temp;
    if (*slot < 0)
        *c = (conn_t){.link = &st->link};
    /* opens (or reopens) it unless the database is known down */
    if (conn_ensure(c))
        return c;
    if (*slot < 0)
        conn_close(c);
    else {
        pthread_mutex_lock(&st->rlock);
        st->reader_busy[*slot] = false;
        pthread_cond_signal(&st->rcond);
        pthread_mutex_unlock(&st->rlock);
    }
    return NULL;
}

static void reader_put(pg_store_t *st, conn_t *c, int slot)
{
    if (slot < 0) {
        conn_close(c);
        return;
    }
    pthread_mutex_lock(&st->rlock);
    st->reader_busy[slot] = false;
    pthread_cond_signal(&st->rcond);
    pthread_mutex_unlock(&st->rlock);
}

/* A read failed: worth one retry when the connection turned out broken
 * (the server restarted or ended the session while it sat in the pool). */
static bool read_retryable(const conn_t *c, int attempt)
{
    /* not after a timeout: a second wait would double the bound */
    return attempt == 0 && !c->broken && PQstatus(c->pg) != CONNECTION_OK;
}

static pai_err_t get_once(conn_t *c, const char *kind, const char *key, char **json_out,
                          int attempt)
{
    const char *vals[2] = {kind, key};
    PGresult *res = conn_exec_prepared(c, pg_queries[Q_GET].name, 2, vals);
    pai_err_t rc = PAI_E_NOT_FOUND;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        char m[512];
        if (!read_retryable(c, attempt))
            log_error("store: postgres: get %s/%s: %s", kind, key,
                      c->broken ? "timed out" : pg_msg(c->pg, m, sizeof(m)));
        rc = conn_err(c);
    } else if (PQntuples(res) > 0) {
        *json_out = xstrdup(PQgetvalue(res, 0, 0));
        rc = PAI_OK;
    }
    PQclear(res);
    return rc;
}

static pai_err_t pg_get(void *be, const char *kind, const char *key, char **json_out)
{
    pg_store_t *st = be;
    conn_t temp, *c;
    int slot;
    *json_out = NULL;
    if (!(c = reader_get(st, &temp, &slot)))
        return PAI_E_UNAVAILABLE;
    pai_err_t rc = get_once(c, kind, key, json_out, 0);
    if (rc != PAI_OK && rc != PAI_E_NOT_FOUND && read_retryable(c, 0))
        rc = conn_ensure(c) ? get_once(c, kind, key, json_out, 1) : PAI_E_UNAVAILABLE;
    reader_put(st, c, slot);
    return rc;
}

/* Read the streamed rows of a started scan; drains the rest after a stop.
 * *rows counts the rows handed to cb. */
static pai_err_t scan_rows(conn_t *c, const store_range_t *q, store_scan_all_fn cb, void *ud,
                           long *rows, int attempt)
{
    pai_err_t rc = PAI_OK;
    bool stopped = false;
    PGresult *res;
    while ((res = conn_result(c))) {
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_SINGLE_TUPLE && !stopped && rc == PAI_OK) {
            int64_t seq = 0;
            (*rows)++;
            if (str_to_i64(PQgetvalue(res, 0, 2), INT64_MIN, INT64_MAX, &seq) != PAI_OK)
                rc = PAI_E_IO;
            else if (cb(ud, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), seq,
                        PQgetvalue(res, 0, 3)))
                stopped = true;
        } else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK) {
            char m[512];
            if (*rows > 0 || !read_retryable(c, attempt))
                log_error("store: postgres: scan %s: %s", q->kind ? q->kind : "(all)",
                          pg_msg(c->pg, m, sizeof(m)));
            rc = conn_err(c);
        }
        PQclear(res);
    }
    return c->broken ? PAI_E_UNAVAILABLE : rc; /* timed out between two rows */
}

static pai_err_t scan_once(conn_t *c, const store_range_t *q, store_scan_all_fn cb, void *ud,
                           long *rows, int attempt)
{
    int which = !q->kind ? Q_SCAN_ALL : q->lo ? Q_SCAN_RANGE : Q_SCAN;
    const char *vals[3] = {q->kind, q->lo, q->hi};
    if (!PQsendQueryPrepared(c->pg, pg_queries[which].name, pg_queries[which].nparams, vals, NULL,
                             NULL, 0)) {
        char m[512];
        if (!read_retryable(c, attempt))
            log_error("store: postgres: scan %s: %s", q->kind ? q->kind : "(all)",
                      pg_msg(c->pg, m, sizeof(m)));
        return conn_err(c);
    }
    (void)PQsetSingleRowMode(c->pg);
    if (!conn_flush(c))
        return PAI_E_UNAVAILABLE;
    return scan_rows(c, q, cb, ud, rows, attempt);
}

static pai_err_t pg_scan(void *be, const store_range_t *q, store_scan_all_fn cb, void *ud)
{
    pg_store_t *st = be;
    conn_t temp, *c;
    int slot;
    long rows = 0;
    if (!(c = reader_get(st, &temp, &slot)))
        return PAI_E_UNAVAILABLE;
    pai_err_t rc = scan_once(c, q, cb, ud, &rows, 0);
    /* retry only when the caller has seen nothing yet */
    if (rc != PAI_OK && rows == 0 && read_retryable(c, 0))
        rc = conn_ensure(c) ? scan_once(c, q, cb, ud, &rows, 1) : PAI_E_UNAVAILABLE;
    reader_put(st, c, slot);
    return rc;
}

/* ---- open / close ------------------------------------------------------ */

static pai_err_t check_url(const char *url, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &msg);
    if (!opts) {
        char m[400];
        str_copy(m, msg ? msg : "out of memory", sizeof(m));
        for (char *p = m; *p; p++)
            if (*p == '\n')
                *p = p[1] ? ' ' : '\0';
        snprintf(err, errlen, "store: bad PostgreSQL URL: %s", m);
        PQfreemem(msg);
        return PAI_E_INVALID;
    }
    PQconninfoFree(opts);
    return PAI_OK;
}

static void pg_close(void *be);

static pai_err_t pg_open(const char *url, void **out, char *err, size_t errlen)
{
    *out = NULL;
    pai_err_t rc = check_url(url, err, errlen);
    if (rc != PAI_OK)
        return rc;
    if (!PQisthreadsafe()) {
        snprintf(err, errlen, "store: this libpq is not thread-safe");
        return PAI_E_BAD_CONFIG;
    }
    pg_store_t *st = xcalloc(1, sizeof(*st));
    st->url = xstrdup(url);
    st->link.url = st->url;
    atomic_store(&st->link.timeout_ms, PG_TIMEOUT_MS);
    for (int i = 0; i < PG_READ_POOL; i++)
        st->readers[i].link = &st->link;
    pthread_mutex_init(&st->rlock, NULL);
    pthread_cond_init(&st->rcond, NULL);
    st->writer.writer = true;
    st->changes = pg_changes_new(&st->link);
    if ((rc = conn_open(&st->writer, &st->link, err, errlen)) != PAI_OK)
        goto fail;
    if ((rc = migrate(&st->writer, err, errlen)) != PAI_OK)
        goto fail;
    if (!conn_setup(&st->writer)) {
        char m[512];
        snprintf(err, errlen, "store: postgres: preparing statements: %s",
                 pg_msg(st->writer.pg, m, sizeof(m)));
        rc = PAI_E_IO;
        goto fail;
    }
    *out = st;
    return PAI_OK;
fail:
    pg_close(st);
    return rc;
}

/* The generation (migration 3): committed writes only (READ COMMITTED). */
static pai_err_t pg_generation(void *be, int64_t *gen)
{
    pg_store_t *st = be;
    conn_t temp, *c;
    int slot;
    if (!(c = reader_get(st, &temp, &slot)))
        return PAI_E_UNAVAILABLE;
    PGresult *res = conn_exec_params(c, "SELECT gen FROM pai_generation WHERE id = 1", 0, NULL);
    pai_err_t rc = PAI_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = conn_err(c);
    else if (str_to_i64(PQgetvalue(res, 0, 0), 0, INT64_MAX, gen) != PAI_OK)
        rc = PAI_E_IO;
    PQclear(res);
    reader_put(st, c, slot);
    return rc;
}

static pai_err_t pg_changes_op(void *be, const char *since, store_scan_all_fn cb, void *ud,
                               char **point)
{
    return pg_changes_read(((pg_store_t *)be)->changes, since, cb, ud, point);
}

/* ---- high availability (pg_lease.c) ------------------------------------ */

static pai_err_t pg_lease_acquire_op(void *be, const char *holder, const char *url, int64_t term,
                                     int64_t lease_ms, store_lease_t *out)
{
    pg_store_t *st = be;
    if (!st->lease) /* the elector's thread is the only caller */
        st->lease = pg_lease_new(st->url, lease_ms / 3);
    return pg_lease_acquire(st->lease, holder, url, term, lease_ms, out);
}

static pai_err_t pg_lease_release_op(void *be, const char *holder, int64_t term)
{
    pg_store_t *st = be;
    return st->lease ? pg_lease_release(st->lease, holder, term) : PAI_OK;
}

static void pg_set_fence(void *be, int64_t term, int64_t hold_ms)
{
    pg_store_t *st = be;
    atomic_store(&st->fence_hold_ms, hold_ms);
    atomic_store(&st->fence_term, term);
}

static void pg_set_timeout(void *be, int64_t ms)
{
    pg_store_t *st = be;
    atomic_store(&st->link.timeout_ms, ms);
    /* statement_timeout follows at each connection's next setup */
}

static void pg_close(void *be)
{
    pg_store_t *st = be;
    if (!st)
        return;
    pg_lease_free(st->lease);
    pg_changes_free(st->changes);
    for (int i = 0; i < PG_READ_POOL; i++)
        conn_close(&st->readers[i]);
    conn_close(&st->writer);
    pthread_mutex_destroy(&st->rlock);
    pthread_cond_destroy(&st->rcond);
    free(st->url);
    free(st);
}

const store_ops_t store_pg_ops = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .commit_group = pg_commit_group,
    .get = pg_get,
    .scan = pg_scan,
    .lease_acquire = pg_lease_acquire_op,
    .lease_release = pg_lease_release_op,
    .set_fence = pg_set_fence,
    .set_timeout = pg_set_timeout,
    .generation = pg_generation,
    .changes = pg_changes_op,
};
