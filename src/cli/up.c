/*
 * up.c - `pai up` (a whole cluster on this machine) and `pai down`.
 *
 * pai up is a small supervisor:
 *   1. preflight: runtime dependencies, data directory writable, port free,
 *      no other `pai up` on the same data directory (pidfile);
 *   2. secrets: the admin password and the agent token are generated once
 *      into the data directory (mode 0600) and reused on every restart, so
 *      a restart keeps the store, its jobs and everyone's logins;
 *   3. the supervisor (up_proc.c) starts `pai server` and one `pai agent`
 *      per node, waits for them, and prints the portal URL, API URL and
 *      admin login (banner(), here);
 *   4. it waits for Ctrl-C / SIGTERM (`pai down`, here, sends it) or a
 *      child's death, then stops the agents, then the server, and removes
 *      the pidfile.
 *
 * Isolation (docs/security.md): run as root, the agents give each pai user
 * its own unprivileged uid, so the data directory is made passable but not
 * listable (0711: tasks reach agents/<node>/tasks/<id>/cwd), everything
 * else in it private (umask 077: the store, secrets and logs are 0600).
 * --tasks-as-root turns that off; the banner says which holds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/taskuid.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/up.h"
#include "common/fs.h"
#include "common/util.h"
#include "store/store.h"

#define UP_DEFAULT_DD ".pai"
#define UP_SCHED_FILE "scheduler.yaml"
#define UP_SHAPE_FILE "scheduler.shape"

static const cli_opt_t up_opts[] = {
    {.name = "data-dir",
     .arg = "DIR",
     .help = "store, logs and secrets (default: $PAI_DATA_DIR, else ./.pai)"},
    {.name = "port", .arg = "PORT", .help = "port of the REST API and portal (default 9186)"},
    {.name = "listen", .arg = "ADDR", .help = "address to listen on (default 127.0.0.1)"},
    {.name = "nodes", .arg = "N", .help = "number of simulated nodes (default 2)"},
    {.name = "gpus", .arg = "N", .help = "simulated GPUs per node (default 4)"},
    {.name = "gpu-model", .arg = "MODEL", .help = "GPU model the nodes report (default sim-gpu)"},
    {.name = "cpus-per-node",
     .arg = "N",
     .help = "CPUs each simulated node reports (default 8; the nodes share, and so overcommit, the "
             "host's CPUs)"},
    {.name = "memory-mb-per-node",
     .arg = "MB",
     .help = "memory each simulated node reports (default 16384)"},
    {.name = "amd-nodes",
     .arg = "N",
     .help = "also N simulated AMD nodes (amd-node-I, --gpus MI250X GPUs each, a fake sysfs "
             "tree; default 0)"},
    {.name = "fpga-nodes",
     .arg = "N",
     .help = "also N nodes with a simulated FPGA device class (fpga-node-I, --gpus devices of "
             "SKU sim-fpga each, FPGA_VISIBLE_DEVICES; default 0)"},
    {.name = "runtime", .arg = "RT", .help = "process (default), podman or hollow"},
    {.name = "hived-config",
     .arg = "FILE",
     .help =
         "scheduler config in HiveD's format; its nodes become the agents (default: one generated "
         "in the data directory, VC default owning every node)"},
    {.name = "detach", .help = "return once the cluster is up (stop it with `pai down`)"},
    {.name = "tasks-as-root",
     .help = "run every task as root, like the agents (trusted single-user machines only; "
             "default: one unprivileged uid per pai user)"},
    {0},
};
static const cli_cmd_t up_cmd = {
    .name = "up",
    .synopsis =
        "[--nodes N] [--gpus N] [--runtime process|podman] [--hived-config FILE] [--port P]",
    .summary =
        "Start a whole pai cluster on this machine: the server (with its SQLite store in the\n"
        "data directory) and one agent per node with simulated GPUs.  Prints the portal URL,\n"
        "the API URL and the admin login.  Ctrl-C (or `pai down`) stops everything; starting\n"
        "again with the same data directory keeps the jobs.",
    .opts = up_opts};

static const cli_opt_t down_opts[] = {
    {.name = "data-dir",
     .arg = "DIR",
     .help = "the data directory `pai up` used (default: $PAI_DATA_DIR, else ./.pai)"},
    {.name = "stop-jobs",
     .help = "stop every running or waiting job first (else running tasks keep "
             "running and the next `pai up` re-adopts them)"},
    {0},
};
static const cli_cmd_t down_cmd = {
    .name = "down",
    .synopsis = "[--data-dir DIR] [--stop-jobs]",
    .summary = "Stop the cluster that `pai up` started: agents, then the server.  Tasks that are\n"
               "running keep running and the next `pai up` re-adopts them; --stop-jobs stops\n"
               "every job first.",
    .opts = down_opts};

/* ---- small helpers ---- */

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char *copy = xstrdup(path ? path : "/usr/bin:/bin");
    bool found = false;
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        char *p = str_printf("%s/%s", d, prog);
        found = access(p, X_OK) == 0;
        free(p);
    }
    free(copy);
    return found;
}

static void default_dir(const cli_args_t *a, char *out, size_t n)
{
    const char *d = cli_opt(a, "data-dir");
    if (!d)
        d = getenv("PAI_DATA_DIR");
    if (!d || !*d)
        d = UP_DEFAULT_DD;
    char *abs = realpath(d, NULL);
    if (abs)
        str_copy(out, abs, n);
    else if (d[0] == '/')
        str_copy(out, d, n);
    else {
        char cwd[PATH_MAX];
        char *full = str_printf("%s/%s", getcwd(cwd, sizeof(cwd)) ? cwd : ".", d);
        str_copy(out, full, n);
        free(full);
    }
    free(abs);
}

/* ---- preflight ---- */

static int check_runtime(const up_t *u)
{
    if (strcmp(u->runtime, "process") != 0 && strcmp(u->runtime, "podman") != 0 &&
        strcmp(u->runtime, "hollow") != 0) {
        fprintf(stderr, "pai up: --runtime must be process, podman or hollow (got '%s')\n",
                u->runtime);
        return CLI_USAGE;
    }
    if (strcmp(u->runtime, "podman") == 0 && !in_path("podman")) {
        fprintf(stderr, "pai up: --runtime podman needs podman, which is not installed.\n"
                        "  fix: bash scripts/deps.sh --podman   (or: apt-get install podman "
                        "runc busybox-static)\n");
        return CLI_USAGE;
    }
    if (strcmp(u->runtime, "process") == 0 && !in_path("bash")) {
        fprintf(stderr, "pai up: the process runtime runs task commands with bash, which is "
                        "not on PATH.\n  fix: apt-get install bash\n");
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int check_dir(const up_t *u)
{
    pai_err_t made = fs_mkdir_p(u->dir, 0700);
    (void)made; /* the write test below says what is wrong, if anything */
    char *tmp = str_printf("%s/.write-test", u->dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(tmp);
        fprintf(stderr,
                "pai up: the data directory %s is not writable (%s).\n"
                "  fix: choose another with --data-dir DIR (or PAI_DATA_DIR), or fix its "
                "permissions\n",
                u->dir, strerror(errno));
        return CLI_USAGE;
    }
    close(fd);
    unlink(tmp);
    free(tmp);
    pid_t pid = up_read_pidfile(u->dir);
    if (up_alive(pid)) {
        fprintf(stderr,
                "pai up: a cluster is already running from %s (pid %d).\n"
                "  fix: stop it with `pai down --data-dir %s`, or use another --data-dir\n",
                u->dir, (int)pid, u->dir);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int check_port(const up_t *u)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)u->port)};
    int one = 1, rc = CLI_OK;
    if (inet_pton(AF_INET, u->listen, &sa.sin_addr) != 1) {
        fprintf(stderr, "pai up: --listen wants an IPv4 address (got '%s')\n", u->listen);
        rc = CLI_USAGE;
    } else if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
               bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr,
                "pai up: port %d on %s is already in use (%s).\n"
                "  fix: pick another with --port N, or stop the program that uses it\n",
                u->port, u->listen, strerror(errno));
        rc = CLI_FAIL;
    }
    if (s >= 0)
        close(s);
    return rc;
}

/* ---- secrets ---- */

static int secret(const up_t *u, const char *name, char *out, size_t n)
{
    char *p = str_printf("%s/%s", u->dir, name);
    buf_t b;
    buf_init(&b, 256);
    int rc = CLI_OK;
    if (buf_read_file(&b, p) == PAI_OK && b.len >= 8) {
        b.data[strcspn(b.data, "\r\n")] = '\0';
        str_copy(out, buf_str(&b), n);
        goto out;
    }
    unsigned char raw[12];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(out, n, raw, sizeof(raw));
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, out, strlen(out)) != (ssize_t)strlen(out)) {
        fprintf(stderr, "pai up: cannot write %s: %s\n", p, strerror(errno));
        rc = CLI_FAIL;
    }
    if (fd >= 0)
        close(fd);
out:
    buf_free(&b);
    free(p);
    return rc;
}

/* ---- the scheduler config ---- */

/* What the scheduler config describes, in words (kept in scheduler.shape). */
static char *shape_of(const up_t *u)
{
    if (u->hived) {
        char *abs = realpath(u->hived, NULL);
        char *s = str_printf("the file %s", abs ? abs : u->hived);
        free(abs);
        return s;
    }
    if (u->node[0].gpus == 0)
        return str_printf("%d CPU-only node(s) without a scheduler config", u->nnodes);
    int others[3] = {0};
    for (int i = 0; i < u->nnodes; i++)
        others[u->node[i].kind]++;
    if (others[UP_AMD] || others[UP_FPGA])
        return str_printf("%d node(s) x %d %s GPU(s), %d AMD node(s), %d FPGA node(s)",
                          others[UP_NVIDIA], u->node[0].gpus, u->node[0].gpu_model, others[UP_AMD],
                          others[UP_FPGA]);
    return str_printf("%d node(s) x %d %s GPU(s)", u->nnodes, u->node[0].gpus,
                      u->node[0].gpu_model);
}

/* A VC change made at run time is stored with the whole config and wins
 * over the file at the next start; when the cluster's shape changed it
 * describes nodes that no longer exist, so it goes. */
static int drop_stored_config(const up_t *u)
{
    char *db = str_printf("%s/pai.db", u->dir);
    char *url = str_printf("sqlite:%s", db);
    store_t *st = NULL;
    char err[256];
    int rc = CLI_OK;
    if (access(db, F_OK) == 0) {
        pai_err_t e = store_open(url, &st, err, sizeof(err));
        if (e == PAI_OK)
            e = store_del(st, "meta", "hived_config");
        if (e != PAI_OK && e != PAI_E_NOT_FOUND) {
            fprintf(stderr, "pai up: cannot reset the stored scheduler config in %s: %s\n", db,
                    st ? pai_err_msg(e) : err);
            rc = CLI_FAIL;
        }
        store_close(st);
    }
    free(url);
    free(db);
    return rc;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return CLI_FAIL;
    fprintf(f, "%s\n", text);
    return fclose(f) == 0 ? CLI_OK : CLI_FAIL;
}

/* Without --hived-config (and with GPUs), generate one describing exactly
 * the simulated cluster so that admins can change VCs; when the shape
 * differs from the last start, say so and drop VC changes made since. */
static int scheduler_config(up_t *u)
{
    char *shape_path = str_printf("%s/%s", u->dir, UP_SHAPE_FILE);
    char *shape = shape_of(u);
    buf_t old;
    buf_init(&old, 4096);
    bool had = buf_read_file(&old, shape_path) == PAI_OK;
    if (had)
        old.data[strcspn(old.data, "\n")] = '\0';
    int rc = CLI_OK;
    if (!u->hived && u->node[0].gpus > 0) {
        snprintf(u->gen_config, sizeof(u->gen_config), "%s/%s", u->dir, UP_SCHED_FILE);
        if (up_hived_generate(u->gen_config, u->node, u->nnodes) != 0)
            rc = CLI_FAIL;
        else
            u->hived = u->gen_config;
    }
    if (rc == CLI_OK && had && strcmp(buf_str(&old), shape) != 0) {
        printf("pai up: the cluster changed (was: %s; now: %s).\n"
               "  The scheduler config %s; VCs created or resized at run time were reset.\n",
               buf_str(&old), shape,
               u->gen_config[0] ? "was regenerated (one VC default owns every node)"
                                : "comes from the new source");
        rc = drop_stored_config(u);
    }
    if (rc == CLI_OK && write_text(shape_path, shape) != CLI_OK) {
        fprintf(stderr, "pai up: cannot write %s\n", shape_path);
        rc = CLI_FAIL;
    }
    buf_free(&old);
    free(shape);
    free(shape_path);
    return rc;
}

/* The repository's examples/ next to the binary's build folder
 * (build/pai -> examples/), published as templates at the server's first
 * start (template_examples); "" when the binary is elsewhere. */
static void find_examples(up_t *u)
{
    char *slash = strrchr(u->self, '/');
    char *probe = str_printf("%.*s/../examples/hello-world.yaml",
                             slash ? (int)(slash - u->self) : 1, slash ? u->self : ".");
    char real[PATH_MAX];
    u->examples[0] = '\0';
    if (realpath(probe, real)) {
        char *d = strrchr(real, '/');
        *d = '\0';
        str_copy(u->examples, real, sizeof u->examples);
    }
    free(probe);
}

/* --amd-nodes and --fpga-nodes: simulated nodes of other accelerators,
 * each its own SKU in the generated scheduler config. */
static int add_accel_nodes(up_t *u, int amd, int fpga, int gpus)
{
    if (u->nnodes + amd + fpga > UP_MAX_NODES) {
        fprintf(stderr, "pai up: at most %d nodes in all\n", UP_MAX_NODES);
        return CLI_USAGE;
    }
    if ((amd || fpga) && gpus == 0) {
        fprintf(stderr, "pai up: --amd-nodes and --fpga-nodes want --gpus 1 or more\n");
        return CLI_USAGE;
    }
    for (int i = 0; i < amd + fpga; i++) {
        up_node_t *nd = &u->node[u->nnodes++];
        bool is_amd = i < amd;
        snprintf(nd->name, sizeof(nd->name), "%s-node-%d", is_amd ? "amd" : "fpga",
                 is_amd ? i + 1 : i - amd + 1);
        str_copy(nd->gpu_model, is_amd ? "MI250X" : "sim-fpga", sizeof(nd->gpu_model));
        nd->gpus = gpus;
        nd->kind = is_amd ? UP_AMD : UP_FPGA;
    }
    return CLI_OK;
}

/* ---- start-up ---- */

static int parse_up(const cli_args_t *a, up_t *u)
{
    int nodes, gpus, amd, fpga;
    if (cli_opt_int(a, "port", 1, 65535, 9186, &u->port) != CLI_OK ||
        cli_opt_int(a, "nodes", 1, UP_MAX_NODES, 2, &nodes) != CLI_OK ||
        cli_opt_int(a, "amd-nodes", 0, UP_MAX_NODES, 0, &amd) != CLI_OK ||
        cli_opt_int(a, "fpga-nodes", 0, UP_MAX_NODES, 0, &fpga) != CLI_OK ||
        cli_opt_int(a, "gpus", 0, 64, 4, &gpus) != CLI_OK ||
        cli_opt_int(a, "cpus-per-node", 1, 4096, 8, &u->cpus) != CLI_OK ||
        cli_opt_int(a, "memory-mb-per-node", 64, INT_MAX, 16384, &u->memory_mb) != CLI_OK)
        return CLI_USAGE;
    default_dir(a, u->dir, sizeof(u->dir));
    str_copy(u->listen, cli_opt(a, "listen") ? cli_opt(a, "listen") : "127.0.0.1",
             sizeof(u->listen));
    u->runtime = cli_opt(a, "runtime") ? cli_opt(a, "runtime") : "process";
    u->as_root = cli_flag(a, "tasks-as-root");
    u->hived = cli_opt(a, "hived-config");
    const char *model = cli_opt(a, "gpu-model") ? cli_opt(a, "gpu-model") : "sim-gpu";
    if (!*model || strlen(model) >= 48 ||
        strspn(model, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            strlen(model)) {
        fprintf(stderr,
                "pai up: --gpu-model wants letters, digits, '.', '_' or '-' (at most 47; "
                "got '%s')\n",
                model);
        return CLI_USAGE;
    }
    if (u->hived) {
        u->nnodes = up_hived_nodes(u->hived, u->node, UP_MAX_NODES);
        if (u->nnodes < 0)
            return CLI_USAGE;
    } else {
        u->nnodes = nodes;
        for (int i = 0; i < nodes; i++) {
            snprintf(u->node[i].name, sizeof(u->node[i].name), "node-%d", i + 1);
            str_copy(u->node[i].gpu_model, model, sizeof(u->node[i].gpu_model));
            u->node[i].gpus = gpus;
        }
        if (add_accel_nodes(u, amd, fpga, gpus) != CLI_OK)
            return CLI_USAGE;
    }
    const char *host = strcmp(u->listen, "0.0.0.0") == 0 ? "127.0.0.1" : u->listen;
    snprintf(u->url, sizeof(u->url), "http://%s:%d", host, u->port);
    ssize_t n = readlink("/proc/self/exe", u->self, sizeof(u->self) - 1);
    if (n <= 0)
        return CLI_FAIL;
    u->self[n] = '\0';
    find_examples(u);
    return CLI_OK;
}

/* True when tasks get their own uids (docs/security.md). */
static bool isolated(const up_t *u)
{
    return !u->as_root && geteuid() == 0 && strcmp(u->runtime, "hollow") != 0;
}

/* The data directory's modes (see the top of the file): what an older
 * version or another umask left readable becomes private; the two
 * directories on the tasks' way to their working dirs become 0711. */
static void private_data_dir(const up_t *u)
{
    DIR *d = opendir(u->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        char *p = str_printf("%s/%s", u->dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) &&
            (st.st_mode & 077) && strcmp(e->d_name, "agents") != 0)
            (void)chmod(p, st.st_mode & 07700);
        free(p);
    }
    if (d)
        closedir(d);
    mode_t way = isolated(u) ? 0711 : 0700;
    struct stat st;
    if (stat(u->dir, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & S_IWOTH))
        (void)chmod(u->dir, way);
    char *agents = str_printf("%s/agents", u->dir);
    (void)chmod(agents, way);
    free(agents);
}

static int preflight(up_t *u)
{
    int rc = check_runtime(u);
    if (rc == CLI_OK)
        rc = check_dir(u);
    if (rc == CLI_OK)
        rc = check_port(u);
    if (rc == CLI_OK && sodium_init() < 0)
        rc = CLI_FAIL;
    if (rc == CLI_OK)
        rc = secret(u, "admin.password", u->admin_pw, sizeof(u->admin_pw));
    if (rc == CLI_OK)
        rc = secret(u, "agent.token", u->agent_token, sizeof(u->agent_token));
    if (rc == CLI_OK)
        rc = scheduler_config(u);
    char *d = str_printf("%s/logs", u->dir);
    mkdir(d, 0700);
    free(d);
    d = str_printf("%s/agents", u->dir);
    mkdir(d, 0700);
    free(d);
    if (rc == CLI_OK)
        private_data_dir(u);
    return rc;
}

static void banner(const up_t *u)
{
    int gpus = 0;
    for (int i = 0; i < u->nnodes; i++)
        gpus += u->node[i].gpus;
    printf("pai is up: server + %d node%s, %d GPUs (%s runtime)\n", u->nnodes,
           u->nnodes == 1 ? "" : "s", gpus, u->runtime);
    printf("  portal:  %s/\n", u->url);
    printf("  API:     %s/api/v2\n", u->url);
    printf("  login:   admin / %s\n", u->admin_pw);
    printf("  data:    %s (logs in %s/logs)\n", u->dir, u->dir);
    printf("  nodes:   %d CPUs, %d MiB each (simulated: they share the host's CPUs)\n", u->cpus,
           u->memory_mb);
    if (strcmp(u->runtime, "hollow") == 0)
        ;
    else if (isolated(u))
        printf("  tasks:   one unprivileged uid per pai user (" TASKUID_DEFAULT_RANGE
               "), never root\n");
    else if (u->as_root)
        printf("  tasks:   RUN AS ROOT (--tasks-as-root): every job can read the cluster's "
               "secrets; trusted single-user use only\n");
    else
        printf("  tasks:   run as uid %d, like the agents (not root, so pai up cannot give each "
               "user its own uid; see docs/security.md)\n",
               (int)geteuid());
    if (u->hived)
        printf("  config:  %s%s\n", u->hived,
               u->gen_config[0] ? " (generated; admins change VCs in the portal or API)" : "");
    else
        printf(
            "  config:  none (CPU-only nodes: every node in VC default; VCs cannot be changed)\n");
    printf("\n");
    printf("next:  pai login %s --user admin --password %s\n", u->url, u->admin_pw);
    printf("       pai submit examples/hello-world.yaml && pai wait hello-world\n");
    printf("stop:  Ctrl-C here, or `pai down%s%s`\n", u->dir[0] ? " --data-dir " : "", u->dir);
    fflush(stdout);
}

int up_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&up_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    up_t *u = xcalloc(1, sizeof(*u));
    int ready_fd = -1;
    umask(077); /* the store, secrets and logs are no one else's (and the children's) */
    rc = parse_up(&a, u);
    if (rc == CLI_OK)
        rc = preflight(u);
    if (rc != CLI_OK)
        goto out;
    if (cli_flag(&a, "detach") && up_detach(&ready_fd) != 0) {
        rc = CLI_FAIL;
        goto out;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    rc = up_start_all(u);
    if (rc == CLI_OK) {
        banner(u);
        if (ready_fd >= 0)
            up_detached_ready(u, ready_fd);
    }
    if (rc == CLI_OK || rc == UP_CHILD_DIED)
        rc = up_supervise(u, &set);
    up_stop_all(u);
    fprintf(stderr, "pai up: stopped\n");
out:
    free(u);
    return rc;
}

int down_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&down_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    char dir[PATH_MAX];
    default_dir(&a, dir, sizeof(dir));
    pid_t pid = up_read_pidfile(dir);
    if (!up_alive(pid)) {
        fprintf(stderr, "pai down: no cluster is running from %s\n", dir);
        return CLI_FAIL;
    }
    if (cli_flag(&a, "stop-jobs") && up_stop_jobs(dir) != CLI_OK)
        return CLI_FAIL;
    kill(pid, SIGTERM);
    int64_t t0 = time_mono_ms();
    /* Done when the supervisor removed its pidfile or is gone (a zombie
     * whose parent has not reaped it yet counts as gone). */
    while (up_alive(pid) && up_read_pidfile(dir) == pid &&
           time_mono_ms() - t0 < 2 * UP_GRACE_MS + 5000)
        up_sleep_ms(100);
    if (up_alive(pid) && up_read_pidfile(dir) == pid) {
        fprintf(stderr, "pai down: pid %d did not stop; kill it with `kill -9 %d`\n", (int)pid,
                (int)pid);
        return CLI_FAIL;
    }
    printf("stopped the cluster in %s\n", dir);
    return CLI_OK;
}
