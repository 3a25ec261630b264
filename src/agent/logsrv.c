/*
 * logsrv.c - serves task logs: GET /logs/{attempt_id}/{stdout|stderr|all}
 * [?tail=BYTES] with the node's log key as bearer token, or the join token
 * for a node the server has sent no log key (docs/agent-protocol.md, "Logs"),
 * and the node's metrics: GET /metrics, Prometheus text, without a token
 * like any exporter (metrics.c, docs/monitoring.md).
 * libmicrohttpd runs in the agent's own loop (no thread: see agent.h).
 *
 * Hostile clients (docs/operations.md, "Hostile clients"):
 *  - it listens on the agent's --address only, never on every interface,
 *    in HTTPS only when given --tls-cert and --tls-key;
 *  - connections are admitted by common/connlimit.h: an address holds at
 *    most LOGSRV_IDLE_PER_ADDR idle connections, and when LOGSRV_MAX_CONNS
 *    are open the oldest idle one is closed for a new one; a connection
 *    silent for LOGSRV_TIMEOUT_S is closed;
 *  - at most LOGSRV_MAX_READERS answers stream at once (each one busy, so
 *    never evicted); the next reader is answered 503 with Retry-After;
 *  - an answer streams from the log files in LOGSRV_CHUNK blocks, so a
 *    reader costs constant memory whatever the size it asks for (at most
 *    PAI_MAX_LOG_READ, the last bytes of <kind>.1 then <kind>, the same
 *    bytes rt_log_tail() would return).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/connlimit.h"
#include "common/limits.h"
#include "common/ratelog.h"
#include "common/util.h"

#define LOGSRV_MAX_CONNS     256u
#define LOGSRV_IDLE_PER_ADDR 64u
#define LOGSRV_MAX_READERS   64u
#define LOGSRV_TIMEOUT_S     10u
#define LOGSRV_CHUNK         (64u * 1024)
#define LOGSRV_METRICS_MAX   (8u << 20) /* a scrape's cap: ~20,000 tasks */

struct logsrv {
    struct MHD_Daemon *d;
    connlimit_t *admit;
    ratelog_t mhdlog; /* libmicrohttpd's messages: one warn line per 10 s at most */
    unsigned readers; /* answers streaming now (the loop is single-threaded) */
    char *token;
    agent_node_t **nodes;
    size_t nnodes;
    int port;
};

/* One streamed answer: the tail of <kind>.1 (fd[0]) then of <kind> (fd[1]). */
typedef struct {
    int fd[2];
    int64_t off[2], left[2];
} tail_t;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *ctype,
                              char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    if (status == 503)
        MHD_add_response_header(r, "Retry-After", "1");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result error(struct MHD_Connection *c, pai_err_t e, const char *msg)
{
    char *body = str_printf("{\"code\":\"%s\",\"message\":\"%s\"}", pai_err_code(e), msg);
    return answer(c, (unsigned)pai_err_status(e), "application/json", body,
                  body ? strlen(body) : 0);
}

static bool authorized(struct MHD_Connection *c, const char *token)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || !str_has_prefix(h, "Bearer ") || !token || !*token)
        return false;
    const char *got = h + 7;
    size_t a = strlen(got), b = strlen(token);
    unsigned diff = a != b;
    for (size_t i = 0; i < a && i < b; i++)
        diff |= (unsigned)(got[i] ^ token[i]);
    return diff == 0;
}

/* The secret a read of node n's logs must present: the node's log key once
 * the server sent one (docs/agent-protocol.md, "Logs"), else the join
 * token, so a stolen join token reads no registered node's logs. */
static const char *read_key(const logsrv_t *s, const agent_node_t *n)
{
    return *n->log_key ? n->log_key : s->token;
}

/* May the caller read attempt id (NULL: a bad path)?  The node that has its
 * logs decides; for an attempt no node has, any node's key will do (the
 * answer is then 404, the same for every attempt it cannot read). */
static bool may_read(const logsrv_t *s, struct MHD_Connection *c, const char *id)
{
    for (size_t i = 0; id && i < s->nnodes; i++) {
        char *prefix = node_log_prefix(s->nodes[i], id);
        bool here = prefix != NULL;
        free(prefix);
        if (here)
            return authorized(c, read_key(s, s->nodes[i]));
    }
    for (size_t i = 0; i < s->nnodes; i++)
        if (authorized(c, read_key(s, s->nodes[i])))
            return true;
    return false;
}

/* "/logs/<id...>/<kind>" -> id (malloc'ed) and kind. */
static char *split_path(const char *url, const char **kind)
{
    static const char *const kinds[] = {"stdout", "stderr", "all"};
    if (!str_has_prefix(url, "/logs/"))
        return NULL;
    const char *slash = strrchr(url, '/');
    if (!slash || slash <= url + 6)
        return NULL;
    *kind = NULL;
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        if (strcmp(slash + 1, kinds[i]) == 0)
            *kind = kinds[i];
    if (!*kind)
        return NULL;
    return str_printf("%.*s", (int)(slash - (url + 6)), url + 6);
}

/* ---- streamed tails ------------------------------------------------------ */

static void tail_free(void *cls)
{
    tail_t *t = cls;
    for (int i = 0; i < 2; i++)
        if (t->fd[i] >= 0)
            close(t->fd[i]);
    free(t);
}

/* Open dir/kind.1 and dir/kind and place the last max bytes of the two;
 * neither there is an empty log (the runtime creates a log file on its
 * first line). */
static tail_t *tail_open(const char *prefix, const char *kind, size_t max)
{
    tail_t *t = xcalloc(1, sizeof(*t));
    int64_t size[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        char *p = str_printf("%s%s%s", prefix, kind, i == 0 ? ".1" : "");
        struct stat st;
        t->fd[i] = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
        if (t->fd[i] >= 0 && fstat(t->fd[i], &st) == 0)
            size[i] = st.st_size;
        free(p);
    }
    /* newest bytes first: from the current file, then what is missing from .1 */
    int64_t want = (int64_t)max;
    t->left[1] = size[1] < want ? size[1] : want;
    t->left[0] = size[0] < want - t->left[1] ? size[0] : want - t->left[1];
    t->off[0] = size[0] - t->left[0];
    t->off[1] = size[1] - t->left[1];
    return t;
}

/* MHD content reader: the next block of the tail.  The answer is chunked
 * (its length is not promised), so a file cut short meanwhile (truncated)
 * just ends it sooner; a rotated one is still read through its fd. */
static ssize_t tail_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    tail_t *t = cls;
    (void)pos;
    for (int i = 0; i < 2; i++) {
        if (t->left[i] <= 0)
            continue;
        size_t n = (int64_t)max < t->left[i] ? max : (size_t)t->left[i];
        ssize_t r = t->fd[i] >= 0 ? pread(t->fd[i], buf, n, t->off[i]) : -1;
        if (r <= 0) {
            t->left[i] = 0; /* cut short: on to the next file */
            continue;
        }
        t->off[i] += r;
        t->left[i] -= r;
        return r;
    }
    return MHD_CONTENT_READER_END_OF_STREAM;
}

/* ---- requests ------------------------------------------------------------ */

static tail_t *find_tail(logsrv_t *s, const char *id, const char *kind, size_t max)
{
    tail_t *t = NULL;
    for (size_t i = 0; i < s->nnodes && !t; i++) {
        char *prefix = node_log_prefix(s->nodes[i], id);
        if (prefix)
            t = tail_open(prefix, kind, max);
        free(prefix);
    }
    return t;
}

static connlimit_conn_t *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Stream the tail as one of the readers; *ctx marks the request as counted
 * until on_completed. */
static enum MHD_Result stream(logsrv_t *s, struct MHD_Connection *c, tail_t *t, void **ctx)
{
    if (!connlimit_busy(s->admit, conn_of(c), true)) { /* evicted as it arrived: close */
        tail_free(t);
        return MHD_NO;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LOGSRV_CHUNK, tail_read, t, tail_free);
    if (!r) {
        tail_free(t);
        connlimit_busy(s->admit, conn_of(c), false);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    if (ret == MHD_YES) {
        s->readers++;
        *ctx = s; /* non-NULL: a counted reader */
    } else {
        connlimit_busy(s->admit, conn_of(c), false);
    }
    return ret;
}

/* GET /metrics: format the last sample (metrics.c never samples here). */
static enum MHD_Result serve_metrics(logsrv_t *s, struct MHD_Connection *c)
{
    buf_t b;
    buf_init(&b, LOGSRV_METRICS_MAX);
    metrics_format(s->nodes, s->nnodes, &b);
    size_t len = b.len;
    char *body = buf_take(&b);
    return answer(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, body ? len : 0);
}

/* ---- pai exec (exec.c) ---------------------------------------------------- */

/* A POST /exec body being received: *ctx until the request completes. */
typedef struct {
    buf_t body;
    bool over;
} exec_up_t;

static enum MHD_Result json_answer(struct MHD_Connection *c, unsigned status, json_t *o)
{
    char *body = xjson_dumps(o, JSON_COMPACT);
    json_decref(o);
    return answer(c, status, "application/json", body, strlen(body));
}

/* The node that has attempt id, NULL when none. */
static agent_node_t *node_of(const logsrv_t *s, const char *id)
{
    for (size_t i = 0; i < s->nnodes; i++)
        if (task_find(s->nodes[i], id))
            return s->nodes[i];
    return NULL;
}

static enum MHD_Result exec_start(logsrv_t *s, struct MHD_Connection *c, const char *attempt,
                                  exec_up_t *up)
{
    agent_node_t *n = node_of(s, attempt);
    if (!n || !authorized(c, read_key(s, n)))
        return n ? error(c, PAI_E_UNAUTHORIZED, "bearer token required")
                 : error(c, PAI_E_NO_TASK, "no such task on this node");
    if (up->over)
        return error(c, PAI_E_TOO_LARGE, "command too large");
    json_t *b = json_loadb(up->body.data ? up->body.data : "", up->body.len, 0, NULL);
    const char *cmd = json_string_value(json_object_get(b, "command"));
    json_int_t to = json_integer_value(json_object_get(b, "timeoutSec"));
    enum MHD_Result ret;
    char id[33];
    const char *why = NULL;
    pai_err_t rc;
    if (!cmd || !*cmd || strlen(cmd) > EXEC_MAX_CMD)
        ret = error(c, PAI_E_INVALID, "command: a string of 1 to 65536 bytes");
    else if ((rc = agent_exec_start(n, attempt, cmd, (int)(to > 0 && to < 1000000 ? to : 0), id,
                                    &why)) != PAI_OK)
        ret = error(c, rc, why ? why : pai_err_msg(rc));
    else
        ret = json_answer(c, 202, xjson_pack("{ss}", "id", id));
    json_decref(b);
    return ret;
}

static enum MHD_Result exec_read(logsrv_t *s, struct MHD_Connection *c, const char *id)
{
    const char *off = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset");
    int64_t o = 0;
    if (off && str_to_i64(off, 0, INT64_MAX / 2, &o) != PAI_OK)
        return error(c, PAI_E_INVALID, "offset must be a byte count");
    for (size_t i = 0; i < s->nnodes; i++) {
        json_t *out = NULL;
        if (agent_exec_read(s->nodes[i], id, o, &out) != PAI_OK)
            continue;
        if (!authorized(c, read_key(s, s->nodes[i]))) {
            json_decref(out);
            return error(c, PAI_E_UNAUTHORIZED, "bearer token required");
        }
        return json_answer(c, 200, out);
    }
    return error(c, PAI_E_NOT_FOUND, "no such exec");
}

/* POST /exec/{attempt_id} {"command","timeoutSec"}; GET /exec/{id}?offset=N. */
static enum MHD_Result exec_route(logsrv_t *s, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *upload, size_t *upload_len,
                                  void **ctx)
{
    const char *rest = url + 6;
    if (strcmp(method, "GET") == 0)
        return exec_read(s, c, rest);
    if (strcmp(method, "POST") != 0)
        return error(c, PAI_E_NO_API, "only GET and POST");
    exec_up_t *up = *ctx;
    if (!up) {
        up = xcalloc(1, sizeof(*up));
        buf_init(&up->body, EXEC_MAX_CMD + 4096);
        *ctx = up;
        return MHD_YES;
    }
    if (*upload_len) {
        up->over = up->over || buf_append(&up->body, upload, *upload_len) != PAI_OK;
        *upload_len = 0;
        return MHD_YES;
    }
    return exec_start(s, c, rest, up);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **ctx)
{
    logsrv_t *s = cls;
    const char *kind;
    (void)version;
    if (str_has_prefix(url, "/exec/"))
        return exec_route(s, c, url, method, upload, upload_len, ctx);
    if (strcmp(method, "GET") != 0)
        return error(c, PAI_E_NO_API, "only GET");
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(s, c);
    char *id = split_path(url, &kind);
    if (!may_read(s, c, id)) {
        free(id);
        return error(c, PAI_E_UNAUTHORIZED, "bearer token required");
    }
    if (!id)
        return error(c, PAI_E_NO_API, "use /logs/{attempt_id}/{stdout|stderr|all}");
    size_t max = PAI_MAX_LOG_READ;
    const char *tail = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tail");
    int64_t v;
    if (tail && (str_to_i64(tail, 0, PAI_MAX_LOG_READ, &v) != PAI_OK)) {
        free(id);
        return error(c, PAI_E_INVALID, "tail must be 0..16777216");
    }
    if (tail)
        max = (size_t)v;
    if (s->readers >= LOGSRV_MAX_READERS) {
        free(id);
        return error(c, PAI_E_UNAVAILABLE, "too many log reads at once on this node; retry");
    }
    tail_t *t = find_tail(s, id, kind, max);
    free(id);
    if (!t)
        return error(c, PAI_E_NO_TASK_LOG, "no such task log");
    return stream(s, c, t, ctx);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    logsrv_t *s = cls;
    (void)toe;
    if (!*ctx)
        return;
    if (*ctx != s) { /* a POST /exec body */
        exec_up_t *up = *ctx;
        buf_free(&up->body);
        free(up);
        *ctx = NULL;
        return;
    }
    s->readers--;
    connlimit_busy(s->admit, conn_of(c), false);
    *ctx = NULL;
}

/* ---- admission (common/connlimit.h) -------------------------------------- */

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    logsrv_t *s = cls;
    (void)addrlen;
    return connlimit_admit(s->admit, addr) ? MHD_YES : MHD_NO;
}

/* CLOSED comes after on_completed and before the socket is closed. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    logsrv_t *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        connlimit_close(s->admit, *socket_context);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *a =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const union MHD_ConnectionInfo *f =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    *socket_context = a && f ? connlimit_open(s->admit, a->client_addr, f->connect_fd) : NULL;
}

/* ---- start / stop -------------------------------------------------------- */

pai_err_t logsrv_start(const char *addr, int port, const char *token, const char *cert_pem,
                       const char *key_pem, agent_node_t **nodes, size_t nnodes, logsrv_t **out)
{
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem tls[3] = {{MHD_OPTION_END, 0, NULL}};
    if (cert_pem && key_pem) { /* docs/security.md, "TLS set-up" */
        flags |= MHD_USE_TLS;
        tls[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert_pem};
        tls[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem};
        tls[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        return PAI_E_INVALID;
    logsrv_t *s = xcalloc(1, sizeof(*s));
    s->token = xstrdup(token);
    s->nodes = nodes;
    s->nnodes = nnodes;
    s->admit = connlimit_new(LOGSRV_MAX_CONNS, LOGSRV_IDLE_PER_ADDR);
    ratelog_init(&s->mhdlog, "logsrv", 10000);
    /* MHD's own cap backs ours up; evicted connections count in it until closed */
    /* the logger comes first: MHD logs to stderr until it has read it */
    s->d = MHD_start_daemon(
        flags, (uint16_t)port, on_accept, s, handle, s, MHD_OPTION_EXTERNAL_LOGGER, ratelog_v,
        &s->mhdlog, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_LIMIT, LOGSRV_MAX_CONNS * 2, MHD_OPTION_CONNECTION_TIMEOUT,
        LOGSRV_TIMEOUT_S, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!s->d) {
        connlimit_free(s->admit);
        ratelog_destroy(&s->mhdlog);
        free(s->token);
        free(s);
        return PAI_E_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    *out = s;
    return PAI_OK;
}

int logsrv_port(const logsrv_t *s)
{
    return s->port;
}

int logsrv_fd(const logsrv_t *s)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int logsrv_timeout_ms(const logsrv_t *s)
{
    MHD_UNSIGNED_LONG_LONG t;
    if (MHD_get_timeout(s->d, &t) != MHD_YES)
        return -1;
    return t > INT32_MAX ? INT32_MAX : (int)t;
}

void logsrv_run(logsrv_t *s)
{
    MHD_run(s->d);
}

void logsrv_stop(logsrv_t *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    connlimit_free(s->admit);
    ratelog_destroy(&s->mhdlog);
    free(s->token);
    free(s);
}
