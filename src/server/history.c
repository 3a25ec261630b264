/*
 * history.c - the metrics history ring (history.h) and the "history" server
 * module: GET /api/v2/cluster/metrics-history and
 * GET /api/v2/jobs/{job}/metrics-history.
 *
 * Sample k (k counts from 0) lives in slot k % points of every ring.  At
 * each sample every series' slot is first marked missing, then the series
 * seen now are written; a series records the last sample that saw it, which
 * decides when it is dropped.
 */
#include "server/history.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/promtext.h"
#include "common/strmap.h"
#include "common/util.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/server.h"

#define MISSING    INT32_MIN
#define JOB_KEEP_S 3600 /* a finished job's series stays this long */

typedef enum { SER_CLUSTER, SER_VC, SER_NODE, SER_JOB, SER__COUNT } ser_kind_t;

/* Names of a series' two values in the JSON answers, by kind. */
static const char *const val_names[SER__COUNT][2] = {
    {"gpusTotal", "gpusUsed"},
    {"usedGpus", "guaranteedGpus"},
    {"usedGpus", "utilization"},
    {"gpus", "utilization"},
};

typedef struct {
    char *name;
    ser_kind_t kind;
    uint64_t last_seen; /* sample number */
    int32_t *v[2];      /* rings of points values */
} series_t;

struct history {
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stopping;
    engine_t *engine;
    int64_t interval_ms;
    size_t points, max_series;
    uint64_t keep_job, keep_other; /* samples a missing series is kept */
    uint64_t n;                    /* samples taken */
    int64_t *ts;                   /* wall-clock ms, ring */
    series_t *s;
    size_t ns;
    strmap_t *index;  /* series_key -> position in s, plus 1 */
    uint64_t refused; /* series not kept because of the cap */
};

/* ---------------------------------------------------------------- ring */

/* A series' key in the index: its kind as a digit, then its name.  A
 * sample puts one series per node and running job: a scan per put was
 * 10,000 x 10,000 comparisons at 10,000 nodes. */
static void series_key(char *key, size_t cap, ser_kind_t kind, const char *name)
{
    snprintf(key, cap, "%c%s", '0' + (int)kind, name);
}

static void index_set(history_t *h, size_t i)
{
    char key[PAI_MAX_NAME * 2 + 8];
    series_key(key, sizeof key, h->s[i].kind, h->s[i].name);
    if (strmap_put(h->index, key, (void *)(uintptr_t)(i + 1)) != PAI_OK)
        util_oom();
}

static series_t *series_get(history_t *h, ser_kind_t kind, const char *name)
{
    char key[PAI_MAX_NAME * 2 + 8];
    series_key(key, sizeof key, kind, name);
    uintptr_t at = (uintptr_t)strmap_get(h->index, key);
    if (at)
        return &h->s[at - 1];
    if (h->ns >= h->max_series) {
        h->refused++;
        return NULL;
    }
    series_t *s = &h->s[h->ns++];
    s->name = xstrdup(name);
    s->kind = kind;
    for (int k = 0; k < 2; k++) {
        s->v[k] = xcalloc(h->points, sizeof(int32_t));
        for (size_t i = 0; i < h->points; i++)
            s->v[k][i] = MISSING;
    }
    index_set(h, h->ns - 1);
    return s;
}

static void series_free(series_t *s)
{
    free(s->name);
    free(s->v[0]);
    free(s->v[1]);
}

static void put(history_t *h, ser_kind_t kind, const char *name, int a, int b)
{
    series_t *s = series_get(h, kind, name);
    if (!s)
        return;
    size_t slot = (size_t)(h->n % h->points);
    s->v[0][slot] = a;
    s->v[1][slot] = b < 0 && kind != SER_VC ? MISSING : b;
    s->last_seen = h->n;
}

/* Drop series unseen for longer than their kind keeps them. */
static void gc(history_t *h)
{
    for (size_t i = 0; i < h->ns;) {
        series_t *s = &h->s[i];
        uint64_t keep = s->kind == SER_JOB ? h->keep_job : h->keep_other;
        if (s->kind != SER_CLUSTER && h->n - s->last_seen > keep) {
            char key[PAI_MAX_NAME * 2 + 8];
            series_key(key, sizeof key, s->kind, s->name);
            strmap_del(h->index, key);
            series_free(s);
            h->s[i] = h->s[--h->ns];
            if (i < h->ns)
                index_set(h, i); /* the last one moved here */
        } else {
            i++;
        }
    }
}

void history_sample(history_t *h, int64_t now_ms)
{
    engine_usage_t u;
    engine_usage(h->engine, &u);
    pthread_mutex_lock(&h->mu);
    size_t slot = (size_t)(h->n % h->points);
    h->ts[slot] = now_ms;
    for (size_t i = 0; i < h->ns; i++)
        h->s[i].v[0][slot] = h->s[i].v[1][slot] = MISSING;
    put(h, SER_CLUSTER, "", u.gpus_total, u.gpus_used);
    for (size_t i = 0; i < u.nvcs; i++)
        put(h, SER_VC, u.vcs[i].name, u.vcs[i].used, u.vcs[i].other);
    for (size_t i = 0; i < u.nnodes; i++)
        put(h, SER_NODE, u.nodes[i].name, u.nodes[i].used, u.nodes[i].other);
    for (size_t i = 0; i < u.njobs; i++)
        put(h, SER_JOB, u.jobs[i].name, u.jobs[i].used, u.jobs[i].other);
    h->n++;
    gc(h);
    pthread_mutex_unlock(&h->mu);
    engine_usage_free(&u);
}

/* ---------------------------------------------------------------- answers */

/* The samples of a window: numbers [first, end), folded by stride. */
typedef struct {
    uint64_t first, end, stride;
} window_t;

static window_t window(const history_t *h, int64_t now_ms, int64_t minutes, int64_t max_points)
{
    window_t w = {h->n > h->points ? h->n - h->points : 0, h->n, 1};
    if (minutes > 0) {
        int64_t cutoff = now_ms - minutes * 60000;
        while (w.first < w.end && h->ts[w.first % h->points] < cutoff)
            w.first++;
    }
    uint64_t count = w.end - w.first;
    if (max_points > 0 && count > (uint64_t)max_points)
        w.stride = (count + (uint64_t)max_points - 1) / (uint64_t)max_points;
    return w;
}

/* One value of bucket [k, k + stride): the maximum present, or MISSING. */
static int32_t bucket(const history_t *h, const int32_t *v, const window_t *w, uint64_t k)
{
    int32_t best = MISSING;
    for (uint64_t i = k; i < k + w->stride && i < w->end; i++) {
        int32_t x = v[i % h->points];
        if (x != MISSING && x > best)
            best = x;
    }
    return best;
}

static json_t *values_json(const history_t *h, const int32_t *v, const window_t *w)
{
    json_t *a = json_array();
    for (uint64_t k = w->first; k < w->end; k += w->stride) {
        int32_t x = bucket(h, v, w, k);
        json_array_append_new(a, x == MISSING ? json_null() : json_integer(x));
    }
    return a;
}

/* Timestamp of a bucket: its last sample's. */
static json_t *times_json(const history_t *h, const window_t *w)
{
    json_t *a = json_array();
    for (uint64_t k = w->first; k < w->end; k += w->stride) {
        uint64_t last = k + w->stride < w->end ? k + w->stride - 1 : w->end - 1;
        json_array_append_new(a, json_integer(h->ts[last % h->points]));
    }
    return a;
}

static json_t *series_json(const history_t *h, const series_t *s, const window_t *w)
{
    return xjson_pack("{so so}", val_names[s->kind][0], values_json(h, s->v[0], w),
                      val_names[s->kind][1], values_json(h, s->v[1], w));
}

static json_t *head_json(const history_t *h, const window_t *w)
{
    return xjson_pack("{sI sI so}", "intervalSeconds", (json_int_t)(h->interval_ms / 1000),
                      "capacity", (json_int_t)h->points, "timestamps", times_json(h, w));
}

json_t *history_cluster_json(history_t *h, int64_t now_ms, int64_t minutes, int64_t max_points)
{
    pthread_mutex_lock(&h->mu);
    window_t w = window(h, now_ms, minutes, max_points);
    json_t *out = head_json(h, &w);
    json_t *vcs = json_object(), *nodes = json_object();
    for (size_t i = 0; i < h->ns; i++) {
        const series_t *s = &h->s[i];
        if (s->kind == SER_CLUSTER)
            json_object_set_new(out, "cluster", series_json(h, s, &w));
        else if (s->kind == SER_VC)
            json_object_set_new(vcs, s->name, series_json(h, s, &w));
        else if (s->kind == SER_NODE)
            json_object_set_new(nodes, s->name, series_json(h, s, &w));
    }
    pthread_mutex_unlock(&h->mu);
    json_object_set_new(out, "virtualClusters", vcs);
    json_object_set_new(out, "nodes", nodes);
    return out;
}

json_t *history_job_json(history_t *h, const char *job, int64_t now_ms, int64_t minutes,
                         int64_t max_points)
{
    pthread_mutex_lock(&h->mu);
    window_t w = window(h, now_ms, minutes, max_points);
    const series_t *s = NULL;
    for (size_t i = 0; i < h->ns && !s; i++)
        if (h->s[i].kind == SER_JOB && strcmp(h->s[i].name, job) == 0)
            s = &h->s[i];
    /* Trim to the samples that saw the job. */
    while (s && w.first < w.end && s->v[0][w.first % h->points] == MISSING)
        w.first++;
    while (s && w.end > w.first && s->v[0][(w.end - 1) % h->points] == MISSING)
        w.end--;
    if (!s)
        w.first = w.end;
    if (max_points > 0 && w.end - w.first > (uint64_t)max_points)
        w.stride = (w.end - w.first + (uint64_t)max_points - 1) / (uint64_t)max_points;
    else
        w.stride = 1;
    json_t *out = head_json(h, &w);
    json_object_set_new(out, "job", json_string(job));
    if (s) {
        json_object_set_new(out, "gpus", values_json(h, s->v[0], &w));
        json_object_set_new(out, "utilization", values_json(h, s->v[1], &w));
    } else {
        json_object_set_new(out, "gpus", json_array());
        json_object_set_new(out, "utilization", json_array());
    }
    pthread_mutex_unlock(&h->mu);
    return out;
}

void history_metrics(void *ud, buf_t *out)
{
    history_t *h = ud;
    pthread_mutex_lock(&h->mu);
    size_t ns = h->ns;
    uint64_t n = h->n, refused = h->refused;
    pthread_mutex_unlock(&h->mu);
    prom_gauge(out, "pai_metrics_history_series",
               "Series kept in the server's in-memory metrics history.", (double)ns);
    prom_counter(out, "pai_metrics_history_samples_total",
                 "Samples taken by the metrics history since start.", (double)n);
    prom_counter(out, "pai_metrics_history_series_refused_total",
                 "Series not kept because the history's series cap was reached.", (double)refused);
}

/* ---------------------------------------------------------------- thread */

static void *sampler(void *arg)
{
    history_t *h = arg;
    for (;;) {
        history_sample(h, time_wall_ms());
        pthread_mutex_lock(&h->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (h->interval_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(h->interval_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        while (!h->stopping && pthread_cond_timedwait(&h->cv, &h->mu, &ts) == 0)
            ;
        bool stop = h->stopping;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            return NULL;
    }
}

pai_err_t history_new(engine_t *engine, int64_t interval_s, size_t points, history_t **out)
{
    history_t *h = xcalloc(1, sizeof(*h));
    h->engine = engine;
    h->interval_ms = (interval_s > 0 ? interval_s : 1) * 1000;
    h->points = points >= 2 ? points : 2;
    size_t per = h->points * 2 * sizeof(int32_t);
    h->max_series = HISTORY_MAX_BYTES / per;
    if (h->max_series > HISTORY_MAX_SERIES)
        h->max_series = HISTORY_MAX_SERIES;
    if (h->max_series < 1)
        h->max_series = 1;
    uint64_t keep = (uint64_t)(JOB_KEEP_S * 1000 / h->interval_ms);
    h->keep_job = keep < h->points ? keep : h->points;
    h->keep_other = h->points;
    h->ts = xcalloc(h->points, sizeof(*h->ts));
    h->s = xcalloc(h->max_series, sizeof(*h->s));
    h->index = strmap_new(NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&h->thread, NULL, sampler, h) != 0) {
        history_free(h);
        return PAI_E_INTERNAL;
    }
    h->started = true;
    *out = h;
    return PAI_OK;
}

void history_stop(history_t *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    bool join = h->started;
    h->started = false;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (join)
        pthread_join(h->thread, NULL);
}

void history_free(history_t *h)
{
    if (!h)
        return;
    history_stop(h);
    for (size_t i = 0; i < h->ns; i++)
        series_free(&h->s[i]);
    free(h->s);
    strmap_free(h->index);
    free(h->ts);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ---------------------------------------------------------------- module */

/* ?minutes=M (default: the whole ring) and ?maxPoints=P (default 2000). */
static pai_err_t query_params(const http_req_t *req, int64_t *minutes, int64_t *max_points,
                              pai_error_t *e)
{
    const char *m = http_query(req, "minutes"), *p = http_query(req, "maxPoints");
    *minutes = 0;
    *max_points = 2000;
    if (m && str_to_i64(m, 1, 100L * 365 * 24 * 60, minutes) != PAI_OK)
        return pai_error_set(e, PAI_E_INVALID, "minutes must be a positive integer");
    if (p && str_to_i64(p, 1, 1000000, max_points) != PAI_OK)
        return pai_error_set(e, PAI_E_INVALID, "maxPoints must be a positive integer");
    return PAI_OK;
}

static pai_err_t h_cluster(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    int64_t minutes, max_points;
    pai_err_t rc = query_params(req, &minutes, &max_points, e);
    if (rc != PAI_OK)
        return rc;
    http_reply_json(resp, 200,
                    history_cluster_json(ctx->history, time_wall_ms(), minutes, max_points));
    return PAI_OK;
}

static pai_err_t h_job(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    const char *name = http_param(req, "job");
    int64_t minutes, max_points;
    bool owner = false;
    if (!name || strlen(name) > PAI_MAX_NAME ||
        !engine_owner_check(ctx->engine, name, "", 0, &owner))
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name ? name : "");
    pai_err_t rc = query_params(req, &minutes, &max_points, e);
    if (rc != PAI_OK)
        return rc;
    http_reply_json(resp, 200,
                    history_job_json(ctx->history, name, time_wall_ms(), minutes, max_points));
    return PAI_OK;
}

static const http_route_t history_routes[] = {
    {"GET", "/api/v2/cluster/metrics-history", h_cluster, PERM_USER},
    {"GET", "/api/v2/jobs/{job}/metrics-history", h_job, PERM_USER},
    {NULL, NULL, NULL, PERM_ANON},
};

static void history_quiesce_hook(server_ctx_t *ctx)
{
    history_stop(ctx->history);
}

static pai_err_t history_init(server_ctx_t *ctx)
{
    const server_config_t *cfg = ctx->cfg;
    pai_err_t rc = history_new(ctx->engine, cfg->metrics_history_interval_s,
                               (size_t)cfg->metrics_history_points, &ctx->history);
    if (rc != PAI_OK) {
        log_error("history: cannot start the sampler thread");
        return rc;
    }
    if (ctx->metrics)
        rc = metrics_register(ctx->metrics, "history", history_metrics, ctx->history);
    if (rc == PAI_OK)
        rc = server_on_quiesce(ctx, history_quiesce_hook);
    return rc;
}

static void history_fini(server_ctx_t *ctx)
{
    history_free(ctx->history);
    ctx->history = NULL;
}

const server_module_t server_module_history = {"history", history_init, history_fini,
                                               history_routes};
