/*
 * cmd_admin.c - `pai users` and `pai groups` (admin commands).
 *
 * users list | show U | create U --password P [--admin] [--vc A,B] [--email E] | delete U
 *   GET /api/v2/users, GET/DELETE /api/v2/users/{u}, POST /api/v2/users
 * groups list | show G | create G [--description D] | delete G
 *   GET /api/v2/groups, GET/DELETE /api/v2/groups/{g}, POST /api/v2/groups
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"

static const cli_opt_t users_opts[] = {
    {.name = "password", .arg = "P", .help = "password of the new user"},
    {.name = "admin", .help = "the new user is an administrator"},
    {.name = "vc", .arg = "VC[,VC...]", .help = "virtual clusters the new user may use"},
    {.name = "email", .arg = "E", .help = "email address"},
    {.name = "json", .help = "print JSON"},
    {0},
};
static const cli_cmd_t users_cmd = {
    .name = "users",
    .synopsis = "list | show USER | create USER --password P [--admin] [--vc VCS] | delete USER",
    .summary = "Manage users (administrators only).",
    .opts = users_opts,
    .max_pos = 2};

static const cli_opt_t groups_opts[] = {
    {.name = "description", .arg = "TEXT", .help = "description of the new group"},
    {.name = "json", .help = "print JSON"},
    {0},
};
static const cli_cmd_t groups_cmd = {.name = "groups",
                                     .synopsis =
                                         "list | show GROUP | create GROUP [--description D] | "
                                         "delete GROUP",
                                     .summary = "Manage groups (administrators only).",
                                     .opts = groups_opts,
                                     .max_pos = 2};

typedef struct {
    const char *base; /* "/api/v2/users" */
    const char *header;
    void (*row)(cli_table_t *t, const json_t *o);
    json_t *(*create_body)(const cli_args_t *a, const char *name);
} admin_kind_t;

static void vc_list(const json_t *o, char *out, size_t n)
{
    size_t i, off = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(json_object_get(o, "virtualCluster"), i, v)
    {
        int w = snprintf(out + off, n - off, "%s%s", i ? "," : "", json_string_value(v));
        if (w < 0 || (size_t)w >= n - off)
            break;
        off += (size_t)w;
    }
}

static void user_row(cli_table_t *t, const json_t *u)
{
    char vcs[512];
    vc_list(u, vcs, sizeof(vcs));
    const char *cells[] = {cli_jstr(u, "username"),
                           json_is_true(json_object_get(u, "admin")) ? "yes" : "no", vcs,
                           cli_jstr(u, "email")};
    cli_table_row(t, cells);
}

static void group_row(cli_table_t *t, const json_t *g)
{
    const char *cells[] = {cli_jstr(g, "groupname"), cli_jstr(g, "description"),
                           cli_jstr(g, "externalName")};
    cli_table_row(t, cells);
}

static json_t *user_body(const cli_args_t *a, const char *name)
{
    json_t *o = xjson_pack("{s:s, s:b}", "username", name, "admin", cli_flag(a, "admin"));
    if (cli_opt(a, "password"))
        json_object_set_new(o, "password", json_string(cli_opt(a, "password")));
    if (cli_opt(a, "email"))
        json_object_set_new(o, "email", json_string(cli_opt(a, "email")));
    json_t *vcs = json_array();
    const char *s = cli_opt(a, "vc");
    while (s && *s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n)
            json_array_append_new(vcs, json_stringn(s, n));
        s = comma ? comma + 1 : NULL;
    }
    json_object_set_new(o, "virtualCluster", vcs);
    return o;
}

static json_t *group_body(const cli_args_t *a, const char *name)
{
    const char *d = cli_opt(a, "description");
    return xjson_pack("{s:s, s:s, s:s, s:{}}", "groupname", name, "description", d ? d : "",
                      "externalName", name, "extension");
}

static const admin_kind_t users_kind = {"/api/v2/users", "USER|ADMIN|VCS|EMAIL", user_row,
                                        user_body};
static const admin_kind_t groups_kind = {"/api/v2/groups", "GROUP|DESCRIPTION|EXTERNAL", group_row,
                                         group_body};

static int admin_list(const cli_ctx_t *c, const admin_kind_t *k)
{
    cli_resp_t r;
    int rc = cli_get(c, k->base, &r);
    if (rc == CLI_OK && c->json) {
        cli_print_json(r.json);
    } else if (rc == CLI_OK) {
        cli_table_t *t = cli_table_new(k->header);
        size_t i;
        json_t *o;
        json_array_foreach(r.json, i, o) k->row(t, o);
        cli_table_print(t, stdout);
        cli_table_free(t);
    }
    cli_resp_free(&r);
    return rc;
}

static int admin_one(const cli_ctx_t *c, const admin_kind_t *k, const char *method,
                     const char *name, const char *body)
{
    char *e = cli_escape(name);
    char *path = strcmp(method, "POST") == 0 ? xstrdup(k->base) : str_printf("%s/%s", k->base, e);
    cli_resp_t r;
    int rc = cli_request(c, method, path, body ? "application/json" : NULL, body,
                         body ? strlen(body) : 0, 0, &r);
    if (rc == CLI_OK && strcmp(method, "GET") == 0)
        cli_print_json(r.json);
    else if (rc == CLI_OK)
        printf("%s %s\n", strcmp(method, "POST") == 0 ? "created" : "deleted", name);
    cli_resp_free(&r);
    free(path);
    free(e);
    return rc;
}

static int admin_main(const cli_cmd_t *cmd, const admin_kind_t *k, int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    const char *act = a.npos > 0 ? a.pos[0] : "list";
    bool is_list = strcmp(act, "list") == 0;
    bool known = is_list || strcmp(act, "show") == 0 || strcmp(act, "create") == 0 ||
                 strcmp(act, "delete") == 0;
    if (!known || (is_list && a.npos > 1) || (!is_list && a.npos != 2)) {
        fprintf(stderr, "usage: pai %s %s\n", cmd->name, cmd->synopsis);
        return CLI_USAGE;
    }
    cli_ctx_t c;
    rc = cli_ctx_load(&c, true);
    c.json = cli_flag(&a, "json");
    char *body = NULL;
    if (rc != CLI_OK)
        goto out;
    if (is_list) {
        rc = admin_list(&c, k);
    } else if (strcmp(act, "create") == 0) {
        json_t *o = k->create_body(&a, a.pos[1]);
        body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        rc = admin_one(&c, k, "POST", a.pos[1], body);
    } else {
        rc = admin_one(&c, k, strcmp(act, "show") == 0 ? "GET" : "DELETE", a.pos[1], NULL);
    }
out:
    free(body);
    cli_ctx_free(&c);
    return rc;
}

int cli_users_main(int argc, char **argv)
{
    return admin_main(&users_cmd, &users_kind, argc, argv);
}

int cli_groups_main(int argc, char **argv)
{
    return admin_main(&groups_cmd, &groups_kind, argc, argv);
}
