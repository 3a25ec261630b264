/*
 * node.c - one node of `pai agent`: its attempts, the sync conversation
 * and the reconcile step (docs/agent-protocol.md).
 *
 * State kept on disk, per attempt, under <node dir>/tasks/<escaped id>/:
 *   id       the attempt id (the escape is not reversible)
 *   monitor, task, exit   written by the runtime's monitor (runtime.h)
 *   acked    the server has recorded the end: do not report it again
 *   <node dir>/node.credential  the node's credential (0600), issued by
 *            the server at registration or rotation; without it the
 *            agent presents the join token (cfg->token).
 *   <node dir>/node.logkey  the key the server presents to read this
 *            node's task logs (0600), from the server's answers.
 * The directory is created before the attempt starts, so an attempt whose
 * directory exists was started by this node ("never twice"), also across
 * agent restarts.  Tombstones (acked attempts) are dropped after
 * TOMBSTONE_MS.  Logs live in <node dir>/logs/<escaped id>/ and are kept.
 *
 * Modes (docs/security.md): a task runs as its user's uid (taskuid.h) and
 * must reach <node dir>/tasks/<id>/cwd (0700, its own) by path, so the node
 * dir, tasks/ and tasks/<id>/ are 0711 (passable, not listable) and every
 * file of the agent's in them is 0600; logs/ is 0700: the agent serves it.
 */
#include "agent/agent.h"
#include "agent/taskuid.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hash.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "wire/agentwire.h"
#include "common/vec.h"

#define TOMBSTONE_MS     (10 * 60 * 1000)
#define ADOPTED_POLL_MS  250
#define DEFAULT_GRACE_MS 10000
#define DIAG_BYTES       2048
#define MAX_ID           400 /* longer desired ids are ignored */

/* ---- small helpers ------------------------------------------------------ */

/* Best effort: a directory that cannot be made shows up as the task's own
 * failure to start, with its reason.  The mode is set whatever the umask,
 * and on a directory an older agent made with another. */
static void mkdir_p(const char *path, mode_t mode)
{
    if (fs_mkdir_p(path, mode) != PAI_OK || chmod(path, mode) != 0)
        log_debug("cannot create %s: %s", path, strerror(errno));
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

/* Remove at's entry `name` and everything under it, never following a
 * symlink: the tree holds the task's working dir, which a process the
 * task left behind may still change while it is removed (as root). */
static void rm_at(int at, const char *name, int depth)
{
    if (unlinkat(at, name, 0) == 0 || errno != EISDIR || depth > 64)
        return;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rm_at(dirfd(d), e->d_name, depth + 1);
    closedir(d);
    unlinkat(at, name, AT_REMOVEDIR);
}

static void rm_rf(const char *path)
{
    rm_at(AT_FDCWD, path, 0);
}

static char *task_path(const agent_node_t *n, const agent_task_t *t, const char *kind)
{
    return str_printf("%s/%s/%s", n->dir, kind, t->esc);
}

static void random_hex(char *out, size_t bytes)
{
    unsigned char r[32];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    bytes = bytes > sizeof(r) ? sizeof(r) : bytes;
    if (fd < 0 || read(fd, r, bytes) != (ssize_t)bytes)
        for (size_t i = 0; i < bytes; i++)
            r[i] = (unsigned char)(time_mono_us() >> (i % 8));
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* ---- the node's credential ---------------------------------------------- */

#define CRED_FILE "node.credential"

/* The Authorization header for the next syncs: the node's credential, else
 * the join token. */
static void set_auth(agent_node_t *n)
{
    const char *tok = *n->cred ? n->cred : (n->cfg->token ? n->cfg->token : "");
    char *auth = str_printf("Authorization: Bearer %s", tok);
    curl_slist_free_all(n->headers);
    n->headers = curl_slist_append(NULL, "Content-Type: application/json");
    n->headers = curl_slist_append(n->headers, auth);
    sodium_memzero(auth, strlen(auth));
    free(auth);
}

static void cred_load(agent_node_t *n)
{
    char p[1100];
    buf_t b;
    snprintf(p, sizeof p, "%s/" CRED_FILE, n->dir);
    buf_init(&b, PAI_MAX_NODE_CRED + 2);
    if (buf_read_file(&b, p) == PAI_OK) {
        str_copy(n->cred, buf_str(&b), sizeof n->cred);
        n->cred[strcspn(n->cred, "\r\n")] = '\0';
        if (*n->cred)
            log_info("node=%s syncs with its credential (%s)", n->name, p);
    }
    buf_free(&b);
}

/* Keep a credential the server issued: durably first (the server counts it
 * the node's once it is presented), then present it from the next sync. */
static void cred_keep(agent_node_t *n, const char *cred)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/" CRED_FILE, n->dir);
    int fd = -1;
    if (fs_mkdir_p(n->dir, 0711) != PAI_OK ||
        fs_write_atomic(p, cred, strlen(cred), 0600) != PAI_OK ||
        (fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) != 0) {
        /* Keep presenting what we have: the server issues again. */
        log_error("node=%s cannot keep its credential in %s: %s", n->name, p, strerror(errno));
    } else {
        str_copy(n->cred, cred, sizeof n->cred);
        set_auth(n);
        log_info("node=%s credential issued by the server, kept in %s", n->name, p);
    }
    if (fd >= 0)
        close(fd);
}

/* The node's log key from the server's answers: kept (for a restarted
 * agent's log server), then accepted by the log server for this node. */
static void logkey_keep(agent_node_t *n, const char *key)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/node.logkey", n->dir);
    if (fs_mkdir_p(n->dir, 0711) != PAI_OK || fs_write_atomic(p, key, strlen(key), 0600) != PAI_OK)
        log_warn("node=%s cannot keep its log key in %s: %s", n->name, p, strerror(errno));
    str_copy(n->log_key, key, sizeof n->log_key);
}

static void logkey_load(agent_node_t *n)
{
    char p[1100];
    buf_t b;
    snprintf(p, sizeof p, "%s/node.logkey", n->dir);
    buf_init(&b, PAI_MAX_NODE_CRED + 2);
    if (buf_read_file(&b, p) == PAI_OK) {
        str_copy(n->log_key, buf_str(&b), sizeof n->log_key);
        n->log_key[strcspn(n->log_key, "\r\n")] = '\0';
    }
    buf_free(&b);
}

/* The server refused the node's credential (revoked by an admin, or
 * replaced): forget it and register again with the join token, which the
 * server allows only while no other credential of the node is in use. */
static void cred_drop(agent_node_t *n)
{
    char p[1100];
    snprintf(p, sizeof p, "%s/" CRED_FILE, n->dir);
    log_warn("node=%s its credential was refused (revoked or replaced): registering again "
             "with the join token",
             n->name);
    if (unlink(p) != 0 && errno != ENOENT)
        log_warn("node=%s cannot remove %s: %s", n->name, p, strerror(errno));
    sodium_memzero(n->cred, sizeof n->cred);
    set_auth(n);
}

/* ---- the attempt table -------------------------------------------------- */

static agent_task_t *task_find(const agent_node_t *n, const char *id)
{
    for (size_t i = 0; i < n->ntasks; i++)
        if (strcmp(n->tasks[i]->id, id) == 0)
            return n->tasks[i];
    return NULL;
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
    VEC_XRESERVE(n->tasks, n->cap, n->ntasks + 1);
    n->tasks[n->ntasks++] = t;
    return t;
}

static void task_free(agent_node_t *n, agent_task_t *t)
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
    task_free(n, n->tasks[i]);
    n->tasks[i] = n->tasks[--n->ntasks];
}

/* ---- attempt lifecycle -------------------------------------------------- */

static void task_finish(agent_node_t *n, agent_task_t *t, const rt_result_t *res)
{
    t->phase = RC_DONE;
    t->res = *res;
    if (t->has_rt) {
        t->ops->release(&t->rt);
        t->has_rt = false;
    }
    char *logs = task_path(n, t, "logs");
    size_t len = 0;
    free(t->diagnostics);
    t->diagnostics = logs && !n->cfg->hollow ? rt_log_tail(logs, "stderr", DIAG_BYTES, &len) : NULL;
    struct stat st;
    if (!t->diagnostics && logs && !n->cfg->hollow && stat(logs, &st) == 0)
        t->diagnostics = xstrdup(""); /* a silent task has no stderr file */
    free(logs);
    n->dirty = true;
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

static void task_poll(agent_node_t *n, agent_task_t *t)
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

/* Env list: a minimal base, then the server's env, then GPU defaults. */
static char **build_env(const agentwire_task_t *d, const char *home, const char *user)
{
    size_t k = 0;
    char **out = xcalloc(d->nenv + 10, sizeof(char *));
    out[k++] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    out[k++] = str_printf("HOME=%s", home);
    out[k++] = xstrdup("LANG=C.UTF-8");
    if (user) { /* the task's uid has no passwd entry: name it here */
        out[k++] = str_printf("USER=%s", user);
        out[k++] = str_printf("LOGNAME=%s", user);
    }
    for (size_t i = 0; i < d->nenv; i++)
        out[k++] = str_printf("%s=%s", d->env[i].name, d->env[i].value);
    bool cuda = env_has(d, "CUDA_VISIBLE_DEVICES"), nv = env_has(d, "NVIDIA_VISIBLE_DEVICES");
    if (!cuda || !nv) {
        buf_t b;
        buf_init(&b, 4096);
        for (size_t i = 0; i < d->ngpus; i++)
            if (buf_printf(&b, "%s%d", i ? "," : "", d->gpus[i]) != PAI_OK)
                break;
        const char *list = b.len ? buf_str(&b) : "none";
        if (!cuda)
            out[k++] = str_printf("CUDA_VISIBLE_DEVICES=%s", list);
        if (!nv)
            out[k++] = str_printf("NVIDIA_VISIBLE_DEVICES=%s", list);
        buf_free(&b);
    }
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
} spec_buf_t;

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

/* The task's identity (spec->isolate) when the node isolates tasks.
 * False when it cannot have one: the task must not run. */
static bool spec_identity(agent_node_t *n, rt_spec_t *s, const char *user)
{
    uid_t uid;
    if (!n->uids)
        return true;
    pai_err_t rc = user ? taskuid_get(n->uids, user, &uid) : PAI_E_INVALID;
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
    b->state = task_path(n, t, "tasks");
    b->logs = task_path(n, t, "logs");
    b->cwd = str_printf("%s/cwd", b->state);
    /* unique per agent process too (the monitor alone uses the path) */
    b->cgroup = str_printf("pai/%s/%s.%.8s", n->name, t->esc, n->boot_id);
    attempt_name(n, t->id, b->name, sizeof(b->name));
    b->env = build_env(d, b->cwd, user);
    s->attempt_id = t->id;
    s->name = b->name;
    s->command = d->command ? d->command : "true";
    s->env = b->env;
    s->state_dir = b->state;
    s->cwd = b->cwd;
    s->log_dir = b->logs;
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
    return spec_identity(n, s, user);
}

static void task_start(agent_node_t *n, const agentwire_task_t *d)
{
    const char *id = d->attempt_id;
    agent_task_t *t = task_add(n, id);
    spec_buf_t b;
    int grace = d->kill_grace_ms;
    t->kill_grace_ms = grace > 0 && grace < 3600000 ? grace : DEFAULT_GRACE_MS;
    t->phase = RC_ACTIVE;
    n->dirty = true;
    metrics_task_meta(&t->meta, d);
    bool have_identity = spec_fill(n, t, d, &b);
    t->stats.cgroup = xstrdup(b.cgroup); /* where metrics.c reads its figures */
    if (!n->cfg->hollow) {
        mkdir_p(b.state, 0711);
        mkdir_p(b.cwd, 0700); /* the monitor gives it to the task's uid */
        mkdir_p(b.logs, 0700);
        write_small(b.state, "id", id);
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
    spec_free(&b);
}

static void task_stop(agent_node_t *n, agent_task_t *t, int64_t now)
{
    if (!t->has_rt)
        return;
    t->phase = RC_STOPPING;
    t->stop_deadline_ms = now + t->kill_grace_ms;
    t->ops->kill(t->ops, &t->rt, false, t->kill_grace_ms / 1000);
    log_info("node=%s task=%s stopping grace_ms=%d", n->name, t->id, t->kill_grace_ms);
}

static void task_mark_acked(agent_node_t *n, agent_task_t *t)
{
    t->acked = true;
    t->acked_mono_ms = time_mono_ms();
    if (!n->cfg->hollow) {
        /* A hard link to the id file: no new inode, which on a busy
         * file system is the dearest part of a short task's bookkeeping
         * (docs/benchmarks.md, End to end).  recover_one tests existence. */
        char *dir = task_path(n, t, "tasks");
        char *from = dir ? str_printf("%s/id", dir) : NULL;
        char *to = dir ? str_printf("%s/acked", dir) : NULL;
        bool linked = from && to && (link(from, to) == 0 || errno == EEXIST);
        if (dir && !linked)
            write_small(dir, "acked", "1\n");
        free(from);
        free(to);
        free(dir);
    }
}

/* ---- node --------------------------------------------------------------- */

static void host_resources(agent_node_t *n)
{
    struct sysinfo si;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n->cpus = n->cfg->cpus > 0 ? n->cfg->cpus : c > 0 ? (int)c : 1;
    n->memory_mb = n->cfg->memory_mb;
    if (n->memory_mb <= 0 && sysinfo(&si) == 0)
        n->memory_mb = (int64_t)((uint64_t)si.totalram * si.mem_unit / (1024 * 1024));
}

static void discover_gpus(agent_node_t *n)
{
    const agent_cfg_t *c = n->cfg;
    const gpu_ops_t *ops = c->gpu_backend ? gpu_backend(c->gpu_backend) : NULL;
    if (c->gpus >= 0 || (ops && strcmp(ops->name, "sim") == 0))
        gpu_simulate(&n->gpus, c->gpus < 0 ? 0 : c->gpus, c->gpu_model, n->name);
    else if (ops && ops->discover(&n->gpus, 0, NULL) == PAI_OK)
        return;
    else if (ops)
        memset(&n->gpus, 0, sizeof(n->gpus)), n->gpus.backend = "none";
    else
        gpu_discover_auto(&n->gpus);
}

pai_err_t node_init(agent_node_t *n, const agent_cfg_t *cfg, const char *name,
                    const runtime_ops_t *rt, const char *log_url)
{
    memset(n, 0, sizeof(*n));
    n->cfg = cfg;
    n->rt = rt;
    str_copy(n->name, name, sizeof(n->name));
    str_copy(n->log_url, log_url, sizeof(n->log_url));
    random_hex(n->boot_id, 16);
    if (cfg->nodes > 1)
        snprintf(n->dir, sizeof(n->dir), "%s/%s", cfg->work_dir, name);
    else
        str_copy(n->dir, cfg->work_dir, sizeof(n->dir));
    n->heartbeat_ms = 5000;
    host_resources(n);
    discover_gpus(n);
    buf_init(&n->resp, PAI_MAX_AGENT_MSG);
    if (!cfg->hollow && !cfg->discover_only) {
        char p[1100];
        snprintf(p, sizeof(p), "%s/tasks", n->dir);
        mkdir_p(p, 0711);
        snprintf(p, sizeof(p), "%s/logs", n->dir);
        mkdir_p(p, 0700);
    }
    if (!cfg->discover_only) {
        cred_load(n);
        logkey_load(n);
    }
    n->easy = curl_easy_init();
    if (!n->easy)
        util_oom(); /* libcurl allocates with its own malloc */
    /* https:// servers: the certificate is always verified, against ca_file
     * when given (a private CA or a self-signed certificate) */
    if (cfg->ca_file && *cfg->ca_file)
        curl_easy_setopt(n->easy, CURLOPT_CAINFO, cfg->ca_file);
    set_auth(n);
    return PAI_OK;
}

void node_free(agent_node_t *n)
{
    for (size_t i = 0; i < n->ntasks; i++)
        task_free(n, n->tasks[i]);
    free(n->tasks);
    if (n->easy)
        curl_easy_cleanup(n->easy);
    curl_slist_free_all(n->headers);
    free(n->body);
    buf_free(&n->resp);
}

static void recover_one(agent_node_t *n, const char *esc)
{
    char dir[1300], idbuf[1024] = "";
    snprintf(dir, sizeof(dir), "%s/tasks/%s", n->dir, esc);
    buf_t b;
    buf_init(&b, sizeof(idbuf) - 1);
    char *idp = str_printf("%s/id", dir);
    pai_err_t rc = buf_read_file(&b, idp);
    free(idp);
    if (rc != PAI_OK || b.len == 0 || task_find(n, buf_str(&b))) {
        buf_free(&b);
        return;
    }
    agent_task_t *t = task_add(n, buf_str(&b));
    buf_free(&b);
    char *acked = str_printf("%s/acked", dir);
    bool is_acked = acked && access(acked, F_OK) == 0;
    free(acked);
    t->rt.state_dir = xstrdup(dir);
    if (is_acked) {
        t->phase = RC_DONE;
        t->acked = true;
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

void node_recover(agent_node_t *n)
{
    char p[1100];
    if (n->cfg->hollow)
        return;
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
}

/* ---- the sync message --------------------------------------------------- */

/* A GPU is healthy when discovery found it and, once sampled, it still
 * answers NVML and reports no uncorrectable ECC error (docs/monitoring.md). */
static bool gpu_healthy_now(const agent_node_t *n, size_t i)
{
    const gpu_sample_t *s = &n->gpu_now[i];
    return n->gpus.gpus[i].healthy && (!n->gpu_sampled || (s->ok && s->ecc_double <= 0));
}

/* Node health: load, free disk under the work dir, GPUs that answer. */
static agentwire_health_t node_health(const agent_node_t *n)
{
    double load[1] = {0};
    struct statvfs vfs;
    agentwire_health_t h = {.present = true, .disk_free_mb = -1, .tasks = (int64_t)n->ntasks};
    if (getloadavg(load, 1) != 1)
        load[0] = -1;
    h.load1 = load[0];
    if (statvfs(n->dir, &vfs) == 0)
        h.disk_free_mb = (int64_t)((uint64_t)vfs.f_bavail * vfs.f_frsize / (1024 * 1024));
    for (size_t i = 0; i < n->gpus.n; i++)
        h.gpus_healthy += gpu_healthy_now(n, i);
    h.ok = h.disk_free_mb != 0;
    return h;
}

/* The node part of a request (arrays in m, strings borrowed from n). */
static void node_wire(const agent_node_t *n, agentwire_node_t *m)
{
    const gpu_set_t *g = &n->gpus;
    *m = (agentwire_node_t){
        .name = n->name,
        .address = n->cfg->address,
        .boot_id = n->boot_id,
        .gpu_model = g->n ? g->gpus[0].model : "",
        .runtime = n->rt->name,
        .log_url = n->log_url,
        .gpu_backend = g->backend ? g->backend : "none",
        .cpus = n->cpus,
        .memory_mb = n->memory_mb,
        .hollow = n->cfg->hollow,
        .has_gpus = true,
        .ngpus = g->n,
        .health = node_health(n),
    };
    m->gpus = xcalloc(g->n + 1, sizeof(*m->gpus));
    for (size_t i = 0; i < g->n; i++)
        m->gpus[i] = (agentwire_gpu_t){.index = g->gpus[i].index,
                                       .uuid = g->gpus[i].uuid,
                                       .model = g->gpus[i].model,
                                       .memory_mb = g->gpus[i].memory_mb,
                                       .pci_bus = g->gpus[i].pci_bus,
                                       .healthy = gpu_healthy_now(n, i)};
    /* the last metrics sample: the server's history shows GPUs used, not
     * only held (docs/monitoring.md) */
    for (size_t i = 0; n->gpu_sampled && i < g->n; i++)
        if (n->gpu_now[i].ok && n->gpu_now[i].util >= 0) {
            m->gpus[i].has_utilization = true;
            m->gpus[i].utilization = n->gpu_now[i].util;
        }
    if (g->has_topo && g->n) {
        m->topology = xcalloc(g->n * g->n, sizeof(int));
        for (size_t i = 0; i < g->n; i++)
            for (size_t k = 0; k < g->n; k++)
                m->topology[i * g->n + k] = g->topo[i][k];
    }
}

static agentwire_report_t task_report(const agent_task_t *t)
{
    agentwire_report_t r = {.attempt_id = t->id};
    if (t->phase != RC_DONE) {
        r.state = AGENTWIRE_RUNNING;
        r.pid = t->rt.task_pgid ? t->rt.task_pgid : t->rt.monitor_pid;
        r.started_ms = t->rt.started_ms;
        return r;
    }
    r.state = t->res.state == RT_FAILED_TO_START ? AGENTWIRE_FAILED_TO_START : AGENTWIRE_EXITED;
    r.exit_code = t->res.exit_code;
    r.oom = t->res.oom;
    r.signal = t->res.signal;
    r.started_ms = t->res.started_ms;
    r.finished_ms = t->res.finished_ms;
    r.diagnostics = t->diagnostics;
    return r;
}

json_t *node_sync_request(const agent_node_t *n)
{
    agentwire_req_t m = {
        .version = AGENTWIRE_VERSION,
        .known_seq = (uint64_t)n->known_seq,
        .wait_ms = n->cfg->wait_ms < n->heartbeat_ms ? n->cfg->wait_ms : n->heartbeat_ms,
    };
    node_wire(n, &m.node);
    m.tasks = xcalloc(n->ntasks + 1, sizeof(*m.tasks));
    for (size_t i = 0; i < n->ntasks; i++)
        if (!n->tasks[i]->acked)
            m.tasks[m.ntasks++] = task_report(n->tasks[i]);
    json_t *o = agentwire_req_encode(&m);
    agentwire_req_clear(&m);
    return o;
}

/* ---- applying the desired state ----------------------------------------- */

static void apply_acks(agent_node_t *n, const agentwire_resp_t *r)
{
    for (size_t i = 0; i < r->nack; i++) {
        agent_task_t *t = task_find(n, r->ack[i]);
        if (t && t->phase == RC_DONE && !t->acked)
            task_mark_acked(n, t);
    }
}

static void apply_desired(agent_node_t *n, const agentwire_resp_t *r)
{
    size_t nd = r->ntasks, na = n->ntasks;
    const char **ids = xcalloc(nd + 1, sizeof(char *));
    const agentwire_task_t **objs = xcalloc(nd + 1, sizeof(*objs));
    rc_actual_t *act = xcalloc(na + 1, sizeof(*act));
    rc_action_t *acts = xcalloc(nd + na + 1, sizeof(*acts));
    size_t k = 0;
    for (size_t i = 0; i < nd; i++) {
        /* an id must fit one path component once escaped (agent_task_t.esc) */
        if (strlen(r->tasks[i].attempt_id) < MAX_ID) {
            objs[k] = &r->tasks[i];
            ids[k++] = r->tasks[i].attempt_id;
        }
    }
    for (size_t i = 0; i < na; i++)
        act[i] = (rc_actual_t){n->tasks[i]->id, n->tasks[i]->phase};
    for (size_t i = 0; i < k; i++) {
        /* attempts re-adopted after a restart learn their labels here */
        agent_task_t *t = task_find(n, ids[i]);
        if (t && !t->meta.user)
            metrics_task_meta(&t->meta, objs[i]);
    }
    size_t nact = reconcile(ids, k, act, na, acts);
    agent_task_t **snapshot = xcalloc(na + 1, sizeof(*snapshot));
    if (na)
        memcpy(snapshot, n->tasks, na * sizeof(*snapshot));
    int64_t now = time_mono_ms();
    for (size_t i = 0; i < nact; i++) {
        if (acts[i].kind == RC_STOP)
            task_stop(n, snapshot[acts[i].index], now);
        else
            task_start(n, objs[acts[i].index]);
    }
    free(snapshot);
    free(ids);
    free(objs);
    free(act);
    free(acts);
}

pai_err_t node_apply_response(agent_node_t *n, const char *body, size_t len)
{
    agentwire_resp_t r;
    pai_error_t e = PAI_ERROR_INIT;
    if (agentwire_resp_parse(body, len, &r, &e) != PAI_OK) {
        log_warn("node=%s sync: bad response: %s", n->name, pai_error_msg(&e));
        pai_error_free(&e);
        return PAI_E_PROTOCOL;
    }
    if (r.credential && *r.credential && strcmp(r.credential, n->cred) != 0)
        cred_keep(n, r.credential);
    if (r.log_key && *r.log_key && strcmp(r.log_key, n->log_key) != 0)
        logkey_keep(n, r.log_key);
    int64_t old_seq = n->known_seq;
    n->progress = r.nack > 0;
    apply_acks(n, &r);
    /* One sync is in flight at a time, so responses arrive in order: each
     * one is the whole desired state at the time the server answered. */
    if (r.has_tasks)
        apply_desired(n, &r);
    n->known_seq = (int64_t)r.seq;
    n->progress = n->progress || n->known_seq != old_seq;
    if (r.heartbeat_ms >= 100 && r.heartbeat_ms <= 600000)
        n->heartbeat_ms = r.heartbeat_ms;
    agentwire_resp_clear(&r);
    return PAI_OK;
}

/* ---- the conversation --------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    agent_node_t *n = arg;
    return buf_append(&n->resp, data, size * nmemb) == PAI_OK ? size * nmemb : 0;
}

static void sync_send(agent_node_t *n, CURLM *multi)
{
    json_t *req = node_sync_request(n);
    free(n->body);
    n->body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!n->body) {
        n->next_sync_ms = time_mono_ms() + 1000;
        return;
    }
    char *url = str_printf("%s/api/v1/agent/sync", n->cfg->server);
    int64_t wait = n->cfg->wait_ms < n->heartbeat_ms ? n->cfg->wait_ms : n->heartbeat_ms;
    buf_reset(&n->resp);
    curl_easy_setopt(n->easy, CURLOPT_URL, url);
    curl_easy_setopt(n->easy, CURLOPT_HTTPHEADER, n->headers);
    curl_easy_setopt(n->easy, CURLOPT_POSTFIELDS, n->body);
    curl_easy_setopt(n->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(n->body));
    curl_easy_setopt(n->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(n->easy, CURLOPT_WRITEDATA, n);
    curl_easy_setopt(n->easy, CURLOPT_TIMEOUT_MS, (long)(wait + 15000));
    curl_easy_setopt(n->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(n->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(n->easy, CURLOPT_PRIVATE, n);
    free(url);
    n->dirty = false;
    n->in_flight = true;
    n->sent_mono_ms = time_mono_ms();
    curl_multi_add_handle(multi, n->easy);
    n->syncs++;
}

void node_sync_done(agent_node_t *n, CURLM *multi, CURLcode code)
{
    long status = 0;
    curl_multi_remove_handle(multi, n->easy);
    n->in_flight = false;
    curl_easy_getinfo(n->easy, CURLINFO_RESPONSE_CODE, &status);
    int64_t now = time_mono_ms();
    if (code == CURLE_OK && status == 200 &&
        node_apply_response(n, n->resp.data ? n->resp.data : "", n->resp.len) == PAI_OK) {
        n->failures = 0;
        /* A server that answers at once with nothing new is not a
         * long-poll: do not spin on it. */
        bool idle = now - n->sent_mono_ms < 5 && !n->dirty && !n->progress;
        n->next_sync_ms = idle ? now + 50 : now;
        return;
    }
    n->sync_errors++;
    n->failures++;
    if (code == CURLE_OK && (status == 401 || status == 403) && *n->cred && n->cfg->token &&
        *n->cfg->token)
        cred_drop(n);
    int64_t backoff = 100LL << (n->failures < 6 ? n->failures : 6);
    n->next_sync_ms = now + (backoff > 5000 ? 5000 : backoff);
    if (n->failures <= 3 || n->failures % 20 == 0)
        log_warn("node=%s sync failed: %s (HTTP %ld) %.200s", n->name,
                 code != CURLE_OK ? curl_easy_strerror(code) : "bad answer", status,
                 buf_str(&n->resp));
}

static void prune_tombstones(agent_node_t *n, int64_t now)
{
    for (size_t i = 0; i < n->ntasks; i++) {
        agent_task_t *t = n->tasks[i];
        if (!t->acked || now - t->acked_mono_ms < TOMBSTONE_MS)
            continue;
        if (!n->cfg->hollow) {
            char *dir = task_path(n, t, "tasks");
            if (dir)
                rm_rf(dir);
            free(dir);
        }
        task_remove_at(n, i--);
    }
}

void node_tick(agent_node_t *n, CURLM *multi, int64_t now)
{
    for (size_t i = 0; i < n->ntasks; i++) {
        agent_task_t *t = n->tasks[i];
        if (t->phase == RC_DONE)
            continue;
        if (t->phase == RC_STOPPING && now >= t->stop_deadline_ms && t->has_rt) {
            t->ops->kill(t->ops, &t->rt, true, 0);
            t->stop_deadline_ms = now + 1000; /* and again, until it ends */
        }
        if (n->cfg->hollow || (t->rt.notify_fd < 0 && now >= t->next_poll_ms)) {
            t->next_poll_ms = now + ADOPTED_POLL_MS;
            task_poll(n, t);
        }
    }
    if (now >= n->next_prune_ms) {
        n->next_prune_ms = now + 1000;
        prune_tombstones(n, now);
    }
    if (n->in_flight && n->dirty) {
        /* A local change: cancel the held long-poll and report at once. */
        curl_multi_remove_handle(multi, n->easy);
        n->in_flight = false;
    }
    if (!n->in_flight && now >= n->next_sync_ms)
        sync_send(n, multi);
}

void node_task_event(agent_node_t *n, int fd)
{
    for (size_t i = 0; i < n->ntasks; i++)
        if (n->tasks[i]->has_rt && n->tasks[i]->rt.notify_fd == fd)
            task_poll(n, n->tasks[i]);
}

int64_t node_next_wake(const agent_node_t *n)
{
    int64_t w = n->in_flight ? INT64_MAX : n->next_sync_ms;
    for (size_t i = 0; i < n->ntasks; i++) {
        const agent_task_t *t = n->tasks[i];
        if (t->phase == RC_DONE)
            continue;
        if (t->phase == RC_STOPPING && t->stop_deadline_ms < w)
            w = t->stop_deadline_ms;
        if (n->cfg->hollow && t->rt.hollow_end_ms < w)
            w = t->rt.hollow_end_ms;
        else if (!n->cfg->hollow && t->rt.notify_fd < 0 && t->next_poll_ms < w)
            w = t->next_poll_ms;
    }
    return w;
}

size_t node_wait_fds(const agent_node_t *n, struct curl_waitfd *fds, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n->ntasks && k < cap; i++) {
        const agent_task_t *t = n->tasks[i];
        if (t->phase != RC_DONE && t->has_rt && t->rt.notify_fd >= 0)
            fds[k++] = (struct curl_waitfd){t->rt.notify_fd, CURL_WAIT_POLLIN, 0};
    }
    return k;
}

char *node_log_dir(const agent_node_t *n, const char *attempt_id)
{
    char esc[512];
    if (!rt_escape_id(attempt_id, esc, sizeof(esc)))
        return NULL;
    char *dir = str_printf("%s/logs/%s", n->dir, esc);
    struct stat st;
    if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return dir;
    free(dir);
    return NULL;
}
