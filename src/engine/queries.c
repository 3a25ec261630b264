/*
 * queries.c - the read-only job operations behind the REST API: detail,
 * attempts, a task, a task's log source, the submitted config, events (the
 * list is in joblist.c).
 *
 * Invariants: a job by name that is pending (reserved, not yet admitted)
 * is not found; a compacted (finished) job is read back from the store
 * without the engine's lock held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "protocol/job.h"
#include "sched/sched.h"
#include "engine/codec.h"
#include "engine/engine_int.h"

/* A pai extension of a running job's summary and detail: its GPUs have
 * been idle since gpuIdleSince (docs/monitoring.md, "Utilization"); since
 * 0: not flagged. */
static void set_gpu_idle(json_t *o, int64_t since)
{
    if (!since || !json_is_object(o))
        return;
    json_object_set_new(o, "gpuIdle", json_true());
    json_object_set_new(o, "gpuIdleSince", json_integer((json_int_t)since));
}

/* ---------------------------------------------------------------- detail */

/* Run fn on the job's full form: in memory, or read back from the store
 * for a compacted (finished) job. */
/* What to render: an attempt, a task (role, index) and a task attempt. */
typedef struct {
    int a, index, ta;
    const char *role;
    bool idle; /* add the gpuIdle flag (a job in memory) */
} view_t;
typedef json_t *(*render_fn)(const lc_job_t *job, const view_t *v);

/* fn's view of a job's record text (decoded and rendered without mu), with
 * what memory knew beside it (mem; NULL: nothing, a compacted job): the
 * waiting reason it last computed and the idle figure, when they are about
 * the attempt the record shows. */
static pai_err_t from_record(engine_t *j, const char *name, const char *text,
                             const engine_snap_mem_t *mem, render_fn fn, const view_t *v,
                             json_t **out, pai_error_t *e)
{
    json_t *rec = json_loads(text, 0, NULL);
    lc_job_t *full = NULL;
    pai_err_t rc = rec ? codec_job_decode(rec, &full) : PAI_E_INTERNAL;
    json_decref(rec);
    if (rc != PAI_OK)
        return pai_error_set(e, PAI_E_INTERNAL, "the stored record of job %s is damaged", name);
    bool waiting = full->state == JOB_WAITING && !full->refused;
    if (waiting && mem && mem->reason && mem->reason_att == full->natts) {
        free(full->waiting_reason);
        full->waiting_reason = xstrdup(mem->reason);
    } else if (waiting && !full->waiting_reason)
        full->waiting_reason = xstrdup("waiting for resources (a scheduling pass is running: "
                                       "ask again for the precise reason)");
    *out = fn(full, v);
    if (*out && v->idle && mem && full->state == JOB_RUNNING && mem->idle_att == full->natts)
        set_gpu_idle(*out, engine_gpu_idle_due(j, mem->idle_since, engine_now_ms(j)));
    lc_job_free(full);
    return PAI_OK;
}

/* fn's view of a compacted job, read back from the store without mu. */
static pai_err_t from_store(engine_t *j, const char *name, render_fn fn, const view_t *v,
                            json_t **out, pai_error_t *e)
{
    char *text = NULL;
    engine_assert_unlocked(j);
    pai_err_t rc = store_get(j->st, "job", name, &text);
    if (rc == PAI_E_NOT_FOUND) /* deleted meanwhile */
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    if (rc != PAI_OK)
        return pai_error_set(e, rc, "cannot read job %s from the store: %s", name, pai_err_msg(rc));
    rc = from_record(j, name, text, NULL, fn, v, out, e);
    free(text);
    return rc;
}

/* How long a read waits for mu before it answers from the snapshots. */
#define READ_LOCK_WAIT_MS 2

/* fn's view of job name (*out NULL when fn finds nothing: the caller says
 * what was not found).  From memory under mu when mu comes within
 * READ_LOCK_WAIT_MS; else (a scheduling pass or a storm holds it) from the
 * job's last committed record (snaps.c), without mu: every published job
 * has one from its publication (submission, restore) on. */
static pai_err_t with_job(engine_t *j, const char *name, render_fn fn, const view_t *v,
                          json_t **out, pai_error_t *e)
{
    *out = NULL;
    if (!engine_lock_within(j, READ_LOCK_WAIT_MS)) {
        char *text = NULL;
        engine_snap_mem_t mem;
        engine_snap_t s = engine_snap_get(j, name, &text, &mem);
        pai_err_t rc = PAI_OK;
        if (s == ENGINE_SNAP_TEXT)
            rc = from_record(j, name, text, &mem, fn, v, out, e);
        else if (s == ENGINE_SNAP_STORED)
            rc = from_store(j, name, fn, v, out, e);
        free(text);
        free(mem.reason);
        if (s == ENGINE_SNAP_NONE) /* every published job has one: a pending job is not found */
            return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
        return rc;
    }
    lc_job_t *job = engine_map_get(j, name);
    bool found = job && !job->pending, stored = found && job->compacted;
    if (found && !stored) {
        engine_refresh_reason(j, job);
        *out = fn(job, v);
        if (v->idle && *out)
            set_gpu_idle(*out, engine_gpu_idle_since(j, job, engine_now_ms(j)));
    }
    engine_unlock(j);
    if (!found)
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    return stored ? from_store(j, name, fn, v, out, e) : PAI_OK;
}

static json_t *r_detail(const lc_job_t *job, const view_t *v)
{
    return codec_render_detail(job, v->a);
}

pai_err_t engine_detail(engine_t *j, const char *name, int attempt, json_t **out, pai_error_t *e)
{
    view_t v = {.a = attempt, .idle = true};
    pai_err_t rc = with_job(j, name, r_detail, &v, out, e);
    if (rc == PAI_OK && !*out) /* OpenPAI's text for an unknown attempt */
        return pai_error_set(e, PAI_E_NO_JOB, "JobAttemptId %d is not found in %s.", attempt, name);
    return rc;
}

static json_t *r_attempts(const lc_job_t *job, const view_t *v)
{
    if (v->a >= 0)
        return codec_render_attempt(job, v->a);
    json_t *arr = json_array();
    for (int k = job->atts ? job->natts - 1 : -1; k >= 0; k--)
        json_array_append_new(arr, codec_render_attempt(job, k));
    return arr;
}

pai_err_t engine_attempts(engine_t *j, const char *name, int attempt, json_t **out, pai_error_t *e)
{
    view_t v = {.a = attempt};
    pai_err_t rc = with_job(j, name, r_attempts, &v, out, e);
    if (rc == PAI_OK && !*out) /* OpenPAI's text (models/v2/job-attempt.js) */
        return pai_error_set(e, PAI_E_NO_JOB,
                             "Job attempt not found in job %s with jobAttemptIndex %d", name,
                             attempt);
    return rc;
}

static int role_of(const lc_job_t *job, const char *role)
{
    for (int r = 0; role && r < job->nroles; r++)
        if (strcmp(job->roles[r].name, role) == 0)
            return r;
    return -1;
}

static json_t *r_task(const lc_job_t *job, const view_t *v)
{
    return codec_render_task(job, v->a, role_of(job, v->role), v->index);
}

pai_err_t engine_task(engine_t *j, const char *name, int attempt, const char *role, int index,
                      json_t **out, pai_error_t *e)
{
    view_t v = {.a = attempt, .index = index, .role = role};
    pai_err_t rc = with_job(j, name, r_task, &v, out, e);
    if (rc == PAI_OK && !*out)
        return pai_error_set(e, PAI_E_NO_TASK, PAI_MSG_NO_TASK, role, index);
    return rc;
}

static json_t *r_log_source(const lc_job_t *job, const view_t *v)
{
    int r = role_of(job, v->role);
    lc_task_attempt_t *t = lc_find(job, v->a, r, v->index, v->ta);
    if (!t || !t->node)
        return NULL;
    char *id = codec_attempt_id(job, v->a, r, v->index, v->ta);
    json_t *o = xjson_pack("{ss ss}", "node", t->node, "id", id ? id : "");
    free(id);
    return o;
}

pai_err_t engine_task_log_source(engine_t *j, const char *name, int attempt, const char *role,
                                 int index, int task_attempt, char **log_url, char **attempt_id,
                                 char **log_key, pai_error_t *e)
{
    *log_url = *attempt_id = *log_key = NULL;
    json_t *o = NULL;
    view_t v = {.a = attempt, .index = index, .ta = task_attempt, .role = role};
    pai_err_t rc = with_job(j, name, r_log_source, &v, &o, e);
    if (rc != PAI_OK)
        return rc;
    if (!o) /* no such task attempt, or it never ran on a node */
        return pai_error_set(e, PAI_E_NO_TASK_LOG, PAI_MSG_NO_TASK_LOG);
    engine_lock(j);
    engine_node_t *n = nodes_find(j->nodes, json_string_value(json_object_get(o, "node")));
    if (n && n->log_url) {
        *log_url = xstrdup(n->log_url);
        *attempt_id = xstrdup(json_string_value(json_object_get(o, "id")));
        *log_key = *n->cred.log_key ? xstrdup(n->cred.log_key) : NULL;
    }
    engine_unlock(j);
    json_decref(o);
    /* a node that serves no logs */
    return *log_url ? PAI_OK : pai_error_set(e, PAI_E_NO_TASK_LOG, PAI_MSG_NO_TASK_LOG);
}

pai_err_t engine_ssh_record(engine_t *j, const char *name, json_t **out, pai_error_t *e)
{
    *out = NULL;
    bool owner;
    if (!engine_owner_check(j, name, "", 0, &owner))
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    char *text = NULL;
    engine_assert_unlocked(j);
    pai_err_t rc = store_get(j->st, "jobssh", name, &text);
    if (rc == PAI_E_NOT_FOUND)
        return pai_error_set(e, PAI_E_NO_JOB_SSH_INFO, PAI_MSG_NO_JOB_SSH, name);
    if (rc != PAI_OK)
        return pai_error_set(e, rc, "cannot read the ssh info of job %s: %s", name,
                             pai_err_msg(rc));
    *out = json_loads(text, 0, NULL);
    free(text);
    return *out ? PAI_OK : pai_error_set(e, PAI_E_NO_JOB_SSH_INFO, PAI_MSG_NO_JOB_SSH, name);
}

/* The job's stored protocol, parsed (*spec; NULL with the error set). */
static pai_err_t stored_spec(engine_t *j, const char *name, job_spec_t **spec, pai_error_t *e)
{
    *spec = NULL;
    bool owner;
    if (!engine_owner_check(j, name, "", 0, &owner))
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    char *text = NULL;
    engine_assert_unlocked(j);
    pai_err_t rc = store_get(j->st, "jobcfg", name, &text);
    if (rc == PAI_E_NOT_FOUND)
        return pai_error_set(e, PAI_E_NO_JOB_CONFIG, PAI_MSG_NO_JOB_CONFIG, name);
    if (rc != PAI_OK)
        return pai_error_set(e, rc, "cannot read the config of job %s: %s", name, pai_err_msg(rc));
    json_t *cfg = json_loads(text, 0, NULL);
    free(text);
    const char *yaml = json_string_value(json_object_get(cfg, "yaml"));
    rc = yaml ? job_parse(yaml, strlen(yaml), NULL, spec, NULL) : PAI_E_INTERNAL;
    json_decref(cfg);
    if (rc != PAI_OK) /* a damaged record: no config to show */
        return pai_error_set(e, PAI_E_NO_JOB_CONFIG, PAI_MSG_NO_JOB_CONFIG, name);
    return PAI_OK;
}

pai_err_t engine_config_yaml(engine_t *j, const char *name, char **out, pai_error_t *e)
{
    *out = NULL;
    job_spec_t *spec = NULL;
    pai_err_t rc = stored_spec(j, name, &spec, e);
    if (rc != PAI_OK)
        return rc;
    rc = job_to_yaml(spec, true, out);
    job_spec_free(spec);
    if (rc != PAI_OK)
        pai_error_set(e, rc, "cannot render the config of job %s: %s", name, pai_err_msg(rc));
    return rc;
}

pai_err_t engine_job_extras(engine_t *j, const char *name, json_t **out, pai_error_t *e)
{
    *out = NULL;
    job_spec_t *spec = NULL;
    pai_err_t rc = stored_spec(j, name, &spec, e);
    if (rc == PAI_OK) {
        *out = json_deep_copy(spec->extras.json);
        job_spec_free(spec);
    }
    return rc;
}

/* Milliseconds since the epoch as "2020-09-29T09:46:42.000Z" (the spec's format). */
static json_t *iso_time(json_int_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40], out[48];
    if (!gmtime_r(&secs, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    snprintf(out, sizeof out, "%s.%03dZ", buf, (int)(ms % 1000));
    return json_string(out);
}

/* An event as the spec's JobEvents item: ISO timestamps, and the task fields
 * it requires.  pai's events are about the job, so those say no task. */
static json_t *event_out(const json_t *e)
{
    json_t *o = json_deep_copy(e);
    json_object_set_new(o, "firstTimestamp",
                        iso_time(json_integer_value(json_object_get(e, "firstTimestamp"))));
    json_object_set_new(o, "lastTimestamp",
                        iso_time(json_integer_value(json_object_get(e, "lastTimestamp"))));
    json_object_set_new(o, "podUid", json_string(""));
    json_object_set_new(o, "taskroleName", json_string(""));
    json_object_set_new(o, "taskName", json_string(""));
    json_object_set_new(o, "taskIndex", json_integer(-1));
    json_object_set_new(o, "sourceHost", json_null());
    return o;
}

/* The answer's data from events (in number order): newest first, of type
 * (NULL: any), within the retention. */
static void add_events(engine_t *j, json_t *data, const json_t *ev, const char *type)
{
    for (size_t i = json_array_size(ev); i-- > 0;) {
        json_t *one = json_array_get(ev, i);
        if (type && strcmp(json_string_value(json_object_get(one, "type")), type) != 0)
            continue;
        if (engine_event_shown(j, one))
            json_array_append_new(data, event_out(one));
    }
}

/* A waiting job's live FailedScheduling event (mu held; new reference), or
 * NULL: its reason is not stored per job (memory with many waiting jobs). */
static json_t *waiting_event(engine_t *j, lc_job_t *job, const char *type)
{
    engine_assert_locked(j);
    if (job->state != JOB_WAITING || (type && strcmp(type, "Warning") != 0))
        return NULL;
    engine_refresh_reason(j, job);
    json_t *w =
        xjson_pack("{ss ss ss ss ss sI sI si ss}", "uid", job->name, "frameworkName", job->name,
                   "type", "Warning", "reason", "FailedScheduling", "message",
                   job->waiting_reason ? job->waiting_reason : "", "firstTimestamp",
                   (json_int_t)job->submit_ms, "lastTimestamp", (json_int_t)engine_now_ms(j),
                   "count", 1, "sourceComponent", "pai-scheduler");
    json_t *o = event_out(w);
    json_decref(w);
    return o;
}

/* Events live in memory from a job's ev_base on (those before a restart,
 * and a finished job's, are in the store only): copied under mu, the rest
 * read without it. */
pai_err_t engine_events(engine_t *j, const char *name, const char *type, json_t **out,
                        pai_error_t *e)
{
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    bool found = job && !job->pending;
    json_t *live = NULL, *ev = NULL;
    uint32_t below = 0;
    if (found) {
        live = job->compacted ? NULL : waiting_event(j, job, type);
        ev = engine_events_json(job);
        below = job->compacted ? UINT32_MAX : job->ev_base;
    }
    engine_unlock(j);
    if (!found)
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    if (below > 0 && !(ev = engine_events_read(j, name, ev, below))) {
        json_decref(live);
        return pai_error_set(e, PAI_E_UNAVAILABLE, "the events of job %s cannot be read now", name);
    }
    json_t *data = json_array();
    if (live)
        json_array_append_new(data, live);
    add_events(j, data, ev, type);
    json_decref(ev);
    *out = xjson_pack("{sI so}", "totalCount", (json_int_t)json_array_size(data), "data", data);
    return PAI_OK;
}
