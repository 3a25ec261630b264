/*
 * submit.c - a job's submission behind POST /api/v2/jobs: parse, render,
 * admit, store, or refuse.
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
 *      A job the pass placed is dirty from the pass on (still pending), so
 *      the flush that follows the pass stores the placement with the rest
 *      of the pass's changes; a flush that ends before the publication
 *      leaves the record it committed for it (persist.held).
 * This file owns the engine's `stats` (submission counters).
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
#include "engine/sshplug.h"

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
    job->task_uid = -1;
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

static pai_err_t store_job(engine_t *j, lc_job_t *job, const char *yaml, size_t len,
                           const char *ssh, char **rec_text)
{
    json_t *rec = codec_job_encode(job), *cfg = xjson_pack("{ss%}", "yaml", yaml, len);
    json_t *cmd = codec_cmds_encode(job);
    char *rtext = xjson_dumps(rec, JSON_COMPACT), *ctext = xjson_dumps(cfg, JSON_COMPACT);
    char *mtext = xjson_dumps(cmd, JSON_COMPACT);
    json_decref(rec);
    json_decref(cfg);
    json_decref(cmd);
    store_op_t ops[4] = {{STORE_OP_INSERT, "job", job->name, job->seq, rtext},
                         {STORE_OP_INSERT, "jobcfg", job->name, job->seq, ctext},
                         {STORE_OP_PUT, "jobcmd", job->name, job->seq, mtext},
                         {STORE_OP_PUT, "jobssh", job->name, job->seq, ssh}};
    engine_assert_unlocked(j);
    pai_err_t rc = store_batch(j->st, ops, ssh ? 4 : 3);
    *rec_text = rtext; /* the committed record: published with the job (snaps.c) */
    free(ctext);
    free(mtext);
    return rc == PAI_E_EXISTS ? PAI_E_CONFLICT_JOB : rc;
}

static void unstore_job(engine_t *j, const char *name)
{
    store_op_t ops[4] = {{STORE_OP_DEL, "job", name, 0, NULL},
                         {STORE_OP_DEL, "jobcfg", name, 0, NULL},
                         {STORE_OP_DEL, "jobcmd", name, 0, NULL},
                         {STORE_OP_DEL, "jobssh", name, 0, NULL}};
    engine_assert_unlocked(j);
    if (store_batch(j->st, ops, 4) != PAI_OK)
        log_error("job=%s could not delete the refused job's records", name);
}

/* Step 2 (mu held): the checks at submission, then the job's place in the
 * table (pending: not listed yet). */
static pai_err_t reserve(engine_t *j, lc_job_t *job, pai_error_t *e)
{
    engine_assert_locked(j);
    if (!engine_vc_known(j, job->vc)) /* first, as engine_submit's refusals */
        return pai_error_set(e, PAI_E_NO_VC_SUBMIT, PAI_MSG_NO_VC, job->vc);
    if (engine_map_get(j, job->name))
        return pai_error_set(e, PAI_E_CONFLICT_JOB, PAI_MSG_CONFLICT_JOB, job->name);
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
static bool publish(engine_t *j, lc_job_t *job, pai_err_t rc, char **rec_text, pai_error_t *e)
{
    engine_assert_locked(j);
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
    /* Stored: a job still waiting need not hold its commands (engine_flush
     * reads them back once it is bound).  One that the pass placed keeps
     * them for its agents: no read of its "jobcmd" record back. */
    bool placed = job->state != JOB_WAITING || job->atts;
    for (int r = 0; rc == PAI_OK && !placed && r < job->nroles; r++) {
        FREE_NULL(&job->roles[r].command);
        FREE_NULL(&job->roles[r].image);
        FREE_NULL(&job->roles[r].image_auth);
        FREE_NULL(&job->roles[r].mounts);
    }
    /* A placed job is never refused: it may be in a flush already. */
    bool refused = rc == PAI_OK && job->refused && !placed;
    if (rc != PAI_OK || refused) {
        if (refused)
            pai_error_set(e, PAI_E_INVALID, "job %s can never fit: %s", job->name,
                          job->waiting_reason ? job->waiting_reason : "refused");
        if (job->queued)
            engine_sched_forget(j, job->name);
        free(engine_held_take(j, job)); /* none: never placed */
        engine_table_remove(j, job);
        j->stats.refused_at_submit += refused;
    } else {
        /* The newest committed record: the one a flush stored for the
         * placement, when one did, else the submission's. */
        char *held = engine_held_take(j, job);
        engine_table_publish(j, job);
        engine_snap_put(j, job->name, held ? held : *rec_text);
        if (!held)
            *rec_text = NULL;
        /* Placed by the pass: dirty since then (engine_mark_dirty), and
         * stored by the flush the scheduler thread runs after that pass,
         * with whatever else it changed.  Only a pass that no thread
         * flushes after (an agent sync's, no_threads) leaves it to the
         * timer thread. */
        if (placed && job->dirty && !j->persist.flush_due)
            pthread_cond_signal(&j->threads.timer_cv);
        j->stats.submitted++;
    }
    return refused;
}

/* Steps 2-4 for a parsed job. */
static pai_err_t admit(engine_t *j, lc_job_t *job, const char *yaml, size_t len, const char *ssh,
                       pai_error_t *e)
{
    engine_lock(j);
    pai_err_t rc = reserve(j, job, e);
    engine_unlock(j);
    if (rc != PAI_OK)
        return rc;
    char *rec_text = NULL;
    rc = store_job(j, job, yaml, len, ssh, &rec_text);
    if (rc == PAI_E_CONFLICT_JOB)
        pai_error_set(e, rc, PAI_MSG_CONFLICT_JOB, job->name);
    else if (rc != PAI_OK)
        pai_error_set(e, rc, "cannot store job %s: %s", job->name, pai_err_msg(rc));
    engine_lock(j);
    bool refused = publish(j, job, rc, &rec_text, e);
    engine_unlock(j);
    free(rec_text); /* not published */
    if (refused) {
        unstore_job(j, job->name);
        return PAI_E_INVALID;
    }
    return rc;
}

/* Is vc unknown to the scheduler?  Then e says so (a refusal's first
 * reason, whatever else failed). */
static bool unknown_vc(engine_t *j, const char *vc, pai_error_t *e)
{
    engine_lock(j);
    bool known = engine_vc_known(j, vc);
    engine_unlock(j);
    if (!known) {
        pai_error_free(e);
        pai_error_set(e, PAI_E_NO_VC_SUBMIT, PAI_MSG_NO_VC, vc);
    }
    return !known;
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
    /* An unknown VC is reported before any other problem, the permission
     * check first, as OpenPAI does (NoVirtualClusterError rather than
     * ForbiddenUserError).  The VC is looked up under mu only on the paths
     * that refuse: reserve() checks it for the others, so a submission
     * takes mu twice, not three times (each waits for a running pass). */
    const char *vc = spec->virtual_cluster;
    if (j->ops.can_use_vc && !j->ops.can_use_vc(j->ops.ud, user, vc)) {
        rc = unknown_vc(j, vc, e) ? PAI_E_NO_VC_SUBMIT
                                  : pai_error_set(e, PAI_E_FORBIDDEN, PAI_MSG_VC_DENIED, user, vc);
        job_spec_free(spec);
        return rc;
    }
    json_t *mounts = NULL;
    if (j->ops.mounts &&
        (rc = j->ops.mounts(j->ops.ud, user, spec->extras.storages, &mounts, e)) != PAI_OK) {
        rc = unknown_vc(j, vc, e) ? PAI_E_NO_VC_SUBMIT : rc;
        json_decref(mounts);
        job_spec_free(spec);
        return rc;
    }
    engine_note_spec_t notes = {0};
    if (j->ops.note_spec &&
        (rc = j->ops.note_spec(j->ops.ud, user, spec->extras.json, &notes, e)) != PAI_OK) {
        rc = unknown_vc(j, vc, e) ? PAI_E_NO_VC_SUBMIT : rc;
        free(notes.url);
        json_decref(mounts);
        job_spec_free(spec);
        return rc;
    }
    lc_job_t *job = NULL;
    char *ssh = NULL;
    rc = job_from_spec(spec, user, engine_now_ms(j), &job, e);
    if (rc == PAI_OK) {
        json_t *keys = j->ops.ssh_keys ? j->ops.ssh_keys(j->ops.ud, user) : NULL;
        rc = sshplug_apply(spec, job, user, keys, &ssh, e);
        json_decref(keys);
        if (rc != PAI_OK)
            lc_job_free(job);
    }
    if (rc != PAI_OK && unknown_vc(j, vc, e))
        rc = PAI_E_NO_VC_SUBMIT;
    job_spec_free(spec); /* vc points into it */
    if (rc != PAI_OK) {
        free(notes.url);
        json_decref(mounts);
        return rc;
    }
    set_mounts(job, mounts);
    json_decref(mounts);
    int64_t tu = j->ops.task_uid ? j->ops.task_uid(j->ops.ud, user) : -1;
    job->task_uid = tu >= 0 && tu <= INT32_MAX ? (int32_t)tu : -1;
    engine_note_attach(job, &notes);
    free(notes.url);
    /* Copied while the job is private: once admitted, another request may
     * stop and delete it. */
    char *name = xstrdup(job->name);
    rc = admit(j, job, yaml, len, ssh, e);
    free(ssh);
    if (rc == PAI_OK) {
        *name_out = name;
    } else {
        free(name);
        lc_job_free(job);
    }
    return rc;
}
