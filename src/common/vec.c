/*
 * vec.c - see vec.h.
 */
#include "common/vec.h"

#include <stdint.h>
#include <string.h>

#include "common/util.h"

void vec_xreserve(void *arrp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap > SIZE_MAX / 2 ? SIZE_MAX : *cap * 2;
    if (ncap < VEC_MIN_CAP)
        ncap = VEC_MIN_CAP;
    if (ncap < need)
        ncap = need;
    if (elem == 0 || ncap > SIZE_MAX / elem)
        util_oom(); /* no memory holds it */
    /* The pointer is read and written through memcpy: arrp is the address
     * of a T *, which must not be accessed as a void *. */
    void *p;
    memcpy(&p, arrp, sizeof(p));
    p = xrealloc(p, ncap * elem);
    memcpy(arrp, &p, sizeof(p));
    *cap = ncap;
}
