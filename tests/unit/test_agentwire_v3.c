/* test_agentwire_v3.c - the agent protocol's version 3: delta answers,
 * the server's epoch and their malformed forms (docs/agent-protocol.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentwire_fixture.h"
#include "common/limits.h"
#include "common/util.h"
#include "test.h"
#include "wire/agentwire.h"

/* Version 3: a delta answer, key for key, and back. */
static json_t *delta_response(void)
{
    agentwire_task_t tasks[] = {{.attempt_id = "u~j/0/r/1/0",
                                 .job = "u~j",
                                 .user = "u~j",
                                 .user_len = 1,
                                 .role = "r",
                                 .index = 1,
                                 .command = "true",
                                 .cpu = 1}};
    const char *ack[] = {"u~j/0/r/0/0"}, *removed[] = {"u~j/0/r/0/0", "v~k/1/r/0/2"};
    agentwire_resp_t m = {.version = 3,
                          .seq = 21,
                          .ack = ack,
                          .nack = 1,
                          .epoch = "00ff1e",
                          .delta = true,
                          .base_seq = 19,
                          .removed = removed,
                          .nremoved = 2,
                          .has_tasks = true,
                          .tasks = tasks,
                          .ntasks = 1,
                          .heartbeat_ms = 5000};
    return agentwire_resp_encode(&m);
}

TEST(version_3_delta_round_trips_key_for_key)
{
    json_t *j = delta_response();
    char *a = dump(j);
    CHECK(str_has_prefix(a,
                         "{\"version\":3,\"seq\":21,\"ack\":[\"u~j/0/r/0/0\"],\"epoch\":"
                         "\"00ff1e\",\"base_seq\":19,\"tasks\":[{\"attempt_id\":\"u~j/0/r/1/0\""));
    CHECK(str_has_suffix(a, "}],\"removed\":[\"u~j/0/r/0/0\",\"v~k/1/r/0/2\"],"
                            "\"heartbeat_ms\":5000}"));
    free(a);
    agentwire_resp_t r;
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK_INT_EQ(r.version, 3);
    CHECK_INT_EQ(r.seq, 21);
    CHECK_STR_EQ(r.epoch, "00ff1e");
    CHECK(r.delta && r.base_seq == 19 && r.has_tasks);
    CHECK_INT_EQ(r.ntasks, 1);
    CHECK_STR_EQ(r.tasks[0].command, "true");
    CHECK_INT_EQ(r.nremoved, 2);
    CHECK_STR_EQ(r.removed[1], "v~k/1/r/0/2");
    json_t *again = agentwire_resp_encode(&r);
    CHECK(json_equal(j, again));
    json_decref(again);
    agentwire_resp_clear(&r);
    CHECK(r.removed == NULL && r.nremoved == 0);
    json_decref(j);
}

TEST(version_3_full_answer_has_an_epoch_and_no_base)
{
    agentwire_resp_t m = {.version = 3, .seq = 4, .epoch = "e1", .has_tasks = true};
    json_t *j = agentwire_resp_encode(&m);
    char *a = dump(j);
    CHECK_STR_EQ(a, "{\"version\":3,\"seq\":4,\"ack\":[],\"epoch\":\"e1\",\"tasks\":[],"
                    "\"heartbeat_ms\":0}");
    free(a);
    agentwire_resp_t r;
    CHECK(agentwire_resp_decode(j, &r, NULL) == PAI_OK);
    CHECK(!r.delta && r.has_tasks && r.nremoved == 0);
    CHECK_STR_EQ(r.epoch, "e1");
    agentwire_resp_clear(&r);
    json_decref(j);
    /* a superseded poll's answer: no tasks, so no base either */
    m = (agentwire_resp_t){.version = 3, .seq = 4, .epoch = "e1", .delta = true, .base_seq = 3};
    j = agentwire_resp_encode(&m);
    CHECK(!json_object_get(j, "base_seq") && !json_object_get(j, "removed") &&
          !json_object_get(j, "tasks"));
    json_decref(j);
    /* version 2: what version 3 added is never sent */
    const char *removed[] = {"x"};
    m = (agentwire_resp_t){.version = 2,
                           .seq = 4,
                           .epoch = "e1",
                           .delta = true,
                           .base_seq = 3,
                           .removed = removed,
                           .nremoved = 1,
                           .has_tasks = true};
    j = agentwire_resp_encode(&m);
    a = dump(j);
    CHECK_STR_EQ(a, "{\"version\":2,\"seq\":4,\"ack\":[],\"tasks\":[],\"heartbeat_ms\":0}");
    free(a);
    json_decref(j);
}

TEST(version_3_request_echoes_the_epoch)
{
    agentwire_req_t m = {.version = 3, .node = {.name = "n"}, .known_seq = 9, .epoch = "ab-_Z9"};
    json_t *j = agentwire_req_encode(&m);
    char *a = dump(j);
    CHECK_STR_CONTAINS(a, "\"known_seq\":9,\"epoch\":\"ab-_Z9\",\"wait_ms\":0,");
    free(a);
    agentwire_req_t r;
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK_STR_EQ(r.epoch, "ab-_Z9");
    agentwire_req_clear(&r);
    json_decref(j);
    agentwire_node_cache_t c = {0};
    CHECK(dumps_same(&m, &c));
    m.epoch = NULL; /* no base: no key */
    CHECK(dumps_same(&m, &c));
    j = agentwire_req_encode(&m);
    CHECK(json_object_get(j, "epoch") == NULL);
    json_decref(j);
    m.version = 2; /* version 2 has none */
    m.epoch = "ab";
    CHECK(dumps_same(&m, &c));
    j = agentwire_req_encode(&m);
    CHECK(json_object_get(j, "epoch") == NULL);
    json_decref(j);
    /* a version 2 request's epoch is not read */
    j = json_pack("{si s{ss} ss}", "version", 2, "node", "name", "n", "epoch", "\"bad\"");
    CHECK(agentwire_req_decode(j, &r, NULL) == PAI_OK);
    CHECK(r.epoch == NULL);
    agentwire_req_clear(&r);
    json_decref(j);
    agentwire_node_cache_free(&c);
}

TEST(malformed_version_3_fields_are_refused_naming_the_field)
{
    static const struct {
        const char *body, *message;
    } cases[] = {
        {"{\"version\":3,\"epoch\":7}", "epoch: must be a string"},
        {"{\"version\":3,\"epoch\":\"\"}", "epoch: must be letters, digits, '-' or '_'"},
        {"{\"version\":3,\"epoch\":\"a b\"}", "epoch: must be letters, digits, '-' or '_'"},
        {"{\"version\":3,\"epoch\":\"a\\\"b\"}", "epoch: must be letters, digits, '-' or '_'"},
        {"{\"version\":3,\"epoch\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
         "epoch: is longer than 64 characters"},
        {"{\"version\":3,\"base_seq\":-1,\"tasks\":[]}", "base_seq: must be in [0, "},
        {"{\"version\":3,\"base_seq\":\"1\",\"tasks\":[]}", "base_seq: must be an integer"},
        {"{\"version\":3,\"base_seq\":1}", "base_seq: is sent only with tasks"},
        {"{\"version\":3,\"removed\":[\"a\"],\"tasks\":[]}",
         "removed: is sent only in a delta (with base_seq)"},
        {"{\"version\":3,\"base_seq\":1,\"tasks\":[],\"removed\":\"a\"}",
         "removed: must be a list"},
        {"{\"version\":3,\"base_seq\":1,\"tasks\":[],\"removed\":[1]}",
         "removed: must be a list of attempt ids"},
        {"{\"version\":3,\"base_seq\":1,\"tasks\":[],\"removed\":[\"\"]}",
         "removed: must be a list of attempt ids"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        agentwire_resp_t r;
        char err[256] = "";
        CHECK(parse_resp_text(cases[i].body, strlen(cases[i].body), &r, err, sizeof(err)) ==
              PAI_E_PROTOCOL);
        CHECK_STR_CONTAINS(err, cases[i].message);
        CHECK(r.root == NULL && r.removed == NULL);
    }
    char err[256];
    CHECK(decode_req_text("{\"version\":3,\"node\":{\"name\":\"n\"},\"epoch\":\"a.b\"}", err,
                          sizeof(err)) == PAI_E_INVALID);
    CHECK_STR_EQ(err, "epoch: must be letters, digits, '-' or '_'");
    /* version 2 answers: the version 3 keys are not read */
    const char *v2 = "{\"version\":2,\"epoch\":7,\"base_seq\":\"x\",\"removed\":3,\"tasks\":[]}";
    agentwire_resp_t r;
    CHECK(parse_resp_text(v2, strlen(v2), &r, err, sizeof(err)) == PAI_OK);
    CHECK(!r.delta && r.epoch == NULL && r.nremoved == 0);
    agentwire_resp_clear(&r);
    /* a removed id past the attempt id bound */
    char *id = xcalloc(PAI_MAX_ATTEMPT_ID + 2, 1);
    memset(id, 'a', PAI_MAX_ATTEMPT_ID + 1);
    json_t *j = json_pack("{si si s[] s[s]}", "version", 3, "base_seq", 1, "tasks", "removed", id);
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(agentwire_resp_decode(j, &r, &e) == PAI_E_PROTOCOL);
    CHECK_STR_CONTAINS(pai_error_msg(&e), "removed: must be a list of attempt ids");
    pai_error_free(&e);
    json_decref(j);
    free(id);
}

RUN_TESTS(version_3_delta_round_trips_key_for_key, version_3_full_answer_has_an_epoch_and_no_base,
          version_3_request_echoes_the_epoch,
          malformed_version_3_fields_are_refused_naming_the_field)
