/*
 * snaps.c - the last durable record of every published job, for reads that
 * must not queue behind the engine lock.
 *
 * A scheduling pass over a long queue holds mu for tens of milliseconds, and
 * a job-detail GET that waited for it behind every submission of a storm took
 * up to seconds (docs/benchmarks-history.md, "Scale").  So each committed job record
 * (the text the store got: at submission, and from every flush) is kept here
 * by job name, under its own leaf lock; a read that does not get mu within a
 * few milliseconds (engine_lock_within) decodes and renders that record
 * instead, without mu, as it already did for a finished (compacted) job from
 * the store.  Such an answer is the job as the store has it: at most one
 * flush behind memory.  What only memory knows is kept beside the record,
 * updated by the engine when it changes: the waiting reason memory last
 * computed (engine_refresh_reason) and since when the running attempt's
 * GPUs have all been idle (engine_usage_sample), each with the attempt
 * count it is about, so a reason or idle figure of an earlier attempt is
 * never shown for a later one.
 *
 * Invariants: snap.mu is a leaf (taken under mu or alone, nothing taken
 * under it); an entry exists from the job's publication to its removal from
 * the table (a reason or idle figure for a name without one is dropped);
 * once the job is compacted its entry is the shared stored mark (the reader
 * then reads the store; no memory per finished job); the texts replace each
 * other in flush order (flush_mu).
 */
#include "engine/engine_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "common/util.h"

typedef struct {
    char *text;               /* the committed record; NULL: compacted, in the store */
    char *reason;             /* the waiting reason memory last computed, or NULL */
    int64_t idle_since;       /* all running GPUs idle since (0: not idle) */
    int reason_att, idle_att; /* the job's attempt count when each was set */
} snap_t;

/* The entry of every compacted job: its record is in the store, and a
 * finished job has no reason or idle figure (no memory per finished job). */
static snap_t stored_mark;

static void snap_free(void *v)
{
    snap_t *s = v;
    if (s == &stored_mark)
        return;
    free(s->text);
    free(s->reason);
    free(s);
}

void engine_snaps_init(engine_t *j)
{
    pthread_mutex_init(&j->snaps.mu, NULL);
    j->snaps.map = strmap_new(snap_free);
}

void engine_snaps_free(engine_t *j)
{
    strmap_free(j->snaps.map);
    j->snaps.map = NULL;
    pthread_mutex_destroy(&j->snaps.mu);
}

void engine_snap_put(engine_t *j, const char *name, char *text)
{
    engine_assert_locked(j);
    pthread_mutex_lock(&j->snaps.mu); /* the leaf lock */
    snap_t *s = strmap_get(j->snaps.map, name);
    if (!text) { /* compacted: the shared mark replaces the entry */
        if (s != &stored_mark && strmap_put(j->snaps.map, name, &stored_mark) != PAI_OK)
            abort(); /* only a NULL value fails */
    } else {
        if (!s || s == &stored_mark) {
            s = xcalloc(1, sizeof(*s));
            if (strmap_put(j->snaps.map, name, s) != PAI_OK)
                abort();
        }
        free(s->text);
        s->text = text;
    }
    pthread_mutex_unlock(&j->snaps.mu);
}

void engine_snap_reason(engine_t *j, const lc_job_t *job)
{
    engine_assert_locked(j);
    if (job->pending || !job->waiting_reason)
        return;
    pthread_mutex_lock(&j->snaps.mu); /* the leaf lock */
    snap_t *s = strmap_get(j->snaps.map, job->name);
    if (s && s != &stored_mark &&
        (s->reason_att != job->natts || !s->reason ||
         strcmp(s->reason, job->waiting_reason) != 0)) {
        free(s->reason);
        s->reason = xstrdup(job->waiting_reason);
        s->reason_att = job->natts;
    }
    pthread_mutex_unlock(&j->snaps.mu);
}

void engine_snap_idle(engine_t *j, const lc_job_t *job, int64_t since)
{
    engine_assert_locked(j);
    if (job->pending)
        return;
    pthread_mutex_lock(&j->snaps.mu); /* the leaf lock */
    snap_t *s = strmap_get(j->snaps.map, job->name);
    if (s && s != &stored_mark) {
        s->idle_since = since;
        s->idle_att = job->natts;
    }
    pthread_mutex_unlock(&j->snaps.mu);
}

void engine_snap_drop(engine_t *j, const char *name)
{
    engine_assert_locked(j);
    pthread_mutex_lock(&j->snaps.mu); /* the leaf lock */
    (void)strmap_del(j->snaps.map, name);
    pthread_mutex_unlock(&j->snaps.mu);
}

engine_snap_t engine_snap_get(engine_t *j, const char *name, char **text, engine_snap_mem_t *mem)
{
    *text = NULL;
    *mem = (engine_snap_mem_t){0};
    pthread_mutex_lock(&j->snaps.mu); /* the leaf lock */
    const snap_t *s = strmap_get(j->snaps.map, name);
    engine_snap_t r = !s ? ENGINE_SNAP_NONE : !s->text ? ENGINE_SNAP_STORED : ENGINE_SNAP_TEXT;
    if (r == ENGINE_SNAP_TEXT)
        *text = xstrdup(s->text);
    if (s) {
        mem->reason = s->reason ? xstrdup(s->reason) : NULL;
        mem->reason_att = s->reason_att;
        mem->idle_since = s->idle_since;
        mem->idle_att = s->idle_att;
    }
    pthread_mutex_unlock(&j->snaps.mu);
    return r;
}
