/*
 * sched_restore.c - restart: re-adding running jobs with their allocations
 * (sched_restore()), and the bindings of virtual cells that they need.
 *
 * A task's recorded cell (sched_alloc_t.cell, what its BIND named) is bound
 * again to the same VC exactly; without one (or when the configuration
 * changed so that it no longer holds) the binding is rebuilt from where the
 * job runs: the smallest safe cell first, larger cells absorbing a VC's own
 * smaller bindings, then a bounded search over all VCs, GPU by GPU
 * (docs/scheduler.md, "Restart").  Either way every binding keeps all VCs'
 * cells bindable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sched/sched_int.h"

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
    while (a->n_gpus > 0 && s->nodes[ni].twin != SCHED_NONE &&
           sched_gpu_position(&s->nodes[ni], a->gpus[0]) == SCHED_NONE)
        ni = s->nodes[ni].twin; /* the machine's cell that has these GPUs */
    sched_task_t *t = &j->tasks[ti];
    const sched_mnode_t *n = &s->nodes[ni];
    if (a->n_gpus != t->gpus)
        return PAI_E_INVALID;
    for (int k = 0; k < a->n_gpus; k++)
        if (sched_gpu_position(n, a->gpus[k]) == SCHED_NONE)
            return PAI_E_NOT_FOUND;
    for (int k = 0; k < a->n_gpus; k++) {
        int g = sched_gpu_position(n, a->gpus[k]);
        if (n->owner[g] != SCHED_NONE)
            return PAI_E_INVALID;
        for (int m = 0; m < k; m++)
            if (a->gpus[m] == a->gpus[k])
                return PAI_E_INVALID;
        j->gpu[t->gpu0 + k] = g;
    }
    t->node = ni;
    return PAI_OK;
}

/* The cell of type w holding node n (below node level: the node's own cell). */
static int within_cell(const sched_t *s, int n, int w)
{
    if (sched_type_below_node(s, w))
        return sched_node_block(s, n, w) ? s->nodes[n].cell : SCHED_NONE;
    for (int c = s->nodes[n].cell; c != SCHED_NONE; c = s->cells[c].parent)
        if (s->cells[c].type == w)
            return c;
    return SCHED_NONE;
}

/* May CPU-only task t of j lie on node x?  Where its affinity group is
 * "within one cell", in the cell of the group's GPU tasks. */
static bool twin_ok(const sched_t *s, const job_t *j, const sched_task_t *t, int x)
{
    int w = SCHED_NONE; /* the group's type: the deepest its roles name, as placement takes */
    for (int k = 0; k < j->n_tasks; k++) {
        int v = j->tasks[k].within;
        if (j->tasks[k].group == t->group && v != SCHED_NONE &&
            (w == SCHED_NONE || s->types[v].level < s->types[w].level))
            w = v;
    }
    if (w == SCHED_NONE)
        return true;
    if (within_cell(s, x, w) == SCHED_NONE)
        return false; /* a type is one chain's: one cell of the machine has it */
    for (int m = 0; m < j->n_tasks; m++) {
        const sched_task_t *g = &j->tasks[m];
        if (g->group == t->group && g->gpus > 0 && g->node != SCHED_NONE &&
            within_cell(s, g->node, w) != within_cell(s, x, w))
            return false;
    }
    return true;
}

/* CPU-only tasks on a machine hosting cells of several chains (restored on
 * its first cell): each on the cell with the most CPUs free that keeps its
 * group "within one cell". */
static void restore_cpu_twins(sched_t *s, job_t *j)
{
    bool *moved = NULL;
    for (int i = 0; i < j->n_tasks; i++) {
        sched_task_t *t = &j->tasks[i];
        if (t->node == SCHED_NONE || t->gpus > 0 || s->nodes[t->node].twin == SCHED_NONE)
            continue;
        int best = twin_ok(s, j, t, t->node) ? t->node : SCHED_NONE;
        for (int x = s->nodes[t->node].twin; x != SCHED_NONE; x = s->nodes[x].twin)
            if (twin_ok(s, j, t, x) &&
                (best == SCHED_NONE || s->nodes[x].cpus - s->nodes[x].cpu_used >
                                           s->nodes[best].cpus - s->nodes[best].cpu_used))
                best = x;
        if (best != SCHED_NONE)
            t->node = best;
        if (!moved)
            moved = xcalloc((size_t)j->n_tasks, sizeof(bool));
        moved[i] = true;
        s->nodes[t->node].cpu_used += t->cpus; /* counted for the next; undone below */
    }
    for (int i = 0; moved && i < j->n_tasks; i++)
        if (moved[i])
            s->nodes[j->tasks[i].node].cpu_used -= j->tasks[i].cpus;
    free(moved);
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

/* Bind cell from or a free ancestor (the smallest first) to an unbound
 * virtual cell of VC v of its type, where that keeps every VC's cells
 * bindable (sharing safety: a restore after a configuration change must not
 * take what another VC's guarantee needs); a cell with v's own bindings
 * inside absorbs them. */
static bool restore_bind_for(sched_t *s, int v, int from)
{
    for (int c = from; c != SCHED_NONE; c = s->cells[c].parent) {
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

/* The cell bound to VC v holding all of task t's GPUs, or SCHED_NONE. */
static int task_charged(const sched_t *s, const job_t *j, const sched_task_t *t, int v)
{
    int c = sched_jobs_charged_cell(s, t->node, j->gpu[t->gpu0], v);
    for (int k = 1; c != SCHED_NONE && k < t->gpus; k++)
        if (sched_jobs_charged_cell(s, t->node, j->gpu[t->gpu0 + k], v) != c)
            return SCHED_NONE;
    return c;
}

/* The guarantee of VC v for task t for a restore: a cell bound to v holds
 * it, or one is bound now, or v's other bindings make room for one. */
static bool restore_cell_for(sched_t *s, int v, const job_t *j, const sched_task_t *t)
{
    int from = sched_model_cell_around(s, t->node, &j->gpu[t->gpu0], t->gpus);
    if (task_charged(s, j, t, v) != SCHED_NONE || restore_bind_for(s, v, from))
        return true;
    for (int c = from; c != SCHED_NONE; c = s->cells[c].parent)
        if (restore_free_vcell(s, v, s->cells[c].type, s->cells[c].chain))
            return task_charged(s, j, t, v) != SCHED_NONE || restore_bind_for(s, v, from);
    return false;
}

/* The last resort works GPU by GPU: a VC's socket cell and another VC's
 * node-level or socket cell may share a machine.  GPU position g of node n
 * is entry n * SCHED_MAX_GPUS_PER_NODE + g of the per-GPU arrays. */
static size_t gpu_at(int n, int g)
{
    return (size_t)n * SCHED_MAX_GPUS_PER_NODE + (size_t)g;
}

/* GPU positions [*lo, *hi) of cell c on node x. */
static void cell_gpus(const sched_t *s, int c, int x, int *lo, int *hi)
{
    const cell_t *cl = &s->cells[c];
    *lo = cl->sub ? cl->gpu_lo : 0;
    *hi = cl->sub ? cl->gpu_hi : s->nodes[x].ngpu;
}

/* For each GPU, the VC whose guaranteed work uses it (job j's tasks, not
 * yet committed, included) into owner[] (SCHED_NONE: none); false when two
 * VCs' guaranteed work shares a GPU. */
static bool work_owners(const sched_t *s, const job_t *j, int *owner)
{
    for (size_t g = 0; g < gpu_at(s->n_nodes, 0); g++)
        owner[g] = SCHED_NONE;
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
            for (int k = 0; k < t->gpus; k++) {
                int *w = &owner[gpu_at(t->node, o->gpu[t->gpu0 + k])];
                if (*w != SCHED_NONE && *w != o->vc)
                    return false;
                *w = o->vc;
            }
        }
    }
    return true;
}

/* Up to cap free cells of type t in chain ch holding GPUs of VC v's work
 * not covered yet (cover[] counts) and no GPU of another VC's work, the
 * most such GPUs first, into out; returns how many. */
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
        for (int x = cl->node_lo; x < cl->node_hi && k >= 0; x++) {
            int lo, hi;
            cell_gpus(s, c, x, &lo, &hi);
            for (int g = lo; g < hi && k >= 0; g++) {
                int w = owner[gpu_at(x, g)];
                k = w != SCHED_NONE && w != v ? -1 : k + (w == v && !cover[gpu_at(x, g)]);
            }
        }
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
            t->cell = task_charged(s, o, t, v);
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
    const int *owner; /* per GPU (gpu_at) */
    int *cover;       /* per GPU: cells covering it */
} cover_t;

static void mark(sched_t *s, cover_t *cv, int c, int d)
{
    for (int x = s->cells[c].node_lo; x < s->cells[c].node_hi; x++) {
        int lo, hi;
        cell_gpus(s, c, x, &lo, &hi);
        for (int g = lo; g < hi; g++)
            cv->cover[gpu_at(x, g)] += d;
    }
}

/* Bind the virtual cells from k on around the work, backtracking over the
 * best few cells of each (and leaving it unbound) within a budget; true when
 * all work is covered. */
static bool cover_from(sched_t *s, cover_t *cv, int k)
{
    if (k == cv->n) {
        for (size_t g = 0; g < gpu_at(s->n_nodes, 0); g++)
            if (cv->owner[g] != SCHED_NONE && !cv->cover[g])
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
                  .cover = xcalloc(gpu_at(s->n_nodes, 1), sizeof(int))};
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
    int *owner = xmalloc(sizeof(int) * gpu_at(s->n_nodes, 1));
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

/* The task on node was recorded in cell name (sched_task_bind_t.cell): bind
 * one of VC v's unbound virtual cells of that type to it again, absorbing
 * v's bindings inside it (a restore without records may have made them).
 * True when the task's guarantee is there now; false (nothing changed) when
 * the record does not fit: an unknown cell, not around node, another VC's,
 * no such virtual cell left, or a binding that would break sharing safety
 * (a changed configuration). */
static bool restore_recorded(sched_t *s, int v, const job_t *j, const sched_task_t *t,
                             const char *name)
{
    int c = name && name[0] ? sched_cell_find(s, name) : SCHED_NONE;
    int node = t->node;
    if (c == SCHED_NONE || node < s->cells[c].node_lo || node >= s->cells[c].node_hi)
        return false;
    for (int k = 0; k < t->gpus; k++)
        if (!(sched_cell_mask(&s->cells[c]) >> j->gpu[t->gpu0 + k] & 1))
            return false; /* a cell below node level that does not hold the task's GPUs */
    const cell_t *cl = &s->cells[c];
    if (cl->bound_vc != SCHED_NONE)
        return cl->bound_vc == v;
    if (sched_model_bound_ancestor(s, c) != SCHED_NONE ||
        (cl->bound_below && !only_vc_below(s, c, v)))
        return false;
    const vc_t *vc = &s->vcs[v];
    for (int i = 0; i < vc->n_vcells; i++) {
        const vcell_t *vcl = &vc->vcells[i];
        if (vcl->cell != SCHED_NONE || vcl->pinned || vcl->type != cl->type ||
            vcl->chain != cl->chain)
            continue;
        bool ok =
            cl->bound_below ? restore_absorb(s, v, i, c) : sched_model_bind_safe(s, v, i, c, false);
        if (ok)
            sched_jobs_gc_note(s, v, c);
        return ok;
    }
    return false;
}

static bool restore_guarantee(sched_t *s, job_t *j, const char *const *recorded)
{
    bool retried = false;
    for (int i = 0; i < j->n_tasks; i++) /* the recorded cells first, all of them */
        if (j->tasks[i].node != SCHED_NONE && j->tasks[i].gpus > 0 && recorded[i])
            restore_recorded(s, j->vc, j, &j->tasks[i], recorded[i]);
    for (int i = 0; i < j->n_tasks; i++) {
        sched_task_t *t = &j->tasks[i];
        if (t->node == SCHED_NONE || t->gpus == 0)
            continue;
        if (t->sku != SCHED_NONE && s->nodes[t->node].sku != t->sku)
            return false;
        if (restore_cell_for(s, j->vc, j, t))
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
    pai_err_t rc = sched_jobs_check_request(r, err, sizeof(err));
    if (rc != PAI_OK)
        return rc;
    if (sched_strmap_get(&s->job_map, r->job_id) != SCHED_NONE)
        return PAI_E_CONFLICT_JOB;
    int slot;
    if ((rc = sched_jobs_new_job(s, r, &slot)) != PAI_OK)
        return rc;
    job_t *j = &s->jobs[slot];
    const char **recorded = xcalloc((size_t)j->n_tasks + 1, sizeof(*recorded));
    for (size_t i = 0; i < n_allocs && rc == PAI_OK; i++) {
        if ((rc = restore_alloc(s, j, &allocs[i])) == PAI_E_NOT_FOUND)
            rc = PAI_OK; /* gone with the old configuration; placed again */
        else if (rc == PAI_OK)
            recorded[find_task(j, allocs[i].role, allocs[i].index)] = allocs[i].cell;
    }
    if (rc != PAI_OK) {
        free(recorded);
        sched_jobs_free(s, slot);
        return rc;
    }
    restore_cpu_twins(s, j);
    bool down = false;
    if (r->opportunistic && j->vc != SCHED_NONE && !j->refuse) {
        j->oppo = true; /* downgraded before the restart: stays so */
    } else if (j->vc == SCHED_NONE || j->refuse) {
        j->vc = j->vc == SCHED_NONE ? sched_model_find_vc(s, "default") : j->vc;
        down = !j->oppo;
        j->oppo = true;
    } else if (sched_policy_uses_vc_cells(s, j) && !restore_guarantee(s, j, recorded)) {
        down = true;
        j->oppo = true;
    }
    free(recorded);
    j->refuse = false;
    if (j->vc == SCHED_NONE && s->n_vcs > 0)
        j->vc = 0; /* keep the job somewhere: it runs opportunistic */
    sched_jobs_commit(s, slot);
    sched_jobs_vc_gc(s, j->vc);
    sched_jobs_set_state(s, j, SCHED_JOB_RUNNING);
    sched_jobs_track_running(s, j, +1);
    for (int i = 0; i < j->n_tasks; i++)
        j->tasks[i].emitted = j->tasks[i].bound;
    if (!j->oppo && j->lazy && !j->lazy_counted)
        s->vcs[j->vc].lazy_running++, j->lazy_counted = true;
    if (!sched_job_done_queueing(j))
        sched_jobs_queue_push(s, slot);
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

bool sched_task_cell(const sched_t *s, const char *job_id, const char *role, int index, char *buf,
                     size_t len)
{
    if (len)
        buf[0] = '\0';
    int slot = sched_strmap_get(&s->job_map, job_id);
    if (slot == SCHED_NONE || !role)
        return false;
    const job_t *j = &s->jobs[slot];
    int ti = find_task(j, role, index);
    if (ti == SCHED_NONE || !j->tasks[ti].bound || j->tasks[ti].cell == SCHED_NONE || j->oppo)
        return false;
    sched_cell_name(s, j->tasks[ti].cell, buf, len);
    return true;
}
