/*
 * cmd_notify.c - `pai notify`: show or set your notification settings, the
 * default of your jobs that have no extras.notify (docs/api.md,
 * "Notifications").
 *
 *   pai notify                                  GET /api/v2/users/{me}
 *   pai notify [--on EVENTS] [--email on|off] [--webhook URL]
 *                                               PUT /api/v2/users/me {notification}
 *   pai notify --off                            PUT ... {notification: null}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"

static const cli_opt_t notify_opts[] = {
    {.name = "on",
     .arg = "EVENTS",
     .help = "events, separated by commas: running, succeeded, failed, stopped, retried, "
             "waiting, idle (default: succeeded,failed,stopped)"},
    {.name = "email", .arg = "on|off", .help = "e-mail the address of your profile (default on)"},
    {.name = "webhook", .arg = "URL", .help = "POST the events here (a host the admin allows)"},
    {.name = "off", .help = "remove your settings: jobs without extras.notify tell nothing"},
    {.name = "json", .help = "print JSON"},
    {0},
};
static const cli_cmd_t notify_cmd = {
    .name = "notify",
    .synopsis = "[--on EVENTS] [--email on|off] [--webhook URL] | --off",
    .summary = "Show your notification settings, or set them (they replace the earlier ones): "
               "the events of your jobs that are e-mailed to you or POSTed to a webhook, for "
               "the jobs submitted afterwards without extras.notify of their own.",
    .opts = notify_opts,
    .max_pos = 0};

static void print_settings(const json_t *user)
{
    const json_t *n = json_object_get(user, "notification");
    if (!json_is_object(n)) {
        printf("no notification settings: jobs without extras.notify tell you nothing\n");
        return;
    }
    const char *email = cli_jstr(user, "email");
    bool mail = !json_is_false(json_object_get(n, "email"));
    printf("e-mail:   %s%s%s%s\n", mail ? "on" : "off", mail ? " (to " : "",
           mail ? (*email ? email : "no address in your profile") : "", mail ? ")" : "");
    const char *hook = json_string_value(json_object_get(n, "webhook"));
    printf("webhook:  %s\n", hook && *hook ? hook : "-");
    printf("events:   ");
    const json_t *on = json_object_get(n, "on");
    if (!on) {
        printf("succeeded,failed,stopped (the default)\n");
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(on, i, v) printf("%s%s", i ? "," : "", json_string_value(v));
    printf("\n");
}

/* The settings the options give (new reference); NULL on a usage error. */
static json_t *settings_from(const cli_args_t *a)
{
    json_t *n = json_object();
    const char *email = cli_opt(a, "email"), *on = cli_opt(a, "on");
    if (email && strcmp(email, "on") != 0 && strcmp(email, "off") != 0) {
        fprintf(stderr, "pai notify: --email must be on or off\n");
        json_decref(n);
        return NULL;
    }
    json_object_set_new(n, "email", json_boolean(!email || strcmp(email, "off") != 0));
    if (cli_opt(a, "webhook"))
        json_object_set_new(n, "webhook", json_string(cli_opt(a, "webhook")));
    if (on) {
        json_t *list = json_array();
        char *copy = xstrdup(on), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (*t)
                json_array_append_new(list, json_string(t));
        free(copy);
        json_object_set_new(n, "on", list);
    }
    return n;
}

int cli_notify_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&notify_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    bool set = cli_opt(&a, "on") || cli_opt(&a, "email") || cli_opt(&a, "webhook");
    if (set && cli_flag(&a, "off")) {
        fprintf(stderr, "pai notify: --off takes no other option\n");
        return CLI_USAGE;
    }
    cli_ctx_t c;
    cli_resp_t r = {0};
    json_t *body = NULL;
    char *path = NULL;
    if ((rc = cli_ctx_load(&c, true)) != CLI_OK)
        return rc;
    if (!c.user || !*c.user) {
        fprintf(stderr, "pai notify: who you are is not known: log in with `pai login`\n");
        rc = CLI_USAGE;
        goto out;
    }
    if (set || cli_flag(&a, "off")) {
        json_t *n = cli_flag(&a, "off") ? json_null() : settings_from(&a);
        if (!n) {
            rc = CLI_USAGE;
            goto out;
        }
        body = xjson_pack("{s:{s:s, s:o}, s:b}", "data", "username", c.user, "notification", n,
                          "patch", 1);
        char *text = xjson_dumps(body, JSON_COMPACT);
        rc = cli_request(&c, "PUT", "/api/v2/users/me", "application/json", text, strlen(text), 0,
                         &r);
        free(text);
        cli_resp_free(&r);
        memset(&r, 0, sizeof r);
        if (rc != CLI_OK)
            goto out;
    }
    char *who = cli_escape(c.user);
    path = str_printf("/api/v2/users/%s", who);
    free(who);
    if ((rc = cli_get(&c, path, &r)) != CLI_OK)
        goto out;
    if (cli_flag(&a, "json"))
        cli_print_json(json_object_get(r.json, "notification") ?: json_null());
    else
        print_settings(r.json);
out:
    json_decref(body);
    free(path);
    cli_resp_free(&r);
    cli_ctx_free(&c);
    return rc;
}
