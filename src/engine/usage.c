/*
 * engine_usage.c - GPU use now, as plain numbers, for the metrics history
 * (history.c): cluster totals, per VC, per node and per running job.  One
 * call takes the engine lock once and copies what it needs (below); the
 * answer is built from the copies after unlocking.  Utilization
 * is what the agents report per GPU (gpus[].utilization, their metrics
 * sample): a node's is the mean of its GPUs, a job's the mean of the GPUs
 * its live tasks hold (docs/monitoring.md).
 */
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "common/util.h"
#include "sched/sched.h"
#include "engine/engine_int.h"

#define MAX_USAGE_VC_ROWS 4096

/*
 * What engine_usage copies under mu, to build the answer after unlocking:
 * at 10,000 nodes x 80,000 running tasks, building it under mu (a name
 * map, a malloc'ed name per node and job, a walk of a node's GPU list per
 * task, a sort) held the lock every sample.  Copies only: the scheduler's
 * per-node use with its names in one arena, per node its record (node
 * records are never freed before the engine, their names never change)
 * and a reference to its GPU list (a node's list is replaced whole when
 * the agent reports another, never changed in place), per live task of a
 * running job its node, GPUs and job name (in the arena).
 */
typedef struct {
    char *p;
    size_t len, cap;
} arena_t;

/* Offset of a copy of s in a (mu held: a memcpy, a doubling now and then). */
static size_t arena_put(arena_t *a, const char *s)
{
    size_t n = strlen(s) + 1;
    if (a->len + n > a->cap) {
        a->cap = a->cap ? 2 * a->cap : 4096;
        while (a->len + n > a->cap)
            a->cap *= 2;
        a->p = xrealloc(a->p, a->cap);
    }
    memcpy(a->p + a->len, s, n);
    size_t at = a->len;
    a->len += n;
    return at;
}

typedef struct {
    size_t name; /* in the arena */
    int used;
} sched_row_t;

typedef struct {
    const engine_node_t *n; /* its name only, after unlocking */
    json_t *gpus;           /* a reference */
} node_row_t;

typedef struct {
    uintptr_t job; /* the job's record: a key within one copy, never read */
    size_t name;   /* the job's name, in the arena */
    size_t node;   /* its node_row_t */
    uint64_t mask; /* the GPUs its task attempt holds */
} task_row_t;

typedef struct {
    arena_t names;
    sched_row_t *sched;
    size_t nsched;
    node_row_t *nodes;
    size_t nnodes;
    task_row_t *tasks;
    size_t ntasks;
} usage_copy_t;

/* Drop the references to the nodes' GPU lists (mu held): an agent's sync
 * replaces a node's list and drops its own reference under mu, and
 * jansson's json_decref reads the count without an atomic before its atomic
 * decrement, so every count change of a list the engine holds happens
 * under mu (a sampler's decref without it raced a sync's: TSan).  A few
 * microseconds at 10,000 nodes. */
static void copy_unref(usage_copy_t *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        json_decref(c->nodes[i].gpus);
}

static void copy_free(usage_copy_t *c)
{
    free(c->names.p);
    free(c->sched);
    free(c->nodes);
    free(c->tasks);
}

static void usage_vcs(engine_t *j, engine_usage_t *out)
{
    sched_vc_status_t *rows = xcalloc(MAX_USAGE_VC_ROWS, sizeof(*rows));
    size_t n = sched_vc_status(j->sched, rows, MAX_USAGE_VC_ROWS);
    if (n > MAX_USAGE_VC_ROWS)
        n = MAX_USAGE_VC_ROWS;
    out->vcs = xcalloc(n + 1, sizeof(*out->vcs));
    for (size_t i = 0; i < n; i++) {
        engine_gauge_t *last = out->nvcs ? &out->vcs[out->nvcs - 1] : NULL;
        if (!last || strcmp(last->name, rows[i].vc) != 0) {
            last = &out->vcs[out->nvcs++];
            last->name = xstrdup(rows[i].vc);
        }
        last->used += rows[i].used_gpus + rows[i].oppo_gpus;
        last->other += rows[i].guaranteed_gpus;
    }
    free(rows);
}

/* The copies of the nodes and their running tasks (mu held). */
static void copy_nodes(engine_t *j, usage_copy_t *c)
{
    engine_assert_locked(j);
    size_t nn = nodes_count(j->nodes), cap = nn + 1;
    sched_node_status_t *st = xcalloc(cap, sizeof(*st));
    size_t ns = sched_node_status(j->sched, st, cap);
    c->nsched = ns < cap ? ns : cap;
    c->sched = xcalloc(c->nsched + 1, sizeof(*c->sched));
    for (size_t s = 0; s < c->nsched; s++)
        c->sched[s] = (sched_row_t){arena_put(&c->names, st[s].name), st[s].used_gpus};
    free(st);
    c->nodes = xcalloc(cap, sizeof(*c->nodes));
    size_t nrefs = 0;
    for (size_t k = 0; k < nn; k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        c->nodes[c->nnodes++] = (node_row_t){n, json_incref(n->gpus)};
        nrefs += n->nrefs;
    }
    /* Running jobs: the GPUs of their live task attempts, from node refs. */
    c->tasks = xcalloc(nrefs + 1, sizeof(*c->tasks));
    for (size_t k = 0; k < nn; k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        for (size_t i = 0; i < n->nrefs; i++) {
            const engine_node_ref_t *r = &n->refs[i];
            if (r->job->state != JOB_RUNNING || !nodes_ref_live(r))
                continue;
            const lc_task_attempt_t *ta = lc_find(r->job, r->ja, r->role, r->index, r->ta);
            c->tasks[c->ntasks++] = (task_row_t){
                (uintptr_t)r->job, arena_put(&c->names, r->job->name), k, ta ? ta->gpus : 0};
        }
    }
}

/* ---- after unlocking: the answer from the copies ---- */

/* A node's reported utilization per GPU index (has: which report one). */
typedef struct {
    double util[64];
    uint64_t has;
} gpu_util_t;

static void gpu_util_of(const json_t *gpus, gpu_util_t *g)
{
    g->has = 0;
    size_t i;
    json_t *o;
    json_array_foreach(gpus, i, o)
    {
        json_int_t idx = json_integer_value(json_object_get(o, "index"));
        json_t *u = json_object_get(o, "utilization");
        if (idx >= 0 && idx < 64 && json_is_number(u)) {
            g->util[idx] = json_number_value(u);
            g->has |= 1ull << idx;
        }
    }
}

/* Sum and count of the reported utilization of the GPUs in mask. */
static double util_sum(const gpu_util_t *g, uint64_t mask, int *cnt)
{
    double sum = 0;
    *cnt = 0;
    for (uint64_t m = mask & g->has; m; m &= m - 1) {
        sum += g->util[__builtin_ctzll(m)];
        (*cnt)++;
    }
    return sum;
}

/* Mean of the "utilization" the agent reported for its GPUs; -1 when none:
 * over every reported entry, as before (an index past 63 counts too). */
static int node_util(const json_t *gpus)
{
    double sum = 0;
    int cnt = 0;
    size_t i;
    json_t *g;
    json_array_foreach(gpus, i, g)
    {
        json_t *u = json_object_get(g, "utilization");
        if (json_is_number(u)) {
            sum += json_number_value(u);
            cnt++;
        }
    }
    return cnt ? (int)(sum / cnt + 0.5) : -1;
}

static int cmp_tasks(const void *a, const void *b)
{
    const task_row_t *x = a, *y = b;
    return x->job < y->job ? -1 : x->job > y->job;
}

static void build_nodes(const usage_copy_t *c, engine_usage_t *out)
{
    out->nodes = xcalloc(c->nnodes + 1, sizeof(*out->nodes));
    /* by name, in O(nodes) */
    strmap_t *by_name = strmap_new(NULL);
    for (size_t s = 0; s < c->nsched; s++)
        if (strmap_put(by_name, c->names.p + c->sched[s].name, (void *)&c->sched[s]) != PAI_OK)
            continue; /* never: the value is not NULL */
    for (size_t k = 0; k < c->nnodes; k++) {
        engine_gauge_t *g = &out->nodes[out->nnodes++];
        g->name = xstrdup(c->nodes[k].n->name);
        const sched_row_t *s = strmap_get(by_name, g->name);
        g->used = s ? s->used : 0;
        g->other = node_util(c->nodes[k].gpus);
    }
    strmap_free(by_name);
}

static void build_jobs(usage_copy_t *c, engine_usage_t *out)
{
    /* each task's utilization, its node's list read once */
    double *sum = xcalloc(c->ntasks + 1, sizeof(*sum));
    int *cnt = xcalloc(c->ntasks + 1, sizeof(*cnt));
    gpu_util_t *gu = xcalloc(1, sizeof(*gu));
    size_t at = SIZE_MAX;
    for (size_t t = 0; t < c->ntasks; t++) {
        if (c->tasks[t].node != at)
            gpu_util_of(c->nodes[at = c->tasks[t].node].gpus, gu);
        sum[t] = util_sum(gu, c->tasks[t].mask, &cnt[t]);
        /* keep the figures with the row through the sort */
        c->tasks[t].node = t;
    }
    free(gu);
    qsort(c->tasks, c->ntasks, sizeof(*c->tasks), cmp_tasks);
    out->jobs = xcalloc(c->ntasks + 1, sizeof(*out->jobs));
    double s = 0;
    int n = 0;
    for (size_t i = 0; i < c->ntasks; i++) {
        const task_row_t *r = &c->tasks[i];
        if (i == 0 || r->job != c->tasks[i - 1].job) {
            out->jobs[out->njobs++].name = xstrdup(c->names.p + r->name);
            s = 0, n = 0;
        }
        engine_gauge_t *g = &out->jobs[out->njobs - 1];
        g->used += __builtin_popcountll(r->mask);
        s += sum[r->node];
        n += cnt[r->node];
        /* the mean over the job's GPUs that report one; -1: none does */
        g->other = n ? (int)(s / n + 0.5) : -1;
    }
    free(sum);
    free(cnt);
}

void engine_usage(engine_t *j, engine_usage_t *out)
{
    memset(out, 0, sizeof(*out));
    usage_copy_t c = {0};
    engine_lock(j);
    sched_summary_t s;
    sched_summary(j->sched, &s);
    out->gpus_total = s.gpus;
    out->gpus_used = s.used_gpus;
    usage_vcs(j, out);
    copy_nodes(j, &c);
    engine_unlock(j);
    if (j->ops.list_unlocked) /* a bench's mark: the locked part is over */
        j->ops.list_unlocked(j->ops.ud);
    build_nodes(&c, out);
    build_jobs(&c, out);
    engine_lock(j);
    copy_unref(&c);
    engine_unlock(j);
    copy_free(&c);
}

static void gauges_free(engine_gauge_t *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(g[i].name);
    free(g);
}

void engine_usage_free(engine_usage_t *u)
{
    gauges_free(u->vcs, u->nvcs);
    gauges_free(u->nodes, u->nnodes);
    gauges_free(u->jobs, u->njobs);
    memset(u, 0, sizeof(*u));
}
