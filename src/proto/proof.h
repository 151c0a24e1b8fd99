/* Transaction proofs (spec section 4): parsing the {proof, signature} envelope into typed
 * fields with one precise error per failure, and verifying the issuer's signature over the
 * proof's canonical JSON. Pure: the caller supplies keys and the current time. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/amount.h"
#include "proto/canon.h"
#include "proto/keys.h"
#include "util/macro.h"

#define PROOF_MAX_TXID 128
#define PROOF_MAX_REFERENCE 256
#define PROOF_MAX_MEMO 1024

typedef enum ProofCode {
    PROOF_E_MISSING = 1,  /* a required field is absent */
    PROOF_E_TYPE,         /* a field has the wrong JSON type */
    PROOF_E_VALUE,        /* right type, bad value: empty/too long/NUL in a string, negative
                             or zero where positive is required, bad amount or currency */
    PROOF_E_FUTURE,       /* proof timestamp more than the allowed skew in the future */
} ProofCode;

typedef struct ProofError {
    ProofCode code;
    const char *field;   /* static: "txid", "from.ocid", "signature", ... */
    const char *reason;  /* static English text */
} ProofError;

/* A parsed proof. Strings are borrowed from the json_t the proof was parsed from and stay
 * valid as long as that value does; optional strings are NULL when absent. No string holds a
 * NUL byte (PostgreSQL text could not store it). */
typedef struct Proof {
    const json_t *json;          /* the proof object itself (borrowed) */
    const char *txid;            size_t txid_len;
    int64_t issuer;
    const json_t *from;          /* the from object, copied verbatim into gateway proofs */
    int64_t from_ocid;
    const char *from_reference;  size_t from_reference_len;
    int64_t to_ocid;
    const char *to_reference;    size_t to_reference_len;
    const char *amount_text;     size_t amount_len;
    Amount amount;
    const char *currency;        size_t currency_len;
    int64_t timestamp;
    const char *memo;            size_t memo_len;
} Proof;

/* Parses a proof object: txid (string 1..128), issuer (integer >= 0), from {ocid >= 0,
 * reference? string 0..256}, to {ocid >= 0, reference? string 0..256}, amount (amount.h),
 * currency (amount.h), timestamp (integer > 0), memo? (string 0..1024). Unknown extra fields
 * are allowed (the strict form signs them too). Integers must be JSON integers (not reals,
 * strings or booleans) and at most 2^53-1; every string is refused if it holds a NUL byte; an
 * optional field present as null is a type error, not an absent field. Fields are checked in
 * the order above and the first failure is reported; a proof that is NULL or not an object
 * fails with field "proof". Returns 0, or a ProofCode with *err filled. out is unspecified on
 * failure. err may be NULL. */
OC_MUST_CHECK int proof_parse(const json_t *proof, Proof *out, ProofError *err);

/* Parses an envelope object {"proof": {...}, "signature": "<hex>", ...}: the proof as
 * proof_parse does and the signature as a string of 128 or 130 hex digits (the signature's
 * cryptographic validity is proof_verify's job). Other members are the caller's business.
 * Checked in this order: the envelope is an object (else PROOF_E_TYPE, field "envelope"),
 * "proof" present and an object, "signature" present, a string and well-formed, then the
 * proof's fields. *signature (borrowed from envelope) and *signature_len are set only on
 * success. Returns 0 or a ProofCode with *err filled (field "envelope", "proof", "signature"
 * or "proof.<f>"). */
OC_MUST_CHECK int proof_parse_envelope(const json_t *envelope, Proof *out,
                                       const char **signature, size_t *signature_len,
                                       ProofError *err);

/* Checks that the proof's timestamp is at most max_future_skew seconds after now (a negative
 * skew counts as 0; proofs from the past are always fine here). Returns 0 or PROOF_E_FUTURE
 * with *err filled (field "timestamp"). */
OC_MUST_CHECK int proof_check_time(const Proof *proof, int64_t now, int64_t max_future_skew,
                                   ProofError *err);

/* Verifies signature over the canonical form of proof->json in the given form. Returns 0 when
 * valid; SIG_E_FORMAT or SIG_E_MISMATCH; a CanonCode + 100 when the proof cannot be
 * canonicalised (PROOF_VERIFY_E_CANON); or -ENOMEM. */
#define PROOF_VERIFY_E_CANON 100
OC_MUST_CHECK int proof_verify(const Proof *proof, const PublicKey *issuer_key, CanonForm form,
                               const char *signature, size_t signature_len);

/* Signs the canonical form of a proof object; out receives 130 hex chars and a NUL. Returns
 * 0, a CanonCode + PROOF_VERIFY_E_CANON, -ENOMEM or -EIO. */
OC_MUST_CHECK int proof_sign(const json_t *proof, const PrivateKey *key, CanonForm form,
                             char out[SIG_HEX_LEN + 1]);
