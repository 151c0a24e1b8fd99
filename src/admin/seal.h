/* Sealing of admin API client secrets (design.md, "secrets"): AES-256-GCM under a 32-byte
 * sealing key read from a file, a fresh random 96-bit nonce per secret, and the client id as
 * associated data, so a sealed secret copied onto another client's row does not open. The
 * server opens a client's secret only to recompute a request's HMAC, and wipes it at once.
 *
 * Sealed form: nonce (12 bytes) || ciphertext (as long as the secret) || tag (16 bytes). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define SEAL_KEY_LEN 32
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (SEAL_NONCE_LEN + SEAL_TAG_LEN)
/* Longest secret sealed or opened; the sealed form is this plus SEAL_OVERHEAD. */
#define SEAL_SECRET_MAX 256

typedef struct SealKey {
    uint8_t key[SEAL_KEY_LEN];   /* wiped by seal_key_wipe */
} SealKey;

typedef enum SealCode {
    SEAL_E_FORMAT = 1,     /* key file: not 64 hex digits (and an optional newline) */
    SEAL_E_PERMISSIONS,    /* key file: readable or writable by group or others */
    SEAL_E_FILE,           /* key file: not a regular file (symlinks are not followed),
                              too large; or the output file exists (seal_key_generate_file) */
    SEAL_E_OPEN,           /* seal_open: wrong key, wrong associated data, or tampered */
    SEAL_E_SIZE,           /* a secret or sealed text of an impossible length */
    SEAL_E_CRYPTO,         /* OpenSSL failed (no randomness, no memory) */
} SealCode;

/* Loads a sealing key file: 64 hex digits, optionally followed by one newline. Refuses a file
 * group or others may access (SEAL_E_PERMISSIONS) or that is not a regular file (SEAL_E_FILE),
 * judged before reading. Returns 0, a SealCode or a negative errno; out is wiped on failure. */
OC_MUST_CHECK int seal_key_load_file(const char *path, SealKey *out);

/* Writes a new random key (64 hex digits and a newline) to a file created with mode 0600,
 * refusing an existing path (SEAL_E_FILE). Returns 0, a SealCode or a negative errno; on
 * success the key is also in *out (wipe it). */
OC_MUST_CHECK int seal_key_generate_file(const char *path, SealKey *out);

/* Seals secret[0..len) (1..SEAL_SECRET_MAX bytes) bound to aad; writes len + SEAL_OVERHEAD
 * bytes to out. Returns 0, SEAL_E_SIZE or SEAL_E_CRYPTO. */
OC_MUST_CHECK int seal_seal(const SealKey *key, const uint8_t *secret, size_t len,
                            const char *aad, uint8_t *out);

/* Opens sealed[0..sealed_len) bound to aad into out (room for sealed_len - SEAL_OVERHEAD
 * bytes), setting *out_len. Returns 0, SEAL_E_SIZE, SEAL_E_OPEN (authentication failed: out
 * is wiped) or SEAL_E_CRYPTO. */
OC_MUST_CHECK int seal_open(const SealKey *key, const uint8_t *sealed, size_t sealed_len,
                            const char *aad, uint8_t *out, size_t *out_len);

void seal_key_wipe(SealKey *key);
