/*
 * strmap.c - see strmap.h.  The slot array's size is a power of two (at
 * least STRMAP_MIN); an empty slot has key == NULL.  Each slot keeps its
 * key's hash so that growing and deleting never rehash a string.
 */
#include "common/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/util.h"

#define STRMAP_MIN 16

typedef struct {
    char *key;
    void *val;
    uint64_t hash;
} slot_t;

struct strmap {
    slot_t *slots;
    size_t cap, n; /* slots, used slots */
    strmap_free_fn free_val;
};

strmap_t *strmap_new(strmap_free_fn free_val)
{
    strmap_t *m = xcalloc(1, sizeof(*m));
    m->free_val = free_val;
    return m;
}

static void drop(const strmap_t *m, slot_t *s)
{
    if (m->free_val)
        m->free_val(s->val);
    free(s->key);
    *s = (slot_t){0};
}

void strmap_clear(strmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            drop(m, &m->slots[i]);
    m->n = 0;
}

void strmap_free(strmap_t *m)
{
    if (!m)
        return;
    strmap_clear(m);
    free(m->slots);
    free(m);
}

size_t strmap_count(const strmap_t *m)
{
    return m->n;
}

/* The slot holding key, or the empty slot where it would go. */
static slot_t *find(const strmap_t *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot_t *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0))
            return s;
    }
}

void *strmap_get(const strmap_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    const slot_t *s = find(m, key, hash_fnv1a(FNV1A_INIT, key));
    return s->key ? s->val : NULL;
}

static void grow(strmap_t *m)
{
    /* cap doubles from 16 and the map holds at most 3/4 of it: the count
     * of keys in memory bounds it long before size_t would overflow. */
    size_t cap = m->cap ? m->cap * 2 : STRMAP_MIN;
    slot_t *slots = xcalloc(cap, sizeof(slot_t));
    strmap_t g = {.slots = slots, .cap = cap};
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            *find(&g, m->slots[i].key, m->slots[i].hash) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

pai_err_t strmap_put(strmap_t *m, const char *key, void *val)
{
    if (!val)
        return PAI_E_INVALID;
    if ((m->n + 1) * 4 > m->cap * 3)
        grow(m);
    uint64_t h = hash_fnv1a(FNV1A_INIT, key);
    slot_t *s = find(m, key, h);
    if (s->key) {
        if (m->free_val && s->val != val)
            m->free_val(s->val);
        s->val = val;
        return PAI_OK;
    }
    *s = (slot_t){.key = xstrdup(key), .val = val, .hash = h};
    m->n++;
    return PAI_OK;
}

/* Empty slot i and pull later entries of its probe chain back into the
 * hole, so that every entry stays reachable from its home slot. */
static void remove_at(strmap_t *m, size_t i)
{
    size_t mask = m->cap - 1;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        /* the entry at j may move to i unless its home lies in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i] = (slot_t){0};
    m->n--;
}

void *strmap_take(strmap_t *m, const char *key)
{
    if (!m->cap)
        return NULL;
    slot_t *s = find(m, key, hash_fnv1a(FNV1A_INIT, key));
    if (!s->key)
        return NULL;
    void *val = s->val;
    free(s->key);
    remove_at(m, (size_t)(s - m->slots));
    return val;
}

bool strmap_del(strmap_t *m, const char *key)
{
    void *val = strmap_take(m, key);
    if (val && m->free_val)
        m->free_val(val);
    return val != NULL;
}

bool strmap_next(const strmap_t *m, size_t *it, const char **key, void **val)
{
    for (; *it < m->cap; (*it)++) {
        const slot_t *s = &m->slots[*it];
        if (!s->key)
            continue;
        if (key)
            *key = s->key;
        if (val)
            *val = s->val;
        (*it)++;
        return true;
    }
    return false;
}
