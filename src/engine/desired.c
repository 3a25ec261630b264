/*
 * desired.c - a node's desired set, as the agent sync's answer carries it
 * (step 5 in agentsync.c; docs/agent-protocol.md): each attempt placed on
 * the node with its command, image and registry auth, environment, GPUs,
 * ports and mounts, the JSON it reads kept in a hold array until the answer
 * is encoded.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/strmap.h"
#include "common/util.h"
#include "engine/codec.h"
#include "engine/desired.h"
#include "engine/engine_int.h"
#include "engine/env.h"
#include "wire/agentwire.h"

#define KILL_GRACE_MS 10000
/* Commands and registry auth of attempts new to the agent in one answer:
 * half the agent's message limit, the rest for everything else. */
#define NEW_TASK_BUDGET (PAI_MAX_AGENT_MSG / 2)

/* The task's image: {"uri"} plus "auth" (secrets resolved) when the
 * dockerimage prerequisite has one; none without an image.  Only ever
 * served to the agent token (desired state).  JSON it reads is kept in
 * hold until the answer is encoded. */
static void desired_image(const lc_role_t *r, agentwire_task_t *t, json_t *hold)
{
    t->image = r->image;
    json_t *auth = r->image && r->image_auth ? json_loads(r->image_auth, 0, NULL) : NULL;
    if (json_is_object(auth)) {
        t->image_auth = true;
        t->image_user = json_string_value(json_object_get(auth, "username"));
        t->image_password = json_string_value(json_object_get(auth, "password"));
        t->image_registry = json_string_value(json_object_get(auth, "registryuri"));
    }
    if (auth)
        json_array_append_new(hold, auth);
}

/* The role's storages (stored as JSON at submit), when it has any. */
static void desired_mounts(const lc_role_t *r, agentwire_task_t *t, json_t *hold)
{
    json_t *list = r->mounts ? json_loads(r->mounts, 0, NULL) : NULL;
    if (json_is_array(list)) {
        t->has_mounts = true;
        t->mounts = xcalloc(json_array_size(list) + 1, sizeof(*t->mounts));
        for (size_t i = 0; i < json_array_size(list); i++) {
            const json_t *m = json_array_get(list, i);
            t->mounts[t->nmounts++] = (agentwire_mount_t){
                .source = json_string_value(json_object_get(m, "source")),
                .target = json_string_value(json_object_get(m, "target")),
                .readonly = json_is_true(json_object_get(m, "readonly")),
            };
        }
    }
    if (list)
        json_array_append_new(hold, list);
}

/* The task's variables as pairs (no object: the answer's env object,
 * agentwire.c, is the one built), pointing into the string kept in hold. */
static void desired_env(const lc_job_t *job, int role, int index, agentwire_task_t *t, json_t *hold)
{
    size_t n;
    json_t *pairs = engine_task_env_pairs(job, role, index, &n);
    if (!pairs)
        return;
    t->env = agentwire_env_split(json_string_value(pairs), n);
    t->nenv = n;
    json_array_append_new(hold, pairs);
}

static void desired_ports(const lc_role_t *r, const lc_task_attempt_t *ta, agentwire_task_t *t)
{
    int k = 0;
    t->ports = xcalloc((size_t)r->nports + 1, sizeof(*t->ports));
    for (int p = 0; p < r->nports; p++) {
        agentwire_ports_t *out = &t->ports[t->nports++];
        out->label = r->ports[p].label;
        out->ports = xcalloc((size_t)r->ports[p].count + 1, sizeof(int));
        for (int c = 0; c < r->ports[p].count && k < ta->nports; c++)
            out->ports[out->n++] = ta->ports[k++];
    }
}

static void desired_task(const engine_node_ref_t *ref, int version, agentwire_task_t *t,
                         json_t *hold)
{
    lc_job_t *job = ref->job;
    const lc_role_t *r = &job->roles[ref->role];
    const lc_task_attempt_t *ta = lc_find(job, ref->ja, ref->role, ref->index, ref->ta);
    char *id = codec_attempt_id(job, ref->ja, ref->role, ref->index, ref->ta);
    json_t *jid = json_string(id ? id : "");
    free(id);
    json_array_append_new(hold, jid);
    *t = (agentwire_task_t){
        .attempt_id = json_string_value(jid),
        .job = job->name,
        .user = job->name,
        .user_len = (size_t)job->user_len,
        .role = r->name,
        .index = ref->index,
        .job_attempt = ref->ja,
        .task_attempt = ref->ta,
        .command = r->command ? r->command : "",
        .cpu = r->cpu,
        .memory_mb = r->mem_mb,
        .shm_mb = r->shm_mb,
        .kill_grace_ms = KILL_GRACE_MS,
        .has_task_uid = job->task_uid >= 0,
        .task_uid = job->task_uid,
    };
    desired_image(r, t, hold);
    if (version >= AGENTWIRE_JOBENV_VERSION) /* the agent derives the env */
        t->jobenv = engine_task_jobenv(job, ref->role, ref->index);
    else
        desired_env(job, ref->role, ref->index, t, hold);
    t->gpus = xcalloc(64 + 1, sizeof(int));
    for (int g = 0; g < 64; g++)
        if (ta->gpus & (1ull << g))
            t->gpus[t->ngpus++] = g;
    desired_ports(r, ta, t);
    desired_mounts(r, t, hold);
}

/* The highest answer version this server gives: AGENTWIRE_VERSION, or
 * PAI_TEST_AGENTWIRE_MAX (tests: a server of an older version). */
static long max_version = AGENTWIRE_VERSION;
static pthread_once_t max_version_once = PTHREAD_ONCE_INIT;

static void max_version_read(void)
{
    const char *v = getenv("PAI_TEST_AGENTWIRE_MAX");
    long m = v ? strtol(v, NULL, 10) : 0;
    if (m >= AGENTWIRE_MIN_VERSION && m < AGENTWIRE_VERSION)
        max_version = m;
}

int engine_answer_version(const agentwire_req_t *req)
{
    pthread_once(&max_version_once, max_version_read);
    int v = agentwire_answer_version(req);
    return v > max_version && v > req->version ? (int)max_version : v;
}

/* Bytes a string takes in the answer's JSON, at most (jansson escapes
 * quotes, backslashes and control characters). */
static size_t json_cost(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        n += *p == '"' || *p == '\\' ? 2 : *p < 0x20 ? 6 : 1;
    return n;
}

/* Whether id is one of m's acks. */
static bool acked(const agentwire_resp_t *m, const char *id)
{
    for (size_t i = 0; i < m->nack; i++)
        if (strcmp(m->ack[i], id) == 0)
            return true;
    return false;
}

/* The attempts that left the set after base (d->delta); in version 7 but
 * those m acks (an acked attempt leaves the agent's set by its ack). */
static void desired_removed(const engine_node_t *n, uint64_t base, int version, agentwire_resp_t *m)
{
    size_t k = n->ngone;
    while (k > 0 && n->gone[k - 1].seq > base)
        k--;
    m->removed = xcalloc(n->ngone - k + 1, sizeof(*m->removed));
    for (; k < n->ngone; k++)
        if (version < AGENTWIRE_COMPACT_VERSION || !acked(m, n->gone[k].id))
            m->removed[m->nremoved++] = n->gone[k].id;
}

/* Step 5 of a sync (agentsync.c): the node's desired set, or in version 3
 * its delta against the agent's base, into m (mu held).  An attempt the
 * agent reported in this sync (it has it) is sent without its command, and
 * the commands (and registry auth) of the others fill at most
 * NEW_TASK_BUDGET bytes, one attempt always: the rest wait for the next
 * answers (d->partial), so that an answer never passes the agent's
 * PAI_MAX_AGENT_MSG however many large commands a node is given. */
void engine_desired_set(const engine_node_t *n, engine_desired_t *d, agentwire_resp_t *m,
                        json_t *hold)
{
    size_t used = 0;
    bool any_new = false;
    d->partial = false;
    d->resume = UINT64_MAX;
    m->has_tasks = true;
    m->delta = d->delta;
    m->base_seq = d->delta ? d->base : 0;
    m->tasks = xcalloc(n->nrefs + 1, sizeof(*m->tasks));
    if (d->delta)
        desired_removed(n, d->base, d->version, m);
    for (size_t i = 0; i < n->nrefs; i++) {
        const engine_node_ref_t *r = &n->refs[i];
        lc_task_attempt_t *ta = lc_find(r->job, r->ja, r->role, r->index, r->ta);
        if (!r->shown || !ta || (d->delta && r->shown_seq <= d->base))
            continue;
        bool has = false;
        size_t cost = 0;
        if (d->reported) {
            char *id = codec_attempt_id(r->job, r->ja, r->role, r->index, r->ta);
            has = id && strmap_get(d->reported, id);
            free(id);
            const lc_role_t *role = &r->job->roles[r->role];
            cost = has ? 0 : json_cost(role->command) + json_cost(role->image_auth);
            if (!has && any_new && used + cost > NEW_TASK_BUDGET) {
                d->partial = true;
                if (r->shown_seq - 1 < d->resume)
                    d->resume = r->shown_seq - 1;
                continue;
            }
        }
        used += cost;
        any_new = any_new || !has;
        agentwire_task_t *t = &m->tasks[m->ntasks++];
        desired_task(r, d->version, t, hold);
        if (has)
            t->command = NULL; /* the agent runs it already */
        ta->sent = true;       /* from now on only the node can say it is gone */
    }
}
