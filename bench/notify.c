/*
 * bench/notify.c - what a notification costs (src/server/notify.h,
 * docs/benchmarks.md, "Notifications").
 *
 * Measures, on the calling thread's CPU clock:
 *   post     notify_post of one event asking e-mail and a webhook (two queue
 *            items): what the engine adds under its lock per notified event;
 *   render   the e-mail and the webhook body of one event, and the HMAC
 *            signature of the body (on the sender thread, per delivery);
 *   drain    the queue's own work per delivery (pick, address lookup,
 *            settle) with 2,000 items queued.
 * Deliveries are a no-op (the test transport): no network.  Prints the
 * figures, asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "server/notify.h"

#define POSTS   50000
#define DRAIN   1000 /* events in the queue drained: 2,000 items */
#define RENDERS 10000

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static notify_result_t sent(void *ud, const notify_item_t *it, const char *to, char *err,
                            size_t errlen)
{
    (void)ud, (void)it, (void)to, (void)err, (void)errlen;
    return NOTIFY_OK;
}

static char *email_of(void *ud, const char *user)
{
    (void)ud;
    return str_printf("%s@example.com", user);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    notify_opts_t o = {.smtp_host = "127.0.0.1",
                       .smtp_from = "pai@example.com",
                       .hook_hosts = "hooks.example.com",
                       .queue_max = 2 * POSTS,
                       .attempts = 1,
                       .email_of = email_of,
                       .deliver = sent,
                       .no_thread = true};
    notify_t *nt = notify_new(&o);
    engine_notice_t n = {.kind = ENGINE_NOTE_FAILED,
                         .job = "alice~resnet50-imagenet-lr0.1",
                         .user_len = 5,
                         .vc = "default",
                         .state = "FAILED",
                         .has_exit = true,
                         .exit_code = 1,
                         .message = "exit code 1: Traceback (most recent call last): ...",
                         .at_ms = 1764918000000LL,
                         .email = true,
                         .webhook = "https://hooks.example.com/pai/alice"};
    double t0 = cpu_us();
    for (int i = 0; i < POSTS; i++)
        (void)notify_post(nt, &n);
    double post = (cpu_us() - t0) / POSTS;
    notify_item_t it = {.kind = n.kind,
                        .job = (char *)n.job,
                        .user = "alice",
                        .vc = "default",
                        .state = "FAILED",
                        .message = (char *)n.message,
                        .has_exit = true,
                        .exit_code = 1,
                        .at_ms = n.at_ms};
    t0 = cpu_us();
    size_t bytes = 0;
    for (int i = 0; i < RENDERS; i++) {
        char *m = notify_render_email(&it, "pai@example.com", "alice@example.com",
                                      "https://pai.example.com", it.at_ms);
        bytes += strlen(m);
        free(m);
    }
    double mail = (cpu_us() - t0) / RENDERS;
    char sig[NOTIFY_SIG_LEN];
    t0 = cpu_us();
    for (int i = 0; i < RENDERS; i++) {
        char *j = notify_render_json(&it, "https://pai.example.com");
        notify_sign((const unsigned char *)"a-32-byte-webhook-signing-key!!", 31, j, strlen(j),
                    sig);
        free(j);
    }
    double hook = (cpu_us() - t0) / RENDERS;
    notify_free(nt);
    o.queue_max = 2 * DRAIN;
    nt = notify_new(&o);
    for (int i = 0; i < DRAIN; i++)
        (void)notify_post(nt, &n);
    t0 = cpu_us();
    size_t tried = notify_run_due(nt);
    double drain = (cpu_us() - t0) / (double)(tried ? tried : 1);
    printf("notify_post, e-mail + webhook (2 items):  %.2f us per event (%d events)\n", post,
           POSTS);
    printf("render the e-mail:                       %.2f us (%zu bytes)\n", mail, bytes / RENDERS);
    printf("render and sign the webhook body:        %.2f us\n", hook);
    printf("queue: pick, look up, settle (no I/O):   %.2f us per item (%zu items)\n", drain, tried);
    notify_free(nt);
    return 0;
}
