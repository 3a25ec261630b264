/*
 * monitor_int.h - the parts of the per-attempt monitor (monitor.c) that
 * the per-agent monitor (mond.c) runs for each of its attempts as well:
 * the log files, the task's start (cgroup, identity, command memfd), the
 * GPU fence and the exit record.  Internal to src/runtime/.
 */
#ifndef PAI_RUNTIME_MONITOR_INT_H
#define PAI_RUNTIME_MONITOR_INT_H

#include <signal.h>

#include "runtime/cgroup.h"
#include "runtime/monitor.h"

/* Kill requests to the per-agent monitor (mond.c), queued with the
 * attempt's key as the value: graceful, forced. */
#define MOND_SIG_TERM (SIGRTMIN + 1)
#define MOND_SIG_KILL (SIGRTMIN + 2)

enum { LOG_OUT, LOG_ERR, LOG_ALL, NLOGS };

typedef struct {
    int fd;
    int64_t size;
    char *path;
    bool opened; /* open tried (on the first line) */
} logf_t;

/* One attempt as its monitor sees it. */
typedef struct {
    const runtime_ops_t *ops;
    const rt_spec_t *spec;
    logf_t logs[NLOGS];
    cg_t *cg;
    pid_t child;
    pid_t term_helper;     /* `<engine> kill -s TERM` in flight */
    int64_t term_again_ms; /* a container's TERM is sent again then (mono); 0: not */
    int term_gap_ms;       /* and the gap before the next */
    int64_t started_ms;
    /* The attempt's record kept open for its lines (the per-agent monitor:
     * one open per attempt, not one per line); 0: none, each line opens
     * it (fd 0 is /dev/null in a monitor, never a record). */
    int record_fd;
    /* The per-agent monitor's copy of the exit line the record got (at
     * least MON_EXIT_LINE_MAX bytes), which it sends the agent; NULL: none. */
    char *exit_line;
    /* The command through a sealed memfd the monitor keeps for the tasks
     * that run the same text (mon_cmdfd_open): the per-agent monitor,
     * whose tasks share it; a per-attempt monitor runs one task. */
    bool share_command;
    /* mon_spawn_task's descriptor of it for the task's fd 3, opened for
     * that task alone; 0: none, the task's process makes its own memfd. */
    int command_fd;
} mon_t;

/* The three log files of m (stdout, stderr, all), none opened yet. */
void mon_logs_init(mon_t *m);
/* Close and free them (the per-agent monitor outlives its attempts). */
void mon_logs_close(mon_t *m);
/* A line of the runtime's own into stderr and all. */
void mon_say(mon_t *m, const char *msg);
/* Read one chunk of the task's fd into log `which` and all; false at EOF. */
bool mon_pump(mon_t *m, int fd, int which);
/* Write dir/name atomically (tmp + rename, 0600); 0 or -1. */
int mon_write_record(const char *dir, const char *name, const char *text);
/* What is read of an attempt's record: its lines are short, the agent's
 * id line (at most 400 bytes) the longest; a pooled slot's record may
 * also start with a pad line over the last attempt's lines, up to 1 KiB
 * in all (agent/dirpool.h, DIRPOOL_PAD_MAX). */
#define RECORD_MAX 4096
/* The attempt's record (<state>/monitor) into buf; its length, 0 if none
 * (record.c). */
size_t rt_record_read(const char *dir, char *buf, size_t n);
/* The whole line of the record rec that starts with tag (e.g. "exit "),
 * the tag skipped; NULL while there is none (a line being appended is not
 * whole until its newline). */
const char *rt_record_line(const char *rec, const char *tag);
/* An exit line's length at most, its NUL included. */
#define MON_EXIT_LINE_MAX 256
/* The attempt's result, appended to its record (runtime.h's invariant). */
void mon_write_exit(mon_t *m, const char *kind, int code, int sig, bool oom);
/* The fields of an exit line after its "exit " tag ("KIND CODE SIGNAL OOM
 * START END [ERR]") into res; false when they are not whole. */
bool rt_exit_parse(const char *fields, rt_result_t *res);
/* The exit code reported for wait status `status` (OOM and engine rules). */
int mon_exit_code(const mon_t *m, int status, bool oom, int *sig);
/* Leave the agent's session: signal dispositions reset, the signals in
 * `blocked` kept blocked and every other one unblocked, fd 3 = keep, 0-2
 * /dev/null, every other fd closed. */
void mon_detach(int keep, const sigset_t *blocked);
/* Fork a monitor with the signals in `blocked` blocked from the fork on:
 * the agent's stop (TERM, or a queued kill to a per-agent monitor) may be
 * sent as soon as fork returns, before the child has run an instruction,
 * and the default action of those signals would end the monitor with the
 * attempt's result (reported lost).  Blocked, it stays pending until the
 * monitor takes it.  The parent's mask is restored; the child returns
 * with `blocked` added to it.  Returns what fork() does. */
pid_t mon_fork(const sigset_t *blocked);
/* Deny the task the node's GPUs it was not given (v1 devices cgroup). */
void mon_fence_gpus(mon_t *m);

/* Give an isolated task its working dir: its uid and gid, mode 0700 (a
 * chown or chmod only where the dir does not have them already: each
 * writes the inode).  False when it cannot. */
bool mon_give_cwd(const rt_spec_t *s);
/* A descriptor of the command text, read-only, with its own offset, for
 * a task of uid:gid: of a sealed memfd the monitor holds for the tasks of
 * that identity that run the same text (cmdfd.c), made on the first; the
 * caller closes it.  -1 when there is none (a text over 64 KiB, no
 * sealing, no /proc): the task's process makes its own memfd. */
int mon_cmdfd_open(const char *text, uid_t uid, gid_t gid);
/* Close the monitor's held memfds and wipe their texts. */
void mon_cmdfd_clear(void);
/* Start the task (argv) into m->cg with stdout/stderr on out_w/err_w, in
 * its own process group, dropped to its identity; its pid or -1.  Its
 * command on fd 3: the shared memfd when m->share_command and the cache
 * has one, else a memfd its process makes. */
pid_t mon_spawn_task(mon_t *m, char *const *argv, int out_w, int err_w);

/* Become the task's identity for good (s->uid, s->gid, s->groups; no new
 * privileges), checked that root cannot be regained; false when any step
 * fails: the caller must then not go on (monitor.c). */
bool mon_drop_privileges(const rt_spec_t *s);

/* Whether a task's command starts with the ssh plugin's preamble
 * (RT_SSH_PREAMBLE): a compare of its first bytes, no system call. */
bool rt_ssh_command(const char *command);
/* After a process task's end (its processes killed): when its command has
 * the ssh preamble, the plugin's fallback dir <base>/.pai-ssh-<shell> (base
 * NULL: /tmp), left by a task killed outright, is removed when it is a dir
 * (not a link) of the task's uid, by a child with the task's identity
 * (sshtmp.c).  True when one was removed. */
bool rt_ssh_tmp_clean(const rt_spec_t *s, pid_t shell, const char *base);

#endif
