/*
 * mond.c - the per-agent monitor: one long-lived process that starts,
 * watches and reaps every process-runtime attempt of one agent process,
 * instead of a fork of the agent per attempt (runtime.h's design; the
 * files and their invariants are the same).
 *
 * The agent forks it at its start (mond_warm; else on its first process
 * attempt, or when the one it had is gone) and talks to it over a
 * SOCK_SEQPACKET socketpair (mond_int.h has its messages; the agent's side
 * is mond_agent.c).  A start is one message: 'I', the attempt's key and
 * the spec (length-prefixed fields; the command is in it, so it is on no
 * command line and in no file) when the spec takes at most
 * MOND_INLINE_MAX bytes; else 'S' and the key with a memfd holding the
 * spec (a memfd, a write and a close more per start, and the monitor's
 * read of it).  An attempt's end goes back on the same socket: its exit
 * line, after the record's (runtime.h), with the other ends of the same
 * turn of the loop in one message; no fd per attempt for it.
 *
 * Procedure in the monitor, for each start (monitor.c's steps 2-7, run
 * from one event loop instead of one process each):
 *   1. "mon pid starttime key" appended to the record <state>/monitor (its
 *      own pid and start time, and the attempt's key: what adopt() and
 *      kill() need), before anything of the task is made;
 *   2. working dir given to the task's identity, cgroup with the limits,
 *      GPU fence, pipes; the task started by a vfork-style clone
 *      (mon_spawn_task, no copy of the monitor) in its own process group;
 *      "task PID CGROUP" appended to the record (the pooled cgroup keeps
 *      its own name: cgroup.h);
 *   3. the loop pumps every task's pipes into its logs, reaps with
 *      waitpid(-1) on SIGCHLD (signalfd), then lets go of the pipes' write
 *      ends it held (so the task's exit wakes it once, not once more per
 *      pipe), kills stragglers of a reaped task that hold its pipes, then hands the cgroup back to
 * the monitor's pool (cgroup.h: kept when empty, for the next task of the same node; removed with
 * what is left in it otherwise; empty told from the monitor's own children: md_strays_none), writes
 * the exit line into the record, and sends it to the agent. Kill requests are queued real-time
 * signals carrying the key (sigqueue: MOND_SIG_TERM graceful, MOND_SIG_KILL forced; blocked from
 * the monitor's fork on, so one sent before its loop is up is not its death by their default action
 * but waits in its signalfd), so a restarted agent can stop the attempts of its predecessor's
 * monitor from the monitor record alone; a key the monitor does not hold (an attempt already reaped
 * and gone) is ignored, so a kill never reaches a reused pid. The monitor outlives its agent (kill
 * -9 included): when the socket closes it finishes the attempts it holds (their exit lines in their
 * records only) and exits.  The next agent
 * re-adopts them from their files and forks its own monitor.
 * A monitor that dies loses its attempts (the agent sees its socket's
 * end: reported lost, as when a per-attempt monitor dies, unless the
 * record has the exit line), and a start sent while it was dying with
 * them; the next start finds its socket closed and forks a new one.  A
 * start the monitor cannot read (its key known, the rest not) is told
 * back as "KEY lost": the agent finds that attempt lost the same way.
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
#include "runtime/mond_int.h"
#include "runtime/monitor_int.h"

#define STRAGGLER_MS 100
/* A task reaped while its pipes are still open: the first look for
 * stragglers waits this long, in which the pipes' end usually arrives (a
 * walk of the cgroup and a read of its processes per task otherwise). */
#define STRAGGLER_FIRST_MS 20

/* ---- the start message, as the monitor reads it -------------------------- */

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
    int out_r, err_r;
    /* the pipes' write ends, held until the task is reaped (md_reap): the
     * task's exit then closes no last writer, so it wakes the monitor once
     * (its SIGCHLD), not once more per pipe */
    int out_w, err_w;
    char exit_line[MON_EXIT_LINE_MAX]; /* m.exit_line: what the record got */
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

/* The task is reaped: the monitor's write ends go, so its pipes end as
 * soon as no straggler holds them (the next poll sees them hung up). */
static void mt_drop_writers(mtask_t *k)
{
    if (k->out_w >= 0)
        close(k->out_w);
    if (k->err_w >= 0)
        close(k->err_w);
    k->out_w = k->err_w = -1;
}

static void mt_free(mtask_t *k)
{
    if (k->out_r >= 0)
        close(k->out_r);
    if (k->err_r >= 0)
        close(k->err_r);
    mt_drop_writers(k);
    if (k->m.record_fd > 0)
        close(k->m.record_fd);
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

typedef struct {
    mtask_t **v;
    size_t n, cap;
    char self[64]; /* "pid starttime" of this monitor */
    int children;  /* /proc/self/task/<pid>/children, -1: none (md_strays_none) */
    int ctl;       /* the socket to the agent; -1 once the agent's end is closed */
    /* exit lines told this turn, sent at its end (md_flush); blocked: the
     * socket was full, the rest waits for POLLOUT */
    buf_t out;
    bool out_blocked;
} md_t;

/* The agent is told an attempt's end: "KEY " and the exit line its record
 * got (line NULL: "KEY lost", a start that could not be read), with the
 * other ends of this turn (md_flush).  No agent: the record has it. */
static void md_tell(md_t *d, uint32_t key, const char *line)
{
    if (d->ctl >= 0 && buf_printf(&d->out, "%u %s", key, line ? line : "lost\n") != PAI_OK)
        buf_reset(&d->out); /* 64 MiB of lines unread: the agent is wedged (and dropped us) */
}

/* Send what md_tell queued: whole lines, at most MOND_EXITS_MAX bytes a
 * message (one send for a turn's ends); what the socket cannot take now
 * waits for POLLOUT (the agent stopped reading: the loop goes on). */
static void md_flush(md_t *d)
{
    size_t off = 0;
    d->out_blocked = false;
    while (d->ctl >= 0 && off < d->out.len) {
        size_t n = d->out.len - off;
        if (n > MOND_EXITS_MAX)
            for (n = MOND_EXITS_MAX; n > 1 && d->out.data[off + n - 1] != '\n';)
                n--;
        ssize_t w = send(d->ctl, d->out.data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            d->out_blocked = true;
            break;
        }
        off = w < 0 ? d->out.len : off + n; /* an error: the agent is gone */
    }
    if (off >= d->out.len) {
        buf_reset(&d->out);
    } else if (off > 0) {
        memmove(d->out.data, d->out.data + off, d->out.len - off + 1); /* and its NUL */
        d->out.len -= off;
    }
}

/* The end of an attempt that never ran. */
static void mt_fail(md_t *d, mtask_t *k, int code, const char *msg)
{
    if (msg)
        mon_say(&k->m, msg);
    mon_write_exit(&k->m, "failed", code, 0, false);
    md_tell(d, k->key, k->exit_line);
    mt_free(k);
}

/* procs_gone: md_strays_none() said, before cg_oom's read, that nothing
 * of the reaped task is left (cgroup.h, cg_pool_put). */
static void mt_finish(md_t *d, mtask_t *k, bool procs_gone)
{
    bool oom = cg_oom(k->m.cg);
    /* a task without root could make no child cgroup */
    bool rootless = k->spec.isolate && k->spec.uid != 0;
    cg_pool_put(md_pool, k->m.cg,
                (procs_gone ? CG_PUT_PROCS_GONE : 0) | (rootless ? CG_PUT_NO_SUBDIRS : 0));
    /* or removed, with what is left in it */
    k->m.cg = NULL;
    rt_ssh_tmp_clean(&k->spec, k->m.child, NULL); /* a task with the ssh plugin killed outright */
    int sig;
    int ec = mon_exit_code(&k->m, k->status, oom, &sig);
    mon_write_exit(&k->m, "exited", ec, sig, oom);
    md_tell(d, k->key, k->exit_line);
    mt_free(k);
}

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
 * process runtime only).  Takes msg and record_fd (the agent's fd of the
 * record, open for appends; -1: none, the record is opened). */
static void md_start(md_t *d, uint32_t key, char *msg, size_t len, int record_fd)
{
    char text[1200];
    int out_p[2], err_p[2];
    mtask_t *k = xcalloc(1, sizeof(*k));
    k->msg = msg;
    k->key = key;
    k->out_r = k->err_r = k->out_w = k->err_w = -1;
    k->m.exit_line = k->exit_line;
    k->m.record_fd = record_fd > 0 ? record_fd : 0;
    if (record_fd == 0)
        close(record_fd);
    for (int i = 0; i < NLOGS; i++)
        k->m.logs[i].fd = -1;
    if (!mt_decode(k, len)) {
        md_tell(d, key, NULL); /* nowhere to write a result: the agent counts it lost */
        mt_free(k);
        return;
    }
    k->m.ops = runtime_find("process");
    k->m.spec = &k->spec;
    k->m.share_command = true; /* one sealed memfd per text (cmdfd.c) */
    k->m.started_ms = time_wall_ms();
    /* before anything of the task exists: an agent that restarts from
     * here on finds the monitor in the record and adopts the attempt */
    snprintf(text, sizeof(text), "mon %s %u\n", d->self, k->key);
    mt_record(k, text);
    mon_logs_init(&k->m);
    const rt_spec_t *s = &k->spec;
    if (s->isolate && !mon_give_cwd(s)) {
        mt_fail(d, k, EXIT_CONTAINER_START_UNKNOWN,
                "pai: cannot give the task its working directory\n");
        return;
    }
    if (s->cgroup && cg_version() != 0 &&
        cg_pool_get(md_pool, s->cgroup, s->memory_mb, s->cpu, &k->m.cg) != PAI_OK)
        mon_say(&k->m, "pai: warning: cannot create the task cgroup; limits not applied\n");
    if (k->m.cg && s->isolate)
        mon_fence_gpus(&k->m);
    if (pipe2(out_p, O_CLOEXEC) != 0) {
        mt_fail(d, k, EXIT_CONTAINER_START_UNKNOWN, NULL);
        return;
    }
    if (pipe2(err_p, O_CLOEXEC) != 0) {
        close(out_p[0]);
        close(out_p[1]);
        {
            mt_fail(d, k, EXIT_CONTAINER_START_UNKNOWN, NULL);
            return;
        }
    }
    k->out_r = out_p[0];
    k->err_r = err_p[0];
    k->out_w = out_p[1];
    k->err_w = err_p[1];
    k->m.child = mon_spawn_task(&k->m, k->argv, out_p[1], err_p[1]);
    if (k->m.child < 0) {
        mt_fail(d, k, EXIT_CONTAINER_START_UNKNOWN, NULL);
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

/* The spec of a start message (the tag and key skipped: in, n): inline
 * ('I') or in the memfd fd ('S'; closed).  The spec (malloc'ed) and its
 * length; NULL when unreadable. */
static char *md_spec(char tag, const char *in, size_t n, int fd, size_t *len)
{
    struct stat st;
    char *msg = NULL;
    if (tag == 'I' && n > 0) {
        *len = n;
        msg = xmalloc(n);
        memcpy(msg, in, n);
    } else if (tag == 'S' && n == 0 && fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 &&
               (uint64_t)st.st_size <= MOND_MAX_MSG) {
        msg = xmalloc((size_t)st.st_size);
        *len = (size_t)st.st_size;
        if (pread(fd, msg, (size_t)st.st_size, 0) != st.st_size)
            FREE_NULL(&msg);
    }
    if (tag == 'S' && fd >= 0)
        close(fd);
    return msg;
}

/* A warm message: count idle cgroups under the rel dir (len bytes, no
 * NUL), ahead of the agent's first attempts (mond_warm).  No answer. */
static void md_warm(uint32_t count, const char *dir, size_t len, const int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    char rel[512];
    if (len == 0 || len >= sizeof(rel) || memchr(dir, '\0', len))
        return;
    memcpy(rel, dir, len);
    rel[len] = '\0';
    (void)cg_pool_warm(md_pool, rel, count);
}

/* One start message (in, n bytes; its header mh, with its fds). */
static void md_one(md_t *d, const char *in, size_t n, const struct msghdr *mh)
{
    const size_t head = 1 + sizeof(uint32_t);
    int fds[2] = {-1, -1}; /* the spec's memfd ('S'), the record's */
    size_t nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR((struct msghdr *)mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len >= CMSG_LEN(sizeof(int)) && c->cmsg_len <= CMSG_LEN(sizeof(fds))) {
            memcpy(fds, CMSG_DATA(c), c->cmsg_len - CMSG_LEN(0));
            nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        }
    char tag = in[0];
    uint32_t key = 0;
    if (n >= head)
        memcpy(&key, in + 1, sizeof(key));
    /* the record's fd, when sent: the last, past the spec's memfd */
    int spec_fd = tag == 'S' && nfds > 0 ? fds[0] : -1;
    int record_fd = nfds == (tag == 'S' ? 2u : 1u) ? fds[nfds - 1] : -1;
    for (size_t i = 0; i < nfds; i++)
        if (fds[i] != spec_fd && fds[i] != record_fd)
            close(fds[i]);
    if (tag == 'W') { /* no attempt: idle cgroups ahead of the first ones */
        md_warm(key, in + head, n >= head ? n - head : 0, fds, nfds);
        return;
    }
    size_t len = 0;
    char *msg = NULL;
    if (!(mh->msg_flags & MSG_TRUNC) && n >= head)
        msg = md_spec(tag, in + head, n - head, spec_fd, &len);
    else if (spec_fd >= 0)
        close(spec_fd);
    if (msg) {
        md_start(d, key, msg, len, record_fd);
    } else {
        if (record_fd >= 0)
            close(record_fd);
        if (key)
            md_tell(d, key, NULL);
    }
}

/* Read every queued start, up to RECV_MSGS in one recvmmsg (the call
 * that finds the socket empty is saved when fewer are queued); false once
 * the agent's end is closed. */
#define RECV_MSGS 4
static bool md_recv(md_t *d)
{
    static char *in[RECV_MSGS]; /* a message each: its tag, the key and an inline spec */
    const size_t size = 1 + sizeof(uint32_t) + MOND_INLINE_MAX;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u[RECV_MSGS];
    struct iovec iov[RECV_MSGS];
    struct mmsghdr mm[RECV_MSGS];
    for (;;) {
        memset(mm, 0, sizeof(mm));
        for (int i = 0; i < RECV_MSGS; i++) {
            if (!in[i])
                in[i] = xmalloc(size);
            iov[i] = (struct iovec){in[i], size};
            mm[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i],
                                            .msg_iovlen = 1,
                                            .msg_control = u[i].buf,
                                            .msg_controllen = sizeof(u[i].buf)};
        }
        int got = recvmmsg(d->ctl, mm, RECV_MSGS, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, NULL);
        if (got < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        for (int i = 0; i < got; i++) {
            if (mm[i].msg_len == 0)
                return false; /* the agent's end: what came before it is started */
            md_one(d, in[i], mm[i].msg_len, &mm[i].msg_hdr);
        }
        if (got < RECV_MSGS)
            return true;
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

/* Every queued signal, up to 8 a read (a read that does not fill the
 * buffer took them all: no read of an empty signalfd per SIGCHLD). */
static void md_signals(md_t *d, int sfd)
{
    struct signalfd_siginfo si[8];
    ssize_t n;
    do {
        n = read(sfd, si, sizeof(si));
        for (ssize_t i = 0; i < n / (ssize_t)sizeof(si[0]); i++) {
            int sig = (int)si[i].ssi_signo;
            if (sig != MOND_SIG_TERM && sig != MOND_SIG_KILL)
                continue; /* SIGCHLD: the reap below; TERM, USR1, HUP: not ours to act on */
            mtask_t *k = md_find_key(d, (uint32_t)si[i].ssi_int);
            if (k)
                md_kill(k, sig == MOND_SIG_KILL);
        }
    } while (n == (ssize_t)sizeof(si));
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
                mt_drop_writers(d->v[i]);
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
            mt_finish(d, k, md_strays_none(d));
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
void md_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
    sigaddset(set, MOND_SIG_TERM);
    sigaddset(set, MOND_SIG_KILL);
}

_Noreturn void md_loop(int ctl)
{
    md_t d = {.ctl = ctl};
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
    buf_init(&d.out, MOND_MAX_MSG);
    int timeout = -1;
    while (d.ctl >= 0 || d.n > 0) {
        size_t n0 = d.n, np = 0;
        VEC_XRESERVE(pf, pfcap, 2 + 2 * n0);
        pf[np++] = (struct pollfd){d.ctl, (short)(POLLIN | (d.out_blocked ? POLLOUT : 0)), 0};
        pf[np++] = (struct pollfd){sfd, POLLIN, 0};
        for (size_t i = 0; i < n0; i++) {
            pf[np++] = (struct pollfd){d.v[i]->out_r, POLLIN, 0};
            pf[np++] = (struct pollfd){d.v[i]->err_r, POLLIN, 0};
        }
        if (poll(pf, np, timeout) < 0 && errno != EINTR)
            break;
        /* a hang-up alone is read too: pipe_poll reads the buffer and the
         * writers apart, unlocked, so data written just before the last
         * writer left may come with POLLHUP alone (the read finds it; the
         * next turn's read finds the end) */
        for (size_t i = 0; i < n0; i++) {
            mtask_t *k = d.v[i];
            int *fd[2] = {&k->out_r, &k->err_r};
            for (int j = 0; j < 2; j++) {
                if (*fd[j] >= 0 && pf[2 + 2 * i + j].revents &&
                    !mon_pump(&k->m, *fd[j], j == 0 ? LOG_OUT : LOG_ERR)) {
                    close(*fd[j]);
                    *fd[j] = -1;
                }
            }
        }
        /* starts before kills: a kill is sent after its start was queued */
        if (d.ctl >= 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) && !md_recv(&d)) {
            close(d.ctl);
            d.ctl = -1; /* the ends of what it holds: in their records only */
            buf_reset(&d.out);
        }
        /* a child's end is a SIGCHLD in the signalfd: reaped only then,
         * not at every turn (a start, a pipe's data) */
        if (pf[1].revents) {
            md_signals(&d, sfd);
            md_reap(&d);
        }
        timeout = md_settle(&d);
        /* this turn's ends, in one message (a full socket: once it has room) */
        if (d.out.len > 0 && (!d.out_blocked || (pf[0].revents & POLLOUT)))
            md_flush(&d);
    }
    cg_pool_free(md_pool); /* its idle cgroups go with it */
    _exit(0);
}
