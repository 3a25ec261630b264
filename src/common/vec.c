/*
 * vec.c - see vec.h.
 */
#include "common/vec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pai_err_t vec_reserve(void *arrp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return PAI_OK;
    size_t ncap = *cap > SIZE_MAX / 2 ? SIZE_MAX : *cap * 2;
    if (ncap < VEC_MIN_CAP)
        ncap = VEC_MIN_CAP;
    if (ncap < need)
        ncap = need;
    if (elem == 0 || ncap > SIZE_MAX / elem)
        return PAI_E_NOMEM;
    /* The pointer is read and written through memcpy: arrp is the address
     * of a T *, which must not be accessed as a void *. */
    void *p;
    memcpy(&p, arrp, sizeof(p));
    void *q = realloc(p, ncap * elem);
    if (!q)
        return PAI_E_NOMEM;
    memcpy(arrp, &q, sizeof(q));
    *cap = ncap;
    return PAI_OK;
}

void vec_xreserve(void *arrp, size_t *cap, size_t need, size_t elem)
{
    if (vec_reserve(arrp, cap, need, elem) != PAI_OK) {
        fputs("pai: out of memory\n", stderr);
        abort();
    }
}
