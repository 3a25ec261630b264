/* log.c - see log.h.  Thread-safe: each line is written with one call. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
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

/* ---- lines written once ---------------------------------------------------- */

#define ONCE_SLOTS (1u << 17) /* open addressing, kept at most half full */
#define ONCE_MAX   (ONCE_SLOTS / 2)

struct log_once {
    uint64_t *slot; /* a line's hash (never 0); 0: empty */
    size_t n;
};

static _Thread_local log_once_t *once_cur;

log_once_t *log_once_new(void)
{
    log_once_t *o = calloc(1, sizeof(*o));
    if (o && !(o->slot = calloc(ONCE_SLOTS, sizeof(*o->slot)))) {
        free(o);
        o = NULL;
    }
    return o;
}

void log_once_free(log_once_t *o)
{
    if (!o)
        return;
    free(o->slot);
    free(o);
}

void log_once_set(log_once_t *o)
{
    once_cur = o;
}

/* FNV-1a over the source line and the text. */
static uint64_t line_hash(const char *file, int line, const char *msg)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(unsigned)line;
    for (const char *p = file; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    for (const char *p = msg; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h ? h : 1;
}

/* True when o saw this line already (and remembers it otherwise). */
static bool once_seen(log_once_t *o, uint64_t h)
{
    size_t i = (size_t)h & (ONCE_SLOTS - 1);
    for (; o->slot[i]; i = (i + 1) & (ONCE_SLOTS - 1))
        if (o->slot[i] == h)
            return true;
    if (o->n < ONCE_MAX) {
        o->slot[i] = h;
        o->n++;
    }
    return false;
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
    if (once_cur && lvl != LOG_ERROR && once_seen(once_cur, line_hash(file, line, msg)))
        return;
    const char *base = strrchr(file, '/');
    fprintf(log_file ? log_file : stderr, "%s.%03ldZ %-5s %s:%d %s\n", ts, now.tv_nsec / 1000000,
            level_names[lvl], base ? base + 1 : file, line, msg);
}
