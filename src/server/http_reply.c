/*
 * http_reply.c - what handlers call (http.h): request fields (path
 * parameters, query, headers, client address), replies (JSON, text,
 * streamed, errors) and request bodies (JSON or form).  A reply replaces the
 * previous one of the same http_resp_t; http_resp_free frees what is left.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/jtext.h"
#include "common/log.h"
#include "common/util.h"
#include "server/http_int.h"

const char *http_param(const http_req_t *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->nparams; i++) {
        const char *pn = req->param_names[i] + 1; /* skip '{' */
        if (strncmp(pn, name, len) == 0 && pn[len] == '}')
            return req->param_values[i];
    }
    return NULL;
}

const char *http_query(const http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn_, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    buf_t *b = cls;
    (void)kind;
    char *k = curl_easy_escape(NULL, key, 0), *v = value ? curl_easy_escape(NULL, value, 0) : NULL;
    /* one append per argument: past the cap, the later ones are dropped whole */
    if (k && buf_printf(b, "%s%s%s%s", b->len ? "&" : "?", k, v ? "=" : "", v ? v : "") != PAI_OK)
        log_debug("http: a query argument past %u bytes dropped", HTTP_MAX_QUERY);
    curl_free(k);
    curl_free(v);
    return MHD_YES;
}

char *http_query_string(const http_req_t *req)
{
    buf_t b;
    buf_init(&b, HTTP_MAX_QUERY);
    MHD_get_connection_values(req->conn_, MHD_GET_ARGUMENT_KIND, query_arg, &b);
    char *s = xstrdup(buf_str(&b));
    buf_free(&b);
    return s;
}

const char *http_header(const http_req_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn_, MHD_HEADER_KIND, name);
}

const char *http_client_addr(const http_req_t *req, char *buf, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn_, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const void *ip = NULL;
    if (sa && sa->sa_family == AF_INET)
        ip = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        ip = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!ip || !inet_ntop(sa->sa_family, ip, buf, (socklen_t)len))
        str_copy(buf, "?", len);
    return buf;
}

/* Forget a streamed body or a deferred answer that will not be sent
 * (another reply replaces it). */
static void stream_drop(http_resp_t *resp)
{
    if (resp->stream_free)
        resp->stream_free(resp->stream_ud);
    resp->stream = NULL;
    resp->stream_ud = NULL;
    resp->stream_free = NULL;
    if (resp->defer.finish && resp->defer.free_ud)
        resp->defer.free_ud(resp->defer.ud);
    resp->defer = (http_defer_t){0};
}

void http_reply_json(http_resp_t *resp, int status, json_t *j)
{
    stream_drop(resp);
    free(resp->body);
    resp->status = status;
    resp->body = j ? jtext_dumps(j) : NULL; /* json_dumps' bytes, faster (common/jtext.h) */
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->content_type = "application/json";
    json_decref(j);
    if (!resp->body && j)
        resp->status = 500;
}

void http_reply_text(http_resp_t *resp, int status, const char *content_type, const char *text,
                     size_t len)
{
    stream_drop(resp);
    free(resp->body);
    resp->status = status;
    resp->body = xmalloc(len + 1);
    memcpy(resp->body, text, len);
    resp->body[len] = '\0';
    resp->body_len = len;
    resp->content_type = content_type;
}

void http_reply_stream(http_resp_t *resp, int status, const char *content_type, http_stream_fn read,
                       void (*free_ud)(void *ud), void *ud)
{
    stream_drop(resp);
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
    resp->status = status;
    resp->content_type = content_type;
    resp->stream = read;
    resp->stream_ud = ud;
    resp->stream_free = free_ud;
}

void http_reply_hold(http_resp_t *resp, int64_t wait_ms, http_arm_fn arm, http_finish_fn finish,
                     void (*free_ud)(void *ud), void *ud)
{
    http_resp_free(resp);
    *resp = (http_resp_t){.status = 0};
    resp->defer = (http_defer_t){
        .finish = finish, .arm = arm, .free_ud = free_ud, .ud = ud, .wait_ms = wait_ms};
}

void http_reply_offload(http_resp_t *resp, http_finish_fn fn, void (*free_ud)(void *ud), void *ud)
{
    http_reply_hold(resp, 0, NULL, fn, free_ud, ud);
}

void http_reply_err(http_resp_t *resp, const pai_error_t *e)
{
    pai_err_t code = e->code == PAI_OK ? PAI_E_INTERNAL : e->code;
    json_t *body =
        xjson_pack("{s:s, s:s}", "code", pai_err_code(code), "message",
                   e->code == PAI_OK ? "the handler failed without a reason" : pai_error_msg(e));
    const char *k;
    json_t *v;
    json_object_foreach(e->details, k, v)
    {
        if (body && strcmp(k, "code") != 0 && strcmp(k, "message") != 0)
            json_object_set(body, k, v);
    }
    http_reply_json(resp, pai_err_status(code), body);
}

void http_reply_errorf(http_resp_t *resp, pai_err_t code, const char *fmt, ...)
{
    pai_error_t e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    http_reply_err(resp, &e);
}

void http_add_header(http_resp_t *resp, const char *name, const char *value)
{
    if (resp->nheaders >= ARRAY_LEN(resp->headers))
        return;
    resp->headers[resp->nheaders][0] = xstrdup(name);
    resp->headers[resp->nheaders][1] = xstrdup(value);
    resp->nheaders++;
}

pai_err_t http_body_json(const http_req_t *req, json_t **out, pai_error_t *e)
{
    json_error_t jerr;
    *out = NULL;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        return pai_error_set(e, PAI_E_INVALID, "malformed JSON body: %s (line %d)", jerr.text,
                             jerr.line);
    if (!json_is_object(j)) {
        json_decref(j);
        return pai_error_set(e, PAI_E_INVALID, "the body must be a JSON object");
    }
    *out = j;
    return PAI_OK;
}

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    json_t *obj = cls;
    const char *prev = off ? json_string_value(json_object_get(obj, key)) : "";
    char *joined = str_printf("%s%.*s", prev ? prev : "", (int)size, data ? data : "");
    if (!joined)
        return MHD_NO;
    json_object_set_new(obj, key, json_string(joined));
    free(joined);
    return MHD_YES;
}

pai_err_t http_body_object(const http_req_t *req, json_t **out, pai_error_t *e)
{
    const char *ct = req->content_type ? req->content_type : "";
    if (!str_has_prefix(ct, "application/x-www-form-urlencoded"))
        return http_body_json(req, out, e);
    *out = NULL;
    json_t *obj = json_object();
    struct MHD_PostProcessor *pp = MHD_create_post_processor(req->conn_, 4096, form_field, obj);
    if (!pp || MHD_post_process(pp, req->body, req->body_len) != MHD_YES) {
        if (pp)
            MHD_destroy_post_processor(pp);
        json_decref(obj);
        return pai_error_set(e, PAI_E_INVALID, "malformed form body");
    }
    MHD_destroy_post_processor(pp);
    *out = obj;
    return PAI_OK;
}

void http_resp_free(http_resp_t *resp)
{
    stream_drop(resp);
    free(resp->body);
    for (size_t i = 0; i < resp->nheaders; i++) {
        free(resp->headers[i][0]);
        free(resp->headers[i][1]);
    }
}
