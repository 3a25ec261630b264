/*
 * test_agentsync_v7.c - the server's side of agent protocol version 7
 * (docs/agent-protocol.md, "Compact task entries (version 7)"): a sync
 * that asks for it ("accept": 7) is answered in version 7, its task
 * entries without the fields the agent derives; a delta leaves out of
 * "removed" the ids it acks (the agent drops an acked id from its set) and
 * carries the log key only with a new credential, a whole set always; the
 * set a version 7 agent keeps (decoded as src/agent decodes it) is the one
 * a version 6 agent keeps after the same syncs.  In-process, on the engine
 * rig (engine_fixture.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"
#include "wire/agentwire.h"

/* An agent of version v (4 with "accept": v, hold_acks): its credential,
 * its base (epoch, known_seq) and the set it keeps, applied from the
 * decoded answers as node.c applies them. */
typedef struct {
    agent_t a;
    int v;
    char cred[PAI_MAX_NODE_CRED + 1];
    char epoch[80];
    int64_t seq;
    json_t *kept; /* attempt id -> true */
    json_t *resp; /* the last answer, as JSON */
    bool log_key; /* the last answer named one */
    bool got_key; /* some answer named one */
    size_t bytes; /* the answers' bytes */
    bool overlap; /* an answer acked an id it also listed in removed */
    bool dropped; /* an acked id left the kept set through the ack alone */
} ag_t;

static void ag_init(ag_t *g, int v)
{
    memset(g, 0, sizeof(*g));
    g->a = (agent_t){.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    g->v = v;
    g->kept = json_object();
}

static void ag_free(ag_t *g)
{
    json_decref(g->kept);
    json_decref(g->resp);
    agent_free(&g->a);
}

static bool in_list(const json_t *list, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (strcmp(json_string_value(v), id) == 0) return true;
    return false;
}

/* One sync of g reporting reports (taken), applied. */
static void ag_sync(rig_t *r, ag_t *g, json_t *reports)
{
    json_t *req = json_pack("{si si so sI si sb so}", "version", 4, "accept", g->v, "node",
                            node_json(&g->a), "known_seq", (json_int_t)g->seq, "wait_ms", 0,
                            "hold_acks", 1, "tasks", reports ? reports : json_array());
    if (*g->epoch)
        json_object_set_new(req, "epoch", json_string(g->epoch));
    char *text = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_agent_sync(r->e, req, *g->cred ? g->cred : NULL, &text, &err);
    json_decref(req);
    CHECK(rc == PAI_OK);
    if (rc != PAI_OK) {
        pai_error_free(&err);
        return;
    }
    agentwire_resp_t m;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_parse(text, strlen(text), &m, &e) == PAI_OK);
    CHECK_INT_EQ(m.version, g->v);
    g->bytes += strlen(text);
    json_decref(g->resp);
    g->resp = answer_json(text);
    const json_t *removed = json_object_get(g->resp, "removed");
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(g->resp, "ack"), i, id)
    {
        if (in_list(removed, json_string_value(id)))
            g->overlap = true;
        else if (m.delta && json_object_get(g->kept, json_string_value(id)))
            g->dropped = true;
    }
    g->log_key = m.log_key != NULL;
    g->got_key = g->got_key || g->log_key;
    if (m.credential)
        str_copy(g->cred, m.credential, sizeof g->cred);
    if (m.has_tasks) {
        if (m.delta) {
            CHECK_INT_EQ((int64_t)m.base_seq, g->seq);
            for (size_t k = 0; k < agentwire_resp_nleft(&m); k++) /* as node.c */
                json_object_del(g->kept, agentwire_resp_left(&m, k));
        } else {
            json_object_clear(g->kept);
        }
        for (size_t k = 0; k < m.ntasks; k++) {
            json_object_set_new(g->kept, m.tasks[k].attempt_id, json_true());
            /* every entry reads whole: names derived in version 7 */
            CHECK(m.tasks[k].job && strncmp(m.tasks[k].job, "alice~", 6) == 0);
            CHECK(m.tasks[k].user && strcmp(m.tasks[k].user, "alice") == 0);
            CHECK(m.tasks[k].ngpus == 1 && m.tasks[k].kill_grace_ms == 10000);
        }
        snprintf(g->epoch, sizeof g->epoch, "%s", m.epoch ? m.epoch : "");
    }
    g->seq = (int64_t)m.seq;
    agentwire_resp_clear(&m);
}

static json_t *reports_of(const char *id1, const char *st1, const char *id2, const char *st2)
{
    json_t *l = json_array();
    if (id1)
        json_array_append_new(l, report(id1, st1, 0));
    if (id2)
        json_array_append_new(l, report(id2, st2, 0));
    return l;
}

/* The kept set's ids, sorted, as text (free it). */
static char *kept_text(const ag_t *g)
{
    return json_dumps(g->kept, JSON_SORT_KEYS | JSON_COMPACT);
}

/* Two one-GPU jobs on g's node, a third waiting: both run, the first
 * ends (the third placed on its GPU, a commit before the answer, which
 * acks it) and is acked; returns the kept set's text at the end (free it). */
static char *scenario(ag_t *g)
{
    rig_t r;
    CHECK(rig_open(&r));
    ag_sync(&r, g, NULL); /* registers: a credential, a whole set */
    CHECK(g->log_key && *g->cred);
    ag_sync(&r, g, NULL); /* presents it */
    tick(&r);
    CHECK(submit(&r, "j1", 1, 0) && submit(&r, "j2", 1, 0));
    tick(&r);
    CHECK(submit(&r, "j3", 1, 0)); /* waits for a GPU: placed when j1 ends */
    tick(&r);
    ag_sync(&r, g, NULL);
    CHECK(json_object_size(g->kept) == 2);
    CHECK(json_object_get(g->resp, "base_seq") != NULL); /* a delta */
    const json_t *t0 = json_array_get(json_object_get(g->resp, "tasks"), 0);
    CHECK((json_object_get(t0, "job") == NULL) == (g->v >= 7));
    CHECK((json_object_get(t0, "gpus") == NULL) == (g->v >= 7));
    CHECK(g->log_key == (g->v < 7)); /* a delta: the key only before version 7 */
    char *ids[2] = {NULL, NULL};
    const char *k;
    json_t *v;
    int n = 0;
    json_object_foreach(g->kept, k, v) ids[n++] = xstrdup(k);
    ag_sync(&r, g, reports_of(ids[0], "running", ids[1], "running"));
    r.now += 1000;
    ag_sync(&r, g, reports_of(ids[0], "exited", ids[1], "running"));
    for (int i = 0; i < 4 && !acked(json_object_get(g->resp, "ack"), ids[0]); i++) {
        tick(&r);
        ag_sync(&r, g, reports_of(ids[0], "exited", ids[1], "running"));
    }
    CHECK(acked(json_object_get(g->resp, "ack"), ids[0]));
    CHECK(json_object_get(g->kept, ids[0]) == NULL && json_object_get(g->kept, ids[1]) != NULL);
    CHECK(json_object_size(g->kept) == 2); /* j2 and j3 */
    CHECK_STR_EQ(state_of(&r, "alice~j1"), "SUCCEEDED");
    ag_sync(&r, g, reports_of(ids[1], "running", NULL, NULL));
    free(ids[0]);
    free(ids[1]);
    rig_close(&r);
    return kept_text(g);
}

TEST(a_version_7_agent_keeps_the_set_a_version_6_agent_keeps)
{
    ag_t g6, g7;
    ag_init(&g6, 6);
    ag_init(&g7, 7);
    char *k6 = scenario(&g6), *k7 = scenario(&g7);
    CHECK_STR_EQ(k7, k6);
    /* version 6 lists an acked id in removed too; version 7 acks it alone */
    CHECK(g6.overlap && !g6.dropped);
    CHECK(!g7.overlap && g7.dropped);
    CHECK(g7.bytes < g6.bytes * 3 / 4);
    free(k6);
    free(k7);
    ag_free(&g6);
    ag_free(&g7);
}

TEST(a_whole_set_names_the_log_key_in_version_7)
{
    rig_t r;
    ag_t g;
    ag_init(&g, 7);
    CHECK(rig_open(&r));
    ag_sync(&r, &g, NULL);
    CHECK(g.log_key && !json_object_get(g.resp, "base_seq")); /* no epoch yet: a whole set */
    ag_sync(&r, &g, NULL);
    CHECK(!g.log_key && json_object_get(g.resp, "base_seq")); /* a delta */
    *g.epoch = '\0';                                          /* a restarted agent: no base */
    g.seq = 0;
    ag_sync(&r, &g, NULL);
    CHECK(g.log_key && !json_object_get(g.resp, "base_seq"));
    rig_close(&r);
    ag_free(&g);
}

RUN_TESTS(a_version_7_agent_keeps_the_set_a_version_6_agent_keeps,
          a_whole_set_names_the_log_key_in_version_7)
