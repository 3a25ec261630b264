/*
 * logsrv.c - serves task logs: GET /logs/{attempt_id}/{stdout|stderr|all}
 * [?tail=BYTES] with the agent's bearer token (docs/agent-protocol.md).
 * libmicrohttpd runs in the agent's own loop (no thread: see agent.h);
 * every answer is bounded by PAI_MAX_LOG_READ.
 */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "common/limits.h"
#include "common/util.h"

struct logsrv {
    struct MHD_Daemon *d;
    char *token;
    agent_node_t **nodes;
    size_t nnodes;
    int port;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *ctype,
                              char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **ctx)
{
    logsrv_t *s = cls;
    const char *kind;
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)ctx;
    if (strcmp(method, "GET") != 0)
        return error(c, PAI_E_NO_API, "only GET");
    if (!authorized(c, s->token))
        return error(c, PAI_E_UNAUTHORIZED, "bearer token required");
    char *id = split_path(url, &kind);
    if (!id)
        return error(c, PAI_E_NO_API, "use /logs/{attempt_id}/{stdout|stderr|all}");
    size_t max = PAI_MAX_LOG_READ;
    const char *tail = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "tail");
    int64_t t;
    if (tail && (str_to_i64(tail, 0, PAI_MAX_LOG_READ, &t) != PAI_OK)) {
        free(id);
        return error(c, PAI_E_INVALID, "tail must be 0..16777216");
    }
    if (tail)
        max = (size_t)t;
    char *data = NULL;
    size_t len = 0;
    for (size_t i = 0; i < s->nnodes && !data; i++) {
        char *dir = node_log_dir(s->nodes[i], id);
        if (dir)
            data = rt_log_tail(dir, kind, max, &len);
        free(dir);
    }
    free(id);
    if (!data)
        return error(c, PAI_E_NO_TASK_LOG, "no such task log");
    return answer(c, 200, "text/plain; charset=utf-8", data, len);
}

pai_err_t logsrv_start(int port, const char *token, agent_node_t **nodes, size_t nnodes,
                       logsrv_t **out)
{
    logsrv_t *s = xcalloc(1, sizeof(*s));
    s->token = xstrdup(token);
    s->nodes = nodes;
    s->nnodes = nnodes;
    s->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle,
                            s, MHD_OPTION_CONNECTION_LIMIT, 256u, MHD_OPTION_CONNECTION_TIMEOUT,
                            30u, MHD_OPTION_END);
    if (!s->d) {
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

void logsrv_run(logsrv_t *s)
{
    MHD_run(s->d);
}

void logsrv_stop(logsrv_t *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s->token);
    free(s);
}
