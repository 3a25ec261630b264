/* err.c - tables behind err.h, and the pai_error_t helpers. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static const struct {
    const char *code;
    int status;
    const char *msg;
} err_table[] = {
#define PAI_ERR_ROW(name, code, status, msg) {code, status, msg},
    PAI_ERR_MAP(PAI_ERR_ROW)
#undef PAI_ERR_ROW
};

static pai_err_t err_clamp(pai_err_t e)
{
    return ((unsigned)e < PAI_E__COUNT) ? e : PAI_E_INTERNAL;
}

const char *pai_err_code(pai_err_t e)
{
    return err_table[err_clamp(e)].code;
}

int pai_err_status(pai_err_t e)
{
    return err_table[err_clamp(e)].status;
}

const char *pai_err_msg(pai_err_t e)
{
    return err_table[err_clamp(e)].msg;
}

pai_err_t pai_error_set(pai_error_t *e, pai_err_t code, const char *fmt, ...)
{
    if (!e)
        return code;
    pai_error_details(e, NULL);
    e->code = code;
    e->msg[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void pai_error_details(pai_error_t *e, json_t *details)
{
    if (!e) {
        json_decref(details);
        return;
    }
    json_decref(e->details);
    e->details = details;
}

const char *pai_error_msg(const pai_error_t *e)
{
    return e && e->msg[0] ? e->msg : pai_err_msg(e ? e->code : PAI_E_INTERNAL);
}

void pai_error_free(pai_error_t *e)
{
    if (!e)
        return;
    json_decref(e->details);
    e->details = NULL;
    e->code = PAI_OK;
    e->msg[0] = '\0';
}
