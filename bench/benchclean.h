/*
 * bench/benchclean.h - what a bench program made is removed also when it is
 * killed: by its timeout (SIGTERM, to its whole process group), ^C (SIGINT)
 * or a closed terminal (SIGHUP).
 *
 * A bench registers the directories it creates (bench_clean_dir) and the
 * child processes it starts (bench_clean_pid); on one of those signals the
 * handler stops the children (SIGTERM, then waits for each), removes the
 * directories (`rm -rf`, run by vfork + exec) and dies of the signal as
 * before.  Only async-signal-safe calls run in the handler (kill, waitpid,
 * vfork, execve, _exit, raise): no allocation, no stdio.  The normal way
 * out cleans up as before and forgets what it removed itself
 * (bench_clean_pid_gone, bench_clean_dir_gone), so that a signal during
 * its own clean-up does nothing twice.
 *
 * Each bench is one .c file: the functions are static.
 */
#ifndef PAI_BENCH_BENCHCLEAN_H
#define PAI_BENCH_BENCHCLEAN_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_CLEAN_MAX 8

static char bench_clean_dirs_[BENCH_CLEAN_MAX][512];
static volatile sig_atomic_t bench_clean_used_[BENCH_CLEAN_MAX]; /* dirs_[i] is set */
static volatile pid_t bench_clean_pids_[BENCH_CLEAN_MAX];        /* 0: free */

static void bench_clean_on_signal_(int sig)
{
    for (int i = 0; i < BENCH_CLEAN_MAX; i++)
        if (bench_clean_pids_[i] > 0)
            kill(bench_clean_pids_[i], SIGTERM);
    for (int i = 0; i < BENCH_CLEAN_MAX; i++)
        if (bench_clean_pids_[i] > 0)
            waitpid(bench_clean_pids_[i], NULL, 0);
    for (int i = 0; i < BENCH_CLEAN_MAX; i++) {
        if (!bench_clean_used_[i])
            continue;
        char *const argv[] = {"rm", "-rf", "--", bench_clean_dirs_[i], NULL};
        char *const envp[] = {NULL};
        pid_t pid = vfork();
        if (pid == 0) {
            execve("/bin/rm", argv, envp);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void bench_clean_install_(void)
{
    static int installed;
    if (installed++)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = bench_clean_on_signal_;
    sigfillset(&sa.sa_mask); /* one clean-up: the others wait (then die of the default) */
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* Remove dir (its whole tree) if a signal ends the bench. */
static inline void bench_clean_dir(const char *dir)
{
    bench_clean_install_();
    for (int i = 0; i < BENCH_CLEAN_MAX; i++)
        if (!bench_clean_used_[i]) {
            snprintf(bench_clean_dirs_[i], sizeof bench_clean_dirs_[i], "%s", dir);
            bench_clean_used_[i] = 1;
            return;
        }
    fprintf(stderr, "benchclean: more than %d directories: %s is not removed on a signal\n",
            BENCH_CLEAN_MAX, dir);
}

/* The bench removed dir itself. */
static inline void bench_clean_dir_gone(const char *dir)
{
    for (int i = 0; i < BENCH_CLEAN_MAX; i++)
        if (bench_clean_used_[i] && strcmp(bench_clean_dirs_[i], dir) == 0)
            bench_clean_used_[i] = 0;
}

/* Stop child pid (SIGTERM, and wait) if a signal ends the bench. */
static inline void bench_clean_pid(pid_t pid)
{
    bench_clean_install_();
    for (int i = 0; i < BENCH_CLEAN_MAX; i++)
        if (bench_clean_pids_[i] == 0) {
            bench_clean_pids_[i] = pid;
            return;
        }
    fprintf(stderr, "benchclean: more than %d processes: %d is not stopped on a signal\n",
            BENCH_CLEAN_MAX, (int)pid);
}

/* The bench reaped pid itself (call before its waitpid returns: after it,
 * the pid may be another process's). */
static inline void bench_clean_pid_gone(pid_t pid)
{
    for (int i = 0; i < BENCH_CLEAN_MAX; i++)
        if (bench_clean_pids_[i] == pid)
            bench_clean_pids_[i] = 0;
}

#endif
