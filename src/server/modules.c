/* modules.c - the server's modules, in start-up order (see server.h). */
#include "server/server.h"

#include <stddef.h>

const server_module_t *const server_modules[] = {
    &server_module_auth,    &server_module_core,
    &server_module_cluster, &server_module_notify,
    &server_module_jobs,    &server_module_history,
    &server_module_alerts,  &server_module_templates,
    &server_module_portal,  NULL,
};

const http_batch_route_t server_batch_routes[] = {
    {"POST", "/api/v1/agent/sync", cluster_agent_sync_batch},
    {"POST", "/api/v2/jobs", jobs_submit_batch},
    {NULL, NULL, NULL},
};
