/* test_store_wal.c - the SQLite writer's WAL writes gathered into one
 * pwrite per commit (src/store/sqlite_vfs.c): what a write returned is in
 * the file, for readers at once, through WAL checkpoints and restarts, and
 * after the writing process is killed; the database stays whole. */
#include <signal.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"
#include "test.h"

static char dir_[256];

static store_t *open_store(bool fresh)
{
    if (fresh) {
        char tmpl[] = "/tmp/pai-test-wal-XXXXXX";
        char *d = mkdtemp(tmpl);
        if (!d)
            return NULL;
        str_copy(dir_, d, sizeof(dir_));
    }
    char url[512], err[256];
    snprintf(url, sizeof(url), "sqlite:%s/pai.db", dir_);
    store_t *st = NULL;
    if (store_open(url, &st, err, sizeof(err)) != PAI_OK)
        fprintf(stderr, "  %s\n", err);
    return st;
}

static void cleanup(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir_);
    if (system(cmd) != 0)
        fprintf(stderr, "  cleanup failed\n");
}

/* Record i's value: ~3 KiB, its number inside. */
static char *value(int i)
{
    char pad[3000];
    memset(pad, 'a' + i % 26, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    return str_printf("{\"i\":%d,\"pad\":\"%s\"}", i, pad);
}

static bool holds(store_t *st, int i)
{
    char key[32], *text = NULL, *want = value(i);
    snprintf(key, sizeof key, "r%05d", i);
    bool ok = store_get(st, "rec", key, &text) == PAI_OK && text && strcmp(text, want) == 0;
    free(text);
    free(want);
    return ok;
}

static bool integrity_ok(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/pai.db", dir_);
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    bool ok = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
              sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL) == SQLITE_OK &&
              sqlite3_step(s) == SQLITE_ROW &&
              strcmp((const char *)sqlite3_column_text(s, 0), "ok") == 0;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok;
}

/* One commit of 300 records of ~3 KiB (kind "big"), read back. */
static bool big_commit(store_t *st, int round)
{
    store_op_t ops[300];
    char keys[300][32], *vals[300];
    for (int k = 0; k < 300; k++) {
        snprintf(keys[k], sizeof keys[k], "b%05d-%03d", round, k);
        vals[k] = value(k);
        ops[k] = (store_op_t){STORE_OP_PUT, "big", keys[k], round, vals[k]};
    }
    bool ok = store_batch(st, ops, 300) == PAI_OK;
    for (int k = 0; k < 300; k++) {
        char *text = NULL;
        ok = ok && store_get(st, "big", keys[k], &text) == PAI_OK && strcmp(text, vals[k]) == 0;
        free(text);
        free(vals[k]);
    }
    return ok;
}

/* 2,000 commits of ~3 KiB (two frames each, and their index's): several
 * WAL checkpoints and restarts of the WAL from its start; each write read
 * back at once by a reader connection, a rewrite of an earlier record in
 * every tenth commit, four commits of ~1 MiB (over the most one write
 * takes), all of it again after a reopen. */
TEST(what_each_commit_wrote_is_read_back_through_checkpoints_and_a_reopen)
{
    store_t *st = open_store(true);
    CHECK(st != NULL);
    if (!st)
        return;
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        char key[32], *v = value(i);
        snprintf(key, sizeof key, "r%05d", i);
        store_op_t ops[2] = {{STORE_OP_PUT, "rec", key, i, v}};
        size_t n = 1;
        char *again = NULL, key2[32];
        if (i % 10 == 9) { /* the same record of an earlier commit, rewritten */
            snprintf(key2, sizeof key2, "r%05d", i / 2);
            again = value(i / 2);
            ops[n++] = (store_op_t){STORE_OP_PUT, "rec", key2, i / 2, again};
        }
        bad += store_batch(st, ops, n) != PAI_OK;
        if (i % 500 == 250) /* a commit of ~1 MiB: more than one write's worth */
            bad += !big_commit(st, i);
        bad += !holds(st, i);
        free(v);
        free(again);
    }
    CHECK_INT_EQ(bad, 0);
    store_close(st);
    CHECK(integrity_ok());
    st = open_store(false);
    CHECK(st != NULL);
    for (int i = 0; st && i < 2000; i++)
        bad += !holds(st, i);
    CHECK_INT_EQ(bad, 0);
    store_close(st);
    cleanup();
}

/* A child writes record after record and tells the parent each one its
 * write returned; the parent kills it (SIGKILL: its memory, a buffer
 * included, is gone) in the middle, past the first WAL checkpoint and
 * restart (~2,500 commits of two or three frames).  Every record it was
 * told of is in the store, and the store is whole. */
TEST(a_write_that_returned_survives_the_writer_killed)
{
    store_t *st = open_store(true);
    CHECK(st != NULL);
    if (!st)
        return;
    store_close(st);
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        store_t *w = open_store(false);
        for (int i = 0; w && i < 100000; i++) {
            char key[32], *v = value(i);
            snprintf(key, sizeof key, "r%05d", i);
            if (store_put(w, "rec", key, i, v) != PAI_OK)
                _exit(2);
            free(v);
            if (write(fds[1], &i, sizeof i) != (ssize_t)sizeof i)
                _exit(3);
        }
        _exit(0);
    }
    close(fds[1]);
    int last = -1, got;
    while (last < 2500 && read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        last = got;
    kill(pid, SIGKILL);
    while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
        last = got; /* told before the kill */
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK(last >= 2500);
    st = open_store(false);
    CHECK(st != NULL);
    int bad = 0;
    for (int i = 0; st && i <= last; i++)
        bad += !holds(st, i);
    CHECK_INT_EQ(bad, 0);
    store_close(st);
    CHECK(integrity_ok());
    cleanup();
}

/* WAL frames a commit of one put added (the WAL's growth; no checkpoint
 * in so few). */
/* Big-endian 32-bit word at p. */
static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The frames of the WAL's current generation: those from its start whose
 * salts are its header's (SQLite's file format; the writer grows the file
 * with zeros ahead of them, and a restarted WAL keeps older frames past
 * them). */
static long wal_frames(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/pai.db-wal", dir_);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char hdr[32], fh[24];
    long n = 0;
    if (fread(hdr, 1, sizeof hdr, f) == sizeof hdr && be32(hdr) >> 1 == 0x377f0682 / 2) {
        long page = (long)be32(hdr + 8);
        while (fseek(f, 32 + n * (24 + page), SEEK_SET) == 0 &&
               fread(fh, 1, sizeof fh, f) == sizeof fh && memcmp(fh + 8, hdr + 16, 8) == 0)
            n++;
    }
    fclose(f);
    return n;
}

static long frames_of_put_kind(store_t *st, const char *kind, const char *key, int64_t seq,
                               const char *json)
{
    long before = wal_frames();
    if (store_put(st, kind, key, seq, json) != PAI_OK)
        return -1;
    return wal_frames() - before;
}

static long frames_of_put(store_t *st, const char *key, int64_t seq, const char *json)
{
    return frames_of_put_kind(st, "rec", key, seq, json);
}

/* A record rewritten with its seq unchanged (a job's every flush) changes
 * its row alone, not the scan index's entry: one frame; a new key writes
 * the row, the (kind, key) index and the scan index, a new seq the row and
 * the scan index.  A kind the scan index leaves out (a job's commands)
 * writes no scan index page. */
TEST(a_rewrite_with_the_same_seq_writes_one_frame)
{
    store_t *st = open_store(true);
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK_INT_EQ(frames_of_put(st, "a", 1, "{\"v\":1}"), 3); /* new: row and both indexes */
    CHECK_INT_EQ(frames_of_put(st, "a", 1, "{\"v\":2}"), 1); /* same seq: the row */
    CHECK_INT_EQ(frames_of_put(st, "a", 2, "{\"v\":3}"), 2); /* new seq: row and scan index */
    CHECK_INT_EQ(frames_of_put_kind(st, "jobcmd", "a", 1, "{\"c\":1}"), 2); /* row, key index */
    CHECK_INT_EQ(frames_of_put_kind(st, "jobcmd", "a", 1, "{\"c\":2}"), 1);
    char *text = NULL;
    CHECK(store_get(st, "rec", "a", &text) == PAI_OK);
    CHECK_STR_EQ(text, "{\"v\":3}");
    free(text);
    CHECK(store_get(st, "jobcmd", "a", &text) == PAI_OK);
    CHECK_STR_EQ(text, "{\"c\":2}");
    free(text);
    store_close(st);
    cleanup();
}

/* The WAL file's size in bytes (0 when absent). */
static long wal_size(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/pai.db-wal", dir_);
    FILE *f = fopen(path, "rb");
    long n = 0;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (f)
        fclose(f);
    return n;
}

/* One commit of n records of ~3 KiB (kind "burst", keys from first on). */
static bool burst_commit(store_t *st, int first, int n)
{
    store_op_t ops[64];
    char keys[64][32], *vals[64];
    for (int k = 0; k < n; k++) {
        snprintf(keys[k], sizeof keys[k], "w%06d", first + k);
        vals[k] = value(first + k);
        ops[k] = (store_op_t){STORE_OP_PUT, "burst", keys[k], first + k, vals[k]};
    }
    bool ok = store_batch(st, ops, (size_t)n) == PAI_OK;
    for (int k = 0; k < n; k++)
        free(vals[k]);
    return ok;
}

/* The burst records first, first + step, ... below end that do not read
 * back as burst_commit wrote them. */
static int burst_missing(store_t *st, int first, int end, int step)
{
    char key[32], *text = NULL;
    int bad = 0;
    for (int i = first; st && i < end; i += step) {
        snprintf(key, sizeof key, "w%06d", i);
        char *want = value(i);
        bad += store_get(st, "burst", key, &text) != PAI_OK || strcmp(text, want) != 0;
        free(text);
        text = NULL;
        free(want);
    }
    return bad;
}

#define FRAME (24 + 4096)
/* sqlite.c: WAL_CHECKPOINT_PAGES, WAL_SIZE_LIMIT */
#define CHECKPOINT_PAGES 4000
#define SIZE_LIMIT       25165824L
/* sqlite_vfs.c: EXTEND_CHUNK */
#define WAL_CHUNK 1048576L

/* A long burst of commits (~12,000 WAL frames): the writer checkpoints
 * and starts the WAL over, so the file never holds more than the
 * cadence's frames and one commit's. */
TEST(the_wal_stays_bounded_under_a_long_burst)
{
    store_t *st = open_store(true);
    CHECK(st != NULL);
    if (!st)
        return;
    long most = 0, most_size = 0, grown = 0;
    int bad = 0, restarts = 0;
    for (int c = 0; c < 400; c++) {
        long before = wal_frames();
        bad += !burst_commit(st, c * 10, 10);
        long now = wal_frames();
        most = now > most ? now : most;
        grown += now > before ? now - before : now;
        restarts += now < before; /* written again from its start */
        long size = wal_size();
        most_size = size > most_size ? size : most_size;
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(grown >= 3 * CHECKPOINT_PAGES / 4); /* the burst filled the WAL */
    CHECK(most <= CHECKPOINT_PAGES + 100);
    CHECK(most_size <= (long)(CHECKPOINT_PAGES + 100) * FRAME + 32 + WAL_CHUNK);
    CHECK(restarts > 0);
    store_close(st);
    CHECK(integrity_ok());
    cleanup();
}

/* The writer grows the WAL file a mebibyte at a time, with zeros, ahead of
 * the frames: a commit into the grown part leaves the file's size (and so
 * its inode) as it was.  Past the last frame the file holds zeros, which
 * SQLite does not take for frames: the records read back after the store
 * is closed and opened again. */
TEST(the_wal_file_grows_a_mebibyte_at_a_time_ahead_of_its_frames)
{
    store_t *st = open_store(true);
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(burst_commit(st, 0, 1));
    CHECK_INT_EQ(wal_size(), WAL_CHUNK);
    int bad = 0, changes = 0, commits = 1;
    long size = wal_size();
    while (32 + wal_frames() * FRAME <= WAL_CHUNK && commits < 1000) {
        bad += !burst_commit(st, commits, 1);
        commits++;
        changes += wal_size() != size;
        size = wal_size();
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(commits > 20);      /* ~5 frames each */
    CHECK_INT_EQ(changes, 1); /* the commit that crossed the first mebibyte */
    CHECK_INT_EQ(wal_size(), 2 * WAL_CHUNK);
    /* zeros from the end of the last frame to the end of the file */
    char path[600];
    snprintf(path, sizeof path, "%s/pai.db-wal", dir_);
    FILE *f = fopen(path, "rb");
    long nonzero = -1;
    if (f && fseek(f, 32 + wal_frames() * FRAME, SEEK_SET) == 0) {
        int ch;
        nonzero = 0;
        while ((ch = fgetc(f)) != EOF)
            nonzero += ch != 0;
    }
    if (f)
        fclose(f);
    CHECK_INT_EQ(nonzero, 0);
    store_close(st);
    st = open_store(false);
    CHECK(st != NULL);
    CHECK_INT_EQ(burst_missing(st, 0, commits, 1), 0);
    store_close(st);
    CHECK(integrity_ok());
    cleanup();
}

/* A reader that holds an old snapshot (another process's, or a long
 * scan) keeps the WAL from starting over, so it grows past the bound;
 * once the reader is done, the next restart cuts the file back to the
 * bound (journal_size_limit).  Every record stays readable. */
TEST(a_wal_grown_behind_a_reader_is_cut_back_to_the_bound)
{
    store_t *st = open_store(true);
    CHECK(st != NULL);
    if (!st)
        return;
    CHECK(burst_commit(st, 0, 10));
    char path[600];
    snprintf(path, sizeof path, "%s/pai.db", dir_);
    sqlite3 *rd = NULL;
    sqlite3_stmt *s = NULL;
    CHECK(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(rd, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_prepare_v2(rd, "SELECT count(*) FROM records", -1, &s, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(s) == SQLITE_ROW);
    sqlite3_finalize(s);
    int next = 10, bad = 0;
    while (wal_size() <= SIZE_LIMIT + 8L * FRAME && next < 20000) {
        bad += !burst_commit(st, next, 50);
        next += 50;
    }
    CHECK(wal_size() > SIZE_LIMIT);
    CHECK(sqlite3_exec(rd, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(rd);
    /* commits until a checkpoint has completed and the WAL started over */
    for (int c = 0; c < 400 && wal_size() > SIZE_LIMIT; c++) {
        bad += !burst_commit(st, next, 10);
        next += 10;
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(wal_size() <= SIZE_LIMIT);
    CHECK_INT_EQ(burst_missing(st, 0, next, 97), 0);
    store_close(st);
    CHECK(integrity_ok());
    cleanup();
}

RUN_TESTS(what_each_commit_wrote_is_read_back_through_checkpoints_and_a_reopen,
          a_write_that_returned_survives_the_writer_killed,
          a_rewrite_with_the_same_seq_writes_one_frame, the_wal_stays_bounded_under_a_long_burst,
          the_wal_file_grows_a_mebibyte_at_a_time_ahead_of_its_frames,
          a_wal_grown_behind_a_reader_is_cut_back_to_the_bound)
