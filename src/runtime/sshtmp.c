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
 * never follows a link: every open is O_NOFOLLOW, relative to the dir
 * above, and a bounded number of entries is removed (a task may fill the
 * dir; the monitor waits for its child).
 *
 * The fallback cannot live in the attempt's own dir, which the agent's
 * pool empties anyway: a task reaches it only by its working dir, the one
 * it could not write.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/monitor_int.h"

/* The plugin writes about 15 files in two dirs. */
#define SSHTMP_MAX_ENTRIES 512
#define SSHTMP_MAX_DEPTH   8

bool rt_ssh_command(const char *command)
{
    return command && command[0] == RT_SSH_PREAMBLE[0] &&
           strncmp(command, RT_SSH_PREAMBLE, sizeof(RT_SSH_PREAMBLE) - 1) == 0;
}

/* Empty the dir open on fd (closed here): at most *budget entries, dirs
 * below depth levels deep left.  Never follows a link: unlinkat removes a
 * link itself, and a dir below is opened O_NOFOLLOW from its parent. */
static void empty_dir(int fd, int depth, int *budget)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while (*budget > 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        --*budget;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno != EISDIR || depth >= SSHTMP_MAX_DEPTH)
            continue;
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) {
            empty_dir(sub, depth + 1, budget);
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        }
    }
    closedir(d);
}

/* The task's identity, for good (the caller is a child about to exit):
 * its groups, gid and uid, no new privileges.  An identity that is the
 * caller's already (a task not isolated) is kept. */
static bool take_identity(const rt_spec_t *s)
{
    if (!s->isolate || geteuid() != 0)
        return true;
    return setgroups(s->n_groups, s->n_groups ? s->groups : NULL) == 0 &&
           setresgid(s->gid, s->gid, s->gid) == 0 && setresuid(s->uid, s->uid, s->uid) == 0 &&
           (s->uid == 0 || setuid(0) != 0) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

/* In the child, as the task: base/name removed when it is still a dir of
 * uid (looked at again through an fd of its own: the name may have
 * changed since the parent's look). */
static _Noreturn void remove_as_task(const rt_spec_t *s, uid_t uid, int bfd, const char *name)
{
    struct stat st;
    if (!take_identity(s))
        _exit(1);
    int fd = openat(bfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != uid)
        _exit(1);
    int budget = SSHTMP_MAX_ENTRIES;
    empty_dir(fd, 1, &budget);
    _exit(unlinkat(bfd, name, AT_REMOVEDIR) == 0 ? 0 : 1);
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
