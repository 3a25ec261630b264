/*
 * env.c - the environment of a task (OpenPAI's PAI_* variables), from
 * the placement of every task of the job's current attempt, so each task
 * sees its peers' addresses and ports.  The variables themselves are made
 * by wire/agentwire_env.c from the placement (agentwire_jobenv_t) this
 * fills: the code a version 5 agent runs on the placement the answer
 * carries (docs/agent-protocol.md), so both get the same variables.
 */
#include "engine/env.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

agentwire_jobenv_t *engine_task_jobenv(const lc_job_t *job, int role, int index)
{
    if (role < 0 || role >= job->nroles || !lc_task_current(job, role, index))
        return NULL;
    agentwire_jobenv_t *j = xcalloc(1, sizeof(*j));
    size_t nlabels = 0, nhosts = 0, nports = 0;
    for (int k = 0; k < job->nroles; k++) {
        const lc_role_t *r = &job->roles[k];
        nlabels += (size_t)r->nports;
        nhosts += (size_t)r->instances;
        for (int i = 0; i < r->instances; i++) {
            const lc_task_attempt_t *ta = lc_task_current(job, k, i);
            nports += ta ? (size_t)ta->nports : 0;
        }
    }
    j->vc = job->vc;
    j->role = role;
    j->index = index;
    j->gpus = lc_task_current(job, role, index)->gpus;
    j->roles = xcalloc((size_t)job->nroles + 1, sizeof(*j->roles));
    j->portdefs = xcalloc(nlabels + 1, sizeof(*j->portdefs));
    j->hosts = xcalloc(nhosts + 1, sizeof(*j->hosts));
    j->ports = xcalloc(nports + 1, sizeof(*j->ports));
    for (int k = 0; k < job->nroles; k++) {
        const lc_role_t *r = &job->roles[k];
        agentwire_jobrole_t *out = &j->roles[j->nroles++];
        *out = (agentwire_jobrole_t){.name = r->name,
                                     .instances = r->instances,
                                     .gpu = r->gpu,
                                     .cpu = r->cpu,
                                     .mem_mb = r->mem_mb,
                                     .shm_mb = r->shm_mb,
                                     .port0 = j->nportdefs,
                                     .nports = r->nports,
                                     .host0 = j->nhosts};
        for (int p = 0; p < r->nports; p++)
            j->portdefs[j->nportdefs++] =
                (agentwire_portdef_t){.label = r->ports[p].label, .count = r->ports[p].count};
        for (int i = 0; i < r->instances; i++) {
            const lc_task_attempt_t *ta = lc_task_current(job, k, i);
            agentwire_host_t *h = &j->hosts[j->nhosts++];
            if (!ta)
                continue;
            *h = (agentwire_host_t){
                .placed = true, .ip = ta->ip, .port0 = j->nports, .nports = ta->nports};
            if (ta->nports > 0)
                memcpy(j->ports + j->nports, ta->ports, (size_t)ta->nports * sizeof(int));
            j->nports += (size_t)ta->nports;
        }
    }
    return j;
}

json_t *engine_task_env(const lc_job_t *job, int role, int index)
{
    size_t n;
    json_t *pairs = engine_task_env_pairs(job, role, index, &n);
    if (!pairs)
        return NULL;
    json_t *obj = json_object();
    const char *p = json_string_value(pairs);
    for (size_t i = 0; i < n; i++) {
        const char *name = p;
        p += strlen(p) + 1;
        json_object_set_new(obj, name, json_string(p));
        p += strlen(p) + 1;
    }
    json_decref(pairs);
    return obj;
}

json_t *engine_task_env_pairs(const lc_job_t *job, int role, int index, size_t *n)
{
    *n = 0;
    agentwire_jobenv_t *j = engine_task_jobenv(job, role, index);
    if (!j)
        return NULL;
    size_t len;
    char *text = agentwire_env_pairs(job->name, job->name, job->user_len, j, &len, n);
    json_t *pairs = json_stringn_nocheck(text, len);
    free(text);
    agentwire_jobenv_free(j);
    return pairs;
}
