/*
 * sched_int.h - the scheduler's internal model, shared by src/sched/ sources only.
 *
 * Model (see docs/scheduler.md):
 *   ctype_t  a cell type: a leaf SKU (one GPU) or a cell of child_n children.
 *   cell_t   a physical cell.  Cells are stored in DFS order, so a cell covers
 *            the contiguous node range [node_lo, node_hi).  Cells below node
 *            level (sockets, PCIe switches, GPUs: `sub`) exist only where a VC
 *            or a pinned cell needs them; one covers GPU positions
 *            [gpu_lo, gpu_hi) of its node and follows its node cell.
 *   sched_mnode_t   a machine: GPUs with their owner job, reservation and claim stamps.
 *   vc_t     a virtual cluster: virtual cells (vcell_t) each bound lazily to a
 *            physical cell of its type, or unbound.
 *   job_t    a request with its tasks; waiting, running or being preempted.
 *
 * Invariants:
 *   - a physical cell is bound to at most one vcell; no bound cell has a bound
 *     ancestor or descendant (bound_below counts bound cells in the subtree);
 *   - a guaranteed job's GPUs all lie in cells bound to its own VC;
 *   - cell->vc_used is the number of GPUs that the bound VC's guaranteed jobs
 *     use inside the cell; an unpinned bound cell with vc_used == 0 is unbound.
 */
#ifndef PAI_SCHED_SCHED_INT_H
#define PAI_SCHED_SCHED_INT_H

#include "common/strmap.h"
#include "sched/sched.h"

typedef enum { MODE_FREE, MODE_PREEMPT, MODE_RESERVE } pmode_t;

typedef struct {
    int lo, hi;    /* node range */
    uint64_t mask; /* GPU positions of those nodes (SCHED_ALL_GPUS: all; a cell below node level) */
} range_t;

#define SCHED_ALL_GPUS (~(uint64_t)0)

typedef struct {
    int job; /* job slot */
    pmode_t mode;
    uint32_t stamp;
    uint64_t mask;  /* GPU positions usable on the node being looked at (its range's) */
    uint64_t wmask; /* a group "within one cell" below node level: the block it must use */
    range_t *ranges;
    int n_ranges;
    size_t cap_ranges;
    int *victims;
    int n_victims;
    size_t cap_victims;
} attempt_t;

#define SCHED_NONE (-1)

typedef struct {
    char name[SCHED_NAME_MAX];
    int child; /* child type, SCHED_NONE for a leaf (SKU) */
    int child_n;
    bool node_level;
    bool defined; /* appears in cellTypes (not only as a child name) */
    int level;    /* 1 for a leaf */
    int gpus;     /* leaves in one cell of this type */
    int sku;      /* index into skus */
    int cpus;     /* per cell, from skuTypes (0 unknown) */
    int64_t memory_mb;
} ctype_t;

typedef struct {
    char name[SCHED_NAME_MAX];
    int cpus_per_gpu;
    int64_t mem_per_gpu_mb;
} sku_t;

typedef struct {
    int type;
    int parent;
    int depth;
    int node_lo, node_hi;
    int chain; /* type of the top-level ancestor */
    int bound_vc, bound_vcell;
    int bound_below; /* bound cells in this subtree, this one included */
    int vc_used;     /* GPUs used by the bound VC's guaranteed jobs */
    int bad_below;   /* unhealthy nodes in this subtree (below node level: its node's) */
    bool sub;        /* below node level: GPU positions [gpu_lo, gpu_hi) of node node_lo */
    uint8_t gpu_lo, gpu_hi;
    char pinned[SCHED_NAME_MAX];
} cell_t;

/* A node of the model (sched_node_t in sched.h is the caller's description
 * of one; this is the scheduler's own state for it). */
typedef struct {
    char key[SCHED_NAME_MAX]; /* identity: cellAddress (config) or agent name (derived) */
    char name[SCHED_NAME_MAX];
    char address[SCHED_NAME_MAX];
    int cell;
    /* A machine hosting node-level cells of several chains (one cellAddress
     * in two chains, e.g. two GPU types) is one model node per cell, with
     * disjoint device indices; twin links them in config order (the first
     * is the one names map to), SCHED_NONE ends the list. */
    int twin;
    bool is_twin;       /* not the first of its machine */
    int sub_lo, sub_hi; /* its cells below node level (DFS order; empty: none) */
    uint64_t pin_mask;  /* GPUs in pinned cells below node level */
    int sku;            /* SCHED_NONE: CPU-only */
    int ngpu;
    int group; /* topology block size (power of two blocks when 0) */
    int cpus, cpu_used;
    int64_t mem, mem_used;
    bool healthy;
    int used;   /* GPUs with an owner */
    int *owner; /* job slot per GPU or SCHED_NONE */
    /* GPUs are kept in topology order (positions: aligned blocks are PCIe
     * switches, sockets); index[p] is the device index of position p, from
     * the config's cellAddress below node level (NULL: p itself).  Only
     * decisions and restores see device indices. */
    uint8_t *index;
    int *res;        /* reserving job slot per GPU or SCHED_NONE */
    uint32_t *claim; /* attempt stamp per GPU (tentative use) */
    uint32_t claim_stamp;
    int claim_gpus, claim_cpus;
    int64_t claim_mem;
} sched_mnode_t;

typedef struct {
    int type; /* cell type of the virtual cell */
    int chain;
    int cell; /* bound physical cell or SCHED_NONE */
    bool pinned;
} vcell_t;

/* What a VC's jobs hold on nodes of one SKU (sched_vc_status() rows). */
typedef struct {
    int used_gpus; /* guaranteed jobs */
    int oppo_gpus; /* opportunistic jobs */
    int64_t cpus, memory_mb;
} vc_use_t;

typedef struct {
    char name[SCHED_NAME_MAX];
    vcell_t *vcells;
    int n_vcells;
    int quota_gpus;   /* fifo-quota policy: GPU count */
    int used_gpus;    /* guaranteed GPUs in use (all policies) */
    int reserver;     /* job slot holding the VC's anti-starvation reservation */
    int lazy_running; /* running guaranteed jobs with lazy preemption */
    bool gc;          /* a bound cell may have become unused: vc_gc() */
    int *gc_cells;    /* ... these */
    int n_gc;
    size_t cap_gc;
    range_t *dom; /* cached node ranges of the bound cells (sorted, merged) */
    int n_dom, dom_sku, dom_chain;
    size_t cap_dom;
    bool dom_valid;
    uint64_t bind_pass; /* the pass (sched_t.passes) that last bound or unbound a cell */
    struct {
        int prio, count;
    } running[8]; /* running guaranteed jobs per priority (a filter for preemption) */
    int n_running_prios;
    int running_other; /* ... of priorities beyond the table */
    /* Kept up to date for sched_vc_status() (recounted by sched_check):
     * the bound tasks of the VC's jobs per SKU of their node, index SKU + 1
     * (0: CPU-only nodes; grown on demand, absent = zero), and its jobs
     * waiting and running (dying included). */
    vc_use_t *use;
    int n_use;
    int n_waiting, n_running;
} vc_t;

/* A job slot's state in the scheduler (not the job's lifecycle state,
 * lc_job_state_t in src/engine/lifecycle.h). */
typedef enum {
    SCHED_JOB_FREE = 0,
    SCHED_JOB_WAITING,
    SCHED_JOB_RUNNING,
    SCHED_JOB_DYING
} sched_job_state_t;

typedef struct {
    int role;
    int index;
    int gpus, cpus;
    int64_t mem;
    int sku;    /* SCHED_NONE: any */
    int pinned; /* pinned physical cell or SCHED_NONE */
    int group;  /* affinity group id (role index when none) */
    int within; /* cell type the group must stay within (sched_role_t.within_cell) or SCHED_NONE */
    int node;   /* SCHED_NONE while unbound */
    int gpu0;   /* offset into job->gpu */
    int cell;   /* bound cell charged (guaranteed) or SCHED_NONE */
    bool bound; /* committed (node set and GPUs owned) */
    bool emitted; /* reported in a BIND decision */
} sched_task_t;

typedef struct {
    char *id;
    sched_job_state_t state;
    int vc; /* SCHED_NONE: unknown VC (refused) */
    int prio;
    bool gang, lazy, oppo; /* oppo: effective (prio < 0 or downgraded) */
    int64_t submit_ms;
    uint64_t seq;
    char **roles;
    int n_roles;
    sched_task_t *tasks;
    int n_tasks;
    int *gpu; /* GPU indices of all tasks */
    int total_gpus, max_task_gpus;
    int sku;        /* SKU common to all tasks or SCHED_NONE */
    int dying_for;  /* SCHED_JOB_DYING: the job this one is preempted for */
    int waiting_on; /* preemptor: victims not yet released */
    bool refuse;    /* reason says why */
    int *resv;      /* reserved GPUs: node * SCHED_MAX_GPUS_PER_NODE + gpu */
    int n_resv;
    bool lazy_counted; /* counted in vc->lazy_running */
    bool in_queue;     /* in sched_t.queue */
    /* The pass's dominance memo (sched.c): may this job's failure decide
     * for others and theirs for it?  GPU tasks of one SKU, no pinned cell,
     * no withinOneCell, CPUs and memory only for a single task (memo_cpus,
     * memo_mem; 0 otherwise).  Fixed at submission. */
    bool memo_shape;
    int memo_cpus;
    int64_t memo_mem;
    unsigned nf_ver; /* never_fits() found it could fit at topo_ver + 1 (0: not yet) */
    char reason[SCHED_REASON_MAX];
    char last_reason[SCHED_REASON_MAX];
} job_t;

/* A queue entry: the job's slot and a copy of what the pass's dominance
 * memo compares (sched.c), so that a pass skips a job the memo decides for
 * without reading its job_t (a deep queue is mostly such jobs).  Every
 * field but fast and nf_ver is fixed while the job waits; those two are
 * refreshed when the job is queued and after each visit, and only a visit
 * can make fast true again (a reservation or victims to wait for are set
 * only during a visit; dropping them outside one only delays the skip). */
typedef struct {
    int slot;
    int vc, sku, prio;
    int max_task, total, cpus; /* cpus, mem: memo_cpus, memo_mem */
    unsigned nf_ver;           /* job_t.nf_ver */
    int64_t mem;
    bool oppo, gang, single;
    bool fast; /* memo_shape, waiting, not refused, no reservation, no victims awaited */
    bool seen; /* visited by the current pass */
} qent_t;

/* String -> int index maps over common/strmap.h, created on first put
 * (a NULL map is empty).  They take the map's address so that the fields
 * can stay NULL until used. */
void sched_strmap_free(strmap_t **m);
int sched_strmap_get(strmap_t *const *m, const char *key);
PAI_MUST_CHECK pai_err_t sched_strmap_put(strmap_t **m, const char *key, int val);
void sched_strmap_del(strmap_t **m, const char *key);

struct sched {
    sched_opts_t opts;
    bool derived; /* model from reported nodes */
    ctype_t *types;
    int n_types;
    sku_t *skus;
    int n_skus;
    cell_t *cells;
    int n_cells;
    size_t cap_cells;
    sched_mnode_t *nodes;
    int n_nodes;
    size_t cap_nodes;
    int pick_hint;  /* where the last buddy pick ended (ties: any maximal cell) */
    uint8_t *nfree; /* free GPUs per node, packed for fast scans (mirrors ngpu - used) */
    vc_t *vcs;
    int n_vcs;
    strmap_t *node_map; /* name and address -> node */
    strmap_t *job_map;  /* id -> job slot */
    job_t *jobs;
    int n_jobs;
    size_t cap_jobs;
    int *free_slots;
    int n_free;
    qent_t *queue; /* waiting jobs: [0, n_sorted) in pass order, then new ones */
    int n_queue, n_sorted;
    size_t cap_queue;
    uint64_t seq;
    uint32_t stamp;
    /* decisions of the last pass */
    sched_decision_t *dec;
    size_t n_dec, cap_dec;
    struct arena *arena;
    /* counters */
    uint64_t kinds[4], preemptions, lazy_preemptions;
    uint64_t lat_count, lat_le[6];
    double lat_sum;
    uint64_t lat_hist[256]; /* bucket = 8 * log2(microseconds) */
    double lat_max;
    uint64_t pass_count, pass_le[6]; /* whole passes (sched_schedule), same buckets */
    uint64_t tail_passed_over;       /* queue entries a pass did not look at (memo_tail) */
    double pass_sum, pass_max;
    bool doomed_hit; /* binding met a doomed cell during the current job */
    int within_miss; /* 1 + the cell type a group found no room within (current job), 0 none */
    bool touched, touched_lat; /* a placement attempt ran for the current job */
    int running, waiting;
    /* cluster capacity per SKU (+1: all), recomputed when topo_ver moves */
    int *cap_total, *cap_max_node;
    int cap_max_cpus;
    unsigned topo_ver, caps_ver;
    /* Wait reasons' inputs per VC and SKU (+1: all), built on demand within
     * one pass (sched_reasons.c): a VC's guaranteed GPUs (an entry is valid
     * when its stamp is the pass) and GPUs held by preempted jobs still
     * stopping (valid while rw_dying_key matches the pass, the preemptions
     * and the lazy downgrades: the only changes to dying jobs in a pass). */
    int *rw_quota, *rw_dying;
    uint64_t *rw_quota_stamp;
    uint64_t rw_dying_key[3];
    int rw_n; /* entries allocated: n_vcs x (n_skus + 1) */
    /* never_fits()'s VC quota per VC and SKU (+1), valid while its version
     * is topo_ver + 1 (sched_reasons.c) */
    int *nf_quota;
    unsigned *nf_quota_ver;
    int oppo_running; /* running opportunistic jobs */
    int n_bad_nodes;  /* unhealthy nodes (0: buddy order alone keeps sharing safety) */
    struct memo *memo;
    struct memo_kind *memo_kinds; /* sched.c: the memo's entries by kind */
    bool memo_full;               /* ... too many kinds this pass: scan them all */
    int memo_last;                /* ... the slot of the kind looked up last */
    struct memo_tail *tail;       /* sched.c: the queue's tail the memo may skip whole */
    attempt_t at;
    int n_memo;
    size_t cap_memo;
    int *scratch;        /* per cell, for placement */
    struct wcand *wcand; /* "within one cell" candidates of a group (sched_place.c) */
    size_t cap_wcand;
    uint32_t *scratch_stamp;
    int cap_scratch;
    /* invariant checks (opts.check; sched_check.c) */
    bool post_pass;      /* nothing changed since the last complete pass */
    uint64_t passes;     /* sched_schedule() calls */
    uint64_t bind_ver;   /* bumped by every bind and unbind */
    uint64_t health_ver; /* bumped by every change of a node's health */
    /* sched_model_bind_safe(): the deficits at def_ver (sched_model.c) */
    uint64_t def_ver;
    int def_any, def_healthy;
    bool def_valid;
    uint64_t chk_violations; /* found by the hooks so far */
    char chk_first[2 * SCHED_REASON_MAX];
    int chk_doomed;            /* healthy-hardware deficit after the last hook (-1: unknown) */
    bool test_corrupt;         /* sched_test_corrupt_next_bind(): the next commit corrupts */
    struct vc_shape *vc_shape; /* sched_status.c: the rows' layout and fixed figures */
};

/* sched_model.c */
/* Find or add a cell type / VC by name; returns its index.  (Memory comes
 * from the x* allocators: running out aborts, as everywhere in pai.) */
int sched_model_add_type(sched_t *s, const char *name);
int sched_model_find_type(const sched_t *s, const char *name);
int sched_model_find_sku(const sched_t *s, const char *name);
int sched_model_find_vc(const sched_t *s, const char *name);
pai_err_t sched_model_finish_types(sched_t *s, char *err, size_t errlen);
pai_err_t sched_model_add_cell(sched_t *s, int type, int parent, const char *address,
                               const char *pinned, int *out, char *err, size_t errlen);
int sched_model_add_vc(sched_t *s, const char *name);
void sched_model_vc_add_cells(sched_t *s, int vc, int type, int chain, int count, bool pinned,
                              int pinned_cell);
pai_err_t sched_model_check(sched_t *s, char *err, size_t errlen);
/* A free physical cell of type in chain for a virtual cell, in buddy order
 * with health (sched_model.c); SCHED_NONE when none.  Flags: */
enum {
    SCHED_PICK_HEALTHY = 1, /* only cells without an unhealthy node */
    SCHED_PICK_IDLE = 2,    /* only cells where no GPU is in use */
    SCHED_PICK_BUDDY = 4,   /* plain buddy order before avoiding whole healthy cells */
};
int sched_model_pick_free_cell(sched_t *s, int type, int chain, unsigned flags);
/* Bind cell c to virtual cell i of VC v when that leaves all VCs' virtual
 * cells bindable at once (sharing safety) and, with health while nodes are
 * unhealthy, dooms no more of them on healthy hardware; false (nothing
 * bound) if not.
 * Two counts over the cells (sched_check_deficit()) per call. */
bool sched_model_bind_safe(sched_t *s, int v, int i, int c, bool health);
void sched_model_bind(sched_t *s, int vc, int vcell, int cell);
void sched_model_unbind(sched_t *s, int cell);
int sched_model_bound_ancestor(const sched_t *s, int cell);
/* A physical cell's stable name, "TYPE@ADDRESS" (its type and the address
 * of its first node: "RACK@10.0.1.1"), what BIND decisions name and
 * sched_restore() takes back; and the cell a name denotes, or SCHED_NONE. */
void sched_cell_name(const sched_t *s, int c, char *buf, size_t len);
int sched_cell_find(const sched_t *s, const char *name);
/* A node's device index of GPU position p, and the position of a device
 * index (SCHED_NONE when the node has no such GPU). */
static inline int sched_gpu_index(const sched_mnode_t *n, int p)
{
    return n->index ? n->index[p] : p;
}
int sched_gpu_position(const sched_mnode_t *n, int index);
bool sched_cell_healthy(const sched_t *s, int cell);
/* GPU positions of cell c on one of its nodes: a mask (SCHED_ALL_GPUS at
 * node level and above), and the range [*lo, *hi) on node n. */
static inline uint64_t sched_cell_mask(const cell_t *c)
{
    return c->sub ? (c->gpu_hi - c->gpu_lo >= 64 ? SCHED_ALL_GPUS
                                                 : (((uint64_t)1 << (c->gpu_hi - c->gpu_lo)) - 1))
                        << c->gpu_lo
                  : SCHED_ALL_GPUS;
}
void sched_cell_gpu_range(const sched_t *s, int c, int n, int *lo, int *hi);
/* Add a cell of type below node level, a child of parent on node, its GPUs
 * from position gpu_lo on (callers add cells in DFS order); *out its index. */
void sched_model_add_subcell(sched_t *s, int type, int parent, int node, int gpu_lo, int *out);
/* The cell bound to some VC that holds GPU position g of node n (g < 0: the
 * node as a whole), or SCHED_NONE. */
int sched_model_bound_cell_at(const sched_t *s, int n, int g);
/* The deepest cell of node n holding all GPU positions gpus[0..k) (the
 * node's cell when none below does). */
int sched_model_cell_around(const sched_t *s, int n, const int *gpus, int k);
/* Is type t below node level (a GPU block or a GPU of a node-level type)? */
bool sched_type_below_node(const sched_t *s, int t);
/* GPUs of one cell of type t below node n's level (an aligned block of its
 * GPU positions); 0 when t is not below n's type. */
int sched_node_block(const sched_t *s, int n, int t);
/* Keep the cells' bad_below counts when node turns (un)healthy. */
void sched_model_health_changed(sched_t *s, int node, bool healthy);
int sched_cell_used_gpus(const sched_t *s, int cell);
int sched_cell_gpus(const sched_t *s, int cell);
sched_t *sched_model_alloc(const sched_opts_t *opts);

/* sched_policy.c: may guaranteed CPU-only work of VC v use node n?  Yes when the
 * node is in no cell, in a cell bound to v, or in an unbound cell of a chain
 * v has virtual cells of or no VC has (own: sched_chain_owners()). */
uint8_t *sched_chain_owners(const sched_t *s, int v);
bool sched_node_open_to(const sched_t *s, int v, const uint8_t *own, int n);

/* sched.c */
/* Free a job's strings and arrays and zero it. */
void sched_job_clear(job_t *j);
/* Index of the node named name, or SCHED_NONE. */
int sched_find_node(const sched_t *s, const char *name);
/* True when the job no longer waits: free, refused, or all tasks bound. */
bool sched_job_done_queueing(const job_t *j);

/* sched_jobs.c */
/* Validate a request (reason in err). */
pai_err_t sched_jobs_check_request(const sched_request_t *r, char *err, size_t errlen);
/* A new job slot for the request (not queued). */
pai_err_t sched_jobs_new_job(sched_t *s, const sched_request_t *r, int *out);
/* Queue a job slot (put in order at the next pass). */
void sched_jobs_queue_push(sched_t *s, int slot);
/* Pass order of two qent_t: higher priority first, then earlier
 * submission, then earlier sched_submit() (qsort_r's comparison; ctx is the
 * sched_t). */
int sched_jobs_queue_cmp(const void *a, const void *b, void *ctx);
/* The queue entry of the job in slot, as it is now. */
qent_t sched_jobs_qent(const sched_t *s, int slot);
/* The cell bound to VC v that holds GPU position g of node (g < 0: the node),
 * or SCHED_NONE (none, or another VC's). */
int sched_jobs_charged_cell(const sched_t *s, int node, int g, int v);
/* Return a finished job's slot to the free list. */
void sched_jobs_free(sched_t *s, int slot);
/* Set j's state, keeping its VC's waiting and running counts. */
void sched_jobs_set_state(sched_t *s, job_t *j, sched_job_state_t st);
/* Add (sign 1) or take away (-1) bound task t of j in its VC's use on its
 * node's SKU, as guaranteed or opportunistic by j->oppo now. */
void sched_jobs_account_task(sched_t *s, const job_t *j, const sched_task_t *t, int sign);
/* Drop the anti-starvation reservation of the job in slot jslot. */
void sched_jobs_clear_reservation(sched_t *s, int jslot);
/* Remember a bound cell c of VC v that may be unused now. */
void sched_jobs_gc_note(sched_t *s, int v, int c);
/* Unbind the VC's unpinned cells that no guaranteed work uses. */
void sched_jobs_vc_gc(sched_t *s, int v);
/* Count a running job in (d = +1) or out (-1) of the preemption filters. */
void sched_jobs_track_running(sched_t *s, const job_t *j, int d);
/* Could anything be preempted for j (opportunistic or lower-priority jobs)? */
bool sched_jobs_may_preempt(const sched_t *s, const job_t *j);
/* Take a task's GPUs off its cell's and VC's guaranteed usage. */
void sched_jobs_uncharge_task(sched_t *s, job_t *j, sched_task_t *t);
/* Make the placed tasks of the attempt real. */
void sched_jobs_commit(sched_t *s, int slot);

/* sched_policy.c */
/* Does cell type match the SKU (any when sku is SCHED_NONE)? */
bool sched_policy_sku_match(const sched_t *s, int type, int sku);
/* Add the job's VC domain (bound cells of its SKU, pinned cells) to at. */
pai_err_t sched_policy_domain_vc(sched_t *s, attempt_t *at, const job_t *j);
/* Does the job's placement go through its VC's cells (pai, guaranteed, GPUs)? */
bool sched_policy_uses_vc_cells(const sched_t *s, const job_t *j);
/* One attempt in mode; true when the job (or, task-by-task, some task) fits. */
bool sched_policy_try_place(sched_t *s, int slot, pmode_t mode);
/* Forget the tentative nodes of the job's unbound tasks. */
void sched_policy_reset_tentative(job_t *j);
/* Lazy preemption: rebind cells used only by lower-priority lazy jobs, retry. */
bool sched_policy_try_lazy(sched_t *s, int slot);

/* sched_reasons.c */
/* Cluster-wide GPUs of a SKU: total, free, and the most on one node. */
void sched_reasons_cluster_gpus(const sched_t *s, int sku, int *total, int *free_gpus,
                                int *max_node);
/* The SKU's name for messages ("" when any). */
/* The job's SKU, else its VC's when all its cells have one ("A100"), else "GPUs". */
const char *sched_reasons_gpu_label(const sched_t *s, const job_t *j);
const char *sched_reasons_sku_name(const sched_t *s, int sku);
/* GPUs (of a SKU) that opportunistic jobs preempted for VC v's jobs still
 * hold: not free, though outside the VC's guaranteed usage.  O(jobs). */
int sched_reasons_dying_gpus(const sched_t *s, int v, int sku);
/* True (reason set) when the job can never fit. */
bool sched_reasons_never_fits(sched_t *s, job_t *j);
/* Refuse (reason set) a job with a "within one cell" group that no cell of
 * its type in the configuration could ever hold (at submission). */
void sched_reasons_within_never(sched_t *s, job_t *j);
/* Set the job's wait reason (unless quiet_waits). */
void sched_reasons_wait(sched_t *s, job_t *j);
/* Anti-starvation: reserve nodes for a job that has waited too long. */
void sched_reasons_maybe_reserve(sched_t *s, int slot, int64_t now);

/* Do GPUs reserved for the starving job holder keep job j off them?  Yes
 * for a job after the holder in pass order (lower priority, or equal and
 * submitted later): a job ahead of it may still take them (it waited
 * longer, and a reservation left from the last pass may lie on cells the
 * holder's VC no longer has). */
static inline bool sched_reservation_blocks(const job_t *holder, const job_t *j)
{
    if (holder->prio != j->prio)
        return holder->prio > j->prio;
    if (holder->submit_ms != j->submit_ms)
        return holder->submit_ms < j->submit_ms;
    return holder->seq < j->seq;
}

/* sched_status.c: free the cached layout of the VC rows (sched_free). */
void sched_status_free(sched_t *s);

/* sched_check.c */
/* GPUs of the virtual cells (all VCs) that cannot be bound at once on free
 * cells (health: on fully healthy free cells, and bound cells with an
 * unhealthy node count too).  A count per chain and level, top down (exact
 * for cells with childCellNumber children).  why (may be NULL) names the
 * first short level. */
int sched_check_deficit(const sched_t *s, bool health, char *why, size_t len);
/* The hook behind opts.check: run the checks after an event (what, job
 * slot or SCHED_NONE); decision: the healthy-hardware deficit must not grow. */
void sched_check_hook(sched_t *s, const char *what, int slot, bool decision);

static inline void sched_check_after(sched_t *s, const char *what, int slot, bool decision)
{
#ifndef NDEBUG
    if (s->opts.check)
        sched_check_hook(s, what, slot, decision);
#else
    (void)s, (void)what, (void)slot, (void)decision;
#endif
}

/* sched_config.c */
pai_err_t sched_config_load(sched_t *s, const char *yaml, size_t len, char *err, size_t errlen);

#endif
