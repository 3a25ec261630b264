/*
 * cmd_template.c - `pai template ...`: job templates shared across teams
 * (docs/api.md, "Templates").  One command, an action as its first word:
 *
 *   list [--featured] [--mine] [--tag T] [--sort S]   GET /api/v2/templates
 *   search WORD... [--tag T] [--sort S]                 GET ...?keyword=WORDS
 *   show ID [--yaml]                                    GET /api/v2/templates/{id}
 *   publish FILE | --from-job JOB [--name N] [--title T] [--description D]
 *           [--tags A,B] [--image I] [--public | --group G...] [--strip-secrets]
 *                                                       POST /api/v2/templates
 *   edit ID [--file FILE] [--title T] [--description D] [--tags A,B] [--image I]
 *                                                       PUT /api/v2/templates/{id}
 *   share ID --private | --public | --group G...      PUT (visibility, groups)
 *   submit ID [--param K=V]... [--name N] [--vc VC] [--wait]
 *                                                       POST /api/v2/templates/{id}/submit
 *   delete ID                                           DELETE /api/v2/templates/{id}
 *   feature ID | unfeature ID   (admins)                PUT /api/v2/templates/{id}/featured
 *
 * ID is "owner~name", or "name" for one's own.  A file to publish is
 * checked locally first, as `pai submit` checks it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/submit.h"
#include "common/util.h"

static const cli_opt_t template_opts[] = {
    {.name = "featured", .help = "list: only the featured templates (shown to new users)"},
    {.name = "mine", .help = "list: only my templates"},
    {.name = "tag", .arg = "T[,T...]", .help = "list, search: only templates with these tags"},
    {.name = "sort", .arg = "S", .help = "list, search: uses (default), recent or title"},
    {.name = "yaml", .help = "show: print only the job protocol (YAML)"},
    {.name = "from-job", .arg = "JOB", .help = "publish: the config of this job instead of a FILE"},
    {.name = "file", .arg = "FILE", .help = "edit: replace the job protocol with this file"},
    {.name = "name", .arg = "NAME", .help = "publish: the template's name; submit: the job's"},
    {.name = "title", .arg = "TEXT", .help = "publish, edit: the title"},
    {.name = "description", .arg = "TEXT", .help = "publish, edit: the description"},
    {.name = "tags", .arg = "A,B", .help = "publish, edit: tags, separated by commas"},
    {.name = "image",
     .arg = "IMAGE",
     .help = "publish, edit: the image shown (default: the job's)"},
    {.name = "private", .help = "share: only me (and admins)"},
    {.name = "public", .help = "publish, share: everyone"},
    {.name = "group",
     .arg = "G",
     .help = "publish, share: the members of group G; repeatable",
     .repeat = true},
    {.name = "strip-secrets", .help = "publish, edit: remove secrets instead of refusing"},
    {.name = "param",
     .arg = "K=V",
     .help = "submit: set parameter K (declared by the template) to V; repeatable",
     .repeat = true},
    {.name = "vc", .arg = "VC", .help = "submit: the virtual cluster to run in"},
    {.name = "wait", .help = "submit: wait for the job to finish; exit like `pai wait`"},
    {.name = "json", .help = "print the server's JSON"},
    {0},
};
static const cli_cmd_t template_cmd = {
    .name = "template",
    .synopsis = "list | search WORD... | show ID | publish FILE | edit ID | share ID | "
                "submit ID | delete ID | feature ID | unfeature ID",
    .summary = "Job templates shared across teams: publish a job file as a template (private,\n"
               "shared with groups or public), browse and search them, and submit a job from\n"
               "one with your own --param values.  ID is OWNER~NAME, or NAME for your own.\n"
               "A template may hold no secrets: --strip-secrets removes them.",
    .opts = template_opts,
    .min_pos = 1,
    .max_pos = CLI_MAX_POS};

/* --------------------------------------------------------------- helpers */

static char *tpl_path(const cli_ctx_t *c, const char *id, const char *suffix)
{
    char *full = cli_job_fullname(c, id);
    char *e = cli_escape(full);
    char *p = str_printf("/api/v2/templates/%s%s", e, suffix ? suffix : "");
    free(e);
    free(full);
    return p;
}

/* Send body (JSON, may be NULL) and print the answer's message (and
 * warnings) or, with --json, the answer. */
static int send(const cli_ctx_t *c, const char *method, const char *path, json_t *body)
{
    char *text = body ? xjson_dumps(body, JSON_COMPACT) : NULL;
    cli_resp_t r;
    int rc = cli_request(c, method, path, text ? "application/json" : NULL, text,
                         text ? strlen(text) : 0, 0, &r);
    if (rc == CLI_OK && c->json) {
        cli_print_json(r.json);
    } else if (rc == CLI_OK) {
        printf("%s\n", cli_jstr(r.json, "message"));
        size_t i;
        json_t *w;
        json_array_foreach(json_object_get(r.json, "warnings"), i, w)
            fprintf(stderr, "warning: %s\n", json_string_value(w));
    }
    cli_resp_free(&r);
    free(text);
    return rc;
}

static void tags_cell(const json_t *m, char *out, size_t n)
{
    size_t i, off = 0;
    json_t *t;
    out[0] = '\0';
    json_array_foreach(json_object_get(m, "tags"), i, t)
    {
        int w = snprintf(out + off, n - off, "%s%s", i ? "," : "", json_string_value(t));
        if (w < 0 || (size_t)w >= n - off)
            break;
        off += (size_t)w;
    }
}

static void print_list(const json_t *ans)
{
    cli_table_t *t = cli_table_new("ID|TITLE|USES|VISIBILITY|FEATURED|TAGS");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(ans, "items"), i, m)
    {
        char uses[32], tags[256];
        cli_jfmt(m, "useCount", uses, sizeof uses);
        tags_cell(m, tags, sizeof tags);
        const char *cells[] = {cli_jstr(m, "id"),
                               cli_jstr(m, "title"),
                               uses,
                               cli_jstr(m, "visibility"),
                               json_is_true(json_object_get(m, "featured")) ? "yes" : "",
                               tags};
        cli_table_row(t, cells);
    }
    cli_table_print(t, stdout);
    cli_table_free(t);
}

/* ------------------------------------------------------------ the actions */

static int do_list(const cli_ctx_t *c, const cli_args_t *a, const char *keyword)
{
    char *q = xstrdup("/api/v2/templates?limit=1000");
    const char *vals[][2] = {{"keyword", keyword},
                             {"tag", cli_opt(a, "tag")},
                             {"sort", cli_opt(a, "sort")},
                             {"featured", cli_flag(a, "featured") ? "true" : NULL},
                             {"owner", cli_flag(a, "mine") ? c->user : NULL}};
    for (size_t i = 0; i < ARRAY_LEN(vals); i++) {
        if (!vals[i][1])
            continue;
        char *e = cli_escape(vals[i][1]);
        char *more = str_printf("%s&%s=%s", q, vals[i][0], e);
        free(e);
        free(q);
        q = more;
    }
    cli_resp_t r;
    int rc = cli_get(c, q, &r);
    if (rc == CLI_OK && c->json)
        cli_print_json(r.json);
    else if (rc == CLI_OK)
        print_list(r.json);
    cli_resp_free(&r);
    free(q);
    return rc;
}

static int do_search(const cli_ctx_t *c, const cli_args_t *a)
{
    char *words = xstrdup("");
    for (int i = 1; i < a->npos; i++) {
        char *more = str_printf("%s%s%s", words, i > 1 ? " " : "", a->pos[i]);
        free(words);
        words = more;
    }
    int rc = do_list(c, a, words);
    free(words);
    return rc;
}

static int do_show(const cli_ctx_t *c, const cli_args_t *a, const char *id)
{
    char *path = tpl_path(c, id, NULL);
    cli_resp_t r;
    int rc = cli_get(c, path, &r);
    if (rc == CLI_OK && c->json) {
        cli_print_json(r.json);
    } else if (rc == CLI_OK && cli_flag(a, "yaml")) {
        fputs(cli_jstr(r.json, "protocol"), stdout);
    } else if (rc == CLI_OK) {
        char uses[32], tags[256], groups[512] = "";
        cli_jfmt(r.json, "useCount", uses, sizeof uses);
        tags_cell(r.json, tags, sizeof tags);
        json_t *g = json_pack("{sO}", "tags", json_object_get(r.json, "groups"));
        tags_cell(g, groups, sizeof groups);
        json_decref(g);
        printf("id:          %s\ntitle:       %s\nowner:       %s\nvisibility:  %s%s%s\n"
               "featured:    %s\nuses:        %s\ntags:        %s\nimage:       %s\n"
               "description: %s\n\n%s",
               cli_jstr(r.json, "id"), cli_jstr(r.json, "title"), cli_jstr(r.json, "owner"),
               cli_jstr(r.json, "visibility"), *groups ? " " : "", groups,
               json_is_true(json_object_get(r.json, "featured")) ? "yes" : "no", uses, tags,
               cli_jstr(r.json, "image"), cli_jstr(r.json, "description"),
               cli_jstr(r.json, "protocol"));
    }
    cli_resp_free(&r);
    free(path);
    return rc;
}

/* The visibility options into body; CLI_USAGE when they contradict. */
static int set_sharing(const cli_args_t *a, json_t *body, bool required)
{
    json_t *groups = json_array();
    for (int i = 0; i < a->nrep; i++)
        if (strcmp(a->cmd->opts[a->rep_opt[i]].name, "group") == 0)
            json_array_append_new(groups, json_string(a->rep[i]));
    int n = cli_flag(a, "private") + cli_flag(a, "public") + (json_array_size(groups) > 0);
    if (n > 1 || (required && n == 0)) {
        fprintf(stderr, "pai template: give one of --private, --public or --group G...\n");
        json_decref(groups);
        return CLI_USAGE;
    }
    const char *vis = cli_flag(a, "private")    ? "private"
                      : cli_flag(a, "public")   ? "public"
                      : json_array_size(groups) ? "groups"
                                                : NULL;
    if (vis)
        json_object_set_new(body, "visibility", json_string(vis));
    if (json_array_size(groups))
        json_object_set(body, "groups", groups);
    json_decref(groups);
    return CLI_OK;
}

/* --title, --description, --tags, --image, --strip-secrets into body. */
static void set_texts(const cli_args_t *a, json_t *body)
{
    static const char *const keys[][2] = {
        {"title", "title"}, {"description", "description"}, {"tags", "tags"}, {"image", "image"}};
    for (size_t i = 0; i < ARRAY_LEN(keys); i++)
        if (cli_opt(a, keys[i][0]))
            json_object_set_new(body, keys[i][1], json_string(cli_opt(a, keys[i][0])));
    if (cli_flag(a, "strip-secrets"))
        json_object_set_new(body, "stripSecrets", json_true());
}

/* The protocol of a local file, checked as `pai submit` checks it. */
static int file_protocol(const char *path, json_t *body)
{
    buf_t text;
    ydoc_t *doc = NULL;
    int rc = cli_load_job(path, &text, &doc);
    if (rc == CLI_OK)
        json_object_set_new(body, "protocol", json_stringn(text.data, text.len));
    ydoc_free(doc);
    buf_free(&text);
    return rc;
}

/* The config of a job (secrets masked by the server). */
static int job_protocol(const cli_ctx_t *c, const char *job, json_t *body)
{
    char *full = cli_job_fullname(c, job);
    char *path = cli_job_path(full, "/config");
    cli_resp_t r;
    int rc = cli_get(c, path, &r);
    if (rc == CLI_OK)
        json_object_set_new(body, "protocol", json_stringn(r.body.data, r.body.len));
    cli_resp_free(&r);
    free(path);
    free(full);
    return rc;
}

static int do_publish(const cli_ctx_t *c, const cli_args_t *a)
{
    const char *job = cli_opt(a, "from-job");
    if ((a->npos == 2) == (job != NULL)) {
        fprintf(stderr, "pai template publish: give a FILE or --from-job JOB\n");
        return CLI_USAGE;
    }
    json_t *body = json_object();
    int rc = set_sharing(a, body, false);
    if (rc == CLI_OK)
        rc = job ? job_protocol(c, job, body) : file_protocol(a->pos[1], body);
    if (rc == CLI_OK) {
        set_texts(a, body);
        if (cli_opt(a, "name"))
            json_object_set_new(body, "name", json_string(cli_opt(a, "name")));
        rc = send(c, "POST", "/api/v2/templates", body);
    }
    json_decref(body);
    return rc;
}

static int do_edit(const cli_ctx_t *c, const cli_args_t *a, const char *id, bool share)
{
    json_t *body = json_object();
    int rc = set_sharing(a, body, share);
    if (rc == CLI_OK && !share && cli_opt(a, "file"))
        rc = file_protocol(cli_opt(a, "file"), body);
    if (rc == CLI_OK && !share)
        set_texts(a, body);
    if (rc == CLI_OK && json_object_size(body) == 0) {
        fprintf(stderr, "pai template edit: nothing to change (see --help)\n");
        rc = CLI_USAGE;
    }
    char *path = tpl_path(c, id, NULL);
    if (rc == CLI_OK)
        rc = send(c, "PUT", path, body);
    free(path);
    json_decref(body);
    return rc;
}

/* --param K=V into params (an integer V is sent as a number, as `pai submit`
 * does; the server checks that K is declared). */
static int submit_params(const cli_args_t *a, json_t *params)
{
    for (int i = 0; i < a->nrep; i++) {
        if (strcmp(a->cmd->opts[a->rep_opt[i]].name, "param") != 0)
            continue;
        const char *kv = a->rep[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            fprintf(stderr, "pai template submit: --param wants KEY=VALUE (got '%s')\n", kv);
            return CLI_USAGE;
        }
        int64_t n;
        json_t *v = str_to_i64(eq + 1, INT64_MIN, INT64_MAX, &n) == PAI_OK
                        ? json_integer((json_int_t)n)
                        : json_string(eq + 1);
        char *key = xstrndup(kv, (size_t)(eq - kv));
        json_object_set_new(params, key, v);
        free(key);
    }
    return CLI_OK;
}

static int do_submit(const cli_ctx_t *c, const cli_args_t *a, const char *id)
{
    json_t *params = json_object();
    int rc = submit_params(a, params);
    json_t *body = xjson_pack("{so}", "parameters", params);
    if (cli_opt(a, "name"))
        json_object_set_new(body, "name", json_string(cli_opt(a, "name")));
    if (cli_opt(a, "vc"))
        json_object_set_new(body, "virtualCluster", json_string(cli_opt(a, "vc")));
    char *path = tpl_path(c, id, "/submit");
    char *text = xjson_dumps(body, JSON_COMPACT);
    cli_resp_t r = {0};
    if (rc == CLI_OK)
        rc = cli_request(c, "POST", path, "application/json", text, strlen(text), 0, &r);
    char *job = rc == CLI_OK ? xstrdup(cli_jstr(r.json, "job")) : NULL;
    if (rc == CLI_OK && c->json)
        cli_print_json(r.json);
    else if (rc == CLI_OK)
        printf("submitted %s (from template %s)\n", job, cli_jstr(r.json, "template"));
    cli_resp_free(&r);
    if (rc == CLI_OK && cli_flag(a, "wait")) {
        char *argv[] = {"wait", job, NULL};
        rc = cli_wait_main(2, argv);
    }
    free(job);
    free(text);
    free(path);
    json_decref(body);
    return rc;
}

static int do_simple(const cli_ctx_t *c, const char *act, const char *id)
{
    bool del = strcmp(act, "delete") == 0;
    char *path = tpl_path(c, id, del ? NULL : "/featured");
    json_t *body = del ? NULL : xjson_pack("{sb}", "value", strcmp(act, "feature") == 0);
    int rc = send(c, del ? "DELETE" : "PUT", path, body);
    json_decref(body);
    free(path);
    return rc;
}

/* Positional arguments each action takes: {name, min, max} (the action counted). */
static const struct {
    const char *name;
    int min, max;
} actions[] = {
    {"list", 1, 1},    {"search", 2, CLI_MAX_POS},
    {"show", 2, 2},    {"publish", 1, 2},
    {"edit", 2, 2},    {"share", 2, 2},
    {"submit", 2, 2},  {"delete", 2, 2},
    {"feature", 2, 2}, {"unfeature", 2, 2},
};

static int dispatch(const cli_ctx_t *c, const cli_args_t *a, const char *act)
{
    const char *id = a->npos > 1 ? a->pos[1] : NULL;
    if (strcmp(act, "list") == 0)
        return do_list(c, a, NULL);
    if (strcmp(act, "search") == 0)
        return do_search(c, a);
    if (strcmp(act, "show") == 0)
        return do_show(c, a, id);
    if (strcmp(act, "publish") == 0)
        return do_publish(c, a);
    if (strcmp(act, "edit") == 0 || strcmp(act, "share") == 0)
        return do_edit(c, a, id, strcmp(act, "share") == 0);
    if (strcmp(act, "submit") == 0)
        return do_submit(c, a, id);
    return do_simple(c, act, id);
}

int cli_template_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&template_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    size_t k;
    for (k = 0; k < ARRAY_LEN(actions); k++)
        if (strcmp(a.pos[0], actions[k].name) == 0)
            break;
    if (k == ARRAY_LEN(actions) || a.npos < actions[k].min || a.npos > actions[k].max) {
        fprintf(stderr, "usage: pai template %s\n(see `pai template --help`)\n",
                template_cmd.synopsis);
        return CLI_USAGE;
    }
    cli_ctx_t c;
    rc = cli_ctx_load(&c, true);
    c.json = cli_flag(&a, "json");
    if (rc == CLI_OK)
        rc = dispatch(&c, &a, a.pos[0]);
    cli_ctx_free(&c);
    return rc;
}
