/*
 * log.h - level-gated logging, one line per event.
 *
 * The level is checked before the arguments are formatted.  Objects are
 * named the same way everywhere: job=alice~train1 task=worker/0 node=n3.
 */
#ifndef PAI_COMMON_LOG_H
#define PAI_COMMON_LOG_H

#include <stdio.h>

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level_t;

extern log_level_t log_current_level;

/* Parse "error"/"warn"/"info"/"debug"; returns -1 when unknown. */
int log_level_parse(const char *s);
void log_set_level(log_level_t lvl);
/* Send log lines to f (default stderr).  Not owned. */
void log_set_file(FILE *f);
void log_write(log_level_t lvl, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Lines written once: while a thread has a filter set (log_once_set), a
 * warn, info or debug line it writes that it already wrote under the same
 * filter (same source line, same text) is dropped; errors always pass.  For
 * work that is redone again and again over the same data (a standby's
 * rebuild of its view, server/standby.c).  Remembers up to 65,536 lines;
 * past that, lines pass again. */
typedef struct log_once log_once_t;
log_once_t *log_once_new(void);
void log_once_free(log_once_t *o);
/* The calling thread's filter from now on (NULL: none). */
void log_once_set(log_once_t *o);

#define pai_log(lvl, ...)                                                                          \
    do {                                                                                           \
        if ((lvl) <= log_current_level)                                                            \
            log_write((lvl), __FILE__, __LINE__, __VA_ARGS__);                                     \
    } while (0)
#define log_error(...) pai_log(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  pai_log(LOG_WARN, __VA_ARGS__)
#define log_info(...)  pai_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) pai_log(LOG_DEBUG, __VA_ARGS__)

#endif
