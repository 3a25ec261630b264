/*
 * throttle.c - failure throttling by key in a fixed table (see throttle.h).
 *
 * Table: `slots` entries; a key's hash h (SipHash-2-4 with a per-process
 * random key, libsodium's crypto_shorthash) picks the first of PROBE
 * neighbouring entries where it may live.  An entry is free when its hash
 * is 0 or its failures are forgotten.  h is never 0 (0 marks a free entry).
 */
#include "server/throttle.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define PROBE 8

typedef struct {
    uint64_t h;       /* keyed hash of the key; 0 = free */
    uint32_t fails;   /* failures since the last forget/reset */
    int64_t last_ms;  /* time of the last failure */
    int64_t until_ms; /* locked until */
} slot_t;

struct throttle {
    pthread_mutex_t mu;
    throttle_opts_t o;
    unsigned char key[crypto_shorthash_KEYBYTES];
    slot_t *slots;
};

throttle_t *throttle_new(const throttle_opts_t *o)
{
    throttle_t *t = xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    t->o = *o;
    if (t->o.slots < PROBE)
        t->o.slots = PROBE;
    if (sodium_init() < 0)
        abort();
    crypto_shorthash_keygen(t->key);
    t->slots = xcalloc(t->o.slots, sizeof(*t->slots));
    return t;
}

void throttle_free(throttle_t *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->slots);
    free(t);
}

static uint64_t hash_of(const throttle_t *t, const char *key)
{
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, strlen(key), t->key);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h ? h : 1;
}

static bool forgotten(const throttle_t *t, const slot_t *s, int64_t now)
{
    return s->h == 0 || (s->until_ms <= now && now - s->last_ms >= t->o.forget_ms);
}

/* The entry of key, or NULL; with create, a new one (evicting if needed). */
static slot_t *find(throttle_t *t, uint64_t h, int64_t now, bool create)
{
    size_t first = (size_t)(h % t->o.slots);
    slot_t *spare = NULL;
    for (size_t i = 0; i < PROBE; i++) {
        slot_t *s = &t->slots[(first + i) % t->o.slots];
        if (s->h == h) {
            if (!forgotten(t, s, now))
                return s;
            if (!create)
                return NULL;
            memset(s, 0, sizeof(*s)); /* start over */
            return s;
        }
        if (!spare ||
            (!forgotten(t, spare, now) && (forgotten(t, s, now) || s->last_ms < spare->last_ms)))
            spare = s;
    }
    if (!create)
        return NULL;
    memset(spare, 0, sizeof(*spare));
    return spare;
}

int64_t throttle_wait(throttle_t *t, const char *key, int64_t now_ms)
{
    if (t->o.free_failures == 0)
        return 0;
    uint64_t h = hash_of(t, key);
    pthread_mutex_lock(&t->mu);
    const slot_t *s = find(t, h, now_ms, false);
    int64_t wait = s && s->until_ms > now_ms ? s->until_ms - now_ms : 0;
    pthread_mutex_unlock(&t->mu);
    return wait;
}

int64_t throttle_fail(throttle_t *t, const char *key, int64_t now_ms)
{
    if (t->o.free_failures == 0)
        return 0;
    uint64_t h = hash_of(t, key);
    pthread_mutex_lock(&t->mu);
    slot_t *s = find(t, h, now_ms, true);
    s->h = h;
    s->last_ms = now_ms;
    if (s->fails < UINT32_MAX)
        s->fails++;
    int64_t lock = 0;
    if (s->fails > t->o.free_failures) {
        uint32_t over = s->fails - t->o.free_failures - 1; /* 0 for the first lock */
        lock = t->o.base_ms;
        for (uint32_t i = 0; i < over && lock < t->o.max_ms; i++)
            lock *= 2;
        if (lock > t->o.max_ms)
            lock = t->o.max_ms;
        s->until_ms = now_ms + lock;
    }
    pthread_mutex_unlock(&t->mu);
    return lock;
}

void throttle_reset(throttle_t *t, const char *key)
{
    uint64_t h = hash_of(t, key);
    pthread_mutex_lock(&t->mu);
    size_t first = (size_t)(h % t->o.slots);
    for (size_t i = 0; i < PROBE; i++) {
        slot_t *s = &t->slots[(first + i) % t->o.slots];
        if (s->h == h)
            memset(s, 0, sizeof(*s));
    }
    pthread_mutex_unlock(&t->mu);
}

size_t throttle_count(throttle_t *t)
{
    size_t n = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->o.slots; i++)
        n += t->slots[i].h != 0;
    pthread_mutex_unlock(&t->mu);
    return n;
}
