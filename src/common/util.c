/* util.c - see util.h. */
#include "common/util.h"

#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "common/jtext.h"
#include "common/log.h"

size_t str_copy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);
    if (n) {
        size_t c = len < n - 1 ? len : n - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return len;
}

void util_oom(void)
{
    fputs("pai: out of memory\n", stderr);
    abort();
}

char *str_printf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        util_oom(); /* vasprintf fails only for memory (or an invalid format) */
    return out;
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        util_oom();
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (!p)
        util_oom();
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s ? s : "", n);
    if (!p)
        util_oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        util_oom();
    return p;
}

void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        util_oom();
    return q;
}

void util_alloc_init(void)
{
    json_set_alloc_funcs(xmalloc, free);
}

json_t *xjson_pack(const char *fmt, ...)
{
    json_error_t e;
    va_list ap;
    va_start(ap, fmt);
    json_t *o = json_vpack_ex(&e, 0, fmt, ap);
    va_end(ap);
    if (!o) {
        fprintf(stderr, "pai: json_pack(\"%s\"): %s at %d\n", fmt, e.text, e.position);
        abort();
    }
    return o;
}

char *xjson_dumps(const json_t *j, size_t flags)
{
    /* compact: the same bytes without jansson's printf per integer and
     * loop check per container (common/jtext.h) */
    char *s = (flags & ~(size_t)JSON_ENCODE_ANY) != JSON_COMPACT ? json_dumps(j, flags)
              : flags & JSON_ENCODE_ANY                          ? jtext_dumps_any(j)
                                                                 : jtext_dumps(j);
    if (!s) {
        fprintf(stderr, "pai: json_dumps: %s cannot be encoded\n",
                j ? "a JSON value of this type" : "NULL");
        abort();
    }
    return s;
}

pai_err_t str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return PAI_E_INVALID;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return PAI_E_INVALID;
    *out = v;
    return PAI_OK;
}

pai_err_t str_to_int(const char *s, int min, int max, int *out)
{
    int64_t v;
    pai_err_t rc = str_to_i64(s, min, max, &v);
    if (rc == PAI_OK)
        *out = (int)v;
    return rc;
}

bool str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

bool str_is_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int64_t time_mono_ms(void)
{
    return time_mono_us() / 1000;
}

int64_t time_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t time_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec time_after_ms(clockid_t clock, int64_t ms)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool sched_batched; /* copied into the children: sched_child_default */

bool sched_daemon_batch(void)
{
    const char *v = getenv("PAI_SCHED");
    struct sched_param p = {0};
    if (v && strcmp(v, "normal") == 0)
        return false;
    sched_batched = sched_setscheduler(0, SCHED_BATCH, &p) == 0;
    return sched_batched;
}

/* The timer slack before timer_slack_daemon changed it (0: unchanged). */
static unsigned long slack_was_ns;

int timer_slack_daemon(void)
{
    const char *v = getenv("PAI_TIMER_SLACK_US");
    int us = TIMER_SLACK_DAEMON_US;
    if (v && str_to_int(v, 0, TIMER_SLACK_MAX_US, &us) != PAI_OK) {
        log_warn("PAI_TIMER_SLACK_US is not a number of microseconds from 0 to %d: "
                 "the timer slack is left as it was",
                 TIMER_SLACK_MAX_US);
        return -1;
    }
    int was = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (us == 0 || was <= 0)
        return 0;
    if (prctl(PR_SET_TIMERSLACK, (unsigned long)us * 1000ul, 0, 0, 0) != 0)
        return 0;
    slack_was_ns = (unsigned long)was;
    return us;
}

void timer_slack_undo(void)
{
    if (slack_was_ns)
        (void)prctl(PR_SET_TIMERSLACK, slack_was_ns, 0, 0, 0);
}

void sched_child_default(void)
{
    struct sched_param p = {0};
    if (sched_batched)
        (void)sched_setscheduler(0, SCHED_OTHER, &p);
    timer_slack_undo();
}
