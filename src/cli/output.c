/*
 * output.c - tables, JSON and progress lines for the CLI.
 *
 * Tables are shell-friendly: one header line in capitals, one line per
 * row, columns separated by at least two spaces, no borders, empty cells
 * printed as "-" so `awk '{print $2}'` always sees the same column.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "common/vec.h"

#define TABLE_MAX_COLS 16

struct cli_table {
    int ncols;
    char *head[TABLE_MAX_COLS];
    char **cells; /* nrows * ncols */
    size_t nrows, cap;
};

cli_table_t *cli_table_new(const char *header)
{
    cli_table_t *t = xcalloc(1, sizeof(*t));
    const char *s = header;
    while (t->ncols < TABLE_MAX_COLS) {
        const char *bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        t->head[t->ncols++] = xstrndup(s, n);
        if (!bar)
            break;
        s = bar + 1;
    }
    return t;
}

void cli_table_row(cli_table_t *t, const char *const *cells)
{
    /* one element of the growth is a row of ncols cells */
    vec_xreserve(&t->cells, &t->cap, t->nrows + 1, (size_t)t->ncols * sizeof(char *));
    for (int i = 0; i < t->ncols; i++) {
        const char *v = cells[i] && *cells[i] ? cells[i] : "-";
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = xstrdup(v);
    }
    t->nrows++;
}

static void print_line(cli_table_t *t, char **cells, const size_t *w, FILE *out)
{
    for (int i = 0; i < t->ncols; i++) {
        bool last = i == t->ncols - 1;
        /* Newlines or tabs inside a cell would break the one-row-per-line rule. */
        for (const char *p = cells[i]; *p; p++)
            fputc(*p == '\n' || *p == '\t' ? ' ' : *p, out);
        if (!last)
            fprintf(out, "%*s", (int)(w[i] - strlen(cells[i]) + 2), "");
    }
    fputc('\n', out);
}

void cli_table_print(cli_table_t *t, FILE *out)
{
    size_t w[TABLE_MAX_COLS];
    for (int i = 0; i < t->ncols; i++) {
        w[i] = strlen(t->head[i]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)i]);
            if (n > w[i])
                w[i] = n;
        }
    }
    print_line(t, t->head, w, out);
    for (size_t r = 0; r < t->nrows; r++)
        print_line(t, t->cells + r * (size_t)t->ncols, w, out);
}

void cli_table_free(cli_table_t *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->ncols; i++)
        free(t->head[i]);
    for (size_t k = 0; k < t->nrows * (size_t)t->ncols; k++)
        free(t->cells[k]);
    free(t->cells);
    free(t);
}

void cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s)
        printf("%s\n", s);
    free(s);
}

const char *cli_jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

void cli_jfmt(const json_t *o, const char *key, char *out, size_t n)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        snprintf(out, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(out, n, "-");
}

void cli_fmt_time(long long ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, n, "-");
}

void cli_progress_init(cli_progress_t *p)
{
    memset(p, 0, sizeof(*p));
    p->tty = isatty(STDERR_FILENO) == 1;
}

void cli_progress_update(cli_progress_t *p, const char *text)
{
    static const char spin[] = "|/-\\";
    if (p->tty) {
        fprintf(stderr, "\r%c %s\033[K", spin[p->tick++ % 4], text);
        fflush(stderr);
    } else if (strcmp(p->last, text) != 0) {
        fprintf(stderr, "%s\n", text);
    }
    str_copy(p->last, text, sizeof(p->last));
}

void cli_progress_done(cli_progress_t *p)
{
    if (p->tty && p->last[0])
        fprintf(stderr, "\r%s\033[K\n", p->last);
}
