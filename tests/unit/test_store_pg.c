/*
 * test_store_pg.c - the PostgreSQL store backend behind store.h.
 *
 * URL handling and connection errors are checked always.  The behaviour
 * tests (the store contract of store_contract.h, which test_store.c runs on
 * SQLite, plus migrations, a failing neighbour and reconnects) need a server: they run when
 * PAI_PG_URL names a database they may wipe (tests/suites/store_pg.sh starts a private cluster and
 * sets it); run without it, this program says where they run and does not count them.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "store/store.h"
#include "store_contract.h"
#include "test.h"

/* Every table and function the migrations create (pg.c migrations[]). */
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

/* Run fixed SQL on a side connection (test setup only; no values). */
static int side_exec(const char *sql)
{
    PGconn *c = PQconnectdb(pg_url());
    PQsetNoticeProcessor(c, quiet, NULL);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType s = PQresultStatus(r);
        ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "  side_exec: %s", PQerrorMessage(c));
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

/* A side query's first value as an integer (-1 on error). */
static long side_count(const char *sql)
{
    PGconn *c = PQconnectdb(pg_url());
    long n = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
    }
    PQfinish(c);
    return n;
}

static store_t *open_url(const char *url)
{
    char err[512];
    store_t *st = NULL;
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

static store_t *contract_open(void)
{
    if (!side_exec(DROP_ALL))
        return NULL;
    return open_url(pg_url());
}

static store_t *contract_reopen(void)
{
    return open_url(pg_url());
}

static void contract_cleanup(void)
{
}

/* ---- always: URLs and connection errors ------------------------------- */

TEST(bad_url_is_refused_clearly)
{
    store_t *st = NULL;
    char err[512] = "";
    CHECK(store_open("postgres://127.0.0.1/pai?no_such_option=1", &st, err, sizeof(err)) ==
          PAI_E_INVALID);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(err, "bad PostgreSQL URL");
    CHECK_STR_CONTAINS(err, "no_such_option");
}

TEST(unknown_scheme_is_refused)
{
    store_t *st = NULL;
    char err[512] = "";
    CHECK(store_open("mysql://127.0.0.1/pai", &st, err, sizeof(err)) == PAI_E_INVALID);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(err, "unknown URL scheme");
}

TEST(unreachable_server_fails_with_message)
{
    /* port 1 on loopback: nothing listens, the connect is refused at once */
    store_t *st = NULL;
    char err[512] = "";
    CHECK(store_open("postgresql://pai:secret@127.0.0.1:1/pai", &st, err, sizeof(err)) ==
          PAI_E_UNAVAILABLE);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(err, "cannot connect to PostgreSQL at 127.0.0.1:1/pai");
    CHECK(strstr(err, "secret") == NULL); /* the password is never echoed */
}

/* ---- with a server ---------------------------------------------------- */

/* A writer whose every request fails at the SQL level (invalid UTF-8). */
static void *poison_main(void *p)
{
    writer_arg_t *a = p;
    for (int i = 0; i < 20; i++)
        if (store_put(a->st, "job", "poison", 0, "{\"x\":\"\xff\xfe\"}") != PAI_E_IO)
            a->failures++;
    return NULL;
}

TEST(concurrent_writers_commit_despite_a_failing_neighbour_and_survive_reopen)
{
    contract_concurrent_writers(poison_main);
}

TEST(migrations_are_numbered_and_applied_once)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    store_close(st);
    st = open_url(pg_url());
    CHECK(st != NULL);
    store_close(st);
    CHECK_INT_EQ(side_count("SELECT count(*) FROM pai_schema_migrations"), 4);
    CHECK_INT_EQ(side_count("SELECT max(version) FROM pai_schema_migrations"), 4);
}

TEST(generation_grows_with_every_committed_change_whoever_writes)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    int64_t g0 = -1, g1 = -1, g2 = -1, g3 = -1, g4 = -1;
    CHECK(store_generation(st, &g0) == PAI_OK);
    CHECK(store_put(st, "k", "a", 0, "{}") == PAI_OK);
    CHECK(store_generation(st, &g1) == PAI_OK);
    CHECK(g1 > g0);
    char *j = NULL;
    CHECK(store_get(st, "k", "a", &j) == PAI_OK); /* reads change nothing */
    free(j);
    CHECK(store_generation(st, &g2) == PAI_OK);
    CHECK(g2 == g1);
    store_op_t ops[3] = {{STORE_OP_PUT, "k", "b", 0, "{}"},
                         {STORE_OP_PUT, "k", "c", 0, "{}"},
                         {STORE_OP_DEL, "k", "a", 0, NULL}};
    CHECK(store_batch(st, ops, 3) == PAI_OK);
    CHECK(store_generation(st, &g3) == PAI_OK);
    CHECK(g3 > g2);
    /* a write that did not come through pai (psql, a restore) counts too */
    CHECK(side_exec("DELETE FROM pai_records WHERE kind = 'k' AND key = 'b'"));
    CHECK(store_generation(st, &g4) == PAI_OK);
    CHECK(g4 > g3);
    store_close(st);
}

/* What store_changes reported: "kind/key=json" (or "kind/key gone"),
 * sorted, joined by spaces. */
typedef struct {
    char *items[32];
    int n;
} changes_t;

static int changes_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    changes_t *c = ud;
    (void)seq;
    if (c->n < 32)
        c->items[c->n++] =
            json ? str_printf("%s/%s=%s", kind, key, json) : str_printf("%s/%s gone", kind, key);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The changes since *point as one string (the caller frees); *point moves
 * on.  NULL when the call failed (its code in *rc). */
static char *changes_since(store_t *st, char **point, pai_err_t *rc)
{
    changes_t c = {.n = 0};
    char *next = NULL;
    *rc = store_changes(st, *point, changes_cb, &c, &next);
    qsort(c.items, (size_t)c.n, sizeof(c.items[0]), cmp_str);
    char *all = xstrdup("");
    for (int i = 0; i < c.n; i++) {
        char *more = str_printf("%s%s%s", all, i ? " " : "", c.items[i]);
        free(all);
        free(c.items[i]);
        all = more;
    }
    if (*rc != PAI_OK) {
        free(all);
        return NULL;
    }
    free(*point);
    *point = next;
    return all;
}

#define CHECK_CHANGES(st, point, want)                                                             \
    do {                                                                                           \
        pai_err_t rc_ = PAI_E_IO;                                                                  \
        char *got_ = changes_since(st, point, &rc_);                                               \
        CHECK(rc_ == PAI_OK);                                                                      \
        CHECK_STR_EQ(got_ ? got_ : "(failed)", want);                                              \
        free(got_);                                                                                \
    } while (0)

TEST(changes_since_a_point_are_writes_deletions_and_new_records_whoever_wrote_them)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_put(st, "k", "a", 1, "{\"v\":1}") == PAI_OK);
    CHECK(store_put(st, "k", "b", 2, "{}") == PAI_OK);
    CHECK(store_put(st, "k", "c", 3, "{}") == PAI_OK);
    char *point = NULL;
    CHECK(store_changes(st, NULL, NULL, NULL, &point) == PAI_OK); /* before a whole read */
    CHECK(point != NULL);
    CHECK_CHANGES(st, &point, "");
    /* a change, a deletion, a new record, and a hand fix in psql */
    CHECK(store_put(st, "k", "a", 1, "{\"v\":2}") == PAI_OK);
    CHECK(store_del(st, "k", "b") == PAI_OK);
    CHECK(store_insert(st, "j", "d", 4, "{}") == PAI_OK);
    CHECK(side_exec("UPDATE pai_records SET json = '{\"v\":3}' WHERE kind = 'k' AND key = 'c'"));
    CHECK_CHANGES(st, &point, "j/d={} k/a={\"v\":2} k/b gone k/c={\"v\":3}");
    CHECK_CHANGES(st, &point, "");
    /* deleted then written again: a record; written then deleted: gone */
    CHECK(store_del(st, "k", "a") == PAI_OK);
    CHECK(store_put(st, "k", "a", 1, "{\"v\":4}") == PAI_OK);
    CHECK(store_put(st, "k", "e", 5, "{}") == PAI_OK);
    store_op_t ops[2] = {{STORE_OP_DEL, "k", "e", 0, NULL}, {STORE_OP_DEL, "j", "d", 0, NULL}};
    CHECK(store_batch(st, ops, 2) == PAI_OK);
    CHECK_CHANGES(st, &point, "j/d gone k/a={\"v\":4} k/e gone");
    CHECK_CHANGES(st, &point, "");
    free(point);
    store_close(st);
}

/* Ids are taken in one order and committed in another: a transaction that
 * was still open when a read took its point is reported by the next read,
 * though a later transaction committed first. */
TEST(a_change_committed_after_a_later_one_is_not_missed)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    char *point = NULL;
    CHECK(store_changes(st, NULL, NULL, NULL, &point) == PAI_OK);
    PGconn *side = PQconnectdb(pg_url());
    PQsetNoticeProcessor(side, quiet, NULL);
    /* the side transaction takes its id first (its write comes later: a
     * write takes the generation's row lock until its commit) */
    PGresult *res = PQexec(side, "BEGIN; SELECT pg_current_xact_id()");
    CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
    PQclear(res);
    CHECK(store_put(st, "k", "late", 0, "{}") == PAI_OK); /* a later id, committed first */
    res = PQexec(side, "INSERT INTO pai_records (kind, key, seq, json) VALUES ('k', 'early', 0,"
                       " '{}')");
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);
    CHECK_CHANGES(st, &point, "k/late={}"); /* written, not committed: not yet */
    PQclear(PQexec(side, "COMMIT"));
    PQfinish(side);
    CHECK_CHANGES(st, &point, "k/early={}");
    CHECK_CHANGES(st, &point, "");
    free(point);
    store_close(st);
}

/* Deletions are kept for a while; a point older than what was pruned (or a
 * TRUNCATE) cannot be answered: PAI_E_NOT_FOUND, read the store whole. */
TEST(changes_since_a_pruned_point_are_refused_and_a_new_point_works)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_put(st, "k", "a", 0, "{}") == PAI_OK);
    char *old = NULL, *point = NULL;
    CHECK(store_changes(st, NULL, NULL, NULL, &old) == PAI_OK);
    CHECK(store_del(st, "k", "a") == PAI_OK);
    CHECK(store_changes(st, NULL, NULL, NULL, &point) == PAI_OK);
    /* the automatic pruning keeps 15 minutes: nothing went yet */
    CHECK_INT_EQ(side_count("SELECT count(*) FROM pai_deleted"), 1);
    CHECK_INT_EQ(side_count("SELECT pai_changes_prune('0')"), 1);
    pai_err_t rc = PAI_OK;
    char *got = changes_since(st, &old, &rc);
    CHECK(rc == PAI_E_NOT_FOUND);
    CHECK(got == NULL);
    CHECK_CHANGES(st, &point, ""); /* taken after the deletion: still answered */
    CHECK(store_put(st, "k", "b", 0, "{}") == PAI_OK);
    CHECK_CHANGES(st, &point, "k/b={}");
    CHECK(side_exec("TRUNCATE pai_records"));
    got = changes_since(st, &point, &rc);
    CHECK(rc == PAI_E_NOT_FOUND);
    free(old);
    free(point);
    store_close(st);
}

static void *open_main(void *p)
{
    store_t **out = p;
    *out = open_url(pg_url());
    return NULL;
}

TEST(servers_starting_together_migrate_once)
{
    if (!side_exec(DROP_ALL))
        return;
    pthread_t th[4];
    store_t *st[4] = {NULL};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, open_main, &st[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(st[i] != NULL);
    }
    CHECK(st[0] && store_put(st[0], "k", "a", 0, "{}") == PAI_OK);
    for (int i = 0; i < 4; i++)
        store_close(st[i]);
    CHECK_INT_EQ(side_count("SELECT count(*) FROM pai_schema_migrations"), 4);
}

TEST(schema_newer_than_this_binary_is_refused)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_put(st, "k", "a", 0, "{}") == PAI_OK);
    store_close(st);
    CHECK(side_exec("INSERT INTO pai_schema_migrations (version) VALUES (99)"));
    char err[512] = "";
    st = NULL;
    CHECK(store_open(pg_url(), &st, err, sizeof(err)) == PAI_E_BAD_CONFIG);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(err, "newer");
}

TEST(dropped_connections_are_reestablished)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    char *j = NULL;
    CHECK(store_put(st, "k", "before", 0, "{}") == PAI_OK);
    CHECK(store_get(st, "k", "before", &j) == PAI_OK);
    free(j);
    /* the server ends every pai session (as a failover or restart would) */
    CHECK(side_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'pai'"));
    CHECK(store_put(st, "k", "after", 0, "{}") == PAI_OK);
    j = NULL;
    CHECK(store_get(st, "k", "after", &j) == PAI_OK);
    free(j);
    store_close(st);
}

static int slow_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)key, (void)seq, (void)json;
    struct timespec ts = {0, 60 * 1000000L};
    nanosleep(&ts, NULL);
    (*(int *)ud)++;
    return 0;
}

/* The bound is on each answer, not on a whole scan: a caller that takes
 * its time over the rows (a restore, a store copy) is not cut off. */
TEST(a_scan_may_outlast_the_timeout_while_rows_keep_coming)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    /* 12 MiB in all: more than the sockets hold, so the server's statement
     * lasts as long as the reading does */
    char *big = xmalloc(400 * 1024 + 8);
    memset(big, 'x', 400 * 1024);
    big[0] = big[400 * 1024 - 1] = '"';
    big[400 * 1024] = '\0';
    for (int i = 0; i < 30; i++) {
        char key[16];
        snprintf(key, sizeof key, "r%02d", i);
        CHECK(store_put(st, "slow", key, i, big) == PAI_OK);
    }
    free(big);
    store_set_timeout(st, 500);
    int n = 0;
    CHECK(store_scan(st, "slow", slow_cb, &n) == PAI_OK); /* 1.8 s in all */
    CHECK_INT_EQ(n, 30);
    store_close(st);
}

/* A server that does not answer (a lock held by another session here; a
 * paused server in tests/blackbox/test_store_pg_outage.py): calls fail
 * within the timeout, 503 for a read, and the store works again once it
 * answers. */
TEST(a_silent_server_fails_calls_within_the_timeout_and_the_store_recovers)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_put(st, "k", "a", 0, "{}") == PAI_OK);
    store_set_timeout(st, 500);
    PGconn *side = PQconnectdb(pg_url());
    PQsetNoticeProcessor(side, quiet, NULL);
    PGresult *res = PQexec(side, "BEGIN; LOCK TABLE pai_records IN ACCESS EXCLUSIVE MODE");
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);
    int64_t t0 = time_mono_ms();
    char *j = NULL;
    CHECK(store_get(st, "k", "a", &j) == PAI_E_UNAVAILABLE);
    int64_t read_ms = time_mono_ms() - t0;
    CHECK(store_put(st, "k", "b", 0, "{}") != PAI_OK);
    int64_t all_ms = time_mono_ms() - t0;
    printf("# a read failed after %lld ms, a write after %lld ms more (timeout 500 ms)\n",
           (long long)read_ms, (long long)(all_ms - read_ms));
    CHECK(read_ms < 1500 && all_ms < 4000);
    PQclear(PQexec(side, "ROLLBACK"));
    PQfinish(side);
    pai_err_t get = PAI_E_IO, put = PAI_E_IO;
    for (int i = 0; i < 50 && (get != PAI_OK || put != PAI_OK); i++) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        free(j);
        j = NULL;
        get = store_get(st, "k", "a", &j);
        put = store_put(st, "k", "b", 0, "{}");
    }
    CHECK(get == PAI_OK && put == PAI_OK);
    free(j);
    store_close(st);
}

int main(void)
{
    util_alloc_init();
    static const test_case_t always[] = {
        {"bad_url_is_refused_clearly", bad_url_is_refused_clearly},
        {"unknown_scheme_is_refused", unknown_scheme_is_refused},
        {"unreachable_server_fails_with_message", unreachable_server_fails_with_message},
    };
    static const test_case_t server[] = {
        STORE_CONTRACT_CASES("pg_"),
        {"pg_concurrent_writers_commit_despite_a_failing_neighbour_and_survive_reopen",
         concurrent_writers_commit_despite_a_failing_neighbour_and_survive_reopen},
        {"pg_migrations_are_numbered_and_applied_once", migrations_are_numbered_and_applied_once},
        {"pg_servers_starting_together_migrate_once", servers_starting_together_migrate_once},
        {"pg_generation_grows_with_every_committed_change_whoever_writes",
         generation_grows_with_every_committed_change_whoever_writes},
        {"pg_changes_since_a_point_are_writes_deletions_and_new_records_whoever_wrote_them",
         changes_since_a_point_are_writes_deletions_and_new_records_whoever_wrote_them},
        {"pg_a_change_committed_after_a_later_one_is_not_missed",
         a_change_committed_after_a_later_one_is_not_missed},
        {"pg_changes_since_a_pruned_point_are_refused_and_a_new_point_works",
         changes_since_a_pruned_point_are_refused_and_a_new_point_works},
        {"pg_schema_newer_than_this_binary_is_refused", schema_newer_than_this_binary_is_refused},
        {"pg_dropped_connections_are_reestablished", dropped_connections_are_reestablished},
        {"pg_a_scan_may_outlast_the_timeout_while_rows_keep_coming",
         a_scan_may_outlast_the_timeout_while_rows_keep_coming},
        {"pg_a_silent_server_fails_calls_within_the_timeout_and_the_store_recovers",
         a_silent_server_fails_calls_within_the_timeout_and_the_store_recovers},
    };
    int rc = test_run_all_(always, ARRAY_LEN(always));
    if (!pg_url()) {
        /* not skipped: tests/suites/store_pg.sh runs them against a real server */
        printf("# %zu tests need PAI_PG_URL: tests/suites/store_pg.sh runs them\n",
               ARRAY_LEN(server));
        return rc;
    }
    int rc2 = test_run_all_(server, ARRAY_LEN(server));
    (void)side_exec(DROP_ALL);
    return rc || rc2;
}
