/*
 * env.h - a task's OpenPAI environment (PAI_* variables, visible GPUs),
 * computed from the placement of every task of the job's current attempt.
 */
#ifndef PAI_ENGINE_ENV_H
#define PAI_ENGINE_ENV_H

#include <jansson.h>

#include "engine/lifecycle.h"

#define PAI_ENV_NAME_MAX 256

/* {"NAME": "value", ...} for task (role, index) of the current attempt;
 * NULL when there is no such task.  New reference. */
json_t *engine_task_env(const lc_job_t *job, int role, int index);

#endif
