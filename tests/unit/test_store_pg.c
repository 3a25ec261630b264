/*
 * test_store_pg.c - the PostgreSQL store backend behind store.h.
 *
 * URL handling and connection errors are checked always.  The behaviour
 * tests (the same contract test_store.c checks for SQLite, plus reconnects)
 * need a server: they run when PAI_PG_URL names a database they may wipe
 * (tests/suites/store_pg.sh starts a private cluster and sets it); run
 * without it, this program says where they run and does not count them.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/store.h"
#include "test.h"

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

static store_t *open_fresh(void)
{
    if (!side_exec("DROP TABLE IF EXISTS pai_records, pai_schema_migrations"))
        return NULL;
    return open_url(pg_url());
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

TEST(put_get_del_roundtrip)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    char *j = NULL;
    CHECK(store_get(st, "user", "alice", &j) == PAI_E_NOT_FOUND);
    CHECK(store_put(st, "user", "alice", 0, "{\"a\":1}") == PAI_OK);
    CHECK(store_get(st, "user", "alice", &j) == PAI_OK);
    CHECK_STR_EQ(j, "{\"a\":1}");
    free(j);
    CHECK(store_put(st, "user", "alice", 0, "{\"a\":2}") == PAI_OK);
    CHECK(store_get(st, "user", "alice", &j) == PAI_OK);
    CHECK_STR_EQ(j, "{\"a\":2}");
    free(j);
    CHECK(store_del(st, "user", "alice") == PAI_OK);
    CHECK(store_del(st, "user", "alice") == PAI_E_NOT_FOUND);
    /* SQL metacharacters are data, never SQL */
    CHECK(store_put(st, "user", "o'b\"; DROP TABLE pai_records; --", 0, "{\"q\":\"'\"}") == PAI_OK);
    CHECK(store_get(st, "user", "o'b\"; DROP TABLE pai_records; --", &j) == PAI_OK);
    CHECK_STR_EQ(j, "{\"q\":\"'\"}");
    free(j);
    store_close(st);
}

TEST(insert_refuses_existing_key)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_insert(st, "job", "a~b", 1, "{}") == PAI_OK);
    CHECK(store_insert(st, "job", "a~b", 2, "{\"x\":1}") == PAI_E_EXISTS);
    char *j = NULL;
    CHECK(store_get(st, "job", "a~b", &j) == PAI_OK);
    CHECK_STR_EQ(j, "{}");
    free(j);
    CHECK(store_insert(st, "vc", "a~b", 1, "{}") == PAI_OK);
    store_close(st);
}

typedef struct {
    char keys[16][32];
    int64_t seqs[16];
    int n;
} scan_acc_t;

static int scan_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)json;
    scan_acc_t *a = ud;
    if (a->n < 16) {
        a->seqs[a->n] = seq;
        str_copy(a->keys[a->n++], key, 32);
    }
    return a->n >= 3 && strcmp(key, "stop") == 0;
}

TEST(scan_orders_by_seq_then_bytewise_key_and_stops_early)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_put(st, "job", "c", 2, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "b", 1, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "a", 2, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "B", 2, "{}") == PAI_OK); /* bytewise: "B" < "a" */
    CHECK(store_put(st, "job", "big", -5000000000LL, "{}") == PAI_OK);
    CHECK(store_put(st, "user", "x", 0, "{}") == PAI_OK);
    scan_acc_t acc = {0};
    CHECK(store_scan(st, "job", scan_cb, &acc) == PAI_OK);
    CHECK_INT_EQ(acc.n, 5);
    CHECK_STR_EQ(acc.keys[0], "big");
    CHECK_INT_EQ(acc.seqs[0], -5000000000LL);
    CHECK_STR_EQ(acc.keys[1], "b");
    CHECK_STR_EQ(acc.keys[2], "B");
    CHECK_STR_EQ(acc.keys[3], "a");
    CHECK_STR_EQ(acc.keys[4], "c");
    CHECK(store_put(st, "job", "stop", 3, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "z", 4, "{}") == PAI_OK);
    memset(&acc, 0, sizeof(acc));
    CHECK(store_scan(st, "job", scan_cb, &acc) == PAI_OK);
    CHECK_INT_EQ(acc.n, 6);
    /* the connection is usable after an early stop */
    char *j = NULL;
    CHECK(store_get(st, "job", "z", &j) == PAI_OK);
    free(j);
    store_close(st);
}

typedef struct {
    store_t *st;
    int seen, got;
} nested_t;

static int nested_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)seq;
    (void)json;
    nested_t *n = ud;
    char *j = NULL;
    n->seen++;
    if (store_get(n->st, "k", key, &j) == PAI_OK)
        n->got++;
    free(j);
    return 0;
}

TEST(scan_callback_may_use_the_store)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", i);
        CHECK(store_put(st, "k", key, i, "{}") == PAI_OK);
    }
    nested_t n = {st, 0, 0};
    CHECK(store_scan(st, "k", nested_cb, &n) == PAI_OK);
    CHECK_INT_EQ(n.seen, 20);
    CHECK_INT_EQ(n.got, 20);
    store_close(st);
}

TEST(batch_is_atomic)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_insert(st, "k", "exists", 0, "{}") == PAI_OK);
    store_op_t bad[] = {
        {STORE_OP_PUT, "k", "new1", 0, "{}"},
        {STORE_OP_INSERT, "k", "exists", 0, "{}"},
    };
    CHECK(store_batch(st, bad, 2) == PAI_E_EXISTS);
    char *j = NULL;
    CHECK(store_get(st, "k", "new1", &j) == PAI_E_NOT_FOUND);
    store_op_t good[] = {
        {STORE_OP_PUT, "k", "new1", 0, "{}"},
        {STORE_OP_DEL, "k", "exists", 0, NULL},
        {STORE_OP_DEL, "k", "absent", 0, NULL},
    };
    CHECK(store_batch(st, good, 3) == PAI_OK);
    CHECK(store_get(st, "k", "new1", &j) == PAI_OK);
    free(j);
    CHECK(store_get(st, "k", "exists", &j) == PAI_E_NOT_FOUND);
    store_close(st);
}

TEST(oversize_value_is_refused)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    size_t n = (size_t)STORE_MAX_VALUE + 1;
    char *big = malloc(n + 1);
    CHECK(big != NULL);
    if (big) {
        memset(big, 'x', n);
        big[n] = '\0';
        CHECK(store_put(st, "k", "big", 0, big) == PAI_E_TOO_LARGE);
        free(big);
    }
    char *j = NULL;
    CHECK(store_get(st, "k", "big", &j) == PAI_E_NOT_FOUND);
    store_close(st);
}

typedef struct {
    store_t *st;
    int id;
    int failures;
} writer_arg_t;

static void *writer_main(void *p)
{
    writer_arg_t *a = p;
    for (int i = 0; i < 50; i++) {
        char key[64];
        snprintf(key, sizeof(key), "w%d-%d", a->id, i);
        if (store_insert(a->st, "job", key, i, "{\"v\":1}") != PAI_OK)
            a->failures++;
        if (store_insert(a->st, "job", key, i, "{}") != PAI_E_EXISTS)
            a->failures++;
    }
    return NULL;
}

/* A writer whose every request fails at the SQL level (invalid UTF-8). */
static void *poison_main(void *p)
{
    writer_arg_t *a = p;
    for (int i = 0; i < 20; i++)
        if (store_put(a->st, "job", "poison", 0, "{\"x\":\"\xff\xfe\"}") != PAI_E_IO)
            a->failures++;
    return NULL;
}

static int count_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)key;
    (void)seq;
    (void)json;
    (*(int *)ud)++;
    return 0;
}

TEST(concurrent_writers_commit_despite_a_failing_neighbour_and_survive_reopen)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    pthread_t th[9];
    writer_arg_t args[9];
    for (int i = 0; i < 9; i++) {
        args[i] = (writer_arg_t){st, i, 0};
        pthread_create(&th[i], NULL, i == 8 ? poison_main : writer_main, &args[i]);
    }
    for (int i = 0; i < 9; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(args[i].failures, 0);
    }
    store_close(st);
    st = open_url(pg_url());
    CHECK(st != NULL);
    if (!st)
        return;
    int n = 0;
    CHECK(store_scan(st, "job", count_cb, &n) == PAI_OK);
    CHECK_INT_EQ(n, 400);
    store_close(st);
}

/* Batches failing half-way next to good ones in the same groups. */
static void *batch_writer_main(void *p)
{
    writer_arg_t *a = p;
    for (int i = 0; i < 30; i++) {
        char good[64], bad[64];
        snprintf(good, sizeof(good), "good%d-%d", a->id, i);
        snprintf(bad, sizeof(bad), "bad%d-%d", a->id, i);
        store_op_t ok_ops[] = {{STORE_OP_PUT, "b", good, i, "{}"},
                               {STORE_OP_INSERT, "b2", good, i, "{}"}};
        store_op_t bad_ops[] = {{STORE_OP_PUT, "b", bad, i, "{}"},
                                {STORE_OP_INSERT, "b2", "dup", 0, "{}"}};
        if (store_batch(a->st, ok_ops, 2) != PAI_OK)
            a->failures++;
        if (store_batch(a->st, bad_ops, 2) != PAI_E_EXISTS)
            a->failures++;
    }
    return NULL;
}

TEST(concurrent_batches_fail_alone)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_insert(st, "b2", "dup", 0, "{}") == PAI_OK);
    pthread_t th[8];
    writer_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (writer_arg_t){st, i, 0};
        pthread_create(&th[i], NULL, batch_writer_main, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(args[i].failures, 0);
    }
    int n = 0, n2 = 0;
    CHECK(store_scan(st, "b", count_cb, &n) == PAI_OK);
    CHECK(store_scan(st, "b2", count_cb, &n2) == PAI_OK);
    CHECK_INT_EQ(n, 240);  /* only the good batches' first records */
    CHECK_INT_EQ(n2, 241); /* their second records and "dup" */
    store_close(st);
}

TEST(migrations_are_numbered_and_applied_once)
{
    store_t *st = open_fresh();
    CHECK(st != NULL);
    if (!st)
        return;
    store_close(st);
    st = open_url(pg_url());
    CHECK(st != NULL);
    store_close(st);
    CHECK_INT_EQ(side_count("SELECT count(*) FROM pai_schema_migrations"), 1);
    CHECK_INT_EQ(side_count("SELECT max(version) FROM pai_schema_migrations"), 1);
}

static void *open_main(void *p)
{
    store_t **out = p;
    *out = open_url(pg_url());
    return NULL;
}

TEST(servers_starting_together_migrate_once)
{
    if (!side_exec("DROP TABLE IF EXISTS pai_records, pai_schema_migrations"))
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
    CHECK_INT_EQ(side_count("SELECT count(*) FROM pai_schema_migrations"), 1);
}

TEST(schema_newer_than_this_binary_is_refused)
{
    store_t *st = open_fresh();
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
    store_t *st = open_fresh();
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

int main(void)
{
    static const test_case_t always[] = {
        {"bad_url_is_refused_clearly", bad_url_is_refused_clearly},
        {"unknown_scheme_is_refused", unknown_scheme_is_refused},
        {"unreachable_server_fails_with_message", unreachable_server_fails_with_message},
    };
    static const test_case_t server[] = {
        {"pg_put_get_del_roundtrip", put_get_del_roundtrip},
        {"pg_insert_refuses_existing_key", insert_refuses_existing_key},
        {"pg_scan_orders_by_seq_then_bytewise_key_and_stops_early",
         scan_orders_by_seq_then_bytewise_key_and_stops_early},
        {"pg_scan_callback_may_use_the_store", scan_callback_may_use_the_store},
        {"pg_batch_is_atomic", batch_is_atomic},
        {"pg_oversize_value_is_refused", oversize_value_is_refused},
        {"pg_concurrent_writers_commit_despite_a_failing_neighbour_and_survive_reopen",
         concurrent_writers_commit_despite_a_failing_neighbour_and_survive_reopen},
        {"pg_concurrent_batches_fail_alone", concurrent_batches_fail_alone},
        {"pg_migrations_are_numbered_and_applied_once", migrations_are_numbered_and_applied_once},
        {"pg_servers_starting_together_migrate_once", servers_starting_together_migrate_once},
        {"pg_schema_newer_than_this_binary_is_refused", schema_newer_than_this_binary_is_refused},
        {"pg_dropped_connections_are_reestablished", dropped_connections_are_reestablished},
    };
    int rc = test_run_all_(always, ARRAY_LEN(always));
    if (!pg_url()) {
        /* not skipped: tests/suites/store_pg.sh runs them against a real server */
        printf("# %zu tests need PAI_PG_URL: tests/suites/store_pg.sh runs them\n",
               ARRAY_LEN(server));
        return rc;
    }
    int rc2 = test_run_all_(server, ARRAY_LEN(server));
    (void)side_exec("DROP TABLE IF EXISTS pai_records, pai_schema_migrations");
    return rc || rc2;
}
