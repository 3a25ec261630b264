/*
 * sqlite_vfs.h - the SQLite writer's VFS (sqlite_vfs.c): the default VFS
 * with a WAL file's contiguous writes gathered into one pwrite, written
 * before the sync, a read or anything else that needs them in the file.
 */
#ifndef PAI_STORE_SQLITE_VFS_H
#define PAI_STORE_SQLITE_VFS_H

/* The VFS's name for sqlite3_open_v2 (registered once, not the default),
 * or NULL (the default VFS) when it could not be registered. */
const char *sqlite_gather_vfs(void);

#endif
