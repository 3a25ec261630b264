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
 *  - bounded in time: FORWARD_CONNECT_MS to connect, FORWARD_TIMEOUT_MS
 *    for the leader's status line and headers, FORWARD_STALL_MS without a
 *    byte of its body;
 *  - the answer (status, body, Content-Type, Retry-After) is passed back as
 *    it came, errors included (a 421 from a server that stopped leading
 *    meanwhile too: the header below stops it from forwarding again);
 *  - bounded in memory, whatever the answer's size (a whole task log): a
 *    body that came whole with the headers is answered as it is, any other
 *    is streamed (chunked) through a curlstream (curlstream.h, shared with
 *    the task-log proxy), which pauses the transfer from the leader while
 *    the client has not taken what is buffered.  A leader that dies in the
 *    middle cuts the chunked body short (no last chunk): the client sees
 *    a broken answer, never a shorter one that looks whole.
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
#include "server/curlstream.h"
#include "server/standby.h"

#define FORWARD_CONNECT_MS 3000L
#define FORWARD_TIMEOUT_MS 60000
#define FORWARD_STALL_MS   60000

typedef struct {
    char *url; /* the leader's URL + path + query */
    char *method;
    char *body;
    size_t body_len;
    char *authz, *ctype, *self;
    char *path;       /* as the leader will see it (req->path): what the proof covers */
    char client[128]; /* the client's address (STANDBY_CLIENT_HEADER) */
} fwd_t;

/* A forward's transfer: what libcurl reads while it runs (it may outlive
 * the request's fwd_t when the answer streams). */
typedef struct {
    curlstream_t *cs;
    struct curl_slist *headers;
    char *body;
    char *what; /* "METHOD URL", for the log */
} fwd_xfer_t;

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

static void xfer_free(void *ud)
{
    fwd_xfer_t *x = ud;
    curlstream_free(x->cs);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x->what);
    free(x);
}

/* http_stream_fn of a streamed answer. */
static long xfer_read(void *ud, char *buf, size_t max)
{
    fwd_xfer_t *x = ud;
    long n = curlstream_read(x->cs, buf, max);
    if (n < 0) {
        const curlstream_info_t *in = curlstream_info(x->cs);
        log_warn("standby: %s: the leader's answer was cut (%s); the client's is too", x->what,
                 in->done ? curl_easy_strerror(in->result) : "stalled");
    }
    return n;
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

/* The transfer of f, configured; takes f's body. */
static fwd_xfer_t *xfer_new(server_ctx_t *ctx, fwd_t *f)
{
    CURL *c = curl_easy_init();
    if (!c)
        util_oom(); /* libcurl allocates with its own malloc */
    fwd_xfer_t *x = xcalloc(1, sizeof(*x));
    x->headers = fwd_headers(ctx, f);
    x->body = f->body;
    f->body = NULL;
    x->what = str_printf("%s %s", f->method, f->url);
    curl_easy_setopt(c, CURLOPT_URL, f->url);
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L); /* never a reused connection: */
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);  /* libcurl re-sends on a dead one */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)FORWARD_CONNECT_MS);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* an https:// leader: always verified, against peer_ca_file when set */
    if (ctx->cfg && ctx->cfg->peer_ca_file && *ctx->cfg->peer_ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ctx->cfg->peer_ca_file);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->headers);
    if (strcmp(f->method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(f->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, f->method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->body_len);
    }
    x->cs = curlstream_new(c, FORWARD_STALL_MS);
    return x;
}

/* Send f once and answer with what came back (on a worker). */
static pai_err_t fwd_run(server_ctx_t *ctx, void *ud, http_resp_t *resp, pai_error_t *e)
{
    fwd_t *f = ud;
    fwd_xfer_t *x = xfer_new(ctx, f);
    const curlstream_info_t *in = curlstream_info(x->cs);
    curlstream_start(x->cs);
    curlstream_wait_headers(x->cs, time_mono_ms() + FORWARD_TIMEOUT_MS);
    long sent = 0;
    curl_easy_getinfo(curlstream_easy(x->cs), CURLINFO_REQUEST_SIZE, &sent);
    if (!in->headers_done) {
        pai_err_t rc;
        const char *why = in->done ? curl_easy_strerror(in->result) : "no answer in time";
        if (in->done && sent == 0) {
            rc = pai_error_set(e, PAI_E_NO_LEADER,
                               "the leader cannot be reached from this standby (%s %s: %s); "
                               "nothing was sent: retry shortly",
                               f->method, f->url, why);
        } else {
            log_warn("standby: %s %s forwarded, no answer: %s", f->method, f->url, why);
            rc = pai_error_set(e, PAI_E_LEADER_NO_ANSWER,
                               "the leader did not answer (%s): the request may or may not "
                               "have been done; look before retrying a change",
                               why);
        }
        xfer_free(x);
        return rc;
    }
    if (in->status < 400 && strcmp(f->method, "GET") != 0 && ctx->standby)
        standby_wrote(ctx->standby); /* this standby's next reads see it */
    size_t n = 0;
    const char *whole = curlstream_whole(x->cs, &n);
    if (whole)
        http_reply_text(resp, (int)in->status, NULL, whole, n);
    if (*in->content_type)
        http_add_header(resp, "Content-Type", in->content_type);
    if (*in->retry_after)
        http_add_header(resp, "Retry-After", in->retry_after);
    if (whole)
        xfer_free(x);
    else /* the rest comes as the client takes it */
        http_reply_stream(resp, (int)in->status, NULL, xfer_read, xfer_free, x);
    return PAI_OK;
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
