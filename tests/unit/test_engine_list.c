/*
 * test_engine_list.c - the job list renders without the engine lock
 * (src/engine/joblist.c): a submission goes through while a list is being
 * rendered, and the rows render as the jobs themselves do; a page in any
 * order is the slice of the whole list, and the list by jobName (the name
 * index) is the sort of every job.
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

/* The names of the listed jobs (debugId) in the list's order (new reference). */
static json_t *names_of(const json_t *list)
{
    json_t *names = json_array(), *row;
    size_t i;
    json_array_foreach(json_object_get(list, "data"), i, row)
        json_array_append(names, json_object_get(row, "debugId"));
    return names;
}

static int by_name_then_seq(const void *a, const void *b)
{
    const lc_job_t *x = *(lc_job_t *const *)a, *y = *(lc_job_t *const *)b;
    int c = strcmp(x->name + x->user_len + 1, y->name + y->user_len + 1);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Every published job's name sorted by its name after "user~" then seq,
 * reversed for desc (new reference): what jobName order must answer. */
static json_t *sorted_names(rig_t *r, bool desc)
{
    engine_lock(r->e);
    size_t n = r->e->table.nlist;
    lc_job_t **v = xcalloc(n + 1, sizeof(*v));
    memcpy(v, r->e->table.list, n * sizeof(*v));
    qsort(v, n, sizeof(*v), by_name_then_seq);
    json_t *names = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(names, json_string(v[desc ? n - 1 - i : i]->name));
    engine_unlock(r->e);
    free(v);
    return names;
}

/* jobName order both ways, whole and in pages, is the sort of everything. */
static bool name_order_is_the_sort(rig_t *r)
{
    bool ok = true;
    for (int desc = 0; desc < 2; desc++) {
        const char *order = desc ? "jobName,DESC" : "jobName,ASC";
        json_t *want = sorted_names(r, desc), *all = list_of(r, order, 0, 0);
        json_t *got = names_of(all);
        ok &= json_equal(got, want);
        for (int64_t off = 0; off < (int64_t)json_array_size(want); off += 17) {
            json_t *page = list_of(r, order, off, 17), *pg = names_of(page);
            for (size_t k = 0; k < json_array_size(pg); k++)
                ok &= json_equal(json_array_get(pg, k), json_array_get(want, (size_t)off + k));
            ok &= json_array_size(pg) > 0;
            json_decref(pg);
            json_decref(page);
        }
        json_decref(got);
        json_decref(all);
        json_decref(want);
    }
    return ok;
}

/* The list in jobName order walks the name index (table.byname): through
 * random submissions (names that share long prefixes, repeat across users
 * of prefix-sharing names) and deletions, and after a restart (the index
 * rebuilt by restore), it is the sort of every job by name then
 * submission, whole and in pages, both ways. */
TEST(the_list_by_name_is_the_sort_of_every_job_through_submissions_and_deletions)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    static const char *const users[] = {"alicea", "al", "bob", "alice"};
    uint64_t rnd = 88172645463325252ull;
    int made = 0, deleted = 0, checks = 0;
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < 60; k++, made++) {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            char name[64];
            snprintf(name, sizeof name, rnd % 3 ? "experiment-run-%d-%d" : "exp-%d-%d",
                     (int)(rnd % 40), made);
            CHECK(submit_as(&r, users[rnd % 4], name, 1, 0));
        }
        tick(&r);
        /* delete a random third of what is listed: stopped first */
        engine_lock(r.e);
        size_t n = r.e->table.nlist;
        char **names = xcalloc(n + 1, sizeof(*names));
        size_t nn = 0;
        for (size_t i = 0; i < n; i++) {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            if (rnd % 3 == 0)
                names[nn++] = xstrdup(r.e->table.list[i]->name);
        }
        engine_unlock(r.e);
        for (size_t i = 0; i < nn; i++) {
            if (engine_set_execution(r.e, names[i], true, NULL) != PAI_OK)
                continue; /* never fails here: every job is waiting or running */
            tick(&r);
            deleted += engine_delete(r.e, names[i], NULL) == PAI_OK;
            free(names[i]);
        }
        free(names);
        CHECK(name_order_is_the_sort(&r));
        checks++;
    }
    CHECK(deleted > 40);
    CHECK(rig_restart(&r));
    CHECK(name_order_is_the_sort(&r));
    engine_lock(r.e);
    CHECK_INT_EQ(nameidx_count(r.e->table.byname), r.e->table.nlist);
    CHECK_INT_EQ(r.e->table.nlist, made - deleted);
    engine_unlock(r.e);
    printf("# %d submitted, %d deleted, %d checks and one after a restart\n", made, deleted,
           checks);
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
          the_list_by_name_is_the_sort_of_every_job_through_submissions_and_deletions,
          a_submission_completes_while_a_list_is_being_rendered)
