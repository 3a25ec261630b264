/*
 * table.c - the job engine's table: a hash map by name (for lookups)
 * and a list in submission order (for queries).  A job is added to the map
 * when it is accepted and published to the list once its record is durable.
 * Callers hold the engine's mutex (see engine.c).
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "engine/engine_int.h"

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void map_grow(engine_t *j);

static void map_put(engine_t *j, lc_job_t *job)
{
    if ((j->tabn + 1) * 4 >= j->tabcap * 3)
        map_grow(j);
    size_t m = j->tabcap - 1, i = hash_name(job->name) & m;
    while (j->tab[i])
        i = (i + 1) & m;
    j->tab[i] = job;
    j->tabn++;
}

static void map_grow(engine_t *j)
{
    lc_job_t **old = j->tab;
    size_t oldcap = j->tabcap;
    j->tabcap = oldcap ? oldcap * 2 : 1024;
    j->tab = xcalloc(j->tabcap, sizeof(*j->tab));
    j->tabn = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            map_put(j, old[i]);
    free(old);
}

lc_job_t *engine_map_get(engine_t *j, const char *name)
{
    if (!j->tabcap)
        return NULL;
    size_t m = j->tabcap - 1, i = hash_name(name) & m;
    for (; j->tab[i]; i = (i + 1) & m)
        if (strcmp(j->tab[i]->name, name) == 0)
            return j->tab[i];
    return NULL;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void map_del(engine_t *j, const lc_job_t *job)
{
    size_t m = j->tabcap - 1, i = hash_name(job->name) & m;
    while (j->tab[i] && j->tab[i] != job)
        i = (i + 1) & m;
    if (!j->tab[i])
        return;
    j->tab[i] = NULL;
    j->tabn--;
    for (size_t k = (i + 1) & m; j->tab[k]; k = (k + 1) & m) {
        lc_job_t *e = j->tab[k];
        j->tab[k] = NULL;
        j->tabn--;
        map_put(j, e);
    }
}

static void list_add(engine_t *j, lc_job_t *job)
{
    if (j->nlist == j->caplist) {
        j->caplist = j->caplist ? j->caplist * 2 : 1024;
        j->list = xrealloc(j->list, j->caplist * sizeof(*j->list));
    }
    j->list[j->nlist++] = job;
}

static void list_del(engine_t *j, const lc_job_t *job)
{
    for (size_t i = 0; i < j->nlist; i++)
        if (j->list[i] == job) {
            memmove(&j->list[i], &j->list[i + 1], (j->nlist - i - 1) * sizeof(*j->list));
            j->nlist--;
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
    for (size_t i = 0; i < j->ndirty; i++)
        if (j->dirty[i] == job)
            j->dirty[i] = j->dirty[--j->ndirty];
    for (size_t i = 0; i < j->nretry; i++)
        if (j->retry[i] == job)
            j->retry[i] = j->retry[--j->nretry];
}
