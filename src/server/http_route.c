/*
 * http_route.c - the HTTP layer's route table and its counters (see
 * http_int.h).  Routes are compiled once at start into segment arrays;
 * matching is a scan of the table without allocation.  Each route counts
 * its answers by status and a latency histogram in atomics, read by
 * /metrics (pai_api_requests_total, pai_api_request_duration_seconds).
 */
#include <stdlib.h>
#include <string.h>

#include "common/promtext.h"
#include "common/util.h"
#include "server/http_int.h"
#include "server/server.h"

/* Status codes counted individually; others go to the last slot. */
static const int counted_status[] = {200, 201, 202, 204, 302, 400, 401, 403, 404,
                                     405, 409, 413, 429, 500, 501, 503, 0};
_Static_assert(ARRAY_LEN(counted_status) == HTTP_NSTATUS, "HTTP_NSTATUS");
#define NSTATUS HTTP_NSTATUS

/* Latency histogram buckets, seconds. */
static const double lat_bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
_Static_assert(ARRAY_LEN(lat_bounds) == HTTP_NBUCKETS, "HTTP_NBUCKETS");
#define NBUCKETS HTTP_NBUCKETS

/* Split path into segments (in place); offsets into the original path too. */
size_t http_split_path(char *p, char **segs, size_t *offs)
{
    size_t n = 0;
    char *base = p;
    while (*p && n < HTTP_MAX_SEGS) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        segs[n] = p;
        offs[n++] = (size_t)(p - base);
        while (*p && *p != '/')
            p++;
        if (*p)
            *p++ = '\0';
    }
    return *p ? HTTP_MAX_SEGS + 1 : n;
}

static void compile_route(route_ent_t *e, const http_route_t *r)
{
    char *copy = xstrdup(r->pattern);
    char *segs[HTTP_MAX_SEGS];
    size_t offs[HTTP_MAX_SEGS];
    size_t n = http_split_path(copy, segs, offs);
    e->r = r;
    if (n > HTTP_MAX_SEGS)
        n = HTTP_MAX_SEGS;
    for (size_t i = 0; i < n; i++)
        e->segs[i] = xstrdup(segs[i]);
    e->nsegs = n;
    if (n > 0 && strcmp(e->segs[n - 1], "*") == 0) {
        e->wildcard = true;
        e->nsegs = n - 1;
    }
    free(copy);
}

/* Does e match the split path?  Fills req's params on success. */
bool http_route_match(const route_ent_t *e, char **segs, const size_t *offs, size_t n,
                      const char *path, http_req_t *req)
{
    if (e->wildcard ? n < e->nsegs : n != e->nsegs)
        return false;
    size_t np = 0;
    for (size_t i = 0; i < e->nsegs; i++) {
        const char *ps = e->segs[i];
        if (ps[0] == '{') {
            if (np < HTTP_MAX_PARAMS) {
                req->param_names[np] = ps; /* "{name}": http_param compares inside braces */
                req->param_values[np++] = segs[i];
            }
        } else if (strcmp(ps, segs[i]) != 0) {
            return false;
        }
    }
    if (e->wildcard && np < HTTP_MAX_PARAMS) {
        req->param_names[np] = "{*}";
        req->param_values[np++] = n > e->nsegs ? path + offs[e->nsegs] : "";
    }
    req->nparams = np;
    return true;
}

pai_err_t http_routes_build(http_server_t *s)
{
    size_t n = 0;
    for (size_t m = 0; server_modules[m]; m++)
        for (const http_route_t *r = server_modules[m]->routes; r && r->method; r++)
            n++;
    s->routes = xcalloc(n ? n : 1, sizeof(*s->routes));
    for (size_t m = 0; server_modules[m]; m++)
        for (const http_route_t *r = server_modules[m]->routes; r && r->method; r++)
            compile_route(&s->routes[s->nroutes++], r);
    for (const http_batch_route_t *b = server_batch_routes; b->method; b++)
        for (size_t i = 0; i < s->nroutes; i++)
            if (strcmp(s->routes[i].r->method, b->method) == 0 &&
                strcmp(s->routes[i].r->pattern, b->pattern) == 0)
                s->routes[i].batch = b->batch;
    return PAI_OK;
}

void http_routes_free(http_server_t *s)
{
    for (size_t i = 0; i < s->nroutes; i++)
        for (size_t k = 0; k < HTTP_MAX_SEGS; k++)
            free(s->routes[i].segs[k]);
    free(s->routes);
}

void http_stats_record(route_stats_t *st, int status, int64_t us)
{
    size_t si = NSTATUS - 1;
    for (size_t i = 0; i + 1 < NSTATUS; i++)
        if (counted_status[i] == status) {
            si = i;
            break;
        }
    atomic_fetch_add_explicit(&st->by_status[si], 1, memory_order_relaxed);
    double sec = (double)us / 1e6;
    size_t b = 0;
    while (b < NBUCKETS && sec > lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&st->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_us, (unsigned long long)us, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
}

static void collect_route(buf_t *out, const char *method, const char *pattern, route_stats_t *st)
{
    char pat[512], lab[640];
    prom_escape(pat, sizeof(pat), pattern);
    for (size_t i = 0; i < NSTATUS; i++) {
        unsigned long long v = atomic_load(&st->by_status[i]);
        if (!v)
            continue;
        char code[8] = "other";
        if (counted_status[i])
            snprintf(code, sizeof(code), "%d", counted_status[i]);
        snprintf(lab, sizeof(lab), "method=\"%s\",route=\"%s\",status=\"%s\"", method, pat, code);
        prom_sample(out, "pai_api_requests_total", lab, (double)v);
    }
}

static void collect_hist(buf_t *out, const char *method, const char *pattern, route_stats_t *st)
{
    unsigned long long count = atomic_load(&st->count), cum[NBUCKETS + 1];
    if (!count)
        return;
    char pat[512], lab[700];
    prom_escape(pat, sizeof(pat), pattern);
    for (size_t b = 0; b <= NBUCKETS; b++)
        cum[b] = (b ? cum[b - 1] : 0) + atomic_load(&st->bucket[b]);
    snprintf(lab, sizeof(lab), "method=\"%s\",route=\"%s\"", method, pat);
    prom_histogram(out, "pai_api_request_duration_seconds", lab, lat_bounds, NBUCKETS, cum,
                   (double)atomic_load(&st->sum_us) / 1e6, count);
}

void http_routes_collect(const http_server_t *s, buf_t *out)
{
    route_stats_t *unmatched = (route_stats_t *)&s->unmatched; /* atomics: read only */
    prom_family(out, "pai_api_requests_total", "counter",
                "REST API requests by method, route pattern and status.");
    for (size_t i = 0; i < s->nroutes; i++)
        collect_route(out, s->routes[i].r->method, s->routes[i].r->pattern, &s->routes[i].stats);
    collect_route(out, "any", "unmatched", unmatched);
    prom_family(out, "pai_api_request_duration_seconds", "histogram",
                "REST API request latency by method and route pattern.");
    for (size_t i = 0; i < s->nroutes; i++)
        collect_hist(out, s->routes[i].r->method, s->routes[i].r->pattern, &s->routes[i].stats);
    collect_hist(out, "any", "unmatched", unmatched);
}
