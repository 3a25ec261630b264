/*
 * engine.c - the job engine's core: new/free, the locks, the clock, job
 * events, the scheduler and timer threads.  The scheduler glue and the
 * effects of lifecycle events are in dispatch.c, persistence in persist.c,
 * the job table in table.c, start-up restore in restore.c.
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
#include "common/yamljson.h"
#include "protocol/exitspec.h"
#include "protocol/job.h"
#include "sched/sched.h"

#define TIMER_TICK_MS 250

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

bool engine_lock_within(engine_t *j, int ms)
{
    assert(held_by_me != j && "the engine lock is not recursive");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* timedlock's clock; a jump only moves the bound */
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    if (pthread_mutex_timedlock(&j->mu, &ts) != 0) /* lock-ok: the wrapper */
        return false;
    held_by_me = j;
    store_io_forbid(true);
    return true;
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

bool engine_flush_trylock(engine_t *j)
{
    assert(!engine_holds_lock(j) && "flush_mu is taken before mu, never under it");
    return pthread_mutex_trylock(&j->flush_mu) == 0; /* lock-ok: the wrapper */
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

/* ---------------------------------------------------------------- timer */

static void lose_node(engine_t *j, engine_node_t *n, int64_t now)
{
    log_warn("node=%s lost (no sync for %lld s)", n->name, (long long)j->opts.node_lost_timeout_s);
    n->state = NODE_LOST;
    j->vcs.stale = true; /* the largest healthy node may be gone */
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
        engine_event(j, job, "Warning", "NodeLost", n->name, now);
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
            engine_enqueue_or_fail(j, job, now);
        } else {
            i++;
        }
    }
    engine_note_scan(j, now);
    engine_kick(j);
}

static void *timer_main(void *arg)
{
    engine_t *j = arg;
    engine_lock(j);
    while (!j->threads.stopping) {
        struct timespec ts = time_after_ms(CLOCK_MONOTONIC, TIMER_TICK_MS);
        pthread_cond_timedwait(&j->threads.timer_cv, &j->mu, &ts);
        if (j->threads.stopping)
            break;
        engine_tick(j);
        bool dirty = j->persist.ndirty > 0 || j->persist.nwaits > 0;
        j->persist.flush_due |= dirty;
        engine_unlock(j);
        if (dirty)
            engine_flush_or_retry(j);
        engine_events_prune_due(j, engine_mono_ms(j));
        engine_lock(j);
    }
    engine_unlock(j);
    return NULL;
}

/* The scheduler thread: one pass whenever something asked for one.  A pass
 * holds mu; submissions and reports that arrive meanwhile queue up and are
 * all decided by the next pass (so the cost of a pass over a long queue is
 * shared by every event that arrived during the previous one). */
static void *scheduler_main(void *arg)
{
    engine_t *j = arg;
    timer_slack_undo(); /* its sleeps below are its pacing: kept to the us */
    engine_lock(j);
    while (!j->threads.stopping) {
        if (!j->pass.need) {
            pthread_cond_wait(&j->pass.cv, &j->mu);
            continue;
        }
        int64_t t0 = time_mono_us(); /* the real clock: it paces the thread, decides nothing */
        bool dirty = engine_pass_to_flush(j);
        int64_t dt = time_mono_us() - t0;
        engine_unlock(j);
        if (dirty)
            engine_flush_or_retry(j);
        /* A pass over a long queue holds the engine lock: API calls and
         * agent syncs get their turn between passes, at least one half of
         * the time, two thirds once passes take over 5 ms (thousands of
         * waiting jobs re-examined: submissions queued behind them at a
         * storm's rate, ~90% of the time with the old 50 ms cap).  The
         * events that arrive meanwhile are all decided by the next pass. */
        if (dt > 200) {
            int64_t us = dt > 5000 ? 2 * dt : dt;
            us = us < 1000000 ? us : 1000000;
            struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000L};
            nanosleep(&ts, NULL);
        }
        engine_lock(j);
    }
    pthread_cond_broadcast(&j->pass.done_cv);
    engine_unlock(j);
    return NULL;
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
                       .quiet_waits = true,
                       .check = j->opts.sched_check == ENGINE_CHECK_EVERY,
                       .on_violation = engine_sched_violation,
                       .violation_ctx = (void *)j};
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
    pthread_setname_np(j->threads.timer, "pai-timer"); /* top -H, /proc/PID/task/TID/comm */
    if (pthread_create(&j->threads.scheduler, NULL, scheduler_main, j) != 0)
        return pai_error_set(e, PAI_E_INTERNAL, "cannot start the scheduler thread");
    j->threads.sched_started = true;
    pthread_setname_np(j->threads.scheduler, "pai-sched");
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
    if (j->opts.read_only)
        j->opts.no_threads = true;
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
    engine_snaps_init(j);
    engine_combine_init(j);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->threads.timer_cv, &ca);
    pthread_cond_init(&j->pass.done_cv, &ca);      /* engine_flush_after_pass's bound */
    pthread_cond_init(&j->persist.coming_cv, &ca); /* a flush's wait for submissions */
    pthread_cond_init(&j->persist.sync_cv, &ca);   /* the syncs' group delay */
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&j->pass.cv, NULL);
    pthread_cond_init(&j->persist.sub_cv, NULL);
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
    if (j->opts.sched_test_corrupt)
        sched_test_corrupt_next_bind(j->sched);
    if (!j->opts.no_threads && (rc = start_threads(j, e)) != PAI_OK)
        goto fail;
    if (!j->opts.read_only)
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
    pthread_cond_broadcast(&j->persist.sub_cv); /* queued submissions write themselves */
    pthread_cond_broadcast(&j->persist.coming_cv);
    pthread_cond_broadcast(&j->persist.sync_cv);
    for (size_t k = 0; k < nodes_count(j->nodes); k++)
        nodes_wake(nodes_at(j->nodes, k));         /* blocked and held polls answer now */
    for (size_t k = 0; k < j->persist.nwaits; k++) /* and those waiting for a flush */
        j->persist.waits[k].waker.fn(j->persist.waits[k].waker.ud,
                                     j->persist.waits[k].waker.ticket);
    j->persist.nwaits = 0;
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
    free(j->persist.waits);
    free(j->retry.jobs);
    nodes_free(j->nodes);
    if (j->sched)
        sched_free(j->sched);
    pthread_cond_destroy(&j->threads.timer_cv);
    pthread_cond_destroy(&j->pass.cv);
    pthread_cond_destroy(&j->pass.done_cv);
    pthread_cond_destroy(&j->persist.sub_cv);
    pthread_cond_destroy(&j->persist.coming_cv);
    pthread_cond_destroy(&j->persist.sync_cv);
    free(j->persist.subs);
    pthread_mutex_destroy(&j->mu);
    pthread_mutex_destroy(&j->flush_mu);
    engine_snaps_free(j);
    engine_combine_free(j);
    free(j);
}
