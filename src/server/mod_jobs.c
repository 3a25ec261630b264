/*
 * mod_jobs.c - the "jobs" module: OpenPAI's /api/v2/jobs surface over the
 * job engine (engine/engine.h).  It owns the engine: created at init with
 * its ops (VC permission from auth, storages, the real clock; it loads every
 * job from the store and starts the engine's threads), freed at fini.
 *
 * Permissions (OpenPAI's): any caller with a user or application token lists
 * and reads jobs and submits its own; only the owner or an admin stops, tags
 * or deletes a job.  Task logs: the owner and admins, or anyone with
 * log_read_access "all" (OpenPAI's rule).  Paths name a job "{user}~{job}"
 * in one segment.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/config.h"
#include "engine/engine.h"
#include "server/jobs_exec.h"
#include "server/jobs_storage.h"
#include "server/logproxy.h"
#include "server/metrics.h"
#include "server/notify.h"
#include "server/offload.h"
#include "server/server.h"
#include "server/standby.h"

/* ---------------------------------------------------------------- helpers */

/* The {job} path parameter, "<user>~<job>". */
static pai_err_t job_param(const http_req_t *req, const char **out, pai_error_t *e)
{
    const char *name = http_param(req, "job");
    const char *tilde = name ? strchr(name, '~') : NULL;
    *out = NULL;
    if (!tilde || tilde == name || !tilde[1] || strchr(tilde + 1, '~') ||
        strlen(name) > PAI_MAX_NAME || strchr(name, '/'))
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name ? name : "");
    *out = name;
    return PAI_OK;
}

static pai_err_t int_param(const http_req_t *req, const char *name, int *out, pai_error_t *e)
{
    const char *s = http_param(req, name);
    if (!s || str_to_int(s, 0, 1000000, out) != PAI_OK)
        return pai_error_set(e, PAI_E_INVALID, "%s must be a non-negative integer", name);
    return PAI_OK;
}

/* The job and the task path parameters of a task route. */
static pai_err_t task_params(const http_req_t *req, const char **name, int *attempt, int *index,
                             pai_error_t *e)
{
    pai_err_t rc = job_param(req, name, e);
    if (rc == PAI_OK)
        rc = int_param(req, "attempt", attempt, e);
    if (rc == PAI_OK)
        rc = int_param(req, "index", index, e);
    return rc;
}

static void reply_message(http_resp_t *resp, int status, char *msg)
{
    http_reply_json(resp, status, xjson_pack("{ss}", "message", msg ? msg : ""));
    free(msg);
}

/* Owner or admin (OpenPAI's texts, rest-server controllers/v2/job.js). */
static pai_err_t may_change(server_ctx_t *ctx, const http_req_t *req, const char *name,
                            const char *what, pai_error_t *e)
{
    bool owner = false;
    int64_t since = auth_user_since(ctx, req->who.username);
    if (!engine_owner_check(ctx->engine, name, req->who.username, since, &owner))
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    if (!owner && !req->who.admin)
        return pai_error_set(e, PAI_E_FORBIDDEN, "User %s is not allowed to %s job %s.",
                             req->who.username, what, name);
    return PAI_OK;
}

/* Does the job's extras.logReaders name the user or one of their groups? */
static bool shared_with(server_ctx_t *ctx, const char *name, const char *user)
{
    json_t *x = NULL;
    pai_error_t e2 = PAI_ERROR_INIT;
    if (engine_job_extras(ctx->engine, name, &x, &e2) != PAI_OK) {
        pai_error_free(&e2);
        return false;
    }
    json_t *lr = json_object_get(x, "logReaders"), *v;
    bool ok = false;
    size_t i;
    json_array_foreach(json_object_get(lr, "users"), i, v)
    {
        ok = ok || (json_is_string(v) && strcasecmp(json_string_value(v), user) == 0);
    }
    json_array_foreach(json_object_get(lr, "groups"), i, v)
    {
        ok = ok || (json_is_string(v) && auth_user_in_group(ctx, user, json_string_value(v)));
    }
    json_decref(x);
    return ok;
}

/* May the caller read the job's task logs?  log_read_access "all": any
 * user, as in OpenPAI; "owner" (the default): the owner, admins and the
 * users and groups the owner shares them with (extras.logReaders;
 * docs/security.md, "Logs"). */
static pai_err_t may_read_logs(server_ctx_t *ctx, const http_req_t *req, const char *name,
                               pai_error_t *e)
{
    const char *access = ctx->cfg ? ctx->cfg->log_read_access : NULL;
    if (access && strcmp(access, "all") == 0)
        return PAI_OK;
    pai_err_t rc = may_change(ctx, req, name, "read the logs of", e);
    if (rc == PAI_E_FORBIDDEN && shared_with(ctx, name, req->who.username)) {
        pai_error_free(e); /* resets it */
        rc = PAI_OK;
    }
    return rc;
}

/* ---------------------------------------------------------------- handlers */

static bool vc_check(void *ud, const char *user, const char *vc)
{
    return auth_user_can_use_vc(ud, user, vc);
}

static json_t *ssh_keys(void *ud, const char *user)
{
    return auth_user_ssh_keys(ud, user);
}

static int64_t task_uid(void *ud, const char *user)
{
    return auth_user_task_uid(ud, user);
}

/* A batch of submissions waits for more (the engine's group delay): the
 * next batch may start on another worker meanwhile, as after its answers
 * (offload_batch_answered: nothing outside a batch). */
static void submit_waits(void *ud)
{
    (void)ud;
    offload_batch_answered();
}

/* The submissions queued at one moment, run by one write worker as one
 * batch (engine_submit_batch: one engine lock to reserve them all, one
 * commit before their answers, instead of a worker's wake-up and a wait
 * for a commit each); each answered as it would be alone, a refused one
 * failing alone. */
void jobs_submit_batch(server_ctx_t *ctx, http_call_t *calls, size_t n)
{
    engine_submit_call_t *sc = xcalloc(n, sizeof(*sc));
    size_t *of = xcalloc(n, sizeof(*of)); /* sc[k] is calls[of[k]] */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const http_req_t *req = calls[i].req;
        if (req->body_len > PAI_MAX_JOB_YAML) {
            calls[i].rc = pai_error_set(calls[i].e, PAI_E_TOO_LARGE,
                                        "job protocol larger than %u bytes", PAI_MAX_JOB_YAML);
            continue;
        }
        sc[m] = (engine_submit_call_t){
            .user = req->who.username, .yaml = req->body, .len = req->body_len, .e = calls[i].e};
        of[m++] = i;
    }
    engine_submit_batch(ctx->engine, sc, m);
    for (size_t k = 0; k < m; k++) {
        http_call_t *c = &calls[of[k]];
        c->rc = sc[k].rc;
        if (c->rc == PAI_OK)
            reply_message(c->resp, 202, str_printf("update job %s successfully", sc[k].name));
        free(sc[k].name);
    }
    free(of);
    free(sc);
}

/* A submission alone (the route's handler when no batch runs it): a batch
 * of one. */
static pai_err_t h_submit(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    http_call_t c = {.req = req, .resp = resp, .e = e};
    jobs_submit_batch(ctx, &c, 1);
    return c.rc;
}

/* tailMode=true (the SDK's and the spec's spelling) or tail-mode=true (what
 * OpenPAI's server and web portal use). */
static bool want_tail(const http_req_t *req)
{
    const char *t = http_query(req, "tailMode");
    if (!t)
        t = http_query(req, "tail-mode");
    return t && strcmp(t, "true") == 0;
}

static pai_err_t query_i64(const http_req_t *req, const char *name, int64_t *out, pai_error_t *e)
{
    const char *s = http_query(req, name);
    *out = 0;
    /* An empty value (offset=&limit=, as form-built URLs send) is the default. */
    if (s && *s && str_to_i64(s, 0, INT64_MAX, out) != PAI_OK)
        return pai_error_set(e, PAI_E_INVALID, "%s must be a non-negative integer", name);
    return PAI_OK;
}

static pai_err_t h_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    engine_filter_t f = {
        .username = http_query(req, "username"),
        .vc = http_query(req, "vc"),
        .state = http_query(req, "state"),
        .keyword = http_query(req, "keyword"),
        .tags_contain = http_query(req, "tagsContain"),
        .tags_not_contain = http_query(req, "tagsNotContain"),
        .job_priority = http_query(req, "jobPriority"),
        .order = http_query(req, "order"),
    };
    const char *wt = http_query(req, "withTotalCount");
    f.with_total = wt && strcmp(wt, "true") == 0;
    json_t *out = NULL;
    pai_err_t rc;
    if ((rc = query_i64(req, "offset", &f.offset, e)) != PAI_OK ||
        (rc = query_i64(req, "limit", &f.limit, e)) != PAI_OK ||
        (rc = engine_list(ctx->engine, &f, &out, e)) != PAI_OK)
        return rc;
    http_reply_json(resp, 200, out);
    return PAI_OK;
}

/* {job} and the optional {attempt} (-1 when absent: the last attempt). */
static pai_err_t job_attempt_params(const http_req_t *req, const char **name, int *attempt,
                                    pai_error_t *e)
{
    *attempt = -1;
    pai_err_t rc = job_param(req, name, e);
    if (rc == PAI_OK && http_param(req, "attempt"))
        rc = int_param(req, "attempt", attempt, e);
    return rc;
}

static pai_err_t h_detail(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    const char *name;
    int attempt;
    json_t *out = NULL;
    pai_err_t rc = job_attempt_params(req, &name, &attempt, e);
    if (rc == PAI_OK)
        rc = engine_detail(ctx->engine, name, attempt, &out, e);
    if (rc == PAI_OK)
        http_reply_json(resp, 200, out);
    return rc;
}

static pai_err_t h_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    const char *name;
    pai_err_t rc;
    if ((rc = job_param(req, &name, e)) != PAI_OK ||
        (rc = may_change(ctx, req, name, "delete", e)) != PAI_OK ||
        (rc = engine_delete(ctx->engine, name, e)) != PAI_OK)
        return rc;
    reply_message(resp, 200, str_printf("delete job %s successfully", name));
    return PAI_OK;
}

/* The running tasks of the job's latest attempt as ssh targets. */
static json_t *ssh_containers(const json_t *detail, const char *user, json_t *known,
                              const char *hostkey)
{
    json_t *out = json_array(), *role;
    const char *rname;
    json_object_foreach(json_object_get(detail, "taskRoles"), rname, role)
    {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(role, "taskStatuses"), i, t)
        {
            const char *ip = json_string_value(json_object_get(t, "containerIp"));
            /* "containerPorts": {"ssh": "PORT[,PORT...]"} */
            const char *ps =
                json_string_value(json_object_get(json_object_get(t, "containerPorts"), "ssh"));
            const char *state = json_string_value(json_object_get(t, "taskState"));
            long long port = ps ? strtoll(ps, NULL, 10) : 0;
            if (!ip || port <= 0 || port > 65535 || !state || strcmp(state, "RUNNING") != 0)
                continue;
            json_int_t idx = json_integer_value(json_object_get(t, "taskIndex"));
            char *id = str_printf("%s-%lld", rname, (long long)idx);
            char *line = str_printf("[%s]:%lld %s", ip, port, hostkey);
            json_array_append_new(known, json_string(line));
            free(line);
            json_array_append_new(out, xjson_pack("{ss ss sI ss sI ss}", "id", id, "taskRoleName",
                                                  rname, "taskIndex", idx, "sshIp", ip, "sshPort",
                                                  (json_int_t)port, "sshUser", user));
            free(id);
        }
    }
    return out;
}

/* GET /api/v2/jobs/{job}/ssh: where the job's tasks listen for ssh, the key
 * pair the job was given and its host key (docs/ssh.md).  Owner or admin;
 * the private key goes to the owner only. */
static pai_err_t h_ssh(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    const char *name;
    json_t *rec = NULL, *detail = NULL;
    pai_err_t rc;
    if ((rc = job_param(req, &name, e)) != PAI_OK ||
        (rc = may_change(ctx, req, name, "read the ssh info of", e)) != PAI_OK ||
        (rc = engine_ssh_record(ctx->engine, name, &rec, e)) != PAI_OK ||
        (rc = engine_detail(ctx->engine, name, -1, &detail, e)) != PAI_OK) {
        json_decref(rec);
        return rc;
    }
    const char *tilde = strchr(name, '~');
    size_t ul = tilde ? (size_t)(tilde - name) : 0;
    bool owner = strlen(req->who.username) == ul && strncmp(req->who.username, name, ul) == 0;
    const char *hostkey = json_string_value(json_object_get(rec, "hostPublicKey"));
    json_t *known = json_array();
    const char *login = json_string_value(json_object_get(rec, "user"));
    json_t *containers = ssh_containers(detail, login ? login : "", known, hostkey ? hostkey : "");
    json_t *pair =
        xjson_pack("{sO ss ss}", "publicKey", json_object_get(rec, "publicKey"),
                   "publicKeyFileName", "id_ed25519.pub", "privateKeyFileName", "id_ed25519");
    if (owner)
        json_object_set(pair, "privateKey", json_object_get(rec, "privateKey"));
    http_reply_json(resp, 200,
                    xjson_pack("{so so sO so sO}", "containers", containers, "keyPair", pair,
                               "hostPublicKey", json_object_get(rec, "hostPublicKey"), "knownHosts",
                               known, "jobssh", json_object_get(rec, "jobssh")));
    json_decref(rec);
    json_decref(detail);
    return PAI_OK;
}

/* pai exec (jobs_exec.c): the owner and admins, as for stopping the job. */
static pai_err_t h_exec(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    const char *name;
    pai_err_t rc;
    if ((rc = job_param(req, &name, e)) != PAI_OK ||
        (rc = may_change(ctx, req, name, "execute commands in", e)) != PAI_OK)
        return rc;
    return jobs_exec_start(ctx, name, req, resp, e);
}

static pai_err_t h_exec_read(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                             pai_error_t *e)
{
    const char *name, *id = http_param(req, "id");
    int64_t offset = 0;
    pai_err_t rc;
    if ((rc = job_param(req, &name, e)) != PAI_OK ||
        (rc = may_change(ctx, req, name, "execute commands in", e)) != PAI_OK ||
        (rc = query_i64(req, "offset", &offset, e)) != PAI_OK)
        return rc;
    if (!id || offset < 0)
        return pai_error_set(e, PAI_E_INVALID, "an exec id and a byte offset >= 0");
    return jobs_exec_read(ctx, name, id, offset, resp, e);
}

static pai_err_t h_config(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    const char *name;
    char *yaml = NULL;
    pai_err_t rc = job_param(req, &name, e);
    if (rc == PAI_OK)
        rc = engine_config_yaml(ctx->engine, name, &yaml, e);
    if (rc == PAI_OK)
        http_reply_text(resp, 200, "text/yaml", yaml, strlen(yaml));
    free(yaml);
    return rc;
}

/* The body's "value", one of the allowed strings (NULL: any of 1 to
 * PAI_MAX_NAME characters). */
static pai_err_t body_value(const http_req_t *req, json_t **body, const char **value,
                            pai_error_t *e)
{
    pai_err_t rc = http_body_json(req, body, e);
    if (rc != PAI_OK)
        return rc;
    *value = json_string_value(json_object_get(*body, "value"));
    return *value ? PAI_OK : pai_error_set(e, PAI_E_INVALID, "value must be a string");
}

static pai_err_t h_execution(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                             pai_error_t *e)
{
    const char *name, *v = NULL;
    json_t *body = NULL;
    pai_err_t rc;
    if ((rc = job_param(req, &name, e)) != PAI_OK || (rc = body_value(req, &body, &v, e)) != PAI_OK)
        goto out;
    if (strcmp(v, "START") != 0 && strcmp(v, "STOP") != 0) {
        rc = pai_error_set(e, PAI_E_INVALID, "value must be START or STOP");
        goto out;
    }
    if ((rc = may_change(ctx, req, name, "execute", e)) != PAI_OK ||
        (rc = engine_set_execution(ctx->engine, name, strcmp(v, "STOP") == 0, e)) != PAI_OK)
        goto out;
    reply_message(resp, 202, str_printf("execute job %s successfully", name));
out:
    json_decref(body);
    return rc;
}

static pai_err_t tag(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, bool add,
                     pai_error_t *e)
{
    const char *name, *v = NULL;
    json_t *body = NULL;
    pai_err_t rc;
    if ((rc = job_param(req, &name, e)) != PAI_OK || (rc = body_value(req, &body, &v, e)) != PAI_OK)
        goto out;
    if (!*v || strlen(v) > PAI_MAX_NAME) {
        rc = pai_error_set(e, PAI_E_INVALID, "value must be a tag of 1 to %u characters",
                           PAI_MAX_NAME);
        goto out;
    }
    if ((rc = may_change(ctx, req, name, add ? "add tag to" : "delete tag from", e)) != PAI_OK ||
        (rc = engine_tag(ctx->engine, name, v, add, e)) != PAI_OK)
        goto out;
    reply_message(resp, 200,
                  add ? str_printf("Add tag %s for job %s successfully.", v, name)
                      : str_printf("Delete tag %s from job %s successfully.", v, name));
out:
    json_decref(body);
    return rc;
}

static pai_err_t h_tag_add(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    return tag(ctx, req, resp, true, e);
}

static pai_err_t h_tag_del(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    return tag(ctx, req, resp, false, e);
}

static pai_err_t h_events(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    const char *name, *type = http_query(req, "type");
    json_t *out = NULL;
    pai_err_t rc = job_param(req, &name, e);
    if (rc == PAI_OK && type && strcmp(type, "Warning") != 0 && strcmp(type, "Normal") != 0)
        rc = pai_error_set(e, PAI_E_INVALID, "type must be Warning or Normal");
    if (rc == PAI_OK)
        rc = engine_events(ctx->engine, name, type, &out, e);
    if (rc == PAI_OK)
        http_reply_json(resp, 200, out);
    return rc;
}

static pai_err_t h_attempts_healthz(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                    pai_error_t *e)
{
    (void)ctx, (void)req, (void)e;
    http_reply_text(resp, 200, "text/plain", "ok", 2);
    return PAI_OK;
}

static pai_err_t h_attempts(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                            pai_error_t *e)
{
    const char *name;
    int attempt;
    json_t *out = NULL;
    pai_err_t rc = job_attempt_params(req, &name, &attempt, e);
    if (rc == PAI_OK)
        rc = engine_attempts(ctx->engine, name, attempt, &out, e);
    if (rc == PAI_OK)
        http_reply_json(resp, 200, out);
    return rc;
}

static pai_err_t h_task(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    const char *name;
    int attempt, index;
    json_t *out = NULL;
    pai_err_t rc = task_params(req, &name, &attempt, &index, e);
    if (rc == PAI_OK)
        rc = engine_task(ctx->engine, name, attempt, http_param(req, "role"), index, &out, e);
    if (rc == PAI_OK)
        http_reply_json(resp, 200, out);
    return rc;
}

/* ---------------------------------------------------------------- logs */

static const char *const log_kinds[] = {"stdout", "stderr", "all"};

static pai_err_t h_task_logs(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                             pai_error_t *e)
{
    const char *name;
    int attempt, index, ta;
    char *url = NULL, *id = NULL, *key = NULL;
    pai_err_t rc = task_params(req, &name, &attempt, &index, e);
    if (rc == PAI_OK)
        rc = int_param(req, "ta", &ta, e);
    if (rc == PAI_OK)
        rc = may_read_logs(ctx, req, name, e);
    if (rc == PAI_OK)
        rc = engine_task_log_source(ctx->engine, name, attempt, http_param(req, "role"), index, ta,
                                    &url, &id, &key, e);
    free(key);
    if (rc != PAI_OK)
        return rc;
    bool tail_mode = want_tail(req);
    json_t *loc = json_array();
    for (size_t k = 0; k < ARRAY_LEN(log_kinds); k++) {
        char *uri = str_printf("/api/v2/jobs/%s/attempts/%d/taskRoles/%s/taskIndex/%d/attempts/"
                               "%d/logs/%s%s",
                               name, attempt, http_param(req, "role"), index, ta, log_kinds[k],
                               tail_mode ? "?tailMode=true" : "");
        json_array_append_new(loc, xjson_pack("{ss ss}", "name", log_kinds[k], "uri", uri));
        free(uri);
    }
    http_reply_json(resp, 200, xjson_pack("{so}", "locations", loc));
    free(url);
    free(id);
    return PAI_OK;
}

/* Log reads in flight per user (log_reads_per_user): one table for the
 * server process, made by jobs_init (NULL before: no bound). */
static logproxy_quota_t *log_quota;

/* A log read waiting for the agent's answer (copies: it outlives the request). */
typedef struct {
    char *url, *id, *tok, *kind;
    bool tail;
    char *user; /* holds one of user's reads in log_quota (NULL: none) */
} log_open_t;

/* A streaming log: the proxy and the quota it holds. */
typedef struct {
    logproxy_t *lp;
    char *user;
} log_stream_t;

static void quota_give(char *user)
{
    if (user && log_quota)
        logproxy_quota_give(log_quota, user);
    free(user);
}

static long log_stream_read(void *ud, char *buf, size_t max)
{
    return logproxy_read(((log_stream_t *)ud)->lp, buf, max);
}

static void log_stream_free(void *ud)
{
    log_stream_t *s = ud;
    logproxy_free(s->lp);
    quota_give(s->user);
    free(s);
}

static void log_open_free(void *ud)
{
    log_open_t *o = ud;
    quota_give(o->user);
    free(o->url);
    free(o->id);
    if (o->tok)
        sodium_memzero(o->tok, strlen(o->tok));
    free(o->tok);
    free(o->kind);
    free(o);
}

/* On a worker of the HTTP layer (http_reply_offload): connecting to the
 * agent and waiting for its headers may take up to LOGPROXY_OPEN_MS. */
static pai_err_t log_open(server_ctx_t *ctx, void *ud, http_resp_t *resp, pai_error_t *e)
{
    log_open_t *o = ud;
    logproxy_req_t q = {.log_url = o->url,
                        .attempt_id = o->id,
                        .kind = o->kind,
                        .tail = o->tail,
                        .token = o->tok,
                        .ca_file = ctx->cfg->agent_ca_file};
    logproxy_t *lp = NULL;
    int retry_after = 0;
    pai_err_t rc = logproxy_open(&q, &lp, &retry_after, e);
    if (rc == PAI_OK) {
        log_stream_t *s = xcalloc(1, sizeof(*s));
        *s = (log_stream_t){.lp = lp, .user = o->user};
        o->user = NULL; /* the stream gives it back when it ends */
        http_reply_stream(resp, 200, "text/plain", log_stream_read, log_stream_free, s);
    } else if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        http_add_header(resp, "Retry-After", v);
    }
    return rc;
}

/* Stream the log from the agent that has it (server/logproxy.h): the reply
 * is made once the agent has answered 200; before that an error is an
 * error reply, a busy node's with its Retry-After.  The node's log key is
 * presented when it has one (docs/agent-protocol.md, "Logs"), else the
 * join token.  Both the wait for the agent and the body's reads run on the
 * HTTP layer's bounded workers, never on a pool thread (http.h). */
static pai_err_t stream_log(server_ctx_t *ctx, const http_req_t *req, const char *url,
                            const char *id, const char *key, const char *kind, bool tail,
                            http_resp_t *resp, pai_error_t *e)
{
    /* Admins are not bounded; a user's reads are, before any is started. */
    const char *user = req->who.admin ? NULL : req->who.username;
    if (user && log_quota && !logproxy_quota_take(log_quota, user)) {
        http_add_header(resp, "Retry-After", "1");
        return pai_error_set(e, PAI_E_TOO_MANY_READS,
                             "%s has %lld log reads in flight already (log_reads_per_user); "
                             "retry when one has ended",
                             user, (long long)ctx->cfg->log_reads_per_user);
    }
    log_open_t *o = xcalloc(1, sizeof(*o));
    *o = (log_open_t){.url = xstrdup(url),
                      .id = xstrdup(id),
                      .tok = key ? xstrdup(key) : jobs_agent_key(ctx->cfg),
                      .kind = xstrdup(kind),
                      .tail = tail,
                      .user = user && log_quota ? xstrdup(user) : NULL};
    http_reply_offload(resp, log_open, log_open_free, o);
    return PAI_OK;
}

static pai_err_t h_task_log_content(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                                    pai_error_t *e)
{
    const char *name, *kind = http_param(req, "kind");
    int attempt, index, ta;
    pai_err_t rc = task_params(req, &name, &attempt, &index, e);
    if (rc == PAI_OK)
        rc = int_param(req, "ta", &ta, e);
    if (rc == PAI_OK)
        rc = may_read_logs(ctx, req, name, e);
    if (rc != PAI_OK)
        return rc;
    size_t k;
    for (k = 0; k < ARRAY_LEN(log_kinds); k++)
        if (strcmp(kind, log_kinds[k]) == 0)
            break;
    if (k == ARRAY_LEN(log_kinds))
        return pai_error_set(e, PAI_E_NO_TASK_LOG, "log must be stdout, stderr or all");
    char *url = NULL, *id = NULL, *key = NULL;
    rc = engine_task_log_source(ctx->engine, name, attempt, http_param(req, "role"), index, ta,
                                &url, &id, &key, e);
    if (rc == PAI_OK)
        rc = stream_log(ctx, req, url, id, key, log_kinds[k], want_tail(req), resp, e);
    free(url);
    free(id);
    free(key);
    return rc;
}

/* ---------------------------------------------------------------- module */

#define JOB_PATH  "/api/v2/jobs/{job}"
#define TASK_PATH JOB_PATH "/attempts/{attempt}/taskRoles/{role}/taskIndex/{index}/attempts"

static const http_route_t jobs_routes[] = {
    {"POST", "/api/v2/jobs", h_submit, PERM_USER}, /* batched: modules.c */
    {"GET", "/api/v2/jobs", h_list, PERM_USER},
    {"GET", JOB_PATH, h_detail, PERM_USER},
    {"DELETE", JOB_PATH, h_delete, PERM_USER},
    {"GET", JOB_PATH "/attempts/{attempt}", h_detail, PERM_USER},
    {"GET", JOB_PATH "/config", h_config, PERM_USER},
    {"GET", JOB_PATH "/ssh", h_ssh, PERM_USER},
    {"POST", JOB_PATH "/exec", h_exec, PERM_USER},
    {"GET", JOB_PATH "/exec/{id}", h_exec_read, PERM_USER},
    {"PUT", JOB_PATH "/executionType", h_execution, PERM_USER},
    {"PUT", JOB_PATH "/tag", h_tag_add, PERM_USER},
    {"DELETE", JOB_PATH "/tag", h_tag_del, PERM_USER},
    {"GET", JOB_PATH "/events", h_events, PERM_USER},
    {"GET", JOB_PATH "/job-attempts/healthz", h_attempts_healthz, PERM_USER},
    {"GET", JOB_PATH "/job-attempts", h_attempts, PERM_USER},
    {"GET", JOB_PATH "/job-attempts/{attempt}", h_attempts, PERM_USER},
    {"GET", TASK_PATH, h_task, PERM_USER},
    {"GET", TASK_PATH "/{ta}/logs", h_task_logs, PERM_USER},
    {"GET", TASK_PATH "/{ta}/logs/{kind}", h_task_log_content, PERM_USER},
    {NULL, NULL, NULL, PERM_ANON},
};

static void jobs_quiesce_hook(server_ctx_t *ctx)
{
    engine_quiesce(ctx->engine);
}

void jobs_engine_opts(const server_config_t *cfg, engine_opts_t *out)
{
    engine_opts_t o = {.hived_config = cfg->hived_config,
                       .node_lost_timeout_s = cfg->node_lost_timeout_s,
                       .port_base = (int)cfg->task_port_base,
                       .port_count = (int)cfg->task_port_count,
                       .starvation_ms = cfg->sched_reservation_timeout_s > 0
                                            ? cfg->sched_reservation_timeout_s * 1000
                                            : -1,
                       .idle_gpu_util_pct = (int)cfg->idle_gpu_util_pct,
                       .idle_gpu_ms = cfg->idle_gpu_seconds * 1000,
                       .sched_check_interval_ms = cfg->sched_check_interval_s * 1000,
                       .events_per_job = (int)cfg->events_per_job,
                       .event_retention_ms = cfg->event_retention_days * 86400LL * 1000,
                       .note_waiting_ms = cfg->notify_waiting_s * 1000,
                       .note_idle_ms = cfg->notify_idle_s * 1000,
                       .node_approval_manual = strcmp(cfg->node_approval, "manual") == 0};
    static const engine_sched_check_t check[] = {ENGINE_CHECK_SAMPLE, ENGINE_CHECK_EVERY,
                                                 ENGINE_CHECK_OFF};
    int c = server_config_sched_check(cfg); /* checked when the config was read */
    o.sched_check = check[c >= 0 ? c : 0];
    /* Test hook (tests/blackbox/test_sched_check.py): a bookkeeping error on
     * purpose, so that the checker's report can be seen end to end. */
    const char *corrupt = getenv("PAI_TEST_SCHED_CORRUPT");
    o.sched_test_corrupt = corrupt && strcmp(corrupt, "1") == 0;
    *out = o;
}

static pai_err_t jobs_init(server_ctx_t *ctx)
{
    const server_config_t *cfg = ctx->cfg;
    engine_opts_t o;
    jobs_engine_opts(cfg, &o);
    /* Authorization, storages, ssh keys and notifications come from the
     * server's modules; the real clock. */
    engine_ops_t ops = {.ud = ctx,
                        .can_use_vc = vc_check,
                        .mounts = jobs_storage_mounts,
                        .ssh_keys = ssh_keys,
                        .task_uid = task_uid,
                        .submit_waits = submit_waits,
                        .note_spec = ctx->notify ? notify_engine_spec : NULL,
                        .note = ctx->notify ? notify_engine_note : NULL};
    pai_error_t e = PAI_ERROR_INIT;
    pai_err_t rc = engine_new(ctx->store, &o, &ops, &ctx->engine, &e);
    if (rc != PAI_OK) {
        log_error("jobs: %s", pai_error_msg(&e));
        pai_error_free(&e);
        return rc;
    }
    if (ctx->metrics)
        rc = metrics_register(ctx->metrics, "jobs", engine_metrics, ctx->engine);
    if (rc == PAI_OK)
        rc = server_on_quiesce(ctx, jobs_quiesce_hook);
    if (rc == PAI_OK && !log_quota)
        log_quota = logproxy_quota_new((unsigned)cfg->log_reads_per_user);
    return rc;
}

static void jobs_fini(server_ctx_t *ctx)
{
    engine_free(ctx->engine);
    ctx->engine = NULL;
    /* after the HTTP server stopped: no stream holds the quota any more */
    logproxy_quota_free(log_quota);
    log_quota = NULL;
}

const server_module_t server_module_jobs = {"jobs", jobs_init, jobs_fini, jobs_routes};
