/*
 * sshplug.h - OpenPAI's ssh runtime plugin at submission (sshplug.c,
 * docs/ssh.md).
 */
#ifndef PAI_ENGINE_SSHPLUG_H
#define PAI_ENGINE_SSHPLUG_H

#include <jansson.h>

#include "common/err.h"
#include "engine/lifecycle.h"
#include "protocol/job.h"

/* When spec asks for the ssh plugin: gives job (its roles rendered) the
 * sshd preamble and an "ssh" port in every role, and sets *record to the
 * "jobssh" record (compact JSON, keys included: never shown but to the
 * owner; and "user", the login name: the job's owner).  profile_keys: the user's extension.sshKeys
 * ([{value}], may be NULL).  Without the plugin: PAI_OK and *record NULL.  A bad key or a script
 * over PAI_MAX_COMMAND: PAI_E_PROTOCOL with the field named in e. */
PAI_MUST_CHECK pai_err_t sshplug_apply(const job_spec_t *spec, lc_job_t *job, const char *user,
                                       const json_t *profile_keys, char **record, pai_error_t *e);

#endif
