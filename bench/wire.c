/*
 * bench/wire.c - what one sync answer costs on each side, a node's whole
 * desired set (agent protocol version 2) against a delta (version 3:
 * one attempt entered, one left; docs/agent-protocol.md, "Deltas").
 *
 * A node runs T attempts (T = 8: 8 GPUs of 1-GPU jobs; T = 64), each
 * described as the server describes it: 36 PAI_* env variables, its GPU,
 * two port labels, the command "true" (sent only for a new attempt).
 * Measures, on the calling thread's CPU clock, the mean over N answers:
 *   server  agentwire_resp_encode + jtext_dumps (the tree built and dumped,
 *           what answer() did after the desired set is built, which a
 *           delta also shortens) against agentwire_resp_dumps (the text
 *           written without a tree, what it does now: the same bytes);
 *   agent   agentwire_resp_parse + agentwire_resp_clear (node.c);
 * and the answer's size.  Then one sync request of a node of 8 GPUs (with
 * topology) and two task reports, its description whole (version 3, and
 * version 4's first) against named by its digest (version 4, "same"):
 *   server  json_loadb + agentwire_req_decode + the GPU list re-encoded
 *           for the node's record (whole only) + clear (agentsync.c);
 *   agent   agentwire_req_dump from its kept description (node.c).
 * Then one delta answer of one new task with one ack, as a sync of a
 * bench/e2e node carries it, its env as variables (version 4) against as
 * its job's placement (version 5; 6 is its bytes) and the entry without
 * what the agent derives (version 7), for a one-task job and a 6-task job:
 *   server  the env built (engine_task_env_pairs or engine_task_jobenv)
 *           and the answer's text;
 *   agent   agentwire_resp_parse (from version 5 with the env derived,
 *           in 7 the fields left out too) + agentwire_resp_clear.
 * Prints the figures, asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/jtext.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/env.h"
#include "engine/lifecycle.h"
#include "wire/agentwire.h"

#define NENV 36

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

typedef struct {
    char id[64], job[48], names[NENV][40], values[NENV][64];
    agentwire_env_t env[NENV];
    int gpu, ssh, http;
    agentwire_ports_t ports[2];
} fixture_t;

static void fixture(fixture_t *f, int i, agentwire_task_t *t)
{
    snprintf(f->job, sizeof f->job, "alice~job-%06d", i);
    snprintf(f->id, sizeof f->id, "%s/0/worker/0/0", f->job);
    for (int k = 0; k < NENV; k++) {
        snprintf(f->names[k], sizeof f->names[k], "PAI_VARIABLE_NUMBER_%02d", k);
        snprintf(f->values[k], sizeof f->values[k], "value-%d-of-task-%d-10.0.0.%d:%d", k, i,
                 i % 250, 20000 + k);
        f->env[k] = (agentwire_env_t){f->names[k], f->values[k]};
    }
    f->gpu = i % 8;
    f->ssh = 20000 + 2 * i;
    f->http = 20001 + 2 * i;
    f->ports[0] = (agentwire_ports_t){"ssh", &f->ssh, 1};
    f->ports[1] = (agentwire_ports_t){"http", &f->http, 1};
    *t = (agentwire_task_t){.attempt_id = f->id,
                            .job = f->job,
                            .user = f->job,
                            .user_len = 5,
                            .role = "worker",
                            .image = "busybox",
                            .env = f->env,
                            .nenv = NENV,
                            .gpus = &f->gpu,
                            .ngpus = 1,
                            .cpu = 1,
                            .memory_mb = 256,
                            .shm_mb = 64,
                            .ports = f->ports,
                            .nports = 2,
                            .kill_grace_ms = 10000,
                            .has_task_uid = true,
                            .task_uid = 3};
}

/* One answer's text: the whole set of the n attempts in tasks (the last
 * one new, with its command), or a delta carrying only that one and one
 * removed id. */
static char *answer(agentwire_task_t *tasks, int n, bool delta, bool text)
{
    const char *removed[] = {"alice~job-999999/0/worker/0/0"};
    agentwire_resp_t m = {.version = delta ? 3 : 2,
                          .seq = 1000,
                          .epoch = delta ? "9f0c4e2a1b7d3355" : NULL,
                          .delta = delta,
                          .base_seq = 998,
                          .removed = removed,
                          .nremoved = delta ? 1 : 0,
                          .has_tasks = true,
                          .tasks = delta ? &tasks[n - 1] : tasks,
                          .ntasks = delta ? 1 : (size_t)n,
                          .heartbeat_ms = 5000};
    if (text) {
        size_t len;
        return agentwire_resp_dumps(&m, &len);
    }
    json_t *j = agentwire_resp_encode(&m);
    char *s = jtext_dumps(j);
    json_decref(j);
    return s;
}

static void run(int n, int reps)
{
    fixture_t *fx = xcalloc((size_t)n, sizeof(*fx));
    agentwire_task_t *tasks = xcalloc((size_t)n + 1, sizeof(*tasks));
    for (int i = 0; i < n; i++)
        fixture(&fx[i], i, &tasks[i]);
    tasks[n - 1].command = "true";
    for (int delta = 0; delta <= 1; delta++) {
        double t0 = cpu_us();
        size_t len = 0;
        for (int r = 0; r < reps; r++) {
            char *s = answer(tasks, n, delta, false);
            len = strlen(s);
            free(s);
        }
        double tree = (cpu_us() - t0) / reps;
        t0 = cpu_us();
        for (int r = 0; r < reps; r++)
            free(answer(tasks, n, delta, true));
        double server = (cpu_us() - t0) / reps;
        char *s = answer(tasks, n, delta, true);
        t0 = cpu_us();
        for (int r = 0; r < reps; r++) {
            agentwire_resp_t m;
            if (agentwire_resp_parse(s, len, &m, NULL) != PAI_OK)
                abort();
            agentwire_resp_clear(&m);
        }
        double agent = (cpu_us() - t0) / reps;
        free(s);
        printf("  T=%-3d %-28s %7zu bytes   server tree %7.1f us, text %7.1f us   agent parse "
               "%7.1f us\n",
               n, delta ? "delta (1 entered, 1 left)" : "whole set (version 2)", len, tree, server,
               agent);
    }
    free(tasks);
    free(fx);
}

/* A node of 8 GPUs as the simulated backend describes it, with topology. */
static agentwire_node_t node8(agentwire_gpu_t *gpus, int *topo)
{
    static char uuids[8][48];
    for (int g = 0; g < 8; g++) {
        snprintf(uuids[g], sizeof uuids[g], "GPU-00000000-0000-0000-0000-00000000000%d", g);
        gpus[g] = (agentwire_gpu_t){.index = g,
                                    .uuid = uuids[g],
                                    .model = "Simulated A100",
                                    .pci_bus = "00000000:07:00.0",
                                    .memory_mb = 81920,
                                    .healthy = true};
        for (int k = 0; k < 8; k++)
            topo[g * 8 + k] = g == k ? 0 : (g / 4 == k / 4 ? 1 : 2);
    }
    return (agentwire_node_t){.name = "node-0007",
                              .address = "10.0.0.7",
                              .boot_id = "5d2c9a0e-1f3b-4c6d-8e7f-0a1b2c3d4e5f",
                              .cpus = 64,
                              .memory_mb = 524288,
                              .gpu_model = "Simulated A100",
                              .runtime = "process",
                              .log_url = "http://10.0.0.7:41234",
                              .gpu_backend = "sim",
                              .has_gpus = true,
                              .gpus = gpus,
                              .ngpus = 8,
                              .topology = topo,
                              .health = {.present = true,
                                         .ok = true,
                                         .load1 = 3.5,
                                         .disk_free_mb = 51200,
                                         .gpus_healthy = 8,
                                         .tasks = 2}};
}

static void run_request(int reps)
{
    agentwire_gpu_t gpus[8];
    int topo[64];
    agentwire_report_t reports[] = {
        {.attempt_id = "alice~job-000001/0/worker/0/0",
         .state = AGENTWIRE_EXITED,
         .started_ms = 1700000000000,
         .finished_ms = 1700000000040},
        {.attempt_id = "alice~job-000002/0/worker/0/0",
         .state = AGENTWIRE_RUNNING,
         .pid = 4242,
         .started_ms = 1700000000010},
    };
    for (int v4 = 0; v4 <= 1; v4++) {
        agentwire_req_t m = {.version = v4 ? 4 : 3,
                             .node = node8(gpus, topo),
                             .known_seq = 1000,
                             .epoch = "9f0c4e2a1b7d3355",
                             .wait_ms = 25000,
                             .hold_acks = true,
                             .tasks = reports,
                             .ntasks = 2};
        agentwire_node_cache_t c = {0};
        buf_t b;
        buf_init(&b, SIZE_MAX / 2);
        if (agentwire_req_dump(&m, &c, &b) != PAI_OK)
            abort();
        agentwire_node_cache_ack(&c, v4 ? c.desc : NULL); /* the server named it */
        double t0 = cpu_us();
        for (int r = 0; r < reps; r++) {
            b.len = 0;
            if (agentwire_req_dump(&m, &c, &b) != PAI_OK)
                abort();
        }
        double agent = (cpu_us() - t0) / reps;
        t0 = cpu_us();
        for (int r = 0; r < reps; r++) {
            json_t *j = json_loadb(b.data, b.len, 0, NULL);
            agentwire_req_t q;
            if (!j || agentwire_req_decode(j, &q, NULL) != PAI_OK)
                abort();
            json_t *g = q.node.has_gpus ? agentwire_gpus_encode(q.node.gpus, q.node.ngpus) : NULL;
            json_decref(g);
            agentwire_req_clear(&q);
            json_decref(j);
        }
        double server = (cpu_us() - t0) / reps;
        printf("  %-44s %7zu bytes   server parse %7.1f us   agent write %7.1f us\n",
               v4 ? "description named by its digest (version 4)" : "description whole (version 3)",
               b.len, server, agent);
        buf_free(&b);
        agentwire_node_cache_free(&c);
    }
}

/* A one-task job as bench/e2e submits it (role "main", 2 GPUs, no port),
 * placed; and one with two roles of 4 and 2 instances, 2 port labels. */
static lc_job_t *job_of(int nroles)
{
    lc_job_t *j = xcalloc(1, sizeof(*j));
    j->name = xstrdup("admin~b00042");
    j->user_len = 5;
    j->vc = xstrdup("default");
    j->nroles = nroles;
    j->roles = xcalloc((size_t)nroles, sizeof(lc_role_t));
    static int ports[64];
    lc_place_t *rows[2];
    for (int r = 0; r < nroles; r++) {
        lc_role_t *role = &j->roles[r];
        role->name = xstrdup(nroles == 1 ? "main" : r ? "ps" : "worker");
        role->instances = nroles == 1 ? 1 : 4 - 2 * r;
        role->gpu = 2;
        role->cpu = 1;
        role->mem_mb = 256;
        role->shm_mb = 64;
        role->min_failed = 1;
        role->min_succeeded = -1;
        role->command = xstrdup("true");
        if (nroles > 1) {
            role->nports = 2;
            role->ports = xcalloc(2, sizeof(lc_port_spec_t));
            role->ports[0] = (lc_port_spec_t){xstrdup("ssh"), 1};
            role->ports[1] = (lc_port_spec_t){xstrdup("http"), 1};
        }
        rows[r] = xcalloc((size_t)role->instances, sizeof(lc_place_t));
        for (int i = 0; i < role->instances; i++) {
            ports[r * 8 + 2 * i] = 20000 + r * 8 + 2 * i;
            ports[r * 8 + 2 * i + 1] = 20001 + r * 8 + 2 * i;
            rows[r][i] = (lc_place_t){"node-0007",           "10.0.0.7",   3ull << (2 * i),
                                      &ports[r * 8 + 2 * i], role->nports, NULL};
        }
    }
    lc_effects_t fx = {0};
    lc_attempt_begin(j, (const lc_place_t *const *)rows, 1000, &fx);
    for (int r = 0; r < nroles; r++)
        free(rows[r]);
    return j;
}

/* The answer to a sync of one new task of j (role 0, instance 0), as the
 * server builds it in version v: the env (its variables, or the job's
 * placement) and the text. */
static char *env_answer(const lc_job_t *j, int v, size_t *len)
{
    agentwire_task_t t = {.attempt_id = "admin~b00042/0/main/0/0",
                          .job = j->name,
                          .user = j->name,
                          .user_len = j->user_len,
                          .role = j->roles[0].name,
                          .image = "localhost/pai-busybox:1",
                          .command = "true",
                          .cpu = 1,
                          .memory_mb = 256,
                          .shm_mb = 64,
                          .kill_grace_ms = 10000,
                          .has_task_uid = true,
                          .task_uid = 3};
    int gpus[] = {0, 1}, ssh[] = {20000}, http[] = {20001};
    t.gpus = gpus;
    t.ngpus = 2;
    agentwire_ports_t ports[] = {{"ssh", ssh, 1}, {"http", http, 1}};
    if (j->roles[0].nports == 2) { /* worker 0's, as its host lists them */
        t.ports = ports;
        t.nports = 2;
    }
    json_t *pairs = NULL;
    if (v >= AGENTWIRE_JOBENV_VERSION) {
        t.jobenv = engine_task_jobenv(j, 0, 0);
    } else {
        pairs = engine_task_env_pairs(j, 0, 0, &t.nenv);
        t.env = agentwire_env_split(json_string_value(pairs), t.nenv);
    }
    const char *acks[] = {"admin~b00041/0/main/0/0"};
    agentwire_resp_t m = {.version = v,
                          .seq = 1000,
                          .ack = acks,
                          .nack = 1,
                          .epoch = "9f0c4e2a1b7d3355",
                          .delta = true,
                          .base_seq = 998,
                          .has_tasks = true,
                          .tasks = &t,
                          .ntasks = 1,
                          .heartbeat_ms = 5000,
                          .node_desc = "9c3e0a51d2f47b18"};
    char *s = agentwire_resp_dumps(&m, len);
    free(t.env);
    agentwire_jobenv_free(t.jobenv);
    json_decref(pairs);
    return s;
}

static void run_env(int nroles, int reps)
{
    lc_job_t *j = job_of(nroles);
    static const int versions[] = {4, 5, 7};
    for (int k = 0; k < 3; k++) {
        int v = versions[k];
        size_t len = 0;
        double t0 = cpu_us();
        for (int r = 0; r < reps; r++)
            free(env_answer(j, v, &len));
        double server = (cpu_us() - t0) / reps;
        char *s = env_answer(j, v, &len);
        size_t nenv = 0;
        t0 = cpu_us();
        for (int r = 0; r < reps; r++) {
            agentwire_resp_t m;
            if (agentwire_resp_parse(s, len, &m, NULL) != PAI_OK || m.ntasks != 1)
                abort();
            nenv = m.tasks[0].nenv;
            agentwire_resp_clear(&m);
        }
        double agent = (cpu_us() - t0) / reps;
        if (getenv("BENCH_WIRE_SHOW"))
            printf("%s\n", s);
        free(s);
        printf("  %-9s version %d (%s)  %5zu bytes   server env + text %5.1f us   agent parse "
               "%5.1f us   (%zu variables)\n",
               nroles == 1 ? "one task" : "6 tasks", v,
               v == 4   ? "env     "
               : v == 5 ? "jobenv  "
                        : "compact",
               len, server, agent, nenv);
    }
    lc_job_free(j);
}

int main(void)
{
    util_alloc_init();
    log_set_level(LOG_WARN); /* not the placements' "state WAITING -> RUNNING" */
    if (!getenv("BENCH_WIRE_ENV_ONLY")) {
        printf("bench-wire: one sync answer, whole set against delta (mean of the runs)\n");
        run(8, 20000);
        run(64, 2000);
        printf("bench-wire: one sync request, 8 GPUs and 2 reports (mean of the runs)\n");
        run_request(20000);
    }
    printf("bench-wire: a delta answer with one new task and one ack, its env as variables "
           "(version 4) or as its job's placement (version 5, 6's bytes), its entry without "
           "what the agent derives (version 7; mean of the runs)\n");
    run_env(1, 20000);
    run_env(2, 20000);
    return 0;
}
