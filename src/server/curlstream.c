/*
 * curlstream.c - one libcurl transfer read as a pull stream (see
 * curlstream.h for the life cycle).
 *
 * Design: the calling thread drives a libcurl multi handle of one transfer
 * itself; there is no other thread and no lock.
 *  - on_header watches the status lines, the headers the callers need and
 *    the blank line that ends the final answer's headers;
 *  - on_body appends the body's bytes to buf (CURLSTREAM_BUF); when they
 *    do not fit it returns CURL_WRITEFUNC_PAUSE: libcurl keeps that block
 *    (at most CURL_MAX_WRITE_SIZE) and stops reading the socket, so TCP
 *    holds the peer back until the reader has taken what is buffered;
 *  - curlstream_read hands out buffered bytes; when none are left it
 *    resumes a paused transfer and runs it (curl_multi_perform /
 *    curl_multi_poll) until bytes come, the transfer ends or it stalls.
 * Invariant: off + len <= CURLSTREAM_BUF, and the transfer is paused only
 * while buf cannot take the block libcurl offered.
 */
#include "server/curlstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

struct curlstream {
    CURLM *multi;
    CURL *easy;
    int stall_ms;
    curlstream_info_t info;
    bool paused;     /* on_body asked libcurl to pause */
    size_t off, len; /* the buffered bytes: buf[off, off + len) */
    char buf[CURLSTREAM_BUF];
};

/* ---- libcurl callbacks ---------------------------------------------------- */

/* "Name: value\r\n" (len bytes) into dst when the line is that header;
 * a value that does not fit leaves dst as it was. */
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

/* One header line (not NUL-terminated). */
static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    curlstream_t *cs = ud;
    curlstream_info_t *in = &cs->info;
    size_t len = size * n;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new answer (after a 1xx, the final) */
        char line[64];
        size_t k = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
        memcpy(line, data, k);
        line[k] = '\0';
        const char *sp = strchr(line, ' ');
        in->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        in->content_type[0] = in->retry_after[0] = '\0';
    } else if (len && (data[0] == '\r' || data[0] == '\n')) {
        in->headers_done = in->status >= 200;
    } else {
        header_value(data, len, "Content-Type", in->content_type, sizeof(in->content_type));
        header_value(data, len, "Retry-After", in->retry_after, sizeof(in->retry_after));
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    curlstream_t *cs = ud;
    size_t len = size * n;
    if (len > sizeof(cs->buf))
        return 0; /* more than libcurl ever hands at once: fail the transfer */
    if (len > sizeof(cs->buf) - cs->len) {
        cs->paused = true;
        return CURL_WRITEFUNC_PAUSE; /* offered again once resumed */
    }
    if (cs->off + cs->len + len > sizeof(cs->buf)) {
        memmove(cs->buf, cs->buf + cs->off, cs->len);
        cs->off = 0;
    }
    memcpy(cs->buf + cs->off + cs->len, data, len);
    cs->len += len;
    return len;
}

/* ---- running the transfer --------------------------------------------------- */

/* Run the transfer once, then wait up to wait_ms for its socket. */
static void pump(curlstream_t *cs, int wait_ms)
{
    int running = 0, queued;
    if (curl_multi_perform(cs->multi, &running) != CURLM_OK) {
        cs->info.done = true;
        cs->info.result = CURLE_FAILED_INIT;
        return;
    }
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(cs->multi, &queued)) != NULL)
        if (msg->msg == CURLMSG_DONE) {
            cs->info.done = true;
            cs->info.result = msg->data.result;
        }
    if (!cs->info.done && cs->len == 0 && wait_ms > 0)
        curl_multi_poll(cs->multi, NULL, 0, wait_ms, NULL);
}

curlstream_t *curlstream_new(CURL *easy, int stall_ms)
{
    curlstream_t *cs = xcalloc(1, sizeof(*cs));
    cs->multi = curl_multi_init();
    if (!cs->multi || !easy)
        util_oom(); /* libcurl allocates with its own malloc */
    cs->easy = easy;
    cs->stall_ms = stall_ms;
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, cs);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, cs);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    return cs;
}

void curlstream_start(curlstream_t *cs)
{
    curl_multi_remove_handle(cs->multi, cs->easy);
    memset(&cs->info, 0, sizeof(cs->info));
    cs->info.result = CURLE_OK;
    cs->paused = false;
    cs->off = cs->len = 0;
    curl_multi_add_handle(cs->multi, cs->easy);
}

void curlstream_wait_headers(curlstream_t *cs, int64_t deadline_ms)
{
    while (!cs->info.headers_done && !cs->info.done && time_mono_ms() < deadline_ms)
        pump(cs, 100);
}

const curlstream_info_t *curlstream_info(const curlstream_t *cs)
{
    return &cs->info;
}

CURL *curlstream_easy(curlstream_t *cs)
{
    return cs->easy;
}

const char *curlstream_whole(const curlstream_t *cs, size_t *len)
{
    if (!cs->info.done || cs->info.result != CURLE_OK || cs->paused)
        return NULL;
    *len = cs->len;
    return cs->buf + cs->off;
}

long curlstream_read(void *ud, char *out, size_t max)
{
    curlstream_t *cs = ud;
    int64_t since = time_mono_ms();
    while (cs->len == 0) {
        if (cs->info.done)
            return cs->info.result == CURLE_OK ? 0 : -1;
        if (cs->paused) {
            cs->paused = false;
            curl_easy_pause(cs->easy, CURLPAUSE_CONT); /* may call on_body at once */
            continue;
        }
        pump(cs, 200);
        if (cs->len == 0 && time_mono_ms() - since > cs->stall_ms)
            return -1;
    }
    size_t n = cs->len < max ? cs->len : max;
    memcpy(out, cs->buf + cs->off, n);
    cs->off += n;
    cs->len -= n;
    if (cs->len == 0)
        cs->off = 0;
    return (long)n;
}

void curlstream_free(void *ud)
{
    curlstream_t *cs = ud;
    if (!cs)
        return;
    curl_multi_remove_handle(cs->multi, cs->easy);
    curl_easy_cleanup(cs->easy);
    curl_multi_cleanup(cs->multi);
    free(cs);
}
