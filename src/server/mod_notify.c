/*
 * mod_notify.c - the "notify" module: builds the notifier (server/notify.h)
 * from the server's config, before the jobs module (whose engine hands it
 * events), and gives the engine its two notification ops: what a job asks
 * (ops.note_spec: extras plus the owner's settings from auth) and the hand-
 * off of an event (ops.note).  The SMTP password and the webhook key are
 * read from their files here, once, and never shown by any API.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/notify.h"
#include "server/server.h"

#define SECRET_FILE_MAX 4096

/* The first line of a secret file into *out (malloc'ed); "" path: NULL. */
static pai_err_t read_secret(const char *path, const char *what, char **out)
{
    *out = NULL;
    if (!path || !*path)
        return PAI_OK;
    buf_t b;
    buf_init(&b, SECRET_FILE_MAX);
    pai_err_t rc = buf_read_file(&b, path);
    if (rc != PAI_OK) {
        log_error("notify: cannot read %s %s: %s", what, path, pai_err_msg(rc));
    } else {
        char *s = buf_take(&b);
        s[strcspn(s, "\r\n")] = '\0';
        if (!*s) {
            log_error("notify: %s %s is empty", what, path);
            free(s);
            rc = PAI_E_BAD_CONFIG;
        } else {
            *out = s;
        }
    }
    buf_free(&b);
    return rc;
}

static char *email_of(void *ud, const char *user)
{
    return auth_user_email(ud, user);
}

void notify_engine_note(void *ud, const engine_notice_t *n)
{
    server_ctx_t *ctx = ud;
    (void)notify_post(ctx->notify, n);
}

pai_err_t notify_engine_spec(void *ud, const char *user, const json_t *extras,
                             engine_note_spec_t *out, pai_error_t *e)
{
    server_ctx_t *ctx = ud;
    json_t *prefs = auth_user_notification(ctx, user);
    pai_err_t rc = notify_job_spec(ctx->notify, extras, prefs, out, e);
    json_decref(prefs);
    return rc;
}

static pai_err_t notify_init(server_ctx_t *ctx)
{
    const server_config_t *cfg = ctx->cfg;
    char *password = NULL, *secret = NULL;
    pai_err_t rc = read_secret(cfg->smtp_password_file, "smtp_password_file", &password);
    if (rc == PAI_OK)
        rc = read_secret(cfg->notify_webhook_secret_file, "notify_webhook_secret_file", &secret);
    if (rc != PAI_OK)
        goto out;
    notify_opts_t o = {.smtp_host = cfg->smtp_host,
                       .smtp_port = (int)cfg->smtp_port,
                       .smtp_from = cfg->smtp_from,
                       .smtp_starttls = cfg->smtp_starttls != 0,
                       .smtp_username = cfg->smtp_username,
                       .smtp_password = password,
                       .hook_hosts = cfg->notify_webhook_hosts,
                       .hook_secret = (const unsigned char *)secret,
                       .hook_secret_len = secret ? strlen(secret) : 0,
                       .queue_max = (size_t)cfg->notify_queue_max,
                       .attempts = (int)cfg->notify_attempts,
                       .retry_ms = cfg->notify_retry_ms,
                       .retry_max_ms = 600000,
                       .timeout_ms = cfg->notify_timeout_s * 1000,
                       .portal_url = cfg->notify_portal_url,
                       .email_of = email_of,
                       .ud = ctx};
    if (*cfg->smtp_host && !notify_email_ok(cfg->smtp_from)) {
        log_error("notify: smtp_from '%s' is not a plain e-mail address", cfg->smtp_from);
        rc = PAI_E_BAD_CONFIG;
        goto out;
    }
    if (!(ctx->notify = notify_new(&o))) {
        log_error("notify: cannot start the sender thread");
        rc = PAI_E_INTERNAL;
        goto out;
    }
    if (ctx->metrics)
        rc = metrics_register(ctx->metrics, "notify", notify_metrics, ctx->notify);
    log_info("notify: e-mail %s%s, webhooks %s", *cfg->smtp_host ? "via " : "off", cfg->smtp_host,
             *cfg->notify_webhook_hosts ? "to the allowed hosts" : "off");
out:
    if (password)
        sodium_memzero(password, strlen(password));
    if (secret)
        sodium_memzero(secret, strlen(secret));
    free(password);
    free(secret);
    return rc;
}

static void notify_fini(server_ctx_t *ctx)
{
    notify_free(ctx->notify);
    ctx->notify = NULL;
}

const server_module_t server_module_notify = {"notify", notify_init, notify_fini, NULL};
