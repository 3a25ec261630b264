/* test_runtime_mond.c - the ends of a per-agent monitor's attempts on its
 * socket (mond.c, mond_agent.c): many at once, a socket the caller does
 * not read for a while, a monitor killed with attempts in flight, a start
 * the monitor cannot read.  The caller waits as the agent does: on the
 * monitors' sockets (rt_watch_fds), one read per socket that fired
 * (rt_watch_drain), then a poll of the attempts told of (rt_task_news). */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/monitor.h"
#include "runtime/runtime.h"
#include "test.h"

#include "runtime_fixture.h"
#include "thread_stats.h"

#define MANY 24

/* Wait as the agent's loop does until every busy attempt of t[0..n) has
 * ended (res[i] filled, done[i] set) or secs pass; the number that ended.
 * *drains counts the socket reads, *told the attempts that had news after
 * one (several ends in one read: more told than drains). */
static int wait_all(rt_task_t *t, rt_result_t *res, bool *done, int n, int secs, int *drains,
                    int *told)
{
    const runtime_ops_t *ops = runtime_find("process");
    int ended = 0;
    for (int i = 0; i < n; i++)
        ended += done[i];
    int64_t until = time_mono_ms() + secs * 1000;
    do { /* one look at least */
        int fds[RT_MONITORS];
        struct pollfd pf[RT_MONITORS];
        size_t w = rt_watch_fds(fds, RT_MONITORS);
        for (size_t j = 0; j < w; j++)
            pf[j] = (struct pollfd){fds[j], POLLIN, 0};
        poll(pf, w, 50);
        for (size_t j = 0; j < w; j++)
            if (pf[j].revents && rt_watch_drain(fds[j]) && drains)
                (*drains)++;
        for (int i = 0; i < n; i++) {
            if (done[i] || !(rt_task_news(&t[i]) || rt_notify_fd(&t[i]) < 0))
                continue;
            if (told)
                (*told)++;
            if (ops->poll(ops, &t[i], &res[i])) {
                done[i] = true;
                ended++;
            }
        }
    } while (ended < n && time_mono_ms() < until);
    return ended;
}

/* Many attempts that end at the same moment (each waits for a lock the
 * test holds, then exits with its own code): every end arrives, each with
 * its own attempt's code, however many share a message. */
TEST(many_ends_at_once_on_one_monitors_socket_each_reach_their_attempt)
{
    char dir[512], lock[600], cmd[700];
    rt_spec_t s;
    rt_task_t t[MANY];
    rt_result_t res[MANY];
    bool done[MANY] = {false};
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    snprintf(lock, sizeof(lock), "%s/many.lock", base);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(lfd >= 0 && flock(lfd, LOCK_EX) == 0);
    for (int i = 0; i < MANY; i++) {
        char name[32];
        snprintf(name, sizeof(name), "many%d", i);
        setup_dirs(name, dir, sizeof(dir));
        snprintf(cmd, sizeof(cmd), "flock -s %s true; exit %d", lock, i + 1);
        spec_init(&s, dir, cmd);
        CHECK(ops->start(ops, &s, &t[i]) == PAI_OK && t[i].mon_gen != 0);
        CHECK(t[i].notify_fd < 0); /* no fd of its own */
    }
    /* all of them waiting for the lock */
    for (int i = 0; i < MANY; i++)
        for (int k = 0; k < 250 && rt_task_pid(t[i].state_dir) <= 0; k++)
            usleep(20 * 1000);
    usleep(300 * 1000);
    int drains = 0, told = 0;
    CHECK_INT_EQ(wait_all(t, res, done, MANY, 0, &drains, &told), 0); /* none ended yet */
    close(lfd); /* the lock is free: they all end now */
    CHECK_INT_EQ(wait_all(t, res, done, MANY, 20, &drains, &told), MANY);
    for (int i = 0; i < MANY; i++) {
        CHECK_INT_EQ(res[i].state, RT_EXITED);
        CHECK_INT_EQ(res[i].exit_code, i + 1);
        ops->release(&t[i]);
    }
    printf("# %d ends, %d socket reads\n", MANY, drains);
    CHECK(drains <= MANY);
}

/* The monitor's own end of its socket (its fd 3), through pidfd_getfd:
 * the same socket, whose send buffer the test can shrink; false when this
 * kernel or this process may not. */
static bool shrink_monitors_sndbuf(pid_t mon)
{
    int pfd = (int)syscall(SYS_pidfd_open, mon, 0);
    int fd = pfd >= 0 ? (int)syscall(SYS_pidfd_getfd, pfd, 3, 0) : -1;
    int small = 1; /* the kernel's least (SOCK_MIN_SNDBUF): a few messages */
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0;
    if (fd >= 0)
        close(fd);
    if (pfd >= 0)
        close(pfd);
    return ok;
}

/* A caller that reads nothing for a while: the monitor keeps the ends its
 * socket cannot take (its send buffer shrunk to a few messages) and goes
 * on running its attempts (their records get their exit lines); they all
 * arrive once the caller reads again. */
#define UNREAD 96
TEST(ends_wait_in_the_monitor_while_the_caller_does_not_read)
{
    char dir[512], line[64];
    rt_spec_t s;
    static rt_task_t t[UNREAD];
    static rt_result_t res[UNREAD];
    static bool done[UNREAD];
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    mond_shutdown(); /* fresh monitors: nothing queued */
    for (int i = 0; i < UNREAD; i++) {
        char name[32];
        snprintf(name, sizeof(name), "unread%d", i);
        setup_dirs(name, dir, sizeof(dir));
        spec_init(&s, dir, i % 2 ? "exit 3" : "exit 4");
        CHECK(ops->start(ops, &s, &t[i]) == PAI_OK);
        for (int w = 0; i < RT_MONITORS && w < 500 && rt_task_pid(t[i].state_dir) <= 0; w++)
            usleep(10 * 1000); /* its loop is up: its socket is its fd 3 */
        if (i < RT_MONITORS && !shrink_monitors_sndbuf(t[i].monitor_pid)) {
            test_skip("no pidfd_getfd here");
            return;
        }
        if (i % 8 == 7) /* a few at a time, as a node runs them: many messages */
            for (int k = i - 7; k <= i; k++)
                for (int w = 0;
                     w < 500 && !rt_record_get(t[k].state_dir, "exit ", line, sizeof(line)); w++)
                    usleep(5 * 1000);
    }
    int over = 0;
    for (int i = 0; i < UNREAD; i++) { /* all over, none told yet */
        for (int w = 0; w < 500 && !rt_record_get(t[i].state_dir, "exit ", line, sizeof(line)); w++)
            usleep(10 * 1000);
        over += rt_record_get(t[i].state_dir, "exit ", line, sizeof(line));
    }
    CHECK_INT_EQ(over, UNREAD);
    CHECK_INT_EQ(wait_all(t, res, done, UNREAD, 30, NULL, NULL), UNREAD);
    int bad = 0;
    for (int i = 0; i < UNREAD; i++) {
        bad += res[i].exit_code != (i % 2 ? 3 : 4);
        ops->release(&t[i]);
    }
    CHECK_INT_EQ(bad, 0);
}

/* Monitors killed with attempts in flight: their sockets' end is the end
 * of every attempt they held, found at the read that sees it (the record
 * has no exit line: lost; an attempt that had ended keeps its code). */
TEST(monitors_killed_with_attempts_in_flight_lose_them_at_their_sockets_end)
{
    char dir[512], line[64];
    rt_spec_t s;
    rt_task_t t[2 * RT_MONITORS + 1];
    rt_result_t res[2 * RT_MONITORS + 1];
    bool done[2 * RT_MONITORS + 1] = {false};
    const int n = 2 * RT_MONITORS + 1;
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    mond_shutdown(); /* fresh monitors */
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "killed%d", i);
        setup_dirs(name, dir, sizeof(dir));
        spec_init(&s, dir, i == 0 ? "exit 9" : "sleep 60");
        CHECK(ops->start(ops, &s, &t[i]) == PAI_OK);
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 250 && rt_task_pid(t[i].state_dir) <= 0; k++)
            usleep(20 * 1000);
    for (int k = 0; k < 250 && !rt_record_get(t[0].state_dir, "exit ", line, sizeof(line)); k++)
        usleep(20 * 1000);
    pid_t mons[RT_MONITORS] = {0};
    int nm = 0;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < nm; j++)
            seen |= mons[j] == t[i].monitor_pid;
        if (!seen && nm < RT_MONITORS)
            mons[nm++] = t[i].monitor_pid;
    }
    CHECK_INT_EQ(nm, RT_MONITORS);
    for (int j = 0; j < nm; j++)
        CHECK(kill(mons[j], SIGKILL) == 0);
    int64_t t0 = time_mono_ms();
    CHECK_INT_EQ(wait_all(t, res, done, n, 10, NULL, NULL), n);
    int64_t took = time_mono_ms() - t0;
    CHECK_INT_EQ(res[0].exit_code, 9);
    for (int i = 1; i < n; i++)
        CHECK_INT_EQ(res[i].exit_code, EXIT_NODE_LOST);
    /* told at their socket's end, not found by a poll of the pid later */
    CHECK(took < 2000);
    for (int i = 0; i < n; i++) {
        pid_t pid = rt_task_pid(t[i].state_dir);
        if (i > 0 && pid > 1)
            kill(-pid, SIGKILL); /* the orphaned tasks */
        ops->release(&t[i]);
    }
    for (int j = 0; j < nm; j++)
        waitpid(mons[j], NULL, 0);
    /* the next starts fork new monitors */
    setup_dirs("killed-next", dir, sizeof(dir));
    spec_init(&s, dir, "exit 6");
    CHECK(ops->start(ops, &s, &t[0]) == PAI_OK);
    CHECK(t[0].monitor_pid != mons[0] && t[0].monitor_pid != mons[RT_MONITORS - 1]);
    memset(done, 0, sizeof(done));
    CHECK_INT_EQ(wait_all(t, res, done, 1, 10, NULL, NULL), 1);
    CHECK_INT_EQ(res[0].exit_code, 6);
    ops->release(&t[0]);
}

/* A start the monitor cannot read (a spec without its name) is told back
 * under its key: that attempt is lost, at once, and the monitor goes on. */
TEST(a_start_the_monitor_cannot_read_is_lost_and_the_monitor_goes_on)
{
    char dir[512];
    rt_spec_t s;
    rt_task_t t[2];
    rt_result_t res[2];
    bool done[2] = {false};
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    setup_dirs("unreadable", dir, sizeof(dir));
    spec_init(&s, dir, "exit 2");
    s.name = NULL;
    CHECK(ops->start(ops, &s, &t[0]) == PAI_OK && t[0].mon_gen != 0);
    setup_dirs("readable", dir, sizeof(dir));
    spec_init(&s, dir, "exit 2");
    CHECK(ops->start(ops, &s, &t[1]) == PAI_OK);
    CHECK_INT_EQ(wait_all(t, res, done, 2, 10, NULL, NULL), 2);
    CHECK_INT_EQ(res[0].exit_code, EXIT_NODE_LOST);
    CHECK_INT_EQ(res[1].exit_code, 2);
    ops->release(&t[0]);
    ops->release(&t[1]);
}

/* The monitor's sleeps (voluntary switches, counted as it goes to sleep),
 * from its status. */
static long monitor_wakes(pid_t mon)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/status", (int)mon);
    return status_switches(p);
}

/* A task's pipes close without waking the monitor: it holds their write
 * ends until it has reaped the task, so a task that closes its stdout and
 * stderr, or exits, wakes it once, for its SIGCHLD (before: once more when
 * the last writer of each pipe went).  The output written before the close
 * is all in the log. */
#define QUIET 5
TEST(a_tasks_pipes_closing_do_not_wake_the_monitor_its_end_does_once)
{
    char dir[512], line[64];
    rt_spec_t s;
    rt_task_t t[1];
    rt_result_t res[1];
    const runtime_ops_t *ops = runtime_find("process");
    unsetenv("PAI_MONITOR");
    long wakes = 0;
    for (int i = 0; i < QUIET; i++) {
        bool done[1] = {false};
        char name[32];
        snprintf(name, sizeof(name), "quiet%d", i);
        setup_dirs(name, dir, sizeof(dir));
        spec_init(&s, dir, "echo out; echo err >&2; sleep 0.3; exec >&- 2>&-; sleep 0.3; exit 5");
        CHECK(ops->start(ops, &s, &t[0]) == PAI_OK);
        for (int k = 0; k < 250 && rt_task_pid(t[0].state_dir) <= 0; k++)
            usleep(10 * 1000);
        usleep(150 * 1000); /* started, its output read, the monitor asleep again */
        long before = monitor_wakes(t[0].monitor_pid);
        CHECK(before >= 0);
        CHECK_INT_EQ(wait_all(t, res, done, 1, 10, NULL, NULL), 1);
        CHECK(rt_record_get(t[0].state_dir, "exit ", line, sizeof(line)));
        usleep(50 * 1000); /* asleep again: a switch is counted as it sleeps */
        long after = monitor_wakes(t[0].monitor_pid);
        CHECK_INT_EQ(res[0].exit_code, 5);
        char *out = slurp(dir, "stdout"), *err = slurp(dir, "stderr");
        CHECK_STR_EQ(out, "out\n");
        CHECK_STR_EQ(err, "err\n");
        free(out);
        free(err);
        wakes += after - before;
        ops->release(&t[0]);
    }
    printf("# %d tasks that close their pipes, then exit: %ld wake-ups of the monitor\n", QUIET,
           wakes);
    /* one each; a few more for a sleep on a lock elsewhere (a cgroup's) */
    CHECK(wakes <= QUIET + 2);
}

RUN_TESTS(many_ends_at_once_on_one_monitors_socket_each_reach_their_attempt,
          ends_wait_in_the_monitor_while_the_caller_does_not_read,
          monitors_killed_with_attempts_in_flight_lose_them_at_their_sockets_end,
          a_start_the_monitor_cannot_read_is_lost_and_the_monitor_goes_on,
          a_tasks_pipes_closing_do_not_wake_the_monitor_its_end_does_once)
