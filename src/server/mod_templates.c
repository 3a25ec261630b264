/*
 * mod_templates.c - the "templates" module: job templates shared across
 * teams (a marketplace) under /api/v2/templates; the registry is
 * server/templates.h, the protocol rules server/template.h.
 *
 * Permissions, in the API's terms (users, groups, admins; docs/api.md,
 * "Templates"):
 *  - every route needs a token (anonymous callers get 401, as for jobs);
 *  - a template is visible to its owner, to admins, to everyone when it is
 *    public, and to the members of its groups when it is shared with groups;
 *    one that is not visible to the caller is answered 404 NoTemplateError,
 *    as if absent;
 *  - the owner and admins edit, share and delete it; others who see it get
 *    403 ForbiddenUserError;
 *  - whoever sees it may submit a job from it (the job is the submitter's,
 *    in a VC the submitter may use, as any submission);
 *  - only admins (login tokens) mark public templates featured.
 * The owner is the user of that name created before the template (a user
 * deleted and created again does not inherit it; auth_user_since).
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "engine/engine.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/server.h"
#include "server/template.h"
#include "server/templates.h"

#define TPL_DEFAULT_LIMIT 100
#define TPL_MAX_LIMIT     1000

/* ---------------------------------------------------------------- rules */

/* Who asks, read from auth once per request, so that the rules below are
 * plain reads of a template (and may run under the registry's lock). */
typedef struct {
    const char *user; /* NULL: anonymous (never reaches a handler) */
    bool admin;
    int64_t since;  /* when the user was created (auth_user_since) */
    json_t *groups; /* the user's grouplist (owned) */
} viewer_t;

static void viewer_init(server_ctx_t *ctx, const http_req_t *req, viewer_t *v)
{
    v->user = req->who.username;
    v->admin = req->who.admin;
    v->since = auth_user_since(ctx, v->user);
    v->groups = auth_user_groups(ctx, v->user);
}

static void viewer_free(viewer_t *v)
{
    json_decref(v->groups);
    v->groups = NULL;
}

/* The owner is the user of that name who existed when it was published. */
static bool is_owner(const viewer_t *v, const json_t *m)
{
    const char *owner = json_string_value(json_object_get(m, "owner"));
    return v->user && owner && strcmp(owner, v->user) == 0 &&
           json_integer_value(json_object_get(m, "createdTime")) >= v->since;
}

static bool can_read(const viewer_t *v, const json_t *m)
{
    const char *vis = json_string_value(json_object_get(m, "visibility"));
    if (v->admin || (vis && strcmp(vis, "public") == 0) || is_owner(v, m))
        return true;
    if (!vis || strcmp(vis, "groups") != 0)
        return false;
    size_t i, k;
    json_t *g, *mine;
    json_array_foreach(json_object_get(m, "groups"), i, g)
    {
        json_array_foreach(v->groups, k, mine)
        {
            if (json_equal(g, mine))
                return true;
        }
    }
    return false;
}

static bool can_change(const viewer_t *v, const json_t *m)
{
    return v->admin || is_owner(v, m);
}

/* The same for the caller of req (one template: auth asked each time). */
static bool req_can(server_ctx_t *ctx, const http_req_t *req, const json_t *m, bool change)
{
    viewer_t v;
    viewer_init(ctx, req, &v);
    bool ok = change ? can_change(&v, m) : can_read(&v, m);
    viewer_free(&v);
    return ok;
}

/* The {template} path parameter: "<owner>~<name>". */
static const char *tpl_param(const http_req_t *req)
{
    return http_param(req, "template");
}

/* The template if the caller sees it (copy, caller decrefs), else 404. */
static pai_err_t visible(server_ctx_t *ctx, const http_req_t *req, json_t **m, pai_error_t *e)
{
    const char *id = tpl_param(req);
    *m = tpls_get(ctx->templates, id);
    if (*m && req_can(ctx, req, *m, false))
        return PAI_OK;
    json_decref(*m);
    *m = NULL;
    return pai_error_set(e, PAI_E_NO_TEMPLATE, PAI_MSG_NO_TEMPLATE, id);
}

static pai_err_t may_change(server_ctx_t *ctx, const http_req_t *req, const json_t *m,
                            const char *what, pai_error_t *e)
{
    if (!req_can(ctx, req, m, false))
        return pai_error_set(e, PAI_E_NO_TEMPLATE, PAI_MSG_NO_TEMPLATE, tpl_param(req));
    if (!req_can(ctx, req, m, true))
        return pai_error_set(e, PAI_E_FORBIDDEN, "User %s is not allowed to %s template %s.",
                             req->who.username, what, tpl_param(req));
    return PAI_OK;
}

/* ------------------------------------------------------------- the body */

/* An optional string field of at most max bytes (NULL when absent). */
static pai_err_t opt_str(const json_t *body, const char *key, size_t max, const char **out,
                         pai_error_t *e)
{
    const json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return PAI_OK;
    if (!json_is_string(v) || json_string_length(v) > max)
        return pai_error_set(e, PAI_E_INVALID, "%s must be a string of at most %zu bytes", key,
                             max);
    *out = json_string_value(v);
    return PAI_OK;
}

/* visibility and groups of the body into m (both optional; a change to
 * "groups" needs at least one group, each existing). */
static pai_err_t set_sharing(server_ctx_t *ctx, const json_t *body, json_t *m, pai_error_t *e)
{
    const char *vis;
    pai_err_t rc = opt_str(body, "visibility", 16, &vis, e);
    if (rc != PAI_OK)
        return rc;
    const json_t *groups = json_object_get(body, "groups");
    if (groups && !json_is_array(groups))
        return pai_error_set(e, PAI_E_INVALID, "groups must be a list of group names");
    if (json_array_size(groups) > TPL_MAX_GROUPS)
        return pai_error_set(e, PAI_E_INVALID, "at most %u groups", TPL_MAX_GROUPS);
    size_t i;
    const json_t *g;
    json_array_foreach(groups, i, g)
    {
        if (!json_is_string(g) || !auth_group_exists(ctx, json_string_value(g)))
            return pai_error_set(e, PAI_E_INVALID, "group %s is not found",
                                 json_is_string(g) ? json_string_value(g) : "?");
    }
    if (vis && strcmp(vis, "private") != 0 && strcmp(vis, "groups") != 0 &&
        strcmp(vis, "public") != 0)
        return pai_error_set(e, PAI_E_INVALID, "visibility must be private, groups or public");
    if (vis)
        json_object_set_new(m, "visibility", json_string(vis));
    if (groups)
        json_object_set_new(m, "groups", json_deep_copy(groups));
    const char *now = json_string_value(json_object_get(m, "visibility"));
    if (strcmp(now, "groups") == 0 && json_array_size(json_object_get(m, "groups")) == 0)
        return pai_error_set(e, PAI_E_INVALID, "visibility groups needs at least one group");
    if (strcmp(now, "public") != 0) /* only public templates are shown to new users */
        json_object_set_new(m, "featured", json_false());
    return PAI_OK;
}

/* title, description, tags and image of the body into m. */
static pai_err_t set_texts(const json_t *body, json_t *m, pai_error_t *e)
{
    const char *title, *desc, *image;
    json_t *tags = NULL;
    pai_err_t rc;
    if ((rc = opt_str(body, "title", TPL_MAX_TITLE, &title, e)) != PAI_OK ||
        (rc = opt_str(body, "description", TPL_MAX_DESCRIPTION, &desc, e)) != PAI_OK ||
        (rc = opt_str(body, "image", TPL_MAX_IMAGE, &image, e)) != PAI_OK)
        return rc;
    if (json_object_get(body, "tags") &&
        (rc = tpl_tags(json_object_get(body, "tags"), &tags, e)) != PAI_OK)
        return rc;
    if (title && !*title)
        return pai_error_set(e, PAI_E_INVALID, "title must not be empty");
    if (title)
        json_object_set_new(m, "title", json_string(title));
    if (desc)
        json_object_set_new(m, "description", json_string(desc));
    if (image)
        json_object_set_new(m, "image", json_string(image));
    if (tags)
        json_object_set_new(m, "tags", tags);
    return PAI_OK;
}

/* The body's protocol, checked (secrets refused or stripped); p->yaml NULL
 * when the body has none. */
static pai_err_t body_protocol(const json_t *body, tpl_protocol_t *p, pai_error_t *e)
{
    memset(p, 0, sizeof *p);
    const json_t *v = json_object_get(body, "protocol");
    if (!v)
        return PAI_OK;
    if (!json_is_string(v))
        return pai_error_set(e, PAI_E_INVALID, "protocol must be the job's YAML text");
    return tpl_protocol_check(json_string_value(v), json_string_length(v),
                              json_is_true(json_object_get(body, "stripSecrets")), p, e);
}

/* What the protocol gives the metadata. */
static void set_from_protocol(json_t *m, const tpl_protocol_t *p, bool image_given)
{
    json_object_set_new(m, "jobName", json_string(p->job_name));
    json_object_set(m, "parameters", p->parameters);
    if (!image_given)
        json_object_set_new(m, "image", json_string(p->image));
}

static void reply_done(http_resp_t *resp, int status, const char *id, char *msg,
                       const tpl_protocol_t *p)
{
    json_t *o = xjson_pack("{ss ss}", "id", id, "message", msg);
    if (p && p->warnings && json_array_size(p->warnings))
        json_object_set(o, "warnings", p->warnings);
    http_reply_json(resp, status, o);
    free(msg);
}

/* ------------------------------------------------------------- handlers */

static pai_err_t h_publish(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                           pai_error_t *e)
{
    json_t *body = NULL, *m = NULL;
    tpl_protocol_t p = {0};
    const char *name;
    char *id = NULL;
    pai_err_t rc = http_body_json(req, &body, e);
    if (rc == PAI_OK && !json_is_string(json_object_get(body, "protocol")))
        rc = pai_error_set(e, PAI_E_INVALID, "protocol (the job's YAML text) is required");
    if (rc == PAI_OK)
        rc = opt_str(body, "name", TPL_MAX_NAME, &name, e);
    if (rc == PAI_OK)
        rc = body_protocol(body, &p, e);
    if (rc != PAI_OK)
        goto out;
    name = name ? name : p.job_name;
    if (!str_is_name(name) || strlen(name) > TPL_MAX_NAME) {
        rc = pai_error_set(e, PAI_E_INVALID, "name must be 1 to %u letters, digits, '-' or '_'",
                           TPL_MAX_NAME);
        goto out;
    }
    id = str_printf("%s~%s", req->who.username, name);
    int64_t now = time_wall_ms();
    m = xjson_pack("{ss ss ss ss ss s[] ss ss s[] sb sI sI sI}", "id", id, "name", name, "owner",
                   req->who.username, "title", name, "description", p.description, "tags", "image",
                   "", "visibility", "private", "groups", "featured", 0, "useCount", (json_int_t)0,
                   "createdTime", (json_int_t)now, "updatedTime", (json_int_t)now);
    set_from_protocol(m, &p, false);
    if ((rc = set_texts(body, m, e)) != PAI_OK || (rc = set_sharing(ctx, body, m, e)) != PAI_OK)
        goto out;
    rc = tpls_insert(ctx->templates, m, p.yaml, req->who.admin, e);
    m = NULL;
    if (rc == PAI_OK)
        reply_done(resp, 201, id, str_printf("publish template %s successfully", id), &p);
out:
    free(id);
    json_decref(m);
    json_decref(body);
    tpl_protocol_free(&p);
    return rc;
}

typedef struct {
    server_ctx_t *ctx;
    const http_req_t *req;
    const json_t *body;
    const tpl_protocol_t *p;
} edit_t;

static pai_err_t apply_edit(void *ud, json_t *m, pai_error_t *e)
{
    edit_t *x = ud;
    pai_err_t rc = may_change(x->ctx, x->req, m, "change", e);
    if (rc == PAI_OK && x->p->yaml)
        set_from_protocol(m, x->p, json_object_get(x->body, "image") != NULL);
    if (rc == PAI_OK && (rc = set_texts(x->body, m, e)) == PAI_OK)
        rc = set_sharing(x->ctx, x->body, m, e);
    if (rc == PAI_OK)
        json_object_set_new(m, "updatedTime", json_integer(time_wall_ms()));
    return rc;
}

static pai_err_t h_update(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    json_t *body = NULL, *m = NULL;
    tpl_protocol_t p = {0};
    pai_err_t rc = visible(ctx, req, &m, e);
    if (rc == PAI_OK)
        rc = may_change(ctx, req, m, "change", e);
    if (rc == PAI_OK)
        rc = http_body_json(req, &body, e);
    if (rc == PAI_OK && json_object_get(body, "name"))
        rc = pai_error_set(e, PAI_E_INVALID, "a template's name cannot change");
    if (rc == PAI_OK)
        rc = body_protocol(body, &p, e);
    edit_t x = {ctx, req, body, &p};
    if (rc == PAI_OK)
        rc = tpls_update(ctx->templates, tpl_param(req), apply_edit, &x, p.yaml, e);
    if (rc == PAI_OK)
        reply_done(resp, 200, tpl_param(req),
                   str_printf("update template %s successfully", tpl_param(req)), &p);
    json_decref(m);
    json_decref(body);
    tpl_protocol_free(&p);
    return rc;
}

static pai_err_t check_delete(void *ud, json_t *m, pai_error_t *e)
{
    edit_t *x = ud;
    return may_change(x->ctx, x->req, m, "delete", e);
}

static pai_err_t h_delete(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    edit_t x = {ctx, req, NULL, NULL};
    pai_err_t rc = tpls_delete(ctx->templates, tpl_param(req), check_delete, &x, e);
    if (rc == PAI_OK)
        reply_done(resp, 200, tpl_param(req),
                   str_printf("delete template %s successfully", tpl_param(req)), NULL);
    return rc;
}

static pai_err_t set_featured(void *ud, json_t *m, pai_error_t *e)
{
    const bool *on = ud;
    const char *vis = json_string_value(json_object_get(m, "visibility"));
    if (*on && (!vis || strcmp(vis, "public") != 0))
        return pai_error_set(e, PAI_E_INVALID, "only a public template can be featured");
    json_object_set_new(m, "featured", json_boolean(*on));
    return PAI_OK;
}

static pai_err_t h_featured(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                            pai_error_t *e)
{
    json_t *body = NULL;
    pai_err_t rc = http_body_json(req, &body, e);
    const json_t *v = json_object_get(body, "value");
    if (rc == PAI_OK && !json_is_boolean(v))
        rc = pai_error_set(e, PAI_E_INVALID, "value must be true or false");
    bool on = json_is_true(v);
    if (rc == PAI_OK)
        rc = tpls_update(ctx->templates, tpl_param(req), set_featured, &on, NULL, e);
    if (rc == PAI_OK)
        reply_done(
            resp, 200, tpl_param(req),
            str_printf("template %s is %s", tpl_param(req), on ? "featured" : "no longer featured"),
            NULL);
    json_decref(body);
    return rc;
}

static pai_err_t h_get(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    json_t *m = NULL;
    char *yaml = NULL;
    pai_err_t rc = visible(ctx, req, &m, e);
    if (rc == PAI_OK)
        rc = tpls_protocol(ctx->templates, tpl_param(req), &yaml, e);
    if (rc == PAI_OK) {
        json_object_set_new(m, "protocol", json_string(yaml));
        json_object_set_new(m, "canEdit", json_boolean(req_can(ctx, req, m, true)));
        http_reply_json(resp, 200, m);
        m = NULL;
    }
    free(yaml);
    json_decref(m);
    return rc;
}

static pai_err_t h_submit(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                          pai_error_t *e)
{
    json_t *m = NULL, *body = NULL;
    char *yaml = NULL, *job = NULL, *name = NULL;
    const char *jname = NULL, *vc = NULL;
    pai_err_t rc = visible(ctx, req, &m, e);
    if (rc == PAI_OK)
        rc = http_body_json(req, &body, e);
    if (rc == PAI_OK && (rc = opt_str(body, "name", PAI_MAX_NAME, &jname, e)) == PAI_OK)
        rc = opt_str(body, "virtualCluster", PAI_MAX_NAME, &vc, e);
    if (rc == PAI_OK)
        rc = tpls_protocol(ctx->templates, tpl_param(req), &yaml, e);
    tpl_submit_t s = {.parameters = json_object_get(body, "parameters"),
                      .name = jname,
                      .vc = vc,
                      .template_id = tpl_param(req),
                      .template_owner = json_string_value(json_object_get(m, "owner"))};
    if (rc == PAI_OK)
        rc = tpl_merge(yaml, strlen(yaml), &s, &job, e);
    if (rc == PAI_OK)
        rc = engine_submit(ctx->engine, req->who.username, job, strlen(job), &name, e);
    if (rc == PAI_OK) {
        if (tpls_count_use(ctx->templates, tpl_param(req)) != PAI_OK)
            log_warn("template=%s job=%s: the use count was not stored", tpl_param(req), name);
        char *msg = str_printf("update job %s successfully", name);
        http_reply_json(
            resp, 202,
            xjson_pack("{ss ss ss}", "message", msg, "job", name, "template", tpl_param(req)));
        free(msg);
    }
    free(name);
    free(job);
    free(yaml);
    json_decref(body);
    json_decref(m);
    return rc;
}

/* ------------------------------------------------------------------ list */

typedef struct {
    const char *keyword, *owner;
    const char *tags[TPL_MAX_TAGS];
    size_t ntags;
    bool featured;
    const viewer_t *viewer; /* who asks: only what they may see is kept */
    json_t *counts;         /* tag -> how many kept templates have it */
} filter_t;

static bool has_tag(const json_t *m, const char *tag)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(m, "tags"), i, t)
    {
        if (strcmp(json_string_value(t), tag) == 0)
            return true;
    }
    return false;
}

static void count_tags(json_t *counts, const json_t *m)
{
    size_t k;
    json_t *t;
    json_array_foreach(json_object_get(m, "tags"), k, t)
    {
        const char *tag = json_string_value(t);
        json_object_set_new(counts, tag,
                            json_integer(json_integer_value(json_object_get(counts, tag)) + 1));
    }
}

/* Called under the registry's lock: plain reads (and the request's own
 * counts) only. */
static bool keep(void *ud, const json_t *m)
{
    const filter_t *f = ud;
    if (f->featured && !json_is_true(json_object_get(m, "featured")))
        return false;
    if (f->owner && strcmp(json_string_value(json_object_get(m, "owner")) ?: "", f->owner) != 0)
        return false;
    for (size_t i = 0; i < f->ntags; i++)
        if (!has_tag(m, f->tags[i]))
            return false;
    if (!can_read(f->viewer, m) || !tpl_matches(m, f->keyword))
        return false;
    count_tags(f->counts, m);
    return true;
}

typedef enum { SORT_USES, SORT_RECENT, SORT_TITLE } sort_t;

static const char *title_of(const json_t *m)
{
    return json_string_value(json_object_get(m, "title"));
}

static void order_uses(const json_t *m, tpls_order_t *o)
{
    o->rank = json_integer_value(json_object_get(m, "useCount"));
    o->text = title_of(m);
}

static void order_recent(const json_t *m, tpls_order_t *o)
{
    o->rank = json_integer_value(json_object_get(m, "updatedTime"));
    o->text = title_of(m);
}

static void order_title(const json_t *m, tpls_order_t *o)
{
    o->rank = 0;
    o->text = title_of(m);
}

static pai_err_t parse_filter(const http_req_t *req, filter_t *f, sort_t *sort, int *offset,
                              int *limit, json_t **tags, pai_error_t *e)
{
    memset(f, 0, sizeof *f);
    f->keyword = http_query(req, "keyword");
    f->owner = http_query(req, "owner");
    const char *feat = http_query(req, "featured");
    f->featured = feat && strcmp(feat, "true") == 0;
    const char *s = http_query(req, "sort");
    *sort = !s || !*s || strcmp(s, "uses") == 0 ? SORT_USES
            : strcmp(s, "recent") == 0          ? SORT_RECENT
            : strcmp(s, "title") == 0           ? SORT_TITLE
                                                : (sort_t)-1;
    if ((int)*sort < 0)
        return pai_error_set(e, PAI_E_INVALID, "sort must be uses, recent or title");
    const char *off = http_query(req, "offset"), *lim = http_query(req, "limit");
    *offset = 0;
    *limit = TPL_DEFAULT_LIMIT;
    if ((off && *off && str_to_int(off, 0, 1000000000, offset) != PAI_OK) ||
        (lim && *lim && str_to_int(lim, 1, TPL_MAX_LIMIT, limit) != PAI_OK))
        return pai_error_set(e, PAI_E_INVALID, "offset must be >= 0 and limit 1 to %d",
                             TPL_MAX_LIMIT);
    const char *tag = http_query(req, "tag");
    if (tag && *tag) {
        json_t *str = json_string(tag);
        pai_err_t rc = tpl_tags(str, tags, e);
        json_decref(str);
        if (rc != PAI_OK)
            return rc;
        size_t i;
        json_t *t;
        json_array_foreach(*tags, i, t) f->tags[f->ntags++] = json_string_value(t);
    }
    return PAI_OK;
}

/* GET /api/v2/templates: {totalCount, offset, items, tags: {tag: count}}. */
static pai_err_t h_list(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp, pai_error_t *e)
{
    filter_t f;
    sort_t sort;
    int offset, limit;
    json_t *tags = NULL;
    pai_err_t rc = parse_filter(req, &f, &sort, &offset, &limit, &tags, e);
    if (rc != PAI_OK)
        return rc;
    viewer_t v;
    viewer_init(ctx, req, &v);
    f.viewer = &v;
    f.counts = json_object();
    size_t n = 0;
    json_t *items = tpls_page(ctx->templates, keep, &f,
                              sort == SORT_USES     ? order_uses
                              : sort == SORT_RECENT ? order_recent
                                                    : order_title,
                              (size_t)offset, (size_t)limit, &n);
    http_reply_json(resp, 200,
                    xjson_pack("{sI sI so so}", "totalCount", (json_int_t)n, "offset",
                               (json_int_t)offset, "items", items, "tags", f.counts));
    viewer_free(&v);
    json_decref(tags);
    return PAI_OK;
}

/* ---------------------------------------------------------------- module */

#define TPL_PATH "/api/v2/templates/{template}"

static const http_route_t templates_routes[] = {
    {"GET", "/api/v2/templates", h_list, PERM_USER},
    {"POST", "/api/v2/templates", h_publish, PERM_USER},
    {"GET", TPL_PATH, h_get, PERM_USER},
    {"PUT", TPL_PATH, h_update, PERM_USER},
    {"DELETE", TPL_PATH, h_delete, PERM_USER},
    {"POST", TPL_PATH "/submit", h_submit, PERM_USER},
    {"PUT", TPL_PATH "/featured", h_featured, PERM_ADMIN},
    {NULL, NULL, NULL, PERM_ANON},
};

static pai_err_t templates_init(server_ctx_t *ctx)
{
    pai_error_t e = PAI_ERROR_INIT;
    pai_err_t rc = tpls_open(ctx->store, &ctx->templates, &e);
    const char *dir = ctx->cfg->template_examples;
    size_t n = 0;
    if (rc == PAI_OK && dir && *dir)
        rc = tpls_seed(ctx->templates, dir, ctx->cfg->admin_username, &n, &e);
    if (rc != PAI_OK)
        log_error("templates: %s", pai_error_msg(&e));
    pai_error_free(&e);
    return rc;
}

static void templates_fini(server_ctx_t *ctx)
{
    tpls_free(ctx->templates);
    ctx->templates = NULL;
}

const server_module_t server_module_templates = {"templates", templates_init, templates_fini,
                                                 templates_routes};
