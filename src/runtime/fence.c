/*
 * fence.c - a process task's GPU fence (monitor_int.h, mon_fence_gpus):
 * on cgroup v1 a `devices` cgroup denies an isolated task the node's GPUs
 * (or a device class's devices) it was not given (docs/security.md).
 * Shared by the per-attempt monitor (monitor.c) and the per-agent one
 * (mond.c).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "common/util.h"
#include "runtime/cgroup.h"
#include "runtime/monitor_int.h"

#define NVIDIA_MAJOR  195 /* the driver's fixed major of /dev/nvidiaN */
#define GPU_NODES_MAX 64

/* The NVIDIA GPU device nodes of a directory (/dev/nvidiaN of the
 * driver's major), read once and again only when the directory changed
 * (its mtime: a node added or removed): a monitor fences every task, and
 * /dev holds a hundred entries. */
typedef struct {
    char dir[600];
    struct timespec mtime;
    size_t n;
    int index[GPU_NODES_MAX];
    dev_t rdev[GPU_NODES_MAX];
} gpu_nodes_t;

static const gpu_nodes_t *gpu_nodes(const char *dir)
{
    static gpu_nodes_t c;
    struct stat st;
    if (stat(dir, &st) != 0) {
        c.dir[0] = '\0';
        c.n = 0;
        return &c;
    }
    if (strcmp(c.dir, dir) == 0 && st.st_mtim.tv_sec == c.mtime.tv_sec &&
        st.st_mtim.tv_nsec == c.mtime.tv_nsec)
        return &c;
    c.n = 0;
    c.mtime = st.st_mtim;
    str_copy(c.dir, dir, sizeof(c.dir));
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && c.n < GPU_NODES_MAX) {
        char *end;
        if (strncmp(e->d_name, "nvidia", 6) != 0 || e->d_name[6] < '0' || e->d_name[6] > '9')
            continue;
        long i = strtol(e->d_name + 6, &end, 10);
        if (*end || i >= GPU_NODES_MAX || (e->d_name[6] == '0' && e->d_name[7]))
            continue;
        char p[900];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == NVIDIA_MAJOR) {
            c.index[c.n] = (int)i;
            c.rdev[c.n++] = st.st_rdev;
        }
    }
    if (d)
        closedir(d);
    if (!d)
        c.dir[0] = '\0'; /* not kept: read again next time */
    return &c;
}

/* The node's other GPUs: those of gpu_nodes that the attempt was not
 * given.  Returns how many are in out. */
static size_t other_gpus(const rt_spec_t *s, dev_t *out, size_t cap)
{
    const char *dir = s->gpu_dev_dir && *s->gpu_dev_dir ? s->gpu_dev_dir : "/dev";
    const gpu_nodes_t *g = gpu_nodes(dir);
    size_t n = 0;
    for (size_t k = 0; k < g->n && n < cap; k++) {
        bool given = false;
        for (size_t j = 0; j < s->n_gpus; j++)
            given = given || s->gpus[j] == g->index[k];
        if (!given)
            out[n++] = g->rdev[k];
    }
    return n;
}

/* A process task of another identity cannot open the GPUs it was not
 * given (the device nodes are usually 0666): a v1 devices cgroup denies
 * them.  On v2 (eBPF device programs) the fence is missing: security.md. */
/* The class's other device nodes (rt_spec_t.fence) that are devices. */
static size_t other_devices(const rt_spec_t *s, dev_t *out, size_t cap)
{
    size_t n = 0;
    struct stat st;
    for (size_t i = 0; i < s->n_fence && n < cap; i++)
        if (stat(s->fence[i], &st) == 0 && S_ISCHR(st.st_mode))
            out[n++] = st.st_rdev;
    return n;
}

void mon_fence_gpus(mon_t *m)
{
    dev_t devs[GPU_NODES_MAX];
    size_t n = m->spec->own_devices ? other_devices(m->spec, devs, GPU_NODES_MAX)
                                    : other_gpus(m->spec, devs, GPU_NODES_MAX);
    pai_err_t rc = n ? cg_deny_devices(m->cg, devs, n) : PAI_OK;
    if (rc != PAI_OK && rc != PAI_E_UNAVAILABLE)
        mon_say(m, "pai: warning: cannot fence off the node's other GPUs\n");
}
