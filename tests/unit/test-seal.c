/* Unit tests for admin/seal: the GCM spec's AES-256 test case 16 opened byte for byte, round
 * trips, every tampering (nonce, ciphertext, tag, associated data, truncation) and a wrong key
 * refused with the output wiped, and key files (mode, symlink, content, creation). When
 * OCG_TEST_SECRETS_FILE is set, the keys made here are appended to it (the no-secrets-in-logs
 * test looks for them). */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/seal.h"
#include "util/hex.h"

static void note_secret(const uint8_t *key)
{
    const char *path = getenv("OCG_TEST_SECRETS_FILE");
    if (!path || !*path)
        return;
    char hex[2 * SEAL_KEY_LEN + 1];
    hex_encode(key, SEAL_KEY_LEN, hex);
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s\n", hex);
        fclose(f);
    }
}

static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    if (hex_decode(hex, 2 * n, out, n) != 0)
        abort();
    return n;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void test_vector(void)
{
    /* McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16. */
    SealKey key;
    uint8_t sealed[256], plain[256], want[128];
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key.key);
    size_t n = unhex("cafebabefacedbaddecaf888", sealed);
    n += unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3d"
               "a7b08b1056828838c5f61e6393ba7a0abcc9f662", sealed + n);
    n += unhex("76fc6ece0f4e1768cddf8853bb2d551b", sealed + n);
    size_t wn = unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95"
                      "956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", want);
    uint8_t aad_bytes[20];
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad_bytes);
    char aad[21];
    memcpy(aad, aad_bytes, 20);
    aad[20] = '\0';
    size_t len = 0;
    CHECK_INT(seal_open(&key, sealed, n, aad, plain, &len), 0, "GCM test case 16 opens");
    CHECK_BYTES(plain, len, want, wn, "and gives the published plaintext");
    aad[19] ^= 1;
    CHECK_INT(seal_open(&key, sealed, n, aad, plain, &len), SEAL_E_OPEN,
              "test case 16 with one bit of the AAD flipped is refused");
    CHECK(all_zero(plain, wn), "and the output is wiped");
}

static void test_round_trips(void)
{
    SealKey key, other;
    uint8_t secret[SEAL_SECRET_MAX], sealed[SEAL_SECRET_MAX + SEAL_OVERHEAD],
        again[SEAL_SECRET_MAX + SEAL_OVERHEAD], plain[SEAL_SECRET_MAX];
    size_t len = 0;
    for (size_t i = 0; i < SEAL_KEY_LEN; i++) {
        key.key[i] = (uint8_t)(i * 7 + 1);
        other.key[i] = key.key[i];
    }
    other.key[31] ^= 0x80;
    const char *id = "ocgc_0123456789abcdef01234567";
    const size_t lens[] = { 1, 16, 64, 65, SEAL_SECRET_MAX };
    for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        size_t sl = lens[k];
        for (size_t i = 0; i < sl; i++)
            secret[i] = (uint8_t)('a' + (i * 13 + k) % 26);
        CHECK_INT(seal_seal(&key, secret, sl, id, sealed), 0, "seal %zu bytes", sl);
        CHECK_INT(seal_open(&key, sealed, sl + SEAL_OVERHEAD, id, plain, &len), 0,
                  "open %zu bytes", sl);
        CHECK_BYTES(plain, len, secret, sl, "round trip of %zu bytes", sl);
        CHECK(memcmp(sealed + SEAL_NONCE_LEN, secret, sl) != 0,
              "the sealed form does not hold the secret in clear (%zu bytes)", sl);
        CHECK_INT(seal_seal(&key, secret, sl, id, again), 0, "seal the same secret again");
        CHECK(memcmp(sealed, again, SEAL_NONCE_LEN) != 0 &&
                  memcmp(sealed, again, sl + SEAL_OVERHEAD) != 0,
              "a fresh nonce each time: two seals differ (%zu bytes)", sl);

        size_t positions[] = { 0, SEAL_NONCE_LEN - 1, SEAL_NONCE_LEN, SEAL_NONCE_LEN + sl - 1,
                               SEAL_NONCE_LEN + sl, sl + SEAL_OVERHEAD - 1 };
        const char *what[] = { "nonce", "nonce end", "ciphertext", "ciphertext end", "tag",
                               "tag end" };
        for (size_t p = 0; p < 6; p++) {
            sealed[positions[p]] ^= 0x01;
            memset(plain, 0x55, sizeof(plain));
            CHECK_INT(seal_open(&key, sealed, sl + SEAL_OVERHEAD, id, plain, &len), SEAL_E_OPEN,
                      "one bit flipped in the %s refused (%zu bytes)", what[p], sl);
            CHECK(all_zero(plain, sl), "and the output wiped");
            sealed[positions[p]] ^= 0x01;
        }
        CHECK_INT(seal_open(&key, sealed, sl + SEAL_OVERHEAD, "ocgc_0123456789abcdef01234568",
                            plain, &len), SEAL_E_OPEN,
                  "another client id as AAD refused (%zu bytes)", sl);
        CHECK_INT(seal_open(&key, sealed, sl + SEAL_OVERHEAD, "", plain, &len), SEAL_E_OPEN,
                  "an empty AAD refused (%zu bytes)", sl);
        CHECK_INT(seal_open(&other, sealed, sl + SEAL_OVERHEAD, id, plain, &len), SEAL_E_OPEN,
                  "a wrong key refused (%zu bytes)", sl);
        CHECK_INT(seal_open(&key, sealed, sl + SEAL_OVERHEAD - 1, id, plain, &len),
                  sl + SEAL_OVERHEAD - 1 <= SEAL_OVERHEAD ? SEAL_E_SIZE : SEAL_E_OPEN,
                  "a truncated sealed text refused (%zu bytes)", sl);
    }
    CHECK_INT(seal_seal(&key, secret, 0, id, sealed), SEAL_E_SIZE, "an empty secret refused");
    CHECK_INT(seal_seal(&key, secret, SEAL_SECRET_MAX + 1, id, sealed), SEAL_E_SIZE,
              "a secret past SEAL_SECRET_MAX refused");
    CHECK_INT(seal_open(&key, sealed, SEAL_OVERHEAD, id, plain, &len), SEAL_E_SIZE,
              "a sealed text with no ciphertext refused");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0)
        abort();
    if (chmod(path, mode) != 0)
        abort();
}

static void test_files(void)
{
    char dir[] = "/tmp/test-seal.XXXXXX";
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        exit(1);
    }
    char path[256], link[256];
    snprintf(path, sizeof(path), "%s/sealing.key", dir);
    snprintf(link, sizeof(link), "%s/link.key", dir);
    SealKey made, loaded;
    CHECK_INT(seal_key_generate_file(path, &made), 0, "generate a sealing key file");
    note_secret(made.key);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "it is created with mode 0600");
    CHECK_INT(seal_key_load_file(path, &loaded), 0, "and loads");
    CHECK(memcmp(made.key, loaded.key, SEAL_KEY_LEN) == 0, "to the same key");
    SealKey again;
    CHECK_INT(seal_key_generate_file(path, &again), SEAL_E_FILE,
              "generating over an existing file is refused");
    CHECK(memcmp(made.key, loaded.key, SEAL_KEY_LEN) == 0 &&
              seal_key_load_file(path, &loaded) == 0 &&
              memcmp(made.key, loaded.key, SEAL_KEY_LEN) == 0,
          "and the file is untouched");
    CHECK_INT(chmod(path, 0640), 0, "chmod 0640");
    CHECK_INT(seal_key_load_file(path, &loaded), SEAL_E_PERMISSIONS,
              "a key file readable by the group is refused");
    CHECK(all_zero(loaded.key, SEAL_KEY_LEN), "and the output wiped");
    CHECK_INT(chmod(path, 0604), 0, "chmod 0604");
    CHECK_INT(seal_key_load_file(path, &loaded), SEAL_E_PERMISSIONS,
              "a key file readable by others is refused");
    CHECK_INT(chmod(path, 0600), 0, "chmod 0600");
    CHECK_INT(symlink(path, link), 0, "make a symlink to the key");
    CHECK_INT(seal_key_load_file(link, &loaded), SEAL_E_FILE, "a symlink is not followed");
    CHECK_INT(seal_key_load_file(dir, &loaded), SEAL_E_FILE, "a directory is refused");
    snprintf(link, sizeof(link), "%s/missing.key", dir);
    CHECK_INT(seal_key_load_file(link, &loaded), -ENOENT, "a missing file is -ENOENT");

    const char *bad[] = {
        "", "00", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefg\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(path, bad[i], 0600);
        CHECK_INT(seal_key_load_file(path, &loaded), SEAL_E_FORMAT, "bad key file content %zu",
                  i);
    }
    write_file(path, "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 0600);
    CHECK_INT(seal_key_load_file(path, &loaded), 0, "64 hex digits without a newline, any case");
    CHECK(loaded.key[0] == 0x01 && loaded.key[7] == 0xef && loaded.key[31] == 0xef,
          "decoded as hex");
    seal_key_wipe(&loaded);
    CHECK(all_zero(loaded.key, SEAL_KEY_LEN), "seal_key_wipe zeroes the key");
    seal_key_wipe(NULL);
    seal_key_wipe(&made);
    unlink(path);
    snprintf(link, sizeof(link), "%s/link.key", dir);
    unlink(link);
    rmdir(dir);
}

int main(void)
{
    test_vector();
    test_round_trips();
    test_files();
    return tl_done();
}
