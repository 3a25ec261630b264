/*
 * jobs_storage.h - a job's storages (extras.storages) resolved into the
 * mounts the agent applies (docs/configuration.md "Storages").
 */
#ifndef PAI_SERVER_JOBS_STORAGE_H
#define PAI_SERVER_JOBS_STORAGE_H

#include <jansson.h>

#include "common/err.h"

/* The engine's ops.mounts (engine/engine.h); ud is the server_ctx_t.  Each
 * storage named in storages must exist (else PAI_E_NO_STORAGE), be usable by
 * user (else PAI_E_FORBIDDEN) and have data.hostPath (else PAI_E_PROTOCOL).
 * storages NULL: the user's default storages that have a hostPath. */
pai_err_t jobs_storage_mounts(void *ud, const char *user, const json_t *storages, json_t **mounts,
                              pai_error_t *e);

#endif
