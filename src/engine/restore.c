/*
 * restore.c - rebuilding the engine from the store at start-up: nodes,
 * then jobs; finished jobs are compacted, waiting ones requeued, running ones
 * restored into the scheduler from their allocations (opportunistic when a
 * lazy preemption downgraded them before, lc_job_t.oppo, or when their VC no
 * longer holds them) and re-attached to their
 * nodes' desired sets.  Also the node -> scheduler view shared with run-time
 * VC changes (vcs.c).
 *
 * Locking (engine_int.h): the store is read without mu; each record is
 * decoded first, then added under mu.  Restore runs before the engine's
 * threads start, so nothing else waits meanwhile.
 */
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/engine_int.h"
#include "protocol/job.h"
#include "engine/codec.h"

static int restore_node(void *ud, const char *key, int64_t seq, const char *text)
{
    engine_t *j = ud;
    (void)seq;
    json_t *rec = json_loads(text, 0, NULL);
    if (!rec)
        return 0;
    engine_lock(j);
    bool created;
    engine_node_t *n = nodes_get(j->nodes, key, &created);
    const char *s;
    if ((s = json_string_value(json_object_get(rec, "address"))))
        free(n->address), n->address = xstrdup(s);
    if ((s = json_string_value(json_object_get(rec, "gpu_model"))))
        free(n->gpu_model), n->gpu_model = xstrdup(s);
    if ((s = json_string_value(json_object_get(rec, "log_url"))))
        free(n->log_url), n->log_url = xstrdup(s);
    n->cpus = (int)json_integer_value(json_object_get(rec, "cpus"));
    n->memory_mb = json_integer_value(json_object_get(rec, "memory_mb"));
    n->gpus = json_incref(json_object_get(rec, "gpus"));
    n->ngpus = (int)json_array_size(n->gpus);
    n->bad_gpus = engine_bad_gpus(n->gpus);
    nodecred_decode(json_object_get(rec, "cred"), &n->cred);
    n->last_seen_ms = engine_mono_ms(j);
    engine_node_to_sched(j, n);
    engine_unlock(j);
    json_decref(rec);
    return 0;
}

uint64_t engine_bad_gpus(const json_t *gpus)
{
    uint64_t bad = 0;
    size_t i;
    json_t *g;
    json_array_foreach(gpus, i, g)
    {
        json_int_t idx = json_integer_value(json_object_get(g, "index"));
        if (json_is_false(json_object_get(g, "healthy")) && idx >= 0 && idx < 64)
            bad |= 1ull << idx;
    }
    return bad;
}

/* A node is healthy for the scheduler while its agent syncs and none of its
 * GPUs is reported bad (HiveD: a cell with a bad cell inside is bad). */
sched_node_t engine_sched_node(const engine_node_t *n)
{
    sched_node_t sn = {n->name,
                       n->address,
                       n->ngpus,
                       n->gpu_model,
                       n->cpus,
                       n->memory_mb,
                       n->state == NODE_HEALTHY && n->bad_gpus == 0 && !n->cred.awaiting,
                       0};
    return sn;
}

void engine_node_to_sched(engine_t *j, engine_node_t *n)
{
    engine_assert_locked(j);
    sched_node_t sn = engine_sched_node(n);
    pai_err_t rc = sched_node_update(j->sched, &sn);
    j->vcs.stale = true;
    if (rc != PAI_OK)
        log_warn("node=%s not taken by the scheduler: %s", n->name, pai_err_msg(rc));
}

/* A running job after a restart: its allocations back into the scheduler. */
pai_err_t engine_sched_restore(sched_t *s, const lc_job_t *job, bool *downgraded)
{
    lc_attempt_t *a = lc_current(job);
    sched_alloc_t *allocs = xcalloc(job->total_tasks + 1, sizeof(*allocs));
    int(*gpus)[64] = xcalloc(job->total_tasks + 1, sizeof(*gpus));
    size_t n = 0;
    for (int r = 0; a && r < job->nroles; r++)
        for (int i = 0; i < job->roles[r].instances; i++) {
            lc_task_attempt_t *ta = lc_task_current(job, r, i);
            if (!ta || !ta->node)
                continue;
            int ng = 0;
            for (int g = 0; g < 64; g++)
                if (ta->gpus & (1ull << g))
                    gpus[n][ng++] = g;
            allocs[n] = (sched_alloc_t){.role = job->roles[r].name,
                                        .index = i,
                                        .node = ta->node,
                                        .n_gpus = ng,
                                        .gpus = gpus[n],
                                        .cell = ta->cell};
            n++;
        }
    sched_role_t roles[PAI_MAX_TASK_ROLES];
    sched_request_t req = engine_sched_request(job, roles);
    *downgraded = false;
    pai_err_t rc = sched_restore(s, &req, allocs, n, downgraded);
    free(allocs);
    free(gpus);
    return rc;
}

void engine_refresh_cells(engine_t *j)
{
    engine_assert_locked(j);
    engine_table_it_t it = {0};
    lc_job_t *job;
    while ((job = engine_table_next(j, &it))) {
        if (!job->queued || job->state == JOB_WAITING || lc_job_state_final(job->state) ||
            !lc_current(job))
            continue;
        bool changed = false;
        for (int r = 0; r < job->nroles; r++)
            for (int i = 0; i < job->roles[r].instances; i++) {
                lc_task_attempt_t *ta = lc_task_current(job, r, i);
                char cell[2 * SCHED_NAME_MAX + 2];
                if (!ta || !ta->node)
                    continue;
                bool has =
                    sched_task_cell(j->sched, job->name, job->roles[r].name, i, cell, sizeof cell);
                if (has == (ta->cell != NULL) && (!has || strcmp(cell, ta->cell) == 0))
                    continue;
                free(ta->cell);
                ta->cell = has ? xstrdup(cell) : NULL;
                changed = true;
            }
        if (changed)
            engine_mark_dirty(j, job);
    }
}

/* A running job after a restart: its allocations back into the scheduler. */
static void restore_running(engine_t *j, lc_job_t *job)
{
    bool down = false;
    pai_err_t rc = engine_sched_restore(j->sched, job, &down);
    if (rc == PAI_OK)
        job->queued = true;
    else
        log_error("job=%s could not be restored in the scheduler: %s", job->name, pai_err_msg(rc));
    if (down) {
        log_warn("job=%s runs opportunistically after the restart (its VC changed)", job->name);
        job->oppo = true;
        engine_mark_dirty(j, job);
    }
    nodes_sync_job(j->nodes, job);
}

static int restore_job(void *ud, const char *key, int64_t seq, const char *text)
{
    engine_t *j = ud;
    json_t *rec = json_loads(text, 0, NULL);
    lc_job_t *job = NULL;
    if (!rec || codec_job_decode(rec, &job) != PAI_OK) {
        log_error("job=%s stored record unreadable; skipped", key);
        json_decref(rec);
        return 0;
    }
    json_decref(rec);
    /* A running job's tasks go to agents with their commands: read them
     * now, before locking (the job is not in the table yet). */
    bool running = !lc_job_state_final(job->state) && job->state != JOB_WAITING;
    if (running && !engine_load_cmds(j, job))
        log_error("job=%s its commands are missing from the store", job->name);
    /* An active job's events too; a finished one's are read when asked for. */
    if (!lc_job_state_final(job->state))
        engine_events_restore(j, job);
    engine_lock(j);
    if (seq >= j->table.next_seq)
        j->table.next_seq = seq + 1;
    engine_table_add(j, job);
    engine_table_publish(j, job);
    bool final = lc_job_state_final(job->state);
    engine_snap_put(j, job->name, final ? NULL : xstrdup(text)); /* reads without mu */
    if (final) {
        lc_job_compact(job);
        job->compacted = true;
    } else if (job->state == JOB_WAITING) {
        lc_effects_t fx = {.requeue = true};
        engine_apply(j, job, &fx, engine_now_ms(j));
    } else {
        restore_running(j, job);
    }
    engine_unlock(j);
    return 0;
}

pai_err_t engine_restore(engine_t *j)
{
    engine_assert_unlocked(j);
    pai_err_t rc = store_scan(j->st, "node", restore_node, j);
    if (rc == PAI_OK)
        rc = store_scan(j->st, "job", restore_job, j);
    engine_lock(j);
    if (!j->opts.read_only) { /* a view shows the store as it is */
        engine_refresh_cells(j);
        j->pass.need = true;
        engine_schedule(j, engine_now_ms(j));
    }
    if (j->opts.read_only) /* a standby's view, rebuilt every few seconds */
        log_debug("view: %zu jobs, %zu nodes", j->table.nlist, nodes_count(j->nodes));
    else
        log_info("restored %zu jobs, %zu nodes", j->table.nlist, nodes_count(j->nodes));
    engine_unlock(j);
    return rc;
}
