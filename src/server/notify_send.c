/*
 * notify_send.c - the notifier's two transports, both through libcurl:
 * SMTP (optionally STARTTLS required, optionally a login) and an HTTP(S)
 * POST of JSON to a webhook, signed when a secret is configured.
 *
 * SSRF guards of the webhook (docs/security.md): the URL's host must be on
 * the allow-list (checked again here: a stored job may predate the list);
 * only http and https are spoken; redirects are not followed; and the
 * socket callback refuses to connect to a link-local address (169.254/16,
 * fe80::/10: cloud metadata services) whatever the list says.  A reply's
 * body is read and thrown away, at most RESPONSE_MAX bytes of it.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/util.h"
#include "server/notify_int.h"

#define RESPONSE_MAX (64 * 1024)

typedef struct {
    const char *data;
    size_t len, off;
} upload_t;

static size_t read_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    upload_t *u = ud;
    size_t n = size * nmemb, left = u->len - u->off;
    if (n > left)
        n = left;
    memcpy(ptr, u->data + u->off, n);
    u->off += n;
    return n;
}

static size_t discard_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    size_t *got = ud, n = size * nmemb;
    *got += n;
    return *got > RESPONSE_MAX ? 0 : n; /* 0 ends the transfer */
}

/* Abandon the transfer when the notifier stops. */
static int progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load((const atomic_bool *)ud) ? 1 : 0;
}

static void common_opts(CURL *c, const notify_opts_t *o, const atomic_bool *stop)
{
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop);
}

/* ---------------------------------------------------------------- SMTP */

notify_result_t notify_send_email(const notify_opts_t *o, const notify_item_t *it, const char *to,
                                  const atomic_bool *stop, char *err, size_t errlen)
{
    char *msg = notify_render_email(it, o->smtp_from, to, o->portal_url, time_wall_ms());
    char *url = strchr(o->smtp_host, ':') ? str_printf("smtp://[%s]:%d", o->smtp_host, o->smtp_port)
                                          : str_printf("smtp://%s:%d", o->smtp_host, o->smtp_port);
    char *from = str_printf("<%s>", o->smtp_from), *rcpt_to = str_printf("<%s>", to);
    struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_to);
    upload_t up = {.data = msg, .len = strlen(msg)};
    notify_result_t r = NOTIFY_RETRY;
    CURL *c = curl_easy_init();
    if (!c || !rcpt) {
        snprintf(err, errlen, "libcurl: cannot start a transfer");
        goto out;
    }
    common_opts(c, o, stop);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp");
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
    if (o->smtp_starttls)
        curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (o->smtp_username && *o->smtp_username) {
        curl_easy_setopt(c, CURLOPT_USERNAME, o->smtp_username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, o->smtp_password ? o->smtp_password : "");
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK) {
        r = NOTIFY_OK;
    } else {
        /* 5xx: the server refuses for good (unknown mailbox...); the rest
         * (connection, 4xx, timeouts) may pass later */
        r = code >= 500 && code < 600 ? NOTIFY_GIVE_UP : NOTIFY_RETRY;
        snprintf(err, errlen, "smtp %s: %s (reply %ld)", o->smtp_host, curl_easy_strerror(rc),
                 code);
    }
out:
    curl_easy_cleanup(c);
    curl_slist_free_all(rcpt);
    free(rcpt_to);
    free(from);
    free(url);
    free(msg);
    return r;
}

/* ---------------------------------------------------------------- webhook */

static bool link_local(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
        return (a >> 16) == 0xA9FE; /* 169.254.0.0/16 */
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) /* ::ffff:169.254.x.y */
            return b[12] == 169 && b[13] == 254;
        return b[0] == 0xfe && (b[1] & 0xc0) == 0x80; /* fe80::/10 */
    }
    return false;
}

/* Open the socket libcurl asks for, unless it would reach a link-local
 * address. */
static curl_socket_t open_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    bool *refused = ud;
    (void)purpose;
    if (link_local(&addr->addr)) {
        *refused = true;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

static struct curl_slist *hook_headers(const notify_opts_t *o, const notify_item_t *it,
                                       const char *body)
{
    struct curl_slist *h = NULL;
    char line[160];
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: pai-notify/1");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    snprintf(line, sizeof line, "X-PAI-Event: %s", engine_note_name(it->kind));
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "X-PAI-Delivery: %.80s.%s.%lld", it->job,
             engine_note_name(it->kind), (long long)it->at_ms);
    h = curl_slist_append(h, line);
    if (o->hook_secret) {
        char sig[NOTIFY_SIG_LEN];
        notify_sign(o->hook_secret, o->hook_secret_len, body, strlen(body), sig);
        snprintf(line, sizeof line, "X-PAI-Signature-256: %s", sig);
        h = curl_slist_append(h, line);
    }
    return h;
}

/* Is the webhook still allowed (the list may have changed since the job
 * was stored)?  The host into host (malloc'ed) for messages. */
static bool hook_allowed(const notify_opts_t *o, const char *url, char **host)
{
    char *scheme = NULL;
    int port = 0;
    bool ok = notify_url_parts(url, &scheme, host, &port) == PAI_OK &&
              (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
              notify_host_allowed(o->hook_hosts, *host, port);
    free(scheme);
    return ok;
}

notify_result_t notify_send_hook(const notify_opts_t *o, const notify_item_t *it,
                                 const atomic_bool *stop, char *err, size_t errlen)
{
    char *host = NULL, *body = NULL;
    struct curl_slist *hdr = NULL;
    notify_result_t r = NOTIFY_GIVE_UP;
    CURL *c = NULL;
    if (!hook_allowed(o, it->url, &host)) {
        snprintf(err, errlen, "webhook host %s is not on the allow-list (notify_webhook_hosts)",
                 host ? host : "?");
        goto out;
    }
    body = notify_render_json(it, o->portal_url);
    hdr = hook_headers(o, it, body);
    size_t got = 0;
    bool refused = false;
    r = NOTIFY_RETRY;
    if (!(c = curl_easy_init()) || !hdr) {
        snprintf(err, errlen, "libcurl: cannot start a transfer");
        goto out;
    }
    common_opts(c, o, stop);
    curl_easy_setopt(c, CURLOPT_URL, it->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &refused);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &got);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (refused) {
        r = NOTIFY_GIVE_UP;
        snprintf(err, errlen, "webhook host %s resolves to a link-local address: refused", host);
    } else if (code >= 200 && code < 300) {
        r = NOTIFY_OK;
    } else if (code) {
        /* the receiver said no: 4xx for good, except timeouts and throttling */
        r = code >= 400 && code < 500 && code != 408 && code != 429 ? NOTIFY_GIVE_UP : NOTIFY_RETRY;
        snprintf(err, errlen, "webhook host %s answered %ld", host, code);
    } else {
        snprintf(err, errlen, "webhook host %s: %s", host, curl_easy_strerror(rc));
    }
out:
    curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    free(body);
    free(host);
    return r;
}
