/*
 * buf.h - a growable byte buffer with a hard cap fixed at creation.
 *
 * Every buffer filled from the network, a file or a child process is a
 * buf_t whose cap comes from common/limits.h.  Appending past the cap fails
 * with PAI_E_TOO_LARGE and leaves the buffer unchanged.  The data is always
 * NUL-terminated (the terminator is not counted in len).
 */
#ifndef PAI_COMMON_BUF_H
#define PAI_COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "common/err.h"

typedef struct {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t alloc;
    size_t cap; /* maximum len */
} buf_t;

void buf_init(buf_t *b, size_t cap);
void buf_free(buf_t *b);
void buf_reset(buf_t *b);
PAI_MUST_CHECK pai_err_t buf_append(buf_t *b, const void *data, size_t len);
PAI_MUST_CHECK pai_err_t buf_puts(buf_t *b, const char *s);
PAI_MUST_CHECK pai_err_t buf_printf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
PAI_MUST_CHECK pai_err_t buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* Give the data to the caller (free() it); the buffer is left empty. */
char *buf_take(buf_t *b);
/* The data as a C string, "" when empty.  Valid until the next change. */
const char *buf_str(const buf_t *b);

/* Read a whole file into b, bounded by b's cap. */
PAI_MUST_CHECK pai_err_t buf_read_file(buf_t *b, const char *path);

#endif
