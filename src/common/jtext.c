/*
 * jtext.c - compact JSON text without a tree (see jtext.h).
 */
#include "common/jtext.h"

#include <jansson.h>
#include <pthread.h>
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

/* ----------------------------------------------------- encoded strings */

/* The encodings jansson wrote for short strings, kept per thread: the same
 * node names, addresses, cells and messages come back in every record and
 * answer, and each costs jansson a json_string and a dump (four
 * allocations) otherwise.  Direct-mapped by a hash of the bytes; a slot
 * holds the exact bytes and jansson's exact text for them, so a hit writes
 * what jansson would.  Freed at the thread's exit (the key's destructor). */
#define CACHE_SLOTS 64
#define CACHE_STR   48 /* longer strings are not kept */
#define CACHE_ENC   96 /* nor encodings longer than this */

typedef struct {
    uint8_t n, en; /* en 0: empty */
    char s[CACHE_STR];
    char enc[CACHE_ENC];
} cached_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_init(void)
{
    if (pthread_key_create(&cache_key, free) != 0)
        abort();
}

/* This thread's slots (the key frees them at its exit). */
static _Thread_local cached_t *tl_cache;

static cached_t *cache_slot(const char *s, size_t n)
{
    cached_t *c = tl_cache;
    if (!c) {
        pthread_once(&cache_once, cache_key_init);
        c = tl_cache = xcalloc(CACHE_SLOTS, sizeof(*c));
        if (pthread_setspecific(cache_key, c) != 0)
            abort();
    }
    /* a few bytes are enough to spread the slots: a hit compares them all */
    uint32_t h = (uint32_t)n * 2654435761u;
    if (n)
        h ^= (unsigned char)s[0] * 31u ^ (unsigned char)s[n - 1] * 131u ^
             (unsigned char)s[n / 2] * 7919u ^ (unsigned char)s[(n - 1) / 3] * 65537u;
    return &c[(h ^ h >> 15) % CACHE_SLOTS];
}

static int append_cb(const char *buf, size_t n, void *ud)
{
    jtext_raw(ud, buf, n);
    return 0;
}

/* The slot of s (n bytes) when it holds s's text, else NULL; *slot: where
 * to keep it (NULL for a string too long to keep). */
static const cached_t *cache_find(const char *s, size_t n, cached_t **slot)
{
    *slot = n < CACHE_STR ? cache_slot(s, n) : NULL;
    cached_t *c = *slot;
    return c && c->en && c->n == n && memcmp(c->s, s, n) == 0 ? c : NULL;
}

/* Append jansson's text of string value v (s, n its bytes; slot from
 * cache_find); false when jansson cannot write it. */
static bool dump_string_to(jtext_t *t, const json_t *v, const char *s, size_t n, cached_t *slot)
{
    size_t at = t->len;
    if (json_dump_callback(v, append_cb, t, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        return false;
    size_t en = t->len - at;
    if (slot && en < CACHE_ENC) {
        slot->n = (uint8_t)n;
        slot->en = (uint8_t)en;
        memcpy(slot->s, s, n);
        memcpy(slot->enc, t->data + at, en);
    }
    return true;
}

/* The text jansson writes for s (n bytes) when each byte is printable
 * ASCII (0x20-0x7e) or one that jansson writes as a backslash and a letter
 * here (\" \\ \n \r \t): written without a json_string, its UTF-8 check and
 * a dump through callbacks (a job's YAML, commands, names, addresses);
 * kept in slot as jansson's text is (dump_string_to);
 * false, with nothing written, for any other byte (other control bytes,
 * which jansson writes as \uXXXX or \b \f, and bytes above 0x7e), which are
 * left to jansson.  test_jtext compares every byte and random strings with
 * jansson's text. */
static bool plain_strn(jtext_t *t, const char *s, size_t n, cached_t *slot)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7f) {
            extra += c == '"' || c == '\\';
        } else if (c == '\n' || c == '\r' || c == '\t') {
            extra++;
        } else {
            return false;
        }
    }
    char *o = room(t, n + extra + 2), *start = o;
    *o++ = '"';
    if (!extra) {
        memcpy(o, s, n);
        o += n;
    } else {
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            switch (c) {
            case '"':
            case '\\':
                *o++ = '\\';
                *o++ = c;
                break;
            case '\n':
                *o++ = '\\';
                *o++ = 'n';
                break;
            case '\r':
                *o++ = '\\';
                *o++ = 'r';
                break;
            case '\t':
                *o++ = '\\';
                *o++ = 't';
                break;
            default:
                *o++ = c;
            }
        }
    }
    *o++ = '"';
    size_t en = (size_t)(o - start);
    t->len += en;
    t->data[t->len] = '\0';
    if (slot && en < CACHE_ENC) { /* kept as dump_string_to keeps jansson's */
        slot->n = (uint8_t)n;
        slot->en = (uint8_t)en;
        memcpy(slot->s, s, n);
        memcpy(slot->enc, start, en);
    }
    return true;
}

static bool dump_string(jtext_t *t, const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    cached_t *slot;
    const cached_t *hit = cache_find(s, n, &slot);
    if (hit) {
        jtext_raw(t, hit->enc, hit->en);
        return true;
    }
    if (plain_strn(t, s, n, slot))
        return true;
    return dump_string_to(t, v, s, n, slot);
}

char *jtext_ascii_copy(const char *s, size_t n)
{
    char *a = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        a[i] = (unsigned char)s[i] > 0x7f ? '?' : s[i];
    a[n] = '\0';
    return a;
}

void jtext_strn(jtext_t *t, const char *s, size_t n)
{
    cached_t *slot;
    const cached_t *hit = cache_find(s, n, &slot);
    if (hit) { /* no json_string */
        jtext_raw(t, hit->enc, hit->en);
        return;
    }
    if (plain_strn(t, s, n, slot))
        return;
    json_t *j = json_stringn(s, n);
    char *ascii = NULL;
    if (!j) {
        /* Not valid UTF-8 (a value cut inside a character, say): written
         * with every byte above 0x7f as '?' rather than stopping the
         * process; jansson still escapes the rest.  Not kept: the text is
         * not jansson's for these bytes. */
        ascii = jtext_ascii_copy(s, n);
        j = json_stringn(ascii, n);
        slot = NULL;
    }
    if (!j || !dump_string_to(t, j, s, n, slot)) {
        fprintf(stderr, "pai: jtext: a string cannot be encoded\n");
        abort();
    }
    json_decref(j);
    free(ascii);
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

/* -------------------------------------------------------- any value */

static bool dump_by_jansson(jtext_t *t, const json_t *v)
{
    return json_dump_callback(v, append_cb, t, JSON_COMPACT | JSON_ENCODE_ANY) == 0;
}

/* Would jansson write the key as its bytes between quotes?  Printable
 * ASCII but '"' and '\\'.  Anything else is left to jansson. */
static bool key_plain(const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static bool dump_key(jtext_t *t, const char *k, size_t n)
{
    if (key_plain(k, n)) {
        char *p = room(t, n + 3);
        p[0] = '"';
        memcpy(p + 1, k, n);
        p[n + 1] = '"';
        p[n + 2] = ':';
        t->len += n + 3;
        t->data[t->len] = '\0';
        return true;
    }
    json_t *s = json_stringn_nocheck(k, n); /* jansson checks it as it writes */
    bool ok = s && dump_by_jansson(t, s);
    json_decref(s);
    JTEXT_LIT(t, ":");
    return ok;
}

bool jtext_key(jtext_t *t, const char *k, size_t n)
{
    return dump_key(t, k, n);
}

static bool dump_value(jtext_t *t, const json_t *v, int depth);

static bool dump_object(jtext_t *t, const json_t *v, int depth)
{
    JTEXT_LIT(t, "{");
    bool first = true;
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
        if (!first)
            JTEXT_LIT(t, ",");
        first = false;
        if (!dump_key(t, json_object_iter_key(it), json_object_iter_key_len(it)) ||
            !dump_value(t, json_object_iter_value(it), depth + 1))
            return false;
    }
    JTEXT_LIT(t, "}");
    return true;
}

static bool dump_array(jtext_t *t, const json_t *v, int depth)
{
    JTEXT_LIT(t, "[");
    for (size_t i = 0, n = json_array_size(v); i < n; i++) {
        if (i)
            JTEXT_LIT(t, ",");
        if (!dump_value(t, json_array_get(v, i), depth + 1))
            return false;
    }
    JTEXT_LIT(t, "]");
    return true;
}

static bool dump_value(jtext_t *t, const json_t *v, int depth)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return depth < JTEXT_DEPTH_MAX ? dump_object(t, v, depth) : dump_by_jansson(t, v);
    case JSON_ARRAY:
        return depth < JTEXT_DEPTH_MAX ? dump_array(t, v, depth) : dump_by_jansson(t, v);
    case JSON_INTEGER:
        jtext_int(t, json_integer_value(v));
        return true;
    case JSON_TRUE:
        JTEXT_LIT(t, "true");
        return true;
    case JSON_FALSE:
        JTEXT_LIT(t, "false");
        return true;
    case JSON_NULL:
        JTEXT_LIT(t, "null");
        return true;
    case JSON_STRING: /* jansson's escaping (or its text kept) */
        return dump_string(t, v);
    default: /* reals: jansson's number format */
        return dump_by_jansson(t, v);
    }
}

bool jtext_json(jtext_t *t, const json_t *v)
{
    return dump_value(t, v, 0);
}

char *jtext_dumps(const json_t *v)
{
    return json_is_object(v) || json_is_array(v) ? jtext_dumps_any(v) : NULL;
}

char *jtext_dumps_any(const json_t *v)
{
    if (!v)
        return NULL;
    jtext_t t;
    jtext_init(&t, 512);
    if (!jtext_json(&t, v)) {
        jtext_free(&t);
        return NULL;
    }
    return jtext_take(&t);
}
