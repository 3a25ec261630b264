/*
 * portal.c - the server module that serves the web portal.
 *
 * The portal is a single-page app (web/) embedded in the binary (assets.h).
 * `/` answers index.html; every other file lives under /portal/ (the app
 * routes with the URL fragment, /#/jobs, so the server never needs to know
 * the app's pages).  Anyone may fetch these files (PERM_ANON): they hold no
 * data, the app calls the REST API with the user's token.
 *
 * Caching: every answer carries a strong ETag and "Cache-Control: no-cache",
 * so browsers keep the files but revalidate; a matching If-None-Match gets an
 * empty 304.  HTML pages also get a strict Content-Security-Policy (no inline
 * script, nothing from other origins).
 */
#include <stdio.h>
#include <string.h>

#include "portal/assets.h"
#include "server/server.h"

#define PORTAL_PREFIX "/portal/"

static const char portal_csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                                 "img-src 'self' data:; connect-src 'self'; "
                                 "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

static pai_err_t portal_serve(const http_req_t *req, http_resp_t *resp, const char *path,
                              pai_error_t *e)
{
    const portal_asset_t *a = portal_asset_find(path);
    if (!a)
        return pai_error_set(e, PAI_E_NOT_FOUND, "no such portal file: %s", path);
    const char *type = portal_content_type(a->path);
    if (portal_etag_matches(http_header(req, "If-None-Match"), a->etag))
        http_reply_text(resp, 304, type, "", 0);
    else
        http_reply_text(resp, 200, type, (const char *)a->data, a->len);
    http_add_header(resp, "ETag", a->etag);
    http_add_header(resp, "Cache-Control", "no-cache");
    http_add_header(resp, "X-Content-Type-Options", "nosniff");
    if (strcmp(type, "text/html; charset=utf-8") == 0) {
        http_add_header(resp, "Content-Security-Policy", portal_csp);
        http_add_header(resp, "Referrer-Policy", "no-referrer");
    }
    return PAI_OK;
}

static pai_err_t portal_index(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                              pai_error_t *e)
{
    (void)ctx;
    return portal_serve(req, resp, "/index.html", e);
}

static pai_err_t portal_file(server_ctx_t *ctx, const http_req_t *req, http_resp_t *resp,
                             pai_error_t *e)
{
    (void)ctx;
    const char *rest = http_param(req, "*");
    char path[512];
    if (!rest)
        rest = "";
    while (*rest == '/')
        rest++;
    if ((size_t)snprintf(path, sizeof path, "/%s", rest) >= sizeof path)
        return pai_error_set(e, PAI_E_NOT_FOUND, "no such portal file");
    return portal_serve(req, resp, path, e);
}

static const http_route_t portal_routes[] = {
    {"GET", "/", portal_index, PERM_ANON},
    {"GET", PORTAL_PREFIX "*", portal_file, PERM_ANON},
    {NULL, NULL, NULL, PERM_ANON},
};

const server_module_t server_module_portal = {"portal", NULL, NULL, portal_routes};
