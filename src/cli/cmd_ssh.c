/*
 * cmd_ssh.c - `pai ssh NAME [ROLE [INDEX]] [--print] [--key FILE] [-- ARGS...]`:
 * an ssh session into a running task of a job that asked for the ssh
 * runtime plugin (docs/ssh.md).
 *
 * 1. GET /api/v2/jobs/{job}/ssh: the running tasks (address, port, login
 *    name), the job's key pair (the private key for the owner only) and the
 *    tasks' host key.
 * 2. Write the job's private key and a known_hosts file naming the task's
 *    host key into a private directory (~/.cache/pai/ssh/<job>, 0700): the
 *    client checks the task's identity, never trusts on first use.
 * 3. exec ssh with them (ARGS after `--` go to ssh: options, then a remote
 *    command).  --key uses your own key instead of the job's; --print
 *    prints the command instead of running it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/fs.h"
#include "common/util.h"

static const cli_opt_t ssh_opts[] = {
    {.name = "key", .arg = "FILE", .help = "your private key (default: the job's own key)"},
    {.name = "print", .help = "print the ssh command instead of running it"},
    {0},
};
static const cli_cmd_t ssh_cmd = {
    .name = "ssh",
    .synopsis = "NAME [ROLE [INDEX]] [--key FILE] [--print] [-- SSH-ARGS...]",
    .summary = "Open an ssh session into a running task of a job that uses the ssh\n"
               "runtime plugin (default: its first running task).  Arguments after --\n"
               "go to ssh: its options, then a command to run in the task.",
    .opts = ssh_opts,
    .min_pos = 1,
    .max_pos = 3};

#define SSH_MAX_ARGS 256

/* The task to reach: ROLE/INDEX when given, else the first listed. */
static const json_t *pick(const json_t *info, const char *role, int index)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(info, "containers"), i, c)
    {
        if (!role || (strcmp(cli_jstr(c, "taskRoleName"), role) == 0 &&
                      json_integer_value(json_object_get(c, "taskIndex")) == index))
            return c;
    }
    return NULL;
}

/* ~/.cache/pai/ssh/<job>/ (0700), malloc'ed; NULL when it cannot be made. */
static char *key_dir(const char *full)
{
    const char *base = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char *dir = base && *base ? str_printf("%s/pai/ssh/%s", base, full)
                              : str_printf("%s/.cache/pai/ssh/%s", home ? home : "/tmp", full);
    if (fs_mkdir_p(dir, 0700) != PAI_OK || chmod(dir, 0700) != 0) {
        fprintf(stderr, "pai ssh: cannot make %s: %s\n", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

static bool write_private(const char *dir, const char *name, const char *text)
{
    char *p = str_printf("%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && fs_write_all(fd, text, strlen(text));
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "pai ssh: cannot write %s\n", p);
    free(p);
    return ok;
}

/* known_hosts: one line per running task of the job. */
static bool write_known(const char *dir, const json_t *info)
{
    buf_t b;
    buf_init(&b, 1u << 20);
    size_t i;
    json_t *l;
    bool ok = true;
    json_array_foreach(json_object_get(info, "knownHosts"), i, l)
    {
        ok = ok && buf_printf(&b, "%s\n", json_string_value(l)) == PAI_OK;
    }
    ok = ok && write_private(dir, "known_hosts", buf_str(&b));
    buf_free(&b);
    return ok;
}

static void print_cmd(char **av)
{
    for (size_t i = 0; av[i]; i++)
        printf("%s%s", i ? " " : "", av[i]);
    printf("\n");
}

/* Runs (or with --print prints) ssh to task t with the files in dir. */
static int run_ssh(const cli_args_t *a, const json_t *t, const char *dir, char **rest, int nrest)
{
    char *av[SSH_MAX_ARGS + 16];
    int n = 0;
    char *port = str_printf("%lld", (long long)json_integer_value(json_object_get(t, "sshPort")));
    char *known = str_printf("UserKnownHostsFile=%s/known_hosts", dir);
    char *key = cli_opt(a, "key") ? xstrdup(cli_opt(a, "key")) : str_printf("%s/id_ed25519", dir);
    char *dest = str_printf("%s@%s", cli_jstr(t, "sshUser"), cli_jstr(t, "sshIp"));
    const char *fixed[] = {"ssh",
                           "-p",
                           port,
                           "-i",
                           key,
                           "-o",
                           known,
                           "-o",
                           "StrictHostKeyChecking=yes",
                           "-o",
                           "IdentitiesOnly=yes"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        av[n++] = (char *)fixed[i];
    /* options for ssh first, then the destination, then the remote command */
    int k = 0;
    for (; k < nrest && rest[k][0] == '-' && n < SSH_MAX_ARGS; k++)
        av[n++] = rest[k];
    av[n++] = dest;
    for (; k < nrest && n < SSH_MAX_ARGS; k++)
        av[n++] = rest[k];
    av[n] = NULL;
    int rc = CLI_OK;
    if (cli_flag(a, "print")) {
        print_cmd(av);
    } else {
        fflush(stdout);
        execvp("ssh", av);
        fprintf(stderr, "pai ssh: cannot run ssh: %s (install openssh-client)\n", strerror(errno));
        rc = CLI_USAGE;
    }
    free(port);
    free(known);
    free(key);
    free(dest);
    return rc;
}

int cli_ssh_main(int argc, char **argv)
{
    /* everything after "--" goes to ssh */
    int own = argc, nrest = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            own = i;
            nrest = argc - i - 1;
            break;
        }
    if (nrest > SSH_MAX_ARGS) {
        fprintf(stderr, "pai ssh: too many arguments for ssh\n");
        return CLI_USAGE;
    }
    cli_args_t a;
    bool done;
    int rc = cli_args_parse(&ssh_cmd, own, argv, &a, &done);
    if (rc != CLI_OK || done)
        return rc;
    int index = 0;
    if (a.npos == 3 && str_to_int(a.pos[2], 0, 1000000, &index) != PAI_OK) {
        fprintf(stderr, "pai ssh: INDEX must be a task index, not '%s'\n", a.pos[2]);
        return CLI_USAGE;
    }
    cli_ctx_t c;
    char *full = NULL, *path = NULL, *dir = NULL;
    cli_resp_t r = {0};
    if ((rc = cli_ctx_load(&c, true)) != CLI_OK)
        goto out;
    full = cli_job_fullname(&c, a.pos[0]);
    path = cli_job_path(full, "/ssh");
    if ((rc = cli_request(&c, "GET", path, NULL, NULL, 0, 0, &r)) != CLI_OK)
        goto out;
    const char *role = a.npos >= 2 ? a.pos[1] : NULL;
    const json_t *t = pick(r.json, role, index);
    if (!t) {
        if (role)
            fprintf(stderr, "pai ssh: task %s/%d of %s is not running\n", role, index, full);
        else
            fprintf(stderr, "pai ssh: no task of %s is running\n", full);
        rc = CLI_FAIL;
        goto out;
    }
    const char *priv =
        json_string_value(json_object_get(json_object_get(r.json, "keyPair"), "privateKey"));
    if (!priv && !cli_opt(&a, "key")) {
        fprintf(stderr, "pai ssh: only the job's owner gets its key: give yours with --key\n");
        rc = CLI_FAIL;
        goto out;
    }
    if (!(dir = key_dir(full)) || (priv && !write_private(dir, "id_ed25519", priv)) ||
        !write_known(dir, r.json)) {
        rc = CLI_USAGE;
        goto out;
    }
    rc = run_ssh(&a, t, dir, argv + own + 1, nrest);
out:
    cli_resp_free(&r);
    free(dir);
    free(path);
    free(full);
    cli_ctx_free(&c);
    return rc;
}
