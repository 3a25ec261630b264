/*
 * gpu.h - accelerator discovery behind an ops struct.
 *
 * Backends, tried in this order by gpu_discover_auto(): "nvml" (dlopen of
 * libnvidia-ml.so.1 at run time: count, UUID, model, memory, PCI bus and the
 * GPU-to-GPU topology), "nvidia-smi" (parses its CSV and `topo -m` output),
 * "amd" (AMD GPUs from the KFD topology in sysfs, gpu_amd.c); besides them
 * "sim" (a simulated NVIDIA node: --gpus N --gpu-model M), "amd-sim" (a
 * fake sysfs tree the agent writes, read by the "amd" backend) and the
 * generic device classes of --device-class (FPGAs and other accelerators
 * found by a device path glob, gpu_class.c).
 * Every set says what to give a task holding some of its devices (their
 * device nodes, the class's shared nodes) and which env vars name them
 * (gpu_task_env).
 * Topology levels are NVML's: 0 same GPU, 10 same board, 20 one PCIe
 * switch, 30 several switches, 40 same host bridge, 50 same NUMA node,
 * 60 across NUMA nodes (SYSTEM).
 */
#ifndef PAI_AGENT_GPU_H
#define PAI_AGENT_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/limits.h"

#define GPU_MAX ((int)PAI_MAX_NODE_GPUS)

#define GPU_PATH_MAX   256
#define GPU_SHARED_MAX 4

typedef struct {
    int index;
    char uuid[96];
    char model[96];
    int64_t memory_mb;
    char pci_bus[32];
    bool healthy;
    /* The device node a task holding it is given ("" for NVIDIA:
     * /dev/nvidiaN under --gpu-device-dir, the runtime's own rule). */
    char dev[GPU_PATH_MAX];
    char sysfs[GPU_PATH_MAX]; /* amd: its PCI device dir (sampling); "" otherwise */
} gpu_info_t;

/* What kind of accelerator a set holds: the task env and devices differ. */
typedef enum { GPU_VENDOR_NVIDIA = 0, GPU_VENDOR_AMD, GPU_VENDOR_CLASS } gpu_vendor_t;

typedef struct {
    const char *backend; /* which backend answered */
    gpu_vendor_t vendor;
    bool simulated; /* a simulated backend: faults can be injected */
    size_t n;
    gpu_info_t gpus[GPU_MAX];
    int topo[GPU_MAX][GPU_MAX]; /* NVML levels; valid when has_topo */
    bool has_topo;
    /* Device nodes every task holding one of the devices is also given (amd:
     * /dev/kfd; a class's shared=); nshared of them. */
    char shared[GPU_SHARED_MAX][GPU_PATH_MAX];
    size_t nshared;
    char env_name[64];   /* a class's env var listing a task's devices; "" otherwise */
    char class_name[64]; /* a class's name (its metrics' vender label); "" otherwise */
} gpu_set_t;

typedef struct {
    const char *name;
    /* Fill *out; PAI_E_UNAVAILABLE when the backend cannot answer here. */
    PAI_MUST_CHECK pai_err_t (*discover)(gpu_set_t *out, int sim_count, const char *sim_model);
} gpu_ops_t;

const gpu_ops_t *gpu_backend(const char *name);
/* Real GPUs first (nvml, then nvidia-smi, then AMD's sysfs); none found: an
 * empty set. */
void gpu_discover_auto(gpu_set_t *out);

/* ---- AMD (gpu_amd.c) ----------------------------------------------------- */

/* AMD GPUs from the KFD topology under root ("" or NULL: the host's):
 * <root>/sys/class/kfd/kfd/topology/nodes/N/properties (nodes with SIMDs
 * are GPUs, in node order: ROCm's device order), their render node
 * <root>/dev/dri/renderD<drm_render_minor>, <root>/dev/kfd shared, the
 * PCI device <root>/sys/class/drm/renderD<minor>/device (product_name,
 * mem_info_vram_total, gpu_busy_percent, ras/umc_err_count), XGMI links
 * from io_links.  PAI_E_UNAVAILABLE when there is no KFD or no GPU.  A root
 * other than the host's makes the set simulated. */
PAI_MUST_CHECK pai_err_t gpu_amd_discover(const char *root, gpu_set_t *out);
/* Write a fake KFD/DRM tree of count AMD GPUs of model under root (tests,
 * `--gpu-backend amd-sim`); device nodes are character devices of the
 * experimental major 120 when this process may make them, else files. */
PAI_MUST_CHECK pai_err_t gpu_amd_sim_tree(const char *root, int count, const char *model);

/* ---- generic device classes (gpu_class.c) ------------------------------- */

/* A class from its config, "name=fpga,sku=U250,paths=/dev/fpga*,
 * env=FPGA_VISIBLE_DEVICES[,shared=/dev/fpgactl[:...]]": every device node
 * the glob matches (in natural order) is one device of model sku; a task
 * holding some gets them, the shared nodes and env=<their indices>.
 * PAI_E_INVALID (reason in err) for a malformed spec. */
PAI_MUST_CHECK pai_err_t gpu_class_discover(const char *spec, const char *node, gpu_set_t *out,
                                            char *err, size_t errlen);

/* ---- what a task gets ----------------------------------------------------- */

/* The env vars naming a task's devices (gpus: indices in the set, n of
 * them; container: the task runs in a container, where only its own
 * devices exist): amd HIP_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES and
 * PAI_AMD_VISIBLE_DEVICES; a class its env var; NVIDIA none here (the
 * server sends CUDA_/NVIDIA_VISIBLE_DEVICES).  Fills out[] with malloc'ed
 * "K=V" strings (room for 4); returns how many. */
size_t gpu_task_env(const gpu_set_t *set, const int *gpus, size_t n, bool container, char **out);
/* Where a device node lives in a container: from its last "/dev/" on (a
 * fake tree's <root>/dev/dri/renderD128 -> /dev/dri/renderD128). */
const char *gpu_container_path(const char *host);
/* Simulated set (for tests, `pai up`, hollow nodes). */
void gpu_simulate(gpu_set_t *out, int count, const char *model, const char *node);

/* ---- sampling (the agent's metrics, docs/monitoring.md) ---------------- */

/* One GPU's figures at one time; a field the driver does not give is -1. */
typedef struct {
    bool ok;                        /* the GPU answered (false: lost, fell off the bus) */
    double util;                    /* busy percent of the last sample period */
    double mem_util;                /* memory-controller busy percent */
    double temp_c;                  /* core temperature */
    int64_t ecc_single, ecc_double; /* corrected / uncorrected, volatile */
    int xid;                        /* last critical XID (NVML event), sticky; 0: none */
} gpu_sample_t;

/* A GPU is healthy when discovery found it and, once sampled, it still
 * answers, has no uncorrectable ECC error and no critical XID. */
static inline bool gpu_sample_healthy(const gpu_sample_t *s)
{
    return s->ok && s->ecc_double <= 0 && s->xid == 0;
}

/* One AMD GPU's figures from sysfs (busy percents, edge temperature,
 * uncorrectable RAS errors); ok false when its device dir is gone. */
void gpu_amd_sample(const gpu_info_t *g, gpu_sample_t *out);

/* Injected faults of simulated GPUs (tests, docs/operations.md): the
 * fault file holds one line per faulty GPU, "INDEX lost", "INDEX ecc" or
 * "INDEX xid N" ('#' starts a comment).  Applied to out, one sample per
 * GPU of the set (n of them): lost -> ok false, ecc -> one uncorrected
 * error, xid -> that XID.  Unknown lines are ignored. */
void gpu_apply_faults(const char *text, gpu_sample_t *out, size_t n);

/* A handle kept open between samples: loading NVML costs milliseconds,
 * a sample microseconds.  NULL from gpu_sampler_new when the set's backend
 * gives no live figures (sim, none, nvidia-smi: the agent computes or
 * omits them). */
typedef struct gpu_sampler gpu_sampler_t;
gpu_sampler_t *gpu_sampler_new(const gpu_set_t *set);
/* Figures of GPU index (0 .. set->n-1) now; false when it did not answer.
 * A critical XID seen since the sampler opened stays in out->xid (the GPU
 * needs a reset: the NVIDIA device plugin's rule; XIDs that blame the
 * application, 13 31 43 45 68 109, are not counted). */
bool gpu_sampler_read(gpu_sampler_t *s, size_t index, gpu_sample_t *out);
void gpu_sampler_free(gpu_sampler_t *s);

/* Parsers of nvidia-smi output (exposed for the unit tests). */
PAI_MUST_CHECK pai_err_t gpu_parse_smi_csv(const char *text, gpu_set_t *out);
void gpu_parse_smi_topo(const char *text, gpu_set_t *out);

#endif
