/*
 * server_main.c - `pai server`: load the config, open the store, start the
 * modules in table order, serve HTTP until SIGINT/SIGTERM, then stop
 * everything in reverse order.
 *
 * Signals are blocked in every thread (set before any thread starts) and
 * taken synchronously with sigwait() here, so no handler code runs in
 * signal context.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/engine.h"
#include "server/config.h"
#include "server/leader.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/standby.h"

pai_err_t server_on_quiesce(server_ctx_t *ctx, server_quiesce_fn fn)
{
    if (ctx->nquiesce >= SERVER_MAX_QUIESCE)
        return PAI_E_TOO_LARGE;
    ctx->quiesce[ctx->nquiesce++] = fn;
    return PAI_OK;
}

static void quiesce_all(server_ctx_t *ctx)
{
    while (ctx->nquiesce > 0)
        ctx->quiesce[--ctx->nquiesce](ctx);
}

/* Start modules [0, n); on failure stop the started ones. */
static pai_err_t modules_start(server_ctx_t *ctx, size_t *started)
{
    *started = 0;
    for (size_t i = 0; server_modules[i]; i++) {
        const server_module_t *m = server_modules[i];
        pai_err_t rc = m->init ? m->init(ctx) : PAI_OK;
        if (rc != PAI_OK) {
            log_error("server: module %s failed to start: %s", m->name, pai_err_msg(rc));
            return rc;
        }
        *started = i + 1;
        log_debug("server: module %s started", m->name);
    }
    return PAI_OK;
}

static void modules_stop(server_ctx_t *ctx, size_t started)
{
    while (started-- > 0)
        if (server_modules[started]->fini)
            server_modules[started]->fini(ctx);
}

/* SIGINT/SIGTERM within ms, or 0. */
static int wait_for_signal(int64_t ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    int sig = sigtimedwait(&set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

static void block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Connections are file descriptors: lift the soft limit to the hard one
 * (1024 by default on Linux, a ceiling far below max_connections) and say
 * so when even that is too low for the connections allowed. */
static void raise_fd_limit(unsigned max_connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    /* each connection is one fd; evicted ones linger until their socket is closed */
    rlim_t need = (rlim_t)max_connections * 2 + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_warn("server: open files limit %llu is below the %llu that max_connections %u needs; "
                 "raise it (ulimit -n, LimitNOFILE=) or lower max_connections",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)need, max_connections);
}

/* SQLite serves one server (no election: docs/operations.md, "High
 * availability"): a second `pai server` on the same file is refused.  The
 * lock is an flock on PATH.lock, held until this process ends (kill -9
 * included); the file says who holds it.  Returns the lock's fd, or -1
 * with err set. */
static int lock_sqlite(const char *url, char *err, size_t errlen)
{
    const char *path = str_has_prefix(url, "sqlite://") ? url + strlen("sqlite://")
                       : str_has_prefix(url, "sqlite:") ? url + strlen("sqlite:")
                                                        : url;
    char *lock = str_printf("%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", lock, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char who[32] = "";
        ssize_t n = pread(fd, who, sizeof(who) - 1, 0);
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        snprintf(err, errlen,
                 "the SQLite store %s is in use by another pai server (pid %s): SQLite serves one "
                 "server; several servers need PostgreSQL (docs/operations.md, High availability)",
                 path, *who ? who : "?");
        close(fd);
        fd = -1;
    } else {
        char me[32];
        int len = snprintf(me, sizeof(me), "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, me, (size_t)len, 0) != len)
            log_debug("server: cannot note the pid in %s", lock);
    }
    free(lock);
    return fd;
}

/* The URL clients reach this server at: advertise_url, else one made of
 * the listen address (the host name for a wildcard one) and the port. */
static char *advertised(const server_config_t *cfg, int port)
{
    if (*cfg->advertise_url)
        return xstrdup(cfg->advertise_url);
    char host[256] = "";
    const char *addr = cfg->listen_addr;
    if (strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0) {
        if (gethostname(host, sizeof(host) - 1) != 0)
            str_copy(host, "localhost", sizeof(host));
        addr = host;
    }
    return str_printf("%s://%s:%d", *cfg->tls_cert ? "https" : "http", addr, port);
}

/* Elected: start the modules (they restore everything from the store),
 * then open the gate. */
static pai_err_t promote(server_ctx_t *ctx, size_t *started)
{
    standby_stop(ctx->standby); /* its view is no longer read: the modules answer */
    if (modules_start(ctx, started) != PAI_OK) {
        fprintf(stderr, "pai server: start-up failed (see the log above)\n");
        return PAI_E_INTERNAL;
    }
    leader_promoted(ctx->leader);
    return PAI_OK;
}

/* A leader (of several servers) that holds healthy nodes none of which has
 * synced for leader_agents_silent_s reaches the store but not its agents:
 * it should not lead (docs/operations.md, "High availability"). */
/* An agent cut off from a leader finds another within about 20 s (its
 * held poll's timeout on a connection that died silently), then within a
 * connect timeout and a backoff (agent/node.c): a new leader must not count
 * them silent sooner. */
#define AGENTS_SILENT_MIN_MS 30000

static bool agents_lost(server_ctx_t *ctx)
{
    int64_t limit = ctx->cfg->leader_agents_silent_s * 1000;
    if (limit <= 0 || leader_is_single(ctx->leader) || !ctx->engine)
        return false;
    if (limit < AGENTS_SILENT_MIN_MS)
        limit = AGENTS_SILENT_MIN_MS;
    int64_t silent = engine_agents_silent_ms(ctx->engine);
    if (silent <= limit)
        return false;
    log_warn("leader: no agent has synced for %lld s (leader_agents_silent_s %lld s): giving "
             "the lease up so that a server that reaches them leads",
             (long long)(silent / 1000), (long long)(limit / 1000));
    return true;
}

/* A server on a store with election (PostgreSQL) serves HTTP from the
 * start as a standby (GET /api/v2/info; everything else names the leader)
 * and starts its modules only once elected.  A single server (SQLite)
 * starts its modules first, as it always leads. */
static int serve(server_config_t *cfg)
{
    server_ctx_t ctx = {.cfg = cfg};
    char err[512] = "";
    size_t started = 0;
    http_server_t *http = NULL;
    int status = 1;
    bool leads = false;
    int lockfd = -1; /* SQLite: this server's hold on the file */
    char *url = server_config_store_url(cfg), *self = NULL;
    if (fs_mkdir_p(cfg->data_dir, 0700) != PAI_OK) {
        fprintf(stderr, "pai server: cannot create data_dir %s: %s\n", cfg->data_dir,
                strerror(errno));
        goto out;
    }
    bool sqlite = str_has_prefix(url, "sqlite:") || !strstr(url, "://");
    if (sqlite && (lockfd = lock_sqlite(url, err, sizeof(err))) < 0) {
        fprintf(stderr, "pai server: %s\n", err);
        goto out;
    }
    if (store_open(url, &ctx.store, err, sizeof(err)) != PAI_OK) {
        fprintf(stderr, "pai server: %s\n", err);
        goto out;
    }
    store_set_timeout(ctx.store, cfg->store_timeout_s * 1000);
    ctx.metrics = metrics_new();
    ctx.leader = leader_new(ctx.store, cfg->leader_lease_s * 1000);
    if (metrics_register(ctx.metrics, "leader", leader_metrics, ctx.leader) != PAI_OK)
        goto out;
    if (leader_is_single(ctx.leader)) {
        if (promote(&ctx, &started) != PAI_OK)
            goto out;
        leads = true;
    } else {
        /* the store refuses this server's writes until it is elected
         * (promotion fences it with its term) */
        store_set_fence(ctx.store, STANDBY_FENCE_TERM, cfg->leader_lease_s * 500);
        ctx.standby = standby_new(&ctx, cfg->standby_refresh_s * 1000);
        if (!ctx.standby ||
            metrics_register(ctx.metrics, "standby", standby_metrics, ctx.standby) != PAI_OK)
            goto out;
    }
    http_limits_t lim = {.max_connections = (unsigned)cfg->max_connections,
                         .per_addr_idle = (unsigned)cfg->max_idle_connections_per_ip,
                         .idle_timeout_s = (unsigned)cfg->connection_timeout_s,
                         .threads = (unsigned)cfg->http_threads,
                         .offload_threads = (unsigned)cfg->http_offload_threads,
                         .write_threads = (unsigned)cfg->http_write_threads,
                         .conn_memory_kib = (unsigned)cfg->http_connection_memory_kib,
                         .sched_batch = cfg->http_sched_batch != 0};
    raise_fd_limit(lim.max_connections);
    pai_error_t e = PAI_ERROR_INIT;
    if (http_server_start(&ctx, cfg->listen_addr, (int)cfg->port, &lim, &http, &e) != PAI_OK) {
        fprintf(stderr, "pai server: %s\n", pai_error_msg(&e));
        pai_error_free(&e);
        goto out;
    }
    self = advertised(cfg, http_server_port(http));
    leader_set_url(ctx.leader, self);
    if (leader_start(ctx.leader) != PAI_OK) {
        fprintf(stderr, "pai server: cannot start the leader election\n");
        goto out;
    }
    if (!leads && leader_wait_elected(ctx.leader, cfg->leader_lease_s * 1000)) {
        if (promote(&ctx, &started) != PAI_OK)
            goto out;
        leads = true;
    }
    printf("pai server: listening on %s://%s:%d%s\n", *cfg->tls_cert ? "https" : "http",
           cfg->listen_addr, http_server_port(http), leads ? "" : " (standby)");
    fflush(stdout);
    int sig;
    while (!(sig = wait_for_signal(100))) {
        if (!leads && leader_wait_elected(ctx.leader, 0)) {
            if (promote(&ctx, &started) != PAI_OK)
                goto out;
            leads = true;
        }
        standby_reap(ctx.standby); /* its refresher, once it has ended after a promotion */
        if (leads && agents_lost(&ctx)) {
            status = LEADER_EXIT_STATUS; /* its supervisor starts it again, as a standby */
            goto out;                    /* stops acting, then gives the lease up */
        }
    }
    log_info("server: signal %d, shutting down", sig);
    status = 0;
out:
    quiesce_all(&ctx); /* wake blocked handlers, or stopping HTTP waits for them */
    http_server_stop(http);
    standby_free(ctx.standby); /* no request reads its view any more */
    modules_stop(&ctx, started);
    leader_free(ctx.leader); /* after the modules' last writes; gives the lease up */
    metrics_free(ctx.metrics);
    store_close(ctx.store);
    free(self);
    free(url);
    if (lockfd >= 0)
        close(lockfd);
    return status;
}

int server_main(int argc, char **argv)
{
    server_config_t *cfg = NULL;
    char err[1024] = "";
    pai_err_t rc = server_config_load(argc, argv, &cfg, err, sizeof(err));
    if (rc == PAI_E_NOT_FOUND)
        return 0; /* --help */
    if (rc != PAI_OK) {
        fprintf(stderr, "pai server: %s\n", err);
        return 2;
    }
    log_set_level((log_level_t)log_level_parse(cfg->log_level));
    sched_daemon_batch();       /* before any thread: they inherit them */
    (void)timer_slack_daemon(); /* a bad PAI_TIMER_SLACK_US: logged there */
    block_signals();
    int status = serve(cfg);
    server_config_free(cfg);
    return status;
}
