/*
 * nodes.c - node registry, port pools and desired sets (see
 * nodes.h).
 *
 * Ports are pooled per address, not per node: several agents on one host
 * (tests, `pai up`) share the address, and tasks on them must not collide.
 * Nodes and pools are found through maps by name and address: a bind looks
 * up each task's node and pool, and a linear scan cost O(nodes) per task
 * with 10,000 nodes (one address each on a real install).
 */
#include "engine/nodes.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <stdio.h>

#include "common/log.h"
#include "common/strmap.h"
#include "common/util.h"
#include "common/vec.h"
#include "engine/codec.h"

typedef struct {
    uint8_t *used; /* bitmap over [base, base+count) */
    int next;      /* round-robin start */
} port_pool_t;

struct nodes {
    engine_node_t **v; /* in registration order (owned) */
    size_t n, cap;
    strmap_t *by_name;     /* name -> node (not owned) */
    strmap_t *pools;       /* address -> port_pool_t (owned) */
    engine_node_t **dirty; /* nodes_mark_dirty, drained by nodes_next_dirty */
    size_t ndirty, capdirty;
    int port_base, port_count;
    uint64_t seed;
    char epoch[17]; /* nodes_epoch */
};

/* Attempts that left a node's desired set kept for deltas, at most: an
 * agent that syncs trims them up to its known_seq, so this bounds only a
 * node that is silent (lost) while its set churns; past it the oldest is
 * forgotten and such an agent gets the whole set. */
#define NODES_GONE_MAX 256

static void pool_free(void *v)
{
    port_pool_t *p = v;
    free(p->used);
    free(p);
}

nodes_t *nodes_new(int port_base, int port_count)
{
    nodes_t *ns = xcalloc(1, sizeof(*ns));
    ns->by_name = strmap_new(NULL);
    ns->pools = strmap_new(pool_free);
    ns->port_base = port_base;
    ns->port_count = port_count;
    ns->seed = (uint64_t)time_wall_ms() ^ ((uint64_t)getpid() << 32);
    unsigned char r[8];
    randombytes_buf(r, sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(ns->epoch + 2 * i, 3, "%02x", r[i]);
    return ns;
}

static void node_free(engine_node_t *n)
{
    free(n->name);
    free(n->address);
    free(n->boot_id);
    free(n->log_url);
    free(n->gpu_model);
    free(n->gpu_backend);
    free(n->runtime);
    json_decref(n->gpus);
    free(n->refs);
    for (size_t i = 0; i < n->ngone; i++)
        free(n->gone[i].id);
    free(n->gone);
    pthread_cond_destroy(&n->cv);
    free(n);
}

void nodes_free(nodes_t *ns)
{
    if (!ns)
        return;
    for (size_t i = 0; i < ns->n; i++)
        node_free(ns->v[i]);
    free(ns->v);
    free(ns->dirty);
    strmap_free(ns->by_name);
    strmap_free(ns->pools);
    free(ns);
}

engine_node_t *nodes_find(nodes_t *ns, const char *name)
{
    return strmap_get(ns->by_name, name);
}

engine_node_t *nodes_get(nodes_t *ns, const char *name, bool *created)
{
    engine_node_t *n = nodes_find(ns, name);
    *created = false;
    if (n)
        return n;
    n = xcalloc(1, sizeof(*n));
    n->name = xstrdup(name);
    n->address = xstrdup("127.0.0.1");
    n->state = NODE_HEALTHY;
    n->seq = 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->cv, &ca);
    pthread_condattr_destroy(&ca);
    VEC_XRESERVE(ns->v, ns->cap, ns->n + 1);
    ns->v[ns->n++] = n;
    if (strmap_put(ns->by_name, name, n) != PAI_OK) /* only a NULL value fails */
        abort();
    *created = true;
    return n;
}

size_t nodes_count(const nodes_t *ns)
{
    return ns->n;
}

engine_node_t *nodes_at(nodes_t *ns, size_t i)
{
    return i < ns->n ? ns->v[i] : NULL;
}

void nodes_mark_dirty(nodes_t *ns, engine_node_t *n)
{
    if (n->dirty)
        return;
    n->dirty = true;
    VEC_XRESERVE(ns->dirty, ns->capdirty, ns->ndirty + 1);
    ns->dirty[ns->ndirty++] = n;
}

size_t nodes_dirty_count(const nodes_t *ns)
{
    return ns->ndirty;
}

engine_node_t *nodes_next_dirty(nodes_t *ns)
{
    if (ns->ndirty == 0)
        return NULL;
    engine_node_t *n = ns->dirty[--ns->ndirty];
    n->dirty = false;
    return n;
}

/* ---------------------------------------------------------------- ports */

static port_pool_t *pool_for(nodes_t *ns, const char *address)
{
    port_pool_t *p = strmap_get(ns->pools, address);
    if (p)
        return p;
    p = xcalloc(1, sizeof(*p));
    if (strmap_put(ns->pools, address, p) != PAI_OK) /* only a NULL value fails */
        abort();
    p->used = xcalloc((size_t)ns->port_count / 8 + 1, 1);
    /* Start at a random place: several servers on one host (tests, side by
     * side clusters) then rarely hand out the same ports. */
    ns->seed = ns->seed * 6364136223846793005ull + 1442695040888963407ull;
    p->next = (int)((ns->seed >> 33) % (uint64_t)ns->port_count);
    return p;
}

static bool bit(const uint8_t *m, int i)
{
    return m[i / 8] & (1u << (i % 8));
}

bool nodes_ports_alloc(nodes_t *ns, const char *address, int n, int *out)
{
    port_pool_t *p = pool_for(ns, address);
    int got = 0;
    for (int k = 0; k < ns->port_count && got < n; k++) {
        int i = (p->next + k) % ns->port_count;
        if (!bit(p->used, i))
            out[got++] = i;
    }
    if (got < n)
        return false;
    for (int k = 0; k < n; k++) {
        p->used[out[k] / 8] |= (uint8_t)(1u << (out[k] % 8));
        p->next = (out[k] + 1) % ns->port_count;
        out[k] += ns->port_base;
    }
    return true;
}

static void ports_set(nodes_t *ns, const char *address, const int *ports, int n, bool on)
{
    port_pool_t *p = pool_for(ns, address);
    for (int k = 0; k < n; k++) {
        int i = ports[k] - ns->port_base;
        if (i < 0 || i >= ns->port_count)
            continue;
        if (on)
            p->used[i / 8] |= (uint8_t)(1u << (i % 8));
        else
            p->used[i / 8] &= (uint8_t) ~(1u << (i % 8));
    }
}

void nodes_ports_free(nodes_t *ns, const char *address, const int *ports, int n)
{
    ports_set(ns, address, ports, n, false);
}

void nodes_ports_mark(nodes_t *ns, const char *address, const int *ports, int n)
{
    ports_set(ns, address, ports, n, true);
}

/* ---------------------------------------------------------------- refs */

void nodes_wake(engine_node_t *n)
{
    pthread_cond_broadcast(&n->cv);
    engine_waker_t w = n->waker;
    n->waker = (engine_waker_t){0};
    if (w.fn)
        w.fn(w.ud, w.ticket);
}

void nodes_bump(engine_node_t *n)
{
    n->news = ++n->seq;
    nodes_wake(n);
}

static lc_task_attempt_t *ref_ta(const engine_node_ref_t *r)
{
    return lc_find(r->job, r->ja, r->role, r->index, r->ta);
}

bool nodes_ref_live(const engine_node_ref_t *r)
{
    const lc_task_attempt_t *ta = ref_ta(r);
    return ta && (ta->state == TASK_WAITING || ta->state == TASK_RUNNING);
}

static engine_node_ref_t *ref_find(engine_node_t *n, const lc_job_t *job, int ja, int role,
                                   int index, int ta)
{
    for (size_t i = 0; i < n->nrefs; i++) {
        engine_node_ref_t *r = &n->refs[i];
        if (r->job == job && r->ja == ja && r->role == role && r->index == index && r->ta == ta)
            return r;
    }
    return NULL;
}

/* ---------------------------------------------------------------- deltas */

const char *nodes_epoch(const nodes_t *ns)
{
    return ns->epoch;
}

/* The seq a change of the set is stamped with: above every seq an answer
 * carried, so an agent that holds one as its base gets the change. */
static uint64_t stamp(engine_node_t *n, bool quiet)
{
    if (n->seq <= n->answered && quiet)
        n->seq++; /* no news: no answer for it (nodes.h, news) */
    else if (n->seq <= n->answered)
        nodes_bump(n);
    return n->seq;
}

static void gone_push(engine_node_t *n, const engine_node_ref_t *r, bool quiet)
{
    char *id = codec_attempt_id(r->job, r->ja, r->role, r->index, r->ta);
    uint64_t seq = stamp(n, quiet);
    if (!id)
        return;
    if (n->ngone == NODES_GONE_MAX) {
        n->gone_floor = n->gone[0].seq;
        free(n->gone[0].id);
        memmove(n->gone, n->gone + 1, --n->ngone * sizeof(*n->gone));
    }
    VEC_XRESERVE(n->gone, n->capgone, n->ngone + 1);
    n->gone[n->ngone++] = (engine_node_gone_t){id, seq};
}

static bool ref_sendable(const engine_node_ref_t *r)
{
    const lc_task_attempt_t *ta = ref_ta(r);
    /* Only attempts the store knows (see mark_durable in persist.c). */
    return ta && ta->durable == 2 && (ta->state == TASK_WAITING || ta->state == TASK_RUNNING);
}

void nodes_refresh(engine_node_t *n)
{
    for (size_t i = 0; i < n->nrefs; i++) {
        engine_node_ref_t *r = &n->refs[i];
        bool s = ref_sendable(r);
        if (s == r->shown)
            continue;
        const lc_task_attempt_t *ta = ref_ta(r);
        if (s)
            r->shown_seq = stamp(n, false);
        else
            gone_push(n, r, ta && ta->node_ended);
        r->shown = s;
    }
}

bool nodes_delta_ok(const engine_node_t *n, uint64_t known)
{
    return known >= 1 && known <= n->answered && known <= n->seq && known >= n->gone_floor;
}

void nodes_gone_trim(engine_node_t *n, uint64_t known)
{
    size_t k = 0;
    while (k < n->ngone && n->gone[k].seq <= known)
        free(n->gone[k++].id);
    if (k) {
        memmove(n->gone, n->gone + k, (n->ngone - k) * sizeof(*n->gone));
        n->ngone -= k;
    }
    if (known > n->gone_floor)
        n->gone_floor = known;
}

/* quiet: the agent knows it left (its node reported its end). */
static void ref_drop(nodes_t *ns, engine_node_t *n, engine_node_ref_t *r, bool quiet)
{
    const lc_task_attempt_t *ta = ref_ta(r);
    if (r->shown) /* an answer may have told the agent of it */
        gone_push(n, r, quiet);
    if (ta && ta->nports)
        nodes_ports_free(ns, ta->ip ? ta->ip : n->address, ta->ports, ta->nports);
    *r = n->refs[--n->nrefs];
}

static void sync_one(nodes_t *ns, lc_job_t *job, int ja, int role, int index, int k)
{
    lc_task_attempt_t *ta = lc_find(job, ja, role, index, k);
    if (!ta || !ta->node || ta->synced == ta->state + 1)
        return; /* unchanged since the last sync: nothing to do */
    ta->synced = (uint8_t)(ta->state + 1);
    engine_node_t *n = nodes_find(ns, ta->node);
    if (!n)
        return;
    engine_node_ref_t *r = ref_find(n, job, ja, role, index, k);
    bool final = lc_task_state_final(ta->state);
    if (final) {
        if (r) {
            /* An attempt whose end its node reported leaves the desired set
             * without a bump: the agent knows it ended, and a bump would
             * answer the held poll of that very report at once with nothing
             * new (one more sync per task end; its ack comes with the next
             * answer, hold_acks).  Any other end (node lost, a stop before
             * the start) is news to the node: bumped. */
            bool was = r->desired;
            ref_drop(ns, n, r, ta->node_ended);
            if (was && !ta->node_ended)
                nodes_bump(n);
        }
        return;
    }
    if (!r) {
        VEC_XRESERVE(n->refs, n->caprefs, n->nrefs + 1);
        r = &n->refs[n->nrefs++];
        *r = (engine_node_ref_t){.job = job, .ja = ja, .role = role, .index = index, .ta = k};
        if (ta->nports)
            nodes_ports_mark(ns, ta->ip ? ta->ip : n->address, ta->ports, ta->nports);
    }
    bool live = nodes_ref_live(r);
    if (live != r->desired) {
        r->desired = live;
        /* An attempt not yet committed is left out of the desired set
         * (agentsync.c): the commit bumps seq (mark_durable in
         * persist.c).  Bumping now too would answer held polls with
         * an unchanged set: one more round trip before the agent hears. */
        if (!live || ta->durable == 2)
            nodes_bump(n);
    }
}

void nodes_sync_job(nodes_t *ns, lc_job_t *job)
{
    if (!job->atts)
        return;
    /* The previous attempt may still have stopping tasks; look at the last two. */
    for (int ja = job->natts >= 2 ? job->natts - 2 : 0; ja < job->natts; ja++)
        for (int r = 0; r < job->nroles; r++)
            for (int i = 0; i < job->roles[r].instances; i++) {
                const lc_task_t *t = &job->atts[ja].tasks[r][i];
                for (int k = 0; k < t->natts; k++)
                    sync_one(ns, job, ja, r, i, k);
            }
}

void nodes_clear_refs(nodes_t *ns, engine_node_t *n)
{
    while (n->nrefs > 0)
        ref_drop(ns, n, &n->refs[n->nrefs - 1], false);
    nodes_bump(n);
}
