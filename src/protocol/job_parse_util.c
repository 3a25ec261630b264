/*
 * job_parse_util.c - the field readers behind job_parse.c: error reporting
 * with the current field path, typed reads of map fields (each problem is
 * recorded and the walk goes on), and unknown/duplicate key checks.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "protocol/job_parse_int.h"

/* ------------------------------------------------------------ reporting */

static void jp_add_error_v(pctx_t *c, const ynode_t *at, const char *field, const char *fmt,
                           va_list ap)
{
    job_errors_t *e = c->errs;
    if (e->n >= JOB_MAX_ERRORS + 1)
        return;
    VEC_XRESERVE(e->items, e->cap, e->n + 1);
    job_error_t *it = &e->items[e->n++];
    it->line = at ? at->line : 0;
    it->col = at ? at->col : 0;
    if (e->n == JOB_MAX_ERRORS + 1) {
        it->path = xstrdup("");
        it->reason = str_printf("too many problems; only the first %d are shown", JOB_MAX_ERRORS);
        return;
    }
    const char *sep = c->plen && field && field[0] != '[' ? "." : "";
    it->path = str_printf("%s%s%s", c->path, field ? sep : "", field ? field : "");
    char reason[512];
    vsnprintf(reason, sizeof(reason), fmt, ap);
    it->reason = xstrdup(reason);
    if (!it->path || !it->reason)
        abort();
}

/* Record a problem at node `at` (its position), for the current path plus
 * `field` (NULL: the current path itself). */
void jp_add_error(pctx_t *c, const ynode_t *at, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jp_add_error_v(c, at, field, fmt, ap);
    va_end(ap);
}

/* Append n bytes of s to the path, cut at its size as snprintf cut it. */
static void path_put(pctx_t *c, const char *s, size_t n)
{
    size_t room = sizeof(c->path) - 1 - c->plen;
    if (n > room)
        n = room;
    memcpy(c->path + c->plen, s, n);
    c->plen += n;
    c->path[c->plen] = '\0';
}

/* "[i]" into buf (32 bytes); returns its length. */
static size_t index_seg(char buf[32], size_t i)
{
    char digits[24], *p = digits + sizeof digits;
    do {
        *--p = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    size_t n = (size_t)(digits + sizeof digits - p);
    buf[0] = '[';
    memcpy(buf + 1, p, n);
    buf[n + 1] = ']';
    buf[n + 2] = '\0';
    return n + 2;
}

/* Path segments (kept for the errors' field paths; no printf, as a walk
 * pushes one per field read): push returns the old length for pop. */
size_t jp_path_push(pctx_t *c, const char *seg)
{
    size_t old = c->plen;
    if (c->plen)
        path_put(c, ".", 1);
    path_put(c, seg, strlen(seg));
    return old;
}

size_t jp_path_push_index(pctx_t *c, size_t i)
{
    size_t old = c->plen;
    char seg[32];
    path_put(c, seg, index_seg(seg, i));
    return old;
}

void jp_path_pop(pctx_t *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* ---------------------------------------------------------------- types */

const char *const jt_names[] = {"null", "boolean", "integer", "number", "string", "map", "list"};
static const char *const jt_expect[] = {"null",     "a boolean", "an integer", "a number",
                                        "a string", "a map",     "a list"};

/* True (after reporting) unless v has type t. */
bool jp_type_bad(pctx_t *c, const ynode_t *v, const char *field, yjson_type_t t)
{
    yjson_type_t got = yjson_type(v);
    if (got == t)
        return false;
    jp_add_error(c, v, field, "expected %s, got %s", jt_expect[t], jt_names[got]);
    return true;
}

/* The value of key in map, or NULL when absent or null; reports a missing
 * required field at the map's position. */
const ynode_t *jp_field(pctx_t *c, const ynode_t *map, const char *key, bool required)
{
    const ynode_t *v = ynode_get(map, key);
    if (v && yjson_type(v) == YJ_NULL)
        v = NULL;
    if (!v && required)
        jp_add_error(c, map, key, "required field is missing");
    return v;
}

const char *jp_get_str(pctx_t *c, const ynode_t *map, const char *key, bool required)
{
    const ynode_t *v = jp_field(c, map, key, required);
    if (!v || jp_type_bad(c, v, key, YJ_STRING))
        return NULL;
    return v->str;
}

/* A string or a number kept as written (version fields). */
const char *jp_get_str_or_num(pctx_t *c, const ynode_t *map, const char *key)
{
    const ynode_t *v = jp_field(c, map, key, false);
    if (!v)
        return NULL;
    yjson_type_t t = yjson_type(v);
    if (t == YJ_STRING || t == YJ_INT || t == YJ_FLOAT)
        return v->str;
    jp_add_error(c, v, key, "expected a string or a number, got %s", jt_names[t]);
    return NULL;
}

bool jp_int_in_range(pctx_t *c, const ynode_t *v, const char *key, int64_t min, int64_t max,
                     int64_t *out)
{
    if (jp_type_bad(c, v, key, YJ_INT))
        return false;
    if (!yjson_int(v, out)) {
        jp_add_error(c, v, key, "integer out of range");
        return false;
    }
    if (*out < min) {
        jp_add_error(c, v, key, "must be at least %lld", (long long)min);
        return false;
    }
    if (*out > max) {
        jp_add_error(c, v, key, "must be at most %lld", (long long)max);
        return false;
    }
    return true;
}

/* Sets *out when present and valid; leaves it (the default) otherwise. */
void jp_get_int(pctx_t *c, const ynode_t *map, const char *key, int64_t min, int64_t max, int *out)
{
    const ynode_t *v = jp_field(c, map, key, false);
    int64_t x;
    if (v && jp_int_in_range(c, v, key, min, max, &x))
        *out = (int)x;
}

/* -1, or 1..max (completion policy counts). */
void jp_get_count_or_off(pctx_t *c, const ynode_t *map, const char *key, int64_t max, int *out)
{
    const ynode_t *v = jp_field(c, map, key, false);
    int64_t x;
    if (!v || jp_type_bad(c, v, key, YJ_INT))
        return;
    if (!yjson_int(v, &x) || (x != -1 && x < 1) || x > max) {
        jp_add_error(c, v, key, "must be -1 or between 1 and %lld", (long long)max);
        return;
    }
    *out = (int)x;
}

void jp_get_bool(pctx_t *c, const ynode_t *map, const char *key, bool *out)
{
    const ynode_t *v = jp_field(c, map, key, false);
    if (v && !jp_type_bad(c, v, key, YJ_BOOL))
        *out = ynode_as_bool(v, out) && *out;
}

/* A list of strings; NULL (n 0) when absent or bad.  min_items >= 1 makes
 * an empty list an error with the given reason. */
const char **jp_get_str_list(pctx_t *c, const ynode_t *map, const char *key, bool required,
                             const char *empty_reason, size_t *n_out)
{
    const ynode_t *v = jp_field(c, map, key, required);
    *n_out = 0;
    if (!v || jp_type_bad(c, v, key, YJ_SEQ))
        return NULL;
    if (v->n == 0) {
        if (empty_reason)
            jp_add_error(c, v, key, "%s", empty_reason);
        return NULL;
    }
    const char **out = job_arena_alloc(c->spec, v->n * sizeof(*out));
    size_t old = jp_path_push(c, key);
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        if (yjson_type(v->items[i]) == YJ_STRING) {
            out[i] = v->items[i]->str;
            continue;
        }
        char idx[32]; /* the item's name, for its error only */
        index_seg(idx, i);
        jp_type_bad(c, v->items[i], idx, YJ_STRING);
        ok = false;
    }
    jp_path_pop(c, old);
    if (!ok)
        return NULL;
    *n_out = v->n;
    return out;
}

/* ------------------------------------------------------------- map keys */

bool jp_in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

/* Report the keys of map that repeat an earlier one (the document's
 * duplicates, found while its tree was built: ydoc_dups), with the field's
 * path. */
static void jp_check_dup_keys(pctx_t *c, const ynode_t *map)
{
    for (size_t d = 0; d < c->ndups; d++)
        for (size_t i = 0; i < map->n; i++)
            if (map->pairs[i].key == c->dups[d]) {
                jp_add_error(c, map->pairs[i].key, map->pairs[i].key->str, "duplicate key");
                break;
            }
}

/* Keys must be strings and unique; with `allowed`, also known. */
bool jp_check_map(pctx_t *c, const ynode_t *map, const char *const *allowed)
{
    size_t before = c->errs->n;
    for (size_t i = 0; i < map->n; i++) {
        const ynode_t *k = map->pairs[i].key;
        if (k->kind != YNODE_SCALAR) {
            jp_add_error(c, k, NULL, "field names must be strings, got %s",
                         jt_names[yjson_type(k)]);
            return false;
        }
        if (allowed && !jp_in_list(allowed, k->str))
            jp_add_error(c, k, k->str, "unknown field");
    }
    jp_check_dup_keys(c, map);
    return c->errs->n == before;
}
