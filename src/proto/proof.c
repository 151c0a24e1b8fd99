/* Transaction proofs (proof.h): strict typed parsing of a proof and its envelope, the
 * future-timestamp check, and signing/verifying over the canonical JSON. Every refusal names
 * the exact field ("from.ocid", or "proof.from.ocid" inside an envelope) with a static reason,
 * so the HTTP layer can answer INVALID_PROOF with a message that says what to fix. */
#include "proto/proof.h"

#include <string.h>

#include "util/hex.h"

/* Integers above this cannot be canonicalised (canon.h), so a proof holding one could never
 * verify; refusing it here gives a better message than a signature failure. */
#define PROOF_MAX_INT 9007199254740991LL /* 2^53 - 1 */

/* One list of the proof's fields, expanded twice so that the bare names and the "proof."
 * names inside an envelope are both static strings and can never drift apart. */
#define PROOF_FIELDS(X)                   \
    X(F_TXID, "txid")                     \
    X(F_ISSUER, "issuer")                 \
    X(F_FROM, "from")                     \
    X(F_FROM_OCID, "from.ocid")           \
    X(F_FROM_REFERENCE, "from.reference") \
    X(F_TO, "to")                         \
    X(F_TO_OCID, "to.ocid")               \
    X(F_TO_REFERENCE, "to.reference")     \
    X(F_AMOUNT, "amount")                 \
    X(F_CURRENCY, "currency")             \
    X(F_TIMESTAMP, "timestamp")           \
    X(F_MEMO, "memo")

#define FIELD_ENUM(id, name) id,
#define FIELD_BARE(id, name) [id] = name,
#define FIELD_ENVELOPE(id, name) [id] = "proof." name,

typedef enum ProofField { PROOF_FIELDS(FIELD_ENUM) F__COUNT } ProofField;

static const char *const field_bare[F__COUNT] = { PROOF_FIELDS(FIELD_BARE) };
static const char *const field_envelope[F__COUNT] = { PROOF_FIELDS(FIELD_ENVELOPE) };

static int proof_fail(ProofError *err, ProofCode code, const char *field, const char *reason)
{
    if (err) {
        err->code = code;
        err->field = field;
        err->reason = reason;
    }
    return (int)code;
}

/* Reads the string member key of obj. Absent: PROOF_E_MISSING when required, else 0 with
 * *out NULL and *out_len 0. Present: must be a JSON string of min_len..max_len bytes without
 * NUL (PostgreSQL text cannot hold one, and C code downstream would truncate at it). */
static int proof_get_string(const json_t *obj, const char *key, const char *field,
                            bool required, size_t min_len, size_t max_len,
                            const char *len_reason, const char **out, size_t *out_len,
                            ProofError *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return proof_fail(err, PROOF_E_MISSING, field, "required");
        *out = NULL;
        *out_len = 0;
        return 0;
    }
    if (!json_is_string(v))
        return proof_fail(err, PROOF_E_TYPE, field, "must be a string");
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len < min_len || len > max_len)
        return proof_fail(err, PROOF_E_VALUE, field, len_reason);
    if (memchr(s, '\0', len))
        return proof_fail(err, PROOF_E_VALUE, field, "must not contain NUL");
    *out = s;
    *out_len = len;
    return 0;
}

/* Reads a required integer member in [min, 2^53-1]; min is 0 (OCIDs) or 1 (timestamp). Only
 * json_is_integer counts: a real, a numeric string or a boolean is a type error. */
static int proof_get_int(const json_t *obj, const char *key, const char *field, json_int_t min,
                         int64_t *out, ProofError *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return proof_fail(err, PROOF_E_MISSING, field, "required");
    if (!json_is_integer(v))
        return proof_fail(err, PROOF_E_TYPE, field, "must be an integer");
    json_int_t n = json_integer_value(v);
    if (n < min)
        return proof_fail(err, PROOF_E_VALUE, field,
                          min > 0 ? "must be greater than zero" : "must be >= 0");
    if (n > PROOF_MAX_INT)
        return proof_fail(err, PROOF_E_VALUE, field, "must be at most 9007199254740991");
    *out = (int64_t)n;
    return 0;
}

static int proof_get_object(const json_t *obj, const char *key, const char *field,
                            const json_t **out, ProofError *err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return proof_fail(err, PROOF_E_MISSING, field, "required");
    if (!json_is_object(v))
        return proof_fail(err, PROOF_E_TYPE, field, "must be an object");
    *out = v;
    return 0;
}

/* The members of a proof object; names[] chooses between bare and "proof."-prefixed field
 * names. Fields are checked in the order of the spec's table and the first failure is the one
 * reported, so a given input always gets the same answer. */
static int proof_parse_members(const json_t *proof, const char *const *names, Proof *out,
                               ProofError *err)
{
    int r;

    memset(out, 0, sizeof(*out));
    out->json = proof;

    r = proof_get_string(proof, "txid", names[F_TXID], true, 1, PROOF_MAX_TXID,
                         "must be 1..128 bytes", &out->txid, &out->txid_len, err);
    if (r)
        return r;
    r = proof_get_int(proof, "issuer", names[F_ISSUER], 0, &out->issuer, err);
    if (r)
        return r;

    r = proof_get_object(proof, "from", names[F_FROM], &out->from, err);
    if (r)
        return r;
    r = proof_get_int(out->from, "ocid", names[F_FROM_OCID], 0, &out->from_ocid, err);
    if (r)
        return r;
    r = proof_get_string(out->from, "reference", names[F_FROM_REFERENCE], false, 0,
                         PROOF_MAX_REFERENCE, "must be at most 256 bytes",
                         &out->from_reference, &out->from_reference_len, err);
    if (r)
        return r;

    const json_t *to;
    r = proof_get_object(proof, "to", names[F_TO], &to, err);
    if (r)
        return r;
    r = proof_get_int(to, "ocid", names[F_TO_OCID], 0, &out->to_ocid, err);
    if (r)
        return r;
    r = proof_get_string(to, "reference", names[F_TO_REFERENCE], false, 0,
                         PROOF_MAX_REFERENCE, "must be at most 256 bytes", &out->to_reference,
                         &out->to_reference_len, err);
    if (r)
        return r;

    r = proof_get_string(proof, "amount", names[F_AMOUNT], true, 1, AMOUNT_MAX_TEXT,
                         "invalid decimal amount", &out->amount_text, &out->amount_len, err);
    if (r)
        return r;
    r = amount_parse(out->amount_text, out->amount_len, &out->amount);
    if (r == AMOUNT_E_ZERO)
        return proof_fail(err, PROOF_E_VALUE, names[F_AMOUNT], "must be greater than zero");
    if (r)
        return proof_fail(err, PROOF_E_VALUE, names[F_AMOUNT], "invalid decimal amount");

    r = proof_get_string(proof, "currency", names[F_CURRENCY], true, 3, 10,
                         "must be 3..10 of A-Z0-9", &out->currency, &out->currency_len, err);
    if (r)
        return r;
    if (currency_check(out->currency, out->currency_len))
        return proof_fail(err, PROOF_E_VALUE, names[F_CURRENCY], "must be 3..10 of A-Z0-9");

    r = proof_get_int(proof, "timestamp", names[F_TIMESTAMP], 1, &out->timestamp, err);
    if (r)
        return r;

    return proof_get_string(proof, "memo", names[F_MEMO], false, 0, PROOF_MAX_MEMO,
                            "must be at most 1024 bytes", &out->memo, &out->memo_len, err);
}

/* The proof object itself is "proof" whether or not it came in an envelope. */
static int proof_check_object(const json_t *proof, ProofError *err)
{
    if (!proof)
        return proof_fail(err, PROOF_E_MISSING, "proof", "required");
    if (!json_is_object(proof))
        return proof_fail(err, PROOF_E_TYPE, "proof", "must be an object");
    return 0;
}

int proof_parse(const json_t *proof, Proof *out, ProofError *err)
{
    int r = proof_check_object(proof, err);
    if (r)
        return r;
    return proof_parse_members(proof, field_bare, out, err);
}

int proof_parse_envelope(const json_t *envelope, Proof *out, const char **signature,
                         size_t *signature_len, ProofError *err)
{
    if (!json_is_object(envelope))
        return proof_fail(err, PROOF_E_TYPE, "envelope", "must be an object");

    const json_t *proof = json_object_get(envelope, "proof");
    int r = proof_check_object(proof, err);
    if (r)
        return r;

    const json_t *sig = json_object_get(envelope, "signature");
    if (!sig)
        return proof_fail(err, PROOF_E_MISSING, "signature", "required");
    if (!json_is_string(sig))
        return proof_fail(err, PROOF_E_TYPE, "signature", "must be a string");
    const char *sig_text = json_string_value(sig);
    size_t sig_len = json_string_length(sig);
    /* hex_is_valid over the full length also refuses an embedded NUL. */
    if ((sig_len != 128 && sig_len != SIG_HEX_LEN) || !hex_is_valid(sig_text, sig_len))
        return proof_fail(err, PROOF_E_VALUE, "signature", "must be 128 or 130 hex digits");

    r = proof_parse_members(proof, field_envelope, out, err);
    if (r)
        return r;
    *signature = sig_text;
    *signature_len = sig_len;
    return 0;
}

int proof_check_time(const Proof *proof, int64_t now, int64_t max_future_skew,
                     ProofError *err)
{
    /* Unsigned difference: timestamp - now cannot overflow once timestamp > now is known. */
    uint64_t skew = max_future_skew > 0 ? (uint64_t)max_future_skew : 0;
    if (proof->timestamp > now && (uint64_t)proof->timestamp - (uint64_t)now > skew)
        return proof_fail(err, PROOF_E_FUTURE, "timestamp", "is too far in the future");
    return 0;
}

int proof_verify(const Proof *proof, const PublicKey *issuer_key, CanonForm form,
                 const char *signature, size_t signature_len)
{
    uint8_t digest[32];
    int r = canon_sha256(proof->json, form, digest);
    if (r < 0)
        return r;
    if (r > 0)
        return PROOF_VERIFY_E_CANON + r;
    return sig_verify_digest(issuer_key, digest, signature, signature_len);
}

int proof_sign(const json_t *proof, const PrivateKey *key, CanonForm form,
               char out[SIG_HEX_LEN + 1])
{
    uint8_t digest[32];
    int r = canon_sha256(proof, form, digest);
    if (r < 0)
        return r;
    if (r > 0)
        return PROOF_VERIFY_E_CANON + r;
    return sig_sign_digest(key, digest, out);
}
