/* test_agentwire_v4.c - the agent protocol's version 4: the node's
 * description named by its digest ("desc", "same", the answer's
 * "node_desc"), key for key, its malformed forms, and the agent's writer
 * choosing the form (docs/agent-protocol.md, "The node's description once"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentwire_fixture.h"
#include "common/util.h"
#include "test.h"
#include "wire/agentwire.h"

static agentwire_gpu_t two_gpus[] = {
    {.index = 0, .uuid = "GPU-a", .model = "sim", .pci_bus = "", .memory_mb = 16384, .healthy = 1},
    {.index = 1, .uuid = "GPU-b", .model = "sim", .pci_bus = "", .memory_mb = 16384, .healthy = 1},
};

static agentwire_node_t node_of(agentwire_gpu_t *gpus)
{
    return (agentwire_node_t){.name = "n1",
                              .address = "10.0.0.1",
                              .boot_id = "b1",
                              .cpus = 8,
                              .memory_mb = 4096,
                              .gpu_model = "sim",
                              .runtime = "process",
                              .log_url = "http://10.0.0.1:9",
                              .has_gpus = true,
                              .gpus = gpus,
                              .ngpus = 2,
                              .health = {.present = true, .ok = true, .load1 = 0.5, .tasks = 1}};
}

/* Encode m, decode it back: the JSON text of both, and the decoded copy. */
static char *req_text(const agentwire_req_t *m, agentwire_req_t *back)
{
    json_t *j = agentwire_req_encode(m);
    char *text = dump(j);
    CHECK(agentwire_req_decode(j, back, NULL) == PAI_OK);
    json_decref(j);
    return text;
}

TEST(a_whole_description_carries_its_digest_and_a_short_one_only_the_digest)
{
    agentwire_req_t m = {.version = 4, .node = node_of(two_gpus), .known_seq = 3};
    m.node.desc = "00c0ffee00c0ffee";
    agentwire_req_t back;
    char *text = req_text(&m, &back);
    CHECK(strstr(text, "\"gpu_backend\":\"none\",\"desc\":\"00c0ffee00c0ffee\",\"health\":") !=
          NULL);
    CHECK_STR_EQ(back.node.desc, "00c0ffee00c0ffee");
    CHECK(back.node.same == NULL && back.node.ngpus == 2 && back.node.cpus == 8);
    agentwire_req_clear(&back);
    free(text);
    /* the short form: the name, the digest, the health; nothing else read */
    m.node = (agentwire_node_t){.name = "n1",
                                .same = "00c0ffee00c0ffee",
                                .health = {.present = true, .ok = true, .load1 = 1, .tasks = 2}};
    text = req_text(&m, &back);
    CHECK_STR_EQ(text, "{\"version\":4,\"node\":{\"name\":\"n1\",\"same\":\"00c0ffee00c0ffee\","
                       "\"health\":{\"ok\":true,\"load1\":1.0,\"disk_free_mb\":0,"
                       "\"gpus_healthy\":0,\"tasks\":2}},\"known_seq\":3,\"wait_ms\":0,"
                       "\"tasks\":[]}");
    CHECK_STR_EQ(back.node.same, "00c0ffee00c0ffee");
    CHECK(back.node.desc == NULL && !back.node.has_gpus && back.node.address == NULL);
    CHECK(back.node.health.present && back.node.health.tasks == 2);
    agentwire_req_clear(&back);
    free(text);
    /* a short form's other fields are not read */
    char err[256];
    CHECK(decode_req_text("{\"version\":4,\"node\":{\"name\":\"n\",\"same\":\"ab\",\"cpus\":\"x\"},"
                          "\"tasks\":[]}",
                          err, sizeof(err)) == PAI_OK);
}

TEST(digests_are_version_4s_only)
{
    agentwire_req_t m = {.version = 3, .node = node_of(two_gpus)};
    m.node.desc = "abc";
    agentwire_req_t back;
    char *text = req_text(&m, &back);
    CHECK(strstr(text, "desc") == NULL && back.node.desc == NULL);
    agentwire_req_clear(&back);
    free(text);
    /* a version 3 server reads "same" as nothing: a node without a description */
    json_t *j =
        json_loads("{\"version\":3,\"node\":{\"name\":\"n\",\"same\":\"ab\",\"desc\":\"cd\"},"
                   "\"tasks\":[]}",
                   0, NULL);
    CHECK(agentwire_req_decode(j, &back, NULL) == PAI_OK);
    CHECK(back.node.same == NULL && back.node.desc == NULL);
    agentwire_req_clear(&back);
    json_decref(j);
    /* the answer's node_desc */
    agentwire_resp_t r = {.version = 4, .seq = 2, .node_desc = "d-1_x"}, rb;
    j = agentwire_resp_encode(&r);
    text = dump(j);
    CHECK(strstr(text, ",\"node_desc\":\"d-1_x\"}") != NULL);
    CHECK(agentwire_resp_decode(j, &rb, NULL) == PAI_OK);
    CHECK_STR_EQ(rb.node_desc, "d-1_x");
    agentwire_resp_clear(&rb);
    json_decref(j);
    free(text);
    r.version = 3;
    j = agentwire_resp_encode(&r);
    CHECK(json_object_get(j, "node_desc") == NULL);
    json_decref(j);
}

TEST(malformed_digests_are_refused_with_their_field)
{
    char err[256];
    CHECK(decode_req_text("{\"version\":4,\"node\":{\"name\":\"n\",\"same\":\"a b\"},\"tasks\":[]}",
                          err, sizeof(err)) == PAI_E_INVALID);
    CHECK_STR_EQ(err, "node.same: must be letters, digits, '-' or '_'");
    CHECK(decode_req_text("{\"version\":4,\"node\":{\"name\":\"n\",\"desc\":7},\"tasks\":[]}", err,
                          sizeof(err)) == PAI_E_INVALID);
    CHECK_STR_EQ(err, "node.desc: must be a string");
    CHECK(decode_req_text("{\"version\":4,\"node\":{\"name\":\"n\",\"desc\":\"\"},\"tasks\":[]}",
                          err, sizeof(err)) == PAI_E_INVALID);
    char body[256];
    snprintf(body, sizeof(body), "{\"version\":4,\"seq\":1,\"node_desc\":\"%065d\"}", 0);
    agentwire_resp_t r;
    CHECK(parse_resp_text(body, strlen(body), &r, err, sizeof(err)) == PAI_E_PROTOCOL);
    CHECK_STR_EQ(err, "node_desc: is longer than 64 characters");
}

/* The agent's writer: the description whole with its digest until an
 * answer names that digest, then the digest alone, whole again when the
 * description changes or an answer names none; the same bytes as the
 * encoder's every time (dumps_same). */
TEST(the_writer_sends_the_description_whole_until_the_server_holds_it)
{
    agentwire_gpu_t gpus[2];
    memcpy(gpus, two_gpus, sizeof(gpus));
    agentwire_req_t m = {.node = node_of(gpus), .known_seq = 1, .wait_ms = 100};
    agentwire_node_cache_t c = {0};
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(strlen(c.desc), 16);
    size_t len = 0;
    char *text = agentwire_req_dumps(&m, &c, &len);
    CHECK(strstr(text, "\"address\"") != NULL && strstr(text, "\"desc\"") != NULL);
    free(text);
    char first[17];
    str_copy(first, c.desc, sizeof(first));
    agentwire_node_cache_ack(&c, "another");
    CHECK(dumps_same(&m, &c));
    agentwire_node_cache_ack(&c, first);
    CHECK(dumps_same(&m, &c));
    text = agentwire_req_dumps(&m, &c, &len);
    CHECK(strstr(text, "\"address\"") == NULL && strstr(text, "\"same\"") != NULL);
    free(text);
    m.known_seq = 9; /* what moves each sync leaves it short */
    m.node.health.load1 = 3.25;
    CHECK(dumps_same(&m, &c));
    CHECK_INT_EQ(c.encodes, 1);
    /* a GPU turns unhealthy: another digest, whole until acked again */
    gpus[1].healthy = false;
    CHECK(dumps_same(&m, &c));
    CHECK(strcmp(c.desc, first) != 0);
    CHECK_INT_EQ(c.encodes, 2);
    text = agentwire_req_dumps(&m, &c, &len);
    CHECK(strstr(text, "\"address\"") != NULL);
    free(text);
    agentwire_node_cache_ack(&c, c.desc);
    CHECK(dumps_same(&m, &c));
    agentwire_node_cache_ack(&c, NULL); /* a server that holds none */
    CHECK(dumps_same(&m, &c));
    /* version 3: never a digest */
    m.version = 3;
    text = agentwire_req_dumps(&m, &c, &len);
    CHECK(strstr(text, "\"desc\"") == NULL && strstr(text, "\"address\"") != NULL);
    free(text);
    agentwire_node_cache_free(&c);
    CHECK(c.same == NULL && c.desc[0] == '\0' && c.acked[0] == '\0');
}

RUN_TESTS(a_whole_description_carries_its_digest_and_a_short_one_only_the_digest,
          digests_are_version_4s_only, malformed_digests_are_refused_with_their_field,
          the_writer_sends_the_description_whole_until_the_server_holds_it)
