/* test_store.c - the SQLite store: CRUD, scan order, batches, concurrency, reopen. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"
#include "test.h"

static char dir_[256];

static store_t *open_fresh(void)
{
    char tmpl[] = "/tmp/pai-test-store-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d)
        return NULL;
    str_copy(dir_, d, sizeof(dir_));
    char url[512], err[256];
    snprintf(url, sizeof(url), "sqlite:%s/pai.db", dir_);
    store_t *st = NULL;
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

static store_t *reopen(void)
{
    char url[512], err[256];
    snprintf(url, sizeof(url), "%s/pai.db", dir_);
    store_t *st = NULL;
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

static void cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_);
    if (system(cmd) != 0)
        fprintf(stderr, "  cleanup failed\n");
}

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
    store_close(st);
    cleanup();
}

TEST(insert_refuses_existing_key)
{
    store_t *st = open_fresh();
    if (!st)
        return;
    CHECK(store_insert(st, "job", "a~b", 1, "{}") == PAI_OK);
    CHECK(store_insert(st, "job", "a~b", 2, "{\"x\":1}") == PAI_E_EXISTS);
    char *j = NULL;
    CHECK(store_get(st, "job", "a~b", &j) == PAI_OK);
    CHECK_STR_EQ(j, "{}");
    free(j);
    /* the same key in another kind is a different record */
    CHECK(store_insert(st, "vc", "a~b", 1, "{}") == PAI_OK);
    store_close(st);
    cleanup();
}

typedef struct {
    char keys[16][32];
    int n;
} scan_acc_t;

static int scan_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)seq;
    (void)json;
    scan_acc_t *a = ud;
    if (a->n < 16)
        str_copy(a->keys[a->n++], key, 32);
    return a->n >= 3 && strcmp(key, "stop") == 0;
}

TEST(scan_orders_by_seq_then_key_and_stops_early)
{
    store_t *st = open_fresh();
    if (!st)
        return;
    CHECK(store_put(st, "job", "c", 2, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "b", 1, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "a", 2, "{}") == PAI_OK);
    CHECK(store_put(st, "user", "x", 0, "{}") == PAI_OK);
    scan_acc_t acc = {0};
    CHECK(store_scan(st, "job", scan_cb, &acc) == PAI_OK);
    CHECK_INT_EQ(acc.n, 3);
    CHECK_STR_EQ(acc.keys[0], "b");
    CHECK_STR_EQ(acc.keys[1], "a");
    CHECK_STR_EQ(acc.keys[2], "c");
    CHECK(store_put(st, "job", "stop", 3, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "z", 4, "{}") == PAI_OK);
    memset(&acc, 0, sizeof(acc));
    CHECK(store_scan(st, "job", scan_cb, &acc) == PAI_OK);
    CHECK_INT_EQ(acc.n, 4);
    store_close(st);
    cleanup();
}

TEST(batch_is_atomic)
{
    store_t *st = open_fresh();
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
    cleanup();
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
        /* a failing insert in the same group must not affect the others */
        if (store_insert(a->st, "job", key, i, "{}") != PAI_E_EXISTS)
            a->failures++;
    }
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

TEST(concurrent_writers_all_commit_and_survive_reopen)
{
    store_t *st = open_fresh();
    if (!st)
        return;
    pthread_t th[8];
    writer_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (writer_arg_t){st, i, 0};
        pthread_create(&th[i], NULL, writer_main, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(args[i].failures, 0);
    }
    store_close(st);
    st = reopen();
    CHECK(st != NULL);
    if (!st)
        return;
    int n = 0;
    CHECK(store_scan(st, "job", count_cb, &n) == PAI_OK);
    CHECK_INT_EQ(n, 400);
    store_close(st);
    cleanup();
}

TEST(schema_newer_than_this_binary_is_refused)
{
    store_t *st = open_fresh();
    if (!st)
        return;
    CHECK(store_put(st, "k", "a", 0, "{}") == PAI_OK);
    store_close(st);
    char path[600];
    snprintf(path, sizeof(path), "%s/pai.db", dir_);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    st = NULL;
    CHECK(store_open(path, &st, err, sizeof(err)) == PAI_E_BAD_CONFIG);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(err, "newer");
    cleanup();
}

TEST(postgres_url_is_refused_clearly)
{
    /* the PostgreSQL backend itself is tested in test_store_pg.c */
    store_t *st = NULL;
    char err[256] = "";
    CHECK(store_open("postgres://127.0.0.1:1/pai", &st, err, sizeof(err)) == PAI_E_UNAVAILABLE);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(err, "PostgreSQL");
}

TEST(unwritable_path_fails_with_message)
{
    store_t *st = NULL;
    char err[256] = "";
    CHECK(store_open("sqlite:/nonexistent-dir-pai/x/pai.db", &st, err, sizeof(err)) != PAI_OK);
    CHECK(st == NULL);
    CHECK_STR_CONTAINS(err, "cannot open");
}

RUN_TESTS(put_get_del_roundtrip, insert_refuses_existing_key,
          scan_orders_by_seq_then_key_and_stops_early, batch_is_atomic,
          concurrent_writers_all_commit_and_survive_reopen,
          schema_newer_than_this_binary_is_refused, postgres_url_is_refused_clearly,
          unwritable_path_fails_with_message)
