/*
 * fake_nvml.c - a stand-in for libnvidia-ml.so.1 with two "Fake H200" GPUs
 * joined by NVLink, built as build/tests/libfakenvml.so (mk/agent.mk) so
 * test_agent can check the NVML backend's dlopen path on machines without
 * a GPU.  Only the entry points gpu.c uses, with NVML's C ABI.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    unsigned long long total, free, used;
} fake_memory_t;

typedef struct {
    char bus_id_legacy[16];
    unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
} fake_pci_t;

int nvmlInit_v2(void);
int nvmlShutdown(void);
int nvmlDeviceGetCount_v2(unsigned *count);
int nvmlDeviceGetHandleByIndex_v2(unsigned index, void **dev);
int nvmlDeviceGetUUID(void *dev, char *buf, unsigned len);
int nvmlDeviceGetName(void *dev, char *buf, unsigned len);
int nvmlDeviceGetMemoryInfo(void *dev, fake_memory_t *mem);
int nvmlDeviceGetPciInfo_v3(void *dev, fake_pci_t *pci);
int nvmlDeviceGetTopologyCommonAncestor(void *a, void *b, int *level);

static int index_of(void *dev)
{
    return (int)(uintptr_t)dev - 1;
}

int nvmlInit_v2(void)
{
    return 0;
}

int nvmlShutdown(void)
{
    return 0;
}

int nvmlDeviceGetCount_v2(unsigned *count)
{
    *count = 2;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned index, void **dev)
{
    if (index >= 2)
        return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *dev = (void *)(uintptr_t)(index + 1);
    return 0;
}

int nvmlDeviceGetUUID(void *dev, char *buf, unsigned len)
{
    snprintf(buf, len, "GPU-fake-%d", index_of(dev));
    return 0;
}

int nvmlDeviceGetName(void *dev, char *buf, unsigned len)
{
    (void)dev;
    snprintf(buf, len, "Fake H200");
    return 0;
}

int nvmlDeviceGetMemoryInfo(void *dev, fake_memory_t *mem)
{
    (void)dev;
    mem->total = 143771ull * 1024 * 1024;
    mem->free = mem->total;
    mem->used = 0;
    return 0;
}

int nvmlDeviceGetPciInfo_v3(void *dev, fake_pci_t *pci)
{
    memset(pci, 0, sizeof(*pci));
    snprintf(pci->bus_id, sizeof(pci->bus_id), "00000000:%02X:00.0", 0x1A + index_of(dev));
    return 0;
}

int nvmlDeviceGetTopologyCommonAncestor(void *a, void *b, int *level)
{
    *level = a == b ? 0 : 10;
    return 0;
}

/* Sampling (the agent's metrics): GPU i is 40 + 20 i percent busy, memory
 * 10 + i, 50 + i degrees, i corrected ECC errors and no uncorrected one.
 * FAKE_NVML_LOST=i makes GPU i answer NVML_ERROR_GPU_IS_LOST (15). */
typedef struct {
    unsigned gpu, memory;
} fake_util_t;

int nvmlDeviceGetUtilizationRates(void *dev, fake_util_t *u);
int nvmlDeviceGetTemperature(void *dev, int sensor, unsigned *temp);
int nvmlDeviceGetTotalEccErrors(void *dev, int type, int counter, unsigned long long *count);

static int lost(void *dev)
{
    const char *v = getenv("FAKE_NVML_LOST");
    return v && *v && v[0] - '0' == index_of(dev);
}

int nvmlDeviceGetUtilizationRates(void *dev, fake_util_t *u)
{
    if (lost(dev))
        return 15;
    u->gpu = 40 + 20 * (unsigned)index_of(dev);
    u->memory = 10 + (unsigned)index_of(dev);
    return 0;
}

int nvmlDeviceGetTemperature(void *dev, int sensor, unsigned *temp)
{
    if (lost(dev) || sensor != 0)
        return lost(dev) ? 15 : 2;
    *temp = 50 + (unsigned)index_of(dev);
    return 0;
}

int nvmlDeviceGetTotalEccErrors(void *dev, int type, int counter, unsigned long long *count)
{
    (void)counter;
    if (lost(dev))
        return 15;
    *count = type == 0 ? (unsigned long long)index_of(dev) : 0;
    return 0;
}

/* XID events: FAKE_NVML_XID="i:x" delivers one critical XID x on GPU i,
 * once per event set (the first wait after registration). */
typedef struct {
    void *device;
    unsigned long long type, data;
    unsigned gpu_instance, compute_instance;
} fake_event_t;

int nvmlEventSetCreate(void **set);
int nvmlDeviceRegisterEvents(void *dev, unsigned long long types, void *set);
int nvmlEventSetWait_v2(void *set, fake_event_t *data, unsigned timeout_ms);
int nvmlEventSetFree(void *set);

int nvmlEventSetCreate(void **set)
{
    *set = calloc(1, sizeof(int));
    return *set ? 0 : 3;
}

int nvmlDeviceRegisterEvents(void *dev, unsigned long long types, void *set)
{
    (void)dev;
    return types == 0x8ull && set ? 0 : 2;
}

int nvmlEventSetWait_v2(void *set, fake_event_t *data, unsigned timeout_ms)
{
    int *delivered = set;
    const char *v = getenv("FAKE_NVML_XID");
    unsigned idx, xid;
    (void)timeout_ms;
    if (*delivered || !v || sscanf(v, "%u:%u", &idx, &xid) != 2 || idx >= 2)
        return 10; /* NVML_ERROR_TIMEOUT */
    *delivered = 1;
    memset(data, 0, sizeof(*data));
    data->device = (void *)(uintptr_t)(idx + 1);
    data->type = 0x8ull;
    data->data = xid;
    return 0;
}

int nvmlEventSetFree(void *set)
{
    free(set);
    return 0;
}
