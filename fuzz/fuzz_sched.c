/*
 * fuzz_sched.c - libFuzzer target for the scheduler: the input's bytes
 * drive the randomised test's generator (src/sim/sim_random.c) instead of a
 * seed: a HiveD configuration and up to 400 events (submit, schedule,
 * finish, stop, preemption victims leaving, node bad/good, restart).  Any
 * invariant violation the scheduler's checker reports, any GPU handed out
 * twice and any refused restore aborts with the reason; crashes, leaks and
 * undefined behaviour fail through the sanitizers.  To turn a crash into a
 * scenario, run the seed it prints through `pai sim --random` or write the
 * steps by hand from the reason (tests/sched/README.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "fuzz_entry.h"
#include "sim/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[1200];
    if (size > 4096)
        return 0;
    if (sim_random_bytes(data, size, 400, why, sizeof(why)) != 0) {
        fprintf(stderr, "fuzz_sched: %s\n", why);
        abort();
    }
    return 0;
}
