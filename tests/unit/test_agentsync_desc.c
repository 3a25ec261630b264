/*
 * test_agentsync_desc.c - version 4 syncs (docs/agent-protocol.md, "The
 * node's description once"): the server keeps the digest of a description
 * sent whole and names it in its answers; a sync that names it alone
 * ("same") keeps the node as described, and one that names a digest the
 * node does not hold (a restarted server, a changed description, a node
 * never seen) is answered at once without "tasks", nothing of it applied.
 * In-process, on the engine rig (engine_fixture.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

/* A version 4 sync of a: its node whole with digest desc, or (same) only
 * the digest; reports taken.  The answer (new reference; {} on failure). */
static json_t *sync4(rig_t *r, const agent_t *a, const char *desc, bool same, int64_t known,
                     json_t *reports)
{
    json_t *node =
        same ? json_pack("{ss ss s{sb}}", "name", a->name, "same", desc, "health", "ok", 1)
             : node_json(a);
    if (!same && desc)
        json_object_set_new(node, "desc", json_string(desc));
    json_t *req =
        json_pack("{si so sI si so}", "version", 4, "node", node, "known_seq", (json_int_t)known,
                  "wait_ms", 0, "tasks", reports ? reports : json_array());
    json_t *resp = sync_request(r, a, req);
    return resp ? resp : json_object();
}

static const char *node_desc(const json_t *resp)
{
    const char *s = json_string_value(json_object_get(resp, "node_desc"));
    return s ? s : "";
}

/* The engine's record of node name, read under its lock. */
static void node_facts(rig_t *r, const char *name, int *ngpus, char *addr, size_t len,
                       engine_node_state_t *state)
{
    engine_lock(r->e);
    engine_node_t *n = nodes_find(r->e->nodes, name);
    *ngpus = n ? n->ngpus : -1;
    str_copy(addr, n && n->address ? n->address : "", len);
    *state = n ? n->state : NODE_LOST;
    engine_unlock(r->e);
}

TEST(a_description_sent_whole_is_named_in_every_answer)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    CHECK(rig_open(&r));
    json_t *resp = sync4(&r, &a, "d1", false, 0, NULL);
    CHECK_STR_EQ(node_desc(resp), "d1");
    CHECK(json_object_get(resp, "tasks") != NULL);
    json_decref(resp);
    /* a version 3 sync: no digest kept, none named */
    json_t *req = json_pack("{si so sI si so}", "version", 3, "node", node_json(&a), "known_seq",
                            (json_int_t)0, "wait_ms", 0, "tasks", json_array());
    resp = sync_request(&r, &a, req);
    CHECK(resp && json_object_get(resp, "node_desc") == NULL);
    json_decref(resp);
    /* and then a "same" names nothing the node holds */
    resp = sync4(&r, &a, "d1", true, 0, NULL);
    CHECK(json_object_get(resp, "tasks") == NULL && json_object_get(resp, "node_desc") == NULL);
    json_decref(resp);
    rig_close(&r);
}

TEST(a_sync_naming_the_held_description_keeps_the_node_and_gets_its_tasks)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    CHECK(rig_open(&r));
    json_decref(sync4(&r, &a, "d1", false, 0, NULL));
    CHECK(submit(&r, "j1", 1, 0));
    tick(&r);
    json_t *resp = sync4(&r, &a, "d1", true, 0, NULL);
    CHECK_STR_EQ(node_desc(resp), "d1");
    json_t *tasks = json_object_get(resp, "tasks");
    CHECK_INT_EQ(json_array_size(tasks), 1);
    const char *id = json_string_value(json_object_get(json_array_get(tasks, 0), "attempt_id"));
    char *attempt = xstrdup(id ? id : "");
    int64_t seq = json_integer_value(json_object_get(resp, "seq"));
    json_decref(resp);
    int ngpus;
    char addr[64];
    engine_node_state_t st;
    node_facts(&r, "node-1", &ngpus, addr, sizeof addr, &st);
    CHECK_INT_EQ(ngpus, 2);
    CHECK_STR_EQ(addr, "10.0.0.1");
    /* its reports are applied: running, then exited and acked */
    json_decref(sync4(&r, &a, "d1", true, seq, one(report(attempt, "running", 0))));
    CHECK_STR_EQ(state_of(&r, "alice~j1"), "RUNNING");
    resp = sync4(&r, &a, "d1", true, seq, one(report(attempt, "exited", 0)));
    CHECK(acked(json_object_get(resp, "ack"), attempt));
    json_decref(resp);
    CHECK_STR_EQ(state_of(&r, "alice~j1"), "SUCCEEDED");
    free(attempt);
    rig_close(&r);
}

TEST(a_digest_the_node_does_not_hold_is_answered_at_once_with_nothing_applied)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    agent_t stranger = {.name = "node-9", .address = "10.0.0.9", .ngpus = 1};
    CHECK(rig_open(&r));
    /* a node never seen is not created */
    json_t *resp = sync4(&r, &stranger, "d9", true, 5, NULL);
    CHECK(json_object_get(resp, "tasks") == NULL);
    CHECK_INT_EQ(json_integer_value(json_object_get(resp, "seq")), 5);
    json_decref(resp);
    int ngpus;
    char addr[64];
    engine_node_state_t st;
    node_facts(&r, "node-9", &ngpus, addr, sizeof addr, &st);
    CHECK_INT_EQ(ngpus, -1);
    /* a changed description: the old digest is no longer held */
    json_decref(sync4(&r, &a, "d1", false, 0, NULL));
    a.ngpus = 4;
    json_decref(sync4(&r, &a, "d2", false, 0, NULL));
    node_facts(&r, "node-1", &ngpus, addr, sizeof addr, &st);
    CHECK_INT_EQ(ngpus, 4);
    CHECK(submit(&r, "j1", 1, 0));
    tick(&r);
    resp = sync4(&r, &a, "d1", true, 0, NULL);
    CHECK(json_object_get(resp, "tasks") == NULL && json_object_get(resp, "node_desc") == NULL);
    json_decref(resp);
    /* its report is not applied (not acked): it is sent again */
    resp = sync4(&r, &a, "d2", true, 0, NULL);
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(resp, "tasks"), 0), "attempt_id"));
    char *attempt = xstrdup(id ? id : "");
    json_decref(resp);
    resp = sync4(&r, &a, "d1", true, 0, one(report(attempt, "exited", 0)));
    CHECK_INT_EQ(json_array_size(json_object_get(resp, "ack")), 0);
    json_decref(resp);
    CHECK(strcmp(state_of(&r, "alice~j1"), "SUCCEEDED") != 0);
    /* a restarted server holds no digest: the agent sends it whole again */
    CHECK(rig_restart(&r));
    resp = sync4(&r, &a, "d2", true, 0, NULL);
    CHECK(json_object_get(resp, "tasks") == NULL);
    json_decref(resp);
    resp = sync4(&r, &a, "d2", false, 0, NULL);
    CHECK_STR_EQ(node_desc(resp), "d2");
    CHECK(json_object_get(resp, "tasks") != NULL);
    json_decref(resp);
    free(attempt);
    rig_close(&r);
}

TEST(a_lost_node_comes_back_with_its_digest_alone)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    CHECK(rig_open(&r));
    json_decref(sync4(&r, &a, "d1", false, 0, NULL));
    r.now += (LOST_S + 1) * 1000;
    tick(&r);
    int ngpus;
    char addr[64];
    engine_node_state_t st;
    node_facts(&r, "node-1", &ngpus, addr, sizeof addr, &st);
    CHECK(st == NODE_LOST);
    json_t *resp = sync4(&r, &a, "d1", true, 0, NULL);
    CHECK_STR_EQ(node_desc(resp), "d1");
    json_decref(resp);
    node_facts(&r, "node-1", &ngpus, addr, sizeof addr, &st);
    CHECK(st == NODE_HEALTHY);
    CHECK_INT_EQ(ngpus, 2);
    /* and takes work again */
    CHECK(submit(&r, "j1", 1, 0));
    tick(&r);
    resp = sync4(&r, &a, "d1", true, 0, NULL);
    CHECK_INT_EQ(json_array_size(json_object_get(resp, "tasks")), 1);
    json_decref(resp);
    rig_close(&r);
}

RUN_TESTS(a_description_sent_whole_is_named_in_every_answer,
          a_sync_naming_the_held_description_keeps_the_node_and_gets_its_tasks,
          a_digest_the_node_does_not_hold_is_answered_at_once_with_nothing_applied,
          a_lost_node_comes_back_with_its_digest_alone)
