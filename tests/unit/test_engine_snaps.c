/*
 * test_engine_snaps.c - reads that do not get the engine lock in time
 * answer from the job's last committed record (src/engine/snaps.c).
 */
#include <pthread.h>
#include <time.h>

#include "engine_fixture.h"

/* A thread that holds mu until told to let go (a long scheduling pass). */
typedef struct {
    engine_t *e;
    pthread_mutex_t m;
    pthread_cond_t cv;
    bool held, release;
} holder_t;

static void *hold_main(void *arg)
{
    holder_t *h = arg;
    engine_lock(h->e);
    pthread_mutex_lock(&h->m);
    h->held = true;
    pthread_cond_broadcast(&h->cv);
    while (!h->release)
        pthread_cond_wait(&h->cv, &h->m);
    pthread_mutex_unlock(&h->m);
    engine_unlock(h->e);
    return NULL;
}

static void hold(holder_t *h, pthread_t *t)
{
    h->held = h->release = false;
    CHECK(pthread_create(t, NULL, hold_main, h) == 0);
    pthread_mutex_lock(&h->m);
    while (!h->held)
        pthread_cond_wait(&h->cv, &h->m);
    pthread_mutex_unlock(&h->m);
}

static void let_go(holder_t *h, pthread_t t)
{
    pthread_mutex_lock(&h->m);
    h->release = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->m);
    pthread_join(t, NULL);
}

/* The detail's state and waiting reason; *ms: how long the call took. */
static const char *detail_state(rig_t *r, const char *job, char *reason, size_t len, double *ms)
{
    static char st[32];
    json_t *d = NULL;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pai_err_t rc = engine_detail(r->e, job, -1, &d, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    *ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    snprintf(st, sizeof st, "%s", rc == PAI_E_NO_JOB ? "NO_JOB" : "ERROR");
    if (rc == PAI_OK) {
        json_t *s = json_object_get(d, "jobStatus");
        snprintf(st, sizeof st, "%s", json_string_value(json_object_get(s, "state")));
        const char *w = json_string_value(json_object_get(s, "waitingReason"));
        snprintf(reason, len, "%s", w ? w : "");
    }
    json_decref(d);
    return st;
}

TEST(detail_under_a_held_lock_answers_the_committed_record_without_waiting)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    CHECK(submit(&r, "one", 1, 0));
    CHECK(submit(&r, "two", 1, 0));                     /* waits: one GPU */
    CHECK_STR_EQ(state_of(&r, "alice~one"), "RUNNING"); /* bound by its submission's pass */
    holder_t h = {.e = r.e};
    pthread_mutex_init(&h.m, NULL);
    pthread_cond_init(&h.cv, NULL);
    pthread_t t;
    char why[512];
    double ms;
    hold(&h, &t);
    /* the records the submissions committed: "one" with its placement */
    CHECK_STR_EQ(detail_state(&r, "alice~one", why, sizeof why, &ms), "RUNNING");
    CHECK(ms < 1000);
    CHECK_STR_EQ(detail_state(&r, "alice~two", why, sizeof why, &ms), "WAITING");
    CHECK(strstr(why, "waiting for resources") != NULL);
    CHECK_STR_EQ(detail_state(&r, "alice~nope", why, sizeof why, &ms), "NO_JOB");
    let_go(&h, t);
    /* free again: from memory, with the scheduler's own reason */
    CHECK_STR_EQ(detail_state(&r, "alice~two", why, sizeof why, &ms), "WAITING");
    CHECK(strstr(why, "a scheduling pass is running") == NULL);
    CHECK(engine_set_execution(r.e, "alice~two", true, NULL) == PAI_OK); /* a waiting job stops */
    tick(&r);
    hold(&h, &t);
    CHECK_STR_EQ(detail_state(&r, "alice~two", why, sizeof why, &ms), "STOPPED");
    let_go(&h, t);
    CHECK(engine_delete(r.e, "alice~two", NULL) == PAI_OK);
    hold(&h, &t);
    CHECK_STR_EQ(detail_state(&r, "alice~two", why, sizeof why, &ms), "NO_JOB");
    let_go(&h, t);
    pthread_mutex_destroy(&h.m);
    pthread_cond_destroy(&h.cv);
    agent_free(&a);
    rig_close(&r);
}

/* The detail of job, new reference (NULL when not found). */
static json_t *detail(rig_t *r, const char *job)
{
    json_t *d = NULL;
    return engine_detail(r->e, job, -1, &d, NULL) == PAI_OK ? d : NULL;
}

static void check_same(const json_t *locked, const json_t *snap)
{
    CHECK(locked && snap && json_equal(locked, snap));
    if (locked && snap && !json_equal(locked, snap)) {
        char *a = json_dumps(locked, JSON_SORT_KEYS), *b = json_dumps(snap, JSON_SORT_KEYS);
        fprintf(stderr, "  locked   %s\n  snapshot %s\n", a, b);
        free(a);
        free(b);
    }
}

TEST(snapshot_detail_has_the_last_reason_and_the_idle_flag_memory_had)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1, .has_util = true};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    char *id = submit_running(&r, &a, "one", 0);
    CHECK(submit(&r, "two", 1, 0)); /* waits: one GPU */
    tick(&r);
    holder_t h = {.e = r.e};
    pthread_mutex_init(&h.m, NULL);
    pthread_cond_init(&h.cv, NULL);
    pthread_t t;
    /* a reason memory computed: the snapshot answers it, not a generic one */
    json_t *locked = detail(&r, "alice~two");
    hold(&h, &t);
    json_t *snap = detail(&r, "alice~two");
    let_go(&h, t);
    check_same(locked, snap);
    const char *why =
        json_string_value(json_object_get(json_object_get(snap, "jobStatus"), "waitingReason"));
    CHECK(why && strstr(why, "a scheduling pass is running") == NULL);
    json_decref(locked);
    json_decref(snap);
    /* idle GPUs for a minute: gpuIdle from the snapshot too */
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    r.now += 61000;
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    locked = detail(&r, "alice~one");
    CHECK(json_is_true(json_object_get(locked, "gpuIdle")));
    hold(&h, &t);
    snap = detail(&r, "alice~one");
    let_go(&h, t);
    check_same(locked, snap);
    json_decref(locked);
    json_decref(snap);
    /* busy again: the snapshot drops the flag as memory does */
    a.util = 80;
    r.now += 1000;
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    locked = detail(&r, "alice~one");
    CHECK(json_object_get(locked, "gpuIdle") == NULL);
    hold(&h, &t);
    snap = detail(&r, "alice~one");
    let_go(&h, t);
    check_same(locked, snap);
    json_decref(locked);
    json_decref(snap);
    pthread_mutex_destroy(&h.m);
    pthread_cond_destroy(&h.cv);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(detail_under_a_held_lock_answers_the_committed_record_without_waiting,
          snapshot_detail_has_the_last_reason_and_the_idle_flag_memory_had)
