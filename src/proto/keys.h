/* secp256k1 keys and ECDSA over SHA-256, as Opencharge uses them (spec section 2; design.md,
 * "keys / signatures"). One libsecp256k1 context for the whole process, created on first use
 * and randomized; private key bytes are wiped when no longer needed.
 *
 * Public keys: parsed from 128-hex (x‖y), 130-hex ("04"‖x‖y) or 66-hex compressed; printed as
 * 128-hex lowercase. Signatures: emitted as 130-hex r‖s‖v, low-S, RFC 6979, v = 1b/1c;
 * accepted as 130-hex (v must be 1b or 1c) or 128-hex r‖s, hex in either case, with high-S
 * normalised before verifying. */
#pragma once

#include <secp256k1.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define KEY_PUBLIC_HEX_LEN 128
#define SIG_HEX_LEN 130

typedef struct PublicKey {
    secp256k1_pubkey point;
} PublicKey;

typedef struct PrivateKey {
    uint8_t secret[32];  /* wiped by key_private_wipe */
    PublicKey pub;
} PrivateKey;

typedef enum KeyCode {
    KEY_E_FORMAT = 1,    /* wrong length, non-hex, or not a point / not a valid scalar */
    KEY_E_PERMISSIONS,   /* key file readable or writable by group or others */
    KEY_E_FILE,          /* key file not a regular file (a symlink, directory, FIFO...) or
                            larger than 256 bytes; a missing or unreadable file is reported
                            as the negative errno (-ENOENT, -EACCES) instead */
    KEY_E_EXISTS,        /* key_generate_file: the file already exists */
} KeyCode;

typedef enum SigCode {
    SIG_E_FORMAT = 1,    /* not 128/130 hex, or v not 1b/1c, or r/s out of range */
    SIG_E_MISMATCH,      /* well-formed but does not verify against the key */
} SigCode;

/* Parses a public key in any accepted form. Returns 0, or KEY_E_FORMAT (out untouched). */
OC_MUST_CHECK int key_parse_public(const char *hex, size_t len, PublicKey *out);

/* Writes the 128-hex lowercase form and a NUL (out holds KEY_PUBLIC_HEX_LEN + 1 bytes). */
void key_format_public(const PublicKey *pk, char out[KEY_PUBLIC_HEX_LEN + 1]);

/* Parses 64 hex digits into a private key (and derives its public key). Returns 0, or
 * KEY_E_FORMAT for bad hex or a scalar outside [1, n-1]; out is wiped on failure. */
OC_MUST_CHECK int key_parse_private(const char *hex, size_t len, PrivateKey *out);

/* Loads a private key file holding 64 hex digits, optionally followed by one newline.
 * Refuses (KEY_E_PERMISSIONS) a file whose mode grants any access to group or others, and
 * (KEY_E_FILE) anything that is not a regular file. The read buffer is wiped. Returns 0,
 * a KeyCode, or a negative errno from the file system. out is wiped on failure.
 * A symlink is never followed (KEY_E_FILE); type, mode and size are judged by fstat before
 * any byte is read. Any other content ("\r\n", two newlines, spaces) is KEY_E_FORMAT. */
OC_MUST_CHECK int key_load_private_file(const char *path, PrivateKey *out);

/* Creates path with mode 0600 (O_EXCL: never overwrites; KEY_E_EXISTS if present) holding a
 * fresh random key as 64 hex digits and a newline, and returns it in *out. Returns 0, a
 * KeyCode, or a negative errno. */
OC_MUST_CHECK int key_generate_file(const char *path, PrivateKey *out);

/* Generates a fresh random private key. Returns 0 or -EIO if no randomness is available. */
OC_MUST_CHECK int key_generate(PrivateKey *out);

/* Wipes the secret (OPENSSL_cleanse). Accepts NULL. */
void key_private_wipe(PrivateKey *key);

/* Signs SHA256(msg) and writes 130 lowercase hex chars plus a NUL to out. Returns 0 or -EIO
 * (libsecp256k1 refused, which does not happen for a valid key). */
OC_MUST_CHECK int sig_sign(const PrivateKey *key, const void *msg, size_t msg_len,
                           char out[SIG_HEX_LEN + 1]);

/* As sig_sign, over a 32-byte digest the caller already computed. */
OC_MUST_CHECK int sig_sign_digest(const PrivateKey *key, const uint8_t digest[32],
                                  char out[SIG_HEX_LEN + 1]);

/* Verifies a hex signature (len bytes) over SHA256(msg). Returns 0 when valid, SIG_E_FORMAT
 * or SIG_E_MISMATCH otherwise. v is checked to be 1b or 1c but not used: the key is known,
 * so nothing is recovered from the signature. r or s of zero is SIG_E_FORMAT. */
OC_MUST_CHECK int sig_verify(const PublicKey *pk, const void *msg, size_t msg_len,
                             const char *sig_hex, size_t sig_len);

/* As sig_verify, over a 32-byte digest. */
OC_MUST_CHECK int sig_verify_digest(const PublicKey *pk, const uint8_t digest[32],
                                    const char *sig_hex, size_t sig_len);

/* SHA-256 of len bytes into out (32 bytes); and the lowercase hex form (65 bytes). */
void sha256(const void *data, size_t len, uint8_t out[32]);
void sha256_hex(const void *data, size_t len, char out[65]);

/* The process-wide randomized context (created on first call; thread-safe). Exposed for
 * modules that need other libsecp256k1 calls. Never NULL: aborts if creation fails. */
const secp256k1_context *key_context(void);
