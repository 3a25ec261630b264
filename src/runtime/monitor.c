/*
 * monitor.c - the per-attempt monitor process (see runtime.h, monitor.h).
 *
 * Procedure in the monitor (a fork of the agent; the agent is
 * single-threaded so malloc and stdio are safe after fork):
 *   1. leave the agent's session, reset signals, close inherited fds;
 *   2. append "mon pid starttime" to the record <state>/monitor (runtime.h);
 *   3. run the prepare step (image prerequisite) -> failed_to_start on error;
 *   4. create the cgroup with the limits, start the task into it (a
 *      vfork-style clone: spawn_task), in its own
 *      process group and working dir, stdout/stderr on pipes ("task PID"
 *      appended to the record); a process
 *      task then drops to its identity (spec->isolate: no groups, uid/gid,
 *      no way back, no new privileges) before exec;
 *   5. pump the pipes into the rotated logs (stdout, stderr, all),
 *      forwarding SIGTERM/SIGUSR1 as graceful/forced kills;
 *   6. reap, read the OOM state, kill stragglers, remove the cgroup;
 *   7. append the "exit ..." line to the record, exit.
 */
#include "runtime/monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/util.h"
#include "runtime/cgroup.h"
#include "runtime/monitor_int.h"

static const char *const log_names[NLOGS] = {"stdout", "stderr", "all"};

static volatile sig_atomic_t want_term, want_kill;

static void on_signal(int sig)
{
    if (sig == SIGTERM)
        want_term = 1;
    else
        want_kill = 1;
}

uint64_t proc_start_time(pid_t pid)
{
    char p[64], buf[1024];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *s = strrchr(buf, ')'); /* comm may hold spaces */
    if (!s)
        return 0;
    /* after ")" come fields 3.. ; starttime is field 22 */
    int field = 2;
    for (; *s && field < 22; s++)
        if (*s == ' ')
            field++;
    return strtoull(s, NULL, 10);
}

/* Write path atomically (tmp + rename).  No fsync: the files must survive
 * an agent or monitor crash, which rename guarantees; after a machine
 * crash the attempt is gone anyway (the server's node-loss path).  The
 * agent's files are its own (0600): tasks read none of them. */
int mon_write_record(const char *dir, const char *name, const char *text)
{
    char dst[1024];
    snprintf(dst, sizeof(dst), "%s/%s", dir, name);
    return fs_write_atomic(dst, text, strlen(text), 0600) == PAI_OK ? 0 : -1;
}

/* Logs are written by the monitor and served by the agent; the task only
 * holds the write end of its pipes (0600: other tasks cannot read them).
 * A log file is created on the first line: a silent task creates none
 * (the agent's log server answers a missing one as empty).  The agent's
 * are flat in its logs dir (<logs>/<id>.stdout): no dir per attempt. */
static void log_init(logf_t *l, const char *prefix, const char *name)
{
    l->path = str_printf("%s%s", prefix, name);
    l->fd = -1;
    l->size = 0;
}

static int log_create(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* A missing dir the files go in is made on the first line too (0700,
 * root: the agent serves it). */
static void log_open(logf_t *l)
{
    struct stat st;
    if (l->fd >= 0 || l->opened)
        return;
    l->opened = true;
    l->fd = l->path ? log_create(l->path) : -1;
    if (l->fd < 0 && l->path && errno == ENOENT) {
        char *dir = xstrdup(l->path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (mkdir(dir, 0700) == 0 || errno == EEXIST)
                l->fd = log_create(l->path);
        }
        free(dir);
    }
    l->size = l->fd >= 0 && fstat(l->fd, &st) == 0 ? st.st_size : 0;
}

static void log_rotate(logf_t *l)
{
    char old[1024];
    snprintf(old, sizeof(old), "%s.1", l->path);
    close(l->fd);
    if (rename(l->path, old) != 0)
        unlink(l->path);
    l->fd = open(l->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    l->size = 0;
}

/* Append, rotating so that no file grows past max (the data is split). */
static void log_write_rot(logf_t *l, const char *data, size_t n, int64_t max)
{
    if (n > 0)
        log_open(l);
    while (n > 0 && l->fd >= 0) {
        if (max > 0 && l->size >= max)
            log_rotate(l);
        if (l->fd < 0)
            return;
        size_t room = max > 0 ? (size_t)(max - l->size) : n;
        size_t w = n < room ? n : room;
        (void)fs_write_all(l->fd, data, w); /* a full disk loses log lines, not the task */
        l->size += (int64_t)w;
        data += w;
        n -= w;
    }
}

void mon_logs_init(mon_t *m)
{
    for (int i = 0; i < NLOGS; i++)
        log_init(&m->logs[i], m->spec->log_prefix, log_names[i]);
}

void mon_logs_close(mon_t *m)
{
    for (int i = 0; i < NLOGS; i++) {
        if (m->logs[i].fd >= 0)
            close(m->logs[i].fd);
        m->logs[i].fd = -1;
        FREE_NULL(&m->logs[i].path);
    }
}

void mon_say(mon_t *m, const char *msg)
{
    log_write_rot(&m->logs[LOG_ERR], msg, strlen(msg), m->spec->log_max_bytes);
    log_write_rot(&m->logs[LOG_ALL], msg, strlen(msg), m->spec->log_max_bytes);
}

void mon_write_exit(mon_t *m, const char *kind, int code, int sig, bool oom)
{
    char text[MON_EXIT_LINE_MAX];
    /* the last field: whether stderr's log was written (1) or never made
     * (0), so the agent reads no tail of a silent task's stderr */
    snprintf(text, sizeof(text), "exit %s %d %d %d %lld %lld %d\n", kind, code, sig, oom ? 1 : 0,
             (long long)m->started_ms, (long long)time_wall_ms(), m->logs[LOG_ERR].opened ? 1 : 0);
    if (m->record_fd > 0)
        (void)fs_write_all(m->record_fd, text, strlen(text)); /* one write: a whole line */
    else
        rt_record_append(m->spec->state_dir, text);
    if (m->exit_line) /* for the agent, after the record (mond.c) */
        memcpy(m->exit_line, text, strlen(text) + 1);
}

static void mon_finish(mon_t *m, const char *kind, int code, int sig, bool oom)
{
    mon_write_exit(m, kind, code, sig, oom);
    _exit(0);
}

pid_t mon_fork(const sigset_t *blocked)
{
    sigset_t old;
    sigprocmask(SIG_BLOCK, blocked, &old);
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

void mon_detach(int notify_w, const sigset_t *blocked)
{
    struct sigaction sa;
    setsid();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL); /* fails harmlessly for KILL/STOP/RT */
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sigprocmask(SIG_SETMASK, blocked, NULL);
    if (notify_w != 3) {
        dup2(notify_w, 3);
        close(notify_w);
    }
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
        if (nul > 3)
            close(nul);
    }
    close_range(4, ~0U, 0);
}

/* Become the task's identity for good: no supplementary groups (but
 * those of its device nodes, rt_spec_t.groups), gid and
 * uid (real, effective, saved), checked that root cannot be regained, and
 * no new privileges through setuid binaries or file capabilities.  The
 * capabilities go with the uid change.  False when any step fails: the
 * caller must then not exec. */
bool mon_drop_privileges(const rt_spec_t *s)
{
    if (setgroups(s->n_groups, s->n_groups ? s->groups : NULL) != 0 ||
        setresgid(s->gid, s->gid, s->gid) != 0 || setresuid(s->uid, s->uid, s->uid) != 0)
        return false;
    if (s->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        return false;
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

/* The process runtime's command onto RT_COMMAND_FD, in a memfd: nothing
 * of the job's secrets is left on disk, and only the task's own uid can
 * open /proc/<pid>/fd/3 of its processes.  The per-agent monitor's sealed
 * memfd shared by the tasks that run the same text as the same identity
 * (m->command_fd: cmdfd.c) when it has one, else one made here. */
static bool open_command(const mon_t *m, int err_w)
{
    const char *cmd = m->spec->command;
    int fd = m->command_fd;
    if (fd > 2) { /* 0-2: the task's stdio by now */
        if (fd == RT_COMMAND_FD ? fcntl(fd, F_SETFD, 0) == 0 : dup2(fd, RT_COMMAND_FD) >= 0)
            return true; /* dup2 clears close-on-exec; the original goes with the rest */
        dprintf(err_w, "pai: cannot hand the task its command: %s\n", strerror(errno));
        return false;
    }
    fd = memfd_create("pai-command", 0);
    if (fd < 0 || !fs_write_all(fd, cmd, strlen(cmd)) || lseek(fd, 0, SEEK_SET) != 0 ||
        (fd != RT_COMMAND_FD && dup2(fd, RT_COMMAND_FD) < 0)) {
        dprintf(err_w, "pai: cannot hand the task its command: %s\n", strerror(errno));
        return false;
    }
    if (fd != RT_COMMAND_FD)
        close(fd);
    return true;
}

/* A child cloned with the monitor's descriptor table (CLONE_FILES: no copy
 * of it at the clone) makes its own before it changes one: the kernel
 * copies the 64-slot words below the pipes' ends (and the command's
 * descriptor), not the cgroup files and command memfds the monitor holds
 * above them (cgroup.h, CG_HELD_FD_MIN), and closes what it copied above
 * those.  unshare(2) (a copy of all) when close_range cannot; false when
 * neither can: the child must not go on. */
static bool own_fd_table(int out_w, int err_w, int cmd_fd)
{
    int top = out_w > err_w ? out_w : err_w;
    unsigned from = (unsigned)(cmd_fd > top ? cmd_fd : top) + 1;
    return close_range(from, ~0U, CLOSE_RANGE_UNSHARE) == 0 || unshare(CLONE_FILES) == 0;
}

static void task_child(mon_t *m, char *const *argv, int out_w, int err_w, bool shared_fds)
{
    bool process = !m->ops->engine;
    setpgid(0, 0);
    /* cgroup, working dir and command file as root; then the identity
     * (process runtime: the container engines run as root and map the
     * identity themselves).  On the monitor's table only what opens
     * nothing there: the moves through held files, the working dir. */
    bool join_first = m->cg && (!shared_fds || cg_join_held(m->cg));
    if (join_first && cg_join(m->cg) != PAI_OK)
        dprintf(err_w, "pai: cannot join the task cgroup\n");
    if (chdir(m->spec->cwd) != 0)
        dprintf(err_w, "pai: cannot enter %s: %s\n", m->spec->cwd, strerror(errno));
    if (shared_fds && !own_fd_table(out_w, err_w, m->command_fd))
        _exit(EXIT_RUNTIME_UNKNOWN);
    if (m->cg && !join_first && cg_join(m->cg) != PAI_OK)
        dprintf(err_w, "pai: cannot join the task cgroup\n");
    dup2(out_w, 1);
    dup2(err_w, 2);
    if (process && !open_command(m, 2))
        _exit(EXIT_SHELL_CANNOT_EXECUTE);
    close_range(process ? RT_COMMAND_FD + 1 : 3, ~0U, 0);
    if (m->spec->isolate && process && !mon_drop_privileges(m->spec)) {
        dprintf(2, "pai: cannot run the task as uid %lld: %s\n", (long long)m->spec->uid,
                strerror(errno));
        _exit(EXIT_RUNTIME_UNKNOWN);
    }
    umask(022); /* whatever the agent's */
    sigset_t none;
    sigemptyset(&none);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL); /* the monitor blocks TERM/USR1 */
    sched_child_default();                 /* the agent's SCHED_BATCH is not the task's */
    execvpe(argv[0], argv, m->spec->env);
    dprintf(2, "pai: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(errno == ENOENT ? EXIT_SHELL_NOT_FOUND : EXIT_SHELL_CANNOT_EXECUTE);
}

typedef struct {
    mon_t *m;
    char *const *argv;
    int out_w, err_w;
} spawn_arg_t;

static int spawn_entry(void *arg)
{
    spawn_arg_t *a = arg;
    task_child(a->m, a->argv, a->out_w, a->err_w, true); /* execs or _exits */
    return EXIT_RUNTIME_UNKNOWN;
}

#define SPAWN_STACK (256 * 1024)

/* ThreadSanitizer keeps the signal dispositions (and fds) it intercepts in
 * the process's memory, which the clone shares: the child's signal()
 * calls would reset the monitor's handlers there.  Plain fork under it. */
#if defined(__SANITIZE_THREAD__)
#define SPAWN_FORK 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPAWN_FORK 1
#endif
#endif
#ifndef SPAWN_FORK
#define SPAWN_FORK 0
#endif

/* Start the task's process.  It shares the monitor's memory until it
 * execs (CLONE_VM | CLONE_VFORK on a stack of its own, as posix_spawn
 * does; the monitor waits meanwhile): no copy of the monitor's page
 * tables, which are the agent's (~200 mappings), and no copy-on-write
 * faults, per task.  It shares the monitor's descriptor table too
 * (CLONE_FILES) until task_child makes its own, before its first change
 * to it (own_fd_table).  task_child writes only its own stack, fd table,
 * credentials, working dir and signal dispositions, none of which the
 * monitor shares by then.  fork() when no stack can be had, and under
 * TSan. */
static pid_t spawn(mon_t *m, char *const *argv, int out_w, int err_w)
{
    /* one stack for every spawn of the process: the monitor waits for the
     * child's exec (CLONE_VFORK) before it can spawn again */
    static void *stack = MAP_FAILED;
    spawn_arg_t a = {m, argv, out_w, err_w};
    if (!SPAWN_FORK && stack == MAP_FAILED)
        stack = mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        pid_t p = fork();
        if (p == 0)
            task_child(m, argv, out_w, err_w, false);
        if (p > 0)
            setpgid(p, p); /* also done by the child: no race on kill */
        return p;
    }
    /* the child has run setpgid before this returns (it has exec'd or
     * exited): no setpgid of the parent's to race a kill.  It starts on the
     * monitor's descriptor table (own_fd_table). */
    return clone(spawn_entry, (char *)stack + SPAWN_STACK,
                 CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &a);
}

pid_t mon_spawn_task(mon_t *m, char *const *argv, int out_w, int err_w)
{
    const rt_spec_t *s = m->spec;
    /* an identity that is not a task's (not isolated): one no task has */
    int fd = m->share_command && !m->ops->engine
                 ? mon_cmdfd_open(s->command, s->isolate ? s->uid : (uid_t)-1,
                                  s->isolate ? s->gid : (gid_t)-1)
                 : -1;
    m->command_fd = fd > 0 ? fd : 0;
    pid_t p = spawn(m, argv, out_w, err_w);
    if (m->command_fd > 0)
        close(m->command_fd); /* the task's process has its own by now */
    m->command_fd = 0;
    return p;
}

static pid_t engine_signal(mon_t *m, const char *sig)
{
    if (!m->ops->engine)
        return 0;
    char *argv[] = {(char *)m->ops->engine, "kill", "-s", (char *)sig, (char *)m->spec->name, NULL};
    pid_t p = fork();
    if (p == 0) {
        close_range(0, ~0U, 0);
        sched_child_default();
        execvp(argv[0], argv);
        _exit(127);
    }
    return p;
}

/* A container's init drops a TERM it has no handler for yet
 * (pid_namespaces(7)), and a container stopped in its first moments gets
 * it before pai's init (container_wrapper, runtime.c) has set its trap: it
 * would end only at the end of its grace, KILLed.  Whether the init took
 * it cannot be seen from here, so a TERM the engine delivered is sent
 * again after 0.5 s, 1, 2, then every 4 s until the task ends (or is
 * KILLed).  The engine signals the init alone, and pai's init hands only
 * the first TERM on to the task: the task sees one TERM however many are
 * sent.  Processes get theirs on the process group, never dropped: one. */
#define TERM_AGAIN_MS     500
#define TERM_AGAIN_MAX_MS 4000

static void term_again(mon_t *m)
{
    int gap = m->term_gap_ms ? 2 * m->term_gap_ms : TERM_AGAIN_MS;
    m->term_gap_ms = gap < TERM_AGAIN_MAX_MS ? gap : TERM_AGAIN_MAX_MS;
    m->term_again_ms = time_mono_ms() + m->term_gap_ms;
}

static void forward_signals(mon_t *m)
{
    if (m->term_again_ms && !m->term_helper && time_mono_ms() >= m->term_again_ms) {
        m->term_again_ms = 0;
        want_term = 1;
    }
    if (want_term) {
        want_term = 0;
        /* containers: the engine delivers it (its `run` client would only
         * detach); processes: the whole process group */
        if (m->ops->engine)
            m->term_helper = engine_signal(m, "TERM");
        else
            kill(-m->child, SIGTERM);
    }
    if (want_kill) {
        want_kill = 0;
        m->term_again_ms = 0;
        engine_signal(m, "KILL");
        kill(-m->child, SIGKILL);
        cg_kill_all(m->cg);
    }
}

bool mon_give_cwd(const rt_spec_t *s)
{
    struct stat st;
    /* a chown of a dir keeps its mode (only a file loses set-id bits) */
    return stat(s->cwd, &st) == 0 &&
           ((st.st_uid == s->uid && st.st_gid == s->gid) || chown(s->cwd, s->uid, s->gid) == 0) &&
           ((st.st_mode & 07777) == 0700 || chmod(s->cwd, 0700) == 0);
}

/* Read one chunk from fd into the logs; false at EOF. */
bool mon_pump(mon_t *m, int fd, int which)
{
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (n <= 0)
        return false;
    log_write_rot(&m->logs[which], buf, (size_t)n, m->spec->log_max_bytes);
    log_write_rot(&m->logs[LOG_ALL], buf, (size_t)n, m->spec->log_max_bytes);
    return true;
}

/* Reap engine kill helpers (never the task: its status is kept). */
static void reap_helpers(mon_t *m, int *status, bool *reaped)
{
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == m->child && !*reaped) {
            *status = st;
            *reaped = true;
        } else if (p == m->term_helper) {
            m->term_helper = 0;
            if (*reaped)
                continue;
            /* delivered (perhaps dropped), or a repeat that found the
             * container ended (its client is still cleaning up): on time */
            if ((WIFEXITED(st) && WEXITSTATUS(st) == 0) || m->term_gap_ms)
                term_again(m);
            else
                want_term = 1; /* the container may not exist yet: ask again */
        }
    }
}

/* Pump until both pipes close and the child is reaped; returns wait status. */
static int mon_loop(mon_t *m, int out_r, int err_r)
{
    struct pollfd pf[2] = {{out_r, POLLIN, 0}, {err_r, POLLIN, 0}};
    sigset_t empty;
    int status = 0;
    bool reaped = false;
    sigemptyset(&empty);
    while (pf[0].fd >= 0 || pf[1].fd >= 0 || !reaped) {
        forward_signals(m);
        struct timespec ts = {0, 100 * 1000 * 1000};
        int n = ppoll(pf, 2, &ts, &empty);
        for (int i = 0; n > 0 && i < 2; i++) {
            if (pf[i].fd >= 0 && pf[i].revents &&
                !mon_pump(m, pf[i].fd, i == 0 ? LOG_OUT : LOG_ERR)) {
                close(pf[i].fd);
                pf[i].fd = -1;
            }
        }
        if (!reaped) {
            bool eof = pf[0].fd < 0 && pf[1].fd < 0;
            reaped = waitpid(m->child, &status, eof ? 0 : WNOHANG) == m->child;
        }
        /* After the task ends, stragglers holding the pipes are killed. */
        if (reaped && (pf[0].fd >= 0 || pf[1].fd >= 0))
            cg_kill_all(m->cg);
        reap_helpers(m, &status, &reaped);
        if (reaped)
            m->term_again_ms = 0;
    }
    return status;
}

static void mon_main(mon_t *m, char *const *argv, monitor_prepare_fn prepare)
{
    char text[128];
    int out_p[2], err_p[2];
    struct sigaction sa;

    snprintf(text, sizeof(text), "mon %d %llu\n", (int)getpid(),
             (unsigned long long)proc_start_time(getpid()));
    rt_record_append(m->spec->state_dir, text);
    mon_logs_init(m);
    /* TERM and USR1 have been blocked since the fork (mon_fork): one sent
     * meanwhile is taken by the handler in mon_loop's ppoll */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    if (prepare)
        log_open(&m->logs[LOG_ERR]); /* the prepare step writes to it directly */
    int code = prepare ? prepare(m->ops, m->spec, m->logs[LOG_ERR].fd) : 0;
    if (code != 0)
        mon_finish(m, "failed", code, 0, false);
    if (m->spec->isolate && !m->ops->engine && !mon_give_cwd(m->spec)) {
        mon_say(m, "pai: cannot give the task its working directory\n");
        mon_finish(m, "failed", EXIT_CONTAINER_START_UNKNOWN, 0, false);
    }
    if (m->spec->cgroup && cg_version() != 0 &&
        cg_create(m->spec->cgroup, m->spec->memory_mb, m->spec->cpu, &m->cg) != PAI_OK)
        mon_say(m, "pai: warning: cannot create the task cgroup; limits not applied\n");
    if (m->cg && m->spec->isolate && !m->ops->engine)
        mon_fence_gpus(m);
    if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)
        mon_finish(m, "failed", EXIT_CONTAINER_START_UNKNOWN, 0, false);
    m->child = mon_spawn_task(m, argv, out_p[1], err_p[1]);
    if (m->child < 0)
        mon_finish(m, "failed", EXIT_CONTAINER_START_UNKNOWN, 0, false);
    snprintf(text, sizeof(text), "task %d\n", (int)m->child);
    rt_record_append(m->spec->state_dir, text);
    close(out_p[1]);
    close(err_p[1]);
    int status = mon_loop(m, out_p[0], err_p[0]);
    if (m->ops->engine) {
        /* never leave a container behind (e.g. its client was killed) */
        char *rm[] = {(char *)m->ops->engine, "rm", "-f", (char *)m->spec->name, NULL};
        monitor_run_wait(rm, NULL, -1);
    }
    bool oom = cg_oom(m->cg);
    cg_destroy(m->cg);
    if (!m->ops->engine) /* a container's /tmp goes with it */
        rt_ssh_tmp_clean(m->spec, m->child, NULL);
    int sig;
    int ec = mon_exit_code(m, status, oom, &sig);
    mon_finish(m, "exited", ec, sig, oom);
}

int mon_exit_code(const mon_t *m, int status, bool oom, int *sig)
{
    *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    int ec = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_SIGNAL_BASE + *sig;
    /* An OOM kill inside the cgroup that made the task fail is OpenPAI's
     * OOM exit; a task that survived it (a child was killed) keeps its code. */
    if (oom && ec != 0)
        ec = EXIT_OOM_KILLED;
    if (ec == EXIT_SHELL_NOT_FOUND && m->ops->engine)
        ec = EXIT_CMD_NOT_FOUND;
    return ec;
}

pai_err_t monitor_start(const runtime_ops_t *ops, const rt_spec_t *spec, char *const *argv,
                        monitor_prepare_fn prepare, rt_task_t *t)
{
    int np[2];
    sigset_t block;
    if (pipe2(np, O_CLOEXEC) != 0)
        return PAI_E_IO;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    fflush(NULL);
    pid_t pid = mon_fork(&block);
    if (pid < 0) {
        close(np[0]);
        close(np[1]);
        return PAI_E_IO;
    }
    if (pid == 0) {
        mon_t m = {.ops = ops, .spec = spec, .started_ms = time_wall_ms()};
        close(np[0]);
        mon_detach(np[1], &block);
        mon_main(&m, argv, prepare);
        _exit(0);
    }
    close(np[1]);
    memset(t, 0, sizeof(*t));
    t->monitor_pid = pid;
    t->monitor_start = proc_start_time(pid);
    t->notify_fd = np[0];
    t->state_dir = xstrdup(spec->state_dir);
    t->name = xstrdup(spec->name);
    t->started_ms = time_wall_ms();
    return PAI_OK;
}

static bool read_exit(const rt_task_t *t, rt_result_t *res)
{
    char p[1024], rec[RECORD_MAX];
    const char *line =
        rt_record_read(t->state_dir, rec, sizeof(rec)) ? rt_record_line(rec, "exit ") : NULL;
    if (line)
        return rt_exit_parse(line, res);
    /* lost (the agent's marker), or an older agent's attempt */
    snprintf(p, sizeof(p), "%s/exit", t->state_dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, rec, sizeof(rec) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return false;
    rec[got] = '\0';
    return rt_exit_parse(rec, res);
}

static bool monitor_alive(const rt_task_t *t)
{
    if (t->monitor_pid <= 0)
        return false;
    waitpid(t->monitor_pid, NULL, WNOHANG); /* reap when it is our child */
    uint64_t st = proc_start_time(t->monitor_pid);
    return st != 0 && st == t->monitor_start;
}

bool monitor_poll(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res)
{
    (void)ops;
    if (read_exit(t, res)) {
        monitor_alive(t); /* reap */
        return true;
    }
    if (monitor_alive(t))
        return false;
    if (read_exit(t, res)) /* it ended between the two checks */
        return true;
    /* The monitor is gone without a result: the attempt is lost. */
    memset(res, 0, sizeof(*res));
    res->state = RT_EXITED;
    res->exit_code = EXIT_NODE_LOST;
    res->started_ms = t->started_ms;
    res->finished_ms = time_wall_ms();
    char text[128];
    snprintf(text, sizeof(text), "exited %d 0 0 %lld %lld\n", EXIT_NODE_LOST,
             (long long)res->started_ms, (long long)res->finished_ms);
    mon_write_record(t->state_dir, "exit", text);
    return true;
}

void monitor_kill(const runtime_ops_t *ops, rt_task_t *t, bool force, int grace_s)
{
    (void)ops;
    (void)grace_s;
    if (!monitor_alive(t))
        return;
    if (t->mon_key) {
        union sigval v = {.sival_int = (int)t->mon_key};
        sigqueue(t->monitor_pid, force ? MOND_SIG_KILL : MOND_SIG_TERM, v);
    } else {
        kill(t->monitor_pid, force ? SIGUSR1 : SIGTERM);
    }
}

bool monitor_adopt(const runtime_ops_t *ops, rt_task_t *t)
{
    char rec[RECORD_MAX];
    int pid = 0, got = 0;
    unsigned long long st = 0;
    unsigned key = 0;
    rt_result_t res;
    (void)ops;
    t->notify_fd = -1;
    if (read_exit(t, &res)) {
        t->started_ms = res.started_ms;
        return true;
    }
    if (!rt_record_read(t->state_dir, rec, sizeof(rec)))
        return false;
    const char *mon = rt_record_line(rec, "mon ");
    if (!mon && rec[0] >= '0' && rec[0] <= '9')
        mon = rec; /* an older agent's record: the monitor's line first, untagged */
    if (mon)
        got = sscanf(mon, "%d %llu %u", &pid, &st, &key);
    if (got < 2)
        pid = 0;
    t->monitor_pid = pid;
    t->monitor_start = st;
    t->mon_key = got == 3 ? key : 0; /* a per-agent monitor's attempt */
    return pid > 0;
}

void monitor_release(rt_task_t *t)
{
    if (t->notify_fd >= 0)
        close(t->notify_fd);
    t->notify_fd = -1;
    FREE_NULL(&t->state_dir);
    FREE_NULL(&t->name);
}

int monitor_run_wait(char *const *argv, const char *in, int out_fd)
{
    int ip[2] = {-1, -1}, status;
    if (in && pipe2(ip, O_CLOEXEC) != 0)
        return -1;
    pid_t p = fork();
    if (p < 0)
        return -1;
    if (p == 0) {
        int nul = open("/dev/null", O_RDWR);
        dup2(in ? ip[0] : nul, 0);
        dup2(out_fd >= 0 ? out_fd : nul, 1);
        dup2(out_fd >= 0 ? out_fd : nul, 2);
        close_range(3, ~0U, 0);
        sched_child_default();
        execvp(argv[0], argv);
        _exit(127);
    }
    if (in) {
        close(ip[0]);
        (void)fs_write_all(ip[1], in, strlen(in));
        close(ip[1]);
    }
    while (waitpid(p, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
