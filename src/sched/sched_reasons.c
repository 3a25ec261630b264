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

/* True (reason set) when the job can never fit. */
bool sched_reasons_never_fits(sched_t *s, job_t *j)
{
    if (j->refuse)
        return true;
    if (s->derived && s->n_nodes == 0)
        return false;
    int total, max_node, max_cpus;
    cluster_caps(s, j->sku, &total, &max_node, &max_cpus);
    const char *sk = sched_reasons_gpu_label(s, j);
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
    int q = vc_quota(s, j->vc, j->sku);
    int dying = sched_reasons_dying_gpus(s, j->vc, j->sku);
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
