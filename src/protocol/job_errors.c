/*
 * job_errors.c - the problems found in a job file, and their three forms:
 * compiler-style lines, a JSON array, and one message for the REST API.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "protocol/job_internal.h"

void job_errors_init(job_errors_t *errs)
{
    memset(errs, 0, sizeof(*errs));
}

void job_errors_free(job_errors_t *errs)
{
    if (!errs)
        return;
    for (size_t i = 0; i < errs->n; i++) {
        free(errs->items[i].path);
        free(errs->items[i].reason);
    }
    free(errs->items);
    memset(errs, 0, sizeof(*errs));
}

static void append_line(buf_t *b, const char *file, const job_error_t *e)
{
    pai_err_t rc = buf_puts(b, file);
    if (rc == PAI_OK && e->line > 0)
        rc = buf_printf(b, ":%d:%d", e->line, e->col);
    if (rc == PAI_OK)
        rc = buf_puts(b, ": ");
    if (rc == PAI_OK && e->path && e->path[0])
        rc = buf_printf(b, "%s: ", e->path);
    if (rc == PAI_OK)
        rc = buf_printf(b, "%s\n", e->reason);
    (void)rc; /* a full buffer just truncates the listing */
}

char *job_errors_format(const job_errors_t *errs, const char *filename)
{
    buf_t b;
    buf_init(&b, PAI_MAX_JOB_YAML);
    for (size_t i = 0; errs && i < errs->n; i++)
        append_line(&b, filename ? filename : "<input>", &errs->items[i]);
    if (b.len == 0)
        return xstrdup("");
    return buf_take(&b);
}

json_t *job_errors_to_json(const job_errors_t *errs)
{
    json_t *a = json_array();
    for (size_t i = 0; a && errs && i < errs->n; i++) {
        const job_error_t *e = &errs->items[i];
        json_array_append_new(a, xjson_pack("{s:i, s:i, s:s, s:s}", "line", e->line, "column",
                                            e->col, "field", e->path ? e->path : "", "message",
                                            e->reason ? e->reason : ""));
    }
    return a;
}

char *job_errors_message(const job_errors_t *errs)
{
    buf_t b;
    size_t n = errs ? errs->n : 0;
    buf_init(&b, 64u * 1024);
    pai_err_t rc = buf_printf(&b, "job protocol is invalid: %zu problem%s: ", n, n == 1 ? "" : "s");
    for (size_t i = 0; rc == PAI_OK && i < n; i++) {
        const job_error_t *e = &errs->items[i];
        if (i)
            rc = buf_puts(&b, "; ");
        if (rc == PAI_OK && e->path && e->path[0])
            rc = buf_puts(&b, e->path);
        else if (rc == PAI_OK)
            rc = buf_puts(&b, "document");
        if (rc == PAI_OK && e->line > 0)
            rc = buf_printf(&b, " (line %d, column %d)", e->line, e->col);
        if (rc == PAI_OK)
            rc = buf_printf(&b, ": %s", e->reason);
    }
    return buf_take(&b);
}

void job_errors_add(job_errors_t *errs, int line, int col, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    if (errs->n >= JOB_MAX_ERRORS)
        return;
    VEC_XRESERVE(errs->items, errs->cap, errs->n + 1);
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    job_error_t *e = &errs->items[errs->n++];
    e->line = line;
    e->col = col;
    e->path = xstrdup(path ? path : "");
    e->reason = xstrdup(reason);
}
