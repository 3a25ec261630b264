/*
 * codec_text.c - a job's stored record as text (codec_job_text), written
 * straight into one buffer (common/jtext.h) instead of a jansson tree
 * built and dumped at every transition.
 *
 * Invariant: the bytes are json_dumps(codec_job_encode(job), JSON_COMPACT)
 * (codec.c keeps the tree; test_codec_text compares the two on random jobs
 * through their lives): the same keys in the same order, integers as
 * jansson writes them, every string escaped by jansson.  What never
 * changes (the name and VC, the roles) is encoded once and kept in
 * job->enc_static; each record re-encodes only the status, the attempts
 * and the tail.
 */
#include <stdlib.h>
#include <string.h>

#include "common/jtext.h"
#include "common/util.h"
#include "engine/codec.h"

static void role_text(jtext_t *t, const lc_role_t *r)
{
    JTEXT_LIT(t, "{\"name\":");
    jtext_str(t, r->name);
    JTEXT_LIT(t, ",\"instances\":");
    jtext_int(t, r->instances);
    JTEXT_LIT(t, ",\"gpu\":");
    jtext_int(t, r->gpu);
    JTEXT_LIT(t, ",\"cpu\":");
    jtext_int(t, r->cpu);
    JTEXT_LIT(t, ",\"mem\":");
    jtext_int(t, r->mem_mb);
    JTEXT_LIT(t, ",\"shm\":");
    jtext_int(t, r->shm_mb);
    JTEXT_LIT(t, ",\"minFailed\":");
    jtext_int(t, r->min_failed);
    JTEXT_LIT(t, ",\"minSucceeded\":");
    jtext_int(t, r->min_succeeded);
    JTEXT_LIT(t, ",\"ports\":[");
    for (int p = 0; p < r->nports; p++) {
        if (p)
            JTEXT_LIT(t, ",");
        JTEXT_LIT(t, "[");
        jtext_str(t, r->ports[p].label);
        JTEXT_LIT(t, ",");
        jtext_int(t, r->ports[p].count);
        JTEXT_LIT(t, "]");
    }
    JTEXT_LIT(t, "],\"sku\":");
    jtext_str(t, r->sku);
    JTEXT_LIT(t, ",\"pinned\":");
    jtext_str(t, r->pinned);
    if (r->group) { /* only when set, as codec_job_encode */
        JTEXT_LIT(t, ",\"group\":");
        jtext_str(t, r->group);
    }
    if (r->within) {
        JTEXT_LIT(t, ",\"within\":");
        jtext_str(t, r->within);
    }
    JTEXT_LIT(t, "}");
}

/* The parts that never change: `"name":..,"vc":..` NUL `[roles]` NUL. */
static char *static_text(const lc_job_t *job)
{
    jtext_t t;
    jtext_init(&t, 256);
    JTEXT_LIT(&t, "\"name\":");
    jtext_str(&t, job->name);
    JTEXT_LIT(&t, ",\"vc\":");
    jtext_str(&t, job->vc);
    jtext_raw(&t, "", 1);
    JTEXT_LIT(&t, "[");
    for (int r = 0; r < job->nroles; r++) {
        if (r)
            JTEXT_LIT(&t, ",");
        role_text(&t, &job->roles[r]);
    }
    JTEXT_LIT(&t, "]");
    return jtext_take(&t);
}

static void task_attempt_text(jtext_t *t, const lc_task_attempt_t *ta)
{
    JTEXT_LIT(t, "{\"i\":");
    jtext_int(t, ta->index);
    JTEXT_LIT(t, ",\"s\":");
    jtext_int(t, ta->state);
    JTEXT_LIT(t, ",\"exit\":");
    jtext_int_or_null(t, ta->has_exit, ta->exit_code);
    JTEXT_LIT(t, ",\"node\":");
    jtext_str(t, ta->node);
    JTEXT_LIT(t, ",\"ip\":");
    jtext_str(t, ta->ip);
    JTEXT_LIT(t, ",\"gpus\":");
    jtext_int(t, (int64_t)ta->gpus);
    JTEXT_LIT(t, ",\"ports\":[");
    for (int p = 0; p < ta->nports; p++) {
        if (p)
            JTEXT_LIT(t, ",");
        jtext_int(t, ta->ports[p]);
    }
    JTEXT_LIT(t, "],\"c\":");
    jtext_int(t, ta->created_ms);
    JTEXT_LIT(t, ",\"l\":");
    jtext_int(t, ta->launched_ms);
    JTEXT_LIT(t, ",\"f\":");
    jtext_int(t, ta->completed_ms);
    JTEXT_LIT(t, ",\"diag\":");
    jtext_str(t, ta->diag);
    if (ta->used_gpu_ms) {
        JTEXT_LIT(t, ",\"u\":");
        jtext_int(t, ta->used_gpu_ms);
    }
    if (ta->cell) {
        JTEXT_LIT(t, ",\"cell\":");
        jtext_str(t, ta->cell);
    }
    JTEXT_LIT(t, "}");
}

static void tasks_text(jtext_t *t, const lc_job_t *job, const lc_attempt_t *a)
{
    JTEXT_LIT(t, "[");
    for (int r = 0; r < job->nroles; r++) {
        if (r)
            JTEXT_LIT(t, ",");
        JTEXT_LIT(t, "[");
        for (int i = 0; i < job->roles[r].instances; i++) {
            const lc_task_t *k = &a->tasks[r][i];
            if (i)
                JTEXT_LIT(t, ",");
            JTEXT_LIT(t, "{\"retries\":");
            jtext_int(t, k->retries);
            JTEXT_LIT(t, ",\"atts\":[");
            for (int n = 0; n < k->natts; n++) {
                if (n)
                    JTEXT_LIT(t, ",");
                task_attempt_text(t, &k->atts[n]);
            }
            JTEXT_LIT(t, "]}");
        }
        JTEXT_LIT(t, "]");
    }
    JTEXT_LIT(t, "]");
}

static void attempt_text(jtext_t *t, const lc_job_t *job, const lc_attempt_t *a)
{
    JTEXT_LIT(t, "{\"index\":");
    jtext_int(t, a->index);
    JTEXT_LIT(t, ",\"state\":");
    jtext_int(t, a->state);
    JTEXT_LIT(t, ",\"completing\":");
    jtext_bool(t, a->completing);
    JTEXT_LIT(t, ",\"c\":");
    jtext_int(t, a->created_ms);
    JTEXT_LIT(t, ",\"l\":");
    jtext_int(t, a->launched_ms);
    JTEXT_LIT(t, ",\"f\":");
    jtext_int(t, a->completed_ms);
    JTEXT_LIT(t, ",\"exit\":");
    jtext_int_or_null(t, a->has_exit, a->exit_code);
    JTEXT_LIT(t, ",\"triggerRole\":");
    jtext_str(t, a->trigger_role);
    JTEXT_LIT(t, ",\"triggerIndex\":");
    jtext_int(t, a->trigger_index);
    JTEXT_LIT(t, ",\"triggerMsg\":");
    jtext_str(t, a->trigger_msg);
    JTEXT_LIT(t, ",\"diag\":");
    jtext_str(t, a->diag);
    JTEXT_LIT(t, ",\"tasks\":");
    tasks_text(t, job, a);
    JTEXT_LIT(t, "}");
}

/* "v" .. "tags", the name and VC kept. */
static void head_text(jtext_t *t, const lc_job_t *job, const char *name_vc)
{
    JTEXT_LIT(t, "{\"v\":");
    jtext_int(t, JOBS_RECORD_VERSION);
    JTEXT_LIT(t, ",");
    jtext_raw(t, name_vc, strlen(name_vc));
    JTEXT_LIT(t, ",\"seq\":");
    jtext_int(t, job->seq);
    JTEXT_LIT(t, ",\"state\":");
    jtext_int(t, job->state);
    JTEXT_LIT(t, ",\"prio\":");
    jtext_int(t, job->prio);
    JTEXT_LIT(t, ",\"stop\":");
    jtext_bool(t, job->stop_requested);
    JTEXT_LIT(t, ",\"gang\":");
    jtext_bool(t, job->gang);
    JTEXT_LIT(t, ",\"retries\":");
    jtext_int(t, job->retries);
    JTEXT_LIT(t, ",\"accRetries\":");
    jtext_int(t, job->acc_retries);
    JTEXT_LIT(t, ",\"jobRetryCount\":");
    jtext_int(t, job->job_retry_count);
    JTEXT_LIT(t, ",\"taskRetryCount\":");
    jtext_int(t, job->task_retry_count);
    JTEXT_LIT(t, ",\"submitMs\":");
    jtext_int(t, job->submit_ms);
    JTEXT_LIT(t, ",\"launchMs\":");
    jtext_int(t, job->launch_ms);
    JTEXT_LIT(t, ",\"completeMs\":");
    jtext_int(t, job->complete_ms);
    JTEXT_LIT(t, ",\"exit\":");
    jtext_int_or_null(t, job->has_exit, job->exit_code);
    JTEXT_LIT(t, ",\"totalTasks\":");
    jtext_int(t, (int)job->total_tasks);
    JTEXT_LIT(t, ",\"totalGpus\":");
    jtext_int(t, (int)job->total_gpus);
    JTEXT_LIT(t, ",\"tags\":[");
    for (int k = 0; k < job->ntags; k++) {
        if (k)
            JTEXT_LIT(t, ",");
        jtext_str(t, job->tags[k]);
    }
    JTEXT_LIT(t, "]");
}

/* "waitingReason" .. "notify" and the closing brace. */
static void tail_text(jtext_t *t, const lc_job_t *job)
{
    JTEXT_LIT(t, ",\"waitingReason\":");
    jtext_str(t, job->waiting_reason);
    JTEXT_LIT(t, ",\"retryAtMs\":");
    jtext_int(t, job->retry_at_ms);
    JTEXT_LIT(t, ",\"evNext\":");
    jtext_int(t, job->ev_next);
    if (job->lazy) /* only when set, as codec_job_encode */
        JTEXT_LIT(t, ",\"lazy\":true");
    if (job->oppo)
        JTEXT_LIT(t, ",\"oppo\":true");
    if (job->task_uid >= 0) {
        JTEXT_LIT(t, ",\"taskUid\":");
        jtext_int(t, job->task_uid);
    }
    if (job->notify) {
        JTEXT_LIT(t, ",\"notify\":{\"email\":");
        jtext_int(t, job->notify->email);
        JTEXT_LIT(t, ",\"hook\":");
        jtext_int(t, job->notify->hook);
        JTEXT_LIT(t, ",\"sent\":");
        jtext_int(t, job->notify->sent);
        JTEXT_LIT(t, ",\"url\":");
        jtext_str(t, job->notify->url);
        JTEXT_LIT(t, "}");
    }
    JTEXT_LIT(t, "}");
}

char *codec_job_text(lc_job_t *job)
{
    if (!job->enc_static) /* the name, the VC and the roles never change */
        job->enc_static = static_text(job);
    const char *name_vc = job->enc_static, *roles = name_vc + strlen(name_vc) + 1;
    size_t nroles = strlen(roles);
    jtext_t t;
    jtext_init(&t, 2 * (strlen(name_vc) + nroles) + 384 + 256 * (size_t)job->total_tasks);
    head_text(&t, job, name_vc);
    JTEXT_LIT(&t, ",\"roles\":");
    jtext_raw(&t, roles, nroles);
    JTEXT_LIT(&t, ",\"attempts\":[");
    for (int k = 0; job->atts && k < job->natts; k++) {
        if (k)
            JTEXT_LIT(&t, ",");
        attempt_text(&t, job, &job->atts[k]);
    }
    JTEXT_LIT(&t, "]");
    tail_text(&t, job);
    return jtext_take(&t);
}

char *codec_cmds_text(const lc_job_t *job)
{
    jtext_t t;
    jtext_init(&t, 256);
    JTEXT_LIT(&t, "{\"v\":");
    jtext_int(&t, JOBS_RECORD_VERSION);
    JTEXT_LIT(&t, ",\"roles\":[");
    for (int r = 0; r < job->nroles; r++) {
        const lc_role_t *role = &job->roles[r];
        if (r)
            JTEXT_LIT(&t, ",");
        JTEXT_LIT(&t, "{\"command\":");
        jtext_str(&t, role->command);
        JTEXT_LIT(&t, ",\"image\":");
        jtext_str(&t, role->image);
        JTEXT_LIT(&t, ",\"imageAuth\":");
        jtext_str(&t, role->image_auth);
        JTEXT_LIT(&t, ",\"mounts\":");
        jtext_str(&t, role->mounts);
        JTEXT_LIT(&t, "}");
    }
    JTEXT_LIT(&t, "]}");
    return jtext_take(&t);
}
