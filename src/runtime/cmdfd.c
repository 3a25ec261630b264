/*
 * cmdfd.c - the per-agent monitor's sealed command memfds (monitor_int.h,
 * mon_cmdfd).
 *
 * A process task reads its command from RT_COMMAND_FD (monitor.h): bash
 * runs /proc/self/fd/3.  Made per task, that is a memfd_create, a write,
 * an lseek, a dup2 and a close in the task's process before its exec, and
 * the memfd's inode and page freed at its exit (~9 us a task on the
 * bench VM).  Tasks of one identity that run the same text (a job's
 * instances, a job submitted again) share one memfd instead, made once by
 * the monitor and sealed (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
 * F_SEAL_WRITE): nothing can change its text, grow, shrink or re-seal it,
 * through any descriptor or mapping (memfd_create(2)).  Each task gets
 * an open file description of its own, read-only, opened by the monitor
 * through its /proc/self/fd (a held directory: one openat, ~3 us against
 * ~9 for the memfd's making) and put on fd 3 by the task's process: its
 * offset starts at 0 and is no other task's (a dup of the monitor's
 * descriptor would share one offset among all the tasks of a text, for
 * ~0.5 us).
 *
 * The cache is keyed by the whole text and the task's uid and gid: a task
 * sees the same inode (fstat: its number and times) as another task only
 * when both run as the same identity, so no task can tell whether another
 * user ran a given text.  At most CMDFD_SLOTS entries, the least recently
 * used replaced; a text over CMDFD_MAX_BYTES is not cached (the child
 * makes its own memfd, as before).  The texts (a job's secrets among them)
 * stay in memory, never on disk, until replaced; a replaced entry's copy
 * is wiped, and its memfd freed once the last task holding it has ended.
 * Its page is charged to the monitor's memory cgroup, not to the task's.
 * The descriptors are held at CG_HELD_FD_MIN and up, close-on-exec (like a
 * pooled cgroup's files: not copied into each task's descriptor table).
 * Not thread-safe: the monitor's event loop alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "common/fs.h"
#include "common/util.h"
#include "runtime/monitor_int.h"

#define CMDFD_SLOTS     16
#define CMDFD_MAX_BYTES (64u * 1024)
#define CMDFD_SEALS     (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

typedef struct {
    char *text; /* NULL: a free slot */
    size_t len;
    uid_t uid;
    gid_t gid;
    int fd;
    uint64_t used; /* the tick of its last use (LRU) */
} cmdfd_t;

static cmdfd_t slots[CMDFD_SLOTS];
static uint64_t tick;

static void slot_clear(cmdfd_t *e)
{
    if (!e->text)
        return;
    close(e->fd);
    sodium_memzero(e->text, e->len);
    free(e->text);
    memset(e, 0, sizeof(*e));
}

/* A sealed memfd holding text[0..len); -1 when it cannot be had. */
static int make_sealed(const char *text, size_t len)
{
    int fd = memfd_create("pai-command", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    if (!fs_write_all(fd, text, len) || fcntl(fd, F_ADD_SEALS, CMDFD_SEALS) != 0 ||
        (fcntl(fd, F_GET_SEALS) & CMDFD_SEALS) != CMDFD_SEALS) {
        close(fd);
        return -1;
    }
    return cg_hold_fd(fd);
}

/* The monitor's held descriptor of text's memfd for uid:gid, made on
 * its first use; -1 when none. */
static int cached(const char *text, uid_t uid, gid_t gid)
{
    size_t len = strlen(text);
    if (len > CMDFD_MAX_BYTES)
        return -1;
    cmdfd_t *victim = &slots[0];
    for (size_t i = 0; i < CMDFD_SLOTS; i++) {
        cmdfd_t *e = &slots[i];
        if (e->text && e->len == len && e->uid == uid && e->gid == gid &&
            memcmp(e->text, text, len) == 0) {
            e->used = ++tick;
            return e->fd;
        }
        if (victim->text && (!e->text || e->used < victim->used))
            victim = e;
    }
    int fd = make_sealed(text, len);
    if (fd < 0)
        return -1;
    slot_clear(victim);
    victim->text = xmalloc(len + 1);
    memcpy(victim->text, text, len + 1);
    victim->len = len;
    victim->uid = uid;
    victim->gid = gid;
    victim->fd = fd;
    victim->used = ++tick;
    return fd;
}

int mon_cmdfd_open(const char *text, uid_t uid, gid_t gid)
{
    static int fd_dir = -1; /* /proc/<fd_pid>/fd; -1: none */
    static pid_t fd_pid;
    char name[16];
    if (fd_pid != getpid()) { /* the first call, or a fork's: its own dir */
        fd_pid = getpid();
        if (fd_dir >= 0) /* the parent's dir */
            close(fd_dir);
        fd_dir = cg_hold_fd(open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    int fd = fd_dir >= 0 ? cached(text, uid, gid) : -1;
    if (fd < 0)
        return -1;
    snprintf(name, sizeof(name), "%d", fd);
    return openat(fd_dir, name, O_RDONLY | O_CLOEXEC);
}

void mon_cmdfd_clear(void)
{
    for (size_t i = 0; i < CMDFD_SLOTS; i++)
        slot_clear(&slots[i]);
}
