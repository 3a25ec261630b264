/* test_store.c - the SQLite store: the store contract (store_contract.h),
 * schema versions and file errors. */
#include <sqlite3.h>
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

int main(void)
{
    util_alloc_init();
    static const test_case_t cases[] = {
        STORE_CONTRACT_CASES(""),
        {"schema_newer_than_this_binary_is_refused", schema_newer_than_this_binary_is_refused},
        {"postgres_url_is_refused_clearly", postgres_url_is_refused_clearly},
        {"unwritable_path_fails_with_message", unwritable_path_fails_with_message},
    };
    return test_run_all_(cases, ARRAY_LEN(cases));
}
