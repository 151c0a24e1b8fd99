/* Request and response signing strings (spec section 3) and the validation of the X-OC-*
 * header values they are built from. Header values come straight off the network, so every
 * field is checked before it is joined: a newline smuggled into a field could otherwise make
 * two different requests share one signing string. Pure: no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define SIGSTR_MAX_NONCE 128
#define SIGSTR_MAX_PATH 2048

typedef enum SigstrCode {
    SIGSTR_E_OCID = 1,      /* X-OC-ID: not 1..16 decimal digits, leading zero, or > 2^53−1 */
    SIGSTR_E_TIMESTAMP,     /* X-OC-Timestamp: not 1..12 decimal digits or leading zero */
    SIGSTR_E_NONCE,         /* X-OC-Nonce: empty, longer than 128, or not [A-Za-z0-9_.:-] */
    SIGSTR_E_METHOD,        /* method: empty, longer than 16, or not upper-case A-Z */
    SIGSTR_E_PATH,          /* path: not starting with '/', longer than 2048, or a byte
                               outside printable ASCII 0x21..0x7e */
    SIGSTR_E_SIGNATURE,     /* X-OC-Signature: not 128 or 130 hex digits */
    SIGSTR_E_STATUS,        /* response status outside 100..599 */
} SigstrCode;

/* The parsed X-OC-* request headers. Strings are borrowed from the caller. */
typedef struct SigHeaders {
    const char *ocid_text;      size_t ocid_len;
    const char *timestamp_text; size_t timestamp_len;
    const char *nonce;          size_t nonce_len;
    const char *signature;      size_t signature_len;
    int64_t ocid;               /* parsed from ocid_text */
    int64_t timestamp;          /* parsed from timestamp_text */
} SigHeaders;

/* Validates the four header values (any may be NULL = missing → the matching code) and fills
 * *out. Returns 0 or a SigstrCode; *out is unspecified on failure. */
OC_MUST_CHECK int sigstr_parse_headers(const char *ocid, size_t ocid_len,
                                       const char *timestamp, size_t timestamp_len,
                                       const char *nonce, size_t nonce_len,
                                       const char *signature, size_t signature_len,
                                       SigHeaders *out);

/* Builds "<ocid>\n<timestamp>\n<nonce>\n<METHOD>\n<path>\n<sha256hex(body)>" into out
 * (NUL-terminated, free with oc_free). The ocid, timestamp and nonce come from validated
 * headers; method and path are validated here. Returns 0, a SigstrCode, or -ENOMEM.
 * The ocid, timestamp and nonce texts of h are checked again (outbound signing fills h by
 * hand); h->signature is ignored, so it may be NULL. body may be NULL when body_len is 0.
 * *out and *out_len are untouched on failure. */
OC_MUST_CHECK int sigstr_request(const SigHeaders *h, const char *method, const char *path,
                                 const void *body, size_t body_len, char **out,
                                 size_t *out_len);

/* Builds "<ocid>\n<timestamp>\n<status>\n<sha256hex(body)>". ocid >= 0, timestamp >= 0,
 * 100 <= status <= 599. Returns 0, a SigstrCode, or -ENOMEM.
 * The upper limits are those of the headers: ocid <= 2^53-1 (else SIGSTR_E_OCID),
 * timestamp <= 999999999999 (else SIGSTR_E_TIMESTAMP). */
OC_MUST_CHECK int sigstr_response(int64_t ocid, int64_t timestamp, int status, const void *body,
                                  size_t body_len, char **out, size_t *out_len);

/* Parses a decimal string of 1..max_digits digits without sign or leading zero ("0" itself is
 * allowed) into *out. Returns 0 or -EINVAL. */
OC_MUST_CHECK int sigstr_parse_decimal(const char *s, size_t len, size_t max_digits,
                                       int64_t *out);
