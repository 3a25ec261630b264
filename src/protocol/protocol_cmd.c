/*
 * protocol_cmd.c - `pai job validate FILE...` and `pai job render FILE`.
 *
 * validate: every file is parsed and checked; problems are printed as
 * "file:line:col: field: reason" on stderr; exit 0 only when all are valid.
 * render: the spec with defaults applied (YAML, or JSON with --json;
 * secrets masked), then each task's rendered commands (or only those of
 * --role R --index I).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "protocol/job.h"

/* Read and parse one file ("-" is stdin).  Prints problems; NULL when
 * invalid. */
static job_spec_t *load(const char *path)
{
    buf_t b;
    job_errors_t errs;
    job_spec_t *spec = NULL;
    buf_init(&b, PAI_MAX_JOB_YAML);
    job_errors_init(&errs);
    pai_err_t rc =
        strcmp(path, "-") == 0 ? buf_read_file(&b, "/dev/stdin") : buf_read_file(&b, path);
    if (rc == PAI_E_TOO_LARGE) {
        struct stat st;
        long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
        fprintf(stderr, "%s: the document is %lld bytes; the limit is %u bytes\n", path, size,
                PAI_MAX_JOB_YAML);
    } else if (rc != PAI_OK) {
        fprintf(stderr, "%s: cannot read: %s\n", path, pai_err_msg(rc));
    } else if ((rc = job_parse(buf_str(&b), b.len, path, &spec, &errs)) != PAI_OK) {
        char *msg = job_errors_format(&errs, path);
        fputs(msg && msg[0] ? msg : "", stderr);
        if (!errs.n)
            fprintf(stderr, "%s: %s\n", path, pai_err_msg(rc));
        free(msg);
    }
    job_errors_free(&errs);
    buf_free(&b);
    return spec;
}

/* Lint findings go to stderr as "file:line:col: field: warning: ..."; they
 * do not make the file invalid. */
static void print_warnings(const job_spec_t *spec, const char *path)
{
    job_errors_t w;
    job_errors_init(&w);
    if (job_lint(spec, &w)) {
        for (size_t i = 0; i < w.n; i++) {
            char *r = str_printf("warning: %s", w.items[i].reason);
            free(w.items[i].reason);
            w.items[i].reason = r;
        }
        char *msg = job_errors_format(&w, path);
        fputs(msg, stderr);
        free(msg);
    }
    job_errors_free(&w);
}

int job_validate_main(int argc, char **argv)
{
    bool quiet = false;
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: pai job validate [-q] FILE...\n"
                   "Check OpenPAI protocol-v2 job files; exit 0 only when all are valid.\n");
            return 0;
        }
        files++;
        job_spec_t *spec = load(argv[i]);
        if (!spec) {
            bad++;
            continue;
        }
        print_warnings(spec, argv[i]);
        if (!quiet)
            printf("%s: ok: job %s, %zu task role%s, %d task%s, %d GPU%s\n", argv[i], spec->name,
                   spec->n_roles, spec->n_roles == 1 ? "" : "s", job_total_tasks(spec),
                   job_total_tasks(spec) == 1 ? "" : "s", job_total_gpus(spec),
                   job_total_gpus(spec) == 1 ? "" : "s");
        job_spec_free(spec);
    }
    if (!files) {
        fprintf(stderr, "usage: pai job validate [-q] FILE...\n");
        return 2;
    }
    return bad ? 1 : 0;
}

typedef struct {
    const char *file, *role;
    int index;
    bool json, role_given, index_given;
} render_opts_t;

static int render_usage(void)
{
    fprintf(stderr, "usage: pai job render FILE [--role R [--index I]] [--json]\n");
    return 2;
}

static int parse_render_args(int argc, char **argv, render_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--role") == 0 || strcmp(a, "-r") == 0) && i + 1 < argc) {
            o->role = argv[++i];
            o->role_given = true;
        } else if ((strcmp(a, "--index") == 0 || strcmp(a, "-i") == 0) && i + 1 < argc) {
            if (str_to_int(argv[++i], 0, PAI_MAX_TASKS_PER_JOB, &o->index) != PAI_OK) {
                fprintf(stderr, "pai job render: bad --index '%s'\n", argv[i]);
                return 2;
            }
            o->index_given = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (a[0] == '-' && a[1] && !o->file) {
            return render_usage();
        } else if (!o->file) {
            o->file = a;
        } else {
            return render_usage();
        }
    }
    return o->file ? 0 : render_usage();
}

static int print_task(const job_spec_t *spec, const job_role_t *r, int index, json_t *tasks)
{
    char *script = NULL;
    pai_err_t rc = job_render_commands(spec, r->name, index, false, &script);
    if (rc != PAI_OK) {
        const char *why = rc == PAI_E_INVALID     ? "no such index"
                          : rc == PAI_E_TOO_LARGE ? "the rendered script passes the limits (4 MiB, "
                                                    "or too many template lookups)"
                                                  : pai_err_msg(rc);
        fprintf(stderr, "pai job render: task %s/%d: %s\n", r->name, index, why);
        return 1;
    }
    if (tasks) {
        json_object_set_new(tasks, r->name, json_string(script));
    } else {
        printf("# task %s/%d: commands (secrets masked)\n%s", r->name, index, script);
    }
    free(script);
    return 0;
}

static int print_render(const job_spec_t *spec, const render_opts_t *o)
{
    json_t *tasks = o->json ? json_object() : NULL;
    int rc = 0;
    if (o->role_given && !job_role_find(spec, o->role)) {
        fprintf(stderr, "pai job render: no task role '%s'\n", o->role);
        json_decref(tasks);
        return 1;
    }
    if (!o->json) {
        char *yaml = NULL;
        if (job_to_yaml(spec, true, &yaml) != PAI_OK) {
            fprintf(stderr, "pai job render: cannot render the spec\n");
            return 1;
        }
        printf("# job spec, defaults applied (secrets masked)\n%s", yaml);
        free(yaml);
    }
    for (size_t i = 0; i < spec->n_roles && rc == 0; i++)
        if (!o->role_given || strcmp(spec->roles[i].name, o->role) == 0)
            rc = print_task(spec, &spec->roles[i], o->index, tasks);
    if (tasks && rc == 0) {
        json_t *out = xjson_pack("{s:o, s:o}", "spec", job_to_json(spec, true), "commands", tasks);
        char *s = json_dumps(out, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(out);
    } else {
        json_decref(tasks);
    }
    return rc;
}

int job_render_main(int argc, char **argv)
{
    render_opts_t o = {0};
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: pai job render FILE [--role R [--index I]] [--json]\n"
               "Print the job with defaults applied and each task's rendered commands\n"
               "(secrets masked).\n");
        return 0;
    }
    int rc = parse_render_args(argc, argv, &o);
    if (rc)
        return rc;
    job_spec_t *spec = load(o.file);
    if (!spec)
        return 1;
    rc = print_render(spec, &o);
    job_spec_free(spec);
    return rc;
}
