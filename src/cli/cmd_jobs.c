/*
 * cmd_jobs.c - `pai jobs` (list) and `pai job NAME` (detail).
 *
 * jobs: GET /api/v2/jobs?username=&vc=&state=&keyword=&tagsContain=&limit=
 * job:  GET /api/v2/jobs/{user}~{job}: status, task table, the waiting
 *       reason (pai extension) while WAITING, exit diagnostics once done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/buf.h"
#include "common/util.h"

static const cli_opt_t jobs_opts[] = {
    {.name = "user", .arg = "USER", .help = "only jobs of USER"},
    {.name = "mine", .help = "only my jobs"},
    {.name = "vc", .arg = "VC", .help = "only jobs in virtual cluster VC"},
    {.name = "state",
     .arg = "STATE",
     .help = "only jobs in STATE (WAITING, RUNNING, SUCCEEDED, FAILED, STOPPED...)"},
    {.name = "keyword", .arg = "WORD", .help = "only jobs whose user, name or VC contains WORD"},
    {.name = "tag", .arg = "TAG", .help = "only jobs tagged TAG"},
    {.name = "limit", .arg = "N", .help = "at most N jobs (default 1000)"},
    {.name = "json", .help = "print the server's JSON"},
    {0},
};
static const cli_cmd_t jobs_cmd = {.name = "jobs",
                                   .synopsis =
                                       "[--user U | --mine] [--vc VC] [--state S] [--tag T]",
                                   .summary = "List jobs, newest first.",
                                   .opts = jobs_opts};

static const struct {
    const char *opt, *query;
} job_filters[] = {
    {"user", "username"},   {"vc", "vc"},           {"state", "state"},
    {"keyword", "keyword"}, {"tag", "tagsContain"}, {"limit", "limit"},
};

static char *jobs_query(const cli_args_t *a, const cli_ctx_t *c)
{
    buf_t q;
    buf_init(&q, 8192);
    pai_err_t e = buf_puts(&q, "/api/v2/jobs?order=submissionTime,DESC");
    for (size_t i = 0; i < ARRAY_LEN(job_filters) && e == PAI_OK; i++) {
        const char *v = cli_opt(a, job_filters[i].opt);
        if (!v && strcmp(job_filters[i].opt, "user") == 0 && cli_flag(a, "mine"))
            v = c->user;
        if (!v && strcmp(job_filters[i].opt, "limit") == 0)
            v = "1000";
        if (!v)
            continue;
        char *ev = cli_escape(v);
        e = buf_printf(&q, "&%s=%s", job_filters[i].query, ev);
        free(ev);
    }
    return buf_take(&q);
}

static void job_row(cli_table_t *t, const json_t *j)
{
    char full[600], gpus[32], tasks[32], retries[32], when[32];
    snprintf(full, sizeof(full), "%s~%s", cli_jstr(j, "username"), cli_jstr(j, "name"));
    cli_jfmt(j, "totalGpuNumber", gpus, sizeof(gpus));
    cli_jfmt(j, "totalTaskNumber", tasks, sizeof(tasks));
    cli_jfmt(j, "retries", retries, sizeof(retries));
    cli_fmt_time((long long)json_integer_value(json_object_get(j, "submissionTime")), when,
                 sizeof(when));
    const char *cells[] = {
        full, cli_jstr(j, "state"), cli_jstr(j, "virtualCluster"), gpus, tasks, retries, when};
    cli_table_row(t, cells);
}

int cli_jobs_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&jobs_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    cli_ctx_t c;
    cli_resp_t r = {0};
    char *q = NULL;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    q = jobs_query(&a, &c);
    rc = cli_get(&c, q, &r);
    if (rc != CLI_OK)
        goto out;
    json_t *list = json_is_array(r.json) ? r.json : json_object_get(r.json, "data");
    if (cli_flag(&a, "json")) {
        cli_print_json(list);
        goto out;
    }
    cli_table_t *t = cli_table_new("NAME|STATE|VC|GPUS|TASKS|RETRIES|SUBMITTED");
    size_t i;
    json_t *j;
    json_array_foreach(list, i, j) job_row(t, j);
    cli_table_print(t, stdout);
    cli_table_free(t);
out:
    cli_resp_free(&r);
    free(q);
    cli_ctx_free(&c);
    return rc;
}

/* ---- pai job NAME ---- */

static const cli_opt_t job_opts[] = {
    {.name = "json", .help = "print the server's JSON"},
    {0},
};
static const cli_cmd_t job_cmd = {
    .name = "job",
    .synopsis = "NAME",
    .summary =
        "Show a job: state, times, waiting reason, exit diagnostics and one line per task.\n"
        "NAME is USER~JOB or JOB (one of yours).  `pai job validate|render FILE` check a job\n"
        "file offline.",
    .opts = job_opts,
    .min_pos = 1,
    .max_pos = 1};

static void print_kv(const char *k, const char *v)
{
    if (v && *v)
        printf("%-13s %s\n", k, v);
}

static void print_time(const char *k, const json_t *st, const char *key)
{
    char when[32];
    const json_t *v = json_object_get(st, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return;
    cli_fmt_time((long long)json_integer_value(v), when, sizeof(when));
    print_kv(k, when);
}

/* The pai extension: why a job is still waiting (several spellings). */
static const char *waiting_reason(const json_t *d, const json_t *st)
{
    static const char *const keys[] = {"waitingReason", "waitReason", "pendingReason"};
    for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
        const char *s = json_string_value(json_object_get(st, keys[i]));
        if (!s)
            s = json_string_value(json_object_get(d, keys[i]));
        if (s && *s)
            return s;
    }
    return NULL;
}

static void print_exit(const json_t *st)
{
    char code[32];
    const json_t *spec = json_object_get(st, "appExitSpec");
    cli_jfmt(st, "appExitCode", code, sizeof(code));
    if (strcmp(code, "-") == 0)
        return;
    char line[512];
    snprintf(line, sizeof(line), "%s%s%s", code, json_is_object(spec) ? " " : "",
             json_is_object(spec) ? cli_jstr(spec, "phrase") : "");
    print_kv("exit code", line);
    if (json_is_object(spec))
        print_kv("exit reason", cli_jstr(spec, "reason"));
    print_kv("exit trigger", cli_jstr(st, "appExitTriggerMessage"));
    print_kv("diagnostics", cli_jstr(st, "appExitDiagnostics"));
}

static void print_status(const json_t *d, const char *full)
{
    const json_t *st = json_object_get(d, "jobStatus");
    char retries[32];
    print_kv("job", full);
    print_kv("state", cli_jstr(st, "state"));
    print_kv("vc", cli_jstr(st, "virtualCluster"));
    cli_jfmt(st, "retries", retries, sizeof(retries));
    print_kv("retries", retries);
    print_time("submitted", st, "submissionTime");
    print_time("launched", st, "launchedTime");
    print_time("completed", st, "completedTime");
    if (strcmp(cli_jstr(st, "state"), "WAITING") == 0)
        print_kv("waiting", waiting_reason(d, st));
    print_exit(st);
    const json_t *tags = json_object_get(d, "tags");
    if (json_array_size(tags) > 0) {
        char *s = json_dumps(tags, JSON_COMPACT);
        print_kv("tags", s);
        free(s);
    }
}

static void gpus_text(const json_t *t, char *out, size_t n)
{
    const json_t *g = json_object_get(t, "containerGpus");
    if (json_is_integer(g) || json_is_string(g)) {
        cli_jfmt(t, "containerGpus", out, n);
    } else if (json_is_array(g)) {
        char *s = json_dumps(g, JSON_COMPACT);
        snprintf(out, n, "%s", s ? s : "-");
        free(s);
    } else {
        snprintf(out, n, "-");
    }
}

static void task_rows(cli_table_t *tab, const char *role, const json_t *tasks)
{
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        char idx[16], exitc[32], att[16], gpus[64];
        cli_jfmt(t, "taskIndex", idx, sizeof(idx));
        cli_jfmt(t, "containerExitCode", exitc, sizeof(exitc));
        cli_jfmt(t, "attemptId", att, sizeof(att));
        gpus_text(t, gpus, sizeof(gpus));
        const char *cells[] = {role,
                               idx,
                               cli_jstr(t, "taskState"),
                               cli_jstr(t, "containerNodeName"),
                               cli_jstr(t, "containerIp"),
                               gpus,
                               exitc,
                               att};
        cli_table_row(tab, cells);
    }
}

static void print_task_diagnostics(const json_t *roles)
{
    const char *role;
    json_t *r;
    json_object_foreach((json_t *)roles, role, r)
    {
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(r, "taskStatuses"), i, t)
        {
            const char *d = cli_jstr(t, "containerExitDiagnostics");
            if (*d)
                printf("\n%s/%lld: %s\n", role,
                       (long long)json_integer_value(json_object_get(t, "taskIndex")), d);
        }
    }
}

static void print_tasks(const json_t *d)
{
    const json_t *roles = json_object_get(d, "taskRoles");
    cli_table_t *tab = cli_table_new("ROLE|INDEX|STATE|NODE|IP|GPUS|EXIT|ATTEMPT");
    const char *role;
    json_t *r;
    json_object_foreach((json_t *)roles, role, r)
        task_rows(tab, role, json_object_get(r, "taskStatuses"));
    printf("\n");
    cli_table_print(tab, stdout);
    cli_table_free(tab);
    print_task_diagnostics(roles);
}

int cli_job_get(const cli_ctx_t *c, const char *fullname, json_t **out)
{
    return cli_job_get_flags(c, fullname, 0, out);
}

int cli_job_get_flags(const cli_ctx_t *c, const char *fullname, unsigned flags, json_t **out)
{
    char *path = cli_job_path(fullname, NULL);
    cli_resp_t r;
    *out = NULL;
    int rc = cli_request(c, "GET", path, NULL, NULL, 0, flags, &r);
    if (rc == CLI_OK && !json_is_object(r.json)) {
        fprintf(stderr, "pai: the server's answer for %s is not a job\n", fullname);
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK)
        *out = json_incref(r.json);
    cli_resp_free(&r);
    free(path);
    return rc;
}

const char *cli_job_state(const json_t *detail)
{
    return cli_jstr(json_object_get(detail, "jobStatus"), "state");
}

bool cli_state_final(const char *s)
{
    return strcmp(s, "SUCCEEDED") == 0 || strcmp(s, "FAILED") == 0 || strcmp(s, "STOPPED") == 0;
}

int cli_job_main(int argc, char **argv)
{
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&job_cmd, argc, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    cli_ctx_t c;
    json_t *d = NULL;
    char *full = NULL;
    rc = cli_ctx_load(&c, true);
    if (rc != CLI_OK)
        goto out;
    full = cli_job_fullname(&c, a.pos[0]);
    rc = cli_job_get(&c, full, &d);
    if (rc != CLI_OK)
        goto out;
    if (cli_flag(&a, "json")) {
        cli_print_json(d);
    } else {
        print_status(d, full);
        print_tasks(d);
    }
out:
    json_decref(d);
    free(full);
    cli_ctx_free(&c);
    return rc;
}
