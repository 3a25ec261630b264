/*
 * waiters.c - held entries, their deadlines and wake-ups (see waiters.h
 * for the contract and the locking).
 *
 * Data: a slot array (a free list threads the unused slots) and a binary
 * min-heap of the used slots by deadline.  A ticket is (generation << 32 |
 * slot index): waiters_wake finds its slot in O(1) and checks the
 * generation, so a ticket whose wait is over names nothing.  Waking a slot
 * takes it out of the heap at once and calls its due function on the
 * waker's thread; the thread calls those whose deadline passed.
 *
 * Invariant (under mu): a slot is used iff heap[slot.pos] == its index;
 * every used slot's due function has not run yet.
 */
#include "server/waiters.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

#define DUE_BATCH 256 /* due entries handed on per pass outside the lock */

typedef struct {
    waiters_due_fn due; /* NULL: free */
    void *ud;
    int64_t deadline; /* time_mono_ms */
    uint32_t gen;     /* bumped each time the slot is taken */
    uint32_t pos;     /* in heap, when used; next free slot, when free */
} slot_t;

typedef struct {
    waiters_due_fn due;
    void *ud;
} due_t;

struct waiters {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool started, stopping;
    slot_t *slots;
    uint32_t nslots, cap, free_head; /* free_head == UINT32_MAX: none */
    uint32_t *heap;
    uint32_t nheap;
    /* the deadline the thread sleeps until: INT64_MAX when it sleeps with
     * none, INT64_MIN while it is awake (it reads the heap again before it
     * sleeps); an entry due before it must wake the thread, no other */
    int64_t sleep_until;
};

/* ---- the heap (mu held) ---------------------------------------------------- */

static bool before(const waiters_t *w, uint32_t a, uint32_t b)
{
    return w->slots[w->heap[a]].deadline < w->slots[w->heap[b]].deadline;
}

static void heap_swap(waiters_t *w, uint32_t a, uint32_t b)
{
    uint32_t t = w->heap[a];
    w->heap[a] = w->heap[b];
    w->heap[b] = t;
    w->slots[w->heap[a]].pos = a;
    w->slots[w->heap[b]].pos = b;
}

static void sift_up(waiters_t *w, uint32_t i)
{
    while (i > 0 && before(w, i, (i - 1) / 2)) {
        heap_swap(w, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(waiters_t *w, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && before(w, l, m))
            m = l;
        if (r < w->nheap && before(w, r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(w, i, m);
        i = m;
    }
}

/* Take the slot at heap position i off the heap and free it; returns its
 * due function and data. */
static due_t take_at(waiters_t *w, uint32_t i)
{
    uint32_t idx = w->heap[i];
    slot_t *s = &w->slots[idx];
    due_t d = {s->due, s->ud};
    w->nheap--;
    if (i < w->nheap) { /* the last one fills the hole, then finds its place */
        w->heap[i] = w->heap[w->nheap];
        w->slots[w->heap[i]].pos = i;
        sift_down(w, i);
        sift_up(w, i);
    }
    s->due = NULL;
    s->ud = NULL;
    s->pos = w->free_head;
    w->free_head = idx;
    return d;
}

/* ---- the thread ------------------------------------------------------------- */

/* Wait (mu held) until something may be due: the first deadline, a signal. */
static void wait_next(waiters_t *w)
{
    if (w->nheap == 0) {
        w->sleep_until = INT64_MAX;
        pthread_cond_wait(&w->cv, &w->mu);
        w->sleep_until = INT64_MIN;
        return;
    }
    int64_t ms = w->slots[w->heap[0]].deadline;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    w->sleep_until = ms;
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    w->sleep_until = INT64_MIN;
}

static void *run(void *arg)
{
    waiters_t *w = arg;
    due_t due[DUE_BATCH];
    pthread_mutex_lock(&w->mu);
    for (;;) {
        int64_t now = time_mono_ms();
        size_t n = 0;
        while (n < DUE_BATCH && w->nheap > 0 &&
               (w->stopping || w->slots[w->heap[0]].deadline <= now))
            due[n++] = take_at(w, 0);
        if (n == 0 && w->stopping)
            break;
        if (n == 0) {
            wait_next(w);
            continue;
        }
        pthread_mutex_unlock(&w->mu); /* never call out under mu */
        for (size_t i = 0; i < n; i++)
            due[i].due(due[i].ud);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- the API ------------------------------------------------------------------ */

pai_err_t waiters_new(waiters_t **out)
{
    waiters_t *w = xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->free_head = UINT32_MAX;
    w->sleep_until = INT64_MIN;
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        waiters_free(w);
        *out = NULL;
        return PAI_E_IO;
    }
    pthread_setname_np(w->thread, "pai-waiters");
    w->started = true;
    *out = w;
    return PAI_OK;
}

/* A free slot's index (mu held), growing the arrays when none is left. */
static uint32_t slot_take(waiters_t *w)
{
    if (w->free_head == UINT32_MAX) {
        if (w->nslots == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 64;
            w->slots = xrealloc(w->slots, w->cap * sizeof(*w->slots));
            w->heap = xrealloc(w->heap, w->cap * sizeof(*w->heap));
        }
        w->slots[w->nslots] = (slot_t){0};
        return w->nslots++;
    }
    uint32_t idx = w->free_head;
    w->free_head = w->slots[idx].pos;
    return idx;
}

uint64_t waiters_add(waiters_t *w, int64_t deadline_ms, waiters_due_fn due, void *ud)
{
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    uint32_t idx = slot_take(w);
    slot_t *s = &w->slots[idx];
    s->due = due;
    s->ud = ud;
    s->deadline = deadline_ms;
    s->gen++;
    s->pos = w->nheap;
    w->heap[w->nheap++] = idx;
    sift_up(w, s->pos);
    /* Only a deadline before the one the thread sleeps until wakes it: a
     * held poll's comes after those held before it (the same wait, a later
     * arrival), and one added after the first was woken (taken off the heap)
     * leaves the thread to wake at that first's deadline and sleep again,
     * rather than waking it now to set a later timer. */
    bool wake = deadline_ms < w->sleep_until;
    uint64_t ticket = (uint64_t)s->gen << 32 | idx;
    pthread_mutex_unlock(&w->mu);
    if (wake)
        pthread_cond_signal(&w->cv);
    return ticket;
}

void waiters_wake(void *ud, uint64_t ticket)
{
    waiters_t *w = ud;
    uint32_t idx = (uint32_t)ticket, gen = (uint32_t)(ticket >> 32);
    due_t d = {0};
    pthread_mutex_lock(&w->mu);
    if (idx < w->nslots) {
        slot_t *s = &w->slots[idx];
        if (s->due && s->gen == gen)
            d = take_at(w, s->pos); /* the thread need not wake: nothing earlier is due */
    }
    pthread_mutex_unlock(&w->mu);
    if (d.due)
        d.due(d.ud);
}

uint64_t waiters_count(waiters_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->nheap;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void waiters_stop(waiters_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    bool join = w->started && !w->stopping;
    w->stopping = true;
    pthread_mutex_unlock(&w->mu);
    pthread_cond_signal(&w->cv);
    if (join)
        pthread_join(w->thread, NULL); /* it hands every entry on before it ends */
}

void waiters_free(waiters_t *w)
{
    if (!w)
        return;
    waiters_stop(w);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->slots);
    free(w->heap);
    free(w);
}
