/* The interop suite: every entry of opencharge-vectors.json (from an independent
 * implementation) run through ocgate's own code paths. Inputs are read with json_read_strict
 * as the gateway reads network bytes; jansson's loader only reads the harness file. ocgate's
 * signatures must equal the vectors' byte for byte (RFC 6979 is deterministic), and the
 * vectors' signatures must verify, each only in its own canonical form. argv[1] = the file. */
#include "testlib.h"
#include "vectorlib.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/canon.h"
#include "proto/json.h"
#include "proto/keys.h"
#include "proto/proof.h"
#include "proto/sigstr.h"
#include "util/alloc.h"
#include "util/hex.h"

/* secp256k1 group order n, halved: a signature's s above this is "high-S". */
static const uint8_t half_order[32] = {
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
};

typedef struct VecKey {
    PrivateKey priv;
    PublicKey pub;
} VecKey;

/* ---- harness helpers -------------------------------------------------------------------- */

/* Loads the private and public key of a label; the private key's own public key must be the
 * published one, or every signature comparison below would be meaningless. */
static void load_key(const json_t *vectors, const char *label, VecKey *out)
{
    const json_t *k = vector_key(vectors, label);
    size_t priv_len, pub_len;
    const char *priv = vstr(k, "private_key", &priv_len);
    const char *pub = vstr(k, "public_key", &pub_len);
    if (key_parse_private(priv, priv_len, &out->priv) != 0 ||
        key_parse_public(pub, pub_len, &out->pub) != 0) {
        printf("Bail out! vectors: key \"%s\" does not parse\n", label);
        exit(1);
    }
}

/* Reads a vector input as the gateway would. Returns NULL (and fails a check) if refused. */
static json_t *read_input(const char *text, size_t len, const char *what)
{
    json_t *v = NULL;
    JsonReadError err;
    int r = json_read_strict(text, len, JSON_READ_OBJECT, &v, &err);
    CHECK(r == 0, "%s: json_read_strict accepts the input", what);
    if (r != 0) {
        printf("#   code %d at offset %zu (%s)\n", r, r > 0 ? err.offset : 0,
               r > 0 && err.reason ? err.reason : "");
        return NULL;
    }
    return v;
}

static void check_canon(const json_t *value, CanonForm form, const char *want, size_t want_len,
                        const char *what)
{
    char *out = NULL;
    size_t out_len = 0;
    int r = canon_write(value, form, &out, &out_len);
    CHECK_BYTES(r == 0 ? out : NULL, out_len, want, want_len, "%s: %s canonical bytes", what,
                canon_form_name(form));
    if (r != 0)
        printf("#   canon_write returned %d\n", r);
    oc_free(out);
}

/* Canonical bytes, their SHA-256 (both from the bytes and from canon_sha256) in one form. */
static void check_canon_hash(const json_t *value, CanonForm form, const char *want,
                             size_t want_len, const char *want_sha, const char *what)
{
    check_canon(value, form, want, want_len, what);
    char hex[65];
    sha256_hex(want, want_len, hex);
    CHECK_STR(hex, want_sha, "%s: sha256 of the %s canonical bytes", what,
              canon_form_name(form));
    uint8_t digest[32];
    int r = canon_sha256(value, form, digest);
    hex_encode(digest, sizeof(digest), hex);
    CHECK(r == 0 && strcmp(hex, want_sha) == 0, "%s: canon_sha256 in %s form", what,
          canon_form_name(form));
}

static void check_proof_sign(const json_t *proof, const VecKey *key, CanonForm form,
                             const char *want, const char *what)
{
    char sig[SIG_HEX_LEN + 1] = "";
    int r = proof_sign(proof, &key->priv, form, sig);
    CHECK(r == 0 && strcmp(sig, want) == 0, "%s: proof_sign in %s form equals the vector", what,
          canon_form_name(form));
    if (r != 0 || strcmp(sig, want) != 0)
        printf("#   r=%d got %s\n#   want %s\n", r, sig, want);
}

static void check_proof_verify(const Proof *p, const VecKey *key, CanonForm form,
                               const char *sig, const char *sig_name, int want,
                               const char *what)
{
    int r = proof_verify(p, &key->pub, form, sig, strlen(sig));
    CHECK_INT(r, want, "%s: proof_verify in %s form %s the %s", what, canon_form_name(form),
              want == 0 ? "accepts" : "refuses", sig_name);
}

/* True when the s half of a 130/128-hex signature is above n/2. */
static bool sig_is_high_s(const char *sig_hex)
{
    uint8_t s[32];
    if (hex_decode(sig_hex + 64, 64, s, sizeof(s)) != 0) {
        printf("Bail out! a signature is not hex: %s\n", sig_hex);
        exit(1);
    }
    return memcmp(s, half_order, sizeof(s)) > 0;
}

/* ---- the sections ----------------------------------------------------------------------- */

static void test_keys(const json_t *vectors)
{
    size_t i;
    const json_t *k;
    json_array_foreach(varr(vectors, "keys"), i, k) {
        const char *label = vstr(k, "label", NULL);
        VecKey key;
        load_key(vectors, label, &key);
        char derived[KEY_PUBLIC_HEX_LEN + 1];
        key_format_public(&key.priv.pub, derived);
        CHECK_STR(derived, vstr(k, "public_key", NULL),
                  "keys[%s]: the private key's public key is public_key", label);

        static const char *const forms[] = { "public_key_04", "public_key_compressed" };
        for (size_t f = 0; f < OC_ARRAY_LEN(forms); f++) {
            size_t len;
            const char *hex = vstr(k, forms[f], &len);
            PublicKey pk;
            char printed[KEY_PUBLIC_HEX_LEN + 1] = "";
            int r = key_parse_public(hex, len, &pk);
            if (r == 0)
                key_format_public(&pk, printed);
            CHECK(r == 0 && strcmp(printed, derived) == 0,
                  "keys[%s]: %s is the same point", label, forms[f]);
        }
        key_private_wipe(&key.priv);
    }
    CHECK(i > 0, "keys[] is not empty");
}

static void test_canonical_json(const json_t *vectors)
{
    size_t i;
    const json_t *vec;
    json_array_foreach(varr(vectors, "canonical_json"), i, vec) {
        char what[128];
        snprintf(what, sizeof(what), "canonical_json[%zu] (%s)", i, vstr(vec, "name", NULL));
        size_t len, strict_len, legacy_len;
        const char *input = vstr(vec, "input", &len);
        const char *strict = vstr(vec, "strict", &strict_len);
        const char *legacy = vstr(vec, "legacy_allowlist", &legacy_len);
        json_t *v = read_input(input, len, what);
        if (!v)
            continue;
        check_canon(v, CANON_STRICT, strict, strict_len, what);
        check_canon(v, CANON_LEGACY, legacy, legacy_len, what);
        json_decref(v);
    }
    CHECK(i > 0, "canonical_json[] is not empty");
}

/* Everything about one signed proof vector (proofs[] and gateway_proof share the shape). */
static void test_one_proof(const json_t *vectors, const json_t *vec, const char *what)
{
    size_t len, sc_len, lc_len;
    const char *text = vstr(vec, "proof_json", &len);
    const char *strict = vstr(vec, "strict_canonical", &sc_len);
    const char *legacy = vstr(vec, "legacy_canonical", &lc_len);
    const char *strict_sig = vstr(vec, "strict_signature", NULL);
    const char *legacy_sig = vstr(vec, "legacy_signature", NULL);
    if (strlen(strict_sig) != SIG_HEX_LEN || strlen(legacy_sig) != SIG_HEX_LEN) {
        printf("Bail out! %s: signatures are not %d hex digits\n", what, SIG_HEX_LEN);
        exit(1);
    }
    VecKey key;
    load_key(vectors, vstr(vec, "signer", NULL), &key);

    json_t *v = read_input(text, len, what);
    if (!v)
        goto out;
    Proof p;
    ProofError err;
    int r = proof_parse(v, &p, &err);
    CHECK(r == 0, "%s: proof_parse accepts it", what);
    if (r != 0) {
        printf("#   code %d field %s: %s\n", r, err.field, err.reason);
        goto out;
    }

    if (json_object_get(vec, "strict_sha256")) {
        check_canon_hash(v, CANON_STRICT, strict, sc_len, vstr(vec, "strict_sha256", NULL),
                         what);
        check_canon_hash(v, CANON_LEGACY, legacy, lc_len, vstr(vec, "legacy_sha256", NULL),
                         what);
    } else {
        check_canon(v, CANON_STRICT, strict, sc_len, what);
        check_canon(v, CANON_LEGACY, legacy, lc_len, what);
    }

    check_proof_sign(v, &key, CANON_STRICT, strict_sig, what);
    check_proof_sign(v, &key, CANON_LEGACY, legacy_sig, what);

    check_proof_verify(&p, &key, CANON_STRICT, strict_sig, "strict_signature", 0, what);
    check_proof_verify(&p, &key, CANON_LEGACY, legacy_sig, "legacy_signature", 0, what);
    /* Each form's signature is worthless in the other form. */
    check_proof_verify(&p, &key, CANON_LEGACY, strict_sig, "strict_signature", SIG_E_MISMATCH,
                       what);
    check_proof_verify(&p, &key, CANON_STRICT, legacy_sig, "legacy_signature", SIG_E_MISMATCH,
                       what);

    /* Accepted encodings of the same signature: upper-case hex, and r||s without v. */
    char upper[SIG_HEX_LEN + 1];
    for (size_t i = 0; i <= SIG_HEX_LEN; i++)
        upper[i] = (strict_sig[i] >= 'a' && strict_sig[i] <= 'f') ? (char)(strict_sig[i] - 32)
                                                                  : strict_sig[i];
    CHECK_INT(proof_verify(&p, &key.pub, CANON_STRICT, upper, SIG_HEX_LEN), 0,
              "%s: the strict signature in upper-case hex verifies", what);
    CHECK_INT(proof_verify(&p, &key.pub, CANON_STRICT, strict_sig, 128), 0,
              "%s: the strict signature without v (128 hex) verifies", what);

out:
    json_decref(v);
    key_private_wipe(&key.priv);
}

static void test_proofs(const json_t *vectors)
{
    size_t i;
    const json_t *vec;
    json_array_foreach(varr(vectors, "proofs"), i, vec) {
        char what[32];
        snprintf(what, sizeof(what), "proofs[%zu]", i);
        test_one_proof(vectors, vec, what);
    }
    CHECK(i > 0, "proofs[] is not empty");
}

static void test_requests(const json_t *vectors)
{
    size_t i;
    const json_t *vec;
    json_array_foreach(varr(vectors, "requests"), i, vec) {
        char what[32];
        snprintf(what, sizeof(what), "requests[%zu]", i);
        size_t ocid_len, ts_len, nonce_len, sig_len, body_len, sts_len;
        const char *ocid = vstr(vec, "ocid", &ocid_len);
        const char *ts = vstr(vec, "timestamp", &ts_len);
        const char *nonce = vstr(vec, "nonce", &nonce_len);
        const char *sig = vstr(vec, "signature", &sig_len);
        const char *body = vstr(vec, "body", &body_len);
        const char *sts = vstr(vec, "string_to_sign", &sts_len);
        VecKey key;
        load_key(vectors, vstr(vec, "signer", NULL), &key);

        SigHeaders h;
        int r = sigstr_parse_headers(ocid, ocid_len, ts, ts_len, nonce, nonce_len, sig, sig_len,
                                     &h);
        CHECK_INT(r, 0, "%s: sigstr_parse_headers accepts the headers", what);
        if (r == 0) {
            char *s = NULL;
            size_t s_len = 0;
            r = sigstr_request(&h, vstr(vec, "method", NULL), vstr(vec, "path", NULL), body,
                               body_len, &s, &s_len);
            CHECK_BYTES(r == 0 ? s : NULL, s_len, sts, sts_len,
                        "%s: sigstr_request equals string_to_sign", what);
            oc_free(s);
        }

        char hex[65];
        sha256_hex(body, body_len, hex);
        CHECK_STR(hex, vstr(vec, "body_sha256", NULL), "%s: sha256 of the body", what);

        char mine[SIG_HEX_LEN + 1] = "";
        r = sig_sign(&key.priv, sts, sts_len, mine);
        CHECK(r == 0 && strcmp(mine, sig) == 0, "%s: sig_sign of string_to_sign equals the "
              "vector", what);
        CHECK_INT(sig_verify(&key.pub, sts, sts_len, sig, sig_len), 0,
                  "%s: the vector's signature verifies", what);
        /* One byte less of the string and it must not. */
        CHECK_INT(sig_verify(&key.pub, sts, sts_len - 1, sig, sig_len), SIG_E_MISMATCH,
                  "%s: the signature does not verify a truncated string", what);

        /* A body that is a proof envelope goes the gateway's whole way. */
        json_t *env = NULL;
        if (body_len > 0 && json_read_strict(body, body_len, JSON_READ_OBJECT, &env, NULL) == 0 &&
            json_object_get(env, "proof")) {
            VecKey issuer;
            load_key(vectors, "provider", &issuer);
            Proof p;
            const char *psig = NULL;
            size_t psig_len = 0;
            ProofError err;
            r = proof_parse_envelope(env, &p, &psig, &psig_len, &err);
            if (r == 0)
                r = proof_verify(&p, &issuer.pub, CANON_STRICT, psig, psig_len);
            CHECK_INT(r, 0, "%s: the body's proof envelope parses and verifies", what);
            key_private_wipe(&issuer.priv);
        }
        json_decref(env);
        key_private_wipe(&key.priv);
    }
    CHECK(i > 0, "requests[] is not empty");
}

static void test_responses(const json_t *vectors)
{
    size_t i;
    const json_t *vec;
    json_array_foreach(varr(vectors, "responses"), i, vec) {
        char what[32];
        snprintf(what, sizeof(what), "responses[%zu]", i);
        size_t ocid_len, ts_len, body_len, sts_len, sig_len;
        const char *ocid_text = vstr(vec, "ocid", &ocid_len);
        const char *ts_text = vstr(vec, "timestamp", &ts_len);
        const char *body = vstr(vec, "body", &body_len);
        const char *sts = vstr(vec, "string_to_sign", &sts_len);
        const char *sig = vstr(vec, "signature", &sig_len);
        const json_t *status = json_object_get(vec, "status");
        int64_t ocid, ts;
        if (!json_is_integer(status) || sigstr_parse_decimal(ocid_text, ocid_len, 16, &ocid) ||
            sigstr_parse_decimal(ts_text, ts_len, 12, &ts)) {
            printf("Bail out! %s: ocid, timestamp or status unusable\n", what);
            exit(1);
        }
        VecKey key;
        load_key(vectors, vstr(vec, "signer", NULL), &key);

        char *s = NULL;
        size_t s_len = 0;
        int r = sigstr_response(ocid, ts, (int)json_integer_value(status), body, body_len, &s,
                                &s_len);
        CHECK_BYTES(r == 0 ? s : NULL, s_len, sts, sts_len,
                    "%s: sigstr_response equals string_to_sign", what);
        oc_free(s);

        char mine[SIG_HEX_LEN + 1] = "";
        r = sig_sign(&key.priv, sts, sts_len, mine);
        CHECK(r == 0 && strcmp(mine, sig) == 0, "%s: sig_sign equals the vector", what);
        CHECK_INT(sig_verify(&key.pub, sts, sts_len, sig, sig_len), 0,
                  "%s: the vector's signature verifies", what);
        key_private_wipe(&key.priv);
    }
    CHECK(i > 0, "responses[] is not empty");
}

static void test_negative(const json_t *vectors)
{
    VecKey provider;
    load_key(vectors, "provider", &provider);
    size_t i;
    const json_t *vec;
    json_array_foreach(varr(vectors, "negative"), i, vec) {
        char what[160];
        snprintf(what, sizeof(what), "negative[%zu] (%s)", i, vstr(vec, "name", NULL));
        size_t len, sig_len;
        const char *text = vstr(vec, "proof_json", &len);
        const char *sig = vstr(vec, "signature", &sig_len);
        /* The only outcome this suite knows how to check; a new one must be taught here. */
        CHECK_STR(vstr(vec, "expect", NULL), "PROOF_SIGNATURE_INVALID",
                  "%s: expects PROOF_SIGNATURE_INVALID", what);

        json_t *v = read_input(text, len, what);
        if (!v)
            continue;
        Proof p;
        ProofError err;
        int r = proof_parse(v, &p, &err);
        CHECK(r == 0, "%s: the proof itself parses", what);
        if (r == 0) {
            r = proof_verify(&p, &provider.pub, CANON_STRICT, sig, sig_len);
            /* Both codes mean PROOF_SIGNATURE_INVALID to the HTTP layer. */
            CHECK(r == SIG_E_MISMATCH || r == SIG_E_FORMAT,
                  "%s: refused in strict form (got %d)", what, r);

            const json_t *orig = json_object_get(vec, "legacy_signature_of_original");
            if (orig) {
                const char *lsig = json_string_value(orig);
                size_t lsig_len = json_string_length(orig);
                /* The altered to.reference is outside the legacy allow-list: the original's
                 * legacy signature still "verifies", which is why legacy is dangerous. */
                CHECK_INT(proof_verify(&p, &provider.pub, CANON_LEGACY, lsig, lsig_len), 0,
                          "%s: the original's legacy signature verifies under legacy", what);
                CHECK_INT(proof_verify(&p, &provider.pub, CANON_STRICT, lsig, lsig_len),
                          SIG_E_MISMATCH, "%s: ... but not under strict", what);
            }
        }
        json_decref(v);
    }
    CHECK(i > 0, "negative[] is not empty");
    key_private_wipe(&provider.priv);
}

static void test_high_s(const json_t *vectors)
{
    const json_t *vec = vobj(vectors, "high_s_variant");
    size_t len, sig_len;
    const char *text = vstr(vec, "proof_json", &len);
    const char *high = vstr(vec, "signature", &sig_len);
    VecKey provider;
    load_key(vectors, "provider", &provider);

    CHECK(sig_len == SIG_HEX_LEN && sig_is_high_s(high), "high_s_variant: the vector is high-S");

    json_t *v = read_input(text, len, "high_s_variant");
    if (v) {
        Proof p;
        ProofError err;
        int r = proof_parse(v, &p, &err);
        CHECK_INT(r, 0, "high_s_variant: the proof parses");
        if (r == 0)
            CHECK_INT(proof_verify(&p, &provider.pub, CANON_STRICT, high, sig_len), 0,
                      "high_s_variant: verifies after normalisation to low-S");

        char mine[SIG_HEX_LEN + 1] = "";
        r = proof_sign(v, &provider.priv, CANON_STRICT, mine);
        CHECK(r == 0 && strcmp(mine, high) != 0 && strncmp(mine, high, 64) == 0,
              "high_s_variant: our signature has the same r and a different s");
        CHECK(r == 0 && !sig_is_high_s(mine), "high_s_variant: our s is at most n/2");
        /* The same proof is proofs[0]: ours must be that vector's strict signature. */
        const json_t *p0 = json_array_get(varr(vectors, "proofs"), 0);
        if (p0 && strcmp(vstr(p0, "proof_json", NULL), text) == 0)
            CHECK_STR(mine, vstr(p0, "strict_signature", NULL),
                      "high_s_variant: our signature is proofs[0].strict_signature");
        json_decref(v);
    }
    key_private_wipe(&provider.priv);
}

static void test_duplicate_keys(const json_t *vectors)
{
    size_t len;
    const char *body = vstr(vobj(vectors, "duplicate_keys"), "body", &len);
    static const unsigned flags[] = { 0, JSON_READ_OBJECT };
    for (size_t i = 0; i < OC_ARRAY_LEN(flags); i++) {
        json_t *v = NULL;
        JsonReadError err;
        int r = json_read_strict(body, len, flags[i], &v, &err);
        CHECK(r == JSON_E_DUPLICATE_KEY && v == NULL,
              "duplicate_keys: json_read_strict refuses with JSON_E_DUPLICATE_KEY (flags %u)",
              flags[i]);
        if (r == 0)
            json_decref(v);
    }
}

static void test_array_index_keys(const json_t *vectors)
{
    const json_t *vec = vobj(vectors, "array_index_keys");
    size_t i;
    const json_t *item;
    json_array_foreach(varr(vec, "refused"), i, item) {
        const char *text = json_string_value(item);
        size_t len = json_string_length(item);
        json_t *v = NULL;
        JsonReadError err;
        int r = json_read_strict(text, len, JSON_READ_OBJECT, &v, &err);
        CHECK(r == JSON_E_INDEX_KEY && v == NULL,
              "array_index_keys.refused[%zu]: JSON_E_INDEX_KEY (got %d)", i, r);
        if (r == 0)
            json_decref(v);

        /* The same object built by a program (jansson's loader) cannot be signed either. */
        json_error_t jerr;
        json_t *built = json_loadb(text, len, 0, &jerr);
        char *out = NULL;
        size_t out_len = 0;
        r = built ? canon_write(built, CANON_STRICT, &out, &out_len) : -EINVAL;
        CHECK_INT(r, CANON_E_INDEX_KEY, "array_index_keys.refused[%zu]: canon_write refuses", i);
        if (r == 0)
            oc_free(out);
        json_decref(built);
    }
    CHECK(i > 0, "array_index_keys.refused is not empty");

    json_array_foreach(varr(vec, "accepted_not_index"), i, item) {
        char what[64];
        snprintf(what, sizeof(what), "array_index_keys.accepted_not_index[%zu]", i);
        size_t len, strict_len;
        const char *text = vstr(item, "input", &len);
        const char *strict = vstr(item, "strict", &strict_len);
        json_t *v = read_input(text, len, what);
        if (!v)
            continue;
        check_canon(v, CANON_STRICT, strict, strict_len, what);
        json_decref(v);
    }
    CHECK(i > 0, "array_index_keys.accepted_not_index is not empty");
}

static void test_metadata_config(const json_t *vectors)
{
    const json_t *vec = vobj(vectors, "metadata_config");
    size_t len, sc_len;
    const char *text = vstr(vec, "config_json", &len);
    const char *strict = vstr(vec, "strict_canonical", &sc_len);
    const char *sig = vstr(vec, "signature", NULL);
    VecKey key;
    load_key(vectors, vstr(vec, "signer", NULL), &key);

    json_t *v = read_input(text, len, "metadata_config");
    if (v) {
        check_canon(v, CANON_STRICT, strict, sc_len, "metadata_config");
        uint8_t digest[32];
        char mine[SIG_HEX_LEN + 1] = "";
        int r = canon_sha256(v, CANON_STRICT, digest);
        if (r == 0)
            r = sig_sign_digest(&key.priv, digest, mine);
        CHECK(r == 0 && strcmp(mine, sig) == 0,
              "metadata_config: signature over the strict form equals the vector");
        CHECK_INT(sig_verify(&key.pub, strict, sc_len, sig, strlen(sig)), 0,
                  "metadata_config: the vector's signature verifies");
        json_decref(v);
    }
    key_private_wipe(&key.priv);
}

int main(int argc, char **argv)
{
    json_t *vectors = vectors_load(argc, argv, JSON_REJECT_DUPLICATES);

    test_keys(vectors);
    test_canonical_json(vectors);
    test_proofs(vectors);
    test_requests(vectors);
    test_responses(vectors);
    test_negative(vectors);
    test_high_s(vectors);
    test_duplicate_keys(vectors);
    test_array_index_keys(vectors);
    test_one_proof(vectors, vobj(vectors, "gateway_proof"), "gateway_proof");
    test_metadata_config(vectors);

    json_decref(vectors);
    return tl_done();
}
