/*
 * job_render.c - a job spec out again: task scripts with templates
 * substituted, the protocol as JSON, and as YAML.
 *
 * Templates are `<% $root.path %>` with root one of parameters, secrets,
 * data, script, output and path a chain of `.field` and `[N]`.  The value
 * is looked up in the document as written: a scalar is inserted as is, a
 * list of scalars joined with commas (as OpenPAI's JavaScript did), any
 * other list or map as compact JSON.  A reference that does not resolve is
 * left as written.  Secrets are inserted only when asked for; otherwise
 * JOB_SECRET_MASK takes their place.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "protocol/job_internal.h"

/* Bound on one rendered script: templates can repeat a large parameter. */
#define JOB_MAX_SCRIPT PAI_MAX_COMMAND

/* ----------------------------------------------------------- templates */

typedef struct {
    const job_spec_t *spec;
    const job_role_t *role;
    bool with_secrets;
    uint64_t budget; /* map keys and list steps left to look at */
    /* called for each reference left as written (job_lint), may be NULL */
    void (*unresolved)(void *arg, const char *ref, size_t len);
    void *arg;
} rctx_t;

/* Work bound for one rendering: a 4 MiB document could otherwise hold
 * 100,000 references into a 100,000-key map (10^10 comparisons) and stall
 * the submit path.  Real jobs use a few hundred steps. */
#define RENDER_BUDGET 20000000u

static const ynode_t *prereq_node(const job_spec_t *s, const job_prereq_t *p)
{
    return p ? s->priv_->prereq_nodes[p - s->prereqs] : NULL;
}

/* The node a root name stands for, or NULL. */
static const ynode_t *template_root(const rctx_t *r, const char *name, size_t len, bool *secret)
{
    const struct job_priv *p = r->spec->priv_;
    *secret = false;
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(name, lit, len) == 0)
    if (IS("parameters"))
        return p->parameters;
    if (IS("secrets")) {
        *secret = true;
        return p->secrets;
    }
    if (!r->role)
        return NULL;
    if (IS("data"))
        return prereq_node(r->spec, r->role->data);
    if (IS("script"))
        return prereq_node(r->spec, r->role->script);
    if (IS("output"))
        return prereq_node(r->spec, r->role->output);
#undef IS
    return NULL;
}

static const ynode_t *map_get_n(rctx_t *r, const ynode_t *m, const char *key, size_t len)
{
    if (m->kind != YNODE_MAP)
        return NULL;
    r->budget = r->budget > m->n ? r->budget - m->n : 0;
    for (size_t i = 0; r->budget && i < m->n; i++) {
        const ynode_t *k = m->pairs[i].key;
        if (k->kind == YNODE_SCALAR && k->len == len && memcmp(k->str, key, len) == 0)
            return m->pairs[i].val;
    }
    return NULL;
}

static const ynode_t *seq_get(const ynode_t *s, const char *digits, size_t len)
{
    size_t idx = 0;
    if (s->kind != YNODE_SEQ || len == 0 || len > 9)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)digits[i]))
            return NULL;
        idx = idx * 10 + (size_t)(digits[i] - '0');
    }
    return idx < s->n ? s->items[idx] : NULL;
}

/* Follow `.a.b[0]` from n; NULL when any step fails. */
static const ynode_t *walk_path(rctx_t *r, const ynode_t *n, const char *p, const char *end)
{
    while (n && p < end) {
        if (*p == '.') {
            const char *s = ++p;
            while (p < end && *p != '.' && *p != '[')
                p++;
            const ynode_t *next = map_get_n(r, n, s, (size_t)(p - s));
            n = next ? next : seq_get(n, s, (size_t)(p - s));
        } else if (*p == '[') {
            const char *s = ++p;
            while (p < end && *p != ']')
                p++;
            if (p == end)
                return NULL;
            n = seq_get(n, s, (size_t)(p - s));
            p++;
        } else {
            return NULL;
        }
    }
    return n;
}

static pai_err_t append_value(buf_t *b, const ynode_t *v)
{
    if (v->kind == YNODE_SCALAR)
        return buf_append(b, v->str, v->len);
    bool scalars = v->kind == YNODE_SEQ;
    for (size_t i = 0; scalars && i < v->n; i++)
        scalars = v->items[i]->kind == YNODE_SCALAR;
    if (scalars) {
        pai_err_t rc = PAI_OK;
        for (size_t i = 0; rc == PAI_OK && i < v->n; i++) {
            if (i)
                rc = buf_puts(b, ",");
            if (rc == PAI_OK)
                rc = buf_append(b, v->items[i]->str, v->items[i]->len);
        }
        return rc;
    }
    json_t *j = yjson_from_node(v);
    char *s = xjson_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    pai_err_t rc = buf_puts(b, s);
    free(s);
    return rc;
}

/* Resolve one expression (text between <% and %>, trimmed).  Returns
 * PAI_E_NOT_FOUND when it does not resolve (nothing appended). */
static pai_err_t resolve(rctx_t *r, const char *e, const char *end, buf_t *b)
{
    if (e >= end || *e != '$')
        return PAI_E_NOT_FOUND;
    const char *p = ++e;
    while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
        p++;
    for (const char *q = p; q < end; q++)
        if (isspace((unsigned char)*q))
            return PAI_E_NOT_FOUND;
    bool secret;
    const ynode_t *root = template_root(r, e, (size_t)(p - e), &secret);
    if (!root || p == end)
        return PAI_E_NOT_FOUND;
    const ynode_t *v = walk_path(r, root, p, end);
    if (!r->budget)
        return PAI_E_TOO_LARGE;
    if (!v || yjson_type(v) == YJ_NULL)
        return PAI_E_NOT_FOUND;
    if (secret && !r->with_secrets)
        return buf_puts(b, JOB_SECRET_MASK);
    return append_value(b, v);
}

/* First "ab" in [p, end), or NULL (memchr-based: libc memmem's set-up cost
 * dominated rendering of short commands). */
static const char *find2(const char *p, const char *end, char a, char b)
{
    while (p < end && (p = memchr(p, a, (size_t)(end - p))) != NULL) {
        if (p + 1 < end && p[1] == b)
            return p;
        p++;
    }
    return NULL;
}

static pai_err_t render_into(rctx_t *r, const char *text, size_t len, buf_t *b)
{
    const char *p = text, *end = text + len;
    pai_err_t rc = PAI_OK;
    while (rc == PAI_OK && p < end) {
        const char *open = find2(p, end, '<', '%');
        const char *close = open ? find2(open + 2, end, '%', '>') : NULL;
        if (!open || !close)
            return buf_append(b, p, (size_t)(end - p));
        rc = buf_append(b, p, (size_t)(open - p));
        const char *e = open + 2, *ee = close;
        while (e < ee && isspace((unsigned char)*e))
            e++;
        while (ee > e && isspace((unsigned char)ee[-1]))
            ee--;
        if (rc == PAI_OK) {
            rc = resolve(r, e, ee, b);
            if (rc == PAI_E_NOT_FOUND && r->unresolved)
                r->unresolved(r->arg, open, (size_t)(close + 2 - open));
            if (rc == PAI_E_NOT_FOUND)
                rc = buf_append(b, open, (size_t)(close + 2 - open));
        }
        p = close + 2;
    }
    return rc;
}

/* One command: trimmed, rendered, joined to the previous with " &&\n". */
static pai_err_t render_command(rctx_t *r, const char *cmd, buf_t *b)
{
    const char *s = cmd, *e = cmd + strlen(cmd);
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    if (s == e)
        return PAI_OK;
    pai_err_t rc = b->len ? buf_puts(b, " &&\n") : PAI_OK;
    return rc == PAI_OK ? render_into(r, s, (size_t)(e - s), b) : rc;
}

static const job_deploy_role_t *deploy_role(const job_spec_t *s, const char *role)
{
    const job_deployment_t *d = s->deployment;
    for (size_t i = 0; d && i < d->n_roles; i++)
        if (strcmp(d->roles[i].role, role) == 0)
            return &d->roles[i];
    return NULL;
}

static pai_err_t render_list(rctx_t *r, const char **v, size_t n, buf_t *b)
{
    pai_err_t rc = PAI_OK;
    for (size_t i = 0; rc == PAI_OK && i < n; i++)
        rc = render_command(r, v[i], b);
    return rc;
}

static size_t list_bytes(const char **v, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(v[i]) + 4;
    return total;
}

/* One allocation for the usual script instead of a chain of reallocs (the
 * buffer's fields are public; buf_append grows it further when needed). */
static void presize(buf_t *b, const job_role_t *ro, const job_deploy_role_t *dr)
{
    size_t n = list_bytes(ro->commands, ro->n_commands) + 64;
    if (dr)
        n += list_bytes(dr->pre, dr->n_pre) + list_bytes(dr->post, dr->n_post);
    if (n > b->cap)
        return;
    b->data = xmalloc(n);
    b->data[0] = '\0';
    b->alloc = n;
}

pai_err_t job_render_commands(const job_spec_t *spec, const char *role, int index,
                              bool with_secrets, char **out)
{
    *out = NULL;
    const job_role_t *ro = job_role_find(spec, role);
    if (!ro)
        return PAI_E_NOT_FOUND;
    if (index < 0 || index >= ro->instances)
        return PAI_E_INVALID;
    rctx_t r = {.spec = spec, .role = ro, .with_secrets = with_secrets, .budget = RENDER_BUDGET};
    const job_deploy_role_t *dr = deploy_role(spec, role);
    buf_t b;
    buf_init(&b, JOB_MAX_SCRIPT);
    presize(&b, ro, dr);
    pai_err_t rc = dr ? render_list(&r, dr->pre, dr->n_pre, &b) : PAI_OK;
    if (rc == PAI_OK)
        rc = render_list(&r, ro->commands, ro->n_commands, &b);
    if (rc == PAI_OK && dr)
        rc = render_list(&r, dr->post, dr->n_post, &b);
    if (rc == PAI_OK)
        rc = buf_puts(&b, "\n");
    if (rc != PAI_OK) {
        buf_free(&b);
        return rc;
    }
    *out = buf_take(&b);
    return PAI_OK;
}

pai_err_t job_render_string(const job_spec_t *spec, const char *role, const char *text,
                            bool with_secrets, char **out)
{
    *out = NULL;
    rctx_t r = {.spec = spec,
                .role = role ? job_role_find(spec, role) : NULL,
                .with_secrets = with_secrets,
                .budget = RENDER_BUDGET};
    if (role && !r.role)
        return PAI_E_NOT_FOUND;
    buf_t b;
    buf_init(&b, JOB_MAX_SCRIPT);
    pai_err_t rc = render_into(&r, text, strlen(text), &b);
    if (rc != PAI_OK) {
        buf_free(&b);
        return rc;
    }
    *out = b.data ? buf_take(&b) : xstrdup("");
    return PAI_OK;
}

/* ------------------------------------------------------- spec as JSON */

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

static json_t *secrets_json(const job_spec_t *s, bool mask)
{
    if (!mask)
        return yjson_from_node(s->priv_->secrets);
    json_t *o = json_object();
    for (size_t i = 0; o && i < s->secrets.n; i++)
        json_object_set_new(o, s->secrets.items[i].key, json_string(JOB_SECRET_MASK));
    return o;
}

static json_t *str_array(const char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *role_json(const job_role_t *r)
{
    json_t *o = json_object(), *ports = json_object();
    json_object_set_new(o, "instances", json_integer(r->instances));
    json_object_set_new(o, "completion",
                        xjson_pack("{s:i, s:i}", "minFailedInstances", r->min_failed,
                                   "minSucceededInstances", r->min_succeeded));
    json_object_set_new(o, "taskRetryCount", json_integer(r->task_retry_count));
    if (r->n_prerequisites)
        json_object_set_new(o, "prerequisites", str_array(r->prerequisites, r->n_prerequisites));
    set_str(o, "dockerImage", r->docker_image ? r->docker_image->name : NULL);
    set_str(o, "data", r->data ? r->data->name : NULL);
    set_str(o, "output", r->output ? r->output->name : NULL);
    set_str(o, "script", r->script ? r->script->name : NULL);
    json_object_set_new(o, "extraContainerOptions",
                        xjson_pack("{s:i, s:b}", "shmMB", r->shm_mb, "infiniband", r->infiniband));
    for (size_t i = 0; i < r->n_ports; i++)
        json_object_set_new(ports, r->ports[i].name, json_integer(r->ports[i].count));
    json_object_set_new(o, "resourcePerInstance",
                        xjson_pack("{s:i, s:i, s:i, s:o}", "cpu", r->cpu, "memoryMB", r->memory_mb,
                                   "gpu", r->gpu, "ports", ports));
    json_object_set_new(o, "commands", str_array(r->commands, r->n_commands));
    return o;
}

json_t *job_to_json(const job_spec_t *s, bool mask_secrets)
{
    json_t *o = json_object(), *pre = json_array(), *roles = json_object(), *def = json_object();
    json_object_set_new(o, "protocolVersion", json_integer(s->protocol_version));
    set_str(o, "name", s->name);
    set_str(o, "type", s->type);
    set_str(o, "version", s->version);
    set_str(o, "contributor", s->contributor);
    set_str(o, "description", s->description);
    if (s->priv_->parameters)
        json_object_set_new(o, "parameters", yjson_from_node(s->priv_->parameters));
    if (s->priv_->secrets)
        json_object_set_new(o, "secrets", secrets_json(s, mask_secrets));
    json_object_set_new(o, "jobRetryCount", json_integer(s->job_retry_count));
    for (size_t i = 0; i < s->n_prereqs; i++)
        json_array_append_new(pre, json_deep_copy(s->prereqs[i].json));
    json_object_set_new(o, "prerequisites", pre);
    for (size_t i = 0; i < s->n_roles; i++)
        json_object_set_new(roles, s->roles[i].name, role_json(&s->roles[i]));
    json_object_set_new(o, "taskRoles", roles);
    if (s->priv_->deployments)
        json_object_set_new(o, "deployments", yjson_from_node(s->priv_->deployments));
    json_object_set_new(def, "virtualCluster", json_string(s->virtual_cluster));
    if (s->deployment)
        json_object_set_new(def, "deployment", json_string(s->deployment->name));
    json_object_set_new(o, "defaults", def);
    if (s->priv_->extras)
        json_object_set_new(o, "extras", json_deep_copy(s->extras.json));
    return o;
}

/* ------------------------------------------------------- spec as YAML */

static int yaml_write(void *data, unsigned char *buffer, size_t size)
{
    return buf_append(data, buffer, size) == PAI_OK;
}

static yaml_scalar_style_t string_style(const char *s)
{
    if (strchr(s, '\n'))
        return YAML_LITERAL_SCALAR_STYLE;
    if (yjson_plain_type(s) != YJ_STRING)
        return YAML_SINGLE_QUOTED_SCALAR_STYLE;
    return YAML_ANY_SCALAR_STYLE;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                                      style))
        return 0;
    return yaml_emitter_emit(em, &ev);
}

/* The shortest text that reads back as the same double, and still reads as
 * a float (1.0 stays "1.0", not the integer "1"). */
static void format_real(char *buf, size_t size, double d)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEni"))
        str_copy(buf + strlen(buf), ".0", size - strlen(buf));
}

static int emit_json(yaml_emitter_t *em, json_t *j)
{
    yaml_event_t ev;
    char num[64];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return 0;
        json_object_foreach(j, k, v)
        {
            if (!emit_scalar(em, k, string_style(k)) || !emit_json(em, v))
                return 0;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return 0;
        json_array_foreach(j, i, v)
        {
            if (!emit_json(em, v))
                return 0;
        }
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
    }
    case JSON_STRING:
        return emit_scalar(em, json_string_value(j), string_style(json_string_value(j)));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
    case JSON_REAL:
        format_real(num, sizeof(num), json_real_value(j));
        return emit_scalar(em, num, YAML_PLAIN_SCALAR_STYLE);
    case JSON_TRUE:
        return emit_scalar(em, "true", YAML_PLAIN_SCALAR_STYLE);
    case JSON_FALSE:
        return emit_scalar(em, "false", YAML_PLAIN_SCALAR_STYLE);
    default:
        return emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
    }
}

static int emit_document(yaml_emitter_t *em, json_t *j)
{
    yaml_event_t ev;
    return yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
           yaml_emitter_emit(em, &ev) &&
           yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
           yaml_emitter_emit(em, &ev) && emit_json(em, j) &&
           yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(em, &ev) &&
           yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev);
}

pai_err_t job_to_yaml(const job_spec_t *spec, bool mask_secrets, char **out)
{
    *out = NULL;
    json_t *j = job_to_json(spec, mask_secrets);
    yaml_emitter_t em;
    buf_t b;
    buf_init(&b, PAI_MAX_JOB_YAML * 4u);
    if (!yaml_emitter_initialize(&em))
        util_oom(); /* libyaml allocates with its own malloc */
    yaml_emitter_set_output(&em, yaml_write, &b);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    int ok = emit_document(&em, j) && yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    json_decref(j);
    if (!ok) {
        buf_free(&b);
        return PAI_E_INTERNAL;
    }
    *out = buf_take(&b);
    return PAI_OK;
}

/* ------------------------------------------------------------------ lint */

typedef struct {
    job_errors_t *out;
    const ynode_t *at;
    const char *path;
    size_t found;
} lint_t;

static bool known_root(const char *ref, size_t len)
{
    static const char *const roots[] = {"parameters", "secrets", "data", "script", "output", NULL};
    const char *p = ref + 2, *end = ref + len - 2;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p >= end || *p++ != '$')
        return false;
    for (const char *const *r = roots; *r; r++) {
        size_t n = strlen(*r);
        if ((size_t)(end - p) > n && memcmp(p, *r, n) == 0 && (p[n] == '.' || p[n] == '['))
            return true;
    }
    return false;
}

static void lint_unresolved(void *arg, const char *ref, size_t len)
{
    lint_t *l = arg;
    if (!known_root(ref, len))
        return;
    job_errors_add(l->out, l->at ? l->at->line : 0, l->at ? l->at->col : 0, l->path,
                   "reference %.*s does not resolve and is left as written",
                   (int)(len > 200 ? 200 : len), ref);
    l->found++;
}

static void lint_list(rctx_t *r, lint_t *l, const ynode_t *list, const char *path)
{
    buf_t scratch;
    for (size_t i = 0; list && list->kind == YNODE_SEQ && i < list->n; i++) {
        const ynode_t *item = list->items[i];
        if (item->kind != YNODE_SCALAR || !strstr(item->str, "<%"))
            continue;
        char *p = str_printf("%s[%zu]", path, i);
        l->at = item;
        l->path = p;
        buf_init(&scratch, JOB_MAX_SCRIPT);
        r->budget = RENDER_BUDGET;
        (void)render_into(r, item->str, item->len, &scratch);
        buf_free(&scratch);
        free(p);
    }
}

static void lint_deployments(const job_spec_t *s, lint_t *l)
{
    const ynode_t *deps = s->priv_->deployments;
    for (size_t d = 0; deps && d < deps->n; d++) {
        const ynode_t *roles = ynode_get(deps->items[d], "taskRoles");
        for (size_t i = 0; roles && roles->kind == YNODE_MAP && i < roles->n; i++) {
            const char *name = roles->pairs[i].key->str;
            rctx_t r = {
                .spec = s, .role = job_role_find(s, name), .unresolved = lint_unresolved, .arg = l};
            static const char *const keys[] = {"preCommands", "postCommands"};
            for (size_t k = 0; r.role && k < 2; k++) {
                char *path = str_printf("deployments[%zu].taskRoles.%s.%s", d, name, keys[k]);
                lint_list(&r, l, ynode_get(roles->pairs[i].val, keys[k]), path);
                free(path);
            }
        }
    }
}

size_t job_lint(const job_spec_t *spec, job_errors_t *warnings)
{
    lint_t l = {.out = warnings};
    const ynode_t *roles = ynode_get(ydoc_root(spec->priv_->doc), "taskRoles");
    for (size_t i = 0; i < spec->n_roles; i++) {
        const job_role_t *ro = &spec->roles[i];
        rctx_t r = {.spec = spec, .role = ro, .unresolved = lint_unresolved, .arg = &l};
        char *path = str_printf("taskRoles.%s.commands", ro->name);
        lint_list(&r, &l, ynode_get(ynode_get(roles, ro->name), "commands"), path);
        free(path);
    }
    lint_deployments(spec, &l);
    return l.found;
}
