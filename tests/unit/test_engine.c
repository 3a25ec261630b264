/*
 * test_engine.c - the job engine in-process, without HTTP: a fake clock, a
 * store on a temporary SQLite file, no background threads (the test drives
 * the periodic work with engine_tick_now) and agents played by building
 * their sync requests as src/agent does (docs/agent-protocol.md, wait_ms 0).
 *
 * The cluster is defined by the nodes (no HiveD config): every node is in
 * the VC "default".  Each test starts from an empty store.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
    int64_t now;    /* the fake clock, ms since the epoch */
    char hived[96]; /* a HiveD config file in dir, or "" (nodes define the cluster) */
} rig_t;

typedef struct {
    const char *name, *address;
    int ngpus;
    int64_t seq;     /* known_seq: the last desired set applied */
    json_t *desired; /* attempt ids of the last desired set */
    int util;        /* utilization every GPU reports, when has_util */
    bool has_util;
} agent_t;

static int64_t fake_now(void *ud)
{
    return ((rig_t *)ud)->now;
}

static bool rig_start(rig_t *r)
{
    engine_opts_t o = {.node_lost_timeout_s = LOST_S,
                       .starvation_ms = -1,
                       .no_threads = true,
                       .hived_config = r->hived,
                       .idle_gpu_util_pct = 10,
                       .idle_gpu_ms = 60000};
    engine_ops_t ops = {.ud = r, .now_ms = fake_now};
    pai_error_t err = PAI_ERROR_INIT;
    if (engine_new(r->st, &o, &ops, &r->e, &err) != PAI_OK) {
        fprintf(stderr, "  engine_new: %s\n", pai_error_msg(&err));
        pai_error_free(&err);
        return false;
    }
    return true;
}

static bool rig_open(rig_t *r)
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
    return rig_start(r);
}

/* rig_open with a HiveD config (text) instead of the nodes' cluster. */
static bool rig_open_hived(rig_t *r, const char *text)
{
    memset(r, 0, sizeof(*r));
    r->now = T0_MS;
    snprintf(r->dir, sizeof r->dir, "/tmp/pai-test-engine-XXXXXX");
    if (!mkdtemp(r->dir))
        return false;
    snprintf(r->hived, sizeof r->hived, "%s/hived.yaml", r->dir);
    FILE *f = fopen(r->hived, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        return false;
    char url[128], err[256] = "";
    snprintf(url, sizeof url, "sqlite:%s/pai.db", r->dir);
    if (store_open(url, &r->st, err, sizeof err) != PAI_OK) {
        fprintf(stderr, "  store_open: %s\n", err);
        return false;
    }
    return rig_start(r);
}

/* A server restart: a new engine over the same store. */
static bool rig_restart(rig_t *r)
{
    engine_free(r->e);
    r->e = NULL;
    return rig_start(r);
}

static void rig_close(rig_t *r)
{
    engine_free(r->e);
    store_close(r->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (r->dir[0] && system(cmd) != 0)
        fprintf(stderr, "  cleanup of %s failed\n", r->dir);
}

static void tick(rig_t *r)
{
    CHECK(engine_tick_now(r->e) == PAI_OK);
}

/* ---------------------------------------------------------------- jobs */

static char *job_yaml(const char *name, int gpus, int retries)
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
                      "      - echo hello\n"
                      "defaults:\n"
                      "  virtualCluster: default\n",
                      name, retries, gpus);
}

static bool submit(rig_t *r, const char *name, int gpus, int retries)
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
static json_t *status_field(rig_t *r, const char *job, const char *field)
{
    json_t *d = NULL;
    if (engine_detail(r->e, job, -1, &d, NULL) != PAI_OK)
        return NULL;
    json_t *v = json_incref(json_object_get(json_object_get(d, "jobStatus"), field));
    json_decref(d);
    return v;
}

static const char *state_of(rig_t *r, const char *job)
{
    static char buf[32];
    json_t *v = status_field(r, job, "state");
    snprintf(buf, sizeof buf, "%s", json_is_string(v) ? json_string_value(v) : "(none)");
    json_decref(v);
    return buf;
}

static long long int_of(rig_t *r, const char *job, const char *field)
{
    json_t *v = status_field(r, job, field);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v) : -99999;
    json_decref(v);
    return n;
}

/* ---------------------------------------------------------------- agents */

static json_t *node_json(const agent_t *a)
{
    json_t *gpus = json_array();
    for (int g = 0; g < a->ngpus; g++) {
        json_t *o = json_pack("{si ss ss si sb}", "index", g, "uuid", "GPU-sim", "model", "sim",
                              "memory_mb", 16384, "healthy", 1);
        if (a->has_util)
            json_object_set_new(o, "utilization", json_integer(a->util));
        json_array_append_new(gpus, o);
    }
    return json_pack("{ss ss ss si si ss sb ss so ss}", "name", a->name, "address", a->address,
                     "boot_id", "boot-1", "cpus", 16, "memory_mb", 65536, "gpu_model", "sim",
                     "hollow", 0, "runtime", "process", "gpus", gpus, "log_url",
                     "http://127.0.0.1:1");
}

static json_t *report(const char *attempt_id, const char *state, int exit_code)
{
    json_t *t = json_pack("{ss ss}", "attempt_id", attempt_id, "state", state);
    if (strcmp(state, "exited") == 0)
        json_object_set_new(t, "exit_code", json_integer(exit_code));
    return t;
}

/* One sync of agent a reporting tasks (taken; NULL: none).  Returns the
 * answer's ack list (new reference) and keeps its desired set in a. */
static json_t *sync_agent(rig_t *r, agent_t *a, json_t *tasks)
{
    json_t *req =
        json_pack("{si so sI si so}", "version", 1, "node", node_json(a), "known_seq",
                  (json_int_t)a->seq, "wait_ms", 0, "tasks", tasks ? tasks : json_array());
    json_t *resp = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_agent_sync(r->e, req, NULL, &resp, &err);
    json_decref(req);
    if (rc != PAI_OK) {
        fprintf(stderr, "  sync %s: %s\n", a->name, pai_error_msg(&err));
        pai_error_free(&err);
        CHECK(rc == PAI_OK);
        return json_array();
    }
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
    json_t *ack = json_incref(json_object_get(resp, "ack"));
    json_decref(resp);
    return ack;
}

static void sync_quiet(rig_t *r, agent_t *a, json_t *tasks)
{
    json_decref(sync_agent(r, a, tasks));
}

/* Attempt id k of a's desired set, or "" (valid until the next sync). */
static const char *desired_id(const agent_t *a, size_t k)
{
    const char *s = json_string_value(json_array_get(a->desired, k));
    return s ? s : "";
}

static size_t ndesired(const agent_t *a)
{
    return json_array_size(a->desired);
}

static bool acked(json_t *ack, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(ack, i, v) if (strcmp(json_string_value(v), id) == 0) return true;
    return false;
}

static void agent_free(agent_t *a)
{
    json_decref(a->desired);
    a->desired = NULL;
}

/* Submit name (1 GPU) with node a alone in the cluster and bring its task
 * to running on a.  Returns its attempt id (malloc'ed). */
static char *submit_running(rig_t *r, agent_t *a, const char *name, int retries)
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

static json_t *one(json_t *t)
{
    json_t *a = json_array();
    json_array_append_new(a, t);
    return a;
}

/* ---------------------------------------------------------------- tests */

TEST(submitted_job_binds_runs_and_succeeds_on_exit_0)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 0);
    CHECK(submit(&r, "hello", 1, 0));
    CHECK_STR_EQ(state_of(&r, "alice~hello"), "RUNNING"); /* bound by the submission's pass */
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 0); /* not sent before its record is durable */
    tick(&r);
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~hello/0/worker/0/0");
    char *id = xstrdup(desired_id(&a, 0));
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK_STR_EQ(state_of(&r, "alice~hello"), "RUNNING");
    r.now += 3000;
    json_t *ack = sync_agent(&r, &a, one(report(id, "exited", 0)));
    CHECK(acked(ack, id));
    CHECK_INT_EQ(ndesired(&a), 0);
    CHECK_STR_EQ(state_of(&r, "alice~hello"), "SUCCEEDED");
    CHECK_INT_EQ(int_of(&r, "alice~hello", "appExitCode"), 0);
    CHECK_INT_EQ(int_of(&r, "alice~hello", "submissionTime"), T0_MS); /* the fake clock */
    CHECK_INT_EQ(int_of(&r, "alice~hello", "completedTime"), T0_MS + 3000);
    json_decref(ack);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(failing_exit_is_retried_to_jobRetryCount_then_fails)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "flaky", 1);
    /* Exit 1 (RETRY_TO_MAX, no backoff): a new attempt at once, same node. */
    sync_quiet(&r, &a, one(report(id, "exited", 1)));
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "retries"), 1);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~flaky/1/worker/0/0");
    free(id);
    id = xstrdup(desired_id(&a, 0));
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "RUNNING");
    sync_quiet(&r, &a, one(report(id, "exited", 1)));
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "FAILED");
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "appExitCode"), 1);
    CHECK_INT_EQ(int_of(&r, "alice~flaky", "retries"), 1);
    CHECK_INT_EQ(ndesired(&a), 0);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(transient_exit_is_retried_once_the_backoff_passes_on_the_engine_clock)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "transient", 0);
    /* 251 is ALWAYS_BACKOFF_RETRY: the first retry waits 1 s, not counted. */
    sync_quiet(&r, &a, one(report(id, "exited", 251)));
    CHECK_STR_EQ(state_of(&r, "alice~transient"), "WAITING");
    CHECK_INT_EQ(int_of(&r, "alice~transient", "retryDelayTime"), r.now + 1000);
    r.now += 999;
    tick(&r);
    sync_quiet(&r, &a, NULL);
    CHECK_STR_EQ(state_of(&r, "alice~transient"), "WAITING");
    CHECK_INT_EQ(ndesired(&a), 0);
    r.now += 1;
    tick(&r); /* due: queued, bound and stored */
    CHECK_STR_EQ(state_of(&r, "alice~transient"), "RUNNING");
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~transient/1/worker/0/0");
    CHECK_INT_EQ(int_of(&r, "alice~transient", "retries"), 1);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(stopped_running_job_leaves_the_desired_set_and_is_stopped_when_the_agent_reports_the_kill)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "long", 0);
    CHECK_INT_EQ(ndesired(&a), 1);
    int64_t seq = a.seq;
    CHECK(engine_set_execution(r.e, "alice~long", true, NULL) == PAI_OK);
    CHECK_STR_EQ(state_of(&r, "alice~long"), "STOPPING");
    sync_quiet(&r, &a, one(report(id, "running", 0))); /* still running on the node */
    CHECK(a.seq > seq);
    CHECK_INT_EQ(ndesired(&a), 0); /* the agent kills what is not desired */
    CHECK_STR_EQ(state_of(&r, "alice~long"), "STOPPING");
    json_t *ack = sync_agent(&r, &a, one(report(id, "exited", 143)));
    CHECK(acked(ack, id));
    CHECK_STR_EQ(state_of(&r, "alice~long"), "STOPPED");
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~long"), "STOPPED"); /* no retry after a stop */
    CHECK_INT_EQ(int_of(&r, "alice~long", "retries"), 0);
    json_decref(ack);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

TEST(lost_node_fails_its_tasks_with_1001_and_the_job_retries_on_another_node)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    agent_t b = {.name = "node-2", .address = "10.0.0.2", .ngpus = 1};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "moving", 0); /* node-1 alone: placed there */
    sync_quiet(&r, &b, NULL);
    r.now += LOST_S * 1000; /* not yet past the timeout */
    sync_quiet(&r, &b, NULL);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~moving"), "RUNNING");
    r.now += 1; /* node-1 silent for just over node_lost_timeout_s */
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~moving"), "WAITING");
    json_t *d = NULL;
    CHECK(engine_attempts(r.e, "alice~moving", 0, &d, NULL) == PAI_OK);
    CHECK_INT_EQ(json_integer_value(json_object_get(d, "exitCode")), -1001); /* node lost */
    json_decref(d);
    r.now += 250; /* -1001 is ALWAYS_RETRY: 250 ms backoff */
    sync_quiet(&r, &b, NULL);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~moving"), "RUNNING");
    sync_quiet(&r, &b, NULL);
    CHECK_INT_EQ(ndesired(&b), 1);
    CHECK_STR_EQ(desired_id(&b, 0), "alice~moving/1/worker/0/0");
    /* node-1 comes back still running the old attempt: it is not desired
     * there any more, so its agent kills it; nothing runs twice. */
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK_INT_EQ(ndesired(&a), 0);
    CHECK_STR_EQ(state_of(&r, "alice~moving"), "RUNNING");
    CHECK_INT_EQ(int_of(&r, "alice~moving", "retries"), 1);
    free(id);
    agent_free(&a);
    agent_free(&b);
    rig_close(&r);
}

/* Restore: running, finished and waiting jobs over one engine, then a new
 * engine over the same store. */
TEST(restarted_engine_restores_jobs_states_and_running_tasks_without_running_twice)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *run = submit_running(&r, &a, "run", 0);
    char *done = submit_running(&r, &a, "done", 0);
    sync_quiet(&r, &a, one(report(done, "exited", 0)));
    CHECK(submit(&r, "wait", 2, 0)); /* one GPU is taken: it waits */
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~run"), "RUNNING");
    CHECK_STR_EQ(state_of(&r, "alice~done"), "SUCCEEDED");
    CHECK_STR_EQ(state_of(&r, "alice~wait"), "WAITING");

    CHECK(rig_restart(&r));
    CHECK_STR_EQ(state_of(&r, "alice~run"), "RUNNING");
    CHECK_STR_EQ(state_of(&r, "alice~done"), "SUCCEEDED");
    CHECK_INT_EQ(int_of(&r, "alice~done", "appExitCode"), 0);
    CHECK_STR_EQ(state_of(&r, "alice~wait"), "WAITING");
    /* The agent's first sync after the restart: the running attempt is
     * still its whole desired set, under the same id. */
    sync_quiet(&r, &a, one(report(run, "running", 0)));
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), run);
    CHECK_STR_EQ(state_of(&r, "alice~run"), "RUNNING");
    CHECK_INT_EQ(int_of(&r, "alice~run", "retries"), 0);
    /* Its exit frees the GPU: the waiting job is placed and sent. */
    json_t *ack = sync_agent(&r, &a, one(report(run, "exited", 0)));
    CHECK(acked(ack, run));
    CHECK_STR_EQ(state_of(&r, "alice~run"), "SUCCEEDED");
    CHECK_STR_EQ(state_of(&r, "alice~wait"), "RUNNING");
    CHECK_INT_EQ(ndesired(&a), 1);
    CHECK_STR_EQ(desired_id(&a, 0), "alice~wait/0/worker/0/0");
    json_decref(ack);
    free(run);
    free(done);
    agent_free(&a);
    rig_close(&r);
}

/* Two 2-GPU nodes, the VC "default" guaranteed one of them. */
static const char two_nodes_one_guaranteed[] =
    "physicalCluster:\n"
    "  skuTypes:\n"
    "    sim: {gpu: 1, cpu: 8, memory: 32768Mi}\n"
    "  cellTypes:\n"
    "    sim-NODE: {childCellType: sim, childCellNumber: 2, isNodeLevel: true}\n"
    "  physicalCells:\n"
    "  - {cellType: sim-NODE, cellAddress: node-1}\n"
    "  - {cellType: sim-NODE, cellAddress: node-2}\n"
    "virtualClusters:\n"
    "  default:\n"
    "    virtualCells:\n"
    "    - {cellType: sim-NODE, cellNumber: 1}\n";

static bool submit_hived(rig_t *r, const char *name, const char *prio, bool lazy)
{
    char *yaml = str_printf("protocolVersion: 2\nname: %s\ntype: job\n"
                            "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
                            "taskRoles:\n  worker:\n    instances: 1\n    dockerImage: img\n"
                            "    resourcePerInstance: {gpu: 2, cpu: 1, memoryMB: 256}\n"
                            "    commands:\n      - echo hello\n"
                            "defaults:\n  virtualCluster: default\n"
                            "extras:\n  hivedScheduler:\n    jobPriorityClass: %s\n"
                            "    lazyPreemptionEnable: %s\n",
                            name, prio, lazy ? "true" : "false");
    char *full = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_submit(r->e, "alice", yaml, strlen(yaml), &full, &err);
    if (rc != PAI_OK)
        fprintf(stderr, "  submit %s: %s\n", name, pai_error_msg(&err));
    free(yaml);
    free(full);
    pai_error_free(&err);
    return rc == PAI_OK;
}

static bool sched_oppo(rig_t *r, const char *job)
{
    engine_lock(r->e);
    bool oppo = sched_job_opportunistic(r->e->sched, job);
    engine_unlock(r->e);
    return oppo;
}

/* A lazy preemption downgrades a running job to opportunistic (no task
 * dies); after a restart it stays opportunistic and the job that preempted
 * it keeps the VC's guarantee (before, the restore gave the guarantee back to
 * whichever job came first and downgraded the other). */
TEST(lazily_preempted_job_stays_opportunistic_across_a_restart)
{
    rig_t r;
    agent_t a1 = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    agent_t a2 = {.name = "node-2", .address = "10.0.0.2", .ngpus = 2};
    if (!rig_open_hived(&r, two_nodes_one_guaranteed)) {
        CHECK(!"rig_open_hived");
        return;
    }
    sync_quiet(&r, &a1, NULL);
    sync_quiet(&r, &a2, NULL);
    CHECK(submit_hived(&r, "lazy", "test", true));
    CHECK_STR_EQ(state_of(&r, "alice~lazy"), "RUNNING");
    CHECK(!sched_oppo(&r, "alice~lazy"));
    r.now += 1000;
    CHECK(submit_hived(&r, "prod", "prod", false));
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~prod"), "RUNNING");
    CHECK_STR_EQ(state_of(&r, "alice~lazy"), "RUNNING"); /* downgraded, not killed */
    CHECK(sched_oppo(&r, "alice~lazy"));
    CHECK(!sched_oppo(&r, "alice~prod"));
    tick(&r); /* the downgrade reaches the store */

    CHECK(rig_restart(&r));
    CHECK_STR_EQ(state_of(&r, "alice~lazy"), "RUNNING");
    CHECK_STR_EQ(state_of(&r, "alice~prod"), "RUNNING");
    CHECK(sched_oppo(&r, "alice~lazy"));
    CHECK(!sched_oppo(&r, "alice~prod"));
    CHECK_INT_EQ(int_of(&r, "alice~lazy", "retries"), 0);
    agent_free(&a1);
    agent_free(&a2);
    rig_close(&r);
}

/* extras.hivedScheduler.taskRoles.ROLE.withinOneCell reaches the scheduler
 * (and survives a restart): two 2-GPU tasks within one 2-GPU node wait with
 * the reason; within no constraint they would span both nodes. */
TEST(within_one_cell_from_the_job_protocol_keeps_a_group_waiting_with_the_reason)
{
    rig_t r;
    agent_t a1 = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    agent_t a2 = {.name = "node-2", .address = "10.0.0.2", .ngpus = 2};
    if (!rig_open_hived(&r, two_nodes_one_guaranteed)) {
        CHECK(!"rig_open_hived");
        return;
    }
    sync_quiet(&r, &a1, NULL);
    sync_quiet(&r, &a2, NULL);
    const char *yaml = "protocolVersion: 2\nname: tight\ntype: job\n"
                       "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
                       "taskRoles:\n  worker:\n    instances: 2\n    dockerImage: img\n"
                       "    resourcePerInstance: {gpu: 2, cpu: 1, memoryMB: 256}\n"
                       "    commands:\n      - echo hello\n"
                       "defaults:\n  virtualCluster: default\n"
                       "extras:\n  hivedScheduler:\n    jobPriorityClass: oppo\n"
                       "    taskRoles:\n      worker: {withinOneCell: sim-NODE}\n";
    char *full = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    CHECK(engine_submit(r.e, "alice", yaml, strlen(yaml), &full, &err) == PAI_OK);
    free(full);
    pai_error_free(&err);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~tight"), "WAITING");
    json_t *why = status_field(&r, "alice~tight", "waitingReason");
    CHECK_STR_CONTAINS(json_string_value(why) ? json_string_value(why) : "",
                       "within one sim-NODE cell (withinOneCell)");
    json_decref(why);
    CHECK(rig_restart(&r));
    sync_quiet(&r, &a1, NULL);
    sync_quiet(&r, &a2, NULL);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~tight"), "WAITING");
    agent_free(&a1);
    agent_free(&a2);
    rig_close(&r);
}

/* A role whose commands render past PAI_MAX_COMMAND refuses the job at
 * submit, naming the role and the limit; nothing is created. */
TEST(commands_rendered_over_the_limit_refuse_the_job_naming_the_role)
{
    rig_t r;
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    char *p = xcalloc(65537, 1), *refs = xcalloc(70 * 20 + 1, 1);
    memset(p, 'x', 65536);
    for (int i = 0; i < 70; i++)
        memcpy(refs + i * 20, "<% $parameters.p %> ", 20);
    char *yaml = str_printf("protocolVersion: 2\nname: huge\ntype: job\nparameters:\n  p: %s\n"
                            "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
                            "taskRoles:\n  wide:\n    instances: 1\n    dockerImage: img\n"
                            "    resourcePerInstance: {gpu: 0, cpu: 1, memoryMB: 256}\n"
                            "    commands:\n      - echo %s\n",
                            p, refs);
    char *full = NULL;
    pai_error_t err = PAI_ERROR_INIT;
    CHECK(engine_submit(r.e, "alice", yaml, strlen(yaml), &full, &err) == PAI_E_PROTOCOL);
    CHECK_STR_CONTAINS(pai_error_msg(&err), "taskRoles.wide: the rendered commands");
    CHECK_STR_CONTAINS(pai_error_msg(&err), "4194304 bytes (4 MiB)");
    CHECK(full == NULL);
    pai_error_free(&err);
    json_t *d = NULL;
    CHECK(engine_detail(r.e, "alice~huge", -1, &d, NULL) == PAI_E_NO_JOB);
    json_decref(d);
    free(yaml);
    free(p);
    free(refs);
    rig_close(&r);
}

/* ---------------------------------------------------------------- locking */

/* A waiting job keeps its commands in the store only; the flush that stores
 * its placement reads them back (outside the engine lock) before its task
 * is sent. */
TEST(bound_job_is_sent_with_the_commands_the_flush_read_back)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    CHECK(submit(&r, "cmds", 1, 0));
    tick(&r);
    json_t *req = json_pack("{si so sI si s[]}", "version", 1, "node", node_json(&a), "known_seq",
                            (json_int_t)a.seq, "wait_ms", 0, "tasks");
    json_t *resp = NULL;
    CHECK(engine_agent_sync(r.e, req, NULL, &resp, NULL) == PAI_OK);
    json_t *task = json_array_get(json_object_get(resp, "tasks"), 0);
    CHECK_STR_CONTAINS(json_string_value(json_object_get(task, "command")), "echo hello");
    json_decref(req);
    json_decref(resp);
    agent_free(&a);
    rig_close(&r);
}

/* The same with the "jobcmd" record gone: the job cannot run, its task
 * fails with PodCreationPermanentError (-200) and nothing is sent. */
TEST(bound_job_whose_commands_are_missing_from_the_store_fails_with_200)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    CHECK(submit(&r, "nocmds", 1, 3));
    CHECK(store_del(r.st, "jobcmd", "alice~nocmds") == PAI_OK);
    tick(&r); /* the flush finds no commands */
    tick(&r); /* and stores the failure */
    CHECK_STR_EQ(state_of(&r, "alice~nocmds"), "FAILED");
    CHECK_INT_EQ(int_of(&r, "alice~nocmds", "appExitCode"), -200);
    CHECK_INT_EQ(int_of(&r, "alice~nocmds", "retries"), 0); /* NEVER_RETRY */
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 0);
    agent_free(&a);
    rig_close(&r);
}

/* Runs fn(e) in a child process; true when the child was aborted (a failed
 * assert()). */
static bool aborts(engine_t *e, void (*fn)(engine_t *))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr); /* the assert's message */
        fn(e);
        _exit(0);
    }
    int status = 0;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
           WTERMSIG(status) == SIGABRT;
}

static void store_read_under_mu(engine_t *e)
{
    char *text = NULL;
    engine_lock(e);
    pai_err_t rc = store_get(e->st, "jobcmd", "alice~x", &text); /* must not return */
    (void)rc;
    free(text);
    engine_unlock(e);
}

static void locked_call_without_mu(engine_t *e)
{
    (void)engine_map_get(e, "alice~x");
}

static void flush_lock_under_mu(engine_t *e)
{
    engine_lock(e);
    engine_flush_lock(e); /* lock order: flush_mu before mu */
}

static void store_read_without_mu(engine_t *e)
{
    char *text = NULL;
    pai_err_t rc = store_get(e->st, "jobcmd", "alice~x", &text);
    (void)rc;
    free(text);
}

/* The rules of engine_int.h ("Locking") are checked in debug builds (the
 * tests are never built with NDEBUG). */
TEST(lock_checks_abort_on_store_io_under_mu_a_locked_call_without_it_and_the_wrong_order)
{
#ifdef NDEBUG
    return; /* the checks are assert()s: compiled out */
#endif
    rig_t r;
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    CHECK(aborts(r.e, store_read_under_mu));
    CHECK(aborts(r.e, locked_call_without_mu));
    CHECK(aborts(r.e, flush_lock_under_mu));
    CHECK(!aborts(r.e, store_read_without_mu));
    rig_close(&r);
}

/* ---------------------------------------------------------------- usage */

/* A span crossing a period boundary counts only its part inside: held in
 * full measure, used in proportion. */
TEST(usage_span_is_clipped_to_the_period)
{
    lc_span_t s = {.from_ms = 1000, .to_ms = 5000, .used_gpu_ms = 4000, .gpus = 2};
    usage_sum_t u = {0};
    usage_span_add(&u, &s, 3000, 10000, 99999);
    CHECK(u.held_gpu_ms == 4000 && u.used_gpu_ms == 2000);
    usage_span_add(&u, &s, 0, 1000, 99999); /* before it: nothing */
    usage_span_add(&u, &s, 5000, 9000, 99999);
    CHECK(u.held_gpu_ms == 4000 && u.used_gpu_ms == 2000);
    usage_sum_t all = {0};
    usage_span_add(&all, &s, 0, 10000, 99999);
    CHECK(all.held_gpu_ms == 8000 && all.used_gpu_ms == 4000);
    lc_span_t live = {.from_ms = 1000, .to_ms = 0, .used_gpu_ms = 1000, .gpus = 1};
    usage_sum_t l = {0};
    usage_span_add(&l, &live, 0, 10000, 3000); /* still running: ends now */
    CHECK(l.held_gpu_ms == 2000 && l.used_gpu_ms == 1000);
}

/* The groupBy=job row of name in engine_usage_json over [from, to). */
static double usage_of(rig_t *r, const char *name, int64_t from, int64_t to, const char *field)
{
    json_t *o = engine_usage_json(r->e, from, to, "job", NULL);
    double v = -1;
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(o, "rows"), i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "job")), name) == 0)
            v = json_number_value(json_object_get(row, field));
    }
    json_decref(o);
    return v;
}

#define NEAR(a, b) ((a) > (b)-0.0002 && (a) < (b) + 0.0002)

/* Held from placement to exit, used from the utilization the syncs report;
 * stored with the job, so a job finished before a restart counts after it. */
TEST(usage_held_versus_used_counts_syncs_and_survives_a_restart)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1, .util = 50, .has_util = true};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    int64_t t0 = r.now;
    char *id = submit_running(&r, &a, "busy", 0);
    /* Syncs a minute apart: the first starts the count, each next one adds
     * a minute at 50%; the exit adds the last minute. */
    for (int k = 1; k <= 10; k++) {
        r.now = t0 + k * 60000;
        sync_quiet(&r, &a, one(report(id, "running", 0)));
    }
    r.now = t0 + 660000;
    sync_quiet(&r, &a, one(report(id, "exited", 0)));
    CHECK_STR_EQ(state_of(&r, "alice~busy"), "SUCCEEDED");
    int64_t hour = 3600000;
    CHECK(NEAR(usage_of(&r, "alice~busy", t0, t0 + hour, "heldGpuHours"), 660.0 / 3600));
    CHECK(NEAR(usage_of(&r, "alice~busy", t0, t0 + hour, "usedGpuHours"), 300.0 / 3600));
    tick(&r); /* stored and compacted */
    CHECK(NEAR(usage_of(&r, "alice~busy", t0, t0 + hour, "usedGpuHours"), 300.0 / 3600));
    CHECK(rig_restart(&r));
    CHECK(NEAR(usage_of(&r, "alice~busy", t0, t0 + hour, "heldGpuHours"), 660.0 / 3600));
    CHECK(NEAR(usage_of(&r, "alice~busy", t0, t0 + hour, "usedGpuHours"), 300.0 / 3600));
    /* A period that starts halfway counts half. */
    CHECK(NEAR(usage_of(&r, "alice~busy", t0 + 330000, t0 + hour, "heldGpuHours"), 330.0 / 3600));
    CHECK(NEAR(usage_of(&r, "alice~busy", t0 + 330000, t0 + hour, "usedGpuHours"), 150.0 / 3600));
    CHECK(usage_of(&r, "alice~busy", t0 + hour, t0 + 2 * hour, "heldGpuHours") < 0); /* no row */
    /* Another user sees none of it. */
    json_t *o = engine_usage_json(r.e, t0, t0 + hour, "user", "bob");
    CHECK_INT_EQ(json_array_size(json_object_get(o, "rows")), 0);
    json_decref(o);
    o = engine_usage_json(r.e, t0, t0 + hour, "vc", NULL);
    CHECK_STR_EQ(
        json_string_value(json_object_get(json_array_get(json_object_get(o, "rows"), 0), "vc")),
        "default");
    json_decref(o);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

static bool gpu_idle(rig_t *r, const char *job)
{
    json_t *d = NULL;
    if (engine_detail(r->e, job, -1, &d, NULL) != PAI_OK)
        return false;
    bool idle = json_is_true(json_object_get(d, "gpuIdle"));
    json_decref(d);
    return idle;
}

/* GPUs under idle_gpu_util_pct for idle_gpu_ms flag the job; use clears it. */
TEST(job_whose_gpus_stay_idle_is_flagged_until_they_are_used)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1, .util = 5, .has_util = true};
    if (!rig_open(&r)) {
        CHECK(!"rig_open");
        return;
    }
    sync_quiet(&r, &a, NULL);
    char *id = submit_running(&r, &a, "idle", 0);
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK(!gpu_idle(&r, "alice~idle"));
    r.now += 30000;
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK(!gpu_idle(&r, "alice~idle"));
    r.now += 31000;
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK(gpu_idle(&r, "alice~idle"));
    json_t *list = NULL;
    engine_filter_t f = {0};
    CHECK(engine_list(r.e, &f, &list, NULL) == PAI_OK);
    CHECK(json_is_true(json_object_get(json_array_get(list, 0), "gpuIdle")));
    json_decref(list);
    a.util = 60;
    r.now += 10000;
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK(!gpu_idle(&r, "alice~idle"));
    free(id);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(submitted_job_binds_runs_and_succeeds_on_exit_0,
          failing_exit_is_retried_to_jobRetryCount_then_fails,
          transient_exit_is_retried_once_the_backoff_passes_on_the_engine_clock,
          stopped_running_job_leaves_the_desired_set_and_is_stopped_when_the_agent_reports_the_kill,
          lost_node_fails_its_tasks_with_1001_and_the_job_retries_on_another_node,
          restarted_engine_restores_jobs_states_and_running_tasks_without_running_twice,
          lazily_preempted_job_stays_opportunistic_across_a_restart,
          within_one_cell_from_the_job_protocol_keeps_a_group_waiting_with_the_reason,
          bound_job_is_sent_with_the_commands_the_flush_read_back,
          bound_job_whose_commands_are_missing_from_the_store_fails_with_200,
          commands_rendered_over_the_limit_refuse_the_job_naming_the_role,
          lock_checks_abort_on_store_io_under_mu_a_locked_call_without_it_and_the_wrong_order,
          usage_span_is_clipped_to_the_period,
          usage_held_versus_used_counts_syncs_and_survives_a_restart,
          job_whose_gpus_stay_idle_is_flagged_until_they_are_used)
