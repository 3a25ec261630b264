/*
 * cmd_auth.c - `pai login`, `pai logout`, `pai token`.
 *
 * login:  POST /api/v2/authn/basic/login (form: username, password,
 *         expiration) -> {token, user, admin}, stored in the config file.
 * logout: DELETE /api/v2/authn/basic/logout, then forget the token.
 * token:  GET /api/v2/tokens, POST /api/v2/tokens/application,
 *         DELETE /api/v2/tokens/{token}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"

static const cli_opt_t login_opts[] = {
    {.name = "user", .arg = "U", .help = "user name (default: admin)"},
    {.name = "password",
     .arg = "P",
     .help = "password (default: $PAI_PASSWORD, else asked, else read from stdin)"},
    {.name = "expiration", .arg = "SECONDS", .help = "token lifetime in seconds (default 7 days)"},
    {.name = "ca-file",
     .arg = "PEM",
     .help = "CA that signed an https:// server's certificate, kept for later commands "
             "(default: $PAI_CA_FILE, else the system's CAs)"},
    {.name = "json", .help = "print the server's answer as JSON"},
    {0},
};
static const cli_cmd_t login_cmd = {
    .name = "login",
    .synopsis = "URL [--user U] [--password P]",
    .summary =
        "Log in to a pai (or OpenPAI) server and store the server URL and an access token in\n"
        "your config file (~/.config/pai/config.json, mode 0600; PAI_CONFIG moves it).\n"
        "PAI_SERVER and PAI_TOKEN in the environment override what is stored.",
    .opts = login_opts,
    .min_pos = 1,
    .max_pos = 1};

/* Read one line from stdin, without echo when it is a terminal. */
static char *read_secret(const char *prompt)
{
    bool tty = isatty(STDIN_FILENO) == 1;
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
    }
    char line[512];
    char *got = fgets(line, sizeof(line), stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!got)
        return NULL;
    line[strcspn(line, "\r\n")] = '\0';
    return xstrdup(line);
}

static char *login_form(const char *user, const char *pass, const char *exp)
{
    char *eu = cli_escape(user), *ep = cli_escape(pass);
    char *form = str_printf("username=%s&password=%s&expiration=%s", eu, ep, exp);
    free(eu);
    free(ep);
    return form;
}

/* keep_ca: the --ca-file to store (NULL: none). */
static int login_post(cli_ctx_t *c, const char *user, const char *pass, const char *exp,
                      const char *keep_ca)
{
    char *form = login_form(user, pass, exp);
    cli_resp_t r;
    int rc = cli_request(c, "POST", "/api/v2/authn/basic/login",
                         "application/x-www-form-urlencoded", form, strlen(form), 0, &r);
    free(form);
    if (rc != CLI_OK)
        goto out;
    const char *token = json_string_value(json_object_get(r.json, "token"));
    const char *who = json_string_value(json_object_get(r.json, "user"));
    if (!token) {
        fprintf(stderr, "pai login: the server's answer has no token\n");
        rc = CLI_FAIL;
        goto out;
    }
    rc = cli_config_save(c->server, token, who ? who : user, keep_ca);
    if (rc != CLI_OK)
        goto out;
    if (c->json)
        cli_print_json(r.json);
    else
        printf("logged in to %s as %s%s\n", c->server, who ? who : user,
               json_is_true(json_object_get(r.json, "admin")) ? " (admin)" : "");
out:
    cli_resp_free(&r);
    return rc;
}

int cli_login_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&login_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    cli_ctx_t c = {0};
    c.server = xstrdup(a.pos[0]);
    size_t n = strlen(c.server);
    while (n > 0 && c.server[n - 1] == '/')
        c.server[--n] = '\0';
    c.json = cli_flag(&a, "json");
    char *ca = NULL;
    if (cli_opt(&a, "ca-file")) {
        /* an absolute path, so that later commands find it from anywhere */
        if (!(ca = realpath(cli_opt(&a, "ca-file"), NULL))) {
            fprintf(stderr, "pai login: --ca-file %s: %s\n", cli_opt(&a, "ca-file"),
                    strerror(errno));
            cli_ctx_free(&c);
            return CLI_USAGE;
        }
        c.ca_file = xstrdup(ca);
    } else if (getenv("PAI_CA_FILE") && *getenv("PAI_CA_FILE")) {
        c.ca_file = xstrdup(getenv("PAI_CA_FILE"));
    }
    const char *user = cli_opt(&a, "user") ? cli_opt(&a, "user") : "admin";
    char *pass = NULL;
    if (cli_opt(&a, "password"))
        pass = xstrdup(cli_opt(&a, "password"));
    else if (getenv("PAI_PASSWORD"))
        pass = xstrdup(getenv("PAI_PASSWORD"));
    else
        pass = read_secret("password: ");
    if (!pass) {
        fprintf(stderr, "pai login: no password given (use --password or PAI_PASSWORD)\n");
        rc = CLI_USAGE;
        goto out;
    }
    const char *exp = cli_opt(&a, "expiration") ? cli_opt(&a, "expiration") : "604800";
    rc = login_post(&c, user, pass, exp, ca);
out:
    free(ca);
    free(pass);
    cli_ctx_free(&c);
    return rc;
}

static const cli_opt_t logout_opts[] = {{0}};
static const cli_cmd_t logout_cmd = {
    .name = "logout",
    .synopsis = "",
    .summary = "Revoke the stored token on the server and forget it (the server URL is kept).",
    .opts = logout_opts};

int cli_logout_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&logout_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    cli_ctx_t c;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    cli_resp_t r;
    rc = cli_request(&c, "DELETE", "/api/v2/authn/basic/logout", NULL, NULL, 0, 0, &r);
    cli_resp_free(&r);
    if (cli_config_save(c.server, NULL, NULL, c.ca_file) != CLI_OK)
        rc = CLI_FAIL;
    else
        printf("logged out of %s%s\n", c.server,
               rc == CLI_OK ? "" : " (token forgotten here; the server did not revoke it)");
out:
    cli_ctx_free(&c);
    return rc;
}

static const cli_opt_t token_opts[] = {
    {.name = "expiration",
     .arg = "SECONDS",
     .help = "create: the token expires after this many seconds (default: never)"},
    {.name = "json", .help = "print JSON"},
    {0},
};
static const cli_cmd_t token_cmd = {
    .name = "token",
    .synopsis = "list | create | revoke TOKEN",
    .summary = "Manage your access tokens.\n"
               "  list          the tokens signed for you\n"
               "  create        a new application token (for scripts and CI; revoked by a\n"
               "                password change; no expiry unless --expiration)\n"
               "  revoke TOKEN  revoke one token",
    .opts = token_opts,
    .min_pos = 1,
    .max_pos = 2};

static int token_list(const cli_ctx_t *c)
{
    cli_resp_t r;
    int rc = cli_get(c, "/api/v2/tokens", &r);
    if (rc == CLI_OK) {
        json_t *list = json_object_get(r.json, "tokens");
        if (c->json) {
            cli_print_json(r.json);
        } else {
            size_t i;
            json_t *t;
            json_array_foreach(list, i, t) printf("%s\n", json_string_value(t));
        }
    }
    cli_resp_free(&r);
    return rc;
}

/* expiration: seconds, 0 for none. */
static int token_create(const cli_ctx_t *c, int expiration)
{
    cli_resp_t r;
    char body[48] = "{}";
    if (expiration > 0)
        snprintf(body, sizeof(body), "{\"expiration\": %d}", expiration);
    int rc = cli_request(c, "POST", "/api/v2/tokens/application", "application/json", body,
                         strlen(body), 0, &r);
    if (rc == CLI_OK) {
        if (c->json)
            cli_print_json(r.json);
        else
            printf("%s\n", cli_jstr(r.json, "token"));
    }
    cli_resp_free(&r);
    return rc;
}

static int token_revoke(const cli_ctx_t *c, const char *token)
{
    char *e = cli_escape(token);
    char *path = str_printf("/api/v2/tokens/%s", e);
    cli_resp_t r;
    int rc = cli_request(c, "DELETE", path, NULL, NULL, 0, 0, &r);
    if (rc == CLI_OK)
        printf("revoked\n");
    cli_resp_free(&r);
    free(path);
    free(e);
    return rc;
}

int cli_token_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&token_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    const char *act = a.pos[0];
    bool revoke = strcmp(act, "revoke") == 0;
    if ((revoke && a.npos != 2) || (!revoke && a.npos != 1) ||
        (!revoke && strcmp(act, "list") != 0 && strcmp(act, "create") != 0)) {
        fprintf(stderr, "usage: pai token %s\n", token_cmd.synopsis);
        return CLI_USAGE;
    }
    int expiration = 0;
    if ((rc = cli_opt_int(&a, "expiration", 1, 3650 * 86400, 0, &expiration)) != CLI_OK)
        return rc;
    cli_ctx_t c;
    rc = cli_ctx_load(&c, true);
    c.json = cli_flag(&a, "json");
    if (rc == CLI_OK)
        rc = revoke                     ? token_revoke(&c, a.pos[1])
             : strcmp(act, "list") == 0 ? token_list(&c)
                                        : token_create(&c, expiration);
    cli_ctx_free(&c);
    return rc;
}
