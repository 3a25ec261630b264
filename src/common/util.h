/*
 * util.h - small string, number and time helpers used everywhere.
 * These replace the banned libc calls (strcpy, atoi, sprintf...).
 */
#ifndef PAI_COMMON_UTIL_H
#define PAI_COMMON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Copy src into dst of size n, always NUL-terminated; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t n);
/* malloc'ed printf; NULL on allocation failure. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* strdup that aborts on allocation failure (for tiny internal strings). */
char *xstrdup(const char *s);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Strict decimal parse of the whole string into [min, max]. */
PAI_MUST_CHECK pai_err_t str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out);
PAI_MUST_CHECK pai_err_t str_to_int(const char *s, int min, int max, int *out);
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* True when s matches ^[A-Za-z0-9_-]+$ (job, user and group names). */
bool str_is_name(const char *s);

/* Monotonic milliseconds / microseconds; wall-clock milliseconds since the epoch. */
int64_t time_mono_ms(void);
int64_t time_mono_us(void);
int64_t time_wall_ms(void);

/* Free *pp and set it to NULL. */
#define FREE_NULL(pp)                                                                              \
    do {                                                                                           \
        free(*(pp));                                                                               \
        *(pp) = NULL;                                                                              \
    } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
