/* test_agent_metrics.c - the agent's Prometheus exposition (metrics.c):
 * OpenPAI's names, labels, HELP/TYPE, escaping; simulated load; lost GPUs;
 * the NVML sampler through the fake driver; cgroup stat files. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent_fixture.h"
#include "agent/gpu.h"
#include "common/util.h"
#include "runtime/cgroup.h"
#include "test.h"
#include "wire/agentwire.h"

/* The fixture's hollow node with gpus GPUs. */
static agent_cfg_t hollow_gpus(int gpus)
{
    agent_cfg_t c = hollow_cfg();
    c.gpus = gpus;
    return c;
}

/* Give node n one running attempt holding gpus[0..ngpus), described by env
 * (NULL-terminated name, value pairs) and command. */
static void give_task(agent_node_t *n, const char *id, const char *const *env, const int *gpus,
                      size_t ngpus, const char *command)
{
    agentwire_task_t t = {
        .attempt_id = id, .job = "fallback", .user = "fb", .role = "r", .command = command};
    agentwire_env_t ev[8];
    while (env && env[2 * t.nenv] && t.nenv < 8) {
        ev[t.nenv] = (agentwire_env_t){env[2 * t.nenv], env[2 * t.nenv + 1]};
        t.nenv++;
    }
    t.env = xcalloc(t.nenv + 1, sizeof(*t.env));
    memcpy(t.env, ev, t.nenv * sizeof(*ev));
    t.gpus = xcalloc(ngpus + 1, sizeof(int));
    memcpy(t.gpus, gpus, ngpus * sizeof(int));
    t.ngpus = ngpus;
    agentwire_resp_t r = {.version = AGENTWIRE_VERSION, .seq = 2, .has_tasks = true};
    r.tasks = xcalloc(1, sizeof(*r.tasks));
    r.tasks[0] = t;
    r.ntasks = 1;
    json_t *j = agentwire_resp_encode(&r);
    char *s = json_dumps(j, JSON_COMPACT);
    CHECK(node_apply_response(n, s, strlen(s)) == PAI_OK);
    free(s);
    json_decref(j);
    agentwire_resp_clear(&r);
}

static char *format(agent_node_t **nodes, size_t nn)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    metrics_format(nodes, nn, &b);
    return buf_take(&b);
}

/* The value of the series whose line starts with prefix ("name{labels} "). */
static double value_of(const char *text, const char *prefix, bool *found)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (str_has_prefix(p, prefix)) {
            *found = true;
            return strtod(p + strlen(prefix), NULL);
        }
    *found = false;
    return -1;
}

static const char *const ENV[] = {"PAI_USER_NAME",
                                  "alice",
                                  "PAI_JOB_NAME",
                                  "alice~train",
                                  "PAI_CURRENT_TASK_ROLE_NAME",
                                  "worker",
                                  "PAI_TASK_INDEX",
                                  "3",
                                  "PAI_JOB_VC_NAME",
                                  "v\"q\\z\nw",
                                  NULL};

TEST(exposition_has_openpai_names_labels_and_help)
{
    agent_cfg_t cfg = hollow_gpus(4);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "h1", runtime_find("hollow"), "http://x") == PAI_OK);
    const int gpus[] = {1, 2};
    give_task(&n, "alice~train/0/worker/3/0", ENV, gpus, 2, "export PAI_SIM_GPU_UTIL=80; sleep 9");
    metrics_sample(&n, NULL, time_mono_ms(), 1000000);
    agent_node_t *nodes[] = {&n};
    char *text = format(nodes, 1);
    CHECK(strstr(text, "# HELP configured_gpu_count total number of gpu configured for this "
                       "node\n# TYPE configured_gpu_count gauge\nconfigured_gpu_count 4\n"));
    CHECK(strstr(text, "# HELP task_gpu_percent how much percent of gpu core this task used\n"
                       "# TYPE task_gpu_percent gauge\n"));
    CHECK(strstr(text, "# HELP task_mem_limit_byte how much memory this task are constrained to"));
    CHECK(strstr(text, "# HELP nvidiasmi_ecc_error_count count of nvidia ecc error\n"));
    CHECK(strstr(text, "# TYPE task_cpu_seconds_total counter\n"));
    CHECK(
        strstr(text, "# HELP task_mem_usage_percent how much percent of memory this task used\n"));
    /* OpenPAI's label names, in its order, and the value escaped */
    const char *labels = "{username=\"alice\",job_name=\"alice~train\",role_name=\"worker\","
                         "task_index=\"3\",virtual_cluster=\"v\\\"q\\\\z\\nw\"";
    char *want = str_printf("task_gpu_percent%s,minor_number=\"1\"} ", labels);
    bool found;
    double v = value_of(text, want, &found);
    CHECK(found && v >= 75 && v <= 85);
    free(want);
    want = str_printf("task_gpu_mem_percent%s,minor_number=\"2\"} ", labels);
    value_of(text, want, &found);
    CHECK(found);
    free(want);
    /* the GPUs it does not hold are idle; every GPU has its node series */
    CHECK(value_of(text, "gpu_utilization{minor_number=\"0\",vender=\"nvidia\"} ", &found) == 0 &&
          found);
    CHECK(value_of(text, "gpu_utilization{minor_number=\"2\",vender=\"nvidia\"} ", &found) > 70);
    CHECK(value_of(text, "nvidiasmi_utilization_gpu{minor_number=\"3\"} ", &found) == 0 && found);
    CHECK(value_of(text, "nvidiasmi_ecc_error_count{minor_number=\"0\",type=\"double\"} ",
                   &found) == 0 &&
          found);
    CHECK(value_of(text, "nvidiasmi_temperature{minor_number=\"1\"} ", &found) > 30 && found);
    CHECK(value_of(text, "pai_agent_tasks ", &found) == 1 && found);
    free(text);
    node_free(&n);
}

TEST(every_series_follows_its_help_and_type_once)
{
    agent_cfg_t cfg = hollow_gpus(2);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "h1", runtime_find("hollow"), "http://x") == PAI_OK);
    const int gpus[] = {0};
    give_task(&n, "alice~train/0/worker/3/0", ENV, gpus, 1, "sleep 9");
    metrics_sample(&n, NULL, time_mono_ms(), 0);
    agent_node_t *nodes[] = {&n};
    char *text = format(nodes, 1);
    char family[128] = "";
    size_t helps = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (str_has_prefix(l, "# HELP ")) {
            snprintf(family, sizeof(family), "%.*s", (int)strcspn(l + 7, " "), l + 7);
            helps++;
            continue;
        }
        if (str_has_prefix(l, "# TYPE ")) {
            CHECK(str_has_prefix(l + 7, family));
            CHECK(strstr(l, " gauge") || strstr(l, " counter"));
            continue;
        }
        /* a sample belongs to the family announced last */
        size_t fl = strlen(family);
        CHECK(fl && strncmp(l, family, fl) == 0 && (l[fl] == '{' || l[fl] == ' '));
    }
    CHECK(helps >= 17);
    free(text);
    node_free(&n);
}

TEST(task_figures_cpu_rate_memory_percent_and_cpu_seconds)
{
    agent_cfg_t cfg = hollow_gpus(2);
    cfg.memory_mb = 1024;
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "h1", runtime_find("hollow"), "http://x") == PAI_OK);
    const int gpus[] = {0};
    give_task(&n, "alice~train/0/worker/3/0", ENV, gpus, 1, "sleep 9");
    /* as a sample leaves them: 1.5 s of CPU, 256 MiB of a 512 MiB limit */
    char *cg = n.tasks[0]->stats.cgroup; /* the task's, freed with it */
    n.tasks[0]->stats = (task_stats_t){.cgroup = cg,
                                       .valid = true,
                                       .cpu_percent = 150,
                                       .mem_bytes = 256 << 20,
                                       .mem_limit_bytes = 512 << 20,
                                       .io_read_bytes = 7,
                                       .io_write_bytes = -1,
                                       .prev_cpu_ns = 1500000000,
                                       .prev_ms = 1};
    agent_node_t *nodes[] = {&n};
    char *text = format(nodes, 1);
    const char *l = "{username=\"alice\",job_name=\"alice~train\",role_name=\"worker\","
                    "task_index=\"3\",virtual_cluster=\"v\\\"q\\\\z\\nw\"} ";
    bool found;
    char *k = str_printf("task_cpu_percent%s", l);
    CHECK(value_of(text, k, &found) == 150 && found);
    free(k);
    k = str_printf("task_cpu_seconds_total%s", l);
    CHECK(value_of(text, k, &found) == 1.5 && found);
    free(k);
    k = str_printf("task_mem_usage_percent%s", l);
    CHECK(value_of(text, k, &found) == 50 && found);
    free(k);
    k = str_printf("task_block_in_byte%s", l);
    CHECK(value_of(text, k, &found) == 7 && found);
    free(k);
    k = str_printf("task_block_out_byte%s", l);
    value_of(text, k, &found);
    CHECK(!found); /* unknown: no series */
    free(k);
    free(text);
    /* unlimited: the percent is of the node's memory (1024 MiB) */
    n.tasks[0]->stats.mem_limit_bytes = -1;
    text = format(nodes, 1);
    k = str_printf("task_mem_usage_percent%s", l);
    CHECK(value_of(text, k, &found) == 25 && found);
    free(k);
    k = str_printf("task_mem_limit_byte%s", l);
    value_of(text, k, &found);
    CHECK(!found);
    free(k);
    free(text);
    node_free(&n);
}

TEST(simulated_load_is_declared_in_command_or_env)
{
    agentwire_task_t t = {.command = "export PAI_SIM_GPU_UTIL=70; python train.py"};
    CHECK_INT_EQ(metrics_sim_declared(&t), 70);
    t.command = "PAI_SIM_GPU_UTIL=\"55\" ./run";
    CHECK_INT_EQ(metrics_sim_declared(&t), 55);
    t.command = "MY_PAI_SIM_GPU_UTIL=9 sleep 1";
    CHECK_INT_EQ(metrics_sim_declared(&t), -1);
    t.command = "PAI_SIM_GPU_UTIL=150";
    CHECK_INT_EQ(metrics_sim_declared(&t), -1);
    t.command = "sleep 10";
    CHECK_INT_EQ(metrics_sim_declared(&t), -1);
    agentwire_env_t env[] = {{"PAI_SIM_GPU_UTIL", "30"}};
    t.env = env;
    t.nenv = 1;
    CHECK_INT_EQ(metrics_sim_declared(&t), 30);
    /* deterministic, plausible */
    CHECK(metrics_sim_util(80, 1, 12345) == metrics_sim_util(80, 1, 12345));
    for (int64_t ms = 0; ms < 240000; ms += 7000) {
        double u = metrics_sim_util(80, 3, ms);
        CHECK(u >= 75 && u <= 85);
    }
    CHECK(metrics_sim_util(0, 0, 5000) == 0 && metrics_sim_util(-1, 0, 5000) == 0);
    CHECK(metrics_sim_util(100, 0, 30000) <= 100);
}

TEST(a_lost_gpu_has_no_utilization_series)
{
    agent_cfg_t cfg = hollow_gpus(4);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "h1", runtime_find("hollow"), "http://x") == PAI_OK);
    n.gpus.gpus[2].healthy = false;
    metrics_sample(&n, NULL, time_mono_ms(), 0);
    agent_node_t *nodes[] = {&n};
    char *text = format(nodes, 1);
    bool found;
    value_of(text, "gpu_utilization{minor_number=\"2\"", &found);
    CHECK(!found);
    value_of(text, "gpu_utilization{minor_number=\"3\"", &found);
    CHECK(found);
    CHECK(value_of(text, "pai_agent_gpu_healthy{minor_number=\"2\"} ", &found) == 0 && found);
    CHECK(value_of(text, "configured_gpu_count ", &found) == 4 && found);
    json_t *req = node_sync_request(&n);
    json_t *g = json_object_get(json_object_get(req, "node"), "gpus");
    CHECK(json_is_number(json_object_get(json_array_get(g, 0), "utilization")));
    CHECK(!json_object_get(json_array_get(g, 2), "utilization"));
    CHECK(json_is_false(json_object_get(json_array_get(g, 2), "healthy")));
    CHECK(json_is_true(json_object_get(json_array_get(g, 1), "healthy")));
    json_decref(req);
    /* an uncorrectable ECC error makes a GPU unhealthy in the sync too */
    n.gpu_now[1].ecc_double = 2;
    req = node_sync_request(&n);
    g = json_object_get(json_object_get(req, "node"), "gpus");
    CHECK(json_is_false(json_object_get(json_array_get(g, 1), "healthy")));
    CHECK_INT_EQ(json_integer_value(json_object_get(
                     json_object_get(json_object_get(req, "node"), "health"), "gpus_healthy")),
                 2);
    json_decref(req);
    free(text);
    node_free(&n);
}

TEST(several_nodes_in_one_agent_are_told_apart_by_node_name)
{
    agent_cfg_t cfg = hollow_gpus(1);
    agent_node_t a, b;
    CHECK(node_init(&a, &cfg, "x-0", runtime_find("hollow"), "http://x") == PAI_OK);
    CHECK(node_init(&b, &cfg, "x-1", runtime_find("hollow"), "http://x") == PAI_OK);
    metrics_sample(&a, NULL, 1, 0);
    metrics_sample(&b, NULL, 1, 0);
    agent_node_t *nodes[] = {&a, &b};
    char *text = format(nodes, 2);
    CHECK(strstr(text, "configured_gpu_count{node_name=\"x-0\"} 1\n"));
    CHECK(strstr(text, "gpu_utilization{node_name=\"x-1\",minor_number=\"0\",vender=\"nvidia\"}"));
    free(text);
    node_free(&a);
    node_free(&b);
}

static bool fake_nvml(void)
{
    char exe[512], lib[600];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(lib, sizeof(lib), "%s/libfakenvml.so", exe);
    setenv("PAI_NVML_LIB", lib, 1);
    return access(lib, R_OK) == 0;
}

TEST(nvml_sampler_reads_utilization_temperature_ecc_and_loss)
{
    gpu_set_t g;
    CHECK(fake_nvml()); /* built by mk/agent.mk */
    CHECK(gpu_backend("nvml")->discover(&g, 0, NULL) == PAI_OK);
    gpu_sampler_t *s = gpu_sampler_new(&g);
    CHECK(s != NULL);
    gpu_sample_t x;
    CHECK(s && gpu_sampler_read(s, 1, &x));
    CHECK(x.ok && x.util == 60 && x.mem_util == 11 && x.temp_c == 51);
    CHECK(x.ecc_single == 1 && x.ecc_double == 0);
    setenv("FAKE_NVML_LOST", "1", 1);
    CHECK(s && !gpu_sampler_read(s, 1, &x) && !x.ok);
    CHECK(s && gpu_sampler_read(s, 0, &x) && x.util == 40);
    CHECK(s && !gpu_sampler_read(s, 7, &x));
    unsetenv("FAKE_NVML_LOST");
    gpu_sampler_free(s);
    /* a critical XID sticks to its GPU; an application's XID (13) does not count */
    setenv("FAKE_NVML_XID", "0:13", 1);
    s = gpu_sampler_new(&g);
    CHECK(s && gpu_sampler_read(s, 0, &x) && x.xid == 0 && gpu_sample_healthy(&x));
    gpu_sampler_free(s);
    setenv("FAKE_NVML_XID", "1:79", 1);
    s = gpu_sampler_new(&g);
    CHECK(s && gpu_sampler_read(s, 0, &x) && x.xid == 0);
    CHECK(s && gpu_sampler_read(s, 1, &x) && x.xid == 79 && !gpu_sample_healthy(&x));
    CHECK(s && gpu_sampler_read(s, 1, &x) && x.xid == 79); /* until the agent restarts */
    unsetenv("FAKE_NVML_XID");
    gpu_sampler_free(s);
    gpu_set_t sim;
    gpu_simulate(&sim, 2, "A100", "n");
    CHECK(gpu_sampler_new(&sim) == NULL); /* the agent computes simulated figures */
}

static void put(const char *dir, const char *file, const char *text)
{
    char *p = str_printf("%s/%s", dir, file);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(p);
}

TEST(cgroup_stats_read_v2_and_v1_files)
{
    char dir[] = "/tmp/pai-test-cgstat-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    put(dir, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n");
    put(dir, "memory.current", "1048576\n");
    put(dir, "memory.max", "max\n");
    put(dir, "io.stat",
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n"
        "8:16 rbytes=100 wbytes=0 rios=1 wios=0\n");
    cg_stats_t st = {-1, -1, -1, -1, -1};
    cg_stats_v2(dir, &st);
    CHECK(st.cpu_ns == 2500000000LL && st.mem_bytes == 1048576 && st.mem_limit_bytes == -1);
    CHECK(st.io_read_bytes == 4196 && st.io_write_bytes == 8192);
    put(dir, "cpuacct.usage", "123456789\n");
    put(dir, "memory.usage_in_bytes", "2048\n");
    put(dir, "memory.limit_in_bytes", "268435456\n");
    put(dir, "blkio.throttle.io_service_bytes",
        "8:0 Read 10\n8:0 Write 20\n8:0 Total 30\n"
        "Total 30\n");
    cg_stats_t v1 = {-1, -1, -1, -1, -1};
    cg_stats_v1(dir, dir, dir, &v1);
    CHECK(v1.cpu_ns == 123456789 && v1.mem_bytes == 2048 && v1.mem_limit_bytes == 268435456);
    CHECK(v1.io_read_bytes == 10 && v1.io_write_bytes == 20);
    put(dir, "memory.limit_in_bytes", "9223372036854771712\n");
    cg_stats_v1(NULL, dir, NULL, &v1);
    CHECK(v1.mem_limit_bytes == -1);
    /* a v2 tree under PAI_CGROUP_ROOT (cg_version() wants root for any) */
    if (geteuid() == 0) {
        char *sub = str_printf("%s/pai/n1/t%%2F0.abcd", dir);
        char *cmd = str_printf("mkdir -p '%s' && touch %s/cgroup.controllers", sub, dir);
        CHECK(system(cmd) == 0);
        put(sub, "memory.current", "4096\n");
        put(sub, "memory.max", "1048576\n");
        setenv("PAI_CGROUP_ROOT", dir, 1);
        char rel[256];
        CHECK(cg_find_child("pai/n1", "t%2F0.", rel, sizeof(rel)));
        CHECK_STR_EQ(rel, "pai/n1/t%2F0.abcd");
        CHECK(!cg_find_child("pai/n1", "other.", rel, sizeof(rel)));
        cg_stats_t v2 = {-1, -1, -1, -1, -1};
        CHECK(cg_stats_of(rel, &v2) == PAI_OK);
        CHECK(v2.mem_bytes == 4096 && v2.mem_limit_bytes == 1048576 && v2.cpu_ns == -1);
        CHECK(cg_stats_of("pai/n1/gone", &v2) == PAI_E_NOT_FOUND);
        unsetenv("PAI_CGROUP_ROOT");
        free(sub);
        free(cmd);
    }
    /* this process is in no pai cgroup */
    CHECK(cg_stats_of_pid(getpid(), &st) == PAI_E_NOT_FOUND);
    char *rm = str_printf("rm -rf %s", dir);
    CHECK(system(rm) == 0);
    free(rm);
}

TEST(injected_faults_make_simulated_gpus_unhealthy_and_recover)
{
    gpu_sample_t s[4];
    for (int i = 0; i < 4; i++)
        s[i] = (gpu_sample_t){.ok = true};
    gpu_apply_faults("# drill\n1 lost\n2 ecc\n3 xid 48\n9 lost\nx ecc\n0 bogus\n", s, 4);
    CHECK(gpu_sample_healthy(&s[0]));
    CHECK(!s[1].ok && s[2].ecc_double == 1 && s[3].xid == 48);
    CHECK(!gpu_sample_healthy(&s[1]) && !gpu_sample_healthy(&s[2]) && !gpu_sample_healthy(&s[3]));
    /* the agent: a fault file in the node's dir, reported in the sync, then cleared */
    char dir[] = "/tmp/pai-test-fault-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    agent_cfg_t cfg = hollow_gpus(4);
    cfg.work_dir = dir;
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "f1", runtime_find("hollow"), "http://x") == PAI_OK);
    put(dir, "gpu-faults", "2 xid 79\n");
    n.dirty = false;
    metrics_sample(&n, NULL, time_mono_ms(), 0);
    CHECK(n.dirty && n.gpu_bad == 4);
    json_t *req = node_sync_request(&n);
    json_t *g = json_object_get(json_object_get(req, "node"), "gpus");
    CHECK(json_is_false(json_object_get(json_array_get(g, 2), "healthy")));
    CHECK(json_is_true(json_object_get(json_array_get(g, 3), "healthy")));
    json_decref(req);
    agent_node_t *nodes[] = {&n};
    char *text = format(nodes, 1);
    bool found;
    CHECK(value_of(text, "pai_agent_gpu_healthy{minor_number=\"2\"} ", &found) == 0 && found);
    CHECK(value_of(text, "pai_agent_gpu_healthy{minor_number=\"1\"} ", &found) == 1 && found);
    free(text);
    put(dir, "gpu-faults", "");
    n.dirty = false;
    metrics_sample(&n, NULL, time_mono_ms(), 0);
    CHECK(n.dirty && n.gpu_bad == 0);
    node_free(&n);
    char *rm = str_printf("rm -rf %s", dir);
    CHECK(system(rm) == 0);
    free(rm);
}

RUN_TESTS(exposition_has_openpai_names_labels_and_help, every_series_follows_its_help_and_type_once,
          task_figures_cpu_rate_memory_percent_and_cpu_seconds,
          simulated_load_is_declared_in_command_or_env, a_lost_gpu_has_no_utilization_series,
          several_nodes_in_one_agent_are_told_apart_by_node_name,
          nvml_sampler_reads_utilization_temperature_ecc_and_loss,
          injected_faults_make_simulated_gpus_unhealthy_and_recover,
          cgroup_stats_read_v2_and_v1_files)
