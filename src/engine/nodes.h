/*
 * nodes.h - the node registry of the server: agents, their
 * resources, health, per-address port pools and each node's desired set of
 * task attempts (refs) with its sequence number.
 *
 * Not thread-safe by itself: the job engine's mutex guards every call
 * (nodes_wait releases it while it waits).  A ref points at a job owned by
 * the engine; a job is never freed while a ref to it exists (refs are
 * removed when their task attempt reaches a final state).
 */
#ifndef PAI_ENGINE_NODES_H
#define PAI_ENGINE_NODES_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/lifecycle.h"
#include "engine/nodecred.h"

typedef enum { NODE_HEALTHY, NODE_LOST, NODE__COUNT } engine_node_state_t;

typedef struct {
    lc_job_t *job;
    int ja, role, index, ta;
    bool desired; /* last computed membership of the desired set */
    /* In the desired set as the agent is told it (live and durable) when
     * nodes_refresh last looked, and the seq at which it entered: a
     * version 3 answer to known_seq K carries the refs with shown_seq > K
     * (docs/agent-protocol.md, "Deltas"). */
    bool shown;
    uint64_t shown_seq;
} engine_node_ref_t;

/* An attempt that left a node's desired set after an answer could have
 * told the agent of it, kept so that a delta can say it is gone. */
typedef struct {
    char *id;     /* owned */
    uint64_t seq; /* the seq at which it left */
} engine_node_gone_t;

typedef struct engine_node {
    char *name, *address, *boot_id, *log_url, *gpu_model, *runtime;
    char *gpu_backend; /* the agent's discovery: nvml, amd, class, sim, ... (NULL: unknown) */
    int cpus, ngpus;
    int64_t memory_mb;
    bool hollow;
    bool dirty;   /* record to persist (in nodes' dirty list) */
    json_t *gpus; /* as the agent reported them */
    /* GPUs (by index) the agent reports unhealthy (lost, uncorrectable ECC,
     * critical XID): the node's cell is bad in the scheduler meanwhile */
    uint64_t bad_gpus;
    engine_node_state_t state;
    int64_t last_seen_ms; /* monotonic */
    uint64_t seq;         /* desired-state sequence */
    /* The seq of the last change the agent must hear of (nodes_bump): a
     * held poll is answered when it moves past the agent's known_seq.
     * seq may be past it by changes the agent knows already (an attempt
     * that left the set because its node reported its end), which go with
     * the next answer instead of causing one. */
    uint64_t news;
    engine_node_ref_t *refs;
    size_t nrefs, caprefs;
    pthread_cond_t cv;    /* long-poll wake-up (a poll blocked in engine_agent_sync) */
    engine_waker_t waker; /* a held poll's wake-up (engine_poll_arm); fn NULL: none */
    uint64_t poll_gen;    /* agentsync.c: syncs received (a newer one supersedes a held poll) */
    /* Deltas: the highest seq an answer with a desired set carried (a
     * change is stamped with a seq above it, so no agent can hold it as a
     * base without having seen the change), the attempts that left the
     * set in seq order, and the floor: the left ones with a seq at or
     * below it were forgotten, so a delta needs known_seq >= gone_floor. */
    uint64_t answered;
    engine_node_gone_t *gone;
    size_t ngone, capgone;
    uint64_t gone_floor;
    nodecred_t cred; /* the node's credential (hashes), persisted in its record */
    /* Agent protocol version 4: the digest of the description the agent
     * last sent whole ("desc"; "": none, never persisted), which its later
     * syncs name alone ("same") while it holds (agentsync.c). */
    char desc[65]; /* AGENTWIRE_DESC_MAX + 1 */
} engine_node_t;

typedef struct nodes nodes_t;

nodes_t *nodes_new(int port_base, int port_count);
void nodes_free(nodes_t *ns);

engine_node_t *nodes_find(nodes_t *ns, const char *name);
/* Find or add (a new node starts HEALTHY with seq 1). */
engine_node_t *nodes_get(nodes_t *ns, const char *name, bool *created);
size_t nodes_count(const nodes_t *ns);
engine_node_t *nodes_at(nodes_t *ns, size_t i);

/* Mark n's record to persist (once: a list, so that a flush looks at the
 * changed nodes only, not at all of them). */
void nodes_mark_dirty(nodes_t *ns, engine_node_t *n);
size_t nodes_dirty_count(const nodes_t *ns);
/* The next node marked dirty, its mark cleared; NULL when none is left. */
engine_node_t *nodes_next_dirty(nodes_t *ns);

/* Reserve n ports on the node's address; false when the pool is full. */
bool nodes_ports_alloc(nodes_t *ns, const char *address, int n, int *out);
void nodes_ports_free(nodes_t *ns, const char *address, const int *ports, int n);
void nodes_ports_mark(nodes_t *ns, const char *address, const int *ports, int n);

/* Bring the node's refs in line with every task attempt of job's current
 * attempt placed on any node: add live ones, drop final ones (freeing their
 * ports), and bump seq (waking the node's long-poll) when a node's desired
 * set changed. */
void nodes_sync_job(nodes_t *ns, lc_job_t *job);
/* Drop every ref of a node (node lost); the caller has failed their tasks. */
void nodes_clear_refs(nodes_t *ns, engine_node_t *n);
/* Bump a node's seq and wake its long-poll. */
void nodes_bump(engine_node_t *n);
/* Wake the node's long-poll, blocked or held: broadcast cv, and call the
 * held poll's waker once (then forget it). */
void nodes_wake(engine_node_t *n);
/* Is ref currently desired (WAITING or RUNNING)? */
bool nodes_ref_live(const engine_node_ref_t *r);

/* ---- deltas (docs/agent-protocol.md, "Deltas") ---------------------------
 * The server's epoch: 16 hex digits drawn at nodes_new, so that a seq
 * numbered by another server process (a restart, a failover) is never
 * taken for one of this one's. */
const char *nodes_epoch(const nodes_t *ns);
/* Bring each ref's shown flag in line with what the agent is told (live
 * and its record durable): one that entered gets shown_seq, one that left
 * goes to the gone list.  Both are stamped with a seq above n->answered
 * (seq is bumped when it is not).  Before an answer is computed. */
void nodes_refresh(engine_node_t *n);
/* Can a delta against known be complete?  (1 <= known, a seq an answer
 * carried, and no attempt that left after known was forgotten.) */
bool nodes_delta_ok(const engine_node_t *n, uint64_t known);
/* The agent holds the set at known (in this epoch): forget the attempts
 * that left at or before it. */
void nodes_gone_trim(engine_node_t *n, uint64_t known);

#endif
