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

/* The node ranges of the VC's unpinned bound cells of a SKU (and a chain,
 * or every chain when SCHED_NONE), neighbours merged; cached until the VC
 * binds or unbinds a cell. */
static pai_err_t vc_domain(sched_t *s, vc_t *vc, int sku, int chain)
{
    if (vc->dom_valid && vc->dom_sku == sku && vc->dom_chain == chain)
        return PAI_OK;
    vc->n_dom = 0;
    for (int i = 0; i < vc->n_vcells; i++) {
        const vcell_t *vcl = &vc->vcells[i];
        if (vcl->cell == SCHED_NONE || vcl->pinned || !sched_policy_sku_match(s, vcl->type, sku) ||
            (chain != SCHED_NONE && vcl->chain != chain))
            continue;
        const cell_t *c = &s->cells[vcl->cell];
        range_t *last = vc->n_dom ? &vc->dom[vc->n_dom - 1] : NULL;
        /* merge neighbours as they come (vcell order: sorting costs more than it saves) */
        if (last && last->hi == c->node_lo && !c->sub && last->mask == SCHED_ALL_GPUS) {
            last->hi = c->node_hi;
            continue;
        }
        VEC_XRESERVE(vc->dom, vc->cap_dom, (size_t)vc->n_dom + 1);
        vc->dom[vc->n_dom++] = (range_t){c->node_lo, c->node_hi, sched_cell_mask(c)};
    }
    vc->dom_sku = sku;
    vc->dom_chain = chain;
    vc->dom_valid = true;
    return PAI_OK;
}

static pai_err_t domain_vc_chain(sched_t *s, attempt_t *at, const job_t *j, int chain)
{
    vc_t *vc = &s->vcs[j->vc];
    pai_err_t rc = vc_domain(s, vc, j->sku, chain);
    for (int i = 0; rc == PAI_OK && i < vc->n_dom; i++)
        rc = sched_attempt_add_range(at, vc->dom[i].lo, vc->dom[i].hi, vc->dom[i].mask);
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
            rc = sched_attempt_add_cell(s, at, vcl->cell);
    }
    return rc;
}

pai_err_t sched_policy_domain_vc(sched_t *s, attempt_t *at, const job_t *j)
{
    return domain_vc_chain(s, at, j, SCHED_NONE);
}

static bool any_healthy(const sched_t *s, int c)
{
    for (int n = s->cells[c].node_lo; n < s->cells[c].node_hi; n++)
        if (s->nodes[n].healthy)
            return true;
    return false;
}

/* While nodes are unhealthy: among the free cells for virtual cell i of VC v
 * (with a healthy node, best pick first, at most 32 tried), the first whose
 * binding keeps every VC's cells bindable (sharing safety) and dooms no
 * more virtual cells on healthy hardware than before; bound.  SCHED_NONE
 * when none: this cell stays unbound (doomed) rather than take the healthy
 * hardware another VC's guarantee needs. */
static int bind_checked(sched_t *s, int v, int i, int first)
{
    const vcell_t *vcl = &s->vcs[v].vcells[i];
    int tried[32], n = 0;
    for (int c = first; c != SCHED_NONE && n < (int)ARRAY_LEN(tried);) {
        if (sched_model_bind_safe(s, v, i, c, true))
            return c;
        tried[n++] = c;
        /* the next candidate: hide those tried behind temporary marks */
        for (int k = 0; k < n; k++)
            s->cells[tried[k]].bound_below++;
        c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, 0);
        for (int k = 0; k < n; k++)
            s->cells[tried[k]].bound_below--;
        if (c != SCHED_NONE && !any_healthy(s, c))
            c = SCHED_NONE;
    }
    return SCHED_NONE;
}

/* A free cell for virtual cell i of VC v in buddy order with health, bound;
 * SCHED_NONE when none with a healthy node can be bound safely. */
static int bind_one(sched_t *s, int v, int i)
{
    const vcell_t *vcl = &s->vcs[v].vcells[i];
    int c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, 0);
    if (c == SCHED_NONE || !any_healthy(s, c))
        return SCHED_NONE;
    if (s->n_bad_nodes > 0)
        return bind_checked(s, v, i, c);
    sched_model_bind(s, v, i, c); /* all healthy: buddy order is safe by itself */
    return c;
}

/* Bind unbound cells of the job's VC (of chain, or any when SCHED_NONE)
 * worth at least need GPUs; returns how many.  A cell type that cannot be
 * bound is doomed for now; the others are still tried. */
static int bind_more(sched_t *s, attempt_t *at, const job_t *j, int need, int chain)
{
    vc_t *vc = &s->vcs[j->vc];
    int added = 0, bound = 0;
    int failed[8], n_failed = 0; /* (type, chain) keys that found no cell */
    for (int i = 0; i < vc->n_vcells && added < need; i++) {
        vcell_t *vcl = &vc->vcells[i];
        if (vcl->cell != SCHED_NONE || vcl->pinned ||
            !sched_policy_sku_match(s, vcl->type, j->sku) ||
            (chain != SCHED_NONE && vcl->chain != chain))
            continue;
        int key = vcl->type * s->n_types + vcl->chain;
        bool skip = false;
        for (int k = 0; k < n_failed; k++)
            skip |= failed[k] == key;
        if (skip)
            continue;
        int c = bind_one(s, j->vc, i);
        if (c == SCHED_NONE) {
            s->doomed_hit = true; /* the rest of this type is doomed */
            if (n_failed < (int)ARRAY_LEN(failed))
                failed[n_failed++] = key;
            continue;
        }
        sched_jobs_gc_note(s, j->vc, c);
        if (sched_attempt_add_cell(s, at, c) != PAI_OK)
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
            rc = sched_attempt_add_range(at, lo, n, SCHED_ALL_GPUS), lo = -1;
    }
    free(own);
    return rc;
}

static pai_err_t domain_all(sched_t *s, attempt_t *at, const job_t *j)
{
    return cpu_guaranteed(s, j) ? domain_cpu(s, at, j)
                                : sched_attempt_add_range(at, 0, s->n_nodes, SCHED_ALL_GPUS);
}

/* Chains a gang's GPU tasks may use, in preference order, into out (cap);
 * returns how many, or 0 when the job is not restricted to one chain (a
 * single chain anyway, task-by-task, one task, pinned cells, node-derived
 * model).  A gang stays within one chain, as in HiveD. */
static int gang_chains(const sched_t *s, const job_t *j, bool vcdom, int *out, int cap)
{
    int unbound = 0; /* unpinned tasks to place (pinned ones are in their cell) */
    for (int i = 0; i < j->n_tasks; i++) {
        unbound += !j->tasks[i].bound && j->tasks[i].pinned == SCHED_NONE;
    }
    if (!j->gang || unbound < 2 || j->total_gpus == 0 || s->derived ||
        s->opts.policy != SCHED_POLICY_PAI)
        return 0;
    int n = 0;
    if (vcdom) {
        const vc_t *vc = &s->vcs[j->vc];
        for (int i = 0; i < vc->n_vcells && n < cap; i++) {
            const vcell_t *vcl = &vc->vcells[i];
            bool seen = vcl->pinned || !sched_policy_sku_match(s, vcl->type, j->sku);
            for (int k = 0; k < n && !seen; k++)
                seen = out[k] == vcl->chain;
            if (!seen)
                out[n++] = vcl->chain;
        }
    } else {
        int sku = j->sku; /* tasks of any SKU beside tasks of one: every chain */
        for (int i = 0; i < j->n_tasks; i++)
            if (j->tasks[i].gpus > 0 && j->tasks[i].sku != sku)
                sku = SCHED_NONE;
        for (int c = 0; c < s->n_cells && n < cap; c++) {
            const cell_t *cl = &s->cells[c];
            bool seen = cl->parent != SCHED_NONE || s->types[cl->chain].gpus == 0 ||
                        !sched_policy_sku_match(s, cl->chain, sku);
            for (int k = 0; k < n && !seen; k++)
                seen = out[k] == cl->chain;
            if (!seen)
                out[n++] = cl->chain;
        }
    }
    return n > 1 ? n : 0;
}

/* The whole cluster's nodes in top cells of chain, and the job's pinned cells. */
static pai_err_t domain_chain(sched_t *s, attempt_t *at, const job_t *j, int chain)
{
    pai_err_t rc = PAI_OK;
    for (int c = 0; rc == PAI_OK && c < s->n_cells; c++)
        if (s->cells[c].parent == SCHED_NONE && s->cells[c].chain == chain)
            rc = sched_attempt_add_cell(s, at, c);
    for (int i = 0; rc == PAI_OK && i < j->n_tasks; i++) {
        int p = j->tasks[i].pinned;
        if (p != SCHED_NONE && s->cells[p].chain != chain)
            rc = sched_attempt_add_cell(s, at, p);
    }
    return rc;
}

/* A gang in one chain at a time: first the chains where it fits in the cells
 * bound now, then binding more cells chain by chain. */
static bool try_place_chains(sched_t *s, int slot, bool vcdom, const int *chains, int n,
                             int unbound, int need0)
{
    const job_t *j = &s->jobs[slot];
    attempt_t *at = &s->at;
    for (int pass = 0; pass < (vcdom ? 2 : 1); pass++)
        for (int k = 0; k < n; k++) {
            at->n_ranges = 0;
            if ((vcdom ? domain_vc_chain(s, at, j, chains[k])
                       : domain_chain(s, at, j, chains[k])) != PAI_OK)
                return false;
            int placed = at->n_ranges ? sched_attempt_place(s, at) : 0;
            int need = need0;
            while (pass == 1 && placed < unbound && bind_more(s, at, j, need, chains[k])) {
                placed = sched_attempt_place(s, at);
                need *= 2;
            }
            if (placed == unbound)
                return true;
        }
    return false;
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
    int need = gpus > 0 ? gpus : 1;
    int chains[16];
    int n_chains = gang_chains(s, j, vcdom, chains, (int)ARRAY_LEN(chains));
    if (n_chains > 0)
        return try_place_chains(s, slot, vcdom, chains, n_chains, unbound, need);
    if ((vcdom ? sched_policy_domain_vc(s, at, j) : domain_all(s, at, j)) != PAI_OK)
        return false;
    int placed = sched_attempt_place(s, at);
    while (vcdom && (j->gang ? placed < unbound : placed == 0) &&
           bind_more(s, at, j, need, SCHED_NONE)) {
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
        int lo, hi;
        sched_cell_gpu_range(s, c, i, &lo, &hi);
        for (int g = lo; g < hi; g++) {
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
        if (j->tasks[i].bound) {
            sched_jobs_uncharge_task(s, j, &j->tasks[i]);
            sched_jobs_account_task(s, j, &j->tasks[i], -1);
        }
    sched_jobs_track_running(s, j, -1);
    j->oppo = true;
    sched_jobs_track_running(s, j, +1);
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].bound)
            sched_jobs_account_task(s, j, &j->tasks[i], +1);
    if (j->lazy_counted)
        s->vcs[j->vc].lazy_running--, j->lazy_counted = false;
    s->lazy_preemptions++;
}

static void downgrade_cell_users(sched_t *s, int c, int v)
{
    for (int i = s->cells[c].node_lo; i < s->cells[c].node_hi; i++) {
        const sched_mnode_t *n = &s->nodes[i];
        int lo, hi;
        sched_cell_gpu_range(s, c, i, &lo, &hi);
        for (int g = lo; g < hi; g++) {
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
        int q = sched_model_pick_free_cell(s, vcl->type, vcl->chain,
                                           SCHED_PICK_HEALTHY | SCHED_PICK_IDLE);
        if (q == SCHED_NONE)
            return false;
        int used = s->cells[c].vc_used;
        sched_model_unbind(s, c);
        if (!sched_model_bind_safe(s, j->vc, i, q, true)) { /* moving would break sharing safety */
            sched_model_bind(s, j->vc, i, c);
            s->cells[c].vc_used = used;
            return false;
        }
        downgrade_cell_users(s, c, j->vc);
        sched_jobs_gc_note(s, j->vc, q);
        if (sched_policy_try_place(s, slot, MODE_FREE))
            return true;
    }
    return false;
}
