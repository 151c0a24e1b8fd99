/* The stable error codes ocgate answers with, and their HTTP statuses (design.md, "error
 * codes"). Shared by the daemon, the CLI, tests and benchmarks: a code's name is part of the
 * public API and never changes meaning. */
#pragma once

typedef enum OcErrorCode {
    OC_ERR_NONE = 0,
    OC_ERR_INVALID_SIGNATURE,
    OC_ERR_TIMESTAMP_EXPIRED,
    OC_ERR_NONCE_REUSED,
    OC_ERR_UNKNOWN_OCID,
    OC_ERR_UNAUTHORIZED,
    OC_ERR_BAD_REQUEST,
    OC_ERR_INVALID_PROOF,
    OC_ERR_PROOF_SIGNATURE_INVALID,
    OC_ERR_ISSUER_NOT_ACCEPTED,
    OC_ERR_AMOUNT_MISMATCH,
    OC_ERR_CURRENCY_MISMATCH,
    OC_ERR_MERCHANT_NOT_REGISTERED,
    OC_ERR_CAPABILITY_NOT_SUPPORTED,
    OC_ERR_PAYMENT_NOT_FOUND,
    OC_ERR_TXID_NOT_FOUND,
    OC_ERR_NOT_FOUND,
    OC_ERR_INVALID_STATE,
    OC_ERR_IDEMPOTENCY_CONFLICT,
    OC_ERR_PAYMENT_EXPIRED,
    OC_ERR_PAYLOAD_TOO_LARGE,
    OC_ERR_RATE_LIMITED,
    OC_ERR_INTERNAL,
    OC_ERR_UNAVAILABLE,
    OC_ERR__COUNT
} OcErrorCode;

/* "INVALID_SIGNATURE" etc.; "NONE" for OC_ERR_NONE; "INTERNAL" for out-of-range values. */
const char *oc_error_name(OcErrorCode code);

/* The HTTP status for the code (200 for OC_ERR_NONE, 500 for out-of-range values). */
int oc_error_http_status(OcErrorCode code);

/* Looks a code up by its name; returns OC_ERR__COUNT when there is none. */
OcErrorCode oc_error_from_name(const char *name);
