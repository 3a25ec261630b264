/* test_sshkey.c - Ed25519 keys in OpenSSH's formats (common/sshkey.c),
 * checked by OpenSSH's own ssh-keygen: it reads the private file and
 * derives the same public key, and it signs with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sshkey.h"
#include "common/util.h"
#include "test.h"

static char dir[] = "/tmp/pai-sshkey-XXXXXX";

/* Writes text to dir/name (0600) and returns the path (static). */
static const char *put(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    return path;
}

static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    pclose(p);
    return xstrdup(buf);
}

TEST(ssh_keygen_reads_the_private_key_and_derives_the_same_public_key)
{
    if (system("command -v ssh-keygen >/dev/null 2>&1") != 0) {
        test_skip("no ssh-keygen (scripts/deps.sh installs openssh-client)");
        return;
    }
    CHECK(mkdtemp(dir) != NULL);
    for (int i = 0; i < 8; i++) {
        sshkey_t k;
        CHECK(sshkey_ed25519_new("alice~job1", &k) == PAI_OK);
        CHECK(str_has_prefix(k.pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA"));
        CHECK(strstr(k.pub, " alice~job1") != NULL);
        CHECK(str_has_prefix(k.priv, "-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        const char *path = put("id", k.priv);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "ssh-keygen -y -f %s 2>&1", path);
        char *derived = run(cmd);
        /* ssh-keygen -y prints "<type> <key> <comment>\n" */
        char want[512];
        snprintf(want, sizeof(want), "%s\n", k.pub);
        CHECK_STR_EQ(derived, want);
        free(derived);
        /* and it signs with it: the secret half is the right one */
        put("msg", "hello\n");
        snprintf(cmd, sizeof(cmd),
                 "cd %s && ssh-keygen -Y sign -f id -n file msg >/dev/null 2>&1 && "
                 "echo 'a %s' > allowed && ssh-keygen -Y verify -f allowed -I a -n file -s msg.sig "
                 "< msg >/dev/null 2>&1 && echo verified",
                 dir, k.pub);
        char *ok = run(cmd);
        CHECK_STR_EQ(ok, "verified\n");
        free(ok);
        snprintf(cmd, sizeof(cmd), "%s/msg.sig", dir);
        unlink(cmd);
        sshkey_free(&k);
        CHECK(k.pub == NULL && k.priv == NULL);
    }
    char rm[300];
    snprintf(rm, sizeof(rm), "rm -rf %s", dir);
    CHECK(system(rm) == 0);
}

TEST(two_keys_differ)
{
    sshkey_t a, b;
    CHECK(sshkey_ed25519_new("x", &a) == PAI_OK);
    CHECK(sshkey_ed25519_new("x", &b) == PAI_OK);
    CHECK(strcmp(a.pub, b.pub) != 0);
    CHECK(strcmp(a.priv, b.priv) != 0);
    sshkey_free(&a);
    sshkey_free(&b);
}

TEST(public_key_lines_are_checked)
{
    sshkey_t k;
    CHECK(sshkey_ed25519_new("c", &k) == PAI_OK);
    CHECK(sshkey_pub_valid(k.pub));
    CHECK(sshkey_pub_valid("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@host"));
    CHECK(!sshkey_pub_valid(""));
    CHECK(!sshkey_pub_valid("ssh-ed25519"));
    CHECK(!sshkey_pub_valid("ssh-dss AAAAB3NzaC1kc3MAAACBAP"));
    CHECK(!sshkey_pub_valid("ssh-ed25519 not*base64*at*all!!"));
    CHECK(!sshkey_pub_valid("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\ncommand=\"sh\" ssh-rsa AAAA"));
    char *big = xmalloc(20000);
    memset(big, 'A', 19999);
    big[19999] = '\0';
    memcpy(big, "ssh-rsa ", 8);
    CHECK(!sshkey_pub_valid(big));
    free(big);
    sshkey_free(&k);
}

RUN_TESTS(ssh_keygen_reads_the_private_key_and_derives_the_same_public_key, two_keys_differ,
          public_key_lines_are_checked)
