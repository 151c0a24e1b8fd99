/* Request and response signing strings (sigstr.h, spec section 3). Every field is checked
 * against a whitelist before it is joined with '\n', so no accepted value can contain the
 * separator: two different requests can never share a signing string, and hence a
 * signature. */
#include "proto/sigstr.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "proto/keys.h"
#include "util/buf.h"
#include "util/hex.h"

#define SIGSTR_MAX_SAFE_INT INT64_C(9007199254740991) /* 2^53 - 1: JavaScript's exact limit */
#define SIGSTR_OCID_DIGITS 16
#define SIGSTR_TIMESTAMP_DIGITS 12
#define SIGSTR_MAX_TIMESTAMP INT64_C(999999999999)
#define SIGSTR_MAX_METHOD 16

int sigstr_parse_decimal(const char *s, size_t len, size_t max_digits, int64_t *out)
{
    if (!s || len == 0 || len > max_digits)
        return -EINVAL;
    if (s[0] == '0' && len > 1)
        return -EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        int d = s[i] - '0';
        /* Only reachable with max_digits > 18; the callers here stay well below. */
        if (v > (INT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static bool sigstr_nonce_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > SIGSTR_MAX_NONCE)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static bool sigstr_method_valid(const char *m)
{
    size_t len = m ? strnlen(m, SIGSTR_MAX_METHOD + 1) : 0;
    if (len == 0 || len > SIGSTR_MAX_METHOD)
        return false;
    for (size_t i = 0; i < len; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return false;
    return true;
}

/* Printable ASCII without space: the raw request target as it arrives on the request line,
 * where a space would have ended it; percent-encoding carries everything else. */
static bool sigstr_path_valid(const char *p)
{
    size_t len = p ? strnlen(p, SIGSTR_MAX_PATH + 1) : 0;
    if (len == 0 || len > SIGSTR_MAX_PATH || p[0] != '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

static int sigstr_check_ocid(const char *s, size_t len, int64_t *out)
{
    int64_t v;
    if (sigstr_parse_decimal(s, len, SIGSTR_OCID_DIGITS, &v) != 0 || v > SIGSTR_MAX_SAFE_INT)
        return SIGSTR_E_OCID;
    *out = v;
    return 0;
}

static int sigstr_check_timestamp(const char *s, size_t len, int64_t *out)
{
    return sigstr_parse_decimal(s, len, SIGSTR_TIMESTAMP_DIGITS, out) == 0 ? 0
                                                                          : SIGSTR_E_TIMESTAMP;
}

int sigstr_parse_headers(const char *ocid, size_t ocid_len, const char *timestamp,
                         size_t timestamp_len, const char *nonce, size_t nonce_len,
                         const char *signature, size_t signature_len, SigHeaders *out)
{
    int rc = sigstr_check_ocid(ocid, ocid_len, &out->ocid);
    if (rc != 0)
        return rc;
    rc = sigstr_check_timestamp(timestamp, timestamp_len, &out->timestamp);
    if (rc != 0)
        return rc;
    if (!sigstr_nonce_valid(nonce, nonce_len))
        return SIGSTR_E_NONCE;
    /* Length and alphabet only; sig_verify judges v and the range of r and s. */
    if (!signature || (signature_len != 128 && signature_len != SIG_HEX_LEN) ||
        !hex_is_valid(signature, signature_len))
        return SIGSTR_E_SIGNATURE;

    out->ocid_text = ocid;
    out->ocid_len = ocid_len;
    out->timestamp_text = timestamp;
    out->timestamp_len = timestamp_len;
    out->nonce = nonce;
    out->nonce_len = nonce_len;
    out->signature = signature;
    out->signature_len = signature_len;
    return 0;
}

int sigstr_request(const SigHeaders *h, const char *method, const char *path, const void *body,
                   size_t body_len, char **out, size_t *out_len)
{
    int64_t unused;

    /* The header texts are checked again, not trusted: outbound signing fills SigHeaders
     * by hand, and this is the last point before the fields are joined. The signature is
     * not looked at (there is none yet when signing). */
    int rc = sigstr_check_ocid(h->ocid_text, h->ocid_len, &unused);
    if (rc != 0)
        return rc;
    rc = sigstr_check_timestamp(h->timestamp_text, h->timestamp_len, &unused);
    if (rc != 0)
        return rc;
    if (!sigstr_nonce_valid(h->nonce, h->nonce_len))
        return SIGSTR_E_NONCE;
    if (!sigstr_method_valid(method))
        return SIGSTR_E_METHOD;
    if (!sigstr_path_valid(path))
        return SIGSTR_E_PATH;

    char body_hash[65];
    sha256_hex(body, body_len, body_hash);

    Buf b = BUF_INIT;
    buf_put(&b, h->ocid_text, h->ocid_len);
    buf_putc(&b, '\n');
    buf_put(&b, h->timestamp_text, h->timestamp_len);
    buf_putc(&b, '\n');
    buf_put(&b, h->nonce, h->nonce_len);
    buf_putc(&b, '\n');
    buf_puts(&b, method);
    buf_putc(&b, '\n');
    buf_puts(&b, path);
    buf_putc(&b, '\n');
    buf_put(&b, body_hash, 64);
    return buf_finish(&b, out, out_len);
}

int sigstr_response(int64_t ocid, int64_t timestamp, int status, const void *body,
                    size_t body_len, char **out, size_t *out_len)
{
    if (ocid < 0 || ocid > SIGSTR_MAX_SAFE_INT)
        return SIGSTR_E_OCID;
    if (timestamp < 0 || timestamp > SIGSTR_MAX_TIMESTAMP)
        return SIGSTR_E_TIMESTAMP;
    if (status < 100 || status > 599)
        return SIGSTR_E_STATUS;

    char body_hash[65];
    sha256_hex(body, body_len, body_hash);

    Buf b = BUF_INIT;
    buf_printf(&b, "%" PRId64 "\n%" PRId64 "\n%d\n%s", ocid, timestamp, status, body_hash);
    return buf_finish(&b, out, out_len);
}
