/* test_runtime.c - the process and hollow runtimes, logs, the monitors
 * (cgroups, limits, OOM and the cgroup pool: test_runtime_cgroup.c). */
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"
#include "runtime/cgroup.h"
#include "runtime/monitor.h"
#include "runtime/runtime.h"
#include "test.h"

#include "runtime_fixture.h"

/* A log file is created on the task's first line: a silent task leaves
 * none (no inodes for it), one that writes only to stdout no stderr. */
TEST(log_files_are_created_on_first_output)
{
    char dir[512], p[600];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("quiet", dir, sizeof(dir));
    spec_init(&s, dir, "true");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 0);
    ops->release(&t);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, (const char *[]){"stdout", "stderr", "all"}[i]);
        CHECK(access(p, F_OK) != 0);
    }
    size_t len;
    CHECK(rt_log_tail(in_dir(dir), "stderr", 100, &len) == NULL);
    setup_dirs("out", dir, sizeof(dir));
    spec_init(&s, dir, "echo hi");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    ops->release(&t);
    char *out = slurp(dir, "stdout"), *all = slurp(dir, "all");
    CHECK_STR_EQ(out, "hi\n");
    CHECK_STR_EQ(all, "hi\n");
    free(out);
    free(all);
    snprintf(p, sizeof(p), "%s/stderr", dir);
    CHECK(access(p, F_OK) != 0);
    /* the log dir too: none for a silent task, 0700 on the first line */
    char logs[700];
    struct stat st;
    for (int i = 0; i < 2; i++) {
        setup_dirs(i ? "lazy-out" : "lazy-quiet", dir, sizeof(dir));
        snprintf(logs, sizeof(logs), "%s/logs", dir);
        spec_init(&s, dir, i ? "echo err >&2" : "true");
        s.log_prefix = in_dir(logs);
        CHECK(ops->start(ops, &s, &t) == PAI_OK);
        CHECK(wait_done(ops, &t, &r, 10));
        ops->release(&t);
        CHECK((stat(logs, &st) == 0) == (i == 1));
    }
    CHECK((st.st_mode & 0777) == 0700);
    char *err = slurp(logs, "stderr");
    CHECK_STR_EQ(err, "err\n");
    free(err);
}

TEST(process_runs_bash_with_env_cwd_and_exit_code)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("p1", dir, sizeof(dir));
    spec_init(&s, dir, "echo \"out:$FOO\"; echo err >&2; pwd; exit 3");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.state, RT_EXITED);
    CHECK_INT_EQ(r.exit_code, 3);
    char *out = slurp(dir, "stdout"), *err = slurp(dir, "stderr"), *all = slurp(dir, "all");
    CHECK(strstr(out, "out:bar baz") != NULL);
    CHECK(strstr(out, dir) != NULL);
    CHECK(strstr(err, "err") != NULL && strstr(out, "err") == NULL);
    CHECK(strstr(all, "out:bar baz") && strstr(all, "err"));
    free(out);
    free(err);
    free(all);
    ops->release(&t);
}

TEST(process_kill_is_graceful_then_forced)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("p2", dir, sizeof(dir));
    spec_init(&s, dir, "trap '' TERM; sleep 30 & wait; sleep 30");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    usleep(200 * 1000);
    ops->kill(ops, &t, false, 1);
    CHECK(!wait_done(ops, &t, &r, 1)); /* TERM is ignored by bash */
    ops->kill(ops, &t, true, 0);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 137);
    CHECK_INT_EQ(r.signal, 9);
    ops->release(&t);
}

TEST(process_missing_command_exits_127)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("p3", dir, sizeof(dir));
    spec_init(&s, dir, "no-such-command-pai");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 127);
    ops->release(&t);
}

TEST(process_adopt_finds_running_then_finished)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t, t2 = {0};
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("p4", dir, sizeof(dir));
    spec_init(&s, dir, "sleep 0.5; exit 4");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    usleep(100 * 1000);
    t2.state_dir = xstrdup(dir);
    CHECK(ops->adopt(ops, &t2));
    CHECK(!ops->poll(ops, &t2, &r));
    CHECK(wait_done(ops, &t2, &r, 10));
    CHECK_INT_EQ(r.exit_code, 4);
    CHECK(wait_done(ops, &t, &r, 10));
    ops->release(&t);
    ops->release(&t2);
}

TEST(adopt_of_nothing_fails)
{
    char dir[512];
    rt_task_t t = {0};
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("p5", dir, sizeof(dir));
    t.state_dir = xstrdup(dir);
    CHECK(!ops->adopt(ops, &t));
    ops->release(&t);
}

TEST(logs_rotate_by_size_and_tail_spans_files)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    size_t len;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("p6", dir, sizeof(dir));
    spec_init(&s, dir, "for i in $(seq 1 400); do echo line-$i; done");
    s.log_max_bytes = 1000;
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    char p[600];
    snprintf(p, sizeof(p), "%s/stdout.1", dir);
    CHECK(access(p, F_OK) == 0);
    char *tail = rt_log_tail(in_dir(dir), "stdout", 20, &len);
    CHECK(tail && len == 20 && strstr(tail, "line-400\n"));
    free(tail);
    char *whole = rt_log_tail(in_dir(dir), "stdout", 1 << 20, &len);
    CHECK(whole && len <= 2000 && len > 1000);
    free(whole);
    CHECK(rt_log_tail(in_dir(dir), "nope", 10, &len) == NULL);
    ops->release(&t);
}

TEST(hollow_parses_sleep_and_exit)
{
    int64_t d;
    int code;
    rt_hollow_parse("echo hi; sleep 1.5; sleep 2\nexit 3", &d, &code);
    CHECK_INT_EQ(d, 3500);
    CHECK_INT_EQ(code, 3);
    rt_hollow_parse("nosleep 5; myexit 4", &d, &code);
    CHECK_INT_EQ(d, 0);
    CHECK_INT_EQ(code, 0);
}

TEST(hollow_completes_with_asked_code_and_can_be_killed)
{
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("hollow");
    spec_init(&s, "/nonexistent", "sleep 0.1; exit 5");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(!ops->poll(ops, &t, &r));
    CHECK(wait_done(ops, &t, &r, 5));
    CHECK_INT_EQ(r.exit_code, 5);
    ops->release(&t);
    spec_init(&s, "/nonexistent", "sleep 100");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    ops->kill(ops, &t, false, 1);
    CHECK(ops->poll(ops, &t, &r));
    CHECK_INT_EQ(r.exit_code, 143);
    CHECK(!ops->adopt(ops, &t));
    ops->release(&t);
}

TEST(escape_id_is_one_safe_component)
{
    char out[64];
    CHECK(rt_escape_id("a~b/0/w/1/0", out, sizeof(out)));
    CHECK_STR_EQ(out, "a~b+0+w+1+0");
    CHECK(rt_escape_id("../x", out, sizeof(out)));
    CHECK(strchr(out, '/') == NULL && strcmp(out, "..") != 0 && out[0] != '.');
    CHECK(!rt_escape_id("abcdef", out, 4));
    CHECK(runtime_find("nope") == NULL);
    CHECK(runtime_find("podman") && runtime_find("docker"));
}

/* An isolated task: its uid, no groups, no capabilities, no new
 * privileges, its command not on any command line, its cwd its own, and
 * the agent's files (state, logs) not its. */
TEST(process_task_runs_as_its_uid_without_privileges)
{
    char dir[512], cwd[600], p[700];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    struct stat st;
    const runtime_ops_t *ops = runtime_find("process");
    if (geteuid() != 0) {
        test_skip("not root: cannot change uid");
        return;
    }
    setup_dirs("iso", dir, sizeof(dir));
    chmod(dir, 0711);
    snprintf(cwd, sizeof(cwd), "%s/cwd", dir);
    mkdir(cwd, 0700);
    spec_init(&s, dir,
              "# secret-word-42\n"
              "id -u; id -G; grep -E '^(CapEff|NoNewPrivs)' /proc/$$/status\n"
              "tr '\\0' ' ' < /proc/$$/cmdline; echo\n"
              "echo mine > own && cat own\n"
              "kill -0 $PPID 2>/dev/null && echo signal-monitor-ok || echo signal-monitor-denied\n"
              "cat ../stdout 2>/dev/null && echo read-log-ok || echo read-log-denied\n");
    s.cwd = cwd;
    s.isolate = true;
    s.uid = 200777;
    s.gid = 200778;
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 0);
    char *out = slurp(dir, "stdout");
    CHECK(strstr(out, "200777\n200778\n") != NULL);
    CHECK(strstr(out, "CapEff:\t0000000000000000") != NULL);
    CHECK(strstr(out, "NoNewPrivs:\t1") != NULL);
    CHECK(strstr(out, "/proc/self/fd/3") != NULL && strstr(out, "secret-word") == NULL);
    CHECK(strstr(out, "mine\n") != NULL);
    CHECK(strstr(out, "signal-monitor-denied") != NULL);
    CHECK(strstr(out, "read-log-denied") != NULL);
    free(out);
    CHECK(stat(cwd, &st) == 0 && st.st_uid == 200777 && (st.st_mode & 0777) == 0700);
    snprintf(p, sizeof(p), "%s/command", dir);
    CHECK(access(p, F_OK) != 0); /* in a memfd, not on disk */
    snprintf(p, sizeof(p), "%s/stdout", dir);
    CHECK(stat(p, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0600);
    snprintf(p, sizeof(p), "%s/monitor", dir); /* the record, with the exit line */
    CHECK(stat(p, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0777) == 0600);
    ops->release(&t);
}

/* Run a container attempt with a fake engine (a script on PATH that
 * writes its `run` arguments one per line) and return them. */
static char *fake_engine_run(const char *engine, const char *name, bool isolate)
{
    char dir[512], bin[600], script[700], argsf[700];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    setup_dirs(name, dir, sizeof(dir));
    snprintf(bin, sizeof(bin), "%s/bin", dir);
    mkdir(bin, 0755);
    snprintf(script, sizeof(script), "%s/%s", bin, engine);
    snprintf(argsf, sizeof(argsf), "%s/args", dir);
    FILE *f = fopen(script, "w");
    CHECK(f != NULL);
    if (!f)
        return xstrdup("");
    fprintf(f, "#!/bin/sh\n[ \"$1\" = run ] && printf '%%s\\n' \"$@\" > '%s'\nexit 0\n", argsf);
    fclose(f);
    chmod(script, 0755);
    char *path = str_printf("%s:%s", bin, getenv("PATH"));
    setenv("PATH", path, 1);
    free(path);
    const runtime_ops_t *ops = runtime_find(engine);
    spec_init(&s, dir, "echo secret-word-43");
    s.image = "localhost/x:1";
    s.isolate = isolate;
    s.uid = 200555;
    s.gid = 200555;
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    ops->release(&t);
    buf_t b;
    buf_init(&b, 1 << 20);
    char *out = buf_read_file(&b, argsf) == PAI_OK ? xstrdup(buf_str(&b)) : xstrdup("");
    buf_free(&b);
    return out;
}

/* Containers: podman maps the container's root to the task's uid, docker
 * runs it as that uid; the command is a bound file, never an argument. */
TEST(container_argv_maps_identity_and_binds_the_command)
{
    char *p = fake_engine_run("podman", "c1", true);
    CHECK(strstr(p, "\n--uidmap=0:200555:1\n--gidmap=0:200555:1\n") != NULL);
    CHECK(strstr(p, "\n--security-opt=no-new-privileges\n") != NULL);
    CHECK(strstr(p, "/command:/run/pai/command:ro\n") != NULL);
    CHECK(strstr(p, "--privileged") == NULL && strstr(p, "secret-word") == NULL);
    free(p);
    char *d = fake_engine_run("docker", "c2", true);
    CHECK(strstr(d, "\n--user=200555:200555\n") != NULL && strstr(d, "--uidmap") == NULL);
    CHECK(strstr(d, "/command:/run/pai/command:ro\n") != NULL && strstr(d, "secret-word") == NULL);
    free(d);
    char *r = fake_engine_run("podman", "c3", false); /* --tasks-as-root */
    CHECK(strstr(r, "--uidmap") == NULL && strstr(r, "--user") == NULL);
    CHECK(strstr(r, "/run/pai/command") != NULL && strstr(r, "secret-word") == NULL);
    free(r);
}

/* A command past the kernel's 128 KiB limit on one argument runs: it is
 * handed over on fd 3, not as `bash -c` text. */
TEST(process_runs_a_command_past_128k)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("big", dir, sizeof(dir));
    size_t n = 1 << 20;
    char *cmd = xmalloc(n + 64);
    memset(cmd, '#', n);
    snprintf(cmd + n, 64, "\necho big-ran; exit 6\n");
    spec_init(&s, dir, cmd);
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 20));
    CHECK_INT_EQ(r.exit_code, 6);
    char *out = slurp(dir, "stdout");
    CHECK(strstr(out, "big-ran") != NULL);
    free(out);
    free(cmd);
    ops->release(&t);
}

/* A start's spec goes to the per-agent monitor inside its message when
 * it is small (most tasks), in a memfd when not: both run, on both sides
 * of the limit (32 KiB), several in a row on the same monitors. */
TEST(process_specs_inline_and_in_a_memfd_both_run)
{
    static const size_t sizes[] = {100, 30 * 1024, 33 * 1024, 40 * 1024, 200};
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        char dir[512], name[32];
        rt_spec_t s;
        rt_task_t t;
        rt_result_t r;
        snprintf(name, sizeof(name), "spec%zu", i);
        setup_dirs(name, dir, sizeof(dir));
        char *cmd = xmalloc(sizes[i] + 64);
        memset(cmd, '#', sizes[i]);
        snprintf(cmd + sizes[i], 64, "\necho spec-ran; exit %d\n", (int)i + 1);
        spec_init(&s, dir, cmd);
        CHECK(ops->start(ops, &s, &t) == PAI_OK && t.mon_key != 0);
        CHECK(wait_done(ops, &t, &r, 20));
        CHECK_INT_EQ(r.exit_code, (int)i + 1);
        char *out = slurp(dir, "stdout");
        CHECK(out && strstr(out, "spec-ran") != NULL);
        free(out);
        free(cmd);
        ops->release(&t);
    }
}

/* The agent's fd of the record goes to the per-agent monitor with the
 * start (inline spec and memfd spec alike): the monitor appends its lines
 * there, with no open of its own (the file renamed away, no new one is
 * made), and the task does not get it. */
TEST(shared_monitor_writes_the_record_through_the_agents_fd)
{
    static const size_t sizes[] = {10, 40 * 1024};
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        char dir[512], name[32], p[700], q[700];
        rt_spec_t s;
        rt_task_t t;
        rt_result_t r;
        snprintf(name, sizeof(name), "recfd%zu", i);
        setup_dirs(name, dir, sizeof(dir));
        char *cmd = xmalloc(sizes[i] + 128);
        memset(cmd, '#', sizes[i]);
        snprintf(cmd + sizes[i], 128, "\nls -l /proc/$$/fd | grep -q monitor || echo clean\n");
        spec_init(&s, dir, cmd);
        s.record_fd = rt_record_open(dir, s.attempt_id);
        CHECK(s.record_fd > 0);
        snprintf(p, sizeof(p), "%s/monitor", dir);
        snprintf(q, sizeof(q), "%s/monitor.given", dir);
        CHECK(rename(p, q) == 0);
        CHECK(ops->start(ops, &s, &t) == PAI_OK && t.mon_key != 0);
        close(s.record_fd);
        CHECK(wait_done(ops, &t, &r, 20));
        CHECK_INT_EQ(r.exit_code, 0);
        char *out = slurp(dir, "stdout");
        CHECK_STR_EQ(out, "clean\n");
        free(out);
        CHECK(access(p, F_OK) != 0);
        buf_t b;
        buf_init(&b, 1 << 16);
        CHECK(buf_read_file(&b, q) == PAI_OK);
        const char *rec = buf_str(&b);
        CHECK(strncmp(rec, "id u~j/0/r/0/0\nmon ", 19) == 0);
        CHECK(strstr(rec, "\ntask ") && strstr(rec, "\nexit exited 0 "));
        buf_free(&b);
        free(cmd);
        ops->release(&t);
    }
}

/* An isolated process task cannot open the node's GPUs it was not given
 * (a v1 devices cgroup); its own GPU stays open to it.  Fake device nodes
 * of the NVIDIA major: with no driver, an allowed open fails with ENXIO, a
 * denied one with EPERM. */
TEST(process_task_cannot_open_other_gpus)
{
    char dir[512], devs[64] = "/tmp/pai-test-gpus-XXXXXX", p[600];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    if (geteuid() != 0 || cg_version() != 1 || access("/sys/fs/cgroup/devices", F_OK) != 0) {
        test_skip("needs root and a cgroup v1 devices controller");
        return;
    }
    CHECK(mkdtemp(devs) != NULL);
    chmod(devs, 0755);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/nvidia%d", devs, i);
        CHECK(mknod(p, S_IFCHR | 0666, makedev(195, (unsigned)i)) == 0);
        chmod(p, 0666);
    }
    setup_dirs("gpus", dir, sizeof(dir));
    char *cmd =
        str_printf("for i in 0 1 2; do echo \"gpu$i: $(head -c1 %s/nvidia$i 2>&1)\"; done", devs);
    spec_init(&s, dir, cmd);
    int gpus[] = {1};
    s.gpus = gpus;
    s.n_gpus = 1;
    s.gpu_dev_dir = devs;
    s.cgroup = "pai-test/gpus";
    s.isolate = true;
    s.uid = s.gid = 200777;
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    char *out = slurp(dir, "stdout");
    CHECK(strstr(out, "gpu0:") && strstr(strstr(out, "gpu0:"), "Operation not permitted"));
    char *g1 = strstr(out, "gpu1:"), *g2 = strstr(out, "gpu2:");
    CHECK(g1 && g2 && strstr(g1, "No such device") && strstr(g1, "No such device") < g2);
    CHECK(g2 && strstr(g2, "Operation not permitted"));
    free(out);
    free(cmd);
    ops->release(&t);
    CHECK(access("/sys/fs/cgroup/devices/pai-test/gpus", F_OK) != 0);
    rmdir("/sys/fs/cgroup/devices/pai-test");
    rmdir("/sys/fs/cgroup/memory/pai-test");
    rmdir("/sys/fs/cgroup/cpu/pai-test");
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/nvidia%d", devs, i);
        unlink(p);
    }
    rmdir(devs);
}

/* Process attempts share a few long-lived monitors per agent process
 * (mond.c), used in turn, each attempt under its own key; PAI_MONITOR=
 * per-task forks one per attempt, as before. */
TEST(process_attempts_share_the_agents_monitors)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t[5];
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "share%d", i);
        setup_dirs(name, dir, sizeof(dir));
        spec_init(&s, dir, "sleep 0.3; exit 6");
        CHECK(ops->start(ops, &s, &t[i]) == PAI_OK);
        CHECK(t[i].mon_key != 0);
    }
    CHECK(t[0].monitor_pid == t[4].monitor_pid && t[0].mon_key != t[4].mon_key);
    /* in turn when there are several; one serves them all otherwise */
    CHECK((t[0].monitor_pid != t[1].monitor_pid) == (RT_MONITORS > 1));
    for (int i = 0; i < 5; i++) {
        CHECK(wait_done(ops, &t[i], &r, 10));
        CHECK_INT_EQ(r.exit_code, 6);
        ops->release(&t[i]);
    }
    setenv("PAI_MONITOR", "per-task", 1);
    setup_dirs("share-per-task", dir, sizeof(dir));
    spec_init(&s, dir, "exit 7");
    CHECK(ops->start(ops, &s, &t[0]) == PAI_OK);
    CHECK(t[0].mon_key == 0 && t[0].monitor_pid != t[4].monitor_pid);
    CHECK(wait_done(ops, &t[0], &r, 10));
    CHECK_INT_EQ(r.exit_code, 7);
    ops->release(&t[0]);
    unsetenv("PAI_MONITOR");
}

/* A shared monitor sends the exit line on its socket, after the
 * record's: the agent reads it there (no record's open, read and close; no
 * fd of the attempt's own); the record keeps it for a restarted agent. */
TEST(shared_monitor_hands_the_exit_through_its_socket)
{
    char dir[512], rec[600], moved[620], line[128];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    setup_dirs("exit-pipe", dir, sizeof(dir));
    spec_init(&s, dir, "exit 5");
    CHECK(ops->start(ops, &s, &t) == PAI_OK && t.mon_key != 0);
    CHECK(t.notify_fd < 0 && t.mon_gen != 0 && rt_notify_fd(&t) >= 0);
    struct pollfd p = {rt_notify_fd(&t), POLLIN, 0};
    CHECK(poll(&p, 1, 10000) == 1);
    CHECK(rt_watch_drain(p.fd) && rt_task_news(&t));
    CHECK(rt_record_get(dir, "exit ", line, sizeof(line)));
    CHECK(strncmp(line, "exited 5 0 0 ", 13) == 0);
    snprintf(rec, sizeof(rec), "%s/monitor", dir);
    snprintf(moved, sizeof(moved), "%s/monitor.away", dir);
    CHECK(rename(rec, moved) == 0); /* not read: the pipe has the line */
    CHECK(ops->poll(ops, &t, &r));
    CHECK_INT_EQ(r.state, RT_EXITED);
    CHECK_INT_EQ(r.exit_code, 5);
    CHECK(r.started_ms > 0 && r.finished_ms >= r.started_ms);
    ops->release(&t);
}

/* The exit line says whether the task wrote to stderr (its last field):
 * the agent reads no tail of a silent task's log (two stats per end);
 * a line without the field (an older monitor's) is read as "maybe". */
TEST(exit_line_says_whether_the_task_wrote_to_stderr)
{
    char dir[512], line[128];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    setup_dirs("errlog-quiet", dir, sizeof(dir));
    spec_init(&s, dir, "echo out; exit 4");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 4);
    CHECK(r.quiet);
    CHECK(rt_record_get(dir, "exit ", line, sizeof(line)));
    CHECK(strlen(line) > 2 && strcmp(line + strlen(line) - 2, " 0") == 0);
    ops->release(&t);
    setup_dirs("errlog-loud", dir, sizeof(dir));
    spec_init(&s, dir, "echo err >&2; exit 4");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK(!r.quiet);
    ops->release(&t);
    setenv("PAI_MONITOR", "per-task", 1); /* a container's monitor writes it too */
    setup_dirs("errlog-per-task", dir, sizeof(dir));
    spec_init(&s, dir, "true");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK(r.quiet);
    ops->release(&t);
    unsetenv("PAI_MONITOR");
    /* an older monitor's line: six fields */
    t = (rt_task_t){.notify_fd = -1, .state_dir = xstrdup(dir)};
    char rec[600];
    snprintf(rec, sizeof(rec), "%s/monitor", dir);
    FILE *f = fopen(rec, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("exit exited 0 0 0 1000 2000\n", f);
        fclose(f);
    }
    CHECK(ops->poll(ops, &t, &r));
    CHECK_INT_EQ(r.finished_ms, 2000);
    CHECK(!r.quiet);
    ops->release(&t);
}

/* A restarted agent stops its predecessor's attempts from the monitor
 * record alone (the monitor's pid and start, the attempt's key). */
TEST(adopted_attempt_of_a_shared_monitor_can_be_stopped)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t, t2 = {0};
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    setup_dirs("adopt-stop", dir, sizeof(dir));
    spec_init(&s, dir, "trap '' TERM; sleep 30 & wait; sleep 30");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    usleep(200 * 1000);
    t2.state_dir = xstrdup(dir);
    CHECK(ops->adopt(ops, &t2));
    CHECK(t2.mon_key == t.mon_key && t2.monitor_pid == t.monitor_pid);
    ops->kill(ops, &t2, false, 1);
    CHECK(!wait_done(ops, &t2, &r, 1)); /* TERM is ignored by bash */
    ops->kill(ops, &t2, true, 0);
    CHECK(wait_done(ops, &t2, &r, 10));
    CHECK_INT_EQ(r.exit_code, 137);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 137);
    ops->release(&t);
    ops->release(&t2);
}

/* The record's "task" line: its pid, and the pooled cgroup a per-agent
 * monitor names there (the agent's metrics read it); none from an older
 * line without one. */
TEST(task_line_gives_pid_and_cgroup)
{
    char dir[512], cg[64];
    setup_dirs("taskline", dir, sizeof(dir));
    CHECK(rt_record_create(dir, "job~x/0/main/0/0") == 0);
    CHECK(rt_record_append(dir, "mon 1 2 3\n") == 0);
    CHECK_INT_EQ(rt_task_info(dir, cg, sizeof(cg)), 0); /* not yet */
    CHECK(rt_record_append(dir, "task 4242 pai/n1/pool.77.3\n") == 0);
    CHECK_INT_EQ(rt_task_info(dir, cg, sizeof(cg)), 4242);
    CHECK_STR_EQ(cg, "pai/n1/pool.77.3");
    CHECK_INT_EQ(rt_task_pid(dir), 4242);
    CHECK_INT_EQ(rt_task_info(dir, cg, 8), 4242); /* does not fit: none */
    CHECK_STR_EQ(cg, "");
    setup_dirs("taskline2", dir, sizeof(dir));
    CHECK(rt_record_append(dir, "task 77\n") == 0);
    CHECK_INT_EQ(rt_task_info(dir, cg, sizeof(cg)), 77);
    CHECK_STR_EQ(cg, "");
}

/* A monitor that dies takes its attempts' results with it: they are
 * reported lost (as when a per-attempt monitor dies), and the next start
 * gets a new monitor. */
TEST(dead_shared_monitor_loses_its_attempts_and_is_replaced)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t, more[4];
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    setup_dirs("mond-dies", dir, sizeof(dir));
    spec_init(&s, dir, "sleep 30");
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    usleep(200 * 1000);
    CHECK(t.mon_key != 0 && kill(t.monitor_pid, SIGKILL) == 0);
    /* until it is gone: a dying process closes its fds in an order of the
     * kernel's, and a start sent in between would be lost with it */
    CHECK(waitpid(t.monitor_pid, NULL, 0) == t.monitor_pid);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, EXIT_NODE_LOST);
    ops->release(&t);
    pid_t pid = rt_task_pid(dir);
    CHECK(pid > 1);
    if (pid > 1)
        kill(-pid, SIGKILL); /* the orphaned task */
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "mond-new%d", i);
        setup_dirs(name, dir, sizeof(dir));
        spec_init(&s, dir, "exit 3");
        CHECK(ops->start(ops, &s, &more[i]) == PAI_OK && more[i].mon_key != 0);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(wait_done(ops, &more[i], &r, 10));
        CHECK_INT_EQ(r.exit_code, 3);
        ops->release(&more[i]);
    }
}

/* One file per attempt for the monitor: its record holds the monitor, the
 * task's pid and the result; an older agent's files (`task`, `exit`) and
 * the agent's lost mark (`exit`) are still read. */
TEST(attempt_record_is_one_file_and_old_files_are_read)
{
    char dir[512], p[600], rec[512] = "";
    rt_spec_t s;
    rt_task_t t, t2 = {0};
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    for (int mode = 0; mode < 2; mode++) {
        setenv("PAI_MONITOR", mode ? "per-task" : "agent", 1);
        setup_dirs(mode ? "record-per-task" : "record-agent", dir, sizeof(dir));
        spec_init(&s, dir, "exit 5");
        CHECK(rt_record_create(dir, "u~rec/0/main/0/0") == 0); /* the agent's line */
        CHECK(ops->start(ops, &s, &t) == PAI_OK);
        CHECK(wait_done(ops, &t, &r, 10));
        CHECK_INT_EQ(r.exit_code, 5);
        ops->release(&t);
        snprintf(p, sizeof(p), "%s/monitor", dir);
        FILE *f = fopen(p, "re");
        size_t n = f ? fread(rec, 1, sizeof(rec) - 1, f) : 0;
        rec[n] = '\0';
        if (f)
            fclose(f);
        CHECK(strncmp(rec, "id u~rec/0/main/0/0\nmon ", 24) == 0);
        CHECK(strstr(rec, "\ntask ") != NULL && strstr(rec, "\nexit exited 5 0 0 ") != NULL);
        char idl[64];
        CHECK(rt_record_get(dir, "id ", idl, sizeof(idl)));
        CHECK_STR_EQ(idl, "u~rec/0/main/0/0");
        t2 = (rt_task_t){0};
        t2.state_dir = xstrdup(dir); /* the record alone is enough to adopt */
        CHECK(ops->adopt(ops, &t2));
        CHECK(ops->poll(ops, &t2, &r));
        CHECK_INT_EQ(r.exit_code, 5);
        ops->release(&t2);
        CHECK(rt_task_pid(dir) > 1);
        for (int i = 0; i < 2; i++) {
            snprintf(p, sizeof(p), "%s/%s", dir, i ? "exit" : "task");
            CHECK(access(p, F_OK) != 0);
        }
    }
    unsetenv("PAI_MONITOR");
    setup_dirs("record-old", dir, sizeof(dir));
    snprintf(p, sizeof(p), "%s/monitor", dir);
    FILE *f = fopen(p, "we");
    CHECK(f != NULL);
    if (f) {
        fputs("999999 1\n", f); /* a monitor long gone */
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/task", dir);
    f = fopen(p, "we");
    if (f) {
        fputs("4242\n", f);
        fclose(f);
    }
    snprintf(p, sizeof(p), "%s/exit", dir);
    f = fopen(p, "we");
    if (f) {
        fputs("exited 9 0 0 1000 2000\n", f);
        fclose(f);
    }
    CHECK_INT_EQ(rt_task_pid(dir), 4242);
    t2.state_dir = xstrdup(dir);
    CHECK(ops->adopt(ops, &t2));
    CHECK(ops->poll(ops, &t2, &r));
    CHECK_INT_EQ(r.exit_code, 9);
    CHECK(r.finished_ms == 2000);
    ops->release(&t2);
}

/* The agent's logs are flat in its logs dir, <logs>/<id>.<kind>: no dir
 * per attempt, and a silent attempt leaves no file at all. */
TEST(log_files_can_be_flat_in_one_dir)
{
    char dir[512], logs[600], prefix[700], p[800];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs("flat-logs", logs, sizeof(logs));
    for (int i = 0; i < 2; i++) {
        setup_dirs(i ? "flat-1" : "flat-0", dir, sizeof(dir)); /* each its own record */
        snprintf(prefix, sizeof(prefix), "%s/u~j+0+r+%d+0.", logs, i);
        spec_init(&s, dir, i ? "echo out; echo err >&2" : "true");
        s.log_prefix = prefix;
        CHECK(ops->start(ops, &s, &t) == PAI_OK);
        CHECK(wait_done(ops, &t, &r, 10));
        ops->release(&t);
    }
    struct stat st;
    size_t len;
    snprintf(p, sizeof(p), "%s/u~j+0+r+0+0.all", logs);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof(p), "%s/u~j+0+r+1+0", logs);
    CHECK(access(p, F_OK) != 0); /* no dir */
    snprintf(p, sizeof(p), "%s/u~j+0+r+1+0.stderr", logs);
    CHECK(stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
    char *out = rt_log_tail(prefix, "stdout", 100, &len),
         *all = rt_log_tail(prefix, "all", 100, &len);
    CHECK(out && strcmp(out, "out\n") == 0);
    CHECK(all && strstr(all, "out\n") && strstr(all, "err\n"));
    free(out);
    free(all);
}

RUN_TESTS(process_runs_bash_with_env_cwd_and_exit_code, process_kill_is_graceful_then_forced,
          process_missing_command_exits_127, process_adopt_finds_running_then_finished,
          adopt_of_nothing_fails, logs_rotate_by_size_and_tail_spans_files,
          hollow_parses_sleep_and_exit, hollow_completes_with_asked_code_and_can_be_killed,
          escape_id_is_one_safe_component, process_task_runs_as_its_uid_without_privileges,
          container_argv_maps_identity_and_binds_the_command, process_runs_a_command_past_128k,
          process_task_cannot_open_other_gpus, log_files_are_created_on_first_output,
          process_attempts_share_the_agents_monitors,
          shared_monitor_hands_the_exit_through_its_socket,
          exit_line_says_whether_the_task_wrote_to_stderr,
          process_specs_inline_and_in_a_memfd_both_run,
          shared_monitor_writes_the_record_through_the_agents_fd,
          adopted_attempt_of_a_shared_monitor_can_be_stopped,
          dead_shared_monitor_loses_its_attempts_and_is_replaced, task_line_gives_pid_and_cgroup,
          attempt_record_is_one_file_and_old_files_are_read, log_files_can_be_flat_in_one_dir)
