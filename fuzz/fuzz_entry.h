/*
 * fuzz_entry.h - what every libFuzzer target here starts with: the entry
 * points' prototypes (-Wmissing-prototypes) and LLVMFuzzerInitialize, which
 * sets the binaries' allocation policy (common/util.h: jansson aborts on
 * out-of-memory, as in `pai`).  Each target is one .c file and program.
 */
#ifndef PAI_FUZZ_ENTRY_H
#define PAI_FUZZ_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    util_alloc_init();
    return 0;
}

#endif
