/* test_ratelog.c - a chatty library's messages fold into one warn line per interval. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/ratelog.h"
#include "test.h"

static void say(ratelog_t *rl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ratelog_v(rl, fmt, ap);
    va_end(ap);
}

/* Lines written to the log since the last call, read back from f. */
static char *drain(FILE *f)
{
    static char buf[8192];
    size_t n = (size_t)ftell(f);
    rewind(f);
    n = fread(buf, 1, n < sizeof(buf) - 1 ? n : sizeof(buf) - 1, f);
    buf[n] = '\0';
    rewind(f);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

TEST(a_burst_of_messages_makes_one_warn_line_and_the_next_counts_them)
{
    FILE *f = tmpfile();
    log_set_file(f);
    log_set_level(LOG_WARN);
    ratelog_t rl;
    ratelog_init(&rl, "http", 60000);
    for (int i = 0; i < 100; i++)
        say(&rl, "Error processing request %d.\n", i);
    char *out = drain(f);
    CHECK_INT_EQ(count_lines(out), 1);
    CHECK_STR_CONTAINS(out, "http: Error processing request 0.");
    rl.last_ms -= 60000; /* the interval has passed */
    say(&rl, "again");
    out = drain(f);
    CHECK_STR_CONTAINS(out, "http: again (and 99 more messages since the last of these)");
    ratelog_destroy(&rl);
    log_set_file(NULL);
    log_set_level(LOG_INFO);
    fclose(f);
}

RUN_TESTS(a_burst_of_messages_makes_one_warn_line_and_the_next_counts_them)
