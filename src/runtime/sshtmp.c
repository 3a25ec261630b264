/*
 * sshtmp.c - the ssh plugin's /tmp dir of a process task that ended
 * without its shell's EXIT trap (docs/ssh.md).
 *
 * The plugin's preamble (engine/sshplug.c) keeps its files (the job's
 * host key, authorized_keys, its private key) in the task's working dir;
 * only a task that cannot write that dir at all (a read-only or immutable
 * dir: the monitor gives an isolated task its dir, 0700, so nothing
 * ordinary) makes /tmp/.pai-ssh-<its shell's pid> instead, and removes it
 * with an EXIT trap.  A task killed outright (SIGKILL: a forced stop, an
 * OOM kill, its cgroup killed) runs no trap.  Its monitor knows the
 * shell's pid and the task's identity, and its command: at the task's end,
 * one look at the first bytes of the command (no system call) tells the
 * tasks with the plugin; only for those is /tmp looked at, and only a dir
 * of the task's uid there (never a symlink) is removed, by a child that
 * first takes the task's identity.  /tmp is world-writable, so the removal
 * never follows a link (fs_rm_at's walk), and a bounded number of entries
 * is removed (a task may fill the dir; the monitor waits for its child).
 *
 * The fallback cannot live in the attempt's own dir, which the agent's
 * pool empties anyway: a task reaches it only by its working dir, the one
 * it could not write.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "runtime/monitor_int.h"

/* The plugin writes about 15 files in two dirs. */
#define SSHTMP_MAX_ENTRIES 512

bool rt_ssh_command(const char *command)
{
    return command && command[0] == RT_SSH_PREAMBLE[0] &&
           strncmp(command, RT_SSH_PREAMBLE, sizeof(RT_SSH_PREAMBLE) - 1) == 0;
}

/* In the child, as the task (its identity taken for good; a task not
 * isolated runs as the monitor's): base/name removed when it is still a
 * dir of uid (looked at again: the name may have changed since the
 * parent's look), never through a link, at most SSHTMP_MAX_ENTRIES of it. */
static _Noreturn void remove_as_task(const rt_spec_t *s, uid_t uid, int bfd, const char *name)
{
    struct stat st;
    if (s->isolate && geteuid() == 0 && !mon_drop_privileges(s))
        _exit(1);
    if (fstatat(bfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != uid)
        _exit(1);
    _exit(fs_rm_at_most(bfd, name, SSHTMP_MAX_ENTRIES) ? 0 : 1);
}

bool rt_ssh_tmp_clean(const rt_spec_t *s, pid_t shell, const char *base)
{
    if (shell <= 0 || !rt_ssh_command(s->command))
        return false;
    char name[32];
    struct stat st;
    uid_t uid = s->isolate ? s->uid : geteuid();
    snprintf(name, sizeof(name), ".pai-ssh-%d", (int)shell);
    int bfd = open(base ? base : "/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* mostly gone: the trap ran (a stop with TERM), or the task wrote its
     * own dir; a link or another uid's dir is no dir of the task's */
    if (bfd < 0 || fstatat(bfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) ||
        st.st_uid != uid) {
        if (bfd >= 0)
            close(bfd);
        return false;
    }
    pid_t p = fork();
    if (p == 0)
        remove_as_task(s, uid, bfd, name);
    int status = 1;
    while (p > 0 && waitpid(p, &status, 0) < 0 && errno == EINTR)
        ;
    close(bfd);
    return p > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
