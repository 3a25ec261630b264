/* test_common.c - bounded buffers, strict number parsing, YAML tree, errors. */
#include <stdlib.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "common/yamltree.h"
#include "test.h"

TEST(buf_refuses_to_grow_past_its_cap)
{
    buf_t b;
    buf_init(&b, 8);
    CHECK(buf_puts(&b, "1234") == PAI_OK);
    CHECK(buf_puts(&b, "56789") == PAI_E_TOO_LARGE);
    CHECK_STR_EQ(buf_str(&b), "1234");
    CHECK(buf_printf(&b, "%d", 5678) == PAI_OK);
    CHECK_INT_EQ(b.len, 8);
    buf_free(&b);
}

TEST(str_to_i64_rejects_garbage_and_out_of_range)
{
    int64_t v;
    CHECK(str_to_i64("42", 0, 100, &v) == PAI_OK && v == 42);
    CHECK(str_to_i64("42x", 0, 100, &v) != PAI_OK);
    CHECK(str_to_i64("", 0, 100, &v) != PAI_OK);
    CHECK(str_to_i64("101", 0, 100, &v) != PAI_OK);
    CHECK(str_to_i64("99999999999999999999999", INT64_MIN, INT64_MAX, &v) != PAI_OK);
}

TEST(names_follow_openpai_pattern)
{
    CHECK(str_is_name("alice_01-x"));
    CHECK(!str_is_name("a b"));
    CHECK(!str_is_name("../etc"));
    CHECK(!str_is_name(""));
}

TEST(errors_map_to_openpai_codes)
{
    CHECK_STR_EQ(pai_err_code(PAI_E_NO_JOB), "NoJobError");
    CHECK_INT_EQ(pai_err_status(PAI_E_NO_JOB), 404);
    CHECK_INT_EQ(pai_err_status(PAI_E_UNAUTHORIZED), 401);
    CHECK_STR_EQ(pai_err_code((pai_err_t)9999), "UnknownError");
}

TEST(yaml_tree_keeps_positions)
{
    const char *y = "a: 1\nb:\n  - x\n  - 'y'\n";
    ydoc_t *d;
    yerr_t e;
    CHECK(ydoc_parse(y, strlen(y), &d, &e) == PAI_OK);
    const ynode_t *b = ynode_get(ydoc_root(d), "b");
    CHECK(b && b->kind == YNODE_SEQ && b->n == 2);
    CHECK_INT_EQ(b->items[1]->line, 4);
    CHECK(!b->items[1]->plain);
    int64_t v;
    CHECK(ynode_as_i64(ynode_get(ydoc_root(d), "a"), &v) && v == 1);
    ydoc_free(d);
}

TEST(yaml_merge_keys_apply)
{
    const char *y = "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n";
    ydoc_t *d;
    yerr_t e;
    CHECK(ydoc_parse(y, strlen(y), &d, &e) == PAI_OK);
    const ynode_t *m = ynode_get(ydoc_root(d), "d");
    CHECK_STR_EQ(ynode_get(m, "x")->str, "1");
    CHECK_STR_EQ(ynode_get(m, "y")->str, "3");
    ydoc_free(d);
}

TEST(yaml_alias_bomb_is_refused)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    CHECK(buf_puts(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n") == PAI_OK);
    for (int i = 1; i < 12; i++)
        CHECK(buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
                         i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1) == PAI_OK);
    ydoc_t *d = NULL;
    yerr_t e;
    CHECK(ydoc_parse(b.data, b.len, &d, &e) == PAI_E_TOO_LARGE);
    CHECK_STR_CONTAINS(e.msg, "too large");
    buf_free(&b);
}

TEST(yaml_deep_nesting_and_bad_utf8_are_refused)
{
    char deep[400];
    memset(deep, '[', 200);
    deep[200] = '\0';
    ydoc_t *d = NULL;
    yerr_t e;
    CHECK(ydoc_parse(deep, 200, &d, &e) != PAI_OK);
    CHECK_STR_CONTAINS(e.msg, "nested too deeply");
    const char bad[] = "a: \xff\xfe\n";
    CHECK(ydoc_parse(bad, sizeof(bad) - 1, &d, &e) != PAI_OK);
    CHECK_INT_EQ(e.line, 1);
    const char two[] = "a: 1\n---\nb: 2\n";
    CHECK(ydoc_parse(two, sizeof(two) - 1, &d, &e) != PAI_OK);
}

RUN_TESTS(buf_refuses_to_grow_past_its_cap, str_to_i64_rejects_garbage_and_out_of_range,
          names_follow_openpai_pattern, errors_map_to_openpai_codes, yaml_tree_keeps_positions,
          yaml_merge_keys_apply, yaml_alias_bomb_is_refused,
          yaml_deep_nesting_and_bad_utf8_are_refused)
