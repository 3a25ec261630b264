/*
 * attempt.c - the attempts of one node of `pai agent`: their table, their
 * start (the runtime spec, work dirs, the task's identity), stop, end,
 * acknowledgement, re-adoption after an agent restart and removal
 * (docs/agent-protocol.md).  node.c decides which attempts run.
 *
 * State kept on disk, per attempt, under <node dir>/tasks/<escaped id>/:
 *   monitor  the attempt's record (runtime.h), one file: the agent's "id"
 *            line (the attempt id: the escape is not reversible) before
 *            the start, the monitor's pid, the task's and the result;
 *            `exit` marks an attempt found lost
 *   cwd      the task's working directory
 * Once the server has recorded an attempt's end (its ack: do not report it
 * again), its id is appended to <node dir>/acked-attempts, the node's
 * journal of acked attempts, and its dir goes into the pool at once: in a
 * burst of short tasks each new attempt then takes the dir of one acked a
 * moment before (no new inode).  The journal is rewritten without the
 * forgotten ones when they are most of it.  (When it cannot be written, the
 * record gets an "acked" line instead and the dir waits for TOMBSTONE_MS.)
 * (Older agents kept the id and the ack in files `id` and `acked`; they are
 * still read, and written when the id cannot be a line of the record.)
 * The directory is created before the attempt starts, so an attempt whose
 * directory exists was started by this node ("never twice"), also across
 * agent restarts (a restarted agent also reads the journal).  Tombstones
 * (acked attempts) are forgotten after TOMBSTONE_MS.  A new attempt's
 * directory is one renamed out of the node's pool of emptied attempt dirs
 * (<node dir>/pool, dirpool.h) when there is one.  Logs live in
 * <node dir>/logs/, flat: <escaped id>.stdout, .stderr, .all (made by the
 * monitor on the task's first line: a silent task has none; no dir per
 * attempt), and are kept.  An older agent's monitors kept them in
 * <node dir>/logs/<escaped id>/, which is still read (node_log_prefix).
 *
 * Modes (docs/security.md): a task runs as its user's uid (taskuid.h) and
 * must reach <node dir>/tasks/<id>/cwd (0700, its own) by path, so the node
 * dir, tasks/ and tasks/<id>/ are 0711 (passable, not listable) and every
 * file of the agent's in them is 0600; logs/ and pool/ are 0700.
 */
#include "agent/agent.h"
#include "agent/taskuid.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "wire/agentwire.h"
#include "common/vec.h"

#define TOMBSTONE_MS     (10 * 60 * 1000)
#define DEFAULT_GRACE_MS 10000
#define DIAG_BYTES       2048
#define POOL_FILL_MIN    8
#define POOL_FILL_MAX    64
/* idle cgroups made at the start (node_warm): one a GPU, within these */
#define WARM_SLOTS_MIN 2
#define WARM_SLOTS_MAX 16

/* ---- small helpers ------------------------------------------------------ */

/* The agent's umask, read once (task_dirs_init): a directory mkdir made
 * with a mode the umask does not cut needs no chmod. */
static mode_t agent_umask = 077;

/* Best effort: a directory that cannot be made shows up as the task's own
 * failure to start, with its reason.  The mode is set whatever the umask,
 * and on a directory an older agent made with another.  A task's start
 * makes two (docs/benchmarks-history.md): one mkdir when the parent is there, a
 * chmod only when the umask cut the mode or the directory was there. */
static void mkdir_p(const char *path, mode_t mode)
{
    if (mkdir(path, mode) == 0) {
        if (!(mode & agent_umask))
            return;
    } else if (errno != EEXIST && fs_mkdir_p(path, mode) != PAI_OK) {
        log_debug("cannot create %s: %s", path, strerror(errno));
        return;
    }
    if (chmod(path, mode) != 0)
        log_debug("cannot set the mode of %s: %s", path, strerror(errno));
}

static void write_small(const char *dir, const char *name, const char *text)
{
    char p[1200];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, text, strlen(text)) < 0)
        log_warn("cannot write %s: %s", p, strerror(errno));
    close(fd);
}

static char *task_path(const agent_node_t *n, const agent_task_t *t, const char *kind)
{
    return str_printf("%s/%s/%s", n->dir, kind, t->esc);
}

/* The attempt dirs a node's pool is given at the start: about what it
 * holds at once in a burst (its running attempts, one a GPU, and as many
 * ended ones waiting for their acks), so that neither its first tasks nor
 * its busiest moments make dirs (docs/agent.md, "State on disk").  More
 * are made when needed, as before. */
static size_t pool_fill_want(const agent_node_t *n)
{
    if (n->cfg->pool_fill)
        return n->cfg->pool_fill > 0 ? (size_t)n->cfg->pool_fill : 0;
    size_t want = 2 * n->gpus.n + 4;
    return want < POOL_FILL_MIN ? POOL_FILL_MIN : want > POOL_FILL_MAX ? POOL_FILL_MAX : want;
}

void task_dirs_init(agent_node_t *n)
{
    char p[1100];
    agent_umask = umask(022); /* the loop's (a dirpool worker makes no file) */
    umask(agent_umask);
    snprintf(p, sizeof(p), "%s/tasks", n->dir);
    mkdir_p(p, 0711);
    snprintf(p, sizeof(p), "%s/logs", n->dir);
    mkdir_p(p, 0700);
    snprintf(p, sizeof(p), "%s/tasks", n->dir);
    if (!dirpool_init(&n->pool, p)) {
        log_warn("node=%s cannot use %s: %s", n->name, p, strerror(errno));
        return;
    }
    /* an older agent's pool dir: its entries are no attempt's */
    snprintf(p, sizeof(p), "%s/pool", n->dir);
    dirpool_discard(&n->pool, p);
}

/* The dir of t (taken or found): its slot's, else tasks/<esc>. */
static char *task_dir(const agent_node_t *n, const agent_task_t *t)
{
    if (t->slot < 0)
        return task_path(n, t, "tasks");
    char p[1200];
    dirpool_path(&n->pool, t->slot, p, sizeof(p));
    return xstrdup(p);
}

/* t's dir is free: its slot emptied for the next attempt (an older
 * agent's dir renamed to a slot first). */
static void task_dir_put(agent_node_t *n, const agent_task_t *t)
{
    if (t->slot >= 0) {
        dirpool_put(&n->pool, t->slot, t->cwd_only);
        return;
    }
    char *dir = task_path(n, t, "tasks");
    if (dir)
        dirpool_put_path(&n->pool, dir);
    free(dir);
}

/* ---- the attempt table -------------------------------------------------- */

agent_task_t *task_find(const agent_node_t *n, const char *id)
{
    return strmap_get(n->by_id, id);
}

static agent_task_t *task_add(agent_node_t *n, const char *id)
{
    agent_task_t *t = xcalloc(1, sizeof(*t));
    t->id = xstrdup(id);
    if (!rt_escape_id(id, t->esc, sizeof(t->esc)))
        str_copy(t->esc, "invalid", sizeof(t->esc));
    t->rt.notify_fd = -1;
    t->ops = n->rt;
    t->kill_grace_ms = DEFAULT_GRACE_MS;
    t->meta.sim_util = -1;
    t->slot = -1;
    VEC_XRESERVE(n->tasks, n->cap, n->ntasks + 1);
    /* not acked: into the first part, whose first tombstone moves last */
    n->tasks[n->ntasks++] = n->tasks[n->nlive];
    n->tasks[n->nlive++] = t;
    if (strmap_put(n->by_id, t->id, t) != PAI_OK)
        abort(); /* only a NULL value fails */
    return t;
}

/* t is acked: a tombstone from now on (after the attempts not acked). */
static void task_tombstone(agent_node_t *n, agent_task_t *t)
{
    t->acked = true;
    for (size_t i = 0; i < n->nlive; i++)
        if (n->tasks[i] == t) {
            n->tasks[i] = n->tasks[--n->nlive];
            n->tasks[n->nlive] = t;
            return;
        }
}

void task_free(agent_node_t *n, agent_task_t *t)
{
    (void)n;
    if (t->has_rt)
        t->ops->release(&t->rt);
    free(t->diagnostics);
    metrics_task_meta_free(&t->meta);
    free(t->stats.cgroup);
    free(t->id);
    free(t);
}

static void task_remove_at(agent_node_t *n, size_t i)
{
    agent_task_t *t = n->tasks[i];
    if (strmap_get(n->by_id, t->id) == t)
        (void)strmap_take(n->by_id, t->id);
    if (i < n->nlive) { /* the last not acked fills it, the last one its place */
        n->tasks[i] = n->tasks[--n->nlive];
        i = n->nlive;
    }
    n->tasks[i] = n->tasks[--n->ntasks];
    task_free(n, t);
}

/* ---- attempt lifecycle -------------------------------------------------- */

static void task_finish(agent_node_t *n, agent_task_t *t, const rt_result_t *res)
{
    int64_t now = time_mono_ms();
    if (t->started_here && t->phase == RC_ACTIVE && res->state != RT_FAILED_TO_START)
        report_ran(n, now - t->start_mono_ms); /* ended by itself: the node's run time */
    t->phase = RC_DONE;
    t->res = *res;
    if (t->has_rt) {
        t->ops->release(&t->rt);
        t->has_rt = false;
    }
    /* an attempt this process started has flat logs: no older agent's
     * log dir to look for (a stat per end); a task its monitor saw write
     * nothing to stderr has no tail to read (two stats per end) */
    char *logs = res->quiet || n->cfg->hollow ? NULL
                 : t->started_here            ? str_printf("%s/logs/%s.", n->dir, t->esc)
                                              : node_log_prefix(n, t->id);
    size_t len = 0;
    free(t->diagnostics);
    t->diagnostics = logs ? rt_log_tail(logs, "stderr", DIAG_BYTES, &len) : NULL;
    if (!t->diagnostics && !n->cfg->hollow)
        t->diagnostics = xstrdup(""); /* a silent task has no stderr file */
    free(logs);
    n->dirty = true;
    if (!n->ended_ms)
        n->ended_ms = now;
    log_info("node=%s task=%s exited code=%d signal=%d oom=%d", n->name, t->id, res->exit_code,
             res->signal, res->oom);
}

static void task_fail_start(agent_node_t *n, agent_task_t *t, int code, const char *why)
{
    rt_result_t res = {.state = RT_FAILED_TO_START, .exit_code = code};
    res.started_ms = res.finished_ms = time_wall_ms();
    task_finish(n, t, &res);
    free(t->diagnostics);
    t->diagnostics = xstrdup(why);
}

void task_poll(agent_node_t *n, agent_task_t *t)
{
    rt_result_t res;
    if (t->phase != RC_DONE && t->has_rt && t->ops->poll(t->ops, &t->rt, &res))
        task_finish(n, t, &res);
}

static bool env_has(const agentwire_task_t *d, const char *name)
{
    for (size_t i = 0; i < d->nenv; i++)
        if (strcmp(d->env[i].name, name) == 0)
            return true;
    return false;
}

/* "NAME=VALUE" in one allocation, copied: about 30 a task start, where
 * str_printf's formatting cost more than the copy. */
static char *env_pair(const char *name, const char *value)
{
    size_t a = strlen(name), b = strlen(value);
    char *s = xmalloc(a + 1 + b + 1);
    memcpy(s, name, a);
    s[a] = '=';
    memcpy(s + a + 1, value, b + 1);
    return s;
}

/* Env list: a minimal base, then the server's env, then GPU defaults and
 * the node's accelerator variables (gpu_task_env: AMD's, a class's). */
static char **build_env(const agent_node_t *n, const agentwire_task_t *d, const char *home,
                        const char *user, bool container)
{
    size_t k = 0;
    char **out = xcalloc(d->nenv + 15, sizeof(char *));
    out[k++] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    out[k++] = env_pair("HOME", home);
    out[k++] = xstrdup("LANG=C.UTF-8");
    if (user) { /* the task's uid has no passwd entry: name it here */
        out[k++] = env_pair("USER", user);
        out[k++] = env_pair("LOGNAME", user);
    }
    /* as login(1) would; without it bash asks NSS for the passwd entry
     * the task's uid does not have (rt_process_shell): ~0.3 ms a task */
    if (!container && !env_has(d, "SHELL"))
        out[k++] = env_pair("SHELL", rt_process_shell());
    for (size_t i = 0; i < d->nenv; i++)
        out[k++] = env_pair(d->env[i].name, d->env[i].value);
    bool cuda = env_has(d, "CUDA_VISIBLE_DEVICES"), nv = env_has(d, "NVIDIA_VISIBLE_DEVICES");
    if (!cuda || !nv) {
        buf_t b;
        buf_init(&b, 4096);
        for (size_t i = 0; i < d->ngpus; i++)
            if (buf_printf(&b, "%s%d", i ? "," : "", d->gpus[i]) != PAI_OK)
                break;
        const char *list = b.len ? buf_str(&b) : "none";
        if (!cuda)
            out[k++] = env_pair("CUDA_VISIBLE_DEVICES", list);
        if (!nv)
            out[k++] = env_pair("NVIDIA_VISIBLE_DEVICES", list);
        buf_free(&b);
    }
    k += gpu_task_env(&n->gpus, d->gpus, d->ngpus, container, out + k);
    out[k] = NULL;
    return out;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Storage mounts (the desired task's optional "mounts"). */
static rt_mount_t *spec_mounts(const agentwire_task_t *d, size_t *n)
{
    rt_mount_t *out = xcalloc(d->nmounts + 1, sizeof(*out));
    for (size_t i = 0; i < d->nmounts; i++)
        out[i] = (rt_mount_t){.source = (char *)d->mounts[i].source,
                              .target = (char *)d->mounts[i].target,
                              .readonly = d->mounts[i].readonly};
    *n = d->nmounts;
    return out;
}

typedef struct {
    rt_spec_t spec;
    char **env;
    int gpus[GPU_MAX];
    rt_mount_t *mounts;
    char *state, *cwd, *logs, *cgroup, name[64];
    rt_device_t devices[GPU_MAX + GPU_SHARED_MAX];
    const char *fence[GPU_MAX];
    gid_t groups[GPU_SHARED_MAX + 2];
} spec_buf_t;

/* The group of a device node others may not open, once in groups. */
static void device_group(spec_buf_t *b, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || (st.st_mode & S_IROTH && st.st_mode & S_IWOTH) || st.st_gid == 0)
        return;
    for (size_t i = 0; i < b->spec.n_groups; i++)
        if (b->groups[i] == st.st_gid)
            return;
    if (b->spec.n_groups < ARRAY_LEN(b->groups))
        b->groups[b->spec.n_groups++] = st.st_gid;
}

/* AMD GPUs and device classes: the task's device nodes and the shared ones
 * (only when it holds some), the class's others to fence off, and the
 * groups to open them with.  NVIDIA keeps the runtime's own rule. */
static void spec_devices(const agent_node_t *n, const agentwire_task_t *d, spec_buf_t *b)
{
    const gpu_set_t *g = &n->gpus;
    rt_spec_t *s = &b->spec;
    if (g->vendor == GPU_VENDOR_NVIDIA)
        return;
    s->own_devices = true;
    for (size_t i = 0; i < g->n; i++) {
        bool held = false;
        for (size_t k = 0; k < d->ngpus; k++)
            held = held || d->gpus[k] == g->gpus[i].index;
        if (!*g->gpus[i].dev)
            continue;
        if (held) {
            b->devices[s->n_devices++] =
                (rt_device_t){g->gpus[i].dev, gpu_container_path(g->gpus[i].dev)};
            device_group(b, g->gpus[i].dev);
        } else {
            b->fence[s->n_fence++] = g->gpus[i].dev;
        }
    }
    for (size_t i = 0; s->n_devices && i < g->nshared; i++) {
        b->devices[s->n_devices++] = (rt_device_t){g->shared[i], gpu_container_path(g->shared[i])};
        device_group(b, g->shared[i]);
    }
    s->devices = b->devices;
    s->fence = b->fence;
    s->groups = b->groups;
}

static void spec_free(spec_buf_t *b)
{
    free_strv(b->env);
    free(b->mounts);
    free(b->state);
    free(b->cwd);
    free(b->logs);
    free(b->cgroup);
}

/* A short name for the container, unique on the host (FNV-1a of the agent
 * process's boot id, the node and the attempt): several agents, even with
 * the same node names (tests), may share a host and its engine. */
static void attempt_name(const agent_node_t *n, const char *id, char *out, size_t len)
{
    uint64_t h = hash_fnv1a(hash_fnv1a(hash_fnv1a(FNV1A_INIT, n->boot_id), n->name), id);
    snprintf(out, len, "pai-%016llx", (unsigned long long)h);
}

/* The pai user an attempt belongs to: the desired task's "user", else the
 * job name's "user~" prefix; NULL when neither names one. */
static const char *task_user(const agentwire_task_t *d, const char *id, char *buf, size_t n)
{
    if (d->user && str_is_name(d->user))
        return d->user;
    const char *tilde = strchr(id, '~');
    if (!tilde || (size_t)(tilde - id) >= n)
        return NULL;
    snprintf(buf, n, "%.*s", (int)(tilde - id), id);
    return str_is_name(buf) ? buf : NULL;
}

/* The task's identity (spec->isolate) when the node isolates tasks: the
 * server's offset for its owner, else the node's map.  False when it
 * cannot have one: the task must not run. */
static bool spec_identity(agent_node_t *n, rt_spec_t *s, const char *user,
                          const agentwire_task_t *d)
{
    uid_t uid;
    if (!n->uids)
        return true;
    pai_err_t rc = d->has_task_uid ? taskuid_at(n->uids, d->task_uid, &uid)
                   : user          ? taskuid_get(n->uids, user, &uid)
                                   : PAI_E_INVALID;
    if (rc != PAI_OK) {
        log_warn("node=%s task=%s no task uid for user %s: %s", n->name, s->attempt_id,
                 user ? user : "(none)", pai_err_msg(rc));
        return false;
    }
    s->isolate = true;
    s->uid = uid;
    s->gid = (gid_t)uid;
    return true;
}

static bool spec_fill(agent_node_t *n, agent_task_t *t, const agentwire_task_t *d, spec_buf_t *b)
{
    rt_spec_t *s = &b->spec;
    char ubuf[300];
    memset(b, 0, sizeof(*b));
    const char *user = task_user(d, t->id, ubuf, sizeof(ubuf));
    b->state = task_dir(n, t);
    b->logs = str_printf("%s/logs/%s.", n->dir, t->esc);
    b->cwd = str_printf("%s/cwd", b->state);
    /* unique per agent process too (the monitor alone uses the path) */
    b->cgroup = str_printf("pai/%s/%s.%.8s", n->name, t->esc, n->boot_id);
    attempt_name(n, t->id, b->name, sizeof(b->name));
    bool container = n->rt->engine && d->image && *d->image;
    b->env = build_env(n, d, b->cwd, user, container);
    s->attempt_id = t->id;
    s->name = b->name;
    s->command = d->command ? d->command : "true";
    s->env = b->env;
    s->state_dir = b->state;
    s->cwd = b->cwd;
    s->log_prefix = b->logs;
    s->cgroup = b->cgroup;
    s->memory_mb = d->memory_mb;
    s->cpu = d->cpu;
    s->shm_mb = d->shm_mb;
    for (size_t i = 0; i < d->ngpus && i < GPU_MAX; i++)
        b->gpus[s->n_gpus++] = d->gpus[i];
    s->gpus = b->gpus;
    s->image = d->image;
    s->image_user = d->image_user;
    s->image_password = d->image_password;
    s->image_registry = d->image_registry;
    b->mounts = spec_mounts(d, &s->n_mounts);
    s->mounts = b->mounts;
    s->log_max_bytes = n->cfg->log_max_bytes;
    s->gpu_dev_dir = n->cfg->gpu_dev_dir;
    spec_devices(n, d, b);
    return spec_identity(n, s, user, d);
}

void task_start(agent_node_t *n, const agentwire_task_t *d)
{
    const char *id = d->attempt_id;
    agent_task_t *t = task_add(n, id);
    spec_buf_t b;
    int grace = d->kill_grace_ms;
    t->kill_grace_ms = grace > 0 && grace < 3600000 ? grace : DEFAULT_GRACE_MS;
    t->phase = RC_ACTIVE;
    t->started_here = true;
    t->start_mono_ms = time_mono_ms();
    if (!n->start_ms)
        n->start_ms = t->start_mono_ms;
    n->dirty = true;
    metrics_task_meta(&t->meta, d);
    t->cpu = d->cpu;
    /* a slot comes with its record holding the id line first (then a pad
     * line over the last attempt's lines, dirpool.h) */
    int fd = n->cfg->hollow ? -1 : dirpool_take(&n->pool, id, &t->slot);
    if (fd >= 0)
        t->slot_gen = dirpool_gen(&n->pool, t->slot);
    else
        t->slot = -1;
    bool have_identity = spec_fill(n, t, d, &b);
    t->stats.cgroup = xstrdup(b.cgroup); /* where metrics.c reads its figures */
    if (!n->cfg->hollow) {
        if (fd < 0) { /* no slot: a dir of its own, named by its id */
            mkdir_p(b.state, 0711);
            mkdir_p(b.cwd, 0700); /* the monitor gives it to the task's uid */
            fd = rt_record_open(b.state, id);
        }
        /* the log dir: the monitor's, on the task's first line of output;
         * the record's fd goes to the per-agent monitor with the start */
        if (fd < 0)
            write_small(b.state, "id", id);
        b.spec.record_fd = fd > 0 ? fd : 0;
        if (fd == 0)
            close(fd);
    }
    /* Container runtimes run image-less tasks as plain processes. */
    if (n->rt->engine && (!b.spec.image || !*b.spec.image))
        t->ops = runtime_find("process");
    if (!d->command) {
        /* never run something else (an empty script exits 0) in its place */
        task_fail_start(n, t, EXIT_CONTAINER_START_UNKNOWN,
                        "pai agent: the server sent no command for this task");
    } else if (!have_identity) {
        task_fail_start(n, t, EXIT_CONTAINER_START_UNKNOWN,
                        "pai agent: no task uid for this user (see the agent's log)");
    } else if (t->ops->start(t->ops, &b.spec, &t->rt) != PAI_OK) {
        task_fail_start(n, t, EXIT_CONTAINER_START_UNKNOWN, "pai agent: cannot start the task");
    } else {
        t->has_rt = true;
        log_info("node=%s task=%s started runtime=%s", n->name, id, t->ops->name);
    }
    /* an unprivileged uid cannot write in the agent's 0711 slot, and the
     * process runtime writes there only through the record: its ack reads
     * the slot's cwd alone (a container engine's command file, the agent's
     * `id` or `acked` file, a root task's files: the whole slot) */
    t->cwd_only = t->slot >= 0 && b.spec.isolate && !t->ops->engine && b.spec.record_fd > 0;
    if (b.spec.record_fd > 0)
        close(b.spec.record_fd);
    spec_free(&b);
}

void task_stop(agent_node_t *n, agent_task_t *t, int64_t now)
{
    if (!t->has_rt)
        return;
    t->phase = RC_STOPPING;
    t->stop_deadline_ms = now + t->kill_grace_ms;
    t->ops->kill(t->ops, &t->rt, false, t->kill_grace_ms / 1000);
    log_info("node=%s task=%s stopping grace_ms=%d", n->name, t->id, t->kill_grace_ms);
}

/* ---- the journal of acked attempts -------------------------------------- */

static char *journal_path(const agent_node_t *n)
{
    return str_printf("%s/acked-attempts", n->dir);
}

/* The journal is kept open (O_APPEND) from the first ack to its next
 * rewrite.  The lines of a sync answer's acks go in one write (whole
 * lines), not one write each; in[i] says whether ts[i]'s is among them (an
 * id with a newline cannot be a line).  False when the write failed. */
static bool journal_append(agent_node_t *n, agent_task_t *const *ts, size_t k, bool *in)
{
    if (n->journal_fd < 0) {
        char *p = journal_path(n);
        n->journal_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        free(p);
    }
    buf_t b;
    buf_init(&b, (size_t)-1);
    size_t lines = 0;
    bool ok = n->journal_fd >= 0;
    for (size_t i = 0; ok && i < k; i++) {
        in[i] = !strchr(ts[i]->id, '\n');
        if (in[i])
            ok = buf_puts(&b, ts[i]->id) == PAI_OK && buf_append(&b, "\n", 1) == PAI_OK;
        lines += in[i];
    }
    ok = ok && (b.len == 0 || fs_write_all(n->journal_fd, b.data, b.len));
    buf_free(&b);
    n->acked_lines += ok ? lines : 0;
    return ok;
}

void task_journal_close(agent_node_t *n)
{
    if (n->journal_fd >= 0)
        close(n->journal_fd);
    n->journal_fd = -1;
}

/* Rewrite the journal with the acked attempts still remembered, once the
 * forgotten ones are most of it. */
static void journal_compact(agent_node_t *n)
{
    size_t live = 0;
    for (size_t i = 0; i < n->ntasks; i++)
        live += n->tasks[i]->acked;
    if (n->acked_lines <= 2 * live + 1024)
        return;
    buf_t b;
    buf_init(&b, (live + 1) * (PAI_MAX_ATTEMPT_ID + 1));
    bool ok = true;
    for (size_t i = 0; ok && i < n->ntasks; i++)
        if (n->tasks[i]->acked)
            ok = buf_printf(&b, "%s\n", n->tasks[i]->id) == PAI_OK;
    char *p = journal_path(n);
    if (ok && fs_write_atomic(p, b.len ? b.data : "", b.len, 0600) == PAI_OK) {
        n->acked_lines = live;
        task_journal_close(n); /* the open one is the replaced file */
    } else
        log_warn("node=%s cannot rewrite %s: %s", n->name, p, strerror(errno));
    free(p);
    buf_free(&b);
}

/* The acked attempts of the journal, as tombstones whose dirs are gone (a
 * dir still there is found by the scan: recover_one). */
static void journal_load(agent_node_t *n)
{
    buf_t b;
    buf_init(&b, 256u << 20);
    char *p = journal_path(n);
    pai_err_t rc = buf_read_file(&b, p);
    if (rc != PAI_OK && errno != ENOENT)
        log_warn("node=%s cannot read %s: %s", n->name, p, pai_err_msg(rc));
    free(p);
    int64_t now = time_mono_ms();
    char *s = rc == PAI_OK && b.len ? (char *)buf_str(&b) : NULL;
    while (s && *s) {
        char *nl = strchr(s, '\n');
        if (!nl)
            break; /* a line cut by a crash */
        *nl = '\0';
        if (*s) { /* unique lines: no task_find (this runs before the scan) */
            agent_task_t *t = task_add(n, s);
            t->phase = RC_DONE;
            task_tombstone(n, t);
            t->acked_mono_ms = now;
            t->dir_gone = true;
            n->acked_lines++;
        }
        s = nl + 1;
    }
    buf_free(&b);
}

void task_mark_acked(agent_node_t *n, agent_task_t *t)
{
    task_mark_acked_all(n, &t, 1);
}

void task_mark_acked_all(agent_node_t *n, agent_task_t *const *ts, size_t k)
{
    bool stack[64], *in = k <= ARRAY_LEN(stack) ? stack : xcalloc(k, sizeof(*in));
    int64_t now = time_mono_ms();
    bool journaled = !n->cfg->hollow && k && journal_append(n, ts, k, in);
    for (size_t i = 0; i < k; i++) {
        agent_task_t *t = ts[i];
        task_tombstone(n, t);
        t->acked_mono_ms = now;
        if (n->cfg->hollow)
            continue;
        if (journaled && in[i]) {
            /* remembered by the journal: the dir is free for the next
             * attempt now (a new inode is the dearest part of a short
             * task's bookkeeping, docs/benchmarks-history.md) */
            task_dir_put(n, t);
            t->dir_gone = true;
            continue;
        }
        char *dir = task_dir(n, t);
        t->cwd_only = false; /* an `acked` file may be written */
        if (dir && rt_record_append(dir, "acked\n") != 0) {
            write_small(dir, "acked", "1\n");
        }
        free(dir);
    }
    if (in != stack)
        free(in);
}

char *node_log_prefix(const agent_node_t *n, const char *attempt_id)
{
    char esc[512];
    struct stat st;
    if (!rt_escape_id(attempt_id, esc, sizeof(esc)))
        return NULL;
    char *p = str_printf("%s/logs/%s/", n->dir, esc);
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
        return p; /* an older agent's monitor's */
    p[strlen(p) - 1] = '.';
    if (task_find(n, attempt_id))
        return p; /* a silent task has none: its logs read as empty */
    static const char *const kinds[] = {"all", "stdout", "stderr"};
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
        char *f = str_printf("%s%s", p, kinds[i]);
        bool there = access(f, F_OK) == 0;
        free(f);
        if (there)
            return p;
    }
    free(p);
    return NULL;
}

/* ---- re-adoption and removal ------------------------------------------- */

/* The attempt id a state dir holds: the record's "id" line, else an older
 * agent's `id` file.  False when neither is there. */
static bool recover_id(const char *dir, char *id, size_t n)
{
    if (rt_record_get(dir, "id ", id, n))
        return *id != '\0';
    buf_t b;
    buf_init(&b, n - 1);
    char *idp = str_printf("%s/id", dir);
    pai_err_t rc = buf_read_file(&b, idp);
    free(idp);
    bool ok = rc == PAI_OK && b.len > 0;
    if (ok)
        str_copy(id, buf_str(&b), n);
    buf_free(&b);
    return ok;
}

/* One entry of tasks/: a slot (dirpool.h) or an older agent's dir named
 * by its attempt.  A slot is free when its record has no whole "id" line
 * or names an attempt the journal knows as acked; else it is an attempt's,
 * as a dir of an older agent's always is. */
static void recover_one(agent_node_t *n, const char *name)
{
    char dir[1300], id[1024] = "", line[8];
    int slot = dirpool_slot(name);
    snprintf(dir, sizeof(dir), "%s/tasks/%s", n->dir, name);
    if (!recover_id(dir, id, sizeof(id))) {
        if (slot >= 0) /* no attempt's: emptied for the pool */
            dirpool_reclaim(&n->pool, slot);
        return;
    }
    agent_task_t *known = task_find(n, id);
    if (known && known->acked && slot >= 0) { /* in the journal: free */
        dirpool_reclaim(&n->pool, slot);
        known->slot = slot;
        known->slot_gen = dirpool_gen(&n->pool, slot);
        return;
    }
    if (known) { /* in the journal: its dir goes to the pool when forgotten */
        known->dir_gone = false;
        return;
    }
    agent_task_t *t = task_add(n, id);
    t->slot = slot;
    t->slot_gen = dirpool_gen(&n->pool, slot);
    char *acked = str_printf("%s/acked", dir);
    bool is_acked =
        rt_record_get(dir, "acked", line, sizeof(line)) || (acked && access(acked, F_OK) == 0);
    free(acked);
    t->rt.state_dir = xstrdup(dir);
    if (is_acked) {
        t->phase = RC_DONE;
        task_tombstone(n, t);
        t->acked_mono_ms = time_mono_ms();
        t->ops->release(&t->rt);
        return;
    }
    t->phase = RC_ACTIVE;
    if (t->ops->adopt(t->ops, &t->rt)) {
        t->has_rt = true;
        log_info("node=%s task=%s re-adopted", n->name, t->id);
        task_poll(n, t);
        return;
    }
    t->ops->release(&t->rt);
    rt_result_t res = {.state = RT_EXITED, .exit_code = EXIT_NODE_LOST};
    res.started_ms = res.finished_ms = time_wall_ms();
    task_finish(n, t, &res);
    char text[64];
    snprintf(text, sizeof(text), "exited %d 0 0 0 0\n", EXIT_NODE_LOST);
    write_small(dir, "exit", text);
}

/* What a node's first attempts would otherwise make, made before it takes
 * any (docs/agent.md, "A warm start"): the journal of acked attempts (a
 * new inode: on ext4 without a journal its search skips the recently
 * deleted ones, ~0.6 ms at the first ack of a node on a busy disk) and,
 * for the process runtime, its monitor with an idle cgroup a GPU
 * (runtime_ops_t.warm). */
static void node_warm(agent_node_t *n)
{
    if (n->journal_fd < 0) {
        char *p = journal_path(n);
        n->journal_fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        free(p);
    }
    if (n->rt && n->rt->warm) {
        char *dir = str_printf("pai/%s", n->name); /* the parent of task_start's cgroups */
        size_t slots = n->gpus.n < WARM_SLOTS_MIN   ? WARM_SLOTS_MIN
                       : n->gpus.n > WARM_SLOTS_MAX ? WARM_SLOTS_MAX
                                                    : n->gpus.n;
        n->rt->warm(dir, (unsigned)slots);
        free(dir);
    }
}

void node_recover(agent_node_t *n)
{
    char p[1100];
    if (n->cfg->hollow)
        return;
    journal_load(n);
    snprintf(p, sizeof(p), "%s/tasks", n->dir);
    DIR *d = opendir(p);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            recover_one(n, e->d_name);
    closedir(d);
    n->dirty = true;
    /* after the scan: the free slots it found count */
    dirpool_fill(&n->pool, pool_fill_want(n));
    node_warm(n);
}

void task_prune_tombstones(agent_node_t *n, int64_t now)
{
    for (size_t i = 0; i < n->ntasks; i++) {
        agent_task_t *t = n->tasks[i];
        if (!t->acked || now - t->acked_mono_ms < TOMBSTONE_MS)
            continue;
        if (!n->cfg->hollow && !t->dir_gone)
            task_dir_put(n, t);
        else if (!n->cfg->hollow) /* the journal is about to drop it */
            dirpool_forget(&n->pool, t->slot, t->slot_gen);
        task_remove_at(n, i--);
    }
    if (!n->cfg->hollow)
        journal_compact(n);
}
