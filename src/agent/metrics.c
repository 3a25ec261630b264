/*
 * metrics.c - the node's figures for Prometheus (docs/monitoring.md).
 *
 * The names, labels and HELP texts are OpenPAI's job-exporter's, so its
 * dashboards and alert rules work unchanged: per attempt task_gpu_percent,
 * task_gpu_mem_percent (per GPU it holds, label minor_number),
 * task_cpu_percent, task_cpu_seconds_total, task_mem_usage_byte,
 * task_mem_usage_percent, task_mem_limit_byte, task_block_{in,out}_byte, labelled username,
 * job_name, role_name, task_index, virtual_cluster; per GPU gpu_utilization, gpu_mem_utilization,
 * nvidiasmi_utilization_{gpu,memory}, nvidiasmi_temperature, nvidiasmi_ecc_error_count;
 * configured_gpu_count. pai's own figures are pai_agent_*.
 *
 * Cost: metrics_sample runs on the agent loop's timer every
 * METRICS_SAMPLE_MS (NVML calls through a handle kept open, a few small
 * cgroup files per attempt); a scrape only formats the last sample.
 *
 * GPU figures: NVML gives a device's utilization; a task holds whole GPUs,
 * so a task's task_gpu_percent for a GPU is that GPU's (OpenPAI does the
 * same).  Simulated GPUs (--gpus N) are idle unless the task holding them
 * declares a load (PAI_SIM_GPU_UTIL=N in its command or env): then they
 * show that load with a small deterministic wave.
 *
 * Task figures come from the attempt's cgroup (runtime/cgroup.h), found by
 * its process group's /proc/<pid>/cgroup; without one (an agent that is
 * not root) from /proc/<pid>/stat of the task's leader and its reaped
 * children.  Network bytes are not reported: the kernel keeps no per-cgroup
 * network counters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/log.h"
#include "common/promtext.h"
#include "common/util.h"
#include "runtime/cgroup.h"

#define SIM_ENV "PAI_SIM_GPU_UTIL"

/* ---- what a task is ------------------------------------------------------ */

static const char *env_of(const agentwire_task_t *d, const char *name)
{
    for (size_t i = 0; i < d->nenv; i++)
        if (strcmp(d->env[i].name, name) == 0)
            return d->env[i].value;
    return NULL;
}

/* "PAI_SIM_GPU_UTIL=N" anywhere in text, as a word of its own; -1 if none. */
static int sim_in_text(const char *text)
{
    size_t kl = strlen(SIM_ENV);
    for (const char *p = text ? strstr(text, SIM_ENV) : NULL; p; p = strstr(p + kl, SIM_ENV)) {
        bool word =
            p == text || !(p[-1] == '_' || (p[-1] >= 'A' && p[-1] <= 'Z') ||
                           (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= '0' && p[-1] <= '9'));
        const char *v = p + kl;
        if (!word || *v != '=')
            continue;
        v++;
        if (*v == '"' || *v == '\'')
            v++;
        char *end;
        long n = strtol(v, &end, 10);
        if (end != v && n >= 0 && n <= 100)
            return (int)n;
    }
    return -1;
}

int metrics_sim_declared(const agentwire_task_t *d)
{
    const char *v = env_of(d, SIM_ENV);
    int64_t n;
    if (v && str_to_i64(v, 0, 100, &n) == PAI_OK)
        return (int)n;
    return sim_in_text(d->command);
}

double metrics_sim_util(int declared, int gpu_index, int64_t wall_ms)
{
    if (declared <= 0)
        return 0;
    /* a 2-minute wave of +-5 points, each GPU a little out of phase */
    double phase = 2 * M_PI * (double)(wall_ms % 120000) / 120000.0 + gpu_index * 0.7;
    double v = declared + 5 * sin(phase);
    return round((v < 0 ? 0 : v > 100 ? 100 : v) * 10) / 10;
}

void metrics_task_meta_free(task_meta_t *m)
{
    free(m->user);
    free(m->job);
    free(m->role);
    free(m->vc);
    memset(m, 0, sizeof(*m));
    m->sim_util = -1;
}

void metrics_task_meta(task_meta_t *m, const agentwire_task_t *d)
{
    const char *idx = env_of(d, "PAI_TASK_INDEX");
    int64_t i;
    metrics_task_meta_free(m);
    /* the env is what OpenPAI's job-exporter reads; the wire fields back it up */
    const char *user = env_of(d, "PAI_USER_NAME");
    if (user)
        m->user = xstrdup(user);
    else if (d->user)
        m->user = str_printf("%.*s", (int)(d->user_len ? d->user_len : strlen(d->user)), d->user);
    const char *job = env_of(d, "PAI_JOB_NAME");
    m->job = xstrdup(job ? job : d->job ? d->job : "");
    const char *role = env_of(d, "PAI_CURRENT_TASK_ROLE_NAME");
    m->role = xstrdup(role ? role : d->role ? d->role : "");
    const char *vc = env_of(d, "PAI_JOB_VC_NAME");
    m->vc = xstrdup(vc ? vc : "");
    m->index = idx && str_to_i64(idx, 0, INT32_MAX, &i) == PAI_OK ? (int)i : d->index;
    for (size_t g = 0; g < d->ngpus && m->ngpus < GPU_MAX; g++)
        m->gpus[m->ngpus++] = d->gpus[g];
    m->sim_util = metrics_sim_declared(d);
}

/* ---- sampling ------------------------------------------------------------- */

/* /proc/<pid>/stat: CPU time of the leader and its reaped children, and
 * its resident memory; false when pid is gone. */
static bool proc_stats(pid_t pid, cg_stats_t *st)
{
    char p[64], line[2048];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "re");
    if (!f)
        return false;
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    char *rp = ok ? strrchr(line, ')') : NULL; /* comm may hold spaces */
    unsigned long long ut, stt, cut, cst;
    long long rss;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime ... (rss is field 24) */
    if (!rp || sscanf(rp + 2,
                      "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu %*d %*d "
                      "%*d %*d %*u %*u %lld",
                      &ut, &stt, &cut, &cst, &rss) != 5)
        return false;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long long tick_ns = 1000000000ULL / (unsigned long long)(hz > 0 ? hz : 100);
    st->cpu_ns = (int64_t)((ut + stt + cut + cst) * tick_ns);
    st->mem_bytes = rss * (page > 0 ? page : 4096);
    return true;
}

/* The task's leader: the monitor appends its pid to its record once it
 * started it (runtime.h); read until found, then kept.  A per-agent
 * monitor's line names the pooled cgroup the task runs in (cgroup.h), which
 * then replaces the attempt's own name. */
static pid_t task_pid(agent_task_t *t)
{
    char cg[1024];
    if (t->stats.pid <= 0 && t->rt.state_dir) {
        t->stats.pid = rt_task_info(t->rt.state_dir, cg, sizeof(cg));
        if (t->stats.pid > 0 && cg[0]) {
            free(t->stats.cgroup);
            t->stats.cgroup = xstrdup(cg);
        }
    }
    return t->stats.pid;
}

/* The attempt's cgroup: known for those this agent started; an adopted
 * one's is looked for once, "pai/<node>/<esc>.<boot id>" (node.c). */
static const char *task_cgroup(const agent_node_t *n, agent_task_t *t)
{
    if (t->stats.cgroup || t->stats.cgroup_seek)
        return t->stats.cgroup;
    char parent[512], prefix[520], rel[1024];
    t->stats.cgroup_seek = true;
    snprintf(parent, sizeof(parent), "pai/%s", n->name);
    snprintf(prefix, sizeof(prefix), "%s.", t->esc);
    if (cg_find_child(parent, prefix, rel, sizeof(rel)))
        t->stats.cgroup = xstrdup(rel);
    return t->stats.cgroup;
}

/* The attempt's figures: its cgroup's (subtree: a container under
 * --cgroup-parent counts), else the pai cgroup its leader is in, else the
 * leader's own; CPU from the leader where cpuacct has no pai cgroup. */
static bool task_figures(const agent_node_t *n, agent_task_t *t, pid_t pid, cg_stats_t *st)
{
    const char *rel = task_cgroup(n, t);
    pai_err_t rc = rel ? cg_stats_of(rel, st) : PAI_E_NOT_FOUND;
    if (rc != PAI_OK)
        rc = cg_stats_of_pid(pid, st);
    if (rc == PAI_OK && st->cpu_ns >= 0)
        return true;
    cg_stats_t ps = {-1, -1, -1, -1, -1};
    if (!proc_stats(pid, &ps))
        return false;
    if (rc != PAI_OK)
        *st = ps; /* no pai cgroup: the leader's figures */
    else
        st->cpu_ns = ps.cpu_ns; /* a v1 host whose cpuacct is not in the pai cgroup */
    return true;
}

static void sample_task(const agent_node_t *n, agent_task_t *t, int64_t mono_ms)
{
    cg_stats_t st;
    task_stats_t *s = &t->stats;
    pid_t pid = t->phase == RC_DONE || !t->has_rt ? 0 : task_pid(t);
    if (pid <= 0 || !task_figures(n, t, pid, &st)) {
        s->valid = false;
        return;
    }
    s->cpu_percent = 0;
    if (s->valid && s->prev_ms > 0 && mono_ms > s->prev_ms && st.cpu_ns >= s->prev_cpu_ns)
        s->cpu_percent = round((double)(st.cpu_ns - s->prev_cpu_ns) / 1e4 /
                               (double)(mono_ms - s->prev_ms) * 10) /
                         10;
    s->prev_cpu_ns = st.cpu_ns;
    s->prev_ms = mono_ms;
    s->mem_bytes = st.mem_bytes;
    s->mem_limit_bytes = st.mem_limit_bytes;
    s->io_read_bytes = st.io_read_bytes;
    s->io_write_bytes = st.io_write_bytes;
    s->valid = true;
}

/* The running attempt holding GPU g on n; NULL when it is free. */
static const agent_task_t *gpu_holder(const agent_node_t *n, int g)
{
    for (size_t i = 0; i < n->ntasks; i++) {
        const agent_task_t *t = n->tasks[i];
        if (t->phase == RC_DONE)
            continue;
        for (size_t k = 0; k < t->meta.ngpus; k++)
            if (t->meta.gpus[k] == g)
                return t;
    }
    return NULL;
}

static void sample_sim_gpu(const agent_node_t *n, size_t i, int64_t wall_ms, gpu_sample_t *out)
{
    const agent_task_t *t = gpu_holder(n, n->gpus.gpus[i].index);
    double u = metrics_sim_util(t ? t->meta.sim_util : 0, (int)i, wall_ms);
    *out = (gpu_sample_t){.ok = n->gpus.gpus[i].healthy,
                          .util = u,
                          .mem_util = round(u * 6) / 10,
                          .temp_c = round(34 + u * 0.45),
                          .ecc_single = 0,
                          .ecc_double = 0};
}

/* Simulated GPUs: the faults injected through the fault file. */
static void sim_faults(agent_node_t *n)
{
    char p[1100];
    buf_t b;
    if (n->cfg->gpu_fault_file && *n->cfg->gpu_fault_file)
        str_copy(p, n->cfg->gpu_fault_file, sizeof(p));
    else
        snprintf(p, sizeof(p), "%s/gpu-faults", n->dir);
    buf_init(&b, 64 * 1024);
    if (buf_read_file(&b, p) == PAI_OK)
        gpu_apply_faults(buf_str(&b), n->gpu_now, n->gpus.n);
    buf_free(&b);
}

/* A GPU that turned (un)healthy is logged, and reported at once (the
 * server marks its cell bad, or good again). */
static void health_changes(agent_node_t *n)
{
    uint64_t bad = 0;
    for (size_t i = 0; n->gpu_sampled && i < n->gpus.n && i < 64; i++)
        if (!n->gpus.gpus[i].healthy || !gpu_sample_healthy(&n->gpu_now[i]))
            bad |= 1ull << i;
    for (size_t i = 0; i < n->gpus.n && i < 64 && bad != n->gpu_bad; i++) {
        const gpu_sample_t *s = &n->gpu_now[i];
        if ((bad ^ n->gpu_bad) & (1ull << i) && (bad & (1ull << i)))
            log_warn("node=%s gpu=%d unhealthy (%s)", n->name, n->gpus.gpus[i].index,
                     !s->ok   ? "lost"
                     : s->xid ? "critical XID"
                              : "uncorrectable ECC errors");
        else if ((bad ^ n->gpu_bad) & (1ull << i))
            log_info("node=%s gpu=%d healthy again", n->name, n->gpus.gpus[i].index);
    }
    if (bad != n->gpu_bad)
        n->dirty = true;
    n->gpu_bad = bad;
}

void metrics_sample(agent_node_t *n, gpu_sampler_t *s, int64_t mono_ms, int64_t wall_ms)
{
    struct statvfs vfs;
    n->healthy = statvfs(n->dir, &vfs) != 0 || vfs.f_bavail > 0; /* as node_health() */
    bool amd = n->gpus.vendor == GPU_VENDOR_AMD;
    for (size_t i = 0; i < n->gpus.n; i++) {
        if (s)
            (void)gpu_sampler_read(s, i, &n->gpu_now[i]);
        else if (amd)
            gpu_amd_sample(&n->gpus.gpus[i], &n->gpu_now[i]);
        else
            sample_sim_gpu(n, i, wall_ms, &n->gpu_now[i]);
    }
    if (n->gpus.simulated)
        sim_faults(n);
    n->gpu_sampled = n->gpus.n > 0 && (s || amd || n->gpus.simulated);
    health_changes(n);
    for (size_t i = 0; i < n->ntasks; i++)
        sample_task(n, n->tasks[i], mono_ms);
}

/* ---- formatting ---------------------------------------------------------- */

/* label="value", escaped, appended to b (a label set under construction). */
static void label(buf_t *b, const char *name, const char *value)
{
    char esc[2 * PAI_MAX_NAME + 8];
    prom_escape(esc, sizeof(esc), value ? value : "");
    if (buf_printf(b, "%s%s=\"%s\"", b->len ? "," : "", name, esc) != PAI_OK)
        return; /* past the cap: prom_sample then writes a cut label set, never overruns */
}

typedef struct {
    const char *name, *help;
} family_t;

/* The node label: only an agent hosting several nodes adds one (a single
 * node is named by its scrape target, see docs/monitoring.md). */
static void node_label(buf_t *b, const agent_node_t *n, size_t nnodes)
{
    buf_reset(b);
    if (nnodes > 1)
        label(b, "node_name", n->name);
}

static void task_labels(buf_t *b, const agent_node_t *n, size_t nnodes, const agent_task_t *t)
{
    char idx[16];
    node_label(b, n, nnodes);
    snprintf(idx, sizeof(idx), "%d", t->meta.index);
    label(b, "username", t->meta.user ? t->meta.user : "unknown");
    label(b, "job_name", t->meta.job && *t->meta.job ? t->meta.job : "unknown");
    label(b, "role_name", t->meta.role && *t->meta.role ? t->meta.role : "unknown");
    label(b, "task_index", t->meta.user ? idx : "unknown");
    label(b, "virtual_cluster", t->meta.vc && *t->meta.vc ? t->meta.vc : "unknown");
}

static bool task_shown(const agent_task_t *t)
{
    return t->phase != RC_DONE && t->meta.user;
}

enum { F_CPU, F_CPU_SECONDS, F_MEM, F_MEM_PCT, F_LIMIT, F_BIN, F_BOUT };
static const struct {
    const char *name, *type, *help;
} task_families[] = {
    [F_CPU] = {"task_cpu_percent", "gauge", "how much percent of cpu this task used"},
    /* OpenPAI's dashboards also take irate() of this one */
    [F_CPU_SECONDS] = {"task_cpu_seconds_total", "counter", "cpu time this task used, in seconds"},
    [F_MEM] = {"task_mem_usage_byte", "gauge", "how much memory this task used"},
    [F_MEM_PCT] = {"task_mem_usage_percent", "gauge", "how much percent of memory this task used"},
    [F_LIMIT] = {"task_mem_limit_byte", "gauge", "how much memory this task are constrained to"},
    [F_BIN] = {"task_block_in_byte", "gauge", "how much block inbound this task used"},
    [F_BOUT] = {"task_block_out_byte", "gauge", "how much block outbound this task used"},
};

/* The value of family f for a task on node n; < 0: unknown (no series). */
static double task_value(const agent_node_t *n, const task_stats_t *s, int f)
{
    switch (f) {
    case F_CPU:
        return s->cpu_percent;
    case F_CPU_SECONDS:
        return s->prev_cpu_ns < 0 ? -1 : (double)s->prev_cpu_ns / 1e9;
    case F_MEM:
        return (double)s->mem_bytes;
    case F_MEM_PCT: {
        /* of its limit, else of the node's memory (as `docker stats`) */
        double of = s->mem_limit_bytes > 0 ? (double)s->mem_limit_bytes
                                           : (double)n->memory_mb * 1024 * 1024;
        return s->mem_bytes < 0 || of <= 0 ? -1 : round(s->mem_bytes / of * 1000) / 10;
    }
    case F_LIMIT:
        return (double)s->mem_limit_bytes;
    case F_BIN:
        return (double)s->io_read_bytes;
    default:
        return (double)s->io_write_bytes;
    }
}

static void format_tasks(agent_node_t *const *nodes, size_t nn, buf_t *lb, buf_t *out)
{
    for (int f = F_CPU; f <= F_BOUT; f++) {
        prom_family(out, task_families[f].name, task_families[f].type, task_families[f].help);
        for (size_t k = 0; k < nn; k++)
            for (size_t i = 0; i < nodes[k]->ntasks; i++) {
                const agent_task_t *t = nodes[k]->tasks[i];
                double v = t->stats.valid ? task_value(nodes[k], &t->stats, f) : -1;
                if (!task_shown(t) || v < 0)
                    continue;
                task_labels(lb, nodes[k], nn, t);
                prom_sample(out, task_families[f].name, buf_str(lb), v);
            }
    }
}

/* task_gpu_percent / task_gpu_mem_percent: one series per GPU a task holds. */
static void format_task_gpus(agent_node_t *const *nodes, size_t nn, bool mem, buf_t *lb, buf_t *out)
{
    const char *name = mem ? "task_gpu_mem_percent" : "task_gpu_percent";
    prom_family(out, name, "gauge",
                mem ? "how much percent of gpu memory this task used"
                    : "how much percent of gpu core this task used");
    for (size_t k = 0; k < nn; k++) {
        const agent_node_t *n = nodes[k];
        for (size_t i = 0; n->gpu_sampled && i < n->ntasks; i++) {
            const agent_task_t *t = n->tasks[i];
            for (size_t g = 0; task_shown(t) && g < t->meta.ngpus; g++) {
                int minor = t->meta.gpus[g];
                if (minor < 0 || (size_t)minor >= n->gpus.n || !n->gpu_now[minor].ok)
                    continue;
                double v = mem ? n->gpu_now[minor].mem_util : n->gpu_now[minor].util;
                if (v < 0)
                    continue;
                char m[16];
                snprintf(m, sizeof(m), "%d", minor);
                task_labels(lb, n, nn, t);
                label(lb, "minor_number", m);
                prom_sample(out, name, buf_str(lb), v);
            }
        }
    }
}

enum { G_UTIL, G_MEM, G_SMI_UTIL, G_SMI_MEM, G_TEMP, G_HEALTHY };
static const family_t gpu_families[] = {
    [G_UTIL] = {"gpu_utilization", "gpu core utilization of card"},
    [G_MEM] = {"gpu_mem_utilization", "gpu memory utilization of card"},
    [G_SMI_UTIL] = {"nvidiasmi_utilization_gpu", "gpu core utilization of card"},
    [G_SMI_MEM] = {"nvidiasmi_utilization_memory", "gpu memory utilization of card"},
    [G_TEMP] = {"nvidiasmi_temperature", "gpu temperature of card"},
    [G_HEALTHY] = {"pai_agent_gpu_healthy",
                   "1 when the GPU is healthy (answers, no uncorrectable ECC error or critical "
                   "XID), else 0"},
};

static double gpu_value(const gpu_sample_t *s, int f)
{
    switch (f) {
    case G_UTIL:
    case G_SMI_UTIL:
        return s->util;
    case G_MEM:
    case G_SMI_MEM:
        return s->mem_util;
    case G_TEMP:
        return s->temp_c;
    default:
        return gpu_sample_healthy(s);
    }
}

/* A lost GPU has no utilization series: OpenPAI's "GPU count changed"
 * rule compares their count with configured_gpu_count. */
static void format_gpus(agent_node_t *const *nodes, size_t nn, buf_t *lb, buf_t *out)
{
    for (int f = G_UTIL; f <= G_HEALTHY; f++) {
        prom_family(out, gpu_families[f].name, "gauge", gpu_families[f].help);
        for (size_t k = 0; k < nn; k++) {
            const agent_node_t *n = nodes[k];
            for (size_t i = 0; n->gpu_sampled && i < n->gpus.n; i++) {
                const gpu_sample_t *s = &n->gpu_now[i];
                if ((f != G_HEALTHY && !s->ok) || gpu_value(s, f) < 0)
                    continue;
                char m[16];
                snprintf(m, sizeof(m), "%d", n->gpus.gpus[i].index);
                node_label(lb, n, nn);
                label(lb, "minor_number", m);
                if (f == G_UTIL || f == G_MEM) /* sic: OpenPAI's label name */
                    label(lb, "vender",
                          n->gpus.vendor == GPU_VENDOR_AMD     ? "amd"
                          : n->gpus.vendor == GPU_VENDOR_CLASS ? n->gpus.class_name
                                                               : "nvidia");
                prom_sample(out, gpu_families[f].name, buf_str(lb), gpu_value(s, f));
            }
        }
    }
}

static void format_ecc(agent_node_t *const *nodes, size_t nn, buf_t *lb, buf_t *out)
{
    prom_family(out, "nvidiasmi_ecc_error_count", "gauge", "count of nvidia ecc error");
    for (size_t k = 0; k < nn; k++) {
        const agent_node_t *n = nodes[k];
        for (size_t i = 0; n->gpu_sampled && i < n->gpus.n; i++) {
            const gpu_sample_t *s = &n->gpu_now[i];
            const int64_t v[2] = {s->ecc_single, s->ecc_double};
            static const char *const type[2] = {"single", "double"};
            for (int j = 0; j < 2; j++) {
                if (!s->ok || v[j] < 0)
                    continue;
                char m[16];
                snprintf(m, sizeof(m), "%d", n->gpus.gpus[i].index);
                node_label(lb, n, nn);
                label(lb, "minor_number", m);
                label(lb, "type", type[j]);
                prom_sample(out, "nvidiasmi_ecc_error_count", buf_str(lb), (double)v[j]);
            }
        }
    }
}

/* configured_gpu_count and pai's own per-node figures. */
static void format_nodes(agent_node_t *const *nodes, size_t nn, buf_t *lb, buf_t *out)
{
    static const family_t fam[] = {
        {"configured_gpu_count", "total number of gpu configured for this node"},
        {"pai_agent_node_healthy",
         "1 when the node passes the agent's health check (disk not full), else 0"},
        {"pai_agent_tasks", "attempts running on this node"},
        {"pai_agent_syncs_total", "syncs with the server started by this node"},
        {"pai_agent_sync_errors_total", "syncs with the server that failed"},
        {"pai_agent_sync_answer_bytes_total", "bytes of the server's sync answers read"},
    };
    for (size_t f = 0; f < ARRAY_LEN(fam); f++) {
        prom_family(out, fam[f].name, f >= 3 ? "counter" : "gauge", fam[f].help);
        for (size_t k = 0; k < nn; k++) {
            const agent_node_t *n = nodes[k];
            size_t running = 0;
            for (size_t i = 0; i < n->ntasks; i++)
                running += n->tasks[i]->phase != RC_DONE;
            const double v[] = {(double)n->gpus.n,      n->healthy,
                                (double)running,        (double)n->syncs,
                                (double)n->sync_errors, (double)n->answer_bytes};
            node_label(lb, n, nn);
            prom_sample(out, fam[f].name, buf_str(lb), v[f]);
        }
    }
}

void metrics_format(agent_node_t *const *nodes, size_t nnodes, buf_t *out)
{
    buf_t lb;
    buf_init(&lb, 8192);
    format_nodes(nodes, nnodes, &lb, out);
    format_gpus(nodes, nnodes, &lb, out);
    format_ecc(nodes, nnodes, &lb, out);
    format_task_gpus(nodes, nnodes, false, &lb, out);
    format_task_gpus(nodes, nnodes, true, &lb, out);
    format_tasks(nodes, nnodes, &lb, out);
    buf_free(&lb);
}
