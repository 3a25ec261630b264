/*
 * table.c - the job engine's table: a hash map by name (for lookups)
 * and a list in submission order (for queries).  A job is added to the map
 * when it is accepted and published to the list once its record is durable.
 * Callers hold the engine's mutex (see engine.c).
 */
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "common/vec.h"
#include "engine/engine_int.h"

static uint64_t hash_name(const char *s)
{
    return hash_fnv1a(FNV1A_INIT, s);
}

static void map_grow(engine_t *j);

static void map_put(engine_t *j, lc_job_t *job)
{
    if ((j->table.n + 1) * 4 >= j->table.cap * 3)
        map_grow(j);
    size_t m = j->table.cap - 1, i = hash_name(job->name) & m;
    while (j->table.map[i])
        i = (i + 1) & m;
    j->table.map[i] = job;
    j->table.n++;
}

static void map_grow(engine_t *j)
{
    lc_job_t **old = j->table.map;
    size_t oldcap = j->table.cap;
    j->table.cap = oldcap ? oldcap * 2 : 1024;
    j->table.map = xcalloc(j->table.cap, sizeof(*j->table.map));
    j->table.n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            map_put(j, old[i]);
    free(old);
}

lc_job_t *engine_map_get(engine_t *j, const char *name)
{
    if (!j->table.cap)
        return NULL;
    size_t m = j->table.cap - 1, i = hash_name(name) & m;
    for (; j->table.map[i]; i = (i + 1) & m)
        if (strcmp(j->table.map[i]->name, name) == 0)
            return j->table.map[i];
    return NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void map_del(engine_t *j, const lc_job_t *job)
{
    size_t m = j->table.cap - 1, i = hash_name(job->name) & m;
    while (j->table.map[i] && j->table.map[i] != job)
        i = (i + 1) & m;
    if (!j->table.map[i])
        return;
    j->table.map[i] = NULL;
    j->table.n--;
    for (size_t k = (i + 1) & m; j->table.map[k]; k = (k + 1) & m) {
        lc_job_t *e = j->table.map[k];
        j->table.map[k] = NULL;
        j->table.n--;
        map_put(j, e);
    }
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
    map_put(j, job);
}

void engine_table_publish(engine_t *j, lc_job_t *job)
{
    job->pending = false;
    list_add(j, job);
}

void engine_table_remove(engine_t *j, lc_job_t *job)
{
    map_del(j, job);
    if (!job->pending)
        list_del(j, job);
    for (size_t i = 0; i < j->persist.ndirty; i++)
        if (j->persist.dirty[i] == job)
            j->persist.dirty[i] = j->persist.dirty[--j->persist.ndirty];
    for (size_t i = 0; i < j->retry.n; i++)
        if (j->retry.jobs[i] == job)
            j->retry.jobs[i] = j->retry.jobs[--j->retry.n];
}
