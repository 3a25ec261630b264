/*
 * template.c - job templates, the pure part (see template.h): the secrets
 * rule and the check of a protocol for publishing, the merge of a
 * submitter's parameters, the search match and the tag rule.
 *
 * Both the check and the merge work on the protocol as JSON
 * (common/yamljson.h, the protocol's own typing) and write JSON back, which
 * the protocol parser reads as YAML; a protocol that needs no change is
 * stored as the publisher wrote it (comments kept).
 */
#include "server/template.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "common/util.h"
#include "common/yamljson.h"
#include "protocol/job.h"

/* Floats written back as the shortest text most people wrote (0.01, not
 * 0.010000000000000000208); JSON_PRESERVE_ORDER keeps the document order. */
#define TPL_DUMP_FLAGS (JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

void tpl_protocol_free(tpl_protocol_t *p)
{
    if (!p)
        return;
    free(p->yaml);
    free(p->job_name);
    free(p->image);
    free(p->description);
    json_decref(p->parameters);
    json_decref(p->warnings);
    memset(p, 0, sizeof *p);
}

/* "<% $secrets.x %>" (spaces allowed): a reference, not a secret. */
static bool is_secret_ref(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return n > 4 && strncmp(s, "<%", 2) == 0 && strncmp(s + n - 2, "%>", 2) == 0 &&
           strstr(s, "$secrets.") != NULL && !memchr(s + 2, '%', n - 4);
}

/* The secrets of doc, described one per string into found (array). */
static void find_secrets(const json_t *doc, json_t *found)
{
    const json_t *sec = json_object_get(doc, "secrets");
    if ((json_is_object(sec) && json_object_size(sec) > 0) ||
        (json_is_array(sec) && json_array_size(sec) > 0) || json_is_string(sec)) {
        char *keys = NULL;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)sec, k, v)
        {
            char *more = str_printf("%s%s%s", keys ? keys : "", keys ? ", " : "", k);
            free(keys);
            keys = more;
        }
        json_array_append_new(found, json_sprintf("the secrets section%s%s%s", keys ? " (" : "",
                                                  keys ? keys : "", keys ? ")" : ""));
        free(keys);
    }
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(doc, "prerequisites"), i, p)
    {
        const char *pw = json_string_value(json_object_get(json_object_get(p, "auth"), "password"));
        if (pw && *pw && !is_secret_ref(pw))
            json_array_append_new(
                found, json_sprintf("the auth.password of prerequisite %s",
                                    json_string_value(json_object_get(p, "name")) ?: "?"));
    }
}

/* Remove what find_secrets found. */
static void strip_secrets(json_t *doc)
{
    json_object_del(doc, "secrets");
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "prerequisites"), i, p)
    {
        json_t *auth = json_object_get(p, "auth");
        const char *pw = json_string_value(json_object_get(auth, "password"));
        if (pw && *pw && !is_secret_ref(pw))
            json_object_del(p, "auth");
    }
}

static char *joined(const json_t *arr, const char *sep)
{
    char *s = xstrdup("");
    size_t i;
    const json_t *v;
    json_array_foreach(arr, i, v)
    {
        char *more = str_printf("%s%s%s", s, i ? sep : "", json_string_value(v));
        free(s);
        s = more;
    }
    return s;
}

/* The secrets rule on doc: PAI_OK when there are none, or they were
 * removed (strip) and listed in warnings; *changed when doc was changed. */
static pai_err_t secrets_rule(json_t *doc, bool strip, json_t *warnings, bool *changed,
                              pai_error_t *e)
{
    json_t *found = json_array();
    find_secrets(doc, found);
    pai_err_t rc = PAI_OK;
    if (json_array_size(found) > 0) {
        char *what = joined(found, "; ");
        if (!strip) {
            rc = pai_error_set(e, PAI_E_INVALID,
                               "a template may hold no secrets: remove %s, or publish with "
                               "stripSecrets (pai template publish --strip-secrets) to have them "
                               "removed",
                               what);
        } else {
            strip_secrets(doc);
            *changed = true;
            json_array_append_new(warnings,
                                  json_sprintf("removed %s: a template may hold no secrets; "
                                               "references to them stay as written",
                                               what));
        }
        free(what);
    }
    json_decref(found);
    return rc;
}

static pai_err_t parse_job(const char *text, size_t len, job_spec_t **spec, pai_error_t *e)
{
    job_errors_t errs;
    job_errors_init(&errs);
    pai_err_t rc = job_parse(text, len, NULL, spec, &errs);
    if (rc != PAI_OK) {
        char *msg = job_errors_message(&errs);
        rc = pai_error_set(e, PAI_E_PROTOCOL, "%s", msg ? msg : "invalid job protocol");
        free(msg);
        pai_error_details(e, xjson_pack("{so}", "errors", job_errors_to_json(&errs)));
    }
    job_errors_free(&errs);
    return rc;
}

pai_err_t tpl_protocol_check(const char *yaml, size_t len, bool strip, tpl_protocol_t *out,
                             pai_error_t *e)
{
    memset(out, 0, sizeof *out);
    if (len > TPL_MAX_YAML)
        return pai_error_set(e, PAI_E_TOO_LARGE, "a template's protocol is at most %u bytes",
                             TPL_MAX_YAML);
    json_t *doc = yjson_from_text(yaml, len);
    json_t *warnings = json_array();
    bool changed = false;
    job_spec_t *spec = NULL;
    pai_err_t rc = PAI_OK;
    if (json_is_object(doc))
        rc = secrets_rule(doc, strip, warnings, &changed, e);
    char *text = rc == PAI_OK && changed ? xjson_dumps(doc, TPL_DUMP_FLAGS) : xstrndup(yaml, len);
    if (rc == PAI_OK)
        rc = parse_job(text, strlen(text), &spec, e);
    if (rc != PAI_OK) {
        free(text);
        json_decref(warnings);
        goto out;
    }
    out->yaml = text;
    out->job_name = xstrdup(spec->name);
    out->image = xstrdup(
        spec->n_roles && spec->roles[0].docker_image->uri ? spec->roles[0].docker_image->uri : "");
    out->description = xstrdup(spec->description ? spec->description : "");
    json_t *params = json_object_get(doc, "parameters");
    out->parameters = json_is_object(params) ? json_deep_copy(params) : json_object();
    out->warnings = warnings;
out:
    job_spec_free(spec);
    json_decref(doc);
    return rc;
}

/* ------------------------------------------------------------------ merge */

static pai_err_t set_params(json_t *doc, const json_t *given, pai_error_t *e)
{
    if (!given)
        return PAI_OK;
    if (!json_is_object(given))
        return pai_error_set(e, PAI_E_INVALID, "parameters must be an object");
    json_t *declared = json_object_get(doc, "parameters");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)given, k, v)
    {
        if (!json_is_object(declared) || !json_object_get(declared, k))
            return pai_error_set(e, PAI_E_INVALID,
                                 "parameters.%s: not declared in the template's parameters", k);
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
            return pai_error_set(e, PAI_E_INVALID,
                                 "parameters.%s: must be a string, a number or a boolean", k);
        json_object_set(declared, k, (json_t *)v);
    }
    return PAI_OK;
}

/* doc[key] as an object, made when absent or not an object. */
static json_t *object_at(json_t *doc, const char *key)
{
    json_t *o = json_object_get(doc, key);
    if (!json_is_object(o)) {
        o = json_object();
        json_object_set_new(doc, key, o);
    }
    return o;
}

pai_err_t tpl_merge(const char *yaml, size_t len, const tpl_submit_t *s, char **out, pai_error_t *e)
{
    *out = NULL;
    json_t *doc = yjson_from_text(yaml, len);
    pai_err_t rc = PAI_OK;
    if (!json_is_object(doc)) {
        rc = pai_error_set(e, PAI_E_INTERNAL, "the template's protocol is not a YAML map");
        goto out;
    }
    if ((rc = set_params(doc, s->parameters, e)) != PAI_OK)
        goto out;
    if (s->name) {
        if (!str_is_name(s->name) || strlen(s->name) > PAI_MAX_NAME) {
            rc = pai_error_set(e, PAI_E_INVALID, "name must be 1 to %u letters, digits, '-' or '_'",
                               PAI_MAX_NAME);
            goto out;
        }
        json_object_set_new(doc, "name", json_string(s->name));
    }
    if (s->vc)
        json_object_set_new(object_at(doc, "defaults"), "virtualCluster", json_string(s->vc));
    json_object_set_new(object_at(doc, "extras"), "template",
                        xjson_pack("{ss ss}", "id", s->template_id ? s->template_id : "", "owner",
                                   s->template_owner ? s->template_owner : ""));
    *out = xjson_dumps(doc, TPL_DUMP_FLAGS);
out:
    json_decref(doc);
    return rc;
}

/* ----------------------------------------------------------------- search */

static bool field_has(const json_t *meta, const char *field, const char *word)
{
    const json_t *v = json_object_get(meta, field);
    if (json_is_string(v))
        return strcasestr(json_string_value(v), word) != NULL;
    size_t i;
    const json_t *t;
    json_array_foreach(v, i, t)
    {
        if (json_is_string(t) && strcasestr(json_string_value(t), word))
            return true;
    }
    return false;
}

bool tpl_matches(const json_t *meta, const char *keyword)
{
    static const char *const fields[] = {"title", "description", "tags", "name", "owner"};
    char word[256];
    const char *p = keyword ? keyword : "";
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            return true;
        size_t n = strcspn(p, " \t\r\n");
        str_copy(word, p, n + 1 < sizeof word ? n + 1 : sizeof word);
        p += n;
        bool hit = false;
        for (size_t f = 0; f < ARRAY_LEN(fields) && !hit; f++)
            hit = field_has(meta, fields[f], word);
        if (!hit)
            return false;
    }
}

/* ------------------------------------------------------------------- tags */

static pai_err_t add_tag(json_t *tags, const char *s, size_t n, pai_error_t *e)
{
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0)
        return PAI_OK;
    if (n > TPL_MAX_TAG)
        return pai_error_set(e, PAI_E_INVALID, "a tag is at most %u characters", TPL_MAX_TAG);
    char tag[TPL_MAX_TAG + 1];
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        if (!isalnum((unsigned char)c) && !strchr("._+-", c))
            return pai_error_set(e, PAI_E_INVALID,
                                 "tag '%.*s': only letters, digits, '.', '_', '+' and '-'", (int)n,
                                 s);
        tag[i] = c;
    }
    tag[n] = '\0';
    size_t i;
    const json_t *t;
    json_array_foreach(tags, i, t)
    {
        if (strcmp(json_string_value(t), tag) == 0)
            return PAI_OK;
    }
    if (json_array_size(tags) >= TPL_MAX_TAGS)
        return pai_error_set(e, PAI_E_INVALID, "at most %u tags", TPL_MAX_TAGS);
    json_array_append_new(tags, json_string(tag));
    return PAI_OK;
}

pai_err_t tpl_tags(const json_t *in, json_t **out, pai_error_t *e)
{
    json_t *tags = json_array();
    pai_err_t rc = PAI_OK;
    if (json_is_string(in)) {
        const char *s = json_string_value(in);
        while (rc == PAI_OK && *s) {
            size_t n = strcspn(s, ",");
            rc = add_tag(tags, s, n, e);
            s += n + (s[n] == ',');
        }
    } else if (json_is_array(in)) {
        size_t i;
        const json_t *t;
        json_array_foreach(in, i, t)
        {
            if (!json_is_string(t)) {
                rc = pai_error_set(e, PAI_E_INVALID, "tags must be strings");
                break;
            }
            if ((rc = add_tag(tags, json_string_value(t), strlen(json_string_value(t)), e)) !=
                PAI_OK)
                break;
        }
    } else if (in && !json_is_null(in)) {
        rc = pai_error_set(e, PAI_E_INVALID, "tags must be a list of strings");
    }
    if (rc != PAI_OK) {
        json_decref(tags);
        tags = NULL;
    }
    *out = tags;
    return rc;
}
