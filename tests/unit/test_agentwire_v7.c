/*
 * test_agentwire_v7.c - the agent protocol's version 7: compact task
 * entries (docs/agent-protocol.md, "Compact task entries (version 7)").
 * A version 7 entry leaves out what the agent derives (the names and
 * numbers in the attempt id, the user in the job's name, the GPUs,
 * resources and ports in the jobenv, the default kill grace; an image
 * without auth as its uri), and the task the agent reads from it is the
 * one it reads from the version 6 entry, field for field, for every task
 * of a two-role job with ports and for entries where a field differs from
 * what would be derived (then it is sent); the tree and the text writer
 * agree; an acked id leaves a version 7 delta's set; malformed compact
 * entries are refused with the field named.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/codec.h"
#include "engine/env.h"
#include "engine/lifecycle.h"
#include "env_fixture.h"
#include "test.h"
#include "wire/agentwire.h"

/* Task (r, i) of j as the server describes it (engine/desired.c). */
typedef struct {
    agentwire_task_t t;
    char *id;
    int gpus[65];
    agentwire_ports_t ports[8];
    int pv[8][8];
} fixture_t;

static void task_of(fixture_t *f, const lc_job_t *j, int r, int i)
{
    memset(f, 0, sizeof(*f));
    const lc_role_t *role = &j->roles[r];
    const lc_task_attempt_t *ta = lc_task_current(j, r, i);
    f->id = codec_attempt_id(j, 0, r, i, 0);
    f->t = (agentwire_task_t){.attempt_id = f->id,
                              .job = j->name,
                              .user = j->name,
                              .user_len = (size_t)j->user_len,
                              .role = role->name,
                              .index = i,
                              .image = "localhost/busybox:1",
                              .command = "true\n",
                              .cpu = role->cpu,
                              .memory_mb = role->mem_mb,
                              .shm_mb = role->shm_mb,
                              .kill_grace_ms = AGENTWIRE_KILL_GRACE_MS,
                              .has_task_uid = true,
                              .task_uid = 0,
                              .jobenv = engine_task_jobenv(j, r, i),
                              .gpus = f->gpus,
                              .ports = f->ports};
    for (int g = 0; g < 64; g++)
        if (ta->gpus & (1ull << g))
            f->gpus[f->t.ngpus++] = g;
    int k = 0;
    for (int p = 0; p < role->nports; p++) {
        agentwire_ports_t *o = &f->ports[f->t.nports++];
        o->label = role->ports[p].label;
        o->ports = f->pv[p];
        for (int c = 0; c < role->ports[p].count && k < ta->nports; c++)
            o->ports[o->n++] = ta->ports[k++];
    }
}

static void fixture_free(fixture_t *f)
{
    agentwire_jobenv_free(f->t.jobenv);
    free(f->id);
}

/* The answer of version v with tasks, as text (the tree's bytes too). */
static char *answer_text(agentwire_task_t *tasks, size_t n, int v)
{
    agentwire_resp_t m = {.version = v, .seq = 3, .has_tasks = true, .tasks = tasks, .ntasks = n};
    size_t len;
    char *text = agentwire_resp_dumps(&m, &len);
    json_t *tree = agentwire_resp_encode(&m);
    char *want = json_dumps(tree, JSON_COMPACT);
    CHECK_STR_EQ(text, want);
    free(want);
    json_decref(tree);
    return text;
}

static void same_str(const char *a, const char *b)
{
    CHECK_STR_EQ(a ? a : "(null)", b ? b : "(null)");
}

/* The two decoded tasks are the same, field for field. */
static void same_task(const agentwire_task_t *a, const agentwire_task_t *b)
{
    same_str(a->attempt_id, b->attempt_id);
    same_str(a->job, b->job);
    same_str(a->user, b->user);
    same_str(a->role, b->role);
    CHECK_INT_EQ(a->index, b->index);
    CHECK_INT_EQ(a->job_attempt, b->job_attempt);
    CHECK_INT_EQ(a->task_attempt, b->task_attempt);
    same_str(a->image, b->image);
    CHECK(a->image_auth == b->image_auth);
    same_str(a->image_user, b->image_user);
    same_str(a->image_password, b->image_password);
    same_str(a->image_registry, b->image_registry);
    same_str(a->command, b->command);
    CHECK_INT_EQ(a->nenv, b->nenv);
    for (size_t k = 0; k < a->nenv && k < b->nenv; k++) {
        same_str(a->env[k].name, b->env[k].name);
        same_str(a->env[k].value, b->env[k].value);
    }
    CHECK_INT_EQ(a->ngpus, b->ngpus);
    for (size_t k = 0; k < a->ngpus && k < b->ngpus; k++)
        CHECK_INT_EQ(a->gpus[k], b->gpus[k]);
    CHECK(a->cpu == b->cpu);
    CHECK_INT_EQ(a->memory_mb, b->memory_mb);
    CHECK_INT_EQ(a->shm_mb, b->shm_mb);
    CHECK_INT_EQ(a->nports, b->nports);
    for (size_t p = 0; p < a->nports && p < b->nports; p++) {
        same_str(a->ports[p].label, b->ports[p].label);
        CHECK_INT_EQ(a->ports[p].n, b->ports[p].n);
        for (size_t k = 0; k < a->ports[p].n && k < b->ports[p].n; k++)
            CHECK_INT_EQ(a->ports[p].ports[k], b->ports[p].ports[k]);
    }
    CHECK(a->has_mounts == b->has_mounts);
    CHECK_INT_EQ(a->nmounts, b->nmounts);
    CHECK_INT_EQ(a->kill_grace_ms, b->kill_grace_ms);
    CHECK(a->has_task_uid == b->has_task_uid);
    CHECK_INT_EQ(a->task_uid, b->task_uid);
}

/* t read from a version 7 answer is t read from a version 6 one; the
 * version 7 text is returned (free it). */
static char *v7_reads_as_v6(agentwire_task_t *t)
{
    char *v6 = answer_text(t, 1, 6), *v7 = answer_text(t, 1, 7);
    agentwire_resp_t r6, r7;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_parse(v6, strlen(v6), &r6, &e) == PAI_OK);
    CHECK(agentwire_resp_parse(v7, strlen(v7), &r7, &e) == PAI_OK);
    CHECK(r6.ntasks == 1 && r7.ntasks == 1);
    if (r6.ntasks == 1 && r7.ntasks == 1)
        same_task(&r6.tasks[0], &r7.tasks[0]);
    CHECK(strlen(v7) <= strlen(v6));
    agentwire_resp_clear(&r6);
    agentwire_resp_clear(&r7);
    free(v6);
    return v7;
}

TEST(every_task_of_a_job_with_ports_reads_as_in_version_6)
{
    lc_job_t *j = job_of("ps", "worker");
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < j->roles[r].instances; i++) {
            fixture_t f;
            task_of(&f, j, r, i);
            char *v7 = v7_reads_as_v6(&f.t);
            /* what is derived is not sent */
            CHECK(strstr(v7, "\"job\"") == NULL && strstr(v7, "\"user\"") == NULL &&
                  strstr(v7, "\"role\":\"") == NULL && strstr(v7, "\"job_attempt\"") == NULL &&
                  strstr(v7, "\"memory_mb\"") == NULL && strstr(v7, "\"kill_grace_ms\"") == NULL &&
                  strstr(v7, "\"image\":\"localhost/busybox:1\"") != NULL);
            /* the second worker's host lists 2 ports for its 3: sent */
            CHECK((strstr(v7, "\"ports\":{") != NULL) == (r == 1 && i == 1));
            CHECK((strstr(v7, "],\"gpus\":[") != NULL) == false);
            free(v7);
            fixture_free(&f);
        }
    lc_job_free(j);
}

TEST(a_field_that_differs_from_the_derived_one_is_sent)
{
    lc_job_t *j = job_of("ps", "a/b");
    fixture_t f;
    task_of(&f, j, 1, 0);
    char *v7 = v7_reads_as_v6(&f.t); /* a role with '/': the names are sent */
    CHECK(strstr(v7, "\"job\":\"carol~env1\",\"role\":\"a/b\",\"index\":0") != NULL);
    free(v7);
    fixture_free(&f);
    task_of(&f, j, 0, 0);
    f.t.job_attempt = 1; /* not the id's */
    f.t.kill_grace_ms = 5000;
    f.t.cpu = 0.5;
    f.t.gpus[f.t.ngpus++] = 9;
    f.t.ports[1].ports[0] = 1;
    f.t.image = NULL;
    f.t.has_task_uid = false;
    v7 = v7_reads_as_v6(&f.t);
    CHECK(strstr(v7, "\"job_attempt\":1") && strstr(v7, "\"kill_grace_ms\":5000") &&
          strstr(v7, "\"cpu\":0.5,\"memory_mb\":1024") && strstr(v7, "\"gpus\":[9]") &&
          strstr(v7, "\"ports\":{\"ssh\"") && !strstr(v7, "\"image\"") && !strstr(v7, "task_uid"));
    free(v7);
    f.t.job_attempt = 0;
    f.t.user_len = 3; /* a user that is not the job's owner */
    f.t.image = "img";
    f.t.image_auth = true;
    f.t.image_user = "u";
    v7 = v7_reads_as_v6(&f.t);
    CHECK(strstr(v7, "\"attempt_id\":\"carol~env1/0/ps/0/0\",\"user\":\"car\",\"image\":{") !=
          NULL);
    free(v7);
    f.t.user_len = 5;
    f.t.job = "carol"; /* no '~': no user is derived, and the names are sent */
    f.t.image_auth = false;
    v7 = v7_reads_as_v6(&f.t);
    CHECK(strstr(v7, "\"job\":\"carol\",\"user\":\"carol\"") != NULL);
    free(v7);
    f.t.jobenv->role = 7; /* an inconsistent placement: nothing of it is left out */
    char *v6 = answer_text(&f.t, 1, 6);
    v7 = answer_text(&f.t, 1, 7);
    CHECK(strstr(v7, "\"gpus\":[") && strstr(v7, "\"memory_mb\"") && strstr(v7, "\"ports\":{"));
    free(v6);
    free(v7);
    f.t.jobenv->role = 0;
    fixture_free(&f);
    lc_job_free(j);
}

TEST(a_one_task_entry_is_these_bytes)
{
    lc_job_t *j = job_of("main", "w");
    fixture_t f;
    task_of(&f, j, 0, 0);
    char *v7 = answer_text(&f.t, 1, 7);
    const char *want =
        "{\"version\":7,\"seq\":3,\"ack\":[],\"tasks\":[{\"attempt_id\":\"carol~env1/0/main/0/0\","
        "\"image\":\"localhost/busybox:1\",\"command\":\"true\\n\",\"jobenv\":{\"vc\":\"vcA\","
        "\"role\":0,\"gpus\":[],\"roles\":[{\"name\":\"main\",\"instances\":1,\"resource\":[0,2,"
        "1024,64],\"ports\":[[\"ssh\",1],[\"http\",2],[\"tb\",3]],\"hosts\":[[\"10.0.0.1\",30000,"
        "30001,30002,30003,30004,30005]]},{\"name\":\"w\",\"instances\":2,\"resource\":[3,3,1024,"
        "64],\"ports\":[[\"ssh\",1],[\"http\",2],[\"tb\",0]],\"hosts\":[[\"10.0.0.2\",31000,31001,"
        "31002],[\"10.0.0.3\",32000,32001]]}]},\"task_uid\":0}],\"heartbeat_ms\":0}";
    CHECK_STR_EQ(v7, want);
    free(v7);
    fixture_free(&f);
    lc_job_free(j);
}

static void refused(const char *task, const char *want)
{
    char *text = str_printf("{\"version\":7,\"seq\":1,\"ack\":[],\"tasks\":[%s]}", task);
    agentwire_resp_t r;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_parse(text, strlen(text), &r, &e) == PAI_E_PROTOCOL);
    CHECK_STR_EQ(pai_error_msg(&e), want);
    CHECK(r.root == NULL && r.tasks == NULL);
    pai_error_free(&e);
    free(text);
}

TEST(malformed_compact_entries_are_refused_naming_the_field)
{
    refused("{\"attempt_id\":\"u~j/0/w/0\"}",
            "tasks[0].attempt_id: must be job/job_attempt/role/index/task_attempt when job is "
            "absent");
    refused("{\"attempt_id\":\"u~j/0/w/x/0\"}",
            "tasks[0].attempt_id: must be job/job_attempt/role/index/task_attempt when job is "
            "absent");
    refused("{\"attempt_id\":\"u~j/0/w/0/0\",\"role\":\"w\"}",
            "tasks[0].job: is required with role, index, job_attempt or task_attempt");
    /* the host lists one port for two labels: the ports must be sent */
    refused("{\"attempt_id\":\"u~j/0/w/0/0\",\"jobenv\":{\"vc\":\"v\",\"role\":0,\"gpus\":[],"
            "\"roles\":[{\"name\":\"w\",\"instances\":1,\"resource\":[0,1,2,3],\"ports\":"
            "[[\"a\",1],[\"b\",1]],\"hosts\":[[\"h\",5]]}]}}",
            "tasks[0].ports: must be sent when the task's host lists fewer ports than its role's "
            "labels");
}

TEST(a_bare_compact_entry_takes_the_derived_values)
{
    const char *text =
        "{\"version\":7,\"seq\":1,\"ack\":[],\"tasks\":[{\"attempt_id\":\"u~j/2/w/1/3\","
        "\"jobenv\":{\"vc\":\"v\",\"role\":0,\"gpus\":[1,4],\"roles\":[{\"name\":\"w\","
        "\"instances\":2,\"resource\":[2,3,100,7],\"ports\":[[\"a\",1],[\"b\",2]],\"hosts\":"
        "[null,[\"h\",5,6,7]]}]}},{\"attempt_id\":\"nouser/0/r/0/0\"}]}";
    agentwire_resp_t r;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_parse(text, strlen(text), &r, &e) == PAI_OK);
    CHECK(r.ntasks == 2);
    if (r.ntasks == 2) {
        const agentwire_task_t *t = &r.tasks[0];
        CHECK_STR_EQ(t->job, "u~j");
        CHECK_STR_EQ(t->user, "u");
        CHECK_STR_EQ(t->role, "w");
        CHECK(t->job_attempt == 2 && t->index == 1 && t->task_attempt == 3);
        CHECK(t->ngpus == 2 && t->gpus[0] == 1 && t->gpus[1] == 4);
        CHECK(t->cpu == 3 && t->memory_mb == 100 && t->shm_mb == 7);
        CHECK(t->nports == 2 && t->ports[0].n == 1 && t->ports[0].ports[0] == 5 &&
              t->ports[1].n == 2 && t->ports[1].ports[0] == 6 && t->ports[1].ports[1] == 7);
        CHECK_STR_EQ(t->ports[1].label, "b");
        CHECK(t->kill_grace_ms == AGENTWIRE_KILL_GRACE_MS && !t->image && !t->has_task_uid);
        t = &r.tasks[1];
        CHECK_STR_EQ(t->job, "nouser");
        CHECK(t->user == NULL && t->ngpus == 0 && t->nports == 0);
    }
    agentwire_resp_clear(&r);
}

TEST(an_acked_id_leaves_a_version_7_delta_only)
{
    for (int v = 6; v <= 7; v++) {
        char *text = str_printf("{\"version\":%d,\"seq\":5,\"ack\":[\"u~j/0/w/0/0\"],"
                                "\"epoch\":\"e1\",\"base_seq\":4,\"tasks\":[],\"removed\":"
                                "[\"u~j/0/w/1/0\"],\"heartbeat_ms\":5000}",
                                v);
        agentwire_resp_t r;
        pai_error_t e = PAI_ERROR_INIT;
        CHECK(agentwire_resp_parse(text, strlen(text), &r, &e) == PAI_OK);
        CHECK_INT_EQ(r.nremoved, 1); /* the message as sent: it re-encodes the same */
        CHECK_INT_EQ(agentwire_resp_nleft(&r), v == 7 ? 2 : 1);
        CHECK_STR_EQ(agentwire_resp_left(&r, 0), "u~j/0/w/1/0");
        if (v == 7 && agentwire_resp_nleft(&r) == 2)
            CHECK_STR_EQ(agentwire_resp_left(&r, 1), "u~j/0/w/0/0");
        json_t *again = agentwire_resp_encode(&r);
        char *back = json_dumps(again, JSON_COMPACT);
        CHECK_STR_EQ(back, text);
        free(back);
        json_decref(again);
        agentwire_resp_clear(&r);
        free(text);
    }
    /* a whole set: the acks are not a delta's */
    const char *text = "{\"version\":7,\"seq\":5,\"ack\":[\"a/0/w/0/0\"],\"tasks\":[]}";
    agentwire_resp_t r;
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_parse(text, strlen(text), &r, &e) == PAI_OK);
    CHECK(r.nremoved == 0 && !r.delta && agentwire_resp_nleft(&r) == 0);
    agentwire_resp_clear(&r);
}

TEST(a_request_asks_for_version_7_and_older_answers_keep_their_bytes)
{
    agentwire_req_t q = {.version = 4, .accept = 7, .node = {.name = "n"}};
    CHECK_INT_EQ(agentwire_answer_version(&q), 7);
    q.accept = 6;
    CHECK_INT_EQ(agentwire_answer_version(&q), 6);
    q.accept = 9;
    CHECK_INT_EQ(agentwire_answer_version(&q), AGENTWIRE_VERSION);
    lc_job_t *j = job_of("ps", "worker");
    fixture_t f;
    task_of(&f, j, 1, 0);
    for (int v = 1; v < 7; v++) {
        char *text = answer_text(&f.t, 1, v);
        CHECK(strstr(text, "\"job\":\"carol~env1\",\"user\":\"carol\",\"role\":\"worker\"") &&
              strstr(text, "\"kill_grace_ms\":10000") && strstr(text, "\"image\":{\"uri\":"));
        free(text);
    }
    fixture_free(&f);
    lc_job_free(j);
}

RUN_TESTS(every_task_of_a_job_with_ports_reads_as_in_version_6,
          a_field_that_differs_from_the_derived_one_is_sent, a_one_task_entry_is_these_bytes,
          malformed_compact_entries_are_refused_naming_the_field,
          a_bare_compact_entry_takes_the_derived_values, an_acked_id_leaves_a_version_7_delta_only,
          a_request_asks_for_version_7_and_older_answers_keep_their_bytes)
