/*
 * node.c - one node of `pai agent`: its identity towards the server, the
 * sync conversation and the reconcile step (docs/agent-protocol.md); its
 * attempts themselves are attempt.c's.
 *
 * State kept on disk, under <node dir>:
 *   node.credential  the node's credential (0600), issued by the server at
 *            registration or rotation; without it the agent presents the
 *            join token (cfg->token).
 *   node.logkey  the key the server presents to read this node's task
 *            logs (0600), from the server's answers.
 *   tasks/, logs/  the attempts' state and logs (attempt.c).
 * One sync is in flight at a time; each answer is the whole desired state,
 * applied through reconcile() (reconcile.h).
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "wire/agentwire.h"

#define ADOPTED_POLL_MS 250
#define MAX_ID          400 /* longer desired ids are ignored */
/* When a local change is reported (the sync's coalescing window):
 * report.c. */
/* The load and free disk a sync reports are read at most this often (two
 * system calls a sync at 100 syncs/s otherwise). */
#define HEALTH_READ_MS 1000

/* ---- small helpers ------------------------------------------------------ */

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
    /* no "Expect: 100-continue" (libcurl's for a body past 1 MiB: a node
     * reporting thousands of tasks): one more round trip for nothing */
    n->headers = curl_slist_append(n->headers, "Expect:");
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

static void no_gpus(agent_node_t *n)
{
    memset(&n->gpus, 0, sizeof(n->gpus));
    n->gpus.backend = "none";
}

/* The AMD backends: a fake tree the agent writes under its work dir
 * (amd-sim), or the host's sysfs (or --sysfs-root's tree). */
static void discover_amd(agent_node_t *n, bool sim)
{
    const agent_cfg_t *c = n->cfg;
    char root[1100];
    if (sim) {
        snprintf(root, sizeof(root), "%s/amd-sim", n->dir);
        if (gpu_amd_sim_tree(root, c->gpus < 0 ? 0 : c->gpus, c->gpu_model) != PAI_OK)
            log_warn("node=%s cannot write the simulated AMD tree %s", n->name, root);
    } else {
        str_copy(root, c->sysfs_root ? c->sysfs_root : "", sizeof(root));
    }
    if (gpu_amd_discover(root, &n->gpus) != PAI_OK)
        no_gpus(n);
    else if (sim)
        n->gpus.backend = "amd-sim";
}

static void discover_gpus(agent_node_t *n)
{
    const agent_cfg_t *c = n->cfg;
    const gpu_ops_t *ops = c->gpu_backend ? gpu_backend(c->gpu_backend) : NULL;
    char why[160];
    if (c->device_class) {
        if (gpu_class_discover(c->device_class, n->name, &n->gpus, why, sizeof(why)) != PAI_OK)
            no_gpus(n); /* checked at start-up: not reached */
        return;
    }
    if (ops && (strcmp(ops->name, "amd-sim") == 0 || strcmp(ops->name, "amd") == 0)) {
        discover_amd(n, strcmp(ops->name, "amd-sim") == 0);
        return;
    }
    if (c->gpus >= 0 || (ops && strcmp(ops->name, "sim") == 0))
        gpu_simulate(&n->gpus, c->gpus < 0 ? 0 : c->gpus, c->gpu_model ? c->gpu_model : "A100",
                     n->name);
    else if (ops && ops->discover(&n->gpus, 0, NULL) == PAI_OK)
        return;
    else if (ops)
        no_gpus(n);
    else
        gpu_discover_auto(&n->gpus);
}

/* A server whose machine vanished (no reset comes back) must not hold a
 * sync until its whole timeout (the held poll's wait + 15 s): the kernel
 * probes an idle connection every DEAD_PEER_S, and TCP_USER_TIMEOUT
 * (DEAD_PEER_USER_S) ends the connection at the first probe that finds
 * nothing heard from the server for that long (data unacknowledged for as
 * long fails the same way), so the agent fails over to the next server
 * within about DEAD_PEER_USER_S + DEAD_PEER_S (docs/operations.md, "High
 * availability").  A live server's kernel answers the probes while its
 * process holds the poll, however loaded the process: only a network that
 * drops everything for DEAD_PEER_USER_S ends a connection to a live
 * server (the agent then syncs again, with nothing lost). */
#define DEAD_PEER_S      1
#define DEAD_PEER_USER_S 3

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg);

static int dead_peer_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKOPT_OK;
    int on = 1, idle = DEAD_PEER_S, cnt = DEAD_PEER_USER_S / DEAD_PEER_S;
    unsigned user_ms = DEAD_PEER_USER_S * 1000;
    /* best effort: a socket that refuses keeps the plain timeouts */
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms)) != 0)
        log_debug("agent: TCP keepalive not set on a server connection: %s", strerror(errno));
    return CURL_SOCKOPT_OK;
}

pai_err_t node_init(agent_node_t *n, const agent_cfg_t *cfg, const char *name,
                    const runtime_ops_t *rt, const char *log_url)
{
    memset(n, 0, sizeof(*n));
    n->journal_fd = -1;
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
    n->report_due_ms = INT64_MAX;
    n->desired = strmap_new(NULL);
    n->by_id = strmap_new(NULL);
    host_resources(n);
    discover_gpus(n);
    buf_init(&n->resp, PAI_MAX_AGENT_MSG);
    if (!cfg->hollow && !cfg->discover_only) {
        task_dirs_init(n);
    }
    if (!cfg->discover_only) {
        cred_load(n);
        logkey_load(n);
    }
    if (cfg->server && srvlist_parse(&n->servers, cfg->server) != PAI_OK) {
        log_error("node=%s: --server: not a list of http(s):// URLs: %s", name, cfg->server);
        return PAI_E_INVALID;
    }
    for (int i = 0; i < 2; i++) {
        sync_conn_t *c = &n->conns[i];
        c->node = n;
        buf_init(&c->body, SIZE_MAX / 2); /* the server judges the size */
        c->easy = curl_easy_init();
        if (!c->easy)
            util_oom(); /* libcurl allocates with its own malloc */
        /* https:// servers: the certificate is always verified, against
         * ca_file when given (a private CA or a self-signed certificate) */
        if (cfg->ca_file && *cfg->ca_file)
            curl_easy_setopt(c->easy, CURLOPT_CAINFO, cfg->ca_file);
        curl_easy_setopt(c->easy, CURLOPT_SOCKOPTFUNCTION, dead_peer_sockopt);
        /* what every sync of the handle sets alike (sync_send sets the rest) */
        curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    }
    n->cur = &n->conns[0];
    set_auth(n);
    return PAI_OK;
}

void node_free(agent_node_t *n)
{
    for (size_t i = 0; i < n->ntasks; i++)
        task_free(n, n->tasks[i]);
    free(n->tasks);
    strmap_free(n->by_id);
    n->by_id = NULL;
    task_journal_close(n);
    dirpool_free(&n->pool);
    for (int i = 0; i < 2; i++) {
        if (n->conns[i].easy)
            curl_easy_cleanup(n->conns[i].easy);
        curl_url_cleanup(n->conns[i].url);
        free(n->conns[i].url_of);
        buf_free(&n->conns[i].body);
    }
    curl_slist_free_all(n->headers);
    buf_free(&n->resp);
    strmap_free(n->desired);
    n->desired = NULL;
    agentwire_node_cache_free(&n->wire);
    srvlist_free(&n->servers);
}

/* ---- the sync message --------------------------------------------------- */

/* A GPU is healthy when discovery found it and, once sampled, it still
 * answers NVML and reports no uncorrectable ECC error or critical XID
 * (docs/monitoring.md); the server marks an unhealthy one's cell bad. */
static bool gpu_healthy_now(const agent_node_t *n, size_t i)
{
    return n->gpus.gpus[i].healthy && (!n->gpu_sampled || gpu_sample_healthy(&n->gpu_now[i]));
}

/* The load and the free disk under the work dir (-1: unknown). */
static void health_read(const agent_node_t *n, double *load1, int64_t *disk_mb)
{
    double load[1] = {0};
    struct statvfs vfs;
    *load1 = getloadavg(load, 1) == 1 ? load[0] : -1;
    *disk_mb = -1;
    if (statvfs(n->dir, &vfs) == 0)
        *disk_mb = (int64_t)((uint64_t)vfs.f_bavail * vfs.f_frsize / (1024 * 1024));
}

/* Node health: load, free disk under the work dir (as last read by
 * node_sync_body, else now), GPUs that answer. */
static agentwire_health_t node_health(const agent_node_t *n)
{
    agentwire_health_t h = {.present = true, .tasks = (int64_t)n->ntasks};
    if (n->health_ms) {
        h.load1 = n->health_load1;
        h.disk_free_mb = n->health_disk_mb;
    } else {
        health_read(n, &h.load1, &h.disk_free_mb);
    }
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

/* The request's message (arrays in m, strings borrowed from n). */
static void sync_msg(const agent_node_t *n, agentwire_req_t *m)
{
    *m = (agentwire_req_t){
        .version = AGENT_WIRE_VERSION,
        .accept = n->cfg->wire_accept ? n->cfg->wire_accept : AGENT_WIRE_ACCEPT,
        .known_seq = (uint64_t)n->known_seq,
        .epoch = *n->epoch ? n->epoch : NULL,
        .wait_ms = n->cfg->wait_ms < n->heartbeat_ms ? n->cfg->wait_ms : n->heartbeat_ms,
        /* a report of ends is also the next long-poll: its acks come with
         * the next answer (new tasks or the heartbeat), not in one of
         * their own that costs another sync */
        .hold_acks = true,
    };
    node_wire(n, &m->node);
    /* the unacked attempts: the acked ones (tombstones, kept 10
     * minutes) are most of n->tasks in a stream of short tasks */
    m->tasks = xcalloc(n->nlive + 1, sizeof(*m->tasks));
    for (size_t i = 0; i < n->nlive; i++)
        m->tasks[m->ntasks++] = task_report(n->tasks[i]);
}

json_t *node_sync_request(const agent_node_t *n)
{
    agentwire_req_t m;
    sync_msg(n, &m);
    json_t *o = agentwire_req_encode(&m);
    agentwire_req_clear(&m);
    return o;
}

pai_err_t node_sync_body(agent_node_t *n, buf_t *out)
{
    agentwire_req_t m;
    int64_t now = time_mono_ms();
    if (!n->health_ms || now - n->health_ms >= HEALTH_READ_MS) {
        health_read(n, &n->health_load1, &n->health_disk_mb);
        n->health_ms = now ? now : 1;
    }
    sync_msg(n, &m);
    pai_err_t rc = agentwire_req_dump(&m, &n->wire, out);
    agentwire_req_clear(&m);
    return rc;
}

/* ---- applying the desired state ----------------------------------------- */

static void apply_acks(agent_node_t *n, const agentwire_resp_t *r)
{
    agent_task_t *stack[64],
        **ts = r->nack <= ARRAY_LEN(stack) ? stack : xcalloc(r->nack, sizeof(*ts));
    size_t k = 0;
    for (size_t i = 0; i < r->nack; i++) {
        agent_task_t *t = task_find(n, r->ack[i]);
        if (t && t->phase == RC_DONE && !t->acked) {
            t->acked = true; /* an id acked twice in one answer: once */
            ts[k++] = t;
        }
    }
    task_mark_acked_all(n, ts, k); /* their journal lines in one write */
    if (ts != stack)
        free(ts);
}

/* Forget the base: the next sync presents none, and its answer is the
 * whole desired set. */
static void base_drop(agent_node_t *n)
{
    n->known_seq = 0;
    n->epoch[0] = '\0';
    strmap_clear(n->desired);
}

/* An id must fit one path component once escaped (agent_task_t.esc). */
static bool id_ok(const char *id)
{
    return strlen(id) < MAX_ID;
}

/* Bring the kept set to r's: a delta (version 3) applied to it, else
 * replaced.  False for a delta against a base the agent does not hold. */
static bool desired_update(agent_node_t *n, const agentwire_resp_t *r)
{
    if (r->delta) {
        if (!r->epoch || strcmp(r->epoch, n->epoch) != 0 || (int64_t)r->base_seq != n->known_seq)
            return false;
        for (size_t i = 0; i < agentwire_resp_nleft(r); i++) /* version 7: the acked too */
            strmap_del(n->desired, agentwire_resp_left(r, i));
    } else {
        strmap_clear(n->desired);
    }
    for (size_t i = 0; i < r->ntasks; i++)
        if (id_ok(r->tasks[i].attempt_id) &&
            strmap_put(n->desired, r->tasks[i].attempt_id, (void *)1) != PAI_OK)
            abort(); /* only a NULL value fails */
    return true;
}

/* Is id one of r's tasks?  (A delta's few.) */
static bool in_answer(const agentwire_resp_t *r, const char *id)
{
    for (size_t i = 0; i < r->ntasks; i++)
        if (strcmp(r->tasks[i].attempt_id, id) == 0)
            return true;
    return false;
}

/* Reconcile the kept set with the attempts the node has.  The answer's
 * tasks are described; a kept one that is not (a delta's earlier ones) is
 * known to the node, which started it when it came.  False when one is
 * not: the agent lost it, and asks for the whole set. */
static bool apply_desired(agent_node_t *n, const agentwire_resp_t *r)
{
    size_t nd = strmap_count(n->desired), na = 0, k = 0, it = 0;
    const char **ids = xcalloc(nd + r->ntasks + 1, sizeof(char *)), *key;
    const agentwire_task_t **objs = xcalloc(nd + r->ntasks + 1, sizeof(*objs));
    /* the actual set: the attempts not acked, and the tombstones among
     * the desired (the others change nothing: never stopped, and not
     * desired; 10 minutes of them in a stream of short tasks) */
    size_t most = n->nlive + nd + r->ntasks;
    rc_actual_t *act = xcalloc(most + 1, sizeof(*act));
    agent_task_t **snapshot = xcalloc(most + 1, sizeof(*snapshot));
    rc_action_t *acts = xcalloc(nd + r->ntasks + most + 1, sizeof(*acts));
    bool whole = true;
    for (size_t i = 0; i < r->ntasks; i++) {
        if (id_ok(r->tasks[i].attempt_id)) {
            objs[k] = &r->tasks[i];
            ids[k++] = r->tasks[i].attempt_id;
        }
    }
    while (r->delta && strmap_next(n->desired, &it, &key, NULL))
        if (!in_answer(r, key))
            ids[k++] = key;
    for (size_t i = 0; i < n->nlive; i++)
        snapshot[na++] = n->tasks[i];
    for (size_t i = 0; i < k; i++) {
        agent_task_t *t = task_find(n, ids[i]);
        if (t && t->acked)
            snapshot[na++] = t;
        /* attempts re-adopted after a restart learn their labels here */
        if (t && objs[i] && !t->meta.user)
            metrics_task_meta(&t->meta, objs[i]);
    }
    for (size_t i = 0; i < na; i++)
        act[i] = (rc_actual_t){snapshot[i]->id, snapshot[i]->phase};
    size_t nact = reconcile(ids, k, act, na, acts);
    int64_t now = time_mono_ms();
    for (size_t i = 0; i < nact; i++) {
        if (acts[i].kind == RC_STOP) {
            task_stop(n, snapshot[acts[i].index], now);
        } else if (objs[acts[i].index]) {
            task_start(n, objs[acts[i].index]);
        } else {
            log_warn("node=%s task=%s desired but unknown to the node: asking for the whole set",
                     n->name, ids[acts[i].index]);
            whole = false;
        }
    }
    free(snapshot);
    free(ids);
    free(objs);
    free(act);
    free(acts);
    return whole;
}

pai_err_t node_apply_response(agent_node_t *n, const char *body, size_t len)
{
    agentwire_resp_t r;
    pai_error_t e = PAI_ERROR_INIT;
    n->answer_bytes += (int64_t)len;
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
     * one is the whole desired state at the time the server answered, or
     * (version 3) what changed since the base this agent sent. */
    bool rebase = false;
    if (r.has_tasks && !desired_update(n, &r)) {
        log_warn("node=%s sync: a delta against seq %llu, not this node's %lld: asking for the "
                 "whole set",
                 n->name, (unsigned long long)r.base_seq, (long long)n->known_seq);
        rebase = true;
    } else if (r.has_tasks) {
        rebase = !apply_desired(n, &r);
    }
    n->known_seq = (int64_t)r.seq;
    if (r.has_tasks)
        str_copy(n->epoch, r.epoch ? r.epoch : "", sizeof n->epoch);
    if (rebase)
        base_drop(n);
    n->progress = n->progress || n->known_seq != old_seq;
    if (r.heartbeat_ms >= 100 && r.heartbeat_ms <= 600000)
        n->heartbeat_ms = r.heartbeat_ms;
    /* version 4: the description the server holds; the next request names
     * it alone while it is this node's (docs/agent-protocol.md) */
    agentwire_node_cache_ack(&n->wire, r.node_desc);
    agentwire_resp_clear(&r);
    return PAI_OK;
}

/* ---- the conversation --------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    sync_conn_t *c = arg;
    if (c->abandoned)
        return size * nmemb; /* a superseded poll's answer: not wanted */
    return buf_append(&c->node->resp, data, size * nmemb) == PAI_OK ? size * nmemb : 0;
}

/* The handle's sync URL for server (srvlist_current), parsed when the
 * server is not the one of its last sync: libcurl parses a CURLOPT_URL
 * text again at every transfer, a CURLOPT_CURLU handle it copies.  Called
 * only while c is not in the multi handle (the copy is made when a
 * transfer starts).  A text libcurl does not parse is handed over as text:
 * the transfer fails as it did before, and the sync moves on (failover). */
static void conn_url(sync_conn_t *c, const char *server)
{
    if (c->url && c->url_of && strcmp(c->url_of, server) == 0)
        return;
    char *text = str_printf("%s/api/v1/agent/sync", server);
    CURLU *u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        u = NULL;
    }
    curl_easy_setopt(c->easy, CURLOPT_CURLU, u);
    curl_easy_setopt(c->easy, CURLOPT_URL, text); /* used only without u */
    free(text);
    curl_url_cleanup(c->url);
    free(c->url_of);
    c->url = u;
    c->url_of = u ? xstrdup(server) : NULL;
}

static void sync_send(agent_node_t *n, CURLM *multi)
{
    sync_conn_t *c = n->cur;
    buf_reset(&c->body);
    if (node_sync_body(n, &c->body) != PAI_OK) {
        n->next_sync_ms = time_mono_ms() + 1000;
        return;
    }
    conn_url(c, srvlist_current(&n->servers));
    int64_t wait = n->cfg->wait_ms < n->heartbeat_ms ? n->cfg->wait_ms : n->heartbeat_ms;
    buf_reset(&n->resp);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, n->headers);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body.data);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)c->body.len);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)(wait + 15000));
    n->dirty = false;
    n->dirty_ms = 0;
    n->ended_ms = 0;
    n->start_ms = 0;
    n->report_due_ms = INT64_MAX;
    n->in_flight = true;
    n->sent_mono_ms = time_mono_ms();
    c->busy = true;
    c->abandoned = false;
    curl_multi_add_handle(multi, c->easy);
    n->syncs++;
}

static void conn_end(sync_conn_t *c, CURLM *multi)
{
    curl_multi_remove_handle(multi, c->easy);
    c->busy = false;
    c->abandoned = false;
}

/* Give up the held poll for a newer sync.  It stays on its connection,
 * which the server answers at once (superseded: the newer sync of the node
 * releases it) and which is then kept for a later sync; the newer one goes
 * on the other handle (an idle connection of the multi handle's, or a new
 * one).  When the other handle still waits for such an answer, the poll is
 * cancelled instead (its connection closed). */
static void sync_abandon(agent_node_t *n, CURLM *multi)
{
    sync_conn_t *other = &n->conns[n->cur == &n->conns[0]];
    if (other->busy) {
        conn_end(n->cur, multi);
    } else {
        n->cur->abandoned = true;
        n->cur = other;
    }
    n->in_flight = false;
}

void node_sync_stop(agent_node_t *n, CURLM *multi)
{
    for (int i = 0; i < 2; i++)
        if (n->conns[i].busy)
            conn_end(&n->conns[i], multi);
    n->in_flight = false;
}

/* A sync failed: when the server is down, a standby or between leaders,
 * move to the leader it named or to the next server of the list.  True
 * when failing over between several servers. */
static bool failover(agent_node_t *n, CURLcode code, long status)
{
    char *leader = NULL;
    bool moved =
        code != CURLE_OK || srvlist_is_redirect(status, n->resp.data, n->resp.len, &leader);
    if (moved) {
        const char *was = srvlist_current(&n->servers);
        char *from = xstrdup(was);
        srvlist_next(&n->servers, leader);
        if (strcmp(from, srvlist_current(&n->servers)) != 0 &&
            (n->failures <= 3 || n->failures % 20 == 0)) /* as the sync failures' lines */
            log_info("node=%s server %s %s: trying %s", n->name, from,
                     code != CURLE_OK ? "unreachable" : "does not lead",
                     srvlist_current(&n->servers));
        free(from);
    }
    free(leader);
    return moved && (n->servers.n > 1 || n->servers.leader);
}

void node_sync_done(sync_conn_t *c, CURLM *multi, CURLcode code)
{
    agent_node_t *n = c->node;
    long status = 0;
    bool abandoned = c->abandoned;
    conn_end(c, multi);
    if (abandoned || c != n->cur)
        return; /* a poll given up for a newer sync: that one's answer counts */
    n->in_flight = false;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    int64_t now = time_mono_ms();
    if (code == CURLE_OK && status == 200 &&
        node_apply_response(n, n->resp.data ? n->resp.data : "", n->resp.len) == PAI_OK) {
        n->failures = 0;
        /* A server that answers at once with nothing new is not a
         * long-poll: do not spin on it. */
        bool idle = now - n->sent_mono_ms < 5 && !n->dirty && !n->progress;
        n->next_sync_ms = idle ? now + 50 : now;
        /* Tasks just started: their start is reported when report.c's
         * window says, with whatever else changed by then (a short task's
         * end) */
        return;
    }
    n->sync_errors++;
    n->failures++;
    if (code == CURLE_OK && (status == 401 || status == 403) && *n->cred && n->cfg->token &&
        *n->cfg->token)
        cred_drop(n);
    int64_t backoff = 100LL << (n->failures < 6 ? n->failures : 6);
    int64_t most = 5000;
    if (failover(n, code, status))
        most = 500; /* a new leader is being elected: look for it often */
    n->next_sync_ms = now + (backoff > most ? most : backoff);
    if (n->failures <= 3 || n->failures % 20 == 0)
        log_warn("node=%s sync failed: %s (HTTP %ld) %.200s", n->name,
                 code != CURLE_OK ? curl_easy_strerror(code) : "bad answer", status,
                 buf_str(&n->resp));
}

void node_tick(agent_node_t *n, CURLM *multi, int64_t now)
{
    for (size_t i = 0; i < n->nlive; i++) {
        agent_task_t *t = n->tasks[i];
        if (t->phase == RC_DONE)
            continue;
        if (t->phase == RC_STOPPING && now >= t->stop_deadline_ms && t->has_rt) {
            t->ops->kill(t->ops, &t->rt, true, 0);
            t->stop_deadline_ms = now + 1000; /* and again, until it ends */
        }
        if (n->cfg->hollow || (rt_notify_fd(&t->rt) < 0 && now >= t->next_poll_ms)) {
            t->next_poll_ms = now + ADOPTED_POLL_MS;
            task_poll(n, t);
        }
    }
    if (now >= n->next_prune_ms) {
        n->next_prune_ms = now + 1000;
        task_prune_tombstones(n, now);
    }
    if (n->dirty && !n->dirty_ms)
        n->dirty_ms = now;
    n->report_due_ms = report_due(n, n->dirty ? report_pending(n, now) : 0);
    /* A local change: give up the held long-poll and report it, with the
     * other changes made meanwhile (report.c's window) */
    if (n->in_flight && now >= n->report_due_ms)
        sync_abandon(n, multi);
    if (!n->in_flight && now >= n->next_sync_ms && (!n->dirty || now >= n->report_due_ms))
        sync_send(n, multi);
}

void node_task_event(agent_node_t *n, int fd)
{
    for (size_t i = 0; i < n->nlive; i++)
        if (n->tasks[i]->has_rt && n->tasks[i]->rt.notify_fd == fd)
            task_poll(n, n->tasks[i]);
}

void node_task_news(agent_node_t *n)
{
    for (size_t i = 0; i < n->nlive; i++)
        if (n->tasks[i]->has_rt && rt_task_news(&n->tasks[i]->rt))
            task_poll(n, n->tasks[i]);
}

int64_t node_next_wake(const agent_node_t *n)
{
    int64_t due = n->dirty ? n->report_due_ms : INT64_MIN;
    int64_t w = n->in_flight ? (n->dirty ? due : INT64_MAX)
                             : (n->next_sync_ms > due ? n->next_sync_ms : due);
    for (size_t i = 0; i < n->nlive; i++) {
        const agent_task_t *t = n->tasks[i];
        if (t->phase == RC_DONE)
            continue;
        if (t->phase == RC_STOPPING && t->stop_deadline_ms < w)
            w = t->stop_deadline_ms;
        if (n->cfg->hollow && t->rt.hollow_end_ms < w)
            w = t->rt.hollow_end_ms;
        else if (!n->cfg->hollow && rt_notify_fd(&t->rt) < 0 && t->next_poll_ms < w)
            w = t->next_poll_ms;
    }
    return w;
}

/* Per-attempt monitors' notify fds; a per-agent monitor's attempts have
 * its socket instead, which the loop watches once (rt_watch_fds). */
size_t node_wait_fds(const agent_node_t *n, struct curl_waitfd *fds, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n->nlive && k < cap; i++) {
        const agent_task_t *t = n->tasks[i];
        if (t->phase != RC_DONE && t->has_rt && t->rt.notify_fd >= 0)
            fds[k++] = (struct curl_waitfd){t->rt.notify_fd, CURL_WAIT_POLLIN, 0};
    }
    return k;
}
