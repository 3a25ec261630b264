/*
 * test_engine_flush.c - engine_flush joins flushes (persist.c): callers
 * queued on flush_mu behind a flush in flight are covered by the first of
 * them to get it, one commit for all, each caller's change durable when
 * its call returns; a flush after a change never returns on an earlier
 * flush's commit; with a long queue a submission's records go with the
 * next flush.  The rig is engine_fixture.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"

#define NFLUSHERS 4

/* retryAtMs in the job's stored record (-1: none). */
static long long stored_retry_at(rig_t *r, const char *name)
{
    char *text = NULL;
    if (store_get(r->st, "job", name, &text) != PAI_OK)
        return -1;
    json_t *rec = json_loads(text, 0, NULL);
    long long v = rec ? (long long)json_integer_value(json_object_get(rec, "retryAtMs")) : -1;
    json_decref(rec);
    free(text);
    return v;
}

/* Change job's record (a field it stores) and mark it dirty, as any
 * change under mu does. */
static void change(engine_t *j, const char *name, int64_t retry_at)
{
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    job->retry_at_ms = retry_at;
    engine_mark_dirty(j, job);
    engine_unlock(j);
}

typedef struct {
    rig_t *r;
    char name[32];
    int64_t retry_at;
    pthread_t th;
    pai_err_t rc;
    long long stored; /* retryAtMs stored when its flush returned */
} flusher_t;

static void *flusher_main(void *arg)
{
    flusher_t *f = arg;
    change(f->r->e, f->name, f->retry_at);
    f->rc = engine_flush(f->r->e);
    f->stored = stored_retry_at(f->r, f->name);
    return NULL;
}

TEST(flushes_queued_behind_one_in_flight_share_one_commit)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 8};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_t *j = r.e;
    flusher_t f[NFLUSHERS];
    for (int i = 0; i < NFLUSHERS; i++) {
        char short_name[16];
        snprintf(short_name, sizeof short_name, "j%d", i);
        CHECK(submit(&r, short_name, 1, 0));
        f[i] = (flusher_t){.r = &r, .retry_at = 1000 + i};
        snprintf(f[i].name, sizeof f[i].name, "alice~j%d", i);
    }
    CHECK(engine_flush(j) == PAI_OK); /* nothing left from the submissions */
    uint64_t commits = store_commits(r.st), joined = j->persist.joined;
    /* A flush in flight: this thread holds flush_mu while the flushers make
     * their changes and queue behind it. */
    engine_flush_lock(j);
    for (int i = 0; i < NFLUSHERS; i++)
        CHECK(pthread_create(&f[i].th, NULL, flusher_main, &f[i]) == 0);
    usleep(300 * 1000); /* each has changed its job and waits for flush_mu */
    engine_flush_unlock(j);
    for (int i = 0; i < NFLUSHERS; i++) {
        pthread_join(f[i].th, NULL);
        CHECK_INT_EQ(f[i].rc, PAI_OK);
        CHECK_INT_EQ(f[i].stored, f[i].retry_at); /* durable when its flush returned */
    }
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* the first one's, for all */
    CHECK_INT_EQ(j->persist.joined - joined, NFLUSHERS - 1);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_flush_after_a_change_commits_even_right_after_another)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 8};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_t *j = r.e;
    CHECK(submit(&r, "solo", 1, 0));
    CHECK(engine_flush(j) == PAI_OK);
    uint64_t commits = store_commits(r.st), joined = j->persist.joined;
    for (int k = 1; k <= 3; k++) {
        change(j, "alice~solo", 5000 + k);
        CHECK(engine_flush(j) == PAI_OK);
        CHECK_INT_EQ(stored_retry_at(&r, "alice~solo"), 5000 + k);
        CHECK_INT_EQ(store_commits(r.st) - commits, (uint64_t)k);
    }
    CHECK(engine_flush(j) == PAI_OK); /* nothing dirty: no commit, nothing joined */
    CHECK_INT_EQ(store_commits(r.st) - commits, 3);
    CHECK_INT_EQ(j->persist.joined, joined);
    agent_free(&a);
    rig_close(&r);
}

/* A cluster of one 1-GPU node whose queue is long (ENGINE_SHORT_QUEUE
 * jobs wait behind a running one): the next submission is stored first
 * and queued after. */
static bool long_queue(rig_t *r, agent_t *a)
{
    if (!rig_open_synced(r, a))
        return false;
    if (!submit_queue(r))
        return false;
    engine_lock(r->e);
    bool is_long = !engine_queue_short(r->e);
    engine_unlock(r->e);
    return is_long && engine_flush(r->e) == PAI_OK;
}

/* With a long queue a submission's records go with the next flush, here
 * its own: the other job's change dirty at that moment shares its commit. */
TEST(a_submission_with_a_long_queue_shares_a_flush_with_what_is_dirty)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    CHECK(long_queue(&r, &a));
    engine_t *j = r.e;
    uint64_t commits = store_commits(r.st);
    change(j, "alice~w000", 7777); /* dirty, not flushed yet */
    CHECK(submit(&r, "late", 1, 0));
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* the job and the change together */
    CHECK_INT_EQ(stored_retry_at(&r, "alice~w000"), 7777);
    CHECK_INT_EQ(stored_retry_at(&r, "alice~late"), 0); /* stored, WAITING */
    CHECK_STR_EQ(state_of(&r, "alice~late"), "WAITING");
    engine_lock(j);
    lc_job_t *late = engine_map_get(j, "alice~late");
    CHECK(late && !late->pending && late->queued); /* published, then queued */
    CHECK_INT_EQ(j->persist.nsubs, 0);
    CHECK_INT_EQ(j->persist.ndirty, 0);
    engine_unlock(j);
    agent_free(&a);
    rig_close(&r);
}

/* A flush that fails (here: a record of the submission's name is in the
 * store already) gives the submission back to write itself: 409, nothing
 * of it left; the other job's change stays dirty and the next flush
 * stores it. */
TEST(a_failed_flush_leaves_a_long_queue_submission_to_write_itself)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    CHECK(long_queue(&r, &a));
    engine_t *j = r.e;
    CHECK(store_insert(r.st, "job", "alice~clash", 1, "{}") == PAI_OK);
    change(j, "alice~w000", 8888);
    char *yaml = job_yaml("clash", 1, 0), *full = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    CHECK_INT_EQ(engine_submit(j, "alice", yaml, strlen(yaml), &full, &err), PAI_E_CONFLICT_JOB);
    free(yaml);
    free(full);
    pai_error_free(&err);
    engine_lock(j);
    CHECK(engine_map_get(j, "alice~clash") == NULL);
    CHECK_INT_EQ(j->persist.nsubs, 0);
    CHECK_INT_EQ(j->persist.ndirty, 1); /* w000, again */
    engine_unlock(j);
    CHECK(engine_flush(j) == PAI_OK);
    CHECK_INT_EQ(stored_retry_at(&r, "alice~w000"), 8888);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(flushes_queued_behind_one_in_flight_share_one_commit,
          a_flush_after_a_change_commits_even_right_after_another,
          a_submission_with_a_long_queue_shares_a_flush_with_what_is_dirty,
          a_failed_flush_leaves_a_long_queue_submission_to_write_itself)
