/*
 * bench/task.c - what one task costs on the node, against the machine's
 * own yardstick measured in the same run.
 *
 * Starts --tasks N process-runtime attempts running `true`, --par P at a
 * time, through runtime_find("process") exactly as the agent does (the
 * agent's own files first: state dir, cwd, the record's id line; then the
 * monitor, the task, the exit record; the log dir is the monitor's, on the
 * first line), with a cgroup, memory and CPU limits and the
 * task dropped to --uid when the bench runs as root.  Then, in the same
 * run, N bare `bash -c true` started P-way by xargs.  Prints the ratios
 * (tasks/s over bare starts/s; CPU per task over CPU per bare start) first,
 * then the absolute figures and what a task left behind: inodes under its
 * state and log dirs.  CPU is getrusage of this process and its children
 * (monitors, tasks), so other work on a shared machine is not counted.
 * With the per-agent monitor it is also split by part: the driver's own
 * (the agent's share), the monitors' own (their /proc/PID/schedstat,
 * read before they are shut down) and the rest (the tasks' processes).
 * The driver links the same libraries as `pai`, so a monitor is a fork of
 * a process of the agent's size.
 * --monitor picks the per-agent monitor (agent, the default), a monitor
 * forked per attempt (per-task) or both, interleaved in the same run.
 * --pooled: each attempt's dir goes into the agent's pool (agent/dirpool.h)
 * as soon as it ends and the next start takes it, as the agent does once
 * the server acked the end; without it every start makes its dirs, as
 * before (and as an agent does for its first tasks).
 *   usage: bench/task [--tasks N] [--par P] [--dir DIR] [--uid UID] [--no-cgroup]
 *                     [--monitor agent|per-task|both] [--pooled]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/dirpool.h"
#include "common/fs.h"
#include "common/util.h"
#include "runtime/cgroup.h"
#include "runtime/monitor.h"
#include "runtime/runtime.h"

#include "benchclean.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(int who)
{
    struct rusage r;
    getrusage(who, &r);
    return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec / 1e6 +
           (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec / 1e6;
}

static double all_cpu(void)
{
    return cpu_s(RUSAGE_SELF) + cpu_s(RUSAGE_CHILDREN);
}

/* Files and directories under dir, dir itself included. */
static long count_inodes(const char *dir)
{
    long n = 1;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = str_printf("%s/%s", dir, e->d_name);
        n += e->d_type == DT_DIR ? count_inodes(p) : 1;
        free(p);
    }
    closedir(d);
    return n;
}

typedef struct {
    rt_task_t rt;
    bool busy;
    char state[700]; /* its attempt's dir */
    int slot;        /* its pool slot (--pooled) */
} slot_t;

/* As the agent's (attempt.c build_env): with SHELL set, bash does not ask
 * NSS for the passwd entry the task's uid may not have (--uid); LANG as
 * every task's, since a bash start's cost follows its locale (~0.2 ms a
 * start here, bench/yardstick.py).  The yardstick runs with the same. */
#define ENV_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ENV_LANG "LANG=C.UTF-8"
static char env_shell[64];
static const char *env_base[] = {ENV_PATH, "HOME=/tmp", ENV_LANG, env_shell, NULL};

/* The agent's part of a start (node.c task_start) and the runtime's. */
static bool start_one(const runtime_ops_t *ops, const char *root, int i, bool cgroup, int64_t uid,
                      dirpool_t *pool, slot_t *s)
{
    char id[64], state[700], cwd[800], logs[700], cg[128], name[64];
    snprintf(id, sizeof(id), "bench~t%06d/0/main/0/0", i);
    snprintf(name, sizeof(name), "bench~t%06d+0+main+0+0", i);
    /* the agent's id line (a pooled slot's record rewritten); the fd to the monitor */
    int rfd = pool->dir[0] ? dirpool_take(pool, id, &s->slot) : -1;
    if (rfd >= 0)
        dirpool_path(pool, s->slot, state, sizeof(state));
    else
        snprintf(state, sizeof(state), "%s/tasks/%s", root, name);
    snprintf(cwd, sizeof(cwd), "%s/cwd", state);
    snprintf(logs, sizeof(logs), "%s/logs/%s.", root, name); /* flat: the agent's */
    snprintf(cg, sizeof(cg), "pai-bench-task/%d.%d", i, (int)getpid());
    snprintf(s->state, sizeof(s->state), "%s", state);
    if (rfd < 0 && (fs_mkdir_p(state, 0711) != PAI_OK || fs_mkdir_p(cwd, 0700) != PAI_OK))
        return false; /* the log dir: the monitor's, on the first line of output */
    if (rfd < 0 && (rfd = rt_record_open(state, id)) < 0)
        return false;
    rt_spec_t sp = {.attempt_id = id,
                    .name = name,
                    .command = "true",
                    .env = (char *const *)env_base,
                    .state_dir = state,
                    .record_fd = rfd,
                    .cwd = cwd,
                    .log_prefix = logs,
                    .cgroup = cgroup ? cg : NULL,
                    .memory_mb = 256,
                    .cpu = 1,
                    .log_max_bytes = 1 << 20,
                    .isolate = uid >= 0,
                    .uid = (uid_t)(uid >= 0 ? uid : 0),
                    .gid = (gid_t)(uid >= 0 ? uid : 0)};
    s->busy = ops->start(ops, &sp, &s->rt) == PAI_OK;
    close(rfd);
    return s->busy;
}

typedef struct {
    double wall, cpu;
    double self, mon; /* the driver's own CPU; the per-agent monitors' own (schedstat) */
    int failed;
    long inodes;
} run_t;

/* A process's own time on a CPU, in seconds (the first field of
 * /proc/PID/schedstat, in ns: exact, not in ticks); 0 when unreadable. */
static double sched_cpu(pid_t pid)
{
    char p[64], b[128];
    snprintf(p, sizeof(p), "/proc/%d/schedstat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof(b) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 0;
    b[n] = '\0';
    return (double)strtoull(b, NULL, 10) / 1e9;
}

/* The per-agent monitors seen (their pids), to read their own CPU before
 * they exit. */
#define MONS_MAX 64
static pid_t mons[MONS_MAX];
static size_t n_mons;

static void mon_seen(const rt_task_t *t)
{
    for (size_t i = 0; i < n_mons; i++)
        if (mons[i] == t->monitor_pid)
            return;
    if (t->mon_key && t->monitor_pid > 0 && n_mons < MONS_MAX)
        mons[n_mons++] = t->monitor_pid;
}

/* n attempts, par at a time, under root/<mode>; the monitor (per-agent or
 * per-attempt) is reaped before the CPU is read, so that its CPU and its
 * tasks' are counted. */
static run_t run_tasks(const char *root, int n, int par, bool cgroup, int64_t uid, bool pooled)
{
    dirpool_t pool = {0};
    char p[700];
    snprintf(p, sizeof(p), "%s/tasks", root); /* the agent's slots are its tasks dir */
    if (pooled && !dirpool_init(&pool, p))
        return (run_t){.failed = n};
    /* as the agent's start does (a dir for each task at once), before the clock */
    long filled = pooled ? (long)dirpool_fill(&pool, (size_t)par) : 0;
    const runtime_ops_t *ops = runtime_find("process");
    slot_t *slots = xcalloc((size_t)par, sizeof(*slots));
    /* the per-agent monitors' sockets first, then each slot's notify fd
     * (per-attempt monitors): as the agent's loop watches them */
    struct pollfd *pf = xcalloc((size_t)par + RT_MONITORS, sizeof(*pf));
    int wfd[RT_MONITORS];
    int started = 0, done = 0;
    run_t r = {0};
    n_mons = 0;
    double c0 = all_cpu(), t0 = now_s(), s0 = cpu_s(RUSAGE_SELF);
    while (done < n) {
        for (int k = 0; k < par && started < n; k++)
            if (!slots[k].busy && !start_one(ops, root, started++, cgroup, uid, &pool, &slots[k])) {
                r.failed++;
                done++;
            }
        int m = 0, w = (int)rt_watch_fds(wfd, RT_MONITORS);
        for (int j = 0; j < w; j++)
            pf[j] = (struct pollfd){wfd[j], POLLIN, 0};
        for (int k = 0; k < par; k++)
            pf[w + k] = (struct pollfd){slots[k].busy ? slots[k].rt.notify_fd : -1, POLLIN, 0};
        for (int k = 0; k < par; k++)
            m += slots[k].busy;
        if (m > 0 && poll(pf, (nfds_t)(w + par), 100) < 0 && errno != EINTR)
            break;
        for (int j = 0; j < w; j++)
            if (pf[j].revents)
                rt_watch_drain(wfd[j]);
        for (int k = 0; k < par; k++) {
            rt_result_t res;
            /* polled when told (its fd fired, its monitor's line came) or
             * when it has no fd to tell it */
            if (!slots[k].busy ||
                !(pf[w + k].revents || rt_task_news(&slots[k].rt) ||
                  rt_notify_fd(&slots[k].rt) < 0) ||
                !ops->poll(ops, &slots[k].rt, &res))
                continue;
            r.failed += res.exit_code != 0;
            mon_seen(&slots[k].rt);
            /* a per-attempt monitor writes the exit record just before it
             * ends: reap it, so that its CPU (and its task's) is counted */
            if (!slots[k].rt.mon_key)
                waitpid(slots[k].rt.monitor_pid, NULL, 0);
            ops->release(&slots[k].rt);
            slots[k].busy = false;
            if (pooled) /* forgotten at once: the next start takes its dir */
                dirpool_put(&pool, slots[k].slot, uid >= 0); /* as the agent: cwd alone */
            done++;
        }
    }
    r.wall = now_s() - t0;
    for (size_t i = 0; i < n_mons; i++)
        r.mon += sched_cpu(mons[i]);
    r.self = cpu_s(RUSAGE_SELF) - s0;
    mond_shutdown(); /* its attempts are over: it exits, and is reaped */
    r.cpu = all_cpu() - c0;
    snprintf(p, sizeof(p), "%s/tasks", root);
    r.inodes = count_inodes(p) - (pooled ? 3 * filled : 0); /* made during the run */
    snprintf(p, sizeof(p), "%s/logs", root);
    r.inodes += count_inodes(p);
    dirpool_free(&pool);
    free(slots);
    free(pf);
    return r;
}

/* Remove the bench's dir (root) and, with cgroups, its cgroup parents. */
static void remove_all(const char *root, bool cgroup)
{
    char p[600], cmd[700];
    for (const char *c = cgroup ? "memory cpu" : ""; *c;) { /* our cgroup parent */
        size_t l = strcspn(c, " ");
        snprintf(p, sizeof(p), "/sys/fs/cgroup/%.*s/pai-bench-task", (int)l, c);
        rmdir(p);
        c += l + (c[l] == ' ');
    }
    rmdir("/sys/fs/cgroup/pai-bench-task");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", root);
    bench_clean_dir_gone(root);
}

/* Print the figures: res[m] and runs[m] for the per-task (0) and the
 * per-agent (1) monitor, the yardstick's wall and CPU seconds (rc: its
 * exit status). */
static void report(int n, int par, bool cgroup, int64_t uid, bool pooled, const run_t res[2],
                   const int runs[2], double bwall, double bcpu, int rc, int failed)
{
    double load[1] = {0};
    getloadavg(load, 1);
    printf("bench-task: %d tasks of `true`, %d at a time, process runtime, %s, %s, %s (%d "
           "failed)\n",
           n, par, cgroup ? "cgroup with memory and CPU limits" : "no cgroup",
           uid >= 0 ? "dropped to an unprivileged uid" : "same uid",
           pooled ? "attempt dirs from the pool" : "attempt dirs made", failed);
    for (int m = 1; m >= 0; m--) {
        if (!runs[m])
            continue;
        double wall = res[m].wall / runs[m], cpu = res[m].cpu / runs[m];
        printf(" monitor: %s%s\n", m ? "one per agent" : "one per task",
               runs[m] > 1 ? " (mean of 2 runs)" : "");
        printf("  throughput ratio     %7.2f   (tasks/s / bare starts/s)\n",
               (n / wall) / (n / bwall));
        printf("  CPU ratio            %7.2f   (CPU per task / CPU per bare start)\n",
               (cpu / n) / (bcpu / n));
        printf("  tasks/s              %7.1f   (bare `bash -c true` via xargs: %.1f/s%s)\n",
               n / wall, n / bwall, rc != 0 ? ", FAILED" : "");
        printf("  CPU per task ms      %7.3f   (driver + monitors + tasks; bare start %.3f)\n",
               1000 * cpu / n, 1000 * bcpu / n);
        if (res[m].mon > 0)
            printf("  by part ms per task  %7.3f   driver (the agent's part) + %.3f monitors' "
                   "own + %.3f tasks\n",
                   1000 * res[m].self / runs[m] / n, 1000 * res[m].mon / runs[m] / n,
                   1000 * (res[m].cpu - res[m].self - res[m].mon) / runs[m] / n);
        printf("  inodes left per task %7.2f   (state, log and pool dirs; cgroups: %s)\n",
               (double)(res[m].inodes / runs[m] - 2) / n,
               !cgroup             ? "none"
               : cg_version() != 1 ? "1 made and removed per task"
               : m                 ? "reused from the monitors' pools"
                                   : "2 made and removed per task");
    }
    printf("  load average         %7.1f   (%ld CPUs)\n", load[0], sysconf(_SC_NPROCESSORS_ONLN));
}

int main(int argc, char **argv)
{
    int n = 1000, par = 16;
    int64_t uid = geteuid() == 0 ? 65534 : -1;
    bool ok = true, pooled = false;
    bool cgroup = geteuid() == 0 && cg_version() != 0;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    const char *mode = "agent";
    snprintf(env_shell, sizeof(env_shell), "SHELL=%s", rt_process_shell());
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc)
            ok = str_to_int(argv[++i], 1, 10000000, &n) == PAI_OK;
        else if (strcmp(argv[i], "--par") == 0 && i + 1 < argc)
            ok = str_to_int(argv[++i], 1, 4096, &par) == PAI_OK;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            base = argv[++i];
        else if (strcmp(argv[i], "--uid") == 0 && i + 1 < argc)
            ok = str_to_i64(argv[++i], -1, 0x7fffffff, &uid) == PAI_OK;
        else if (strcmp(argv[i], "--no-cgroup") == 0)
            cgroup = false;
        else if (strcmp(argv[i], "--monitor") == 0 && i + 1 < argc)
            mode = argv[++i];
        else if (strcmp(argv[i], "--pooled") == 0)
            pooled = true;
        else
            ok = false;
        ok = ok && (strcmp(mode, "agent") == 0 || strcmp(mode, "per-task") == 0 ||
                    strcmp(mode, "both") == 0);
        if (!ok) {
            fprintf(stderr,
                    "usage: %s [--tasks N] [--par P] [--dir DIR] [--uid UID] [--no-cgroup] "
                    "[--monitor agent|per-task|both] [--pooled]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n < 1 || par < 1)
        return 2;
    char root[512];
    snprintf(root, sizeof(root), "%s/pai-bench-task-XXXXXX", base);
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    bench_clean_dir(root); /* removed also if a signal ends the bench */
    /* both: per-task, agent, agent, per-task (interleaved, so that a change
     * of the shared machine's load hits both alike) */
    const char *order[4] = {mode, NULL, NULL, NULL};
    if (strcmp(mode, "both") == 0) {
        order[0] = "per-task";
        order[1] = order[2] = "agent";
        order[3] = "per-task";
    }
    run_t res[2];
    memset(res, 0, sizeof(res));
    int runs[2] = {0, 0};
    for (int i = 0; i < 4 && order[i]; i++) {
        char dir[520];
        char logs[600];
        snprintf(dir, sizeof(dir), "%s/%d", root, i);
        mkdir(dir, 0755);
        snprintf(logs, sizeof(logs), "%s/logs", dir); /* the agent's logs/ (task_dirs_init) */
        mkdir(logs, 0700);
        snprintf(logs, sizeof(logs), "%s/tasks", dir); /* and its tasks/ */
        mkdir(logs, 0711);
        int m = strcmp(order[i], "agent") == 0;
        setenv("PAI_MONITOR", order[i], 1);
        run_t r = run_tasks(dir, n, par, cgroup, uid, pooled);
        res[m].wall += r.wall;
        res[m].cpu += r.cpu;
        res[m].self += r.self;
        res[m].mon += r.mon;
        res[m].failed += r.failed;
        res[m].inodes += r.inodes;
        runs[m]++;
    }

    /* The yardstick: the same number of bare starts at the same parallelism,
     * with the tasks' environment (not the caller's locale). */
    char cmd[700];
    snprintf(cmd, sizeof(cmd),
             "seq %d | env -i " ENV_PATH " HOME=/tmp " ENV_LANG " %s xargs -P %d -n 1 bash -c true",
             n, env_shell, par);
    double bc0 = cpu_s(RUSAGE_CHILDREN), bt0 = now_s();
    int rc = system(cmd);
    double bwall = now_s() - bt0, bcpu = cpu_s(RUSAGE_CHILDREN) - bc0;

    remove_all(root, cgroup);
    int failed = res[0].failed + res[1].failed;
    report(n, par, cgroup, uid, pooled, res, runs, bwall, bcpu, rc, failed);
    return failed ? 1 : 0;
}
