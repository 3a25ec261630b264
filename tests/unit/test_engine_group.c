/*
 * test_engine_group.c - the group delay of submissions (persist.c,
 * engine_sub_group_wait): clients that each submit their next job once the
 * last is stored (a closed loop, as bench/e2e's 4 do) share one commit per
 * round, with a long queue (each batch's own flush) and a short one (each
 * batch's own pass and the flush after it); a lone submission and one
 * client submitting job after job never wait.  The delay's bound is set
 * long (group_delay_us) so that a loaded machine cannot make it time out;
 * without the delay (group_delay_us -1) the rounds commit about twice as
 * often and the first two tests fail.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"

#define CLIENTS 4
#define ROUNDS  15

/* The rig with the scheduler and timer threads running (a short queue's
 * submission runs its pass on its own thread only with them). */
static bool rig_open_threads(rig_t *r)
{
    if (!rig_open_store(r))
        return false;
    engine_opts_t o = {.node_lost_timeout_s = 3600, .starvation_ms = -1};
    engine_ops_t ops = {.ud = r, .now_ms = fake_now};
    pai_error_t e = PAI_ERROR_INIT;
    if (engine_new(r->st, &o, &ops, &r->e, &e) != PAI_OK) {
        fprintf(stderr, "  engine_new: %s\n", pai_error_msg(&e));
        pai_error_free(&e);
        return false;
    }
    return true;
}

static void set_delay(engine_t *j, int64_t us)
{
    engine_lock(j);
    j->persist.group_delay_us = us;
    engine_unlock(j);
}

typedef struct {
    rig_t *r;
    int id, ok;
} client_t;

/* One client: ROUNDS submissions, each once the last is answered. */
static void *client_main(void *arg)
{
    client_t *c = arg;
    for (int k = 0; k < ROUNDS; k++) {
        char name[32];
        snprintf(name, sizeof name, "c%d-%03d", c->id, k);
        c->ok += submit(c->r, name, 1, 0);
    }
    return NULL;
}

/* CLIENTS clients in a closed loop; the store's commits they took. */
static uint64_t closed_loop(rig_t *r)
{
    client_t c[CLIENTS];
    pthread_t t[CLIENTS];
    usleep(20 * 1000); /* the flushes before are over */
    uint64_t commits = store_commits(r->st);
    for (int i = 0; i < CLIENTS; i++) {
        c[i] = (client_t){.r = r, .id = i};
        CHECK(pthread_create(&t[i], NULL, client_main, &c[i]) == 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT_EQ(c[i].ok, ROUNDS);
    }
    return store_commits(r->st) - commits;
}

/* One GPU, busy, and ENGINE_SHORT_QUEUE jobs waiting behind it: each
 * submission is stored by its batch's own flush (stored_by_flush). */
TEST(a_closed_loop_of_clients_shares_one_commit_a_round_with_a_long_queue)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    char *busy = submit_running(&r, &a, "busy", 0);
    CHECK(submit_queue(&r));
    tick(&r); /* a pass: the queue's length as the engine sees it */
    engine_lock(r.e);
    CHECK(!engine_queue_short(r.e));
    engine_unlock(r.e);
    set_delay(r.e, 300 * 1000);
    uint64_t commits = closed_loop(&r);
    /* a round a commit (and the first client's first alone); without the
     * delay the clients split into two groups that alternate: ~2 a round */
    fprintf(stderr, "  %d rounds of %d clients: %llu commits, %llu delays\n", ROUNDS, CLIENTS,
            (unsigned long long)commits, (unsigned long long)r.e->persist.group_waits);
    CHECK(commits <= ROUNDS * 5 / 3);
    free(busy);
    agent_free(&a);
    rig_close(&r);
}

/* A node with room for the first jobs, the queue short: each batch runs
 * its pass on its own thread and stores its jobs, placed or waiting, with
 * the flush after it (pass_here). */
TEST(a_closed_loop_of_clients_shares_one_commit_a_round_with_a_short_queue)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 64};
    if (!rig_open_threads(&r)) {
        CHECK(!"rig_open_threads");
        return;
    }
    sync_quiet(&r, &a, NULL);
    set_delay(r.e, 300 * 1000);
    uint64_t here = r.e->pass.here;
    uint64_t commits = closed_loop(&r);
    fprintf(stderr, "  %d rounds of %d clients: %llu commits, %llu delays\n", ROUNDS, CLIENTS,
            (unsigned long long)commits, (unsigned long long)r.e->persist.group_waits);
    CHECK(r.e->pass.here > here); /* the short queue's path */
    CHECK(commits <= ROUNDS * 5 / 3);
    sync_quiet(&r, &a, NULL); /* those that fit placed by their pass, stored, sent */
    CHECK(ndesired(&a) > 0);
    char *text = NULL;
    CHECK(store_get(r.st, "job", "alice~c3-014", &text) == PAI_OK);
    free(text);
    agent_free(&a);
    rig_close(&r);
}

/* Nobody waits for clients that are not there: a lone submission (no
 * flush of submissions just before), and one client's submissions one
 * after the other (it is the client the last flush answered). */
TEST(a_lone_submission_and_a_lone_client_in_a_loop_are_not_delayed)
{
    rig_t r;
    agent_t a = {.name = "node-1", .address = "10.0.0.1", .ngpus = 1};
    if (!rig_open_synced(&r, &a)) {
        CHECK(!"rig_open_synced");
        return;
    }
    char *busy = submit_running(&r, &a, "busy", 0);
    CHECK(submit_queue(&r));
    tick(&r);
    set_delay(r.e, 300 * 1000);
    usleep(20 * 1000);
    int64_t t0 = time_mono_us();
    CHECK(submit(&r, "lone", 1, 0));
    char name[16];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "loop%02d", i);
        CHECK(submit(&r, name, 1, 0));
    }
    int64_t us = time_mono_us() - t0;
    CHECK_INT_EQ(r.e->persist.group_waits, 0);
    CHECK(us < 300 * 1000); /* not one delay's bound */
    free(busy);
    agent_free(&a);
    rig_close(&r);
}

RUN_TESTS(a_closed_loop_of_clients_shares_one_commit_a_round_with_a_long_queue,
          a_closed_loop_of_clients_shares_one_commit_a_round_with_a_short_queue,
          a_lone_submission_and_a_lone_client_in_a_loop_are_not_delayed)
