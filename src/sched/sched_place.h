/*
 * sched_place.h - one placement attempt (internal to src/sched/).
 */
#ifndef PAI_SCHED_SCHED_PLACE_H
#define PAI_SCHED_SCHED_PLACE_H

#include "sched/sched_int.h"

#define PAI_MAX_TASKS_SMALL 256

/* Add nodes [lo, hi) (GPU positions mask of each) to the attempt's domain. */
pai_err_t sched_attempt_add_range(attempt_t *at, int lo, int hi, uint64_t mask);
/* Add physical cell c's nodes and GPUs to the attempt's domain. */
pai_err_t sched_attempt_add_cell(const sched_t *s, attempt_t *at, int c);
/* Place the job's unbound tasks (all or none for a gang); returns the count. */
int sched_attempt_place(sched_t *s, attempt_t *at);
/* Collect the jobs owning the GPUs the placed (not yet bound) tasks took. */
pai_err_t sched_attempt_victims(sched_t *s, attempt_t *at);
void sched_attempt_free(attempt_t *at);

#endif
