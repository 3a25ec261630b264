/* test_store.c - the SQLite store: the store contract (store_contract.h),
 * schema versions and file errors. */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"
#include "store_contract.h"
#include "test.h"

static char dir_[256];

static store_t *contract_open(void)
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

/* A bare path: the default backend. */
static store_t *contract_reopen(void)
{
    char url[512], err[256];
    snprintf(url, sizeof(url), "%s/pai.db", dir_);
    store_t *st = NULL;
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

static void contract_cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_);
    if (system(cmd) != 0)
        fprintf(stderr, "  cleanup failed\n");
}

TEST(schema_newer_than_this_binary_is_refused)
{
    store_t *st = contract_open();
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
    contract_cleanup();
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

/* One column of the first row of sql on the store's file, as text
 * (malloc'ed; NULL when there is no row). */
static char *side_text(const char *sql)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/pai.db", dir_);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char *out = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        out = xstrdup((const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

typedef struct {
    int n;
    int64_t last_seq;
    bool ordered;
} seq_acc_t;

static int seq_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)key;
    (void)json;
    seq_acc_t *a = ud;
    if (a->n++ > 0 && seq < a->last_seq)
        a->ordered = false;
    a->last_seq = seq;
    return 0;
}

static int count_all_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    (void)kind;
    (void)key;
    (void)seq;
    (void)json;
    ++*(int *)ud;
    return 0;
}

/* A fresh dir_ holding a pai.db in WAL mode made by sql (an older pai's
 * schema), open; NULL when it cannot be made. */
static sqlite3 *old_store(const char *sql)
{
    char tmpl[] = "/tmp/pai-test-store-XXXXXX";
    if (!mkdtemp(tmpl))
        return NULL;
    str_copy(dir_, tmpl, sizeof(dir_));
    char path[600];
    snprintf(path, sizeof(path), "%s/pai.db", dir_);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* The store in dir_ opened again (which migrates it), its schema version
 * checked against want; NULL (and dir_ removed) when it cannot be opened. */
static store_t *reopened_at(const char *want)
{
    store_t *st = contract_reopen();
    CHECK(st != NULL);
    if (!st) {
        contract_cleanup();
        return NULL;
    }
    char *v = side_text("PRAGMA user_version");
    CHECK_STR_EQ(v ? v : "", want);
    free(v);
    return st;
}

/* A store of schema version 1 (a WITHOUT ROWID table, every kind in the
 * scan index) written by an older pai: opening it migrates it to version 3
 * (a rowid table, the scan index without the job's config, commands and
 * SSH keys) with every record, and every read answers as before. */
TEST(a_version_1_store_is_migrated_with_every_record)
{
    sqlite3 *db = old_store("CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL,"
                            " seq INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL,"
                            " PRIMARY KEY (kind, key)) WITHOUT ROWID;"
                            "CREATE INDEX records_scan ON records (kind, seq, key);"
                            "PRAGMA user_version = 1;");
    CHECK(db != NULL);
    if (!db)
        return;
    CHECK(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
    for (int i = 0; i < 200; i++) {
        char *sql = str_printf("INSERT INTO records VALUES ('job', 'j%03d', %d, '{\"i\":%d}');"
                               "INSERT INTO records VALUES ('jobcmd', 'j%03d', %d, '{}');"
                               "INSERT INTO records VALUES ('event', 'j%03d/%010d', %d, '{}');",
                               i, 1000 - i, i, i, 1000 - i, i % 7, i, i);
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        free(sql);
    }
    CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);

    store_t *st = reopened_at("3");
    if (!st)
        return;
    char *v = side_text("SELECT sql FROM sqlite_master WHERE name = 'records'");
    CHECK(v && !strstr(v, "WITHOUT ROWID"));
    free(v);
    v = side_text("SELECT sql FROM sqlite_master WHERE name = 'records_scan'");
    CHECK(v && strstr(v, "kind <> 'jobcmd'"));
    free(v);
    char *j = NULL;
    CHECK(store_get(st, "job", "j123", &j) == PAI_OK);
    CHECK_STR_EQ(j ? j : "", "{\"i\":123}");
    free(j);
    seq_acc_t jobs = {.ordered = true}, cmds = {.ordered = true}, evs = {.ordered = true};
    CHECK(store_scan(st, "job", seq_cb, &jobs) == PAI_OK);
    CHECK_INT_EQ(jobs.n, 200);
    CHECK(jobs.ordered);
    CHECK(store_scan(st, "jobcmd", seq_cb, &cmds) == PAI_OK); /* left out of the scan index */
    CHECK_INT_EQ(cmds.n, 200);
    CHECK(cmds.ordered);
    CHECK(store_scan_prefix(st, "event", "j003/", seq_cb, &evs) == PAI_OK);
    CHECK_INT_EQ(evs.n, 29); /* i % 7 == 3 of 0..199, in key order: seq i */
    CHECK(evs.ordered);
    int all = 0;
    CHECK(store_scan_all(st, count_all_cb, &all) == PAI_OK);
    CHECK_INT_EQ(all, 600);
    /* writes go on: a new record, a rewrite with the same seq, a delete */
    CHECK(store_insert(st, "job", "j200", 1, "{}") == PAI_OK);
    CHECK(store_insert(st, "job", "j200", 1, "{}") == PAI_E_EXISTS);
    CHECK(store_put(st, "job", "j000", 1000, "{\"i\":-1}") == PAI_OK);
    CHECK(store_del(st, "jobcmd", "j001") == PAI_OK);
    store_close(st);
    v = side_text("PRAGMA integrity_check");
    CHECK_STR_EQ(v ? v : "", "ok");
    free(v);
    contract_cleanup();
}

/* Opening a store turned SQLite's memory statistics off before SQLite's
 * first use in this process (the first store_open, this case's own when it
 * runs alone): no allocation is counted while a store is open and writes. */
TEST(sqlite_counts_no_allocation)
{
    store_t *st = contract_open();
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(store_put(st, "job", "j1", 1, "{\"a\":1}") == PAI_OK);
    CHECK_INT_EQ((long long)sqlite3_memory_used(), 0);
    store_close(st);
    contract_cleanup();
}

/* Version 3's scan index condition, as sqlite.c's SCANNED_WHERE says it. */
#define SCANNED "kind <> 'jobcfg' AND kind <> 'jobcmd' AND kind <> 'jobssh'"

/* How many rows that `how sql` (EXPLAIN or EXPLAIN QUERY PLAN) prints on
 * the store's file have in column col needle (exact: equal to it); -1
 * when it cannot be prepared. */
static int explained(const char *how, const char *sql, int col, const char *needle, bool exact)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/pai.db", dir_);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    char *ex = str_printf("%s %s", how, sql);
    int n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, ex, -1, &s, NULL) == SQLITE_OK) {
        n = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *v = (const char *)sqlite3_column_text(s, col);
            n += v && (exact ? !strcmp(v, needle) : strstr(v, needle) != NULL);
        }
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    free(ex);
    return n;
}

/* The OpenEphemeral instructions of sql's program: a temporary b-tree made
 * and dropped each time the statement runs. */
static int ephemerals(const char *sql)
{
    return explained("EXPLAIN", sql, 1, "OpenEphemeral", true);
}

/* The lines of sql's query plan that hold needle. */
static int plan_says(const char *sql, const char *needle)
{
    return explained("EXPLAIN QUERY PLAN", sql, 3, needle, false);
}

/* A store of schema version 2, whose scan index said "kind NOT IN (...)":
 * opening it migrates it to version 3, the same index with the condition
 * as three comparisons, so that no write builds a temporary b-tree of the
 * names to test its row against (it did at every insert, upsert and
 * delete); the records and the scans' order stay, and a scan still reads
 * the index (no sort of its own). */
TEST(a_version_2_store_gets_a_scan_index_without_a_list)
{
    sqlite3 *db = old_store("CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL,"
                            " seq INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL,"
                            " PRIMARY KEY (kind, key));"
                            "CREATE INDEX records_scan ON records (kind, seq, key)"
                            " WHERE kind NOT IN ('jobcfg', 'jobcmd', 'jobssh');"
                            "PRAGMA user_version = 2;");
    CHECK(db != NULL);
    if (!db)
        return;
    for (int i = 0; i < 100; i++) {
        char *sql = str_printf("INSERT INTO records VALUES ('job', 'j%03d', %d, '{}');"
                               "INSERT INTO records VALUES ('jobcfg', 'j%03d', %d, '{}');",
                               i, 500 - i, i, i);
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        free(sql);
    }
    sqlite3_close(db);
    static const char put[] = "INSERT INTO records (kind, key, seq, json) VALUES (?1, ?2, ?3, ?4)"
                              " ON CONFLICT (kind, key) DO UPDATE SET seq = excluded.seq,"
                              " json = excluded.json";
    static const char del[] = "DELETE FROM records WHERE kind = ?1 AND key = ?2";
    CHECK(ephemerals(put) > 0); /* what version 2 cost: the test can fail */

    store_t *st = reopened_at("3");
    if (!st)
        return;
    char *v = side_text("SELECT sql FROM sqlite_master WHERE name = 'records_scan'");
    CHECK(v && !strstr(v, " IN ") && strstr(v, SCANNED));
    free(v);
    CHECK_INT_EQ(ephemerals(put), 0);
    CHECK_INT_EQ(ephemerals(del), 0);
    CHECK_INT_EQ(ephemerals("INSERT INTO records (kind, key, seq, json) VALUES (?1, ?2, ?3, ?4)"),
                 0);
    v = side_text("SELECT count(*) FROM records WHERE kind = 'job' AND " SCANNED);
    CHECK_STR_EQ(v ? v : "", "100");
    free(v);
    /* the scan: in seq order, from the index (a plan without a sort) */
    /* a scan of the jobs that repeats the condition, as sqlite.c's SQL_SCAN does */
    static const char jobs_scan[] = "SELECT kind, key, seq, json FROM records"
                                    " WHERE kind = 'job' AND " SCANNED " ORDER BY seq, key";
    CHECK_INT_EQ(plan_says(jobs_scan, "USING INDEX records_scan"), 1);
    CHECK_INT_EQ(plan_says(jobs_scan, "TEMP B-TREE"), 0);
    seq_acc_t jobs = {.ordered = true}, cfgs = {.ordered = true};
    CHECK(store_scan(st, "job", seq_cb, &jobs) == PAI_OK);
    CHECK_INT_EQ(jobs.n, 100);
    CHECK(jobs.ordered);
    CHECK(store_scan(st, "jobcfg", seq_cb, &cfgs) == PAI_OK);
    CHECK_INT_EQ(cfgs.n, 100);
    CHECK(cfgs.ordered);
    CHECK(store_put(st, "job", "j000", 1000, "{\"i\":1}") == PAI_OK);
    CHECK(store_del(st, "job", "j001") == PAI_OK);
    store_close(st);
    v = side_text(
        "SELECT count(*) FROM records INDEXED BY records_scan WHERE kind = 'job' AND " SCANNED);
    CHECK_STR_EQ(v ? v : "", "99");
    free(v);
    v = side_text("PRAGMA integrity_check");
    CHECK_STR_EQ(v ? v : "", "ok");
    free(v);
    contract_cleanup();
}

int main(void)
{
    util_alloc_init();
    static const test_case_t cases[] = {
        STORE_CONTRACT_CASES(""),
        {"sqlite_counts_no_allocation", sqlite_counts_no_allocation},
        {"schema_newer_than_this_binary_is_refused", schema_newer_than_this_binary_is_refused},
        {"postgres_url_is_refused_clearly", postgres_url_is_refused_clearly},
        {"unwritable_path_fails_with_message", unwritable_path_fails_with_message},
        {"a_version_1_store_is_migrated_with_every_record",
         a_version_1_store_is_migrated_with_every_record},
        {"a_version_2_store_gets_a_scan_index_without_a_list",
         a_version_2_store_gets_a_scan_index_without_a_list},
    };
    return test_run_all_(cases, ARRAY_LEN(cases));
}
