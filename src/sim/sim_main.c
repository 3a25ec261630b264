/*
 * sim_main.c - `pai sim`: the scheduler emulator's command line.
 *
 *   pai sim --scenario FILE...                 run scheduler scenario files
 *   pai sim --random SEED [--seeds K] [--steps N] [--emit FILE]
 *                                              randomised test (sim_random.c); the
 *                                              first failing sequence goes to FILE
 *   pai sim [--config HIVED.yaml | --nodes N --gpus-per-node G [--rack R] [--vcs FILE]]
 *           --trace philly.csv [--policy pai|fifo-quota|first-fit] [--limit N]
 *           [--starvation-min M] [--json] [--private] [--check]
 *   --check: the scheduler checks its invariants after every decision; any
 *            violation is reported and the exit status is 1
 */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/util.h"
#include "sim/sim.h"

static const struct {
    const char *name;
    sched_policy_t policy;
} policies[] = {
    {"pai", SCHED_POLICY_PAI},
    {"fifo-quota", SCHED_POLICY_FIFO_QUOTA},
    {"first-fit", SCHED_POLICY_FIRST_FIT},
};

pai_err_t sim_policy_parse(const char *name, sched_policy_t *out)
{
    for (size_t i = 0; i < ARRAY_LEN(policies); i++)
        if (strcmp(policies[i].name, name) == 0) {
            *out = policies[i].policy;
            return PAI_OK;
        }
    return PAI_E_INVALID;
}

const char *sim_policy_name(sched_policy_t p)
{
    for (size_t i = 0; i < ARRAY_LEN(policies); i++)
        if (policies[i].policy == p)
            return policies[i].name;
    return "?";
}

static void usage(void)
{
    fprintf(stderr,
            "usage: pai sim --scenario FILE...\n"
            "       pai sim --random SEED [--seeds K] [--steps N] [--emit FILE] [--check]\n"
            "       pai sim [--config HIVED.yaml | --nodes N --gpus-per-node G [--rack R]\n"
            "               [--vcs FILE]] --trace CSV [--policy pai|fifo-quota|first-fit]\n"
            "               [--limit JOBS] [--load X] [--starvation-min M] [--json] [--private]\n"
            "               [--oppo-overflow] [--check]\n"
            "  --load X: compress arrival times X-fold (a busier cluster)\n"
            "  --oppo-overflow: a job whose VC guarantee is taken is submitted opportunistic\n"
            "  --check: check the scheduler's invariants after every decision (slower)\n"
            "  --vcs FILE: lines \"name nodes\"; default: the Philly VC sizes (352 nodes)\n");
}

static int run_scenarios(int argc, char **argv, int i)
{
    int failed = 0, n = 0;
    for (; i < argc; i++, n++)
        failed += sim_scenario(argv[i]) != 0;
    if (n == 0) {
        usage();
        return 2;
    }
    return failed ? 1 : 0;
}

static int parse_int_arg(const char *v, long min, long max, long *out)
{
    int64_t x;
    if (!v || str_to_i64(v, min, max, &x) != PAI_OK)
        return -1;
    *out = (long)x;
    return 0;
}

/* pai sim --random SEED [--seeds K] [--steps N] [--emit FILE] [--check] */
static int run_random(int argc, char **argv, int i)
{
    long seed = 0, seeds = 1, steps = 300;
    const char *emit = NULL;
    if (i >= argc || parse_int_arg(argv[i], 0, 1000000000L, &seed) != 0)
        return usage(), 2;
    for (i++; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--seeds") == 0 && parse_int_arg(val, 1, 100000000L, &seeds) == 0)
            i++;
        else if (strcmp(o, "--steps") == 0 && parse_int_arg(val, 1, 1000000L, &steps) == 0)
            i++;
        else if (strcmp(o, "--emit") == 0 && val)
            emit = val, i++;
        else if (strcmp(o, "--check") != 0)
            return fprintf(stderr, "pai sim: bad argument %s\n", o), usage(), 2;
    }
    int failed = 0;
    for (long k = 0; k < seeds; k++) {
        char why[1200];
        if (sim_random_run((uint64_t)(seed + k), (int)steps, failed ? NULL : emit, why,
                           sizeof(why)) == 0) {
            printf("ok - random seed %ld\n", seed + k);
            continue;
        }
        printf("not ok - random %s\n", why);
        if (!failed && emit)
            printf("# the sequence is in %s\n", emit);
        failed++;
    }
    return failed ? 1 : 0;
}

int sim_main(int argc, char **argv)
{
    sim_args_t a = {.gpus_per_node = 8, .rack_nodes = 0, .policy = SCHED_POLICY_PAI, .load = 1};
    long v;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--scenario") == 0)
            return run_scenarios(argc, argv, i + 1);
        if (strcmp(o, "--random") == 0)
            return run_random(argc, argv, i + 1);
        if (strcmp(o, "--json") == 0)
            a.json = true;
        else if (strcmp(o, "--private") == 0)
            a.private_report = true;
        else if (strcmp(o, "--oppo-overflow") == 0)
            a.oppo_overflow = true;
        else if (strcmp(o, "--check") == 0)
            a.check = true;
        else if (strcmp(o, "--config") == 0 && val)
            a.config = val, i++;
        else if (strcmp(o, "--vcs") == 0 && val)
            a.vcs_file = val, i++;
        else if (strcmp(o, "--trace") == 0 && val)
            a.trace = val, i++;
        else if (strcmp(o, "--policy") == 0 && val && sim_policy_parse(val, &a.policy) == PAI_OK)
            i++;
        else if (strcmp(o, "--nodes") == 0 && parse_int_arg(val, 1, 1000000, &v) == 0)
            a.nodes = (int)v, i++;
        else if (strcmp(o, "--gpus-per-node") == 0 && parse_int_arg(val, 1, 64, &v) == 0)
            a.gpus_per_node = (int)v, i++;
        else if (strcmp(o, "--rack") == 0 && parse_int_arg(val, 0, 100000, &v) == 0)
            a.rack_nodes = (int)v, i++;
        else if (strcmp(o, "--limit") == 0 && parse_int_arg(val, 0, 100000000, &v) == 0)
            a.limit = v, i++;
        else if (strcmp(o, "--load") == 0 && val && sscanf(val, "%lf", &a.load) == 1 &&
                 a.load > 0 && a.load <= 1000)
            i++;
        else if (strcmp(o, "--starvation-min") == 0 && parse_int_arg(val, -1, 100000, &v) == 0)
            a.starvation_ms = v < 0 ? -1 : (int64_t)v * 60000, i++;
        else {
            fprintf(stderr, "pai sim: bad argument %s\n", o);
            usage();
            return 2;
        }
    }
    if (!a.trace) {
        usage();
        return 2;
    }
    return sim_replay(&a);
}
