/*
 * cmd_jobctl.c - commands that act on one job: stop, delete, tag, wait.
 *
 * stop:   PUT    /api/v2/jobs/{u}~{j}/executionType {"value":"STOP"}
 * delete: DELETE /api/v2/jobs/{u}~{j}           (pai: finished jobs only)
 * tag:    PUT | DELETE /api/v2/jobs/{u}~{j}/tag {"value": TAG}
 * wait:   polls GET /api/v2/jobs/{u}~{j} until the job is final.
 *         Exit status: 0 SUCCEEDED, 1 FAILED, 3 STOPPED, 2 error,
 *         124 --timeout reached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/util.h"

enum { WAIT_STOPPED = 3, WAIT_TIMEOUT = 124 };
#define WAIT_UNREACHABLE_MS 60000 /* how long `pai wait` rides out a server restart */

static const cli_opt_t name_only_opts[] = {
    {.name = "json", .help = "print {\"job\", \"message\"} as JSON"},
    {0},
};
static const cli_cmd_t stop_cmd = {.name = "stop",
                                   .synopsis = "NAME",
                                   .summary =
                                       "Stop a job: its tasks are killed and it ends STOPPED.",
                                   .opts = name_only_opts,
                                   .min_pos = 1,
                                   .max_pos = 1};
static const cli_cmd_t delete_cmd = {
    .name = "delete",
    .synopsis = "NAME",
    .summary = "Delete a finished job and its records (stop it first if it runs).",
    .opts = name_only_opts,
    .min_pos = 1,
    .max_pos = 1};

static const cli_opt_t tag_opts[] = {
    {.name = "remove", .help = "remove the tag instead of adding it"},
    {.name = "json", .help = "print {\"job\", \"message\"} as JSON"},
    {0},
};
static const cli_cmd_t tag_cmd = {.name = "tag",
                                  .synopsis = "NAME TAG [--remove]",
                                  .summary = "Add a tag to a job, or remove one.",
                                  .opts = tag_opts,
                                  .min_pos = 2,
                                  .max_pos = 2};

static const cli_opt_t wait_opts[] = {
    {.name = "timeout",
     .arg = "SECONDS",
     .help = "give up after SECONDS (exit 124); default: wait forever"},
    {.name = "interval",
     .arg = "SECONDS",
     .help = "poll at most every SECONDS (default 1; starts at 0.1 s)"},
    {.name = "quiet", .help = "no progress lines"},
    {.name = "json", .help = "print the final job detail as JSON instead of a summary line"},
    {0},
};
static const cli_cmd_t wait_cmd = {
    .name = "wait",
    .synopsis = "NAME [--timeout SECONDS]",
    .summary = "Wait until a job finishes and exit with its result: 0 SUCCEEDED, 1 FAILED,\n"
               "3 STOPPED, 124 timeout, 2 other errors.  Shows progress on stderr.  Rides out\n"
               "a server restart of up to 60 s.",
    .opts = wait_opts,
    .min_pos = 1,
    .max_pos = 1};

/* One line for people, or {"job", "message"} for scripts. */
static void done_line(const cli_args_t *a, const char *full, const char *text, const json_t *ans)
{
    if (!cli_flag(a, "json")) {
        printf("%s %s\n", text, full);
        return;
    }
    json_t *o = xjson_pack("{s:s, s:s?}", "job", full, "message", cli_jstr(ans, "message"));
    cli_print_json(o);
    json_decref(o);
}

static int simple_call(const cli_cmd_t *cmd, int argc, char **argv, const char *method,
                       const char *suffix, const char *body, const char *done_msg)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    cli_ctx_t c;
    char *full = NULL, *path = NULL;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    full = cli_job_fullname(&c, a.pos[0]);
    path = cli_job_path(full, suffix);
    cli_resp_t r;
    rc = cli_request(&c, method, path, body ? "application/json" : NULL, body,
                     body ? strlen(body) : 0, 0, &r);
    if (rc == CLI_OK)
        done_line(&a, full, done_msg, r.json);
    cli_resp_free(&r);
out:
    free(path);
    free(full);
    cli_ctx_free(&c);
    return rc;
}

int cli_stop_main(int argc, char **argv)
{
    return simple_call(&stop_cmd, argc, argv, "PUT", "/executionType", "{\"value\":\"STOP\"}",
                       "stopping");
}

int cli_delete_main(int argc, char **argv)
{
    return simple_call(&delete_cmd, argc, argv, "DELETE", NULL, NULL, "deleted");
}

int cli_tag_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&tag_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    cli_ctx_t c;
    char *full = NULL, *path = NULL, *body = NULL;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    bool remove = cli_flag(&a, "remove");
    full = cli_job_fullname(&c, a.pos[0]);
    path = cli_job_path(full, "/tag");
    json_t *o = xjson_pack("{s:s}", "value", a.pos[1]);
    body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    cli_resp_t r;
    rc = cli_request(&c, remove ? "DELETE" : "PUT", path, "application/json", body, strlen(body), 0,
                     &r);
    if (rc == CLI_OK && cli_flag(&a, "json")) {
        done_line(&a, full, "", r.json);
    } else if (rc == CLI_OK) {
        printf("%s tag %s %s %s\n", remove ? "removed" : "added", a.pos[1], remove ? "from" : "to",
               full);
    }
    cli_resp_free(&r);
out:
    free(body);
    free(path);
    free(full);
    cli_ctx_free(&c);
    return rc;
}

/* "RUNNING (2/4 tasks running)" from a job detail. */
static void wait_text(const json_t *d, const char *full, long secs, char *out, size_t n)
{
    int total = 0, running = 0;
    const char *role;
    json_t *r;
    json_object_foreach(json_object_get(d, "taskRoles"), role, r)
    {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(r, "taskStatuses"), i, t)
        {
            total++;
            running += strcmp(cli_jstr(t, "taskState"), "RUNNING") == 0;
        }
    }
    const json_t *st = json_object_get(d, "jobStatus");
    const char *state = cli_jstr(st, "state");
    const char *why = json_string_value(json_object_get(st, "waitingReason"));
    if (strcmp(state, "WAITING") == 0 && why && *why)
        snprintf(out, n, "%s: WAITING (%s) %lds", full, why, secs);
    else if (total > 0 && !cli_state_final(state))
        snprintf(out, n, "%s: %s (%d/%d tasks running) %lds", full, state, running, total, secs);
    else
        snprintf(out, n, "%s: %s %lds", full, state, secs);
}

static int wait_result(const json_t *d, const char *full, bool json)
{
    const char *state = cli_job_state(d);
    const json_t *st = json_object_get(d, "jobStatus");
    if (json) {
        cli_print_json(d);
    } else {
        printf("%s %s", full, state);
        if (json_is_integer(json_object_get(st, "appExitCode")))
            printf(" (exit code %lld)",
                   (long long)json_integer_value(json_object_get(st, "appExitCode")));
        printf("\n");
    }
    if (strcmp(state, "SUCCEEDED") == 0)
        return CLI_OK;
    if (strcmp(state, "STOPPED") == 0)
        return WAIT_STOPPED;
    const char *diag = cli_jstr(st, "appExitDiagnostics");
    if (*diag)
        fprintf(stderr, "%s\n", diag);
    return CLI_FAIL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int wait_loop(const cli_ctx_t *c, const char *full, int timeout, int interval, bool quiet,
                     bool json)
{
    cli_progress_t p;
    cli_progress_init(&p);
    int64_t t0 = time_mono_ms();
    /* Poll fast first (short jobs end within a second), then back off. */
    long pause_ms = 100;
    bool seen = false;      /* the server answered at least once */
    int64_t lost_since = 0; /* the last time it answered */
    for (;;) {
        json_t *d = NULL;
        int rc = cli_job_get_flags(c, full, seen ? CLI_QUIET_DOWN : 0, &d);
        if (rc == CLI_USAGE && seen && time_mono_ms() - lost_since < WAIT_UNREACHABLE_MS) {
            /* It answered before: ride out a restart (quietly), then give up. */
            if (!quiet)
                cli_progress_update(&p, "server unreachable; retrying");
            sleep_ms(1000);
            continue;
        }
        if (rc != CLI_OK) {
            if (!quiet)
                cli_progress_done(&p);
            if (rc == CLI_USAGE && seen)
                fprintf(stderr, "pai wait: the server has been unreachable for %ds\n",
                        WAIT_UNREACHABLE_MS / 1000);
            return CLI_USAGE;
        }
        seen = true;
        lost_since = time_mono_ms(); /* the last time it answered */
        long secs = (long)((time_mono_ms() - t0) / 1000);
        char text[256];
        wait_text(d, full, secs, text, sizeof(text));
        if (!quiet)
            cli_progress_update(&p, text);
        if (cli_state_final(cli_job_state(d))) {
            if (!quiet)
                cli_progress_done(&p);
            rc = wait_result(d, full, json);
            json_decref(d);
            return rc;
        }
        json_decref(d);
        if (timeout > 0 && secs >= timeout) {
            if (!quiet)
                cli_progress_done(&p);
            fprintf(stderr, "pai wait: %s still not finished after %ds\n", full, timeout);
            return WAIT_TIMEOUT;
        }
        sleep_ms(pause_ms);
        pause_ms = pause_ms * 2 > interval * 1000L ? interval * 1000L : pause_ms * 2;
    }
}

int cli_wait_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&wait_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    int timeout, interval;
    if (cli_opt_int(&a, "timeout", 0, 1000000000, 0, &timeout) != CLI_OK ||
        cli_opt_int(&a, "interval", 1, 3600, 1, &interval) != CLI_OK)
        return CLI_USAGE;
    cli_ctx_t c;
    char *full = NULL;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    full = cli_job_fullname(&c, a.pos[0]);
    rc = wait_loop(&c, full, timeout, interval, cli_flag(&a, "quiet"), cli_flag(&a, "json"));
out:
    free(full);
    cli_ctx_free(&c);
    return rc;
}
