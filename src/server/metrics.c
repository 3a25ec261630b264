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
