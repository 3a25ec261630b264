/*
 * engine_usage.c - GPU use now, as plain numbers, for the metrics history
 * (history.c): cluster totals, per VC, per node and per running job.  One
 * call takes the engine lock once and copies what it needs.  Utilization
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

typedef struct {
    const lc_job_t *job;
    int gpus;
    double util_sum; /* utilization the node reported for those GPUs */
    int util_n;      /* how many of them reported one */
} job_gpus_t;

static int cmp_job_gpus(const void *a, const void *b)
{
    const job_gpus_t *x = a, *y = b;
    return x->job < y->job ? -1 : x->job > y->job;
}

/* Mean of the "utilization" the agent reported for its GPUs; -1 when none. */
static int node_util(const engine_node_t *n)
{
    double sum = 0;
    int cnt = 0;
    size_t i;
    json_t *g;
    json_array_foreach(n->gpus, i, g)
    {
        json_t *u = json_object_get(g, "utilization");
        if (json_is_number(u)) {
            sum += json_number_value(u);
            cnt++;
        }
    }
    return cnt ? (int)(sum / cnt + 0.5) : -1;
}

/* Add the utilization node n reported for the GPUs in mask to *g. */
static void gpus_util(const engine_node_t *n, uint64_t mask, job_gpus_t *g)
{
    size_t i;
    json_t *o;
    json_array_foreach(n->gpus, i, o)
    {
        json_int_t idx = json_integer_value(json_object_get(o, "index"));
        json_t *u = json_object_get(o, "utilization");
        if (idx >= 0 && idx < 64 && (mask & (1ull << idx)) && json_is_number(u)) {
            g->util_sum += json_number_value(u);
            g->util_n++;
        }
    }
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

static void usage_nodes(engine_t *j, engine_usage_t *out)
{
    size_t nn = nodes_count(j->nodes), cap = nn + 1;
    sched_node_status_t *st = xcalloc(cap, sizeof(*st));
    size_t ns = sched_node_status(j->sched, st, cap);
    if (ns > cap)
        ns = cap;
    out->nodes = xcalloc(cap, sizeof(*out->nodes));
    /* by name, in O(nodes): under mu, with 10,000 nodes a scan per node
     * held the lock for most of a second */
    strmap_t *by_name = strmap_new(NULL);
    for (size_t s = 0; s < ns; s++)
        if (strmap_put(by_name, st[s].name, &st[s]) != PAI_OK)
            continue; /* never: the value is not NULL */
    size_t nrefs = 0;
    for (size_t k = 0; k < nn; k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        engine_gauge_t *g = &out->nodes[out->nnodes++];
        g->name = xstrdup(n->name);
        const sched_node_status_t *s = strmap_get(by_name, n->name);
        if (s)
            g->used = s->used_gpus;
        g->other = node_util(n);
        nrefs += n->nrefs;
    }
    strmap_free(by_name);
    free(st);
    /* Running jobs: the GPUs of their live task attempts, from node refs. */
    job_gpus_t *jg = xcalloc(nrefs + 1, sizeof(*jg));
    size_t njg = 0;
    for (size_t k = 0; k < nn; k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        for (size_t i = 0; i < n->nrefs; i++) {
            const engine_node_ref_t *r = &n->refs[i];
            if (r->job->state != JOB_RUNNING || !nodes_ref_live(r))
                continue;
            const lc_task_attempt_t *ta = lc_find(r->job, r->ja, r->role, r->index, r->ta);
            jg[njg] = (job_gpus_t){.job = r->job, .gpus = ta ? __builtin_popcountll(ta->gpus) : 0};
            if (ta)
                gpus_util(n, ta->gpus, &jg[njg]);
            njg++;
        }
    }
    qsort(jg, njg, sizeof(*jg), cmp_job_gpus);
    out->jobs = xcalloc(njg + 1, sizeof(*out->jobs));
    double sum = 0;
    int cnt = 0;
    for (size_t i = 0; i < njg; i++) {
        if (i == 0 || jg[i].job != jg[i - 1].job) {
            out->jobs[out->njobs++].name = xstrdup(jg[i].job->name);
            sum = 0, cnt = 0;
        }
        engine_gauge_t *g = &out->jobs[out->njobs - 1];
        g->used += jg[i].gpus;
        sum += jg[i].util_sum;
        cnt += jg[i].util_n;
        /* the mean over the job's GPUs that report one; -1: none does */
        g->other = cnt ? (int)(sum / cnt + 0.5) : -1;
    }
    free(jg);
}

void engine_usage(engine_t *j, engine_usage_t *out)
{
    memset(out, 0, sizeof(*out));
    engine_lock(j);
    sched_summary_t s;
    sched_summary(j->sched, &s);
    out->gpus_total = s.gpus;
    out->gpus_used = s.used_gpus;
    usage_vcs(j, out);
    usage_nodes(j, out);
    engine_unlock(j);
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
