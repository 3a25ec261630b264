/*
 * engine_fixture.h - the rig shared by the engine's unit tests
 * (test_engine.c, test_engine_sched.c): a fake clock, a store on a
 * temporary SQLite file, no background threads (the test drives the
 * periodic work with engine_tick_now) and agents played by building their
 * sync requests as src/agent does (docs/agent-protocol.md, wait_ms 0).
 *
 * The cluster is defined by the nodes (no HiveD config) unless a test opens
 * the rig with one: every node is then in the VC "default".  Each test
 * starts from an empty store.  Functions are static inline: each test file
 * is its own program and uses only some of them.
 */
#ifndef PAI_TESTS_ENGINE_FIXTURE_H
#define PAI_TESTS_ENGINE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "engine/engine.h"
#include "engine/engine_int.h"
#include "store/store.h"
#include "test.h"

#define T0_MS  1700000000000LL /* the fake clock's start */
#define LOST_S 10              /* node_lost_timeout_s */

/* ---------------------------------------------------------------- rig */

typedef struct {
    char dir[64];
    store_t *st;
    engine_t *e;
    int64_t now;                /* the fake clock, ms since the epoch */
    char hived[96];             /* a HiveD config file in dir, or "" (nodes define the cluster) */
    engine_sched_check_t check; /* engine_opts_t.sched_check of the next rig_start */
    bool corrupt;               /* engine_opts_t.sched_test_corrupt of the next rig_start */
    int events_per_job;         /* engine options a test may set before rig_restart */
    int64_t event_retention_ms;
} rig_t;

typedef struct {
    const char *name, *address;
    int ngpus;
    int64_t seq;     /* known_seq: the last desired set applied */
    json_t *desired; /* attempt ids of the last desired set */
    int util;        /* utilization every GPU reports, when has_util */
    bool has_util;
    uint64_t bad; /* GPUs (by index) reported unhealthy */
} agent_t;

static inline int64_t fake_now(void *ud)
{
    return ((rig_t *)ud)->now;
}

static inline bool rig_start(rig_t *r)
{
    engine_opts_t o = {.node_lost_timeout_s = LOST_S,
                       .starvation_ms = -1,
                       .no_threads = true,
                       .hived_config = r->hived,
                       .idle_gpu_util_pct = 10,
                       .idle_gpu_ms = 60000,
                       .sched_check = r->check,
                       .sched_test_corrupt = r->corrupt,
                       .events_per_job = r->events_per_job,
                       .event_retention_ms = r->event_retention_ms};
    engine_ops_t ops = {.ud = r, .now_ms = fake_now};
    pai_error_t err = PAI_ERROR_INIT;
    if (engine_new(r->st, &o, &ops, &r->e, &err) != PAI_OK) {
        fprintf(stderr, "  engine_new: %s\n", pai_error_msg(&err));
        pai_error_free(&err);
        return false;
    }
    return true;
}

/* The rig's directory and its SQLite store, no engine yet. */
static inline bool rig_open_store(rig_t *r)
{
    memset(r, 0, sizeof(*r));
    r->now = T0_MS;
    snprintf(r->dir, sizeof r->dir, "/tmp/pai-test-engine-XXXXXX");
    if (!mkdtemp(r->dir))
        return false;
    char url[128], err[256] = "";
    snprintf(url, sizeof url, "sqlite:%s/pai.db", r->dir);
    if (store_open(url, &r->st, err, sizeof err) != PAI_OK) {
        fprintf(stderr, "  store_open: %s\n", err);
        return false;
    }
    return true;
}

static inline bool rig_open(rig_t *r)
{
    return rig_open_store(r) && rig_start(r);
}

/* rig_open with a HiveD config (text) instead of the nodes' cluster. */
static inline bool rig_open_hived(rig_t *r, const char *text)
{
    if (!rig_open_store(r))
        return false;
    snprintf(r->hived, sizeof r->hived, "%s/hived.yaml", r->dir);
    FILE *f = fopen(r->hived, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        return false;
    return rig_start(r);
}

/* A server restart: a new engine over the same store. */
static inline bool rig_restart(rig_t *r)
{
    engine_free(r->e);
    r->e = NULL;
    return rig_start(r);
}

static inline void rig_close(rig_t *r)
{
    engine_free(r->e);
    store_close(r->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (r->dir[0] && system(cmd) != 0)
        fprintf(stderr, "  cleanup of %s failed\n", r->dir);
}

static inline void tick(rig_t *r)
{
    CHECK(engine_tick_now(r->e) == PAI_OK);
}

/* ---------------------------------------------------------------- jobs */

/* job_yaml with its one command. */
static inline char *job_yaml_cmd(const char *name, int gpus, int retries, const char *cmd)
{
    return str_printf("protocolVersion: 2\n"
                      "name: %s\n"
                      "type: job\n"
                      "jobRetryCount: %d\n"
                      "prerequisites:\n"
                      "  - {type: dockerimage, name: img, uri: busybox}\n"
                      "taskRoles:\n"
                      "  worker:\n"
                      "    instances: 1\n"
                      "    dockerImage: img\n"
                      "    resourcePerInstance: {gpu: %d, cpu: 1, memoryMB: 256}\n"
                      "    commands:\n"
                      "      - %s\n"
                      "defaults:\n"
                      "  virtualCluster: default\n",
                      name, retries, gpus, cmd);
}

static inline char *job_yaml(const char *name, int gpus, int retries)
{
    return job_yaml_cmd(name, gpus, retries, "echo hello");
}

static inline bool submit(rig_t *r, const char *name, int gpus, int retries)
{
    char *yaml = job_yaml(name, gpus, retries), *full = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_submit(r->e, "alice", yaml, strlen(yaml), &full, &err);
    if (rc != PAI_OK)
        fprintf(stderr, "  submit %s: %s\n", name, pai_error_msg(&err));
    free(yaml);
    free(full);
    pai_error_free(&err);
    return rc == PAI_OK;
}

/* jobStatus.<field> of the job's detail (new reference, or NULL). */
static inline json_t *status_field(rig_t *r, const char *job, const char *field)
{
    json_t *d = NULL;
    if (engine_detail(r->e, job, -1, &d, NULL) != PAI_OK)
        return NULL;
    json_t *v = json_incref(json_object_get(json_object_get(d, "jobStatus"), field));
    json_decref(d);
    return v;
}

static inline const char *state_of(rig_t *r, const char *job)
{
    static char buf[32];
    json_t *v = status_field(r, job, "state");
    snprintf(buf, sizeof buf, "%s", json_is_string(v) ? json_string_value(v) : "(none)");
    json_decref(v);
    return buf;
}

static inline long long int_of(rig_t *r, const char *job, const char *field)
{
    json_t *v = status_field(r, job, field);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -99999;
    json_decref(v);
    return n;
}

/* ---------------------------------------------------------------- agents */

static inline json_t *node_json(const agent_t *a)
{
    json_t *gpus = json_array();
    for (int g = 0; g < a->ngpus; g++) {
        json_t *o = json_pack("{si ss ss si sb}", "index", g, "uuid", "GPU-sim", "model", "sim",
                              "memory_mb", 16384, "healthy", !(a->bad & (1ull << g)));
        if (a->has_util)
            json_object_set_new(o, "utilization", json_integer(a->util));
        json_array_append_new(gpus, o);
    }
    return json_pack("{ss ss ss si si ss sb ss so ss}", "name", a->name, "address", a->address,
                     "boot_id", "boot-1", "cpus", 16, "memory_mb", 65536, "gpu_model", "sim",
                     "hollow", 0, "runtime", "process", "gpus", gpus, "log_url",
                     "http://127.0.0.1:1");
}

static inline json_t *report(const char *attempt_id, const char *state, int exit_code)
{
    json_t *t = json_pack("{ss ss}", "attempt_id", attempt_id, "state", state);
    if (strcmp(state, "exited") == 0)
        json_object_set_new(t, "exit_code", json_integer(exit_code));
    return t;
}

/* The engine's answer text (taken; NULL: none) parsed, or NULL after a
 * failed check. */
static inline json_t *answer_json(char *text)
{
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j)
        fprintf(stderr, "  answer not JSON: %s: %s\n", jerr.text, text);
    CHECK(j != NULL);
    free(text);
    return j;
}

/* Run the sync request req (taken) of agent a; its answer, or NULL after a
 * failed check naming the error. */
static inline json_t *sync_request(rig_t *r, const agent_t *a, json_t *req)
{
    char *resp = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_agent_sync(r->e, req, NULL, &resp, &err);
    json_decref(req);
    if (rc != PAI_OK) {
        fprintf(stderr, "  sync %s: %s\n", a->name, pai_error_msg(&err));
        pai_error_free(&err);
        CHECK(rc == PAI_OK);
        return NULL;
    }
    return answer_json(resp);
}

/* Submits w000 .. w<ENGINE_SHORT_QUEUE> of one GPU each: behind a busy
 * GPU, a queue the engine counts as long once a pass has seen it.  False
 * when one is refused. */
static inline bool submit_queue(rig_t *r)
{
    char name[16];
    for (int i = 0; i <= ENGINE_SHORT_QUEUE; i++) {
        snprintf(name, sizeof name, "w%03d", i);
        if (!submit(r, name, 1, 0))
            return false;
    }
    return true;
}

/* Agent a takes an answer's known_seq and, when it carries one, its
 * desired set (the attempt ids), as an agent does. */
static inline void agent_follow(agent_t *a, const json_t *resp)
{
    a->seq = json_integer_value(json_object_get(resp, "seq"));
    const json_t *desired = json_object_get(resp, "tasks");
    if (desired) {
        json_decref(a->desired);
        a->desired = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(desired, i, t)
            json_array_append(a->desired, json_object_get(t, "attempt_id"));
    }
}

/* One sync of agent a reporting tasks (taken; NULL: none).  Returns the
 * answer's ack list (new reference) and keeps its desired set in a. */
static inline json_t *sync_agent(rig_t *r, agent_t *a, json_t *tasks)
{
    json_t *req =
        json_pack("{si so sI si so}", "version", 1, "node", node_json(a), "known_seq",
                  (json_int_t)a->seq, "wait_ms", 0, "tasks", tasks ? tasks : json_array());
    json_t *resp = sync_request(r, a, req);
    if (!resp)
        return json_array();
    agent_follow(a, resp);
    json_t *ack = json_incref(json_object_get(resp, "ack"));
    json_decref(resp);
    return ack;
}

static inline void sync_quiet(rig_t *r, agent_t *a, json_t *tasks)
{
    json_decref(sync_agent(r, a, tasks));
}

/* rig_open, then one sync of a (no tasks): the node is known to the
 * engine.  false when the store or engine could not be opened. */
static inline bool rig_open_synced(rig_t *r, agent_t *a)
{
    if (!rig_open(r))
        return false;
    sync_quiet(r, a, NULL);
    return true;
}

/* Attempt id k of a's desired set, or "" (valid until the next sync). */
static inline const char *desired_id(const agent_t *a, size_t k)
{
    const char *s = json_string_value(json_array_get(a->desired, k));
    return s ? s : "";
}

static inline size_t ndesired(const agent_t *a)
{
    return json_array_size(a->desired);
}

static inline bool acked(json_t *ack, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(ack, i, v) if (strcmp(json_string_value(v), id) == 0) return true;
    return false;
}

static inline void agent_free(agent_t *a)
{
    json_decref(a->desired);
    a->desired = NULL;
}

/* Submit name (1 GPU) with node a alone in the cluster and bring its task
 * to running on a.  Returns its attempt id (malloc'ed). */
static inline char *submit_running(rig_t *r, agent_t *a, const char *name, int retries)
{
    CHECK(submit(r, name, 1, retries));
    tick(r); /* the timer's flush: the bound attempt becomes durable and is sent */
    sync_quiet(r, a, NULL);
    char *id = NULL;
    for (size_t k = 0; k < ndesired(a); k++)
        if (strstr(desired_id(a, k), name))
            id = xstrdup(desired_id(a, k));
    CHECK(id != NULL);
    if (!id)
        return xstrdup("");
    json_t *running = json_array();
    json_array_append_new(running, report(id, "running", 0));
    sync_quiet(r, a, running);
    return id;
}

static inline json_t *one(json_t *t)
{
    json_t *a = json_array();
    json_array_append_new(a, t);
    return a;
}

#endif
