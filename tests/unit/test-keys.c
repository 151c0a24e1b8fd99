/* Unit tests for proto/keys: the interop vectors signed byte for byte and verified, every
 * accepted and refused key and signature form, high-S handling, random round trips, and key
 * files (modes, links, content, creation). argv[1] is the vectors file. Private keys are
 * compared with memcmp and never printed, even when a check fails. */
#include "testlib.h"
#include "vectorlib.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <secp256k1_recovery.h>

#include "proto/keys.h"
#include "util/hex.h"

#define ROUND_TRIPS 1000

/* n/2 for secp256k1, big-endian: a low-S signature has s <= this. */
static const uint8_t half_order[32] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
};
#define ORDER_HEX "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
#define ORDER_MINUS_1_HEX "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140"
#define ZERO32_HEX "0000000000000000000000000000000000000000000000000000000000000000"
#define ONE32_HEX "0000000000000000000000000000000000000000000000000000000000000001"
#define FF32_HEX "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

static json_t *vectors;

/* --- helpers ------------------------------------------------------------------------ */

static PrivateKey vector_private(const char *label)
{
    PrivateKey key;
    const char *hex = vstr(vector_key(vectors, label), "private_key", NULL);
    if (key_parse_private(hex, strlen(hex), &key) != 0)
        bail("vector private key does not parse", label);
    return key;
}

static PublicKey vector_public(const char *label)
{
    PublicKey pk;
    const char *hex = vstr(vector_key(vectors, label), "public_key", NULL);
    if (key_parse_public(hex, strlen(hex), &pk) != 0)
        bail("vector public key does not parse", label);
    return pk;
}

static bool pub_equal(const PublicKey *a, const PublicKey *b)
{
    return secp256k1_ec_pubkey_cmp(key_context(), &a->point, &b->point) == 0;
}

/* Upper-case copy in a rotating static buffer (a few may be live at once). */
static const char *upper(const char *s)
{
    static char bufs[4][512];
    static int next;
    char *out = bufs[next++ % 4];
    size_t n = strlen(s);
    if (n >= sizeof(bufs[0]))
        bail("upper: string too long", NULL);
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
    return out;
}

/* Replaces the single occurrence of from in s; bails if it is not there exactly once, since
 * then the negative vector would not be testing what it claims. Caller frees. */
static char *replace_once(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    if (!at || strstr(at + 1, from))
        bail("replace_once: pattern not found exactly once", from);
    size_t pre = (size_t)(at - s), fl = strlen(from), tl = strlen(to), sl = strlen(s);
    char *out = malloc(sl - fl + tl + 1);
    if (!out)
        bail("out of memory", NULL);
    memcpy(out, s, pre);
    memcpy(out + pre, to, tl);
    memcpy(out + pre + tl, at + fl, sl - pre - fl + 1);
    return out;
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* splitmix64: reproducible randomness for messages, keys and bit positions. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_bytes(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)rng_next();
}

static PrivateKey rng_private(void)
{
    for (;;) {
        uint8_t raw[32];
        char hex[65];
        PrivateKey key;
        rng_bytes(raw, sizeof(raw));
        hex_encode(raw, sizeof(raw), hex);
        int r = key_parse_private(hex, 64, &key);
        memset(raw, 0, sizeof(raw));
        memset(hex, 0, sizeof(hex));
        if (r == 0)
            return key;
    }
}

/* --- the shared context ------------------------------------------------------------- */

#define CTX_THREADS 8

typedef struct CtxThread {
    pthread_t tid;
    const char *private_hex;
    const secp256k1_context *ctx;
    int failures;
} CtxThread;

static void *ctx_thread_main(void *arg)
{
    CtxThread *t = arg;
    PrivateKey key;
    /* The first libsecp256k1 use in each thread, so they race on creating the context. */
    if (key_parse_private(t->private_hex, strlen(t->private_hex), &key) != 0) {
        t->failures++;
        return NULL;
    }
    t->ctx = key_context();
    for (int i = 0; i < 20; i++) {
        char msg[48], sig[SIG_HEX_LEN + 1];
        int n = snprintf(msg, sizeof(msg), "thread %p message %d", (void *)t, i);
        if (sig_sign(&key, msg, (size_t)n, sig) != 0 ||
            sig_verify(&key.pub, msg, (size_t)n, sig, SIG_HEX_LEN) != 0)
            t->failures++;
    }
    key_private_wipe(&key);
    return NULL;
}

/* Must run before anything else touches keys.c. */
static void test_context_threads(void)
{
    const char *hex = vstr(vector_key(vectors, "provider"), "private_key", NULL);
    CtxThread t[CTX_THREADS];
    int started = 0, failures = 0, same_ctx = 1;

    for (int i = 0; i < CTX_THREADS; i++) {
        t[i] = (CtxThread){ .private_hex = hex };
        if (pthread_create(&t[i].tid, NULL, ctx_thread_main, &t[i]) != 0)
            break;
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(t[i].tid, NULL);
        failures += t[i].failures;
        if (t[i].ctx != key_context())
            same_ctx = 0;
    }
    CHECK_INT(started, CTX_THREADS, "context: %d threads started", CTX_THREADS);
    CHECK(same_ctx && key_context() != NULL, "context: every thread got the one context");
    CHECK_INT(failures, 0, "context: concurrent first use, sign and verify in %d threads",
              CTX_THREADS);
}

/* --- hashing ------------------------------------------------------------------------ */

static void test_sha256(void)
{
    char hex[65];
    uint8_t raw[32], raw2[32];

    sha256_hex("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "sha256: empty string");
    sha256_hex(NULL, 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "sha256: NULL with length 0");
    sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
              "sha256: \"abc\" (FIPS 180-2)");
    sha256("abc", 3, raw);
    CHECK(hex_decode(hex, 64, raw2, 32) == 0 && memcmp(raw, raw2, 32) == 0,
          "sha256: raw and hex forms agree");

    size_t i;
    json_t *p;
    size_t len;
    const char *text;
    json_array_foreach(varr(vectors, "proofs"), i, p) {
        text = vstr(p, "strict_canonical", &len);
        sha256_hex(text, len, hex);
        CHECK_STR(hex, vstr(p, "strict_sha256", NULL), "sha256: proofs[%zu].strict_sha256", i);
        text = vstr(p, "legacy_canonical", &len);
        sha256_hex(text, len, hex);
        CHECK_STR(hex, vstr(p, "legacy_sha256", NULL), "sha256: proofs[%zu].legacy_sha256", i);
    }
    json_array_foreach(varr(vectors, "requests"), i, p) {
        text = vstr(p, "body", &len);
        sha256_hex(text, len, hex);
        CHECK_STR(hex, vstr(p, "body_sha256", NULL), "sha256: requests[%zu].body_sha256", i);
    }
}

/* --- keys --------------------------------------------------------------------------- */

static void test_vector_keys(void)
{
    size_t i;
    json_t *k;
    json_array_foreach(varr(vectors, "keys"), i, k) {
        const char *label = vstr(k, "label", NULL);
        const char *want = vstr(k, "public_key", NULL);
        char got[KEY_PUBLIC_HEX_LEN + 1];
        PrivateKey priv;

        const char *priv_forms[] = { vstr(k, "private_key", NULL),
                                     upper(vstr(k, "private_key", NULL)) };
        for (size_t f = 0; f < OC_ARRAY_LEN(priv_forms); f++) {
            int r = key_parse_private(priv_forms[f], strlen(priv_forms[f]), &priv);
            CHECK_INT(r, 0, "keys[%s]: private key parses (%s)", label,
                      f ? "upper case" : "lower case");
            if (r != 0)
                continue;
            key_format_public(&priv.pub, got);
            CHECK_STR(got, want, "keys[%s]: derived public key (%s private hex)", label,
                      f ? "upper case" : "lower case");
            key_private_wipe(&priv);
            CHECK(all_zero(&priv, sizeof(priv)), "keys[%s]: key_private_wipe zeroes the key",
                  label);
        }

        const char *names[] = { "public_key", "public_key_04", "public_key_compressed" };
        for (size_t n = 0; n < OC_ARRAY_LEN(names); n++) {
            for (int up = 0; up < 2; up++) {
                const char *text =
                    up ? upper(vstr(k, names[n], NULL)) : vstr(k, names[n], NULL);
                PublicKey pk;
                int r = key_parse_public(text, strlen(text), &pk);
                CHECK_INT(r, 0, "keys[%s]: %s parses (%s)", label, names[n],
                          up ? "upper case" : "lower case");
                if (r != 0)
                    continue;
                key_format_public(&pk, got);
                CHECK_STR(got, want, "keys[%s]: %s (%s) formats as public_key", label,
                          names[n], up ? "upper case" : "lower case");
            }
        }
    }
    key_private_wipe(NULL);
    CHECK(1, "keys: key_private_wipe(NULL) is harmless");
}

static void test_bad_public_keys(void)
{
    const char *pub = vstr(vector_key(vectors, "provider"), "public_key", NULL); /* 128 hex */
    const char *cmp = vstr(vector_key(vectors, "provider"), "public_key_compressed", NULL);
    char b[KEY_PUBLIC_HEX_LEN + 1];
    struct {
        char text[140];
        size_t len;
        const char *what;
    } cases[32];
    size_t n = 0;

#define ADD(what_, ...)                                                                     \
    do {                                                                                    \
        snprintf(cases[n].text, sizeof(cases[n].text), __VA_ARGS__);                       \
        cases[n].len = strlen(cases[n].text);                                               \
        cases[n].what = (what_);                                                            \
        n++;                                                                                \
    } while (0)

    ADD("empty", "%s", "");
    ADD("127 hex", "%.127s", pub);
    ADD("129 hex", "%s0", pub);
    ADD("64 hex (x only)", "%.64s", pub);
    ADD("130 hex with prefix 05", "05%s", pub);
    ADD("130 hex with prefix 06 (hybrid)", "06%s", pub);
    ADD("130 hex with prefix 07 (hybrid)", "07%s", pub);
    ADD("130 hex with prefix 00", "00%s", pub);
    ADD("131 hex (04 + 129)", "04%s0", pub);
    snprintf(b, sizeof(b), "%s", pub);
    b[127] = b[127] == '0' ? '1' : '0';
    ADD("128 hex not on the curve (y changed)", "%s", b);
    ADD("130 hex 04 + not on the curve", "04%s", b);
    ADD("128 hex, x = 0", "%.64s%s", ZERO32_HEX, pub + 64);
    ADD("128 hex all zero", "%s%s", ZERO32_HEX, ZERO32_HEX);
    snprintf(b, sizeof(b), "%s", pub);
    b[10] = 'g';
    ADD("128 hex with a 'g'", "%s", b);
    b[10] = ' ';
    ADD("128 hex with a space", "%s", b);
    ADD("128 hex with 0x prefix", "0x%.126s", pub);
    ADD("compressed with prefix 05", "05%s", cmp + 2);
    ADD("compressed with prefix 04", "04%s", cmp + 2);
    ADD("compressed with prefix 00", "00%s", cmp + 2);
    ADD("compressed, x >= p", "02%s", FF32_HEX);
    ADD("65 hex (compressed minus one)", "%.65s", cmp);
    ADD("67 hex (compressed plus one)", "%s0", cmp);
#undef ADD

    for (size_t i = 0; i < n; i++) {
        PublicKey pk;
        memset(&pk, 0xa5, sizeof(pk));
        int r = key_parse_public(cases[i].text, cases[i].len, &pk);
        CHECK_INT(r, KEY_E_FORMAT, "public key refused: %s", cases[i].what);
        PublicKey poison;
        memset(&poison, 0xa5, sizeof(poison));
        CHECK(memcmp(&pk, &poison, sizeof(pk)) == 0, "public key refused: %s: out untouched",
              cases[i].what);
    }

    /* An embedded NUL inside an otherwise valid key: the length, not the NUL, decides. */
    char nul[KEY_PUBLIC_HEX_LEN];
    memcpy(nul, pub, sizeof(nul));
    nul[5] = '\0';
    PublicKey pk;
    CHECK_INT(key_parse_public(nul, sizeof(nul), &pk), KEY_E_FORMAT,
              "public key refused: embedded NUL");
    CHECK_INT(key_parse_public(NULL, 0, &pk), KEY_E_FORMAT, "public key refused: NULL");
}

static void test_bad_private_keys(void)
{
    const char *good = vstr(vector_key(vectors, "provider"), "private_key", NULL);
    char b[80];
    struct {
        const char *text;
        const char *what;
    } cases[] = {
        { "", "empty" },
        { ZERO32_HEX, "zero" },
        { ORDER_HEX, "n (the group order)" },
        { FF32_HEX, "2^256 - 1" },
        { "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142", "n + 1" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        PrivateKey key;
        memset(&key, 0xa5, sizeof(key));
        CHECK_INT(key_parse_private(cases[i].text, strlen(cases[i].text), &key), KEY_E_FORMAT,
                  "private key refused: %s", cases[i].what);
        CHECK(all_zero(&key, sizeof(key)), "private key refused: %s: out wiped", cases[i].what);
    }

    struct {
        size_t len;
        int pos;
        char c;
        const char *what;
    } edits[] = {
        { 63, -1, 0, "63 hex" },
        { 65, 64, '0', "65 hex" },
        { 64, 7, 'g', "non-hex 'g'" },
        { 64, 0, ' ', "leading space" },
        { 64, 63, '\n', "newline instead of the last digit" },
        { 64, 30, '\0', "embedded NUL" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(edits); i++) {
        PrivateKey key;
        memcpy(b, good, 64);
        if (edits[i].pos >= 0)
            b[edits[i].pos] = edits[i].c;
        memset(&key, 0xa5, sizeof(key));
        CHECK_INT(key_parse_private(b, edits[i].len, &key), KEY_E_FORMAT,
                  "private key refused: %s", edits[i].what);
        CHECK(all_zero(&key, sizeof(key)), "private key refused: %s: out wiped", edits[i].what);
    }
    memset(b, 0, sizeof(b));

    PrivateKey key;
    CHECK_INT(key_parse_private(NULL, 64, &key), KEY_E_FORMAT, "private key refused: NULL");
    CHECK_INT(key_parse_private(ONE32_HEX, 64, &key), 0, "private key accepted: 1");
    CHECK_INT(key_parse_private(ORDER_MINUS_1_HEX, 64, &key), 0, "private key accepted: n - 1");
    key_private_wipe(&key);
}

static void test_generate(void)
{
    PrivateKey a, b;
    CHECK_INT(key_generate(&a), 0, "key_generate: first key");
    CHECK_INT(key_generate(&b), 0, "key_generate: second key");
    CHECK(memcmp(a.secret, b.secret, 32) != 0, "key_generate: two keys differ");
    CHECK(!pub_equal(&a.pub, &b.pub), "key_generate: two public keys differ");

    /* The public half matches what parsing the secret derives. */
    char hex[65];
    PrivateKey c;
    hex_encode(a.secret, 32, hex);
    int r = key_parse_private(hex, 64, &c);
    memset(hex, 0, sizeof(hex));
    CHECK(r == 0 && pub_equal(&a.pub, &c.pub), "key_generate: public key matches the secret");

    char sig[SIG_HEX_LEN + 1];
    CHECK(sig_sign(&a, "m", 1, sig) == 0 && sig_verify(&a.pub, "m", 1, sig, SIG_HEX_LEN) == 0,
          "key_generate: the key signs and verifies");
    CHECK_INT(sig_verify(&b.pub, "m", 1, sig, SIG_HEX_LEN), SIG_E_MISMATCH,
              "key_generate: another generated key does not verify it");
    key_private_wipe(&a);
    key_private_wipe(&b);
    key_private_wipe(&c);
}

/* --- signature vectors ---------------------------------------------------------------- */

typedef struct SignVec {
    char name[64];
    const char *signer;
    const char *msg;
    size_t msg_len;
    const char *sig;
} SignVec;

static size_t sign_vectors(SignVec *out, size_t cap)
{
    size_t n = 0, i;
    const json_t *v;

#define SV(signer_, obj_, msg_key_, sig_key_, ...)                                          \
    do {                                                                                    \
        if (n == cap)                                                                       \
            bail("too many signature vectors", NULL);                                       \
        snprintf(out[n].name, sizeof(out[n].name), __VA_ARGS__);                            \
        out[n].signer = (signer_);                                                          \
        out[n].msg = vstr((obj_), (msg_key_), &out[n].msg_len);                             \
        out[n].sig = vstr((obj_), (sig_key_), NULL);                                        \
        n++;                                                                                \
    } while (0)

    json_array_foreach(varr(vectors, "proofs"), i, v) {
        SV(vstr(v, "signer", NULL), v, "strict_canonical", "strict_signature",
           "proofs[%zu] strict", i);
        SV(vstr(v, "signer", NULL), v, "legacy_canonical", "legacy_signature",
           "proofs[%zu] legacy", i);
    }
    v = vobj(vectors, "gateway_proof");
    SV(vstr(v, "signer", NULL), v, "strict_canonical", "strict_signature", "gateway_proof strict");
    SV(vstr(v, "signer", NULL), v, "legacy_canonical", "legacy_signature", "gateway_proof legacy");
    v = vobj(vectors, "metadata_config");
    SV(vstr(v, "signer", NULL), v, "strict_canonical", "signature", "metadata_config");
    json_array_foreach(varr(vectors, "requests"), i, v)
        SV(vstr(v, "signer", NULL), v, "string_to_sign", "signature", "requests[%zu]", i);
    json_array_foreach(varr(vectors, "responses"), i, v)
        SV(vstr(v, "signer", NULL), v, "string_to_sign", "signature", "responses[%zu]", i);
#undef SV
    return n;
}

static void test_vector_signatures(void)
{
    SignVec sv[32];
    size_t n = sign_vectors(sv, OC_ARRAY_LEN(sv));
    CHECK(n >= 12, "signature vectors: %zu found", n);

    for (size_t i = 0; i < n; i++) {
        PrivateKey key = vector_private(sv[i].signer);
        PublicKey pub = vector_public(sv[i].signer);
        char sig[SIG_HEX_LEN + 1], sig2[SIG_HEX_LEN + 1];
        uint8_t digest[32];

        CHECK_INT(sig_sign(&key, sv[i].msg, sv[i].msg_len, sig), 0, "%s: sig_sign", sv[i].name);
        CHECK_STR(sig, sv[i].sig, "%s: signature equals the vector byte for byte", sv[i].name);
        sha256(sv[i].msg, sv[i].msg_len, digest);
        CHECK_INT(sig_sign_digest(&key, digest, sig2), 0, "%s: sig_sign_digest", sv[i].name);
        CHECK_STR(sig2, sv[i].sig, "%s: sig_sign_digest equals the vector", sv[i].name);
        key_private_wipe(&key);

        const char *s = sv[i].sig;
        CHECK_INT(sig_verify(&pub, sv[i].msg, sv[i].msg_len, s, strlen(s)), 0,
                  "%s: vector signature verifies", sv[i].name);
        CHECK_INT(sig_verify_digest(&pub, digest, s, strlen(s)), 0,
                  "%s: vector signature verifies (digest)", sv[i].name);
        CHECK_INT(sig_verify(&pub, sv[i].msg, sv[i].msg_len, s, 128), 0,
                  "%s: 128-hex form (without v) verifies", sv[i].name);
        CHECK_INT(sig_verify(&pub, sv[i].msg, sv[i].msg_len, upper(s), strlen(s)), 0,
                  "%s: upper-case hex verifies", sv[i].name);

        /* Any other vector key must not verify it. */
        const char *other = strcmp(sv[i].signer, "merchant") == 0 ? "provider" : "merchant";
        PublicKey wrong = vector_public(other);
        CHECK_INT(sig_verify(&wrong, sv[i].msg, sv[i].msg_len, s, strlen(s)), SIG_E_MISMATCH,
                  "%s: %s's key does not verify it", sv[i].name, other);
        /* Nor does the same signature over the message with one byte more. */
        char *longer = malloc(sv[i].msg_len + 2);
        if (!longer)
            bail("out of memory", NULL);
        memcpy(longer, sv[i].msg, sv[i].msg_len);
        longer[sv[i].msg_len] = ' ';
        CHECK_INT(sig_verify(&pub, longer, sv[i].msg_len + 1, s, strlen(s)), SIG_E_MISMATCH,
                  "%s: does not verify over the message plus a space", sv[i].name);
        free(longer);
    }

    /* Determinism (RFC 6979): the same key and message give the same bytes again. */
    PrivateKey key = vector_private("gateway");
    char s1[SIG_HEX_LEN + 1], s2[SIG_HEX_LEN + 1];
    CHECK(sig_sign(&key, "same message", 12, s1) == 0 &&
              sig_sign(&key, "same message", 12, s2) == 0,
          "determinism: two signatures made");
    CHECK_STR(s1, s2, "determinism: same message signed twice gives identical bytes");
    key_private_wipe(&key);
}

/* The negative[] cases. The canonical writer lives elsewhere, so each case's message is the
 * strict canonical text of proofs[0] with the same edit the case made to proof_json. */
static void test_negative(void)
{
    json_t *p0 = json_array_get(varr(vectors, "proofs"), 0);
    if (!p0)
        bail("vectors: proofs[0] missing", NULL);
    const char *canon = vstr(p0, "strict_canonical", NULL);
    const char *orig_json = vstr(p0, "proof_json", NULL);
    PublicKey pub = vector_public(vstr(p0, "signer", NULL));

    struct {
        const char *name_prefix;
        const char *from, *to; /* the edit, or NULL for the unchanged message */
        int want;
    } expect[] = {
        { "amount changed", "\"15.00\"", "\"15.01\"", SIG_E_MISMATCH },
        { "to.reference changed", "\"gw_pay_abc\"", "\"gw_pay_OTHER\"", SIG_E_MISMATCH },
        { "signed by another key", NULL, NULL, SIG_E_MISMATCH },
        { "v byte not 1b/1c", NULL, NULL, SIG_E_FORMAT },
        { "truncated signature", NULL, NULL, SIG_E_FORMAT },
        { "non-hex characters", NULL, NULL, SIG_E_FORMAT },
    };
    size_t seen = 0, i;
    json_t *v;
    json_array_foreach(varr(vectors, "negative"), i, v) {
        const char *name = vstr(v, "name", NULL);
        size_t e;
        for (e = 0; e < OC_ARRAY_LEN(expect); e++)
            if (strncmp(name, expect[e].name_prefix, strlen(expect[e].name_prefix)) == 0)
                break;
        if (e == OC_ARRAY_LEN(expect)) {
            CHECK(0, "negative[%zu] \"%s\": a case this test does not know", i, name);
            continue;
        }
        seen++;

        /* The edit applied to proof_json must be exactly the case's edit, or the message
         * built below would not be the case's canonical text. */
        char *msg;
        if (expect[e].from) {
            char *edited = replace_once(orig_json, expect[e].from, expect[e].to);
            CHECK_STR(vstr(v, "proof_json", NULL), edited,
                      "negative \"%s\": proof_json is proofs[0] "
                      "with the expected edit", name);
            free(edited);
            msg = replace_once(canon, expect[e].from, expect[e].to);
        } else {
            CHECK_STR(vstr(v, "proof_json", NULL), orig_json, "negative \"%s\": proof_json is "
                      "proofs[0]", name);
            msg = strdup(canon);
        }
        if (!msg)
            bail("out of memory", NULL);

        const char *sig = vstr(v, "signature", NULL);
        int r = sig_verify(&pub, msg, strlen(msg), sig, strlen(sig));
        CHECK_INT(r, expect[e].want, "negative \"%s\": refused with %s", name,
                  expect[e].want == SIG_E_FORMAT ? "SIG_E_FORMAT" : "SIG_E_MISMATCH");

        /* The legacy form does not cover to.reference: the original legacy signature still
         * verifies over the edited proof's legacy text. This is why settle refuses
         * legacy-only proofs from anyone but the issuer. */
        json_t *legacy = json_object_get(v, "legacy_signature_of_original");
        if (legacy) {
            const char *lc = vstr(p0, "legacy_canonical", NULL);
            CHECK_INT(sig_verify(&pub, lc, strlen(lc), json_string_value(legacy),
                                 json_string_length(legacy)),
                      0, "negative \"%s\": legacy signature still verifies (the legacy hole)",
                      name);
        }
        free(msg);
    }
    CHECK_INT(seen, OC_ARRAY_LEN(expect), "negative: every known case present");
}

static bool sig_is_low_s(const char *sig_hex)
{
    uint8_t raw[64];
    if (hex_decode(sig_hex, 128, raw, 64) != 0)
        return false;
    return memcmp(raw + 32, half_order, 32) <= 0;
}

static void test_high_s(void)
{
    const json_t *hs = vobj(vectors, "high_s_variant");
    json_t *p0 = json_array_get(varr(vectors, "proofs"), 0);
    const char *canon = vstr(p0, "strict_canonical", NULL);
    const char *low = vstr(p0, "strict_signature", NULL);
    const char *high = vstr(hs, "signature", NULL);
    PublicKey pub = vector_public(vstr(p0, "signer", NULL));

    CHECK_STR(vstr(hs, "proof_json", NULL), vstr(p0, "proof_json", NULL),
              "high-S: same proof as proofs[0]");
    CHECK(!sig_is_low_s(high), "high-S: the vector really is high-S");
    CHECK(sig_is_low_s(low), "high-S: proofs[0].strict_signature is low-S");
    CHECK(strncmp(high, low, 64) == 0, "high-S: same r as proofs[0].strict_signature");

    /* libsecp256k1 on its own refuses it: the normalisation in sig_verify is what counts. */
    uint8_t raw[64], digest[32];
    secp256k1_ecdsa_signature sig;
    sha256(canon, strlen(canon), digest);
    CHECK(hex_decode(high, 128, raw, 64) == 0 &&
          secp256k1_ecdsa_signature_parse_compact(key_context(), &sig, raw) &&
          !secp256k1_ecdsa_verify(key_context(), &sig, digest, &pub.point),
          "high-S: plain secp256k1_ecdsa_verify refuses it");
    CHECK_INT(sig_verify(&pub, canon, strlen(canon), high, strlen(high)), 0,
              "high-S: sig_verify accepts it after normalising");
    CHECK_INT(sig_verify(&pub, canon, strlen(canon), high, 128), 0,
              "high-S: 128-hex form accepted too");
    CHECK_INT(sig_verify(&pub, canon, strlen(canon) - 1, high, strlen(high)), SIG_E_MISMATCH,
              "high-S: still bound to the message");
}

/* Signature forms refused before any curve arithmetic, and the edges of r and s. */
static void test_signature_forms(void)
{
    json_t *p0 = json_array_get(varr(vectors, "proofs"), 0);
    const char *msg = vstr(p0, "strict_canonical", NULL);
    const char *good = vstr(p0, "strict_signature", NULL);
    size_t mlen = strlen(msg);
    PublicKey pub = vector_public(vstr(p0, "signer", NULL));
    char b[200];

    static const char *ok_v[] = { "1b", "1B" };
    static const char *bad_v[] = { "00", "01", "1a", "1d", "05", "ff", "zz", "1g", " 1" };
    /* The vector's v is 1b: other v values with the same r, s. */
    CHECK(strcmp(good + 128, "1b") == 0, "forms: proofs[0] signature has v = 1b");
    for (size_t i = 0; i < OC_ARRAY_LEN(ok_v); i++) {
        snprintf(b, sizeof(b), "%.128s%s", good, ok_v[i]);
        CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), 0, "forms: v = %s accepted", ok_v[i]);
    }
    /* v is not tied to the recovery id: 1c with this (r, s) is well-formed and verifies. */
    snprintf(b, sizeof(b), "%.128s1c", good);
    CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), 0, "forms: v = 1c accepted (not recovered)");
    snprintf(b, sizeof(b), "%.128s1C", good);
    CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), 0, "forms: v = 1C accepted");
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_v); i++) {
        snprintf(b, sizeof(b), "%.128s%s", good, bad_v[i]);
        CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), SIG_E_FORMAT, "forms: v = \"%s\" refused",
                  bad_v[i]);
    }

    static const size_t bad_len[] = { 0, 1, 64, 126, 127, 129, 131, 132 };
    snprintf(b, sizeof(b), "%s1b", good); /* 132 chars available */
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_len); i++)
        CHECK_INT(sig_verify(&pub, msg, mlen, b, bad_len[i]), SIG_E_FORMAT,
                  "forms: length %zu refused", bad_len[i]);
    CHECK_INT(sig_verify(&pub, msg, mlen, NULL, 130), SIG_E_FORMAT, "forms: NULL refused");

    static const int bad_pos[] = { 0, 63, 64, 127 };
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_pos); i++) {
        snprintf(b, sizeof(b), "%s", good);
        b[bad_pos[i]] = 'x';
        CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), SIG_E_FORMAT,
                  "forms: non-hex at %d refused", bad_pos[i]);
        b[bad_pos[i]] = '\0';
        CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), SIG_E_FORMAT,
                  "forms: NUL at %d refused", bad_pos[i]);
    }

    /* r and s outside [1, n-1]. */
    struct {
        const char *r, *s, *what;
    } range[] = {
        { ZERO32_HEX, NULL, "r = 0" },
        { NULL, ZERO32_HEX, "s = 0" },
        { ORDER_HEX, NULL, "r = n" },
        { NULL, ORDER_HEX, "s = n" },
        { FF32_HEX, NULL, "r = 2^256-1" },
        { NULL, FF32_HEX, "s = 2^256-1" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(range); i++) {
        snprintf(b, sizeof(b), "%.64s%.64s1b", range[i].r ? range[i].r : good,
                 range[i].s ? range[i].s : good + 64);
        CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), SIG_E_FORMAT, "forms: %s refused",
                  range[i].what);
        CHECK_INT(sig_verify(&pub, msg, mlen, b, 128), SIG_E_FORMAT,
                  "forms: %s refused (128-hex form)", range[i].what);
    }
    /* In range but wrong: r = 1, s = n-1. */
    snprintf(b, sizeof(b), "%s%s1b", ONE32_HEX, ORDER_MINUS_1_HEX);
    CHECK_INT(sig_verify(&pub, msg, mlen, b, 130), SIG_E_MISMATCH,
              "forms: r = 1, s = n-1 well-formed but no match");
}

/* --- random round trips ------------------------------------------------------------- */

typedef struct Tally {
    const char *what;
    int failures;
    int first;  /* iteration of the first failure, for reproducing with the seed */
} Tally;

static void tally(Tally *t, bool ok, int iteration)
{
    if (!ok && t->failures++ == 0)
        t->first = iteration;
}

static void test_round_trips(void)
{
    enum { T_SIGN, T_LOW_S, T_V, T_RECOVER, T_DETERMINISTIC, T_VERIFY, T_VERIFY128,
           T_MSG_FLIP, T_SIG_FLIP, T_COUNT };
    Tally t[T_COUNT] = {
        [T_SIGN] = { "sig_sign succeeds", 0, -1 },
        [T_LOW_S] = { "every signature is low-S (s <= n/2)", 0, -1 },
        [T_V] = { "v is 1b or 1c", 0, -1 },
        [T_RECOVER] = { "v = 27 + recid: recovering with it gives the signer's key", 0, -1 },
        [T_DETERMINISTIC] = { "signing again gives identical bytes", 0, -1 },
        [T_VERIFY] = { "sign -> verify ok", 0, -1 },
        [T_VERIFY128] = { "128-hex form verifies", 0, -1 },
        [T_MSG_FLIP] = { "one message bit flipped -> SIG_E_MISMATCH", 0, -1 },
        [T_SIG_FLIP] = { "one signature bit flipped -> refused", 0, -1 },
    };
    const secp256k1_context *ctx = key_context();
    uint8_t *msg = malloc(1025);
    if (!msg)
        bail("out of memory", NULL);

    for (int i = 0; i < ROUND_TRIPS; i++) {
        PrivateKey key = rng_private();
        size_t len = (size_t)(rng_next() % 1025);
        rng_bytes(msg, len);
        char sig[SIG_HEX_LEN + 1], again[SIG_HEX_LEN + 1];

        int r = sig_sign(&key, msg, len, sig);
        tally(&t[T_SIGN], r == 0, i);
        if (r != 0) {
            key_private_wipe(&key);
            continue;
        }
        tally(&t[T_LOW_S], sig_is_low_s(sig), i);
        tally(&t[T_V], strcmp(sig + 128, "1b") == 0 || strcmp(sig + 128, "1c") == 0, i);

        uint8_t raw[65], digest[32];
        secp256k1_ecdsa_recoverable_signature rsig;
        secp256k1_pubkey recovered;
        sha256(msg, len, digest);
        bool rec_ok = hex_decode(sig, SIG_HEX_LEN, raw, 65) == 0 && raw[64] >= 27 &&
                      secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &rsig, raw,
                                                                          raw[64] - 27) &&
                      secp256k1_ecdsa_recover(ctx, &recovered, &rsig, digest) &&
                      secp256k1_ec_pubkey_cmp(ctx, &recovered, &key.pub.point) == 0;
        tally(&t[T_RECOVER], rec_ok, i);

        tally(&t[T_DETERMINISTIC],
              sig_sign(&key, msg, len, again) == 0 && strcmp(sig, again) == 0, i);
        PublicKey pub = key.pub;
        key_private_wipe(&key);

        tally(&t[T_VERIFY], sig_verify(&pub, msg, len, sig, SIG_HEX_LEN) == 0, i);
        tally(&t[T_VERIFY128], sig_verify(&pub, msg, len, sig, 128) == 0, i);

        /* An empty message has no bit to flip: a one-byte message stands in for it. */
        size_t flen = len ? len : 1;
        if (len == 0)
            msg[0] = 0;
        size_t bit = (size_t)(rng_next() % (flen * 8));
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tally(&t[T_MSG_FLIP],
              sig_verify(&pub, msg, flen, sig, SIG_HEX_LEN) == SIG_E_MISMATCH, i);
        msg[bit / 8] ^= (uint8_t)(1u << (bit % 8));

        /* Flip a bit of the bytes, not the hex, so the text stays well-formed hex and the
         * refusal comes from r, s or v themselves. */
        bit = (size_t)(rng_next() % (65 * 8));
        raw[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        hex_encode(raw, 65, again);
        tally(&t[T_SIG_FLIP], sig_verify(&pub, msg, len, again, SIG_HEX_LEN) != 0, i);
    }
    free(msg);

    for (int k = 0; k < T_COUNT; k++) {
        CHECK_INT(t[k].failures, 0, "round trips (%d random keys and messages): %s",
                  ROUND_TRIPS, t[k].what);
        if (t[k].failures)
            printf("#   first failure at iteration %d\n", t[k].first);
    }
}

/* --- key files ---------------------------------------------------------------------- */

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *out = bufs[next++ % 4];
    snprintf(out, sizeof(bufs[0]), "%s/%s", tmpdir, name);
    return out;
}

/* Creates (or replaces) name with exactly these bytes and this mode, whatever the umask. */
static void write_file(const char *name, const char *data, size_t len, mode_t mode)
{
    const char *path = tmp_path(name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        bail("cannot create a test file", path);
    if (len && write(fd, data, len) != (ssize_t)len)
        bail("cannot write a test file", path);
    if (fchmod(fd, mode) != 0)
        bail("cannot chmod a test file", path);
    close(fd);
}

static bool file_mode_is(const char *path, mode_t mode)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode;
}

/* Loads path and checks the result code, that a failure wiped out, and that a success
 * produced the provider vector key. */
static void check_load(const char *path, int want, const char *what)
{
    PrivateKey key;
    memset(&key, 0xa5, sizeof(key));
    int r = key_load_private_file(path, &key);
    CHECK_INT(r, want, "key file: %s", what);
    if (r != 0) {
        CHECK(all_zero(&key, sizeof(key)), "key file: %s: out wiped", what);
        return;
    }
    if (want != 0)
        return;
    PrivateKey ref = vector_private("provider");
    CHECK(memcmp(key.secret, ref.secret, 32) == 0 && pub_equal(&key.pub, &ref.pub),
          "key file: %s: the expected key", what);
    key_private_wipe(&ref);
    key_private_wipe(&key);
}

static void test_key_files(void)
{
    const char *hex = vstr(vector_key(vectors, "provider"), "private_key", NULL);
    char text[300];

    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test-keys-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        bail("mkdtemp failed", tmpdir);

    /* Modes: anything for group or others is refused, whatever the content. */
    snprintf(text, sizeof(text), "%s\n", hex);
    write_file("k", text, 65, 0600);
    check_load(tmp_path("k"), 0, "0600 with a newline loads");
    write_file("k", text, 65, 0400);
    check_load(tmp_path("k"), 0, "0400 loads");
    static const mode_t bad_modes[] = { 0640, 0604, 0644, 0660, 0606, 0610, 0601, 0620, 0602,
                                        0700 | 0070, 0666 };
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_modes); i++) {
        char what[64];
        write_file("k", text, 65, bad_modes[i]);
        snprintf(what, sizeof(what), "mode %04o refused", (unsigned)bad_modes[i]);
        check_load(tmp_path("k"), KEY_E_PERMISSIONS, what);
    }
    /* Judged before reading: bad content in a readable-by-others file is a mode error. */
    write_file("k", "not a key", 9, 0644);
    check_load(tmp_path("k"), KEY_E_PERMISSIONS, "mode checked before content");

    /* Content. */
    struct {
        const char *suffix; /* appended to the 64 hex digits */
        int digits;         /* how many of them */
        int want;
        const char *what;
    } content[] = {
        { "", 64, 0, "64 hex without a newline loads" },
        { "\n", 64, 0, "64 hex and a newline loads" },
        { "", 63, KEY_E_FORMAT, "63 hex refused" },
        { "\n", 63, KEY_E_FORMAT, "63 hex and a newline refused" },
        { "0", 64, KEY_E_FORMAT, "65 hex refused" },
        { "\n\n", 64, KEY_E_FORMAT, "two newlines refused" },
        { "\r\n", 64, KEY_E_FORMAT, "CRLF refused" },
        { " ", 64, KEY_E_FORMAT, "trailing space refused" },
        { "\nx", 64, KEY_E_FORMAT, "trailing junk after the newline refused" },
        { "", 0, KEY_E_FORMAT, "empty file refused" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(content); i++) {
        int n = snprintf(text, sizeof(text), "%.*s%s", content[i].digits, hex, content[i].suffix);
        write_file("k", text, (size_t)n, 0600);
        check_load(tmp_path("k"), content[i].want, content[i].what);
    }
    snprintf(text, sizeof(text), "%s\n", upper(hex));
    write_file("k", text, 65, 0600);
    check_load(tmp_path("k"), 0, "upper-case hex loads");
    snprintf(text, sizeof(text), " %s", hex);
    write_file("k", text, 65, 0600);
    check_load(tmp_path("k"), KEY_E_FORMAT, "leading space refused");
    snprintf(text, sizeof(text), "%s\n", ZERO32_HEX);
    write_file("k", text, 65, 0600);
    check_load(tmp_path("k"), KEY_E_FORMAT, "zero scalar refused");
    snprintf(text, sizeof(text), "%s\n", ORDER_HEX);
    write_file("k", text, 65, 0600);
    check_load(tmp_path("k"), KEY_E_FORMAT, "scalar n refused");
    memset(text, 'a', 256);
    write_file("k", text, 256, 0600);
    check_load(tmp_path("k"), KEY_E_FORMAT, "256 bytes: read, then refused as content");
    memset(text, 'a', 257);
    write_file("k", text, 257, 0600);
    check_load(tmp_path("k"), KEY_E_FILE, "257 bytes refused as too large");
    memset(text, 0, sizeof(text));

    /* What the path is. */
    snprintf(text, sizeof(text), "%s\n", hex);
    write_file("k", text, 65, 0600);
    check_load(tmp_path("missing"), -ENOENT, "missing file gives -ENOENT");
    CHECK(symlink(tmp_path("k"), tmp_path("link")) == 0, "key file: symlink created");
    check_load(tmp_path("link"), KEY_E_FILE, "symlink to a good key refused");
    CHECK(symlink(tmp_path("nowhere"), tmp_path("dangling")) == 0,
          "key file: dangling symlink created");
    check_load(tmp_path("dangling"), KEY_E_FILE, "dangling symlink refused");
    CHECK(mkdir(tmp_path("dir"), 0700) == 0, "key file: directory created");
    check_load(tmp_path("dir"), KEY_E_FILE, "directory refused");
    CHECK(mkfifo(tmp_path("fifo"), 0600) == 0, "key file: FIFO created");
    alarm(30); /* a blocking open would hang here: let SIGALRM end the run instead */
    check_load(tmp_path("fifo"), KEY_E_FILE, "FIFO refused without blocking");
    alarm(0);
    check_load(tmp_path("k/sub"), -ENOTDIR, "a path through a file gives -ENOTDIR");

    /* key_generate_file. */
    PrivateKey gen, loaded;
    const char *gpath = tmp_path("gen.key");
    CHECK_INT(key_generate_file(gpath, &gen), 0, "generate: creates a new key file");
    CHECK(file_mode_is(gpath, 0600), "generate: file mode is 0600");
    size_t flen = 0;
    char *content_read = tl_read_file(gpath, &flen);
    CHECK(flen == 65 && content_read[64] == '\n' && hex_is_valid(content_read, 64) &&
              strspn(content_read, "0123456789abcdef") == 64,
          "generate: file is 64 lower-case hex digits and a newline");
    CHECK(flen == 65 && hex_decode(content_read, 64, (uint8_t *)text, 32) == 0 &&
              memcmp(text, gen.secret, 32) == 0,
          "generate: file holds the returned key");
    memset(content_read, 0, flen);
    free(content_read);
    memset(text, 0, sizeof(text));
    CHECK_INT(key_load_private_file(gpath, &loaded), 0, "generate: the file loads");
    CHECK(memcmp(loaded.secret, gen.secret, 32) == 0 && pub_equal(&loaded.pub, &gen.pub),
          "generate: the loaded key equals the generated one");
    key_private_wipe(&loaded);

    PrivateKey again;
    int r;
    memset(&again, 0xa5, sizeof(again));
    CHECK_INT(key_generate_file(gpath, &again), KEY_E_EXISTS, "generate: refuses to overwrite");
    CHECK(all_zero(&again, sizeof(again)), "generate: refusal wipes out");
    CHECK(key_load_private_file(gpath, &loaded) == 0 &&
              memcmp(loaded.secret, gen.secret, 32) == 0,
          "generate: the existing key is unchanged");
    key_private_wipe(&loaded);
    key_private_wipe(&gen);

    CHECK_INT(key_generate_file(tmp_path("link"), &again), KEY_E_EXISTS,
              "generate: refuses an existing symlink");
    CHECK_INT(key_generate_file(tmp_path("dangling"), &again), KEY_E_EXISTS,
              "generate: refuses a dangling symlink");
    CHECK(access(tmp_path("nowhere"), F_OK) != 0,
          "generate: nothing created through the dangling symlink");
    CHECK_INT(key_generate_file(tmp_path("nodir/x.key"), &again), -ENOENT,
              "generate: missing directory gives -ENOENT");

    /* A write that fails part-way (file size limit) must leave no file behind. */
    struct rlimit fsz;
    if (getrlimit(RLIMIT_FSIZE, &fsz) == 0) {
        struct rlimit small = { 10, fsz.rlim_max };
        void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
        int wr = setrlimit(RLIMIT_FSIZE, &small);
        memset(&again, 0xa5, sizeof(again));
        r = wr == 0 ? key_generate_file(tmp_path("short.key"), &again) : 0;
        setrlimit(RLIMIT_FSIZE, &fsz);
        signal(SIGXFSZ, old_handler);
        CHECK(wr == 0, "generate: file size limit set");
        CHECK_INT(r, -EFBIG, "generate: failed write gives the errno (-EFBIG)");
        CHECK(access(tmp_path("short.key"), F_OK) != 0, "generate: failed write removes the file");
        CHECK(all_zero(&again, sizeof(again)), "generate: failed write wipes out");
    }

    /* A umask that would leave the owner unable to read the key. */
    mode_t old = umask(0277);
    r = key_generate_file(tmp_path("umask.key"), &gen);
    umask(old);
    CHECK_INT(r, 0, "generate: works under umask 0277");
    CHECK(file_mode_is(tmp_path("umask.key"), 0600), "generate: mode 0600 despite umask 0277");
    CHECK(key_load_private_file(tmp_path("umask.key"), &loaded) == 0 &&
              memcmp(loaded.secret, gen.secret, 32) == 0,
          "generate: the umask 0277 key loads");
    key_private_wipe(&loaded);
    key_private_wipe(&gen);

    static const char *names[] = { "k",       "link",      "dangling", "fifo",
                                   "gen.key", "umask.key", "short.key" };
    for (size_t i = 0; i < OC_ARRAY_LEN(names); i++)
        unlink(tmp_path(names[i]));
    rmdir(tmp_path("dir"));
    CHECK(rmdir(tmpdir) == 0, "key files: temporary directory left empty");
}

int main(int argc, char **argv)
{
    vectors = vectors_load(argc, argv, 0);

    /* Reproducible: OCGATE_TEST_SEED=<n> repeats a run. */
    const char *seed_env = getenv("OCGATE_TEST_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0)
                             : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    rng_state = seed;
    printf("# seed %" PRIu64 " (set OCGATE_TEST_SEED to repeat)\n", seed);

    test_context_threads();
    test_sha256();
    test_vector_keys();
    test_bad_public_keys();
    test_bad_private_keys();
    test_generate();
    test_vector_signatures();
    test_negative();
    test_high_s();
    test_signature_forms();
    test_round_trips();
    test_key_files();

    json_decref(vectors);
    return tl_done();
}
