/* test_runtime_sshtmp.c - the ssh plugin's /tmp dir of a process task killed
 * outright, removed by its monitor at the task's end (runtime/sshtmp.c,
 * docs/ssh.md): only for a command with the plugin's preamble, only a dir
 * of the task's uid, never through a link, as the task's identity.  Each
 * test uses a "tmp" of its own (01777, as /tmp is) in base. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/monitor_int.h"
#include "test.h"
#include "tmpbase.h"

__attribute__((constructor)) static void make_base(void)
{
    tmpbase_make("/tmp/pai-test-sshtmp-XXXXXX");
    chmod(base, 0711); /* a task uid passes it to its "tmp" */
}

#define SHELL_PID 4242
#define OTHER_UID 4243

static const char ssh_cmd[] = RT_SSH_PREAMBLE " (docs/ssh.md): an sshd for this task\nsleep 1\n";

static char tmp[300], dir[400];

/* A fresh "tmp" and the name the task's dir has in it. */
static void fresh(const char *name)
{
    snprintf(tmp, sizeof(tmp), "%s/%s", base, name);
    CHECK(mkdir(tmp, 01777) == 0 && chmod(tmp, 01777) == 0);
    snprintf(dir, sizeof(dir), "%s/.pai-ssh-%d", tmp, SHELL_PID);
}

static void put_file(const char *d, const char *name)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s", d, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
}

/* The plugin's files as the preamble leaves them: a few files and .ssh/. */
static void plugin_dir(const char *d)
{
    char p[600];
    CHECK(mkdir(d, 0700) == 0);
    snprintf(p, sizeof(p), "%s/.ssh", d);
    CHECK(mkdir(p, 0700) == 0);
    put_file(d, "host_key");
    put_file(d, "sshd_config");
    put_file(p, "authorized_keys");
    put_file(p, "id_ed25519");
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static rt_spec_t spec_of(const char *command)
{
    rt_spec_t s = {0};
    s.command = command;
    return s; /* not isolated: the task ran as this process's uid */
}

TEST(only_a_command_with_the_ssh_preamble_is_looked_at)
{
    CHECK(rt_ssh_command(ssh_cmd));
    CHECK(!rt_ssh_command("sleep 1"));
    CHECK(!rt_ssh_command("# pai: ssh"));
    CHECK(!rt_ssh_command(""));
    CHECK(!rt_ssh_command(NULL));
    fresh("other");
    plugin_dir(dir);
    rt_spec_t s = spec_of("echo " RT_SSH_PREAMBLE);
    CHECK(!rt_ssh_tmp_clean(&s, SHELL_PID, tmp));
    CHECK(exists(dir));
}

TEST(the_dir_a_task_killed_outright_left_is_removed)
{
    fresh("left");
    plugin_dir(dir);
    rt_spec_t s = spec_of(ssh_cmd);
    CHECK(rt_ssh_tmp_clean(&s, SHELL_PID, tmp));
    CHECK(!exists(dir));
    /* none there (the trap ran): nothing to do, no child */
    CHECK(!rt_ssh_tmp_clean(&s, SHELL_PID, tmp));
    /* another pid's is not the task's */
    plugin_dir(dir);
    CHECK(!rt_ssh_tmp_clean(&s, SHELL_PID + 1, tmp));
    CHECK(exists(dir));
}

TEST(a_link_at_the_name_is_not_followed)
{
    char victim[400], canary[500];
    fresh("link");
    snprintf(victim, sizeof(victim), "%s/victim", base);
    CHECK(mkdir(victim, 0755) == 0);
    put_file(victim, "canary");
    CHECK(symlink(victim, dir) == 0);
    rt_spec_t s = spec_of(ssh_cmd);
    CHECK(!rt_ssh_tmp_clean(&s, SHELL_PID, tmp));
    snprintf(canary, sizeof(canary), "%s/canary", victim);
    CHECK(exists(canary));
    CHECK(exists(dir));
}

TEST(a_link_inside_the_dir_is_removed_not_followed)
{
    char victim[400], canary[500], link[500];
    fresh("inner");
    plugin_dir(dir);
    snprintf(victim, sizeof(victim), "%s/victim2", base);
    CHECK(mkdir(victim, 0755) == 0);
    put_file(victim, "canary");
    snprintf(link, sizeof(link), "%s/.ssh/elsewhere", dir);
    CHECK(symlink(victim, link) == 0);
    rt_spec_t s = spec_of(ssh_cmd);
    CHECK(rt_ssh_tmp_clean(&s, SHELL_PID, tmp));
    CHECK(!exists(dir));
    snprintf(canary, sizeof(canary), "%s/canary", victim);
    CHECK(exists(canary));
}

TEST(another_uids_dir_at_the_name_is_left)
{
    if (geteuid() != 0) {
        test_skip("needs root (a dir of another uid)");
        return;
    }
    fresh("foreign");
    plugin_dir(dir);
    CHECK(chown(dir, OTHER_UID, OTHER_UID) == 0);
    rt_spec_t s = spec_of(ssh_cmd); /* the task's uid is root's here */
    CHECK(!rt_ssh_tmp_clean(&s, SHELL_PID, tmp));
    CHECK(exists(dir));
}

TEST(the_removal_runs_as_the_task_what_it_could_not_remove_stays)
{
    if (geteuid() != 0) {
        test_skip("needs root (a task's uid)");
        return;
    }
    char p[600];
    fresh("astask");
    plugin_dir(dir);
    /* the task's files, and in them a dir of root's the task cannot empty */
    snprintf(p, sizeof(p), "%s/.ssh", dir);
    CHECK(chown(dir, OTHER_UID, OTHER_UID) == 0 && chown(p, OTHER_UID, OTHER_UID) == 0);
    snprintf(p, sizeof(p), "%s/roots", dir);
    CHECK(mkdir(p, 0755) == 0);
    put_file(p, "kept");
    rt_spec_t s = spec_of(ssh_cmd);
    s.isolate = true;
    s.uid = OTHER_UID;
    s.gid = OTHER_UID;
    CHECK(!rt_ssh_tmp_clean(&s, SHELL_PID, tmp)); /* root's dir in it stays, so it does */
    snprintf(p, sizeof(p), "%s/roots/kept", dir);
    CHECK(exists(p));
    snprintf(p, sizeof(p), "%s/.ssh/authorized_keys", dir);
    CHECK(!exists(p)); /* the task's own files went */
    /* and a dir wholly the task's goes */
    snprintf(p, sizeof(p), "%s/roots", dir);
    CHECK(chown(p, OTHER_UID, OTHER_UID) == 0);
    CHECK(rt_ssh_tmp_clean(&s, SHELL_PID, tmp));
    CHECK(!exists(dir));
}

TEST(a_dir_filled_by_the_task_is_removed_only_in_part)
{
    fresh("full");
    plugin_dir(dir);
    for (int i = 0; i < 600; i++) {
        char n[32];
        snprintf(n, sizeof(n), "f%d", i);
        put_file(dir, n);
    }
    rt_spec_t s = spec_of(ssh_cmd);
    CHECK(!rt_ssh_tmp_clean(&s, SHELL_PID, tmp)); /* bounded: the monitor waits for it */
    CHECK(exists(dir));
}

RUN_TESTS(only_a_command_with_the_ssh_preamble_is_looked_at,
          the_dir_a_task_killed_outright_left_is_removed, a_link_at_the_name_is_not_followed,
          a_link_inside_the_dir_is_removed_not_followed, another_uids_dir_at_the_name_is_left,
          the_removal_runs_as_the_task_what_it_could_not_remove_stays,
          a_dir_filled_by_the_task_is_removed_only_in_part)
