/*
 * pg_lease.c - leader election on PostgreSQL: the lease row and the fence
 * (high availability, docs/architecture.md "High availability").
 *
 * DESIGN
 *   - Two one-row tables (migration 2 in pg.c):
 *       pai_leader (term, holder, url, expires_at): the lease.  Renewed by
 *         its holder; taken over by anyone once expires_at has passed on
 *         the DATABASE's clock (clock_timestamp()), so the servers' clocks
 *         never matter, only the rate at which they run.
 *       pai_fence (term): the fencing token.  Every write transaction of a
 *         leader starts with SELECT pai_fence_check(my_term, hold_ms) (pg.c),
 *         which takes a FOR SHARE lock on that row and raises SQLSTATE
 *         PAI01 when the term is not its own.
 *   - A takeover bumps the term in both tables in ONE transaction.  Its
 *     UPDATE of pai_fence waits for every write transaction that passed the
 *     fence under the old term (their share locks), and every later one
 *     sees the new term and is refused.  So once the new leader's election
 *     has committed, no write of an older term can commit any more: the new
 *     leader reads the store (restore) after that point and sees everything
 *     the old leader ever committed.
 *   - A write transaction that passed the fence cannot hold the row for
 *     ever (a partitioned old leader): pai_fence_check() sets the transaction's
 *     idle_in_transaction_session_timeout to hold_ms, so the database ends
 *     it when its client goes silent; the takeover's lock_timeout bounds its
 *     own wait, and it is simply tried again.
 *   - A renewal (the caller holds the lease under this term, as the last
 *     round found) is one autocommit statement, SQL_RENEW: one round trip
 *     where the election transaction takes four.  Only when it matches
 *     nothing does the round run the election transaction.
 *   - One dedicated connection (not the writer's, which can be busy with a
 *     large group commit), bounded like the store's (pg_conn.h): each round
 *     trip waits at most a third of the lease on the client's side (a
 *     renewal's answer: as long as the lease it renews may last, from when
 *     the last good round started; its commit may wait behind the
 *     writer's log flushes, which a new connection would wait for too), and
 *     statement_timeout, lock_timeout, idle_in_transaction_session_timeout
 *     and tcp_user_timeout bound it on the server's side too, so a round
 *     returns well within the time the leader has left and a client cut off
 *     in the middle of one does not hold the lease row.
 *   - Used from one thread (the server's elector, src/server/leader.c); a
 *     mutex keeps it safe anyway.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "store/pg_conn.h"
#include "store/pg_lease.h"

/* A round's steps, timed: a slow round is logged with each one's time. */
enum { ST_CONNECT, ST_RENEW, ST_BEGIN, ST_TAKE, ST_FENCE, ST_READ, ST_COMMIT, ST_N };
static const char *const st_names[ST_N] = {
    "connect", "renewal", "BEGIN", "UPDATE pai_leader", "UPDATE pai_fence", "SELECT", "COMMIT"};

struct pg_lease {
    pg_link_t link; /* url, and every round trip bounded by a third of the lease */
    conn_t c;
    bool opened;
    pthread_mutex_t mu;
    int64_t bound_ms;      /* the session's bound on a statement (a third of the lease) */
    int64_t held_term;     /* the term of the last round that found the lease ours (0: none) */
    int64_t held_sent_ms;  /* when that round started (monotonic): its lease lasts at least
                            * until held_sent_ms + lease_ms on any clock that runs at the
                            * database's rate */
    int64_t step_us[ST_N]; /* this round's steps (-1: not run) */
    int64_t logged_ms;     /* the last slow round's line (at most one per 10 s) */
    unsigned long folded;  /* slow rounds since, not logged */
};

static void step_done(pg_lease_t *l, int step, int64_t *t)
{
    int64_t now = time_mono_us();
    l->step_us[step] = now - *t;
    *t = now;
}

/* A round slower than a sixth of the lease: one line with each step's
 * time (at most one per 10 s; the rest are counted in the next). */
static void log_slow_round(pg_lease_t *l, int64_t took_us, int64_t lease_ms, bool ok)
{
    if (took_us / 1000 <= lease_ms / 6)
        return;
    int64_t now = time_mono_ms();
    if (l->logged_ms && now - l->logged_ms < 10000) {
        l->folded++;
        return;
    }
    char steps[300] = "";
    size_t n = 0;
    for (int i = 0; i < ST_N && n < sizeof(steps); i++)
        if (l->step_us[i] >= 0)
            n += (size_t)snprintf(steps + n, sizeof(steps) - n, "%s%s %lld ms", n ? ", " : "",
                                  st_names[i], (long long)(l->step_us[i] / 1000));
    log_warn("leader: postgres: a slow election round (%s): %lld ms: %s; %lu more slow rounds "
             "since the last such line",
             ok ? "answered" : "failed", (long long)(took_us / 1000), steps, l->folded);
    l->logged_ms = now;
    l->folded = 0;
}

/* Take the lease when it is ours (same holder and term, not expired: a
 * renewal, the term stays), or when it has expired, or when the holder is
 * ourselves under another term (this server restarted: the previous
 * process is gone, it held the same address).  Anything but a renewal
 * bumps the term. */
static const char *const SQL_TAKE =
    "UPDATE pai_leader SET"
    " term = CASE WHEN holder = $1 AND term = $3 AND expires_at > clock_timestamp()"
    "             THEN term ELSE term + 1 END,"
    " holder = $1, url = $2,"
    " expires_at = clock_timestamp() + $4::bigint * interval '1 millisecond'"
    " WHERE id = 1 AND (holder = $1 OR expires_at <= clock_timestamp())"
    " RETURNING term";

/* A renewal in one autocommit statement: the lease is ours under this term
 * and has not expired.  No row: it expired or is another's (the election
 * transaction then says which). */
static const char *const SQL_RENEW =
    "UPDATE pai_leader SET expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond'"
    " WHERE id = 1 AND holder = $1 AND term = $2 AND expires_at > clock_timestamp()"
    " RETURNING term, holder, url,"
    " (extract(epoch FROM (expires_at - clock_timestamp())) * 1000)::bigint";

static const char *const SQL_FENCE = "UPDATE pai_fence SET term = $1 WHERE id = 1";

static const char *const SQL_READ =
    "SELECT term, holder, url,"
    " (extract(epoch FROM (expires_at - clock_timestamp())) * 1000)::bigint"
    " FROM pai_leader WHERE id = 1";

static const char *const SQL_RELEASE = "UPDATE pai_leader SET expires_at = '-infinity'"
                                       " WHERE id = 1 AND holder = $1 AND term = $2";

/* The session's own bounds, on the server's side too: a statement, a lock
 * wait, a transaction left idle (a client cut off in the middle of an
 * election holds the lease row) and unacknowledged data (a dead path). */
static const char *const SQL_SESSION =
    "SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $1, false),"
    " set_config('idle_in_transaction_session_timeout', $1, false),"
    " set_config('tcp_user_timeout', $1, false), set_config('application_name', 'pai-leader',"
    " false)";

/* A statement with text parameters; the result, or NULL (logged) when it
 * did not return `want` in time. */
static PGresult *exec(pg_lease_t *l, const char *sql, int n, const char *const *vals,
                      ExecStatusType want)
{
    PGresult *res = conn_exec_params(&l->c, sql, n, vals);
    if (res && PQresultStatus(res) == want)
        return res;
    char m[512];
    log_warn("leader: postgres: %.60s: %s", sql, pg_msg(l->c.pg, m, sizeof(m)));
    PQclear(res);
    return NULL;
}

static bool cmd(pg_lease_t *l, const char *sql)
{
    PGresult *res = exec(l, sql, 0, NULL, PGRES_COMMAND_OK);
    PQclear(res);
    return res != NULL;
}

/* Connect (again) when needed, with the session's bounds set. */
static bool lease_conn(pg_lease_t *l)
{
    if (!l->opened) {
        char err[600];
        if (conn_open(&l->c, &l->link, err, sizeof(err)) != PAI_OK) {
            log_warn("leader: %s", err);
            conn_close(&l->c);
            return false;
        }
        l->opened = true;
    } else if (!conn_reconnect(&l->c)) {
        return false;
    }
    if (l->c.ready)
        return true;
    char ms[24];
    snprintf(ms, sizeof(ms), "%lld", (long long)l->bound_ms);
    const char *v[1] = {ms};
    PGresult *res = exec(l, SQL_SESSION, 1, v, PGRES_TUPLES_OK);
    PQclear(res);
    l->c.ready = res != NULL;
    return l->c.ready;
}

pg_lease_t *pg_lease_new(const char *url, int64_t timeout_ms)
{
    pg_lease_t *l = xcalloc(1, sizeof(*l));
    l->link.url = xstrdup(url);
    l->bound_ms = timeout_ms < 100 ? 100 : timeout_ms;
    atomic_store(&l->link.timeout_ms, l->bound_ms);
    pthread_mutex_init(&l->mu, NULL);
    return l;
}

void pg_lease_free(pg_lease_t *l)
{
    if (!l)
        return;
    if (l->opened)
        conn_close(&l->c);
    pthread_mutex_destroy(&l->mu);
    free((char *)l->link.url);
    free(l);
}

/* The lease's row (term, holder, url, ms left) from res's only row. */
static pai_err_t parse_row(const PGresult *res, store_lease_t *out)
{
    if (PQntuples(res) == 1 &&
        str_to_i64(PQgetvalue(res, 0, 0), 0, INT64_MAX, &out->term) == PAI_OK &&
        str_to_i64(PQgetvalue(res, 0, 3), INT64_MIN, INT64_MAX, &out->remaining_ms) == PAI_OK) {
        str_copy(out->holder, PQgetvalue(res, 0, 1), sizeof(out->holder));
        str_copy(out->url, PQgetvalue(res, 0, 2), sizeof(out->url));
        return PAI_OK;
    }
    return PAI_E_IO;
}

static pai_err_t read_row(pg_lease_t *l, store_lease_t *out)
{
    PGresult *res = exec(l, SQL_READ, 0, NULL, PGRES_TUPLES_OK);
    if (!res)
        return PAI_E_UNAVAILABLE;
    pai_err_t rc = parse_row(res, out);
    PQclear(res);
    return rc;
}

/* A renewal in one round trip (SQL_RENEW, its own transaction): 1 renewed
 * (*out filled), 0 not ours to renew any more (the election transaction
 * decides what now), -1 no answer. */
static int renew(pg_lease_t *l, const char *holder, int64_t term, int64_t lease_ms,
                 store_lease_t *out)
{
    char t[24], ms[24];
    snprintf(t, sizeof(t), "%lld", (long long)term);
    snprintf(ms, sizeof(ms), "%lld", (long long)lease_ms);
    const char *vals[3] = {holder, t, ms};
    int64_t at = time_mono_us();
    PGresult *res = exec(l, SQL_RENEW, 3, vals, PGRES_TUPLES_OK);
    step_done(l, ST_RENEW, &at);
    if (!res)
        return -1;
    int r = PQntuples(res) == 0 ? 0 : parse_row(res, out) == PAI_OK ? 1 : -1;
    PQclear(res);
    out->held = r == 1;
    return r;
}

/* The election transaction; *took: the UPDATE matched (we hold it). */
static pai_err_t take(pg_lease_t *l, const char *holder, const char *url, int64_t term,
                      int64_t lease_ms, store_lease_t *out)
{
    char t[24], ms[24];
    snprintf(t, sizeof(t), "%lld", (long long)term);
    snprintf(ms, sizeof(ms), "%lld", (long long)lease_ms);
    const char *vals[4] = {holder, url, t, ms};
    int64_t at = time_mono_us();
    bool begun = cmd(l, "BEGIN");
    step_done(l, ST_BEGIN, &at);
    if (!begun)
        return PAI_E_UNAVAILABLE;
    PGresult *res = exec(l, SQL_TAKE, 4, vals, PGRES_TUPLES_OK);
    step_done(l, ST_TAKE, &at);
    bool ok = res != NULL;
    out->held = ok && PQntuples(res) == 1;
    int64_t now_term = 0;
    if (out->held)
        ok = str_to_i64(PQgetvalue(res, 0, 0), 0, INT64_MAX, &now_term) == PAI_OK;
    PQclear(res);
    if (ok && out->held && now_term != term) {
        /* a new term: move the fence, waiting for the old term's writes */
        char nt[24];
        snprintf(nt, sizeof(nt), "%lld", (long long)now_term);
        const char *fv[1] = {nt};
        res = exec(l, SQL_FENCE, 1, fv, PGRES_COMMAND_OK);
        ok = res != NULL;
        PQclear(res);
        step_done(l, ST_FENCE, &at);
    }
    if (ok) {
        ok = read_row(l, out) == PAI_OK;
        step_done(l, ST_READ, &at);
    }
    if (ok) {
        ok = cmd(l, "COMMIT");
        step_done(l, ST_COMMIT, &at);
    }
    if (!ok) {
        if (conn_ok(&l->c))
            (void)cmd(l, "ROLLBACK");
        out->held = false;
        return PAI_E_UNAVAILABLE;
    }
    return PAI_OK;
}

pai_err_t pg_lease_acquire(pg_lease_t *l, const char *holder, const char *url, int64_t term,
                           int64_t lease_ms, store_lease_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < ST_N; i++)
        l->step_us[i] = -1;
    int64_t t0 = time_mono_us(), at = t0, sent_ms = t0 / 1000;
    /* A renewal waits for its answer as long as the lease it renews may
     * last (a database slow to flush its log is still a database that
     * answers; a new connection would queue behind the same flush), at
     * least the session's bound; anything else the session's bound. */
    bool renewal = term > 0 && term == l->held_term;
    int64_t bound = renewal ? l->held_sent_ms + lease_ms - sent_ms : 0;
    atomic_store(&l->link.timeout_ms, bound > l->bound_ms ? bound : l->bound_ms);
    bool up = lease_conn(l);
    step_done(l, ST_CONNECT, &at);
    int r = up && renewal ? renew(l, holder, term, lease_ms, out) : 0;
    atomic_store(&l->link.timeout_ms, l->bound_ms);
    pai_err_t rc = !up || r < 0 ? PAI_E_UNAVAILABLE
                   : r == 1     ? PAI_OK
                                : take(l, holder, url, term, lease_ms, out);
    if (rc == PAI_OK) { /* what the next renewal may count on */
        l->held_term = out->held ? out->term : 0;
        l->held_sent_ms = sent_ms;
    }
    log_slow_round(l, time_mono_us() - t0, lease_ms, rc == PAI_OK);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

pai_err_t pg_lease_release(pg_lease_t *l, const char *holder, int64_t term)
{
    char t[24];
    snprintf(t, sizeof(t), "%lld", (long long)term);
    const char *vals[2] = {holder, t};
    pthread_mutex_lock(&l->mu);
    pai_err_t rc = PAI_E_UNAVAILABLE;
    if (lease_conn(l)) {
        PGresult *res = exec(l, SQL_RELEASE, 2, vals, PGRES_COMMAND_OK);
        rc = res ? PAI_OK : PAI_E_UNAVAILABLE;
        PQclear(res);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}
