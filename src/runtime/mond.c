/*
 * mond.c - the per-agent monitor: one long-lived process that starts,
 * watches and reaps every process-runtime attempt of one agent process,
 * instead of a fork of the agent per attempt (runtime.h's design; the
 * files and their invariants are the same).
 *
 * The agent forks it on its first process attempt and talks to it over a
 * SOCK_SEQPACKET socketpair.  A start is one message: 'I' and the spec
 * (length-prefixed fields below; the command is in it, so it is on no
 * command line and in no file) with one fd, the write end of the
 * attempt's notify pipe, when the spec takes at most MOND_INLINE_MAX
 * bytes; else 'S' with two fds, a memfd holding the spec and that pipe's
 * end (a memfd, a write and a close more per start, and the monitor's
 * read of it).  The pipe is which the monitor closes once the exit line of
 * the attempt's record (runtime.h) is written: the agent's side of an attempt (rt_task_t.notify_fd)
 * is the same as with a per-attempt monitor.
 *
 * Procedure in the monitor, for each start (monitor.c's steps 2-7, run
 * from one event loop instead of one process each):
 *   1. "mon pid starttime key" appended to the record <state>/monitor (its
 *      own pid and start time, and the attempt's key: what adopt() and
 *      kill() need);
 *   2. working dir given to the task's identity, cgroup with the limits,
 *      GPU fence, pipes; the task started by a vfork-style clone
 *      (mon_spawn_task, no copy of the monitor) in its own process group;
 *      "task PID CGROUP" appended to the record (the pooled cgroup keeps
 *      its own name: cgroup.h);
 *   3. the loop pumps every task's pipes into its logs, reaps with
 *      waitpid(-1) on SIGCHLD (signalfd), kills stragglers of a reaped task
 *      that hold its pipes, then hands the cgroup back to the monitor's
 *      pool (cgroup.h: kept when empty, for the next task of the same node; removed with what is
 * left in it otherwise; empty told from the monitor's own children: md_strays_none), writes the
 * exit line, and closes the notify pipe. Kill requests are queued real-time signals carrying the
 * key (sigqueue: MOND_SIG_TERM graceful, MOND_SIG_KILL forced; blocked from the monitor's fork on,
 * so one sent before its loop is up is not its death by their default action but waits in its
 * signalfd), so a restarted agent can stop the attempts of its predecessor's monitor from the
 * monitor record alone; a key the monitor does not hold (an attempt already
 * reaped and gone) is ignored, so a kill never reaches a reused pid.
 * The monitor outlives its agent (kill -9 included): when the socket
 * closes it finishes the attempts it holds and exits.  The next agent
 * re-adopts them from their files and forks its own monitor.
 * A monitor that dies loses its attempts (reported lost, as when a
 * per-attempt monitor dies), and a start sent while it was dying with
 * them; the next start finds its socket closed and forks a new one.
 * Known limit: the removal of a cgroup that still holds processes after
 * they were killed (cg_destroy) waits for them, up to 2 s,
 * and stalls the other attempts' log pumping meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/util.h"
#include "common/vec.h"
#include "runtime/monitor_int.h"

#define MOND_MAGIC   0x70616931u /* "pai1" */
#define MOND_MAX_MSG (64u << 20)
/* A spec up to this size goes in the start message itself (a short
 * task's is a few KB: its env and command), a larger one in a memfd. */
#define MOND_INLINE_MAX (32u * 1024)
#define STRAGGLER_MS    100
/* A task reaped while its pipes are still open: the first look for
 * stragglers waits this long, in which the pipes' end usually arrives (a
 * walk of the cgroup and a read of its processes per task otherwise). */
#define STRAGGLER_FIRST_MS 20

/* ---- the start message ---------------------------------------------------- */

static bool put(buf_t *b, const void *p, size_t n)
{
    return buf_append(b, p, n) == PAI_OK;
}

static bool put_u32(buf_t *b, uint32_t v)
{
    return put(b, &v, sizeof(v));
}

static bool put_i64(buf_t *b, int64_t v)
{
    return put(b, &v, sizeof(v));
}

/* Length with the NUL (0: NULL), then the bytes and the NUL. */
static bool put_str(buf_t *b, const char *s)
{
    uint32_t l = s ? (uint32_t)strlen(s) + 1 : 0;
    return put_u32(b, l) && (!s || put(b, s, l));
}

static bool put_strv(buf_t *b, char *const *v)
{
    uint32_t n = 0;
    while (v && v[n])
        n++;
    bool ok = put_u32(b, n);
    for (uint32_t i = 0; ok && i < n; i++)
        ok = put_str(b, v[i]);
    return ok;
}

static bool put_strn(buf_t *b, const char *const *v, size_t n)
{
    bool ok = put_u32(b, (uint32_t)n);
    for (size_t i = 0; ok && i < n; i++)
        ok = put_str(b, v[i]);
    return ok;
}

/* Every field of rt_spec_t a process attempt uses (containers have their
 * own monitor: no image, mounts or container devices here). */
static bool encode(buf_t *b, uint32_t key, const rt_spec_t *s, char *const *argv)
{
    int64_t cpu_bits;
    memcpy(&cpu_bits, &s->cpu, sizeof(cpu_bits));
    bool ok = put_u32(b, MOND_MAGIC) && put_u32(b, key) && put_str(b, s->attempt_id) &&
              put_str(b, s->name) && put_str(b, s->command) && put_str(b, s->state_dir) &&
              put_str(b, s->cwd) && put_str(b, s->log_prefix) && put_str(b, s->cgroup) &&
              put_str(b, s->gpu_dev_dir) && put_i64(b, s->memory_mb) && put_i64(b, cpu_bits) &&
              put_i64(b, s->shm_mb) && put_i64(b, s->log_max_bytes) && put_i64(b, s->isolate) &&
              put_i64(b, s->uid) && put_i64(b, s->gid) && put_strv(b, s->env) &&
              put_u32(b, (uint32_t)s->n_gpus);
    for (size_t i = 0; ok && i < s->n_gpus; i++)
        ok = put_i64(b, s->gpus[i]);
    ok = ok && put_i64(b, s->own_devices) && put_strn(b, s->fence, s->n_fence) &&
         put_u32(b, (uint32_t)s->n_groups);
    for (size_t i = 0; ok && i < s->n_groups; i++)
        ok = put_i64(b, s->groups[i]);
    return ok && put_strv(b, argv);
}

typedef struct {
    const char *p;
    size_t n, off;
    bool bad;
} rd_t;

static const void *get(rd_t *r, size_t n)
{
    if (r->bad || r->n - r->off < n) {
        r->bad = true;
        return NULL;
    }
    r->off += n;
    return r->p + r->off - n;
}

static uint32_t get_u32(rd_t *r)
{
    uint32_t v = 0;
    const void *p = get(r, sizeof(v));
    if (p)
        memcpy(&v, p, sizeof(v));
    return v;
}

static int64_t get_i64(rd_t *r)
{
    int64_t v = 0;
    const void *p = get(r, sizeof(v));
    if (p)
        memcpy(&v, p, sizeof(v));
    return v;
}

/* A pointer into the message (NUL-terminated), or NULL. */
static const char *get_str(rd_t *r)
{
    uint32_t l = get_u32(r);
    const char *s = l ? get(r, l) : NULL;
    if (s && s[l - 1] != '\0')
        r->bad = true;
    return r->bad ? NULL : s;
}

/* A count, then that many strings; *n set. */
static char **get_strn(rd_t *r, size_t *n)
{
    uint32_t c = get_u32(r);
    if (r->bad || c > (r->n - r->off) / sizeof(uint32_t))
        return r->bad = true, NULL;
    char **v = xcalloc(c + 1, sizeof(char *));
    for (uint32_t i = 0; i < c && !r->bad; i++)
        v[i] = (char *)get_str(r);
    *n = c;
    return v;
}

static char **get_strv(rd_t *r)
{
    uint32_t n = get_u32(r);
    if (r->bad || n > (r->n - r->off) / sizeof(uint32_t))
        return r->bad = true, NULL;
    char **v = xcalloc(n + 1, sizeof(char *));
    for (uint32_t i = 0; i < n && !r->bad; i++)
        v[i] = (char *)get_str(r);
    return v;
}

/* ---- one attempt in the monitor ------------------------------------------ */

typedef struct {
    mon_t m;
    rt_spec_t spec;
    char *msg; /* the start message: the spec's strings point into it */
    char **env, **argv, **fence;
    int *gpus;
    gid_t *groups;
    uint32_t key;
    int out_r, err_r, notify_w;
    bool reaped;
    int status;
    int64_t next_kill_ms; /* reaped, pipes held: stragglers killed again then */
} mtask_t;

static bool mt_decode(mtask_t *k, size_t len)
{
    rd_t r = {k->msg, len, 0, false};
    rt_spec_t *s = &k->spec;
    int64_t cpu_bits;
    if (get_u32(&r) != MOND_MAGIC)
        return false;
    k->key = get_u32(&r);
    s->attempt_id = get_str(&r);
    s->name = get_str(&r);
    s->command = get_str(&r);
    s->state_dir = get_str(&r);
    s->cwd = get_str(&r);
    s->log_prefix = get_str(&r);
    s->cgroup = get_str(&r);
    s->gpu_dev_dir = get_str(&r);
    s->memory_mb = get_i64(&r);
    cpu_bits = get_i64(&r);
    memcpy(&s->cpu, &cpu_bits, sizeof(s->cpu));
    s->shm_mb = get_i64(&r);
    s->log_max_bytes = get_i64(&r);
    s->isolate = get_i64(&r) != 0;
    s->uid = (uid_t)get_i64(&r);
    s->gid = (gid_t)get_i64(&r);
    k->env = get_strv(&r);
    s->env = k->env;
    uint32_t ng = get_u32(&r);
    if (r.bad || ng > (r.n - r.off) / sizeof(int64_t))
        return false;
    k->gpus = xcalloc(ng + 1, sizeof(int));
    for (uint32_t i = 0; i < ng; i++)
        k->gpus[i] = (int)get_i64(&r);
    s->gpus = k->gpus;
    s->n_gpus = ng;
    s->own_devices = get_i64(&r) != 0;
    k->fence = get_strn(&r, &s->n_fence);
    s->fence = (const char *const *)k->fence;
    uint32_t ngr = get_u32(&r);
    if (r.bad || ngr > (r.n - r.off) / sizeof(int64_t))
        return false;
    k->groups = xcalloc(ngr + 1, sizeof(gid_t));
    for (uint32_t i = 0; i < ngr; i++)
        k->groups[i] = (gid_t)get_i64(&r);
    s->groups = k->groups;
    s->n_groups = ngr;
    k->argv = get_strv(&r);
    return !r.bad && s->state_dir && s->cwd && s->log_prefix && s->command && k->argv &&
           k->argv[0] && s->name;
}

/* This monitor's emptied cgroups, reused by its next tasks (cgroup.h). */
static cg_pool_t *md_pool;

static void mt_free(mtask_t *k)
{
    if (k->out_r >= 0)
        close(k->out_r);
    if (k->err_r >= 0)
        close(k->err_r);
    if (k->m.record_fd > 0)
        close(k->m.record_fd);
    if (k->notify_w >= 0)
        close(k->notify_w); /* the agent's notify_fd hangs up */
    cg_pool_put(md_pool, k->m.cg, 0);
    mon_logs_close(&k->m);
    free(k->env);
    free(k->argv);
    free(k->fence);
    free(k->groups);
    free(k->gpus);
    free(k->msg);
    free(k);
}

/* The end of an attempt that never ran. */
static void mt_fail(mtask_t *k, int code, const char *msg)
{
    if (msg)
        mon_say(&k->m, msg);
    mon_write_exit(&k->m, "failed", code, 0, false);
    mt_free(k);
}

/* procs_gone: md_strays_none() said, before cg_oom's read, that nothing
 * of the reaped task is left (cgroup.h, cg_pool_put). */
static void mt_finish(mtask_t *k, bool procs_gone)
{
    bool oom = cg_oom(k->m.cg);
    /* a task without root could make no child cgroup */
    bool rootless = k->spec.isolate && k->spec.uid != 0;
    cg_pool_put(md_pool, k->m.cg,
                (procs_gone ? CG_PUT_PROCS_GONE : 0) | (rootless ? CG_PUT_NO_SUBDIRS : 0));
    /* or removed, with what is left in it */
    k->m.cg = NULL;
    int sig;
    int ec = mon_exit_code(&k->m, k->status, oom, &sig);
    mon_write_exit(&k->m, "exited", ec, sig, oom);
    mt_free(k);
}

typedef struct {
    mtask_t **v;
    size_t n, cap;
    char self[64]; /* "pid starttime" of this monitor */
    int children;  /* /proc/self/task/<pid>/children, -1: none (md_strays_none) */
} md_t;

/* ---- the proof that nothing of an ended task is left ---------------------
 *
 * The monitor is a child subreaper (PR_SET_CHILD_SUBREAPER): a process a
 * task leaves behind (its parent exited: double fork, daemon, setsid)
 * becomes the monitor's child, not init's, and stays on its list of
 * children, alive or a zombie, until the monitor reaps it.  Every process
 * of a task's cgroup descends from the task's first process (it joined the
 * cgroup before exec; only root moves a process between cgroups), so once
 * that process is reaped, each one left is the monitor's child or below
 * one that is: none left unless a child of the monitor is not the first
 * process of a running task.  That list is one pread of a procfs file kept
 * open, instead of a read of the cgroup's processes (v1: a pid list the
 * kernel builds, and a worker of its frees a second later, per task).
 * Any other child (a straggler, alive or not yet reaped; a process cloned
 * with CLONE_PARENT), a list that does not fit, or no such file: no proof,
 * and the pool reads cgroup.procs as before.  The monitor is single-threaded,
 * so its children are all its main thread's (the file is per thread). */

static void md_children_open(md_t *d)
{
    char p[64], self[32];
    ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
    d->children = -1;
    if (n <= 0 || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        return;
    self[n] = '\0';
    if (strtol(self, NULL, 10) != (long)getpid())
        return; /* a /proc of another pid namespace: its pids are not ours */
    snprintf(p, sizeof(p), "/proc/self/task/%d/children", (int)getpid());
    d->children = open(p, O_RDONLY | O_CLOEXEC);
}

static bool md_known_child(const md_t *d, long pid)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i]->m.child == pid && !d->v[i]->reaped)
            return true;
    return false;
}

/* True when every child of the monitor is the first process of a task it
 * has not reaped: no process is left of a task it has. */
static bool md_strays_none(const md_t *d)
{
    char buf[4096];
    if (d->children < 0)
        return false;
    ssize_t n = pread(d->children, buf, sizeof(buf) - 1, 0);
    if (n < 0 || n >= (ssize_t)sizeof(buf) - 1)
        return false; /* unreadable, or perhaps more than it holds */
    buf[n] = '\0';
    char *s = buf, *end;
    for (long pid; (pid = strtol(s, &end, 10)), end != s; s = end)
        if (!md_known_child(d, pid))
            return false;
    return true;
}

/* A line of the attempt's record, through its fd kept open (opened on the
 * first line; each line is one write, so appends stay whole). */
static void mt_record(mtask_t *k, const char *line)
{
    char p[1024];
    if (k->m.record_fd <= 0) {
        snprintf(p, sizeof(p), "%s/monitor", k->spec.state_dir);
        int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        k->m.record_fd = fd > 0 ? fd : 0;
    }
    if (k->m.record_fd <= 0 || !fs_write_all(k->m.record_fd, line, strlen(line)))
        rt_record_append(k->spec.state_dir, line);
}

/* Start one attempt (monitor.c's mon_main, without the prepare step:
 * process runtime only).  Takes msg, notify_w and record_fd (the agent's
 * fd of the record, open for appends; -1: none, the record is opened). */
static void md_start(md_t *d, char *msg, size_t len, int notify_w, int record_fd)
{
    char text[1200];
    int out_p[2], err_p[2];
    mtask_t *k = xcalloc(1, sizeof(*k));
    k->msg = msg;
    k->out_r = k->err_r = -1;
    k->notify_w = notify_w;
    k->m.notify_w = notify_w > 0 ? notify_w : 0;
    k->m.record_fd = record_fd > 0 ? record_fd : 0;
    if (record_fd == 0)
        close(record_fd);
    for (int i = 0; i < NLOGS; i++)
        k->m.logs[i].fd = -1;
    if (!mt_decode(k, len)) {
        mt_free(k); /* nowhere to write a result: the agent counts it lost */
        return;
    }
    k->m.ops = runtime_find("process");
    k->m.spec = &k->spec;
    k->m.share_command = true; /* one sealed memfd per text (cmdfd.c) */
    k->m.started_ms = time_wall_ms();
    snprintf(text, sizeof(text), "mon %s %u\n", d->self, k->key);
    mt_record(k, text);
    mon_logs_init(&k->m);
    const rt_spec_t *s = &k->spec;
    if (s->isolate && (chown(s->cwd, s->uid, s->gid) != 0 || chmod(s->cwd, 0700) != 0)) {
        mt_fail(k, EXIT_CONTAINER_START_UNKNOWN,
                "pai: cannot give the task its working directory\n");
        return;
    }
    if (s->cgroup && cg_version() != 0 &&
        cg_pool_get(md_pool, s->cgroup, s->memory_mb, s->cpu, &k->m.cg) != PAI_OK)
        mon_say(&k->m, "pai: warning: cannot create the task cgroup; limits not applied\n");
    if (k->m.cg && s->isolate)
        mon_fence_gpus(&k->m);
    if (pipe2(out_p, O_CLOEXEC) != 0) {
        mt_fail(k, EXIT_CONTAINER_START_UNKNOWN, NULL);
        return;
    }
    if (pipe2(err_p, O_CLOEXEC) != 0) {
        close(out_p[0]);
        close(out_p[1]);
        {
            mt_fail(k, EXIT_CONTAINER_START_UNKNOWN, NULL);
            return;
        }
    }
    k->out_r = out_p[0];
    k->err_r = err_p[0];
    k->m.child = mon_spawn_task(&k->m, k->argv, out_p[1], err_p[1]);
    close(out_p[1]);
    close(err_p[1]);
    if (k->m.child < 0) {
        mt_fail(k, EXIT_CONTAINER_START_UNKNOWN, NULL);
        return;
    }
    /* with the pooled cgroup it runs in (cgroup.h: not the attempt's name),
     * where the agent's metrics read its figures */
    if (k->m.cg && strlen(cg_rel(k->m.cg)) < 1024 && !strchr(cg_rel(k->m.cg), '\n'))
        snprintf(text, sizeof(text), "task %d %s\n", (int)k->m.child, cg_rel(k->m.cg));
    else
        snprintf(text, sizeof(text), "task %d\n", (int)k->m.child);
    mt_record(k, text);
    VEC_XRESERVE(d->v, d->cap, d->n + 1);
    d->v[d->n++] = k;
}

/* The spec of a start message: inline ('I', fds[0] the notify pipe) or
 * in the memfd fds[0] ('S', fds[1] the pipe; the memfd closed).  The
 * spec (malloc'ed) and its length; NULL when unreadable.  *notify_w is
 * the pipe's end (-1: none). */
static char *md_spec(const char *in, size_t n, int fds[2], size_t *len, int *notify_w)
{
    struct stat st;
    char *msg = NULL;
    *notify_w = -1;
    if (n > 1 && in[0] == 'I') {
        *notify_w = fds[0];
        *len = n - 1;
        msg = xmalloc(n - 1);
        memcpy(msg, in + 1, n - 1);
        if (fds[1] >= 0)
            close(fds[1]);
        return msg;
    }
    if (n == 1 && in[0] == 'S' && fds[0] >= 0 && fstat(fds[0], &st) == 0 && st.st_size > 0 &&
        (uint64_t)st.st_size <= MOND_MAX_MSG) {
        msg = xmalloc((size_t)st.st_size);
        *len = (size_t)st.st_size;
        if (pread(fds[0], msg, (size_t)st.st_size, 0) != st.st_size)
            FREE_NULL(&msg);
    }
    if (fds[0] >= 0)
        close(fds[0]);
    *notify_w = fds[1];
    return msg;
}

/* Read every queued start; false once the agent's end is closed. */
static bool md_recv(md_t *d, int ctl)
{
    static char *in; /* one message: its tag and an inline spec */
    if (!in)
        in = xmalloc(MOND_INLINE_MAX + 1);
    for (;;) {
        int fds[3] = {-1, -1, -1}; /* the spec's and the pipe's, the record's */
        size_t nfds = 0;
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(3 * sizeof(int))];
        } u;
        struct iovec iov = {in, MOND_INLINE_MAX + 1};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf)};
        ssize_t n = recvmsg(ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        if (n == 0)
            return false;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len >= CMSG_LEN(sizeof(int)) && c->cmsg_len <= CMSG_LEN(sizeof(fds))) {
                memcpy(fds, CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0));
                nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            }
        /* the record's fd, when sent: the last, past the spec's own */
        int record_fd = -1;
        if (n > 0 && nfds == (in[0] == 'I' ? 2u : 3u)) {
            record_fd = fds[nfds - 1];
            fds[nfds - 1] = -1;
        }
        size_t len = 0;
        int notify_w;
        char *msg =
            (mh.msg_flags & MSG_TRUNC) ? NULL : md_spec(in, (size_t)n, fds, &len, &notify_w);
        if (!msg && (mh.msg_flags & MSG_TRUNC)) {
            notify_w = -1;
            for (int i = 0; i < 3; i++)
                if (fds[i] >= 0)
                    close(fds[i]);
        }
        if (msg && notify_w >= 0) {
            md_start(d, msg, len, notify_w, record_fd);
        } else {
            free(msg);
            if (notify_w >= 0)
                close(notify_w);
            if (record_fd >= 0)
                close(record_fd);
        }
    }
}

static mtask_t *md_find_key(md_t *d, uint32_t key)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i]->key == key)
            return d->v[i];
    return NULL;
}

static void md_kill(mtask_t *k, bool force)
{
    if (!k->reaped)
        kill(-k->m.child, force ? SIGKILL : SIGTERM);
    if (force)
        cg_kill_all(k->m.cg);
}

static void md_signals(md_t *d, int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int sig = (int)si.ssi_signo;
        if (sig != MOND_SIG_TERM && sig != MOND_SIG_KILL)
            continue; /* SIGCHLD: the reap below; TERM, USR1, HUP: not ours to act on */
        mtask_t *k = md_find_key(d, (uint32_t)si.ssi_int);
        if (k)
            md_kill(k, sig == MOND_SIG_KILL);
    }
}

static void md_reap(md_t *d)
{
    int st;
    pid_t p;
    int64_t now = -1;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0)
        for (size_t i = 0; i < d->n; i++)
            if (d->v[i]->m.child == p && !d->v[i]->reaped) {
                d->v[i]->reaped = true;
                d->v[i]->status = st;
                now = now < 0 ? time_mono_ms() : now;
                d->v[i]->next_kill_ms = now + STRAGGLER_FIRST_MS;
            }
}

/* After the task ends, stragglers holding its pipes are killed (first
 * STRAGGLER_FIRST_MS after the reap, then every STRAGGLER_MS); a task
 * reaped with both pipes closed is finished.  Returns the poll timeout. */
static int md_settle(md_t *d)
{
    int64_t timeout = -1;
    int64_t now = time_mono_ms();
    for (size_t i = 0; i < d->n;) {
        mtask_t *k = d->v[i];
        bool open = k->out_r >= 0 || k->err_r >= 0;
        if (k->reaped && !open) {
            mt_finish(k, md_strays_none(d));
            d->v[i] = d->v[--d->n];
            continue;
        }
        if (k->reaped && now >= k->next_kill_ms) {
            cg_kill_all(k->m.cg);
            k->next_kill_ms = now + STRAGGLER_MS;
        }
        if (k->reaped && (timeout < 0 || k->next_kill_ms - now < timeout))
            timeout = k->next_kill_ms - now;
        i++;
    }
    return (int)timeout;
}

/* What the monitor takes from its signalfd (blocked from its fork on:
 * mon_fork): children, kill requests, and the TERM and USR1 that are not
 * its own to act on. */
static void md_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, MOND_SIG_TERM);
    sigaddset(set, MOND_SIG_KILL);
}

static void md_loop(int ctl)
{
    md_t d = {0};
    sigset_t set;
    struct pollfd *pf = NULL;
    size_t pfcap = 0;
    snprintf(d.self, sizeof(d.self), "%d %llu", (int)getpid(),
             (unsigned long long)proc_start_time(getpid()));
    md_sigset(&set);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0)
        _exit(1);
    md_pool = cg_pool_new();
    md_children_open(&d);
    int timeout = -1;
    while (ctl >= 0 || d.n > 0) {
        size_t n0 = d.n, np = 0;
        VEC_XRESERVE(pf, pfcap, 2 + 2 * n0);
        pf[np++] = (struct pollfd){ctl, POLLIN, 0};
        pf[np++] = (struct pollfd){sfd, POLLIN, 0};
        for (size_t i = 0; i < n0; i++) {
            pf[np++] = (struct pollfd){d.v[i]->out_r, POLLIN, 0};
            pf[np++] = (struct pollfd){d.v[i]->err_r, POLLIN, 0};
        }
        if (poll(pf, np, timeout) < 0 && errno != EINTR)
            break;
        for (size_t i = 0; i < n0; i++) {
            mtask_t *k = d.v[i];
            int *fd[2] = {&k->out_r, &k->err_r};
            for (int j = 0; j < 2; j++)
                if (*fd[j] >= 0 && pf[2 + 2 * i + j].revents &&
                    !mon_pump(&k->m, *fd[j], j == 0 ? LOG_OUT : LOG_ERR)) {
                    close(*fd[j]);
                    *fd[j] = -1;
                }
        }
        /* starts before kills: a kill is sent after its start was queued */
        if (ctl >= 0 && pf[0].revents && !md_recv(&d, ctl)) {
            close(ctl);
            ctl = -1;
        }
        /* a child's end is a SIGCHLD in the signalfd: reaped only then,
         * not at every turn (a start, a pipe's data) */
        if (pf[1].revents) {
            md_signals(&d, sfd);
            md_reap(&d);
        }
        timeout = md_settle(&d);
    }
    cg_pool_free(md_pool); /* its idle cgroups go with it */
    _exit(0);
}

/* ---- the agent's side ----------------------------------------------------- */

/* A few monitors per agent (RT_MONITORS), used in turn: a task's start
 * waits (wall time, no CPU) for its move into its cgroup, which waits for
 * an RCU grace period of the kernel's; a single monitor would serialise
 * those waits (bench-e2e dispatch p99 126-138 ms against 46-78 with two).
 * Each monitor more wakes for fewer events at a time: two instead of four
 * cut the monitors' own CPU from 0.31-0.35 to 0.28-0.29 ms per job. */
#define MOND_N RT_MONITORS

typedef struct {
    int fd; /* the socket to the monitor; -1 when none */
    pid_t pid;
    uint64_t start;
} mc_t;

static mc_t mcs[MOND_N];
static bool mcs_ready;

static void mc_init(void)
{
    for (int i = 0; !mcs_ready && i < MOND_N; i++)
        mcs[i] = (mc_t){-1, 0, 0};
    mcs_ready = true;
}
static uint32_t mc_key;
static unsigned mc_next;

bool mond_enabled(void)
{
    const char *v = getenv("PAI_MONITOR");
    return !v || strcmp(v, "per-task") != 0;
}

static bool mc_spawn(mc_t *mc)
{
    int sv[2];
    sigset_t set;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return false;
    md_sigset(&set);
    fflush(NULL);
    pid_t pid = mon_fork(&set); /* a kill queued before md_loop is up waits for it */
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    if (pid == 0) {
        close(sv[0]);
        mon_detach(sv[1], &set); /* the socket becomes fd 3 */
        md_loop(3);
        _exit(0);
    }
    close(sv[1]);
    struct timeval tv = {5, 0}; /* a wedged monitor: per-attempt monitors instead */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    mc->fd = sv[0];
    mc->pid = pid;
    mc->start = proc_start_time(pid);
    return true;
}

/* Forget a monitor: it finishes what it holds and exits; reaped here
 * when already gone, else by monitor_poll (it is our child). */
static void mc_drop(mc_t *mc)
{
    if (mc->fd >= 0)
        close(mc->fd);
    mc->fd = -1;
    if (mc->pid > 0)
        waitpid(mc->pid, NULL, WNOHANG);
}

void mond_shutdown(void)
{
    mc_init();
    for (int i = 0; i < MOND_N; i++) {
        pid_t pid = mcs[i].fd >= 0 ? mcs[i].pid : 0;
        mc_drop(&mcs[i]);
        while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        mcs[i].pid = 0;
    }
}

/* One start message: the spec inline (spec != NULL: 'I', the notify
 * pipe's end) or in memfd ('S', memfd and the pipe's end); the record's fd
 * last when there is one (record_fd > 0). */
static bool mc_send(const mc_t *mc, const buf_t *spec, int memfd, int notify_w, int record_fd)
{
    char tag = spec ? 'I' : 'S';
    int fds[3] = {spec ? notify_w : memfd, spec ? record_fd : notify_w, record_fd};
    size_t nfds = (spec ? 1 : 2) + (record_fd > 0);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(fds))];
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov[2] = {{&tag, 1}, {spec ? spec->data : NULL, spec ? spec->len : 0}};
    struct msghdr mh = {.msg_iov = iov,
                        .msg_iovlen = spec ? 2 : 1,
                        .msg_control = u.buf,
                        .msg_controllen = CMSG_SPACE(nfds * sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    ssize_t want = 1 + (spec ? (ssize_t)spec->len : 0);
    return sendmsg(mc->fd, &mh, MSG_NOSIGNAL) == want;
}

pai_err_t mond_start(const runtime_ops_t *ops, const rt_spec_t *spec, char *const *argv,
                     rt_task_t *t)
{
    buf_t b;
    int np[2];
    uint32_t key = ++mc_key ? mc_key : ++mc_key; /* never 0: 0 is "per-attempt monitor" */
    mc_init();
    mc_t *mc = &mcs[mc_next++ % MOND_N];
    buf_init(&b, MOND_MAX_MSG);
    bool ok = encode(&b, key, spec, argv), inline_spec = ok && b.len <= MOND_INLINE_MAX;
    int mfd = -1;
    if (ok && !inline_spec) { /* a large one: in a memfd */
        mfd = memfd_create("pai-spec", MFD_CLOEXEC);
        ok = mfd >= 0 && fs_write_all(mfd, b.data, b.len);
    }
    /* non-blocking: the agent reads the exit line when the pipe fires
     * (monitor_poll), the monitor writes one line into it */
    if (!ok || pipe2(np, O_CLOEXEC | O_NONBLOCK) != 0) {
        if (mfd >= 0)
            close(mfd);
        buf_free(&b);
        return PAI_E_IO;
    }
    ok = false;
    for (int i = 0; i < 2 && !ok; i++) {
        if (mc->fd < 0 && !mc_spawn(mc))
            break;
        ok = mc_send(mc, inline_spec ? &b : NULL, mfd, np[1], spec->record_fd);
        if (!ok)
            mc_drop(mc); /* gone or wedged: a new one */
    }
    buf_free(&b);
    if (mfd >= 0)
        close(mfd);
    close(np[1]);
    if (!ok) {
        close(np[0]);
        return PAI_E_IO;
    }
    (void)ops;
    memset(t, 0, sizeof(*t));
    t->monitor_pid = mc->pid;
    t->monitor_start = mc->start;
    t->mon_key = key;
    t->notify_fd = np[0];
    t->state_dir = xstrdup(spec->state_dir);
    t->name = xstrdup(spec->name);
    t->started_ms = time_wall_ms();
    return PAI_OK;
}
