/*
 * env.h - a task's OpenPAI environment (PAI_* variables, visible GPUs),
 * computed from the placement of every task of the job's current attempt.
 */
#ifndef PAI_ENGINE_ENV_H
#define PAI_ENGINE_ENV_H

#include <jansson.h>

#include "engine/lifecycle.h"
#include "wire/agentwire.h"

/* {"NAME": "value", ...} for task (role, index) of the current attempt;
 * NULL when there is no such task.  New reference. */
json_t *engine_task_env(const lc_job_t *job, int role, int index);
/* The same variables as *n name/value pairs in the order they are set,
 * each NUL-terminated, in one JSON string (new reference; its value is the
 * pairs: json_string_value and json_string_length): no object built, a
 * name set twice (two roles can make one) listed twice, in order, for a
 * reader that keeps the first place and the last value as the object
 * does (the sync answer's env object, agentwire.c).  NULL when there is no
 * such task. */
json_t *engine_task_env_pairs(const lc_job_t *job, int role, int index, size_t *n);
/* What the variables are made of (wire/agentwire_env.c), for a version 5
 * answer; NULL when there is no such task.  agentwire_jobenv_free() it. */
agentwire_jobenv_t *engine_task_jobenv(const lc_job_t *job, int role, int index);

#endif
