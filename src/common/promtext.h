/*
 * promtext.h - writing the Prometheus text exposition format (version
 * 0.0.4) into a bounded buffer.  Any module that exports metrics uses these
 * so the format stays right; the collector registry behind GET /metrics is
 * the server's (server/metrics.h).  Over the buffer's cap the output is
 * truncated, never overrun.
 *
 *   prom_family(out, "pai_jobs", "gauge", "Jobs by state and VC.");
 *   prom_sample(out, "pai_jobs", "state=\"RUNNING\",vc=\"default\"", 3);
 *   prom_counter(out, "pai_jobs_submitted_total", "Jobs accepted.", 12);
 */
#ifndef PAI_COMMON_PROMTEXT_H
#define PAI_COMMON_PROMTEXT_H

#include <stddef.h>

#include "common/buf.h"

/* "# HELP name help\n# TYPE name type\n" */
void prom_family(buf_t *out, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; labels may be NULL or "" (already escaped, see below). */
void prom_sample(buf_t *out, const char *name, const char *labels, double value);
/* A family of one sample without labels: prom_family, then prom_sample. */
void prom_counter(buf_t *out, const char *name, const char *help, double value);
void prom_gauge(buf_t *out, const char *name, const char *help, double value);
/* A histogram's samples (its family line is the caller's): name_bucket
 * for each of the n upper bounds and +Inf with cum[0..n] (cumulative
 * counts, n + 1 of them), then name_sum and name_count; labels (may be NULL
 * or "", already escaped) go before each bucket's le. */
void prom_histogram(buf_t *out, const char *name, const char *labels, const double *bounds,
                    size_t n, const unsigned long long *cum, double sum, unsigned long long count);
/* Escape a label value (\\, \", \n) into dst of size n. */
void prom_escape(char *dst, size_t n, const char *value);

#endif
