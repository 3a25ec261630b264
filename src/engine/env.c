/*
 * env.c - the environment of a task (OpenPAI's PAI_* variables),
 * computed by the server from the placement of every task of the attempt,
 * so each task sees its peers' addresses and ports.
 *
 * Current names: PAI_JOB_NAME, PAI_USER_NAME, PAI_CURRENT_TASK_ROLE_NAME,
 * PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX, PAI_TASK_INDEX,
 * PAI_TASK_ROLE_LIST, PAI_TASK_ROLE_TASK_COUNT_<role>,
 * PAI_HOST_IP_<role>_<i>, PAI_PORT_LIST_<role>_<i>_<label>,
 * PAI_CONTAINER_HOST_IP, PAI_CONTAINER_HOST_PORT_LIST,
 * PAI_CONTAINER_HOST_<label>_PORT_LIST, PAI_RESOURCE_<role>
 * ("gpu,cpu,memoryMB,shmMB"), NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES
 * (the node's GPU indices, or "none").  Back-compatible names of OpenPAI's
 * v1 runtime: PAI_TASK_ROLE_COUNT, PAI_TASK_ROLE_NAME, PAI_TASK_ROLE_INDEX,
 * PAI_CURRENT_CONTAINER_IP, PAI_CURRENT_CONTAINER_PORT,
 * PAI_CONTAINER_HOST_PORT, PAI_CONTAINER_SSH_PORT,
 * PAI_TASK_ROLE_<role>_HOST_LIST ("ip:port,..." with the first port),
 * PAI_JOB_VC_NAME, PAI_GPU_COUNT.
 */
#include "engine/env.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"

/* Append; a value that outgrows its (large) cap is cut, which is harmless
 * for an environment variable. */
static void bput(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bput(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (buf_vprintf(b, fmt, ap) != PAI_OK)
        b->cap = b->len; /* stop appending */
    va_end(ap);
}

static void setv(json_t *env, const char *fmt_key, const char *a, const char *b, const char *value)
{
    char key[512];
    snprintf(key, sizeof key, fmt_key, a ? a : "", b ? b : "");
    json_object_set_new(env, key, json_string(value));
}

static void seti(json_t *env, const char *key, long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", v);
    json_object_set_new(env, key, json_string(buf));
}

/* "p1,p2" for the ports of label index p of a placed task. */
static void port_list(const lc_role_t *r, const lc_task_attempt_t *ta, int p, buf_t *out)
{
    int k = 0;
    for (int q = 0; q < p; q++)
        k += r->ports[q].count;
    for (int c = 0; c < r->ports[p].count && k + c < ta->nports; c++)
        bput(out, "%s%d", c ? "," : "", ta->ports[k + c]);
}

static void peer_vars(json_t *env, const lc_job_t *job, int role)
{
    const lc_role_t *r = &job->roles[role];
    buf_t hosts;
    buf_init(&hosts, 1u << 20);
    for (int i = 0; i < r->instances; i++) {
        const lc_task_attempt_t *ta = lc_task_current(job, role, i);
        if (!ta)
            continue;
        char key[512], idx[16];
        snprintf(idx, sizeof idx, "%d", i);
        snprintf(key, sizeof key, "PAI_HOST_IP_%s_%d", r->name, i);
        json_object_set_new(env, key, json_string(ta->ip ? ta->ip : ""));
        for (int p = 0; p < r->nports; p++) {
            buf_t ports;
            buf_init(&ports, 4096);
            port_list(r, ta, p, &ports);
            snprintf(key, sizeof key, "PAI_PORT_LIST_%s_%d_%s", r->name, i, r->ports[p].label);
            json_object_set_new(env, key, json_string(buf_str(&ports)));
            buf_free(&ports);
        }
        bput(&hosts, "%s%s:%d", i ? "," : "", ta->ip ? ta->ip : "", ta->nports ? ta->ports[0] : 0);
    }
    setv(env, "PAI_TASK_ROLE_%s_HOST_LIST", r->name, NULL, buf_str(&hosts));
    buf_free(&hosts);
}

static void self_ports(json_t *env, const lc_role_t *r, const lc_task_attempt_t *ta)
{
    buf_t all;
    buf_init(&all, 1u << 16);
    for (int p = 0; p < r->nports; p++) {
        buf_t one;
        buf_init(&one, 4096);
        port_list(r, ta, p, &one);
        bput(&all, "%s%s:%s", p ? ";" : "", r->ports[p].label, buf_str(&one));
        setv(env, "PAI_CONTAINER_HOST_%s_PORT_LIST", r->ports[p].label, NULL, buf_str(&one));
        if (strcmp(r->ports[p].label, "ssh") == 0)
            setv(env, "PAI_CONTAINER_SSH_PORT", NULL, NULL, buf_str(&one));
        buf_free(&one);
    }
    setv(env, "PAI_CONTAINER_HOST_PORT_LIST", NULL, NULL, buf_str(&all));
    buf_free(&all);
    char first[16] = "";
    if (ta->nports)
        snprintf(first, sizeof first, "%d", ta->ports[0]);
    setv(env, "PAI_CONTAINER_HOST_PORT", NULL, NULL, first);
    setv(env, "PAI_CURRENT_CONTAINER_PORT", NULL, NULL, first);
}

static void gpu_vars(json_t *env, uint64_t mask)
{
    char buf[256] = "";
    size_t len = 0;
    int n = 0;
    for (int g = 0; g < 64; g++)
        if (mask & (1ull << g)) {
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", n ? "," : "", g);
            n++;
        }
    const char *v = n ? buf : "none";
    setv(env, "NVIDIA_VISIBLE_DEVICES", NULL, NULL, v);
    setv(env, "CUDA_VISIBLE_DEVICES", NULL, NULL, n ? buf : "");
    seti(env, "PAI_GPU_COUNT", n);
}

json_t *engine_task_env(const lc_job_t *job, int role, int index)
{
    const lc_task_attempt_t *ta = lc_task_current(job, role, index);
    if (!ta)
        return NULL;
    json_t *env = json_object();
    const lc_role_t *r = &job->roles[role];
    char user[PAI_ENV_NAME_MAX];
    snprintf(user, sizeof user, "%.*s", (int)job->user_len, job->name);
    setv(env, "PAI_JOB_NAME", NULL, NULL, job->name);
    setv(env, "PAI_USER_NAME", NULL, NULL, user);
    setv(env, "PAI_JOB_VC_NAME", NULL, NULL, job->vc);
    setv(env, "PAI_CURRENT_TASK_ROLE_NAME", NULL, NULL, r->name);
    setv(env, "PAI_TASK_ROLE_NAME", NULL, NULL, r->name);
    seti(env, "PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX", index);
    seti(env, "PAI_TASK_INDEX", index);
    seti(env, "PAI_TASK_ROLE_INDEX", index);
    seti(env, "PAI_TASK_ROLE_COUNT", job->nroles);
    buf_t list;
    buf_init(&list, 1u << 16);
    for (int k = 0; k < job->nroles; k++) {
        const lc_role_t *rk = &job->roles[k];
        bput(&list, "%s%s", k ? "," : "", rk->name);
        char key[512], val[96];
        snprintf(key, sizeof key, "PAI_TASK_ROLE_TASK_COUNT_%s", rk->name);
        seti(env, key, rk->instances);
        snprintf(key, sizeof key, "PAI_RESOURCE_%s", rk->name);
        snprintf(val, sizeof val, "%d,%d,%d,%d", rk->gpu, rk->cpu, rk->mem_mb, rk->shm_mb);
        json_object_set_new(env, key, json_string(val));
        peer_vars(env, job, k);
    }
    setv(env, "PAI_TASK_ROLE_LIST", NULL, NULL, buf_str(&list));
    buf_free(&list);
    setv(env, "PAI_CONTAINER_HOST_IP", NULL, NULL, ta->ip ? ta->ip : "");
    setv(env, "PAI_CURRENT_CONTAINER_IP", NULL, NULL, ta->ip ? ta->ip : "");
    self_ports(env, r, ta);
    gpu_vars(env, ta->gpus);
    return env;
}
