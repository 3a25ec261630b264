/*
 * notify_render.c - what a notification says: the e-mail (headers and a
 * plain-text body), the webhook's JSON, its HMAC-SHA256 signature, and the
 * checks of addresses and webhook hosts.  Pure: no I/O, no clock, no state.
 *
 * Invariants: a header line holds only checked text (job names are
 * [A-Za-z0-9_.~-], addresses pass notify_email_ok), so nothing a user
 * writes can add a header; free text (a task's diagnostics) goes into the
 * body only, with control characters replaced and its length capped.
 */
#include <ctype.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/buf.h"
#include "common/util.h"
#include "server/notify.h"

#define MAX_MESSAGE  2000 /* bytes of free text in a body */
#define MAX_EMAIL    254
#define MAX_RENDERED (64 * 1024)

static const char *const channel_names[NOTIFY__CHANNELS] = {"email", "webhook"};

/* "2026-12-05T07:00:00Z" into out (size >= 21); "" for 0. */
static void iso_time(int64_t ms, char *out, size_t n)
{
    out[0] = '\0';
    if (ms <= 0)
        return;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Free text made safe for a body: no CR, other control characters but
 * newline and tab replaced, at most MAX_MESSAGE bytes (malloc'ed). */
static char *body_text(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > MAX_MESSAGE)
        n = MAX_MESSAGE;
    char *out = xmalloc(n + 4), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            continue;
        *o++ = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f ? '?' : (char)c;
    }
    if (s && strlen(s) > MAX_MESSAGE)
        memcpy(o, "...", 3), o += 3;
    *o = '\0';
    return out;
}

static const char *event_phrase(engine_note_kind_t k)
{
    switch (k) {
    case ENGINE_NOTE_RUNNING:
        return "is running";
    case ENGINE_NOTE_SUCCEEDED:
        return "succeeded";
    case ENGINE_NOTE_FAILED:
        return "failed";
    case ENGINE_NOTE_STOPPED:
        return "was stopped";
    case ENGINE_NOTE_RETRIED:
        return "is retried";
    case ENGINE_NOTE_WAITING:
        return "waits too long in the queue";
    case ENGINE_NOTE_IDLE:
        return "holds idle GPUs";
    default:
        return "changed";
    }
}

char *notify_render_subject(const notify_item_t *it)
{
    return str_printf("[pai] job %s %s", it->job, event_phrase(it->kind));
}

/* The portal's page of the job, or NULL when no portal URL is set. */
static char *job_link(const notify_item_t *it, const char *portal_url)
{
    if (!portal_url || !*portal_url)
        return NULL;
    size_t n = strlen(portal_url);
    return str_printf("%.*s/#/job/%s", (int)(n && portal_url[n - 1] == '/' ? n - 1 : n), portal_url,
                      it->job);
}

/* Append to a message's buffer.  Its cap (MAX_RENDERED) is far above what
 * a message can hold (names are bounded, free text is cut at MAX_MESSAGE),
 * so the append cannot fail. */
__attribute__((format(printf, 2, 3))) static void putf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pai_err_t rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    (void)rc;
}

/* Append text with LF turned into CRLF. */
static void put_crlf(buf_t *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n')
            putf(b, "\r\n");
        else
            putf(b, "%c", *p);
    }
}

char *notify_render_email(const notify_item_t *it, const char *from, const char *to,
                          const char *portal_url, int64_t date_ms)
{
    buf_t b;
    buf_init(&b, MAX_RENDERED);
    char date[64] = "", t1[32], t2[32];
    time_t t = (time_t)(date_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char *subject = notify_render_subject(it);
    putf(&b,
         "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
         "Message-ID: <%lld.%s.%s@pai>\r\nMIME-Version: 1.0\r\n"
         "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
         "X-PAI-Event: %s\r\nX-PAI-Job: %s\r\n\r\n",
         from, to, subject, date, (long long)it->at_ms, engine_note_name(it->kind), it->job,
         engine_note_name(it->kind), it->job);
    free(subject);
    putf(&b, "Job %s %s.\r\n\r\n", it->job, event_phrase(it->kind));
    iso_time(it->submit_ms, t1, sizeof t1);
    iso_time(it->at_ms, t2, sizeof t2);
    putf(&b, "Job:             %s\r\nEvent:           %s\r\nState:           %s\r\n", it->job,
         engine_note_name(it->kind), it->state);
    putf(&b, "Virtual cluster: %s\r\nSubmitted:       %s\r\nTime:            %s\r\n", it->vc, t1,
         t2);
    if (it->has_exit)
        putf(&b, "Exit code:       %d\r\n", it->exit_code);
    if (it->retries)
        putf(&b, "Retries:         %d\r\n", it->retries);
    if (it->since_ms) {
        iso_time(it->since_ms, t1, sizeof t1);
        putf(&b, "%s %s\r\n",
             it->kind == ENGINE_NOTE_IDLE ? "GPUs idle since:" : "Waiting since:  ", t1);
    }
    char *link = job_link(it, portal_url);
    if (link)
        putf(&b, "Portal:          %s\r\n", link);
    free(link);
    if (it->message && *it->message) {
        char *msg = body_text(it->message);
        putf(&b, "\r\n");
        put_crlf(&b, msg);
        putf(&b, "\r\n");
        free(msg);
    }
    putf(&b,
         "\r\n-- \r\nSent by pai because the job or your settings ask for \"%s\" "
         "notifications.\r\n",
         engine_note_name(it->kind));
    return buf_take(&b);
}

char *notify_render_json(const notify_item_t *it, const char *portal_url)
{
    const char *tilde = strchr(it->job, '~');
    json_t *o =
        xjson_pack("{ss ss ss ss ss ss sI sI si}", "event", engine_note_name(it->kind), "job",
                   it->job, "user", it->user, "name", tilde ? tilde + 1 : it->job, "virtualCluster",
                   it->vc, "state", it->state, "time", (json_int_t)it->at_ms, "submissionTime",
                   (json_int_t)it->submit_ms, "retries", it->retries);
    json_object_set_new(o, "exitCode", it->has_exit ? json_integer(it->exit_code) : json_null());
    if (it->since_ms)
        json_object_set_new(o, "since", json_integer(it->since_ms));
    if (it->message) {
        char *msg = body_text(it->message);
        json_object_set_new(o, "message", json_string(msg) ?: json_string("?"));
        free(msg);
    }
    char *link = job_link(it, portal_url);
    if (link)
        json_object_set_new(o, "url", json_string(link));
    free(link);
    json_object_set_new(o, "channel", json_string(channel_names[NOTIFY_HOOK]));
    char *s = xjson_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

void notify_sign(const unsigned char *key, size_t keylen, const char *body, size_t len,
                 char out[NOTIFY_SIG_LEN])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    /* the init/update/final form takes a key of any length (HMAC's rule) */
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "sha256=", 7);
    sodium_bin2hex(out + 7, NOTIFY_SIG_LEN - 7, mac, sizeof mac);
    sodium_memzero(&st, sizeof st);
}

bool notify_email_ok(const char *addr)
{
    size_t n = addr ? strlen(addr) : 0;
    const char *at = n ? strchr(addr, '@') : NULL;
    if (!at || at == addr || !at[1] || strchr(at + 1, '@') || n > MAX_EMAIL)
        return false;
    for (const char *p = addr; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f || strchr("<>()[]\\,;:\"", c))
            return false;
    }
    return true;
}

/* Does host match one allow-list entry (length n)? */
static bool entry_matches(const char *e, size_t n, const char *host, int port)
{
    char ent[256];
    if (n == 0 || n >= sizeof ent)
        return false;
    memcpy(ent, e, n);
    ent[n] = '\0';
    char *colon = strrchr(ent, ':');
    /* "host:port" (an IPv6 literal is written [addr] or [addr]:port) */
    if (colon && (ent[0] != '[' || colon[-1] == ']')) {
        int want = 0;
        if (str_to_int(colon + 1, 1, 65535, &want) != PAI_OK || want != port)
            return false;
        *colon = '\0';
    }
    size_t el = strlen(ent), hl = strlen(host);
    if (ent[0] == '[' && el >= 2 && ent[el - 1] == ']') { /* [v6] against the bare address */
        return hl == el - 2 && strncasecmp(ent + 1, host, hl) == 0;
    }
    if (ent[0] == '*' && ent[1] == '.') /* *.example.com: any subdomain, not the domain */
        return hl > el - 1 && strcasecmp(host + hl - (el - 1), ent + 1) == 0;
    return strcasecmp(ent, host) == 0;
}

bool notify_host_allowed(const char *allow, const char *host, int port)
{
    if (!allow || !host || !*host)
        return false;
    const char *p = allow;
    while (*p) {
        while (*p == ',' || isspace((unsigned char)*p))
            p++;
        size_t n = 0;
        while (p[n] && p[n] != ',' && !isspace((unsigned char)p[n]))
            n++;
        if (n && entry_matches(p, n, host, port))
            return true;
        p += n;
    }
    return false;
}
