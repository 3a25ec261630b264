/*
 * fuzz_protocol.c - libFuzzer target for the job protocol parser.
 *
 * Any input: job_parse must return (no crash, leak or hang), and every
 * error must have a reason.  A valid job must also render every task's
 * commands, turn into JSON and YAML, and its YAML must parse again into a
 * valid job with the same name and roles (round trip).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "fuzz_entry.h"
#include "protocol/job.h"

static void check_errors(const job_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        if (!errs->items[i].reason || !errs->items[i].reason[0] || !errs->items[i].path)
            abort();
    char *s = job_errors_format(errs, "fuzz.yaml");
    char *m = job_errors_message(errs);
    json_t *j = job_errors_to_json(errs);
    if (!s || !m || !j)
        abort();
    free(s);
    free(m);
    json_decref(j);
}

static void check_round_trip(const job_spec_t *spec)
{
    char *yaml = NULL;
    if (job_to_yaml(spec, false, &yaml) != PAI_OK)
        abort();
    job_spec_t *again = NULL;
    job_errors_t errs;
    job_errors_init(&errs);
    if (job_parse(yaml, strlen(yaml), "round-trip", &again, &errs) != PAI_OK)
        abort();
    if (strcmp(again->name, spec->name) != 0 || again->n_roles != spec->n_roles)
        abort();
    job_spec_free(again);
    job_errors_free(&errs);
    free(yaml);
}

static void exercise(const job_spec_t *spec)
{
    for (size_t i = 0; i < spec->n_roles; i++) {
        char *out = NULL;
        if (job_render_commands(spec, spec->roles[i].name, 0, false, &out) == PAI_OK)
            free(out);
        if (job_render_commands(spec, spec->roles[i].name, 0, true, &out) == PAI_OK)
            free(out);
    }
    json_t *j = job_to_json(spec, true);
    if (!j)
        abort();
    json_decref(j);
    check_round_trip(spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    job_spec_t *spec = NULL;
    job_errors_t errs;
    job_errors_init(&errs);
    pai_err_t rc = job_parse((const char *)data, size, "fuzz.yaml", &spec, &errs);
    if (rc == PAI_OK)
        exercise(spec);
    else if (rc != PAI_E_NOMEM && errs.n == 0)
        abort(); /* a rejection must say why */
    check_errors(&errs);
    job_spec_free(spec);
    job_errors_free(&errs);
    return 0;
}
