/*
 * lifecycle.h - the job and task state machines (FrameworkController
 * semantics), pure: no I/O, no locks, no globals.
 *
 * A job (lc_job_t) is a compact summary plus, while it is active, its
 * attempts (lc_attempt_t), each with one lc_task_t per task instance, each
 * with its task attempts (lc_task_attempt_t).  The server (engine.c)
 * owns the locking, the store and the agents; it feeds events in here and
 * acts on the effects that come back:
 *
 *   lc_attempt_begin   the scheduler placed every task (gang): a new job
 *                      attempt whose tasks are WAITING on their nodes
 *   lc_task_running    an agent reports a task attempt running
 *   lc_task_exited     an agent reports it exited (or the node was lost,
 *                      or the task was stopped): completion policy, task
 *                      retry, attempt completion, job retry
 *   lc_stop            executionType STOP
 *
 * Job states (OpenPAI):  WAITING -> RUNNING -> SUCCEEDED | FAILED
 *                        WAITING | RUNNING -> STOPPING -> STOPPED
 *                        RUNNING -> WAITING (a retry: a new attempt queued)
 * Task states:           WAITING -> RUNNING -> SUCCEEDED | FAILED | STOPPED
 *                        WAITING | RUNNING -> STOPPING -> STOPPED | FAILED ...
 * Every state change goes through lc_job_set_state / lc_task_set_state,
 * which check the transition against a table and log old -> new.
 */
#ifndef PAI_ENGINE_LIFECYCLE_H
#define PAI_ENGINE_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "protocol/exitcodes.h" /* the codes the lifecycle issues */

typedef enum {
    JOB_WAITING,
    JOB_RUNNING,
    JOB_STOPPING,
    JOB_STOPPED,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB__COUNT
} lc_job_state_t;

typedef enum {
    TASK_WAITING,
    TASK_RUNNING,
    TASK_STOPPING,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_STOPPED,
    TASK__COUNT
} lc_task_state_t;

/* How the exit-code table says to react to an exit code. */
typedef enum {
    LC_NEVER_RETRY,   /* permanent */
    LC_ALWAYS_RETRY,  /* transient: retried, not counted */
    LC_RETRY_TO_MAX,  /* counted against jobRetryCount / taskRetryCount */
    LC_BACKOFF_RETRY, /* transient with backoff */
} lc_reaction_t;

/* Maps an exit code to a reaction (the exit spec table, injected). */
typedef lc_reaction_t (*lc_reaction_fn)(int exit_code);

typedef struct {
    char *label;
    int count;
} lc_port_spec_t;

typedef struct {
    char *name;
    int instances;
    int gpu, cpu, mem_mb, shm_mb;
    int min_failed, min_succeeded; /* -1 disables */
    lc_port_spec_t *ports;
    int nports;
    char *command;    /* rendered commands (may hold secrets); NULL in compact form */
    char *image;      /* docker image uri or NULL */
    char *image_auth; /* registry auth, secrets resolved, as compact JSON or NULL;
                       * held like command (jobcmd record), never shown */
    char *mounts;     /* storage mounts [{source,target,readonly}] as compact
                       * JSON or NULL; held like command */
    char *sku;        /* hived skuType or NULL */
    char *pinned;     /* hived pinnedCellId or NULL */
    char *group;      /* hived affinityGroupName or NULL */
    char *within;     /* hived withinOneCell (a cell type) or NULL */
} lc_role_t;

typedef struct {
    int index;     /* task attempt index */
    uint8_t state; /* lc_task_state_t */
    bool has_exit;
    int exit_code;
    char *node; /* NULL until placed */
    char *cell; /* the scheduler's cell of the task (sched_task_bind_t.cell) or NULL: restored
                 * exactly after a restart */
    char *ip;
    uint64_t gpus; /* bitmask of the node's GPU indices */
    int *ports;    /* flat, in the role's port-label order */
    int nports;
    int64_t created_ms, launched_ms, completed_ms;
    char *diag;
    int64_t used_gpu_ms;   /* GPU-milliseconds used: the utilization its node reported
                            * for its GPUs, integrated over its syncs (stored) */
    int64_t util_at_ms;    /* engine: time of the last sync counted in used_gpu_ms (0: none) */
    int64_t idle_since_ms; /* engine: its GPUs under the idle threshold since (0: not idle) */
    uint8_t synced;        /* engine: state + 1 last seen by nodes_sync_job (0: never) */
    uint8_t durable;       /* engine: 0 new, 1 being stored, 2 in the store (may be sent) */
    bool sent;       /* engine: in a desired set answered to its node (or read from the store) */
    bool node_ended; /* engine: its node reported its end, so its removal from the node's
                      * desired set tells the node nothing (no seq bump, nodes.c) */
} lc_task_attempt_t;

typedef struct {
    int retries; /* task retries within this job attempt */
    int natts;
    lc_task_attempt_t *atts; /* history; the current one is the last */
} lc_task_t;

typedef struct {
    int index;
    uint8_t state; /* lc_job_state_t: RUNNING while running; final when done */
    bool completing;
    int64_t created_ms, launched_ms, completed_ms;
    bool has_exit;
    int exit_code;
    char *trigger_role;
    int trigger_index;
    char *trigger_msg;
    char *diag;
    lc_task_t **tasks; /* tasks[role][instance] */
} lc_attempt_t;

/* What a task attempt held and used, kept when a finished job's attempts
 * are compacted away (usage accounting, engine/usage.c). */
typedef struct {
    int64_t from_ms, to_ms; /* GPUs held from placement to completion */
    int64_t used_gpu_ms;
    int32_t gpus;
} lc_span_t;

/* What a job asked to be told about (engine/notices.c): events as bits
 * (1 << engine_note_kind_t) e-mailed to its owner and POSTed to url ("":
 * none); sent: the once-only events (waiting, idle) already handed off.
 * One allocation, owned by the job; NULL for the jobs that ask nothing. */
typedef struct lc_notify {
    uint8_t email, hook, sent;
    char url[];
} lc_notify_t;

typedef struct lc_job {
    /* Fields grouped by size so that 100,000 of these stay small. */
    char *name; /* "user~job" */
    char *vc;
    char **tags;
    lc_role_t *roles;
    lc_attempt_t *atts; /* NULL while never started / in compact form */
    lc_span_t *spans;   /* compact form: the GPU task attempts' usage (nspans) */
    char *waiting_reason;
    void *events;        /* engine's event list (events.c; engine_events_list_free) */
    lc_notify_t *notify; /* engine: notifications asked for, or NULL */
    void *list_row;      /* engine (joblist.c): its row as the last list saw it, or NULL */
    char *enc_static;    /* engine (codec_text.c): the record's parts that never change
                          * (name and VC, roles) as text, or NULL */
    int64_t seq;         /* submission order */
    int64_t submit_ms, launch_ms, complete_ms;
    int64_t retry_at_ms; /* next attempt not before (backoff) */
    int32_t retries;     /* job attempts retried (all reasons) */
    int32_t acc_retries; /* counted against jobRetryCount */
    int32_t job_retry_count, task_retry_count;
    int32_t task_uid; /* the owner's task uid offset at submission; -1: none */
    int exit_code;
    uint32_t total_tasks, total_gpus;
    uint32_t version; /* bumped on every change */
    /* engine (events.c): the next event number, the first not durable, the
     * first held in memory (those before are in the store only) */
    uint32_t ev_next, ev_clean, ev_base;
    int ntags, nroles, natts, nspans;
    uint16_t user_len;
    uint8_t state;
    uint8_t prio; /* priority class index, caller-defined */
    bool stop_requested;
    bool gang;
    bool has_exit;
    bool lazy; /* hivedScheduler.lazyPreemptionEnable */
    bool oppo; /* the running attempt lost its VC guarantee (a lazy preemption
                * downgraded it); kept across a restart */
    /* Owned by the engine (persist.c, dispatch.c), not by the lifecycle. */
    bool dirty;      /* to persist */
    bool pending;    /* reserved by a submission not yet committed */
    bool redirty;    /* changed while pending: dirty once published (persist.c) */
    bool compacted;  /* attempts live only in the store */
    bool ev_unknown; /* its record predates evNext: read its events at restore */
    bool queued;     /* in the scheduler's queue or bound there */
    bool refused;    /* REFUSEd by the scheduler */
} lc_job_t;

/* What the caller must do after an event. */
typedef struct {
    bool changed;         /* persist the job */
    bool desired_changed; /* some node's desired set changed (see nodes) */
    bool release;         /* the current attempt's resources are all free */
    bool requeue;         /* ask the scheduler for a new attempt (at retry_at_ms) */
    bool final;           /* the job reached a final state */
} lc_effects_t;

const char *lc_job_state_name(lc_job_state_t s);
const char *lc_task_state_name(lc_task_state_t s);
/* -1 when unknown. */
int lc_job_state_parse(const char *s);
bool lc_job_state_final(lc_job_state_t s);
bool lc_task_state_final(lc_task_state_t s);

/* Checked transitions; false (and an error log line) when not allowed. */
bool lc_job_set_state(lc_job_t *job, lc_job_state_t to);
bool lc_task_set_state(const lc_job_t *job, lc_task_attempt_t *ta, lc_task_state_t to);

/* The placement of one task for lc_attempt_begin. */
typedef struct {
    const char *node;
    const char *ip;
    uint64_t gpus;
    const int *ports; /* role's total port count */
    int nports;
    const char *cell; /* sched_task_bind_t.cell, or NULL */
} lc_place_t;

/* A new job attempt: place[role][instance] for every task.  Tasks start
 * WAITING on their nodes; the job becomes RUNNING. */
void lc_attempt_begin(lc_job_t *job, const lc_place_t *const *place, int64_t now_ms,
                      lc_effects_t *fx);
lc_attempt_t *lc_current(const lc_job_t *job);
lc_task_attempt_t *lc_task_current(const lc_job_t *job, int role, int index);

/* Find a task attempt by the coordinates of its attempt id; NULL if none. */
lc_task_attempt_t *lc_find(const lc_job_t *job, int job_attempt, int role, int index,
                           int task_attempt);

/* The current attempt of task (role, index), WAITING, started at
 * launched_ms (its agent's report; the attempt's and the job's launch are
 * the earliest of their tasks'). */
void lc_task_running(lc_job_t *job, int role, int index, int64_t launched_ms, lc_effects_t *fx);
/* The current attempt of task (role, index) ended with exit_code.  diag may be NULL. */
void lc_task_exited(lc_job_t *job, int role, int index, int exit_code, const char *diag,
                    int64_t now_ms, lc_reaction_fn react, lc_effects_t *fx);
/* Abort the current attempt (preemption): it fails with exit_code, the live
 * tasks are stopped. */
void lc_attempt_abort(lc_job_t *job, int exit_code, const char *msg, int64_t now_ms,
                      lc_reaction_fn react, lc_effects_t *fx);
/* executionType STOP. */
void lc_stop(lc_job_t *job, int64_t now_ms, lc_effects_t *fx);
/* The job left the scheduler's queue for good (refused at run time). */
void lc_fail_waiting(lc_job_t *job, int exit_code, const char *why, int64_t now_ms,
                     lc_effects_t *fx);

/* Backoff before the next attempt after `retries` retries (ms). */
int64_t lc_backoff_ms(int retries, lc_reaction_t r);

/* Free the attempts, roles, events and reason (keep the summary and the
 * counts): the compact form of a finished job, whose full record is in the
 * store. */
void lc_job_compact(lc_job_t *job);
/* Call fn for every task attempt that held GPUs: its span (to_ms 0 while it
 * still holds them), from the attempts or, compacted, from spans. */
void lc_job_spans(const lc_job_t *job, void (*fn)(void *ud, const lc_span_t *s), void *ud);
void lc_job_free(lc_job_t *job);
/* Free a job's event list (engine/events.c; NULL: none). */
void engine_events_list_free(void *events);
void lc_role_clear(lc_role_t *r);
void lc_attempts_free(lc_attempt_t *atts, int natts, const lc_job_t *job);

/* Strings most jobs share ("ssh", "http", "default", common role names) point at one static
 * copy instead of one allocation per job; lc_str_free() knows them. */
char *lc_str_dup(const char *s);
void lc_str_free(char *s);

/* Tags. */
bool lc_has_tag(const lc_job_t *job, const char *tag);
void lc_add_tag(lc_job_t *job, const char *tag);
bool lc_del_tag(lc_job_t *job, const char *tag);

#endif
