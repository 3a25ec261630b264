/*
 * job_spec.c - a parsed job spec's memory, and the read accessors.
 */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "protocol/job_internal.h"

#define ARENA_CHUNK 4096u

struct arena_chunk {
    arena_chunk_t *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *job_arena_alloc(job_spec_t *spec, size_t size)
{
    struct job_priv *p = spec->priv_;
    size = (size + 15u) & ~(size_t)15u;
    arena_chunk_t *c = p->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = xcalloc(1, sizeof(*c) + cap);
        c->cap = cap;
        c->next = p->chunks;
        p->chunks = c;
    }
    void *r = c->data + c->used;
    c->used += size;
    return r;
}

void job_arena_free(arena_chunk_t *chunks)
{
    while (chunks) {
        arena_chunk_t *next = chunks->next;
        free(chunks);
        chunks = next;
    }
}

static void extras_free(job_extras_t *x)
{
    for (size_t i = 0; i < x->n_plugins; i++)
        json_decref(x->plugins[i].parameters);
    json_decref(x->storages);
    json_decref(x->notification);
    json_decref(x->json);
}

void job_spec_free(job_spec_t *spec)
{
    if (!spec)
        return;
    for (size_t i = 0; i < spec->n_prereqs; i++)
        json_decref(spec->prereqs[i].json);
    extras_free(&spec->extras);
    if (spec->priv_) {
        ydoc_free(spec->priv_->doc);
        job_arena_free(spec->priv_->chunks);
        free(spec->priv_);
    }
    free(spec);
}

const job_role_t *job_role_find(const job_spec_t *spec, const char *name)
{
    for (size_t i = 0; spec && name && i < spec->n_roles; i++)
        if (strcmp(spec->roles[i].name, name) == 0)
            return &spec->roles[i];
    return NULL;
}

const job_prereq_t *job_prereq_find(const job_spec_t *spec, job_prereq_type_t type,
                                    const char *name)
{
    for (size_t i = 0; spec && name && i < spec->n_prereqs; i++)
        if (spec->prereqs[i].type == type && spec->prereqs[i].name &&
            strcmp(spec->prereqs[i].name, name) == 0)
            return &spec->prereqs[i];
    return NULL;
}

static const struct {
    const char *name;
    int value;
} priorities[] = {
    [JOB_PRIO_CRIT] = {"crit", 120},
    [JOB_PRIO_PROD] = {"prod", 100},
    [JOB_PRIO_TEST] = {"test", 10},
    [JOB_PRIO_OPPO] = {"oppo", -1},
};

int job_priority_value(job_priority_t p)
{
    return (size_t)p < ARRAY_LEN(priorities) ? priorities[p].value
                                             : priorities[JOB_PRIO_TEST].value;
}

int job_spec_priority(const job_spec_t *spec)
{
    return job_priority_value(spec->extras.priority_class);
}

const char *job_priority_name(job_priority_t p)
{
    return (size_t)p < ARRAY_LEN(priorities) ? priorities[p].name : "test";
}

bool job_priority_parse(const char *s, job_priority_t *out)
{
    for (size_t i = 0; s && i < ARRAY_LEN(priorities); i++) {
        if (strcmp(priorities[i].name, s) == 0) {
            *out = (job_priority_t)i;
            return true;
        }
    }
    return false;
}

const char *job_prereq_type_name(job_prereq_type_t t)
{
    static const char *const names[] = {"dockerimage", "script", "output", "data"};
    return (size_t)t < ARRAY_LEN(names) ? names[t] : "?";
}

int job_total_tasks(const job_spec_t *spec)
{
    int n = 0;
    for (size_t i = 0; i < spec->n_roles; i++)
        n += spec->roles[i].instances;
    return n;
}

int job_total_gpus(const job_spec_t *spec)
{
    int n = 0;
    for (size_t i = 0; i < spec->n_roles; i++)
        n += spec->roles[i].instances * spec->roles[i].gpu;
    return n;
}

int job_role_ports(const job_role_t *role, const char *label)
{
    for (size_t i = 0; role && i < role->n_ports; i++)
        if (strcmp(role->ports[i].name, label) == 0)
            return role->ports[i].count;
    return 0;
}

bool job_gang(const job_spec_t *spec)
{
    return spec->extras.gang_allocation;
}

static const char *kv_get(const job_kvlist_t *l, const char *key)
{
    for (size_t i = 0; key && i < l->n; i++)
        if (strcmp(l->items[i].key, key) == 0)
            return l->items[i].value;
    return NULL;
}

const char *job_secret(const job_spec_t *spec, const char *key)
{
    return kv_get(&spec->secrets, key);
}

const char *job_parameter(const job_spec_t *spec, const char *key)
{
    return kv_get(&spec->parameters, key);
}
