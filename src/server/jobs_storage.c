/*
 * jobs_storage.c - extras.storages -> agent mounts.
 *
 * pai mounts a storage only when it is present at the same host path on
 * every node (a local directory, or an NFS/SMB share the nodes already
 * mount): the storage's `data.hostPath`.  The mount's target is the job's
 * `mountPath` (default /mnt/<name>, as OpenPAI); `data.readOnly: true`
 * makes it read-only.
 */
#include "server/jobs_storage.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/server.h"

enum { MAX_JOB_STORAGES = 64 };

static const json_t *storage_def(const server_ctx_t *ctx, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(ctx->cfg->storages, i, s)
    {
        const char *n = json_string_value(json_object_get(s, "name"));
        if (n && strcmp(n, name) == 0)
            return s;
    }
    return NULL;
}

/* An absolute path the engines' "-v SRC:DST[:ro]" can carry. */
static bool path_ok(const char *p)
{
    return p && p[0] == '/' && strlen(p) < 1024 && !strchr(p, ':') && !strchr(p, ',') &&
           !strstr(p, "/../") && !str_has_suffix(p, "/..");
}

static pai_err_t one_mount(server_ctx_t *ctx, const char *user, const char *name,
                           const char *target, bool named, json_t *out, pai_error_t *e)
{
    const json_t *def = storage_def(ctx, name);
    if (!def) /* OpenPAI's answer (rest-server models/v2/job/k8s.js) */
        return pai_error_set(e, PAI_E_NO_STORAGE, PAI_MSG_NO_STORAGE, name);
    if (!auth_user_can_use_storage(ctx, user, name))
        return pai_error_set(e, PAI_E_FORBIDDEN, PAI_MSG_STORAGE_DENIED, user, name);
    const json_t *data = json_object_get(def, "data");
    const char *host = json_string_value(json_object_get(data, "hostPath"));
    if (!path_ok(host)) {
        if (!named)
            return PAI_OK; /* a default storage pai cannot mount: not mounted */
        return pai_error_set(e, PAI_E_PROTOCOL,
                             "storage %s has no usable data.hostPath: pai mounts only storages "
                             "present at a host path on every node",
                             name);
    }
    char *dflt = target ? NULL : str_printf("/mnt/%s", name);
    const char *dst = target ? target : dflt;
    pai_err_t rc = PAI_OK;
    if (!path_ok(dst)) {
        rc = pai_error_set(e, PAI_E_PROTOCOL,
                           "storage %s: mountPath must be an absolute path without ':' or ','",
                           name);
    } else {
        json_array_append_new(out,
                              xjson_pack("{ss ss sb}", "source", host, "target", dst, "readonly",
                                         json_is_true(json_object_get(data, "readOnly"))));
    }
    free(dflt);
    return rc;
}

static pai_err_t named_mounts(server_ctx_t *ctx, const char *user, const json_t *storages,
                              json_t *out, pai_error_t *e)
{
    if (!json_is_array(storages) || json_array_size(storages) > MAX_JOB_STORAGES)
        return pai_error_set(e, PAI_E_PROTOCOL,
                             "extras.storages must be a list of at most %d {name, mountPath}",
                             MAX_JOB_STORAGES);
    size_t i;
    json_t *st;
    json_array_foreach(storages, i, st)
    {
        const char *name = json_string_value(json_object_get(st, "name"));
        const json_t *mp = json_object_get(st, "mountPath");
        if (!name || (mp && !json_is_string(mp)))
            return pai_error_set(e, PAI_E_PROTOCOL,
                                 "extras.storages[%zu]: needs a string name (and mountPath)", i);
        pai_err_t rc = one_mount(ctx, user, name, json_string_value(mp), true, out, e);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

static pai_err_t default_mounts(server_ctx_t *ctx, const char *user, json_t *out, pai_error_t *e)
{
    size_t i;
    json_t *s;
    json_array_foreach(ctx->cfg->storages, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || !json_is_true(json_object_get(s, "default")) ||
            !auth_user_can_use_storage(ctx, user, name))
            continue;
        pai_err_t rc = one_mount(ctx, user, name, NULL, false, out, e);
        if (rc != PAI_OK)
            return rc;
    }
    return PAI_OK;
}

pai_err_t jobs_storage_mounts(void *ud, const char *user, const json_t *storages, json_t **mounts,
                              pai_error_t *e)
{
    server_ctx_t *ctx = ud;
    *mounts = NULL;
    json_t *out = json_array();
    pai_err_t rc =
        storages ? named_mounts(ctx, user, storages, out, e) : default_mounts(ctx, user, out, e);
    if (rc != PAI_OK) {
        json_decref(out);
        return rc;
    }
    *mounts = out;
    return PAI_OK;
}
