/*
 * events.c - job events (GET /api/v2/jobs/{name}/events): recorded in
 * memory under mu, persisted with the job's record, read back after a
 * restart, pruned by count and by age.
 *
 * DESIGN
 *   - Each event of a job has a number (0, 1, ...; lc_job_t.ev_next is the
 *     next one) and is one store record: kind "event", key
 *     "<job>/<number, 10 digits>" (job names have no '/', so a job's events
 *     are exactly the keys with the prefix "<job>/", in number order), seq
 *     = its lastTimestamp (so the age pruning scans oldest first), json =
 *     the event as kept in memory.
 *   - A repeated event (same reason and message as the last) counts up in
 *     place: its record is written again.  lc_job_t.ev_clean is the first
 *     number not yet durable as it is in memory; engine_flush writes the
 *     events from there with the job's record, in the same batch, and marks
 *     them clean when it encodes them (dirty again when the batch failed:
 *     engine_events_unflushed).
 *   - Count: a job keeps its last opts.events_per_job events, in memory
 *     and in the store (the flush that stores event k deletes event
 *     k - events_per_job).
 *   - Age (opts.event_retention_ms > 0): events whose lastTimestamp is
 *     older are not shown, and the timer thread deletes their records every
 *     PRUNE_EVERY_MS, in batches, without mu (store I/O only; never under
 *     the engine lock, so pruning never stops the API or the scheduler).
 *   - A finished (compacted) job's events live only in the store, and so do
 *     an active job's from before a restart: its record keeps the number of
 *     its next event ("evNext", codec.c), restore sets ev_base to it and
 *     reads no event (a restart or a takeover costs nothing per job), and
 *     a query reads those below ev_base without mu and appends the ones in
 *     memory.  A record without evNext (written before it existed) has its
 *     events read at restore instead.
 *   - Deleting a job deletes its events (flush_mu held, without mu).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jtext.h"
#include "common/log.h"
#include "common/limits.h"
#include "common/util.h"
#include "common/vec.h"
#include "engine/engine_int.h"

#define PRUNE_EVERY_MS (10 * 60 * 1000) /* age pruning, on the timer thread */
#define PRUNE_BATCH    1000             /* records deleted per store batch (one per timer tick) */

/* The record key of event k of job: "<job>/<k, 10 digits>". */
static void event_key(char *buf, size_t len, const char *job, uint32_t k)
{
    /* "%s/%010u" without printf (one per event stored); the callers' buf
     * (PAI_MAX_NAME * 2 + 32) holds any job name, which is cut otherwise */
    size_t n = strlen(job);
    if (len < 12) {
        if (len)
            buf[0] = '\0';
        return;
    }
    if (n + 12 > len)
        n = len - 12;
    memcpy(buf, job, n);
    buf[n] = '/';
    for (int d = 10; d > 0; d--, k /= 10)
        buf[n + (size_t)d] = (char)('0' + k % 10);
    buf[n + 11] = '\0';
}

int engine_events_per_job(const engine_t *j)
{
    return j->opts.events_per_job > 0 ? j->opts.events_per_job : ENGINE_EVENTS_PER_JOB;
}

/* Events last touched before this are past their retention (0: none is). */
static int64_t retention_cutoff(const engine_t *j)
{
    return j->opts.event_retention_ms > 0 ? engine_now_ms(j) - j->opts.event_retention_ms : 0;
}

/* One event as a job keeps it in memory: its record's fields but the
 * job's name (uid, frameworkName) and the source (sourceComponent), which
 * are the same for every event; strings as the record writes them (text
 * that is not valid UTF-8 with every byte above 0x7f as '?').  Kept as
 * fields, not as a jansson object: an event cost ~25 allocations (keys,
 * strings, integers) and a hash insertion per key, a dump at its flush and
 * as many frees at the job's compaction; now three strings, its record
 * written as text (ev_text) with the object's keys, order and bytes. */
typedef struct {
    char *type, *reason, *msg;
    int64_t first_ms, last_ms, count;
} ev_t;

/* lc_job_t.events: the job's last events, oldest first. */
typedef struct {
    ev_t *v;
    size_t n, cap;
} ev_list_t;

#define EV_SOURCE "pai-server"

/* s as the record keeps it: itself, or with every byte above 0x7f as '?'
 * when it is not valid UTF-8 (json_string refuses it), as jansson's text of
 * the event made with xstring() held it (malloc'ed). */
static char *ev_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p && *p < 0x80)
        p++;
    if (*p) { /* not ASCII: UTF-8? */
        json_t *v = json_string(s);
        if (!v)
            return jtext_ascii_copy(s, strlen(s));
        json_decref(v);
    }
    return xstrdup(s);
}

static void ev_clear(ev_t *e)
{
    free(e->type);
    free(e->reason);
    free(e->msg);
}

void engine_events_list_free(void *events)
{
    ev_list_t *l = events;
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        ev_clear(&l->v[i]);
    free(l->v);
    free(l);
}

/* The event's record: the bytes json_dumps(JSON_COMPACT) wrote for the
 * object event_json() builds (test_engine_events compares them). */
static char *ev_text(const char *name, const ev_t *e)
{
    jtext_t t;
    jtext_init(&t, 224 + 2 * strlen(name) + strlen(e->msg));
    JTEXT_LIT(&t, "{\"uid\":");
    jtext_str(&t, name);
    JTEXT_LIT(&t, ",\"frameworkName\":");
    jtext_str(&t, name);
    JTEXT_LIT(&t, ",\"type\":");
    jtext_str(&t, e->type);
    JTEXT_LIT(&t, ",\"reason\":");
    jtext_str(&t, e->reason);
    JTEXT_LIT(&t, ",\"message\":");
    jtext_str(&t, e->msg);
    JTEXT_LIT(&t, ",\"firstTimestamp\":");
    jtext_int(&t, e->first_ms);
    JTEXT_LIT(&t, ",\"lastTimestamp\":");
    jtext_int(&t, e->last_ms);
    JTEXT_LIT(&t, ",\"count\":");
    jtext_int(&t, e->count);
    JTEXT_LIT(&t, ",\"sourceComponent\":\"" EV_SOURCE "\"}");
    return jtext_take(&t);
}

/* s as a JSON string (s is kept valid UTF-8 by ev_str; a name that is not
 * is written with '?' as jtext_str writes it). */
static json_t *xstring(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    char *ascii = jtext_ascii_copy(s, strlen(s));
    v = json_string(ascii);
    free(ascii);
    if (!v)
        abort(); /* ASCII is UTF-8: cannot happen */
    return v;
}

/* The event as the API answers it: its keys set one by one, in the
 * record's order; uid and frameworkName share one string. */
static json_t *event_json(const char *name, const ev_t *ev)
{
    json_t *e = json_object(), *n = xstring(name);
    json_object_set_new_nocheck(e, "uid", n);
    json_object_set_nocheck(e, "frameworkName", n);
    json_object_set_new_nocheck(e, "type", xstring(ev->type));
    json_object_set_new_nocheck(e, "reason", xstring(ev->reason));
    json_object_set_new_nocheck(e, "message", xstring(ev->msg));
    json_object_set_new_nocheck(e, "firstTimestamp", json_integer(ev->first_ms));
    json_object_set_new_nocheck(e, "lastTimestamp", json_integer(ev->last_ms));
    json_object_set_new_nocheck(e, "count", json_integer(ev->count));
    json_object_set_new_nocheck(e, "sourceComponent", json_string(EV_SOURCE));
    return e;
}

json_t *engine_events_json(const lc_job_t *job)
{
    const ev_list_t *l = job->events;
    if (!l || job->compacted)
        return NULL;
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, event_json(job->name, &l->v[i]));
    return a;
}

void engine_event(engine_t *j, lc_job_t *job, const char *type, const char *reason, const char *msg,
                  int64_t now_ms)
{
    engine_assert_locked(j);
    /* A compacted job's events are in the store only; nothing happens to a
     * finished job that would add one. */
    if (job->compacted)
        return;
    ev_list_t *l = job->events;
    if (!l)
        job->events = l = xcalloc(1, sizeof(*l));
    char *r = ev_str(reason), *m = ev_str(msg);
    ev_t *last = l->n ? &l->v[l->n - 1] : NULL;
    if (last && strcmp(last->reason, r) == 0 && strcmp(last->msg, m) == 0) {
        last->count++;
        last->last_ms = now_ms;
        if (job->ev_clean > job->ev_next - 1)
            job->ev_clean = job->ev_next - 1;
        free(r);
        free(m);
        return;
    }
    size_t cap = (size_t)engine_events_per_job(j);
    while (l->n && l->n >= cap) {
        ev_clear(&l->v[0]);
        memmove(&l->v[0], &l->v[1], sizeof(ev_t) * (l->n - 1));
        l->n--;
    }
    VEC_XRESERVE(l->v, l->cap, l->n + 1);
    l->v[l->n++] = (ev_t){ev_str(type), r, m, now_ms, now_ms, 1};
    job->ev_next++;
}

/* ---------------------------------------------------------------- flush */

static void add_op(engine_batch_t *b, store_op_kind_t op, const char *key, int64_t seq, char *json)
{
    VEC_XRESERVE(b->ops, b->capops, b->n + 1);
    VEC_XRESERVE(b->texts, b->captexts, b->n + 1);
    VEC_XRESERVE(b->keys, b->capkeys, b->n + 1);
    b->texts[b->n] = json;
    b->keys[b->n] = xstrdup(key);
    b->ops[b->n] = (store_op_t){op, "event", b->keys[b->n], seq, json};
    b->n++;
}

uint32_t engine_events_encode(engine_t *j, lc_job_t *job, engine_batch_t *b)
{
    engine_assert_locked(j);
    uint32_t was = job->ev_clean, cap = (uint32_t)engine_events_per_job(j);
    const ev_list_t *l = job->events;
    size_t have = l ? l->n : 0;
    uint32_t first = job->ev_next - (uint32_t)have; /* number of v[0] */
    char key[PAI_MAX_NAME * 2 + 32];
    for (uint32_t k = was > first ? was : first; k < job->ev_next; k++) {
        const ev_t *e = &l->v[k - first];
        event_key(key, sizeof key, job->name, k);
        add_op(b, STORE_OP_PUT, key, e->last_ms, ev_text(job->name, e));
    }
    /* the events that fell out of the last `cap` since the last flush */
    for (uint32_t k = was; k < job->ev_next; k++)
        if (k >= cap) {
            event_key(key, sizeof key, job->name, k - cap);
            add_op(b, STORE_OP_DEL, key, 0, NULL);
        }
    job->ev_clean = job->ev_next;
    return was;
}

void engine_events_unflushed(lc_job_t *job, uint32_t was_clean)
{
    if (job->ev_clean > was_clean)
        job->ev_clean = was_clean;
}

void engine_batch_free(engine_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->texts[i]);
        free(b->keys[i]);
    }
    free(b->texts);
    free(b->keys);
    free(b->ops);
    memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------- read back */

typedef struct {
    json_t *events;   /* in number order */
    int64_t last_num; /* the highest number seen, -1: none */
    size_t keep;      /* the last `keep` events */
    int64_t below;    /* only numbers below this */
} loaded_t;

static int load_cb(void *ud, const char *key, int64_t seq, const char *text)
{
    loaded_t *l = ud;
    (void)seq;
    const char *slash = strrchr(key, '/');
    int64_t num;
    json_t *e = json_loads(text, 0, NULL);
    if (!slash || str_to_i64(slash + 1, 0, UINT32_MAX - 1, &num) != PAI_OK || !json_is_object(e)) {
        log_warn("event %s unreadable; skipped", key);
        json_decref(e);
        return 0;
    }
    if (num >= l->below) {
        json_decref(e);
        return 1; /* key order is number order: the rest are above too */
    }
    l->last_num = num;
    json_array_append_new(l->events, e);
    while (json_array_size(l->events) > l->keep)
        json_array_remove(l->events, 0);
    return 0;
}

/* The stored events of job `name` numbered below `below` (new reference;
 * NULL when the store failed), the last `keep`; *next gets the number after
 * the last. */
static json_t *read_events(engine_t *j, const char *name, size_t keep, int64_t below,
                           uint32_t *next)
{
    engine_assert_unlocked(j);
    char prefix[PAI_MAX_NAME * 2 + 4];
    snprintf(prefix, sizeof prefix, "%s/", name);
    loaded_t l = {json_array(), -1, keep, below};
    pai_err_t rc = store_scan_prefix(j->st, "event", prefix, load_cb, &l);
    if (rc != PAI_OK) {
        log_error("job=%s its events cannot be read: %s", name, pai_err_msg(rc));
        json_decref(l.events);
        return NULL;
    }
    *next = (uint32_t)(l.last_num + 1);
    return l.events;
}

void engine_events_restore(engine_t *j, lc_job_t *job)
{
    /* A record that says its next number leaves its events in the store
     * until asked for (engine_events_read): restore reads nothing, however
     * many jobs are active. */
    if (!job->ev_unknown)
        return;
    uint32_t next = 0;
    json_t *ev = read_events(j, job->name, (size_t)engine_events_per_job(j), INT64_MAX, &next);
    if (!ev)
        return;
    if (json_array_size(ev) == 0) {
        json_decref(ev);
        return;
    }
    /* as fields (a record of an older version written again as today's
     * when it counts up) */
    ev_list_t *l = xcalloc(1, sizeof(*l));
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        VEC_XRESERVE(l->v, l->cap, l->n + 1);
        l->v[l->n++] = (ev_t){xstrdup(type ? type : ""),
                              xstrdup(reason ? reason : ""),
                              xstrdup(msg ? msg : ""),
                              json_integer_value(json_object_get(e, "firstTimestamp")),
                              json_integer_value(json_object_get(e, "lastTimestamp")),
                              json_integer_value(json_object_get(e, "count"))};
    }
    json_decref(ev);
    engine_events_list_free(job->events);
    job->events = l;
    job->ev_next = job->ev_clean = next;
    job->ev_base = 0;
}

json_t *engine_events_read(engine_t *j, const char *name, json_t *mem, uint32_t below)
{
    uint32_t next;
    size_t keep = (size_t)engine_events_per_job(j);
    json_t *ev = read_events(j, name, keep, below, &next);
    if (!ev) {
        json_decref(mem);
        return NULL;
    }
    json_array_extend(ev, mem);
    json_decref(mem);
    while (json_array_size(ev) > keep)
        json_array_remove(ev, 0);
    return ev;
}

bool engine_event_shown(const engine_t *j, const json_t *e)
{
    int64_t cutoff = retention_cutoff(j);
    return !cutoff || json_integer_value(json_object_get(e, "lastTimestamp")) >= cutoff;
}

/* ---------------------------------------------------------------- delete, prune */

typedef struct {
    char **keys;
    size_t n, cap;
    int64_t before; /* prune: stop at the first record at or after this */
} collect_t;

static int collect_cb(void *ud, const char *key, int64_t seq, const char *text)
{
    collect_t *c = ud;
    (void)text;
    if (c->before && seq >= c->before)
        return 1;
    VEC_XRESERVE(c->keys, c->cap, c->n + 1);
    c->keys[c->n++] = xstrdup(key);
    return c->n >= PRUNE_BATCH;
}

/* Delete the collected records in one batch; frees the keys. */
static pai_err_t delete_collected(engine_t *j, collect_t *c)
{
    store_op_t *ops = xcalloc(c->n + 1, sizeof(*ops));
    for (size_t i = 0; i < c->n; i++)
        ops[i] = (store_op_t){STORE_OP_DEL, "event", c->keys[i], 0, NULL};
    pai_err_t rc = c->n ? store_batch(j->st, ops, c->n) : PAI_OK;
    for (size_t i = 0; i < c->n; i++)
        free(c->keys[i]);
    free(ops);
    c->n = 0;
    return rc;
}

pai_err_t engine_events_delete(engine_t *j, const char *name)
{
    engine_assert_unlocked(j);
    char prefix[PAI_MAX_NAME * 2 + 4];
    snprintf(prefix, sizeof prefix, "%s/", name);
    collect_t c = {0};
    pai_err_t rc;
    do {
        rc = store_scan_prefix(j->st, "event", prefix, collect_cb, &c);
        bool more = c.n >= PRUNE_BATCH;
        if (rc == PAI_OK)
            rc = delete_collected(j, &c);
        else
            (void)delete_collected(j, &c);
        if (!more)
            break;
    } while (rc == PAI_OK);
    free(c.keys);
    return rc;
}

size_t engine_events_prune(engine_t *j, int max_batches, bool *more)
{
    engine_assert_unlocked(j);
    int64_t cutoff = retention_cutoff(j);
    if (more)
        *more = false;
    if (!cutoff)
        return 0;
    collect_t c = {.before = cutoff};
    size_t pruned = 0;
    pai_err_t rc;
    for (int batch = 1;; batch++) {
        /* oldest first (seq = lastTimestamp): stops at the first kept one */
        rc = store_scan(j->st, "event", collect_cb, &c);
        size_t n = c.n;
        if (rc == PAI_OK)
            rc = delete_collected(j, &c);
        else
            (void)delete_collected(j, &c);
        if (rc != PAI_OK || n < PRUNE_BATCH) {
            pruned += rc == PAI_OK ? n : 0;
            break;
        }
        pruned += n;
        if (max_batches > 0 && batch >= max_batches) {
            if (more)
                *more = true;
            break;
        }
    }
    free(c.keys);
    if (rc != PAI_OK)
        log_error("pruning job events older than the retention failed: %s", pai_err_msg(rc));
    else if (pruned)
        log_info("pruned %zu job events older than the retention", pruned);
    return pruned;
}

void engine_events_prune_due(engine_t *j, int64_t mono_ms)
{
    /* events.next_prune_ms: the timer thread's alone (no lock) */
    if (j->opts.event_retention_ms <= 0 || mono_ms < j->events.next_prune_ms)
        return;
    /* one batch per tick: node loss and retries, also the timer's, never
     * wait for a long backlog */
    bool more = false;
    (void)engine_events_prune(j, 1, &more);
    j->events.next_prune_ms = mono_ms + (more ? 0 : PRUNE_EVERY_MS);
}
