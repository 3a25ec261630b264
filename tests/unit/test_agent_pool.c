/* test_agent_pool.c - the node's pool of attempt dirs (agent/dirpool.h):
 * a forgotten attempt's dir emptied and reused, the pool filled at the
 * start, the take's record, a big dir emptied off the loop. */
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

/* A forgotten attempt's dir goes into the pool, emptied (its record
 * truncated, its working dir emptied and 0700 the agent's again, anything
 * else removed), and the next attempt takes it instead of making new
 * ones; a restarted agent starts with an empty pool. */
TEST(node_reuses_a_forgotten_attempts_emptied_dir)
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
    CHECK(t != NULL && t->acked);
    task_prune_tombstones(&n, time_mono_ms() + 11 * 60 * 1000);
    CHECK(task_find(&n, "u~j/0/r/0/0") == NULL);
    CHECK(access(d, F_OK) != 0);
    dirpool_settle(&n.pool); /* a subdir in cwd: emptied by the worker */
    CHECK_INT_EQ(n.pool.n, 1);
    if (n.pool.n != 1)
        return;
    struct stat st;
    /* the record keeps its lines (and its page) until the take */
    snprintf(p, sizeof(p), "%s/pool/%d/monitor", work, n.pool.ids[0]);
    CHECK(stat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 40);
    snprintf(p, sizeof(p), "%s/pool/%d/cwd", work, n.pool.ids[0]);
    CHECK(is_empty_dir(p));
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700 && st.st_uid == geteuid());
    snprintf(p, sizeof(p), "%s/pool/%d/command", work, n.pool.ids[0]);
    CHECK(access(p, F_OK) != 0);
    /* the next attempt takes it: its record holds its own id alone (no
     * command: it fails to start, after its dir was made) */
    agentwire_task_t want = {.attempt_id = "u~j/0/r/1/0"};
    task_start(&n, &want);
    CHECK_INT_EQ(n.pool.n, 0);
    snprintf(d, sizeof(d), "%s/tasks/u~j+0+r+1+0", work);
    char id[64], line[8], rec[256];
    CHECK(rt_record_get(d, "id ", id, sizeof(id)));
    CHECK_STR_EQ(id, "u~j/0/r/1/0");
    CHECK(!rt_record_get(d, "acked", line, sizeof(line)));
    read_record(d, rec, sizeof(rec)); /* the id line alone, nothing of the last lines */
    CHECK_STR_EQ(rec, "id u~j/0/r/1/0\n");
    snprintf(p, sizeof(p), "%s/cwd", d);
    CHECK(is_empty_dir(p));
    CHECK(stat(d, &st) == 0 && (st.st_mode & 07777) == 0711);
    /* a second new attempt finds the pool empty and makes its dirs */
    want.attempt_id = "u~j/0/r/2/0";
    task_start(&n, &want);
    snprintf(p, sizeof(p), "%s/tasks/u~j+0+r+2+0/cwd", work);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700);
    /* forgotten again, then the agent restarts: the pool is emptied */
    task_mark_acked(&n, task_find(&n, "u~j/0/r/1/0"));
    task_prune_tombstones(&n, time_mono_ms() + 11 * 60 * 1000);
    CHECK_INT_EQ(n.pool.n, 1);
    node_free(&n);
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    CHECK_INT_EQ(n.pool.n, 0);
    dirpool_settle(&n.pool); /* the worker removes what the last process left */
    snprintf(p, sizeof(p), "%s/pool", work);
    CHECK(is_empty_dir(p));
    node_recover(&n);
    CHECK(task_find(&n, "u~j/0/r/2/0") != NULL);
    t = task_find(&n, "u~j/0/r/1/0"); /* from the journal */
    CHECK(t && t->acked && t->dir_gone);
    node_free(&n);
    remove_work_dir(work);
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

/* A pooled dir's record is rewritten by the take before its rename: the
 * new id's line alone (however long the last attempt's lines were), the
 * fd left open for appends; an entry whose record is gone is dropped and
 * the next one taken; a path that cannot be made (no parent) or none
 * left: -1, the caller makes the dirs. */
TEST(pool_take_rewrites_the_record_before_the_rename)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[500], d[400], rec[512];
    CHECK(mkdtemp(work) != NULL);
    snprintf(p, sizeof(p), "%s/pool", work);
    dirpool_t pool;
    CHECK(dirpool_init(&pool, p));
    CHECK_INT_EQ(dirpool_fill(&pool, 2), 2);
    /* a path whose parent is not there: -1, and the entry stays pooled */
    snprintf(d, sizeof(d), "%s/nodir/a", work);
    CHECK_INT_EQ(dirpool_take(&pool, d, "u~x/0/r/0/0"), -1);
    CHECK_INT_EQ(pool.n, 2);
    for (int i = 0; i < 2; i++) {
        snprintf(d, sizeof(d), "%s/tasks%d", work, i);
        CHECK(mkdir(d, 0711) == 0);
        snprintf(d, sizeof(d), "%s/tasks%d/a", work, i);
        int fd = dirpool_take(&pool, d, "u~old/0/r/0/0");
        CHECK(fd >= 0);
        if (fd >= 0)
            close(fd);
        CHECK(rt_record_append(
                  d, "mon 1 2\ntask 3 /x/pool.1.2\nexit exited 0 0 0 1 2 0\nacked\n") == 0);
        dirpool_put(&pool, d);
    }
    CHECK_INT_EQ(pool.n, 2);
    /* the last put is taken first: remove its record, so that the take drops it */
    snprintf(p, sizeof(p), "%s/pool/%d/monitor", work, pool.ids[1]);
    CHECK(unlink(p) == 0);
    snprintf(d, sizeof(d), "%s/tasks0/b", work);
    int fd = dirpool_take(&pool, d, "u~new/0/r/1/0");
    CHECK(fd >= 0);
    CHECK_INT_EQ(pool.n, 0);
    read_record(d, rec, sizeof(rec));
    CHECK_STR_EQ(rec, "id u~new/0/r/1/0\n");
    CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_APPEND));
    CHECK(fd >= 0 && write(fd, "mon 9 9\n", 8) == 8); /* the monitor's line, after the id */
    if (fd >= 0)
        close(fd);
    read_record(d, rec, sizeof(rec));
    CHECK_STR_EQ(rec, "id u~new/0/r/1/0\nmon 9 9\n");
    snprintf(p, sizeof(p), "%s/cwd", d);
    CHECK(is_empty_dir(p));
    /* none left: -1, and nothing made */
    snprintf(d, sizeof(d), "%s/tasks1/c", work);
    CHECK_INT_EQ(dirpool_take(&pool, d, "u~c/0/r/0/0"), -1);
    CHECK(access(d, F_OK) != 0);
    dirpool_settle(&pool); /* the dropped entry removed by the worker */
    snprintf(p, sizeof(p), "%s/pool", work);
    CHECK_INT_EQ(count_entries(p), 0);
    dirpool_free(&pool);
    remove_work_dir(work);
}

/* A node's pool is filled at its start (two dirs a GPU and 4: 20 for 8
 * GPUs), each as a put leaves one (0711, an empty record, an empty cwd
 * 0700, the agent's), so that its first attempts take dirs instead of
 * making them; a restart removes what the last process left and fills
 * the pool again; pool_fill sets the number. */
TEST(node_fills_its_pool_of_attempt_dirs_at_its_start)
{
    char work[] = "/tmp/pai-test-agent-XXXXXX", p[400];
    agent_cfg_t cfg = work_dir_cfg(work);
    agent_node_t n;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    CHECK_INT_EQ(n.pool.n, 20);
    snprintf(p, sizeof(p), "%s/pool", work);
    CHECK_INT_EQ(count_entries(p), 20);
    struct stat st;
    for (size_t i = 0; i < n.pool.n; i++) {
        snprintf(p, sizeof(p), "%s/pool/%d", work, n.pool.ids[i]);
        CHECK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0711 &&
              st.st_uid == geteuid());
        CHECK_INT_EQ(count_entries(p), 2);
        snprintf(p, sizeof(p), "%s/pool/%d/monitor", work, n.pool.ids[i]);
        CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 &&
              (st.st_mode & 0077) == 0);
        snprintf(p, sizeof(p), "%s/pool/%d/cwd", work, n.pool.ids[i]);
        CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700 &&
              st.st_uid == geteuid());
        CHECK(is_empty_dir(p));
    }
    /* an attempt takes one: its record holds its id alone, the pool one less */
    agentwire_task_t want = {.attempt_id = "u~f/0/r/0/0"}; /* no command: ends at once */
    task_start(&n, &want);
    CHECK_INT_EQ(n.pool.n, 19);
    snprintf(p, sizeof(p), "%s/pool", work);
    CHECK_INT_EQ(count_entries(p), 19);
    char d[300], id[64];
    snprintf(d, sizeof(d), "%s/tasks/u~f+0+r+0+0", work);
    CHECK(rt_record_get(d, "id ", id, sizeof(id)));
    CHECK_STR_EQ(id, "u~f/0/r/0/0");
    CHECK(stat(d, &st) == 0 && (st.st_mode & 07777) == 0711);
    /* a restart: the last process's entries removed, 20 new ones */
    node_free(&n);
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    CHECK_INT_EQ(n.pool.n, 20);
    dirpool_settle(&n.pool);
    snprintf(p, sizeof(p), "%s/pool", work);
    CHECK_INT_EQ(count_entries(p), 20);
    node_free(&n);
    /* pool_fill: as many as asked; none at -1 */
    cfg.pool_fill = 3;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    CHECK_INT_EQ(n.pool.n, 3);
    node_free(&n);
    cfg.pool_fill = -1;
    CHECK(node_init(&n, &cfg, "p1", runtime_find("process"), "http://x") == PAI_OK);
    CHECK_INT_EQ(n.pool.n, 0);
    dirpool_settle(&n.pool);
    snprintf(p, sizeof(p), "%s/pool", work);
    CHECK_INT_EQ(count_entries(p), 0);
    node_free(&n);
    remove_work_dir(work);
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
    snprintf(cwd, sizeof(cwd), "%s/tasks/u~big+0+r+0+0/cwd", work);
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
    CHECK_INT_EQ(n.pool.n, 0);        /* not ready: the worker's */
    CHECK_INT_EQ(n.pool.deferred, 1); /* ... which is held */
    snprintf(p, sizeof(p), "%s/pool/0/cwd", work);
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

RUN_TESTS(node_reuses_a_forgotten_attempts_emptied_dir,
          node_fills_its_pool_of_attempt_dirs_at_its_start,
          pool_take_rewrites_the_record_before_the_rename,
          node_acks_a_task_that_left_100000_files_without_emptying_them_on_its_loop)
