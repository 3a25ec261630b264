/*
 * waiters.h - suspended HTTP connections waiting for an event or a deadline
 * (the held agent long-polls), resumed by one thread.
 *
 * A handler that has to wait (http_reply_hold) does not keep a thread: the
 * HTTP layer suspends its connection (MHD_suspend_connection) and adds it
 * here with a deadline; it gets a ticket.  Whoever can answer it earlier
 * (the engine, when the node's desired set changes) calls waiters_wake
 * with that ticket.  The waiter thread resumes (MHD_resume_connection) each
 * connection once: when it is woken or its deadline passes, whichever comes
 * first; libmicrohttpd then calls the request handler again on a pool
 * thread, which answers.
 *
 * Locking: one mutex, taken by waiters_add, waiters_wake and the thread
 * only; none of them calls out while holding it.  waiters_wake never calls
 * into libmicrohttpd, so it may be called under any other lock (the engine
 * calls it under its own): the lock order is "any lock, then waiters".  The
 * thread resumes connections after it has released the mutex.
 *
 * Tickets: a ticket names one wait; a stale ticket (its connection already
 * resumed) is ignored, so a wake that races with the deadline is harmless.
 * Each suspended connection is resumed exactly once, and stays open until
 * then (libmicrohttpd never closes a suspended connection).
 */
#ifndef PAI_SERVER_WAITERS_H
#define PAI_SERVER_WAITERS_H

#include <stdint.h>

#include "common/err.h"

struct MHD_Connection;
typedef struct waiters waiters_t;

/* Start the waiter thread.  PAI_E_IO when it cannot be started. */
PAI_MUST_CHECK pai_err_t waiters_new(waiters_t **out);
/* Hold conn (suspended by the caller) until woken or deadline_ms
 * (time_mono_ms).  Returns its ticket (never 0), or 0 once waiters_stop has
 * run: then the caller resumes conn itself. */
uint64_t waiters_add(waiters_t *w, struct MHD_Connection *conn, int64_t deadline_ms);
/* Resume the connection of ticket soon (w is a waiters_t; a void pointer,
 * as a callback's user data).  Any thread, under any lock. */
void waiters_wake(void *w, uint64_t ticket);
/* Connections held now (for /metrics and tests). */
uint64_t waiters_count(waiters_t *w);
/* Resume every held connection, refuse new ones, end the thread.  Before
 * MHD_stop_daemon, which refuses to stop with suspended connections. */
void waiters_stop(waiters_t *w);
/* waiters_stop, then free (NULL: nothing). */
void waiters_free(waiters_t *w);

#endif
