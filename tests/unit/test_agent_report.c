/* test_agent_report.c - when a node reports its local changes (report.c):
 * the coalescing window of its syncs, from the node's typical run time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "test.h"

#define NOW 1000000

/* A node with k attempts, none started yet. */
static agent_node_t *node_with(size_t k)
{
    agent_node_t *n = xcalloc(1, sizeof(*n));
    n->tasks = xcalloc(k + 1, sizeof(*n->tasks));
    for (size_t i = 0; i < k; i++) {
        n->tasks[i] = xcalloc(1, sizeof(agent_task_t));
        n->tasks[i]->phase = RC_DONE;
    }
    n->ntasks = n->nlive = k;
    n->report_due_ms = INT64_MAX;
    return n;
}

static void node_drop(agent_node_t *n)
{
    for (size_t i = 0; i < n->ntasks; i++)
        free(n->tasks[i]);
    free(n->tasks);
    free(n);
}

static void running(agent_node_t *n, size_t i, int64_t started)
{
    n->tasks[i]->phase = RC_ACTIVE;
    n->tasks[i]->started_here = true;
    n->tasks[i]->start_mono_ms = started;
}

static int64_t due(agent_node_t *n, int64_t now)
{
    return report_due(n, report_pending(n, now));
}

TEST(nothing_changed_is_never_due)
{
    agent_node_t *n = node_with(1);
    running(n, 0, NOW - 5);
    CHECK(due(n, NOW) == INT64_MAX);
    node_drop(n);
}

TEST(without_history_an_end_goes_at_once_and_a_start_after_30_ms)
{
    agent_node_t *n = node_with(2);
    running(n, 0, NOW - 5); /* nothing is expected to end soon: no history */
    n->dirty = true;
    n->ended_ms = NOW;
    CHECK_INT_EQ(report_pending(n, NOW), 0);
    CHECK_INT_EQ(due(n, NOW), NOW + 2);
    n->ended_ms = 0;
    n->start_ms = NOW;
    CHECK_INT_EQ(due(n, NOW), NOW + 30);
    node_drop(n);
}

TEST(short_tasks_an_end_waits_for_the_others_started_with_it)
{
    agent_node_t *n = node_with(3);
    report_ran(n, 100); /* the node's tasks last ~100 ms */
    CHECK_INT_EQ(n->run_ewma_ms, 100);
    running(n, 0, NOW - 80);
    running(n, 1, NOW - 80);
    n->dirty = true;
    n->ended_ms = NOW;
    CHECK_INT_EQ(report_pending(n, NOW), 2);
    /* half the run time, with the windows' slack (report.c: 12 ms) */
    CHECK_INT_EQ(due(n, NOW), NOW + (100 + 12) / 2);
    /* started less than twice the run time and the slack ago: waited for */
    running(n, 0, NOW - 2 * (100 + 12) + 1);
    CHECK_INT_EQ(report_pending(n, NOW), 2);
    /* one of them ran past twice the run time: not waited for */
    running(n, 0, NOW - 2 * (100 + 12));
    CHECK_INT_EQ(report_pending(n, NOW), 1);
    running(n, 0, NOW - 250);
    CHECK_INT_EQ(report_pending(n, NOW), 1);
    /* the last one ends: nothing pending, the report goes at once */
    n->tasks[1]->phase = RC_DONE;
    n->tasks[0]->phase = RC_DONE;
    CHECK_INT_EQ(due(n, NOW + 10), NOW + 2);
    node_drop(n);
}

TEST(short_tasks_their_start_waits_for_their_end_within_bounds)
{
    agent_node_t *n = node_with(1);
    report_ran(n, 100);
    running(n, 0, NOW);
    n->dirty = true;
    n->start_ms = NOW;
    CHECK_INT_EQ(due(n, NOW), NOW + 150); /* the measured run time, no slack */
    /* an end meanwhile of another: the earlier of the two */
    n->ended_ms = NOW + 20;
    CHECK_INT_EQ(due(n, NOW + 20), NOW + 20 + (100 + 12) / 2); /* the end's: with the slack */
    n->ended_ms = 0;
    /* longer runs: at most 250 ms */
    n->run_ewma_ms = 200;
    CHECK_INT_EQ(due(n, NOW), NOW + 250);
    /* long tasks: no waiting for their end, the start goes after 30 ms */
    n->run_ewma_ms = 5000;
    CHECK_INT_EQ(report_pending(n, NOW), 0);
    CHECK_INT_EQ(due(n, NOW), NOW + 30);
    /* fast tasks: never under 30 ms, the end window never under 10 */
    n->run_ewma_ms = 4;
    CHECK_INT_EQ(due(n, NOW), NOW + 30);
    n->ended_ms = NOW;
    running(n, 0, NOW - 1);
    CHECK_INT_EQ(due(n, NOW), NOW + 10);
    node_drop(n);
}

/* A full node (every GPU, or every CPU, given to a running attempt) has
 * nothing to wait for from the server but a stop: a start's report waits
 * for an end up to a second, however long its task runs, so a task that
 * runs longer than its like costs no report of its start alone. */
TEST(on_a_full_node_a_start_waits_for_an_end_up_to_a_second)
{
    agent_node_t *n = node_with(2);
    n->gpus.n = 8;
    n->cpus = 16;
    report_ran(n, 100);
    running(n, 0, NOW);
    running(n, 1, NOW);
    n->tasks[0]->meta.ngpus = 4;
    n->tasks[1]->meta.ngpus = 2;
    n->tasks[0]->cpu = n->tasks[1]->cpu = 4;
    n->dirty = true;
    n->start_ms = NOW;
    CHECK(!report_node_full(n)); /* two GPUs free */
    CHECK_INT_EQ(due(n, NOW), NOW + 150);
    n->tasks[1]->meta.ngpus = 4;
    CHECK(report_node_full(n));
    CHECK_INT_EQ(due(n, NOW), NOW + 1000);
    CHECK_INT_EQ(due(n, NOW + 300), NOW + 1000); /* past twice the run time too */
    /* an end comes: no longer full, the windows of any node (the
     * start's 1.5x the run time is the earlier here) */
    n->tasks[1]->phase = RC_DONE;
    n->ended_ms = NOW + 120;
    CHECK(!report_node_full(n));
    CHECK_INT_EQ(due(n, NOW + 120), NOW + 150);
    /* every CPU taken, GPUs free: full too */
    n->tasks[1]->phase = RC_ACTIVE;
    n->tasks[1]->meta.ngpus = 0;
    n->tasks[1]->cpu = 12;
    n->ended_ms = 0;
    CHECK(report_node_full(n));
    CHECK_INT_EQ(due(n, NOW), NOW + 1000);
    /* long tasks, or no history: the same on a full node (after 30 ms
     * on another) */
    n->run_ewma_ms = 5000;
    CHECK_INT_EQ(due(n, NOW), NOW + 1000);
    n->tasks[1]->cpu = 4;
    CHECK_INT_EQ(due(n, NOW), NOW + 30);
    n->tasks[1]->cpu = 12;
    /* a node without GPUs or CPUs reported is never full by them */
    n->gpus.n = 0;
    n->cpus = 0;
    CHECK(!report_node_full(n));
    node_drop(n);
}

TEST(an_end_waits_at_most_100_ms_and_for_stops_in_flight)
{
    agent_node_t *n = node_with(2);
    report_ran(n, 240);
    running(n, 0, NOW - 100);
    n->dirty = true;
    n->ended_ms = NOW;
    CHECK_INT_EQ(due(n, NOW), NOW + 100);
    n->tasks[0]->phase = RC_DONE;
    n->tasks[1]->phase = RC_STOPPING; /* a stop's end comes soon */
    CHECK_INT_EQ(report_pending(n, NOW), 1);
    CHECK_INT_EQ(due(n, NOW), NOW + 100);
    node_drop(n);
}

TEST(another_change_goes_after_10_ms)
{
    agent_node_t *n = node_with(0);
    n->dirty = true; /* a GPU's health, a recovery */
    n->dirty_ms = NOW;
    CHECK_INT_EQ(due(n, NOW), NOW + 10);
    node_drop(n);
}

TEST(the_run_time_follows_the_node_s_tasks)
{
    agent_node_t *n = node_with(0);
    report_ran(n, -5); /* a clock that went back: ignored */
    CHECK_INT_EQ(n->run_ewma_ms, 0);
    report_ran(n, 0);
    CHECK_INT_EQ(n->run_ewma_ms, 1); /* 0 is "none yet" */
    for (int i = 0; i < 40; i++)
        report_ran(n, 200);
    CHECK(n->run_ewma_ms >= 190 && n->run_ewma_ms <= 200);
    for (int i = 0; i < 40; i++)
        report_ran(n, 20);
    CHECK(n->run_ewma_ms >= 20 && n->run_ewma_ms <= 25);
    node_drop(n);
}

RUN_TESTS(nothing_changed_is_never_due, without_history_an_end_goes_at_once_and_a_start_after_30_ms,
          short_tasks_an_end_waits_for_the_others_started_with_it,
          short_tasks_their_start_waits_for_their_end_within_bounds,
          on_a_full_node_a_start_waits_for_an_end_up_to_a_second,
          an_end_waits_at_most_100_ms_and_for_stops_in_flight, another_change_goes_after_10_ms,
          the_run_time_follows_the_node_s_tasks)
