/* test_logquota.c - the per-user bound on log reads in flight
 * (src/server/logproxy.h, logproxy_quota_t): per user, given back, 0 means
 * no bound, and 8 threads taking and giving keep the count right. */
#include <pthread.h>

#include "server/logproxy.h"
#include "test.h"

TEST(each_user_has_its_own_bound_and_gets_reads_back)
{
    logproxy_quota_t *q = logproxy_quota_new(2);
    CHECK(logproxy_quota_take(q, "mallory"));
    CHECK(logproxy_quota_take(q, "mallory"));
    CHECK(!logproxy_quota_take(q, "mallory"));
    CHECK(logproxy_quota_take(q, "alice")); /* another user is not affected */
    logproxy_quota_give(q, "mallory");
    CHECK(logproxy_quota_take(q, "mallory"));
    CHECK(!logproxy_quota_take(q, "mallory"));
    logproxy_quota_give(q, "mallory");
    logproxy_quota_give(q, "mallory");
    logproxy_quota_give(q, "mallory"); /* one too many: harmless */
    CHECK(logproxy_quota_take(q, "mallory"));
    CHECK(logproxy_quota_take(q, "mallory"));
    logproxy_quota_free(q);
}

TEST(zero_is_no_bound)
{
    logproxy_quota_t *q = logproxy_quota_new(0);
    for (int i = 0; i < 1000; i++)
        CHECK(logproxy_quota_take(q, "u"));
    logproxy_quota_free(q);
}

static void *churn(void *ud)
{
    logproxy_quota_t *q = ud;
    for (int i = 0; i < 2000; i++)
        if (logproxy_quota_take(q, "shared"))
            logproxy_quota_give(q, "shared");
    return NULL;
}

TEST(threads_taking_and_giving_leave_the_count_at_zero)
{
    logproxy_quota_t *q = logproxy_quota_new(4);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        CHECK(pthread_create(&t[i], NULL, churn, q) == 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        CHECK(logproxy_quota_take(q, "shared"));
    CHECK(!logproxy_quota_take(q, "shared"));
    logproxy_quota_free(q);
}

RUN_TESTS(each_user_has_its_own_bound_and_gets_reads_back, zero_is_no_bound,
          threads_taking_and_giving_leave_the_count_at_zero)
