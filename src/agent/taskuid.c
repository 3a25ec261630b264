/* taskuid.c - see taskuid.h. */
#include "agent/taskuid.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/util.h"
#include "common/vec.h"

#define MAP_MAX_BYTES (16u << 20) /* ~500k users */

typedef struct {
    char *user;
    uid_t uid;
} entry_t;

struct taskuid {
    char *path;
    uid_t lo, hi;
    entry_t *e;
    size_t n, cap;
    bool torn; /* the file does not end with a newline (a crash mid-write) */
};

pai_err_t taskuid_parse_range(const char *s, uid_t *lo, uid_t *hi)
{
    char a[32];
    const char *dash = s ? strchr(s, '-') : NULL;
    int64_t l, h;
    if (!dash || (size_t)(dash - s) >= sizeof(a))
        return PAI_E_INVALID;
    memcpy(a, s, (size_t)(dash - s));
    a[dash - s] = '\0';
    if (str_to_i64(a, 1, 0x7ffffffe, &l) != PAI_OK ||
        str_to_i64(dash + 1, 1, 0x7ffffffe, &h) != PAI_OK || h < l)
        return PAI_E_INVALID;
    *lo = (uid_t)l;
    *hi = (uid_t)h;
    return PAI_OK;
}

taskuid_t *taskuid_new(const char *map_path, uid_t lo, uid_t hi)
{
    taskuid_t *m = xcalloc(1, sizeof(*m));
    m->path = xstrdup(map_path);
    m->lo = lo;
    m->hi = hi;
    return m;
}

static void clear(taskuid_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].user);
    m->n = 0;
}

void taskuid_free(taskuid_t *m)
{
    if (!m)
        return;
    clear(m);
    free(m->e);
    free(m->path);
    free(m);
}

static const entry_t *find_user(const taskuid_t *m, const char *user)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].user, user) == 0)
            return &m->e[i];
    return NULL;
}

static bool uid_taken(const taskuid_t *m, uid_t uid)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].uid == uid)
            return true;
    return false;
}

static void add(taskuid_t *m, const char *user, uid_t uid)
{
    VEC_XRESERVE(m->e, m->cap, m->n + 1);
    m->e[m->n++] = (entry_t){xstrdup(user), uid};
}

/* Reload the map from the open (locked) file: other agents append too.
 * Lines that do not parse are skipped (a torn last line after a crash). */
static pai_err_t load(taskuid_t *m, int fd)
{
    buf_t b;
    buf_init(&b, MAP_MAX_BYTES);
    char chunk[65536];
    ssize_t r;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return PAI_E_IO;
    while ((r = read(fd, chunk, sizeof(chunk))) > 0)
        if (buf_append(&b, chunk, (size_t)r) != PAI_OK) {
            buf_free(&b);
            return PAI_E_IO;
        }
    clear(m);
    m->torn = b.len > 0 && b.data[b.len - 1] != '\n';
    char *save = NULL;
    for (char *line = strtok_r(b.data ? b.data : (char[]){""}, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        int64_t uid;
        if (!sp)
            continue;
        *sp = '\0';
        if (str_to_i64(line, m->lo, m->hi, &uid) == PAI_OK && str_is_name(sp + 1) &&
            !find_user(m, sp + 1) && !uid_taken(m, (uid_t)uid))
            add(m, sp + 1, (uid_t)uid);
    }
    buf_free(&b);
    return r < 0 ? PAI_E_IO : PAI_OK;
}

/* First free uid from the user's hash slot on. */
static pai_err_t pick(const taskuid_t *m, const char *user, uid_t *out)
{
    uint64_t size = (uint64_t)m->hi - m->lo + 1;
    uint64_t start = hash_fnv1a(FNV1A_INIT, user) % size;
    for (uint64_t i = 0; i < size && i <= m->n; i++) {
        uid_t uid = (uid_t)(m->lo + (start + i) % size);
        if (!uid_taken(m, uid)) {
            *out = uid;
            return PAI_OK;
        }
    }
    return PAI_E_NO_QUOTA;
}

pai_err_t taskuid_get(taskuid_t *m, const char *user, uid_t *out)
{
    if (!str_is_name(user) || strlen(user) > 256)
        return PAI_E_INVALID;
    const entry_t *e = find_user(m, user);
    if (e) {
        *out = e->uid;
        return PAI_OK;
    }
    int fd = open(m->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return PAI_E_IO;
    pai_err_t rc = flock(fd, LOCK_EX) == 0 ? load(m, fd) : PAI_E_IO;
    e = rc == PAI_OK ? find_user(m, user) : NULL;
    if (e) {
        *out = e->uid;
    } else if (rc == PAI_OK && (rc = pick(m, user, out)) == PAI_OK) {
        char line[300];
        int len =
            snprintf(line, sizeof(line), "%s%lld %s\n", m->torn ? "\n" : "", (long long)*out, user);
        if (!fs_write_all(fd, line, (size_t)len) || fsync(fd) != 0)
            rc = PAI_E_IO;
        else
            add(m, user, *out);
    }
    close(fd); /* releases the lock */
    return rc;
}

pai_err_t taskuid_at(const taskuid_t *m, int64_t off, uid_t *out)
{
    if (off < 0 || off > (int64_t)(m->hi - m->lo))
        return PAI_E_NO_QUOTA;
    *out = m->lo + (uid_t)off;
    return PAI_OK;
}

/* The first dir of path (absolute), from the top down to path itself,
 * that others may not pass ("/" is taken as open). */
static bool walk_closed(const char *path, char *closed, size_t n, mode_t *mode)
{
    char p[PATH_MAX];
    struct stat st;
    if (str_copy(p, path, sizeof(p)) >= sizeof(p))
        return false;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH)) {
            str_copy(closed, p, n);
            *mode = st.st_mode & 07777;
            return true;
        }
        *s = c;
        if (!c)
            return false;
    }
}

/* dir as an absolute path into abs (PATH_MAX bytes), "//" and a trailing
 * '/' dropped (the name said is then one a reader would write); false
 * when it does not fit. */
static bool absolute(const char *dir, char *abs)
{
    char p[PATH_MAX];
    if (dir[0] == '/')
        p[0] = '\0';
    else if (!getcwd(p, sizeof(p)))
        return false;
    size_t l = strlen(p);
    if ((size_t)snprintf(p + l, sizeof(p) - l, "/%s", dir) >= sizeof(p) - l)
        return false;
    size_t k = 0;
    for (const char *s = p; *s; s++)
        if (*s != '/' || (s[1] != '/' && s[1] != '\0'))
            abs[k++] = *s;
    abs[k] = '\0';
    if (k == 0)
        str_copy(abs, "/", PATH_MAX);
    return true;
}

bool taskuid_path_open(const char *dir, char *closed, size_t n, mode_t *mode)
{
    char abs[PATH_MAX], real[PATH_MAX];
    if (!absolute(dir, abs))
        return true;
    if (walk_closed(abs, closed, n, mode))
        return false;
    return !(realpath(abs, real) && strcmp(real, abs) != 0 && walk_closed(real, closed, n, mode));
}
