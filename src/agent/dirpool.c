/*
 * dirpool.c - see dirpool.h.
 */
#include "agent/dirpool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/util.h"
#include "common/vec.h"

bool dirpool_init(dirpool_t *p, const char *dir)
{
    memset(p, 0, sizeof(*p));
    if (str_copy(p->dir, dir, sizeof(p->dir)) >= sizeof(p->dir))
        return (p->dir[0] = '\0', false);
    fs_rm_rf(dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return (p->dir[0] = '\0', false);
    return true;
}

/* Empty the task's working dir at dfd/"cwd" and give it back to us, 0700
 * (the task may have opened it to others).  False when it is not a dir. */
static bool clean_cwd(int dfd)
{
    int cfd = openat(dfd, "cwd", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *c = cfd >= 0 ? fdopendir(cfd) : NULL;
    if (!c) {
        if (cfd >= 0)
            close(cfd);
        return false;
    }
    struct dirent *e;
    while ((e = readdir(c)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            fs_rm_at(dirfd(c), e->d_name, 1);
    bool ok = fchown(dirfd(c), geteuid(), getegid()) == 0 && fchmod(dirfd(c), 0700) == 0;
    closedir(c);
    return ok;
}

/* Empty the attempt dir at dfd (taken): 0711, the record truncated, cwd
 * emptied, anything else removed.  False when either is missing. */
static bool clean(int dfd)
{
    DIR *d = dfd >= 0 && fchmod(dfd, 0711) == 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return false;
    }
    bool record = false, cwd = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (strcmp(name, "monitor") == 0) {
            int fd = openat(dirfd(d), name, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
            record = fd >= 0;
            if (fd >= 0)
                close(fd);
        } else if (strcmp(name, "cwd") == 0) {
            cwd = clean_cwd(dirfd(d));
        } else {
            fs_rm_at(dirfd(d), name, 1);
        }
    }
    closedir(d);
    return record && cwd;
}

void dirpool_put(dirpool_t *p, const char *path)
{
    char e[1200];
    snprintf(e, sizeof(e), "%s/%d", p->dir, p->next);
    if (!p->dir[0] || p->n >= DIRPOOL_MAX || rename(path, e) != 0) {
        fs_rm_rf(path);
        return;
    }
    p->next++;
    if (!clean(open(e, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC))) {
        fs_rm_rf(e);
        return;
    }
    VEC_XRESERVE(p->ids, p->cap, p->n + 1);
    p->ids[p->n++] = p->next - 1;
}

bool dirpool_take(dirpool_t *p, const char *path)
{
    char e[1200];
    while (p->n > 0) {
        snprintf(e, sizeof(e), "%s/%d", p->dir, p->ids[p->n - 1]);
        if (rename(e, path) == 0) {
            p->n--;
            return true;
        }
        if (errno != ENOENT)
            return false; /* path is there: the caller's mkdir finds it */
        p->n--;
    }
    return false;
}

void dirpool_free(dirpool_t *p)
{
    FREE_NULL(&p->ids);
    p->n = p->cap = 0;
}
