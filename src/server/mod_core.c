/* Placeholder module "core" until it lands; its owner replaces this file. */
#include "server/server.h"

const server_module_t server_module_core = {"core", NULL, NULL, NULL};
