/*
 * submit.c - a job's submission behind POST /api/v2/jobs: parse, render,
 * admit, store, or refuse.
 *
 * Submission procedure:
 *   1. parse and validate the document (protocol/job.h), outside the lock;
 *      render each role's commands and registry auth (secrets resolved): a
 *      rendering that fails refuses the job, naming the role (never an
 *      empty command or a dropped auth field);
 *   2. lock: refuse a duplicate name, reserve it (pending: not listed, not
 *      found); with a short queue, queue it in the scheduler, queue its
 *      records for the flush after its pass (engine_sub_queue) and wait
 *      for the pass (early_begin): a REFUSE means it can never fit:
 *      unreserve, answer 400, nothing stored;
 *   3. its records: the job record as the pass left it (placement, task
 *      attempts and events included), its config, commands and SSH keys.
 *      With a short queue the flush that follows the pass writes them,
 *      with every other submission the pass answered and the rest of the
 *      pass's changes, in one commit.  With a long queue they are queued
 *      for the next flush at once, which the submission runs or joins
 *      (engine_flush), so they share a commit with whatever else is
 *      stored then.  When no flush comes after the pass (an agent sync's
 *      pass, no threads) or a flush fails, the submission encodes them
 *      and commits them itself;
 *   4. lock: failed: undo the placement (unplace), unreserve, answer the
 *      error.  Stored: with a long queue, queue it now (no wait); publish
 *      it; its task attempts in the record are durable (sent to their
 *      agents).  A pending job is never marked dirty (no flush writes its
 *      record before the submission's INSERT): a change after its record
 *      was encoded (a later pass placed it, ...) marks it dirty once
 *      published.
 * Submissions that arrive together (engine_submit_batch: the HTTP layer's
 * batch of POST /api/v2/jobs) take these steps together: each parsed
 * alone, then one hold of the lock reserves them all (one pass for all
 * with a short queue), one flush stores them, and the same hold as that
 * flush's check publishes them; each is answered as it would be alone.
 * This file owns the engine's `stats` (submission counters).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/jtext.h"
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

/* What a submission writes: the job record (encoded under mu after the
 * submission's own pass) and its events, its config, its commands and its
 * SSH keys, in one commit: the flush after its pass (sub, queued), or its
 * own store batch. */
typedef struct {
    engine_sub_t sub; /* rec, and cfg/cmds/ssh pointing at the texts below */
    char *cfg, *cmds;
} sub_write_t;

/* The parts that do not change once the job is reserved, encoded while it
 * is still private (no lock). */
static void sub_prepare(sub_write_t *w, lc_job_t *job, const char *yaml, size_t len,
                        const char *ssh)
{
    jtext_t cfg; /* {"yaml": the document}, written without a tree */
    jtext_init(&cfg, len + len / 8 + 16);
    JTEXT_LIT(&cfg, "{\"yaml\":");
    jtext_strn(&cfg, yaml, len);
    JTEXT_LIT(&cfg, "}");
    w->cfg = jtext_take(&cfg);
    w->cmds = codec_cmds_text(job);
    w->sub = (engine_sub_t){.job = job, .cfg = w->cfg, .cmds = w->cmds, .ssh = ssh};
}

static void sub_write_free(sub_write_t *w)
{
    engine_sub_rec_free(&w->sub.rec);
    free(w->cfg);
    free(w->cmds);
}

/* Step 3 (without mu), when no flush wrote it: one commit of its own. */
static pai_err_t store_job(engine_t *j, const char *name, int64_t seq, const engine_sub_t *s)
{
    size_t n = 0, cap = 4 + s->rec.ev.n;
    store_op_t *ops = xcalloc(cap, sizeof(*ops));
    ops[n++] = (store_op_t){STORE_OP_INSERT, "job", name, seq, s->rec.text};
    ops[n++] = (store_op_t){STORE_OP_INSERT, "jobcfg", name, seq, s->cfg};
    ops[n++] = (store_op_t){STORE_OP_PUT, "jobcmd", name, seq, s->cmds};
    if (s->ssh)
        ops[n++] = (store_op_t){STORE_OP_PUT, "jobssh", name, seq, s->ssh};
    for (size_t i = 0; i < s->rec.ev.n; i++)
        ops[n++] = s->rec.ev.ops[i];
    engine_assert_unlocked(j);
    pai_err_t rc = store_batch(j->st, ops, n);
    free(ops);
    return rc;
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

/* Has job been placed (by its submission's pass or one during its write)? */
static bool placed(const lc_job_t *job)
{
    return job->state != JOB_WAITING || job->atts;
}

/* Undo what passes did to a job whose records could not be stored (mu
 * held): out of the scheduler (bound or waiting), its task attempts out of
 * their nodes' desired sets, their ports back.  None was sent to an agent:
 * none is durable.  What the passes did to others for it stays (a
 * preemption is retried as any). */
static void unplace(engine_t *j, lc_job_t *job)
{
    if (job->queued) {
        engine_sched_forget(j, job->name);
        job->queued = false;
        j->pass.need = true;
        engine_kick(j);
    }
    for (int k = 0; job->atts && k < job->natts; k++)
        for (int r = 0; r < job->nroles; r++)
            for (int i = 0; i < job->roles[r].instances; i++) {
                lc_task_t *t = &job->atts[k].tasks[r][i];
                for (int a = 0; a < t->natts; a++)
                    if (!lc_task_state_final(t->atts[a].state)) {
                        assert(t->atts[a].durable != 2);
                        (void)lc_task_set_state(job, &t->atts[a], TASK_STOPPING);
                        (void)lc_task_set_state(job, &t->atts[a], TASK_STOPPED);
                    }
            }
    nodes_sync_job(j->nodes, job); /* drops the refs of final attempts */
}

/* Take a refused or unstored job out of the table (mu held). */
static void drop(engine_t *j, lc_job_t *job, bool refused, pai_error_t *e)
{
    if (refused)
        pai_error_set(e, PAI_E_INVALID, "job %s can never fit: %s", job->name,
                      job->waiting_reason ? job->waiting_reason : "refused");
    unplace(j, job);
    engine_table_remove(j, job);
    j->stats.refused_at_submit += refused;
}

typedef enum {
    EARLY_NO,      /* a long queue: stored first, queued after */
    EARLY_REFUSED, /* its pass refused it: nothing stored, answer 400 */
    EARLY_STORED,  /* placed or not by its pass, stored by the flush after it */
    EARLY_WRITE,   /* its pass ran; no flush took it: it writes itself */
    EARLY_WAIT,    /* queued for its pass: not settled yet */
} early_t;

/* Step 2b (mu held): with a short queue, queue the reserved job and wait
 * for a pass before anything is stored: a REFUSE (can never fit) is
 * answered as a 400 with nothing to delete, and a job the pass placed is
 * stored with its placement.  Its records are queued for the flush that
 * follows the pass (the scheduler thread's), which writes those of every
 * submission the pass answered with the rest of the pass's changes in
 * one commit; when none comes (the pass was an agent sync's, no threads,
 * the engine stops) or it fails, the submission writes them itself.
 * early_begin queues it (EARLY_WAIT: the caller waits for a pass, then
 * asks early_state until it is settled), so that the submissions of a
 * batch wait for one pass together. */
static early_t early_begin(engine_t *j, sub_write_t *w)
{
    engine_assert_locked(j);
    lc_job_t *job = w->sub.job;
    if (!engine_queue_short(j))
        return EARLY_NO;
    engine_enqueue(j, job);
    if (!job->queued)
        return EARLY_REFUSED;
    engine_sub_queue(j, &w->sub, false);
    return EARLY_WAIT;
}

/* A queued submission's state after its pass (mu held): EARLY_WAIT while
 * a flush has it or is due after its pass. */
static early_t early_state(engine_t *j, sub_write_t *w)
{
    engine_assert_locked(j);
    engine_sub_t *s = &w->sub;
    if (s->state == ENGINE_SUB_STORED)
        return EARLY_STORED;
    if (s->state == ENGINE_SUB_BACK)
        return EARLY_WRITE;
    if (s->state == ENGINE_SUB_QUEUED) {
        bool refused = s->job->refused && !placed(s->job);
        if (refused || !j->persist.flush_due || j->pass.done < s->pass || j->threads.stopping) {
            engine_sub_unqueue(j, s);
            return refused ? EARLY_REFUSED : EARLY_WRITE;
        }
    }
    return EARLY_WAIT; /* taken by a flush, or one is due after its pass */
}

/* One submission of a batch (engine_submit_batch), from its parse to its
 * answer. */
typedef struct {
    engine_submit_call_t *c;
    lc_job_t *job;    /* parsed and rendered; NULL: refused before */
    char *ssh, *name; /* its jobssh record; a copy of its name (the answer's) */
    sub_write_t w;
    early_t early;
    pai_err_t rc;
    bool arrived; /* left the flushes' count of coming submissions */
    bool stored;  /* by a flush */
    bool settle;  /* reserved, not refused by its pass: publish settles it */
    bool refused; /* by a pass during its write (publish): records to delete */
} sub_item_t;

/* The flush that stores a batch's queued submissions mine[0..n) (without
 * mu), whoever runs it.  A flush in flight ends first (it may have taken
 * them: then this joins it); then the group delay (engine_sub_group_wait)
 * against the flush that just ended, during which the next batch of
 * submissions comes in and any flush that takes them is the one this joins
 * (its number read while they are queued: the next to encode takes them);
 * then the flush. */
static pai_err_t flush_group(engine_t *j, engine_sub_t *const *mine, size_t n)
{
    engine_lock(j);
    uint64_t need = engine_sub_need(j, mine, n);
    engine_unlock(j);
    if (engine_flush_covered(j, need))
        return PAI_OK;
    engine_lock(j);
    (void)engine_sub_group_wait(j, mine, n);
    engine_unlock(j);
    return engine_flush_from(j, need);
}

/* Step 3 with a long queue (without mu; the records of the batch's EARLY_NO
 * submissions queued for the next flush before the call): a flush writes
 * them with everything else dirty, its own or one that covers it
 * (engine_flush joins the flushes queued behind one in flight), so the
 * submissions, agent syncs and passes that store at the same moment share
 * one commit, where each submission's write used to be a commit of its own
 * but for the few submissions that met in the store's group commit.  Each
 * one stored is marked so; those whose flush failed are encoded again and
 * write themselves.  Returns with mu held. */
static void stored_by_flush(engine_t *j, sub_item_t *it, size_t n)
{
    engine_sub_t **mine = xcalloc(n, sizeof(*mine));
    size_t nmine = 0;
    for (size_t i = 0; i < n; i++)
        if (it[i].settle && it[i].early == EARLY_NO)
            mine[nmine++] = &it[i].w.sub;
    (void)flush_group(j, mine, nmine); /* its result is each sub's: ENGINE_SUB_STORED or not */
    free(mine);
    engine_lock(j);
    for (size_t i = 0; i < n; i++) {
        engine_sub_t *s = &it[i].w.sub;
        if (!it[i].settle || it[i].early != EARLY_NO)
            continue;
        if (s->state == ENGINE_SUB_STORED) {
            it[i].stored = true;
            continue;
        }
        if (s->state == ENGINE_SUB_QUEUED) /* never: the flush takes it (pass 0) */
            engine_sub_unqueue(j, s);
        engine_sub_encode(j, s->job, &s->rec); /* ENGINE_SUB_BACK: settled, freed */
    }
}

/* The bytes of job's rendered commands, images, registry auth and mounts. */
static size_t cmds_bytes(const lc_job_t *job)
{
    size_t n = 0;
    for (int r = 0; r < job->nroles; r++) {
        const lc_role_t *role = &job->roles[r];
        const char *parts[] = {role->command, role->image, role->image_auth, role->mounts};
        for (size_t k = 0; k < ARRAY_LEN(parts); k++)
            n += parts[k] ? strlen(parts[k]) : 0;
    }
    return n;
}

/* Step 4 (mu held): after the store write (rc), queue the job unless its
 * pass ran already (early), then publish it, or take it out of the table.
 * True when the scheduler refused it during the write (its records are
 * to be deleted). */
static bool publish(engine_t *j, lc_job_t *job, bool early, pai_err_t rc, engine_sub_rec_t *rec,
                    pai_error_t *e)
{
    engine_assert_locked(j);
    if (rc == PAI_OK && !early) {
        engine_enqueue(j, job);
        engine_kick(j); /* a long queue: answer at once */
    }
    /* Stored: a job still waiting need not hold its commands (engine_flush
     * reads them back once it is bound), unless they are small.  One that
     * a pass placed keeps them for its agents: no read of its "jobcmd"
     * record back. */
    bool is_placed = placed(job), keep = is_placed || cmds_bytes(job) <= ENGINE_CMDS_KEEP_BYTES;
    for (int r = 0; rc == PAI_OK && !keep && r < job->nroles; r++) {
        FREE_NULL(&job->roles[r].command);
        FREE_NULL(&job->roles[r].image);
        FREE_NULL(&job->roles[r].image_auth);
        FREE_NULL(&job->roles[r].mounts);
    }
    /* A placed job is never refused. */
    bool refused = rc == PAI_OK && job->refused && !is_placed;
    if (rc != PAI_OK || refused) {
        engine_sub_settle(j, job, rec, rc != PAI_OK ? rc : PAI_E_INVALID);
        drop(j, job, refused, e);
        return refused;
    }
    engine_table_publish(j, job);
    /* Its committed record: what reads without mu show (snaps.c). */
    engine_snap_put(j, job->name, rec->text);
    rec->text = NULL;
    engine_sub_settle(j, job, rec, PAI_OK);
    j->stats.submitted++;
    return false;
}

/* Step 2b for a batch queued with a short queue (mu held; the scheduler
 * thread runs): its pass here, on the thread that holds mu already, and the
 * flush after it (mu released meanwhile), as an agent sync batch runs the
 * pass on what its exits freed.  Handing the pass to the scheduler thread
 * and its flush back cost four thread switches a batch (the scheduler
 * thread woken and asleep again, this thread asleep for the pass and for
 * the flush), for a pass of a few microseconds over a short queue.  The
 * flush stores the batch's records with the pass's other changes in one
 * commit, as the scheduler thread's did; the caller's wait below then finds
 * each submission settled (stored, given back, or refused). */
static void pass_here(engine_t *j, sub_item_t *it, size_t n)
{
    engine_assert_locked(j);
    engine_run_pass(j);
    j->pass.here++;
    engine_kick(j); /* what the pass left (its rounds' bound) to the thread */
    /* the submissions the pass did not refuse: to store */
    engine_sub_t **mine = xcalloc(n, sizeof(*mine));
    size_t nmine = 0;
    for (size_t i = 0; i < n; i++) {
        sub_item_t *x = &it[i];
        if (x->job && x->rc == PAI_OK && x->early == EARLY_WAIT &&
            !(x->job->refused && !placed(x->job))) {
            x->w.sub.own_flush = true; /* not the scheduler thread's to flush */
            mine[nmine++] = &x->w.sub;
        }
    }
    if (nmine) {
        j->persist.flush_due = true; /* the batch's own flush, just below */
        engine_unlock(j);
        if (flush_group(j, mine, nmine) != PAI_OK) /* it logged; records dirty again */
            log_info("engine: the records not persisted are retried at the next tick");
        engine_lock(j);
    }
    free(mine);
}

/* Step 2 for the batch's parsed jobs (mu held): reserve each, queue its
 * records, and with a short queue wait for one pass for all of them.
 * *flush when some wait for the next flush (a long queue). */
static void reserve_all(engine_t *j, sub_item_t *it, size_t n, bool *flush)
{
    bool wait = false;
    for (size_t i = 0; i < n; i++) {
        sub_item_t *x = &it[i];
        if (!x->job)
            continue;
        x->rc = reserve(j, x->job, x->c->e);
        engine_sub_arrived(j); /* queued below (long queue) or left to its pass */
        x->arrived = true;
        if (x->rc != PAI_OK)
            continue;
        x->early = early_begin(j, &x->w);
        if (x->early == EARLY_NO) {
            engine_sub_queue(j, &x->w.sub, true);
            *flush = true;
        }
        wait |= x->early == EARLY_WAIT;
    }
    if (wait && j->threads.sched_started && !j->threads.stopping && !j->pass.thread_only)
        pass_here(j, it, n);
    else if (wait)
        engine_wait_pass(j);
    while (wait) {
        wait = false;
        for (size_t i = 0; i < n; i++)
            if (it[i].job && it[i].rc == PAI_OK && it[i].early == EARLY_WAIT) {
                it[i].early = early_state(j, &it[i].w);
                wait |= it[i].early == EARLY_WAIT;
            }
        if (wait) /* taken by a flush, or one is due after its pass */
            pthread_cond_wait(&j->persist.sub_cv, &j->mu);
    }
    for (size_t i = 0; i < n; i++) {
        sub_item_t *x = &it[i];
        if (!x->job || x->rc != PAI_OK)
            continue;
        if (x->early == EARLY_REFUSED) {
            drop(j, x->job, true, x->c->e);
            x->rc = PAI_E_INVALID;
            continue;
        }
        x->settle = true;
        x->stored = x->early == EARLY_STORED;
        if (x->early != EARLY_NO && !x->stored)
            engine_sub_encode(j, x->job, &x->w.sub.rec);
    }
}

/* Step 3 (without mu) for a submission no flush stored: its own commit. */
static void store_own(engine_t *j, sub_item_t *x)
{
    /* the job stays pending (unchanged name) until publish */
    x->rc = store_job(j, x->job->name, x->job->seq, &x->w.sub);
    if (x->rc == PAI_E_EXISTS) {
        x->rc = PAI_E_CONFLICT_JOB;
        pai_error_set(x->c->e, x->rc, PAI_MSG_CONFLICT_JOB, x->job->name);
    } else if (x->rc != PAI_OK) {
        pai_error_set(x->c->e, x->rc, "cannot store job %s: %s", x->job->name, pai_err_msg(x->rc));
    }
}

/* Steps 2-4 for the batch's parsed jobs: one hold of mu to reserve them
 * all, one flush (or pass) to store them, and with a long queue the same
 * hold as that flush's check to publish them. */
static void admit(engine_t *j, sub_item_t *it, size_t n)
{
    bool flush = false, any = false;
    for (size_t i = 0; i < n; i++)
        if (it[i].job)
            sub_prepare(&it[i].w, it[i].job, it[i].c->yaml, it[i].c->len, it[i].ssh);
    engine_lock(j);
    reserve_all(j, it, n, &flush);
    bool own = false; /* some write themselves */
    for (size_t i = 0; i < n; i++)
        own |= it[i].settle && !it[i].stored && it[i].early != EARLY_NO;
    if (flush) {
        engine_unlock(j);
        stored_by_flush(j, it, n); /* mu held again */
        for (size_t i = 0; i < n; i++)
            own |= it[i].settle && !it[i].stored;
    }
    if (own) {
        engine_unlock(j);
        for (size_t i = 0; i < n; i++)
            if (it[i].settle && !it[i].stored)
                store_own(j, &it[i]);
        engine_lock(j);
    }
    engine_kicks_hold(j); /* publish's kicks: the scheduler woken once mu is free */
    for (size_t i = 0; i < n; i++)
        if (it[i].settle)
            any |= it[i].refused = publish(j, it[i].job, it[i].early != EARLY_NO, it[i].rc,
                                           &it[i].w.sub.rec, it[i].c->e);
    bool kick = engine_kicks_release(j);
    engine_unlock(j);
    if (kick)
        engine_wake_pass(j);
    for (size_t i = 0; any && i < n; i++)
        if (it[i].refused) {
            unstore_job(j, it[i].job->name);
            it[i].rc = PAI_E_INVALID;
        }
    for (size_t i = 0; i < n; i++)
        if (it[i].job)
            sub_write_free(&it[i].w);
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

/* Step 1 of one submission: parse, the user's checks, render; *job_out
 * and *ssh_out (malloc'ed or NULL) on success. */
static pai_err_t sub_parse(engine_t *j, const char *user, const char *yaml, size_t len,
                           lc_job_t **job_out, char **ssh_out, pai_error_t *e)
{
    *job_out = NULL;
    *ssh_out = NULL;
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
    *job_out = job;
    *ssh_out = ssh;
    return PAI_OK;
}

/* Counted as coming from here to its reservation: a flush about to encode
 * waits a moment for them (persist.c, gather). */
void engine_submit_batch(engine_t *j, engine_submit_call_t *calls, size_t n)
{
    sub_item_t *it = xcalloc(n ? n : 1, sizeof(*it));
    engine_sub_pending(j, (int)n);
    atomic_fetch_add(&j->persist.coming, (int)n);
    for (size_t i = 0; i < n; i++) {
        engine_submit_call_t *c = &calls[i];
        c->name = NULL;
        it[i].c = c;
        it[i].rc = sub_parse(j, c->user, c->yaml, c->len, &it[i].job, &it[i].ssh, c->e);
        /* Copied while the job is private: once admitted, another request
         * may stop and delete it. */
        if (it[i].job)
            it[i].name = xstrdup(it[i].job->name);
    }
    admit(j, it, n);
    bool gone = false; /* some were refused before their reservation */
    for (size_t i = 0; i < n; i++) {
        sub_item_t *x = &it[i];
        x->c->rc = x->rc;
        gone |= !x->arrived;
        if (x->rc == PAI_OK) {
            x->c->name = x->name;
        } else {
            free(x->name);
            lc_job_free(x->job);
        }
        free(x->ssh);
    }
    if (gone) {
        engine_lock(j);
        for (size_t i = 0; i < n; i++)
            if (!it[i].arrived)
                engine_sub_arrived(j);
        engine_unlock(j);
    }
    engine_sub_pending(j, -(int)n);
    free(it);
}

pai_err_t engine_submit(engine_t *j, const char *user, const char *yaml, size_t len,
                        char **name_out, pai_error_t *e)
{
    engine_submit_call_t c = {.user = user, .yaml = yaml, .len = len, .e = e};
    engine_submit_batch(j, &c, 1);
    *name_out = c.name;
    return c.rc;
}
