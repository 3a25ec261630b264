/*
 * sim_random.c - randomised testing of the scheduler: `pai sim --random SEED
 * --steps N [--check] [--emit FILE]`, the seeded unit test
 * (tests/unit/test_sched_random.c) and the libFuzzer target
 * (fuzz/fuzz_sched.c) share this driver.
 *
 * From a byte source (a seeded PRNG, or the fuzzer's input) it generates a
 * HiveD configuration (1-3 chains of 1-3 top cells; GPU blocks below the
 * node, racks and pools above it; 1-3 VCs owning cells at any level, some
 * pinned, down to a block or one GPU of a node (cells below node level);
 * free cells left for opportunistic work) and a
 * sequence of events: submit (priorities -1..1000, gangs and task-by-task
 * jobs, several roles, SKUs, pinned cells, affinity groups, lazy
 * preemption), scheduling passes, finish, stop, the victims of a preemption
 * going away, node bad/good, and a restart that rebuilds the scheduler and
 * restores the running jobs (keeping which ran opportunistic, as a server
 * would).  One run in eight uses a baseline policy.  It keeps the server's view (which GPUs each
 * running job holds) and fails when a BIND hands out a GPU that a running job
 * holds, when a restore is refused, or when the scheduler's invariant checker
 * (opts.check) reports a violation.  The sequence is written as a scenario
 * (tests/sched/README.md) so that a failure becomes a file in tests/sched/.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "sim/sim.h"

#define R_MAX_JOBS  48
#define R_MAX_ROLES 2
#define R_MAX_TASKS 8
#define R_MAX_NODES 48
#define R_MAX_CELLS 128
#define R_MAX_PINS  8

typedef struct {
    uint64_t state;
    const uint8_t *data; /* fuzzer input, or NULL: xorshift from state */
    size_t len, pos;
} rng_t;

static unsigned rnd(rng_t *r, unsigned n)
{
    if (n <= 1)
        return 0;
    if (r->data) {
        unsigned v = r->pos < r->len ? r->data[r->pos] : 0;
        r->pos++;
        return v % n;
    }
    r->state ^= r->state << 13;
    r->state ^= r->state >> 7;
    r->state ^= r->state << 17;
    return (unsigned)((r->state >> 11) % n);
}

typedef enum { J_NONE, J_WAITING, J_RUNNING, J_DYING } rjob_state_t;

typedef struct {
    char id[16], vc[16];
    char role_names[R_MAX_ROLES][12], skus[R_MAX_ROLES][16], pins[R_MAX_ROLES][16];
    char groups[R_MAX_ROLES][12], withins[R_MAX_ROLES][24];
    sched_role_t roles[R_MAX_ROLES];
    sched_request_t req;
    rjob_state_t state;
    bool oppo; /* bound outside its VC's guarantee (as a BIND or a restore said) */
    sched_alloc_t allocs[R_MAX_TASKS];
    char alloc_roles[R_MAX_TASKS][8];
    char alloc_cells[R_MAX_TASKS][64]; /* the BIND's cell, refreshed after restores */
    int alloc_gpus[R_MAX_TASKS][SCHED_MAX_GPUS_PER_NODE];
    int alloc_node[R_MAX_TASKS];
    size_t n_allocs;
} rjob_t;

typedef struct {
    rng_t rng;
    buf_t cfg, scen;
    bool emit_ok;
    sched_t *s;
    sched_opts_t opts;
    /* the generated cluster */
    char skus[2][16];
    int n_skus;
    char types[16][24]; /* cell types at node level and below it and above (withinOneCell) */
    int n_types;
    char nodes[R_MAX_NODES][16]; /* machines */
    int node_gpus[R_MAX_NODES];
    int node_chain[R_MAX_NODES]; /* the chain of its first cell; -1 once it hosts two */
    int n_nodes;
    bool bad[R_MAX_NODES];
    char vcs[3][16];
    int n_vcs;
    char pins[R_MAX_PINS][16];
    int pin_vc[R_MAX_PINS];
    int n_pins;
    /* the server's view */
    rjob_t jobs[R_MAX_JOBS];
    int next_id;
    int owner[R_MAX_NODES][SCHED_MAX_GPUS_PER_NODE]; /* job index + 1, 0: free */
    int64_t now;
    char err[1024];
} rand_t;

static void emit(rand_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(rand_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (buf_vprintf(&r->scen, fmt, ap) != PAI_OK)
        r->emit_ok = false;
    va_end(ap);
}

static void cfg(rand_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cfg(rand_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (buf_vprintf(&r->cfg, fmt, ap) != PAI_OK)
        r->emit_ok = false;
    va_end(ap);
}

static bool failf(rand_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool failf(rand_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    return false;
}

/* ---- the configuration ---------------------------------------------------- */

typedef struct {
    char names[5][24]; /* type names top down: [0] the chain ... node, block */
    int child_n[5];    /* children of each */
    int levels;        /* types above the SKU */
    int node;          /* index of the node-level type */
    int sku;
} chain_t;

static void gen_chain(rand_t *r, chain_t *c, int k)
{
    static const int gpn[] = {1, 2, 4, 8};
    c->sku = (int)rnd(&r->rng, (unsigned)r->n_skus);
    int gpus = gpn[rnd(&r->rng, 4)];
    bool block = gpus >= 4 && rnd(&r->rng, 2);
    int above = (int)rnd(&r->rng, 3); /* 0: node is the top, 1: rack, 2: pool of racks */
    int i = 0;
    if (above == 2)
        snprintf(c->names[i], sizeof(c->names[i]), "C%d-POOL", k),
            c->child_n[i++] = 2 + (int)rnd(&r->rng, 2);
    if (above >= 1)
        snprintf(c->names[i], sizeof(c->names[i]), "C%d-RACK", k),
            c->child_n[i++] = 2 + (int)rnd(&r->rng, 2);
    c->node = i;
    snprintf(c->names[i], sizeof(c->names[i]), "C%d-NODE", k);
    c->child_n[i++] = block ? 2 : gpus;
    if (block)
        snprintf(c->names[i], sizeof(c->names[i]), "C%d-BLOCK", k), c->child_n[i++] = gpus / 2;
    c->levels = i;
    for (int t = 0; t < i && r->n_types < 16; t++)
        str_copy(r->types[r->n_types++], c->names[t], sizeof(r->types[0]));
    cfg(r, "    %s: {childCellType: %s, childCellNumber: %d, isNodeLevel: true}\n",
        c->names[c->node], c->node + 1 < i ? c->names[c->node + 1] : r->skus[c->sku],
        c->child_n[c->node]);
    if (block)
        cfg(r, "    %s: {childCellType: %s, childCellNumber: %d}\n", c->names[c->node + 1],
            r->skus[c->sku], gpus / 2);
    for (int t = c->node - 1; t >= 0; t--)
        cfg(r, "    %s: {childCellType: %s, childCellNumber: %d}\n", c->names[t], c->names[t + 1],
            c->child_n[t]);
}

typedef struct {
    int vc, chain, level; /* owner VC (-1: free), chain, type index in the chain */
    int pin;              /* pinned id index or -1 */
} own_t;

typedef struct {
    own_t own[R_MAX_CELLS];
    int n;
} owns_t;

/* The GPUs below a node cell of chain c, their device indices from base on:
 * shuffled (explicit indices: the scheduler keeps the topology order and
 * answers device indices) or, base 0, in order and left implicit.  pin[]
 * names the pinned id index of each block (with blocks) or GPU, -1 none:
 * pinned cells below node level. */
static void gen_gpus(rand_t *r, const chain_t *c, int gpus, int base, int indent, const int *pin)
{
    int idx[SCHED_MAX_GPUS_PER_NODE];
    for (int i = 0; i < gpus; i++)
        idx[i] = base + i;
    bool shuffle = rnd(&r->rng, 3) == 0, pinned = false;
    for (int i = 0; i < gpus; i++)
        pinned |= pin[i] >= 0;
    if (!shuffle && base == 0 && !pinned)
        return;
    for (int i = gpus - 1; shuffle && i > 0; i--) {
        int k = (int)rnd(&r->rng, (unsigned)i + 1), t = idx[i];
        idx[i] = idx[k], idx[k] = t;
    }
    bool block = c->node + 1 < c->levels;
    int per = block ? c->child_n[c->node + 1] : gpus;
    cfg(r, "%*s  cellChildren:\n", indent, "");
    for (int b = 0; b < gpus / per; b++) {
        if (block && pin[b] >= 0)
            cfg(r, "%*s  - pinnedCellId: %s\n%*s    cellChildren:\n", indent, "", r->pins[pin[b]],
                indent, "");
        else if (block)
            cfg(r, "%*s  - cellChildren:\n", indent, "");
        for (int i = 0; i < per; i++) {
            int p = block ? -1 : pin[i];
            cfg(r, "%*s  %s- {cellAddress: %d%s%s}\n", indent, "", block ? "  " : "",
                idx[b * per + i], p >= 0 ? ", pinnedCellId: " : "", p >= 0 ? r->pins[p] : "");
        }
    }
}

/* A node cell no VC owns: now and then its blocks (or GPUs) go to VCs as
 * virtual cells below node level, some pinned (pin[] as gen_gpus). */
static void gen_split_node(rand_t *r, const chain_t *c, int ci, int gpus, owns_t *o, int *pin)
{
    bool block = c->node + 1 < c->levels;
    int level = block && rnd(&r->rng, 2) ? c->node + 1 : c->levels; /* a block, or one GPU */
    int size = level == c->levels ? 1 : c->child_n[c->node + 1];
    for (int k = 0; k < gpus / size && o->n < R_MAX_CELLS; k++) {
        int take = (int)rnd(&r->rng, (unsigned)r->n_vcs + 1) - 1;
        if (take < 0)
            continue;
        int p = -1;
        /* pins as gen_gpus writes them: per block with blocks, else per GPU */
        if (r->n_pins < R_MAX_PINS && rnd(&r->rng, 4) == 0 && (size > 1) == block) {
            p = r->n_pins;
            snprintf(r->pins[p], sizeof(r->pins[p]), "pin%d", p);
            r->pin_vc[r->n_pins++] = take;
            pin[k] = p;
        }
        o->own[o->n++] = (own_t){take, ci, level, p};
    }
}

/* One physical cell of chain c at type index t, and its owner choice. */
static void gen_cell(rand_t *r, const chain_t *c, int ci, int t, int indent, owns_t *o, bool owned)
{
    bool node = t == c->node;
    if (node && r->n_nodes == R_MAX_NODES)
        return;
    int gpus = 1;
    for (int k = c->node; k < c->levels; k++)
        gpus *= c->child_n[k];
    cfg(r, "%*s- ", indent, "");
    bool mine = !owned && o->n < R_MAX_CELLS && rnd(&r->rng, node ? 3 : 4) != 0;
    int take = mine ? (int)rnd(&r->rng, (unsigned)r->n_vcs + 2) : -1; /* >= n_vcs: split */
    if (take >= r->n_vcs)
        take = node ? (int)rnd(&r->rng, (unsigned)r->n_vcs + 1) - 1 : -2;
    int pin = -1;
    if (take >= 0 && r->n_pins < R_MAX_PINS && rnd(&r->rng, 6) == 0) {
        pin = r->n_pins;
        snprintf(r->pins[pin], sizeof(r->pins[pin]), "pin%d", pin);
        r->pin_vc[r->n_pins++] = take;
        cfg(r, "pinnedCellId: %s\n%*s  ", r->pins[pin], indent, "");
    }
    if (take >= 0)
        o->own[o->n++] = (own_t){take, ci, t, pin};
    if (t == 0)
        cfg(r, "cellType: %s\n%*s  ", c->names[0], indent, "");
    if (node) {
        int m = r->n_nodes; /* now and then a machine of another chain hosts it too */
        for (int k = 0; k < r->n_nodes && rnd(&r->rng, 8) == 0; k++)
            if (r->node_chain[k] >= 0 && r->node_chain[k] != ci &&
                r->node_gpus[k] + gpus <= SCHED_MAX_GPUS_PER_NODE) {
                m = k;
                break;
            }
        int base = m < r->n_nodes ? r->node_gpus[m] : 0;
        if (m == r->n_nodes) {
            snprintf(r->nodes[m], sizeof(r->nodes[0]), "n%d", m);
            r->node_chain[m] = ci;
            r->n_nodes++;
        } else {
            r->node_chain[m] = -1;
        }
        r->node_gpus[m] += gpus;
        cfg(r, "cellAddress: %s\n", r->nodes[m]);
        int sub_pin[SCHED_MAX_GPUS_PER_NODE];
        for (int k = 0; k < gpus; k++)
            sub_pin[k] = -1;
        if (take == -1 && !owned && gpus > 1 && rnd(&r->rng, 3) == 0)
            gen_split_node(r, c, ci, gpus, o, sub_pin);
        gen_gpus(r, c, gpus, base, indent, sub_pin);
        return;
    }
    cfg(r, "cellChildren:\n");
    for (int k = 0; k < c->child_n[t]; k++)
        gen_cell(r, c, ci, t + 1, indent + 2, o, owned || take != -2);
}

static void gen_vcs(rand_t *r, const chain_t *ch, const owns_t *o)
{
    cfg(r, "virtualClusters:\n");
    for (int v = 0; v < r->n_vcs; v++) {
        cfg(r, "  %s:\n    virtualCells:\n", r->vcs[v]);
        bool any = false;
        for (int i = 0; i < o->n; i++) {
            const own_t *w = &o->own[i];
            if (w->vc != v || w->pin >= 0)
                continue;
            char path[128] = "";
            for (int t = 0; t <= w->level; t++) { /* below the last type: the SKU (a GPU) */
                size_t len = strlen(path);
                snprintf(path + len, sizeof(path) - len, "%s%s", t ? "." : "",
                         t < ch[w->chain].levels ? ch[w->chain].names[t]
                                                 : r->skus[ch[w->chain].sku]);
            }
            cfg(r, "    - {cellType: %s, cellNumber: 1}\n", path);
            any = true;
        }
        if (!any)
            cfg(r, "    - {cellType: %s, cellNumber: 0}\n", ch[0].names[0]);
        bool pins = false;
        for (int i = 0; i < o->n; i++)
            if (o->own[i].vc == v && o->own[i].pin >= 0) {
                if (!pins)
                    cfg(r, "    pinnedCells:\n");
                pins = true;
                cfg(r, "    - {pinnedCellId: %s}\n", r->pins[o->own[i].pin]);
            }
    }
}

static void gen_config(rand_t *r)
{
    static const char *const skus[] = {"K80", "V100"};
    r->n_skus = 1 + (int)rnd(&r->rng, 2);
    for (int i = 0; i < r->n_skus; i++)
        str_copy(r->skus[i], skus[i], sizeof(r->skus[i]));
    r->n_vcs = 1 + (int)rnd(&r->rng, 3);
    for (int v = 0; v < r->n_vcs; v++)
        snprintf(r->vcs[v], sizeof(r->vcs[v]), "vc%d", v);
    cfg(r, "physicalCluster:\n  skuTypes:\n");
    for (int i = 0; i < r->n_skus; i++)
        cfg(r, "    %s: {gpu: 1, cpu: 4, memory: 8192Mi}\n", r->skus[i]);
    cfg(r, "  cellTypes:\n");
    chain_t ch[3];
    int n_ch = 1 + (int)rnd(&r->rng, 3);
    for (int k = 0; k < n_ch; k++)
        gen_chain(r, &ch[k], k);
    cfg(r, "  physicalCells:\n");
    owns_t *o = xcalloc(1, sizeof(*o));
    for (int k = 0; k < n_ch; k++) {
        int per_top = 1; /* nodes in one top cell */
        for (int t = 0; t < ch[k].node; t++)
            per_top *= ch[k].child_n[t];
        for (int top = 1 + (int)rnd(&r->rng, 2); top > 0; top--)
            if (r->n_nodes + per_top <= R_MAX_NODES)
                gen_cell(r, &ch[k], k, 0, 2, o, false);
    }
    gen_vcs(r, ch, o);
    free(o);
}

/* ---- the server's view ------------------------------------------------------- */

static int node_index(const rand_t *r, const char *name)
{
    for (int i = 0; i < r->n_nodes; i++)
        if (strcmp(r->nodes[i], name) == 0)
            return i;
    return -1;
}

static rjob_t *find_job(rand_t *r, const char *id)
{
    for (int i = 0; i < R_MAX_JOBS; i++)
        if (r->jobs[i].state != J_NONE && strcmp(r->jobs[i].id, id) == 0)
            return &r->jobs[i];
    return NULL;
}

static void drop_job(rand_t *r, rjob_t *j)
{
    for (size_t k = 0; k < j->n_allocs; k++)
        for (int g = 0; g < j->allocs[k].n_gpus; g++)
            r->owner[j->alloc_node[k]][j->alloc_gpus[k][g]] = 0;
    j->n_allocs = 0;
    j->state = J_NONE;
}

static bool record_bind(rand_t *r, const sched_decision_t *d)
{
    rjob_t *j = find_job(r, d->job_id);
    if (!j)
        return failf(r, "BIND for unknown job %s", d->job_id);
    int ji = (int)(j - r->jobs) + 1;
    for (size_t i = 0; i < d->n_tasks; i++) {
        const sched_task_bind_t *t = &d->tasks[i];
        int n = node_index(r, t->node);
        if (n < 0 || j->n_allocs == R_MAX_TASKS)
            return failf(r, "BIND of %s names node %s", d->job_id, t->node);
        if (r->bad[n])
            return failf(r, "BIND of %s on unhealthy node %s", d->job_id, t->node);
        for (int g = 0; g < t->n_gpus; g++) {
            int gi = t->gpus[g];
            if (gi < 0 || gi >= r->node_gpus[n])
                return failf(r, "BIND of %s: GPU %d of %s out of range", d->job_id, gi, t->node);
            if (r->owner[n][gi])
                return failf(r, "BIND of %s: GPU %d of %s is held by running job %s", d->job_id, gi,
                             t->node, r->jobs[r->owner[n][gi] - 1].id);
            r->owner[n][gi] = ji;
        }
        size_t k = j->n_allocs++;
        str_copy(j->alloc_roles[k], t->role, sizeof(j->alloc_roles[k]));
        memcpy(j->alloc_gpus[k], t->gpus, sizeof(int) * (size_t)t->n_gpus);
        j->alloc_node[k] = n;
        str_copy(j->alloc_cells[k], t->cell ? t->cell : "", sizeof(j->alloc_cells[k]));
        j->allocs[k] = (sched_alloc_t){.role = j->alloc_roles[k],
                                       .index = t->index,
                                       .node = r->nodes[n],
                                       .n_gpus = t->n_gpus,
                                       .gpus = j->alloc_gpus[k],
                                       .cell = j->alloc_cells[k]};
    }
    if (j->state == J_WAITING)
        j->state = J_RUNNING, j->oppo = d->opportunistic;
    return true;
}

/* ---- events ------------------------------------------------------------------- */

static int pick_job(rand_t *r, rjob_state_t st)
{
    int c[R_MAX_JOBS], n = 0;
    for (int i = 0; i < R_MAX_JOBS; i++)
        if (r->jobs[i].state == st)
            c[n++] = i;
    return n ? c[rnd(&r->rng, (unsigned)n)] : -1;
}

static void fill_role(rand_t *r, rjob_t *j, int k, int vc)
{
    static const int gp[] = {0, 1, 1, 2, 4, 8, 16};
    snprintf(j->role_names[k], sizeof(j->role_names[k]), "r%d", k);
    j->skus[k][0] = j->pins[k][0] = j->groups[k][0] = j->withins[k][0] = 0;
    if (rnd(&r->rng, 4) == 0)
        str_copy(j->skus[k], r->skus[rnd(&r->rng, (unsigned)r->n_skus)], sizeof(j->skus[k]));
    for (int p = 0; p < r->n_pins; p++)
        if (r->pin_vc[p] == vc && rnd(&r->rng, 3) == 0)
            str_copy(j->pins[k], r->pins[p], sizeof(j->pins[k]));
    if (rnd(&r->rng, 4) == 0)
        snprintf(j->groups[k], sizeof(j->groups[k]), "g%u", rnd(&r->rng, 2));
    if (r->n_types && rnd(&r->rng, 6) == 0)
        str_copy(j->withins[k], r->types[rnd(&r->rng, (unsigned)r->n_types)],
                 sizeof(j->withins[k]));
    j->roles[k] = (sched_role_t){.name = j->role_names[k],
                                 .instances = 1 + (int)rnd(&r->rng, 3),
                                 .gpus = gp[rnd(&r->rng, 7)],
                                 .cpus = rnd(&r->rng, 4) == 0 ? 2 : 0,
                                 .sku = j->skus[k],
                                 .pinned_cell = j->pins[k],
                                 .affinity_group = j->groups[k],
                                 .within_cell = j->withins[k]};
}

static void emit_submit(rand_t *r, const rjob_t *j)
{
    emit(r, "  - {op: submit, job: %s, vc: %s, prio: %d, gang: %s, lazy: %s, at: %lld, roles: [",
         j->id, j->vc, j->req.priority, j->req.gang ? "true" : "false",
         j->req.lazy_preempt ? "true" : "false", (long long)j->req.submit_ms);
    for (size_t k = 0; k < j->req.n_roles; k++) {
        const sched_role_t *ro = &j->roles[k];
        emit(r, "%s{name: %s, tasks: %d, gpus: %d, cpus: %d", k ? ", " : "", ro->name,
             ro->instances, ro->gpus, ro->cpus);
        if (ro->sku[0])
            emit(r, ", sku: %s", ro->sku);
        if (ro->pinned_cell[0])
            emit(r, ", pinned: %s", ro->pinned_cell);
        if (ro->affinity_group[0])
            emit(r, ", group: %s", ro->affinity_group);
        if (ro->within_cell[0])
            emit(r, ", within: %s", ro->within_cell);
        emit(r, "}");
    }
    emit(r, "]}\n");
}

static bool ev_submit(rand_t *r)
{
    static const int prios[] = {-1, 0, 10, 10, 100, 120, 1000};
    int i = pick_job(r, J_NONE);
    if (i < 0)
        return true;
    rjob_t *j = &r->jobs[i];
    *j = (rjob_t){0};
    snprintf(j->id, sizeof(j->id), "j%d", r->next_id++);
    int vc = (int)rnd(&r->rng, (unsigned)r->n_vcs);
    str_copy(j->vc, r->vcs[vc], sizeof(j->vc));
    size_t nr = 1 + rnd(&r->rng, R_MAX_ROLES);
    for (size_t k = 0; k < nr; k++)
        fill_role(r, j, (int)k, vc);
    j->req = (sched_request_t){.job_id = j->id,
                               .vc = j->vc,
                               .priority = prios[rnd(&r->rng, 7)],
                               .gang = rnd(&r->rng, 5) != 0,
                               .lazy_preempt = rnd(&r->rng, 2) == 0,
                               .submit_ms = r->now,
                               .roles = j->roles,
                               .n_roles = nr};
    emit_submit(r, j);
    char err[256];
    if (sched_submit(r->s, &j->req, err, sizeof(err)) != PAI_OK)
        return failf(r, "submit %s refused: %s", j->id, err);
    j->state = J_WAITING;
    return true;
}

static bool ev_schedule(rand_t *r)
{
    r->now += 1000 * (1 + rnd(&r->rng, 300));
    emit(r, "  - {op: schedule, at: %lld}\n", (long long)r->now);
    const sched_decision_t *d;
    size_t n;
    if (sched_schedule(r->s, r->now, &d, &n) != PAI_OK)
        return failf(r, "sched_schedule failed");
    for (size_t i = 0; i < n; i++) {
        rjob_t *j = find_job(r, d[i].job_id);
        if (d[i].kind == SCHED_BIND && !record_bind(r, &d[i]))
            return false;
        if (d[i].kind == SCHED_REFUSE && j)
            drop_job(r, j);
        for (size_t k = 0; d[i].kind == SCHED_PREEMPT && k < d[i].n_victims; k++) {
            rjob_t *v = find_job(r, d[i].victims[k]);
            if (!v || (v->state != J_RUNNING && v->state != J_DYING))
                return failf(r, "PREEMPT names %s, which does not run", d[i].victims[k]);
            v->state = J_DYING;
        }
    }
    return true;
}

static bool ev_release(rand_t *r, rjob_state_t st)
{
    int i = pick_job(r, st);
    if (i < 0)
        return true;
    rjob_t *j = &r->jobs[i];
    emit(r, "  - {op: release, job: %s}\n", j->id);
    if (sched_release(r->s, j->id) != PAI_OK)
        return failf(r, "release %s refused", j->id);
    drop_job(r, j);
    return true;
}

static bool ev_cancel(rand_t *r)
{
    int i = pick_job(r, J_WAITING);
    if (i < 0)
        return true;
    rjob_t *j = &r->jobs[i];
    emit(r, "  - {op: cancel, job: %s}\n", j->id);
    if (sched_cancel(r->s, j->id) != PAI_OK)
        return failf(r, "cancel %s refused", j->id);
    drop_job(r, j);
    return true;
}

static bool ev_health(rand_t *r)
{
    int n = (int)rnd(&r->rng, (unsigned)r->n_nodes);
    r->bad[n] = !r->bad[n];
    emit(r, "  - {op: health, node: %s, healthy: %s}\n", r->nodes[n], r->bad[n] ? "false" : "true");
    if (sched_node_set_health(r->s, r->nodes[n], !r->bad[n]) != PAI_OK)
        return failf(r, "node %s unknown", r->nodes[n]);
    return true;
}

static bool build(rand_t *r)
{
    char err[512];
    if (sched_new_config(buf_str(&r->cfg), r->cfg.len, &r->opts, &r->s, err, sizeof(err)) != PAI_OK)
        return failf(r, "generated config refused: %s", err);
    for (int i = 0; i < r->n_nodes; i++)
        if (r->bad[i] && sched_node_set_health(r->s, r->nodes[i], false) != PAI_OK)
            return failf(r, "node %s unknown", r->nodes[i]);
    return true;
}

/* After a restart with the same configuration every guaranteed task is in
 * the cell it was in before (the recorded bindings, restored exactly). */
static bool same_cells(rand_t *r, const rjob_t *j, char (*before)[64])
{
    for (size_t k = 0; k < j->n_allocs; k++) {
        char now[64];
        sched_task_cell(r->s, j->id, j->allocs[k].role, j->allocs[k].index, now, sizeof(now));
        if (strcmp(now, before[k]) != 0)
            return failf(r, "restore of %s: task %s/%d in cell '%s', was in '%s'", j->id,
                         j->allocs[k].role, j->allocs[k].index, now, before[k]);
    }
    return true;
}

static bool restart_with(rand_t *r, char (*before)[R_MAX_TASKS][64])
{
    sched_free(r->s);
    r->s = NULL;
    if (!build(r))
        return false;
    for (int i = 0; i < R_MAX_JOBS; i++) {
        rjob_t *j = &r->jobs[i];
        char err[256];
        if (j->state == J_RUNNING || j->state == J_DYING) {
            bool down;
            if (sched_restore(r->s, &j->req, j->allocs, j->n_allocs, &down) != PAI_OK)
                return failf(r, "restore of %s refused", j->id);
            /* the same configuration: a guaranteed job stays guaranteed */
            if (down && !j->req.opportunistic && j->req.priority >= 0)
                return failf(r, "restore of %s with the same configuration downgraded it", j->id);
            j->oppo |= down;
            j->state = J_RUNNING;
        } else if (j->state == J_WAITING &&
                   sched_submit(r->s, &j->req, err, sizeof(err)) != PAI_OK) {
            return failf(r, "resubmit of %s refused: %s", j->id, err);
        }
    }
    for (int i = 0; i < R_MAX_JOBS; i++) { /* ... in the very cells it had */
        rjob_t *j = &r->jobs[i];
        if (j->state == J_RUNNING && !same_cells(r, j, before[i]))
            return false;
        for (size_t k = 0; j->state == J_RUNNING && k < j->n_allocs; k++)
            str_copy(j->alloc_cells[k], before[i][k], sizeof(j->alloc_cells[k]));
    }
    return true;
}

static bool ev_restart(rand_t *r)
{
    emit(r, "  - {op: restart}\n");
    char(*before)[R_MAX_TASKS][64] = xcalloc(R_MAX_JOBS, sizeof(*before));
    for (int i = 0; i < R_MAX_JOBS; i++) { /* what a server keeps for each running job */
        r->jobs[i].req.opportunistic =
            r->jobs[i].state != J_NONE && sched_job_opportunistic(r->s, r->jobs[i].id);
        for (size_t k = 0; r->jobs[i].state != J_NONE && k < r->jobs[i].n_allocs; k++)
            sched_task_cell(r->s, r->jobs[i].id, r->jobs[i].allocs[k].role,
                            r->jobs[i].allocs[k].index, before[i][k], sizeof(before[i][k]));
    }
    bool ok = restart_with(r, before);
    free(before);
    return ok;
}

static bool step(rand_t *r)
{
    unsigned e = rnd(&r->rng, 100);
    if (e < 35)
        return ev_submit(r);
    if (e < 65)
        return ev_schedule(r);
    if (e < 75)
        return ev_release(r, J_RUNNING);
    if (e < 85)
        return ev_release(r, J_DYING);
    if (e < 89)
        return ev_cancel(r);
    if (e < 97)
        return ev_health(r);
    return ev_restart(r);
}

static bool check_now(rand_t *r)
{
    const char *first;
    if (sched_check_failures(r->s, &first) > 0)
        return failf(r, "invariant violated %s", first);
    sched_violation_t v[1];
    if (sched_check(r->s, v, 1) > 0)
        return failf(r, "invariant violated: %s", v[0].what);
    return true;
}

/* ---- entry points ---------------------------------------------------------------- */

static int run(rand_t *r, int steps, const char *name, char *why, size_t whylen)
{
    buf_init(&r->cfg, PAI_MAX_CONFIG_FILE);
    buf_init(&r->scen, 4u << 20);
    r->emit_ok = true;
    r->opts = (sched_opts_t){.assume_healthy = true, .check = true};
    gen_config(r);
    unsigned p = rnd(&r->rng, 16); /* the baselines now and then: their bookkeeping */
    r->opts.policy = p == 0   ? SCHED_POLICY_FIFO_QUOTA
                     : p == 1 ? SCHED_POLICY_FIRST_FIT
                              : SCHED_POLICY_PAI;
    /* half the pai runs as the server runs it: no wait reasons, and a job
     * the pass's memo decides for passed over from its queue entry */
    r->opts.quiet_waits = p >= 2 && p % 2;
    bool ok = r->emit_ok && build(r);
    int i = 0;
    for (; ok && i < steps; i++)
        ok = step(r) && check_now(r);
    if (!ok && why && whylen)
        snprintf(why, whylen, "%s: step %d: %s", name, i, r->err);
    sched_free(r->s);
    r->s = NULL;
    return ok ? 0 : 1;
}

static void write_scenario(rand_t *r, const char *path, const char *why)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(
        f, "# Random: %s\n# (found by pai sim --random; replayed leniently: the checker decides)\n",
        why);
    fprintf(f, "options: {lenient: true, policy: %s%s}\ncluster:\n  hived: |\n",
            sim_policy_name(r->opts.policy), r->opts.quiet_waits ? ", quiet: true" : "");
    const char *c = buf_str(&r->cfg);
    while (*c) {
        const char *nl = strchr(c, '\n');
        size_t len = nl ? (size_t)(nl - c) : strlen(c);
        fprintf(f, "    %.*s\n", (int)len, c);
        c += len + (nl != NULL);
    }
    fprintf(f, "steps:\n%s", buf_str(&r->scen));
    fclose(f);
}

int sim_random_run(uint64_t seed, int steps, const char *emit_path, char *why, size_t whylen)
{
    rand_t *r = xcalloc(1, sizeof(*r));
    r->rng.state = seed * 2654435761u + 0x9E3779B97F4A7C15ull;
    char name[32];
    snprintf(name, sizeof(name), "seed %llu", (unsigned long long)seed);
    char buf[1200];
    int rc = run(r, steps, name, buf, sizeof(buf));
    if (why && whylen)
        str_copy(why, rc ? buf : "", whylen);
    if (rc && emit_path)
        write_scenario(r, emit_path, buf);
    buf_free(&r->cfg);
    buf_free(&r->scen);
    free(r);
    return rc;
}

int sim_random_bytes(const uint8_t *data, size_t len, int steps, char *why, size_t whylen)
{
    rand_t *r = xcalloc(1, sizeof(*r));
    r->rng = (rng_t){.data = data, .len = len};
    int rc = run(r, steps, "fuzz input", why, whylen);
    buf_free(&r->cfg);
    buf_free(&r->scen);
    free(r);
    return rc;
}
