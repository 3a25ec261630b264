/*
 * client.c - the CLI's connection to a pai (or OpenPAI) REST server.
 *
 * Where the server and token come from, in order of precedence:
 *   PAI_SERVER / PAI_TOKEN / PAI_USER in the environment,
 *   the config file written by `pai login` (JSON, mode 0600):
 *     $PAI_CONFIG, else $XDG_CONFIG_HOME/pai/config.json,
 *     else ~/.config/pai/config.json.
 * The server may be a list "URL1,URL2,..." (several servers on one
 * PostgreSQL, one of them leading): a request goes to the server that
 * answered last, and moves on to the leader a standby names (421
 * NotLeaderError), or to the next server when one cannot be reached (any
 * request that was never sent; a GET whatever failed) or none leads yet
 * (503 NoLeaderError), for up to CLI_FAILOVER_MS (common/srvlist.h).
 * An https:// server's certificate is verified against the CA file of
 * $PAI_CA_FILE, else the one `pai login --ca-file` stored, else the
 * system's CAs.
 * Every answer is read into a buffer capped at PAI_MAX_LOG_READ; error
 * answers are OpenPAI's {"code": ..., "message": ...} and are printed as
 * "pai CMD: CODE: message" with a hint for the common cases.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/curlbuf.h"
#include "common/fs.h"
#include "common/limits.h"
#include "common/srvlist.h"
#include "common/util.h"

char *cli_config_path(void)
{
    const char *p = getenv("PAI_CONFIG");
    if (p && *p)
        return xstrdup(p);
    const char *x = getenv("XDG_CONFIG_HOME");
    if (x && *x)
        return str_printf("%s/pai/config.json", x);
    const char *h = getenv("HOME");
    return str_printf("%s/.config/pai/config.json", h && *h ? h : ".");
}

static void take_json_str(json_t *o, const char *key, char **dst)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v && *v && !*dst)
        *dst = xstrdup(v);
}

static void take_env(const char *name, char **dst)
{
    const char *v = getenv(name);
    if (v && *v) {
        free(*dst);
        *dst = xstrdup(v);
    }
}

static void load_file(cli_ctx_t *c)
{
    char *path = cli_config_path();
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (o) {
        take_json_str(o, "server", &c->server);
        take_json_str(o, "token", &c->token);
        take_json_str(o, "user", &c->user);
        take_json_str(o, "caFile", &c->ca_file);
        json_decref(o);
    }
    free(path);
}

int cli_ctx_load(cli_ctx_t *c, bool need_login)
{
    memset(c, 0, sizeof(*c));
    load_file(c);
    take_env("PAI_SERVER", &c->server);
    take_env("PAI_TOKEN", &c->token);
    take_env("PAI_USER", &c->user);
    take_env("PAI_CA_FILE", &c->ca_file);
    if (c->server) {
        size_t n = strlen(c->server);
        while (n > 0 && c->server[n - 1] == '/')
            c->server[--n] = '\0';
    }
    if (need_login && (!c->server || !c->token)) {
        fprintf(stderr, "pai: not logged in: run `pai login URL` first "
                        "(or set PAI_SERVER and PAI_TOKEN)\n");
        return CLI_USAGE;
    }
    return CLI_OK;
}

void cli_ctx_free(cli_ctx_t *c)
{
    FREE_NULL(&c->server);
    FREE_NULL(&c->token);
    FREE_NULL(&c->user);
    FREE_NULL(&c->ca_file);
}

int cli_config_save(const char *server, const char *token, const char *user, const char *ca_file)
{
    char *path = cli_config_path();
    json_t *o = json_object();
    if (server)
        json_object_set_new(o, "server", json_string(server));
    if (token)
        json_object_set_new(o, "token", json_string(token));
    if (user)
        json_object_set_new(o, "user", json_string(user));
    if (ca_file)
        json_object_set_new(o, "caFile", json_string(ca_file));
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    int rc = CLI_OK;
    if (!text || fs_mkdir_parents(path, 0700) != PAI_OK ||
        fs_write_atomic(path, text, strlen(text), 0600) != PAI_OK) {
        fprintf(stderr, "pai: cannot write %s: %s\n", path, strerror(errno));
        rc = CLI_FAIL;
    }
    free(text);
    free(path);
    return rc;
}

static void print_server_error(const cli_ctx_t *c, const cli_resp_t *r)
{
    const char *code = json_string_value(json_object_get(r->json, "code"));
    const char *msg = json_string_value(json_object_get(r->json, "message"));
    if (!msg)
        msg = r->body.len && r->body.len < 300 ? buf_str(&r->body) : "";
    fprintf(stderr, "pai: %s%s%s (HTTP %ld)\n", code ? code : "error", *msg ? ": " : "", msg,
            r->status);
    if (r->status == 401)
        fprintf(stderr, "pai: the server did not accept the token; run `pai login %s` again\n",
                c->server ? c->server : "URL");
}

static struct curl_slist *make_headers(const cli_ctx_t *c, const char *ctype)
{
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    /* A standby answers reads from a view of the store up to
     * standby_refresh_s old; the CLI reads what it just wrote (`pai submit;
     * pai jobs`), so it asks for the leader's answer (api.md, "Standbys"). */
    h = curl_slist_append(h, "X-Pai-Read: leader");
    if (ctype) {
        char *line = str_printf("Content-Type: %s", ctype);
        h = curl_slist_append(h, line);
        free(line);
    }
    if (c->token) {
        char *line = str_printf("Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, line);
        free(line);
    }
    return h;
}

static void parse_answer(CURL *h, cli_resp_t *r)
{
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    str_copy(r->ctype, ct ? ct : "", sizeof(r->ctype));
    if (r->body.len > 0 &&
        (strstr(r->ctype, "json") || buf_str(&r->body)[0] == '{' || buf_str(&r->body)[0] == '['))
        r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

static void setup_easy(const cli_ctx_t *c, CURL *h, const char *url, const char *method,
                       const char *body, size_t len, struct curl_slist *hdrs, cli_resp_t *r)
{
    if (c->ca_file && *c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curlbuf_collect(h, &r->body);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
}

/* How long a request looks for the leader among several servers: longer
 * than a takeover (leader_lease_s, 5 s by default, plus the restore). */
#define CLI_FAILOVER_MS 30000

/* The server that answered last (several servers: the leader), tried
 * first by the next request of this process. */
static char *last_leader;

/* One request to url into r (reset first). */
static CURLcode perform(const cli_ctx_t *c, const char *url, const char *method, const char *ctype,
                        const char *body, size_t len, cli_resp_t *r)
{
    buf_reset(&r->body);
    json_decref(r->json);
    r->json = NULL;
    r->status = 0;
    CURL *h = curl_easy_init();
    if (!h)
        util_oom(); /* libcurl allocates with its own malloc */
    struct curl_slist *hdrs = make_headers(c, ctype);
    setup_easy(c, h, url, method, body, len, hdrs, r);
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK)
        parse_answer(h, r);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return cc;
}

/* Go on to another server?  The request never reached one (or, for a GET,
 * failed on the way), or a standby answered (421, or 503 while no server
 * leads): *leader gets the URL it named.  Only with a choice to make. */
static bool fail_over(const srvlist_t *sl, const char *method, CURLcode cc, cli_resp_t *r,
                      char **leader)
{
    *leader = NULL;
    bool redirect =
        cc == CURLE_OK && srvlist_is_redirect(r->status, r->body.data, r->body.len, leader);
    bool unsent = cc == CURLE_COULDNT_CONNECT ||
                  (cc != CURLE_OK && cc != CURLE_WRITE_ERROR && strcmp(method, "GET") == 0);
    return (redirect || unsent) && (sl->n > 1 || *leader || sl->leader);
}

int cli_request(const cli_ctx_t *c, const char *method, const char *path, const char *ctype,
                const char *body, size_t len, unsigned flags, cli_resp_t *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, PAI_MAX_LOG_READ);
    bool absolute = str_has_prefix(path, "http://") || str_has_prefix(path, "https://");
    srvlist_t sl;
    bool listed = !absolute && c->server && srvlist_parse(&sl, c->server) == PAI_OK;
    if (listed && last_leader)
        srvlist_next(&sl, last_leader);
    int64_t give_up = time_mono_ms() + CLI_FAILOVER_MS;
    size_t tries = 0;
    char *url = NULL;
    CURLcode cc;
    for (;;) {
        const char *base = listed ? srvlist_current(&sl) : c->server ? c->server : "";
        free(url);
        url = absolute ? xstrdup(path) : str_printf("%s%s", base, path);
        cc = perform(c, url, method, ctype, body, len, r);
        char *leader = NULL;
        if (!listed || !fail_over(&sl, method, cc, r, &leader) || time_mono_ms() >= give_up) {
            free(leader);
            if (listed && cc == CURLE_OK && r->status != 421) {
                free(last_leader);
                last_leader = xstrdup(base);
            }
            break;
        }
        srvlist_next(&sl, leader);
        free(leader);
        if (++tries % (sl.n + 1) == 0)
            nanosleep(&(struct timespec){.tv_nsec = 300000000L}, NULL); /* an election */
    }
    if (listed)
        srvlist_free(&sl);
    int rc = CLI_USAGE;
    if (cc != CURLE_OK) {
        if (flags & (CLI_QUIET | CLI_QUIET_DOWN))
            ;
        else if (cc == CURLE_WRITE_ERROR)
            fprintf(stderr, "pai: the answer from %s is larger than %u bytes\n", url,
                    PAI_MAX_LOG_READ);
        else
            fprintf(stderr,
                    "pai: cannot reach the server at %s: %s\n"
                    "pai: is it running? (start a local one with `pai up`)\n",
                    c->server ? c->server : url, curl_easy_strerror(cc));
        goto out;
    }
    rc = r->status >= 200 && r->status < 300 ? CLI_OK : CLI_FAIL;
    if (rc != CLI_OK && !(flags & CLI_QUIET) && !((flags & CLI_QUIET_404) && r->status == 404))
        print_server_error(c, r);
out:
    free(url);
    return rc;
}

int cli_get(const cli_ctx_t *c, const char *path, cli_resp_t *r)
{
    return cli_request(c, "GET", path, NULL, NULL, 0, 0, r);
}

void cli_resp_free(cli_resp_t *r)
{
    buf_free(&r->body);
    json_decref(r->json);
    r->json = NULL;
}

char *cli_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = xstrdup(e ? e : "");
    curl_free(e);
    return out;
}

char *cli_job_fullname(const cli_ctx_t *c, const char *name)
{
    if (strchr(name, '~'))
        return xstrdup(name);
    return str_printf("%s~%s", c->user ? c->user : "admin", name);
}

char *cli_job_path(const char *fullname, const char *suffix)
{
    const char *t = strchr(fullname, '~');
    char *user = t ? xstrndup(fullname, (size_t)(t - fullname)) : xstrdup("");
    char *eu = cli_escape(user);
    char *ej = cli_escape(t ? t + 1 : fullname);
    char *p = str_printf("/api/v2/jobs/%s~%s%s", eu, ej, suffix ? suffix : "");
    free(user);
    free(eu);
    free(ej);
    return p;
}
