/*
 * validate.c - the local checks `pai submit` runs before it sends a file,
 * and the YAML -> JSON conversion used when --param / --vc / --name change
 * the document.
 *
 * The validation is the protocol module's job_parse(), the same code the
 * server runs, so a broken file is refused before any network traffic
 * with every problem named as file:line:col: field: reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/submit.h"
#include "common/limits.h"
#include "common/util.h"
#include "common/yamltree.h"
#include "protocol/job.h"

static const char *const required_fields[] = {"protocolVersion", "name", "type", "taskRoles"};

static int check_root(const char *path, const ynode_t *root)
{
    if (!root || root->kind != YNODE_MAP) {
        fprintf(stderr, "%s:%d:%d: the job must be a YAML mapping (protocolVersion, name, ...)\n",
                path, root ? root->line : 1, root ? root->col : 1);
        return CLI_USAGE;
    }
    int rc = CLI_OK;
    for (size_t i = 0; i < ARRAY_LEN(required_fields); i++) {
        if (!ynode_get(root, required_fields[i])) {
            fprintf(stderr, "%s:%d:%d: %s: required field is missing\n", path, root->line,
                    root->col, required_fields[i]);
            rc = CLI_USAGE;
        }
    }
    const ynode_t *name = ynode_get(root, "name");
    if (name && (name->kind != YNODE_SCALAR || !str_is_name(name->str))) {
        fprintf(stderr, "%s:%d:%d: name: must be letters, digits, '-' or '_'\n", path, name->line,
                name->col);
        rc = CLI_USAGE;
    }
    const ynode_t *roles = ynode_get(root, "taskRoles");
    if (roles && (roles->kind != YNODE_MAP || roles->n == 0)) {
        fprintf(stderr, "%s:%d:%d: taskRoles: must be a non-empty mapping of role names\n", path,
                roles->line, roles->col);
        rc = CLI_USAGE;
    }
    return rc;
}

int cli_check_job(const char *text, size_t len, const char *label)
{
    job_errors_t errs;
    job_errors_init(&errs);
    job_spec_t *spec = NULL;
    pai_err_t e = job_parse(text, len, label, &spec, &errs);
    if (e != PAI_OK) {
        char *msg = job_errors_format(&errs, label);
        fprintf(stderr, "%s", msg && *msg ? msg : "invalid job\n");
        free(msg);
    }
    job_spec_free(spec);
    job_errors_free(&errs);
    return e == PAI_OK ? CLI_OK : CLI_USAGE;
}

int cli_load_job(const char *path, buf_t *text, ydoc_t **doc)
{
    buf_init(text, PAI_MAX_JOB_YAML);
    *doc = NULL;
    pai_err_t e = buf_read_file(text, path);
    if (e != PAI_OK) {
        fprintf(stderr, "pai submit: cannot read %s: %s\n", path,
                e == PAI_E_TOO_LARGE ? "file too large" : "no such file or not readable");
        return CLI_USAGE;
    }
    /* The protocol module names every problem: file:line:col: field: reason. */
    int rc = cli_check_job(buf_str(text), text->len, path);
    if (rc != CLI_OK)
        return rc;
    yerr_t yerr;
    if (ydoc_parse(buf_str(text), text->len, doc, &yerr) != PAI_OK) {
        fprintf(stderr, "%s:%d:%d: invalid YAML: %s\n", path, yerr.line, yerr.col, yerr.msg);
        return CLI_USAGE;
    }
    return check_root(path, ydoc_root(*doc));
}
