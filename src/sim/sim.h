/*
 * sim.h - the trace-driven emulator behind `pai sim` (src/sim/).
 */
#ifndef PAI_SIM_SIM_H
#define PAI_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "sched/sched.h"

/* "pai", "fifo-quota", "first-fit" -> policy. */
PAI_MUST_CHECK pai_err_t sim_policy_parse(const char *name, sched_policy_t *out);
const char *sim_policy_name(sched_policy_t p);

/* Run one scenario file; prints "ok - FILE" or "not ok - FILE: why".
 * Returns 0 when it passed. */
int sim_scenario(const char *path);

typedef struct {
    const char *config; /* HiveD config file, or NULL for the uniform shape */
    int nodes, gpus_per_node, rack_nodes;
    const char *vcs_file; /* "name nodes" lines; NULL: the Philly VC sizes */
    const char *trace;    /* CSV: timestamp,duration,num_gpus,gpu_time,cluster */
    long limit;           /* replay only the first N jobs by submit time (0: all) */
    double load;          /* arrivals compressed by this factor (1: as recorded) */
    sched_policy_t policy;
    int64_t starvation_ms;
    bool json, private_report;
    bool oppo_overflow; /* submit as opportunistic when the VC's guarantee is taken */
    bool check;         /* check the invariants after every decision (opts.check) */
} sim_args_t;

/* Replay a trace; prints the table or JSON.  Returns the exit status. */
int sim_replay(const sim_args_t *a);

/* Randomised testing (sim_random.c): a generated HiveD config and steps
 * random events, each followed by the invariant checker.  Returns 0 when
 * nothing failed; else 1 with the failure in why (whylen bytes) and, when
 * emit_path is set, the sequence written there as a scenario file. */
int sim_random_run(uint64_t seed, int steps, const char *emit_path, char *why, size_t whylen);
/* The same driven by the fuzzer's bytes instead of a seed. */
int sim_random_bytes(const uint8_t *data, size_t len, int steps, char *why, size_t whylen);

#endif
