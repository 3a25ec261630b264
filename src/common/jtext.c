/*
 * jtext.c - compact JSON text without a tree (see jtext.h).
 */
#include "common/jtext.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void jtext_init(jtext_t *t, size_t hint)
{
    t->alloc = hint > 16 ? hint : 16;
    t->data = xmalloc(t->alloc);
    t->data[0] = '\0';
    t->len = 0;
}

void jtext_free(jtext_t *t)
{
    free(t->data);
    memset(t, 0, sizeof(*t));
}

char *jtext_take(jtext_t *t)
{
    char *s = t->data ? t->data : xstrdup("");
    memset(t, 0, sizeof(*t));
    return s;
}

/* Room for n more bytes and the terminator. */
static char *room(jtext_t *t, size_t n)
{
    if (t->len + n + 1 > t->alloc) {
        size_t a = t->alloc ? t->alloc : 16;
        while (t->len + n + 1 > a)
            a *= 2;
        t->data = xrealloc(t->data, a);
        t->alloc = a;
    }
    return t->data + t->len;
}

void jtext_raw(jtext_t *t, const char *s, size_t n)
{
    char *p = room(t, n);
    memcpy(p, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

void jtext_int(jtext_t *t, int64_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    /* the magnitude as unsigned: -INT64_MIN does not fit an int64_t */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    jtext_raw(t, p, (size_t)(e - p));
}

void jtext_bool(jtext_t *t, bool v)
{
    if (v)
        JTEXT_LIT(t, "true");
    else
        JTEXT_LIT(t, "false");
}

void jtext_int_or_null(jtext_t *t, bool has, int64_t v)
{
    if (has)
        jtext_int(t, v);
    else
        JTEXT_LIT(t, "null");
}

static int append_cb(const char *buf, size_t n, void *ud)
{
    jtext_raw(ud, buf, n);
    return 0;
}

void jtext_strn(jtext_t *t, const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (!j || json_dump_callback(j, append_cb, t, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
        fprintf(stderr, "pai: jtext: a string that is not valid UTF-8 cannot be encoded\n");
        abort();
    }
    json_decref(j);
}

void jtext_str(jtext_t *t, const char *s)
{
    if (s)
        jtext_strn(t, s, strlen(s));
    else
        JTEXT_LIT(t, "null");
}

char *jtext_str_dup(const char *s)
{
    jtext_t t;
    jtext_init(&t, s ? strlen(s) + 8 : 8);
    jtext_str(&t, s);
    return jtext_take(&t);
}
