/*
 * srvlist.c - a client's list of servers and their failover (srvlist.h).
 */
#include "common/srvlist.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static char *trimmed(const char *s, size_t len)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '/'))
        len--;
    char *out = xmalloc(len + 1);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

pai_err_t srvlist_parse(srvlist_t *l, const char *list)
{
    memset(l, 0, sizeof(*l));
    if (!list || !*list)
        return PAI_E_INVALID;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *u = trimmed(p, len);
        if (!*u || l->n == SRVLIST_MAX ||
            !(str_has_prefix(u, "http://") || str_has_prefix(u, "https://"))) {
            free(u);
            srvlist_free(l);
            return PAI_E_INVALID;
        }
        l->urls[l->n++] = u;
        if (!comma)
            return PAI_OK;
        p = comma + 1;
    }
}

void srvlist_free(srvlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->urls[i]);
    free(l->leader);
    memset(l, 0, sizeof(*l));
}

const char *srvlist_current(const srvlist_t *l)
{
    if (l->leader)
        return l->leader;
    return l->n ? l->urls[l->cur] : "";
}

void srvlist_next(srvlist_t *l, const char *leader)
{
    bool named = leader && *leader && strcmp(leader, srvlist_current(l)) != 0;
    if (named) {
        char *u = trimmed(leader, strlen(leader));
        free(l->leader);
        l->leader = u;
        return;
    }
    if (l->leader) { /* the named leader failed too: back to the list */
        free(l->leader);
        l->leader = NULL;
    }
    if (l->n)
        l->cur = (l->cur + 1) % l->n;
}

bool srvlist_is_redirect(long status, const char *body, size_t len, char **leader)
{
    *leader = NULL;
    if (status != 421 && status != 503)
        return false;
    json_t *j = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(j, "code"));
    const char *url = json_string_value(json_object_get(j, "leader"));
    bool redirect =
        status == 421 ||
        (code && (strcmp(code, "NotLeaderError") == 0 || strcmp(code, "NoLeaderError") == 0));
    if (redirect && url && *url &&
        (str_has_prefix(url, "http://") || str_has_prefix(url, "https://")))
        *leader = xstrdup(url);
    json_decref(j);
    return redirect;
}
