/*
 * sshkey.h - Ed25519 key pairs in OpenSSH's formats, for the ssh runtime
 * plugin (docs/ssh.md): a job's own key (tasks reach each other, `pai ssh`
 * reaches them) and its tasks' host key (the client checks it).
 *
 * The key comes from libsodium (crypto_sign_keypair); this file only writes
 * it out: the public key as one authorized_keys / known_hosts line
 * ("ssh-ed25519 AAAA... comment") and the private key as an unencrypted
 * "-----BEGIN OPENSSH PRIVATE KEY-----" block (PROTOCOL.key in OpenSSH's
 * source describes the layout), which ssh, sshd and ssh-keygen read.
 *
 *   sshkey_t k;
 *   if (sshkey_ed25519_new("user~job", &k) == PAI_OK) { use k.pub, k.priv; sshkey_free(&k); }
 */
#ifndef PAI_COMMON_SSHKEY_H
#define PAI_COMMON_SSHKEY_H

#include <stdbool.h>

#include "common/err.h"

typedef struct {
    char *pub;  /* "ssh-ed25519 <base64> <comment>", no newline */
    char *priv; /* the PEM-armoured private key, ending in a newline */
} sshkey_t;

/* A fresh key pair with the given comment (no newline in it).
 * PAI_E_UNAVAILABLE when libsodium cannot start. */
pai_err_t sshkey_ed25519_new(const char *comment, sshkey_t *out);

/* True when line looks like one OpenSSH public key: "<type> <base64>
 * [comment]" with a known type and at most 16 KiB, no control characters.
 * Used to refuse keys that would break an authorized_keys file. */
bool sshkey_pub_valid(const char *line);

void sshkey_free(sshkey_t *k);

#endif
