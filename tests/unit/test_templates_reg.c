/*
 * test_templates_reg.c - the template registry (src/server/templates.h) over
 * a real store: publish, read, select, change, delete, use counts from many
 * threads, the examples published once, and everything read back after the
 * store is closed and opened again.
 *
 * Every case runs on SQLite (a fresh file); with PAI_PG_URL set (a database
 * it may clear: tests/suites/store_pg.sh sets it) they run again on
 * PostgreSQL, prefixed "pg_".  Without it the PostgreSQL cases are neither
 * run nor counted, as in test_store_pg.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "server/templates.h"
#include "test.h"

static char url_[4200]; /* the store every case opens */
static bool on_pg_;

static const char *pg_url(void)
{
    const char *u = getenv("PAI_PG_URL");
    return u && *u ? u : NULL;
}

/* A fresh store: a new SQLite file, or the PostgreSQL database without
 * the records a previous case left. */
static store_t *fresh_store(void)
{
    if (on_pg_) {
        PGconn *c = PQconnectdb(url_);
        PGresult *r = PQexec(c, "DELETE FROM pai_records WHERE kind IN ('template', 'tplyaml', "
                                "'meta')");
        PQclear(r); /* the table may not exist yet: store_open makes it */
        PQfinish(c);
    } else {
        char dir[] = "/tmp/pai-tpl-reg-XXXXXX";
        if (!mkdtemp(dir))
            return NULL;
        snprintf(url_, sizeof url_, "sqlite:%s/pai.db", dir);
    }
    store_t *st = NULL;
    char err[256];
    if (store_open(url_, &st, err, sizeof err) != PAI_OK) {
        fprintf(stderr, "  store_open %s: %s\n", url_, err);
        return NULL;
    }
    return st;
}

/* The registry over a fresh store (*st); NULL when either did not open (a
 * failed check). */
static templates_t *open_fresh(store_t **st)
{
    templates_t *t = NULL;
    *st = fresh_store();
    CHECK(*st && tpls_open(*st, &t, NULL) == PAI_OK);
    return t;
}

/* Close the case's registry and store; remove its SQLite folder. */
static void done(store_t *st, templates_t *t)
{
    tpls_free(t);
    store_close(st);
    if (!on_pg_ && str_has_prefix(url_, "sqlite:")) {
        char *cmd = str_printf("rm -rf '%.*s'", (int)(strrchr(url_, '/') - url_ - 7), url_ + 7);
        CHECK(system(cmd) == 0);
        free(cmd);
    }
}

/* What the registry reads back: t and its store closed, the store opened
 * again (*st) and a registry over it (NULL when either did not open). */
static templates_t *read_back(store_t **st, templates_t *t)
{
    tpls_free(t);
    store_close(*st);
    char err[256];
    store_t *again = NULL;
    *st = store_open(url_, &again, err, sizeof err) == PAI_OK ? again : NULL;
    t = NULL;
    CHECK(*st && tpls_open(*st, &t, NULL) == PAI_OK);
    return t;
}

static json_t *meta(const char *id, const char *vis)
{
    return xjson_pack("{ss ss ss s[s] ss sb sI}", "id", id, "title", id, "owner", "alice", "tags",
                      "t", "visibility", vis, "featured", 0, "useCount", (json_int_t)0);
}

static bool is_public(void *ud, const json_t *m)
{
    (void)ud;
    return strcmp(json_string_value(json_object_get(m, "visibility")), "public") == 0;
}

/* Whether the template's stored protocol reads back as want (says what it
 * read when not). */
static bool protocol_is(templates_t *t, const char *id, const char *want)
{
    char *y = NULL;
    bool same = tpls_protocol(t, id, &y, NULL) == PAI_OK && y && strcmp(y, want) == 0;
    if (!same)
        fprintf(stderr, "  %s's protocol: \"%s\", expected \"%s\"\n", id, y ? y : "(none)", want);
    free(y);
    return same;
}

static json_int_t uses(templates_t *t, const char *id)
{
    json_t *m = tpls_get(t, id);
    json_int_t n = m ? json_integer_value(json_object_get(m, "useCount")) : -1;
    json_decref(m);
    return n;
}

TEST(publish_read_select_and_read_back)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    CHECK(tpls_insert(t, meta("alice~a", "public"), "name: a\n", false, NULL) == PAI_OK);
    CHECK(tpls_insert(t, meta("alice~b", "private"), "name: b\n", false, NULL) == PAI_OK);
    json_t *m = tpls_get(t, "alice~a");
    CHECK_STR_EQ(json_string_value(json_object_get(m, "visibility")), "public");
    json_decref(m);
    CHECK(tpls_get(t, "alice~zz") == NULL);
    size_t total = 0;
    json_t *sel = tpls_page(t, is_public, NULL, NULL, 0, 10, &total);
    CHECK_INT_EQ(json_array_size(sel), 1);
    CHECK_INT_EQ(total, 1);
    json_decref(sel);
    char *y = NULL;
    CHECK(protocol_is(t, "alice~b", "name: b\n"));
    CHECK(tpls_protocol(t, "alice~zz", &y, NULL) == PAI_E_NO_TEMPLATE);
    CHECK(tpls_count_use(t, "alice~a") == PAI_OK);
    t = read_back(&st, t);
    sel = tpls_page(t, NULL, NULL, NULL, 0, 10, &total);
    CHECK_INT_EQ(json_array_size(sel), 2);
    json_decref(sel);
    CHECK_INT_EQ(uses(t, "alice~a"), 1);
    CHECK(protocol_is(t, "alice~a", "name: a\n"));
    done(st, t);
}

static void by_uses(const json_t *m, tpls_order_t *o)
{
    o->rank = json_integer_value(json_object_get(m, "useCount"));
    o->text = json_string_value(json_object_get(m, "title"));
}

static const char *id_at(const json_t *page, size_t i)
{
    return json_string_value(json_object_get(json_array_get(page, i), "id"));
}

TEST(a_page_is_sorted_by_rank_then_text_then_id_and_counts_what_was_kept)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    const char *ids[] = {"alice~c", "alice~a", "alice~b", "alice~d", "alice~e"};
    for (size_t i = 0; i < ARRAY_LEN(ids); i++) {
        json_t *m = meta(ids[i], i == 3 ? "private" : "public");
        json_object_set_new(m, "title", json_string(i == 4 ? "Same" : i == 2 ? "same" : ids[i]));
        CHECK(tpls_insert(t, m, "name: x\n", false, NULL) == PAI_OK);
    }
    CHECK(tpls_count_use(t, "alice~c") == PAI_OK); /* c: 1 use, the others 0 */
    size_t total = 0;
    json_t *page = tpls_page(t, is_public, NULL, by_uses, 0, 10, &total);
    CHECK_INT_EQ(total, 4);
    CHECK_INT_EQ(json_array_size(page), 4);
    CHECK_STR_EQ(id_at(page, 0), "alice~c");
    CHECK_STR_EQ(id_at(page, 1), "alice~a");
    CHECK_STR_EQ(id_at(page, 2), "alice~b"); /* "same" and "Same": equal text, then id */
    CHECK_STR_EQ(id_at(page, 3), "alice~e");
    json_decref(page);
    page = tpls_page(t, is_public, NULL, by_uses, 1, 2, &total);
    CHECK_INT_EQ(total, 4);
    CHECK_INT_EQ(json_array_size(page), 2);
    CHECK_STR_EQ(id_at(page, 0), "alice~a");
    json_decref(page);
    page = tpls_page(t, NULL, NULL, by_uses, 9, 2, &total);
    CHECK_INT_EQ(total, 5);
    CHECK_INT_EQ(json_array_size(page), 0);
    json_decref(page);
    done(st, t);
}

TEST(the_same_id_twice_is_a_conflict)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    CHECK(tpls_insert(t, meta("alice~a", "public"), "name: a\n", false, NULL) == PAI_OK);
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(tpls_insert(t, meta("alice~a", "private"), "name: other\n", false, &e) ==
          PAI_E_CONFLICT_TEMPLATE);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "alice~a");
    pai_error_free(&e);
    CHECK(protocol_is(t, "alice~a", "name: a\n"));
    done(st, t);
}

TEST(one_owner_publishes_at_most_500)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    char id[64];
    for (unsigned i = 0; i < TPLS_MAX_PER_OWNER; i++) {
        snprintf(id, sizeof id, "alice~t%u", i);
        if (tpls_insert(t, meta(id, "private"), "name: t\n", false, NULL) != PAI_OK)
            CHECK(!"an insert under the bound failed");
    }
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(tpls_insert(t, meta("alice~over", "private"), "name: t\n", false, &e) == PAI_E_NO_QUOTA);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "alice");
    pai_error_free(&e);
    json_t *bob = meta("bob~a", "private");
    json_object_set_new(bob, "owner", json_string("bob"));
    CHECK(tpls_insert(t, bob, "name: t\n", false, NULL) == PAI_OK);
    CHECK(tpls_insert(t, meta("alice~byadmin", "private"), "name: t\n", true, NULL) == PAI_OK);
    done(st, t);
}

static pai_err_t refuse(void *ud, json_t *m, pai_error_t *e)
{
    (void)ud;
    json_object_set_new(m, "title", json_string("changed"));
    return pai_error_set(e, PAI_E_FORBIDDEN, "no");
}

static pai_err_t retitle(void *ud, json_t *m, pai_error_t *e)
{
    (void)e;
    json_object_set_new(m, "title", json_string(ud));
    json_object_set_new(m, "id", json_string("mallory~x")); /* ignored: ids never change */
    return PAI_OK;
}

TEST(a_refused_change_changes_nothing_and_an_accepted_one_is_stored)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    CHECK(tpls_insert(t, meta("alice~a", "public"), "name: a\n", false, NULL) == PAI_OK);
    CHECK(tpls_update(t, "alice~a", refuse, NULL, "name: x\n", NULL) == PAI_E_FORBIDDEN);
    json_t *m = tpls_get(t, "alice~a");
    CHECK_STR_EQ(json_string_value(json_object_get(m, "title")), "alice~a");
    json_decref(m);
    CHECK(tpls_update(t, "alice~a", retitle, "New", "name: new\n", NULL) == PAI_OK);
    CHECK(tpls_update(t, "alice~none", retitle, "New", NULL, NULL) == PAI_E_NO_TEMPLATE);
    t = read_back(&st, t);
    m = tpls_get(t, "alice~a");
    CHECK_STR_EQ(json_string_value(json_object_get(m, "title")), "New");
    CHECK_STR_EQ(json_string_value(json_object_get(m, "id")), "alice~a");
    json_decref(m);
    CHECK(protocol_is(t, "alice~a", "name: new\n"));
    done(st, t);
}

TEST(delete_removes_both_records)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    CHECK(tpls_insert(t, meta("alice~a", "public"), "name: a\n", false, NULL) == PAI_OK);
    CHECK(tpls_delete(t, "alice~a", refuse, NULL, NULL) == PAI_E_FORBIDDEN);
    CHECK(tpls_delete(t, "alice~a", NULL, NULL, NULL) == PAI_OK);
    CHECK(tpls_delete(t, "alice~a", NULL, NULL, NULL) == PAI_E_NO_TEMPLATE);
    t = read_back(&st, t);
    CHECK(tpls_get(t, "alice~a") == NULL);
    char *y = NULL;
    CHECK(tpls_protocol(t, "alice~a", &y, NULL) == PAI_E_NO_TEMPLATE);
    done(st, t);
}

#define USERS 8
#define USES  25

static void *use_many(void *arg)
{
    for (int i = 0; i < USES; i++)
        if (tpls_count_use(arg, "alice~a") != PAI_OK)
            return arg;
    return NULL;
}

TEST(use_counts_from_many_threads_all_count)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    CHECK(tpls_insert(t, meta("alice~a", "public"), "name: a\n", false, NULL) == PAI_OK);
    pthread_t th[USERS];
    for (int i = 0; i < USERS; i++)
        CHECK(pthread_create(&th[i], NULL, use_many, t) == 0);
    for (int i = 0; i < USERS; i++) {
        void *r = NULL;
        pthread_join(th[i], &r);
        CHECK(r == NULL);
    }
    CHECK_INT_EQ(uses(t, "alice~a"), USERS * USES);
    t = read_back(&st, t);
    CHECK_INT_EQ(uses(t, "alice~a"), USERS * USES); /* the last write is the largest */
    done(st, t);
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char *p = str_printf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(p);
}

#define JOB(n)                                                                                     \
    "# The " n " job.\n#   pai submit " n ".yaml\nprotocolVersion: 2\nname: " n "\ntype: job\n"    \
    "prerequisites: [{type: dockerimage, name: i, uri: 'debian:12'}]\n"                            \
    "taskRoles:\n  m:\n    dockerImage: i\n"                                                       \
    "    resourcePerInstance: {cpu: 1, memoryMB: 64, gpu: 0}\n    commands: [ls]\n"

TEST(the_examples_are_published_once)
{
    char dir[] = "/tmp/pai-tpl-ex-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put_file(dir, "one.yaml", JOB("one"));
    put_file(dir, "two.yaml", JOB("two"));
    put_file(dir, "notajob.yaml", "physicalCluster: {}\n");
    put_file(dir, "secret.yaml", JOB("secret") "secrets: {k: v}\n");
    put_file(dir, "README.md", "not yaml");
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    size_t n = 0;
    CHECK(tpls_seed(t, dir, "root", &n, NULL) == PAI_OK);
    CHECK_INT_EQ(n, 2);
    json_t *m = tpls_get(t, "root~one");
    CHECK(json_is_true(json_object_get(m, "featured")));
    CHECK_STR_EQ(json_string_value(json_object_get(m, "visibility")), "public");
    CHECK_STR_EQ(json_string_value(json_object_get(m, "description")), "The one job.");
    CHECK_STR_EQ(json_string_value(json_object_get(m, "image")), "debian:12");
    json_decref(m);
    CHECK(tpls_get(t, "root~secret") == NULL);
    CHECK(tpls_delete(t, "root~one", NULL, NULL, NULL) == PAI_OK);
    t = read_back(&st, t);
    CHECK(tpls_seed(t, dir, "root", &n, NULL) == PAI_OK);
    CHECK_INT_EQ(n, 0);
    CHECK(tpls_get(t, "root~one") == NULL); /* a deleted example does not come back */
    done(st, t);
    char *cmd = str_printf("rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    free(cmd);
}

TEST(a_missing_examples_directory_is_a_clear_error)
{
    store_t *st = NULL;
    templates_t *t = open_fresh(&st);
    size_t n = 0;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(tpls_seed(t, "/nonexistent/examples", "root", &n, &e) == PAI_E_BAD_CONFIG);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "/nonexistent/examples");
    pai_error_free(&e);
    done(st, t);
}

int main(void)
{
    util_alloc_init();
    log_set_level(LOG_WARN);
    static const test_case_t sqlite[] = {
        {"publish_read_select_and_read_back", publish_read_select_and_read_back},
        {"a_page_is_sorted_by_rank_then_text_then_id_and_counts_what_was_kept",
         a_page_is_sorted_by_rank_then_text_then_id_and_counts_what_was_kept},
        {"the_same_id_twice_is_a_conflict", the_same_id_twice_is_a_conflict},
        {"one_owner_publishes_at_most_500", one_owner_publishes_at_most_500},
        {"a_refused_change_changes_nothing_and_an_accepted_one_is_stored",
         a_refused_change_changes_nothing_and_an_accepted_one_is_stored},
        {"delete_removes_both_records", delete_removes_both_records},
        {"use_counts_from_many_threads_all_count", use_counts_from_many_threads_all_count},
        {"the_examples_are_published_once", the_examples_are_published_once},
        {"a_missing_examples_directory_is_a_clear_error",
         a_missing_examples_directory_is_a_clear_error},
    };
    int rc = test_run_all_(sqlite, ARRAY_LEN(sqlite));
    if (!pg_url()) {
        printf("# %zu tests also run on PostgreSQL with PAI_PG_URL: tests/suites/store_pg.sh\n",
               ARRAY_LEN(sqlite));
        return rc;
    }
    on_pg_ = true;
    snprintf(url_, sizeof url_, "%s", pg_url());
    test_case_t pg[ARRAY_LEN(sqlite)];
    char names[ARRAY_LEN(sqlite)][128];
    for (size_t i = 0; i < ARRAY_LEN(sqlite); i++) {
        snprintf(names[i], sizeof names[i], "pg_%s", sqlite[i].name);
        pg[i].name = names[i];
        pg[i].fn = sqlite[i].fn;
    }
    return test_run_all_(pg, ARRAY_LEN(pg)) || rc;
}
