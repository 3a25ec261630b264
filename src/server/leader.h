/*
 * leader.h - which of several `pai server` processes on one PostgreSQL
 * leads (high availability; docs/architecture.md "High availability").
 *
 * Exactly one server leads: it runs the modules (auth, the job engine with
 * its scheduler, lifecycle and dispatch, ...) and answers every route.  The
 * others stand by: they answer GET /api/v2/info, /metrics and the portal's
 * files themselves, reads from a view of the store and forward the rest
 * (server/standby.h), and refuse the agents' sync with 421 NotLeaderError
 * naming the leader's URL (503 NoLeaderError while nobody leads).  Election is a lease in the store
 * (store_lease_acquire): renewed every lease/3; taken over by a standby once it expired on the
 * database's clock.  A leader that has not renewed by its local deadline
 * (lease - margin after it SENT its last successful renewal) stops acting
 * at once: the gate closes and the process exits (status 75, fail-stop;
 * its supervisor starts it again as a standby).  Every store write of a
 * leader is fenced with its term (store_set_fence), so an old leader can
 * never write once a newer one was elected.
 *
 * On a store without election (SQLite) the server leads alone ("single").
 *
 * The state machine (leader_step, leader_may_act) is pure: the clock is
 * passed in, so tests/unit/test_leader.c drives it step by step.
 */
#ifndef PAI_SERVER_LEADER_H
#define PAI_SERVER_LEADER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/store.h"

/* The exit status of a server that stopped leading (EX_TEMPFAIL): its
 * supervisor starts it again, and it comes back as a standby. */
#define LEADER_EXIT_STATUS 75

typedef enum {
    LEADER_STANDBY,   /* another server leads (or nobody yet) */
    LEADER_PROMOTING, /* elected; the modules are starting (restore) */
    LEADER_LEADING,   /* elected and serving */
    LEADER_SINGLE,    /* no election (SQLite): always leads */
} leader_role_t;

/* ---- the pure state machine --------------------------------------------- */

typedef struct {
    leader_role_t role;
    int64_t term;        /* while PROMOTING/LEADING: the term we lead with */
    int64_t deadline_ms; /* monotonic: stop acting at this time unless renewed */
} leader_state_t;

typedef enum {
    LEADER_ACT_NONE,
    LEADER_ACT_PROMOTE,  /* elected: fence the store with the term, start the modules */
    LEADER_ACT_FAILSTOP, /* the lease is lost or lapsed: stop acting now */
} leader_act_t;

/* How long before the lease's end (as the leader reckons it from the time
 * it sent the renewal) the leader stops: covers the watchdog's period and
 * the time to stop, so it stops before the lease can expire anywhere. */
int64_t leader_margin_ms(int64_t lease_ms);
/* One election round: ok when the store answered (*lease valid), sent_ms
 * when the round was sent, both on the monotonic clock. */
leader_act_t leader_step(leader_state_t *s, bool ok, const store_lease_t *lease, int64_t sent_ms,
                         int64_t lease_ms);
/* When the elector's next round starts, for a round that started at
 * started_ms and ended at now_ms: a leader renews every lease/3 and tries
 * a failed renewal again 100 ms after it failed; a standby tries every
 * lease/10 (at least 100 ms). */
int64_t leader_next_round_ms(bool leads, bool ok, int64_t started_ms, int64_t now_ms,
                             int64_t lease_ms);
/* The watchdog's check: FAILSTOP when a leader's deadline has passed. */
leader_act_t leader_check(const leader_state_t *s, int64_t now_ms);
/* May this server act as the leader now? */
bool leader_may_act(const leader_state_t *s, int64_t now_ms);

/* ---- the elector --------------------------------------------------------- */

typedef struct leader leader_t;

/* A single leader when the store has no election, else a standby that
 * starts electing at leader_start.  lease_ms: leader_lease_s * 1000. */
leader_t *leader_new(store_t *st, int64_t lease_ms);
/* True for a single server (no election). */
bool leader_is_single(leader_t *l);
/* This server's URL as clients and agents reach it (advertise_url), shown
 * by leader_info_json and, while it leads, by the standbys; call before
 * leader_start (it names the lease's holder). */
void leader_set_url(leader_t *l, const char *url);
/* Start the elector and watchdog threads (none for a single server). */
PAI_MUST_CHECK pai_err_t leader_start(leader_t *l);
/* Wait up to ms until this server is elected or an election round
 * finished without electing it.  True when elected (the main thread then
 * starts the modules), at once for a single server. */
bool leader_wait_elected(leader_t *l, int64_t ms);
/* The modules have started: open the gate. */
void leader_promoted(leader_t *l);
/* Stop the threads; a leader gives its lease up (the caller has stopped
 * acting: HTTP and modules are down).  Frees l. */
void leader_free(leader_t *l);

/* The HTTP gate, before a route runs: PAI_OK when this server may run it
 * (it leads, or the route is one a standby serves), else e says who leads:
 * PAI_E_NOT_LEADER with details {"leader": URL}, or PAI_E_NO_LEADER.
 * *modules: whether the modules have started, i.e. whether the caller may
 * use them (auth) for this request (false for a standby's own routes). */
PAI_MUST_CHECK pai_err_t leader_gate(leader_t *l, const char *method, const char *pattern,
                                     bool *modules, pai_error_t *e);
/* {"role": "leader"|"standby"|..., "leader": URL or null, "term": N}. */
json_t *leader_info_json(leader_t *l);
const char *leader_role_name(leader_role_t r);
/* The metrics collector (server/metrics.h): pai_server_leader (1/0) and
 * pai_server_leader_term. */
void leader_metrics(void *ud, buf_t *out);

#endif
