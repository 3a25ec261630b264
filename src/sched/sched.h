/*
 * sched.h - the pai scheduler: topology-aware gang scheduling with
 * virtual-cluster guarantees as cells (HiveD's model), priorities,
 * preemption and an anti-starvation reservation.
 *
 * The module is pure: it does no I/O, reads no globals and no clocks (the
 * current time is an argument; decision latency is measured only through the
 * optional clock callback the caller injects) and starts no threads.  It is
 * not thread-safe: the caller serialises calls (the server holds a mutex).
 *
 * Life cycle
 *   sched_new_config() / sched_new_nodes()   build the cluster model
 *   sched_node_update()                      nodes report (health, cpus...)
 *   sched_submit() / sched_cancel()          requests enter / leave the queue
 *   sched_schedule(now)                      one event-driven pass -> decisions
 *   sched_release()                          a bound job finished or stopped
 *   sched_restore()                          after a restart, re-add running jobs
 *   sched_vc_status() / sched_node_status()  read-only views for the API
 *
 * Semantics are described in docs/scheduler.md.
 */
#ifndef PAI_SCHED_SCHED_H
#define PAI_SCHED_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct sched sched_t;

/* OpenPAI priority classes. */
enum {
    SCHED_PRIO_OPPO = -1, /* opportunistic: outside quotas, preempted first */
    SCHED_PRIO_TEST = 10, /* the default */
    SCHED_PRIO_PROD = 100,
    SCHED_PRIO_CRIT = 120,
    SCHED_PRIO_MIN = -1, /* HiveD's range; sched_submit() refuses others */
    SCHED_PRIO_MAX = 1000,
};

/* Name limits (all names are copied into the scheduler). */
#define SCHED_NAME_MAX          64
#define SCHED_REASON_MAX        256
#define SCHED_EXPLAIN_MAX       1024 /* a good buffer size for sched_explain() */
#define SCHED_MAX_GPUS_PER_NODE 64

typedef enum {
    SCHED_POLICY_PAI = 0,    /* cells, guarantees, preemption, no HOL + reservation */
    SCHED_POLICY_FIFO_QUOTA, /* YARN-CS-like: per-VC FIFO, GPU-count quota, no preemption */
    SCHED_POLICY_FIRST_FIT,  /* no quotas: first waiting job that fits anywhere */
} sched_policy_t;

typedef struct {
    sched_policy_t policy;
    /* A guaranteed job waiting longer than this gets capacity reserved
     * (anti-starvation).  0 means the default, 10 minutes; <0 disables. */
    int64_t starvation_ms;
    /* Config mode: nodes named in the config start healthy (the
     * simulator and tests) instead of unhealthy until reported (server). */
    bool assume_healthy;
    /* Optional monotonic clock in microseconds, used only to measure the
     * scheduler's own decision latency; NULL: latency is not measured. */
    int64_t (*clock_us)(void *ctx);
    void *clock_ctx;
    /* Emit no WAIT decisions and skip composing wait reasons (the simulator:
     * thousands of waiting jobs per pass). */
    bool quiet_waits;
    /* Tests: pass over each entry the memo decides for, as before the pass
     * jumped over a covered run at the queue's end (sched.c, memo_tail). */
    bool memo_no_jump;
    /* Check the invariants (sched_check()) after every decision and every
     * change of the model; violations are counted (sched_check_failures()).
     * For tests, `pai sim --check` and debug runs: it costs a scan of the
     * model per decision.  Compiled out when NDEBUG is defined. */
    bool check;
    /* Optional, with check: called for each violation the check finds (up
     * to 4 per event; all are counted), with the event it followed ("the
     * bind", "a release", ...), the job that event concerned (NULL: none)
     * and the checker's text: the caller logs and counts them.  It must
     * not call back into the scheduler. */
    void (*on_violation)(void *ctx, const char *event, const char *job, const char *what);
    void *violation_ctx;
} sched_opts_t;

/* Build from a HiveD scheduler config (YAML text, len bytes).  Fields that
 * only mean something on Kubernetes are ignored.  On failure returns
 * PAI_E_BAD_CONFIG and writes a one-line reason into err
 * (errlen bytes, may be NULL).  *out is owned by the caller: sched_free(). */
PAI_MUST_CHECK pai_err_t sched_new_config(const char *yaml, size_t len, const sched_opts_t *opts,
                                          sched_t **out, char *err, size_t errlen);

/* Build an empty model whose nodes come from sched_node_update(): every node
 * is its own top-level cell, one VC "default" owns every GPU node (its
 * guarantee grows with the cluster).  opts may be NULL. */
PAI_MUST_CHECK pai_err_t sched_new_nodes(const sched_opts_t *opts, sched_t **out);

/* A uniform cluster for the simulator and benchmarks: nodes x gpus_per_node
 * GPUs of one SKU, grouped into racks of rack_nodes nodes (0: no racks), and
 * VCs owning whole nodes (vc_nodes[i] nodes for vc_names[i]; their sum must
 * not exceed nodes).  Refused with a reason like sched_new_config(). */
PAI_MUST_CHECK pai_err_t sched_new_uniform(int nodes, int gpus_per_node, int rack_nodes,
                                           const char *const *vc_names, const int *vc_nodes,
                                           size_t n_vcs, const sched_opts_t *opts, sched_t **out,
                                           char *err, size_t errlen);

void sched_free(sched_t *s);

/* ---- nodes ---------------------------------------------------------- */

typedef struct {
    const char *name;    /* node name (agent id); required */
    const char *address; /* IP or host; config nodes match by address or name */
    int gpus;            /* GPU count (ignored for config nodes: the config decides) */
    const char *sku;     /* GPU model / SKU type, e.g. "A100"; NULL or "" for CPU-only */
    int cpus;            /* vCPUs; 0 = unknown (not checked) */
    int64_t memory_mb;   /* memory; 0 = unknown (not checked) */
    bool healthy;
    /* Optional topology: GPUs per group sharing a PCIe switch/socket (e.g. 4
     * for 2 sockets x 4).  0 = power-of-two buddy blocks. */
    int gpus_per_group;
} sched_node_t;

/* Add or update a node.  In node-derived mode nodes are keyed by name (agents
 * sharing one address are distinct nodes) and a new node joins VC default;
 * a GPU count different from the first report returns PAI_E_INVALID (the
 * node keeps its first shape).  In config mode the node is matched by name,
 * then address, against the config's cellAddress; one the config does not
 * name returns PAI_E_NOT_FOUND (it is ignored).  Reported cpus/memory
 * replace the config's skuTypes figures. */
PAI_MUST_CHECK pai_err_t sched_node_update(sched_t *s, const sched_node_t *node);

/* Health only (agent lost, GPU failed).  Unhealthy nodes get no new work;
 * running work is left alone (the caller decides).  PAI_E_NOT_FOUND when unknown. */
PAI_MUST_CHECK pai_err_t sched_node_set_health(sched_t *s, const char *name, bool healthy);

/* ---- requests ------------------------------------------------------- */

typedef struct {
    const char *name;           /* task role name */
    int instances;              /* >= 1 */
    int gpus;                   /* per instance; 0 = CPU-only task */
    int cpus;                   /* per instance; 0 = not checked */
    int64_t memory_mb;          /* per instance; 0 = not checked */
    const char *sku;            /* optional SKU type ("" / NULL: any) */
    const char *pinned_cell;    /* optional pinnedCellId of the VC */
    const char *affinity_group; /* optional; roles naming the same group are packed
                                 * together; roles naming none form one job-wide group */
    const char *within_cell;    /* optional cell type name (HiveD's withinOneCell): all
                                 * tasks of the role's affinity group lie within one cell
                                 * of that type, else the job waits; the deepest type
                                 * its roles name applies to a group */
} sched_role_t;

typedef struct {
    const char *job_id; /* unique; copied */
    const char *vc;
    int priority;      /* SCHED_PRIO_*, -1..1000 (HiveD's range); -1 is opportunistic */
    bool gang;         /* true: all tasks bind together (the default in OpenPAI) */
    bool lazy_preempt; /* true: when preempted, first try to keep running as oppo */
    int64_t submit_ms;
    const sched_role_t *roles;
    size_t n_roles;
    /* sched_restore() only: the job ran outside its VC's guarantee before the
     * restart (sched_job_opportunistic(): a lazy preemption downgraded it);
     * it is restored so instead of taking its VC's cells back.  Ignored by
     * sched_submit(). */
    bool opportunistic;
} sched_request_t;

/* Queue a request (copied).  Returns PAI_E_CONFLICT_JOB if the id is known,
 * PAI_E_INVALID for a malformed request (reason in err).  A request that can
 * never fit its VC is accepted and answered with a REFUSE decision by the
 * next sched_schedule(). */
PAI_MUST_CHECK pai_err_t sched_submit(sched_t *s, const sched_request_t *req, char *err,
                                      size_t errlen);

/* Remove a waiting job (also one that got a PREEMPT for it).  PAI_E_NO_JOB
 * when not waiting. */
PAI_MUST_CHECK pai_err_t sched_cancel(sched_t *s, const char *job_id);

/* A bound (running, or preempted and now gone) job released its resources.
 * PAI_E_NO_JOB when not bound. */
PAI_MUST_CHECK pai_err_t sched_release(sched_t *s, const char *job_id);

/* ---- decisions ------------------------------------------------------ */

typedef enum { SCHED_BIND, SCHED_PREEMPT, SCHED_WAIT, SCHED_REFUSE } sched_kind_t;

typedef struct {
    const char *role; /* task role name */
    int index;        /* instance index inside the role */
    const char *node; /* node name */
    const char *address;
    int n_gpus;
    const int *gpus; /* exact GPU indices on the node, n_gpus of them */
    /* The physical cell bound to the job's VC that holds the task
     * ("TYPE@ADDRESS": a cell type and its first node's address), NULL when
     * none (opportunistic, CPU-only).  Record it with the task and give it
     * back to sched_restore() (sched_alloc_t.cell): the VC's virtual cell is
     * then bound to that same cell after a restart. */
    const char *cell;
} sched_task_bind_t;

typedef struct {
    sched_kind_t kind;
    const char *job_id;
    /* BIND: the tasks bound now (all of them for a gang). */
    const sched_task_bind_t *tasks;
    size_t n_tasks;
    bool opportunistic; /* BIND: runs outside its VC's guarantee */
    /* PREEMPT: jobs to stop for job_id; call sched_release() for each once
     * gone; job_id then binds in a later pass. */
    const char *const *victims;
    size_t n_victims;
    /* WAIT / REFUSE (and PREEMPT): a reason a person understands. */
    const char *reason;
} sched_decision_t;

/* One scheduling pass at time now_ms.  *out points to n decisions owned by
 * the scheduler and valid until the next sched_schedule()/sched_free().
 * A WAIT is reported for a job only when its reason changed since the last
 * pass (so an unchanged queue yields no decisions).  REFUSEd jobs are
 * forgotten.  Returns PAI_OK (memory comes from the x* allocators of
 * common/util.h: running out aborts, as everywhere in pai). */
PAI_MUST_CHECK pai_err_t sched_schedule(sched_t *s, int64_t now_ms, const sched_decision_t **out,
                                        size_t *n);

/* Why a waiting job waits, computed now from the model (read only: no
 * decision changes; works with quiet_waits).  Writes one line into buf (len
 * bytes, truncated): the blocking resource (the VC's guaranteed cells of the
 * SKU, free vs needed, nodes x GPUs; CPU/memory; unhealthy nodes or doomed
 * cells; the pinned cell), preempted jobs still stopping, GPUs reserved for a
 * starving job, jobs ahead in the queue.  For a job that is bound it says so.
 * PAI_E_NO_JOB when the scheduler does not know job_id. */
PAI_MUST_CHECK pai_err_t sched_explain(const sched_t *s, const char *job_id, char *buf, size_t len);

/* ---- restart -------------------------------------------------------- */

typedef struct {
    const char *role;
    int index;
    const char *node;
    int n_gpus;
    const int *gpus;
    const char *cell; /* optional: the task's cell as BIND or sched_task_cell() named it */
} sched_alloc_t;

/* Re-add a running job after a restart from its allocations (one per task).
 * A guaranteed task's recorded cell (sched_alloc_t.cell) is bound to the
 * job's VC again, exactly, when it is free or already the VC's (HiveD's
 * pod annotations do the same); without a record, or when the record no
 * longer fits the configuration, the binding is rebuilt from where the job
 * runs.
 * If the job no longer fits its VC's guarantee (config changed, VC gone, cells
 * taken), it keeps running as opportunistic (*downgraded = true when not NULL).
 * An allocation on a node (or GPU index) the model no longer has is dropped:
 * the rest of the job is kept, and that task waits to be placed again (a
 * later BIND).  PAI_E_INVALID when an allocation names an unknown task or a
 * GPU already in use. */
PAI_MUST_CHECK pai_err_t sched_restore(sched_t *s, const sched_request_t *req,
                                       const sched_alloc_t *allocs, size_t n_allocs,
                                       bool *downgraded);

/* The cell a bound task's GPUs are charged to now (sched_task_bind_t.cell)
 * into buf (len bytes): what a caller records for sched_restore(), and
 * refreshes after restores (a restore without records may choose other
 * cells).  False (buf "") when the task has none: opportunistic, CPU-only,
 * not bound, or an unknown job or task. */
bool sched_task_cell(const sched_t *s, const char *job_id, const char *role, int index, char *buf,
                     size_t len);

/* Does the job run outside its VC's guarantee now (opportunistic priority,
 * a lazy downgrade, or a restore that could not give it its cells)?  What a
 * caller keeps across a restart (sched_request_t.opportunistic).  False for
 * an unknown job. */
bool sched_job_opportunistic(const sched_t *s, const char *job_id);

/* Lazy downgrades so far (sched_summary_t.lazy_preemptions, in O(1)): a
 * caller that keeps sched_job_opportunistic() looks at its jobs when this
 * grows. */
uint64_t sched_lazy_preemptions(const sched_t *s);

/* ---- status --------------------------------------------------------- */

typedef struct {
    const char *vc;
    const char *sku;     /* "" for CPU */
    int guaranteed_gpus; /* GPUs in the VC's cells of this SKU */
    int used_gpus;       /* used by the VC's guaranteed jobs */
    int oppo_gpus;       /* used by the VC's opportunistic jobs (anywhere) */
    int total_gpus;      /* cluster GPUs of this SKU */
    int doomed_cells;    /* VC cells that cannot be bound to healthy cells */
    int bad_gpus;        /* GPUs of this SKU on unhealthy nodes (cluster) */
    int64_t guaranteed_cpus, used_cpus;
    int64_t guaranteed_memory_mb, used_memory_mb;
    int running_jobs, waiting_jobs;
} sched_vc_status_t;

/* Fill up to cap rows (one per VC and SKU, VCs in name order); returns the
 * number of rows that exist (may exceed cap).  Strings stay valid until the
 * next call that changes the model.  O(rows): the use and job counts are
 * kept up to date as tasks bind and jobs change state, the rest is kept
 * until the cluster's shape or health changes; while a node is unhealthy
 * the doomed cells are counted again at each call. */
size_t sched_vc_status(sched_t *s, sched_vc_status_t *rows, size_t cap);
/* The same rows computed from the whole model (every node, virtual cell,
 * job and task), as sched_vc_status() did before it kept counts: for tests. */
size_t sched_vc_status_recount(sched_t *s, sched_vc_status_t *rows, size_t cap);

typedef struct {
    const char *name, *address, *sku;
    int gpus, used_gpus, free_gpus;
    int cpus, used_cpus;
    int64_t memory_mb, used_memory_mb;
    bool healthy;
    const char *vc; /* VC whose cell this node is bound to now, or "" */
} sched_node_status_t;

/* Same contract as sched_vc_status(), one row per node in model order. */
size_t sched_node_status(const sched_t *s, sched_node_status_t *rows, size_t cap);

typedef struct {
    int nodes, healthy_nodes;
    int gpus, used_gpus, bad_gpus;
    int running_jobs, waiting_jobs;
    uint64_t decisions[4];     /* by sched_kind_t */
    uint64_t preemptions;      /* victim jobs named in PREEMPT decisions */
    uint64_t lazy_preemptions; /* victims downgraded to oppo instead of killed */
    /* Decision latency (needs opts.clock_us): count, sum and a histogram with
     * upper bounds 0.1, 1, 10, 100, 1000 ms and +Inf (cumulative, Prometheus). */
    uint64_t latency_count;
    double latency_sum_s;
    uint64_t latency_le[6];
    double latency_p99_s; /* from a log-scale histogram (about 9% resolution) */
    double latency_max_s;
    /* Whole passes (sched_schedule, needs opts.clock_us), the same buckets. */
    uint64_t pass_count;
    double pass_sum_s, pass_max_s;
    uint64_t pass_le[6];
    /* Queue entries a pass did not look at: the tail the memo decided for
     * as a whole (sched.c, memo_tail). */
    uint64_t tail_passed_over;
} sched_summary_t;

void sched_summary(const sched_t *s, sched_summary_t *out);

/* ---- invariants ----------------------------------------------------- */

typedef struct {
    char what[2 * SCHED_REASON_MAX];
} sched_violation_t;

/* Check the scheduler's invariants on its model now (read only): no GPU or
 * cell bound twice and the bookkeeping consistent; every guaranteed job in
 * cells bound to its VC; all VCs' unbound virtual cells still bindable at
 * once on free cells (sharing safety); each gang's GPU tasks within one
 * chain; each affinity group with a within_cell inside one cell of that
 * type; and, right after a pass, no waiting guaranteed job that opportunistic
 * work alone keeps out of its VC's cells (it must have preempted).  Fills up
 * to cap rows; returns how many violations exist (0: all hold). */
size_t sched_check(const sched_t *s, sched_violation_t *out, size_t cap);

/* Violations found by opts.check since sched_new_*() (0 when off); *first
 * (may be NULL) gets the first one's text, valid until sched_free(). */
uint64_t sched_check_failures(const sched_t *s, const char **first);

/* Test hook (unit tests, and the server's PAI_TEST_SCHED_CORRUPT): the next
 * job that binds leaves its VC's used-GPU count one too high, a bookkeeping
 * error that the checker reports from then on.  Never used otherwise. */
void sched_test_corrupt_next_bind(sched_t *s);

/* Human name of a decision kind: "bind", "preempt", "wait", "refuse". */
const char *sched_kind_name(sched_kind_t k);

#endif
