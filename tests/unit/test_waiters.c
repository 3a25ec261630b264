/* test_waiters.c - held entries (server/waiters.h): each one's due function
 * runs exactly once, at its deadline in deadline order or at once when
 * woken (a stale ticket does nothing), and every entry left is handed on by
 * waiters_stop; the waiter thread is woken only by an entry due before the
 * deadline it sleeps until, even when the entry it sleeps for was woken
 * (its voluntary context switches, read from /proc, do not move when later
 * entries are added). */
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "server/waiters.h"
#include "test.h"
#include "thread_stats.h"

/* The due calls, in order. */
typedef struct {
    pthread_mutex_t mu;
    int order[256];
    int n;
} log_t;

static log_t dlog = {.mu = PTHREAD_MUTEX_INITIALIZER};
static int ids[256];

static void due(void *ud)
{
    pthread_mutex_lock(&dlog.mu);
    if (dlog.n < 256)
        dlog.order[dlog.n++] = *(int *)ud;
    pthread_mutex_unlock(&dlog.mu);
}

static int ndue(void)
{
    pthread_mutex_lock(&dlog.mu);
    int n = dlog.n;
    pthread_mutex_unlock(&dlog.mu);
    return n;
}

/* Wait (at most 5 s) until n due calls were made. */
static bool wait_due(int n)
{
    for (int i = 0; i < 500 && ndue() < n; i++)
        usleep(10000);
    return ndue() >= n;
}

static void *ids_init(void)
{
    for (int i = 0; i < 256; i++)
        ids[i] = i;
    return NULL;
}

TEST(entries_are_due_at_their_deadlines_in_order_and_once)
{
    ids_init();
    waiters_t *w = NULL;
    CHECK(waiters_new(&w) == PAI_OK);
    int64_t now = time_mono_ms();
    CHECK(waiters_add(w, now + 120, due, &ids[3]) != 0);
    CHECK(waiters_add(w, now + 40, due, &ids[1]) != 0);
    CHECK(waiters_add(w, now + 80, due, &ids[2]) != 0);
    CHECK(waiters_count(w) == 3);
    CHECK(wait_due(3));
    CHECK(time_mono_ms() >= now + 120);
    CHECK(dlog.order[0] == 1 && dlog.order[1] == 2 && dlog.order[2] == 3);
    usleep(50000);
    CHECK(ndue() == 3 && waiters_count(w) == 0);
    waiters_free(w);
}

TEST(a_woken_entry_is_due_at_once_and_a_stale_ticket_does_nothing)
{
    ids_init();
    waiters_t *w = NULL;
    CHECK(waiters_new(&w) == PAI_OK);
    uint64_t t = waiters_add(w, time_mono_ms() + 60000, due, &ids[7]);
    CHECK(t != 0);
    waiters_wake(w, t); /* its due function runs on this thread */
    CHECK(ndue() == 1 && dlog.order[0] == 7 && waiters_count(w) == 0);
    waiters_wake(w, t);
    uint64_t t2 = waiters_add(w, time_mono_ms() + 60000, due, &ids[8]); /* the same slot */
    waiters_wake(w, t);                                                 /* stale: not t2's */
    CHECK(ndue() == 1 && waiters_count(w) == 1);
    waiters_wake(w, t2);
    CHECK(ndue() == 2 && dlog.order[1] == 8);
    waiters_free(w);
}

TEST(stop_hands_every_entry_on_and_refuses_new_ones)
{
    ids_init();
    waiters_t *w = NULL;
    CHECK(waiters_new(&w) == PAI_OK);
    for (int i = 0; i < 10; i++)
        CHECK(waiters_add(w, time_mono_ms() + 60000 + i, due, &ids[i]) != 0);
    waiters_stop(w);
    CHECK(ndue() == 10);
    CHECK(waiters_add(w, time_mono_ms(), due, &ids[11]) == 0);
    CHECK(ndue() == 10);
    waiters_free(w);
}

TEST(only_an_entry_due_before_the_threads_deadline_wakes_it)
{
    ids_init();
    waiters_t *w = NULL;
    CHECK(waiters_new(&w) == PAI_OK);
    int64_t now = time_mono_ms();
    uint64_t t = waiters_add(w, now + 3000, due, &ids[0]);
    CHECK(t != 0);
    usleep(100000); /* the thread sleeps until now + 3 s */
    long before = thread_switches("pai-waiters");
    CHECK(before >= 0);
    waiters_wake(w, t);           /* off the heap; the thread still sleeps until now + 3 s */
    for (int i = 1; i <= 50; i++) /* not before that: no wake-up */
        CHECK(waiters_add(w, now + 3000 + i, due, &ids[i]) != 0);
    usleep(100000);
    CHECK(thread_switches("pai-waiters") == before);
    CHECK(ndue() == 1);
    CHECK(waiters_add(w, time_mono_ms() + 20, due, &ids[100]) != 0); /* earlier: wakes it */
    CHECK(wait_due(2));
    CHECK(dlog.order[1] == 100);
    CHECK(thread_switches("pai-waiters") > before);
    waiters_stop(w);
    CHECK(ndue() == 52);
    waiters_free(w);
}

RUN_TESTS(entries_are_due_at_their_deadlines_in_order_and_once,
          a_woken_entry_is_due_at_once_and_a_stale_ticket_does_nothing,
          stop_hands_every_entry_on_and_refuses_new_ones,
          only_an_entry_due_before_the_threads_deadline_wakes_it)
