/*
 * notify_spec.c - what a job asks to be told, and the checks of what users
 * write: a job's extras.notify, OpenPAI's extras.jobStatusChangeNotification,
 * a user's notification settings, and webhook URLs against the admin's
 * allow-list (notify.h).
 *
 * The shape of extras.notify and of a user's settings:
 *   {email: bool (default true), webhook: "http(s)://allowed-host/...",
 *    on: [running, succeeded, failed, stopped, retried, waiting, idle]
 *        (default [succeeded, failed, stopped])}
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/notify.h"
#include "server/notify_int.h"

#define MAX_URL 2048
#define DEFAULT_ON                                                                                 \
    ((1u << ENGINE_NOTE_SUCCEEDED) | (1u << ENGINE_NOTE_FAILED) | (1u << ENGINE_NOTE_STOPPED))

pai_err_t notify_url_parts(const char *url, char **scheme, char **host, int *port)
{
    *scheme = *host = NULL;
    *port = 0;
    if (!url || strlen(url) > MAX_URL)
        return PAI_E_INVALID;
    CURLU *u = curl_url();
    char *s = NULL, *h = NULL, *p = NULL;
    pai_err_t rc = PAI_E_INVALID;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        str_to_int(p, 1, 65535, port) != PAI_OK)
        goto out;
    size_t hl = strlen(h);
    /* an IPv6 literal comes bracketed: the allow-list matches the bare address */
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']')
        *host = str_printf("%.*s", (int)(hl - 2), h + 1);
    else
        *host = xstrdup(h);
    *scheme = xstrdup(s);
    rc = PAI_OK;
out:
    curl_free(s);
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return rc;
}

pai_err_t notify_webhook_check(const notify_t *nt, const char *url, pai_error_t *e)
{
    const char *allow = notify_hook_hosts(nt);
    if (!allow || !*allow)
        return pai_error_set(e, PAI_E_INVALID,
                             "webhook: webhooks are not enabled on this server (its admin has "
                             "allowed no webhook host: notify_webhook_hosts)");
    char *scheme = NULL, *host = NULL;
    int port = 0;
    pai_err_t rc = notify_url_parts(url, &scheme, &host, &port);
    if (rc != PAI_OK)
        rc = pai_error_set(e, PAI_E_INVALID, "webhook: not a URL");
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        rc = pai_error_set(e, PAI_E_INVALID, "webhook: only http and https URLs are allowed");
    else if (!notify_host_allowed(allow, host, port))
        rc = pai_error_set(e, PAI_E_INVALID,
                           "webhook: host %s port %d is not on this server's allow-list "
                           "(notify_webhook_hosts)",
                           host, port);
    free(scheme);
    free(host);
    return rc;
}

/* Check {email, webhook, on} (what names it: "extras.notify" or
 * "notification"), its events into *mask. */
static pai_err_t check_shape(const notify_t *nt, const json_t *o, const char *what, uint8_t *mask,
                             pai_error_t *e)
{
    if (!json_is_object(o))
        return pai_error_set(e, PAI_E_INVALID, "%s: must be an object", what);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        if (strcmp(k, "email") != 0 && strcmp(k, "webhook") != 0 && strcmp(k, "on") != 0)
            return pai_error_set(e, PAI_E_INVALID, "%s: unknown field '%s' (email, webhook, on)",
                                 what, k);
    }
    json_t *email = json_object_get(o, "email"), *hook = json_object_get(o, "webhook");
    json_t *on = json_object_get(o, "on");
    if (email && !json_is_boolean(email))
        return pai_error_set(e, PAI_E_INVALID, "%s.email: must be true or false", what);
    if (hook && !json_is_string(hook) && !json_is_null(hook))
        return pai_error_set(e, PAI_E_INVALID, "%s.webhook: must be a URL", what);
    const char *url = json_string_value(hook);
    if (url && *url) {
        pai_error_t why = PAI_ERROR_INIT;
        pai_err_t rc = notify_webhook_check(nt, url, &why);
        if (rc != PAI_OK)
            pai_error_set(e, rc, "%s.%s", what, pai_error_msg(&why));
        pai_error_free(&why);
        if (rc != PAI_OK)
            return rc;
    }
    *mask = (uint8_t)DEFAULT_ON;
    if (!on)
        return PAI_OK;
    if (!json_is_array(on))
        return pai_error_set(e, PAI_E_INVALID, "%s.on: must be a list of events", what);
    *mask = 0;
    size_t i;
    json_array_foreach(on, i, v)
    {
        int ev = engine_note_parse(json_string_value(v));
        if (ev < 0)
            return pai_error_set(e, PAI_E_INVALID,
                                 "%s.on[%zu]: not one of running, succeeded, failed, stopped, "
                                 "retried, waiting, idle",
                                 what, i);
        *mask |= (uint8_t)(1u << ev);
    }
    return PAI_OK;
}

pai_err_t notify_prefs_check(const notify_t *nt, const json_t *prefs, pai_error_t *e)
{
    uint8_t mask = 0;
    return check_shape(nt, prefs, "notification", &mask, e);
}

/* OpenPAI's extras.jobStatusChangeNotification {running, succeeded, stopped,
 * failed, retried: bool}: an e-mail for each set true. */
static uint8_t status_change_mask(const json_t *m)
{
    static const engine_note_kind_t kinds[] = {ENGINE_NOTE_RUNNING, ENGINE_NOTE_SUCCEEDED,
                                               ENGINE_NOTE_STOPPED, ENGINE_NOTE_FAILED,
                                               ENGINE_NOTE_RETRIED};
    uint8_t mask = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (json_is_true(json_object_get(m, engine_note_name(kinds[i]))))
            mask |= (uint8_t)(1u << kinds[i]);
    return mask;
}

pai_err_t notify_job_spec(const notify_t *nt, const json_t *extras, const json_t *prefs,
                          engine_note_spec_t *out, pai_error_t *e)
{
    memset(out, 0, sizeof(*out));
    const json_t *own = json_object_get(extras, "notify");
    const json_t *spec = own;
    uint8_t mask = 0;
    if (own) {
        pai_error_t why = PAI_ERROR_INIT;
        pai_err_t rc = check_shape(nt, own, "extras.notify", &mask, &why);
        if (rc != PAI_OK)
            pai_error_set(e, PAI_E_PROTOCOL, "%s", pai_error_msg(&why));
        pai_error_free(&why);
        if (rc != PAI_OK)
            return PAI_E_PROTOCOL;
    } else if (json_is_object(prefs)) {
        pai_error_t ignore = PAI_ERROR_INIT;
        /* settings stored earlier: a webhook host the allow-list dropped since
         * loses the webhook, not the job */
        if (check_shape(nt, prefs, "notification", &mask, &ignore) == PAI_OK) {
            spec = prefs;
        } else {
            json_t *no_hook = json_deep_copy(prefs);
            json_object_del(no_hook, "webhook");
            if (check_shape(nt, no_hook, "notification", &mask, &ignore) == PAI_OK)
                out->email = json_is_false(json_object_get(no_hook, "email")) ? 0 : mask;
            json_decref(no_hook);
        }
        pai_error_free(&ignore);
    }
    if (spec) {
        out->email = json_is_false(json_object_get(spec, "email")) ? 0 : mask;
        const char *url = json_string_value(json_object_get(spec, "webhook"));
        if (url && *url) {
            out->hook = mask;
            out->url = xstrdup(url);
        }
    }
    out->email |= status_change_mask(json_object_get(extras, "jobStatusChangeNotification"));
    return PAI_OK;
}
