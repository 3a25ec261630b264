/* test_agentwire_resp.c - the sync's answer as text (agentwire_resp.c):
 * byte for byte the text of agentwire_resp_encode's tree dumped
 * (json_dumps, JSON_COMPACT), on answers with every optional field,
 * env pairs, strings needing escapes, invalid UTF-8, repeated keys, and
 * with task entries kept as text. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jtext.h"
#include "common/util.h"
#include "test.h"
#include "wire/agentwire.h"

/* The two texts of m: the tree's and the writer's, compared. */
static void check_same(const agentwire_resp_t *m)
{
    json_t *o = agentwire_resp_encode(m);
    char *want = json_dumps(o, JSON_COMPACT);
    char *via = jtext_dumps(o);
    json_decref(o);
    size_t len = 0;
    char *got = agentwire_resp_dumps(m, &len);
    CHECK(want != NULL);
    CHECK_STR_EQ(got, want);
    CHECK_STR_EQ(via, want);
    CHECK_INT_EQ(len, strlen(want));
    free(want);
    free(via);
    free(got);
}

static agentwire_env_t env[] = {
    {"PAI_JOB_NAME", "j1"},
    {"QUOTED", "a \"b\" \\ c\n\t\x01 end"},
    {"UNICODE", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
    {"CUT", "ab\xc3"},             /* cut inside a character */
    {"BINARY", "x\xff\xfey\x80z"}, /* bytes that are no UTF-8 */
    {"EMPTY", ""},
};
static int p0[] = {4000, 4001}, p1[] = {5000};
static agentwire_ports_t ports[] = {{"http", p0, 2}, {"ssh \"x\"", p1, 1}};
static agentwire_mount_t mounts[] = {{"/data/a", "/mnt/a", true}, {"/s\"q", NULL, false}};
static int gpus[] = {0, 3, 7};

static agentwire_task_t full_task(void)
{
    return (agentwire_task_t){
        .attempt_id = "alice~j1-0-1-0-1",
        .job = "alice~j1",
        .user = "alice~j1",
        .user_len = 5,
        .role = "worker",
        .index = 1,
        .job_attempt = 2,
        .task_attempt = 3,
        .image = "registry.example/x:\"1\"",
        .image_user = "u",
        .image_password = "p\\w\"d",
        .image_registry = "registry.example",
        .image_auth = true,
        .command = "echo \"hi\"\nsleep 1 && printf '\\t'\x1f",
        .env = env,
        .nenv = ARRAY_LEN(env),
        .gpus = gpus,
        .ngpus = ARRAY_LEN(gpus),
        .cpu = 2,
        .memory_mb = 8192,
        .shm_mb = 64,
        .ports = ports,
        .nports = ARRAY_LEN(ports),
        .has_mounts = true,
        .mounts = mounts,
        .nmounts = ARRAY_LEN(mounts),
        .kill_grace_ms = 10000,
        .has_task_uid = true,
        .task_uid = 17,
    };
}

static const char *acks[] = {"a-1", "b\"2", "c\xff"};
static const char *removed[] = {"r-1", "r\\2"};

TEST(a_full_answer_is_the_trees_text_in_every_version)
{
    agentwire_task_t tasks[2] = {full_task(), full_task()};
    tasks[1].cpu = 0.5;
    tasks[1].command = NULL;
    tasks[1].image_auth = false;
    tasks[1].has_task_uid = false;
    tasks[1].has_mounts = false;
    tasks[1].user_len = 0;
    for (int version = 0; version <= AGENTWIRE_VERSION; version++) {
        agentwire_resp_t m = {.version = version,
                              .seq = 9007199254740991ull,
                              .ack = acks,
                              .nack = ARRAY_LEN(acks),
                              .epoch = "00ab-cd_ef",
                              .delta = true,
                              .base_seq = 7,
                              .removed = removed,
                              .nremoved = ARRAY_LEN(removed),
                              .has_tasks = true,
                              .tasks = tasks,
                              .ntasks = 2,
                              .heartbeat_ms = 15000,
                              .credential = "pn1.0123",
                              .log_key = "pl1.4567",
                              .node_desc = "feedfeedfeedfeed"};
        check_same(&m);
        m.delta = false; /* the whole set */
        check_same(&m);
        m.has_tasks = false; /* superseded: no tasks, no delta */
        m.delta = true;
        check_same(&m);
    }
}

TEST(a_bare_answer_and_absent_fields_are_the_trees_text)
{
    agentwire_resp_t m = {0};
    check_same(&m);
    m.has_tasks = true;
    check_same(&m);
    agentwire_task_t t = {0}; /* every string absent, no lists */
    m.tasks = &t;
    m.ntasks = 1;
    check_same(&m);
    t.image = "img"; /* auth present but empty, then one field at a time */
    t.image_auth = true;
    check_same(&m);
    t.image_password = "pw";
    check_same(&m);
    t.image_user = NULL;
    t.image_registry = "r";
    check_same(&m);
}

TEST(numbers_and_odd_strings_are_the_trees_text)
{
    agentwire_task_t t = full_task();
    agentwire_resp_t m = {.has_tasks = true, .tasks = &t, .ntasks = 1, .heartbeat_ms = -1};
    double cpus[] = {0, -3, 1e14, 1e15, 1e20, 0.1, 1.0 / 3, -2.5, NAN, INFINITY};
    for (size_t i = 0; i < ARRAY_LEN(cpus); i++) {
        t.cpu = cpus[i];
        check_same(&m);
    }
    t.cpu = 1;
    t.user = "bad\xff"; /* json_stringn refuses it: no "user" */
    t.user_len = 0;
    check_same(&m);
    t.user = "\xc3\xa9t\xc3\xa9"; /* a cut inside a character too */
    t.user_len = 3;
    check_same(&m);
    t.user_len = 2;
    check_same(&m);
    t.memory_mb = INT64_MIN;
    t.shm_mb = INT64_MAX;
    t.task_uid = -1;
    check_same(&m);
}

TEST(repeated_and_odd_keys_are_written_as_jansson_keeps_them)
{
    agentwire_env_t dup[] = {{"A", "1"}, {"B", "2"}, {"A", "3"}, {NULL, "x"}, {"K\xff", "y"}};
    int p[] = {1};
    agentwire_ports_t dports[] = {{"http", p, 1}, {"http", p, 0}, {NULL, p, 1}};
    agentwire_task_t t = full_task();
    t.env = dup;
    t.nenv = ARRAY_LEN(dup);
    t.ports = dports;
    t.nports = ARRAY_LEN(dports);
    agentwire_resp_t m = {.has_tasks = true, .tasks = &t, .ntasks = 1};
    check_same(&m);
    t.nenv = 0; /* empty objects */
    t.nports = 0;
    check_same(&m);
}

TEST(a_kept_task_text_is_appended_as_it_is)
{
    agentwire_task_t tasks[3] = {full_task(), full_task(), full_task()};
    tasks[1].attempt_id = "other";
    tasks[2].env = NULL;
    tasks[2].nenv = 0;
    jtext_t kept;
    jtext_init(&kept, 64);
    agentwire_task_dump(&kept, &tasks[1]);
    agentwire_resp_t m = {.version = 4, .has_tasks = true, .tasks = tasks, .ntasks = 3};
    size_t n1, n2;
    char *plain = agentwire_resp_dumps(&m, &n1);
    tasks[1].text = kept.data;
    tasks[1].text_len = kept.len;
    char *with = agentwire_resp_dumps(&m, &n2);
    CHECK_STR_EQ(with, plain);
    CHECK_INT_EQ(n2, n1);
    /* the kept text is what is sent, whatever the fields say now */
    tasks[1].attempt_id = "changed";
    free(with);
    with = agentwire_resp_dumps(&m, &n2);
    CHECK_STR_EQ(with, plain);
    tasks[1].text = NULL;
    check_same(&m);
    free(with);
    free(plain);
    jtext_free(&kept);
}

/* UTF-8 as json_stringn takes it (ASCII by its fast path), and NUL refused
 * wherever it is, and every bad sequence refused after ASCII bytes too. */
TEST(utf8_validity_is_what_jansson_takes)
{
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } cases[] = {
        {"PAI_TASK_ROLE_NAME", 18, true},
        {"", 0, true},
        {"ab\0cd", 5, false},
        {"\0", 1, false},
        {"caf\xc3\xa9", 5, true},
        {"abc\xc3", 4, false},           /* cut short */
        {"abc\xc0\x80", 5, false},       /* overlong NUL */
        {"a\xed\xa0\x80", 4, false},     /* a UTF-16 surrogate */
        {"a\xf4\x90\x80\x80", 5, false}, /* past U+10FFFF */
        {"\xf0\x9f\x98\x80x", 5, true},
        {"x\x80", 2, false},
        {"\x7f", 1, true},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        bool ok = agentwire_utf8_valid(cases[i].s, cases[i].n);
        if (ok != cases[i].ok)
            fprintf(stderr, "  case %zu\n", i);
        CHECK(ok == cases[i].ok);
        /* jansson agrees (it takes a NUL in a string with its length) */
        json_t *j = json_stringn(cases[i].s, cases[i].n);
        CHECK((j != NULL) == (cases[i].ok || memchr(cases[i].s, '\0', cases[i].n) != NULL));
        json_decref(j);
    }
}

RUN_TESTS(a_full_answer_is_the_trees_text_in_every_version,
          a_bare_answer_and_absent_fields_are_the_trees_text,
          numbers_and_odd_strings_are_the_trees_text,
          repeated_and_odd_keys_are_written_as_jansson_keeps_them,
          a_kept_task_text_is_appended_as_it_is, utf8_validity_is_what_jansson_takes)
