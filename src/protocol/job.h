/*
 * job.h - the OpenPAI job protocol v2: parse, validate, apply defaults, render.
 *
 * A job file (YAML, as users wrote it for OpenPAI) becomes a job_spec_t:
 * a typed, validated tree with OpenPAI's defaults applied.  Everything the
 * scheduler, the server and the agents need is read from it; nothing else
 * parses job YAML.
 *
 * Invariants of a job_spec_t returned by job_parse():
 *  - it passed every check of the protocol schema plus the stricter rules of
 *    OpenPAI's REST server (no unknown fields at the top level, in task
 *    roles, resourcePerInstance and dockerimage prerequisites; name
 *    patterns; unique names; references resolve; defaults.deployment
 *    exists);
 *  - defaults are applied: instances 1, minFailedInstances 1,
 *    minSucceededInstances = instances, shmMB 512, ports ssh=1 and http=1
 *    added when missing, virtualCluster "default", retry counts 0,
 *    gangAllocation true, jobPriorityClass "test";
 *  - every task role's dockerImage points at a dockerimage prerequisite and
 *    its data/output/script (when set) at one of the right type.
 *  - roles keep the document order of taskRoles.
 *
 * Ownership: the spec owns every string, array and json_t inside it (the
 * strings point into the parsed YAML document, which the spec keeps); all
 * of it is read-only to callers and freed by job_spec_free().  The structs
 * are visible so that callers can read fields directly; only this module
 * creates or changes them.  A spec is immutable after job_parse(), so it
 * may be shared between threads for reading.
 *
 * Secrets: `secrets` values never appear in job_to_json(spec, true),
 * job_to_yaml(spec, true, ...) or a masked rendering; only a rendering
 * with with_secrets=true (the script handed to the task) has them.
 */
#ifndef PAI_PROTOCOL_JOB_H
#define PAI_PROTOCOL_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define JOB_SECRET_MASK "******"

/* ---------------------------------------------------------------- errors */

/* One problem found in a job file. */
typedef struct {
    int line, col; /* 1-based; 0 when the problem has no position (missing field) */
    char *path;    /* field path, "taskRoles.worker.resourcePerInstance.gpu"; "" for the document */
    char *reason;  /* plain words: "expected an integer, got string" */
} job_error_t;

/* Every problem of one file, in document order.  Caller-owned; init before
 * job_parse(), free after.  At most JOB_MAX_ERRORS are kept (then one
 * "too many errors" entry). */
typedef struct {
    job_error_t *items;
    size_t n, cap;
} job_errors_t;

#define JOB_MAX_ERRORS 100

/* Bounds beyond common/limits.h (a few in real jobs; the checks that
 * compare every pair are quadratic in these). */
#define JOB_MAX_PREREQS     1024
#define JOB_MAX_DEPLOYMENTS 256

void job_errors_init(job_errors_t *errs);
void job_errors_free(job_errors_t *errs);
/* "file:line:col: field: reason\n" for each problem (malloc'ed; free()).
 * filename may be NULL ("<input>").  The field part is left out when the
 * path is empty; line:col are left out when the problem has no position. */
char *job_errors_format(const job_errors_t *errs, const char *filename);
/* [{"line":N,"column":N,"field":"a.b","message":"..."}, ...] (new reference). */
json_t *job_errors_to_json(const job_errors_t *errs);
/* One-line message for the API's 400 InvalidProtocolError body:
 * "job protocol is invalid: 3 problems: a.b (line 4, column 3): reason; ..."
 * (malloc'ed). */
char *job_errors_message(const job_errors_t *errs);

/* ----------------------------------------------------------------- types */

typedef enum {
    JOB_PREREQ_DOCKERIMAGE,
    JOB_PREREQ_SCRIPT,
    JOB_PREREQ_OUTPUT,
    JOB_PREREQ_DATA,
} job_prereq_type_t;

typedef struct {
    const char *name;
    job_prereq_type_t type;
    const char *uri;   /* dockerimage/script/output: the uri (NULL if absent);
                    data: uris[0] */
    const char **uris; /* data: every uri (n_uris >= 1); others: NULL */
    size_t n_uris;
    const char *version;     /* NULL when absent */
    const char *contributor; /* NULL when absent */
    const char *description; /* NULL when absent */
    const char *plugin;      /* script/output/data: NULL when absent */
    const char **require;    /* script/output/data: names of other prerequisites */
    size_t n_require;
    bool has_auth; /* dockerimage auth (password usually `<% $secrets.x %>`) */
    const char *auth_username, *auth_password, *auth_registryuri;
    json_t *json; /* the prerequisite as written (any field), for `$script.x` */
    int line, col;
} job_prereq_t;

/* A parameter or secret: key and value text (a scalar as written; a list or
 * map as compact JSON). */
typedef struct {
    const char *key;
    const char *value;
} job_kv_t;

typedef struct {
    job_kv_t *items;
    size_t n;
} job_kvlist_t;

typedef struct {
    const char *name; /* ^[a-zA-Z_][a-zA-Z0-9_]*$ */
    int count;        /* ports wanted with this label, >= 0 */
} job_port_t;

typedef enum {
    JOB_PRIO_CRIT,
    JOB_PRIO_PROD,
    JOB_PRIO_TEST, /* the default */
    JOB_PRIO_OPPO,
} job_priority_t;

typedef struct {
    const char *name;
    int instances;                    /* >= 1, default 1 */
    int task_retry_count;             /* >= 0, default 0 */
    int min_failed;                   /* -1 or >= 1, default 1 */
    int min_succeeded;                /* -1 or >= 1, default = instances */
    const job_prereq_t *docker_image; /* never NULL */
    const job_prereq_t *data;         /* NULL when the role selects none */
    const job_prereq_t *output;
    const job_prereq_t *script;
    const char **prerequisites; /* the role's `prerequisites` list, in order */
    size_t n_prerequisites;
    int shm_mb;        /* extraContainerOptions.shmMB, default 512 */
    bool infiniband;   /* extraContainerOptions.infiniband, default false */
    int gpu;           /* resourcePerInstance.gpu, default 0 */
    int cpu;           /* resourcePerInstance.cpu, default 1 */
    int memory_mb;     /* resourcePerInstance.memoryMB, default 100 */
    job_port_t *ports; /* in document order, then ssh and http when missing */
    size_t n_ports;
    const char **commands; /* as written, never empty */
    size_t n_commands;
    /* extras.hivedScheduler.taskRoles.<name> (all optional) */
    const char *sku_type;            /* NULL when unset */
    int sku_number;                  /* skuNum/skuNumber; 0 when unset */
    const char *pinned_cell_id;      /* NULL when unset */
    const char *affinity_group_name; /* NULL when unset */
    const char *within_one_cell;     /* withinOneCell: a cell type name, NULL when unset */
    int line, col;
} job_role_t;

typedef struct {
    const char *role;
    const char **pre; /* preCommands */
    size_t n_pre;
    const char **post; /* postCommands */
    size_t n_post;
} job_deploy_role_t;

typedef struct {
    const char *name;
    job_deploy_role_t *roles;
    size_t n_roles;
} job_deployment_t;

typedef struct {
    const char *plugin; /* "ssh", "cmd", "git", "tensorboard", "teamwise_storage", ... */
    json_t *parameters; /* object; {} when absent */
} job_plugin_t;

typedef struct {
    /* extras.hivedScheduler */
    bool has_hived;
    job_priority_t priority_class; /* default JOB_PRIO_TEST */
    bool lazy_preemption;          /* lazyPreemptionEnable, default false */
    bool gang_release;             /* gangReleaseEnable, default false */
    /* extras.gangAllocation: default true */
    bool gang_allocation;
    /* extras["com.microsoft.pai.runtimeplugin"] */
    job_plugin_t *plugins;
    size_t n_plugins;
    json_t *storages;        /* extras.storages (array) or NULL */
    json_t *notification;    /* extras.jobStatusChangeNotification (object) or NULL */
    const char *submit_from; /* extras.submitFrom or NULL */
    json_t *json;            /* the whole extras as written ({} when absent) */
} job_extras_t;

typedef struct job_spec {
    const char *name;        /* ^[a-zA-Z0-9_-]+$, at most 255 */
    int protocol_version;    /* 2 */
    const char *type;        /* "job" */
    const char *version;     /* NULL when absent; numbers kept as written */
    const char *contributor; /* NULL when absent */
    const char *description; /* NULL when absent */
    int job_retry_count;     /* >= 0, default 0 */
    job_kvlist_t parameters;
    job_kvlist_t secrets;
    job_prereq_t *prereqs;
    size_t n_prereqs;
    job_role_t *roles;
    size_t n_roles;
    job_deployment_t *deployments;
    size_t n_deployments;
    const char *virtual_cluster;        /* defaults.virtualCluster, default "default" */
    const job_deployment_t *deployment; /* defaults.deployment, or NULL */
    job_extras_t extras;
    struct job_priv *priv_; /* the parsed document and arena (internal) */
} job_spec_t;

/* ----------------------------------------------------------------- parse */

/* Parse and validate len bytes of YAML (need not be NUL-terminated).
 * filename is only used in messages (may be NULL).
 * Returns PAI_OK and a new spec in *out (free with job_spec_free), or:
 *  PAI_E_PROTOCOL  the document is not a valid job; errs has every problem;
 *  PAI_E_TOO_LARGE larger than PAI_MAX_JOB_YAML or too many YAML nodes
 *                  (errs has one entry saying so).
 * errs may be NULL.  *out is NULL on failure. */
PAI_MUST_CHECK pai_err_t job_parse(const char *yaml, size_t len, const char *filename,
                                   job_spec_t **out, job_errors_t *errs);
void job_spec_free(job_spec_t *spec);

/* ------------------------------------------------------------- rendering */

/* The final bash script of task `index` of role `role`: the selected
 * deployment's preCommands (once), the role's commands, then postCommands
 * (once), one per line, with `<% $parameters.x %>`, `<% $secrets.x %>`,
 * `<% $data.uri[0] %>`, `<% $script.anyfield %>`, `<% $output.x %>`
 * substituted.  References that do not resolve are left as written.
 * with_secrets=false puts JOB_SECRET_MASK in place of each secret (for
 * storage and display).  *out is malloc'ed (free()).
 * Returns PAI_E_NOT_FOUND for an unknown role, PAI_E_INVALID for an index
 * outside [0, instances), PAI_E_TOO_LARGE when the script would pass 4 MiB
 * or take more than a fixed amount of lookup work (hostile documents). */
PAI_MUST_CHECK pai_err_t job_render_commands(const job_spec_t *spec, const char *role, int index,
                                             bool with_secrets, char **out);

/* Render one template string in the context of a role (role may be NULL:
 * then only $parameters and $secrets resolve).  Used for docker auth
 * fields, plugin parameters, etc.  *out is malloc'ed. */
PAI_MUST_CHECK pai_err_t job_render_string(const job_spec_t *spec, const char *role,
                                           const char *text, bool with_secrets, char **out);

/* Non-fatal findings in a valid spec, appended to warnings (same shape as
 * errors): template references to $parameters, $secrets, $data, $script or
 * $output in task commands and deployment commands that do not resolve
 * (they stay as written, as OpenPAI leaves them; usually a typo).  Returns
 * how many were found. */
size_t job_lint(const job_spec_t *spec, job_errors_t *warnings);

/* The protocol as JSON with defaults applied (what the REST API returns as
 * the job config).  mask_secrets replaces each secret value with
 * JOB_SECRET_MASK.  New reference, never NULL. */
json_t *job_to_json(const job_spec_t *spec, bool mask_secrets);

/* The same as YAML (block style, keys in protocol order).  *out is
 * malloc'ed. */
PAI_MUST_CHECK pai_err_t job_to_yaml(const job_spec_t *spec, bool mask_secrets, char **out);

/* ------------------------------------------------------------- accessors */

const job_role_t *job_role_find(const job_spec_t *spec, const char *name);
const job_prereq_t *job_prereq_find(const job_spec_t *spec, job_prereq_type_t type,
                                    const char *name);
/* Number for the scheduler: crit 120, prod 100, test 10, oppo -1. */
int job_priority_value(job_priority_t p);
int job_spec_priority(const job_spec_t *spec);
/* "crit" / "prod" / "test" / "oppo". */
const char *job_priority_name(job_priority_t p);
/* Parse "crit"/"prod"/"test"/"oppo"; false when none. */
bool job_priority_parse(const char *s, job_priority_t *out);
const char *job_prereq_type_name(job_prereq_type_t t);
/* Sum of instances over roles; sum of instances*gpu over roles. */
int job_total_tasks(const job_spec_t *spec);
int job_total_gpus(const job_spec_t *spec);
/* Ports of a role with a given label (0 when absent). */
int job_role_ports(const job_role_t *role, const char *label);
/* Gang scheduling (extras.gangAllocation; default true). */
bool job_gang(const job_spec_t *spec);
/* Secret value by key (NULL when absent). */
const char *job_secret(const job_spec_t *spec, const char *key);
const char *job_parameter(const job_spec_t *spec, const char *key);

#endif
