/*
 * engine.h - the job engine: every job in memory, the scheduler, the nodes and
 * the lifecycle glue, behind one mutex (src/engine; the server drives it).
 *
 * Invariants:
 *  - every job the API acknowledged is in the store before the answer
 *    (submission commits the job record and its config first);
 *  - engine_t holds a compact lc_job_t per job (summary, roles, tags) and,
 *    while the job is active, its attempts; finished jobs are compacted and
 *    their attempts read back from the store on demand;
 *  - the scheduler (sched.h) is driven by events: a submission, a task or
 *    attempt completion, a node joining or being lost, a due retry.  Each
 *    event runs one sched_schedule() pass under the engine mutex;
 *  - changes to job records are persisted by engine_flush() in version order
 *    before agents get the acks of the exits that caused them.
 *
 *  - the engine reaches the rest of the server only through engine_ops_t
 *    (VC permission, storage mounts, the clock) and the store it is given;
 *    every decision reads the ops' clock, so a test drives time.
 *
 * Locking: the engine's rules (which mutex guards what, lock order, no store
 * I/O under the engine lock) are stated once in engine_int.h, "Locking".  The
 * functions below take the locks themselves: call them without any.
 *
 * Data flow: REST submit -> store -> sched_submit -> sched_schedule -> BIND
 * -> lc_attempt_begin -> node desired sets (seq++) -> agent long-poll ->
 * agent runs -> sync reports exit -> lc_task_exited -> completion/retry ->
 * sched_release / re-submit.
 */
#ifndef PAI_ENGINE_ENGINE_H
#define PAI_ENGINE_ENGINE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "engine/lifecycle.h"
#include "store/store.h"

typedef struct engine engine_t;
typedef struct sched sched_t;
typedef struct nodes nodes_t;

typedef enum {
    ENGINE_CHECK_SAMPLE = 0, /* a full check after a pass, at most once per interval */
    ENGINE_CHECK_EVERY,      /* after every decision and event (sched_opts_t.check) */
    ENGINE_CHECK_OFF,
} engine_sched_check_t;

typedef struct {
    const char *hived_config; /* scheduler config path; NULL/"" = nodes define the cluster */
    int64_t node_lost_timeout_s;
    int port_base, port_count;  /* per-address port pool for tasks */
    int64_t starvation_ms;      /* scheduler anti-starvation wait; <0 disables */
    int idle_gpu_util_pct;      /* a task's GPUs under this utilization are idle */
    int64_t idle_gpu_ms;        /* idle this long flags the job gpuIdle; 0: 30 minutes */
    int events_per_job;         /* events a job keeps (memory and store); 0: 32 */
    int64_t event_retention_ms; /* events older than this are pruned; 0: kept with the job */
    int64_t note_waiting_ms;    /* a job waiting this long is noticed (waiting); 0: never */
    int64_t note_idle_ms;       /* a job flagged gpuIdle this long is noticed (idle); 0: at once */
    /* No scheduler or timer thread: nothing happens in the background, the
     * caller drives the periodic work with engine_tick_now() (tests). */
    bool no_threads;
    /* A read-only view (a standby's, server/standby.h): restore only, no
     * scheduling pass and no write to the store; implies no_threads.  Only
     * the query functions may be called on it. */
    bool read_only;
    /* The scheduler's invariant checker (sched_check()): sampled (the
     * default) after a pass at most once per sched_check_interval_ms (0: 60
     * s), after every decision and event, or never.  Violations are logged
     * with the decision or pass they followed and counted
     * (pai_scheduler_invariant_violations_total). */
    engine_sched_check_t sched_check;
    int64_t sched_check_interval_ms;
    /* node_approval: manual: a new name registering with the join token
     * waits for an admin's approval (engine_node_approve; nodecred.h). */
    bool node_approval_manual;
    /* Test hook: the first job bound leaves the scheduler's bookkeeping
     * wrong (sched_test_corrupt_next_bind()), for tests of the reporting. */
    bool sched_test_corrupt;
} engine_opts_t;

/* ---- notifications (engine/notices.c; docs/operations.md, "Notifications") */

/* The events a job's owner can be told about.  Bit (1 << kind) in the
 * masks of engine_note_spec_t and lc_notify_t. */
typedef enum {
    ENGINE_NOTE_RUNNING,   /* an attempt started (every task placed) */
    ENGINE_NOTE_SUCCEEDED, /* final states */
    ENGINE_NOTE_FAILED,
    ENGINE_NOTE_STOPPED,
    ENGINE_NOTE_RETRIED, /* an attempt ended and the job waits for a new one */
    ENGINE_NOTE_WAITING, /* waited note_waiting_ms in the queue (once per job) */
    ENGINE_NOTE_IDLE,    /* flagged gpuIdle (once per job) */
    ENGINE_NOTE__COUNT
} engine_note_kind_t;

/* "running", "succeeded", ... ; engine_note_parse: -1 when unknown. */
const char *engine_note_name(engine_note_kind_t k);
int engine_note_parse(const char *s);

/* What a job asks to be told, resolved at its submission (ops.note_spec):
 * the events to e-mail to its owner and those to POST to url (malloc'ed,
 * NULL: no webhook). */
typedef struct {
    uint8_t email, hook;
    char *url;
} engine_note_spec_t;

/* One event of one job, handed to ops.note.  Pointers are valid during
 * the call only. */
typedef struct {
    engine_note_kind_t kind;
    const char *job; /* "user~name" */
    size_t user_len; /* the owner is job[0, user_len) */
    const char *vc, *state;
    bool has_exit;
    int exit_code;
    const char *message; /* why (diagnostics, the waiting reason), or NULL */
    int retries;         /* job attempts retried so far */
    int64_t at_ms, submit_ms;
    int64_t since_ms;    /* waiting / idle: since when */
    bool email;          /* e-mail the owner */
    const char *webhook; /* POST here, or NULL */
} engine_notice_t;

/* What the engine needs from outside it: authorization, storage and the
 * clock, given once at engine_new (copied; ud is passed back to each). */
typedef struct {
    void *ud;
    /* May user submit to virtual cluster vc?  NULL: everyone may. */
    bool (*can_use_vc)(void *ud, const char *user, const char *vc);
    /* Resolve a job's storages (extras.storages; NULL: the user's defaults)
     * into agent mounts [{"source","target","readonly"}] (*mounts NULL or
     * empty when none).  On refusal: the error in *e.  NULL: jobs get no
     * mounts. */
    pai_err_t (*mounts)(void *ud, const char *user, const json_t *storages, json_t **mounts,
                        pai_error_t *e);
    /* The public keys of user's profile for the ssh runtime plugin
     * ([{"value": "ssh-ed25519 ..."}], new reference).  NULL: none. */
    json_t *(*ssh_keys)(void *ud, const char *user);
    /* Milliseconds since the epoch.  Every decision of the engine (node
     * loss, retry backoff, starvation age, timestamps) reads this clock;
     * only waits (long-polls, the threads' sleeps) use the real one.  NULL:
     * the real clock (monotonic for node loss, wall for the rest). */
    int64_t (*now_ms)(void *ud);
    /* Resolve what a job asks to be told (its extras, the whole object, and
     * the owner's settings) into *out, at submission, without the engine
     * lock.  A refusal (a webhook host not allowed...) fills e and refuses
     * the job.  NULL: no job is ever noticed. */
    pai_err_t (*note_spec)(void *ud, const char *user, const json_t *extras,
                           engine_note_spec_t *out, pai_error_t *e);
    /* Hand one event over.  Called WITH the engine lock held (where the
     * job changes): it must copy what it keeps and return at once, never
     * block, do I/O or call the engine.  NULL: events are not handed over. */
    void (*note)(void *ud, const engine_notice_t *n);
    /* The user's task uid offset (assigned once per user, never reused;
     * docs/security.md, "Task identities"), read at submission and kept
     * with the job, which sends it to the agents.  -1: none (the agents'
     * own maps decide).  NULL: never. */
    int64_t (*task_uid)(void *ud, const char *user);
    /* Tests and benches only: engine_list calls it after it has let go of
     * the engine lock and before it sorts and renders (a pause there shows
     * that a list blocks nobody while it renders), engine_usage after its
     * copies, before it builds its answer.  NULL: none. */
    void (*list_unlocked)(void *ud);
    /* The calling thread, a batch of submissions (engine_submit_batch), is
     * about to wait for submissions that have not arrived yet (the group
     * delay, persist.c): the HTTP layer may run the next batch of
     * submissions on another thread now instead of after this one's
     * answers.  Called without the engine lock.  NULL: nothing to do. */
    void (*submit_waits)(void *ud);
} engine_ops_t;

/* Build the engine over st (not owned) with ops (NULL: none; copied) and
 * load every job from it.  Starts the scheduler and timer threads (node
 * loss, due retries) unless opts->no_threads.
 *
 * Errors: every fallible function here fills its pai_error_t *e (which may
 * be NULL) with the code and the message the REST reply shows (OpenPAI's
 * texts, err.h PAI_MSG_*) and returns the code. */
PAI_MUST_CHECK pai_err_t engine_new(store_t *st, const engine_opts_t *opts, const engine_ops_t *ops,
                                    engine_t **out, pai_error_t *e);
/* The periodic work once, now: lose nodes silent past node_lost_timeout_s,
 * queue retries whose backoff passed, run the scheduling passes that are
 * due (at once without threads; else the scheduler thread runs them) and
 * persist what changed.  Takes the engine lock itself.  The timer thread
 * does the same every 250 ms. */
PAI_MUST_CHECK pai_err_t engine_tick_now(engine_t *j);
void engine_free(engine_t *j);
/* Shutdown, step 1: stop the engine's threads and wake every held agent
 * long-poll so the HTTP layer can drain at once.  engine_free() follows. */
void engine_quiesce(engine_t *j);

/* ---- REST operations (each takes the engine lock itself) ---- */

/* Submit a job document for user (ops.can_use_vc and ops.mounts decide its
 * VC and storages).  On success *name_out (malloc'ed) is the job's full
 * name.  On failure *e explains; a refused protocol lists its problems in
 * e->details {"errors": [{line, column, field, message}]}. */
PAI_MUST_CHECK pai_err_t engine_submit(engine_t *j, const char *user, const char *yaml, size_t len,
                                       char **name_out, pai_error_t *e);
/* Submissions that arrived together, as one batch: each parsed and
 * answered as engine_submit would (one refused does not fail the others),
 * but reserved under one hold of the engine lock and stored by one flush
 * (or one pass and its flush), so that they wait for one commit together
 * on the caller's thread.  In each call user, yaml, len and e are read (e
 * filled on failure); rc and name (malloc'ed, on success) are set. */
typedef struct {
    const char *user;
    const char *yaml;
    size_t len;
    pai_error_t *e;
    pai_err_t rc;
    char *name;
} engine_submit_call_t;
void engine_submit_batch(engine_t *j, engine_submit_call_t *calls, size_t n);

typedef struct {
    const char *username, *vc, *state, *keyword, *tags_contain, *tags_not_contain, *job_priority,
        *order;
    int64_t offset, limit;
    bool with_total;
} engine_filter_t;

/* The list answer (array, or {totalCount, data}).  New reference.  The
 * engine lock is held only to pick the rows; the JSON is rendered without
 * it (joblist.c). */
PAI_MUST_CHECK pai_err_t engine_list(engine_t *j, const engine_filter_t *f, json_t **out,
                                     pai_error_t *e);
/* Detail of the last attempt (attempt < 0) or of one attempt.  New reference. */
PAI_MUST_CHECK pai_err_t engine_detail(engine_t *j, const char *name, int attempt, json_t **out,
                                       pai_error_t *e);
/* Job attempts (deprecated job-attempts API): all, or one. */
PAI_MUST_CHECK pai_err_t engine_attempts(engine_t *j, const char *name, int attempt, json_t **out,
                                         pai_error_t *e);
/* Task status with its attempts. */
PAI_MUST_CHECK pai_err_t engine_task(engine_t *j, const char *name, int attempt, const char *role,
                                     int index, json_t **out, pai_error_t *e);
/* Where a task attempt's logs are: the node's log_url and the attempt id
 * (PAI_E_NO_TASK_LOG when the attempt never ran on a node that serves logs),
 * and the node's log key to present there (NULL: present the join token).
 * All malloc'ed. */
PAI_MUST_CHECK pai_err_t engine_task_log_source(engine_t *j, const char *name, int attempt,
                                                const char *role, int index, int task_attempt,
                                                char **log_url, char **attempt_id, char **log_key,
                                                pai_error_t *e);
/* The job's ssh record (sshplug.h: publicKey, privateKey, hostPublicKey,
 * jobssh), new reference; PAI_E_NO_JOB_SSH_INFO when it asked for no ssh. */
PAI_MUST_CHECK pai_err_t engine_ssh_record(engine_t *j, const char *name, json_t **out,
                                           pai_error_t *e);
/* The job's extras as submitted (new reference): logReaders and the like. */
PAI_MUST_CHECK pai_err_t engine_job_extras(engine_t *j, const char *name, json_t **out,
                                           pai_error_t *e);
/* Config as YAML with secrets masked (malloc'ed). */
PAI_MUST_CHECK pai_err_t engine_config_yaml(engine_t *j, const char *name, char **out,
                                            pai_error_t *e);
/* Events (newest first), optionally of one type.  New reference. */
PAI_MUST_CHECK pai_err_t engine_events(engine_t *j, const char *name, const char *type,
                                       json_t **out, pai_error_t *e);

/* Owner of a job (for permission checks): true when it exists; *is_owner
 * true when user owns it: the job's name starts with "user~" and it was
 * submitted at or after user_since_ms (the user's creation, auth_user_since;
 * 0: any time), so a user re-created under a deleted user's name does not
 * own the deleted user's jobs. */
bool engine_owner_check(engine_t *j, const char *name, const char *user, int64_t user_since_ms,
                        bool *is_owner);

/* executionType START/STOP. */
PAI_MUST_CHECK pai_err_t engine_set_execution(engine_t *j, const char *name, bool stop,
                                              pai_error_t *e);
PAI_MUST_CHECK pai_err_t engine_tag(engine_t *j, const char *name, const char *tag, bool add,
                                    pai_error_t *e);
/* Delete a finished job (PAI_E_INVALID when it is not finished). */
PAI_MUST_CHECK pai_err_t engine_delete(engine_t *j, const char *name, pai_error_t *e);

/* ---- agents ---- */

/* One agent sync (docs/agent-protocol.md).  req is the parsed body; *resp
 * the answer's compact JSON text, NUL-terminated (free() it; written
 * without a tree, wire/agentwire.h's agentwire_resp_dump).  credential: the node credential the
 * caller presented, NULL for the join token or an admin's login token; a sync it does not allow for
 * the node the body names is refused (PAI_E_FORBIDDEN, logged; engine/nodecred.h says who may sync
 * as whom).  May block up to the request's wait_ms. */
PAI_MUST_CHECK pai_err_t engine_agent_sync(engine_t *j, json_t *req, const char *credential,
                                           char **resp, pai_error_t *e);

/* The same sync without a blocked thread (the server's: its connection is
 * suspended while the poll is held, src/server/waiters.h).  PAI_OK with
 * either *resp (answered now) or *held (answer within *wait_ms, clamped as
 * engine_agent_sync clamps it).  A held poll is then:
 *   engine_poll_arm     once: w is called when it can be answered early
 *                       (the node's desired set changed, a newer sync of
 *                       the node superseded it, the engine stops), at once
 *                       if that happened already.  w->fn is called under
 *                       the engine lock: it must only queue the wake-up
 *                       (never wait for a thread that may take that lock);
 *   engine_poll_resume  woken or not, when the HTTP layer answers: PAI_OK
 *                       and the answer in *resp (text to free), as
 *                       engine_agent_sync's; or *resp NULL: held again for
 *                       *wait_ms (arm it again); or PAI_E_UNAVAILABLE when
 *                       the store failed.  A sync is held first while its
 *                       changes wait for the flush that stores them (when
 *                       another flush runs: a storm of registrations is
 *                       stored by few commits, and no thread waits), then
 *                       as a long-poll;
 *   engine_poll_free    always, last (forgets w if it was not called).
 * The engine must outlive its held polls. */
typedef struct {
    void (*fn)(void *ud, uint64_t ticket);
    void *ud;
    uint64_t ticket;
} engine_waker_t;
typedef struct engine_poll engine_poll_t;
PAI_MUST_CHECK pai_err_t engine_agent_sync_begin(engine_t *j, json_t *req, const char *credential,
                                                 char **resp, engine_poll_t **held,
                                                 int64_t *wait_ms, pai_error_t *e);
/* Concurrent syncs (and resumed polls) take the engine lock in batches:
 * the first to find no batch running applies every sync queued at that
 * moment under one acquisition and hands each its answer (combine.c); each
 * is answered only after its own changes are stored, as alone.
 * engine_agent_sync_batch runs n syncs as one such batch, in this order,
 * each with engine_agent_sync_begin's results (tests: answers as one by
 * one; one refused sync does not fail the others), except that none is
 * held for its commit: the caller's thread stores the batch's changes with
 * one flush (waiting for one another thread runs) before it returns.  In
 * each call, req and credential are read; the rest is filled (err freed by
 * the caller). */
typedef struct {
    json_t *req;
    const char *credential;
    pai_err_t rc;
    char *resp; /* the answer's JSON text (free() it) */
    engine_poll_t *held;
    int64_t wait_ms;
    pai_error_t err;
} engine_sync_call_t;
void engine_agent_sync_batch(engine_t *j, engine_sync_call_t *calls, size_t n);
void engine_poll_arm(engine_poll_t *p, const engine_waker_t *w);
PAI_MUST_CHECK pai_err_t engine_poll_resume(engine_poll_t *p, char **resp, int64_t *wait_ms,
                                            pai_error_t *e);
void engine_poll_free(engine_poll_t *p);

/* An admin's action on a node's credential: revoke (every credential of
 * the node stops working at once; the join token may register it again) or
 * rotate (a new credential is issued at the node's next sync).  Stored
 * before it returns.  PAI_E_NOT_FOUND for an unknown node; rotate:
 * PAI_E_INVALID when the node holds no credential in use. */
PAI_MUST_CHECK pai_err_t engine_node_credential(engine_t *j, const char *node, bool revoke,
                                                pai_error_t *e);

/* An admin's approval of a node waiting for it (node_approval: manual):
 * its next sync with the join token registers it (a credential) and it gets
 * tasks.  Stored before it returns.  PAI_E_NOT_FOUND for an unknown node,
 * PAI_E_INVALID for one that is not waiting. */
PAI_MUST_CHECK pai_err_t engine_node_approve(engine_t *j, const char *node, pai_error_t *e);

/* ---- virtual clusters (vcs.c) ---- */

/* Create or resize VC (spec {"virtualCells": [{cellType, cellNumber}]}) or,
 * with spec NULL, delete it.  Refused (PAI_E_INVALID, reason in e) when
 * the server has no HiveD config, the config would be invalid, or a running
 * job would lose its guarantee; PAI_E_REMOVE_RUNNING_VC when deleting a VC
 * with unfinished jobs; PAI_E_NO_VC when deleting an unknown VC. */
PAI_MUST_CHECK pai_err_t engine_vc_change(engine_t *j, const char *vc, const json_t *spec,
                                          bool *created, pai_error_t *e);

/* ---- cluster views ---- */
json_t *engine_vcs_json(engine_t *j, const char *only_vc); /* NULL when only_vc is unknown */
json_t *engine_nodes_json(engine_t *j);
/* Milliseconds since any healthy node last synced (its agent reached this
 * server; a held poll counts as now), on the engine's clock; -1 when no
 * node is healthy.  A leader
 * that reaches the store but none of its agents gives its lease up on it
 * (server_main.c, leader_agents_silent_s). */
int64_t engine_agents_silent_ms(engine_t *j);
json_t *engine_pods_json(engine_t *j, const char *namespace_);
json_t *engine_skus_json(engine_t *j);
/* The agents' metrics endpoints in Prometheus' http_sd format (a JSON
 * array of {"targets": ["host:port"], "labels": {...}}), one group per
 * endpoint, sorted; labelled node_name when the endpoint serves one node
 * (docs/monitoring.md).  Lost nodes stay listed: their `up` goes to 0. */
json_t *engine_metrics_targets_json(engine_t *j);

/* GPU use now, for the metrics history (history.c).  Names are malloc'ed;
 * free the whole snapshot with engine_usage_free().  util is a percentage, or
 * -1 when unknown (agents that report no utilization). */
typedef struct {
    char *name;
    int used, other; /* VC: used, guaranteed; node: used, util; job: gpus, util */
} engine_gauge_t;
typedef struct {
    int gpus_total, gpus_used;
    engine_gauge_t *vcs, *nodes, *jobs; /* jobs: running ones (GPUs of their live tasks) */
    size_t nvcs, nnodes, njobs;
} engine_usage_t;
void engine_usage(engine_t *j, engine_usage_t *out);
void engine_usage_free(engine_usage_t *u);

/* GPU-hours held and used over [from_ms, to_ms) grouped by group_by ("vc",
 * "user" or "job"; anything else: "vc"), of user's jobs only unless user is
 * NULL: {from, to, groupBy, rows: [...], total} (docs/api.md, "Usage").  New
 * reference. */
json_t *engine_usage_json(engine_t *j, int64_t from_ms, int64_t to_ms, const char *group_by,
                          const char *user);
/* Sums of GPU-milliseconds; usage_span_add adds the part of span s inside
 * [from, to) (a span still holding its GPUs ends at now). */
typedef struct {
    double held_gpu_ms, used_gpu_ms;
} usage_sum_t;
void usage_span_add(usage_sum_t *sum, const lc_span_t *s, int64_t from, int64_t to, int64_t now);

/* Prometheus families (jobs, nodes, GPUs, scheduler latency). */
#include "common/buf.h"
void engine_metrics(void *ud, buf_t *out);

/* The exit table as the lifecycle needs it. */
lc_reaction_t engine_exit_reaction(int code);

#endif
