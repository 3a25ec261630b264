/*
 * store_contract.h - the store contract (store.h), one case list run
 * against every backend: test_store.c (SQLite) and test_store_pg.c
 * (PostgreSQL).  The including file defines, before including this one:
 *
 *   static store_t *contract_open(void);   a fresh, empty store
 *   static store_t *contract_reopen(void); the same store opened again
 *   static void contract_cleanup(void);    after a case (files, tables)
 *
 * and lists STORE_CONTRACT_CASES(prefix) in its test table.  What only one
 * backend has (migrations, reconnects, file errors) stays in its own file.
 */
#ifndef PAI_TESTS_STORE_CONTRACT_H
#define PAI_TESTS_STORE_CONTRACT_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store/store.h"
#include "test.h"

static store_t *contract_open(void);
static store_t *contract_reopen(void);
static void contract_cleanup(void);

TEST(put_get_del_roundtrip)
{
    store_t *st = contract_open();
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
    const char *evil = "o'b\"; DROP TABLE records; DROP TABLE pai_records; --";
    CHECK(store_put(st, "user", evil, 0, "{\"q\":\"'\"}") == PAI_OK);
    CHECK(store_get(st, "user", evil, &j) == PAI_OK);
    CHECK_STR_EQ(j, "{\"q\":\"'\"}");
    free(j);
    store_close(st);
    contract_cleanup();
}

TEST(insert_refuses_existing_key)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
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
    contract_cleanup();
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
    store_t *st = contract_open();
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
    contract_cleanup();
}

/* A put over an existing record replaces its seq and value: the scan
 * order follows the new seq, and there is still one record. */
TEST(put_rewrite_moves_seq_and_value)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_put(st, "job", "a", 1, "{\"v\":1}") == PAI_OK);
    CHECK(store_put(st, "job", "b", 2, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "a", 1, "{\"v\":2}") == PAI_OK); /* same seq */
    CHECK(store_put(st, "job", "a", 3, "{\"v\":3}") == PAI_OK); /* new seq */
    scan_acc_t acc = {0};
    CHECK(store_scan(st, "job", scan_cb, &acc) == PAI_OK);
    CHECK_INT_EQ(acc.n, 2);
    CHECK_STR_EQ(acc.keys[0], "b");
    CHECK_STR_EQ(acc.keys[1], "a");
    CHECK_INT_EQ(acc.seqs[1], 3);
    char *j = NULL;
    CHECK(store_get(st, "job", "a", &j) == PAI_OK);
    CHECK_STR_EQ(j, "{\"v\":3}");
    free(j);
    store_close(st);
    contract_cleanup();
}

typedef struct {
    char rows[16][48];
    int n;
} all_acc_t;

static int all_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    (void)seq;
    (void)json;
    all_acc_t *a = ud;
    if (a->n < 16)
        snprintf(a->rows[a->n++], 48, "%s/%s", kind, key);
    return 0;
}

TEST(scan_prefix_and_scan_all_order_by_key)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    /* a job's events: "<job>/<number>"; "a~j" must not see "a~j2"'s */
    CHECK(store_put(st, "event", "a~j/0000000001", 9, "{}") == PAI_OK);
    CHECK(store_put(st, "event", "a~j/0000000000", 10, "{}") == PAI_OK);
    CHECK(store_put(st, "event", "a~j2/0000000000", 1, "{}") == PAI_OK);
    CHECK(store_put(st, "event", "a~i/0000000000", 1, "{}") == PAI_OK);
    CHECK(store_put(st, "job", "a~j/x", 1, "{}") == PAI_OK);
    scan_acc_t acc = {0};
    CHECK(store_scan_prefix(st, "event", "a~j/", scan_cb, &acc) == PAI_OK);
    CHECK_INT_EQ(acc.n, 2);
    CHECK_STR_EQ(acc.keys[0], "a~j/0000000000");
    CHECK_STR_EQ(acc.keys[1], "a~j/0000000001");
    CHECK(store_scan_prefix(st, "event", "", scan_cb, &acc) == PAI_E_INVALID);
    all_acc_t all = {0};
    CHECK(store_scan_all(st, all_cb, &all) == PAI_OK);
    CHECK_INT_EQ(all.n, 5);
    CHECK_STR_EQ(all.rows[0], "event/a~i/0000000000");
    CHECK_STR_EQ(all.rows[1], "event/a~j/0000000000");
    CHECK_STR_EQ(all.rows[3], "event/a~j2/0000000000");
    CHECK_STR_EQ(all.rows[4], "job/a~j/x");
    store_close(st);
    contract_cleanup();
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
    store_t *st = contract_open();
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
    contract_cleanup();
}

TEST(batch_is_atomic)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_insert(st, "k", "exists", 0, "{}") == PAI_OK);
    uint64_t commits = store_commits(st); /* one per committed write here: no other writer */
    CHECK(commits >= 1);
    store_op_t bad[] = {
        {STORE_OP_PUT, "k", "new1", 0, "{}"},
        {STORE_OP_INSERT, "k", "exists", 0, "{}"},
    };
    CHECK(store_batch(st, bad, 2) == PAI_E_EXISTS);
    CHECK_INT_EQ(store_commits(st), commits); /* rolled back: no commit counted */
    char *j = NULL;
    CHECK(store_get(st, "k", "new1", &j) == PAI_E_NOT_FOUND);
    store_op_t good[] = {
        {STORE_OP_PUT, "k", "new1", 0, "{}"},
        {STORE_OP_DEL, "k", "exists", 0, NULL},
        {STORE_OP_DEL, "k", "absent", 0, NULL},
    };
    CHECK(store_batch(st, good, 3) == PAI_OK);
    CHECK_INT_EQ(store_commits(st), commits + 1); /* a batch of three: one commit */
    CHECK(store_get(st, "k", "new1", &j) == PAI_OK);
    free(j);
    CHECK(store_get(st, "k", "exists", &j) == PAI_E_NOT_FOUND);
    store_close(st);
    contract_cleanup();
}

TEST(oversize_value_is_refused)
{
    store_t *st = contract_open();
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
    contract_cleanup();
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

/* Eight writers, and `extra` (when not NULL) as a ninth: its requests must
 * fail alone, whatever it does. */
static void contract_concurrent_writers(void *(*extra)(void *))
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    pthread_t th[9];
    writer_arg_t args[9];
    int n = extra ? 9 : 8;
    for (int i = 0; i < n; i++) {
        args[i] = (writer_arg_t){st, i, 0};
        pthread_create(&th[i], NULL, i == 8 ? extra : writer_main, &args[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT_EQ(args[i].failures, 0);
    }
    store_close(st);
    st = contract_reopen();
    CHECK(st != NULL);
    if (!st)
        return;
    int got = 0;
    CHECK(store_scan(st, "job", count_cb, &got) == PAI_OK);
    CHECK_INT_EQ(got, 400);
    store_close(st);
    contract_cleanup();
}

TEST(concurrent_writers_all_commit_and_survive_reopen)
{
    contract_concurrent_writers(NULL);
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
    store_t *st = contract_open();
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
    contract_cleanup();
}

/* The contract's rows for a test table; prefix names the backend ("" or "pg_"). */
#define STORE_CONTRACT_CASES(prefix)                                                               \
    {prefix "put_get_del_roundtrip", put_get_del_roundtrip},                                       \
        {prefix "insert_refuses_existing_key", insert_refuses_existing_key},                       \
        {prefix "scan_orders_by_seq_then_bytewise_key_and_stops_early",                            \
         scan_orders_by_seq_then_bytewise_key_and_stops_early},                                    \
        {prefix "put_rewrite_moves_seq_and_value", put_rewrite_moves_seq_and_value},               \
        {prefix "scan_callback_may_use_the_store", scan_callback_may_use_the_store},               \
        {prefix "scan_prefix_and_scan_all_order_by_key", scan_prefix_and_scan_all_order_by_key},   \
        {prefix "batch_is_atomic", batch_is_atomic},                                               \
        {prefix "oversize_value_is_refused", oversize_value_is_refused},                           \
        {prefix "concurrent_writers_all_commit_and_survive_reopen",                                \
         concurrent_writers_all_commit_and_survive_reopen},                                        \
    {                                                                                              \
        prefix "concurrent_batches_fail_alone", concurrent_batches_fail_alone                      \
    }

#endif
