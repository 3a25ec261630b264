/* test_throttle.c - the login throttle (src/server/throttle.h): free
 * failures, doubling locks with a cap, forgetting, reset, bounded memory. */
#include <stdio.h>

#include "server/throttle.h"
#include "test.h"

static const throttle_opts_t OPTS = {
    .free_failures = 3, .base_ms = 1000, .max_ms = 8000, .forget_ms = 60000, .slots = 64};

TEST(free_failures_cost_nothing_then_locks_double_up_to_the_cap)
{
    throttle_t *t = throttle_new(&OPTS);
    for (int i = 0; i < 3; i++)
        CHECK_INT_EQ(throttle_fail(t, "u:alice", 0), 0);
    CHECK_INT_EQ(throttle_wait(t, "u:alice", 0), 0);
    CHECK_INT_EQ(throttle_fail(t, "u:alice", 0), 1000);
    CHECK_INT_EQ(throttle_wait(t, "u:alice", 400), 600);
    CHECK_INT_EQ(throttle_wait(t, "u:alice", 1000), 0);
    CHECK_INT_EQ(throttle_fail(t, "u:alice", 1000), 2000);
    CHECK_INT_EQ(throttle_fail(t, "u:alice", 3000), 4000);
    CHECK_INT_EQ(throttle_fail(t, "u:alice", 7000), 8000);
    CHECK_INT_EQ(throttle_fail(t, "u:alice", 15000), 8000); /* capped */
    throttle_free(t);
}

TEST(a_locked_key_does_not_lock_others)
{
    throttle_t *t = throttle_new(&OPTS);
    for (int i = 0; i < 10; i++)
        (void)throttle_fail(t, "u:alice", 0);
    CHECK(throttle_wait(t, "u:alice", 0) > 0);
    CHECK_INT_EQ(throttle_wait(t, "u:bob", 0), 0);
    throttle_free(t);
}

TEST(failures_are_forgotten_after_a_quiet_period_and_on_reset)
{
    throttle_t *t = throttle_new(&OPTS);
    for (int i = 0; i < 4; i++)
        (void)throttle_fail(t, "a:10.0.0.1", 0);
    CHECK(throttle_wait(t, "a:10.0.0.1", 0) > 0);
    /* a minute later without failures: free failures again */
    CHECK_INT_EQ(throttle_fail(t, "a:10.0.0.1", 61000), 0);
    for (int i = 0; i < 4; i++)
        (void)throttle_fail(t, "u:bob", 0);
    throttle_reset(t, "u:bob");
    CHECK_INT_EQ(throttle_wait(t, "u:bob", 0), 0);
    CHECK_INT_EQ(throttle_fail(t, "u:bob", 0), 0);
    throttle_free(t);
}

TEST(many_keys_stay_within_the_table_and_a_busy_key_survives)
{
    throttle_t *t = throttle_new(&OPTS);
    char key[32];
    for (int i = 0; i < 10; i++)
        (void)throttle_fail(t, "u:alice", 100000);
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "u:n%d", i);
        (void)throttle_fail(t, key, i / 1000); /* older than alice's failures */
    }
    CHECK(throttle_count(t) <= 64);
    CHECK(throttle_wait(t, "u:alice", 100000) > 0);
    throttle_free(t);
}

TEST(zero_free_failures_turns_throttling_off)
{
    throttle_opts_t o = OPTS;
    o.free_failures = 0;
    throttle_t *t = throttle_new(&o);
    for (int i = 0; i < 100; i++)
        CHECK_INT_EQ(throttle_fail(t, "u:x", 0), 0);
    CHECK_INT_EQ(throttle_wait(t, "u:x", 0), 0);
    throttle_free(t);
}

RUN_TESTS(free_failures_cost_nothing_then_locks_double_up_to_the_cap,
          a_locked_key_does_not_lock_others,
          failures_are_forgotten_after_a_quiet_period_and_on_reset,
          many_keys_stay_within_the_table_and_a_busy_key_survives,
          zero_free_failures_turns_throttling_off)
