/* libFuzzer target: proof envelopes as a webhook body delivers them. The bytes go through the
 * strict reader (object required), then proof_parse_envelope; every accepted proof is checked
 * against the limits and invariants proof.h promises and its signature is verified in both
 * canonical forms against a fixed issuer key. The whole body is also tried as a bare proof, so
 * proof_parse sees every input the envelope path does. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/amount.h"
#include "proto/canon.h"
#include "proto/json.h"
#include "proto/keys.h"
#include "proto/proof.h"
#include "util/alloc.h"
#include "util/hex.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SAFE_INT 9007199254740991LL

/* The "provider" key of tests/vectors/opencharge-vectors.json, which signed the proofs in the
 * seed corpus: seeds verify, so mutations explore the paths around a valid signature. */
static const char issuer_key_hex[] =
    "81117ec7cf379205920e935d20426ff0ea793106367c7fb17b660a2e1ae440dd"
    "92cdaf2500e5721d4acea63b0f399bcc8b473009e56cf9f9a07bdf4df646e6bc";

/* The vectors' proofs are dated 1706500500..700; a "now" among them makes both sides of the
 * future-skew boundary reachable. */
#define FUZZ_NOW 1706500600LL

static PublicKey issuer_key;

static void fail(const char *what, long long v)
{
    fprintf(stderr, "fuzz-proof: %s (%lld)\n", what, v);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (key_parse_public(issuer_key_hex, sizeof(issuer_key_hex) - 1, &issuer_key) != 0)
        fail("the fixed issuer key does not parse", 0);
    return 0;
}

/* A borrowed string field: within its length bounds, free of NUL, and the very bytes of the
 * named member of obj (proof.h: "Strings are borrowed from the json_t"). */
static void check_string(const json_t *obj, const char *key, const char *s, size_t len,
                         size_t min_len, size_t max_len, bool optional)
{
    const json_t *member = json_object_get(obj, key);
    if (!s) {
        if (!optional)
            fail("a required string field is NULL", 0);
        if (member)
            fail("an optional string present in the JSON came back NULL", 0);
        if (len != 0)
            fail("an absent optional string has a non-zero length", (long long)len);
        return;
    }
    if (len < min_len || len > max_len)
        fail("string field length out of bounds", (long long)len);
    if (memchr(s, '\0', len))
        fail("string field contains a NUL byte", (long long)len);
    if (!json_is_string(member) || json_string_length(member) != len ||
        memcmp(json_string_value(member), s, len) != 0)
        fail("string field differs from its JSON member", (long long)len);
}

static void check_int(const json_t *obj, const char *key, int64_t v, int64_t min)
{
    const json_t *member = json_object_get(obj, key);
    if (v < min || v > MAX_SAFE_INT)
        fail("integer field out of range", v);
    if (!json_is_integer(member) || json_integer_value(member) != v)
        fail("integer field differs from its JSON member", v);
}

static void check_proof(const Proof *p)
{
    if (!json_is_object(p->json))
        fail("Proof.json is not an object", 0);
    check_string(p->json, "txid", p->txid, p->txid_len, 1, PROOF_MAX_TXID, false);
    check_int(p->json, "issuer", p->issuer, 0);
    if (!json_is_object(p->from) || p->from != json_object_get(p->json, "from"))
        fail("Proof.from is not the proof's from object", 0);
    check_int(p->from, "ocid", p->from_ocid, 0);
    check_string(p->from, "reference", p->from_reference, p->from_reference_len, 0,
                 PROOF_MAX_REFERENCE, true);
    const json_t *to = json_object_get(p->json, "to");
    if (!json_is_object(to))
        fail("accepted proof has no to object", 0);
    check_int(to, "ocid", p->to_ocid, 0);
    check_string(to, "reference", p->to_reference, p->to_reference_len, 0, PROOF_MAX_REFERENCE,
                 true);
    check_string(p->json, "amount", p->amount_text, p->amount_len, 1, AMOUNT_MAX_TEXT, false);
    check_string(p->json, "currency", p->currency, p->currency_len, 3, 10, false);
    check_int(p->json, "timestamp", p->timestamp, 1);
    check_string(p->json, "memo", p->memo, p->memo_len, 0, PROOF_MAX_MEMO, true);

    /* The parsed amount is exactly what the text says. */
    Amount again;
    int r = amount_parse(p->amount_text, p->amount_len, &again);
    if (r != 0)
        fail("accepted amount text does not reparse", r);
    if (again.units != p->amount.units || again.frac_e18 != p->amount.frac_e18 ||
        again.scale != p->amount.scale || amount_cmp(&again, &p->amount) != 0)
        fail("Proof.amount differs from amount_parse of its text", 0);
    if (currency_check(p->currency, p->currency_len) != 0)
        fail("accepted currency fails currency_check", 0);

    /* proof_check_time: the exact boundary, and a negative skew counting as zero. */
    ProofError err;
    r = proof_check_time(p, FUZZ_NOW, 300, &err);
    if ((r == 0) != (p->timestamp <= FUZZ_NOW + 300))
        fail("proof_check_time disagrees with timestamp <= now + skew", r);
    if (r != 0 && (r != PROOF_E_FUTURE || err.code != PROOF_E_FUTURE || !err.field))
        fail("proof_check_time failed without PROOF_E_FUTURE", r);
    r = proof_check_time(p, FUZZ_NOW, -5, NULL);
    if ((r == 0) != (p->timestamp <= FUZZ_NOW))
        fail("proof_check_time with a negative skew is not skew 0", r);
}

static void check_parse_error(int r, const ProofError *err)
{
    if (r < PROOF_E_MISSING || r > PROOF_E_VALUE)
        fail("proof parse returned an undocumented code", r);
    if (err->code != (ProofCode)r || !err->field || !err->field[0] || !err->reason)
        fail("ProofError not filled to match the returned code", r);
}

/* Verifies in one form and checks the result against the documented set. The reader
 * accepted the body, so the proof is canonicalisable in both forms: a CanonCode here would
 * mean the reader and the writer disagree. The strict result must also equal a plain
 * sig_verify over canon_write's bytes, i.e. proof_verify signs nothing but the canonical text. */
static void check_verify(const Proof *p, CanonForm form, const char *sig, size_t sig_len)
{
    int r = proof_verify(p, &issuer_key, form, sig, sig_len);
    if (r == -ENOMEM)
        return;
    if (r != 0 && r != SIG_E_FORMAT && r != SIG_E_MISMATCH)
        fail(form == CANON_STRICT ? "proof_verify STRICT: unexpected result"
                                  : "proof_verify LEGACY: unexpected result", r);

    char *text = NULL;
    size_t text_len = 0;
    int c = canon_write(p->json, form, &text, &text_len);
    if (c == -ENOMEM)
        return;
    if (c != 0)
        fail("canon_write refused an accepted proof", c);
    int v = sig_verify(&issuer_key, text, text_len, sig, sig_len);
    if (v != r)
        fail("proof_verify differs from sig_verify over canon_write", (long long)r * 1000 + v);
    oc_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = NULL;
    JsonReadError jerr;
    int r = json_read_strict((const char *)data, size, JSON_READ_OBJECT, &root, &jerr);
    if (r != 0) {
        if (r != -ENOMEM && (r < JSON_E_SYNTAX || r > JSON_E_NOT_OBJECT || (int)jerr.code != r))
            fail("json_read_strict: bad error report", r);
        return 0;
    }
    if (!json_is_object(root))
        fail("JSON_READ_OBJECT accepted a non-object", 0);

    Proof proof;
    ProofError err;
    static const char sentinel[] = "untouched";
    const char *sig = sentinel;
    size_t sig_len = 12345;
    r = proof_parse_envelope(root, &proof, &sig, &sig_len, &err);
    if (r != 0) {
        check_parse_error(r, &err);
        if (strcmp(err.field, "envelope") != 0 && strcmp(err.field, "proof") != 0 &&
            strcmp(err.field, "signature") != 0 && strncmp(err.field, "proof.", 6) != 0)
            fail("envelope error names a field outside the documented set", r);
        if (sig != sentinel || sig_len != 12345)
            fail("proof_parse_envelope set the signature on failure", r);
    } else {
        if (proof.json != json_object_get(root, "proof"))
            fail("Proof.json is not the envelope's proof member", 0);
        check_proof(&proof);
        const json_t *sj = json_object_get(root, "signature");
        if (sig_len != 128 && sig_len != 130)
            fail("accepted signature has the wrong length", (long long)sig_len);
        if (!hex_is_valid(sig, sig_len) || memchr(sig, '\0', sig_len))
            fail("accepted signature is not hex", 0);
        if (!json_is_string(sj) || json_string_length(sj) != sig_len ||
            memcmp(json_string_value(sj), sig, sig_len) != 0)
            fail("signature differs from the envelope member", 0);
        check_verify(&proof, CANON_STRICT, sig, sig_len);
        check_verify(&proof, CANON_LEGACY, sig, sig_len);
    }

    /* The same object as a bare proof (no envelope). */
    Proof bare;
    r = proof_parse(root, &bare, &err);
    if (r != 0) {
        check_parse_error(r, &err);
    } else {
        if (bare.json != root)
            fail("Proof.json is not the parsed object", 0);
        check_proof(&bare);
    }

    json_decref(root);
    return 0;
}
