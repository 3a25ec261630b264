/* test_runtime_command.c - a process task's command on fd 3: the per-agent
 * monitor's sealed memfd shared by the tasks of one identity that run the
 * same text (cmdfd.c), what a task can do to it, and who shares it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/monitor_int.h"
#include "runtime/runtime.h"
#include "test.h"

#include "runtime_fixture.h"

#define ALL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static ino_t ino_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* The text, read from fd's own offset. */
static bool reads_as(int fd, const char *text)
{
    char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return strcmp(buf, text) == 0;
}

/* One memfd per text and identity, sealed; each caller its own read-only
 * open file description (its own offset); least recently used replaced. */
TEST(command_memfd_is_shared_per_text_and_identity_and_sealed)
{
    const char *text = "echo shared\n";
    int a = mon_cmdfd_open(text, 1000, 1000), b = mon_cmdfd_open(text, 1000, 1000);
    CHECK(a > 2 && b > 2 && a != b);
    CHECK(ino_of(a) != 0 && ino_of(a) == ino_of(b));
    CHECK((fcntl(a, F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK((fcntl(a, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((fcntl(a, F_GET_SEALS) & ALL_SEALS) == ALL_SEALS);
    CHECK(reads_as(a, text));
    CHECK(reads_as(b, text)); /* b's offset is not a's */
    /* another identity, another text: another memfd */
    int c = mon_cmdfd_open(text, 1001, 1000), d = mon_cmdfd_open(text, 1000, 1001),
        e = mon_cmdfd_open("echo other\n", 1000, 1000);
    CHECK(c > 2 && d > 2 && e > 2);
    CHECK(ino_of(c) != ino_of(a) && ino_of(d) != ino_of(a) && ino_of(e) != ino_of(a));
    CHECK(ino_of(c) != ino_of(d));

    /* nothing writes, grows, shrinks or re-seals it, whatever the opening */
    char p[64];
    snprintf(p, sizeof(p), "/proc/self/fd/%d", a);
    int w = open(p, O_RDWR);
    CHECK(w >= 0);
    errno = 0;
    CHECK(write(w, "x", 1) < 0 && errno == EPERM);
    CHECK(pwrite(w, "x", 1, 0) < 0 && errno == EPERM);
    CHECK(ftruncate(w, 0) != 0 && errno == EPERM);
    CHECK(ftruncate(w, 1 << 20) != 0 && errno == EPERM);
    CHECK(fcntl(w, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0 && errno == EPERM);
    CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, w, 0) == MAP_FAILED);
    CHECK(open(p, O_WRONLY | O_TRUNC) < 0);
    close(w);
    int again = mon_cmdfd_open(text, 1000, 1000);
    CHECK(ino_of(again) == ino_of(a) && reads_as(again, text));

    /* 16 kept: with `text` used last, 16 others replace the 15 left and
     * then the least recently used of them, not `text` */
    ino_t other = ino_of(e);
    for (int i = 0; i < 16; i++) {
        char t[32];
        snprintf(t, sizeof(t), "echo %d\n", i);
        int f = mon_cmdfd_open(t, 1000, 1000);
        CHECK(f > 2);
        close(f);
        if (i == 13) { /* 15 others in now: use `text` again */
            int g = mon_cmdfd_open(text, 1000, 1000);
            CHECK(ino_of(g) == ino_of(a));
            close(g);
        }
    }
    int g = mon_cmdfd_open(text, 1000, 1000), h = mon_cmdfd_open("echo other\n", 1000, 1000);
    CHECK(ino_of(g) == ino_of(a));
    CHECK(h > 2 && ino_of(h) != other); /* replaced: a new one */
    /* an fd still open keeps the replaced memfd, text and seals intact */
    CHECK(reads_as(e, "echo other\n"));

    /* too large for the cache: none (the task's process makes its own) */
    size_t big = 64 * 1024 + 1;
    char *t = xmalloc(big + 1);
    memset(t, '#', big);
    t[big] = '\0';
    CHECK(mon_cmdfd_open(t, 1000, 1000) == -1);
    t[big - 1] = '\0';
    int k = mon_cmdfd_open(t, 1000, 1000);
    CHECK(k > 2);
    free(t);
    int fds[] = {a, b, c, d, e, again, g, h, k};
    for (size_t i = 0; i < ARRAY_LEN(fds); i++)
        close(fds[i]);
    mon_cmdfd_clear();
}

/* Run cmd as uid (the per-agent monitor), with env var X=x; its stdout. */
static char *run_as(const char *name, const char *cmd, uid_t uid, const char *x, pid_t *mon)
{
    char dir[512], cwd[600], xenv[64];
    rt_spec_t s;
    rt_task_t t;
    rt_result_t r;
    const runtime_ops_t *ops = runtime_find("process");
    char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", xenv, NULL};
    snprintf(xenv, sizeof(xenv), "X=%s", x);
    setup_dirs(name, dir, sizeof(dir));
    chmod(dir, 0711);
    snprintf(cwd, sizeof(cwd), "%s/cwd", dir);
    mkdir(cwd, 0700);
    spec_init(&s, dir, cmd);
    s.env = env;
    s.cwd = cwd;
    s.isolate = true;
    s.uid = uid;
    s.gid = uid;
    CHECK(ops->start(ops, &s, &t) == PAI_OK);
    *mon = t.monitor_pid;
    CHECK(t.mon_key != 0); /* a per-agent monitor's */
    CHECK(wait_done(ops, &t, &r, 10));
    CHECK_INT_EQ(r.exit_code, 0);
    ops->release(&t);
    return slurp(dir, "stdout");
}

/* A hostile task cannot change the command the next task of the same text
 * runs: no write through fd 3 or a new opening, no truncation, growth,
 * new seal or mode, and its offset on fd 3 is not the next task's.  A
 * task of another uid with the same text gets a memfd of its own: it
 * shares no inode with another user's task. */
TEST(hostile_task_cannot_change_the_shared_command)
{
    if (geteuid() != 0) {
        test_skip("not root: cannot change uid");
        return;
    }
    unsetenv("PAI_MONITOR");
    const char *cmd =
        "# the text every task here runs\n"
        "if [ \"$X\" = hostile ]; then\n"
        "  { echo evil >&3; } 2>/dev/null && echo w3-ok || echo w3-denied\n"
        "  { echo evil >> /proc/self/fd/3; } 2>/dev/null && echo append-ok || echo append-denied\n"
        "  { echo evil > /proc/self/fd/3; } 2>/dev/null && echo trunc-ok || echo trunc-denied\n"
        "  truncate -s 0 /proc/self/fd/3 2>/dev/null && echo shrink-ok || echo shrink-denied\n"
        "  truncate -s 1M /proc/self/fd/3 2>/dev/null && echo grow-ok || echo grow-denied\n"
        "  chmod 0777 /proc/self/fd/3 2>/dev/null && echo chmod-ok || echo chmod-denied\n"
        "  python3 -c 'import fcntl, os\n"
        "try:\n"
        "    fcntl.fcntl(3, 1033, 16); print(\"seal-ok\")\n"
        "except OSError:\n"
        "    print(\"seal-denied\")\n"
        "os.lseek(3, 0, os.SEEK_END)'\n"
        "fi\n"
        "echo \"fd3:$(head -c 6 <&3)\"\n"
        "echo \"ino:$(stat -L -c %i /proc/self/fd/3)\"\n"
        "echo original-ran\n";
    pid_t m1, m2, m3, m4, m5;
    char *h = run_as("cmd-hostile", cmd, 200777, "hostile", &m1);
    CHECK_STR_CONTAINS(h, "w3-denied\nappend-denied\ntrunc-denied\nshrink-denied\ngrow-denied\n"
                          "chmod-denied\nseal-denied\n");
    CHECK_STR_CONTAINS(h, "original-ran\n");
    /* the next tasks of the text, on every monitor (used in turn; one when
     * RT_MONITORS is 1) */
    char *n1 = run_as("cmd-next1", cmd, 200777, "-", &m2);
    char *n2 = run_as("cmd-next2", cmd, 200777, "-", &m3);
    char *n3 = run_as("cmd-next3", cmd, 200777, "-", &m4);
    CHECK(m1 == m3 && m2 == m4 && (m1 != m2) == (RT_MONITORS > 1));
    char *outs[] = {n1, n2, n3};
    for (int i = 0; i < 3; i++) {
        CHECK_STR_CONTAINS(outs[i], "fd3:# the \n"); /* its own offset, at 0 */
        CHECK_STR_CONTAINS(outs[i], "original-ran\n");
        CHECK(strstr(outs[i], "evil") == NULL && strstr(outs[i], "-ok") == NULL);
    }
    /* one memfd per monitor for the text and uid: the hostile task's is
     * the one the third task (same monitor) ran from */
    const char *i1 = strstr(h, "ino:"), *i3 = strstr(n2, "ino:"), *i2 = strstr(n1, "ino:"),
               *i4 = strstr(n3, "ino:");
    CHECK(i1 && i2 && i3 && i4);
    if (i1 && i2 && i3 && i4) {
        CHECK(strtoull(i1 + 4, NULL, 10) == strtoull(i3 + 4, NULL, 10));
        CHECK(strtoull(i2 + 4, NULL, 10) == strtoull(i4 + 4, NULL, 10));
    }
    /* another uid, the same text, the hostile task's monitor: its own */
    char *o = run_as("cmd-other-uid", cmd, 200778, "-", &m5);
    CHECK(m5 == m1);
    const char *io = strstr(o, "ino:");
    CHECK(io && i1 && strtoull(io + 4, NULL, 10) != strtoull(i1 + 4, NULL, 10));
    CHECK_STR_CONTAINS(o, "fd3:# the \n");
    CHECK_STR_CONTAINS(o, "original-ran\n");
    free(h);
    free(n1);
    free(n2);
    free(n3);
    free(o);
}

RUN_TESTS(command_memfd_is_shared_per_text_and_identity_and_sealed,
          hostile_task_cannot_change_the_shared_command)
