/*
 * up_proc.c - the supervisor half of `pai up`: it starts the children,
 * waits for them and stops them (up.c parses the options, does the
 * preflight and prints the banner).
 *
 *   1. the pidfile (and the URL file `pai down --stop-jobs` reads) goes in
 *      the data directory first, so a second `pai up` on it is refused;
 *   2. starts `pai server` (store in the data dir), waits for /api/v2/info,
 *      then one `pai agent` per node (simulated GPUs) and waits for the
 *      nodes to register;
 *   3. waits for Ctrl-C / SIGTERM (`pai down` sends it) or a child's death,
 *      then stops the agents, then the server (SIGTERM, SIGKILL after
 *      UP_GRACE_MS), and removes the pidfile.
 * Children run in their own process group (a terminal's Ctrl-C reaches
 * only the supervisor, which stops them in order) and get SIGTERM if the
 * supervisor dies (PR_SET_PDEATHSIG).  Their output goes to
 * <data>/logs/{server,NODE}.log.  Every child is reaped here: by
 * up_supervise() while the cluster runs, by stop_pids() at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/up.h"
#include "common/util.h"

#define UP_READY_MS 30000
#define UP_PIDFILE  "pai-up.pid"
#define UP_URLFILE  "pai-up.url"

/* ---- pidfile and clock ---- */

void up_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

pid_t up_read_pidfile(const char *dir)
{
    char *p = str_printf("%s/%s", dir, UP_PIDFILE);
    buf_t b;
    buf_init(&b, 64);
    int pid = 0;
    if (buf_read_file(&b, p) == PAI_OK) {
        b.data[strcspn(b.data, "\n")] = '\0';
        if (str_to_int(buf_str(&b), 1, INT_MAX, &pid) != PAI_OK)
            pid = 0;
    }
    buf_free(&b);
    free(p);
    return (pid_t)pid;
}

/* True when pid is a live `pai up` (a pidfile left by a crash may name a
 * pid that the kernel has since given to another program). */
bool up_alive(pid_t pid)
{
    if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
        return false;
    char *p = str_printf("/proc/%d/cmdline", (int)pid);
    buf_t b;
    buf_init(&b, 4096);
    bool up = true; /* without /proc, trust kill() */
    if (buf_read_file(&b, p) == PAI_OK && b.len > 0) {
        const char *arg1 = b.data + strlen(b.data) + 1; /* args are NUL-separated */
        up = arg1 < b.data + b.len && strcmp(arg1, "up") == 0;
    }
    buf_free(&b);
    free(p);
    return up;
}

/* ---- children ---- */

static pid_t spawn(const up_t *u, char *const argv[], const char *logname, const char *env_pw,
                   const char *env_tok)
{
    char *log = str_printf("%s/logs/%s.log", u->dir, logname);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    free(log);
    if (fd < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        if (env_pw)
            setenv("PAI_ADMIN_PASSWORD", env_pw, 1);
        if (env_tok)
            setenv("PAI_AGENT_TOKEN", env_tok, 1);
        execv(u->self, argv);
        _exit(127);
    }
    close(fd);
    return pid;
}

static int start_server(up_t *u)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", u->port);
    char *argv[16] = {u->self,         "server",  "--data-dir", u->dir,
                      "--listen-addr", u->listen, "--port",     port};
    int n = 8;
    if (u->hived) {
        argv[n++] = "--hived-config";
        argv[n++] = (char *)u->hived;
    }
    if (u->examples[0]) {
        argv[n++] = "--template-examples";
        argv[n++] = u->examples;
    }
    argv[n] = NULL;
    u->server = spawn(u, argv, "server", u->admin_pw, u->agent_token);
    return u->server > 0 ? CLI_OK : CLI_FAIL;
}

/* An AMD node's simulated sysfs tree (--gpu-backend amd-sim), or an FPGA
 * node's device files under its work dir and its device class; out[1]
 * is malloc'ed.  Nothing for a simulated NVIDIA node. */
static void accel_args(const up_node_t *nd, const char *work, char **out)
{
    if (nd->kind == UP_AMD) {
        out[0] = "--gpu-backend";
        out[1] = xstrdup("amd-sim");
    } else if (nd->kind == UP_FPGA) {
        char *dev = str_printf("%s/dev", work);
        mkdir(dev, 0755);
        for (int k = 0; k < nd->gpus; k++) {
            char *p = str_printf("%s/fpga%d", dev, k);
            int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
            if (fd >= 0)
                close(fd);
            free(p);
        }
        out[0] = "--device-class";
        out[1] = str_printf("name=fpga,sku=%s,paths=%s/fpga[0-9]*,env=FPGA_VISIBLE_DEVICES",
                            nd->gpu_model, dev);
        free(dev);
    }
}

static int start_agent(up_t *u, int i)
{
    char gpus[16], cpus[16], mem[16];
    const up_node_t *nd = &u->node[i];
    snprintf(gpus, sizeof(gpus), "%d", nd->gpus);
    snprintf(cpus, sizeof(cpus), "%d", u->cpus);
    snprintf(mem, sizeof(mem), "%d", u->memory_mb);
    char *work = str_printf("%s/agents/%s", u->dir, nd->name);
    char *map = str_printf("%s/agents/task-uids", u->dir);
    mkdir(work, 0700);
    chmod(work, u->as_root ? 0700 : 0711);
    char *accel[3] = {NULL, NULL, NULL};
    accel_args(nd, work, accel);
    char *argv[] = {u->self,
                    "agent",
                    "--server",
                    u->url,
                    "--name",
                    (char *)nd->name,
                    "--gpus",
                    gpus,
                    "--gpu-model",
                    (char *)nd->gpu_model,
                    "--runtime",
                    (char *)u->runtime,
                    "--work-dir",
                    work,
                    "--cpus",
                    cpus,
                    "--memory-mb",
                    mem,
                    "--task-uid-map",
                    map, /* one map: the nodes share the host */
                    accel[0],
                    accel[1],
                    u->as_root ? "--tasks-as-root" : NULL,
                    NULL};
    size_t k = 0; /* options left out (NULL) close up */
    for (size_t j = 0; j + 1 < ARRAY_LEN(argv); j++)
        if (argv[j])
            argv[k++] = argv[j];
    argv[k] = NULL;
    /* The token goes in the environment (PAI_AGENT_TOKEN), not in ps. */
    u->agent[i] = spawn(u, argv, nd->name, NULL, u->agent_token);
    free(accel[1]);
    free(map);
    free(work);
    return u->agent[i] > 0 ? CLI_OK : CLI_FAIL;
}

static void tail_log(const up_t *u, const char *name)
{
    char *p = str_printf("%s/logs/%s.log", u->dir, name);
    buf_t b;
    buf_init(&b, 1u << 20);
    if (buf_read_file(&b, p) == PAI_OK) {
        const char *s = buf_str(&b);
        const char *start = s + b.len;
        for (int lines = 0; start > s && lines < 16; start--)
            if (start[-1] == '\n' && start != s + b.len)
                lines++;
        fprintf(stderr, "---- last lines of %s ----\n%s", p, start);
    }
    buf_free(&b);
    free(p);
}

/* Wait until GET path answers 2xx (checking that `pid` still lives). */
static int wait_http(const up_t *u, const cli_ctx_t *c, const char *path, pid_t pid,
                     const char *what)
{
    int64_t t0 = time_mono_ms();
    while (time_mono_ms() - t0 < UP_READY_MS) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "pai up: %s exited during start-up (status %d)\n", what,
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            return CLI_FAIL;
        }
        cli_resp_t r;
        int rc = cli_request(c, "GET", path, NULL, NULL, 0, CLI_QUIET, &r);
        cli_resp_free(&r);
        if (rc == CLI_OK)
            return CLI_OK;
        up_sleep_ms(200);
    }
    (void)u;
    fprintf(stderr, "pai up: %s did not answer within %ds\n", what, UP_READY_MS / 1000);
    return CLI_FAIL;
}

/* True when a child has exited (it is left for up_supervise() to reap). */
static bool child_exited(void)
{
    siginfo_t si = {0};
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0;
}

/* Log in as admin and wait for all nodes to register; a warning only.
 * Returns false when a child died meanwhile. */
static bool wait_nodes(const up_t *u)
{
    cli_ctx_t c = {.server = (char *)u->url};
    char *form = str_printf("username=admin&password=%s&expiration=600", u->admin_pw);
    cli_resp_t r;
    (void)cli_request(&c, "POST", "/api/v2/authn/basic/login", "application/x-www-form-urlencoded",
                      form, strlen(form), CLI_QUIET, &r);
    free(form);
    const char *tok = json_string_value(json_object_get(r.json, "token"));
    c.token = tok ? xstrdup(tok) : NULL;
    cli_resp_free(&r);
    size_t seen = 0;
    for (int64_t t0 = time_mono_ms(); c.token && time_mono_ms() - t0 < UP_READY_MS;) {
        if (cli_request(&c, "GET", "/api/v2/kubernetes/nodes", NULL, NULL, 0, CLI_QUIET, &r) ==
            CLI_OK) {
            const json_t *items = json_is_array(r.json) ? r.json : json_object_get(r.json, "items");
            seen = json_array_size(items);
        }
        cli_resp_free(&r);
        if (seen >= (size_t)u->nnodes || child_exited())
            break;
        up_sleep_ms(250);
    }
    bool died = child_exited();
    if (seen < (size_t)u->nnodes && !died)
        fprintf(stderr, "pai up: warning: %zu of %d nodes registered so far (see %s/logs/)\n", seen,
                u->nnodes, u->dir);
    free(c.token);
    return !died;
}

static void stop_pids(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGTERM);
    int64_t t0 = time_mono_ms();
    for (int left = n; left > 0 && time_mono_ms() - t0 < UP_GRACE_MS;) {
        left = 0;
        for (int i = 0; i < n; i++) {
            if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == 0)
                left++;
            else
                pids[i] = 0;
        }
        if (left)
            up_sleep_ms(50);
    }
    for (int i = 0; i < n; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
    }
}

void up_stop_all(up_t *u)
{
    stop_pids(u->agent, u->nnodes);
    stop_pids(&u->server, 1);
    char *p = str_printf("%s/%s", u->dir, UP_PIDFILE);
    unlink(p);
    free(p);
}

/* ---- the run ---- */

static int write_pidfile(const up_t *u)
{
    char *p = str_printf("%s/%s", u->dir, UP_PIDFILE);
    FILE *f = fopen(p, "w");
    free(p);
    if (!f)
        return CLI_FAIL;
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) != 0)
        return CLI_FAIL;
    /* The URL lets `pai down --stop-jobs` reach the server. */
    p = str_printf("%s/%s", u->dir, UP_URLFILE);
    f = fopen(p, "w");
    free(p);
    if (!f)
        return CLI_FAIL;
    fprintf(f, "%s\n", u->url);
    return fclose(f) == 0 ? CLI_OK : CLI_FAIL;
}

int up_start_all(up_t *u)
{
    cli_ctx_t c = {.server = u->url};
    if (write_pidfile(u) != CLI_OK) {
        fprintf(stderr, "pai up: cannot write the pidfile in %s\n", u->dir);
        return CLI_FAIL;
    }
    if (start_server(u) != CLI_OK || wait_http(u, &c, "/api/v2/info", u->server, "the server")) {
        tail_log(u, "server");
        return CLI_FAIL;
    }
    for (int i = 0; i < u->nnodes; i++) {
        if (start_agent(u, i) != CLI_OK) {
            fprintf(stderr, "pai up: cannot start the agent of %s\n", u->node[i].name);
            return CLI_FAIL;
        }
    }
    return wait_nodes(u) ? CLI_OK : UP_CHILD_DIED;
}

/* Returns the exit status once a signal or a child's death ends the run. */
int up_supervise(up_t *u, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
            fprintf(stderr, "\npai up: stopping...\n");
            return CLI_OK;
        }
        if (sig != SIGCHLD)
            continue;
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            const char *who = pid == u->server ? "server" : NULL;
            for (int i = 0; i < u->nnodes && !who; i++)
                if (pid == u->agent[i]) {
                    who = u->node[i].name;
                    u->agent[i] = 0;
                }
            if (pid == u->server)
                u->server = 0;
            if (!who)
                continue;
            fprintf(stderr, "pai up: %s exited unexpectedly (status %d); stopping\n", who,
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            tail_log(u, strcmp(who, "server") == 0 ? "server" : who);
            return CLI_FAIL;
        }
    }
}

/* --detach: the parent waits for the child's "ready" byte, then returns. */
int up_detach(int *ready_fd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(p[0]);
        setsid();
        *ready_fd = p[1];
        return 0;
    }
    close(p[1]);
    char c;
    ssize_t n = read(p[0], &c, 1);
    close(p[0]);
    if (n == 1)
        _exit(0);
    int st;
    waitpid(pid, &st, 0);
    _exit(WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
}

void up_detached_ready(const up_t *u, int fd)
{
    char *log = str_printf("%s/logs/up.log", u->dir);
    int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    free(log);
    fflush(stdout);
    fflush(stderr);
    if (lf >= 0) {
        dup2(lf, STDOUT_FILENO);
        dup2(lf, STDERR_FILENO);
        close(lf);
    }
    if (write(fd, "R", 1) != 1)
        fprintf(stderr, "pai up: the parent went away\n");
    close(fd);
}
