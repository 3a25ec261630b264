/*
 * accounting.c - GPU-hours held versus used, per VC, user and job, over a
 * period (GET /api/v2/usage, `pai usage`), and the idle-GPU flag of running
 * jobs (docs/monitoring.md, "Utilization").
 *
 * Held: every task attempt that held GPUs counts its GPU count times the
 * part of [placement, completion] inside the period (still running: until
 * now).  Used: the utilization its node reports for those GPUs in every
 * sync, integrated over the time between syncs (engine_usage_sample), kept
 * per task attempt (used_gpu_ms, stored with the job record, so it survives
 * restarts) and, for a finished job, in its compact spans (lc_job_compact).
 * A span crossing a period boundary counts the share of its used
 * GPU-time proportional to the share of its holding time inside.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "common/util.h"
#include "engine/engine_int.h"

/* A gap between two syncs longer than this (an agent away) counts only
 * this long: utilization is not assumed across an outage. */
#define USAGE_MAX_GAP_MS (120 * 1000)
#define IDLE_DEFAULT_MS  (30 * 60 * 1000)

/* Mean utilization node n reports for the GPUs in mask; false when none reports one. */
static bool mask_util(const engine_node_t *n, uint64_t mask, double *util)
{
    double sum = 0;
    int cnt = 0;
    size_t i;
    json_t *o;
    json_array_foreach(n->gpus, i, o)
    {
        json_int_t idx = json_integer_value(json_object_get(o, "index"));
        json_t *u = json_object_get(o, "utilization");
        if (idx >= 0 && idx < 64 && (mask & (1ull << idx)) && json_is_number(u)) {
            sum += json_number_value(u);
            cnt++;
        }
    }
    if (cnt)
        *util = sum / cnt;
    return cnt > 0;
}

/* engine_usage_sample's accounting of one report. */
static void sample(engine_t *j, const engine_node_t *n, lc_job_t *job, lc_task_attempt_t *ta,
                   int64_t now)
{
    double util = 0;
    if (!ta->gpus || ta->state != TASK_RUNNING || !mask_util(n, ta->gpus, &util)) {
        ta->util_at_ms = 0;
        ta->idle_since_ms = 0;
        return;
    }
    if (ta->util_at_ms && now > ta->util_at_ms) {
        int64_t dt = now - ta->util_at_ms;
        if (dt > USAGE_MAX_GAP_MS)
            dt = USAGE_MAX_GAP_MS;
        ta->used_gpu_ms += llround(util / 100.0 * __builtin_popcountll(ta->gpus) * (double)dt);
        /* Stored with the job's next flush, at most once a minute per task. */
        if (now / 60000 != ta->util_at_ms / 60000)
            engine_mark_dirty(j, job);
    }
    ta->util_at_ms = now;
    if (util < j->opts.idle_gpu_util_pct) {
        if (!ta->idle_since_ms)
            ta->idle_since_ms = now;
    } else {
        ta->idle_since_ms = 0;
    }
}

/* Since when every running GPU task of job's current attempt has been
 * idle, however briefly; 0 when one is busy (or reports nothing), or none
 * runs. */
static int64_t idle_from(const lc_job_t *job)
{
    const lc_attempt_t *a = job->state == JOB_RUNNING ? lc_current(job) : NULL;
    if (!a || !a->tasks)
        return 0;
    int64_t since = 0;
    for (int r = 0; r < job->nroles; r++)
        for (int i = 0; a->tasks[r] && i < job->roles[r].instances; i++) {
            const lc_task_t *t = &a->tasks[r][i];
            const lc_task_attempt_t *ta = t->natts ? &t->atts[t->natts - 1] : NULL;
            if (!ta || !ta->gpus || ta->state != TASK_RUNNING)
                continue;
            if (!ta->idle_since_ms)
                return 0; /* one task uses its GPUs (or reports nothing) */
            if (ta->idle_since_ms > since)
                since = ta->idle_since_ms;
        }
    return since;
}

void engine_usage_sample(engine_t *j, const engine_node_t *n, lc_job_t *job, lc_task_attempt_t *ta,
                         int64_t now)
{
    engine_assert_locked(j);
    sample(j, n, job, ta, now);
    /* for reads without mu (snaps.c): every report, since a task's start
     * or end changes the job's figure too (one hash lookup) */
    engine_snap_idle(j, job, idle_from(job));
}

int64_t engine_gpu_idle_due(const engine_t *j, int64_t since, int64_t now)
{
    int64_t need = j->opts.idle_gpu_ms > 0 ? j->opts.idle_gpu_ms : IDLE_DEFAULT_MS;
    return since && now - since >= need ? since : 0;
}

int64_t engine_gpu_idle_since(const engine_t *j, const lc_job_t *job, int64_t now)
{
    return engine_gpu_idle_due(j, idle_from(job), now);
}

void usage_span_add(usage_sum_t *sum, const lc_span_t *s, int64_t from, int64_t to, int64_t now)
{
    int64_t end = s->to_ms ? s->to_ms : now;
    int64_t lo = s->from_ms > from ? s->from_ms : from;
    int64_t hi = end < to ? end : to;
    if (hi <= lo || end <= s->from_ms)
        return;
    double share = (double)(hi - lo) / (double)(end - s->from_ms);
    sum->held_gpu_ms += (double)s->gpus * (double)(hi - lo);
    sum->used_gpu_ms += (double)s->used_gpu_ms * share;
}

typedef struct {
    usage_sum_t sum;
    const lc_job_t *job; /* groupBy job: its row's job */
} row_t;

typedef struct {
    usage_sum_t *sum;
    int64_t from, to, now;
} span_ctx_t;

static void span_cb(void *ud, const lc_span_t *s)
{
    span_ctx_t *c = ud;
    usage_span_add(c->sum, s, c->from, c->to, c->now);
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *hours(double gpu_ms)
{
    return json_real(round(gpu_ms / 3600e3 * 1e4) / 1e4);
}

static json_t *ratio(const usage_sum_t *s)
{
    return s->held_gpu_ms > 0 ? json_real(round(s->used_gpu_ms / s->held_gpu_ms * 1e4) / 1e4)
                              : json_null();
}

json_t *engine_usage_json(engine_t *j, int64_t from, int64_t to, const char *group_by,
                          const char *user)
{
    enum {
        BY_VC,
        BY_USER,
        BY_JOB
    } by = strcmp(group_by, "user") == 0  ? BY_USER
           : strcmp(group_by, "job") == 0 ? BY_JOB
                                          : BY_VC;
    strmap_t *rows = strmap_new(free);
    usage_sum_t total = {0};
    size_t ulen = user ? strlen(user) : 0;
    json_t *out = json_object();
    engine_lock(j);
    int64_t now = engine_now_ms(j);
    for (size_t k = 0; k < j->table.nlist; k++) {
        const lc_job_t *job = j->table.list[k];
        if (user && (job->user_len != ulen || strncmp(job->name, user, ulen) != 0))
            continue;
        if (job->submit_ms >= to || (job->complete_ms && job->complete_ms <= from))
            continue;
        usage_sum_t sum = {0};
        span_ctx_t c = {.sum = &sum, .from = from, .to = to, .now = now};
        lc_job_spans(job, span_cb, &c);
        if (sum.held_gpu_ms <= 0 && sum.used_gpu_ms <= 0)
            continue;
        char key[PAI_MAX_NAME * 2 + 2];
        if (by == BY_VC)
            snprintf(key, sizeof key, "%s", job->vc ? job->vc : "");
        else if (by == BY_USER)
            snprintf(key, sizeof key, "%.*s", (int)job->user_len, job->name);
        else
            snprintf(key, sizeof key, "%s", job->name);
        row_t *row = strmap_get(rows, key);
        if (!row) {
            row = xcalloc(1, sizeof(*row));
            if (strmap_put(rows, key, row) != PAI_OK) {
                free(row);
                continue;
            }
        }
        row->job = job;
        row->sum.held_gpu_ms += sum.held_gpu_ms;
        row->sum.used_gpu_ms += sum.used_gpu_ms;
        total.held_gpu_ms += sum.held_gpu_ms;
        total.used_gpu_ms += sum.used_gpu_ms;
    }
    size_t n = strmap_count(rows), it = 0, m = 0;
    const char **keys = xcalloc(n + 1, sizeof(*keys));
    while (strmap_next(rows, &it, &keys[m], NULL))
        m++;
    qsort(keys, m, sizeof(*keys), cmp_keys);
    json_t *arr = json_array();
    for (size_t i = 0; i < m; i++) {
        const row_t *row = strmap_get(rows, keys[i]);
        json_t *o = json_object();
        if (by == BY_JOB) {
            const lc_job_t *job = row->job;
            json_object_set_new(o, "job", json_string(keys[i]));
            json_object_set_new(o, "user", json_stringn(job->name, job->user_len));
            json_object_set_new(o, "vc", json_string(job->vc ? job->vc : ""));
            json_object_set_new(o, "state", json_string(lc_job_state_name(job->state)));
            int64_t idle = engine_gpu_idle_since(j, job, now);
            json_object_set_new(o, "gpuIdle", json_boolean(idle != 0));
        } else {
            json_object_set_new(o, by == BY_VC ? "vc" : "user", json_string(keys[i]));
        }
        json_object_set_new(o, "heldGpuHours", hours(row->sum.held_gpu_ms));
        json_object_set_new(o, "usedGpuHours", hours(row->sum.used_gpu_ms));
        json_object_set_new(o, "utilization", ratio(&row->sum));
        json_array_append_new(arr, o);
    }
    engine_unlock(j);
    free(keys);
    strmap_free(rows);
    json_object_set_new(out, "from", json_integer(from));
    json_object_set_new(out, "to", json_integer(to));
    json_object_set_new(out, "groupBy",
                        json_string(by == BY_VC     ? "vc"
                                    : by == BY_USER ? "user"
                                                    : "job"));
    json_object_set_new(out, "rows", arr);
    json_t *tot = json_object();
    json_object_set_new(tot, "heldGpuHours", hours(total.held_gpu_ms));
    json_object_set_new(tot, "usedGpuHours", hours(total.used_gpu_ms));
    json_object_set_new(tot, "utilization", ratio(&total));
    json_object_set_new(out, "total", tot);
    return out;
}
