/* test_runtime_exitline.c - an attempt's exit line read by hand
 * (rt_exit_parse) the way the sscanf it replaced read it. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "runtime/monitor_int.h"
#include "test.h"

/* The sscanf reading it replaced (src/runtime/monitor.c before). */
static bool ref_parse(const char *fields, rt_result_t *res)
{
    char kind[16];
    int code, sig, oom, err = 1;
    long long st, fin;
    int got =
        sscanf(fields, "%15s %d %d %d %lld %lld %d", kind, &code, &sig, &oom, &st, &fin, &err);
    if (got != 6 && got != 7)
        return false;
    memset(res, 0, sizeof(*res));
    res->state = strcmp(kind, "failed") == 0 ? RT_FAILED_TO_START : RT_EXITED;
    res->exit_code = code;
    res->signal = sig;
    res->oom = oom != 0;
    res->started_ms = st;
    res->finished_ms = fin;
    res->quiet = err == 0;
    return true;
}

static int same(const char *line)
{
    rt_result_t a, b;
    memset(&a, 0x5a, sizeof(a));
    memset(&b, 0x5a, sizeof(b));
    bool ra = rt_exit_parse(line, &a), rb = ref_parse(line, &b);
    if (ra != rb) {
        fprintf(stderr, "differs on [%s]: %d against %d\n", line, ra, rb);
        return 0;
    }
    if (ra && (a.state != b.state || a.exit_code != b.exit_code || a.signal != b.signal ||
               a.oom != b.oom || a.started_ms != b.started_ms || a.finished_ms != b.finished_ms ||
               a.quiet != b.quiet)) {
        fprintf(stderr, "fields differ on [%s]\n", line);
        return 0;
    }
    return 1;
}

TEST(exit_lines_read_as_before)
{
    static const char *const lines[] = {
        "exited 0 0 0 1700000000000 1700000000005 0\n",
        "exited 0 0 0 1700000000000 1700000000005 1\n",
        "exited 0 0 0 1700000000000 1700000000005\n", /* an older monitor's */
        "exited 137 9 1 1 2 1\n",
        "failed 127 0 0 10 20 1\n",
        "exited -1 0 0 -5 -6 0\n",
        "exited +3 0 0 5 6 0\n",
        "exited 3 0 0 5 6 0 extra words\n",
        "  exited\t3  0 0 5 6   0",
        "exited 3 0 0 5 6 x\n", /* the optional field unreadable: absent */
        "exited 3 0 0 5\n",     /* cut */
        "exited 3 0 0 5 x 0\n",
        "exited\n",
        "",
        "   ",
        "exited 3 - 0 5 6 0",
        "exited 3 + 0 5 6 0",
        "0123456789abcde 1 2 3 4 5 6\n",  /* a 15-byte kind */
        "failedfailedfail 1 2 3 4 5 6\n", /* 16 bytes: sscanf reads 15, then no number */
        "0123456789abcde7 1 2 3 4 5\n",   /* 16 bytes: the 16th the first number */
        "failed1 2 3 4 5 6 7\n",
        "exited 2147483647 -2147483648 0 9223372036854775807 -9223372036854775807 0\n",
        "exited 0 0 0 0 0 -0\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        CHECK(same(lines[i]));
    rt_result_t r;
    CHECK(rt_exit_parse("failed 127 0 0 10 20 1\n", &r));
    CHECK(r.state == RT_FAILED_TO_START);
    CHECK_INT_EQ(r.exit_code, 127);
    CHECK(rt_exit_parse("exited 137 9 1 100 250 0\n", &r));
    CHECK(r.state == RT_EXITED && r.signal == 9 && r.oom && r.quiet);
    CHECK(r.started_ms == 100 && r.finished_ms == 250);
    CHECK(rt_exit_parse("exited 1 0 0 100 250\n", &r) && !r.quiet);
    CHECK(!rt_exit_parse("exited 1 0 0 100\n", &r));
    /* out of an int's range: refused (sscanf's result there is undefined) */
    CHECK(!rt_exit_parse("exited 2147483648 0 0 1 2 0\n", &r));
    CHECK(!rt_exit_parse("exited 0 0 0 1 99999999999999999999 0\n", &r));
}

/* Random lines made of the exit line's alphabet read the same. */
TEST(random_lines_read_as_before)
{
    static const char alpha[] = "0123456789 -+\texitedfailx\n";
    unsigned seed = 12345;
    char line[64];
    int bad = 0;
    for (int i = 0; i < 200000 && bad < 5; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % (sizeof(line) - 1);
        size_t k = 0;
        if (seed & 1) { /* a real head, the tail random */
            memcpy(line, "exited 1 2 3 ", 13);
            k = n > 13 ? 13 : n;
        }
        for (; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            line[k] = alpha[(seed >> 16) % (sizeof(alpha) - 1)];
        }
        line[n] = '\0';
        /* keep clear of numbers past an int, where sscanf is undefined */
        bool longnum = false;
        for (size_t j = 0, run = 0; j < n; j++) {
            run = line[j] >= '0' && line[j] <= '9' ? run + 1 : 0;
            longnum |= run > 9;
        }
        if (!longnum)
            bad += !same(line);
    }
    CHECK_INT_EQ(bad, 0);
}

RUN_TESTS(exit_lines_read_as_before, random_lines_read_as_before)
