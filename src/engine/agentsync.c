/*
 * agentsync.c - POST /api/v1/agent/sync, the server side of the agent
 * protocol (docs/agent-protocol.md).
 *
 * Procedure of one sync:
 *   1. decode the request (wire/agentwire.h: version, types, bounds);
 *      check the caller may sync as the node it names (nodecred.h: its own
 *      credential, or the join token for a name without one in use;
 *      refused with 403 and a log line otherwise); register or refresh
 *      the node (resources, health, last seen); a new, changed or
 *      returning node goes to the scheduler; issue a credential when the
 *      check says so (stored by step 3's flush before it is sent);
 *   2. apply each reported task attempt: running -> lc_task_running;
 *      exited -> lc_task_exited (acked once persisted); reports about
 *      attempts that are not current on this node (stale, from before a
 *      node loss, or deleted jobs) change nothing: exits are acked, running
 *      ones are left out of the desired set so the agent kills them;
 *   3. run a scheduling pass if something was freed; persist (engine_flush);
 *   4. answer at once when the node's seq is newer than known_seq or there
 *      are acks (unless the agent takes them with its next answer:
 *      hold_acks); otherwise wait until its desired set changes or wait_ms
 *      passes (bounded).  Two ways to wait: engine_agent_sync blocks on the
 *      node's condition variable (in-process callers, tests); the server
 *      holds the poll without a thread (engine_agent_sync_begin returns it
 *      held, engine_poll_arm leaves a waker on the node, and nodes_wake,
 *      under the engine lock, calls it when seq moves, a newer sync
 *      supersedes the poll or the engine stops; the waker only queues a
 *      wake-up, src/server/waiters.h, so no lock is taken after mu);
 *   5. the answer, in the agent's wire version (or the one it accepts:
 *      version 5, a task's env as its job's placement; desired.c), is the
 *      node's full desired set with env and commands (never another node's
 *      tasks), and the credential issued in step 1.
 *      Version 4: step 1 keeps the digest of a description sent whole
 *      ("desc") and the answer names it ("node_desc"); a later sync that
 *      names it alone ("same") skips the description, and one naming a
 *      digest the node does not hold is answered at once without "tasks",
 *      nothing of it applied, so that the agent sends its node whole.
 *      A held poll superseded by a newer sync of the same node (the agent
 *      abandoned it to report a local change: one sync in flight per node)
 *      is answered at once without "tasks" and with seq = known_seq: no
 *      desired set is encoded for a closed connection, and the thread is
 *      free at once instead of at the next change or heartbeat.
 *
 * Batches: steps 1 and 2, step 3's pass and (for a sync with nothing to
 * store) step 4 run as one critical section queued to combine.c, which runs
 * every section queued at that moment under one acquisition of mu: the
 * syncs' apply parts first, in order, then their after parts (the first
 * runs the pass for the whole batch).  Step 3's flush runs on the sync's
 * own thread after the batch, without mu, and a sync that had to store is
 * decided in one more batched section after it, so each sync's answer
 * still follows the commit of its changes.  Version 6 (accept 6 with
 * hold_acks): its exits need no commit before the answer; each is acked in
 * the first answer after a commit holds it (later_flush, acks_durable;
 * docs/agent-protocol.md, "Acks in a later answer").  A sync refused in its batch
 * (its identity check) changes nothing and fails alone.
 * engine_agent_sync_batch (the server's: a write worker hands it every
 * sync queued in the HTTP layer at one moment) runs them as one section
 * batch, then one flush for all of them on its own thread (after the
 * flush another thread runs, if any: one wait for the batch, no sync held
 * for it), then the answers of those that stored as one more batch.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/strmap.h"
#include "common/util.h"
#include "protocol/exitspec.h"
#include "engine/codec.h"
#include "engine/desired.h"
#include "engine/engine_int.h"
#include "wire/agentwire.h"

/* The heartbeat the server asks agents for: 5 s, longer with many nodes (2
 * ms per node, at most 20 s and half the node-lost timeout), so that the
 * heartbeats of a large cluster stay near 500 syncs/s: 10,000 nodes at 5 s
 * were 2,000 syncs/s, each taking the engine lock, and submissions queued
 * behind them (docs/benchmarks-history.md, "Scale").  A long-poll is held at most
 * one heartbeat: the agent counts a silent server as gone after a few. */
#define HEARTBEAT_MS          5000
#define HEARTBEAT_MAX_MS      20000
#define HEARTBEAT_PER_NODE_MS 2
/* A sync waiting for its flush (step 3, held) is answered 503 after this. */
#define DURABLE_WAIT_MS 30000

static void set_str(char **dst, const char *s)
{
    if (s && (!*dst || strcmp(*dst, s) != 0)) {
        free(*dst);
        *dst = xstrdup(s);
    }
}

/* GPUs that turned bad or good again (the agent's per-GPU "healthy"):
 * logged here; the node's cell follows in the scheduler (engine_sched_node:
 * HiveD's rule, a cell is bad when any cell inside it is, so no new work
 * lands on the node; running tasks are left running, as HiveD leaves the
 * pods of a bad cell, and fail on their own if the GPU is gone). */
static void gpu_health_changed(const engine_node_t *n, uint64_t bad)
{
    for (int g = 0; g < 64; g++) {
        uint64_t m = 1ull << g;
        if ((bad & m) && !(n->bad_gpus & m))
            log_warn("node=%s gpu=%d unhealthy: the node's cell is bad in the scheduler (no "
                     "new work), running tasks keep running",
                     n->name, g);
        else if (!(bad & m) && (n->bad_gpus & m))
            log_info("node=%s gpu=%d healthy again", n->name, g);
    }
}

/* Step 1, the node as the agent describes it (resources, addresses, GPUs);
 * true when the scheduler must hear of it.  gpus (taken) is the node's GPU
 * list as stored, NULL when the agent sent none. */
static bool describe_node(engine_node_t *n, const agentwire_node_t *an, json_t *gpus)
{
    bool changed = false;
    const char *addr = an->address, *model = an->gpu_model;
    uint64_t bad = 0;
    for (size_t i = 0; i < an->ngpus; i++)
        if (!an->gpus[i].healthy && an->gpus[i].index >= 0 && an->gpus[i].index < 64)
            bad |= 1ull << an->gpus[i].index;
    if (bad != n->bad_gpus)
        gpu_health_changed(n, bad);
    if ((int)an->ngpus != n->ngpus || an->cpus != n->cpus || an->memory_mb != n->memory_mb ||
        bad != n->bad_gpus || (addr && (!n->address || strcmp(addr, n->address) != 0)) ||
        (model && (!n->gpu_model || strcmp(model, n->gpu_model) != 0)))
        changed = true;
    n->ngpus = (int)an->ngpus;
    n->bad_gpus = bad;
    n->cpus = an->cpus;
    n->memory_mb = an->memory_mb;
    set_str(&n->address, addr);
    set_str(&n->gpu_model, model);
    set_str(&n->log_url, an->log_url);
    set_str(&n->runtime, an->runtime);
    set_str(&n->gpu_backend, an->gpu_backend);
    if (an->boot_id && n->boot_id && strcmp(an->boot_id, n->boot_id) != 0)
        log_info("node=%s agent restarted (boot %s)", an->name, an->boot_id);
    set_str(&n->boot_id, an->boot_id);
    n->hollow = an->hollow;
    if (gpus && (!n->gpus || !json_equal(gpus, n->gpus))) {
        json_decref(n->gpus);
        n->gpus = gpus;
    } else {
        json_decref(gpus);
    }
    str_copy(n->desc, an->desc ? an->desc : "", sizeof(n->desc));
    return changed;
}

/* Step 1.  Returns the node; a new, changed or returning one goes to the
 * scheduler.  A sync that names its description by digest alone (version
 * 4's "same") keeps the one the node holds; NULL when it holds another or
 * none (a restarted server, a failover: the agent sends it whole next). */
static engine_node_t *register_node(engine_t *j, const agentwire_node_t *an, json_t *gpus,
                                    bool hold)
{
    engine_assert_locked(j);
    bool created = false;
    engine_node_t *n;
    if (an->same) {
        n = nodes_find(j->nodes, an->name);
        if (!n || strcmp(n->desc, an->same) != 0)
            return NULL;
    } else {
        n = nodes_get(j->nodes, an->name, &created);
    }
    bool changed = created || n->state == NODE_LOST || n->cred.awaiting != hold;
    if (hold && !n->cred.awaiting)
        log_warn("node=%s registered with the join token: waiting for an administrator's "
                 "approval (pai nodes approve %s); no credential, no task meanwhile",
                 an->name, an->name);
    n->cred.awaiting = hold; /* auto: a node left waiting by a manual setting goes in */
    if (!an->same && describe_node(n, an, gpus))
        changed = true;
    if (n->state == NODE_LOST)
        log_info("node=%s is back", an->name);
    n->state = NODE_HEALTHY;
    n->last_seen_ms = engine_mono_ms(j);
    if (changed) {
        nodes_mark_dirty(j->nodes, n);
        engine_node_to_sched(j, n);
        j->pass.need = true;
    }
    return n;
}

/* When a reported task started: the agent's own time (started_ms, its wall
 * clock), not the report's arrival, which comes up to the agent's report
 * delay later (src/agent/node.c, REPORT_START_MS).  Clamped to the task
 * attempt's creation (it cannot have started before it was dispatched)
 * and to now (nor after the report arrived), so a node clock that is off
 * cannot produce nonsense; an agent that sends none (0): the arrival. */
static int64_t report_launch_ms(const agentwire_report_t *t, const lc_task_attempt_t *cur,
                                int64_t now)
{
    if (t->started_ms <= 0)
        return now;
    int64_t ms = t->started_ms < now ? t->started_ms : now;
    return ms > cur->created_ms ? ms : cur->created_ms;
}

/* Step 2 for one report; an exit's id goes into acks (*nacks) and, in
 * needs, the number of the flush that holds what the server knows of it
 * (version 6: acked once persist.durable reaches it).  An exit that changed
 * the job, or one of a job with changes not encoded yet, is held by the
 * next flush to encode; one that changed nothing (a repeat, an attempt
 * ended otherwise, an unknown job) by the last flush that encoded, or one
 * before it: the job's state is in it. */
static void apply_report(engine_t *j, engine_node_t *n, const agentwire_report_t *t,
                         const char **acks, uint64_t *needs, size_t *nacks, int64_t now)
{
    engine_assert_locked(j);
    const char *id = t->attempt_id;
    bool exited = t->state == AGENTWIRE_EXITED || t->state == AGENTWIRE_FAILED_TO_START;
    char name[PAI_MAX_NAME + 1], role[PAI_MAX_NAME + 1];
    int ja, index, ta;
    lc_job_t *job = NULL;
    lc_task_attempt_t *cur = NULL;
    int r = -1;
    bool changed = false;
    if (codec_attempt_id_parse(id, name, sizeof name, &ja, role, sizeof role, &index, &ta) ==
            PAI_OK &&
        (job = engine_map_get(j, name)) && !job->compacted) {
        if (job->pending)
            return; /* placed while its submission is being answered: report again */
        for (int k = 0; k < job->nroles; k++)
            if (strcmp(job->roles[k].name, role) == 0)
                r = k;
        cur = r >= 0 ? lc_task_current(job, r, index) : NULL;
        if (!cur || ja != job->natts - 1 || cur->index != ta || !cur->node ||
            strcmp(cur->node, n->name) != 0)
            cur = NULL;
    }
    if (cur && !lc_task_state_final(cur->state)) {
        lc_effects_t fx = {0};
        engine_usage_sample(j, n, job, cur, now); /* the time up to this report */
        /* a short task's start and end come in one report: it ran */
        if (t->state == AGENTWIRE_RUNNING ||
            (t->state == AGENTWIRE_EXITED && t->started_ms > 0 && cur->state == TASK_WAITING))
            lc_task_running(job, r, index, report_launch_ms(t, cur, now), &fx);
        if (exited) {
            int code = t->oom ? EXIT_OOM_KILLED : t->exit_code;
            cur->node_ended = true; /* its removal needs no answer (nodes.c) */
            lc_task_exited(job, r, index, code, t->diagnostics, now, engine_exit_reaction, &fx);
        }
        engine_apply(j, job, &fx, now);
        changed = true;
    }
    if (exited) {
        uint64_t encoded = atomic_load(&j->persist.encoded);
        needs[*nacks] = changed || (job && job->dirty) ? encoded + 1 : encoded;
        acks[(*nacks)++] = id;
    }
}

/* The heartbeat for this cluster's size (mu held). */
static int64_t heartbeat_ms(const engine_t *j)
{
    engine_assert_locked(j);
    int64_t hb = (int64_t)nodes_count(j->nodes) * HEARTBEAT_PER_NODE_MS;
    hb = hb < HEARTBEAT_MAX_MS ? hb : HEARTBEAT_MAX_MS;
    if (hb > j->opts.node_lost_timeout_s * 500)
        hb = j->opts.node_lost_timeout_s * 500;
    return hb > HEARTBEAT_MS ? hb : HEARTBEAT_MS;
}

/* Step 4's bound on a poll's wait. */
static int64_t poll_wait_ms(const engine_t *j, int64_t wait_ms)
{
    int64_t most = heartbeat_ms(j);
    if (wait_ms > most)
        wait_ms = most;
    /* A node is lost after node_lost_timeout_s without a sync: answer well
     * before that so a healthy long-polling agent is never counted lost. */
    if (wait_ms > j->opts.node_lost_timeout_s * 500)
        wait_ms = j->opts.node_lost_timeout_s * 500;
    return wait_ms;
}

/* Step 4, blocking (engine_agent_sync): wait (mu held) until news > known (nodes.h), a
 * newer sync of the node (its poll_gen moves past gen) or the deadline.
 * False when superseded. */
static bool long_poll(engine_t *j, engine_node_t *n, uint64_t known, uint64_t gen, int64_t wait_ms)
{
    engine_assert_locked(j);
    if (wait_ms <= 0)
        return true;
    wait_ms = poll_wait_ms(j, wait_ms);
    struct timespec ts = time_after_ms(CLOCK_MONOTONIC, wait_ms);
    while (n->news <= known && !j->threads.stopping && n->poll_gen == gen)
        if (pthread_cond_timedwait(&n->cv, &j->mu, &ts) != 0)
            break;
    n->last_seen_ms = engine_mono_ms(j);
    return n->poll_gen == gen;
}

/* What one answer carries besides the desired set. */
typedef struct {
    int version;       /* the agent's */
    uint64_t known;    /* its known_seq */
    const char **acks; /* taken */
    size_t nacks;
    bool superseded;          /* no desired set, seq = known */
    bool rebase;              /* version 3 with no base of this server's: the whole set */
    const char *epoch;        /* this server's (nodes_epoch) */
    const char *credential;   /* issued by this sync, or NULL */
    const strmap_t *reported; /* version 2: attempts the agent reported (NULL: v1) */
    int64_t heartbeat_ms;
} answer_t;

/* The desired set into m, or in version 3 its delta against the agent's
 * known_seq when the node can serve one (mu held): the seq it is complete
 * up to into m->seq. */
static void answer_desired(engine_node_t *n, const answer_t *a, agentwire_resp_t *m, json_t *hold)
{
    nodes_refresh(n); /* may bump seq: read it after */
    bool delta = a->version >= 3 && !a->rebase && nodes_delta_ok(n, a->known);
    engine_desired_t d = {
        .reported = a->reported, .delta = delta, .base = a->known, .version = a->version};
    engine_desired_set(n, &d, m, hold);
    m->seq = n->seq;
    /* Some new attempts wait: a seq the agent is behind of, so that its
     * next sync (at once: it starts what it got) is answered at once (a
     * seq below news: nodes.h) and, in version 3, its delta holds what
     * waits (a base below every attempt left out; lower is still right:
     * the delta then re-sends more). */
    if (d.partial) {
        m->seq = d.resume;
        if (n->news && m->seq >= n->news)
            m->seq = n->news - 1;
    }
    if (m->seq > n->answered)
        n->answered = m->seq;
    /* What left the set up to the agent's base is known to it (version 3,
     * this epoch); an older agent takes no delta. */
    if (delta)
        nodes_gone_trim(n, a->known);
    else if (a->version < 3)
        nodes_gone_trim(n, n->seq);
}

/* The answer (mu held): the desired set unless superseded. */
static char *answer(engine_node_t *n, const answer_t *a)
{
    agentwire_resp_t m = {
        .version = a->version,
        .seq = a->known,
        .ack = a->acks,
        .nack = a->nacks,
        .epoch = a->epoch,
        .heartbeat_ms = a->heartbeat_ms,
        .credential = a->credential,
        .log_key = *n->cred.log_key ? n->cred.log_key : NULL,
        .node_desc = *n->desc ? n->desc : NULL, /* encoded in version 4 */
    };
    json_t *hold = json_array();
    if (!a->superseded)
        answer_desired(n, a, &m, hold);
    /* version 7: a delta names the log key only with a new credential (a new key) */
    if (a->version >= AGENTWIRE_COMPACT_VERSION && m.delta && !m.credential)
        m.log_key = NULL;
    size_t len;
    char *out = agentwire_resp_dumps(&m, &len); /* text: no tree (agentwire_resp.c) */
    agentwire_resp_clear(&m);
    json_decref(hold);
    return out;
}

/* Step 1's check (mu held): may the caller sync as the node it names?  A
 * name never seen holds no credential.  *hold: the join token for a name
 * that waits for an admin's approval (node_approval: manual): no credential
 * is issued, the node gets no task. */
static pai_err_t check_identity(engine_t *j, const agentwire_req_t *req, const char *credential,
                                nodecred_verdict_t *v, bool *hold, pai_error_t *e)
{
    engine_assert_locked(j);
    engine_node_t *n = nodes_find(j->nodes, req->node.name);
    nodecred_t none = {0};
    nodecred_t *c = n ? &n->cred : &none;
    pai_err_t rc = nodecred_check(c, req->node.name, credential, req->version >= 2, v, e);
    *hold = rc == PAI_OK && !credential && j->opts.node_approval_manual &&
            nodecred_needs_approval(c, n != NULL);
    if (*hold)
        v->issue = false;
    return rc;
}

/* A sync past its step 3, waiting for its answer (step 4 and 5). */
struct engine_poll {
    engine_t *j;
    engine_node_t *n; /* nodes are never freed while the engine lives */
    agentwire_req_t req;
    const char **acks; /* point into req; taken by the answer */
    uint64_t *needs;   /* each ack's flush (apply_report) */
    size_t nacks;
    /* Version 6 with hold_acks: each ack waits for its flush and may go in
     * a later answer; the sync leads no commit for its exits. */
    bool later;
    strmap_t *reported; /* version 2: the attempts the agent reported */
    /* version 3: its known_seq is not this server's (no epoch, another
     * one's): answered at once with the whole set */
    bool rebase;
    char issued[PAI_MAX_NODE_CRED + 1];
    uint64_t known, gen;
    uint64_t ticket; /* armed: the waker's ticket left on the node (or the flush wait) */
    bool armed;
    bool wait_durable; /* step 3 not done: waits for flush number need */
    uint64_t need;
};

/* Forget p's waker (mu held), on the node or in the flush waits. */
static void disarm(engine_poll_t *p)
{
    if (p->armed && p->wait_durable)
        engine_durable_cancel(p->j, p->ticket);
    else if (p->armed && p->n->waker.fn && p->n->waker.ticket == p->ticket)
        p->n->waker = (engine_waker_t){0};
    p->armed = false;
}

void engine_poll_free(engine_poll_t *p)
{
    if (!p)
        return;
    if (p->armed) {
        engine_lock(p->j);
        disarm(p);
        engine_unlock(p->j);
    }
    free(p->acks);
    free(p->needs);
    strmap_free(p->reported);
    agentwire_req_clear(&p->req); /* after the answer: acks point into it */
    sodium_memzero(p->issued, sizeof p->issued);
    free(p);
}

/* Version 6 (mu held): keep the acks whose exits a commit holds (the
 * others go in a later answer: the agent reports them until then); none
 * in a superseded answer, which the agent does not read. */
static void acks_durable(engine_poll_t *p, bool superseded)
{
    uint64_t durable = atomic_load(&p->j->persist.durable);
    size_t k = 0;
    for (size_t i = 0; i < p->nacks && !superseded; i++)
        if (p->needs[i] <= durable)
            p->acks[k++] = p->acks[i];
    p->j->combine.acks_later += p->nacks - k;
    p->nacks = k;
}

/* Step 5 (mu held): the answer; takes p's acks. */
static char *poll_answer_locked(engine_poll_t *p, bool superseded)
{
    if (p->later)
        acks_durable(p, superseded);
    answer_t a = {.version = engine_answer_version(&p->req),
                  .known = p->known,
                  .reported = p->reported,
                  .acks = p->acks,
                  .nacks = p->nacks,
                  .superseded = superseded,
                  .rebase = p->rebase,
                  .epoch = nodes_epoch(p->j->nodes),
                  .credential = *p->issued ? p->issued : NULL,
                  .heartbeat_ms = heartbeat_ms(p->j)};
    p->acks = NULL;
    return answer(p->n, &a);
}

/* Nothing to answer yet (mu held): no acks (or an agent that takes them
 * with its next answer, hold_acks), nothing newer than known_seq, and (in
 * version 3) an agent whose known_seq is this server's.  Only news moves
 * it (nodes.h): an attempt that left because the agent reported its end
 * goes with the next answer. */
static bool poll_idle(const engine_poll_t *p)
{
    return (p->nacks == 0 || p->req.hold_acks) && p->n->news <= p->known && !p->rebase;
}

/* Step 4 (mu held): answer now (*resp), or hold (*resp NULL) for *wait_ms. */
static void poll_decide(engine_poll_t *p, char **resp, int64_t *wait_ms)
{
    engine_t *j = p->j;
    int64_t wait = p->req.wait_ms > 0 ? poll_wait_ms(j, p->req.wait_ms) : 0;
    *resp = NULL;
    *wait_ms = 0;
    if (poll_idle(p) && wait > 0 && !j->threads.stopping && p->n->poll_gen == p->gen) {
        *wait_ms = wait;
        return;
    }
    bool superseded = poll_idle(p) && wait > 0 && p->n->poll_gen != p->gen;
    *resp = poll_answer_locked(p, superseded);
}

/* One sync's work under mu, batched with other syncs' (combine.c): steps 1
 * and 2 in apply; in after (every sync of the batch applied), step 3's pass
 * (the batch's first after runs it for all), and step 4 at once when the
 * sync has nothing to store (decide: the server's path). */
typedef struct {
    engine_combine_op_t op; /* first: combine.c hands it back */
    engine_poll_t *p;
    const char *credential;
    json_t *gpus; /* taken by register_node */
    int64_t now;
    bool decide;
    pai_err_t rc;
    pai_error_t *e;
    bool dirty;   /* after: must be stored before it is answered */
    bool decided; /* after: step 4 done, *resp or held for wait_ms */
    bool unknown; /* version 4: its node is "same" as a description not held */
    char *resp;
    int64_t wait_ms;
} start_op_t;

static void start_apply(engine_t *j, engine_combine_op_t *op)
{
    start_op_t *s = (start_op_t *)op;
    engine_poll_t *p = s->p;
    agentwire_req_t *req = &p->req;
    nodecred_verdict_t verdict;
    bool hold = false;
    /* Once, under the lock that registers: a concurrent sync of the same
     * name may register it or use its credential; what the check changes
     * (a credential used for the first time, a rotation completed) is
     * persisted by the flush of step 3. */
    if ((s->rc = check_identity(j, req, s->credential, &verdict, &hold, s->e)) != PAI_OK)
        return;
    engine_node_t *n = p->n = register_node(j, &req->node, s->gpus, hold);
    s->gpus = NULL;
    if (req->version >= 4) { /* pai_agent_sync_node_total */
        uint64_t *count = !n               ? &j->combine.node_unknown
                          : req->node.same ? &j->combine.node_same
                                           : &j->combine.node_whole;
        (*count)++;
    }
    if (!n) { /* "same" as a description it does not hold: answered in after */
        engine_node_t *known = nodes_find(j->nodes, req->node.name);
        if (known && verdict.changed) /* what the check changed is stored */
            nodes_mark_dirty(j->nodes, known);
        s->unknown = true;
        return;
    }
    if (verdict.issue) {
        bool rotation = n->cred.state == NODECRED_ACTIVE;
        nodecred_issue(&n->cred, p->issued);
        log_info("node=%s %s", n->name,
                 rotation ? "rotation: new credential issued" : "registered: credential issued");
    }
    if (verdict.issue || verdict.changed)
        nodes_mark_dirty(j->nodes, n);
    p->gen = ++n->poll_gen;
    nodes_wake(n); /* release a held poll this one supersedes */
    for (size_t i = 0; i < req->ntasks; i++)
        apply_report(j, n, &req->tasks[i], p->acks, p->needs, &p->nacks, s->now);
}

/* Version 6 (mu held, after step 3's pass): does a sync with exits lead a
 * commit?  Its exits need none: their acks wait for the next commit anyone
 * makes (a submission's, the scheduler thread's after a pass that placed
 * work, or the timer's at its next tick, TIMER_TICK_MS, while anything is
 * dirty).  But what the pass placed on what they freed is sent only once
 * stored, so when anything waits for a flush the batch stores it at once,
 * as before version 6 (leaving it to another flush cost a held answer's
 * hand-off and more switches per job in a burst: docs/benchmarks-history.md). */
static bool later_flush(engine_t *j)
{
    return engine_flush_wanted(j);
}

static void start_after(engine_t *j, engine_combine_op_t *op)
{
    start_op_t *s = (start_op_t *)op;
    engine_poll_t *p = s->p;
    if (s->rc != PAI_OK)
        return;
    if (s->unknown) { /* nothing applied: at once, asking for it whole */
        agentwire_resp_t m = {.version = engine_answer_version(&p->req),
                              .seq = p->known,
                              .epoch = nodes_epoch(j->nodes),
                              .heartbeat_ms = heartbeat_ms(j)};
        size_t len;
        s->resp = agentwire_resp_dumps(&m, &len);
        s->decided = true;
        return;
    }
    /* Freed resources: with a short queue or cheap passes decide at once,
     * so that the new placements are stored by the same commit as the
     * exits (one fsync before the next tasks can be sent) without waking
     * the scheduler thread and waiting for it; else leave it to the thread. */
    if (j->pass.need && engine_pass_cheap(j))
        engine_run_pass(j);
    else
        engine_kick(j);
    /* A server restarted since the agent's last answer: catch its seq up. */
    if (p->known > p->n->seq)
        p->n->seq = p->n->news = p->known + 1;
    /* Acks only once the exits they acknowledge are stored; other changes
     * are stored by the scheduler and timer threads without delaying this.
     * Version 6: the acks wait for their commit instead of the answer. */
    s->dirty = p->n->dirty || (p->nacks > 0 && (!p->later || later_flush(j)));
    if (p->nacks > 0 && s->dirty)
        j->combine.exits_own++;
    else if (p->nacks > 0)
        j->combine.exits_later++;
    p->need = j->persist.encoded + 1; /* the first flush to encode after this */
    if (s->decide && !s->dirty) {
        poll_decide(p, &s->resp, &s->wait_ms);
        s->decided = true;
    }
}

/* Decode the request (without mu) into a start op for the batch. */
static pai_err_t sync_prepare(engine_t *j, json_t *body, const char *credential, bool decide,
                              start_op_t *s, pai_error_t *e)
{
    engine_poll_t *p = xcalloc(1, sizeof(*p));
    *s = (start_op_t){.op = {.apply = start_apply, .after = start_after},
                      .p = p,
                      .credential = credential,
                      .decide = decide,
                      .e = e};
    p->j = j;
    pai_err_t rc = agentwire_req_decode(body, &p->req, e);
    if (rc != PAI_OK) {
        free(p);
        s->p = NULL;
        return s->rc = rc;
    }
    agentwire_req_t *req = &p->req;
    if (req->skipped)
        log_warn("node=%s sync: %zu unreadable report(s) ignored, first: %s", req->node.name,
                 req->skipped, req->skip_reason);
    p->known = req->known_seq;
    p->rebase =
        req->version >= 3 && (!req->epoch || strcmp(req->epoch, nodes_epoch(j->nodes)) != 0);
    s->now = engine_now_ms(j);
    p->acks = xcalloc(req->ntasks + 1, sizeof(*p->acks));
    p->needs = xcalloc(req->ntasks + 1, sizeof(*p->needs));
    p->later = req->hold_acks && engine_answer_version(req) >= AGENTWIRE_LATER_ACKS_VERSION;
    s->gpus = req->node.has_gpus ? agentwire_gpus_encode(req->node.gpus, req->node.ngpus) : NULL;
    p->reported = req->version >= 2 ? strmap_new(NULL) : NULL;
    for (size_t i = 0; p->reported && i < req->ntasks; i++)
        if (strmap_put(p->reported, req->tasks[i].attempt_id, (void *)1) != PAI_OK)
            log_warn("node=%s sync: report %zu not indexed", req->node.name, i);
    return PAI_OK;
}

/* Step 3's store after the batch (without mu).  Held (the server): flush
 * now when no other flush runs, else wait as a held connection for the
 * flush that covers this one, so a storm of registrations is stored by few
 * commits and holds no thread.  On failure the poll is freed. */
static pai_err_t sync_store(engine_t *j, start_op_t *s, bool may_hold, pai_error_t *e)
{
    engine_poll_t *p = s->p;
    pai_err_t frc = s->rc;
    if (frc != PAI_OK) {
        json_decref(s->gpus);
    } else if (s->dirty && may_hold && !engine_flush_try(j, &frc)) {
        p->wait_durable = true;
    } else if (s->dirty && !may_hold) {
        frc = engine_flush(j);
    }
    if (frc != PAI_OK && s->rc == PAI_OK) {
        free(s->resp);
        s->resp = NULL;
        pai_error_set(e, PAI_E_UNAVAILABLE, "the store is unavailable");
    }
    if (frc != PAI_OK) {
        engine_poll_free(p);
        s->p = NULL;
    }
    return frc != PAI_OK && s->rc == PAI_OK ? PAI_E_UNAVAILABLE : s->rc;
}

pai_err_t engine_agent_sync(engine_t *j, json_t *body, const char *credential, char **resp,
                            pai_error_t *e)
{
    start_op_t s;
    *resp = NULL;
    pai_err_t rc = sync_prepare(j, body, credential, false, &s, e);
    if (rc != PAI_OK)
        return rc;
    engine_combine(j, &s.op);
    if ((rc = sync_store(j, &s, false, e)) != PAI_OK)
        return rc;
    engine_poll_t *p = s.p;
    if (s.decided) { /* a description not held: answered already */
        *resp = s.resp;
        engine_poll_free(p);
        return PAI_OK;
    }
    engine_lock(j); /* not batched: it may wait on the node's cv */
    bool superseded = poll_idle(p) && !long_poll(j, p->n, p->known, p->gen, p->req.wait_ms);
    *resp = poll_answer_locked(p, superseded);
    engine_unlock(j);
    engine_poll_free(p);
    return PAI_OK;
}

/* Step 4 as a batched section (a stored sync, a resumed poll). */
typedef struct {
    engine_combine_op_t op; /* first */
    engine_poll_t *p;
    bool resume; /* engine_poll_resume's: disarm, then as below */
    bool failed; /* resume: its flush failed, timed out or the engine stops */
    char *resp;  /* or held for wait_ms */
    int64_t wait_ms;
} decide_op_t;

static void decide_apply(engine_t *j, engine_combine_op_t *op)
{
    decide_op_t *d = (decide_op_t *)op;
    engine_poll_t *p = d->p;
    if (!d->resume) {
        poll_decide(p, &d->resp, &d->wait_ms);
        return;
    }
    disarm(p);
    p->n->last_seen_ms = engine_mono_ms(j);
    if (p->wait_durable) {
        p->wait_durable = false;
        if (j->persist.durable < p->need) /* failed, timed out or stopping */
            d->failed = true;
        else
            poll_decide(p, &d->resp, &d->wait_ms); /* stored: now step 4 */
    } else {
        d->resp = poll_answer_locked(p, p->n->poll_gen != p->gen);
    }
}

/* After the batch and the store: the answer (*resp, p freed) or p held. */
static void sync_end(engine_t *j, start_op_t *s, char **resp, engine_poll_t **held,
                     int64_t *wait_ms)
{
    engine_poll_t *p = s->p;
    if (p->wait_durable) { /* step 3 goes on without a thread */
        *held = p;
        *wait_ms = DURABLE_WAIT_MS;
        return;
    }
    if (!s->decided) { /* stored: step 4 */
        decide_op_t d = {.op = {.apply = decide_apply}, .p = p};
        engine_combine(j, &d.op);
        s->resp = d.resp;
        s->wait_ms = d.wait_ms;
    }
    *resp = s->resp;
    *wait_ms = s->wait_ms;
    if (*resp)
        engine_poll_free(p);
    else
        *held = p;
}

pai_err_t engine_agent_sync_begin(engine_t *j, json_t *body, const char *credential, char **resp,
                                  engine_poll_t **held, int64_t *wait_ms, pai_error_t *e)
{
    start_op_t s;
    *resp = NULL;
    *held = NULL;
    *wait_ms = 0;
    pai_err_t rc = sync_prepare(j, body, credential, true, &s, e);
    if (rc != PAI_OK)
        return rc;
    engine_combine(j, &s.op);
    if ((rc = sync_store(j, &s, true, e)) != PAI_OK)
        return rc;
    sync_end(j, &s, resp, held, wait_ms);
    return PAI_OK;
}

/* Step 3 for a whole batch (without mu): one flush stores every sync's
 * changes (each one's need is at most the flush number encoded next after
 * the batch).  It waits for a flush another thread runs and then flushes:
 * one wait for the batch on its worker, instead of each sync held as a
 * connection until a flush wakes it (a wake-up, a resumption and another
 * worker each).  True when the batch had something to store; *rc the
 * flush's result. */
static bool batch_store(engine_t *j, const start_op_t *s, size_t n, pai_err_t *rc)
{
    *rc = PAI_OK;
    for (size_t i = 0; i < n; i++)
        if (s[i].p && s[i].rc == PAI_OK && s[i].dirty) {
            uint64_t need = engine_flush_need(j);
            engine_sync_group_wait(j, need); /* the next batch's changes in the same commit */
            *rc = engine_flush_after_pass(j, need); /* with the placements on what it freed */
            engine_sync_flushed(j);
            return true;
        }
    return false;
}

void engine_agent_sync_batch(engine_t *j, engine_sync_call_t *calls, size_t n)
{
    start_op_t *s = xcalloc(n + 1, sizeof(*s));
    decide_op_t *d = xcalloc(n + 1, sizeof(*d));
    engine_combine_op_t **ops = xcalloc(n + 1, sizeof(*ops));
    size_t nops = 0;
    for (size_t i = 0; i < n; i++) {
        engine_sync_call_t *c = &calls[i];
        *c =
            (engine_sync_call_t){.req = c->req, .credential = c->credential, .err = PAI_ERROR_INIT};
        if (sync_prepare(j, c->req, c->credential, true, &s[i], &c->err) == PAI_OK)
            ops[nops++] = &s[i].op;
        s[i].e = &c->err;
    }
    engine_combine_batch(j, ops, nops); /* steps 1-2 (and 4 when clean), in this order */
    pai_err_t frc;
    bool stored = batch_store(j, s, n, &frc);
    nops = 0;
    for (size_t i = 0; i < n; i++) {
        engine_sync_call_t *c = &calls[i];
        start_op_t *si = &s[i];
        c->rc = si->rc;
        if (!si->p || si->rc != PAI_OK) { /* not decoded, or refused: alone */
            json_decref(si->gpus);
            if (si->p)
                engine_poll_free(si->p);
            si->p = NULL;
            continue;
        }
        if (stored && si->dirty && frc != PAI_OK) {
            c->rc = pai_error_set(&c->err, PAI_E_UNAVAILABLE, "the store is unavailable");
            engine_poll_free(si->p);
            si->p = NULL;
        } else if (!si->decided) { /* stored: step 4, in one more batch */
            d[i] = (decide_op_t){.op = {.apply = decide_apply}, .p = si->p};
            ops[nops++] = &d[i].op;
        }
    }
    engine_combine_batch(j, ops, nops);
    for (size_t i = 0; i < n; i++) {
        engine_sync_call_t *c = &calls[i];
        start_op_t *si = &s[i];
        if (!si->p)
            continue;
        c->resp = si->decided ? si->resp : d[i].resp;
        c->wait_ms = si->decided ? si->wait_ms : d[i].wait_ms;
        if (c->resp)
            engine_poll_free(si->p);
        else
            c->held = si->p;
    }
    free(ops);
    free(d);
    free(s);
}

/* Arming a held poll, as a batched section (the HTTP layer arms from a
 * write worker, thousands a second under a storm). */
typedef struct {
    engine_combine_op_t op; /* first */
    engine_poll_t *p;
    const engine_waker_t *w;
} arm_op_t;

static void arm_apply(engine_t *j, engine_combine_op_t *op)
{
    engine_poll_t *p = ((arm_op_t *)op)->p;
    const engine_waker_t *w = ((arm_op_t *)op)->w;
    engine_node_t *n = p->n;
    p->ticket = w->ticket;
    if (p->wait_durable) {
        p->armed = engine_durable_wait(j, p->need, w);
        if (!p->armed)
            w->fn(w->ud, w->ticket); /* stored already */
    } else if (!poll_idle(p) || j->threads.stopping || n->poll_gen != p->gen) {
        w->fn(w->ud, w->ticket); /* answerable already */
    } else {
        if (n->waker.fn) /* an older held poll: superseded by now, answer it */
            nodes_wake(n);
        n->waker = *w;
        p->armed = true;
    }
}

void engine_poll_arm(engine_poll_t *p, const engine_waker_t *w)
{
    arm_op_t a = {.op = {.apply = arm_apply}, .p = p, .w = w};
    engine_combine(p->j, &a.op);
}

pai_err_t engine_poll_resume(engine_poll_t *p, char **resp, int64_t *wait_ms, pai_error_t *e)
{
    decide_op_t d = {.op = {.apply = decide_apply}, .p = p, .resume = true};
    engine_combine(p->j, &d.op); /* batched with the syncs */
    *resp = d.resp;
    *wait_ms = d.wait_ms;
    if (d.failed)
        return pai_error_set(e, PAI_E_UNAVAILABLE, "the store is unavailable");
    return PAI_OK;
}
