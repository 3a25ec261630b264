/*
 * offload.h - a bounded set of worker threads for the HTTP layer's work that
 * may block for long (a task log read from the agent: connecting, waiting
 * for its headers, waiting for its next bytes; the handlers of requests
 * that change state, waiting for the store's commit or the engine lock).
 *
 * The pool threads of libmicrohttpd each serve many connections, so none of
 * them may block on a remote peer; such work is queued here and its
 * connection suspended until the work is done (http.c).  The number of
 * threads is fixed at creation: more concurrent work waits in the queue,
 * it never adds threads.
 *
 * Classes: work is queued in one of nclasses FIFOs (the write workers: user
 * requests and agent syncs), so that thousands of queued items of one class
 * never delay another's.  Fairness, both ways: a free worker takes the
 * oldest item of the next class in turn that has one (round robin over the
 * classes with work), and a class runs on at most most[c] workers at once,
 * so the others always find a worker within one item's run.  The queues
 * themselves are bounded by their callers (one item per suspended
 * connection: max_connections).
 *
 * Batches: work queued with offload_run_batch_in is run in batches: a
 * worker that takes such an item takes with it every item of the same
 * class queued with the same batch function at that moment (at most
 * OFFLOAD_BATCH_MAX, oldest first) and runs them with one call, so that
 * what each would do alone under a lock (an agent sync under the engine
 * lock, its commit) is done once for all of them.  A batch counts as one
 * worker of its class; each of its items stays pending until it returns.
 *
 * Locking: one mutex around the queues; work runs without it, and may take
 * any lock except that of the queues.
 */
#ifndef PAI_SERVER_OFFLOAD_H
#define PAI_SERVER_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define OFFLOAD_MAX_CLASSES 4
#define OFFLOAD_BATCH_MAX   64 /* items one batch takes at most */

typedef struct offload offload_t;
typedef void (*offload_fn)(void *ud);
/* A batch: the uds of n (1..OFFLOAD_BATCH_MAX) items, oldest first; the
 * array is the worker's (valid during the call). */
typedef void (*offload_batch_fn)(void **uds, size_t n);

/* Start nthreads (>= 1) workers serving one class, each thread named name
 * (at most 15 characters: top -H, /proc/PID/task/TID/comm).  PAI_E_IO when
 * none can be started. */
PAI_MUST_CHECK pai_err_t offload_new(const char *name, unsigned nthreads, offload_t **out);
/* Start nthreads (>= 1) workers serving nclasses (1..OFFLOAD_MAX_CLASSES)
 * queues; class c runs on at most most[c] workers at once (0, or more than
 * nthreads: all of them). */
PAI_MUST_CHECK pai_err_t offload_new_classes(const char *name, unsigned nthreads, unsigned nclasses,
                                             const unsigned *most, offload_t **out);
/* Queue fn(ud) to run on a worker, in class 0.  After offload_stop has
 * begun, fn runs on the caller's thread instead. */
void offload_run(offload_t *o, offload_fn fn, void *ud);
/* The same, in class cls (< nclasses). */
void offload_run_in(offload_t *o, unsigned cls, offload_fn fn, void *ud);
/* Queue ud in class cls to run in a batch with the items of that class
 * queued with the same fn (see "Batches" above).  After offload_stop has
 * begun, fn(&ud, 1) runs on the caller's thread instead. */
void offload_run_batch_in(offload_t *o, unsigned cls, offload_batch_fn fn, void *ud);
/* Class cls's batches run serially when work keeps coming: an item queued
 * while a batch of cls runs wakes no worker; the batch's worker, when it
 * ends, takes what was queued meanwhile as its next batch (no sleep, no
 * wake-up), so items that each wait for a commit meet in one batch and
 * one commit.  Other workers still take such items when they look for
 * work (at their bound, or when they end theirs). */
void offload_serial_batches(offload_t *o, unsigned cls);
/* Called by a batch function on its worker once its items' work is done,
 * before it answers them: the batch no longer counts as running for its
 * class's serial rule, and the items queued meanwhile wake a free worker
 * at once.  Elsewhere (not in a batch, or called again): nothing. */
void offload_batch_answered(void);
/* Work queued or running now, all classes (for /metrics and tests). */
uint64_t offload_pending(offload_t *o);
/* Work of class cls queued or running now. */
uint64_t offload_pending_in(offload_t *o, unsigned cls);
/* Run what is queued and end the workers; later work runs on its caller's
 * thread. */
void offload_stop(offload_t *o);
/* offload_stop, then free o (NULL: nothing). */
void offload_free(offload_t *o);

#endif
