/*
 * test_auth_stall.c - a slow store commit of an auth change stalls no token
 * check (src/server/auth_int.h, "Locking"): a change holds `wlock` (writers
 * only) across its store write and takes the maps' `lock`, which every
 * request's token check reads under, only to swap the new record in.
 *
 * The commit is stalled for real: another SQLite connection holds the
 * database's write lock (BEGIN IMMEDIATE), so the change waits in the
 * store (its busy timeout) until the test lets go.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "test_srvctx.h"

#define STALL_MS 1500

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct {
    srvctx_t *s;
    pai_err_t rc;
    atomic_bool done;
    double took_ms;
} change_t;

/* A group change (the VC hook: wlock, a store write, the swap). */
static void *add_vc_group(void *arg)
{
    change_t *c = arg;
    double t0 = mono_ms();
    c->rc = auth_vc_added(&c->s->ctx, "stalled-vc");
    c->took_ms = mono_ms() - t0;
    atomic_store(&c->done, true);
    return NULL;
}

static pai_err_t ident(srvctx_t *s, const char *tok, auth_ident_t *id)
{
    char h[400];
    snprintf(h, sizeof(h), "Bearer %s", tok);
    return auth_identify(s->ctx.auth, h, id);
}

TEST(token_checks_go_on_while_an_auth_change_waits_for_the_store)
{
    srvctx_t s = {0};
    CHECK(srvctx_open(&s, NULL, NULL) == 0);
    char *tok = NULL;
    CHECK(auth_token_new(s.ctx.auth, "admin", false, 3600, &tok) == PAI_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/pai.db", s.dir);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_busy_timeout(db, 10000); /* the store may be writing (a checkpoint) */
    CHECK(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    change_t c = {.s = &s};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, add_vc_group, &c) == 0);
    /* the change is in its store write, stalled; requests are checked meanwhile */
    double t0 = mono_ms(), worst = 0;
    int checks = 0, ok = 0;
    while (mono_ms() - t0 < STALL_MS) {
        double a = mono_ms();
        auth_ident_t id;
        ok += ident(&s, tok, &id) == PAI_OK && id.who.admin;
        ok += auth_user_exists(&s.ctx, "admin");
        checks += 2;
        double d = mono_ms() - a;
        worst = d > worst ? d : worst;
        usleep(1000);
    }
    bool stalled = !atomic_load(&c.done);
    CHECK(stalled); /* the whole time: the checks ran during the commit */
    CHECK_INT_EQ(ok, checks);
    CHECK(worst < STALL_MS / 3.0);
    printf("# %d token and user checks during a %d ms stalled commit, the slowest %.3f ms\n",
           checks, STALL_MS, worst);
    CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    pthread_join(t, NULL);
    CHECK(c.rc == PAI_OK);
    CHECK(c.took_ms >= STALL_MS);
    CHECK(json_object_get(s.ctx.auth->groups, "stalled-vc") != NULL);
    sqlite3_close(db);
    free(tok);
    srvctx_close(&s);
}

RUN_TESTS(token_checks_go_on_while_an_auth_change_waits_for_the_store)
