/*
 * yamljson.c - see yamljson.h.
 */
#include "common/yamljson.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- scalar typing */

static bool is_one_of(const char *s, const char *const *v)
{
    for (; *v; v++)
        if (strcmp(s, *v) == 0)
            return true;
    return false;
}

static bool all_digits(const char *s, int base)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        int ok = base == 16 ? isxdigit((unsigned char)*s) : (*s >= '0' && *s < '0' + base);
        if (!ok)
            return false;
    }
    return true;
}

static bool looks_int(const char *s)
{
    if (s[0] == '0' && s[1] == 'x')
        return all_digits(s + 2, 16);
    if (s[0] == '0' && s[1] == 'o')
        return all_digits(s + 2, 8);
    if (*s == '-' || *s == '+')
        s++;
    return all_digits(s, 10);
}

static bool looks_float(const char *s)
{
    static const char *const special[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                          "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                          ".NaN",  ".NAN",  NULL};
    if (is_one_of(s, special))
        return true;
    if (*s == '-' || *s == '+')
        s++;
    size_t digits = 0;
    while (isdigit((unsigned char)*s))
        s++, digits++;
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s))
            s++, digits++;
    }
    if (!digits)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* Can a plain scalar starting with c be anything but a string?  Nulls
 * start with '\0', '~', 'n' or 'N'; booleans with 't', 'T', 'f' or 'F';
 * numbers with a digit, '+', '-' or '.'.  A job document's plain scalars
 * are mostly keys and names: they are strings without a comparison. */
static bool may_be_typed(char c)
{
    switch (c) {
    case '\0':
    case '~':
    case 'n':
    case 'N':
    case 't':
    case 'T':
    case 'f':
    case 'F':
    case '+':
    case '-':
    case '.':
        return true;
    default:
        return c >= '0' && c <= '9';
    }
}

yjson_type_t yjson_plain_type(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
    if (!may_be_typed(s[0]))
        return YJ_STRING;
    if (is_one_of(s, nulls))
        return YJ_NULL;
    if (is_one_of(s, bools))
        return YJ_BOOL;
    if (looks_int(s))
        return YJ_INT;
    if (looks_float(s))
        return YJ_FLOAT;
    return YJ_STRING;
}

yjson_type_t yjson_type(const ynode_t *n)
{
    if (!n)
        return YJ_NULL;
    if (n->kind == YNODE_MAP)
        return YJ_MAP;
    if (n->kind == YNODE_SEQ)
        return YJ_SEQ;
    if (!n->plain)
        return YJ_STRING;
    return yjson_plain_type(n->str);
}

bool yjson_int(const ynode_t *n, int64_t *out)
{
    const char *s = n->str;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        s += 2;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, base);
    if (errno || *end || end == s)
        return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------------ JSON */

static json_t *scalar_to_json(const ynode_t *n)
{
    int64_t i;
    switch (yjson_type(n)) {
    case YJ_NULL:
        return json_null();
    case YJ_BOOL:
        return json_boolean(n->str[0] == 't' || n->str[0] == 'T');
    case YJ_INT:
        return yjson_int(n, &i) ? json_integer(i) : json_string(n->str);
    case YJ_FLOAT: {
        /* .inf and .nan do not parse here; 1e999 parses to inf */
        char *end;
        double d = strtod(n->str, &end);
        return *end == '\0' && isfinite(d) ? json_real(d) : json_string(n->str);
    }
    default:
        return json_stringn(n->str, n->len);
    }
}

json_t *yjson_from_node(const ynode_t *n)
{
    if (!n)
        return json_null();
    if (n->kind == YNODE_SCALAR)
        return scalar_to_json(n);
    json_t *j = n->kind == YNODE_MAP ? json_object() : json_array();
    for (size_t i = 0; j && i < n->n; i++) {
        if (n->kind == YNODE_SEQ) {
            json_array_append_new(j, yjson_from_node(n->items[i]));
        } else if (n->pairs[i].key->kind == YNODE_SCALAR) {
            json_object_set_new(j, n->pairs[i].key->str, yjson_from_node(n->pairs[i].val));
        }
    }
    return j;
}

json_t *yjson_from_text(const char *yaml, size_t len)
{
    ydoc_t *doc = NULL;
    yerr_t yerr;
    if (ydoc_parse(yaml, len, &doc, &yerr) != PAI_OK)
        return NULL;
    json_t *o = yjson_from_node(ydoc_root(doc));
    ydoc_free(doc);
    return o;
}
