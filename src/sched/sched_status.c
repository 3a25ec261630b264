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

/* The rows' layout and their figures that change only with the cluster's
 * shape or health (VCs, virtual cells, cell types, nodes): kept between
 * calls while `key` holds, rebuilt when it moves. */
struct vc_shape {
    uint64_t key[7];
    int w; /* n_skus + 1 when built */
    int n_rows;
    sched_vc_status_t *rows; /* guaranteed, total and bad figures; the rest zero */
    int *row_of;             /* [v * w + sku + 1] -> row (-1: none); [v * w]: the VC's first */
    int *key_of;             /* row -> v * w + sku + 1 */
};

static void shape_key(const sched_t *s, uint64_t key[7])
{
    key[0] = s->topo_ver, key[1] = s->health_ver, key[2] = (uint64_t)s->n_vcs;
    key[3] = (uint64_t)s->n_skus, key[4] = (uint64_t)s->n_nodes, key[5] = (uint64_t)s->n_cells;
    key[6] = (uint64_t)s->n_types;
}

static void shape_free(struct vc_shape *sh)
{
    if (sh)
        free(sh->rows), free(sh->row_of), free(sh->key_of), free(sh);
}

void sched_status_free(sched_t *s)
{
    shape_free(s->vc_shape);
    s->vc_shape = NULL;
}

/* GPUs per SKU (index SKU + 1) in the cluster ([0]: of every SKU) and on
 * unhealthy nodes ([0]: CPU-only nodes'), in one walk over the nodes. */
static void node_gpus(const sched_t *s, int *total, int *bad)
{
    for (int i = 0; i < s->n_nodes; i++) {
        const sched_mnode_t *n = &s->nodes[i];
        if (n->ngpu > 0) {
            total[0] += n->ngpu;
            if (n->sku != SCHED_NONE)
                total[n->sku + 1] += n->ngpu;
        }
        if (!n->healthy)
            bad[n->sku + 1] += n->ngpu;
    }
}

/* One row for VC v and SKU sk (-1: CPU) when the VC has cells of it (or
 * none at all, for sk -1): its guaranteed figures. */
static bool shape_row(const sched_t *s, int v, int sk, sched_vc_status_t *row)
{
    int q = 0, cpus = 0;
    int64_t mem = 0;
    for (int i = 0; i < s->vcs[v].n_vcells; i++) {
        const ctype_t *ct = &s->types[s->vcs[v].vcells[i].type];
        if (ct->sku == sk)
            q += ct->gpus, cpus += ct->cpus, mem += ct->memory_mb;
    }
    if (!(q > 0 || (sk == -1 && s->vcs[v].n_vcells == 0)))
        return false;
    *row = (sched_vc_status_t){.vc = s->vcs[v].name,
                               .sku = sched_reasons_sku_name(s, sk),
                               .guaranteed_gpus = q,
                               .guaranteed_cpus = cpus,
                               .guaranteed_memory_mb = mem};
    return true;
}

static struct vc_shape *shape_build(const sched_t *s)
{
    int w = s->n_skus + 1;
    struct vc_shape *sh = xcalloc(1, sizeof(*sh));
    shape_key(s, sh->key);
    sh->w = w;
    sh->rows = xcalloc((size_t)(s->n_vcs * w + 1), sizeof(*sh->rows));
    sh->row_of = xmalloc(sizeof(int) * (size_t)(s->n_vcs * w + 1));
    sh->key_of = xmalloc(sizeof(int) * (size_t)(s->n_vcs * w + 1));
    int *order = xmalloc(sizeof(int) * (size_t)(s->n_vcs + 1));
    int *total = xcalloc((size_t)w, sizeof(int)), *bad = xcalloc((size_t)w, sizeof(int));
    for (int i = 0; i < s->n_vcs * w; i++)
        sh->row_of[i] = -1;
    for (int v = 0; v < s->n_vcs; v++)
        order[v] = v;
    qsort_r(order, (size_t)s->n_vcs, sizeof(int), cmp_vc_name, (void *)s);
    node_gpus(s, total, bad);
    int n = 0;
    for (int k = 0; k < s->n_vcs; k++) {
        int v = order[k], first = n;
        for (int sk = -1; sk < s->n_skus; sk++) {
            if (!shape_row(s, v, sk, &sh->rows[n]))
                continue;
            sh->rows[n].total_gpus = total[sk + 1];
            sh->rows[n].bad_gpus = bad[sk + 1];
            sh->key_of[n] = v * w + sk + 1;
            sh->row_of[v * w + sk + 1] = n++;
        }
        if (n > first)
            sh->row_of[v * w] = first;
    }
    sh->n_rows = n;
    free(order), free(total), free(bad);
    return sh;
}

/* The layout for the model as it is: the kept one while its key holds. */
static const struct vc_shape *shape_get(sched_t *s)
{
    uint64_t key[7];
    shape_key(s, key);
    if (!s->vc_shape || memcmp(key, s->vc_shape->key, sizeof(key)) != 0) {
        shape_free(s->vc_shape);
        s->vc_shape = shape_build(s);
    }
    return s->vc_shape;
}

/* The row that VC v's use on SKU index k (SKU + 1) counts in: its own, or
 * the VC's first; -1 when the VC has no row. */
static int use_row(const struct vc_shape *sh, int v, int k)
{
    int r = sh->row_of[v * sh->w + k];
    return r >= 0 ? r : sh->row_of[v * sh->w];
}

static void add_use(sched_vc_status_t *row, const vc_use_t *u)
{
    row->used_gpus += u->used_gpus;
    row->oppo_gpus += u->oppo_gpus;
    row->used_cpus += u->cpus;
    row->used_memory_mb += u->memory_mb;
}

/* Use and job counts from what the scheduler keeps up to date. */
static void fill_kept(const sched_t *s, const struct vc_shape *sh, sched_vc_status_t *rows)
{
    for (int v = 0; v < s->n_vcs; v++) {
        const vc_t *vc = &s->vcs[v];
        int first = sh->row_of[v * sh->w];
        if (first < 0)
            continue;
        for (int k = 0; k < vc->n_use && k < sh->w; k++)
            add_use(&rows[use_row(sh, v, k)], &vc->use[k]);
        rows[first].waiting_jobs = vc->n_waiting;
        rows[first].running_jobs = vc->n_running;
    }
}

/* The same, counted again from every job's tasks. */
static void fill_recount(const sched_t *s, const struct vc_shape *sh, sched_vc_status_t *rows)
{
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        if (j->state == SCHED_JOB_FREE || j->vc == SCHED_NONE || sh->row_of[j->vc * sh->w] < 0)
            continue;
        for (int i = 0; i < j->n_tasks; i++) {
            const sched_task_t *t = &j->tasks[i];
            if (!t->bound)
                continue;
            vc_use_t u = {.cpus = t->cpus, .memory_mb = t->mem};
            *(j->oppo ? &u.oppo_gpus : &u.used_gpus) = t->gpus;
            add_use(&rows[use_row(sh, j->vc, s->nodes[t->node].sku + 1)], &u);
        }
        if (j->state == SCHED_JOB_WAITING)
            rows[sh->row_of[j->vc * sh->w]].waiting_jobs++;
        else
            rows[sh->row_of[j->vc * sh->w]].running_jobs++;
    }
}

/* sched_vc_status(), from the kept layout and counts (recount false: as
 * much work as there are rows, plus the doomed cells' count while a node
 * is unhealthy) or from the whole model (a fresh layout, every job). */
static size_t vc_status(sched_t *s, sched_vc_status_t *out, size_t cap, bool recount)
{
    struct vc_shape *fresh = recount ? shape_build(s) : NULL;
    const struct vc_shape *sh = fresh ? fresh : shape_get(s);
    sched_vc_status_t *rows = xmalloc(sizeof(*rows) * (size_t)(sh->n_rows + 1));
    memcpy(rows, sh->rows, sizeof(*rows) * (size_t)sh->n_rows);
    if (recount || s->n_bad_nodes > 0) {
        int *doomed = xcalloc((size_t)(s->n_vcs * sh->w + 1), sizeof(int));
        count_doomed(s, doomed); /* nothing when every node is healthy */
        for (int r = 0; r < sh->n_rows; r++)
            rows[r].doomed_cells = doomed[sh->key_of[r]];
        free(doomed);
    }
    if (recount)
        fill_recount(s, sh, rows);
    else
        fill_kept(s, sh, rows);
    size_t n = (size_t)sh->n_rows;
    memcpy(out, rows, sizeof(*rows) * (n < cap ? n : cap));
    free(rows);
    shape_free(fresh);
    return n;
}

size_t sched_vc_status(sched_t *s, sched_vc_status_t *rows, size_t cap)
{
    return vc_status(s, rows, cap, false);
}

size_t sched_vc_status_recount(sched_t *s, sched_vc_status_t *rows, size_t cap)
{
    return vc_status(s, rows, cap, true);
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
    o->pass_count = s->pass_count;
    o->pass_sum_s = s->pass_sum;
    o->pass_max_s = s->pass_max;
    o->tail_passed_over = s->tail_passed_over;
    memcpy(o->pass_le, s->pass_le, sizeof(o->pass_le));
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
