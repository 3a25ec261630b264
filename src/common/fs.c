/*
 * fs.c - see fs.h.
 */
#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static bool mkdir_ok(const char *path, mode_t mode)
{
    return mkdir(path, mode) == 0 || errno == EEXIST;
}

/* mkdir every prefix of tmp that ends before a '/', then tmp itself when
 * whole is set. */
static pai_err_t mkdir_walk(char *tmp, mode_t mode, bool whole)
{
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        bool ok = mkdir_ok(tmp, mode);
        *s = '/';
        if (!ok)
            return PAI_E_IO;
    }
    return !whole || mkdir_ok(tmp, mode) ? PAI_OK : PAI_E_IO;
}

pai_err_t fs_mkdir_p(const char *path, mode_t mode)
{
    if (mkdir_ok(path, mode))
        return PAI_OK;
    char tmp[PATH_MAX];
    if (str_copy(tmp, path, sizeof(tmp)) >= sizeof(tmp))
        return PAI_E_INVALID;
    return mkdir_walk(tmp, mode, true);
}

pai_err_t fs_mkdir_parents(const char *file, mode_t mode)
{
    char tmp[PATH_MAX];
    if (str_copy(tmp, file, sizeof(tmp)) >= sizeof(tmp))
        return PAI_E_INVALID;
    return mkdir_walk(tmp, mode, false);
}

bool fs_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

pai_err_t fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    char *tmp = str_printf("%.*s.%s.tmp", dirlen, path, slash ? slash + 1 : path);
    pai_err_t rc = PAI_E_IO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        goto out;
    bool ok = fs_write_all(fd, data, len) && fchmod(fd, mode) == 0;
    if (close(fd) != 0 || !ok)
        goto out;
    if (rename(tmp, path) == 0)
        rc = PAI_OK;
out:
    if (rc != PAI_OK) {
        int e = errno;
        unlink(tmp);
        errno = e;
    }
    free(tmp);
    return rc;
}

/* fs_rm_at with a budget of entries (NULL: none). */
static void rm_at(int at, const char *name, int depth, unsigned *budget)
{
    if (budget) {
        if (*budget == 0)
            return;
        --*budget;
    }
    if (unlinkat(at, name, 0) == 0 || errno != EISDIR || depth > 64)
        return;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((!budget || *budget > 0) && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rm_at(dirfd(d), e->d_name, depth + 1, budget);
    closedir(d);
    unlinkat(at, name, AT_REMOVEDIR);
}

void fs_rm_at(int at, const char *name, int depth)
{
    rm_at(at, name, depth, NULL);
}

bool fs_rm_at_most(int at, const char *name, unsigned max)
{
    struct stat st;
    rm_at(at, name, 0, &max);
    return fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
}

void fs_rm_rf(const char *path)
{
    fs_rm_at(AT_FDCWD, path, 0);
}
