/*
 * test_engine_sched.c - the engine's scheduling and accounting in-process,
 * on the rig of engine_fixture.h: a lazy preemption's downgrade and a
 * withinOneCell constraint (both across a restart, over a HiveD config),
 * GPU usage (held versus used, clipped to a period) and the idle-GPU flag.
 *
 * Each test starts from an empty store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "engine_fixture.h"

/* ---------------------------------------------------------------- scheduling */

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

/* extras.hivedScheduler.taskRoles.ROLE.withinOneCell reaches the scheduler:
 * two 2-GPU tasks within one 2-GPU node can never fit and are refused at
 * submission with the reason (without the constraint they would span both
 * nodes); two 1-GPU tasks within one node run, and again after a restart. */
static pai_err_t submit_within(rig_t *r, const char *name, int gpus, pai_error_t *err)
{
    char *yaml = str_printf("protocolVersion: 2\nname: %s\ntype: job\n"
                            "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
                            "taskRoles:\n  worker:\n    instances: 2\n    dockerImage: img\n"
                            "    resourcePerInstance: {gpu: %d, cpu: 1, memoryMB: 256}\n"
                            "    commands:\n      - echo hello\n"
                            "defaults:\n  virtualCluster: default\n"
                            "extras:\n  hivedScheduler:\n    jobPriorityClass: oppo\n"
                            "    taskRoles:\n      worker: {withinOneCell: sim-NODE}\n",
                            name, gpus);
    char *full = NULL;
    pai_err_t rc = engine_submit(r->e, "alice", yaml, strlen(yaml), &full, err);
    free(yaml);
    free(full);
    return rc;
}

TEST(within_one_cell_from_the_job_protocol_refuses_a_group_no_cell_can_hold)
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
    pai_error_t err = PAI_ERROR_INIT;
    CHECK(submit_within(&r, "never", 2, &err) != PAI_OK);
    CHECK_STR_CONTAINS(pai_error_msg(&err), "within one sim-NODE cell (withinOneCell)");
    CHECK_STR_CONTAINS(pai_error_msg(&err), "no sim-NODE cell can ever hold it");
    pai_error_free(&err);
    CHECK_STR_EQ(state_of(&r, "alice~never"), "(none)");
    CHECK(submit_within(&r, "tight", 1, &err) == PAI_OK);
    pai_error_free(&err);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~tight"), "RUNNING");
    CHECK(rig_restart(&r));
    sync_quiet(&r, &a1, NULL);
    sync_quiet(&r, &a2, NULL);
    tick(&r);
    CHECK(submit_within(&r, "never2", 2, &err) != PAI_OK);
    pai_error_free(&err);
    agent_free(&a1);
    agent_free(&a2);
    rig_close(&r);
}

/* The invariant checker in the engine: a bookkeeping error (the test hook)
 * is found by the check after the bind decision (sched_check: true) or by
 * the sampled check after the pass (the default), counted in the metric;
 * sampled checks run at most once per interval; a clean run finds none. */
static uint64_t violations_metric(rig_t *r, uint64_t *runs)
{
    buf_t b;
    buf_init(&b, 1u << 20);
    engine_metrics(r->e, &b);
    const char *v = strstr(buf_str(&b), "\npai_scheduler_invariant_violations_total ");
    const char *c = strstr(buf_str(&b), "\npai_scheduler_invariant_checks_total ");
    uint64_t n = v ? strtoull(strchr(v + 1, ' ') + 1, NULL, 10) : 999;
    *runs = c ? strtoull(strchr(c + 1, ' ') + 1, NULL, 10) : 999;
    buf_free(&b);
    return n;
}

static bool checked_rig(rig_t *r, engine_sched_check_t check, bool corrupt, agent_t *a)
{
    if (!rig_open_hived(r, two_nodes_one_guaranteed))
        return false;
    r->check = check, r->corrupt = corrupt;
    if (!rig_restart(r))
        return false;
    sync_quiet(r, a, NULL);
    return true;
}

TEST(scheduler_invariant_violations_are_counted_in_the_engine)
{
    for (int mode = 0; mode < 4; mode++) {
        /* every + corrupt, sample + corrupt, sample clean, off + corrupt */
        static const engine_sched_check_t check[] = {ENGINE_CHECK_EVERY, ENGINE_CHECK_SAMPLE,
                                                     ENGINE_CHECK_SAMPLE, ENGINE_CHECK_OFF};
        bool corrupt = mode != 2;
        rig_t r;
        agent_t a1 = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
        if (!checked_rig(&r, check[mode], corrupt, &a1)) {
            CHECK(!"checked_rig");
            return;
        }
        uint64_t runs, before = violations_metric(&r, &runs);
        CHECK_INT_EQ((long long)before, 0);
        CHECK_INT_EQ((long long)runs, mode == 1 || mode == 2 ? 1 : 0); /* at the first pass */
        r.now += 61000; /* the next pass is due a sampled check */
        sync_quiet(&r, &a1, NULL);
        CHECK(submit_hived(&r, "one", "test", false));
        tick(&r);
        CHECK_STR_EQ(state_of(&r, "alice~one"), "RUNNING");
        uint64_t after = violations_metric(&r, &runs);
        if (mode == 0 || mode == 1)
            CHECK(after >= 1);
        else
            CHECK_INT_EQ((long long)after, 0);
        CHECK_INT_EQ((long long)runs, mode == 1 || mode == 2 ? 2 : 0);
        if (mode == 1) { /* the next pass within the interval: no check; after it: one */
            r.now += 1000;
            CHECK(submit_hived(&r, "two", "oppo", false));
            tick(&r);
            violations_metric(&r, &runs);
            CHECK_INT_EQ((long long)runs, 2);
            r.now += 61000;
            sync_quiet(&r, &a1, NULL);
            CHECK(submit_hived(&r, "three", "oppo", false));
            tick(&r);
            CHECK(violations_metric(&r, &runs) > after);
            CHECK_INT_EQ((long long)runs, 3);
        }
        agent_free(&a1);
        rig_close(&r);
    }
}

/* A VC with a rack-level and a node-level cell; racks of two 2-GPU nodes. */
static const char rack_and_node[] =
    "physicalCluster:\n"
    "  skuTypes:\n"
    "    sim: {gpu: 1, cpu: 8, memory: 32768Mi}\n"
    "  cellTypes:\n"
    "    sim-NODE: {childCellType: sim, childCellNumber: 2, isNodeLevel: true}\n"
    "    RACK: {childCellType: sim-NODE, childCellNumber: 2}\n"
    "  physicalCells:\n"
    "  - {cellType: RACK, cellChildren: [{cellAddress: node-1}, {cellAddress: node-2}]}\n"
    "  - {cellType: RACK, cellChildren: [{cellAddress: node-3}, {cellAddress: node-4}]}\n"
    "virtualClusters:\n"
    "  default:\n"
    "    virtualCells:\n"
    "    - {cellType: RACK, cellNumber: 1}\n"
    "    - {cellType: RACK.sim-NODE, cellNumber: 1}\n";

static char *task_cell(rig_t *r, const char *job)
{
    engine_lock(r->e);
    lc_job_t *j = engine_map_get(r->e, job);
    lc_task_attempt_t *ta = j ? lc_task_current(j, 0, 0) : NULL;
    char *rec = xstrdup(ta && ta->cell ? ta->cell : "");
    char now[160];
    sched_task_cell(r->e->sched, job, "worker", 0, now, sizeof now);
    if (strcmp(rec, now) != 0)
        fprintf(stderr, "  %s: recorded cell '%s', the scheduler's '%s'\n", job, rec, now);
    engine_unlock(r->e);
    return rec;
}

/* The job record keeps the cell its task was bound in; a restart binds the
 * VC's cell to that very cell again (the job on one node of the VC's rack
 * cell stays in the rack cell; rebuilt from where it runs it would take the
 * VC's node-level cell). */
TEST(restart_binds_the_recorded_cell_again)
{
    rig_t r;
    agent_t a[4] = {{.name = "node-1", .address = "10.0.0.1", .ngpus = 2},
                    {.name = "node-2", .address = "10.0.0.2", .ngpus = 2},
                    {.name = "node-3", .address = "10.0.0.3", .ngpus = 2},
                    {.name = "node-4", .address = "10.0.0.4", .ngpus = 2}};
    if (!rig_open_hived(&r, rack_and_node)) {
        CHECK(!"rig_open_hived");
        return;
    }
    for (int i = 0; i < 4; i++)
        sync_quiet(&r, &a[i], NULL);
    CHECK(submit_hived(&r, "x", "test", false));
    CHECK_STR_EQ(state_of(&r, "alice~x"), "RUNNING");
    char *before = task_cell(&r, "alice~x");
    CHECK_STR_EQ(before, "RACK@node-1");
    tick(&r); /* the record reaches the store */
    CHECK(rig_restart(&r));
    for (int i = 0; i < 4; i++)
        sync_quiet(&r, &a[i], NULL);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~x"), "RUNNING");
    CHECK(!sched_oppo(&r, "alice~x"));
    char *after = task_cell(&r, "alice~x");
    CHECK_STR_EQ(after, before);
    free(before);
    free(after);
    for (int i = 0; i < 4; i++)
        agent_free(&a[i]);
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
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
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
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
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

/* ---------------------------------------------------------------- GPU health */

static json_t *node_view(rig_t *r, const char *name)
{
    json_t *all = engine_nodes_json(r->e), *found = NULL, *n;
    size_t i;
    json_array_foreach(json_object_get(all, "items"), i, n)
    {
        if (strcmp(json_string_value(json_object_get(json_object_get(n, "metadata"), "name")),
                   name) == 0)
            found = json_incref(json_object_get(n, "pai"));
    }
    json_decref(all);
    return found ? found : json_object();
}

static char *metrics_text(rig_t *r)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    engine_metrics(r->e, &b);
    return buf_take(&b);
}

/* A GPU the agent reports unhealthy makes its node's cell bad (HiveD: a cell
 * with a bad cell inside is bad): no new work lands there, the running task
 * keeps running, the views and metrics show the GPU; healthy again when the
 * agent says so, and the waiting job is placed.  Kept across a restart. */
TEST(bad_gpu_makes_its_nodes_cell_bad_until_it_recovers)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open");
        return;
    }
    char *id = submit_running(&r, &a, "first", 0);
    a.bad = 2; /* GPU 1, the free one, goes bad */
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    json_t *v = node_view(&r, "node-1");
    CHECK(json_integer_value(json_array_get(json_object_get(v, "badGpus"), 0)) == 1);
    CHECK(json_is_false(json_object_get(v, "schedulable")));
    json_decref(v);
    char *m = metrics_text(&r);
    CHECK(strstr(m, "pai_node_gpu_bad{node=\"node-1\",minor_number=\"1\"} 1\n") != NULL);
    CHECK(strstr(m, "pai_cluster_gpus{use=\"unhealthy\"} 2\n") != NULL);
    free(m);
    CHECK(submit(&r, "second", 1, 0));
    tick(&r);
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK(strcmp(state_of(&r, "alice~first"), "RUNNING") == 0);
    CHECK(strcmp(state_of(&r, "alice~second"), "WAITING") == 0);
    CHECK(ndesired(&a) == 1); /* the running task is left alone */
    /* a restart reads the bad GPU back from the node's record */
    CHECK(rig_restart(&r));
    v = node_view(&r, "node-1");
    CHECK(json_array_size(json_object_get(v, "badGpus")) == 1);
    json_decref(v);
    a.bad = 0;
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    tick(&r);
    sync_quiet(&r, &a, one(report(id, "running", 0)));
    CHECK(strcmp(state_of(&r, "alice~second"), "RUNNING") == 0);
    v = node_view(&r, "node-1");
    CHECK(json_array_size(json_object_get(v, "badGpus")) == 0);
    CHECK(json_is_true(json_object_get(v, "schedulable")));
    json_decref(v);
    free(id);
    agent_free(&a);
    rig_close(&r);
}

/* Over a HiveD config: the VC's one guaranteed node-level cell is not bound
 * to the node with a bad GPU (a bad cell is not allocated while a healthy
 * one can take the virtual cell): the guaranteed job runs on the other. */
TEST(guaranteed_job_avoids_the_cell_with_a_bad_gpu)
{
    rig_t r;
    agent_t a1 = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2, .bad = 1};
    agent_t a2 = {.name = "node-2", .address = "10.0.0.2", .ngpus = 2};
    if (!rig_open_hived(&r, two_nodes_one_guaranteed)) {
        CHECK(!"rig_open_hived");
        return;
    }
    sync_quiet(&r, &a1, NULL);
    sync_quiet(&r, &a2, NULL);
    CHECK(submit_hived(&r, "prod", "prod", false));
    CHECK_STR_EQ(state_of(&r, "alice~prod"), "RUNNING");
    tick(&r);
    sync_quiet(&r, &a1, NULL);
    sync_quiet(&r, &a2, NULL);
    CHECK(ndesired(&a1) == 0 && ndesired(&a2) == 1);
    agent_free(&a1);
    agent_free(&a2);
    rig_close(&r);
}

RUN_TESTS(lazily_preempted_job_stays_opportunistic_across_a_restart,
          within_one_cell_from_the_job_protocol_refuses_a_group_no_cell_can_hold,
          scheduler_invariant_violations_are_counted_in_the_engine,
          restart_binds_the_recorded_cell_again, usage_span_is_clipped_to_the_period,
          usage_held_versus_used_counts_syncs_and_survives_a_restart,
          job_whose_gpus_stay_idle_is_flagged_until_they_are_used,
          bad_gpu_makes_its_nodes_cell_bad_until_it_recovers,
          guaranteed_job_avoids_the_cell_with_a_bad_gpu)
