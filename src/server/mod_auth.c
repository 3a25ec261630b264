/* Placeholder module "auth" until it lands; its owner replaces this file. */
#include "server/server.h"

const server_module_t server_module_auth = {"auth", NULL, NULL, NULL};
