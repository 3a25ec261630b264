/*
 * agentwire_read.c - the agent protocol's decoders (see agentwire.h).
 *
 * Decoding goes through a reader (rd_t) that knows the path of the object
 * it reads ("tasks[2]") and stops at the first field that is wrong, with a
 * message that names it.  The encoders are agentwire.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "wire/agentwire.h"

/* A reader's path ("node", "tasks[2]") is made only when a field is
 * wrong: from the readers it is a part of (up), each its key under the
 * one above and, for a list's item, its index (a snprintf of the path for
 * every object read was ~10% of a sync answer's decoding). */
typedef struct rd rd_t;
struct rd {
    const rd_t *up;  /* the reader of the object this one's is in; NULL: the root */
    const char *key; /* under up: the object's key, or the list's */
    size_t idx;      /* the item's index in that list; SIZE_MAX: no list */
    char *err;
    size_t errlen;
};

/* r's path ("" for the root) appended to out (n bytes, a string). */
static void rd_path(const rd_t *r, char *out, size_t n)
{
    if (!r->up)
        return;
    rd_path(r->up, out, n);
    size_t l = strlen(out);
    if (r->idx == SIZE_MAX)
        snprintf(out + l, n - l, "%s%s", l ? "." : "", r->key);
    else
        snprintf(out + l, n - l, "%s%s[%zu]", l ? "." : "", r->key, r->idx);
}

static bool rd_fail(const rd_t *r, const char *key, const char *what)
{
    char path[256] = "";
    rd_path(r, path, sizeof(path));
    /* A message cut to fit err still names the field first. */
    if (snprintf(r->err, r->errlen, "%s%s%s: %s", path, *path && key ? "." : "", key ? key : "",
                 what) >= (int)r->errlen)
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

/* An optional token: an epoch or a digest (1 to max letters, digits, '-'
 * or '_'), written into requests as is. */
static bool rd_token(const rd_t *r, const json_t *o, const char *key, size_t max, const char **out)
{
    if (!rd_str(r, o, key, false, max, NULL, out))
        return false;
    if (*out && (!**out || (*out)[strspn(*out, "0123456789abcdefghijklmnopqrstuvwxyz"
                                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_")] != '\0'))
        return rd_fail(r, key, "must be letters, digits, '-' or '_'");
    return true;
}

static bool rd_epoch(const rd_t *r, const json_t *o, const char **out)
{
    return rd_token(r, o, "epoch", AGENTWIRE_EPOCH_MAX, out);
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
 * the object under key ("node.health"); r must outlive it. */
static rd_t rd_item(const rd_t *r, const char *key, size_t i)
{
    return (rd_t){.up = r, .key = key, .idx = i, .err = r->err, .errlen = r->errlen};
}

static rd_t rd_sub(const rd_t *r, const char *key)
{
    return (rd_t){.up = r, .key = key, .idx = SIZE_MAX, .err = r->err, .errlen = r->errlen};
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
    if (!rd_obj(r, o, "health", &v))
        return false;
    if (!v)
        return true;
    rd_t s = rd_sub(r, "health");
    h->present = true;
    return rd_bool(&s, v, "ok", &h->ok) && rd_num(&s, v, "load1", &h->load1) &&
           rd_i64(&s, v, "disk_free_mb", -1, INT64_MAX / 2, &h->disk_free_mb) &&
           rd_i64(&s, v, "gpus_healthy", 0, PAI_MAX_NODE_GPUS, &h->gpus_healthy) &&
           rd_i64(&s, v, "tasks", 0, INT64_MAX / 2, &h->tasks);
}

/* Version 4's digests: "same" (then the description is not read: the
 * server holds it) or "desc". */
static bool rd_digests(const rd_t *r, const json_t *o, int version, agentwire_node_t *n)
{
    return version < 4 || (rd_token(r, o, "same", AGENTWIRE_DESC_MAX, &n->same) &&
                           (n->same || rd_token(r, o, "desc", AGENTWIRE_DESC_MAX, &n->desc)));
}

static bool rd_node(const rd_t *root, const json_t *o, int version, agentwire_node_t *n)
{
    rd_t r = rd_sub(root, "node");
    const json_t *gpus;
    if (!o)
        return rd_fail(root, "node", "is required");
    if (!rd_is_obj(&r, o) || !rd_str(&r, o, "name", true, PAI_MAX_NAME, NULL, &n->name) ||
        !rd_digests(&r, o, version, n))
        return false;
    if (n->same) {
        n->gpus = xcalloc(1, sizeof(*n->gpus));
        return rd_health(&r, o, &n->health);
    }
    if (!rd_str(&r, o, "address", false, 0, NULL, &n->address) ||
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
        rd_t g = rd_item(&r, "gpus", i);
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
    rd_t r = {.idx = SIZE_MAX, .err = err, .errlen = sizeof(err)};
    const json_t *tasks;
    int64_t known = 0;
    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    if (!json_is_object(root)) {
        rd_fail(&r, NULL, "the body must be a JSON object");
        return pai_error_set(e, PAI_E_INVALID, "%s", err);
    }
    out->root = json_incref(root);
    if (!rd_version(&r, root, "server", &out->version) ||
        !rd_node(&r, json_object_get(root, "node"), out->version, &out->node) ||
        !rd_i64(&r, root, "known_seq", 0, (int64_t)1 << 53, &known) ||
        (out->version >= 3 && !rd_epoch(&r, root, &out->epoch)) ||
        !rd_i64(&r, root, "wait_ms", 0, INT64_MAX / 2, &out->wait_ms) ||
        !rd_bool(&r, root, "hold_acks", &out->hold_acks) ||
        !rd_list(&r, root, "tasks", PAI_MAX_AGENT_TASKS, &tasks) ||
        (out->version >= 4 && !rd_int(&r, root, "accept", 1, INT32_MAX, &out->accept)))
        goto fail;
    out->known_seq = (uint64_t)known;
    out->tasks = xcalloc(json_array_size(tasks) + 1, sizeof(*out->tasks));
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        char why[sizeof(out->skip_reason)];
        rd_t t = rd_item(&r, "tasks", i);
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
    if (!img || json_is_null(img))
        return true;
    if (json_is_string(img)) /* a bare uri (compatible form) */
        return rd_str(r, o, "image", false, 0, NULL, &t->image);
    if (!json_is_object(img))
        return rd_fail(r, "image", "must be null, a string or an object");
    rd_t s = rd_sub(r, "image");
    if (!rd_str(&s, img, "uri", false, 0, NULL, &t->image) || !rd_obj(&s, img, "auth", &auth))
        return false;
    if (!auth)
        return true;
    t->image_auth = true;
    rd_t a = rd_sub(&s, "auth");
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

/* A version 5 role's "ports": [[label, count], ...] into j->portdefs. */
static bool rd_portdefs(const rd_t *r, const json_t *list, agentwire_jobenv_t *j,
                        agentwire_jobrole_t *role)
{
    role->port0 = j->nportdefs;
    for (size_t p = 0; p < json_array_size(list); p++) {
        const json_t *d = json_array_get(list, p), *label = json_array_get(d, 0),
                     *count = json_array_get(d, 1);
        if (!json_is_array(d) || json_array_size(d) != 2 || !json_is_string(label) ||
            !json_is_integer(count) || json_integer_value(count) < 0 ||
            json_integer_value(count) > PAI_MAX_AGENT_LIST ||
            strlen(json_string_value(label)) != json_string_length(label))
            return rd_fail(r, "ports", "must be a list of [label, count]");
        j->portdefs[j->nportdefs++] = (agentwire_portdef_t){
            .label = json_string_value(label), .count = (int)json_integer_value(count)};
    }
    role->nports = (int)json_array_size(list);
    return true;
}

/* A version 5 role's "hosts": [[ip, port...] or null, ...] into j->hosts. */
static bool rd_hosts(const rd_t *r, const json_t *list, agentwire_jobenv_t *j,
                     agentwire_jobrole_t *role)
{
    if ((int)json_array_size(list) != role->instances)
        return rd_fail(r, "hosts", "must list every instance");
    role->host0 = j->nhosts;
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *h = json_array_get(list, i), *ip = json_array_get(h, 0);
        agentwire_host_t *out = &j->hosts[j->nhosts++];
        if (json_is_null(h))
            continue;
        if (!json_is_array(h) || !json_is_string(ip) ||
            strlen(json_string_value(ip)) != json_string_length(ip))
            return rd_fail(r, "hosts", "must be a list of [ip, port...] or null");
        *out = (agentwire_host_t){.placed = true, .ip = json_string_value(ip), .port0 = j->nports};
        for (size_t p = 1; p < json_array_size(h); p++) {
            const json_t *v = json_array_get(h, p);
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535)
                return rd_fail(r, "hosts", "ports must be integers in [0, 65535]");
            j->ports[j->nports++] = (int)json_integer_value(v);
        }
        out->nports = (int)(json_array_size(h) - 1);
    }
    return true;
}

/* The sizes of a version 5 "jobenv"'s arrays, checked before anything is
 * allocated; false when one is past its cap. */
static bool jobenv_sizes(const json_t *roles, agentwire_jobenv_t *j)
{
    size_t labels = 0, hosts = 0, ports = 0;
    for (size_t k = 0; k < json_array_size(roles); k++) {
        const json_t *ro = json_array_get(roles, k), *pl = json_object_get(ro, "ports"),
                     *hl = json_object_get(ro, "hosts");
        labels += json_array_size(pl);
        hosts += json_array_size(hl);
        for (size_t i = 0; i < json_array_size(hl); i++)
            ports += json_array_size(json_array_get(hl, i));
    }
    if (labels > PAI_MAX_AGENT_LIST || hosts > PAI_MAX_AGENT_TASKS || ports > PAI_MAX_AGENT_MSG)
        return false;
    j->roles = xcalloc(json_array_size(roles) + 1, sizeof(*j->roles));
    j->portdefs = xcalloc(labels + 1, sizeof(*j->portdefs));
    j->hosts = xcalloc(hosts + 1, sizeof(*j->hosts));
    j->ports = xcalloc(ports + 1, sizeof(*j->ports));
    return true;
}

static bool rd_jobroles(const rd_t *r, const json_t *roles, agentwire_jobenv_t *j)
{
    for (size_t k = 0; k < json_array_size(roles); k++) {
        const json_t *ro = json_array_get(roles, k), *res, *pl, *hl;
        agentwire_jobrole_t *role = &j->roles[j->nroles++];
        rd_t s = rd_item(r, "roles", k);
        if (!rd_is_obj(&s, ro) || !rd_str(&s, ro, "name", true, 0, NULL, &role->name) ||
            !rd_int(&s, ro, "instances", 0, PAI_MAX_AGENT_TASKS, &role->instances) ||
            !rd_list(&s, ro, "resource", 4, &res) ||
            !rd_list(&s, ro, "ports", PAI_MAX_AGENT_LIST, &pl) ||
            !rd_list(&s, ro, "hosts", PAI_MAX_AGENT_TASKS, &hl) || !rd_portdefs(&s, pl, j, role) ||
            !rd_hosts(&s, hl, j, role))
            return false;
        if (res && json_array_size(res) != 4)
            return rd_fail(&s, "resource", "must be [gpu, cpu, memoryMB, shmMB]");
        int *res_of[4] = {&role->gpu, &role->cpu, &role->mem_mb, &role->shm_mb};
        for (size_t i = 0; i < json_array_size(res); i++) {
            const json_t *v = json_array_get(res, i);
            if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
                json_integer_value(v) > INT32_MAX)
                return rd_fail(&s, "resource", "must be [gpu, cpu, memoryMB, shmMB]");
            *res_of[i] = (int)json_integer_value(v);
        }
    }
    return true;
}

/* The derived variables into t->env, a repeated name kept in its first
 * place with its last value and a name that is not UTF-8 left out (what
 * the server's env object did in version 4, agentwire_resp.c). */
static bool jobenv_derive(const rd_t *r, agentwire_task_t *t)
{
    size_t len, n;
    if (agentwire_env_count(t->jobenv) > PAI_MAX_AGENT_LIST)
        return rd_fail(r, "jobenv", "makes too many variables");
    t->env_text =
        agentwire_env_pairs(t->job, t->user, t->user ? strlen(t->user) : 0, t->jobenv, &len, &n);
    t->env = xcalloc(n + 1, sizeof(*t->env));
    /* the names seen: an open-addressed table of indices into t->env + 1 */
    size_t slots = 64;
    while (slots < 2 * n)
        slots *= 2;
    uint32_t local[64], *seen = slots == 64 ? local : xcalloc(slots, sizeof(*seen));
    memset(seen, 0, slots * sizeof(*seen));
    bool ok = true;
    const char *p = t->env_text;
    for (size_t i = 0; i < n && ok; i++) {
        const char *name = p, *value = p + strlen(p) + 1;
        size_t nlen = (size_t)(value - 1 - name);
        p = value + strlen(value) + 1;
        if (!*name || memchr(name, '=', nlen)) {
            ok = rd_fail(r, "jobenv", "makes a variable name that is empty or has '='");
            break;
        }
        if (!agentwire_utf8_valid(name, nlen))
            continue;
        uint32_t h = 2166136261u;
        for (size_t b = 0; b < nlen; b++)
            h = (h ^ (unsigned char)name[b]) * 16777619u;
        size_t at = h & (slots - 1);
        while (seen[at] && strcmp(t->env[seen[at] - 1].name, name) != 0)
            at = (at + 1) & (slots - 1);
        if (seen[at]) { /* repeated: its first place, this value */
            t->env[seen[at] - 1].value = value;
            continue;
        }
        seen[at] = (uint32_t)(t->nenv + 1);
        t->env[t->nenv++] = (agentwire_env_t){.name = name, .value = value};
    }
    if (seen != local)
        free(seen);
    return ok;
}

/* Version 5's "jobenv" (instead of "env"): the placement, checked, and
 * the variables derived from it as the server derives them. */
static bool rd_jobenv(const rd_t *r, const json_t *o, agentwire_task_t *t)
{
    const json_t *je, *gpus, *roles;
    if (!rd_obj(r, o, "jobenv", &je))
        return false;
    if (!je)
        return true;
    if (json_object_get(o, "env"))
        return rd_fail(r, "jobenv", "is sent instead of env, not with it");
    rd_t s = rd_sub(r, "jobenv");
    agentwire_jobenv_t *j = t->jobenv = xcalloc(1, sizeof(*t->jobenv));
    if (!rd_str(&s, je, "vc", false, 0, "", &j->vc) ||
        !rd_int(&s, je, "role", 0, INT32_MAX, &j->role) || !rd_list(&s, je, "gpus", 64, &gpus) ||
        !rd_list(&s, je, "roles", PAI_MAX_AGENT_LIST, &roles))
        return false;
    for (size_t i = 0; i < json_array_size(gpus); i++) {
        const json_t *g = json_array_get(gpus, i);
        if (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) > 63)
            return rd_fail(&s, "gpus", "must be a list of GPU indices in [0, 63]");
        j->gpus |= 1ull << json_integer_value(g);
    }
    if (!jobenv_sizes(roles, j))
        return rd_fail(&s, "roles", "are too many");
    j->index = t->index;
    if (!rd_jobroles(&s, roles, j))
        return false;
    const char *why = agentwire_jobenv_check(j);
    if (why)
        return rd_fail(&s, NULL, why);
    return jobenv_derive(r, t);
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
    if (!rd_list(r, o, "mounts", PAI_MAX_AGENT_LIST, &list))
        return false;
    if (!list)
        return true;
    t->has_mounts = true;
    t->mounts = xcalloc(json_array_size(list) + 1, sizeof(*t->mounts));
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *m = json_array_get(list, i);
        agentwire_mount_t *mt = &t->mounts[t->nmounts++];
        rd_t s = rd_item(r, "mounts", i);
        if (!rd_is_obj(&s, m) || !rd_str(&s, m, "source", true, 0, NULL, &mt->source) ||
            !rd_str(&s, m, "target", true, 0, NULL, &mt->target) ||
            !rd_bool(&s, m, "readonly", &mt->readonly))
            return false;
    }
    return true;
}

/* Version 7: a task without "job" has its job, role and numbers in its
 * id; one without "user" the job's owner (agentwire_compact.c). */
static bool rd_names(const rd_t *r, const json_t *o, agentwire_task_t *t)
{
    bool ids = !json_object_get(o, "job"), user = !json_object_get(o, "user");
    if (ids && (json_object_get(o, "role") || json_object_get(o, "index") ||
                json_object_get(o, "job_attempt") || json_object_get(o, "task_attempt")))
        return rd_fail(r, "job", "is required with role, index, job_attempt or task_attempt");
    const char *why = ids || user ? agentwire_task_derive_names(t, ids, user) : NULL;
    return why ? rd_fail(r, "attempt_id", why) : true;
}

/* Version 7: the fields left out that the jobenv gives (a task without a
 * jobenv has them all), and the default kill grace. */
static bool rd_derived(const rd_t *r, const json_t *o, agentwire_task_t *t, int64_t *grace)
{
    if (!json_object_get(o, "kill_grace_ms"))
        *grace = AGENTWIRE_KILL_GRACE_MS;
    bool gpus = !json_object_get(o, "gpus"), ports = !json_object_get(o, "ports"),
         res = !json_object_get(o, "cpu") && !json_object_get(o, "memory_mb") &&
               !json_object_get(o, "shm_mb");
    if (!t->jobenv)
        return true;
    const char *why = gpus || ports || res ? agentwire_task_derive_rest(t, gpus, res, ports) : NULL;
    return why ? rd_fail(r, "ports", why) : true;
}

static bool rd_task(const rd_t *r, const json_t *o, int version, agentwire_task_t *t)
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
        !rd_i64(r, o, "task_uid", 0, INT32_MAX, &t->task_uid) ||
        (version >= AGENTWIRE_COMPACT_VERSION && !rd_names(r, o, t)) ||
        (version >= AGENTWIRE_JOBENV_VERSION && !rd_jobenv(r, o, t)) ||
        (version >= AGENTWIRE_COMPACT_VERSION && !rd_derived(r, o, t, &grace)))
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
    rd_t r = {.idx = SIZE_MAX, .err = err, .errlen = sizeof(err)};
    const json_t *tasks;
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
        (out->version >= 3 && !rd_delta(&r, root, tasks != NULL, out)) ||
        (out->version >= 4 &&
         !rd_token(&r, root, "node_desc", AGENTWIRE_DESC_MAX, &out->node_desc)))
        goto fail;
    out->seq = (uint64_t)seq;
    out->has_tasks = tasks != NULL;
    out->ntasks = json_array_size(tasks);
    out->tasks = xcalloc(out->ntasks + 1, sizeof(*out->tasks));
    for (size_t i = 0; i < out->ntasks; i++) {
        rd_t t = rd_item(&r, "tasks", i);
        if (!rd_task(&t, json_array_get(tasks, i), out->version, &out->tasks[i]))
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
