/*
 * vcs.c - creating, resizing and deleting virtual clusters at run
 * time (OpenPAI could not).
 *
 * The scheduler's interface has no call to change a VC, so a change builds a
 * new scheduler from the changed config and moves the cluster into it:
 *   1. copy the config (JSON), apply the change to `virtualClusters`;
 *   2. sched_new_config() on it (a config error is the answer's reason);
 *   3. add every known node with its health;
 *   4. restore every bound job with its allocations (sched_restore); a job
 *      that would lose its guarantee (downgraded to opportunistic) or cannot
 *      be restored refuses the change, naming the job;
 *   5. queue every waiting job again;
 *   6. store the new config ("meta", "hived_config"; it wins over the file
 *      at the next start), then swap the schedulers and run a pass.
 * Only with a HiveD config (hived_config): without one, every node is in the
 * VC "default" and there is nothing to change.
 *
 * Locking (engine_int.h): no store I/O under mu, so steps 1-5 run under mu
 * as a check, the config is stored without mu, and steps 1-5 run again
 * under mu from the cluster as it is then (jobs may have bound or finished
 * meanwhile), followed by the swap in the same critical section, so no
 * decision is lost between the two schedulers.  Should the second run
 * refuse, the stored config is put back.  flush_mu, held throughout, keeps
 * two VC changes from interleaving.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "protocol/job.h"
#include "sched/sched.h"
#include "engine/engine_int.h"

/* Steps 2-5 into a new scheduler; the reason goes into e on refusal. */
static pai_err_t rebuild(engine_t *j, const json_t *cfg, sched_t **out, pai_error_t *e)
{
    engine_assert_locked(j);
    sched_opts_t so = engine_sched_opts(j);
    char *text = xjson_dumps(cfg, JSON_COMPACT);
    sched_t *s = NULL;
    char why[PAI_ERROR_MSG_MAX] = "";
    pai_err_t rc = sched_new_config(text, strlen(text), &so, &s, why, sizeof why);
    free(text);
    if (rc != PAI_OK)
        return pai_error_set(e, PAI_E_INVALID, "%s", why[0] ? why : pai_err_msg(rc));
    for (size_t k = 0; k < nodes_count(j->nodes); k++) {
        sched_node_t sn = engine_sched_node(nodes_at(j->nodes, k));
        pai_err_t nrc = sched_node_update(s, &sn);
        /* NOT_FOUND: a node outside the new config, which it ignores */
        if (nrc != PAI_OK && nrc != PAI_E_NOT_FOUND)
            log_warn("node=%s not taken by the new scheduler config: %s", sn.name,
                     pai_err_msg(nrc));
    }
    engine_table_it_t it = {0};
    lc_job_t *job;
    while (rc == PAI_OK && (job = engine_table_next(j, &it))) {
        if (!job->queued)
            continue;
        if (job->state == JOB_WAITING) {
            continue; /* queued again after the swap */
        }
        bool down = false;
        rc = engine_sched_restore(s, job, &down);
        if (rc != PAI_OK || down)
            rc = pai_error_set(e, PAI_E_INVALID,
                               "running job %s would lose its guaranteed resources", job->name);
    }
    if (rc != PAI_OK) {
        sched_free(s);
        return rc;
    }
    *out = s;
    return PAI_OK;
}

/* Swap to s (step 6 without the store) and queue the waiting jobs in it. */
static void swap(engine_t *j, sched_t *s, json_t *cfg)
{
    engine_assert_locked(j);
    sched_t *old = j->sched;
    j->sched = s;
    json_decref(j->vcs.hived);
    j->vcs.hived = cfg;
    engine_table_it_t it = {0};
    lc_job_t *job;
    while ((job = engine_table_next(j, &it))) {
        if (job->queued && job->state == JOB_WAITING) {
            job->queued = false;
            engine_enqueue(j, job);
        }
    }
    engine_refresh_cells(j);
    engine_snapshot_vcs(j); /* the old rows point into the old scheduler */
    sched_free(old);
    j->vcs.stale = true;
    j->pass.need = true;
    engine_kick(j);
}

static bool vc_has_jobs(engine_t *j, const char *vc, char *who, size_t n)
{
    engine_table_it_t it = {0};
    const lc_job_t *job;
    while ((job = engine_table_next(j, &it))) {
        if (!lc_job_state_final(job->state) && strcmp(job->vc, vc) == 0) {
            snprintf(who, n, "%s", job->name);
            return true;
        }
    }
    return false;
}

static pai_err_t check_cells(const json_t *cells, pai_error_t *e)
{
    if (!json_is_array(cells) || json_array_size(cells) == 0)
        return pai_error_set(e, PAI_E_INVALID,
                             "virtualCells must be a non-empty list of {cellType, cellNumber}");
    size_t i;
    json_t *c;
    json_array_foreach(cells, i, c)
    {
        if (!json_is_string(json_object_get(c, "cellType")) ||
            !json_is_integer(json_object_get(c, "cellNumber")) ||
            json_integer_value(json_object_get(c, "cellNumber")) < 0)
            return pai_error_set(e, PAI_E_INVALID,
                                 "virtualCells[%zu]: needs cellType (string) and cellNumber "
                                 "(integer >= 0)",
                                 i);
    }
    return PAI_OK;
}

/* Steps 1-5 (mu held): the changed config in *cfg (new reference) and a
 * scheduler built from it in *s; on refusal the reason in e. */
static pai_err_t plan(engine_t *j, const char *vc, const json_t *spec, json_t **cfg, sched_t **s,
                      bool *created, pai_error_t *e)
{
    engine_assert_locked(j);
    *cfg = NULL;
    *s = NULL;
    if (!j->vcs.hived)
        return pai_error_set(e, PAI_E_INVALID,
                             "virtual clusters come from the scheduler config: start the server "
                             "with hived_config to define and change them");
    json_t *c = json_deep_copy(j->vcs.hived);
    json_t *vcs = json_object_get(c, "virtualClusters");
    if (!json_is_object(vcs)) {
        vcs = json_object();
        json_object_set_new(c, "virtualClusters", vcs);
    }
    pai_err_t rc = PAI_OK;
    char who[PAI_MAX_NAME + 1];
    if (!spec) { /* delete */
        if (!json_object_get(vcs, vc))
            rc = pai_error_set(e, PAI_E_NO_VC, PAI_MSG_NO_VC, vc);
        else if (vc_has_jobs(j, vc, who, sizeof who))
            rc = pai_error_set(e, PAI_E_REMOVE_RUNNING_VC,
                               "virtual cluster %s still has unfinished jobs (%s)", vc, who);
        else
            json_object_del(vcs, vc);
    } else {
        const json_t *cells = json_object_get(spec, "virtualCells");
        rc = check_cells(cells, e);
        if (rc == PAI_OK) {
            json_t *one = json_object_get(vcs, vc);
            *created = one == NULL;
            if (!one)
                json_object_set_new(vcs, vc, one = json_object());
            json_object_set_new(one, "virtualCells", json_deep_copy(cells));
        }
    }
    if (rc == PAI_OK)
        rc = rebuild(j, c, s, e);
    if (rc == PAI_OK)
        *cfg = c;
    else
        json_decref(c);
    return rc;
}

/* Step 6 (without mu): store cfg; *prev gets the config it replaced
 * (malloc'ed; NULL when there was none) to put back on a late refusal. */
static pai_err_t store_config(engine_t *j, const json_t *cfg, char **prev, pai_error_t *e)
{
    engine_assert_unlocked(j);
    *prev = NULL;
    pai_err_t rc = store_get(j->st, "meta", "hived_config", prev);
    if (rc == PAI_E_NOT_FOUND)
        rc = PAI_OK;
    char *text = rc == PAI_OK ? xjson_dumps(cfg, JSON_COMPACT) : NULL;
    if (rc == PAI_OK)
        rc = store_put(j->st, "meta", "hived_config", 0, text);
    free(text);
    if (rc != PAI_OK)
        pai_error_set(e, rc, "the store is unavailable: %s", pai_err_msg(rc));
    return rc;
}

/* Undo step 6 (without mu). */
static void unstore_config(engine_t *j, const char *prev)
{
    engine_assert_unlocked(j);
    pai_err_t rc = prev ? store_put(j->st, "meta", "hived_config", 0, prev)
                        : store_del(j->st, "meta", "hived_config");
    if (rc != PAI_OK && rc != PAI_E_NOT_FOUND)
        log_error("the refused VC change's config stays stored (%s): the next start uses it",
                  pai_err_msg(rc));
}

pai_err_t engine_vc_change(engine_t *j, const char *vc, const json_t *spec, bool *created,
                           pai_error_t *e)
{
    *created = false;
    if (!vc || !*vc || strlen(vc) > 64 || !str_is_name(vc))
        return pai_error_set(e, PAI_E_INVALID, "a VC name is 1 to 64 of [A-Za-z0-9_-]");
    json_t *cfg = NULL;
    sched_t *s = NULL;
    char *prev = NULL;
    engine_flush_lock(j);
    engine_lock(j);
    pai_err_t rc = plan(j, vc, spec, &cfg, &s, created, e);
    engine_unlock(j);
    if (s)
        sched_free(s); /* a check: the swap builds its own below */
    if (rc == PAI_OK)
        rc = store_config(j, cfg, &prev, e);
    json_decref(cfg);
    cfg = NULL;
    if (rc != PAI_OK)
        goto out;
    engine_lock(j);
    rc = plan(j, vc, spec, &cfg, &s, created, e);
    if (rc == PAI_OK) {
        log_info("vc=%s %s", vc, !spec ? "deleted" : *created ? "created" : "changed");
        swap(j, s, cfg);
    }
    engine_unlock(j);
    if (rc != PAI_OK)
        unstore_config(j, prev);
out:
    engine_flush_unlock(j);
    free(prev);
    return rc;
}

/* ---------------------------------------------------------------- VC cache
 * The VCs the scheduler knows and their guaranteed GPUs, refreshed after a
 * node or VC change (vcs.stale): submissions check a job against them. */

bool engine_vc_known(engine_t *j, const char *vc)
{
    engine_assert_locked(j);
    if (j->vcs.stale) {
        sched_vc_status_t *rows = xcalloc(4096, sizeof(*rows));
        size_t n = sched_vc_status(j->sched, rows, 4096);
        for (size_t i = 0; i < j->vcs.n; i++)
            free(j->vcs.names[i]);
        j->vcs.n = 0;
        j->vcs.names = xrealloc(j->vcs.names, (n < 4096 ? n : 4096) * sizeof(char *) + 1);
        j->vcs.gpus = xrealloc(j->vcs.gpus, (n < 4096 ? n : 4096) * sizeof(int) + 1);
        for (size_t i = 0; i < n && i < 4096; i++) {
            if (i == 0 || strcmp(rows[i].vc, rows[i - 1].vc) != 0) {
                j->vcs.gpus[j->vcs.n] = 0;
                j->vcs.names[j->vcs.n++] = xstrdup(rows[i].vc);
            }
            j->vcs.gpus[j->vcs.n - 1] += rows[i].guaranteed_gpus;
        }
        free(rows);
        j->vcs.max_node_gpus = 0;
        for (size_t k = 0; k < nodes_count(j->nodes); k++) {
            const engine_node_t *nd = nodes_at(j->nodes, k);
            if (nd->state == NODE_HEALTHY && nd->ngpus > j->vcs.max_node_gpus)
                j->vcs.max_node_gpus = nd->ngpus;
        }
        j->vcs.stale = false;
    }
    if (j->vcs.n == 0)
        return true; /* no nodes yet: the scheduler decides */
    for (size_t i = 0; i < j->vcs.n; i++)
        if (strcmp(j->vcs.names[i], vc) == 0)
            return true;
    return false;
}

char *engine_never_fits(engine_t *j, const lc_job_t *job)
{
    engine_assert_locked(j);
    int vc_gpus = -1;
    if (nodes_count(j->nodes) == 0)
        return NULL; /* nothing known yet */
    /* The largest healthy node is cached with the VCs (a node change marks
     * them stale): a scan of every node per submission cost O(nodes) under
     * mu, 10,000 of them at scale. */
    (void)engine_vc_known(j, job->vc); /* refresh the cache */
    int max_node = j->vcs.max_node_gpus;
    for (int r = 0; r < job->nroles; r++)
        if (job->roles[r].gpu > max_node)
            return str_printf("task role %s asks for %d GPUs per instance; the largest node "
                              "has %d",
                              job->roles[r].name, job->roles[r].gpu, max_node);
    for (size_t i = 0; i < j->vcs.n; i++)
        if (strcmp(j->vcs.names[i], job->vc) == 0)
            vc_gpus = j->vcs.gpus[i];
    if (vc_gpus >= 0 && job->prio != JOB_PRIO_OPPO && (int)job->total_gpus > vc_gpus)
        return str_printf("the job needs %u GPUs at once; virtual cluster %s has %d",
                          job->total_gpus, job->vc, vc_gpus);
    return NULL;
}
