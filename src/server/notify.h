/*
 * notify.h - notifications to a job's owner: e-mail over SMTP and webhooks
 * (an HTTP POST of JSON, optionally signed with HMAC-SHA256), for the
 * engine's events (engine.h, engine_notice_t: running, succeeded, failed,
 * stopped, retried, waiting too long, idle GPUs).  docs/operations.md,
 * "Notifications", is the operator's view.
 *
 * Design:
 *  - notify_post() is called by the engine with its lock held: it copies the
 *    event into a bounded queue (one item per channel) under the queue's own
 *    mutex, a leaf lock, and returns; it never blocks on I/O.  A full queue
 *    drops the item and counts it (pai_notify_dropped_total{reason}).
 *  - One sender thread delivers the items whose due time has come, through
 *    libcurl (SMTP with optional STARTTLS and login; HTTP(S) POST), one at a
 *    time with a timeout; a failed delivery is retried with a doubling
 *    backoff until `attempts` tries, then dropped and counted.
 *  - The owner's e-mail address is looked up at delivery (opts.email_of,
 *    outside every engine lock).
 *  - Webhooks go only to hosts on the admin's allow-list (hook_hosts; empty:
 *    webhooks are refused), checked when a job or a user's settings name
 *    one and again at delivery; redirects are not followed, only http and
 *    https are spoken, and a connection to a link-local address (cloud
 *    metadata services) is refused whatever the list says.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef PAI_SERVER_NOTIFY_H
#define PAI_SERVER_NOTIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "engine/engine.h"

typedef struct notify notify_t;

typedef enum { NOTIFY_EMAIL, NOTIFY_HOOK, NOTIFY__CHANNELS } notify_channel_t;

/* How one delivery went. */
typedef enum {
    NOTIFY_OK,
    NOTIFY_RETRY,   /* a transient failure: try again after the backoff */
    NOTIFY_GIVE_UP, /* a permanent one (refused host, 4xx, bad address): drop */
} notify_result_t;

/* One delivery in the queue: an event, copied, for one channel. */
typedef struct {
    notify_channel_t channel;
    engine_note_kind_t kind;
    char *job, *user, *vc, *state, *message; /* message may be NULL */
    char *url;                               /* NOTIFY_HOOK: where to */
    bool has_exit;
    int exit_code, retries;
    int64_t at_ms, submit_ms, since_ms;
    /* the queue's */
    int tries;      /* deliveries tried */
    int64_t due_ms; /* not before */
    bool busy;      /* being delivered */
} notify_item_t;

typedef struct {
    /* SMTP; smtp_host "" disables e-mail. */
    const char *smtp_host;
    int smtp_port;
    const char *smtp_from;
    bool smtp_starttls; /* require STARTTLS */
    const char *smtp_username, *smtp_password;
    /* Webhooks: the allow-list "host, host:port, *.suffix, ..." ("": none
     * allowed) and the HMAC-SHA256 key (NULL: requests are not signed). */
    const char *hook_hosts;
    const unsigned char *hook_secret;
    size_t hook_secret_len;
    /* The queue: at most queue_max items; a delivery is tried `attempts`
     * times, waiting retry_ms, doubling, at most retry_max_ms; each try
     * gives up after timeout_ms. */
    size_t queue_max;
    int attempts;
    int64_t retry_ms, retry_max_ms, timeout_ms;
    const char *portal_url; /* base URL for links in messages; "" none */
    /* The owner's e-mail address at delivery (malloc'ed; NULL: none). */
    char *(*email_of)(void *ud, const char *user);
    void *ud;
    /* Tests: the delivery (to: the e-mail address looked up; NULL: SMTP and
     * HTTP through libcurl), the clock
     * (NULL: the real one) and no sender thread (notify_run_due drives). */
    notify_result_t (*deliver)(void *ud, const notify_item_t *it, const char *to, char *err,
                               size_t errlen);
    int64_t (*now_ms)(void *ud);
    bool no_thread;
} notify_opts_t;

/* A notifier with opts (strings and the secret copied); starts the sender
 * thread unless opts->no_thread.  NULL when the thread cannot start. */
notify_t *notify_new(const notify_opts_t *opts);
/* Stop the sender (a delivery in progress is abandoned) and free; items
 * still queued are dropped (logged with their count). */
void notify_free(notify_t *n);

/* Queue the event's deliveries (e-mail when n->email and SMTP is set; the
 * webhook when n->webhook).  Never blocks on I/O; safe under the engine
 * lock.  Returns how many items were queued. */
int notify_post(notify_t *nt, const engine_notice_t *n);
/* Without the thread: deliver every item that is due now, once.  Returns
 * how many deliveries were tried. */
size_t notify_run_due(notify_t *nt);

typedef struct {
    size_t queued;                       /* items now in the queue */
    uint64_t sent[NOTIFY__CHANNELS];     /* delivered */
    uint64_t failures[NOTIFY__CHANNELS]; /* tries that failed */
    uint64_t dropped_full, dropped_failed, dropped_no_address;
} notify_stats_t;
void notify_stats(notify_t *nt, notify_stats_t *out);
/* The pai_notify_* families (metrics collector; ud is the notify_t). */
void notify_metrics(void *ud, buf_t *out);

/* May a job or a user's settings name this webhook URL?  http(s) only, a
 * host on the allow-list; PAI_E_INVALID with the reason otherwise. */
PAI_MUST_CHECK pai_err_t notify_webhook_check(const notify_t *nt, const char *url, pai_error_t *e);
/* Validate a user's notification settings {email: bool, webhook: URL or
 * "", on: [event names]} (the user API's `notification` field). */
PAI_MUST_CHECK pai_err_t notify_prefs_check(const notify_t *nt, const json_t *prefs,
                                            pai_error_t *e);
/* What a job asks to be told (engine ops.note_spec): extras.notify when
 * the job has one, else the owner's settings (prefs, may be NULL), plus
 * OpenPAI's extras.jobStatusChangeNotification (e-mail for each event set
 * true).  out->url is malloc'ed.  PAI_E_PROTOCOL for a malformed or
 * refused extras.notify. */
PAI_MUST_CHECK pai_err_t notify_job_spec(const notify_t *nt, const json_t *extras,
                                         const json_t *prefs, engine_note_spec_t *out,
                                         pai_error_t *e);

/* ---- the engine's ops (mod_notify.c); ud is the server_ctx_t ---- */
void notify_engine_note(void *ud, const engine_notice_t *n);
PAI_MUST_CHECK pai_err_t notify_engine_spec(void *ud, const char *user, const json_t *extras,
                                            engine_note_spec_t *out, pai_error_t *e);

/* ---- rendering (notify_render.c; pure, unit-tested) ---- */

/* "[pai] job alice~train failed" (malloc'ed). */
char *notify_render_subject(const notify_item_t *it);
/* The whole e-mail (RFC 5322 headers and a plain-text body, CRLF line ends),
 * malloc'ed.  date_ms: the Date header. */
char *notify_render_email(const notify_item_t *it, const char *from, const char *to,
                          const char *portal_url, int64_t date_ms);
/* The webhook's JSON body (compact, malloc'ed). */
char *notify_render_json(const notify_item_t *it, const char *portal_url);
/* "sha256=<64 hex>" of body under key (HMAC-SHA256, libsodium). */
#define NOTIFY_SIG_LEN (7 + 64 + 1)
void notify_sign(const unsigned char *key, size_t keylen, const char *body, size_t len,
                 char out[NOTIFY_SIG_LEN]);
/* A plain address (local@domain, no spaces, quotes, angle brackets or
 * control characters; at most 254 bytes). */
bool notify_email_ok(const char *addr);
/* Is host (and port) on the allow-list?  Entries: "host" (any port),
 * "host:port", "*.suffix" (any subdomain); case-insensitive. */
bool notify_host_allowed(const char *allow, const char *host, int port);

#endif
