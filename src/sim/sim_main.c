/* sim_main.c - placeholder until this subsystem lands. */
#include <stdio.h>

#include "cli/commands.h"

int sim_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}
