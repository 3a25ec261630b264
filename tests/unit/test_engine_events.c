/*
 * test_engine_events.c - job events are durable (src/engine/events.c): they
 * survive a restart for running and finished jobs, a job keeps its last
 * events_per_job in memory and in the store, events past the retention are
 * pruned from the store and no longer shown, and deleting a job deletes
 * them.  The rig is engine_fixture.h (fake clock, SQLite store, no threads).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_fixture.h"

/* The job's events as the API answers them (newest first): "reason,reason". */
static const char *reasons(rig_t *r, const char *job)
{
    static char buf[512];
    json_t *out = NULL;
    buf[0] = '\0';
    if (engine_events(r->e, job, NULL, &out, NULL) != PAI_OK)
        return "(error)";
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(out, "data"), i, ev)
    {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, "%s%s", i ? "," : "",
                 json_string_value(json_object_get(ev, "reason")));
    }
    json_decref(out);
    return buf;
}

static int count_cb(void *ud, const char *key, int64_t seq, const char *json)
{
    (void)key, (void)seq, (void)json;
    (*(int *)ud)++;
    return 0;
}

/* How many event records of job the store holds. */
static int stored(rig_t *r, const char *job)
{
    char prefix[128];
    int n = 0;
    snprintf(prefix, sizeof prefix, "%s/", job);
    CHECK(store_scan_prefix(r->st, "event", prefix, count_cb, &n) == PAI_OK);
    return n;
}

/* A rig with one synced agent "node-1" of ngpus GPUs; false (a failed
 * check) when it did not open.  close_node frees both. */
static bool open_node(rig_t *r, agent_t *a, int ngpus)
{
    *a = (agent_t){.name = "node-1", .address = "10.0.0.1", .ngpus = ngpus};
    if (!rig_open_synced(r, a)) {
        CHECK(!"rig_open");
        return false;
    }
    return true;
}

static void close_node(rig_t *r, agent_t *a)
{
    agent_free(a);
    rig_close(r);
}

TEST(events_of_running_and_finished_jobs_survive_a_restart)
{
    rig_t r;
    agent_t a;
    if (!open_node(&r, &a, 2))
        return;
    char *run = submit_running(&r, &a, "run", 0);
    char *done = submit_running(&r, &a, "done", 0);
    sync_quiet(&r, &a, one(report(done, "exited", 0)));
    tick(&r);
    CHECK_STR_EQ(reasons(&r, "alice~run"), "Scheduled");
    CHECK_STR_EQ(reasons(&r, "alice~done"), "Completed,Scheduled"); /* from the store */
    CHECK_INT_EQ(stored(&r, "alice~done"), 2);

    CHECK(rig_restart(&r));
    CHECK_STR_EQ(reasons(&r, "alice~run"), "Scheduled");
    CHECK_STR_EQ(reasons(&r, "alice~done"), "Completed,Scheduled");
    /* a restored job's events go on from where they were */
    sync_quiet(&r, &a, one(report(run, "running", 0)));
    sync_quiet(&r, &a, one(report(run, "exited", 0)));
    tick(&r);
    CHECK_STR_EQ(reasons(&r, "alice~run"), "Completed,Scheduled");
    CHECK(rig_restart(&r));
    CHECK_STR_EQ(reasons(&r, "alice~run"), "Completed,Scheduled");
    CHECK_INT_EQ(stored(&r, "alice~run"), 2);

    /* deleting a job deletes its events */
    CHECK(engine_delete(r.e, "alice~run", NULL) == PAI_OK);
    CHECK_INT_EQ(stored(&r, "alice~run"), 0);
    CHECK_INT_EQ(stored(&r, "alice~done"), 2);
    free(run);
    free(done);
    close_node(&r, &a);
}

/* An event's row has the keys, order and bytes the pack format that made
 * events before wrote ({ss ss ss ss ss sI sI si ss}, dumped by jansson). */
TEST(an_events_row_keeps_the_bytes_of_the_packed_event)
{
    rig_t r;
    agent_t a;
    if (!open_node(&r, &a, 2))
        return;
    char *run = submit_running(&r, &a, "run", 0);
    char *text = NULL;
    CHECK(store_get(r.st, "event", "alice~run/0000000000", &text) == PAI_OK);
    json_t *e = text ? json_loads(text, 0, NULL) : NULL;
    CHECK(e != NULL);
    if (e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        json_int_t t0 = json_integer_value(json_object_get(e, "firstTimestamp"));
        json_t *want = xjson_pack("{ss ss ss ss ss sI sI si ss}", "uid", "alice~run",
                                  "frameworkName", "alice~run", "type", type, "reason", reason,
                                  "message", msg, "firstTimestamp", t0, "lastTimestamp", t0,
                                  "count", 1, "sourceComponent", "pai-server");
        char *w = json_dumps(want, JSON_COMPACT);
        CHECK_STR_EQ(text, w);
        CHECK_STR_EQ(reason, "Scheduled");
        free(w);
        json_decref(want);
        json_decref(e);
    }
    free(text);
    free(run);
    close_node(&r, &a);
}

TEST(a_job_keeps_its_last_events_per_job_in_memory_and_in_the_store)
{
    rig_t r;
    agent_t a;
    if (!open_node(&r, &a, 1))
        return;
    r.events_per_job = 3;
    CHECK(rig_restart(&r));
    /* exit 1 retried 3 times: Scheduled, Retry, Scheduled, Retry, ... */
    char *id = submit_running(&r, &a, "flaky", 3);
    for (int k = 0; k < 3; k++) {
        sync_quiet(&r, &a, one(report(id, "exited", 1)));
        free(id);
        id = xstrdup(desired_id(&a, 0));
        sync_quiet(&r, &a, one(report(id, "running", 0)));
        tick(&r);
        CHECK_INT_EQ(stored(&r, "alice~flaky"), 3);
    }
    CHECK_STR_EQ(reasons(&r, "alice~flaky"), "Scheduled,Retry,Scheduled");
    sync_quiet(&r, &a, one(report(id, "exited", 1)));
    tick(&r);
    CHECK_STR_EQ(state_of(&r, "alice~flaky"), "FAILED");
    CHECK_STR_EQ(reasons(&r, "alice~flaky"), "Completed,Scheduled,Retry");
    CHECK_INT_EQ(stored(&r, "alice~flaky"), 3);
    CHECK(rig_restart(&r));
    CHECK_STR_EQ(reasons(&r, "alice~flaky"), "Completed,Scheduled,Retry");
    free(id);
    close_node(&r, &a);
}

TEST(events_past_the_retention_are_pruned_from_the_store_and_not_shown)
{
    rig_t r;
    agent_t a;
    if (!open_node(&r, &a, 2))
        return;
    r.event_retention_ms = 86400000; /* one day */
    CHECK(rig_restart(&r));
    sync_quiet(&r, &a, NULL);
    char *old = submit_running(&r, &a, "old", 0);
    sync_quiet(&r, &a, one(report(old, "exited", 0)));
    tick(&r);
    CHECK_INT_EQ(stored(&r, "alice~old"), 2);
    CHECK_INT_EQ(engine_events_prune(r.e, 0, NULL), 0); /* nothing is a day old yet */
    r.now += 2 * 86400000LL;
    sync_quiet(&r, &a, NULL);
    char *fresh = submit_running(&r, &a, "fresh", 0);
    tick(&r);
    CHECK_STR_EQ(reasons(&r, "alice~old"), ""); /* past the retention: not shown */
    CHECK_INT_EQ(engine_events_prune(r.e, 0, NULL), 2);
    CHECK_INT_EQ(stored(&r, "alice~old"), 0);
    CHECK_INT_EQ(stored(&r, "alice~fresh"), 1);
    CHECK_STR_EQ(reasons(&r, "alice~fresh"), "Scheduled");
    CHECK_STR_EQ(state_of(&r, "alice~old"), "SUCCEEDED"); /* the job itself stays */
    /* a backlog goes 1000 per batch: the timer does one per tick */
    static store_op_t ops[2500];
    static char keys[2500][32];
    for (int k = 0; k < 2500; k++) {
        snprintf(keys[k], sizeof keys[k], "alice~gone/%010d", k);
        ops[k] = (store_op_t){STORE_OP_PUT, "event", keys[k], T0_MS, "{}"};
    }
    CHECK(store_batch(r.st, ops, 2500) == PAI_OK);
    bool more = false;
    CHECK_INT_EQ(engine_events_prune(r.e, 1, &more), 1000);
    CHECK(more);
    CHECK_INT_EQ(engine_events_prune(r.e, 0, &more), 1500);
    CHECK(!more);
    CHECK_INT_EQ(stored(&r, "alice~gone"), 0);
    free(old);
    free(fresh);
    close_node(&r, &a);
}

/* The job of the engine by name (the test's thread holds nothing). */
static lc_job_t *job_of(rig_t *r, const char *name)
{
    engine_lock(r->e);
    lc_job_t *job = engine_map_get(r->e, name);
    engine_unlock(r->e);
    return job;
}

TEST(restore_reads_no_events_but_a_query_merges_the_stored_and_the_new_ones)
{
    rig_t r;
    agent_t a;
    if (!open_node(&r, &a, 2))
        return;
    char *run = submit_running(&r, &a, "run", 0);
    tick(&r);
    CHECK(rig_restart(&r));
    lc_job_t *job = job_of(&r, "alice~run");
    CHECK(job && job->events == NULL && job->ev_base == 1 && job->ev_next == 1);
    CHECK_STR_EQ(reasons(&r, "alice~run"), "Scheduled"); /* read from the store */
    CHECK(engine_set_execution(r.e, "alice~run", true, NULL) == PAI_OK);
    CHECK_STR_EQ(reasons(&r, "alice~run"), "StopRequested,Scheduled"); /* memory + store */
    tick(&r);
    CHECK_INT_EQ(stored(&r, "alice~run"), 2);

    /* a record written before evNext existed: its events are read at restore */
    char *text = NULL;
    CHECK(store_get(r.st, "job", "alice~run", &text) == PAI_OK);
    json_t *rec = json_loads(text ? text : "{}", 0, NULL);
    free(text);
    json_object_del(rec, "evNext");
    text = json_dumps(rec, JSON_COMPACT);
    CHECK(store_put(r.st, "job", "alice~run", json_integer_value(json_object_get(rec, "seq")),
                    text) == PAI_OK);
    free(text);
    json_decref(rec);
    CHECK(rig_restart(&r));
    job = job_of(&r, "alice~run");
    json_t *mem = job ? engine_events_json(job) : NULL;
    CHECK(job && json_array_size(mem) == 2 && job->ev_base == 0 && job->ev_next == 2);
    json_decref(mem);
    CHECK_STR_EQ(reasons(&r, "alice~run"), "StopRequested,Scheduled");
    free(run);
    close_node(&r, &a);
}

/* The packed event's bytes for these values (what a row was before events
 * were kept as fields). */
static char *packed(const char *type, const char *reason, const char *msg, json_int_t first,
                    json_int_t last, int count)
{
    json_t *want =
        xjson_pack("{ss ss ss ss ss sI sI si ss}", "uid", "alice~run", "frameworkName", "alice~run",
                   "type", type, "reason", reason, "message", msg, "firstTimestamp", first,
                   "lastTimestamp", last, "count", count, "sourceComponent", "pai-server");
    char *w = json_dumps(want, JSON_COMPACT);
    json_decref(want);
    return w;
}

/* Events kept as fields write the rows the jansson objects wrote: a
 * repeated one counted up, strings that need escapes, a message that is not
 * UTF-8 (each byte above 0x7f as '?', and compared as such: the same bytes
 * again count up); and the API's array has the same objects. */
TEST(events_as_fields_write_the_rows_the_objects_wrote)
{
    rig_t r;
    agent_t a;
    if (!open_node(&r, &a, 2))
        return;
    char *run = submit_running(&r, &a, "run", 0);
    lc_job_t *job = job_of(&r, "alice~run");
    CHECK(job != NULL);
    if (job) {
        engine_lock(r.e);
        const char *esc = "tab\t \"quote\" \\ caf\xc3\xa9 \x01 end";
        engine_event(r.e, job, "Warning", "Odd", esc, 1000);
        engine_event(r.e, job, "Warning", "Odd", esc, 2000);
        engine_event(r.e, job, "Normal", "Bad", "bytes \xff\xfe end", 3000);
        engine_event(r.e, job, "Normal", "Bad", "bytes \xff\xfe end", 3500);
        engine_batch_t b = {0};
        uint32_t was = engine_events_encode(r.e, job, &b);
        CHECK_INT_EQ(b.n, 2);
        char *w1 = packed("Warning", "Odd", esc, 1000, 2000, 2);
        char *w2 = packed("Normal", "Bad", "bytes ?? end", 3000, 3500, 2);
        if (b.n == 2) {
            CHECK_STR_EQ(b.ops[0].json, w1);
            CHECK_STR_EQ(b.ops[1].json, w2);
            CHECK_INT_EQ(b.ops[0].seq, 2000);
            CHECK_STR_EQ(b.ops[1].key, "alice~run/0000000002");
        }
        json_t *arr = engine_events_json(job);
        CHECK_INT_EQ(json_array_size(arr), 3);
        char *a1 = json_dumps(json_array_get(arr, 1), JSON_COMPACT);
        char *a2 = json_dumps(json_array_get(arr, 2), JSON_COMPACT);
        CHECK_STR_EQ(a1, w1);
        CHECK_STR_EQ(a2, w2);
        free(a1), free(a2), free(w1), free(w2);
        json_decref(arr);
        engine_events_unflushed(job, was);
        engine_batch_free(&b);
        engine_unlock(r.e);
    }
    free(run);
    close_node(&r, &a);
}

RUN_TESTS(events_of_running_and_finished_jobs_survive_a_restart,
          events_as_fields_write_the_rows_the_objects_wrote,
          an_events_row_keeps_the_bytes_of_the_packed_event,
          a_job_keeps_its_last_events_per_job_in_memory_and_in_the_store,
          events_past_the_retention_are_pruned_from_the_store_and_not_shown,
          restore_reads_no_events_but_a_query_merges_the_stored_and_the_new_ones)
