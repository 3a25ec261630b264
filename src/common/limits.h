/*
 * limits.h - every bound on data that crosses a trust boundary, in one place.
 * Network buffers, documents and messages are capped at creation with these.
 */
#ifndef PAI_COMMON_LIMITS_H
#define PAI_COMMON_LIMITS_H

#define PAI_MAX_HTTP_BODY     (4u * 1024 * 1024)  /* REST request body */
#define PAI_MAX_JOB_YAML      (4u * 1024 * 1024)  /* one job protocol document */
#define PAI_MAX_COMMAND       (4u * 1024 * 1024)  /* one role's rendered script */
#define PAI_MAX_CONFIG_FILE   (16u * 1024 * 1024) /* server / scheduler config file */
#define PAI_MAX_YAML_NODES    200000u             /* nodes in one YAML document */
#define PAI_MAX_YAML_DEPTH    64u                 /* nesting depth of a YAML document */
#define PAI_MAX_AGENT_MSG     (8u * 1024 * 1024)  /* one agent<->server message */
#define PAI_MAX_AGENT_TASKS   16384u              /* attempts (or acks) in one agent message */
#define PAI_MAX_AGENT_LIST    4096u               /* env vars, ports, mounts of one task */
#define PAI_MAX_ATTEMPT_ID    600u                /* job/att/role/index/att: 255+255+3*10+4 */
#define PAI_MAX_NODE_GPUS     64u                 /* GPUs of one node (a 64-bit mask) */
#define PAI_MAX_LOG_READ      (16u * 1024 * 1024) /* one log read through the API */
#define PAI_MAX_ALERTS_BODY   (16u * 1024 * 1024) /* Prometheus' answer to GET /api/v1/alerts */
#define PAI_MAX_NAME          255u                /* job, user, group, role names */
#define PAI_MAX_NODE_CRED     128u                /* a node credential ("pn1." + 64 hex) */
#define PAI_MAX_TASKS_PER_JOB 10000u
#define PAI_MAX_TASK_ROLES    256u
#define PAI_MAX_LOGIN_KEYS    16384u /* names (and addresses) the login throttle remembers */

#endif
