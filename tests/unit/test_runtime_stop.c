/* test_runtime_stop.c - stopping an attempt in its first moments: a TERM
 * sent as its monitor is being born (process runtime: the per-agent and
 * the per-attempt monitors), and a TERM that reaches a container's init
 * before the init can take it (pid_namespaces(7)), with a fake engine that
 * runs the container's init as PID 1 of a PID namespace of its own. */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
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

/* ---- containers ----------------------------------------------------------- */

/* A fake engine (the script "podman" first on PATH): `run` starts the
 * container's command (the last five arguments: /bin/sh -c WRAPPER pai
 * /run/pai/command, the command file bound from the host) as PID 1 of a
 * new PID namespace; `kill -s SIG` signals that PID 1 from outside, as the
 * engine does (exit 1 while there is none: a container not running yet),
 * and logs SIG to <dir>/kills.  gated: PID 1 is first a shell with no TERM
 * handler (an init still starting), which becomes the container's command
 * only after the first kill was sent: that kill is always dropped. */
static const char fake_engine[] =
    "#!/bin/sh\n"
    "d='%s'\n"
    "case \"$1\" in\n"
    "image|rm) exit 0 ;;\n"
    "kill) p=$(cat \"$d/run.pid\" 2>/dev/null) || exit 1\n"
    "  c=$(cat /proc/$p/task/$p/children 2>/dev/null); [ -n \"$c\" ] || exit 1\n"
    "  echo \"$3\" >> \"$d/kills\"; kill -s \"$3\" $c; touch \"$d/go\" ;;\n"
    "run) cmd=\n"
    "  while [ $# -gt 5 ]; do\n"
    "    case \"$1\" in *:/run/pai/command:ro) cmd=${1%%:/run/pai/command:ro} ;; esac\n"
    "    shift\n"
    "  done\n"
    "  echo $$ > \"$d/run.pid\"\n"
    "  exec unshare --pid --fork sh -c \"%s\"'exec /bin/sh -c \"$0\" pai \"$1\"' \"$3\" \"$cmd\" "
    ";;\n"
    "esac\n";

/* Run cmd in a container of the fake engine; false when this machine
 * cannot make a PID namespace (no root, no unshare) or list a process's
 * children. */
static bool fake_container_start(const char *name, const char *cmd, bool gated, rt_task_t *t,
                                 char *dir, size_t n)
{
    char bin[600], script[700], gate[700] = "";
    rt_spec_t s;
    char kids[64];
    snprintf(kids, sizeof(kids), "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
    if (getuid() != 0 || access(kids, R_OK) != 0 ||
        system("unshare --pid --fork true 2>/dev/null") != 0)
        return false;
    setup_dirs(name, dir, n);
    snprintf(bin, sizeof(bin), "%s/bin", dir);
    mkdir(bin, 0755);
    snprintf(script, sizeof(script), "%s/podman", bin);
    if (gated)
        snprintf(gate, sizeof(gate), "while [ ! -e $d/go ]; do sleep 0.05; done; ");
    FILE *f = fopen(script, "w");
    CHECK(f != NULL);
    if (!f)
        return false;
    fprintf(f, fake_engine, dir, gate);
    fclose(f);
    chmod(script, 0755);
    char *path = str_printf("%s:%s", bin, getenv("PATH"));
    setenv("PATH", path, 1);
    free(path);
    const runtime_ops_t *ops = runtime_find("podman");
    spec_init(&s, dir, cmd);
    s.image = "localhost/x:1";
    CHECK(ops->start(ops, &s, t) == PAI_OK);
    return true;
}

static int count_lines(const char *dir, const char *file, const char *line)
{
    char p[700];
    buf_t b;
    int k = 0;
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    buf_init(&b, 1 << 20);
    if (buf_read_file(&b, p) == PAI_OK)
        for (const char *s = buf_str(&b); (s = strstr(s, line)); s += strlen(line))
            k++;
    buf_free(&b);
    return k;
}

/* A TERM that the container's init drops (it has no handler yet) is sent
 * again: the task ends gracefully (143), not at the end of its grace. */
TEST(a_container_stopped_before_its_init_is_up_ends_gracefully)
{
    char dir[512];
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("podman");
    if (!fake_container_start("ct-early", "trap 'exit 143' TERM; sleep 30 & wait", true, &t, dir,
                              sizeof(dir))) {
        test_skip("needs root, unshare(1) and /proc/PID/task/TID/children");
        return;
    }
    ops->kill(ops, &t, false, 30);
    bool done = wait_done(ops, &t, &r, 15);
    CHECK(done);
    if (!done) {
        ops->kill(ops, &t, true, 0);
        CHECK(wait_done(ops, &t, &r, 10));
    }
    CHECK_INT_EQ(r.exit_code, 143);
    CHECK(count_lines(dir, "kills", "TERM") >= 2);
    ops->release(&t);
}

/* The TERM is repeated, but the task sees it once: the init (pai's
 * wrapper) hands on the first and only the first. */
TEST(a_container_task_gets_one_term_however_often_it_is_sent)
{
    char dir[512];
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("podman");
    const char *cmd = "n=0; trap 'n=$((n+1)); echo term-$n' TERM; echo up; "
                      "i=0; while [ $i -lt 40 ]; do sleep 0.1; i=$((i+1)); done; exit 4";
    if (!fake_container_start("ct-once", cmd, false, &t, dir, sizeof(dir))) {
        test_skip("needs root, unshare(1) and /proc/PID/task/TID/children");
        return;
    }
    char *out = NULL;
    for (int i = 0; i < 500; i++) { /* until the task has set its trap */
        free(out);
        out = slurp(dir, "stdout");
        if (strstr(out, "up\n"))
            break;
        usleep(20 * 1000);
    }
    free(out);
    ops->kill(ops, &t, false, 30);
    CHECK(wait_done(ops, &t, &r, 20));
    CHECK_INT_EQ(r.exit_code, 4);
    out = slurp(dir, "stdout");
    CHECK_STR_EQ(out, "up\nterm-1\n");
    free(out);
    CHECK(count_lines(dir, "kills", "TERM") >= 2); /* the repeats were sent */
    ops->release(&t);
}

RUN_TESTS(a_stop_sent_as_a_shared_monitor_is_born_ends_the_task_gracefully,
          a_stop_sent_as_a_task_monitor_is_born_ends_the_task_gracefully,
          a_container_stopped_before_its_init_is_up_ends_gracefully,
          a_container_task_gets_one_term_however_often_it_is_sent)
