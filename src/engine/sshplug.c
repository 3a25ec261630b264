/*
 * sshplug.c - OpenPAI's ssh runtime plugin (docs/ssh.md):
 *
 *   extras:
 *     com.microsoft.pai.runtimeplugin:
 *       - plugin: ssh
 *         parameters:
 *           jobssh: true                 # tasks reach each other: ssh <role>-<index>
 *           userssh: {type: custom, value: "ssh-ed25519 AAAA... me@laptop"}
 *
 * At submission the job gets its own Ed25519 key pair and a host key
 * (common/sshkey.h), every role gets an "ssh" port when it has none, and
 * each role's script gets a preamble that starts an sshd inside the task:
 * as the task's own uid (nss_wrapper gives that uid a passwd entry, since
 * the node has none for it), listening on $PAI_CONTAINER_SSH_PORT,
 * accepting the job's key, the userssh key and the keys of the user's
 * profile (extension.sshKeys[].value, as OpenPAI's portal stores them).
 * The keys reach the task inside its script, which is delivered like a
 * secret (never on disk outside the task's 0700 work dir, never in argv).
 * The "jobssh" record holds the public half, the private key (for `pai ssh`
 * and GET /api/v2/jobs/{job}/ssh, the owner only) and the host key's public
 * half, which the client pins.
 *
 * The preamble is POSIX sh (a container image may have no bash).  An
 * environment without sshd says so on stderr and the job runs on.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/limits.h"
#include "common/sshkey.h"
#include "common/util.h"
#include "engine/sshplug.h"
#include "runtime/runtime.h" /* RT_SSH_PREAMBLE: the runtime knows the preamble by it */

#define MAX_USER_KEYS 64

static const job_plugin_t *find_plugin(const job_spec_t *spec)
{
    for (size_t i = 0; i < spec->extras.n_plugins; i++)
        if (spec->extras.plugins[i].plugin && strcmp(spec->extras.plugins[i].plugin, "ssh") == 0)
            return &spec->extras.plugins[i];
    return NULL;
}

/* Appends one public key line to keys (a newline-separated list), refusing
 * one that is not a key: it would break the authorized_keys file or, with
 * options, widen what the key may do. */
static pai_err_t add_key(buf_t *keys, const char *line, const char *where, pai_error_t *e)
{
    if (!sshkey_pub_valid(line))
        return pai_error_set(e, PAI_E_PROTOCOL, "%s: not an OpenSSH public key", where);
    if (buf_puts(keys, line) != PAI_OK || buf_puts(keys, "\n") != PAI_OK)
        return pai_error_set(e, PAI_E_PROTOCOL, "%s: too many keys", where);
    return PAI_OK;
}

static pai_err_t collect_keys(const job_plugin_t *pl, const json_t *profile_keys, buf_t *keys,
                              bool *jobssh, pai_error_t *e)
{
    json_t *p = pl->parameters;
    *jobssh = json_is_true(json_object_get(p, "jobssh"));
    json_t *us = json_object_get(p, "userssh");
    const char *type = json_string_value(json_object_get(us, "type"));
    const char *value = json_string_value(json_object_get(us, "value"));
    pai_err_t rc = PAI_OK;
    if (us && !json_is_object(us))
        return pai_error_set(e, PAI_E_PROTOCOL,
                             "extras.com.microsoft.pai.runtimeplugin ssh: userssh must be a map "
                             "{type, value}");
    if (type && strcmp(type, "custom") != 0 && strcmp(type, "system") != 0)
        return pai_error_set(e, PAI_E_PROTOCOL,
                             "extras.com.microsoft.pai.runtimeplugin ssh: userssh.type must be "
                             "custom or system");
    /* custom: the value is a key; system: the keys of the profile (below) */
    if (value && *value && (!type || strcmp(type, "custom") == 0))
        rc = add_key(keys, value, "extras.com.microsoft.pai.runtimeplugin ssh: userssh.value", e);
    size_t i;
    json_t *k;
    json_array_foreach(profile_keys, i, k)
    {
        const char *v = json_string_value(json_object_get(k, "value"));
        if (rc != PAI_OK || i >= MAX_USER_KEYS)
            break;
        if (v && sshkey_pub_valid(v))
            rc = add_key(keys, v, "the user's sshKeys", e);
    }
    return rc;
}

/* The part of the preamble that depends on the job: its keys in files. */
static pai_err_t put_file(buf_t *b, const char *path, const char *text)
{
    return buf_printf(b, "cat >\"$d/%s\" <<'__PAI_SSH_EOF'\n%s%s__PAI_SSH_EOF\n", path, text,
                      text[0] && text[strlen(text) - 1] == '\n' ? "" : "\n");
}

/* Starts sshd; POSIX sh.  $d: the plugin's dir; $u: the login name. */
static const char preamble_start[] = RT_SSH_PREAMBLE
    " (docs/ssh.md): an sshd for this task\n"
    "__pai_ssh() {\n"
    "  s=$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)\n"
    "  if [ ! -x \"$s\" ]; then echo 'pai ssh: no sshd in this task'\"'\"'s environment: ssh is"
    " not available' >&2; return 0; fi\n"
    "  if [ -z \"$PAI_CONTAINER_SSH_PORT\" ]; then echo 'pai ssh: no ssh port' >&2; return 0; fi\n"
    "  # the task's working dir ($c), by its path, or through /proc when the\n"
    "  # path is not open to the task's uid (a parent dir it may not pass):\n"
    "  # sshd reads its files by name; only when neither serves, a private dir\n"
    "  # in /tmp, removed when this shell exits (or by the monitor, when the\n"
    "  # task is killed outright: process runtime)\n"
    "  c=\"$PWD\"; t=\n"
    "  if [ ! -w \"$c\" ]; then\n"
    "    if [ -w . ] && [ -d \"/proc/$$/cwd\" ]; then c=\"/proc/$$/cwd\"; else t=1; fi\n"
    "  fi\n"
    "  d=\"$c/.pai-ssh\"\n"
    "  if [ -n \"$t\" ]; then\n"
    "    # a fixed name in a world-writable dir: made here, never one found\n"
    "    # there (a link, another uid's dir); this uid's own, left when a\n"
    "    # task with this pid could not remove it, goes first\n"
    "    d=\"/tmp/.pai-ssh-$$\"\n"
    "    if [ -d \"$d\" ] && [ ! -L \"$d\" ] && [ -O \"$d\" ]; then rm -rf \"$d\"; fi\n"
    "    (umask 077 && mkdir \"$d\") ||\n"
    "      { echo \"pai ssh: cannot make $d: ssh is not available\" >&2; return 0; }\n"
    "    trap 'rm -rf \"'\"$d\"'\"' EXIT\n"
    "  fi\n"
    "  (umask 077 && mkdir -p \"$d/.ssh\") || return 0\n";

static const char preamble_end[] =
    "  chmod 600 \"$d/host_key\" \"$d/.ssh/\"* 2>/dev/null\n"
    "  export -p | grep -E '^(declare -x|export) PAI_' >\"$d/env.sh\"\n"
    "  env | grep '^PAI_' >\"$d/.ssh/environment\"\n"
    "  # sessions: the task's PAI_ variables and working dir (bash reads .bashrc\n"
    "  # for an ssh command, .profile for a login; sh reads $ENV)\n"
    "  printf '. \"%s/env.sh\"\\ncd \"%s\" 2>/dev/null\\n' \"$d\" \"$c\" >\"$d/.bashrc\"\n"
    "  printf '. \"%s/.bashrc\"\\n' \"$d\" >\"$d/.profile\"\n"
    "  u=\"$PAI_USER_NAME\"; w=; sh=/bin/sh; [ -x /bin/bash ] && sh=/bin/bash\n"
    "  if [ \"$(id -u)\" = 0 ] && { [ -f /run/.containerenv ] || [ -f /.dockerenv ]; }; then\n"
    "    # a container's root (not root on the node): the user's name for it\n"
    "    grep -q \"^$u:\" /etc/passwd 2>/dev/null ||\n"
    "      echo \"$u:x:0:0:pai task:$d:$sh\" >>/etc/passwd\n"
    "    mkdir -p /run/sshd 2>/dev/null; chmod 755 /run/sshd 2>/dev/null\n"
    "    # one uid in this user namespace (podman --uidmap 0:UID:1): sshd's\n"
    "    # privilege separation user cannot be another uid, so it is that one\n"
    "    if awk 'END{exit !(NR==1 && $3==1)}' /proc/self/uid_map 2>/dev/null; then\n"
    "      sed -i 's/^sshd:[^:]*:[^:]*:[^:]*:/sshd:x:0:0:/' /etc/passwd 2>/dev/null\n"
    "    fi\n"
    "  else\n"
    "    # the node has no passwd entry for a task's uid: nss_wrapper gives one\n"
    "    for l in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so "
    "/usr/lib64/libnss_wrapper.so; do\n"
    "      [ -e \"$l\" ] && w=\"$l\" && break\n"
    "    done\n"
    "    if [ -z \"$w\" ]; then echo 'pai ssh: no libnss_wrapper on this node: ssh is not "
    "available'"
    " >&2; return 0; fi\n"
    "    echo \"$u:x:$(id -u):$(id -g):pai task:$d:$sh\" >\"$d/passwd\"\n"
    "    echo \"$u:x:$(id -g):\" >\"$d/group\"\n"
    "    # sshd as root (--tasks-as-root) drops to its privilege separation user\n"
    "    [ \"$(id -u)\" = 0 ] && getent passwd sshd >>\"$d/passwd\"\n"
    "  fi\n"
    "  cat >\"$d/sshd_config\" <<__PAI_SSH_EOF\n"
    "Port $PAI_CONTAINER_SSH_PORT\n"
    "HostKey $d/host_key\n"
    "AuthorizedKeysFile $d/.ssh/authorized_keys\n"
    "PidFile $d/sshd.pid\n"
    "AllowUsers $u\n"
    "PasswordAuthentication no\n"
    "KbdInteractiveAuthentication no\n"
    "UsePAM no\n"
    "PermitRootLogin prohibit-password\n"
    "PermitUserEnvironment yes\n"
    "StrictModes no\n"
    "X11Forwarding no\n"
    "PrintMotd no\n"
    "SetEnv BASH_ENV=$d/.bashrc ENV=$d/.bashrc${w:+ LD_PRELOAD=$w NSS_WRAPPER_PASSWD=$d/passwd "
    "NSS_WRAPPER_GROUP=$d/group}\n"
    "Subsystem sftp internal-sftp\n"
    "__PAI_SSH_EOF\n"
    "  if [ -n \"$w\" ]; then\n"
    "    LD_PRELOAD=\"$w\" NSS_WRAPPER_PASSWD=\"$d/passwd\" NSS_WRAPPER_GROUP=\"$d/group\" \\\n"
    "      \"$s\" -f \"$d/sshd_config\" -E \"$d/sshd.log\" </dev/null\n"
    "  else\n"
    "    \"$s\" -f \"$d/sshd_config\" -E \"$d/sshd.log\" </dev/null\n"
    "  fi || { echo 'pai ssh: sshd did not start:' >&2; tail -3 \"$d/sshd.log\" >&2; return 0; }\n"
    "  trap 'kill $(cat \"'\"$d\"'/sshd.pid\" 2>/dev/null) 2>/dev/null'\"${t:+; rm -rf '$d'}\" "
    "EXIT\n"
    "  # the task's own commands get a name for their uid too (ssh, whoami, ...)\n"
    "  if [ -n \"$w\" ]; then\n"
    "    export LD_PRELOAD=\"$w\" NSS_WRAPPER_PASSWD=\"$d/passwd\" NSS_WRAPPER_GROUP=\"$d/group\"\n"
    "  fi\n"
    "  echo \"pai ssh: listening on port $PAI_CONTAINER_SSH_PORT as $u\" >&2\n"
    "}\n"
    "__pai_ssh\n"
    "unset -f __pai_ssh 2>/dev/null\n"
    "# pai: the job's own commands\n";

/* With jobssh: the job's private key and an ssh config naming every task
 * "<role>-<index>", built from the PAI_HOST_IP_<role>_<i> and
 * PAI_PORT_LIST_<role>_<i>_ssh variables when the task starts. */
static const char preamble_jobssh[] =
    "  env | sed -n 's/^PAI_HOST_IP_\\([A-Za-z0-9_-]*\\)_\\([0-9]*\\)=\\(.*\\)/\\1 \\2 \\3/p' |\n"
    "  while read -r r i ip; do\n"
    "    p=$(eval \"echo \\${PAI_PORT_LIST_${r}_${i}_ssh%%,*}\" 2>/dev/null)\n"
    "    [ -n \"$p\" ] && printf 'Host %s-%s\\n  HostName %s\\n  Port %s\\n' \"$r\" \"$i\" \"$ip\" "
    "\"$p\"\n"
    "  done >\"$d/.ssh/config\"\n"
    "  printf 'Host *\\n  IdentityFile %s/.ssh/id_ed25519\\n  UserKnownHostsFile "
    "%s/.ssh/known_hosts\\n"
    "  StrictHostKeyChecking yes\\n' \"$d\" \"$d\" >>\"$d/.ssh/config\"\n";

static pai_err_t preamble(const sshkey_t *job, const sshkey_t *host, const char *keys, bool jobssh,
                          char **out)
{
    buf_t b;
    buf_init(&b, PAI_MAX_COMMAND);
    pai_err_t rc = buf_puts(&b, preamble_start);
    if (rc == PAI_OK)
        rc = put_file(&b, "host_key", host->priv);
    if (rc == PAI_OK)
        rc = buf_printf(&b,
                        "cat >\"$d/.ssh/authorized_keys\" <<'__PAI_SSH_EOF'\n%s%s\n__PAI_SSH_EOF\n",
                        keys, job->pub);
    if (rc == PAI_OK && jobssh) {
        rc = put_file(&b, ".ssh/id_ed25519", job->priv);
        if (rc == PAI_OK)
            rc = buf_printf(&b, "echo '* %s' >\"$d/.ssh/known_hosts\"\n", host->pub);
        if (rc == PAI_OK)
            rc = buf_puts(&b, preamble_jobssh);
    }
    if (rc == PAI_OK)
        rc = buf_puts(&b, preamble_end);
    *out = rc == PAI_OK ? buf_take(&b) : NULL;
    buf_free(&b);
    return rc;
}

/* Gives a role without an "ssh" port label one such port. */
static void ensure_port(lc_role_t *r)
{
    for (int p = 0; p < r->nports; p++)
        if (strcmp(r->ports[p].label, "ssh") == 0)
            return;
    r->ports = xrealloc(r->ports, (size_t)(r->nports + 1) * sizeof(*r->ports));
    r->ports[r->nports].label = lc_str_dup("ssh");
    r->ports[r->nports].count = 1;
    r->nports++;
}

pai_err_t sshplug_apply(const job_spec_t *spec, lc_job_t *job, const char *user,
                        const json_t *profile_keys, char **record, pai_error_t *e)
{
    *record = NULL;
    const job_plugin_t *pl = find_plugin(spec);
    if (!pl)
        return PAI_OK;
    buf_t keys;
    buf_init(&keys, 256u * 1024);
    bool jobssh = false;
    pai_err_t rc = collect_keys(pl, profile_keys, &keys, &jobssh, e);
    sshkey_t jk = {0}, hk = {0};
    if (rc == PAI_OK && (sshkey_ed25519_new(job->name, &jk) != PAI_OK ||
                         sshkey_ed25519_new(job->name, &hk) != PAI_OK))
        rc = pai_error_set(e, PAI_E_UNAVAILABLE, "cannot make the job's ssh keys");
    char *pre = NULL;
    if (rc == PAI_OK && preamble(&jk, &hk, buf_str(&keys), jobssh, &pre) != PAI_OK)
        rc = pai_error_set(e, PAI_E_PROTOCOL, "the ssh plugin's keys are too large");
    for (int r = 0; rc == PAI_OK && r < job->nroles; r++) {
        lc_role_t *role = &job->roles[r];
        ensure_port(role);
        char *cmd = str_printf("%s%s", pre, role->command ? role->command : "");
        if (strlen(cmd) > PAI_MAX_COMMAND) {
            free(cmd);
            rc = pai_error_set(e, PAI_E_PROTOCOL,
                               "task role %s: commands with the ssh plugin are over %u bytes",
                               role->name, (unsigned)PAI_MAX_COMMAND);
            break;
        }
        free(role->command);
        role->command = cmd;
    }
    if (rc == PAI_OK) {
        json_t *rec = xjson_pack("{sssssssbss}", "publicKey", jk.pub, "privateKey", jk.priv,
                                 "hostPublicKey", hk.pub, "jobssh", jobssh, "user", user);
        *record = xjson_dumps(rec, JSON_COMPACT);
        json_decref(rec);
    }
    free(pre);
    buf_free(&keys);
    sshkey_free(&jk);
    sshkey_free(&hk);
    return rc;
}
