/*
 * alerts.c - the "alerts" server module: GET /api/v2/alerts as OpenPAI
 * defines it (rest-server models/v2/alert.js): admins get every firing
 * alert, other users those of their own jobs (an alert labelled job_name
 * and username, username theirs).  pai evaluates no rules itself: the
 * alerts are the firing ones of the Prometheus named by prometheus_url,
 * which loads deploy/prometheus/rules.yml (docs/monitoring.md).  Without
 * prometheus_url the route answers 501, as before.
 *
 * Each answer asks Prometheus (GET {prometheus_url}/api/v1/alerts) on a
 * worker of the HTTP layer (http_reply_offload: never on a thread that
 * serves connections), bounded by ALERTS_TIMEOUT_MS and
 * PAI_MAX_ALERTS_BODY; the alerts are Prometheus' objects (labels,
 * annotations, state, activeAt, value), the pending ones left out.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/curlbuf.h"
#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "server/config.h"
#include "server/server.h"

#define ALERTS_TIMEOUT_MS 5000L

/* Prometheus' alerts: data.alerts of its answer (new reference), or NULL
 * with e set. */
static json_t *fetch_alerts(const char *base, pai_error_t *e)
{
    buf_t b;
    long status = 0;
    json_t *root = NULL, *out = NULL;
    buf_init(&b, PAI_MAX_ALERTS_BODY);
    size_t len = strlen(base);
    while (len && base[len - 1] == '/')
        len--;
    char *url = str_printf("%.*s/api/v1/alerts", (int)len, base);
    CURL *c = curl_easy_init();
    if (!c)
        util_oom();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curlbuf_collect(c, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ALERTS_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc == CURLE_OK && status == 200)
        root = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    out = json_object_get(json_object_get(root, "data"), "alerts");
    if (json_is_array(out)) {
        json_incref(out);
    } else {
        log_warn("alerts: %s answered %s (HTTP %ld)", url,
                 rc != CURLE_OK ? curl_easy_strerror(rc) : "no alerts list", status);
        pai_error_set(e, PAI_E_INTERNAL, "the alerts' Prometheus (prometheus_url) did not answer");
        out = NULL;
    }
    json_decref(root);
    buf_free(&b);
    free(url);
    return out;
}

/* OpenPAI's rule: a user's alert names the job and the user. */
static bool users_alert(const json_t *alert, const char *user)
{
    const json_t *labels = json_object_get(alert, "labels");
    const char *u = json_string_value(json_object_get(labels, "username"));
    return json_object_get(labels, "job_name") && u && user && strcmp(u, user) == 0;
}

/* Whose alerts an answer lists (a copy: it is made after the handler). */
typedef struct {
    char *user; /* NULL when anonymous */
    bool admin;
} alerts_q_t;

static void alerts_q_free(void *ud)
{
    alerts_q_t *q = ud;
    free(q->user);
    free(q);
}

/* On a worker of the HTTP layer (http_reply_offload): Prometheus may take
 * up to ALERTS_TIMEOUT_MS to answer. */
static pai_err_t alerts_answer(server_ctx_t *ctx, void *ud, http_resp_t *resp, pai_error_t *e)
{
    const alerts_q_t *q = ud;
    json_t *all = fetch_alerts(ctx->cfg->prometheus_url, e);
    if (!all)
        return PAI_E_INTERNAL;
    json_t *out = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(all, i, a)
    {
        const char *state = json_string_value(json_object_get(a, "state"));
        if (state && strcmp(state, "firing") == 0 && (q->admin || users_alert(a, q->user)))
            json_array_append(out, a);
    }
    json_decref(all);
    http_reply_json(resp, 200, out);
    return PAI_OK;
}

static pai_err_t h_alerts(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    const char *base = ctx->cfg->prometheus_url;
    if (!base || !*base)
        return pai_error_set(e, PAI_E_NOT_IMPLEMENTED,
                             "no prometheus_url is configured: pai evaluates no alert rules "
                             "itself; see docs/monitoring.md");
    alerts_q_t *q = xcalloc(1, sizeof(*q));
    q->user = req->who.username ? xstrdup(req->who.username) : NULL;
    q->admin = req->who.admin;
    http_reply_offload(resp, alerts_answer, alerts_q_free, q);
    return PAI_OK;
}

/* OpenPAI's route takes any token (token.check), application ones too. */
static const http_route_t alerts_routes[] = {
    {"GET", "/api/v2/alerts", h_alerts, PERM_USER},
    {NULL, NULL, NULL, PERM_ANON},
};

const server_module_t server_module_alerts = {"alerts", NULL, NULL, alerts_routes};
