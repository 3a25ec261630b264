/*
 * gpu_class.c - generic device classes (FPGAs and other accelerators found
 * by a device path glob, --device-class) and what a task holding some
 * devices of any set gets: their env vars (gpu_task_env) and where their
 * nodes appear in a container (gpu_container_path).  See gpu.h.
 *
 * A class is one SKU: the agent reports its devices as the node's "GPUs"
 * with the class's SKU as their model, so the scheduler places them as it
 * places GPUs (one leaf cell per device, the SKU a cell type; a job picks
 * it with skuType).  One node holds one class, as one HiveD node-level
 * cell holds one leaf type.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/gpu.h"
#include "common/buf.h"
#include "common/util.h"

/* ---- the spec ---------------------------------------------------------------- */

typedef struct {
    char name[64], sku[96], paths[GPU_PATH_MAX], env[64];
    char shared[GPU_PATH_MAX * 2];
} class_spec_t;

/* "key=value,key=value"; false (reason in err) for an unknown key, a
 * value too long, or name/sku/paths/env missing. */
static bool parse_spec(const char *spec, class_spec_t *c, char *err, size_t errlen)
{
    char *copy = xstrdup(spec ? spec : ""), *save = NULL;
    memset(c, 0, sizeof(*c));
    bool ok = true;
    for (char *kv = strtok_r(copy, ",", &save); ok && kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        const struct {
            const char *key;
            char *dst;
            size_t cap;
        } keys[] = {{"name", c->name, sizeof(c->name)},
                    {"sku", c->sku, sizeof(c->sku)},
                    {"paths", c->paths, sizeof(c->paths)},
                    {"env", c->env, sizeof(c->env)},
                    {"shared", c->shared, sizeof(c->shared)}};
        size_t k = 0;
        if (eq)
            *eq = '\0';
        while (eq && k < ARRAY_LEN(keys) && strcmp(keys[k].key, kv) != 0)
            k++;
        if (!eq || k == ARRAY_LEN(keys) || strlen(eq + 1) >= keys[k].cap) {
            snprintf(err, errlen, "--device-class: bad or unknown setting \"%s\"", kv);
            ok = false;
        } else {
            str_copy(keys[k].dst, eq + 1, keys[k].cap);
        }
    }
    free(copy);
    if (ok && (!*c->name || !*c->sku || !*c->paths || !*c->env)) {
        snprintf(err, errlen, "--device-class wants name=, sku=, paths= and env=");
        ok = false;
    }
    for (const char *p = c->env; ok && *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            snprintf(err, errlen, "--device-class: env=%s is not an environment variable name",
                     c->env);
            ok = false;
        }
    return ok;
}

/* Natural order: "fpga2" before "fpga10". */
static int natural_cmp(const void *pa, const void *pb)
{
    const char *a = *(const char *const *)pa, *b = *(const char *const *)pb;
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            char *ea, *eb;
            unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
            if (x != y)
                return x < y ? -1 : 1;
            a = ea, b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        a++, b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

pai_err_t gpu_class_discover(const char *spec, const char *node, gpu_set_t *out, char *err,
                             size_t errlen)
{
    class_spec_t c;
    if (!parse_spec(spec, &c, err, errlen))
        return PAI_E_INVALID;
    memset(out, 0, sizeof(*out));
    out->backend = "class";
    out->vendor = GPU_VENDOR_CLASS;
    str_copy(out->env_name, c.env, sizeof(out->env_name));
    str_copy(out->class_name, c.name, sizeof(out->class_name));
    glob_t g;
    if (glob(c.paths, 0, NULL, &g) == 0) {
        qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), natural_cmp);
        for (size_t i = 0; i < g.gl_pathc && out->n < GPU_MAX; i++) {
            if (strlen(g.gl_pathv[i]) >= GPU_PATH_MAX)
                continue;
            gpu_info_t *d = &out->gpus[out->n];
            d->index = (int)out->n;
            snprintf(d->uuid, sizeof(d->uuid), "%.20s-%.40s-%zu", c.name, node ? node : "node",
                     out->n);
            str_copy(d->model, c.sku, sizeof(d->model));
            str_copy(d->dev, g.gl_pathv[i], sizeof(d->dev));
            d->healthy = true;
            out->n++;
        }
        globfree(&g);
    }
    /* devices outside /dev are a fake tree (tests): faults can be injected */
    out->simulated = out->n > 0 && !str_has_prefix(out->gpus[0].dev, "/dev/");
    char *save = NULL;
    for (char *p = strtok_r(c.shared, ":", &save); p && out->nshared < GPU_SHARED_MAX;
         p = strtok_r(NULL, ":", &save))
        str_copy(out->shared[out->nshared++], p, GPU_PATH_MAX);
    return PAI_OK;
}

/* ---- what a task gets ----------------------------------------------------------- */

const char *gpu_container_path(const char *host)
{
    const char *p = host, *last = NULL;
    while ((p = strstr(p, "/dev/")) != NULL)
        last = p++;
    return last ? last : host;
}

/* "a,b,c" of the task's host indices, or of UUIDs when uuids and all
 * have one, or of 0..n-1 when ordinal. */
static char *list_of(const gpu_set_t *set, const int *gpus, size_t n, bool uuids, bool ordinal)
{
    buf_t b;
    buf_init(&b, 16 * 1024);
    for (size_t i = 0; i < n; i++) {
        const gpu_info_t *g = gpus[i] >= 0 && (size_t)gpus[i] < set->n ? &set->gpus[gpus[i]] : NULL;
        pai_err_t rc;
        if (uuids && g)
            rc = buf_printf(&b, "%s%s", i ? "," : "", g->uuid);
        else
            rc = buf_printf(&b, "%s%d", i ? "," : "", ordinal ? (int)i : gpus[i]);
        if (rc != PAI_OK)
            break;
    }
    return buf_take(&b);
}

static bool all_have_uuids(const gpu_set_t *set, const int *gpus, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (gpus[i] < 0 || (size_t)gpus[i] >= set->n ||
            !str_has_prefix(set->gpus[gpus[i]].uuid, "GPU-"))
            return false;
    return n > 0;
}

/* AMD: ROCm numbers the GPUs a process can open.  In a container only the
 * task's render nodes exist, and a process task fenced by a devices cgroup
 * opens only its own too, so host indices could name the wrong GPU: ROCr
 * is given the GPUs' UUIDs (exact wherever the task runs), HIP the
 * ordinals of what ROCr then shows, and PAI_AMD_VISIBLE_DEVICES the host
 * indices (OpenPAI's variable, what its job-exporter reads).  Without
 * UUIDs: host indices for a process task, ordinals in a container. */
size_t gpu_task_env(const gpu_set_t *set, const int *gpus, size_t n, bool container, char **out)
{
    size_t k = 0;
    if (set->vendor == GPU_VENDOR_AMD) {
        bool uuids = all_have_uuids(set, gpus, n);
        char *host = list_of(set, gpus, n, false, false);
        char *rocr = list_of(set, gpus, n, uuids, container && !uuids);
        char *hip = list_of(set, gpus, n, false, uuids || container);
        /* -1: no GPU (an empty list would mean all of them to some ROCm releases) */
        out[k++] = str_printf("HIP_VISIBLE_DEVICES=%s", n ? hip : "-1");
        out[k++] = str_printf("ROCR_VISIBLE_DEVICES=%s", n ? rocr : "-1");
        out[k++] = str_printf("PAI_AMD_VISIBLE_DEVICES=%s", host);
        free(host), free(rocr), free(hip);
    } else if (set->vendor == GPU_VENDOR_CLASS && *set->env_name) {
        char *host = list_of(set, gpus, n, false, false);
        out[k++] = str_printf("%s=%s", set->env_name, host);
        free(host);
    }
    return k;
}
