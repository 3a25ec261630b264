/* test_runtime.c - the process and hollow runtimes, logs, cgroups, OOM. */
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

static char base[256];

static void setup_dirs(const char *name, char *dir, size_t n)
{
    snprintf(dir, n, "%s/%s", base, name);
    mkdir(dir, 0755);
}

static char *env_base[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "FOO=bar baz", NULL};

static void spec_init(rt_spec_t *s, const char *dir, const char *cmd)
{
    memset(s, 0, sizeof(*s));
    s->attempt_id = "u~j/0/r/0/0";
    s->name = "u~j+0+r+0+0";
    s->command = cmd;
    s->env = env_base;
    s->state_dir = dir;
    s->cwd = dir;
    s->log_dir = dir;
    s->log_max_bytes = 1 << 20;
}

/* Wait (bounded) for the attempt to end. */
static bool wait_done(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res, int secs)
{
    for (int i = 0; i < secs * 50; i++) {
        if (ops->poll(ops, t, res))
            return true;
        struct pollfd p = {t->notify_fd, POLLIN, 0};
        poll(&p, t->notify_fd >= 0 ? 1 : 0, 20);
    }
    return false;
}

static char *slurp(const char *dir, const char *kind)
{
    size_t len;
    char *s = rt_log_tail(dir, kind, 1 << 20, &len);
    return s ? s : xstrdup("");
}

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
    CHECK(rt_log_tail(dir, "stderr", 100, &len) == NULL);
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
        s.log_dir = logs;
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
    char *tail = rt_log_tail(dir, "stdout", 20, &len);
    CHECK(tail && len == 20 && strstr(tail, "line-400\n"));
    free(tail);
    char *whole = rt_log_tail(dir, "stdout", 1 << 20, &len);
    CHECK(whole && len <= 2000 && len > 1000);
    free(whole);
    CHECK(rt_log_tail(dir, "nope", 10, &len) == NULL);
    ops->release(&t);
}

TEST(oom_kill_is_reported_with_openpai_code)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    if (cg_version() == 0) {
        test_skip("no cgroups");
        return;
    }
    setup_dirs("p7", dir, sizeof(dir));
    spec_init(&s, dir,
              "python3 -c 'x=bytearray(200*1024*1024)' || head -c 300000000 /dev/zero | tail");
    s.cgroup = "pai-test/oom";
    s.memory_mb = 32;
    s.cpu = 0.5;
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 30));
    CHECK(r.oom);
    CHECK_INT_EQ(r.exit_code, EXIT_OOM_KILLED);
    ops->release(&t);
    CHECK(access("/sys/fs/cgroup/memory/pai-test/oom", F_OK) != 0);
    rmdir("/sys/fs/cgroup/memory/pai-test");
    rmdir("/sys/fs/cgroup/cpu/pai-test");
    rmdir("/sys/fs/cgroup/pai-test");
}

/* A process the task left behind, detached from its session and its
 * pipes, is killed when the task ends, and the cgroup goes. */
TEST(cgroup_stragglers_are_killed_when_the_task_ends)
{
    char dir[512], p[700];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    if (cg_version() != 1) {
        test_skip("not cgroup v1 as root");
        return;
    }
    setup_dirs("straggler", dir, sizeof(dir));
    snprintf(p, sizeof(p),
             "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > %s/straggler.pid; true", dir);
    spec_init(&s, dir, p);
    s.cgroup = "pai-test/straggler";
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 30));
    CHECK_INT_EQ(r.exit_code, 0);
    ops->release(&t);
    buf_t b;
    buf_init(&b, 64);
    snprintf(p, sizeof(p), "%s/straggler.pid", dir);
    CHECK(buf_read_file(&b, p) == PAI_OK);
    int pid = (int)strtol(buf_str(&b), NULL, 10);
    buf_free(&b);
    CHECK(pid > 1);
    for (int i = 0; i < 100 && pid > 1 && kill(pid, 0) == 0; i++)
        usleep(20 * 1000); /* killed; reaped by init */
    CHECK(pid > 1 && kill(pid, 0) != 0);
    CHECK(access("/sys/fs/cgroup/memory/pai-test/straggler", F_OK) != 0);
    CHECK(access("/sys/fs/cgroup/cpu/pai-test/straggler", F_OK) != 0);
    rmdir("/sys/fs/cgroup/memory/pai-test");
    rmdir("/sys/fs/cgroup/cpu/pai-test");
}

TEST(cgroup_limits_are_written)
{
    cg_t *cg;
    if (cg_version() != 1) {
        test_skip("not cgroup v1");
        return;
    }
    CHECK(cg_create("pai-test/lim", 64, 0.25, &cg) == PAI_OK);
    buf_t b;
    buf_init(&b, 4096);
    CHECK(buf_read_file(&b, "/sys/fs/cgroup/memory/pai-test/lim/memory.limit_in_bytes") == PAI_OK);
    CHECK_STR_EQ(buf_str(&b), "67108864\n");
    buf_reset(&b);
    CHECK(buf_read_file(&b, "/sys/fs/cgroup/cpu/pai-test/lim/cpu.cfs_quota_us") == PAI_OK);
    CHECK_STR_EQ(buf_str(&b), "25000\n");
    buf_free(&b);
    CHECK(!cg_oom(cg));
    CHECK_STR_EQ(cg_parent_path(cg), "/pai-test/lim");
    cg_destroy(cg);
    CHECK(access("/sys/fs/cgroup/memory/pai-test/lim", F_OK) != 0);
    rmdir("/sys/fs/cgroup/memory/pai-test");
    rmdir("/sys/fs/cgroup/cpu/pai-test");
}

/* A cgroup v2 tree laid out in a temp dir (PAI_CGROUP_ROOT): the files the
 * kernel would create are pre-created, so what the runtime writes can be
 * read back.  This host is v1 hybrid, so v2 is checked this way. */
static void touch(const char *dir, const char *file)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    FILE *f = fopen(p, "w");
    if (f)
        fclose(f);
}

static char *read_cg(const char *dir, const char *file)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    buf_t b;
    buf_init(&b, 4096);
    if (buf_read_file(&b, p) != PAI_OK)
        buf_reset(&b);
    return buf_take(&b);
}

TEST(cgroup_v2_limits_controllers_and_oom_are_handled)
{
    if (geteuid() != 0) {
        test_skip("needs root (cg_version reports 0 otherwise)");
        return;
    }
    char root[] = "/tmp/pai-cg2-XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char lim[256];
    snprintf(lim, sizeof(lim), "%s/pai-v2/lim", root);
    char mid[256];
    snprintf(mid, sizeof(mid), "%s/pai-v2", root);
    CHECK(mkdir(mid, 0755) == 0 && mkdir(lim, 0755) == 0);
    touch(root, "cgroup.controllers");
    touch(root, "cgroup.subtree_control");
    touch(mid, "cgroup.subtree_control");
    touch(lim, "memory.max");
    touch(lim, "memory.swap.max");
    touch(lim, "cpu.max");
    touch(lim, "cgroup.procs");
    setenv("PAI_CGROUP_ROOT", root, 1);
    CHECK_INT_EQ(cg_version(), 2);
    cg_t *cg = NULL;
    CHECK(cg_create("pai-v2/lim", 64, 0.5, &cg) == PAI_OK);
    char *s;
    CHECK_STR_EQ(s = read_cg(lim, "memory.max"), "67108864");
    free(s);
    CHECK_STR_EQ(s = read_cg(lim, "memory.swap.max"), "0");
    free(s);
    CHECK_STR_EQ(s = read_cg(lim, "cpu.max"), "50000 100000");
    free(s);
    CHECK_STR_EQ(s = read_cg(root, "cgroup.subtree_control"), "+memory +cpu");
    free(s);
    CHECK_STR_EQ(s = read_cg(mid, "cgroup.subtree_control"), "+memory +cpu");
    free(s);
    CHECK(cg_attach(cg, 4242) == PAI_OK);
    CHECK_STR_EQ(s = read_cg(lim, "cgroup.procs"), "4242");
    free(s);
    CHECK(!cg_oom(cg));
    char ev[512];
    snprintf(ev, sizeof(ev), "%s/memory.events", lim);
    FILE *f = fopen(ev, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", f);
        fclose(f);
    }
    CHECK(cg_oom(cg));
    CHECK_STR_EQ(cg_parent_path(cg), "/pai-v2/lim");
    cg_destroy(cg);
    unsetenv("PAI_CGROUP_ROOT");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
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
    CHECK(t[0].monitor_pid != t[1].monitor_pid);
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

/* A per-agent monitor hands an ended task's cgroup to its next task under
 * the same parent instead of making and removing one: renamed to the new
 * attempt, limits rewritten, the OOM count taken from there (an OOM kill of
 * the task before is not the next one's), no cgroup left under the
 * attempt's name once it ended. */
TEST(pooled_cgroup_is_reused_with_its_limits_and_oom_count)
{
    char dir[512], cg[64], p[600], name[16];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    if (cg_version() != 1) {
        test_skip("not cgroup v1 as root");
        return;
    }
    unsetenv("PAI_MONITOR");
    /* five in turn: the agent's four monitors, then the first again, which
     * has the OOM-killed first task's cgroup in its pool */
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "pool%d", i);
        setup_dirs(name, dir, sizeof(dir));
        snprintf(cg, sizeof(cg), "pai-test-pool/a%d", i);
        spec_init(&s, dir,
                  i == 0 ? "python3 -c 'x=bytearray(200*1024*1024)' || "
                           "head -c 300000000 /dev/zero | tail"
                         : "grep -E ':(memory|cpu):' /proc/self/cgroup; cd "
                           "/sys/fs/cgroup/memory/pai-test-pool/a4 && "
                           "cat memory.limit_in_bytes && grep oom_kill memory.oom_control");
        s.cgroup = cg;
        s.memory_mb = i == 0 ? 32 : 64;
        s.cpu = i == 4 ? 0 : 0.5;
        CHECK(ops->start(ops, &s, &t) == PAI_OK);
        CHECK(wait_done(ops, &t, &r, 30));
        CHECK(r.oom == (i == 0));
        CHECK_INT_EQ(r.exit_code, i == 0 ? EXIT_OOM_KILLED : i == 4 ? 0 : 1);
        ops->release(&t);
        snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/%s", cg);
        CHECK(access(p, F_OK) != 0); /* renamed into the pool */
        if (i == 4) {
            char *out = slurp(dir, "stdout");
            CHECK(strstr(out, ":memory:/pai-test-pool/a4\n") != NULL);
            CHECK(strstr(out, "\n67108864\n") != NULL);
            CHECK(strstr(out, ":cpu:/pai-test-pool/a4") == NULL); /* no CPU limit */
            /* the OOM-killed first task's cgroup (the count is never reset) */
            CHECK(strstr(out, "\noom_kill ") != NULL && strstr(out, "\noom_kill 0") == NULL);
            free(out);
        }
    }
    DIR *d = opendir("/sys/fs/cgroup/memory/pai-test-pool");
    struct dirent *e;
    int pooled = 0;
    while (d && (e = readdir(d)))
        pooled += strncmp(e->d_name, "pool.", 5) == 0;
    if (d)
        closedir(d);
    CHECK_INT_EQ(pooled, 4); /* one per monitor */
    mond_shutdown();         /* the monitors exit and remove their pools */
    CHECK(rmdir("/sys/fs/cgroup/memory/pai-test-pool") == 0);
    rmdir("/sys/fs/cgroup/cpu/pai-test-pool/pool.x"); /* nothing: they are gone */
    CHECK(rmdir("/sys/fs/cgroup/cpu/pai-test-pool") == 0);
}

static void cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
}

__attribute__((constructor)) static void init(void)
{
    snprintf(base, sizeof(base), "/tmp/pai-test-runtime-XXXXXX");
    if (!mkdtemp(base))
        abort();
    atexit(cleanup);
}

RUN_TESTS(process_runs_bash_with_env_cwd_and_exit_code, process_kill_is_graceful_then_forced,
          process_missing_command_exits_127, process_adopt_finds_running_then_finished,
          adopt_of_nothing_fails, logs_rotate_by_size_and_tail_spans_files,
          oom_kill_is_reported_with_openpai_code, cgroup_limits_are_written,
          cgroup_v2_limits_controllers_and_oom_are_handled, hollow_parses_sleep_and_exit,
          hollow_completes_with_asked_code_and_can_be_killed, escape_id_is_one_safe_component,
          process_task_runs_as_its_uid_without_privileges,
          container_argv_maps_identity_and_binds_the_command, process_runs_a_command_past_128k,
          process_task_cannot_open_other_gpus, log_files_are_created_on_first_output,
          cgroup_stragglers_are_killed_when_the_task_ends,
          process_attempts_share_the_agents_monitors,
          adopted_attempt_of_a_shared_monitor_can_be_stopped,
          dead_shared_monitor_loses_its_attempts_and_is_replaced,
          attempt_record_is_one_file_and_old_files_are_read,
          pooled_cgroup_is_reused_with_its_limits_and_oom_count)
