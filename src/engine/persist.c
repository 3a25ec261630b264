/*
 * persist.c - the job engine's persistence: the dirty list, engine_flush()
 * (encode under mu, one store commit without it, settle under mu again),
 * reading back the roles' commands ("jobcmd" records) of bound jobs, and
 * the job record a submission writes itself (engine_sub_encode/settle:
 * after its own pass, so that a job placed at once is stored, placement
 * and all, by its submission's one commit).
 *
 * Fewer commits per job: the scheduler thread flushes after a pass only
 * when something waits for it (engine_flush_wanted); a sync batch whose
 * exits freed resources waits for the pass on them before its flush
 * (engine_flush_after_pass: one commit for both); a flush about to encode
 * waits a moment for submissions being parsed (gather, persist.coming); a
 * submission batch waits a moment for the other clients of a closed loop
 * before its flush (the group delay, engine_sub_group_wait).
 *
 * Invariants: a task attempt is sent to agents only once the record that
 * holds it is committed (durable 0 -> 1 -> 2, see mark_durable()); store
 * I/O happens only without mu, and flush_mu keeps the versions in order and
 * every job of a batch alive.  The fields are j->persist (engine_int.h).
 */
#include "engine/engine_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "common/vec.h"
#include "common/yamljson.h"
#include "protocol/exitspec.h"
#include "engine/codec.h"

/* ---------------------------------------------------------------- dirty */

void engine_mark_dirty(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    /* A pending job's records are written by its submission (submit.c),
     * which encodes it after its own pass: a change after that encode is
     * noted and the publication marks the job dirty (engine_sub_settle). */
    if (job->pending) {
        job->redirty = true;
        return;
    }
    /* A compacted job's record is complete in the store; re-encoding it
     * from memory would lose its attempts. */
    if (job->dirty || job->compacted)
        return;
    job->dirty = true;
    VEC_XRESERVE(j->persist.dirty, j->persist.capdirty, j->persist.ndirty + 1);
    j->persist.dirty[j->persist.ndirty++] = job;
}

/* A waiting job does not keep its roles' commands and images in memory
 * (they are in its "jobcmd" record). */
static bool lacks_cmds(const lc_job_t *job)
{
    for (int r = 0; job->roles && r < job->nroles; r++)
        if (!job->roles[r].command)
            return true;
    return false;
}

/* The "jobcmd" record of job `name`, parsed (new reference); NULL and *rc
 * on failure (PAI_E_NOT_FOUND also when the record is unreadable). */
static json_t *read_cmds(engine_t *j, const char *name, pai_err_t *rc)
{
    engine_assert_unlocked(j);
    char *text = NULL;
    *rc = store_get(j->st, "jobcmd", name, &text);
    if (*rc != PAI_OK)
        return NULL;
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    if (!rec)
        *rc = PAI_E_NOT_FOUND;
    return rec;
}

bool engine_load_cmds(engine_t *j, lc_job_t *job)
{
    if (!lacks_cmds(job))
        return true;
    pai_err_t rc;
    json_t *rec = read_cmds(j, job->name, &rc);
    bool ok = rec && codec_cmds_decode(rec, job);
    json_decref(rec);
    return ok;
}

/* ---------------------------------------------------------------- flush */

typedef struct {
    lc_job_t *job;
    uint32_t version;
    bool final;
    bool need_cmds;    /* bound while its commands were in the store only */
    json_t *cmds;      /* its "jobcmd" record, read without mu */
    pai_err_t cmds_rc; /* why cmds is NULL */
    uint32_t ev_was;   /* its events' clean mark before (engine_events_unflushed) */
} flushed_t;

/* One flush: n job records then nn node records (ops has room for the
 * events' too), the jobs' events (events.c), and what to do with each job
 * once the batch is committed. */
typedef struct {
    store_op_t *ops;
    char **texts;
    flushed_t *done;
    size_t n, nn, capops;
    engine_batch_t ev;
    engine_sub_t **subs; /* the submissions this flush writes (nsubs) */
    size_t nsubs;
    uint64_t gen; /* this flush's number (persist.encoded) */
} flush_batch_t;

/* Task attempts move 0 -> 1 when encoded and 1 -> 2 once that record is
 * committed; only durable (2) ones are sent to agents, so an attempt id is
 * never handed out before the store knows it (a crash could otherwise hand
 * the same id to a new attempt, which an agent would refuse to start). */
static void mark_durable(engine_t *j, lc_job_t *job, uint8_t from, uint8_t to)
{
    for (int k = 0; job->atts && k < job->natts; k++)
        for (int r = 0; r < job->nroles; r++)
            for (int i = 0; i < job->roles[r].instances; i++) {
                lc_task_t *t = &job->atts[k].tasks[r][i];
                for (int a = 0; a < t->natts; a++) {
                    lc_task_attempt_t *ta = &t->atts[a];
                    if (ta->durable != from)
                        continue;
                    ta->durable = to;
                    engine_node_t *n = to == 2 && ta->node ? nodes_find(j->nodes, ta->node) : NULL;
                    if (n && !lc_task_state_final(ta->state))
                        nodes_bump(n);
                }
            }
}

/* Has job a task attempt that waits for its record's commit before it is
 * sent (durable 0: created since the last encode)? */
static bool has_new_attempt(const lc_job_t *job)
{
    for (int k = 0; job->atts && k < job->natts; k++)
        for (int r = 0; r < job->nroles; r++)
            for (int i = 0; i < job->roles[r].instances; i++) {
                const lc_task_t *t = &job->atts[k].tasks[r][i];
                for (int a = 0; a < t->natts; a++)
                    if (t->atts[a].durable == 0 && !lc_task_state_final(t->atts[a].state))
                        return true;
            }
    return false;
}

bool engine_flush_wanted(engine_t *j)
{
    engine_assert_locked(j);
    if (j->persist.nwaits > 0 || engine_subs_ready(j) || nodes_dirty_count(j->nodes) > 0)
        return true;
    /* newest first: a pass's placements are the last jobs marked dirty */
    for (size_t i = j->persist.ndirty; i-- > 0;)
        if (has_new_attempt(j->persist.dirty[i]))
            return true;
    return false;
}

void engine_flush_or_retry(engine_t *j)
{
    /* engine_flush() logs the failure and marks the records dirty again */
    if (engine_flush(j) != PAI_OK)
        log_info("engine: the records not persisted are retried at the next tick");
}

/* The tasks of a bound job whose commands are missing from the store fail
 * (they cannot run), as a node loss fails them. */
static void fail_without_cmds(engine_t *j, lc_job_t *job)
{
    int64_t now = engine_now_ms(j);
    log_error("job=%s its commands are missing from the store", job->name);
    for (int r = 0; r < job->nroles; r++)
        for (int i = 0; i < job->roles[r].instances; i++) {
            lc_effects_t fx = {0};
            lc_task_exited(job, r, i, EXIT_CREATION_PERMANENT,
                           "the job's commands could not be read", now, engine_exit_reaction, &fx);
            engine_apply(j, job, &fx, now);
        }
}

/* Give a bound job the commands read for it.  False when the store could
 * not answer: the attempt stays not durable and the next flush tries again. */
static bool attach_cmds(engine_t *j, const flushed_t *f)
{
    if (!lacks_cmds(f->job) || (f->cmds && codec_cmds_decode(f->cmds, f->job)))
        return true;
    if (f->cmds_rc != PAI_OK && f->cmds_rc != PAI_E_NOT_FOUND)
        return false;
    fail_without_cmds(j, f->job);
    return true;
}

/* Has job been placed (by its submission's pass or a later one)? */
static bool placed(const lc_job_t *job)
{
    return job->state != JOB_WAITING || job->atts;
}

/* Step 1b (mu held): the queued submissions whose pass has run, encoded
 * as they are now (placed or not).  One the pass refused is left to its
 * submission (answered 400, nothing stored). */
static void take_subs(engine_t *j, flush_batch_t *b)
{
    b->subs = j->persist.nsubs ? xcalloc(j->persist.nsubs, sizeof(*b->subs)) : NULL;
    for (size_t i = 0; i < j->persist.nsubs;) {
        engine_sub_t *s = j->persist.subs[i];
        if (j->pass.done < s->pass || (s->job->refused && !placed(s->job))) {
            i++;
            continue;
        }
        j->persist.subs[i] = j->persist.subs[--j->persist.nsubs];
        s->state = ENGINE_SUB_TAKEN;
        engine_sub_encode(j, s->job, &s->rec);
        b->subs[b->nsubs++] = s;
    }
    if (b->nsubs && j->persist.group_waiting) /* theirs may be among these */
        pthread_cond_broadcast(&j->persist.coming_cv);
}

/* Step 1 (mu held): encode every dirty job and node. */
static void flush_encode(engine_t *j, flush_batch_t *b)
{
    engine_assert_locked(j);
    b->gen = ++j->persist.encoded;
    j->persist.flush_due = false; /* every job dirty now is in this batch */
    size_t n = j->persist.ndirty, cap = n + nodes_dirty_count(j->nodes) + 1;
    b->ops = xcalloc(cap, sizeof(*b->ops));
    b->capops = cap;
    b->texts = xcalloc(cap, sizeof(char *));
    b->done = xcalloc(n + 1, sizeof(*b->done));
    for (size_t i = 0; i < n; i++) {
        lc_job_t *job = j->persist.dirty[i];
        job->dirty = false;
        b->texts[i] = codec_job_text(job); /* its roles' text kept from the last flush */
        mark_durable(j, job, 0, 1);
        b->ops[i] = (store_op_t){STORE_OP_PUT, "job", job->name, job->seq, b->texts[i]};
        bool final = lc_job_state_final(job->state);
        b->done[i] = (flushed_t){.job = job,
                                 .version = job->version,
                                 .final = final,
                                 .need_cmds = !final && job->atts && lacks_cmds(job),
                                 .ev_was = engine_events_encode(j, job, &b->ev)};
    }
    b->n = n;
    j->persist.ndirty = 0;
    engine_node_t *node;
    while ((node = nodes_next_dirty(j->nodes))) {
        json_t *rec = xjson_pack(
            "{ss ss? si sI ss* sO* ss* so}", "name", node->name, "address", node->address, "cpus",
            node->cpus, "memory_mb", (json_int_t)node->memory_mb, "gpu_model", node->gpu_model,
            "gpus", node->gpus, "log_url", node->log_url, "cred", nodecred_encode(&node->cred));
        size_t at = b->n + b->nn++;
        b->texts[at] = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        b->ops[at] = (store_op_t){STORE_OP_PUT, "node", node->name, 0, b->texts[at]};
    }
    take_subs(j, b);
}

static char *take_text(char **p)
{
    char *t = *p;
    *p = NULL;
    return t;
}

/* Step 3 (mu held): the batch committed (rc PAI_OK) or not. */
static void flush_settle(engine_t *j, flush_batch_t *b, pai_err_t rc)
{
    engine_assert_locked(j);
    for (size_t i = 0; i < b->n; i++) {
        const flushed_t *f = &b->done[i];
        lc_job_t *job = f->job;
        assert(!job->pending); /* never dirty: its submission stores it */
        if (rc != PAI_OK)
            engine_events_unflushed(job, f->ev_was);
        else /* committed: what reads without mu show (snaps.c) */
            engine_snap_put(j, job->name, take_text(&b->texts[i]));
        if (rc != PAI_OK || (f->need_cmds && !attach_cmds(j, f))) {
            engine_mark_dirty(j, job);
            continue;
        }
        mark_durable(j, job, 1, 2);
        /* Finished and unchanged since encoded: its attempts now live in
         * the store only. */
        if (f->final && job->version == f->version && !job->compacted && !job->dirty) {
            lc_job_compact(job);
            job->compacted = true;
            engine_snap_put(j, job->name, NULL); /* its record: in the store */
        }
    }
}

/* Step 3b (mu held): the submissions written, or given back to write
 * themselves (their records as if never encoded). */
static void settle_subs(engine_t *j, flush_batch_t *b, pai_err_t rc)
{
    for (size_t i = 0; i < b->nsubs; i++) {
        engine_sub_t *s = b->subs[i];
        s->rc = rc;
        if (rc == PAI_OK) {
            /* Its task attempts stay "being stored" until its submission
             * publishes it (engine_sub_settle sends them): an agent that got
             * one now could run it and report its end while the job is
             * still pending, a report that is dropped (agentsync.c) and
             * sent again only with the agent's next sync, up to a heartbeat
             * (5 s) later. */
            s->state = ENGINE_SUB_STORED;
        } else {
            engine_sub_settle(j, s->job, &s->rec, rc);
            engine_sub_rec_free(&s->rec);
            s->state = ENGINE_SUB_BACK;
        }
    }
    if (b->nsubs)
        pthread_cond_broadcast(&j->persist.sub_cv);
}

static void flush_batch_free(flush_batch_t *b)
{
    for (size_t i = 0; i < b->n + b->nn; i++)
        free(b->texts[i]);
    for (size_t i = 0; i < b->n; i++)
        json_decref(b->done[i].cmds);
    free(b->texts);
    free(b->ops);
    free(b->done);
    free(b->subs);
    engine_batch_free(&b->ev);
}

/* A flush has ended (mu held): wake the durability waiters it covers. */
static void durable_settle(engine_t *j, uint64_t gen, pai_err_t rc)
{
    engine_assert_locked(j);
    if (rc == PAI_OK && gen > j->persist.durable)
        j->persist.durable = gen; /* a failed flush re-dirties: a later one covers it */
    size_t k = 0;
    for (size_t i = 0; i < j->persist.nwaits; i++) {
        engine_durable_wait_t *w = &j->persist.waits[i];
        if (w->need <= gen)
            w->waker.fn(w->waker.ud, w->waker.ticket);
        else
            j->persist.waits[k++] = *w;
    }
    j->persist.nwaits = k;
}

bool engine_durable_wait(engine_t *j, uint64_t need, const engine_waker_t *w)
{
    engine_assert_locked(j);
    if (j->persist.durable >= need)
        return false;
    VEC_XRESERVE(j->persist.waits, j->persist.capwaits, j->persist.nwaits + 1);
    j->persist.waits[j->persist.nwaits++] = (engine_durable_wait_t){.need = need, .waker = *w};
    pthread_cond_signal(&j->threads.timer_cv); /* flush soon: someone waits */
    return true;
}

void engine_durable_cancel(engine_t *j, uint64_t ticket)
{
    engine_assert_locked(j);
    size_t k = 0;
    for (size_t i = 0; i < j->persist.nwaits; i++)
        if (j->persist.waits[i].waker.ticket != ticket)
            j->persist.waits[k++] = j->persist.waits[i];
    j->persist.nwaits = k;
}

static pai_err_t flush_locked(engine_t *j);

bool engine_flush_try(engine_t *j, pai_err_t *rc)
{
    engine_assert_unlocked(j);
    if (!engine_flush_trylock(j))
        return false;
    *rc = flush_locked(j);
    return true;
}

/* Encode under mu, write without it; flush_mu keeps the versions in order
 * and keeps every job in the batch alive (deletion takes it).
 *
 * Joined flushes: the callers' changes were made under mu, before the
 * call, so the flush numbered encoded + 1 as read here (or any later one)
 * encodes after them: it reads every record dirty then (a failed flush
 * marks its records dirty again before flush_mu is released, so a later
 * success covers it too).  Threads that queue on flush_mu behind a flush
 * in flight (an agent sync batch's worker, the scheduler thread after its
 * pass, the timer) are all covered by the first of them to get it; the
 * others return at once instead of committing again, as a store write
 * joins the group commit of those queued with it (store.c). */
static pai_err_t flush_from(engine_t *j, uint64_t need)
{
    engine_flush_lock(j);
    if (atomic_load(&j->persist.durable) >= need) {
        j->persist.joined++; /* flush_mu held: the flushes' own count */
        engine_flush_unlock(j);
        return PAI_OK;
    }
    return flush_locked(j);
}

pai_err_t engine_flush(engine_t *j)
{
    return flush_from(j, engine_flush_need(j));
}

pai_err_t engine_flush_from(engine_t *j, uint64_t need)
{
    return flush_from(j, need);
}

bool engine_flush_covered(engine_t *j, uint64_t need)
{
    engine_flush_lock(j); /* a flush in flight ends first */
    bool covered = atomic_load(&j->persist.durable) >= need;
    j->persist.joined += covered; /* flush_mu held: the flushes' own count */
    engine_flush_unlock(j);
    return covered;
}

/* A deadline us microseconds from now on CLOCK_MONOTONIC (the clock of
 * pass.done_cv and persist.coming_cv). */
static struct timespec after_us(int64_t us)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(us / 1000000);
    t.tv_nsec += (long)(us % 1000000) * 1000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* How long a flush waits for the pass its caller asked for (microseconds):
 * about one scheduling pass over a queue of thousands, with the scheduler
 * thread's pause before it. */
#define PASS_GATHER_US 2000

uint64_t engine_flush_need(const engine_t *j)
{
    return atomic_load(&j->persist.encoded) + 1;
}

pai_err_t engine_flush_after_pass(engine_t *j, uint64_t need)
{
    /* the caller's changes are older than the wait: the flush after the
     * pass (the scheduler thread's, most often) covers them */
    engine_lock(j);
    if (j->pass.need && j->threads.sched_started && !j->threads.stopping) {
        /* mu held: no pass runs now, so the next one to end starts after
         * the caller's change */
        uint64_t want = j->pass.done + 1;
        struct timespec until =
            after_us(j->persist.pass_gather_us ? j->persist.pass_gather_us : PASS_GATHER_US);
        while (j->pass.done < want && !j->threads.stopping)
            if (pthread_cond_timedwait(&j->pass.done_cv, &j->mu, &until) == ETIMEDOUT)
                break;
        if (j->pass.done >= want)
            j->persist.after_pass++;
    }
    engine_unlock(j);
    return flush_from(j, need);
}

/* Append the writes of submission s to (*ops, n): its job record (an
 * INSERT: a record of that name already there fails the batch), config,
 * commands, SSH keys and events.  Returns the new count. */
static size_t sub_ops(const engine_sub_t *s, store_op_t **ops, size_t *cap, size_t n)
{
    const char *name = s->job->name;
    int64_t seq = s->job->seq;
    VEC_XRESERVE(*ops, *cap, n + 4 + s->rec.ev.n);
    (*ops)[n++] = (store_op_t){STORE_OP_INSERT, "job", name, seq, s->rec.text};
    (*ops)[n++] = (store_op_t){STORE_OP_INSERT, "jobcfg", name, seq, s->cfg};
    (*ops)[n++] = (store_op_t){STORE_OP_PUT, "jobcmd", name, seq, s->cmds};
    if (s->ssh)
        (*ops)[n++] = (store_op_t){STORE_OP_PUT, "jobssh", name, seq, s->ssh};
    for (size_t i = 0; i < s->rec.ev.n; i++)
        (*ops)[n++] = s->rec.ev.ops[i];
    return n;
}

/* How long a flush about to encode waits for submissions still coming
 * (microseconds): about one submission's parse and render. */
#define GATHER_US 1000

void engine_sub_arrived(engine_t *j)
{
    engine_assert_locked(j);
    if (atomic_fetch_sub(&j->persist.coming, 1) == 1)
        pthread_cond_broadcast(&j->persist.coming_cv);
}

/* Step 0 (mu held, flush_mu held): with a long queue a submission is
 * stored by the next flush after it queues; one that is being parsed now
 * would queue just after this flush encodes and wait for a commit of its
 * own.  So wait for the coming ones a bounded moment (mu released
 * meanwhile: they reserve under it), and store them with this one.  With
 * a short queue a submission waits for its pass first: no wait. */
static void gather(engine_t *j)
{
    if (atomic_load(&j->persist.coming) <= 0 || j->threads.stopping || !j->threads.sched_started ||
        engine_queue_short(j))
        return;
    struct timespec until = after_us(j->persist.gather_us ? j->persist.gather_us : GATHER_US);
    j->persist.gathered++;
    while (atomic_load(&j->persist.coming) > 0 && !j->threads.stopping)
        if (pthread_cond_timedwait(&j->persist.coming_cv, &j->mu, &until) == ETIMEDOUT)
            break;
}

/* ---------------------------------------------------------------- group delay */

/* The group delay's bound (microseconds): at most this, and at most as
 * long as the last submissions' commit took (persist.group_delay_us, set
 * by tests, replaces both). */
#define GROUP_DELAY_US 1000
/* Submissions count as coming back to back only this soon after the last
 * flush that stored some ended (microseconds; a longer group_delay_us, a
 * test's, widens it). */
#define GROUP_WINDOW_US 5000

/* Has a flush taken one of mine (it commits them: no reason to wait)? */
static bool any_taken(engine_sub_t *const *mine, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mine[i]->state != ENGINE_SUB_QUEUED)
            return true;
    return false;
}

/* Did a flush store submissions just before now? */
static bool streaming(const engine_t *j, int64_t now)
{
    int64_t window =
        j->persist.group_delay_us > GROUP_WINDOW_US ? j->persist.group_delay_us : GROUP_WINDOW_US;
    return j->persist.width > 1 && now - j->persist.last_subs_end_us <= window;
}

/* Submissions not stored yet (mu held): being parsed, or queued. */
static size_t unstored(const engine_t *j)
{
    int coming = atomic_load(&j->persist.coming);
    size_t n = coming > 0 ? (size_t)coming : 0;
    for (size_t i = 0; i < j->persist.nsubs; i++)
        n += j->persist.subs[i]->state == ENGINE_SUB_QUEUED;
    return n;
}

uint64_t engine_sub_need(engine_t *j, engine_sub_t *const *mine, size_t n)
{
    engine_assert_locked(j);
    /* queued: the next flush to encode takes them; taken: the last one
     * encoded took them, or one before it that has ended */
    return atomic_load(&j->persist.encoded) + !any_taken(mine, n);
}

void engine_sub_pending(engine_t *j, int n)
{
    int now = atomic_fetch_add(&j->persist.pending, n) + n, peak = atomic_load(&j->persist.peak);
    while (now > peak && !atomic_compare_exchange_weak(&j->persist.peak, &peak, now))
        ;
}

/* A closed loop of clients (each sends its next submission once the last
 * is answered, as the bench's 4 do) makes groups that alternate: those
 * answered by one commit come back while the next commits and go into the
 * one after, so with k clients a commit holds ~k/2 (1.9 with 4, measured).
 * The width: the most submissions pending at once (from their arrival to
 * their answer) while the last flush that stored some was being made,
 * that many or more by that flush.  A batch that finds fewer submissions
 * unstored than that waits for the others, a bounded moment, as
 * PostgreSQL's commit_delay does when commit_siblings others are active:
 * the next commit holds all k.  A lone submission (no flush of submissions
 * ended within GROUP_WINDOW_US) and a client that submits one job after
 * the other (a width of 1) do not wait.  The wait ends when as many are
 * unstored (parsed and queued) as the width, when another flush takes one
 * of mine, at the bound, or at the engine's stop. */
bool engine_sub_group_wait(engine_t *j, engine_sub_t *const *mine, size_t n)
{
    engine_assert_locked(j);
    int64_t bound = j->persist.group_delay_us, now = time_mono_us();
    if (bound < 0 || n == 0 || j->threads.stopping || !streaming(j, now) ||
        unstored(j) >= j->persist.width)
        return false;
    if (bound == 0) /* a fraction of a commit's cost at most: no longer than one took */
        bound = j->persist.last_subs_commit_us < GROUP_DELAY_US ? j->persist.last_subs_commit_us
                                                                : GROUP_DELAY_US;
    j->persist.group_waits++;
    j->persist.group_waiting++;
    if (j->ops.submit_waits) { /* the next batch of submissions may come in meanwhile */
        engine_unlock(j);
        j->ops.submit_waits(j->ops.ud);
        engine_lock(j);
    }
    int64_t left = bound - (time_mono_us() - now);
    struct timespec until = after_us(left > 0 ? left : 0);
    while (!j->threads.stopping && !any_taken(mine, n) && unstored(j) < j->persist.width)
        if (pthread_cond_timedwait(&j->persist.coming_cv, &j->mu, &until) == ETIMEDOUT)
            break;
    j->persist.group_waiting--;
    return true;
}

/* ---------------------------------------------------------------- the syncs' group delay */

/* A burst's drain: each agent sync that reports exits frees GPUs, its pass
 * places queued jobs on them, and those placements must be stored before
 * they are sent, so each such sync led a commit of its own (~0.45 a job,
 * the syncs ~2 ms apart, a commit shorter).  A batch that finds sync-led
 * flushes streaming waits for the next one instead, at most
 * SYNC_DELAY_US: one commit then stores both (each still answered only
 * after the commit that holds its changes).  A lone sync (no sync-led flush
 * ended within SYNC_WINDOW_US: a quiet cluster, a steady load whose syncs
 * store nothing) never waits. */
#define SYNC_DELAY_US  2000
#define SYNC_WINDOW_US 5000

void engine_sync_flushed(engine_t *j)
{
    atomic_store(&j->persist.last_sync_end_us, time_mono_us());
}

void engine_sync_group_wait(engine_t *j, uint64_t need)
{
    int64_t bound = j->persist.sync_delay_us ? j->persist.sync_delay_us : SYNC_DELAY_US;
    int64_t last = atomic_load(&j->persist.last_sync_end_us), now = time_mono_us();
    int64_t window = bound > SYNC_WINDOW_US ? bound : SYNC_WINDOW_US;
    if (bound < 0)
        return;
    engine_lock(j);
    if (j->persist.sync_waiting) { /* the one waiting commits for both */
        j->persist.sync_arrived++;
        pthread_cond_broadcast(&j->persist.sync_cv);
    } else if (last && now - last <= window && !j->threads.stopping &&
               atomic_load(&j->persist.durable) < need) {
        uint64_t seen = j->persist.sync_arrived;
        j->persist.sync_waiting = true;
        j->persist.sync_waits++;
        struct timespec until = after_us(bound);
        while (!j->threads.stopping && j->persist.sync_arrived == seen &&
               atomic_load(&j->persist.durable) < need)
            if (pthread_cond_timedwait(&j->persist.sync_cv, &j->mu, &until) == ETIMEDOUT)
                break;
        j->persist.sync_waiting = false;
    }
    engine_unlock(j);
}

/* engine_flush with flush_mu taken; releases it. */
static pai_err_t flush_locked(engine_t *j)
{
    flush_batch_t b = {0};
    engine_lock(j);
    gather(j);
    flush_encode(j, &b);
    engine_unlock(j);
    /* Step 2: the commands of newly bound jobs, then one commit. */
    for (size_t i = 0; i < b.n; i++)
        if (b.done[i].need_cmds)
            b.done[i].cmds = read_cmds(j, b.ops[i].key, &b.done[i].cmds_rc);
    pai_err_t rc = PAI_OK;
    size_t nops = b.n + b.nn + b.ev.n;
    if (b.ev.n) { /* b.ev.ops is NULL when there is none: memcpy(.., NULL, 0) is UB */
        VEC_XRESERVE(b.ops, b.capops, nops);
        memcpy(b.ops + b.n + b.nn, b.ev.ops, b.ev.n * sizeof(*b.ops));
    }
    for (size_t i = 0; i < b.nsubs; i++)
        nops = sub_ops(b.subs[i], &b.ops, &b.capops, nops);
    int64_t t0 = time_mono_us();
    if (nops > 0) {
        engine_assert_unlocked(j);
        rc = store_batch(j->st, b.ops, nops);
    }
    int64_t t1 = time_mono_us();
    if (rc != PAI_OK)
        log_error("persisting %zu job records failed: %s", b.n, pai_err_msg(rc));
    engine_lock(j);
    j->persist.commits += nops > 0 && rc == PAI_OK;
    flush_settle(j, &b, rc);
    settle_subs(j, &b, rc);
    if (b.nsubs && rc == PAI_OK) { /* the group delay's reference */
        size_t peak = (size_t)atomic_exchange(&j->persist.peak, atomic_load(&j->persist.pending));
        j->persist.width = peak > b.nsubs ? peak : b.nsubs;
        j->persist.last_subs_end_us = t1;
        j->persist.last_subs_commit_us = t1 - t0;
    }
    durable_settle(j, b.gen, rc);
    if (j->persist.sync_waiting) /* a sync batch may be covered now */
        pthread_cond_broadcast(&j->persist.sync_cv);
    engine_unlock(j);
    engine_flush_unlock(j);
    flush_batch_free(&b);
    return rc;
}

/* ---------------------------------------------------------------- a submission's write */

void engine_sub_encode(engine_t *j, lc_job_t *job, engine_sub_rec_t *s)
{
    engine_assert_locked(j);
    assert(job->pending);
    job->redirty = false; /* everything changed so far is in this record */
    s->text = codec_job_text(job);
    s->ev_was = engine_events_encode(j, job, &s->ev);
    mark_durable(j, job, 0, 1);
}

void engine_sub_settle(engine_t *j, lc_job_t *job, engine_sub_rec_t *s, pai_err_t rc)
{
    engine_assert_locked(j);
    if (rc != PAI_OK) {
        engine_events_unflushed(job, s->ev_was);
        mark_durable(j, job, 1, 0);
        return;
    }
    assert(!job->pending);      /* published first: engine_mark_dirty below */
    mark_durable(j, job, 1, 2); /* its tasks may go to their agents now */
    if (job->redirty || job->ev_clean != job->ev_next) {
        /* changed since encoded (a later pass, a node lost): dirty now that
         * its record is stored; the timer flushes unless a flush is due */
        job->redirty = false;
        engine_mark_dirty(j, job);
        if (!j->persist.flush_due)
            pthread_cond_signal(&j->threads.timer_cv);
    }
}

void engine_sub_rec_free(engine_sub_rec_t *s)
{
    free(s->text);
    engine_batch_free(&s->ev);
    memset(s, 0, sizeof(*s));
}

void engine_sub_queue(engine_t *j, engine_sub_t *s, bool now)
{
    engine_assert_locked(j);
    s->state = ENGINE_SUB_QUEUED;
    s->pass = now ? 0 : j->pass.done + 1;
    s->own_flush = now; /* a long queue: stored_by_flush (submit.c) */
    VEC_XRESERVE(j->persist.subs, j->persist.capsubs, j->persist.nsubs + 1);
    j->persist.subs[j->persist.nsubs++] = s;
}

void engine_sub_unqueue(engine_t *j, engine_sub_t *s)
{
    engine_assert_locked(j);
    for (size_t i = 0; i < j->persist.nsubs; i++)
        if (j->persist.subs[i] == s) {
            j->persist.subs[i] = j->persist.subs[--j->persist.nsubs];
            return;
        }
}

bool engine_subs_ready(const engine_t *j)
{
    engine_assert_locked(j);
    for (size_t i = 0; i < j->persist.nsubs; i++)
        if (!j->persist.subs[i]->own_flush && j->pass.done >= j->persist.subs[i]->pass)
            return true;
    return false;
}
