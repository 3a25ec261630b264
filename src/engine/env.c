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

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* A value or a name assembled from pieces, without printf.  A piece that
 * would pass the cap is dropped and so is everything after it (a value
 * that outgrows its large cap is cut, which is harmless for an environment
 * variable); a name is cut at the cap instead. */
typedef struct {
    char *data; /* NUL-terminated; local until it outgrows it */
    size_t len, alloc, cap;
    bool full;
    char local[256];
} text_t;

static void t_init(text_t *t, size_t cap)
{
    t->data = t->local;
    t->data[0] = '\0';
    t->len = 0;
    t->alloc = sizeof t->local;
    t->cap = cap;
    t->full = false;
}

static void t_free(text_t *t)
{
    if (t->data != t->local)
        free(t->data);
}

static void t_grow(text_t *t, size_t need)
{
    size_t a = t->alloc;
    while (a < need)
        a *= 2;
    if (t->data == t->local) {
        char *d = xmalloc(a);
        memcpy(d, t->local, t->len + 1);
        t->data = d;
    } else {
        t->data = xrealloc(t->data, a);
    }
    t->alloc = a;
}

/* Append one piece of n bytes, all or none. */
static void t_piece(text_t *t, const char *s, size_t n)
{
    if (t->full || t->len + n > t->cap) {
        t->full = true;
        return;
    }
    if (t->len + n + 1 > t->alloc)
        t_grow(t, t->len + n + 1);
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

/* The decimal digits of v at the end of buf (24 bytes); returns the start. */
static char *dec(char *buf, long v)
{
    char *p = buf + 23;
    unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
    *p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

/* Append sep (may be "") then the decimal v, as one piece. */
static void t_sep_int(text_t *t, const char *sep, long v)
{
    char num[24], piece[32];
    const char *d = dec(num, v);
    size_t ns = strlen(sep), nd = strlen(d);
    memcpy(piece, sep, ns);
    memcpy(piece + ns, d, nd);
    t_piece(t, piece, ns + nd);
}

/* A name: the pieces (NULL-terminated list) joined, cut at 511 bytes. */
static const char *name_of(char key[512], const char *const *parts)
{
    size_t len = 0;
    for (; *parts; parts++) {
        size_t n = strlen(*parts);
        if (n > 511 - len)
            n = 511 - len;
        memcpy(key + len, *parts, n);
        len += n;
    }
    key[len] = '\0';
    return key;
}

#define NAME(key, ...) name_of(key, (const char *const[]){__VA_ARGS__, NULL})

/* Where the variables go: a jansson object (engine_task_env: a name set
 * again keeps its first place and takes the last value), or name/value
 * pairs in order, each NUL-terminated (engine_task_env_pairs). */
typedef struct {
    json_t *obj;
    text_t pairs;
    size_t n;
} env_out_t;

static void setv(env_out_t *env, const char *key, const char *value)
{
    if (env->obj) {
        json_object_set_new(env->obj, key, json_string(value));
        return;
    }
    t_piece(&env->pairs, key, strlen(key) + 1);
    t_piece(&env->pairs, value, strlen(value) + 1);
    env->n++;
}

static void seti(env_out_t *env, const char *key, long v)
{
    char num[24];
    setv(env, key, dec(num, v));
}

/* "p1,p2" for the ports of label index p of a placed task. */
static void port_list(const lc_role_t *r, const lc_task_attempt_t *ta, int p, text_t *out)
{
    int k = 0;
    for (int q = 0; q < p; q++)
        k += r->ports[q].count;
    for (int c = 0; c < r->ports[p].count && k + c < ta->nports; c++)
        t_sep_int(out, c ? "," : "", ta->ports[k + c]);
}

static void peer_vars(env_out_t *env, const lc_job_t *job, int role)
{
    const lc_role_t *r = &job->roles[role];
    char key[512], idx[24];
    text_t hosts;
    t_init(&hosts, 1u << 20);
    for (int i = 0; i < r->instances; i++) {
        const lc_task_attempt_t *ta = lc_task_current(job, role, i);
        if (!ta)
            continue;
        const char *si = dec(idx, i), *ip = ta->ip ? ta->ip : "";
        setv(env, NAME(key, "PAI_HOST_IP_", r->name, "_", si), ip);
        for (int p = 0; p < r->nports; p++) {
            text_t ports;
            t_init(&ports, 4096);
            port_list(r, ta, p, &ports);
            setv(env, NAME(key, "PAI_PORT_LIST_", r->name, "_", si, "_", r->ports[p].label),
                 ports.data);
            t_free(&ports);
        }
        /* "ip:port" (the first port, 0 without one), one piece */
        text_t one;
        t_init(&one, (size_t)-1);
        t_piece(&one, i ? "," : "", i ? 1 : 0);
        t_piece(&one, ip, strlen(ip));
        t_sep_int(&one, ":", ta->nports ? ta->ports[0] : 0);
        t_piece(&hosts, one.data, one.len);
        t_free(&one);
    }
    setv(env, NAME(key, "PAI_TASK_ROLE_", r->name, "_HOST_LIST"), hosts.data);
    t_free(&hosts);
}

static void self_ports(env_out_t *env, const lc_role_t *r, const lc_task_attempt_t *ta)
{
    char key[512];
    text_t all;
    t_init(&all, 1u << 16);
    for (int p = 0; p < r->nports; p++) {
        text_t one, piece;
        t_init(&one, 4096);
        port_list(r, ta, p, &one);
        t_init(&piece, (size_t)-1); /* "label:p1,p2", ";" before all but the first */
        t_piece(&piece, ";", p ? 1 : 0);
        t_piece(&piece, r->ports[p].label, strlen(r->ports[p].label));
        t_piece(&piece, ":", 1);
        t_piece(&piece, one.data, one.len);
        t_piece(&all, piece.data, piece.len);
        t_free(&piece);
        setv(env, NAME(key, "PAI_CONTAINER_HOST_", r->ports[p].label, "_PORT_LIST"), one.data);
        if (strcmp(r->ports[p].label, "ssh") == 0)
            setv(env, "PAI_CONTAINER_SSH_PORT", one.data);
        t_free(&one);
    }
    setv(env, "PAI_CONTAINER_HOST_PORT_LIST", all.data);
    t_free(&all);
    char num[24];
    const char *first = ta->nports ? dec(num, ta->ports[0]) : "";
    setv(env, "PAI_CONTAINER_HOST_PORT", first);
    setv(env, "PAI_CURRENT_CONTAINER_PORT", first);
}

static void gpu_vars(env_out_t *env, uint64_t mask)
{
    text_t list;
    t_init(&list, 255); /* as many as a 256-byte buffer held */
    int n = 0;
    for (int g = 0; g < 64; g++)
        if (mask & (1ull << g)) {
            t_sep_int(&list, n ? "," : "", g);
            n++;
        }
    setv(env, "NVIDIA_VISIBLE_DEVICES", n ? list.data : "none");
    setv(env, "CUDA_VISIBLE_DEVICES", n ? list.data : "");
    seti(env, "PAI_GPU_COUNT", n);
    t_free(&list);
}

static void task_env(const lc_job_t *job, int role, int index, const lc_task_attempt_t *ta,
                     env_out_t *env)
{
    const lc_role_t *r = &job->roles[role];
    size_t ulen = job->user_len < PAI_ENV_NAME_MAX - 1 ? job->user_len : PAI_ENV_NAME_MAX - 1;
    char user[PAI_ENV_NAME_MAX];
    memcpy(user, job->name, ulen);
    user[ulen] = '\0';
    setv(env, "PAI_JOB_NAME", job->name);
    setv(env, "PAI_USER_NAME", user);
    setv(env, "PAI_JOB_VC_NAME", job->vc);
    setv(env, "PAI_CURRENT_TASK_ROLE_NAME", r->name);
    setv(env, "PAI_TASK_ROLE_NAME", r->name);
    seti(env, "PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX", index);
    seti(env, "PAI_TASK_INDEX", index);
    seti(env, "PAI_TASK_ROLE_INDEX", index);
    seti(env, "PAI_TASK_ROLE_COUNT", job->nroles);
    text_t list;
    t_init(&list, 1u << 16);
    for (int k = 0; k < job->nroles; k++) {
        const lc_role_t *rk = &job->roles[k];
        char key[512];
        text_t piece; /* ",name": one piece */
        t_init(&piece, (size_t)-1);
        t_piece(&piece, ",", k ? 1 : 0);
        t_piece(&piece, rk->name, strlen(rk->name));
        t_piece(&list, piece.data, piece.len);
        t_free(&piece);
        seti(env, NAME(key, "PAI_TASK_ROLE_TASK_COUNT_", rk->name), rk->instances);
        text_t res;
        t_init(&res, 95); /* "gpu,cpu,memoryMB,shmMB" */
        t_sep_int(&res, "", rk->gpu);
        t_sep_int(&res, ",", rk->cpu);
        t_sep_int(&res, ",", rk->mem_mb);
        t_sep_int(&res, ",", rk->shm_mb);
        setv(env, NAME(key, "PAI_RESOURCE_", rk->name), res.data);
        t_free(&res);
        peer_vars(env, job, k);
    }
    setv(env, "PAI_TASK_ROLE_LIST", list.data);
    t_free(&list);
    setv(env, "PAI_CONTAINER_HOST_IP", ta->ip ? ta->ip : "");
    setv(env, "PAI_CURRENT_CONTAINER_IP", ta->ip ? ta->ip : "");
    self_ports(env, r, ta);
    gpu_vars(env, ta->gpus);
}

json_t *engine_task_env(const lc_job_t *job, int role, int index)
{
    const lc_task_attempt_t *ta = lc_task_current(job, role, index);
    if (!ta)
        return NULL;
    env_out_t env = {.obj = json_object()};
    task_env(job, role, index, ta, &env);
    return env.obj;
}

json_t *engine_task_env_pairs(const lc_job_t *job, int role, int index, size_t *n)
{
    const lc_task_attempt_t *ta = lc_task_current(job, role, index);
    *n = 0;
    if (!ta)
        return NULL;
    env_out_t env = {0};
    t_init(&env.pairs, (size_t)-1);
    task_env(job, role, index, ta, &env);
    json_t *pairs = json_stringn_nocheck(env.pairs.data, env.pairs.len);
    t_free(&env.pairs);
    *n = env.n;
    return pairs;
}
