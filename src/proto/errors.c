/* Name and HTTP status of each stable error code (include/ocgate/errors.h). */
#include "ocgate/errors.h"

#include <string.h>

static const struct {
    const char *name;
    int status;
} error_table[OC_ERR__COUNT] = {
    [OC_ERR_NONE] = { "NONE", 200 },
    [OC_ERR_INVALID_SIGNATURE] = { "INVALID_SIGNATURE", 401 },
    [OC_ERR_TIMESTAMP_EXPIRED] = { "TIMESTAMP_EXPIRED", 401 },
    [OC_ERR_NONCE_REUSED] = { "NONCE_REUSED", 401 },
    [OC_ERR_UNKNOWN_OCID] = { "UNKNOWN_OCID", 401 },
    [OC_ERR_UNAUTHORIZED] = { "UNAUTHORIZED", 403 },
    [OC_ERR_BAD_REQUEST] = { "BAD_REQUEST", 400 },
    [OC_ERR_INVALID_PROOF] = { "INVALID_PROOF", 400 },
    [OC_ERR_PROOF_SIGNATURE_INVALID] = { "PROOF_SIGNATURE_INVALID", 400 },
    [OC_ERR_ISSUER_NOT_ACCEPTED] = { "ISSUER_NOT_ACCEPTED", 400 },
    [OC_ERR_AMOUNT_MISMATCH] = { "AMOUNT_MISMATCH", 400 },
    [OC_ERR_CURRENCY_MISMATCH] = { "CURRENCY_MISMATCH", 400 },
    [OC_ERR_MERCHANT_NOT_REGISTERED] = { "MERCHANT_NOT_REGISTERED", 400 },
    [OC_ERR_CAPABILITY_NOT_SUPPORTED] = { "CAPABILITY_NOT_SUPPORTED", 400 },
    [OC_ERR_PAYMENT_NOT_FOUND] = { "PAYMENT_NOT_FOUND", 404 },
    [OC_ERR_TXID_NOT_FOUND] = { "TXID_NOT_FOUND", 404 },
    [OC_ERR_NOT_FOUND] = { "NOT_FOUND", 404 },
    [OC_ERR_INVALID_STATE] = { "INVALID_STATE", 409 },
    [OC_ERR_IDEMPOTENCY_CONFLICT] = { "IDEMPOTENCY_CONFLICT", 409 },
    [OC_ERR_PAYMENT_EXPIRED] = { "PAYMENT_EXPIRED", 410 },
    [OC_ERR_PAYLOAD_TOO_LARGE] = { "PAYLOAD_TOO_LARGE", 413 },
    [OC_ERR_RATE_LIMITED] = { "RATE_LIMITED", 429 },
    [OC_ERR_INTERNAL] = { "INTERNAL", 500 },
    [OC_ERR_UNAVAILABLE] = { "UNAVAILABLE", 503 },
};

const char *oc_error_name(OcErrorCode code)
{
    if ((unsigned)code >= OC_ERR__COUNT)
        return "INTERNAL";
    return error_table[code].name;
}

int oc_error_http_status(OcErrorCode code)
{
    if ((unsigned)code >= OC_ERR__COUNT)
        return 500;
    return error_table[code].status;
}

OcErrorCode oc_error_from_name(const char *name)
{
    for (unsigned i = 0; i < OC_ERR__COUNT; i++)
        if (strcmp(error_table[i].name, name) == 0)
            return (OcErrorCode)i;
    return OC_ERR__COUNT;
}
