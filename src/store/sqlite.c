/*
 * sqlite.c - the embedded store backend: SQLite in WAL mode with group commit.
 *
 * DESIGN
 *   - One table `records(kind, key, seq, json)`, a rowid table with a
 *     unique index on (kind, key) and a scan index on (kind, seq, key) for
 *     the kinds read in seq order; schema changes are the numbered
 *     migrations in migrations[]; PRAGMA user_version holds the number
 *     applied.  Every statement is prepared once per connection.
 *   - Writes: group commit (store.c).  The writer leading a group owns the write
 *     connection; a group runs in one transaction (each request inside its
 *     own SAVEPOINT so a failing request rolls back alone) and COMMITs once
 *     (one fsync with synchronous=FULL), so N concurrent writers share one
 *     fsync.  A group of one request needs no savepoint.  The savepoints'
 *     journal is kept in memory (temp_store=MEMORY): it only undoes a
 *     request inside its open transaction, and in a file it cost an open,
 *     an unlink and writes per group.
 *   - The writer's VFS (sqlite_vfs.c) gathers a commit's WAL frames (two
 *     writes each) into one pwrite before the sync.
 *   - Reads: a small pool of read connections (WAL readers never block the
 *     writer).  When the pool is empty a caller gets a fresh connection that
 *     is closed after use, so a scan callback may call the store again.
 *
 * Invariant: a write call returns only after its change is durable (or
 * failed and left no trace).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "store/store.h"
#include "store/sqlite_vfs.h"
#include "store/store_ops.h"

#define READ_POOL 4

/* The WAL's checkpoint cadence: the writer copies the WAL into the
 * database (a PASSIVE checkpoint, at the end of the commit that crossed
 * it) once the WAL holds this many frames, and the next commit starts the
 * WAL over from its beginning.  A job's record is rewritten by several
 * commits, and a page that many commits rewrote is copied once per
 * checkpoint: SQLite's default of 1,000 frames (~4 MiB) copied ~200 pages
 * per ~46 commits in a bench-e2e burst; 4,000 copies fewer than half as
 * many per commit, with a quarter of the database syncs
 * (docs/benchmarks-history.md, "The server's store side, seventh round"). */
#define WAL_CHECKPOINT_PAGES 4000
/* The WAL's bound in bytes: its file is cut back to this at a restart when
 * it grew past it (a reader that held an old snapshot while commits went
 * on, one huge commit).  Above the ~16.5 MiB the cadence fills, so that a
 * burst's WAL is never cut and grown again. */
#define WAL_SIZE_LIMIT 25165824
#define STR_(x)        #x
#define STR(x)         STR_(x)

typedef struct sqlite_store sqlite_store_t;

/* The kinds never scanned in seq order (a job's config, commands and SSH
 * keys: read by key alone): the scan index leaves them out.  Migration 2
 * made the index with this text; a change needs a migration of its own. */
#define UNSCANNED "('jobcfg', 'jobcmd', 'jobssh')"
/* The same condition as migration 3 wrote it, and as a scan must repeat it
 * for SQLite to read the partial index: three comparisons.  With NOT IN,
 * every statement that may add or remove an entry of the index (each
 * insert, upsert and delete) built a temporary b-tree of the three names
 * to test its row against (an OpenEphemeral: a pager opened, filled and
 * closed; three in the full upsert), a fifth of the store's CPU in
 * bench/storereplay (docs/benchmarks.md, "The store's partial index"). */
#define SCANNED_WHERE "kind <> 'jobcfg' AND kind <> 'jobcmd' AND kind <> 'jobssh'"

static const char *const migrations[] = {
    /* 1: the record table and its scan order. */
    "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0,"
    " json TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID;"
    "CREATE INDEX records_scan ON records (kind, seq, key);",
    /* 2: the records in a rowid table, (kind, key) a unique index beside
     * it, and the scan index without the kinds nobody scans.  A new record
     * goes to the table's last page (a rowid one past the largest), where
     * a WITHOUT ROWID table put it in the middle of its kind's keys: a full
     * leaf there split into three pages and rewrote its parent.  In a
     * bench-e2e run's commits replayed: 17.6 -> 11.7 WAL frames per job
     * (docs/benchmarks-history.md, "The server's store side, seventh round"). */
    "CREATE TABLE records_v2 (kind TEXT NOT NULL, key TEXT NOT NULL,"
    " seq INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL, PRIMARY KEY (kind, key));"
    "INSERT INTO records_v2 (kind, key, seq, json) SELECT kind, key, seq, json FROM records"
    " ORDER BY kind, key;"
    "DROP TABLE records;"
    "ALTER TABLE records_v2 RENAME TO records;"
    "CREATE INDEX records_scan ON records (kind, seq, key) WHERE kind NOT IN " UNSCANNED ";",
    /* 3: the scan index's condition without NOT IN (SCANNED_WHERE): the
     * same entries, rebuilt once. */
    "DROP INDEX records_scan;"
    "CREATE INDEX records_scan ON records (kind, seq, key) WHERE " SCANNED_WHERE ";",
};

/* The reads first: a read connection prepares only those (SQL__READS). */
enum {
    SQL_GET,
    SQL_SCAN,
    SQL_SCAN_UNSCANNED,
    SQL_SCAN_RANGE,
    SQL_SCAN_ALL,
    SQL__READS,
    SQL_PUT = SQL__READS,
    SQL_REWRITE,
    SQL_INSERT,
    SQL_DEL,
    /* the writer's transaction control, prepared once instead of parsed by
     * sqlite3_exec at every group and request */
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_SAVEPOINT,
    SQL_RELEASE,
    SQL_ROLLBACK_TO,
    SQL__COUNT
};
static const char *const sql_text[SQL__COUNT] = {
    [SQL_GET] = "SELECT json FROM records WHERE kind = ?1 AND key = ?2",
    /* scans: kind, key, seq, json (store_range_t) */
    /* the index's own condition, so that SQLite reads the partial index */
    [SQL_SCAN] = ("SELECT kind, key, seq, json FROM records WHERE kind = ?1"
                  " AND " SCANNED_WHERE " ORDER BY seq, key"),
    /* a kind the index leaves out: its records by key, then sorted */
    [SQL_SCAN_UNSCANNED] =
        "SELECT kind, key, seq, json FROM records WHERE kind = ?1 ORDER BY seq, key",
    /* parenthesized: one string split over two lines (clang's -Wstring-concatenation) */
    [SQL_SCAN_RANGE] = ("SELECT kind, key, seq, json FROM records WHERE kind = ?1 AND key >= ?2"
                        " AND key < ?3 ORDER BY key"),
    [SQL_SCAN_ALL] = "SELECT kind, key, seq, json FROM records ORDER BY kind, key",
    /* an upsert, not INSERT OR REPLACE: the row is updated in place */
    [SQL_PUT] = ("INSERT INTO records (kind, key, seq, json) VALUES (?1, ?2, ?3, ?4)"
                 " ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq, json = excluded.json"),
    /* a put tried first: an insert, or a rewrite of the json alone when
     * the record's seq is unchanged (a job's every flush), so that the
     * scan index, which holds no json, is not touched.  The full upsert
     * sets seq, which puts the index's entry in the statement even when
     * its value is the same, so the index's leaf went to the WAL too: on
     * this schema a commit that rewrites one job record wrote 2-3.5 WAL
     * frames with it, 1-1.75 without (docs/benchmarks-history.md).  A new key
     * (events, commands) is inserted by this one statement; only a new
     * seq for an existing key needs the full upsert after it. */
    [SQL_REWRITE] = ("INSERT INTO records (kind, key, seq, json) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT (kind, key) DO UPDATE SET json = excluded.json"
                     " WHERE records.seq = excluded.seq"),
    [SQL_INSERT] = "INSERT INTO records (kind, key, seq, json) VALUES (?1, ?2, ?3, ?4)",
    [SQL_DEL] = "DELETE FROM records WHERE kind = ?1 AND key = ?2",
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_SAVEPOINT] = "SAVEPOINT req",
    [SQL_RELEASE] = "RELEASE req",
    [SQL_ROLLBACK_TO] = "ROLLBACK TO req",
};

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st[SQL__COUNT];
} conn_t;

struct sqlite_store {
    char *path;
    conn_t writer;
    conn_t readers[READ_POOL];
    bool reader_busy[READ_POOL];
    pthread_mutex_t rlock;
};

static void conn_close(conn_t *c)
{
    for (int i = 0; i < SQL__COUNT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    sqlite3_close(c->db);
    c->db = NULL;
}

static pai_err_t conn_exec(conn_t *c, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        if (err)
            snprintf(err, errlen, "sqlite: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return PAI_E_IO;
    }
    return PAI_OK;
}

static pai_err_t conn_open(conn_t *c, const char *path, bool writer, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    /* the writer's WAL writes gathered: one pwrite per commit (sqlite_vfs.c) */
    if (sqlite3_open_v2(path, &c->db, flags, writer ? sqlite_gather_vfs() : NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        conn_close(c);
        return PAI_E_IO;
    }
    sqlite3_busy_timeout(c->db, 10000);
    if (writer &&
        conn_exec(c,
                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;"
                  " PRAGMA journal_size_limit=" STR(WAL_SIZE_LIMIT) ";",
                  err, errlen) != PAI_OK) {
        conn_close(c);
        return PAI_E_IO;
    }
    if (writer)
        sqlite3_wal_autocheckpoint(c->db, WAL_CHECKPOINT_PAGES);
    return PAI_OK;
}

/* Prepare the first n statements of sql_text (SQL__READS or SQL__COUNT). */
static pai_err_t conn_prepare(conn_t *c, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        if (sqlite3_prepare_v3(c->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &c->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "sqlite: prepare: %s", sqlite3_errmsg(c->db));
            return PAI_E_IO;
        }
    }
    return PAI_OK;
}

static pai_err_t migrate(conn_t *c, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int have = 0;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        have = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int want = (int)ARRAY_LEN(migrations);
    if (have > want) {
        snprintf(err, errlen, "store schema version %d is newer than this pai (%d)", have, want);
        return PAI_E_BAD_CONFIG;
    }
    for (int v = have; v < want; v++) {
        char ver[64];
        snprintf(ver, sizeof(ver), "PRAGMA user_version = %d;", v + 1);
        if (conn_exec(c, "BEGIN IMMEDIATE", err, errlen) != PAI_OK)
            return PAI_E_IO;
        if (conn_exec(c, migrations[v], err, errlen) != PAI_OK ||
            conn_exec(c, ver, err, errlen) != PAI_OK) {
            (void)conn_exec(c, "ROLLBACK", NULL, 0);
            return PAI_E_IO;
        }
        if (conn_exec(c, "COMMIT", err, errlen) != PAI_OK)
            return PAI_E_IO;
        log_info("store: applied migration %d", v + 1);
    }
    return PAI_OK;
}

/* ---- writes ------------------------------------------------------------ */

/* Run statement `which` of c for op: PAI_OK, PAI_E_EXISTS on a
 * constraint (an INSERT's key taken) or PAI_E_IO. */
static pai_err_t step_op(conn_t *c, int which, const store_op_t *op)
{
    sqlite3_stmt *st = c->st[which];
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, op->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, op->key, -1, SQLITE_STATIC);
    if (which != SQL_DEL) {
        sqlite3_bind_int64(st, 3, op->seq);
        sqlite3_bind_text(st, 4, op->json, -1, SQLITE_STATIC);
    }
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (r == SQLITE_CONSTRAINT)
        return PAI_E_EXISTS;
    if (r != SQLITE_DONE) {
        log_error("store: %s %s/%s: %s", which == SQL_DEL ? "delete" : "write", op->kind, op->key,
                  sqlite3_errmsg(c->db));
        return PAI_E_IO;
    }
    return PAI_OK;
}

static pai_err_t apply_op(conn_t *c, const store_op_t *op, bool strict_del)
{
    if (!op->kind || !op->key || (op->op != STORE_OP_DEL && !op->json))
        return PAI_E_INVALID;
    pai_err_t rc;
    switch (op->op) {
    case STORE_OP_PUT: /* a new key or the same seq: one statement; a new seq: the upsert */
        rc = step_op(c, SQL_REWRITE, op);
        if (rc == PAI_OK && sqlite3_changes(c->db) == 0)
            rc = step_op(c, SQL_PUT, op);
        return rc;
    case STORE_OP_INSERT:
        return step_op(c, SQL_INSERT, op);
    case STORE_OP_DEL:
        rc = step_op(c, SQL_DEL, op);
        if (rc == PAI_OK && strict_del && sqlite3_changes(c->db) == 0)
            return PAI_E_NOT_FOUND;
        return rc;
    }
    return PAI_E_INVALID;
}

/* Run one prepared statement without results (transaction control). */
static pai_err_t conn_run(conn_t *c, int which)
{
    sqlite3_stmt *st = c->st[which];
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    return r == SQLITE_DONE ? PAI_OK : PAI_E_IO;
}

static pai_err_t apply_ops(conn_t *c, const store_req_t *r)
{
    pai_err_t rc = PAI_OK;
    for (size_t i = 0; i < r->n && rc == PAI_OK; i++)
        rc = apply_op(c, &r->ops[i], r->strict_del);
    return rc;
}

/* One request of a group inside its own savepoint: it fails alone. */
static pai_err_t apply_req(conn_t *c, const store_req_t *r)
{
    if (conn_run(c, SQL_SAVEPOINT) != PAI_OK)
        return PAI_E_IO;
    pai_err_t rc = apply_ops(c, r);
    if (rc != PAI_OK)
        (void)conn_run(c, SQL_ROLLBACK_TO);
    (void)conn_run(c, SQL_RELEASE);
    return rc;
}

static void commit_failed(conn_t *c, store_req_t *list)
{
    log_error("store: commit failed: %s", sqlite3_errmsg(c->db));
    (void)conn_run(c, SQL_ROLLBACK);
    for (store_req_t *r = list; r; r = r->next)
        r->rc = PAI_E_IO;
}

/* Run one group of requests in one transaction.  A group of one request
 * needs no savepoint: when it fails, the whole transaction rolls back,
 * which leaves the same nothing (and saves the savepoint's journal). */
static void sq_commit_group(void *be, store_req_t *list)
{
    sqlite_store_t *st = be;
    conn_t *c = &st->writer;
    pai_err_t txrc = conn_run(c, SQL_BEGIN);
    if (txrc == PAI_OK && !list->next) {
        list->rc = apply_ops(c, list);
        if (list->rc != PAI_OK)
            (void)conn_run(c, SQL_ROLLBACK);
        else if (conn_run(c, SQL_COMMIT) != PAI_OK)
            commit_failed(c, list);
        return;
    }
    for (store_req_t *r = list; r; r = r->next)
        r->rc = txrc == PAI_OK ? apply_req(c, r) : txrc;
    if (txrc == PAI_OK && conn_run(c, SQL_COMMIT) != PAI_OK)
        commit_failed(c, list);
}

/* ---- reads ------------------------------------------------------------- */

/* A read connection: from the pool, or a fresh one (*temp set) when all are busy. */
static conn_t *reader_get(sqlite_store_t *st, conn_t *temp, int *slot)
{
    pthread_mutex_lock(&st->rlock);
    for (int i = 0; i < READ_POOL; i++) {
        if (!st->reader_busy[i]) {
            st->reader_busy[i] = true;
            pthread_mutex_unlock(&st->rlock);
            *slot = i;
            return &st->readers[i];
        }
    }
    pthread_mutex_unlock(&st->rlock);
    char err[256];
    *slot = -1;
    if (conn_open(temp, st->path, false, err, sizeof(err)) != PAI_OK ||
        conn_prepare(temp, SQL__READS, err, sizeof(err)) != PAI_OK) {
        log_error("store: %s", err);
        conn_close(temp);
        return NULL;
    }
    return temp;
}

static void reader_put(sqlite_store_t *st, conn_t *c, int slot)
{
    if (slot < 0) {
        conn_close(c);
        return;
    }
    pthread_mutex_lock(&st->rlock);
    st->reader_busy[slot] = false;
    pthread_mutex_unlock(&st->rlock);
}

static pai_err_t sq_get(void *be, const char *kind, const char *key, char **json_out)
{
    sqlite_store_t *st = be;
    conn_t temp, *c;
    int slot;
    *json_out = NULL;
    if (!(c = reader_get(st, &temp, &slot)))
        return PAI_E_IO;
    sqlite3_stmt *s = c->st[SQL_GET];
    sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    pai_err_t rc = PAI_E_NOT_FOUND;
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        const char *txt = (const char *)sqlite3_column_text(s, 0);
        *json_out = xstrdup(txt ? txt : "");
        rc = PAI_OK;
    } else if (r != SQLITE_DONE) {
        log_error("store: get %s/%s: %s", kind, key, sqlite3_errmsg(c->db));
        rc = PAI_E_IO;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    reader_put(st, c, slot);
    return rc;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    return t ? t : "";
}

/* Has the scan index the records of kind (SCANNED_WHERE)? */
static bool scanned(const char *kind)
{
    static const char *const unscanned[] = {"jobcfg", "jobcmd", "jobssh"};
    for (size_t i = 0; i < ARRAY_LEN(unscanned); i++)
        if (!strcmp(kind, unscanned[i]))
            return false;
    return true;
}

static pai_err_t sq_scan(void *be, const store_range_t *q, store_scan_all_fn cb, void *ud)
{
    sqlite_store_t *st = be;
    conn_t temp, *c;
    int slot;
    if (!(c = reader_get(st, &temp, &slot)))
        return PAI_E_IO;
    sqlite3_stmt *s = c->st[!q->kind           ? SQL_SCAN_ALL
                            : q->lo            ? SQL_SCAN_RANGE
                            : scanned(q->kind) ? SQL_SCAN
                                               : SQL_SCAN_UNSCANNED];
    if (q->kind)
        sqlite3_bind_text(s, 1, q->kind, -1, SQLITE_STATIC);
    if (q->kind && q->lo) {
        sqlite3_bind_text(s, 2, q->lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, q->hi, -1, SQLITE_STATIC);
    }
    pai_err_t rc = PAI_OK;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW)
        if (cb(ud, col_text(s, 0), col_text(s, 1), sqlite3_column_int64(s, 2), col_text(s, 3)))
            break;
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        log_error("store: scan %s: %s", q->kind ? q->kind : "(all)", sqlite3_errmsg(c->db));
        rc = PAI_E_IO;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    reader_put(st, c, slot);
    return rc;
}

/* ---- open / close ------------------------------------------------------ */

static const char *url_to_path(const char *url)
{
    if (str_has_prefix(url, "sqlite://"))
        return url + strlen("sqlite://");
    if (str_has_prefix(url, "sqlite:"))
        return url + strlen("sqlite:");
    return url;
}

static pai_err_t open_conns(sqlite_store_t *st, char *err, size_t errlen)
{
    if (conn_open(&st->writer, st->path, true, err, errlen) != PAI_OK)
        return PAI_E_IO;
    pai_err_t rc = migrate(&st->writer, err, errlen);
    if (rc != PAI_OK)
        return rc;
    if (conn_prepare(&st->writer, SQL__COUNT, err, errlen) != PAI_OK)
        return PAI_E_IO;
    for (int i = 0; i < READ_POOL; i++)
        if (conn_open(&st->readers[i], st->path, false, err, errlen) != PAI_OK ||
            conn_prepare(&st->readers[i], SQL__READS, err, errlen) != PAI_OK)
            return PAI_E_IO;
    return PAI_OK;
}

static void sq_close(void *be);

/* SQLite's memory statistics off (SQLITE_CONFIG_MEMSTATUS), before its
 * first use in the process: with them on (Debian's build leaves them on,
 * and without a lookaside allocator every small block is a malloc), each
 * allocation and free takes a global mutex to count its bytes, which pai
 * never reads.  bench/storereplay: ~8% of the store's CPU (docs/benchmarks.md,
 * "SQLite's memory statistics").  Too late (SQLite already initialized by
 * someone else in the process) it is refused, and nothing changes. */
static void memstatus_off(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static pai_err_t sq_open(const char *url, void **out, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, memstatus_off);
    *out = NULL;
    const char *path = url_to_path(url);
    if (!*path) {
        snprintf(err, errlen, "store: empty path in '%s'", url);
        return PAI_E_INVALID;
    }
    sqlite_store_t *st = xcalloc(1, sizeof(*st));
    st->path = xstrdup(path);
    pthread_mutex_init(&st->rlock, NULL);
    pai_err_t rc = open_conns(st, err, errlen);
    if (rc != PAI_OK) {
        sq_close(st);
        return rc;
    }
    *out = st;
    return PAI_OK;
}

static void sq_close(void *be)
{
    sqlite_store_t *st = be;
    if (!st)
        return;
    for (int i = 0; i < READ_POOL; i++)
        conn_close(&st->readers[i]);
    conn_close(&st->writer);
    pthread_mutex_destroy(&st->rlock);
    free(st->path);
    free(st);
}

const store_ops_t store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .commit_group = sq_commit_group,
    .get = sq_get,
    .scan = sq_scan,
};
