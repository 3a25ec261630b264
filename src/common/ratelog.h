/*
 * ratelog.h - a log sink for chatty libraries (libmicrohttpd's error log):
 * every message goes out at debug level, and at most one warn line per
 * interval, which counts the messages folded since the last one.  So clients
 * that provoke a message per connection (a flood of half-sent requests)
 * cannot flood the log or the disk under it.
 *
 *   static ratelog_t rl;  ratelog_init(&rl, "http", 10000);
 *   MHD_OPTION_EXTERNAL_LOGGER, ratelog_v, &rl
 */
#ifndef PAI_COMMON_RATELOG_H
#define PAI_COMMON_RATELOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>

typedef struct {
    const char *who; /* prefix of every line (not owned) */
    int64_t interval_ms;
    pthread_mutex_t mu;
    int64_t last_ms; /* monotonic time of the last warn line; 0: none yet */
    uint64_t folded; /* messages since then, not logged at warn */
} ratelog_t;

void ratelog_init(ratelog_t *rl, const char *who, int64_t interval_ms);
void ratelog_destroy(ratelog_t *rl);
/* Log one message (printf format); cls is the ratelog_t.  Thread-safe. */
void ratelog_v(void *cls, const char *fmt, va_list ap);

#endif
