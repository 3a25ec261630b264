/*
 * test_engine_kicks.c - the scheduler thread's wake-ups (dispatch.c): a
 * kick made while kicks are held back (engine_kicks_hold, as a submission
 * batch's publish and a combined batch of agent syncs do) does not wake
 * the thread while mu is held; engine_kicks_release says whether one is
 * owed, and engine_wake_pass after the unlock wakes it for one pass.  A
 * plain kick under mu wakes it at once, and it sleeps again on mu (the
 * switch this saves).  The test plays the scheduler thread (its loop is
 * scheduler_main's) and reads its voluntary context switches from /proc.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "engine_fixture.h"
#include "thread_stats.h"

#define SCHED_NAME "kick-sched"

typedef struct {
    engine_t *j;
    pthread_t th;
    bool waiting; /* asleep on pass.cv (mu) */
    bool stop;    /* mu */
    atomic_int passes;
} fake_sched_t;

static void *sched_main(void *arg)
{
    fake_sched_t *s = arg;
    engine_t *j = s->j;
    pthread_setname_np(pthread_self(), SCHED_NAME);
    engine_lock(j);
    while (!s->stop) {
        if (!j->pass.need) {
            s->waiting = true;
            pthread_cond_wait(&j->pass.cv, &j->mu);
            s->waiting = false;
            continue;
        }
        j->pass.need = false; /* the pass */
        atomic_fetch_add(&s->passes, 1);
    }
    engine_unlock(j);
    return NULL;
}

static bool sched_waiting(fake_sched_t *s)
{
    for (int i = 0; i < 2000; i++) {
        engine_lock(s->j);
        bool w = s->waiting;
        engine_unlock(s->j);
        if (w)
            return true;
        usleep(1000);
    }
    return false;
}

static bool sched_start(fake_sched_t *s, engine_t *j)
{
    *s = (fake_sched_t){.j = j};
    if (pthread_create(&s->th, NULL, sched_main, s) != 0)
        return false;
    return sched_waiting(s);
}

static void sched_stop(fake_sched_t *s)
{
    engine_lock(s->j);
    s->stop = true;
    engine_unlock(s->j);
    pthread_cond_broadcast(&s->j->pass.cv);
    pthread_join(s->th, NULL);
}

static bool passes_reach(fake_sched_t *s, int n)
{
    for (int i = 0; i < 2000 && atomic_load(&s->passes) < n; i++)
        usleep(1000);
    return atomic_load(&s->passes) >= n;
}

/* A plain kick under mu wakes the thread at once: it finds mu held and
 * sleeps on it (one voluntary switch), and runs its pass once mu is free.
 * This is what the held kicks avoid, and shows the count sees it. */
TEST(a_kick_under_mu_wakes_the_thread_to_sleep_again_on_mu)
{
    rig_t r;
    CHECK(rig_open(&r));
    fake_sched_t s;
    CHECK(sched_start(&s, r.e));
    engine_lock(r.e);
    long v0 = thread_switches(SCHED_NAME);
    r.e->pass.need = true;
    engine_kick(r.e);
    usleep(100 * 1000);
    long v1 = thread_switches(SCHED_NAME);
    engine_unlock(r.e);
    CHECK(v0 >= 0);
    CHECK(v1 > v0); /* woken, and asleep on mu */
    CHECK(passes_reach(&s, 1));
    sched_stop(&s);
    rig_close(&r);
}

/* Kicks held back: no wake-up while mu is held, one pass after the
 * release, the unlock and engine_wake_pass. */
TEST(held_kicks_wake_the_thread_once_mu_is_free)
{
    rig_t r;
    CHECK(rig_open(&r));
    fake_sched_t s;
    CHECK(sched_start(&s, r.e));
    engine_lock(r.e);
    long v0 = thread_switches(SCHED_NAME);
    engine_kicks_hold(r.e);
    r.e->pass.need = true;
    engine_kick(r.e);
    engine_kick(r.e);
    usleep(100 * 1000);
    long v1 = thread_switches(SCHED_NAME);
    CHECK(v0 >= 0);
    CHECK_INT_EQ(v1, v0); /* not woken */
    CHECK_INT_EQ(atomic_load(&s.passes), 0);
    bool kick = engine_kicks_release(r.e);
    engine_unlock(r.e);
    CHECK(kick);
    engine_wake_pass(r.e);
    CHECK(passes_reach(&s, 1));
    CHECK(sched_waiting(&s)); /* asleep again: the one pass did it */
    CHECK_INT_EQ(atomic_load(&s.passes), 1);
    /* after the release kicks go out at once again */
    engine_lock(r.e);
    r.e->pass.need = true;
    engine_kick(r.e);
    engine_unlock(r.e);
    CHECK(passes_reach(&s, 2));
    sched_stop(&s);
    rig_close(&r);
}

/* Nothing owed: no kick while held, or a pass under the same hold did
 * what the kick asked for (pass.need false again at the release). */
TEST(a_release_owes_no_wake_up_when_no_pass_is_wanted)
{
    rig_t r;
    CHECK(rig_open(&r));
    engine_lock(r.e);
    engine_kicks_hold(r.e);
    CHECK(!engine_kicks_release(r.e));
    engine_kicks_hold(r.e);
    r.e->pass.need = true;
    engine_kick(r.e);
    r.e->pass.need = false; /* as engine_run_pass here would */
    CHECK(!engine_kicks_release(r.e));
    engine_kicks_hold(r.e);
    engine_kick(r.e); /* pass.need false: no kick at all */
    r.e->pass.need = true;
    CHECK(!engine_kicks_release(r.e)); /* asked for after, by whom kicks then */
    r.e->pass.need = false;
    engine_unlock(r.e);
    rig_close(&r);
}

RUN_TESTS(a_kick_under_mu_wakes_the_thread_to_sleep_again_on_mu,
          held_kicks_wake_the_thread_once_mu_is_free,
          a_release_owes_no_wake_up_when_no_pass_is_wanted)
