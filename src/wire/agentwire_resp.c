/*
 * agentwire_resp.c - the sync's answer as text (see agentwire.h, "the
 * answer as text"): the bytes json_dumps(agentwire_resp_encode(m),
 * JSON_COMPACT) writes, assembled with common/jtext.h instead of a tree
 * built and dumped.  Every string value and key is escaped by jansson
 * (jtext_strn); a task entry the caller encoded before (agentwire_task_t's
 * text) is appended as it is.
 *
 * Where the tree differs from plain writing, this follows the tree: a
 * string that is not valid UTF-8 has its invalid bytes written as '?'
 * (jstr_lossy in agentwire.c), a "user" that is not valid UTF-8 is left
 * out (json_stringn refuses it), a "cpu" that is not finite is left out
 * (json_real refuses it), and an env or ports object with a repeated or
 * non-UTF-8 key is built by jansson (its last value in the first one's
 * place; such a key left out) and written by jtext_json.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/jtext.h"
#include "common/util.h"
#include "wire/agentwire.h"

/* s (NULL: "") as jstr_lossy's string is dumped. */
static void put_str(jtext_t *t, const char *s)
{
    s = s ? s : "";
    size_t n = strlen(s);
    char *c = agentwire_lossy_copy(s, n);
    jtext_strn(t, c ? c : s, n);
    free(c);
}

/* jstr_lossy's string, for the rare tree (put_tree). */
static json_t *lossy_json(const char *s)
{
    s = s ? s : "";
    size_t n = strlen(s);
    char *c = agentwire_lossy_copy(s, n);
    json_t *j = json_stringn(c ? c : s, n);
    free(c);
    return j;
}

/* A number as agentwire.c's jnum: an integer when whole, else jansson's
 * real; false (nothing written) where json_real refuses it. */
static bool put_num(jtext_t *t, const char *key, size_t keylen, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) {
        jtext_raw(t, key, keylen);
        jtext_int(t, (int64_t)v);
        return true;
    }
    json_t *r = json_real(v);
    if (!r)
        return false;
    jtext_raw(t, key, keylen);
    bool ok = jtext_json(t, r);
    json_decref(r);
    return ok;
}

static void put_ints(jtext_t *t, const int *v, size_t n)
{
    JTEXT_LIT(t, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            JTEXT_LIT(t, ",");
        jtext_int(t, v[i]);
    }
    JTEXT_LIT(t, "]");
}

/* Whether the n keys (each the first field of an element of size bytes)
 * are UTF-8 and none repeats: then the object is written key by key.
 * Repeats are found by a hash table on the stack (names share long
 * prefixes, "PAI_...": comparing every pair cost more than the tree);
 * more keys than it holds are left to the tree. */
#define KEYS_SLOTS 512
static bool keys_plain(const void *base, size_t size, size_t n)
{
    if (n > KEYS_SLOTS / 2)
        return false;
    const char *slot[KEYS_SLOTS];
    memset(slot, 0, sizeof(slot));
    for (size_t i = 0; i < n; i++) {
        const char *k = *(const char *const *)((const char *)base + i * size);
        if (!k)
            return false;
        size_t len = strlen(k);
        if (!agentwire_utf8_valid(k, len))
            return false;
        uint32_t h = 2166136261u;
        for (size_t b = 0; b < len; b++)
            h = (h ^ (unsigned char)k[b]) * 16777619u;
        for (size_t at = h % KEYS_SLOTS;; at = (at + 1) % KEYS_SLOTS) {
            if (!slot[at]) {
                slot[at] = k;
                break;
            }
            if (strcmp(slot[at], k) == 0)
                return false;
        }
    }
    return true;
}

/* A tree's text (the rare objects keys_plain refuses). */
static void put_tree(jtext_t *t, json_t *o)
{
    if (!jtext_json(t, o))
        JTEXT_LIT(t, "{}"); /* not reached: the tree holds checked strings */
    json_decref(o);
}

static void put_env(jtext_t *t, const agentwire_task_t *m)
{
    if (!keys_plain(m->env, sizeof(*m->env), m->nenv)) {
        json_t *o = json_object();
        for (size_t i = 0; i < m->nenv; i++)
            if (m->env[i].name) /* json_object_set_new refuses NULL */
                json_object_set_new(o, m->env[i].name, lossy_json(m->env[i].value));
        put_tree(t, o);
        return;
    }
    JTEXT_LIT(t, "{");
    for (size_t i = 0; i < m->nenv; i++) {
        if (i)
            JTEXT_LIT(t, ",");
        jtext_key(t, m->env[i].name, strlen(m->env[i].name)); /* UTF-8: keys_plain */
        put_str(t, m->env[i].value);
    }
    JTEXT_LIT(t, "}");
}

/* Version 5's "jobenv" (agentwire.c's jobenv_encode, the same bytes). */
static void put_jobenv(jtext_t *t, const agentwire_jobenv_t *j)
{
    JTEXT_LIT(t, "{\"vc\":");
    put_str(t, j->vc);
    JTEXT_LIT(t, ",\"role\":");
    jtext_int(t, j->role);
    JTEXT_LIT(t, ",\"gpus\":[");
    for (int g = 0, n = 0; g < 64; g++)
        if (j->gpus & (1ull << g)) {
            if (n++)
                JTEXT_LIT(t, ",");
            jtext_int(t, g);
        }
    JTEXT_LIT(t, "],\"roles\":[");
    for (size_t k = 0; k < j->nroles; k++) {
        const agentwire_jobrole_t *r = &j->roles[k];
        JTEXT_LIT(t, "{\"name\":");
        put_str(t, r->name);
        JTEXT_LIT(t, ",\"instances\":");
        jtext_int(t, r->instances);
        JTEXT_LIT(t, ",\"resource\":");
        put_ints(t, (const int[]){r->gpu, r->cpu, r->mem_mb, r->shm_mb}, 4);
        JTEXT_LIT(t, ",\"ports\":[");
        for (int p = 0; p < r->nports; p++) {
            const agentwire_portdef_t *d = &j->portdefs[r->port0 + (size_t)p];
            if (p)
                JTEXT_LIT(t, ",");
            JTEXT_LIT(t, "[");
            put_str(t, d->label);
            JTEXT_LIT(t, ",");
            jtext_int(t, d->count);
            JTEXT_LIT(t, "]");
        }
        JTEXT_LIT(t, "],\"hosts\":[");
        for (int i = 0; i < r->instances; i++) {
            const agentwire_host_t *h = &j->hosts[r->host0 + (size_t)i];
            if (i)
                JTEXT_LIT(t, ",");
            if (!h->placed) {
                JTEXT_LIT(t, "null");
                continue;
            }
            JTEXT_LIT(t, "[");
            put_str(t, h->ip);
            for (int p = 0; p < h->nports; p++) {
                JTEXT_LIT(t, ",");
                jtext_int(t, j->ports[h->port0 + (size_t)p]);
            }
            JTEXT_LIT(t, "]");
        }
        JTEXT_LIT(t, "]}");
        if (k + 1 < j->nroles)
            JTEXT_LIT(t, ",");
    }
    JTEXT_LIT(t, "]}");
}

static void put_ports(jtext_t *t, const agentwire_task_t *m)
{
    if (!keys_plain(m->ports, sizeof(*m->ports), m->nports)) {
        json_t *o = json_object();
        for (size_t i = 0; i < m->nports; i++) {
            json_t *a = json_array();
            for (size_t k = 0; k < m->ports[i].n; k++)
                json_array_append_new(a, json_integer(m->ports[i].ports[k]));
            if (m->ports[i].label)
                json_object_set_new(o, m->ports[i].label, a);
            else
                json_decref(a);
        }
        put_tree(t, o);
        return;
    }
    JTEXT_LIT(t, "{");
    for (size_t i = 0; i < m->nports; i++) {
        if (i)
            JTEXT_LIT(t, ",");
        jtext_key(t, m->ports[i].label, strlen(m->ports[i].label));
        put_ints(t, m->ports[i].ports, m->ports[i].n);
    }
    JTEXT_LIT(t, "}");
}

static void put_image(jtext_t *t, const agentwire_task_t *m)
{
    if (!m->image) {
        JTEXT_LIT(t, "null");
        return;
    }
    JTEXT_LIT(t, "{\"uri\":");
    put_str(t, m->image);
    if (m->image_auth) {
        const char *sep = "";
        JTEXT_LIT(t, ",\"auth\":{");
        if (m->image_user) {
            JTEXT_LIT(t, "\"username\":");
            put_str(t, m->image_user);
            sep = ",";
        }
        if (m->image_password) {
            jtext_raw(t, sep, strlen(sep));
            JTEXT_LIT(t, "\"password\":");
            put_str(t, m->image_password);
            sep = ",";
        }
        if (m->image_registry) {
            jtext_raw(t, sep, strlen(sep));
            JTEXT_LIT(t, "\"registryuri\":");
            put_str(t, m->image_registry);
        }
        JTEXT_LIT(t, "}");
    }
    JTEXT_LIT(t, "}");
}

void agentwire_task_dump(jtext_t *t, const agentwire_task_t *m)
{
    agentwire_task_dumpv(t, m, AGENTWIRE_LATER_ACKS_VERSION);
}

void agentwire_task_dumpv(jtext_t *t, const agentwire_task_t *m, int version)
{
    const char *user = m->user ? m->user : "";
    size_t ulen = m->user_len ? m->user_len : strlen(user);
    unsigned omit = agentwire_task_omits(m, version); /* version 7 */
    JTEXT_LIT(t, "{\"attempt_id\":");
    put_str(t, m->attempt_id);
    if (!(omit & AGENTWIRE_OMIT_IDS)) {
        JTEXT_LIT(t, ",\"job\":");
        put_str(t, m->job);
    }
    if (!(omit & AGENTWIRE_OMIT_USER) &&
        agentwire_utf8_valid(user, ulen)) { /* json_stringn refuses others: no key */
        JTEXT_LIT(t, ",\"user\":");
        jtext_strn(t, user, ulen);
    }
    if (!(omit & AGENTWIRE_OMIT_IDS)) {
        JTEXT_LIT(t, ",\"role\":");
        put_str(t, m->role);
        JTEXT_LIT(t, ",\"index\":");
        jtext_int(t, m->index);
        JTEXT_LIT(t, ",\"job_attempt\":");
        jtext_int(t, m->job_attempt);
        JTEXT_LIT(t, ",\"task_attempt\":");
        jtext_int(t, m->task_attempt);
    }
    if (!(omit & AGENTWIRE_OMIT_IMAGE_OBJ)) {
        JTEXT_LIT(t, ",\"image\":");
        put_image(t, m);
    } else if (m->image) {
        JTEXT_LIT(t, ",\"image\":");
        put_str(t, m->image);
    }
    if (m->command) {
        JTEXT_LIT(t, ",\"command\":");
        put_str(t, m->command);
    }
    if (m->jobenv) { /* version 5 */
        JTEXT_LIT(t, ",\"jobenv\":");
        put_jobenv(t, m->jobenv);
    } else {
        JTEXT_LIT(t, ",\"env\":");
        put_env(t, m);
    }
    if (!(omit & AGENTWIRE_OMIT_GPUS)) {
        JTEXT_LIT(t, ",\"gpus\":");
        put_ints(t, m->gpus, m->ngpus);
    }
    if (!(omit & AGENTWIRE_OMIT_RESOURCE)) {
        put_num(t, ",\"cpu\":", sizeof(",\"cpu\":") - 1, m->cpu);
        JTEXT_LIT(t, ",\"memory_mb\":");
        jtext_int(t, m->memory_mb);
        JTEXT_LIT(t, ",\"shm_mb\":");
        jtext_int(t, m->shm_mb);
    }
    if (!(omit & AGENTWIRE_OMIT_PORTS)) {
        JTEXT_LIT(t, ",\"ports\":");
        put_ports(t, m);
    }
    if (!(omit & AGENTWIRE_OMIT_GRACE)) {
        JTEXT_LIT(t, ",\"kill_grace_ms\":");
        jtext_int(t, m->kill_grace_ms);
    }
    if (m->has_task_uid) {
        JTEXT_LIT(t, ",\"task_uid\":");
        jtext_int(t, m->task_uid);
    }
    if (m->has_mounts) {
        JTEXT_LIT(t, ",\"mounts\":[");
        for (size_t i = 0; i < m->nmounts; i++) {
            if (i)
                JTEXT_LIT(t, ",");
            JTEXT_LIT(t, "{\"source\":");
            put_str(t, m->mounts[i].source);
            JTEXT_LIT(t, ",\"target\":");
            put_str(t, m->mounts[i].target);
            JTEXT_LIT(t, ",\"readonly\":");
            jtext_bool(t, m->mounts[i].readonly);
            JTEXT_LIT(t, "}");
        }
        JTEXT_LIT(t, "]");
    }
    JTEXT_LIT(t, "}");
}

static void put_ids(jtext_t *t, const char *const *ids, size_t n)
{
    JTEXT_LIT(t, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            JTEXT_LIT(t, ",");
        put_str(t, ids[i]);
    }
    JTEXT_LIT(t, "]");
}

void agentwire_resp_dump(jtext_t *t, const agentwire_resp_t *m)
{
    int version = m->version ? m->version : AGENTWIRE_VERSION;
    JTEXT_LIT(t, "{\"version\":");
    jtext_int(t, version);
    JTEXT_LIT(t, ",\"seq\":");
    jtext_int(t, (int64_t)m->seq);
    JTEXT_LIT(t, ",\"ack\":");
    put_ids(t, m->ack, m->nack);
    if (m->epoch && version >= 3) {
        JTEXT_LIT(t, ",\"epoch\":");
        put_str(t, m->epoch);
    }
    bool delta = m->delta && m->has_tasks && version >= 3;
    if (delta) {
        JTEXT_LIT(t, ",\"base_seq\":");
        jtext_int(t, (int64_t)m->base_seq);
    }
    if (m->has_tasks) {
        JTEXT_LIT(t, ",\"tasks\":[");
        for (size_t i = 0; i < m->ntasks; i++) {
            if (i)
                JTEXT_LIT(t, ",");
            const agentwire_task_t *k = &m->tasks[i];
            if (k->text)
                jtext_raw(t, k->text, k->text_len);
            else
                agentwire_task_dumpv(t, k, version);
        }
        JTEXT_LIT(t, "]");
    }
    if (delta) {
        JTEXT_LIT(t, ",\"removed\":");
        put_ids(t, m->removed, m->nremoved);
    }
    JTEXT_LIT(t, ",\"heartbeat_ms\":");
    jtext_int(t, m->heartbeat_ms);
    if (m->credential && version >= 2) {
        JTEXT_LIT(t, ",\"credential\":");
        put_str(t, m->credential);
    }
    if (m->log_key && version >= 2) {
        JTEXT_LIT(t, ",\"log_key\":");
        put_str(t, m->log_key);
    }
    if (m->node_desc && version >= 4) {
        JTEXT_LIT(t, ",\"node_desc\":");
        put_str(t, m->node_desc);
    }
    JTEXT_LIT(t, "}");
}

char *agentwire_resp_dumps(const agentwire_resp_t *m, size_t *len)
{
    jtext_t t;
    jtext_init(&t, 512 + m->ntasks * 1024);
    agentwire_resp_dump(&t, m);
    *len = t.len;
    return jtext_take(&t);
}
