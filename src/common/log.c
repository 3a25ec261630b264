/* log.c - see log.h.  Thread-safe: each line is written with one call. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

log_level_t log_current_level = LOG_INFO;
static FILE *log_file;
static const char *const level_names[] = {
    [LOG_ERROR] = "error",
    [LOG_WARN] = "warn",
    [LOG_INFO] = "info",
    [LOG_DEBUG] = "debug",
};

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

void log_set_level(log_level_t lvl)
{
    log_current_level = lvl;
}

void log_set_file(FILE *f)
{
    log_file = f;
}

void log_write(log_level_t lvl, const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    char ts[32];
    struct timespec now;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    fprintf(log_file ? log_file : stderr, "%s.%03ldZ %-5s %s:%d %s\n", ts, now.tv_nsec / 1000000,
            level_names[lvl], base ? base + 1 : file, line, msg);
}
