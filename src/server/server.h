/*
 * server.h - what the server's modules share (internal to src/server).
 *
 * `pai server` is a set of modules, each with init/fini and a route table,
 * listed in src/server/modules.c.  They share one server_ctx_t built by
 * server_main:
 *
 *   auth     users, groups, tokens, login/logout, identity of a request
 *   core     info, storages, /metrics and the agents' targets, OIDC answers
 *   cluster  nodes and agents (agent protocol), the scheduler, VCs, SKUs
 *   notify   notifications to job owners (e-mail, webhooks) from the engine's events
 *   jobs     job submission, queries, lifecycle, attempts, logs
 *   history  in-memory metrics history (GPU use over time) for the charts
 *   alerts   GET /api/v2/alerts: a configured Prometheus' firing alerts
 *   templates  job templates shared across teams (server/templates.h)
 *   portal   the web portal's embedded files
 */
#ifndef PAI_SERVER_SERVER_H
#define PAI_SERVER_SERVER_H

#include "common/err.h"
#include "server/http.h"
#include "store/store.h"

typedef struct server_config server_config_t; /* server/config.h */
typedef struct auth auth_t;                   /* server/auth.h */
typedef struct metrics metrics_t;             /* server/metrics.h */
typedef struct cluster cluster_t;             /* server/cluster.h */
typedef struct engine engine_t;               /* engine/engine.h */
typedef struct history history_t;             /* server/history.h */
typedef struct templates templates_t;         /* server/templates.h */
typedef struct leader leader_t;               /* server/leader.h */
typedef struct notify notify_t;               /* server/notify.h */
typedef struct standby standby_t;             /* server/standby.h */

/* Extension (platform): see server_on_quiesce(). */
typedef void (*server_quiesce_fn)(server_ctx_t *ctx);
#define SERVER_MAX_QUIESCE 8

struct server_ctx {
    const server_config_t *cfg;
    store_t *store;
    auth_t *auth;
    metrics_t *metrics;
    cluster_t *cluster;
    engine_t *engine;
    history_t *history;
    templates_t *templates;
    /* Who leads (server/leader.h).  The HTTP layer asks leader_gate()
     * before anything else of a request, so no handler runs, and no module
     * field is read, before this server leads and its modules started. */
    leader_t *leader;
    notify_t *notify;
    /* A server that does not lead yet: its view of the store for reads and
     * the forwarding of the rest (server/standby.h); NULL for a single
     * server. */
    standby_t *standby;
    server_quiesce_fn quiesce[SERVER_MAX_QUIESCE]; /* filled by server_on_quiesce() */
    size_t nquiesce;
};

/* A module whose handlers block (e.g. the agent long-poll) registers fn at
 * init.  At shutdown server_main calls every registered fn, latest first,
 * BEFORE it stops the HTTP server, which waits for every running handler:
 * fn must make blocked handlers return now (set a flag, broadcast a
 * condition).  Module fini functions run after the HTTP server stopped.
 * PAI_E_TOO_LARGE when SERVER_MAX_QUIESCE are registered already. */
PAI_MUST_CHECK pai_err_t server_on_quiesce(server_ctx_t *ctx, server_quiesce_fn fn);

typedef struct {
    const char *name;
    /* Called in table order at start-up; may be NULL. */
    pai_err_t (*init)(server_ctx_t *ctx);
    /* Called in reverse order at shutdown; may be NULL. */
    void (*fini)(server_ctx_t *ctx);
    /* Terminated by an entry with method NULL; may be NULL. */
    const http_route_t *routes;
} server_module_t;

/* modules.c: the table, in start-up order. */
extern const server_module_t *const server_modules[];

/* modules.c: the routes whose requests run in batches (http.h). */
extern const http_batch_route_t server_batch_routes[];
/* mod_cluster.c: the agent syncs queued at one moment, as one batch. */
void cluster_agent_sync_batch(server_ctx_t *ctx, http_call_t *calls, size_t n);
/* mod_jobs.c: the job submissions queued at one moment, as one batch. */
void jobs_submit_batch(server_ctx_t *ctx, http_call_t *calls, size_t n);

extern const server_module_t server_module_auth;
extern const server_module_t server_module_core;
extern const server_module_t server_module_cluster;
extern const server_module_t server_module_notify;
extern const server_module_t server_module_jobs;
extern const server_module_t server_module_history;
extern const server_module_t server_module_alerts;
extern const server_module_t server_module_templates;
extern const server_module_t server_module_portal;

#endif
