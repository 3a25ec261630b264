/*
 * jobs_engine.h - internals of the job engine shared by its files
 * (jobs_engine.c, jobs_api.c, agentapi.c, cluster_views.c).  Everything
 * here is called with j->mu held unless it says otherwise.
 */
#ifndef PAI_SERVER_JOBS_ENGINE_H
#define PAI_SERVER_JOBS_ENGINE_H

#include <pthread.h>

#include "server/cluster_nodes.h"
#include "sched/sched.h"
#include "server/jobs.h"

struct jobs {
    pthread_mutex_t mu;       /* everything below */
    pthread_mutex_t flush_mu; /* orders store writes of job records */
    store_t *st;
    sched_t *sched;
    nodes_t *nodes;
    jobs_opts_t opts;
    lc_job_t **tab; /* name -> job, open addressing */
    size_t tabcap, tabn;
    lc_job_t **list; /* published jobs in submission order */
    size_t nlist, caplist;
    int64_t next_seq;
    lc_job_t **dirty;
    size_t ndirty, capdirty;
    lc_job_t **retry; /* waiting for their backoff to pass */
    size_t nretry, capretry;
    bool need_pass;
    uint64_t passes_done;    /* scheduling passes completed */
    pthread_cond_t sched_cv; /* wakes the scheduler thread (need_pass) */
    pthread_cond_t pass_cv;  /* broadcast after every pass */
    pthread_t timer, scheduler;
    bool timer_started, sched_started, stopping;
    pthread_cond_t timer_cv;
    json_t *hived; /* the scheduler config as JSON (config mode), or NULL */
    void *vc_rows; /* sched_vc_status_t[] snapshot taken after each pass */
    size_t nvc_rows;
    char **vcs;   /* VC names known to the scheduler (cache) */
    int *vc_gpus; /* their guaranteed GPUs */
    size_t nvcs;
    bool vcs_stale;
    uint64_t submitted, refused_at_submit;
};

lc_job_t *jobs_map_get(jobs_t *j, const char *name);
void jobs_table_add(jobs_t *j, lc_job_t *job);     /* reserve (pending) */
void jobs_table_publish(jobs_t *j, lc_job_t *job); /* visible in lists */
void jobs_table_remove(jobs_t *j, lc_job_t *job);

void jobs_mark_dirty(jobs_t *j, lc_job_t *job);
void jobs_event(lc_job_t *job, const char *type, const char *reason, const char *msg,
                int64_t now_ms);
void jobs_enqueue(jobs_t *j, lc_job_t *job);
/* Run scheduling passes while j->need_pass (the scheduler thread, and
 * start-up before threads exist). */
void jobs_schedule(jobs_t *j, int64_t now_ms);
/* Ask the scheduler thread for a pass if one is needed.  Passes are
 * coalesced: every event queued before a pass starts is decided by it. */
void jobs_kick(jobs_t *j);
/* One pass now (mu held), counted like the scheduler thread's. */
void jobs_run_pass(jobs_t *j);
/* Wait (mu held) until a pass that starts after now has completed. */
void jobs_wait_pass(jobs_t *j);
/* Fewer than JOBS_SHORT_QUEUE jobs waited after the last pass. */
#define JOBS_SHORT_QUEUE 256
bool jobs_queue_short(const jobs_t *j);
/* Is vc a VC the scheduler knows (cached)?  Unknown when it knows none. */
bool jobs_vc_known(jobs_t *j, const char *vc);
/* A reason (malloc'ed) when the job can never fit the cluster or its VC as
 * they are now; NULL when it may fit.  A cheap check at submission; the
 * scheduler's REFUSE decides the subtle cases later. */
char *jobs_never_fits(jobs_t *j, const lc_job_t *job);
/* Recompute a waiting job's reason (mu held): the scheduler's precise
 * explanation for this job now (sched_explain), else the VC view (the
 * scheduler runs with quiet_waits: no per-job WAIT reasons on every pass). */
void jobs_refresh_reason(jobs_t *j, lc_job_t *job);
/* Act on the effects of a lifecycle event of job. */
void jobs_apply(jobs_t *j, lc_job_t *job, const lc_effects_t *fx, int64_t now_ms);
void jobs_node_to_sched(jobs_t *j, node_t *n);
void jobs_tick(jobs_t *j);
pai_err_t jobs_restore(jobs_t *j);

/* For calls whose failure is logged elsewhere or harmless here (a release of
 * a job the scheduler already forgot). */
static inline void ignore_err(pai_err_t e)
{
    (void)e;
}

/* Load the roles' commands and images from the store when not in memory. */
bool jobs_load_cmds(jobs_t *j, lc_job_t *job);
/* Give a running job's allocations to scheduler s (restart, VC change). */
pai_err_t jobs_sched_restore(sched_t *s, const lc_job_t *job, bool *downgraded);
/* A YAML document as JSON (plain scalars typed: integers, booleans, null);
 * NULL when it does not parse.  New reference. */
json_t *jobs_yaml_to_json(const char *yaml, size_t len);

/* Persist every dirty job and node (takes the locks itself; call WITHOUT mu). */
pai_err_t jobs_flush(jobs_t *j);

/* The scheduler options every scheduler this engine builds uses (start-up
 * and run-time VC changes alike). */
sched_opts_t jobs_sched_opts(const jobs_t *j);
/* The scheduler's view of a registered node. */
sched_node_t jobs_sched_node(const node_t *n);

#endif
