/*
 * runtime.h - how a task attempt is run on a node, behind one ops struct.
 *
 * Backends: "process" (bash in its own process group, working dir and
 * cgroup), "podman" and "docker" (the engine's CLI), and "hollow" (nothing
 * is executed: the attempt completes after the `sleep N` its command asks
 * for, with the `exit N` code it asks for).
 *
 * Design (the same for process, podman and docker):
 *   1. start() hands the attempt to a *monitor* (like conmon): for podman
 *      and docker a fork of the agent per attempt (monitor.c); for process
 *      attempts one of a few long-lived monitors per agent process (mond.c,
 *      PAI_MONITOR=per-task forks one per attempt instead).  The monitor
 *      runs outside the agent's session, creates the attempt's cgroup with
 *      its limits, starts the task (bash, or `podman run`), pumps its
 *      stdout/stderr into rotated log files (stdout, stderr, all), waits
 *      for it, detects an OOM kill, and appends the result to the
 *      attempt's record (below).  A per-agent monitor is a child
 *      subreaper: what a task leaves behind becomes its child, from which
 *      it tells that nothing of an ended task is left (mond.c).
 *   2. The agent learns of the end through a pipe a per-attempt monitor
 *      holds open until then (rt_task_t.notify_fd hangs up) and reads the
 *      record; a per-agent monitor sends the exit line on its socket
 *      instead, with the other ends of the same moment (rt_watch_*: one
 *      fd per monitor, not one per attempt), and its socket's end is the
 *      end of its attempts (the record read then: ended or lost).
 *   3. Because the monitor does not depend on the agent, an agent restart
 *      leaves tasks running; adopt() finds them again from
 *      <state_dir>/monitor (pid and kernel start time, so a reused pid is
 *      never mistaken for the monitor; for a per-agent monitor also the
 *      attempt's key, which kill() sends it).
 * The command never goes on a command line that `ps` shows: a process task
 * reads it from a memfd on fd 3 (monitor.h), a container from the file
 * <state_dir>/command (0400, owned by the task's identity) bound into it.
 * The record, <state_dir>/monitor (0600, one inode per attempt, the
 * agent's and the monitor's): lines, each appended whole by one write,
 * readers take whole lines only.  "id ATTEMPT" by the agent before the start
 * (rt_record_create: the attempt a directory holds, for re-adoption), "mon
 * PID STARTTIME [KEY]" by the monitor before the task starts, "task PID
 * [CGROUP]" once it runs (a per-agent monitor names the pooled cgroup the
 * task runs in: rt_task_info), "exit KIND CODE SIGNAL OOM STARTED FINISHED" at its end,
 * and "acked" by the agent once the server has stored the end.
 * (What older agents wrote is still read: a first line "pid starttime
 * [key]" without the tag, and the files id, acked, task and exit;
 * <state_dir>/exit, the same fields, is also the agent's mark of a lost
 * attempt.)
 * Invariant: the exit line is there once the attempt is over; it is written
 * before the monitor exits, closes the notify pipe or sends the line on
 * its socket, so "monitor gone (or pipe or socket closed) and no exit
 * line" means the attempt was lost.
 */
#ifndef PAI_RUNTIME_RUNTIME_H
#define PAI_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "protocol/exitcodes.h" /* the codes the node side reports */

typedef struct {
    char *source; /* host path */
    char *target; /* path inside the container */
    bool readonly;
} rt_mount_t;

/* A device node given to a container: host path -> path inside it. */
typedef struct {
    const char *host, *target;
} rt_device_t;

/* What to run: everything the server's desired task says, resolved.  A
 * field a process task uses must also be carried to the per-agent monitor
 * (mond.c: encode and mt_decode). */
typedef struct {
    const char *attempt_id;
    const char *name;      /* unique short name (container name, cgroup leaf) */
    const char *command;   /* run with bash -c */
    char *const *env;      /* NULL-terminated "K=V" list, complete */
    const char *state_dir; /* the monitor's record (created by the caller) */
    /* > 0: that record, open for appends (rt_record_open): a per-agent
     * monitor gets it with the start and appends its lines there, with no
     * open of its own; 0: none (the monitor opens the record) */
    int record_fd;
    const char *cwd; /* working directory (created by the caller) */
    /* the log files are <log_prefix><kind>, kind stdout, stderr, all (.1:
     * the rotated chunk), made by the monitor on the first line (and the
     * dir they are in, when missing): "<logs>/<id>." puts them flat in the
     * agent's logs dir, no dir per attempt; "<dir>/" in a dir of their own */
    const char *log_prefix;
    const char *cgroup; /* relative cgroup path, e.g. "pai/node-1/<name>"; NULL: none */
    int64_t memory_mb;  /* 0: no limit */
    double cpu;         /* 0: no limit */
    int64_t shm_mb;
    const int *gpus;
    size_t n_gpus;
    const char *image; /* containers only */
    const char *image_user, *image_password, *image_registry;
    const rt_mount_t *mounts;
    size_t n_mounts;
    int64_t log_max_bytes;   /* rotate each log file past this size */
    const char *gpu_dev_dir; /* where nvidiaN/nvidiactl live; NULL: /dev */
    /* Accelerators other than NVIDIA's (own_devices): the device nodes the
     * task is given (AMD's render nodes and /dev/kfd, a device class's nodes;
     * containers: --device), and the node's other devices of the class,
     * fenced off a process task like the other /dev/nvidiaN (a v1 devices
     * cgroup).  own_devices false: NVIDIA's rule from gpus and gpu_dev_dir. */
    bool own_devices;
    const rt_device_t *devices;
    size_t n_devices;
    const char *const *fence;
    size_t n_fence;
    /* Supplementary groups an isolated process task keeps: the groups
     * owning its device nodes when others may not open them (AMD's
     * render/video), as ROCm's container runtime adds them. */
    const gid_t *groups;
    size_t n_groups;
    /* The task's identity on the host (docs/security.md).  isolate false:
     * the task keeps the monitor's identity (--tasks-as-root, or an agent
     * that is not root).  isolate true: process tasks drop to uid/gid
     * before exec (cwd chowned to them, 0700); podman maps the container's
     * root to uid/gid (--uidmap 0:uid:1), docker runs it as --user uid:gid. */
    bool isolate;
    uid_t uid;
    gid_t gid;
} rt_spec_t;

typedef enum { RT_RUNNING = 0, RT_EXITED, RT_FAILED_TO_START } rt_state_t;

typedef struct {
    rt_state_t state;
    int exit_code; /* 128+signal when signalled; EXIT_OOM_KILLED when OOM-killed */
    int signal;
    bool oom;
    int64_t started_ms, finished_ms;
    /* The task wrote nothing to stderr (its monitor's exit line says so:
     * its stderr log was never made), so its diagnostics are empty without
     * a look at the log; false: it did, or the line does not say (an older
     * monitor's, a lost attempt's). */
    bool quiet;
} rt_result_t;

/* The runtime's handle on one attempt.  Plain data: the caller owns it. */
typedef struct {
    pid_t monitor_pid;
    uint64_t monitor_start; /* kernel start time of the monitor (/proc/pid/stat) */
    uint32_t mon_key;       /* the attempt in a per-agent monitor (mond.c); 0: its own monitor */
    pid_t task_pgid;        /* the task's process group (0 until known) */
    int notify_fd;          /* readable/hangs up when the monitor ends; -1 if none */
    /* A per-agent monitor's attempt started by this process: that
     * monitor's generation (mond_agent.c), whose socket tells its end
     * (rt_notify_fd); 0: none (notify_fd, or adopted: polled). */
    uint32_t mon_gen;
    char *state_dir; /* owned copy */
    char *name;      /* owned copy (container name) */
    int64_t started_ms;
    /* hollow */
    int64_t hollow_end_ms;
    int hollow_exit;
    bool hollow_killed;
} rt_task_t;

typedef struct runtime_ops runtime_ops_t;
struct runtime_ops {
    const char *name;
    /* Start an attempt; on success *t describes it.  Errors are start
     * failures the caller reports as failed_to_start. */
    PAI_MUST_CHECK pai_err_t (*start)(const runtime_ops_t *ops, const rt_spec_t *spec,
                                      rt_task_t *t);
    /* Non-blocking: true when the attempt is over, with *res filled. */
    bool (*poll)(const runtime_ops_t *ops, rt_task_t *t, rt_result_t *res);
    /* Ask the attempt to stop: graceful (SIGTERM / engine stop) or forced. */
    void (*kill)(const runtime_ops_t *ops, rt_task_t *t, bool force, int grace_s);
    /* Re-attach to an attempt started by an earlier agent, from t->state_dir
     * (and t->name).  False when nothing of it is left (no monitor, no exit). */
    bool (*adopt)(const runtime_ops_t *ops, rt_task_t *t);
    /* Free what start/adopt allocated in *t (closes notify_fd). */
    void (*release)(rt_task_t *t);
    /* Ready, at the agent's start, what a node's first attempts would
     * otherwise make themselves (process: its monitor and slots idle
     * cgroups under cgroup_dir, mond_warm); NULL when there is nothing. */
    void (*warm)(const char *cgroup_dir, unsigned slots);
    /* Engine binary for container runtimes ("podman", "docker"); NULL otherwise. */
    const char *engine;
};

/* Where the caller's loop learns of t's end without polling it: an fd
 * that turns readable (POLLIN) then; -1 when there is none, and poll()
 * must be called every so often (an adopted attempt; one whose per-agent
 * monitor was dropped).  A per-attempt monitor's attempt: its notify_fd;
 * a per-agent monitor's: that monitor's socket, shared by its attempts
 * (rt_watch_drain reads it). */
int rt_notify_fd(const rt_task_t *t);
/* The per-agent monitors' sockets, at most RT_MONITORS, into fds: each
 * watched once however many attempts it runs.  Their count. */
size_t rt_watch_fds(int *fds, size_t cap);
/* fd fired: the exit lines that came on it are read (one system call for
 * all of them) and kept for their attempts' poll; its end (the monitor
 * died) is the end of its attempts (their poll reads their record).  False
 * when fd is none of rt_watch_fds'. */
bool rt_watch_drain(int fd);
/* After rt_watch_drain: whether poll(t) has its end to tell (its line
 * came, or its monitor is gone or dropped).  No system call. */
bool rt_task_news(const rt_task_t *t);

/* The pid of an attempt's task (its process group), from the monitor's
 * record in state_dir; 0 while it has none. */
pid_t rt_task_pid(const char *state_dir);
/* The same, and the cgroup it runs in (relative to each controller's
 * root) into cgroup when the record names one: the per-agent monitor's
 * "task PID CGROUP" line (a pooled cgroup keeps its own name, cgroup.h);
 * cgroup is "" when it names none (a per-attempt monitor's cgroup is the
 * spec's). */
pid_t rt_task_info(const char *state_dir, char *cgroup, size_t n);

/* Start an attempt's record in state_dir with the line "id ATTEMPT" (the
 * agent, before the start).  -1 when it cannot be written, or when the id
 * cannot be one line (the caller keeps it in a file of its own then). */
int rt_record_create(const char *state_dir, const char *attempt_id);
/* The same, the record left open for appends: its fd (spec->record_fd,
 * the caller closes it), -1 as above. */
int rt_record_open(const char *state_dir, const char *attempt_id);
/* The same in a record that is there (a pooled dir's, holding the last
 * attempt's lines): the "id" line written over them from the start and the
 * file cut after it, then left open for appends (O_APPEND); -1 when there
 * is no such record (none is made), or as above (errno EINVAL). */
int rt_record_rewrite(const char *state_dir, const char *attempt_id);
/* Append a whole line (with its newline) to the record; 0 or -1. */
int rt_record_append(const char *state_dir, const char *line);
/* The rest of the record's first whole line that starts with tag (e.g.
 * "id "), its newline cut, into out; false when there is none. */
bool rt_record_get(const char *state_dir, const char *tag, char *out, size_t n);

/* The first words of the ssh plugin's preamble (engine/sshplug.c), which
 * starts the command of a task that has the plugin.  The process runtime
 * looks for them at a task's end: such a task may leave the plugin's
 * /tmp/.pai-ssh-<its shell's pid> when it is killed outright (sshtmp.c). */
#define RT_SSH_PREAMBLE "# pai: ssh runtime plugin"

/* The long-lived monitors of one agent process for its process attempts
 * (mond.c), used in turn when more than one.  One: every start and end of
 * the node goes through one event loop, so ends reach the agent together
 * and go in fewer reports; a second one cost ~5% more CPU a job in
 * bench-e2e's burst (more wake-ups, syncs and commits a job) for a shorter
 * dispatch p99 there (docs/benchmarks.md, "One monitor per agent"). */
#define RT_MONITORS 1

/* Look a runtime up by name ("process", "podman", "docker", "hollow"). */
const runtime_ops_t *runtime_find(const char *name);

/* The shell that runs a process task's command: /bin/bash when it can be
 * run, else /bin/sh (looked at once per process).  The agent gives the
 * task SHELL= this path: a task's uid has no passwd entry, and bash looks
 * its user up (NSS: every module in nsswitch.conf, e.g. systemd's userdb
 * walk) only to set SHELL when the environment lacks it. */
const char *rt_process_shell(void);

/* Hollow: what a command asks for.  Sum of `sleep N` durations (ms) and the
 * first `exit N` code (0 when none). */
void rt_hollow_parse(const char *command, int64_t *duration_ms, int *exit_code);

/* Escape an attempt id into one path component ('/' -> '+'; names never
 * contain '+').  Writes at most n bytes; returns false when it does not fit. */
bool rt_escape_id(const char *attempt_id, char *out, size_t n);

/* Read the last `max` bytes (at most) of a rotated log
 * <prefix><kind>{.1,} (rt_spec_t.log_prefix) into a malloc'ed buffer; *len
 * set.  NULL when there is no such log. */
char *rt_log_tail(const char *prefix, const char *kind, size_t max, size_t *len);

#endif
