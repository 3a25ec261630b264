/*
 * agent_main.c - `pai agent`: options, start-up, and the event loop.
 *
 * The loop (single thread, see agent.h):
 *   1. tick every node: poll attempts that may have ended, escalate stops,
 *      start the next sync when due (cancelling a held long-poll when
 *      something changed locally); then curl's timer when due, so that a
 *      sync started here is sent in this turn;
 *   2. wait in one poll on curl's sockets (as its socket callback asks),
 *      the per-agent monitors' sockets (each tells the ends of all its
 *      attempts: every line that came read in one call, then those
 *      attempts polled), per-attempt monitors' notify fds and the log
 *      server's epoll fd, until the earliest timer (the nodes', the log
 *      server's, curl's);
 *   3. drive curl with the events of its sockets that fired and its timer
 *      when due (curl_multi_socket_action: the other transfers are not
 *      looked at; finished syncs are applied: acks, desired set ->
 *      reconcile -> start/stop), the log server when its fd fired or its
 *      timeout passed; reap exited monitors now and then.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/taskuid.h"
#include "cli/commands.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---- options (a table) -------------------------------------------------- */

typedef enum { OPT_STR, OPT_INT, OPT_I64, OPT_FLAG } opt_kind_t;

typedef struct {
    const char *name;
    opt_kind_t kind;
    size_t offset;
    const char *help;
} opt_t;

#define O(field) offsetof(agent_cfg_t, field)
static const opt_t options[] = {
    {.name = "server",
     .kind = OPT_STR,
     .offset = O(server),
     .help = "URL of pai server (required); several servers on one PostgreSQL: their URLs "
             "separated by commas (or --server again), the one that leads is used"},
    {.name = "token",
     .kind = OPT_STR,
     .offset = O(token),
     .help = "agent token (or $PAI_AGENT_TOKEN)"},
    {.name = "ca-file",
     .kind = OPT_STR,
     .offset = O(ca_file),
     .help = "PEM file of the CA that signed an https:// server's certificate (or $PAI_CA_FILE; "
             "default: the system's CAs)"},
    {.name = "tls-cert",
     .kind = OPT_STR,
     .offset = O(tls_cert),
     .help = "PEM certificate (and chain) of the task-log server, which then speaks HTTPS only; "
             "the server verifies it with its agent_ca_file (docs/security.md)"},
    {.name = "tls-key",
     .kind = OPT_STR,
     .offset = O(tls_key),
     .help = "its PEM private key (unencrypted; keep it 0600)"},
    {.name = "name",
     .kind = OPT_STR,
     .offset = O(name),
     .help = "node name (default: hostname); with --nodes K, N-0..N-K-1"},
    {.name = "address",
     .kind = OPT_STR,
     .offset = O(address),
     .help = "IP of this host tasks are reachable at; the task-log server listens on it (default "
             "127.0.0.1)"},
    {.name = "work-dir",
     .kind = OPT_STR,
     .offset = O(work_dir),
     .help = "state and logs (default /var/lib/pai/agent/<name>)"},
    {.name = "runtime",
     .kind = OPT_STR,
     .offset = O(runtime),
     .help = "process | podman | docker | hollow | auto"},
    {.name = "gpus",
     .kind = OPT_INT,
     .offset = O(gpus),
     .help = "simulate N GPUs instead of discovering them"},
    {.name = "gpu-model",
     .kind = OPT_STR,
     .offset = O(gpu_model),
     .help = "model of simulated GPUs (default A100; amd-sim: AMD Instinct MI250X)"},
    {.name = "gpu-backend",
     .kind = OPT_STR,
     .offset = O(gpu_backend),
     .help = "force a discovery backend: nvml | nvidia-smi | amd | sim | amd-sim (--gpus N AMD "
             "GPUs in a fake sysfs tree under the work dir)"},
    {.name = "sysfs-root",
     .kind = OPT_STR,
     .offset = O(sysfs_root),
     .help = "amd backend: read <DIR>/sys and <DIR>/dev instead of the host's (a fake tree)"},
    {.name = "device-class",
     .kind = OPT_STR,
     .offset = O(device_class),
     .help = "the node's accelerators are a generic class, not GPUs: "
             "name=N,sku=S,paths=GLOB,env=VAR[,shared=P1:P2]"},
    {.name = "hollow",
     .kind = OPT_FLAG,
     .offset = O(hollow),
     .help = "do not execute tasks (scale tests)"},
    {.name = "nodes",
     .kind = OPT_INT,
     .offset = O(nodes),
     .help = "host K nodes in this process (hollow scale tests)"},
    {.name = "cpus",
     .kind = OPT_INT,
     .offset = O(cpus),
     .help = "CPUs to report (default: the host's)"},
    {.name = "memory-mb",
     .kind = OPT_I64,
     .offset = O(memory_mb),
     .help = "memory to report (default: the host's)"},
    {.name = "log-port",
     .kind = OPT_INT,
     .offset = O(log_port),
     .help = "port of the task-log endpoint (default: any)"},
    {.name = "log-max-bytes",
     .kind = OPT_I64,
     .offset = O(log_max_bytes),
     .help = "rotate task logs past this size (8 MiB)"},
    {.name = "wait-ms",
     .kind = OPT_I64,
     .offset = O(wait_ms),
     .help = "long-poll hold asked of the server (25000)"},
    {.name = "log-level",
     .kind = OPT_STR,
     .offset = O(log_level),
     .help = "error | warn | info | debug"},
    {.name = "cgroup-root",
     .kind = OPT_STR,
     .offset = O(cgroup_root),
     .help = "cgroup mount (default /sys/fs/cgroup)"},
    {.name = "gpu-device-dir",
     .kind = OPT_STR,
     .offset = O(gpu_dev_dir),
     .help = "where nvidiaN device nodes live (default /dev)"},
    {.name = "gpu-fault-file",
     .kind = OPT_STR,
     .offset = O(gpu_fault_file),
     .help = "simulated GPUs: faults to inject, lines \"INDEX lost|ecc|xid N\" (default "
             "<work-dir>/gpu-faults)"},
    {.name = "discover",
     .kind = OPT_FLAG,
     .offset = O(discover_only),
     .help = "print the node's resources as JSON and exit"},
    {.name = "task-uid-range",
     .kind = OPT_STR,
     .offset = O(task_uid_range),
     .help = "host uids tasks run as, one per pai user (default " TASKUID_DEFAULT_RANGE ")"},
    {.name = "task-uid-map",
     .kind = OPT_STR,
     .offset = O(task_uid_map),
     .help = "file that keeps user -> uid (default <work-dir>/task-uids; agents on one host "
             "share it)"},
    {.name = "tasks-as-root",
     .kind = OPT_FLAG,
     .offset = O(tasks_as_root),
     .help = "run tasks as the agent's own user (root): trusted single-user clusters only"},
};

static void usage(void)
{
    fprintf(stderr, "usage: pai agent --server URL --token T [options]\n");
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        fprintf(stderr, "  --%-15s %s\n", options[i].name, options[i].help);
}

/* The token given on the command line is copied and blanked in argv:
 * /proc/<pid>/cmdline is readable by every process on the host. */
static const char *take_secret(char *arg)
{
    static char *copy;
    free(copy);
    copy = xstrdup(arg);
    memset(arg, 'x', strlen(arg));
    return copy;
}

/* --server may be given more than once: the URLs join one list
 * (common/srvlist.h), as if separated by commas. */
static const char *add_server(const char *list, const char *arg)
{
    static char *joined;
    if (!list)
        return arg;
    char *more = str_printf("%s,%s", list, arg);
    free(joined);
    joined = more;
    return joined;
}

static int set_option(agent_cfg_t *cfg, const opt_t *o, char *arg)
{
    void *p = (char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_STR:
        if (o->offset == O(server))
            *(const char **)p = add_server(cfg->server, arg);
        else
            *(const char **)p = o->offset == O(token) ? take_secret(arg) : arg;
        return 0;
    case OPT_FLAG:
        *(bool *)p = true;
        return 0;
    case OPT_INT:
        return str_to_int(arg, 0, 1000000, (int *)p) == PAI_OK ? 0 : -1;
    case OPT_I64:
        return str_to_i64(arg, 0, INT64_MAX / 4, (int64_t *)p) == PAI_OK ? 0 : -1;
    }
    return -1;
}

static int parse_args(int argc, char **argv, agent_cfg_t *cfg)
{
    struct option lo[ARRAY_LEN(options) + 2];
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        lo[i] = (struct option){options[i].name,
                                options[i].kind == OPT_FLAG ? no_argument : required_argument, NULL,
                                (int)i + 1000};
    lo[ARRAY_LEN(options)] = (struct option){"help", no_argument, NULL, 'h'};
    lo[ARRAY_LEN(options) + 1] = (struct option){0, 0, 0, 0};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c < 1000 || c >= 1000 + (int)ARRAY_LEN(options))
            return -1;
        const opt_t *o = &options[c - 1000];
        if (set_option(cfg, o, optarg) != 0) {
            fprintf(stderr, "pai agent: bad value for --%s: %s\n", o->name, optarg);
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

static void defaults(agent_cfg_t *cfg, char *host, size_t hostlen)
{
    cfg->gpus = -1;
    cfg->nodes = 1;
    cfg->log_max_bytes = 8 << 20;
    cfg->wait_ms = 25000;
    cfg->address = "127.0.0.1";
    cfg->work_dir = NULL; /* /var/lib/pai/agent/<name> */
    cfg->token = getenv("PAI_AGENT_TOKEN");
    cfg->ca_file = getenv("PAI_CA_FILE");
    if (getenv("PAI_TEST_AGENT_ACCEPT")) /* tests: an agent that asks for no newer answer */
        cfg->wire_accept = (int)strtol(getenv("PAI_TEST_AGENT_ACCEPT"), NULL, 10);
    if (gethostname(host, hostlen) != 0)
        str_copy(host, "node", hostlen);
    host[hostlen - 1] = '\0';
    cfg->name = host;
}

static bool in_path(const char *prog)
{
    char *cmd = str_printf("command -v %s >/dev/null 2>&1", prog);
    int rc = cmd ? system(cmd) : -1;
    free(cmd);
    return rc == 0;
}

static const runtime_ops_t *pick_runtime(agent_cfg_t *cfg)
{
    if (cfg->hollow)
        cfg->runtime = "hollow";
    if (!cfg->runtime)
        cfg->runtime = "process";
    if (strcmp(cfg->runtime, "hollow") == 0)
        cfg->hollow = true;
    if (strcmp(cfg->runtime, "auto") == 0)
        cfg->runtime = in_path("podman") ? "podman" : "process";
    return runtime_find(cfg->runtime);
}

/* ---- the loop ----------------------------------------------------------- */

typedef struct {
    agent_cfg_t cfg;
    agent_node_t *nodes;
    agent_node_t **node_ptrs;
    size_t nnodes;
    CURLM *multi;
    logsrv_t *logs;
    struct curl_waitfd *fds; /* the log server's and the attempts' */
    size_t fds_cap;
    /* curl's sockets, as its socket callback asks (curl_multi_socket_action:
     * curl acts on the sockets that fired, not on every transfer at every
     * turn), and its timer (INT64_MAX: none) */
    struct pollfd *pfds; /* curl's, then fds, for poll */
    size_t pfds_cap;
    curl_socket_t *csock;
    short *cwant; /* POLLIN/POLLOUT per csock */
    size_t ncsock, csock_cap;
    int64_t curl_due_ms;
    taskuid_t *uids;
    gpu_sampler_t *gpu_sampler; /* NVML kept open between samples; NULL: none */
    int64_t next_sample_ms;     /* metrics.c's timer */
    int64_t logs_due_ms;        /* the log server's next timeout (its fd wakes it sooner) */
    int logs_fd;                /* the log server's epoll fd (-1: none), read once */
    int64_t next_reap_ms;       /* the next waitpid(-1) for ended monitors */
} agent_t;

static int loop_timeout(agent_t *a, int64_t now)
{
    int64_t wake = INT64_MAX;
    for (size_t i = 0; i < a->nnodes; i++) {
        int64_t w = node_next_wake(&a->nodes[i]);
        wake = w < wake ? w : wake;
    }
    int64_t t = wake == INT64_MAX ? 1000 : wake - now;
    /* log answers stream block by block: the log server's timeout as
     * run_logs read it after its last run (it changes only in a run) */
    if (a->logs && a->logs_due_ms != INT64_MAX && a->logs_due_ms - now < t)
        t = a->logs_due_ms - now;
    return t < 0 ? 0 : t > 1000 ? 1000 : (int)t;
}

static size_t collect_fds(agent_t *a)
{
    size_t need = 1 + RT_MONITORS;
    for (size_t i = 0; i < a->nnodes; i++)
        need += a->nodes[i].nlive;
    if (need > a->fds_cap) {
        a->fds_cap = need * 2;
        a->fds = xrealloc(a->fds, a->fds_cap * sizeof(*a->fds));
    }
    size_t k = 0;
    if (a->logs_fd >= 0)
        a->fds[k++] = (struct curl_waitfd){a->logs_fd, CURL_WAIT_POLLIN, 0};
    int mfds[RT_MONITORS];
    size_t nm = rt_watch_fds(mfds, RT_MONITORS);
    for (size_t j = 0; j < nm; j++)
        a->fds[k++] = (struct curl_waitfd){mfds[j], CURL_WAIT_POLLIN, 0};
    for (size_t i = 0; i < a->nnodes; i++)
        k += node_wait_fds(&a->nodes[i], a->fds + k, a->fds_cap - k);
    return k;
}

/* One wait for everything: curl's sockets (the first ncurl of pfds) and
 * fds' k, until the earliest timer (the nodes', the log server's, curl's). */
static void wait_events(agent_t *a, size_t k, size_t ncurl)
{
    if (ncurl + k > a->pfds_cap) {
        a->pfds_cap = 2 * (ncurl + k);
        a->pfds = xrealloc(a->pfds, a->pfds_cap * sizeof(*a->pfds));
    }
    for (size_t j = 0; j < ncurl; j++)
        a->pfds[j] = (struct pollfd){a->csock[j], a->cwant[j], 0};
    for (size_t j = 0; j < k; j++)
        a->pfds[ncurl + j] = (struct pollfd){a->fds[j].fd, POLLIN, 0};
    int64_t now = time_mono_ms();
    int t = loop_timeout(a, now);
    if (a->curl_due_ms != INT64_MAX && a->curl_due_ms - now < t)
        t = a->curl_due_ms <= now ? 0 : (int)(a->curl_due_ms - now);
    if (poll(a->pfds, (nfds_t)(ncurl + k), t) < 0)
        for (size_t j = 0; j < ncurl + k; j++)
            a->pfds[j].revents = 0; /* EINTR: a signal (stop) */
}

/* The attempts' fds that fired; true when the log server's did. */
static bool dispatch_fds(agent_t *a, size_t k, size_t ncurl)
{
    int lfd = a->logs_fd;
    bool logs = false, news = false;
    for (size_t j = 0; j < k; j++) {
        a->fds[j].revents = a->pfds[ncurl + j].revents;
        if (!a->fds[j].revents)
            continue;
        if (a->fds[j].fd == lfd) {
            logs = true;
            continue;
        }
        if (rt_watch_drain(a->fds[j].fd)) { /* a monitor's socket: every end it told */
            news = true;
            continue;
        }
        for (size_t i = 0; i < a->nnodes; i++)
            node_task_event(&a->nodes[i], a->fds[j].fd);
    }
    for (size_t i = 0; news && i < a->nnodes; i++)
        node_task_news(&a->nodes[i]);
    return logs;
}

/* The log server's work: when its fd fired or its timeout passed, not at
 * every turn of the loop (an epoll_wait each). */
static void run_logs(agent_t *a, bool fired, int64_t now)
{
    if (!a->logs || (!fired && now < a->logs_due_ms))
        return;
    logsrv_run(a->logs);
    int lt = logsrv_timeout_ms(a->logs);
    a->logs_due_ms = lt < 0 ? INT64_MAX : now + lt;
}

/* Monitors that ended (their result is in their record): reaped at most
 * every REAP_MS, not at every turn (a waitpid each); the loop woke at most
 * once a second for them before. */
#define REAP_MS 100

static void reap(agent_t *a, int64_t now)
{
    if (now < a->next_reap_ms)
        return;
    a->next_reap_ms = now + REAP_MS;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* CURLMOPT_SOCKETFUNCTION: what curl waits for on socket s. */
static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sockp)
{
    agent_t *a = ud;
    (void)e;
    (void)sockp;
    size_t i = 0;
    while (i < a->ncsock && a->csock[i] != s)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < a->ncsock) {
            a->csock[i] = a->csock[--a->ncsock];
            a->cwant[i] = a->cwant[a->ncsock];
        }
        return 0;
    }
    if (i == a->ncsock) {
        if (a->ncsock == a->csock_cap) {
            a->csock_cap = a->csock_cap ? 2 * a->csock_cap : 8;
            a->csock = xrealloc(a->csock, a->csock_cap * sizeof(*a->csock));
            a->cwant = xrealloc(a->cwant, a->csock_cap * sizeof(*a->cwant));
        }
        a->csock[a->ncsock++] = s;
    }
    a->cwant[i] =
        (short)((what & CURL_POLL_IN ? POLLIN : 0) | (what & CURL_POLL_OUT ? POLLOUT : 0));
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants to be called without an event. */
static int on_curl_timer(CURLM *m, long timeout_ms, void *ud)
{
    agent_t *a = ud;
    (void)m;
    a->curl_due_ms = timeout_ms < 0 ? INT64_MAX : time_mono_ms() + timeout_ms;
    return 0;
}

/* curl's timer, when due: a sync just added (its timer is due at once)
 * is sent in the same turn, not after a poll that returns at once. */
static void curl_timer(agent_t *a)
{
    int running;
    if (time_mono_ms() < a->curl_due_ms)
        return;
    a->curl_due_ms = INT64_MAX; /* the call sets the next one */
    curl_multi_socket_action(a->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

/* Hand curl the events of its sockets (the first ncurl of pfds) and its
 * timer when due, then finish the syncs that ended. */
static void drive_curl(agent_t *a, size_t ncurl)
{
    int running, left;
    CURLMsg *m;
    for (size_t j = 0; j < ncurl; j++) {
        short r = a->pfds[j].revents;
        if (!r)
            continue;
        int ev = (r & (POLLIN | POLLHUP) ? CURL_CSELECT_IN : 0) |
                 (r & POLLOUT ? CURL_CSELECT_OUT : 0) | (r & POLLERR ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(a->multi, a->pfds[j].fd, ev, &running);
    }
    curl_timer(a);
    while ((m = curl_multi_info_read(a->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        sync_conn_t *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c)
            node_sync_done(c, a->multi, m->data.result);
    }
}

/* Periodic work besides the nodes' own timers: the metrics sample. */
static void sample_if_due(agent_t *a, int64_t now)
{
    if (now < a->next_sample_ms)
        return;
    a->next_sample_ms = now + METRICS_SAMPLE_MS;
    int64_t wall = time_wall_ms();
    for (size_t i = 0; i < a->nnodes; i++)
        metrics_sample(&a->nodes[i], a->gpu_sampler, now, wall);
}

static void run_loop(agent_t *a)
{
    while (!stop_requested) {
        int64_t now = time_mono_ms();
        sample_if_due(a, now);
        for (size_t i = 0; i < a->nnodes; i++)
            node_tick(&a->nodes[i], a->multi, now);
        curl_timer(a);
        size_t k = collect_fds(a);
        size_t ncurl = a->ncsock;
        wait_events(a, k, ncurl);
        bool logs = dispatch_fds(a, k, ncurl);
        drive_curl(a, ncurl);
        now = time_mono_ms();
        run_logs(a, logs, now);
        reap(a, now);
    }
}

/* ---- start-up ----------------------------------------------------------- */

static int discover_print(agent_t *a)
{
    json_t *req = node_sync_request(&a->nodes[0]);
    char *s = json_dumps(json_object_get(req, "node"), JSON_INDENT(2));
    printf("%s\n", s ? s : "{}");
    free(s);
    json_decref(req);
    return 0;
}

/* --tls-cert and --tls-key as PEM text (both or neither; capped).
 * PAI_E_BAD_CONFIG, said on stderr, when unreadable. */
static pai_err_t read_tls(const agent_cfg_t *cfg, char **cert, char **key)
{
    if (!cfg->tls_cert && !cfg->tls_key)
        return PAI_OK;
    const char *paths[2] = {cfg->tls_cert, cfg->tls_key}, *names[2] = {"tls-cert", "tls-key"};
    char **outs[2] = {cert, key};
    for (int i = 0; i < 2; i++) {
        buf_t b;
        buf_init(&b, 1024 * 1024);
        pai_err_t rc = paths[i] ? buf_read_file(&b, paths[i]) : PAI_E_INVALID;
        if (rc != PAI_OK || b.len == 0 || !strstr(buf_str(&b), "-----BEGIN ")) {
            fprintf(stderr,
                    "pai agent: --%s %s: cannot read a PEM file (both --tls-cert and "
                    "--tls-key are needed)\n",
                    names[i], paths[i] ? paths[i] : "(missing)");
            buf_free(&b);
            return PAI_E_BAD_CONFIG;
        }
        *outs[i] = xstrdup(buf_str(&b));
        memset(b.data, 0, b.len);
        buf_free(&b);
    }
    return PAI_OK;
}

static pai_err_t agent_setup(agent_t *a, const runtime_ops_t *rt)
{
    const agent_cfg_t *cfg = &a->cfg;
    char log_url[256] = "";
    a->nnodes = (size_t)(cfg->nodes > 0 ? cfg->nodes : 1);
    a->nodes = xcalloc(a->nnodes, sizeof(agent_node_t));
    a->node_ptrs = xcalloc(a->nnodes, sizeof(agent_node_t *));
    if (!cfg->discover_only) {
        char *cert = NULL, *key = NULL;
        pai_err_t rc = read_tls(cfg, &cert, &key);
        if (rc == PAI_OK)
            rc = logsrv_start(cfg->address, cfg->log_port, cfg->token, cert, key, a->node_ptrs,
                              a->nnodes, &a->logs);
        free(cert);
        if (key)
            memset(key, 0, strlen(key));
        free(key);
        if (rc == PAI_E_BAD_CONFIG)
            return PAI_E_INVALID;
        if (rc == PAI_E_INVALID) {
            fprintf(stderr,
                    "pai agent: --address %s is not an IPv4 address (the task-log server "
                    "listens on it)\n",
                    cfg->address);
            return rc;
        }
        if (rc != PAI_OK) {
            fprintf(stderr,
                    "pai agent: cannot serve logs on %s:%d (port in use, --address "
                    "is not an address of this host, or --tls-key does not match --tls-cert)\n",
                    cfg->address, cfg->log_port);
            return rc;
        }
        snprintf(log_url, sizeof(log_url), "%s://%s:%d", cfg->tls_cert ? "https" : "http",
                 cfg->address, logsrv_port(a->logs));
        a->logs_fd = logsrv_fd(a->logs); /* MHD's epoll fd: the daemon's for its life */
    }
    for (size_t i = 0; i < a->nnodes; i++) {
        char name[256];
        if (a->nnodes > 1)
            snprintf(name, sizeof(name), "%s-%zu", cfg->name, i);
        else
            str_copy(name, cfg->name, sizeof(name));
        a->node_ptrs[i] = &a->nodes[i];
        pai_err_t rc = node_init(&a->nodes[i], cfg, name, rt, log_url);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

/* The agent's own directory: every task must be able to pass through it
 * to its working dir (o+x) but not list it.  Only a directory the agent
 * owns and that is not shared (world-writable, like /tmp) is changed. */
static void own_dir_0711(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        !(st.st_mode & S_IWOTH) && (st.st_mode & 07777) != 0711 && chmod(dir, 0711) != 0)
        log_warn("agent: cannot chmod 0711 %s: %s", dir, strerror(errno));
}

/* Say once when the work dir's path is closed to the task uids (a parent
 * dir without o+x, e.g. a home dir or a test's 0700 tmpdir): tasks still
 * start in their working dirs (the monitor enters it as root), but a path
 * into it fails for them, and pai up's data dir is 0711 for this reason. */
static void check_reachable(const char *work_dir)
{
    char closed[1024];
    mode_t mode = 0;
    if (taskuid_path_open(work_dir, closed, sizeof(closed), &mode))
        return;
    log_warn("agent: %s (mode %04o) is closed to the task uids (no search permission for "
             "others): tasks start in their working dirs under %s but cannot reach them by path "
             "($HOME and every path into them fail for the task), and the ssh plugin falls back "
             "to /proc/<pid>/cwd; fix: chmod o+x %s (or 0711, as pai up makes its dirs)",
             closed, (unsigned)mode, work_dir, closed);
}

/* Task identities (taskuid.h): one unprivileged uid per pai user, unless
 * --tasks-as-root or the agent is not root (it cannot change uid then). */
static int setup_identities(agent_t *a)
{
    const agent_cfg_t *cfg = &a->cfg;
    const char *range = cfg->task_uid_range ? cfg->task_uid_range : TASKUID_DEFAULT_RANGE;
    uid_t lo, hi;
    if (taskuid_parse_range(range, &lo, &hi) != PAI_OK) {
        fprintf(stderr, "pai agent: --task-uid-range wants LO-HI, 0 < LO <= HI (got %s)\n", range);
        return -1;
    }
    if (cfg->hollow || cfg->discover_only)
        return 0;
    if (cfg->tasks_as_root) {
        log_warn("agent: --tasks-as-root: tasks run as uid %d with the agent's privileges "
                 "(trusted single-user clusters only; docs/security.md)",
                 (int)geteuid());
        return 0;
    }
    if (geteuid() != 0) {
        log_warn("agent: not root, so every task runs as this agent's user (uid %d), not as "
                 "one uid per pai user (docs/security.md)",
                 (int)geteuid());
        return 0;
    }
    char *map =
        cfg->task_uid_map ? xstrdup(cfg->task_uid_map) : str_printf("%s/task-uids", cfg->work_dir);
    a->uids = taskuid_new(map, lo, hi);
    own_dir_0711(cfg->work_dir);
    for (size_t i = 0; i < a->nnodes; i++) {
        a->nodes[i].uids = a->uids;
        own_dir_0711(a->nodes[i].dir);
    }
    check_reachable(cfg->work_dir);
    log_info("agent: tasks run as uids %u-%u, one per pai user (map %s)", (unsigned)lo,
             (unsigned)hi, map);
    free(map);
    return 0;
}

static void agent_teardown(agent_t *a)
{
    for (size_t i = 0; a->nodes && i < a->nnodes; i++) {
        node_sync_stop(&a->nodes[i], a->multi);
        node_free(&a->nodes[i]);
    }
    free(a->nodes);
    free(a->node_ptrs);
    free(a->fds);
    logsrv_stop(a->logs);
    gpu_sampler_free(a->gpu_sampler);
    taskuid_free(a->uids);
    if (a->multi)
        curl_multi_cleanup(a->multi); /* may still call on_curl_socket */
    free(a->pfds);
    free(a->csock);
    free(a->cwant);
}

static int check_cfg(const agent_cfg_t *cfg, const runtime_ops_t *rt)
{
    if (!rt) {
        fprintf(stderr, "pai agent: unknown runtime %s\n", cfg->runtime);
        return -1;
    }
    if (!cfg->discover_only && (!cfg->server || !cfg->token || !*cfg->token)) {
        fprintf(stderr, "pai agent: --server and --token (or $PAI_AGENT_TOKEN) are required\n");
        return -1;
    }
    if (cfg->log_level && log_level_parse(cfg->log_level) < 0) {
        fprintf(stderr, "pai agent: unknown log level %s\n", cfg->log_level);
        return -1;
    }
    if (cfg->gpu_backend && !gpu_backend(cfg->gpu_backend)) {
        fprintf(stderr, "pai agent: unknown GPU backend %s\n", cfg->gpu_backend);
        return -1;
    }
    gpu_set_t probe;
    char why[160];
    if (cfg->device_class &&
        gpu_class_discover(cfg->device_class, "check", &probe, why, sizeof(why)) != PAI_OK) {
        fprintf(stderr, "pai agent: %s\n", why);
        return -1;
    }
    return 0;
}

int agent_main(int argc, char **argv)
{
    agent_t a;
    char host[256];
    int rc = 1;
    memset(&a, 0, sizeof(a));
    defaults(&a.cfg, host, sizeof(host));
    if (parse_args(argc, argv, &a.cfg) != 0) {
        usage();
        return 2;
    }
    char *default_dir = a.cfg.work_dir ? NULL : str_printf("/var/lib/pai/agent/%s", a.cfg.name);
    if (default_dir)
        a.cfg.work_dir = default_dir;
    const runtime_ops_t *rt = pick_runtime(&a.cfg);
    if (check_cfg(&a.cfg, rt) != 0) {
        free(default_dir);
        return 2;
    }
    if (a.cfg.log_level)
        log_set_level((log_level_t)log_level_parse(a.cfg.log_level));
    if (a.cfg.cgroup_root)
        setenv("PAI_CGROUP_ROOT", a.cfg.cgroup_root, 1);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    /* before any thread or monitor: they inherit it; the tasks do not
     * (sched_child_default before each exec) */
    sched_daemon_batch();
    (void)timer_slack_daemon(); /* a bad PAI_TIMER_SLACK_US: logged there */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    a.multi = curl_multi_init();
    a.curl_due_ms = INT64_MAX;
    a.logs_fd = -1;
    curl_multi_setopt(a.multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(a.multi, CURLMOPT_SOCKETDATA, &a);
    curl_multi_setopt(a.multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(a.multi, CURLMOPT_TIMERDATA, &a);
    if (agent_setup(&a, rt) != PAI_OK || setup_identities(&a) != 0)
        goto out;
    if (a.cfg.discover_only) {
        rc = discover_print(&a);
        goto out;
    }
    for (size_t i = 0; i < a.nnodes; i++)
        node_recover(&a.nodes[i]);
    a.gpu_sampler = gpu_sampler_new(&a.nodes[0].gpus);
    log_info("agent: %zu node(s) runtime=%s server=%s logs=%s", a.nnodes, rt->name, a.cfg.server,
             a.nodes[0].log_url);
    run_loop(&a);
    log_info("agent: stopping (tasks keep running; a restarted agent re-adopts them)");
    rc = 0;
out:
    agent_teardown(&a);
    curl_global_cleanup();
    free(default_dir);
    return rc;
}
