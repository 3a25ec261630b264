/*
 * main.c - the `pai` binary: one table of subcommands.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "common/util.h"
#include "common/version.h"

/* jemalloc's options (read at its start when it is the allocator, the
 * Makefile's ALLOC; an unused variable otherwise): sizes up to 64 KiB kept
 * in each thread's cache, not 32 KiB, so that libyaml's 16 + 48 KiB of
 * buffers per document (every submission's parse) are reused by the thread
 * that freed them instead of coming from the arena's large extents, fresh
 * pages each time: yaml_parser_initialize 0.76% -> 0.07% and the parse
 * 4.5% -> 3.2% of the server's samples in bench-e2e (docs/benchmarks-history.md,
 * "The server's own code, seventh round").  MALLOC_CONF adds to it. */
extern const char *malloc_conf;
const char *malloc_conf = "tcache_max:65536";

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
    bool daemon; /* a server, agent or tool: leaves through exit() */
} command_t;

static int job_dispatch(int argc, char **argv);

static const command_t commands[] = {
    {"up", up_main, "start a whole cluster on this machine (server + agents)", true},
    {"down", down_main, "stop the cluster started by `pai up`", true},
    {"server", server_main, "run the server: REST API, portal, scheduler, store", true},
    {"agent", agent_main, "run a node agent", true},
    {"sim", sim_main, "replay a job trace through the scheduler (emulator)", true},
    {"store", store_main, "copy a stopped server's store to another backend (store migrate)", true},
    {"login", cli_login_main, "log in to a server and remember the token", false},
    {"logout", cli_logout_main, "revoke and forget the stored token", false},
    {"submit", cli_submit_main, "submit a job file", false},
    {"jobs", cli_jobs_main, "list jobs", false},
    {"job", job_dispatch, "show a job; `job validate|render FILE` checks a job file offline",
     false},
    {"logs", cli_logs_main, "print a task's logs", false},
    {"ssh", cli_ssh_main, "open an ssh session into a running task", false},
    {"exec", cli_exec_main, "run a command inside a running task", false},
    {"stop", cli_stop_main, "stop a job", false},
    {"delete", cli_delete_main, "delete a finished job", false},
    {"wait", cli_wait_main, "wait for a job to finish; exit with its result", false},
    {"tag", cli_tag_main, "add or remove job tags", false},
    {"nodes", cli_nodes_main, "list nodes and their GPUs", false},
    {"vcs", cli_vcs_main, "list virtual clusters", false},
    {"usage", cli_usage_main, "GPU-hours held versus used, per VC, user or job", false},
    {"notify", cli_notify_main, "show or set your notification settings (e-mail, webhook)", false},
    {"users", cli_users_main, "manage users (admin)", false},
    {"groups", cli_groups_main, "manage groups (admin)", false},
    {"token", cli_token_main, "create, list and revoke tokens", false},
    {"template", cli_template_main, "job templates: publish, share, search, submit from one",
     false},
};

static int job_dispatch(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "validate") == 0)
        return job_validate_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "render") == 0)
        return job_render_main(argc - 1, argv + 1);
    return cli_job_main(argc, argv);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PAI_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PAI_SANITIZED 1
#endif
#endif

/* A client command's end.  exit() would run the libraries' exit handlers:
 * OpenSSL's clean-up alone (libcurl initialises it whatever the URL) is 4%
 * of a `pai submit`'s instructions (docs/cli.md, "Start-up cost"); the
 * process frees everything by ending.  Output is flushed first.  Daemons
 * and sanitizer builds (the leak check runs at exit) leave through exit(). */
static int leave(const command_t *c, int rc)
{
#ifndef PAI_SANITIZED
    if (!c->daemon) {
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
#else
    (void)c;
#endif
    return rc;
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
            return leave(&commands[i], commands[i].fn(argc - 1, argv + 1));
    fprintf(stderr, "pai: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
