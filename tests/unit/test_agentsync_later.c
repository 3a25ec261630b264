/*
 * test_agentsync_later.c - agent protocol version 6 (docs/agent-protocol.md,
 * "Acks in a later answer"): a sync that asks for it ("accept": 6 with
 * "hold_acks") is answered without a commit of its own, and each exit it
 * reports is acked only in an answer given once a commit holds it; a
 * repeated exit is applied once and acked; an older agent is answered as
 * before (its exits committed before the answer that acks them); a server
 * killed -9 between the report and the commit loses nothing: the agent
 * reports the exit again and it is applied once.  In-process, on the
 * engine rig (engine_fixture.h: no threads, so only tick() and the syncs
 * themselves commit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

/* The credential the engine issued to the test's node (version 2 and
 * later), presented from the next sync on like an agent's. */
static char cred[PAI_MAX_NODE_CRED + 1];

/* A sync of a in version v (6: version 4 with "accept": 6; hold_acks as
 * given), reports taken.  The answer (new reference; {} on failure); a's
 * known_seq and desired set follow it. */
static json_t *sync_v(rig_t *r, agent_t *a, int v, bool hold_acks, json_t *reports)
{
    json_t *req =
        json_pack("{si so sI si so}", "version", v >= 4 ? 4 : v, "node", node_json(a), "known_seq",
                  (json_int_t)a->seq, "wait_ms", 0, "tasks", reports ? reports : json_array());
    if (v > 4)
        json_object_set_new(req, "accept", json_integer(v));
    if (hold_acks)
        json_object_set_new(req, "hold_acks", json_true());
    char *text = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_agent_sync(r->e, req, *cred ? cred : NULL, &text, &err);
    json_decref(req);
    if (rc != PAI_OK) {
        fprintf(stderr, "  sync %s: %s\n", a->name, pai_error_msg(&err));
        pai_error_free(&err);
        CHECK(rc == PAI_OK);
        return json_object();
    }
    json_t *resp = answer_json(text);
    if (!resp)
        return json_object();
    const char *issued = json_string_value(json_object_get(resp, "credential"));
    if (issued)
        str_copy(cred, issued, sizeof cred);
    agent_follow(a, resp);
    return resp;
}

static bool acks(const json_t *resp, const char *id)
{
    return acked(json_object_get(resp, "ack"), id);
}

static uint64_t commits(rig_t *r)
{
    engine_lock(r->e);
    uint64_t c = r->e->persist.commits;
    engine_unlock(r->e);
    return c;
}

static uint64_t metric(rig_t *r, bool later)
{
    engine_lock(r->e);
    uint64_t c = later ? r->e->combine.exits_later : r->e->combine.exits_own;
    engine_unlock(r->e);
    return c;
}

/* rig_open, then syncs of a in version 6 until it presents its
 * credential (so that no later sync issues one: a node record to store). */
static bool rig_open_v6(rig_t *r, agent_t *a)
{
    *cred = 0;
    if (!rig_open(r))
        return false;
    json_decref(sync_v(r, a, 6, true, NULL)); /* registers: a credential */
    json_decref(sync_v(r, a, 6, true, NULL)); /* presents it: active */
    tick(r);
    return *cred != 0;
}

/* Submit name (1 GPU), then bring its task to running on a, version 6.
 * Returns its attempt id (malloc'ed). */
static char *run6(rig_t *r, agent_t *a, const char *name, int retries)
{
    CHECK(submit(r, name, 1, retries));
    tick(r);
    json_decref(sync_v(r, a, 6, true, NULL));
    char *id = NULL;
    for (size_t k = 0; k < ndesired(a); k++)
        if (strstr(desired_id(a, k), name))
            id = xstrdup(desired_id(a, k));
    CHECK(id != NULL);
    if (!id)
        return xstrdup("");
    json_decref(sync_v(r, a, 6, true, one(report(id, "running", 0))));
    return id;
}

TEST(an_exit_is_acked_only_in_an_answer_after_the_commit_that_holds_it)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    CHECK(rig_open_v6(&r, &a));
    char *id = run6(&r, &a, "short", 0);
    uint64_t c0 = commits(&r);
    r.now += 1000;
    json_t *resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    CHECK_INT_EQ(json_integer_value(json_object_get(resp, "version")), 6);
    CHECK(!acks(resp, id));                                 /* no commit holds it yet */
    CHECK_INT_EQ(commits(&r), c0);                          /* the sync led none */
    CHECK_STR_EQ(state_of(&r, "alice~short"), "SUCCEEDED"); /* applied all the same */
    CHECK_INT_EQ(metric(&r, true), 1);
    json_decref(resp);
    /* reported again (the agent keeps it until acked): still no commit */
    resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    CHECK(!acks(resp, id));
    json_decref(resp);
    tick(&r); /* the timer's flush */
    CHECK_INT_EQ(commits(&r), c0 + 1);
    resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    CHECK(acks(resp, id));
    CHECK_INT_EQ(commits(&r), c0 + 1);
    json_decref(resp);
    CHECK_INT_EQ(int_of(&r, "alice~short", "appExitCode"), 0);
    CHECK_INT_EQ(int_of(&r, "alice~short", "completedTime"), T0_MS + 1000);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_repeated_exit_is_applied_once)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    CHECK(rig_open_v6(&r, &a));
    char *id = run6(&r, &a, "flaky", 1);
    /* exit 1: retried at once on the same node; the retry's placement is
     * stored by this sync's batch (it is sent only once stored), so the
     * exit is committed with it and acked at once */
    json_t *resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 1)));
    CHECK(acks(resp, id));
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "retries"), 1);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~flaky/1/worker/0/0");
    json_decref(resp);
    /* the answer was lost: the agent reports the same exit again, and the
     * new attempt's start; nothing is applied twice */
    json_t *both = one(report(id, "exited", 1));
    json_array_append_new(both, report("alice~flaky/1/worker/0/0", "running", 0));
    r.now += 500;
    resp = sync_v(&r, &a, 6, true, both);
    CHECK(acks(resp, id)); /* its end is stored: acked */
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "retries"), 1);
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "RUNNING");
    json_decref(resp);
    /* a repeat before any commit: exit 0 of the retry, twice */
    resp = sync_v(&r, &a, 6, true, one(report("alice~flaky/1/worker/0/0", "exited", 0)));
    CHECK(!acks(resp, "alice~flaky/1/worker/0/0"));
    json_decref(resp);
    r.now += 500;
    resp = sync_v(&r, &a, 6, true, one(report("alice~flaky/1/worker/0/0", "exited", 7)));
    CHECK(!acks(resp, "alice~flaky/1/worker/0/0"));
    json_decref(resp);
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "SUCCEEDED");
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "appExitCode"), 0); /* the first report's */
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "retries"), 1);
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "completedTime"), T0_MS + 500);
    tick(&r);
    resp = sync_v(&r, &a, 6, true, one(report("alice~flaky/1/worker/0/0", "exited", 0)));
    CHECK(acks(resp, "alice~flaky/1/worker/0/0"));
    json_decref(resp);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(an_older_agent_is_answered_after_the_commit_with_its_acks)
{
    static const int versions[] = {1, 4, 5};
    for (size_t k = 0; k < 3; k++) {
        rig_t r;
        agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
        CHECK(rig_open_v6(&r, &a));
        char *id = run6(&r, &a, "short", 0);
        uint64_t c0 = commits(&r);
        json_t *resp = sync_v(&r, &a, versions[k], true, one(report(id, "exited", 0)));
        CHECK_INT_EQ(json_integer_value(json_object_get(resp, "version")), versions[k]);
        CHECK(acks(resp, id));
        CHECK_INT_EQ(commits(&r), c0 + 1); /* its own commit, before the answer */
        CHECK_INT_EQ(metric(&r, false), 1);
        CHECK_INT_EQ(metric(&r, true), 0);
        json_decref(resp);
        free(id);
        agent_free(&a);
        rig_close(&r);
    }
    /* version 6 without hold_acks: acks answer at once, so the old way */
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    CHECK(rig_open_v6(&r, &a));
    char *id = run6(&r, &a, "short", 0);
    uint64_t c0 = commits(&r);
    json_t *resp = sync_v(&r, &a, 6, false, one(report(id, "exited", 0)));
    CHECK(acks(resp, id));
    CHECK_INT_EQ(commits(&r), c0 + 1);
    json_decref(resp);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_server_killed_before_the_commit_gets_the_exit_again_and_applies_it_once)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    CHECK(rig_open_v6(&r, &a));
    char *id = run6(&r, &a, "flaky", 1);
    r.now += 1000;
    /* exit 0 (no retry, nothing placed): not committed, not acked */
    json_t *resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    CHECK(!acks(resp, id));
    json_decref(resp);
    CHECK(rig_restart(&r)); /* engine_free does not flush: a kill -9 */
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "RUNNING"); /* as committed */
    a.seq = 0;
    r.now += 1000;
    resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    CHECK(!acks(resp, id)); /* applied now, stored by the next commit */
    json_decref(resp);
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "SUCCEEDED");
    tick(&r);
    resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    CHECK(acks(resp, id));
    json_decref(resp);
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "retries"), 0);
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "completedTime"), T0_MS + 2000);
    /* and after another restart it is there, once */
    CHECK(rig_restart(&r));
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "SUCCEEDED");
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "retries"), 0);
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "appExitCode"), 0);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(a_stale_exit_changes_nothing_and_is_acked)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    CHECK(rig_open_v6(&r, &a));
    char *id = run6(&r, &a, "lost", 0);
    /* the node is lost: its task fails with -1001 and the job retries */
    r.now += (LOST_S + 1) * 1000LL;
    tick(&r);
    CHECK_INT_EQ(int_of(&r, "alice~lost", "retries"), 1);
    /* the agent comes back and reports the old attempt's exit */
    json_t *resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    json_decref(resp);
    tick(&r);
    resp = sync_v(&r, &a, 6, true, one(report(id, "exited", 0)));
    CHECK(acks(resp, id));
    json_decref(resp);
    CHECK_INT_EQ(int_of(&r, "alice~lost", "retries"), 1);
    CHECK(strcmp(state_of(&r, "alice~lost"), "SUCCEEDED") != 0);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(an_exit_is_acked_only_in_an_answer_after_the_commit_that_holds_it,
          a_repeated_exit_is_applied_once,
          an_older_agent_is_answered_after_the_commit_with_its_acks,
          a_server_killed_before_the_commit_gets_the_exit_again_and_applies_it_once,
          a_stale_exit_changes_nothing_and_is_acked)
