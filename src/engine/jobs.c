/*
 * jobs.c - the job changes behind the REST API: the owner check, stop
 * (executionType), tags, delete.  Submission is in submit.c, the queries
 * in queries.c.
 *
 * Invariants: a pending job is never changed; a change the caller asked
 * for is acknowledged only once flushed to the store (else the error says
 * it is in memory only); a compacted job's tags are changed in its stored
 * record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "protocol/job.h"
#include "sched/sched.h"
#include "engine/codec.h"
#include "engine/engine_int.h"

/* ---------------------------------------------------------------- changes */

bool engine_owner_check(engine_t *j, const char *name, const char *user, int64_t user_since_ms,
                        bool *is_owner)
{
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    bool found = job && !job->pending;
    *is_owner = found && user && strlen(user) == job->user_len &&
                strncmp(job->name, user, job->user_len) == 0 && job->submit_ms >= user_since_ms;
    engine_unlock(j);
    return found;
}

/* A failed flush after a change the caller asked for: the change stays in
 * memory (dirty, retried by the timer) but was not acknowledged durable. */
static pai_err_t flush_for(engine_t *j, const char *name, pai_error_t *e)
{
    pai_err_t rc = engine_flush(j);
    if (rc != PAI_OK)
        pai_error_set(e, rc, "job %s changed but could not be persisted: %s", name,
                      pai_err_msg(rc));
    return rc;
}

/* executionType STOP (mu held). */
static void stop_job(engine_t *j, lc_job_t *job, int64_t now)
{
    engine_assert_locked(j);
    lc_effects_t fx = {0};
    bool was_waiting = job->state == JOB_WAITING;
    lc_stop(job, now, &fx);
    if (was_waiting && job->queued) {
        engine_sched_forget(j, job->name);
        job->queued = false;
        j->pass.need = true;
    }
    if (!job->compacted)
        engine_event(j, job, "Normal", "StopRequested", "executionType STOP", now);
    engine_apply(j, job, &fx, now);
    engine_kick(j);
}

pai_err_t engine_set_execution(engine_t *j, const char *name, bool stop, pai_error_t *e)
{
    int64_t now = engine_now_ms(j);
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    bool found = job && !job->pending;
    if (found && stop)
        stop_job(j, job, now);
    /* START of an existing job: OpenPAI restarts nothing either; accepted. */
    engine_unlock(j);
    if (!found)
        return pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    return flush_for(j, name, e);
}

/* Tags of a compacted job: read-modify-write its stored record. */
static pai_err_t tag_stored(engine_t *j, const char *name, const char *tag, bool add)
{
    engine_assert_unlocked(j);
    char *text = NULL;
    pai_err_t rc = store_get(j->st, "job", name, &text);
    if (rc != PAI_OK)
        return rc;
    json_t *rec = json_loads(text, 0, NULL);
    free(text);
    if (!rec)
        return PAI_E_INTERNAL;
    json_t *tags = json_object_get(rec, "tags");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(rec, "tags", tags);
    }
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v)
    {
        if (strcmp(json_string_value(v), tag) == 0)
            break;
    }
    if (add && i == json_array_size(tags))
        json_array_append_new(tags, json_string(tag));
    if (!add && i < json_array_size(tags))
        json_array_remove(tags, i);
    text = xjson_dumps(rec, JSON_COMPACT);
    int64_t seq = json_integer_value(json_object_get(rec, "seq"));
    json_decref(rec);
    rc = store_put(j->st, "job", name, seq, text);
    free(text);
    return rc;
}

pai_err_t engine_tag(engine_t *j, const char *name, const char *tag, bool add, pai_error_t *e)
{
    engine_flush_lock(j);
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    pai_err_t rc = PAI_OK;
    bool stored = false;
    if (!job || job->pending)
        rc = pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    else if (!add && !lc_has_tag(job, tag))
        rc = pai_error_set(e, PAI_E_NO_TAG, PAI_MSG_NO_TAG, tag, name);
    else {
        if (add)
            lc_add_tag(job, tag);
        else
            (void)lc_del_tag(job, tag);
        stored = job->compacted;
        if (!stored)
            engine_mark_dirty(j, job);
    }
    engine_unlock(j);
    if (rc == PAI_OK && stored && (rc = tag_stored(j, name, tag, add)) != PAI_OK)
        pai_error_set(e, rc, "cannot update the stored tags of job %s: %s", name, pai_err_msg(rc));
    engine_flush_unlock(j);
    if (rc == PAI_OK && !stored)
        rc = flush_for(j, name, e);
    return rc;
}

pai_err_t engine_delete(engine_t *j, const char *name, pai_error_t *e)
{
    engine_flush_lock(j);
    engine_lock(j);
    lc_job_t *job = engine_map_get(j, name);
    pai_err_t rc = PAI_OK;
    if (!job || job->pending)
        rc = pai_error_set(e, PAI_E_NO_JOB, PAI_MSG_NO_JOB, name);
    else if (!lc_job_state_final(job->state))
        rc = pai_error_set(e, PAI_E_INVALID, "job %s has not finished: stop it first", name);
    else
        engine_table_remove(j, job);
    engine_unlock(j);
    if (rc == PAI_OK) {
        store_op_t ops[4] = {{STORE_OP_DEL, "job", name, 0, NULL},
                             {STORE_OP_DEL, "jobcfg", name, 0, NULL},
                             {STORE_OP_DEL, "jobcmd", name, 0, NULL},
                             {STORE_OP_DEL, "jobssh", name, 0, NULL}};
        engine_assert_unlocked(j);
        rc = store_batch(j->st, ops, 4);
        if (rc == PAI_E_NOT_FOUND) /* some of its records were never written */
            rc = PAI_OK;
        if (rc == PAI_OK)
            rc = engine_events_delete(j, name);
        if (rc != PAI_OK)
            pai_error_set(e, rc,
                          "job %s is deleted in memory but its records remain in the "
                          "store: %s",
                          name, pai_err_msg(rc));
        lc_job_free(job);
    }
    engine_flush_unlock(j);
    return rc;
}
