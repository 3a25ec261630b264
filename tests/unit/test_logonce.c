/* test_logonce.c - work redone over the same data logs each warning once
 * (log_once_*: a standby's rebuilds of its view, server/standby.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "test.h"

/* Everything written to f so far. */
static char *all(FILE *f)
{
    static char buf[16384];
    fflush(f);
    size_t n = (size_t)ftell(f);
    rewind(f);
    n = fread(buf, 1, n < sizeof(buf) - 1 ? n : sizeof(buf) - 1, f);
    buf[n] = '\0';
    fseek(f, 0, SEEK_END);
    return buf;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* One "rebuild": the same warnings as the last, and maybe a new one. */
static void rebuild(int round)
{
    log_warn("job=alice~a cannot be restored: bad record");
    log_warn("job=bob~b runs opportunistically after the restart");
    log_info("restored %d jobs", 2);
    log_error("store: postgres: scan jobs: timed out");
    if (round == 2)
        log_warn("job=carol~c cannot be restored: bad record");
}

TEST(a_filtered_thread_writes_each_warning_once_errors_always)
{
    FILE *f = tmpfile();
    log_set_file(f);
    log_once_t *o = log_once_new();
    CHECK(o != NULL);
    for (int round = 0; round < 4; round++) {
        log_once_set(o);
        rebuild(round);
        log_once_set(NULL);
    }
    log_warn("job=alice~a cannot be restored: bad record"); /* not filtered: written */
    char *out = all(f);
    CHECK_INT_EQ(count(out, "alice~a cannot be restored"), 2);
    CHECK_INT_EQ(count(out, "bob~b runs opportunistically"), 1);
    CHECK_INT_EQ(count(out, "carol~c cannot be restored"), 1);
    CHECK_INT_EQ(count(out, "restored 2 jobs"), 1);
    CHECK_INT_EQ(count(out, "scan jobs: timed out"), 4);
    log_once_free(o);
    log_set_file(NULL);
    fclose(f);
}

TEST(another_filter_has_its_own_memory)
{
    FILE *f = tmpfile();
    log_set_file(f);
    log_once_t *a = log_once_new(), *b = log_once_new();
    log_once_set(a);
    rebuild(0);
    log_once_set(b);
    rebuild(0);
    log_once_set(NULL);
    CHECK_INT_EQ(count(all(f), "bob~b runs opportunistically"), 2);
    log_once_free(a);
    log_once_free(b);
    log_set_file(NULL);
    fclose(f);
}

RUN_TESTS(a_filtered_thread_writes_each_warning_once_errors_always,
          another_filter_has_its_own_memory)
