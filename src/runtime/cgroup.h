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
/* Move the calling process, which must be single-threaded (a task's
 * process before its exec), into the cgroup: on v1 "0" into each
 * hierarchy's `tasks`, which moves the caller without the kernel's global
 * lock that a pid written into cgroup.procs takes (it waits for every
 * fork and exit in progress on the machine); as cg_attach otherwise. */
PAI_MUST_CHECK pai_err_t cg_join(const cg_t *cg);
/* True when cg_join opens nothing (a pooled cgroup's held `tasks` files,
 * no devices cgroup): it may run on a descriptor table it shares. */
bool cg_join_held(const cg_t *cg);
/* True once the OOM killer has acted inside the cgroup (subtree). */
bool cg_oom(cg_t *cg);
/* SIGKILL every process left in the cgroup (subtree). */
void cg_kill_all(const cg_t *cg);
/* Kill what is left, remove the directories, free. NULL is fine. */
void cg_destroy(cg_t *cg);

/* A long-lived monitor's pool of emptied cgroups (v1), so that a short
 * task's cgroup is not made and removed in every hierarchy (the kernel's
 * cgroup creation, and its workers' removal, are dear):
 *   - a pooled cgroup is named "pool.<monitor pid>.N" under the parent of
 *     the rel it was first made for, and keeps that name for its life, in
 *     use or idle (no rename per task: ~7 us each, two dirs, twice);
 *     cg_rel says which one an attempt got (the per-agent monitor records
 *     it in the attempt's "task" line, where the agent's metrics read it);
 *     the attempt's own rel names only its devices cgroup (the GPU fence)
 *     and cg_parent_path;
 *   - cg_pool_put hands back an attempt's cgroup once its task has ended:
 *     when no process (see CG_PUT_PROCS_GONE below) and no child cgroup is
 *     left in it and little memory is still charged to it, it is kept for
 *     the next task under the same parent; else it is destroyed as by
 *     cg_destroy (what is left in it killed);
 *   - cg_pool_get takes an idle one under rel's parent and readies it:
 *     limits rewritten where they differ (memsw kept above the memory
 *     limit), the OOM count taken from here on (oom_kill is never reset:
 *     cg_oom compares with the count at the hand-back; the eventfd is
 *     drained), memory.max_usage_in_bytes and a co-mounted cpuacct.usage
 *     reset; else it makes one.
 * The files every task of a pooled cgroup uses (`tasks`, cg_join's,
 * memory.oom_control, memory.usage_in_bytes, memory.max_usage_in_bytes)
 * are held open for its life: a read or write ~0.6 us instead of ~6 with
 * the open and close.  They are held at descriptor CG_HELD_FD_MIN and up
 * (when RLIMIT_NOFILE leaves room): a task's process, cloned with the
 * monitor's descriptor table shared (mon_spawn_task), makes its own with
 * close_range(CLOSE_RANGE_UNSHARE), and the kernel copies into it only the
 * 64-slot words below the range it closes; held below, each would be
 * copied and closed again for every task (~0.3 us each, cold).
 * The v1 cpu controller is joined only for a CPU limit, or when cpuacct is
 * mounted with it (the task's CPU time): a task without one is moved into
 * one cgroup (memory), not two.  The cgroups of a monitor that is gone
 * (killed), idle or not, are removed by the next pool to use their parent,
 * with what is left in them (its attempts are lost).  On v2 the pool makes
 * and destroys as cg_create and cg_destroy.  A pool is not thread-safe (one
 * monitor's event loop). */
typedef struct cg_pool cg_pool_t;
#define CG_HELD_FD_MIN 64
/* fd (close-on-exec) held as a pooled cgroup's files are: moved to
 * CG_HELD_FD_MIN and up when RLIMIT_NOFILE leaves room; closed, -1, when it
 * would take a quarter of the limit (or fd was -1). */
int cg_hold_fd(int fd);
cg_pool_t *cg_pool_new(void);
PAI_MUST_CHECK pai_err_t cg_pool_get(cg_pool_t *p, const char *rel, int64_t memory_mb, double cpu,
                                     cg_t **out);
/* What the caller of cg_pool_put has proved about the ended task:
 * CG_PUT_PROCS_GONE: no process of it is left (alive or a zombie), and
 * none was when it last called cg_oom (the per-agent monitor, a child
 * subreaper, from its children: mond.c); the pool then reads neither
 * cgroup.procs (a pid list the kernel builds, and frees from a worker a
 * second later) nor oom_kill again.
 * CG_PUT_NO_SUBDIRS: it could make no child cgroup (it ran without root:
 * an unprivileged uid cannot mkdir in the root-owned hierarchy); the
 * cgroup's dirs are then not stat'ed for one. */
#define CG_PUT_PROCS_GONE 1u
#define CG_PUT_NO_SUBDIRS 2u
void cg_pool_put(cg_pool_t *p, cg_t *cg, unsigned flags);
/* Make idle cgroups under rel_dir ("pai/n1", the parent of the attempts'
 * rels) until the pool holds n there (POOL_MAX in all), ahead of the
 * first tasks, which would otherwise each make one (memory and cpu dirs,
 * the held files, the OOM eventfd: the dearest part of a node's first
 * tasks): no limits yet (cg_pool_get writes a task's own), the cpu dir
 * made but not joined until a task has a CPU limit.  Also removes the
 * cgroups of monitors that are gone, as the first take would.  v1 only;
 * the count made. */
size_t cg_pool_warm(cg_pool_t *p, const char *rel_dir, size_t n);
/* The cgroup's path under the root of each controller ("pai/n1/pool.7.3"
 * for a pooled one; rel for cg_create's). */
const char *cg_rel(const cg_t *cg);
/* Remove the idle cgroups and free the pool. NULL is fine. */
void cg_pool_free(cg_pool_t *p);
/* The cgroup path podman/docker take as --cgroup-parent ("/pai/..."). */
const char *cg_parent_path(const cg_t *cg);

/* What the kernel counts for one attempt's cgroup (the agent's metrics,
 * docs/monitoring.md); -1 where a figure is not available. */
typedef struct {
    int64_t cpu_ns;          /* CPU time used, all cores, since creation */
    int64_t mem_bytes;       /* memory in use (v1: usage_in_bytes; v2: memory.current) */
    int64_t mem_limit_bytes; /* the limit; -1 when unlimited */
    int64_t io_read_bytes, io_write_bytes; /* block I/O (io.stat / blkio) */
} cg_stats_t;

/* The stats of the pai cgroup process pid is in, found through
 * /proc/<pid>/cgroup (so also for attempts an earlier agent started).
 * PAI_E_NOT_FOUND when pid is gone or is in no cgroup under "/pai/". */
PAI_MUST_CHECK pai_err_t cg_stats_of_pid(pid_t pid, cg_stats_t *out);
/* The stats of cgroup rel (as given to cg_create, e.g. "pai/n1/x"), its
 * subtree included (a container under --cgroup-parent counts).
 * PAI_E_NOT_FOUND when it does not exist (yet, or any more). */
PAI_MUST_CHECK pai_err_t cg_stats_of(const char *rel, cg_stats_t *out);
/* The cgroup (relative path) under parent whose name starts with prefix,
 * into out; false when none.  One readdir. */
bool cg_find_child(const char *parent, const char *prefix, char *out, size_t n);
/* The same from a cgroup's files: v2 reads dir (cpu.stat, memory.current,
 * memory.max, io.stat); v1 reads the named controllers' dirs (NULL: not
 * there).  Exposed for the unit tests. */
void cg_stats_v2(const char *dir, cg_stats_t *out);
void cg_stats_v1(const char *cpuacct, const char *memory, const char *blkio, cg_stats_t *out);

#endif
