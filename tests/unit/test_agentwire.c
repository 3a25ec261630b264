/* test_agentwire.c - the agent protocol's messages: round trips, the exact
 * JSON of the first server and agent, malformed input, versions, bounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "agentwire_fixture.h"
#include "test.h"
#include "wire/agentwire.h"

/* A request with every field set: two GPUs, topology, health, a running
 * and an exited report. */
/* The node both request tests describe: two GPUs and their topology. */
static agentwire_node_t sample_node(agentwire_gpu_t *gpus, int *topo, agentwire_health_t health)
{
    return (agentwire_node_t){.name = "n1",
                              .address = "10.0.0.1",
                              .boot_id = "b1",
                              .gpu_model = "A100",
                              .runtime = "process",
                              .log_url = "http://x",
                              .gpu_backend = "sim",
                              .cpus = 16,
                              .memory_mb = 65536,
                              .has_gpus = true,
                              .gpus = gpus,
                              .ngpus = 2,
                              .topology = topo,
                              .health = health};
}

static json_t *full_request(void)
{
    agentwire_gpu_t gpus[] = {
        {.index = 0,
         .uuid = "GPU-a",
         .model = "A100",
         .memory_mb = 81920,
         .pci_bus = "0:1",
         .healthy = true},
        {.index = 1, .uuid = "GPU-b", .model = "A100", .memory_mb = 81920, .pci_bus = "0:2"},
    };
    int topo[] = {0, 10, 10, 0};
    agentwire_report_t tasks[] = {
        {.attempt_id = "u~j/0/w/0/0", .state = AGENTWIRE_RUNNING, .pid = 42, .started_ms = 1000},
        {.attempt_id = "u~j/0/w/1/0",
         .state = AGENTWIRE_EXITED,
         .exit_code = 137,
         .signal = 9,
         .started_ms = 1000,
         .finished_ms = 2000,
         .diagnostics = "killed"},
    };
    /* Version 1, the first agents' JSON, which servers still read. */
    agentwire_req_t m = {
        .version = 1,
        .node = sample_node(gpus, topo,
                            (agentwire_health_t){.present = true,
                                                 .ok = true,
                                                 .load1 = 0.5,
                                                 .disk_free_mb = 100,
                                                 .gpus_healthy = 1,
                                                 .tasks = 2}),
        .known_seq = 17,
        .wait_ms = 5000,
        .tasks = tasks,
        .ntasks = 2,
    };
    return agentwire_req_encode(&m);
}

TEST(request_round_trips_field_for_field)
{
    json_t *j = full_request();
    agentwire_req_t r;
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK_INT_EQ(r.version, 1);
    CHECK_STR_EQ(r.node.name, "n1");
    CHECK_STR_EQ(r.node.address, "10.0.0.1");
    CHECK_INT_EQ(r.node.cpus, 16);
    CHECK_INT_EQ(r.node.memory_mb, 65536);
    CHECK_INT_EQ(r.node.ngpus, 2);
    CHECK_STR_EQ(r.node.gpus[1].uuid, "GPU-b");
    CHECK(r.node.gpus[0].healthy && !r.node.gpus[1].healthy);
    CHECK(r.node.topology && r.node.topology[1] == 10 && r.node.topology[3] == 0);
    CHECK(r.node.health.present && r.node.health.ok && r.node.health.disk_free_mb == 100);
    CHECK_INT_EQ(r.known_seq, 17);
    CHECK_INT_EQ(r.wait_ms, 5000);
    CHECK_INT_EQ(r.ntasks, 2);
    CHECK_INT_EQ(r.skipped, 0);
    CHECK_INT_EQ(r.tasks[0].state, AGENTWIRE_RUNNING);
    CHECK_INT_EQ(r.tasks[0].pid, 42);
    CHECK_INT_EQ(r.tasks[1].state, AGENTWIRE_EXITED);
    CHECK_INT_EQ(r.tasks[1].exit_code, 137);
    CHECK_INT_EQ(r.tasks[1].signal, 9);
    CHECK_STR_EQ(r.tasks[1].diagnostics, "killed");
    /* and back: the same JSON */
    json_t *again = agentwire_req_encode(&r);
    CHECK(json_equal(j, again));
    json_decref(again);
    agentwire_req_clear(&r);
    CHECK(r.root == NULL && r.tasks == NULL);
    agentwire_req_clear(&r); /* twice is fine */
    json_decref(j);
}

/* The bytes the agent sent before this module (node.c's json_pack
 * formats), for the same values: old servers read what new agents send. */
TEST(request_json_is_the_first_agents)
{
    json_t *j = full_request();
    json_t *node = json_object_get(j, "node");
    json_t *old_gpu =
        json_pack("{s:i, s:s, s:s, s:I, s:s, s:b}", "index", 0, "uuid", "GPU-a", "model", "A100",
                  "memory_mb", (json_int_t)81920, "pci_bus", "0:1", "healthy", 1);
    char *a = dump(json_array_get(json_object_get(node, "gpus"), 0)), *b = dump(old_gpu);
    CHECK_STR_EQ(a, b);
    free(a);
    free(b);
    json_decref(old_gpu);
    json_t *old_run = json_pack("{s:s, s:s, s:I, s:I}", "attempt_id", "u~j/0/w/0/0", "state",
                                "running", "pid", (json_int_t)42, "started_ms", (json_int_t)1000);
    a = dump(json_array_get(json_object_get(j, "tasks"), 0));
    b = dump(old_run);
    CHECK_STR_EQ(a, b);
    free(a);
    free(b);
    json_decref(old_run);
    a = dump(j);
    CHECK(str_has_prefix(
        a, "{\"version\":1,\"node\":{\"name\":\"n1\",\"address\":\"10.0.0.1\","
           "\"boot_id\":\"b1\",\"cpus\":16,\"memory_mb\":65536,\"gpu_model\":\"A100\","
           "\"hollow\":false,\"runtime\":\"process\",\"log_url\":\"http://x\",\"gpus\":["));
    CHECK_STR_CONTAINS(a, "\"gpu_backend\":\"sim\",\"topology\":[[0,10],[10,0]],\"health\":{"
                          "\"ok\":true,\"load1\":0.5,\"disk_free_mb\":100,\"gpus_healthy\":1,"
                          "\"tasks\":2}},\"known_seq\":17,\"wait_ms\":5000,\"tasks\":[");
    free(a);
    json_decref(j);
}

static json_t *full_response(bool with_tasks)
{
    agentwire_env_t env[] = {{"PAI_JOB_NAME", "j"}, {"CUDA_VISIBLE_DEVICES", "0,1"}};
    int gpus[] = {0, 1}, ssh[] = {20001}, http[] = {20002, 20003};
    agentwire_ports_t ports[] = {{"ssh", ssh, 1}, {"http", http, 2}};
    agentwire_mount_t mounts[] = {{"/data/x", "/mnt/x", true}};
    agentwire_task_t tasks[] = {
        {.attempt_id = "alice~train1/0/worker/1/0",
         .job = "alice~train1",
         .user = "alice~train1",
         .user_len = 5,
         .role = "worker",
         .index = 1,
         .image = "img:1",
         .image_auth = true,
         .image_user = "u",
         .image_password = "p",
         .command = "set -e\necho hi\n",
         .env = env,
         .nenv = 2,
         .gpus = gpus,
         .ngpus = 2,
         .cpu = 4,
         .memory_mb = 8192,
         .shm_mb = 512,
         .ports = ports,
         .nports = 2,
         .has_mounts = true,
         .mounts = mounts,
         .nmounts = 1,
         .kill_grace_ms = 10000},
        {.attempt_id = "bob~x/2/r/0/1",
         .job = "bob~x",
         .user = "bob",
         .role = "r",
         .job_attempt = 2,
         .task_attempt = 1,
         .command = "true",
         .cpu = 0.5},
    };
    const char *ack[] = {"alice~train1/0/worker/0/0"};
    /* Version 1, as servers still answer version 1 agents: never with a
     * credential, which that version does not have. */
    agentwire_resp_t m = {.version = 1,
                          .credential = "pn1.never-sent-in-version-1",
                          .log_key = "pl1.never-sent-in-version-1",
                          .seq = 18,
                          .ack = ack,
                          .nack = 1,
                          .has_tasks = with_tasks,
                          .tasks = tasks,
                          .ntasks = 2,
                          .heartbeat_ms = 5000};
    return agentwire_resp_encode(&m);
}

TEST(response_round_trips_field_for_field)
{
    json_t *j = full_response(true);
    agentwire_resp_t r;
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK_INT_EQ(r.seq, 18);
    CHECK_INT_EQ(r.nack, 1);
    CHECK_STR_EQ(r.ack[0], "alice~train1/0/worker/0/0");
    CHECK(r.has_tasks);
    CHECK_INT_EQ(r.ntasks, 2);
    CHECK_INT_EQ(r.heartbeat_ms, 5000);
    const agentwire_task_t *t = &r.tasks[0];
    CHECK_STR_EQ(t->user, "alice");
    CHECK_STR_EQ(t->image, "img:1");
    CHECK(t->image_auth);
    CHECK_STR_EQ(t->image_password, "p");
    CHECK(t->image_registry == NULL);
    CHECK_INT_EQ(t->nenv, 2);
    CHECK_STR_EQ(t->env[1].name, "CUDA_VISIBLE_DEVICES");
    CHECK_STR_EQ(t->env[1].value, "0,1");
    CHECK_INT_EQ(t->ngpus, 2);
    CHECK_INT_EQ(t->nports, 2);
    CHECK_STR_EQ(t->ports[1].label, "http");
    CHECK_INT_EQ(t->ports[1].n, 2);
    CHECK_INT_EQ(t->ports[1].ports[1], 20003);
    CHECK(t->has_mounts && t->nmounts == 1 && t->mounts[0].readonly);
    CHECK_INT_EQ(t->kill_grace_ms, 10000);
    CHECK(r.tasks[1].image == NULL && !r.tasks[1].has_mounts);
    CHECK(r.tasks[1].cpu == 0.5);
    json_t *again = agentwire_resp_encode(&r);
    CHECK(json_equal(j, again));
    json_decref(again);
    agentwire_resp_clear(&r);
    json_decref(j);
    /* a superseded poll's answer has no "tasks": nothing to apply */
    j = full_response(false);
    CHECK(json_object_get(j, "tasks") == NULL);
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK(!r.has_tasks && r.ntasks == 0);
    agentwire_resp_clear(&r);
    json_decref(j);
}

/* The desired task as agentsync.c packed it before this module. */
TEST(response_json_is_the_first_servers)
{
    json_t *j = full_response(true);
    json_t *t = json_array_get(json_object_get(j, "tasks"), 0);
    json_t *old = json_pack(
        "{ss ss ss% ss si si si s{ss s{ss ss}} ss s{ss ss} s[ii] si si si s{s[i] s[ii]} si "
        "s[{ss ss sb}]}",
        "attempt_id", "alice~train1/0/worker/1/0", "job", "alice~train1", "user", "alice~train1",
        (size_t)5, "role", "worker", "index", 1, "job_attempt", 0, "task_attempt", 0, "image",
        "uri", "img:1", "auth", "username", "u", "password", "p", "command", "set -e\necho hi\n",
        "env", "PAI_JOB_NAME", "j", "CUDA_VISIBLE_DEVICES", "0,1", "gpus", 0, 1, "cpu", 4,
        "memory_mb", 8192, "shm_mb", 512, "ports", "ssh", 20001, "http", 20002, 20003,
        "kill_grace_ms", 10000, "mounts", "source", "/data/x", "target", "/mnt/x", "readonly", 1);
    char *a = dump(t), *b = dump(old);
    CHECK_STR_EQ(a, b);
    free(a);
    free(b);
    json_decref(old);
    a = dump(j);
    CHECK(str_has_prefix(
        a, "{\"version\":1,\"seq\":18,\"ack\":[\"alice~train1/0/worker/0/0\"],\"tasks\":["));
    CHECK(str_has_suffix(a, "],\"heartbeat_ms\":5000}"));
    CHECK_STR_CONTAINS(a, "\"image\":null,\"command\":\"true\",\"env\":{},\"gpus\":[],\"cpu\":0.5");
    free(a);
    json_decref(j);
}

TEST(malformed_requests_are_refused_naming_the_field)
{
    static const struct {
        const char *body, *message;
    } cases[] = {
        {"[1]", "the body must be a JSON object"},
        {"{\"node\":{\"name\":\"n\"}}", "version is required"},
        {"{\"version\":1}", "node: is required"},
        {"{\"version\":1,\"node\":[]}", "node: must be an object"},
        {"{\"version\":1,\"node\":{}}", "node.name: is required"},
        {"{\"version\":1,\"node\":{\"name\":\"\"}}", "node.name: must not be empty"},
        {"{\"version\":1,\"node\":{\"name\":7}}", "node.name: must be a string"},
        {"{\"version\":1,\"node\":{\"name\":\"n\",\"cpus\":\"8\"}}",
         "node.cpus: must be an integer"},
        {"{\"version\":1,\"node\":{\"name\":\"n\",\"gpus\":[{},{\"memory_mb\":\"x\"}]}}",
         "node.gpus[1].memory_mb: must be an integer"},
        {"{\"version\":1,\"node\":{\"name\":\"n\",\"gpus\":[{}],\"topology\":[[0,1]]}}",
         "node.topology: must be a square matrix"},
        {"{\"version\":1,\"node\":{\"name\":\"n\",\"health\":{\"ok\":1}}}",
         "node.health.ok: must be true or false"},
        {"{\"version\":1,\"node\":{\"name\":\"n\"},\"known_seq\":-1}",
         "known_seq: must be in [0, 9007199254740992]"},
        {"{\"version\":1,\"node\":{\"name\":\"n\"},\"tasks\":\"x\"}", "tasks: must be a list"},
        {"{\"version\":1,\"node\":{\"name\":\"n\"},\"wait_ms\":1.5}",
         "wait_ms: must be an integer"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char err[256] = "";
        CHECK(decode_req_text(cases[i].body, err, sizeof(err)) == PAI_E_INVALID);
        CHECK_STR_CONTAINS(err, cases[i].message);
    }
    /* a name past PAI_MAX_NAME */
    char *body = str_printf("{\"version\":1,\"node\":{\"name\":\"%0*d\"}}", PAI_MAX_NAME + 1, 0);
    char err[256];
    CHECK(decode_req_text(body, err, sizeof(err)) == PAI_E_INVALID);
    CHECK_STR_CONTAINS(err, "node.name: is longer than 255 characters");
    free(body);
}

TEST(unreadable_reports_are_skipped_and_counted)
{
    json_t *j = json_loads("{\"version\":1,\"node\":{\"name\":\"n\"},\"tasks\":["
                           "{\"attempt_id\":\"a\",\"state\":\"exited\",\"exit_code\":1},"
                           "{\"state\":\"running\"}, 7,"
                           "{\"attempt_id\":\"b\",\"state\":\"sleeping\"},"
                           "{\"attempt_id\":\"c\",\"state\":\"exited\",\"exit_code\":\"1\"},"
                           "{\"attempt_id\":\"d\",\"state\":\"failed_to_start\"}]}",
                           0, NULL);
    agentwire_req_t r;
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK_INT_EQ(r.ntasks, 2);
    CHECK_STR_EQ(r.tasks[0].attempt_id, "a");
    CHECK_STR_EQ(r.tasks[1].attempt_id, "d");
    CHECK_INT_EQ(r.tasks[1].state, AGENTWIRE_FAILED_TO_START);
    CHECK_INT_EQ(r.skipped, 4);
    CHECK_STR_EQ(r.skip_reason, "tasks[1].attempt_id: is required");
    agentwire_req_clear(&r);
    json_decref(j);
}

TEST(other_versions_are_refused_with_both_versions)
{
    char err[256];
    CHECK(decode_req_text("{\"version\":8,\"node\":{\"name\":\"n\"}}", err, sizeof(err)) ==
          PAI_E_INVALID);
    CHECK_STR_EQ(err, "agent protocol version 8 not supported (server speaks 1 to 7)");
    agentwire_resp_t r;
    const char *body = "{\"version\":0,\"seq\":1}";
    CHECK(parse_resp_text(body, strlen(body), &r, err, sizeof(err)) == PAI_E_PROTOCOL);
    CHECK_STR_EQ(err, "agent protocol version 0 not supported (agent speaks 1 to 7)");
    CHECK(r.root == NULL && r.tasks == NULL);
}

TEST(version_1_response_has_no_credential)
{
    json_t *j = full_response(false);
    CHECK(json_object_get(j, "credential") == NULL && json_object_get(j, "log_key") == NULL);
    agentwire_resp_t r;
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK_INT_EQ(r.version, 1);
    CHECK(r.credential == NULL);
    agentwire_resp_clear(&r);
    json_decref(j);
}

TEST(version_2_response_carries_the_credential)
{
    agentwire_resp_t m = {.version = 2,
                          .seq = 3,
                          .heartbeat_ms = 5000,
                          .credential = "pn1.0a1b",
                          .log_key = "pl1.99",
                          .epoch = "never-in-version-2"};
    json_t *j = agentwire_resp_encode(&m);
    char *a = dump(j);
    CHECK_STR_EQ(a, "{\"version\":2,\"seq\":3,\"ack\":[],\"heartbeat_ms\":5000,"
                    "\"credential\":\"pn1.0a1b\",\"log_key\":\"pl1.99\"}");
    free(a);
    agentwire_resp_t r;
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK_INT_EQ(r.version, 2);
    CHECK_STR_EQ(r.credential, "pn1.0a1b");
    CHECK_STR_EQ(r.log_key, "pl1.99");
    agentwire_resp_clear(&r);
    json_decref(j);
    /* a request encodes in the newest version unless told otherwise */
    agentwire_req_t q = {.node = {.name = "n"}};
    j = agentwire_req_encode(&q);
    CHECK_INT_EQ(json_integer_value(json_object_get(j, "version")), AGENTWIRE_VERSION);
    json_decref(j);
}

TEST(a_task_without_a_command_is_sent_without_the_key)
{
    agentwire_task_t t = {.attempt_id = "u~j/0/r/0/0", .command = NULL};
    agentwire_resp_t m = {.seq = 2, .has_tasks = true, .tasks = &t, .ntasks = 1};
    json_t *j = agentwire_resp_encode(&m);
    CHECK(json_object_get(json_array_get(json_object_get(j, "tasks"), 0), "command") == NULL);
    agentwire_resp_t r;
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK(r.tasks[0].command == NULL);
    agentwire_resp_clear(&r);
    json_decref(j);
}

TEST(the_task_uid_offset_is_optional_and_bounded)
{
    agentwire_task_t t[2] = {
        {.attempt_id = "u~j/0/r/0/0", .command = "true"},
        {.attempt_id = "v~j/0/r/0/0", .command = "true", .has_task_uid = true, .task_uid = 0}};
    agentwire_resp_t m = {.seq = 2, .has_tasks = true, .tasks = t, .ntasks = 2};
    json_t *j = agentwire_resp_encode(&m);
    json_t *tasks = json_object_get(j, "tasks");
    CHECK(json_object_get(json_array_get(tasks, 0), "task_uid") == NULL); /* older agents */
    CHECK(json_integer_value(json_object_get(json_array_get(tasks, 1), "task_uid")) == 0);
    agentwire_resp_t r;
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK(!r.tasks[0].has_task_uid && r.tasks[0].task_uid == -1);
    CHECK(r.tasks[1].has_task_uid && r.tasks[1].task_uid == 0);
    agentwire_resp_clear(&r);
    json_object_set_new(json_array_get(tasks, 1), "task_uid", json_integer(-5));
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_decode(j, &r, &e) != PAI_OK);
    CHECK(strstr(pai_error_msg(&e), "task_uid") != NULL);
    pai_error_free(&e);
    json_decref(j);
}

/* hold_acks is optional: absent (older agents) it is false and not sent;
 * set, it round-trips; not a boolean, the request is refused. */
TEST(hold_acks_is_optional_and_round_trips)
{
    agentwire_req_t q = {.node = {.name = "n"}}, r;
    json_t *j = agentwire_req_encode(&q);
    CHECK(json_object_get(j, "hold_acks") == NULL);
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK(!r.hold_acks);
    agentwire_req_clear(&r);
    json_decref(j);
    q.hold_acks = true;
    j = agentwire_req_encode(&q);
    CHECK(json_is_true(json_object_get(j, "hold_acks")));
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK(r.hold_acks);
    agentwire_req_clear(&r);
    json_object_set_new(j, "hold_acks", json_integer(1));
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_req_decode(j, &r, &e) == PAI_E_INVALID);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "hold_acks");
    pai_error_free(&e);
    json_decref(j);
}

/* A report's started_ms (the agent's wall clock when the task started,
 * which the server takes as its launch time) round-trips in both states;
 * absent (an older agent) it decodes as 0, which the server reads as "use
 * the arrival"; negative, the report is skipped naming the field. */
TEST(a_reports_start_time_is_optional_and_round_trips)
{
    agentwire_report_t t[] = {
        {.attempt_id = "u~j/0/w/0/0",
         .state = AGENTWIRE_RUNNING,
         .pid = 7,
         .started_ms = 1700000000123},
        {.attempt_id = "u~j/0/w/1/0",
         .state = AGENTWIRE_EXITED,
         .started_ms = 1700000000456,
         .finished_ms = 1700000000789},
    };
    agentwire_req_t q = {.node = {.name = "n"}, .tasks = t, .ntasks = 2}, r;
    json_t *j = agentwire_req_encode(&q);
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK(r.ntasks == 2);
    CHECK(r.tasks[0].started_ms == 1700000000123);
    CHECK(r.tasks[1].started_ms == 1700000000456);
    agentwire_req_clear(&r);
    json_t *reps = json_object_get(j, "tasks");
    json_object_del(json_array_get(reps, 0), "started_ms");
    json_object_del(json_array_get(reps, 1), "started_ms");
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK(r.ntasks == 2 && r.tasks[0].started_ms == 0 && r.tasks[1].started_ms == 0);
    agentwire_req_clear(&r);
    json_object_set_new(json_array_get(reps, 0), "started_ms", json_integer(-1));
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK(r.ntasks == 1 && r.skipped == 1);
    CHECK_STR_CONTAINS(r.skip_reason, "started_ms");
    agentwire_req_clear(&r);
    json_decref(j);
}

TEST(bad_credentials_in_a_response_are_refused)
{
    char err[256];
    agentwire_resp_t r;
    const char *body = "{\"version\":2,\"seq\":1,\"credential\":7}";
    CHECK(parse_resp_text(body, strlen(body), &r, err, sizeof(err)) == PAI_E_PROTOCOL);
    CHECK_STR_EQ(err, "credential: must be a string");
    char *longer = xcalloc(PAI_MAX_NODE_CRED + 64, 1);
    snprintf(longer, PAI_MAX_NODE_CRED + 64, "{\"version\":2,\"seq\":1,\"credential\":\"%0*d\"}",
             (int)PAI_MAX_NODE_CRED + 1, 0);
    CHECK(parse_resp_text(longer, strlen(longer), &r, err, sizeof(err)) == PAI_E_PROTOCOL);
    CHECK_STR_CONTAINS(err, "credential: is longer than 128 characters");
    free(longer);
}

TEST(malformed_responses_are_refused_naming_the_field)
{
    static const struct {
        const char *body, *message;
    } cases[] = {
        {"not json", "not JSON:"},
        {"{\"version\":1,\"seq\":1,\"seq\":2}", "not JSON: duplicate object key"},
        {"{\"version\":1,\"seq\":\"1\"}", "seq: must be an integer"},
        {"{\"version\":1,\"ack\":[1]}", "ack: must be a list of attempt ids"},
        {"{\"version\":1,\"tasks\":[{}]}", "tasks[0].attempt_id: is required"},
        {"{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"env\":{\"X\":1}}]}",
         "tasks[0].env: must map names (without '=') to strings"},
        {"{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"image\":7}]}",
         "tasks[0].image: must be null, a string or an object"},
        {"{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"image\":{\"auth\":{\"username\":1}}}"
         "]}",
         "tasks[0].image.auth.username: must be a string"},
        {"{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"gpus\":[64]}]}",
         "tasks[0].gpus: items must be integers in [0, 63]"},
        {"{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"ports\":{\"ssh\":[70000]}}]}",
         "tasks[0].ports: items must be integers in [0, 65535]"},
        {"{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"mounts\":[{\"source\":\"/x\"}]}]}",
         "tasks[0].mounts[0].target: is required"},
        {"{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"cpu\":\"4\"}]}",
         "tasks[0].cpu: must be a number"},
        /* a path three readers deep, made when the field is found wrong */
        {"{\"version\":5,\"tasks\":[{\"attempt_id\":\"a\"},{\"attempt_id\":\"b\",\"jobenv\":"
         "{\"roles\":[{\"instances\":1}]}}]}",
         "tasks[1].jobenv.roles[0].name: is required"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        agentwire_resp_t r;
        char err[256] = "";
        CHECK(parse_resp_text(cases[i].body, strlen(cases[i].body), &r, err, sizeof(err)) ==
              PAI_E_PROTOCOL);
        CHECK_STR_CONTAINS(err, cases[i].message);
    }
    /* the documented compatible form: image as a bare uri */
    const char *bare = "{\"version\":1,\"tasks\":[{\"attempt_id\":\"a\",\"image\":\"busybox\"}]}";
    agentwire_resp_t r;
    char err[256];
    CHECK(parse_resp_text(bare, strlen(bare), &r, err, sizeof(err)) == PAI_OK);
    CHECK_STR_EQ(r.tasks[0].image, "busybox");
    CHECK(!r.tasks[0].image_auth);
    agentwire_resp_clear(&r);
}

TEST(sizes_past_the_limits_are_refused)
{
    agentwire_resp_t r;
    char err[256];
    CHECK(parse_resp_text("{}", (size_t)PAI_MAX_AGENT_MSG + 1, &r, err, sizeof(err)) ==
          PAI_E_PROTOCOL);
    CHECK_STR_CONTAINS(err, "larger than");
    json_t *j = json_pack("{si so}", "version", 1, "ack", json_array());
    for (size_t i = 0; i <= PAI_MAX_AGENT_TASKS; i++)
        json_array_append_new(json_object_get(j, "ack"), json_string("a"));
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_decode(j, &r, &e) == PAI_E_PROTOCOL);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "ack: has more than 16384 items");
    json_decref(j);
    char *id = xcalloc(PAI_MAX_ATTEMPT_ID + 2, 1);
    memset(id, 'a', PAI_MAX_ATTEMPT_ID + 1);
    j = json_pack("{si s[{ss}]}", "version", 1, "tasks", "attempt_id", id);
    CHECK(agentwire_resp_decode(j, &r, &e) == PAI_E_PROTOCOL);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "tasks[0].attempt_id: is longer than 600 characters");
    json_decref(j);
    free(id);
    pai_error_free(&e);
}

/* A task's diagnostics are the tail of its stderr, cut anywhere: the
 * message must still be valid JSON (or the server refuses every sync). */
TEST(diagnostics_with_broken_utf8_still_encode)
{
    const char diag[] = "caf\xc3\xa9 ok, cut: \xe2\x82 end \xff";
    agentwire_report_t t = {
        .attempt_id = "a", .state = AGENTWIRE_EXITED, .exit_code = 1, .diagnostics = diag};
    agentwire_req_t m = {.node = {.name = "n"}, .tasks = &t, .ntasks = 1};
    json_t *j = agentwire_req_encode(&m);
    char *text = dump(j);
    CHECK(text != NULL);
    json_t *back = text ? json_loads(text, 0, NULL) : NULL;
    agentwire_req_t r;
    CHECK(back && agentwire_req_decode(back, &r, NULL) == PAI_OK);
    if (back) {
        CHECK_STR_EQ(r.tasks[0].diagnostics, "caf\xc3\xa9 ok, cut: ?? end ?");
        agentwire_req_clear(&r);
    }
    json_decref(back);
    free(text);
    json_decref(j);
}

TEST(state_names_round_trip)
{
    agentwire_state_t s;
    for (int i = AGENTWIRE_STARTING; i <= AGENTWIRE_FAILED_TO_START; i++) {
        CHECK(agentwire_state_parse(agentwire_state_name((agentwire_state_t)i), &s));
        CHECK_INT_EQ(s, i);
    }
    CHECK(!agentwire_state_parse("sleeping", &s));
}

TEST(the_node_description_is_encoded_once_until_it_changes)
{
    agentwire_gpu_t gpus[] = {
        {.index = 0, .uuid = "GPU-a", .model = "A100", .memory_mb = 81920, .healthy = true},
        {.index = 1, .uuid = "GPU-\"b\"", .model = "A100", .memory_mb = 81920, .healthy = true},
    };
    int topo[] = {0, 10, 10, 0};
    agentwire_report_t tasks[] = {
        {.attempt_id = "u~j/0/w/0/0", .state = AGENTWIRE_RUNNING, .pid = 42, .started_ms = 1000},
        {.attempt_id = "u~j/0/w/1/0",
         .state = AGENTWIRE_EXITED,
         .exit_code = 1,
         .diagnostics = "caf\xc3\xa9 \"q\"\n\xff"},
        {.attempt_id = "u~j/0/w/2/0",
         .state = AGENTWIRE_FAILED_TO_START,
         .exit_code = -1200,
         .oom = true,
         .signal = 9,
         .started_ms = 5,
         .finished_ms = 6,
         .diagnostics = "plain: no escape needed ~/"},
        {.attempt_id = "u~j/0/w/3/0", .state = AGENTWIRE_EXITED, .finished_ms = 7},
        {.attempt_id = "u~j/0/w/4/0", .state = AGENTWIRE_STARTING, .pid = 1},
        {.attempt_id = "u~j/0/w/\\5/0", .state = AGENTWIRE_EXITED},
    };
    agentwire_req_t m = {
        .node = sample_node(
            gpus, topo,
            (agentwire_health_t){.present = true, .ok = true, .load1 = 0.52, .tasks = 2}),
        .known_seq = 17,
        .wait_ms = 5000,
        .hold_acks = true,
    };
    agentwire_node_cache_t c = {0};
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 1);
    /* what changes with every sync: health, seq, reports; not re-encoded */
    const double loads[] = {0, 1, -1, 12.25, 3e20, 1.0 / 3, 1e-5, -2.5e-300, 1e100};
    for (size_t i = 0; i < sizeof(loads) / sizeof(loads[0]); i++) {
        m.node.health.load1 = loads[i];
        m.node.health.disk_free_mb = (int64_t)i - 1;
        m.node.health.ok = i % 2;
        m.known_seq = 18 + i;
        m.tasks = tasks;
        m.ntasks = i % 7;
        m.hold_acks = i != 3;
        CHECK(dumps_same(&m, &c));
    }
    /* the load's text is kept while the load is the same; integers at
     * their extremes are written as jansson writes them */
    tasks[0].pid = INT64_MIN;
    tasks[0].started_ms = INT64_MAX;
    tasks[2].exit_code = INT32_MIN;
    m.ntasks = 3;
    const double again[] = {0.75, 0.75, 0.5, 0.75, 0.75};
    for (size_t i = 0; i < sizeof(again) / sizeof(again[0]); i++) {
        m.node.health.load1 = again[i];
        m.node.health.tasks = INT64_MIN + (int64_t)i;
        CHECK(dumps_same(&m, &c));
    }
    m.node.health.present = false;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 1);
    /* the same text from another copy of the strings: still the same */
    char name[] = "n1";
    m.node.name = name;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 1);
    /* a GPU goes unhealthy: re-encoded once, then kept again */
    gpus[1].healthy = false;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 2);
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 2);
    /* each part of the description counts */
    gpus[0].has_utilization = true;
    gpus[0].utilization = 40;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 3);
    gpus[0].utilization = 41;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 4);
    topo[1] = topo[2] = 20;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 5);
    name[1] = '2';
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 6);
    m.node.address = NULL;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 7);
    m.node.ngpus = 1;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 8);
    m.node.memory_mb++;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 9);
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 9);
    agentwire_node_cache_free(&c);
    CHECK(c.text == NULL && c.encodes == 0);
    /* a node with no GPUs, no topology, version 1 */
    agentwire_req_t bare = {.version = 1, .node = {.name = "n"}};
    CHECK(dumps_same(&bare, &c));
    agentwire_node_cache_free(&c);
}

RUN_TESTS(request_round_trips_field_for_field, request_json_is_the_first_agents,
          response_round_trips_field_for_field, response_json_is_the_first_servers,
          malformed_requests_are_refused_naming_the_field,
          unreadable_reports_are_skipped_and_counted, other_versions_are_refused_with_both_versions,
          malformed_responses_are_refused_naming_the_field, sizes_past_the_limits_are_refused,
          diagnostics_with_broken_utf8_still_encode, state_names_round_trip,
          version_1_response_has_no_credential, version_2_response_carries_the_credential,
          bad_credentials_in_a_response_are_refused,
          a_task_without_a_command_is_sent_without_the_key,
          the_task_uid_offset_is_optional_and_bounded, hold_acks_is_optional_and_round_trips,
          a_reports_start_time_is_optional_and_round_trips,
          the_node_description_is_encoded_once_until_it_changes)
