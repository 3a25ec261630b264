/* test_common.c - bounded buffers, strict number parsing, YAML tree, errors,
 * the allocators, and the shared helpers: fs, hash, vec, promtext. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/promtext.h"
#include "common/strmap.h"
#include "common/util.h"
#include "common/vec.h"
#include "common/yamljson.h"
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

/* Runs fn in a child with stderr captured; returns its wait status. */
static int in_child(void (*fn)(void), char *err, size_t errlen)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        fn();
        _exit(0);
    }
    close(p[1]);
    ssize_t n = read(p[0], err, errlen - 1);
    err[n > 0 ? n : 0] = '\0';
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void pack_null_string(void)
{
    const char *none = NULL;
    json_decref(xjson_pack("{s:s}", "name", none));
}

TEST(xjson_pack_aborts_with_the_format_on_a_mistake)
{
    json_t *o = xjson_pack("{s:s, s:i, s:s?}", "a", "x", "b", 2, "c", (const char *)NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "a")), "x");
    CHECK(json_is_null(json_object_get(o, "c")));
    json_decref(o);
    char err[512];
    int st = in_child(pack_null_string, err, sizeof(err));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK_STR_CONTAINS(err, "json_pack(\"{s:s}\")");
}

TEST(allocators_never_return_null)
{
    char *p = xmalloc(0), *q = xstrdup(NULL), *r = str_printf("%d-%s", 7, "x");
    CHECK(p && q && r);
    CHECK_STR_EQ(q, "");
    CHECK_STR_EQ(r, "7-x");
    p = xrealloc(p, 64);
    CHECK(p != NULL);
    free(p);
    free(q);
    free(r);
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

TEST(error_value_carries_code_message_and_details)
{
    pai_error_t e = PAI_ERROR_INIT;
    CHECK_STR_EQ(pai_error_msg(&e), "success");
    CHECK(pai_error_set(&e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, "alice~j1") == PAI_E_NO_JOB);
    CHECK_INT_EQ(e.code, PAI_E_NO_JOB);
    CHECK_STR_EQ(pai_error_msg(&e), "Job alice~j1 is not found.");
    pai_error_details(&e, xjson_pack("{s:[i]}", "errors", 1));
    CHECK(json_is_array(json_object_get(e.details, "errors")));
    /* a new error drops the old details; no format: the table's message */
    CHECK(pai_error_set(&e, PAI_E_UNAUTHORIZED, NULL) == PAI_E_UNAUTHORIZED);
    CHECK(e.details == NULL);
    CHECK_STR_EQ(pai_error_msg(&e), "Guest is not allowed to do this operation.");
    pai_error_free(&e);
    CHECK(e.code == PAI_OK && e.msg[0] == '\0');
}

TEST(error_value_may_be_null_and_messages_are_bounded)
{
    CHECK(pai_error_set(NULL, PAI_E_IO, "ignored %d", 1) == PAI_E_IO);
    pai_error_details(NULL, json_object()); /* released, not leaked */
    pai_error_free(NULL);
    pai_error_t e = PAI_ERROR_INIT;
    char big[2 * PAI_ERROR_MSG_MAX];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pai_error_set(&e, PAI_E_INVALID, "%s", big);
    CHECK_INT_EQ(strlen(pai_error_msg(&e)), PAI_ERROR_MSG_MAX - 1);
    pai_error_free(&e);
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

TEST(yaml_duplicate_keys_are_noted_in_every_map)
{
    /* a repeated key deep in a free-form map, one in a flow map, a merge
     * key that is no duplicate, and a map large enough to be sorted */
    buf_t b;
    buf_init(&b, 1 << 16);
    CHECK(buf_puts(&b, "base: &b {x: 1}\na:\n  <<: *b\n  x: 2\n  deep:\n    k: 1\n    k: 2\n"
                       "f: {p: 1, q: 2, p: 3}\nbig:\n") == PAI_OK);
    for (int i = 0; i < 40; i++)
        CHECK(buf_printf(&b, "  k%02d: %d\n", i, i) == PAI_OK);
    CHECK(buf_puts(&b, "  k07: again\n") == PAI_OK);
    ydoc_t *d = NULL;
    yerr_t e;
    CHECK(ydoc_parse(b.data, b.len, &d, &e) == PAI_OK);
    const ynode_t *const *dups;
    size_t n = ydoc_dups(d, &dups);
    CHECK_INT_EQ(n, 3);
    if (n == 3) {
        CHECK_STR_EQ(dups[0]->str, "k");
        CHECK_INT_EQ(dups[0]->line, 7);
        CHECK_STR_EQ(dups[1]->str, "p");
        CHECK_INT_EQ(dups[1]->line, 8);
        CHECK_STR_EQ(dups[2]->str, "k07");
        CHECK_INT_EQ(dups[2]->line, 50);
    }
    /* the tree keeps both pairs; a lookup finds the first */
    CHECK_STR_EQ(ynode_get(ynode_get(ynode_get(ydoc_root(d), "a"), "deep"), "k")->str, "1");
    CHECK_STR_EQ(ynode_get(ynode_get(ydoc_root(d), "a"), "x")->str, "2");
    ydoc_free(d);
    d = NULL;
    CHECK(ydoc_parse_unique(b.data, b.len, &d, &e) == PAI_E_INVALID && !d);
    CHECK_STR_EQ(e.msg, "duplicate key 'k'");
    CHECK_INT_EQ(e.line, 7);
    CHECK_INT_EQ(e.col, 5);
    const char *ok = "base: &b {x: 1}\na:\n  <<: *b\n  x: 2\n";
    CHECK(ydoc_parse_unique(ok, strlen(ok), &d, &e) == PAI_OK && d);
    ydoc_free(d);
    buf_free(&b);
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

/* A fresh directory under TEST_OUT (or /tmp) for the fs tests. */
static char *scratch_dir(const char *name)
{
    const char *base = getenv("TEST_OUT");
    char *d = str_printf("%s/common-%s-%ld", base && *base ? base : "/tmp", name, (long)getpid());
    return d;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

TEST(fs_mkdir_p_makes_every_missing_parent)
{
    char *root = scratch_dir("mkdir");
    char *deep = str_printf("%s/a/b/c", root);
    CHECK(fs_mkdir_p(deep, 0755) == PAI_OK);
    CHECK(is_dir(deep));
    CHECK(fs_mkdir_p(deep, 0755) == PAI_OK); /* existing: fine */
    char *file = str_printf("%s/x/y/config.json", root);
    CHECK(fs_mkdir_parents(file, 0700) == PAI_OK);
    char *parent = str_printf("%s/x/y", root);
    CHECK(is_dir(parent));
    CHECK(!is_dir(file)); /* the file's own name is left alone */
    char *under_file = str_printf("%s/a/b/c/f/g", root);
    char *plain = str_printf("%s/a/b/c/f", root);
    CHECK(fs_write_atomic(plain, "x", 1, 0600) == PAI_OK);
    CHECK(fs_mkdir_p(under_file, 0755) == PAI_E_IO);
    char longp[5000];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    CHECK(fs_mkdir_p(longp, 0755) != PAI_OK);
    free(deep), free(file), free(parent), free(under_file), free(plain), free(root);
}

TEST(fs_rm_at_removes_a_tree_without_following_links_and_within_its_budget)
{
    char *root = scratch_dir("rm");
    char *victim = str_printf("%s/victim", root), *canary = str_printf("%s/victim/keep", root);
    char *tree = str_printf("%s/tree/sub", root), *link = str_printf("%s/tree/sub/ln", root);
    CHECK(fs_mkdir_p(victim, 0755) == PAI_OK && fs_mkdir_p(tree, 0755) == PAI_OK);
    CHECK(fs_write_atomic(canary, "x", 1, 0600) == PAI_OK);
    CHECK(symlink(victim, link) == 0);
    for (int i = 0; i < 10; i++) {
        char *f = str_printf("%s/f%d", tree, i);
        CHECK(fs_write_atomic(f, "x", 1, 0600) == PAI_OK);
        free(f);
    }
    int rfd = open(root, O_RDONLY | O_DIRECTORY);
    CHECK(rfd >= 0);
    /* the tree's 13 names do not fit in 5: part of it stays */
    CHECK(!fs_rm_at_most(rfd, "tree", 5));
    CHECK(is_dir(tree));
    CHECK(fs_rm_at_most(rfd, "tree", 100));
    CHECK(!is_dir(tree));
    CHECK(access(canary, F_OK) == 0); /* the link went, not what it points at */
    CHECK(fs_rm_at_most(rfd, "missing", 1));
    close(rfd);
    fs_rm_rf(root);
    CHECK(access(root, F_OK) != 0);
    free(victim), free(canary), free(tree), free(link), free(root);
}

TEST(fs_write_atomic_replaces_the_file_and_leaves_no_temporary)
{
    char *root = scratch_dir("write");
    CHECK(fs_mkdir_p(root, 0755) == PAI_OK);
    char *p = str_printf("%s/state", root);
    CHECK(fs_write_atomic(p, "first", 5, 0600) == PAI_OK);
    CHECK(fs_write_atomic(p, "second", 6, 0644) == PAI_OK);
    buf_t b;
    buf_init(&b, 64);
    CHECK(buf_read_file(&b, p) == PAI_OK);
    CHECK_STR_EQ(buf_str(&b), "second");
    buf_free(&b);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644);
    char *tmp = str_printf("%s/.state.tmp", root);
    CHECK(access(tmp, F_OK) != 0);
    char *nodir = str_printf("%s/missing/state", root);
    CHECK(fs_write_atomic(nodir, "x", 1, 0600) == PAI_E_IO);
    free(p), free(tmp), free(nodir), free(root);
}

TEST(time_after_ms_carries_into_seconds)
{
    struct timespec now, t;
    clock_gettime(CLOCK_MONOTONIC, &now);
    t = time_after_ms(CLOCK_MONOTONIC, 2999);
    int64_t d = ((int64_t)t.tv_sec - now.tv_sec) * 1000 + (t.tv_nsec - now.tv_nsec) / 1000000;
    CHECK(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
    CHECK(d >= 2999 && d < 3999);
    t = time_after_ms(CLOCK_REALTIME, 0);
    CHECK(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
}

TEST(fnv1a_matches_the_reference_values)
{
    /* FNV-1a 64 test vectors (Fowler, Noll, Vo). */
    CHECK(hash_fnv1a(FNV1A_INIT, "") == 0xcbf29ce484222325ull);
    CHECK(hash_fnv1a(FNV1A_INIT, "a") == 0xaf63dc4c8601ec8cull);
    CHECK(hash_fnv1a(FNV1A_INIT, "foobar") == 0x85944171f73967e8ull);
    CHECK(hash_fnv1a(hash_fnv1a(FNV1A_INIT, "foo"), "bar") == 0x85944171f73967e8ull);
}

TEST(vec_reserve_doubles_and_keeps_the_contents)
{
    int *v = NULL;
    size_t cap = 0, n = 0;
    for (int i = 0; i < 1000; i++) {
        VEC_XRESERVE(v, cap, n + 1);
        v[n++] = i;
    }
    CHECK(cap >= 1000 && cap < 2048);
    CHECK(v[0] == 0 && v[999] == 999);
    size_t before = cap;
    VEC_XRESERVE(v, cap, 10);
    CHECK(cap == before); /* room already */
    VEC_XRESERVE(v, cap, 5000);
    CHECK(cap >= 5000);
    free(v);
    char *c = NULL;
    cap = 0;
    VEC_XRESERVE(c, cap, 1);
    CHECK(c && cap == VEC_MIN_CAP);
    free(c);
}

static void reserve_overflow(void)
{
    uint64_t *v = NULL;
    size_t cap = 0;
    VEC_XRESERVE(v, cap, SIZE_MAX / 4);
}

TEST(vec_reserve_aborts_on_sizes_that_overflow)
{
    char err[512];
    int st = in_child(reserve_overflow, err, sizeof(err));
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK_STR_CONTAINS(err, "pai: out of memory");
}

TEST(promtext_writes_families_samples_and_escapes_labels)
{
    buf_t b;
    buf_init(&b, 4096);
    prom_family(&b, "pai_x", "gauge", "An x.");
    char esc[64];
    prom_escape(esc, sizeof(esc), "a\"b\\c\nd");
    CHECK_STR_EQ(esc, "a\\\"b\\\\c\\nd");
    char labels[128];
    snprintf(labels, sizeof(labels), "vc=\"%s\"", esc);
    prom_sample(&b, "pai_x", labels, 3);
    prom_sample(&b, "pai_x", NULL, 0.5);
    CHECK_STR_EQ(buf_str(&b), "# HELP pai_x An x.\n# TYPE pai_x gauge\n"
                              "pai_x{vc=\"a\\\"b\\\\c\\nd\"} 3\npai_x 0.5\n");
    buf_reset(&b);
    prom_counter(&b, "pai_c_total", "Cs.", 7);
    prom_gauge(&b, "pai_g", "A g.", 1.5);
    CHECK_STR_EQ(buf_str(&b), "# HELP pai_c_total Cs.\n# TYPE pai_c_total counter\npai_c_total 7\n"
                              "# HELP pai_g A g.\n# TYPE pai_g gauge\npai_g 1.5\n");
    /* a histogram's samples, without and with labels */
    static const double bounds[] = {0.0001, 1};
    const unsigned long long cum[] = {1, 3, 4};
    buf_reset(&b);
    prom_histogram(&b, "pai_h_seconds", NULL, bounds, 2, cum, 2.5, 4);
    CHECK_STR_EQ(buf_str(&b),
                 "pai_h_seconds_bucket{le=\"0.0001\"} 1\npai_h_seconds_bucket{le=\"1\"} 3\n"
                 "pai_h_seconds_bucket{le=\"+Inf\"} 4\npai_h_seconds_sum 2.5\n"
                 "pai_h_seconds_count 4\n");
    buf_reset(&b);
    prom_histogram(&b, "pai_h_seconds", "route=\"/x\"", bounds, 0, cum, 0.5, 1);
    CHECK_STR_EQ(buf_str(&b),
                 "pai_h_seconds_bucket{route=\"/x\",le=\"+Inf\"} 1\n"
                 "pai_h_seconds_sum{route=\"/x\"} 0.5\npai_h_seconds_count{route=\"/x\"} 1\n");
    buf_free(&b);
    buf_init(&b, 10);
    prom_family(&b, "pai_long_name", "gauge", "truncated, never overrun");
    CHECK(b.len <= 10);
    buf_free(&b);
}

static int freed_;
static void count_free(void *v)
{
    freed_++;
    free(v);
}

TEST(strmap_puts_gets_replaces_and_owns_its_values)
{
    strmap_t *m = strmap_new(count_free);
    freed_ = 0;
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "job-%d", i);
        int *v = malloc(sizeof(int));
        *v = i;
        CHECK(strmap_put(m, key, v) == PAI_OK);
    }
    CHECK_INT_EQ(strmap_count(m), 5000);
    int *g = strmap_get(m, "job-4321");
    CHECK(g && *g == 4321);
    CHECK(strmap_get(m, "job-5000") == NULL);
    int *r = malloc(sizeof(int));
    *r = -1;
    CHECK(strmap_put(m, "job-7", r) == PAI_OK); /* replaces: the old value is freed */
    CHECK_INT_EQ(freed_, 1);
    CHECK(strmap_get(m, "job-7") == r);
    CHECK_INT_EQ(strmap_count(m), 5000);
    CHECK(strmap_put(m, "x", NULL) == PAI_E_INVALID);
    strmap_free(m);
    CHECK_INT_EQ(freed_, 5001);
}

TEST(strmap_delete_keeps_every_other_key_reachable)
{
    strmap_t *m = strmap_new(NULL); /* values not owned */
    static int vals[2000];
    char key[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        CHECK(strmap_put(m, key, &vals[i]) == PAI_OK);
    }
    for (int i = 0; i < 2000; i += 3) {
        snprintf(key, sizeof(key), "n%d", i);
        CHECK(strmap_take(m, key) == &vals[i]);
    }
    CHECK(!strmap_del(m, "n0")); /* gone already */
    int found = 0;
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        void *v = strmap_get(m, key);
        CHECK(i % 3 == 0 ? v == NULL : v == &vals[i]);
        found += v != NULL;
    }
    CHECK_INT_EQ(found, (int)strmap_count(m));
    size_t it = 0, walked = 0;
    const char *k;
    void *v;
    while (strmap_next(m, &it, &k, &v)) {
        CHECK(strmap_get(m, k) == v);
        walked++;
    }
    CHECK_INT_EQ(walked, strmap_count(m));
    strmap_clear(m);
    CHECK_INT_EQ(strmap_count(m), 0);
    CHECK(strmap_get(m, "n1") == NULL);
    CHECK(strmap_put(m, "again", &vals[0]) == PAI_OK && strmap_get(m, "again") == &vals[0]);
    strmap_free(m);
    strmap_free(NULL);
}

TEST(strmap_copies_its_keys)
{
    strmap_t *m = strmap_new(NULL);
    char key[8] = "abc";
    int v = 1;
    CHECK(strmap_put(m, key, &v) == PAI_OK);
    key[0] = 'x'; /* the caller's buffer changes; the map's key does not */
    CHECK(strmap_get(m, "abc") == &v);
    CHECK(strmap_get(m, "xbc") == NULL);
    strmap_free(m);
}

static char *yaml_as_json(const char *y)
{
    json_t *j = yjson_from_text(y, strlen(y));
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    return s;
}

TEST(yaml_to_json_keeps_types_and_quoted_strings)
{
    char *s = yaml_as_json("a: 1\nb: 0.5\nc: true\nd: '1'\ne: ~\nf: [x, 2]\ng: {h: text}\n");
    CHECK_STR_EQ(s, "{\"a\":1,\"b\":0.5,\"c\":true,\"d\":\"1\",\"e\":null,\"f\":[\"x\",2],"
                    "\"g\":{\"h\":\"text\"}}");
    free(s);
}

TEST(yaml_to_json_follows_the_core_schema)
{
    static const struct {
        const char *yaml, *json;
    } cases[] = {
        {"010", "10"}, /* decimal, not octal */
        {"0x1F", "31"},
        {"0o17", "15"},
        {"-7", "-7"},
        {"+3", "3"},
        {"1e3", "1000.0"},
        {".5", "0.5"},
        {"TRUE", "true"},
        {"False", "false"},
        {"tRuE", "\"tRuE\""},
        {"yes", "\"yes\""},
        {"NULL", "null"},
        {"nUlL", "\"nUlL\""},
        {"\"true\"", "\"true\""},
        {"'12'", "\"12\""},
        {"|\n  12\n", "\"12\\n\""},
        {".inf", "\".inf\""},                                 /* no inf in JSON: the text stays */
        {"99999999999999999999", "\"99999999999999999999\""}, /* beyond int64 */
        {"1_000", "\"1_000\""},
        {"0x", "\"0x\""},
        {"12abc", "\"12abc\""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *s = yaml_as_json(cases[i].yaml);
        CHECK_STR_EQ(s, cases[i].json);
        free(s);
    }
    CHECK(yjson_from_text("a: [", 4) == NULL);
    CHECK(yjson_plain_type("1.5") == YJ_FLOAT && yjson_plain_type("~") == YJ_NULL);
    CHECK(yjson_plain_type("1.2.3") == YJ_STRING);
    /* every first byte a typed scalar can start with, and some that cannot */
    CHECK(yjson_plain_type("") == YJ_NULL && yjson_plain_type("Null") == YJ_NULL);
    CHECK(yjson_plain_type("False") == YJ_BOOL && yjson_plain_type("TRUE") == YJ_BOOL);
    CHECK(yjson_plain_type("+12") == YJ_INT && yjson_plain_type("-3") == YJ_INT);
    CHECK(yjson_plain_type("0o17") == YJ_INT && yjson_plain_type("0xff") == YJ_INT);
    CHECK(yjson_plain_type("-.INF") == YJ_FLOAT && yjson_plain_type(".nan") == YJ_FLOAT);
    CHECK(yjson_plain_type("n") == YJ_STRING && yjson_plain_type("taskRoles") == YJ_STRING);
    CHECK(yjson_plain_type("x1") == YJ_STRING && yjson_plain_type("yes") == YJ_STRING);
}

/* timer_slack_undo on a thread of its own: that thread's slack after it. */
static void *slack_undone(void *arg)
{
    timer_slack_undo();
    *(long *)arg = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    return NULL;
}

/* Run in a child of its own (the slack and what sched_child_default puts
 * back are the process's): the code of the first check that failed, 0 if
 * none. */
static int slack_case(const char *env, long want_ns, int want_rc)
{
    long was = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (env)
        setenv("PAI_TIMER_SLACK_US", env, 1);
    else
        unsetenv("PAI_TIMER_SLACK_US");
    if (timer_slack_daemon() != want_rc)
        return 1;
    if (prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != want_ns)
        return 2;
    pid_t kid = fork(); /* a thread or process made from then on has it too */
    if (kid == 0)
        _exit(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == want_ns ? 0 : 1);
    int st = 0;
    if (kid < 0 || waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 3;
    pthread_t th;
    long in_thread = 0;
    if (pthread_create(&th, NULL, slack_undone, &in_thread) != 0 || pthread_join(th, NULL) != 0 ||
        in_thread != was || prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != want_ns)
        return 4;          /* timer_slack_undo: that thread's own */
    sched_child_default(); /* a task's process before its exec: the slack it had */
    return prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == was ? 0 : 5;
}

static int slack_in_child(const char *env, long want_ns, int want_rc)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(slack_case(env, want_ns, want_rc));
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

TEST(daemons_get_a_timer_slack_their_tasks_do_not)
{
    long was = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    CHECK(was > 0);
    CHECK_INT_EQ(slack_in_child(NULL, TIMER_SLACK_DAEMON_US * 1000L, TIMER_SLACK_DAEMON_US), 0);
    CHECK_INT_EQ(slack_in_child("250", 250000L, 250), 0);
    CHECK_INT_EQ(slack_in_child("1000000", 1000000000L, 1000000), 0);
    /* 0: the inherited slack kept; garbage or out of range: the same, said */
    CHECK_INT_EQ(slack_in_child("0", was, 0), 0);
    CHECK_INT_EQ(slack_in_child("1000001", was, -1), 0);
    CHECK_INT_EQ(slack_in_child("-5", was, -1), 0);
    CHECK_INT_EQ(slack_in_child("1ms", was, -1), 0);
    CHECK_INT_EQ(slack_in_child("", was, -1), 0);
}

RUN_TESTS(buf_refuses_to_grow_past_its_cap, str_to_i64_rejects_garbage_and_out_of_range,
          xjson_pack_aborts_with_the_format_on_a_mistake, allocators_never_return_null,
          names_follow_openpai_pattern, errors_map_to_openpai_codes,
          error_value_carries_code_message_and_details,
          error_value_may_be_null_and_messages_are_bounded, yaml_tree_keeps_positions,
          yaml_merge_keys_apply, yaml_duplicate_keys_are_noted_in_every_map,
          yaml_alias_bomb_is_refused, yaml_deep_nesting_and_bad_utf8_are_refused,
          fs_mkdir_p_makes_every_missing_parent,
          fs_rm_at_removes_a_tree_without_following_links_and_within_its_budget,
          fs_write_atomic_replaces_the_file_and_leaves_no_temporary,
          time_after_ms_carries_into_seconds, fnv1a_matches_the_reference_values,
          vec_reserve_doubles_and_keeps_the_contents, vec_reserve_aborts_on_sizes_that_overflow,
          promtext_writes_families_samples_and_escapes_labels,
          strmap_puts_gets_replaces_and_owns_its_values,
          strmap_delete_keeps_every_other_key_reachable, strmap_copies_its_keys,
          yaml_to_json_keeps_types_and_quoted_strings, yaml_to_json_follows_the_core_schema,
          daemons_get_a_timer_slack_their_tasks_do_not)
