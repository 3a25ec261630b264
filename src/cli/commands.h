/*
 * commands.h - entry points of every `pai` subcommand.
 *
 * Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand itself) and returns the process exit status.  The table in
 * src/main.c maps names to these.
 */
#ifndef PAI_CLI_COMMANDS_H
#define PAI_CLI_COMMANDS_H

/* Daemons and tools (src/server, src/agent, src/sim, src/cli/up.c). */
int server_main(int argc, char **argv);
int agent_main(int argc, char **argv);
int sim_main(int argc, char **argv);
int up_main(int argc, char **argv);
int down_main(int argc, char **argv);
/* `pai store migrate` (src/cli/cmd_store.c). */
int store_main(int argc, char **argv);

/* `pai job validate|render` (src/protocol/protocol_cmd.c). */
int job_validate_main(int argc, char **argv);
int job_render_main(int argc, char **argv);

/* User CLI over the REST API (src/cli/). */
int cli_login_main(int argc, char **argv);
int cli_logout_main(int argc, char **argv);
int cli_submit_main(int argc, char **argv);
int cli_jobs_main(int argc, char **argv);
int cli_job_main(int argc, char **argv);
int cli_logs_main(int argc, char **argv);
int cli_ssh_main(int argc, char **argv);
int cli_exec_main(int argc, char **argv);
int cli_stop_main(int argc, char **argv);
int cli_delete_main(int argc, char **argv);
int cli_wait_main(int argc, char **argv);
int cli_tag_main(int argc, char **argv);
int cli_nodes_main(int argc, char **argv);
int cli_vcs_main(int argc, char **argv);
int cli_usage_main(int argc, char **argv);
int cli_notify_main(int argc, char **argv);
int cli_users_main(int argc, char **argv);
int cli_groups_main(int argc, char **argv);
int cli_token_main(int argc, char **argv);
int cli_template_main(int argc, char **argv);

#endif
