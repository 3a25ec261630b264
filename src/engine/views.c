/*
 * views.c - read-only views of the cluster for the API: virtual
 * clusters (from the scheduler's VC status), SKU types, nodes and tasks in
 * the shape of Kubernetes' node and pod lists (our equivalent of
 * /api/v2/kubernetes/...), and the /metrics collector.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/promtext.h"
#include "common/util.h"
#include "sched/sched.h"
#include "engine/codec.h"
#include "engine/engine_int.h"

#define MAX_VC_ROWS 4096

static json_t *res_json(int64_t cpu, int64_t mem, int64_t gpu)
{
    return xjson_pack("{sI sI sI sI sI}", "cpu", (json_int_t)cpu, "memory", (json_int_t)mem, "gpu",
                      (json_int_t)gpu, "vCores", (json_int_t)cpu, "GPUs", (json_int_t)gpu);
}

/* Fold the rows of one VC (one per SKU) into OpenPAI's VirtualCluster. */
static json_t *vc_json(const sched_vc_status_t *rows, size_t n)
{
    int64_t g = 0, u = 0, o = 0, tot = 0, gc = 0, uc = 0, gm = 0, um = 0;
    int running = 0, waiting = 0;
    json_t *skus = json_object();
    for (size_t i = 0; i < n; i++) {
        g += rows[i].guaranteed_gpus;
        u += rows[i].used_gpus;
        o += rows[i].oppo_gpus;
        tot += rows[i].total_gpus;
        gc += rows[i].guaranteed_cpus;
        uc += rows[i].used_cpus;
        gm += rows[i].guaranteed_memory_mb;
        um += rows[i].used_memory_mb;
        running = rows[i].running_jobs;
        waiting = rows[i].waiting_jobs;
        json_object_set_new(skus, rows[i].sku[0] ? rows[i].sku : "cpu",
                            xjson_pack("{si si si si si}", "guaranteed", rows[i].guaranteed_gpus,
                                       "used", rows[i].used_gpus, "opportunistic",
                                       rows[i].oppo_gpus, "total", rows[i].total_gpus, "unhealthy",
                                       rows[i].bad_gpus));
    }
    double cap = tot ? 100.0 * (double)g / (double)tot : 0;
    double used = tot ? 100.0 * (double)(u + o) / (double)tot : 0;
    return xjson_pack("{sf sf sf sb ss so so so so si si sI}", "capacity", cap, "usedCapacity",
                      used, "maxCapacity", 100.0, "dedicated", false, "status", "RUNNING",
                      "resourcesUsed", res_json(uc, um, u + o), "resourcesGuaranteed",
                      res_json(gc, gm, g), "resourcesTotal", res_json(gc, gm, g), "skus", skus,
                      "runningJobs", running, "waitingJobs", waiting, "clusterGpus",
                      (json_int_t)tot);
}

json_t *engine_vcs_json(engine_t *j, const char *only_vc)
{
    sched_vc_status_t *rows = xcalloc(MAX_VC_ROWS, sizeof(*rows));
    engine_lock(j);
    size_t n = sched_vc_status(j->sched, rows, MAX_VC_ROWS);
    if (n > MAX_VC_ROWS)
        n = MAX_VC_ROWS;
    json_t *all = json_object();
    for (size_t i = 0; i < n;) {
        size_t k = i + 1;
        while (k < n && strcmp(rows[k].vc, rows[i].vc) == 0)
            k++;
        if (!only_vc || strcmp(only_vc, rows[i].vc) == 0)
            json_object_set_new(all, rows[i].vc, vc_json(&rows[i], k - i));
        i = k;
    }
    engine_unlock(j);
    free(rows);
    if (!only_vc)
        return all;
    json_t *one = json_incref(json_object_get(all, only_vc));
    json_decref(all);
    return one;
}

json_t *engine_skus_json(engine_t *j)
{
    json_t *out = json_object();
    engine_lock(j);
    for (size_t k = 0; k < nodes_count(j->nodes); k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        const char *sku = n->gpu_model && n->ngpus ? n->gpu_model : "cpu";
        if (json_object_get(out, sku))
            continue;
        int per = n->ngpus ? n->ngpus : 1;
        json_object_set_new(out, sku,
                            xjson_pack("{si si sI}", "gpu", n->ngpus ? 1 : 0, "cpu", n->cpus / per,
                                       "memory", (json_int_t)(n->memory_mb / per)));
    }
    engine_unlock(j);
    return out;
}

int64_t engine_agents_silent_ms(engine_t *j)
{
    int64_t last = -1;
    engine_lock(j);
    int64_t now = engine_mono_ms(j);
    for (size_t i = 0; i < nodes_count(j->nodes); i++) {
        const engine_node_t *n = nodes_at(j->nodes, i);
        if (n->state != NODE_HEALTHY)
            continue;
        int64_t seen = n->waker.fn ? now : n->last_seen_ms; /* a held poll: here now */
        if (seen > last)
            last = seen;
    }
    engine_unlock(j);
    return last < 0 ? -1 : now - last;
}

json_t *engine_nodes_json(engine_t *j)
{
    json_t *items = json_array();
    engine_lock(j);
    size_t cap = nodes_count(j->nodes) + 1;
    sched_node_status_t *st = xcalloc(cap, sizeof(*st));
    size_t ns = sched_node_status(j->sched, st, cap);
    for (size_t k = 0; k < nodes_count(j->nodes); k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        int used = 0;
        const char *vc = "";
        for (size_t s = 0; s < ns && s < cap; s++)
            if (strcmp(st[s].name, n->name) == 0) {
                used = st[s].used_gpus;
                vc = st[s].vc ? st[s].vc : "";
            }
        char mem[32];
        snprintf(mem, sizeof mem, "%lldMi", (long long)n->memory_mb);
        json_t *bad = json_array();
        for (int g = 0; g < 64; g++)
            if (n->bad_gpus & (1ull << g))
                json_array_append_new(bad, json_integer(g));
        json_array_append_new(
            items,
            xjson_pack("{s{ss s{ss ss}} s{s[{ss ss}] s{si ss si} s[{ss ss}] s{ss ss si ss}} "
                       "s{si so sb ss}}",
                       "metadata", "name", n->name, "labels", "pai/sku",
                       n->gpu_model ? n->gpu_model : "", "pai/vc", vc, "status", "addresses",
                       "type", "InternalIP", "address", n->address ? n->address : "", "capacity",
                       "cpu", n->cpus, "memory", mem, "nvidia.com/gpu", n->ngpus, "conditions",
                       "type", "Ready", "status", n->state == NODE_HEALTHY ? "True" : "False",
                       "nodeInfo", "agentBootId", n->boot_id ? n->boot_id : "", "runtime",
                       n->runtime ? n->runtime : "", "tasks", (int)n->nrefs, "credential",
                       nodecred_state_name(&n->cred), "pai", "usedGpus", used, "badGpus", bad,
                       "schedulable",
                       n->state == NODE_HEALTHY && n->bad_gpus == 0 && !n->cred.awaiting,
                       "gpuBackend", n->gpu_backend ? n->gpu_backend : ""));
    }
    engine_unlock(j);
    free(st);
    return xjson_pack("{ss ss so}", "kind", "NodeList", "apiVersion", "v1", "items", items);
}

static json_t *pod_json(const engine_node_t *n, const engine_node_ref_t *r)
{
    const lc_task_attempt_t *ta = lc_find(r->job, r->ja, r->role, r->index, r->ta);
    char *id = codec_attempt_id(r->job, r->ja, r->role, r->index, r->ta);
    json_t *o = xjson_pack(
        "{s{ss ss s{ss ss si}} s{ss} s{ss ss}}", "metadata", "name", id ? id : "", "namespace",
        "default", "labels", "pai/job", r->job->name, "pai/role", r->job->roles[r->role].name,
        "pai/index", r->index, "spec", "nodeName", n->name, "status", "phase",
        ta ? lc_task_state_name(ta->state) : "UNKNOWN", "hostIP", n->address ? n->address : "");
    free(id);
    return o;
}

json_t *engine_pods_json(engine_t *j, const char *namespace_)
{
    json_t *items = json_array();
    bool any_ns = !namespace_ || !*namespace_ || strcmp(namespace_, "default") == 0;
    engine_lock(j);
    for (size_t k = 0; any_ns && k < nodes_count(j->nodes); k++) {
        engine_node_t *n = nodes_at(j->nodes, k);
        for (size_t i = 0; i < n->nrefs; i++)
            json_array_append_new(items, pod_json(n, &n->refs[i]));
    }
    engine_unlock(j);
    return xjson_pack("{ss ss so}", "kind", "PodList", "apiVersion", "v1", "items", items);
}

/* ---------------------------------------------------------------- metrics */

typedef struct {
    const char *vc;
    int64_t n[JOB__COUNT];
} vc_count_t;

static void engine_by_state(engine_t *j, buf_t *out)
{
    vc_count_t *c = NULL;
    size_t nc = 0;
    for (size_t i = 0; i < j->table.nlist; i++) {
        const lc_job_t *job = j->table.list[i];
        size_t k;
        for (k = 0; k < nc; k++)
            if (strcmp(c[k].vc, job->vc) == 0)
                break;
        if (k == nc) {
            c = xrealloc(c, (nc + 1) * sizeof(*c));
            memset(&c[nc], 0, sizeof(*c));
            c[nc++].vc = job->vc;
        }
        c[k].n[job->state]++;
    }
    prom_family(out, "pai_jobs", "gauge", "Jobs by state and virtual cluster.");
    for (size_t k = 0; k < nc; k++)
        for (int s = 0; s < JOB__COUNT; s++) {
            char vc[256], labels[384];
            prom_escape(vc, sizeof vc, c[k].vc);
            snprintf(labels, sizeof labels, "state=\"%s\",vc=\"%s\"",
                     lc_job_state_name((lc_job_state_t)s), vc);
            prom_sample(out, "pai_jobs", labels, (double)c[k].n[s]);
        }
    free(c);
}

static void nodes_by_state(engine_t *j, buf_t *out)
{
    int64_t n[NODE__COUNT] = {0};
    for (size_t k = 0; k < nodes_count(j->nodes); k++)
        n[nodes_at(j->nodes, k)->state]++;
    prom_family(out, "pai_nodes", "gauge", "Nodes by state.");
    prom_sample(out, "pai_nodes", "state=\"healthy\"", (double)n[NODE_HEALTHY]);
    prom_sample(out, "pai_nodes", "state=\"lost\"", (double)n[NODE_LOST]);
}

/* GPUs the agents report bad (lost, uncorrectable ECC, critical XID):
 * their nodes' cells are bad in the scheduler until they recover. */
static void bad_gpus(engine_t *j, buf_t *out)
{
    prom_family(out, "pai_node_gpu_bad", "gauge",
                "1 for a GPU its agent reports unhealthy (its node's cell is bad: no new work).");
    for (size_t k = 0; k < nodes_count(j->nodes); k++) {
        const engine_node_t *n = nodes_at(j->nodes, k);
        for (int g = 0; n->bad_gpus && g < 64; g++) {
            if (!(n->bad_gpus & (1ull << g)))
                continue;
            char name[2 * PAI_MAX_NAME + 8], labels[2 * PAI_MAX_NAME + 64];
            prom_escape(name, sizeof name, n->name);
            snprintf(labels, sizeof labels, "node=\"%s\",minor_number=\"%d\"", name, g);
            prom_sample(out, "pai_node_gpu_bad", labels, 1);
        }
    }
}

static void gpus_by_vc(engine_t *j, buf_t *out)
{
    sched_vc_status_t *rows = xcalloc(MAX_VC_ROWS, sizeof(*rows));
    size_t n = sched_vc_status(j->sched, rows, MAX_VC_ROWS);
    if (n > MAX_VC_ROWS)
        n = MAX_VC_ROWS;
    static const char *const fam[] = {"pai_vc_gpus_total", "pai_vc_gpus_used", "pai_vc_gpus_free"};
    static const char *const help[] = {"GPUs guaranteed to a VC, by SKU.",
                                       "GPUs used by a VC's jobs (guaranteed and opportunistic).",
                                       "Guaranteed GPUs of a VC not in use."};
    for (int f = 0; f < 3; f++) {
        prom_family(out, fam[f], "gauge", help[f]);
        for (size_t i = 0; i < n; i++) {
            char vc[256], sku[256], labels[600];
            prom_escape(vc, sizeof vc, rows[i].vc);
            prom_escape(sku, sizeof sku, rows[i].sku);
            snprintf(labels, sizeof labels, "vc=\"%s\",sku=\"%s\"", vc, sku);
            int used = rows[i].used_gpus + rows[i].oppo_gpus;
            int v = f == 0   ? rows[i].guaranteed_gpus
                    : f == 1 ? used
                             : (rows[i].guaranteed_gpus > rows[i].used_gpus
                                    ? rows[i].guaranteed_gpus - rows[i].used_gpus
                                    : 0);
            prom_sample(out, fam[f], labels, v);
        }
    }
    free(rows);
}

static void sched_latency(engine_t *j, buf_t *out)
{
    sched_summary_t s;
    sched_summary(j->sched, &s);
    /* sched_summary_t's buckets: 0.1 ms, 1 ms, 10 ms, 100 ms, 1 s, +Inf */
    static const double le[] = {0.0001, 0.001, 0.01, 0.1, 1};
    unsigned long long cum[6];
    prom_family(out, "pai_scheduler_decision_seconds", "histogram", "Scheduler decision latency.");
    for (int i = 0; i < 6; i++)
        cum[i] = s.latency_le[i];
    prom_histogram(out, "pai_scheduler_decision_seconds", NULL, le, 5, cum, s.latency_sum_s,
                   s.latency_count);
    prom_family(out, "pai_scheduler_pass_seconds", "histogram",
                "Scheduling pass time (every waiting job looked at once).");
    for (int i = 0; i < 6; i++)
        cum[i] = s.pass_le[i];
    prom_histogram(out, "pai_scheduler_pass_seconds", NULL, le, 5, cum, s.pass_sum_s, s.pass_count);
    prom_family(out, "pai_scheduler_decisions_total", "counter", "Decisions by kind.");
    for (int k = 0; k < 4; k++) {
        char labels[32];
        snprintf(labels, sizeof labels, "kind=\"%s\"", sched_kind_name((sched_kind_t)k));
        prom_sample(out, "pai_scheduler_decisions_total", labels, (double)s.decisions[k]);
    }
    prom_counter(out, "pai_scheduler_invariant_violations_total",
                 "Scheduler invariant violations found by the checker (sched_check).",
                 (double)j->check.violations);
    prom_counter(out, "pai_scheduler_invariant_checks_total",
                 "Sampled checks of the scheduler's invariants run.", (double)j->check.runs);
    prom_family(out, "pai_cluster_gpus", "gauge", "Cluster GPUs by use.");
    prom_sample(out, "pai_cluster_gpus", "use=\"total\"", s.gpus);
    prom_sample(out, "pai_cluster_gpus", "use=\"used\"", s.used_gpus);
    prom_sample(out, "pai_cluster_gpus", "use=\"free\"", s.gpus - s.used_gpus - s.bad_gpus);
    prom_sample(out, "pai_cluster_gpus", "use=\"unhealthy\"", s.bad_gpus);
}

void engine_metrics(void *ud, buf_t *out)
{
    engine_t *j = ud;
    engine_lock(j);
    engine_by_state(j, out);
    nodes_by_state(j, out);
    bad_gpus(j, out);
    gpus_by_vc(j, out);
    sched_latency(j, out);
    engine_combine_metrics(j, out);
    prom_counter(out, "pai_jobs_submitted_total", "Jobs accepted since start.",
                 (double)j->stats.submitted);
    prom_counter(out, "pai_jobs_refused_total",
                 "Jobs refused at submission because they can never fit.",
                 (double)j->stats.refused_at_submit);
    if (j->st)
        prom_counter(out, "pai_store_commits_total",
                     "Store write transactions committed (one per group of concurrent writes).",
                     (double)store_commits(j->st));
    engine_unlock(j);
}

/* "http://10.0.0.5:9100/..." -> "10.0.0.5:9100"; false when not http. */
static bool target_of(const char *url, char *out, size_t n)
{
    if (!url || !str_has_prefix(url, "http://"))
        return false;
    const char *h = url + 7;
    size_t len = strcspn(h, "/?#");
    if (len == 0 || len >= n)
        return false;
    memcpy(out, h, len);
    out[len] = '\0';
    return true;
}

static int cmp_group(const void *a, const void *b)
{
    const json_t *ga = *(json_t *const *)a, *gb = *(json_t *const *)b;
    const char *x = json_string_value(json_array_get(json_object_get(ga, "targets"), 0));
    const char *y = json_string_value(json_array_get(json_object_get(gb, "targets"), 0));
    return strcmp(x ? x : "", y ? y : "");
}

json_t *engine_metrics_targets_json(engine_t *j)
{
    json_t *by = json_object(); /* target -> group */
    engine_lock(j);
    for (size_t k = 0; k < nodes_count(j->nodes); k++) {
        const engine_node_t *n = nodes_at(j->nodes, k);
        char t[300];
        if (!target_of(n->log_url, t, sizeof t))
            continue;
        json_t *g = json_object_get(by, t);
        if (!g) {
            json_object_set_new(
                by, t, xjson_pack("{s[s] s{ss}}", "targets", t, "labels", "node_name", n->name));
            continue;
        }
        /* an agent hosting several nodes labels its series node_name itself */
        json_t *labels = json_object_get(g, "labels");
        json_object_del(labels, "node_name");
        json_t *c = json_object_get(g, "_n");
        json_object_set_new(g, "_n", json_integer(c ? json_integer_value(c) + 1 : 2));
    }
    engine_unlock(j);
    size_t n = json_object_size(by), i = 0;
    json_t **groups = xcalloc(n + 1, sizeof(*groups));
    const char *key;
    json_t *g;
    json_object_foreach(by, key, g) groups[i++] = g;
    qsort(groups, n, sizeof(*groups), cmp_group);
    json_t *out = json_array();
    for (i = 0; i < n; i++) {
        json_t *c = json_object_get(groups[i], "_n");
        if (c)
            json_object_set_new(json_object_get(groups[i], "labels"), "pai_nodes",
                                json_sprintf("%lld", (long long)json_integer_value(c)));
        json_object_del(groups[i], "_n");
        json_array_append(out, groups[i]);
    }
    free(groups);
    json_decref(by);
    return out;
}
