/*
 * jobs.h - the job engine: every job in memory, the scheduler, the nodes and
 * the lifecycle glue, behind one mutex (internal to src/server).
 *
 * Invariants:
 *  - every job the API acknowledged is in the store before the answer
 *    (submission commits the job record and its config first);
 *  - jobs_t holds a compact lc_job_t per job (summary, roles, tags) and,
 *    while the job is active, its attempts; finished jobs are compacted and
 *    their attempts read back from the store on demand;
 *  - the scheduler (sched.h) is driven by events: a submission, a task or
 *    attempt completion, a node joining or being lost, a due retry.  Each
 *    event runs one sched_schedule() pass under the engine mutex;
 *  - changes to job records are persisted by jobs_flush() in version order
 *    before agents get the acks of the exits that caused them.
 *
 * Data flow: REST submit -> store -> sched_submit -> sched_schedule -> BIND
 * -> lc_attempt_begin -> node desired sets (seq++) -> agent long-poll ->
 * agent runs -> sync reports exit -> lc_task_exited -> completion/retry ->
 * sched_release / re-submit.
 */
#ifndef PAI_SERVER_JOBS_H
#define PAI_SERVER_JOBS_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "server/lifecycle.h"
#include "store/store.h"

typedef struct jobs jobs_t;
typedef struct sched sched_t;
typedef struct nodes nodes_t;

typedef struct {
    const char *hived_config; /* scheduler config path; NULL/"" = nodes define the cluster */
    int64_t node_lost_timeout_s;
    int port_base, port_count; /* per-address port pool for tasks */
    int64_t starvation_ms;     /* scheduler anti-starvation wait; <0 disables */
} jobs_opts_t;

/* Build the engine over st (not owned) and load every job from it.  Starts
 * the timer thread (node loss, due retries). */
PAI_MUST_CHECK pai_err_t jobs_new(store_t *st, const jobs_opts_t *opts, jobs_t **out, char *err,
                                  size_t errlen);
void jobs_free(jobs_t *j);
/* Shutdown, step 1: stop the engine's threads and wake every held agent
 * long-poll so the HTTP layer can drain at once.  jobs_free() follows. */
void jobs_quiesce(jobs_t *j);

/* ---- REST operations (each takes the engine lock itself) ---- */

/* Submit a job document for user.  On success *name_out (malloc'ed) is the
 * job's full name.  On failure err_msg (malloc'ed, may be NULL) explains;
 * *errs_json (new reference or NULL) lists protocol problems. */
typedef bool (*jobs_vc_check_fn)(void *ud, const char *user, const char *vc);
/* Resolve a job's storages (extras.storages; NULL: the user's defaults) into
 * agent mounts [{"source","target","readonly"}] (*mounts NULL or empty when
 * none).  On refusal: an error and a message in *err_msg (owned). */
typedef pai_err_t (*jobs_mounts_fn)(void *ud, const char *user, const json_t *storages,
                                    json_t **mounts, char **err_msg);
PAI_MUST_CHECK pai_err_t jobs_submit(jobs_t *j, const char *user, const char *yaml, size_t len,
                                     jobs_vc_check_fn can_use_vc, jobs_mounts_fn mounts_fn,
                                     void *ud, char **name_out, char **err_msg, json_t **errs_json);

typedef struct {
    const char *username, *vc, *state, *keyword, *tags_contain, *tags_not_contain, *job_priority,
        *order;
    int64_t offset, limit;
    bool with_total;
} jobs_filter_t;

/* The list answer (array, or {totalCount, data}).  New reference. */
PAI_MUST_CHECK pai_err_t jobs_list(jobs_t *j, const jobs_filter_t *f, json_t **out, char *err,
                                   size_t errlen);
/* Detail of the last attempt (attempt < 0) or of one attempt.  New reference. */
PAI_MUST_CHECK pai_err_t jobs_detail(jobs_t *j, const char *name, int attempt, json_t **out);
/* Job attempts (deprecated job-attempts API): all, or one. */
PAI_MUST_CHECK pai_err_t jobs_attempts(jobs_t *j, const char *name, int attempt, json_t **out);
/* Task status with its attempts. */
PAI_MUST_CHECK pai_err_t jobs_task(jobs_t *j, const char *name, int attempt, const char *role,
                                   int index, json_t **out);
/* Where a task attempt's logs are: the node's log_url and the attempt id. */
PAI_MUST_CHECK pai_err_t jobs_task_log_source(jobs_t *j, const char *name, int attempt,
                                              const char *role, int index, int task_attempt,
                                              char **log_url, char **attempt_id);
/* Config as YAML with secrets masked (malloc'ed). */
PAI_MUST_CHECK pai_err_t jobs_config_yaml(jobs_t *j, const char *name, char **out);
/* Events (newest first), optionally of one type.  New reference. */
PAI_MUST_CHECK pai_err_t jobs_events(jobs_t *j, const char *name, const char *type, json_t **out);

/* Owner of a job (for permission checks): true when it exists; *is_owner
 * true when user owns it. */
bool jobs_owner_check(jobs_t *j, const char *name, const char *user, bool *is_owner);

/* executionType START/STOP. */
PAI_MUST_CHECK pai_err_t jobs_set_execution(jobs_t *j, const char *name, bool stop);
PAI_MUST_CHECK pai_err_t jobs_tag(jobs_t *j, const char *name, const char *tag, bool add);
/* Delete a finished job (PAI_E_INVALID when it is not finished). */
PAI_MUST_CHECK pai_err_t jobs_delete(jobs_t *j, const char *name);

/* ---- agents ---- */

/* One agent sync (docs/agent-protocol.md).  req is the parsed body; *resp a
 * new reference.  May block up to the request's wait_ms. */
PAI_MUST_CHECK pai_err_t jobs_agent_sync(jobs_t *j, json_t *req, json_t **resp, char *err,
                                         size_t errlen);

/* ---- virtual clusters (cluster_vcs.c) ---- */

/* Create or resize VC (spec {"virtualCells": [{cellType, cellNumber}]}) or,
 * with spec NULL, delete it.  Refused (PAI_E_INVALID, reason in err) when
 * the server has no HiveD config, the config would be invalid, or a running
 * job would lose its guarantee; PAI_E_REMOVE_RUNNING_VC when deleting a VC
 * with unfinished jobs; PAI_E_NO_VC when deleting an unknown VC. */
PAI_MUST_CHECK pai_err_t jobs_vc_change(jobs_t *j, const char *vc, const json_t *spec,
                                        bool *created, char *err, size_t errlen);

/* ---- cluster views ---- */
json_t *jobs_vcs_json(jobs_t *j, const char *only_vc); /* NULL when only_vc is unknown */
json_t *jobs_nodes_json(jobs_t *j);
json_t *jobs_pods_json(jobs_t *j, const char *namespace_);
json_t *jobs_skus_json(jobs_t *j);

/* GPU use now, for the metrics history (history.c).  Names are malloc'ed;
 * free the whole snapshot with jobs_usage_free().  util is a percentage, or
 * -1 when unknown (agents that report no utilization). */
typedef struct {
    char *name;
    int used, other; /* VC: used, guaranteed; node: used, util; job: gpus, util */
} jobs_gauge_t;
typedef struct {
    int gpus_total, gpus_used;
    jobs_gauge_t *vcs, *nodes, *jobs; /* jobs: running ones (GPUs of their live tasks) */
    size_t nvcs, nnodes, njobs;
} jobs_usage_t;
void jobs_usage(jobs_t *j, jobs_usage_t *out);
void jobs_usage_free(jobs_usage_t *u);

/* Prometheus families (jobs, nodes, GPUs, scheduler latency). */
#include "common/buf.h"
void jobs_metrics(void *ud, buf_t *out);

/* The exit table as the lifecycle needs it. */
lc_reaction_t jobs_exit_reaction(int code);

#endif
