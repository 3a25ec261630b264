/*
 * test_jtext.c - JSON text written without a tree (common/jtext.h) is the
 * text jansson dumps for the same values: integers at the edges of their
 * range, strings that need escaping, a small object assembled by hand;
 * and any tree dumped (jtext_dumps) as json_dumps(JSON_COMPACT) dumps it:
 * random trees with odd keys and values, deep ones, cycles, bad text.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jtext.h"
#include "common/util.h"
#include "test.h"

static char *dump_any(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
    return s;
}

TEST(integers_are_written_as_jansson_writes_them)
{
    static const int64_t vals[] = {0,
                                   1,
                                   -1,
                                   9,
                                   10,
                                   -10,
                                   99,
                                   100,
                                   123456789,
                                   -987654321,
                                   INT32_MAX,
                                   INT32_MIN,
                                   UINT32_MAX,
                                   INT64_MAX,
                                   INT64_MIN,
                                   INT64_MIN + 1,
                                   1700000000123LL};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        jtext_t t;
        jtext_init(&t, 0);
        jtext_int(&t, vals[i]);
        char *want = dump_any(json_integer(vals[i])), *got = jtext_take(&t);
        CHECK_STR_EQ(got, want);
        free(want);
        free(got);
    }
}

TEST(strings_are_escaped_by_jansson)
{
    static const char *const strs[] = {"",         "plain", "q\"uote", "back\\slash", "tab\tnl\n",
                                       "\x01\x1f", "é ü ✓", "a/b",     "\x7f del"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        jtext_t t;
        jtext_init(&t, 1);
        jtext_str(&t, strs[i]);
        char *want = dump_any(json_string(strs[i])), *got = jtext_take(&t);
        CHECK_STR_EQ(got, want);
        char *kept = jtext_str_dup(strs[i]);
        CHECK_STR_EQ(kept, want);
        free(kept);
        free(want);
        free(got);
    }
}

TEST(an_object_assembled_by_hand_is_the_dump_of_its_tree)
{
    jtext_t t;
    jtext_init(&t, 4); /* grows */
    JTEXT_LIT(&t, "{\"a\":");
    jtext_int(&t, -42);
    JTEXT_LIT(&t, ",\"b\":");
    jtext_str(&t, NULL);
    JTEXT_LIT(&t, ",\"c\":");
    jtext_bool(&t, true);
    JTEXT_LIT(&t, ",\"d\":");
    jtext_bool(&t, false);
    JTEXT_LIT(&t, ",\"e\":");
    jtext_int_or_null(&t, false, 7);
    JTEXT_LIT(&t, ",\"f\":");
    jtext_int_or_null(&t, true, 7);
    JTEXT_LIT(&t, ",\"g\":");
    jtext_strn(&t, "abc\"def", 4);
    JTEXT_LIT(&t, "}");
    json_t *tree = xjson_pack("{si sn sb sb sn si ss}", "a", -42, "b", "c", 1, "d", 0, "e", "f", 7,
                              "g", "abc\"");
    char *want = json_dumps(tree, JSON_COMPACT), *got = jtext_take(&t);
    CHECK_STR_EQ(got, want);
    CHECK(strlen(got) == strlen(want));
    json_decref(tree);
    free(want);
    free(got);
}

static unsigned seed_state;

static unsigned rnd(unsigned n)
{
    seed_state = seed_state * 1103515245u + 12345u;
    return (seed_state >> 16) % n;
}

static const char *const odd_strs[] = {"",   "k",   "a b",    "q\"", "b\\s",  "t\t",    "\x01\x7f",
                                       "é✓", "a/b", "name_1", "{}",  "[1,2]", "\u00ff", "\n\r"};

static json_t *rnd_value(int depth)
{
    unsigned k = depth > 5 ? 4 + rnd(6) : rnd(10);
    switch (k) {
    case 0:
    case 1: {
        json_t *o = json_object();
        for (unsigned n = rnd(6); n > 0; n--) {
            const char *key = odd_strs[rnd(14)];
            json_object_set_new(o, key, rnd_value(depth + 1));
        }
        if (rnd(8) == 0)
            json_object_setn_new(o, "nul\0key", 7, json_integer(7)); /* a key with a NUL */
        return o;
    }
    case 2:
    case 3: {
        json_t *a = json_array();
        for (unsigned n = rnd(6); n > 0; n--)
            json_array_append_new(a, rnd_value(depth + 1));
        return a;
    }
    case 4:
        return json_string(odd_strs[rnd(14)]);
    case 5: {
        static const json_int_t ints[] = {0, -1, 42, INT64_MAX, INT64_MIN, 1700000000123LL};
        return json_integer(ints[rnd(6)]);
    }
    case 6:
        return json_real(rnd(2) ? 0.5 : -1e300);
    case 7:
        return json_true();
    case 8:
        return json_false();
    default:
        return json_null();
    }
}

TEST(a_string_that_is_not_utf8_is_written_with_question_marks)
{
    jtext_t t;
    jtext_init(&t, 0);
    /* "é" cut after its first byte, then a stray continuation byte */
    jtext_strn(&t, "ab\xc3", 3);
    JTEXT_LIT(&t, ",");
    jtext_str(&t, "x\x80y\"");
    char *got = jtext_take(&t);
    CHECK_STR_EQ(got, "\"ab?\",\"x?y\\\"\"");
    free(got);
}

static void check_dump(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT), *got = jtext_dumps(v);
    CHECK_STR_EQ(got, want);
    free(want);
    free(got);
}

TEST(any_tree_is_dumped_as_json_dumps_compact_does)
{
    for (unsigned seed = 1; seed <= 2000; seed++) {
        seed_state = seed;
        json_t *v = rnd(2) ? json_object() : json_array();
        for (unsigned n = 1 + rnd(5); n > 0; n--) {
            json_t *x = rnd_value(1);
            if (json_is_object(v))
                json_object_set_new(v, odd_strs[rnd(14)], x);
            else
                json_array_append_new(v, x);
        }
        check_dump(v);
        json_decref(v);
    }
}

/* Deeper than JTEXT_DEPTH_MAX the rest is jansson's (the same bytes); a
 * cycle or invalid UTF-8 fails as json_dumps fails; so does a scalar. */
TEST(deep_trees_cycles_and_bad_text_as_json_dumps)
{
    json_t *root = json_array(), *at = root;
    for (int d = 0; d < JTEXT_DEPTH_MAX + 40; d++) {
        json_t *next = d % 2 ? json_array() : json_object();
        if (json_is_array(at))
            json_array_append_new(at, next);
        else
            json_object_set_new(at, "k", next);
        at = next;
    }
    check_dump(root);
    json_decref(root);
    json_t *a = json_array(), *b = json_array();
    json_array_append(a, b);
    json_array_append(b, a);
    CHECK(json_dumps(a, JSON_COMPACT) == NULL);
    CHECK(jtext_dumps(a) == NULL);
    json_array_clear(b); /* break the cycle */
    json_decref(a);
    json_decref(b);
    json_t *bad = xjson_pack("{so}", "s", json_string_nocheck("\xff\xfe"));
    CHECK(json_dumps(bad, JSON_COMPACT) == NULL);
    CHECK(jtext_dumps(bad) == NULL);
    json_decref(bad);
    /* a key that is not UTF-8 (only *_nocheck makes one): jansson writes
     * broken text ("{\":1}"), jtext_dumps fails */
    json_t *badkey = json_object();
    json_object_set_new_nocheck(badkey, "\xc3", json_integer(1));
    CHECK(jtext_dumps(badkey) == NULL);
    json_decref(badkey);
    json_t *num = json_integer(3);
    CHECK(jtext_dumps(num) == NULL);
    char *any = jtext_dumps_any(num), *want = json_dumps(num, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK_STR_EQ(any, want);
    free(any);
    free(want);
    CHECK(jtext_dumps_any(NULL) == NULL);
    CHECK(jtext_dumps(NULL) == NULL);
    json_decref(num);
}

/* Short strings' texts are kept per thread: written again (hits), evicted
 * by others (collisions), at the size limits, and in two threads at once,
 * each is jansson's text for exactly its bytes. */
static void *escape_many(void *arg)
{
    int *bad = arg;
    char s[200];
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 600; k++) {
            int len = k % 120; /* around the kept sizes: 47, 48, 95 */
            for (int c = 0; c < len; c++)
                s[c] = (char)("ab\"\\\x01/z"[(k + c) % 7]);
            s[len] = '\0';
            jtext_t t;
            jtext_init(&t, 0);
            jtext_strn(&t, s, (size_t)len);
            json_t *js = json_stringn(s, (size_t)len), *arr = json_array();
            json_array_append(arr, js);
            char *want = json_dumps(js, JSON_COMPACT | JSON_ENCODE_ANY), *got = jtext_take(&t);
            char *wa = json_dumps(arr, JSON_COMPACT), *ga = jtext_dumps(arr);
            *bad += strcmp(got, want) != 0 || strcmp(wa, ga) != 0;
            free(want);
            free(got);
            free(wa);
            free(ga);
            json_decref(js);
            json_decref(arr);
        }
    return NULL;
}

TEST(kept_string_texts_are_jansson_texts_of_the_same_bytes)
{
    int bad1 = 0, bad2 = 0;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, escape_many, &bad1) == 0);
    escape_many(&bad2);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(bad1 == 0 && bad2 == 0);
}

/* jansson's text of n bytes of s (as jtext writes a string that is not
 * UTF-8: each byte above 0x7f as '?'). */
static char *jansson_text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (!j) {
        char *a = jtext_ascii_copy(s, n);
        j = json_stringn(a, n);
        free(a);
    }
    return dump_any(j);
}

/* The strings written without jansson (printable ASCII and the five
 * two-character escapes) and those left to it: every byte alone and
 * between others, and 100,000 random strings of an alphabet of escapes,
 * control bytes, ASCII and UTF-8, written by jtext_strn and as a tree's
 * values (jtext_json), are jansson's text. */
TEST(strings_written_without_jansson_are_jansson_texts)
{
    int bad = 0;
    char buf[80];
    for (int c = 1; c < 256; c++) {
        int n = snprintf(buf, sizeof buf, "a%cb\"%c\\", c, c);
        for (int k = 0; k < 2; k++) {
            const char *s = k ? buf : buf + 1;
            size_t len = k ? (size_t)n : 1;
            jtext_t t;
            jtext_init(&t, 1);
            jtext_strn(&t, s, len);
            char *want = jansson_text(s, len);
            bad += strcmp(t.data, want) != 0;
            if (strcmp(t.data, want) != 0 && bad < 5)
                fprintf(stderr, "byte 0x%02x: got %s want %s\n", c, t.data, want);
            free(want);
            jtext_free(&t);
        }
    }
    static const char *const alpha[] = {
        "a",    "Z",    " ",  "~",  "\"",   "\\",       "\n",           "\r",   "\t", "/",
        "\x01", "\x1f", "\b", "\f", "\x7f", "\xc3\xa9", "\xe2\x9c\x93", "\xff", "{",  "0"};
    unsigned seed = 12345;
    for (int i = 0; i < 100000; i++) {
        size_t n = 0;
        int parts = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 12;
        for (int p = 0; p < parts; p++) {
            seed = seed * 1103515245u + 12345u;
            /* mostly printable, as records are */
            const char *a = alpha[(seed >> 16) % 4 ? (seed >> 8) % 10 : (seed >> 8) % 20];
            size_t l = strlen(a);
            memcpy(buf + n, a, l);
            n += l;
        }
        buf[n] = '\0';
        jtext_t t;
        jtext_init(&t, 1);
        jtext_strn(&t, buf, n);
        char *want = jansson_text(buf, n);
        if (strcmp(t.data, want) != 0 && bad++ < 5)
            fprintf(stderr, "random %d: got %s want %s\n", i, t.data, want);
        free(want);
        jtext_free(&t);
        json_t *v = json_stringn(buf, n);
        if (v) { /* as a tree's value */
            json_t *arr = json_pack("[o]", v);
            char *tree = jtext_dumps(arr), *ref = json_dumps(arr, JSON_COMPACT);
            if ((!tree || !ref || strcmp(tree, ref) != 0) && bad++ < 5)
                fprintf(stderr, "tree %d: got %s want %s\n", i, tree, ref);
            free(tree);
            free(ref);
            json_decref(arr);
        }
    }
    CHECK_INT_EQ(bad, 0);
}

RUN_TESTS(integers_are_written_as_jansson_writes_them,
          strings_written_without_jansson_are_jansson_texts,
          a_string_that_is_not_utf8_is_written_with_question_marks, strings_are_escaped_by_jansson,
          an_object_assembled_by_hand_is_the_dump_of_its_tree,
          any_tree_is_dumped_as_json_dumps_compact_does,
          deep_trees_cycles_and_bad_text_as_json_dumps,
          kept_string_texts_are_jansson_texts_of_the_same_bytes)
