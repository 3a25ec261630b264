/* protocol_cmd.c - placeholder until this subsystem lands. */
#include <stdio.h>

#include "cli/commands.h"

int job_validate_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int job_render_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}
