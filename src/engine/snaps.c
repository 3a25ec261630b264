/*
 * snaps.c - the last durable record of every published job, for reads that
 * must not queue behind the engine lock.
 *
 * A scheduling pass over a long queue holds mu for tens of milliseconds, and
 * a job-detail GET that waited for it behind every submission of a storm took
 * up to seconds (docs/benchmarks.md, "Scale").  So each committed job record
 * (the text the store got: at submission, and from every flush) is kept here
 * by job name, under its own leaf lock; a read that does not get mu within a
 * few milliseconds (engine_lock_within) decodes and renders that record
 * instead, without mu, as it already did for a finished (compacted) job from
 * the store.  Such an answer is the job as the store has it: at most one
 * flush behind memory, and without what only memory knows (the scheduler's
 * precise waiting reason, the gpuIdle flag).
 *
 * Invariants: snap.mu is a leaf (taken under mu or alone, nothing taken
 * under it); an entry exists from the job's publication to its removal from
 * the table; its text is NULL once the job is compacted (the reader then
 * reads the store); the texts replace each other in flush order (flush_mu).
 */
#include "engine/engine_int.h"

#include <stdlib.h>

#include "common/strmap.h"
#include "common/util.h"

/* The value of a compacted job: read it from the store. */
static char stored_mark[] = "";

static void text_free(void *v)
{
    if (v != stored_mark)
        free(v);
}

void engine_snaps_init(engine_t *j)
{
    pthread_mutex_init(&j->snaps.mu, NULL);
    j->snaps.map = strmap_new(text_free);
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
    if (strmap_put(j->snaps.map, name, text ? text : stored_mark) != PAI_OK)
        abort(); /* only a NULL value fails */
    pthread_mutex_unlock(&j->snaps.mu);
}

void engine_snap_drop(engine_t *j, const char *name)
{
    engine_assert_locked(j);
    pthread_mutex_lock(&j->snaps.mu); /* the leaf lock */
    (void)strmap_del(j->snaps.map, name);
    pthread_mutex_unlock(&j->snaps.mu);
}

engine_snap_t engine_snap_get(engine_t *j, const char *name, char **text)
{
    *text = NULL;
    pthread_mutex_lock(&j->snaps.mu); /* the leaf lock */
    const char *t = strmap_get(j->snaps.map, name);
    engine_snap_t r = !t                 ? ENGINE_SNAP_NONE
                      : t == stored_mark ? ENGINE_SNAP_STORED
                                         : ENGINE_SNAP_TEXT;
    if (r == ENGINE_SNAP_TEXT)
        *text = xstrdup(t);
    pthread_mutex_unlock(&j->snaps.mu);
    return r;
}
