/*
 * joblist.c - the job list (GET /api/v2/jobs): filters, order, paging,
 * rendered without the engine lock.
 *
 * A list of 100,000 jobs rendered under mu held every submission, agent
 * sync and scheduling pass behind it for as long as the JSON took (a
 * limit=50000 page ran past a client's 60 s timeout during a storm).  So
 * under mu a call only picks the rows it needs (step 1 below) and takes a
 * reference on each; sorting and rendering happen after unlocking.
 *
 * A row is an immutable copy of the fields a summary shows, filters on and
 * sorts by: a shallow lc_job_t (scalars copied; name, vc and tags pointing
 * into the row's own allocation; every other pointer NULL), so matches(),
 * the order and codec_render_summary() read it as they read the job.  The
 * job keeps a reference to the row the last list built (job->list_row);
 * a list reuses it while it is current (same version and fields) and
 * builds a new one otherwise, so a list under mu costs a pointer copy per
 * row in the steady state and one small allocation per job changed since
 * the last list.
 *
 *   1. mu held: the rows of the page's jobs and each running one's
 *      gpuIdleSince, which only memory knows (in submission order the page
 *      is the table's slice, in jobName order the name index's,
 *      table.byname: nameidx.h; in any other order its set is selected
 *      among compact keys of every match: "page selection" below).
 *   2. without mu: sort the page (selected orders), render it, let go of
 *      the rows.
 *
 * Invariants: a row never changes after it is built; its reference count
 * is atomic (the job's reference is dropped under mu, a list's without it,
 * in any order); the last reference frees it.  A row is the job as it was
 * when the list took it: the answer is the table at one instant, as when
 * the whole list ran under mu.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "engine/codec.h"
#include "engine/engine_int.h"

typedef struct list_row {
    atomic_uint refs;
    lc_job_t job; /* the summary's fields; the strings live below */
    char *tagv[]; /* job.tags, then the texts of name, vc and the tags */
} list_row_t;

static void row_put(list_row_t *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        free(r);
}

static list_row_t *row_get(list_row_t *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

/* Copy s to *p and advance it. */
static char *put_str(char **p, const char *s)
{
    size_t n = strlen(s) + 1;
    char *at = memcpy(*p, s, n);
    *p += n;
    return at;
}

static list_row_t *row_new(const lc_job_t *job)
{
    size_t size = sizeof(list_row_t) + (size_t)job->ntags * sizeof(char *);
    size += strlen(job->name) + strlen(job->vc) + 2;
    for (int t = 0; t < job->ntags; t++)
        size += strlen(job->tags[t]) + 1;
    list_row_t *r = xcalloc(1, size);
    atomic_init(&r->refs, 1);
    r->job = *job;
    /* only what a summary, a filter and the order read; never the rest */
    r->job.roles = NULL;
    r->job.atts = NULL;
    r->job.spans = NULL;
    r->job.waiting_reason = NULL;
    r->job.events = NULL;
    r->job.notify = NULL;
    r->job.list_row = NULL;
    char *p = (char *)&r->tagv[job->ntags];
    r->job.name = put_str(&p, job->name);
    r->job.vc = put_str(&p, job->vc);
    for (int t = 0; t < job->ntags; t++)
        r->tagv[t] = put_str(&p, job->tags[t]);
    r->job.tags = job->ntags ? r->tagv : NULL;
    return r;
}

/* Does row r still show job?  Every change that a summary shows bumps the
 * version (tags included); the scalars are compared too, in case a change
 * does not. */
static bool row_current(const lc_job_t *r, const lc_job_t *job)
{
    return r->version == job->version && r->state == job->state && r->retries == job->retries &&
           r->acc_retries == job->acc_retries && r->launch_ms == job->launch_ms &&
           r->complete_ms == job->complete_ms && r->has_exit == job->has_exit &&
           r->exit_code == job->exit_code && r->total_gpus == job->total_gpus &&
           r->total_tasks == job->total_tasks && r->nroles == job->nroles && r->prio == job->prio &&
           r->stop_requested == job->stop_requested && r->ntags == job->ntags;
}

/* A reference to job's current row (mu held). */
static list_row_t *row_of(engine_t *j, lc_job_t *job)
{
    engine_assert_locked(j);
    list_row_t *r = job->list_row;
    if (!r || !row_current(&r->job, job)) {
        row_put(r);
        job->list_row = r = row_new(job);
    }
    return row_get(r);
}

void engine_list_row_drop(lc_job_t *job)
{
    row_put(job->list_row);
    job->list_row = NULL;
}

/* ---------------------------------------------------------------- filters */

/* True when csv (comma-separated) contains s exactly. */
static bool csv_has(const char *csv, const char *s, size_t slen)
{
    for (const char *p = csv; *p;) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == slen && strncmp(p, s, n) == 0)
            return true;
        if (!c)
            break;
        p = c + 1;
    }
    return false;
}

static bool any_tag_in(const lc_job_t *job, const char *csv)
{
    for (int t = 0; t < job->ntags; t++)
        if (csv_has(csv, job->tags[t], strlen(job->tags[t])))
            return true;
    return false;
}

static bool matches(const lc_job_t *job, const engine_filter_t *f)
{
    if (f->username && !csv_has(f->username, job->name, job->user_len))
        return false;
    if (f->vc && !csv_has(f->vc, job->vc, strlen(job->vc)))
        return false;
    if (f->state) {
        const char *st = lc_job_state_name(job->state);
        if (!csv_has(f->state, st, strlen(st)))
            return false;
    }
    if (f->job_priority) {
        const char *p = codec_prio_name(job->prio);
        bool def = job->prio == 2 && csv_has(f->job_priority, "default", 7);
        if (!def && !csv_has(f->job_priority, p, strlen(p)))
            return false;
    }
    if (f->keyword && !strstr(job->name, f->keyword) && !strstr(job->vc, f->keyword))
        return false;
    if (f->tags_contain && !any_tag_in(job, f->tags_contain))
        return false;
    if (f->tags_not_contain && any_tag_in(job, f->tags_not_contain))
        return false;
    return true;
}

/* ---------------------------------------------------------------- order */

typedef enum {
    ORD_JOBNAME,
    ORD_SUBMISSION,
    ORD_USERNAME,
    ORD_VC,
    ORD_RETRIES,
    ORD_TASKS,
    ORD_GPUS,
    ORD_STATE,
    ORD_COMPLETION,
    ORD_PRIORITY,
} order_field_t;

static const char *const order_names[] = {
    "jobName",        "submissionTime",  "username",       "vc",
    "retries",        "totalTaskNumber", "totalGpuNumber", "state",
    "completionTime", "jobPriority",
};

typedef struct {
    order_field_t field;
    int desc;
} order_t;

static int64_t key_num(const lc_job_t *a, order_field_t field)
{
    switch (field) {
    case ORD_RETRIES:
        return a->retries;
    case ORD_TASKS:
        return a->total_tasks;
    case ORD_GPUS:
        return a->total_gpus;
    case ORD_STATE:
        return a->state;
    case ORD_COMPLETION:
        /* unfinished (no completion time) sorts after every finished job:
         * last with ASC, first with DESC, as the spec says */
        return a->complete_ms ? a->complete_ms : INT64_MAX;
    case ORD_PRIORITY:
        return -(int64_t)a->prio;
    default:
        return a->seq;
    }
}

/* One row of a list call: the row and its gpuIdleSince (0: not idle). */
typedef struct {
    list_row_t *row;
    int64_t idle_since;
} pick_t;

static int cmp_picks(const void *pa, const void *pb, void *ctx)
{
    const order_t *o = ctx;
    const lc_job_t *a = &((const pick_t *)pa)->row->job, *b = &((const pick_t *)pb)->row->job;
    int c = 0;
    if (o->field == ORD_JOBNAME)
        c = strcmp(a->name + a->user_len + 1, b->name + b->user_len + 1);
    else if (o->field == ORD_USERNAME) {
        c = strncmp(a->name, b->name, a->user_len < b->user_len ? a->user_len : b->user_len);
        if (c == 0) /* "al" before "alice" */
            c = (a->user_len > b->user_len) - (a->user_len < b->user_len);
    } else if (o->field == ORD_VC)
        c = strcmp(a->vc, b->vc);
    else {
        int64_t x = key_num(a, o->field), y = key_num(b, o->field);
        c = x < y ? -1 : x > y;
    }
    if (c == 0)
        c = a->seq < b->seq ? -1 : a->seq > b->seq;
    return o->desc ? -c : c;
}

static pai_err_t parse_order(const char *order, order_t *o, pai_error_t *e)
{
    o->field = ORD_SUBMISSION;
    o->desc = 1;
    if (!order || !*order)
        return PAI_OK;
    const char *comma = strchr(order, ',');
    size_t n = comma ? (size_t)(comma - order) : strlen(order);
    size_t k;
    for (k = 0; k < ARRAY_LEN(order_names); k++)
        if (strlen(order_names[k]) == n && strncmp(order, order_names[k], n) == 0)
            break;
    if (k == ARRAY_LEN(order_names))
        return pai_error_set(e, PAI_E_INVALID, "order: unknown field '%.*s'", (int)n, order);
    o->field = (order_field_t)k;
    o->desc = !comma || strcasecmp(comma + 1, "ASC") != 0;
    if (comma && strcasecmp(comma + 1, "ASC") != 0 && strcasecmp(comma + 1, "DESC") != 0)
        return pai_error_set(e, PAI_E_INVALID, "order: direction must be ASC or DESC");
    return PAI_OK;
}

/* ---------------------------------------------------------------- list */

/* What step 1 takes: picks[0..n) and how many jobs match in all (only
 * counted to the end when the answer shows it). */
typedef struct {
    pick_t *picks;
    size_t n, cap;
    size_t total;
} picked_t;

static void pick(engine_t *j, picked_t *p, lc_job_t *job, int64_t now)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 256;
        p->picks = xrealloc(p->picks, p->cap * sizeof(*p->picks));
    }
    p->picks[p->n].row = row_of(j, job);
    p->picks[p->n++].idle_since = engine_gpu_idle_since(j, job, now);
}

/* ---------------------------------------------------------------- page selection */

/*
 * In an order the table does not keep (any but submission and jobName),
 * the page is not known before every match is ordered.  Referencing every match's row under mu (to
 * sort them after) held it for a row check, an atomic increment and the idle figure per match, and
 * built a row for every job changed since the last list. Instead each match gets a compact key
 * under mu (16 bytes of order key and seq, and the job), the page's set is selected among them in
 * linear time (two quickselects: ranks [offset, offset + limit)), and only the page's rows are
 * referenced; they are sorted after unlocking, so the answer is the same page of the same instant.
 *
 * A key orders as the full comparison (cmp_picks) does: k is the field as
 * an unsigned number (a signed one with its sign bit flipped; a text's
 * first 8 bytes, big-endian, zero-padded, which orders as strcmp does),
 * then, for a text, the text itself when both first 8 bytes are equal,
 * then seq; DESC reverses it all.
 */
typedef struct {
    uint64_t k, seq;
    lc_job_t *job;
} sel_key_t;

/* The text a text field orders by, and its length; NULL for a number
 * (jobName: never selected, the name index keeps its order). */
static const char *key_text(const lc_job_t *job, order_field_t f, size_t *len)
{
    if (f == ORD_USERNAME)
        return *len = job->user_len, job->name;
    if (f == ORD_VC)
        return *len = strlen(job->vc), job->vc;
    return NULL;
}

static uint64_t key_of(const lc_job_t *job, order_field_t f)
{
    size_t len = 0;
    const char *t = key_text(job, f, &len);
    if (!t)
        return (uint64_t)key_num(job, f) ^ (1ull << 63);
    uint64_t k = 0;
    for (size_t i = 0; i < 8; i++)
        k = k << 8 | (i < len ? (unsigned char)t[i] : 0);
    return k;
}

/* The full order of two keys (mu held: texts are read from the jobs). */
static int cmp_keys(const sel_key_t *a, const sel_key_t *b, const order_t *o)
{
    int c = a->k < b->k ? -1 : a->k > b->k;
    size_t la = 0, lb = 0;
    const char *ta = c == 0 ? key_text(a->job, o->field, &la) : NULL;
    if (ta) {
        const char *tb = key_text(b->job, o->field, &lb);
        c = strncmp(ta, tb, la < lb ? la : lb);
        if (c == 0)
            c = (la > lb) - (la < lb);
    }
    if (c == 0)
        c = a->seq < b->seq ? -1 : a->seq > b->seq;
    return o->desc ? -c : c;
}

static void key_swap(sel_key_t *a, sel_key_t *b)
{
    sel_key_t t = *a;
    *a = *b;
    *b = t;
}

/* Reorder v[lo, hi) so that v[kth] is the key of that rank, those before
 * it rank lower and those after higher (keys are distinct: seq).  Pivots
 * drawn by a xorshift, so a presorted table is no worst case. */
static void select_kth(sel_key_t *v, size_t lo, size_t hi, size_t kth, const order_t *o)
{
    uint64_t rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)hi;
    while (hi - lo > 1) {
        rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
        key_swap(&v[lo + (size_t)(rnd % (hi - lo))], &v[hi - 1]);
        size_t store = lo;
        for (size_t i = lo; i < hi - 1; i++)
            if (cmp_keys(&v[i], &v[hi - 1], o) < 0)
                key_swap(&v[i], &v[store++]);
        key_swap(&v[store], &v[hi - 1]);
        if (kth == store)
            return;
        if (kth < store)
            hi = store;
        else
            lo = store + 1;
    }
}

/* Does the table keep order o (a walk of it is the answer's order)? */
static bool indexed(const order_t *o)
{
    return o->field == ORD_SUBMISSION || o->field == ORD_JOBNAME;
}

/* Job i of the table's walk in indexed order o (it: the name index's
 * place; i counts from 0 up by one). */
static lc_job_t *walk(engine_t *j, const order_t *o, size_t i, nameidx_it_t *it)
{
    if (o->field == ORD_JOBNAME)
        return nameidx_walk(j->table.byname, it, o->desc);
    return j->table.list[o->desc ? j->table.nlist - 1 - i : i];
}

/* Step 1 (mu held).  In an order the table keeps, a walk of it is the
 * answer's order, so only the page's rows are taken (and, without
 * withTotalCount, the walk ends with the page); in any other order every
 * match gets a key, and the page's rows are taken once their set is
 * selected. */
static void pick_rows(engine_t *j, const engine_filter_t *f, const order_t *o, int64_t limit,
                      picked_t *p)
{
    engine_assert_locked(j);
    int64_t now = engine_now_ms(j);
    size_t n = j->table.nlist;
    bool walked = indexed(o);
    sel_key_t *keys = walked ? NULL : xmalloc((n ? n : 1) * sizeof(*keys));
    nameidx_it_t it = {0};
    for (size_t i = 0; i < n; i++) {
        lc_job_t *job = walked ? walk(j, o, i, &it) : j->table.list[i];
        if (!matches(job, f))
            continue;
        int64_t k = (int64_t)p->total++;
        if (!walked)
            keys[k] = (sel_key_t){key_of(job, o->field), job->seq, job};
        else if (k >= f->offset && k - f->offset < limit)
            pick(j, p, job, now);
        else if (k - f->offset >= limit && !f->with_total)
            break; /* the page is full and nobody asked for the total */
    }
    if (walked)
        return;
    size_t from = (size_t)(f->offset < (int64_t)p->total ? f->offset : (int64_t)p->total);
    size_t to =
        from + (size_t)(limit < (int64_t)(p->total - from) ? limit : (int64_t)(p->total - from));
    if (from > 0)
        select_kth(keys, 0, p->total, from, o);
    if (to < p->total)
        select_kth(keys, from, p->total, to, o);
    for (size_t k = from; k < to; k++)
        pick(j, p, keys[k].job, now);
    free(keys);
}

static void set_gpu_idle(json_t *o, int64_t since)
{
    if (!since)
        return;
    json_object_set_new(o, "gpuIdle", json_true());
    json_object_set_new(o, "gpuIdleSince", json_integer((json_int_t)since));
}

pai_err_t engine_list(engine_t *j, const engine_filter_t *f, json_t **out, pai_error_t *e)
{
    order_t o;
    pai_err_t rc = parse_order(f->order, &o, e);
    if (rc != PAI_OK)
        return rc;
    if (f->limit > 50000) /* OpenPAI's text (rest-server controllers/v2/job.js) */
        return pai_error_set(e, PAI_E_INVALID, "Limit exceeds max number %d.", 50000);
    if (f->offset < 0 || f->limit < 0)
        return pai_error_set(e, PAI_E_INVALID, "offset and limit must be >= 0");
    int64_t limit = f->limit ? f->limit : 5000;
    picked_t p = {0};
    engine_lock(j);
    pick_rows(j, f, &o, limit, &p);
    engine_unlock(j);
    if (j->ops.list_unlocked) /* a test's pause between the steps */
        j->ops.list_unlocked(j->ops.ud);
    /* picks are the page's rows; in an indexed order, in the page's order */
    if (!indexed(&o) && p.n > 1)
        qsort_r(p.picks, p.n, sizeof(*p.picks), cmp_picks, &o);
    json_t *data = json_array();
    for (size_t k = 0; k < p.n; k++) {
        json_t *s = codec_render_summary(&p.picks[k].row->job);
        set_gpu_idle(s, p.picks[k].idle_since);
        json_array_append_new(data, s);
    }
    for (size_t k = 0; k < p.n; k++)
        row_put(p.picks[k].row);
    free(p.picks);
    *out = f->with_total ? xjson_pack("{sI so}", "totalCount", (json_int_t)p.total, "data", data)
                         : data;
    return PAI_OK;
}
