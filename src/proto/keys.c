/* secp256k1 keys, ECDSA over SHA-256 and key files (keys.h). Every libsecp256k1 call goes
 * through one randomized context made once per process; private key bytes pass through as
 * few buffers as possible and each of them is wiped before it goes out of scope. Key files
 * are opened without following links and judged by fstat before a byte is read. */
#include "proto/keys.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <secp256k1_recovery.h>

#include "util/hex.h"
#include "util/secret_file.h"

/* A key file holds 64 hex digits and maybe a newline; anything much larger is not a key
 * file, and refusing it early bounds what is read into memory. */
#define KEY_FILE_MAX 256
#define KEY_HEX_LEN 64
#define SIG_V_BASE 27

static pthread_once_t key_ctx_once = PTHREAD_ONCE_INIT;
static secp256k1_context *key_ctx;

static void key_context_die(const char *what)
{
    fprintf(stderr, "ocgate: cannot set up libsecp256k1: %s\n", what);
    abort();
}

static void key_context_create(void)
{
    secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    if (!ctx)
        key_context_die("secp256k1_context_create failed");

    /* Randomizing blinds the signing and key-derivation multiplications against side
     * channels. getrandom rather than RAND_bytes: this runs inside pthread_once, possibly
     * before OpenSSL has been initialised by anyone. */
    uint8_t seed[32];
    size_t got = 0;
    while (got < sizeof(seed)) {
        ssize_t n = getrandom(seed + got, sizeof(seed) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            key_context_die("getrandom failed");
        }
        got += (size_t)n;
    }
    int ok = secp256k1_context_randomize(ctx, seed);
    OPENSSL_cleanse(seed, sizeof(seed));
    if (!ok)
        key_context_die("secp256k1_context_randomize failed");
    key_ctx = ctx;
}

const secp256k1_context *key_context(void)
{
    if (pthread_once(&key_ctx_once, key_context_create) != 0)
        key_context_die("pthread_once failed");
    return key_ctx;
}

/* --- public keys -------------------------------------------------------------------- */

int key_parse_public(const char *hex, size_t len, PublicKey *out)
{
    uint8_t raw[65];
    size_t raw_len;

    if (!hex)
        return KEY_E_FORMAT;
    if (len == KEY_PUBLIC_HEX_LEN) {
        raw[0] = 0x04;
        if (hex_decode(hex, len, raw + 1, 64) != 0)
            return KEY_E_FORMAT;
        raw_len = 65;
    } else if (len == 130 || len == 66) {
        raw_len = len / 2;
        if (hex_decode(hex, len, raw, raw_len) != 0)
            return KEY_E_FORMAT;
        /* ec_pubkey_parse would also take the "hybrid" prefixes 06/07; nobody publishes
         * those, so only the two standard forms get through. */
        if (raw_len == 65 ? raw[0] != 0x04 : raw[0] != 0x02 && raw[0] != 0x03)
            return KEY_E_FORMAT;
    } else {
        return KEY_E_FORMAT;
    }

    secp256k1_pubkey point;
    if (!secp256k1_ec_pubkey_parse(key_context(), &point, raw, raw_len))
        return KEY_E_FORMAT;
    out->point = point;
    return 0;
}

void key_format_public(const PublicKey *pk, char out[KEY_PUBLIC_HEX_LEN + 1])
{
    uint8_t raw[65];
    size_t raw_len = sizeof(raw);
    /* Cannot fail for a parsed or derived key with a 65-byte buffer. */
    (void)secp256k1_ec_pubkey_serialize(key_context(), raw, &raw_len, &pk->point,
                                        SECP256K1_EC_UNCOMPRESSED);
    hex_encode(raw + 1, 64, out);
}

/* --- private keys ------------------------------------------------------------------- */

void key_private_wipe(PrivateKey *key)
{
    if (key)
        OPENSSL_cleanse(key, sizeof(*key));
}

/* Checks key->secret is a scalar in [1, n-1] and derives key->pub; wipes key if not. */
static int key_private_finish(PrivateKey *key)
{
    const secp256k1_context *ctx = key_context();
    if (!secp256k1_ec_seckey_verify(ctx, key->secret) ||
        !secp256k1_ec_pubkey_create(ctx, &key->pub.point, key->secret)) {
        key_private_wipe(key);
        return KEY_E_FORMAT;
    }
    return 0;
}

int key_parse_private(const char *hex, size_t len, PrivateKey *out)
{
    /* Decode straight into out so the secret never sits in a second buffer. */
    if (!hex || len != KEY_HEX_LEN || hex_decode(hex, len, out->secret, 32) != 0) {
        key_private_wipe(out);
        return KEY_E_FORMAT;
    }
    return key_private_finish(out);
}

int key_generate(PrivateKey *out)
{
    /* A random 32-byte string is outside [1, n-1] with probability about 2^-128, so the
     * bound only matters if the generator is broken and keeps returning the same bytes. */
    for (int attempt = 0; attempt < 64; attempt++) {
        if (RAND_bytes(out->secret, (int)sizeof(out->secret)) != 1)
            break;
        if (key_private_finish(out) == 0)
            return 0;
    }
    key_private_wipe(out);
    return -EIO;
}

/* A secret file's refusal as a KeyCode, anything else (0, a negative errno) unchanged. */
static int key_file_code(int rc)
{
    switch (rc) {
    case SECRET_FILE_NOT_REGULAR:
    case SECRET_FILE_TOO_BIG:
        return KEY_E_FILE;
    case SECRET_FILE_LOOSE_MODE:
        return KEY_E_PERMISSIONS;
    case SECRET_FILE_EXISTS:
        return KEY_E_EXISTS;
    default:
        return rc;
    }
}

int key_load_private_file(const char *path, PrivateKey *out)
{
    char buf[KEY_FILE_MAX + 1];
    size_t len;
    int rc = key_file_code(secret_file_read(path, buf, sizeof(buf), &len));
    if (rc != 0) {
        key_private_wipe(out);
        return rc;
    }
    if (len == KEY_HEX_LEN + 1 && buf[KEY_HEX_LEN] == '\n')
        len = KEY_HEX_LEN;
    rc = key_parse_private(buf, len, out);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int key_generate_file(const char *path, PrivateKey *out)
{
    /* Generate first, so a broken random source leaves no empty file behind. */
    int rc = key_generate(out);
    if (rc != 0)
        return rc;

    char text[KEY_HEX_LEN + 1];
    hex_encode(out->secret, 32, text);
    text[KEY_HEX_LEN] = '\n';
    rc = key_file_code(secret_file_create(path, text, sizeof(text)));
    OPENSSL_cleanse(text, sizeof(text));
    if (rc != 0)
        key_private_wipe(out);
    return rc;
}

/* --- signatures --------------------------------------------------------------------- */

void sha256(const void *data, size_t len, uint8_t out[32])
{
    /* Callers pass NULL for an empty body; give OpenSSL a real pointer all the same. */
    SHA256(len ? data : (const void *)"", len, out);
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t digest[32];
    sha256(data, len, digest);
    hex_encode(digest, sizeof(digest), out);
}

int sig_sign_digest(const PrivateKey *key, const uint8_t digest[32], char out[SIG_HEX_LEN + 1])
{
    const secp256k1_context *ctx = key_context();
    secp256k1_ecdsa_recoverable_signature sig;
    uint8_t raw[65];
    int recid = 0;

    /* NULL nonce function = RFC 6979, so the same key and message always give the same
     * bytes; libsecp256k1 only ever produces low-S signatures. */
    if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, digest, key->secret, NULL, NULL))
        return -EIO;
    (void)secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, raw, &recid, &sig);
    if (recid < 0 || recid > 1)
        return -EIO; /* 2 and 3 need r >= n: probability ~2^-127, and no verifier takes it */
    raw[64] = (uint8_t)(SIG_V_BASE + recid);
    hex_encode(raw, sizeof(raw), out);
    return 0;
}

int sig_sign(const PrivateKey *key, const void *msg, size_t msg_len, char out[SIG_HEX_LEN + 1])
{
    uint8_t digest[32];
    sha256(msg, msg_len, digest);
    return sig_sign_digest(key, digest, out);
}

static bool sig_is_zero32(const uint8_t *p)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < 32; i++)
        acc |= p[i];
    return acc == 0;
}

int sig_verify_digest(const PublicKey *pk, const uint8_t digest[32], const char *sig_hex,
                      size_t sig_len)
{
    uint8_t raw[65];

    if (!sig_hex || (sig_len != SIG_HEX_LEN && sig_len != 128))
        return SIG_E_FORMAT;
    if (hex_decode(sig_hex, sig_len, raw, sig_len / 2) != 0)
        return SIG_E_FORMAT;
    /* v is checked for form only: the key comes from the directory, so recovering it from
     * the signature would add nothing, and the docs never ask for it. */
    if (sig_len == SIG_HEX_LEN && raw[64] != SIG_V_BASE && raw[64] != SIG_V_BASE + 1)
        return SIG_E_FORMAT;
    /* parse_compact refuses r or s >= n; zero is refused here so that every r or s outside
     * [1, n-1] is a format error rather than a mismatch. */
    if (sig_is_zero32(raw) || sig_is_zero32(raw + 32))
        return SIG_E_FORMAT;

    const secp256k1_context *ctx = key_context();
    secp256k1_ecdsa_signature sig;
    if (!secp256k1_ecdsa_signature_parse_compact(ctx, &sig, raw))
        return SIG_E_FORMAT;
    /* Other implementations may emit high-S. Accepting (r, n-s) as well as (r, s) is safe
     * here because ocgate never identifies a request or proof by its signature bytes
     * (nonces and (issuer, txid) do that). */
    (void)secp256k1_ecdsa_signature_normalize(ctx, &sig, &sig);
    return secp256k1_ecdsa_verify(ctx, &sig, digest, &pk->point) ? 0 : SIG_E_MISMATCH;
}

int sig_verify(const PublicKey *pk, const void *msg, size_t msg_len, const char *sig_hex,
               size_t sig_len)
{
    uint8_t digest[32];
    sha256(msg, msg_len, digest);
    return sig_verify_digest(pk, digest, sig_hex, sig_len);
}
