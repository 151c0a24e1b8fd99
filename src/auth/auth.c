/* X-OC-* request verification, response signing and outbound request headers (auth.h).
 * Every check maps to one stable error code, and nothing here reaches the database: a
 * request refused here changes nothing (design.md, I5). */
#include "auth/auth.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/hex.h"

static size_t opt_len(const char *s)
{
    return s ? strlen(s) : 0;
}

int auth_verify_request(const AuthHeaders *h, const char *method, const char *target,
                        const void *body, size_t body_len, int64_t now, unsigned window_s,
                        const DirSnapshot *dir, const Participant **caller)
{
    SigHeaders sh;
    if (sigstr_parse_headers(h->ocid, opt_len(h->ocid), h->timestamp, opt_len(h->timestamp),
                             h->nonce, opt_len(h->nonce), h->signature,
                             opt_len(h->signature), &sh) != 0)
        return OC_ERR_INVALID_SIGNATURE;

    /* The timestamp has at most 12 digits, so the difference cannot overflow. */
    int64_t skew = now - sh.timestamp;
    if (skew < 0)
        skew = -skew;
    if (skew > (int64_t)window_s)
        return OC_ERR_TIMESTAMP_EXPIRED;

    const Participant *p = dirsnap_find(dir, sh.ocid);
    if (!p || !p->enabled)
        return OC_ERR_UNKNOWN_OCID;

    char *msg = NULL;
    size_t msg_len = 0;
    int r = sigstr_request(&sh, method, target, body, body_len, &msg, &msg_len);
    if (r < 0)
        return r;
    if (r > 0)
        return OC_ERR_INVALID_SIGNATURE; /* a method or path that cannot have been signed */
    r = sig_verify(&p->key, msg, msg_len, sh.signature, sh.signature_len);
    oc_free(msg);
    if (r != 0)
        return OC_ERR_INVALID_SIGNATURE;
    *caller = p;
    return 0;
}

int auth_sign_response(const PrivateKey *key, int64_t own_ocid, int64_t now, int status,
                       const void *body, size_t body_len, AuthResponseHeaders *out)
{
    if (own_ocid < 0 || now < 0 || status < 100 || status > 599)
        return -EINVAL;
    char *msg = NULL;
    size_t msg_len = 0;
    int r = sigstr_response(own_ocid, now, status, body, body_len, &msg, &msg_len);
    if (r != 0)
        return r < 0 ? r : -EINVAL;
    r = sig_sign(key, msg, msg_len, out->signature);
    oc_free(msg);
    if (r != 0)
        return r < 0 ? r : -EIO;
    snprintf(out->ocid, sizeof(out->ocid), "%" PRId64, own_ocid);
    snprintf(out->timestamp, sizeof(out->timestamp), "%" PRId64, now);
    return 0;
}

int auth_outbound_headers(const PrivateKey *key, int64_t own_ocid, int64_t now,
                          const char *method, const char *target, const void *body,
                          size_t body_len, AuthOutboundHeaders *out)
{
    if (own_ocid < 0 || now < 0)
        return -EINVAL;
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -EIO;
    memcpy(out->nonce, "req_", 4);
    hex_encode(rnd, sizeof(rnd), out->nonce + 4);
    snprintf(out->ocid, sizeof(out->ocid), "%" PRId64, own_ocid);
    snprintf(out->timestamp, sizeof(out->timestamp), "%" PRId64, now);

    /* Going through the same parser as inbound requests guarantees that what we send is
     * exactly what a receiver of our own kind accepts. */
    SigHeaders sh;
    char placeholder_sig[128];
    memset(placeholder_sig, '0', sizeof(placeholder_sig)); /* only its shape is checked */
    int r = sigstr_parse_headers(out->ocid, strlen(out->ocid), out->timestamp,
                                 strlen(out->timestamp), out->nonce, strlen(out->nonce),
                                 placeholder_sig, sizeof(placeholder_sig), &sh);
    if (r != 0)
        return -EINVAL;
    char *msg = NULL;
    size_t msg_len = 0;
    r = sigstr_request(&sh, method, target, body, body_len, &msg, &msg_len);
    if (r != 0)
        return r < 0 ? r : -EINVAL;
    r = sig_sign(key, msg, msg_len, out->signature);
    oc_free(msg);
    if (r != 0)
        return r < 0 ? r : -EIO;
    return 0;
}
