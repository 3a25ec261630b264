/* test_agent_pool.c - the node's attempt dirs, slots of its tasks dir
 * kept for reuse (agent/dirpool.h): a forgotten attempt's slot emptied
 * where it is and reused, the pool filled at the start, the take's record,
 * a restart's free slots told from attempts by their records, a big dir
 * emptied off the loop. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/dirpool.h"
#include "agent_fixture.h"
#include "common/util.h"
#include "runtime/runtime.h"
#include "test.h"
#include "wire/agentwire.h"

static bool is_empty_dir(const char *path)
{
    char cmd[1500];
    snprintf(cmd, sizeof(cmd), "test -d '%s' && test -z \"$(ls -A '%s')\"", path, path);
    return system(cmd) == 0;
}

/* Files directly in dir (not . and ..); -1 when it cannot be read. */
static long count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    long k = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        k += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return k;
}

/* The whole record of an attempt dir, as a string. */
static void read_record(const char *dir, char *buf, size_t n)
{
    char p[500];
    snprintf(p, sizeof(p), "%s/monitor", dir);
    int fd = open(p, O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, buf, n - 1) : -1;
    if (fd >= 0)
        close(fd);
    buf[got > 0 ? got : 0] = '\0';
}

/* The record of dir holds id's line first and nothing after it but the
 * take's pad line ("#" and blanks, or a bare newline) over the last
 * attempt's lines. */
static bool record_is_id_alone(const char *dir, const char *id)
{
    char rec[4096], want[300];
    read_record(dir, rec, sizeof(rec));
    int l = snprintf(want, sizeof(want), "id %s\n", id);
    if (strncmp(rec, want, (size_t)l) != 0)
        return false;
    const char *pad = rec + l;
    if (!*pad)
        return true;
    size_t n = strlen(pad);
    return pad[n - 1] == '\n' && (n == 1 || (pad[0] == '#' && strspn(pad + 1, " ") == n - 2));
}

/* A forgotten attempt's dir is emptied where it is (an older agent's dir,
 * named by its attempt, renamed to a slot first): its record kept, its
 * working dir emptied and 0700 the agent's again, anything else removed;
 * the next attempt takes the slot (no rename: the slot's path is its dir,
 * HOME included), its record cut to its own id line; with none ready a new
 * slot is made; a restarted agent finds the free slot by its record. */
TEST(node_reuses_a_forgotten_attempts_emptied_slot)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", d[300], p[400];
    agent_cfg_t cfg = work_dir_cfg(work);
    cfg.pool_fill = -1; /* an empty pool at the start */
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    snprintf(d, sizeof(d), "%s/tasks/u~j+0+r+0+0", work);
    CHECK(mkdir(d, 0700) == 0 && chmod(d, 0700) == 0); /* not 0711: made 0711 in the pool */
    CHECK(rt_record_create(d, "u~j/0/r/0/0") == 0);
    CHECK(rt_record_append(d, "exit exited 0 0 0 1000 2000\nacked\n") == 0);
    put_file(d, "command", "echo secret\n");
    snprintf(p, sizeof(p), "%s/cwd", d);
    CHECK(mkdir(p, 0777) == 0 && chmod(p, 0777) == 0);
    put_file(p, "private.txt", "left behind\n");
    snprintf(p, sizeof(p), "%s/cwd/sub", d);
    CHECK(mkdir(p, 0700) == 0);
    put_file(p, "deep.txt", "x\n");
    node_recover(&n);
    agent_task_t *t = task_find(&n, "u~j/0/r/0/0");
    CHECK(t != NULL && t->acked && t->slot == -1);
    task_prune_tombstones(&n, time_mono_ms() + 11 * 60 * 1000);
    CHECK(task_find(&n, "u~j/0/r/0/0") == NULL);
    CHECK(access(d, F_OK) != 0);
    dirpool_settle(&n.pool); /* a subdir in cwd: emptied by the worker */
    CHECK_INT_EQ(n.pool.n, 1);
    if (n.pool.n != 1)
        return;
    int slot = n.pool.ids[0];
    struct stat st;
    /* the record keeps its lines (and its page) until the take */
    snprintf(p, sizeof(p), "%s/tasks/%d/monitor", work, slot);
    CHECK(stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 40);
    snprintf(p, sizeof(p), "%s/tasks/%d/cwd", work, slot);
    CHECK(is_empty_dir(p));
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid());
    snprintf(p, sizeof(p), "%s/tasks/%d/command", work, slot);
    CHECK(access(p, F_OK) != 0);
    /* the next attempt takes it: its record holds its own id alone (no
     * command: it fails to start, after its dir was made) */
    agentwire_task_t want = {.attempt_id = "u~j/0/r/1/0"};
    task_start(&n, &want);
    CHECK_INT_EQ(n.pool.n, 0);
    agent_task_t *t1 = task_find(&n, "u~j/0/r/1/0");
    CHECK(t1 && t1->slot == slot);
    snprintf(d, sizeof(d), "%s/tasks/%d", work, slot);
    char id[64], line[8], rec[256];
    CHECK(rt_record_get(d, "id ", id, sizeof(id)));
    CHECK_STR_EQ(id, "u~j/0/r/1/0");
    CHECK(!rt_record_get(d, "acked", line, sizeof(line)));
    read_record(d, rec, sizeof(rec)); /* the id line, nothing of the last lines */
    CHECK(record_is_id_alone(d, "u~j/0/r/1/0") && strlen(rec) > 15);
    snprintf(p, sizeof(p), "%s/cwd", d);
    CHECK(is_empty_dir(p));
    CHECK(stat(d, &st) == 0 && (st.st_mode & 07777) == 0711);
    snprintf(p, sizeof(p), "%s/tasks/u~j+0+r+1+0", work);
    CHECK(access(p, F_OK) != 0); /* no dir named by the attempt */
    /* a second new attempt finds the pool empty and makes a new slot */
    want.attempt_id = "u~j/0/r/2/0";
    task_start(&n, &want);
    agent_task_t *t2 = task_find(&n, "u~j/0/r/2/0");
    CHECK(t2 && t2->slot >= 0 && t2->slot != slot);
    snprintf(p, sizeof(p), "%s/tasks/%d/cwd", work, t2 ? t2->slot : -1);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700);
    /* acked (the journal names it: its slot is free at once), then the
     * agent restarts: the free slot is found by its record and reused */
    task_mark_acked(&n, t1);
    CHECK_INT_EQ(n.pool.n, 1);
    node_free(&n);
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    CHECK_INT_EQ(n.pool.n, 0);
    node_recover(&n);
    dirpool_settle(&n.pool); /* the worker empties what the last process left */
    CHECK_INT_EQ(n.pool.n, 1);
    CHECK(n.pool.n == 1 && n.pool.ids[0] == slot);
    t2 = task_find(&n, "u~j/0/r/2/0"); /* an attempt's slot: found as one */
    CHECK(t2 && !t2->acked && t2->slot >= 0 && t2->slot != slot);
    t = task_find(&n, "u~j/0/r/1/0"); /* from the journal */
    CHECK(t && t->acked && t->dir_gone && t->slot == slot);
    snprintf(p, sizeof(p), "%s/pool", work);
    CHECK(access(p, F_OK) != 0); /* no pool dir of its own */
    node_free(&n);
    remove_work_dir(work);
}

/* A slot's take writes the new id line and a pad line over the last
 * attempt's lines in one write (a short record: no cut; the long ones are
 * pool_take_pads_a_short_record_and_cuts_a_long_one's), the fd left open
 * for appends; a slot whose record is gone is removed and another taken;
 * with none ready a new one is made; an id that cannot be one line is
 * refused. */
TEST(pool_take_cuts_the_record_then_writes_the_id_line)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[500], d[400], rec[512];
    CHECK(mkdtemp(work) != NULL);
    snprintf(p, sizeof(p), "%s/tasks", work);
    CHECK(mkdir(p, 0711) == 0);
    snprintf(p, sizeof(p), "%s/tasks/7", work); /* numbered after what is there */
    CHECK(mkdir(p, 0711) == 0);
    snprintf(p, sizeof(p), "%s/tasks", work);
    dirpool_t pool;
    CHECK(dirpool_init(&pool, p));
    CHECK_INT_EQ(pool.next, 8);
    CHECK_INT_EQ(dirpool_fill(&pool, 2), 2);
    int slots[2];
    for (int i = 0; i < 2; i++) {
        int fd = dirpool_take(&pool, "u~old/0/r/0/0", &slots[i]);
        CHECK(fd >= 0 && slots[i] >= 8);
        if (fd >= 0)
            close(fd);
        dirpool_path(&pool, slots[i], d, sizeof(d));
        CHECK(rt_record_append(
                  d, "mon 1 2\ntask 3 /x/pool.1.2\nexit exited 0 0 0 1 2 0\nacked\n") == 0);
    }
    CHECK_INT_EQ(pool.n, 0);
    for (int i = 0; i < 2; i++)
        dirpool_put(&pool, slots[i], false);
    CHECK_INT_EQ(pool.n, 2);
    /* the last put is taken first: remove its record, so that the take drops it */
    snprintf(p, sizeof(p), "%s/tasks/%d/monitor", work, slots[1]);
    CHECK(unlink(p) == 0);
    int got = -1;
    int fd = dirpool_take(&pool, "u~new/0/r/1/0", &got);
    CHECK(fd >= 0 && got == slots[0]);
    CHECK_INT_EQ(pool.n, 0);
    dirpool_path(&pool, got, d, sizeof(d));
    /* a short record: the id line and a pad line over the last attempt's
     * lines, in one write (no cut): the same length, none of them left */
    const char *had =
        "id u~old/0/r/0/0\nmon 1 2\ntask 3 /x/pool.1.2\nexit exited 0 0 0 1 2 0\nacked\n";
    read_record(d, rec, sizeof(rec));
    CHECK_INT_EQ(strlen(rec), strlen(had));
    CHECK(strncmp(rec, "id u~new/0/r/1/0\n#", 18) == 0);
    CHECK(strspn(rec + 18, " ") == strlen(had) - 19 && rec[strlen(had) - 1] == '\n');
    char line[200];
    CHECK(rt_record_get(d, "id ", line, sizeof(line)) && strcmp(line, "u~new/0/r/1/0") == 0);
    CHECK(!rt_record_get(d, "mon ", line, sizeof(line)) &&
          !rt_record_get(d, "task ", line, sizeof(line)) &&
          !rt_record_get(d, "exit ", line, sizeof(line)) &&
          !rt_record_get(d, "acked", line, sizeof(line)));
    CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_APPEND));
    CHECK(fd >= 0 && write(fd, "mon 9 9\n", 8) == 8); /* the monitor's line, after the pad */
    if (fd >= 0)
        close(fd);
    read_record(d, rec, sizeof(rec));
    CHECK_INT_EQ(strlen(rec), strlen(had) + 8);
    CHECK(strcmp(rec + strlen(had), "mon 9 9\n") == 0);
    CHECK(rt_record_get(d, "mon ", line, sizeof(line)) && strcmp(line, "9 9") == 0);
    snprintf(p, sizeof(p), "%s/cwd", d);
    CHECK(is_empty_dir(p));
    /* none ready: a new slot */
    fd = dirpool_take(&pool, "u~c/0/r/0/0", &got);
    CHECK(fd >= 0 && got > slots[1]);
    if (fd >= 0)
        close(fd);
    dirpool_path(&pool, got, d, sizeof(d));
    read_record(d, rec, sizeof(rec));
    CHECK_STR_EQ(rec, "id u~c/0/r/0/0\n");
    /* an id that cannot be a line: -1, nothing taken */
    CHECK_INT_EQ(dirpool_take(&pool, "u~a\nb", &got), -1);
    char longid[1061]; /* past the id line's buffer, under the old bound (1100) */
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    CHECK_INT_EQ(dirpool_take(&pool, longid, &got), -1);
    dirpool_settle(&pool); /* the dropped slot removed by the worker */
    snprintf(p, sizeof(p), "%s/tasks/%d", work, slots[1]);
    CHECK(access(p, F_OK) != 0);
    dirpool_free(&pool);
    remove_work_dir(work);
}

/* A pool of fill slots in a new work dir (work: a mkdtemp template;
 * p: its tasks dir's path). */
static bool pool_in(char *work, char *p, size_t np, dirpool_t *pool, size_t fill)
{
    if (!mkdtemp(work))
        return false;
    snprintf(p, np, "%s/tasks", work);
    return mkdir(p, 0711) == 0 && dirpool_init(pool, p) && dirpool_fill(pool, fill) == fill;
}

/* The record of a slot taken again and again: padded while it is at
 * most DIRPOOL_PAD_MAX bytes, cut to the id line past it, so that it never
 * grows past the pad's bound and an attempt's own lines; each take leaves
 * the new id first and no line of an earlier attempt (a pad of one byte is
 * a bare newline). */
TEST(pool_take_pads_a_short_record_and_cuts_a_long_one)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[500], d[400], rec[4096], line[200];
    dirpool_t pool;
    CHECK(pool_in(work, p, sizeof(p), &pool, 1));
    int slot = -1, cuts = 0, pads = 0;
    size_t most = 0;
    char id[64], mon[64], want[64];
    for (int i = 0; i < 60; i++) {
        snprintf(id, sizeof(id), "u~j%d/0/r/0/0", i);
        int got = -1;
        int fd = dirpool_take(&pool, id, &got);
        CHECK(fd >= 0 && (slot < 0 || got == slot));
        slot = got;
        dirpool_path(&pool, slot, d, sizeof(d));
        read_record(d, rec, sizeof(rec));
        size_t had = strlen(rec);
        cuts += had == strlen(id) + 4;
        pads += had > strlen(id) + 4;
        most = had > most ? had : most;
        CHECK(rt_record_get(d, "id ", line, sizeof(line)) && strcmp(line, id) == 0);
        CHECK(!rt_record_get(d, "mon ", line, sizeof(line)) &&
              !rt_record_get(d, "exit ", line, sizeof(line)));
        /* the monitor's lines, through the fd (appends after the pad) */
        snprintf(mon, sizeof(mon), "mon %d 1\n", 100 + i);
        CHECK(fd >= 0 && write(fd, mon, strlen(mon)) == (ssize_t)strlen(mon));
        const char *rest = "task 3 /x/pool.1.2\nexit exited 0 0 0 1 2 0\n";
        CHECK(fd >= 0 && write(fd, rest, strlen(rest)) == (ssize_t)strlen(rest));
        if (fd >= 0)
            close(fd);
        snprintf(want, sizeof(want), "%d 1", 100 + i);
        CHECK(rt_record_get(d, "mon ", line, sizeof(line)) && strcmp(line, want) == 0);
        dirpool_put(&pool, slot, true);
        CHECK_INT_EQ(pool.n, 1);
    }
    /* ~60 bytes an attempt: padded ~16 times a cut, never past the bound */
    CHECK(cuts >= 2 && pads > 8 * cuts);
    CHECK(most <= DIRPOOL_PAD_MAX);
    /* an old record one byte longer than the new id line: a bare newline */
    snprintf(p, sizeof(p), "%s/monitor", d);
    int w = open(p, O_WRONLY | O_TRUNC);
    CHECK(w >= 0 && write(w, "id u~k/0/r/0/0x\n", 16) == 16);
    if (w >= 0)
        close(w);
    int got = -1;
    int fd = dirpool_take(&pool, "u~k/0/r/0/0", &got);
    CHECK(fd >= 0 && got == slot);
    if (fd >= 0)
        close(fd);
    read_record(d, rec, sizeof(rec));
    CHECK_STR_EQ(rec, "id u~k/0/r/0/0\n\n");
    dirpool_put(&pool, slot, true);
    /* a record longer than the bound: cut to the id line, as before */
    w = open(p, O_WRONLY | O_APPEND);
    const char *more = "exit exited 1 0 0 1 2 0 and some more words\n";
    for (int i = 0; w >= 0 && i < 40; i++)
        CHECK(write(w, more, strlen(more)) == (ssize_t)strlen(more));
    if (w >= 0)
        close(w);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size > DIRPOOL_PAD_MAX);
    fd = dirpool_take(&pool, "u~long/0/r/0/0", &got);
    CHECK(fd >= 0 && got == slot);
    if (fd >= 0)
        close(fd);
    read_record(d, rec, sizeof(rec));
    CHECK_STR_EQ(rec, "id u~long/0/r/0/0\n");
    dirpool_free(&pool);
    remove_work_dir(work);
}

/* The open fds of this process. */
static long open_fds(void)
{
    return count_entries("/proc/self/fd");
}

/* A cwd-only put keeps the cwd it emptied open for the slot's next
 * cwd-only put (O_CLOEXEC), which empties and gives it back through that
 * fd, rewound: the task's files, its mode and owner all undone as by path;
 * the take keeps the record open (one fd for writes, one for appends,
 * whose dup is the monitor's); any other put, a removal and dirpool_free
 * close them, and a slot past DIRPOOL_FD_SLOTS keeps none. */
TEST(pool_cwd_only_put_keeps_the_cwd_open_for_the_next)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[500], d[400];
    dirpool_t pool;
    CHECK(pool_in(work, p, sizeof(p), &pool, 1));
    long base = open_fds();
    int slot = -1, got = -1;
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "u~a%d/0/r/0/0", i);
        int fd = dirpool_take(&pool, id, &got);
        CHECK(fd >= 0 && (slot < 0 || got == slot));
        slot = got;
        CHECK_INT_EQ(open_fds(), base + (i ? 3 : 2) + 1); /* kept, and the monitor's */
        CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_APPEND) && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
        CHECK(fd >= 0 && write(fd, "mon 5 5\n", 8) == 8);
        if (fd >= 0)
            close(fd);
        dirpool_path(&pool, slot, d, sizeof(d));
        char line[64];
        CHECK(record_is_id_alone(d, id) == false); /* the monitor's line after the pad */
        CHECK(rt_record_get(d, "id ", line, sizeof(line)) && strcmp(line, id) == 0);
        CHECK(rt_record_get(d, "mon ", line, sizeof(line)) && strcmp(line, "5 5") == 0);
        snprintf(p, sizeof(p), "%s/cwd", d);
        CHECK(chmod(p, 0755) == 0);
        char name[32];
        for (int k = 0; k <= i; k++) { /* more files each time: read from the start */
            snprintf(name, sizeof(name), "out%d.txt", k);
            put_file(p, name, "y\n");
        }
        dirpool_put(&pool, slot, true);
        CHECK_INT_EQ(pool.n, 1);
        CHECK(is_empty_dir(p));
        struct stat st;
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid());
        CHECK_INT_EQ(open_fds(), base + 3); /* the kept ones, and only they */
    }
    for (int k = 0; k < 3; k++) {
        int kept = pool.fds ? pool.fds[slot][k] - 1 : -1;
        CHECK(kept >= 0 && (fcntl(kept, F_GETFD) & FD_CLOEXEC));
        CHECK(kept >= 0 && ((fcntl(kept, F_GETFL) & O_APPEND) != 0) == (k == 2));
    }
    /* a put that reads the whole slot: by path, the kept fd closed */
    int fd = dirpool_take(&pool, "u~b/0/r/0/0", &got);
    CHECK(fd >= 0 && got == slot);
    if (fd >= 0)
        close(fd);
    put_file(p, "late.txt", "z\n");
    dirpool_put(&pool, slot, false);
    CHECK(is_empty_dir(p));
    CHECK_INT_EQ(open_fds(), base);
    /* kept again, then closed by dirpool_free */
    fd = dirpool_take(&pool, "u~c/0/r/0/0", &got);
    if (fd >= 0)
        close(fd);
    dirpool_put(&pool, slot, true);
    CHECK_INT_EQ(open_fds(), base + 3);
    dirpool_free(&pool);
    CHECK_INT_EQ(open_fds(), base);
    remove_work_dir(work);
    /* a slot past DIRPOOL_FD_SLOTS: emptied by path, nothing kept */
    char work2[] = "/tmp/pai-test-agent-XXXXXX";
    CHECK(mkdtemp(work2) != NULL);
    snprintf(p, sizeof(p), "%s/tasks", work2);
    CHECK(mkdir(p, 0711) == 0);
    snprintf(p, sizeof(p), "%s/tasks/%d", work2, DIRPOOL_FD_SLOTS + 5);
    CHECK(mkdir(p, 0711) == 0);
    snprintf(p, sizeof(p), "%s/tasks", work2);
    CHECK(dirpool_init(&pool, p));
    CHECK_INT_EQ(dirpool_fill(&pool, 1), 1);
    fd = dirpool_take(&pool, "u~d/0/r/0/0", &got);
    CHECK(fd >= 0 && got > DIRPOOL_FD_SLOTS);
    if (fd >= 0)
        close(fd);
    dirpool_path(&pool, got, d, sizeof(d));
    snprintf(p, sizeof(p), "%s/cwd", d);
    put_file(p, "out.txt", "y\n");
    dirpool_put(&pool, got, true);
    CHECK(is_empty_dir(p));
    CHECK_INT_EQ(open_fds(), base);
    dirpool_free(&pool);
    remove_work_dir(work2);
}

/* What a restart finds in tasks/ and how it tells a free slot from an
 * attempt's: by the record.  Free: no record line (a slot made for the
 * pool), a take cut short by a crash (no whole id line), an id the journal
 * names as acked, a spoiled id line ("#d": its attempt forgotten); an
 * attempt's: any other id (reported with its exit line), and every dir an
 * older agent named by its attempt.  When the journal forgets an acked
 * attempt whose slot no attempt took since, the slot's id line is spoiled;
 * a slot taken since keeps its new attempt's. */
TEST(node_restart_tells_free_slots_from_attempts_by_their_records)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", d[400], rec[512];
    agent_cfg_t cfg = work_dir_cfg(work);
    cfg.pool_fill = -1;
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_free(&n);
    static const char *const recs[] = {
        "",                                                          /* 0: made for the pool */
        "id u~long-gone-attempt/0/r/0",                              /* 1: a cut take */
        "id u~j/0/r/2/0\nmon 1 1 k\nexit exited 0 0 0 1 2 0\n",      /* 2: acked (journal) */
        "#d u~j/0/r/3/0\nexit exited 0 0 0 1 2 0\n",                 /* 3: forgotten */
        "id u~j/0/r/4/0\nmon 999999 1 k\nexit exited 5 0 0 1 2 0\n", /* 4: ended, not acked */
    };
    for (int i = 0; i < 5; i++) {
        snprintf(d, sizeof(d), "%s/tasks/%d", work, i);
        CHECK(mkdir(d, 0711) == 0);
        put_file(d, "monitor", recs[i]);
        snprintf(d, sizeof(d), "%s/tasks/%d/cwd", work, i);
        CHECK(mkdir(d, 0700) == 0);
    }
    snprintf(d, sizeof(d), "%s/tasks/u~old+0+r+0+0", work); /* an older agent's */
    CHECK(mkdir(d, 0711) == 0);
    put_file(d, "monitor", "id u~old/0/r/0/0\nmon 999999 1 k\nexit exited 6 0 0 1 2\n");
    put_file(work, "acked-attempts", "u~j/0/r/2/0\n");
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    dirpool_settle(&n.pool);
    CHECK_INT_EQ(n.pool.n, 4); /* 0-3 */
    CHECK_INT_EQ(n.pool.next, 5);
    agent_task_t *t2 = task_find(&n, "u~j/0/r/2/0"), *t4 = task_find(&n, "u~j/0/r/4/0");
    agent_task_t *old = task_find(&n, "u~old/0/r/0/0");
    CHECK(t2 && t2->acked && t2->slot == 2 && t2->dir_gone);
    CHECK(task_find(&n, "u~j/0/r/3/0") == NULL);
    CHECK(t4 && !t4->acked && t4->slot == 4 && t4->phase == RC_DONE && t4->res.exit_code == 5);
    CHECK(old && !old->acked && old->slot == -1 && old->res.exit_code == 6);
    CHECK_INT_EQ(n.ntasks, 3);
    /* the journal forgets u~j/0/r/2/0: its slot (not taken since) is
     * spoiled; u~j/0/r/4/0 acked and its slot taken again: kept */
    task_mark_acked(&n, t4);
    agentwire_task_t want = {.attempt_id = "u~k/0/r/0/0"}; /* takes slot 4, the last freed */
    task_start(&n, &want);
    agent_task_t *k = task_find(&n, "u~k/0/r/0/0");
    CHECK(k && k->slot == 4);
    task_prune_tombstones(&n, time_mono_ms() + 11 * 60 * 1000);
    CHECK(task_find(&n, "u~j/0/r/2/0") == NULL && task_find(&n, "u~j/0/r/4/0") == NULL);
    snprintf(d, sizeof(d), "%s/tasks/2", work);
    read_record(d, rec, sizeof(rec));
    CHECK(strncmp(rec, "#d u~j/0/r/2/0\n", 15) == 0);
    snprintf(d, sizeof(d), "%s/tasks/4", work);
    CHECK(record_is_id_alone(d, "u~k/0/r/0/0"));
    node_free(&n);
    /* and the next restart: 2 is free, 4 is u~k's (no monitor: lost) */
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    dirpool_settle(&n.pool);
    k = task_find(&n, "u~k/0/r/0/0");
    CHECK(k && k->slot == 4 && k->phase == RC_DONE && k->res.exit_code == -1001);
    bool two_free = false;
    for (size_t i = 0; i < n.pool.n; i++)
        two_free = two_free || n.pool.ids[i] == 2;
    CHECK(two_free);
    node_free(&n);
    remove_work_dir(work);
}

/* The put of an attempt that ran as an unprivileged uid, in no container
 * (cwd_only), reads and empties its slot's cwd alone: cwd given back and
 * emptied, the slot's own entries not read (a file there stays); any other
 * put reads the whole slot (the file removed); a slot whose cwd is gone is
 * removed either way; an attempt found by a restart (not started here) is
 * never cwd_only. */
TEST(pool_put_of_an_isolated_attempt_reads_its_cwd_alone)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[500], d[400];
    dirpool_t pool;
    CHECK(pool_in(work, p, sizeof(p), &pool, 3));
    int slots[3];
    for (int i = 0; i < 3; i++) {
        int fd = dirpool_take(&pool, "u~a/0/r/0/0", &slots[i]);
        CHECK(fd >= 0);
        if (fd >= 0)
            close(fd);
        dirpool_path(&pool, slots[i], d, sizeof(d));
        put_file(d, "stray", "x\n");
        snprintf(p, sizeof(p), "%s/cwd", d);
        CHECK(chmod(p, 0755) == 0);
        put_file(p, "out.txt", "y\n");
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/tasks/%d/cwd'", work, slots[2]);
    CHECK(system(cmd) == 0); /* no cwd: removed */
    dirpool_put(&pool, slots[0], true);
    dirpool_put(&pool, slots[1], false);
    dirpool_put(&pool, slots[2], true);
    dirpool_settle(&pool);
    CHECK_INT_EQ(pool.n, 2);
    struct stat st;
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/tasks/%d/cwd", work, slots[i]);
        CHECK(is_empty_dir(p));
        CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid());
        snprintf(p, sizeof(p), "%s/tasks/%d/stray", work, slots[i]);
        CHECK((access(p, F_OK) == 0) == (i == 0)); /* not read / read and removed */
    }
    snprintf(p, sizeof(p), "%s/tasks/%d", work, slots[2]);
    CHECK(access(p, F_OK) != 0);
    dirpool_free(&pool);
    remove_work_dir(work);
    /* the node: a recovered attempt is never cwd_only; its put reads the slot */
    char work2[] = "/tmp/pai-test-agent-XXXXXX";
    agent_cfg_t cfg = work_dir_cfg(work2);
    cfg.pool_fill = -1;
    snprintf(d, sizeof(d), "%s/tasks", work2);
    CHECK(mkdir(d, 0711) == 0);
    snprintf(d, sizeof(d), "%s/tasks/0", work2);
    CHECK(mkdir(d, 0711) == 0);
    put_file(d, "monitor", "id u~b/0/r/0/0\nmon 999999 1 k\nexit exited 0 0 0 1 2 0\n");
    put_file(d, "exit", "exited 3 0 0 1 2\n"); /* e.g. an agent's lost mark */
    snprintf(p, sizeof(p), "%s/cwd", d);
    CHECK(mkdir(p, 0700) == 0);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    agent_task_t *t = task_find(&n, "u~b/0/r/0/0");
    CHECK(t && t->slot == 0 && !t->cwd_only);
    if (t)
        task_mark_acked(&n, t);
    snprintf(p, sizeof(p), "%s/exit", d);
    CHECK(access(p, F_OK) != 0);
    CHECK_INT_EQ(n.pool.n, 1);
    /* a start that ran nothing as an unprivileged uid (no task uid here) */
    agentwire_task_t want = {.attempt_id = "u~c/0/r/0/0"};
    task_start(&n, &want);
    t = task_find(&n, "u~c/0/r/0/0");
    CHECK(t && t->slot == 0 && !t->cwd_only);
    node_free(&n);
    remove_work_dir(work2);
}

/* A node's pool is filled at its start (two slots a GPU and 4: 20 for 8
 * GPUs), each as a put leaves one (0711, an empty record, an empty cwd
 * 0700, the agent's), so that its first attempts take slots instead of
 * making them; a restart counts the free slots it finds and makes only the
 * rest; pool_fill sets the number. */
TEST(node_fills_its_pool_of_slots_at_its_start)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[400];
    agent_cfg_t cfg = work_dir_cfg(work);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    CHECK_INT_EQ(n.pool.n, 20);
    snprintf(p, sizeof(p), "%s/tasks", work);
    CHECK_INT_EQ(count_entries(p), 20);
    struct stat st;
    for (size_t i = 0; i < n.pool.n; i++) {
        snprintf(p, sizeof(p), "%s/tasks/%d", work, n.pool.ids[i]);
        CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0711 &&
              st.st_uid == geteuid());
        CHECK_INT_EQ(count_entries(p), 2);
        snprintf(p, sizeof(p), "%s/tasks/%d/monitor", work, n.pool.ids[i]);
        CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
              (st.st_mode & 0077) == 0);
        snprintf(p, sizeof(p), "%s/tasks/%d/cwd", work, n.pool.ids[i]);
        CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 &&
              st.st_uid == geteuid());
        CHECK(is_empty_dir(p));
    }
    /* an attempt takes one: its record holds its id alone, the pool one less */
    agentwire_task_t want = {.attempt_id = "u~f/0/r/0/0"}; /* no command: ends at once */
    task_start(&n, &want);
    CHECK_INT_EQ(n.pool.n, 19);
    agent_task_t *t = task_find(&n, "u~f/0/r/0/0");
    char d[300], id[64];
    snprintf(d, sizeof(d), "%s/tasks/%d", work, t ? t->slot : -1);
    CHECK(rt_record_get(d, "id ", id, sizeof(id)));
    CHECK_STR_EQ(id, "u~f/0/r/0/0");
    CHECK(stat(d, &st) == 0 && (st.st_mode & 07777) == 0711);
    /* a restart: the 19 free slots found, one made; the attempt's kept */
    node_free(&n);
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    CHECK_INT_EQ(n.pool.n + n.pool.deferred, 20);
    dirpool_settle(&n.pool);
    CHECK_INT_EQ(n.pool.n, 20);
    snprintf(p, sizeof(p), "%s/tasks", work);
    CHECK_INT_EQ(count_entries(p), 21);
    CHECK(task_find(&n, "u~f/0/r/0/0") != NULL);
    node_free(&n);
    /* pool_fill: as many as asked; none at -1 */
    remove_work_dir(work);
    char work2[] = "/tmp/pai-test-agent-XXXXXX";
    cfg = work_dir_cfg(work2);
    cfg.pool_fill = 3;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    CHECK_INT_EQ(n.pool.n, 3);
    node_free(&n);
    remove_work_dir(work2);
    char work3[] = "/tmp/pai-test-agent-XXXXXX";
    cfg = work_dir_cfg(work3);
    cfg.pool_fill = -1;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    node_recover(&n);
    CHECK_INT_EQ(n.pool.n, 0);
    snprintf(p, sizeof(p), "%s/tasks", work3);
    CHECK_INT_EQ(count_entries(p), 0);
    node_free(&n);
    remove_work_dir(work3);
}

/* A task that left 100,000 files (and a subdir) in its working dir does
 * not stall the agent's loop at its ack: the ack removes at most
 * DIRPOOL_INLINE of them and hands the dir to the pool's worker (held
 * here, so that what the loop did is certain); meanwhile the node still
 * syncs and another attempt's dir is pooled and taken at once; once the
 * worker ran, the big dir is empty and ready too. */
TEST(node_acks_a_task_that_left_100000_files_without_emptying_them_on_its_loop)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[400], cwd[400];
    CHECK(mkdtemp(work) != NULL);
    agent_cfg_t cfg = hollow_cfg();
    cfg.hollow = false;
    cfg.work_dir = work;
    cfg.pool_fill = -1; /* an empty pool at the start */
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    agentwire_task_t want = {.attempt_id = "u~big/0/r/0/0"}; /* no command: ends at once */
    task_start(&n, &want);
    agent_task_t *big = task_find(&n, "u~big/0/r/0/0");
    CHECK(big != NULL && big->phase == RC_DONE);
    CHECK(big != NULL && big->slot >= 0); /* a new slot: the pool had none */
    snprintf(cwd, sizeof(cwd), "%s/tasks/%d/cwd", work, big ? big->slot : -1);
    int fd = open(cwd, O_RDONLY | O_DIRECTORY);
    CHECK(fd >= 0);
    for (int i = 0; fd >= 0 && i < 100000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "f%d", i);
        int f = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
        CHECK(f >= 0);
        if (f < 0)
            break;
        close(f);
    }
    CHECK(mkdirat(fd, "sub", 0700) == 0);
    if (fd >= 0)
        close(fd);
    dirpool_hold(&n.pool, true);
    int64_t t0 = time_mono_us();
    if (big)
        task_mark_acked(&n, big);
    int64_t ack_us = time_mono_us() - t0;
    fprintf(stderr, "  ack of a dir of 100,001 entries: %lld us on the loop\n", (long long)ack_us);
    CHECK_INT_EQ(n.pool.n, 0);         /* not ready: the worker's */
    CHECK_INT_EQ(n.pool.deferred, 1);  /* ... which is held */
    snprintf(p, sizeof(p), "%s", cwd); /* emptied where it is */
    CHECK(count_entries(p) >= 100001 - DIRPOOL_INLINE);
    /* the loop goes on: a sync's text, another attempt's start, end, ack */
    buf_t body;
    buf_init(&body, 1 << 20);
    CHECK(node_sync_body(&n, &body) == PAI_OK && strstr(buf_str(&body), "\"node\""));
    buf_free(&body);
    want.attempt_id = "u~small/0/r/0/0";
    task_start(&n, &want);
    agent_task_t *small = task_find(&n, "u~small/0/r/0/0");
    CHECK(small != NULL);
    if (small)
        task_mark_acked(&n, small);
    CHECK_INT_EQ(n.pool.n, 1); /* emptied on the loop: ready at once */
    want.attempt_id = "u~small/0/r/1/0";
    task_start(&n, &want);
    CHECK_INT_EQ(n.pool.n, 0); /* taken */
    /* the worker empties the big one, which is then ready */
    t0 = time_mono_us();
    dirpool_hold(&n.pool, false);
    dirpool_settle(&n.pool);
    fprintf(stderr, "  the worker emptied it in %lld us\n", (long long)(time_mono_us() - t0));
    CHECK_INT_EQ(n.pool.deferred, 0);
    CHECK_INT_EQ(n.pool.n, 1);
    CHECK_INT_EQ(count_entries(p), 0);
    node_free(&n);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
    CHECK(system(cmd) == 0);
}

RUN_TESTS(node_reuses_a_forgotten_attempts_emptied_slot, node_fills_its_pool_of_slots_at_its_start,
          pool_take_cuts_the_record_then_writes_the_id_line,
          pool_take_pads_a_short_record_and_cuts_a_long_one,
          pool_cwd_only_put_keeps_the_cwd_open_for_the_next,
          node_restart_tells_free_slots_from_attempts_by_their_records,
          pool_put_of_an_isolated_attempt_reads_its_cwd_alone,
          node_acks_a_task_that_left_100000_files_without_emptying_them_on_its_loop)
