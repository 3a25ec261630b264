/*
 * test_engine_list.c - the job list renders without the engine lock
 * (src/engine/joblist.c): a submission goes through while a list is being
 * rendered, and the rows render as the jobs themselves do.
 */
#include <pthread.h>

#include "engine/codec.h"
#include "engine_fixture.h"

/* ---------------------------------------------------------------- helpers */

static json_t *list_of(rig_t *r, const char *order, int64_t offset, int64_t limit)
{
    engine_filter_t f = {.order = order, .offset = offset, .limit = limit, .with_total = true};
    json_t *out = NULL;
    CHECK(engine_list(r->e, &f, &out, NULL) == PAI_OK);
    return out ? out : json_object();
}

/* The summary of every listed job as memory renders it, by debugId: what
 * the whole list rendered under the lock before (new reference). */
static json_t *summaries_under_lock(rig_t *r)
{
    json_t *by = json_object();
    engine_lock(r->e);
    int64_t now = engine_now_ms(r->e);
    for (size_t i = 0; i < r->e->table.nlist; i++) {
        const lc_job_t *job = r->e->table.list[i];
        json_t *s = codec_render_summary(job);
        int64_t since = engine_gpu_idle_since(r->e, job, now);
        if (since) {
            json_object_set_new(s, "gpuIdle", json_true());
            json_object_set_new(s, "gpuIdleSince", json_integer(since));
        }
        json_object_set_new(by, job->name, s);
    }
    engine_unlock(r->e);
    return by;
}

/* Every row of list equals the job's summary rendered under the lock. */
static void check_rows_as_jobs(rig_t *r, const json_t *list)
{
    json_t *by = summaries_under_lock(r), *row;
    size_t i;
    CHECK(json_array_size(json_object_get(list, "data")) == json_object_size(by));
    json_array_foreach(json_object_get(list, "data"), i, row)
    {
        const char *name = json_string_value(json_object_get(row, "debugId"));
        json_t *want = name ? json_object_get(by, name) : NULL;
        CHECK(want != NULL && json_equal(row, want));
        if (want && !json_equal(row, want)) {
            char *a = json_dumps(row, JSON_SORT_KEYS), *b = json_dumps(want, JSON_SORT_KEYS);
            fprintf(stderr, "  listed %s\n  memory %s\n", a, b);
            free(a);
            free(b);
        }
    }
    json_decref(by);
}

/* A cluster of one 2-GPU node with jobs in every kind of state: running
 * (one idle), waiting, stopped, succeeded; tags on some. */
static bool populate(rig_t *r, agent_t *a)
{
    if (!rig_open_synced(r, a))
        return false;
    a->has_util = true;
    a->util = 0;
    char *id = submit_running(r, a, "busy", 0);
    sync_quiet(r, a, one(report(id, "running", 0)));
    r->now += 61000;
    sync_quiet(r, a, one(report(id, "running", 0))); /* idle a minute: gpuIdle */
    char *done = submit_running(r, a, "done", 0);
    sync_quiet(r, a, one(report(done, "exited", 0)));
    CHECK(submit(r, "wait1", 1, 0));
    CHECK(submit(r, "wait2", 2, 1));
    CHECK(submit(r, "gone", 1, 0));
    CHECK(engine_set_execution(r->e, "alice~gone", true, NULL) == PAI_OK);
    CHECK(engine_tag(r->e, "alice~wait1", "red", true, NULL) == PAI_OK);
    CHECK(engine_tag(r->e, "alice~busy", "blue", true, NULL) == PAI_OK);
    tick(r);
    CHECK_STR_EQ(state_of(r, "alice~busy"), "RUNNING");
    free(id);
    free(done);
    return true;
}

/* ---------------------------------------------------------------- tests */

TEST(listed_rows_render_as_the_jobs_in_memory_do_and_follow_their_changes)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!populate(&r, &a)) {
        CHECK(!"populate");
        return;
    }
    json_t *l = list_of(&r, "jobName,ASC", 0, 0);
    CHECK(json_integer_value(json_object_get(l, "totalCount")) == 5);
    check_rows_as_jobs(&r, l);
    json_t *row;
    size_t i, idle = 0;
    json_array_foreach(json_object_get(l, "data"), i, row) idle +=
        json_is_true(json_object_get(row, "gpuIdle"));
    CHECK(idle == 1); /* busy's GPU: only memory knows */
    json_decref(l);
    /* changes after a list: the next list shows them (the rows are rebuilt) */
    CHECK(engine_tag(r.e, "alice~wait1", "green", true, NULL) == PAI_OK);
    CHECK(engine_tag(r.e, "alice~wait1", "red", false, NULL) == PAI_OK);
    CHECK(engine_set_execution(r.e, "alice~wait2", true, NULL) == PAI_OK);
    r.now += 1000;
    a.util = 90; /* busy again: no longer idle */
    tick(&r);
    l = list_of(&r, NULL, 0, 0);
    check_rows_as_jobs(&r, l);
    json_decref(l);
    CHECK(engine_delete(r.e, "alice~gone", NULL) == PAI_OK);
    l = list_of(&r, "state,DESC", 0, 0);
    CHECK(json_integer_value(json_object_get(l, "totalCount")) == 4);
    check_rows_as_jobs(&r, l);
    json_decref(l);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_page_in_submission_order_is_that_slice_of_the_whole_list)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!populate(&r, &a)) {
        CHECK(!"populate");
        return;
    }
    static const char *const orders[] = {NULL, "submissionTime,ASC", "jobName,DESC", "state"};
    for (size_t o = 0; o < ARRAY_LEN(orders); o++) {
        json_t *all = list_of(&r, orders[o], 0, 0);
        json_t *rows = json_object_get(all, "data");
        for (int64_t off = 0; off <= 6; off++)
            for (int64_t lim = 1; lim <= 6; lim++) {
                json_t *page = list_of(&r, orders[o], off, lim);
                json_t *want = json_array();
                for (int64_t k = off; k < off + lim && k < (int64_t)json_array_size(rows); k++)
                    json_array_append(want, json_array_get(rows, (size_t)k));
                CHECK(json_equal(json_object_get(page, "data"), want));
                CHECK(json_integer_value(json_object_get(page, "totalCount")) == 5);
                /* without the total (the walk may end with the page): the same rows */
                engine_filter_t bare = {.order = orders[o], .offset = off, .limit = lim};
                json_t *rows_only = NULL;
                CHECK(engine_list(r.e, &bare, &rows_only, NULL) == PAI_OK);
                CHECK(json_equal(rows_only, want));
                json_decref(rows_only);
                json_decref(want);
                json_decref(page);
            }
        json_decref(all);
    }
    /* a filter's total counts every match, the page only its slice */
    json_t *all = list_of(&r, NULL, 0, 0), *row;
    size_t i, live = 0;
    json_array_foreach(json_object_get(all, "data"), i, row)
    {
        const char *st = json_string_value(json_object_get(row, "state"));
        live += strcmp(st, "RUNNING") == 0 || strcmp(st, "WAITING") == 0;
    }
    json_decref(all);
    CHECK(live >= 2);
    engine_filter_t f = {.state = "WAITING,RUNNING", .offset = 1, .limit = 1, .with_total = true};
    json_t *out = NULL;
    CHECK(engine_list(r.e, &f, &out, NULL) == PAI_OK);
    CHECK(json_integer_value(json_object_get(out, "totalCount")) == (json_int_t)live);
    CHECK(json_array_size(json_object_get(out, "data")) == 1);
    json_decref(out);
    agent_free(&a);
    rig_close(&r);
}

static bool submit_as(rig_t *r, const char *user, const char *name, int gpus, int retries)
{
    char *yaml = job_yaml(name, gpus, retries), *full = NULL;
    pai_err_t rc = engine_submit(r->e, user, yaml, strlen(yaml), &full, NULL);
    free(yaml);
    free(full);
    return rc == PAI_OK;
}

/* In any order but submission order a page's set is selected among keys
 * (joblist.c, "page selection"): every page of every order is the slice of
 * the whole list in that order, over names and users that share their
 * first 8 bytes or more ("al" before "alice" before "alicea"), equal
 * numbers (ties broken by submission) and a filter. */
TEST(a_page_in_any_order_is_that_slice_of_the_whole_list)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!populate(&r, &a)) {
        CHECK(!"populate");
        return;
    }
    static const char *const users[] = {"alicea", "al", "bob", "alice"};
    for (int k = 0; k < 60; k++) {
        char name[64];
        snprintf(name, sizeof name, k % 3 ? "experiment-run-%02d" : "exp-%d", (k * 37) % 61);
        CHECK(submit_as(&r, users[k % 4], name, 1 + k % 2, k % 4));
    }
    CHECK(engine_set_execution(r.e, "bob~experiment-run-13", true, NULL) == PAI_OK);
    tick(&r);
    static const char *const fields[] = {"jobName",       "username",        "vc",
                                         "retries",       "totalTaskNumber", "totalGpuNumber",
                                         "state",         "completionTime",  "jobPriority",
                                         "submissionTime"};
    static const int64_t offs[] = {0, 1, 7, 30, 64, 65, 100}, lims[] = {1, 5, 13, 64};
    int pages = 0, bad = 0;
    for (size_t fi = 0; fi < ARRAY_LEN(fields); fi++)
        for (int desc = 0; desc < 2; desc++) {
            char order[64];
            snprintf(order, sizeof order, "%s,%s", fields[fi], desc ? "DESC" : "ASC");
            json_t *all = list_of(&r, order, 0, 0);
            json_t *rows = json_object_get(all, "data");
            CHECK_INT_EQ(json_array_size(rows), 65);
            for (size_t oi = 0; oi < ARRAY_LEN(offs); oi++)
                for (size_t li = 0; li < ARRAY_LEN(lims); li++) {
                    int64_t off = offs[oi], lim = lims[li];
                    json_t *page = list_of(&r, order, off, lim);
                    json_t *want = json_array();
                    for (int64_t k = off; k < off + lim && k < (int64_t)json_array_size(rows); k++)
                        json_array_append(want, json_array_get(rows, (size_t)k));
                    bool same = json_equal(json_object_get(page, "data"), want);
                    if (!same)
                        fprintf(stderr, "  %s offset %lld limit %lld: not the slice\n", order,
                                (long long)off, (long long)lim);
                    bad += !same;
                    pages++;
                    json_decref(want);
                    json_decref(page);
                }
            json_decref(all);
        }
    CHECK_INT_EQ(bad, 0);
    CHECK_INT_EQ(pages, 20 * 28);
    /* a filter: the page is the slice of the filtered list */
    engine_filter_t f = {.state = "WAITING", .order = "jobName,DESC", .with_total = true};
    json_t *all = NULL, *page = NULL;
    CHECK(engine_list(r.e, &f, &all, NULL) == PAI_OK);
    f.offset = 3, f.limit = 4;
    CHECK(engine_list(r.e, &f, &page, NULL) == PAI_OK);
    json_t *want = json_array();
    for (size_t k = 3; k < 7; k++)
        json_array_append(want, json_array_get(json_object_get(all, "data"), k));
    CHECK(json_equal(json_object_get(page, "data"), want));
    CHECK(json_equal(json_object_get(page, "totalCount"), json_object_get(all, "totalCount")));
    CHECK(json_integer_value(json_object_get(all, "totalCount")) > 7);
    json_decref(want);
    json_decref(all);
    json_decref(page);
    agent_free(&a);
    rig_close(&r);
}

/* The list's pause: it has its rows and no lock; the test goes on. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t cv;
    bool paused, go, used;
} pause_t;

static pause_t g_pause = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, false};

static void list_paused(void *ud)
{
    (void)ud;
    pthread_mutex_lock(&g_pause.m);
    if (!g_pause.used) { /* only the first list pauses */
        g_pause.used = g_pause.paused = true;
        pthread_cond_broadcast(&g_pause.cv);
        while (!g_pause.go)
            pthread_cond_wait(&g_pause.cv, &g_pause.m);
    }
    pthread_mutex_unlock(&g_pause.m);
}

typedef struct {
    rig_t *r;
    json_t *out;
} lister_t;

static void *list_main(void *arg)
{
    lister_t *l = arg;
    l->out = list_of(l->r, NULL, 0, 0);
    return NULL;
}

static void let_list_go(void)
{
    pthread_mutex_lock(&g_pause.m);
    g_pause.go = true;
    pthread_cond_broadcast(&g_pause.cv);
    pthread_mutex_unlock(&g_pause.m);
}

TEST(a_submission_completes_while_a_list_is_being_rendered)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!populate(&r, &a)) {
        CHECK(!"populate");
        return;
    }
    json_t *before = list_of(&r, NULL, 0, 0);
    r.e->ops.list_unlocked = list_paused; /* the test knob */
    lister_t l = {.r = &r};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, list_main, &l) == 0);
    pthread_mutex_lock(&g_pause.m);
    while (!g_pause.paused)
        pthread_cond_wait(&g_pause.cv, &g_pause.m);
    pthread_mutex_unlock(&g_pause.m);
    /* the list holds its rows, not the lock: a submission goes through */
    bool free_lock = engine_lock_within(r.e, 10000);
    CHECK(free_lock);
    if (free_lock) {
        engine_unlock(r.e);
        CHECK(submit(&r, "late", 1, 0));
        CHECK(engine_tag(r.e, "alice~busy", "after", true, NULL) == PAI_OK);
        CHECK(engine_delete(r.e, "alice~done", NULL) == PAI_OK); /* its row outlives it */
    }
    let_list_go();
    pthread_join(t, NULL);
    /* the paused list answers the table as it was when it took its rows */
    CHECK(json_equal(l.out, before));
    json_t *after = list_of(&r, NULL, 0, 0);
    CHECK(json_integer_value(json_object_get(after, "totalCount")) == 5); /* +late -done */
    CHECK_STR_EQ(json_string_value(
                     json_object_get(json_array_get(json_object_get(after, "data"), 0), "name")),
                 "late");
    check_rows_as_jobs(&r, after);
    json_decref(after);
    json_decref(l.out);
    json_decref(before);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(listed_rows_render_as_the_jobs_in_memory_do_and_follow_their_changes,
          a_page_in_submission_order_is_that_slice_of_the_whole_list,
          a_page_in_any_order_is_that_slice_of_the_whole_list,
          a_submission_completes_while_a_list_is_being_rendered)
