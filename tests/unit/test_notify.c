/* test_notify.c - notifications (src/server/notify.h): the e-mail and the
 * webhook body as rendered, the signature, the checks of addresses,
 * webhook hosts, a job's extras.notify and a user's settings, and the
 * queue: its bound, retries with backoff on a fake clock, giving up, and
 * the sender thread delivering. */
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/notify.h"
#include "test.h"

static notify_item_t item(engine_note_kind_t k, notify_channel_t ch)
{
    return (notify_item_t){.channel = ch,
                           .kind = k,
                           .job = "alice~train",
                           .user = "alice",
                           .vc = "default",
                           .state = "FAILED",
                           .message = "exit 1\r\nTraceback\x01 here",
                           .url = "http://hooks.example/x",
                           .has_exit = true,
                           .exit_code = 1,
                           .at_ms = 1764918000000LL, /* 2025-12-05T07:00:00Z */
                           .submit_ms = 1764917940000LL};
}

/* Every line ends with CRLF: no bare CR or LF. */
static bool crlf_only(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\n' && (p == s || p[-1] != '\r'))
            return false;
        if (*p == '\r' && p[1] != '\n')
            return false;
    }
    return true;
}

TEST(email_has_the_headers_the_facts_and_crlf_lines)
{
    notify_item_t it = item(ENGINE_NOTE_FAILED, NOTIFY_EMAIL);
    char *m = notify_render_email(&it, "pai@cluster.example", "alice@example.com",
                                  "https://pai.example/", it.at_ms);
    CHECK(strstr(m, "From: pai@cluster.example\r\n") == m);
    CHECK(strstr(m, "\r\nTo: alice@example.com\r\n") != NULL);
    CHECK(strstr(m, "\r\nSubject: [pai] job alice~train failed\r\n") != NULL);
    CHECK(strstr(m, "\r\nDate: Fri, 05 Dec 2025 07:00:00 +0000\r\n") != NULL);
    CHECK(strstr(m, "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
    CHECK(strstr(m, "Exit code:       1\r\n") != NULL);
    CHECK(strstr(m, "Submitted:       2025-12-05T06:59:00Z\r\n") != NULL);
    CHECK(strstr(m, "Portal:          https://pai.example/#/job/alice~train\r\n") != NULL);
    /* the free text: CR dropped, control characters replaced, in the body */
    CHECK(strstr(m, "exit 1\r\nTraceback? here\r\n") != NULL);
    CHECK(strstr(strstr(m, "\r\n\r\n"), "Traceback") != NULL);
    CHECK(crlf_only(m));
    free(m);
}

TEST(email_subjects_and_since_lines_per_event)
{
    notify_item_t it = item(ENGINE_NOTE_IDLE, NOTIFY_EMAIL);
    it.since_ms = it.at_ms - 1800000;
    it.has_exit = false;
    it.message = NULL;
    char *s = notify_render_subject(&it);
    CHECK_STR_EQ(s, "[pai] job alice~train holds idle GPUs");
    free(s);
    char *m = notify_render_email(&it, "a@b", "c@d", "", it.at_ms);
    CHECK(strstr(m, "GPUs idle since: 2025-12-05T06:30:00Z\r\n") != NULL);
    CHECK(strstr(m, "Exit code") == NULL && strstr(m, "Portal:") == NULL);
    free(m);
    it.kind = ENGINE_NOTE_WAITING;
    s = notify_render_subject(&it);
    CHECK_STR_EQ(s, "[pai] job alice~train waits too long in the queue");
    free(s);
}

TEST(a_long_message_is_cut)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    notify_item_t it = item(ENGINE_NOTE_FAILED, NOTIFY_HOOK);
    it.message = big;
    char *j = notify_render_json(&it, NULL);
    json_t *o = json_loads(j, 0, NULL);
    const char *msg = json_string_value(json_object_get(o, "message"));
    CHECK(msg && strlen(msg) == 2003 && strcmp(msg + 2000, "...") == 0);
    json_decref(o);
    free(j);
}

TEST(webhook_json_carries_the_event)
{
    notify_item_t it = item(ENGINE_NOTE_FAILED, NOTIFY_HOOK);
    char *j = notify_render_json(&it, "http://portal:9186");
    json_t *o = json_loads(j, 0, NULL);
    CHECK(o != NULL);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "event")), "failed");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "job")), "alice~train");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "user")), "alice");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "name")), "train");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "state")), "FAILED");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "virtualCluster")), "default");
    CHECK_INT_EQ(json_integer_value(json_object_get(o, "exitCode")), 1);
    CHECK_INT_EQ(json_integer_value(json_object_get(o, "time")), it.at_ms);
    CHECK_STR_EQ(json_string_value(json_object_get(o, "url")),
                 "http://portal:9186/#/job/alice~train");
    CHECK_STR_EQ(json_string_value(json_object_get(o, "message")), "exit 1\nTraceback? here");
    CHECK(json_object_get(o, "since") == NULL);
    json_decref(o);
    free(j);
}

TEST(signature_is_hmac_sha256_rfc4231)
{
    char sig[NOTIFY_SIG_LEN];
    const char *data = "what do ya want for nothing?";
    notify_sign((const unsigned char *)"Jefe", 4, data, strlen(data), sig);
    CHECK_STR_EQ(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(email_addresses_are_checked)
{
    CHECK(notify_email_ok("alice@example.com"));
    CHECK(notify_email_ok("a.b+tag@sub.example.org"));
    CHECK(!notify_email_ok(""));
    CHECK(!notify_email_ok(NULL));
    CHECK(!notify_email_ok("alice"));
    CHECK(!notify_email_ok("@example.com"));
    CHECK(!notify_email_ok("alice@"));
    CHECK(!notify_email_ok("a@b@c"));
    CHECK(!notify_email_ok("a@b\r\nBcc: x@y"));
    CHECK(!notify_email_ok("Alice <a@b>"));
    CHECK(!notify_email_ok("a b@c"));
}

TEST(webhook_hosts_match_the_allow_list)
{
    const char *allow = "hooks.example.com, 127.0.0.1:8080,*.corp.example ,[::1]:9000";
    CHECK(notify_host_allowed(allow, "hooks.example.com", 443));
    CHECK(notify_host_allowed(allow, "HOOKS.example.com", 80));
    CHECK(notify_host_allowed(allow, "127.0.0.1", 8080));
    CHECK(!notify_host_allowed(allow, "127.0.0.1", 8081));
    CHECK(notify_host_allowed(allow, "ci.corp.example", 80));
    CHECK(!notify_host_allowed(allow, "corp.example", 80));
    CHECK(!notify_host_allowed(allow, "evilcorp.example", 80));
    CHECK(notify_host_allowed(allow, "::1", 9000));
    CHECK(!notify_host_allowed(allow, "::1", 80));
    CHECK(!notify_host_allowed(allow, "169.254.169.254", 80));
    CHECK(!notify_host_allowed("", "hooks.example.com", 80));
    CHECK(!notify_host_allowed(allow, "hooks.example.com.evil", 80));
}

static notify_t *quiet(const char *hosts)
{
    notify_opts_t o = {.hook_hosts = hosts, .queue_max = 8, .attempts = 1, .no_thread = true};
    return notify_new(&o);
}

TEST(webhook_urls_are_refused_unless_allowed)
{
    notify_t *none = quiet(""), *some = quiet("127.0.0.1:8080,hooks.example");
    pai_error_t e = PAI_ERROR_INIT;
    CHECK(notify_webhook_check(none, "http://hooks.example/x", &e) == PAI_E_INVALID);
    CHECK(strstr(pai_error_msg(&e), "not enabled") != NULL);
    CHECK(notify_webhook_check(some, "http://hooks.example/x", &e) == PAI_OK);
    CHECK(notify_webhook_check(some, "https://hooks.example:8443/x?a=b", &e) == PAI_OK);
    CHECK(notify_webhook_check(some, "http://127.0.0.1:8080/h", &e) == PAI_OK);
    CHECK(notify_webhook_check(some, "http://127.0.0.1:22/h", &e) == PAI_E_INVALID);
    CHECK(notify_webhook_check(some, "http://169.254.169.254/latest/meta-data", &e) ==
          PAI_E_INVALID);
    CHECK(strstr(pai_error_msg(&e), "169.254.169.254") != NULL);
    CHECK(notify_webhook_check(some, "gopher://hooks.example/x", &e) == PAI_E_INVALID);
    CHECK(notify_webhook_check(some, "file:///etc/passwd", &e) == PAI_E_INVALID);
    CHECK(notify_webhook_check(some, "http://hooks.example@10.0.0.1/x", &e) == PAI_E_INVALID);
    CHECK(notify_webhook_check(some, "not a url", &e) == PAI_E_INVALID);
    CHECK(notify_webhook_check(some, "http://hooks.example/x\r\nX-Evil: 1", &e) == PAI_E_INVALID);
    CHECK(notify_webhook_check(some, "http://hooks.example/a b", &e) == PAI_E_INVALID);
    pai_error_free(&e);
    notify_free(none);
    notify_free(some);
}

static json_t *js(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    CHECK(j != NULL);
    return j;
}

#define BIT(k) (1u << ENGINE_NOTE_##k)

TEST(a_job_spec_comes_from_extras_else_the_user_settings)
{
    notify_t *nt = quiet("hooks.example");
    engine_note_spec_t s;
    pai_error_t e = PAI_ERROR_INIT;
    json_t *prefs = js("{\"email\": true, \"on\": [\"idle\"]}");
    json_t *x = js("{\"notify\": {\"webhook\": \"http://hooks.example/h\", "
                   "\"on\": [\"failed\", \"waiting\"], \"email\": false}}");
    CHECK(notify_job_spec(nt, x, prefs, &s, &e) == PAI_OK);
    CHECK_INT_EQ(s.email, 0);
    CHECK_INT_EQ(s.hook, BIT(FAILED) | BIT(WAITING));
    CHECK_STR_EQ(s.url, "http://hooks.example/h");
    free(s.url);
    json_decref(x);
    /* no extras.notify: the user's settings */
    x = js("{}");
    CHECK(notify_job_spec(nt, x, prefs, &s, &e) == PAI_OK);
    CHECK_INT_EQ(s.email, BIT(IDLE));
    CHECK_INT_EQ(s.hook, 0);
    CHECK(s.url == NULL);
    json_decref(x);
    /* neither: nothing, but OpenPAI's jobStatusChangeNotification e-mails */
    x = js("{\"jobStatusChangeNotification\": {\"succeeded\": true, \"failed\": true, "
           "\"running\": false}}");
    CHECK(notify_job_spec(nt, x, NULL, &s, &e) == PAI_OK);
    CHECK_INT_EQ(s.email, BIT(SUCCEEDED) | BIT(FAILED));
    json_decref(x);
    /* defaults: e-mail on the final states */
    x = js("{\"notify\": {}}");
    CHECK(notify_job_spec(nt, x, NULL, &s, &e) == PAI_OK);
    CHECK_INT_EQ(s.email, BIT(SUCCEEDED) | BIT(FAILED) | BIT(STOPPED));
    json_decref(x);
    json_decref(prefs);
    notify_free(nt);
}

TEST(a_bad_or_refused_extras_notify_refuses_the_job)
{
    notify_t *nt = quiet("hooks.example");
    engine_note_spec_t s;
    pai_error_t e = PAI_ERROR_INIT;
    const char *bad[] = {
        "{\"notify\": {\"on\": [\"exploded\"]}}", "{\"notify\": {\"email\": \"yes\"}}",
        "{\"notify\": {\"cc\": \"boss@example\"}}",
        "{\"notify\": {\"webhook\": \"http://10.0.0.1/\"}}", "{\"notify\": [\"failed\"]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *x = js(bad[i]);
        CHECK(notify_job_spec(nt, x, NULL, &s, &e) == PAI_E_PROTOCOL);
        CHECK(strncmp(pai_error_msg(&e), "extras.notify", 13) == 0);
        CHECK(s.url == NULL);
        json_decref(x);
    }
    /* stored settings whose host the list no longer allows: e-mail only */
    json_t *prefs = js("{\"webhook\": \"http://gone.example/\", \"on\": [\"failed\"]}");
    json_t *x = js("{}");
    CHECK(notify_job_spec(nt, x, prefs, &s, &e) == PAI_OK);
    CHECK_INT_EQ(s.email, BIT(FAILED));
    CHECK(s.hook == 0 && s.url == NULL);
    CHECK(notify_prefs_check(nt, prefs, &e) == PAI_E_INVALID);
    json_decref(x);
    json_decref(prefs);
    pai_error_free(&e);
    notify_free(nt);
}

/* ---------------------------------------------------------------- queue */

typedef struct {
    int64_t now;
    int calls, fail_first; /* fail this many calls (RETRY), then OK */
    notify_result_t fail_with;
    char last_to[64];
    atomic_int delivered;
} fake_t;

static int64_t fake_clock(void *ud)
{
    return ((fake_t *)ud)->now;
}

static notify_result_t fake_deliver(void *ud, const notify_item_t *it, const char *to, char *err,
                                    size_t errlen)
{
    fake_t *f = ud;
    (void)it;
    snprintf(f->last_to, sizeof f->last_to, "%s", to ? to : "");
    if (f->calls++ < f->fail_first) {
        snprintf(err, errlen, "receiver down");
        return f->fail_with;
    }
    atomic_fetch_add(&f->delivered, 1);
    return NOTIFY_OK;
}

static char *fake_email(void *ud, const char *user)
{
    (void)ud;
    return strcmp(user, "nomail") == 0 ? NULL : str_printf("%s@example.com", user);
}

static notify_t *queue(fake_t *f, size_t max, int attempts)
{
    notify_opts_t o = {.smtp_host = "127.0.0.1",
                       .smtp_from = "pai@x",
                       .hook_hosts = "hooks.example",
                       .queue_max = max,
                       .attempts = attempts,
                       .retry_ms = 1000,
                       .retry_max_ms = 3000,
                       .email_of = fake_email,
                       .ud = f,
                       .deliver = fake_deliver,
                       .now_ms = fake_clock,
                       .no_thread = true};
    f->fail_with = NOTIFY_RETRY;
    return notify_new(&o);
}

static engine_notice_t notice(const char *job, size_t ulen, bool email, const char *hook)
{
    return (engine_notice_t){.kind = ENGINE_NOTE_FAILED,
                             .job = job,
                             .user_len = ulen,
                             .vc = "default",
                             .state = "FAILED",
                             .email = email,
                             .webhook = hook};
}

TEST(the_queue_is_bounded_and_drops_are_counted)
{
    fake_t f = {.now = 1000};
    notify_t *nt = queue(&f, 3, 1);
    engine_notice_t n = notice("alice~a", 5, true, "http://hooks.example/h");
    CHECK_INT_EQ(notify_post(nt, &n), 2); /* one item per channel */
    CHECK_INT_EQ(notify_post(nt, &n), 1); /* one place left */
    CHECK_INT_EQ(notify_post(nt, &n), 0);
    notify_stats_t s;
    notify_stats(nt, &s);
    CHECK_INT_EQ(s.queued, 3);
    CHECK_INT_EQ(s.dropped_full, 3);
    CHECK_INT_EQ(notify_run_due(nt), 3);
    notify_stats(nt, &s);
    CHECK_INT_EQ(s.queued, 0);
    CHECK_INT_EQ(s.sent[NOTIFY_EMAIL] + s.sent[NOTIFY_HOOK], 3);
    CHECK_STR_EQ(f.last_to, "alice@example.com");
    buf_t b;
    buf_init(&b, 1 << 16);
    notify_metrics(nt, &b);
    CHECK(strstr(buf_str(&b), "pai_notify_dropped_total{reason=\"queue_full\"} 3\n") != NULL);
    CHECK(strstr(buf_str(&b), "pai_notify_sent_total{channel=\"email\"} 2\n") != NULL);
    CHECK(strstr(buf_str(&b), "# TYPE pai_notify_queue_length gauge\n") != NULL);
    buf_free(&b);
    notify_free(nt);
}

TEST(a_failed_delivery_is_retried_after_a_doubling_backoff)
{
    fake_t f = {.now = 1000, .fail_first = 3};
    notify_t *nt = queue(&f, 8, 5);
    engine_notice_t n = notice("alice~a", 5, false, "http://hooks.example/h");
    CHECK_INT_EQ(notify_post(nt, &n), 1);
    CHECK_INT_EQ(notify_run_due(nt), 1); /* try 1 fails: due at +1 s */
    f.now += 999;
    CHECK_INT_EQ(notify_run_due(nt), 0);
    f.now += 1;
    CHECK_INT_EQ(notify_run_due(nt), 1); /* try 2 fails: due at +2 s */
    f.now += 1999;
    CHECK_INT_EQ(notify_run_due(nt), 0);
    f.now += 1;
    CHECK_INT_EQ(notify_run_due(nt), 1); /* try 3 fails: due at +3 s (the cap, not 4) */
    f.now += 3000;
    CHECK_INT_EQ(notify_run_due(nt), 1); /* try 4: delivered */
    notify_stats_t s;
    notify_stats(nt, &s);
    CHECK_INT_EQ(s.sent[NOTIFY_HOOK], 1);
    CHECK_INT_EQ(s.failures[NOTIFY_HOOK], 3);
    CHECK_INT_EQ(s.queued, 0);
    CHECK_INT_EQ(s.dropped_failed, 0);
    notify_free(nt);
}

TEST(tries_run_out_or_a_refusal_drops_the_notification)
{
    fake_t f = {.now = 1000, .fail_first = 100};
    notify_t *nt = queue(&f, 8, 2);
    engine_notice_t n = notice("alice~a", 5, true, NULL);
    CHECK_INT_EQ(notify_post(nt, &n), 1);
    CHECK_INT_EQ(notify_run_due(nt), 1);
    f.now += 1000;
    CHECK_INT_EQ(notify_run_due(nt), 1);
    notify_stats_t s;
    notify_stats(nt, &s);
    CHECK_INT_EQ(s.dropped_failed, 1);
    CHECK_INT_EQ(s.failures[NOTIFY_EMAIL], 2);
    CHECK_INT_EQ(s.queued, 0);
    /* a permanent refusal is not retried */
    f.fail_with = NOTIFY_GIVE_UP;
    CHECK_INT_EQ(notify_post(nt, &n), 1);
    CHECK_INT_EQ(notify_run_due(nt), 1);
    notify_stats(nt, &s);
    CHECK_INT_EQ(s.dropped_failed, 2);
    CHECK_INT_EQ(s.queued, 0);
    notify_free(nt);
}

TEST(an_owner_without_an_address_is_counted_not_retried)
{
    fake_t f = {.now = 1000};
    notify_t *nt = queue(&f, 8, 5);
    engine_notice_t n = notice("nomail~a", 6, true, NULL);
    CHECK_INT_EQ(notify_post(nt, &n), 1);
    CHECK_INT_EQ(notify_run_due(nt), 1);
    notify_stats_t s;
    notify_stats(nt, &s);
    CHECK_INT_EQ(s.dropped_no_address, 1);
    CHECK_INT_EQ(f.calls, 0);
    CHECK_INT_EQ(s.queued, 0);
    notify_free(nt);
}

TEST(email_is_not_queued_without_smtp)
{
    notify_t *nt = quiet("hooks.example");
    engine_notice_t n = notice("alice~a", 5, true, NULL);
    CHECK_INT_EQ(notify_post(nt, &n), 0);
    notify_free(nt);
}

TEST(the_sender_thread_delivers_what_is_posted)
{
    fake_t f = {.fail_first = 1};
    notify_opts_t o = {.smtp_host = "127.0.0.1",
                       .smtp_from = "pai@x",
                       .hook_hosts = "hooks.example",
                       .queue_max = 64,
                       .attempts = 3,
                       .retry_ms = 10,
                       .retry_max_ms = 10,
                       .email_of = fake_email,
                       .ud = &f,
                       .deliver = fake_deliver};
    f.fail_with = NOTIFY_RETRY;
    notify_t *nt = notify_new(&o);
    CHECK(nt != NULL);
    for (int i = 0; i < 20; i++) {
        engine_notice_t n = notice("alice~a", 5, true, "http://hooks.example/h");
        notify_post(nt, &n);
    }
    for (int i = 0; i < 500 && atomic_load(&f.delivered) < 40; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    CHECK_INT_EQ(atomic_load(&f.delivered), 40);
    notify_stats_t s;
    notify_stats(nt, &s);
    CHECK_INT_EQ(s.failures[NOTIFY_EMAIL] + s.failures[NOTIFY_HOOK], 1);
    notify_free(nt);
}

RUN_TESTS(email_has_the_headers_the_facts_and_crlf_lines, email_subjects_and_since_lines_per_event,
          a_long_message_is_cut, webhook_json_carries_the_event, signature_is_hmac_sha256_rfc4231,
          email_addresses_are_checked, webhook_hosts_match_the_allow_list,
          webhook_urls_are_refused_unless_allowed,
          a_job_spec_comes_from_extras_else_the_user_settings,
          a_bad_or_refused_extras_notify_refuses_the_job,
          the_queue_is_bounded_and_drops_are_counted,
          a_failed_delivery_is_retried_after_a_doubling_backoff,
          tries_run_out_or_a_refusal_drops_the_notification,
          an_owner_without_an_address_is_counted_not_retried, email_is_not_queued_without_smtp,
          the_sender_thread_delivers_what_is_posted)
