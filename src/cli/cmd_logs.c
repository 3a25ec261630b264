/*
 * cmd_logs.c - `pai logs NAME [--role R] [--index I] [--stderr|--all] [--follow]`.
 *
 * 1. GET the job detail: the current job attempt, the role (default: the
 *    first one) and the task's current attempt.
 * 2. GET .../attempts/{a}/taskRoles/{r}/taskIndex/{i}/attempts/{t}/logs:
 *    a list of {name, uri} locations (stdout, stderr, all).
 * 3. GET the chosen uri (absolute, or relative to the server) and print it.
 * With --follow, repeat 3 every second and print only what is new, until
 * the job is final and one last read found nothing new.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"

static const cli_opt_t logs_opts[] = {
    {.name = "role", .arg = "ROLE", .help = "task role (default: the job's first role)"},
    {.name = "index", .arg = "I", .help = "task index (default 0)"},
    {.name = "stderr", .help = "print stderr instead of stdout"},
    {.name = "all", .help = "print stdout and stderr interleaved"},
    {.name = "follow", .help = "keep printing new output until the job ends"},
    {0},
};
static const cli_cmd_t logs_cmd = {
    .name = "logs",
    .synopsis = "NAME [--role ROLE] [--index I] [--stderr | --all] [--follow]",
    .summary = "Print the output of one task of a job (its current attempt).",
    .opts = logs_opts,
    .min_pos = 1,
    .max_pos = 1};

enum { LOGS_NO_TASK_YET = 10 };

typedef struct {
    const char *role_opt;
    int index;
    const char *stream;
    char role[256];
    long long job_attempt, task_attempt;
    bool final;
} logs_target_t;

static const json_t *find_task(const json_t *roles, const char *role, int index)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(json_object_get(roles, role), "taskStatuses"), i, t)
    {
        if (json_integer_value(json_object_get(t, "taskIndex")) == index)
            return t;
    }
    return NULL;
}

/* Fill role/attempts from the job detail.  Prints why when it cannot. */
static int resolve(const cli_ctx_t *c, const char *full, logs_target_t *tg, bool quiet)
{
    json_t *d = NULL;
    int rc = cli_job_get(c, full, &d);
    if (rc != CLI_OK)
        return rc;
    const json_t *roles = json_object_get(d, "taskRoles");
    const char *role = tg->role_opt;
    if (!role) {
        void *it = json_object_iter((json_t *)roles);
        role = it ? json_object_iter_key(it) : "";
    }
    str_copy(tg->role, role, sizeof(tg->role));
    tg->final = cli_state_final(cli_job_state(d));
    const json_t *st = json_object_get(d, "jobStatus");
    tg->job_attempt = (long long)json_integer_value(json_object_get(st, "attemptId"));
    const json_t *t = find_task(roles, tg->role, tg->index);
    if (!json_object_get(roles, tg->role)) {
        fprintf(stderr, "pai logs: %s has no task role '%s'\n", full, tg->role);
        rc = CLI_FAIL;
    } else if (!t) {
        if (!quiet)
            fprintf(stderr, "pai logs: %s has no task %s/%d (yet)\n", full, tg->role, tg->index);
        rc = LOGS_NO_TASK_YET;
    } else {
        tg->task_attempt = (long long)json_integer_value(json_object_get(t, "attemptId"));
    }
    json_decref(d);
    return rc;
}

/* The location uri of the wanted stream (malloc'ed), NULL when none. */
static char *log_uri(const cli_ctx_t *c, const char *full, const logs_target_t *tg, bool quiet)
{
    char *er = cli_escape(tg->role);
    char *suffix = str_printf("/attempts/%lld/taskRoles/%s/taskIndex/%d/attempts/%lld/logs",
                              tg->job_attempt, er, tg->index, tg->task_attempt);
    char *path = cli_job_path(full, suffix);
    cli_resp_t r;
    char *uri = NULL;
    if (cli_request(c, "GET", path, NULL, NULL, 0, quiet ? CLI_QUIET_404 : 0, &r) == CLI_OK) {
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(r.json, "locations"), i, l)
        {
            if (strcmp(cli_jstr(l, "name"), tg->stream) == 0)
                uri = xstrdup(cli_jstr(l, "uri"));
        }
        if (!uri && !quiet)
            fprintf(stderr, "pai logs: the server lists no %s log for this task\n", tg->stream);
    }
    cli_resp_free(&r);
    free(path);
    free(suffix);
    free(er);
    return uri;
}

/* Print the log from byte *done on; returns CLI_OK when it was read. */
static int print_from(const cli_ctx_t *c, const char *uri, size_t *done, bool quiet)
{
    cli_resp_t r;
    int rc = cli_request(c, "GET", uri, NULL, NULL, 0, quiet ? CLI_QUIET_404 : 0, &r);
    if (rc == CLI_OK) {
        if (r.body.len < *done) /* rotated or restarted: print it all again */
            *done = 0;
        if (r.body.len > *done) {
            fwrite(r.body.data + *done, 1, r.body.len - *done, stdout);
            fflush(stdout);
        }
        *done = r.body.len;
    }
    cli_resp_free(&r);
    return rc;
}

static void sleep_1s(void)
{
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
}

static int follow(const cli_ctx_t *c, const char *full, logs_target_t *tg)
{
    size_t done = 0;
    long long attempt = -1;
    for (;;) {
        int rc = resolve(c, full, tg, true);
        if (rc == CLI_OK) {
            if (tg->task_attempt != attempt) {
                done = 0; /* a retry: a new attempt has a new log */
                attempt = tg->task_attempt;
            }
            char *uri = log_uri(c, full, tg, true);
            if (uri)
                print_from(c, uri, &done, true);
            free(uri);
        } else if (rc != LOGS_NO_TASK_YET) {
            return rc;
        }
        if (tg->final)
            return CLI_OK;
        sleep_1s();
    }
}

int cli_logs_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&logs_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    logs_target_t tg = {0};
    tg.role_opt = cli_opt(&a, "role");
    tg.stream = cli_flag(&a, "stderr") ? "stderr" : cli_flag(&a, "all") ? "all" : "stdout";
    if (cli_opt_int(&a, "index", 0, 1000000, 0, &tg.index) != CLI_OK)
        return CLI_USAGE;
    cli_ctx_t c;
    char *full = NULL, *uri = NULL;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    full = cli_job_fullname(&c, a.pos[0]);
    if (cli_flag(&a, "follow")) {
        rc = follow(&c, full, &tg);
        goto out;
    }
    rc = resolve(&c, full, &tg, false);
    if (rc != CLI_OK) {
        rc = rc == LOGS_NO_TASK_YET ? CLI_FAIL : rc;
        goto out;
    }
    uri = log_uri(&c, full, &tg, false);
    size_t from = 0;
    rc = uri ? print_from(&c, uri, &from, false) : CLI_FAIL;
out:
    free(uri);
    free(full);
    cli_ctx_free(&c);
    return rc;
}
