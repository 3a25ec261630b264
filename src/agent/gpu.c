/*
 * gpu.c - GPU discovery backends (see gpu.h).
 * NVML is loaded with dlopen so the binary runs on machines without the
 * driver; only the handful of entry points we need are declared here, with
 * NVML's documented C ABI.
 */
#include "agent/gpu.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"

/* ---- simulated ---------------------------------------------------------- */

static int64_t model_memory_mb(const char *model)
{
    static const struct {
        const char *model;
        int64_t mb;
    } table[] = {{"H200", 143771}, {"H100", 81559}, {"A100", 81920}, {"V100", 32768},
                 {"K80", 12288},   {"T4", 15360},   {"P100", 16384}};
    for (size_t i = 0; i < ARRAY_LEN(table); i++)
        if (strstr(model, table[i].model))
            return table[i].mb;
    return 16384;
}

void gpu_simulate(gpu_set_t *out, int count, const char *model, const char *node)
{
    memset(out, 0, sizeof(*out));
    out->backend = "sim";
    out->simulated = true;
    out->n = count < 0 ? 0 : count > GPU_MAX ? GPU_MAX : (size_t)count;
    for (size_t i = 0; i < out->n; i++) {
        gpu_info_t *g = &out->gpus[i];
        g->index = (int)i;
        snprintf(g->uuid, sizeof(g->uuid), "GPU-sim-%.40s-%zu", node ? node : "node", i);
        str_copy(g->model, model && *model ? model : "sim", sizeof(g->model));
        g->memory_mb = model_memory_mb(g->model);
        snprintf(g->pci_bus, sizeof(g->pci_bus), "00000000:%02zX:00.0", 0x10 + i);
        g->healthy = true;
    }
    /* two PCIe switches per NUMA node, four GPUs per switch (a DGX-like box) */
    for (size_t i = 0; i < out->n; i++)
        for (size_t j = 0; j < out->n; j++)
            out->topo[i][j] = i == j ? 0 : i / 4 == j / 4 ? 20 : i / 8 == j / 8 ? 40 : 60;
    out->has_topo = true;
}

static pai_err_t sim_discover(gpu_set_t *out, int count, const char *model)
{
    gpu_simulate(out, count, model, NULL);
    return PAI_OK;
}

/* ---- NVML via dlopen ---------------------------------------------------- */

typedef void *nvml_dev_t;
typedef struct {
    unsigned long long total, free, used;
} nvml_memory_t;
typedef struct {
    char bus_id_legacy[16];
    unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
} nvml_pci_t;

typedef struct {
    unsigned gpu, memory;
} nvml_util_t;

/* nvmlEventData_t */
typedef struct {
    nvml_dev_t device;
    unsigned long long type, data;
    unsigned gpu_instance, compute_instance;
} nvml_event_t;

#define NVML_EVENT_XID_CRITICAL 0x8ull
#define NVML_ERROR_TIMEOUT      10

typedef struct {
    void *lib;
    int (*init)(void);
    int (*shutdown)(void);
    int (*count)(unsigned *);
    int (*handle)(unsigned, nvml_dev_t *);
    int (*uuid)(nvml_dev_t, char *, unsigned);
    int (*name)(nvml_dev_t, char *, unsigned);
    int (*memory)(nvml_dev_t, nvml_memory_t *);
    int (*pci)(nvml_dev_t, nvml_pci_t *);
    int (*topo)(nvml_dev_t, nvml_dev_t, int *);
    /* sampling; optional */
    int (*util)(nvml_dev_t, nvml_util_t *);
    int (*temp)(nvml_dev_t, int, unsigned *);
    int (*ecc)(nvml_dev_t, int, int, unsigned long long *);
    /* critical XID events; optional */
    int (*ev_create)(void **);
    int (*ev_register)(nvml_dev_t, unsigned long long, void *);
    int (*ev_wait)(void *, nvml_event_t *, unsigned);
    int (*ev_free)(void *);
} nvml_t;

/* Symbol table: name -> slot (tables, not code). */
static bool nvml_load(nvml_t *n)
{
    const struct {
        const char *sym;
        void **slot;
        bool required;
    } syms[] = {
        {.sym = "nvmlInit_v2", .slot = (void **)&n->init, .required = true},
        {.sym = "nvmlShutdown", .slot = (void **)&n->shutdown, .required = true},
        {.sym = "nvmlDeviceGetCount_v2", .slot = (void **)&n->count, .required = true},
        {.sym = "nvmlDeviceGetHandleByIndex_v2", .slot = (void **)&n->handle, .required = true},
        {.sym = "nvmlDeviceGetUUID", .slot = (void **)&n->uuid, .required = true},
        {.sym = "nvmlDeviceGetName", .slot = (void **)&n->name, .required = true},
        {.sym = "nvmlDeviceGetMemoryInfo", .slot = (void **)&n->memory, .required = true},
        {.sym = "nvmlDeviceGetPciInfo_v3", .slot = (void **)&n->pci},
        {.sym = "nvmlDeviceGetTopologyCommonAncestor", .slot = (void **)&n->topo},
        {.sym = "nvmlDeviceGetUtilizationRates", .slot = (void **)&n->util},
        {.sym = "nvmlDeviceGetTemperature", .slot = (void **)&n->temp},
        {.sym = "nvmlDeviceGetTotalEccErrors", .slot = (void **)&n->ecc},
        {.sym = "nvmlEventSetCreate", .slot = (void **)&n->ev_create},
        {.sym = "nvmlDeviceRegisterEvents", .slot = (void **)&n->ev_register},
        {.sym = "nvmlEventSetWait_v2", .slot = (void **)&n->ev_wait},
        {.sym = "nvmlEventSetFree", .slot = (void **)&n->ev_free},
    };
    const char *path = getenv("PAI_NVML_LIB");
    n->lib = dlopen(path && *path ? path : "libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!n->lib)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(syms); i++) {
        *syms[i].slot = dlsym(n->lib, syms[i].sym);
        if (!*syms[i].slot && syms[i].required) {
            dlclose(n->lib);
            return false;
        }
    }
    return true;
}

static void nvml_fill(nvml_t *n, nvml_dev_t *devs, gpu_set_t *out)
{
    for (size_t i = 0; i < out->n; i++) {
        gpu_info_t *g = &out->gpus[i];
        nvml_memory_t mem;
        nvml_pci_t pci;
        g->index = (int)i;
        g->healthy = n->handle((unsigned)i, &devs[i]) == 0;
        if (!g->healthy)
            continue;
        n->uuid(devs[i], g->uuid, sizeof(g->uuid));
        n->name(devs[i], g->model, sizeof(g->model));
        if (n->memory(devs[i], &mem) == 0)
            g->memory_mb = (int64_t)(mem.total / (1024 * 1024));
        if (n->pci && n->pci(devs[i], &pci) == 0)
            str_copy(g->pci_bus, pci.bus_id, sizeof(g->pci_bus));
    }
    out->has_topo = n->topo != NULL;
    for (size_t i = 0; n->topo && i < out->n; i++)
        for (size_t j = 0; j < out->n; j++) {
            int level = 0;
            if (i != j && (!out->gpus[i].healthy || !out->gpus[j].healthy ||
                           n->topo(devs[i], devs[j], &level) != 0))
                level = 60;
            out->topo[i][j] = i == j ? 0 : level;
        }
}

static pai_err_t nvml_discover(gpu_set_t *out, int count, const char *model)
{
    nvml_t n = {0};
    unsigned c = 0;
    nvml_dev_t devs[GPU_MAX];
    (void)count;
    (void)model;
    if (!nvml_load(&n))
        return PAI_E_UNAVAILABLE;
    if (n.init() != 0) {
        dlclose(n.lib);
        return PAI_E_UNAVAILABLE;
    }
    memset(out, 0, sizeof(*out));
    out->backend = "nvml";
    if (n.count(&c) == 0)
        out->n = c > GPU_MAX ? GPU_MAX : c;
    nvml_fill(&n, devs, out);
    n.shutdown();
    dlclose(n.lib);
    return PAI_OK;
}

/* ---- NVML sampling ------------------------------------------------------ */

struct gpu_sampler {
    nvml_t nvml;
    size_t n;
    nvml_dev_t devs[GPU_MAX];
    void *events; /* XID event set; NULL when the driver gives none */
    int xid[GPU_MAX];
};

/* Register every GPU for critical XID events (best effort: a GPU that
 * refuses, or a driver without events, is sampled without them). */
static void xid_open(gpu_sampler_t *s)
{
    nvml_t *n = &s->nvml;
    if (!n->ev_create || !n->ev_register || !n->ev_wait || !n->ev_free ||
        n->ev_create(&s->events) != 0) {
        s->events = NULL;
        return;
    }
    for (size_t i = 0; i < s->n; i++)
        if (n->handle((unsigned)i, &s->devs[i]) == 0)
            (void)n->ev_register(s->devs[i], NVML_EVENT_XID_CRITICAL, s->events);
}

/* XIDs that blame the application, not the GPU (the NVIDIA device
 * plugin's list): a task's bad kernel must not take a GPU out. */
static bool xid_is_application(unsigned long long x)
{
    static const unsigned long long app[] = {13, 31, 43, 45, 68, 109};
    for (size_t i = 0; i < ARRAY_LEN(app); i++)
        if (x == app[i])
            return true;
    return false;
}

/* Take the pending events without waiting; a critical XID sticks to its GPU. */
static void xid_drain(gpu_sampler_t *s)
{
    nvml_event_t ev;
    for (int k = 0; s->events && k < 64; k++) {
        memset(&ev, 0, sizeof(ev));
        if (s->nvml.ev_wait(s->events, &ev, 0) != 0)
            return; /* NVML_ERROR_TIMEOUT: none pending */
        if (!(ev.type & NVML_EVENT_XID_CRITICAL) || xid_is_application(ev.data))
            continue;
        for (size_t i = 0; i < s->n; i++)
            if (s->devs[i] == ev.device)
                s->xid[i] = ev.data > 0 && ev.data < 1000000 ? (int)ev.data : 1;
    }
}

gpu_sampler_t *gpu_sampler_new(const gpu_set_t *set)
{
    if (!set->backend || strcmp(set->backend, "nvml") != 0)
        return NULL;
    gpu_sampler_t *s = xcalloc(1, sizeof(*s));
    if (!nvml_load(&s->nvml)) {
        free(s);
        return NULL;
    }
    if (s->nvml.init() != 0) {
        dlclose(s->nvml.lib);
        free(s);
        return NULL;
    }
    s->n = set->n;
    xid_open(s);
    return s;
}

/* NVML enums: NVML_TEMPERATURE_GPU 0; NVML_MEMORY_ERROR_TYPE_CORRECTED 0,
 * UNCORRECTED 1; NVML_VOLATILE_ECC 0 (since the driver loaded). */
bool gpu_sampler_read(gpu_sampler_t *s, size_t index, gpu_sample_t *out)
{
    nvml_t *n = &s->nvml;
    nvml_util_t u;
    unsigned t;
    unsigned long long c;
    *out = (gpu_sample_t){
        .util = -1, .mem_util = -1, .temp_c = -1, .ecc_single = -1, .ecc_double = -1};
    xid_drain(s);
    if (index < s->n)
        out->xid = s->xid[index];
    /* a handle is looked up each time: a GPU that fell off the bus fails here */
    if (index >= s->n || n->handle((unsigned)index, &s->devs[index]) != 0)
        return false;
    nvml_dev_t d = s->devs[index];
    out->ok = true;
    if (n->util && n->util(d, &u) == 0) {
        out->util = u.gpu;
        out->mem_util = u.memory;
    } else if (n->util) {
        out->ok = false; /* NVML_ERROR_GPU_IS_LOST and friends */
    }
    if (n->temp && n->temp(d, 0, &t) == 0)
        out->temp_c = t;
    if (n->ecc && n->ecc(d, 0, 0, &c) == 0)
        out->ecc_single = (int64_t)c;
    if (n->ecc && n->ecc(d, 1, 0, &c) == 0)
        out->ecc_double = (int64_t)c;
    return out->ok;
}

void gpu_sampler_free(gpu_sampler_t *s)
{
    if (!s)
        return;
    if (s->events)
        s->nvml.ev_free(s->events);
    s->nvml.shutdown();
    dlclose(s->nvml.lib);
    free(s);
}

/* ---- injected faults (simulated GPUs) ----------------------------------- */

void gpu_apply_faults(const char *text, gpu_sample_t *out, size_t n)
{
    char *copy = xstrdup(text ? text : ""), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char kind[16] = "";
        int idx = -1, xid = 0;
        l[strcspn(l, "#")] = '\0';
        if (sscanf(l, "%d %15s %d", &idx, kind, &xid) < 2 || idx < 0 || (size_t)idx >= n)
            continue;
        if (strcmp(kind, "lost") == 0)
            out[idx].ok = false;
        else if (strcmp(kind, "ecc") == 0)
            out[idx].ecc_double = out[idx].ecc_double > 0 ? out[idx].ecc_double : 1;
        else if (strcmp(kind, "xid") == 0)
            out[idx].xid = xid > 0 ? xid : 79; /* 79: fallen off the bus */
    }
    free(copy);
}

/* ---- nvidia-smi --------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t l = strlen(s);
    while (l && (s[l - 1] == ' ' || s[l - 1] == '\r' || s[l - 1] == '\n'))
        s[--l] = '\0';
    return s;
}

/* One CSV line "index, uuid, name, memory.total, pci.bus_id". */
static bool smi_line(char *line, gpu_info_t *g)
{
    char *f[5], *save = NULL;
    size_t k = 0;
    for (char *t = strtok_r(line, ",", &save); t && k < 5; t = strtok_r(NULL, ",", &save))
        f[k++] = trim(t);
    int64_t idx, mem;
    if (k != 5 || str_to_i64(f[0], 0, GPU_MAX - 1, &idx) != PAI_OK ||
        str_to_i64(f[3], 0, INT64_MAX / 2, &mem) != PAI_OK)
        return false;
    memset(g, 0, sizeof(*g));
    g->index = (int)idx;
    str_copy(g->uuid, f[1], sizeof(g->uuid));
    str_copy(g->model, f[2], sizeof(g->model));
    g->memory_mb = mem;
    str_copy(g->pci_bus, f[4], sizeof(g->pci_bus));
    g->healthy = true;
    return true;
}

pai_err_t gpu_parse_smi_csv(const char *text, gpu_set_t *out)
{
    char *copy = xstrdup(text), *save = NULL;
    memset(out, 0, sizeof(*out));
    out->backend = "nvidia-smi";
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!*trim(l))
            continue;
        if (out->n >= GPU_MAX || !smi_line(l, &out->gpus[out->n])) {
            free(copy);
            return PAI_E_INVALID;
        }
        out->n++;
    }
    free(copy);
    return PAI_OK;
}

/* `nvidia-smi topo -m` link names -> NVML levels. */
static int smi_level(const char *tok)
{
    static const struct {
        const char *name;
        int level;
    } table[] = {{"X", 0},     {"PIX", 20}, {"PXB", 30}, {"PHB", 40},
                 {"NODE", 50}, {"SYS", 60}, {"SOC", 60}, {"NV", 10}};
    for (size_t i = 0; i < ARRAY_LEN(table); i++)
        if (str_has_prefix(tok, table[i].name))
            return table[i].level;
    return -1;
}

void gpu_parse_smi_topo(const char *text, gpu_set_t *out)
{
    char *copy = xstrdup(text), *save = NULL;
    size_t rows = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        int row;
        if (*l == ' ' || *l == '\t')
            continue; /* the header row starts with blanks */
        char *s2 = NULL, *tok = strtok_r(l, " \t", &s2);
        if (!tok || sscanf(tok, "GPU%d", &row) != 1 || row < 0 || (size_t)row >= out->n)
            continue;
        for (size_t j = 0; j < out->n; j++) {
            tok = strtok_r(NULL, " \t", &s2);
            int lv = tok ? smi_level(tok) : -1;
            out->topo[row][j] = lv < 0 ? 60 : lv;
        }
        rows++;
    }
    out->has_topo = out->n > 0 && rows == out->n;
    free(copy);
}

static pai_err_t run_capture(const char *cmd, buf_t *b)
{
    FILE *p = popen(cmd, "r");
    char chunk[4096];
    size_t n;
    if (!p)
        return PAI_E_UNAVAILABLE;
    pai_err_t rc = PAI_OK;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        if (rc == PAI_OK)
            rc = buf_append(b, chunk, n);
    if (pclose(p) != 0)
        return PAI_E_UNAVAILABLE;
    return rc;
}

static pai_err_t smi_discover(gpu_set_t *out, int count, const char *model)
{
    buf_t b;
    (void)count;
    (void)model;
    buf_init(&b, 1 << 20);
    pai_err_t rc = run_capture("nvidia-smi --query-gpu=index,uuid,name,memory.total,pci.bus_id "
                               "--format=csv,noheader,nounits 2>/dev/null",
                               &b);
    if (rc == PAI_OK)
        rc = gpu_parse_smi_csv(buf_str(&b), out);
    buf_reset(&b);
    if (rc == PAI_OK && run_capture("nvidia-smi topo -m 2>/dev/null", &b) == PAI_OK)
        gpu_parse_smi_topo(buf_str(&b), out);
    buf_free(&b);
    return rc == PAI_OK ? PAI_OK : PAI_E_UNAVAILABLE;
}

/* ---- table -------------------------------------------------------------- */

static pai_err_t amd_discover(gpu_set_t *out, int count, const char *model)
{
    (void)count;
    (void)model;
    return gpu_amd_discover(NULL, out);
}

/* "amd-sim" needs the node's work dir for its tree: node.c makes it. */
static pai_err_t amd_sim_discover(gpu_set_t *out, int count, const char *model)
{
    (void)out;
    (void)count;
    (void)model;
    return PAI_E_UNAVAILABLE;
}

static const gpu_ops_t backends[] = {
    {.name = "nvml", .discover = nvml_discover},
    {.name = "nvidia-smi", .discover = smi_discover},
    {.name = "amd", .discover = amd_discover},
    {.name = "sim", .discover = sim_discover},
    {.name = "amd-sim", .discover = amd_sim_discover},
};

const gpu_ops_t *gpu_backend(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(backends); i++)
        if (strcmp(backends[i].name, name) == 0)
            return &backends[i];
    return NULL;
}

void gpu_discover_auto(gpu_set_t *out)
{
    if (backends[0].discover(out, 0, NULL) == PAI_OK)
        return;
    if (backends[1].discover(out, 0, NULL) == PAI_OK)
        return;
    if (backends[2].discover(out, 0, NULL) == PAI_OK)
        return;
    memset(out, 0, sizeof(*out));
    out->backend = "none";
}
