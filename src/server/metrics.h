/*
 * metrics.h - the collector registry behind GET /metrics (Prometheus text).
 *
 * A module registers a collector at init; on every scrape each collector
 * appends its families to the output in registration order.  Collectors run
 * on the scraping connection's thread and must be thread-safe.  They write
 * the text format with the helpers of common/promtext.h.
 */
#ifndef PAI_SERVER_METRICS_H
#define PAI_SERVER_METRICS_H

#include "common/buf.h"
#include "common/err.h"

typedef struct metrics metrics_t;
typedef void (*metrics_collect_fn)(void *ud, buf_t *out);

metrics_t *metrics_new(void);
void metrics_free(metrics_t *m);

/* Add a collector (name is for logs).  ud is not owned. */
PAI_MUST_CHECK pai_err_t metrics_register(metrics_t *m, const char *name, metrics_collect_fn fn,
                                          void *ud);
/* Run every collector into out. */
void metrics_collect(metrics_t *m, buf_t *out);

#endif
