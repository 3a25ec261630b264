/*
 * test.h - the unit-test harness: a file of TEST()s and one RUN_TESTS().
 *
 * Each test prints "ok - name" or "not ok - name" (TAP-like lines that
 * tests/run.sh counts).  CHECK* macros record a failure with file:line and
 * keep going; the process exits non-zero when any test failed.  A test that
 * cannot run here calls test_skip("reason") and returns: it prints
 * "ok - name # SKIP reason", which tests/run.sh counts as skipped.
 *
 *   TEST(parses_hello_world) { CHECK(x == 1); CHECK_STR_EQ(a, "b"); }
 *   RUN_TESTS(parses_hello_world, other_test)
 */
#ifndef PAI_TESTS_TEST_H
#define PAI_TESTS_TEST_H

#include <stdio.h>
#include <string.h>

#include "common/util.h" /* util_alloc_init: the binaries' allocation policy */

static int test_failed_;
static const char *test_skip_; /* reason given to test_skip(), or NULL */

/* Marks the running test as skipped (it could not run here); return after it. */
static inline void test_skip(const char *reason)
{
    test_skip_ = reason;
}

#define TEST(name) static void name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);             \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                                         \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, #a,  \
                    a_, #b, b_);                                                                   \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                         \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,    \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                       \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                            \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_)) {                                                              \
            fprintf(stderr, "  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,       \
                    h_ ? h_ : "(null)", n_);                                                       \
            test_failed_ = 1;                                                                      \
        }                                                                                          \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case_t;

static inline int test_run_all_(const test_case_t *cases, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        test_failed_ = 0;
        test_skip_ = NULL;
        cases[i].fn();
        if (test_skip_ && !test_failed_)
            printf("ok - %s # SKIP %s\n", cases[i].name, test_skip_);
        else
            printf("%s - %s\n", test_failed_ ? "not ok" : "ok", cases[i].name);
        fflush(stdout);
        failures += test_failed_;
    }
    return failures ? 1 : 0;
}

/* RUN_TESTS takes a list of test names; implemented with a table. */
#define RUN_TESTS(...)                                                                             \
    int main(void)                                                                                 \
    {                                                                                              \
        util_alloc_init();                                                                         \
        static void (*const fns_[])(void) = {__VA_ARGS__};                                         \
        static const char names_[] = #__VA_ARGS__;                                                 \
        test_case_t cases_[sizeof(fns_) / sizeof(fns_[0])];                                        \
        char buf_[sizeof(names_)];                                                                 \
        memcpy(buf_, names_, sizeof(names_));                                                      \
        char *save_ = NULL, *tok_ = strtok_r(buf_, ", \n\t", &save_);                              \
        for (size_t i_ = 0; i_ < sizeof(fns_) / sizeof(fns_[0]); i_++) {                           \
            cases_[i_].name = tok_ ? tok_ : "?";                                                   \
            cases_[i_].fn = fns_[i_];                                                              \
            tok_ = strtok_r(NULL, ", \n\t", &save_);                                               \
        }                                                                                          \
        return test_run_all_(cases_, sizeof(fns_) / sizeof(fns_[0]));                              \
    }

#endif
