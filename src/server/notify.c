/*
 * notify.c - the notifier's queue and its sender thread (notify.h).
 *
 * Invariants:
 *  - mu is a leaf lock: held only to add, pick or settle an item, never
 *    across a delivery, a lookup or a log line; so notify_post() under the
 *    engine lock waits for nothing but another short critical section;
 *  - the queue holds at most opts.queue_max items, those waiting for their
 *    first try and those waiting for a retry alike; an item stays in it
 *    (busy) while it is delivered, so the bound holds then too;
 *  - an item leaves the queue delivered, given up after opts.attempts tries
 *    or a permanent refusal, or at shutdown; each leaving is counted once.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/promtext.h"
#include "common/util.h"
#include "server/notify.h"
#include "server/notify_int.h"

struct notify {
    notify_opts_t o; /* its strings point at the copies below */
    char *smtp_host, *smtp_from, *smtp_username, *smtp_password, *hook_hosts, *portal_url;
    unsigned char *secret;

    pthread_mutex_t mu; /* the queue and the counters (a leaf lock) */
    pthread_cond_t cv;  /* an item was added, or stop */
    notify_item_t **q;  /* in arrival order; at most o.queue_max */
    size_t n;
    notify_stats_t st;

    pthread_t thread;
    bool started;
    atomic_bool stopping;
};

static const char *const channel_label[NOTIFY__CHANNELS] = {"email", "webhook"};

static int64_t now_ms(const notify_t *nt)
{
    return nt->o.now_ms ? nt->o.now_ms(nt->o.ud) : time_wall_ms();
}

static char *dup_or_empty(const char *s)
{
    return xstrdup(s ? s : "");
}

static void item_free(notify_item_t *it)
{
    if (!it)
        return;
    free(it->job);
    free(it->user);
    free(it->vc);
    free(it->state);
    free(it->message);
    free(it->url);
    free(it);
}

const char *notify_hook_hosts(const notify_t *nt)
{
    return nt ? nt->hook_hosts : "";
}

/* ---------------------------------------------------------------- queue */

/* Add a copy of n for channel ch (mu held); false when the queue is full. */
static bool enqueue(notify_t *nt, const engine_notice_t *n, notify_channel_t ch, int64_t now)
{
    if (nt->n >= nt->o.queue_max) {
        nt->st.dropped_full++;
        return false;
    }
    notify_item_t *it = xcalloc(1, sizeof(*it));
    *it = (notify_item_t){.channel = ch,
                          .kind = n->kind,
                          .job = xstrdup(n->job),
                          .user = str_printf("%.*s", (int)n->user_len, n->job),
                          .vc = dup_or_empty(n->vc),
                          .state = dup_or_empty(n->state),
                          .message = n->message ? xstrdup(n->message) : NULL,
                          .url = ch == NOTIFY_HOOK ? xstrdup(n->webhook) : NULL,
                          .has_exit = n->has_exit,
                          .exit_code = n->exit_code,
                          .retries = n->retries,
                          .at_ms = n->at_ms,
                          .submit_ms = n->submit_ms,
                          .since_ms = n->since_ms,
                          .due_ms = now};
    nt->q[nt->n++] = it;
    return true;
}

int notify_post(notify_t *nt, const engine_notice_t *n)
{
    if (!nt || !n)
        return 0;
    int queued = 0;
    int64_t now = now_ms(nt);
    pthread_mutex_lock(&nt->mu);
    if (n->email && *nt->smtp_host)
        queued += enqueue(nt, n, NOTIFY_EMAIL, now);
    if (n->webhook && *n->webhook)
        queued += enqueue(nt, n, NOTIFY_HOOK, now);
    nt->st.queued = nt->n;
    pthread_mutex_unlock(&nt->mu);
    if (queued)
        pthread_cond_signal(&nt->cv);
    return queued;
}

/* The due item that came first (mu held); NULL when none is due.  *next:
 * the earliest due time of the others (0: none waits). */
static notify_item_t *pick(notify_t *nt, int64_t now, int64_t *next)
{
    notify_item_t *best = NULL;
    *next = 0;
    for (size_t i = 0; i < nt->n; i++) {
        notify_item_t *it = nt->q[i];
        if (it->busy)
            continue;
        if (it->due_ms <= now) {
            if (!best)
                best = it;
        } else if (!*next || it->due_ms < *next) {
            *next = it->due_ms;
        }
    }
    return best;
}

static void remove_item(notify_t *nt, notify_item_t *it)
{
    for (size_t i = 0; i < nt->n; i++)
        if (nt->q[i] == it) {
            memmove(&nt->q[i], &nt->q[i + 1], (nt->n - i - 1) * sizeof(*nt->q));
            nt->n--;
            break;
        }
    item_free(it);
}

static int64_t backoff(const notify_t *nt, int tries)
{
    int64_t d = nt->o.retry_ms > 0 ? nt->o.retry_ms : 1000;
    for (int i = 1; i < tries && d < nt->o.retry_max_ms; i++)
        d *= 2;
    return d < nt->o.retry_max_ms ? d : nt->o.retry_max_ms;
}

/* After a try (mu held): count it, and retry, keep or drop the item. */
static void settle(notify_t *nt, notify_item_t *it, notify_result_t r, bool no_address)
{
    it->busy = false;
    it->tries++;
    if (r == NOTIFY_OK) {
        nt->st.sent[it->channel]++;
        remove_item(nt, it);
    } else if (no_address) {
        nt->st.dropped_no_address++;
        remove_item(nt, it);
    } else {
        nt->st.failures[it->channel]++;
        if (r == NOTIFY_GIVE_UP || it->tries >= nt->o.attempts || atomic_load(&nt->stopping)) {
            nt->st.dropped_failed++;
            remove_item(nt, it);
        } else {
            it->due_ms = now_ms(nt) + backoff(nt, it->tries);
        }
    }
    nt->st.queued = nt->n;
}

/* ---------------------------------------------------------------- delivery */

/* One try of it (without mu).  *no_address: an e-mail whose owner has no
 * usable address (dropped, not retried). */
static notify_result_t deliver(notify_t *nt, const notify_item_t *it, bool *no_address)
{
    char err[256] = "", *to = NULL;
    *no_address = false;
    if (it->channel == NOTIFY_EMAIL) {
        to = nt->o.email_of ? nt->o.email_of(nt->o.ud, it->user) : NULL;
        if (!to || !notify_email_ok(to)) {
            log_warn("notify: job=%s event=%s user=%s has no usable e-mail address; dropped",
                     it->job, engine_note_name(it->kind), it->user);
            free(to);
            *no_address = true;
            return NOTIFY_GIVE_UP;
        }
    }
    notify_result_t r;
    if (nt->o.deliver)
        r = nt->o.deliver(nt->o.ud, it, to, err, sizeof err);
    else if (it->channel == NOTIFY_EMAIL)
        r = notify_send_email(&nt->o, it, to, &nt->stopping, err, sizeof err);
    else
        r = notify_send_hook(&nt->o, it, &nt->stopping, err, sizeof err);
    if (r == NOTIFY_OK)
        log_info("notify: job=%s event=%s %s sent", it->job, engine_note_name(it->kind),
                 channel_label[it->channel]);
    else
        log_warn("notify: job=%s event=%s %s try %d failed%s: %s", it->job,
                 engine_note_name(it->kind), channel_label[it->channel], it->tries + 1,
                 r == NOTIFY_GIVE_UP ? " (not retried)" : "", err[0] ? err : "?");
    free(to);
    return r;
}

size_t notify_run_due(notify_t *nt)
{
    size_t tried = 0, nr = 0;
    pthread_mutex_lock(&nt->mu);
    int64_t now = now_ms(nt);
    /* the items due now, in arrival order, each tried once in this round */
    notify_item_t **round = xcalloc(nt->n + 1, sizeof(*round));
    for (size_t i = 0; i < nt->n; i++)
        if (!nt->q[i]->busy && nt->q[i]->due_ms <= now) {
            nt->q[i]->busy = true;
            round[nr++] = nt->q[i];
        }
    for (size_t i = 0; i < nr; i++) {
        pthread_mutex_unlock(&nt->mu);
        bool no_addr = false;
        notify_result_t r = deliver(nt, round[i], &no_addr);
        pthread_mutex_lock(&nt->mu);
        settle(nt, round[i], r, no_addr);
        tried++;
    }
    pthread_mutex_unlock(&nt->mu);
    free(round);
    return tried;
}

static void *sender_main(void *arg)
{
    notify_t *nt = arg;
    pthread_mutex_lock(&nt->mu);
    while (!atomic_load(&nt->stopping)) {
        int64_t now = now_ms(nt), next = 0;
        notify_item_t *it = pick(nt, now, &next);
        if (!it) {
            /* wake at the next due time, and at least every second (the
             * wall clock may jump) */
            int64_t until = next && next - now < 1000 ? next : now + 1000;
            struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                                  .tv_nsec = (long)(until % 1000) * 1000000L};
            pthread_cond_timedwait(&nt->cv, &nt->mu, &ts);
            continue;
        }
        it->busy = true;
        pthread_mutex_unlock(&nt->mu);
        bool no_addr = false;
        notify_result_t r = deliver(nt, it, &no_addr);
        pthread_mutex_lock(&nt->mu);
        settle(nt, it, r, no_addr);
    }
    pthread_mutex_unlock(&nt->mu);
    return NULL;
}

/* ---------------------------------------------------------------- life */

notify_t *notify_new(const notify_opts_t *opts)
{
    notify_t *nt = xcalloc(1, sizeof(*nt));
    nt->o = *opts;
    nt->smtp_host = dup_or_empty(opts->smtp_host);
    nt->smtp_from = dup_or_empty(opts->smtp_from);
    nt->smtp_username = dup_or_empty(opts->smtp_username);
    nt->smtp_password = dup_or_empty(opts->smtp_password);
    nt->hook_hosts = dup_or_empty(opts->hook_hosts);
    nt->portal_url = dup_or_empty(opts->portal_url);
    nt->o.smtp_host = nt->smtp_host;
    nt->o.smtp_from = nt->smtp_from;
    nt->o.smtp_username = nt->smtp_username;
    nt->o.smtp_password = nt->smtp_password;
    nt->o.hook_hosts = nt->hook_hosts;
    nt->o.portal_url = nt->portal_url;
    if (opts->hook_secret && opts->hook_secret_len) {
        nt->secret = xmalloc(opts->hook_secret_len);
        memcpy(nt->secret, opts->hook_secret, opts->hook_secret_len);
        nt->o.hook_secret = nt->secret;
    } else {
        nt->o.hook_secret = NULL;
        nt->o.hook_secret_len = 0;
    }
    if (nt->o.queue_max == 0)
        nt->o.queue_max = 1;
    if (nt->o.attempts < 1)
        nt->o.attempts = 1;
    if (nt->o.retry_max_ms < nt->o.retry_ms)
        nt->o.retry_max_ms = nt->o.retry_ms;
    if (nt->o.timeout_ms <= 0)
        nt->o.timeout_ms = 10000;
    nt->q = xcalloc(nt->o.queue_max, sizeof(*nt->q));
    atomic_init(&nt->stopping, false);
    pthread_mutex_init(&nt->mu, NULL);
    pthread_cond_init(&nt->cv, NULL);
    if (!opts->no_thread) {
        if (pthread_create(&nt->thread, NULL, sender_main, nt) != 0) {
            notify_free(nt);
            return NULL;
        }
        nt->started = true;
    }
    return nt;
}

void notify_free(notify_t *nt)
{
    if (!nt)
        return;
    pthread_mutex_lock(&nt->mu);
    atomic_store(&nt->stopping, true);
    pthread_cond_broadcast(&nt->cv);
    pthread_mutex_unlock(&nt->mu);
    if (nt->started)
        pthread_join(nt->thread, NULL);
    if (nt->n) /* lost with the process: the log says how many */
        log_warn("notify: %zu notifications still queued at shutdown are dropped", nt->n);
    for (size_t i = 0; i < nt->n; i++)
        item_free(nt->q[i]);
    free(nt->q);
    pthread_mutex_destroy(&nt->mu);
    pthread_cond_destroy(&nt->cv);
    free(nt->smtp_host);
    free(nt->smtp_from);
    free(nt->smtp_username);
    sodium_memzero(nt->smtp_password, strlen(nt->smtp_password));
    free(nt->smtp_password);
    if (nt->secret)
        sodium_memzero(nt->secret, nt->o.hook_secret_len);
    free(nt->secret);
    free(nt->hook_hosts);
    free(nt->portal_url);
    free(nt);
}

/* ---------------------------------------------------------------- metrics */

void notify_stats(notify_t *nt, notify_stats_t *out)
{
    pthread_mutex_lock(&nt->mu);
    *out = nt->st;
    out->queued = nt->n;
    pthread_mutex_unlock(&nt->mu);
}

void notify_metrics(void *ud, buf_t *out)
{
    notify_stats_t s;
    notify_stats(ud, &s);
    char lab[64];
    prom_gauge(out, "pai_notify_queue_length",
               "Notifications waiting in the queue (first tries and retries).", (double)s.queued);
    prom_family(out, "pai_notify_sent_total", "counter", "Notifications delivered, by channel.");
    for (int c = 0; c < NOTIFY__CHANNELS; c++) {
        snprintf(lab, sizeof lab, "channel=\"%s\"", channel_label[c]);
        prom_sample(out, "pai_notify_sent_total", lab, (double)s.sent[c]);
    }
    prom_family(out, "pai_notify_failures_total", "counter",
                "Delivery tries that failed (each retry counts), by channel.");
    for (int c = 0; c < NOTIFY__CHANNELS; c++) {
        snprintf(lab, sizeof lab, "channel=\"%s\"", channel_label[c]);
        prom_sample(out, "pai_notify_failures_total", lab, (double)s.failures[c]);
    }
    prom_family(out, "pai_notify_dropped_total", "counter",
                "Notifications never delivered, by reason: queue_full, failed (tries "
                "exhausted or refused), no_address (the owner has no e-mail address).");
    static const char *const reasons[] = {"queue_full", "failed", "no_address"};
    const uint64_t counts[] = {s.dropped_full, s.dropped_failed, s.dropped_no_address};
    for (size_t i = 0; i < 3; i++) {
        snprintf(lab, sizeof lab, "reason=\"%s\"", reasons[i]);
        prom_sample(out, "pai_notify_dropped_total", lab, (double)counts[i]);
    }
}
