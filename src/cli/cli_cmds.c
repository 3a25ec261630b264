/* cli_cmds.c - placeholder until this subsystem lands. */
#include <stdio.h>

#include "cli/commands.h"

int cli_login_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_logout_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_submit_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_jobs_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_job_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_logs_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_stop_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_delete_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_wait_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_tag_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_nodes_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_vcs_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_users_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_groups_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}

int cli_token_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "pai %s: not built yet\n", argv[0]);
    return 2;
}
