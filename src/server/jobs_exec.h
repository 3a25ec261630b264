/*
 * jobs_exec.h - `pai exec` through the agent (jobs_exec.c, docs/ssh.md).
 * The handlers' bodies; mod_jobs.c parses the job and checks permission.
 */
#ifndef PAI_SERVER_JOBS_EXEC_H
#define PAI_SERVER_JOBS_EXEC_H

#include <stdint.h>

#include "server/config.h"
#include "server/server.h"

#define JOBS_EXEC_MAX_CMD           (64u * 1024)
#define JOBS_EXEC_MAX_TIMEOUT_S     3600
#define JOBS_EXEC_DEFAULT_TIMEOUT_S 300

/* The bearer the server presents to a node that has no log key yet (the
 * log proxy and exec both): the agent token as auth_agent_token_read has
 * it (agent_token from the configuration, else the one auth generated into
 * <data_dir>/agent.token); NULL when neither.  The caller frees it. */
char *jobs_agent_key(const server_config_t *cfg);

/* POST .../exec: the body {"taskRoleName","taskIndex","command","timeoutSec"}. */
PAI_MUST_CHECK pai_err_t jobs_exec_start(server_ctx_t *ctx, const char *job, const http_req_t *req,
                                         http_resp_t *resp, pai_error_t *e);
/* GET .../exec/{id}?offset=N. */
PAI_MUST_CHECK pai_err_t jobs_exec_read(server_ctx_t *ctx, const char *job, const char *id,
                                        int64_t offset, http_resp_t *resp, pai_error_t *e);

#endif
