/*
 * exec.c - `pai exec`: a command run inside a running task, for runtimes
 * and images without an sshd (docs/ssh.md, "pai exec").
 *
 * The server asks the node's log server (logsrv.c, with the node's log
 * key) POST /exec/{attempt_id} {"command", "timeoutSec"}; the answer is an
 * exec id, and GET /exec/{id}?offset=N returns {"data": base64 of the
 * output from byte N, "offset": where the next read starts, "done",
 * "exitCode" once done}.
 *
 * The command never runs in the agent: a runner, double-forked so that
 * init reaps it (the agent's own reaping is left alone), starts it and
 * waits for it, writing everything it prints to <node dir>/exec/<id>/out
 * and its exit status to .../exit.  The command runs as the task does:
 *  - process runtime: it takes the identity of the task's leader process
 *    (from the monitor's "task" record): its cgroups (joined first, so its
 *    limits and the cgroup's kill at the end cover it), gid and uid with no
 *    supplementary groups and no-new-privs, working dir and environment;
 *  - containers: `<engine> exec <container> /bin/sh -c CMD` (the
 *    container's root is the user's uid on the node).
 * Bounds: the command at most EXEC_MAX_CMD bytes, its output EXEC_MAX_OUT
 * (RLIMIT_FSIZE), its time timeoutSec (at most EXEC_MAX_TIMEOUT_S, then
 * SIGKILL to its process group), EXEC_MAX_RUNNING at once per node; records
 * are removed EXEC_KEEP_S after they end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/buf.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

#define EXEC_KEEP_S 600

static char *exec_dir(const agent_node_t *n, const char *id)
{
    return id ? str_printf("%s/exec/%s", n->dir, id) : str_printf("%s/exec", n->dir);
}

static bool valid_id(const char *id)
{
    size_t l = strlen(id);
    if (l != 32)
        return false;
    for (size_t i = 0; i < l; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    return true;
}

/* Removes records that ended long ago; counts those still running. */
static int sweep(const agent_node_t *n)
{
    char *dir = exec_dir(n, NULL);
    DIR *d = opendir(dir);
    int running = 0;
    struct dirent *e;
    time_t now = time(NULL);
    while (d && (e = readdir(d))) {
        if (!valid_id(e->d_name))
            continue;
        char *ex = str_printf("%s/%s/exit", dir, e->d_name);
        struct stat st;
        if (stat(ex, &st) != 0) {
            running++;
        } else if (now - st.st_mtime > EXEC_KEEP_S) {
            char *out = str_printf("%s/%s/out", dir, e->d_name);
            char *one = str_printf("%s/%s", dir, e->d_name);
            unlink(out);
            unlink(ex);
            rmdir(one);
            free(out);
            free(one);
        }
        free(ex);
    }
    if (d)
        closedir(d);
    free(dir);
    return running;
}

/* The task's leader pid from its monitor's record (runtime.h); 0 when unknown. */
static pid_t task_pid(const agent_task_t *t)
{
    pid_t p = t->rt.state_dir ? rt_task_pid(t->rt.state_dir) : 0;
    return p > 1 ? p : 0;
}

/* A NUL-separated /proc file as a NULL-terminated vector (environ). */
static char **proc_vec(pid_t pid, const char *what)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, what);
    buf_t b;
    buf_init(&b, 4u << 20);
    if (buf_read_file(&b, p) != PAI_OK) {
        buf_free(&b);
        return NULL;
    }
    size_t n = 0, len = b.len;
    char *text = buf_take(&b);
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\0';
    char **v = xcalloc(n + 2, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; i < len && k < n + 1; i += strlen(text + i) + 1)
        v[k++] = text + i;
    v[k] = NULL;
    buf_free(&b);
    return v; /* v[0] owns text */
}

/* uid and gid of a process (real ids, from /proc/pid/status). */
static bool proc_ids(pid_t pid, uid_t *uid, gid_t *gid)
{
    char p[64], line[256];
    snprintf(p, sizeof(p), "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    int got = 0;
    unsigned long u, g;
    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "Uid: %lu", &u) == 1)
            got |= 1;
        if (sscanf(line, "Gid: %lu", &g) == 1)
            got |= 2;
    }
    if (f)
        fclose(f);
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return got == 3;
}

/* Join every cgroup of pid (v1: each hierarchy; v2: the unified one). */
static void join_cgroups(pid_t pid)
{
    char p[64], line[1024];
    snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
    FILE *f = fopen(p, "r");
    char self[32];
    snprintf(self, sizeof(self), "%d", (int)getpid());
    while (f && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || strcmp(c2 + 1, "/") == 0)
            continue;
        *c2 = '\0';
        const char *ctrl = c1 + 1, *path = c2 + 1;
        char *named = str_has_prefix(ctrl, "name=") ? (char *)ctrl + 5 : (char *)ctrl;
        char *procs = *ctrl ? str_printf("/sys/fs/cgroup/%s%s/cgroup.procs", named, path)
                            : str_printf("/sys/fs/cgroup/unified%s/cgroup.procs", path);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 && !*ctrl) { /* v2 mounted at /sys/fs/cgroup itself */
            free(procs);
            procs = str_printf("/sys/fs/cgroup%s/cgroup.procs", path);
            fd = open(procs, O_WRONLY | O_CLOEXEC);
        }
        if (fd >= 0) {
            if (write(fd, self, strlen(self)) < 0) {
                /* best effort: the command still runs as the task's uid */
            }
            close(fd);
        }
        free(procs);
    }
    if (f)
        fclose(f);
}

/* In the command's child: become the task (process runtime) and run it. */
_Noreturn static void run_as_task(pid_t leader, const char *cmd)
{
    uid_t uid;
    gid_t gid;
    char **env = proc_vec(leader, "environ");
    char cwd[64];
    snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", (int)leader);
    if (!env || !proc_ids(leader, &uid, &gid)) {
        fprintf(stderr, "pai exec: the task has ended\n");
        _exit(126);
    }
    join_cgroups(leader);
    if (chdir(cwd) != 0) {
        fprintf(stderr, "pai exec: cannot enter the task's working dir: %s\n", strerror(errno));
        _exit(126);
    }
    if (getuid() == 0 && (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
        fprintf(stderr, "pai exec: cannot take the task's identity: %s\n", strerror(errno));
        _exit(126);
    }
    if (getuid() != uid) {
        fprintf(stderr, "pai exec: the agent cannot run as the task's uid\n");
        _exit(126);
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    execve("/bin/sh", argv, env);
    fprintf(stderr, "pai exec: /bin/sh: %s\n", strerror(errno));
    _exit(127);
}

static volatile sig_atomic_t timed_out;
static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
}

/* The runner (init's child): starts the command, waits for it, records. */
_Noreturn static void runner(const char *dir, const runtime_ops_t *ops, const char *name,
                             pid_t leader, const char *cmd, int timeout_s)
{
    char *outp = str_printf("%s/out", dir);
    int out = open(outp, O_WRONLY | O_APPEND | O_CLOEXEC); /* made by agent_exec_start */
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || null < 0)
        _exit(1);
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        sched_child_default(); /* the agent's SCHED_BATCH is not the command's */
        dup2(null, 0);
        dup2(out, 1);
        dup2(out, 2);
        struct rlimit rl = {EXEC_MAX_OUT, EXEC_MAX_OUT};
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGPIPE, SIG_DFL);
        if (ops->engine) {
            char *argv[] = {(char *)ops->engine, "exec", (char *)name, "/bin/sh", "-c",
                            (char *)cmd,         NULL};
            execvp(argv[0], argv);
            fprintf(stderr, "pai exec: %s: %s\n", ops->engine, strerror(errno));
            _exit(127);
        }
        run_as_task(leader, cmd);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm((unsigned)timeout_s);
    int st = 0;
    while (c > 0 && waitpid(c, &st, 0) < 0 && errno == EINTR)
        if (timed_out)
            kill(-c, SIGKILL);
    int code = c < 0             ? 126
               : timed_out       ? 124
               : WIFEXITED(st)   ? WEXITSTATUS(st)
               : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                                 : 1;
    if (timed_out) {
        const char msg[] = "\npai exec: timed out\n";
        if (write(out, msg, sizeof(msg) - 1) < 0) {
            /* the output is full: the exit code says it */
        }
    }
    char text[32];
    int l = snprintf(text, sizeof(text), "%d\n", code);
    char *tmp = str_printf("%s/exit.tmp", dir), *fin = str_printf("%s/exit", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0 && write(fd, text, (size_t)l) == l && close(fd) == 0)
        rename(tmp, fin);
    _exit(0);
}

pai_err_t agent_exec_start(agent_node_t *n, const char *attempt_id, const char *cmd, int timeout_s,
                           char id[33], const char **why)
{
    *why = NULL;
    agent_task_t *t = task_find(n, attempt_id);
    if (!t || t->phase != RC_ACTIVE || !t->has_rt) {
        *why = "the task is not running on this node";
        return PAI_E_NO_TASK;
    }
    pid_t leader = t->ops->engine ? 0 : task_pid(t);
    if (!t->ops->engine && leader == 0) {
        *why = "the task has no process to join (yet)";
        return PAI_E_UNAVAILABLE;
    }
    if (strcmp(t->ops->name, "hollow") == 0) {
        *why = "hollow tasks run nothing";
        return PAI_E_INVALID;
    }
    if (sweep(n) >= EXEC_MAX_RUNNING) {
        *why = "too many commands running on this node; retry";
        return PAI_E_UNAVAILABLE;
    }
    unsigned char rnd[16];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(id, 33, rnd, sizeof(rnd));
    char *base = exec_dir(n, NULL), *dir = exec_dir(n, id);
    pai_err_t rc = fs_mkdir_p(base, 0700) == PAI_OK && mkdir(dir, 0700) == 0 ? PAI_OK : PAI_E_IO;
    free(base);
    /* the output file exists before the answer: a read right after it finds it */
    char *outp = str_printf("%s/out", dir);
    int fd = rc == PAI_OK ? open(outp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (fd < 0)
        rc = PAI_E_IO;
    else
        close(fd);
    free(outp);
    if (rc != PAI_OK) {
        free(dir);
        *why = "cannot make the exec record";
        return rc;
    }
    if (timeout_s <= 0 || timeout_s > EXEC_MAX_TIMEOUT_S)
        timeout_s = EXEC_MAX_TIMEOUT_S;
    pid_t p = fork();
    if (p == 0) {
        setsid();
        if (fork() != 0)
            _exit(0);
        close_range(3, ~0U, 0);
        runner(dir, t->ops, t->rt.name, leader, cmd, timeout_s);
    }
    while (p > 0 && waitpid(p, NULL, 0) < 0 && errno == EINTR) {
    }
    free(dir);
    if (p < 0) {
        *why = "cannot start the command";
        return PAI_E_UNAVAILABLE;
    }
    log_info("node=%s task=%s exec %s started", n->name, attempt_id, id);
    return PAI_OK;
}

pai_err_t agent_exec_read(const agent_node_t *n, const char *id, int64_t offset, json_t **out)
{
    *out = NULL;
    if (!valid_id(id))
        return PAI_E_NOT_FOUND;
    char *dir = exec_dir(n, id);
    char *outp = str_printf("%s/out", dir), *exitp = str_printf("%s/exit", dir);
    free(dir);
    /* the exit record first: once it is there, the output is complete */
    buf_t ex;
    buf_init(&ex, 64);
    bool done = buf_read_file(&ex, exitp) == PAI_OK;
    int fd = open(outp, O_RDONLY | O_CLOEXEC);
    free(outp);
    free(exitp);
    if (fd < 0) {
        buf_free(&ex);
        return PAI_E_NOT_FOUND;
    }
    char *chunk = xmalloc(EXEC_READ_CHUNK);
    ssize_t got = offset >= 0 ? pread(fd, chunk, EXEC_READ_CHUNK, (off_t)offset) : -1;
    struct stat st;
    bool more = fstat(fd, &st) == 0 && (int64_t)st.st_size > offset + (got > 0 ? got : 0);
    close(fd);
    if (got < 0)
        got = 0;
    /* base64: the output is bytes, not always UTF-8 text */
    size_t cap = sodium_base64_encoded_len((size_t)got, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = xmalloc(cap);
    sodium_bin2base64(b64, cap, (const unsigned char *)chunk, (size_t)got,
                      sodium_base64_VARIANT_ORIGINAL);
    *out = xjson_pack("{s:s, s:I, s:b}", "data", b64, "offset", (json_int_t)(offset + got), "done",
                      done && !more);
    free(b64);
    if (done && !more)
        json_object_set_new(*out, "exitCode", json_integer(strtol(buf_str(&ex), NULL, 10)));
    free(chunk);
    buf_free(&ex);
    return PAI_OK;
}
