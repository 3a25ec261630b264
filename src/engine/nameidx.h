/*
 * nameidx.h - the published jobs in name order, for the job list ordered
 * by jobName (joblist.c), as table.list keeps them in submission order.
 *
 * Order: a job's name after "user~" (bytewise, as strcmp), then its store
 * seq (submission order) among equal names: the order the list answers
 * with ASC, reversed for DESC.  A job's name and seq never change while it
 * is in the table, so its place does not either.
 *
 * A sorted sequence of blocks of fewer than NAMEIDX_BLOCK pointers: adding
 * or removing a job moves at most one block's pointers and the block
 * table (blocks stay a quarter full or more, but next to a fuller one),
 * after two binary searches; a walk from either end costs a step per job
 * and no comparison.
 * Not thread-safe: the engine's mu guards it (table.c, joblist.c).
 */
#ifndef PAI_ENGINE_NAMEIDX_H
#define PAI_ENGINE_NAMEIDX_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/lifecycle.h"

#define NAMEIDX_BLOCK 256

typedef struct nameidx nameidx_t;

nameidx_t *nameidx_new(void);
/* Frees the index, not the jobs. */
void nameidx_free(nameidx_t *x);
/* Add job (not in x; its name and seq set). */
void nameidx_add(nameidx_t *x, lc_job_t *job);
/* Remove job; false when it is not in x. */
bool nameidx_del(nameidx_t *x, const lc_job_t *job);
size_t nameidx_count(const nameidx_t *x);

/* A walk in name order (desc: from the end).  Start with it = {0}; each
 * call returns the next job, NULL after the last; x must not change
 * meanwhile. */
typedef struct {
    size_t block, pos;
} nameidx_it_t;
lc_job_t *nameidx_walk(const nameidx_t *x, nameidx_it_t *it, bool desc);

/* The order itself: < 0, 0 (the same job) or > 0. */
int nameidx_cmp(const lc_job_t *a, const lc_job_t *b);

#endif
