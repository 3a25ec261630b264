/*
 * exitspec.h - OpenPAI's job exit-code table (what a task's exit code means).
 *
 * The table is OpenPAI's k8s-job-exit-spec (MIT, (c) Microsoft Corporation),
 * embedded in the binary from src/protocol/exit-spec.yaml at build time and
 * parsed once on first use (thread-safe).  Nothing is read at run time.
 *
 * Codes: 0 success; negative codes are platform-issued (node lost, OOM,
 * stop requested...); 128+N are signals; 220..255 are recognised user or
 * runtime failures.  Codes not in the table fall back to -8000 (undefined
 * negative) or 256 (undefined positive): exitspec_for() does that, and the
 * caller keeps reporting the raw code as OpenPAI does.
 */
#ifndef PAI_PROTOCOL_EXITSPEC_H
#define PAI_PROTOCOL_EXITSPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "protocol/exitcodes.h"

typedef enum {
    EXIT_TYPE_USER_SUCCESS,
    EXIT_TYPE_USER_STOP,
    EXIT_TYPE_USER_FAILURE,
    EXIT_TYPE_PLATFORM_FAILURE,
    EXIT_TYPE_RESOURCE_ALLOCATION_TIMEOUT,
    EXIT_TYPE_UNKNOWN_FAILURE,
} exit_type_t;

typedef enum {
    EXIT_BEHAVIOR_TRANSIENT,
    EXIT_BEHAVIOR_TRANSIENT_CONFLICT,
    EXIT_BEHAVIOR_PERMANENT,
    EXIT_BEHAVIOR_UNKNOWN,
} exit_behavior_t;

typedef enum {
    EXIT_REACTION_ALWAYS_RETRY,         /* retry, not counted against the retry count */
    EXIT_REACTION_ALWAYS_BACKOFF_RETRY, /* same, after a back-off */
    EXIT_REACTION_RETRY_TO_MAX,         /* retry while retries are left (counted) */
    EXIT_REACTION_NEVER_RETRY,
} exit_reaction_t;

typedef struct {
    int code;
    const char *phrase; /* "PodNodeLost" */
    const char *issuer; /* "PAI_K8S", ... or NULL */
    const char *causer; /* or NULL */
    exit_type_t type;
    const char *stage; /* "RUNNING", ... or NULL */
    exit_behavior_t behavior;
    exit_reaction_t reaction;
    const char *reason;       /* or NULL */
    const char *const *repro; /* n_repro strings */
    size_t n_repro;
    const char *const *solution; /* n_solution strings */
    size_t n_solution;
} exitspec_t;

/* The entry for exactly this code, or NULL. */
const exitspec_t *exitspec_lookup(int code);
/* The entry for this code, or the fallback (-8000 for negative codes, 256
 * for positive ones).  Never NULL. */
const exitspec_t *exitspec_for(int code);
size_t exitspec_count(void);
const exitspec_t *exitspec_at(size_t i);

/* Whether a task that ended with this code should be retried given the
 * retries it has used and its retry limit (taskRetryCount/jobRetryCount):
 * ALWAYS_* retry, RETRY_TO_MAX retries while used < max, NEVER does not.
 * Code 0 never retries. */
bool exitspec_should_retry(int code, int used, int max);
/* Whether a retry for this code counts against the retry limit
 * (only RETRY_TO_MAX does). */
bool exitspec_retry_counts(int code);

const char *exit_type_name(exit_type_t t);         /* "USER_FAILURE" */
const char *exit_behavior_name(exit_behavior_t b); /* "TRANSIENT" */
const char *exit_reaction_name(exit_reaction_t r); /* "ALWAYS_RETRY" */

/* The entry as OpenPAI's REST API shows it in a job's `exitSpec`:
 * {code, phrase, issuer, causer, type, stage, behavior, reaction, reason,
 *  repro, solution}.  New reference. */
json_t *exitspec_to_json(const exitspec_t *e);

#endif
