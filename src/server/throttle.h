/*
 * throttle.h - failure throttling by key (login attempts per user name and
 * per client address), in bounded memory.
 *
 * Each key (any string: "u:alice", "a:10.0.0.7") counts its recent
 * failures.  The first `free_failures` cost nothing; each further one locks
 * the key for base_ms, doubling per failure up to max_ms.  A locked key is
 * refused without a try (so its failures do not grow while it waits), and a
 * key with no failure for forget_ms starts over.  A success resets a key.
 *
 * Memory: a fixed table of `slots` entries (32 bytes each) holding a keyed
 * hash of the key, never the key itself; a key that finds no free entry in
 * its small neighbourhood replaces the one whose last failure is oldest.
 * Clients that send many names or addresses therefore cost nothing more
 * than the table, and since the hash key is random per process they cannot
 * aim at another key's entry.
 *
 * The clock is passed in (milliseconds, any monotonic origin).  Thread-safe.
 */
#ifndef PAI_SERVER_THROTTLE_H
#define PAI_SERVER_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct throttle throttle_t;

typedef struct {
    unsigned free_failures; /* failures before the first lock; 0: throttling off */
    int64_t base_ms;        /* the first lock */
    int64_t max_ms;         /* the longest lock */
    int64_t forget_ms;      /* failures forgotten after this long without one */
    size_t slots;           /* keys remembered at most */
} throttle_opts_t;

/* A new throttle (never NULL); free with throttle_free. */
throttle_t *throttle_new(const throttle_opts_t *o);
void throttle_free(throttle_t *t);

/* Milliseconds key must still wait before its next try (0: it may try now). */
int64_t throttle_wait(throttle_t *t, const char *key, int64_t now_ms);
/* Count a failure of key; returns the lock it now has in ms (0: none yet). */
int64_t throttle_fail(throttle_t *t, const char *key, int64_t now_ms);
/* Forget key's failures (after a success). */
void throttle_reset(throttle_t *t, const char *key);
/* Keys currently remembered (for tests and metrics). */
size_t throttle_count(throttle_t *t);

#endif
