/*
 * fs.h - file-system helpers written once: create a directory path, write a
 * file atomically.  Reading a whole file is buf_read_file (common/buf.h),
 * bounded by the buffer's cap.
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

#endif
