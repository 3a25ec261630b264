/*
 * leader.c - the server's leader election: the pure state machine, the
 * elector and watchdog threads, and the HTTP gate (see leader.h).
 *
 * Timing (lease L, margin M = leader_margin_ms(L)):
 *   - the leader renews every L/3 (one statement, pg_lease.c) and tries a
 *     failed renewal again RETRY_MS after it failed; a renewal sent at
 *     local time s that succeeds moves its deadline to s + L - M.  The
 *     database set the lease's end to (its clock when it ran the UPDATE)
 *     + L, which is after s + L in real time: the deadline comes first by
 *     at least M.
 *   - the watchdog wakes every WATCH_MS (< M) and at the deadline; past it
 *     it closes the gate and exits the process, well before the lease can
 *     expire.  It takes no lock (it reads the published deadline) and
 *     runs at real-time priority where the process may: only the kernel
 *     stands between the deadline and the exit.  The deadline is kept on
 *     the wall clock too (whichever comes first counts): a machine paused
 *     by its hypervisor may resume with its monotonic clock short of the
 *     pause, its wall clock stepped to the world's time.
 *   - a standby tries every L/10 (at least 100 ms) and takes over the first
 *     time it finds the lease expired: takeover <= L + L/10 + the restore.
 *   - the elector's statements are bounded (pg_lease.c: a renewal's
 *     answer at most until the lease it renews may have ended), so a hung
 *     database costs renewals, never the watchdog.
 *
 * Invariants: the gate opens only in LEADING; store_set_fence(term) is in
 * place before the modules start (every write of this process is fenced
 * with its term); the state is guarded by mu, and what the gate and the
 * watchdog read of it is published in atomics (publish) under mu.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/promtext.h"
#include "common/util.h"
#include "server/leader.h"
#include "server/standby.h"

#define WATCH_MS 50
/* A leader's failed renewal is tried again after this long. */
#define RETRY_MS 100
/* A watchdog check this much later than planned is logged and counted. */
#define WATCH_LATE_MS 100
/* At most one warning line of each kind (slow renewal, late watchdog) per
 * this period; the others are counted in /metrics and the next line. */
#define LOG_EVERY_MS 10000

/* pai_leader_renewal_seconds' bounds (seconds) */
static const double renew_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10};
#define NRB (sizeof(renew_bounds) / sizeof(renew_bounds[0]))

/* ---- the pure state machine --------------------------------------------- */

int64_t leader_margin_ms(int64_t lease_ms)
{
    int64_t m = lease_ms / 5;
    return m < 4 * WATCH_MS ? 4 * WATCH_MS : m;
}

static bool acting(leader_role_t r)
{
    return r == LEADER_PROMOTING || r == LEADER_LEADING;
}

leader_act_t leader_step(leader_state_t *s, bool ok, const store_lease_t *lease, int64_t sent_ms,
                         int64_t lease_ms)
{
    if (s->role == LEADER_SINGLE)
        return LEADER_ACT_NONE;
    if (!ok) /* the database did not answer: the deadline decides */
        return LEADER_ACT_NONE;
    if (!lease->held)
        return acting(s->role) ? LEADER_ACT_FAILSTOP : LEADER_ACT_NONE;
    if (acting(s->role) && lease->term != s->term)
        return LEADER_ACT_FAILSTOP; /* never ours to keep: someone led in between */
    s->deadline_ms = sent_ms + lease_ms - leader_margin_ms(lease_ms);
    if (acting(s->role))
        return LEADER_ACT_NONE;
    s->role = LEADER_PROMOTING;
    s->term = lease->term;
    return LEADER_ACT_PROMOTE;
}

int64_t leader_next_round_ms(bool leads, bool ok, int64_t started_ms, int64_t now_ms,
                             int64_t lease_ms)
{
    if (!leads)
        return started_ms + (lease_ms / 10 < 100 ? 100 : lease_ms / 10);
    /* a leader's failed renewal is tried again at once (on a new
     * connection), not a period later: its deadline is running */
    return ok ? started_ms + lease_ms / 3 : now_ms + RETRY_MS;
}

leader_act_t leader_check(const leader_state_t *s, int64_t now_ms)
{
    return acting(s->role) && now_ms >= s->deadline_ms ? LEADER_ACT_FAILSTOP : LEADER_ACT_NONE;
}

bool leader_may_act(const leader_state_t *s, int64_t now_ms)
{
    return s->role == LEADER_SINGLE || (s->role == LEADER_LEADING && now_ms < s->deadline_ms);
}

const char *leader_role_name(leader_role_t r)
{
    switch (r) {
    case LEADER_STANDBY:
        return "standby";
    case LEADER_PROMOTING:
        return "promoting";
    case LEADER_LEADING:
    case LEADER_SINGLE:
        return "leader";
    }
    return "?";
}

/* ---- the elector ---------------------------------------------------------- */

struct leader {
    store_t *st;
    int64_t lease_ms;
    char url[512];    /* advertise_url */
    char holder[768]; /* "<host> <url>": unique while the address is bound */

    pthread_mutex_t mu;
    pthread_cond_t cond; /* elected, stopping */
    leader_state_t s;
    store_lease_t last; /* the lease as last read */
    bool have_last;
    unsigned long rounds; /* election rounds done */
    bool single;          /* no election (set at creation) */
    bool stopping;
    bool threads;
    pthread_t elector, watchdog;

    /* The state as the gate and the watchdog read it, without mu (no lock
     * that a request, a collector or the elector holds can delay them);
     * published under mu after every change of s (publish). */
    _Atomic int64_t act_until_ms; /* the gate opens before it: LEADING's deadline, INT64_MAX
                                   * for a single server, INT64_MIN otherwise */
    _Atomic int64_t stop_at_ms;   /* the watchdog ends the process at it: an acting
                                   * server's deadline, INT64_MAX otherwise */
    _Atomic int64_t acting_term;
    /* The same two on the wall clock: after a pause of the whole machine
     * the monotonic clock may fall short of the pause while the wall clock
     * is stepped to the world's (the database's) time; whichever deadline
     * comes first counts.  deadline_wall_ms: the deadline on that clock. */
    int64_t deadline_wall_ms;
    _Atomic int64_t act_until_wall_ms, stop_at_wall_ms;
    atomic_bool quit; /* the watchdog's stop */

    /* What /metrics and the log show of the lease's health (atomics: the
     * collector reads them without mu). */
    _Atomic uint64_t renew_le[NRB + 1]; /* renewals (rounds of a leader) by duration */
    _Atomic uint64_t renew_n, renew_sum_us;
    _Atomic uint64_t renew_slow;   /* answered, but slower than lease/6 */
    _Atomic uint64_t renew_failed; /* not answered (error, time out) */
    _Atomic uint64_t watch_late;   /* watchdog checks WATCH_LATE_MS late or more */
    _Atomic int64_t watch_late_max_ms;
    _Atomic int64_t left_min_ms;            /* least time left before the deadline, at a check */
    int64_t slow_logged_ms, late_logged_ms; /* the last line of each kind (its thread's own) */
    uint64_t slow_folded, late_folded;
    int64_t last_ok_sent_ms;       /* the last renewal that moved the deadline: sent at */
    _Atomic int64_t last_watch_ms; /* the watchdog's last check */
};

leader_t *leader_new(store_t *st, int64_t lease_ms)
{
    leader_t *l = xcalloc(1, sizeof(*l));
    l->st = st;
    l->lease_ms = lease_ms;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca; /* naps on the monotonic clock: a step of the wall clock
                            * must not delay a renewal */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    l->single = !store_has_lease(st);
    l->s.role = l->single ? LEADER_SINGLE : LEADER_STANDBY;
    atomic_store(&l->left_min_ms, INT64_MAX);
    atomic_store(&l->act_until_ms, l->single ? INT64_MAX : INT64_MIN);
    atomic_store(&l->stop_at_ms, INT64_MAX);
    atomic_store(&l->act_until_wall_ms, l->single ? INT64_MAX : INT64_MIN);
    atomic_store(&l->stop_at_wall_ms, INT64_MAX);
    return l;
}

bool leader_is_single(leader_t *l)
{
    return l->single;
}

void leader_set_url(leader_t *l, const char *url)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0)
        str_copy(host, "?", sizeof(host));
    pthread_mutex_lock(&l->mu);
    str_copy(l->url, url, sizeof(l->url));
    snprintf(l->holder, sizeof(l->holder), "%s %s", host, l->url);
    pthread_mutex_unlock(&l->mu);
}

/* Make s visible to the gate and the watchdog (under mu). */
static void publish(leader_t *l)
{
    const leader_state_t *s = &l->s;
    atomic_store(&l->acting_term, s->term);
    atomic_store(&l->stop_at_ms, acting(s->role) ? s->deadline_ms : INT64_MAX);
    atomic_store(&l->act_until_ms, s->role == LEADER_SINGLE    ? INT64_MAX
                                   : s->role == LEADER_LEADING ? s->deadline_ms
                                                               : INT64_MIN);
    atomic_store(&l->stop_at_wall_ms, acting(s->role) ? l->deadline_wall_ms : INT64_MAX);
    atomic_store(&l->act_until_wall_ms, s->role == LEADER_SINGLE    ? INT64_MAX
                                        : s->role == LEADER_LEADING ? l->deadline_wall_ms
                                                                    : INT64_MIN);
}

/* The lease is lost or lapsed: stop acting before anyone else can.  The
 * gate closes first; exiting ends the engine's threads and every held
 * request at once.  No cleanup: nothing of this process may run any more,
 * and its writes are fenced anyway. */
static void failstop(leader_t *l, int64_t term, const char *why)
{
    atomic_store(&l->act_until_ms, INT64_MIN);
    atomic_store(&l->act_until_wall_ms, INT64_MIN);
    log_error("leader: %s (term %lld): stopping now; exit %d, to be started again as a standby",
              why, (long long)term, LEADER_EXIT_STATUS);
    _exit(LEADER_EXIT_STATUS);
}

/* Wait up to ms on cond unless stopping; returns !stopping. */
static bool nap(leader_t *l, int64_t ms)
{
    struct timespec until = time_after_ms(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&l->mu);
    if (!l->stopping)
        pthread_cond_timedwait(&l->cond, &l->mu, &until);
    bool go = !l->stopping;
    pthread_mutex_unlock(&l->mu);
    return go;
}

static void log_change(const leader_t *l, const store_lease_t *was, bool had,
                       const store_lease_t *now)
{
    if (had && was->term == now->term && strcmp(was->url, now->url) == 0)
        return;
    log_info("leader: term %lld, leader %s%s", (long long)now->term, *now->url ? now->url : "-",
             now->held ? " (this server)" : "");
    (void)l;
}

static void atomic_max(_Atomic int64_t *a, int64_t v)
{
    int64_t cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void atomic_min(_Atomic int64_t *a, int64_t v)
{
    int64_t cur = atomic_load(a);
    while (v < cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* A leader's renewal took took_ms: count it; log it when slower than
 * lease/6 (at most one line per LOG_EVERY_MS; pg_lease.c logs each
 * statement's time of a slow round). */
static void note_renewal(leader_t *l, bool ok, int64_t took_ms, int64_t left_ms)
{
    double sec = (double)took_ms / 1000;
    size_t b = 0;
    while (b < NRB && sec > renew_bounds[b])
        b++;
    atomic_fetch_add(&l->renew_le[b], 1);
    atomic_fetch_add(&l->renew_n, 1);
    atomic_fetch_add(&l->renew_sum_us, (uint64_t)took_ms * 1000);
    bool slow = took_ms > l->lease_ms / 6;
    if (!ok)
        atomic_fetch_add(&l->renew_failed, 1);
    else if (slow)
        atomic_fetch_add(&l->renew_slow, 1);
    if (ok && !slow)
        return;
    int64_t now = time_mono_ms();
    if (l->slow_logged_ms && now - l->slow_logged_ms < LOG_EVERY_MS) {
        l->slow_folded++;
        return;
    }
    log_warn("leader: renewal %s after %lld ms (renewals slower than %lld ms or failing are "
             "counted in pai_leader_renewals_slow_total / _failed_total); %lld ms left before "
             "this leader stops; %llu more since the last such line",
             ok ? "answered" : "failed", (long long)took_ms, (long long)(l->lease_ms / 6),
             (long long)left_ms, (unsigned long long)l->slow_folded);
    l->slow_logged_ms = now;
    l->slow_folded = 0;
}

/* One round: ask the store, step the state machine, carry out the act.
 * False when the store did not answer. */
static bool round_once(leader_t *l)
{
    pthread_mutex_lock(&l->mu);
    int64_t term = acting(l->s.role) ? l->s.term : 0;
    pthread_mutex_unlock(&l->mu);
    store_lease_t lease;
    int64_t sent_wall = time_wall_ms(), sent = time_mono_ms();
    bool ok = store_lease_acquire(l->st, l->holder, l->url, term, l->lease_ms, &lease) == PAI_OK;
    int64_t done = time_mono_ms();
    pthread_mutex_lock(&l->mu);
    int64_t deadline_was = l->s.deadline_ms;
    leader_act_t act = leader_step(&l->s, ok, &lease, sent, l->lease_ms);
    if (l->s.deadline_ms != deadline_was) /* moved by this round: the same on the wall clock */
        l->deadline_wall_ms = sent_wall + (l->s.deadline_ms - sent);
    if (act != LEADER_ACT_FAILSTOP)
        publish(l);
    else { /* the gate closes now; the log line and the exit follow */
        atomic_store(&l->act_until_ms, INT64_MIN);
        atomic_store(&l->act_until_wall_ms, INT64_MIN);
    }
    bool renewal = term && acting(l->s.role);
    if (ok) {
        log_change(l, &l->last, l->have_last, &lease);
        l->last = lease;
        l->have_last = true;
        if (act != LEADER_ACT_FAILSTOP)
            l->last_ok_sent_ms = sent;
    }
    l->rounds++;
    pthread_cond_broadcast(&l->cond);
    int64_t my_term = l->s.term, last_ok = l->last_ok_sent_ms;
    if (act == LEADER_ACT_PROMOTE) {
        /* before anything of the new term can write */
        store_set_fence(l->st, l->s.term, l->lease_ms / 2);
        log_info("leader: elected, term %lld: restoring from the store", (long long)l->s.term);
    }
    pthread_mutex_unlock(&l->mu);
    if (renewal)
        note_renewal(l, ok, done - sent, deadline_was - done);
    if (act == LEADER_ACT_FAILSTOP) {
        /* how it came to this: the deadline should have stopped us first */
        char why[400];
        snprintf(why, sizeof(why),
                 "the lease was taken over (now term %lld, holder %.60s): this round was sent "
                 "%lld ms after the last good renewal and answered in %lld ms, %lld ms before "
                 "the deadline (negative: after it); the watchdog last looked %lld ms before "
                 "the answer",
                 (long long)lease.term, lease.holder, (long long)(sent - last_ok),
                 (long long)(done - sent), (long long)(deadline_was - done),
                 (long long)(done - atomic_load(&l->last_watch_ms)));
        failstop(l, my_term, why);
    }
    return ok;
}

static void *elector_main(void *arg)
{
    leader_t *l = arg;
    do {
        int64_t t0 = time_mono_ms();
        bool ok = round_once(l);
        pthread_mutex_lock(&l->mu);
        bool leads = acting(l->s.role);
        pthread_mutex_unlock(&l->mu);
        int64_t now = time_mono_ms();
        int64_t left = leader_next_round_ms(leads, ok, t0, now, l->lease_ms) - now;
        if (!nap(l, left < 10 ? 10 : left))
            break;
    } while (true);
    return NULL;
}

/* A watchdog check came late_ms after its time: count it; log it at most
 * once per LOG_EVERY_MS. */
static void note_late(leader_t *l, int64_t late_ms, int64_t left_ms)
{
    atomic_max(&l->watch_late_max_ms, late_ms);
    atomic_min(&l->left_min_ms, left_ms);
    if (late_ms < WATCH_LATE_MS)
        return;
    atomic_fetch_add(&l->watch_late, 1);
    int64_t now = time_mono_ms();
    if (l->late_logged_ms && now - l->late_logged_ms < LOG_EVERY_MS) {
        l->late_folded++;
        return;
    }
    log_warn("leader: the watchdog looked %lld ms late (it looks every %d ms and at the "
             "deadline); %lld ms left before this leader stops; %llu more since the last such "
             "line (pai_leader_watchdog_late_total)",
             (long long)late_ms, WATCH_MS, (long long)left_ms, (unsigned long long)l->late_folded);
    l->late_logged_ms = now;
    l->late_folded = 0;
}

/* Sleep until the monotonic time at_ms. */
static void sleep_until(int64_t at_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(at_ms / 1000),
                          .tv_nsec = (long)(at_ms % 1000) * 1000000L};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Run the calling thread before every ordinary one when the process may
 * (SCHED_FIFO at the lowest priority: root, CAP_SYS_NICE or RLIMIT_RTPRIO):
 * a loaded machine then delays the watchdog by no more than the kernel
 * does, not by the run queue.  Its work is a few reads every WATCH_MS. */
static void watchdog_priority(void)
{
    struct sched_param sp = {.sched_priority = sched_get_priority_min(SCHED_FIFO)};
    int rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    if (rc == 0)
        log_debug("leader: the watchdog runs at real-time priority (SCHED_FIFO %d)",
                  sp.sched_priority);
    else
        log_debug("leader: the watchdog runs at ordinary priority (SCHED_FIFO refused: %s)",
                  strerror(rc));
}

/* The watchdog: wakes every WATCH_MS and at the deadline itself, and ends
 * the process once the deadline has passed.  It takes no lock: it reads
 * the published deadline (stop_at_ms), so nothing but the clock (and the
 * kernel's scheduler) stands between the deadline and the exit. */
static void *watchdog_main(void *arg)
{
    leader_t *l = arg;
    watchdog_priority();
    int64_t due = time_mono_ms() + WATCH_MS;
    while (!atomic_load(&l->quit)) {
        int64_t stop_at = atomic_load(&l->stop_at_ms);
        int64_t wake = stop_at < due ? stop_at : due;
        sleep_until(wake);
        if (atomic_load(&l->quit))
            break;
        int64_t now = time_mono_ms();
        stop_at = atomic_load(&l->stop_at_ms); /* a renewal may have moved it meanwhile */
        atomic_store(&l->last_watch_ms, now);
        if (stop_at != INT64_MAX)
            note_late(l, now - wake, stop_at - now);
        if (now >= stop_at)
            failstop(l, atomic_load(&l->acting_term), "the lease was not renewed in time");
        if (time_wall_ms() >= atomic_load(&l->stop_at_wall_ms))
            failstop(l, atomic_load(&l->acting_term),
                     "the lease was not renewed in time by the wall clock (the machine was "
                     "paused, or its clock stepped forward)");
        due = now + WATCH_MS;
    }
    return NULL;
}

pai_err_t leader_start(leader_t *l)
{
    if (l->single)
        return PAI_OK;
    if (pthread_create(&l->elector, NULL, elector_main, l) != 0)
        return PAI_E_INTERNAL;
    if (pthread_create(&l->watchdog, NULL, watchdog_main, l) != 0) {
        pthread_mutex_lock(&l->mu);
        l->stopping = true;
        pthread_cond_broadcast(&l->cond);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->elector, NULL);
        return PAI_E_INTERNAL;
    }
    l->threads = true;
    return PAI_OK;
}

bool leader_wait_elected(leader_t *l, int64_t ms)
{
    int64_t end = time_mono_ms() + ms;
    pthread_mutex_lock(&l->mu);
    unsigned long rounds = l->rounds;
    bool elected;
    while (!(elected = acting(l->s.role) || l->s.role == LEADER_SINGLE) && !l->stopping &&
           l->rounds == rounds) {
        int64_t left = end - time_mono_ms();
        if (left <= 0)
            break;
        struct timespec until = time_after_ms(CLOCK_MONOTONIC, left < 50 ? left : 50);
        pthread_cond_timedwait(&l->cond, &l->mu, &until);
    }
    pthread_mutex_unlock(&l->mu);
    return elected;
}

void leader_promoted(leader_t *l)
{
    pthread_mutex_lock(&l->mu);
    bool now = l->s.role == LEADER_PROMOTING;
    if (now) {
        l->s.role = LEADER_LEADING;
        publish(l);
        log_info("leader: leading, term %lld, as %s", (long long)l->s.term, l->url);
    }
    pthread_mutex_unlock(&l->mu);
    if (now) /* the standbys vouch for their clients' addresses with it */
        standby_secret_ensure(l->st);
}

void leader_free(leader_t *l)
{
    if (!l)
        return;
    atomic_store(&l->quit, true); /* the watchdog sees it within WATCH_MS */
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (l->threads) {
        pthread_join(l->elector, NULL);
        pthread_join(l->watchdog, NULL);
    }
    if (acting(l->s.role) && store_lease_release(l->st, l->holder, l->s.term) == PAI_OK)
        log_info("leader: lease of term %lld given up", (long long)l->s.term);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    free(l);
}

/* ---- the gate -------------------------------------------------------------- */

/* What a standby answers without any module: who leads, its /metrics (the
 * registry is thread-safe and a module's collectors appear once it
 * started) and the portal's files (built in).  The reads it answers from
 * its view of the store, and the forwarding of the rest, are
 * server/standby.h's. */
static bool standby_route(const char *method, const char *pattern)
{
    return strcmp(method, "GET") == 0 &&
           (strcmp(pattern, "/api/v2/info") == 0 || strcmp(pattern, "/metrics") == 0 ||
            strcmp(pattern, "/") == 0 || strcmp(pattern, "/portal/*") == 0);
}

pai_err_t leader_gate(leader_t *l, const char *method, const char *pattern, bool *modules,
                      pai_error_t *e)
{
    /* a leader's every request: one atomic read, no lock (LEADING and
     * SINGLE are published only once the modules have started) */
    *modules = time_mono_ms() < atomic_load(&l->act_until_ms) &&
               time_wall_ms() < atomic_load(&l->act_until_wall_ms);
    if (*modules || standby_route(method, pattern))
        return PAI_OK;
    pthread_mutex_lock(&l->mu);
    bool other = l->have_last && !l->last.held && l->last.remaining_ms > 0 && *l->last.url &&
                 strcmp(l->last.url, l->url) != 0;
    char url[sizeof(l->last.url)];
    str_copy(url, other ? l->last.url : "", sizeof(url));
    leader_role_t role = l->s.role;
    pthread_mutex_unlock(&l->mu);
    if (!other)
        return pai_error_set(e, PAI_E_NO_LEADER,
                             role == LEADER_PROMOTING
                                 ? "this server was just elected and is restoring; retry shortly"
                                 : "no server leads at the moment; retry shortly");
    pai_error_set(e, PAI_E_NOT_LEADER, "this server is a standby; the leader is %s", url);
    pai_error_details(e, xjson_pack("{s:s}", "leader", url));
    return PAI_E_NOT_LEADER;
}

json_t *leader_info_json(leader_t *l)
{
    pthread_mutex_lock(&l->mu);
    bool single = l->s.role == LEADER_SINGLE;
    const char *url = single || acting(l->s.role)                                ? l->url
                      : l->have_last && l->last.remaining_ms > 0 && *l->last.url ? l->last.url
                                                                                 : NULL;
    json_t *o = xjson_pack("{s:s, s:s?, s:I}", "role", leader_role_name(l->s.role), "leader",
                           url && *url ? url : NULL, "term",
                           (json_int_t)(acting(l->s.role) ? l->s.term : l->last.term));
    pthread_mutex_unlock(&l->mu);
    return o;
}

void leader_metrics(void *ud, buf_t *out)
{
    leader_t *l = ud;
    pthread_mutex_lock(&l->mu);
    bool leads = leader_may_act(&l->s, time_mono_ms());
    int64_t term = acting(l->s.role) ? l->s.term : l->last.term;
    pthread_mutex_unlock(&l->mu);
    prom_gauge(out, "pai_server_leader",
               "1 when this server leads (serves the API, schedules, dispatches), 0 on a standby",
               leads ? 1 : 0);
    prom_gauge(out, "pai_server_leader_term",
               "the leader's term (grows by one at every change of leader; 0: no election)",
               (double)term);
    if (l->single)
        return;
    prom_family(out, "pai_leader_renewal_seconds", "histogram",
                "a leader's lease renewals (election rounds), from sent to answered or failed");
    unsigned long long cum[NRB + 1];
    for (size_t b = 0; b <= NRB; b++)
        cum[b] = (b ? cum[b - 1] : 0) + atomic_load(&l->renew_le[b]);
    prom_histogram(out, "pai_leader_renewal_seconds", NULL, renew_bounds, NRB, cum,
                   (double)atomic_load(&l->renew_sum_us) / 1e6, atomic_load(&l->renew_n));
    prom_counter(out, "pai_leader_renewals_slow_total",
                 "renewals answered, but slower than a sixth of the lease",
                 (double)atomic_load(&l->renew_slow));
    prom_counter(out, "pai_leader_renewals_failed_total",
                 "renewals not answered (database error, time out, connection lost)",
                 (double)atomic_load(&l->renew_failed));
    prom_counter(out, "pai_leader_watchdog_late_total",
                 "the leader's watchdog checks that came 100 ms or more after their time",
                 (double)atomic_load(&l->watch_late));
    prom_gauge(out, "pai_leader_watchdog_late_max_seconds",
               "the most any watchdog check came after its time, since the start",
               (double)atomic_load(&l->watch_late_max_ms) / 1000);
    int64_t left = atomic_load(&l->left_min_ms);
    prom_gauge(out, "pai_leader_deadline_left_min_seconds",
               "the least time left before the leader's deadline that its watchdog saw "
               "(lease - lease/5 - lease/3 with prompt renewals; near 0: it was about to stop)",
               left == INT64_MAX ? 0 : (double)left / 1000);
}
