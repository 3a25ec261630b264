/*
 * agentwire_env.c - a task's OpenPAI environment (PAI_* variables,
 * visible GPUs) from its job's placement (agentwire_jobenv_t): the one
 * code both sides run.  The server (engine/env.c) fills the placement from
 * its job and sends the variables (version 4's "env") or the placement
 * itself (version 5's "jobenv"), from which the agent's decoder derives
 * the same variables here (agentwire_read.c).
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
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "wire/agentwire.h"

#define USER_MAX 256 /* PAI_USER_NAME: at most 255 bytes of the owner */

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

/* Where the variables go: name/value pairs in order, each NUL-terminated. */
typedef struct {
    text_t pairs;
    size_t n;
} env_out_t;

static void setv(env_out_t *env, const char *key, const char *value)
{
    t_piece(&env->pairs, key, strlen(key) + 1);
    t_piece(&env->pairs, value, strlen(value) + 1);
    env->n++;
}

static void seti(env_out_t *env, const char *key, long v)
{
    char num[24];
    setv(env, key, dec(num, v));
}

static const char *ip_of(const agentwire_host_t *h)
{
    return h->ip ? h->ip : "";
}

/* "p1,p2" for the ports of label index p of a placed instance. */
static void port_list(const agentwire_jobenv_t *j, const agentwire_jobrole_t *r,
                      const agentwire_host_t *h, int p, text_t *out)
{
    int k = 0;
    for (int q = 0; q < p; q++)
        k += j->portdefs[r->port0 + (size_t)q].count;
    for (int c = 0; c < j->portdefs[r->port0 + (size_t)p].count && k + c < h->nports; c++)
        t_sep_int(out, c ? "," : "", j->ports[h->port0 + (size_t)(k + c)]);
}

static void peer_vars(env_out_t *env, const agentwire_jobenv_t *j, const agentwire_jobrole_t *r)
{
    char key[512], idx[24];
    text_t hosts;
    t_init(&hosts, 1u << 20);
    for (int i = 0; i < r->instances; i++) {
        const agentwire_host_t *h = &j->hosts[r->host0 + (size_t)i];
        if (!h->placed)
            continue;
        const char *si = dec(idx, i), *ip = ip_of(h);
        setv(env, NAME(key, "PAI_HOST_IP_", r->name, "_", si), ip);
        for (int p = 0; p < r->nports; p++) {
            text_t ports;
            t_init(&ports, 4096);
            port_list(j, r, h, p, &ports);
            setv(env,
                 NAME(key, "PAI_PORT_LIST_", r->name, "_", si, "_",
                      j->portdefs[r->port0 + (size_t)p].label),
                 ports.data);
            t_free(&ports);
        }
        /* "ip:port" (the first port, 0 without one), one piece */
        text_t one;
        t_init(&one, (size_t)-1);
        t_piece(&one, i ? "," : "", i ? 1 : 0);
        t_piece(&one, ip, strlen(ip));
        t_sep_int(&one, ":", h->nports ? j->ports[h->port0] : 0);
        t_piece(&hosts, one.data, one.len);
        t_free(&one);
    }
    setv(env, NAME(key, "PAI_TASK_ROLE_", r->name, "_HOST_LIST"), hosts.data);
    t_free(&hosts);
}

static void self_ports(env_out_t *env, const agentwire_jobenv_t *j, const agentwire_jobrole_t *r,
                       const agentwire_host_t *h)
{
    char key[512];
    text_t all;
    t_init(&all, 1u << 16);
    for (int p = 0; p < r->nports; p++) {
        const char *label = j->portdefs[r->port0 + (size_t)p].label;
        text_t one, piece;
        t_init(&one, 4096);
        port_list(j, r, h, p, &one);
        t_init(&piece, (size_t)-1); /* "label:p1,p2", ";" before all but the first */
        t_piece(&piece, ";", p ? 1 : 0);
        t_piece(&piece, label, strlen(label));
        t_piece(&piece, ":", 1);
        t_piece(&piece, one.data, one.len);
        t_piece(&all, piece.data, piece.len);
        t_free(&piece);
        setv(env, NAME(key, "PAI_CONTAINER_HOST_", label, "_PORT_LIST"), one.data);
        if (strcmp(label, "ssh") == 0)
            setv(env, "PAI_CONTAINER_SSH_PORT", one.data);
        t_free(&one);
    }
    setv(env, "PAI_CONTAINER_HOST_PORT_LIST", all.data);
    t_free(&all);
    char num[24];
    const char *first = h->nports ? dec(num, j->ports[h->port0]) : "";
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

static void task_env(const char *job, const char *owner, size_t owner_len,
                     const agentwire_jobenv_t *j, env_out_t *env)
{
    const agentwire_jobrole_t *r = &j->roles[j->role];
    const agentwire_host_t *self = &j->hosts[r->host0 + (size_t)j->index];
    size_t ulen = owner_len < USER_MAX - 1 ? owner_len : USER_MAX - 1;
    char user[USER_MAX];
    memcpy(user, owner, ulen);
    user[ulen] = '\0';
    setv(env, "PAI_JOB_NAME", job);
    setv(env, "PAI_USER_NAME", user);
    setv(env, "PAI_JOB_VC_NAME", j->vc ? j->vc : "");
    setv(env, "PAI_CURRENT_TASK_ROLE_NAME", r->name);
    setv(env, "PAI_TASK_ROLE_NAME", r->name);
    seti(env, "PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX", j->index);
    seti(env, "PAI_TASK_INDEX", j->index);
    seti(env, "PAI_TASK_ROLE_INDEX", j->index);
    seti(env, "PAI_TASK_ROLE_COUNT", (long)j->nroles);
    text_t list;
    t_init(&list, 1u << 16);
    for (size_t k = 0; k < j->nroles; k++) {
        const agentwire_jobrole_t *rk = &j->roles[k];
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
        peer_vars(env, j, rk);
    }
    setv(env, "PAI_TASK_ROLE_LIST", list.data);
    t_free(&list);
    setv(env, "PAI_CONTAINER_HOST_IP", ip_of(self));
    setv(env, "PAI_CURRENT_CONTAINER_IP", ip_of(self));
    self_ports(env, j, r, self);
    gpu_vars(env, j->gpus);
}

char *agentwire_env_pairs(const char *job, const char *user, size_t user_len,
                          const agentwire_jobenv_t *j, size_t *len, size_t *n)
{
    env_out_t env = {0};
    t_init(&env.pairs, (size_t)-1);
    task_env(job ? job : "", user ? user : "", user ? user_len : 0, j, &env);
    char *out;
    if (env.pairs.data == env.pairs.local) {
        out = xmalloc(env.pairs.len + 1);
        memcpy(out, env.pairs.data, env.pairs.len + 1);
    } else {
        out = env.pairs.data;
    }
    *len = env.pairs.len;
    *n = env.n;
    return out;
}

size_t agentwire_env_count(const agentwire_jobenv_t *j)
{
    const agentwire_jobrole_t *r = &j->roles[j->role];
    size_t n = 9 + 3 + 3 + 3 + (size_t)r->nports; /* fixed ones, self_ports', gpu_vars' */
    for (int p = 0; p < r->nports; p++)
        n += strcmp(j->portdefs[r->port0 + (size_t)p].label, "ssh") == 0;
    for (size_t k = 0; k < j->nroles; k++) {
        const agentwire_jobrole_t *rk = &j->roles[k];
        n += 3;
        for (int i = 0; i < rk->instances; i++)
            n += j->hosts[rk->host0 + (size_t)i].placed ? 1 + (size_t)rk->nports : 0;
    }
    return n;
}

/* Whether [at, at + n) lies in an array of len items. */
static bool in_range(size_t at, long n, size_t len)
{
    return n >= 0 && at <= len && (size_t)n <= len - at;
}

const char *agentwire_jobenv_check(const agentwire_jobenv_t *j)
{
    if (j->role < 0 || (size_t)j->role >= j->nroles)
        return "role is not one of roles";
    for (size_t k = 0; k < j->nroles; k++) {
        const agentwire_jobrole_t *r = &j->roles[k];
        if (!r->name || !in_range(r->port0, r->nports, j->nportdefs) ||
            !in_range(r->host0, r->instances, j->nhosts))
            return "roles: a role's ports or hosts are out of range";
        for (int p = 0; p < r->nports; p++)
            if (!j->portdefs[r->port0 + (size_t)p].label)
                return "roles: a port label is missing";
        for (int i = 0; i < r->instances; i++) {
            const agentwire_host_t *h = &j->hosts[r->host0 + (size_t)i];
            if (h->placed && !in_range(h->port0, h->nports, j->nports))
                return "roles: a host's ports are out of range";
        }
    }
    const agentwire_jobrole_t *r = &j->roles[j->role];
    if (j->index < 0 || j->index >= r->instances || !j->hosts[r->host0 + (size_t)j->index].placed)
        return "index is not a placed instance of the task's role";
    return NULL;
}

void agentwire_jobenv_free(agentwire_jobenv_t *j)
{
    if (!j)
        return;
    free(j->roles);
    free(j->portdefs);
    free(j->hosts);
    free(j->ports);
    free(j);
}

agentwire_env_t *agentwire_env_split(const char *text, size_t n)
{
    agentwire_env_t *env = xcalloc(n + 1, sizeof(*env));
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        env[i].name = p;
        p += strlen(p) + 1;
        env[i].value = p;
        p += strlen(p) + 1;
    }
    return env;
}
