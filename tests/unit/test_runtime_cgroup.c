/* test_runtime_cgroup.c - the process runtime's cgroups: limits (v1 and
 * v2), OOM, stragglers killed, emptied cgroups reused from a monitor's
 * pool. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/util.h"
#include "runtime/cgroup.h"
#include "runtime/monitor.h"
#include "runtime/runtime.h"
#include "test.h"

#include "runtime_fixture.h"

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

/* Runs, in cgroup cg, a task that leaves `setsid sleep 300` behind, detached
 * from its session and its pipes, and ends 0; then waits up to 2 s for that
 * straggler to be gone (killed by the task's end).  True when it was seen
 * and is gone. */
static bool straggler_killed(const char *name, const char *cg)
{
    char dir[512], p[700];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs(name, dir, sizeof(dir));
    snprintf(p, sizeof(p),
             "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > %s/straggler.pid; true", dir);
    spec_init(&s, dir, p);
    s.cgroup = cg;
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
    for (int i = 0; i < 100 && pid > 1 && kill(pid, 0) == 0; i++)
        usleep(20 * 1000); /* killed; reaped by init or the monitor */
    return pid > 1 && kill(pid, 0) != 0;
}

/* A process the task left behind, detached from its session and its
 * pipes, is killed when the task ends, and the cgroup goes. */
TEST(cgroup_stragglers_are_killed_when_the_task_ends)
{
    if (cg_version() != 1) {
        test_skip("not cgroup v1 as root");
        return;
    }
    CHECK(straggler_killed("straggler", "pai-test/straggler"));
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

/* A task's process joins its v1 cgroups itself, before its exec: "0"
 * into each hierarchy's `tasks` (the caller's own move, which the kernel
 * makes without its global lock), the pid into cgroup.procs only where
 * that fails.  A v1 tree laid out in a temp dir, as the v2 one above. */
TEST(a_task_joins_its_v1_cgroups_through_tasks)
{
    if (geteuid() != 0) {
        test_skip("needs root (cg_version reports 0 otherwise)");
        return;
    }
    char root[] = "/tmp/pai-cg1-XXXXXX", mem[256], cpu[256], p[300];
    CHECK(mkdtemp(root) != NULL);
    snprintf(mem, sizeof(mem), "%s/memory/pai-j/a", root);
    snprintf(cpu, sizeof(cpu), "%s/cpu/pai-j/a", root);
    CHECK(fs_mkdir_p(mem, 0755) == PAI_OK && fs_mkdir_p(cpu, 0755) == PAI_OK);
    snprintf(p, sizeof(p), "%s/memory", root);
    touch(p, "cgroup.procs");
    const char *mem_files[] = {"memory.limit_in_bytes",
                               "memory.memsw.limit_in_bytes",
                               "memory.oom_control",
                               "cgroup.event_control",
                               "tasks",
                               "cgroup.procs"};
    const char *cpu_files[] = {"cpu.cfs_period_us", "cpu.cfs_quota_us", "tasks", "cgroup.procs"};
    for (size_t i = 0; i < ARRAY_LEN(mem_files); i++)
        touch(mem, mem_files[i]);
    for (size_t i = 0; i < ARRAY_LEN(cpu_files); i++)
        touch(cpu, cpu_files[i]);
    setenv("PAI_CGROUP_ROOT", root, 1);
    CHECK_INT_EQ(cg_version(), 1);
    cg_t *cg = NULL;
    CHECK(cg_create("pai-j/a", 64, 0.5, &cg) == PAI_OK);
    char *s;
    CHECK(cg && !cg_join_held(cg)); /* not pooled: its files by path */
    CHECK(cg && cg_join(cg) == PAI_OK);
    CHECK_STR_EQ(s = read_cg(mem, "tasks"), "0");
    free(s);
    CHECK_STR_EQ(s = read_cg(cpu, "tasks"), "0");
    free(s);
    CHECK_STR_EQ(s = read_cg(mem, "cgroup.procs"), ""); /* no pid: no global lock */
    free(s);
    /* no `tasks` file: the pid, as cg_attach writes it */
    snprintf(p, sizeof(p), "%s/tasks", mem);
    CHECK(unlink(p) == 0);
    CHECK(cg && cg_join(cg) == PAI_OK);
    char want[32];
    snprintf(want, sizeof(want), "%d", (int)getpid());
    CHECK_STR_EQ(s = read_cg(mem, "cgroup.procs"), want);
    free(s);
    if (cg) { /* cg_destroy would rmdir the fake dirs, which hold files */
        snprintf(p, sizeof(p), "rm -rf '%s'", root);
        CHECK(system(p) == 0);
        cg_destroy(cg);
    }
    unsetenv("PAI_CGROUP_ROOT");
}

/* A per-agent monitor hands an ended task's cgroup to its next task under
 * the same parent instead of making and removing one: renamed to the new
 * attempt, limits rewritten, the OOM count taken from there (an OOM kill of
 * the task before is not the next one's), no cgroup left under the
 * attempt's name once it ended. */
/* How many of pid's descriptors below `below` are files of a pai-test
 * cgroup. */
static int held_below(pid_t pid, int below)
{
    char dir[64], p[400], target[512];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        ssize_t l = readlink(p, target, sizeof(target) - 1);
        target[l > 0 ? l : 0] = '\0';
        n += e->d_name[0] != '.' && strtol(e->d_name, NULL, 10) < below &&
             strstr(target, "/sys/fs/cgroup/") && strstr(target, "pai-test-pool");
    }
    if (d)
        closedir(d);
    return n;
}

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
    /* in turn: each of the agent's RT_MONITORS monitors, then the first
     * again (the last), which has the OOM-killed first task's cgroup in its
     * pool */
    const int last = RT_MONITORS;
    char first_cg[1024] = "";
    for (int i = 0; i <= last; i++) {
        snprintf(name, sizeof(name), "pool%d", i);
        setup_dirs(name, dir, sizeof(dir));
        snprintf(cg, sizeof(cg), "pai-test-pool/a%d", i);
        const char *look = "grep -E ':(memory|cpu):' /proc/self/cgroup; "
                           "cd /sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' "
                           "/proc/self/cgroup) && cat memory.limit_in_bytes && "
                           "grep oom_kill memory.oom_control; "
                           "echo cgroup fds: $(ls -l /proc/$$/fd | grep -c /sys/fs/cgroup)";
        spec_init(&s, dir,
                  i == 0 ? "python3 -c 'x=bytearray(200*1024*1024)' || "
                           "head -c 300000000 /dev/zero | tail"
                         : look);
        s.cgroup = cg;
        s.memory_mb = i == 0 ? 32 : 64;
        s.cpu = i == last ? 0 : 0.5;
        CHECK(ops->start(ops, &s, &t) == PAI_OK);
        CHECK(wait_done(ops, &t, &r, 30));
        CHECK(r.oom == (i == 0));
        CHECK_INT_EQ(r.exit_code, i == 0 ? EXIT_OOM_KILLED : 0);
        /* the record names the pooled cgroup the task ran in: a pool name
         * of its monitor's, never the attempt's (no rename per task) */
        char ran_cg[1024], want[1100];
        CHECK(rt_task_info(dir, ran_cg, sizeof(ran_cg)) > 0);
        snprintf(want, sizeof(want), "pai-test-pool/pool.%d.", (int)t.monitor_pid);
        CHECK(strncmp(ran_cg, want, strlen(want)) == 0);
        if (i == 0)
            snprintf(first_cg, sizeof(first_cg), "%s", ran_cg);
        ops->release(&t);
        snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/%s", cg);
        CHECK(access(p, F_OK) != 0); /* never made under the attempt's name */
        if (i == last) {
            char *out = slurp(dir, "stdout");
            CHECK_STR_EQ(ran_cg, first_cg); /* the first monitor's, reused */
            snprintf(want, sizeof(want), ":memory:/%s\n", ran_cg);
            CHECK(strstr(out, want) != NULL);
            CHECK(strstr(out, "\n67108864\n") != NULL);
            snprintf(want, sizeof(want), ":cpu:/%s", ran_cg);
            CHECK(strstr(out, want) == NULL); /* no CPU limit */
            /* the OOM-killed first task's cgroup (the count is never reset) */
            CHECK(strstr(out, "\noom_kill ") != NULL && strstr(out, "\noom_kill 0") == NULL);
            /* none of the files its monitor holds reached the task */
            CHECK(strstr(out, "\ncgroup fds: 0\n") != NULL);
            free(out);
            /* which the monitor holds above the 64-slot words a task's
             * process copies of its descriptor table (mon_spawn_task) */
            CHECK_INT_EQ(held_below(t.monitor_pid, CG_HELD_FD_MIN), 0);
            CHECK(held_below(t.monitor_pid, 1 << 20) > 0);
        }
    }
    DIR *d = opendir("/sys/fs/cgroup/memory/pai-test-pool");
    struct dirent *e;
    int pooled = 0;
    while (d && (e = readdir(d)))
        pooled += strncmp(e->d_name, "pool.", 5) == 0;
    if (d)
        closedir(d);
    CHECK_INT_EQ(pooled, RT_MONITORS); /* one per monitor */
    mond_shutdown();                   /* the monitors exit and remove their pools */
    CHECK(rmdir("/sys/fs/cgroup/memory/pai-test-pool") == 0);
    rmdir("/sys/fs/cgroup/cpu/pai-test-pool/pool.x"); /* nothing: they are gone */
    CHECK(rmdir("/sys/fs/cgroup/cpu/pai-test-pool") == 0);
}

static int count_pooled(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, "pool.", 5) == 0;
    if (d)
        closedir(d);
    return n;
}

/* The per-agent monitor is a child subreaper: what a task leaves behind
 * becomes its child (so that it can tell, from its own children, that
 * nothing of an ended task is left; mond.c).  An orphan that ended before
 * its task did leaves the cgroup empty: pooled.  A straggler still alive
 * at the task's end is seen as well: killed, and its cgroup not pooled. */
TEST(monitor_adopts_orphans_and_pools_only_emptied_cgroups)
{
    char dir[512], cmd[1400], p[700];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    const char *mem = "/sys/fs/cgroup/memory/pai-test-orphan";
    if (cg_version() != 1) {
        test_skip("not cgroup v1 as root");
        return;
    }
    unsetenv("PAI_MONITOR");
    setup_dirs("orphan", dir, sizeof(dir));
    /* sh A starts sh B in the background and exits: B is an orphan */
    snprintf(cmd, sizeof(cmd),
             "sh -c \"sh -c 'sleep 0.3; grep ^PPid: /proc/\\$\\$/status > %s/ppid' "
             "</dev/null >/dev/null 2>&1 &\"; sleep 1.5",
             dir);
    spec_init(&s, dir, cmd);
    s.cgroup = "pai-test-orphan/a";
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 30));
    CHECK_INT_EQ(r.exit_code, 0);
    pid_t mon = t.monitor_pid;
    ops->release(&t);
    buf_t b;
    buf_init(&b, 64);
    snprintf(p, sizeof(p), "%s/ppid", dir);
    CHECK(buf_read_file(&b, p) == PAI_OK);
    char want[64];
    snprintf(want, sizeof(want), "PPid:\t%d\n", (int)mon);
    CHECK_STR_EQ(buf_str(&b), want);
    buf_free(&b);
    CHECK_INT_EQ(count_pooled(mem), 1); /* emptied: kept for the next task */

    /* reaped by the monitor; its cgroup not pooled but removed.  It is the
     * pooled one above when the same monitor starts it (RT_MONITORS 1),
     * else a new one of the other monitor's */
    CHECK(straggler_killed("orphan2", "pai-test-orphan/b"));
    CHECK_INT_EQ(count_pooled(mem), RT_MONITORS > 1 ? 1 : 0);
    mond_shutdown();
    CHECK(rmdir(mem) == 0);
    CHECK(rmdir("/sys/fs/cgroup/cpu/pai-test-orphan") == 0 || errno == ENOENT);
}

/* A pooled cgroup keeps its name "pool.<monitor pid>.N" while a task runs
 * in it: when that monitor is killed (its attempts are lost), the next
 * monitor to use the parent removes it, and what the lost task left
 * running in it is killed. */
TEST(a_killed_monitors_cgroups_are_swept_with_what_runs_in_them)
{
    char dir[512], ran_cg[1024], p[1200];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    if (cg_version() != 1) {
        test_skip("not cgroup v1 as root");
        return;
    }
    unsetenv("PAI_MONITOR");
    mond_shutdown(); /* monitors that have not seen the parent yet */
    setup_dirs("sweep1", dir, sizeof(dir));
    spec_init(&s, dir, "sleep 300");
    s.cgroup = "pai-test-sweep/a";
    s.memory_mb = 64;
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    pid_t task = 0;
    for (int i = 0; i < 250 && task <= 0; i++, usleep(20 * 1000))
        task = rt_task_info(dir, ran_cg, sizeof(ran_cg));
    CHECK(task > 1 && ran_cg[0]);
    snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/%s", ran_cg);
    CHECK(access(p, F_OK) == 0);
    CHECK(kill(t.monitor_pid, SIGKILL) == 0);
    CHECK(waitpid(t.monitor_pid, NULL, 0) == t.monitor_pid);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, EXIT_NODE_LOST);
    ops->release(&t);
    CHECK(task > 1 && kill(task, 0) == 0); /* still running, unwatched */
    setup_dirs("sweep2", dir, sizeof(dir));
    spec_init(&s, dir, "true");
    s.cgroup = "pai-test-sweep/b";
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    CHECK(wait_done(ops, &t, &r, 30));
    CHECK_INT_EQ(r.exit_code, 0);
    ops->release(&t);
    for (int i = 0; i < 100 && task > 1 && kill(task, 0) == 0; i++)
        usleep(20 * 1000); /* killed; reaped by init */
    CHECK(task > 1 && kill(task, 0) != 0);
    CHECK(access(p, F_OK) != 0);
    mond_shutdown();
    CHECK(rmdir("/sys/fs/cgroup/memory/pai-test-sweep") == 0);
    rmdir("/sys/fs/cgroup/cpu/pai-test-sweep");
}

/* A warm start (runtime_ops_t.warm, at the agent's start): the monitor is
 * forked before any attempt and makes idle cgroups under the node's dir,
 * with no limits and its cpu dir not joined; the first attempts take them
 * (their own limits written then) instead of making their own, and the
 * monitor removes them when it exits. */
TEST(a_warm_start_makes_the_cgroups_the_first_attempts_take)
{
    char dir[512], p[600], want[1100], ran_cg[1024];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    if (cg_version() != 1) {
        test_skip("not cgroup v1 as root");
        return;
    }
    unsetenv("PAI_MONITOR");
    CHECK(ops->warm != NULL);
    if (!ops->warm)
        return;
    ops->warm("pai-test-warm", 3);
    ops->warm("pai-test-warm", 3); /* up to 3 there: none more */
    int made = 0;
    for (int i = 0; i < 500 && made < 3; i++) {
        made = count_pooled("/sys/fs/cgroup/memory/pai-test-warm");
        if (made < 3)
            usleep(10000);
    }
    usleep(50000);
    CHECK_INT_EQ(count_pooled("/sys/fs/cgroup/memory/pai-test-warm"), 3);
    CHECK_INT_EQ(count_pooled("/sys/fs/cgroup/cpu/pai-test-warm"), 3);
    const char *look = "grep -E ':(memory|cpu):' /proc/self/cgroup; "
                       "m=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup); "
                       "c=$(sed -n 's/^[0-9]*:cpu://p' /proc/self/cgroup); "
                       "echo mem $(cat /sys/fs/cgroup/memory$m/memory.limit_in_bytes); "
                       "echo quota $(cat /sys/fs/cgroup/cpu$c/cpu.cfs_quota_us)";
    for (int i = 0; i < 2; i++) {
        char name[16], cg[64];
        snprintf(name, sizeof(name), "warm%d", i);
        setup_dirs(name, dir, sizeof(dir));
        snprintf(cg, sizeof(cg), "pai-test-warm/a%d", i);
        spec_init(&s, dir, look);
        s.cgroup = cg;
        s.memory_mb = 64;
        s.cpu = i == 0 ? 0.5 : 0;
        CHECK(ops->start(ops, &s, &t) == PAI_OK);
        CHECK(wait_done(ops, &t, &r, 30));
        CHECK_INT_EQ(r.exit_code, 0);
        /* one of the warm ones: its monitor's, made before the attempt */
        CHECK(rt_task_info(dir, ran_cg, sizeof(ran_cg)) > 0);
        snprintf(want, sizeof(want), "pai-test-warm/pool.%d.", (int)t.monitor_pid);
        CHECK(strncmp(ran_cg, want, strlen(want)) == 0);
        long nth = strtol(ran_cg + strlen(want), NULL, 10);
        CHECK(nth >= 1 && nth <= 3);
        char *out = slurp(dir, "stdout");
        snprintf(want, sizeof(want), ":memory:/%s\n", ran_cg);
        CHECK(strstr(out, want) != NULL);
        CHECK(strstr(out, "mem 67108864\n") != NULL);
        snprintf(want, sizeof(want), ":cpu:/%s\n", ran_cg);
        if (i == 0) { /* its CPU limit: the cpu dir joined, the quota written */
            CHECK(strstr(out, want) != NULL);
            CHECK(strstr(out, "quota 50000\n") != NULL);
        } else { /* none: not in the pool's cpu dir */
            CHECK(strstr(out, want) == NULL);
        }
        free(out);
        ops->release(&t);
        CHECK_INT_EQ(count_pooled("/sys/fs/cgroup/memory/pai-test-warm"), 3);
    }
    mond_shutdown(); /* the monitor exits and removes its pool */
    CHECK_INT_EQ(count_pooled("/sys/fs/cgroup/memory/pai-test-warm"), 0);
    CHECK(rmdir("/sys/fs/cgroup/memory/pai-test-warm") == 0);
    CHECK(rmdir("/sys/fs/cgroup/cpu/pai-test-warm") == 0);
    snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/pai-test-warm");
    CHECK(access(p, F_OK) != 0);
}

RUN_TESTS(oom_kill_is_reported_with_openpai_code, cgroup_stragglers_are_killed_when_the_task_ends,
          cgroup_limits_are_written, cgroup_v2_limits_controllers_and_oom_are_handled,
          a_task_joins_its_v1_cgroups_through_tasks,
          pooled_cgroup_is_reused_with_its_limits_and_oom_count,
          monitor_adopts_orphans_and_pools_only_emptied_cgroups,
          a_killed_monitors_cgroups_are_swept_with_what_runs_in_them,
          a_warm_start_makes_the_cgroups_the_first_attempts_take)
