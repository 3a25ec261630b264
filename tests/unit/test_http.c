/* test_http.c - the HTTP layer on a real socket: routing, 404/405/413,
 * permission checks before handlers, error bodies, metrics counting.  Each
 * test starts its own server (up) and stops it (down): tests run in
 * separate processes and share nothing. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "test.h"
#include "test_srvctx.h"

static srvctx_t S;
static http_server_t *H;
static char base[64];

typedef struct {
    long status;
    char body[8192];
    size_t len;
} reply_t;

static size_t sink(char *p, size_t sz, size_t n, void *ud)
{
    reply_t *r = ud;
    size_t k = sz * n;
    if (r->len + k < sizeof(r->body)) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

static reply_t req(const char *method, const char *path, const char *token, const char *body)
{
    reply_t r = {0};
    char url[512], authz[300];
    snprintf(url, sizeof(url), "%s%s", base, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (token) {
        snprintf(authz, sizeof(authz), "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, authz);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return r;
}

static char *admin_token(void)
{
    char *t = NULL;
    if (auth_token_new(S.ctx.auth, "admin", false, 3600, &t) != PAI_OK)
        return NULL;
    return t;
}

/* A server context and an HTTP server on a free loopback port; false (and
 * the test failed) when either could not start. */
static const http_limits_t lim = {.max_connections = 64, .per_addr_idle = 16, .idle_timeout_s = 30};

static bool up_with(const http_limits_t *l)
{
    pai_error_t err = PAI_ERROR_INIT;
    CHECK(srvctx_open(&S, NULL, NULL) == 0);
    CHECK(http_server_start(&S.ctx, "127.0.0.1", 0, l, &H, &err) == PAI_OK);
    CHECK(H && http_server_port(H) > 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", H ? http_server_port(H) : 0);
    return H != NULL;
}

static bool up(void)
{
    return up_with(&lim);
}

static void down(void)
{
    http_server_stop(H);
    H = NULL;
    srvctx_close(&S);
}

TEST(starts_on_a_free_port)
{
    pai_error_t err = PAI_ERROR_INIT;
    if (!up())
        return;
    http_server_t *h2 = NULL;
    CHECK(http_server_start(&S.ctx, "not-an-ip", 0, &lim, &h2, &err) == PAI_E_INVALID);
    CHECK_STR_CONTAINS(pai_error_msg(&err), "not-an-ip");
    pai_error_free(&err);
    down();
}

TEST(unknown_paths_are_no_api_and_wrong_methods_405)
{
    if (!up())
        return;
    reply_t r = req("GET", "/api/v2/none", NULL, NULL);
    CHECK_INT_EQ(r.status, 404);
    CHECK_STR_CONTAINS(r.body, "\"code\":\"NoApiError\"");
    r = req("DELETE", "/api/v2/info", NULL, NULL);
    CHECK_INT_EQ(r.status, 405);
    CHECK_STR_CONTAINS(r.body, "MethodNotAllowedError");
    r = req("GET", "//api//v2/info/", NULL, NULL);
    CHECK_INT_EQ(r.status, 200);
    down();
}

TEST(permission_is_checked_before_the_handler)
{
    if (!up())
        return;
    reply_t r = req("POST", "/api/v2/users", NULL, "{\"username\":\"x1\",\"password\":\"123456\"}");
    CHECK_INT_EQ(r.status, 401);
    CHECK_STR_CONTAINS(r.body, "UnauthorizedUserError");
    CHECK(!auth_user_exists(&S.ctx, "x1"));
    char *t = admin_token();
    r = req("POST", "/api/v2/users", t, "{\"username\":\"x1\",\"password\":\"123456\"}");
    CHECK_INT_EQ(r.status, 201);
    char *ut = NULL;
    CHECK(auth_token_new(S.ctx.auth, "x1", false, 3600, &ut) == PAI_OK);
    r = req("POST", "/api/v2/users", ut, "{\"username\":\"x2\",\"password\":\"123456\"}");
    CHECK_INT_EQ(r.status, 403);
    CHECK(!auth_user_exists(&S.ctx, "x2"));
    r = req("GET", "/api/v2/users/x1", ut, NULL); /* {user} param reaches the handler */
    CHECK_INT_EQ(r.status, 200);
    CHECK_STR_CONTAINS(r.body, "\"username\":\"x1\"");
    free(ut);
    free(t);
    down();
}

TEST(error_reply_has_the_table_status_code_and_details)
{
    http_resp_t resp = {0};
    pai_error_t e = PAI_ERROR_INIT;
    pai_error_set(&e, PAI_E_PROTOCOL, "2 problems");
    /* details add fields; they never replace code or message */
    pai_error_details(&e, xjson_pack("{s:[i,i], s:s}", "errors", 1, 2, "code", "Other"));
    http_reply_err(&resp, &e);
    CHECK_INT_EQ(resp.status, 400);
    json_t *b = json_loads(resp.body ? resp.body : "", 0, NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(b, "code")), "InvalidProtocolError");
    CHECK_STR_EQ(json_string_value(json_object_get(b, "message")), "2 problems");
    CHECK_INT_EQ(json_array_size(json_object_get(b, "errors")), 2);
    json_decref(b);
    free(resp.body);
    pai_error_free(&e);
    /* a code that shares its OpenPAI name with another row keeps its own status */
    http_resp_t r2 = {0};
    pai_error_set(&e, PAI_E_NO_VC_SUBMIT, PAI_MSG_NO_VC, "x");
    http_reply_err(&r2, &e);
    CHECK_INT_EQ(r2.status, 400);
    CHECK_STR_CONTAINS(r2.body, "\"NoVirtualClusterError\"");
    CHECK_STR_CONTAINS(r2.body, "Virtual cluster x is not found.");
    free(r2.body);
}

TEST(token_refusals_use_openpai_texts)
{
    if (!up())
        return;
    reply_t r = req("GET", "/api/v2/users", NULL, NULL);
    CHECK_INT_EQ(r.status, 401);
    CHECK_STR_CONTAINS(r.body, "Guest is not allowed to do this operation.");
    r = req("GET", "/api/v2/users", "nope.nope", NULL);
    CHECK_INT_EQ(r.status, 401);
    CHECK_STR_CONTAINS(r.body, "Your token is invalid.");
    char *ut = NULL;
    auth_t *a = S.ctx.auth;
    CHECK(auth_token_new(a, "admin", true, 0, &ut) == PAI_OK); /* an application token */
    r = req("GET", "/api/v2/users", ut, NULL);
    CHECK_INT_EQ(r.status, 403);
    CHECK_STR_CONTAINS(r.body, "Applications are not allowed to do this operation.");
    free(ut);
    down();
}

TEST(body_over_the_limit_is_413)
{
    if (!up())
        return;
    char *t = admin_token();
    size_t n = PAI_MAX_HTTP_BODY + 10;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    reply_t r = req("POST", "/api/v2/users", t, big);
    CHECK_INT_EQ(r.status, 413);
    CHECK_STR_CONTAINS(r.body, "RequestEntityTooLargeError");
    free(big);
    free(t);
    down();
}

TEST(requests_are_counted_for_metrics)
{
    if (!up())
        return;
    req("GET", "/api/v2/info", NULL, NULL);
    req("GET", "/api/v2/none", NULL, NULL);
    req("POST", "/api/v2/users", NULL, "{}");
    buf_t b;
    buf_init(&b, 1 << 20);
    metrics_collect(S.ctx.metrics, &b);
    CHECK_STR_CONTAINS(buf_str(&b), "pai_api_requests_total{method=\"GET\",route=\"/api/v2/"
                                    "info\",status=\"200\"} 1");
    CHECK_STR_CONTAINS(buf_str(&b), "route=\"unmatched\",status=\"404\"} 1");
    CHECK_STR_CONTAINS(buf_str(&b), "pai_api_request_duration_seconds_count{method=\"POST\","
                                    "route=\"/api/v2/users\"}");
    buf_free(&b);
    down();
}

/* The value of the sample `series` (name and labels) in the server's
 * /metrics text; -1 when absent. */
static double metric(const char *series)
{
    buf_t b;
    buf_init(&b, 1 << 20);
    metrics_collect(S.ctx.metrics, &b);
    size_t n = strlen(series);
    double v = -1;
    for (const char *p = buf_str(&b); p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    buf_free(&b);
    return v;
}

/* Wait until the sample series is at least want (5 s at most). */
static double metric_at_least(const char *series, double want)
{
    double v = metric(series);
    for (int i = 0; i < 500 && v < want; i++) {
        usleep(10000);
        v = metric(series);
    }
    return v;
}

/* A silent TCP connection to the server (fd, or -1). */
static int silent_conn(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)http_server_port(H))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* What admission costs is exported beside what it decides: three silent
 * connections from one address under a bound of two idle ones per address
 * evict the oldest, found by looking at that one connection alone
 * (connlimit's `examined`: pai_http_connections_examined_total). */
TEST(admission_examined_connections_are_counted_for_metrics)
{
    static const http_limits_t two = {
        .max_connections = 64, .per_addr_idle = 2, .idle_timeout_s = 30};
    if (!up_with(&two))
        return;
    const char *idle = "pai_http_connections{state=\"idle\"}";
    CHECK_INT_EQ(metric("pai_http_connections_examined_total"), 0);
    int fds[3];
    for (int i = 0; i < 2; i++) { /* one at a time: each tracked before the next comes */
        fds[i] = silent_conn();
        CHECK(fds[i] >= 0);
        CHECK_INT_EQ(metric_at_least(idle, i + 1), i + 1);
    }
    CHECK_INT_EQ(metric("pai_http_connections_examined_total"), 0); /* under the bound */
    fds[2] = silent_conn();
    CHECK(fds[2] >= 0);
    CHECK_INT_EQ(metric_at_least("pai_http_connections_evicted_total", 1), 1);
    CHECK_INT_EQ(metric("pai_http_connections_examined_total"), 1);
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    down();
}

TEST(stops_cleanly)
{
    if (!up())
        return;
    reply_t r = req("GET", "/api/v2/info", NULL, NULL);
    CHECK_INT_EQ(r.status, 200);
    down();
    r = req("GET", "/api/v2/info", NULL, NULL);
    CHECK_INT_EQ(r.status, 0);
}

RUN_TESTS(starts_on_a_free_port, unknown_paths_are_no_api_and_wrong_methods_405,
          permission_is_checked_before_the_handler,
          error_reply_has_the_table_status_code_and_details, token_refusals_use_openpai_texts,
          body_over_the_limit_is_413, requests_are_counted_for_metrics,
          admission_examined_connections_are_counted_for_metrics, stops_cleanly)
