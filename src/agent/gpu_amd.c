/*
 * gpu_amd.c - AMD GPUs from sysfs (see gpu.h): discovery from the KFD
 * topology, figures from the DRM device, and the fake tree the simulated
 * backend ("amd-sim") and the tests read instead of the host's.
 *
 * Why sysfs and not rocm-smi: the KFD topology is what ROCm itself reads
 * to number its devices (HIP_VISIBLE_DEVICES and ROCR_VISIBLE_DEVICES
 * count the GPU nodes in node order), it is there whenever the amdgpu
 * driver is loaded (rocm-smi is a separate package), and reading a few
 * small files costs microseconds instead of a Python start-up.
 *
 * Layout read (paths under root, "" for the host):
 *   sys/class/kfd/kfd/topology/nodes/N/properties   "key value" lines:
 *       simd_count (0: a CPU node), drm_render_minor, unique_id,
 *       location_id (PCI bus<<8 | device<<3 | function), domain
 *   sys/class/kfd/kfd/topology/nodes/N/name         e.g. gfx90a
 *   sys/class/kfd/kfd/topology/nodes/N/io_links/K/properties
 *       type (11: XGMI), node_to
 *   sys/class/drm/renderD<minor>/device/            product_name,
 *       mem_info_vram_total, gpu_busy_percent, mem_busy_percent,
 *       hwmon/hwmon0/temp1_input (millidegrees), ras/umc_err_count
 *   dev/kfd, dev/dri/renderD<minor>                 the task's devices
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "agent/gpu.h"
#include "common/buf.h"
#include "common/fs.h"
#include "common/util.h"

#define KFD_NODES   "sys/class/kfd/kfd/topology/nodes"
#define MAX_NODES   (GPU_MAX + 16) /* GPUs plus CPU nodes */
#define IOLINK_XGMI 11

static void path_of(char *out, size_t n, const char *root, const char *rel)
{
    snprintf(out, n, "%s/%s", root && *root ? root : "", rel);
}

/* The first line of a small file, trimmed; false when it cannot be read. */
static bool read_line(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(out, (int)n, f) != NULL;
    fclose(f);
    if (ok)
        out[strcspn(out, "\r\n")] = '\0';
    return ok;
}

static bool read_i64(const char *path, long long *v)
{
    char line[64];
    char *end;
    if (!read_line(path, line, sizeof(line)))
        return false;
    *v = strtoll(line, &end, 10);
    return end != line;
}

/* The value of key in a KFD properties file; -1 when absent. */
static long long prop(const char *text, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return strtoll(p + kl + 1, NULL, 10);
    return -1;
}

static bool read_props(const char *path, buf_t *b)
{
    buf_reset(b);
    return buf_read_file(b, path) == PAI_OK;
}

typedef struct {
    int node; /* KFD node number */
    long long minor;
} gpu_node_t;

static int by_node(const void *a, const void *b)
{
    return ((const gpu_node_t *)a)->node - ((const gpu_node_t *)b)->node;
}

/* The KFD nodes that are GPUs, in node order. */
static size_t gpu_nodes(const char *root, gpu_node_t *out, size_t cap)
{
    char dir[GPU_PATH_MAX + 64], p[1024];
    path_of(dir, sizeof(dir), root, KFD_NODES);
    DIR *d = opendir(dir);
    struct dirent *e;
    buf_t b;
    size_t n = 0;
    buf_init(&b, 64 * 1024);
    while (d && (e = readdir(d)) && n < cap) {
        char *end;
        long node = strtol(e->d_name, &end, 10);
        if (*end || e->d_name[0] < '0' || e->d_name[0] > '9' || node > MAX_NODES * 64)
            continue;
        snprintf(p, sizeof(p), "%s/%s/properties", dir, e->d_name);
        if (!read_props(p, &b) || prop(buf_str(&b), "simd_count") <= 0)
            continue; /* a CPU node */
        out[n++] = (gpu_node_t){.node = (int)node, .minor = prop(buf_str(&b), "drm_render_minor")};
    }
    if (d)
        closedir(d);
    buf_free(&b);
    qsort(out, n, sizeof(*out), by_node);
    return n;
}

static void amd_model(const char *dev_dir, const char *node_dir, char *out, size_t n)
{
    char p[1024], name[96] = "";
    snprintf(p, sizeof(p), "%s/product_name", dev_dir);
    if (read_line(p, out, n) && *out)
        return;
    snprintf(p, sizeof(p), "%s/name", node_dir);
    /* a name too long for out is cut (a label only); an encoding error
     * gives the generic one */
    if (!read_line(p, name, sizeof(name)) || !*name || snprintf(out, n, "AMD %s", name) < 0)
        snprintf(out, n, "AMD GPU");
}

/* One GPU's fields from its KFD node and DRM device. */
static void amd_fill(const char *root, const gpu_node_t *gn, size_t index, gpu_info_t *g)
{
    char node_dir[GPU_PATH_MAX + 64], p[1024], rel[128];
    buf_t b;
    buf_init(&b, 64 * 1024);
    snprintf(rel, sizeof(rel), KFD_NODES "/%d", gn->node);
    path_of(node_dir, sizeof(node_dir), root, rel);
    snprintf(p, sizeof(p), "%s/properties", node_dir);
    long long uid = -1, loc = -1, dom = 0;
    if (read_props(p, &b)) {
        uid = prop(buf_str(&b), "unique_id");
        loc = prop(buf_str(&b), "location_id");
        dom = prop(buf_str(&b), "domain");
    }
    memset(g, 0, sizeof(*g));
    g->index = (int)index;
    g->healthy = true;
    snprintf(rel, sizeof(rel), "sys/class/drm/renderD%lld/device", gn->minor);
    path_of(g->sysfs, sizeof(g->sysfs), root, rel);
    snprintf(rel, sizeof(rel), "dev/dri/renderD%lld", gn->minor);
    path_of(g->dev, sizeof(g->dev), root, rel);
    amd_model(g->sysfs, node_dir, g->model, sizeof(g->model));
    if (uid > 0)
        snprintf(g->uuid, sizeof(g->uuid), "GPU-%016llx", (unsigned long long)uid);
    else
        snprintf(g->uuid, sizeof(g->uuid), "AMD-node-%d", gn->node);
    if (loc >= 0)
        snprintf(g->pci_bus, sizeof(g->pci_bus), "%04llx:%02llx:%02llx.%llx", dom < 0 ? 0 : dom,
                 (loc >> 8) & 0xff, (loc >> 3) & 0x1f, loc & 7);
    long long vram;
    snprintf(p, sizeof(p), "%s/mem_info_vram_total", g->sysfs);
    if (read_i64(p, &vram) && vram > 0)
        g->memory_mb = vram / (1024 * 1024);
    g->healthy = access(g->dev, F_OK) == 0;
    buf_free(&b);
}

/* XGMI peers count as one board (NVML's level 10); other pairs as PCIe
 * across the host bridge (40), which is what ROCm reports without XGMI. */
static void amd_topo(const char *root, const gpu_node_t *gn, gpu_set_t *out)
{
    char dir[GPU_PATH_MAX + 96], p[1024], rel[128];
    buf_t b;
    buf_init(&b, 16 * 1024);
    for (size_t i = 0; i < out->n; i++)
        for (size_t j = 0; j < out->n; j++)
            out->topo[i][j] = i == j ? 0 : 40;
    for (size_t i = 0; i < out->n; i++) {
        snprintf(rel, sizeof(rel), KFD_NODES "/%d/io_links", gn[i].node);
        path_of(dir, sizeof(dir), root, rel);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s/properties", dir, e->d_name);
            if (!read_props(p, &b) || prop(buf_str(&b), "type") != IOLINK_XGMI)
                continue;
            long long to = prop(buf_str(&b), "node_to");
            for (size_t j = 0; j < out->n; j++)
                if (gn[j].node == to && j != i)
                    out->topo[i][j] = out->topo[j][i] = 10;
        }
        if (d)
            closedir(d);
    }
    out->has_topo = true;
    buf_free(&b);
}

pai_err_t gpu_amd_discover(const char *root, gpu_set_t *out)
{
    gpu_node_t gn[MAX_NODES];
    size_t n = gpu_nodes(root, gn, MAX_NODES);
    if (n == 0)
        return PAI_E_UNAVAILABLE;
    memset(out, 0, sizeof(*out));
    out->backend = "amd";
    out->vendor = GPU_VENDOR_AMD;
    out->simulated = root && *root && strcmp(root, "/") != 0;
    out->n = n > GPU_MAX ? GPU_MAX : n;
    for (size_t i = 0; i < out->n; i++)
        amd_fill(root, &gn[i], i, &out->gpus[i]);
    path_of(out->shared[0], sizeof(out->shared[0]), root, "dev/kfd");
    out->nshared = 1;
    amd_topo(root, gn, out);
    return PAI_OK;
}

/* ---- sampling ------------------------------------------------------------ */

void gpu_amd_sample(const gpu_info_t *g, gpu_sample_t *out)
{
    char p[1024];
    long long v;
    *out = (gpu_sample_t){
        .util = -1, .mem_util = -1, .temp_c = -1, .ecc_single = -1, .ecc_double = -1};
    struct stat st;
    if (!*g->sysfs || stat(g->sysfs, &st) != 0 || access(g->dev, F_OK) != 0)
        return; /* the device is gone (fallen off the bus, driver unbound) */
    out->ok = g->healthy;
    snprintf(p, sizeof(p), "%s/gpu_busy_percent", g->sysfs);
    if (read_i64(p, &v))
        out->util = (double)v;
    snprintf(p, sizeof(p), "%s/mem_busy_percent", g->sysfs);
    if (read_i64(p, &v))
        out->mem_util = (double)v;
    snprintf(p, sizeof(p), "%s/hwmon/hwmon0/temp1_input", g->sysfs);
    if (read_i64(p, &v))
        out->temp_c = (double)v / 1000.0;
    buf_t b;
    buf_init(&b, 4096);
    snprintf(p, sizeof(p), "%s/ras/umc_err_count", g->sysfs);
    if (buf_read_file(&b, p) == PAI_OK) {
        const char *ue = strstr(buf_str(&b), "ue:"), *ce = strstr(buf_str(&b), "ce:");
        out->ecc_double = ue ? strtoll(ue + 3, NULL, 10) : -1;
        out->ecc_single = ce ? strtoll(ce + 3, NULL, 10) : -1;
    }
    buf_free(&b);
}

/* ---- the simulated tree --------------------------------------------------- */

static int64_t amd_memory_mb(const char *model)
{
    static const struct {
        const char *model;
        int64_t mb;
    } table[] = {{"MI300X", 196608}, {"MI250X", 65536}, {"MI250", 65536},
                 {"MI210", 65536},   {"MI100", 32768},  {"MI50", 16384}};
    for (size_t i = 0; i < ARRAY_LEN(table); i++)
        if (strstr(model, table[i].model))
            return table[i].mb;
    return 32768;
}

static pai_err_t put(const char *root, const char *rel, const char *text)
{
    char p[GPU_PATH_MAX + 160];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    pai_err_t rc = fs_mkdir_p(p, 0755);
    *slash = '/';
    return rc == PAI_OK ? fs_write_atomic(p, text, strlen(text), 0644) : rc;
}

/* Numbers of the fake device nodes: major 120 is set aside for local and
 * experimental use (Documentation/admin-guide/devices.txt), so no driver
 * answers them (open: ENXIO) and a devices cgroup fencing them off a task
 * denies nothing real (fencing /dev/null's numbers would take /dev/null
 * from the task). */
#define SIM_MAJOR 120

/* A device node (containers need a real node for --device) when this
 * process may make one, else a plain file. */
static pai_err_t put_dev(const char *root, const char *rel, unsigned minor)
{
    char p[GPU_PATH_MAX + 160];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    if (fs_mkdir_p(p, 0755) != PAI_OK)
        return PAI_E_IO;
    *slash = '/';
    struct stat st;
    if (stat(p, &st) == 0)
        return PAI_OK;
    if (mknod(p, S_IFCHR | 0666, makedev(SIM_MAJOR, minor)) == 0 && chmod(p, 0666) == 0)
        return PAI_OK;
    return put(root, rel, "");
}

static pai_err_t sim_gpu(const char *root, int i, int count, const char *model)
{
    char rel[160], text[1024];
    int node = i + 1, minor = 128 + i;
    /* MI250X-like: every GCD linked to every other by XGMI */
    snprintf(text, sizeof(text),
             "cpu_cores_count 0\nsimd_count 220\nmem_banks_count 1\ngpu_id %d\n"
             "vendor_id 4098\ndevice_id 29704\nlocation_id %d\ndomain 0\n"
             "drm_render_minor %d\nunique_id %llu\n",
             1000 + i, (0x10 + i) << 8, minor, 0x5a17c0de00000000ull + (unsigned)i);
    snprintf(rel, sizeof(rel), KFD_NODES "/%d/properties", node);
    pai_err_t rc = put(root, rel, text);
    snprintf(rel, sizeof(rel), KFD_NODES "/%d/name", node);
    if (rc == PAI_OK)
        rc = put(root, rel, "gfx90a\n");
    for (int k = 0, l = 0; rc == PAI_OK && k < count; k++) {
        if (k == i)
            continue;
        snprintf(rel, sizeof(rel), KFD_NODES "/%d/io_links/%d/properties", node, l++);
        snprintf(text, sizeof(text), "type %d\nnode_from %d\nnode_to %d\nweight 15\n", IOLINK_XGMI,
                 node, k + 1);
        rc = put(root, rel, text);
    }
    static const struct {
        const char *file, *fmt;
    } dev[] = {{"product_name", "%s\n"},
               {"mem_info_vram_total", "%lld\n"},
               {"gpu_busy_percent", "0\n"},
               {"mem_busy_percent", "0\n"},
               {"hwmon/hwmon0/temp1_input", "34000\n"},
               {"ras/umc_err_count", "ue: 0\nce: 0\n"}};
    for (size_t k = 0; rc == PAI_OK && k < ARRAY_LEN(dev); k++) {
        snprintf(rel, sizeof(rel), "sys/class/drm/renderD%d/device/%s", minor, dev[k].file);
        if (k == 0)
            snprintf(text, sizeof(text), dev[k].fmt, model);
        else if (k == 1)
            snprintf(text, sizeof(text), dev[k].fmt, (long long)amd_memory_mb(model) << 20);
        else
            snprintf(text, sizeof(text), "%s", dev[k].fmt);
        rc = put(root, rel, text);
    }
    snprintf(rel, sizeof(rel), "dev/dri/renderD%d", minor);
    return rc == PAI_OK ? put_dev(root, rel, (unsigned)minor) : rc;
}

pai_err_t gpu_amd_sim_tree(const char *root, int count, const char *model)
{
    const char *m = model && *model ? model : "AMD Instinct MI250X";
    count = count < 0 ? 0 : count > GPU_MAX ? GPU_MAX : count;
    pai_err_t rc = put(root, KFD_NODES "/0/properties",
                       "cpu_cores_count 64\nsimd_count 0\nmem_banks_count 1\ngpu_id 0\n");
    for (int i = 0; rc == PAI_OK && i < count; i++)
        rc = sim_gpu(root, i, count, m);
    return rc == PAI_OK ? put_dev(root, "dev/kfd", 0) : rc;
}
