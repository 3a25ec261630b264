/*
 * metrics.c - the collector registry: a fixed-size table filled at start-up,
 * read on every scrape.
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/util.h"

#define METRICS_MAX_COLLECTORS 64

typedef struct {
    const char *name;
    metrics_collect_fn fn;
    void *ud;
} collector_t;

struct metrics {
    pthread_mutex_t lock;
    collector_t c[METRICS_MAX_COLLECTORS];
    size_t n;
};

metrics_t *metrics_new(void)
{
    metrics_t *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

pai_err_t metrics_register(metrics_t *m, const char *name, metrics_collect_fn fn, void *ud)
{
    pai_err_t rc = PAI_OK;
    pthread_mutex_lock(&m->lock);
    if (m->n >= METRICS_MAX_COLLECTORS)
        rc = PAI_E_TOO_LARGE;
    else
        m->c[m->n++] = (collector_t){name, fn, ud};
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void metrics_collect(metrics_t *m, buf_t *out)
{
    collector_t snap[METRICS_MAX_COLLECTORS];
    pthread_mutex_lock(&m->lock);
    size_t n = m->n;
    for (size_t i = 0; i < n; i++)
        snap[i] = m->c[i];
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < n; i++)
        snap[i].fn(snap[i].ud, out);
}

void metrics_family(buf_t *out, const char *name, const char *type, const char *help)
{
    if (buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) != PAI_OK)
        return; /* over the cap: the scrape is truncated, never overrun */
}

void metrics_sample(buf_t *out, const char *name, const char *labels, double value)
{
    pai_err_t rc = labels && *labels ? buf_printf(out, "%s{%s} %.17g\n", name, labels, value)
                                     : buf_printf(out, "%s %.17g\n", name, value);
    (void)rc; /* over the cap: the scrape is truncated, never overrun */
}

void metrics_escape(char *dst, size_t n, const char *value)
{
    size_t k = 0;
    for (const char *p = value; *p && k + 2 < n; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n') {
            dst[k++] = '\\';
            dst[k++] = *p == '\n' ? 'n' : *p;
        } else {
            dst[k++] = *p;
        }
    }
    dst[k] = '\0';
}
