/*
 * runtime.c - the runtime table and the four backends (see runtime.h).
 * process/podman/docker share the monitor (monitor.c); they differ only in
 * the argv the monitor runs and in the prepare step (image prerequisite).
 */
#include "runtime/runtime.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/util.h"
#include "common/vec.h"
#include "runtime/cgroup.h"
#include "runtime/mond_int.h"
#include "runtime/monitor.h"

/* ---- the command file ------------------------------------------------- */

/* A container's command: <state_dir>/command, 0400 and owned by the task's
 * identity, bound into the container.  It holds the job's secrets, so it
 * must not show on a command line (/proc/<pid>/cmdline is world-readable)
 * nor be readable by anyone else.  The state dir is the agent's (tasks
 * cannot create files in it), so the unlink + O_EXCL cannot be raced into
 * a symlink.  (Process tasks get it in a memfd: monitor.h.) */
static pai_err_t write_command(const rt_spec_t *spec, char *path, size_t n)
{
    if ((size_t)snprintf(path, n, "%s/" RT_COMMAND_FILE, spec->state_dir) >= n)
        return PAI_E_INVALID;
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    if (fd < 0)
        return PAI_E_IO;
    pai_err_t rc = fs_write_all(fd, spec->command, strlen(spec->command)) ? PAI_OK : PAI_E_IO;
    if (rc == PAI_OK && spec->isolate && fchown(fd, spec->uid, spec->gid) != 0)
        rc = PAI_E_IO;
    close(fd);
    return rc;
}

/* ---- process ---------------------------------------------------------- */

const char *rt_process_shell(void)
{
    static const char *bash; /* looked for once per agent, not per task */
    if (!bash)
        bash = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
    return bash;
}

static pai_err_t process_start(const runtime_ops_t *ops, const rt_spec_t *spec, rt_task_t *t)
{
    char fdpath[32];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", RT_COMMAND_FD);
    char *argv[] = {(char *)rt_process_shell(), fdpath, NULL};
    if (mond_enabled() && mond_start(ops, spec, argv, t) == PAI_OK)
        return PAI_OK;
    return monitor_start(ops, spec, argv, NULL, t);
}

static void process_warm(const char *cgroup_dir, unsigned slots)
{
    if (mond_enabled())
        mond_warm(cgroup_dir, slots);
}

/* ---- podman / docker -------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} argv_t;

static void av_add(argv_t *a, const char *s)
{
    VEC_XRESERVE(a->v, a->cap, a->n + 2);
    a->v[a->n++] = xstrdup(s);
    a->v[a->n] = NULL;
}

static void av_addf(argv_t *a, const char *fmt, long long v)
{
    char tmp[64];
    snprintf(tmp, sizeof(tmp), fmt, v);
    av_add(a, tmp);
}

static void av_free(argv_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

/* One device, host path -> container path.  In a user namespace runc can
 * only bind a device from the host's path equal to the container's (it
 * binds the container path), so there the node is bound as a volume and
 * allowed by its major:minor in the device cgroup. */
static void add_device(argv_t *a, const char *host, const char *cont, bool userns)
{
    struct stat st;
    if (stat(host, &st) != 0)
        return;
    char *v = NULL;
    if (!userns) {
        v = str_printf("%s:%s", host, cont);
        av_add(a, "--device");
        av_add(a, v ? v : "/nonexistent");
    } else if (S_ISCHR(st.st_mode)) {
        v = str_printf("%s:%s", host, cont);
        av_add(a, "-v");
        av_add(a, v ? v : "/nonexistent:/nonexistent");
        free(v);
        v = str_printf("--device-cgroup-rule=c %u:%u rwm", major(st.st_rdev), minor(st.st_rdev));
        av_add(a, v ? v : "--device-cgroup-rule=c 1:3 r");
    }
    free(v);
}

static void add_gpu_devices(argv_t *a, const runtime_ops_t *ops, const rt_spec_t *spec)
{
    static const char *const shared_devs[] = {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"};
    const char *dir = spec->gpu_dev_dir && *spec->gpu_dev_dir ? spec->gpu_dev_dir : "/dev";
    bool userns = spec->isolate && strcmp(ops->engine, "podman") == 0;
    char dev[600], cont[64];
    if (spec->own_devices) {
        for (size_t i = 0; i < spec->n_devices; i++)
            add_device(a, spec->devices[i].host, spec->devices[i].target, userns);
        return;
    }
    for (size_t i = 0; i < spec->n_gpus; i++) {
        snprintf(dev, sizeof(dev), "%s/nvidia%d", dir, spec->gpus[i]);
        snprintf(cont, sizeof(cont), "/dev/nvidia%d", spec->gpus[i]);
        add_device(a, dev, cont, userns);
    }
    for (size_t i = 0; spec->n_gpus && i < ARRAY_LEN(shared_devs); i++) {
        snprintf(dev, sizeof(dev), "%s/%s", dir, shared_devs[i]);
        snprintf(cont, sizeof(cont), "/dev/%s", shared_devs[i]);
        add_device(a, dev, cont, userns);
    }
}

static void add_limits(argv_t *a, const rt_spec_t *spec)
{
    if (spec->cgroup && cg_version() != 0) {
        /* Limits live on a cgroup the monitor owns, so an OOM kill inside
         * the container is seen there (the engine forgets it). */
        char *p = str_printf("--cgroup-parent=/%s", spec->cgroup);
        av_add(a, p ? p : "--cgroup-parent=/pai");
        free(p);
        return;
    }
    if (spec->memory_mb > 0)
        av_addf(a, "--memory=%lldm", spec->memory_mb);
    if (spec->cpu > 0)
        av_addf(a, "--cpus=%lld", (long long)(spec->cpu + 0.999));
}

static void add_mounts_env(argv_t *a, const rt_spec_t *spec)
{
    for (size_t i = 0; i < spec->n_mounts; i++) {
        const rt_mount_t *m = &spec->mounts[i];
        char *v = str_printf("%s:%s%s", m->source, m->target, m->readonly ? ":ro" : "");
        av_add(a, "-v");
        av_add(a, v ? v : "/nonexistent:/nonexistent");
        free(v);
    }
    for (char *const *e = spec->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || str_has_prefix(*e, "PATH=") || str_has_prefix(*e, "HOME="))
            continue;
        /* "-e NAME" takes the value from the engine's own environment,
         * so secrets never show in the process list. */
        char name[256];
        size_t l = (size_t)(eq - *e) < sizeof(name) - 1 ? (size_t)(eq - *e) : sizeof(name) - 1;
        memcpy(name, *e, l);
        name[l] = '\0';
        av_add(a, "-e");
        av_add(a, name);
    }
}

/* PID 1 of the container: runs the command file ($1) with bash (sh when
 * the image has none) as a child and forwards TERM/INT to it, since PID 1
 * itself gets no default signal handling; exits with the command's status.
 * Only the first TERM/INT is handed on: the monitor sends TERM again
 * while the task runs (monitor.c, term_again: the init may have dropped
 * the first), and a task that handles the first must not see the rest.
 * _pai_t: "" none yet, 1 one came before the task's pid (_pai_p) was
 * known (handed on once it is), 2 handed on.  Names of the wrapper's own:
 * a variable of the job's environment with the same name would reach the
 * task emptied. */
static const char container_wrapper[] =
    "_pai_t=; _pai_p=; trap 'case $_pai_t in \"\") if [ -n \"$_pai_p\" ]; then _pai_t=2; "
    "kill -TERM $_pai_p 2>/dev/null; else _pai_t=1; fi;; esac' TERM INT; "
    "if command -v bash >/dev/null 2>&1; then bash \"$1\" & else sh \"$1\" & fi; "
    "_pai_p=$!; if [ \"$_pai_t\" = 1 ]; then _pai_t=2; kill -TERM $_pai_p 2>/dev/null; fi; "
    "while :; do wait $_pai_p; rc=$?; kill -0 $_pai_p 2>/dev/null || exit $rc; done";

/* Where the command file is bound inside a container. */
#define CONTAINER_COMMAND "/run/pai/command"

/* Root in the container is never root on the host: podman maps the
 * container's uid/gid 0 to the task's identity (a user namespace of one
 * id; files of other ids in the image show as nobody), docker (whose
 * user namespaces are daemon-wide) runs the container as that identity. */
static void add_identity(argv_t *a, const runtime_ops_t *ops, const rt_spec_t *spec)
{
    if (!spec->isolate)
        return;
    if (strcmp(ops->engine, "podman") == 0) {
        av_addf(a, "--uidmap=0:%lld:1", (long long)spec->uid);
        av_addf(a, "--gidmap=0:%lld:1", (long long)spec->gid);
    } else {
        char *u = str_printf("--user=%lld:%lld", (long long)spec->uid, (long long)spec->gid);
        av_add(a, u ? u : "--user=65534:65534");
        free(u);
    }
    /* setuid binaries in the image cannot raise privileges either */
    av_add(a, "--security-opt=no-new-privileges");
}

static void build_container_argv(const runtime_ops_t *ops, const rt_spec_t *spec,
                                 const char *command_file, argv_t *a)
{
    bool podman = strcmp(ops->engine, "podman") == 0;
    av_add(a, ops->engine);
    av_add(a, "run");
    if (podman)
        av_add(a, "--rm");
    av_add(a, "--name");
    av_add(a, spec->name);
    av_add(a, "--network=host");
    add_identity(a, ops, spec);
    char *bind = str_printf("%s:" CONTAINER_COMMAND ":ro", command_file);
    av_add(a, "-v");
    av_add(a, bind ? bind : "/nonexistent:" CONTAINER_COMMAND ":ro");
    free(bind);
    if (spec->shm_mb > 0)
        av_addf(a, "--shm-size=%lldm", spec->shm_mb);
    add_limits(a, spec);
    add_gpu_devices(a, ops, spec);
    add_mounts_env(a, spec);
    av_add(a, spec->image);
    av_add(a, "/bin/sh");
    av_add(a, "-c");
    av_add(a, container_wrapper);
    av_add(a, "pai");
    av_add(a, CONTAINER_COMMAND);
}

/* Registry host of an image uri: "reg.io/a/b:1" -> "reg.io"; docker.io otherwise. */
static void image_registry(const char *uri, char *out, size_t n)
{
    const char *slash = strchr(uri, '/');
    size_t l = slash ? (size_t)(slash - uri) : 0;
    if (slash &&
        (memchr(uri, '.', l) || memchr(uri, ':', l) || strncmp(uri, "localhost", l) == 0)) {
        snprintf(out, n, "%.*s", (int)l, uri);
        return;
    }
    snprintf(out, n, "docker.io");
}

static int container_prepare(const runtime_ops_t *ops, const rt_spec_t *spec, int err_fd)
{
    char *exists_argv[] = {(char *)ops->engine, "image", "inspect", (char *)spec->image, NULL};
    if (!spec->image || !*spec->image) {
        dprintf(err_fd, "pai: the %s runtime needs a dockerImage prerequisite\n", ops->engine);
        return EXIT_IMAGE_NOT_EXISTS;
    }
    if (monitor_run_wait(exists_argv, NULL, -1) == 0)
        return 0;
    if (spec->image_user && *spec->image_user) {
        char reg[256];
        if (spec->image_registry && *spec->image_registry)
            str_copy(reg, spec->image_registry, sizeof(reg));
        else
            image_registry(spec->image, reg, sizeof(reg));
        char *login[] = {(char *)ops->engine, "login", "--username", (char *)spec->image_user,
                         "--password-stdin",  reg,     NULL};
        if (monitor_run_wait(login, spec->image_password ? spec->image_password : "", err_fd) != 0)
            dprintf(err_fd, "pai: %s login to %s failed\n", ops->engine, reg);
    }
    char *pull[] = {(char *)ops->engine, "pull", (char *)spec->image, NULL};
    if (monitor_run_wait(pull, NULL, err_fd) == 0)
        return 0;
    dprintf(err_fd, "pai: cannot pull image %s\n", spec->image);
    return EXIT_IMAGE_NOT_EXISTS;
}

static bool env_has(char *const *env, const char *entry)
{
    size_t l = strcspn(entry, "=");
    for (char *const *e = env; e && *e; e++)
        if (strncmp(*e, entry, l) == 0 && (*e)[l] == '=')
            return true;
    return false;
}

/* The agent's own secrets, never handed on (pai up passes them in the
 * environment). */
static bool agent_secret(const char *entry)
{
    return str_has_prefix(entry, "PAI_AGENT_TOKEN=") ||
           str_has_prefix(entry, "PAI_ADMIN_PASSWORD=");
}

/* The engine's own environment: the agent's (DOCKER_HOST, CONTAINER_HOST,
 * XDG_RUNTIME_DIR...) under the task's values, which `-e NAME` forwards. */
static void engine_env(const rt_spec_t *spec, argv_t *out)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++)
        if (strchr(*e, '=') && !env_has(spec->env, *e) && !agent_secret(*e))
            av_add(out, *e);
    for (char *const *e = spec->env; e && *e; e++)
        av_add(out, *e);
}

static pai_err_t container_start(const runtime_ops_t *ops, const rt_spec_t *spec, rt_task_t *t)
{
    argv_t a = {0}, env = {0};
    char path[1100];
    pai_err_t wrc = write_command(spec, path, sizeof(path));
    if (wrc != PAI_OK)
        return wrc;
    build_container_argv(ops, spec, path, &a);
    engine_env(spec, &env);
    rt_spec_t s = *spec;
    s.env = env.v;
    pai_err_t rc = monitor_start(ops, &s, a.v, container_prepare, t);
    av_free(&a);
    av_free(&env);
    return rc;
}

/* ---- hollow ----------------------------------------------------------- */

static bool word_at(const char *s, const char *p, const char *w)
{
    size_t l = strlen(w);
    return strncmp(p, w, l) == 0 && (p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '_')) &&
           (p[l] == ' ' || p[l] == '\t');
}

void rt_hollow_parse(const char *command, int64_t *duration_ms, int *exit_code)
{
    bool have_exit = false;
    *duration_ms = 0;
    *exit_code = 0;
    for (const char *p = command; p && *p; p++) {
        if (word_at(command, p, "sleep")) {
            char *end;
            double secs = strtod(p + 5, &end);
            if (end != p + 5 && secs > 0 && secs < 1e7)
                *duration_ms += (int64_t)(secs * 1000.0);
        } else if (!have_exit && word_at(command, p, "exit")) {
            char *end;
            long code = strtol(p + 4, &end, 10);
            if (end != p + 4) {
                *exit_code = (int)(code & 255);
                have_exit = true;
            }
        }
    }
}

static pai_err_t hollow_start(const runtime_ops_t *ops, const rt_spec_t *spec, rt_task_t *t)
{
    int64_t dur;
    (void)ops;
    memset(t, 0, sizeof(*t));
    t->notify_fd = -1;
    t->started_ms = time_wall_ms();
    rt_hollow_parse(spec->command, &dur, &t->hollow_exit);
    t->hollow_end_ms = time_mono_ms() + dur;
    t->name = xstrdup(spec->name);
    return PAI_OK;
}

static bool hollow_poll(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res)
{
    (void)ops;
    if (time_mono_ms() < t->hollow_end_ms)
        return false;
    memset(res, 0, sizeof(*res));
    res->state = RT_EXITED;
    res->exit_code = t->hollow_exit;
    res->signal = t->hollow_killed ? t->hollow_exit - 128 : 0;
    res->started_ms = t->started_ms;
    res->finished_ms = time_wall_ms();
    return true;
}

static void hollow_kill(const runtime_ops_t *ops, rt_task_t *t, bool force, int grace_s)
{
    (void)ops;
    (void)grace_s;
    t->hollow_killed = true;
    t->hollow_exit = force ? EXIT_SIGKILL : EXIT_SIGTERM;
    t->hollow_end_ms = 0;
}

static bool hollow_adopt(const runtime_ops_t *ops, rt_task_t *t)
{
    (void)ops;
    (void)t;
    return false; /* hollow attempts live only in the agent's memory */
}

static void hollow_release(rt_task_t *t)
{
    FREE_NULL(&t->name);
    FREE_NULL(&t->state_dir);
}

/* ---- table ------------------------------------------------------------ */

static const runtime_ops_t runtimes[] = {
    {.name = "process",
     .start = process_start,
     .poll = mond_poll,
     .kill = monitor_kill,
     .adopt = monitor_adopt,
     .release = mond_release,
     .warm = process_warm},
    {.name = "podman",
     .start = container_start,
     .poll = monitor_poll,
     .kill = monitor_kill,
     .adopt = monitor_adopt,
     .release = monitor_release,
     .engine = "podman"},
    {.name = "docker",
     .start = container_start,
     .poll = monitor_poll,
     .kill = monitor_kill,
     .adopt = monitor_adopt,
     .release = monitor_release,
     .engine = "docker"},
    {.name = "hollow",
     .start = hollow_start,
     .poll = hollow_poll,
     .kill = hollow_kill,
     .adopt = hollow_adopt,
     .release = hollow_release},
};

const runtime_ops_t *runtime_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(runtimes); i++)
        if (strcmp(runtimes[i].name, name) == 0)
            return &runtimes[i];
    return NULL;
}

bool rt_escape_id(const char *attempt_id, char *out, size_t n)
{
    size_t i = 0;
    for (const char *p = attempt_id; *p; p++) {
        if (i + 1 >= n)
            return false;
        char c = *p == '/' ? '+' : *p;
        if (c == '.' && (p == attempt_id || p[-1] == '/'))
            c = '_'; /* never "." or ".." components */
        out[i++] = c;
    }
    out[i] = '\0';
    return i > 0;
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static size_t read_range(const char *path, int64_t off, size_t n, char *dst)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = pread(fd, dst, n, off);
    close(fd);
    return r > 0 ? (size_t)r : 0;
}

char *rt_log_tail(const char *prefix, const char *kind, size_t max, size_t *len)
{
    char cur[1024], old[1024];
    snprintf(cur, sizeof(cur), "%s%s", prefix, kind);
    snprintf(old, sizeof(old), "%s%s.1", prefix, kind);
    int64_t sc = file_size(cur), so = file_size(old);
    if (sc < 0 && so < 0)
        return NULL;
    sc = sc < 0 ? 0 : sc;
    so = so < 0 ? 0 : so;
    size_t want = (size_t)(sc + so) < max ? (size_t)(sc + so) : max;
    char *out = xcalloc(1, want + 1);
    size_t from_cur = want < (size_t)sc ? want : (size_t)sc;
    size_t from_old = want - from_cur, got = 0;
    if (from_old)
        got += read_range(old, so - (int64_t)from_old, from_old, out);
    got += read_range(cur, sc - (int64_t)from_cur, from_cur, out + got);
    out[got] = '\0';
    *len = got;
    return out;
}
