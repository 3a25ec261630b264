/*
 * sched_reasons.c - why a job is refused or waits (quota, capacity,
 * cluster size) and the anti-starvation reservation of nodes for a
 * long-waiting job.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "sched/sched_place.h"

/* ---- refusal and wait reasons ------------------------------------------- */

static int vc_quota(const sched_t *s, int v, int sku)
{
    int q = 0;
    for (int i = 0; i < s->vcs[v].n_vcells; i++)
        if (sched_policy_sku_match(s, s->vcs[v].vcells[i].type, sku))
            q += s->types[s->vcs[v].vcells[i].type].gpus;
    return q;
}

void sched_reasons_cluster_gpus(const sched_t *s, int sku, int *total, int *free_gpus,
                                int *max_node)
{
    *total = *free_gpus = *max_node = 0;
    for (int i = 0; i < s->n_nodes; i++) {
        const sched_mnode_t *n = &s->nodes[i];
        if (n->ngpu == 0 || (sku != SCHED_NONE && n->sku != sku))
            continue;
        *total += n->ngpu;
        *free_gpus += n->healthy ? n->ngpu - n->used : 0;
        if (n->ngpu > *max_node)
            *max_node = n->ngpu;
    }
}

const char *sched_reasons_sku_name(const sched_t *s, int sku)
{
    return sku == SCHED_NONE ? "" : s->skus[sku].name;
}

/* "A100" for a job or VC of one SKU, else "GPUs" (see sched_int.h). */
const char *sched_reasons_gpu_label(const sched_t *s, const job_t *j)
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
        s->cap_total = xcalloc((size_t)s->n_skus + 1, sizeof(int));
        s->cap_max_node = xcalloc((size_t)s->n_skus + 1, sizeof(int));
        if (!s->cap_total || !s->cap_max_node) {
            *total = *max_node = *max_cpus = 0;
            return;
        }
        s->cap_max_cpus = 0;
        for (int i = 0; i < s->n_nodes; i++) {
            const sched_mnode_t *n = &s->nodes[i];
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

int sched_reasons_dying_gpus(const sched_t *s, int v, int sku)
{
    int n = 0;
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *d = &s->jobs[slot];
        if (d->state != SCHED_JOB_DYING || !d->oppo || d->dying_for == SCHED_NONE ||
            s->jobs[d->dying_for].vc != v)
            continue;
        for (int i = 0; i < d->n_tasks; i++)
            if (d->tasks[i].bound && (sku == SCHED_NONE || s->nodes[d->tasks[i].node].sku == sku))
                n += d->tasks[i].gpus;
    }
    return n;
}

/* The inputs of a wait reason that cost a scan (the VC's cells; all jobs),
 * kept for the rest of the pass: every waiting job of a long queue asks for
 * the same few.  Only sched_reasons_wait() uses them, within a pass. */
static bool rw_size(sched_t *s)
{
    int n = s->n_vcs * (s->n_skus + 1);
    if (n == s->rw_n && s->rw_quota)
        return true;
    free(s->rw_quota), free(s->rw_dying), free(s->rw_quota_stamp);
    free(s->nf_quota), free(s->nf_quota_ver);
    s->rw_n = n;
    s->rw_quota = xcalloc((size_t)n + 1, sizeof(int));
    s->rw_dying = xcalloc((size_t)n + 1, sizeof(int));
    s->rw_quota_stamp = xcalloc((size_t)n + 1, sizeof(uint64_t));
    s->nf_quota = xcalloc((size_t)n + 1, sizeof(int));
    s->nf_quota_ver = xcalloc((size_t)n + 1, sizeof(unsigned)); /* 0: not valid */
    s->rw_dying_key[0] = 0; /* passes start at 1: nothing valid yet */
    return s->rw_quota && s->rw_dying && s->rw_quota_stamp;
}

static void pass_inputs(sched_t *s, int v, int sku, int *quota, int *dying)
{
    if (v == SCHED_NONE || sku < SCHED_NONE || sku >= s->n_skus || !rw_size(s)) {
        *quota = vc_quota(s, v, sku);
        *dying = sched_reasons_dying_gpus(s, v, sku);
        return;
    }
    int w = s->n_skus + 1, idx = v * w + sku + 1;
    if (s->rw_quota_stamp[idx] != s->passes) {
        s->rw_quota[idx] = vc_quota(s, v, sku);
        s->rw_quota_stamp[idx] = s->passes;
    }
    *quota = s->rw_quota[idx];
    uint64_t key[3] = {s->passes, s->preemptions, s->lazy_preemptions};
    if (memcmp(key, s->rw_dying_key, sizeof(key)) != 0) {
        memset(s->rw_dying, 0, sizeof(int) * (size_t)s->rw_n);
        for (int slot = 0; slot < s->n_jobs; slot++) { /* as sched_reasons_dying_gpus() */
            const job_t *d = &s->jobs[slot];
            if (d->state != SCHED_JOB_DYING || !d->oppo || d->dying_for == SCHED_NONE)
                continue;
            int dv = s->jobs[d->dying_for].vc;
            if (dv == SCHED_NONE)
                continue;
            for (int i = 0; i < d->n_tasks; i++) {
                if (!d->tasks[i].bound)
                    continue;
                int ns = s->nodes[d->tasks[i].node].sku;
                s->rw_dying[dv * w] += d->tasks[i].gpus;
                if (ns >= 0 && ns < s->n_skus)
                    s->rw_dying[dv * w + ns + 1] += d->tasks[i].gpus;
            }
        }
        memcpy(s->rw_dying_key, key, sizeof(key));
    }
    *dying = s->rw_dying[idx];
}

/* The VC's guaranteed GPUs of a SKU for never_fits(), which every waiting
 * job asks in every pass it does not fit: cached per VC and SKU until the
 * topology changes (a VC's virtual cells change only with it: the config,
 * or a node joining the node-derived model). */
static int never_quota(sched_t *s, int v, int sku)
{
    if (sku < SCHED_NONE || sku >= s->n_skus || !rw_size(s))
        return vc_quota(s, v, sku);
    int idx = v * (s->n_skus + 1) + sku + 1;
    if (s->nf_quota_ver[idx] != s->topo_ver + 1u) {
        s->nf_quota[idx] = vc_quota(s, v, sku);
        s->nf_quota_ver[idx] = s->topo_ver + 1u;
    }
    return s->nf_quota[idx];
}

/* True (reason set) when the job can never fit. */
bool sched_reasons_never_fits(sched_t *s, job_t *j)
{
    if (j->refuse)
        return true;
    if (s->derived && s->n_nodes == 0)
        return false;
    int total, max_node, max_cpus;
    cluster_caps(s, j->sku, &total, &max_node, &max_cpus);
    if (j->max_task_gpus > max_node) {
        snprintf(j->reason, sizeof(j->reason), "a task needs %d %s but the largest node has %d",
                 j->max_task_gpus, sched_reasons_gpu_label(s, j), max_node);
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
    if (!j->gang)
        return false;
    int q = quota ? never_quota(s, j->vc, j->sku) : total;
    if (j->total_gpus > q) {
        const char *sk = sched_reasons_gpu_label(s, j);
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

/* ---- "within one cell" groups that can never fit --------------------- */

/* Could items of these sizes ever go into bins of these capacities?  False
 * only when they surely cannot: more in all than the bins hold, or, for an
 * item size k, more items of at least k than the bins have room for items
 * of k (each such item takes k or more of one bin). */
static bool may_pack(const int64_t *size, int n, const int64_t *cap, int m)
{
    int64_t total = 0, room = 0;
    for (int i = 0; i < n; i++)
        total += size[i];
    for (int b = 0; b < m; b++)
        room += cap[b];
    if (total > room)
        return false;
    for (int i = 0; i < n; i++) {
        int64_t k = size[i], big = 0, slots = 0;
        if (k <= 0)
            continue;
        for (int x = 0; x < n; x++)
            big += size[x] >= k;
        for (int b = 0; b < m; b++)
            slots += cap[b] / k;
        if (big > slots)
            return false;
    }
    return true;
}

/* The group's tasks (ids in tk[0..n)) against nodes nd[0..m) of one cell
 * (block: GPUs per node of a cell below node level, 0 the whole node). */
static bool group_may_fit(const sched_t *s, const job_t *j, const int *tk, int n, const int *nd,
                          int m, int block, int sku, int64_t *size, int64_t *cap)
{
    for (int r = 0; r < 3; r++) {
        bool any = false, unknown = false;
        for (int i = 0; i < n; i++) {
            const sched_task_t *t = &j->tasks[tk[i]];
            size[i] = r == 0 ? t->gpus : r == 1 ? t->cpus : t->mem;
            any |= size[i] > 0;
        }
        for (int b = 0; b < m; b++) {
            const sched_mnode_t *x = &s->nodes[nd[b]];
            cap[b] = r == 0   ? (sku != SCHED_NONE && x->sku != sku ? 0
                                 : block                            ? block
                                                                    : x->ngpu)
                     : r == 1 ? x->cpus
                              : x->mem;
            unknown |= r > 0 && cap[b] <= 0; /* CPUs or memory not described: no limit */
        }
        if (any && !unknown && !may_pack(size, n, cap, m))
            return false;
    }
    return true;
}

/* Does some cell of type w hold the group?  Nodes of one cell come together
 * (cells are node ranges); below node level each node is a candidate. */
static bool some_cell_may_fit(const sched_t *s, const job_t *j, const int *tk, int n, int w,
                              int sku, int64_t *size, int64_t *cap, int *nd)
{
    if (sched_type_below_node(s, w)) {
        for (int i = 0; i < s->n_nodes; i++) {
            int b = sched_node_block(s, i, w);
            if (b > 0 && group_may_fit(s, j, tk, n, &i, 1, b, sku, size, cap))
                return true;
        }
        return false;
    }
    for (int c = 0; c < s->n_cells; c++) {
        const cell_t *cl = &s->cells[c];
        if (cl->type != w || cl->sub)
            continue;
        int m = 0;
        for (int i = cl->node_lo; i < cl->node_hi; i++)
            nd[m++] = i;
        if (group_may_fit(s, j, tk, n, nd, m, 0, sku, size, cap))
            return true;
    }
    return false;
}

/* Refuse (reason set) a job with a "within one cell" group that no cell of
 * its type in the configuration could ever hold. */
void sched_reasons_within_never(sched_t *s, job_t *j)
{
    if (s->derived || j->refuse)
        return;
    int *tk = xmalloc(sizeof(int) * (size_t)j->n_tasks);
    int *nd = xmalloc(sizeof(int) * (size_t)(s->n_nodes ? s->n_nodes : 1));
    int64_t *size = xmalloc(sizeof(int64_t) * (size_t)j->n_tasks);
    int64_t *cap = xmalloc(sizeof(int64_t) * (size_t)(s->n_nodes ? s->n_nodes : 1));
    for (int g0 = 0; g0 < j->n_tasks && !j->refuse; g0++) {
        int grp = j->tasks[g0].group, w = SCHED_NONE, n = 0, sku = SCHED_NONE, gpus = 0;
        bool first = true;
        for (int i = 0; i < j->n_tasks; i++) {
            const sched_task_t *t = &j->tasks[i];
            if (t->group != grp)
                continue;
            first &= i >= g0;
            tk[n++] = i;
            gpus += t->gpus;
            if (t->sku != SCHED_NONE)
                sku = t->sku;
            if (t->within != SCHED_NONE &&
                (w == SCHED_NONE || s->types[t->within].level < s->types[w].level))
                w = t->within;
        }
        if (!first || w == SCHED_NONE || some_cell_may_fit(s, j, tk, n, w, sku, size, cap, nd))
            continue;
        j->refuse = true;
        snprintf(j->reason, sizeof(j->reason),
                 "an affinity group (task role %s: %d task%s, %d %s) must lie within one %s cell "
                 "(withinOneCell) and no %s cell can ever hold it",
                 j->roles[j->tasks[g0].role], n, n == 1 ? "" : "s", gpus,
                 sched_reasons_gpu_label(s, j), s->types[w].name, s->types[w].name);
    }
    free(tk);
    free(nd);
    free(size);
    free(cap);
}

/* "; ..." when a group asked to stay within one cell found none with room. */
static void append_within(const sched_t *s, job_t *j)
{
    if (!s->within_miss)
        return;
    size_t n = strlen(j->reason);
    if (n + 1 < sizeof(j->reason))
        snprintf(j->reason + n, sizeof(j->reason) - n,
                 "; an affinity group must lie within one %s cell (withinOneCell) and no such "
                 "cell has room for it",
                 s->types[s->within_miss - 1].name);
}

void sched_reasons_wait(sched_t *s, job_t *j)
{
    if (s->opts.quiet_waits)
        return;
    int total, fr, max_node;
    if (j->total_gpus == 0) {
        snprintf(j->reason, sizeof(j->reason), "no node has %d free CPUs / %lld MB for a task",
                 j->tasks[0].cpus, (long long)j->tasks[0].mem);
        return;
    }
    const char *sk = sched_reasons_gpu_label(s, j);
    if (j->oppo || s->opts.policy == SCHED_POLICY_FIRST_FIT) {
        sched_reasons_cluster_gpus(s, j->sku, &total, &fr, &max_node);
        snprintf(j->reason, sizeof(j->reason),
                 "%s: %d of %d %s free in the cluster, job needs %d task%s x %d %s",
                 j->oppo ? "opportunistic" : "first-fit", fr, total, sk, j->n_tasks,
                 j->n_tasks == 1 ? "" : "s", j->max_task_gpus, sk);
        append_within(s, j);
        return;
    }
    const vc_t *vc = &s->vcs[j->vc];
    int q, dying;
    pass_inputs(s, j->vc, j->sku, &q, &dying);
    int fg = q - vc->used_gpus - dying;
    int n = snprintf(j->reason, sizeof(j->reason),
                     "VC %s: %d of %d guaranteed %s free, job needs %d task%s x %d %s", vc->name,
                     fg < 0 ? 0 : fg, q, sk, j->n_tasks, j->n_tasks == 1 ? "" : "s",
                     j->max_task_gpus, sk);
    if (dying && n > 0 && (size_t)n < sizeof(j->reason))
        n += snprintf(j->reason + n, sizeof(j->reason) - (size_t)n,
                      "; %d held by preempted jobs still stopping", dying);
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
    append_within(s, j);
}

/* ---- anti-starvation reservation ------------------------------------------ */

void sched_reasons_maybe_reserve(sched_t *s, int slot, int64_t now)
{
    job_t *j = &s->jobs[slot];
    vc_t *vc = &s->vcs[j->vc];
    if (s->opts.starvation_ms < 0 || now - j->submit_ms < s->opts.starvation_ms)
        return;
    if (vc->reserver != SCHED_NONE && vc->reserver != slot)
        return;
    sched_jobs_clear_reservation(s, slot);
    attempt_t *at = &s->at;
    at->job = slot, at->mode = MODE_RESERVE, at->n_ranges = 0;
    if (sched_policy_domain_vc(s, at, j) != PAI_OK || sched_attempt_place(s, at) == 0)
        return;
    int n = 0;
    for (int i = 0; i < j->n_tasks; i++)
        if (!j->tasks[i].bound && j->tasks[i].node != SCHED_NONE)
            n += j->tasks[i].gpus;
    int *r = xrealloc(j->resv, sizeof(int) * (size_t)(n ? n : 1));
    if (!r) {
        sched_policy_reset_tentative(j);
        return;
    }
    j->resv = r;
    for (int i = 0; i < j->n_tasks; i++) {
        sched_task_t *t = &j->tasks[i];
        if (t->bound || t->node == SCHED_NONE)
            continue;
        for (int k = 0; k < t->gpus; k++) {
            int g = j->gpu[t->gpu0 + k];
            s->nodes[t->node].res[g] = slot;
            j->resv[j->n_resv++] = t->node * SCHED_MAX_GPUS_PER_NODE + g;
        }
    }
    sched_policy_reset_tentative(j);
    vc->reserver = slot;
}
