/*
 * mond_agent.c - the agent's side of its per-agent monitors (mond.c): the
 * starts it sends them, and the ends they tell it (mond_int.h has the
 * messages).
 *
 * An attempt of theirs has no fd of its own (rt_task_t.notify_fd -1): the
 * agent's loop watches each monitor's socket once (rt_watch_fds), reads
 * every exit line that came on it in one call (rt_watch_drain) and keeps
 * them here, each under its monitor's generation and the attempt's key,
 * until the attempt's poll takes it (mond_poll, no system call).  A
 * monitor's generation (rt_task_t.mon_gen) names one fork of it: a socket
 * closed and a new monitor forked in its slot is a new generation, so an
 * attempt never waits on a socket that is not its monitor's.
 *
 * The socket's end (EOF: the monitor died) is the end of each of its
 * attempts: their poll reads the record and finds the exit line there (it
 * is written before it is sent), or finds them lost, at once.  A monitor
 * the agent drops (a start it could not send: wedged) goes on running its
 * attempts; they are polled as an adopted attempt is (their record and
 * the monitor's pid, every ADOPTED_POLL_MS in the agent).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/util.h"
#include "common/vec.h"
#include "runtime/mond_int.h"
#include "runtime/monitor_int.h"

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
static bool encode(buf_t *b, const rt_spec_t *s, char *const *argv)
{
    int64_t cpu_bits;
    memcpy(&cpu_bits, &s->cpu, sizeof(cpu_bits));
    bool ok = put_u32(b, MOND_MAGIC) && put_str(b, s->attempt_id) && put_str(b, s->name) &&
              put_str(b, s->command) && put_str(b, s->state_dir) && put_str(b, s->cwd) &&
              put_str(b, s->log_prefix) && put_str(b, s->cgroup) && put_str(b, s->gpu_dev_dir) &&
              put_i64(b, s->memory_mb) && put_i64(b, cpu_bits) && put_i64(b, s->shm_mb) &&
              put_i64(b, s->log_max_bytes) && put_i64(b, s->isolate) && put_i64(b, s->uid) &&
              put_i64(b, s->gid) && put_strv(b, s->env) && put_u32(b, (uint32_t)s->n_gpus);
    for (size_t i = 0; ok && i < s->n_gpus; i++)
        ok = put_i64(b, s->gpus[i]);
    ok = ok && put_i64(b, s->own_devices) && put_strn(b, s->fence, s->n_fence) &&
         put_u32(b, (uint32_t)s->n_groups);
    for (size_t i = 0; ok && i < s->n_groups; i++)
        ok = put_i64(b, s->groups[i]);
    return ok && put_strv(b, argv);
}

/* ---- the monitors ---------------------------------------------------------- */

/* RT_MONITORS monitors per agent, used in turn.  A task's start holds its
 * monitor (wall time, no CPU) until the task's exec, through its move into
 * its cgroup, which may wait for an RCU grace period of the kernel's; one
 * monitor serialises those waits (bench-e2e's burst: dispatch p99 ~80 ms
 * against ~40 with two), but each monitor more wakes for fewer events at a
 * time: two instead of four cut the monitors' own CPU from 0.31-0.35 to
 * 0.28-0.29 ms a job, one instead of two pai's CPU by ~5% (fewer syncs and
 * commits a job too: docs/benchmarks.md, "One monitor per agent"). */
#define MOND_N RT_MONITORS

typedef struct {
    int fd; /* the socket to the monitor; -1 when none */
    pid_t pid;
    uint64_t start;
    uint32_t gen; /* this fork of it (rt_task_t.mon_gen) */
} mc_t;

static mc_t mcs[MOND_N];
static bool mcs_ready;
static uint32_t mc_key, mc_gen;
static unsigned mc_next;

static void mc_init(void)
{
    for (int i = 0; !mcs_ready && i < MOND_N; i++)
        mcs[i] = (mc_t){-1, 0, 0, 0};
    mcs_ready = true;
}

/* The connected monitor of generation gen; NULL when there is none. */
static mc_t *mc_of_gen(uint32_t gen)
{
    for (int i = 0; gen && mcs_ready && i < MOND_N; i++)
        if (mcs[i].gen == gen && mcs[i].fd >= 0)
            return &mcs[i];
    return NULL;
}

/* ---- the ends they told ----------------------------------------------------- */

typedef struct {
    uint32_t gen, key;
    bool lost; /* "KEY lost": the monitor could not read the start */
    rt_result_t res;
} mres_t;

/* Ends told and not yet taken by their attempt's poll: a handful (the
 * attempts that ended since the caller's last turn). */
static mres_t *mres;
static size_t nmres, mres_cap;

/* Generations whose socket ended (the monitor died): their attempts are
 * known to be over, not merely unwatched (the last few; an older one's
 * attempts are polled as adopted ones, which finds the same). */
#define GONE_N 16
static uint32_t gone[GONE_N];
static unsigned ngone;

static bool gen_gone(uint32_t gen)
{
    for (unsigned i = 0; i < GONE_N; i++)
        if (gone[i] == gen)
            return true;
    return false;
}

static mres_t *mres_find(uint32_t gen, uint32_t key)
{
    for (size_t i = 0; i < nmres; i++)
        if (mres[i].gen == gen && mres[i].key == key)
            return &mres[i];
    return NULL;
}

static void mres_drop(mres_t *r)
{
    *r = mres[--nmres];
}

/* The lines of one message: "KEY exit FIELDS" or "KEY lost" each. */
static void mc_lines(const mc_t *mc, char *s)
{
    for (char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        *nl = '\0';
        char *end;
        unsigned long key = strtoul(s, &end, 10);
        mres_t r = {.gen = mc->gen, .key = (uint32_t)key};
        if (end == s || key == 0 || key > UINT32_MAX)
            continue;
        if (strcmp(end, " lost") == 0)
            r.lost = true;
        else if (strncmp(end, " exit ", 6) != 0 || !rt_exit_parse(end + 6, &r.res))
            continue;
        VEC_XRESERVE(mres, mres_cap, nmres + 1);
        mres[nmres++] = r;
    }
}

/* Read every message queued on mc's socket (one recvmmsg for up to
 * DRAIN_MSGS of them); false when it ended (the monitor is gone). */
#define DRAIN_MSGS 4
static bool mc_drain(const mc_t *mc)
{
    static char bufs[DRAIN_MSGS][MOND_EXITS_MAX + 1];
    struct mmsghdr mm[DRAIN_MSGS];
    struct iovec iov[DRAIN_MSGS];
    for (;;) {
        memset(mm, 0, sizeof(mm));
        for (int i = 0; i < DRAIN_MSGS; i++) {
            iov[i] = (struct iovec){bufs[i], MOND_EXITS_MAX};
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(mc->fd, mm, DRAIN_MSGS, MSG_DONTWAIT, NULL);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        for (int i = 0; i < n; i++) {
            if (mm[i].msg_len == 0)
                return false; /* its end: what came before it is read */
            bufs[i][mm[i].msg_len] = '\0';
            mc_lines(mc, bufs[i]);
        }
        if (n < DRAIN_MSGS)
            return true;
    }
}

/* Forget a monitor: it finishes what it holds and exits; reaped here when
 * already gone, else by the caller's reap (it is our child).  What it sent
 * is read first.  dead: it is known to be gone (its socket ended, a send
 * found it closed), and so are its attempts. */
static void mc_drop(mc_t *mc, bool dead)
{
    if (mc->fd >= 0 && !mc_drain(mc))
        dead = true;
    if (mc->fd >= 0)
        close(mc->fd);
    mc->fd = -1;
    if (dead)
        gone[ngone++ % GONE_N] = mc->gen;
    if (mc->pid > 0)
        waitpid(mc->pid, NULL, WNOHANG);
}

int rt_notify_fd(const rt_task_t *t)
{
    if (t->notify_fd >= 0 || !t->mon_gen)
        return t->notify_fd;
    const mc_t *mc = mc_of_gen(t->mon_gen);
    return mc ? mc->fd : -1;
}

size_t rt_watch_fds(int *fds, size_t cap)
{
    size_t k = 0;
    for (int i = 0; mcs_ready && i < MOND_N && k < cap; i++)
        if (mcs[i].fd >= 0)
            fds[k++] = mcs[i].fd;
    return k;
}

bool rt_watch_drain(int fd)
{
    for (int i = 0; fd >= 0 && mcs_ready && i < MOND_N; i++)
        if (mcs[i].fd == fd) {
            if (!mc_drain(&mcs[i]))
                mc_drop(&mcs[i], true);
            return true;
        }
    return false;
}

bool rt_task_news(const rt_task_t *t)
{
    return t->mon_gen && t->notify_fd < 0 &&
           (mres_find(t->mon_gen, t->mon_key) || !mc_of_gen(t->mon_gen));
}

bool mond_poll(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res)
{
    if (!t->mon_gen || t->notify_fd >= 0)
        return monitor_poll(ops, t, res);
    mc_t *mc = mc_of_gen(t->mon_gen);
    mres_t *r = mres_find(t->mon_gen, t->mon_key);
    if (!r && mc) { /* a caller that waits on rt_notify_fd without a drain */
        if (!mc_drain(mc))
            mc_drop(mc, true);
        mc = mc_of_gen(t->mon_gen);
        r = mres_find(t->mon_gen, t->mon_key);
        if (!r && mc)
            return false;
    }
    if (r && !r->lost) {
        *res = r->res;
        mres_drop(r);
        t->mon_gen = 0;
        return true;
    }
    /* Lost to its monitor (r), or its monitor died (gone) or was dropped:
     * from here on polled as an adopted attempt is, from its record and
     * the monitor's pid, with the monitor known gone when it is (its start
     * time cleared: monitor_poll takes it for dead, and reads the record
     * for the exit line before it counts the attempt lost). */
    if (r || gen_gone(t->mon_gen))
        t->monitor_start = 0;
    if (r)
        mres_drop(r);
    t->mon_gen = 0;
    return monitor_poll(ops, t, res);
}

void mond_release(rt_task_t *t)
{
    mres_t *r = t->mon_gen ? mres_find(t->mon_gen, t->mon_key) : NULL;
    if (r)
        mres_drop(r);
    t->mon_gen = 0;
    monitor_release(t);
}

/* ---- the starts --------------------------------------------------------------- */

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
    }
    close(sv[1]);
    struct timeval tv = {5, 0}; /* a wedged monitor: per-attempt monitors instead */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    mc->fd = sv[0];
    mc->pid = pid;
    mc->start = proc_start_time(pid);
    mc->gen = ++mc_gen ? mc_gen : ++mc_gen; /* never 0: 0 is "no monitor's socket" */
    return true;
}

void mond_shutdown(void)
{
    mc_init();
    for (int i = 0; i < MOND_N; i++) {
        pid_t pid = mcs[i].fd >= 0 ? mcs[i].pid : 0;
        mc_drop(&mcs[i], false);
        while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        mcs[i].pid = 0;
    }
}

/* One start message: the tag, the key, and the spec inline (spec != NULL:
 * 'I') or in memfd ('S'); the record's fd last when there is one
 * (record_fd > 0). */
static bool mc_send(const mc_t *mc, uint32_t key, const buf_t *spec, int memfd, int record_fd)
{
    char tag = spec ? 'I' : 'S';
    int fds[2] = {spec ? record_fd : memfd, record_fd};
    size_t nfds = (spec ? 0 : 1) + (record_fd > 0);
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(fds))];
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov[3] = {
        {&tag, 1}, {&key, sizeof(key)}, {spec ? spec->data : NULL, spec ? spec->len : 0}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = spec ? 3 : 2};
    if (nfds > 0) {
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t want = 1 + (ssize_t)sizeof(key) + (spec ? (ssize_t)spec->len : 0);
    return sendmsg(mc->fd, &mh, MSG_NOSIGNAL) == want;
}

void mond_warm(const char *cgroup_dir, unsigned slots)
{
    mc_init();
    size_t len = strlen(cgroup_dir);
    if (len == 0 || len >= 512)
        return;
    uint32_t each = (slots + MOND_N - 1) / MOND_N;
    for (int i = 0; i < MOND_N; i++) {
        mc_t *mc = &mcs[i];
        if (mc->fd < 0 && !mc_spawn(mc))
            return;
        char tag = 'W';
        struct iovec iov[3] = {{&tag, 1}, {&each, sizeof(each)}, {(void *)cgroup_dir, len}};
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 3};
        if (sendmsg(mc->fd, &mh, MSG_NOSIGNAL) < 0)
            return; /* gone: the first start makes another (mond_start) */
    }
}

pai_err_t mond_start(const runtime_ops_t *ops, const rt_spec_t *spec, char *const *argv,
                     rt_task_t *t)
{
    buf_t b;
    uint32_t key = ++mc_key ? mc_key : ++mc_key; /* never 0: 0 is "per-attempt monitor" */
    mc_init();
    mc_t *mc = &mcs[mc_next++ % MOND_N];
    buf_init(&b, MOND_MAX_MSG);
    bool ok = encode(&b, spec, argv), inline_spec = ok && b.len <= MOND_INLINE_MAX;
    int mfd = -1;
    if (ok && !inline_spec) { /* a large one: in a memfd */
        mfd = memfd_create("pai-spec", MFD_CLOEXEC);
        ok = mfd >= 0 && fs_write_all(mfd, b.data, b.len);
    }
    if (!ok) {
        if (mfd >= 0)
            close(mfd);
        buf_free(&b);
        return PAI_E_IO;
    }
    ok = false;
    for (int i = 0; i < 2 && !ok; i++) {
        if (mc->fd < 0 && !mc_spawn(mc))
            break;
        ok = mc_send(mc, key, inline_spec ? &b : NULL, mfd, spec->record_fd);
        if (!ok) /* gone (its end: its attempts too) or wedged: a new one */
            mc_drop(mc, errno == EPIPE || errno == ECONNRESET);
    }
    buf_free(&b);
    if (mfd >= 0)
        close(mfd);
    if (!ok)
        return PAI_E_IO;
    (void)ops;
    memset(t, 0, sizeof(*t));
    t->monitor_pid = mc->pid;
    t->monitor_start = mc->start;
    t->mon_key = key;
    t->mon_gen = mc->gen;
    t->notify_fd = -1; /* its end comes on the monitor's socket: rt_notify_fd */
    t->state_dir = xstrdup(spec->state_dir);
    t->name = xstrdup(spec->name);
    t->started_ms = time_wall_ms();
    return PAI_OK;
}
