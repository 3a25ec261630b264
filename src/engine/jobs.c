/*
 * jobs.c - the job operations behind the REST API: submit, list with
 * filters, detail, attempts, tasks, config, events, stop, tags, delete.
 *
 * Submission procedure:
 *   1. parse and validate the document (protocol/job.h), outside the lock;
 *      render each role's commands and registry auth (secrets resolved): a
 *      rendering that fails refuses the job, naming the role (never an
 *      empty command or a dropped auth field);
 *   2. lock: refuse a duplicate name, reserve it (pending); unlock;
 *   3. commit the job record and its config in one store batch;
 *   4. lock: queue it in the scheduler and run a pass; a REFUSE means it can
 *      never fit: unreserve, delete the records, answer 400; else publish.
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

/* ---------------------------------------------------------------- submit */

/* Why a role's rendering failed, in the submit's answer (400
 * InvalidProtocolError), naming the role and, for auth, the field. */
static pai_err_t render_error(pai_error_t *e, pai_err_t rc, const char *role, const char *what)
{
    if (rc == PAI_E_TOO_LARGE)
        return pai_error_set(e, PAI_E_PROTOCOL,
                             "taskRoles.%s: the rendered %s (parameters and secrets substituted) "
                             "would be over the limit of %u bytes (%u MiB), or need too much "
                             "template work",
                             role, what, PAI_MAX_COMMAND, PAI_MAX_COMMAND >> 20);
    return pai_error_set(e, PAI_E_PROTOCOL, "taskRoles.%s: the %s cannot be rendered: %s", role,
                         what, pai_err_msg(rc));
}

/* One auth field with `<% $secrets.x %>` (and other templates) resolved as
 * in the rendered command into *out (NULL when absent).  A field that
 * cannot be rendered fails the submission: never dropped silently. */
static pai_err_t auth_field(const job_spec_t *spec, const job_role_t *jr, const char *key,
                            const char *text, json_t **out, pai_error_t *e)
{
    char *s = NULL, what[64];
    *out = NULL;
    if (!text)
        return PAI_OK;
    pai_err_t rc = job_render_string(spec, jr->name, text, true, &s);
    if (rc != PAI_OK) {
        snprintf(what, sizeof what, "dockerimage auth.%s", key);
        return render_error(e, rc, jr->name, what);
    }
    *out = json_string(s);
    free(s);
    return PAI_OK;
}

/* The role's dockerimage registry auth as compact JSON into *out (NULL when
 * none). */
static pai_err_t image_auth_json(const job_spec_t *spec, const job_role_t *jr, char **out,
                                 pai_error_t *e)
{
    const job_prereq_t *p = jr->docker_image;
    *out = NULL;
    if (!p || !p->has_auth)
        return PAI_OK;
    json_t *o = json_object();
    static const char *const keys[] = {"username", "password", "registryuri"};
    const char *vals[] = {p->auth_username, p->auth_password, p->auth_registryuri};
    pai_err_t rc = PAI_OK;
    for (size_t i = 0; rc == PAI_OK && i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_t *v = NULL;
        rc = auth_field(spec, jr, keys[i], vals[i], &v, e);
        if (v)
            json_object_set_new(o, keys[i], v);
    }
    if (rc == PAI_OK)
        *out = xjson_dumps(o, JSON_COMPACT);
    json_decref(o);
    return rc;
}

/* The role as the engine keeps it, with its rendered script (secrets
 * resolved) and registry auth.  A rendering that fails (over
 * PAI_MAX_COMMAND, too much template work) fails the submission with the
 * role named: a job never runs an empty command in place of its own. */
static pai_err_t role_from_spec(lc_role_t *r, const job_spec_t *spec, const job_role_t *jr,
                                pai_error_t *e)
{
    r->name = lc_str_dup(jr->name);
    r->instances = jr->instances;
    r->gpu = jr->gpu;
    r->cpu = jr->cpu;
    r->mem_mb = jr->memory_mb;
    r->shm_mb = jr->shm_mb;
    r->min_failed = jr->min_failed;
    r->min_succeeded = jr->min_succeeded;
    r->nports = (int)jr->n_ports;
    r->ports = r->nports ? xcalloc((size_t)r->nports, sizeof(*r->ports)) : NULL;
    for (int p = 0; p < r->nports; p++) {
        r->ports[p].label = lc_str_dup(jr->ports[p].name);
        r->ports[p].count = jr->ports[p].count;
    }
    if (jr->docker_image && jr->docker_image->uri)
        r->image = xstrdup(jr->docker_image->uri);
    r->sku = jr->sku_type ? xstrdup(jr->sku_type) : NULL;
    r->pinned = jr->pinned_cell_id ? xstrdup(jr->pinned_cell_id) : NULL;
    r->group = jr->affinity_group_name ? xstrdup(jr->affinity_group_name) : NULL;
    r->within = jr->within_one_cell ? xstrdup(jr->within_one_cell) : NULL;
    pai_err_t rc = job_render_commands(spec, jr->name, 0, true, &r->command);
    if (rc != PAI_OK)
        return render_error(e, rc, jr->name, "commands");
    return image_auth_json(spec, jr, &r->image_auth, e);
}

/* Every role gets the job's storage mounts (compact JSON, NULL when none). */
static void set_mounts(lc_job_t *job, const json_t *mounts)
{
    if (json_array_size(mounts) == 0)
        return;
    char *text = json_dumps(mounts, JSON_COMPACT);
    for (int r = 0; text && r < job->nroles; r++)
        job->roles[r].mounts = xstrdup(text);
    free(text);
}

/* The job as the engine keeps it into *out; PAI_E_PROTOCOL with the reason
 * in e when a role cannot be rendered (*out NULL). */
static pai_err_t job_from_spec(const job_spec_t *spec, const char *user, int64_t now,
                               lc_job_t **out, pai_error_t *e)
{
    pai_err_t rc = PAI_OK;
    lc_job_t *job = xcalloc(1, sizeof(*job));
    job->name = str_printf("%s~%s", user, spec->name);
    job->user_len = (uint16_t)strlen(user);
    job->vc = lc_str_dup(spec->virtual_cluster ? spec->virtual_cluster : "default");
    job->state = JOB_WAITING;
    job->prio = (uint8_t)spec->extras.priority_class;
    job->gang = job_gang(spec);
    job->lazy = spec->extras.lazy_preemption;
    job->job_retry_count = spec->job_retry_count;
    job->submit_ms = now;
    job->total_tasks = (uint32_t)job_total_tasks(spec);
    job->total_gpus = (uint32_t)job_total_gpus(spec);
    job->nroles = (int)spec->n_roles;
    job->roles = xcalloc(spec->n_roles ? spec->n_roles : 1, sizeof(lc_role_t));
    for (size_t r = 0; r < spec->n_roles; r++) {
        if ((rc = role_from_spec(&job->roles[r], spec, &spec->roles[r], e)) != PAI_OK) {
            lc_job_free(job);
            *out = NULL;
            return rc;
        }
        if (spec->roles[r].task_retry_count > job->task_retry_count)
            job->task_retry_count = spec->roles[r].task_retry_count;
    }
    *out = job;
    return PAI_OK;
}

static pai_err_t store_job(engine_t *j, lc_job_t *job, const char *yaml, size_t len)
{
    json_t *rec = codec_job_encode(job), *cfg = xjson_pack("{ss%}", "yaml", yaml, len);
    json_t *cmd = codec_cmds_encode(job);
    char *rtext = xjson_dumps(rec, JSON_COMPACT), *ctext = xjson_dumps(cfg, JSON_COMPACT);
    char *mtext = xjson_dumps(cmd, JSON_COMPACT);
    json_decref(rec);
    json_decref(cfg);
    json_decref(cmd);
    store_op_t ops[3] = {{STORE_OP_INSERT, "job", job->name, job->seq, rtext},
                         {STORE_OP_INSERT, "jobcfg", job->name, job->seq, ctext},
                         {STORE_OP_PUT, "jobcmd", job->name, job->seq, mtext}};
    engine_assert_unlocked(j);
    pai_err_t rc = store_batch(j->st, ops, 3);
    free(rtext);
    free(ctext);
    free(mtext);
    return rc == PAI_E_EXISTS ? PAI_E_CONFLICT_JOB : rc;
}

static void unstore_job(engine_t *j, const char *name)
{
    store_op_t ops[3] = {{STORE_OP_DEL, "job", name, 0, NULL},
                         {STORE_OP_DEL, "jobcfg", name, 0, NULL},
                         {STORE_OP_DEL, "jobcmd", name, 0, NULL}};
    engine_assert_unlocked(j);
    if (store_batch(j->st, ops, 3) != PAI_OK)
        log_error("job=%s could not delete the refused job's records", name);
}

/* Step 2 (mu held): the checks at submission, then the job's place in the
 * table (pending: not listed yet). */
static pai_err_t reserve(engine_t *j, lc_job_t *job, pai_error_t *e)
{
    engine_assert_locked(j);
    if (engine_map_get(j, job->name))
        return pai_error_set(e, PAI_E_CONFLICT_JOB, PAI_MSG_CONFLICT_JOB, job->name);
    if (!engine_vc_known(j, job->vc))
        return pai_error_set(e, PAI_E_NO_VC_SUBMIT, PAI_MSG_NO_VC, job->vc);
    char *never = engine_never_fits(j, job);
    if (never) {
        j->stats.refused_at_submit++;
        pai_error_set(e, PAI_E_INVALID, "job %s can never fit: %s", job->name, never);
        free(never);
        return PAI_E_INVALID;
    }
    job->seq = j->table.next_seq++;
    job->pending = true;
    engine_table_add(j, job);
    return PAI_OK;
}

/* Step 4 (mu held): queue the stored job (rc: how storing it went) and
 * publish it, or take it out of the table.  True when the scheduler refused
 * it (its records are to be deleted). */
static bool publish(engine_t *j, lc_job_t *job, pai_err_t rc, pai_error_t *e)
{
    engine_assert_locked(j);
    /* Stored: a waiting job need not hold its commands (engine_flush reads
     * them back once it is bound). */
    for (int r = 0; rc == PAI_OK && r < job->nroles; r++) {
        FREE_NULL(&job->roles[r].command);
        FREE_NULL(&job->roles[r].image);
        FREE_NULL(&job->roles[r].image_auth);
        FREE_NULL(&job->roles[r].mounts);
    }
    if (rc == PAI_OK) {
        engine_enqueue(j, job);
        /* With a short queue a pass is cheap: wait for it, so the answer
         * already knows a REFUSE (can never fit) and a free cluster has
         * placed the job.  With a long queue, answer at once. */
        if (job->queued && engine_queue_short(j))
            engine_wait_pass(j);
        else
            engine_kick(j);
    }
    bool refused = rc == PAI_OK && job->refused;
    if (rc != PAI_OK || refused) {
        if (refused)
            pai_error_set(e, PAI_E_INVALID, "job %s can never fit: %s", job->name,
                          job->waiting_reason ? job->waiting_reason : "refused");
        if (job->queued)
            engine_sched_forget(j, job->name);
        engine_table_remove(j, job);
        j->stats.refused_at_submit += refused;
    } else {
        engine_table_publish(j, job);
        if (job->state != JOB_WAITING || job->atts) {
            /* Placed while pending: store it now (the timer thread flushes)
             * so that its tasks can be sent to their agents. */
            engine_mark_dirty(j, job);
            pthread_cond_signal(&j->threads.timer_cv);
        }
        j->stats.submitted++;
    }
    return refused;
}

/* Steps 2-4 for a parsed job. */
static pai_err_t admit(engine_t *j, lc_job_t *job, const char *yaml, size_t len, pai_error_t *e)
{
    engine_lock(j);
    pai_err_t rc = reserve(j, job, e);
    engine_unlock(j);
    if (rc != PAI_OK)
        return rc;
    rc = store_job(j, job, yaml, len);
    if (rc == PAI_E_CONFLICT_JOB)
        pai_error_set(e, rc, PAI_MSG_CONFLICT_JOB, job->name);
    else if (rc != PAI_OK)
        pai_error_set(e, rc, "cannot store job %s: %s", job->name, pai_err_msg(rc));
    engine_lock(j);
    bool refused = publish(j, job, rc, e);
    engine_unlock(j);
    if (refused) {
        unstore_job(j, job->name);
        return PAI_E_INVALID;
    }
    return rc;
}

/* Step 1: parse; a refusal lists every problem in e's details. */
static pai_err_t parse(const char *yaml, size_t len, job_spec_t **spec, pai_error_t *e)
{
    job_errors_t errs;
    job_errors_init(&errs);
    pai_err_t rc = job_parse(yaml, len, NULL, spec, &errs);
    if (rc != PAI_OK) {
        char *msg = job_errors_message(&errs);
        rc = pai_error_set(e, PAI_E_PROTOCOL, "%s", msg ? msg : "invalid job protocol");
        free(msg);
        pai_error_details(e, xjson_pack("{so}", "errors", job_errors_to_json(&errs)));
    }
    job_errors_free(&errs);
    return rc;
}

pai_err_t engine_submit(engine_t *j, const char *user, const char *yaml, size_t len,
                        char **name_out, pai_error_t *e)
{
    *name_out = NULL;
    job_spec_t *spec = NULL;
    pai_err_t rc = parse(yaml, len, &spec, e);
    if (rc != PAI_OK)
        return rc;
    if (strlen(user) + strlen(spec->name) + 1 > PAI_MAX_NAME) {
        job_spec_free(spec);
        return pai_error_set(e, PAI_E_PROTOCOL, "user and job name together are too long");
    }
    /* An unknown VC is reported before the permission check, as OpenPAI
     * does (NoVirtualClusterError rather than ForbiddenUserError). */
    engine_lock(j);
    bool vc_known = engine_vc_known(j, spec->virtual_cluster);
    engine_unlock(j);
    if (!vc_known) {
        rc = pai_error_set(e, PAI_E_NO_VC_SUBMIT, PAI_MSG_NO_VC, spec->virtual_cluster);
        job_spec_free(spec);
        return rc;
    }
    if (j->ops.can_use_vc && !j->ops.can_use_vc(j->ops.ud, user, spec->virtual_cluster)) {
        rc = pai_error_set(e, PAI_E_FORBIDDEN, PAI_MSG_VC_DENIED, user, spec->virtual_cluster);
        job_spec_free(spec);
        return rc;
    }
    json_t *mounts = NULL;
    if (j->ops.mounts &&
        (rc = j->ops.mounts(j->ops.ud, user, spec->extras.storages, &mounts, e)) != PAI_OK) {
        json_decref(mounts);
        job_spec_free(spec);
        return rc;
    }
    lc_job_t *job = NULL;
    rc = job_from_spec(spec, user, engine_now_ms(j), &job, e);
    job_spec_free(spec);
    if (rc != PAI_OK) {
        json_decref(mounts);
        return rc;
    }
    set_mounts(job, mounts);
    json_decref(mounts);
    /* Copied while the job is private: once admitted, another request may
     * stop and delete it. */
    char *name = xstrdup(job->name);
    rc = admit(j, job, yaml, len, e);
    if (rc == PAI_OK) {
        *name_out = name;
    } else {
        free(name);
        lc_job_free(job);
    }
    return rc;
}

/* ---------------------------------------------------------------- list */

/* A pai extension of a running job's summary and detail: its GPUs have
 * been idle since gpuIdleSince (docs/monitoring.md, "Utilization"). */
static void mark_gpu_idle(engine_t *j, const lc_job_t *job, json_t *o, int64_t now)
{
    int64_t since = engine_gpu_idle_since(j, job, now);
    if (!since || !json_is_object(o))
        return;
    json_object_set_new(o, "gpuIdle", json_true());
    json_object_set_new(o, "gpuIdleSince", json_integer((json_int_t)since));
}

/* True when csv (comma-separated) contains s exactly. */
static bool csv_has(const char *csv, const char *s, size_t slen)
{
    for (const char *p = csv; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == slen && strncmp(p, s, n) == 0)
            return true;
        if (!c)
            break;
        p = c + 1;
    }
    return false;
}

static bool any_tag_in(const lc_job_t *job, const char *csv)
{
    for (int t = 0; t < job->ntags; t++)
        if (csv_has(csv, job->tags[t], strlen(job->tags[t])))
            return true;
    return false;
}

static bool matches(const lc_job_t *job, const engine_filter_t *f)
{
    if (f->username && !csv_has(f->username, job->name, job->user_len))
        return false;
    if (f->vc && !csv_has(f->vc, job->vc, strlen(job->vc)))
        return false;
    if (f->state) {
        const char *st = lc_job_state_name(job->state);
        if (!csv_has(f->state, st, strlen(st)))
            return false;
    }
    if (f->job_priority) {
        const char *p = codec_prio_name(job->prio);
        bool def = job->prio == 2 && csv_has(f->job_priority, "default", 7);
        if (!def && !csv_has(f->job_priority, p, strlen(p)))
            return false;
    }
    if (f->keyword && !strstr(job->name, f->keyword) && !strstr(job->vc, f->keyword))
        return false;
    if (f->tags_contain && !any_tag_in(job, f->tags_contain))
        return false;
    if (f->tags_not_contain && any_tag_in(job, f->tags_not_contain))
        return false;
    return true;
}

typedef enum {
    ORD_JOBNAME,
    ORD_SUBMISSION,
    ORD_USERNAME,
    ORD_VC,
    ORD_RETRIES,
    ORD_TASKS,
    ORD_GPUS,
    ORD_STATE,
    ORD_COMPLETION,
    ORD_PRIORITY,
} order_field_t;

static const char *const order_names[] = {
    "jobName",        "submissionTime",  "username",       "vc",
    "retries",        "totalTaskNumber", "totalGpuNumber", "state",
    "completionTime", "jobPriority",
};

typedef struct {
    order_field_t field;
    int desc;
} order_t;

static int64_t key_num(const lc_job_t *a, order_field_t field)
{
    switch (field) {
    case ORD_RETRIES:
        return a->retries;
    case ORD_TASKS:
        return a->total_tasks;
    case ORD_GPUS:
        return a->total_gpus;
    case ORD_STATE:
        return a->state;
    case ORD_COMPLETION:
        /* unfinished (no completion time) sorts after every finished job:
         * last with ASC, first with DESC, as the spec says */
        return a->complete_ms ? a->complete_ms : INT64_MAX;
    case ORD_PRIORITY:
        return -(int64_t)a->prio;
    default:
        return a->seq;
    }
}

static int cmp_jobs(const void *pa, const void *pb, void *ctx)
{
    const order_t *o = ctx;
    const lc_job_t *a = *(lc_job_t *const *)pa, *b = *(lc_job_t *const *)pb;
    int c = 0;
    if (o->field == ORD_JOBNAME)
        c = strcmp(a->name + a->user_len + 1, b->name + b->user_len + 1);
    else if (o->field == ORD_USERNAME) {
        c = strncmp(a->name, b->name, a->user_len < b->user_len ? a->user_len : b->user_len);
        if (c == 0) /* "al" before "alice" */
            c = (a->user_len > b->user_len) - (a->user_len < b->user_len);
    } else if (o->field == ORD_VC)
        c = strcmp(a->vc, b->vc);
    else {
        int64_t x = key_num(a, o->field), y = key_num(b, o->field);
        c = x < y ? -1 : x > y;
    }
    if (c == 0)
        c = a->seq < b->seq ? -1 : a->seq > b->seq;
    return o->desc ? -c : c;
}

static pai_err_t parse_order(const char *order, order_field_t *field, int *desc, pai_error_t *e)
{
    *field = ORD_SUBMISSION;
    *desc = 1;
    if (!order || !*order)
        return PAI_OK;
    const char *comma = strchr(order, ',');
    size_t n = comma ? (size_t)(comma - order) : strlen(order);
    size_t k;
    for (k = 0; k < ARRAY_LEN(order_names); k++)
        if (strlen(order_names[k]) == n && strncmp(order, order_names[k], n) == 0)
            break;
    if (k == ARRAY_LEN(order_names))
        return pai_error_set(e, PAI_E_INVALID, "order: unknown field '%.*s'", (int)n, order);
    *field = (order_field_t)k;
    *desc = !comma || strcasecmp(comma + 1, "ASC") != 0;
    if (comma && strcasecmp(comma + 1, "ASC") != 0 && strcasecmp(comma + 1, "DESC") != 0)
        return pai_error_set(e, PAI_E_INVALID, "order: direction must be ASC or DESC");
    return PAI_OK;
}

pai_err_t engine_list(engine_t *j, const engine_filter_t *f, json_t **out, pai_error_t *e)
{
    order_field_t field;
    int desc;
    pai_err_t rc = parse_order(f->order, &field, &desc, e);
    if (rc != PAI_OK)
        return rc;
    if (f->limit > 50000) /* OpenPAI's text (rest-server controllers/v2/job.js) */
        return pai_error_set(e, PAI_E_INVALID, "Limit exceeds max number %d.", 50000);
    if (f->offset < 0 || f->limit < 0)
        return pai_error_set(e, PAI_E_INVALID, "offset and limit must be >= 0");
    int64_t limit = f->limit ? f->limit : 5000;
    engine_lock(j);
    lc_job_t **sel = xcalloc(j->table.nlist + 1, sizeof(*sel));
    size_t n = 0;
    for (size_t i = 0; i < j->table.nlist; i++)
        if (matches(j->table.list[i], f))
            sel[n++] = j->table.list[i];
    bool seq_order = field == ORD_SUBMISSION;
    if (!seq_order) {
        order_t o = {field, desc};
        qsort_r(sel, n, sizeof(*sel), cmp_jobs, &o);
    }
    json_t *data = json_array();
    int64_t now = engine_now_ms(j);
    for (int64_t k = f->offset; k < (int64_t)n && k < f->offset + limit; k++) {
        size_t idx = seq_order && desc ? n - 1 - (size_t)k : (size_t)k;
        json_t *o = codec_render_summary(sel[idx]);
        mark_gpu_idle(j, sel[idx], o, now);
        json_array_append_new(data, o);
    }
    engine_unlock(j);
    free(sel);
    *out = f->with_total ? xjson_pack("{sI so}", "totalCount", (json_int_t)n, "data", data) : data;
    return PAI_OK;
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

/* fn's view of job name (*out NULL when fn finds nothing: the caller says
 * what was not found). */
static pai_err_t with_job(engine_t *j, const char *name, render_fn fn, const view_t *v,
                          json_t **out, pai_error_t *e)
{
    *out = NULL;
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    bool found = job && !job->pending, stored = found && job->compacted;
    if (found && !stored) {
        engine_refresh_reason(j, job);
        *out = fn(job, v);
        if (v->idle && *out)
            mark_gpu_idle(j, job, *out, engine_now_ms(j));
    }
    engine_unlock(j);
    if (!found)
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    if (!stored)
        return PAI_OK;
    /* Compacted: read back without mu. */
    char *text = NULL;
    engine_assert_unlocked(j);
    pai_err_t rc = store_get(j->st, "job", name, &text);
    if (rc == PAI_E_NOT_FOUND) /* deleted meanwhile */
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    if (rc != PAI_OK)
        return pai_error_set(e, rc, "cannot read job %s from the store: %s", name, pai_err_msg(rc));
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    lc_job_t *full = NULL;
    rc = rec ? codec_job_decode(rec, &full) : PAI_E_INTERNAL;
    json_decref(rec);
    if (rc != PAI_OK)
        return pai_error_set(e, PAI_E_INTERNAL, "the stored record of job %s is damaged", name);
    *out = fn(full, v);
    lc_job_free(full);
    return PAI_OK;
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

pai_err_t engine_config_yaml(engine_t *j, const char *name, char **out, pai_error_t *e)
{
    *out = NULL;
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
    job_spec_t *spec = NULL;
    rc = yaml ? job_parse(yaml, strlen(yaml), NULL, &spec, NULL) : PAI_E_INTERNAL;
    json_decref(cfg);
    if (rc != PAI_OK) /* a damaged record: no config to show */
        return pai_error_set(e, PAI_E_NO_JOB_CONFIG, PAI_MSG_NO_JOB_CONFIG, name);
    rc = job_to_yaml(spec, true, out);
    job_spec_free(spec);
    if (rc != PAI_OK)
        pai_error_set(e, rc, "cannot render the config of job %s: %s", name, pai_err_msg(rc));
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

/* The events of job (mu held), newest first, as the answer's data. */
static json_t *job_events(engine_t *j, lc_job_t *job, const char *type)
{
    engine_assert_locked(j);
    json_t *data = json_array();
    json_t *ev = job->events;
    if (job->state == JOB_WAITING && (!type || strcmp(type, "Warning") == 0)) {
        /* The live reason, not stored per job (memory with many waiting jobs). */
        engine_refresh_reason(j, job);
        json_t *w =
            xjson_pack("{ss ss ss ss ss sI sI si ss}", "uid", job->name, "frameworkName", job->name,
                       "type", "Warning", "reason", "FailedScheduling", "message",
                       job->waiting_reason ? job->waiting_reason : "", "firstTimestamp",
                       (json_int_t)job->submit_ms, "lastTimestamp", (json_int_t)engine_now_ms(j),
                       "count", 1, "sourceComponent", "pai-scheduler");
        json_array_append_new(data, event_out(w));
        json_decref(w);
    }
    for (size_t i = json_array_size(ev); i-- > 0;) {
        json_t *one = json_array_get(ev, i);
        if (type && strcmp(json_string_value(json_object_get(one, "type")), type) != 0)
            continue;
        json_array_append_new(data, event_out(one));
    }
    return data;
}

pai_err_t engine_events(engine_t *j, const char *name, const char *type, json_t **out,
                        pai_error_t *e)
{
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    json_t *data = job && !job->pending ? job_events(j, job, type) : NULL;
    engine_unlock(j);
    if (!data)
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    *out = xjson_pack("{sI so}", "totalCount", (json_int_t)json_array_size(data), "data", data);
    return PAI_OK;
}

/* ---------------------------------------------------------------- changes */

bool engine_owner_check(engine_t *j, const char *name, const char *user, int64_t user_since_ms,
                        bool *is_owner)
{
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    bool found = job && !job->pending;
    *is_owner = found && user && strlen(user) == job->user_len &&
                strncmp(job->name, user, job->user_len) == 0 && job->submit_ms >= user_since_ms;
    engine_unlock(j);
    return found;
}

/* A failed flush after a change the caller asked for: the change stays in
 * memory (dirty, retried by the timer) but was not acknowledged durable. */
static pai_err_t flush_for(engine_t *j, const char *name, pai_error_t *e)
{
    pai_err_t rc = engine_flush(j);
    if (rc != PAI_OK)
        pai_error_set(e, rc, "job %s changed but could not be persisted: %s", name,
                      pai_err_msg(rc));
    return rc;
}

/* executionType STOP (mu held). */
static void stop_job(engine_t *j, lc_job_t *job, int64_t now)
{
    engine_assert_locked(j);
    lc_effects_t fx = {0};
    bool was_waiting = job->state == JOB_WAITING;
    lc_stop(job, now, &fx);
    if (was_waiting && job->queued) {
        engine_sched_forget(j, job->name);
        job->queued = false;
        j->pass.need = true;
    }
    if (!job->compacted)
        engine_event(job, "Normal", "StopRequested", "executionType STOP", now);
    engine_apply(j, job, &fx, now);
    engine_kick(j);
}

pai_err_t engine_set_execution(engine_t *j, const char *name, bool stop, pai_error_t *e)
{
    int64_t now = engine_now_ms(j);
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    bool found = job && !job->pending;
    if (found && stop)
        stop_job(j, job, now);
    /* START of an existing job: OpenPAI restarts nothing either; accepted. */
    engine_unlock(j);
    if (!found)
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    return flush_for(j, name, e);
}

/* Tags of a compacted job: read-modify-write its stored record. */
static pai_err_t tag_stored(engine_t *j, const char *name, const char *tag, bool add)
{
    engine_assert_unlocked(j);
    char *text = NULL;
    pai_err_t rc = store_get(j->st, "job", name, &text);
    if (rc != PAI_OK)
        return rc;
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    if (!rec)
        return PAI_E_INTERNAL;
    json_t *tags = json_object_get(rec, "tags");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(rec, "tags", tags);
    }
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v)
    {
        if (strcmp(json_string_value(v), tag) == 0)
            break;
    }
    if (add && i == json_array_size(tags))
        json_array_append_new(tags, json_string(tag));
    if (!add && i < json_array_size(tags))
        json_array_remove(tags, i);
    text = xjson_dumps(rec, JSON_COMPACT);
    int64_t seq = json_integer_value(json_object_get(rec, "seq"));
    json_decref(rec);
    rc = store_put(j->st, "job", name, seq, text);
    free(text);
    return rc;
}

pai_err_t engine_tag(engine_t *j, const char *name, const char *tag, bool add, pai_error_t *e)
{
    engine_flush_lock(j);
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    pai_err_t rc = PAI_OK;
    bool stored = false;
    if (!job || job->pending)
        rc = pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    else if (!add && !lc_has_tag(job, tag))
        rc = pai_error_set(e, PAI_E_NO_TAG, PAI_MSG_NO_TAG, tag, name);
    else {
        if (add)
            lc_add_tag(job, tag);
        else
            (void)lc_del_tag(job, tag);
        stored = job->compacted;
        if (!stored)
            engine_mark_dirty(j, job);
    }
    engine_unlock(j);
    if (rc == PAI_OK && stored && (rc = tag_stored(j, name, tag, add)) != PAI_OK)
        pai_error_set(e, rc, "cannot update the stored tags of job %s: %s", name, pai_err_msg(rc));
    engine_flush_unlock(j);
    if (rc == PAI_OK && !stored)
        rc = flush_for(j, name, e);
    return rc;
}

pai_err_t engine_delete(engine_t *j, const char *name, pai_error_t *e)
{
    engine_flush_lock(j);
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    pai_err_t rc = PAI_OK;
    if (!job || job->pending)
        rc = pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    else if (!lc_job_state_final(job->state))
        rc = pai_error_set(e, PAI_E_INVALID, "job %s has not finished: stop it first", name);
    else
        engine_table_remove(j, job);
    engine_unlock(j);
    if (rc == PAI_OK) {
        store_op_t ops[3] = {{STORE_OP_DEL, "job", name, 0, NULL},
                             {STORE_OP_DEL, "jobcfg", name, 0, NULL},
                             {STORE_OP_DEL, "jobcmd", name, 0, NULL}};
        engine_assert_unlocked(j);
        rc = store_batch(j->st, ops, 3);
        if (rc == PAI_E_NOT_FOUND) /* some of its records were never written */
            rc = PAI_OK;
        if (rc != PAI_OK)
            pai_error_set(e, rc,
                          "job %s is deleted in memory but its records remain in the "
                          "store: %s",
                          name, pai_err_msg(rc));
        lc_job_free(job);
    }
    engine_flush_unlock(j);
    return rc;
}
