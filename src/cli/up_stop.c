/*
 * up_stop.c - `pai down --stop-jobs`: stop every job before the cluster.
 *
 * Without it, tasks outlive `pai down` (agents leave them running so that a
 * restarted `pai up` re-adopts them).  With it, pai down logs in as the
 * admin with the password `pai up` generated, asks the server to stop each
 * job that is not final (PUT .../executionType STOP, as `pai stop` does),
 * and waits until none is left, at most UP_STOP_WAIT_MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/up.h"
#include "common/buf.h"
#include "common/util.h"

#define UP_STOP_WAIT_MS 60000

static char *read_line(const char *dir, const char *name)
{
    char *p = str_printf("%s/%s", dir, name);
    buf_t b;
    buf_init(&b, 4096);
    char *out = NULL;
    if (buf_read_file(&b, p) == PAI_OK && b.len > 0) {
        b.data[strcspn(b.data, "\r\n")] = '\0';
        out = xstrdup(buf_str(&b));
    }
    buf_free(&b);
    free(p);
    return out;
}

static int admin_login(cli_ctx_t *c, const char *dir)
{
    char *pw = read_line(dir, "admin.password");
    c->server = read_line(dir, "pai-up.url");
    if (!pw || !c->server) {
        free(pw);
        fprintf(stderr, "pai down: %s has no admin.password or pai-up.url\n", dir);
        return CLI_FAIL;
    }
    char *epw = cli_escape(pw);
    char *form = str_printf("username=admin&password=%s&expiration=600", epw);
    cli_resp_t r;
    int rc = cli_request(c, "POST", "/api/v2/authn/basic/login",
                         "application/x-www-form-urlencoded", form, strlen(form), 0, &r);
    const char *tok = json_string_value(json_object_get(r.json, "token"));
    if (rc == CLI_OK && tok)
        c->token = xstrdup(tok);
    else
        rc = CLI_FAIL;
    cli_resp_free(&r);
    free(form);
    free(epw);
    free(pw);
    return rc;
}

/* Stop each job that is not final; *left = how many are not final. */
static int stop_pass(const cli_ctx_t *c, bool send, int *left)
{
    cli_resp_t r;
    *left = 0;
    int rc = cli_get(c, "/api/v2/jobs?limit=50000", &r);
    size_t i;
    json_t *j;
    json_array_foreach(rc == CLI_OK ? r.json : NULL, i, j)
    {
        if (cli_state_final(cli_jstr(j, "state")))
            continue;
        (*left)++;
        if (!send || strcmp(cli_jstr(j, "state"), "STOPPING") == 0)
            continue;
        char *full = str_printf("%s~%s", cli_jstr(j, "username"), cli_jstr(j, "name"));
        char *path = cli_job_path(full, "/executionType");
        cli_resp_t s;
        const char *body = "{\"value\":\"STOP\"}";
        if (cli_request(c, "PUT", path, "application/json", body, strlen(body), 0, &s) == CLI_OK)
            printf("stopping %s\n", full);
        cli_resp_free(&s);
        free(path);
        free(full);
    }
    cli_resp_free(&r);
    return rc;
}

int up_stop_jobs(const char *dir)
{
    cli_ctx_t c = {0};
    int rc = admin_login(&c, dir);
    int left = 0;
    if (rc == CLI_OK)
        rc = stop_pass(&c, true, &left);
    int64_t t0 = time_mono_ms();
    while (rc == CLI_OK && left > 0 && time_mono_ms() - t0 < UP_STOP_WAIT_MS) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        rc = stop_pass(&c, false, &left);
    }
    if (rc == CLI_OK && left > 0) {
        fprintf(stderr, "pai down: %d job(s) still not stopped after %ds\n", left,
                UP_STOP_WAIT_MS / 1000);
        rc = CLI_FAIL;
    }
    cli_ctx_free(&c);
    return rc;
}
