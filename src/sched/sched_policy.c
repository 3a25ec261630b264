/*
 * sched_policy.c - the pai policy: each job's placement domain (VC cells
 * bound so far, binding more, CPU-only domains), placement attempts in
 * free/preempt/reserve modes, and lazy preemption (downgrades).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "sched/sched_place.h"

/* ---- the pai policy: domains, binding more cells, modes ------------------- */

bool sched_policy_sku_match(const sched_t *s, int type, int sku)
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
        if (vcl->cell == SCHED_NONE || vcl->pinned || !sched_policy_sku_match(s, vcl->type, sku))
            continue;
        VEC_XRESERVE(vc->dom, vc->cap_dom, (size_t)vc->n_dom + 1);
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

pai_err_t sched_policy_domain_vc(sched_t *s, attempt_t *at, const job_t *j)
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
        if (vcl->cell != SCHED_NONE || vcl->pinned || !sched_policy_sku_match(s, vcl->type, j->sku))
            continue;
        int c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, false, false);
        if (c != SCHED_NONE && !any_healthy(s, c)) /* buddy order met a bad cell: skip it */
            c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, true, false);
        if (c == SCHED_NONE || !any_healthy(s, c)) {
            s->doomed_hit = true; /* the rest of this type is doomed */
            break;
        }
        sched_model_bind(s, j->vc, i, c);
        sched_jobs_gc_note(s, j->vc, c);
        if (sched_attempt_add_range(at, s->cells[c].node_lo, s->cells[c].node_hi) != PAI_OK)
            break;
        added += s->types[vcl->type].gpus;
        bound++;
    }
    return bound;
}

bool sched_policy_uses_vc_cells(const sched_t *s, const job_t *j)
{
    return s->opts.policy == SCHED_POLICY_PAI && !j->oppo && j->total_gpus > 0;
}

/* CPU-only guaranteed work stays on nodes its VC may own: see
 * sched_node_open_to().  own[chain]: bit 1 some VC has virtual cells of the
 * chain, bit 2 VC v has.  NULL on allocation failure (caller frees). */
uint8_t *sched_chain_owners(const sched_t *s, int v)
{
    uint8_t *own = xcalloc((size_t)s->n_types + 1, 1);
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
bool sched_policy_try_place(sched_t *s, int slot, pmode_t mode)
{
    job_t *j = &s->jobs[slot];
    attempt_t *at = &s->at;
    at->job = slot, at->mode = mode, at->n_ranges = 0;
    int unbound = 0, gpus = 0;
    for (int i = 0; i < j->n_tasks; i++)
        if (!j->tasks[i].bound)
            unbound++, gpus += j->tasks[i].gpus;
    bool vcdom = sched_policy_uses_vc_cells(s, j);
    s->touched = s->touched_lat = true;
    if ((vcdom ? sched_policy_domain_vc(s, at, j) : domain_all(s, at, j)) != PAI_OK)
        return false;
    int placed = sched_attempt_place(s, at);
    int need = gpus > 0 ? gpus : 1;
    while (vcdom && (j->gang ? placed < unbound : placed == 0) && bind_more(s, at, j, need)) {
        placed = sched_attempt_place(s, at);
        need *= 2;
    }
    return j->gang ? placed == unbound : placed > 0;
}

void sched_policy_reset_tentative(job_t *j)
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
        const sched_mnode_t *n = &s->nodes[i];
        for (int g = 0; g < n->ngpu; g++) {
            int o = n->owner[g];
            if (o == SCHED_NONE || s->jobs[o].oppo || s->jobs[o].vc != j->vc)
                continue;
            const job_t *oj = &s->jobs[o];
            if (!oj->lazy || oj->prio >= j->prio || oj->state != SCHED_JOB_RUNNING)
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
            sched_jobs_uncharge_task(s, j, &j->tasks[i]);
    sched_jobs_track_running(s, j, -1);
    j->oppo = true;
    sched_jobs_track_running(s, j, +1);
    if (j->lazy_counted)
        s->vcs[j->vc].lazy_running--, j->lazy_counted = false;
    s->lazy_preemptions++;
}

static void downgrade_cell_users(sched_t *s, int c, int v)
{
    for (int i = s->cells[c].node_lo; i < s->cells[c].node_hi; i++) {
        const sched_mnode_t *n = &s->nodes[i];
        for (int g = 0; g < n->ngpu; g++) {
            int o = n->owner[g];
            if (o != SCHED_NONE && !s->jobs[o].oppo && s->jobs[o].vc == v)
                downgrade(s, o);
        }
    }
}

bool sched_policy_try_lazy(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    vc_t *vc = &s->vcs[j->vc];
    for (int i = 0; i < vc->n_vcells; i++) {
        vcell_t *vcl = &vc->vcells[i];
        int c = vcl->cell;
        if (c == SCHED_NONE || vcl->pinned || !sched_policy_sku_match(s, vcl->type, j->sku) ||
            !cell_all_lazy_lower(s, c, j))
            continue;
        int q = sched_model_pick_free_cell(s, vcl->type, vcl->chain, true, true);
        if (q == SCHED_NONE)
            return false;
        downgrade_cell_users(s, c, j->vc);
        sched_model_unbind(s, c);
        sched_model_bind(s, j->vc, i, q);
        sched_jobs_gc_note(s, j->vc, q);
        if (sched_policy_try_place(s, slot, MODE_FREE))
            return true;
    }
    return false;
}
