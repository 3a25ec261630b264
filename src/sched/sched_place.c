/*
 * sched_place.c - placement of one job's tasks onto nodes and GPUs.
 *
 * One attempt places every unbound task of a job (all of them for a gang)
 * in one of three modes:
 *   FREE     only free GPUs (and not reserved by an equal or higher priority job);
 *   PREEMPT  also GPUs of opportunistic jobs and of lower-priority guaranteed
 *            jobs of the same VC (the victims), cheapest victims first;
 *   RESERVE  also GPUs of the VC's own running guaranteed jobs: where a
 *            starving job will fit once they finish (anti-starvation).
 * GPUs picked during an attempt are claimed with the attempt's stamp, so an
 * abandoned attempt needs no undo.  Procedure:
 *   1. build the domain: node ranges the job may use (its VC's bound cells for
 *      guaranteed work, the whole cluster for opportunistic and CPU-only work);
 *   2. for a multi-task job, pick an anchor: the smallest cell of the domain
 *      able to hold all tasks (topology: same rack, same node group); for an
 *      affinity group "within one cell" of a type, a cell of that type, and
 *      its tasks go nowhere else (none such: the group does not place);
 *   3. place tasks largest first, each on the best node: fewest victims, inside
 *      the anchor, tightest fit (packing); inside a node, the smallest aligned
 *      GPU block that fits (same PCIe switch / socket);
 *   4. guaranteed jobs short of room bind more of their VC's virtual cells to
 *      free physical cells (buddy order) and go back to 3.
 */
#include <stdlib.h>
#include <string.h>

#include "sched/sched_place.h"
#include "common/util.h"
#include "common/vec.h"

/* ---- per-GPU usability ---------------------------------------------- */

/* 0: unusable; otherwise the cost of taking it: 1 free, 2 dying for us,
 * 3 opportunistic victim, 50 lower-priority guaranteed victim, 4 RESERVE. */
static int gpu_cost(const sched_t *s, const attempt_t *at, const sched_mnode_t *n, int g)
{
    const job_t *j = &s->jobs[at->job];
    if (n->claim[g] == at->stamp)
        return 0;
    int r = n->res[g];
    if (r != SCHED_NONE && r != at->job && sched_reservation_blocks(&s->jobs[r], j))
        return 0;
    int o = n->owner[g];
    if (o == SCHED_NONE)
        return 1;
    const job_t *oj = &s->jobs[o];
    switch (at->mode) {
    case MODE_FREE:
        return 0;
    case MODE_PREEMPT:
        if (oj->state == SCHED_JOB_DYING)
            return oj->dying_for == at->job ? 2 : 0;
        if (oj->oppo)
            return j->oppo ? 0 : 3;
        if (oj->vc == j->vc && oj->prio < j->prio && !j->oppo)
            return 50;
        return 0;
    case MODE_RESERVE:
        return (oj->vc == j->vc && !oj->oppo) || oj->state == SCHED_JOB_DYING ? 4 : 0;
    }
    return 0;
}

static bool node_fits_basics(const sched_t *s, const attempt_t *at, const sched_mnode_t *n,
                             const sched_task_t *t)
{
    if (at->mode == MODE_FREE && n->ngpu - n->used < t->gpus)
        return false; /* the common reject first */
    if (!n->healthy || n->ngpu < t->gpus)
        return false;
    if (t->gpus > 0 && t->sku != SCHED_NONE && n->sku != t->sku)
        return false;
    int ccpu = n->claim_stamp == at->stamp ? n->claim_cpus : 0;
    int64_t cmem = n->claim_stamp == at->stamp ? n->claim_mem : 0;
    if (t->cpus && n->cpus && n->cpus - n->cpu_used - ccpu < t->cpus)
        return false;
    if (t->mem && n->mem && n->mem - n->mem_used - cmem < t->mem)
        return false;
    if (at->mode == MODE_FREE) {
        int cg = n->claim_stamp == at->stamp ? n->claim_gpus : 0;
        if (n->ngpu - n->used - cg < t->gpus)
            return false;
    }
    (void)s;
    return true;
}

/* Choose t->gpus GPUs on node n: the smallest aligned block holding enough
 * usable GPUs, cheapest then tightest.  Fills pick[], returns the total cost
 * (0 when impossible); *spare gets the usable GPUs left in the node. */
static int node_pick(const sched_t *s, const attempt_t *at, const sched_mnode_t *n, int need,
                     int *pick, int *spare)
{
    int cost[SCHED_MAX_GPUS_PER_NODE];
    int usable = 0;
    uint64_t m = at->mask; /* the GPUs of the domain's range (a cell below node level) */
    if (m == SCHED_ALL_GPUS) {
        for (int g = 0; g < n->ngpu; g++) {
            cost[g] = gpu_cost(s, at, n, g);
            usable += cost[g] > 0;
        }
    } else {
        for (int g = 0; g < n->ngpu; g++) {
            cost[g] = m >> g & 1 ? gpu_cost(s, at, n, g) : 0;
            usable += cost[g] > 0;
        }
    }
    if (usable < need)
        return 0;
    *spare = usable - need;
    int b = n->group > 0 && n->group >= need ? n->group : 1;
    while (b < need)
        b *= 2;
    for (; b <= 2 * n->ngpu; b *= 2) {
        int best_cost = 0, best_lo = -1, best_avail = 0;
        for (int lo = 0; lo < n->ngpu; lo += b) {
            int hi = lo + b < n->ngpu ? lo + b : n->ngpu;
            int avail = 0, c = 0;
            /* cheapest `need` GPUs of the block: costs are tiny ints, take by level */
            for (int lvl = 1; lvl <= 50 && avail < need; lvl++)
                for (int g = lo; g < hi && avail < need; g++)
                    if (cost[g] == lvl)
                        avail++, c += lvl;
            if (avail < need)
                continue;
            int free_in_block = 0;
            for (int g = lo; g < hi; g++)
                free_in_block += cost[g] > 0;
            if (best_lo < 0 || c < best_cost || (c == best_cost && free_in_block < best_avail)) {
                best_cost = c, best_lo = lo, best_avail = free_in_block;
            }
        }
        if (best_lo >= 0) {
            int hi = best_lo + b < n->ngpu ? best_lo + b : n->ngpu, k = 0;
            for (int lvl = 1; lvl <= 50 && k < need; lvl++)
                for (int g = best_lo; g < hi && k < need; g++)
                    if (cost[g] == lvl)
                        pick[k++] = g;
            return best_cost > 0 ? best_cost : 1;
        }
        if (b >= n->ngpu)
            break;
    }
    return 0;
}

/* ---- domain ---------------------------------------------------------- */

static bool in_cell(const sched_t *s, int node, int cell)
{
    return cell != SCHED_NONE && node >= s->cells[cell].node_lo && node < s->cells[cell].node_hi;
}

pai_err_t sched_attempt_add_range(attempt_t *at, int lo, int hi, uint64_t mask)
{
    if (at->n_ranges && at->ranges[at->n_ranges - 1].hi == lo && mask == SCHED_ALL_GPUS &&
        at->ranges[at->n_ranges - 1].mask == SCHED_ALL_GPUS) {
        at->ranges[at->n_ranges - 1].hi = hi; /* adjacent cells: one range */
        return PAI_OK;
    }
    /* a cell below node level stays a range of its own: a task's GPUs lie
     * in one of the VC's cells */
    VEC_XRESERVE(at->ranges, at->cap_ranges, (size_t)at->n_ranges + 1);
    at->ranges[at->n_ranges++] = (range_t){lo, hi, mask};
    return PAI_OK;
}

pai_err_t sched_attempt_add_cell(const sched_t *s, attempt_t *at, int c)
{
    const cell_t *cl = &s->cells[c];
    return sched_attempt_add_range(at, cl->node_lo, cl->node_hi, sched_cell_mask(cl));
}

/* ---- anchor (topology) ----------------------------------------------- */

/* GPUs of node n this attempt may take (less what its earlier groups took). */
static int node_usable(const sched_t *s, const attempt_t *at, const sched_mnode_t *n)
{
    if (at->mode == MODE_FREE && at->mask == SCHED_ALL_GPUS)
        return n->ngpu - n->used - (n->claim_stamp == at->stamp ? n->claim_gpus : 0);
    int usable = 0;
    uint64_t m = at->mask;
    for (int g = 0; g < n->ngpu; g++)
        usable += (m >> g & 1) && gpu_cost(s, at, n, g) > 0;
    return usable;
}

static int node_capacity(const sched_t *s, const attempt_t *at, const sched_mnode_t *n,
                         const sched_task_t *t)
{
    if (!node_fits_basics(s, at, n, t))
        return 0;
    return t->gpus == 0 ? 1 : node_usable(s, at, n) / t->gpus;
}

/* The deepest cell (tightest among equals) of the domain that can hold all
 * n tasks like t; SCHED_NONE when none or for single tasks. */
static int pick_anchor(sched_t *s, attempt_t *at, const sched_task_t *t, int ntasks)
{
    if (ntasks <= 1 || !s->cap_scratch)
        return SCHED_NONE;
    int *cap = s->scratch;
    int best = SCHED_NONE;
    uint32_t st = ++s->stamp; /* scratch stamp; claims keep at->stamp */
    /* accumulate node capacities into every ancestor cell */
    for (int r = 0; r < at->n_ranges; r++)
        for (int i = at->ranges[r].lo; i < at->ranges[r].hi; i++) {
            if (at->mode == MODE_FREE && s->nfree[i] < t->gpus)
                continue;
            at->mask = at->ranges[r].mask;
            int k = node_capacity(s, at, &s->nodes[i], t);
            for (int c = s->nodes[i].cell; c != SCHED_NONE && k; c = s->cells[c].parent) {
                if (s->scratch_stamp[c] != st)
                    s->scratch_stamp[c] = st, cap[c] = 0;
                cap[c] += k;
            }
        }
    for (int r = 0; r < at->n_ranges; r++)
        for (int i = at->ranges[r].lo; i < at->ranges[r].hi; i++)
            for (int c = s->nodes[i].cell; c != SCHED_NONE; c = s->cells[c].parent) {
                if (s->scratch_stamp[c] != st || cap[c] < ntasks)
                    continue;
                if (best == SCHED_NONE || s->cells[c].depth > s->cells[best].depth ||
                    (s->cells[c].depth == s->cells[best].depth && cap[c] < cap[best]))
                    best = c;
                break;
            }
    return best;
}

/* ---- placing tasks --------------------------------------------------- */

static void claim(const sched_t *s, attempt_t *at, sched_mnode_t *n, const sched_task_t *t,
                  const int *pick)
{
    (void)s;
    if (n->claim_stamp != at->stamp) {
        n->claim_stamp = at->stamp;
        n->claim_gpus = n->claim_cpus = 0;
        n->claim_mem = 0;
    }
    for (int k = 0; k < t->gpus; k++)
        n->claim[pick[k]] = at->stamp;
    n->claim_gpus += t->gpus;
    n->claim_cpus += t->cpus;
    n->claim_mem += t->mem;
}

static bool node_unbound_pref(const sched_t *s, const sched_mnode_t *n)
{
    /* a node with cells below node level bound is held too */
    return s->cells[n->cell].bound_below == 0 &&
           sched_model_bound_ancestor(s, n->cell) == SCHED_NONE;
}

/* Is node n inside a pinned cell?  (Only tasks naming it may use it.) */
static bool in_pinned_cell(const sched_t *s, int n)
{
    for (int c = s->nodes[n].cell; c != SCHED_NONE; c = s->cells[c].parent)
        if (s->cells[c].pinned[0])
            return true;
    return false;
}

/* Place task ti of the attempt's job; false when no node of the domain fits
 * (strict: none inside anchor). */
static bool place_task(sched_t *s, attempt_t *at, int ti, int anchor, bool strict)
{
    job_t *j = &s->jobs[at->job];
    sched_task_t *t = &j->tasks[ti];
    bool pinned_job = false; /* its domain holds pinned cells */
    for (int k = 0; k < j->n_tasks && !pinned_job; k++)
        pinned_job = j->tasks[k].pinned != SCHED_NONE;
    int best = SCHED_NONE, best_pick[SCHED_MAX_GPUS_PER_NODE];
    long best_score = 0;
    int pick[SCHED_MAX_GPUS_PER_NODE];
    /* the best possible score: every GPU free (cost 1 each) and no spare left */
    long perfect =
        at->mode == MODE_RESERVE ? -1000000000L : (long)(t->gpus > 0 ? t->gpus : 1) * 100000000L;
    for (int r = 0; r < at->n_ranges; r++) {
        uint64_t rmask = at->ranges[r].mask & at->wmask;
        for (int i = at->ranges[r].lo; i < at->ranges[r].hi; i++) {
            if (at->mode == MODE_FREE && s->nfree[i] < t->gpus)
                continue; /* packed array: full nodes cost no sched_mnode_t cache miss */
            sched_mnode_t *n = &s->nodes[i];
            if (strict && !in_cell(s, i, anchor))
                continue;
            if (!node_fits_basics(s, at, n, t))
                continue;
            if (t->pinned != SCHED_NONE ? !in_cell(s, i, t->pinned)
                                        : pinned_job && in_pinned_cell(s, i))
                continue;
            /* the range's GPUs; a pinned cell below node level: its GPUs only, and
             * only for the tasks naming it */
            at->mask = rmask & (t->pinned != SCHED_NONE ? sched_cell_mask(&s->cells[t->pinned])
                                : pinned_job            ? ~n->pin_mask
                                                        : SCHED_ALL_GPUS);
            if (!at->mask)
                continue;
            int spare = 0, cost = 1;
            if (t->gpus > 0)
                cost = node_pick(s, at, n, t->gpus, pick, &spare);
            else
                spare = (n->cpus - n->cpu_used) + (n->ngpu ? 1000000 : 0);
            if (!cost)
                continue;
            long score = (long)cost * 100000000L;
            if (anchor != SCHED_NONE && !in_cell(s, i, anchor))
                score += 10000000L;
            if (j->oppo && t->gpus > 0 && !node_unbound_pref(s, n))
                score += 1000000L; /* oppo work prefers cells no VC holds */
            if (at->mode == MODE_RESERVE)
                score -= spare; /* where most is free already */
            else
                score += spare;
            if (best == SCHED_NONE || score < best_score) {
                best = i, best_score = score;
                memcpy(best_pick, pick, sizeof(int) * (size_t)t->gpus);
                if (score <= perfect)
                    goto found; /* all free, nothing left over, in place: cannot do better */
            }
        }
    }
found:
    if (best == SCHED_NONE)
        return false;
    t->node = best;
    memcpy(&j->gpu[t->gpu0], best_pick, sizeof(int) * (size_t)t->gpus);
    claim(s, at, &s->nodes[best], t, best_pick);
    return true;
}

/* ---- "within one cell" groups ---------------------------------------- */

/* Candidates are kept in s->wcand (grown as needed): every cell (below node
 * level: every block) of the domain with room is listed and tried, as HiveD
 * tries every cell of the type.  The scan is O(domain nodes x blocks per
 * node), the order of one task's placement (place_task scans the domain),
 * and trying stops at the first cell that holds the group. */
typedef struct wcand {
    int cell;
    int slots;     /* tasks like the group's largest that fit, node by node */
    int usable;    /* usable GPUs (nodes fit for the largest task, or any) */
    uint64_t mask; /* below node level: the block's GPUs (cell: its node's cell) */
} wcand_t;

static int cmp_wcand(const void *a, const void *b, void *ctx)
{
    const wcand_t *x = a, *y = b;
    int need = *(const int *)ctx;
    if ((x->slots >= need) != (y->slots >= need))
        return x->slots >= need ? -1 : 1; /* room for all of the largest first */
    if (x->slots != y->slots)
        return x->slots - y->slots; /* then the tightest */
    if (x->usable != y->usable)
        return x->usable - y->usable;
    if (x->cell != y->cell)
        return x->cell - y->cell;
    return x->mask < y->mask ? -1 : x->mask > y->mask;
}

/* The ancestor of node of cell type within, or SCHED_NONE. */
static int within_cell_of(const sched_t *s, int node, int within)
{
    for (int c = s->nodes[node].cell; c != SCHED_NONE; c = s->cells[c].parent)
        if (s->cells[c].type == within)
            return c;
    return SCHED_NONE;
}

static uint64_t block_mask(int lo, int size)
{
    return (size >= 64 ? SCHED_ALL_GPUS : (((uint64_t)1 << size) - 1)) << lo;
}

/* Append a candidate to s->wcand (n: its count so far). */
static void wcand_push(sched_t *s, int n, wcand_t c)
{
    VEC_XRESERVE(s->wcand, s->cap_wcand, (size_t)n + 1);
    s->wcand[n] = c;
}

/* Below node level: the aligned GPU blocks of type within on the domain's
 * nodes (one node each) with room for the group, as within_candidates. */
static int within_blocks(sched_t *s, attempt_t *at, const sched_task_t *big, int need, int gpus,
                         int within)
{
    const job_t *j = &s->jobs[at->job];
    int fixed = SCHED_NONE, n = 0;
    uint64_t fmask = SCHED_ALL_GPUS;
    for (int i = 0; i < j->n_tasks; i++) {
        const sched_task_t *t = &j->tasks[i];
        if (!t->bound || t->group != big->group)
            continue;
        fixed = t->node;
        int b = sched_node_block(s, t->node, within);
        if (t->gpus > 0 && b > 0)
            fmask = block_mask(j->gpu[t->gpu0] / b * b, b);
    }
    for (int r = 0; r < at->n_ranges; r++)
        for (int i = at->ranges[r].lo; i < at->ranges[r].hi; i++) {
            const sched_mnode_t *nd = &s->nodes[i];
            int b = sched_node_block(s, i, within);
            if (!b || (fixed != SCHED_NONE && i != fixed))
                continue;
            for (int lo = 0; lo < nd->ngpu; lo += b) {
                uint64_t m = block_mask(lo, b) & at->ranges[r].mask & fmask;
                if (!m)
                    continue;
                at->mask = m;
                int slots = node_capacity(s, at, nd, big);
                int usable = nd->healthy ? node_usable(s, at, nd) : 0;
                if (slots < need && (slots == 0 || usable < gpus))
                    continue;
                wcand_push(s, n++, (wcand_t){nd->cell, slots, usable, m});
            }
        }
    return n;
}

/* The cells of type within in the domain that may hold the group ord[k0,k1)
 * (its largest task first), into s->wcand (all of them), in the order to try:
 * those with room for all its tasks counted like the largest, tightest
 * first (what a uniform group takes), then the others that still have as
 * many usable GPUs as the group needs (a group of mixed sizes).  A group
 * with a task already bound (task by task) keeps to that task's cell. */
static int within_candidates(sched_t *s, attempt_t *at, const int *ord, int k0, int k1, int within)
{
    const job_t *j = &s->jobs[at->job];
    const sched_task_t *big = &j->tasks[ord[k0]];
    int gpus = 0, fixed = SCHED_NONE, n = 0, last = SCHED_NONE;
    for (int k = k0; k < k1; k++)
        gpus += j->tasks[ord[k]].gpus;
    if (sched_type_below_node(s, within)) {
        int need = k1 - k0;
        n = within_blocks(s, at, big, need, gpus, within);
        if (n > 1)
            qsort_r(s->wcand, (size_t)n, sizeof(*s->wcand), cmp_wcand, &need);
        return n;
    }
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].bound && j->tasks[i].group == big->group)
            fixed = within_cell_of(s, j->tasks[i].node, within);
    for (int r = 0; r < at->n_ranges; r++)
        for (int i = at->ranges[r].lo; i < at->ranges[r].hi; i++) {
            int c = within_cell_of(s, i, within);
            if (c == SCHED_NONE || (fixed != SCHED_NONE && c != fixed))
                continue;
            if (c != last) { /* cells are node ranges: a cell's nodes come together */
                wcand_push(s, n++, (wcand_t){c, 0, 0, SCHED_ALL_GPUS});
                last = c;
            }
            wcand_t *out = s->wcand;
            const sched_mnode_t *nd = &s->nodes[i];
            at->mask = at->ranges[r].mask;
            out[n - 1].slots += node_capacity(s, at, nd, big);
            if (nd->healthy)
                out[n - 1].usable += node_usable(s, at, nd);
        }
    int need = k1 - k0, m = 0;
    wcand_t *out = s->wcand;
    for (int i = 0; i < n; i++)
        if (out[i].slots >= need || (out[i].slots > 0 && out[i].usable >= gpus))
            out[m++] = out[i];
    if (m > 1)
        qsort_r(out, (size_t)m, sizeof(*out), cmp_wcand, &need);
    return m;
}

/* Undo the claims of the tasks of ord[k0,k1) placed by this attempt. */
static void unplace_group(sched_t *s, attempt_t *at, const int *ord, int k0, int k1)
{
    job_t *j = &s->jobs[at->job];
    for (int k = k0; k < k1; k++) {
        sched_task_t *t = &j->tasks[ord[k]];
        if (t->node == SCHED_NONE || t->bound)
            continue;
        sched_mnode_t *n = &s->nodes[t->node];
        for (int g = 0; g < t->gpus; g++)
            n->claim[j->gpu[t->gpu0 + g]] = at->stamp - 1;
        n->claim_gpus -= t->gpus;
        n->claim_cpus -= t->cpus;
        n->claim_mem -= t->mem;
        t->node = SCHED_NONE;
    }
}

static int place_group_in(sched_t *s, attempt_t *at, const int *ord, int k0, int k1, int anchor,
                          bool strict)
{
    int placed = 0;
    for (int k = k0; k < k1; k++) {
        if (place_task(s, at, ord[k], anchor, strict))
            placed++;
        else if (s->jobs[at->job].gang)
            break;
    }
    return placed;
}

/* A group "within one cell" of type within: each candidate cell in turn
 * (HiveD tries every cell of the type) until one holds all its tasks; a
 * task-by-task job that fits in none places what the first one holds.
 * Returns the tasks placed; 0 and within_miss set when none. */
static int place_group_within(sched_t *s, attempt_t *at, const int *ord, int k0, int k1, int within)
{
    int n = within_candidates(s, at, ord, k0, k1, within);
    const wcand_t *cand = s->wcand; /* stable: placing a task adds no candidates */
    for (int c = 0; c < n; c++) {
        at->wmask = cand[c].mask;
        int placed = place_group_in(s, at, ord, k0, k1, cand[c].cell, true);
        at->wmask = SCHED_ALL_GPUS;
        if (placed == k1 - k0)
            return placed;
        unplace_group(s, at, ord, k0, k1);
    }
    at->wmask = n > 0 ? cand[0].mask : SCHED_ALL_GPUS;
    int placed = n > 0 && !s->jobs[at->job].gang
                     ? place_group_in(s, at, ord, k0, k1, cand[0].cell, true)
                     : 0;
    at->wmask = SCHED_ALL_GPUS;
    if (placed == 0)
        s->within_miss = within + 1; /* no cell of the type has room: the group waits */
    return placed;
}

/* Tasks by affinity group, then largest first. */
static int cmp_task_size(const void *a, const void *b, void *ctx)
{
    const job_t *j = ctx;
    const sched_task_t *x = &j->tasks[*(const int *)a], *y = &j->tasks[*(const int *)b];
    if (x->group != y->group)
        return x->group - y->group;
    if (x->gpus != y->gpus)
        return y->gpus - x->gpus;
    return *(const int *)a - *(const int *)b;
}

/* Place the unbound tasks; returns how many were placed.  For a gang either
 * all or (after undoing) none.  Placed tasks have t->node set.  Each affinity
 * group (by default the whole job) gets its own anchor cell. */
int sched_attempt_place(sched_t *s, attempt_t *at)
{
    job_t *j = &s->jobs[at->job];
    at->stamp = ++s->stamp;
    at->mask = at->wmask = SCHED_ALL_GPUS;
    int order[PAI_MAX_TASKS_SMALL], n = 0;
    int *ord =
        j->n_tasks <= PAI_MAX_TASKS_SMALL ? order : xmalloc(sizeof(int) * (size_t)j->n_tasks);
    if (!ord)
        return 0;
    for (int i = 0; i < j->n_tasks; i++)
        if (j->tasks[i].node == SCHED_NONE)
            ord[n++] = i;
    qsort_r(ord, (size_t)n, sizeof(int), cmp_task_size, j);
    int placed = 0;
    bool failed = false;
    for (int k0 = 0; k0 < n && !failed;) {
        int k1 = k0;
        while (k1 < n && j->tasks[ord[k1]].group == j->tasks[ord[k0]].group)
            k1++;
        /* "within one cell": the deepest type the group's roles name (its
         * tasks bound already too: task by task, a role without the
         * constraint may come after the one that named it) */
        int within = SCHED_NONE;
        for (int k = 0; k < j->n_tasks; k++) {
            if (j->tasks[k].group != j->tasks[ord[k0]].group)
                continue;
            int w = j->tasks[k].within;
            if (w != SCHED_NONE &&
                (within == SCHED_NONE || s->types[w].level < s->types[within].level))
                within = w;
        }
        int got;
        if (within != SCHED_NONE) {
            got = place_group_within(s, at, ord, k0, k1, within);
        } else {
            int anchor = k1 - k0 > 1 ? pick_anchor(s, at, &j->tasks[ord[k0]], k1 - k0) : SCHED_NONE;
            got = place_group_in(s, at, ord, k0, k1, anchor, false);
        }
        placed += got;
        failed = j->gang && got < k1 - k0;
        k0 = k1;
    }
    if (j->gang && placed < n) {
        for (int k = 0; k < n; k++)
            j->tasks[ord[k]].node = SCHED_NONE;
        placed = 0;
    }
    if (ord != order)
        free(ord);
    return placed;
}

/* Victims: owners of the GPUs the placed tasks took (not dying, not ours). */
pai_err_t sched_attempt_victims(sched_t *s, attempt_t *at)
{
    job_t *j = &s->jobs[at->job];
    at->n_victims = 0;
    for (int i = 0; i < j->n_tasks; i++) {
        sched_task_t *t = &j->tasks[i];
        if (t->node == SCHED_NONE || t->bound)
            continue;
        const sched_mnode_t *n = &s->nodes[t->node];
        for (int k = 0; k < t->gpus; k++) {
            int o = n->owner[j->gpu[t->gpu0 + k]];
            if (o == SCHED_NONE || s->jobs[o].state == SCHED_JOB_DYING)
                continue;
            bool seen = false;
            for (int v = 0; v < at->n_victims; v++)
                seen |= at->victims[v] == o;
            if (seen)
                continue;
            VEC_XRESERVE(at->victims, at->cap_victims, (size_t)at->n_victims + 1);
            at->victims[at->n_victims++] = o;
        }
    }
    return PAI_OK;
}

void sched_attempt_free(attempt_t *at)
{
    free(at->ranges);
    free(at->victims);
    *at = (attempt_t){0};
}
