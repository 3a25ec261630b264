/*
 * waiters.h - held HTTP answers waiting for an event or a deadline (the
 * held agent long-polls), each handed on once when it is due.
 *
 * A handler that has to wait (http_reply_hold) does not keep a thread: the
 * HTTP layer suspends its connection (MHD_suspend_connection) and adds it
 * here with a deadline and a due function; it gets a ticket.  Whoever can
 * answer it earlier (the engine, when the node's desired set changes)
 * calls waiters_wake with that ticket, which calls the due function at
 * once, on its own thread; at the deadline the waiter thread calls it.
 * Whichever comes first: each entry's due function runs exactly once.
 * The HTTP layer's due function queues the answer's finish on a write
 * worker (offload.h), which makes the answer and resumes the connection:
 * an event costs one hand-off to a worker, not one to the waiter thread,
 * one to a pool thread (resumed only to queue the finish) and one to the
 * worker.
 *
 * Locking: one mutex, taken by waiters_add, waiters_wake and the thread
 * only; none of them calls out while holding it.  The due function runs
 * without it, under whatever locks waiters_wake's caller holds (the engine
 * calls it under its own): so it may take only leaf locks (offload.h's
 * queue lock) and never call into libmicrohttpd or wait; the lock order
 * is "any lock, then waiters", "any lock, then the due function's".
 *
 * Tickets: a ticket names one wait; a stale ticket (its entry already due)
 * is ignored, so a wake that races with the deadline is harmless.  The
 * connection stays suspended, and open, until the due function's work
 * resumes it (libmicrohttpd never closes a suspended connection).
 */
#ifndef PAI_SERVER_WAITERS_H
#define PAI_SERVER_WAITERS_H

#include <stdint.h>

#include "common/err.h"

typedef struct waiters waiters_t;
/* An entry is due: queue what answers it (see Locking above). */
typedef void (*waiters_due_fn)(void *ud);

/* Start the waiter thread.  PAI_E_IO when it cannot be started. */
PAI_MUST_CHECK pai_err_t waiters_new(waiters_t **out);
/* Hold an entry until woken or deadline_ms (time_mono_ms), then call
 * due(ud) once.  Returns its ticket (never 0), or 0 once waiters_stop has
 * run: then due is never called (the caller answers itself). */
uint64_t waiters_add(waiters_t *w, int64_t deadline_ms, waiters_due_fn due, void *ud);
/* Make the entry of ticket due now: its due function runs on this thread
 * before this returns (w is a waiters_t; a void pointer, as a callback's
 * user data).  Any thread, under any lock the due function allows. */
void waiters_wake(void *w, uint64_t ticket);
/* Entries held now (for /metrics and tests). */
uint64_t waiters_count(waiters_t *w);
/* Make every entry due (on the waiter thread), refuse new ones, end the
 * thread.  Before the write workers stop (their queue takes the due
 * answers) and before MHD_stop_daemon, which refuses to stop with
 * suspended connections. */
void waiters_stop(waiters_t *w);
/* waiters_stop, then free (NULL: nothing). */
void waiters_free(waiters_t *w);

#endif
