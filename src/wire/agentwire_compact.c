/*
 * agentwire_compact.c - version 7's task entries (docs/agent-protocol.md,
 * "Compact task entries (version 7)"): a field the agent can derive from
 * the rest of the entry is left out of it, and the decoder derives it.
 *
 * The encoders (agentwire.c's tree, agentwire_resp.c's text) ask
 * agentwire_task_omits which fields to leave out; it says so only when
 * what the decoder derives is exactly what the entry holds (compared field
 * by field), so a version 7 agent reads the same task as a version 6 one.
 * The decoder (agentwire_read.c) calls the agentwire_task_derive_* below
 * for the fields that are absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "wire/agentwire.h"

/* Whether the first n bytes of s are the decimal digits of v >= 0, as
 * "%d" writes it. */
static bool is_int(const char *s, size_t n, int v)
{
    char d[16];
    int k = snprintf(d, sizeof d, "%d", v);
    return v >= 0 && (size_t)k == n && memcmp(s, d, n) == 0;
}

/* The id's last four '/' (the attempt id is job/ja/role/index/ta): at[0]
 * the one after job, at[3] the one before ta; false when it has fewer. */
static bool id_cuts(const char *id, size_t len, size_t at[4])
{
    int k = 4;
    for (size_t i = len; i-- > 0 && k > 0;)
        if (id[i] == '/')
            at[--k] = i;
    return k == 0;
}

static bool ids_derivable(const agentwire_task_t *t)
{
    if (!t->attempt_id || !t->job || !t->role || strchr(t->role, '/'))
        return false;
    size_t len = strlen(t->attempt_id), at[4];
    if (!agentwire_utf8_valid(t->attempt_id, len) || !id_cuts(t->attempt_id, len, at))
        return false;
    const char *id = t->attempt_id;
    size_t jl = strlen(t->job), rl = strlen(t->role);
    return at[0] == jl && memcmp(id, t->job, jl) == 0 &&
           is_int(id + at[0] + 1, at[1] - at[0] - 1, t->job_attempt) && at[2] - at[1] - 1 == rl &&
           memcmp(id + at[1] + 1, t->role, rl) == 0 &&
           is_int(id + at[2] + 1, at[3] - at[2] - 1, t->index) &&
           is_int(id + at[3] + 1, len - at[3] - 1, t->task_attempt);
}

/* The user is the job's name up to its first '~' (PAI's "user~name"). */
static bool user_derivable(const agentwire_task_t *t)
{
    const char *user = t->user ? t->user : "";
    size_t ulen = t->user_len ? t->user_len : strlen(user);
    const char *tilde = t->job ? strchr(t->job, '~') : NULL;
    return tilde && (size_t)(tilde - t->job) == ulen && memcmp(t->job, user, ulen) == 0 &&
           agentwire_utf8_valid(t->job, strlen(t->job));
}

static bool gpus_derivable(const agentwire_task_t *t)
{
    size_t k = 0;
    for (int g = 0; g < 64; g++)
        if (t->jobenv->gpus & (1ull << g))
            if (k >= t->ngpus || t->gpus[k++] != g)
                return false;
    return k == t->ngpus;
}

/* The task's role in its jobenv; NULL when the jobenv is not consistent. */
static const agentwire_jobrole_t *own_role(const agentwire_task_t *t)
{
    const agentwire_jobenv_t *j = t->jobenv;
    return agentwire_jobenv_check(j) ? NULL : &j->roles[j->role];
}

static bool ports_derivable(const agentwire_task_t *t, const agentwire_jobrole_t *r)
{
    const agentwire_jobenv_t *j = t->jobenv;
    const agentwire_host_t *h = &j->hosts[r->host0 + (size_t)j->index];
    if ((size_t)r->nports != t->nports)
        return false;
    size_t at = 0;
    for (size_t p = 0; p < t->nports; p++) {
        const agentwire_portdef_t *d = &j->portdefs[r->port0 + p];
        const agentwire_ports_t *tp = &t->ports[p];
        if (!tp->label || strcmp(tp->label, d->label) != 0 || tp->n != (size_t)d->count ||
            at + tp->n > (size_t)h->nports || !agentwire_utf8_valid(tp->label, strlen(tp->label)))
            return false;
        for (size_t q = 0; q < p; q++) /* a repeated label: the object keeps one */
            if (strcmp(t->ports[q].label, tp->label) == 0)
                return false;
        for (size_t k = 0; k < tp->n; k++)
            if (tp->ports[k] != j->ports[h->port0 + at++])
                return false;
    }
    return true;
}

unsigned agentwire_task_omits(const agentwire_task_t *t, int version)
{
    if (version < AGENTWIRE_COMPACT_VERSION)
        return 0;
    unsigned o = 0;
    if (ids_derivable(t))
        o |= AGENTWIRE_OMIT_IDS;
    if (user_derivable(t))
        o |= AGENTWIRE_OMIT_USER;
    if (!t->image || !t->image_auth)
        o |= AGENTWIRE_OMIT_IMAGE_OBJ;
    if (t->kill_grace_ms == AGENTWIRE_KILL_GRACE_MS)
        o |= AGENTWIRE_OMIT_GRACE;
    const agentwire_jobrole_t *r = t->jobenv ? own_role(t) : NULL;
    if (!r)
        return o;
    if (gpus_derivable(t))
        o |= AGENTWIRE_OMIT_GPUS;
    if (t->cpu == (double)r->cpu && t->memory_mb == r->mem_mb && t->shm_mb == r->shm_mb)
        o |= AGENTWIRE_OMIT_RESOURCE;
    if (ports_derivable(t, r))
        o |= AGENTWIRE_OMIT_PORTS;
    return o;
}

/* ---- decoding ------------------------------------------------------------ */

static bool parse_int(const char *s, size_t n, int *out)
{
    int64_t v = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > INT32_MAX)
        return false;
    *out = (int)v;
    return true;
}

const char *agentwire_task_derive_names(agentwire_task_t *t, bool ids, bool user)
{
    size_t len = strlen(t->attempt_id), at[4];
    if (ids && !id_cuts(t->attempt_id, len, at))
        return "must be job/job_attempt/role/index/task_attempt when job is absent";
    const char *job = ids ? t->attempt_id : t->job;
    size_t jl = ids ? at[0] : job ? strlen(job) : 0;
    const char *tilde = user && job ? memchr(job, '~', jl) : NULL;
    size_t ul = tilde ? (size_t)(tilde - job) : 0;
    /* one buffer: the id's copy cut at its '/' (job, role), then the user */
    char *b = t->names = xmalloc(len + 1 + ul + 1);
    memcpy(b, t->attempt_id, len + 1);
    if (ids) {
        const char *id = t->attempt_id;
        if (!parse_int(id + at[0] + 1, at[1] - at[0] - 1, &t->job_attempt) ||
            !parse_int(id + at[2] + 1, at[3] - at[2] - 1, &t->index) ||
            !parse_int(id + at[3] + 1, len - at[3] - 1, &t->task_attempt))
            return "must be job/job_attempt/role/index/task_attempt when job is absent";
        b[at[0]] = b[at[1]] = b[at[2]] = '\0';
        t->job = b;
        t->role = b + at[1] + 1;
    }
    if (tilde) {
        memcpy(b + len + 1, job, ul);
        b[len + 1 + ul] = '\0';
        t->user = b + len + 1;
    }
    return NULL;
}

const char *agentwire_task_derive_rest(agentwire_task_t *t, bool gpus, bool resource, bool ports)
{
    const agentwire_jobenv_t *j = t->jobenv;
    const agentwire_jobrole_t *r = &j->roles[j->role]; /* checked by the decoder */
    if (gpus) {
        free(t->gpus); /* the decoder's empty list */
        t->ngpus = 0;
        t->gpus = xcalloc(64 + 1, sizeof(int));
        for (int g = 0; g < 64; g++)
            if (j->gpus & (1ull << g))
                t->gpus[t->ngpus++] = g;
    }
    if (resource) {
        t->cpu = r->cpu;
        t->memory_mb = r->mem_mb;
        t->shm_mb = r->shm_mb;
    }
    if (!ports)
        return NULL;
    const agentwire_host_t *h = &j->hosts[r->host0 + (size_t)j->index];
    size_t need = 0;
    for (int p = 0; p < r->nports; p++)
        need += (size_t)j->portdefs[r->port0 + (size_t)p].count;
    if (need > (size_t)h->nports)
        return "must be sent when the task's host lists fewer ports than its role's labels";
    t->ports = xcalloc((size_t)r->nports + 1, sizeof(*t->ports));
    size_t at = h->port0;
    for (int p = 0; p < r->nports; p++) {
        const agentwire_portdef_t *d = &j->portdefs[r->port0 + (size_t)p];
        agentwire_ports_t *out = &t->ports[t->nports++];
        out->label = d->label;
        out->ports = xcalloc((size_t)d->count + 1, sizeof(int));
        for (int k = 0; k < d->count; k++)
            out->ports[out->n++] = j->ports[at++];
    }
    return NULL;
}

size_t agentwire_resp_nleft(const agentwire_resp_t *m)
{
    if (!m->delta)
        return 0;
    return m->nremoved + (m->version >= AGENTWIRE_COMPACT_VERSION ? m->nack : 0);
}

const char *agentwire_resp_left(const agentwire_resp_t *m, size_t i)
{
    return i < m->nremoved ? m->removed[i] : m->ack[i - m->nremoved];
}
