/*
 * agentwire.h - the agent protocol's messages (docs/agent-protocol.md) as C
 * structs, with the one encoder and decoder that both `pai server`
 * (src/engine/agentsync.c) and `pai agent` (src/agent/node.c) use.
 *
 * Why a folder of its own (src/wire/) rather than src/common/ or
 * src/protocol/: common/ holds helpers with no knowledge of pai's
 * messages, and protocol/ is OpenPAI's job protocol (job YAML, exit
 * table) shared by the server and the CLI.  This is the contract between
 * two programs of our own; neither side owns it, and a reader looking for
 * "what goes over the wire" finds it by name.
 *
 * Invariants:
 *   - the JSON is the documented one, key for key and in the same order;
 *     agents and servers of the same AGENTWIRE_VERSION interoperate across
 *     releases, and a message of another version is refused by the
 *     decoder with a message that names both versions;
 *   - decoding checks every field it reads: a field of the wrong type, a
 *     string past its bound or a list past its cap is an error whose
 *     message names the field ("node.cpus: must be an integer"); absent
 *     optional fields take the defaults documented below.  One exception,
 *     kept from the first server: a request's unreadable task reports are
 *     skipped and counted (agentwire_req_t.skipped), not fatal;
 *   - sizes are bounded by common/limits.h: PAI_MAX_AGENT_MSG for a body,
 *     PAI_MAX_AGENT_TASKS attempts or acks, PAI_MAX_NODE_GPUS GPUs,
 *     PAI_MAX_AGENT_LIST env vars, ports or mounts per task, PAI_MAX_NAME
 *     for a node name, PAI_MAX_ATTEMPT_ID for an attempt id;
 *   - strings are encoded as valid UTF-8 (a task's diagnostics, the tail
 *     of its stderr, may be cut inside a character or hold binary bytes:
 *     those bytes become '?', or the whole message would be refused).
 *
 * Ownership: a message never owns its strings.  A decoded message keeps a
 * reference to the JSON it was read from (root) and its strings point into
 * it; a message built for encoding borrows the caller's strings, which
 * must stay valid until the encoder returns.  The arrays (tasks, gpus,
 * env, ...) belong to the message: agentwire_*_clear() frees them, so a
 * message built for encoding gets its arrays from xcalloc.
 */
#ifndef PAI_WIRE_AGENTWIRE_H
#define PAI_WIRE_AGENTWIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/jtext.h"

/* The protocol version ("version" in every body): encoders write
 * AGENTWIRE_VERSION unless the message says otherwise (a server answers an
 * agent in the agent's version); decoders accept AGENTWIRE_MIN_VERSION to
 * AGENTWIRE_VERSION.  Version 2 added the node credential: the response's
 * "credential" (docs/agent-protocol.md, "Node identity").  Version 3 added
 * answers that carry only what changed since the agent's known_seq (a
 * delta: "base_seq", "removed") and the server's "epoch", which the agent
 * echoes so that a seq from another server incarnation is never trusted
 * (docs/agent-protocol.md, "Deltas").  Version 4 lets a request leave the
 * node's description out when the server holds it: the full description
 * carries its digest ("desc"), the answer names the digest the server
 * holds ("node_desc"), and a request whose node is that description sends
 * the digest alone ("same"; docs/agent-protocol.md, "The node's
 * description once (version 4)"). */
#define AGENTWIRE_VERSION     7
#define AGENTWIRE_MIN_VERSION 1
/* Version 5 is an answer form: a task's environment as the job's
 * placement ("jobenv"), from which the agent derives the PAI_* variables
 * with the server's own code (agentwire_env.c), instead of the variables
 * ("env").  Its requests are version 4's: an agent asks for it with
 * "accept" (the highest answer version it reads) in a version 4 request,
 * which older servers read and answer in version 4 (docs/agent-protocol.md,
 * "The environment as the job's placement (version 5)"). */
#define AGENTWIRE_JOBENV_VERSION 5
/* Version 6 is an answer form too, version 5's bytes: its rule is that an
 * exit the request reports may be acked in a later answer, once a commit
 * holds it, so the server answers such a sync without a commit of its own
 * (the agent keeps every exit and reports it until it is acked, as it
 * always did).  Asked for with "accept": 6 and "hold_acks"; older agents
 * are answered as before, each ack after the commit of its exit
 * (docs/agent-protocol.md, "Acks in a later answer (version 6)"). */
#define AGENTWIRE_LATER_ACKS_VERSION 6
/* Version 7 is an answer form too, version 6's rule: a task entry leaves
 * out the fields the agent derives from the rest of it (its job, role and
 * numbers from its attempt id, its user from its job, its GPUs, resources
 * and ports from its jobenv, the default kill grace; an image without
 * auth as its uri), each only where the derived value is the entry's
 * (agentwire_compact.c); an acked id leaves a delta's set without being
 * listed in "removed" too; a delta carries the log key only with a
 * credential.  Asked for with "accept": 7 (docs/agent-protocol.md,
 * "Compact task entries (version 7)"). */
#define AGENTWIRE_COMPACT_VERSION 7
/* A task's kill grace when its entry has none (version 7). */
#define AGENTWIRE_KILL_GRACE_MS 10000
/* An epoch is 1 to this many letters, digits, '-' or '_' (the server
 * sends 16 hex digits), so that it is written into a request as is. */
#define AGENTWIRE_EPOCH_MAX 64
/* A description's digest: 1 to this many letters, digits, '-' or '_'
 * (agents send 16 hex digits, FNV-1a 64 of the description's text). */
#define AGENTWIRE_DESC_MAX 64

/* A node credential is this prefix and 64 hex digits (32 random bytes),
 * presented as "Authorization: Bearer pn1.<hex>"; the prefix tells it
 * from the join token and user tokens before anything is looked up. */
#define AGENTWIRE_CRED_PREFIX "pn1."
/* A node's log key: this prefix and 64 hex digits. */
#define AGENTWIRE_LOGKEY_PREFIX "pl1."

/* ---- POST /api/v1/agent/sync: the request (agent -> server) ---------- */

typedef struct {
    int index;
    const char *uuid, *model, *pci_bus; /* "" when absent */
    int64_t memory_mb;
    bool healthy;
    bool has_utilization; /* optional: busy percent, averaged by the history */
    double utilization;
} agentwire_gpu_t;

typedef struct {
    bool present; /* sent only by agents that measure it */
    bool ok;      /* false when the work dir's disk is full */
    double load1;
    int64_t disk_free_mb, gpus_healthy, tasks;
} agentwire_health_t;

/* A field added here that agentwire_node_encode writes must also be
 * compared by node_same (agentwire_dump.c): the agent's kept text of its
 * description is re-encoded only when a compared field changes. */
typedef struct {
    const char *name;                            /* required, 1..PAI_MAX_NAME */
    const char *address, *boot_id, *gpu_model;   /* NULL when absent */
    const char *runtime, *log_url, *gpu_backend; /* NULL when absent */
    int cpus;
    int64_t memory_mb;
    bool hollow;
    bool has_gpus; /* "gpus" was sent (an empty list is not absent) */
    agentwire_gpu_t *gpus;
    size_t ngpus;
    int *topology; /* ngpus x ngpus, row-major; NULL when absent */
    /* Version 4: the digest of the description this object carries
     * ("desc"; NULL: absent), or, instead of a description, the digest of
     * the one the server holds for this node ("same": then only name and
     * health are sent, and read).  agentwire_req_dump writes both itself
     * from its cache. */
    const char *desc, *same;
    agentwire_health_t health;
} agentwire_node_t;

typedef enum {
    AGENTWIRE_STARTING,
    AGENTWIRE_RUNNING,
    AGENTWIRE_EXITED,
    AGENTWIRE_FAILED_TO_START,
} agentwire_state_t;

/* One attempt the agent knows and the server has not acked. */
typedef struct {
    const char *attempt_id; /* required, 1..PAI_MAX_ATTEMPT_ID */
    agentwire_state_t state;
    /* starting / running */
    int64_t pid;
    /* When the agent started the task (its wall clock, ms; all states; 0:
     * absent, older agents): the server's launch time, clamped to the
     * dispatch and the arrival (engine/agentsync.c). */
    int64_t started_ms;
    /* exited / failed_to_start */
    int exit_code;
    bool oom;
    int signal;
    int64_t finished_ms;
    const char *diagnostics; /* NULL when absent */
} agentwire_report_t;

typedef struct {
    int version;
    /* The highest answer version the agent reads ("accept"; 0: absent, its
     * version): the server answers in min(accept, AGENTWIRE_VERSION) when
     * that is more than version (agentwire_answer_version).  Written from
     * version 4 on. */
    int accept;
    agentwire_node_t node;
    uint64_t known_seq; /* 0 .. 2^53 */
    /* Version 3: the epoch of the answer known_seq came from (the agent's
     * base for a delta); NULL: none (first sync, a restarted agent), and
     * then the server answers with the whole desired set. */
    const char *epoch;
    int64_t wait_ms; /* 0: answer at once */
    /* The agent takes acks with whatever answer comes next: a sync that
     * has only acks to answer is held like an idle one (its acks go with
     * the answer).  Optional; false when absent (answered at once). */
    bool hold_acks;
    agentwire_report_t *tasks;
    size_t ntasks;
    /* Decoding: reports that could not be read (not an object, no
     * attempt_id or state, a field of the wrong type) are left out of
     * tasks rather than failing the sync, so one bad report never holds
     * back the acks of the others; skipped counts them and skip_reason
     * names the first ("tasks[3].state: is required"). */
    size_t skipped;
    char skip_reason[160];
    json_t *root; /* decoded messages: the JSON the strings point into */
} agentwire_req_t;

/* ---- the response (server -> agent) ----------------------------------- */

typedef struct {
    const char *name, *value;
} agentwire_env_t;

typedef struct {
    const char *label;
    int *ports;
    size_t n;
} agentwire_ports_t;

typedef struct {
    const char *source, *target;
    bool readonly;
} agentwire_mount_t;

/* ---- a task's environment as its job's placement (version 5) ----------
 * What the PAI_* variables of a task are made of (agentwire_env.c): the
 * job's roles, each with its resources, its port labels and where each of
 * its instances runs.  The server fills it from its job (engine/env.c) and
 * derives a version 4 answer's "env" from it; a version 5 answer carries
 * it ("jobenv") and the agent's decoder derives the same variables with
 * the same code.  Its arrays belong to the message that holds it; strings
 * are borrowed as the message's are. */
typedef struct {
    const char *label;
    int count; /* ports of this label per instance */
} agentwire_portdef_t;

typedef struct {
    bool placed;    /* the instance's current attempt exists (else no variables) */
    const char *ip; /* NULL: "" */
    size_t port0;   /* its ports: jobenv.ports[port0 .. port0 + nports) */
    int nports;     /* in the role's label order */
} agentwire_host_t;

typedef struct {
    const char *name;
    int instances; /* hosts: jobenv.hosts[host0 .. host0 + instances) */
    int gpu, cpu, mem_mb, shm_mb;
    size_t port0; /* labels: jobenv.portdefs[port0 .. port0 + nports) */
    int nports;
    size_t host0;
} agentwire_jobrole_t;

typedef struct {
    const char *vc;
    int role, index; /* the task's role (into roles) and instance */
    uint64_t gpus;   /* the task's GPUs (bit g: GPU g) */
    agentwire_jobrole_t *roles;
    size_t nroles;
    agentwire_portdef_t *portdefs;
    size_t nportdefs;
    agentwire_host_t *hosts;
    size_t nhosts;
    int *ports;
    size_t nports;
} agentwire_jobenv_t;

/* The variables of the task j describes in job (its "user~name") whose
 * owner is user's first user_len bytes, in the order they are set (a name
 * two roles make alike is set twice): "NAME\0VALUE\0" pairs in a new
 * string (free() it), *len bytes, *n pairs.  j must be consistent
 * (agentwire_jobenv_check). */
char *agentwire_env_pairs(const char *job, const char *user, size_t user_len,
                          const agentwire_jobenv_t *j, size_t *len, size_t *n);
/* How many pairs agentwire_env_pairs makes of j. */
size_t agentwire_env_count(const agentwire_jobenv_t *j);
/* The n pairs of a pairs text ("NAME\0VALUE\0" each, as
 * agentwire_env_pairs and engine_task_env_pairs make it) as an array of n
 * (+1 zeroed) pointing into text, in order, repeated names kept. */
agentwire_env_t *agentwire_env_split(const char *text, size_t n);
/* NULL when j's indices agree with its arrays (the task's role and
 * instance exist and the instance is placed, every range is inside its
 * array), else what is wrong. */
const char *agentwire_jobenv_check(const agentwire_jobenv_t *j);
/* Free j's arrays and j; NULL is fine. */
void agentwire_jobenv_free(agentwire_jobenv_t *j);

/* One task attempt of the node's desired set. */
typedef struct {
    const char *attempt_id; /* required */
    const char *job, *user, *role;
    size_t user_len; /* encoding: user is its first user_len bytes (0: all) */
    int index, job_attempt, task_attempt;
    /* "image": null, "uri" or {"uri", "auth": {username, password,
     * registryuri}}; NULL fields are absent. */
    const char *image, *image_user, *image_password, *image_registry;
    bool image_auth; /* the "auth" object is present */
    /* The rendered script (secrets resolved): never log it.  NULL: absent,
     * which version 2 servers send for an attempt the agent reported in its
     * request (it has it already); an agent never starts an attempt
     * without one. */
    const char *command;
    agentwire_env_t *env;
    size_t nenv;
    /* Version 5: the job's placement the env is derived from ("jobenv",
     * sent instead of "env"; owned by the message, NULL: absent).  Decoding
     * sets env too: the derived variables, a repeated name in its first
     * place with its last value (as the env object), held in env_text. */
    agentwire_jobenv_t *jobenv;
    char *env_text;
    int *gpus;
    size_t ngpus;
    double cpu; /* encoded as an integer when whole */
    int64_t memory_mb, shm_mb;
    agentwire_ports_t *ports;
    size_t nports;
    bool has_mounts; /* "mounts" is present (sent when the job has storages) */
    agentwire_mount_t *mounts;
    size_t nmounts;
    int kill_grace_ms;
    /* The owner's task uid offset, assigned by the server to each user and
     * never reused (docs/security.md, "Task identities"): an agent that
     * isolates tasks runs them as lo + task_uid of its --task-uid-range, so
     * every node agrees without a shared map.  -1: absent (older servers,
     * users created before it; the agent's own map decides; decoded as -1).  Optional in
     * both versions: older agents ignore it.  Encoded when has_task_uid. */
    bool has_task_uid;
    int64_t task_uid;
    /* The entry's text as agentwire_task_dump wrote it before (text_len
     * bytes), kept by the caller: agentwire_resp_dump appends it as it is
     * instead of the fields above.  NULL: written from the fields.  Not
     * read by agentwire_resp_encode or set by the decoder. */
    const char *text;
    size_t text_len;
    /* Decoding, version 7: the derived job, role and user point into this
     * (owned; NULL when none was derived). */
    char *names;
} agentwire_task_t;

typedef struct {
    int version;
    uint64_t seq;
    const char **ack;
    size_t nack;
    /* Version 3: the server incarnation that numbered seq (NULL: absent);
     * the agent echoes it with known_seq. */
    const char *epoch;
    /* Version 3: a delta ("base_seq" present): tasks are the attempts that
     * entered the desired set since base_seq and removed the ids that left
     * it; the agent applies it to the set it kept at base_seq (in epoch).
     * false: tasks is the whole desired set. */
    bool delta;
    uint64_t base_seq;
    const char **removed; /* delta only */
    size_t nremoved;
    /* false: no "tasks" key (a superseded long-poll): apply nothing */
    bool has_tasks;
    agentwire_task_t *tasks;
    size_t ntasks;
    int64_t heartbeat_ms; /* 0 when absent */
    /* Version 2: a node credential the server issued to this node (at
     * registration or rotation); the agent keeps it and presents it from
     * then on.  NULL when absent; never encoded in version 1. */
    const char *credential;
    /* Version 2: the secret the server presents to this node's log server
     * (it replaces the join token there once sent); NULL when absent. */
    const char *log_key;
    /* Version 4: the digest ("desc") of the node's description the server
     * holds; NULL when absent (it holds none: the agent sends it whole). */
    const char *node_desc;
    json_t *root;
} agentwire_resp_t;

/* ---- encoding and decoding --------------------------------------------- */

/* The version a server answers a decoded request in: its version, or the
 * request's accept when higher, at most AGENTWIRE_VERSION. */
int agentwire_answer_version(const agentwire_req_t *m);

/* The message as JSON, in m->version (0: AGENTWIRE_VERSION).  New
 * reference; never NULL. */
json_t *agentwire_req_encode(const agentwire_req_t *m);
/* Whether s's n bytes are valid UTF-8 without NULs (what jansson takes). */
bool agentwire_utf8_valid(const char *s, size_t n);
/* A copy of s's n bytes with each byte that starts no valid UTF-8
 * sequence (or is a NUL) as '?', NUL-terminated; NULL when s is valid. */
char *agentwire_lossy_copy(const char *s, size_t n);
json_t *agentwire_resp_encode(const agentwire_resp_t *m);
/* Parts of a request, for a side that shows or stores them (the
 * server's node record keeps "gpus"; `pai agent --discover` prints
 * "node").  New references. */
json_t *agentwire_node_encode(const agentwire_node_t *n);
json_t *agentwire_gpus_encode(const agentwire_gpu_t *gpus, size_t n);
json_t *agentwire_report_encode(const agentwire_report_t *r);

/* ---- the agent's request as text, its node's description kept ----------
 * (agentwire_dump.c) The agent sends its node's whole description in
 * every sync (the server reads it each time), but all of it except
 * "health" changes only when a GPU's health or utilization, or the node's
 * setup, does.  The cache keeps the description's encoded text and a copy
 * of what it was encoded from; agentwire_req_dumps re-encodes it only
 * when a field differs (compared field by field, so a change is never
 * missed) and writes the rest of the request around it.  The bytes are
 * those of json_dumps(agentwire_req_encode(m), JSON_COMPACT), where in
 * version 4 m's node carries the cache's digest: as "desc", or as "same"
 * alone (no description) once the server has named that digest in an
 * answer (agentwire_node_cache_ack). */
typedef struct {
    char *text;                         /* the node object without "health" and its closing '}' */
    size_t len;                         /* of text; NULL text: nothing encoded yet */
    char *same;                         /* version 4's {"name","same"} without its closing '}' */
    size_t same_len;                    /* of same */
    agentwire_node_t key;               /* what text was encoded from (strings owned) */
    int64_t encodes;                    /* how often the description was encoded */
    char desc[17];                      /* the digest of text (16 hex digits) */
    double load1;                       /* the health's load as last written... */
    char load_text[40];                 /* ...and its text ("": none yet) */
    char acked[AGENTWIRE_DESC_MAX + 1]; /* the digest the server holds ("": none) */
} agentwire_node_cache_t;

/* The request m as compact JSON, appended to out (the agent keeps one
 * buffer per connection: no allocation once it is large enough); the
 * cache is refreshed when m->node differs from what it holds.  Fails only
 * when jansson does (out of memory) or out's cap is reached. */
PAI_MUST_CHECK pai_err_t agentwire_req_dump(const agentwire_req_t *m, agentwire_node_cache_t *c,
                                            buf_t *out);
/* The same in a new string (free() it), its length in *len; NULL on
 * failure. */
char *agentwire_req_dumps(const agentwire_req_t *m, agentwire_node_cache_t *c, size_t *len);
/* Drop what the cache holds; it is zeroed (the count of encodes too). */
void agentwire_node_cache_free(agentwire_node_cache_t *c);
/* An answer named node_desc (resp.node_desc, NULL when it named none):
 * while it is the cache's digest, the requests dumped send it alone
 * ("same"), else the description whole.  Call it after every answer. */
void agentwire_node_cache_ack(agentwire_node_cache_t *c, const char *node_desc);

/* ---- the server's answer as text (agentwire_resp.c) ----------------------
 * The bytes json_dumps(agentwire_resp_encode(m), JSON_COMPACT) writes,
 * without the tree: agentwire_resp_dump appends them to t; a task entry
 * whose text is set is appended as it is (agentwire_task_dump's text of it
 * kept by the caller, so that an entry is encoded once, not per answer). */
void agentwire_resp_dump(jtext_t *t, const agentwire_resp_t *m);
/* The same in a new string (free() it), its length in *len; never NULL. */
char *agentwire_resp_dumps(const agentwire_resp_t *m, size_t *len);
/* One task entry, as it stands in the answer's "tasks" of a version 6
 * answer (agentwire_task_dumpv: of one in version). */
void agentwire_task_dump(jtext_t *t, const agentwire_task_t *m);
void agentwire_task_dumpv(jtext_t *t, const agentwire_task_t *m, int version);

/* ---- version 7's compact task entries (agentwire_compact.c) -------------
 * Which fields of m an entry in version leaves out (0 below version 7):
 * each only when the decoder derives exactly m's value. */
enum {
    AGENTWIRE_OMIT_IDS = 1,       /* job, role, index, job_attempt, task_attempt: the id's */
    AGENTWIRE_OMIT_USER = 2,      /* user: the job's name up to its first '~' */
    AGENTWIRE_OMIT_IMAGE_OBJ = 4, /* image: absent for none, its uri without auth */
    AGENTWIRE_OMIT_GRACE = 8,     /* kill_grace_ms: AGENTWIRE_KILL_GRACE_MS */
    AGENTWIRE_OMIT_GPUS = 16,     /* gpus: jobenv.gpus */
    AGENTWIRE_OMIT_RESOURCE = 32, /* cpu, memory_mb, shm_mb: the task's role's resource */
    AGENTWIRE_OMIT_PORTS = 64,    /* ports: the role's labels over its instance's host ports */
};
unsigned agentwire_task_omits(const agentwire_task_t *m, int version);
/* The decoder's side: names (ids: job, role and the numbers from the
 * attempt id; user: the user from the job) into m->names; the rest from
 * m->jobenv (checked).  NULL, or what is wrong with the entry. */
const char *agentwire_task_derive_names(agentwire_task_t *m, bool ids, bool user);
const char *agentwire_task_derive_rest(agentwire_task_t *m, bool gpus, bool resource, bool ports);
/* The ids that left the set a delta m applies to (0 when m is no delta):
 * its removed ones and, from version 7 on, its acked ones (an acked
 * attempt has ended, so it has left the set; version 7 does not list it
 * in removed too).  agentwire_resp_left(m, i) is the i-th, i below
 * agentwire_resp_nleft(m). */
size_t agentwire_resp_nleft(const agentwire_resp_t *m);
const char *agentwire_resp_left(const agentwire_resp_t *m, size_t i);

/* Read a message from JSON.  On PAI_OK *out holds a reference to root
 * until agentwire_*_clear.  On error (PAI_E_INVALID for a request, which
 * the server answers 400; PAI_E_PROTOCOL for a response) e's message
 * names the field and *out is cleared.  A version outside
 * AGENTWIRE_MIN_VERSION..AGENTWIRE_VERSION is an error; out->version is
 * the one read.  e may be NULL. */
PAI_MUST_CHECK pai_err_t agentwire_req_decode(json_t *root, agentwire_req_t *out, pai_error_t *e);
PAI_MUST_CHECK pai_err_t agentwire_resp_decode(json_t *root, agentwire_resp_t *out, pai_error_t *e);
/* Parse a response body (at most PAI_MAX_AGENT_MSG bytes) and decode it. */
PAI_MUST_CHECK pai_err_t agentwire_resp_parse(const char *body, size_t len, agentwire_resp_t *out,
                                              pai_error_t *e);

/* Free the arrays a message holds and drop its root; the message is
 * zeroed.  Safe on a zeroed or already cleared message. */
void agentwire_req_clear(agentwire_req_t *m);
void agentwire_resp_clear(agentwire_resp_t *m);

/* "running", "exited", ... and back (false for an unknown name). */
const char *agentwire_state_name(agentwire_state_t s);
bool agentwire_state_parse(const char *s, agentwire_state_t *out);

#endif
