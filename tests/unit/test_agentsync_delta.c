/*
 * test_agentsync_delta.c - version 3 answers (docs/agent-protocol.md,
 * "Deltas"): the server's epoch, a delta against the agent's known_seq
 * (what entered the node's desired set, what left it), the whole set when
 * the server cannot vouch for the agent's base (no epoch, another one's, a
 * seq below what it kept, a restart), partial deltas, and version 2 agents
 * answered as before.  After every delta the set the agent keeps is
 * compared with the whole set the server would send.  In-process, on the
 * engine rig (engine_fixture.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "engine_fixture.h"

/* An agent of version 3: the set it keeps and the base it holds. */
typedef struct {
    agent_t a;       /* name, address, GPUs */
    char epoch[80];  /* of its base; "" none */
    int64_t seq;     /* its known_seq */
    json_t *kept;    /* attempt id -> the desired task, as applied */
    json_t *resp;    /* the last answer */
    size_t resp_len; /* its size as JSON */
    bool applied_delta;
    int version; /* 3, or 2 for an agent of version 2 (the whole set each time) */
} v3_t;

static void v3_init(v3_t *v, const char *name, int ngpus)
{
    memset(v, 0, sizeof(*v));
    v->a = (agent_t){.name = name, .address = "10.0.0.9", .ngpus = ngpus};
    v->version = 3;
    v->kept = json_object();
}

static void v3_free(v3_t *v)
{
    json_decref(v->kept);
    json_decref(v->resp);
    agent_free(&v->a);
}

/* A sync of version (2 or 3) with epoch (NULL: none) and known_seq known,
 * wait_ms wait; reports taken.  The answer (new reference). */
static json_t *raw_sync(rig_t *r, const agent_t *a, int version, const char *epoch, int64_t known,
                        int64_t wait, json_t *reports)
{
    json_t *req = json_pack("{si so sI sI so}", "version", version, "node", node_json(a),
                            "known_seq", (json_int_t)known, "wait_ms", (json_int_t)wait, "tasks",
                            reports ? reports : json_array());
    if (epoch)
        json_object_set_new(req, "epoch", json_string(epoch));
    json_t *resp = sync_request(r, a, req);
    return resp ? resp : json_object();
}

/* One sync of v (reports taken), applied as src/agent applies it: a delta
 * only against the base it holds. */
static void v3_sync(rig_t *r, v3_t *v, json_t *reports)
{
    json_decref(v->resp);
    v->resp = raw_sync(r, &v->a, v->version, *v->epoch ? v->epoch : NULL, v->seq, 0, reports);
    char *text = json_dumps(v->resp, JSON_COMPACT);
    v->resp_len = text ? strlen(text) : 0;
    free(text);
    const json_t *tasks = json_object_get(v->resp, "tasks"),
                 *base = json_object_get(v->resp, "base_seq");
    const char *epoch = json_string_value(json_object_get(v->resp, "epoch"));
    CHECK(v->version < 3 || (epoch && strlen(epoch) == 16));
    v->applied_delta = base != NULL;
    if (!tasks)
        return;
    if (base) {
        CHECK_INT_EQ(json_integer_value(base), v->seq);
        CHECK_STR_EQ(epoch ? epoch : "", v->epoch);
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(v->resp, "removed"), i, id)
            json_object_del(v->kept, json_string_value(id));
    } else {
        json_object_clear(v->kept);
    }
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
        json_object_set(v->kept, json_string_value(json_object_get(t, "attempt_id")), t);
    v->seq = json_integer_value(json_object_get(v->resp, "seq"));
    snprintf(v->epoch, sizeof v->epoch, "%s", epoch ? epoch : "");
}

/* The whole desired set of v's node now (a version 3 sync without a base,
 * which changes nothing the deltas rely on, reporting what v keeps as
 * running so that no command waits for a later answer), as sorted ids. */
static char *whole_set(rig_t *r, const v3_t *v)
{
    json_t *reports = json_array(), *t;
    const char *k;
    json_object_foreach(v->kept, k, t) json_array_append_new(reports, report(k, "running", 0));
    json_t *resp = raw_sync(r, &v->a, 3, NULL, 0, 0, reports);
    CHECK(json_object_get(resp, "base_seq") == NULL);
    json_t *ids = json_object();
    size_t i;
    json_array_foreach(json_object_get(resp, "tasks"), i, t)
        json_object_set_new(ids, json_string_value(json_object_get(t, "attempt_id")), json_true());
    char *s = json_dumps(ids, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(ids);
    json_decref(resp);
    return s;
}

/* Does the set v keeps hold exactly the whole set? */
static bool kept_is_whole(rig_t *r, const v3_t *v)
{
    json_t *ids = json_object();
    const char *k;
    json_t *t;
    json_object_foreach(v->kept, k, t) json_object_set_new(ids, k, json_true());
    char *mine = json_dumps(ids, JSON_SORT_KEYS | JSON_COMPACT), *whole = whole_set(r, v);
    bool same = mine && whole && strcmp(mine, whole) == 0;
    if (!same)
        fprintf(stderr, "  kept %s, whole %s\n", mine ? mine : "?", whole ? whole : "?");
    json_decref(ids);
    free(mine);
    free(whole);
    return same;
}

static size_t n_of(const json_t *resp, const char *key)
{
    return json_array_size(json_object_get(resp, key));
}

/* The id of the kept task whose id contains part ("" when none). */
static const char *kept_id(const v3_t *v, const char *part)
{
    const char *k;
    json_t *t;
    json_object_foreach(v->kept, k, t) if (strstr(k, part)) return k;
    return "";
}

static json_t *running(const char *id)
{
    return report(id, "running", 0);
}

TEST(deltas_carry_what_entered_and_what_left_the_set)
{
    rig_t r;
    v3_t v;
    v3_init(&v, "d1", 4);
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    v3_sync(&r, &v, NULL); /* first sync: no base, the whole (empty) set */
    CHECK(!v.applied_delta);
    CHECK(json_object_get(v.resp, "tasks") != NULL);
    CHECK(submit(&r, "one", 1, 0) && submit(&r, "two", 1, 0));
    tick(&r);
    v3_sync(&r, &v, NULL);
    CHECK(v.applied_delta);
    CHECK_INT_EQ(n_of(v.resp, "tasks"), 2);
    CHECK_INT_EQ(n_of(v.resp, "removed"), 0);
    CHECK_STR_CONTAINS(json_string_value(json_object_get(
                           json_array_get(json_object_get(v.resp, "tasks"), 0), "command")),
                       "echo hello");
    CHECK(kept_is_whole(&r, &v));
    char *id1 = xstrdup(kept_id(&v, "one")), *id2 = xstrdup(kept_id(&v, "two"));
    json_t *both = json_array();
    json_array_append_new(both, running(id1));
    json_array_append_new(both, running(id2));
    v3_sync(&r, &v, both); /* nothing entered or left since */
    CHECK(v.applied_delta);
    CHECK_INT_EQ(n_of(v.resp, "tasks"), 0);
    CHECK_INT_EQ(n_of(v.resp, "removed"), 0);
    CHECK(kept_is_whole(&r, &v));
    json_t *end = json_array();
    json_array_append_new(end, report(id1, "exited", 0));
    json_array_append_new(end, running(id2));
    v3_sync(&r, &v, end); /* one ends: acked, and it left the set */
    CHECK(acked(json_object_get(v.resp, "ack"), id1));
    CHECK(v.applied_delta);
    CHECK_INT_EQ(n_of(v.resp, "removed"), 1);
    CHECK_STR_EQ(json_string_value(json_array_get(json_object_get(v.resp, "removed"), 0)), id1);
    CHECK_INT_EQ(json_object_size(v.kept), 1);
    CHECK(kept_is_whole(&r, &v));
    CHECK(submit(&r, "three", 1, 0));
    tick(&r);
    v3_sync(&r, &v, one(running(id2))); /* only the new one, with its command */
    CHECK(v.applied_delta);
    CHECK_INT_EQ(n_of(v.resp, "tasks"), 1);
    const json_t *t = json_array_get(json_object_get(v.resp, "tasks"), 0);
    CHECK_STR_CONTAINS(json_string_value(json_object_get(t, "attempt_id")), "three");
    CHECK(json_object_get(t, "command") != NULL);
    CHECK(kept_is_whole(&r, &v));
    /* a stop: the attempt leaves the set, the agent is told to kill it */
    CHECK(engine_set_execution(r.e, "alice~two", true, NULL) == PAI_OK);
    v3_sync(&r, &v, one(running(id2)));
    CHECK(v.applied_delta);
    CHECK_INT_EQ(n_of(v.resp, "removed"), 1);
    CHECK(json_object_get(v.kept, id2) == NULL);
    CHECK(kept_is_whole(&r, &v));
    free(id1);
    free(id2);
    v3_free(&v);
    rig_close(&r);
}

TEST(a_base_the_server_cannot_vouch_for_gets_the_whole_set_at_once)
{
    rig_t r;
    v3_t v;
    v3_init(&v, "d2", 2);
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    v3_sync(&r, &v, NULL);
    char *id = submit_running(&r, &v.a, "job", 0); /* placed through a v1 sync */
    v3_sync(&r, &v, one(running(id)));
    CHECK(!v.applied_delta); /* the v1 syncs forgot what left: no delta */
    int64_t s1 = v.seq;
    v3_sync(&r, &v, one(running(id)));
    CHECK(v.applied_delta && v.seq == s1);
    /* another epoch, with a seq the node is at: answered at once (it would
     * be held for wait_ms otherwise) with the whole set */
    int64_t t0 = time_mono_ms();
    json_t *resp = raw_sync(&r, &v.a, 3, "0123456789abcdef", v.seq, 3000, one(running(id)));
    CHECK(time_mono_ms() - t0 < 1000);
    CHECK(json_object_get(resp, "base_seq") == NULL);
    CHECK_INT_EQ(n_of(resp, "tasks"), 1);
    json_decref(resp);
    /* no epoch: the whole set */
    resp = raw_sync(&r, &v.a, 3, NULL, v.seq, 0, one(running(id)));
    CHECK(json_object_get(resp, "base_seq") == NULL && n_of(resp, "tasks") == 1);
    json_decref(resp);
    /* the agent's own epoch and seq: a delta, held while nothing changes */
    t0 = time_mono_ms();
    resp = raw_sync(&r, &v.a, 3, v.epoch, v.seq, 300, one(running(id)));
    CHECK(time_mono_ms() - t0 >= 250);
    CHECK(json_object_get(resp, "base_seq") != NULL && n_of(resp, "tasks") == 0);
    json_decref(resp);
    /* a seq older than the agent has shown it holds: the server forgot
     * what left before it, so the whole set */
    CHECK(submit(&r, "more", 1, 0));
    tick(&r);
    int64_t old = v.seq;
    v3_sync(&r, &v, one(running(id)));
    CHECK(v.applied_delta && v.seq > old);
    v3_sync(&r, &v, one(running(id))); /* it holds v.seq now */
    resp = raw_sync(&r, &v.a, 3, v.epoch, old, 0, one(running(id)));
    CHECK(json_object_get(resp, "base_seq") == NULL && n_of(resp, "tasks") == 2);
    json_decref(resp);
    /* a seq past the node's (its own epoch: never, but not trusted) */
    resp = raw_sync(&r, &v.a, 3, v.epoch, v.seq + 100, 0, one(running(id)));
    CHECK(json_object_get(resp, "base_seq") == NULL && n_of(resp, "tasks") == 2);
    CHECK(json_integer_value(json_object_get(resp, "seq")) > v.seq + 100);
    json_decref(resp);
    /* a restarted server: another epoch, the whole set (restored) */
    char before[80];
    snprintf(before, sizeof before, "%s", v.epoch);
    CHECK(rig_restart(&r));
    v3_sync(&r, &v, one(running(id)));
    CHECK(!v.applied_delta);
    CHECK(strcmp(before, v.epoch) != 0);
    CHECK_INT_EQ(json_object_size(v.kept), 2);
    v3_sync(&r, &v, one(running(id)));
    CHECK(v.applied_delta);
    CHECK(kept_is_whole(&r, &v));
    free(id);
    v3_free(&v);
    rig_close(&r);
}

TEST(version_2_agents_get_the_whole_set_in_every_answer)
{
    rig_t r;
    agent_t a = {.name = "d3", .address = "10.0.0.3", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open");
        return;
    }
    char *id = submit_running(&r, &a, "first", 0);
    CHECK(submit(&r, "second", 1, 0));
    tick(&r);
    for (int i = 0; i < 3; i++) {
        json_t *resp = raw_sync(&r, &a, 2, "0123456789abcdef", a.seq, 0, one(running(id)));
        CHECK_INT_EQ(json_integer_value(json_object_get(resp, "version")), 2);
        CHECK_INT_EQ(n_of(resp, "tasks"), 2);
        CHECK(!json_object_get(resp, "epoch") && !json_object_get(resp, "base_seq") &&
              !json_object_get(resp, "removed"));
        a.seq = json_integer_value(json_object_get(resp, "seq"));
        json_decref(resp);
    }
    free(id);
    agent_free(&a);
    rig_close(&r);
}

/* A job whose rendered commands are about mib MiB. */
static bool submit_big(rig_t *r, const char *name, int mib)
{
    char *p = xcalloc(65537, 1), *refs = xcalloc((size_t)mib * 16 * 20 + 1, 1);
    memset(p, 'x', 65536);
    for (int i = 0; i < mib * 16; i++)
        memcpy(refs + i * 20, "<% $parameters.p %> ", 20);
    char *yaml = str_printf("protocolVersion: 2\nname: %s\ntype: job\nparameters:\n  p: %s\n"
                            "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
                            "taskRoles:\n  big:\n    instances: 1\n    dockerImage: img\n"
                            "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 256}\n"
                            "    commands:\n      - echo %s\n",
                            name, p, refs);
    char *full = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_submit(r->e, "alice", yaml, strlen(yaml), &full, &err);
    if (rc != PAI_OK)
        fprintf(stderr, "  submit %s: %s\n", name, pai_error_msg(&err));
    pai_error_free(&err);
    free(full);
    free(yaml);
    free(p);
    free(refs);
    return rc == PAI_OK;
}

/* Three 3 MiB commands: one per answer (NEW_TASK_BUDGET), each sent with
 * its command once, the ones that wait carried by the next deltas (or, in
 * version 2, the next whole sets); every answer's seq is one the node is
 * past, so the next sync is answered at once. */
static void partial_answers(int version)
{
    rig_t r;
    v3_t v;
    v3_init(&v, "d4", 4);
    v.version = version;
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    v3_sync(&r, &v, NULL);
    CHECK(submit_big(&r, "b1", 3) && submit_big(&r, "b2", 3) && submit_big(&r, "b3", 3));
    tick(&r);
    int commands = 0;
    for (int round = 0; round < 6 && json_object_size(v.kept) < 3; round++) {
        json_t *reports = json_array();
        const char *k;
        json_t *t;
        json_object_foreach(v.kept, k, t) json_array_append_new(reports, running(k));
        v3_sync(&r, &v, reports);
        CHECK(v.resp_len < PAI_MAX_AGENT_MSG);
        size_t i;
        int here = 0;
        json_array_foreach(json_object_get(v.resp, "tasks"), i, t)
        {
            here += json_object_get(t, "command") != NULL;
        }
        CHECK(here <= 1); /* 3 MiB each: one per answer */
        CHECK(json_object_size(v.kept) == 3 ||
              (uint64_t)v.seq < nodes_find(r.e->nodes, "d4")->news);
        commands += here;
    }
    CHECK_INT_EQ(json_object_size(v.kept), 3);
    CHECK_INT_EQ(commands, 3); /* each command once */
    if (version >= 3)
        CHECK(kept_is_whole(&r, &v));
    v3_free(&v);
    rig_close(&r);
}

TEST(a_partial_delta_leaves_what_waits_to_the_next_deltas)
{
    partial_answers(3);
}

TEST(a_partial_whole_set_of_version_2_leaves_what_waits_to_the_next_answers)
{
    partial_answers(2);
}

RUN_TESTS(deltas_carry_what_entered_and_what_left_the_set,
          a_base_the_server_cannot_vouch_for_gets_the_whole_set_at_once,
          version_2_agents_get_the_whole_set_in_every_answer,
          a_partial_delta_leaves_what_waits_to_the_next_deltas,
          a_partial_whole_set_of_version_2_leaves_what_waits_to_the_next_answers)
