/*
 * sched.c - the scheduler's API: models, nodes, jobs, the scheduling pass,
 * decisions and status.  Placement is in sched_place.c, the cluster model
 * and buddy binding in sched_model.c, the HiveD config loader in
 * sched_config.c.  The policy is described in docs/scheduler.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "sched/sched_place.h"

/* ---- pass arena: strings and arrays handed out with decisions --------- */

struct arena {
    struct arena *next;
    size_t len, cap;
    char data[];
};

static void *arena_alloc(sched_t *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena *a = s->arena;
    if (!a || a->len + n > a->cap) {
        size_t cap = n > 65536 ? n : 65536;
        struct arena *na = malloc(sizeof(*na) + cap);
        if (!na)
            return NULL;
        na->next = a, na->len = 0, na->cap = cap;
        s->arena = a = na;
    }
    void *p = a->data + a->len;
    a->len += n;
    return p;
}

static void arena_reset(sched_t *s)
{
    struct arena *a = s->arena;
    while (a && a->next) {
        struct arena *nx = a->next;
        free(a);
        a = nx;
    }
    if (a)
        a->len = 0;
    s->arena = a;
}

static const char *arena_str(sched_t *s, const char *str)
{
    size_t n = strlen(str) + 1;
    char *p = arena_alloc(s, n);
    if (p)
        memcpy(p, str, n);
    return p;
}

/* ---- construction ----------------------------------------------------- */

static pai_err_t ensure_scratch(sched_t *s)
{
    if (s->cap_scratch >= s->n_cells)
        return PAI_OK;
    int cap = s->n_cells * 2 + 16;
    int *sc = realloc(s->scratch, (size_t)cap * sizeof(int));
    if (sc)
        s->scratch = sc;
    uint32_t *st = realloc(s->scratch_stamp, (size_t)cap * sizeof(uint32_t));
    if (st)
        s->scratch_stamp = st;
    if (!sc || !st)
        return PAI_E_NOMEM;
    memset(s->scratch_stamp, 0, (size_t)cap * sizeof(uint32_t));
    s->cap_scratch = cap;
    return PAI_OK;
}

pai_err_t sched_new_config(const char *yaml, size_t len, const sched_opts_t *opts, sched_t **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    sched_t *s = sched_model_alloc(opts);
    if (!s)
        return PAI_E_NOMEM;
    pai_err_t rc = sched_config_load(s, yaml ? yaml : "", yaml ? len : 0, err, errlen);
    if (rc == PAI_OK && s->n_cells == 0 && s->n_vcs == 0) {
        /* an empty config (HiveD's default.yaml): nodes come from reports */
        int v;
        s->derived = true;
        rc = sched_model_add_vc(s, "default", &v);
    }
    if (rc == PAI_OK)
        rc = ensure_scratch(s);
    if (rc != PAI_OK) {
        if (rc == PAI_E_NOMEM && err && errlen)
            str_copy(err, "out of memory", errlen);
        sched_free(s);
        return rc;
    }
    *out = s;
    return PAI_OK;
}

pai_err_t sched_new_nodes(const sched_opts_t *opts, sched_t **out)
{
    return sched_new_config(NULL, 0, opts, out, NULL, 0);
}

static pai_err_t uniform_types(sched_t *s, int gpus, int rack_nodes, int *ntype, int *rack_t)
{
    int leaf;
    if (sched_model_add_type(s, "GPU", &leaf) != PAI_OK ||
        sched_model_add_type(s, "NODE", ntype) != PAI_OK)
        return PAI_E_NOMEM;
    s->types[leaf].defined = true;
    s->types[*ntype] = (ctype_t){
        .child = leaf, .child_n = gpus, .node_level = true, .defined = true, .sku = SCHED_NONE};
    str_copy(s->types[*ntype].name, "NODE", SCHED_NAME_MAX);
    *rack_t = SCHED_NONE;
    if (rack_nodes > 0) {
        if (sched_model_add_type(s, "RACK", rack_t) != PAI_OK)
            return PAI_E_NOMEM;
        s->types[*rack_t].child = *ntype;
        s->types[*rack_t].child_n = rack_nodes;
        s->types[*rack_t].defined = true;
    }
    return sched_model_finish_types(s, NULL, 0);
}

static pai_err_t uniform_cells(sched_t *s, int nodes, int rack_nodes, int ntype, int rack_t)
{
    char name[32];
    int rack = SCHED_NONE, c;
    for (int i = 0; i < nodes; i++) {
        if (rack_t != SCHED_NONE && i % rack_nodes == 0 &&
            sched_model_add_cell(s, rack_t, SCHED_NONE, NULL, NULL, &rack, NULL, 0) != PAI_OK)
            return PAI_E_NOMEM;
        snprintf(name, sizeof(name), "node-%05d", i);
        if (sched_model_add_cell(s, ntype, rack, name, NULL, &c, NULL, 0) != PAI_OK)
            return PAI_E_NOMEM;
    }
    return PAI_OK;
}

pai_err_t sched_new_uniform(int nodes, int gpus_per_node, int rack_nodes,
                            const char *const *vc_names, const int *vc_nodes, size_t n_vcs,
                            const sched_opts_t *opts, sched_t **out, char *err, size_t errlen)
{
    *out = NULL;
    char scratch[8];
    if (!err || !errlen)
        err = scratch, errlen = sizeof(scratch);
    if (nodes < 1 || nodes > 1000000 || gpus_per_node < 1 ||
        gpus_per_node > SCHED_MAX_GPUS_PER_NODE || rack_nodes < 0) {
        snprintf(err, errlen, "bad cluster shape: %d nodes x %d GPUs", nodes, gpus_per_node);
        return PAI_E_BAD_CONFIG;
    }
    sched_t *s = sched_model_alloc(opts);
    if (!s)
        return PAI_E_NOMEM;
    s->opts.assume_healthy = true; /* a synthetic cluster has no agents */
    int ntype, rack_t;
    pai_err_t rc = uniform_types(s, gpus_per_node, rack_nodes, &ntype, &rack_t);
    if (rc == PAI_OK)
        rc = uniform_cells(s, nodes, rack_nodes, ntype, rack_t);
    for (size_t i = 0; rc == PAI_OK && i < n_vcs; i++) {
        int v;
        rc = sched_model_add_vc(s, vc_names[i], &v);
        if (rc == PAI_OK)
            rc = sched_model_vc_add_cells(s, v, ntype, rack_t != SCHED_NONE ? rack_t : ntype,
                                          vc_nodes[i], false, SCHED_NONE);
    }
    if (rc == PAI_OK)
        rc = sched_model_check(s, err, errlen);
    if (rc == PAI_OK)
        rc = ensure_scratch(s);
    if (rc != PAI_OK) {
        sched_free(s);
        return rc;
    }
    *out = s;
    return PAI_OK;
}

static void job_clear(job_t *j)
{
    free(j->id);
    for (int i = 0; i < j->n_roles; i++)
        free(j->roles[i]);
    free(j->roles);
    free(j->tasks);
    free(j->gpu);
    free(j->resv);
    *j = (job_t){0};
}

void sched_free(sched_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_jobs; i++)
        job_clear(&s->jobs[i]);
    for (int i = 0; i < s->n_nodes; i++) {
        free(s->nodes[i].owner);
        free(s->nodes[i].res);
        free(s->nodes[i].claim);
    }
    for (int i = 0; i < s->n_vcs; i++)
        free(s->vcs[i].vcells), free(s->vcs[i].gc_cells), free(s->vcs[i].dom);
    sched_attempt_free(&s->at);
    sched_strmap_free(&s->node_map);
    sched_strmap_free(&s->job_map);
    arena_reset(s);
    free(s->arena);
    free(s->types), free(s->skus), free(s->cells), free(s->nodes), free(s->vcs), free(s->nfree);
    free(s->jobs), free(s->free_slots), free(s->queue), free(s->dec);
    free(s->scratch), free(s->scratch_stamp), free(s->memo);
    free(s->cap_total), free(s->cap_max_node);
    free(s);
}

/* ---- nodes ------------------------------------------------------------ */

static int find_node(const sched_t *s, const char *name)
{
    return name ? sched_strmap_get(&s->node_map, name) : SCHED_NONE;
}

/* Node-derived mode: a new node becomes a top-level cell owned by VC default. */
static pai_err_t derived_add_node(sched_t *s, const sched_node_t *nd)
{
    char tname[SCHED_NAME_MAX];
    const char *sku = nd->sku && nd->sku[0] && nd->gpus > 0 ? nd->sku : NULL;
    if (sku)
        snprintf(tname, sizeof(tname), "%s-%d-NODE", sku, nd->gpus);
    else
        str_copy(tname, "CPU-NODE", sizeof(tname));
    int t = sched_model_find_type(s, tname);
    if (t == SCHED_NONE) {
        int leaf = SCHED_NONE;
        if (sku && sched_model_add_type(s, sku, &leaf) != PAI_OK)
            return PAI_E_NOMEM;
        if (sched_model_add_type(s, tname, &t) != PAI_OK)
            return PAI_E_NOMEM;
        ctype_t *ct = &s->types[t];
        ct->defined = ct->node_level = true;
        ct->child = leaf;
        ct->child_n = sku ? nd->gpus : 0;
        if (!sku)
            ct->level = 2, ct->sku = SCHED_NONE;
        if (sched_model_finish_types(s, NULL, 0) != PAI_OK)
            return PAI_E_NOMEM;
    }
    int c;
    char err[8];
    /* keyed by agent name: several agents may share an address (one host) */
    pai_err_t rc = sched_model_add_cell(s, t, SCHED_NONE, nd->name, NULL, &c, err, sizeof(err));
    if (rc != PAI_OK)
        return rc == PAI_E_BAD_CONFIG ? PAI_E_EXISTS : rc;
    int v = sched_model_find_vc(s, "default");
    if (s->types[t].gpus > 0 && v != SCHED_NONE &&
        sched_model_vc_add_cells(s, v, t, t, 1, false, SCHED_NONE) != PAI_OK)
        return PAI_E_NOMEM;
    return ensure_scratch(s);
}

pai_err_t sched_node_update(sched_t *s, const sched_node_t *nd)
{
    if (!nd || !nd->name || !nd->name[0] || strlen(nd->name) >= SCHED_NAME_MAX ||
        (nd->address && strlen(nd->address) >= SCHED_NAME_MAX) || nd->gpus < 0 ||
        nd->gpus > SCHED_MAX_GPUS_PER_NODE)
        return PAI_E_INVALID;
    int i = find_node(s, nd->name);
    if (i == SCHED_NONE && !s->derived)
        i = find_node(s, nd->address);
    if (i == SCHED_NONE) {
        if (!s->derived)
            return PAI_E_NOT_FOUND;
        pai_err_t rc = derived_add_node(s, nd);
        if (rc != PAI_OK)
            return rc;
        i = s->n_nodes - 1;
    } else if (s->derived && nd->gpus != s->nodes[i].ngpu) {
        return PAI_E_INVALID; /* a node changing its GPU count must be re-added */
    }
    node_t *n = &s->nodes[i];
    if (strcmp(n->name, nd->name) != 0) {
        if (strcmp(n->name, n->key) != 0)
            sched_strmap_del(&s->node_map, n->name);
        str_copy(n->name, nd->name, sizeof(n->name));
        if (strcmp(n->name, n->key) != 0 && sched_strmap_put(&s->node_map, n->name, i) != PAI_OK)
            return PAI_E_NOMEM;
    }
    if (nd->address && nd->address[0])
        str_copy(n->address, nd->address, sizeof(n->address));
    s->topo_ver++;
    if (nd->cpus > 0)
        n->cpus = nd->cpus;
    if (nd->memory_mb > 0)
        n->mem = nd->memory_mb;
    if (nd->gpus_per_group > 0)
        n->group = nd->gpus_per_group;
    return sched_node_set_health(s, nd->name, nd->healthy);
}

static void clear_reservation(sched_t *s, int jslot);

pai_err_t sched_node_set_health(sched_t *s, const char *name, bool healthy)
{
    int i = find_node(s, name);
    if (i == SCHED_NONE)
        return PAI_E_NOT_FOUND;
    node_t *n = &s->nodes[i];
    n->healthy = healthy;
    s->topo_ver++;
    if (!healthy)
        for (int g = 0; g < n->ngpu; g++)
            if (n->res[g] != SCHED_NONE)
                clear_reservation(s, n->res[g]);
    return PAI_OK;
}

/* ---- jobs -------------------------------------------------------------- */

static pai_err_t check_request(const sched_request_t *r, char *err, size_t errlen)
{
    if (!r->job_id || !r->job_id[0] || strlen(r->job_id) > PAI_MAX_NAME)
        return snprintf(err, errlen, "job id missing or too long"), PAI_E_INVALID;
    if (!r->vc || strlen(r->vc) >= SCHED_NAME_MAX)
        return snprintf(err, errlen, "virtual cluster missing or too long"), PAI_E_INVALID;
    if (r->n_roles < 1 || r->n_roles > PAI_MAX_TASK_ROLES)
        return snprintf(err, errlen, "a job needs 1 to %u task roles", PAI_MAX_TASK_ROLES),
               PAI_E_INVALID;
    size_t tasks = 0;
    for (size_t i = 0; i < r->n_roles; i++) {
        const sched_role_t *ro = &r->roles[i];
        if (!ro->name || ro->instances < 1 || ro->gpus < 0 || ro->cpus < 0 || ro->memory_mb < 0 ||
            ro->gpus > SCHED_MAX_GPUS_PER_NODE)
            return snprintf(err, errlen, "task role %s: bad instances or resources",
                            ro->name ? ro->name : "?"),
                   PAI_E_INVALID;
        tasks += (size_t)ro->instances;
    }
    if (tasks > PAI_MAX_TASKS_PER_JOB)
        return snprintf(err, errlen, "more than %u tasks", PAI_MAX_TASKS_PER_JOB), PAI_E_INVALID;
    return PAI_OK;
}

static int alloc_slot(sched_t *s)
{
    if (s->n_free)
        return s->free_slots[--s->n_free];
    if (s->n_jobs == s->cap_jobs) {
        int cap = s->cap_jobs ? s->cap_jobs * 2 : 64;
        job_t *nj = realloc(s->jobs, (size_t)cap * sizeof(*nj));
        int *nf = realloc(s->free_slots, (size_t)cap * sizeof(int));
        if (nj)
            s->jobs = nj;
        if (nf)
            s->free_slots = nf;
        if (!nj || !nf)
            return SCHED_NONE;
        s->cap_jobs = cap;
        /* the job map keys point into job ids (heap strings), not the array */
    }
    s->jobs[s->n_jobs] = (job_t){0};
    return s->n_jobs++;
}

static int find_pinned(const sched_t *s, const char *id)
{
    for (int c = 0; id && id[0] && c < s->n_cells; c++)
        if (strcmp(s->cells[c].pinned, id) == 0)
            return c;
    return SCHED_NONE;
}

/* Resolve SKU and pinned cell names; a bad name makes the job a REFUSE. */
static void resolve_task(sched_t *s, job_t *j, task_t *t, const sched_role_t *ro)
{
    t->sku = SCHED_NONE;
    t->pinned = SCHED_NONE;
    if (ro->sku && ro->sku[0]) {
        t->sku = sched_model_find_sku(s, ro->sku);
        if (t->sku == SCHED_NONE && !j->refuse)
            j->refuse = true, snprintf(j->reason, sizeof(j->reason),
                                       "unknown SKU type %s (task role %s)", ro->sku, ro->name);
    }
    if (ro->pinned_cell && ro->pinned_cell[0]) {
        t->pinned = find_pinned(s, ro->pinned_cell);
        if ((t->pinned == SCHED_NONE || s->cells[t->pinned].bound_vc != j->vc) && !j->refuse)
            j->refuse = true,
            snprintf(j->reason, sizeof(j->reason), "pinned cell %s is not in VC %s",
                     ro->pinned_cell, j->vc == SCHED_NONE ? "?" : s->vcs[j->vc].name);
    }
}

/* Affinity group id of role i: 0 (the whole job) unless it names a group;
 * roles naming the same group share the id of the first of them. */
static int affinity_group(const sched_request_t *r, size_t i)
{
    const char *g = r->roles[i].affinity_group;
    if (!g || !g[0])
        return 0;
    for (size_t k = 0; k < i; k++)
        if (r->roles[k].affinity_group && strcmp(r->roles[k].affinity_group, g) == 0)
            return (int)k + 1;
    return (int)i + 1;
}

static pai_err_t build_tasks(sched_t *s, job_t *j, const sched_request_t *r)
{
    int n = 0, gpus = 0;
    for (size_t i = 0; i < r->n_roles; i++)
        n += r->roles[i].instances, gpus += r->roles[i].instances * r->roles[i].gpus;
    j->roles = calloc(r->n_roles, sizeof(char *));
    j->tasks = calloc((size_t)n, sizeof(task_t));
    j->gpu = malloc(sizeof(int) * (size_t)(gpus ? gpus : 1));
    if (!j->roles || !j->tasks || !j->gpu)
        return PAI_E_NOMEM;
    j->n_roles = (int)r->n_roles;
    int k = 0, g0 = 0;
    j->sku = SCHED_NONE;
    for (size_t i = 0; i < r->n_roles; i++) {
        const sched_role_t *ro = &r->roles[i];
        if (!(j->roles[i] = strdup(ro->name)))
            return PAI_E_NOMEM;
        for (int x = 0; x < ro->instances; x++, k++) {
            task_t *t = &j->tasks[k];
            *t = (task_t){.role = (int)i,
                          .index = x,
                          .gpus = ro->gpus,
                          .cpus = ro->cpus,
                          .mem = ro->memory_mb,
                          .node = SCHED_NONE,
                          .gpu0 = g0,
                          .cell = SCHED_NONE,
                          .group = affinity_group(r, i)};
            resolve_task(s, j, t, ro);
            g0 += ro->gpus;
            if (t->gpus > j->max_task_gpus)
                j->max_task_gpus = t->gpus;
            if (t->sku != SCHED_NONE)
                j->sku = t->sku;
        }
    }
    j->n_tasks = n;
    j->total_gpus = gpus;
    return PAI_OK;
}

static pai_err_t queue_push(sched_t *s, int slot)
{
    if (s->n_queue == s->cap_queue) {
        int cap = s->cap_queue ? s->cap_queue * 2 : 64;
        int *q = realloc(s->queue, (size_t)cap * sizeof(int));
        if (!q)
            return PAI_E_NOMEM;
        s->queue = q, s->cap_queue = cap;
    }
    s->queue[s->n_queue++] = slot;
    s->queue_dirty = true;
    return PAI_OK;
}

static void queue_remove(sched_t *s, int slot)
{
    for (int i = 0; i < s->n_queue; i++)
        if (s->queue[i] == slot) {
            memmove(&s->queue[i], &s->queue[i + 1], sizeof(int) * (size_t)(s->n_queue - i - 1));
            s->n_queue--;
            return;
        }
}

static pai_err_t new_job(sched_t *s, const sched_request_t *r, int *out)
{
    int slot = alloc_slot(s);
    if (slot == SCHED_NONE)
        return PAI_E_NOMEM;
    job_t *j = &s->jobs[slot];
    j->id = strdup(r->job_id);
    j->vc = sched_model_find_vc(s, r->vc);
    j->prio = r->priority;
    j->oppo = r->priority < 0;
    j->gang = r->gang;
    j->lazy = r->lazy_preempt;
    j->submit_ms = r->submit_ms;
    j->seq = ++s->seq;
    j->dying_for = SCHED_NONE;
    if (j->vc == SCHED_NONE)
        j->refuse = true,
        snprintf(j->reason, sizeof(j->reason), "virtual cluster %s does not exist", r->vc);
    pai_err_t rc = j->id ? build_tasks(s, j, r) : PAI_E_NOMEM;
    if (rc == PAI_OK)
        rc = sched_strmap_put(&s->job_map, j->id, slot);
    if (rc != PAI_OK) {
        job_clear(j);
        s->free_slots[s->n_free++] = slot;
        return rc;
    }
    *out = slot;
    return PAI_OK;
}

pai_err_t sched_submit(sched_t *s, const sched_request_t *r, char *err, size_t errlen)
{
    char scratch[8];
    if (!err || !errlen)
        err = scratch, errlen = sizeof(scratch);
    err[0] = 0;
    pai_err_t rc = check_request(r, err, errlen);
    if (rc != PAI_OK)
        return rc;
    if (sched_strmap_get(&s->job_map, r->job_id) != SCHED_NONE) {
        snprintf(err, errlen, "job %s is already known to the scheduler", r->job_id);
        return PAI_E_CONFLICT_JOB;
    }
    int slot;
    rc = new_job(s, r, &slot);
    if (rc != PAI_OK)
        return rc;
    s->jobs[slot].state = JOB_WAITING;
    s->waiting++;
    rc = queue_push(s, slot);
    return rc;
}

static void free_job(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    clear_reservation(s, slot);
    if (j->waiting_on > 0) /* victims dying for this job: their GPUs go back to everyone */
        for (int i = 0; i < s->n_jobs; i++)
            if (s->jobs[i].state == JOB_DYING && s->jobs[i].dying_for == slot)
                s->jobs[i].dying_for = SCHED_NONE;
    j = &s->jobs[slot];
    sched_strmap_del(&s->job_map, j->id);
    job_clear(j);
    s->free_slots[s->n_free++] = slot;
}

static void clear_reservation(sched_t *s, int jslot)
{
    job_t *j = &s->jobs[jslot];
    for (int k = 0; k < j->n_resv; k++) {
        node_t *n = &s->nodes[j->resv[k] / SCHED_MAX_GPUS_PER_NODE];
        int g = j->resv[k] % SCHED_MAX_GPUS_PER_NODE;
        if (n->res[g] == jslot)
            n->res[g] = SCHED_NONE;
    }
    j->n_resv = 0;
    if (j->vc != SCHED_NONE && s->vcs[j->vc].reserver == jslot)
        s->vcs[j->vc].reserver = SCHED_NONE;
}

pai_err_t sched_cancel(sched_t *s, const char *job_id)
{
    int slot = sched_strmap_get(&s->job_map, job_id);
    if (slot == SCHED_NONE || s->jobs[slot].state != JOB_WAITING)
        return PAI_E_NO_JOB;
    queue_remove(s, slot);
    s->waiting--;
    free_job(s, slot);
    return PAI_OK;
}

/* Unbind the VC's unpinned cells that no guaranteed work uses. */
/* Remember a bound cell of VC v that may be unused now. */
static void gc_note(sched_t *s, int v, int c)
{
    vc_t *vc = &s->vcs[v];
    vc->gc = true;
    if (vc->n_gc == vc->cap_gc) {
        int cap = vc->cap_gc ? vc->cap_gc * 2 : 16;
        int *g = realloc(vc->gc_cells, sizeof(int) * (size_t)cap);
        if (!g) {
            vc->n_gc = -1; /* fall back to a full sweep */
            return;
        }
        vc->gc_cells = g, vc->cap_gc = cap;
    }
    if (vc->n_gc >= 0)
        vc->gc_cells[vc->n_gc++] = c;
}

static void gc_cell(sched_t *s, int v, int c)
{
    const cell_t *cell = &s->cells[c];
    if (cell->bound_vc == v && cell->vc_used == 0 && !s->vcs[v].vcells[cell->bound_vcell].pinned)
        sched_model_unbind(s, c);
}

/* Unbind the VC's unpinned cells that no guaranteed work uses. */
static void vc_gc(sched_t *s, int v)
{
    if (v == SCHED_NONE || !s->vcs[v].gc)
        return;
    vc_t *vc = &s->vcs[v];
    vc->gc = false;
    if (vc->n_gc < 0) {
        for (int i = 0; i < vc->n_vcells; i++)
            if (vc->vcells[i].cell != SCHED_NONE)
                gc_cell(s, v, vc->vcells[i].cell);
    } else {
        for (int i = 0; i < vc->n_gc; i++)
            gc_cell(s, v, vc->gc_cells[i]);
    }
    vc->n_gc = 0;
}

static int charged_cell(const sched_t *s, int node, int v)
{
    for (int c = s->nodes[node].cell; c != SCHED_NONE; c = s->cells[c].parent)
        if (s->cells[c].bound_vc != SCHED_NONE)
            return s->cells[c].bound_vc == v ? c : SCHED_NONE;
    return SCHED_NONE;
}

/* Count a running job in (d = +1) or out (-1) of the preemption filters. */
static void track_running(sched_t *s, const job_t *j, int d)
{
    if (j->oppo || j->vc == SCHED_NONE) {
        s->oppo_running += d;
        return;
    }
    vc_t *vc = &s->vcs[j->vc];
    for (int i = 0; i < vc->n_running_prios; i++)
        if (vc->running[i].prio == j->prio) {
            vc->running[i].count += d;
            return;
        }
    if (vc->n_running_prios < (int)ARRAY_LEN(vc->running) && d > 0) {
        vc->running[vc->n_running_prios].prio = j->prio;
        vc->running[vc->n_running_prios++].count = d;
    } else {
        vc->running_other += d;
    }
}

/* Could anything be preempted for j?  (Opportunistic jobs anywhere, or
 * lower-priority guaranteed jobs of its VC.) */
static bool may_preempt(const sched_t *s, const job_t *j)
{
    const vc_t *vc = &s->vcs[j->vc];
    if (s->oppo_running > 0 || vc->running_other > 0)
        return true;
    for (int i = 0; i < vc->n_running_prios; i++)
        if (vc->running[i].count > 0 && vc->running[i].prio < j->prio)
            return true;
    return false;
}

static void uncharge_task(sched_t *s, job_t *j, task_t *t)
{
    if (t->cell != SCHED_NONE) {
        s->cells[t->cell].vc_used -= t->gpus;
        if (s->cells[t->cell].vc_used == 0 && s->cells[t->cell].bound_vc != SCHED_NONE)
            gc_note(s, s->cells[t->cell].bound_vc, t->cell);
        t->cell = SCHED_NONE;
    }
    if (!j->oppo && j->vc != SCHED_NONE)
        s->vcs[j->vc].used_gpus -= t->gpus;
}

static void release_task(sched_t *s, int slot, task_t *t)
{
    job_t *j = &s->jobs[slot];
    node_t *n = &s->nodes[t->node];
    for (int k = 0; k < t->gpus; k++)
        n->owner[j->gpu[t->gpu0 + k]] = SCHED_NONE;
    n->used -= t->gpus;
    s->nfree[t->node] = (uint8_t)(n->ngpu - n->used);
    n->cpu_used -= t->cpus;
    n->mem_used -= t->mem;
    uncharge_task(s, j, t);
    t->bound = false;
    t->node = SCHED_NONE;
}

pai_err_t sched_release(sched_t *s, const char *job_id)
{
    int slot = sched_strmap_get(&s->job_map, job_id);
    if (slot == SCHED_NONE ||
        (s->jobs[slot].state != JOB_RUNNING && s->jobs[slot].state != JOB_DYING))
        return PAI_E_NO_JOB;
    job_t *j = &s->jobs[slot];
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].bound)
            release_task(s, slot, &j->tasks[i]);
    if (j->state == JOB_DYING && j->dying_for != SCHED_NONE && s->jobs[j->dying_for].waiting_on > 0)
        s->jobs[j->dying_for].waiting_on--;
    if (j->lazy_counted)
        s->vcs[j->vc].lazy_running--;
    track_running(s, j, -1);
    vc_gc(s, j->vc);
    bool queued = false;
    for (int i = 0; i < s->n_queue; i++)
        queued |= s->queue[i] == slot;
    if (queued) {
        queue_remove(s, slot);
        s->waiting--;
    }
    s->running--;
    free_job(s, slot);
    return PAI_OK;
}

/* Make the placed tasks of the attempt real. */
static void commit(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    for (int i = 0; i < j->n_tasks; i++) {
        task_t *t = &j->tasks[i];
        if (t->node == SCHED_NONE || t->bound)
            continue;
        node_t *n = &s->nodes[t->node];
        for (int k = 0; k < t->gpus; k++)
            n->owner[j->gpu[t->gpu0 + k]] = slot;
        n->used += t->gpus;
        s->nfree[t->node] = (uint8_t)(n->ngpu - n->used);
        n->cpu_used += t->cpus;
        n->mem_used += t->mem;
        t->bound = true;
        if (j->oppo || t->gpus == 0 || j->vc == SCHED_NONE)
            continue;
        s->vcs[j->vc].used_gpus += t->gpus;
        if (s->opts.policy == SCHED_POLICY_PAI) {
            t->cell = charged_cell(s, t->node, j->vc);
            if (t->cell != SCHED_NONE)
                s->cells[t->cell].vc_used += t->gpus;
        }
    }
}

/* ---- decisions ----------------------------------------------------------- */

static sched_decision_t *new_decision(sched_t *s, sched_kind_t kind, int slot)
{
    if (s->n_dec == s->cap_dec) {
        size_t cap = s->cap_dec ? s->cap_dec * 2 : 64;
        sched_decision_t *d = realloc(s->dec, cap * sizeof(*d));
        if (!d)
            return NULL;
        s->dec = d, s->cap_dec = cap;
    }
    sched_decision_t *d = &s->dec[s->n_dec];
    *d = (sched_decision_t){.kind = kind, .job_id = arena_str(s, s->jobs[slot].id)};
    if (!d->job_id)
        return NULL;
    s->n_dec++;
    s->kinds[kind]++;
    return d;
}

static pai_err_t emit_bind(sched_t *s, int slot, int first_new_mask_unused)
{
    (void)first_new_mask_unused;
    job_t *j = &s->jobs[slot];
    int n = 0;
    for (int i = 0; i < j->n_tasks; i++)
        n += j->tasks[i].node != SCHED_NONE && !j->tasks[i].bound;
    commit(s, slot);
    sched_decision_t *d = new_decision(s, SCHED_BIND, slot);
    sched_task_bind_t *tb = arena_alloc(s, sizeof(*tb) * (size_t)(n ? n : 1));
    if (!d || !tb)
        return PAI_E_NOMEM;
    d->tasks = tb;
    d->opportunistic = j->oppo;
    /* tasks bound by this decision are those without an emitted mark */
    for (int i = 0; i < j->n_tasks; i++) {
        task_t *t = &j->tasks[i];
        if (!t->bound || t->emitted)
            continue;
        t->emitted = true;
        int *gp = arena_alloc(s, sizeof(int) * (size_t)(t->gpus ? t->gpus : 1));
        if (!gp)
            return PAI_E_NOMEM;
        memcpy(gp, &j->gpu[t->gpu0], sizeof(int) * (size_t)t->gpus);
        tb[d->n_tasks++] = (sched_task_bind_t){.role = arena_str(s, j->roles[t->role]),
                                               .index = t->index,
                                               .node = arena_str(s, s->nodes[t->node].name),
                                               .address = arena_str(s, s->nodes[t->node].address),
                                               .n_gpus = t->gpus,
                                               .gpus = gp};
    }
    return PAI_OK;
}

static pai_err_t emit_text(sched_t *s, sched_kind_t kind, int slot)
{
    sched_decision_t *d = new_decision(s, kind, slot);
    if (!d)
        return PAI_E_NOMEM;
    d->reason = arena_str(s, s->jobs[slot].reason);
    return d->reason ? PAI_OK : PAI_E_NOMEM;
}

static pai_err_t emit_preempt(sched_t *s, int slot, const attempt_t *at)
{
    sched_decision_t *d = new_decision(s, SCHED_PREEMPT, slot);
    const char **v = arena_alloc(s, sizeof(char *) * (size_t)at->n_victims);
    if (!d || !v)
        return PAI_E_NOMEM;
    for (int i = 0; i < at->n_victims; i++) {
        job_t *vj = &s->jobs[at->victims[i]];
        v[i] = arena_str(s, vj->id);
        vj->state = JOB_DYING;
        vj->dying_for = slot;
    }
    d->victims = v;
    d->n_victims = (size_t)at->n_victims;
    s->preemptions += (uint64_t)at->n_victims;
    s->jobs[slot].waiting_on = at->n_victims;
    snprintf(s->jobs[slot].reason, sizeof(s->jobs[slot].reason),
             "preempting %d lower-priority or opportunistic job(s)", at->n_victims);
    d->reason = arena_str(s, s->jobs[slot].reason);
    return PAI_OK;
}

/* ---- the pai policy: domains, binding more cells, modes ------------------- */

struct memo {
    int vc, sku, prio;
    bool oppo;
    int max_task, total;
};

static bool sku_match(const sched_t *s, int type, int sku)
{
    return sku == SCHED_NONE || s->types[type].sku == sku;
}

/* The node ranges of the VC's unpinned bound cells of a SKU, neighbours
 * merged; cached until the VC binds or unbinds a cell. */
static pai_err_t vc_domain(sched_t *s, vc_t *vc, int sku)
{
    if (vc->dom_valid && vc->dom_sku == sku)
        return PAI_OK;
    vc->n_dom = 0;
    for (int i = 0; i < vc->n_vcells; i++) {
        const vcell_t *vcl = &vc->vcells[i];
        if (vcl->cell == SCHED_NONE || vcl->pinned || !sku_match(s, vcl->type, sku))
            continue;
        if (vc->n_dom == vc->cap_dom) {
            int cap = vc->cap_dom ? vc->cap_dom * 2 : 16;
            range_t *r = realloc(vc->dom, sizeof(range_t) * (size_t)cap);
            if (!r)
                return PAI_E_NOMEM;
            vc->dom = r, vc->cap_dom = cap;
        }
        const cell_t *c = &s->cells[vcl->cell];
        vc->dom[vc->n_dom++] = (range_t){c->node_lo, c->node_hi};
    }
    int k = 0; /* merge neighbours (vcell order: sorting costs more than it saves) */
    for (int i = 0; i < vc->n_dom; i++) {
        if (k && vc->dom[k - 1].hi == vc->dom[i].lo)
            vc->dom[k - 1].hi = vc->dom[i].hi;
        else
            vc->dom[k++] = vc->dom[i];
    }
    vc->n_dom = k;
    vc->dom_sku = sku;
    vc->dom_valid = true;
    return PAI_OK;
}

static pai_err_t domain_vc(sched_t *s, attempt_t *at, const job_t *j)
{
    vc_t *vc = &s->vcs[j->vc];
    pai_err_t rc = vc_domain(s, vc, j->sku);
    for (int i = 0; rc == PAI_OK && i < vc->n_dom; i++)
        rc = sched_attempt_add_range(at, vc->dom[i].lo, vc->dom[i].hi);
    bool pinned = false;
    for (int k = 0; k < j->n_tasks; k++)
        pinned |= j->tasks[k].pinned != SCHED_NONE;
    for (int i = 0; pinned && rc == PAI_OK && i < vc->n_vcells; i++) {
        const vcell_t *vcl = &vc->vcells[i];
        if (vcl->cell == SCHED_NONE || !vcl->pinned)
            continue;
        bool wanted = false;
        for (int k = 0; k < j->n_tasks; k++)
            wanted |= j->tasks[k].pinned == vcl->cell;
        if (wanted)
            rc = sched_attempt_add_range(at, s->cells[vcl->cell].node_lo,
                                         s->cells[vcl->cell].node_hi);
    }
    return rc;
}

static bool any_healthy(const sched_t *s, int c)
{
    for (int n = s->cells[c].node_lo; n < s->cells[c].node_hi; n++)
        if (s->nodes[n].healthy)
            return true;
    return false;
}

/* Bind unbound cells of the job's VC worth at least need GPUs; returns how many. */
static int bind_more(sched_t *s, attempt_t *at, const job_t *j, int need)
{
    vc_t *vc = &s->vcs[j->vc];
    int added = 0, bound = 0;
    for (int i = 0; i < vc->n_vcells && added < need; i++) {
        vcell_t *vcl = &vc->vcells[i];
        if (vcl->cell != SCHED_NONE || vcl->pinned || !sku_match(s, vcl->type, j->sku))
            continue;
        int c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, false, false);
        if (c != SCHED_NONE && !any_healthy(s, c)) /* buddy order met a bad cell: skip it */
            c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, true, false);
        if (c == SCHED_NONE || !any_healthy(s, c)) {
            s->doomed_hit = true; /* the rest of this type is doomed */
            break;
        }
        sched_model_bind(s, j->vc, i, c);
        gc_note(s, j->vc, c);
        if (sched_attempt_add_range(at, s->cells[c].node_lo, s->cells[c].node_hi) != PAI_OK)
            break;
        added += s->types[vcl->type].gpus;
        bound++;
    }
    return bound;
}

static bool uses_vc_cells(const sched_t *s, const job_t *j)
{
    return s->opts.policy == SCHED_POLICY_PAI && !j->oppo && j->total_gpus > 0;
}

/* CPU-only guaranteed work stays on nodes its VC may own: see
 * sched_node_open_to().  own[chain]: bit 1 some VC has virtual cells of the
 * chain, bit 2 VC v has.  NULL on allocation failure (caller frees). */
uint8_t *sched_chain_owners(const sched_t *s, int v)
{
    uint8_t *own = calloc((size_t)s->n_types + 1, 1);
    for (int k = 0; own && k < s->n_vcs; k++)
        for (int i = 0; i < s->vcs[k].n_vcells; i++)
            own[s->vcs[k].vcells[i].chain] |= (uint8_t)(k == v ? 3 : 1);
    return own;
}

bool sched_node_open_to(const sched_t *s, int v, const uint8_t *own, int n)
{
    int c = s->nodes[n].cell;
    if (c == SCHED_NONE)
        return true;
    int b = sched_model_bound_ancestor(s, c);
    if (b != SCHED_NONE)
        return s->cells[b].bound_vc == v; /* in use by that VC now */
    int chain = s->cells[c].chain;
    return (own[chain] & 2) || !(own[chain] & 1); /* the VC's chain, or no VC's */
}

static bool cpu_guaranteed(const sched_t *s, const job_t *j)
{
    return s->opts.policy == SCHED_POLICY_PAI && !j->oppo && j->total_gpus == 0 &&
           j->vc != SCHED_NONE;
}

/* The domain of guaranteed CPU-only work: nodes open to its VC. */
static pai_err_t domain_cpu(sched_t *s, attempt_t *at, const job_t *j)
{
    uint8_t *own = sched_chain_owners(s, j->vc);
    if (!own)
        return PAI_E_NOMEM;
    pai_err_t rc = PAI_OK;
    for (int n = 0, lo = -1; rc == PAI_OK && n <= s->n_nodes; n++) {
        bool open = n < s->n_nodes && sched_node_open_to(s, j->vc, own, n);
        if (open && lo < 0)
            lo = n;
        else if (!open && lo >= 0)
            rc = sched_attempt_add_range(at, lo, n), lo = -1;
    }
    free(own);
    return rc;
}

static pai_err_t domain_all(sched_t *s, attempt_t *at, const job_t *j)
{
    return cpu_guaranteed(s, j) ? domain_cpu(s, at, j) : sched_attempt_add_range(at, 0, s->n_nodes);
}

/* One attempt in mode; true when the job (or, task-by-task, some task) fits. */
static bool try_place(sched_t *s, int slot, pmode_t mode)
{
    job_t *j = &s->jobs[slot];
    attempt_t *at = &s->at;
    at->job = slot, at->mode = mode, at->n_ranges = 0;
    int unbound = 0, gpus = 0;
    for (int i = 0; i < j->n_tasks; i++)
        if (!j->tasks[i].bound)
            unbound++, gpus += j->tasks[i].gpus;
    bool vcdom = uses_vc_cells(s, j);
    s->touched = s->touched_lat = true;
    if ((vcdom ? domain_vc(s, at, j) : domain_all(s, at, j)) != PAI_OK)
        return false;
    int placed = sched_attempt_place(s, at);
    int need = gpus > 0 ? gpus : 1;
    while (vcdom && (j->gang ? placed < unbound : placed == 0) && bind_more(s, at, j, need)) {
        placed = sched_attempt_place(s, at);
        need *= 2;
    }
    return j->gang ? placed == unbound : placed > 0;
}

static void reset_tentative(job_t *j)
{
    for (int i = 0; i < j->n_tasks; i++)
        if (!j->tasks[i].bound)
            j->tasks[i].node = SCHED_NONE;
}

/* Lazy preemption: a cell whose guaranteed users are all lower-priority lazy
 * jobs is rebound to an idle free cell; those jobs keep running as
 * opportunistic.  Retries FREE placement after each move. */
static bool cell_all_lazy_lower(const sched_t *s, int c, const job_t *j)
{
    bool any = false;
    for (int i = s->cells[c].node_lo; i < s->cells[c].node_hi; i++) {
        const node_t *n = &s->nodes[i];
        for (int g = 0; g < n->ngpu; g++) {
            int o = n->owner[g];
            if (o == SCHED_NONE || s->jobs[o].oppo || s->jobs[o].vc != j->vc)
                continue;
            const job_t *oj = &s->jobs[o];
            if (!oj->lazy || oj->prio >= j->prio || oj->state != JOB_RUNNING)
                return false;
            any = true;
        }
    }
    return any;
}

static void downgrade(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    if (j->oppo)
        return;
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].bound)
            uncharge_task(s, j, &j->tasks[i]);
    track_running(s, j, -1);
    j->oppo = true;
    track_running(s, j, +1);
    if (j->lazy_counted)
        s->vcs[j->vc].lazy_running--, j->lazy_counted = false;
    s->lazy_preemptions++;
}

static void downgrade_cell_users(sched_t *s, int c, int v)
{
    for (int i = s->cells[c].node_lo; i < s->cells[c].node_hi; i++) {
        const node_t *n = &s->nodes[i];
        for (int g = 0; g < n->ngpu; g++) {
            int o = n->owner[g];
            if (o != SCHED_NONE && !s->jobs[o].oppo && s->jobs[o].vc == v)
                downgrade(s, o);
        }
    }
}

static bool try_lazy(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    vc_t *vc = &s->vcs[j->vc];
    for (int i = 0; i < vc->n_vcells; i++) {
        vcell_t *vcl = &vc->vcells[i];
        int c = vcl->cell;
        if (c == SCHED_NONE || vcl->pinned || !sku_match(s, vcl->type, j->sku) ||
            !cell_all_lazy_lower(s, c, j))
            continue;
        int q = sched_model_pick_free_cell(s, vcl->type, vcl->chain, true, true);
        if (q == SCHED_NONE)
            return false;
        downgrade_cell_users(s, c, j->vc);
        sched_model_unbind(s, c);
        sched_model_bind(s, j->vc, i, q);
        gc_note(s, j->vc, q);
        if (try_place(s, slot, MODE_FREE))
            return true;
    }
    return false;
}

/* ---- refusal and wait reasons ------------------------------------------- */

static int vc_quota(const sched_t *s, int v, int sku)
{
    int q = 0;
    for (int i = 0; i < s->vcs[v].n_vcells; i++)
        if (sku_match(s, s->vcs[v].vcells[i].type, sku))
            q += s->types[s->vcs[v].vcells[i].type].gpus;
    return q;
}

static void cluster_gpus(const sched_t *s, int sku, int *total, int *free_gpus, int *max_node)
{
    *total = *free_gpus = *max_node = 0;
    for (int i = 0; i < s->n_nodes; i++) {
        const node_t *n = &s->nodes[i];
        if (n->ngpu == 0 || (sku != SCHED_NONE && n->sku != sku))
            continue;
        *total += n->ngpu;
        *free_gpus += n->healthy ? n->ngpu - n->used : 0;
        if (n->ngpu > *max_node)
            *max_node = n->ngpu;
    }
}

static const char *sku_name(const sched_t *s, int sku)
{
    return sku == SCHED_NONE ? "" : s->skus[sku].name;
}

/* "A100" for a job or VC of one SKU, else "GPUs". */
static const char *gpu_label(const sched_t *s, const job_t *j)
{
    int sku = j->sku;
    if (sku == SCHED_NONE && j->vc != SCHED_NONE) {
        const vc_t *vc = &s->vcs[j->vc];
        for (int i = 0; i < vc->n_vcells; i++) {
            int k = s->types[vc->vcells[i].type].sku;
            if (sku != SCHED_NONE && k != sku)
                return "GPUs";
            sku = k;
        }
    }
    return sku == SCHED_NONE ? "GPUs" : s->skus[sku].name;
}

/* Cluster totals per SKU, cached until nodes change (never_fits runs often). */
static void cluster_caps(sched_t *s, int sku, int *total, int *max_node, int *max_cpus)
{
    if (s->caps_ver != s->topo_ver + 1u || !s->cap_total) {
        free(s->cap_total);
        free(s->cap_max_node);
        s->cap_total = calloc((size_t)s->n_skus + 1, sizeof(int));
        s->cap_max_node = calloc((size_t)s->n_skus + 1, sizeof(int));
        if (!s->cap_total || !s->cap_max_node) {
            *total = *max_node = *max_cpus = 0;
            return;
        }
        s->cap_max_cpus = 0;
        for (int i = 0; i < s->n_nodes; i++) {
            const node_t *n = &s->nodes[i];
            if (n->cpus > s->cap_max_cpus)
                s->cap_max_cpus = n->cpus;
            if (n->ngpu == 0)
                continue;
            for (int k = 0; k < 2; k++) {
                int idx = k ? n->sku + 1 : 0;
                s->cap_total[idx] += n->ngpu;
                if (n->ngpu > s->cap_max_node[idx])
                    s->cap_max_node[idx] = n->ngpu;
            }
        }
        s->caps_ver = s->topo_ver + 1u;
    }
    *total = s->cap_total[sku + 1];
    *max_node = s->cap_max_node[sku + 1];
    *max_cpus = s->cap_max_cpus;
}

/* True (reason set) when the job can never fit. */
static bool never_fits(sched_t *s, job_t *j)
{
    if (j->refuse)
        return true;
    if (s->derived && s->n_nodes == 0)
        return false;
    int total, max_node, max_cpus;
    cluster_caps(s, j->sku, &total, &max_node, &max_cpus);
    const char *sk = gpu_label(s, j);
    if (j->max_task_gpus > max_node) {
        snprintf(j->reason, sizeof(j->reason), "a task needs %d %s but the largest node has %d",
                 j->max_task_gpus, sk, max_node);
        return true;
    }
    for (int k = 0; k < j->n_tasks; k++)
        if (j->tasks[k].cpus > max_cpus && max_cpus > 0) {
            snprintf(j->reason, sizeof(j->reason),
                     "a task needs %d CPUs but the largest node has %d", j->tasks[k].cpus,
                     max_cpus);
            return true;
        }
    bool quota = s->opts.policy != SCHED_POLICY_FIRST_FIT && !j->oppo && j->total_gpus > 0;
    int q = quota ? vc_quota(s, j->vc, j->sku) : total;
    if (j->gang && j->total_gpus > q) {
        if (quota)
            snprintf(j->reason, sizeof(j->reason), "job needs %d %s; VC %s guarantees only %d",
                     j->total_gpus, sk, s->vcs[j->vc].name, q);
        else
            snprintf(j->reason, sizeof(j->reason), "job needs %d %s; the cluster has only %d",
                     j->total_gpus, sk, q);
        return true;
    }
    return false;
}

static void wait_reason(sched_t *s, job_t *j)
{
    if (s->opts.quiet_waits)
        return;
    int total, fr, max_node;
    if (j->total_gpus == 0) {
        snprintf(j->reason, sizeof(j->reason), "no node has %d free CPUs / %lld MB for a task",
                 j->tasks[0].cpus, (long long)j->tasks[0].mem);
        return;
    }
    const char *sk = gpu_label(s, j);
    if (j->oppo || s->opts.policy == SCHED_POLICY_FIRST_FIT) {
        cluster_gpus(s, j->sku, &total, &fr, &max_node);
        snprintf(j->reason, sizeof(j->reason),
                 "%s: %d of %d %s free in the cluster, job needs %d task%s x %d %s",
                 j->oppo ? "opportunistic" : "first-fit", fr, total, sk, j->n_tasks,
                 j->n_tasks == 1 ? "" : "s", j->max_task_gpus, sk);
        return;
    }
    const vc_t *vc = &s->vcs[j->vc];
    int q = vc_quota(s, j->vc, j->sku);
    int fg = q - vc->used_gpus;
    int n = snprintf(j->reason, sizeof(j->reason),
                     "VC %s: %d of %d guaranteed %s free, job needs %d task%s x %d %s", vc->name,
                     fg < 0 ? 0 : fg, q, sk, j->n_tasks, j->n_tasks == 1 ? "" : "s",
                     j->max_task_gpus, sk);
    if (s->doomed_hit && n > 0 && (size_t)n < sizeof(j->reason))
        n += snprintf(j->reason + n, sizeof(j->reason) - (size_t)n,
                      "; part of the guarantee is doomed (no healthy free cell to bind)");
    if (j->n_resv && n > 0 && (size_t)n < sizeof(j->reason))
        snprintf(j->reason + n, sizeof(j->reason) - (size_t)n,
                 "; waited past the starvation limit, %d GPUs reserved", j->n_resv);
    else if (vc->reserver != SCHED_NONE && vc->reserver != s->at.job && n > 0 &&
             (size_t)n < sizeof(j->reason))
        snprintf(j->reason + n, sizeof(j->reason) - (size_t)n,
                 "; GPUs reserved for starving job %s", s->jobs[vc->reserver].id);
}

/* ---- anti-starvation reservation ------------------------------------------ */

static void maybe_reserve(sched_t *s, int slot, int64_t now)
{
    job_t *j = &s->jobs[slot];
    vc_t *vc = &s->vcs[j->vc];
    if (s->opts.starvation_ms < 0 || now - j->submit_ms < s->opts.starvation_ms)
        return;
    if (vc->reserver != SCHED_NONE && vc->reserver != slot)
        return;
    clear_reservation(s, slot);
    attempt_t *at = &s->at;
    at->job = slot, at->mode = MODE_RESERVE, at->n_ranges = 0;
    if (domain_vc(s, at, j) != PAI_OK || sched_attempt_place(s, at) == 0)
        return;
    int n = 0;
    for (int i = 0; i < j->n_tasks; i++)
        if (!j->tasks[i].bound && j->tasks[i].node != SCHED_NONE)
            n += j->tasks[i].gpus;
    int *r = realloc(j->resv, sizeof(int) * (size_t)(n ? n : 1));
    if (!r) {
        reset_tentative(j);
        return;
    }
    j->resv = r;
    for (int i = 0; i < j->n_tasks; i++) {
        task_t *t = &j->tasks[i];
        if (t->bound || t->node == SCHED_NONE)
            continue;
        for (int k = 0; k < t->gpus; k++) {
            int g = j->gpu[t->gpu0 + k];
            s->nodes[t->node].res[g] = slot;
            j->resv[j->n_resv++] = t->node * SCHED_MAX_GPUS_PER_NODE + g;
        }
    }
    reset_tentative(j);
    vc->reserver = slot;
}

/* ---- the pass --------------------------------------------------------------- */

static bool memo_dominated(const sched_t *s, const job_t *j, int vc)
{
    for (int i = 0; i < s->n_memo; i++) {
        const struct memo *m = &s->memo[i];
        if (m->vc == vc && m->sku == j->sku && m->prio == j->prio && m->oppo == j->oppo &&
            j->max_task_gpus >= m->max_task && j->total_gpus >= m->total)
            return true;
    }
    return false;
}

static void memo_add(sched_t *s, const job_t *j, int vc)
{
    if (s->n_memo == s->cap_memo) {
        int cap = s->cap_memo ? s->cap_memo * 2 : 16;
        struct memo *m = realloc(s->memo, (size_t)cap * sizeof(*m));
        if (!m)
            return;
        s->memo = m, s->cap_memo = cap;
    }
    s->memo[s->n_memo++] =
        (struct memo){vc, j->sku, j->prio, j->oppo, j->max_task_gpus, j->total_gpus};
}

static bool memo_ok(const job_t *j)
{
    if (j->n_resv || j->total_gpus == 0)
        return false;
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].pinned != SCHED_NONE)
            return false;
    return true;
}

static pai_err_t emit_wait(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    if (s->opts.quiet_waits)
        return PAI_OK;
    if (strcmp(j->reason, j->last_reason) == 0)
        return PAI_OK;
    str_copy(j->last_reason, j->reason, sizeof(j->last_reason));
    return emit_text(s, SCHED_WAIT, slot);
}

static pai_err_t bind_now(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    clear_reservation(s, slot);
    pai_err_t rc = emit_bind(s, slot, 0);
    if (j->state == JOB_WAITING)
        track_running(s, j, +1);
    j->state = JOB_RUNNING;
    if (!j->oppo && j->lazy && j->vc != SCHED_NONE && !j->lazy_counted) {
        s->vcs[j->vc].lazy_running++;
        j->lazy_counted = true;
    }
    j->last_reason[0] = 0;
    return rc;
}

static pai_err_t handle_pai(sched_t *s, int slot, int64_t now)
{
    job_t *j = &s->jobs[slot];
    if (j->waiting_on > 0) {
        snprintf(j->reason, sizeof(j->reason), "waiting for %d preempted job(s) to stop",
                 j->waiting_on);
        return emit_wait(s, slot);
    }
    bool guaranteed = uses_vc_cells(s, j);
    int mvc = j->vc;
    if (memo_ok(j) && memo_dominated(s, j, mvc)) {
        wait_reason(s, j);
        return emit_wait(s, slot);
    }
    if (try_place(s, slot, MODE_FREE) ||
        (guaranteed && s->vcs[j->vc].lazy_running > 0 && try_lazy(s, slot)))
        return bind_now(s, slot);
    reset_tentative(j);
    if (guaranteed && j->state == JOB_WAITING && may_preempt(s, j) &&
        try_place(s, slot, MODE_PREEMPT)) {
        sched_attempt_victims(s, &s->at);
        reset_tentative(j);
        if (s->at.n_victims > 0)
            return emit_preempt(s, slot, &s->at);
    }
    reset_tentative(j);
    if (j->state == JOB_WAITING && never_fits(s, j)) {
        j->refuse = true;
        return emit_text(s, SCHED_REFUSE, slot);
    }
    if (guaranteed && j->state == JOB_WAITING)
        maybe_reserve(s, slot, now);
    if (memo_ok(j))
        memo_add(s, j, mvc);
    wait_reason(s, j);
    return emit_wait(s, slot);
}

static pai_err_t handle_baseline(sched_t *s, int slot, bool *blocked)
{
    job_t *j = &s->jobs[slot];
    bool fifo = s->opts.policy == SCHED_POLICY_FIFO_QUOTA;
    vc_t *vc = &s->vcs[j->vc];
    if (fifo && blocked[j->vc]) {
        snprintf(j->reason, sizeof(j->reason), "VC %s: behind an earlier job (FIFO)", vc->name);
        return emit_wait(s, slot);
    }
    if (never_fits(s, j)) {
        j->refuse = true;
        return emit_text(s, SCHED_REFUSE, slot);
    }
    if (fifo && j->total_gpus > 0 && vc->used_gpus + j->total_gpus > vc->quota_gpus) {
        blocked[j->vc] = true;
        snprintf(j->reason, sizeof(j->reason), "VC %s: quota %d GPUs, %d used, job needs %d",
                 vc->name, vc->quota_gpus, vc->used_gpus, j->total_gpus);
        return emit_wait(s, slot);
    }
    int mvc = fifo ? j->vc : SCHED_NONE;
    if (!(memo_ok(j) && memo_dominated(s, j, mvc)) && try_place(s, slot, MODE_FREE))
        return bind_now(s, slot);
    reset_tentative(j);
    if (fifo)
        blocked[j->vc] = true;
    if (memo_ok(j))
        memo_add(s, j, mvc);
    wait_reason(s, j);
    return emit_wait(s, slot);
}

static int cmp_queue(const void *a, const void *b, void *ctx)
{
    const sched_t *s = ctx;
    const job_t *x = &s->jobs[*(const int *)a], *y = &s->jobs[*(const int *)b];
    if (x->prio != y->prio)
        return x->prio > y->prio ? -1 : 1;
    if (x->submit_ms != y->submit_ms)
        return x->submit_ms < y->submit_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void record_latency(sched_t *s, int64_t us)
{
    static const double le[] = {0.0001, 0.001, 0.01, 0.1, 1.0};
    double sec = (double)us / 1e6;
    s->lat_count++;
    s->lat_sum += sec;
    for (size_t i = 0; i < ARRAY_LEN(le); i++)
        if (sec <= le[i])
            s->lat_le[i]++;
    s->lat_le[5]++;
    int b = us <= 1 ? 0 : (int)(8.0 * log2((double)us));
    s->lat_hist[b < 0 ? 0 : b > 255 ? 255 : b]++;
    if (sec > s->lat_max)
        s->lat_max = sec;
}

static bool job_done_queueing(const job_t *j)
{
    if (j->state == JOB_FREE || j->refuse)
        return true;
    for (int i = 0; i < j->n_tasks; i++)
        if (!j->tasks[i].bound)
            return false;
    return true;
}

static pai_err_t handle_one(sched_t *s, int slot, int64_t now, bool *blocked)
{
    job_t *j = &s->jobs[slot];
    if (j->state == JOB_WAITING && j->refuse)
        return emit_text(s, SCHED_REFUSE, slot);
    if (j->state == JOB_WAITING && j->vc == SCHED_NONE)
        return PAI_OK;
    int64_t t0 = s->opts.clock_us ? s->opts.clock_us(s->opts.clock_ctx) : 0;
    s->touched_lat = false;
    s->doomed_hit = false;
    pai_err_t rc = s->opts.policy == SCHED_POLICY_PAI ? handle_pai(s, slot, now)
                                                      : handle_baseline(s, slot, blocked);
    if (s->touched)
        vc_gc(s, s->jobs[slot].vc);
    s->touched = false;
    if (s->opts.clock_us && s->touched_lat)
        record_latency(s, s->opts.clock_us(s->opts.clock_ctx) - t0);
    return rc;
}

pai_err_t sched_schedule(sched_t *s, int64_t now_ms, const sched_decision_t **out, size_t *n)
{
    arena_reset(s);
    s->n_dec = 0;
    s->n_memo = 0;
    *out = NULL;
    *n = 0;
    if (s->queue_dirty)
        qsort_r(s->queue, (size_t)s->n_queue, sizeof(int), cmp_queue, s);
    s->queue_dirty = false;
    bool *blocked = calloc((size_t)s->n_vcs + 1, sizeof(bool));
    if (!blocked)
        return PAI_E_NOMEM;
    pai_err_t rc = PAI_OK;
    for (int i = 0; i < s->n_queue && rc == PAI_OK; i++)
        rc = handle_one(s, s->queue[i], now_ms, blocked);
    free(blocked);
    int k = 0;
    for (int i = 0; i < s->n_queue; i++) {
        int slot = s->queue[i];
        job_t *j = &s->jobs[slot];
        if (j->refuse && j->state == JOB_WAITING)
            free_job(s, slot);
        else if (!job_done_queueing(j))
            s->queue[k++] = slot;
    }
    s->n_queue = k;
    *out = s->dec;
    *n = s->n_dec;
    return rc;
}

/* ---- restart ------------------------------------------------------------- */

static int find_task(const job_t *j, const char *role, int index)
{
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].index == index && strcmp(j->roles[j->tasks[i].role], role) == 0)
            return i;
    return SCHED_NONE;
}

static pai_err_t restore_alloc(sched_t *s, job_t *j, const sched_alloc_t *a)
{
    int ti = a->role ? find_task(j, a->role, a->index) : SCHED_NONE;
    int ni = find_node(s, a->node);
    if (ti == SCHED_NONE || ni == SCHED_NONE || j->tasks[ti].node != SCHED_NONE)
        return PAI_E_INVALID;
    task_t *t = &j->tasks[ti];
    const node_t *n = &s->nodes[ni];
    if (a->n_gpus != t->gpus)
        return PAI_E_INVALID;
    for (int k = 0; k < a->n_gpus; k++) {
        int g = a->gpus[k];
        if (g < 0 || g >= n->ngpu || n->owner[g] != SCHED_NONE)
            return PAI_E_INVALID;
        for (int m = 0; m < k; m++)
            if (a->gpus[m] == g)
                return PAI_E_INVALID;
        j->gpu[t->gpu0 + k] = g;
    }
    t->node = ni;
    return PAI_OK;
}

/* A free ancestor cell of node that an unbound cell of VC v can bind to. */
static bool restore_bind_for(sched_t *s, int v, int node)
{
    for (int c = s->nodes[node].cell; c != SCHED_NONE; c = s->cells[c].parent) {
        if (s->cells[c].bound_below || sched_model_bound_ancestor(s, c) != SCHED_NONE)
            return false;
        vc_t *vc = &s->vcs[v];
        for (int i = 0; i < vc->n_vcells; i++) {
            vcell_t *vcl = &vc->vcells[i];
            if (vcl->cell == SCHED_NONE && !vcl->pinned && vcl->type == s->cells[c].type &&
                vcl->chain == s->cells[c].chain) {
                sched_model_bind(s, v, i, c);
                gc_note(s, v, c);
                return true;
            }
        }
    }
    return false;
}

static bool restore_guarantee(sched_t *s, job_t *j)
{
    for (int i = 0; i < j->n_tasks; i++) {
        task_t *t = &j->tasks[i];
        if (t->node == SCHED_NONE || t->gpus == 0)
            continue;
        if (charged_cell(s, t->node, j->vc) == SCHED_NONE && !restore_bind_for(s, j->vc, t->node))
            return false;
        if (t->sku != SCHED_NONE && s->nodes[t->node].sku != t->sku)
            return false;
    }
    return true;
}

pai_err_t sched_restore(sched_t *s, const sched_request_t *r, const sched_alloc_t *allocs,
                        size_t n_allocs, bool *downgraded)
{
    char err[SCHED_REASON_MAX];
    pai_err_t rc = check_request(r, err, sizeof(err));
    if (rc != PAI_OK)
        return rc;
    if (sched_strmap_get(&s->job_map, r->job_id) != SCHED_NONE)
        return PAI_E_CONFLICT_JOB;
    int slot;
    if ((rc = new_job(s, r, &slot)) != PAI_OK)
        return rc;
    job_t *j = &s->jobs[slot];
    for (size_t i = 0; i < n_allocs && rc == PAI_OK; i++)
        rc = restore_alloc(s, j, &allocs[i]);
    if (rc != PAI_OK) {
        free_job(s, slot);
        return rc;
    }
    bool down = false;
    if (j->vc == SCHED_NONE || j->refuse) {
        j->vc = j->vc == SCHED_NONE ? sched_model_find_vc(s, "default") : j->vc;
        down = !j->oppo;
        j->oppo = true;
    } else if (uses_vc_cells(s, j) && !restore_guarantee(s, j)) {
        down = true;
        j->oppo = true;
    }
    j->refuse = false;
    if (j->vc == SCHED_NONE && s->n_vcs > 0)
        j->vc = 0; /* keep the job somewhere: it runs opportunistic */
    commit(s, slot);
    vc_gc(s, j->vc);
    j->state = JOB_RUNNING;
    track_running(s, j, +1);
    for (int i = 0; i < j->n_tasks; i++)
        j->tasks[i].emitted = j->tasks[i].bound;
    if (!j->oppo && j->lazy && !j->lazy_counted)
        s->vcs[j->vc].lazy_running++, j->lazy_counted = true;
    if (!job_done_queueing(j) && queue_push(s, slot) != PAI_OK)
        return PAI_E_NOMEM;
    if (downgraded)
        *downgraded = down;
    return PAI_OK;
}

/* ---- status ----------------------------------------------------------------- */

typedef struct {
    int vc, sku;
} rowkey_t;

static int cmp_vc_name(const void *a, const void *b, void *ctx)
{
    const sched_t *s = ctx;
    return strcmp(s->vcs[*(const int *)a].name, s->vcs[*(const int *)b].name);
}

/* Free healthy cells per (chain, type) for chains whose virtual cells all
 * have one type (then counting is exact); -1 for chains mixing levels. */
static int *doomed_supply(sched_t *s)
{
    int nt = s->n_types;
    int *sup = calloc((size_t)nt * (size_t)nt + 1, sizeof(int));
    int *first = malloc(sizeof(int) * (size_t)nt + 1);
    if (!sup || !first) {
        free(sup), free(first);
        return NULL;
    }
    for (int t = 0; t < nt; t++)
        first[t] = SCHED_NONE;
    for (int v = 0; v < s->n_vcs; v++)
        for (int i = 0; i < s->vcs[v].n_vcells; i++) {
            const vcell_t *vcl = &s->vcs[v].vcells[i];
            if (first[vcl->chain] == SCHED_NONE)
                first[vcl->chain] = vcl->type;
            else if (first[vcl->chain] != vcl->type)
                first[vcl->chain] = -2; /* mixed levels: simulate */
        }
    for (int c = 0; c < s->n_cells; c++) {
        const cell_t *cell = &s->cells[c];
        if (first[cell->chain] == cell->type && !cell->bound_below &&
            sched_model_bound_ancestor(s, c) == SCHED_NONE && sched_cell_healthy(s, c))
            sup[cell->chain * nt + cell->type]++;
    }
    for (int ch = 0; ch < nt; ch++)
        if (first[ch] == -2)
            for (int t = 0; t < nt; t++)
                sup[ch * nt + t] = -1;
    free(first);
    return sup;
}

/* Doomed cells: bound cells with an unhealthy node, plus unbound cells that
 * cannot get a healthy free cell now (counted, or bound tentatively in buddy
 * order where a chain mixes levels), into doomed[v * (n_skus + 1) + sku + 1]. */
static void count_doomed(sched_t *s, int *doomed)
{
    int w = s->n_skus + 1;
    bool any_bad = false;
    for (int i = 0; i < s->n_nodes && !any_bad; i++)
        any_bad = !s->nodes[i].healthy;
    if (!any_bad)
        return; /* the start-up check guarantees every cell binds on a healthy cluster */
    int *tmp = malloc(sizeof(int) * (size_t)(s->n_cells + 1));
    int *sup = doomed_supply(s);
    int nt = 0;
    for (int v = 0; v < s->n_vcs; v++) {
        vc_t *vc = &s->vcs[v];
        for (int i = 0; i < vc->n_vcells; i++) {
            vcell_t *vcl = &vc->vcells[i];
            int sk = s->types[vcl->type].sku;
            int *avail = sup ? &sup[vcl->chain * s->n_types + vcl->type] : NULL;
            if (vcl->cell != SCHED_NONE) {
                if (!sched_cell_healthy(s, vcl->cell))
                    doomed[v * w + sk + 1]++;
                continue;
            }
            if (avail && *avail >= 0) {
                if (*avail > 0)
                    (*avail)--;
                else
                    doomed[v * w + sk + 1]++;
                continue;
            }
            int c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, true, false);
            if (c == SCHED_NONE || !tmp) {
                doomed[v * w + sk + 1]++;
                continue;
            }
            sched_model_bind(s, v, i, c);
            tmp[nt++] = c;
        }
    }
    for (int i = 0; i < nt; i++)
        sched_model_unbind(s, tmp[i]);
    free(tmp);
    free(sup);
}

static void fill_usage(const sched_t *s, sched_vc_status_t *rows, const int *rowof, int w)
{
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        if (j->state == JOB_FREE || j->vc == SCHED_NONE)
            continue;
        for (int i = 0; i < j->n_tasks; i++) {
            const task_t *t = &j->tasks[i];
            if (!t->bound)
                continue;
            const node_t *n = &s->nodes[t->node];
            int r = rowof[j->vc * w + n->sku + 1];
            if (r < 0)
                r = rowof[j->vc * w]; /* first row of the VC */
            if (r < 0)
                continue;
            if (j->oppo)
                rows[r].oppo_gpus += t->gpus;
            else
                rows[r].used_gpus += t->gpus;
            rows[r].used_cpus += t->cpus;
            rows[r].used_memory_mb += t->mem;
        }
    }
}

static void fill_rows(sched_t *s, sched_vc_status_t *rows, int *rowof, int n_rows_cap, int *n_rows)
{
    int w = s->n_skus + 1;
    int *order = malloc(sizeof(int) * (size_t)(s->n_vcs + 1));
    int *doomed = calloc((size_t)(s->n_vcs * w + 1), sizeof(int));
    if (!order || !doomed) {
        free(order), free(doomed);
        return;
    }
    for (int v = 0; v < s->n_vcs; v++)
        order[v] = v;
    qsort_r(order, (size_t)s->n_vcs, sizeof(int), cmp_vc_name, s);
    count_doomed(s, doomed);
    int n = 0;
    for (int k = 0; k < s->n_vcs; k++) {
        int v = order[k];
        int first = n;
        for (int sk = -1; sk < s->n_skus; sk++) {
            int q = 0, cpus = 0;
            int64_t mem = 0;
            for (int i = 0; i < s->vcs[v].n_vcells; i++) {
                const ctype_t *ct = &s->types[s->vcs[v].vcells[i].type];
                if (ct->sku == sk)
                    q += ct->gpus, cpus += ct->cpus, mem += ct->memory_mb;
            }
            bool want = q > 0 || (sk == -1 && s->vcs[v].n_vcells == 0);
            if (!want || n >= n_rows_cap)
                continue;
            int total, fr, mx;
            cluster_gpus(s, sk, &total, &fr, &mx);
            rows[n] = (sched_vc_status_t){.vc = s->vcs[v].name,
                                          .sku = sku_name(s, sk),
                                          .guaranteed_gpus = q,
                                          .total_gpus = total,
                                          .doomed_cells = doomed[v * w + sk + 1],
                                          .guaranteed_cpus = cpus,
                                          .guaranteed_memory_mb = mem};
            for (int i = 0; i < s->n_nodes; i++)
                if (!s->nodes[i].healthy && s->nodes[i].sku == sk)
                    rows[n].bad_gpus += s->nodes[i].ngpu;
            rowof[v * w + sk + 1] = n++;
        }
        if (n > first)
            rowof[v * w] = first;
    }
    *n_rows = n;
    free(order);
    free(doomed);
}

size_t sched_vc_status(sched_t *s, sched_vc_status_t *rows, size_t cap)
{
    int w = s->n_skus + 1;
    int max_rows = s->n_vcs * w + 1;
    sched_vc_status_t *all = calloc((size_t)max_rows, sizeof(*all));
    int *rowof = malloc(sizeof(int) * (size_t)(s->n_vcs * w + 1));
    if (!all || !rowof) {
        free(all), free(rowof);
        return 0;
    }
    for (int i = 0; i < s->n_vcs * w + 1; i++)
        rowof[i] = -1;
    int n = 0;
    fill_rows(s, all, rowof, max_rows, &n);
    fill_usage(s, all, rowof, w);
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        if (j->state == JOB_FREE || j->vc == SCHED_NONE || rowof[j->vc * w] < 0)
            continue;
        if (j->state == JOB_WAITING)
            all[rowof[j->vc * w]].waiting_jobs++;
        else
            all[rowof[j->vc * w]].running_jobs++;
    }
    for (int i = 0; i < n && (size_t)i < cap; i++)
        rows[i] = all[i];
    free(all);
    free(rowof);
    return (size_t)n;
}

size_t sched_node_status(const sched_t *s, sched_node_status_t *rows, size_t cap)
{
    for (int i = 0; i < s->n_nodes && (size_t)i < cap; i++) {
        const node_t *n = &s->nodes[i];
        int b = sched_model_bound_ancestor(s, n->cell);
        rows[i] =
            (sched_node_status_t){.name = n->name,
                                  .address = n->address,
                                  .sku = sku_name(s, n->sku),
                                  .gpus = n->ngpu,
                                  .used_gpus = n->used,
                                  .free_gpus = n->healthy ? n->ngpu - n->used : 0,
                                  .cpus = n->cpus,
                                  .used_cpus = n->cpu_used,
                                  .memory_mb = n->mem,
                                  .used_memory_mb = n->mem_used,
                                  .healthy = n->healthy,
                                  .vc = b != SCHED_NONE ? s->vcs[s->cells[b].bound_vc].name : ""};
    }
    return (size_t)s->n_nodes;
}

void sched_summary(const sched_t *s, sched_summary_t *o)
{
    *o = (sched_summary_t){.nodes = s->n_nodes};
    for (int i = 0; i < s->n_nodes; i++) {
        const node_t *n = &s->nodes[i];
        o->healthy_nodes += n->healthy;
        o->gpus += n->ngpu;
        o->used_gpus += n->used;
        o->bad_gpus += n->healthy ? 0 : n->ngpu;
    }
    for (int i = 0; i < s->n_jobs; i++) {
        job_state_t st = s->jobs[i].state;
        o->waiting_jobs += st == JOB_WAITING;
        o->running_jobs += st == JOB_RUNNING || st == JOB_DYING;
    }
    memcpy(o->decisions, s->kinds, sizeof(o->decisions));
    o->preemptions = s->preemptions;
    o->lazy_preemptions = s->lazy_preemptions;
    o->latency_count = s->lat_count;
    o->latency_sum_s = s->lat_sum;
    memcpy(o->latency_le, s->lat_le, sizeof(o->latency_le));
    o->latency_max_s = s->lat_max;
    uint64_t want = (uint64_t)((double)s->lat_count * 0.99), acc = 0;
    for (int b = 0; b < 256 && s->lat_count; b++) {
        acc += s->lat_hist[b];
        if (acc > want || b == 255) {
            o->latency_p99_s = exp2((double)(b + 1) / 8.0) / 1e6;
            if (o->latency_p99_s > s->lat_max)
                o->latency_p99_s = s->lat_max;
            break;
        }
    }
}

const char *sched_kind_name(sched_kind_t k)
{
    static const char *const names[] = {"bind", "preempt", "wait", "refuse"};
    return (unsigned)k < ARRAY_LEN(names) ? names[k] : "?";
}
