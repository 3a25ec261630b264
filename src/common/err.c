/* err.c - tables behind err.h. */
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
