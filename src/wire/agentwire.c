/*
 * agentwire.c - see agentwire.h.
 *
 * Encoding builds the objects key by key in the documented order (jansson
 * keeps insertion order), so the bytes on the wire are those of the
 * protocol's examples.  Decoding goes through a reader (rd_t) that knows
 * the path of the object it reads ("tasks[2]") and stops at the first
 * field that is wrong, with a message that names it.
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

/* A JSON string of s, its invalid UTF-8 bytes (and NULs) replaced by '?'. */
static json_t *jstr_lossy(const char *s)
{
    size_t n = strlen(s), i = 0;
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *t = xstrdup(s);
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)t + i, n - i);
        if (k == 0)
            t[i++] = '?';
        else
            i += k;
    }
    j = json_stringn(t, n);
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
    set_new(o, "node", agentwire_node_encode(&m->node));
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

static json_t *task_encode(const agentwire_task_t *t)
{
    json_t *o = json_object(), *env = json_object(), *ports = json_object();
    for (size_t i = 0; i < t->nenv; i++)
        set_str(env, t->env[i].name, t->env[i].value);
    for (size_t i = 0; i < t->nports; i++)
        set_new(ports, t->ports[i].label, ints_encode(t->ports[i].ports, t->ports[i].n));
    const char *user = t->user ? t->user : "";
    size_t ulen = t->user_len ? t->user_len : strlen(user);
    set_str(o, "attempt_id", t->attempt_id);
    set_str(o, "job", t->job);
    set_new(o, "user", json_stringn(user, ulen));
    set_str(o, "role", t->role);
    set_int(o, "index", t->index);
    set_int(o, "job_attempt", t->job_attempt);
    set_int(o, "task_attempt", t->task_attempt);
    set_new(o, "image", image_encode(t));
    if (t->command) /* version 2: absent for an attempt the agent reported */
        set_str(o, "command", t->command);
    set_new(o, "env", env);
    set_new(o, "gpus", ints_encode(t->gpus, t->ngpus));
    set_new(o, "cpu", jnum(t->cpu));
    set_int(o, "memory_mb", t->memory_mb);
    set_int(o, "shm_mb", t->shm_mb);
    set_new(o, "ports", ports);
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
            json_array_append_new(tasks, task_encode(&m->tasks[i]));
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
    return o;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct {
    const char *path; /* of the object being read: "node", "tasks[2]" */
    char *err;
    size_t errlen;
} rd_t;

static bool rd_fail(const rd_t *r, const char *key, const char *what)
{
    /* A message cut to fit err still names the field first. */
    if (snprintf(r->err, r->errlen, "%s%s%s: %s", r->path, *r->path && key ? "." : "",
                 key ? key : "", what) >= (int)r->errlen)
        r->err[r->errlen - 1] = '\0';
    return false;
}

/* A string field: absent -> dflt (false when required); max 0: unbounded. */
static bool rd_str(const rd_t *r, const json_t *o, const char *key, bool required, size_t max,
                   const char *dflt, const char **out)
{
    const json_t *v = json_object_get(o, key);
    *out = dflt;
    if (!v || json_is_null(v))
        return required ? rd_fail(r, key, "is required") : true;
    if (!json_is_string(v))
        return rd_fail(r, key, "must be a string");
    size_t len = json_string_length(v);
    if (required && len == 0)
        return rd_fail(r, key, "must not be empty");
    if (max && len > max) {
        char what[64];
        snprintf(what, sizeof(what), "is longer than %zu characters", max);
        return rd_fail(r, key, what);
    }
    if (memchr(json_string_value(v), '\0', len))
        return rd_fail(r, key, "must not contain NUL characters");
    *out = json_string_value(v);
    return true;
}

/* An optional epoch (AGENTWIRE_EPOCH_MAX letters, digits, '-' or '_'). */
static bool rd_epoch(const rd_t *r, const json_t *o, const char **out)
{
    if (!rd_str(r, o, "epoch", false, AGENTWIRE_EPOCH_MAX, NULL, out))
        return false;
    if (*out && (!**out || (*out)[strspn(*out, "0123456789abcdefghijklmnopqrstuvwxyz"
                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_")] != '\0'))
        return rd_fail(r, "epoch", "must be letters, digits, '-' or '_'");
    return true;
}

static bool rd_i64(const rd_t *r, const json_t *o, const char *key, int64_t min, int64_t max,
                   int64_t *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true; /* *out keeps its default */
    if (!json_is_integer(v))
        return rd_fail(r, key, "must be an integer");
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        char what[96];
        snprintf(what, sizeof(what), "must be in [%lld, %lld]", (long long)min, (long long)max);
        return rd_fail(r, key, what);
    }
    *out = x;
    return true;
}

static bool rd_int(const rd_t *r, const json_t *o, const char *key, int min, int max, int *out)
{
    int64_t v = *out;
    if (!rd_i64(r, o, key, min, max, &v))
        return false;
    *out = (int)v;
    return true;
}

static bool rd_bool(const rd_t *r, const json_t *o, const char *key, bool *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_boolean(v))
        return rd_fail(r, key, "must be true or false");
    *out = json_is_true(v);
    return true;
}

static bool rd_num(const rd_t *r, const json_t *o, const char *key, double *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v))
        return rd_fail(r, key, "must be a number");
    *out = json_number_value(v);
    return true;
}

/* An optional list of at most max items; *out NULL when absent. */
static bool rd_list(const rd_t *r, const json_t *o, const char *key, size_t max, const json_t **out)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_array(v))
        return rd_fail(r, key, "must be a list");
    if (json_array_size(v) > max) {
        char what[64];
        snprintf(what, sizeof(what), "has more than %zu items", max);
        return rd_fail(r, key, what);
    }
    *out = v;
    return true;
}

/* An optional object; *out NULL when absent. */
static bool rd_obj(const rd_t *r, const json_t *o, const char *key, const json_t **out)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_object(v))
        return rd_fail(r, key, "must be an object");
    *out = v;
    return true;
}

/* A reader for a part of r's object: item i of list key ("tasks[2]") or
 * the object under key ("node.health"); its path goes into buf, which
 * must not be r's own.  A path cut to fit buf is still a useful one. */
static rd_t rd_item(const rd_t *r, const char *key, size_t i, char *buf, size_t len)
{
    if (snprintf(buf, len, "%s%s%s[%zu]", r->path, *r->path ? "." : "", key, i) >= (int)len)
        buf[len - 1] = '\0';
    return (rd_t){.path = buf, .err = r->err, .errlen = r->errlen};
}

static rd_t rd_sub(const rd_t *r, const char *key, char *buf, size_t len)
{
    if (snprintf(buf, len, "%s%s%s", r->path, *r->path ? "." : "", key) >= (int)len)
        buf[len - 1] = '\0';
    return (rd_t){.path = buf, .err = r->err, .errlen = r->errlen};
}

static bool rd_is_obj(const rd_t *r, const json_t *v)
{
    return json_is_object(v) ? true : rd_fail(r, NULL, "must be an object");
}

static bool rd_version(const rd_t *r, const json_t *root, const char *side, int *out)
{
    const json_t *v = json_object_get(root, "version");
    if (!json_is_integer(v)) {
        char what[96];
        snprintf(what, sizeof(what), "version is required (%s speaks %d to %d)", side,
                 AGENTWIRE_MIN_VERSION, AGENTWIRE_VERSION);
        return rd_fail(r, NULL, what);
    }
    json_int_t got = json_integer_value(v);
    if (got < AGENTWIRE_MIN_VERSION || got > AGENTWIRE_VERSION) {
        snprintf(r->err, r->errlen,
                 "agent protocol version %lld not supported (%s speaks %d to %d)", (long long)got,
                 side, AGENTWIRE_MIN_VERSION, AGENTWIRE_VERSION);
        return false;
    }
    *out = (int)got;
    return true;
}

/* A list of integers in [min, max] into a new array. */
static bool rd_ints(const rd_t *r, const json_t *list, const char *key, int min, int max, int **out,
                    size_t *n)
{
    size_t cnt = json_array_size(list);
    *out = xcalloc(cnt ? cnt : 1, sizeof(int));
    *n = cnt;
    for (size_t i = 0; i < cnt; i++) {
        const json_t *v = json_array_get(list, i);
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
            char what[96];
            snprintf(what, sizeof(what), "items must be integers in [%d, %d]", min, max);
            return rd_fail(r, key, what);
        }
        (*out)[i] = (int)json_integer_value(v);
    }
    return true;
}

static bool rd_gpu(const rd_t *r, const json_t *o, agentwire_gpu_t *g)
{
    int64_t mem = 0;
    bool ok = rd_is_obj(r, o) && rd_int(r, o, "index", 0, INT32_MAX, &g->index) &&
              rd_str(r, o, "uuid", false, 0, "", &g->uuid) &&
              rd_str(r, o, "model", false, 0, "", &g->model) &&
              rd_i64(r, o, "memory_mb", 0, INT64_MAX / 2, &mem) &&
              rd_str(r, o, "pci_bus", false, 0, "", &g->pci_bus) &&
              rd_bool(r, o, "healthy", &g->healthy);
    g->memory_mb = mem;
    g->utilization = -1;
    if (ok && !rd_num(r, o, "utilization", &g->utilization))
        return false;
    g->has_utilization = g->utilization >= 0;
    return ok;
}

static bool rd_topology(const rd_t *r, const json_t *o, agentwire_node_t *n)
{
    const json_t *m;
    if (!rd_list(r, o, "topology", PAI_MAX_NODE_GPUS, &m))
        return false;
    if (!m)
        return true;
    if (json_array_size(m) != n->ngpus)
        return rd_fail(r, "topology", "must have one row per GPU");
    n->topology = xcalloc(n->ngpus * n->ngpus + 1, sizeof(int));
    for (size_t i = 0; i < n->ngpus; i++) {
        const json_t *row = json_array_get(m, i);
        if (!json_is_array(row) || json_array_size(row) != n->ngpus)
            return rd_fail(r, "topology", "must be a square matrix of integers");
        for (size_t k = 0; k < n->ngpus; k++) {
            const json_t *v = json_array_get(row, k);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000)
                return rd_fail(r, "topology", "must be a square matrix of integers in [0, 1000]");
            n->topology[i * n->ngpus + k] = (int)json_integer_value(v);
        }
    }
    return true;
}

static bool rd_health(const rd_t *r, const json_t *o, agentwire_health_t *h)
{
    const json_t *v;
    char path[64];
    if (!rd_obj(r, o, "health", &v))
        return false;
    if (!v)
        return true;
    rd_t s = rd_sub(r, "health", path, sizeof(path));
    h->present = true;
    return rd_bool(&s, v, "ok", &h->ok) && rd_num(&s, v, "load1", &h->load1) &&
           rd_i64(&s, v, "disk_free_mb", -1, INT64_MAX / 2, &h->disk_free_mb) &&
           rd_i64(&s, v, "gpus_healthy", 0, PAI_MAX_NODE_GPUS, &h->gpus_healthy) &&
           rd_i64(&s, v, "tasks", 0, INT64_MAX / 2, &h->tasks);
}

static bool rd_node(const rd_t *root, const json_t *o, agentwire_node_t *n)
{
    char path[16], ipath[64];
    rd_t r = rd_sub(root, "node", path, sizeof(path));
    const json_t *gpus;
    if (!o)
        return rd_fail(root, "node", "is required");
    if (!rd_is_obj(&r, o) || !rd_str(&r, o, "name", true, PAI_MAX_NAME, NULL, &n->name) ||
        !rd_str(&r, o, "address", false, 0, NULL, &n->address) ||
        !rd_str(&r, o, "boot_id", false, 0, NULL, &n->boot_id) ||
        !rd_int(&r, o, "cpus", 0, INT32_MAX, &n->cpus) ||
        !rd_i64(&r, o, "memory_mb", 0, INT64_MAX / 2, &n->memory_mb) ||
        !rd_str(&r, o, "gpu_model", false, 0, NULL, &n->gpu_model) ||
        !rd_bool(&r, o, "hollow", &n->hollow) ||
        !rd_str(&r, o, "runtime", false, 0, NULL, &n->runtime) ||
        !rd_str(&r, o, "log_url", false, 0, NULL, &n->log_url) ||
        !rd_str(&r, o, "gpu_backend", false, 0, NULL, &n->gpu_backend) ||
        !rd_list(&r, o, "gpus", PAI_MAX_NODE_GPUS, &gpus))
        return false;
    n->has_gpus = gpus != NULL;
    n->ngpus = json_array_size(gpus);
    n->gpus = xcalloc(n->ngpus + 1, sizeof(*n->gpus));
    for (size_t i = 0; i < n->ngpus; i++) {
        rd_t g = rd_item(&r, "gpus", i, ipath, sizeof(ipath));
        if (!rd_gpu(&g, json_array_get(gpus, i), &n->gpus[i]))
            return false;
    }
    return rd_topology(&r, o, n) && rd_health(&r, o, &n->health);
}

static bool rd_report(const rd_t *r, const json_t *o, agentwire_report_t *t)
{
    const char *state;
    if (!rd_is_obj(r, o) ||
        !rd_str(r, o, "attempt_id", true, PAI_MAX_ATTEMPT_ID, NULL, &t->attempt_id) ||
        !rd_str(r, o, "state", true, 0, NULL, &state))
        return false;
    if (!agentwire_state_parse(state, &t->state))
        return rd_fail(r, "state", "must be starting, running, exited or failed_to_start");
    return rd_i64(r, o, "pid", 0, INT32_MAX, &t->pid) &&
           rd_i64(r, o, "started_ms", 0, INT64_MAX / 2, &t->started_ms) &&
           rd_int(r, o, "exit_code", INT32_MIN, INT32_MAX, &t->exit_code) &&
           rd_bool(r, o, "oom", &t->oom) && rd_int(r, o, "signal", 0, 255, &t->signal) &&
           rd_i64(r, o, "finished_ms", 0, INT64_MAX / 2, &t->finished_ms) &&
           rd_str(r, o, "diagnostics", false, 0, NULL, &t->diagnostics);
}

pai_err_t agentwire_req_decode(json_t *root, agentwire_req_t *out, pai_error_t *e)
{
    char err[PAI_ERROR_MSG_MAX];
    rd_t r = {.path = "", .err = err, .errlen = sizeof(err)};
    const json_t *tasks;
    char ipath[64];
    int64_t known = 0;
    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    if (!json_is_object(root)) {
        rd_fail(&r, NULL, "the body must be a JSON object");
        return pai_error_set(e, PAI_E_INVALID, "%s", err);
    }
    out->root = json_incref(root);
    if (!rd_version(&r, root, "server", &out->version) ||
        !rd_node(&r, json_object_get(root, "node"), &out->node) ||
        !rd_i64(&r, root, "known_seq", 0, (int64_t)1 << 53, &known) ||
        (out->version >= 3 && !rd_epoch(&r, root, &out->epoch)) ||
        !rd_i64(&r, root, "wait_ms", 0, INT64_MAX / 2, &out->wait_ms) ||
        !rd_bool(&r, root, "hold_acks", &out->hold_acks) ||
        !rd_list(&r, root, "tasks", PAI_MAX_AGENT_TASKS, &tasks))
        goto fail;
    out->known_seq = (uint64_t)known;
    out->tasks = xcalloc(json_array_size(tasks) + 1, sizeof(*out->tasks));
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        char why[sizeof(out->skip_reason)];
        rd_t t = rd_item(&r, "tasks", i, ipath, sizeof(ipath));
        t.err = why;
        t.errlen = sizeof(why);
        agentwire_report_t *rep = &out->tasks[out->ntasks];
        if (rd_report(&t, json_array_get(tasks, i), rep)) {
            out->ntasks++;
            continue;
        }
        if (out->skipped++ == 0)
            str_copy(out->skip_reason, why, sizeof(out->skip_reason));
        memset(rep, 0, sizeof(*rep));
    }
    return PAI_OK;
fail:
    agentwire_req_clear(out);
    return pai_error_set(e, PAI_E_INVALID, "%s", err);
}

static bool rd_image(const rd_t *r, const json_t *o, agentwire_task_t *t)
{
    const json_t *img = json_object_get(o, "image"), *auth;
    char path[96], apath[112];
    if (!img || json_is_null(img))
        return true;
    if (json_is_string(img)) /* a bare uri (compatible form) */
        return rd_str(r, o, "image", false, 0, NULL, &t->image);
    if (!json_is_object(img))
        return rd_fail(r, "image", "must be null, a string or an object");
    rd_t s = rd_sub(r, "image", path, sizeof(path));
    if (!rd_str(&s, img, "uri", false, 0, NULL, &t->image) || !rd_obj(&s, img, "auth", &auth))
        return false;
    if (!auth)
        return true;
    t->image_auth = true;
    rd_t a = rd_sub(&s, "auth", apath, sizeof(apath));
    return rd_str(&a, auth, "username", false, 0, NULL, &t->image_user) &&
           rd_str(&a, auth, "password", false, 0, NULL, &t->image_password) &&
           rd_str(&a, auth, "registryuri", false, 0, NULL, &t->image_registry);
}

static bool rd_env(const rd_t *r, const json_t *o, agentwire_task_t *t)
{
    const json_t *env, *v;
    const char *key;
    if (!rd_obj(r, o, "env", &env))
        return false;
    if (!env)
        return true;
    if (json_object_size(env) > PAI_MAX_AGENT_LIST)
        return rd_fail(r, "env", "has too many variables");
    t->env = xcalloc(json_object_size(env) + 1, sizeof(*t->env));
    json_object_foreach((json_t *)env, key, v)
    {
        if (!json_is_string(v) || !*key || strchr(key, '='))
            return rd_fail(r, "env", "must map names (without '=') to strings");
        t->env[t->nenv++] = (agentwire_env_t){.name = key, .value = json_string_value(v)};
    }
    return true;
}

static bool rd_ports(const rd_t *r, const json_t *o, agentwire_task_t *t)
{
    const json_t *ports, *v;
    const char *key;
    if (!rd_obj(r, o, "ports", &ports))
        return false;
    if (!ports)
        return true;
    if (json_object_size(ports) > PAI_MAX_AGENT_LIST)
        return rd_fail(r, "ports", "has too many labels");
    t->ports = xcalloc(json_object_size(ports) + 1, sizeof(*t->ports));
    json_object_foreach((json_t *)ports, key, v)
    {
        agentwire_ports_t *p = &t->ports[t->nports++];
        p->label = key;
        if (!json_is_array(v) || json_array_size(v) > PAI_MAX_AGENT_LIST)
            return rd_fail(r, "ports", "must map labels to lists of ports");
        if (!rd_ints(r, v, "ports", 0, 65535, &p->ports, &p->n))
            return false;
    }
    return true;
}

static bool rd_mounts(const rd_t *r, const json_t *o, agentwire_task_t *t)
{
    const json_t *list;
    char path[96];
    if (!rd_list(r, o, "mounts", PAI_MAX_AGENT_LIST, &list))
        return false;
    if (!list)
        return true;
    t->has_mounts = true;
    t->mounts = xcalloc(json_array_size(list) + 1, sizeof(*t->mounts));
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *m = json_array_get(list, i);
        agentwire_mount_t *mt = &t->mounts[t->nmounts++];
        rd_t s = rd_item(r, "mounts", i, path, sizeof(path));
        if (!rd_is_obj(&s, m) || !rd_str(&s, m, "source", true, 0, NULL, &mt->source) ||
            !rd_str(&s, m, "target", true, 0, NULL, &mt->target) ||
            !rd_bool(&s, m, "readonly", &mt->readonly))
            return false;
    }
    return true;
}

static bool rd_task(const rd_t *r, const json_t *o, agentwire_task_t *t)
{
    const json_t *gpus;
    int64_t grace = 0;
    t->task_uid = -1;
    if (!rd_is_obj(r, o) ||
        !rd_str(r, o, "attempt_id", true, PAI_MAX_ATTEMPT_ID, NULL, &t->attempt_id) ||
        !rd_str(r, o, "job", false, 0, NULL, &t->job) ||
        !rd_str(r, o, "user", false, 0, NULL, &t->user) ||
        !rd_str(r, o, "role", false, 0, NULL, &t->role) ||
        !rd_int(r, o, "index", 0, INT32_MAX, &t->index) ||
        !rd_int(r, o, "job_attempt", 0, INT32_MAX, &t->job_attempt) ||
        !rd_int(r, o, "task_attempt", 0, INT32_MAX, &t->task_attempt) || !rd_image(r, o, t) ||
        !rd_str(r, o, "command", false, 0, NULL, &t->command) || !rd_env(r, o, t) ||
        !rd_list(r, o, "gpus", PAI_MAX_NODE_GPUS, &gpus) ||
        !rd_ints(r, gpus, "gpus", 0, PAI_MAX_NODE_GPUS - 1, &t->gpus, &t->ngpus) ||
        !rd_num(r, o, "cpu", &t->cpu) ||
        !rd_i64(r, o, "memory_mb", 0, INT64_MAX / 2, &t->memory_mb) ||
        !rd_i64(r, o, "shm_mb", 0, INT64_MAX / 2, &t->shm_mb) || !rd_ports(r, o, t) ||
        !rd_i64(r, o, "kill_grace_ms", 0, INT32_MAX, &grace) || !rd_mounts(r, o, t) ||
        !rd_i64(r, o, "task_uid", 0, INT32_MAX, &t->task_uid))
        return false;
    t->has_task_uid = t->task_uid >= 0;
    t->user_len = t->user ? strlen(t->user) : 0;
    t->kill_grace_ms = (int)grace;
    return true;
}

static bool rd_acks(const rd_t *r, const json_t *root, agentwire_resp_t *m)
{
    const json_t *acks;
    if (!rd_list(r, root, "ack", PAI_MAX_AGENT_TASKS, &acks))
        return false;
    m->nack = json_array_size(acks);
    m->ack = xcalloc(m->nack + 1, sizeof(*m->ack));
    for (size_t i = 0; i < m->nack; i++) {
        const json_t *a = json_array_get(acks, i);
        if (!json_is_string(a))
            return rd_fail(r, "ack", "must be a list of attempt ids");
        m->ack[i] = json_string_value(a);
    }
    return true;
}

/* Version 3: the epoch, and a delta's base_seq and removed ids. */
static bool rd_delta(const rd_t *r, const json_t *root, bool has_tasks, agentwire_resp_t *m)
{
    const json_t *removed;
    int64_t base = -1;
    if (!rd_epoch(r, root, &m->epoch) || !rd_i64(r, root, "base_seq", 0, (int64_t)1 << 53, &base) ||
        !rd_list(r, root, "removed", PAI_MAX_AGENT_TASKS, &removed))
        return false;
    if (base < 0)
        return removed ? rd_fail(r, "removed", "is sent only in a delta (with base_seq)") : true;
    if (!has_tasks)
        return rd_fail(r, "base_seq", "is sent only with tasks");
    m->delta = true;
    m->base_seq = (uint64_t)base;
    m->nremoved = json_array_size(removed);
    m->removed = xcalloc(m->nremoved + 1, sizeof(*m->removed));
    for (size_t i = 0; i < m->nremoved; i++) {
        const json_t *v = json_array_get(removed, i);
        if (!json_is_string(v) || json_string_length(v) == 0 ||
            json_string_length(v) > PAI_MAX_ATTEMPT_ID ||
            strlen(json_string_value(v)) != json_string_length(v))
            return rd_fail(r, "removed", "must be a list of attempt ids");
        m->removed[i] = json_string_value(v);
    }
    return true;
}

pai_err_t agentwire_resp_decode(json_t *root, agentwire_resp_t *out, pai_error_t *e)
{
    char err[PAI_ERROR_MSG_MAX];
    rd_t r = {.path = "", .err = err, .errlen = sizeof(err)};
    const json_t *tasks;
    char ipath[64];
    int64_t seq = 0;
    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    if (!json_is_object(root)) {
        rd_fail(&r, NULL, "the body must be a JSON object");
        return pai_error_set(e, PAI_E_PROTOCOL, "%s", err);
    }
    out->root = json_incref(root);
    if (!rd_version(&r, root, "agent", &out->version) ||
        !rd_i64(&r, root, "seq", 0, (int64_t)1 << 53, &seq) || !rd_acks(&r, root, out) ||
        !rd_list(&r, root, "tasks", PAI_MAX_AGENT_TASKS, &tasks) ||
        !rd_i64(&r, root, "heartbeat_ms", 0, INT32_MAX, &out->heartbeat_ms) ||
        (out->version >= 2 &&
         (!rd_str(&r, root, "credential", false, PAI_MAX_NODE_CRED, NULL, &out->credential) ||
          !rd_str(&r, root, "log_key", false, PAI_MAX_NODE_CRED, NULL, &out->log_key))) ||
        (out->version >= 3 && !rd_delta(&r, root, tasks != NULL, out)))
        goto fail;
    out->seq = (uint64_t)seq;
    out->has_tasks = tasks != NULL;
    out->ntasks = json_array_size(tasks);
    out->tasks = xcalloc(out->ntasks + 1, sizeof(*out->tasks));
    for (size_t i = 0; i < out->ntasks; i++) {
        rd_t t = rd_item(&r, "tasks", i, ipath, sizeof(ipath));
        if (!rd_task(&t, json_array_get(tasks, i), &out->tasks[i]))
            goto fail;
    }
    return PAI_OK;
fail:
    agentwire_resp_clear(out);
    return pai_error_set(e, PAI_E_PROTOCOL, "%s", err);
}

pai_err_t agentwire_resp_parse(const char *body, size_t len, agentwire_resp_t *out, pai_error_t *e)
{
    json_error_t je;
    memset(out, 0, sizeof(*out));
    if (len > PAI_MAX_AGENT_MSG)
        return pai_error_set(e, PAI_E_PROTOCOL, "the answer is larger than %u bytes",
                             PAI_MAX_AGENT_MSG);
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return pai_error_set(e, PAI_E_PROTOCOL, "not JSON: %s (line %d, column %d)", je.text,
                             je.line, je.column);
    pai_err_t rc = agentwire_resp_decode(root, out, e);
    json_decref(root);
    return rc;
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
