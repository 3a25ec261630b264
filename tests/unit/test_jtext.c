/*
 * test_jtext.c - JSON text written without a tree (common/jtext.h) is the
 * text jansson dumps for the same values: integers at the edges of their
 * range, strings that need escaping, and a small object assembled by hand.
 */
#include <jansson.h>
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

RUN_TESTS(integers_are_written_as_jansson_writes_them, strings_are_escaped_by_jansson,
          an_object_assembled_by_hand_is_the_dump_of_its_tree)
