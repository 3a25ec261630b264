/*
 * notices.c - the engine's side of notifications: which events a job asked
 * for (lc_job_t.notify, resolved at submission by ops.note_spec and stored
 * with the job record), and handing each event to ops.note where the job
 * changes (docs/operations.md, "Notifications").
 *
 * Invariants:
 *  - ops.note is called with mu held and only copies (the server's notify
 *    module queues the event for its own sender thread): no I/O here, and
 *    nothing here waits for a delivery;
 *  - state events (running, succeeded, failed, stopped, retried) are handed
 *    over where engine_apply / bind_job see them happen, once per change;
 *  - waiting and idle are found by a scan of the listed jobs from the timer
 *    (engine_tick, at most once every NOTE_SCAN_MS) and handed over once per
 *    job: the bit in notify->sent is stored with the job record, so a
 *    restart does not repeat them.
 * This file owns the engine's `notes` fields.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/engine_int.h"

#define NOTE_SCAN_MS 1000
#define NOTE_BIT(k)  ((uint8_t)(1u << (k)))

static const char *const note_names[ENGINE_NOTE__COUNT] = {
    [ENGINE_NOTE_RUNNING] = "running", [ENGINE_NOTE_SUCCEEDED] = "succeeded",
    [ENGINE_NOTE_FAILED] = "failed",   [ENGINE_NOTE_STOPPED] = "stopped",
    [ENGINE_NOTE_RETRIED] = "retried", [ENGINE_NOTE_WAITING] = "waiting",
    [ENGINE_NOTE_IDLE] = "idle",
};

const char *engine_note_name(engine_note_kind_t k)
{
    return (unsigned)k < ENGINE_NOTE__COUNT ? note_names[k] : "?";
}

int engine_note_parse(const char *s)
{
    for (int k = 0; s && k < ENGINE_NOTE__COUNT; k++)
        if (strcmp(note_names[k], s) == 0)
            return k;
    return -1;
}

void engine_note_attach(lc_job_t *job, const engine_note_spec_t *s)
{
    if (!s || (!s->email && !s->hook))
        return;
    const char *url = s->hook && s->url ? s->url : "";
    size_t n = strlen(url);
    lc_notify_t *nt = xcalloc(1, sizeof(*nt) + n + 1);
    nt->email = s->email;
    nt->hook = n ? s->hook : 0;
    memcpy(nt->url, url, n);
    free(job->notify);
    job->notify = nt;
}

/* The last attempt's diagnostics, else the reason the job waits or failed. */
static const char *why(const lc_job_t *job)
{
    const lc_attempt_t *a = job->atts && job->natts ? lc_current(job) : NULL;
    if (a && a->diag && *a->diag)
        return a->diag;
    if (a && a->trigger_msg && *a->trigger_msg)
        return a->trigger_msg;
    return job->waiting_reason;
}

void engine_note(engine_t *j, lc_job_t *job, engine_note_kind_t k, const char *msg, int64_t since,
                 int64_t now)
{
    engine_assert_locked(j);
    const lc_notify_t *nt = job->notify;
    uint8_t bit = NOTE_BIT(k);
    if (!j->ops.note || !nt || !((nt->email | nt->hook) & bit) || (nt->sent & bit))
        return;
    engine_notice_t n = {.kind = k,
                         .job = job->name,
                         .user_len = job->user_len,
                         .vc = job->vc,
                         .state = lc_job_state_name(job->state),
                         .has_exit = job->has_exit,
                         .exit_code = job->exit_code,
                         .message = msg ? msg : why(job),
                         .retries = job->retries,
                         .at_ms = now,
                         .submit_ms = job->submit_ms,
                         .since_ms = since,
                         .email = (nt->email & bit) != 0,
                         .webhook = (nt->hook & bit) && nt->url[0] ? nt->url : NULL};
    j->ops.note(j->ops.ud, &n);
    if (k == ENGINE_NOTE_WAITING || k == ENGINE_NOTE_IDLE) {
        job->notify->sent |= bit; /* once per job, stored with the record */
        engine_mark_dirty(j, job);
    }
}

void engine_note_final(engine_t *j, lc_job_t *job, int64_t now)
{
    engine_note_kind_t k = job->state == JOB_SUCCEEDED ? ENGINE_NOTE_SUCCEEDED
                           : job->state == JOB_FAILED  ? ENGINE_NOTE_FAILED
                                                       : ENGINE_NOTE_STOPPED;
    engine_note(j, job, k, NULL, 0, now);
}

/* Since when a waiting job waits: its submission, or the end of its last
 * attempt (a retry). */
static int64_t waiting_since(const lc_job_t *job)
{
    const lc_attempt_t *a = job->atts && job->natts ? lc_current(job) : NULL;
    return a && a->completed_ms ? a->completed_ms : job->submit_ms;
}

void engine_note_scan(engine_t *j, int64_t now)
{
    engine_assert_locked(j);
    if (!j->ops.note || now < j->notes.scan_at)
        return;
    j->notes.scan_at = now + NOTE_SCAN_MS;
    for (size_t i = 0; i < j->table.nlist; i++) {
        lc_job_t *job = j->table.list[i];
        const lc_notify_t *nt = job->notify;
        if (!nt)
            continue;
        uint8_t want = (uint8_t)((nt->email | nt->hook) & ~nt->sent);
        if (job->state == JOB_WAITING && (want & NOTE_BIT(ENGINE_NOTE_WAITING)) &&
            j->opts.note_waiting_ms > 0) {
            int64_t since = waiting_since(job);
            if (now - since < j->opts.note_waiting_ms)
                continue;
            engine_refresh_reason(j, job);
            engine_note(j, job, ENGINE_NOTE_WAITING, job->waiting_reason, since, now);
        } else if (job->state == JOB_RUNNING && (want & NOTE_BIT(ENGINE_NOTE_IDLE))) {
            /* flagged once idle for idle_gpu_ms; told note_idle_ms later */
            int64_t since = engine_gpu_idle_since(j, job, now - j->opts.note_idle_ms);
            if (!since)
                continue;
            char msg[160];
            snprintf(msg, sizeof msg, "its GPUs have been under %d%% utilization for %lld s",
                     j->opts.idle_gpu_util_pct, (long long)((now - since) / 1000));
            engine_note(j, job, ENGINE_NOTE_IDLE, msg, since, now);
        }
    }
}
