/*
 * standby_proxy.c - a standby forwards what it does not answer itself to
 * the leader (standby.h; docs/architecture.md "What a standby serves").
 *
 * Why forward rather than answer 421 and let the client follow: the portal
 * is a page of one origin whose token lives in that origin's storage; a
 * browser sent to another server would need CORS set up between every pair
 * of servers and a second login.  Forwarding keeps the portal, curl and
 * OpenPAI clients working through any server with nothing to configure.
 *
 * Rules of a forward:
 *  - the caller's Authorization and Content-Type go with it; the leader
 *    identifies the caller and checks the permission, as for a direct call;
 *  - sent once, on a fresh connection (no reuse, so libcurl never re-sends
 *    on a connection that turned out dead): a write that may have reached
 *    the leader is never sent twice.  No connection made, nothing sent: 503
 *    NoLeaderError (retry); sent but no answer: 502 LeaderNoAnswerError
 *    (the outcome is unknown, as with any lost answer);
 *  - bounded: FORWARD_CONNECT_MS to connect, FORWARD_TIMEOUT_MS in all,
 *    FORWARD_ANSWER_MAX bytes of answer;
 *  - the answer (status, body, Content-Type, Retry-After) is passed back as
 *    it came, errors included (a 421 from a server that stopped leading
 *    meanwhile too: the header below stops it from forwarding again).
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "server/config.h"
#include "server/standby.h"

#define FORWARD_CONNECT_MS 3000L
#define FORWARD_TIMEOUT_MS 60000L
#define FORWARD_ANSWER_MAX (64u * 1024 * 1024)

typedef struct {
    char *url; /* the leader's URL + path + query */
    char *method;
    char *body;
    size_t body_len;
    char *authz, *ctype, *self;
    char *path;       /* as the leader will see it (req->path): what the proof covers */
    char client[128]; /* the client's address (STANDBY_CLIENT_HEADER) */
    /* the answer's headers we pass back */
    char ans_ctype[128], retry_after[32];
} fwd_t;

static void fwd_free(void *ud)
{
    fwd_t *f = ud;
    free(f->url);
    free(f->method);
    free(f->body);
    if (f->authz)
        sodium_memzero(f->authz, strlen(f->authz));
    free(f->authz);
    free(f->ctype);
    free(f->self);
    free(f->path);
    free(f);
}

bool standby_forwards(const http_route_t *r, const http_req_t *req)
{
    return r->perm != PERM_AGENT && !http_header(req, STANDBY_FORWARDED_HEADER);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return buf_append(ud, p, size * n) == PAI_OK ? size * n : 0;
}

/* "Name: value\r\n" into dst when the line is the header name. */
static void header_value(const char *line, size_t len, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    if (vl >= cap)
        return;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    fwd_t *f = ud;
    header_value(p, size * n, "Content-Type", f->ans_ctype, sizeof(f->ans_ctype));
    header_value(p, size * n, "Retry-After", f->retry_after, sizeof(f->retry_after));
    return size * n;
}

static struct curl_slist *fwd_headers(server_ctx_t *ctx, const fwd_t *f)
{
    struct curl_slist *h = NULL;
    char line[1024];
    if (f->authz) {
        char *a = str_printf("Authorization: %s", f->authz);
        h = curl_slist_append(h, a);
        sodium_memzero(a, strlen(a));
        free(a);
    }
    if (f->ctype) {
        snprintf(line, sizeof(line), "Content-Type: %s", f->ctype);
        h = curl_slist_append(h, line);
    }
    snprintf(line, sizeof(line), "%s: %s", STANDBY_FORWARDED_HEADER, f->self);
    h = curl_slist_append(h, line);
    /* the client's address, vouched for (standby_addr.c): the leader's
     * login throttle counts the client, not this standby */
    char proof[160];
    if (standby_proof(ctx->store, f->client, f->method, f->path, proof, sizeof(proof))) {
        snprintf(line, sizeof(line), "%s: %s", STANDBY_CLIENT_HEADER, f->client);
        h = curl_slist_append(h, line);
        snprintf(line, sizeof(line), "%s: %s", STANDBY_PROOF_HEADER, proof);
        h = curl_slist_append(h, line);
    }
    return curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
}

/* Send f once and answer with what came back (on a worker). */
static pai_err_t fwd_run(server_ctx_t *ctx, void *ud, http_resp_t *resp, pai_error_t *e)
{
    fwd_t *f = ud;
    CURL *c = curl_easy_init();
    if (!c)
        return pai_error_set(e, PAI_E_NOMEM, "cannot forward the request to the leader");
    buf_t ans;
    buf_init(&ans, FORWARD_ANSWER_MAX);
    struct curl_slist *h = fwd_headers(ctx, f);
    curl_easy_setopt(c, CURLOPT_URL, f->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L); /* never a reused connection: */
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);  /* libcurl re-sends on a dead one */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, FORWARD_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FORWARD_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &ans);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    if (strcmp(f->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, f->method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->body_len);
    }
    CURLcode cc = curl_easy_perform(c);
    long status = 0, sent = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent);
    pai_err_t rc = PAI_OK;
    if (cc != CURLE_OK && sent == 0) {
        rc = pai_error_set(e, PAI_E_NO_LEADER,
                           "the leader cannot be reached from this standby (%s %s: %s); nothing "
                           "was sent: retry shortly",
                           f->method, f->url, curl_easy_strerror(cc));
    } else if (cc != CURLE_OK || status < 100) {
        log_warn("standby: %s %s forwarded, no answer: %s", f->method, f->url,
                 curl_easy_strerror(cc));
        rc = pai_error_set(e, PAI_E_LEADER_NO_ANSWER,
                           "the leader did not answer (%s): the request may or may not have been "
                           "done; look before retrying a change",
                           curl_easy_strerror(cc));
    } else {
        if (status < 400 && strcmp(f->method, "GET") != 0 && ctx->standby)
            standby_wrote(ctx->standby); /* this standby's next reads see it */
        http_reply_text(resp, (int)status, NULL, buf_str(&ans), ans.len);
        if (*f->ans_ctype)
            http_add_header(resp, "Content-Type", f->ans_ctype);
        if (*f->retry_after)
            http_add_header(resp, "Retry-After", f->retry_after);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    buf_free(&ans);
    return rc;
}

pai_err_t standby_forward(server_ctx_t *ctx, const char *leader_url, const http_req_t *req,
                          http_resp_t *resp, pai_error_t *e)
{
    fwd_t *f = xcalloc(1, sizeof(*f));
    char *q = http_query_string(req);
    size_t ul = strlen(leader_url);
    while (ul && leader_url[ul - 1] == '/')
        ul--;
    /* the path as MHD decoded it: re-encode what a URL cannot carry raw */
    char *path = curl_easy_escape(NULL, req->path, 0);
    buf_t u;
    buf_init(&u, ul + 3 * strlen(req->path) + strlen(q) + 1);
    pai_err_t rc = buf_append(&u, leader_url, ul);
    for (const char *p = path ? path : ""; rc == PAI_OK && *p; p++) {
        /* keep the separators: %2F back to '/' */
        if (p[0] == '%' && p[1] == '2' && (p[2] == 'F' || p[2] == 'f')) {
            rc = buf_puts(&u, "/");
            p += 2;
        } else {
            rc = buf_append(&u, p, 1);
        }
    }
    if (rc == PAI_OK)
        rc = buf_puts(&u, q);
    curl_free(path);
    free(q);
    if (rc != PAI_OK) { /* cannot happen: the cap is what the URL needs */
        buf_free(&u);
        free(f);
        return pai_error_set(e, rc, "cannot forward the request to the leader");
    }
    f->url = buf_take(&u);
    f->method = xstrdup(req->method);
    f->path = xstrdup(req->path);
    http_client_addr(req, f->client, sizeof(f->client));
    f->body = xmalloc(req->body_len + 1);
    memcpy(f->body, req->body ? req->body : "", req->body_len);
    f->body[req->body_len] = '\0';
    f->body_len = req->body_len;
    const char *a = http_header(req, "Authorization");
    f->authz = a ? xstrdup(a) : NULL;
    f->ctype = req->content_type ? xstrdup(req->content_type) : NULL;
    const char *self = ctx->cfg && *ctx->cfg->advertise_url ? ctx->cfg->advertise_url : "standby";
    f->self = xstrdup(self);
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) {
        /* on a pool thread: wait on a worker */
        http_reply_offload(resp, fwd_run, fwd_free, f);
        return PAI_OK;
    }
    /* any other method runs on a write worker already (http.h): wait here */
    rc = fwd_run(ctx, f, resp, e);
    fwd_free(f);
    return rc;
}
