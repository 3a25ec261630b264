/*
 * table.c - the job engine's table: a map by name (for lookups), which owns
 * the jobs, a list in submission order and an index in name order (for
 * queries: nameidx.h).  A job is added to the map when it is accepted and
 * published to the list and the index once its record is durable.
 * Callers hold the engine's mutex (checked; engine_int.h, "Locking").
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/strmap.h"
#include "common/util.h"
#include "common/vec.h"
#include "engine/engine_int.h"

static void job_free(void *job)
{
    lc_job_free(job);
}

/* Memory for the map runs out only with memory for everything else: abort,
 * the daemons' policy (like xcalloc). */
static void map_put(engine_t *j, lc_job_t *job)
{
    if (!j->table.map && !(j->table.map = strmap_new(job_free)))
        abort();
    if (strmap_put(j->table.map, job->name, job) != PAI_OK)
        abort();
}

lc_job_t *engine_map_get(engine_t *j, const char *name)
{
    engine_assert_locked(j);
    return j->table.map ? strmap_get(j->table.map, name) : NULL;
}

static void map_del(engine_t *j, const lc_job_t *job)
{
    if (engine_map_get(j, job->name) == job)
        (void)strmap_take(j->table.map, job->name);
}

static void list_add(engine_t *j, lc_job_t *job)
{
    VEC_XRESERVE(j->table.list, j->table.caplist, j->table.nlist + 1);
    j->table.list[j->table.nlist++] = job;
}

static void list_del(engine_t *j, const lc_job_t *job)
{
    for (size_t i = 0; i < j->table.nlist; i++)
        if (j->table.list[i] == job) {
            memmove(&j->table.list[i], &j->table.list[i + 1],
                    (j->table.nlist - i - 1) * sizeof(*j->table.list));
            j->table.nlist--;
            return;
        }
}

void engine_table_add(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    map_put(j, job);
}

void engine_table_publish(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    job->pending = false;
    list_add(j, job);
    if (!j->table.byname)
        j->table.byname = nameidx_new();
    nameidx_add(j->table.byname, job);
}

void engine_table_remove(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    map_del(j, job);
    if (!job->pending) {
        list_del(j, job);
        if (!nameidx_del(j->table.byname, job))
            log_error("job=%s was not in the name index", job->name);
    }
    engine_snap_drop(j, job->name);
    engine_list_row_drop(job);
    for (size_t i = 0; i < j->persist.ndirty; i++)
        if (j->persist.dirty[i] == job)
            j->persist.dirty[i] = j->persist.dirty[--j->persist.ndirty];
    for (size_t i = 0; i < j->retry.n; i++)
        if (j->retry.jobs[i] == job)
            j->retry.jobs[i] = j->retry.jobs[--j->retry.n];
}

void engine_table_free(engine_t *j)
{
    for (size_t i = 0; i < j->table.nlist; i++)
        engine_list_row_drop(j->table.list[i]); /* no other thread now */
    strmap_free(j->table.map);                  /* frees every job */
    j->table.map = NULL;
    FREE_NULL(&j->table.list);
    j->table.nlist = j->table.caplist = 0;
    nameidx_free(j->table.byname);
    j->table.byname = NULL;
}

lc_job_t *engine_table_next(engine_t *j, engine_table_it_t *it)
{
    engine_assert_locked(j);
    if (it->list < j->table.nlist)
        return j->table.list[it->list++];
    void *val;
    while (j->table.map && strmap_next(j->table.map, &it->map, NULL, &val)) {
        lc_job_t *job = val;
        if (job->pending)
            return job;
    }
    return NULL;
}
