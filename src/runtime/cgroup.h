/*
 * cgroup.h - one attempt's cgroup: memory and CPU limits, OOM detection.
 *
 * Works on cgroup v2 (unified) and on v1 (the "memory" and "cpu"
 * controllers, as on hybrid hosts where the unified mount holds no
 * memory/cpu controller).  OOM detection: v1 registers an eventfd on
 * memory.oom_control (it also fires for kills in child cgroups, e.g. a
 * container under --cgroup-parent) and reads oom_kill; v2 reads oom_kill
 * from memory.events, which counts the whole subtree.
 * The root is /sys/fs/cgroup unless PAI_CGROUP_ROOT says otherwise.
 */
#ifndef PAI_RUNTIME_CGROUP_H
#define PAI_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

typedef struct cg cg_t;

/* 0: no usable cgroups (not root, nothing mounted), 1: v1, 2: v2. */
int cg_version(void);

/* Create cgroup `rel` (e.g. "pai/node-1/job+0+r+0+0") with the limits
 * (memory_mb 0 / cpu 0: unlimited).  *out owns it. */
PAI_MUST_CHECK pai_err_t cg_create(const char *rel, int64_t memory_mb, double cpu, cg_t **out);
/* v1 only: deny the processes of the cgroup the char devices devs[0..n)
 * (read, write, mknod) in a `devices` cgroup of the same path, which
 * cg_attach then joins too.  PAI_E_UNAVAILABLE on v2 (device rules there
 * are eBPF programs) or without the devices controller. */
PAI_MUST_CHECK pai_err_t cg_deny_devices(cg_t *cg, const dev_t *devs, size_t n);
/* Move process pid into the cgroup (every controller). */
PAI_MUST_CHECK pai_err_t cg_attach(const cg_t *cg, pid_t pid);
/* True once the OOM killer has acted inside the cgroup (subtree). */
bool cg_oom(cg_t *cg);
/* SIGKILL every process left in the cgroup (subtree). */
void cg_kill_all(const cg_t *cg);
/* Kill what is left, remove the directories, free. NULL is fine. */
void cg_destroy(cg_t *cg);
/* The cgroup path podman/docker take as --cgroup-parent ("/pai/..."). */
const char *cg_parent_path(const cg_t *cg);

#endif
