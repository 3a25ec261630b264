/* test_lifecycle.c - job/task state machines, completion and retry policies. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "engine/lifecycle.h"
#include "test.h"

static lc_reaction_t react(int code)
{
    switch (code) {
    case -1001: /* node lost */
    case 137:
        return LC_ALWAYS_RETRY;
    case 1:
    case -220:
        return LC_RETRY_TO_MAX;
    default:
        return LC_NEVER_RETRY;
    }
}

/* A job with roles given as (instances, min_failed, min_succeeded) triples. */
static lc_job_t *job_new(int nroles, const int *spec, int retry_count, bool gang)
{
    lc_job_t *j = xcalloc(1, sizeof(*j));
    j->name = xstrdup("alice~t");
    j->user_len = 5;
    j->gang = gang;
    j->job_retry_count = retry_count;
    j->task_retry_count = retry_count;
    j->nroles = nroles;
    j->roles = xcalloc((size_t)nroles, sizeof(lc_role_t));
    for (int r = 0; r < nroles; r++) {
        j->roles[r].name = xstrdup(r == 0 ? "master" : "worker");
        j->roles[r].instances = spec[3 * r];
        j->roles[r].min_failed = spec[3 * r + 1];
        j->roles[r].min_succeeded = spec[3 * r + 2];
    }
    return j;
}

static void begin(lc_job_t *j)
{
    lc_place_t pl[2][8];
    const lc_place_t *rows[2] = {pl[0], pl[1]};
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 8; i++)
            pl[r][i] = (lc_place_t){"n1", "127.0.0.1", 0, NULL, 0, NULL};
    lc_effects_t fx = {0};
    lc_attempt_begin(j, rows, 1, &fx);
    CHECK(fx.desired_changed);
    for (int r = 0; r < j->nroles; r++)
        for (int i = 0; i < j->roles[r].instances; i++)
            lc_task_running(j, r, i, 2, &fx);
}

/* Every STOPPING task confirms it is gone. */
static lc_effects_t drain(lc_job_t *j)
{
    lc_effects_t fx = {0};
    for (int r = 0; r < j->nroles; r++)
        for (int i = 0; i < j->roles[r].instances; i++) {
            lc_task_attempt_t *ta = lc_task_current(j, r, i);
            if (ta->state == TASK_STOPPING)
                lc_task_exited(j, r, i, 143, NULL, 9, react, &fx);
        }
    return fx;
}

TEST(default_policy_succeeds_when_all_tasks_complete)
{
    int spec[] = {2, 1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    begin(j);
    CHECK_INT_EQ(j->state, JOB_RUNNING);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 0, 0, NULL, 3, react, &fx);
    CHECK_INT_EQ(j->state, JOB_RUNNING);
    CHECK(!fx.final);
    lc_task_exited(j, 0, 1, 0, NULL, 4, react, &fx);
    CHECK_INT_EQ(j->state, JOB_SUCCEEDED);
    CHECK(fx.final && fx.release);
    CHECK_STR_EQ(lc_current(j)->trigger_msg, "All Tasks are completed");
    lc_job_free(j);
}

TEST(master_dominated_success_stops_workers)
{
    int spec[] = {1, 1, 1, 3, 1, -1};
    lc_job_t *j = job_new(2, spec, 0, true);
    begin(j);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 0, 0, NULL, 3, react, &fx);
    CHECK_INT_EQ(lc_task_current(j, 1, 2)->state, TASK_STOPPING);
    CHECK_INT_EQ(j->state, JOB_RUNNING);
    CHECK_STR_EQ(lc_current(j)->trigger_role, "master");
    fx = drain(j);
    CHECK_INT_EQ(j->state, JOB_SUCCEEDED);
    CHECK_INT_EQ(lc_task_current(j, 1, 0)->state, TASK_STOPPED);
    CHECK_INT_EQ(lc_task_current(j, 1, 0)->exit_code, -220);
    CHECK(fx.final);
    lc_job_free(j);
}

TEST(one_failed_worker_fails_the_attempt_and_retries_to_max)
{
    int spec[] = {3, 1, -1};
    lc_job_t *j = job_new(1, spec, 1, true);
    begin(j);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 1, 1, "boom", 3, react, &fx);
    CHECK_INT_EQ(lc_current(j)->trigger_index, 1);
    fx = drain(j);
    CHECK_INT_EQ(j->state, JOB_WAITING);
    CHECK(fx.requeue && fx.release);
    CHECK_INT_EQ(j->retries, 1);
    CHECK_INT_EQ(j->acc_retries, 1);
    begin(j);
    CHECK_INT_EQ(j->natts, 2);
    fx = (lc_effects_t){0};
    lc_task_exited(j, 0, 0, 1, NULL, 5, react, &fx);
    drain(j);
    CHECK_INT_EQ(j->state, JOB_FAILED);
    CHECK_INT_EQ(j->exit_code, 1);
    lc_job_free(j);
}

TEST(elastic_workers_failures_do_not_fail_the_job)
{
    int spec[] = {3, -1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    begin(j);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 0, 1, NULL, 3, react, &fx);
    lc_task_exited(j, 0, 1, 1, NULL, 3, react, &fx);
    CHECK_INT_EQ(j->state, JOB_RUNNING);
    lc_task_exited(j, 0, 2, 0, NULL, 3, react, &fx);
    CHECK_INT_EQ(j->state, JOB_SUCCEEDED);
    lc_job_free(j);
}

TEST(permanent_exit_is_never_retried)
{
    int spec[] = {1, 1, -1};
    lc_job_t *j = job_new(1, spec, 5, true);
    begin(j);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 0, 2, NULL, 3, react, &fx);
    CHECK_INT_EQ(j->state, JOB_FAILED);
    CHECK_INT_EQ(j->retries, 0);
    lc_job_free(j);
}

TEST(transient_exit_is_retried_without_counting)
{
    int spec[] = {1, 1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    begin(j);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 0, EXIT_NODE_LOST, NULL, 3, react, &fx);
    CHECK_INT_EQ(j->state, JOB_WAITING);
    CHECK_INT_EQ(j->retries, 1);
    CHECK_INT_EQ(j->acc_retries, 0);
    CHECK(j->retry_at_ms > 3);
    lc_job_free(j);
}

TEST(stop_running_job_ends_stopped)
{
    int spec[] = {2, 1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    begin(j);
    for (int i = 0; i < 2; i++)
        lc_task_current(j, 0, i)->sent = true; /* the node has them */
    lc_effects_t fx = {0};
    lc_stop(j, 3, &fx);
    CHECK_INT_EQ(j->state, JOB_STOPPING);
    CHECK(fx.desired_changed);
    fx = drain(j);
    CHECK_INT_EQ(j->state, JOB_STOPPED);
    CHECK_INT_EQ(lc_task_current(j, 0, 0)->exit_code, EXIT_STOP_REQUESTED);
    lc_job_free(j);
}

TEST(stop_before_any_node_got_the_tasks_is_immediate)
{
    int spec[] = {2, 1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    begin(j); /* placed, but no desired set with them was answered yet */
    lc_effects_t fx = {0};
    lc_stop(j, 3, &fx);
    CHECK_INT_EQ(j->state, JOB_STOPPED);
    CHECK(fx.desired_changed);
    CHECK_INT_EQ(lc_task_current(j, 0, 1)->state, TASK_STOPPED);
    CHECK_INT_EQ(lc_task_current(j, 0, 1)->exit_code, EXIT_STOP_REQUESTED);
    lc_job_free(j);
}

TEST(stop_waiting_job_is_immediate)
{
    int spec[] = {1, 1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    lc_effects_t fx = {0};
    lc_stop(j, 3, &fx);
    CHECK_INT_EQ(j->state, JOB_STOPPED);
    CHECK(fx.final);
    lc_job_free(j);
}

TEST(non_gang_task_retry_restarts_the_task_only)
{
    int spec[] = {2, 1, -1};
    lc_job_t *j = job_new(1, spec, 1, false);
    j->job_retry_count = 0;
    begin(j);
    lc_effects_t fx = {0};
    lc_task_exited(j, 0, 0, 1, NULL, 3, react, &fx);
    CHECK_INT_EQ(j->state, JOB_RUNNING);
    CHECK_INT_EQ(lc_task_current(j, 0, 0)->index, 1);
    CHECK_INT_EQ(lc_task_current(j, 0, 0)->state, TASK_WAITING);
    lc_task_exited(j, 0, 0, 1, NULL, 4, react, &fx);
    CHECK_INT_EQ(lc_current(j)->completing, 1);
    drain(j);
    CHECK_INT_EQ(j->state, JOB_FAILED);
    lc_job_free(j);
}

TEST(illegal_transition_is_refused)
{
    int spec[] = {1, 1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    j->state = JOB_SUCCEEDED;
    CHECK(!lc_job_set_state(j, JOB_RUNNING));
    CHECK_INT_EQ(j->state, JOB_SUCCEEDED);
    lc_job_free(j);
}

TEST(tags_add_and_remove)
{
    int spec[] = {1, 1, -1};
    lc_job_t *j = job_new(1, spec, 0, true);
    lc_add_tag(j, "a");
    lc_add_tag(j, "a");
    lc_add_tag(j, "b");
    CHECK_INT_EQ(j->ntags, 2);
    CHECK(lc_del_tag(j, "a"));
    CHECK(!lc_del_tag(j, "a"));
    CHECK(lc_has_tag(j, "b"));
    lc_job_free(j);
}

RUN_TESTS(default_policy_succeeds_when_all_tasks_complete, master_dominated_success_stops_workers,
          one_failed_worker_fails_the_attempt_and_retries_to_max,
          elastic_workers_failures_do_not_fail_the_job, permanent_exit_is_never_retried,
          transient_exit_is_retried_without_counting, stop_running_job_ends_stopped,
          stop_before_any_node_got_the_tasks_is_immediate, stop_waiting_job_is_immediate,
          non_gang_task_retry_restarts_the_task_only, illegal_transition_is_refused,
          tags_add_and_remove)
