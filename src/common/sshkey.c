/*
 * sshkey.c - Ed25519 key pairs written in OpenSSH's formats (sshkey.h).
 *
 * The wire encoding is SSH's (RFC 4251): a string is a 32-bit big-endian
 * length and its bytes, a uint32 is four big-endian bytes.  The public key
 * blob is string "ssh-ed25519", string pk (32 bytes).  The private file
 * ("openssh-key-v1", unencrypted) is
 *   "openssh-key-v1\0", string "none" (cipher), string "none" (kdf),
 *   string "" (kdf options), uint32 1 (keys), string public blob,
 *   string private section,
 * where the private section is uint32 check, uint32 check (equal, random),
 * string "ssh-ed25519", string pk, string sk (libsodium's 64 bytes: seed
 * then pk), string comment, then 1, 2, 3, ... up to a multiple of 8.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/sshkey.h"
#include "common/util.h"

#define KEYTYPE     "ssh-ed25519"
#define COMMENT_MAX 256u
#define BLOB_MAX    1024u /* private section: 4+4 + 15 + 36 + 68 + 4+256 + 7 */
#define PUB_MAX     (16u * 1024)

typedef struct {
    unsigned char b[BLOB_MAX];
    size_t n;
} blob_t;

static void put_u32(blob_t *w, uint32_t v)
{
    w->b[w->n++] = (unsigned char)(v >> 24);
    w->b[w->n++] = (unsigned char)(v >> 16);
    w->b[w->n++] = (unsigned char)(v >> 8);
    w->b[w->n++] = (unsigned char)v;
}

static void put_str(blob_t *w, const void *p, size_t len)
{
    put_u32(w, (uint32_t)len);
    memcpy(w->b + w->n, p, len);
    w->n += len;
}

static char *b64(const unsigned char *p, size_t len)
{
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    char *out = xmalloc(cap);
    sodium_bin2base64(out, cap, p, len, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

static void pub_blob(blob_t *w, const unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
    put_str(w, KEYTYPE, strlen(KEYTYPE));
    put_str(w, pk, crypto_sign_PUBLICKEYBYTES);
}

/* The PEM armour: base64 in lines of 70, as ssh-keygen writes them. */
static char *armour(const unsigned char *p, size_t len)
{
    char *text = b64(p, len);
    size_t tl = strlen(text);
    static const char head[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
    static const char tail[] = "-----END OPENSSH PRIVATE KEY-----\n";
    char *out = xmalloc(tl + tl / 70 + sizeof(head) + sizeof(tail) + 2);
    memcpy(out, head, sizeof(head) - 1);
    size_t o = sizeof(head) - 1;
    for (size_t i = 0; i < tl; i += 70) {
        size_t l = tl - i < 70 ? tl - i : 70;
        memcpy(out + o, text + i, l);
        o += l;
        out[o++] = '\n';
    }
    memcpy(out + o, tail, sizeof(tail)); /* with its NUL */
    sodium_memzero(text, tl);
    free(text);
    return out;
}

pai_err_t sshkey_ed25519_new(const char *comment, sshkey_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sodium_init() < 0)
        return PAI_E_UNAVAILABLE;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair(pk, sk);
    size_t cl = strnlen(comment, COMMENT_MAX);

    blob_t pub = {.n = 0};
    pub_blob(&pub, pk);
    char *pb = b64(pub.b, pub.n);
    out->pub = str_printf("%s %s %.*s", KEYTYPE, pb, (int)cl, comment);
    free(pb);

    blob_t sec = {.n = 0};
    uint32_t check = randombytes_random();
    put_u32(&sec, check);
    put_u32(&sec, check);
    pub_blob(&sec, pk);
    put_str(&sec, sk, sizeof(sk));
    put_str(&sec, comment, cl);
    for (unsigned char pad = 1; sec.n % 8; pad++)
        sec.b[sec.n++] = pad;

    blob_t file = {.n = 0};
    static const char magic[] = "openssh-key-v1"; /* written with its NUL */
    memcpy(file.b, magic, sizeof(magic));
    file.n = sizeof(magic);
    put_str(&file, "none", 4);
    put_str(&file, "none", 4);
    put_str(&file, "", 0);
    put_u32(&file, 1);
    put_str(&file, pub.b, pub.n);
    put_str(&file, sec.b, sec.n);
    out->priv = armour(file.b, file.n);

    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(&sec, sizeof(sec));
    sodium_memzero(&file, sizeof(file));
    return PAI_OK;
}

static bool known_type(const char *t, size_t len)
{
    static const char *const types[] = {"ssh-ed25519",
                                        "ssh-rsa",
                                        "ecdsa-sha2-nistp256",
                                        "ecdsa-sha2-nistp384",
                                        "ecdsa-sha2-nistp521",
                                        "sk-ssh-ed25519@openssh.com",
                                        "sk-ecdsa-sha2-nistp256@openssh.com",
                                        NULL};
    for (size_t i = 0; types[i]; i++)
        if (strlen(types[i]) == len && memcmp(types[i], t, len) == 0)
            return true;
    return false;
}

bool sshkey_pub_valid(const char *line)
{
    size_t len = strnlen(line, PUB_MAX + 1);
    if (len == 0 || len > PUB_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            return false;
    const char *sp = strchr(line, ' ');
    if (!sp || !known_type(line, (size_t)(sp - line)))
        return false;
    const char *k = sp + 1, *end = strchr(k, ' ');
    size_t kl = end ? (size_t)(end - k) : strlen(k);
    if (kl < 16)
        return false;
    unsigned char bin[PUB_MAX];
    size_t bl = 0;
    return sodium_base642bin(bin, sizeof(bin), k, kl, NULL, &bl, NULL,
                             sodium_base64_VARIANT_ORIGINAL) == 0 &&
           bl > 4;
}

void sshkey_free(sshkey_t *k)
{
    if (k->priv)
        sodium_memzero(k->priv, strlen(k->priv));
    free(k->priv);
    free(k->pub);
    k->priv = k->pub = NULL;
}
