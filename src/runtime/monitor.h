/*
 * monitor.h - the per-attempt monitor process shared by the process,
 * podman and docker runtimes (see runtime.h for the design).
 *
 * Signals to the monitor: SIGTERM asks the task to stop gracefully,
 * SIGUSR1 kills it.  The monitor forwards them to the task's process group
 * (and, for containers, to the engine: `<engine> kill -s TERM|KILL name`).
 */
#ifndef PAI_RUNTIME_MONITOR_H
#define PAI_RUNTIME_MONITOR_H

#include "runtime/runtime.h"

/* The command reaches a process task on this fd: a memfd (never a file on
 * disk, never an argument) that the monitor's child puts there as root,
 * before dropping to the task's identity, and bash runs /proc/self/fd/3.
 * The per-agent monitor's is sealed and shared by the tasks of one
 * identity that run the same text (cmdfd.c); else the child makes one.
 * Containers get it as the file RT_COMMAND_FILE in the state dir instead,
 * bound into the container. */
#define RT_COMMAND_FILE "command"
#define RT_COMMAND_FD   3

/* Runs in the monitor before the task: e.g. the image prerequisite.
 * Returns 0 or an exit code for failed_to_start; may write a reason to
 * err_fd (the attempt's stderr log). */
typedef int (*monitor_prepare_fn)(const runtime_ops_t *ops, const rt_spec_t *spec, int err_fd);

/* Fork the monitor for spec, which will exec argv (NULL-terminated).
 * Fills *t.  argv is only read before monitor_start returns. */
PAI_MUST_CHECK pai_err_t monitor_start(const runtime_ops_t *ops, const rt_spec_t *spec,
                                       char *const *argv, monitor_prepare_fn prepare, rt_task_t *t);
bool monitor_poll(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res);
void monitor_kill(const runtime_ops_t *ops, rt_task_t *t, bool force, int grace_s);
bool monitor_adopt(const runtime_ops_t *ops, rt_task_t *t);
void monitor_release(rt_task_t *t);

/* The per-agent monitor (mond.c): one process that runs every process
 * attempt of this agent process, forked at the agent's start (mond_warm)
 * or on the first.  Off when the
 * environment says PAI_MONITOR=per-task (a fork of the agent per attempt,
 * as containers always have). */
bool mond_enabled(void);
/* Like monitor_start (no prepare step); an error when no monitor can be
 * reached, and the caller may start a per-attempt monitor instead. */
PAI_MUST_CHECK pai_err_t mond_start(const runtime_ops_t *ops, const rt_spec_t *spec,
                                    char *const *argv, rt_task_t *t);
/* Fork the monitors now (not at the first attempt) and have each make
 * slots idle cgroups under cgroup_dir, the parent of the attempts' cgroups
 * ("pai/NODE"; cg_pool_warm), so that a node's first attempts cost what
 * later ones do: the fork of an agent that has grown since, the cgroups'
 * creation (docs/benchmarks.md, "A warm node").  At the agent's start. */
void mond_warm(const char *cgroup_dir, unsigned slots);
/* Close the socket to the monitor and wait until it has finished its
 * attempts and exited (benchmarks and tests; an agent just exits). */
void mond_shutdown(void);

/* Run argv (no shell) and wait; stdin from `in` when not NULL, stdout and
 * stderr to out_fd (or /dev/null when -1).  Returns the exit status (0-255),
 * or -1 when it could not run. */
int monitor_run_wait(char *const *argv, const char *in, int out_fd);

/* Kernel start time of pid (field 22 of /proc/pid/stat); 0 when gone. */
uint64_t proc_start_time(pid_t pid);

#endif
