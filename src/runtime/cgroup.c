/* cgroup.c - see cgroup.h. */
#include "runtime/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "runtime/cgroup_int.h"

/* The v1 controllers an attempt's cgroup lives in (tables, not code). */
static const char *const v1_ctrls[] = {"memory", "cpu"};
#define NCTRL ARRAY_LEN(v1_ctrls)

struct cg {
    int version;
    char *dirs[NCTRL]; /* v1: one per controller (cpu: NULL when not made); v2: dirs[0] only */
    bool cpu_off;      /* v1: a pooled cgroup's cpu dir this use does not join */
    char *parent;      /* "/<rel>" */
    char *devices;     /* v1 devices dir (cg_deny_devices); NULL if none */
    int oom_efd;       /* v1 eventfd on memory.oom_control, -1 if none */
    bool oom_seen;
    int64_t oom_base;             /* oom_kill before this use (a reused cgroup counts on) */
    int64_t oom_read;             /* oom_kill as cg_oom last read it; -1: not read */
    int64_t mem_bytes, cpu_quota; /* the limits written (-1: none) */
    char *rel_dir;                /* rel's parent (pool: reuse stays under it) */
    char *rel;                    /* the cgroup's own path under the root (a pooled one's name) */
    /* A pooled cgroup's files that every task of it uses, held open (the
     * open and close are most of what a use costs: ~6 us each against
     * ~0.6 for the read or write; cg_hold); -1: by path. */
    int join_fd[NCTRL]; /* v1 `tasks` (cg_join: the task's own move) */
    int oom_fd;         /* memory.oom_control (cg_oom, the next task's base) */
    int usage_fd;       /* memory.usage_in_bytes (poolable) */
    int peak_fd;        /* memory.max_usage_in_bytes (reset per task) */
};

const char *cg_root(void)
{
    const char *r = getenv("PAI_CGROUP_ROOT");
    return r && *r ? r : "/sys/fs/cgroup";
}

/* Looked at once per process and root (a monitor asks at every start):
 * what is mounted does not change under a running agent. */
int cg_version(void)
{
    static char seen_root[512];
    static int seen = -1;
    static uid_t seen_euid;
    char p[512];
    const char *root = cg_root();
    uid_t euid = geteuid();
    if (seen >= 0 && euid == seen_euid && strcmp(root, seen_root) == 0)
        return seen;
    int v = 0;
    if (euid == 0) {
        snprintf(p, sizeof(p), "%s/cgroup.controllers", root);
        if (access(p, F_OK) == 0) {
            v = 2;
        } else {
            snprintf(p, sizeof(p), "%s/memory/cgroup.procs", root);
            v = access(p, W_OK) == 0 ? 1 : 0;
        }
    }
    if (strlen(root) < sizeof(seen_root)) {
        str_copy(seen_root, root, sizeof(seen_root));
        seen_euid = euid;
        seen = v;
    }
    return v;
}

static pai_err_t write_file(const char *dir, const char *file, const char *val)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return PAI_E_IO;
    ssize_t n = write(fd, val, strlen(val));
    close(fd);
    return n == (ssize_t)strlen(val) ? PAI_OK : PAI_E_IO;
}

/* val into a file held open (fd >= 0: one pwrite), else by path. */
static pai_err_t write_held(int fd, const char *dir, const char *file, const char *val)
{
    size_t l = strlen(val);
    if (fd < 0)
        return write_file(dir, file, val);
    return pwrite(fd, val, l, 0) == (ssize_t)l ? PAI_OK : PAI_E_IO;
}

/* v2: enable memory and cpu for children along the path from the root. */
static void v2_enable_controllers(const char *rel)
{
    char dir[1024], part[1024];
    snprintf(dir, sizeof(dir), "%s", cg_root());
    str_copy(part, rel, sizeof(part));
    for (char *s = part, *slash; s && *s; s = slash ? slash + 1 : NULL) {
        if (write_file(dir, "cgroup.subtree_control", "+memory +cpu") != PAI_OK)
            log_debug("cgroup: cannot enable controllers in %s", dir);
        slash = strchr(s, '/');
        if (!slash)
            break;
        *slash = '\0';
        size_t l = strlen(dir);
        if (snprintf(dir + l, sizeof(dir) - l, "/%s", s) >= (int)(sizeof(dir) - l))
            return;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return;
    }
}

/* v1 memory limit (bytes, -1: none) over what the cgroup has now: memsw
 * (when swap accounting exists) may never be below the limit, so it goes
 * first when the limit rises, after it when it falls. */
static pai_err_t v1_memory(cg_t *cg, int64_t bytes)
{
    char v[64];
    if (bytes == cg->mem_bytes)
        return PAI_OK;
    bool rise = bytes < 0 || (cg->mem_bytes >= 0 && bytes > cg->mem_bytes);
    snprintf(v, sizeof(v), "%lld", (long long)bytes);
    if (rise && write_file(cg->dirs[0], "memory.memsw.limit_in_bytes", v) != PAI_OK)
        log_debug("cgroup: no memsw limit in %s", cg->dirs[0]);
    if (write_file(cg->dirs[0], "memory.limit_in_bytes", v) != PAI_OK)
        return PAI_E_IO;
    if (!rise && write_file(cg->dirs[0], "memory.memsw.limit_in_bytes", v) != PAI_OK)
        log_debug("cgroup: no memsw limit in %s", cg->dirs[0]);
    cg->mem_bytes = bytes;
    return PAI_OK;
}

static pai_err_t v1_cpu(cg_t *cg, double cpu)
{
    char v[64];
    int64_t quota = cpu > 0 ? (int64_t)(cpu * 100000) : -1;
    if (!cg->dirs[1] || quota == cg->cpu_quota)
        return PAI_OK;
    if (quota < 0 && cg->cpu_quota == -2) {
        cg->cpu_quota = -1; /* a new dir is unlimited */
        return PAI_OK;
    }
    snprintf(v, sizeof(v), "%lld", (long long)quota);
    if (cg->cpu_quota == -2 && write_file(cg->dirs[1], "cpu.cfs_period_us", "100000") != PAI_OK)
        return PAI_E_IO; /* -2: a new dir, its period not written yet */
    if (write_file(cg->dirs[1], "cpu.cfs_quota_us", v) != PAI_OK)
        return PAI_E_IO;
    cg->cpu_quota = quota;
    return PAI_OK;
}

static pai_err_t v1_limits(cg_t *cg, int64_t memory_mb, double cpu)
{
    pai_err_t rc = v1_memory(cg, memory_mb > 0 ? memory_mb * 1024 * 1024 : -1);
    return rc == PAI_OK ? v1_cpu(cg, cpu) : rc;
}

/* The v1 cpu controller is joined only when the task has a CPU limit, or
 * when it is mounted with cpuacct (the task's CPU time, for the metrics):
 * a cgroup dir and a move into it fewer otherwise. */
static bool v1_cpuacct_comounted(void)
{
    static int comounted = -1;
    if (comounted < 0) {
        char p[512];
        snprintf(p, sizeof(p), "%s/cpu/cpuacct.usage", cg_root());
        comounted = access(p, F_OK) == 0;
    }
    return comounted;
}

static bool v1_wants_cpu(double cpu)
{
    return cpu > 0 || v1_cpuacct_comounted();
}

static void v1_register_oom(cg_t *cg)
{
    char p[1024], v[64];
    snprintf(p, sizeof(p), "%s/memory.oom_control", cg->dirs[0]);
    int ofd = open(p, O_RDONLY | O_CLOEXEC);
    cg->oom_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ofd < 0 || cg->oom_efd < 0)
        goto fail;
    snprintf(v, sizeof(v), "%d %d", cg->oom_efd, ofd);
    if (write_file(cg->dirs[0], "cgroup.event_control", v) != PAI_OK)
        goto fail;
    close(ofd);
    return;
fail:
    if (ofd >= 0)
        close(ofd);
    if (cg->oom_efd >= 0)
        close(cg->oom_efd);
    cg->oom_efd = -1;
}

static pai_err_t v2_limits(cg_t *cg, int64_t memory_mb, double cpu)
{
    char v[64];
    if (memory_mb > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)memory_mb * 1024 * 1024);
        if (write_file(cg->dirs[0], "memory.max", v) != PAI_OK)
            return PAI_E_IO;
        if (write_file(cg->dirs[0], "memory.swap.max", "0") != PAI_OK)
            log_debug("cgroup: no swap limit in %s", cg->dirs[0]);
    }
    if (cpu > 0) {
        snprintf(v, sizeof(v), "%lld 100000", (long long)(cpu * 100000));
        if (write_file(cg->dirs[0], "cpu.max", v) != PAI_OK)
            return PAI_E_IO;
    }
    return PAI_OK;
}

static pai_err_t cg_make_dir(cg_t *cg, size_t i, const char *rel)
{
    cg->dirs[i] = cg->version == 1 ? str_printf("%s/%s/%s", cg_root(), v1_ctrls[i], rel)
                                   : str_printf("%s/%s", cg_root(), rel);
    return fs_mkdir_p(cg->dirs[i], 0755);
}

static pai_err_t cg_make_dirs(cg_t *cg, const char *rel, double cpu)
{
    size_t n = cg->version == 1 ? NCTRL : 1;
    for (size_t i = 0; i < n; i++) {
        if (cg->version == 1 && i == 1 && !v1_wants_cpu(cpu))
            continue;
        pai_err_t rc = cg_make_dir(cg, i, rel);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

static char *dir_of(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return str_printf("%.*s", slash ? (int)(slash - rel) : 0, rel);
}

pai_err_t cg_create(const char *rel, int64_t memory_mb, double cpu, cg_t **out)
{
    pai_err_t rc;
    cg_t *cg = xcalloc(1, sizeof(*cg));
    cg->oom_efd = -1;
    cg->oom_fd = cg->usage_fd = cg->peak_fd = -1;
    for (size_t i = 0; i < NCTRL; i++)
        cg->join_fd[i] = -1;
    cg->rel = xstrdup(rel);
    cg->oom_read = -1;
    cg->mem_bytes = -1;
    cg->cpu_quota = -2;
    cg->version = cg_version();
    cg->parent = str_printf("/%s", rel);
    cg->rel_dir = dir_of(rel);
    if (cg->version == 0) {
        rc = PAI_E_UNAVAILABLE;
        goto fail;
    }
    if (cg->version == 2)
        v2_enable_controllers(rel);
    rc = cg_make_dirs(cg, rel, cpu);
    if (rc != PAI_OK)
        goto fail;
    rc = cg->version == 1 ? v1_limits(cg, memory_mb, cpu) : v2_limits(cg, memory_mb, cpu);
    if (rc != PAI_OK)
        goto fail;
    if (cg->version == 1)
        v1_register_oom(cg);
    *out = cg;
    return PAI_OK;
fail:
    cg_destroy(cg);
    return rc;
}

pai_err_t cg_deny_devices(cg_t *cg, const dev_t *devs, size_t n)
{
    if (cg->version != 1)
        return PAI_E_UNAVAILABLE;
    char p[512];
    snprintf(p, sizeof(p), "%s/devices/devices.deny", cg_root());
    if (access(p, W_OK) != 0)
        return PAI_E_UNAVAILABLE;
    cg->devices = str_printf("%s/devices%s", cg_root(), cg->parent);
    pai_err_t rc = fs_mkdir_p(cg->devices, 0755);
    for (size_t i = 0; rc == PAI_OK && i < n; i++) {
        char rule[64];
        snprintf(rule, sizeof(rule), "c %u:%u rwm", major(devs[i]), minor(devs[i]));
        rc = write_file(cg->devices, "devices.deny", rule);
    }
    return rc;
}

/* The calling process into one hierarchy's cgroup dir (v1): "0" written
 * into `tasks` moves the calling thread, and the kernel takes no global
 * lock for that (cgroup_procs_write_start: a pid, or a whole thread group,
 * takes cgroup_threadgroup_rwsem for writing, which waits for every fork
 * and exit in progress on the machine and holds off new ones meanwhile).
 * The caller is single-threaded, so its thread is the whole process.  The
 * pid into cgroup.procs when that fails (a `tasks` file missing). */
static pai_err_t join_one(int fd, const char *dir)
{
    char v[32];
    if (write_held(fd, dir, "tasks", "0") == PAI_OK)
        return PAI_OK;
    snprintf(v, sizeof(v), "%d", (int)getpid());
    return write_file(dir, "cgroup.procs", v);
}

pai_err_t cg_join(const cg_t *cg)
{
    if (cg->version != 1)
        return cg_attach(cg, getpid());
    for (size_t i = 0; i < NCTRL; i++)
        if (cg->dirs[i] && !(i == 1 && cg->cpu_off) &&
            join_one(cg->join_fd[i], cg->dirs[i]) != PAI_OK)
            return PAI_E_IO;
    if (cg->devices && join_one(-1, cg->devices) != PAI_OK)
        return PAI_E_IO;
    return PAI_OK;
}

bool cg_join_held(const cg_t *cg)
{
    if (cg->version != 1 || cg->devices)
        return false;
    for (size_t i = 0; i < NCTRL; i++)
        if (cg->dirs[i] && !(i == 1 && cg->cpu_off) && cg->join_fd[i] < 0)
            return false;
    return true;
}

pai_err_t cg_attach(const cg_t *cg, pid_t pid)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", (int)pid);
    for (size_t i = 0; i < NCTRL; i++)
        if (cg->dirs[i] && !(i == 1 && cg->cpu_off) &&
            write_file(cg->dirs[i], "cgroup.procs", v) != PAI_OK)
            return PAI_E_IO;
    if (cg->devices && write_file(cg->devices, "cgroup.procs", v) != PAI_OK)
        return PAI_E_IO;
    return PAI_OK;
}

/* A small file of the cgroup's (its first 4 KiB: every file read here is
 * shorter) into buf, NUL-terminated; false when it cannot be read.  One
 * open, read and close (stdio adds an fstat and a read). */
bool cg_read_small(const char *dir, const char *file, char *buf, size_t n)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    buf[got > 0 ? got : 0] = '\0';
    return got >= 0;
}

/* The same from a file held open (fd >= 0): a pread from its start, which
 * has the kernel generate it afresh; by path otherwise. */
static bool read_held(int fd, const char *dir, const char *file, char *buf, size_t n)
{
    if (fd < 0)
        return cg_read_small(dir, file, buf, n);
    ssize_t got = pread(fd, buf, n - 1, 0);
    buf[got > 0 ? got : 0] = '\0';
    return got >= 0;
}

int64_t cg_read_key(int fd, const char *dir, const char *file, const char *key)
{
    char text[4096];
    int64_t val = -1;
    if (!read_held(fd, dir, file, text, sizeof(text)))
        return -1;
    size_t kl = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
            val = strtoll(l + kl + 1, NULL, 10);
    return val;
}

bool cg_oom(cg_t *cg)
{
    uint64_t n;
    if (!cg || cg->oom_seen)
        return cg && cg->oom_seen;
    if (cg->oom_efd >= 0 && read(cg->oom_efd, &n, sizeof(n)) == sizeof(n) && n > 0)
        cg->oom_seen = true;
    const char *file = cg->version == 2 ? "memory.events" : "memory.oom_control";
    cg->oom_read = cg_read_key(cg->oom_fd, cg->dirs[0], file, "oom_kill");
    if (cg->oom_read > cg->oom_base)
        cg->oom_seen = true;
    return cg->oom_seen;
}

/* Apply fn to every subdirectory of dir, depth first, then to dir. */
static void walk(const char *dir, void (*fn)(const char *dir))
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_type != DT_DIR || e->d_name[0] == '.')
                continue;
            char *sub = str_printf("%s/%s", dir, e->d_name);
            if (sub)
                walk(sub, fn);
            free(sub);
        }
        closedir(d);
    }
    fn(dir);
}

static void kill_procs(const char *dir)
{
    char p[1024], line[64];
    snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
    FILE *f = fopen(p, "re");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        long pid = strtol(line, NULL, 10);
        if (pid > 1 && pid != getpid())
            kill((pid_t)pid, SIGKILL);
    }
    fclose(f);
}

static void remove_dir(const char *dir)
{
    for (int i = 0; i < 200 && rmdir(dir) != 0 && errno == EBUSY; i++) {
        kill_procs(dir);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void cg_kill_all(const cg_t *cg)
{
    for (size_t i = 0; cg && i < NCTRL; i++)
        if (cg->dirs[i] && !(i == 1 && cg->cpu_off))
            walk(cg->dirs[i], kill_procs);
}

/* Remove a cgroup dir and what is under it, killing what still runs
 * there.  The usual case, an empty leaf (the task and its children are
 * gone), is one rmdir: no walk, no read of cgroup.procs. */
static void remove_tree(const char *dir)
{
    if (rmdir(dir) == 0 || errno == ENOENT)
        return;
    walk(dir, kill_procs);
    walk(dir, remove_dir);
}

void cg_destroy(cg_t *cg)
{
    if (!cg)
        return;
    for (size_t i = 0; i < NCTRL; i++) {
        if (cg->dirs[i])
            remove_tree(cg->dirs[i]);
        free(cg->dirs[i]);
    }
    if (cg->devices)
        remove_tree(cg->devices);
    free(cg->devices);
    if (cg->oom_efd >= 0)
        close(cg->oom_efd);
    int held[] = {cg->oom_fd, cg->usage_fd, cg->peak_fd};
    for (size_t i = 0; i < ARRAY_LEN(held); i++)
        if (held[i] >= 0)
            close(held[i]);
    for (size_t i = 0; i < NCTRL; i++)
        if (cg->join_fd[i] >= 0)
            close(cg->join_fd[i]);
    free(cg->parent);
    free(cg->rel_dir);
    free(cg->rel);
    free(cg);
}

const char *cg_parent_path(const cg_t *cg)
{
    return cg->parent;
}

/* ---- the pool (v1) -------------------------------------------------------- */

/* Idle cgroups one monitor keeps, and what a reused one may carry over. */
#define POOL_MAX       32
#define POOL_MAX_USAGE (16LL << 20) /* memory still charged: not reused past this */
#define POOL_SWEPT_MAX 64

struct cg_pool {
    int version; /* cg_version() at creation */
    cg_t *idle[POOL_MAX];
    size_t n;
    unsigned seq;
    char *swept[POOL_SWEPT_MAX]; /* rel dirs whose stale pool cgroups are gone */
    size_t nswept;
};

cg_pool_t *cg_pool_new(void)
{
    cg_pool_t *p = xcalloc(1, sizeof(cg_pool_t));
    p->version = cg_version();
    return p;
}

void cg_pool_free(cg_pool_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        cg_destroy(p->idle[i]);
    for (size_t i = 0; i < p->nswept; i++)
        free(p->swept[i]);
    free(p);
}

const char *cg_rel(const cg_t *cg)
{
    return cg->rel;
}

/* fd moved to a number >= CG_HELD_FD_MIN when the limit leaves room (the
 * original closed); fd itself otherwise.  cap: the highest number allowed
 * plus one. */
static int fd_high(int fd, rlim_t cap)
{
    if (fd < 0 || fd >= CG_HELD_FD_MIN || cap <= 2 * CG_HELD_FD_MIN)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, CG_HELD_FD_MIN);
    if (h < 0)
        return fd;
    close(fd);
    return h;
}

static rlim_t hold_cap(void)
{
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur / 4 : 256;
}

/* A file of a pooled cgroup held open for its uses (struct cg), while the
 * fds stay below a quarter of the process's limit: what holds them never
 * leaves the task pipes and logs short of fds.  Held at CG_HELD_FD_MIN and
 * up (cgroup.h: not copied into a task's process).  -1: used by path. */
static int hold_fd(int fd, rlim_t cap)
{
    fd = fd_high(fd, cap);
    if (fd >= 0 && (rlim_t)fd >= cap) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int hold(const char *dir, const char *file, int flags, rlim_t cap)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    return hold_fd(open(p, flags | O_CLOEXEC), cap);
}

int cg_hold_fd(int fd)
{
    return hold_fd(fd, hold_cap());
}

static void hold_join(cg_t *cg, size_t i, rlim_t cap)
{
    if (cg->dirs[i] && cg->join_fd[i] < 0)
        cg->join_fd[i] = hold(cg->dirs[i], "tasks", O_WRONLY, cap);
}

static void cg_hold(cg_t *cg)
{
    rlim_t cap = hold_cap();
    cg->oom_fd = hold(cg->dirs[0], "memory.oom_control", O_RDONLY, cap);
    cg->usage_fd = hold(cg->dirs[0], "memory.usage_in_bytes", O_RDONLY, cap);
    cg->peak_fd = hold(cg->dirs[0], "memory.max_usage_in_bytes", O_WRONLY, cap);
    cg->oom_efd = fd_high(cg->oom_efd, cap); /* registered: the kernel holds the eventfd itself */
    for (size_t i = 0; i < NCTRL; i++)
        hold_join(cg, i, cap);
}

/* A pool cgroup's name says which monitor keeps it: "pool.PID.N". */
static bool stale_pool_name(const char *name)
{
    long pid;
    char *end;
    if (!str_has_prefix(name, "pool."))
        return false;
    pid = strtol(name + 5, &end, 10);
    return *end == '.' && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Once per parent: remove the cgroups of monitors that are gone (a monitor
 * killed with its pool and the cgroups of its attempts, which are lost:
 * what is left in them is killed; a monitor that exits removes its own). */
static void pool_sweep(cg_pool_t *p, const char *rel_dir)
{
    for (size_t i = 0; i < p->nswept; i++)
        if (strcmp(p->swept[i], rel_dir) == 0)
            return;
    if (p->nswept < POOL_SWEPT_MAX)
        p->swept[p->nswept++] = xstrdup(rel_dir);
    for (size_t c = 0; c < NCTRL; c++) {
        char *dir = str_printf("%s/%s/%s", cg_root(), v1_ctrls[c], rel_dir);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (e->d_type == DT_DIR && stale_pool_name(e->d_name)) {
                char *sub = str_printf("%s/%s", dir, e->d_name);
                remove_tree(sub);
                free(sub);
            }
        if (d)
            closedir(d);
        free(dir);
    }
}

/* An idle cgroup under rel's parent; NULL when none. */
static cg_t *pool_take(cg_pool_t *p, const char *rel)
{
    char *rel_dir = dir_of(rel);
    cg_t *cg = NULL;
    for (size_t i = p->n; i-- > 0 && !cg;) {
        if (strcmp(p->idle[i]->rel_dir, rel_dir) != 0)
            continue;
        cg = p->idle[i];
        p->idle[i] = p->idle[--p->n];
    }
    if (!cg)
        pool_sweep(p, rel_dir);
    free(rel_dir);
    return cg;
}

/* A pooled cgroup's cpu dir, made when it has none (a task with a CPU
 * limit, or a warm pool), its `tasks` held; nothing of it on failure. */
static pai_err_t pool_cpu_dir(cg_t *cg)
{
    cg->cpu_quota = -2;
    if (cg_make_dir(cg, 1, cg->rel) != PAI_OK) {
        FREE_NULL(&cg->dirs[1]);
        return PAI_E_IO;
    }
    hold_join(cg, 1, hold_cap());
    return PAI_OK;
}

/* Ready a reused cgroup for its next task: the limits it needs, its cpu dir
 * joined or not (made when it has none), the OOM count from here on, the
 * peak usage reset. */
static pai_err_t pool_ready(cg_t *cg, const char *rel, int64_t memory_mb, double cpu)
{
    uint64_t n;
    bool want_cpu = v1_wants_cpu(cpu);
    free(cg->parent);
    cg->parent = str_printf("/%s", rel);
    cg->cpu_off = !want_cpu;
    if (want_cpu && !cg->dirs[1] && pool_cpu_dir(cg) != PAI_OK)
        return PAI_E_IO;
    cg->oom_seen = false;
    if (cg->oom_efd >= 0)
        while (read(cg->oom_efd, &n, sizeof(n)) == sizeof(n))
            ; /* drained: nothing of the last task's */
    if (write_held(cg->peak_fd, cg->dirs[0], "memory.max_usage_in_bytes", "0") != PAI_OK)
        log_debug("cgroup: cannot reset the peak usage of %s", cg->dirs[0]);
    if (want_cpu && cg->dirs[1] && v1_cpuacct_comounted()) /* the task's CPU time */
        (void)write_file(cg->dirs[1], "cpuacct.usage", "0");
    pai_err_t rc = v1_memory(cg, memory_mb > 0 ? memory_mb * 1024 * 1024 : -1);
    if (rc == PAI_OK && want_cpu)
        rc = v1_cpu(cg, cpu);
    return rc;
}

/* A new cgroup for the pool, named for it ("pool.PID.N" under rel's
 * parent) from the start: it keeps that name for its life. */
static pai_err_t pool_create(cg_pool_t *p, const char *rel, int64_t memory_mb, double cpu,
                             cg_t **out)
{
    char *rel_dir = dir_of(rel);
    char *name =
        str_printf("%s%spool.%d.%u", rel_dir, *rel_dir ? "/" : "", (int)getpid(), ++p->seq);
    free(rel_dir);
    pai_err_t rc = cg_create(name, memory_mb, cpu, out);
    free(name);
    if (rc != PAI_OK)
        return rc;
    free((*out)->parent);
    (*out)->parent = str_printf("/%s", rel);
    cg_hold(*out);
    return PAI_OK;
}

pai_err_t cg_pool_get(cg_pool_t *p, const char *rel, int64_t memory_mb, double cpu, cg_t **out)
{
    if (!p || p->version != 1)
        return cg_create(rel, memory_mb, cpu, out);
    cg_t *cg = pool_take(p, rel);
    if (!cg)
        return pool_create(p, rel, memory_mb, cpu, out);
    if (pool_ready(cg, rel, memory_mb, cpu) != PAI_OK) {
        cg_destroy(cg);
        return pool_create(p, rel, memory_mb, cpu, out);
    }
    *out = cg;
    return PAI_OK;
}

size_t cg_pool_warm(cg_pool_t *p, const char *rel_dir, size_t n)
{
    if (!p || p->version != 1 || !rel_dir[0] || strstr(rel_dir, ".."))
        return 0;
    pool_sweep(p, rel_dir);
    size_t have = 0, made = 0;
    for (size_t i = 0; i < p->n; i++)
        have += strcmp(p->idle[i]->rel_dir, rel_dir) == 0;
    char *rel = str_printf("%s/warm", rel_dir); /* pool_create names it under rel's parent */
    while (have + made < n && p->n < POOL_MAX) {
        cg_t *cg = NULL;
        if (pool_create(p, rel, 0, 0, &cg) != PAI_OK)
            break;
        if (!cg->dirs[1])
            (void)pool_cpu_dir(cg); /* none: a task with a CPU limit makes it */
        cg->cpu_off = true;
        p->idle[p->n++] = cg;
        made++;
    }
    free(rel);
    return made;
}

/* Nothing in dir: no child cgroup (a kernfs dir's link count is 2 plus
 * its subdirs; not looked at with no_subdirs) and, with procs, no process
 * (a v1 read of cgroup.procs: the kernel builds a pid list for it, which
 * one of its workers frees a second later). */
static bool dir_empty(const char *dir, bool procs, bool no_subdirs)
{
    char buf[16];
    struct stat st;
    if (!no_subdirs && (stat(dir, &st) != 0 || st.st_nlink != 2))
        return false;
    return !procs || (cg_read_small(dir, "cgroup.procs", buf, sizeof(buf)) && !buf[0]);
}

/* May cg be handed to another task: v1, empty, little memory still charged.
 * The processes are read in the memory dir only (and not at all when the
 * caller proved that none is left: CG_PUT_PROCS_GONE): a task joins it first
 * (cg_join), its children are born in both, and only root moves a
 * process between cgroups, so none is in the cpu dir that is not in the
 * memory dir. */
static bool poolable(const cg_t *cg, unsigned flags)
{
    if (cg->version != 1)
        return false;
    for (size_t i = 0; i < NCTRL; i++)
        if (cg->dirs[i] && !dir_empty(cg->dirs[i], i == 0 && !(flags & CG_PUT_PROCS_GONE),
                                      flags & CG_PUT_NO_SUBDIRS))
            return false;
    char line[64];
    if (!read_held(cg->usage_fd, cg->dirs[0], "memory.usage_in_bytes", line, sizeof(line)) ||
        line[0] < '0' || line[0] > '9')
        return false;
    return strtoll(line, NULL, 10) <= POOL_MAX_USAGE;
}

void cg_pool_put(cg_pool_t *p, cg_t *cg, unsigned flags)
{
    if (!cg)
        return;
    if (!p || p->n >= POOL_MAX || !poolable(cg, flags)) {
        cg_destroy(cg); /* what is left in it is killed there */
        return;
    }
    if (cg->devices) { /* the GPU fence is the task's own */
        remove_tree(cg->devices);
        FREE_NULL(&cg->devices);
    }
    /* the count the next task's kills are told from (never reset): with
     * no process left since cg_oom read it (CG_PUT_PROCS_GONE), that read
     * is the last word; else read again, after the emptiness check (a
     * straggler killed by the OOM killer in between is not the next
     * task's) */
    int64_t kills = (flags & CG_PUT_PROCS_GONE) && cg->oom_read >= 0
                        ? cg->oom_read
                        : cg_read_key(cg->oom_fd, cg->dirs[0], "memory.oom_control", "oom_kill");
    cg->oom_base = kills > 0 ? kills : 0;
    cg->oom_read = -1;
    p->idle[p->n++] = cg;
}
