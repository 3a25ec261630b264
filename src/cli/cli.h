/*
 * cli.h - what the `pai` user commands share (internal to src/cli).
 *
 * The CLI is a plain REST client of the OpenPAI v2 API: every command
 * parses its arguments against a table (cli_cmd_t, which also gives
 * `--help`), loads the server and token (cli_ctx_t: config file, then
 * PAI_SERVER / PAI_TOKEN), makes one or more requests (cli_request) and
 * prints a table or, with --json, the server's JSON.
 *
 * Exit statuses: 0 success, 1 the server or the job said no, 2 usage or
 * local errors (bad arguments, invalid file, server unreachable).
 */
#ifndef PAI_CLI_CLI_H
#define PAI_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* ---- argument tables (args.c) ---- */

#define CLI_MAX_OPTS 24
#define CLI_MAX_POS  8
#define CLI_MAX_REP  64

typedef struct {
    const char *name; /* long name without dashes: "role" */
    const char *arg;  /* metavar ("R"), NULL for a flag */
    const char *help;
    bool repeat; /* may be given more than once (--param k=v ...) */
} cli_opt_t;

typedef struct {
    const char *name;     /* "logs" */
    const char *synopsis; /* "NAME [--role R] [--index I]" */
    const char *summary;  /* one paragraph shown by --help */
    const cli_opt_t *opts;
    int min_pos, max_pos;
} cli_cmd_t;

typedef struct {
    const cli_cmd_t *cmd;
    const char *val[CLI_MAX_OPTS]; /* last value; "" for a given flag; NULL when absent */
    const char *rep[CLI_MAX_REP];  /* every value of repeatable options, in order */
    int rep_opt[CLI_MAX_REP];
    int nrep;
    const char *pos[CLI_MAX_POS];
    int npos;
} cli_args_t;

/* Parse argv (argv[0] is the command name).  Prints help and sets *done
 * for --help.  Returns CLI_OK or CLI_USAGE (message already printed). */
int cli_args_parse(const cli_cmd_t *cmd, int argc, char **argv, cli_args_t *a, bool *done);
/* Value of option `name` (NULL when not given). */
const char *cli_opt(const cli_args_t *a, const char *name);
bool cli_flag(const cli_args_t *a, const char *name);
/* Integer option in [min, max]; def when absent.  CLI_USAGE on bad value. */
int cli_opt_int(const cli_args_t *a, const char *name, int min, int max, int def, int *out);
void cli_print_help(const cli_cmd_t *cmd, FILE *out);

/* ---- server, token and requests (client.c) ---- */

typedef struct {
    char *server; /* "http://127.0.0.1:9186", no trailing slash */
    char *token;
    char *user;
    char *ca_file; /* CA file for https:// servers (PAI_CA_FILE, pai login --ca-file) */
    bool json;     /* --json */
} cli_ctx_t;

/* Load the config file and the environment.  need_login: fail (printed)
 * when no server or token is known.  Returns CLI_OK or CLI_USAGE. */
int cli_ctx_load(cli_ctx_t *c, bool need_login);
void cli_ctx_free(cli_ctx_t *c);
/* The config file path (PAI_CONFIG, else ~/.config/pai/config.json). */
char *cli_config_path(void);
/* Write server/token/user/ca_file (any may be NULL to drop it) with mode 0600. */
int cli_config_save(const char *server, const char *token, const char *user, const char *ca_file);

typedef struct {
    long status;  /* HTTP status; 0 when the server was not reached */
    buf_t body;   /* raw answer, capped */
    json_t *json; /* parsed body when it was JSON, else NULL */
    char ctype[64];
} cli_resp_t;

#define CLI_QUIET_404  1u /* do not print an error for 404 */
#define CLI_QUIET      2u /* print no error at all (polling) */
#define CLI_QUIET_DOWN 4u /* do not print "cannot reach the server" */

/* One request to server + path (path begins with '/', or a full URL).
 * body may be NULL.  Returns CLI_OK on 2xx; otherwise prints a clear
 * message (unless flags say not to) and returns CLI_FAIL (server said no)
 * or CLI_USAGE (not reached).  Free r with cli_resp_free. */
int cli_request(const cli_ctx_t *c, const char *method, const char *path, const char *ctype,
                const char *body, size_t len, unsigned flags, cli_resp_t *r);
int cli_get(const cli_ctx_t *c, const char *path, cli_resp_t *r);
void cli_resp_free(cli_resp_t *r);
/* URL-escape one path segment or query value (malloc'ed). */
char *cli_escape(const char *s);
/* Full job name: "user~job" stays, "job" becomes "<me>~job".  malloc'ed. */
char *cli_job_fullname(const cli_ctx_t *c, const char *name);
/* "/api/v2/jobs/<user>~<job>" + suffix, escaped.  malloc'ed. */
char *cli_job_path(const char *fullname, const char *suffix);

/* ---- output (output.c) ---- */

typedef struct cli_table cli_table_t;
/* Columns separated by '|' in header: "NAME|STATE|GPUS". */
cli_table_t *cli_table_new(const char *header);
/* Add one row; cells given as a '\x1f'-free list of n strings. */
void cli_table_row(cli_table_t *t, const char *const *cells);
void cli_table_print(cli_table_t *t, FILE *out);
void cli_table_free(cli_table_t *t);
/* Print a JSON value indented, one trailing newline. */
void cli_print_json(const json_t *v);
/* Typed reads of a JSON object field as text ("" / "-" when missing). */
const char *cli_jstr(const json_t *o, const char *key);
void cli_jfmt(const json_t *o, const char *key, char *out, size_t n);
/* Milliseconds since the epoch as "2026-11-29 03:50:12" (local), or "-". */
void cli_fmt_time(long long ms, char *out, size_t n);

/* Progress of a long wait: a spinner line on a terminal, plain lines
 * (only when the text changes) otherwise.  Written to stderr. */
typedef struct {
    bool tty;
    unsigned tick;
    char last[256];
} cli_progress_t;
void cli_progress_init(cli_progress_t *p);
void cli_progress_update(cli_progress_t *p, const char *text);
void cli_progress_done(cli_progress_t *p);

/* ---- jobs (jobs_common.c) ---- */

/* Fetch the job detail; CLI_OK with *out owned by the caller. */
int cli_job_get(const cli_ctx_t *c, const char *fullname, json_t **out);
/* The same with cli_request flags (CLI_QUIET: print nothing). */
int cli_job_get_flags(const cli_ctx_t *c, const char *fullname, unsigned flags, json_t **out);
/* Job state string ("RUNNING") of a JobDetail. */
const char *cli_job_state(const json_t *detail);
bool cli_state_final(const char *state);

#endif
