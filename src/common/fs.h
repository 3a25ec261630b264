/*
 * fs.h - file-system helpers written once: create a directory path, write a
 * file atomically, remove a tree without following symlinks.  Reading a whole file is buf_read_file
 * (common/buf.h), bounded by the buffer's cap.
 */
#ifndef PAI_COMMON_FS_H
#define PAI_COMMON_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* Create the directory path and every missing parent with mode (like
 * `mkdir -p`).  An existing directory is fine.  Tries the whole path first:
 * usually only the last component is missing.  PAI_E_INVALID when the path
 * is longer than PATH_MAX, PAI_E_IO (errno set) when a mkdir fails. */
PAI_MUST_CHECK pai_err_t fs_mkdir_p(const char *path, mode_t mode);

/* Create the directories above the file path (not the file's own name). */
PAI_MUST_CHECK pai_err_t fs_mkdir_parents(const char *file, mode_t mode);

/* Write all len bytes to fd, retrying short writes and EINTR; false (errno
 * set) when a write fails. */
bool fs_write_all(int fd, const void *data, size_t len);

/* Replace path with len bytes of data, atomically: written to a hidden
 * temporary beside it (".NAME.tmp"), chmod'ed to mode, then renamed over
 * path.  Readers see the old file or the new one, never a part.  No fsync:
 * the callers' files must survive a process crash, not a machine crash.
 * PAI_E_IO (errno set) on failure; the temporary is removed. */
PAI_MUST_CHECK pai_err_t fs_write_atomic(const char *path, const void *data, size_t len,
                                         mode_t mode);

/* Remove at's entry name and everything under it (like `rm -rf`), never
 * following a symlink: the tree may hold a task's working dir, which a
 * process the task left behind could still change while root removes it.
 * Best effort: what cannot be removed stays.  depth: of name below the
 * caller's root (the walk stops 64 levels down). */
void fs_rm_at(int at, const char *name, int depth);

/* fs_rm_at, removing at most max entries (each name it unlinks or opens
 * counts): for a tree a user may have filled, which the caller must not
 * spend long on.  True when name is gone. */
bool fs_rm_at_most(int at, const char *name, unsigned max);

/* fs_rm_at(AT_FDCWD, path, 0). */
void fs_rm_rf(const char *path);

#endif
