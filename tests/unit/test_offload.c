/* test_offload.c - the HTTP layer's bounded workers (server/offload.h):
 * classes kept apart (a class at its bound leaves workers to the others),
 * round robin between classes with work, FIFO within a class, everything
 * queued run by offload_stop, the worker idle the shortest woken first. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "server/offload.h"
#include "test.h"

/* A gate the blocking jobs wait at, and a log of the jobs run in order. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int started; /* blocking jobs that reached the gate */
    int order[64];
    int n;
} rig_t;

static rig_t rig = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

typedef struct {
    int id;
    bool block;
} item_t;

static void job(void *ud)
{
    item_t *it = ud;
    pthread_mutex_lock(&rig.mu);
    if (rig.n < 64)
        rig.order[rig.n++] = it->id;
    if (it->block) {
        rig.started++;
        pthread_cond_broadcast(&rig.cv);
        while (!rig.open)
            pthread_cond_wait(&rig.cv, &rig.mu);
    }
    pthread_mutex_unlock(&rig.mu);
}

/* Wait (at most 5 s) until pred holds under rig.mu. */
static bool wait_for(bool (*pred)(void *), void *arg)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&rig.mu);
    bool ok = true;
    while (!pred(arg) && ok)
        ok = pthread_cond_timedwait(&rig.cv, &rig.mu, &ts) == 0 || pred(arg);
    ok = pred(arg);
    pthread_mutex_unlock(&rig.mu);
    return ok;
}

static bool started_at_least(void *arg)
{
    return rig.started >= *(int *)arg;
}

static void open_gate(void)
{
    pthread_mutex_lock(&rig.mu);
    rig.open = true;
    pthread_cond_broadcast(&rig.cv);
    pthread_mutex_unlock(&rig.mu);
}

/* A job that signals when it ran. */
static void mark(void *ud)
{
    pthread_mutex_lock(&rig.mu);
    *(bool *)ud = true;
    pthread_cond_broadcast(&rig.cv);
    pthread_mutex_unlock(&rig.mu);
}

static bool is_true(void *arg)
{
    return *(bool *)arg;
}

/* A blocking job (id 1) in class c, started: the one worker is busy, and
 * what is queued after it waits for open_gate(). */
static void hold_the_worker(offload_t *o, unsigned c)
{
    static item_t first = {.id = 1, .block = true};
    offload_run_in(o, c, job, &first);
    int one = 1;
    CHECK(wait_for(started_at_least, &one));
}

/* The jobs ran in the order want[0..n), and nothing else. */
static void check_order(const int *want, int n)
{
    CHECK_INT_EQ(rig.n, n);
    for (int i = 0; i < n && i < rig.n; i++)
        CHECK_INT_EQ(rig.order[i], want[i]);
}

TEST(a_class_at_its_bound_leaves_workers_to_the_other)
{
    offload_t *o = NULL;
    unsigned most[2] = {3, 3};
    CHECK(offload_new_classes("test", 4, 2, most, &o) == PAI_OK);
    if (!o)
        return;
    static item_t stalled[40];
    for (int i = 0; i < 40; i++) { /* a storm of class-1 work, each stuck at the gate */
        stalled[i] = (item_t){.id = 100 + i, .block = true};
        offload_run_in(o, 1, job, &stalled[i]);
    }
    int three = 3;
    CHECK(wait_for(started_at_least, &three));
    CHECK_INT_EQ((int)offload_pending_in(o, 1), 40);
    bool ran = false;
    offload_run_in(o, 0, mark, &ran); /* answered while the 37 others still wait */
    CHECK(wait_for(is_true, &ran));
    pthread_mutex_lock(&rig.mu);
    CHECK_INT_EQ(rig.started, 3); /* the bound held: the 4th worker was left free */
    pthread_mutex_unlock(&rig.mu);
    for (int i = 0; i < 5000 && offload_pending_in(o, 0) > 0; i++)
        usleep(1000); /* counted until the worker is back from mark */
    CHECK_INT_EQ((int)offload_pending_in(o, 0), 0);
    CHECK_INT_EQ((int)offload_pending(o), 40);
    open_gate();
    offload_free(o);
    CHECK_INT_EQ(rig.started, 40);
}

TEST(a_free_worker_takes_the_classes_in_turn_and_each_in_order)
{
    offload_t *o = NULL;
    CHECK(offload_new_classes("test", 1, 2, NULL, &o) == PAI_OK);
    if (!o)
        return;
    static item_t a[6], b[3];
    hold_the_worker(o, 1);
    for (int i = 0; i < 6; i++) { /* queued while the one worker is busy */
        a[i] = (item_t){.id = 10 + i};
        offload_run_in(o, 1, job, &a[i]);
    }
    for (int i = 0; i < 3; i++) {
        b[i] = (item_t){.id = 20 + i};
        offload_run_in(o, 0, job, &b[i]);
    }
    open_gate();
    offload_free(o);
    static const int want[] = {1, 20, 10, 21, 11, 22, 12, 13, 14, 15};
    check_order(want, (int)ARRAY_LEN(want));
}

TEST(stop_runs_what_is_queued_then_runs_work_on_the_callers_thread)
{
    offload_t *o = NULL;
    unsigned most[3] = {1, 1, 1};
    CHECK(offload_new_classes("test", 2, 3, most, &o) == PAI_OK);
    if (!o)
        return;
    static item_t it[9];
    for (int i = 0; i < 9; i++) {
        it[i] = (item_t){.id = i};
        offload_run_in(o, (unsigned)i % 3, job, &it[i]);
    }
    offload_stop(o);
    CHECK_INT_EQ(rig.n, 9);
    CHECK_INT_EQ((int)offload_pending(o), 0);
    bool ran = false;
    offload_run_in(o, 2, mark, &ran); /* stopped: on this thread, at once */
    CHECK(ran);
    offload_free(o);
}

/* A batch: logs 1000 + its size, then its items' ids; the sizes of the
 * first 8 batches in sizes. */
static int sizes[8], nsizes;

static void batch(void **uds, size_t n)
{
    pthread_mutex_lock(&rig.mu);
    if (nsizes < 8)
        sizes[nsizes++] = (int)n;
    if (rig.n < 64)
        rig.order[rig.n++] = 1000 + (int)n;
    for (size_t i = 0; i < n; i++)
        if (rig.n < 64)
            rig.order[rig.n++] = ((item_t *)uds[i])->id;
    pthread_mutex_unlock(&rig.mu);
}

TEST(batch_items_queued_at_once_run_in_one_call_and_plain_items_keep_their_places)
{
    offload_t *o = NULL;
    CHECK(offload_new_classes("test", 1, 1, NULL, &o) == PAI_OK);
    if (!o)
        return;
    static item_t p1 = {.id = 2}, p2 = {.id = 3}, b[6];
    hold_the_worker(o, 0);
    offload_run_in(o, 0, job, &p1); /* queued while the one worker is busy */
    for (int i = 0; i < 6; i++) {
        b[i] = (item_t){.id = 10 + i};
        if (i == 5)
            offload_run_in(o, 0, job, &p2);
        offload_run_batch_in(o, 0, batch, &b[i]);
    }
    CHECK_INT_EQ((int)offload_pending(o), 9);
    open_gate();
    offload_free(o);
    /* the plain item at the head first, then every batch item in one call
     * (the plain item between them keeps its place after them) */
    static const int want[] = {1, 2, 1006, 10, 11, 12, 13, 14, 15, 3};
    check_order(want, (int)ARRAY_LEN(want));
}

TEST(a_batch_takes_at_most_its_bound_and_the_rest_run_next)
{
    offload_t *o = NULL;
    CHECK(offload_new_classes("test", 1, 1, NULL, &o) == PAI_OK);
    if (!o)
        return;
    static item_t b[OFFLOAD_BATCH_MAX + 3];
    hold_the_worker(o, 0);
    for (int i = 0; i < OFFLOAD_BATCH_MAX + 3; i++) {
        b[i] = (item_t){.id = 100 + i};
        offload_run_batch_in(o, 0, batch, &b[i]);
    }
    open_gate();
    offload_stop(o);
    /* rig.order holds 64 entries: the blocking job, the first batch's size
     * and its first 62 ids */
    CHECK_INT_EQ(rig.n, 64);
    CHECK_INT_EQ(rig.order[0], 1);
    CHECK_INT_EQ(rig.order[1], 1000 + OFFLOAD_BATCH_MAX);
    CHECK_INT_EQ(rig.order[2], 100);
    CHECK_INT_EQ(rig.order[63], 161);
    CHECK_INT_EQ(nsizes, 2); /* then the 3 left, in one more */
    CHECK_INT_EQ(sizes[0], OFFLOAD_BATCH_MAX);
    CHECK_INT_EQ(sizes[1], 3);
    CHECK_INT_EQ((int)offload_pending(o), 0);
    static item_t late = {.id = 7};
    offload_run_batch_in(o, 0, batch, &late); /* stopped: a batch of one, on this thread */
    CHECK_INT_EQ(nsizes, 3);
    CHECK_INT_EQ(sizes[2], 1);
    offload_free(o);
}

/* A batch whose first call waits at the gate; each call's thread logged. */
static pthread_t batch_threads[8];

static void gated_batch(void **uds, size_t n)
{
    pthread_mutex_lock(&rig.mu);
    bool first = nsizes == 0;
    if (nsizes < 8)
        batch_threads[nsizes] = pthread_self();
    pthread_mutex_unlock(&rig.mu);
    batch(uds, n);
    if (!first)
        return;
    pthread_mutex_lock(&rig.mu);
    rig.started++;
    pthread_cond_broadcast(&rig.cv);
    while (!rig.open)
        pthread_cond_wait(&rig.cv, &rig.mu);
    pthread_mutex_unlock(&rig.mu);
}

/* A serial class (offload_serial_batches): batch items queued while a
 * batch runs wake none of the idle workers; the running batch's worker
 * takes them all as its next batch when it ends.  Without it, the first
 * item queued meanwhile woke a free worker at once (a batch of one). */
TEST(a_serial_class_leaves_items_queued_during_a_batch_to_its_worker)
{
    offload_t *o = NULL;
    CHECK(offload_new_classes("test", 4, 1, NULL, &o) == PAI_OK);
    if (!o)
        return;
    offload_serial_batches(o, 0);
    usleep(100 * 1000); /* the workers asleep at their wait: a starting one looks at the queue */
    pthread_mutex_lock(&rig.mu); /* the earlier tests' gate, log and sizes */
    rig.open = false;
    rig.started = rig.n = nsizes = 0;
    pthread_mutex_unlock(&rig.mu);
    static item_t b[5];
    b[0] = (item_t){.id = 1};
    offload_run_batch_in(o, 0, gated_batch, &b[0]);
    int one = 1;
    CHECK(wait_for(started_at_least, &one)); /* the first batch runs, at the gate */
    for (int i = 1; i < 5; i++) {
        b[i] = (item_t){.id = 10 + i};
        offload_run_batch_in(o, 0, gated_batch, &b[i]);
    }
    usleep(50 * 1000); /* three idle workers: none may take them */
    pthread_mutex_lock(&rig.mu);
    CHECK_INT_EQ(nsizes, 1);
    pthread_mutex_unlock(&rig.mu);
    CHECK_INT_EQ((int)offload_pending(o), 5);
    open_gate();
    for (int i = 0; i < 5000 && offload_pending(o) > 0; i++)
        usleep(1000);
    CHECK_INT_EQ((int)offload_pending(o), 0);
    pthread_mutex_lock(&rig.mu);
    CHECK_INT_EQ(nsizes, 2);
    CHECK_INT_EQ(sizes[1], 4); /* the four queued meanwhile, in one call */
    CHECK(pthread_equal(batch_threads[0], batch_threads[1]));
    pthread_mutex_unlock(&rig.mu);
    offload_free(o);
}

/* gated_batch, having answered its items first (offload_batch_answered). */
static void answered_batch(void **uds, size_t n)
{
    offload_batch_answered();
    offload_batch_answered(); /* again: nothing */
    gated_batch(uds, n);
}

/* A serial class's batch that has answered its items no longer holds the
 * items queued after it: a free worker takes them at once, while it
 * still runs (its thread may wait for a CPU behind the clients its
 * answers woke). */
TEST(a_batch_that_answered_leaves_the_next_items_to_a_free_worker)
{
    offload_t *o = NULL;
    CHECK(offload_new_classes("test", 4, 1, NULL, &o) == PAI_OK);
    if (!o)
        return;
    offload_serial_batches(o, 0);
    usleep(100 * 1000); /* the workers asleep at their wait */
    pthread_mutex_lock(&rig.mu);
    rig.open = false;
    rig.started = rig.n = nsizes = 0;
    pthread_mutex_unlock(&rig.mu);
    static item_t b[4];
    b[0] = (item_t){.id = 1};
    offload_run_batch_in(o, 0, answered_batch, &b[0]);
    int one = 1;
    CHECK(wait_for(started_at_least, &one)); /* answered, then at the gate */
    for (int i = 1; i < 4; i++) {
        b[i] = (item_t){.id = 10 + i};
        offload_run_batch_in(o, 0, answered_batch, &b[i]);
    }
    for (int i = 0; i < 5000 && offload_pending(o) > 1; i++)
        usleep(1000); /* taken by another worker while the first waits */
    CHECK_INT_EQ((int)offload_pending(o), 1);
    pthread_mutex_lock(&rig.mu);
    CHECK(nsizes >= 2);
    CHECK(!pthread_equal(batch_threads[0], batch_threads[1]));
    pthread_mutex_unlock(&rig.mu);
    open_gate();
    offload_free(o);
    offload_batch_answered(); /* on a thread that runs no batch: nothing */
}

TEST(bad_class_counts_are_refused)
{
    offload_t *o = (offload_t *)&rig;
    CHECK(offload_new_classes("test", 2, 0, NULL, &o) == PAI_E_INVALID);
    CHECK(o == NULL);
    CHECK(offload_new_classes("test", 2, OFFLOAD_MAX_CLASSES + 1, NULL, &o) == PAI_E_INVALID);
}

/* Which worker runs a job: the one idle since the shortest time.  Jobs run
 * one after another (each queued once the last has ended and its worker is
 * idle again: offload_pending counts a job until its worker is back on the
 * idle stack) all run on one of the 8 workers; woken in the order they
 * went idle, they would go round all of them. */
static pthread_t ran_on[16];

static void note_thread(void *ud)
{
    ran_on[(intptr_t)ud] = pthread_self();
}

TEST(one_job_at_a_time_runs_on_the_worker_idle_the_shortest)
{
    offload_t *o = NULL;
    CHECK(offload_new("test", 8, &o) == PAI_OK);
    usleep(50 * 1000); /* every worker idle */
    int same = 0;
    for (intptr_t i = 0; i < 16; i++) {
        offload_run(o, note_thread, (void *)i);
        for (int w = 0; w < 5000 && offload_pending(o) > 0; w++)
            usleep(1000);
        CHECK_INT_EQ((long long)offload_pending(o), 0);
        same += i > 0 && pthread_equal(ran_on[i], ran_on[i - 1]);
    }
    CHECK_INT_EQ(same, 15);
    offload_free(o);
}

RUN_TESTS(a_class_at_its_bound_leaves_workers_to_the_other,
          a_free_worker_takes_the_classes_in_turn_and_each_in_order,
          stop_runs_what_is_queued_then_runs_work_on_the_callers_thread,
          batch_items_queued_at_once_run_in_one_call_and_plain_items_keep_their_places,
          a_batch_takes_at_most_its_bound_and_the_rest_run_next,
          a_serial_class_leaves_items_queued_during_a_batch_to_its_worker,
          a_batch_that_answered_leaves_the_next_items_to_a_free_worker,
          one_job_at_a_time_runs_on_the_worker_idle_the_shortest, bad_class_counts_are_refused)
