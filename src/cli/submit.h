/*
 * submit.h - job-file helpers shared by `pai submit` (internal to src/cli).
 */
#ifndef PAI_CLI_SUBMIT_H
#define PAI_CLI_SUBMIT_H

#include <jansson.h>

#include "common/buf.h"
#include "common/yamltree.h"

/* Read and check a job file: YAML syntax and the top-level fields, each
 * problem printed as "FILE:LINE:COL: field: reason".  On CLI_OK, text
 * holds the file and *doc its tree (both owned by the caller, also on
 * failure: free with buf_free / ydoc_free). */
int cli_load_job(const char *path, buf_t *text, ydoc_t **doc);
/* Validate a job document with the protocol module; problems printed
 * with label as the file name.  CLI_OK or CLI_USAGE. */
int cli_check_job(const char *text, size_t len, const char *label);

#endif
