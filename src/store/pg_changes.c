/*
 * pg_changes.c - what changed in pai_records since a point: a standby's
 * incremental refresh (store_changes in store.h; docs/architecture.md,
 * "What a standby serves").
 *
 * DESIGN
 *   - A point is a PostgreSQL snapshot (pg_current_snapshot(), as text):
 *     which transactions had committed when it was taken.  Migration 4
 *     stamps every record with the full id (xid8) of the transaction that
 *     wrote its current version (`wxid`, a BEFORE row trigger: every writer,
 *     the leader's group commit, `pai store migrate`, a hand fix in psql),
 *     and a deleted record leaves a tombstone (pai_deleted: kind, key, the
 *     deleting transaction's xid8, when).
 *   - The changes since a point S are the records and tombstones whose
 *     transaction S does not see: wxid >= pg_snapshot_xmin(S) (an index
 *     range) AND NOT pg_visible_in_snapshot(wxid, S).  They are read in one
 *     REPEATABLE READ transaction, whose snapshot S' is the new point.
 *   - Why no change can be missed (the trap of a plain sequence: numbers
 *     are taken in one order and committed in another, so a reader that
 *     saw 11 may never see 10): a change's transaction T either is visible
 *     in S (it committed before S was taken, so the read that S stands for
 *     saw it: a whole read that took S first, or the change read that took
 *     S as its own snapshot), or it is not visible in S, and then:
 *       * T committed before S' was taken: its rows are visible to the
 *         change read and match the filter, so they are returned now;
 *       * T was still running at S' (or started after): the change read
 *         does not see its rows, and S' does not see T either, so the next
 *         read (from S') returns them.
 *     No order of ids is assumed, only visibility, which is what
 *     PostgreSQL defines exactly; several writers at once are fine.
 *     Transaction ids are 64-bit (xid8): no wraparound.
 *   - A record deleted since S shows as a tombstone; one that was deleted
 *     and written again shows as a record (the read sees the store as of
 *     S', so only keys absent at S' are reported deleted).
 *   - Tombstones are kept PG_CHANGES_KEEP (15 minutes; pai_changes_prune,
 *     run by a DELETE statement's trigger); pruning moves
 *     pai_changes_pruned.upto to the highest pruned id, and a TRUNCATE of
 *     pai_records moves it to its own id.  A point whose xmin is not above
 *     upto may have lost a tombstone: PAI_E_NOT_FOUND, and the reader
 *     builds its view whole again (a standby cut off for that long).
 *   - One dedicated connection (like the lease's), used by one thread (a
 *     standby's refresher); a mutex keeps it safe anyway.  Every round
 *     trip bounded by the store's timeout (pg_conn.h).
 */
#include "store/pg_changes.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* Migration 4.  Existing rows get wxid 0: written before any point. */
const char pg_migration_changes[] =
    "ALTER TABLE pai_records ADD COLUMN wxid xid8 NOT NULL DEFAULT '0';"
    "CREATE INDEX pai_records_wxid ON pai_records (wxid);"
    "CREATE TABLE pai_deleted (kind text NOT NULL, key text COLLATE \"C\" NOT NULL,"
    " wxid xid8 NOT NULL DEFAULT pg_current_xact_id(), at timestamptz NOT NULL DEFAULT now());"
    "CREATE INDEX pai_deleted_wxid ON pai_deleted (wxid);"
    "CREATE INDEX pai_deleted_at ON pai_deleted (at);"
    "CREATE TABLE pai_changes_pruned (id integer PRIMARY KEY CHECK (id = 1), upto xid8 NOT NULL);"
    "INSERT INTO pai_changes_pruned VALUES (1, '0');"
    "CREATE FUNCTION pai_records_stamp() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN NEW.wxid := pg_current_xact_id(); RETURN NEW; END $f$;"
    "CREATE TRIGGER pai_records_stamp BEFORE INSERT OR UPDATE ON pai_records"
    " FOR EACH ROW EXECUTE FUNCTION pai_records_stamp();"
    "CREATE FUNCTION pai_records_tombstone() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN INSERT INTO pai_deleted (kind, key) VALUES (OLD.kind, OLD.key); RETURN NULL; END $f$;"
    "CREATE TRIGGER pai_records_tombstone AFTER DELETE ON pai_records"
    " FOR EACH ROW EXECUTE FUNCTION pai_records_tombstone();"
    /* tombstones older than keep go; upto remembers the newest gone */
    "CREATE FUNCTION pai_changes_prune(keep interval) RETURNS bigint LANGUAGE plpgsql AS $f$"
    " DECLARE n bigint; top xid8;"
    " BEGIN"
    "  WITH d AS (DELETE FROM pai_deleted WHERE at < now() - keep RETURNING wxid)"
    "   SELECT count(*), max(wxid) INTO n, top FROM d;"
    "  IF top IS NOT NULL THEN"
    "   UPDATE pai_changes_pruned SET upto = greatest(upto, top) WHERE id = 1;"
    "  END IF;"
    "  RETURN n;"
    " END $f$;"
    "CREATE FUNCTION pai_changes_pruning() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    "  IF TG_OP = 'TRUNCATE' THEN"
    "   DELETE FROM pai_deleted;"
    "   UPDATE pai_changes_pruned SET upto = greatest(upto, pg_current_xact_id()) WHERE id = 1;"
    "  ELSE"
    "   PERFORM pai_changes_prune(interval '15 minutes');"
    "  END IF;"
    "  RETURN NULL;"
    " END $f$;"
    "CREATE TRIGGER pai_records_pruning AFTER DELETE OR TRUNCATE ON pai_records"
    " FOR EACH STATEMENT EXECUTE FUNCTION pai_changes_pruning();";

/* The new point, and whether the changes since $1 are all still known
 * (NULL $1: no question). */
static const char *const SQL_POINT =
    "SELECT pg_current_snapshot()::text, $1::text IS NULL OR"
    " (SELECT upto FROM pai_changes_pruned WHERE id = 1) < pg_snapshot_xmin($1::pg_snapshot)";

/* Records written, then records gone (json NULL), since $1. */
static const char *const SQL_CHANGES =
    "SELECT kind, key, seq, json FROM pai_records"
    " WHERE wxid >= pg_snapshot_xmin($1::pg_snapshot)"
    " AND NOT pg_visible_in_snapshot(wxid, $1::pg_snapshot)"
    " UNION ALL "
    "SELECT DISTINCT d.kind, d.key, 0, NULL FROM pai_deleted d"
    " WHERE d.wxid >= pg_snapshot_xmin($1::pg_snapshot)"
    " AND NOT pg_visible_in_snapshot(d.wxid, $1::pg_snapshot)"
    " AND NOT EXISTS (SELECT 1 FROM pai_records r WHERE r.kind = d.kind AND r.key = d.key)";

struct pg_changes {
    conn_t c;
    pthread_mutex_t mu;
};

pg_changes_t *pg_changes_new(const pg_link_t *link)
{
    pg_changes_t *ch = xcalloc(1, sizeof(*ch));
    ch->c.link = link;
    pthread_mutex_init(&ch->mu, NULL);
    return ch;
}

void pg_changes_free(pg_changes_t *ch)
{
    if (!ch)
        return;
    conn_close(&ch->c);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

static bool cmd(pg_changes_t *ch, const char *sql)
{
    return conn_cmd(&ch->c, sql);
}

/* The new point into *point; *known: the changes since `since` are all
 * still kept. */
static pai_err_t read_point(pg_changes_t *ch, const char *since, char **point, bool *known)
{
    const char *vals[1] = {since};
    PGresult *res = conn_exec_params(&ch->c, SQL_POINT, 1, vals);
    pai_err_t rc = PAI_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char m[512];
        log_warn("store: postgres: reading a change point: %s",
                 ch->c.broken ? "timed out" : pg_msg(ch->c.pg, m, sizeof(m)));
        rc = res_err(&ch->c, res);
    } else {
        *point = xstrdup(PQgetvalue(res, 0, 0));
        *known = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    }
    PQclear(res);
    return rc;
}

/* Stream the changes since `since` to cb. */
static pai_err_t read_rows(pg_changes_t *ch, const char *since, store_scan_all_fn cb, void *ud)
{
    const char *vals[1] = {since};
    if (!PQsendQueryParams(ch->c.pg, SQL_CHANGES, 1, NULL, vals, NULL, NULL, 0))
        return conn_err(&ch->c);
    (void)PQsetSingleRowMode(ch->c.pg);
    if (!conn_flush(&ch->c))
        return PAI_E_UNAVAILABLE;
    pai_err_t rc = PAI_OK;
    PGresult *res;
    while ((res = conn_result(&ch->c))) {
        ExecStatusType s = PQresultStatus(res);
        if (s == PGRES_SINGLE_TUPLE && rc == PAI_OK) {
            int64_t seq = 0;
            const char *json = PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3);
            if (str_to_i64(PQgetvalue(res, 0, 2), INT64_MIN, INT64_MAX, &seq) != PAI_OK)
                rc = PAI_E_IO;
            else if (cb(ud, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), seq, json))
                rc = PAI_E_INTERNAL; /* the caller stopped: no point */
        } else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK) {
            char m[512];
            log_warn("store: postgres: reading changes: %s", pg_msg(ch->c.pg, m, sizeof(m)));
            rc = res_err(&ch->c, res);
        }
        PQclear(res);
    }
    return ch->c.broken ? PAI_E_UNAVAILABLE : rc;
}

static pai_err_t read_locked(pg_changes_t *ch, const char *since, store_scan_all_fn cb, void *ud,
                             char **point)
{
    if (!ch->c.pg) { /* the first use */
        char err[600];
        pai_err_t orc = conn_open(&ch->c, ch->c.link, err, sizeof(err));
        if (orc != PAI_OK) {
            log_warn("store: %s", err);
            conn_close(&ch->c);
            return orc;
        }
    } else if (!conn_reconnect(&ch->c)) {
        return PAI_E_UNAVAILABLE;
    }
    if (!cmd(ch, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        return conn_err(&ch->c);
    bool known = false;
    pai_err_t rc = read_point(ch, since, point, &known);
    if (rc == PAI_OK && !known)
        rc = PAI_E_NOT_FOUND;
    if (rc == PAI_OK && since)
        rc = read_rows(ch, since, cb, ud);
    if (conn_ok(&ch->c) && !cmd(ch, rc == PAI_OK ? "COMMIT" : "ROLLBACK") && rc == PAI_OK)
        rc = conn_err(&ch->c);
    if (rc != PAI_OK) {
        free(*point);
        *point = NULL;
    }
    return rc;
}

pai_err_t pg_changes_read(pg_changes_t *ch, const char *since, store_scan_all_fn cb, void *ud,
                          char **point)
{
    *point = NULL;
    pthread_mutex_lock(&ch->mu);
    pai_err_t rc = read_locked(ch, since, cb, ud, point);
    pthread_mutex_unlock(&ch->mu);
    return rc;
}
