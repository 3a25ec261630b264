/*
 * sched_jobs.c - job bookkeeping: submit, cancel, release and commit of
 * placements (GPU charging, running-VC tracking, lazy-cell garbage
 * collection), and restart: restoring jobs and their allocations.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "sched/sched_place.h"

/* ---- jobs -------------------------------------------------------------- */

static pai_err_t check_request(const sched_request_t *r, char *err, size_t errlen)
{
    if (!r->job_id || !r->job_id[0] || strlen(r->job_id) > PAI_MAX_NAME)
        return snprintf(err, errlen, "job id missing or too long"), PAI_E_INVALID;
    if (!r->vc || strlen(r->vc) >= SCHED_NAME_MAX)
        return snprintf(err, errlen, "virtual cluster missing or too long"), PAI_E_INVALID;
    if (r->priority < SCHED_PRIO_MIN || r->priority > SCHED_PRIO_MAX)
        return snprintf(err, errlen, "priority %d outside %d..%d (HiveD's range)", r->priority,
                        SCHED_PRIO_MIN, SCHED_PRIO_MAX),
               PAI_E_INVALID;
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
    if ((size_t)s->n_jobs == s->cap_jobs) {
        /* free_slots grows in step with jobs: reserve it on a copy of the capacity */
        size_t capf = s->cap_jobs;
        VEC_XRESERVE(s->free_slots, capf, capf + 1);
        VEC_XRESERVE(s->jobs, s->cap_jobs, s->cap_jobs + 1);
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
static void resolve_task(sched_t *s, job_t *j, sched_task_t *t, const sched_role_t *ro)
{
    t->sku = SCHED_NONE;
    t->pinned = SCHED_NONE;
    if (ro->sku && ro->sku[0]) {
        t->sku = sched_model_find_sku(s, ro->sku);
        if (t->sku == SCHED_NONE && !j->refuse)
            j->refuse = true, snprintf(j->reason, sizeof(j->reason),
                                       "unknown SKU type %s (task role %s)", ro->sku, ro->name);
    }
    t->within = SCHED_NONE;
    if (ro->within_cell && ro->within_cell[0]) {
        for (int k = 0; k < s->n_types && t->within == SCHED_NONE; k++)
            if (s->types[k].defined && strcmp(s->types[k].name, ro->within_cell) == 0)
                t->within = k;
        if (t->within == SCHED_NONE && !j->refuse)
            j->refuse = true, snprintf(j->reason, sizeof(j->reason),
                                       "unknown cell type %s for withinOneCell (task role %s)",
                                       ro->within_cell, ro->name);
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
    j->roles = xcalloc(r->n_roles, sizeof(char *));
    j->tasks = xcalloc((size_t)n, sizeof(sched_task_t));
    j->gpu = xmalloc(sizeof(int) * (size_t)(gpus ? gpus : 1));
    j->n_roles = (int)r->n_roles;
    int k = 0, g0 = 0;
    j->sku = SCHED_NONE;
    for (size_t i = 0; i < r->n_roles; i++) {
        const sched_role_t *ro = &r->roles[i];
        j->roles[i] = xstrdup(ro->name);
        for (int x = 0; x < ro->instances; x++, k++) {
            sched_task_t *t = &j->tasks[k];
            *t = (sched_task_t){.role = (int)i,
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

static void queue_push(sched_t *s, int slot)
{
    VEC_XRESERVE(s->queue, s->cap_queue, (size_t)s->n_queue + 1);
    s->queue[s->n_queue++] = slot;
    s->queue_dirty = true;
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
    job_t *j = &s->jobs[slot];
    j->id = xstrdup(r->job_id);
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
    pai_err_t rc = build_tasks(s, j, r);
    if (rc == PAI_OK)
        rc = sched_strmap_put(&s->job_map, j->id, slot);
    if (rc != PAI_OK) {
        sched_job_clear(j);
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
    s->jobs[slot].state = SCHED_JOB_WAITING;
    s->waiting++;
    s->post_pass = false;
    queue_push(s, slot);
    return PAI_OK;
}

void sched_jobs_free(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    sched_jobs_clear_reservation(s, slot);
    if (j->waiting_on > 0) /* victims dying for this job: their GPUs go back to everyone */
        for (int i = 0; i < s->n_jobs; i++)
            if (s->jobs[i].state == SCHED_JOB_DYING && s->jobs[i].dying_for == slot)
                s->jobs[i].dying_for = SCHED_NONE;
    j = &s->jobs[slot];
    sched_strmap_del(&s->job_map, j->id);
    sched_job_clear(j);
    s->free_slots[s->n_free++] = slot;
}

void sched_jobs_clear_reservation(sched_t *s, int jslot)
{
    job_t *j = &s->jobs[jslot];
    for (int k = 0; k < j->n_resv; k++) {
        sched_mnode_t *n = &s->nodes[j->resv[k] / SCHED_MAX_GPUS_PER_NODE];
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
    if (slot == SCHED_NONE || s->jobs[slot].state != SCHED_JOB_WAITING)
        return PAI_E_NO_JOB;
    queue_remove(s, slot);
    s->waiting--;
    sched_jobs_free(s, slot);
    s->post_pass = false;
    sched_check_after(s, "a cancel", SCHED_NONE, false);
    return PAI_OK;
}

/* Unbind the VC's unpinned cells that no guaranteed work uses. */
/* Remember a bound cell of VC v that may be unused now. */
void sched_jobs_gc_note(sched_t *s, int v, int c)
{
    vc_t *vc = &s->vcs[v];
    vc->gc = true;
    if (vc->n_gc >= 0)
        VEC_XRESERVE(vc->gc_cells, vc->cap_gc, (size_t)vc->n_gc + 1);
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
void sched_jobs_vc_gc(sched_t *s, int v)
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
void sched_jobs_track_running(sched_t *s, const job_t *j, int d)
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
bool sched_jobs_may_preempt(const sched_t *s, const job_t *j)
{
    const vc_t *vc = &s->vcs[j->vc];
    if (s->oppo_running > 0 || vc->running_other > 0)
        return true;
    for (int i = 0; i < vc->n_running_prios; i++)
        if (vc->running[i].count > 0 && vc->running[i].prio < j->prio)
            return true;
    return false;
}

void sched_jobs_uncharge_task(sched_t *s, job_t *j, sched_task_t *t)
{
    if (t->cell != SCHED_NONE) {
        s->cells[t->cell].vc_used -= t->gpus;
        if (s->cells[t->cell].vc_used == 0 && s->cells[t->cell].bound_vc != SCHED_NONE)
            sched_jobs_gc_note(s, s->cells[t->cell].bound_vc, t->cell);
        t->cell = SCHED_NONE;
    }
    if (!j->oppo && j->vc != SCHED_NONE)
        s->vcs[j->vc].used_gpus -= t->gpus;
}

static void release_task(sched_t *s, int slot, sched_task_t *t)
{
    job_t *j = &s->jobs[slot];
    sched_mnode_t *n = &s->nodes[t->node];
    for (int k = 0; k < t->gpus; k++)
        n->owner[j->gpu[t->gpu0 + k]] = SCHED_NONE;
    n->used -= t->gpus;
    s->nfree[t->node] = (uint8_t)(n->ngpu - n->used);
    n->cpu_used -= t->cpus;
    n->mem_used -= t->mem;
    sched_jobs_uncharge_task(s, j, t);
    t->bound = false;
    t->node = SCHED_NONE;
}

pai_err_t sched_release(sched_t *s, const char *job_id)
{
    int slot = sched_strmap_get(&s->job_map, job_id);
    if (slot == SCHED_NONE ||
        (s->jobs[slot].state != SCHED_JOB_RUNNING && s->jobs[slot].state != SCHED_JOB_DYING))
        return PAI_E_NO_JOB;
    job_t *j = &s->jobs[slot];
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].bound)
            release_task(s, slot, &j->tasks[i]);
    if (j->state == SCHED_JOB_DYING && j->dying_for != SCHED_NONE &&
        s->jobs[j->dying_for].waiting_on > 0)
        s->jobs[j->dying_for].waiting_on--;
    if (j->lazy_counted)
        s->vcs[j->vc].lazy_running--;
    sched_jobs_track_running(s, j, -1);
    sched_jobs_vc_gc(s, j->vc);
    bool queued = false;
    for (int i = 0; i < s->n_queue; i++)
        queued |= s->queue[i] == slot;
    if (queued) {
        queue_remove(s, slot);
        s->waiting--;
    }
    s->running--;
    sched_jobs_free(s, slot);
    s->post_pass = false;
    sched_check_after(s, "a release", SCHED_NONE, false);
    return PAI_OK;
}

/* Make the placed tasks of the attempt real. */
void sched_jobs_commit(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    for (int i = 0; i < j->n_tasks; i++) {
        sched_task_t *t = &j->tasks[i];
        if (t->node == SCHED_NONE || t->bound)
            continue;
        sched_mnode_t *n = &s->nodes[t->node];
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
    if (s->test_corrupt && j->vc != SCHED_NONE) {
        s->test_corrupt = false;
        s->vcs[j->vc].used_gpus++; /* on purpose: sched_test_corrupt_next_bind() */
    }
}

void sched_test_corrupt_next_bind(sched_t *s)
{
    s->test_corrupt = true;
}

/* ---- restart ------------------------------------------------------------- */

static int find_task(const job_t *j, const char *role, int index)
{
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].index == index && strcmp(j->roles[j->tasks[i].role], role) == 0)
            return i;
    return SCHED_NONE;
}

/* PAI_E_NOT_FOUND when the allocation's node or GPUs no longer exist (a
 * changed configuration): that task is dropped, the job's others kept. */
static pai_err_t restore_alloc(sched_t *s, job_t *j, const sched_alloc_t *a)
{
    int ti = a->role ? find_task(j, a->role, a->index) : SCHED_NONE;
    int ni = sched_find_node(s, a->node);
    if (ti == SCHED_NONE || j->tasks[ti].node != SCHED_NONE)
        return PAI_E_INVALID;
    if (ni == SCHED_NONE)
        return PAI_E_NOT_FOUND;
    sched_task_t *t = &j->tasks[ti];
    const sched_mnode_t *n = &s->nodes[ni];
    if (a->n_gpus != t->gpus)
        return PAI_E_INVALID;
    for (int k = 0; k < a->n_gpus; k++)
        if (a->gpus[k] < 0 || a->gpus[k] >= n->ngpu)
            return PAI_E_NOT_FOUND;
    for (int k = 0; k < a->n_gpus; k++) {
        int g = a->gpus[k];
        if (n->owner[g] != SCHED_NONE)
            return PAI_E_INVALID;
        for (int m = 0; m < k; m++)
            if (a->gpus[m] == g)
                return PAI_E_INVALID;
        j->gpu[t->gpu0 + k] = g;
    }
    t->node = ni;
    return PAI_OK;
}

/* The end of cell c's subtree in the DFS-ordered cells. */
static int subtree_end(const sched_t *s, int c)
{
    int e = c + 1;
    while (e < s->n_cells && s->cells[e].depth > s->cells[c].depth)
        e++;
    return e;
}

/* Are all cells bound inside c bound to unpinned virtual cells of VC v? */
static bool only_vc_below(const sched_t *s, int c, int v)
{
    for (int k = c + 1, e = subtree_end(s, c); k < e; k++) {
        const cell_t *cl = &s->cells[k];
        if (cl->bound_vc != SCHED_NONE &&
            (cl->bound_vc != v || s->vcs[v].vcells[cl->bound_vcell].pinned))
            return false;
    }
    return true;
}

/* VC v's bindings inside c give way to one binding of c itself (virtual cell
 * i): restored jobs of one VC meet its larger cell piece by piece (a job on
 * one node of a rack the VC had bound took a node-level cell first).  The
 * tasks charged to the inner cells are charged to c.  False (nothing
 * changed) when that would break sharing safety. */
static bool restore_absorb(sched_t *s, int v, int i, int c)
{
    int e = subtree_end(s, c), used = 0, n = 0;
    int *inner = xmalloc(sizeof(int) * (size_t)(e - c));
    int *vcell = xmalloc(sizeof(int) * (size_t)(e - c));
    int *vused = xmalloc(sizeof(int) * (size_t)(e - c));
    for (int k = c + 1; k < e; k++)
        if (s->cells[k].bound_vc == v) {
            inner[n] = k, vcell[n] = s->cells[k].bound_vcell, vused[n] = s->cells[k].vc_used;
            used += vused[n++];
            sched_model_unbind(s, k);
        }
    bool ok = sched_model_bind_safe(s, v, i, c, false);
    for (int k = 0; !ok && k < n; k++) {
        sched_model_bind(s, v, vcell[k], inner[k]);
        s->cells[inner[k]].vc_used = vused[k];
    }
    if (ok) {
        s->cells[c].vc_used = used;
        for (int slot = 0; slot < s->n_jobs; slot++) {
            job_t *j = &s->jobs[slot];
            for (int t = 0; j->state != SCHED_JOB_FREE && j->vc == v && t < j->n_tasks; t++)
                if (j->tasks[t].cell > c && j->tasks[t].cell < e)
                    j->tasks[t].cell = c;
        }
    }
    free(inner), free(vcell), free(vused);
    return ok;
}

/* Bind a free ancestor cell of node (the smallest first) to an unbound
 * virtual cell of VC v of its type, where that keeps every VC's cells
 * bindable (sharing safety: a restore after a configuration change must not
 * take what another VC's guarantee needs); a cell with v's own bindings
 * inside absorbs them. */
static bool restore_bind_for(sched_t *s, int v, int node)
{
    for (int c = s->nodes[node].cell; c != SCHED_NONE; c = s->cells[c].parent) {
        if (sched_model_bound_ancestor(s, c) != SCHED_NONE ||
            (s->cells[c].bound_below && !only_vc_below(s, c, v)))
            return false;
        vc_t *vc = &s->vcs[v];
        for (int i = 0; i < vc->n_vcells; i++) {
            vcell_t *vcl = &vc->vcells[i];
            if (vcl->cell != SCHED_NONE || vcl->pinned || vcl->type != s->cells[c].type ||
                vcl->chain != s->cells[c].chain)
                continue;
            bool ok = s->cells[c].bound_below ? restore_absorb(s, v, i, c)
                                              : sched_model_bind_safe(s, v, i, c, false);
            if (!ok)
                break; /* try a larger cell */
            sched_jobs_gc_note(s, v, c);
            return true;
        }
    }
    return false;
}

/* Does cell x hold a binding of VC v of type t? */
static bool holds_binding(const sched_t *s, int x, int v, int t)
{
    for (int k = x + 1, e = subtree_end(s, x); k < e; k++)
        if (s->cells[k].bound_vc == v && s->cells[k].type == t)
            return true;
    return false;
}

/* Free a virtual cell of VC v of type t in chain ch for a restore: a cell
 * that an unbound larger virtual cell of v can bind absorbs v's bindings
 * inside it, one of them of type t (smallest-first restores gave v's small
 * cells to jobs inside what was one larger cell before the restart). */
static bool restore_free_vcell(sched_t *s, int v, int t, int ch)
{
    vc_t *vc = &s->vcs[v];
    for (int i = 0; i < vc->n_vcells; i++) {
        const vcell_t *vcl = &vc->vcells[i];
        if (vcl->cell != SCHED_NONE || vcl->pinned || vcl->chain != ch ||
            s->types[vcl->type].level <= s->types[t].level)
            continue;
        for (int x = 0; x < s->n_cells; x++) {
            const cell_t *cx = &s->cells[x];
            if (cx->type != vcl->type || cx->chain != ch || cx->bound_vc != SCHED_NONE ||
                !cx->bound_below || sched_model_bound_ancestor(s, x) != SCHED_NONE ||
                !only_vc_below(s, x, v) || !holds_binding(s, x, v, t))
                continue;
            if (restore_absorb(s, v, i, x)) {
                sched_jobs_gc_note(s, v, x);
                return true;
            }
        }
    }
    return false;
}

/* The guarantee of VC v at node for a restore: a cell bound to v holds it,
 * or one is bound now, or v's other bindings make room for one. */
static bool restore_cell_for(sched_t *s, int v, int node)
{
    if (charged_cell(s, node, v) != SCHED_NONE || restore_bind_for(s, v, node))
        return true;
    for (int c = s->nodes[node].cell; c != SCHED_NONE; c = s->cells[c].parent)
        if (restore_free_vcell(s, v, s->cells[c].type, s->cells[c].chain))
            return charged_cell(s, node, v) != SCHED_NONE || restore_bind_for(s, v, node);
    return false;
}

/* For each node, the VC whose guaranteed work runs there (job j's tasks,
 * not yet committed, included) into owner[] (SCHED_NONE: none); false when
 * two VCs' guaranteed work shares a node. */
static bool work_owners(const sched_t *s, const job_t *j, int *owner)
{
    for (int n = 0; n < s->n_nodes; n++)
        owner[n] = SCHED_NONE;
    for (int slot = 0; slot <= s->n_jobs; slot++) {
        const job_t *o = slot < s->n_jobs ? &s->jobs[slot] : j;
        if (slot < s->n_jobs && (o == j || o->state == SCHED_JOB_FREE))
            continue; /* j (in its slot, not running yet) comes last */
        if (o->vc == SCHED_NONE || o->oppo)
            continue;
        for (int i = 0; i < o->n_tasks; i++) {
            const sched_task_t *t = &o->tasks[i];
            if (t->node == SCHED_NONE || t->gpus == 0 || !(t->bound || o == j))
                continue;
            if (owner[t->node] != SCHED_NONE && owner[t->node] != o->vc)
                return false;
            owner[t->node] = o->vc;
        }
    }
    return true;
}

/* Up to cap free cells of type t in chain ch holding nodes of VC v's work
 * not covered yet (cover[] counts) and no node of another VC's work, the
 * most such nodes first, into out; returns how many. */
static int cover_candidates(const sched_t *s, int t, int ch, int v, const int *owner,
                            const int *cover, int *out, int cap)
{
    int n = 0, score[8];
    for (int c = 0; c < s->n_cells; c++) {
        const cell_t *cl = &s->cells[c];
        if (cl->type != t || cl->chain != ch || cl->bound_below ||
            sched_model_bound_ancestor(s, c) != SCHED_NONE)
            continue;
        int k = 0;
        for (int x = cl->node_lo; x < cl->node_hi && k >= 0; x++)
            k = owner[x] != SCHED_NONE && owner[x] != v ? -1 : k + (owner[x] == v && !cover[x]);
        if (k <= 0)
            continue;
        int at;
        if (n < cap)
            at = n++;
        else if (k > score[cap - 1])
            at = cap - 1;
        else
            continue;
        while (at > 0 && score[at - 1] < k)
            out[at] = out[at - 1], score[at] = score[at - 1], at--;
        out[at] = c, score[at] = k;
    }
    return n;
}

/* Charge every guaranteed task of VC v to the cell it lies in now. */
static void recharge_vc(sched_t *s, int v)
{
    for (int i = 0; i < s->vcs[v].n_vcells; i++)
        if (s->vcs[v].vcells[i].cell != SCHED_NONE)
            s->cells[s->vcs[v].vcells[i].cell].vc_used = 0;
    for (int slot = 0; slot < s->n_jobs; slot++) {
        job_t *o = &s->jobs[slot];
        for (int i = 0; o->state != SCHED_JOB_FREE && o->vc == v && !o->oppo && i < o->n_tasks;
             i++) {
            sched_task_t *t = &o->tasks[i];
            if (!t->bound || t->gpus == 0)
                continue;
            t->cell = charged_cell(s, t->node, v);
            if (t->cell != SCHED_NONE)
                s->cells[t->cell].vc_used += t->gpus;
        }
    }
    for (int i = 0; i < s->vcs[v].n_vcells; i++)
        if (s->vcs[v].vcells[i].cell != SCHED_NONE)
            sched_jobs_gc_note(s, v, s->vcs[v].vcells[i].cell);
}

static void unbind_all(sched_t *s)
{
    for (int v = 0; v < s->n_vcs; v++)
        for (int i = 0; i < s->vcs[v].n_vcells; i++)
            if (!s->vcs[v].vcells[i].pinned && s->vcs[v].vcells[i].cell != SCHED_NONE)
                sched_model_unbind(s, s->vcs[v].vcells[i].cell);
}

typedef struct {
    int *vc, *vcell; /* the unpinned virtual cells, largest first */
    int n, budget;
    const int *owner;
    int *cover; /* per node: cells covering it */
} cover_t;

static void mark(sched_t *s, cover_t *cv, int c, int d)
{
    for (int x = s->cells[c].node_lo; x < s->cells[c].node_hi; x++)
        cv->cover[x] += d;
}

/* Bind the virtual cells from k on around the work, backtracking over the
 * best few cells of each (and leaving it unbound) within a budget; true when
 * all work is covered. */
static bool cover_from(sched_t *s, cover_t *cv, int k)
{
    if (k == cv->n) {
        for (int x = 0; x < s->n_nodes; x++)
            if (cv->owner[x] != SCHED_NONE && !cv->cover[x])
                return false;
        return true;
    }
    int v = cv->vc[k], i = cv->vcell[k];
    const vcell_t *vcl = &s->vcs[v].vcells[i];
    int cand[8];
    int n = cover_candidates(s, vcl->type, vcl->chain, v, cv->owner, cv->cover, cand, 8);
    for (int a = 0; a < n && cv->budget > 0; a++) {
        cv->budget--;
        sched_model_bind(s, v, i, cand[a]);
        mark(s, cv, cand[a], 1);
        if (cover_from(s, cv, k + 1))
            return true;
        mark(s, cv, cand[a], -1);
        sched_model_unbind(s, cand[a]);
    }
    return cv->budget > 0 && cover_from(s, cv, k + 1);
}

static int cmp_level_desc(const void *a, const void *b, void *ctx)
{
    const sched_t *s = ctx;
    const int *x = a, *y = b; /* pairs (vc, vcell) */
    int lx = s->types[s->vcs[x[0]].vcells[x[1]].type].level;
    int ly = s->types[s->vcs[y[0]].vcells[y[1]].type].level;
    return lx != ly ? ly - lx : (x[0] != y[0] ? x[0] - y[0] : x[1] - y[1]);
}

/* Bind every VC's unpinned cells anew around its work (none bound now). */
static bool cover_all(sched_t *s, const int *owner)
{
    int total = 0;
    for (int v = 0; v < s->n_vcs; v++)
        total += s->vcs[v].n_vcells;
    int *pairs = xmalloc(sizeof(int) * 2 * ((size_t)total + 1));
    int n = 0;
    for (int v = 0; v < s->n_vcs; v++)
        for (int i = 0; i < s->vcs[v].n_vcells; i++)
            if (!s->vcs[v].vcells[i].pinned)
                pairs[2 * n] = v, pairs[2 * n + 1] = i, n++;
    qsort_r(pairs, (size_t)n, 2 * sizeof(int), cmp_level_desc, s);
    cover_t cv = {.vc = xmalloc(sizeof(int) * ((size_t)n + 1)),
                  .vcell = xmalloc(sizeof(int) * ((size_t)n + 1)),
                  .n = n,
                  .budget = 4096,
                  .owner = owner,
                  .cover = xcalloc((size_t)s->n_nodes + 1, sizeof(int))};
    for (int k = 0; k < n; k++)
        cv.vc[k] = pairs[2 * k], cv.vcell[k] = pairs[2 * k + 1];
    for (int c = 0; c < s->n_cells; c++) /* pinned cells cover their nodes */
        if (s->cells[c].bound_vc != SCHED_NONE)
            mark(s, &cv, c, 1);
    bool ok = cover_from(s, &cv, 0);
    free(pairs), free(cv.vc), free(cv.vcell), free(cv.cover);
    return ok;
}

/* Last resort of a restore: bind all VCs' unpinned cells anew around the
 * guaranteed work restored so far and job j.  Restores meet the cells in any
 * order (a VC's rack-level cell around one job, its node-level cell under
 * another; the smallest cell first may take what another cell needs); this
 * finds a nesting that holds all of it.  Kept only when it covers all the
 * work and keeps every VC's cells bindable; else the bindings are put back. */
static bool restore_rebind(sched_t *s, const job_t *j)
{
    int *owner = xmalloc(sizeof(int) * ((size_t)s->n_nodes + 1));
    int total = 0;
    for (int v = 0; v < s->n_vcs; v++)
        total += s->vcs[v].n_vcells;
    int *old = xmalloc(sizeof(int) * ((size_t)total + 1));
    bool ok = work_owners(s, j, owner);
    if (ok) {
        int before = sched_check_deficit(s, false, NULL, 0);
        for (int v = 0, k = 0; v < s->n_vcs; v++)
            for (int i = 0; i < s->vcs[v].n_vcells; i++)
                old[k++] = s->vcs[v].vcells[i].pinned ? SCHED_NONE : s->vcs[v].vcells[i].cell;
        unbind_all(s);
        ok = cover_all(s, owner) && sched_check_deficit(s, false, NULL, 0) <= before;
        if (!ok) {
            unbind_all(s);
            for (int v = 0, k = 0; v < s->n_vcs; v++)
                for (int i = 0; i < s->vcs[v].n_vcells; i++, k++)
                    if (old[k] != SCHED_NONE)
                        sched_model_bind(s, v, i, old[k]);
        }
        for (int v = 0; v < s->n_vcs; v++)
            recharge_vc(s, v);
    }
    free(owner), free(old);
    return ok;
}

static bool restore_guarantee(sched_t *s, job_t *j)
{
    bool retried = false;
    for (int i = 0; i < j->n_tasks; i++) {
        sched_task_t *t = &j->tasks[i];
        if (t->node == SCHED_NONE || t->gpus == 0)
            continue;
        if (t->sku != SCHED_NONE && s->nodes[t->node].sku != t->sku)
            return false;
        if (restore_cell_for(s, j->vc, t->node))
            continue;
        if (retried || !restore_rebind(s, j))
            return false;
        retried = true; /* every node of the job is covered now */
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
        if ((rc = restore_alloc(s, j, &allocs[i])) == PAI_E_NOT_FOUND)
            rc = PAI_OK; /* gone with the old configuration; placed again */
    if (rc != PAI_OK) {
        sched_jobs_free(s, slot);
        return rc;
    }
    bool down = false;
    if (r->opportunistic && j->vc != SCHED_NONE && !j->refuse) {
        j->oppo = true; /* downgraded before the restart: stays so */
    } else if (j->vc == SCHED_NONE || j->refuse) {
        j->vc = j->vc == SCHED_NONE ? sched_model_find_vc(s, "default") : j->vc;
        down = !j->oppo;
        j->oppo = true;
    } else if (sched_policy_uses_vc_cells(s, j) && !restore_guarantee(s, j)) {
        down = true;
        j->oppo = true;
    }
    j->refuse = false;
    if (j->vc == SCHED_NONE && s->n_vcs > 0)
        j->vc = 0; /* keep the job somewhere: it runs opportunistic */
    sched_jobs_commit(s, slot);
    sched_jobs_vc_gc(s, j->vc);
    j->state = SCHED_JOB_RUNNING;
    sched_jobs_track_running(s, j, +1);
    for (int i = 0; i < j->n_tasks; i++)
        j->tasks[i].emitted = j->tasks[i].bound;
    if (!j->oppo && j->lazy && !j->lazy_counted)
        s->vcs[j->vc].lazy_running++, j->lazy_counted = true;
    if (!sched_job_done_queueing(j))
        queue_push(s, slot);
    if (downgraded)
        *downgraded = down;
    s->post_pass = false;
    sched_check_after(s, "the restore", slot, false);
    return PAI_OK;
}

uint64_t sched_lazy_preemptions(const sched_t *s)
{
    return s->lazy_preemptions;
}

bool sched_job_opportunistic(const sched_t *s, const char *job_id)
{
    int slot = sched_strmap_get(&s->job_map, job_id);
    return slot != SCHED_NONE && s->jobs[slot].oppo;
}
