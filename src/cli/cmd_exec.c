/*
 * cmd_exec.c - `pai exec NAME ROLE INDEX [--timeout S] -- CMD...`: runs CMD
 * in a running task through its node's agent (no sshd needed; docs/ssh.md,
 * "pai exec"), prints what it prints and exits with its exit code.
 *
 * 1. POST /api/v2/jobs/{job}/exec {taskRoleName, taskIndex, command,
 *    timeoutSec}: the words after `--`, joined by spaces, run by the task's
 *    /bin/sh -c (as ssh does), as the task's user, in its working dir and
 *    environment.
 * 2. GET .../exec/{id}?offset=N until "done": the output (base64) from byte
 *    N, written to stdout as it comes.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/buf.h"
#include "common/util.h"

static const cli_opt_t exec_opts[] = {
    {.name = "timeout", .arg = "SECONDS", .help = "kill the command after this long (default 300)"},
    {0},
};
static const cli_cmd_t exec_cmd = {
    .name = "exec",
    .synopsis = "NAME ROLE INDEX [--timeout SECONDS] -- COMMAND...",
    .summary = "Run a command inside a running task, through its node's agent (no sshd\n"
               "needed), as the task's user, in its working dir and environment.  Prints\n"
               "its output and exits with its exit code (124: timed out).  The owner and\n"
               "admins may, as for stopping the job.",
    .opts = exec_opts,
    .min_pos = 3,
    .max_pos = 3};

#define EXEC_POLL_MS 200

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Writes the base64 "data" of an answer to stdout. */
static bool print_data(const json_t *j)
{
    const char *b64 = json_string_value(json_object_get(j, "data"));
    if (!b64 || !*b64)
        return true;
    size_t len = strlen(b64), n = 0;
    unsigned char *bin = xmalloc(len);
    bool ok =
        sodium_base642bin(bin, len, b64, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) == 0;
    if (ok) {
        fwrite(bin, 1, n, stdout);
        fflush(stdout);
    }
    free(bin);
    return ok;
}

static int follow(const cli_ctx_t *c, const char *full, const char *id)
{
    long long offset = 0;
    for (;;) {
        char *suffix = str_printf("/exec/%s?offset=%lld", id, offset);
        char *path = cli_job_path(full, suffix);
        cli_resp_t r;
        int rc = cli_request(c, "GET", path, NULL, NULL, 0, 0, &r);
        free(path);
        free(suffix);
        if (rc != CLI_OK) {
            cli_resp_free(&r);
            return rc;
        }
        if (!print_data(r.json)) {
            fprintf(stderr, "pai exec: the server sent output that is not base64\n");
            cli_resp_free(&r);
            return CLI_USAGE;
        }
        long long next = (long long)json_integer_value(json_object_get(r.json, "offset"));
        bool done = json_is_true(json_object_get(r.json, "done"));
        int code = (int)json_integer_value(json_object_get(r.json, "exitCode"));
        cli_resp_free(&r);
        if (done)
            return code;
        if (next == offset)
            sleep_ms(EXEC_POLL_MS);
        offset = next;
    }
}

int cli_exec_main(int argc, char **argv)
{
    int own = argc, first = argc;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            own = i;
            first = i + 1;
            break;
        }
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&exec_cmd, own, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    int index = 0, timeout = 300;
    if (str_to_int(a.pos[2], 0, 1000000, &index) != PAI_OK) {
        fprintf(stderr, "pai exec: INDEX must be a task index, not '%s'\n", a.pos[2]);
        return CLI_USAGE;
    }
    if (cli_opt_int(&a, "timeout", 1, 3600, 300, &timeout) != CLI_OK)
        return CLI_USAGE;
    if (first >= argc) {
        fprintf(stderr, "pai exec: give the command after --\n");
        return CLI_USAGE;
    }
    buf_t cmd;
    buf_init(&cmd, 64u * 1024);
    for (int i = first; i < argc; i++)
        if (buf_printf(&cmd, "%s%s", i > first ? " " : "", argv[i]) != PAI_OK) {
            fprintf(stderr, "pai exec: the command is over 64 KiB\n");
            buf_free(&cmd);
            return CLI_USAGE;
        }
    cli_ctx_t c;
    char *full = NULL, *path = NULL, *body = NULL;
    cli_resp_t r = {0};
    if ((rc = cli_ctx_load(&c, true)) != CLI_OK)
        goto out;
    full = cli_job_fullname(&c, a.pos[0]);
    path = cli_job_path(full, "/exec");
    json_t *o = xjson_pack("{ss si ss si}", "taskRoleName", a.pos[1], "taskIndex", index, "command",
                           buf_str(&cmd), "timeoutSec", timeout);
    body = xjson_dumps(o, JSON_COMPACT);
    json_decref(o);
    if ((rc = cli_request(&c, "POST", path, "application/json", body, strlen(body), 0, &r)) !=
        CLI_OK)
        goto out;
    const char *id = json_string_value(json_object_get(r.json, "id"));
    if (!id) {
        fprintf(stderr, "pai exec: the server gave no exec id\n");
        rc = CLI_USAGE;
        goto out;
    }
    rc = follow(&c, full, id);
out:
    cli_resp_free(&r);
    free(body);
    free(path);
    free(full);
    buf_free(&cmd);
    cli_ctx_free(&c);
    return rc;
}
