/*
 * sim_trace.c - trace replay for `pai sim`: event-driven simulated time over a
 * Philly-format CSV, through the real scheduler, with per-VC metrics.
 *
 * Procedure:
 *   1. load the trace, sort by submit time; a job asking more GPUs than a
 *      node has becomes a gang of ceil(gpus / gpus_per_node) full-node tasks;
 *   2. loop over events (arrivals, completions) in time order; at each time,
 *      release finished jobs, submit arrivals, then run scheduling passes
 *      until one binds and preempts nothing (victims stop at once and are
 *      resubmitted with their original submit time; their work is lost);
 *   3. report jobs, queueing delay (last start - submit), JCT, GPU
 *      utilisation (GPU-seconds run / GPUs x makespan), preemptions, and the
 *      scheduler's own wall-clock latency per job decision and per pass.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "sim/sim.h"

#define MAX_VCS 64

typedef struct {
    int64_t submit_ms, dur_ms;
    int gpus, vc;
    int64_t start_ms, end_ms;
    int run;   /* run number: completions of older runs are stale */
    bool oppo; /* submitted opportunistic (--oppo-overflow) */
    int preempted;
    bool refused, done;
} tjob_t;

typedef struct {
    char names[MAX_VCS][SCHED_NAME_MAX];
    int nodes[MAX_VCS];
    int n;
} vclist_t;

typedef struct {
    tjob_t *jobs;
    long n;
} trace_t;

typedef struct {
    int64_t t;
    long job;
    int run;
} event_t;

typedef struct {
    event_t *a;
    long n;
    size_t cap;
} heap_t;

typedef struct {
    long jobs, refused, unfinished, preempted;
    double mean_q, median_q, p95_q, mean_jct;
    /* GPU-hours held by runs that completed, and by runs a preemption threw
     * away; use: held over what the VC's guarantee could hold in the
     * makespan (overall: over the cluster's GPUs), as `pai usage` counts
     * GPU-hours held (docs/monitoring.md) */
    double gpu_h, lost_h, use;
} vcres_t;

typedef struct {
    vcres_t vc[MAX_VCS + 1]; /* [MAX_VCS] = overall */
    double util, makespan_s, wall_s;
    double dec_mean_us, dec_p99_us, dec_max_us, pass_mean_us, pass_p99_us;
    uint64_t decisions, passes, lazy, violations;
    char first_violation[2 * SCHED_REASON_MAX];
    long peak_rss_kb;
    int total_gpus;
} result_t;

/* ---- input --------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool parse_time(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &se) != 6)
        return false;
    *out = (days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se) * 1000;
    return true;
}

static int vc_index(vclist_t *v, const char *name)
{
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->names[i], name) == 0)
            return i;
    if (v->n == MAX_VCS)
        return -1;
    str_copy(v->names[v->n], name, SCHED_NAME_MAX);
    v->nodes[v->n] = 0;
    return v->n++;
}

static bool parse_line(char *line, vclist_t *vcs, tjob_t *j)
{
    char *f[5], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, ",\r\n", &save); t && n < 5; t = strtok_r(NULL, ",\r\n", &save))
        f[n++] = t;
    if (n < 5 || !parse_time(f[0], &j->submit_ms))
        return false;
    char *end;
    double dur = strtod(f[1], &end);
    long g = strtol(f[2], NULL, 10);
    if (dur < 0 || g < 1 || g > 100000)
        return false;
    *j = (tjob_t){.submit_ms = j->submit_ms,
                  .dur_ms = (int64_t)(dur * 1000),
                  .gpus = (int)g,
                  .vc = vc_index(vcs, f[4]),
                  .start_ms = -1};
    return j->vc >= 0;
}

static int cmp_submit(const void *a, const void *b)
{
    const tjob_t *x = a, *y = b;
    return (x->submit_ms > y->submit_ms) - (x->submit_ms < y->submit_ms);
}

static bool load_trace(const char *path, long limit, double load, vclist_t *vcs, trace_t *t)
{
    buf_t b;
    buf_init(&b, 256u * 1024 * 1024);
    if (buf_read_file(&b, path) != PAI_OK) {
        fprintf(stderr, "pai sim: cannot read %s\n", path);
        buf_free(&b);
        return false;
    }
    char *text = b.data, *save = NULL;
    size_t cap = 0;
    t->jobs = NULL;
    t->n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        VEC_XRESERVE(t->jobs, cap, (size_t)t->n + 1);
        if (parse_line(line, vcs, &t->jobs[t->n]))
            t->n++;
    }
    buf_free(&b);
    if (!t->jobs || t->n == 0) {
        fprintf(stderr, "pai sim: no jobs in %s\n", path);
        return false;
    }
    qsort(t->jobs, (size_t)t->n, sizeof(tjob_t), cmp_submit);
    if (limit > 0 && limit < t->n)
        t->n = limit;
    int64_t t0 = t->jobs[0].submit_ms;
    for (long i = 0; i < t->n; i++)
        t->jobs[i].submit_ms = (int64_t)((double)(t->jobs[i].submit_ms - t0) / load);
    return true;
}

static const struct {
    const char *name;
    int nodes;
} philly_vcs[] = {{"6214e9", 64}, {"7f04ca", 32}, {"11cb48", 16}, {"b436b2", 64},
                  {"ee9e8c", 64}, {"e13805", 16}, {"6c71a0", 32}, {"2869ce", 16},
                  {"ed69ec", 8},  {"103959", 8},  {"0e4a51", 32}};

static bool load_vcs(const char *path, vclist_t *v)
{
    if (!path) {
        for (size_t i = 0; i < ARRAY_LEN(philly_vcs); i++)
            v->nodes[vc_index(v, philly_vcs[i].name)] = philly_vcs[i].nodes;
        return true;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "pai sim: cannot read %s\n", path);
        return false;
    }
    char name[SCHED_NAME_MAX];
    int nodes;
    while (fscanf(f, "%63s %d", name, &nodes) == 2) {
        int i = vc_index(v, name);
        if (i >= 0)
            v->nodes[i] = nodes;
    }
    fclose(f);
    return true;
}

/* ---- cluster ------------------------------------------------------------- */

static int64_t clock_us(void *ctx)
{
    (void)ctx;
    return time_mono_us();
}

static sched_t *build(const sim_args_t *a, const vclist_t *vcs, int only_vc, int *total_gpus)
{
    sched_opts_t o = {.policy = a->policy,
                      .starvation_ms = a->starvation_ms,
                      .assume_healthy = true,
                      .clock_us = clock_us,
                      .quiet_waits = true,
                      .check = a->check};
    char err[512];
    sched_t *s = NULL;
    if (a->config) {
        buf_t b;
        buf_init(&b, PAI_MAX_CONFIG_FILE);
        if (buf_read_file(&b, a->config) != PAI_OK ||
            sched_new_config(buf_str(&b), b.len, &o, &s, err, sizeof(err)) != PAI_OK)
            fprintf(stderr, "pai sim: %s: %s\n", a->config, err);
        buf_free(&b);
    } else {
        const char *names[MAX_VCS];
        int counts[MAX_VCS], nodes = 0;
        size_t n = 0;
        for (int i = 0; i < vcs->n; i++) {
            if (only_vc >= 0 && i != only_vc)
                continue;
            names[n] = vcs->names[i];
            counts[n++] = vcs->nodes[i];
            nodes += vcs->nodes[i];
        }
        if (only_vc < 0 && a->nodes > nodes)
            nodes = a->nodes;
        if (sched_new_uniform(nodes > 0 ? nodes : 1, a->gpus_per_node, a->rack_nodes, names, counts,
                              n, &o, &s, err, sizeof(err)) != PAI_OK)
            fprintf(stderr, "pai sim: cluster: %s\n", err);
    }
    sched_summary_t sum;
    if (s) {
        sched_summary(s, &sum);
        *total_gpus = sum.gpus;
    }
    return s;
}

/* ---- events ---------------------------------------------------------------- */

static bool heap_push(heap_t *h, event_t e)
{
    VEC_XRESERVE(h->a, h->cap, (size_t)h->n + 1);
    long i = h->n++;
    while (i > 0 && h->a[(i - 1) / 2].t > e.t) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = e;
    return true;
}

static event_t heap_pop(heap_t *h)
{
    event_t top = h->a[0], last = h->a[--h->n];
    long i = 0;
    for (;;) {
        long c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1].t < h->a[c].t)
            c++;
        if (h->a[c].t >= last.t)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

typedef struct {
    const sim_args_t *a;
    const vclist_t *vcs;
    trace_t *t;
    sched_t *s;
    heap_t heap;
    double gpu_ms;
    double vc_ms[MAX_VCS + 1], vc_lost_ms[MAX_VCS + 1]; /* [MAX_VCS]: all */
    int64_t now, last_end;
    int64_t *pass_us;
    long n_pass;
    size_t cap_pass;
    long claim[MAX_VCS], quota[MAX_VCS]; /* guaranteed GPUs asked / owned per VC */
} replay_t;

static void job_id(long i, char *buf, size_t n)
{
    snprintf(buf, n, "j%ld", i);
}

static pai_err_t submit(replay_t *r, long i)
{
    tjob_t *j = &r->t->jobs[i];
    int g = r->a->gpus_per_node;
    sched_role_t role = {.name = "worker", .instances = 1, .gpus = j->gpus};
    if (j->gpus > g)
        role.instances = (j->gpus + g - 1) / g, role.gpus = g;
    char id[32];
    job_id(i, id, sizeof(id));
    j->oppo = r->a->oppo_overflow && r->claim[j->vc] + j->gpus > r->quota[j->vc] &&
              j->gpus <= r->quota[j->vc];
    if (!j->oppo)
        r->claim[j->vc] += j->gpus;
    sched_request_t req = {.job_id = id,
                           .vc = r->vcs->names[j->vc],
                           .priority = j->oppo ? SCHED_PRIO_OPPO : SCHED_PRIO_TEST,
                           .gang = true,
                           .submit_ms = j->submit_ms,
                           .roles = &role,
                           .n_roles = 1};
    char err[256];
    return sched_submit(r->s, &req, err, sizeof(err));
}

static long job_of(const char *id)
{
    return strtol(id + 1, NULL, 10);
}

static void unclaim(replay_t *r, const tjob_t *j)
{
    if (!j->oppo)
        r->claim[j->vc] -= j->gpus;
}

static void stop_run(replay_t *r, long i)
{
    tjob_t *j = &r->t->jobs[i];
    unclaim(r, j);
    double ms = (double)j->gpus * (double)(r->now - j->start_ms);
    r->gpu_ms += ms;
    r->vc_lost_ms[j->vc] += ms;
    r->vc_lost_ms[MAX_VCS] += ms;
    j->run++;
}

static bool apply(replay_t *r, const sched_decision_t *d, size_t n, bool *progress)
{
    char id[32];
    for (size_t k = 0; k < n; k++) {
        long i = job_of(d[k].job_id);
        tjob_t *j = &r->t->jobs[i];
        if (d[k].kind == SCHED_BIND) {
            j->start_ms = r->now;
            *progress = true;
            if (!heap_push(&r->heap, (event_t){r->now + j->dur_ms, i, j->run}))
                return false;
        } else if (d[k].kind == SCHED_REFUSE) {
            j->refused = true;
            unclaim(r, j);
        } else if (d[k].kind == SCHED_PREEMPT) {
            *progress = true;
            for (size_t v = 0; v < d[k].n_victims; v++) {
                long vi = job_of(d[k].victims[v]);
                stop_run(r, vi);
                r->t->jobs[vi].preempted++;
                job_id(vi, id, sizeof(id));
                if (sched_release(r->s, id) != PAI_OK || submit(r, vi) != PAI_OK)
                    return false;
            }
        }
    }
    return true;
}

static bool pass(replay_t *r)
{
    for (int round = 0; round < 64; round++) {
        const sched_decision_t *d;
        size_t n;
        int64_t t0 = time_mono_us();
        if (sched_schedule(r->s, r->now, &d, &n) != PAI_OK)
            return false;
        int64_t dt = time_mono_us() - t0;
        VEC_XRESERVE(r->pass_us, r->cap_pass, (size_t)r->n_pass + 1);
        r->pass_us[r->n_pass++] = dt;
        bool progress = false;
        if (!apply(r, d, n, &progress))
            return false;
        if (!progress)
            break;
    }
    return true;
}

static bool finish(replay_t *r, event_t e)
{
    tjob_t *j = &r->t->jobs[e.job];
    if (e.run != j->run)
        return true; /* preempted meanwhile */
    char id[32];
    job_id(e.job, id, sizeof(id));
    r->gpu_ms += (double)j->gpus * (double)j->dur_ms;
    r->vc_ms[j->vc] += (double)j->gpus * (double)j->dur_ms;
    r->vc_ms[MAX_VCS] += (double)j->gpus * (double)j->dur_ms;
    unclaim(r, j);
    j->end_ms = r->now;
    j->done = true;
    if (r->now > r->last_end)
        r->last_end = r->now;
    return sched_release(r->s, id) == PAI_OK;
}

static bool run_events(replay_t *r, int only_vc)
{
    long next = 0, n = r->t->n;
    for (;;) {
        while (next < n && only_vc >= 0 && r->t->jobs[next].vc != only_vc)
            next++;
        bool arr = next<n, comp = r->heap.n> 0;
        if (!arr && !comp)
            return true;
        int64_t ta = arr ? r->t->jobs[next].submit_ms : INT64_MAX;
        int64_t tc = comp ? r->heap.a[0].t : INT64_MAX;
        r->now = ta < tc ? ta : tc;
        while (r->heap.n && r->heap.a[0].t == r->now)
            if (!finish(r, heap_pop(&r->heap)))
                return false;
        while (next < n && r->t->jobs[next].submit_ms == r->now) {
            if ((only_vc < 0 || r->t->jobs[next].vc == only_vc) && submit(r, next) != PAI_OK)
                return false;
            next++;
        }
        if (!pass(r))
            return false;
    }
}

/* ---- metrics ----------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void vc_metrics(const trace_t *t, int vc, int only_vc, vcres_t *o, double *q)
{
    long m = 0;
    double jct = 0;
    *o = (vcres_t){0};
    for (long i = 0; i < t->n; i++) {
        const tjob_t *j = &t->jobs[i];
        if ((vc >= 0 && j->vc != vc) || (only_vc >= 0 && j->vc != only_vc))
            continue;
        o->jobs++;
        o->preempted += j->preempted;
        if (j->refused) {
            o->refused++;
            continue;
        }
        if (!j->done) {
            o->unfinished++;
            continue;
        }
        q[m++] = (double)(j->start_ms - j->submit_ms) / 1000.0;
        jct += (double)(j->end_ms - j->submit_ms) / 1000.0;
    }
    if (!m)
        return;
    qsort(q, (size_t)m, sizeof(double), cmp_double);
    double sum = 0;
    for (long i = 0; i < m; i++)
        sum += q[i];
    o->mean_q = sum / (double)m;
    o->median_q = q[m / 2];
    o->p95_q = q[(long)((double)(m - 1) * 0.95)];
    o->mean_jct = jct / (double)m;
}

static void collect(replay_t *r, int only_vc, int total_gpus, result_t *res, double wall)
{
    double *q = xmalloc(sizeof(double) * (size_t)(r->t->n + 1));
    for (int v = 0; v < r->vcs->n; v++)
        vc_metrics(r->t, v, only_vc, &res->vc[v], q);
    vc_metrics(r->t, -1, only_vc, &res->vc[MAX_VCS], q);
    free(q);
    res->total_gpus = total_gpus;
    res->makespan_s = (double)r->last_end / 1000.0;
    res->util = r->last_end > 0 ? r->gpu_ms / ((double)total_gpus * (double)r->last_end) : 0;
    for (int v = 0; v <= MAX_VCS; v++) {
        if (v < MAX_VCS && v >= r->vcs->n)
            continue;
        vcres_t *o = &res->vc[v];
        o->gpu_h = (r->vc_ms[v] + r->vc_lost_ms[v]) / 3.6e6;
        o->lost_h = r->vc_lost_ms[v] / 3.6e6;
        double cap = (double)(v == MAX_VCS ? total_gpus : r->quota[v]) * (double)r->last_end;
        o->use = cap > 0 ? (r->vc_ms[v] + r->vc_lost_ms[v]) / cap : 0;
    }
    res->wall_s = wall;
    sched_summary_t s;
    sched_summary(r->s, &s);
    res->decisions = s.latency_count;
    res->lazy = s.lazy_preemptions;
    const char *first;
    res->violations = sched_check_failures(r->s, &first);
    str_copy(res->first_violation, first, sizeof(res->first_violation));
    res->dec_mean_us = s.latency_count ? s.latency_sum_s / (double)s.latency_count * 1e6 : 0;
    res->dec_p99_us = s.latency_p99_s * 1e6;
    res->dec_max_us = s.latency_max_s * 1e6;
    res->passes = (uint64_t)r->n_pass;
    if (r->n_pass) {
        double sum = 0;
        for (long i = 0; i < r->n_pass; i++)
            sum += (double)r->pass_us[i];
        res->pass_mean_us = sum / (double)r->n_pass;
        qsort(r->pass_us, (size_t)r->n_pass, sizeof(int64_t), cmp_i64);
        res->pass_p99_us = (double)r->pass_us[(long)((double)(r->n_pass - 1) * 0.99)];
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        res->peak_rss_kb = ru.ru_maxrss;
}

static bool replay(const sim_args_t *a, const vclist_t *vcs, trace_t *t, int only_vc, result_t *res)
{
    for (long i = 0; i < t->n; i++) {
        tjob_t *j = &t->jobs[i];
        *j = (tjob_t){.submit_ms = j->submit_ms,
                      .dur_ms = j->dur_ms,
                      .gpus = j->gpus,
                      .vc = j->vc,
                      .start_ms = -1};
    }
    int total = 0;
    replay_t r = {.a = a, .vcs = vcs, .t = t};
    r.s = build(a, vcs, only_vc, &total);
    if (!r.s)
        return false;
    sched_vc_status_t rows[MAX_VCS * 4];
    size_t nr = sched_vc_status(r.s, rows, ARRAY_LEN(rows));
    for (size_t i = 0; i < nr && i < ARRAY_LEN(rows); i++)
        for (int v = 0; v < vcs->n; v++)
            if (strcmp(rows[i].vc, vcs->names[v]) == 0)
                r.quota[v] += rows[i].guaranteed_gpus;
    int64_t t0 = time_mono_us();
    bool ok = run_events(&r, only_vc);
    if (ok)
        collect(&r, only_vc, total, res, (double)(time_mono_us() - t0) / 1e6);
    else
        fprintf(stderr, "pai sim: replay failed\n");
    sched_free(r.s);
    free(r.heap.a);
    free(r.pass_us);
    return ok;
}

/* ---- output ------------------------------------------------------------------- */

static json_t *vc_json(const vcres_t *v)
{
    return xjson_pack("{s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "jobs", (json_int_t)v->jobs,
                      "refused", (json_int_t)v->refused, "unfinished", (json_int_t)v->unfinished,
                      "preemptions", (json_int_t)v->preempted, "mean_queue_s", v->mean_q,
                      "median_queue_s", v->median_q, "p95_queue_s", v->p95_q, "mean_jct_s",
                      v->mean_jct, "gpu_hours_held", v->gpu_h, "gpu_hours_lost_to_preemption",
                      v->lost_h, "utilization_of_guarantee", v->use);
}

static void print_json(const sim_args_t *a, const vclist_t *vcs, const result_t *r,
                       const result_t *priv)
{
    json_t *root = json_object(), *per = json_object();
    json_object_set_new(root, "policy", json_string(sim_policy_name(a->policy)));
    json_object_set_new(root, "gpus", json_integer(r->total_gpus));
    json_object_set_new(root, "load", json_real(a->load > 0 ? a->load : 1));
    json_object_set_new(root, "oppo_overflow", json_boolean(a->oppo_overflow));
    json_object_set_new(root, "overall", vc_json(&r->vc[MAX_VCS]));
    for (int v = 0; v < vcs->n; v++) {
        json_t *o = vc_json(&r->vc[v]);
        json_object_set_new(o, "nodes", json_integer(vcs->nodes[v]));
        if (priv) {
            json_object_set_new(o, "private_mean_queue_s", json_real(priv[v].vc[v].mean_q));
            json_object_set_new(o, "sharing_anomaly_s",
                                json_real(r->vc[v].mean_q - priv[v].vc[v].mean_q));
        }
        json_object_set_new(per, vcs->names[v], o);
    }
    json_object_set_new(root, "vcs", per);
    json_object_set_new(
        root, "scheduler",
        xjson_pack("{s:f,s:f,s:f,s:f,s:I,s:f,s:f,s:I,s:I,s:f,s:I}", "gpu_utilization", r->util,
                   "makespan_s", r->makespan_s, "decision_mean_us", r->dec_mean_us,
                   "decision_p99_us", r->dec_p99_us, "decisions", (json_int_t)r->decisions,
                   "pass_mean_us", r->pass_mean_us, "pass_p99_us", r->pass_p99_us, "passes",
                   (json_int_t)r->passes, "lazy_preemptions", (json_int_t)r->lazy, "wall_s",
                   r->wall_s, "peak_rss_kb", (json_int_t)r->peak_rss_kb));
    if (a->check) {
        json_object_set_new(root, "violations", json_integer((json_int_t)r->violations));
        if (r->violations)
            json_object_set_new(root, "first_violation", json_string(r->first_violation));
    }
    char *txt = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (txt)
        puts(txt);
    free(txt);
    json_decref(root);
}

static void print_row(const char *name, int nodes, const vcres_t *v, const result_t *priv, int idx)
{
    printf("%-8s %5d %7ld %7ld %6ld %7ld %10.0f %10.0f %10.0f %10.0f %9.0f %8.0f %5.1f", name,
           nodes, v->jobs, v->refused, v->unfinished, v->preempted, v->mean_q, v->median_q,
           v->p95_q, v->mean_jct, v->gpu_h, v->lost_h, v->use * 100);
    if (priv)
        printf(" %10.0f %10.0f", priv[idx].vc[idx].mean_q, v->mean_q - priv[idx].vc[idx].mean_q);
    printf("\n");
}

static void print_table(const sim_args_t *a, const vclist_t *vcs, const result_t *r,
                        const result_t *priv)
{
    printf("policy %s%s, %d GPUs, arrivals x%.1f; times in seconds\n", sim_policy_name(a->policy),
           a->oppo_overflow ? " (oppo overflow)" : "", r->total_gpus, a->load > 0 ? a->load : 1);
    printf("%-8s %5s %7s %7s %6s %7s %10s %10s %10s %10s %9s %8s %5s%s\n", "vc", "nodes", "jobs",
           "refused", "unfin", "preempt", "mean_q", "median_q", "p95_q", "mean_jct", "gpu_h",
           "lost_h", "use%", priv ? "  private_q    anomaly" : "");
    for (int v = 0; v < vcs->n; v++)
        print_row(vcs->names[v], vcs->nodes[v], &r->vc[v], priv, v);
    print_row("overall", 0, &r->vc[MAX_VCS], NULL, 0);
    printf("GPU utilization %.1f%%, makespan %.0f s\n", r->util * 100, r->makespan_s);
    printf("scheduler: %llu job decisions, mean %.1f us, p99 %.1f us, max %.1f us; "
           "%llu passes, mean %.1f us, p99 %.1f us; lazy preemptions %llu\n",
           (unsigned long long)r->decisions, r->dec_mean_us, r->dec_p99_us, r->dec_max_us,
           (unsigned long long)r->passes, r->pass_mean_us, r->pass_p99_us,
           (unsigned long long)r->lazy);
    printf("replay wall time %.2f s, peak RSS %ld MB\n", r->wall_s, r->peak_rss_kb / 1024);
    if (a->check)
        printf("invariant violations: %llu%s%s\n", (unsigned long long)r->violations,
               r->violations ? "; first: " : "", r->violations ? r->first_violation : "");
}

int sim_replay(const sim_args_t *a)
{
    vclist_t vcs = {0};
    trace_t t = {0};
    result_t *res = xcalloc(1, sizeof(*res)), *priv = NULL;
    int rc = 1;
    if ((!a->config && !load_vcs(a->vcs_file, &vcs)) ||
        !load_trace(a->trace, a->limit, a->load > 0 ? a->load : 1, &vcs, &t))
        goto out;
    if (!replay(a, &vcs, &t, -1, res))
        goto out;
    if (a->private_report && a->config) {
        fprintf(stderr, "pai sim: --private needs the uniform shape (--nodes/--vcs)\n");
    } else if (a->private_report) {
        priv = xcalloc((size_t)vcs.n, sizeof(*priv));
        for (int v = 0; priv && v < vcs.n; v++)
            if (vcs.nodes[v] > 0 && !replay(a, &vcs, &t, v, &priv[v]))
                goto out;
    }
    if (a->json)
        print_json(a, &vcs, res, priv);
    else
        print_table(a, &vcs, res, priv);
    rc = res->violations ? 1 : 0;
out:
    free(t.jobs);
    free(res);
    free(priv);
    return rc;
}
