/*
 * cgroup_int.h - what cgroup.c shares with cgroup_stats.c.  Internal to
 * src/runtime/.
 */
#ifndef PAI_RUNTIME_CGROUP_INT_H
#define PAI_RUNTIME_CGROUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The cgroup root: /sys/fs/cgroup unless PAI_CGROUP_ROOT says otherwise. */
const char *cg_root(void);
/* A small file of a cgroup's (its first 4 KiB) into buf, NUL-terminated;
 * false when it cannot be read.  One open, read and close. */
bool cg_read_small(const char *dir, const char *file, char *buf, size_t n);
/* The value of the line "KEY N" of dir/file (read through fd when >= 0:
 * a pread from its start); -1 when absent. */
int64_t cg_read_key(int fd, const char *dir, const char *file, const char *key);

#endif
