/*
 * sched_jobs.c - job bookkeeping: submit, cancel, release and commit of
 * placements (GPU charging, running-VC tracking, lazy-cell garbage
 * collection).  Restoring jobs after a restart is in sched_restore.c.
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

pai_err_t sched_jobs_check_request(const sched_request_t *r, char *err, size_t errlen)
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

/* Can the job take part in a pass's dominance memo (sched.c)?  Its GPU
 * tasks are of one SKU and none has a constraint of its own (a pinned
 * cell, withinOneCell; a CPU-only task keeps off some nodes).  A single
 * task may ask for CPUs and memory: one task needing at least the GPUs,
 * CPUs and memory of one that found no node cannot find one either. */
static void memo_shape(job_t *j)
{
    bool ok = j->total_gpus > 0;
    for (int i = 0; ok && i < j->n_tasks; i++) {
        const sched_task_t *t = &j->tasks[i];
        ok = t->pinned == SCHED_NONE && t->within == SCHED_NONE && t->gpus > 0 &&
             t->sku == j->sku && ((!t->cpus && !t->mem) || j->n_tasks == 1);
    }
    j->memo_shape = ok;
    j->memo_cpus = ok && j->n_tasks == 1 ? j->tasks[0].cpus : 0;
    j->memo_mem = ok && j->n_tasks == 1 ? j->tasks[0].mem : 0;
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
    memo_shape(j);
    return PAI_OK;
}

qent_t sched_jobs_qent(const sched_t *s, int slot)
{
    const job_t *j = &s->jobs[slot];
    return (qent_t){.slot = slot,
                    .vc = j->vc,
                    .sku = j->sku,
                    .prio = j->prio,
                    .max_task = j->max_task_gpus,
                    .total = j->total_gpus,
                    .cpus = j->memo_cpus,
                    .nf_ver = j->nf_ver,
                    .mem = j->memo_mem,
                    .oppo = j->oppo,
                    .gang = j->gang,
                    .single = j->n_tasks == 1,
                    .fast = j->memo_shape && j->state == SCHED_JOB_WAITING && !j->refuse &&
                            !j->n_resv && !j->waiting_on};
}

void sched_jobs_queue_push(sched_t *s, int slot)
{
    VEC_XRESERVE(s->queue, s->cap_queue, (size_t)s->n_queue + 1);
    s->jobs[slot].in_queue = true;
    s->queue[s->n_queue++] = sched_jobs_qent(s, slot);
}

int sched_jobs_queue_cmp(const void *a, const void *b, void *ctx)
{
    const sched_t *s = ctx;
    const job_t *x = &s->jobs[((const qent_t *)a)->slot], *y = &s->jobs[((const qent_t *)b)->slot];
    if (x->prio != y->prio)
        return x->prio > y->prio ? -1 : 1;
    if (x->submit_ms != y->submit_ms)
        return x->submit_ms < y->submit_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Where slot is in the queue: a binary search of the ordered part (the
 * order is total: seq is unique), else a scan of the new ones. */
static int queue_find(sched_t *s, int slot)
{
    int lo = 0, hi = s->n_sorted;
    qent_t key = {.slot = slot};
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = sched_jobs_queue_cmp(&s->queue[mid], &key, s);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int i = s->n_sorted; i < s->n_queue; i++)
        if (s->queue[i].slot == slot)
            return i;
    return -1;
}

static void queue_remove(sched_t *s, int slot)
{
    int i = s->jobs[slot].in_queue ? queue_find(s, slot) : -1;
    if (i < 0)
        return;
    memmove(&s->queue[i], &s->queue[i + 1], sizeof(qent_t) * (size_t)(s->n_queue - i - 1));
    s->n_queue--;
    s->n_sorted -= i < s->n_sorted;
    s->jobs[slot].in_queue = false;
}

pai_err_t sched_jobs_new_job(sched_t *s, const sched_request_t *r, int *out)
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
    pai_err_t rc = sched_jobs_check_request(r, err, errlen);
    if (rc != PAI_OK)
        return rc;
    if (sched_strmap_get(&s->job_map, r->job_id) != SCHED_NONE) {
        snprintf(err, errlen, "job %s is already known to the scheduler", r->job_id);
        return PAI_E_CONFLICT_JOB;
    }
    int slot;
    rc = sched_jobs_new_job(s, r, &slot);
    if (rc != PAI_OK)
        return rc;
    sched_reasons_within_never(s, &s->jobs[slot]);
    sched_jobs_set_state(s, &s->jobs[slot], SCHED_JOB_WAITING);
    s->waiting++;
    s->post_pass = false;
    sched_jobs_queue_push(s, slot);
    return PAI_OK;
}

/* VC v's use on nodes of SKU sku, grown to hold it. */
static vc_use_t *vc_use_at(sched_t *s, int v, int sku)
{
    vc_t *vc = &s->vcs[v];
    int k = sku + 1;
    if (k >= vc->n_use) {
        int n = k + 1 > s->n_skus + 1 ? k + 1 : s->n_skus + 1;
        vc->use = xrealloc(vc->use, sizeof(*vc->use) * (size_t)n);
        memset(&vc->use[vc->n_use], 0, sizeof(*vc->use) * (size_t)(n - vc->n_use));
        vc->n_use = n;
    }
    return &vc->use[k];
}

void sched_jobs_account_task(sched_t *s, const job_t *j, const sched_task_t *t, int sign)
{
    if (j->vc == SCHED_NONE)
        return;
    vc_use_t *u = vc_use_at(s, j->vc, s->nodes[t->node].sku);
    if (j->oppo)
        u->oppo_gpus += sign * t->gpus;
    else
        u->used_gpus += sign * t->gpus;
    u->cpus += sign * t->cpus;
    u->memory_mb += sign * t->mem;
}

/* +1 or -1 on the count of j's VC for state st. */
static void count_state(sched_t *s, const job_t *j, sched_job_state_t st, int d)
{
    if (j->vc == SCHED_NONE || st == SCHED_JOB_FREE)
        return;
    if (st == SCHED_JOB_WAITING)
        s->vcs[j->vc].n_waiting += d;
    else
        s->vcs[j->vc].n_running += d;
}

void sched_jobs_set_state(sched_t *s, job_t *j, sched_job_state_t st)
{
    count_state(s, j, j->state, -1);
    count_state(s, j, st, +1);
    j->state = st;
}

void sched_jobs_free(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    for (int i = 0; i < j->n_tasks; i++) /* released tasks are unbound: none, normally */
        if (j->tasks[i].bound)
            sched_jobs_account_task(s, j, &j->tasks[i], -1);
    sched_jobs_set_state(s, j, SCHED_JOB_FREE);
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

int sched_jobs_charged_cell(const sched_t *s, int node, int g, int v)
{
    int c = sched_model_bound_cell_at(s, node, g);
    return c != SCHED_NONE && s->cells[c].bound_vc == v ? c : SCHED_NONE;
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
    sched_jobs_account_task(s, j, t, -1);
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
    if (j->in_queue) {
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
        sched_jobs_account_task(s, j, t, +1);
        if (j->oppo || t->gpus == 0 || j->vc == SCHED_NONE)
            continue;
        s->vcs[j->vc].used_gpus += t->gpus;
        if (s->opts.policy == SCHED_POLICY_PAI) {
            t->cell = sched_jobs_charged_cell(s, t->node, j->gpu[t->gpu0], j->vc);
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
