/*
 * bench/agent.c - what the agent's metrics cost (src/agent/metrics.c,
 * docs/monitoring.md, docs/benchmarks.md).
 *
 * A node with 8 simulated GPUs runs T attempts (hollow runtime for the
 * bookkeeping; each attempt's pid is a real sleeping process, put in a real
 * pai cgroup when this runs as root with cgroups, so the sample reads the
 * same files an agent does).  Measures, on the calling thread's CPU clock:
 *   sample   metrics_sample (every METRICS_SAMPLE_MS in the agent), and the
 *            share of one core it takes at that interval;
 *   scrape   metrics_format (what a GET /metrics costs besides HTTP), and
 *            the share of one core at one scrape every 15 s.
 * for T = 8 and T = 64.  Simulated GPUs: NVML's calls are not counted (no
 * GPU here); prints the figures, asserts nothing.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/log.h"
#include "common/util.h"
#include "runtime/cgroup.h"

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A desired set of n attempts, each holding GPU i % 8, as the server sends it. */
static char *desired(int n)
{
    buf_t b;
    buf_init(&b, 1 << 22);
    if (buf_printf(&b, "{\"version\":2,\"seq\":2,\"ack\":[],\"tasks\":[") != PAI_OK)
        util_oom();
    for (int i = 0; i < n; i++)
        if (buf_printf(&b,
                       "%s{\"attempt_id\":\"alice~bench/0/worker/%d/0\",\"job\":\"alice~bench\","
                       "\"user\":\"alice\",\"role\":\"worker\",\"index\":%d,\"gpus\":[%d],"
                       "\"command\":\"export PAI_SIM_GPU_UTIL=70; sleep 100000\",\"env\":{"
                       "\"PAI_USER_NAME\":\"alice\",\"PAI_JOB_NAME\":\"alice~bench\","
                       "\"PAI_CURRENT_TASK_ROLE_NAME\":\"worker\",\"PAI_TASK_INDEX\":\"%d\","
                       "\"PAI_JOB_VC_NAME\":\"default\"}}",
                       i ? "," : "", i, i, i % 8, i) != PAI_OK)
            util_oom();
    if (buf_printf(&b, "]}") != PAI_OK)
        util_oom();
    return buf_take(&b);
}

static void run(int ntasks)
{
    agent_cfg_t cfg = {.server = "http://127.0.0.1:1",
                       .token = "t",
                       .address = "127.0.0.1",
                       .work_dir = "/tmp",
                       .hollow = true,
                       .nodes = 1,
                       .gpus = 8,
                       .gpu_model = "A100",
                       .wait_ms = 25000};
    agent_node_t n;
    if (node_init(&n, &cfg, "bench", runtime_find("hollow"), "http://x") != PAI_OK)
        exit(1);
    char *body = desired(ntasks);
    if (node_apply_response(&n, body, strlen(body)) != PAI_OK)
        exit(1);
    free(body);
    pid_t *kids = xcalloc((size_t)ntasks, sizeof(*kids));
    cg_t **cgs = xcalloc((size_t)ntasks, sizeof(*cgs));
    int in_cgroup = 0;
    for (int i = 0; i < ntasks; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            pause();
            _exit(0);
        }
        char rel[128];
        snprintf(rel, sizeof(rel), "pai/bench-%d/t%d", (int)getpid(), i);
        if (cg_version() != 0 && cg_create(rel, 256, 1, &cgs[i]) == PAI_OK &&
            cg_attach(cgs[i], kids[i]) == PAI_OK) {
            in_cgroup++;
            free(n.tasks[i]->stats.cgroup); /* where the agent would have made it */
            n.tasks[i]->stats.cgroup = xstrdup(rel);
        }
        n.tasks[i]->stats.pid = kids[i];
    }
    metrics_sample(&n, NULL, time_mono_ms(), time_wall_ms()); /* warm */
    int iters = 2000;
    double t0 = cpu_us();
    for (int k = 0; k < iters; k++)
        metrics_sample(&n, NULL, time_mono_ms(), time_wall_ms());
    double sample = (cpu_us() - t0) / iters;
    agent_node_t *nodes[] = {&n};
    buf_t out;
    buf_init(&out, 8u << 20);
    t0 = cpu_us();
    for (int k = 0; k < iters; k++) {
        buf_reset(&out);
        metrics_format(nodes, 1, &out);
    }
    double scrape = (cpu_us() - t0) / iters;
    printf("%2d tasks (%d in a pai cgroup), 8 GPUs: sample %.0f us (%.4f%% of a core every "
           "%d s), scrape %.0f us, %zu bytes (%.4f%% of a core every 15 s)\n",
           ntasks, in_cgroup, sample, sample / (METRICS_SAMPLE_MS * 10.0), METRICS_SAMPLE_MS / 1000,
           scrape, out.len, scrape / 150000.0);
    buf_free(&out);
    for (int i = 0; i < ntasks; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
        cg_destroy(cgs[i]);
    }
    free(kids);
    free(cgs);
    /* the leaves are gone; their parent pai/bench-<pid> too (best effort) */
    static const char *const roots[] = {"memory", "cpu", "."};
    for (size_t i = 0; i < ARRAY_LEN(roots); i++) {
        char p[256];
        snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/pai/bench-%d", roots[i], (int)getpid());
        (void)rmdir(p);
    }
    node_free(&n);
}

int main(void)
{
    char cpu[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(cpu, sizeof(cpu), f))
        if (strncmp(cpu, "model name", 10) == 0)
            break;
    if (f)
        fclose(f);
    cpu[strcspn(cpu, "\n")] = '\0';
    log_set_level((log_level_t)log_level_parse("warn"));
    printf("bench/agent: the agent's metrics (%s)\n",
           strchr(cpu, ':') ? strchr(cpu, ':') + 2 : cpu);
    run(8);
    run(64);
    return 0;
}
