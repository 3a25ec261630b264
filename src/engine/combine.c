/*
 * combine.c - critical sections run in batches under one acquisition of
 * the engine lock (a combining lock, as in "flat combining"): agent syncs.
 *
 * At 10,000 nodes thousands of agent syncs a second each took mu for a
 * few microseconds of work; with 30 threads queued on it, handing mu from
 * thread to thread on a busy machine (a wake-up and a context switch each)
 * cost far more than the work.  Here a thread queues its section (an op)
 * and, when no batch runs, becomes the combiner: it takes mu, then every op
 * queued by then (at most COMBINE_MAX, then again while more are queued,
 * up to COMBINE_HOLD under one hold of mu), runs them under that lock,
 * each op's apply in queue order and then each op's after (so that work
 * one op's after does once, a scheduling pass, covers the whole batch),
 * marks them done and wakes their threads, each by its own condition
 * variable (one wake-up per op, none for the threads still queued), then
 * wakes the thread of the oldest op queued meanwhile, which runs the next
 * batch.  The others wait on their op's condition variable, not on mu.  What an op does, and when
 * its thread answers, is as if it had taken mu itself: its thread resumes only after its op ran,
 * and does its store I/O after that, without mu.
 *
 * Locking: combine.mu is a leaf lock (guards the queue, the running flag
 * and each op's done): the combiner takes it under mu, and nobody takes mu
 * while holding it; no thread holding mu queues an op (asserted).
 */
#include "common/promtext.h"
#include "engine/engine_int.h"

/* Ops one batch takes at most, and ops run under one hold of mu at most
 * (several batches): bound how long the other users of mu wait. */
#define COMBINE_MAX  64
#define COMBINE_HOLD 256

void engine_combine_init(engine_t *j)
{
    pthread_mutex_init(&j->combine.mu, NULL);
}

void engine_combine_free(engine_t *j)
{
    pthread_mutex_destroy(&j->combine.mu);
}

/* Run ops under mu: every apply in order, then every after. */
static void run_ops(engine_t *j, engine_combine_op_t *const *ops, size_t n)
{
    engine_assert_locked(j);
    for (size_t i = 0; i < n; i++)
        ops[i]->apply(j, ops[i]);
    for (size_t i = 0; i < n; i++)
        if (ops[i]->after)
            ops[i]->after(j, ops[i]);
    j->combine.batches++;
    j->combine.ops += n;
}

void engine_combine_batch(engine_t *j, engine_combine_op_t *const *ops, size_t n)
{
    engine_assert_unlocked(j);
    if (n == 0)
        return;
    engine_lock(j);
    engine_kicks_hold(j); /* the ops' kicks: the scheduler woken once mu is free */
    run_ops(j, ops, n);
    bool kick = engine_kicks_release(j);
    engine_unlock(j);
    if (kick)
        engine_wake_pass(j);
}

/* Up to most queued ops into batch (combine.mu held); how many. */
static size_t take(engine_t *j, engine_combine_op_t **batch, size_t most)
{
    size_t n = 0;
    while (j->combine.head && n < most) {
        batch[n++] = j->combine.head;
        j->combine.head = j->combine.head->next;
    }
    if (!j->combine.head)
        j->combine.tail = NULL;
    return n;
}

/* Mark a batch done and wake each op's thread once (combine.mu held). */
static void finish(engine_combine_op_t *const *batch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        batch[i]->done = true; /* its thread may return (and free it) once we unlock */
        pthread_cond_signal(&batch[i]->cv);
    }
}

/* As the combiner (combine.mu held on entry and on return): take mu
 * first, so that the ops queued while it waits for it join the batch,
 * then run batches of what is queued until none is or COMBINE_HOLD ops
 * have run under this hold of mu. */
static void combine_run(engine_t *j)
{
    engine_combine_op_t *batch[COMBINE_MAX];
    j->combine.running = true;
    pthread_mutex_unlock(&j->combine.mu);
    engine_lock(j);
    engine_kicks_hold(j);               /* the ops' kicks: the scheduler woken once mu is free */
    pthread_mutex_lock(&j->combine.mu); /* a leaf: under mu, never mu under it */
    size_t n, total = 0;
    while (total < COMBINE_HOLD && (n = take(j, batch, COMBINE_MAX)) > 0) {
        pthread_mutex_unlock(&j->combine.mu);
        run_ops(j, batch, n);
        total += n;
        pthread_mutex_lock(&j->combine.mu);
        finish(batch, n);
    }
    pthread_mutex_unlock(&j->combine.mu);
    bool kick = engine_kicks_release(j);
    engine_unlock(j);
    if (kick)
        engine_wake_pass(j);
    pthread_mutex_lock(&j->combine.mu);
    j->combine.running = false;
    if (j->combine.head) /* queued meanwhile: the oldest's thread runs the next batch */
        pthread_cond_signal(&j->combine.head->cv);
}

void engine_combine(engine_t *j, engine_combine_op_t *op)
{
    engine_assert_unlocked(j);
    op->next = NULL;
    op->done = false;
    pthread_cond_init(&op->cv, NULL);
    pthread_mutex_lock(&j->combine.mu);
    if (j->combine.tail)
        j->combine.tail->next = op;
    else
        j->combine.head = op;
    j->combine.tail = op;
    while (!op->done) {
        if (!j->combine.running)
            combine_run(j); /* this op is in it, or in a later one this thread runs */
        else
            pthread_cond_wait(&op->cv, &j->combine.mu);
    }
    pthread_mutex_unlock(&j->combine.mu);
    pthread_cond_destroy(&op->cv);
}

void engine_combine_metrics(engine_t *j, buf_t *out)
{
    engine_assert_locked(j);
    prom_counter(out, "pai_agent_sync_batches_total",
                 "Batches of agent syncs (and resumed polls) run under one engine lock.",
                 (double)j->combine.batches);
    prom_counter(out, "pai_agent_sync_batched_total",
                 "Agent syncs' critical sections run in those batches.", (double)j->combine.ops);
    prom_family(out, "pai_agent_sync_node_total", "counter",
                "Agent syncs of protocol version 4 by their node: described whole (with its "
                "digest), named by the digest the server holds, or by one it does not hold "
                "(answered at once, asking for it whole).");
    prom_sample(out, "pai_agent_sync_node_total", "form=\"whole\"", (double)j->combine.node_whole);
    prom_sample(out, "pai_agent_sync_node_total", "form=\"same\"", (double)j->combine.node_same);
    prom_sample(out, "pai_agent_sync_node_total", "form=\"unknown\"",
                (double)j->combine.node_unknown);
    prom_family(out, "pai_agent_sync_exits_total", "counter",
                "Agent syncs that reported exits, by the commit that stores them: the sync's "
                "own (its answer waits for it), or a later one (protocol version 6: the "
                "acks go in a later answer).");
    prom_sample(out, "pai_agent_sync_exits_total", "commit=\"own\"", (double)j->combine.exits_own);
    prom_sample(out, "pai_agent_sync_exits_total", "commit=\"later\"",
                (double)j->combine.exits_later);
    prom_counter(out, "pai_agent_sync_acks_later_total",
                 "Exits an answer did not ack yet because no commit held them (protocol version "
                 "6; acked in a later answer).",
                 (double)j->combine.acks_later);
}
