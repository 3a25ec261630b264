/*
 * jobs_exec.c - `pai exec`: the server's half (docs/ssh.md, "pai exec").
 *
 *   POST /api/v2/jobs/{job}/exec {"taskRoleName", "taskIndex", "command",
 *        "timeoutSec"}                      -> 202 {"id"}
 *   GET  /api/v2/jobs/{job}/exec/{id}?offset=N
 *                                           -> 200 {"data" (base64), "offset",
 *                                              "done", "exitCode" once done}
 *
 * The owner and admins may, as for stopping the job (mod_jobs.c checks).
 * The server finds the task's current attempt and its node, and asks that
 * node's log server (agent/exec.c) with the node's log key.  The id it
 * answers names the task attempt and the agent's id
 * ("<a>-<ta>-<index>-<agent id>-<role>"), so a read goes to the same node.
 * The calls to the agent run on the HTTP layer's bounded workers
 * (http_reply_offload), never on a pool thread.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/curlbuf.h"
#include "common/util.h"
#include "engine/engine.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/jobs_exec.h"

#define AGENT_TIMEOUT_MS 10000L
#define AGENT_ANSWER_MAX (1u << 20)

typedef struct {
    char *url;    /* the agent's endpoint */
    char *body;   /* POST body, NULL: GET */
    char *key;    /* bearer */
    char *prefix; /* POST: "<a>-<ta>-<index>", before the agent's id */
    char *role;   /* POST: after it */
} exec_call_t;

static void call_free(void *ud)
{
    exec_call_t *c = ud;
    free(c->url);
    free(c->body);
    if (c->key)
        sodium_memzero(c->key, strlen(c->key));
    free(c->key);
    free(c->prefix);
    free(c->role);
    free(c);
}

/* On a worker: one request to the agent, its answer passed on. */
static pai_err_t call_agent(server_ctx_t *ctx, void *ud, http_resp_t *resp, pai_error_t *e)
{
    (void)ctx;
    exec_call_t *c = ud;
    CURL *h = curl_easy_init();
    if (!h)
        return pai_error_set(e, PAI_E_UNAVAILABLE, "cannot reach the node");
    buf_t b;
    buf_init(&b, AGENT_ANSWER_MAX);
    char *auth = str_printf("Authorization: Bearer %s", c->key ? c->key : "");
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curlbuf_collect(h, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, AGENT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = cc == CURLE_OK ? json_loadb(b.data ? b.data : "", b.len, 0, NULL) : NULL;
    pai_err_t rc = PAI_OK;
    if (!j) {
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "the node did not answer: %s",
                           cc == CURLE_OK ? "bad answer" : curl_easy_strerror(cc));
    } else if (status >= 400) {
        /* the agent's own {"code","message"}: its message, our status */
        const char *msg = json_string_value(json_object_get(j, "message"));
        rc = pai_error_set(e,
                           status == 404   ? PAI_E_NO_TASK
                           : status == 503 ? PAI_E_UNAVAILABLE
                           : status == 413 ? PAI_E_TOO_LARGE
                                           : PAI_E_INVALID,
                           "%s", msg ? msg : "the node refused");
    } else if (c->prefix) {
        const char *id = json_string_value(json_object_get(j, "id"));
        char *full = str_printf("%s-%s-%s", c->prefix, id ? id : "", c->role);
        http_reply_json(resp, 202, xjson_pack("{ss}", "id", full));
        free(full);
    } else {
        http_reply_json(resp, 200, json_incref(j));
    }
    json_decref(j);
    curl_slist_free_all(hdr);
    sodium_memzero(auth, strlen(auth));
    free(auth);
    buf_free(&b);
    curl_easy_cleanup(h);
    return rc;
}

/* The task's current attempt: job attempt *a and task attempt *ta. */
static pai_err_t current(server_ctx_t *ctx, const char *job, const char *role, int index, int *a,
                         int *ta, pai_error_t *e)
{
    json_t *d = NULL;
    pai_err_t rc = engine_detail(ctx->engine, job, -1, &d, e);
    if (rc != PAI_OK)
        return rc;
    *a = (int)json_integer_value(json_object_get(json_object_get(d, "jobStatus"), "attemptId"));
    json_t *ts =
        json_object_get(json_object_get(json_object_get(d, "taskRoles"), role), "taskStatuses");
    json_t *t = json_array_get(ts, (size_t)index);
    const char *state = json_string_value(json_object_get(t, "taskState"));
    if (!t || index < 0)
        rc = pai_error_set(e, PAI_E_NO_TASK, PAI_MSG_NO_TASK, role, index);
    else if (!state || strcmp(state, "RUNNING") != 0)
        rc = pai_error_set(e, PAI_E_INVALID, "task %s/%d is not running", role, index);
    else
        *ta = (int)json_integer_value(json_object_get(t, "attemptId"));
    json_decref(d);
    return rc;
}

static pai_err_t offload(server_ctx_t *ctx, const char *job, const char *role, int index, int a,
                         int ta, char *body, const char *agent_id, int64_t offset,
                         http_resp_t *resp, pai_error_t *e)
{
    char *url = NULL, *id = NULL, *key = NULL;
    pai_err_t rc = engine_task_log_source(ctx->engine, job, a, role, index, ta, &url, &id, &key, e);
    if (rc != PAI_OK) {
        free(body);
        return rc == PAI_E_NO_TASK_LOG
                   ? pai_error_set(e, PAI_E_NO_TASK, "task %s/%d has no node", role, index)
                   : rc;
    }
    if (!key && !(key = jobs_agent_key(ctx->cfg))) {
        free(body);
        free(url);
        free(id);
        return pai_error_set(e, PAI_E_BAD_CONFIG,
                             "the node of task %s/%d has no log key (a version 1 agent) and this "
                             "server has no agent token to present instead (agent_token, or "
                             "<data_dir>/agent.token)",
                             role, index);
    }
    exec_call_t *c = xcalloc(1, sizeof(*c));
    if (body) {
        char *eid = curl_easy_escape(NULL, id, 0);
        c->url = str_printf("%s/exec/%s", url, eid ? eid : "");
        curl_free(eid);
        c->prefix = str_printf("%d-%d-%d", a, ta, index);
        c->role = xstrdup(role);
    } else {
        c->url = str_printf("%s/exec/%s?offset=%lld", url, agent_id, (long long)offset);
    }
    c->body = body;
    c->key = key;
    free(url);
    free(id);
    http_reply_offload(resp, call_agent, call_free, c);
    return PAI_OK;
}

char *jobs_agent_key(const server_config_t *cfg)
{
    char tok[256];
    if (!cfg || !auth_agent_token_read(cfg, tok, sizeof(tok)))
        return NULL;
    char *key = xstrdup(tok);
    sodium_memzero(tok, sizeof(tok));
    return key;
}

pai_err_t jobs_exec_start(server_ctx_t *ctx, const char *job, const http_req_t *req,
                          http_resp_t *resp, pai_error_t *e)
{
    json_t *b = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
    const char *role = json_string_value(json_object_get(b, "taskRoleName"));
    json_t *ji = json_object_get(b, "taskIndex");
    const char *cmd = json_string_value(json_object_get(b, "command"));
    json_t *jt = json_object_get(b, "timeoutSec");
    pai_err_t rc = PAI_OK;
    int a = 0, ta = 0;
    if (!json_is_object(b))
        rc = pai_error_set(e, PAI_E_INVALID, "the body must be a JSON object");
    else if (!role || !json_is_integer(ji) || json_integer_value(ji) < 0 ||
             json_integer_value(ji) > 1000000)
        rc = pai_error_set(e, PAI_E_INVALID, "taskRoleName and taskIndex name the task");
    else if (!cmd || !*cmd || strlen(cmd) > JOBS_EXEC_MAX_CMD)
        rc = pai_error_set(e, PAI_E_INVALID, "command: a string of 1 to %u bytes",
                           JOBS_EXEC_MAX_CMD);
    else if (jt && (!json_is_integer(jt) || json_integer_value(jt) < 1 ||
                    json_integer_value(jt) > JOBS_EXEC_MAX_TIMEOUT_S))
        rc = pai_error_set(e, PAI_E_INVALID, "timeoutSec: 1 to %d", JOBS_EXEC_MAX_TIMEOUT_S);
    int index = (int)json_integer_value(ji);
    if (rc == PAI_OK)
        rc = current(ctx, job, role, index, &a, &ta, e);
    if (rc == PAI_OK) {
        json_t *o =
            xjson_pack("{ss sI}", "command", cmd, "timeoutSec",
                       jt ? json_integer_value(jt) : (json_int_t)JOBS_EXEC_DEFAULT_TIMEOUT_S);
        char *body = xjson_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        rc = offload(ctx, job, role, index, a, ta, body, NULL, 0, resp, e);
    }
    json_decref(b);
    return rc;
}

pai_err_t jobs_exec_read(server_ctx_t *ctx, const char *job, const char *id, int64_t offset,
                         http_resp_t *resp, pai_error_t *e)
{
    int a, ta, index, used = 0;
    char agent_id[33];
    if (sscanf(id, "%d-%d-%d-%32[0-9a-f]-%n", &a, &ta, &index, agent_id, &used) != 4 || !used ||
        strlen(agent_id) != 32 || a < 0 || ta < 0 || index < 0)
        return pai_error_set(e, PAI_E_NOT_FOUND, "no such exec %s", id);
    return offload(ctx, job, id + used, index, a, ta, NULL, agent_id, offset, resp, e);
}
