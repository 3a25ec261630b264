/*
 * sched_status.c - read-only status: per-VC usage and guarantees (with
 * doomed cells), per-node rows, the cluster summary and decision kind names.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "sched/sched_place.h"

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
    int *sup = xcalloc((size_t)nt * (size_t)nt + 1, sizeof(int));
    int *first = xmalloc(sizeof(int) * (size_t)nt + 1);
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
 * order where a chain mixes levels), each VC against the free cells as they
 * are, into doomed[v * (n_skus + 1) + sku + 1]. */
static void count_doomed(sched_t *s, int *doomed)
{
    int w = s->n_skus + 1;
    bool any_bad = false;
    for (int i = 0; i < s->n_nodes && !any_bad; i++)
        any_bad = !s->nodes[i].healthy;
    if (!any_bad)
        return; /* the start-up check guarantees every cell binds on a healthy cluster */
    int *tmp = xmalloc(sizeof(int) * (size_t)(s->n_cells + 1));
    for (int v = 0; v < s->n_vcs; v++) {
        /* each VC against the free cells as they are (not after the VCs
         * before it in this loop took theirs): its own doomed cells */
        int *sup = doomed_supply(s);
        int nt = 0;
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
            int c = sched_model_pick_free_cell(s, vcl->type, vcl->chain, SCHED_PICK_HEALTHY);
            if (c == SCHED_NONE || !tmp) {
                doomed[v * w + sk + 1]++;
                continue;
            }
            sched_model_bind(s, v, i, c);
            tmp[nt++] = c;
        }
        for (int i = 0; i < nt; i++)
            sched_model_unbind(s, tmp[i]);
        free(sup);
    }
    free(tmp);
}

static void fill_usage(const sched_t *s, sched_vc_status_t *rows, const int *rowof, int w)
{
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        if (j->state == SCHED_JOB_FREE || j->vc == SCHED_NONE)
            continue;
        for (int i = 0; i < j->n_tasks; i++) {
            const sched_task_t *t = &j->tasks[i];
            if (!t->bound)
                continue;
            const sched_mnode_t *n = &s->nodes[t->node];
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
    int *order = xmalloc(sizeof(int) * (size_t)(s->n_vcs + 1));
    int *doomed = xcalloc((size_t)(s->n_vcs * w + 1), sizeof(int));
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
            sched_reasons_cluster_gpus(s, sk, &total, &fr, &mx);
            rows[n] = (sched_vc_status_t){.vc = s->vcs[v].name,
                                          .sku = sched_reasons_sku_name(s, sk),
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
    sched_vc_status_t *all = xcalloc((size_t)max_rows, sizeof(*all));
    int *rowof = xmalloc(sizeof(int) * (size_t)(s->n_vcs * w + 1));
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
        if (j->state == SCHED_JOB_FREE || j->vc == SCHED_NONE || rowof[j->vc * w] < 0)
            continue;
        if (j->state == SCHED_JOB_WAITING)
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
    size_t k = 0;
    for (int i = 0; i < s->n_nodes; i++) {
        const sched_mnode_t *n = &s->nodes[i];
        if (n->is_twin)
            continue; /* counted with the first cell of its machine */
        if (k < cap)
            rows[k] = (sched_node_status_t){.name = n->name,
                                            .address = n->address,
                                            .sku = sched_reasons_sku_name(s, n->sku),
                                            .healthy = n->healthy,
                                            .vc = ""};
        for (int x = i; k < cap && x != SCHED_NONE; x = s->nodes[x].twin) {
            const sched_mnode_t *m = &s->nodes[x];
            sched_node_status_t *r = &rows[k];
            int b = sched_model_bound_ancestor(s, m->cell);
            for (int c = m->sub_lo; b == SCHED_NONE && c < m->sub_hi; c++)
                if (s->cells[c].bound_vc != SCHED_NONE)
                    b = c; /* part of the node (a socket) bound: its VC */
            r->gpus += m->ngpu;
            r->used_gpus += m->used;
            r->free_gpus += m->healthy ? m->ngpu - m->used : 0;
            r->cpus += m->cpus;
            r->used_cpus += m->cpu_used;
            r->memory_mb += m->mem;
            r->used_memory_mb += m->mem_used;
            if (b != SCHED_NONE && !r->vc[0])
                r->vc = s->vcs[s->cells[b].bound_vc].name;
        }
        k++;
    }
    return k;
}

void sched_summary(const sched_t *s, sched_summary_t *o)
{
    *o = (sched_summary_t){.nodes = 0};
    for (int i = 0; i < s->n_nodes; i++) {
        const sched_mnode_t *n = &s->nodes[i];
        o->nodes += !n->is_twin; /* machines */
        o->healthy_nodes += n->healthy && !n->is_twin;
        o->gpus += n->ngpu;
        o->used_gpus += n->used;
        o->bad_gpus += n->healthy ? 0 : n->ngpu;
    }
    for (int i = 0; i < s->n_jobs; i++) {
        sched_job_state_t st = s->jobs[i].state;
        o->waiting_jobs += st == SCHED_JOB_WAITING;
        o->running_jobs += st == SCHED_JOB_RUNNING || st == SCHED_JOB_DYING;
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
    static const char *const names[] = {
        [SCHED_BIND] = "bind",
        [SCHED_PREEMPT] = "preempt",
        [SCHED_WAIT] = "wait",
        [SCHED_REFUSE] = "refuse",
    };
    return (unsigned)k < ARRAY_LEN(names) ? names[k] : "?";
}
