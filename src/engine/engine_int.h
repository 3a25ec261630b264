/*
 * engine_int.h - internals of the job engine shared by its files (every
 * file in src/engine).  Everything here is called with j->mu held unless it
 * says otherwise.
 */
#ifndef PAI_ENGINE_ENGINE_INT_H
#define PAI_ENGINE_ENGINE_INT_H

#include <pthread.h>

#include "common/strmap.h"
#include "engine/nodes.h"
#include "sched/sched.h"
#include "engine/engine.h"

/*
 * The engine's state, grouped by the file that owns (writes) each part.  j->mu
 * guards all of it; other files read a part under mu or go through its
 * owner's functions.  restore.c, views.c, usage.c, env.c and agentsync.c own
 * no fields: restore fills the parts through their owners (table add and
 * publish, engine_apply, nodes_*) and advances table.next_seq; any file may
 * ask for a pass (pass.need); a node change marks vcs.stale; the others read.
 */
struct engine {
    /* engine.c: the core, set by engine_new and fixed after it. */
    pthread_mutex_t mu;       /* everything below */
    pthread_mutex_t flush_mu; /* orders store writes of job records */
    store_t *st;
    engine_ops_t ops; /* authorization, storage mounts, the clock */
    engine_opts_t opts;
    sched_t *sched; /* the scheduler; vcs.c swaps it on a VC change */
    nodes_t *nodes; /* nodes.c: agents, port pools, desired sets and their seq */

    /* table.c: every job by name, and the published ones in submission order. */
    struct {
        strmap_t *map;   /* name -> job; owns the jobs */
        lc_job_t **list; /* published jobs in submission order */
        size_t nlist, caplist;
        int64_t next_seq; /* store seq of the next job record (jobs.c, restore.c take it) */
    } table;

    /* engine.c (persistence): jobs whose records engine_flush() writes next. */
    struct {
        lc_job_t **dirty;
        size_t ndirty, capdirty;
    } persist;

    /* engine.c (timer): jobs waiting for their retry backoff to pass. */
    struct {
        lc_job_t **jobs;
        size_t n, cap;
    } retry;

    /* engine.c (dispatch): scheduling passes, asked for by any file (need). */
    struct {
        bool need;              /* a pass is due (set by any event that queued or freed) */
        uint64_t done;          /* passes completed */
        pthread_cond_t cv;      /* wakes the scheduler thread (need) */
        pthread_cond_t done_cv; /* broadcast after every pass */
        void *vc_rows;          /* sched_vc_status_t[] snapshot taken after each pass */
        size_t nvc_rows;
    } pass;

    /* engine.c: the scheduler and timer threads. */
    struct {
        pthread_t timer, scheduler;
        bool timer_started, sched_started, stopping;
        pthread_cond_t timer_cv;
    } threads;

    /* vcs.c: the scheduler config and the cache of the VCs it defines. */
    struct {
        json_t *hived; /* the scheduler config as JSON (config mode), or NULL */
        char **names;  /* VC names known to the scheduler */
        int *gpus;     /* their guaranteed GPUs */
        size_t n;
        bool stale; /* refresh before use (a node or VC changed) */
    } vcs;

    /* jobs.c: submission counters for /metrics (views.c reads them). */
    struct {
        uint64_t submitted, refused_at_submit;
    } stats;
};

/* The engine's clock (ops.now_ms, else the real one): every decision reads
 * it, never time_wall_ms() directly.  Any thread, no lock needed. */
int64_t engine_now_ms(const engine_t *j);
/* Milliseconds for intervals (a node's last sync): the fake clock when ops
 * give one, else the monotonic clock. */
int64_t engine_mono_ms(const engine_t *j);

lc_job_t *engine_map_get(engine_t *j, const char *name);
void engine_table_add(engine_t *j, lc_job_t *job);     /* reserve (pending) */
void engine_table_publish(engine_t *j, lc_job_t *job); /* visible in lists */
void engine_table_remove(engine_t *j, lc_job_t *job);  /* the caller frees job */
void engine_table_free(engine_t *j);                   /* the jobs too */

void engine_mark_dirty(engine_t *j, lc_job_t *job);
void engine_event(lc_job_t *job, const char *type, const char *reason, const char *msg,
                  int64_t now_ms);
void engine_enqueue(engine_t *j, lc_job_t *job);
/* Run scheduling passes while j->need_pass (the scheduler thread, and
 * start-up before threads exist). */
void engine_schedule(engine_t *j, int64_t now_ms);
/* Ask the scheduler thread for a pass if one is needed.  Passes are
 * coalesced: every event queued before a pass starts is decided by it. */
void engine_kick(engine_t *j);
/* One pass now (mu held), counted like the scheduler thread's. */
void engine_run_pass(engine_t *j);
/* Wait (mu held) until a pass that starts after now has completed. */
void engine_wait_pass(engine_t *j);
/* Fewer than ENGINE_SHORT_QUEUE jobs waited after the last pass. */
#define ENGINE_SHORT_QUEUE 256
bool engine_queue_short(const engine_t *j);
/* Is vc a VC the scheduler knows (cached)?  Unknown when it knows none. */
bool engine_vc_known(engine_t *j, const char *vc);
/* A reason (malloc'ed) when the job can never fit the cluster or its VC as
 * they are now; NULL when it may fit.  A cheap check at submission; the
 * scheduler's REFUSE decides the subtle cases later. */
char *engine_never_fits(engine_t *j, const lc_job_t *job);
/* Recompute a waiting job's reason (mu held): the scheduler's precise
 * explanation for this job now (sched_explain), else the VC view (the
 * scheduler runs with quiet_waits: no per-job WAIT reasons on every pass). */
void engine_refresh_reason(engine_t *j, lc_job_t *job);
/* Act on the effects of a lifecycle event of job. */
void engine_apply(engine_t *j, lc_job_t *job, const lc_effects_t *fx, int64_t now_ms);
void engine_node_to_sched(engine_t *j, engine_node_t *n);
void engine_tick(engine_t *j);
pai_err_t engine_restore(engine_t *j);

/* Take job out of the scheduler, bound (release) or waiting (cancel), for a
 * job the engine holds as queued.  A scheduler that has it in neither state
 * disagrees with the engine: logged as an error, and the engine goes on (the
 * job is out of the scheduler either way). */
void engine_sched_forget(engine_t *j, const char *job);
/* engine_flush() from a background thread or start-up: a failure is logged
 * there and the records stay dirty, so the next timer tick retries them. */
void engine_flush_or_retry(engine_t *j);

/* Load the roles' commands and images from the store when not in memory. */
bool engine_load_cmds(engine_t *j, lc_job_t *job);
/* Give a running job's allocations to scheduler s (restart, VC change). */
pai_err_t engine_sched_restore(sched_t *s, const lc_job_t *job, bool *downgraded);
/* A YAML document as JSON (plain scalars typed: integers, booleans, null);
 * NULL when it does not parse.  New reference. */

/* Persist every dirty job and node (takes the locks itself; call WITHOUT mu). */
pai_err_t engine_flush(engine_t *j);

/* The scheduler options every scheduler this engine builds uses (start-up
 * and run-time VC changes alike). */
sched_opts_t engine_sched_opts(const engine_t *j);
/* The scheduler's view of a registered node. */
sched_node_t engine_sched_node(const engine_node_t *n);

#endif
