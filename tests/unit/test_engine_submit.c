/*
 * test_engine_submit.c - a submission's store write (submit.c): the jobs
 * one pass answers are stored, placements and all, by the one commit of
 * the flush after that pass; no flush writes a pending job before its
 * submission's records; when no flush comes or it fails, a submission
 * writes its records itself, and a write that fails after the pass placed
 * the job undoes the placement (scheduler, desired set, name); a job a
 * later pass places while its submission's records are being written
 * (the write held at the store by another SQLite connection) is stored
 * once, placement and all, when published (lc_job_t.redirty).  The rig
 * is engine_fixture.h.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"

/* A submission on its own thread (engine_submit waits for a pass that the
 * test runs, as the scheduler thread would). */
typedef struct {
    rig_t *r;
    const char *name;
    pthread_t th;
    bool ok;
    atomic_bool done; /* engine_submit returned */
} submitter_t;

static void *submitter_main(void *arg)
{
    submitter_t *s = arg;
    s->ok = submit(s->r, s->name, 1, 0);
    atomic_store(&s->done, true);
    return NULL;
}

/* Wait (mu held) until ok(j, name) holds; false after 10 s. */
static bool spin_until(engine_t *j, bool (*ok)(engine_t *, const char *), const char *name)
{
    for (int spin = 0; spin < 10000 && !ok(j, name); spin++) {
        engine_unlock(j);
        usleep(1000);
        engine_lock(j);
    }
    return ok(j, name);
}

/* Job name is queued in the scheduler (its submission waits for a pass). */
static bool queued_job(engine_t *j, const char *name)
{
    lc_job_t *job = engine_map_get(j, name);
    return job && job->queued;
}

/* Submissions s[0] and s[1] on their threads, the test playing the
 * scheduler thread (sched_started: a submission waits for a pass run
 * elsewhere).  Returns with mu held once both have queued their job. */
static engine_t *start_both(rig_t *r, submitter_t s[2])
{
    engine_t *j = r->e;
    j->threads.sched_started = j->pass.thread_only = true;
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&s[i].th, NULL, submitter_main, &s[i]) == 0);
    engine_lock(j);
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "alice~%s", s[i].name);
        CHECK(spin_until(j, queued_job, name));
    }
    return j;
}

/* The job's record as the store has it (new reference; NULL: none). */
static json_t *stored_record(rig_t *r, const char *name)
{
    char *text = NULL;
    if (store_get(r->st, "job", name, &text) != PAI_OK)
        return NULL;
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    return rec;
}

/* The job's state in the record the store has (-1: none). */
static int stored_state(rig_t *r, const char *name)
{
    json_t *rec = stored_record(r, name);
    int state = rec ? (int)json_integer_value(json_object_get(rec, "state")) : -1;
    json_decref(rec);
    return state;
}

/* The committed record published for name has the job's state now. */
static bool snap_has_state(engine_t *j, const char *name, int state)
{
    char *text = NULL;
    engine_snap_mem_t mem = {0};
    if (engine_snap_get(j, name, &text, &mem) != ENGINE_SNAP_TEXT)
        return false;
    json_t *rec = json_loads(text, 0, NULL);
    bool ok = rec && json_integer_value(json_object_get(rec, "state")) == state;
    json_decref(rec);
    free(text);
    free(mem.reason);
    return ok;
}

/* Two submissions answered by one pass: the jobs it placed stay pending
 * and clean (no flush writes a job's record before its submission's
 * INSERT), and the flush that follows the pass writes both submissions'
 * records, placements included, with the rest of the pass's changes: one
 * commit for the two jobs.  Their tasks go to the agent once it is done.
 * Before: a commit for the submissions' records and one for the
 * placements.  The test plays the scheduler thread (sched_started: a
 * submission waits for a pass run elsewhere). */
TEST(jobs_answered_by_one_pass_are_stored_with_their_placements_by_one_commit)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    submitter_t s[2] = {{.r = &r, .name = "one"}, {.r = &r, .name = "two"}};
    engine_t *j = start_both(&r, s);
    uint64_t commits = store_commits(r.st), flushes = j->persist.commits;
    engine_unlock(j); /* the submissions wait for a pass: none runs meanwhile */
    CHECK_INT_EQ(stored_state(&r, "alice~one"), -1); /* nothing stored before the pass */
    engine_lock(j);
    /* The scheduler thread's turn: the pass places both; a flush is due. */
    CHECK(engine_pass_to_flush(j));
    lc_job_t *one = engine_map_get(j, "alice~one"), *two = engine_map_get(j, "alice~two");
    CHECK(one->pending && one->atts && !one->dirty);
    CHECK(two->pending && two->atts && !two->dirty);
    CHECK_INT_EQ(j->persist.ndirty, 0);
    CHECK_INT_EQ(lc_task_current(one, 0, 0)->durable, 0); /* not sent before it is stored */
    int state = one->state;
    CHECK(state != JOB_WAITING);
    engine_unlock(j);
    CHECK(engine_flush(j) == PAI_OK); /* the scheduler thread's flush after its pass */
    for (int i = 0; i < 2; i++) {
        pthread_join(s[i].th, NULL);
        CHECK(s[i].ok);
    }
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* both jobs, one commit */
    engine_lock(j);
    CHECK_INT_EQ(j->persist.ndirty, 0); /* published: nothing left to store */
    CHECK_INT_EQ(j->persist.commits, flushes + 1);
    CHECK_INT_EQ(j->persist.nsubs, 0);
    engine_unlock(j);
    CHECK_INT_EQ(stored_state(&r, "alice~one"), state); /* the placement is in the store */
    CHECK_INT_EQ(stored_state(&r, "alice~two"), state);
    CHECK(snap_has_state(j, "alice~one", state));
    CHECK(snap_has_state(j, "alice~two", state));
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 2); /* durable: sent */
    CHECK_STR_EQ(state_of(&r, "alice~one"), "RUNNING");
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* the sync had nothing to store */
    j->threads.sched_started = false;               /* no thread to join */
    agent_free(&a);
    rig_close(&r);
}

/* A batch of submissions on its own thread (engine_submit_batch). */
typedef struct {
    rig_t *r;
    engine_submit_call_t c[2];
    pai_error_t errs[2];
    char *yamls[2];
    pthread_t th;
    atomic_bool done;
} batcher_t;

static void *batcher_main(void *arg)
{
    batcher_t *b = arg;
    engine_submit_batch(b->r->e, b->c, 2);
    atomic_store(&b->done, true);
    return NULL;
}

/* With a short queue and the scheduler thread running, a batch of
 * submissions runs its pass on its own thread (it holds the engine lock
 * already) and the flush after it: one pass, one commit for both jobs,
 * placements and all, without waking the scheduler thread (here none
 * runs: sched_started alone, so a batch that waited for a pass elsewhere
 * would wait until the test ran one), and their tasks go to the agent. */
TEST(a_batch_with_a_short_queue_runs_its_pass_and_its_flush_on_its_own_thread)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_t *j = r.e;
    j->threads.sched_started = true; /* a scheduler thread, as far as a submission knows */
    batcher_t b = {.r = &r};
    const char *names[2] = {"one", "two"};
    for (int i = 0; i < 2; i++) {
        b.yamls[i] = job_yaml(names[i], 1, 0);
        b.errs[i] = (pai_error_t)PAI_ERROR_INIT;
        b.c[i] = (engine_submit_call_t){
            .user = "alice", .yaml = b.yamls[i], .len = strlen(b.yamls[i]), .e = &b.errs[i]};
    }
    uint64_t commits = store_commits(r.st), passes = j->pass.done, here = j->pass.here;
    CHECK(pthread_create(&b.th, NULL, batcher_main, &b) == 0);
    for (int spin = 0; spin < 10000 && !atomic_load(&b.done); spin++)
        usleep(1000);
    bool done = atomic_load(&b.done);
    CHECK(done); /* answered without a pass run elsewhere */
    if (!done) { /* unblock it: the pass and the flush it waits for */
        engine_lock(j);
        (void)engine_pass_to_flush(j);
        engine_unlock(j);
        (void)engine_flush(j);
    }
    pthread_join(b.th, NULL);
    for (int i = 0; i < 2; i++)
        CHECK_INT_EQ(b.c[i].rc, PAI_OK);
    engine_lock(j);
    CHECK_INT_EQ(j->pass.done - passes, 1);
    CHECK_INT_EQ(j->pass.here - here, 1);
    CHECK_INT_EQ(j->persist.ndirty, 0);
    CHECK_INT_EQ(j->persist.nsubs, 0);
    engine_unlock(j);
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* both jobs and their placements */
    CHECK_INT_EQ(stored_state(&r, "alice~one"), JOB_RUNNING);
    CHECK_INT_EQ(stored_state(&r, "alice~two"), JOB_RUNNING);
    j->threads.sched_started = false; /* no thread to join */
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 2);
    CHECK_STR_EQ(state_of(&r, "alice~one"), "RUNNING");
    CHECK_INT_EQ(store_commits(r.st) - commits, 1);
    for (int i = 0; i < 2; i++) {
        free(b.c[i].name);
        free(b.yamls[i]);
        pai_error_free(&b.errs[i]);
    }
    agent_free(&a);
    rig_close(&r);
}

/* What a durability waiter saw of job "alice~one", under mu in the flush
 * that stored its submission, right after that flush's settle. */
typedef struct {
    engine_t *j;
    bool called, pending;
    int durable;
} seen_t;

static void seen_at_settle(void *ud, uint64_t ticket)
{
    (void)ticket;
    seen_t *s = ud;
    lc_job_t *job = engine_map_get(s->j, "alice~one");
    lc_task_attempt_t *ta = job ? lc_task_current(job, 0, 0) : NULL;
    s->called = true;
    s->pending = job && job->pending;
    s->durable = ta ? ta->durable : -1;
}

/* A job placed by its own pass and stored by the flush after it is sent to
 * its agent only once its submission has published it: an agent that got
 * its task while the job was still pending could run it and report its
 * end before the publication, a report the server drops ("report again",
 * agentsync.c) and the agent sends again only with its next sync, up to a
 * heartbeat later (bench-e2e hollow: a job's end 5 s late in 4 of 9 runs
 * once submissions flushed on their own thread).  The test plays the
 * scheduler thread and looks at the job from inside the flush's settle. */
TEST(a_job_placed_by_its_own_pass_goes_to_its_agent_once_published)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_t *j = r.e;
    j->threads.sched_started = j->pass.thread_only = true;
    submitter_t s = {.r = &r, .name = "one"};
    CHECK(pthread_create(&s.th, NULL, submitter_main, &s) == 0);
    engine_lock(j);
    CHECK(spin_until(j, queued_job, "alice~one"));
    CHECK(engine_pass_to_flush(j)); /* places it; the flush after it is due */
    seen_t seen = {.j = j, .durable = -1};
    engine_waker_t w = {.fn = seen_at_settle, .ud = &seen, .ticket = 1};
    CHECK(engine_durable_wait(j, atomic_load(&j->persist.encoded) + 1, &w));
    engine_unlock(j);
    CHECK(engine_flush(j) == PAI_OK);
    pthread_join(s.th, NULL);
    CHECK(s.ok);
    CHECK(seen.called);
    CHECK(seen.pending);           /* stored, not published yet */
    CHECK_INT_EQ(seen.durable, 1); /* so not sent yet (2: sent) */
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, "alice~one");
    CHECK(job && !job->pending);
    CHECK_INT_EQ(job ? lc_task_current(job, 0, 0)->durable : -1, 2); /* published: sent */
    engine_unlock(j);
    j->threads.sched_started = false; /* no thread to join */
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~one/0/worker/0/0");
    agent_free(&a);
    rig_close(&r);
}

/* The flush after the pass fails (one submission's name has a record
 * behind the engine's back: its INSERT fails the batch): each submission
 * then writes its own records, so the other job is stored and answered
 * 202 as if alone, and the clashing one is answered 409 with its
 * placement undone (its GPU free, in no desired set). */
TEST(a_failed_flush_leaves_each_submission_to_write_its_records_alone)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    CHECK(store_insert(r.st, "job", "alice~two", 0, "{}") == PAI_OK);
    submitter_t s[2] = {{.r = &r, .name = "one"}, {.r = &r, .name = "two"}};
    engine_t *j = start_both(&r, s);
    CHECK(engine_pass_to_flush(j));
    engine_unlock(j);
    CHECK(engine_flush(j) != PAI_OK); /* the batch with both INSERTs fails */
    for (int i = 0; i < 2; i++)
        pthread_join(s[i].th, NULL);
    CHECK(s[0].ok);  /* stored on its own */
    CHECK(!s[1].ok); /* 409 */
    CHECK_STR_EQ(state_of(&r, "alice~one"), "RUNNING");
    CHECK_INT_EQ(stored_state(&r, "alice~one"), JOB_RUNNING);
    json_t *d = NULL;
    CHECK(engine_detail(r.e, "alice~two", -1, &d, NULL) == PAI_E_NO_JOB);
    json_decref(d);
    j->threads.sched_started = false;
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~one/0/worker/0/0");
    CHECK(submit(&r, "three", 1, 0)); /* the GPU "two" had is free */
    CHECK_STR_EQ(state_of(&r, "alice~three"), "RUNNING");
    agent_free(&a);
    rig_close(&r);
}

/* A job its pass placed whose store write then fails (here a record of
 * the same name put behind the engine's back: the INSERT finds it) is
 * answered 409 as before, and nothing of the placement stays: the job is
 * not found, its task is in no desired set, its GPU is free (the same
 * name, submitted again once the record is gone, is placed on it) and
 * nothing of it was stored. */
TEST(a_placed_job_whose_store_write_fails_leaves_no_placement_behind)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    CHECK(store_insert(r.st, "job", "alice~clash", 0, "{}") == PAI_OK);
    char *yaml = job_yaml("clash", 1, 0), *full = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    CHECK(engine_submit(r.e, "alice", yaml, strlen(yaml), &full, &err) == PAI_E_CONFLICT_JOB);
    CHECK(full == NULL);
    pai_error_free(&err);
    free(yaml);
    json_t *d = NULL;
    CHECK(engine_detail(r.e, "alice~clash", -1, &d, NULL) == PAI_E_NO_JOB);
    json_decref(d);
    char *text = NULL;
    CHECK(store_get(r.st, "jobcfg", "alice~clash", &text) == PAI_E_NOT_FOUND);
    free(text);
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 0);
    /* The GPU and the name are free again. */
    CHECK(store_del(r.st, "job", "alice~clash") == PAI_OK);
    CHECK(submit(&r, "clash", 1, 0));
    CHECK_STR_EQ(state_of(&r, "alice~clash"), "RUNNING");
    CHECK(submit(&r, "after", 1, 0));
    CHECK_STR_EQ(state_of(&r, "alice~after"), "WAITING"); /* the one GPU is taken */
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~clash/0/worker/0/0");
    agent_free(&a);
    rig_close(&r);
}

/* A job its pass left waiting (the cluster is full) is stored WAITING by
 * its submission; its later placement is stored by the flush after the
 * pass that makes it, as any job's. */
TEST(a_job_left_waiting_by_its_pass_is_stored_waiting_and_placed_by_a_later_flush)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    char *busy = submit_running(&r, &a, "busy", 0);
    CHECK(submit(&r, "later", 1, 0));
    CHECK_INT_EQ(stored_state(&r, "alice~later"), JOB_WAITING);
    json_t *ack = sync_agent(&r, &a, one(report(busy, "exited", 0)));
    CHECK(acked(ack, busy));
    json_decref(ack);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~later"), "RUNNING");
    CHECK_INT_EQ(stored_state(&r, "alice~later"), JOB_RUNNING);
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~later/0/worker/0/0");
    free(busy);
    agent_free(&a);
    rig_close(&r);
}

/* ---------------------------------------------------------------- placed during the write */

/* Another connection's write transaction on the rig's SQLite file: every
 * store write waits for it (the store's busy timeout, 10 s) until
 * store_unblock, so a write the test starts is certainly under way while
 * the test does something else.  NULL on failure. */
static sqlite3 *store_block(rig_t *r)
{
    char path[96];
    snprintf(path, sizeof path, "%s/pai.db", r->dir);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 10000); /* the store may be writing (a checkpoint) */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void store_unblock(sqlite3 *db)
{
    CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
}

/* A flush, or an agent's sync reporting a task's exit, on a thread of its
 * own; done once it returned. */
typedef struct {
    rig_t *r;
    agent_t *a;
    const char *exited; /* the sync's report; NULL: a flush */
    pthread_t th;
    pai_err_t rc;
    atomic_bool done;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    if (w->exited)
        sync_quiet(w->r, w->a, one(report(w->exited, "exited", 0)));
    else
        w->rc = engine_flush(w->r->e);
    atomic_store(&w->done, true);
    return NULL;
}

/* The submission of name waits for a pass, its records queued. */
static bool sub_queued(engine_t *j, const char *name)
{
    lc_job_t *job = engine_map_get(j, name);
    return job && job->queued && j->persist.nsubs == 1;
}

/* The submission of name is reserved and its records encoded: taken by
 * a flush (no submission queued for one), or encoded by the submission
 * itself (reserved: with no scheduler thread, reserve, pass and encode
 * are one critical section). */
static bool sub_encoded(engine_t *j, const char *name)
{
    lc_job_t *job = engine_map_get(j, name);
    return job && job->pending && j->persist.nsubs == 0;
}

static bool placed_now(engine_t *j, const char *name)
{
    lc_job_t *job = engine_map_get(j, name);
    return job && job->atts;
}

/* How many job attempts and task attempts (of task 0 of role 0, in its
 * first attempt) name's stored record holds: *atts -1 when none. */
static void stored_attempts(rig_t *r, const char *name, int *atts, int *task_atts)
{
    json_t *rec = stored_record(r, name);
    const json_t *a = json_object_get(rec, "attempts");
    const json_t *t0 =
        json_array_get(json_array_get(json_object_get(json_array_get(a, 0), "tasks"), 0), 0);
    *atts = rec ? (int)json_array_size(a) : -1;
    *task_atts = rec ? (int)json_array_size(json_object_get(t0, "atts")) : -1;
    json_decref(rec);
}

/* A job its own pass leaves waiting (the one GPU is busy) is placed by a
 * later pass (the sync that reports the busy job's exit) while its
 * submission's records are being written: by the flush after its pass
 * (by_flush: the test plays the scheduler thread), or by the submission
 * itself (no scheduler thread).  The write is held at the store
 * (store_block) so that the placement certainly comes between its encode
 * and its commit.  The placement is noted (redirty), not lost, not sent
 * before it is stored: once the submission is published it is stored by
 * one flush, its task goes to the agent once, nothing is left to store,
 * and a restart restores the same one attempt, still desired on the node. */
static void placed_while_its_records_are_written(bool by_flush)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_t *j = r.e;
    char *busy = submit_running(&r, &a, "busy", 0);
    sqlite3 *blk = by_flush ? NULL : store_block(&r);
    j->threads.sched_started = by_flush; /* a submission waits for the test's pass */
    j->pass.thread_only = true;
    submitter_t s = {.r = &r, .name = "later"};
    worker_t flush = {.r = &r}, sync = {.r = &r, .a = &a, .exited = busy};
    CHECK(pthread_create(&s.th, NULL, submitter_main, &s) == 0);
    engine_lock(j);
    if (by_flush) {
        CHECK(spin_until(j, sub_queued, "alice~later"));
        CHECK(engine_pass_to_flush(j)); /* leaves it waiting; its flush is due */
        engine_unlock(j);
        blk = store_block(&r);
        CHECK(pthread_create(&flush.th, NULL, worker_main, &flush) == 0);
        engine_lock(j);
    }
    CHECK(blk != NULL);
    CHECK(spin_until(j, sub_encoded, "alice~later"));
    lc_job_t *later = engine_map_get(j, "alice~later");
    CHECK(later && !later->atts && !later->redirty); /* encoded waiting */
    engine_unlock(j);
    /* The busy job's exit frees the GPU; the sync's pass places "later". */
    CHECK(pthread_create(&sync.th, NULL, worker_main, &sync) == 0);
    engine_lock(j);
    CHECK(spin_until(j, placed_now, "alice~later"));
    later = engine_map_get(j, "alice~later");
    CHECK(later && later->pending && later->redirty && !later->dirty);
    CHECK_INT_EQ(lc_task_current(later, 0, 0)->durable, 0); /* not sent before it is stored */
    CHECK(!atomic_load(&s.done));                           /* still in its write */
    CHECK(!by_flush || !atomic_load(&flush.done));
    engine_unlock(j);
    if (blk)
        store_unblock(blk);
    pthread_join(s.th, NULL);
    CHECK(s.ok);
    if (by_flush) {
        pthread_join(flush.th, NULL);
        CHECK(flush.rc == PAI_OK);
    }
    pthread_join(sync.th, NULL);
    j->threads.sched_started = false; /* no thread to join */
    tick(&r); /* the placement's flush, unless the sync's flush came after the publication */
    CHECK_INT_EQ(stored_state(&r, "alice~later"), JOB_RUNNING);
    int atts, task_atts;
    stored_attempts(&r, "alice~later", &atts, &task_atts);
    CHECK_INT_EQ(atts, 1);
    CHECK_INT_EQ(task_atts, 1);
    engine_lock(j);
    CHECK_INT_EQ(j->persist.ndirty, 0);
    CHECK(!later->dirty && !later->redirty && !later->pending);
    CHECK_INT_EQ(lc_task_current(later, 0, 0)->durable, 2);
    engine_unlock(j);
    uint64_t commits = store_commits(r.st);
    tick(&r);
    CHECK_INT_EQ(store_commits(r.st), commits); /* nothing left to store */
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~later/0/worker/0/0");
    /* A restart restores the placement: the same attempt, desired. */
    CHECK(rig_restart(&r));
    CHECK_STR_EQ(state_of(&r, "alice~later"), "RUNNING");
    CHECK_INT_EQ(int_of(&r, "alice~later", "retries"), 0);
    a.seq = 0;
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~later/0/worker/0/0");
    free(busy);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_job_placed_while_the_flush_writes_its_submission_is_stored_once_and_restored)
{
    placed_while_its_records_are_written(true);
}

TEST(a_job_placed_while_its_submission_writes_itself_is_stored_once_and_restored)
{
    placed_while_its_records_are_written(false);
}

/* The calls of a batch: "one", a document that does not parse, "one"
 * again, one that can never fit, "two"; their answers' codes (want). */
static const pai_err_t batch_want[] = {PAI_OK, PAI_E_PROTOCOL, PAI_E_CONFLICT_JOB, PAI_E_INVALID,
                                       PAI_OK};

static void batch_submit(rig_t *r, const char *one, const char *two, engine_submit_call_t c[5],
                         pai_error_t errs[5])
{
    char *yamls[5] = {job_yaml(one, 1, 0), str_printf("name: [unclosed\n"), job_yaml(one, 1, 0),
                      job_yaml("huge", 64, 0), job_yaml(two, 1, 0)};
    for (int i = 0; i < 5; i++) {
        errs[i] = (pai_error_t)PAI_ERROR_INIT;
        c[i] = (engine_submit_call_t){
            .user = "alice", .yaml = yamls[i], .len = strlen(yamls[i]), .e = &errs[i]};
    }
    engine_submit_batch(r->e, c, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_INT_EQ(c[i].rc, batch_want[i]);
        CHECK((c[i].rc == PAI_OK) == (c[i].name != NULL));
        CHECK((c[i].rc == PAI_OK) == (errs[i].code == PAI_OK));
        free(yamls[i]);
    }
}

static void batch_free(engine_submit_call_t c[5], pai_error_t errs[5])
{
    for (int i = 0; i < 5; i++) {
        free(c[i].name);
        pai_error_free(&errs[i]);
    }
}

/* Submissions that arrive together (engine_submit_batch, the HTTP layer's
 * batch of POST /api/v2/jobs): each answered as it would be alone (one
 * that does not parse, a name taken by the batch's own first, one that can
 * never fit: each refused alone, the others accepted), with a short queue
 * (one pass for all, each then writing itself without threads) and with a
 * long one (queued for the next flush at once: one commit for the whole
 * batch, where each submission waited for a commit of its own). */
TEST(a_batch_of_submissions_is_answered_one_by_one_and_stored_by_one_commit)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_submit_call_t c[5];
    pai_error_t errs[5];
    batch_submit(&r, "one", "two", c, errs); /* a short queue: both placed by one pass */
    CHECK_STR_EQ(c[0].name, "alice~one");
    CHECK_STR_EQ(c[4].name, "alice~two");
    CHECK_STR_EQ(state_of(&r, "alice~one"), "RUNNING"); /* placed by their pass */
    CHECK_STR_EQ(state_of(&r, "alice~two"), "RUNNING");
    CHECK(stored_state(&r, "alice~one") != -1);
    CHECK(stored_state(&r, "alice~two") != -1);
    CHECK_INT_EQ(stored_state(&r, "alice~huge"), -1);
    batch_free(c, errs);
    /* a long queue: ENGINE_SHORT_QUEUE jobs waiting for the 2 GPUs */
    for (int i = 0; i < ENGINE_SHORT_QUEUE + 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%d", i);
        CHECK(submit(&r, name, 2, 0));
    }
    engine_lock(r.e);
    CHECK(!engine_queue_short(r.e));
    engine_unlock(r.e);
    uint64_t commits = store_commits(r.st);
    batch_submit(&r, "three", "four", c, errs);
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* both jobs, one commit */
    CHECK_INT_EQ(stored_state(&r, "alice~three"), JOB_WAITING);
    CHECK_INT_EQ(stored_state(&r, "alice~four"), JOB_WAITING);
    CHECK_STR_EQ(state_of(&r, "alice~four"), "WAITING");
    CHECK_INT_EQ(stored_state(&r, "alice~huge"), -1);
    engine_lock(r.e);
    CHECK_INT_EQ(r.e->persist.nsubs, 0);
    CHECK_INT_EQ(atomic_load(&r.e->persist.coming), 0);
    engine_unlock(r.e);
    batch_free(c, errs);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(jobs_answered_by_one_pass_are_stored_with_their_placements_by_one_commit,
          a_batch_with_a_short_queue_runs_its_pass_and_its_flush_on_its_own_thread,
          a_job_placed_by_its_own_pass_goes_to_its_agent_once_published,
          a_failed_flush_leaves_each_submission_to_write_its_records_alone,
          a_placed_job_whose_store_write_fails_leaves_no_placement_behind,
          a_job_left_waiting_by_its_pass_is_stored_waiting_and_placed_by_a_later_flush,
          a_job_placed_while_the_flush_writes_its_submission_is_stored_once_and_restored,
          a_job_placed_while_its_submission_writes_itself_is_stored_once_and_restored,
          a_batch_of_submissions_is_answered_one_by_one_and_stored_by_one_commit)
