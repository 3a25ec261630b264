/*
 * gpu.h - GPU discovery behind an ops struct.
 *
 * Backends, tried in this order by gpu_discover_auto(): "nvml" (dlopen of
 * libnvidia-ml.so.1 at run time: count, UUID, model, memory, PCI bus and the
 * GPU-to-GPU topology), "nvidia-smi" (parses its CSV and `topo -m` output),
 * and "sim" (a simulated node: --gpus N --gpu-model M).
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

typedef struct {
    int index;
    char uuid[96];
    char model[96];
    int64_t memory_mb;
    char pci_bus[32];
    bool healthy;
} gpu_info_t;

typedef struct {
    const char *backend; /* which backend answered */
    bool simulated;      /* a simulated backend: faults can be injected */
    size_t n;
    gpu_info_t gpus[GPU_MAX];
    int topo[GPU_MAX][GPU_MAX]; /* NVML levels; valid when has_topo */
    bool has_topo;
} gpu_set_t;

typedef struct {
    const char *name;
    /* Fill *out; PAI_E_UNAVAILABLE when the backend cannot answer here. */
    PAI_MUST_CHECK pai_err_t (*discover)(gpu_set_t *out, int sim_count, const char *sim_model);
} gpu_ops_t;

const gpu_ops_t *gpu_backend(const char *name);
/* Real GPUs first (nvml, then nvidia-smi); none found: an empty set. */
void gpu_discover_auto(gpu_set_t *out);
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
