/* test_srvctx.h - a server context (config, store in a temp dir, metrics,
 * auth module) for the platform unit tests. */
#ifndef PAI_TESTS_SRVCTX_H
#define PAI_TESTS_SRVCTX_H

#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "server/auth_int.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/server.h"

typedef struct {
    server_ctx_t ctx;
    server_config_t *cfg;
    char dir[64];
} srvctx_t;

static inline int srvctx_open(srvctx_t *s, const char *extra_flag, const char *extra_val)
{
    str_copy(s->dir, "/tmp/pai-test-auth-XXXXXX", sizeof(s->dir));
    if (!mkdtemp(s->dir))
        return -1;
    char *argv[] = {"server",
                    "--data-dir",
                    s->dir,
                    "--admin-password",
                    "admin-pw-1",
                    "--pwhash-memlimit-kib",
                    "8192",
                    "--pwhash-opslimit",
                    "1",
                    "--log-level",
                    "error",
                    (char *)extra_flag,
                    (char *)extra_val};
    int argc = extra_flag ? 13 : 11;
    char err[512];
    if (server_config_load(argc, argv, &s->cfg, err, sizeof(err)) != PAI_OK) {
        fprintf(stderr, "  %s\n", err);
        return -1;
    }
    char *url = server_config_store_url(s->cfg);
    pai_err_t rc = store_open(url, &s->ctx.store, err, sizeof(err));
    free(url);
    if (rc != PAI_OK)
        return -1;
    s->ctx.cfg = s->cfg;
    s->ctx.metrics = metrics_new();
    return server_module_auth.init(&s->ctx) == PAI_OK ? 0 : -1;
}

static inline void srvctx_close(srvctx_t *s)
{
    if (s->ctx.auth)
        server_module_auth.fini(&s->ctx);
    store_close(s->ctx.store);
    metrics_free(s->ctx.metrics);
    server_config_free(s->cfg);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "  cleanup failed\n");
}

#endif
