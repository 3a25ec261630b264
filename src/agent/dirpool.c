/*
 * dirpool.c - see dirpool.h.
 *
 * Emptying an entry is one procedure run with a budget: the put runs it
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

/* Give the task's working dir at dfd/"cwd" back to us, 0700 (the task may
 * have opened it to others), then empty it.  Given back first: until then
 * a process of the task's uid that holds the dir open (another of its
 * tasks, handed the fd) could still add a file after the reading, and it
 * would be in the next user's HOME.  CLEAN_FAIL when it is not a dir. */
static clean_t clean_cwd(int dfd, int *budget, dirpool_worker_t *w)
{
    dents_t c = {.fd = openat(dfd, "cwd", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
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
    close(c.fd);
    return rc;
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

/* Hand entry id to the worker (started when first needed; without one
 * the job runs here). */
static void queue(dirpool_t *p, int id, bool keep)
{
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

/* Entries an earlier process left: queued for removal, numbered after. */
static bool adopt_leftovers(dirpool_t *p)
{
    DIR *d = opendir(p->dir);
    if (!d)
        return false;
    struct dirent *e;
    while ((e = readdir(d))) {
        int id;
        if (dotdot(e->d_name))
            continue;
        if (str_to_int(e->d_name, 0, 1 << 30, &id) != PAI_OK) {
            fs_rm_at(dirfd(d), e->d_name, 1); /* never one of ours */
            continue;
        }
        p->next = id >= p->next ? id + 1 : p->next;
        queue(p, id, false);
    }
    closedir(d);
    return true;
}

bool dirpool_init(dirpool_t *p, const char *dir)
{
    memset(p, 0, sizeof(*p));
    if (str_copy(p->dir, dir, sizeof(p->dir)) >= sizeof(p->dir))
        return (p->dir[0] = '\0', false);
    if (mkdir(dir, 0700) == 0)
        return true;
    if (errno != EEXIST || chmod(dir, 0700) != 0 || !adopt_leftovers(p))
        return (p->dir[0] = '\0', false);
    return true;
}

void dirpool_put(dirpool_t *p, const char *path)
{
    char e[1200];
    snprintf(e, sizeof(e), "%s/%d", p->dir, p->next);
    if (!p->dir[0] || rename(path, e) != 0) {
        if (!p->dir[0] || errno != ENOENT)
            fs_rm_rf(path); /* no pool: removed here, as before the worker */
        return;
    }
    int id = p->next++;
    if (p->n + p->deferred >= DIRPOOL_MAX) {
        queue(p, id, false);
        return;
    }
    int budget = DIRPOOL_INLINE;
    clean_t rc = clean(open(e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), &budget, NULL);
    if (rc == CLEAN_OK) {
        VEC_XRESERVE(p->ids, p->cap, p->n + 1);
        p->ids[p->n++] = id;
    } else {
        queue(p, id, rc == CLEAN_DEFER);
    }
}

/* One new entry <dir>/<id> as a put leaves one: 0711, an empty record,
 * an empty cwd 0700, all the agent's.  False (nothing left) when it cannot
 * be made. */
static bool make_entry(const dirpool_t *p, int id)
{
    char e[1200];
    snprintf(e, sizeof(e), "%s/%d", p->dir, id);
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

size_t dirpool_fill(dirpool_t *p, size_t want)
{
    size_t made = 0;
    if (want > DIRPOOL_MAX)
        want = DIRPOOL_MAX;
    while (p->dir[0] && p->n + p->deferred < want && make_entry(p, p->next)) {
        VEC_XRESERVE(p->ids, p->cap, p->n + 1);
        p->ids[p->n++] = p->next++;
        made++;
    }
    return made;
}

int dirpool_take(dirpool_t *p, const char *path, const char *attempt_id)
{
    char e[1200];
    collect(p);
    while (p->n > 0) {
        int id = p->ids[p->n - 1];
        snprintf(e, sizeof(e), "%s/%d", p->dir, id);
        /* the record first: renamed, the dir holds the attempt's id alone */
        int fd = rt_record_rewrite(e, attempt_id);
        if (fd < 0) {
            if (errno == EINVAL || errno == EMFILE || errno == ENFILE || errno == ENOMEM)
                return -1; /* an id that cannot be a line, no fd: the caller's */
            p->n--;        /* no record there: removed */
            queue(p, id, false);
            continue;
        }
        if (rename(e, path) == 0) {
            p->n--;
            return fd;
        }
        /* path is there (the caller's mkdir finds it) or its parent is
         * not: the entry (whose record was just opened) stays pooled */
        close(fd);
        return -1;
    }
    return -1;
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
    FREE_NULL(&p->ids);
    p->n = p->cap = p->deferred = 0;
}
