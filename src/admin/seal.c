/* AES-256-GCM sealing of admin client secrets (seal.h), on OpenSSL's EVP interface. */
#include "admin/seal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "util/hex.h"
#include "util/secret_file.h"

#define SEAL_FILE_MAX 128

void seal_key_wipe(SealKey *key)
{
    if (key)
        OPENSSL_cleanse(key->key, sizeof(key->key));
}

/* A secret file's refusal as a SealCode, anything else (0, a negative errno) unchanged. */
static int seal_file_code(int rc)
{
    switch (rc) {
    case SECRET_FILE_NOT_REGULAR:
    case SECRET_FILE_TOO_BIG:
    case SECRET_FILE_EXISTS:
        return SEAL_E_FILE;
    case SECRET_FILE_LOOSE_MODE:
        return SEAL_E_PERMISSIONS;
    default:
        return rc;
    }
}

int seal_key_load_file(const char *path, SealKey *out)
{
    char buf[SEAL_FILE_MAX + 1];
    size_t len;
    int rc = seal_file_code(secret_file_read(path, buf, sizeof(buf), &len));
    if (rc == 0) {
        if (len == 2 * SEAL_KEY_LEN + 1 && buf[len - 1] == '\n')
            len--;
        if (len != 2 * SEAL_KEY_LEN || hex_decode(buf, len, out->key, SEAL_KEY_LEN) != 0)
            rc = SEAL_E_FORMAT;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc != 0)
        seal_key_wipe(out);
    return rc;
}

int seal_key_generate_file(const char *path, SealKey *out)
{
    if (RAND_bytes(out->key, SEAL_KEY_LEN) != 1)
        return SEAL_E_CRYPTO;
    char text[2 * SEAL_KEY_LEN + 1];
    hex_encode(out->key, SEAL_KEY_LEN, text);
    text[2 * SEAL_KEY_LEN] = '\n';
    int rc = seal_file_code(secret_file_create(path, text, sizeof(text)));
    OPENSSL_cleanse(text, sizeof(text));
    if (rc != 0)
        seal_key_wipe(out);
    return rc;
}

int seal_seal(const SealKey *key, const uint8_t *secret, size_t len, const char *aad,
              uint8_t *out)
{
    if (len == 0 || len > SEAL_SECRET_MAX)
        return SEAL_E_SIZE;
    uint8_t *nonce = out, *ct = out + SEAL_NONCE_LEN, *tag = ct + len;
    if (RAND_bytes(nonce, SEAL_NONCE_LEN) != 1)
        return SEAL_E_CRYPTO;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, rc = SEAL_E_CRYPTO;
    if (ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->key, nonce) == 1 &&
        EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
        EVP_EncryptUpdate(ctx, ct, &n, secret, (int)len) == 1 && (size_t)n == len &&
        EVP_EncryptFinal_ex(ctx, ct + n, &n) == 1 && n == 0 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) == 1)
        rc = 0;
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0)
        OPENSSL_cleanse(out, len + SEAL_OVERHEAD);
    return rc;
}

int seal_open(const SealKey *key, const uint8_t *sealed, size_t sealed_len, const char *aad,
              uint8_t *out, size_t *out_len)
{
    if (sealed_len <= SEAL_OVERHEAD || sealed_len > SEAL_SECRET_MAX + SEAL_OVERHEAD)
        return SEAL_E_SIZE;
    size_t len = sealed_len - SEAL_OVERHEAD;
    const uint8_t *nonce = sealed, *ct = sealed + SEAL_NONCE_LEN, *tag = ct + len;
    uint8_t tagcopy[SEAL_TAG_LEN];
    memcpy(tagcopy, tag, SEAL_TAG_LEN); /* the ctrl call takes a non-const pointer */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, rc = SEAL_E_CRYPTO;
    if (ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key->key, nonce) == 1 &&
        EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
        EVP_DecryptUpdate(ctx, out, &n, ct, (int)len) == 1 && (size_t)n == len &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tagcopy) == 1) {
        /* Only the final step checks the tag: anything else is a failure of OpenSSL. */
        rc = EVP_DecryptFinal_ex(ctx, out + n, &n) == 1 ? 0 : SEAL_E_OPEN;
    }
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0) {
        OPENSSL_cleanse(out, len);
        return rc;
    }
    *out_len = len;
    return 0;
}
