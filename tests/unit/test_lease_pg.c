/*
 * test_lease_pg.c - leader election and fencing on PostgreSQL
 * (store_lease_acquire / store_lease_release / store_set_fence; the design
 * is in src/store/pg_lease.c).
 *
 * SQLite's refusal is checked always.  The election cases need a server:
 * they run when PAI_PG_URL names a database they may wipe
 * (tests/suites/store_pg.sh sets it); without it this program says where
 * they run and does not count them.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"
#include "test.h"

#define DROP_ALL                                                                                   \
    "DROP TABLE IF EXISTS pai_records, pai_schema_migrations, pai_leader, pai_fence,"              \
    " pai_generation, pai_deleted, pai_changes_pruned;"                                            \
    "DROP FUNCTION IF EXISTS pai_fence_check, pai_generation_bump, pai_records_stamp,"             \
    " pai_records_tombstone, pai_changes_prune, pai_changes_pruning"

static const char *pg_url(void)
{
    const char *u = getenv("PAI_PG_URL");
    return u && *u ? u : NULL;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *side_open(void)
{
    PGconn *c = PQconnectdb(pg_url());
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

/* Fixed SQL on a side connection (setup only; no values). */
static int side_run(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "  side: %s", PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static int side_exec(const char *sql)
{
    PGconn *c = side_open();
    int ok = PQstatus(c) == CONNECTION_OK && side_run(c, sql);
    PQfinish(c);
    return ok;
}

/* A fresh store: every table dropped, migrations run again. */
static store_t *fresh(void)
{
    char err[512];
    store_t *st = NULL;
    if (!side_exec(DROP_ALL))
        return NULL;
    if (store_open(pg_url(), &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

static store_t *again(void)
{
    char err[512];
    store_t *st = NULL;
    if (store_open(pg_url(), &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

/* ---- always ------------------------------------------------------------ */

TEST(sqlite_has_no_election)
{
    char dir[] = "/tmp/pai-lease-XXXXXX", url[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(url, sizeof(url), "sqlite:%s/pai.db", dir);
    store_t *st = NULL;
    CHECK(store_open(url, &st, err, sizeof(err)) == PAI_OK);
    if (!st)
        return;
    store_lease_t l;
    CHECK(!store_has_lease(st));
    CHECK(store_lease_acquire(st, "a", "http://a", 0, 3000, &l) == PAI_E_NOT_IMPLEMENTED);
    CHECK(!l.held);
    char *point = NULL; /* nor a change feed: no standby reads a SQLite store */
    CHECK(store_changes(st, NULL, NULL, NULL, &point) == PAI_E_NOT_IMPLEMENTED);
    CHECK(point == NULL);
    store_set_fence(st, 7, 1000); /* no fence on SQLite: writes go on */
    CHECK(store_put(st, "k", "a", 0, "{}") == PAI_OK);
    store_close(st);
    char db[160];
    snprintf(db, sizeof(db), "%s/pai.db", dir);
    unlink(db);
    snprintf(db, sizeof(db), "%s/pai.db-wal", dir);
    unlink(db);
    snprintf(db, sizeof(db), "%s/pai.db-shm", dir);
    unlink(db);
    rmdir(dir);
}

/* ---- with a server ------------------------------------------------------ */

/* A case on two stores of one fresh database (two servers): body(a, b),
 * which runs only when both opened; both are closed after it. */
typedef void pair_case_fn(store_t *a, store_t *b);

static void run_pair(pair_case_fn *body)
{
    store_t *a = fresh(), *b = again();
    CHECK(a && b);
    if (a && b)
        body(a, b);
    store_close(a);
    store_close(b);
}

/* TEST(name) running name_body(a, b) through run_pair */
#define PAIR_TEST(name)                                                                            \
    static void name##_body(store_t *a, store_t *b);                                               \
    TEST(name)                                                                                     \
    {                                                                                              \
        run_pair(name##_body);                                                                     \
    }                                                                                              \
    static void name##_body(store_t *a, store_t *b)

PAIR_TEST(first_server_takes_the_lease_others_see_it)
{
    CHECK(store_has_lease(a));
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 5000, &la) == PAI_OK);
    CHECK(la.held);
    CHECK_INT_EQ(la.term, 1);
    CHECK_STR_EQ(la.url, "http://a:1");
    CHECK(la.remaining_ms > 4000 && la.remaining_ms <= 5000);
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 5000, &lb) == PAI_OK);
    CHECK(!lb.held);
    CHECK_INT_EQ(lb.term, 1);
    CHECK_STR_EQ(lb.holder, "host-a");
    CHECK_STR_EQ(lb.url, "http://a:1");
}

PAIR_TEST(renewal_keeps_the_term_expiry_hands_over_with_the_next)
{
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 600, &la) == PAI_OK && la.held);
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", la.term, 600, &la) == PAI_OK);
    CHECK(la.held);
    CHECK_INT_EQ(la.term, 1);
    usleep(700 * 1000); /* a stops renewing: its lease runs out */
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 600, &lb) == PAI_OK);
    CHECK(lb.held);
    CHECK_INT_EQ(lb.term, 2);
    /* a comes back: too late, and it is told who leads now */
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 1, 600, &la) == PAI_OK);
    CHECK(!la.held);
    CHECK_STR_EQ(la.url, "http://b:1");
}

PAIR_TEST(restarted_holder_takes_over_at_once_with_a_new_term)
{
    store_lease_t l;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 60000, &l) == PAI_OK && l.held);
    /* same holder (same host and address), no term: the process restarted */
    CHECK(store_lease_acquire(b, "host-a", "http://a:1", 0, 60000, &l) == PAI_OK);
    CHECK(l.held);
    CHECK_INT_EQ(l.term, 2);
}

PAIR_TEST(release_lets_a_standby_take_over_at_once)
{
    store_lease_t l;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 60000, &l) == PAI_OK && l.held);
    CHECK(store_lease_release(a, "host-a", l.term) == PAI_OK);
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 60000, &l) == PAI_OK);
    CHECK(l.held);
    CHECK_INT_EQ(l.term, 2);
}

PAIR_TEST(old_leader_writes_are_fenced_after_a_takeover)
{
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 300, &la) == PAI_OK && la.held);
    store_set_fence(a, la.term, 1000);
    CHECK(store_put(a, "job", "j1", 1, "{\"v\":1}") == PAI_OK);
    usleep(400 * 1000);
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 5000, &lb) == PAI_OK && lb.held);
    store_set_fence(b, lb.term, 1000);
    /* a does not know yet: every kind of write of its term is refused */
    CHECK(store_put(a, "job", "j1", 1, "{\"v\":2}") == PAI_E_FENCED);
    CHECK(store_insert(a, "job", "j2", 2, "{}") == PAI_E_FENCED);
    CHECK(store_del(a, "job", "j1") == PAI_E_FENCED);
    store_op_t ops[2] = {{STORE_OP_PUT, "job", "j3", 3, "{}"},
                         {STORE_OP_DEL, "job", "j1", 0, NULL}};
    CHECK(store_batch(a, ops, 2) == PAI_E_FENCED);
    /* the new leader writes; what it reads is what a committed */
    char *j = NULL;
    CHECK(store_get(b, "job", "j1", &j) == PAI_OK);
    CHECK_STR_EQ(j ? j : "", "{\"v\":1}");
    free(j);
    CHECK(store_put(b, "job", "j1", 1, "{\"v\":3}") == PAI_OK);
    CHECK(store_get(b, "job", "j2", &j) == PAI_E_NOT_FOUND);
}

/* The fencing argument: a write that passed the fence under the old term
 * holds the fence row; the takeover cannot commit before that write ends. */
PAIR_TEST(takeover_waits_for_a_write_in_flight_of_the_old_term)
{
    PGconn *w = side_open();
    CHECK(PQstatus(w) == CONNECTION_OK);
    if (PQstatus(w) != CONNECTION_OK)
        goto out;
    store_lease_t la, lb;
    CHECK(store_lease_acquire(a, "host-a", "http://a:1", 0, 300, &la) == PAI_OK && la.held);
    CHECK_INT_EQ(la.term, 1);
    /* the old leader's write transaction, past its fence check */
    CHECK(side_run(w, "BEGIN"));
    CHECK(side_run(w, "SELECT pai_fence_check(1, 60000)"));
    usleep(400 * 1000);
    /* expired, but the takeover waits for the write (lock_timeout: a third
     * of the lease) and fails; the term has not moved */
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 900, &lb) == PAI_E_UNAVAILABLE);
    CHECK(!lb.held);
    CHECK(side_run(w, "INSERT INTO pai_records (kind, key, json) VALUES ('job', 'late', '{}')"));
    CHECK(side_run(w, "COMMIT"));
    CHECK(store_lease_acquire(b, "host-b", "http://b:1", 0, 900, &lb) == PAI_OK);
    CHECK(lb.held);
    CHECK_INT_EQ(lb.term, 2);
    /* the new leader sees the old term's last write; the old term is over */
    char *j = NULL;
    CHECK(store_get(b, "job", "late", &j) == PAI_OK);
    free(j);
    CHECK(side_run(w, "BEGIN"));
    PGresult *r = PQexec(w, "SELECT pai_fence_check(1, 60000)");
    CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    CHECK_STR_EQ(state ? state : "", "PAI01");
    PQclear(r);
    CHECK(side_run(w, "ROLLBACK"));
out:
    PQfinish(w);
}

int main(void)
{
    util_alloc_init();
    static const test_case_t always[] = {
        {"sqlite_has_no_election", sqlite_has_no_election},
    };
    static const test_case_t server[] = {
        {"pg_first_server_takes_the_lease_others_see_it",
         first_server_takes_the_lease_others_see_it},
        {"pg_renewal_keeps_the_term_expiry_hands_over_with_the_next",
         renewal_keeps_the_term_expiry_hands_over_with_the_next},
        {"pg_restarted_holder_takes_over_at_once_with_a_new_term",
         restarted_holder_takes_over_at_once_with_a_new_term},
        {"pg_release_lets_a_standby_take_over_at_once", release_lets_a_standby_take_over_at_once},
        {"pg_old_leader_writes_are_fenced_after_a_takeover",
         old_leader_writes_are_fenced_after_a_takeover},
        {"pg_takeover_waits_for_a_write_in_flight_of_the_old_term",
         takeover_waits_for_a_write_in_flight_of_the_old_term},
    };
    int rc = test_run_all_(always, ARRAY_LEN(always));
    if (!pg_url()) {
        printf("# %zu tests need PAI_PG_URL: tests/suites/store_pg.sh runs them\n",
               ARRAY_LEN(server));
        return rc;
    }
    int rc2 = test_run_all_(server, ARRAY_LEN(server));
    (void)side_exec(DROP_ALL);
    return rc || rc2;
}
