/*
 * offload.h - a bounded set of worker threads for the HTTP layer's work that
 * may block for long (a task log read from the agent: connecting, waiting
 * for its headers, waiting for its next bytes).
 *
 * The pool threads of libmicrohttpd each serve many connections, so none of
 * them may block on a remote peer; such work is queued here (FIFO) and its
 * connection suspended until the work is done (http.c).  The number of
 * threads is fixed at creation: more concurrent work waits in the queue,
 * it never adds threads.
 *
 * Locking: one mutex around the queue; work runs without it, and may take
 * any lock except that of the queue.
 */
#ifndef PAI_SERVER_OFFLOAD_H
#define PAI_SERVER_OFFLOAD_H

#include <stdint.h>

#include "common/err.h"

typedef struct offload offload_t;
typedef void (*offload_fn)(void *ud);

/* Start nthreads (>= 1) workers.  PAI_E_IO when none can be started. */
PAI_MUST_CHECK pai_err_t offload_new(unsigned nthreads, offload_t **out);
/* Queue fn(ud) to run on a worker.  After offload_stop has begun, fn runs
 * on the caller's thread instead. */
void offload_run(offload_t *o, offload_fn fn, void *ud);
/* Work queued or running now (for /metrics and tests). */
uint64_t offload_pending(offload_t *o);
/* Run what is queued and end the workers; later work runs on its caller's
 * thread. */
void offload_stop(offload_t *o);
/* offload_stop, then free o (NULL: nothing). */
void offload_free(offload_t *o);

#endif
