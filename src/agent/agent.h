/*
 * agent.h - internals of `pai agent` shared by its files (not a public API).
 *
 *   agent_main.c  options table, the event loop (libcurl multi + task fds +
 *                 the log server), signals
 *   node.c        one node: its attempts, the sync conversation, the
 *                 reconcile step, the state kept in the work dir
 *   logsrv.c      the task-log HTTP endpoint (libmicrohttpd, external loop)
 *   reconcile.c   the pure desired/actual -> actions function
 *   report.c      when a node reports its local changes (the sync's window)
 *   gpu.c         GPU discovery backends and the NVML sampler
 *   gpu_amd.c     AMD GPUs from sysfs (KFD topology), the simulated tree
 *   gpu_class.c   generic device classes; a task's device env vars
 *   metrics.c     the node's figures: sampled on a timer, served as
 *                 Prometheus text on GET /metrics (docs/monitoring.md)
 *
 * The agent is single-threaded on purpose: monitors are forked from it, and
 * a fork of a single-threaded process may use malloc and stdio freely.  The
 * one other thread, a node's dirpool worker (dirpool.h, started when a dir
 * is too large to empty on the loop), only removes files: it never logs or
 * takes a lock but the pool's own, so what a forked child uses is never
 * held by it (glibc's fork keeps malloc usable).
 */
#ifndef PAI_AGENT_AGENT_H
#define PAI_AGENT_AGENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/dirpool.h"
#include "agent/gpu.h"
#include "agent/reconcile.h"
#include "common/buf.h"
#include "common/limits.h"
#include "common/srvlist.h"
#include "common/strmap.h"
#include "runtime/runtime.h"
#include "wire/agentwire.h"

/* The agent protocol version the agent speaks (wire/agentwire.h): 4, the
 * answers are deltas against the set it keeps (node.c, version 3) and its
 * description goes whole only until the server holds it (version 4). */
#define AGENT_WIRE_VERSION 4
/* The highest answer version it reads, sent as the request's "accept": 7,
 * task entries without what the agent derives (wire/agentwire_compact.c),
 * over version 6's acks that may come in a later answer (an exit is
 * reported until acked: node.c) and version 5's task env as its job's
 * placement (wire/agentwire_env.c); older servers answer in their own
 * (4 to 6). */
#define AGENT_WIRE_ACCEPT 7

typedef struct {
    const char *server, *token, *name, *address, *work_dir, *runtime;
    const char *ca_file; /* CA bundle that signs an https:// server's certificate; NULL: system's */
    const char *tls_cert, *tls_key; /* PEM files: the log server speaks HTTPS (NULL: HTTP) */
    const char *gpu_model, *gpu_backend, *log_level, *cgroup_root, *gpu_dev_dir;
    const char *gpu_fault_file; /* simulated GPUs' injected faults; NULL: <node dir>/gpu-faults */
    const char *sysfs_root;     /* the "amd" backend reads <root>/sys and <root>/dev; NULL: / */
    const char *device_class;   /* a generic device class spec (gpu.h); NULL: GPUs */
    int gpus;                   /* simulated GPUs (-1: discover) */
    int nodes;                  /* nodes hosted by this process */
    int wire_accept;            /* 0: AGENT_WIRE_ACCEPT; PAI_TEST_AGENT_ACCEPT (4: a v4 agent) */
    int cpus;                   /* 0: the host's */
    int64_t memory_mb;          /* 0: the host's */
    int log_port;               /* 0: any free port */
    int64_t log_max_bytes;
    int64_t wait_ms; /* long-poll hold asked of the server */
    int pool_fill;   /* attempt dirs made for the pool at the start (0: two a GPU and 4,
                      * 8 to 64; -1: none, as the tests of an empty pool want) */
    bool hollow, discover_only;
    /* task identities (taskuid.h, docs/security.md) */
    const char *task_uid_range, *task_uid_map;
    bool tasks_as_root;
} agent_cfg_t;

/* One attempt's figures from the last sample (metrics.c); -1: unknown. */
typedef struct {
    bool valid;
    double cpu_percent; /* of one core, like `docker stats` */
    int64_t mem_bytes, mem_limit_bytes, io_read_bytes, io_write_bytes;
    int64_t prev_cpu_ns, prev_ms; /* the reading before, for the rate */
    pid_t pid;        /* the task's leader, from the monitor's "task" file; 0: not yet */
    char *cgroup;     /* its cgroup (relative, owned); NULL: unknown */
    bool cgroup_seek; /* an adopted attempt's cgroup was looked for */
} task_stats_t;

/* What the metrics label an attempt with, from its desired task (the
 * server's PAI_* env, as OpenPAI's job-exporter reads it from a
 * container's).  Strings owned; NULL until the server described it. */
typedef struct {
    char *user, *job, *role, *vc;
    int index;
    int gpus[GPU_MAX];
    size_t ngpus;
    int sim_util; /* declared simulated GPU load, percent; -1: none */
} task_meta_t;

typedef struct agent_task {
    char *id;
    char esc[512]; /* id as one path component */
    rc_phase_t phase;
    const runtime_ops_t *ops; /* the runtime running it */
    bool has_rt;              /* rt is live (started or adopted) */
    rt_task_t rt;
    rt_result_t res;   /* valid when phase == RC_DONE */
    char *diagnostics; /* tail of stderr, when done */
    bool acked;
    int64_t acked_mono_ms;
    bool dir_gone;            /* acked: its dir went into the pool (the journal keeps it) */
    int slot;                 /* its dir's slot, <dir>/tasks/<slot> (dirpool.h); -1: none
                               * (an older agent's dir, tasks/<esc>, or hollow) */
    unsigned slot_gen;        /* the slot's takes when it took it (dirpool_forget) */
    bool cwd_only;            /* nothing but its record and cwd can be in its slot: it ran
                               * as an unprivileged uid, in no container (dirpool_put) */
    bool started_here;        /* by this process: its logs are flat (no older monitor's dir) */
    int64_t start_mono_ms;    /* when this process started it (report.c) */
    int64_t stop_deadline_ms; /* force-kill time once stopping */
    int kill_grace_ms;
    double cpu;           /* the CPUs it was given (its desired task's); 0: unknown */
    int64_t next_poll_ms; /* adopted attempts (no notify fd) are polled */
    task_meta_t meta;
    task_stats_t stats;
} agent_task_t;

/* A connection's transfer handle for the node's syncs (node.c): two per
 * node, so that a held long-poll given up for a newer sync is answered on
 * its own connection (the server answers a superseded poll at once) and
 * that connection is kept for a later sync, instead of being closed. */
typedef struct {
    CURL *easy;
    struct agent_node *node;
    bool busy;      /* in the multi handle */
    bool abandoned; /* a newer sync replaced it: its answer is dropped */
    buf_t body;     /* its request, alive until it ends (kept for the next) */
    /* the sync URL parsed once (CURLOPT_CURLU: libcurl copies it at each
     * transfer instead of parsing the text), for the server in url_of */
    CURLU *url;
    char *url_of;
} sync_conn_t;

typedef struct agent_node {
    const agent_cfg_t *cfg;
    const runtime_ops_t *rt;
    char name[256];
    char boot_id[40];
    char dir[1024]; /* work dir of this node */
    int cpus;
    int64_t memory_mb;
    gpu_set_t gpus;
    char log_url[256];
    /* The node's credential (docs/agent-protocol.md, "Node identity"),
     * kept in <dir>/node.credential (0600); "" until the server issued
     * one: the join token (cfg->token) is presented instead. */
    char cred[PAI_MAX_NODE_CRED + 1];
    /* The key the server presents to this node's log server, from its
     * answers, kept in <dir>/node.logkey (0600); "" until the server sent
     * one: the log server then accepts the join token for this node. */
    char log_key[PAI_MAX_NODE_CRED + 1];
    /* The node's attempts: tasks[0..nlive) those the server has not
     * acked, then the acked ones (tombstones, kept 10 minutes so that a
     * desired id is never started twice: most of them in a stream of
     * short tasks), so the scans at every turn of the loop look at the
     * first part only; by_id finds either (values not owned). */
    agent_task_t **tasks;
    size_t ntasks, cap, nlive;
    strmap_t *by_id;
    dirpool_t pool;     /* emptied dirs of forgotten attempts, for new ones */
    size_t acked_lines; /* lines of <dir>/acked-attempts (attempt.c) */
    int journal_fd;     /* that file, open for appends; -1: not open */
    int64_t known_seq;
    /* The desired set as last applied (attempt ids; version 3 deltas
     * apply to it) and the server epoch of known_seq ("": none, the next
     * answer is the whole set). */
    strmap_t *desired;
    char epoch[AGENTWIRE_EPOCH_MAX + 1];
    int64_t heartbeat_ms;
    /* the sync conversation, with the server that leads among cfg->server's
     * (common/srvlist.h: a standby's answer names the leader) */
    srvlist_t servers;
    sync_conn_t conns[2];
    sync_conn_t *cur; /* the sync in flight, or the next one's */
    struct curl_slist *headers;
    bool in_flight;
    bool dirty;            /* a local change not yet reported */
    int64_t dirty_ms;      /* when node_tick first saw it dirty; 0: clean */
    int64_t ended_ms;      /* an attempt ended since the last sync was sent (mono); 0: none */
    int64_t start_ms;      /* the first start since the last sync was sent (mono); 0: none */
    int64_t run_ewma_ms;   /* typical run time of the node's tasks (report.c); 0: none yet */
    int64_t report_due_ms; /* when the local changes are reported (node_tick); INT64_MAX: none */
    bool progress;         /* the last answer moved seq or acked something */
    int64_t sent_mono_ms;
    int64_t next_sync_ms; /* earliest time for the next sync */
    int64_t next_prune_ms;
    int failures;
    buf_t resp; /* the answer to cur's sync */
    /* the node's description as last encoded, reused by the next syncs
     * until a field of it changes (wire/agentwire.h) */
    agentwire_node_cache_t wire;
    /* the load and free disk in the syncs' health, read at most once a
     * second (HEALTH_READ_MS) by node_sync_body; health_ms 0: never */
    int64_t health_ms;
    double health_load1;
    int64_t health_disk_mb;
    int64_t syncs, sync_errors;
    int64_t answer_bytes; /* the bodies of the answers read (pai_agent_sync_answer_bytes_total) */
    struct taskuid *uids; /* shared by the nodes; NULL: tasks keep the agent's identity */
    /* the last metrics sample (metrics.c) */
    gpu_sample_t gpu_now[GPU_MAX];
    bool gpu_sampled;
    bool healthy;     /* the node's own health check, at the last sample */
    uint64_t gpu_bad; /* GPUs (by position) unhealthy at the last sample, logged on change */
} agent_node_t;

/* node.c */
PAI_MUST_CHECK pai_err_t node_init(agent_node_t *n, const agent_cfg_t *cfg, const char *name,
                                   const runtime_ops_t *rt, const char *log_url);
void node_free(agent_node_t *n);
/* Re-adopt attempts left by an earlier agent on this node (its work dir). */
void node_recover(agent_node_t *n);
/* Poll attempts that may have changed; start syncs that are due. */
void node_tick(agent_node_t *n, CURLM *multi, int64_t now_ms);
/* An attempt's notify fd fired. */
void node_task_event(agent_node_t *n, int fd);
/* A per-agent monitor's socket fired and was read (rt_watch_drain): the
 * attempts it told of (rt_task_news) are polled. */
void node_task_news(agent_node_t *n);
/* A sync transfer of the node (c, from CURLINFO_PRIVATE) ended. */
void node_sync_done(sync_conn_t *c, CURLM *multi, CURLcode code);
/* Take the node's transfers out of the multi handle (the agent stops). */
void node_sync_stop(agent_node_t *n, CURLM *multi);
/* Earliest time this node needs the loop to wake up (INT64_MAX: none). */
int64_t node_next_wake(const agent_node_t *n);
/* Add the fds the loop must watch to fds (room for cap); returns the count. */
size_t node_wait_fds(const agent_node_t *n, struct curl_waitfd *fds, size_t cap);
/* Build the request body (exposed for the unit tests). */
json_t *node_sync_request(const agent_node_t *n);
/* The same as the text sent, appended to out, the node's description
 * reused from n->wire while unchanged. */
PAI_MUST_CHECK pai_err_t node_sync_body(agent_node_t *n, buf_t *out);
/* Apply a sync response body; returns PAI_OK or PAI_E_PROTOCOL. */
PAI_MUST_CHECK pai_err_t node_apply_response(agent_node_t *n, const char *body, size_t len);
/* attempt.c: where an attempt's logs on this node are, as
 * rt_spec_t.log_prefix: <dir>/logs/<id>. (flat), or <dir>/logs/<id>/ when
 * an older agent's monitor keeps them in a dir of their own; NULL when the
 * node neither knows the attempt nor has its logs.  Malloc'ed. */
char *node_log_prefix(const agent_node_t *n, const char *attempt_id);

/* report.c: when the node's local changes are reported (docs/agent.md) */
/* An attempt this process started ended by itself after run_ms: the
 * node's typical run time follows it. */
void report_ran(agent_node_t *n, int64_t run_ms);
/* How many of the node's attempts are expected to end soon (started here
 * within twice the typical run time, or being stopped). */
size_t report_pending(const agent_node_t *n, int64_t now);
/* Is every GPU or every CPU the node has given to its running attempts
 * (nothing more can be placed on it)? */
bool report_node_full(const agent_node_t *n);
/* When the node's unreported changes are due (mono ms; INT64_MAX: none),
 * pending as report_pending counted them. */
int64_t report_due(const agent_node_t *n, size_t pending);

/* exec.c: a command run inside a running task (`pai exec`, docs/ssh.md) */
#define EXEC_MAX_CMD       (64u * 1024)
#define EXEC_MAX_OUT       (8u << 20)
#define EXEC_MAX_TIMEOUT_S 3600
#define EXEC_MAX_RUNNING   16
#define EXEC_READ_CHUNK    (256u * 1024)
/* Starts cmd in attempt attempt_id's task (timeout_s <= 0: the maximum);
 * its id (32 hex digits) into id.  On refusal *why says why (static). */
PAI_MUST_CHECK pai_err_t agent_exec_start(agent_node_t *n, const char *attempt_id, const char *cmd,
                                          int timeout_s, char id[33], const char **why);
/* The output of exec id from byte offset, as {"data" (base64), "offset",
 * "done", "exitCode"}; PAI_E_NOT_FOUND for an unknown id. */
PAI_MUST_CHECK pai_err_t agent_exec_read(const agent_node_t *n, const char *id, int64_t offset,
                                         json_t **out);

/* attempt.c: the attempts of a node, for node.c */
/* Make <dir>/tasks (0711) and <dir>/logs (0700), best effort. */
void task_dirs_init(agent_node_t *n);
/* The attempt with this id on the node; NULL when none. */
agent_task_t *task_find(const agent_node_t *n, const char *id);
/* Release an attempt's runtime handle and free it (not unlinked from n). */
void task_free(agent_node_t *n, agent_task_t *t);
/* Poll an attempt's runtime; record its end when it ended. */
void task_poll(agent_node_t *n, agent_task_t *t);
/* Add and start a desired attempt (a failure to start is its own end). */
void task_start(agent_node_t *n, const agentwire_task_t *d);
/* Ask a running attempt to stop within its grace period. */
void task_stop(agent_node_t *n, agent_task_t *t, int64_t now);
/* The server recorded the attempt's end: remember it on disk (it becomes
 * a tombstone, past n->nlive). */
void task_mark_acked(agent_node_t *n, agent_task_t *t);
/* The same for ts[0..k), their journal lines in one write. */
void task_mark_acked_all(agent_node_t *n, agent_task_t *const *ts, size_t k);
/* Drop acked attempts older than their tombstone time, with their dirs. */
void task_prune_tombstones(agent_node_t *n, int64_t now);
/* Close the journal of acked attempts (reopened by the next ack). */
void task_journal_close(agent_node_t *n);

/* metrics.c (docs/monitoring.md) */
#define METRICS_SAMPLE_MS 5000 /* a scrape formats the last sample, never samples */
/* Sample the node's GPUs (through s; NULL: simulated or none) and its
 * attempts' cgroups into n->gpu_now and each task's stats. */
void metrics_sample(agent_node_t *n, gpu_sampler_t *s, int64_t mono_ms, int64_t wall_ms);
/* The nodes' last samples as Prometheus text (OpenPAI job-exporter names). */
void metrics_format(agent_node_t *const *nodes, size_t nnodes, buf_t *out);
/* Describe an attempt for its labels from its desired task (replaces meta). */
void metrics_task_meta(task_meta_t *meta, const agentwire_task_t *d);
void metrics_task_meta_free(task_meta_t *meta);
/* The simulated GPU load a task declares: "PAI_SIM_GPU_UTIL=N" in its
 * env or its command (0..100); -1 when none. */
int metrics_sim_declared(const agentwire_task_t *d);
/* A simulated GPU's busy percent: the declared load with a slow, small
 * deterministic wave (a function of the GPU and the wall clock). */
double metrics_sim_util(int declared, int gpu_index, int64_t wall_ms);

/* logsrv.c */
typedef struct logsrv logsrv_t;
/* Serve the nodes' task logs on addr:port (port 0: any free port); addr
 * must be an IPv4 address of this host (PAI_E_INVALID otherwise).
 * cert_pem and key_pem (PEM text, both or neither): HTTPS only. */
PAI_MUST_CHECK pai_err_t logsrv_start(const char *addr, int port, const char *token,
                                      const char *cert_pem, const char *key_pem,
                                      agent_node_t **nodes, size_t nnodes, logsrv_t **out);
int logsrv_port(const logsrv_t *s);
int logsrv_fd(const logsrv_t *s);
/* Milliseconds until logsrv_run has work without new events on its fd (0:
 * answers are streaming; -1: none). */
int logsrv_timeout_ms(const logsrv_t *s);
void logsrv_run(logsrv_t *s);
void logsrv_stop(logsrv_t *s);

#endif
