/*
 * connlimit.h - admission of TCP connections under hostile load, shared by
 * the server's REST listener and the agent's log server.
 *
 * A connection is IDLE while it has no complete request (just accepted,
 * headers or body still arriving, between keep-alive requests) and BUSY
 * while the owner marks it so (the server: from a request read whole until
 * its answer is sent; the agent's log server: while a log streams).  An idle
 * connection whose client has sent bytes the owner has not read yet is
 * TALKING: the owner is the slow one, and it is not evicted either.
 * The OLDEST idle connection is the one idle the longest: since it was
 * accepted, or since the answer to its last request was sent.
 * Admission of a new connection from address A:
 *   1. A already holds `per_addr` idle connections: A's oldest idle one that
 *      is not talking is evicted (none: A goes over the bound; per_addr 0:
 *      no per-address bound);
 *   2. `max_total` connections are live: the oldest idle connection of any
 *      address that is not talking is evicted; when there is none, the new
 *      one is refused (the only refusal).
 * Eviction shuts the socket's reading side down (shutdown(2), SHUT_RD); the
 * thread or loop that owns it sees end-of-file and closes it as if the
 * client had left.  A request that raced the eviction (the owner read it
 * after all) is refused by connlimit_busy() and can still be answered: the
 * writing side stays open, so no request is handled and then reset.  So a flood
 * of idle or slow (slowloris) connections from one address never holds more
 * than per_addr of them, and a client that sends its request at once -- an
 * agent reconnecting after a restart, from any address, the flooder's
 * included -- always gets in: once its request is sent it is talking, then
 * busy, and silent connections go first, the oldest first.
 *
 * Life cycle, all from the owner's accept path and connection threads:
 *   connlimit_admit() at accept, before the connection is set up;
 *   connlimit_open() once it is (the fd may then be shut down at any time);
 *   connlimit_busy() around each handler run;
 *   connlimit_close() before the fd is closed (after that it is never
 *   touched).  Thread-safe (one mutex).  Cost: busy connections are never
 *   looked at.  An admission or a rekey asks idle connections, in eviction
 *   order, whether they are talking until one is not: the talking ones
 *   ahead of the victim plus the victim, one when none talks (`examined`
 *   in the stats); a rekey of an idle connection also passes its new
 *   address's idle ones that became idle after it.  Every other call is
 *   O(1).
 */
#ifndef PAI_COMMON_CONNLIMIT_H
#define PAI_COMMON_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct connlimit connlimit_t;
typedef struct connlimit_conn connlimit_conn_t;

typedef struct {
    uint64_t live;     /* open and not evicted */
    uint64_t busy;     /* of which in a handler */
    uint64_t evicted;  /* since creation */
    uint64_t refused;  /* since creation: every live connection was busy */
    uint64_t examined; /* since creation: idle connections asked whether they
                        * were talking, by admissions and rekeys */
} connlimit_stats_t;

/* max_total >= 1; per_addr 0 = no per-address bound.  Never NULL. */
connlimit_t *connlimit_new(unsigned max_total, unsigned per_addr);
/* Free cl; every connection must have been closed. */
void connlimit_free(connlimit_t *cl);

/* May a connection from sa come in?  Evicts as described above; false only
 * when max_total connections are live and all busy or talking. */
bool connlimit_admit(connlimit_t *cl, const struct sockaddr *sa);
/* Register an admitted connection (idle).  NULL only for an address family
 * other than IPv4/IPv6 (such a connection is then not tracked). */
connlimit_conn_t *connlimit_open(connlimit_t *cl, const struct sockaddr *sa, int fd);
/* Count c against the address addr (numeric IPv4 or IPv6 text) from now
 * on instead of its peer's: the client a trusted forwarder (a standby of
 * the cluster, server/standby.h) vouches for.  Step 1 of admission runs
 * for addr as for a new connection from there (its oldest idle one that is
 * not talking is evicted when it holds per_addr; never c).  An IPv4
 * address mapped into IPv6 counts as the IPv4 address, here and at
 * admission.  False when addr is not a numeric address or c is NULL (c
 * unchanged). */
bool connlimit_rekey(connlimit_t *cl, connlimit_conn_t *c, const char *addr);
/* Mark c busy (a handler runs for it) or idle again.  c may be NULL.
 * Marking busy a connection already evicted fails (false, c unchanged):
 * the owner has read a request that arrived as c was evicted, and must not
 * run it but answer it (e.g. 503, Connection: close) and close. */
bool connlimit_busy(connlimit_t *cl, connlimit_conn_t *c, bool busy);
/* Forget c (NULL: nothing); call before its fd is closed. */
void connlimit_close(connlimit_t *cl, connlimit_conn_t *c);

void connlimit_get_stats(connlimit_t *cl, connlimit_stats_t *out);

#endif
