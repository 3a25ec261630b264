/*
 * vec.h - growing a plain array: the one `if (n == cap) { cap *= 2; realloc }`.
 *
 * An array is a pointer and a size_t capacity kept by the caller beside its
 * count.  VEC_XRESERVE makes room for `need` elements, doubling the capacity
 * (at least VEC_MIN_CAP, at least need):
 *
 *   VEC_XRESERVE(s->queue, s->cap_queue, (size_t)s->n_queue + 1);
 *
 * Like every allocation in pai (common/util.h, "Memory" in
 * docs/architecture.md) it aborts when memory runs out, and a size that
 * would overflow size_t is treated the same way.
 */
#ifndef PAI_COMMON_VEC_H
#define PAI_COMMON_VEC_H

#include <stddef.h>

#include "common/err.h"

#define VEC_MIN_CAP 8

/* *arrp is a T * (passed as its address), *cap its capacity in elements of
 * elem bytes; both change when the array grows. */
void vec_xreserve(void *arrp, size_t *cap, size_t need, size_t elem);

#define VEC_XRESERVE(arr, cap, need) vec_xreserve(&(arr), &(cap), (need), sizeof(*(arr)))

#endif
