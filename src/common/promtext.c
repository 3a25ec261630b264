/*
 * promtext.c - see promtext.h.
 */
#include "common/promtext.h"

#include <stdio.h>

void prom_family(buf_t *out, const char *name, const char *type, const char *help)
{
    if (buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) != PAI_OK)
        return; /* over the cap: the scrape is truncated, never overrun */
}

void prom_sample(buf_t *out, const char *name, const char *labels, double value)
{
    pai_err_t rc = labels && *labels ? buf_printf(out, "%s{%s} %.17g\n", name, labels, value)
                                     : buf_printf(out, "%s %.17g\n", name, value);
    (void)rc; /* over the cap: the scrape is truncated, never overrun */
}

void prom_counter(buf_t *out, const char *name, const char *help, double value)
{
    prom_family(out, name, "counter", help);
    prom_sample(out, name, NULL, value);
}

void prom_gauge(buf_t *out, const char *name, const char *help, double value)
{
    prom_family(out, name, "gauge", help);
    prom_sample(out, name, NULL, value);
}

void prom_histogram(buf_t *out, const char *name, const char *labels, const double *bounds,
                    size_t n, const unsigned long long *cum, double sum, unsigned long long count)
{
    char series[256], lab[800];
    const char *sep = labels && *labels ? "," : "";
    snprintf(series, sizeof(series), "%s_bucket", name);
    for (size_t b = 0; b <= n; b++) {
        char le[32] = "+Inf";
        if (b < n)
            snprintf(le, sizeof(le), "%g", bounds[b]);
        snprintf(lab, sizeof(lab), "%s%sle=\"%s\"", labels ? labels : "", sep, le);
        prom_sample(out, series, lab, (double)cum[b]);
    }
    snprintf(series, sizeof(series), "%s_sum", name);
    prom_sample(out, series, labels, sum);
    snprintf(series, sizeof(series), "%s_count", name);
    prom_sample(out, series, labels, (double)count);
}

void prom_escape(char *dst, size_t n, const char *value)
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
