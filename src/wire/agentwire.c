/*
 * agentwire.c - see agentwire.h.
 *
 * Encoding builds the objects key by key in the documented order (jansson
 * keeps insertion order), so the bytes on the wire are those of the
 * protocol's examples.  The decoders are agentwire_read.c's; clearing a
 * message and the state names, which both sides use, are here.
 */
#include "wire/agentwire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"

/* ---- encoding ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xE0) == 0xC0 ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xC2) || (len == 4 && s[0] > 0xF4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (len == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a UTF-16 surrogate */
    if (len == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0; /* overlong, or past U+10FFFF */
    return len;
}

bool agentwire_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, k; i < n; i += k) {
        unsigned char c = (unsigned char)s[i];
        if (c - 1u < 0x7Fu) { /* ASCII but NUL: a byte, no call (names are ASCII) */
            k = 1;
            continue;
        }
        if (c == '\0' || (k = utf8_seq((const unsigned char *)s + i, n - i)) == 0)
            return false;
    }
    return true;
}

char *agentwire_lossy_copy(const char *s, size_t n)
{
    if (agentwire_utf8_valid(s, n))
        return NULL;
    char *t = xmalloc(n + 1);
    memcpy(t, s, n);
    t[n] = '\0';
    for (size_t i = 0; i < n;) {
        size_t k = t[i] ? utf8_seq((const unsigned char *)t + i, n - i) : 0;
        if (k == 0)
            t[i++] = '?';
        else
            i += k;
    }
    return t;
}

/* A JSON string of s, its invalid UTF-8 bytes replaced by '?'. */
static json_t *jstr_lossy(const char *s)
{
    size_t n = strlen(s);
    char *t = agentwire_lossy_copy(s, n);
    json_t *j = json_stringn(t ? t : s, n);
    free(t);
    return j ? j : json_string("");
}

/* A number as the first server sent it: an integer when whole. */
static json_t *jnum(double v)
{
    return v == floor(v) && fabs(v) < 1e15 ? json_integer((json_int_t)v) : json_real(v);
}

static void set_new(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v);
}

static void set_str(json_t *o, const char *key, const char *s)
{
    set_new(o, key, jstr_lossy(s ? s : ""));
}

static void set_int(json_t *o, const char *key, int64_t v)
{
    set_new(o, key, json_integer((json_int_t)v));
}

json_t *agentwire_gpus_encode(const agentwire_gpu_t *gpus, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const agentwire_gpu_t *g = &gpus[i];
        json_t *o = json_object();
        set_int(o, "index", g->index);
        set_str(o, "uuid", g->uuid);
        set_str(o, "model", g->model);
        set_int(o, "memory_mb", g->memory_mb);
        set_str(o, "pci_bus", g->pci_bus);
        set_new(o, "healthy", json_boolean(g->healthy));
        if (g->has_utilization)
            set_new(o, "utilization", jnum(g->utilization));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *topology_encode(const int *topo, size_t n)
{
    json_t *m = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(row, json_integer(topo[i * n + k]));
        json_array_append_new(m, row);
    }
    return m;
}

static json_t *health_encode(const agentwire_health_t *h)
{
    json_t *o = json_object();
    set_new(o, "ok", json_boolean(h->ok));
    set_new(o, "load1", json_real(h->load1));
    set_int(o, "disk_free_mb", h->disk_free_mb);
    set_int(o, "gpus_healthy", h->gpus_healthy);
    set_int(o, "tasks", h->tasks);
    return o;
}

json_t *agentwire_node_encode(const agentwire_node_t *n)
{
    json_t *o = json_object();
    set_str(o, "name", n->name);
    if (n->same) { /* version 4: the description the server holds */
        set_str(o, "same", n->same);
        if (n->health.present)
            set_new(o, "health", health_encode(&n->health));
        return o;
    }
    set_str(o, "address", n->address);
    set_str(o, "boot_id", n->boot_id);
    set_int(o, "cpus", n->cpus);
    set_int(o, "memory_mb", n->memory_mb);
    set_str(o, "gpu_model", n->gpu_model);
    set_new(o, "hollow", json_boolean(n->hollow));
    set_str(o, "runtime", n->runtime);
    set_str(o, "log_url", n->log_url);
    set_new(o, "gpus", agentwire_gpus_encode(n->gpus, n->ngpus));
    set_str(o, "gpu_backend", n->gpu_backend ? n->gpu_backend : "none");
    if (n->topology && n->ngpus)
        set_new(o, "topology", topology_encode(n->topology, n->ngpus));
    if (n->desc)
        set_str(o, "desc", n->desc);
    if (n->health.present)
        set_new(o, "health", health_encode(&n->health));
    return o;
}

json_t *agentwire_report_encode(const agentwire_report_t *t)
{
    json_t *o = json_object();
    set_str(o, "attempt_id", t->attempt_id);
    set_str(o, "state", agentwire_state_name(t->state));
    if (t->state == AGENTWIRE_STARTING || t->state == AGENTWIRE_RUNNING) {
        set_int(o, "pid", t->pid);
        set_int(o, "started_ms", t->started_ms);
        return o;
    }
    set_int(o, "exit_code", t->exit_code);
    set_new(o, "oom", json_boolean(t->oom));
    set_int(o, "signal", t->signal);
    set_int(o, "started_ms", t->started_ms);
    set_int(o, "finished_ms", t->finished_ms);
    if (t->diagnostics)
        set_str(o, "diagnostics", t->diagnostics);
    return o;
}

json_t *agentwire_req_encode(const agentwire_req_t *m)
{
    json_t *o = json_object(), *tasks = json_array();
    for (size_t i = 0; i < m->ntasks; i++)
        json_array_append_new(tasks, agentwire_report_encode(&m->tasks[i]));
    int version = m->version ? m->version : AGENTWIRE_VERSION;
    set_int(o, "version", version);
    if (m->accept > version && version >= 4)
        set_int(o, "accept", m->accept);
    agentwire_node_t node = m->node;
    if (version < 4) /* no digests before version 4 */
        node.desc = node.same = NULL;
    set_new(o, "node", agentwire_node_encode(&node));
    set_int(o, "known_seq", (int64_t)m->known_seq);
    if (m->epoch && version >= 3)
        set_str(o, "epoch", m->epoch);
    set_int(o, "wait_ms", m->wait_ms);
    if (m->hold_acks)
        set_new(o, "hold_acks", json_true());
    set_new(o, "tasks", tasks);
    return o;
}

static json_t *image_encode(const agentwire_task_t *t)
{
    if (!t->image)
        return json_null();
    json_t *o = json_object();
    set_str(o, "uri", t->image);
    if (t->image_auth) {
        json_t *a = json_object();
        if (t->image_user)
            set_str(a, "username", t->image_user);
        if (t->image_password)
            set_str(a, "password", t->image_password);
        if (t->image_registry)
            set_str(a, "registryuri", t->image_registry);
        set_new(o, "auth", a);
    }
    return o;
}

static json_t *ints_encode(const int *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

/* Version 5's "jobenv": the placement the agent derives the env from. */
static json_t *jobenv_encode(const agentwire_jobenv_t *j)
{
    json_t *o = json_object(), *gpus = json_array(), *roles = json_array();
    for (int g = 0; g < 64; g++)
        if (j->gpus & (1ull << g))
            json_array_append_new(gpus, json_integer(g));
    for (size_t k = 0; k < j->nroles; k++) {
        const agentwire_jobrole_t *r = &j->roles[k];
        json_t *ro = json_object(), *ports = json_array(), *hosts = json_array();
        for (int p = 0; p < r->nports; p++) {
            const agentwire_portdef_t *d = &j->portdefs[r->port0 + (size_t)p];
            json_array_append_new(ports, json_pack("[oi]", jstr_lossy(d->label), d->count));
        }
        for (int i = 0; i < r->instances; i++) {
            const agentwire_host_t *h = &j->hosts[r->host0 + (size_t)i];
            if (!h->placed) {
                json_array_append_new(hosts, json_null());
                continue;
            }
            json_t *ho = json_array();
            json_array_append_new(ho, jstr_lossy(h->ip ? h->ip : ""));
            for (int p = 0; p < h->nports; p++)
                json_array_append_new(ho, json_integer(j->ports[h->port0 + (size_t)p]));
            json_array_append_new(hosts, ho);
        }
        set_str(ro, "name", r->name);
        set_int(ro, "instances", r->instances);
        set_new(ro, "resource", json_pack("[iiii]", r->gpu, r->cpu, r->mem_mb, r->shm_mb));
        set_new(ro, "ports", ports);
        set_new(ro, "hosts", hosts);
        json_array_append_new(roles, ro);
    }
    set_str(o, "vc", j->vc);
    set_int(o, "role", j->role);
    set_new(o, "gpus", gpus);
    set_new(o, "roles", roles);
    return o;
}

static json_t *task_encode(const agentwire_task_t *t, int version)
{
    json_t *o = json_object(), *env = json_object(), *ports = json_object();
    unsigned omit = agentwire_task_omits(t, version); /* version 7 */
    for (size_t i = 0; i < t->nenv; i++)
        set_str(env, t->env[i].name, t->env[i].value);
    for (size_t i = 0; i < t->nports; i++)
        set_new(ports, t->ports[i].label, ints_encode(t->ports[i].ports, t->ports[i].n));
    const char *user = t->user ? t->user : "";
    size_t ulen = t->user_len ? t->user_len : strlen(user);
    set_str(o, "attempt_id", t->attempt_id);
    if (!(omit & AGENTWIRE_OMIT_IDS))
        set_str(o, "job", t->job);
    if (!(omit & AGENTWIRE_OMIT_USER))
        set_new(o, "user", json_stringn(user, ulen));
    if (!(omit & AGENTWIRE_OMIT_IDS)) {
        set_str(o, "role", t->role);
        set_int(o, "index", t->index);
        set_int(o, "job_attempt", t->job_attempt);
        set_int(o, "task_attempt", t->task_attempt);
    }
    if (!(omit & AGENTWIRE_OMIT_IMAGE_OBJ))
        set_new(o, "image", image_encode(t));
    else if (t->image)
        set_str(o, "image", t->image);
    if (t->command) /* version 2: absent for an attempt the agent reported */
        set_str(o, "command", t->command);
    if (t->jobenv) { /* version 5 */
        json_decref(env);
        set_new(o, "jobenv", jobenv_encode(t->jobenv));
    } else {
        set_new(o, "env", env);
    }
    if (!(omit & AGENTWIRE_OMIT_GPUS))
        set_new(o, "gpus", ints_encode(t->gpus, t->ngpus));
    if (!(omit & AGENTWIRE_OMIT_RESOURCE)) {
        set_new(o, "cpu", jnum(t->cpu));
        set_int(o, "memory_mb", t->memory_mb);
        set_int(o, "shm_mb", t->shm_mb);
    }
    if (!(omit & AGENTWIRE_OMIT_PORTS))
        set_new(o, "ports", ports);
    else
        json_decref(ports);
    if (!(omit & AGENTWIRE_OMIT_GRACE))
        set_int(o, "kill_grace_ms", t->kill_grace_ms);
    if (t->has_task_uid)
        set_int(o, "task_uid", t->task_uid);
    if (t->has_mounts) {
        json_t *mounts = json_array();
        for (size_t i = 0; i < t->nmounts; i++) {
            json_t *m = json_object();
            set_str(m, "source", t->mounts[i].source);
            set_str(m, "target", t->mounts[i].target);
            set_new(m, "readonly", json_boolean(t->mounts[i].readonly));
            json_array_append_new(mounts, m);
        }
        set_new(o, "mounts", mounts);
    }
    return o;
}

json_t *agentwire_resp_encode(const agentwire_resp_t *m)
{
    json_t *o = json_object(), *ack = json_array();
    for (size_t i = 0; i < m->nack; i++)
        json_array_append_new(ack, jstr_lossy(m->ack[i]));
    int version = m->version ? m->version : AGENTWIRE_VERSION;
    set_int(o, "version", version);
    set_int(o, "seq", (int64_t)m->seq);
    set_new(o, "ack", ack);
    if (m->epoch && version >= 3)
        set_str(o, "epoch", m->epoch);
    bool delta = m->delta && m->has_tasks && version >= 3;
    if (delta)
        set_int(o, "base_seq", (int64_t)m->base_seq);
    if (m->has_tasks) {
        json_t *tasks = json_array();
        for (size_t i = 0; i < m->ntasks; i++)
            json_array_append_new(tasks, task_encode(&m->tasks[i], version));
        set_new(o, "tasks", tasks);
    }
    if (delta) {
        json_t *removed = json_array();
        for (size_t i = 0; i < m->nremoved; i++)
            json_array_append_new(removed, jstr_lossy(m->removed[i]));
        set_new(o, "removed", removed);
    }
    set_int(o, "heartbeat_ms", m->heartbeat_ms);
    if (m->credential && version >= 2)
        set_str(o, "credential", m->credential);
    if (m->log_key && version >= 2)
        set_str(o, "log_key", m->log_key);
    if (m->node_desc && version >= 4)
        set_str(o, "node_desc", m->node_desc);
    return o;
}

int agentwire_answer_version(const agentwire_req_t *m)
{
    int v = m->accept > m->version ? m->accept : m->version;
    return v > AGENTWIRE_VERSION ? AGENTWIRE_VERSION : v;
}

/* ---- clearing and names -------------------------------------------------- */

void agentwire_req_clear(agentwire_req_t *m)
{
    free(m->node.gpus);
    free(m->node.topology);
    free(m->tasks);
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

void agentwire_resp_clear(agentwire_resp_t *m)
{
    for (size_t i = 0; m->tasks && i < m->ntasks; i++) {
        agentwire_task_t *t = &m->tasks[i];
        for (size_t p = 0; t->ports && p < t->nports; p++)
            free(t->ports[p].ports);
        free(t->ports);
        free(t->env);
        free(t->env_text);
        free(t->names);
        agentwire_jobenv_free(t->jobenv);
        free(t->gpus);
        free(t->mounts);
    }
    free(m->tasks);
    free(m->ack);
    free(m->removed);
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

static const char *const state_names[] = {
    [AGENTWIRE_STARTING] = "starting",
    [AGENTWIRE_RUNNING] = "running",
    [AGENTWIRE_EXITED] = "exited",
    [AGENTWIRE_FAILED_TO_START] = "failed_to_start",
};

const char *agentwire_state_name(agentwire_state_t s)
{
    return (size_t)s < ARRAY_LEN(state_names) ? state_names[s] : "exited";
}

bool agentwire_state_parse(const char *s, agentwire_state_t *out)
{
    for (size_t i = 0; i < ARRAY_LEN(state_names); i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (agentwire_state_t)i;
            return true;
        }
    return false;
}
