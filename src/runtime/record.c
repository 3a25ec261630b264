/*
 * record.c - an attempt's record, <state>/monitor (runtime.h): the lines
 * its agent and its monitor append ("id", "mon", "task", "exit"), each in
 * one write so that a reader sees a line whole or not at all, and what is
 * read back from them: a tag's line, the task's pid and cgroup, the exit
 * line's fields.  The monitor's process and its loop are in monitor.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "runtime/monitor_int.h"

/* One write of the whole line: a reader sees all of it or none (it takes
 * lines up to their newline only). */
int rt_record_append(const char *state_dir, const char *line)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/monitor", state_dir);
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    bool ok = fs_write_all(fd, line, strlen(line));
    close(fd);
    return ok ? 0 : -1;
}

/* The record's path and its "id" line; the line's length, 0 when the id
 * cannot be one line or the path is too long. */
static size_t id_line(const char *state_dir, const char *attempt_id, char *p, size_t np,
                      char line[RECORD_MAX])
{
    size_t l = strlen(attempt_id);
    if (strchr(attempt_id, '\n') || l > 1024 ||
        (size_t)snprintf(p, np, "%s/monitor", state_dir) >= np)
        return 0;
    memcpy(line, "id ", 3);
    memcpy(line + 3, attempt_id, l);
    line[l + 3] = '\n';
    return l + 4;
}

int rt_record_open(const char *state_dir, const char *attempt_id)
{
    char p[1024], line[RECORD_MAX];
    size_t l = id_line(state_dir, attempt_id, p, sizeof(p), line);
    if (!l)
        return -1;
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && !fs_write_all(fd, line, l)) { /* one write: a whole line */
        close(fd);
        fd = -1;
    }
    return fd;
}

int rt_record_rewrite(const char *state_dir, const char *attempt_id)
{
    char p[1024], line[RECORD_MAX];
    size_t l = id_line(state_dir, attempt_id, p, sizeof(p), line);
    if (!l)
        return (errno = EINVAL, -1);
    /* over the old lines from offset 0, then cut after it: the file keeps
     * its page (a cut to 0 frees it, and the next write takes a new one
     * and a new delayed block: ~6-9 us a task on ext4, docs/benchmarks-history.md) */
    int fd = open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && (!fs_write_all(fd, line, l) || ftruncate(fd, (off_t)l) != 0 ||
                    fcntl(fd, F_SETFL, O_APPEND) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int rt_record_create(const char *state_dir, const char *attempt_id)
{
    int fd = rt_record_open(state_dir, attempt_id);
    if (fd >= 0)
        close(fd);
    return fd >= 0 ? 0 : -1;
}

size_t rt_record_read(const char *dir, char *buf, size_t n)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/monitor", dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, buf, n - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[got > 0 ? got : 0] = '\0';
    return got > 0 ? (size_t)got : 0;
}

const char *rt_record_line(const char *rec, const char *tag)
{
    size_t l = strlen(tag);
    for (const char *p = rec; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, tag, l) == 0 && strchr(p, '\n'))
            return p + l;
    return NULL;
}

bool rt_record_get(const char *state_dir, const char *tag, char *out, size_t n)
{
    char rec[RECORD_MAX];
    const char *line =
        rt_record_read(state_dir, rec, sizeof(rec)) ? rt_record_line(rec, tag) : NULL;
    if (!line)
        return false;
    snprintf(out, n, "%.*s", (int)strcspn(line, "\n"), line);
    return true;
}

pid_t rt_task_pid(const char *state_dir)
{
    return rt_task_info(state_dir, NULL, 0);
}

pid_t rt_task_info(const char *state_dir, char *cgroup, size_t n)
{
    char rec[RECORD_MAX], p[1100];
    int pid = 0, end = 0;
    if (cgroup && n)
        cgroup[0] = '\0';
    const char *line =
        rt_record_read(state_dir, rec, sizeof(rec)) ? rt_record_line(rec, "task ") : NULL;
    if (line && sscanf(line, "%d %n", &pid, &end) == 1 && end > 0 && cgroup && n) {
        size_t l = strcspn(line + end, " \n");
        if (l > 0 && l < n)
            snprintf(cgroup, n, "%.*s", (int)l, line + end);
    }
    if (!line) { /* an attempt of an older agent: its own file */
        snprintf(p, sizeof(p), "%s/task", state_dir);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t got = fd >= 0 ? read(fd, rec, sizeof(rec) - 1) : -1;
        if (fd >= 0)
            close(fd);
        rec[got > 0 ? got : 0] = '\0';
        line = rec;
    }
    return sscanf(line, "%d", &pid) == 1 && pid > 0 ? pid : 0;
}

/* One integer field of an exit line at *p (what sscanf's %d / %lld take:
 * blanks, a sign, digits), *p moved past it; false when there is none or
 * it is out of [lo, hi]. */
static bool exit_field(const char **p, long long lo, long long hi, long long *v)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f')
        s++;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    unsigned long long u = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (u > (ULLONG_MAX - 9) / 10)
            return false;
        u = u * 10 + (unsigned)(*s - '0');
    }
    if (u > (unsigned long long)LLONG_MAX)
        return false;
    long long x = neg ? -(long long)u : (long long)u;
    if (x < lo || x > hi)
        return false;
    *v = x;
    *p = s;
    return true;
}

/* The fields of an exit line after its tag ("exited 0 0 0 START END
 * [ERR]") into res; false when they are not whole.  ERR, 0 when the
 * task's stderr log was never made, is absent from the lines of older
 * monitors and from the agent's marker of a lost attempt.  Read by hand,
 * not with sscanf: the agent reads one per task, and sscanf's stream
 * setup was ~2% of an agent's CPU in a burst (docs/benchmarks-history.md). */
bool rt_exit_parse(const char *fields, rt_result_t *res)
{
    const char *p = fields;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f')
        p++;
    size_t kl = strcspn(p, " \t\n\r\v\f");
    if (kl == 0)
        return false;
    kl = kl > 15 ? 15 : kl; /* sscanf's %15s: the rest is the next field */
    bool failed = kl == 6 && memcmp(p, "failed", 6) == 0;
    p += kl;
    long long f[6]; /* code, signal, oom, start, end, err */
    int got = 0;
    for (; got < 6; got++) {
        bool wide = got == 3 || got == 4;
        if (!exit_field(&p, wide ? LLONG_MIN : INT_MIN, wide ? LLONG_MAX : INT_MAX, &f[got]))
            break;
    }
    if (got != 5 && got != 6)
        return false;
    memset(res, 0, sizeof(*res));
    res->state = failed ? RT_FAILED_TO_START : RT_EXITED;
    res->exit_code = (int)f[0];
    res->signal = (int)f[1];
    res->oom = f[2] != 0;
    res->started_ms = f[3];
    res->finished_ms = f[4];
    res->quiet = got == 6 && f[5] == 0;
    return true;
}
