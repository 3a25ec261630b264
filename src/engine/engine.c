/*
 * engine.c - the job engine's core: the scheduler glue, effects of
 * lifecycle events, persistence and the timer thread.  The job table is in
 * table.c, start-up restore in restore.c.
 *
 * Locking: the rules are in engine_int.h ("Locking"); the lock wrappers
 * that check them are here.  Threads that changed something call
 * engine_flush() before answering: waiting on flush_mu while another thread
 * writes batches many changes into one commit.
 *
 * Procedure of one event (submission, agent report, node loss, timer):
 *   1. lock mu; apply the event to the lc_job_t (lifecycle.c);
 *   2. apply its effects: mark dirty, resync node refs (desired sets, seq,
 *      long-poll wake-ups), release / resubmit in the scheduler;
 *   3. run scheduling passes while something was released or queued;
 *   4. unlock; engine_flush().
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "common/vec.h"
#include "common/yamljson.h"
#include "protocol/exitspec.h"
#include "protocol/job.h"
#include "sched/sched.h"
#include "engine/codec.h"

#define TIMER_TICK_MS 250
#define MAX_EVENTS    32

/* ---------------------------------------------------------------- locks */

/* The engine whose mu this thread holds (NULL: none).  Per thread, so the
 * checks need no atomics; a thread holds at most one engine's mu. */
static _Thread_local const engine_t *held_by_me;

void engine_lock(engine_t *j)
{
    assert(held_by_me != j && "the engine lock is not recursive");
    pthread_mutex_lock(&j->mu); /* lock-ok: the wrapper */
    held_by_me = j;
    store_io_forbid(true);
}

void engine_unlock(engine_t *j)
{
    engine_assert_locked(j);
    store_io_forbid(false);
    held_by_me = NULL;
    pthread_mutex_unlock(&j->mu); /* lock-ok: the wrapper */
}

void engine_flush_lock(engine_t *j)
{
    assert(!engine_holds_lock(j) && "flush_mu is taken before mu, never under it");
    pthread_mutex_lock(&j->flush_mu); /* lock-ok: the wrapper */
}

void engine_flush_unlock(engine_t *j)
{
    pthread_mutex_unlock(&j->flush_mu); /* lock-ok: the wrapper */
}

bool engine_holds_lock(const engine_t *j)
{
    return held_by_me == j;
}

lc_reaction_t engine_exit_reaction(int code)
{
    switch (exitspec_for(code)->reaction) {
    case EXIT_REACTION_ALWAYS_RETRY:
        return LC_ALWAYS_RETRY;
    case EXIT_REACTION_ALWAYS_BACKOFF_RETRY:
        return LC_BACKOFF_RETRY;
    case EXIT_REACTION_RETRY_TO_MAX:
        return LC_RETRY_TO_MAX;
    default:
        return LC_NEVER_RETRY;
    }
}

/* ---------------------------------------------------------------- clock */

int64_t engine_now_ms(const engine_t *j)
{
    return j->ops.now_ms ? j->ops.now_ms(j->ops.ud) : time_wall_ms();
}

int64_t engine_mono_ms(const engine_t *j)
{
    return j->ops.now_ms ? j->ops.now_ms(j->ops.ud) : time_mono_ms();
}

/* ---------------------------------------------------------------- events */

void engine_event(lc_job_t *job, const char *type, const char *reason, const char *msg,
                  int64_t now_ms)
{
    json_t *ev = job->events;
    if (!ev)
        job->events = ev = json_array();
    json_t *last = json_array_get(ev, json_array_size(ev) - 1);
    if (last && strcmp(json_string_value(json_object_get(last, "reason")), reason) == 0 &&
        strcmp(json_string_value(json_object_get(last, "message")), msg) == 0) {
        json_object_set_new(last, "count",
                            json_integer(json_integer_value(json_object_get(last, "count")) + 1));
        json_object_set_new(last, "lastTimestamp", json_integer(now_ms));
        return;
    }
    if (json_array_size(ev) >= MAX_EVENTS)
        json_array_remove(ev, 0);
    json_array_append_new(ev, xjson_pack("{ss ss ss ss ss sI sI si ss}", "uid", job->name,
                                         "frameworkName", job->name, "type", type, "reason", reason,
                                         "message", msg, "firstTimestamp", (json_int_t)now_ms,
                                         "lastTimestamp", (json_int_t)now_ms, "count", 1,
                                         "sourceComponent", "pai-server"));
}

/* ---------------------------------------------------------------- dirty */

void engine_mark_dirty(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    /* A compacted job's record is complete in the store; re-encoding it
     * from memory would lose its attempts. */
    if (job->dirty || job->pending || job->compacted)
        return;
    job->dirty = true;
    VEC_XRESERVE(j->persist.dirty, j->persist.capdirty, j->persist.ndirty + 1);
    j->persist.dirty[j->persist.ndirty++] = job;
}

/* ---------------------------------------------------------------- scheduler */

sched_request_t engine_sched_request(const lc_job_t *job, sched_role_t roles[PAI_MAX_TASK_ROLES])
{
    for (int r = 0; r < job->nroles && r < (int)PAI_MAX_TASK_ROLES; r++)
        roles[r] = (sched_role_t){.name = job->roles[r].name,
                                  .instances = job->roles[r].instances,
                                  .gpus = job->roles[r].gpu,
                                  .cpus = job->roles[r].cpu,
                                  .memory_mb = job->roles[r].mem_mb,
                                  .sku = job->roles[r].sku,
                                  .pinned_cell = job->roles[r].pinned,
                                  .affinity_group = job->roles[r].group,
                                  .within_cell = job->roles[r].within};
    return (sched_request_t){.job_id = job->name,
                             .vc = job->vc,
                             .priority = job_priority_value((job_priority_t)job->prio),
                             .gang = true,
                             .lazy_preempt = job->lazy,
                             .submit_ms = job->submit_ms,
                             .roles = roles,
                             .n_roles = (size_t)job->nroles,
                             .opportunistic = job->oppo};
}

/* Queue job in the scheduler (a first attempt, a retry, or after restart). */
void engine_enqueue(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    if (job->queued)
        return;
    sched_role_t roles[PAI_MAX_TASK_ROLES];
    sched_request_t req = engine_sched_request(job, roles);
    char err[256] = "";
    pai_err_t rc = sched_submit(j->sched, &req, err, sizeof err);
    if (rc != PAI_OK) {
        log_warn("job=%s scheduler refused the request: %s", job->name, err);
        job->refused = true;
        free(job->waiting_reason);
        job->waiting_reason = xstrdup(err[0] ? err : pai_err_msg(rc));
        return;
    }
    job->queued = true;
    j->pass.need = true;
}

/* A retry the scheduler will not take (its VC is gone...) fails the job. */
static void enqueue_or_fail(engine_t *j, lc_job_t *job, int64_t now)
{
    engine_enqueue(j, job);
    if (!job->refused || job->state != JOB_WAITING)
        return;
    lc_effects_t fx = {0};
    lc_fail_waiting(job, EXIT_CREATION_PERMANENT, job->waiting_reason, now, &fx);
    engine_apply(j, job, &fx, now);
}

static int role_index(const lc_job_t *job, const char *name)
{
    for (int r = 0; r < job->nroles; r++)
        if (strcmp(job->roles[r].name, name) == 0)
            return r;
    return -1;
}

static int role_ports(const lc_role_t *r)
{
    int n = 0;
    for (int p = 0; p < r->nports; p++)
        n += r->ports[p].count;
    return n;
}

/* A waiting job does not keep its roles' commands and images in memory
 * (they are in its "jobcmd" record). */
static bool lacks_cmds(const lc_job_t *job)
{
    for (int r = 0; job->roles && r < job->nroles; r++)
        if (!job->roles[r].command)
            return true;
    return false;
}

/* The "jobcmd" record of job `name`, parsed (new reference); NULL and *rc
 * on failure (PAI_E_NOT_FOUND also when the record is unreadable). */
static json_t *read_cmds(engine_t *j, const char *name, pai_err_t *rc)
{
    engine_assert_unlocked(j);
    char *text = NULL;
    *rc = store_get(j->st, "jobcmd", name, &text);
    if (*rc != PAI_OK)
        return NULL;
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    if (!rec)
        *rc = PAI_E_NOT_FOUND;
    return rec;
}

bool engine_load_cmds(engine_t *j, lc_job_t *job)
{
    if (!lacks_cmds(job))
        return true;
    pai_err_t rc;
    json_t *rec = read_cmds(j, job->name, &rc);
    bool ok = rec && codec_cmds_decode(rec, job);
    json_decref(rec);
    return ok;
}

/* BIND: give every task its node, GPUs and ports; start the attempt.  The
 * roles' commands are not needed yet: engine_flush() reads them from the
 * store (without mu) before the attempt becomes durable, and only durable
 * attempts are sent to agents. */
static void bind_job(engine_t *j, lc_job_t *job, const sched_decision_t *d, int64_t now)
{
    lc_place_t **rows = xcalloc((size_t)job->nroles, sizeof(*rows));
    int **ports = xcalloc(d->n_tasks + 1, sizeof(*ports));
    for (int r = 0; r < job->nroles; r++)
        rows[r] = xcalloc((size_t)job->roles[r].instances, sizeof(lc_place_t));
    size_t placed = 0;
    for (size_t k = 0; k < d->n_tasks; k++) {
        const sched_task_bind_t *t = &d->tasks[k];
        int r = role_index(job, t->role);
        if (r < 0 || t->index < 0 || t->index >= job->roles[r].instances)
            continue;
        engine_node_t *n = nodes_find(j->nodes, t->node);
        const char *ip = n ? n->address : (t->address ? t->address : "127.0.0.1");
        uint64_t mask = 0;
        for (int g = 0; g < t->n_gpus; g++)
            if (t->gpus[g] >= 0 && t->gpus[g] < 64)
                mask |= 1ull << t->gpus[g];
        int np = role_ports(&job->roles[r]);
        ports[k] = xcalloc((size_t)np + 1, sizeof(int));
        if (np && !nodes_ports_alloc(j->nodes, ip, np, ports[k]))
            log_error("job=%s node=%s no free ports", job->name, t->node);
        rows[r][t->index] = (lc_place_t){t->node, ip, mask, ports[k], np};
        placed++;
    }
    if (placed != job->total_tasks) {
        log_error("job=%s bind placed %zu of %u tasks; releasing", job->name, placed,
                  job->total_tasks);
        engine_sched_forget(j, job->name);
        job->queued = false;
    } else {
        lc_effects_t fx = {0};
        lc_attempt_begin(job, (const lc_place_t *const *)rows, now, &fx);
        engine_event(job, "Normal", "Scheduled",
                     d->opportunistic ? "all tasks placed (opportunistic)" : "all tasks placed",
                     now);
        engine_apply(j, job, &fx, now);
    }
    for (size_t k = 0; k < d->n_tasks; k++)
        free(ports[k]);
    free(ports);
    for (int r = 0; r < job->nroles; r++)
        free(rows[r]);
    free(rows);
}

/* A lazy preemption downgrades a running job to opportunistic without a
 * decision: after a pass that made any, record them in the jobs (persisted,
 * so that a restart restores them opportunistic, not with their VC's cells). */
static void note_lazy_downgrades(engine_t *j)
{
    uint64_t lazy = sched_lazy_preemptions(j->sched);
    if (lazy == j->pass.lazy_seen)
        return;
    j->pass.lazy_seen = lazy;
    engine_table_it_t it = {0};
    lc_job_t *job;
    while ((job = engine_table_next(j, &it))) {
        if (job->lazy && !job->oppo && job->queued && job->state != JOB_WAITING &&
            !lc_job_state_final(job->state) && sched_job_opportunistic(j->sched, job->name)) {
            job->oppo = true;
            engine_mark_dirty(j, job);
        }
    }
}

static void preempt_job(engine_t *j, lc_job_t *v, const char *for_job, int64_t now)
{
    if (v->state != JOB_RUNNING)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, "Preempted by job %s", for_job);
    lc_effects_t fx = {0};
    lc_attempt_abort(v, EXIT_PREEMPTED, msg, now, engine_exit_reaction, &fx);
    engine_event(v, "Warning", "Preempted", msg, now);
    engine_apply(j, v, &fx, now);
}

static void decision(engine_t *j, const sched_decision_t *d, int64_t now)
{
    lc_job_t *job = engine_map_get(j, d->job_id);
    switch (d->kind) {
    case SCHED_BIND:
        if (!job || job->state != JOB_WAITING || job->stop_requested) {
            engine_sched_forget(j, d->job_id);
            if (job)
                job->queued = false;
            return;
        }
        bind_job(j, job, d, now);
        job->oppo = d->opportunistic; /* persisted with the attempt bind_job began */
        return;
    case SCHED_PREEMPT:
        for (size_t v = 0; v < d->n_victims; v++) {
            lc_job_t *victim = engine_map_get(j, d->victims[v]);
            if (victim)
                preempt_job(j, victim, d->job_id, now);
        }
        return;
    case SCHED_WAIT:
        if (!job)
            return;
        free(job->waiting_reason);
        job->waiting_reason = xstrdup(d->reason ? d->reason : "waiting for resources");
        /* Not persisted: a restart recomputes waiting reasons. */
        engine_event(job, "Warning", "FailedScheduling", job->waiting_reason, now);
        return;
    case SCHED_REFUSE:
        if (!job)
            return;
        job->queued = false;
        job->refused = true;
        free(job->waiting_reason);
        job->waiting_reason = xstrdup(d->reason ? d->reason : "the job can never fit");
        if (!job->pending) {
            lc_effects_t fx = {0};
            lc_fail_waiting(job, EXIT_CREATION_PERMANENT, job->waiting_reason, now, &fx);
            engine_apply(j, job, &fx, now);
        }
        return;
    }
}

void engine_schedule(engine_t *j, int64_t now)
{
    engine_assert_locked(j);
    for (int round = 0; round < 4 && j->pass.need; round++) {
        j->pass.need = false;
        const sched_decision_t *d = NULL;
        size_t n = 0;
        if (sched_schedule(j->sched, now, &d, &n) != PAI_OK) {
            log_error("scheduler pass failed");
            return;
        }
        /* Decisions stay valid until the next pass (sched.h). */
        for (size_t i = 0; i < n; i++)
            decision(j, &d[i], now);
    }
    note_lazy_downgrades(j);
}

/* ---------------------------------------------------------------- effects */

void engine_apply(engine_t *j, lc_job_t *job, const lc_effects_t *fx, int64_t now)
{
    engine_assert_locked(j);
    if (fx->changed)
        engine_mark_dirty(j, job);
    nodes_sync_job(j->nodes, job);
    if (fx->release && job->queued) {
        engine_sched_forget(j, job->name);
        job->queued = false;
        j->pass.need = true;
    }
    if (fx->final && job->queued) {
        engine_sched_forget(j, job->name);
        job->queued = false;
        j->pass.need = true;
    }
    if (fx->requeue && job->state == JOB_WAITING) {
        engine_event(job, "Normal", "Retry", "job attempt retried", now);
        if (job->retry_at_ms <= now) {
            enqueue_or_fail(j, job, now);
        } else {
            VEC_XRESERVE(j->retry.jobs, j->retry.cap, j->retry.n + 1);
            j->retry.jobs[j->retry.n++] = job;
        }
    }
    if (fx->final)
        engine_event(job, job->state == JOB_FAILED ? "Warning" : "Normal", "Completed",
                     lc_job_state_name(job->state), now);
}

/* ---------------------------------------------------------------- flush */

typedef struct {
    lc_job_t *job;
    uint32_t version;
    bool final;
    bool need_cmds;    /* bound while its commands were in the store only */
    json_t *cmds;      /* its "jobcmd" record, read without mu */
    pai_err_t cmds_rc; /* why cmds is NULL */
} flushed_t;

/* One flush: n job records then nn node records, and what to do with each
 * job once the batch is committed. */
typedef struct {
    store_op_t *ops;
    char **texts;
    flushed_t *done;
    size_t n, nn;
} flush_batch_t;

/* Task attempts move 0 -> 1 when encoded and 1 -> 2 once that record is
 * committed; only durable (2) ones are sent to agents, so an attempt id is
 * never handed out before the store knows it (a crash could otherwise hand
 * the same id to a new attempt, which an agent would refuse to start). */
static void mark_durable(engine_t *j, lc_job_t *job, uint8_t from, uint8_t to)
{
    for (int k = 0; job->atts && k < job->natts; k++)
        for (int r = 0; r < job->nroles; r++)
            for (int i = 0; i < job->roles[r].instances; i++) {
                lc_task_t *t = &job->atts[k].tasks[r][i];
                for (int a = 0; a < t->natts; a++) {
                    lc_task_attempt_t *ta = &t->atts[a];
                    if (ta->durable != from)
                        continue;
                    ta->durable = to;
                    engine_node_t *n = to == 2 && ta->node ? nodes_find(j->nodes, ta->node) : NULL;
                    if (n && !lc_task_state_final(ta->state))
                        nodes_bump(n);
                }
            }
}

void engine_sched_forget(engine_t *j, const char *job)
{
    engine_assert_locked(j);
    pai_err_t rc = sched_release(j->sched, job);
    if (rc == PAI_E_NO_JOB) /* not bound: waiting, then */
        rc = sched_cancel(j->sched, job);
    if (rc != PAI_OK)
        log_error("job=%s the scheduler held it neither bound nor waiting (%s); the engine's "
                  "view and the scheduler's disagree",
                  job, pai_err_msg(rc));
}

void engine_flush_or_retry(engine_t *j)
{
    /* engine_flush() logs the failure and marks the records dirty again */
    if (engine_flush(j) != PAI_OK)
        log_info("engine: the records not persisted are retried at the next tick");
}

/* The tasks of a bound job whose commands are missing from the store fail
 * (they cannot run), as a node loss fails them. */
static void fail_without_cmds(engine_t *j, lc_job_t *job)
{
    int64_t now = engine_now_ms(j);
    log_error("job=%s its commands are missing from the store", job->name);
    for (int r = 0; r < job->nroles; r++)
        for (int i = 0; i < job->roles[r].instances; i++) {
            lc_effects_t fx = {0};
            lc_task_exited(job, r, i, EXIT_CREATION_PERMANENT,
                           "the job's commands could not be read", now, engine_exit_reaction, &fx);
            engine_apply(j, job, &fx, now);
        }
}

/* Give a bound job the commands read for it.  False when the store could
 * not answer: the attempt stays not durable and the next flush tries again. */
static bool attach_cmds(engine_t *j, const flushed_t *f)
{
    if (!lacks_cmds(f->job) || (f->cmds && codec_cmds_decode(f->cmds, f->job)))
        return true;
    if (f->cmds_rc != PAI_OK && f->cmds_rc != PAI_E_NOT_FOUND)
        return false;
    fail_without_cmds(j, f->job);
    return true;
}

/* Step 1 (mu held): encode every dirty job and node. */
static void flush_encode(engine_t *j, flush_batch_t *b)
{
    engine_assert_locked(j);
    size_t n = j->persist.ndirty, cap = n + nodes_count(j->nodes) + 1;
    b->ops = xcalloc(cap, sizeof(*b->ops));
    b->texts = xcalloc(cap, sizeof(char *));
    b->done = xcalloc(n + 1, sizeof(*b->done));
    for (size_t i = 0; i < n; i++) {
        lc_job_t *job = j->persist.dirty[i];
        job->dirty = false;
        json_t *rec = codec_job_encode(job);
        b->texts[i] = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        mark_durable(j, job, 0, 1);
        b->ops[i] = (store_op_t){STORE_OP_PUT, "job", job->name, job->seq, b->texts[i]};
        bool final = lc_job_state_final(job->state);
        b->done[i] = (flushed_t){.job = job,
                                 .version = job->version,
                                 .final = final,
                                 .need_cmds = !final && job->atts && lacks_cmds(job)};
    }
    b->n = n;
    j->persist.ndirty = 0;
    for (size_t k = 0; k < nodes_count(j->nodes); k++) {
        engine_node_t *node = nodes_at(j->nodes, k);
        if (!node->dirty)
            continue;
        node->dirty = false;
        json_t *rec = xjson_pack(
            "{ss ss? si sI ss* sO* ss* so}", "name", node->name, "address", node->address, "cpus",
            node->cpus, "memory_mb", (json_int_t)node->memory_mb, "gpu_model", node->gpu_model,
            "gpus", node->gpus, "log_url", node->log_url, "cred", nodecred_encode(&node->cred));
        size_t at = b->n + b->nn++;
        b->texts[at] = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        b->ops[at] = (store_op_t){STORE_OP_PUT, "node", node->name, 0, b->texts[at]};
    }
}

/* Step 3 (mu held): the batch committed (rc PAI_OK) or not. */
static void flush_settle(engine_t *j, const flush_batch_t *b, pai_err_t rc)
{
    engine_assert_locked(j);
    for (size_t i = 0; i < b->n; i++) {
        const flushed_t *f = &b->done[i];
        lc_job_t *job = f->job;
        if (rc != PAI_OK || (f->need_cmds && !attach_cmds(j, f))) {
            engine_mark_dirty(j, job);
            continue;
        }
        mark_durable(j, job, 1, 2);
        /* Finished and unchanged since encoded: its attempts now live in
         * the store only. */
        if (f->final && job->version == f->version && !job->compacted && !job->dirty) {
            lc_job_compact(job);
            job->compacted = true;
        }
    }
}

static void flush_batch_free(flush_batch_t *b)
{
    for (size_t i = 0; i < b->n + b->nn; i++)
        free(b->texts[i]);
    for (size_t i = 0; i < b->n; i++)
        json_decref(b->done[i].cmds);
    free(b->texts);
    free(b->ops);
    free(b->done);
}

/* Encode under mu, write without it; flush_mu keeps the versions in order
 * and keeps every job in the batch alive (deletion takes it). */
pai_err_t engine_flush(engine_t *j)
{
    flush_batch_t b = {0};
    engine_flush_lock(j);
    engine_lock(j);
    flush_encode(j, &b);
    engine_unlock(j);
    /* Step 2: the commands of newly bound jobs, then one commit. */
    for (size_t i = 0; i < b.n; i++)
        if (b.done[i].need_cmds)
            b.done[i].cmds = read_cmds(j, b.ops[i].key, &b.done[i].cmds_rc);
    pai_err_t rc = PAI_OK;
    if (b.n + b.nn > 0) {
        engine_assert_unlocked(j);
        rc = store_batch(j->st, b.ops, b.n + b.nn);
    }
    if (rc != PAI_OK)
        log_error("persisting %zu job records failed: %s", b.n, pai_err_msg(rc));
    engine_lock(j);
    flush_settle(j, &b, rc);
    engine_unlock(j);
    engine_flush_unlock(j);
    flush_batch_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- timer */

static void lose_node(engine_t *j, engine_node_t *n, int64_t now)
{
    log_warn("node=%s lost (no sync for %lld s)", n->name, (long long)j->opts.node_lost_timeout_s);
    n->state = NODE_LOST;
    pai_err_t rc = sched_node_set_health(j->sched, n->name, false);
    /* NOT_FOUND: a node outside the HiveD config, which the scheduler never took */
    if (rc != PAI_OK && rc != PAI_E_NOT_FOUND)
        log_error("node=%s could not be marked unhealthy in the scheduler: %s", n->name,
                  pai_err_msg(rc));
    size_t nr = n->nrefs;
    engine_node_ref_t *refs = nr ? xcalloc(nr, sizeof(*refs)) : NULL;
    if (nr)
        memcpy(refs, n->refs, nr * sizeof(*refs));
    for (size_t i = 0; i < nr; i++) {
        lc_job_t *job = refs[i].job;
        lc_task_attempt_t *cur = lc_task_current(job, refs[i].role, refs[i].index);
        if (refs[i].ja != job->natts - 1 || !cur || cur->index != refs[i].ta ||
            lc_task_state_final(cur->state))
            continue;
        lc_effects_t fx = {0};
        lc_task_exited(job, refs[i].role, refs[i].index, EXIT_NODE_LOST, "node lost", now,
                       engine_exit_reaction, &fx);
        engine_event(job, "Warning", "NodeLost", n->name, now);
        engine_apply(j, job, &fx, now);
    }
    free(refs);
    nodes_clear_refs(j->nodes, n);
    j->pass.need = true;
}

void engine_tick(engine_t *j)
{
    engine_assert_locked(j);
    int64_t mono = engine_mono_ms(j), now = engine_now_ms(j);
    for (size_t k = 0; k < nodes_count(j->nodes); k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        if (n->state == NODE_HEALTHY && mono - n->last_seen_ms > j->opts.node_lost_timeout_s * 1000)
            lose_node(j, n, now);
    }
    for (size_t i = 0; i < j->retry.n;) {
        lc_job_t *job = j->retry.jobs[i];
        if (job->state != JOB_WAITING || job->stop_requested) {
            j->retry.jobs[i] = j->retry.jobs[--j->retry.n];
        } else if (job->retry_at_ms <= now) {
            j->retry.jobs[i] = j->retry.jobs[--j->retry.n];
            enqueue_or_fail(j, job, now);
        } else {
            i++;
        }
    }
    engine_kick(j);
}

static void *timer_main(void *arg)
{
    engine_t *j = arg;
    engine_lock(j);
    while (!j->threads.stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TIMER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->threads.timer_cv, &j->mu, &ts);
        if (j->threads.stopping)
            break;
        engine_tick(j);
        bool dirty = j->persist.ndirty > 0;
        engine_unlock(j);
        if (dirty)
            engine_flush_or_retry(j);
        engine_lock(j);
    }
    engine_unlock(j);
    return NULL;
}

/* ---------------------------------------------------------------- passes */

void engine_kick(engine_t *j)
{
    engine_assert_locked(j);
    if (j->pass.need)
        pthread_cond_signal(&j->pass.cv);
}

void engine_wait_pass(engine_t *j)
{
    engine_assert_locked(j);
    if (!j->threads.sched_started) { /* no_threads (or start-up): the pass runs here */
        j->pass.need = true;
        engine_run_pass(j);
        return;
    }
    uint64_t want = j->pass.done + 1;
    j->pass.need = true;
    pthread_cond_signal(&j->pass.cv);
    while (j->pass.done < want && !j->threads.stopping)
        pthread_cond_wait(&j->pass.done_cv, &j->mu);
}

bool engine_queue_short(const engine_t *j)
{
    engine_assert_locked(j);
    const sched_vc_status_t *rows = j->pass.vc_rows;
    int waiting = 0;
    for (size_t i = 0; rows && i < j->pass.nvc_rows; i++)
        if (i == 0 || strcmp(rows[i].vc, rows[i - 1].vc) != 0)
            waiting += rows[i].waiting_jobs;
    return waiting < ENGINE_SHORT_QUEUE;
}

void engine_snapshot_vcs(engine_t *j)
{
    engine_assert_locked(j);
    sched_vc_status_t *rows = j->pass.vc_rows;
    if (!rows)
        j->pass.vc_rows = rows = xcalloc(64, sizeof(*rows));
    size_t n = sched_vc_status(j->sched, rows, 64);
    j->pass.nvc_rows = n < 64 ? n : 64;
}

void engine_run_pass(engine_t *j)
{
    engine_assert_locked(j);
    engine_schedule(j, engine_now_ms(j));
    engine_snapshot_vcs(j);
    j->pass.done++;
    pthread_cond_broadcast(&j->pass.done_cv);
}

/* The scheduler thread: one pass whenever something asked for one.  A pass
 * holds mu; submissions and reports that arrive meanwhile queue up and are
 * all decided by the next pass (so the cost of a pass over a long queue is
 * shared by every event that arrived during the previous one). */
static void *scheduler_main(void *arg)
{
    engine_t *j = arg;
    engine_lock(j);
    while (!j->threads.stopping) {
        if (!j->pass.need) {
            pthread_cond_wait(&j->pass.cv, &j->mu);
            continue;
        }
        int64_t t0 = time_mono_us(); /* the real clock: it paces the thread, decides nothing */
        engine_run_pass(j);
        int64_t dt = time_mono_us() - t0;
        bool dirty = j->persist.ndirty > 0; /* read under mu: submissions change it */
        engine_unlock(j);
        if (dirty)
            engine_flush_or_retry(j);
        /* Duty cycle at most one half: a pass over a long queue holds the
         * engine lock, and API calls must get their turn between passes. */
        if (dt > 200) {
            struct timespec ts = {0, (long)(dt < 50000 ? dt : 50000) * 1000L};
            nanosleep(&ts, NULL);
        }
        engine_lock(j);
    }
    pthread_cond_broadcast(&j->pass.done_cv);
    engine_unlock(j);
    return NULL;
}

void engine_refresh_reason(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    if (job->state != JOB_WAITING || job->refused)
        return;
    char *why = NULL, buf[SCHED_EXPLAIN_MAX];
    int64_t now = engine_now_ms(j);
    if (!job->queued && job->retry_at_ms > now) {
        why = str_printf("retry %d waits for its backoff (%lld ms left)", job->retries,
                         (long long)(job->retry_at_ms - now));
    } else if (job->queued && j->sched &&
               sched_explain(j->sched, job->name, buf, sizeof(buf)) == PAI_OK &&
               strncmp(buf, "bound", 5) != 0) {
        why = str_printf("waiting for resources: %s", buf); /* precise, computed now */
    } else {
        const sched_vc_status_t *rows = j->pass.vc_rows;
        size_t n = rows ? j->pass.nvc_rows : 0;
        int g = 0, used = 0, waiting = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(rows[i].vc, job->vc) == 0) {
                g += rows[i].guaranteed_gpus;
                used += rows[i].used_gpus;
                waiting = rows[i].waiting_jobs;
            }
        why = str_printf("waiting for resources: %u GPUs for %u tasks in virtual cluster %s "
                         "(%d of %d guaranteed GPUs in use, %d jobs waiting)",
                         job->total_gpus, job->total_tasks, job->vc, used, g, waiting);
    }
    if (why) {
        free(job->waiting_reason);
        job->waiting_reason = why;
    }
}

/* ---------------------------------------------------------------- life */

/* The scheduler's latency histogram measures real time, whatever the
 * engine's clock (its decisions get the engine's now from engine_schedule). */
static int64_t mono_us(void *ctx)
{
    (void)ctx;
    return time_mono_us();
}

sched_opts_t engine_sched_opts(const engine_t *j)
{
    sched_opts_t so = {.policy = SCHED_POLICY_PAI,
                       .starvation_ms = j->opts.starvation_ms,
                       .clock_us = mono_us,
                       .quiet_waits = true};
    return so;
}

static pai_err_t make_sched(engine_t *j, sched_t **out, pai_error_t *e)
{
    sched_opts_t so = engine_sched_opts(j);
    const engine_opts_t *o = &j->opts;
    const char *fallback = o->hived_config && *o->hived_config ? o->hived_config : "nodes";
    char *stored = NULL, why[PAI_ERROR_MSG_MAX] = "";
    /* A VC change at run time stored the whole config; it wins over the file. */
    engine_assert_unlocked(j);
    pai_err_t rc = store_get(j->st, "meta", "hived_config", &stored);
    if (rc != PAI_OK && rc != PAI_E_NOT_FOUND) /* NOT_FOUND: no VC was ever changed */
        log_error("the stored scheduler config cannot be read (%s); using %s", pai_err_msg(rc),
                  fallback);
    if (rc == PAI_OK) {
        json_t *cfg = json_loads(stored, 0, NULL);
        free(stored);
        char *text = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
        rc = text ? sched_new_config(text, strlen(text), &so, out, why, sizeof why) : PAI_E_INVALID;
        free(text);
        if (rc == PAI_OK) {
            j->vcs.hived = cfg;
            return rc;
        }
        json_decref(cfg);
        log_error("stored scheduler config rejected (%s); using %s", why[0] ? why : pai_err_msg(rc),
                  fallback);
    }
    if (!o->hived_config || !o->hived_config[0]) {
        rc = sched_new_nodes(&so, out);
        return rc == PAI_OK
                   ? rc
                   : pai_error_set(e, rc, "cannot build the scheduler: %s", pai_err_msg(rc));
    }
    buf_t b;
    buf_init(&b, PAI_MAX_CONFIG_FILE);
    rc = buf_read_file(&b, o->hived_config);
    if (rc != PAI_OK) {
        pai_error_set(e, rc, "cannot read scheduler config %s: %s", o->hived_config,
                      pai_err_msg(rc));
    } else {
        why[0] = '\0';
        rc = sched_new_config(buf_str(&b), b.len, &so, out, why, sizeof why);
        if (rc == PAI_OK)
            j->vcs.hived = yjson_from_text(buf_str(&b), b.len);
        else
            pai_error_set(e, rc, "%s", why[0] ? why : pai_err_msg(rc));
    }
    buf_free(&b);
    return rc;
}

static pai_err_t start_threads(engine_t *j, pai_error_t *e)
{
    if (pthread_create(&j->threads.timer, NULL, timer_main, j) != 0)
        return pai_error_set(e, PAI_E_INTERNAL, "cannot start the job timer thread");
    j->threads.timer_started = true;
    if (pthread_create(&j->threads.scheduler, NULL, scheduler_main, j) != 0)
        return pai_error_set(e, PAI_E_INTERNAL, "cannot start the scheduler thread");
    j->threads.sched_started = true;
    return PAI_OK;
}

pai_err_t engine_new(store_t *st, const engine_opts_t *opts, const engine_ops_t *ops,
                     engine_t **out, pai_error_t *e)
{
    engine_t *j = xcalloc(1, sizeof(*j));
    j->st = st;
    if (ops)
        j->ops = *ops;
    j->opts = *opts;
    if (j->opts.node_lost_timeout_s <= 0)
        j->opts.node_lost_timeout_s = 60;
    if (j->opts.port_base <= 0)
        j->opts.port_base = 20000;
    if (j->opts.port_count <= 0)
        j->opts.port_count = 12000;
    if (j->opts.port_base + j->opts.port_count > 65536)
        j->opts.port_count = 65536 - j->opts.port_base;
    j->table.next_seq = 1;
    pthread_mutex_init(&j->mu, NULL);
    pthread_mutex_init(&j->flush_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->threads.timer_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&j->pass.cv, NULL);
    pthread_cond_init(&j->pass.done_cv, NULL);
    j->vcs.stale = true;
    j->nodes = nodes_new(j->opts.port_base, j->opts.port_count);
    pai_err_t rc = make_sched(j, &j->sched, e);
    if (rc != PAI_OK)
        goto fail;
    rc = engine_restore(j); /* no threads yet; it locks per record */
    if (rc != PAI_OK) {
        pai_error_set(e, rc, "loading jobs from the store failed: %s", pai_err_msg(rc));
        goto fail;
    }
    if (!j->opts.no_threads && (rc = start_threads(j, e)) != PAI_OK)
        goto fail;
    engine_flush_or_retry(j);
    *out = j;
    return PAI_OK;
fail:
    engine_free(j);
    return rc;
}

pai_err_t engine_tick_now(engine_t *j)
{
    engine_lock(j);
    engine_tick(j);
    if (!j->threads.sched_started && j->pass.need)
        engine_run_pass(j);
    engine_unlock(j);
    return engine_flush(j);
}

void engine_quiesce(engine_t *j)
{
    if (!j)
        return;
    engine_lock(j);
    j->threads.stopping = true;
    pthread_cond_broadcast(&j->threads.timer_cv);
    pthread_cond_broadcast(&j->pass.cv);
    pthread_cond_broadcast(&j->pass.done_cv);
    for (size_t k = 0; k < nodes_count(j->nodes); k++)
        pthread_cond_broadcast(&nodes_at(j->nodes, k)->cv);
    engine_unlock(j);
}

void engine_free(engine_t *j)
{
    if (!j)
        return;
    engine_quiesce(j);
    if (j->threads.timer_started)
        pthread_join(j->threads.timer, NULL);
    if (j->threads.sched_started)
        pthread_join(j->threads.scheduler, NULL);
    for (size_t i = 0; i < j->vcs.n; i++)
        free(j->vcs.names[i]);
    free(j->vcs.names);
    free(j->vcs.gpus);
    free(j->pass.vc_rows);
    json_decref(j->vcs.hived);
    engine_table_free(j);
    free(j->persist.dirty);
    free(j->retry.jobs);
    nodes_free(j->nodes);
    if (j->sched)
        sched_free(j->sched);
    pthread_cond_destroy(&j->threads.timer_cv);
    pthread_cond_destroy(&j->pass.cv);
    pthread_cond_destroy(&j->pass.done_cv);
    pthread_mutex_destroy(&j->mu);
    pthread_mutex_destroy(&j->flush_mu);
    free(j);
}
