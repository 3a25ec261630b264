/*
 * cmd_submit.c - `pai submit FILE [--param k=v]... [--vc VC] [--name N]`.
 *
 * The file is checked locally first (errors name file, line and field).
 * Without changes it is sent as written (POST /api/v2/jobs, text/yaml), so
 * the server keeps the user's own text; with --param / --vc / --name the
 * document is rewritten as JSON (valid YAML) with:
 *   parameters.<k> = v   (each k must be declared under `parameters:`)
 *   defaults.virtualCluster = VC
 *   name = N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/submit.h"
#include "common/util.h"
#include "common/yamljson.h"

static const cli_opt_t submit_opts[] = {
    {.name = "param",
     .arg = "K=V",
     .help = "set parameter K (declared under `parameters:`) to V; repeatable",
     .repeat = true},
    {.name = "vc", .arg = "VC", .help = "virtual cluster to run in (sets defaults.virtualCluster)"},
    {.name = "name", .arg = "NAME", .help = "job name instead of the file's `name:` (for sweeps)"},
    {.name = "wait", .help = "wait for the job to finish; exit like `pai wait`"},
    {.name = "json", .help = "print the result as JSON"},
    {0},
};
static const cli_cmd_t submit_cmd = {
    .name = "submit",
    .synopsis = "FILE [--param K=V]... [--vc VC] [--name NAME]",
    .summary = "Check a job file (OpenPAI job protocol v2) locally, then submit it.\n"
               "Problems are reported as FILE:LINE:COL: field: reason and nothing is sent.",
    .opts = submit_opts,
    .min_pos = 1,
    .max_pos = 1};

static int set_param(json_t *job, const char *kv, const char *path)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        fprintf(stderr, "pai submit: --param wants KEY=VALUE (got '%s')\n", kv);
        return CLI_USAGE;
    }
    char *key = xstrndup(kv, (size_t)(eq - kv));
    json_t *params = json_object_get(job, "parameters");
    int rc = CLI_OK;
    if (!json_is_object(params) || !json_object_get(params, key)) {
        fprintf(stderr, "pai submit: %s: parameters.%s: not declared in the file's `parameters:`\n",
                path, key);
        rc = CLI_USAGE;
        goto out;
    }
    int64_t i;
    json_t *v = str_to_i64(eq + 1, INT64_MIN, INT64_MAX, &i) == PAI_OK ? json_integer((json_int_t)i)
                                                                       : json_string(eq + 1);
    json_object_set_new(params, key, v);
out:
    free(key);
    return rc;
}

static int apply_changes(const cli_args_t *a, json_t *job, const char *path)
{
    for (int i = 0; i < a->nrep; i++) {
        int rc = set_param(job, a->rep[i], path);
        if (rc != CLI_OK)
            return rc;
    }
    const char *vc = cli_opt(a, "vc");
    if (vc) {
        json_t *d = json_object_get(job, "defaults");
        if (!json_is_object(d)) {
            d = json_object();
            json_object_set_new(job, "defaults", d);
        }
        json_object_set_new(d, "virtualCluster", json_string(vc));
    }
    const char *name = cli_opt(a, "name");
    if (name) {
        if (!str_is_name(name)) {
            fprintf(stderr, "pai submit: --name: must be letters, digits, '-' or '_'\n");
            return CLI_USAGE;
        }
        json_object_set_new(job, "name", json_string(name));
    }
    return CLI_OK;
}

static int post_job(cli_ctx_t *c, const char *body, size_t len, const char *name)
{
    cli_resp_t r;
    int rc = cli_request(c, "POST", "/api/v2/jobs", "text/yaml", body, len, 0, &r);
    char *full = cli_job_fullname(c, name);
    if (rc == CLI_OK) {
        if (c->json) {
            json_t *o =
                xjson_pack("{s:s, s:s?}", "job", full, "message", cli_jstr(r.json, "message"));
            cli_print_json(o);
            json_decref(o);
        } else {
            printf("submitted %s\n", full);
        }
    }
    free(full);
    cli_resp_free(&r);
    return rc;
}

static int submit_wait(const char *name)
{
    char *argv[] = {"wait", (char *)name, NULL};
    return cli_wait_main(2, argv);
}

int cli_submit_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&submit_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    const char *path = a.pos[0];
    buf_t text;
    ydoc_t *doc = NULL;
    json_t *job = NULL;
    char *body = NULL;
    cli_ctx_t c = {0};
    rc = cli_load_job(path, &text, &doc);
    if (rc != CLI_OK)
        goto out;
    job = yjson_from_node(ydoc_root(doc));
    rc = apply_changes(&a, job, path);
    if (rc != CLI_OK)
        goto out;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    c.json = cli_flag(&a, "json");
    bool changed = a.nrep > 0 || cli_opt(&a, "vc") || cli_opt(&a, "name");
    if (changed) {
        body = json_dumps(job, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        char *label = str_printf("%s (with --param/--vc/--name)", path);
        rc = cli_check_job(body, strlen(body), label);
        free(label);
        if (rc != CLI_OK)
            goto out;
    }
    const char *name = json_string_value(json_object_get(job, "name"));
    rc = post_job(&c, changed ? body : buf_str(&text), changed ? strlen(body) : text.len, name);
    if (rc == CLI_OK && cli_flag(&a, "wait")) {
        char *full = cli_job_fullname(&c, name);
        rc = submit_wait(full);
        free(full);
    }
out:
    free(body);
    json_decref(job);
    ydoc_free(doc);
    buf_free(&text);
    cli_ctx_free(&c);
    return rc;
}
