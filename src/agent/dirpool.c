/*
 * dirpool.c - see dirpool.h.
 *
 * Emptying a slot is one procedure run with a budget: the put runs it
 * with DIRPOOL_INLINE (it stops at the first subdir or past the budget:
 * "deferred"), the worker without one.  It is idempotent, so the worker
 * simply runs it again from the start on a deferred entry.  The worker's
 * queue and its results are under w->mu; the ready list (ids) is the
 * loop's alone, fed from the results at each take.
 */
#include "agent/dirpool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/util.h"
#include "common/vec.h"
#include "runtime/runtime.h"

typedef struct {
    int id;
    bool keep; /* empty it for the pool; false: remove it */
} job_t;

struct dirpool_worker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* work queued, hold released or stop */
    pthread_cond_t idle; /* the queue ran empty */
    job_t *q;            /* queue: q[head..n) */
    size_t head, n, cap;
    int *done; /* emptied and kept, for the loop's ready list */
    size_t ndone, capdone;
    size_t dropped; /* deferred entries that were removed instead */
    bool busy, hold;
    atomic_bool stop; /* read by the removal between entries */
    char dir[1100];
};

typedef enum { CLEAN_OK, CLEAN_DEFER, CLEAN_FAIL } clean_t;

/* The worker thread allocates (fdopendir, closedir, its done list) while
 * the agent's loop forks monitors that go on running the agent's code: a
 * fork taken while the worker held an allocator lock left the monitor
 * waiting on that lock for ever (seen under ASan: a task started and never
 * run).  So the worker allocates only inside the gate, and a fork (any, by
 * pthread_atfork) waits for it: one call of the C library, never a whole
 * directory. */
static pthread_mutex_t fork_gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_gate_once = PTHREAD_ONCE_INIT;

static void gate_lock(void)
{
    pthread_mutex_lock(&fork_gate);
}

static void gate_unlock(void)
{
    pthread_mutex_unlock(&fork_gate);
}

static void gate_register(void)
{
    pthread_atfork(gate_lock, gate_unlock, gate_unlock);
}

static DIR *gated_fdopendir(int fd)
{
    gate_lock();
    DIR *d = fdopendir(fd);
    gate_unlock();
    return d;
}

static void gated_closedir(DIR *d)
{
    gate_lock();
    closedir(d);
    gate_unlock();
}

/* Remove at/name and everything under it; stops early once *stop. */
static void rm_at(int at, const char *name, int depth, atomic_bool *stop)
{
    if (atomic_load(stop) || unlinkat(at, name, 0) == 0 || errno != EISDIR || depth > 64)
        return;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? gated_fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while (!atomic_load(stop) && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rm_at(dirfd(d), e->d_name, depth + 1, stop);
    gated_closedir(d);
    unlinkat(at, name, AT_REMOVEDIR);
}

/* Remove entry e of dir fd: at once when it is a file and the budget
 * allows (budget NULL: no limit, and whole subtrees, through w). */
static clean_t drop(int fd, const struct dirent64 *e, int *budget, dirpool_worker_t *w)
{
    if (!budget) { /* the worker's: stopping ends the whole emptying */
        rm_at(fd, e->d_name, 1, &w->stop);
        return atomic_load(&w->stop) ? CLEAN_DEFER : CLEAN_OK;
    }
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN || --*budget < 0)
        return CLEAN_DEFER;
    if (unlinkat(fd, e->d_name, 0) != 0 && errno != ENOENT)
        return errno == EISDIR ? CLEAN_DEFER : CLEAN_FAIL;
    return CLEAN_OK;
}

/* The entries of an attempt's dir and of its cwd, read into a buffer on
 * the stack (getdents64) rather than through a DIR: fdopendir allocates
 * 32 KiB (a large request: malloc merges its freed small chunks first)
 * and makes an fstat and two fcntl, twice per ack; and nothing is
 * allocated, so no fork gate either.  Entries removed while reading are
 * fine, as with readdir. */
typedef struct {
    int fd;
    size_t len, off;
    union {
        struct dirent64 align;
        char buf[8192];
    } u;
} dents_t;

static const struct dirent64 *dents_next(dents_t *d)
{
    while (d->off >= d->len) {
        ssize_t n = getdents64(d->fd, d->u.buf, sizeof(d->u.buf));
        if (n <= 0)
            return NULL;
        d->len = (size_t)n;
        d->off = 0;
    }
    const struct dirent64 *e = (const struct dirent64 *)(d->u.buf + d->off);
    d->off += e->d_reclen;
    return e;
}

static bool dotdot(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* The agent's own ids, read once (two system calls per ack otherwise; the
 * loop and the worker both empty dirs). */
static uid_t own_uid;
static gid_t own_gid;
static pthread_once_t own_once = PTHREAD_ONCE_INIT;

static void own_read(void)
{
    own_uid = geteuid();
    own_gid = getegid();
}

/* Give the task's working dir (cfd, open and read from its start; left
 * open) back to us, 0700 (the task may have opened it to others), then
 * empty it.  Given back first: until then
 * a process of the task's uid that holds the dir open (another of its
 * tasks, handed the fd) could still add a file after the reading, and it
 * would be in the next user's HOME.  CLEAN_FAIL when it is not a dir. */
static clean_t clean_cwd_open(int cfd, int *budget, dirpool_worker_t *w)
{
    dents_t c = {.fd = cfd};
    if (c.fd < 0)
        return CLEAN_FAIL;
    clean_t rc = CLEAN_OK;
    const struct dirent64 *e;
    struct stat st;
    pthread_once(&own_once, own_read);
    if (fstat(c.fd, &st) != 0 ||
        ((st.st_uid != own_uid || st.st_gid != own_gid) && fchown(c.fd, own_uid, own_gid) != 0) ||
        ((st.st_mode & 07777) != 0700 && fchmod(c.fd, 0700) != 0))
        rc = CLEAN_FAIL;
    while (rc == CLEAN_OK && (e = dents_next(&c)))
        if (!dotdot(e->d_name))
            rc = drop(c.fd, e, budget, w);
    return rc;
}

/* As clean_cwd_open, cfd closed. */
static clean_t clean_cwd_fd(int cfd, int *budget, dirpool_worker_t *w)
{
    clean_t rc = clean_cwd_open(cfd, budget, w);
    if (cfd >= 0)
        close(cfd);
    return rc;
}

static clean_t clean_cwd(int dfd, int *budget, dirpool_worker_t *w)
{
    return clean_cwd_fd(openat(dfd, "cwd", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), budget,
                        w);
}

/* Empty the attempt dir at dfd (taken): 0711, the record kept (a regular
 * file), cwd emptied, anything else removed.  CLEAN_FAIL when either is missing;
 * CLEAN_DEFER when the budget ran out (part of it emptied).  Closes dfd. */
static clean_t clean(int dfd, int *budget, dirpool_worker_t *w)
{
    struct stat st;
    if (dfd < 0)
        return CLEAN_FAIL;
    /* the mode read, not set: a chmod to the same mode still writes the
     * inode (its ctime); only an older agent's dir or a root task's chmod
     * differs */
    if (fstat(dfd, &st) != 0 || ((st.st_mode & 07777) != 0711 && fchmod(dfd, 0711) != 0)) {
        close(dfd);
        return CLEAN_FAIL;
    }
    dents_t d = {.fd = dfd};
    bool record = false, cwd = false;
    clean_t rc = CLEAN_OK;
    const struct dirent64 *e;
    while (rc != CLEAN_DEFER && (e = dents_next(&d))) {
        const char *name = e->d_name;
        if (dotdot(name))
            continue;
        if (strcmp(name, "monitor") == 0) {
            /* kept as it is: the take writes the next attempt's id over it
             * before the dir is renamed to that attempt (rt_record_rewrite) */
            struct stat rs;
            record = e->d_type == DT_REG ||
                     (e->d_type == DT_UNKNOWN &&
                      fstatat(dfd, name, &rs, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(rs.st_mode));
        } else if (strcmp(name, "cwd") == 0) {
            clean_t c = clean_cwd(dfd, budget, w);
            cwd = c == CLEAN_OK;
            rc = c == CLEAN_DEFER ? CLEAN_DEFER : rc;
        } else if (drop(dfd, e, budget, w) == CLEAN_DEFER) {
            rc = CLEAN_DEFER;
        }
    }
    close(dfd);
    return rc == CLEAN_DEFER ? rc : record && cwd ? CLEAN_OK : CLEAN_FAIL;
}

static int open_entry(const char *dir, int id)
{
    char e[1200];
    snprintf(e, sizeof(e), "%s/%d", dir, id);
    return open(e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* ---- the worker --------------------------------------------------------- */

/* One job, without the lock: empty the entry (kept when that worked) or
 * remove it.  True when it is ready to be taken. */
static bool work(dirpool_worker_t *w, job_t j)
{
    if (j.keep && clean(open_entry(w->dir, j.id), NULL, w) == CLEAN_OK)
        return true;
    char name[32];
    snprintf(name, sizeof(name), "%d", j.id);
    int fd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        rm_at(fd, name, 0, &w->stop);
        close(fd);
    }
    return false;
}

static void *worker_main(void *arg)
{
    dirpool_worker_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!atomic_load(&w->stop) && (w->hold || w->head == w->n)) {
            pthread_cond_broadcast(&w->idle);
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (atomic_load(&w->stop))
            break;
        job_t j = w->q[w->head++];
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        bool ready = work(w, j);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        if (ready) {
            gate_lock();
            VEC_XRESERVE(w->done, w->capdone, w->ndone + 1);
            gate_unlock();
            w->done[w->ndone++] = j.id;
        } else if (j.keep) {
            w->dropped++;
        }
    }
    pthread_cond_broadcast(&w->idle);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static dirpool_worker_t *worker_start(const dirpool_t *p)
{
    pthread_once(&fork_gate_once, gate_register);
    dirpool_worker_t *w = xcalloc(1, sizeof(*w));
    str_copy(w->dir, p->dir, sizeof(w->dir));
    atomic_init(&w->stop, false);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_cond_init(&w->idle, NULL);
    if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        pthread_cond_destroy(&w->idle);
        free(w);
        return NULL;
    }
    return w;
}

/* The fds a slot keeps open (dirpool.h): FD_CWD its cwd (a cwd-only
 * put's, for the next), FD_REC and FD_APP its record (the take's, for
 * its writes and, dup'ed, the monitor's appends).  All pools together
 * keep at most a quarter of RLIMIT_NOFILE; they run on the agent's loop,
 * the count is atomic for the tests' threads. */
enum { FD_CWD, FD_REC, FD_APP };
static atomic_size_t kept_fds;
static size_t kept_max;
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;

static void kept_limit(void)
{
    struct rlimit rl;
    kept_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 4 : 64;
}

/* The slot's kept fd of that kind, -1 when none. */
static int fd_kept(const dirpool_t *p, int slot, int kind)
{
    return p->fds && slot >= 0 && slot < DIRPOOL_FD_SLOTS ? p->fds[slot][kind] - 1 : -1;
}

/* Keep fd as the slot's (it has none of that kind); false when it cannot
 * be kept (past DIRPOOL_FD_SLOTS or the budget): the caller closes it. */
static bool fd_keep(dirpool_t *p, int slot, int kind, int fd)
{
    pthread_once(&kept_once, kept_limit);
    if (slot < 0 || slot >= DIRPOOL_FD_SLOTS || fd < 0 || atomic_load(&kept_fds) >= kept_max)
        return false;
    if (!p->fds)
        p->fds = xcalloc(DIRPOOL_FD_SLOTS, sizeof(*p->fds));
    p->fds[slot][kind] = fd + 1;
    atomic_fetch_add(&kept_fds, 1);
    return true;
}

/* The slot no longer keeps its fd of that kind: closed when close_it,
 * else the caller's. */
static void fd_forget(dirpool_t *p, int slot, int kind, bool close_it)
{
    int fd = fd_kept(p, slot, kind);
    if (fd >= 0) {
        if (close_it)
            close(fd);
        p->fds[slot][kind] = 0;
        atomic_fetch_sub(&kept_fds, 1);
    }
}

static void fds_drop(dirpool_t *p, int slot)
{
    for (int k = FD_CWD; k <= FD_APP; k++)
        fd_forget(p, slot, k, true);
}

/* Hand entry id to the worker (started when first needed; without one
 * the job runs here). */
static void queue(dirpool_t *p, int id, bool keep)
{
    fds_drop(p, id); /* emptied or removed by path, by the worker */
    if (!p->w)
        p->w = worker_start(p);
    dirpool_worker_t *w = p->w;
    if (!w) { /* no thread: the job runs here, as before the worker */
        static dirpool_worker_t alone;
        str_copy(alone.dir, p->dir, sizeof(alone.dir));
        if (work(&alone, (job_t){id, keep})) {
            VEC_XRESERVE(p->ids, p->cap, p->n + 1);
            p->ids[p->n++] = id;
        }
        return;
    }
    p->deferred += keep;
    pthread_mutex_lock(&w->mu);
    if (w->head == w->n)
        w->head = w->n = 0;
    VEC_XRESERVE(w->q, w->cap, w->n + 1);
    w->q[w->n++] = (job_t){id, keep};
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The worker's emptied entries join the ready list. */
static void collect(dirpool_t *p)
{
    dirpool_worker_t *w = p->w;
    if (!w || !p->deferred)
        return;
    pthread_mutex_lock(&w->mu);
    VEC_XRESERVE(p->ids, p->cap, p->n + w->ndone);
    for (size_t i = 0; i < w->ndone; i++)
        p->ids[p->n++] = w->done[i];
    p->deferred -= w->ndone + w->dropped;
    w->ndone = w->dropped = 0;
    pthread_mutex_unlock(&w->mu);
}

/* ---- the pool ----------------------------------------------------------- */

int dirpool_slot(const char *name)
{
    int id;
    /* digits alone, no sign, no leading zero: the name the pool makes */
    if (name[0] < '0' || name[0] > '9' || (name[0] == '0' && name[1]) ||
        str_to_int(name, 0, 1 << 30, &id) != PAI_OK)
        return -1;
    return id;
}

void dirpool_path(const dirpool_t *p, int slot, char *out, size_t n)
{
    snprintf(out, n, "%s/%d", p->dir, slot);
}

bool dirpool_init(dirpool_t *p, const char *dir)
{
    memset(p, 0, sizeof(*p));
    if (str_copy(p->dir, dir, sizeof(p->dir)) >= sizeof(p->dir))
        return (p->dir[0] = '\0', false);
    DIR *d = opendir(dir);
    if (!d)
        return (p->dir[0] = '\0', false);
    struct dirent *e;
    while ((e = readdir(d))) {
        int id = dirpool_slot(e->d_name);
        p->next = id >= p->next ? id + 1 : p->next;
    }
    closedir(d);
    return true;
}

static void ready(dirpool_t *p, int slot)
{
    VEC_XRESERVE(p->ids, p->cap, p->n + 1);
    p->ids[p->n++] = slot;
}

void dirpool_put(dirpool_t *p, int slot, bool cwd_only)
{
    if (!p->dir[0])
        return;
    if (p->n + p->deferred >= DIRPOOL_MAX) {
        queue(p, slot, false);
        return;
    }
    char e[1200];
    dirpool_path(p, slot, e, sizeof(e));
    int budget = DIRPOOL_INLINE;
    clean_t rc;
    if (cwd_only) { /* the slot itself holds what the take made: not read */
        int fd = fd_kept(p, slot, FD_CWD);
        fd_forget(p, slot, FD_CWD, false); /* kept again below when all goes well */
        if (fd >= 0 && lseek(fd, 0, SEEK_SET) != 0) {
            close(fd);
            fd = -1;
        }
        if (fd < 0) {
            snprintf(e, sizeof(e), "%s/%d/cwd", p->dir, slot);
            fd = open(e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        rc = clean_cwd_open(fd, &budget, NULL);
        /* for the slot's next cwd-only put */
        if (fd >= 0 && (rc != CLEAN_OK || !fd_keep(p, slot, FD_CWD, fd)))
            close(fd);
    } else {
        fds_drop(p, slot); /* anything may have moved in the slot: by path */
        rc = clean(open(e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), &budget, NULL);
    }
    if (rc == CLEAN_OK)
        ready(p, slot);
    else
        queue(p, slot, rc == CLEAN_DEFER);
}

/* path renamed to a new slot; -1 (path removed, or not there) when it
 * cannot be. */
static int to_slot(dirpool_t *p, const char *path)
{
    char e[1200];
    if (p->dir[0]) {
        dirpool_path(p, p->next, e, sizeof(e));
        if (rename(path, e) == 0)
            return p->next++;
    }
    if (!p->dir[0] || errno != ENOENT)
        fs_rm_rf(path); /* no pool: removed here */
    return -1;
}

void dirpool_put_path(dirpool_t *p, const char *path)
{
    int slot = to_slot(p, path);
    if (slot >= 0)
        dirpool_put(p, slot, false);
}

void dirpool_reclaim(dirpool_t *p, int slot)
{
    if (p->dir[0])
        queue(p, slot, p->n + p->deferred < DIRPOOL_MAX);
}

void dirpool_discard(dirpool_t *p, const char *path)
{
    int slot = to_slot(p, path);
    if (slot >= 0)
        queue(p, slot, false);
}

/* One new entry <dir>/<id> as a put leaves one: 0711, an empty record,
 * an empty cwd 0700, all the agent's.  False (nothing left) when it cannot
 * be made. */
static bool make_entry(const dirpool_t *p, int id)
{
    char e[1200];
    dirpool_path(p, id, e, sizeof(e));
    if (mkdir(e, 0711) != 0)
        return false;
    int dfd = open(e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool ok = dfd >= 0 && fchmod(dfd, 0711) == 0 && mkdirat(dfd, "cwd", 0700) == 0 &&
              fchmodat(dfd, "cwd", 0700, 0) == 0;
    int rfd =
        ok ? openat(dfd, "monitor", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)
           : -1;
    ok = rfd >= 0;
    if (rfd >= 0)
        close(rfd);
    if (dfd >= 0)
        close(dfd);
    if (!ok)
        fs_rm_rf(e);
    return ok;
}

/* A new slot, numbered after the last (a number an older agent's dir
 * holds is skipped); -1 when none can be made. */
static int new_slot(dirpool_t *p)
{
    for (int tries = 0; tries < 64; tries++) {
        int slot = p->next++;
        if (make_entry(p, slot))
            return slot;
        if (errno != EEXIST)
            return -1;
    }
    return -1;
}

size_t dirpool_fill(dirpool_t *p, size_t want)
{
    size_t made = 0;
    if (want > DIRPOOL_MAX)
        want = DIRPOOL_MAX;
    while (p->dir[0] && p->n + p->deferred < want) {
        int slot = new_slot(p);
        if (slot < 0)
            break;
        ready(p, slot);
        made++;
    }
    return made;
}

unsigned dirpool_gen(dirpool_t *p, int slot)
{
    if (slot < 0)
        return 0;
    if ((size_t)slot >= p->ngen) {
        size_t had = p->ngen;
        VEC_XRESERVE(p->gen, p->ngen, (size_t)slot + 1);
        memset(p->gen + had, 0, (p->ngen - had) * sizeof(*p->gen));
    }
    return p->gen[slot];
}

/* n bytes of b at offset 0 of fd. */
static bool pwrite_all(int fd, const char *b, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t k = pwrite(fd, b + off, n - off, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        off += (size_t)k;
    }
    return true;
}

/* The record (wfd, open for writes, not appends) made the new attempt's
 * (line, l bytes): its "id" line written over the last attempt's lines
 * from offset 0, in one write with a pad line ("#", blanks, a newline)
 * over the rest of them while the record is at most DIRPOOL_PAD_MAX bytes,
 * else the record cut to the line's length first and the line written
 * after (dirpool.h).  line has room for the pad. */
static bool record_over(int wfd, char *line, size_t l)
{
    struct stat st;
    if (fstat(wfd, &st) != 0)
        return false;
    if (!S_ISREG(st.st_mode))
        return (errno = EISDIR, false); /* no record: the slot is dropped */
    size_t len = l;
    if (st.st_size > (off_t)l && st.st_size <= DIRPOOL_PAD_MAX) {
        /* the pad: no ftruncate (~60% of the take's CPU: the inode's
         * size, its page's tail, its extents) while the record is short;
         * one write of one page at offset 0, which a signal does not cut:
         * a crash leaves the last attempt's record or the new one whole */
        len = (size_t)st.st_size;
        memset(line + l, ' ', len - l);
        line[l] = len - l > 1 ? '#' : '\n';
        line[len - 1] = '\n';
    } else if (st.st_size > (off_t)l && ftruncate(wfd, (off_t)l) != 0) {
        /* cut to the line's length, not to 0: the file keeps its page (a
         * cut to 0 frees it, and the next write takes a new one and a new
         * delayed block: ~6-9 us a task on ext4, docs/benchmarks-history.md); cut
         * first: a crash leaves no whole line or the new one alone */
        return false;
    }
    return pwrite_all(wfd, line, len);
}

/* Forget the slot's kept record fds (closed), errno kept; -1. */
static int record_drop(dirpool_t *p, int slot)
{
    int e = errno;
    fd_forget(p, slot, FD_REC, true);
    fd_forget(p, slot, FD_APP, true);
    errno = e;
    return -1;
}

/* The slot's record made attempt_id's (record_over), through the fds the
 * slot keeps (dirpool.h) or, when it keeps none, opened by path (and kept
 * from then on when they can be).  Returns an fd of the record open for
 * appends, the monitor's (the caller's to close); -1 with errno EINVAL
 * when the id cannot be one line. */
static int rewrite(dirpool_t *p, int slot, const char *slot_dir, const char *attempt_id)
{
    char path[1300], line[DIRPOOL_PAD_MAX + 8];
    size_t l = strlen(attempt_id);
    if (strchr(attempt_id, '\n') || l + 4 > sizeof(line))
        return (errno = EINVAL, -1);
    memcpy(line, "id ", 3);
    memcpy(line + 3, attempt_id, l);
    line[l + 3] = '\n';
    l += 4;
    int wfd = fd_kept(p, slot, FD_REC), afd = fd_kept(p, slot, FD_APP), fd;
    if (wfd >= 0 && afd >= 0) {
        fd = record_over(wfd, line, l) ? fcntl(afd, F_DUPFD_CLOEXEC, 0) : -1;
        return fd >= 0 ? fd : record_drop(p, slot);
    }
    record_drop(p, slot);
    snprintf(path, sizeof(path), "%s/monitor", slot_dir);
    wfd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (wfd < 0)
        return -1;
    if (!record_over(wfd, line, l)) {
        int e = errno;
        close(wfd);
        errno = e;
        return -1;
    }
    /* kept for the slot's next takes: this fd for the writes, another for
     * the appends (the same file: nobody but root can swap a path in the
     * agent's slot; checked all the same) */
    struct stat ws, as;
    afd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (afd >= 0 && fstat(wfd, &ws) == 0 && fstat(afd, &as) == 0 && ws.st_ino == as.st_ino &&
        ws.st_dev == as.st_dev && fd_keep(p, slot, FD_REC, wfd)) {
        if (fd_keep(p, slot, FD_APP, afd)) {
            fd = fcntl(afd, F_DUPFD_CLOEXEC, 0);
            return fd >= 0 ? fd : record_drop(p, slot);
        }
        fd_forget(p, slot, FD_REC, false);
    }
    if (afd >= 0)
        close(afd);
    /* not kept: this fd is the monitor's, for appends */
    if (fcntl(wfd, F_SETFL, O_APPEND) != 0) {
        int e = errno;
        close(wfd);
        errno = e;
        return -1;
    }
    return wfd;
}

int dirpool_take(dirpool_t *p, const char *attempt_id, int *slot)
{
    char e[1200];
    if (!p->dir[0])
        return -1;
    collect(p);
    for (;;) {
        bool made = p->n == 0;
        int id = made ? new_slot(p) : p->ids[p->n - 1];
        if (id < 0)
            return -1;
        dirpool_path(p, id, e, sizeof(e));
        int fd = rewrite(p, id, e, attempt_id);
        if (fd >= 0) {
            p->n -= !made;
            dirpool_gen(p, id);
            p->gen[id]++;
            *slot = id;
            return fd;
        }
        if (errno == EINVAL || errno == EMFILE || errno == ENFILE || errno == ENOMEM) {
            if (made)
                ready(p, id);
            return -1; /* an id that cannot be a line, no fd: the caller's */
        }
        p->n -= !made; /* no record there: removed */
        queue(p, id, false);
        if (made)
            return -1;
    }
}

void dirpool_forget(dirpool_t *p, int slot, unsigned gen)
{
    char e[1300];
    if (!p->dir[0] || slot < 0 || dirpool_gen(p, slot) != gen)
        return;
    snprintf(e, sizeof(e), "%s/%d/monitor", p->dir, slot);
    int fd = open(e, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    bool spoiled = pwrite(fd, "#", 1, 0) == 1; /* "id ..." -> "#d ...": no attempt's */
    (void)spoiled; /* best effort: the journal still names it until compacted */
    close(fd);
}

void dirpool_settle(dirpool_t *p)
{
    dirpool_worker_t *w = p->w;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    while (!w->hold && (w->busy || w->head < w->n))
        pthread_cond_wait(&w->idle, &w->mu);
    pthread_mutex_unlock(&w->mu);
    collect(p);
}

void dirpool_hold(dirpool_t *p, bool hold)
{
    if (!p->w)
        p->w = worker_start(p);
    dirpool_worker_t *w = p->w;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->hold = hold;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void dirpool_free(dirpool_t *p)
{
    dirpool_worker_t *w = p->w;
    if (w) {
        pthread_mutex_lock(&w->mu);
        atomic_store(&w->stop, true);
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        pthread_cond_destroy(&w->idle);
        free(w->q);
        free(w->done);
        free(w);
        p->w = NULL;
    }
    for (int i = 0; p->fds && i < DIRPOOL_FD_SLOTS; i++)
        fds_drop(p, i);
    FREE_NULL(&p->ids);
    FREE_NULL(&p->gen);
    FREE_NULL(&p->fds);
    p->n = p->cap = p->deferred = p->ngen = 0;
}
