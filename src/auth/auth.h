/* Request authentication (spec section 3; design.md, "request auth"): verification of the
 * inbound X-OC-* headers against the participants snapshot, signing of every response ocgate
 * writes, and the headers of requests ocgate itself sends. Pure apart from the random nonce
 * of outbound requests: no I/O, no database. Nonces are not checked here — settle/ records
 * (ocid, nonce) in the same database round trip as its own work, only after this module has
 * said the signature verified. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "directory/directory.h"
#include "ocgate/errors.h"
#include "proto/keys.h"
#include "proto/sigstr.h"
#include "util/macro.h"

/* The four raw header values as received (NUL-terminated), NULL when a header is missing.
 * Borrowed. */
typedef struct AuthHeaders {
    const char *ocid;        /* X-OC-ID */
    const char *timestamp;   /* X-OC-Timestamp */
    const char *nonce;       /* X-OC-Nonce */
    const char *signature;   /* X-OC-Signature */
} AuthHeaders;

/* Verifies an inbound request. method is the upper-case HTTP method, target the raw
 * request-target exactly as received (path and query, the signed "path"), body the exact
 * bytes received (may be NULL when body_len is 0), now the receipt time in Unix seconds.
 * Checks, in this order:
 *   a header missing or malformed (sigstr_parse_headers)         → OC_ERR_INVALID_SIGNATURE
 *   |now − timestamp| > window_s                                  → OC_ERR_TIMESTAMP_EXPIRED
 *   X-OC-ID not in dir, or the participant is disabled            → OC_ERR_UNKNOWN_OCID
 *   method or target not signable (sigstr_request)                → OC_ERR_INVALID_SIGNATURE
 *   signature not valid over the signing string with the
 *   participant's key                                             → OC_ERR_INVALID_SIGNATURE
 * Returns 0 and sets *caller (valid while the caller holds its reference to dir); a positive
 * OcErrorCode (*caller untouched); or -ENOMEM. */
OC_MUST_CHECK int auth_verify_request(const AuthHeaders *h, const char *method,
                                      const char *target, const void *body, size_t body_len,
                                      int64_t now, unsigned window_s, const DirSnapshot *dir,
                                      const Participant **caller);

/* The response signature headers (spec section 3, "Response authentication"). */
typedef struct AuthResponseHeaders {
    char ocid[24];                       /* X-OC-ID */
    char timestamp[24];                  /* X-OC-Timestamp */
    char signature[SIG_HEX_LEN + 1];     /* X-OC-Signature */
} AuthResponseHeaders;

/* Signs "<own_ocid>\n<now>\n<status>\n<sha256hex(body)>" with key. Returns 0 and fills *out;
 * -EINVAL for an ocid or now below 0 or a status outside 100..599; -ENOMEM; or -EIO if
 * signing failed. *out is unspecified on failure. */
OC_MUST_CHECK int auth_sign_response(const PrivateKey *key, int64_t own_ocid, int64_t now,
                                     int status, const void *body, size_t body_len,
                                     AuthResponseHeaders *out);

#define AUTH_NONCE_LEN 36    /* "req_" + 32 lowercase hex digits */

/* The X-OC-* headers of a request ocgate sends (delivery worker, client commands). */
typedef struct AuthOutboundHeaders {
    char ocid[24];                       /* X-OC-ID */
    char timestamp[24];                  /* X-OC-Timestamp */
    char nonce[AUTH_NONCE_LEN + 1];      /* X-OC-Nonce: fresh from the CSPRNG on every call */
    char signature[SIG_HEX_LEN + 1];     /* X-OC-Signature */
} AuthOutboundHeaders;

/* Builds the headers for a request of method (upper case) to target (the raw path and query
 * as it will be sent, base path included) with the given body. Returns 0 and fills *out;
 * -EINVAL for a negative ocid or now, or a method or target sigstr refuses; -EIO when no
 * randomness is available or signing failed; -ENOMEM. *out is unspecified on failure. */
OC_MUST_CHECK int auth_outbound_headers(const PrivateKey *key, int64_t own_ocid, int64_t now,
                                        const char *method, const char *target,
                                        const void *body, size_t body_len,
                                        AuthOutboundHeaders *out);
