/*
 * agentwire_dump.c - the agent's request as text, its node's description
 * encoded once and reused while it is unchanged (see agentwire.h,
 * "the agent's request as text").
 *
 * Every sync carries the node's whole description (GPUs, topology,
 * addresses: about 1.5 KiB and 150 jansson values for 8 GPUs), and
 * building and dumping it was most of what a sync cost the agent.  Only
 * "health" (load, free disk, tasks) changes from one sync to the next, so
 * the text before it is kept with a copy of the fields it was made from,
 * and the request is written around it: the version, the text, "health",
 * the seq, the wait and the task reports (written directly when their
 * strings need no escape, else through jansson).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/util.h"
#include "wire/agentwire.h"

static bool str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool gpu_same(const agentwire_gpu_t *a, const agentwire_gpu_t *b)
{
    return a->index == b->index && a->memory_mb == b->memory_mb && a->healthy == b->healthy &&
           a->has_utilization == b->has_utilization &&
           (!a->has_utilization || a->utilization == b->utilization) &&
           str_same(a->uuid, b->uuid) && str_same(a->model, b->model) &&
           str_same(a->pci_bus, b->pci_bus);
}

/* Whether a and b encode the same description (health aside). */
static bool node_same(const agentwire_node_t *a, const agentwire_node_t *b)
{
    bool topo_a = a->topology && a->ngpus, topo_b = b->topology && b->ngpus;
    if (a->cpus != b->cpus || a->memory_mb != b->memory_mb || a->hollow != b->hollow ||
        a->ngpus != b->ngpus || topo_a != topo_b || !str_same(a->name, b->name) ||
        !str_same(a->address, b->address) || !str_same(a->boot_id, b->boot_id) ||
        !str_same(a->gpu_model, b->gpu_model) || !str_same(a->runtime, b->runtime) ||
        !str_same(a->log_url, b->log_url) || !str_same(a->gpu_backend, b->gpu_backend))
        return false;
    for (size_t i = 0; i < a->ngpus; i++)
        if (!gpu_same(&a->gpus[i], &b->gpus[i]))
            return false;
    return !topo_a || memcmp(a->topology, b->topology, a->ngpus * a->ngpus * sizeof(int)) == 0;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void key_free(agentwire_node_t *k)
{
    free((char *)k->name);
    free((char *)k->address);
    free((char *)k->boot_id);
    free((char *)k->gpu_model);
    free((char *)k->runtime);
    free((char *)k->log_url);
    free((char *)k->gpu_backend);
    for (size_t i = 0; k->gpus && i < k->ngpus; i++) {
        free((char *)k->gpus[i].uuid);
        free((char *)k->gpus[i].model);
        free((char *)k->gpus[i].pci_bus);
    }
    free(k->gpus);
    free(k->topology);
    memset(k, 0, sizeof(*k));
}

/* A deep copy of n's description (its health left out). */
static void key_copy(agentwire_node_t *k, const agentwire_node_t *n)
{
    *k = *n;
    k->health = (agentwire_health_t){0};
    k->name = dup_or_null(n->name);
    k->address = dup_or_null(n->address);
    k->boot_id = dup_or_null(n->boot_id);
    k->gpu_model = dup_or_null(n->gpu_model);
    k->runtime = dup_or_null(n->runtime);
    k->log_url = dup_or_null(n->log_url);
    k->gpu_backend = dup_or_null(n->gpu_backend);
    k->gpus = xcalloc(n->ngpus + 1, sizeof(*k->gpus));
    for (size_t i = 0; i < n->ngpus; i++) {
        k->gpus[i] = n->gpus[i];
        k->gpus[i].uuid = dup_or_null(n->gpus[i].uuid);
        k->gpus[i].model = dup_or_null(n->gpus[i].model);
        k->gpus[i].pci_bus = dup_or_null(n->gpus[i].pci_bus);
    }
    k->topology = NULL;
    if (n->topology && n->ngpus) {
        k->topology = xcalloc(n->ngpus * n->ngpus, sizeof(int));
        memcpy(k->topology, n->topology, n->ngpus * n->ngpus * sizeof(int));
    }
}

void agentwire_node_cache_free(agentwire_node_cache_t *c)
{
    free(c->text);
    free(c->same);
    key_free(&c->key);
    memset(c, 0, sizeof(*c));
}

void agentwire_node_cache_ack(agentwire_node_cache_t *c, const char *node_desc)
{
    str_copy(c->acked, node_desc ? node_desc : "", sizeof(c->acked));
}

/* The description's digest (version 4's "desc"): FNV-1a 64 of its text,
 * 16 hex digits.  Not a secret or a check against forgery (the agent's
 * credential is): a name for what the server holds. */
static void digest(const char *text, size_t len, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)text[i]) * 0x100000001b3ull;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* Version 4's short form, {"name","same"} without its closing '}'. */
static char *same_text(const char *name, const char *desc, size_t *len)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name ? name : ""));
    json_object_set_new(o, "same", json_string(desc));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    *len = text ? strlen(text) - 1 : 0;
    return text;
}

/* Encode n's description into the cache unless it holds it already. */
static bool cache_refresh(agentwire_node_cache_t *c, const agentwire_node_t *n)
{
    if (c->text && node_same(&c->key, n))
        return true;
    agentwire_node_t bare = *n;
    bare.health.present = false;
    bare.desc = bare.same = NULL;
    json_t *o = agentwire_node_encode(&bare);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char desc[17], *same = NULL;
    size_t same_len = 0;
    if (text) {
        digest(text, strlen(text) - 1, desc);
        same = same_text(n->name, desc, &same_len);
    }
    if (!same) {
        free(text);
        return false;
    }
    int64_t encodes = c->encodes;
    char acked[sizeof(c->acked)];
    memcpy(acked, c->acked, sizeof(acked));
    agentwire_node_cache_free(c);
    c->text = text;
    c->len = strlen(text) - 1; /* without the closing '}' */
    c->same = same;
    c->same_len = same_len;
    memcpy(c->desc, desc, sizeof(c->desc));
    memcpy(c->acked, acked, sizeof(c->acked));
    c->encodes = encodes + 1;
    key_copy(&c->key, n);
    return true;
}

/* A real as jansson writes it (%.17g, ".0" added to a whole number, the
 * exponent without '+' or leading zeros), so the bytes are those of
 * agentwire_req_encode's. */
static pai_err_t put_real(buf_t *b, double v)
{
    char s[40];
    int k = snprintf(s, sizeof(s), "%.17g", v);
    if (k < 0 || (size_t)k >= sizeof(s) - 2)
        return PAI_E_INVALID;
    char *e = strchr(s, 'e');
    if (!e && !strchr(s, '.'))
        memcpy(s + k, ".0", 3);
    if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            from = ++to;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
    }
    return buf_puts(b, s);
}

/* key (with its quotes and colon, after a comma) and an integer, as
 * jansson writes it ("%lld"), without a printf: a sync writes a dozen. */
static pai_err_t put_int(buf_t *b, const char *key, long long v)
{
    char s[24], *p = s + sizeof(s);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    pai_err_t rc = buf_puts(b, key);
    return rc == PAI_OK ? buf_append(b, p, (size_t)(s + sizeof(s) - p)) : rc;
}

/* The health; its load's text kept in c while the load is the same (it
 * is read at most once a second: a "%.17g" per sync otherwise). */
static pai_err_t put_health(buf_t *b, const agentwire_health_t *h, agentwire_node_cache_t *c)
{
    pai_err_t rc = buf_puts(b, h->ok ? ",\"health\":{\"ok\":true" : ",\"health\":{\"ok\":false");
    if (rc == PAI_OK && isfinite(h->load1)) { /* jansson refuses others: no key */
        rc = buf_puts(b, ",\"load1\":");
        if (rc == PAI_OK && (!c->load_text[0] || c->load1 != h->load1)) {
            buf_t t;
            buf_init(&t, sizeof(c->load_text) - 1);
            c->load_text[0] = '\0';
            if (put_real(&t, h->load1) == PAI_OK && t.len < sizeof(c->load_text)) {
                memcpy(c->load_text, t.data, t.len);
                c->load_text[t.len] = '\0';
                c->load1 = h->load1;
            }
            buf_free(&t);
        }
        rc = rc != PAI_OK      ? rc
             : c->load_text[0] ? buf_puts(b, c->load_text)
                               : put_real(b, h->load1);
    }
    if (rc == PAI_OK)
        rc = put_int(b, ",\"disk_free_mb\":", (long long)h->disk_free_mb);
    if (rc == PAI_OK)
        rc = put_int(b, ",\"gpus_healthy\":", (long long)h->gpus_healthy);
    if (rc == PAI_OK)
        rc = put_int(b, ",\"tasks\":", (long long)h->tasks);
    return rc == PAI_OK ? buf_puts(b, "}") : rc;
}

/* Whether s goes between quotes as it is: printable ASCII without '"' or
 * '\\', which jansson writes unchanged. */
static bool plain(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

/* One report as agentwire_report_encode's JSON: written directly when its
 * strings are plain (attempt ids always are; a diagnostics tail rarely
 * is), else through jansson. */
static pai_err_t put_report(buf_t *b, const agentwire_report_t *t)
{
    const char *id = t->attempt_id ? t->attempt_id : "";
    if (!plain(id) || !plain(t->diagnostics)) {
        json_t *o = agentwire_report_encode(t);
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        pai_err_t rc = s ? buf_puts(b, s) : PAI_E_NOMEM;
        free(s);
        return rc;
    }
    const char *state = agentwire_state_name(t->state);
    pai_err_t rc = buf_puts(b, "{\"attempt_id\":\"");
    if (rc == PAI_OK)
        rc = buf_puts(b, id);
    if (rc == PAI_OK)
        rc = buf_puts(b, "\",\"state\":\"");
    if (rc == PAI_OK)
        rc = buf_puts(b, state);
    if (t->state == AGENTWIRE_STARTING || t->state == AGENTWIRE_RUNNING) {
        if (rc == PAI_OK)
            rc = put_int(b, "\",\"pid\":", (long long)t->pid);
        if (rc == PAI_OK)
            rc = put_int(b, ",\"started_ms\":", (long long)t->started_ms);
        return rc == PAI_OK ? buf_puts(b, "}") : rc;
    }
    if (rc == PAI_OK)
        rc = put_int(b, "\",\"exit_code\":", t->exit_code);
    if (rc == PAI_OK)
        rc = buf_puts(b, t->oom ? ",\"oom\":true" : ",\"oom\":false");
    if (rc == PAI_OK)
        rc = put_int(b, ",\"signal\":", t->signal);
    if (rc == PAI_OK)
        rc = put_int(b, ",\"started_ms\":", (long long)t->started_ms);
    if (rc == PAI_OK)
        rc = put_int(b, ",\"finished_ms\":", (long long)t->finished_ms);
    if (rc == PAI_OK && t->diagnostics) {
        rc = buf_puts(b, ",\"diagnostics\":\"");
        if (rc == PAI_OK)
            rc = buf_puts(b, t->diagnostics);
        if (rc == PAI_OK)
            rc = buf_puts(b, "\"");
    }
    return rc == PAI_OK ? buf_puts(b, "}") : rc;
}

/* The epoch the agent echoes, as is: one that needs escaping is none a
 * server of ours sends (agentwire_resp_decode refuses it), and is left out
 * (the server then answers with the whole desired set). */
static pai_err_t put_epoch(buf_t *b, const char *epoch)
{
    return plain(epoch) ? buf_printf(b, ",\"epoch\":\"%s\"", epoch) : PAI_OK;
}

static pai_err_t put_tasks(buf_t *b, const agentwire_req_t *m)
{
    pai_err_t rc = buf_puts(b, "[");
    for (size_t i = 0; rc == PAI_OK && i < m->ntasks; i++) {
        if (i)
            rc = buf_puts(b, ",");
        if (rc == PAI_OK)
            rc = put_report(b, &m->tasks[i]);
    }
    return rc == PAI_OK ? buf_puts(b, "]") : rc;
}

pai_err_t agentwire_req_dump(const agentwire_req_t *m, agentwire_node_cache_t *c, buf_t *out)
{
    if (!cache_refresh(c, &m->node))
        return PAI_E_NOMEM;
    int version = m->version ? m->version : AGENTWIRE_VERSION;
    pai_err_t rc =
        m->accept > version && version >= 4
            ? buf_printf(out, "{\"version\":%d,\"accept\":%d,\"node\":", version, m->accept)
            : buf_printf(out, "{\"version\":%d,\"node\":", version);
    bool same = version >= 4 && strcmp(c->acked, c->desc) == 0;
    if (rc == PAI_OK)
        rc = same ? buf_append(out, c->same, c->same_len) : buf_append(out, c->text, c->len);
    if (rc == PAI_OK && version >= 4 && !same)
        rc = buf_printf(out, ",\"desc\":\"%s\"", c->desc);
    if (rc == PAI_OK && m->node.health.present)
        rc = put_health(out, &m->node.health, c);
    if (rc == PAI_OK)
        rc = buf_printf(out, "},\"known_seq\":%llu", (unsigned long long)m->known_seq);
    if (rc == PAI_OK && m->epoch && version >= 3)
        rc = put_epoch(out, m->epoch);
    if (rc == PAI_OK)
        rc = buf_printf(out, ",\"wait_ms\":%lld%s,\"tasks\":", (long long)m->wait_ms,
                        m->hold_acks ? ",\"hold_acks\":true" : "");
    if (rc == PAI_OK)
        rc = put_tasks(out, m);
    return rc == PAI_OK ? buf_puts(out, "}") : rc;
}

char *agentwire_req_dumps(const agentwire_req_t *m, agentwire_node_cache_t *c, size_t *len)
{
    buf_t b;
    buf_init(&b, SIZE_MAX / 2); /* as json_dumps: the server judges the size */
    *len = 0;
    if (agentwire_req_dump(m, c, &b) != PAI_OK) {
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? buf_take(&b) : xstrdup("");
}
