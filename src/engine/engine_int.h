/*
 * engine_int.h - internals of the job engine shared by its files (every
 * file in src/engine).  Everything here is called with j->mu held unless it
 * says otherwise.
 *
 * Locking - the engine's rules, stated once (engine.h points here):
 *
 *   mu        guards every field of struct engine below it, every lc_job_t,
 *             every engine_node_t and the scheduler.  It is held for short,
 *             CPU-only work: a REST call's lookup or change, one agent
 *             report, one scheduling pass.
 *   flush_mu  serialises store writes that must keep an order: job records
 *             (engine_flush, a compacted job's tags, a job's deletion) reach
 *             the store in version order, and a VC change's config write and
 *             scheduler swap are not interleaved with another VC change.  It
 *             is held across store I/O.
 *   order     flush_mu before mu; never flush_mu while holding mu.  The
 *             condition variables (pass.cv, pass.done_cv, threads.timer_cv,
 *             each node's cv) wait on mu.
 *   no store I/O under mu.  On PostgreSQL a store call is a network round
 *             trip, and mu stops every API call, agent and the scheduler.
 *             Read what a change needs from the store before locking, write
 *             what it produced after unlocking (engine_flush encodes under
 *             mu and writes without it).
 *   who locks the functions of engine.h take the locks themselves and are
 *             called without them; the functions of this header expect mu
 *             held unless their comment says "without mu".
 *   reads     a field needed after unlocking is copied while locked; nothing
 *             reads engine state after engine_unlock() (lc_job_t pointers
 *             stay valid only while mu or flush_mu is held: deletion takes
 *             both).
 *   one exit  a function that locks unlocks once, at its `out:` label.
 *   batches   agent syncs take mu through combine.c: a thread queues its
 *             critical section under combine.mu (a leaf lock: the combiner
 *             takes it under mu, nobody takes mu under it) and either runs
 *             the queued sections under one engine_lock (the combiner) or
 *             waits for the combiner to run its own; no thread holding mu
 *             queues a section.
 *   hand-off  ops.note (notifications) is the one op called with mu held:
 *             it copies the event into the notifier's queue under that
 *             queue's own leaf lock and returns; deliveries happen on the
 *             notifier's thread, which never takes mu.
 *
 * Checked: mu and flush_mu are taken only through engine_lock() and
 * engine_flush_lock() (scripts/check-style.sh), which record in a
 * thread-local which engine's mu this thread holds.  engine_assert_locked()
 * opens every function that expects mu; engine_assert_unlocked() opens the
 * engine's store I/O and engine_flush_lock() (lock order); and while a thread
 * holds mu the store refuses every call from it (store_io_forbid), wherever
 * the call comes from.  All are assert()s: on in every build without NDEBUG
 * (the default, so every test runs them).  CI also runs the threaded tests
 * under ThreadSanitizer (make TSAN=1, .ci/run).
 */
#ifndef PAI_ENGINE_ENGINE_INT_H
#define PAI_ENGINE_ENGINE_INT_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/strmap.h"
#include "engine/nameidx.h"
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
    pthread_mutex_t mu;       /* everything below (Locking, above) */
    pthread_mutex_t flush_mu; /* orders store writes (Locking, above) */
    store_t *st;
    engine_ops_t ops; /* authorization, storage mounts, the clock */
    engine_opts_t opts;
    sched_t *sched; /* the scheduler; vcs.c swaps it on a VC change */
    nodes_t *nodes; /* nodes.c: agents, port pools, desired sets and their seq */

    /* table.c: every job by name, and the published ones in submission
     * order and in name order. */
    struct {
        strmap_t *map;   /* name -> job; owns the jobs */
        lc_job_t **list; /* published jobs in submission order */
        size_t nlist, caplist;
        nameidx_t *byname; /* the published jobs in name order (the list by jobName) */
        int64_t next_seq;  /* store seq of the next job record (submit.c, restore.c take it) */
    } table;

    /* persist.c: jobs whose records engine_flush() writes next; flushes
     * numbered as they encode (encoded) and as they end (durable, rc); held
     * agent syncs waiting for a flush that encodes after their change
     * (agentsync.c adds them, engine_flush wakes them, the timer flushes
     * while any waits). */
    struct {
        lc_job_t **dirty;
        size_t ndirty, capdirty;
        /* Written under mu and flush_mu; atomic so that engine_flush reads
         * encoded before it waits for flush_mu (a flush it joins). */
        _Atomic uint64_t encoded, durable; /* durable: the last flush that succeeded */
        uint64_t commits;                  /* flushes that wrote and committed (tests count them) */
        uint64_t joined;     /* engine_flush calls a flush after theirs covered (no commit) */
        uint64_t after_pass; /* engine_flush_after_pass calls that got their pass first */
        /* Submissions between their arrival and their reservation (parse,
         * render): with a long queue each is stored by the next flush, so
         * a flush about to encode waits a moment for them (coming_cv,
         * broadcast when the count drops to 0) instead of committing just
         * before they queue and leaving them the next commit.  Atomic: an
         * arrival counts without mu; it leaves under mu. */
        _Atomic int coming;
        pthread_cond_t coming_cv;
        uint64_t gathered; /* flushes that waited for coming submissions */
        /* The group delay (engine_sub_group_wait): submissions pending
         * (from their arrival to their answer: atomic, as coming) and the
         * most at once since the last flush that stored some ended; that
         * flush's width (the most pending while it was made), when it
         * ended (CLOCK_MONOTONIC us) and how long its commit took. */
        _Atomic int pending, peak;
        size_t width;
        int64_t last_subs_end_us, last_subs_commit_us;
        size_t group_waiting;   /* submitting threads in the delay now */
        uint64_t group_waits;   /* delays begun (tests count them) */
        int64_t group_delay_us; /* the delay's bound (0: persist.c's; <0: off) */
        /* The two waits' bounds in microseconds (0: GATHER_US and
         * PASS_GATHER_US in persist.c; tests set longer ones). */
        int64_t gather_us, pass_gather_us;
        struct engine_durable_wait *waits;
        size_t nwaits, capwaits;
        /* A thread saw the dirty list non-empty and flushes soon (the
         * scheduler thread after a pass, the timer): every job dirty now is
         * in that flush.  Cleared by each flush's encode. */
        bool flush_due;
        /* Submissions whose records the next flush writes with everything
         * else (submit.c queues them before their pass; a flush takes
         * those whose pass has run); sub_cv is broadcast when a flush
         * that took some ends. */
        struct engine_sub **subs;
        size_t nsubs, capsubs;
        pthread_cond_t sub_cv;
        /* The syncs' group delay (engine_sync_group_wait): a sync batch
         * with something to store while sync-led flushes stream waits a
         * moment for the next batch (sync_cv: broadcast when one arrives,
         * when a flush ends, at the stop) and one commit stores both.
         * last_sync_end_us: when the last sync-led flush ended
         * (CLOCK_MONOTONIC us; atomic: set without mu). */
        pthread_cond_t sync_cv;
        bool sync_waiting;     /* a batch waits now (at most one) */
        uint64_t sync_arrived; /* batches that ended a wait */
        _Atomic int64_t last_sync_end_us;
        uint64_t sync_waits;   /* delays begun (tests count them) */
        int64_t sync_delay_us; /* the delay's bound (0: persist.c's; <0: off) */
    } persist;

    /* dispatch.c (engine_apply) adds, engine.c (timer) drains: jobs waiting
     * for their retry backoff to pass. */
    struct {
        lc_job_t **jobs;
        size_t n, cap;
    } retry;

    /* dispatch.c: scheduling passes, asked for by any file (need); the
     * scheduler thread that runs them is in engine.c. */
    struct {
        bool need;              /* a pass is due (set by any event that queued or freed) */
        uint64_t done;          /* passes completed */
        uint64_t lazy_seen;     /* sched_lazy_preemptions() after the last pass */
        pthread_cond_t cv;      /* wakes the scheduler thread (need) */
        pthread_cond_t done_cv; /* broadcast after every pass */
        void *vc_rows;          /* sched_vc_status_t[] (engine_snapshot_vcs) */
        size_t nvc_rows;
        uint64_t here;   /* passes a submission batch ran on its own thread (submit.c) */
        int64_t last_us; /* the last pass's real time (engine_pass_cheap) */
        /* Tests that play the scheduler thread: a submission with a short
         * queue waits for a pass run elsewhere instead of running its own. */
        bool thread_only;
    } pass;

    /* engine.c: the scheduler and timer threads. */
    struct {
        pthread_t timer, scheduler;
        bool timer_started, sched_started, stopping;
        pthread_cond_t timer_cv;
    } threads;

    /* vcs.c: the scheduler config and the cache of the VCs it defines (and
     * of the largest healthy node). */
    struct {
        json_t *hived; /* the scheduler config as JSON (config mode), or NULL */
        char **names;  /* VC names known to the scheduler */
        int *gpus;     /* their guaranteed GPUs */
        size_t n;
        int max_node_gpus; /* GPUs of the largest healthy node */
        bool stale;        /* refresh before use (a node or VC changed) */
    } vcs;

    /* dispatch.c: the scheduler's invariant checks (opts.sched_check); the
     * scheduler's hook reports through engine_sched_violation(). */
    struct {
        uint64_t runs;       /* sampled checks run */
        uint64_t violations; /* violations found (sampled and per decision) */
        int64_t last_ms;     /* when the last sampled check ran */
    } check;

    /* events.c: when the timer thread prunes old events next (that
     * thread's alone: read and written without mu). */
    struct {
        int64_t next_prune_ms;
    } events;

    /* submit.c: submission counters for /metrics (views.c reads them). */
    struct {
        uint64_t submitted, refused_at_submit;
    } stats;

    /* notices.c: the timer's scan for waiting and idle jobs. */
    struct {
        int64_t scan_at; /* engine clock of the next scan */
    } notes;

    /* combine.c: critical sections queued to run in the next batch under
     * mu (agent syncs).  NOT guarded by mu: combine.mu, a leaf lock, guards
     * the queue and running; batches and ops are counted under mu. */
    struct {
        pthread_mutex_t mu;
        struct engine_combine_op *head, *tail;
        bool running;          /* a combiner runs a batch */
        uint64_t batches, ops; /* batches run, ops in them (mu) */
        /* version 4 syncs by their node (agentsync.c): described whole,
         * named by the digest held, named by one not held (mu) */
        uint64_t node_whole, node_same, node_unknown;
        /* syncs that reported exits: stored by their own batch's commit,
         * or (version 6) left to a later one; acks left for a later
         * answer (mu) */
        uint64_t exits_own, exits_later, acks_later;
    } combine;

    /* snaps.c: each published job's last committed record (and the
     * reason and idle figure memory last had), for reads without mu.  NOT
     * guarded by mu: snaps.mu, a leaf lock, guards map. */
    struct {
        pthread_mutex_t mu;
        strmap_t *map; /* job name -> its snap (owned) */
    } snaps;
};

/* Take and release mu (and record that this thread holds it). */
void engine_lock(engine_t *j);
void engine_unlock(engine_t *j);
/* engine_lock() unless mu stays held by another thread for ms milliseconds:
 * then false, not locked (a read answers from the snapshots instead). */
bool engine_lock_within(engine_t *j, int ms);
/* Take and release flush_mu; called without mu (lock order). */
void engine_flush_lock(engine_t *j);
/* Take flush_mu if free (never waits); true when taken. */
bool engine_flush_trylock(engine_t *j);
void engine_flush_unlock(engine_t *j);
/* True when this thread holds j->mu (through engine_lock). */
bool engine_holds_lock(const engine_t *j);
#define engine_assert_locked(j) assert(engine_holds_lock(j) && "caller holds the engine lock")
#define engine_assert_unlocked(j)                                                                  \
    assert(!engine_holds_lock(j) && "no store I/O under the engine lock")

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
/* Every job of the table: the listed ones in submission order, then those
 * still pending (accepted, not listed yet: a submission waiting for its
 * first pass, whose job may already be queued or bound in the scheduler).
 * Start with it = {0}; NULL at the end; the table must not change meanwhile.
 * What must see every job the scheduler holds (a VC change) walks this, not
 * table.list. */
typedef struct {
    size_t list, map;
} engine_table_it_t;
lc_job_t *engine_table_next(engine_t *j, engine_table_it_t *it);

/* Mark job to be stored by the next flush.  A pending job never is: its
 * submission writes its record (after the submission's own pass, so with
 * the placement that pass made); a change after that write's encode is
 * noted (lc_job_t.redirty) and the publication marks it dirty. */
void engine_mark_dirty(engine_t *j, lc_job_t *job);

/* ---- joblist.c: the list's rows, rendered without mu ---- */
/* Let go of job's list row (it leaves the table: mu held, or no other
 * thread left, engine_free). */
void engine_list_row_drop(lc_job_t *job);

/* ---- snaps.c: the last committed record of each published job ---- */
void engine_snaps_init(engine_t *j);
void engine_snaps_free(engine_t *j);
/* Publish job name's committed record text (taken; NULL: compacted, read
 * the store), replacing the one before (mu held). */
void engine_snap_put(engine_t *j, const char *name, char *text);
/* Keep job's waiting reason (as memory computed it last) beside its
 * record, when it changed (mu held; engine_refresh_reason calls it). */
void engine_snap_reason(engine_t *j, const lc_job_t *job);
/* Keep since when job's running GPUs have all been idle (0: not idle)
 * beside its record (mu held; engine_usage_sample calls it on each report). */
void engine_snap_idle(engine_t *j, const lc_job_t *job, int64_t since);
void engine_snap_drop(engine_t *j, const char *name); /* mu held */
typedef enum { ENGINE_SNAP_NONE, ENGINE_SNAP_TEXT, ENGINE_SNAP_STORED } engine_snap_t;
/* What memory knew beside the record: the last waiting reason (malloc'ed,
 * or NULL) and the idle figure, each with the job's attempt count then. */
typedef struct {
    char *reason;
    int64_t idle_since;
    int reason_att, idle_att;
} engine_snap_mem_t;
/* Without mu (any thread): what is published for name; for ENGINE_SNAP_TEXT
 * *text is a copy of the record (the caller frees), and *mem what memory
 * knew (the caller frees mem->reason). */
engine_snap_t engine_snap_get(engine_t *j, const char *name, char **text, engine_snap_mem_t *mem);
/* ---- combine.c: critical sections batched under one mu (a combining lock) ---- */
typedef struct engine_combine_op engine_combine_op_t;
struct engine_combine_op {
    void (*apply)(engine_t *j, engine_combine_op_t *op); /* mu held */
    void (*after)(engine_t *j, engine_combine_op_t *op); /* mu held, after every apply; or NULL */
    engine_combine_op_t *next;                           /* combine.c's */
    bool done;                                           /* combine.c's */
    pthread_cond_t cv;                                   /* combine.c's: done, or run a batch */
};
void engine_combine_init(engine_t *j);
void engine_combine_free(engine_t *j);
/* Without mu: run op (embedded in the caller's own struct, which casts it
 * back) under mu, in a batch with the ops other threads queue meanwhile,
 * on this thread or another (the combiner).  Returns once it has run. */
void engine_combine(engine_t *j, engine_combine_op_t *op);
/* Without mu: run n ops now as one batch, under one engine_lock (what the
 * combiner does; engine_agent_sync_batch's batches; n 0: nothing). */
void engine_combine_batch(engine_t *j, engine_combine_op_t *const *ops, size_t n);
/* The batches' counters in Prometheus text (mu held; engine_metrics). */
void engine_combine_metrics(engine_t *j, buf_t *out);

/* ---- persist.c: durability waiters (a flush that encodes after need) ---- */

typedef struct engine_durable_wait {
    uint64_t need;        /* the flush number that covers the change */
    engine_waker_t waker; /* called under mu once it is durable (or failed) */
} engine_durable_wait_t;
/* Wait (mu held) for the flush numbered need: false when it is done
 * already; else w is called from the flush that ends it (stored or failed:
 * persist.durable says) or at engine_quiesce, and the timer thread is asked
 * to flush soon. */
bool engine_durable_wait(engine_t *j, uint64_t need, const engine_waker_t *w);
/* Forget the wait of ticket (mu held; its flush did not end in time). */
void engine_durable_cancel(engine_t *j, uint64_t ticket);
/* engine_flush into *rc, unless another thread is flushing now: then
 * false at once, nothing stored. */
bool engine_flush_try(engine_t *j, pai_err_t *rc);

/* ---- events.c: job events, persisted with the job's record ---- */

/* A job keeps this many events unless opts.events_per_job says. */
#define ENGINE_EVENTS_PER_JOB 32
int engine_events_per_job(const engine_t *j);
/* Record an event of job (or count the last one up when it repeats). */
void engine_event(engine_t *j, lc_job_t *job, const char *type, const char *reason, const char *msg,
                  int64_t now_ms);
/* Store operations built under mu and committed without it; owns its keys
 * and texts (engine_batch_free). */
typedef struct {
    store_op_t *ops;
    char **texts, **keys;
    size_t n, capops, captexts, capkeys;
} engine_batch_t;
void engine_batch_free(engine_batch_t *b);

/* ---- persist.c: the record a submission writes itself (submit.c) ---- */
/* A pending job's record as its submission stores it: the job record's
 * text and its events' writes (owned; engine_sub_rec_free). */
typedef struct {
    char *text;
    engine_batch_t ev;
    uint32_t ev_was; /* for engine_events_unflushed */
} engine_sub_rec_t;
/* Encode pending job as it is now (mu held), after the submission's own
 * pass: whatever that pass placed is in it (its task attempts "being
 * stored", sent to no agent yet). */
void engine_sub_encode(engine_t *j, lc_job_t *job, engine_sub_rec_t *s);
/* The write of s ended with rc (mu held).  PAI_OK: the job is published
 * already; its task attempts in s are durable (their nodes' long-polls
 * woken), and a change since the encode marks it dirty.  Else they are
 * new again and its events not stored. */
void engine_sub_settle(engine_t *j, lc_job_t *job, engine_sub_rec_t *s, pai_err_t rc);
void engine_sub_rec_free(engine_sub_rec_t *s);
/* A submission waiting for a flush to write its records (submit.c owns it
 * and keeps it alive while it is queued or taken). */
typedef enum {
    ENGINE_SUB_QUEUED, /* in persist.subs: the next flush after its pass takes it */
    ENGINE_SUB_TAKEN,  /* encoded into a flush that commits now */
    ENGINE_SUB_STORED, /* committed: rec.text is the record stored */
    ENGINE_SUB_BACK,   /* the flush failed (rc): the submission writes itself */
} engine_sub_state_t;
typedef struct engine_sub {
    lc_job_t *job;
    const char *cfg, *cmds, *ssh; /* its "jobcfg", "jobcmd", "jobssh" (NULL: none) texts */
    uint64_t pass;                /* taken once pass.done reaches it */
    engine_sub_rec_t rec;         /* encoded by the flush that takes it */
    engine_sub_state_t state;
    pai_err_t rc;
    /* Its submission runs the flush that stores it (after the group
     * delay): no other thread's flush is wanted for it (any takes it). */
    bool own_flush;
} engine_sub_t;
/* Queue s (mu held) to be written by the first flush after the next pass;
 * now: by the next flush, whenever it comes (a long queue: the job is
 * stored before it is queued in the scheduler). */
void engine_sub_queue(engine_t *j, engine_sub_t *s, bool now);
/* Take s back from the queue (mu held; it is ENGINE_SUB_QUEUED). */
void engine_sub_unqueue(engine_t *j, engine_sub_t *s);
/* Is a queued submission's pass done (a flush now would write it), one
 * whose submission does not flush for it itself (own_flush)? */
bool engine_subs_ready(const engine_t *j);
/* Add the writes of job's events not yet durable (and the deletes of those
 * past the count) to b and count them clean.  Returns what to give
 * engine_events_unflushed when the batch fails. */
uint32_t engine_events_encode(engine_t *j, lc_job_t *job, engine_batch_t *b);
void engine_events_unflushed(lc_job_t *job, uint32_t was_clean);
/* Without mu: read back the stored events of an active job no other thread
 * can reach yet (restore). */
void engine_events_restore(engine_t *j, lc_job_t *job);
/* Without mu: the events of job `name` in number order, the last
 * events_per_job: those stored with numbers below `below` (UINT32_MAX: all,
 * a compacted job), then mem (taken; NULL: none, else the events held in
 * memory, numbered from `below`).  New reference; NULL when the store
 * failed. */
json_t *engine_events_read(engine_t *j, const char *name, json_t *mem, uint32_t below);
/* Is event e within the retention (shown)?  Any thread. */
bool engine_event_shown(const engine_t *j, const json_t *e);
/* A job's events in memory as the API answers them (a new array; NULL when
 * it holds none, or is compacted); under mu. */
json_t *engine_events_json(const lc_job_t *job);
/* Without mu, flush_mu held: delete the stored events of job `name`. */
PAI_MUST_CHECK pai_err_t engine_events_delete(engine_t *j, const char *name);
/* Without mu: delete the stored events past the retention, in batches of
 * 1000, at most max_batches (0: all); returns how many, *more (may be NULL)
 * says whether some are left.  engine_events_prune_due does one batch per
 * timer tick while some are left, then again every 10 minutes. */
size_t engine_events_prune(engine_t *j, int max_batches, bool *more);
void engine_events_prune_due(engine_t *j, int64_t mono_ms);
void engine_enqueue(engine_t *j, lc_job_t *job);
/* engine_enqueue(); a retry the scheduler refuses fails the job (dispatch.c). */
void engine_enqueue_or_fail(engine_t *j, lc_job_t *job, int64_t now_ms);
/* Run scheduling passes while j->need_pass (the scheduler thread, and
 * start-up before threads exist). */
void engine_schedule(engine_t *j, int64_t now_ms);
/* Ask the scheduler thread for a pass if one is needed.  Passes are
 * coalesced: every event queued before a pass starts is decided by it. */
void engine_kick(engine_t *j);
/* Kicks held back while mu is held: between engine_kicks_hold and
 * engine_kicks_release (mu held, on this thread) engine_kick only notes
 * that a pass is wanted; release says whether to wake the scheduler
 * thread, which the caller does with engine_wake_pass once it has released
 * mu.  A thread signalled while its signaller still holds mu wakes only to
 * sleep again on mu: a context switch and a futex wait and wake more per
 * wake-up.  No condition wait on mu in between (it would not wake it). */
void engine_kicks_hold(engine_t *j);
bool engine_kicks_release(engine_t *j);
/* Without mu: wake the scheduler thread for the pass asked for under mu
 * (pass.need was set there, so no wake-up is lost). */
void engine_wake_pass(engine_t *j);
/* One pass now (mu held), counted like the scheduler thread's. */
void engine_run_pass(engine_t *j);
/* The scheduler thread's turn (mu held): one pass; true when records are
 * left to store, which the caller then flushes after unlocking (a flush
 * is due from here: persist.flush_due). */
bool engine_pass_to_flush(engine_t *j);
/* Take pass.vc_rows from the scheduler: after every pass, and after a VC
 * change swaps the scheduler (the rows' strings point into it). */
void engine_snapshot_vcs(engine_t *j);
/* Wait (mu held) until a pass that starts after now has completed. */
void engine_wait_pass(engine_t *j);
/* Fewer than ENGINE_SHORT_QUEUE jobs waited after the last pass. */
#define ENGINE_SHORT_QUEUE 256
bool engine_queue_short(const engine_t *j);
/* May a thread that holds mu run the pass it needs itself (an agent sync
 * batch on the resources its exits freed) instead of leaving it to the
 * scheduler thread?  With a short queue, or while passes are cheap: the
 * last one took under ENGINE_CHEAP_PASS_US (below it the scheduler thread
 * does not pace its passes either), so it delays the other requests no
 * more than the thread's would. */
#define ENGINE_CHEAP_PASS_US 200
bool engine_pass_cheap(const engine_t *j);
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
/* Load every node and job from the store (start-up, before the threads;
 * without mu: it reads the store and locks per record). */
pai_err_t engine_restore(engine_t *j);

/* Take job out of the scheduler, bound (release) or waiting (cancel), for a
 * job the engine holds as queued.  A scheduler that has it in neither state
 * disagrees with the engine: logged as an error, and the engine goes on (the
 * job is out of the scheduler either way). */
void engine_sched_forget(engine_t *j, const char *job);
/* engine_flush() from a background thread or start-up: a failure is logged
 * there and the records stay dirty, so the next timer tick retries them. */
void engine_flush_or_retry(engine_t *j);

/* Load the roles' commands and images from the store when not in memory.
 * Without mu, on a job no other thread can reach yet (restore). */
bool engine_load_cmds(engine_t *j, lc_job_t *job);
/* The scheduler's request for job (gang, its lazy preemption and kept
 * downgrade), its roles
 * written into roles[]; valid while job and roles live. */
sched_request_t engine_sched_request(const lc_job_t *job, sched_role_t roles[PAI_MAX_TASK_ROLES]);
/* Give a running job's allocations to scheduler s (restart, VC change). */
pai_err_t engine_sched_restore(sched_t *s, const lc_job_t *job, bool *downgraded);
/* A YAML document as JSON (plain scalars typed: integers, booleans, null);
 * NULL when it does not parse.  New reference. */

/* Persist every dirty job and node (takes the locks itself; call without mu).
 * Also loads the commands of newly bound jobs before their tasks become
 * durable, i.e. visible to agents (bind_job in dispatch.c).  Joins flushes:
 * when, once flush_mu is taken, a flush that encoded after the call began
 * has committed (it waited behind one in flight while another thread
 * flushed after it), everything the caller changed before the call is
 * durable and it returns PAI_OK without a commit of its own. */
pai_err_t engine_flush(engine_t *j);
/* engine_flush once the scheduling pass the caller asked for (pass.need,
 * run by the scheduler thread) has ended, waiting for it a bounded time
 * (2 ms): the changes that freed resources (an agent sync batch's exits)
 * and the placements made on them are stored by one commit, not one each,
 * and the caller's answer carries those placements.  Without the
 * scheduler thread, or with no pass due, it is engine_flush.  need:
 * engine_flush_need() read before the caller's wait (a flush in between
 * that covered its changes then saves it a commit). */
pai_err_t engine_flush_after_pass(engine_t *j, uint64_t need);
uint64_t engine_flush_need(const engine_t *j);
/* The syncs' group delay, before a sync batch's flush (without mu): while
 * sync-led flushes stream (one ended within SYNC_WINDOW_US), wait at most
 * SYNC_DELAY_US for the next batch with something to store, or for a flush
 * that covers need; a batch that arrives while another waits ends that
 * wait at once and does not wait itself (the two share a commit). */
void engine_sync_group_wait(engine_t *j, uint64_t need);
/* A sync batch's flush ended (the delay's reference). */
void engine_sync_flushed(engine_t *j);
/* Does anything dirty wait for a commit (mu held): a task attempt created
 * since the last encode (sent to its agent only once stored), a
 * submission answered by its pass, a held sync, a node record?  Other
 * changes (a task reported running, a waiting job's new state) are stored
 * by the next flush that someone waits for, or the timer's within a tick,
 * not by a commit of their own after every pass. */
bool engine_flush_wanted(engine_t *j);
/* A waiting job keeps its rendered commands, images, registry auth and
 * mounts in memory when they take this many bytes or fewer in all (the
 * common case: a 100,000-job queue holds at most ~50 MiB more): its
 * placement then needs no read of its "jobcmd" record back, a store read
 * per job in the flush that stores it.  Larger ones live in that record
 * only until the job is placed (submit.c). */
#define ENGINE_CMDS_KEEP_BYTES 256
/* A submission reached its reservation (or failed before it): one fewer
 * coming (mu held). */
void engine_sub_arrived(engine_t *j);
/* n submissions arrive (n > 0) or are answered (n < 0): the group delay's
 * count (atomic, no lock). */
void engine_sub_pending(engine_t *j, int n);
/* The number of the flush that stores the queued submissions mine[0..n)
 * (mu held; a batch's, queued together): the next to encode, or the one
 * that took them. */
uint64_t engine_sub_need(engine_t *j, engine_sub_t *const *mine, size_t n);
/* engine_flush for the changes made before engine_flush_need returned
 * need: a flush numbered need or later that succeeded covers them. */
pai_err_t engine_flush_from(engine_t *j, uint64_t need);
/* Wait for a flush in flight to end (takes flush_mu and lets it go):
 * true when a flush numbered need or later has succeeded. */
bool engine_flush_covered(engine_t *j, uint64_t need);
/* The group delay of a submission batch with a long queue (mu held; its
 * records queued, mine[0..n) its queued submissions): while submissions
 * come faster than commits, wait a bounded moment for the clients the
 * last submission flush answered to come back, so that one commit stores
 * theirs with these.  Returns at once when nobody is expected.  True when
 * it waited. */
bool engine_sub_group_wait(engine_t *j, engine_sub_t *const *mine, size_t n);

/* A running task attempt's node reported its GPUs' utilization (a sync):
 * add the GPU-time used since the last one and track whether it is idle
 * (accounting.c). */
void engine_usage_sample(engine_t *j, const engine_node_t *n, lc_job_t *job, lc_task_attempt_t *ta,
                         int64_t now);
/* Since when job's running GPUs have all been idle, once that has lasted
 * the configured idle time; 0 when not flagged. */
int64_t engine_gpu_idle_since(const engine_t *j, const lc_job_t *job, int64_t now);
/* since, when that is long enough ago to flag a job gpuIdle at now; else 0
 * (any thread: for reads without mu). */
int64_t engine_gpu_idle_due(const engine_t *j, int64_t since, int64_t now);

/* Notifications (notices.c).  Give job (private: not in the table yet) the
 * events spec asks for (copied; nothing when it asks none). */
void engine_note_attach(lc_job_t *job, const engine_note_spec_t *spec);
/* Hand event k of job to ops.note when the job asked for it (msg NULL: the
 * job's diagnostics; since: waiting/idle since).  Waiting and idle go once
 * per job. */
void engine_note(engine_t *j, lc_job_t *job, engine_note_kind_t k, const char *msg, int64_t since,
                 int64_t now);
/* The event of the final state job just reached. */
void engine_note_final(engine_t *j, lc_job_t *job, int64_t now);
/* The timer's scan (at most once a second): jobs waiting longer than
 * opts.note_waiting_ms, running jobs flagged gpuIdle for opts.note_idle_ms. */
void engine_note_scan(engine_t *j, int64_t now);

/* The scheduler options every scheduler this engine builds uses (start-up
 * and run-time VC changes alike). */
sched_opts_t engine_sched_opts(const engine_t *j);
/* sched_opts_t.on_violation (ctx: the engine, mu held): log and count one. */
void engine_sched_violation(void *ctx, const char *event, const char *job, const char *what);
/* After restores (start-up, a VC change): each running task's cell as the
 * scheduler holds it now (sched_task_cell()) into its record, persisted
 * when it changed (a restore without a record may choose another cell). */
void engine_refresh_cells(engine_t *j);
/* The GPUs a stored or reported GPU list marks "healthy": false, as a mask
 * of their indices. */
uint64_t engine_bad_gpus(const json_t *gpus);
/* The scheduler's view of a registered node (unhealthy when lost or when
 * one of its GPUs is bad). */
sched_node_t engine_sched_node(const engine_node_t *n);

#endif
