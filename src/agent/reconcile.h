/*
 * reconcile.h - the pure heart of the agent: desired set + actual set ->
 * actions.  No I/O, no clock, no globals (unit-tested alone).
 *
 * Rules (docs/agent-protocol.md "Agent rules"):
 *   - a desired attempt that this node never started is started;
 *   - a desired attempt the node knows (running, exited, acked tombstone)
 *     is never started again: "never twice";
 *   - an active attempt (starting/running) that is not desired is stopped,
 *     once (an attempt already being stopped is left to its grace timer).
 */
#ifndef PAI_AGENT_RECONCILE_H
#define PAI_AGENT_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    RC_ACTIVE = 0, /* starting or running */
    RC_STOPPING,   /* active, a stop was already sent */
    RC_DONE,       /* exited / failed to start (reported or acked) */
} rc_phase_t;

typedef struct {
    const char *id;
    rc_phase_t phase;
} rc_actual_t;

typedef enum { RC_START, RC_STOP } rc_kind_t;

typedef struct {
    rc_kind_t kind;
    size_t index; /* START: index into desired; STOP: index into actual */
} rc_action_t;

/* Compute the actions; writes at most nd + na of them into out (which
 * must have room for that many) and returns how many. */
size_t reconcile(const char *const *desired, size_t nd, const rc_actual_t *actual, size_t na,
                 rc_action_t *out);

#endif
