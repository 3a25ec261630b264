/* buf.c - see buf.h. */
#include "common/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

void buf_init(buf_t *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

void buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

static pai_err_t buf_reserve(buf_t *b, size_t extra)
{
    if (extra > b->cap || b->len > b->cap - extra)
        return PAI_E_TOO_LARGE;
    size_t need = b->len + extra + 1;
    if (need <= b->alloc)
        return PAI_OK;
    size_t n = b->alloc ? b->alloc : 64;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    b->data = xrealloc(b->data, n);
    b->alloc = n;
    return PAI_OK;
}

pai_err_t buf_append(buf_t *b, const void *data, size_t len)
{
    pai_err_t rc = buf_reserve(b, len);
    if (rc != PAI_OK)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return PAI_OK;
}

pai_err_t buf_puts(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

pai_err_t buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return PAI_E_INVALID;
    pai_err_t rc = buf_reserve(b, (size_t)n);
    if (rc != PAI_OK)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return PAI_OK;
}

pai_err_t buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pai_err_t rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *buf_take(buf_t *b)
{
    char *p = b->data;
    if (!p)
        p = xcalloc(1, 1);
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}

const char *buf_str(const buf_t *b)
{
    return b->data ? b->data : "";
}

pai_err_t buf_read_file(buf_t *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? PAI_E_NOT_FOUND : PAI_E_IO;
    char chunk[65536];
    pai_err_t rc = PAI_OK;
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = buf_append(b, chunk, n);
        if (rc != PAI_OK)
            break;
    }
    if (rc == PAI_OK && ferror(f))
        rc = PAI_E_IO;
    fclose(f);
    return rc;
}
