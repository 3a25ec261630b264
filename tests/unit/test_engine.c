/*
 * test_engine.c - the job engine's life cycle in-process, without HTTP:
 * submit -> bind -> sync -> exit, retries, stop, node loss, a restore over
 * the same store, a refused submission and the lock checks of engine_int.h.
 * The rig (fake clock, temporary SQLite store, agents played by building
 * their sync requests) is engine_fixture.h; scheduling and usage cases are
 * in test_engine_sched.c.
 *
 * The cluster is defined by the nodes (no HiveD config): every node is in
 * the VC "default".  Each test starts from an empty store.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_fixture.h"

/* ---------------------------------------------------------------- tests */

TEST(submitted_job_binds_runs_and_succeeds_on_exit_0)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 2};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    CHECK_INT_EQ(ndesired(&a), 0);
    CHECK(submit(&r, "hello", 1, 0));
    CHECK_STR_EQ(state_of(&r, "alice~hello"), "RUNNING"); /* bound by the submission's pass */
    /* stored with its placement by the submission's commit: sent at once */
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

static json_t *report_started(const char *id, const char *state, int64_t started_ms)
{
    json_t *t = report(id, state, 0);
    json_object_set_new(t, "started_ms", json_integer((json_int_t)started_ms));
    return t;
}

/* The attempt id of job name in a's desired set (malloc'ed; "" if none). */
static char *desired_of(const agent_t *a, const char *name)
{
    char *prefix = str_printf("alice~%s/", name), *id = NULL;
    for (size_t k = 0; k < ndesired(a); k++)
        if (str_has_prefix(desired_id(a, k), prefix))
            id = xstrdup(desired_id(a, k));
    free(prefix);
    return id ? id : xstrdup("");
}

/* A task's launch time is when its agent says it started (started_ms),
 * not when the report arrived (the agent holds a start up to
 * REPORT_START_MS to send it with the task's end), clamped to its
 * dispatch (the attempt's creation) and to the arrival; a short task whose
 * start and end come in one report was launched too; an agent that sends
 * no start time gets the arrival. */
TEST(launch_time_is_the_agents_start_clamped_to_dispatch_and_arrival)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 8};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    const char *names[] = {"early", "future", "past", "short", "old"};
    for (int i = 0; i < 5; i++)
        CHECK(submit(&r, names[i], 1, 0));
    tick(&r);
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 5);
    char *id[5];
    for (int i = 0; i < 5; i++)
        id[i] = desired_of(&a, names[i]);
    int64_t t0 = r.now;
    r.now += 1000; /* the report arrives 1 s after the dispatch */
    json_t *reps = json_array();
    json_array_append_new(reps, report_started(id[0], "running", t0 + 200));
    json_array_append_new(reps, report_started(id[1], "running", t0 + 60000));
    json_array_append_new(reps, report_started(id[2], "running", t0 - 60000));
    json_array_append_new(reps, report_started(id[3], "exited", t0 + 300));
    json_array_append_new(reps, report(id[4], "running", 0));
    json_decref(sync_agent(&r, &a, reps));
    CHECK_INT_EQ(int_of(&r, "alice~early", "appLaunchedTime"), t0 + 200);
    CHECK_INT_EQ(int_of(&r, "alice~early", "launchedTime"), t0 + 200);
    CHECK_INT_EQ(int_of(&r, "alice~future", "appLaunchedTime"), t0 + 1000); /* the arrival */
    CHECK_INT_EQ(int_of(&r, "alice~past", "appLaunchedTime"),
                 int_of(&r, "alice~past", "appCreatedTime")); /* the dispatch */
    CHECK_STR_EQ(state_of(&r, "alice~short"), "SUCCEEDED");
    CHECK_INT_EQ(int_of(&r, "alice~short", "appLaunchedTime"), t0 + 300);
    CHECK_INT_EQ(int_of(&r, "alice~old", "appLaunchedTime"), t0 + 1000);
    for (int i = 0; i < 5; i++)
        free(id[i]);
    agent_free(&a);
    rig_close(&r);
}

TEST(failing_exit_is_retried_to_jobRetryCount_then_fails)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
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
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
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

static void count_wake(void *ud, uint64_t ticket)
{
    (void)ticket;
    ++*(int *)ud;
}

/* An attempt whose end its node reported leaves the node's desired set
 * quietly: the long-poll that reports the end is held (its ack comes with
 * the next answer, hold_acks), not answered at once with nothing new (one
 * more sync per task end); the next answer, here for the next job, holds
 * the set without it, and so does a delta. */
TEST(an_end_its_node_reported_leaves_the_desired_set_without_answering_the_poll)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open");
        return;
    }
    char *id = submit_running(&r, &a, "short", 0);
    json_t *req = json_pack("{si so sI si sb so}", "version", 1, "node", node_json(&a), "known_seq",
                            (json_int_t)a.seq, "wait_ms", 20000, "hold_acks", 1, "tasks",
                            one(report(id, "exited", 0)));
    char *resp = NULL;
    engine_poll_t *held = NULL;
    int64_t wait_ms = 0;
    pai_error_t err = PAI_ERROR_INIT;
    int woken = 0;
    engine_waker_t w = {.fn = count_wake, .ud = &woken};
    CHECK(engine_agent_sync_begin(r.e, req, NULL, &resp, &held, &wait_ms, &err) == PAI_OK);
    for (int i = 0; i < 3 && held && !resp; i++) { /* past the flush of its changes */
        woken = 0;
        engine_poll_arm(held, &w);
        if (!woken)
            break; /* armed: held as a long-poll */
        CHECK(engine_poll_resume(held, &resp, &wait_ms, &err) == PAI_OK);
    }
    CHECK(resp == NULL && held != NULL && !woken); /* held: nothing new for the agent */
    CHECK_STR_EQ(state_of(&r, "alice~short"), "SUCCEEDED");
    engine_poll_free(held);
    free(resp);
    json_decref(req);
    char *next = submit_running(&r, &a, "next", 0);
    CHECK_INT_EQ(ndesired(&a), 1); /* the next job's alone */
    CHECK(strstr(desired_id(&a, 0), "next") != NULL);
    free(id);
    free(next);
    agent_free(&a);
    rig_close(&r);
}

TEST(stopped_running_job_leaves_the_desired_set_and_is_stopped_when_the_agent_reports_the_kill)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
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
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
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
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
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

/* The locking cases' rig: node-1 with one GPU, synced once.  False (and a
 * failed check) when the rig cannot open. */
static bool open_one_gpu_node(rig_t *r, agent_t *a)
{
    *a = (agent_t){.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(r, a)) {
        CHECK(!"rig_open_synced");
        return false;
    }
    return true;
}

/* A sync of a at its known seq is answered with its first task, whose
 * command is the job's own ("echo hello"). */
static void check_sent_with_its_commands(rig_t *r, agent_t *a)
{
    json_t *req = json_pack("{si so sI si s[]}", "version", 1, "node", node_json(a), "known_seq",
                            (json_int_t)a->seq, "wait_ms", 0, "tasks");
    char *text = NULL;
    CHECK(engine_agent_sync(r->e, req, NULL, &text, NULL) == PAI_OK);
    json_t *resp = answer_json(text);
    json_t *task = json_array_get(json_object_get(resp, "tasks"), 0);
    CHECK_STR_CONTAINS(json_string_value(json_object_get(task, "command")), "echo hello");
    json_decref(req);
    json_decref(resp);
}

/* Submit name (1 GPU) with a command over ENGINE_CMDS_KEEP_BYTES: were it
 * to wait, only its "jobcmd" record would hold it. */
static bool submit_big(rig_t *r, const char *name, int retries)
{
    char pad[ENGINE_CMDS_KEEP_BYTES + 2], *full = NULL;
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    char *cmd = str_printf("echo hello %s", pad);
    char *big = job_yaml_cmd(name, 1, retries, cmd);
    free(cmd);
    pai_error_t err = PAI_ERROR_INIT;
    pai_err_t rc = engine_submit(r->e, "alice", big, strlen(big), &full, &err);
    free(big);
    free(full);
    pai_error_free(&err);
    return rc == PAI_OK;
}

/* A job that waits keeps its commands in the store only, when they are
 * big; the flush that stores its placement reads them back (outside the
 * engine lock) before its task is sent.  (One placed by its submission's
 * own pass keeps them, and so does a waiting one whose commands are
 * small.)  Here "busy" holds the node's one GPU, so "cmds" waits until it
 * ends. */
static void end_the_holder(rig_t *r, agent_t *a, const char *id)
{
    json_t *ack = sync_agent(r, a, one(report(id, "exited", 0)));
    CHECK(acked(ack, id));
    json_decref(ack);
    CHECK_STR_EQ(state_of(r, "alice~busy"), "SUCCEEDED");
}

TEST(bound_job_is_sent_with_the_commands_the_flush_read_back)
{
    rig_t r;
    agent_t a;
    if (!open_one_gpu_node(&r, &a))
        return;
    char *busy = submit_running(&r, &a, "busy", 0);
    CHECK(submit_big(&r, "cmds", 0));
    CHECK_STR_EQ(state_of(&r, "alice~cmds"), "WAITING");
    end_the_holder(&r, &a, busy);
    tick(&r); /* the pass binds "cmds" */
    tick(&r); /* the flush reads its commands back */
    check_sent_with_its_commands(&r, &a);
    free(busy);
    agent_free(&a);
    rig_close(&r);
}

/* The same with the "jobcmd" record gone: the job cannot run, its task
 * fails with PodCreationPermanentError (-200) and nothing is sent. */
TEST(bound_job_whose_commands_are_missing_from_the_store_fails_with_200)
{
    rig_t r;
    agent_t a;
    if (!open_one_gpu_node(&r, &a))
        return;
    char *busy = submit_running(&r, &a, "busy", 0);
    CHECK(submit_big(&r, "nocmds", 3));
    CHECK_STR_EQ(state_of(&r, "alice~nocmds"), "WAITING");
    CHECK(store_del(r.st, "jobcmd", "alice~nocmds") == PAI_OK);
    end_the_holder(&r, &a, busy);
    tick(&r); /* the pass binds it, the flush finds no commands */
    tick(&r); /* and stores the failure */
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~nocmds"), "FAILED");
    CHECK_INT_EQ(int_of(&r, "alice~nocmds", "appExitCode"), -200);
    CHECK_INT_EQ(int_of(&r, "alice~nocmds", "retries"), 0); /* NEVER_RETRY */
    sync_quiet(&r, &a, NULL);
    CHECK_INT_EQ(ndesired(&a), 0);
    free(busy);
    agent_free(&a);
    rig_close(&r);
}

/* A job placed by its submission's own pass keeps the commands it was
 * submitted with: its task is sent without its "jobcmd" record read back
 * (here removed behind the engine's back to show it). */
TEST(job_placed_at_submission_is_sent_with_its_commands_without_a_read_back)
{
    rig_t r;
    agent_t a;
    if (!open_one_gpu_node(&r, &a))
        return;
    CHECK(submit(&r, "placed", 1, 0));
    CHECK_STR_EQ(state_of(&r, "alice~placed"), "RUNNING"); /* bound by the submission's pass */
    CHECK(store_del(r.st, "jobcmd", "alice~placed") == PAI_OK);
    tick(&r);
    check_sent_with_its_commands(&r, &a);
    CHECK_STR_EQ(state_of(&r, "alice~placed"), "RUNNING");
    agent_free(&a);
    rig_close(&r);
}

/* A job that waits with small commands keeps them in memory: its task
 * is sent without its "jobcmd" record read back (removed here behind the
 * engine's back to show it). */
TEST(waiting_job_with_small_commands_is_sent_with_them_without_a_read_back)
{
    rig_t r;
    agent_t a;
    if (!open_one_gpu_node(&r, &a))
        return;
    char *busy = submit_running(&r, &a, "busy", 0);
    CHECK(submit(&r, "small", 1, 0));
    CHECK_STR_EQ(state_of(&r, "alice~small"), "WAITING");
    CHECK(store_del(r.st, "jobcmd", "alice~small") == PAI_OK);
    end_the_holder(&r, &a, busy);
    tick(&r);
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~small"), "RUNNING");
    check_sent_with_its_commands(&r, &a);
    free(busy);
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

RUN_TESTS(submitted_job_binds_runs_and_succeeds_on_exit_0,
          launch_time_is_the_agents_start_clamped_to_dispatch_and_arrival,
          failing_exit_is_retried_to_jobRetryCount_then_fails,
          transient_exit_is_retried_once_the_backoff_passes_on_the_engine_clock,
          an_end_its_node_reported_leaves_the_desired_set_without_answering_the_poll,
          stopped_running_job_leaves_the_desired_set_and_is_stopped_when_the_agent_reports_the_kill,
          lost_node_fails_its_tasks_with_1001_and_the_job_retries_on_another_node,
          restarted_engine_restores_jobs_states_and_running_tasks_without_running_twice,
          bound_job_is_sent_with_the_commands_the_flush_read_back,
          bound_job_whose_commands_are_missing_from_the_store_fails_with_200,
          job_placed_at_submission_is_sent_with_its_commands_without_a_read_back,
          waiting_job_with_small_commands_is_sent_with_them_without_a_read_back,
          commands_rendered_over_the_limit_refuse_the_job_naming_the_role,
          lock_checks_abort_on_store_io_under_mu_a_locked_call_without_it_and_the_wrong_order)
