/*
 * sched_check.c - the scheduler's invariants, checked from the model alone.
 *
 * sched_check() reads the model and lists what does not hold:
 *   1. GPUs: each GPU has at most one owner, the owner is a bound task of a
 *      running (or dying) job that lists that GPU, and the per-node counts
 *      (used, free mirror, CPUs, memory) match the tasks;
 *   2. cells: a physical cell is bound to at most one virtual cell and both
 *      sides agree; no bound cell has a bound ancestor or descendant; pinned
 *      virtual cells stay bound; bound_below, bad_below, vc_used and the VCs'
 *      used GPUs match a recount, as do the VCs' use per SKU and job counts
 *      that sched_vc_status() reads;
 *   3. guarantees: a guaranteed job's GPUs lie in cells bound to its VC;
 *   4. sharing safety: all VCs' unbound virtual cells can be bound at once on
 *      free cells (HiveD's safe relaxed buddy allocation: whatever the others
 *      hold, each VC can still get its cells with their topology);
 *   5. gangs: the GPU tasks of a gang's affinity group (of one SKU and
 *      pinned cell) lie in one chain (not for the node-derived model, whose
 *      chains are node shapes); a group "within one cell" of a type
 *      (sched_role_t.within_cell) lies within one cell of that type;
 *   6. right after a pass: a waiting guaranteed task that one node of its
 *      VC's cells could hold, counting GPUs of opportunistic jobs as usable,
 *      did not just wait: it bound or preempted (opportunistic work never
 *      holds a cell a guaranteed job waits for beyond one preemption).  Not
 *      for a VC whose cells changed during the pass (perhaps after the job's
 *      turn) nor after a pass that downgraded lazy jobs.
 * The hook behind opts.check (sched_check_hook) runs it after every decision
 * and every change of the model, and adds one check across a decision: the
 * deficit on healthy hardware (virtual cells that cannot be bound to fully
 * healthy free cells, plus bound cells with an unhealthy node) must not grow:
 * a binding never takes healthy hardware another VC's guarantee needs when
 * other hardware would do.  Costs O(nodes x GPUs + cells + tasks) per run.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sched/sched_int.h"

#define MAX_DEPTH 20

typedef struct {
    sched_violation_t *out;
    size_t cap, n;
} vlist_t;

static void add(vlist_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(vlist_t *l, const char *fmt, ...)
{
    if (l->n < l->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->out[l->n].what, sizeof(l->out[l->n].what), fmt, ap);
        va_end(ap);
    }
    l->n++;
}

static const char *job_name(const sched_t *s, int slot)
{
    return slot >= 0 && slot < s->n_jobs && s->jobs[slot].id ? s->jobs[slot].id : "?";
}

/* ---- 1. GPUs ------------------------------------------------------------ */

static void check_task_gpus(const sched_t *s, vlist_t *l, int slot, const sched_task_t *t,
                            int *count, const int *base)
{
    const job_t *j = &s->jobs[slot];
    if (t->node < 0 || t->node >= s->n_nodes) {
        add(l, "job %s: a bound task has no node", j->id);
        return;
    }
    const sched_mnode_t *n = &s->nodes[t->node];
    for (int k = 0; k < t->gpus; k++) {
        int g = j->gpu[t->gpu0 + k];
        if (g < 0 || g >= n->ngpu) {
            add(l, "job %s: GPU %d out of range on node %s", j->id, g, n->name);
            continue;
        }
        if (++count[base[t->node] + g] == 2)
            add(l, "GPU %d of node %s bound twice (job %s)", g, n->name, j->id);
        if (n->owner[g] != slot)
            add(l, "job %s holds GPU %d of node %s, whose owner is %s", j->id, g, n->name,
                job_name(s, n->owner[g]));
    }
}

static void check_gpus(const sched_t *s, vlist_t *l)
{
    int *base = xmalloc(sizeof(int) * ((size_t)s->n_nodes + 1));
    int *cpu = xcalloc((size_t)s->n_nodes + 1, sizeof(int));
    int64_t *mem = xcalloc((size_t)s->n_nodes + 1, sizeof(int64_t));
    int total = 0;
    for (int i = 0; i < s->n_nodes; i++)
        base[i] = total, total += s->nodes[i].ngpu;
    int *count = xcalloc((size_t)total + 1, sizeof(int));
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        for (int i = 0; j->state != SCHED_JOB_FREE && i < j->n_tasks; i++) {
            const sched_task_t *t = &j->tasks[i];
            if (!t->bound)
                continue;
            check_task_gpus(s, l, slot, t, count, base);
            if (t->node >= 0 && t->node < s->n_nodes)
                cpu[t->node] += t->cpus, mem[t->node] += t->mem;
        }
    }
    for (int i = 0; i < s->n_nodes; i++) {
        const sched_mnode_t *n = &s->nodes[i];
        int owned = 0;
        for (int g = 0; g < n->ngpu; g++) {
            owned += n->owner[g] != SCHED_NONE;
            if (n->owner[g] != SCHED_NONE && count[base[i] + g] == 0)
                add(l, "GPU %d of node %s is owned by %s, which does not hold it", g, n->name,
                    job_name(s, n->owner[g]));
        }
        if (owned != n->used || s->nfree[i] != n->ngpu - n->used)
            add(l, "node %s: %d GPUs owned, used says %d, free says %d", n->name, owned, n->used,
                s->nfree[i]);
        if (cpu[i] != n->cpu_used || mem[i] != n->mem_used)
            add(l, "node %s: tasks use %d CPUs / %lld MB, the node says %d / %lld", n->name, cpu[i],
                (long long)mem[i], n->cpu_used, (long long)n->mem_used);
    }
    free(base), free(cpu), free(mem), free(count);
}

/* ---- 2, 3. cells and guarantees --------------------------------------------- */

static void check_cell_links(const sched_t *s, vlist_t *l)
{
    for (int c = 0; c < s->n_cells; c++) {
        const cell_t *cl = &s->cells[c];
        if (cl->bound_vc == SCHED_NONE)
            continue;
        const vc_t *vc = &s->vcs[cl->bound_vc];
        const vcell_t *v = cl->bound_vcell >= 0 && cl->bound_vcell < vc->n_vcells
                               ? &vc->vcells[cl->bound_vcell]
                               : NULL;
        if (!v || v->cell != c)
            add(l, "cell %d (%s) bound to VC %s, whose virtual cell is elsewhere", c,
                s->types[cl->type].name, vc->name);
        else if (v->type != cl->type || v->chain != cl->chain)
            add(l, "cell %d (%s) bound to a virtual cell of type %s", c, s->types[cl->type].name,
                s->types[v->type].name);
        for (int p = cl->parent; p != SCHED_NONE; p = s->cells[p].parent)
            if (s->cells[p].bound_vc != SCHED_NONE)
                add(l, "cell %d (%s, VC %s) lies inside cell %d bound to VC %s: bound twice", c,
                    s->types[cl->type].name, vc->name, p, s->vcs[s->cells[p].bound_vc].name);
    }
    for (int v = 0; v < s->n_vcs; v++)
        for (int i = 0; i < s->vcs[v].n_vcells; i++) {
            const vcell_t *vcl = &s->vcs[v].vcells[i];
            if (vcl->pinned && vcl->cell == SCHED_NONE)
                add(l, "VC %s: a pinned cell is unbound", s->vcs[v].name);
            if (vcl->cell != SCHED_NONE &&
                (s->cells[vcl->cell].bound_vc != v || s->cells[vcl->cell].bound_vcell != i))
                add(l, "VC %s: virtual cell %d names cell %d, bound to another", s->vcs[v].name, i,
                    vcl->cell);
        }
}

static void check_cell_counts(const sched_t *s, vlist_t *l)
{
    int *below = xcalloc((size_t)s->n_cells + 1, sizeof(int));
    int *bad = xcalloc((size_t)s->n_cells + 1, sizeof(int));
    for (int i = 0; i < s->n_nodes; i++)
        if (!s->nodes[i].healthy && s->nodes[i].cell != SCHED_NONE)
            bad[s->nodes[i].cell]++;
    for (int c = s->n_cells - 1; c >= 0; c--) { /* DFS order: children after parents */
        const cell_t *cl = &s->cells[c];
        below[c] += cl->bound_vc != SCHED_NONE;
        if (cl->sub) /* below node level: its node's health */
            bad[c] = !s->nodes[cl->node_lo].healthy;
        if (cl->parent != SCHED_NONE)
            below[cl->parent] += below[c], bad[cl->parent] += cl->sub ? 0 : bad[c];
        if (below[c] != cl->bound_below || bad[c] != cl->bad_below)
            add(l, "cell %d (%s): %d bound / %d unhealthy below, the cell says %d / %d", c,
                s->types[cl->type].name, below[c], bad[c], cl->bound_below, cl->bad_below);
    }
    free(below), free(bad);
}

/* The VCs' kept use per SKU and job counts (sched_vc_status) against a
 * recount of every job. */
static void check_vc_counts(const sched_t *s, vlist_t *l)
{
    int w = s->n_skus + 1;
    vc_use_t *use = xcalloc((size_t)(s->n_vcs * w + 1), sizeof(*use));
    int *jobs = xcalloc((size_t)(s->n_vcs * 2 + 1), sizeof(int)); /* waiting, running */
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        if (j->state == SCHED_JOB_FREE || j->vc == SCHED_NONE)
            continue;
        jobs[j->vc * 2 + (j->state != SCHED_JOB_WAITING)]++;
        for (int i = 0; i < j->n_tasks; i++) {
            const sched_task_t *t = &j->tasks[i];
            if (!t->bound)
                continue;
            vc_use_t *u = &use[j->vc * w + s->nodes[t->node].sku + 1];
            *(j->oppo ? &u->oppo_gpus : &u->used_gpus) += t->gpus;
            u->cpus += t->cpus, u->memory_mb += t->mem;
        }
    }
    for (int v = 0; v < s->n_vcs; v++) {
        const vc_t *vc = &s->vcs[v];
        if (vc->n_waiting != jobs[v * 2] || vc->n_running != jobs[v * 2 + 1])
            add(l, "VC %s: %d waiting and %d running jobs, it counts %d and %d", vc->name,
                jobs[v * 2], jobs[v * 2 + 1], vc->n_waiting, vc->n_running);
        for (int k = 0; k < w || k < vc->n_use; k++) {
            vc_use_t z = {0}, kept = k < vc->n_use ? vc->use[k] : z,
                     got = k < w ? use[v * w + k] : z;
            if (memcmp(&kept, &got, sizeof(z)) != 0)
                add(l,
                    "VC %s SKU %d: %d/%d GPUs, %lld CPUs, %lld MB in use, it counts "
                    "%d/%d, %lld, %lld",
                    vc->name, k - 1, got.used_gpus, got.oppo_gpus, (long long)got.cpus,
                    (long long)got.memory_mb, kept.used_gpus, kept.oppo_gpus, (long long)kept.cpus,
                    (long long)kept.memory_mb);
        }
    }
    free(use), free(jobs);
}

static void check_guarantees(const sched_t *s, vlist_t *l)
{
    int *used = xcalloc((size_t)s->n_cells + 1, sizeof(int));
    int *vcused = xcalloc((size_t)s->n_vcs + 1, sizeof(int));
    bool pai = s->opts.policy == SCHED_POLICY_PAI;
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        if (j->state == SCHED_JOB_FREE || j->oppo || j->vc == SCHED_NONE)
            continue;
        for (int i = 0; i < j->n_tasks; i++) {
            const sched_task_t *t = &j->tasks[i];
            if (!t->bound || t->gpus == 0 || t->node < 0 || t->node >= s->n_nodes)
                continue;
            vcused[j->vc] += t->gpus;
            if (!pai)
                continue;
            /* per GPU where the node has cells below node level, else once */
            bool sub = s->nodes[t->node].sub_hi > s->nodes[t->node].sub_lo;
            for (int k = 0; k < (sub ? t->gpus : 1); k++) {
                int c = sched_model_bound_cell_at(s, t->node, j->gpu[t->gpu0 + k]);
                if (c == SCHED_NONE || s->cells[c].bound_vc != j->vc) {
                    add(l, "guaranteed job %s (VC %s) runs on node %s outside its VC's cells",
                        j->id, s->vcs[j->vc].name, s->nodes[t->node].name);
                    break;
                }
                if (t->cell != c) {
                    add(l, "job %s: a task is charged to cell %d, it runs in cell %d", j->id,
                        t->cell, c);
                    break;
                }
            }
            if (t->cell >= 0 && t->cell < s->n_cells)
                used[t->cell] += t->gpus;
        }
    }
    for (int c = 0; pai && c < s->n_cells; c++)
        if (used[c] != s->cells[c].vc_used && s->cells[c].bound_vc != SCHED_NONE)
            add(l, "cell %d (%s): guaranteed jobs use %d GPUs, the cell says %d", c,
                s->types[s->cells[c].type].name, used[c], s->cells[c].vc_used);
    for (int v = 0; v < s->n_vcs; v++)
        if (vcused[v] != s->vcs[v].used_gpus)
            add(l, "VC %s: guaranteed jobs use %d GPUs, the VC says %d", s->vcs[v].name, vcused[v],
                s->vcs[v].used_gpus);
    free(used), free(vcused);
}

/* ---- 4. sharing safety ------------------------------------------------------- */

typedef struct {
    int *free_cells, *need; /* [chain * MAX_DEPTH + depth] */
    uint8_t *whole, *inside;
} deficit_t;

static void deficit_free(deficit_t *d)
{
    free(d->free_cells), free(d->need), free(d->whole), free(d->inside);
}

/* Maximal free cells per chain and depth: free (nothing bound in, above or
 * below; with health: no unhealthy node) and the parent not free. */
static void count_free(const sched_t *s, deficit_t *d, bool health)
{
    for (int c = 0; c < s->n_cells; c++) {
        const cell_t *cl = &s->cells[c];
        int p = cl->parent;
        d->inside[c] = p != SCHED_NONE && (d->inside[p] || s->cells[p].bound_vc != SCHED_NONE);
        d->whole[c] = !d->inside[c] && cl->bound_below == 0 &&
                      (!health || (cl->bad_below == 0 && cl->node_hi > cl->node_lo));
        if (d->whole[c] && (p == SCHED_NONE || !d->whole[p]) && cl->depth < MAX_DEPTH)
            d->free_cells[cl->chain * MAX_DEPTH + cl->depth]++;
    }
}

/* Unbound virtual cells per chain and depth; returns the GPUs of bound cells
 * with an unhealthy node (health only). */
static int count_need(const sched_t *s, deficit_t *d, bool health)
{
    int bad = 0;
    for (int v = 0; v < s->n_vcs; v++)
        for (int i = 0; i < s->vcs[v].n_vcells; i++) {
            const vcell_t *vcl = &s->vcs[v].vcells[i];
            if (vcl->cell != SCHED_NONE) {
                if (health && s->cells[vcl->cell].bad_below > 0)
                    bad += s->types[vcl->type].gpus;
                continue;
            }
            int depth = s->types[vcl->chain].level - s->types[vcl->type].level;
            if (!vcl->pinned && depth >= 0 && depth < MAX_DEPTH)
                d->need[vcl->chain * MAX_DEPTH + depth]++;
        }
    return bad;
}

/* Top down per chain: the cells needed at a depth take free cells of that
 * depth, the rest split into their children for the depths below; returns
 * the GPUs of the cells left without one.  Taking a whole cell for a cell of
 * its size before splitting it for smaller ones binds the most GPUs, so the
 * count is exact for complete cells, also when hardware is short. */
static int chain_deficit(const sched_t *s, const deficit_t *d, int ch, char *why, size_t len)
{
    int short_by = 0;
    long carry = 0;
    int t = ch;
    for (int depth = 0; depth < MAX_DEPTH && t != SCHED_NONE; depth++, t = s->types[t].child) {
        long avail = d->free_cells[ch * MAX_DEPTH + depth] + carry;
        long need = d->need[ch * MAX_DEPTH + depth];
        if (avail < need) {
            if (why && len && !short_by)
                snprintf(why, len, "%ld %s cells (chain %s) needed, %ld free", need,
                         s->types[t].name, s->types[ch].name, avail);
            short_by += (int)(need - avail) * s->types[t].gpus;
            avail = need;
        }
        carry = (avail - need) * s->types[t].child_n;
        if (carry > 1000000000L)
            carry = 1000000000L;
    }
    return short_by;
}

int sched_check_deficit(const sched_t *s, bool health, char *why, size_t len)
{
    if (why && len)
        why[0] = 0;
    size_t k = (size_t)s->n_types * MAX_DEPTH + 1;
    deficit_t d = {.free_cells = xcalloc(k, sizeof(int)),
                   .need = xcalloc(k, sizeof(int)),
                   .whole = xcalloc((size_t)s->n_cells + 1, 1),
                   .inside = xcalloc((size_t)s->n_cells + 1, 1)};
    count_free(s, &d, health);
    int total = count_need(s, &d, health);
    for (int ch = 0; ch < s->n_types; ch++)
        total += chain_deficit(s, &d, ch, why && (!why[0]) ? why : NULL, len);
    deficit_free(&d);
    return total;
}

static void check_safety(const sched_t *s, vlist_t *l)
{
    char why[SCHED_REASON_MAX];
    int n = sched_check_deficit(s, false, why, sizeof(why));
    if (n > 0)
        add(l, "sharing safety: virtual cells of %d GPUs cannot be bound with the others: %s", n,
            why);
}

/* ---- 5. gangs within one chain -------------------------------------------------- */

static void check_gang(const sched_t *s, vlist_t *l, const job_t *j)
{
    for (int i = 0; i < j->n_tasks; i++) {
        const sched_task_t *a = &j->tasks[i];
        if (!a->bound || a->gpus == 0 || s->nodes[a->node].cell == SCHED_NONE)
            continue;
        for (int k = i + 1; k < j->n_tasks; k++) {
            const sched_task_t *b = &j->tasks[k];
            if (!b->bound || b->gpus == 0 || b->group != a->group || b->sku != a->sku ||
                b->pinned != a->pinned || s->nodes[b->node].cell == SCHED_NONE)
                continue;
            int ca = s->cells[s->nodes[a->node].cell].chain;
            int cb = s->cells[s->nodes[b->node].cell].chain;
            if (ca != cb) {
                add(l, "gang %s spans chains %s (node %s) and %s (node %s)", j->id,
                    s->types[ca].name, s->nodes[a->node].name, s->types[cb].name,
                    s->nodes[b->node].name);
                return;
            }
        }
    }
}

/* The ancestor cell of type `type` of node n, or SCHED_NONE. */
static int cell_of_type(const sched_t *s, int n, int type)
{
    for (int c = s->nodes[n].cell; c != SCHED_NONE; c = s->cells[c].parent)
        if (s->cells[c].type == type)
            return c;
    return SCHED_NONE;
}

/* Which cell of type within holds task t: a cell's index; below node level
 * the node and the aligned block of its GPUs (node * 64 + block + n_cells);
 * SCHED_NONE when none or when its GPUs span two blocks. */
static int within_key(const sched_t *s, const job_t *j, const sched_task_t *t, int within)
{
    if (!sched_type_below_node(s, within))
        return cell_of_type(s, t->node, within);
    int b = sched_node_block(s, t->node, within);
    if (!b)
        return SCHED_NONE;
    if (t->gpus == 0)
        return -2; /* CPU-only: holds no GPU of a block */
    int blk = t->gpus > 0 ? j->gpu[t->gpu0] / b : -1;
    for (int k = 1; k < t->gpus; k++)
        if (j->gpu[t->gpu0 + k] / b != blk)
            return SCHED_NONE;
    return s->n_cells + t->node * (SCHED_MAX_GPUS_PER_NODE + 1) + blk + 1;
}

/* 5b. "within one cell": the bound tasks of an affinity group that asked for
 * it lie within one cell of the type (the deepest its roles name). */
static void check_within(const sched_t *s, vlist_t *l, const job_t *j)
{
    bool any = false;
    for (int i = 0; i < j->n_tasks && !any; i++)
        any = j->tasks[i].within != SCHED_NONE;
    for (int i = 0; any && i < j->n_tasks; i++) {
        const sched_task_t *a = &j->tasks[i];
        bool first = true; /* the group's first task: check the group once */
        int within = SCHED_NONE;
        for (int k = 0; k < j->n_tasks; k++) {
            const sched_task_t *b = &j->tasks[k];
            if (b->group != a->group)
                continue;
            first &= k >= i;
            if (b->within != SCHED_NONE &&
                (within == SCHED_NONE || s->types[b->within].level < s->types[within].level))
                within = b->within;
        }
        if (!first || within == SCHED_NONE)
            continue;
        int cell = SCHED_NONE;
        for (int k = i; k < j->n_tasks; k++) {
            const sched_task_t *b = &j->tasks[k];
            if (b->group != a->group || !b->bound)
                continue;
            int c = within_key(s, j, b, within);
            if (c == -2)
                continue;
            if (c == SCHED_NONE || (cell != SCHED_NONE && c != cell)) {
                add(l, "job %s: affinity group of role %s is not within one %s cell (node %s)",
                    j->id, j->roles[a->role], s->types[within].name, s->nodes[b->node].name);
                return;
            }
            cell = c;
        }
    }
}

static void check_gangs(const sched_t *s, vlist_t *l)
{
    for (int slot = 0; slot < s->n_jobs; slot++)
        if (s->jobs[slot].state == SCHED_JOB_RUNNING || s->jobs[slot].state == SCHED_JOB_DYING)
            check_within(s, l, &s->jobs[slot]);
    if (s->derived || s->opts.policy != SCHED_POLICY_PAI)
        return;
    for (int slot = 0; slot < s->n_jobs; slot++) {
        const job_t *j = &s->jobs[slot];
        if (j->state != SCHED_JOB_FREE && j->gang && j->n_tasks > 1)
            check_gang(s, l, j);
    }
}

/* ---- 6. opportunistic work does not keep guaranteed work out -------------------- */

static bool gpu_usable_for(const sched_t *s, const sched_mnode_t *n, int g, int slot)
{
    if (n->res[g] != SCHED_NONE && n->res[g] != slot)
        return false; /* reservations move during a pass: leave them out */
    int o = n->owner[g];
    if (o == SCHED_NONE)
        return true;
    const job_t *oj = &s->jobs[o];
    if (oj->state == SCHED_JOB_DYING)
        return oj->dying_for == slot;
    return oj->oppo;
}

/* A node of the job's VC cells where its one task would fit if the
 * opportunistic work there were gone; SCHED_NONE when none.  Only the VC's
 * bound cells are looked at (a task's GPUs lie in one of them). */
static int oppo_blocked_node(const sched_t *s, int slot)
{
    const job_t *j = &s->jobs[slot];
    const sched_task_t *t = &j->tasks[0];
    const vc_t *vc = &s->vcs[j->vc];
    for (int v = 0; v < vc->n_vcells; v++) {
        int c = vc->vcells[v].cell;
        if (c == SCHED_NONE || (vc->vcells[v].pinned ? t->pinned != c : t->pinned != SCHED_NONE))
            continue;
        for (int i = s->cells[c].node_lo; i < s->cells[c].node_hi; i++) {
            const sched_mnode_t *n = &s->nodes[i];
            if (!n->healthy || n->ngpu < t->gpus || (t->sku != SCHED_NONE && n->sku != t->sku))
                continue;
            if ((t->cpus && n->cpus && n->cpus - n->cpu_used < t->cpus) ||
                (t->mem && n->mem && n->mem - n->mem_used < t->mem))
                continue;
            int w = n->cell; /* within one cell: only a node inside a cell of the type */
            while (t->within != SCHED_NONE && w != SCHED_NONE && s->cells[w].type != t->within)
                w = s->cells[w].parent;
            /* below node level: the task's GPUs in one aligned block of the type */
            int blk = t->within != SCHED_NONE ? sched_node_block(s, i, t->within) : 0;
            if (t->within != SCHED_NONE && w == SCHED_NONE && !blk)
                continue;
            int lo, hi, usable = 0;
            sched_cell_gpu_range(s, c, i, &lo, &hi);
            for (int g = lo; g < hi; g++) {
                if (blk && g % blk == 0)
                    usable = 0;
                usable += gpu_usable_for(s, n, g, slot);
                if (usable >= t->gpus)
                    return i;
            }
        }
    }
    return SCHED_NONE;
}

/* Waiting jobs of one shape share the answer within one check (the model
 * does not change during it): a queue of thousands asks a few shapes.  An
 * open-addressing table on the stack (O(1) per waiting job: the check runs
 * after every pass, and at 4x load the Philly queue holds thousands). */
#define OPPO_MEMO 256 /* a power of two; shapes beyond it are computed each time */

typedef struct {
    int vc, gpus, cpus, sku, within, pinned;
    int64_t mem;
    int node;
} oppo_memo_t;

typedef struct {
    oppo_memo_t e[OPPO_MEMO];
    uint8_t used[OPPO_MEMO];
    int n;
} oppo_table_t;

static int oppo_blocked_memo(const sched_t *s, int slot, oppo_table_t *tb)
{
    const job_t *j = &s->jobs[slot];
    const sched_task_t *t = &j->tasks[0];
    if (j->n_resv > 0) /* its own reserved GPUs count: not shared */
        return oppo_blocked_node(s, slot);
    uint64_t h = (uint64_t)(unsigned)j->vc * 0x9E3779B97F4A7C15ull;
    h = (h ^ (unsigned)t->gpus) * 0x100000001B3ull;
    h = (h ^ (unsigned)t->cpus) * 0x100000001B3ull;
    h = (h ^ (uint64_t)t->mem) * 0x100000001B3ull;
    h = (h ^ (unsigned)(t->sku + 1)) * 0x100000001B3ull;
    h = (h ^ (unsigned)(t->within + 1)) * 0x100000001B3ull;
    h = (h ^ (unsigned)(t->pinned + 1)) * 0x100000001B3ull;
    for (unsigned k = 0, i = (unsigned)(h >> 32) & (OPPO_MEMO - 1); k < OPPO_MEMO;
         k++, i = (i + 1) & (OPPO_MEMO - 1)) {
        oppo_memo_t *m = &tb->e[i];
        if (!tb->used[i]) {
            int n = oppo_blocked_node(s, slot);
            if (tb->n < OPPO_MEMO / 2) { /* keep probes short */
                *m =
                    (oppo_memo_t){j->vc, t->gpus, t->cpus, t->sku, t->within, t->pinned, t->mem, n};
                tb->used[i] = 1;
                tb->n++;
            }
            return n;
        }
        if (m->vc == j->vc && m->gpus == t->gpus && m->cpus == t->cpus && m->mem == t->mem &&
            m->sku == t->sku && m->within == t->within && m->pinned == t->pinned)
            return m->node;
    }
    return oppo_blocked_node(s, slot);
}

static void check_oppo(const sched_t *s, vlist_t *l)
{
    if (s->opts.policy != SCHED_POLICY_PAI || !s->post_pass)
        return;
    oppo_table_t *tb = NULL; /* on first use: most passes leave no one-task job waiting */
    for (int k = 0; k < s->n_queue; k++) {
        int slot = s->queue[k].slot;
        const job_t *j = &s->jobs[slot];
        if (j->state != SCHED_JOB_WAITING || j->refuse || j->oppo || j->vc == SCHED_NONE ||
            j->waiting_on > 0 || j->n_tasks != 1 || j->tasks[0].bound || j->total_gpus == 0)
            continue;
        if (s->vcs[j->vc].bind_pass == s->passes)
            continue; /* its VC's cells changed during the pass, maybe after its turn */
        if (!tb)
            tb = xcalloc(1, sizeof(*tb));
        int n = oppo_blocked_memo(s, slot, tb);
        if (n != SCHED_NONE)
            add(l,
                "job %s of VC %s waits although node %s of its cells would hold it once the "
                "opportunistic work there is preempted",
                j->id, s->vcs[j->vc].name, s->nodes[n].name);
    }
    free(tb);
}

/* ---- entry points ----------------------------------------------------------------- */

size_t sched_check(const sched_t *s, sched_violation_t *out, size_t cap)
{
    vlist_t l = {.out = out, .cap = out ? cap : 0};
    check_gpus(s, &l);
    check_cell_links(s, &l);
    check_cell_counts(s, &l);
    check_vc_counts(s, &l);
    check_guarantees(s, &l);
    if (s->opts.policy == SCHED_POLICY_PAI)
        check_safety(s, &l);
    check_gangs(s, &l);
    check_oppo(s, &l);
    return l.n;
}

uint64_t sched_check_failures(const sched_t *s, const char **first)
{
    if (first)
        *first = s->chk_first;
    return s->chk_violations;
}

static void record(sched_t *s, const char *what, int slot, const char *msg)
{
    if (s->opts.on_violation)
        s->opts.on_violation(s->opts.violation_ctx, what,
                             slot != SCHED_NONE ? job_name(s, slot) : NULL, msg);
    if (s->chk_violations++ == 0)
        snprintf(s->chk_first, sizeof(s->chk_first), "after %s%s%s: %.380s", what,
                 slot != SCHED_NONE ? " of job " : "", slot != SCHED_NONE ? job_name(s, slot) : "",
                 msg);
}

void sched_check_hook(sched_t *s, const char *what, int slot, bool decision)
{
    sched_violation_t v[4];
    size_t n = sched_check(s, v, ARRAY_LEN(v));
    for (size_t i = 0; i < n && i < ARRAY_LEN(v); i++)
        record(s, what, slot, v[i].what);
    if (n > ARRAY_LEN(v))
        s->chk_violations += n - ARRAY_LEN(v);
    if (s->opts.policy != SCHED_POLICY_PAI)
        return;
    char why[SCHED_REASON_MAX];
    int doomed = sched_check_deficit(s, true, why, sizeof(why));
    if (decision && s->chk_doomed >= 0 && doomed > s->chk_doomed) {
        char msg[2 * SCHED_REASON_MAX];
        snprintf(
            msg, sizeof(msg),
            "sharing safety on healthy hardware: %d virtual cell(s) doomed, %d before (%.200s)",
            doomed, s->chk_doomed, why);
        record(s, what, slot, msg);
    }
    s->chk_doomed = doomed;
}
