/*
 * agentsync.c - POST /api/v1/agent/sync, the server side of the agent
 * protocol (docs/agent-protocol.md).
 *
 * Procedure of one sync:
 *   1. check the version; register or refresh the node (resources, health,
 *      last seen); a new, changed or returning node goes to the scheduler;
 *   2. apply each reported task attempt: running -> lc_task_running;
 *      exited -> lc_task_exited (acked once persisted); reports about
 *      attempts that are not current on this node (stale, from before a
 *      node loss, or deleted jobs) change nothing: exits are acked, running
 *      ones are left out of the desired set so the agent kills them;
 *   3. run a scheduling pass if something was freed; persist (engine_flush);
 *   4. answer at once when the node's seq is newer than known_seq or there
 *      are acks; otherwise wait on the node's condition variable until its
 *      desired set changes or wait_ms passes (bounded);
 *   5. the answer is the node's full desired set with env and commands.
 *      A held poll superseded by a newer sync of the same node (the agent
 *      abandoned it to report a local change: one sync in flight per node)
 *      is answered at once without "tasks" and with seq = known_seq: no
 *      desired set is encoded for a closed connection, and the thread is
 *      free at once instead of at the next change or heartbeat.
 */
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/util.h"
#include "protocol/exitspec.h"
#include "engine/codec.h"
#include "engine/engine_int.h"
#include "engine/env.h"

#define AGENT_PROTOCOL_VERSION 1
#define HEARTBEAT_MS           5000
/* A held long-poll delays the server's shutdown (libmicrohttpd waits for
 * connection threads), so it is held at most one heartbeat. */
#define MAX_WAIT_MS HEARTBEAT_MS

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void set_str(char **dst, const char *s)
{
    if (s && (!*dst || strcmp(*dst, s) != 0)) {
        free(*dst);
        *dst = xstrdup(s);
    }
}

/* Step 1.  Returns the node; *changed when the scheduler must hear of it. */
static engine_node_t *register_node(engine_t *j, const json_t *jn, const char *name)
{
    bool created = false;
    engine_node_t *n = nodes_get(j->nodes, name, &created);
    bool changed = created || n->state == NODE_LOST;
    const json_t *gpus = json_object_get(jn, "gpus");
    int ngpus = (int)json_array_size(gpus);
    int cpus = (int)json_integer_value(json_object_get(jn, "cpus"));
    int64_t mem = json_integer_value(json_object_get(jn, "memory_mb"));
    const char *addr = jstr(jn, "address"), *model = jstr(jn, "gpu_model");
    if (ngpus != n->ngpus || cpus != n->cpus || mem != n->memory_mb ||
        (addr && (!n->address || strcmp(addr, n->address) != 0)) ||
        (model && (!n->gpu_model || strcmp(model, n->gpu_model) != 0)))
        changed = true;
    n->ngpus = ngpus;
    n->cpus = cpus;
    n->memory_mb = mem;
    set_str(&n->address, addr);
    set_str(&n->gpu_model, model);
    set_str(&n->log_url, jstr(jn, "log_url"));
    set_str(&n->runtime, jstr(jn, "runtime"));
    const char *boot = jstr(jn, "boot_id");
    if (boot && n->boot_id && strcmp(boot, n->boot_id) != 0)
        log_info("node=%s agent restarted (boot %s)", name, boot);
    set_str(&n->boot_id, boot);
    n->hollow = json_is_true(json_object_get(jn, "hollow"));
    if (gpus && (!n->gpus || !json_equal(gpus, n->gpus))) {
        json_decref(n->gpus);
        n->gpus = json_deep_copy(gpus);
    }
    if (n->state == NODE_LOST)
        log_info("node=%s is back", name);
    n->state = NODE_HEALTHY;
    n->last_seen_ms = engine_mono_ms(j);
    if (changed) {
        n->dirty = true;
        engine_node_to_sched(j, n);
        j->pass.need = true;
    }
    return n;
}

static int report_exit_code(const json_t *t)
{
    if (json_is_true(json_object_get(t, "oom")))
        return EXIT_OOM_KILLED;
    return (int)json_integer_value(json_object_get(t, "exit_code"));
}

/* Step 2 for one report. */
static void apply_report(engine_t *j, engine_node_t *n, const json_t *t, json_t *acks, int64_t now)
{
    const char *id = jstr(t, "attempt_id"), *state = jstr(t, "state");
    if (!id || !state)
        return;
    bool exited = strcmp(state, "exited") == 0 || strcmp(state, "failed_to_start") == 0;
    char name[PAI_MAX_NAME + 1], role[PAI_MAX_NAME + 1];
    int ja, index, ta;
    lc_job_t *job = NULL;
    lc_task_attempt_t *cur = NULL;
    int r = -1;
    if (codec_attempt_id_parse(id, name, sizeof name, &ja, role, sizeof role, &index, &ta) ==
            PAI_OK &&
        (job = engine_map_get(j, name)) && !job->compacted) {
        if (job->pending)
            return; /* placed while its submission is being answered: report again */
        for (int k = 0; k < job->nroles; k++)
            if (strcmp(job->roles[k].name, role) == 0)
                r = k;
        cur = r >= 0 ? lc_task_current(job, r, index) : NULL;
        if (!cur || ja != job->natts - 1 || cur->index != ta || !cur->node ||
            strcmp(cur->node, n->name) != 0)
            cur = NULL;
    }
    if (cur && !lc_task_state_final(cur->state)) {
        lc_effects_t fx = {0};
        if (exited) {
            lc_task_exited(job, r, index, report_exit_code(t), jstr(t, "diagnostics"), now,
                           engine_exit_reaction, &fx);
        } else if (strcmp(state, "running") == 0) {
            lc_task_running(job, r, index, now, &fx);
        }
        engine_apply(j, job, &fx, now);
    }
    if (exited)
        json_array_append_new(acks, json_string(id));
}

/* The task's image: {"uri"} plus "auth" (secrets resolved) when the
 * dockerimage prerequisite has one; null without an image.  Only ever
 * served to the agent token (desired state). */
static json_t *desired_image(const lc_role_t *r)
{
    if (!r->image)
        return json_null();
    json_t *o = xjson_pack("{ss}", "uri", r->image);
    json_t *auth = r->image_auth ? json_loads(r->image_auth, 0, NULL) : NULL;
    if (json_is_object(auth))
        json_object_set_new(o, "auth", auth);
    else
        json_decref(auth);
    return o;
}

static json_t *desired_task(const engine_node_ref_t *ref)
{
    lc_job_t *job = ref->job;
    const lc_role_t *r = &job->roles[ref->role];
    const lc_task_attempt_t *ta = lc_find(job, ref->ja, ref->role, ref->index, ref->ta);
    char *id = codec_attempt_id(job, ref->ja, ref->role, ref->index, ref->ta);
    json_t *gpus = json_array(), *ports = json_object();
    for (int g = 0; g < 64; g++)
        if (ta->gpus & (1ull << g))
            json_array_append_new(gpus, json_integer(g));
    int k = 0;
    for (int p = 0; p < r->nports; p++) {
        json_t *list = json_array();
        for (int c = 0; c < r->ports[p].count && k < ta->nports; c++)
            json_array_append_new(list, json_integer(ta->ports[k++]));
        json_object_set_new(ports, r->ports[p].label, list);
    }
    json_t *o = xjson_pack(
        "{ss ss ss% ss si si si so ss so so si si si so si}", "attempt_id", id ? id : "", "job",
        job->name, "user", job->name, (size_t)job->user_len, "role", r->name, "index", ref->index,
        "job_attempt", ref->ja, "task_attempt", ref->ta, "image", desired_image(r), "command",
        r->command ? r->command : "", "env", engine_task_env(job, ref->role, ref->index), "gpus",
        gpus, "cpu", r->cpu, "memory_mb", r->mem_mb, "shm_mb", r->shm_mb, "ports", ports,
        "kill_grace_ms", 10000);
    json_t *mounts = r->mounts ? json_loads(r->mounts, 0, NULL) : NULL;
    if (json_is_array(mounts))
        json_object_set_new(o, "mounts", mounts);
    else
        json_decref(mounts);
    free(id);
    return o;
}

static json_t *desired_set(const engine_node_t *n)
{
    json_t *tasks = json_array();
    for (size_t i = 0; i < n->nrefs; i++) {
        const engine_node_ref_t *r = &n->refs[i];
        lc_task_attempt_t *ta = lc_find(r->job, r->ja, r->role, r->index, r->ta);
        /* Only attempts the store knows (see mark_durable in engine.c). */
        if (nodes_ref_live(r) && ta && ta->durable == 2) {
            json_array_append_new(tasks, desired_task(r));
            ta->sent = true; /* from now on only the node can say it is gone */
        }
    }
    return tasks;
}

/* Step 4: wait (mu held) until seq > known, a newer sync of the node (its
 * poll_gen moves past gen) or the deadline.  False when superseded. */
static bool long_poll(engine_t *j, engine_node_t *n, uint64_t known, uint64_t gen, int64_t wait_ms)
{
    if (wait_ms <= 0)
        return true;
    if (wait_ms > MAX_WAIT_MS)
        wait_ms = MAX_WAIT_MS;
    /* A node is lost after node_lost_timeout_s without a sync: answer well
     * before that so a healthy long-polling agent is never counted lost. */
    if (wait_ms > j->opts.node_lost_timeout_s * 500)
        wait_ms = j->opts.node_lost_timeout_s * 500;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (wait_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (n->seq <= known && !j->threads.stopping && n->poll_gen == gen)
        if (pthread_cond_timedwait(&n->cv, &j->mu, &ts) != 0)
            break;
    n->last_seen_ms = engine_mono_ms(j);
    return n->poll_gen == gen;
}

pai_err_t engine_agent_sync(engine_t *j, json_t *req, json_t **resp, pai_error_t *e)
{
    *resp = NULL;
    json_int_t version = json_integer_value(json_object_get(req, "version"));
    if (version != AGENT_PROTOCOL_VERSION)
        return pai_error_set(e, PAI_E_INVALID,
                             "agent protocol version %lld not supported (server speaks %d)",
                             (long long)version, AGENT_PROTOCOL_VERSION);
    const json_t *jn = json_object_get(req, "node");
    const char *name = jstr(jn, "name");
    if (!json_is_object(jn) || !name || !*name || strlen(name) > PAI_MAX_NAME)
        return pai_error_set(e, PAI_E_INVALID, "node.name is required (at most %u characters)",
                             PAI_MAX_NAME);
    const json_t *tasks = json_object_get(req, "tasks"), *jk = json_object_get(req, "known_seq");
    if ((tasks && !json_is_array(tasks)) || (jk && !json_is_integer(jk)) ||
        json_integer_value(jk) < 0 || json_integer_value(jk) > ((json_int_t)1 << 53))
        return pai_error_set(e, PAI_E_INVALID,
                             "tasks must be a list and known_seq an integer >= 0");
    uint64_t known = (uint64_t)json_integer_value(jk);
    int64_t wait_ms = json_integer_value(json_object_get(req, "wait_ms"));
    int64_t now = engine_now_ms(j);
    json_t *acks = json_array();

    pthread_mutex_lock(&j->mu);
    engine_node_t *n = register_node(j, jn, name);
    uint64_t gen = ++n->poll_gen;
    pthread_cond_broadcast(&n->cv); /* release a held poll this one supersedes */
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) apply_report(j, n, t, acks, now);
    /* Freed resources: with a short queue decide at once, so that the new
     * placements are stored by the same commit as the exits (one fsync
     * before the next tasks can be sent); else leave it to the thread. */
    if (j->pass.need && engine_queue_short(j))
        engine_run_pass(j);
    else
        engine_kick(j);
    /* A server restarted since the agent's last answer: catch its seq up. */
    if (known > n->seq)
        n->seq = known + 1;
    /* Acks only once the exits they acknowledge are stored; other changes
     * are stored by the scheduler and timer threads without delaying this. */
    bool dirty = json_array_size(acks) > 0 || n->dirty;
    pthread_mutex_unlock(&j->mu);

    if (dirty && engine_flush(j) != PAI_OK) {
        json_decref(acks);
        return pai_error_set(e, PAI_E_UNAVAILABLE, "the store is unavailable");
    }

    pthread_mutex_lock(&j->mu);
    if (json_array_size(acks) == 0 && n->seq <= known && !long_poll(j, n, known, gen, wait_ms)) {
        *resp = xjson_pack("{si sI so si}", "version", AGENT_PROTOCOL_VERSION, "seq",
                           (json_int_t)known, "ack", acks, "heartbeat_ms", HEARTBEAT_MS);
        pthread_mutex_unlock(&j->mu);
        return PAI_OK;
    }
    *resp =
        xjson_pack("{si sI so so si}", "version", AGENT_PROTOCOL_VERSION, "seq", (json_int_t)n->seq,
                   "ack", acks, "tasks", desired_set(n), "heartbeat_ms", HEARTBEAT_MS);
    pthread_mutex_unlock(&j->mu);
    return PAI_OK;
}
