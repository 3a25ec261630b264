/* test_runtime_stop.c - stopping an attempt in its first moments: a TERM
 * sent as its monitor is being born (the per-agent and the per-attempt
 * monitors). */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/monitor.h"
#include "runtime/runtime.h"
#include "test.h"

#include "runtime_fixture.h"

/* ---- holding the CPU while a monitor is forked ----------------------------
 * The test runs SCHED_FIFO on one CPU with SCHED_RESET_ON_FORK: a monitor
 * it forks is an ordinary process on that CPU, so it cannot run before the
 * test blocks.  A stop sent right after the start is then pending in a
 * monitor that has not run a single instruction of its own: the window of
 * a loaded node, every time.  False when the test may not do that (no
 * CAP_SYS_NICE, no real-time budget): the checks still run, the window is
 * then only likely. */
static cpu_set_t held_from;

static bool hold_cpu(void)
{
    cpu_set_t one;
    struct sched_param p = {.sched_priority = 1};
    int cpu = sched_getcpu();
    if (cpu < 0 || sched_getaffinity(0, sizeof(held_from), &held_from) != 0)
        return false;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0)
        return false;
    if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &p) != 0) {
        sched_setaffinity(0, sizeof(held_from), &held_from);
        return false;
    }
    return true;
}

static void release_cpu(bool held)
{
    struct sched_param p = {.sched_priority = 0};
    if (!held)
        return;
    sched_setscheduler(0, SCHED_OTHER, &p);
    sched_setaffinity(0, sizeof(held_from), &held_from);
}

/* Start cmd and stop it at once (graceful), the monitor not yet run. */
static void start_and_stop_at_once(const char *name, const char *cmd, rt_task_t *t)
{
    char dir[512];
    rt_spec_t s;
    const runtime_ops_t *ops = runtime_find("process");
    setup_dirs(name, dir, sizeof(dir));
    spec_init(&s, dir, cmd);
    bool held = hold_cpu();
    pai_err_t rc = ops->start(ops, &s, t);
    if (rc == PAI_OK)
        ops->kill(ops, t, false, 5);
    release_cpu(held);
    if (!held)
        printf("# no SCHED_FIFO here: the stop may reach the monitor after it is up\n");
    CHECK(rc == PAI_OK);
}

/* A stop that reaches a per-agent monitor before it has set up its signal
 * handling is kept (it was lost with the monitor: the attempt reported
 * lost, -1001, instead of 143; test_agent_fake under load). */
TEST(a_stop_sent_as_a_shared_monitor_is_born_ends_the_task_gracefully)
{
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    start_and_stop_at_once("born-mond", "trap 'exit 143' TERM; sleep 30 & wait", &t);
    CHECK(t.mon_key != 0);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 143);
    ops->release(&t);
}

/* The same for a monitor of its own (PAI_MONITOR=per-task, containers). */
TEST(a_stop_sent_as_a_task_monitor_is_born_ends_the_task_gracefully)
{
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    setenv("PAI_MONITOR", "per-task", 1);
    start_and_stop_at_once("born-mon", "trap 'exit 143' TERM; sleep 30 & wait", &t);
    CHECK(t.mon_key == 0);
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 143);
    ops->release(&t);
    unsetenv("PAI_MONITOR");
}

RUN_TESTS(a_stop_sent_as_a_shared_monitor_is_born_ends_the_task_gracefully,
          a_stop_sent_as_a_task_monitor_is_born_ends_the_task_gracefully)
