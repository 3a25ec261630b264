/*
 * job_parse.c - YAML text -> validated job_spec_t with OpenPAI's defaults.
 *
 * Procedure (job_parse):
 *  1. Refuse documents over PAI_MAX_JOB_YAML; parse with yamltree (libyaml,
 *     depth and alias-expansion limits).
 *  2. Walk the tree in dependency order: top-level fields, prerequisites,
 *     task roles (which name prerequisites), deployments (which name task
 *     roles), defaults (which name a deployment), extras (which name task
 *     roles).  Every problem is recorded with its position and field path
 *     and the walk goes on, so one pass reports all of them.
 *  3. Apply defaults while walking; on any problem free the spec.
 *
 * Types follow JSON-schema semantics over YAML 1.2 scalars (what OpenPAI's
 * server saw after js-yaml): `gpu: "1"` is a string, not an integer.  A
 * null value counts as absent.  Unknown fields are refused where OpenPAI's
 * server refused them (top level, task roles, resourcePerInstance,
 * dockerimage prerequisites) and kept elsewhere.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "protocol/job_parse_int.h"

/* ------------------------------------------------------------- patterns */

static bool is_role_name(const char *s)
{
    if (!s || !s[0] || strlen(s) > PAI_MAX_NAME)
        return false;
    if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

static void check_job_name(pctx_t *c, const ynode_t *map, const char *key, const char *s)
{
    if (!s)
        return;
    const ynode_t *at = ynode_get(map, key);
    if (strlen(s) > PAI_MAX_NAME)
        jp_add_error(c, at, key, "must be at most %u characters", PAI_MAX_NAME);
    else if (!str_is_name(s))
        jp_add_error(c, at, key, "must match ^[a-zA-Z0-9_-]+$");
}

static void check_protocol_version(pctx_t *c, const ynode_t *map, bool required)
{
    const ynode_t *v = jp_field(c, map, "protocolVersion", required);
    if (!v)
        return;
    yjson_type_t t = yjson_type(v);
    if ((t == YJ_INT || t == YJ_STRING) && strcmp(v->str, "2") == 0)
        return;
    jp_add_error(c, v, "protocolVersion", "must be 2");
}

/* ------------------------------------------------------- key/value maps */

static void kv_value(pctx_t *c, const ynode_t *v, job_kv_t *kv)
{
    if (v->kind == YNODE_SCALAR) {
        kv->value = v->str;
        return;
    }
    json_t *j = yjson_from_node(v);
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!s)
        abort();
    size_t n = strlen(s) + 1;
    char *dst = job_arena_alloc(c->spec, n);
    memcpy(dst, s, n);
    free(s);
    kv->value = dst;
}

static const ynode_t *parse_kvlist(pctx_t *c, const ynode_t *top, const char *key,
                                   job_kvlist_t *out)
{
    const ynode_t *m = jp_field(c, top, key, false);
    if (!m || jp_type_bad(c, m, key, YJ_MAP))
        return NULL;
    size_t old = jp_path_push(c, key);
    if (jp_check_map(c, m, NULL)) {
        out->items = job_arena_alloc(c->spec, (m->n ? m->n : 1) * sizeof(*out->items));
        out->n = m->n;
        for (size_t i = 0; i < m->n; i++) {
            out->items[i].key = m->pairs[i].key->str;
            kv_value(c, m->pairs[i].val, &out->items[i]);
        }
    }
    jp_path_pop(c, old);
    return m;
}

/* -------------------------------------------------------- prerequisites */

static const char *const docker_keys[] = {
    "protocolVersion", "name", "type", "version", "contributor",
    "description",     "auth", "uri",  NULL};
static const char *const auth_keys[] = {"username", "password", "registryuri", NULL};
static const char *const prereq_types[] = {"dockerimage", "script", "output", "data", NULL};

static void parse_auth(pctx_t *c, const ynode_t *m, job_prereq_t *p)
{
    const ynode_t *a = jp_field(c, m, "auth", false);
    if (!a || jp_type_bad(c, a, "auth", YJ_MAP))
        return;
    size_t old = jp_path_push(c, "auth");
    jp_check_map(c, a, auth_keys);
    p->has_auth = true;
    p->auth_username = jp_get_str(c, a, "username", false);
    p->auth_password = jp_get_str(c, a, "password", false);
    p->auth_registryuri = jp_get_str(c, a, "registryuri", false);
    jp_path_pop(c, old);
}

static void parse_prereq_type_fields(pctx_t *c, const ynode_t *m, job_prereq_t *p)
{
    if (p->type == JOB_PREREQ_DOCKERIMAGE) {
        jp_check_map(c, m, docker_keys);
        p->uri = jp_get_str(c, m, "uri", true);
        parse_auth(c, m, p);
        return;
    }
    jp_check_map(c, m, NULL);
    p->plugin = jp_get_str(c, m, "plugin", false);
    p->require = jp_get_str_list(c, m, "require", false, NULL, &p->n_require);
    if (p->type == JOB_PREREQ_DATA) {
        p->uris = jp_get_str_list(c, m, "uri", false, "must have at least one uri", &p->n_uris);
        p->uri = p->n_uris ? p->uris[0] : NULL;
    } else {
        p->uri = jp_get_str(c, m, "uri", false);
    }
}

static bool parse_prereq(pctx_t *c, const ynode_t *m, job_prereq_t *p)
{
    if (jp_type_bad(c, m, NULL, YJ_MAP))
        return false;
    p->line = m->line;
    p->col = m->col;
    const char *type = jp_get_str(c, m, "type", true);
    bool typed = false;
    for (size_t t = 0; type && prereq_types[t]; t++)
        if (strcmp(type, prereq_types[t]) == 0) {
            p->type = (job_prereq_type_t)t;
            typed = true;
        }
    if (type && !typed)
        jp_add_error(c, ynode_get(m, "type"), "type",
                     "must be one of dockerimage, script, output, data");
    p->name = jp_get_str(c, m, "name", true);
    check_job_name(c, m, "name", p->name);
    check_protocol_version(c, m, false);
    p->version = jp_get_str_or_num(c, m, "version");
    p->contributor = jp_get_str(c, m, "contributor", false);
    p->description = jp_get_str(c, m, "description", false);
    if (typed)
        parse_prereq_type_fields(c, m, p);
    return typed && p->name;
}

static void check_prereq_dup(pctx_t *c, const ynode_t *list, size_t i)
{
    job_spec_t *s = c->spec;
    for (size_t j = 0; j < i; j++) {
        if (s->prereqs[j].name && s->prereqs[j].type == s->prereqs[i].type &&
            strcmp(s->prereqs[j].name, s->prereqs[i].name) == 0) {
            jp_add_error(c, ynode_get(list->items[i], "name"), "name",
                         "duplicate %s prerequisite name '%s'",
                         job_prereq_type_name(s->prereqs[i].type), s->prereqs[i].name);
            return;
        }
    }
}

static bool prereq_name_exists(const job_spec_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_prereqs; i++)
        if (s->prereqs[i].name && strcmp(s->prereqs[i].name, name) == 0)
            return true;
    return false;
}

/* A reference to a prerequisite that already has its own error. */
static bool prereq_reported(const pctx_t *c, const char *name)
{
    if (c->prereqs_broken)
        return true;
    for (size_t i = 0; i < c->n_bad_prereqs; i++)
        if (strcmp(c->bad_prereqs[i], name) == 0)
            return true;
    return false;
}

static void check_requires(pctx_t *c, const ynode_t *list)
{
    job_spec_t *s = c->spec;
    for (size_t i = 0; i < s->n_prereqs; i++) {
        const ynode_t *req = ynode_get(list->items[i], "require");
        for (size_t k = 0; k < s->prereqs[i].n_require; k++) {
            if (prereq_name_exists(s, s->prereqs[i].require[k]) ||
                prereq_reported(c, s->prereqs[i].require[k]))
                continue;
            size_t old = jp_path_push_index(c, i);
            char f[48];
            snprintf(f, sizeof(f), "require[%zu]", k);
            jp_add_error(c, req->items[k], f, "no prerequisite named '%s'",
                         s->prereqs[i].require[k]);
            jp_path_pop(c, old);
        }
    }
}

static void parse_prereqs(pctx_t *c, const ynode_t *top)
{
    job_spec_t *s = c->spec;
    const ynode_t *l = jp_field(c, top, "prerequisites", true);
    c->prereqs_broken = true;
    if (!l || jp_type_bad(c, l, "prerequisites", YJ_SEQ))
        return;
    if (l->n == 0) {
        jp_add_error(c, l, "prerequisites", "must have at least one prerequisite");
        return;
    }
    if (l->n > JOB_MAX_PREREQS) {
        jp_add_error(c, l, "prerequisites", "at most %d prerequisites are allowed",
                     JOB_MAX_PREREQS);
        return;
    }
    c->prereqs_broken = false;
    c->bad_prereqs = job_arena_alloc(s, l->n * sizeof(*c->bad_prereqs));
    size_t old = jp_path_push(c, "prerequisites");
    s->prereqs = job_arena_alloc(s, l->n * sizeof(*s->prereqs));
    s->priv_->prereq_nodes = job_arena_alloc(s, l->n * sizeof(*s->priv_->prereq_nodes));
    s->n_prereqs = l->n;
    for (size_t i = 0; i < l->n; i++) {
        size_t o2 = jp_path_push_index(c, i);
        s->priv_->prereq_nodes[i] = l->items[i];
        job_prereq_t *p = &s->prereqs[i];
        if (parse_prereq(c, l->items[i], p)) {
            check_prereq_dup(c, l, i);
        } else {
            const ynode_t *name = ynode_get(l->items[i], "name");
            if (name && name->kind == YNODE_SCALAR)
                c->bad_prereqs[c->n_bad_prereqs++] = name->str;
            else if (!name)
                c->prereqs_broken = true; /* an unnamed item may be the one meant */
            p->name = NULL;
        }
        jp_path_pop(c, o2);
    }
    check_requires(c, l);
    jp_path_pop(c, old);
}

/* ----------------------------------------------------------- task roles */

static const char *const role_keys[] = {
    "instances", "completion", "taskRetryCount", "prerequisites",         "dockerImage",
    "data",      "output",     "script",         "extraContainerOptions", "resourcePerInstance",
    "commands",  NULL};
static const char *const rpi_keys[] = {"cpu", "memoryMB", "gpu", "ports", NULL};

/* A role's reference to a prerequisite of one type. */
static const job_prereq_t *ref_prereq(pctx_t *c, const ynode_t *m, const char *key,
                                      job_prereq_type_t type, bool required)
{
    const char *name = jp_get_str(c, m, key, required);
    if (!name)
        return NULL;
    const job_prereq_t *p = job_prereq_find(c->spec, type, name);
    if (p || prereq_reported(c, name))
        return p;
    const char *tn = job_prereq_type_name(type);
    for (size_t i = 0; i < c->spec->n_prereqs; i++) {
        const job_prereq_t *o = &c->spec->prereqs[i];
        if (o->name && strcmp(o->name, name) == 0) {
            jp_add_error(c, ynode_get(m, key), key, "prerequisite '%s' is of type %s, not %s", name,
                         job_prereq_type_name(o->type), tn);
            return NULL;
        }
    }
    jp_add_error(c, ynode_get(m, key), key, "no %s prerequisite named '%s'", tn, name);
    return NULL;
}

static void parse_role_prereq_list(pctx_t *c, const ynode_t *m, job_role_t *r)
{
    r->prerequisites = jp_get_str_list(c, m, "prerequisites", false, NULL, &r->n_prerequisites);
    const ynode_t *l = ynode_get(m, "prerequisites");
    for (size_t i = 0; i < r->n_prerequisites; i++) {
        if (prereq_name_exists(c->spec, r->prerequisites[i]) ||
            prereq_reported(c, r->prerequisites[i]))
            continue;
        char f[48];
        snprintf(f, sizeof(f), "prerequisites[%zu]", i);
        jp_add_error(c, l->items[i], f, "no prerequisite named '%s'", r->prerequisites[i]);
    }
}

static void parse_completion(pctx_t *c, const ynode_t *m, job_role_t *r)
{
    r->min_failed = 1;
    r->min_succeeded = r->instances;
    const ynode_t *cp = jp_field(c, m, "completion", false);
    if (!cp || jp_type_bad(c, cp, "completion", YJ_MAP))
        return;
    size_t old = jp_path_push(c, "completion");
    jp_check_map(c, cp, NULL);
    jp_get_count_or_off(c, cp, "minFailedInstances", PAI_MAX_TASKS_PER_JOB, &r->min_failed);
    jp_get_count_or_off(c, cp, "minSucceededInstances", PAI_MAX_TASKS_PER_JOB, &r->min_succeeded);
    jp_path_pop(c, old);
}

static void parse_container_options(pctx_t *c, const ynode_t *m, job_role_t *r)
{
    r->shm_mb = 512;
    const ynode_t *o = jp_field(c, m, "extraContainerOptions", false);
    if (!o || jp_type_bad(c, o, "extraContainerOptions", YJ_MAP))
        return;
    size_t old = jp_path_push(c, "extraContainerOptions");
    jp_check_map(c, o, NULL);
    jp_get_int(c, o, "shmMB", 0, MAX_INT32, &r->shm_mb);
    jp_get_bool(c, o, "infiniband", &r->infiniband);
    jp_path_pop(c, old);
}

static void add_default_port(job_spec_t *s, job_role_t *r, const char *label)
{
    if (job_role_ports(r, label))
        return;
    for (size_t i = 0; i < r->n_ports; i++)
        if (strcmp(r->ports[i].name, label) == 0)
            return; /* written with count 0: keep the user's choice */
    r->ports[r->n_ports].name = label;
    r->ports[r->n_ports].count = 1;
    r->n_ports++;
    (void)s;
}

static void parse_ports(pctx_t *c, const ynode_t *rpi, job_role_t *r)
{
    const ynode_t *p = jp_field(c, rpi, "ports", false);
    size_t n = 0;
    if (p && !jp_type_bad(c, p, "ports", YJ_MAP))
        n = p->n;
    r->ports = job_arena_alloc(c->spec, (n + 2) * sizeof(*r->ports));
    if (n) {
        size_t old = jp_path_push(c, "ports");
        if (jp_check_map(c, p, NULL)) {
            for (size_t i = 0; i < n; i++) {
                const ynode_t *k = p->pairs[i].key;
                int64_t v;
                if (!is_role_name(k->str))
                    jp_add_error(c, k, k->str, "port label must match ^[a-zA-Z_][a-zA-Z0-9_]*$");
                else if (jp_int_in_range(c, p->pairs[i].val, k->str, 0, MAX_PORTS_LABEL, &v)) {
                    r->ports[r->n_ports].name = k->str;
                    r->ports[r->n_ports++].count = (int)v;
                }
            }
        }
        jp_path_pop(c, old);
    }
    add_default_port(c->spec, r, "ssh");
    add_default_port(c->spec, r, "http");
}

static void parse_resources(pctx_t *c, const ynode_t *m, job_role_t *r)
{
    r->cpu = 1;
    r->memory_mb = 100;
    const ynode_t *rpi = jp_field(c, m, "resourcePerInstance", true);
    if (rpi && jp_type_bad(c, rpi, "resourcePerInstance", YJ_MAP))
        rpi = NULL;
    size_t old = jp_path_push(c, "resourcePerInstance");
    if (rpi) {
        jp_check_map(c, rpi, rpi_keys);
        jp_get_int(c, rpi, "gpu", 0, MAX_GPU, &r->gpu);
        jp_get_int(c, rpi, "cpu", 0, MAX_CPU, &r->cpu);
        jp_get_int(c, rpi, "memoryMB", 0, MAX_INT32, &r->memory_mb);
    }
    parse_ports(c, rpi, r);
    jp_path_pop(c, old);
}

static void parse_role(pctx_t *c, const ynode_t *key, const ynode_t *m, job_role_t *r)
{
    r->name = key->str;
    r->line = key->line;
    r->col = key->col;
    r->instances = 1;
    if (!is_role_name(key->str))
        jp_add_error(c, key, NULL, "task role name must match ^[a-zA-Z_][a-zA-Z0-9_]*$");
    if (jp_type_bad(c, m, NULL, YJ_MAP)) {
        r->ports = job_arena_alloc(c->spec, 2 * sizeof(*r->ports));
        return;
    }
    jp_check_map(c, m, role_keys);
    jp_get_int(c, m, "instances", 1, PAI_MAX_TASKS_PER_JOB, &r->instances);
    jp_get_int(c, m, "taskRetryCount", 0, MAX_INT32, &r->task_retry_count);
    parse_completion(c, m, r);
    parse_role_prereq_list(c, m, r);
    r->docker_image = ref_prereq(c, m, "dockerImage", JOB_PREREQ_DOCKERIMAGE, true);
    r->data = ref_prereq(c, m, "data", JOB_PREREQ_DATA, false);
    r->output = ref_prereq(c, m, "output", JOB_PREREQ_OUTPUT, false);
    r->script = ref_prereq(c, m, "script", JOB_PREREQ_SCRIPT, false);
    parse_container_options(c, m, r);
    parse_resources(c, m, r);
    r->commands =
        jp_get_str_list(c, m, "commands", true, "must have at least one command", &r->n_commands);
}

static void parse_roles(pctx_t *c, const ynode_t *top)
{
    job_spec_t *s = c->spec;
    const ynode_t *m = jp_field(c, top, "taskRoles", true);
    if (!m || jp_type_bad(c, m, "taskRoles", YJ_MAP))
        return;
    if (m->n == 0) {
        jp_add_error(c, m, "taskRoles", "must have at least one task role");
        return;
    }
    if (m->n > PAI_MAX_TASK_ROLES) {
        jp_add_error(c, m, "taskRoles", "at most %u task roles are allowed", PAI_MAX_TASK_ROLES);
        return;
    }
    size_t old = jp_path_push(c, "taskRoles");
    if (jp_check_map(c, m, NULL)) {
        s->roles = job_arena_alloc(s, m->n * sizeof(*s->roles));
        s->n_roles = m->n;
        int64_t tasks = 0;
        for (size_t i = 0; i < m->n; i++) {
            size_t o2 = jp_path_push(c, m->pairs[i].key->str);
            parse_role(c, m->pairs[i].key, m->pairs[i].val, &s->roles[i]);
            tasks += s->roles[i].instances;
            jp_path_pop(c, o2);
        }
        if (tasks > PAI_MAX_TASKS_PER_JOB)
            jp_add_error(c, m, NULL, "the job has %lld tasks; at most %u are allowed",
                         (long long)tasks, PAI_MAX_TASKS_PER_JOB);
    }
    jp_path_pop(c, old);
}

/* ---------------------------------------------------------- deployments */

bool jp_role_exists(pctx_t *c, const ynode_t *key)
{
    if (job_role_find(c->spec, key->str))
        return true;
    jp_add_error(c, key, key->str, "no task role named '%s'", key->str);
    return false;
}

static void parse_deploy_roles(pctx_t *c, const ynode_t *m, job_deployment_t *d)
{
    const ynode_t *tr = jp_field(c, m, "taskRoles", false);
    if (!tr || jp_type_bad(c, tr, "taskRoles", YJ_MAP))
        return;
    size_t old = jp_path_push(c, "taskRoles");
    if (jp_check_map(c, tr, NULL)) {
        d->roles = job_arena_alloc(c->spec, (tr->n ? tr->n : 1) * sizeof(*d->roles));
        for (size_t i = 0; i < tr->n; i++) {
            const ynode_t *k = tr->pairs[i].key, *v = tr->pairs[i].val;
            if (!jp_role_exists(c, k) || jp_type_bad(c, v, k->str, YJ_MAP))
                continue;
            job_deploy_role_t *dr = &d->roles[d->n_roles++];
            size_t o2 = jp_path_push(c, k->str);
            /* string keys, each once: a second preCommands would be the one
             * the job's JSON and YAML keep, unchecked (as js-yaml, refused) */
            jp_check_map(c, v, NULL);
            dr->role = k->str;
            dr->pre = jp_get_str_list(c, v, "preCommands", false, "must have at least one command",
                                      &dr->n_pre);
            dr->post = jp_get_str_list(c, v, "postCommands", false,
                                       "must have at least one command", &dr->n_post);
            jp_path_pop(c, o2);
        }
    }
    jp_path_pop(c, old);
}

static void parse_deployments(pctx_t *c, const ynode_t *top)
{
    job_spec_t *s = c->spec;
    const ynode_t *l = jp_field(c, top, "deployments", false);
    if (!l || jp_type_bad(c, l, "deployments", YJ_SEQ))
        return;
    if (l->n > JOB_MAX_DEPLOYMENTS) {
        jp_add_error(c, l, "deployments", "at most %d deployments are allowed",
                     JOB_MAX_DEPLOYMENTS);
        return;
    }
    s->priv_->deployments = l;
    s->deployments = job_arena_alloc(s, (l->n ? l->n : 1) * sizeof(*s->deployments));
    size_t old = jp_path_push(c, "deployments");
    for (size_t i = 0; i < l->n; i++) {
        const ynode_t *m = l->items[i];
        size_t o2 = jp_path_push_index(c, i);
        if (!jp_type_bad(c, m, NULL, YJ_MAP)) {
            jp_check_map(c, m, NULL);
            job_deployment_t *d = &s->deployments[s->n_deployments];
            d->name = jp_get_str(c, m, "name", true);
            for (size_t j = 0; d->name && j < s->n_deployments; j++)
                if (strcmp(s->deployments[j].name, d->name) == 0) {
                    jp_add_error(c, ynode_get(m, "name"), "name", "duplicate deployment name '%s'",
                                 d->name);
                    d->name = NULL;
                    break;
                }
            parse_deploy_roles(c, m, d);
            if (d->name)
                s->n_deployments++;
        }
        jp_path_pop(c, o2);
    }
    jp_path_pop(c, old);
}

static void parse_defaults(pctx_t *c, const ynode_t *top)
{
    job_spec_t *s = c->spec;
    s->virtual_cluster = "default";
    const ynode_t *m = jp_field(c, top, "defaults", false);
    if (!m || jp_type_bad(c, m, "defaults", YJ_MAP))
        return;
    size_t old = jp_path_push(c, "defaults");
    jp_check_map(c, m, NULL);
    const char *vc = jp_get_str(c, m, "virtualCluster", false);
    if (vc && !str_is_name(vc))
        jp_add_error(c, ynode_get(m, "virtualCluster"), "virtualCluster",
                     "must match ^[a-zA-Z0-9_-]+$");
    else if (vc)
        s->virtual_cluster = vc;
    const char *dep = jp_get_str(c, m, "deployment", false);
    for (size_t i = 0; dep && i < s->n_deployments; i++)
        if (strcmp(s->deployments[i].name, dep) == 0)
            s->deployment = &s->deployments[i];
    if (dep && !s->deployment)
        jp_add_error(c, ynode_get(m, "deployment"), "deployment", "no deployment named '%s'", dep);
    jp_path_pop(c, old);
}

/* --------------------------------------------------------------- extras */

static const char *const top_keys[] = {
    "protocolVersion", "name",          "type",       "version", "contributor",
    "description",     "prerequisites", "parameters", "secrets", "jobRetryCount",
    "taskRoles",       "deployments",   "defaults",   "extras",  NULL};

static void parse_top(pctx_t *c, const ynode_t *root)
{
    job_spec_t *s = c->spec;
    if (!root || yjson_type(root) == YJ_NULL) {
        jp_add_error(c, root, NULL, "the document is empty");
        return;
    }
    if (root->kind != YNODE_MAP) {
        jp_add_error(c, root, NULL, "expected a map (a job protocol document), got %s",
                     jt_names[yjson_type(root)]);
        return;
    }
    jp_check_map(c, root, top_keys);
    check_protocol_version(c, root, true);
    s->protocol_version = 2;
    s->name = jp_get_str(c, root, "name", true);
    check_job_name(c, root, "name", s->name);
    s->type = jp_get_str(c, root, "type", true);
    if (s->type && strcmp(s->type, "job") != 0)
        jp_add_error(c, ynode_get(root, "type"), "type", "must be \"job\"");
    s->version = jp_get_str_or_num(c, root, "version");
    s->contributor = jp_get_str(c, root, "contributor", false);
    s->description = jp_get_str(c, root, "description", false);
    jp_get_int(c, root, "jobRetryCount", 0, MAX_INT32, &s->job_retry_count);
    s->priv_->parameters = parse_kvlist(c, root, "parameters", &s->parameters);
    s->priv_->secrets = parse_kvlist(c, root, "secrets", &s->secrets);
    parse_prereqs(c, root);
    parse_roles(c, root);
    parse_deployments(c, root);
    parse_defaults(c, root);
    jp_parse_extras(c, root);
}

static void prereq_json(job_spec_t *s)
{
    for (size_t i = 0; i < s->n_prereqs; i++)
        s->prereqs[i].json = yjson_from_node(s->priv_->prereq_nodes[i]);
}

/* Duplicate keys in maps that the walk above does not check itself (free
 * form: parameters' and secrets' values, extras' own maps), which js-yaml
 * refuses as well: the key's name and position, without a path. */
static void report_dups(pctx_t *c, size_t from)
{
    const ynode_t *const *dups = c->dups;
    for (size_t i = 0; i < c->ndups; i++) {
        bool told = false;
        for (size_t j = from; j < c->errs->n && !told; j++)
            told = c->errs->items[j].line == dups[i]->line && c->errs->items[j].col == dups[i]->col;
        if (!told)
            jp_add_error(c, dups[i], dups[i]->str, "duplicate key");
    }
}

static pai_err_t too_large(job_errors_t *errs, size_t len)
{
    pctx_t c = {.errs = errs};
    jp_add_error(&c, NULL, NULL, "the document is %zu bytes; the limit is %u bytes", len,
                 PAI_MAX_JOB_YAML);
    return PAI_E_TOO_LARGE;
}

pai_err_t job_parse(const char *yaml, size_t len, const char *filename, job_spec_t **out,
                    job_errors_t *errs)
{
    job_errors_t local;
    yerr_t yerr;
    ydoc_t *doc = NULL;
    (void)filename;
    *out = NULL;
    job_errors_init(&local);
    if (!errs)
        errs = &local;
    if (len > PAI_MAX_JOB_YAML) {
        pai_err_t rc = too_large(errs, len);
        job_errors_free(&local);
        return rc;
    }
    pai_err_t rc = ydoc_parse(yaml, len, &doc, &yerr);
    if (rc != PAI_OK) {
        pctx_t c = {.errs = errs};
        ynode_t at = {.line = yerr.line, .col = yerr.col};
        jp_add_error(&c, &at, NULL, "%s", yerr.msg);
        job_errors_free(&local);
        return rc == PAI_E_TOO_LARGE ? PAI_E_TOO_LARGE : PAI_E_PROTOCOL;
    }
    job_spec_t *s = xcalloc(1, sizeof(*s));
    s->priv_ = xcalloc(1, sizeof(*s->priv_));
    s->priv_->doc = doc;
    pctx_t c = {.spec = s, .errs = errs};
    c.ndups = ydoc_dups(doc, &c.dups);
    size_t before = errs->n;
    parse_top(&c, ydoc_root(doc));
    report_dups(&c, before);
    bool bad = errs->n != before;
    job_errors_free(&local);
    if (bad) {
        job_spec_free(s);
        return PAI_E_PROTOCOL;
    }
    prereq_json(s);
    *out = s;
    return PAI_OK;
}
