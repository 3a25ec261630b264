/*
 * standby.c - a standby's read-only view of the store, rebuilt every
 * standby_refresh_s (see standby.h for the design; the forwarding of
 * everything else is standby_proxy.c).
 *
 * Life of a view: the refresher thread builds it without any lock (auth
 * from the store, then the job engine through its restore path, read-only),
 * then swaps it in under `mu`; the view it replaces is freed by whoever
 * drops its last reference (the refresher, or the last request that was
 * reading it).  A request takes a reference at the gate (standby_view_get)
 * and drops it once its handler has answered: the view's routes answer
 * synchronously (no held or offloaded answer), so nothing reads a view after
 * its request's standby_view_put.
 *
 * Change-driven: every standby_refresh_s the refresher reads the store's
 * generation (store_generation: one row, bumped by a trigger inside every
 * transaction that changes a record, so no committed change can go
 * unnoticed) and rebuilds only when it moved since the generation read
 * before the current view was built; otherwise the view is still the
 * store and only its freshness (read_ms) moves on.  The generation is read
 * BEFORE the build, so a change committed during a build is seen at the
 * next check.  Where the store has no generation (SQLite: no standby
 * exists there) or it could not be read, the view is rebuilt.
 *
 * Changes outside the view: when the generation moved, the refresher asks
 * the store what changed since the point its view was read at
 * (store_changes, PostgreSQL's change feed: pg_changes.c).  When every
 * changed record is of a kind no view holds (events, job configs and ssh
 * info, templates: the view's handlers read those from the store when
 * asked), the view is still the store for everything it answers from, and
 * it is kept (its point, generation and freshness move on) instead of
 * rebuilt.  Any other change, a point whose changes were pruned
 * (PAI_E_NOT_FOUND) or a failed read: rebuilt whole, as before.  Why not
 * apply the changed records to the view instead of rebuilding: the
 * rebuild's cost is the restore's decoding and indexing of every job, not
 * the read (bench/standby.c: at 100,000 jobs the read is ~3% of the
 * standby's CPU for a rebuild), so an incremental read alone saves little;
 * applying records to a live engine is the engine's own work to do.
 *
 * Staleness: a view shows the store as read while it was built (or last
 * found unchanged), so what a read on a standby shows is at most
 * (refresh + build time) old; pai_standby_view_age_seconds says how old the
 * view served now is.
 */
#include "server/standby.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/promtext.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/server.h"

struct standby_view {
    server_ctx_t ctx; /* cfg and store: the server's; auth and engine: the view's */
    int refs;         /* under standby.mu */
    int64_t read_ms;  /* monotonic: when its build began or the store was last found
                         unchanged (it is at least this fresh); under standby.mu */
    int64_t gen;      /* the store's generation read before its build (-1: none) */
};

struct standby {
    server_ctx_t *srv;
    int64_t refresh_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC: wakes the refresher to stop */
    standby_view_t *cur;
    bool stopping, thread, finished; /* finished: the refresher has returned */
    pthread_t th;
    int64_t wrote_ms; /* monotonic: the last forwarded write's answer (standby_wrote) */
    bool kick;        /* rebuild now: a write went through */
    int64_t build_ms; /* the last build's duration */
    unsigned long builds, failures, skips; /* skips: checks that found no change */
    unsigned long outside, pruned; /* checks that found changes outside the view only; change
                                      reads answered "pruned" (rebuilt whole) */
    char *point;      /* the refresher's: the store's change point its view was read at (NULL:
                         unknown, e.g. SQLite) */
    log_once_t *once; /* the refresher's: a rebuild's restore warnings are logged once */
};

/* ---- the routes a view answers --------------------------------------------- */

#define JOB  "/api/v2/jobs/{job}"
#define TASK JOB "/attempts/{attempt}/taskRoles/{role}/taskIndex/{index}/attempts"

/* GET routes whose handlers read only auth, the engine, cfg and the store
 * (no template, history or notify module, no agent) and answer at once. */
static const char *const view_routes[] = {
    "/api/v2/jobs",
    JOB,
    JOB "/attempts/{attempt}",
    JOB "/config",
    JOB "/events",
    JOB "/job-attempts/healthz",
    JOB "/job-attempts",
    JOB "/job-attempts/{attempt}",
    TASK,
    TASK "/{ta}/logs",
    "/api/v2/tokens",
    "/api/v2/users",
    "/api/v2/users/{user}",
    "/api/v2/groups",
    "/api/v2/groups/{group}",
    "/api/v2/groups/{group}/userlist",
    "/api/v2/virtual-clusters",
    "/api/v2/virtual-clusters/{vc}",
    "/api/v2/virtual-clusters/{vc}/sku-types",
    "/api/v2/cluster/sku-types",
    "/api/v2/cluster/nodes",
    "/api/v2/kubernetes/nodes",
    "/api/v2/kubernetes/pods",
    "/api/v2/usage",
    "/api/v2/storages",
    "/api/v2/storages/{storage}",
    "/api/v2/metrics/targets",
};

bool standby_reads(const http_route_t *r)
{
    if (strcmp(r->method, "GET") != 0)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(view_routes); i++)
        if (strcmp(r->pattern, view_routes[i]) == 0)
            return true;
    return false;
}

/* ---- views ------------------------------------------------------------------- */

static void view_free(standby_view_t *v)
{
    if (!v)
        return;
    engine_free(v->ctx.engine);
    auth_free(v->ctx.auth);
    free(v);
}

/* A new view of the store; NULL (logged) when the store could not be read. */
static standby_view_t *view_build(standby_t *sb, int64_t read_ms, int64_t gen)
{
    standby_view_t *v = xcalloc(1, sizeof(*v));
    v->ctx.cfg = sb->srv->cfg;
    v->ctx.store = sb->srv->store;
    v->read_ms = read_ms;
    v->gen = gen;
    v->refs = 1;
    engine_opts_t o;
    jobs_engine_opts(sb->srv->cfg, &o);
    o.read_only = true;
    o.sched_test_corrupt = false;
    pai_error_t e = PAI_ERROR_INIT;
    /* what the restore logs about the same records again at every rebuild
     * (a job it cannot restore, ...) is logged by the first one only */
    log_once_set(sb->once);
    pai_err_t rc = auth_view_new(&v->ctx, &v->ctx.auth);
    if (rc != PAI_OK)
        pai_error_set(&e, rc, "users, groups and tokens: %s", pai_err_msg(rc));
    else
        rc = engine_new(sb->srv->store, &o, NULL, &v->ctx.engine, &e);
    log_once_set(NULL);
    if (rc != PAI_OK) {
        log_warn("standby: the view of the store could not be rebuilt (the last one stays): %s",
                 pai_error_msg(&e));
        pai_error_free(&e);
        view_free(v);
        return NULL;
    }
    return v;
}

standby_view_t *standby_view_get(standby_t *sb, bool after_writes)
{
    pthread_mutex_lock(&sb->mu);
    standby_view_t *v = sb->cur;
    if (v && after_writes && v->read_ms <= sb->wrote_ms)
        v = NULL;
    if (v)
        v->refs++;
    pthread_mutex_unlock(&sb->mu);
    return v;
}

void standby_view_put(standby_t *sb, standby_view_t *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&sb->mu);
    bool last = --v->refs == 0;
    pthread_mutex_unlock(&sb->mu);
    if (last)
        view_free(v);
}

server_ctx_t *standby_view_ctx(standby_view_t *v)
{
    return &v->ctx;
}

void standby_wrote(standby_t *sb)
{
    pthread_mutex_lock(&sb->mu);
    sb->wrote_ms = time_mono_ms();
    sb->kick = true;
    pthread_cond_broadcast(&sb->cv);
    pthread_mutex_unlock(&sb->mu);
}

/* ---- the refresher ------------------------------------------------------------ */

/* Wait until the monotonic time `until`, a kick (standby_wrote) or a stop;
 * false when stopping. */
static bool nap_until(standby_t *sb, int64_t until)
{
    struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (long)(until % 1000) * 1000000L};
    pthread_mutex_lock(&sb->mu);
    while (!sb->stopping && !sb->kick && time_mono_ms() < until)
        pthread_cond_timedwait(&sb->cv, &sb->mu, &ts);
    sb->kick = false;
    bool go = !sb->stopping;
    pthread_mutex_unlock(&sb->mu);
    return go;
}

/* True when the current view is still the store (its generation has not
 * moved); its freshness then moves to t0.  *gen: the generation now (-1:
 * unknown). */
static bool view_unchanged(standby_t *sb, int64_t t0, int64_t *gen)
{
    if (store_generation(sb->srv->store, gen) != PAI_OK) {
        *gen = -1;
        return false;
    }
    pthread_mutex_lock(&sb->mu);
    bool same = sb->cur && sb->cur->gen >= 0 && sb->cur->gen == *gen && !sb->stopping;
    if (same) {
        sb->cur->read_ms = t0;
        sb->skips++;
    }
    pthread_mutex_unlock(&sb->mu);
    return same;
}

/* Kinds of records no view holds: its handlers read them from the store
 * when asked (events, a job's config and ssh info), or it has no handler
 * for them (templates: forwarded). */
static const char *const outside_kinds[] = {"event", "jobcfg", "jobssh", "template", "tplyaml"};

/* store_changes' callback: stop (non-zero) at the first record a view
 * holds. */
static int held_cb(void *ud, const char *kind, const char *key, int64_t seq, const char *json)
{
    (void)ud, (void)key, (void)seq, (void)json;
    for (size_t i = 0; i < ARRAY_LEN(outside_kinds); i++)
        if (strcmp(kind, outside_kinds[i]) == 0)
            return 0;
    return 1;
}

/* True when what changed since the view's point is outside the view only;
 * its point, generation (gen, read before) and freshness (t0) then move
 * on.  False: rebuild. */
static bool view_outside(standby_t *sb, int64_t t0, int64_t gen)
{
    if (!sb->point || gen < 0)
        return false;
    char *next = NULL;
    pai_err_t rc = store_changes(sb->srv->store, sb->point, held_cb, NULL, &next);
    if (rc != PAI_OK) {
        if (rc == PAI_E_NOT_FOUND) {
            log_info("standby: the store's changes since the view was read are no longer all "
                     "kept (15 minutes): rebuilding it whole");
            pthread_mutex_lock(&sb->mu);
            sb->pruned++;
            pthread_mutex_unlock(&sb->mu);
        }
        return false; /* PAI_E_INTERNAL: a record the view holds changed */
    }
    free(sb->point);
    sb->point = next;
    pthread_mutex_lock(&sb->mu);
    bool kept = sb->cur && !sb->stopping;
    if (kept) {
        sb->cur->gen = gen;
        sb->cur->read_ms = t0;
        sb->outside++;
    }
    pthread_mutex_unlock(&sb->mu);
    return kept;
}

static void *refresher_main(void *arg)
{
    standby_t *sb = arg;
    int64_t t0 = time_mono_ms();
    do {
        t0 = time_mono_ms();
        int64_t gen;
        if (view_unchanged(sb, t0, &gen) || view_outside(sb, t0, gen))
            continue;
        /* the change point before the read (NULL where the store has no
         * change feed, or it failed: the next check rebuilds) */
        char *point = NULL;
        if (gen < 0 || store_changes(sb->srv->store, NULL, NULL, NULL, &point) != PAI_OK)
            point = NULL;
        standby_view_t *v = view_build(sb, t0, gen);
        if (v) {
            free(sb->point);
            sb->point = point;
        } else {
            free(point);
        }
        int64_t took = time_mono_ms() - t0;
        pthread_mutex_lock(&sb->mu);
        standby_view_t *old = NULL;
        if (v && !sb->stopping) {
            old = sb->cur;
            sb->cur = v;
            v = NULL;
            sb->builds++;
        } else if (!v) {
            sb->failures++;
        }
        sb->build_ms = took;
        pthread_mutex_unlock(&sb->mu);
        standby_view_put(sb, old);
        view_free(v); /* stopped meanwhile */
        if (sb->builds == 1 && old == NULL && took > 0)
            log_info("standby: serving reads from a view of the store (built in %lld ms, "
                     "rebuilt every %lld ms)",
                     (long long)took, (long long)sb->refresh_ms);
    } while (nap_until(sb, t0 + sb->refresh_ms));
    pthread_mutex_lock(&sb->mu);
    sb->finished = true;
    pthread_mutex_unlock(&sb->mu);
    return NULL;
}

standby_t *standby_new(server_ctx_t *ctx, int64_t refresh_ms)
{
    standby_t *sb = xcalloc(1, sizeof(*sb));
    sb->srv = ctx;
    sb->refresh_ms = refresh_ms > 0 ? refresh_ms : 2000;
    sb->once = log_once_new(); /* NULL (out of memory): every line is logged */
    pthread_mutex_init(&sb->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sb->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&sb->th, NULL, refresher_main, sb) != 0) {
        pthread_cond_destroy(&sb->cv);
        pthread_mutex_destroy(&sb->mu);
        log_once_free(sb->once);
        free(sb);
        return NULL;
    }
    sb->thread = true;
    return sb;
}

void standby_stop(standby_t *sb)
{
    if (!sb)
        return;
    /* not joined here: a rebuild under way must not delay the promotion
     * (it finishes on its own, unused, and the thread ends) */
    pthread_mutex_lock(&sb->mu);
    sb->stopping = true;
    pthread_cond_broadcast(&sb->cv);
    standby_view_t *old = sb->cur;
    sb->cur = NULL;
    pthread_mutex_unlock(&sb->mu);
    standby_view_put(sb, old);
}

void standby_reap(standby_t *sb)
{
    if (!sb || !sb->thread)
        return;
    pthread_mutex_lock(&sb->mu);
    bool done = sb->finished;
    pthread_mutex_unlock(&sb->mu);
    if (done) {
        pthread_join(sb->th, NULL);
        sb->thread = false;
    }
}

void standby_free(standby_t *sb)
{
    if (!sb)
        return;
    standby_stop(sb);
    if (sb->thread)
        pthread_join(sb->th, NULL);
    pthread_cond_destroy(&sb->cv);
    pthread_mutex_destroy(&sb->mu);
    log_once_free(sb->once);
    free(sb->point);
    free(sb);
}

void standby_metrics(void *ud, buf_t *out)
{
    standby_t *sb = ud;
    pthread_mutex_lock(&sb->mu);
    double age = sb->cur ? (double)(time_mono_ms() - sb->cur->read_ms) / 1000.0 : -1;
    double build = (double)sb->build_ms / 1000.0;
    unsigned long builds = sb->builds, failures = sb->failures, skips = sb->skips;
    unsigned long outside = sb->outside, pruned = sb->pruned;
    pthread_mutex_unlock(&sb->mu);
    prom_gauge(out, "pai_standby_view_age_seconds",
               "a standby: how old the view of the store its reads are answered from is "
               "(-1: none yet, or this server leads)",
               age);
    prom_gauge(out, "pai_standby_view_build_seconds",
               "a standby: how long the last rebuild of its view of the store took", build);
    prom_family(out, "pai_standby_view_builds_total", "counter",
                "a standby: views of the store built, and rebuilds that failed");
    prom_sample(out, "pai_standby_view_builds_total", "result=\"ok\"", (double)builds);
    prom_sample(out, "pai_standby_view_builds_total", "result=\"failed\"", (double)failures);
    prom_counter(out, "pai_standby_view_checks_unchanged_total",
                 "a standby: refreshes skipped because the store's generation had not moved",
                 (double)skips);
    prom_counter(out, "pai_standby_view_checks_outside_total",
                 "a standby: refreshes skipped because only records its view does not hold "
                 "changed (events, job configs, templates: read from the store when asked)",
                 (double)outside);
    prom_counter(out, "pai_standby_view_changes_pruned_total",
                 "a standby: change reads refused because the changes since its view were "
                 "pruned (the view was rebuilt whole)",
                 (double)pruned);
}
