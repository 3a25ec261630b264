/*
 * metrics.h - the collector registry behind GET /metrics (Prometheus text).
 *
 * A module registers a collector at init; on every scrape each collector
 * appends its families to the output in registration order.  Collectors run
 * on the scraping connection's thread and must be thread-safe.  Use the
 * helpers below so the text format stays right:
 *
 *   metrics_family(out, "pai_jobs", "gauge", "Jobs by state and VC.");
 *   metrics_sample(out, "pai_jobs", "state=\"RUNNING\",vc=\"default\"", 3);
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

/* "# HELP name help\n# TYPE name type\n" */
void metrics_family(buf_t *out, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; labels may be NULL or "" (already escaped, see below). */
void metrics_sample(buf_t *out, const char *name, const char *labels, double value);
/* Escape a label value (\\, \", \n) into dst of size n. */
void metrics_escape(char *dst, size_t n, const char *value);

#endif
