/*
 * main.c - the `pai` binary: one table of subcommands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/util.h"
#include "common/version.h"

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command_t;

static int job_dispatch(int argc, char **argv);

static const command_t commands[] = {
    {"up", up_main, "start a whole cluster on this machine (server + agents)"},
    {"down", down_main, "stop the cluster started by `pai up`"},
    {"server", server_main, "run the server: REST API, portal, scheduler, store"},
    {"agent", agent_main, "run a node agent"},
    {"sim", sim_main, "replay a job trace through the scheduler (emulator)"},
    {"store", store_main, "copy a stopped server's store to another backend (store migrate)"},
    {"login", cli_login_main, "log in to a server and remember the token"},
    {"logout", cli_logout_main, "revoke and forget the stored token"},
    {"submit", cli_submit_main, "submit a job file"},
    {"jobs", cli_jobs_main, "list jobs"},
    {"job", job_dispatch, "show a job; `job validate|render FILE` checks a job file offline"},
    {"logs", cli_logs_main, "print a task's logs"},
    {"ssh", cli_ssh_main, "open an ssh session into a running task"},
    {"exec", cli_exec_main, "run a command inside a running task"},
    {"stop", cli_stop_main, "stop a job"},
    {"delete", cli_delete_main, "delete a finished job"},
    {"wait", cli_wait_main, "wait for a job to finish; exit with its result"},
    {"tag", cli_tag_main, "add or remove job tags"},
    {"nodes", cli_nodes_main, "list nodes and their GPUs"},
    {"vcs", cli_vcs_main, "list virtual clusters"},
    {"usage", cli_usage_main, "GPU-hours held versus used, per VC, user or job"},
    {"notify", cli_notify_main, "show or set your notification settings (e-mail, webhook)"},
    {"users", cli_users_main, "manage users (admin)"},
    {"groups", cli_groups_main, "manage groups (admin)"},
    {"token", cli_token_main, "create, list and revoke tokens"},
    {"template", cli_template_main, "job templates: publish, share, search, submit from one"},
};

static int job_dispatch(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "validate") == 0)
        return job_validate_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "render") == 0)
        return job_render_main(argc - 1, argv + 1);
    return cli_job_main(argc, argv);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: pai COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nRun `pai COMMAND --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    util_alloc_init(); /* allocation failures abort (common/util.h) */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pai %s\n", PAI_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pai: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
