/*
 * test.h - the unit-test harness: a file of TEST()s and one RUN_TESTS().
 *
 * Each test prints "ok - name" or "not ok - name" (TAP-like lines that
 * tests/run.sh counts).  CHECK* macros record a failure with file:line and
 * keep going; the process exits non-zero when any test failed.  A test that
 * cannot run here calls test_skip("reason") and returns: it prints
 * "ok - name # SKIP reason", which tests/run.sh counts as skipped.
 *
 * Each test runs in a child process of its own, so a crash, an abort, a
 * sanitizer error or a signal is that test's failure ("not ok - name: killed
 * by signal 11 (Segmentation fault)") and the rest of the file still runs;
 * no test sees what an earlier one left in memory.  Under ASan each child
 * checks for leaks before it exits, so a leak fails the test that made it.
 *
 *   TEST(parses_hello_world) { CHECK(x == 1); CHECK_STR_EQ(a, "b"); }
 *   RUN_TESTS(parses_hello_world, other_test)
 */
#ifndef PAI_TESTS_TEST_H
#define PAI_TESTS_TEST_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_LSAN_ 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_LSAN_ 1
#endif
#endif
#ifdef TEST_LSAN_
#include <sanitizer/lsan_interface.h>
#endif

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

enum { TEST_SKIP_LEN_ = 256 };

/* The child: runs the test and exits 0 (passed or skipped) or 1 (failed); a
 * skip reason goes to skip_out, a page shared with the parent. */
_Noreturn static inline void test_child_(const test_case_t *c, char *skip_out)
{
    test_failed_ = 0;
    test_skip_ = NULL;
    c->fn();
#ifdef TEST_LSAN_
    if (__lsan_do_recoverable_leak_check()) {
        fprintf(stderr, "  leaks found (LeakSanitizer report above)\n");
        test_failed_ = 1;
    }
#endif
    if (test_skip_)
        snprintf(skip_out, TEST_SKIP_LEN_, "%s", test_skip_);
    fflush(stdout);
    fflush(stderr);
    /* _exit: the parent's atexit handlers (temp dir clean-ups) are not the child's */
    _exit(test_failed_ ? 1 : 0);
}

/* Runs one test in a child process and prints its line; returns 1 when it failed. */
static inline int test_run_one_(const test_case_t *c, char *skip)
{
    skip[0] = '\0';
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        printf("not ok - %s: fork: %s\n", c->name, strerror(errno));
        return 1;
    }
    if (pid == 0)
        test_child_(c, skip);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            printf("not ok - %s: waitpid: %s\n", c->name, strerror(errno));
            return 1;
        }
    int failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    if (WIFSIGNALED(st))
        printf("not ok - %s: killed by signal %d (%s)\n", c->name, WTERMSIG(st),
               strsignal(WTERMSIG(st)));
    else if (failed && WEXITSTATUS(st) != 1)
        printf("not ok - %s: exited with status %d\n", c->name, WEXITSTATUS(st));
    else if (failed)
        printf("not ok - %s\n", c->name);
    else if (skip[0])
        printf("ok - %s # SKIP %s\n", c->name, skip);
    else
        printf("ok - %s\n", c->name);
    fflush(stdout);
    return failed;
}

static inline int test_run_all_(const test_case_t *cases, size_t n)
{
    char *skip =
        mmap(NULL, TEST_SKIP_LEN_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (skip == MAP_FAILED) {
        perror("test.h: mmap");
        return 1;
    }
    int failures = 0;
    for (size_t i = 0; i < n; i++)
        failures += test_run_one_(&cases[i], skip);
    munmap(skip, TEST_SKIP_LEN_);
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
