/*
 * standby_addr.c - the client's address across a forward (standby.h).
 *
 * A login forwarded by a standby reaches the leader from the standby's
 * address; counted against that address, a client flooding logins
 * through a standby would lock every other client of that standby out.
 * So the standby sends the client's address (STANDBY_CLIENT_HEADER) with
 * a proof (STANDBY_PROOF_HEADER): "<unix time>.<hex HMAC-SHA-256>" over
 * "pai-fwd-v1\n<address>\n<method>\n<path>\n<unix time>", keyed with the
 * cluster's forwarding secret.  The leader uses the address only when the
 * proof verifies (constant time) and its time is within PROOF_SKEW_S of
 * its own; anything else (a client that sends the headers itself, a proof
 * for another request, an old one) is ignored: the connection's address
 * counts, as without a standby.
 *
 * The leader's connection limits (common/connlimit.h) count such a
 * request's connection against the same address from the moment its
 * headers are read (standby_count_client; before that, from its accept,
 * against the standby's: connlimit admits before any header is read).
 *
 * The secret: 32 random bytes in the store (kind "server_secrets", key
 * "forward"), made by the leader when it starts leading
 * (standby_secret_ensure; an insert, so two servers never disagree), read
 * by every server from the store.  Only servers read the store: no route
 * answers with that kind.  Cached per store once read; a server that
 * finds none yet (no leader has led since the upgrade) looks again at most
 * once a second, and forwards without the headers meanwhile.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/log.h"
#include "common/util.h"
#include "server/standby.h"

#define SECRET_KIND  "server_secrets"
#define SECRET_KEY   "forward"
#define PROOF_SKEW_S 120

static pthread_mutex_t secret_mu = PTHREAD_MUTEX_INITIALIZER;
static const store_t *secret_of; /* the store the cached secret was read from */
static unsigned char secret[crypto_auth_hmacsha256_KEYBYTES];
static bool secret_have;
static int64_t secret_tried_ms;

/* The secret's record from its JSON; false when malformed. */
static bool secret_parse(const char *json, unsigned char out[crypto_auth_hmacsha256_KEYBYTES])
{
    json_t *j = json_loads(json, 0, NULL);
    const char *hex = json_string_value(json_object_get(j, "key"));
    size_t n = 0;
    bool ok = hex &&
              sodium_hex2bin(out, crypto_auth_hmacsha256_KEYBYTES, hex, strlen(hex), NULL, &n,
                             NULL) == 0 &&
              n == crypto_auth_hmacsha256_KEYBYTES;
    json_decref(j);
    return ok;
}

void standby_secret_ensure(store_t *st)
{
    unsigned char k[crypto_auth_hmacsha256_KEYBYTES];
    char hex[2 * sizeof(k) + 1], json[sizeof(hex) + 16];
    randombytes_buf(k, sizeof(k));
    sodium_bin2hex(hex, sizeof(hex), k, sizeof(k));
    snprintf(json, sizeof(json), "{\"key\":\"%s\"}", hex);
    pai_err_t rc = store_insert(st, SECRET_KIND, SECRET_KEY, 0, json);
    if (rc != PAI_OK && rc != PAI_E_EXISTS)
        log_warn("standby: the forwarding secret could not be stored (%s): logins forwarded by "
                 "standbys count against the standby's address",
                 pai_err_msg(rc));
    sodium_memzero(k, sizeof(k));
    sodium_memzero(hex, sizeof(hex));
    sodium_memzero(json, sizeof(json));
}

/* The secret into out; false when there is none (yet). */
static bool secret_get(store_t *st, unsigned char out[crypto_auth_hmacsha256_KEYBYTES])
{
    pthread_mutex_lock(&secret_mu);
    if (secret_of != st) {
        secret_of = st;
        secret_have = false;
        secret_tried_ms = 0;
    }
    int64_t now = time_mono_ms();
    if (!secret_have && (secret_tried_ms == 0 || now - secret_tried_ms >= 1000)) {
        secret_tried_ms = now;
        char *json = NULL;
        if (st && store_get(st, SECRET_KIND, SECRET_KEY, &json) == PAI_OK)
            secret_have = secret_parse(json, secret);
        if (json)
            sodium_memzero(json, strlen(json));
        free(json);
    }
    bool have = secret_have;
    if (have)
        memcpy(out, secret, crypto_auth_hmacsha256_KEYBYTES);
    pthread_mutex_unlock(&secret_mu);
    return have;
}

static void proof_mac(const unsigned char *key, const char *addr, const char *method,
                      const char *path, long long t,
                      unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    char ts[24];
    snprintf(ts, sizeof(ts), "%lld", t);
    crypto_auth_hmacsha256_state s;
    crypto_auth_hmacsha256_init(&s, key, crypto_auth_hmacsha256_KEYBYTES);
    const char *parts[] = {"pai-fwd-v1", addr, method, path, ts};
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        if (i)
            crypto_auth_hmacsha256_update(&s, (const unsigned char *)"\n", 1);
        crypto_auth_hmacsha256_update(&s, (const unsigned char *)parts[i], strlen(parts[i]));
    }
    crypto_auth_hmacsha256_final(&s, mac);
}

bool standby_proof(store_t *st, const char *addr, const char *method, const char *path, char *out,
                   size_t cap)
{
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES], mac[crypto_auth_hmacsha256_BYTES];
    if (!secret_get(st, key))
        return false;
    long long t = (long long)time(NULL);
    proof_mac(key, addr, method, path, t, mac);
    sodium_memzero(key, sizeof(key));
    char hex[2 * sizeof(mac) + 1];
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    return snprintf(out, cap, "%lld.%s", t, hex) < (int)cap;
}

/* Does (addr, proof) vouch for addr on a request method path?  A proof
 * made with the cluster's secret within PROOF_SKEW_S of now. */
static bool vouched(server_ctx_t *ctx, const char *addr, const char *proof, const char *method,
                    const char *path)
{
    if (!addr || !proof || !*addr || strlen(addr) > 64)
        return false;
    char *dot = strchr(proof, '.');
    long long t = 0, now = (long long)time(NULL);
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES], mac[crypto_auth_hmacsha256_BYTES];
    unsigned char got[crypto_auth_hmacsha256_BYTES];
    size_t n = 0;
    bool ok = dot && sscanf(proof, "%lld.", &t) == 1 && t > now - PROOF_SKEW_S &&
              t < now + PROOF_SKEW_S &&
              sodium_hex2bin(got, sizeof(got), dot + 1, strlen(dot + 1), NULL, &n, NULL) == 0 &&
              n == sizeof(got) && secret_get(ctx->store, key);
    if (ok) {
        proof_mac(key, addr, method, path, t, mac);
        sodium_memzero(key, sizeof(key));
        ok = sodium_memcmp(mac, got, sizeof(mac)) == 0;
    }
    if (!ok)
        log_debug("auth: a forwarded client address without a valid proof is ignored");
    return ok;
}

const char *standby_client_addr(server_ctx_t *ctx, const http_req_t *req, char *buf, size_t len)
{
    const char *addr = http_header(req, STANDBY_CLIENT_HEADER);
    if (!addr || strlen(addr) >= len ||
        !vouched(ctx, addr, http_header(req, STANDBY_PROOF_HEADER), req->method, req->path))
        return http_client_addr(req, buf, len);
    str_copy(buf, addr, len);
    return buf;
}

void standby_count_client(server_ctx_t *ctx, connlimit_t *cl, connlimit_conn_t *c, const char *addr,
                          const char *proof, const char *method, const char *path)
{
    if (c && addr && vouched(ctx, addr, proof, method, path) && !connlimit_rekey(cl, c, addr))
        log_debug("http: a vouched client address %.64s is not a numeric address", addr);
}
