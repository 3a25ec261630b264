/*
 * sched_explain.c - why a waiting job waits, computed on demand.
 *
 * sched_explain() reads the model as it is when asked and changes nothing
 * (the scheduler's passes may run with quiet_waits and compose no reasons).
 * It names what blocks the job: preempted victims still stopping, the VC's
 * guaranteed cells of the SKU (free vs needed, nodes x GPUs shape), CPU or
 * memory on the nodes with free GPUs, unhealthy nodes and doomed cells, the
 * pinned cell, GPUs reserved for a starving job, jobs ahead in the queue.
 * Per role it counts how many tasks fit on the job's domain (the VC's bound
 * cells for guaranteed work, the cluster otherwise), each role alone.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "sched/sched_int.h"

typedef struct {
    char *buf;
    size_t len, at;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    if (o->at >= o->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->at, o->len - o->at, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->at = o->at + (size_t)n < o->len ? o->at + (size_t)n : o->len - 1;
}

static bool sku_ok(const sched_t *s, int type, int sku)
{
    return sku == SCHED_NONE || s->types[type].sku == sku;
}

static const char *label(const sched_t *s, int sku)
{
    return sku == SCHED_NONE ? "GPUs" : s->skus[sku].name;
}

/* Does the job's VC hold cell c (bound to it, not pinned, of the SKU)? */
static bool vc_cell(const sched_t *s, const job_t *j, int c)
{
    if (c == SCHED_NONE || s->cells[c].bound_vc != j->vc)
        return false;
    const vcell_t *vcl = &s->vcs[j->vc].vcells[s->cells[c].bound_vcell];
    return !vcl->pinned && sku_ok(s, vcl->type, j->sku);
}

/* The GPU positions of node n in the job's domain (where a FREE placement
 * may look; 0: none, SCHED_ALL_GPUS: the whole node): the VC's cells at or
 * above node level, its cells below node level (a socket: that socket's
 * GPUs only), the pinned cell.  extra: per node, the GPUs of free cells the
 * VC's unbound virtual cells could bind to. */
static uint64_t domain_mask(const sched_t *s, const job_t *j, bool guaranteed, int pinned,
                            const uint64_t *extra, const uint8_t *own, int n)
{
    if (pinned != SCHED_NONE) {
        const cell_t *p = &s->cells[pinned];
        return n >= p->node_lo && n < p->node_hi ? sched_cell_mask(p) : 0;
    }
    if (!guaranteed)
        return !own || sched_node_open_to(s, j->vc, own, n) ? SCHED_ALL_GPUS : 0;
    const sched_mnode_t *nd = &s->nodes[n];
    if (nd->cell == SCHED_NONE)
        return 0;
    uint64_t m = extra ? extra[n] : 0;
    if (m == SCHED_ALL_GPUS || vc_cell(s, j, sched_model_bound_ancestor(s, nd->cell)))
        return SCHED_ALL_GPUS;
    for (int c = nd->sub_lo; c < nd->sub_hi && m != SCHED_ALL_GPUS; c++)
        if (vc_cell(s, j, c))
            m |= sched_cell_mask(&s->cells[c]);
    return m;
}

/* GPUs of node n (positions in mask) the job may take now: free and not
 * reserved for an equal or higher priority job.  *resv counts those held
 * for another job. */
static int usable_gpus(const sched_t *s, int slot, const sched_mnode_t *n, uint64_t mask, int *resv)
{
    int u = 0;
    bool all = mask == SCHED_ALL_GPUS;
    for (int g = 0; g < n->ngpu; g++) {
        if (n->owner[g] != SCHED_NONE || (!all && g < 64 && !(mask >> g & 1)))
            continue;
        int r = n->res[g];
        if (r != SCHED_NONE && r != slot && sched_reservation_blocks(&s->jobs[r], &s->jobs[slot]))
            (*resv)++;
        else
            u++;
    }
    return u;
}

typedef struct {
    int need;              /* unbound tasks of the role */
    int gpu_fit, full_fit; /* tasks that fit by GPUs alone / by GPUs, CPUs, memory */
    int best_gpus;         /* most usable GPUs on one healthy node of the domain */
    int best_cpus;         /* most free CPUs on a node with enough GPUs (-1: unknown) */
    int64_t best_mem;      /* most free memory on such a node (-1: unknown) */
    int bad_nodes, resv;   /* unhealthy domain nodes; GPUs reserved for others */
} fit_t;

static int slots(int64_t avail, int64_t per)
{
    return per > 0 ? (int)(avail / per) : 1 << 20;
}

static void fit_node(const sched_t *s, int slot, const sched_task_t *t, const sched_mnode_t *n,
                     uint64_t mask, fit_t *f)
{
    if (!n->healthy) {
        f->bad_nodes++;
        return;
    }
    if (t->gpus > 0 && (n->ngpu < t->gpus || (t->sku != SCHED_NONE && n->sku != t->sku)))
        return;
    int u = usable_gpus(s, slot, n, mask, &f->resv);
    if (u > f->best_gpus)
        f->best_gpus = u;
    int by_gpu = t->gpus > 0 ? u / t->gpus : 1 << 20;
    f->gpu_fit += by_gpu > f->need ? f->need : by_gpu;
    if (by_gpu == 0)
        return;
    int fc = n->cpus ? n->cpus - n->cpu_used : -1;
    int64_t fm = n->mem ? n->mem - n->mem_used : -1;
    if (fc > f->best_cpus)
        f->best_cpus = fc;
    if (fm > f->best_mem)
        f->best_mem = fm;
    int k = by_gpu;
    if (t->cpus && fc >= 0 && slots(fc, t->cpus) < k)
        k = slots(fc, t->cpus);
    if (t->mem && fm >= 0 && slots(fm, t->mem) < k)
        k = slots(fm, t->mem);
    f->full_fit += k > f->need ? f->need : k;
}

/* Describe role r (first unbound task t, need of them); true when it fits. */
static bool explain_role(const sched_t *s, int slot, bool guaranteed, const uint64_t *extra,
                         const uint8_t *own, int r, const sched_task_t *t, int need, out_t *o)
{
    const job_t *j = &s->jobs[slot];
    fit_t f = {.need = need, .best_cpus = -1, .best_mem = -1};
    for (int n = 0; n < s->n_nodes; n++) {
        uint64_t m = domain_mask(s, j, guaranteed, t->pinned, extra, own, n);
        if (m)
            fit_node(s, slot, t, &s->nodes[n], m, &f);
    }
    const char *where = t->pinned != SCHED_NONE ? "in its pinned cell"
                        : guaranteed            ? "in the VC's cells (bound or free to bind)"
                        : own                   ? "on nodes open to the VC"
                                                : "on healthy nodes";
    if (t->pinned != SCHED_NONE)
        put(o, "; role %s pinned to cell %s", j->roles[r], s->cells[t->pinned].pinned);
    if (t->gpus > 0 && f.gpu_fit < need) {
        put(o, "; role %s: %d of %d task%s x %d %s fit %s (most free on one healthy node: %d)",
            j->roles[r], f.gpu_fit, need, need == 1 ? "" : "s", t->gpus,
            t->sku != SCHED_NONE ? label(s, t->sku) : sched_reasons_gpu_label(s, j), where,
            f.best_gpus);
    } else if (f.full_fit < need) {
        put(o, "; role %s: %s", j->roles[r], t->gpus > 0 ? "GPUs are free but " : "");
        put(o, "only %d of %d task%s fit by CPU/memory %s (each needs %d CPUs / %lld MB",
            f.full_fit, need, need == 1 ? "" : "s", where, t->cpus, (long long)t->mem);
        if (f.best_cpus >= 0 || f.best_mem >= 0)
            put(o, "; most free on one %snode: %d CPUs / %lld MB", t->gpus > 0 ? "such " : "",
                f.best_cpus, (long long)f.best_mem);
        put(o, ")");
    }
    if (f.resv && (f.gpu_fit < need || f.full_fit < need))
        put(o, " (%d free GPUs there are reserved for a starving job)", f.resv);
    if (f.bad_nodes && (f.gpu_fit < need || f.full_fit < need))
        put(o, " (%d node%s there unhealthy)", f.bad_nodes, f.bad_nodes == 1 ? "" : "s");
    return f.gpu_fit >= need && f.full_fit >= need;
}

/* Healthy physical cells free to bind, bucketed by (type, chain), idle ones
 * first: built in one pass over the cells so that explaining a VC with
 * thousands of unbound virtual cells stays linear. */
typedef struct {
    int *idx, *start, *pos;
    int nk;
} cands_t;

static void cands_free(cands_t *c)
{
    free(c->idx), free(c->start), free(c->pos);
}

static bool cands_build(const sched_t *s, cands_t *c)
{
    c->nk = s->n_types * s->n_types;
    c->idx = xmalloc(sizeof(int) * ((size_t)s->n_cells + 1));
    c->start = xcalloc((size_t)c->nk + 1, sizeof(int));
    c->pos = xcalloc((size_t)c->nk + 1, sizeof(int));
    uint8_t *st = xcalloc((size_t)s->n_cells + 1, 1);
    bool ok = c->idx && c->start && c->pos && st;
    for (int i = 0; ok && i < s->n_cells; i++) {
        const cell_t *cl = &s->cells[i];
        if (cl->bound_below != 0 || sched_model_bound_ancestor(s, i) != SCHED_NONE ||
            !sched_cell_healthy(s, i))
            continue;
        st[i] = sched_cell_used_gpus(s, i) == 0 ? 1 : 2;
        c->start[cl->type * s->n_types + cl->chain + 1]++;
    }
    for (int k = 0; ok && k < c->nk; k++)
        c->start[k + 1] += c->start[k], c->pos[k] = c->start[k];
    for (int pass = 1; ok && pass <= 2; pass++)
        for (int i = 0; i < s->n_cells; i++)
            if (st[i] == pass)
                c->idx[c->pos[s->cells[i].type * s->n_types + s->cells[i].chain]++] = i;
    for (int k = 0; ok && k < c->nk; k++)
        c->pos[k] = c->start[k];
    free(st);
    if (!ok)
        cands_free(c);
    return ok;
}

/* The next free cell of type/chain whose GPUs extra has not taken;
 * SCHED_NONE when none is left (the virtual cell is doomed). */
static int cands_next(const sched_t *s, cands_t *c, int type, int chain, const uint64_t *extra)
{
    int k = type * s->n_types + chain;
    while (c->pos[k] < c->start[k + 1]) {
        int cell = c->idx[c->pos[k]++];
        bool taken = false;
        uint64_t m = sched_cell_mask(&s->cells[cell]);
        for (int n = s->cells[cell].node_lo; n < s->cells[cell].node_hi && !taken; n++)
            taken = (extra[n] & m) != 0;
        if (!taken)
            return cell;
    }
    return SCHED_NONE;
}

/* The VC's guarantee of the job's SKU; marks in extra the GPUs of free cells
 * its unbound virtual cells could bind to (below node level: the cell's). */
static void explain_vc(const sched_t *s, const job_t *j, uint64_t *extra, out_t *o)
{
    const vc_t *vc = &s->vcs[j->vc];
    int q = 0, doomed = 0;
    cands_t cands = {0};
    bool have = false, tried = false;
    for (int i = 0; i < vc->n_vcells; i++) {
        const vcell_t *vcl = &vc->vcells[i];
        if (!sku_ok(s, vcl->type, j->sku))
            continue;
        int g = s->types[vcl->type].gpus;
        q += g;
        if (vcl->cell != SCHED_NONE || vcl->pinned || !extra)
            continue;
        if (!tried)
            tried = true, have = cands_build(s, &cands);
        int c = have ? cands_next(s, &cands, vcl->type, vcl->chain, extra) : SCHED_NONE;
        if (c == SCHED_NONE) {
            doomed += have ? g : 0;
            continue;
        }
        for (int n = s->cells[c].node_lo; n < s->cells[c].node_hi; n++)
            extra[n] |= sched_cell_mask(&s->cells[c]);
    }
    if (have)
        cands_free(&cands);
    int dying = sched_reasons_dying_gpus(s, j->vc, j->sku);
    int fg = q - vc->used_gpus - dying;
    const char *sk = sched_reasons_gpu_label(s, j);
    put(o, "VC %s: %d of %d guaranteed %s free, job needs %d task%s x %d %s", vc->name,
        fg < 0 ? 0 : fg, q, sk, j->n_tasks, j->n_tasks == 1 ? "" : "s", j->max_task_gpus, sk);
    if (dying)
        put(o, "; %d held by preempted jobs still stopping", dying);
    if (doomed)
        put(o, "; %d %s of the guarantee are doomed (no healthy free cell to bind)", doomed, sk);
}

/* "Within one cell": for each affinity group that asked for it, can one cell
 * of the type hold its unbound tasks (GPUs free in the domain, counted in
 * tasks of the group's largest size)?  False (and says so) when not. */
static bool explain_within(const sched_t *s, int slot, bool guaranteed, const uint64_t *extra,
                           const uint8_t *own, out_t *o)
{
    const job_t *j = &s->jobs[slot];
    bool ok = true, any = false;
    int *cap = NULL;
    for (int i = 0; i < j->n_tasks && !any; i++)
        any = j->tasks[i].within != SCHED_NONE;
    for (int i = 0; any && i < j->n_tasks; i++) {
        const sched_task_t *a = &j->tasks[i];
        int within = SCHED_NONE, need = 0, gpus = 0;
        bool first = true;
        for (int k = 0; k < j->n_tasks; k++) {
            const sched_task_t *b = &j->tasks[k];
            if (b->group != a->group)
                continue;
            first &= k >= i;
            if (b->within != SCHED_NONE &&
                (within == SCHED_NONE || s->types[b->within].level < s->types[within].level))
                within = b->within;
            if (!b->bound)
                need++, gpus = b->gpus > gpus ? b->gpus : gpus;
        }
        if (!first || within == SCHED_NONE || need == 0)
            continue;
        if (!cap)
            cap = xmalloc(sizeof(int) * (size_t)(s->n_cells + 1));
        memset(cap, 0, sizeof(int) * (size_t)(s->n_cells + 1));
        int best = 0;
        bool below = sched_type_below_node(s, within);
        for (int n = 0; n < s->n_nodes; n++) {
            uint64_t m =
                s->nodes[n].healthy ? domain_mask(s, j, guaranteed, a->pinned, extra, own, n) : 0;
            if (!m)
                continue;
            int resv = 0, b = below ? sched_node_block(s, n, within) : 0;
            for (int lo = 0; b > 0 && lo < s->nodes[n].ngpu; lo += b) {
                /* below node level: one aligned block of the type's size */
                uint64_t bm = (b >= 64 ? SCHED_ALL_GPUS : ((uint64_t)1 << b) - 1) << lo;
                int u = usable_gpus(s, slot, &s->nodes[n], m & bm, &resv);
                int k = gpus > 0 ? u / gpus : 1;
                best = k > best ? k : best;
            }
            int u = below ? 0 : usable_gpus(s, slot, &s->nodes[n], m, &resv);
            int k = gpus > 0 ? u / gpus : 1;
            for (int c = s->nodes[n].cell; !below && c != SCHED_NONE && k; c = s->cells[c].parent)
                if (s->cells[c].type == within) {
                    cap[c] += k;
                    best = cap[c] > best ? cap[c] : best;
                    break;
                }
        }
        if (best < need) {
            put(o,
                "; role %s's affinity group must lie within one %s cell (withinOneCell): "
                "one such cell has room for %d of its %d tasks",
                j->roles[a->role], s->types[within].name, best, need);
            ok = false;
        }
    }
    free(cap);
    return ok;
}

/* Jobs ahead are counted only when the job fits (under no head-of-line
 * blocking they matter only then; the scan is O(queue)). */
static void explain_queue(const sched_t *s, int slot, bool guaranteed, bool fits, out_t *o)
{
    const job_t *j = &s->jobs[slot];
    int ahead = 0;
    for (int i = 0; fits && i < s->n_queue; i++) {
        const job_t *x = &s->jobs[s->queue[i].slot];
        if (s->queue[i].slot == slot || x->state != SCHED_JOB_WAITING || x->refuse ||
            x->vc != j->vc || x->oppo != j->oppo)
            continue;
        if (x->prio > j->prio ||
            (x->prio == j->prio &&
             (x->submit_ms < j->submit_ms || (x->submit_ms == j->submit_ms && x->seq < j->seq))))
            ahead++;
    }
    if (ahead)
        put(o, "; %d job%s of the %s ahead in the queue (higher priority or earlier)", ahead,
            ahead == 1 ? "" : "s", j->oppo ? "opportunistic queue" : "VC");
    if (j->n_resv)
        put(o, "; waited past the starvation limit, %d GPUs reserved for it", j->n_resv);
    else if (guaranteed && s->vcs[j->vc].reserver != SCHED_NONE && s->vcs[j->vc].reserver != slot)
        put(o, "; GPUs reserved for starving job %s", s->jobs[s->vcs[j->vc].reserver].id);
}

static void explain_victims(const sched_t *s, int slot, out_t *o)
{
    put(o, "waiting for %d preempted job(s) to stop:", s->jobs[slot].waiting_on);
    int shown = 0;
    for (int i = 0; i < s->n_jobs && shown < 8; i++)
        if (s->jobs[i].state == SCHED_JOB_DYING && s->jobs[i].dying_for == slot)
            put(o, "%s %s", shown++ ? "," : "", s->jobs[i].id);
}

pai_err_t sched_explain(const sched_t *s, const char *job_id, char *buf, size_t len)
{
    if (!buf || len == 0)
        return PAI_E_INVALID;
    buf[0] = 0;
    int slot = job_id ? sched_strmap_get(&s->job_map, job_id) : SCHED_NONE;
    if (slot == SCHED_NONE)
        return PAI_E_NO_JOB;
    const job_t *j = &s->jobs[slot];
    out_t o = {buf, len, 0};
    if (j->state == SCHED_JOB_RUNNING || j->state == SCHED_JOB_DYING) {
        bool all = true;
        for (int i = 0; i < j->n_tasks; i++)
            all &= j->tasks[i].bound;
        if (all) {
            put(&o, j->state == SCHED_JOB_RUNNING ? "bound (not waiting)" : "being preempted");
            return PAI_OK;
        }
    }
    if (j->refuse || j->vc == SCHED_NONE) {
        put(&o, "%s", j->reason[0] ? j->reason : "refused");
        return PAI_OK;
    }
    if (j->waiting_on > 0) {
        explain_victims(s, slot, &o);
        return PAI_OK;
    }
    bool guaranteed = s->opts.policy == SCHED_POLICY_PAI && !j->oppo && j->total_gpus > 0;
    uint64_t *extra = guaranteed ? xcalloc((size_t)s->n_nodes + 1, sizeof(uint64_t)) : NULL;
    bool cpu_vc = s->opts.policy == SCHED_POLICY_PAI && !j->oppo && j->total_gpus == 0;
    uint8_t *own = cpu_vc ? sched_chain_owners(s, j->vc) : NULL;
    if (guaranteed)
        explain_vc(s, j, extra, &o);
    else if (j->total_gpus > 0)
        put(&o, "%s: job needs %d task%s x %d %s, outside any VC guarantee",
            j->oppo ? "opportunistic" : "no guarantee", j->n_tasks, j->n_tasks == 1 ? "" : "s",
            j->max_task_gpus, sched_reasons_gpu_label(s, j));
    else
        put(&o, "CPU-only: job needs %d task%s", j->n_tasks, j->n_tasks == 1 ? "" : "s");
    bool all_fit = true;
    for (int r = 0; r < j->n_roles; r++) {
        const sched_task_t *first = NULL;
        int need = 0;
        for (int i = 0; i < j->n_tasks; i++)
            if (j->tasks[i].role == r && !j->tasks[i].bound)
                need++, first = first ? first : &j->tasks[i];
        if (first)
            all_fit &= explain_role(s, slot, guaranteed, extra, own, r, first, need, &o);
    }
    if (all_fit)
        all_fit = explain_within(s, slot, guaranteed, extra, own, &o);
    if (all_fit)
        put(&o, "; each role fits alone now: %s",
            j->n_roles > 1 && j->gang ? "together they may not (or the next "
                                        "scheduling pass binds it)"
                                      : "the next scheduling pass binds it");
    explain_queue(s, slot, guaranteed, all_fit, &o);
    free(extra);
    free(own);
    return PAI_OK;
}
