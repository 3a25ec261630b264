/*
 * dispatch.c - the job engine's scheduler glue: requests queued in the
 * scheduler, scheduling passes and the effects of their decisions (bind,
 * preemption), and the effects of lifecycle events (engine_apply()).
 *
 * Invariants: everything here runs with mu held; a job is in the scheduler
 * exactly when job->queued; the fields are j->pass and j->retry
 * (engine_int.h).  The scheduler thread that drives the passes is in
 * engine.c.
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "common/vec.h"
#include "protocol/exitspec.h"
#include "protocol/job.h"
#include "sched/sched.h"

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
void engine_enqueue_or_fail(engine_t *j, lc_job_t *job, int64_t now)
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
        rows[r][t->index] = (lc_place_t){t->node, ip, mask, ports[k], np, t->cell};
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
        engine_event(j, job, "Normal", "Scheduled",
                     d->opportunistic ? "all tasks placed (opportunistic)" : "all tasks placed",
                     now);
        engine_apply(j, job, &fx, now);
        engine_note(j, job, ENGINE_NOTE_RUNNING, "all tasks placed", 0, now);
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
    engine_event(j, v, "Warning", "Preempted", msg, now);
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
        engine_event(j, job, "Warning", "FailedScheduling", job->waiting_reason, now);
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

/* ---------------------------------------------------------------- checks */

void engine_sched_violation(void *ctx, const char *event, const char *job, const char *what)
{
    engine_t *j = ctx;
    j->check.violations++;
    log_error("scheduler invariant violated after %s%s%s: %s", event, job ? " of job=" : "",
              job ? job : "", what);
}

/* What this pass decided ("bind a, preempt b"; waits left out), for the
 * log of a violation the sampled check after it finds. */
static void note_decisions(char *buf, size_t len, const sched_decision_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (d[i].kind == SCHED_WAIT)
            continue;
        size_t used = strlen(buf);
        if (used + 1 >= len)
            return;
        snprintf(buf + used, len - used, "%s%s %s", used ? ", " : "", sched_kind_name(d[i].kind),
                 d[i].job_id);
    }
}

/* The sampled check (ENGINE_CHECK_SAMPLE): the whole model, at most once per
 * interval, so that production pays one scan a minute.  ENGINE_CHECK_EVERY
 * needs none: the scheduler's own hook checks after every decision. */
static void sampled_check(engine_t *j, int64_t now, const char *decided)
{
    int64_t every = j->opts.sched_check_interval_ms > 0 ? j->opts.sched_check_interval_ms : 60000;
    if (j->opts.sched_check != ENGINE_CHECK_SAMPLE || now - j->check.last_ms < every)
        return;
    j->check.last_ms = now;
    j->check.runs++;
    sched_violation_t v[4];
    size_t n = sched_check(j->sched, v, ARRAY_LEN(v));
    for (size_t i = 0; i < n && i < ARRAY_LEN(v); i++)
        log_error("scheduler invariant violated (sampled check after pass %llu; decided: %s): %s",
                  (unsigned long long)j->pass.done + 1, decided[0] ? decided : "nothing",
                  v[i].what);
    j->check.violations += n;
}

void engine_schedule(engine_t *j, int64_t now)
{
    engine_assert_locked(j);
    char decided[512] = "";
    for (int round = 0; round < 4 && j->pass.need; round++) {
        j->pass.need = false;
        const sched_decision_t *d = NULL;
        size_t n = 0;
        if (sched_schedule(j->sched, now, &d, &n) != PAI_OK) {
            log_error("scheduler pass failed");
            return;
        }
        note_decisions(decided, sizeof decided, d, n);
        /* Decisions stay valid until the next pass (sched.h). */
        for (size_t i = 0; i < n; i++)
            decision(j, &d[i], now);
    }
    note_lazy_downgrades(j);
    sampled_check(j, now, decided);
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
        engine_event(j, job, "Normal", "Retry", "job attempt retried", now);
        engine_note(j, job, ENGINE_NOTE_RETRIED, NULL, 0, now);
        if (job->retry_at_ms <= now) {
            engine_enqueue_or_fail(j, job, now);
        } else {
            VEC_XRESERVE(j->retry.jobs, j->retry.cap, j->retry.n + 1);
            j->retry.jobs[j->retry.n++] = job;
        }
    }
    if (fx->final) {
        engine_event(j, job, job->state == JOB_FAILED ? "Warning" : "Normal", "Completed",
                     lc_job_state_name(job->state), now);
        engine_note_final(j, job, now);
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

/* ---------------------------------------------------------------- passes */

/* The engine whose kicks this thread holds back (engine_kicks_hold), and
 * whether one was asked for meanwhile. */
static _Thread_local struct {
    engine_t *j;
    bool owed;
} held_kicks;

void engine_kick(engine_t *j)
{
    engine_assert_locked(j);
    if (!j->pass.need)
        return;
    if (held_kicks.j == j)
        held_kicks.owed = true;
    else
        pthread_cond_signal(&j->pass.cv);
}

void engine_kicks_hold(engine_t *j)
{
    engine_assert_locked(j);
    assert(!held_kicks.j && "kicks held back once");
    held_kicks.j = j;
    held_kicks.owed = false;
}

bool engine_kicks_release(engine_t *j)
{
    engine_assert_locked(j);
    assert(held_kicks.j == j);
    bool owed = held_kicks.owed && j->pass.need; /* a pass here since may have done it */
    held_kicks.j = NULL;
    held_kicks.owed = false;
    return owed;
}

void engine_wake_pass(engine_t *j)
{
    assert(!engine_holds_lock(j) && "engine_kick under mu");
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

bool engine_pass_cheap(const engine_t *j)
{
    engine_assert_locked(j);
    return engine_queue_short(j) || j->pass.last_us < ENGINE_CHEAP_PASS_US;
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
    int64_t t0 = time_mono_us(); /* the real clock: what the pass cost, whatever the engine's */
    engine_schedule(j, engine_now_ms(j));
    engine_snapshot_vcs(j);
    j->pass.last_us = time_mono_us() - t0;
    j->pass.done++;
    pthread_cond_broadcast(&j->pass.done_cv);
}

bool engine_pass_to_flush(engine_t *j)
{
    engine_assert_locked(j);
    engine_run_pass(j);
    /* Read under mu: submissions change it.  The submissions this pass
     * answered are written by the flush after it (engine_sub_queue). */
    bool dirty = engine_flush_wanted(j);
    j->persist.flush_due |= dirty;
    return dirty;
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
        engine_snap_reason(j, job); /* for reads without mu */
    }
}
