/*
 * test_engine_commits.c - fewer commits per job (persist.c): an agent
 * sync batch's exits and the placements a pass makes on what they freed
 * (the batch's own while passes are cheap, else the scheduler thread's)
 * share one commit, and the batch's answer carries the new task; a pass that places nothing leaves
 * what only memory needs (a task reported running) to a later flush; a flush about to encode waits
 * for a submission that is still coming and stores it with the rest.  The
 * first and last run the engine with its threads (the rig of
 * engine_fixture.h has none), the waits' bounds set long so that a loaded
 * machine cannot make them time out.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"

/* rig_open with the scheduler and timer threads running. */
static bool rig_open_threads(rig_t *r)
{
    if (!rig_open_store(r))
        return false;
    engine_opts_t o = {.node_lost_timeout_s = LOST_S, .starvation_ms = -1};
    engine_ops_t ops = {.ud = r, .now_ms = fake_now};
    pai_error_t e = PAI_ERROR_INIT;
    if (engine_new(r->st, &o, &ops, &r->e, &e) != PAI_OK) {
        fprintf(stderr, "  engine_new: %s\n", pai_error_msg(&e));
        pai_error_free(&e);
        return false;
    }
    engine_lock(r->e);
    r->e->persist.gather_us = r->e->persist.pass_gather_us = 5 * 1000 * 1000;
    engine_unlock(r->e);
    return true;
}

/* One node of one GPU, w000 running on it and ENGINE_SHORT_QUEUE jobs
 * waiting behind it: a long queue, whose passes the scheduler thread runs.
 * Returns w000's attempt id (malloc'ed) or NULL. */
static char *long_queue_running(rig_t *r, agent_t *a)
{
    if (!rig_open_threads(r))
        return NULL;
    sync_quiet(r, a, NULL);
    if (!submit_queue(r))
        return NULL;
    sync_quiet(r, a, NULL); /* w000, placed by its pass and stored by the flush after it */
    if (ndesired(a) != 1 || !strstr(desired_id(a, 0), "w000"))
        return NULL;
    char *id = xstrdup(desired_id(a, 0));
    sync_quiet(r, a, one(report(id, "running", 0)));
    engine_lock(r->e);
    bool is_long = !engine_queue_short(r->e);
    engine_unlock(r->e);
    if (!is_long)
        FREE_NULL(&id);
    return id;
}

/* Wait (bounded: 10 s) until nothing is left to store and no flush runs:
 * the dirty list and the queued submissions empty, no flush due, every
 * flush that encoded has ended; twice 20 ms apart, so that a flush the
 * timer or a pass was about to start has started and ended.  A fixed sleep
 * was not enough on a loaded machine: a flush still running from before
 * counted as a second commit (1 run in ~36 with 12 copies at once). */
static void wait_settled(engine_t *j)
{
    int quiet = 0;
    for (int k = 0; k < 10000 && quiet < 2; k++) {
        engine_lock(j);
        bool settled = j->persist.ndirty == 0 && j->persist.nsubs == 0 && !j->persist.flush_due &&
                       atomic_load(&j->persist.encoded) == atomic_load(&j->persist.durable);
        engine_unlock(j);
        if (!settled) {
            quiet = 0;
            usleep(1000);
            continue;
        }
        quiet++;
        usleep(20 * 1000);
    }
}

/* Does the answer's desired set hold an attempt of job (a name part)? */
static bool answer_has(const json_t *resp, const char *job)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(resp, "tasks"), i, t)
    {
        const char *id = json_string_value(json_object_get(t, "attempt_id"));
        if (id && strstr(id, job))
            return true;
    }
    return false;
}

/* Five times: the running job's exit, reported by a sync batch, frees the
 * GPU; a pass places the next job on it: the batch's own while passes are
 * cheap, else the scheduler thread's, which the batch waits for, whichever
 * of the two comes first (the batch's flush or the pass).  One commit
 * stores the exit and the placement, and the batch's answer carries the
 * new task. */
TEST(a_batchs_exits_and_the_placements_on_what_they_freed_share_one_commit)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    char *id = long_queue_running(&r, &a);
    CHECK(id != NULL);
    for (int k = 1; id && k <= 5; k++) {
        engine_t *j = r.e;
        wait_settled(j); /* the flushes before have ended */
        uint64_t commits = store_commits(r.st);
        json_t *req =
            json_pack("{si so sI si so}", "version", 1, "node", node_json(&a), "known_seq",
                      (json_int_t)a.seq, "wait_ms", 0, "tasks", one(report(id, "exited", 0)));
        engine_sync_call_t call = {.req = req};
        engine_agent_sync_batch(j, &call, 1);
        CHECK_INT_EQ(call.rc, PAI_OK);
        json_t *resp = answer_json(call.resp);
        call.resp = NULL;
        CHECK(resp && acked(json_object_get(resp, "ack"), id));
        char next[16];
        snprintf(next, sizeof next, "w%03d", k);
        CHECK(answer_has(resp, next)); /* stored with the exit */
        usleep(100 * 1000);            /* a second commit, were there one, would be done */
        CHECK_INT_EQ(store_commits(r.st) - commits, 1);
        /* the next one runs */
        a.seq = json_integer_value(json_object_get(resp, "seq"));
        free(id);
        id = NULL;
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(resp, "tasks"), i, t)
        {
            const char *tid = json_string_value(json_object_get(t, "attempt_id"));
            if (tid && strstr(tid, next))
                id = xstrdup(tid);
        }
        json_decref(resp);
        json_decref(req);
        pai_error_free(&call.err);
        if (id)
            sync_quiet(&r, &a, one(report(id, "running", 0)));
    }
    CHECK_STR_EQ(state_of(&r, "alice~w004"), "SUCCEEDED");
    free(id);
    agent_free(&a);
    rig_close(&r);
}

/* Agent a's sync reporting that attempt id exited: acked; whether the
 * desired set it answers holds a task of job. */
static bool exit_places(rig_t *r, agent_t *a, const char *id, const char *job)
{
    json_t *ack = sync_agent(r, a, one(report(id, "exited", 0)));
    CHECK(acked(ack, id));
    json_decref(ack);
    for (size_t k = 0; k < ndesired(a); k++)
        if (strstr(desired_id(a, k), job))
            return true;
    return false;
}

/* With a long queue, a sync batch whose exits freed resources runs the pass
 * on them itself while passes are cheap (the last one under
 * ENGINE_CHEAP_PASS_US): its flush then stores the exit and the placement
 * in one commit and its answer carries the new task, without waking the
 * scheduler thread and waiting up to 2 ms for it.  After an expensive pass
 * it leaves the pass to the thread, which paces long passes (the rig has no
 * threads: the pass waits for the test's tick). */
TEST(a_sync_batch_runs_a_cheap_pass_on_what_its_exits_freed_with_a_long_queue)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_t *j = r.e;
    char *busy = submit_running(&r, &a, "busy", 0);
    CHECK(submit_queue(&r));
    tick(&r); /* a pass: the queue's length as the engine sees it */
    engine_lock(j);
    CHECK(!engine_queue_short(j));
    j->pass.last_us = 0; /* cheap */
    engine_unlock(j);
    uint64_t commits = store_commits(r.st), passes = j->pass.done;
    CHECK(exit_places(&r, &a, busy, "w000")); /* its own pass placed it, its flush stored it */
    CHECK_INT_EQ(j->pass.done - passes, 1);
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* the exit and the placement */
    CHECK_STR_EQ(state_of(&r, "alice~busy"), "SUCCEEDED");
    CHECK_STR_EQ(state_of(&r, "alice~w000"), "RUNNING");
    char *w000 = xstrdup("alice~w000/0/worker/0/0");
    sync_quiet(&r, &a, one(report(w000, "running", 0)));
    /* After an expensive pass: left to the scheduler thread. */
    engine_lock(j);
    j->pass.last_us = 10 * ENGINE_CHEAP_PASS_US;
    engine_unlock(j);
    passes = j->pass.done;
    CHECK(!exit_places(&r, &a, w000, "w001"));
    CHECK_INT_EQ(j->pass.done - passes, 0);
    engine_lock(j);
    CHECK(j->pass.need);
    engine_unlock(j);
    tick(&r); /* the thread's pass, played by the test */
    CHECK_STR_EQ(state_of(&r, "alice~w001"), "RUNNING");
    free(w000);
    free(busy);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_pass_that_places_nothing_leaves_a_running_report_to_a_later_flush)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    engine_t *j = r.e;
    char *id = submit_running(&r, &a, "solo", 0); /* reported running: dirty, not stored */
    CHECK(submit(&r, "next", 1, 0));              /* waits: no GPU free */
    engine_lock(j);
    CHECK(j->persist.ndirty >= 1);
    CHECK(!engine_flush_wanted(j)); /* nothing waits for a commit */
    j->pass.need = true;
    CHECK(!engine_pass_to_flush(j)); /* the scheduler thread's pass: no flush after it */
    CHECK(!j->persist.flush_due);
    engine_unlock(j);
    char *text = NULL;
    CHECK(store_get(r.st, "job", "alice~solo", &text) == PAI_OK);
    CHECK(text && strstr(text, "\"launchMs\":0,")); /* the store: not launched yet */
    free(text);
    tick(&r); /* the timer's flush stores it */
    text = NULL;
    CHECK(store_get(r.st, "job", "alice~solo", &text) == PAI_OK);
    CHECK(text && !strstr(text, "\"launchMs\":0,"));
    free(text);
    /* Its exit frees the GPU; the pass places "next": a flush is wanted. */
    json_decref(sync_agent(&r, &a, one(report(id, "exited", 0))));
    engine_lock(j);
    CHECK(!engine_flush_wanted(j)); /* the sync stored both before its answer */
    engine_unlock(j);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

typedef struct {
    engine_t *e;
    pai_err_t rc;
} flush_arg_t;

static void *flush_main(void *arg)
{
    flush_arg_t *f = arg;
    f->rc = engine_flush(f->e);
    return NULL;
}

typedef struct {
    rig_t *r;
    bool ok;
} submit_arg_t;

static void *submit_main(void *arg)
{
    submit_arg_t *s = arg;
    s->ok = submit(s->r, "late", 1, 0);
    return NULL;
}

/* Wait (bounded) until cond, read under mu, holds. */
#define WAIT_UNTIL(j, cond)                                                                        \
    do {                                                                                           \
        for (int k_ = 0; k_ < 5000; k_++) {                                                        \
            engine_lock(j);                                                                        \
            bool c_ = (cond);                                                                      \
            engine_unlock(j);                                                                      \
            if (c_)                                                                                \
                break;                                                                             \
            usleep(1000);                                                                          \
        }                                                                                          \
    } while (0)

TEST(a_flush_waits_for_a_coming_submission_and_stores_it_with_the_rest)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    char *id = long_queue_running(&r, &a);
    CHECK(id != NULL);
    if (!id) {
        agent_free(&a);
        rig_close(&r);
        return;
    }
    engine_t *j = r.e;
    wait_settled(j);
    uint64_t commits = store_commits(r.st), gathered = j->persist.gathered;
    /* A submission still being parsed (counted as coming, as engine_submit
     * counts one) while a flush begins: the flush waits for it. */
    atomic_fetch_add(&j->persist.coming, 1);
    flush_arg_t f = {.e = j};
    pthread_t ft, st;
    CHECK(pthread_create(&ft, NULL, flush_main, &f) == 0);
    WAIT_UNTIL(j, j->persist.gathered > gathered);
    CHECK_INT_EQ(j->persist.gathered - gathered, 1);
    /* Another submission arrives meanwhile, queues its records and waits
     * for the flush in flight. */
    submit_arg_t s = {.r = &r};
    CHECK(pthread_create(&st, NULL, submit_main, &s) == 0);
    WAIT_UNTIL(j, j->persist.nsubs == 1);
    CHECK_INT_EQ(store_commits(r.st), commits); /* the flush still waits */
    engine_lock(j);
    engine_sub_arrived(j); /* the first one is refused before its reservation */
    engine_unlock(j);
    pthread_join(ft, NULL);
    pthread_join(st, NULL);
    CHECK_INT_EQ(f.rc, PAI_OK);
    CHECK(s.ok);
    CHECK_INT_EQ(store_commits(r.st) - commits, 1); /* the flush's, "late" in it */
    char *text = NULL;
    CHECK(store_get(r.st, "job", "alice~late", &text) == PAI_OK);
    free(text);
    CHECK_INT_EQ(atomic_load(&j->persist.coming), 0);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

/* ---- the syncs' group delay (engine_sync_group_wait) ---- */

/* Sync a until its desired set holds one task (its pass and the flush after
 * it run on the engine's threads), report it running; its id (malloc'ed)
 * or NULL. */
static char *placed_running(rig_t *r, agent_t *a)
{
    for (int k = 0; k < 500 && ndesired(a) != 1; k++) {
        sync_quiet(r, a, NULL);
        if (ndesired(a) != 1)
            usleep(10 * 1000);
    }
    if (ndesired(a) != 1)
        return NULL;
    char *id = xstrdup(desired_id(a, 0));
    sync_quiet(r, a, one(report(id, "running", 0)));
    return id;
}

typedef struct {
    engine_t *j;
    engine_sync_call_t call;
} batch_arg_t;

static void *batch_main(void *arg)
{
    batch_arg_t *b = arg;
    engine_agent_sync_batch(b->j, &b->call, 1);
    return NULL;
}

/* A sync batch of a reporting id exited (the request in *b). */
static void exit_batch(batch_arg_t *b, engine_t *j, const agent_t *a, const char *id)
{
    *b = (batch_arg_t){.j = j};
    b->call.req =
        json_pack("{si so sI si so}", "version", 1, "node", node_json(a), "known_seq",
                  (json_int_t)a->seq, "wait_ms", 0, "tasks", one(report(id, "exited", 0)));
}

/* Its answer holds a task other than id (the one placed on what it freed). */
static bool got_new_task(batch_arg_t *b, const char *id)
{
    CHECK_INT_EQ(b->call.rc, PAI_OK);
    json_t *resp = answer_json(b->call.resp);
    b->call.resp = NULL;
    bool found = false;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(resp, "tasks"), i, t)
    {
        const char *tid = json_string_value(json_object_get(t, "attempt_id"));
        found = found || (tid && strcmp(tid, id) != 0);
    }
    CHECK(resp && acked(json_object_get(resp, "ack"), id));
    json_decref(resp);
    json_decref(b->call.req);
    pai_error_free(&b->call.err);
    return found;
}

/* Each batch runs the pass on what its exits freed itself (passes cheap:
 * the last one under ENGINE_CHEAP_PASS_US).  A pass left to the scheduler
 * thread is followed by that thread's own flush (it placed work), which a
 * waiting batch does not hold back: under ThreadSanitizer on a loaded
 * machine the set-up's last pass took over 200 us now and then, the
 * scheduler thread ran a's pass and flushed after it, and its next pass's
 * placement on b's node took a second commit (4 runs in 20 at load 10-20,
 * 7 in 20 with be86012's broadcasts after mu; 0 in 60 either way now). */
static void cheap_passes(engine_t *j)
{
    engine_lock(j);
    j->pass.last_us = 0;
    engine_unlock(j);
}

/* While sync-led flushes stream (one ended just now), a sync batch whose
 * exits and placements must be stored waits for the next batch, and one
 * commit stores both; each answer carries the task placed on what its
 * exit freed.  The bound is set long so that a loaded machine cannot end
 * the wait before the second batch comes: without the delay (or with a
 * batch that does not wait) the first commits alone, two commits. */
TEST(two_sync_batches_with_exits_share_one_commit_while_syncs_stream)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    agent_t b = {.name = "node-2", .address = "10.0.0.2", .ngpus = 1};
    CHECK(rig_open_threads(&r));
    engine_t *j = r.e;
    sync_quiet(&r, &a, NULL);
    sync_quiet(&r, &b, NULL);
    CHECK(submit_queue(&r));
    CHECK(submit(&r, "x000", 1, 0) && submit(&r, "x001", 1, 0)); /* still long with 2 placed */
    char *ida = placed_running(&r, &a), *idb = placed_running(&r, &b);
    CHECK(ida && idb);
    engine_lock(j);
    CHECK(!engine_queue_short(j));
    j->persist.sync_delay_us = 5 * 1000 * 1000;
    uint64_t waits = j->persist.sync_waits;
    engine_unlock(j);
    wait_settled(j);
    uint64_t commits = store_commits(r.st);
    engine_sync_flushed(j); /* a sync-led flush just ended */
    batch_arg_t ba, bb;
    exit_batch(&ba, j, &a, ida ? ida : "");
    exit_batch(&bb, j, &b, idb ? idb : "");
    pthread_t t;
    cheap_passes(j);
    CHECK(pthread_create(&t, NULL, batch_main, &ba) == 0);
    WAIT_UNTIL(j, j->persist.sync_waiting);
    engine_lock(j);
    bool waiting = j->persist.sync_waiting;
    engine_unlock(j);
    CHECK(waiting);
    cheap_passes(j);
    batch_main(&bb); /* ends a's wait: one commit for both */
    pthread_join(t, NULL);
    CHECK(got_new_task(&ba, ida ? ida : ""));
    CHECK(got_new_task(&bb, idb ? idb : ""));
    usleep(100 * 1000); /* a second commit, were there one, would be done */
    CHECK_INT_EQ(store_commits(r.st) - commits, 1);
    engine_lock(j);
    CHECK_INT_EQ(j->persist.sync_waits - waits, 1);
    engine_unlock(j);
    free(ida);
    free(idb);
    agent_free(&a);
    agent_free(&b);
    rig_close(&r);
}

/* A lone sync batch (no sync-led flush ended within the window) and one
 * with the delay off do not wait: each commits at once, alone. */
TEST(a_lone_sync_batch_does_not_wait)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    char *id = long_queue_running(&r, &a);
    CHECK(id != NULL);
    engine_t *j = r.e;
    for (int k = 0; id && k < 2; k++) {
        engine_lock(j);
        j->persist.sync_delay_us = k == 0 ? 5 * 1000 * 1000 : -1;
        uint64_t waits = j->persist.sync_waits;
        engine_unlock(j);
        wait_settled(j);
        if (k == 1)
            engine_sync_flushed(j); /* streaming, but off */
        else /* no sync-led flush ended within the window (with a 5 s bound, 5 s) */
            atomic_store(&j->persist.last_sync_end_us, 0);
        uint64_t commits = store_commits(r.st);
        int64_t t0 = time_mono_us();
        batch_arg_t ba;
        exit_batch(&ba, j, &a, id);
        batch_main(&ba);
        CHECK(time_mono_us() - t0 < 3 * 1000 * 1000);
        char *next = NULL;
        json_t *resp = answer_json(ba.call.resp);
        ba.call.resp = NULL;
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(resp, "tasks"), i, t)
        {
            const char *tid = json_string_value(json_object_get(t, "attempt_id"));
            if (tid && strcmp(tid, id) != 0)
                next = xstrdup(tid);
        }
        CHECK(next != NULL);
        a.seq = json_integer_value(json_object_get(resp, "seq"));
        json_decref(resp);
        json_decref(ba.call.req);
        pai_error_free(&ba.call.err);
        usleep(100 * 1000);
        CHECK_INT_EQ(store_commits(r.st) - commits, 1);
        engine_lock(j);
        CHECK_INT_EQ(j->persist.sync_waits, waits);
        engine_unlock(j);
        free(id);
        id = next;
        if (id)
            sync_quiet(&r, &a, one(report(id, "running", 0)));
    }
    free(id);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(a_batchs_exits_and_the_placements_on_what_they_freed_share_one_commit,
          two_sync_batches_with_exits_share_one_commit_while_syncs_stream,
          a_lone_sync_batch_does_not_wait,
          a_pass_that_places_nothing_leaves_a_running_report_to_a_later_flush,
          a_flush_waits_for_a_coming_submission_and_stores_it_with_the_rest,
          a_sync_batch_runs_a_cheap_pass_on_what_its_exits_freed_with_a_long_queue)
