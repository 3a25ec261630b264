/*
 * codec.c - stored records and REST views of jobs (see codec.h).
 *
 * Field names of the views are OpenPAI's (rest-server's job detail and
 * job-attempt responses), so that its clients read them unchanged.
 */
#include "engine/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "protocol/exitspec.h"
#include "protocol/job.h"

const char *codec_prio_name(int prio)
{
    return job_priority_name((job_priority_t)prio);
}

int codec_prio_parse(const char *s)
{
    job_priority_t p;
    return job_priority_parse(s, &p) ? (int)p : -1;
}

/* ---------------------------------------------------------------- encode */

static json_t *jint_or_null(bool has, int64_t v)
{
    return has ? json_integer(v) : json_null();
}

static json_t *jstr_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *encode_role(const lc_role_t *r)
{
    json_t *ports = json_array();
    for (int p = 0; p < r->nports; p++)
        json_array_append_new(ports, xjson_pack("[si]", r->ports[p].label, r->ports[p].count));
    /* command and image live in the "jobcmd" record (codec_cmds_encode). */
    json_t *o =
        xjson_pack("{ss si si si si si si si so so so}", "name", r->name, "instances", r->instances,
                   "gpu", r->gpu, "cpu", r->cpu, "mem", r->mem_mb, "shm", r->shm_mb, "minFailed",
                   r->min_failed, "minSucceeded", r->min_succeeded, "ports", ports, "sku",
                   jstr_or_null(r->sku), "pinned", jstr_or_null(r->pinned));
    /* Only when set: other records stay as they were. */
    if (r->group)
        json_object_set_new(o, "group", json_string(r->group));
    if (r->within)
        json_object_set_new(o, "within", json_string(r->within));
    return o;
}

static json_t *encode_task_attempt(const lc_task_attempt_t *ta)
{
    json_t *ports = json_array();
    for (int p = 0; p < ta->nports; p++)
        json_array_append_new(ports, json_integer(ta->ports[p]));
    json_t *o =
        xjson_pack("{si si so so so sI so sI sI sI so}", "i", ta->index, "s", ta->state, "exit",
                   jint_or_null(ta->has_exit, ta->exit_code), "node", jstr_or_null(ta->node), "ip",
                   jstr_or_null(ta->ip), "gpus", (json_int_t)ta->gpus, "ports", ports, "c",
                   (json_int_t)ta->created_ms, "l", (json_int_t)ta->launched_ms, "f",
                   (json_int_t)ta->completed_ms, "diag", jstr_or_null(ta->diag));
    /* GPU-milliseconds used (usage accounting); absent in older records. */
    if (ta->used_gpu_ms)
        json_object_set_new(o, "u", json_integer((json_int_t)ta->used_gpu_ms));
    /* The scheduler's cell (restored exactly); absent in older records. */
    if (ta->cell)
        json_object_set_new(o, "cell", json_string(ta->cell));
    return o;
}

static json_t *encode_attempt(const lc_job_t *job, const lc_attempt_t *a)
{
    json_t *roles = json_array();
    for (int r = 0; r < job->nroles; r++) {
        json_t *tasks = json_array();
        for (int i = 0; i < job->roles[r].instances; i++) {
            const lc_task_t *t = &a->tasks[r][i];
            json_t *atts = json_array();
            for (int k = 0; k < t->natts; k++)
                json_array_append_new(atts, encode_task_attempt(&t->atts[k]));
            json_array_append_new(tasks,
                                  xjson_pack("{si so}", "retries", t->retries, "atts", atts));
        }
        json_array_append_new(roles, tasks);
    }
    return xjson_pack("{si si sb sI sI sI so so si so so so}", "index", a->index, "state", a->state,
                      "completing", a->completing, "c", (json_int_t)a->created_ms, "l",
                      (json_int_t)a->launched_ms, "f", (json_int_t)a->completed_ms, "exit",
                      jint_or_null(a->has_exit, a->exit_code), "triggerRole",
                      jstr_or_null(a->trigger_role), "triggerIndex", a->trigger_index, "triggerMsg",
                      jstr_or_null(a->trigger_msg), "diag", jstr_or_null(a->diag), "tasks", roles);
}

/* The record in parts, in its key order: head ("v" .. "tags"), "roles",
 * "attempts", tail ("waitingReason" .. "notify"), joined as one tree by
 * codec_job_encode.  codec_job_text (codec_text.c) writes the same bytes
 * without a tree: a change of the record here is made there too
 * (test_codec_text compares them). */
static json_t *encode_head(const lc_job_t *job)
{
    json_t *tags = json_array();
    for (int t = 0; t < job->ntags; t++)
        json_array_append_new(tags, json_string(job->tags[t]));
    return xjson_pack("{si ss ss sI si si sb sb si si si si sI sI sI so si si so}", "v",
                      JOBS_RECORD_VERSION, "name", job->name, "vc", job->vc, "seq",
                      (json_int_t)job->seq, "state", job->state, "prio", job->prio, "stop",
                      job->stop_requested, "gang", job->gang, "retries", job->retries, "accRetries",
                      job->acc_retries, "jobRetryCount", job->job_retry_count, "taskRetryCount",
                      job->task_retry_count, "submitMs", (json_int_t)job->submit_ms, "launchMs",
                      (json_int_t)job->launch_ms, "completeMs", (json_int_t)job->complete_ms,
                      "exit", jint_or_null(job->has_exit, job->exit_code), "totalTasks",
                      (int)job->total_tasks, "totalGpus", (int)job->total_gpus, "tags", tags);
}

static json_t *encode_roles(const lc_job_t *job)
{
    json_t *roles = json_array();
    for (int r = 0; r < job->nroles; r++)
        json_array_append_new(roles, encode_role(&job->roles[r]));
    return roles;
}

static json_t *encode_attempts(const lc_job_t *job)
{
    json_t *atts = json_array();
    for (int k = 0; job->atts && k < job->natts; k++)
        json_array_append_new(atts, encode_attempt(job, &job->atts[k]));
    return atts;
}

static json_t *encode_tail(const lc_job_t *job)
{
    json_t *rec = xjson_pack("{so sI}", "waitingReason", jstr_or_null(job->waiting_reason),
                             "retryAtMs", (json_int_t)job->retry_at_ms);
    /* The number of its next event (events.c): the stored ones are below. */
    json_object_set_new(rec, "evNext", json_integer(job->ev_next));
    /* Only when set: records of jobs without lazy preemption stay as they were. */
    if (job->lazy)
        json_object_set_new(rec, "lazy", json_true());
    if (job->oppo)
        json_object_set_new(rec, "oppo", json_true());
    if (job->task_uid >= 0)
        json_object_set_new(rec, "taskUid", json_integer(job->task_uid));
    if (job->notify)
        json_object_set_new(rec, "notify",
                            xjson_pack("{si si si ss}", "email", job->notify->email, "hook",
                                       job->notify->hook, "sent", job->notify->sent, "url",
                                       job->notify->url));
    return rec;
}

json_t *codec_job_encode(const lc_job_t *job)
{
    json_t *rec = encode_head(job), *tail = encode_tail(job);
    json_object_set_new(rec, "roles", encode_roles(job));
    json_object_set_new(rec, "attempts", encode_attempts(job));
    json_object_update(rec, tail); /* appended in tail's order */
    json_decref(tail);
    return rec;
}

json_t *codec_cmds_encode(const lc_job_t *job)
{
    json_t *roles = json_array();
    for (int r = 0; r < job->nroles; r++)
        json_array_append_new(roles, xjson_pack("{so so so so}", "command",
                                                jstr_or_null(job->roles[r].command), "image",
                                                jstr_or_null(job->roles[r].image), "imageAuth",
                                                jstr_or_null(job->roles[r].image_auth), "mounts",
                                                jstr_or_null(job->roles[r].mounts)));
    return xjson_pack("{si so}", "v", JOBS_RECORD_VERSION, "roles", roles);
}

bool codec_cmds_decode(const json_t *rec, lc_job_t *job)
{
    const json_t *roles = json_object_get(rec, "roles");
    if (json_array_size(roles) != (size_t)job->nroles || !job->roles)
        return false;
    for (int r = 0; r < job->nroles; r++) {
        const json_t *o = json_array_get(roles, (size_t)r);
        const char *c = json_string_value(json_object_get(o, "command"));
        const char *i = json_string_value(json_object_get(o, "image"));
        if (!job->roles[r].command)
            job->roles[r].command = xstrdup(c ? c : "");
        if (!job->roles[r].image && i)
            job->roles[r].image = xstrdup(i);
        const char *a = json_string_value(json_object_get(o, "imageAuth"));
        if (!job->roles[r].image_auth && a)
            job->roles[r].image_auth = xstrdup(a);
        const char *m = json_string_value(json_object_get(o, "mounts"));
        if (!job->roles[r].mounts && m)
            job->roles[r].mounts = xstrdup(m);
    }
    return true;
}

/* ---------------------------------------------------------------- decode */

static char *jdup(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? xstrdup(s) : NULL;
}

static int jint(const json_t *o, const char *key)
{
    return (int)json_integer_value(json_object_get(o, key));
}

static int64_t jlong(const json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

static bool jexit(const json_t *o, const char *key, int *code)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return false;
    *code = (int)json_integer_value(v);
    return true;
}

static void decode_role(const json_t *o, lc_role_t *r)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    r->name = lc_str_dup(name ? name : "role");
    r->instances = jint(o, "instances");
    r->gpu = jint(o, "gpu");
    r->cpu = jint(o, "cpu");
    r->mem_mb = jint(o, "mem");
    r->shm_mb = jint(o, "shm");
    r->min_failed = jint(o, "minFailed");
    r->min_succeeded = jint(o, "minSucceeded");
    r->command = jdup(o, "command");
    r->image = jdup(o, "image");
    r->sku = jdup(o, "sku");
    r->group = jdup(o, "group");
    r->within = jdup(o, "within");
    r->pinned = jdup(o, "pinned");
    const json_t *ports = json_object_get(o, "ports");
    r->nports = (int)json_array_size(ports);
    r->ports = r->nports ? xcalloc((size_t)r->nports, sizeof(*r->ports)) : NULL;
    for (int p = 0; p < r->nports; p++) {
        const json_t *e = json_array_get(ports, (size_t)p);
        const char *l = json_string_value(json_array_get(e, 0));
        r->ports[p].label = lc_str_dup(l ? l : "port");
        r->ports[p].count = (int)json_integer_value(json_array_get(e, 1));
    }
}

static void decode_task_attempt(const json_t *o, lc_task_attempt_t *ta)
{
    ta->index = jint(o, "i");
    ta->state = (uint8_t)jint(o, "s");
    ta->has_exit = jexit(o, "exit", &ta->exit_code);
    ta->node = jdup(o, "node");
    ta->cell = jdup(o, "cell");
    ta->ip = jdup(o, "ip");
    ta->gpus = (uint64_t)jlong(o, "gpus");
    const json_t *ports = json_object_get(o, "ports");
    ta->nports = (int)json_array_size(ports);
    ta->ports = ta->nports ? xcalloc((size_t)ta->nports, sizeof(int)) : NULL;
    for (int p = 0; p < ta->nports; p++)
        ta->ports[p] = (int)json_integer_value(json_array_get(ports, (size_t)p));
    ta->created_ms = jlong(o, "c");
    ta->launched_ms = jlong(o, "l");
    ta->completed_ms = jlong(o, "f");
    ta->used_gpu_ms = jlong(o, "u");
    ta->diag = jdup(o, "diag");
    ta->durable = 2; /* read from the store */
    ta->sent = true; /* it may have been, before a restart */
}

static pai_err_t decode_attempt(const json_t *o, const lc_job_t *job, lc_attempt_t *a)
{
    a->index = jint(o, "index");
    a->state = (uint8_t)jint(o, "state");
    a->completing = json_is_true(json_object_get(o, "completing"));
    a->created_ms = jlong(o, "c");
    a->launched_ms = jlong(o, "l");
    a->completed_ms = jlong(o, "f");
    a->has_exit = jexit(o, "exit", &a->exit_code);
    a->trigger_role = jdup(o, "triggerRole");
    a->trigger_index = jint(o, "triggerIndex");
    a->trigger_msg = jdup(o, "triggerMsg");
    a->diag = jdup(o, "diag");
    const json_t *roles = json_object_get(o, "tasks");
    if (json_array_size(roles) != (size_t)job->nroles)
        return PAI_E_INVALID;
    a->tasks = xcalloc((size_t)job->nroles, sizeof(*a->tasks));
    for (int r = 0; r < job->nroles; r++) {
        const json_t *tasks = json_array_get(roles, (size_t)r);
        if (json_array_size(tasks) != (size_t)job->roles[r].instances)
            return PAI_E_INVALID;
        a->tasks[r] = xcalloc((size_t)job->roles[r].instances, sizeof(lc_task_t));
        for (int i = 0; i < job->roles[r].instances; i++) {
            const json_t *t = json_array_get(tasks, (size_t)i);
            const json_t *atts = json_object_get(t, "atts");
            lc_task_t *tk = &a->tasks[r][i];
            tk->retries = jint(t, "retries");
            tk->natts = (int)json_array_size(atts);
            tk->atts = xcalloc((size_t)tk->natts + 1, sizeof(*tk->atts));
            for (int k = 0; k < tk->natts; k++)
                decode_task_attempt(json_array_get(atts, (size_t)k), &tk->atts[k]);
        }
    }
    return PAI_OK;
}

static void decode_summary(const json_t *rec, lc_job_t *job)
{
    job->name = jdup(rec, "name");
    const char *tilde = strchr(job->name, '~');
    job->user_len = (uint16_t)(tilde ? tilde - job->name : 0);
    job->vc = lc_str_dup(json_string_value(json_object_get(rec, "vc")));
    job->seq = jlong(rec, "seq");
    job->state = (uint8_t)jint(rec, "state");
    job->prio = (uint8_t)jint(rec, "prio");
    job->stop_requested = json_is_true(json_object_get(rec, "stop"));
    job->gang = json_is_true(json_object_get(rec, "gang"));
    job->lazy = json_is_true(json_object_get(rec, "lazy"));
    job->oppo = json_is_true(json_object_get(rec, "oppo"));
    json_t *tu = json_object_get(rec, "taskUid");
    job->task_uid =
        json_is_integer(tu) && json_integer_value(tu) >= 0 && json_integer_value(tu) <= INT32_MAX
            ? (int32_t)json_integer_value(tu)
            : -1;
    job->retries = jint(rec, "retries");
    job->acc_retries = jint(rec, "accRetries");
    job->job_retry_count = jint(rec, "jobRetryCount");
    job->task_retry_count = jint(rec, "taskRetryCount");
    job->submit_ms = jlong(rec, "submitMs");
    job->launch_ms = jlong(rec, "launchMs");
    job->complete_ms = jlong(rec, "completeMs");
    job->has_exit = jexit(rec, "exit", &job->exit_code);
    job->total_tasks = (uint32_t)jint(rec, "totalTasks");
    job->total_gpus = (uint32_t)jint(rec, "totalGpus");
    job->waiting_reason = jdup(rec, "waitingReason");
    job->retry_at_ms = jlong(rec, "retryAtMs");
    const json_t *ev_next = json_object_get(rec, "evNext");
    job->ev_next = job->ev_clean = job->ev_base = (uint32_t)json_integer_value(ev_next);
    job->ev_unknown = !json_is_integer(ev_next);
    const json_t *nt = json_object_get(rec, "notify");
    if (json_is_object(nt)) {
        const char *url = json_string_value(json_object_get(nt, "url"));
        size_t ulen = url ? strlen(url) : 0;
        job->notify = xcalloc(1, sizeof(*job->notify) + ulen + 1);
        job->notify->email = (uint8_t)jint(nt, "email");
        job->notify->hook = (uint8_t)jint(nt, "hook");
        job->notify->sent = (uint8_t)jint(nt, "sent");
        if (ulen)
            memcpy(job->notify->url, url, ulen);
    }
}

pai_err_t codec_job_decode(const json_t *rec, lc_job_t **out)
{
    *out = NULL;
    if (!json_is_object(rec) || jint(rec, "v") != JOBS_RECORD_VERSION ||
        !json_is_string(json_object_get(rec, "name")) ||
        !json_is_string(json_object_get(rec, "vc")))
        return PAI_E_INVALID;
    lc_job_t *job = xcalloc(1, sizeof(*job));
    decode_summary(rec, job);
    const json_t *tags = json_object_get(rec, "tags"), *roles = json_object_get(rec, "roles");
    const json_t *atts = json_object_get(rec, "attempts");
    for (size_t t = 0; t < json_array_size(tags); t++) {
        const char *s = json_string_value(json_array_get(tags, t));
        if (s)
            lc_add_tag(job, s);
    }
    job->nroles = (int)json_array_size(roles);
    job->roles = xcalloc(job->nroles ? (size_t)job->nroles : 1, sizeof(lc_role_t));
    for (int r = 0; r < job->nroles; r++)
        decode_role(json_array_get(roles, (size_t)r), &job->roles[r]);
    job->natts = (int)json_array_size(atts);
    if (job->natts) {
        job->atts = xcalloc((size_t)job->natts, sizeof(lc_attempt_t));
        for (int k = 0; k < job->natts; k++)
            if (decode_attempt(json_array_get(atts, (size_t)k), job, &job->atts[k]) != PAI_OK) {
                lc_job_free(job);
                return PAI_E_INVALID;
            }
    }
    *out = job;
    return PAI_OK;
}

/* ---------------------------------------------------------------- views */

static const char *sub_state(lc_job_state_t s)
{
    switch (s) {
    case JOB_WAITING:
        return "AttemptCreationPending";
    case JOB_RUNNING:
        return "AttemptRunning";
    case JOB_STOPPING:
        return "AttemptDeletionPending";
    default:
        return "Completed";
    }
}

static json_t *ms_or_null(int64_t ms)
{
    return ms ? json_integer(ms) : json_null();
}

static json_t *exit_spec_json(bool has, int code)
{
    return has ? exitspec_to_json(exitspec_for(code)) : json_null();
}

json_t *codec_render_summary(const lc_job_t *job)
{
    json_t *tags = json_array();
    for (int t = 0; t < job->ntags; t++)
        json_array_append_new(tags, json_string(job->tags[t]));
    int user_retries = job->acc_retries, platform = job->retries - job->acc_retries;
    return xjson_pack(
        "{ss ss ss% ss ss so si s{si si si} sI sI so so so ss si si si ss so}", "debugId",
        job->name, "name", job->name + job->user_len + 1, "username", job->name,
        (size_t)job->user_len, "state", lc_job_state_name(job->state), "subState",
        sub_state(job->state), "tags", tags, "retries", job->retries, "retryDetails", "user",
        user_retries, "platform", platform, "resource", 0, "submissionTime",
        (json_int_t)job->submit_ms, "createdTime", (json_int_t)job->submit_ms, "launchedTime",
        ms_or_null(job->launch_ms), "completedTime", ms_or_null(job->complete_ms), "appExitCode",
        job->has_exit ? json_integer(job->exit_code) : json_null(), "virtualCluster", job->vc,
        "totalGpuNumber", (int)job->total_gpus, "totalTaskNumber", (int)job->total_tasks,
        "totalTaskRoleNumber", job->nroles, "jobPriority", codec_prio_name(job->prio),
        "executionType", json_string(job->stop_requested ? "STOP" : "START"));
}

/* Fix the username (json_pack cannot take a length-bounded prefix twice). */
static void set_username(json_t *o, const lc_job_t *job)
{
    json_object_set_new(o, "username", json_stringn(job->name, job->user_len));
}

static json_t *ports_json(const lc_role_t *r, const lc_task_attempt_t *ta)
{
    json_t *o = json_object();
    int k = 0;
    for (int p = 0; p < r->nports; p++) {
        char buf[256] = "";
        size_t len = 0;
        for (int c = 0; c < r->ports[p].count && k < ta->nports; c++, k++)
            len += (size_t)snprintf(buf + len, sizeof buf - len > 0 ? sizeof buf - len : 0, "%s%d",
                                    c ? "," : "", ta->ports[k]);
        if (len >= sizeof buf)
            buf[sizeof buf - 1] = '\0';
        json_object_set_new(o, r->ports[p].label, json_string(buf));
    }
    return o;
}

static json_t *gpus_json(uint64_t mask)
{
    if (!mask)
        return json_null();
    char buf[256] = "";
    size_t len = 0;
    for (int g = 0; g < 64; g++)
        if (mask & (1ull << g))
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", len ? "," : "", g);
    return json_string(buf);
}

static json_t *log_path(const lc_job_t *job, int ja, const lc_role_t *r, int i, int ta)
{
    char *p = str_printf("/api/v2/jobs/%s/attempts/%d/taskRoles/%s/taskIndex/%d/attempts/%d/logs",
                         job->name, ja, r->name, i, ta);
    json_t *s = json_string(p ? p : "");
    free(p);
    return s;
}

static json_t *task_attempt_json(const lc_job_t *job, int ja, int role, int i,
                                 const lc_task_attempt_t *ta)
{
    const lc_role_t *r = &job->roles[role];
    char *uid = codec_attempt_id(job, ja, role, i, ta->index);
    json_t *o = xjson_pack(
        "{si ss so so so ss so so so so so so so so so}", "attemptId", ta->index, "attemptState",
        lc_task_state_name(ta->state), "currentAttemptCreatedTime", ms_or_null(ta->created_ms),
        "currentAttemptLaunchedTime", ms_or_null(ta->launched_ms), "currentAttemptCompletedTime",
        ms_or_null(ta->completed_ms), "containerId", uid ? uid : "", "containerIp",
        jstr_or_null(ta->ip), "containerNodeName", jstr_or_null(ta->node), "containerPorts",
        ports_json(r, ta), "containerGpus", gpus_json(ta->gpus), "containerLog",
        log_path(job, ja, r, i, ta->index), "containerExitCode",
        jint_or_null(ta->has_exit, ta->exit_code), "containerExitSpec",
        exit_spec_json(ta->has_exit, ta->exit_code), "containerExitDiagnostics",
        jstr_or_null(ta->diag), "taskState", json_string(lc_task_state_name(ta->state)));
    free(uid);
    return o;
}

static json_t *task_status_json(const lc_job_t *job, const lc_attempt_t *a, int role, int i)
{
    const lc_task_t *t = &a->tasks[role][i];
    const lc_task_attempt_t *ta = &t->atts[t->natts - 1];
    json_t *o = task_attempt_json(job, a->index, role, i, ta);
    json_object_set_new(o, "taskIndex", json_integer(i));
    json_object_set_new(o, "taskUid",
                        json_object_get(o, "containerId")
                            ? json_copy(json_object_get(o, "containerId"))
                            : json_null());
    json_object_set_new(o, "retries", json_integer(t->retries));
    json_object_set_new(o, "accountableRetries", json_integer(t->retries));
    json_object_set_new(o, "createdTime", ms_or_null(t->atts[0].created_ms));
    json_object_set_new(o, "launchedTime", ms_or_null(ta->launched_ms));
    json_object_set_new(o, "completedTime", ms_or_null(ta->completed_ms));
    return o;
}

static json_t *task_roles_json(const lc_job_t *job, const lc_attempt_t *a)
{
    json_t *roles = json_object();
    for (int r = 0; r < job->nroles; r++) {
        json_t *st = json_array();
        for (int i = 0; a && i < job->roles[r].instances; i++)
            json_array_append_new(st, task_status_json(job, a, r, i));
        if (!a)
            for (int i = 0; i < job->roles[r].instances; i++)
                json_array_append_new(st, xjson_pack("{si ss sn si}", "taskIndex", i, "taskState",
                                                     "WAITING", "containerExitCode", "retries", 0));
        json_object_set_new(roles, job->roles[r].name,
                            xjson_pack("{s{ss} so}", "taskRoleStatus", "name", job->roles[r].name,
                                       "taskStatuses", st));
    }
    return roles;
}

static const char *attempt_state_name(const lc_job_t *job, const lc_attempt_t *a)
{
    if (!a)
        return "WAITING";
    if (a->completed_ms || a->completing)
        return lc_job_state_name(a->state);
    return lc_job_state_name(a == &job->atts[job->natts - 1] ? job->state : a->state);
}

json_t *codec_render_detail(const lc_job_t *job, int attempt)
{
    const lc_attempt_t *a = NULL;
    if (job->atts && job->natts > 0) {
        if (attempt < 0)
            attempt = job->natts - 1;
        if (attempt >= job->natts)
            return NULL;
        a = &job->atts[attempt];
    } else if (attempt > 0) {
        return NULL;
    }
    json_t *summary = codec_render_summary(job);
    json_t *status = json_deep_copy(summary);
    set_username(status, job);
    json_object_del(status, "tags");
    json_object_del(status, "name");
    json_object_set_new(status, "attemptId", json_integer(a ? a->index : 0));
    json_object_set_new(status, "attemptState", json_string(attempt_state_name(job, a)));
    json_object_set_new(status, "appId", json_string(job->name));
    json_object_set_new(status, "appCreatedTime", ms_or_null(a ? a->created_ms : 0));
    json_object_set_new(status, "appLaunchedTime", ms_or_null(a ? a->launched_ms : 0));
    json_object_set_new(status, "appCompletedTime", ms_or_null(a ? a->completed_ms : 0));
    bool has = a && a->has_exit;
    int code = has ? a->exit_code : 0;
    if (!has && job->has_exit) {
        has = true;
        code = job->exit_code;
    }
    json_object_set_new(status, "appExitCode", jint_or_null(has, code));
    json_object_set_new(status, "appExitSpec", exit_spec_json(has, code));
    json_object_set_new(status, "appExitDiagnostics", jstr_or_null(a ? a->diag : NULL));
    json_object_set_new(status, "appExitTriggerMessage", jstr_or_null(a ? a->trigger_msg : NULL));
    json_object_set_new(status, "appExitTriggerTaskRoleName",
                        jstr_or_null(a ? a->trigger_role : NULL));
    json_object_set_new(status, "appExitTriggerTaskIndex",
                        a && a->trigger_index >= 0 ? json_integer(a->trigger_index) : json_null());
    json_object_set_new(status, "appExitType",
                        has ? json_string(exit_type_name(exitspec_for(code)->type)) : json_null());
    json_object_set_new(status, "waitingReason", jstr_or_null(job->waiting_reason));
    json_object_set_new(
        status, "retryDelayTime",
        json_integer(job->state == JOB_WAITING && job->retry_at_ms ? job->retry_at_ms : 0));
    json_t *d = xjson_pack("{sO sO so so}", "name", json_object_get(summary, "name"), "tags",
                           json_object_get(summary, "tags"), "jobStatus", status, "taskRoles",
                           task_roles_json(job, a));
    json_object_set_new(d, "debugId", json_string(job->name));
    json_decref(summary);
    return d;
}

json_t *codec_render_attempt(const lc_job_t *job, int attempt)
{
    if (!job->atts || attempt < 0 || attempt >= job->natts)
        return NULL;
    const lc_attempt_t *a = &job->atts[attempt];
    json_t *roles = json_object();
    for (int r = 0; r < job->nroles; r++) {
        json_t *st = json_array();
        for (int i = 0; i < job->roles[r].instances; i++) {
            const lc_task_t *t = &a->tasks[r][i];
            const lc_task_attempt_t *ta = &t->atts[t->natts - 1];
            char *uid = codec_attempt_id(job, attempt, r, i, ta->index);
            json_array_append_new(
                st, xjson_pack("{si ss ss so so so si}", "taskIndex", i, "taskState",
                               lc_task_state_name(ta->state), "containerId", uid ? uid : "",
                               "containerIp", jstr_or_null(ta->ip), "containerNodeName",
                               jstr_or_null(ta->node), "containerExitCode",
                               jint_or_null(ta->has_exit, ta->exit_code), "retries", t->retries));
            free(uid);
        }
        json_object_set_new(roles, job->roles[r].name,
                            xjson_pack("{s{ss} so}", "taskRoleStatus", "name", job->roles[r].name,
                                       "taskStatuses", st));
    }
    json_t *o = xjson_pack(
        "{ss ss ss ss ss si sI sI so so so so so so so si si si so sb}", "jobName",
        job->name + job->user_len + 1, "frameworkName", job->name, "uid", job->name, "state",
        attempt_state_name(job, a), "originState", sub_state(a->state), "attemptIndex", attempt,
        "jobStartedTime", (json_int_t)job->submit_ms, "attemptStartedTime",
        (json_int_t)a->created_ms, "attemptCompletedTime", ms_or_null(a->completed_ms), "exitCode",
        jint_or_null(a->has_exit, a->exit_code), "appExitSpec",
        exit_spec_json(a->has_exit, a->exit_code), "appExitDiagnostics", jstr_or_null(a->diag),
        "appExitTriggerMessage", jstr_or_null(a->trigger_msg), "appExitTriggerTaskRoleName",
        jstr_or_null(a->trigger_role), "appExitTriggerTaskIndex",
        a->trigger_index >= 0 ? json_integer(a->trigger_index) : json_null(), "totalGpuNumber",
        (int)job->total_gpus, "totalTaskNumber", (int)job->total_tasks, "totalTaskRoleNumber",
        job->nroles, "taskRoles", roles, "isLatest", attempt == job->natts - 1);
    set_username(o, job);
    json_object_set_new(o, "userName", json_stringn(job->name, job->user_len));
    if (a->has_exit) {
        const exitspec_t *e = exitspec_for(a->exit_code);
        json_object_set_new(o, "exitPhrase", json_string(e->phrase));
        json_object_set_new(o, "exitType", json_string(exit_type_name(e->type)));
    }
    return o;
}

json_t *codec_render_task(const lc_job_t *job, int attempt, int role, int index)
{
    if (!job->atts || attempt < 0 || attempt >= job->natts || role < 0 || role >= job->nroles ||
        index < 0 || index >= job->roles[role].instances)
        return NULL;
    const lc_attempt_t *a = &job->atts[attempt];
    json_t *o = task_status_json(job, a, role, index);
    const lc_task_t *t = &a->tasks[role][index];
    json_t *atts = json_array();
    for (int k = 0; k < t->natts; k++)
        json_array_append_new(atts, task_attempt_json(job, attempt, role, index, &t->atts[k]));
    json_object_set_new(o, "attempts", atts);
    set_username(o, job);
    json_object_set_new(o, "jobName", json_string(job->name + job->user_len + 1));
    json_object_set_new(o, "jobAttemptId", json_integer(attempt));
    json_object_set_new(o, "taskRoleName", json_string(job->roles[role].name));
    return o;
}

/* ---------------------------------------------------------- attempt ids */

char *codec_attempt_id(const lc_job_t *job, int ja, int role, int index, int ta)
{
    return str_printf("%s/%d/%s/%d/%d", job->name, ja, job->roles[role].name, index, ta);
}

static bool take_int(const char **p, int *out)
{
    const char *s = *p;
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > 1000000 || (*end != '/' && *end != '\0'))
        return false;
    *out = (int)v;
    *p = *end == '/' ? end + 1 : end;
    return true;
}

static bool take_seg(const char **p, char *dst, size_t n)
{
    const char *slash = strchr(*p, '/');
    size_t len = slash ? (size_t)(slash - *p) : 0;
    if (!slash || len == 0 || len >= n)
        return false;
    memcpy(dst, *p, len);
    dst[len] = '\0';
    *p = slash + 1;
    return true;
}

pai_err_t codec_attempt_id_parse(const char *id, char *name, size_t n, int *ja, char *role,
                                 size_t rn, int *index, int *ta)
{
    const char *p = id;
    if (!take_seg(&p, name, n) || !take_int(&p, ja) || !take_seg(&p, role, rn) ||
        !take_int(&p, index) || !take_int(&p, ta) || *p != '\0')
        return PAI_E_INVALID;
    return PAI_OK;
}
