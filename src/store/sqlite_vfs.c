/*
 * sqlite_vfs.c - the SQLite writer's VFS: the default one ("unix") with
 * the WAL's writes gathered into one pwrite per commit.
 *
 * SQLite appends a commit's frames to the WAL with two writes each (the
 * 24-byte frame header, then the page): a commit of ~16 pages was ~33
 * pwrite64 calls before its fdatasync.  This shim keeps a WAL file's
 * contiguous writes in a buffer and writes them in one call before
 * anything that needs them in the file: the sync (every commit's, with
 * synchronous=FULL, before the frames are made visible in the WAL index),
 * a read, a truncation, a size query, a file control, the close, or a
 * write that does not follow the buffered ones.  So the bytes reach the
 * file in the order SQLite wrote them, and before SQLite could rely on
 * them: what SQLite sees is the same, with fewer system calls.  It also
 * grows the WAL file with zeros a mebibyte ahead of the frames
 * (wal_extend), so that a commit's sync allocates no block and changes
 * no size.  Every
 * other file (the database, its shared memory) is the default VFS's own,
 * untouched.
 *
 * Only the store's write connection uses it (sqlite.c); one thread at a
 * time uses a connection, so a file's buffer needs no lock.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_vfs.h"

/* Buffered bytes at most: one write of the unix VFS may not exceed
 * 0x1ffff bytes (its seekAndWriteFd masks the count with it: a longer one
 * comes out short, and ends in SQLITE_FULL); ~30 frames of 4 KiB pages.
 * A longer run is written as it grows. */
#define GATHER_MAX (31 * 4096)
/* The WAL file grows by this much at a time, written with zeros: see
 * wal_extend. */
#define EXTEND_CHUNK (1024 * 1024)

typedef struct {
    sqlite3_file base;  /* pMethods = &wal_methods */
    sqlite3_file *real; /* the default VFS's file, right after this struct */
    char *buf;
    int len;
    sqlite3_int64 off;  /* buf holds the bytes of [off, off + len) */
    sqlite3_int64 size; /* the file's size as written through here */
} wal_file_t;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs gather_vfs;

/* Write what is buffered. */
static int gather_flush(wal_file_t *w)
{
    if (w->len == 0)
        return SQLITE_OK;
    int rc = w->real->pMethods->xWrite(w->real, w->buf, w->len, w->off);
    w->len = 0;
    return rc;
}

/* Grow the file past end with zeros, to the next EXTEND_CHUNK boundary,
 * before SQLite writes there.  A commit that appended to the file changed
 * its size and allocated its blocks: the fdatasync of every such commit
 * also wrote the inode (another block write and device flush) and the
 * block map; into a file already written to that length, a commit's sync
 * is its frames alone (where fdatasync leaves a change of times alone:
 * ext4 without a journal writes the inode for one too), as it is once
 * SQLite restarts the WAL from its beginning.  (PostgreSQL fills its WAL
 * segments with zeros for the same reason.)  The zeros are no frames to SQLite: its recovery reads
 * frames up to the first whose salt and checksum do not match the header's, as it does over the
 * stale frames of a restarted WAL; and it cuts the file back to journal_size_limit at a restart
 * when it grew past it. */
static int wal_extend(wal_file_t *w, sqlite3_int64 end)
{
    static const char zeros[64 * 1024];
    sqlite3_int64 to = (end + EXTEND_CHUNK - 1) / EXTEND_CHUNK * EXTEND_CHUNK;
    while (w->size < to) {
        sqlite3_int64 n = to - w->size < (sqlite3_int64)sizeof(zeros)
                              ? to - w->size
                              : (sqlite3_int64)sizeof(zeros);
        int rc = w->real->pMethods->xWrite(w->real, zeros, (int)n, w->size);
        if (rc != SQLITE_OK)
            return rc;
        w->size += n;
    }
    return SQLITE_OK;
}

static int w_close(sqlite3_file *f)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = gather_flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

static int w_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = gather_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, n, off);
}

static int w_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    wal_file_t *w = (wal_file_t *)f;
    /* bytes buffered past the size are written after these zeros */
    if (off + n > w->size) {
        int rc = wal_extend(w, off + n);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (w->len > 0 && off == w->off + w->len && w->len + n <= GATHER_MAX) {
        memcpy(w->buf + w->len, p, (size_t)n);
        w->len += n;
        return SQLITE_OK;
    }
    int rc = gather_flush(w);
    if (rc != SQLITE_OK)
        return rc;
    if (n > GATHER_MAX / 2)
        return w->real->pMethods->xWrite(w->real, p, n, off);
    if (!w->buf && !(w->buf = malloc(GATHER_MAX)))
        return w->real->pMethods->xWrite(w->real, p, n, off);
    memcpy(w->buf, p, (size_t)n);
    w->len = n;
    w->off = off;
    return SQLITE_OK;
}

static int w_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = gather_flush(w);
    if (rc == SQLITE_OK && (rc = w->real->pMethods->xTruncate(w->real, size)) == SQLITE_OK)
        w->size = size;
    return rc;
}

static int w_sync(sqlite3_file *f, int flags)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = gather_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int w_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = gather_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int w_lock(sqlite3_file *f, int level)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xLock(w->real, level);
}

static int w_unlock(sqlite3_file *f, int level)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xUnlock(w->real, level);
}

static int w_check_reserved(sqlite3_file *f, int *out)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int w_file_control(sqlite3_file *f, int op, void *arg)
{
    wal_file_t *w = (wal_file_t *)f;
    int rc = gather_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int w_sector_size(sqlite3_file *f)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xSectorSize(w->real);
}

static int w_device_characteristics(sqlite3_file *f)
{
    wal_file_t *w = (wal_file_t *)f;
    return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* Version 1: SQLite uses no shared memory and no memory mapping on a WAL
 * file. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = w_close,
    .xRead = w_read,
    .xWrite = w_write,
    .xTruncate = w_truncate,
    .xSync = w_sync,
    .xFileSize = w_file_size,
    .xLock = w_lock,
    .xUnlock = w_unlock,
    .xCheckReservedLock = w_check_reserved,
    .xFileControl = w_file_control,
    .xSectorSize = w_sector_size,
    .xDeviceCharacteristics = w_device_characteristics,
};

/* A WAL file is the default VFS's, wrapped; any other file is the default
 * VFS's own, in place (its methods, no wrapper). */
static int gather_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL))
        return real_vfs->xOpen(real_vfs, name, f, flags, out);
    wal_file_t *w = (wal_file_t *)f;
    memset(w, 0, sizeof(*w));
    w->real = (sqlite3_file *)(w + 1);
    int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out);
    /* a file the default VFS did not open has no methods: SQLite closes
     * none (a wrapper with methods would close the real one) */
    w->base.pMethods = rc == SQLITE_OK && w->real->pMethods ? &wal_methods : NULL;
    if (w->base.pMethods && w->real->pMethods->xFileSize(w->real, &w->size) != SQLITE_OK)
        w->size = 0; /* grown again from the start: zeros, then SQLite's bytes */
    return rc;
}

static const char *registered;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void register_once(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs)
        return;
    /* The default's functions see this struct as theirs: the same fields
     * (the unix VFS reads pAppData and mxPathname), a larger file, this
     * xOpen. */
    gather_vfs = *real_vfs;
    gather_vfs.pNext = NULL;
    gather_vfs.zName = "pai-wal-gather";
    gather_vfs.szOsFile = (int)sizeof(wal_file_t) + real_vfs->szOsFile;
    gather_vfs.xOpen = gather_open;
    if (sqlite3_vfs_register(&gather_vfs, 0) == SQLITE_OK)
        registered = gather_vfs.zName;
}

const char *sqlite_gather_vfs(void)
{
    pthread_once(&once, register_once);
    return registered;
}
