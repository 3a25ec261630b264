/* cgroup_stats.c - what the kernel counts for an attempt's cgroup (the
 * agent's metrics; cgroup.h's cg_stats_*, cg_find_child). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup_int.h"

/* ---- stats (the agent's metrics) ----------------------------------------- */

/* The first integer in dir/file; -1 when absent or not a number ("max"). */
static int64_t read_int(const char *dir, const char *file)
{
    char line[64];
    if (!cg_read_small(dir, file, line, sizeof(line)) || line[0] < '0' || line[0] > '9')
        return -1;
    return strtoll(line, NULL, 10);
}

/* v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device, summed. */
static void v2_io(const char *dir, cg_stats_t *out)
{
    char p[1024], line[512];
    snprintf(p, sizeof(p), "%s/io.stat", dir);
    FILE *f = fopen(p, "re");
    if (!f)
        return;
    out->io_read_bytes = out->io_write_bytes = 0;
    while (fgets(line, sizeof(line), f)) {
        const char *r = strstr(line, " rbytes="), *w = strstr(line, " wbytes=");
        if (r)
            out->io_read_bytes += strtoll(r + 8, NULL, 10);
        if (w)
            out->io_write_bytes += strtoll(w + 8, NULL, 10);
    }
    fclose(f);
}

void cg_stats_v2(const char *dir, cg_stats_t *out)
{
    int64_t usec = cg_read_key(-1, dir, "cpu.stat", "usage_usec");
    out->cpu_ns = usec >= 0 ? usec * 1000 : -1;
    out->mem_bytes = read_int(dir, "memory.current");
    out->mem_limit_bytes = read_int(dir, "memory.max"); /* "max": -1 */
    v2_io(dir, out);
}

/* v1 blkio.throttle.io_service_bytes: "MAJ:MIN Read N" / "MAJ:MIN Write N". */
static void v1_io(const char *dir, cg_stats_t *out)
{
    char p[1024], line[256], op[32];
    long long v;
    snprintf(p, sizeof(p), "%s/blkio.throttle.io_service_bytes", dir);
    FILE *f = fopen(p, "re");
    if (!f)
        return;
    out->io_read_bytes = out->io_write_bytes = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%*s %31s %lld", op, &v) != 2)
            continue;
        if (strcmp(op, "Read") == 0)
            out->io_read_bytes += v;
        else if (strcmp(op, "Write") == 0)
            out->io_write_bytes += v;
    }
    fclose(f);
}

void cg_stats_v1(const char *cpuacct, const char *memory, const char *blkio, cg_stats_t *out)
{
    if (cpuacct)
        out->cpu_ns = read_int(cpuacct, "cpuacct.usage");
    if (memory) {
        out->mem_bytes = read_int(memory, "memory.usage_in_bytes");
        out->mem_limit_bytes = read_int(memory, "memory.limit_in_bytes");
        if (out->mem_limit_bytes >= (INT64_C(1) << 60))
            out->mem_limit_bytes = -1; /* v1 says "unlimited" with a huge number */
    }
    if (blkio)
        v1_io(blkio, out);
}

/* The dir of controller ctrl ("" for v2) from one /proc/<pid>/cgroup line
 * "ID:CTRLS:PATH", when PATH is a pai cgroup; false otherwise. */
static bool proc_line_dir(const char *line, const char *ctrl, char *dir, size_t n)
{
    const char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2 || !strstr(c2 + 1, "/pai/"))
        return false;
    char ctrls[128];
    snprintf(ctrls, sizeof(ctrls), ",%.*s,", (int)(c2 - c1 - 1), c1 + 1);
    char want[64];
    snprintf(want, sizeof(want), ",%s,", ctrl);
    if (*ctrl ? !strstr(ctrls, want) : strcmp(ctrls, ",,") != 0)
        return false;
    size_t pl = strcspn(c2 + 1, "\n");
    snprintf(dir, n, "%s%s%s%.*s", cg_root(), *ctrl ? "/" : "", ctrl, (int)pl, c2 + 1);
    return true;
}

pai_err_t cg_stats_of_pid(pid_t pid, cg_stats_t *out)
{
    static const char *const ctrls[] = {"", "cpuacct", "memory", "blkio"};
    char p[64], line[1024], dirs[ARRAY_LEN(ctrls)][1024] = {{0}};
    *out = (cg_stats_t){-1, -1, -1, -1, -1};
    snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)pid);
    FILE *f = fopen(p, "re");
    if (!f)
        return PAI_E_NOT_FOUND;
    bool any = false;
    while (fgets(line, sizeof(line), f))
        for (size_t i = 0; i < ARRAY_LEN(ctrls); i++)
            if (!dirs[i][0] && proc_line_dir(line, ctrls[i], dirs[i], sizeof(dirs[i])))
                any = true;
    fclose(f);
    if (!any)
        return PAI_E_NOT_FOUND;
    if (dirs[0][0])
        cg_stats_v2(dirs[0], out);
    else
        cg_stats_v1(dirs[1][0] ? dirs[1] : NULL, dirs[2][0] ? dirs[2] : NULL,
                    dirs[3][0] ? dirs[3] : NULL, out);
    return PAI_OK;
}

/* root/ctrl/rel into p when it is a directory. */
static bool ctrl_dir(const char *ctrl, const char *rel, char *p, size_t n)
{
    struct stat st;
    snprintf(p, n, "%s%s%s/%s", cg_root(), *ctrl ? "/" : "", ctrl, rel);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

pai_err_t cg_stats_of(const char *rel, cg_stats_t *out)
{
    char cpu[1024], mem[1024], io[1024];
    *out = (cg_stats_t){-1, -1, -1, -1, -1};
    int v = cg_version();
    if (v == 2) {
        if (!ctrl_dir("", rel, mem, sizeof(mem)))
            return PAI_E_NOT_FOUND;
        cg_stats_v2(mem, out);
        return PAI_OK;
    }
    if (v != 1 || !ctrl_dir("memory", rel, mem, sizeof(mem)))
        return PAI_E_NOT_FOUND;
    bool has_cpu = ctrl_dir("cpuacct", rel, cpu, sizeof(cpu));
    bool has_io = ctrl_dir("blkio", rel, io, sizeof(io));
    cg_stats_v1(has_cpu ? cpu : NULL, mem, has_io ? io : NULL, out);
    return PAI_OK;
}

bool cg_find_child(const char *parent, const char *prefix, char *out, size_t n)
{
    char p[1024];
    int v = cg_version();
    if (v == 0 || !ctrl_dir(v == 2 ? "" : "memory", parent, p, sizeof(p)))
        return false;
    DIR *d = opendir(p);
    struct dirent *e;
    bool found = false;
    while (d && !found && (e = readdir(d)))
        if (str_has_prefix(e->d_name, prefix)) {
            snprintf(out, n, "%s/%s", parent, e->d_name);
            found = true;
        }
    if (d)
        closedir(d);
    return found;
}
