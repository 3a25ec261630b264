/*
 * args.c - table-driven argument parsing and --help for CLI commands.
 *
 * A command is a cli_cmd_t: synopsis, summary, an option table and how
 * many positional arguments it takes.  The same table produces `--help`,
 * so the help can never disagree with what the parser accepts.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"

static int opt_count(const cli_cmd_t *cmd)
{
    int n = 0;
    while (cmd->opts && cmd->opts[n].name)
        n++;
    return n;
}

static int opt_find(const cli_cmd_t *cmd, const char *name, size_t len)
{
    for (int i = 0; cmd->opts && cmd->opts[i].name; i++)
        if (strlen(cmd->opts[i].name) == len && strncmp(cmd->opts[i].name, name, len) == 0)
            return i;
    return -1;
}

void cli_print_help(const cli_cmd_t *cmd, FILE *out)
{
    fprintf(out, "usage: pai %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->summary);
    if (opt_count(cmd) == 0)
        return;
    fprintf(out, "\noptions:\n");
    for (int i = 0; cmd->opts[i].name; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", cmd->opts[i].name, cmd->opts[i].arg ? " " : "",
                 cmd->opts[i].arg ? cmd->opts[i].arg : "");
        fprintf(out, "  %-22s %s\n", left, cmd->opts[i].help);
    }
    fprintf(out, "  %-22s %s\n", "--help", "show this help");
}

static int usage_error(const cli_cmd_t *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "pai %s: %s%s%s\n", cmd->name, what, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: pai %s %s\n(see `pai %s --help`)\n", cmd->name, cmd->synopsis,
            cmd->name);
    return CLI_USAGE;
}

static int take_option(const cli_cmd_t *cmd, cli_args_t *a, int argc, char **argv, int *i)
{
    const char *s = argv[*i] + 2;
    const char *eq = strchr(s, '=');
    size_t len = eq ? (size_t)(eq - s) : strlen(s);
    int k = opt_find(cmd, s, len);
    if (k < 0)
        return usage_error(cmd, "unknown option", argv[*i]);
    const char *v = "";
    if (cmd->opts[k].arg) {
        if (eq)
            v = eq + 1;
        else if (*i + 1 < argc)
            v = argv[++*i];
        else
            return usage_error(cmd, "missing value for", argv[*i]);
    } else if (eq) {
        return usage_error(cmd, "option takes no value:", argv[*i]);
    }
    a->val[k] = v;
    if (cmd->opts[k].repeat) {
        if (a->nrep >= CLI_MAX_REP)
            return usage_error(cmd, "too many", argv[*i]);
        a->rep[a->nrep] = v;
        a->rep_opt[a->nrep++] = k;
    }
    return CLI_OK;
}

int cli_args_parse(const cli_cmd_t *cmd, int argc, char **argv, cli_args_t *a, bool *done)
{
    memset(a, 0, sizeof(*a));
    a->cmd = cmd;
    *done = false;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!only_pos && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
            cli_print_help(cmd, stdout);
            *done = true;
            return CLI_OK;
        }
        if (!only_pos && strcmp(s, "--") == 0) {
            only_pos = true;
        } else if (!only_pos && str_has_prefix(s, "--")) {
            int rc = take_option(cmd, a, argc, argv, &i);
            if (rc != CLI_OK)
                return rc;
        } else if (!only_pos && s[0] == '-' && s[1] != '\0') {
            return usage_error(cmd, "unknown option", s);
        } else {
            if (a->npos >= cmd->max_pos || a->npos >= CLI_MAX_POS)
                return usage_error(cmd, "unexpected argument", s);
            a->pos[a->npos++] = s;
        }
    }
    if (a->npos < cmd->min_pos)
        return usage_error(cmd, "missing argument", NULL);
    return CLI_OK;
}

const char *cli_opt(const cli_args_t *a, const char *name)
{
    int k = opt_find(a->cmd, name, strlen(name));
    return k < 0 ? NULL : a->val[k];
}

bool cli_flag(const cli_args_t *a, const char *name)
{
    return cli_opt(a, name) != NULL;
}

int cli_opt_int(const cli_args_t *a, const char *name, int min, int max, int def, int *out)
{
    const char *v = cli_opt(a, name);
    *out = def;
    if (!v)
        return CLI_OK;
    if (str_to_int(v, min, max, out) != PAI_OK) {
        fprintf(stderr, "pai %s: --%s must be a whole number from %d to %d (got '%s')\n",
                a->cmd->name, name, min, max, v);
        return CLI_USAGE;
    }
    return CLI_OK;
}
