/*
 * sched.c - the scheduler's API entry points: the decisions a pass hands
 * out (with their arena), the scheduling pass and its dominance memo, and
 * freeing the scheduler.  Construction and nodes are in sched_nodes.c.
 * Job bookkeeping and restart are in sched_jobs.c, the pai policy in
 * sched_policy.c, refusal/wait reasons and reservation in sched_reasons.c,
 * status in sched_status.c, placement in sched_place.c, the cluster model
 * and buddy binding in sched_model.c, the HiveD config loader in
 * sched_config.c.  The policy is described in docs/scheduler.md.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "sched/sched_place.h"

/* ---- pass arena: strings and arrays handed out with decisions --------- */

struct arena {
    struct arena *next;
    size_t len, cap;
    char data[];
};

static void *arena_alloc(sched_t *s, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena *a = s->arena;
    if (!a || a->len + n > a->cap) {
        size_t cap = n > 65536 ? n : 65536;
        struct arena *na = xmalloc(sizeof(*na) + cap);
        na->next = a, na->len = 0, na->cap = cap;
        s->arena = a = na;
    }
    void *p = a->data + a->len;
    a->len += n;
    return p;
}

static void arena_reset(sched_t *s)
{
    struct arena *a = s->arena;
    while (a && a->next) {
        struct arena *nx = a->next;
        free(a);
        a = nx;
    }
    if (a)
        a->len = 0;
    s->arena = a;
}

static const char *arena_str(sched_t *s, const char *str)
{
    size_t n = strlen(str) + 1;
    char *p = arena_alloc(s, n);
    memcpy(p, str, n);
    return p;
}

void sched_job_clear(job_t *j)
{
    free(j->id);
    for (int i = 0; i < j->n_roles; i++)
        free(j->roles[i]);
    free(j->roles);
    free(j->tasks);
    free(j->gpu);
    free(j->resv);
    *j = (job_t){0};
}

void sched_free(sched_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_jobs; i++)
        sched_job_clear(&s->jobs[i]);
    for (int i = 0; i < s->n_nodes; i++) {
        free(s->nodes[i].owner);
        free(s->nodes[i].res);
        free(s->nodes[i].claim);
        free(s->nodes[i].index);
    }
    for (int i = 0; i < s->n_vcs; i++)
        free(s->vcs[i].vcells), free(s->vcs[i].gc_cells), free(s->vcs[i].dom), free(s->vcs[i].use);
    sched_status_free(s);
    sched_attempt_free(&s->at);
    sched_strmap_free(&s->node_map);
    sched_strmap_free(&s->job_map);
    arena_reset(s);
    free(s->arena);
    free(s->types), free(s->skus), free(s->cells), free(s->nodes), free(s->vcs), free(s->nfree);
    free(s->jobs), free(s->free_slots), free(s->queue), free(s->dec);
    free(s->scratch), free(s->scratch_stamp), free(s->memo), free(s->wcand);
    free(s->memo_kinds);
    free(s->tail);
    free(s->cap_total), free(s->cap_max_node);
    free(s->rw_quota), free(s->rw_dying), free(s->rw_quota_stamp);
    free(s->nf_quota), free(s->nf_quota_ver);
    free(s);
}

static sched_decision_t *new_decision(sched_t *s, sched_kind_t kind, int slot)
{
    VEC_XRESERVE(s->dec, s->cap_dec, s->n_dec + 1);
    sched_decision_t *d = &s->dec[s->n_dec];
    *d = (sched_decision_t){.kind = kind, .job_id = arena_str(s, s->jobs[slot].id)};
    if (!d->job_id)
        return NULL;
    s->n_dec++;
    s->kinds[kind]++;
    return d;
}

static pai_err_t emit_bind(sched_t *s, int slot, int first_new_mask_unused)
{
    (void)first_new_mask_unused;
    job_t *j = &s->jobs[slot];
    int n = 0;
    for (int i = 0; i < j->n_tasks; i++)
        n += j->tasks[i].node != SCHED_NONE && !j->tasks[i].bound;
    sched_jobs_commit(s, slot);
    sched_decision_t *d = new_decision(s, SCHED_BIND, slot);
    sched_task_bind_t *tb = arena_alloc(s, sizeof(*tb) * (size_t)(n ? n : 1));
    d->tasks = tb;
    d->opportunistic = j->oppo;
    /* tasks bound by this decision are those without an emitted mark */
    for (int i = 0; i < j->n_tasks; i++) {
        sched_task_t *t = &j->tasks[i];
        if (!t->bound || t->emitted)
            continue;
        t->emitted = true;
        int *gp = arena_alloc(s, sizeof(int) * (size_t)(t->gpus ? t->gpus : 1));
        for (int k = 0; k < t->gpus; k++) /* positions -> the config's device indices */
            gp[k] = sched_gpu_index(&s->nodes[t->node], j->gpu[t->gpu0 + k]);
        char cell[2 * SCHED_NAME_MAX + 2] = "";
        if (t->cell != SCHED_NONE)
            sched_cell_name(s, t->cell, cell, sizeof(cell));
        tb[d->n_tasks++] = (sched_task_bind_t){.role = arena_str(s, j->roles[t->role]),
                                               .index = t->index,
                                               .node = arena_str(s, s->nodes[t->node].name),
                                               .address = arena_str(s, s->nodes[t->node].address),
                                               .n_gpus = t->gpus,
                                               .gpus = gp,
                                               .cell = cell[0] ? arena_str(s, cell) : NULL};
    }
    return PAI_OK;
}

static pai_err_t emit_text(sched_t *s, sched_kind_t kind, int slot)
{
    sched_decision_t *d = new_decision(s, kind, slot);
    d->reason = arena_str(s, s->jobs[slot].reason);
    return PAI_OK;
}

static pai_err_t emit_preempt(sched_t *s, int slot, const attempt_t *at)
{
    sched_decision_t *d = new_decision(s, SCHED_PREEMPT, slot);
    const char **v = arena_alloc(s, sizeof(char *) * (size_t)at->n_victims);
    for (int i = 0; i < at->n_victims; i++) {
        job_t *vj = &s->jobs[at->victims[i]];
        v[i] = arena_str(s, vj->id);
        sched_jobs_set_state(s, vj, SCHED_JOB_DYING);
        vj->dying_for = slot;
    }
    d->victims = v;
    d->n_victims = (size_t)at->n_victims;
    s->preemptions += (uint64_t)at->n_victims;
    s->jobs[slot].waiting_on = at->n_victims;
    snprintf(s->jobs[slot].reason, sizeof(s->jobs[slot].reason),
             "preempting %d lower-priority or opportunistic job(s)", at->n_victims);
    d->reason = arena_str(s, s->jobs[slot].reason);
    return PAI_OK;
}

/* ---- the pass --------------------------------------------------------------- */

/* The pass's dominance memo: a job that found no place (free, lazy nor
 * preempting) decides for the jobs after it in the pass that need at least
 * as much of the same kind (VC, SKU, priority, opportunistic, gang): they
 * wait without an attempt.  A single task's CPUs and memory count too, and
 * only single-task failures decide for a single task that asks for them. */
struct memo {
    int vc, sku, prio;
    bool oppo, gang, single, doomed;
    int max_task, total, cpus;
    int64_t mem;
    int next; /* the next entry of its kind, in the order they came; -1 ends */
};

/* The memo's entries by kind (VC, SKU, priority, opportunistic, gang): an
 * open-addressed table valid for one pass (pass), so that a job's lookup
 * costs its own kind's few entries, however many kinds the queue holds.
 * When more kinds come than it holds, the pass falls back to a scan of
 * every entry (memo_full). */
#define MEMO_KINDS 128

struct memo_kind {
    uint64_t pass;
    int vc, sku, prio;
    bool oppo, gang;
    int head, tail;
};

/* The slot of the kind in the table (pass-valid or free for it), or -1
 * when the table is full. */
static int memo_kind_slot(const sched_t *s, int vc, int sku, int prio, bool oppo, bool gang)
{
    uint32_t h = (uint32_t)vc * 2654435761u ^ (uint32_t)sku * 40503u ^ (uint32_t)prio * 97u ^
                 (uint32_t)oppo << 20 ^ (uint32_t)gang << 21;
    h ^= h >> 15;
    for (int n = 0; n < MEMO_KINDS; n++) {
        int i = (int)((h + (uint32_t)n) & (MEMO_KINDS - 1));
        const struct memo_kind *k = &s->memo_kinds[i];
        if (k->pass != s->passes ||
            (k->vc == vc && k->sku == sku && k->prio == prio && k->oppo == oppo && k->gang == gang))
            return i;
    }
    return -1;
}

static bool memo_covers(const struct memo *m, const qent_t *q, bool res)
{
    return q->max_task >= m->max_task && q->total >= m->total && q->cpus >= m->cpus &&
           q->mem >= m->mem && (m->single || !res);
}

/* The entry that decides for the job of queue entry q, or NULL (vc: its VC,
 * or SCHED_NONE when the policy's domain is the cluster's); the first such
 * entry in the order they came. */
static const struct memo *memo_dominated(sched_t *s, const qent_t *q, int vc)
{
    if (!s->n_memo)
        return NULL;
    bool res = q->cpus || q->mem; /* only a single task asks for them here */
    if (s->memo_full) {
        for (int i = 0; i < s->n_memo; i++) {
            const struct memo *m = &s->memo[i];
            if (m->vc == vc && m->sku == q->sku && m->prio == q->prio && m->oppo == q->oppo &&
                m->gang == q->gang && memo_covers(m, q, res))
                return m;
        }
        return NULL;
    }
    int k = s->memo_last; /* the kind looked up last: a queue's neighbours are often alike */
    const struct memo_kind *mk = &s->memo_kinds[k];
    if (mk->pass != s->passes || mk->vc != vc || mk->sku != q->sku || mk->prio != q->prio ||
        mk->oppo != q->oppo || mk->gang != q->gang) {
        k = memo_kind_slot(s, vc, q->sku, q->prio, q->oppo, q->gang);
        if (k < 0 || s->memo_kinds[k].pass != s->passes)
            return NULL;
        s->memo_last = k;
    }
    for (int i = s->memo_kinds[k].head; i >= 0; i = s->memo[i].next)
        if (memo_covers(&s->memo[i], q, res))
            return &s->memo[i];
    return NULL;
}

static void tail_note(sched_t *s, const struct memo *m);

static void memo_add(sched_t *s, const job_t *j, int vc)
{
    VEC_XRESERVE(s->memo, s->cap_memo, (size_t)s->n_memo + 1);
    int e = s->n_memo++;
    s->memo[e] = (struct memo){vc,
                               j->sku,
                               j->prio,
                               j->oppo,
                               j->gang,
                               j->n_tasks == 1,
                               s->doomed_hit,
                               j->max_task_gpus,
                               j->total_gpus,
                               j->memo_cpus,
                               j->memo_mem,
                               -1};
    tail_note(s, &s->memo[e]);
    if (s->memo_full)
        return;
    if (!s->memo_kinds)
        s->memo_kinds = xcalloc(MEMO_KINDS, sizeof(*s->memo_kinds)); /* pass 0: none valid */
    int k = memo_kind_slot(s, vc, j->sku, j->prio, j->oppo, j->gang);
    if (k < 0) {
        s->memo_full = true; /* from now on every lookup scans the entries */
        return;
    }
    struct memo_kind *mk = &s->memo_kinds[k];
    s->memo_last = k;
    if (mk->pass != s->passes) {
        *mk = (struct memo_kind){s->passes, vc, j->sku, j->prio, j->oppo, j->gang, e, e};
        return;
    }
    s->memo[mk->tail].next = e;
    mk->tail = e;
}

/* The queue's tail that the memo may decide for as a whole: the longest
 * run of entries at the queue's end that a pass passes over once the memo
 * covers them (fast, fit known), of at most TAIL_KINDS kinds, with each
 * kind's least need (each field's minimum over the run's entries of that
 * kind; res: one of them asks for CPUs or memory).  A memo entry of a kind
 * that covers the kind's least need covers every entry of that kind in the
 * run (each needs at least as much of every field).  Once every kind is
 * covered the pass stops at the run's start (or where it is, past it)
 * instead of passing over each entry: the same decisions, since an entry
 * passed over changes nothing and the memo only grows within a pass; none
 * of the per-entry lookups (a deep queue of one kind, the server's burst:
 * ~12 ns an entry, most of a pass). */
#define TAIL_KINDS 8

struct memo_tail {
    int from, to;   /* the run: [from, to) (from == to: none) */
    int n, covered; /* its kinds, those covered by the memo */
    int stop;       /* where the pass stops: from once all are covered, else INT_MAX */
    struct {
        int vc, sku, prio;
        bool oppo, gang, res, covered;
        int max_task, total, cpus;
        int64_t mem;
    } k[TAIL_KINDS];
};

static void tail_scan(sched_t *s, unsigned nf)
{
    if (!s->tail)
        s->tail = xcalloc(1, sizeof(*s->tail));
    struct memo_tail *t = s->tail;
    t->n = t->covered = 0;
    t->stop = INT_MAX;
    /* the newest entries come last and are visited (their first visit
     * checks whether they can ever fit): the run ends before them */
    int i = s->n_queue - 1;
    while (i >= 0 && !(s->queue[i].fast && s->queue[i].nf_ver == nf))
        i--;
    t->from = t->to = i + 1;
    for (; i >= 0; i--) {
        const qent_t *q = &s->queue[i];
        if (!q->fast || q->nf_ver != nf)
            break;
        int k = 0;
        while (k < t->n &&
               !(t->k[k].vc == q->vc && t->k[k].sku == q->sku && t->k[k].prio == q->prio &&
                 t->k[k].oppo == q->oppo && t->k[k].gang == q->gang))
            k++;
        if (k == t->n) {
            if (k == TAIL_KINDS)
                break;
            t->n++;
            t->k[k].vc = q->vc, t->k[k].sku = q->sku, t->k[k].prio = q->prio;
            t->k[k].oppo = q->oppo, t->k[k].gang = q->gang, t->k[k].covered = false;
            t->k[k].res = q->cpus || q->mem;
            t->k[k].max_task = q->max_task, t->k[k].total = q->total;
            t->k[k].cpus = q->cpus, t->k[k].mem = q->mem;
        } else {
            t->k[k].res |= q->cpus || q->mem;
            if (q->max_task < t->k[k].max_task)
                t->k[k].max_task = q->max_task;
            if (q->total < t->k[k].total)
                t->k[k].total = q->total;
            if (q->cpus < t->k[k].cpus)
                t->k[k].cpus = q->cpus;
            if (q->mem < t->k[k].mem)
                t->k[k].mem = q->mem;
        }
        t->from = i;
    }
}

/* A new memo entry m: does it cover its kind's least need in the tail? */
static void tail_note(sched_t *s, const struct memo *m)
{
    struct memo_tail *t = s->tail;
    if (!t || t->stop != INT_MAX)
        return;
    for (int k = 0; k < t->n; k++) {
        if (t->k[k].covered || t->k[k].vc != m->vc || t->k[k].sku != m->sku ||
            t->k[k].prio != m->prio || t->k[k].oppo != m->oppo || t->k[k].gang != m->gang)
            continue;
        if (t->k[k].max_task >= m->max_task && t->k[k].total >= m->total &&
            t->k[k].cpus >= m->cpus && t->k[k].mem >= m->mem && (m->single || !t->k[k].res)) {
            t->k[k].covered = true;
            if (++t->covered == t->n)
                t->stop = t->from; /* the pass jumps from there (or from past it) to `to` */
        }
        return;
    }
}

/* memo_shape (sched_jobs.c), and no reservation of its own. */
static bool memo_ok(const job_t *j)
{
    return j->memo_shape && !j->n_resv;
}

/* never_fits() found it could fit with the nodes as they are (or it is
 * not waiting, when nothing refuses it). */
static bool fits_known(const sched_t *s, const job_t *j)
{
    return j->state != SCHED_JOB_WAITING || j->nf_ver == s->topo_ver + 1u;
}

static bool never_fits(sched_t *s, job_t *j)
{
    if (sched_reasons_never_fits(s, j))
        return true;
    j->nf_ver = s->topo_ver + 1u;
    return false;
}

static pai_err_t emit_wait(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    if (s->opts.quiet_waits)
        return PAI_OK;
    if (strcmp(j->reason, j->last_reason) == 0)
        return PAI_OK;
    str_copy(j->last_reason, j->reason, sizeof(j->last_reason));
    return emit_text(s, SCHED_WAIT, slot);
}

static pai_err_t bind_now(sched_t *s, int slot)
{
    job_t *j = &s->jobs[slot];
    sched_jobs_clear_reservation(s, slot);
    pai_err_t rc = emit_bind(s, slot, 0);
    if (j->state == SCHED_JOB_WAITING)
        sched_jobs_track_running(s, j, +1);
    sched_jobs_set_state(s, j, SCHED_JOB_RUNNING);
    if (!j->oppo && j->lazy && j->vc != SCHED_NONE && !j->lazy_counted) {
        s->vcs[j->vc].lazy_running++;
        j->lazy_counted = true;
    }
    j->last_reason[0] = 0;
    return rc;
}

static pai_err_t refuse(sched_t *s, int slot)
{
    s->jobs[slot].refuse = true;
    sched_jobs_clear_reservation(s, slot); /* not left to block others this pass */
    return emit_text(s, SCHED_REFUSE, slot);
}

static pai_err_t handle_pai(sched_t *s, int slot, int64_t now)
{
    job_t *j = &s->jobs[slot];
    if (j->waiting_on > 0) {
        if (!s->opts.quiet_waits) /* the text is read only by emit_wait() */
            snprintf(j->reason, sizeof(j->reason), "waiting for %d preempted job(s) to stop",
                     j->waiting_on);
        return emit_wait(s, slot);
    }
    bool guaranteed = sched_policy_uses_vc_cells(s, j);
    int mvc = j->vc;
    qent_t q = sched_jobs_qent(s, slot);
    const struct memo *m = memo_ok(j) ? memo_dominated(s, &q, mvc) : NULL;
    if (m) {
        /* a job that can never fit is refused in its first pass all the same */
        if (!fits_known(s, j) && never_fits(s, j))
            return refuse(s, slot);
        /* one task's attempt would have met the same doomed cells */
        s->doomed_hit = m->doomed && m->single && j->n_tasks == 1;
        sched_reasons_wait(s, j);
        return emit_wait(s, slot);
    }
    if (sched_policy_try_place(s, slot, MODE_FREE) ||
        (guaranteed && s->vcs[j->vc].lazy_running > 0 && sched_policy_try_lazy(s, slot)))
        return bind_now(s, slot);
    sched_policy_reset_tentative(j);
    if (guaranteed && j->state == SCHED_JOB_WAITING && sched_jobs_may_preempt(s, j) &&
        sched_policy_try_place(s, slot, MODE_PREEMPT)) {
        sched_attempt_victims(s, &s->at);
        sched_policy_reset_tentative(j);
        if (s->at.n_victims > 0)
            return emit_preempt(s, slot, &s->at);
    }
    sched_policy_reset_tentative(j);
    if (j->state == SCHED_JOB_WAITING && never_fits(s, j))
        return refuse(s, slot);
    if (guaranteed && j->state == SCHED_JOB_WAITING)
        sched_reasons_maybe_reserve(s, slot, now);
    if (memo_ok(j))
        memo_add(s, j, mvc);
    sched_reasons_wait(s, j);
    return emit_wait(s, slot);
}

static pai_err_t handle_baseline(sched_t *s, int slot, bool *blocked)
{
    job_t *j = &s->jobs[slot];
    bool fifo = s->opts.policy == SCHED_POLICY_FIFO_QUOTA;
    vc_t *vc = &s->vcs[j->vc];
    if (fifo && blocked[j->vc]) {
        if (!s->opts.quiet_waits)
            snprintf(j->reason, sizeof(j->reason), "VC %s: behind an earlier job (FIFO)", vc->name);
        return emit_wait(s, slot);
    }
    if (never_fits(s, j))
        return refuse(s, slot);
    if (fifo && j->total_gpus > 0 && vc->used_gpus + j->total_gpus > vc->quota_gpus) {
        blocked[j->vc] = true;
        if (!s->opts.quiet_waits)
            snprintf(j->reason, sizeof(j->reason), "VC %s: quota %d GPUs, %d used, job needs %d",
                     vc->name, vc->quota_gpus, vc->used_gpus, j->total_gpus);
        return emit_wait(s, slot);
    }
    int mvc = fifo ? j->vc : SCHED_NONE;
    qent_t q = sched_jobs_qent(s, slot);
    if (!(memo_ok(j) && memo_dominated(s, &q, mvc)) && sched_policy_try_place(s, slot, MODE_FREE))
        return bind_now(s, slot);
    sched_policy_reset_tentative(j);
    if (fifo)
        blocked[j->vc] = true;
    if (memo_ok(j))
        memo_add(s, j, mvc);
    sched_reasons_wait(s, j);
    return emit_wait(s, slot);
}

/* Upper bounds of the latency histograms' buckets, in seconds (+Inf last). */
static const double lat_bounds[] = {0.0001, 0.001, 0.01, 0.1, 1.0};

/* A whole pass's time (sched_schedule, the invariant check excluded). */
static void record_pass(sched_t *s, int64_t us)
{
    double sec = (double)us / 1e6;
    s->pass_count++;
    s->pass_sum += sec;
    for (size_t i = 0; i < ARRAY_LEN(lat_bounds); i++)
        if (sec <= lat_bounds[i])
            s->pass_le[i]++;
    s->pass_le[5]++;
    if (sec > s->pass_max)
        s->pass_max = sec;
}

static void record_latency(sched_t *s, int64_t us)
{
    const double *le = lat_bounds;
    double sec = (double)us / 1e6;
    s->lat_count++;
    s->lat_sum += sec;
    for (size_t i = 0; i < ARRAY_LEN(lat_bounds); i++)
        if (sec <= le[i])
            s->lat_le[i]++;
    s->lat_le[5]++;
    int b = us <= 1 ? 0 : (int)(8.0 * log2((double)us));
    s->lat_hist[b < 0 ? 0 : b > 255 ? 255 : b]++;
    if (sec > s->lat_max)
        s->lat_max = sec;
}

bool sched_job_done_queueing(const job_t *j)
{
    if (j->state == SCHED_JOB_FREE || j->refuse)
        return true;
    for (int i = 0; i < j->n_tasks; i++)
        if (!j->tasks[i].bound)
            return false;
    return true;
}

static pai_err_t handle_one(sched_t *s, int slot, int64_t now, bool *blocked)
{
    job_t *j = &s->jobs[slot];
    if (j->state == SCHED_JOB_WAITING && j->refuse)
        return emit_text(s, SCHED_REFUSE, slot);
    if (j->state == SCHED_JOB_WAITING && j->vc == SCHED_NONE)
        return PAI_OK;
    if (j->state == SCHED_JOB_DYING)
        return PAI_OK; /* a task-by-task victim being stopped takes nothing more */
    int64_t t0 = s->opts.clock_us ? s->opts.clock_us(s->opts.clock_ctx) : 0;
    s->touched_lat = false;
    s->doomed_hit = false;
    s->within_miss = 0;
    size_t n_dec = s->n_dec;
    uint64_t bind_ver = s->bind_ver, lazy = s->lazy_preemptions;
    pai_err_t rc = s->opts.policy == SCHED_POLICY_PAI ? handle_pai(s, slot, now)
                                                      : handle_baseline(s, slot, blocked);
    if (s->touched)
        sched_jobs_vc_gc(s, s->jobs[slot].vc);
    s->touched = false;
    if (s->opts.clock_us && s->touched_lat)
        record_latency(s, s->opts.clock_us(s->opts.clock_ctx) - t0);
    /* a job that only waits (quiet) and changed nothing needs no check */
    if (s->n_dec != n_dec || s->bind_ver != bind_ver || s->lazy_preemptions != lazy) {
        static const char *const what[] = {"a bind decision", "a preempt decision",
                                           "a wait decision", "a refuse decision"};
        sched_check_after(s, s->n_dec != n_dec ? what[s->dec[s->n_dec - 1].kind] : "a binding",
                          slot, true);
    }
    return rc;
}

/* Put the jobs queued since the last pass in pass order: sort them (a few)
 * and merge them into the ordered queue, which an order that never changes
 * (priority, submission time and sequence are fixed) keeps ordered: no
 * sort of the whole queue per pass.  Most often they come after all the
 * others (a burst of submissions) and nothing moves. */
static void order_queue(sched_t *s)
{
    int m = s->n_queue - s->n_sorted, k = s->n_sorted;
    if (m <= 0)
        return;
    qent_t *q = s->queue;
    qsort_r(q + k, (size_t)m, sizeof(*q), sched_jobs_queue_cmp, s);
    s->n_sorted = s->n_queue;
    if (k == 0 || sched_jobs_queue_cmp(&q[k - 1], &q[k], s) < 0)
        return;
    qent_t *tail = xmalloc(sizeof(*q) * (size_t)m);
    memcpy(tail, q + k, sizeof(*q) * (size_t)m);
    int i = k - 1, t = m - 1, o = k + m - 1; /* merge from the back */
    while (t >= 0)
        q[o--] = i >= 0 && sched_jobs_queue_cmp(&q[i], &tail[t], s) > 0 ? q[i--] : tail[t--];
    free(tail);
}

pai_err_t sched_schedule(sched_t *s, int64_t now_ms, const sched_decision_t **out, size_t *n)
{
    arena_reset(s);
    s->n_dec = 0;
    s->n_memo = 0;
    s->memo_full = false;
    s->post_pass = false;
    s->passes++;
    int64_t pass_t0 = s->opts.clock_us ? s->opts.clock_us(s->opts.clock_ctx) : 0;
    uint64_t lazy0 = s->lazy_preemptions;
    *out = NULL;
    *n = 0;
    order_queue(s);
    bool *blocked = xcalloc((size_t)s->n_vcs + 1, sizeof(bool));
    pai_err_t rc = PAI_OK;
    /* Quiet, a job the memo decides for waits with no decision, no attempt
     * and no change: it is passed over from its queue entry alone (nothing
     * to time or check; handle_pai() would do the same, less the clock and
     * the cache misses of reading its job).  Most of a deep queue, most
     * passes. */
    bool skip = s->opts.quiet_waits && s->opts.policy == SCHED_POLICY_PAI;
    unsigned nf = s->topo_ver + 1u;
    if (skip && !s->opts.memo_no_jump)
        tail_scan(s, nf);
    else if (s->tail)
        s->tail->n = 0, s->tail->stop = INT_MAX;
    int last = 0;
    int cut_from = -1, cut_to = -1; /* the run the memo decided for whole (memo_tail) */
    for (; last < s->n_queue && rc == PAI_OK; last++) {
        if (skip && s->tail && last >= s->tail->stop && last < s->tail->to) {
            cut_from = last, cut_to = s->tail->to;
            last = cut_to - 1;
            continue;
        }
        qent_t *q = &s->queue[last];
        q->seen = !(skip && q->fast && q->nf_ver == nf && memo_dominated(s, q, q->vc));
        if (!q->seen)
            continue;
        rc = handle_one(s, q->slot, now_ms, blocked);
        *q = sched_jobs_qent(s, q->slot);
        q->seen = true;
    }
    free(blocked);
    int k = 0;
    for (int i = 0; i < s->n_queue; i++) {
        if (i == cut_from) { /* the run passed over whole: unchanged, in order */
            int m = cut_to - cut_from;
            memmove(&s->queue[k], &s->queue[i], sizeof(qent_t) * (size_t)m);
            k += m;
            s->tail_passed_over += (uint64_t)m;
            i = cut_to - 1;
            continue;
        }
        qent_t *q = &s->queue[i];
        job_t *j = &s->jobs[q->slot];
        if (i < last && !q->seen) /* passed over: unchanged */
            s->queue[k++] = *q;
        else if (j->refuse && j->state == SCHED_JOB_WAITING)
            sched_jobs_free(s, q->slot);
        else if (!sched_job_done_queueing(j))
            s->queue[k++] = *q;
        else
            j->in_queue = false;
    }
    s->n_queue = s->n_sorted = k;
    /* a lazy downgrade late in the pass may have opened cells to earlier jobs */
    s->post_pass = rc == PAI_OK && s->lazy_preemptions == lazy0;
    if (s->opts.clock_us)
        record_pass(s, s->opts.clock_us(s->opts.clock_ctx) - pass_t0);
    sched_check_after(s, "a pass", SCHED_NONE, false);
    *out = s->dec;
    *n = s->n_dec;
    return rc;
}
