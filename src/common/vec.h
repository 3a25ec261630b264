/*
 * vec.h - growing a plain array: the one `if (n == cap) { cap *= 2; realloc }`.
 *
 * An array is a pointer and a size_t capacity kept by the caller beside its
 * count.  VEC_RESERVE makes room for `need` elements, doubling the capacity
 * (at least VEC_MIN_CAP, at least need); the pointer and the capacity change
 * only on success.  Two allocation policies, as the callers have them:
 *
 *   if (VEC_RESERVE(s->queue, s->cap_queue, (size_t)s->n_queue + 1) != PAI_OK)
 *       return PAI_E_NOMEM;                 (scheduler, YAML tree: report)
 *   VEC_XRESERVE(j->list, j->caplist, j->nlist + 1);   (daemons: abort)
 *
 * A size that would overflow size_t is an allocation failure.
 */
#ifndef PAI_COMMON_VEC_H
#define PAI_COMMON_VEC_H

#include <stddef.h>

#include "common/err.h"

#define VEC_MIN_CAP 8

/* *arrp is a T * (passed as its address), *cap its capacity in elements of
 * elem bytes.  PAI_E_NOMEM leaves both unchanged. */
PAI_MUST_CHECK pai_err_t vec_reserve(void *arrp, size_t *cap, size_t need, size_t elem);
/* The same, aborting the process when memory runs out. */
void vec_xreserve(void *arrp, size_t *cap, size_t need, size_t elem);

#define VEC_RESERVE(arr, cap, need)  vec_reserve(&(arr), &(cap), (need), sizeof(*(arr)))
#define VEC_XRESERVE(arr, cap, need) vec_xreserve(&(arr), &(cap), (need), sizeof(*(arr)))

#endif
