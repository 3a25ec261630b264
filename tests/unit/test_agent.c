/* test_agent.c - reconcile, GPU discovery parsers, the node's sync state. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/gpu.h"
#include "agent/reconcile.h"
#include "common/limits.h"
#include "common/util.h"
#include "test.h"
#include "wire/agentwire.h"

static size_t count_kind(const rc_action_t *a, size_t n, rc_kind_t k)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += a[i].kind == k;
    return c;
}

TEST(reconcile_starts_new_desired_attempts)
{
    const char *desired[] = {"a/0/r/0/0", "a/0/r/1/0"};
    rc_actual_t actual[] = {{"a/0/r/0/0", RC_ACTIVE}};
    rc_action_t out[4];
    size_t n = reconcile(desired, 2, actual, 1, out);
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(out[0].kind, RC_START);
    CHECK_INT_EQ(out[0].index, 1);
}

TEST(reconcile_never_restarts_finished_attempts)
{
    const char *desired[] = {"a/0/r/0/0"};
    rc_actual_t actual[] = {{"a/0/r/0/0", RC_DONE}};
    rc_action_t out[2];
    CHECK_INT_EQ(reconcile(desired, 1, actual, 1, out), 0);
}

TEST(reconcile_stops_undesired_active_attempts_once)
{
    rc_actual_t actual[] = {{"x", RC_ACTIVE}, {"y", RC_STOPPING}, {"z", RC_DONE}};
    rc_action_t out[3];
    size_t n = reconcile(NULL, 0, actual, 3, out);
    CHECK_INT_EQ(n, 1);
    CHECK_INT_EQ(out[0].kind, RC_STOP);
    CHECK_INT_EQ(out[0].index, 0);
}

TEST(reconcile_is_idempotent_and_dedups_repeats)
{
    const char *desired[] = {"b", "a", "b"};
    rc_action_t out[3];
    size_t n = reconcile(desired, 3, NULL, 0, out);
    CHECK_INT_EQ(n, 2);
    CHECK_INT_EQ(count_kind(out, n, RC_START), 2);
    rc_actual_t actual[] = {{"a", RC_ACTIVE}, {"b", RC_ACTIVE}};
    CHECK_INT_EQ(reconcile(desired, 3, actual, 2, out), 0);
}

TEST(reconcile_mixed_start_and_stop)
{
    const char *desired[] = {"n1", "n2", "keep"};
    rc_actual_t actual[] = {{"keep", RC_ACTIVE}, {"gone", RC_ACTIVE}, {"old", RC_DONE}};
    rc_action_t out[6];
    size_t n = reconcile(desired, 3, actual, 3, out);
    CHECK_INT_EQ(count_kind(out, n, RC_START), 2);
    CHECK_INT_EQ(count_kind(out, n, RC_STOP), 1);
}

TEST(smi_csv_and_topology_parse)
{
    const char *csv = "0, GPU-aaa, NVIDIA H200, 143771, 00000000:19:00.0\n"
                      "1, GPU-bbb, NVIDIA H200, 143771, 00000000:3B:00.0\n";
    const char *topo = "\tGPU0\tGPU1\tCPU Affinity\n"
                       "GPU0\t X \tNV18\t0-47\n"
                       "GPU1\tNV18\t X \t0-47\n";
    gpu_set_t g;
    CHECK(gpu_parse_smi_csv(csv, &g) == PAI_OK);
    CHECK_INT_EQ(g.n, 2);
    CHECK_STR_EQ(g.gpus[1].uuid, "GPU-bbb");
    CHECK_STR_EQ(g.gpus[0].model, "NVIDIA H200");
    CHECK_INT_EQ(g.gpus[0].memory_mb, 143771);
    CHECK_STR_EQ(g.gpus[1].pci_bus, "00000000:3B:00.0");
    gpu_parse_smi_topo(topo, &g);
    CHECK(g.has_topo);
    CHECK_INT_EQ(g.topo[0][1], 10);
    CHECK_INT_EQ(g.topo[1][1], 0);
    CHECK(gpu_parse_smi_csv("garbage line\n", &g) != PAI_OK);
}

TEST(simulated_gpus_have_model_memory_and_topology)
{
    gpu_set_t g;
    gpu_simulate(&g, 8, "A100", "n1");
    CHECK_INT_EQ(g.n, 8);
    CHECK_STR_EQ(g.gpus[7].model, "A100");
    CHECK_INT_EQ(g.gpus[0].memory_mb, 81920);
    CHECK_STR_EQ(g.gpus[3].uuid, "GPU-sim-n1-3");
    CHECK_INT_EQ(g.topo[0][3], 20);
    CHECK_INT_EQ(g.topo[0][4], 40);
    CHECK(gpu_backend("nvml") && gpu_backend("nvidia-smi") && gpu_backend("sim"));
}

TEST(nvml_backend_fails_cleanly_without_driver)
{
    gpu_set_t g;
    setenv("PAI_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
    CHECK(gpu_backend("nvml")->discover(&g, 0, NULL) == PAI_E_UNAVAILABLE);
    unsetenv("PAI_NVML_LIB");
}

TEST(nvml_backend_reads_a_driver_through_dlopen)
{
    char exe[512], lib[600];
    gpu_set_t g;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    CHECK(n > 0);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(lib, sizeof(lib), "%s/libfakenvml.so", exe);
    CHECK(access(lib, R_OK) == 0); /* built by mk/agent.mk */
    setenv("PAI_NVML_LIB", lib, 1);
    CHECK(gpu_backend("nvml")->discover(&g, 0, NULL) == PAI_OK);
    unsetenv("PAI_NVML_LIB");
    CHECK_STR_EQ(g.backend, "nvml");
    CHECK_INT_EQ(g.n, 2);
    CHECK_STR_EQ(g.gpus[1].uuid, "GPU-fake-1");
    CHECK_STR_EQ(g.gpus[0].model, "Fake H200");
    CHECK_INT_EQ(g.gpus[0].memory_mb, 143771);
    CHECK_STR_EQ(g.gpus[1].pci_bus, "00000000:1B:00.0");
    CHECK(g.has_topo && g.topo[0][1] == 10 && g.topo[1][1] == 0);
    CHECK(g.gpus[0].healthy && g.gpus[1].healthy);
}

#include "agent_fixture.h"

static json_t *find_task(json_t *req, const char *id)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(req, "tasks"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "attempt_id")), id) == 0)
            return t;
    }
    return NULL;
}

TEST(node_applies_desired_state_reports_and_forgets_acked)
{
    agent_cfg_t cfg = hollow_cfg();
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "h1", runtime_find("hollow"), "http://x") == PAI_OK);
    const char *resp = "{\"version\":1,\"seq\":3,\"ack\":[],\"heartbeat_ms\":2000,\"tasks\":["
                       "{\"attempt_id\":\"u~j/0/r/0/0\",\"command\":\"exit 3\"},"
                       "{\"attempt_id\":\"u~j/0/r/1/0\",\"command\":\"sleep 100\"}]}";
    CHECK(node_apply_response(&n, resp, strlen(resp)) == PAI_OK);
    CHECK_INT_EQ(n.ntasks, 2);
    CHECK_INT_EQ(n.known_seq, 3);
    CHECK_INT_EQ(n.heartbeat_ms, 2000);
    node_task_event(&n, -1);
    n.tasks[0]->next_poll_ms = 0;
    json_t *req = node_sync_request(&n);
    CHECK_INT_EQ(json_integer_value(json_object_get(req, "version")), AGENT_WIRE_VERSION);
    CHECK_INT_EQ(json_integer_value(json_object_get(req, "known_seq")), 3);
    CHECK_INT_EQ(json_integer_value(json_object_get(req, "wait_ms")), 2000);
    CHECK(json_is_true(json_object_get(req, "hold_acks"))); /* acks ride the next answer */
    CHECK_INT_EQ(json_array_size(json_object_get(json_object_get(req, "node"), "gpus")), 8);
    json_decref(req);
    /* the same desired set again starts nothing; an ack forgets the exit */
    CHECK(node_apply_response(&n, resp, strlen(resp)) == PAI_OK);
    CHECK_INT_EQ(n.ntasks, 2);
    const char *ack = "{\"version\":1,\"seq\":4,\"ack\":[\"u~j/0/r/0/0\"],\"tasks\":["
                      "{\"attempt_id\":\"u~j/0/r/1/0\",\"command\":\"sleep 100\"}]}";
    /* let the hollow "exit 3" finish first */
    for (size_t i = 0; i < n.ntasks; i++)
        n.tasks[i]->next_poll_ms = 0;
    CURLM *m = curl_multi_init();
    n.next_sync_ms = INT64_MAX;
    node_tick(&n, m, time_mono_ms());
    req = node_sync_request(&n);
    json_t *t0 = find_task(req, "u~j/0/r/0/0");
    CHECK_STR_EQ(json_string_value(json_object_get(t0, "state")), "exited");
    CHECK_INT_EQ(json_integer_value(json_object_get(t0, "exit_code")), 3);
    json_decref(req);
    CHECK(node_apply_response(&n, ack, strlen(ack)) == PAI_OK);
    /* the acked one is a tombstone, after the attempts not acked (the
     * loop's scans look at those only), and still found by its id */
    CHECK_INT_EQ(n.nlive, 1);
    CHECK_STR_EQ(n.tasks[0]->id, "u~j/0/r/1/0");
    CHECK(n.tasks[1] == task_find(&n, "u~j/0/r/0/0") && n.tasks[1]->acked);
    req = node_sync_request(&n);
    CHECK(find_task(req, "u~j/0/r/0/0") == NULL);
    CHECK(find_task(req, "u~j/0/r/1/0") != NULL);
    json_decref(req);
    /* dropped from the desired set: stopped */
    const char *none = "{\"version\":1,\"seq\":5,\"tasks\":[]}";
    CHECK(node_apply_response(&n, none, strlen(none)) == PAI_OK);
    node_tick(&n, m, time_mono_ms());
    req = node_sync_request(&n);
    t0 = find_task(req, "u~j/0/r/1/0");
    CHECK_INT_EQ(json_integer_value(json_object_get(t0, "exit_code")), 143);
    json_decref(req);
    CHECK(node_apply_response(&n, "{\"version\":9}", 13) == PAI_E_PROTOCOL);
    CHECK(node_apply_response(&n, "not json", 8) == PAI_E_PROTOCOL);
    node_free(&n);
    curl_multi_cleanup(m);
}

/* The node's description is encoded for the first sync and reused by the
 * next ones until something in it changes (a GPU goes unhealthy, then
 * back); what is sent is the request node_sync_request builds. */
TEST(node_reencodes_its_description_only_when_it_changes)
{
    agent_cfg_t cfg = hollow_cfg();
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "w1", runtime_find("hollow"), "http://x") == PAI_OK);
    buf_t body;
    buf_init(&body, PAI_MAX_AGENT_MSG);
    char digest[32] = "";
    for (int i = 0; i < 3; i++) {
        buf_reset(&body);
        CHECK(node_sync_body(&n, &body) == PAI_OK && body.len == strlen(buf_str(&body)));
        json_t *sent = json_loads(buf_str(&body), 0, NULL), *built = node_sync_request(&n);
        /* the body names its description's digest (version 4, "desc"),
         * the same one each time; the rest is what the request builds */
        json_t *sn = json_object_get(sent, "node");
        const char *desc = json_string_value(json_object_get(sn, "desc"));
        CHECK(desc && strlen(desc) == 16);
        if (i == 0)
            str_copy(digest, desc ? desc : "", sizeof(digest));
        CHECK_STR_EQ(desc ? desc : "", digest);
        json_object_del(sn, "desc");
        CHECK(sent && json_equal(sent, built)); /* health read once a second: the same */
        json_decref(sent);
        json_decref(built);
    }
    CHECK_INT_EQ(n.wire.encodes, 1);
    n.gpus.gpus[3].healthy = false;
    buf_reset(&body);
    CHECK(node_sync_body(&n, &body) == PAI_OK);
    CHECK(strstr(buf_str(&body), "\"healthy\":false") != NULL);
    CHECK_INT_EQ(n.wire.encodes, 2);
    buf_reset(&body);
    CHECK(node_sync_body(&n, &body) == PAI_OK);
    CHECK_INT_EQ(n.wire.encodes, 2);
    n.gpus.gpus[3].healthy = true;
    buf_reset(&body);
    CHECK(node_sync_body(&n, &body) == PAI_OK);
    CHECK(strstr(buf_str(&body), "\"healthy\":false") == NULL);
    CHECK_INT_EQ(n.wire.encodes, 3);
    /* the load and free disk are read again once HEALTH_READ_MS passed */
    n.health_load1 = 12345;
    buf_reset(&body);
    CHECK(node_sync_body(&n, &body) == PAI_OK);
    CHECK(strstr(buf_str(&body), "\"load1\":12345.0") != NULL);
    n.health_ms -= 1000;
    buf_reset(&body);
    CHECK(node_sync_body(&n, &body) == PAI_OK);
    CHECK(strstr(buf_str(&body), "\"load1\":12345.0") == NULL);
    CHECK_INT_EQ(n.wire.encodes, 3);
    buf_free(&body);
    node_free(&n);
}

/* A restarted agent finds its attempts from the record alone (the "id" and
 * "acked" lines, no files of their own), and an older agent's `id` and
 * `acked` files. */
TEST(node_recovers_attempts_from_the_record_and_old_files)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", d[600];
    agent_cfg_t cfg = work_dir_cfg(work);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "r1", runtime_find("process"), "http://x") == PAI_OK);
    const char *ids[4] = {"u~j/0/r/0/0", "u~j/0/r/1/0", "u~j/0/r/2/0", "u~j/0/r/3/0"};
    for (int i = 0; i < 4; i++) {
        snprintf(d, sizeof(d), "%s/tasks/u~j+0+r+%d+0", work, i);
        CHECK(mkdir(d, 0711) == 0);
        if (i < 2) { /* this agent's record */
            CHECK(rt_record_create(d, ids[i]) == 0);
            CHECK(rt_record_append(d, "mon 999999 1 7\ntask 4242\n") == 0);
            CHECK(rt_record_append(d, "exit exited 4 0 0 1000 2000\n") == 0);
            if (i == 1)
                CHECK(rt_record_append(d, "acked\n") == 0);
        } else { /* an older agent's files */
            put_file(d, "id", ids[i]);
            put_file(d, "monitor", "999999 1\n");
            put_file(d, "exit", "exited 6 0 0 1000 2000\n");
            if (i == 3)
                put_file(d, "acked", "1\n");
        }
    }
    node_recover(&n);
    CHECK_INT_EQ(n.ntasks, 4);
    for (int i = 0; i < 4; i++) {
        agent_task_t *t = task_find(&n, ids[i]);
        CHECK(t != NULL);
        if (!t)
            continue;
        CHECK(t->acked == (i == 1 || i == 3));
        if (!t->acked) {
            CHECK(t->phase == RC_DONE);
            CHECK_INT_EQ(t->res.exit_code, i < 2 ? 4 : 6);
        }
    }
    /* an ack is a line of the node's journal: the dir goes to the pool at
     * once, and a restarted agent still knows the attempt as acked */
    task_mark_acked(&n, task_find(&n, ids[0]));
    char p[700];
    snprintf(d, sizeof(d), "%s/tasks/u~j+0+r+0+0", work);
    CHECK(access(d, F_OK) != 0); /* removed: no cwd, not pooled */
    snprintf(p, sizeof(p), "%s/acked-attempts", work);
    buf_t jb;
    buf_init(&jb, 4096);
    CHECK(buf_read_file(&jb, p) == PAI_OK);
    CHECK_STR_EQ(buf_str(&jb), "u~j/0/r/0/0\n");
    buf_free(&jb);
    node_free(&n);
    /* the journal also names one whose dir is still there (a crash between
     * the two): it is known as acked, and its dir goes to the pool when
     * forgotten */
    put_file(work, "acked-attempts", "u~j/0/r/0/0\nu~j/0/r/2/0\n");
    CHECK(node_init(&n, &cfg, "r1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    for (int i = 1; i < 4; i++) /* by the journal (2), the record (1), an old file (3) */
        CHECK(task_find(&n, ids[i]) && task_find(&n, ids[i])->acked);
    agent_task_t *t0 = task_find(&n, ids[0]), *t2 = task_find(&n, ids[2]);
    CHECK(t0 && t0->acked && t0->dir_gone);
    CHECK(t2 && t2->acked && !t2->dir_gone);
    task_prune_tombstones(&n, time_mono_ms() + 11 * 60 * 1000);
    snprintf(d, sizeof(d), "%s/tasks/u~j+0+r+2+0", work);
    CHECK(access(d, F_OK) != 0);
    CHECK(task_find(&n, ids[0]) == NULL && task_find(&n, ids[2]) == NULL);
    node_free(&n);
    remove_work_dir(work);
}

/* A sync answer's acks go into the journal in one write (whole lines, an
 * id acked twice in one answer once), and their dirs into the pool. */
TEST(node_journals_an_answers_acks_in_one_write)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", d[600];
    agent_cfg_t cfg = work_dir_cfg(work);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "r1", runtime_find("process"), "http://x") == PAI_OK);
    for (int i = 0; i < 3; i++) {
        char id[64];
        snprintf(id, sizeof(id), "u~j/0/r/%d/0", i);
        snprintf(d, sizeof(d), "%s/tasks/u~j+0+r+%d+0", work, i);
        CHECK(mkdir(d, 0711) == 0);
        CHECK(rt_record_create(d, id) == 0);
        CHECK(rt_record_append(d, "mon 999999 1 7\ntask 4242\nexit exited 0 0 0 1 2\n") == 0);
    }
    node_recover(&n);
    CHECK_INT_EQ(n.ntasks, 3);
    /* the journal's fd a packet socket: one packet per write */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    n.journal_fd = sv[0];
    const char *ack = "{\"version\":1,\"seq\":4,\"ack\":[\"u~j/0/r/0/0\",\"u~j/0/r/2/0\","
                      "\"u~j/0/r/0/0\",\"u~j/9/r/0/0\"],\"tasks\":[]}";
    CHECK(node_apply_response(&n, ack, strlen(ack)) == PAI_OK);
    char got[256];
    ssize_t len = recv(sv[1], got, sizeof(got) - 1, MSG_DONTWAIT);
    CHECK(len > 0);
    got[len > 0 ? len : 0] = '\0';
    CHECK_STR_EQ(got, "u~j/0/r/0/0\nu~j/0/r/2/0\n");
    CHECK(recv(sv[1], got, sizeof(got), MSG_DONTWAIT) < 0 && errno == EAGAIN);
    CHECK_INT_EQ(n.acked_lines, 2);
    for (int i = 0; i < 3; i++) {
        char id[64];
        snprintf(id, sizeof(id), "u~j/0/r/%d/0", i);
        agent_task_t *t = task_find(&n, id);
        CHECK(t && t->acked == (i != 1) && t->dir_gone == (i != 1));
        snprintf(d, sizeof(d), "%s/tasks/u~j+0+r+%d+0", work, i);
        CHECK((access(d, F_OK) == 0) == (i == 1)); /* the acked ones pooled */
    }
    CHECK_INT_EQ(n.nlive, 1);
    node_free(&n);
    close(sv[1]);
    remove_work_dir(work);
}

TEST(node_keeps_an_issued_credential_in_a_0600_file_and_reads_it_back)
{
    char dir[] = "/tmp/pai-test-cred-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    agent_cfg_t cfg = hollow_cfg();
    cfg.work_dir = dir;
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "c1", runtime_find("hollow"), "http://x") == PAI_OK);
    CHECK_STR_EQ(n.cred, "");
    const char *resp = "{\"version\":2,\"seq\":1,\"credential\":\"pn1.0a0b\"}";
    CHECK(node_apply_response(&n, resp, strlen(resp)) == PAI_OK);
    CHECK_STR_EQ(n.cred, "pn1.0a0b");
    char *path = str_printf("%s/node.credential", dir);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    node_free(&n);
    agent_node_t again;
    CHECK(node_init(&again, &cfg, "c1", runtime_find("hollow"), "http://x") == PAI_OK);
    CHECK_STR_EQ(again.cred, "pn1.0a0b");
    node_free(&again);
    unlink(path);
    rmdir(dir);
    free(path);
}

/* A task's environment: the agent's base (HOME, LANG, USER, LOGNAME,
 * SHELL), the server's variables, the GPU defaults the server left out. */
TEST(node_gives_a_task_its_environment)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[400];
    agent_cfg_t cfg = work_dir_cfg(work);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    agentwire_env_t env[] = {{"PAI_JOB_NAME", "u~envjob"}, {"EMPTY", ""}, {"SPACED", "a b=c"}};
    int gpus[] = {3, 5};
    agentwire_task_t want = {.attempt_id = "u~envjob/0/r/0/0",
                             .command = "env > env.out",
                             .env = env,
                             .nenv = ARRAY_LEN(env),
                             .gpus = gpus,
                             .ngpus = 2};
    task_start(&n, &want);
    agent_task_t *t = task_find(&n, "u~envjob/0/r/0/0");
    CHECK(t != NULL);
    for (int i = 0; t && i < 1000 && t->phase != RC_DONE; i++) {
        task_poll(&n, t);
        usleep(10000);
    }
    CHECK(t && t->phase == RC_DONE && t->res.exit_code == 0);
    /* its dir is a slot of tasks/ (agent/dirpool.h): HOME and the cwd */
    int slot = t ? t->slot : -1;
    CHECK(slot >= 0);
    snprintf(p, sizeof(p), "%s/tasks/%d/cwd/env.out", work, slot);
    buf_t b;
    buf_init(&b, 1 << 20);
    CHECK(buf_read_file(&b, p) == PAI_OK);
    char *home = str_printf("\nHOME=%s/tasks/%d/cwd\n", work, slot);
    char *shell = str_printf("\nSHELL=%s\n", rt_process_shell());
    const char *want_lines[] = {home,
                                "\nLANG=C.UTF-8\n",
                                "\nUSER=u\n",
                                "\nLOGNAME=u\n",
                                shell,
                                "\nPAI_JOB_NAME=u~envjob\n",
                                "\nEMPTY=\n",
                                "\nSPACED=a b=c\n",
                                "\nCUDA_VISIBLE_DEVICES=3,5\n",
                                "\nNVIDIA_VISIBLE_DEVICES=3,5\n"};
    char *text = str_printf("\n%s", buf_str(&b));
    for (size_t i = 0; i < ARRAY_LEN(want_lines); i++) {
        if (!strstr(text, want_lines[i]))
            fprintf(stderr, "  missing:%s", want_lines[i]);
        CHECK(strstr(text, want_lines[i]) != NULL);
    }
    free(text);
    free(home);
    free(shell);
    buf_free(&b);
    node_free(&n);
    remove_work_dir(work);
}

/* Where an attempt's logs are: flat files in logs/ (logs/<id>.<kind>), or
 * an older agent's monitor's dir logs/<id>/; none for an attempt the node
 * neither knows nor has logs of. */
TEST(node_finds_flat_logs_and_an_older_agents_log_dir)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[300];
    agent_cfg_t cfg = work_dir_cfg(work);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "l1", runtime_find("process"), "http://x") == PAI_OK);
    put_file(work, "logs/u~j+0+r+0+0.all", "flat\n");
    snprintf(p, sizeof(p), "%s/logs/u~j+0+r+1+0", work);
    CHECK(mkdir(p, 0700) == 0);
    char *a = node_log_prefix(&n, "u~j/0/r/0/0"), *b = node_log_prefix(&n, "u~j/0/r/1/0");
    char *none = node_log_prefix(&n, "u~j/0/r/2/0");
    snprintf(p, sizeof(p), "%s/logs/u~j+0+r+0+0.", work);
    CHECK(a && strcmp(a, p) == 0);
    snprintf(p, sizeof(p), "%s/logs/u~j+0+r+1+0/", work);
    CHECK(b && strcmp(b, p) == 0);
    CHECK(none == NULL);
    free(a);
    free(b);
    node_free(&n);
    remove_work_dir(work);
}

/* The journal of acked attempts is rewritten without the forgotten ones
 * once they are most of it (and past 1,024 lines). */
TEST(node_compacts_its_journal_of_acked_attempts)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[300];
    agent_cfg_t cfg = work_dir_cfg(work);
    buf_t j;
    buf_init(&j, 1 << 20);
    for (int i = 0; i < 1100; i++)
        CHECK(buf_printf(&j, "u~j/0/r/%d/0\n", i) == PAI_OK);
    put_file(work, "acked-attempts", buf_str(&j));
    buf_free(&j);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "j1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    CHECK_INT_EQ(n.ntasks, 1100);
    CHECK_INT_EQ(n.nlive, 0); /* tombstones all: no scan of the loop sees them */
    CHECK(task_find(&n, "u~j/0/r/1099/0") && task_find(&n, "u~j/0/r/1099/0")->acked);
    CHECK_INT_EQ(n.acked_lines, 1100);
    task_prune_tombstones(&n, time_mono_ms() + 60 * 1000); /* none forgotten yet */
    CHECK_INT_EQ(n.acked_lines, 1100);
    task_prune_tombstones(&n, time_mono_ms() + 11 * 60 * 1000);
    CHECK_INT_EQ(n.ntasks, 0);
    CHECK(task_find(&n, "u~j/0/r/1099/0") == NULL);
    CHECK_INT_EQ(n.acked_lines, 0);
    struct stat st;
    snprintf(p, sizeof(p), "%s/acked-attempts", work);
    CHECK(stat(p, &st) == 0 && st.st_size == 0 && (st.st_mode & 0777) == 0600);
    node_free(&n);
    CHECK(node_init(&n, &cfg, "j1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    CHECK_INT_EQ(n.ntasks, 0);
    node_free(&n);
    remove_work_dir(work);
}

static const agent_task_t *task_of(const agent_node_t *n, const char *id)
{
    return task_find(n, id);
}

/* Version 3: a delta is applied to the set the agent keeps (what entered
 * is started, what left is stopped, the rest left alone); one against a
 * base the agent does not hold changes nothing and drops its base, as
 * does a kept attempt the node does not know, so that the next answer is
 * the whole set; the request echoes the epoch of its base. */
TEST(node_applies_deltas_to_the_set_it_keeps)
{
    agent_cfg_t cfg = hollow_cfg();
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "d1", runtime_find("hollow"), "http://x") == PAI_OK);
    json_t *req = node_sync_request(&n); /* first sync: no base */
    CHECK_INT_EQ(json_integer_value(json_object_get(req, "version")), AGENT_WIRE_VERSION);
    CHECK(json_object_get(req, "epoch") == NULL);
    json_decref(req);
    const char *full = "{\"version\":3,\"seq\":3,\"ack\":[],\"epoch\":\"e1\",\"tasks\":["
                       "{\"attempt_id\":\"u~j/0/r/0/0\",\"command\":\"sleep 100\"},"
                       "{\"attempt_id\":\"u~j/0/r/1/0\",\"command\":\"sleep 100\"}]}";
    CHECK(node_apply_response(&n, full, strlen(full)) == PAI_OK);
    CHECK_INT_EQ(n.ntasks, 2);
    CHECK_INT_EQ(strmap_count(n.desired), 2);
    req = node_sync_request(&n);
    CHECK_STR_EQ(json_string_value(json_object_get(req, "epoch")), "e1");
    CHECK_INT_EQ(json_integer_value(json_object_get(req, "known_seq")), 3);
    json_decref(req);
    const char *delta = "{\"version\":3,\"seq\":5,\"ack\":[],\"epoch\":\"e1\",\"base_seq\":3,"
                        "\"tasks\":[{\"attempt_id\":\"u~j/0/r/2/0\",\"command\":\"sleep 100\"}],"
                        "\"removed\":[\"u~j/0/r/0/0\"]}";
    CHECK(node_apply_response(&n, delta, strlen(delta)) == PAI_OK);
    CHECK_INT_EQ(n.ntasks, 3);
    CHECK_INT_EQ(n.known_seq, 5);
    CHECK(task_of(&n, "u~j/0/r/0/0")->phase != RC_ACTIVE); /* left: stopped */
    CHECK(task_of(&n, "u~j/0/r/1/0")->phase == RC_ACTIVE); /* kept: untouched */
    CHECK(task_of(&n, "u~j/0/r/2/0")->phase == RC_ACTIVE); /* entered: started */
    CHECK_INT_EQ(strmap_count(n.desired), 2);
    /* nothing changed: an empty delta stops nothing */
    const char *same = "{\"version\":3,\"seq\":6,\"ack\":[],\"epoch\":\"e1\",\"base_seq\":5,"
                       "\"tasks\":[],\"removed\":[]}";
    CHECK(node_apply_response(&n, same, strlen(same)) == PAI_OK);
    CHECK(task_of(&n, "u~j/0/r/1/0")->phase == RC_ACTIVE);
    CHECK(task_of(&n, "u~j/0/r/2/0")->phase == RC_ACTIVE);
    CHECK_INT_EQ(n.known_seq, 6);
    /* a superseded poll's answer (no tasks) changes nothing */
    const char *sup = "{\"version\":3,\"seq\":6,\"ack\":[],\"epoch\":\"e1\"}";
    CHECK(node_apply_response(&n, sup, strlen(sup)) == PAI_OK);
    CHECK_INT_EQ(n.known_seq, 6);
    CHECK_STR_EQ(n.epoch, "e1");
    /* a delta against another base or epoch: nothing applied, no base */
    const char *other[] = {
        "{\"version\":3,\"seq\":9,\"ack\":[],\"epoch\":\"e1\",\"base_seq\":4,\"tasks\":["
        "{\"attempt_id\":\"u~j/0/r/3/0\",\"command\":\"true\"}],\"removed\":[\"u~j/0/r/1/0\"]}",
        "{\"version\":3,\"seq\":9,\"ack\":[],\"epoch\":\"e2\",\"base_seq\":6,\"tasks\":["
        "{\"attempt_id\":\"u~j/0/r/3/0\",\"command\":\"true\"}],\"removed\":[\"u~j/0/r/1/0\"]}",
    };
    for (size_t i = 0; i < ARRAY_LEN(other); i++) {
        n.known_seq = 6;
        str_copy(n.epoch, "e1", sizeof n.epoch);
        CHECK(node_apply_response(&n, other[i], strlen(other[i])) == PAI_OK);
        CHECK(task_of(&n, "u~j/0/r/3/0") == NULL);
        CHECK(task_of(&n, "u~j/0/r/1/0")->phase == RC_ACTIVE);
        CHECK_INT_EQ(n.known_seq, 0);
        CHECK_STR_EQ(n.epoch, "");
        req = node_sync_request(&n);
        CHECK(json_object_get(req, "epoch") == NULL);
        CHECK_INT_EQ(json_integer_value(json_object_get(req, "known_seq")), 0);
        json_decref(req);
    }
    /* the whole set again (another server): the kept set is replaced */
    const char *again = "{\"version\":3,\"seq\":2,\"ack\":[],\"epoch\":\"e3\",\"tasks\":["
                        "{\"attempt_id\":\"u~j/0/r/1/0\"},{\"attempt_id\":\"u~j/0/r/2/0\"}]}";
    CHECK(node_apply_response(&n, again, strlen(again)) == PAI_OK);
    CHECK_INT_EQ(strmap_count(n.desired), 2);
    CHECK_STR_EQ(n.epoch, "e3");
    /* a kept attempt the node does not know (never started here): the
     * agent cannot start it from a delta, so it asks for the whole set */
    CHECK(strmap_put(n.desired, "u~j/0/r/7/0", (void *)1) == PAI_OK);
    const char *empty = "{\"version\":3,\"seq\":4,\"ack\":[],\"epoch\":\"e3\",\"base_seq\":2,"
                        "\"tasks\":[],\"removed\":[]}";
    CHECK(node_apply_response(&n, empty, strlen(empty)) == PAI_OK);
    CHECK_INT_EQ(n.known_seq, 0);
    CHECK_STR_EQ(n.epoch, "");
    CHECK(task_of(&n, "u~j/0/r/1/0")->phase == RC_ACTIVE);
    node_free(&n);
}

/* Version 7: an acked id leaves the kept set without being listed in
 * removed (docs/agent-protocol.md, "Compact task entries"); a version 6
 * delta's ack does not touch the set. */
TEST(node_drops_an_acked_id_from_a_version_7_delta)
{
    for (int v = 6; v <= 7; v++) {
        agent_cfg_t cfg = hollow_cfg();
        agent_node_t n;
        CHECK(node_init(&n, &cfg, "a7", runtime_find("hollow"), "http://x") == PAI_OK);
        char *full = str_printf("{\"version\":%d,\"seq\":3,\"ack\":[],\"epoch\":\"e1\","
                                "\"tasks\":[{\"attempt_id\":\"u~j/0/r/0/0\",\"command\":"
                                "\"exit 3\"},{\"attempt_id\":\"u~j/0/r/1/0\",\"command\":"
                                "\"sleep 100\"}]}",
                                v);
        CHECK(node_apply_response(&n, full, strlen(full)) == PAI_OK);
        CHECK_INT_EQ(strmap_count(n.desired), 2);
        /* the job's name: from the id in 7, absent (as sent) in 6 */
        CHECK_STR_EQ(task_of(&n, "u~j/0/r/0/0")->meta.job, v == 7 ? "u~j" : "");
        for (size_t i = 0; i < n.ntasks; i++) /* the hollow "exit 3" ends */
            n.tasks[i]->next_poll_ms = 0;
        CURLM *m = curl_multi_init();
        n.next_sync_ms = INT64_MAX;
        node_tick(&n, m, time_mono_ms());
        char *delta = str_printf("{\"version\":%d,\"seq\":4,\"ack\":[\"u~j/0/r/0/0\"],"
                                 "\"epoch\":\"e1\",\"base_seq\":3,\"tasks\":[],\"removed\":[]}",
                                 v);
        CHECK(node_apply_response(&n, delta, strlen(delta)) == PAI_OK);
        CHECK_INT_EQ(n.known_seq, 4); /* applied, no rebase */
        CHECK_INT_EQ(strmap_count(n.desired), v == 7 ? 1 : 2);
        CHECK(strmap_get(n.desired, "u~j/0/r/1/0") != NULL);
        CHECK(task_of(&n, "u~j/0/r/1/0")->phase == RC_ACTIVE);
        CHECK(task_of(&n, "u~j/0/r/0/0")->acked);
        free(full);
        free(delta);
        node_free(&n);
        curl_multi_cleanup(m);
    }
}

RUN_TESTS(node_keeps_an_issued_credential_in_a_0600_file_and_reads_it_back,
          node_applies_deltas_to_the_set_it_keeps, node_drops_an_acked_id_from_a_version_7_delta,
          reconcile_starts_new_desired_attempts, reconcile_never_restarts_finished_attempts,
          reconcile_stops_undesired_active_attempts_once,
          reconcile_is_idempotent_and_dedups_repeats, reconcile_mixed_start_and_stop,
          smi_csv_and_topology_parse, simulated_gpus_have_model_memory_and_topology,
          nvml_backend_fails_cleanly_without_driver, nvml_backend_reads_a_driver_through_dlopen,
          node_applies_desired_state_reports_and_forgets_acked,
          node_reencodes_its_description_only_when_it_changes,
          node_recovers_attempts_from_the_record_and_old_files,
          node_finds_flat_logs_and_an_older_agents_log_dir,
          node_compacts_its_journal_of_acked_attempts, node_gives_a_task_its_environment,
          node_journals_an_answers_acks_in_one_write)
