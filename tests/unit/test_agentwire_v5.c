/*
 * test_agentwire_v5.c - the agent protocol's version 5: a task's env as
 * its job's placement ("jobenv", docs/agent-protocol.md, "The environment
 * as the job's placement").  The variables the agent derives from a
 * version 5 answer are those a version 4 answer carries, name for name,
 * value for value and in order, for every task of a two-role job with
 * several port labels and GPUs (a name two roles make alike too); the text
 * writer and the tree write the same bytes; a request asks for it with
 * "accept", which a version 4 request carries and older servers ignore;
 * malformed placements are refused with the field named.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/env.h"
#include "engine/lifecycle.h"
#include "env_fixture.h"
#include "test.h"
#include "wire/agentwire.h"

/* An answer of version v with task (r, i) of j as the server writes it,
 * as text; the tree's bytes must be the same. */
static char *answer_text(const lc_job_t *j, int r, int i, int v)
{
    agentwire_task_t t = {.attempt_id = "carol~env1/0/x/0/0",
                          .job = j->name,
                          .user = j->name,
                          .user_len = j->user_len,
                          .role = j->roles[r].name,
                          .index = i,
                          .command = "true",
                          .cpu = 1,
                          .kill_grace_ms = 10000};
    json_t *pairs = NULL;
    if (v >= AGENTWIRE_JOBENV_VERSION) {
        t.jobenv = engine_task_jobenv(j, r, i);
    } else {
        pairs = engine_task_env_pairs(j, r, i, &t.nenv);
        t.env = agentwire_env_split(json_string_value(pairs), t.nenv);
    }
    agentwire_resp_t m = {.version = v, .seq = 3, .has_tasks = true, .tasks = &t, .ntasks = 1};
    size_t len;
    char *text = agentwire_resp_dumps(&m, &len);
    json_t *tree = agentwire_resp_encode(&m);
    char *want = json_dumps(tree, JSON_COMPACT);
    CHECK_STR_EQ(text, want);
    free(want);
    json_decref(tree);
    free(t.env);
    agentwire_jobenv_free(t.jobenv);
    json_decref(pairs);
    return text;
}

/* The env the agent reads from an answer: "NAME=VALUE\n" in order. */
static char *env_read(const char *text, agentwire_jobenv_t **placement)
{
    agentwire_resp_t r;
    pai_error_t e = {0};
    CHECK(agentwire_resp_parse(text, strlen(text), &r, &e) == PAI_OK);
    CHECK(r.ntasks == 1);
    buf_t b;
    buf_init(&b, 1 << 20);
    for (size_t k = 0; r.ntasks == 1 && k < r.tasks[0].nenv; k++)
        CHECK(buf_printf(&b, "%s=%s\n", r.tasks[0].env[k].name, r.tasks[0].env[k].value) == PAI_OK);
    if (placement) {
        *placement = r.ntasks == 1 ? r.tasks[0].jobenv : NULL;
        if (r.ntasks == 1)
            r.tasks[0].jobenv = NULL;
    }
    agentwire_resp_clear(&r);
    return b.data ? buf_take(&b) : xstrdup("");
}

TEST(version_5_derives_the_env_version_4_sends_for_every_task)
{
    static const char *const roles[2][2] = {{"ps", "worker_x"}, {"TASK_COUNT_w", "w_HOST_LIST"}};
    for (int k = 0; k < 2; k++) {
        lc_job_t *j = job_of(roles[k][0], roles[k][1]);
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < j->roles[r].instances; i++) {
                char *v4 = answer_text(j, r, i, 4), *v5 = answer_text(j, r, i, 5);
                CHECK(strstr(v4, "\"env\":{\"PAI_JOB_NAME\":\"carol~env1\"") != NULL);
                CHECK(strstr(v4, "jobenv") == NULL);
                CHECK(strstr(v5, "\"jobenv\":{\"vc\":\"vcA\",\"role\":") != NULL);
                CHECK(strstr(v5, "\"env\"") == NULL);
                CHECK(strlen(v5) < strlen(v4));
                agentwire_jobenv_t *back = NULL;
                char *e4 = env_read(v4, NULL), *e5 = env_read(v5, &back);
                CHECK(strstr(e4, "PAI_USER_NAME=carol\n") != NULL);
                CHECK_STR_EQ(e5, e4);
                /* the placement read back is the one sent */
                agentwire_jobenv_t *sent = engine_task_jobenv(j, r, i);
                CHECK(back && back->role == r && back->index == i && back->gpus == sent->gpus &&
                      back->nroles == 2 && back->nhosts == 3 && back->nports == sent->nports &&
                      memcmp(back->ports, sent->ports, sent->nports * sizeof(int)) == 0);
                agentwire_jobenv_free(sent);
                agentwire_jobenv_free(back);
                free(e4);
                free(e5);
                free(v4);
                free(v5);
            }
        lc_job_free(j);
    }
}

/* The clash: the name both roles make is set once, in its first place,
 * with its last value, as version 4's env object has it. */
TEST(a_name_two_roles_make_is_read_once_with_the_last_value)
{
    lc_job_t *j = job_of("TASK_COUNT_w", "w_HOST_LIST");
    char *v5 = answer_text(j, 1, 0, 5), *e5 = env_read(v5, NULL);
    const char *name = "PAI_TASK_ROLE_TASK_COUNT_w_HOST_LIST=";
    const char *at = strstr(e5, name);
    CHECK(at && strncmp(at + strlen(name), "2\n", 2) == 0 && strstr(at + 1, name) == NULL);
    size_t n = 0;
    json_t *pairs = engine_task_env_pairs(j, 1, 0, &n), *obj = engine_task_env(j, 1, 0);
    size_t lines = 0;
    for (const char *p = e5; *p; p++)
        lines += *p == '\n';
    CHECK(lines == json_object_size(obj) && lines + 1 == n);
    json_decref(pairs);
    json_decref(obj);
    free(e5);
    free(v5);
    lc_job_free(j);
}

/* A placement by hand: an instance not placed (null), no ports. */
TEST(an_instance_not_placed_is_null_and_makes_no_variables)
{
    const char *text =
        "{\"version\":5,\"seq\":1,\"ack\":[],\"tasks\":[{\"attempt_id\":\"u~j/0/w/1/0\","
        "\"job\":\"u~j\",\"user\":\"u\",\"role\":\"w\",\"index\":1,\"job_attempt\":0,"
        "\"task_attempt\":0,\"image\":null,\"command\":\"true\",\"jobenv\":{\"vc\":\"default\","
        "\"role\":0,\"gpus\":[2],\"roles\":[{\"name\":\"w\",\"instances\":2,"
        "\"resource\":[1,4,8192,512],\"ports\":[],\"hosts\":[null,[\"10.0.0.9\"]]}]},"
        "\"gpus\":[2],\"cpu\":4,\"memory_mb\":8192,\"shm_mb\":512,\"ports\":{},"
        "\"kill_grace_ms\":10000}],\"heartbeat_ms\":5000}";
    char *e = env_read(text, NULL);
    CHECK_STR_EQ(e, "PAI_JOB_NAME=u~j\nPAI_USER_NAME=u\nPAI_JOB_VC_NAME=default\n"
                    "PAI_CURRENT_TASK_ROLE_NAME=w\nPAI_TASK_ROLE_NAME=w\n"
                    "PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX=1\nPAI_TASK_INDEX=1\n"
                    "PAI_TASK_ROLE_INDEX=1\nPAI_TASK_ROLE_COUNT=1\nPAI_TASK_ROLE_TASK_COUNT_w=2\n"
                    "PAI_RESOURCE_w=1,4,8192,512\nPAI_HOST_IP_w_1=10.0.0.9\n"
                    "PAI_TASK_ROLE_w_HOST_LIST=,10.0.0.9:0\nPAI_TASK_ROLE_LIST=w\n"
                    "PAI_CONTAINER_HOST_IP=10.0.0.9\nPAI_CURRENT_CONTAINER_IP=10.0.0.9\n"
                    "PAI_CONTAINER_HOST_PORT_LIST=\nPAI_CONTAINER_HOST_PORT=\n"
                    "PAI_CURRENT_CONTAINER_PORT=\nNVIDIA_VISIBLE_DEVICES=2\n"
                    "CUDA_VISIBLE_DEVICES=2\nPAI_GPU_COUNT=1\n");
    free(e);
}

static void refused(const char *jobenv, const char *extra, const char *want)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"version\":5,\"seq\":1,\"ack\":[],\"tasks\":[{\"attempt_id\":\"u~j/0/w/0/0\","
             "\"job\":\"u~j\",\"user\":\"u\",\"role\":\"w\",\"index\":0,\"image\":null,"
             "\"command\":\"true\"%s,\"jobenv\":%s,\"gpus\":[],\"cpu\":1,\"memory_mb\":1,"
             "\"shm_mb\":0,\"ports\":{},\"kill_grace_ms\":1}]}",
             extra, jobenv);
    agentwire_resp_t r;
    pai_error_t e = {0};
    CHECK(agentwire_resp_parse(text, strlen(text), &r, &e) == PAI_E_PROTOCOL);
    CHECK_STR_EQ(e.msg, want);
    CHECK(r.root == NULL && r.tasks == NULL);
}

TEST(malformed_placements_are_refused_with_the_field_named)
{
    const char *ok_role = "{\"name\":\"w\",\"instances\":1,\"resource\":[0,1,1,0],\"ports\":[],"
                          "\"hosts\":[[\"h\"]]}";
    char je[512];
    snprintf(je, sizeof je, "{\"roles\":[%s]}", ok_role);
    refused(je, ",\"env\":{}", "tasks[0].jobenv: is sent instead of env, not with it");
    refused("[]", "", "tasks[0].jobenv: must be an object");
    snprintf(je, sizeof je, "{\"role\":1,\"roles\":[%s]}", ok_role);
    refused(je, "", "tasks[0].jobenv: role is not one of roles");
    refused("{\"roles\":[{\"name\":\"w\",\"instances\":1,\"hosts\":[null]}]}", "",
            "tasks[0].jobenv: index is not a placed instance of the task's role");
    refused("{\"roles\":[{\"name\":\"w\",\"instances\":2,\"hosts\":[[\"h\"]]}]}", "",
            "tasks[0].jobenv.roles[0].hosts: must list every instance");
    refused("{\"roles\":[{\"name\":\"w\",\"instances\":1,\"hosts\":[[\"h\",70000]]}]}", "",
            "tasks[0].jobenv.roles[0].hosts: ports must be integers in [0, 65535]");
    refused(
        "{\"roles\":[{\"name\":\"w\",\"instances\":1,\"ports\":[[\"a\"]],\"hosts\":[[\"h\"]]}]}",
        "", "tasks[0].jobenv.roles[0].ports: must be a list of [label, count]");
    refused("{\"roles\":[{\"name\":\"w\",\"instances\":1,\"resource\":[1],\"hosts\":[[\"h\"]]}]}",
            "", "tasks[0].jobenv.roles[0].resource: must be [gpu, cpu, memoryMB, shmMB]");
    refused("{\"gpus\":[64],\"roles\":[]}", "",
            "tasks[0].jobenv.gpus: must be a list of GPU indices in [0, 63]");
    refused("{\"roles\":[{\"name\":\"a=b\",\"instances\":1,\"hosts\":[[\"h\"]]}]}", "",
            "tasks[0].jobenv: makes a variable name that is empty or has '='");
    /* 4,200 placed instances of one role: more variables than a task takes */
    buf_t b;
    buf_init(&b, 1 << 20);
    CHECK(buf_puts(&b, "{\"roles\":[{\"name\":\"w\",\"instances\":4200,\"hosts\":[") == PAI_OK);
    for (int i = 0; i < 4200; i++)
        CHECK(buf_puts(&b, i ? ",[\"h\"]" : "[\"h\"]") == PAI_OK);
    CHECK(buf_puts(&b, "]}]}") == PAI_OK);
    char *big = buf_take(&b);
    size_t cap = strlen(big) + 512;
    char *text = xmalloc(cap);
    snprintf(text, cap,
             "{\"version\":5,\"seq\":1,\"tasks\":[{\"attempt_id\":\"u~j/0/w/0/0\",\"jobenv\":%s}]}",
             big);
    agentwire_resp_t r;
    pai_error_t e = {0};
    CHECK(agentwire_resp_parse(text, strlen(text), &r, &e) == PAI_E_PROTOCOL);
    CHECK_STR_EQ(e.msg, "tasks[0].jobenv: makes too many variables");
    free(text);
    free(big);
}

/* A version 4 answer's "jobenv" is not read: its env is "env". */
TEST(a_version_4_answer_reads_env_and_ignores_jobenv)
{
    const char *text =
        "{\"version\":4,\"seq\":1,\"tasks\":[{\"attempt_id\":\"u~j/0/w/0/0\",\"env\":{\"A\":\"1\"},"
        "\"jobenv\":{\"role\":7}}]}";
    agentwire_resp_t r;
    CHECK(agentwire_resp_parse(text, strlen(text), &r, NULL) == PAI_OK);
    CHECK(r.ntasks == 1 && r.tasks[0].nenv == 1 && r.tasks[0].jobenv == NULL);
    CHECK_STR_EQ(r.tasks[0].env[0].value, "1");
    agentwire_resp_clear(&r);
}

/* "accept": written in a version 4 request when higher than its version,
 * read back, and the answer's version is min(accept, the server's). */
TEST(a_request_asks_for_version_5_with_accept)
{
    agentwire_node_cache_t c = {0};
    agentwire_req_t m = {.version = 4, .accept = 5, .node = {.name = "n1"}, .known_seq = 2};
    size_t len;
    char *text = agentwire_req_dumps(&m, &c, &len);
    json_t *tree = agentwire_req_encode(&m);
    char *want = json_dumps(tree, JSON_COMPACT);
    /* (the writer adds its description's digest, the tree has none) */
    CHECK(strncmp(text, "{\"version\":4,\"accept\":5,\"node\":", 31) == 0);
    CHECK(strncmp(want, "{\"version\":4,\"accept\":5,\"node\":", 31) == 0);
    agentwire_req_t back;
    CHECK(agentwire_req_decode(tree, &back, NULL) == PAI_OK);
    CHECK(back.version == 4 && back.accept == 5 && agentwire_answer_version(&back) == 5);
    back.accept = 9;
    CHECK(agentwire_answer_version(&back) == AGENTWIRE_VERSION);
    back.accept = 0;
    CHECK(agentwire_answer_version(&back) == 4);
    agentwire_req_clear(&back);
    json_decref(tree);
    free(want);
    free(text);
    /* not written when it is not higher, nor before version 4 */
    for (int v = 3; v <= 4; v++) {
        m.version = v;
        m.accept = v == 3 ? 5 : 4;
        tree = agentwire_req_encode(&m);
        CHECK(json_object_get(tree, "accept") == NULL);
        text = agentwire_req_dumps(&m, &c, &len);
        CHECK(strstr(text, "accept") == NULL);
        free(text);
        json_decref(tree);
    }
    agentwire_node_cache_free(&c);
}

/* Version 6 (acks in a later answer, docs/agent-protocol.md) is an answer
 * form with version 5's bytes but its number: the agent reads the same
 * tasks and env from it; "accept": 6 asks for it. */
TEST(version_6_is_version_5s_bytes_under_its_number)
{
    lc_job_t *j = job_of("ps", "worker_x");
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < j->roles[r].instances; i++) {
            char *v5 = answer_text(j, r, i, 5), *v6 = answer_text(j, r, i, 6);
            CHECK(strncmp(v5, "{\"version\":5,", 12) == 0);
            CHECK(strncmp(v6, "{\"version\":6,", 12) == 0);
            CHECK_STR_EQ(v6 + 12, v5 + 12);
            char *e5 = env_read(v5, NULL), *e6 = env_read(v6, NULL);
            CHECK(strstr(e6, "PAI_USER_NAME=carol\n") != NULL);
            CHECK_STR_EQ(e6, e5);
            free(e5);
            free(e6);
            free(v5);
            free(v6);
        }
    lc_job_free(j);
    agentwire_req_t m = {.version = 4, .accept = 6};
    CHECK(agentwire_answer_version(&m) == 6);
    m.accept = 5;
    CHECK(agentwire_answer_version(&m) == 5);
}

RUN_TESTS(version_5_derives_the_env_version_4_sends_for_every_task,
          a_name_two_roles_make_is_read_once_with_the_last_value,
          an_instance_not_placed_is_null_and_makes_no_variables,
          malformed_placements_are_refused_with_the_field_named,
          a_version_4_answer_reads_env_and_ignores_jobenv, a_request_asks_for_version_5_with_accept,
          version_6_is_version_5s_bytes_under_its_number)
