/*
 * jtext.h - compact JSON text assembled without a tree: the hot records
 * (a job's stored record at every transition) written straight into one
 * growing buffer instead of a jansson tree built and dumped.
 *
 * The bytes are those json_dumps(tree, JSON_COMPACT) writes for the same
 * values: integers in decimal ("%lld", without printf), a string of
 * printable ASCII, newlines, carriage returns, tabs, quotes and backslashes
 * escaped here as jansson escapes them, any other string by jansson itself
 * (jtext_str dumps a json_string), keys and punctuation given by the caller
 * as literals.  Text already
 * encoded (a kept fragment) is appended as it is (jtext_raw).
 *
 * Memory: allocations abort on out-of-memory (common/util.h); the buffer
 * grows by doubling, is NUL-terminated, and jtext_take hands it over.
 */
#ifndef PAI_COMMON_JTEXT_H
#define PAI_COMMON_JTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data; /* owned, NUL-terminated once anything is appended */
    size_t len;
    size_t alloc;
} jtext_t;

/* An empty text with room for about hint bytes. */
void jtext_init(jtext_t *t, size_t hint);
void jtext_free(jtext_t *t);
/* Give the text to the caller (free() it; "" when empty); t is left empty. */
char *jtext_take(jtext_t *t);

/* n bytes as they are: punctuation, keys, text encoded before. */
void jtext_raw(jtext_t *t, const char *s, size_t n);
/* A string literal as it is: JTEXT_LIT(t, ",\"seq\":"). */
#define JTEXT_LIT(t, lit) jtext_raw((t), "" lit, sizeof(lit) - 1)
/* An integer in decimal, as jansson writes a json_integer. */
void jtext_int(jtext_t *t, int64_t v);
/* true / false. */
void jtext_bool(jtext_t *t, bool v);
/* The integer, or null when !has. */
void jtext_int_or_null(jtext_t *t, bool has, int64_t v);
/* s as a JSON string as jansson escapes it, or null when s is NULL.  A string
 * that is not valid UTF-8 is written with each byte above 0x7f as '?'
 * (the record stays valid JSON; the process does not stop). */
void jtext_str(jtext_t *t, const char *s);
/* A copy of s's n bytes with every byte above 0x7f as '?' (NUL-terminated,
 * malloc'ed): the text a string that is not valid UTF-8 is written as. */
char *jtext_ascii_copy(const char *s, size_t n);
/* The first n bytes of s as a JSON string (jansson's escaping). */
void jtext_strn(jtext_t *t, const char *s, size_t n);

/* An object's key and its colon as jtext_json writes them: its bytes in
 * quotes when jansson would write them so (printable ASCII but '"' and
 * '\\'), else jansson's text; false for a key that is not UTF-8 (t then
 * holds a part). */
bool jtext_key(jtext_t *t, const char *k, size_t n);

/* s as a JSON string (jansson's escaping), malloc'ed: a value encoded once
 * and kept, then appended with jtext_raw. */
char *jtext_str_dup(const char *s);

struct json_t;
/* Any JSON value, compact: the bytes json_dumps(v, JSON_COMPACT |
 * JSON_ENCODE_ANY) writes, without its printf per integer and its loop
 * check (a printf'ed pointer and a hash insertion) per object and array.
 * String values and reals are written by jansson (json_dump_callback), so
 * are keys that jansson would write otherwise than as their bytes in
 * quotes; deeper than JTEXT_DEPTH_MAX (a cycle, or a tree no parser here
 * makes) the rest is jansson's too.  False where json_dumps would fail (a
 * cycle, invalid UTF-8) and for a key that is not UTF-8 (made by
 * json_object_set_nocheck only), which json_dumps writes as broken text;
 * t then holds a part. */
#define JTEXT_DEPTH_MAX 256
bool jtext_json(jtext_t *t, const struct json_t *v);
/* json_dumps(v, JSON_COMPACT) through jtext_json: malloc'ed, NULL where
 * json_dumps returns NULL (v NULL, not an object or array, or unencodable). */
char *jtext_dumps(const struct json_t *v);
/* The same with JSON_ENCODE_ANY: any value but NULL. */
char *jtext_dumps_any(const struct json_t *v);

#endif
