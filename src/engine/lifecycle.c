/*
 * lifecycle.c - job and task state machines (see lifecycle.h).
 *
 * Completion (FrameworkController): when a task of role R completes, count
 * R's failed and succeeded tasks; minFailedInstances reached -> the attempt
 * fails, minSucceededInstances reached -> it succeeds (-1 disables each);
 * when every task completed and neither triggered, it succeeds ("All Tasks
 * are completed").  The triggering task and the reason are recorded, and the
 * remaining tasks are stopped (STOPPING, removed from their nodes' desired
 * sets).  The attempt ends when the last task is confirmed gone; then the
 * retry policy decides: stop requested -> STOPPED; succeeded -> SUCCEEDED;
 * else the exit table's reaction to the attempt's exit code: NEVER_RETRY ->
 * FAILED, ALWAYS_RETRY / BACKOFF -> a new attempt (not counted), RETRY_TO_MAX
 * -> a new attempt while acc_retries < jobRetryCount.
 */
#include "engine/lifecycle.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

/* Transient retries are not counted, but a job cannot loop forever. */
#define LC_MAX_TRANSIENT_RETRIES 100

static const char *const job_state_names[JOB__COUNT] = {
    [JOB_WAITING] = "WAITING", [JOB_RUNNING] = "RUNNING",     [JOB_STOPPING] = "STOPPING",
    [JOB_STOPPED] = "STOPPED", [JOB_SUCCEEDED] = "SUCCEEDED", [JOB_FAILED] = "FAILED",
};
static const char *const task_state_names[TASK__COUNT] = {
    [TASK_WAITING] = "WAITING",     [TASK_RUNNING] = "RUNNING", [TASK_STOPPING] = "STOPPING",
    [TASK_SUCCEEDED] = "SUCCEEDED", [TASK_FAILED] = "FAILED",   [TASK_STOPPED] = "STOPPED",
};

/* job_next[from] = bitmask of allowed targets. */
#define B(s) (1u << (s))
static const unsigned job_next[JOB__COUNT] = {
    [JOB_WAITING] = B(JOB_RUNNING) | B(JOB_STOPPING) | B(JOB_STOPPED) | B(JOB_FAILED),
    [JOB_RUNNING] = B(JOB_WAITING) | B(JOB_STOPPING) | B(JOB_SUCCEEDED) | B(JOB_FAILED),
    [JOB_STOPPING] = B(JOB_STOPPED),
};
static const unsigned task_next[TASK__COUNT] = {
    [TASK_WAITING] = B(TASK_RUNNING) | B(TASK_STOPPING) | B(TASK_SUCCEEDED) | B(TASK_FAILED),
    [TASK_RUNNING] = B(TASK_STOPPING) | B(TASK_SUCCEEDED) | B(TASK_FAILED),
    [TASK_STOPPING] = B(TASK_STOPPED),
};
#undef B

const char *lc_job_state_name(lc_job_state_t s)
{
    return s < JOB__COUNT ? job_state_names[s] : "UNKNOWN";
}

const char *lc_task_state_name(lc_task_state_t s)
{
    return s < TASK__COUNT ? task_state_names[s] : "UNKNOWN";
}

int lc_job_state_parse(const char *s)
{
    for (int i = 0; i < JOB__COUNT; i++)
        if (strcmp(s, job_state_names[i]) == 0)
            return i;
    return -1;
}

bool lc_job_state_final(lc_job_state_t s)
{
    return s == JOB_STOPPED || s == JOB_SUCCEEDED || s == JOB_FAILED;
}

bool lc_task_state_final(lc_task_state_t s)
{
    return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_STOPPED;
}

bool lc_job_set_state(lc_job_t *job, lc_job_state_t to)
{
    lc_job_state_t from = job->state;
    if (from == to)
        return true;
    if (from >= JOB__COUNT || !(job_next[from] & (1u << to))) {
        log_error("job=%s bad transition %s -> %s", job->name, lc_job_state_name(from),
                  lc_job_state_name(to));
        return false;
    }
    log_info("job=%s state %s -> %s", job->name, lc_job_state_name(from), lc_job_state_name(to));
    job->state = (uint8_t)to;
    job->version++;
    return true;
}

bool lc_task_set_state(const lc_job_t *job, lc_task_attempt_t *ta, lc_task_state_t to)
{
    lc_task_state_t from = ta->state;
    if (from == to)
        return true;
    if (from >= TASK__COUNT || !(task_next[from] & (1u << to))) {
        log_error("job=%s task attempt %d bad transition %s -> %s", job->name, ta->index,
                  lc_task_state_name(from), lc_task_state_name(to));
        return false;
    }
    log_debug("job=%s node=%s task attempt %d %s -> %s", job->name, ta->node ? ta->node : "-",
              ta->index, lc_task_state_name(from), lc_task_state_name(to));
    ta->state = (uint8_t)to;
    return true;
}

lc_attempt_t *lc_current(const lc_job_t *job)
{
    return job->natts > 0 ? &job->atts[job->natts - 1] : NULL;
}

lc_task_attempt_t *lc_task_current(const lc_job_t *job, int role, int index)
{
    lc_attempt_t *a = lc_current(job);
    if (!a || role < 0 || role >= job->nroles || index < 0 || index >= job->roles[role].instances)
        return NULL;
    lc_task_t *t = &a->tasks[role][index];
    return t->natts > 0 ? &t->atts[t->natts - 1] : NULL;
}

lc_task_attempt_t *lc_find(const lc_job_t *job, int job_attempt, int role, int index,
                           int task_attempt)
{
    if (job_attempt < 0 || job_attempt >= job->natts || role < 0 || role >= job->nroles ||
        index < 0 || index >= job->roles[role].instances)
        return NULL;
    lc_task_t *t = &job->atts[job_attempt].tasks[role][index];
    if (task_attempt < 0 || task_attempt >= t->natts)
        return NULL;
    return &t->atts[task_attempt];
}

static void place_copy(lc_task_attempt_t *ta, const lc_place_t *p)
{
    ta->node = xstrdup(p->node);
    ta->cell = p->cell ? xstrdup(p->cell) : NULL;
    ta->ip = xstrdup(p->ip ? p->ip : "");
    ta->gpus = p->gpus;
    ta->nports = p->nports;
    if (p->nports > 0) {
        ta->ports = xcalloc((size_t)p->nports, sizeof(int));
        memcpy(ta->ports, p->ports, (size_t)p->nports * sizeof(int));
    }
}

void lc_attempt_begin(lc_job_t *job, const lc_place_t *const *place, int64_t now_ms,
                      lc_effects_t *fx)
{
    job->atts = xrealloc(job->atts, (size_t)(job->natts + 1) * sizeof(*job->atts));
    lc_attempt_t *a = &job->atts[job->natts];
    memset(a, 0, sizeof(*a));
    a->index = job->natts++;
    a->state = JOB_RUNNING;
    a->created_ms = now_ms;
    a->trigger_index = -1;
    a->tasks = xcalloc((size_t)job->nroles, sizeof(*a->tasks));
    for (int r = 0; r < job->nroles; r++) {
        a->tasks[r] = xcalloc((size_t)job->roles[r].instances, sizeof(lc_task_t));
        for (int i = 0; i < job->roles[r].instances; i++) {
            lc_task_t *t = &a->tasks[r][i];
            t->atts = xcalloc(1, sizeof(*t->atts));
            t->natts = 1;
            t->atts[0].state = TASK_WAITING;
            t->atts[0].created_ms = now_ms;
            place_copy(&t->atts[0], &place[r][i]);
        }
    }
    FREE_NULL(&job->waiting_reason);
    lc_job_set_state(job, JOB_RUNNING);
    job->version++;
    fx->changed = fx->desired_changed = true;
}

void lc_task_running(lc_job_t *job, int role, int index, int64_t launched_ms, lc_effects_t *fx)
{
    lc_task_attempt_t *ta = lc_task_current(job, role, index);
    if (!ta || ta->state != TASK_WAITING)
        return;
    lc_task_set_state(job, ta, TASK_RUNNING);
    ta->launched_ms = launched_ms;
    /* the first start: reports need not come in the order of the starts */
    lc_attempt_t *a = lc_current(job);
    if (!a->launched_ms || launched_ms < a->launched_ms)
        a->launched_ms = launched_ms;
    if (!job->launch_ms || launched_ms < job->launch_ms)
        job->launch_ms = launched_ms;
    job->version++;
    fx->changed = true;
}

/* Calls fn on the current attempt of every task of the current attempt. */
static int count_role(const lc_job_t *job, int role, lc_task_state_t st)
{
    int n = 0;
    for (int i = 0; i < job->roles[role].instances; i++) {
        lc_task_attempt_t *ta = lc_task_current(job, role, i);
        if (ta && ta->state == st)
            n++;
    }
    return n;
}

static bool all_tasks_final(const lc_job_t *job)
{
    for (int r = 0; r < job->nroles; r++)
        for (int i = 0; i < job->roles[r].instances; i++) {
            lc_task_attempt_t *ta = lc_task_current(job, r, i);
            if (ta && !lc_task_state_final(ta->state))
                return false;
        }
    return true;
}

/* Mark every live task of the current attempt STOPPING. */
static void stop_live_tasks(lc_job_t *job, lc_effects_t *fx)
{
    for (int r = 0; r < job->nroles; r++)
        for (int i = 0; i < job->roles[r].instances; i++) {
            lc_task_attempt_t *ta = lc_task_current(job, r, i);
            if (ta && (ta->state == TASK_WAITING || ta->state == TASK_RUNNING)) {
                lc_task_set_state(job, ta, TASK_STOPPING);
                fx->desired_changed = true;
            }
        }
}

static void attempt_complete(lc_job_t *job, bool succeeded, int exit_code, int role, int index,
                             const char *msg, const char *diag, lc_effects_t *fx)
{
    lc_attempt_t *a = lc_current(job);
    if (a->completing)
        return;
    a->completing = true;
    a->has_exit = true;
    a->exit_code = succeeded ? 0 : exit_code;
    a->state = succeeded ? JOB_SUCCEEDED : JOB_FAILED;
    free(a->trigger_role);
    a->trigger_role = role >= 0 ? xstrdup(job->roles[role].name) : NULL;
    a->trigger_index = index;
    free(a->trigger_msg);
    a->trigger_msg = xstrdup(msg);
    free(a->diag);
    a->diag = diag ? xstrdup(diag) : NULL;
    log_info("job=%s attempt=%d completing %s code=%d: %s", job->name, a->index,
             succeeded ? "succeeded" : "failed", a->exit_code, msg);
    stop_live_tasks(job, fx);
    fx->changed = true;
}

int64_t lc_backoff_ms(int retries, lc_reaction_t r)
{
    if (r != LC_BACKOFF_RETRY && r != LC_ALWAYS_RETRY)
        return 0;
    int64_t ms = 1000;
    for (int i = 0; i < retries && ms < 60000; i++)
        ms *= 2;
    if (r == LC_ALWAYS_RETRY)
        ms /= 4; /* transient: retry soon, but not in a tight loop */
    return ms > 60000 ? 60000 : ms;
}

static void job_finish(lc_job_t *job, lc_job_state_t st, int exit_code, int64_t now_ms,
                       lc_effects_t *fx)
{
    lc_job_set_state(job, st);
    job->has_exit = true;
    job->exit_code = exit_code;
    job->complete_ms = now_ms;
    fx->final = true;
    fx->changed = true;
}

/* The current attempt is completing and all its tasks are gone: decide. */
static void attempt_done(lc_job_t *job, int64_t now_ms, lc_reaction_fn react, lc_effects_t *fx)
{
    lc_attempt_t *a = lc_current(job);
    a->completed_ms = now_ms;
    a->completing = false;
    fx->release = true;
    fx->changed = true;
    job->version++;
    if (job->stop_requested) {
        a->state = JOB_STOPPED;
        if (job->state == JOB_RUNNING)
            lc_job_set_state(job, JOB_STOPPING);
        job_finish(job, JOB_STOPPED, a->exit_code, now_ms, fx);
        return;
    }
    if (a->state == JOB_SUCCEEDED) {
        job_finish(job, JOB_SUCCEEDED, 0, now_ms, fx);
        return;
    }
    lc_reaction_t r = react(a->exit_code);
    bool retry = false;
    if ((r == LC_ALWAYS_RETRY || r == LC_BACKOFF_RETRY) &&
        job->retries - job->acc_retries < LC_MAX_TRANSIENT_RETRIES)
        retry = true;
    else if (r == LC_RETRY_TO_MAX && job->acc_retries < job->job_retry_count) {
        retry = true;
        job->acc_retries++;
    }
    if (!retry) {
        job_finish(job, JOB_FAILED, a->exit_code, now_ms, fx);
        return;
    }
    job->retries++;
    job->retry_at_ms = now_ms + lc_backoff_ms(job->retries - job->acc_retries - 1, r);
    lc_job_set_state(job, JOB_WAITING);
    log_info("job=%s retry %d (counted %d of %d) after code %d", job->name, job->retries,
             job->acc_retries, job->job_retry_count, a->exit_code);
    fx->requeue = true;
}

/* Non-gang task retry: a new task attempt on the same placement. */
static bool task_retry(lc_job_t *job, int role, int index, int exit_code, int64_t now_ms,
                       lc_reaction_fn react)
{
    if (job->gang || exit_code == 0)
        return false;
    lc_attempt_t *a = lc_current(job);
    lc_task_t *t = &a->tasks[role][index];
    lc_reaction_t r = react(exit_code);
    if (r == LC_NEVER_RETRY || (r == LC_RETRY_TO_MAX && t->retries >= job->task_retry_count))
        return false;
    if (r != LC_RETRY_TO_MAX && t->retries >= LC_MAX_TRANSIENT_RETRIES)
        return false;
    t->atts = xrealloc(t->atts, (size_t)(t->natts + 1) * sizeof(*t->atts));
    lc_task_attempt_t *prev = &t->atts[t->natts - 1], *ta = &t->atts[t->natts];
    memset(ta, 0, sizeof(*ta));
    ta->index = t->natts++;
    ta->state = TASK_WAITING;
    ta->created_ms = now_ms;
    lc_place_t p = {prev->node, prev->ip, prev->gpus, prev->ports, prev->nports, prev->cell};
    place_copy(ta, &p);
    t->retries++;
    log_info("job=%s task=%s/%d retry %d after code %d", job->name, job->roles[role].name, index,
             t->retries, exit_code);
    return true;
}

/* Completion policy after task (role, index) reached a final state. */
static void check_policy(lc_job_t *job, int role, int index, int exit_code, const char *diag,
                         lc_effects_t *fx)
{
    const lc_role_t *r = &job->roles[role];
    int failed = count_role(job, role, TASK_FAILED);
    int succeeded = count_role(job, role, TASK_SUCCEEDED);
    char msg[320];
    if (exit_code != 0 && r->min_failed != -1 && failed >= r->min_failed) {
        snprintf(msg, sizeof msg,
                 "FailedTaskCount %d has reached MinFailedTaskCount %d in TaskRole %s", failed,
                 r->min_failed, r->name);
        attempt_complete(job, false, exit_code, role, index, msg, diag, fx);
    } else if (exit_code == 0 && r->min_succeeded != -1 && succeeded >= r->min_succeeded) {
        snprintf(msg, sizeof msg,
                 "SucceededTaskCount %d has reached MinSucceededTaskCount %d in TaskRole %s",
                 succeeded, r->min_succeeded, r->name);
        attempt_complete(job, true, 0, role, index, msg, diag, fx);
    } else if (all_tasks_final(job)) {
        attempt_complete(job, true, 0, role, index, "All Tasks are completed", diag, fx);
    }
}

void lc_task_exited(lc_job_t *job, int role, int index, int exit_code, const char *diag,
                    int64_t now_ms, lc_reaction_fn react, lc_effects_t *fx)
{
    lc_attempt_t *a = lc_current(job);
    lc_task_attempt_t *ta = lc_task_current(job, role, index);
    if (!a || !ta || lc_task_state_final(ta->state))
        return;
    ta->has_exit = true;
    ta->completed_ms = now_ms;
    free(ta->diag);
    ta->diag = diag ? xstrdup(diag) : NULL;
    fx->changed = true;
    fx->desired_changed = true;
    job->version++;
    if (ta->state == TASK_STOPPING) {
        /* Killed because its attempt completed or the job was stopped. */
        ta->exit_code = exit_code == EXIT_NODE_LOST ? exit_code
                        : job->stop_requested       ? EXIT_STOP_REQUESTED
                                                    : EXIT_ATTEMPT_COMPLETION;
        lc_task_set_state(job, ta, TASK_STOPPED);
    } else {
        ta->exit_code = exit_code;
        lc_task_set_state(job, ta, exit_code == 0 ? TASK_SUCCEEDED : TASK_FAILED);
        if (!a->completing) {
            if (task_retry(job, role, index, exit_code, now_ms, react))
                return;
            check_policy(job, role, index, exit_code, diag, fx);
        }
    }
    if (a->completing && all_tasks_final(job))
        attempt_done(job, now_ms, react, fx);
}

void lc_attempt_abort(lc_job_t *job, int exit_code, const char *msg, int64_t now_ms,
                      lc_reaction_fn react, lc_effects_t *fx)
{
    lc_attempt_t *a = lc_current(job);
    if (!a || a->completing || lc_job_state_final(a->state) || job->state != JOB_RUNNING)
        return;
    if (a->completed_ms)
        return;
    attempt_complete(job, false, exit_code, -1, -1, msg, NULL, fx);
    if (all_tasks_final(job))
        attempt_done(job, now_ms, react, fx);
}

void lc_stop(lc_job_t *job, int64_t now_ms, lc_effects_t *fx)
{
    if (lc_job_state_final(job->state) || job->stop_requested)
        return;
    job->stop_requested = true;
    job->version++;
    fx->changed = true;
    lc_attempt_t *a = lc_current(job);
    if (job->state == JOB_WAITING) {
        /* Not placed (first attempt or a retry waiting in the queue). */
        job_finish(job, JOB_STOPPED, EXIT_STOP_REQUESTED, now_ms, fx);
        return;
    }
    lc_job_set_state(job, JOB_STOPPING);
    if (a && !a->completing) {
        attempt_complete(job, false, EXIT_STOP_REQUESTED, -1, -1,
                         "Stop to complete current job attempt", NULL, fx);
        a->state = JOB_STOPPED;
    }
    /* A task no node was ever sent can never be reported gone by one (a
     * stop right after the placement): it is stopped here. */
    for (int r = 0; a && r < job->nroles; r++)
        for (int i = 0; i < job->roles[r].instances; i++) {
            lc_task_attempt_t *ta = lc_task_current(job, r, i);
            if (ta && ta->state == TASK_STOPPING && !ta->sent) {
                ta->has_exit = true;
                ta->exit_code = EXIT_STOP_REQUESTED;
                ta->completed_ms = now_ms;
                lc_task_set_state(job, ta, TASK_STOPPED);
                fx->desired_changed = true;
            }
        }
    if (a && all_tasks_final(job))
        attempt_done(job, now_ms, NULL, fx);
}

void lc_fail_waiting(lc_job_t *job, int exit_code, const char *why, int64_t now_ms,
                     lc_effects_t *fx)
{
    if (job->state != JOB_WAITING)
        return;
    free(job->waiting_reason);
    job->waiting_reason = xstrdup(why);
    job_finish(job, JOB_FAILED, exit_code, now_ms, fx);
}

static const char *const shared_strs[] = {"ssh",    "http",   "default", "main",
                                          "worker", "master", "ps",      "taskrole"};

char *lc_str_dup(const char *s)
{
    for (size_t i = 0; i < ARRAY_LEN(shared_strs); i++)
        if (strcmp(s, shared_strs[i]) == 0)
            return (char *)shared_strs[i]; /* never written, never freed */
    return xstrdup(s);
}

void lc_str_free(char *s)
{
    for (size_t i = 0; i < ARRAY_LEN(shared_strs); i++)
        if (s == shared_strs[i])
            return;
    free(s);
}

void lc_role_clear(lc_role_t *r)
{
    lc_str_free(r->name);
    for (int p = 0; p < r->nports; p++)
        lc_str_free(r->ports[p].label);
    free(r->ports);
    free(r->command);
    free(r->image);
    free(r->image_auth);
    free(r->mounts);
    free(r->sku);
    free(r->pinned);
    free(r->group);
    free(r->within);
    memset(r, 0, sizeof(*r));
}

static void task_attempt_clear(lc_task_attempt_t *ta)
{
    free(ta->node);
    free(ta->cell);
    free(ta->ip);
    free(ta->ports);
    free(ta->diag);
}

void lc_attempts_free(lc_attempt_t *atts, int natts, const lc_job_t *job)
{
    for (int k = 0; k < natts; k++) {
        lc_attempt_t *a = &atts[k];
        for (int r = 0; a->tasks && r < job->nroles; r++) {
            for (int i = 0; a->tasks[r] && i < job->roles[r].instances; i++) {
                lc_task_t *t = &a->tasks[r][i];
                for (int j = 0; j < t->natts; j++)
                    task_attempt_clear(&t->atts[j]);
                free(t->atts);
            }
            free(a->tasks[r]);
        }
        free(a->tasks);
        free(a->trigger_role);
        free(a->trigger_msg);
        free(a->diag);
    }
    free(atts);
}

static lc_span_t task_span(const lc_job_t *job, const lc_task_attempt_t *ta)
{
    lc_span_t s = {.from_ms = ta->created_ms,
                   .to_ms = ta->completed_ms,
                   .used_gpu_ms = ta->used_gpu_ms,
                   .gpus = __builtin_popcountll(ta->gpus)};
    /* A final task without a completion time held its GPUs until its job
     * completed (or never, when that is unknown too). */
    if (!s.to_ms && lc_task_state_final(ta->state))
        s.to_ms = job->complete_ms ? job->complete_ms : s.from_ms;
    return s;
}

void lc_job_spans(const lc_job_t *job, void (*fn)(void *ud, const lc_span_t *s), void *ud)
{
    if (!job->atts) {
        for (int k = 0; k < job->nspans; k++)
            fn(ud, &job->spans[k]);
        return;
    }
    for (int k = 0; k < job->natts; k++) {
        const lc_attempt_t *a = &job->atts[k];
        for (int r = 0; a->tasks && r < job->nroles; r++)
            for (int i = 0; a->tasks[r] && i < job->roles[r].instances; i++) {
                const lc_task_t *t = &a->tasks[r][i];
                for (int x = 0; x < t->natts; x++) {
                    const lc_task_attempt_t *ta = &t->atts[x];
                    if (!ta->gpus || !ta->created_ms)
                        continue;
                    lc_span_t s = task_span(job, ta);
                    fn(ud, &s);
                }
            }
    }
}

static void add_span(void *ud, const lc_span_t *s)
{
    lc_job_t *job = ud;
    job->spans = xrealloc(job->spans, (size_t)(job->nspans + 1) * sizeof(*job->spans));
    job->spans[job->nspans++] = *s;
}

void lc_job_compact(lc_job_t *job)
{
    if (job->atts) {
        FREE_NULL(&job->spans);
        job->nspans = 0;
        lc_job_spans(job, add_span, job);
    }
    lc_attempts_free(job->atts, job->natts, job);
    job->atts = NULL;
    /* natts and nroles are kept (summaries show them); roles, events and
     * the reason live in the stored record only. */
    for (int r = 0; job->roles && r < job->nroles; r++)
        lc_role_clear(&job->roles[r]);
    FREE_NULL(&job->roles);
    FREE_NULL(&job->enc_static);
    FREE_NULL(&job->waiting_reason);
    engine_events_list_free(job->events);
    job->events = NULL;
    FREE_NULL(&job->notify); /* finished: nothing more to tell */
}

void lc_job_free(lc_job_t *job)
{
    if (!job)
        return;
    if (job->atts)
        lc_attempts_free(job->atts, job->natts, job);
    free(job->spans);
    for (int r = 0; job->roles && r < job->nroles; r++)
        lc_role_clear(&job->roles[r]);
    free(job->roles);
    free(job->enc_static);
    for (int t = 0; t < job->ntags; t++)
        free(job->tags[t]);
    free(job->tags);
    free(job->name);
    lc_str_free(job->vc);
    free(job->waiting_reason);
    engine_events_list_free(job->events);
    free(job->notify);
    free(job);
}

bool lc_has_tag(const lc_job_t *job, const char *tag)
{
    for (int t = 0; t < job->ntags; t++)
        if (strcmp(job->tags[t], tag) == 0)
            return true;
    return false;
}

void lc_add_tag(lc_job_t *job, const char *tag)
{
    if (lc_has_tag(job, tag))
        return;
    job->tags = xrealloc(job->tags, (size_t)(job->ntags + 1) * sizeof(char *));
    job->tags[job->ntags++] = xstrdup(tag);
    job->version++;
}

bool lc_del_tag(lc_job_t *job, const char *tag)
{
    for (int t = 0; t < job->ntags; t++)
        if (strcmp(job->tags[t], tag) == 0) {
            free(job->tags[t]);
            job->tags[t] = job->tags[--job->ntags];
            job->version++;
            return true;
        }
    return false;
}
