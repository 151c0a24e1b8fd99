/* libFuzzer target: X-OC-* header validation and the request/response signing strings
 * (sigstr.h). The first input byte is a separator; the rest splits on it into ocid, timestamp,
 * nonce, signature, method, path, status and body (body = everything left, separators
 * included). Accepted headers must match a reference of the documented syntax and the built
 * strings must be exactly the spec's lines, so no field can smuggle in an extra line. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keys.h"
#include "proto/sigstr.h"
#include "util/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SAFE_INT 9007199254740991LL
#define NFIELDS 8

enum { F_OCID, F_TIMESTAMP, F_NONCE, F_SIGNATURE, F_METHOD, F_PATH, F_STATUS, F_BODY };

static void fail(const char *what, long long v)
{
    fprintf(stderr, "fuzz-sigstr: %s (%lld)\n", what, v);
    abort();
}

/* Reference for decimal fields: 1..max digits, no leading zero, value into *out. Returns 1
 * valid, 0 invalid, -1 for exactly "0": sigstr_parse_decimal allows it, while whether a zero
 * OCID or timestamp header is acceptable is not pinned down by sigstr.h. */
static int ref_decimal(const char *s, size_t len, size_t max_digits, int64_t *out)
{
    if (!s || len == 0 || len > max_digits)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (s[0] == '0')
        return len == 1 ? -1 : 0;
    *out = v;
    return 1;
}

static bool ref_nonce(const char *s, size_t len)
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

static bool ref_signature(const char *s, size_t len)
{
    if (!s || (len != 128 && len != 130))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static bool ref_method(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return false;
    return true;
}

static bool ref_path(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || p[0] != '/' || n > SIGSTR_MAX_PATH)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
            return false;
    return true;
}

static size_t count_newlines(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n;
}

/* Exact-size copy (no terminator) so AddressSanitizer catches any read past len. */
static char *copy_exact(const uint8_t *p, size_t len)
{
    char *c = malloc(len ? len : 1);
    if (c && len)
        memcpy(c, p, len);
    return c;
}

/* NUL-terminated copy for the C-string parameters (method, path). */
static char *copy_cstr(const uint8_t *p, size_t len)
{
    char *c = malloc(len + 1);
    if (c) {
        if (len)
            memcpy(c, p, len);
        c[len] = '\0';
    }
    return c;
}

static void check_request(const SigHeaders *h, const char *method, const char *path,
                          const char *body, size_t body_len)
{
    char *out = NULL;
    size_t out_len = 0;
    int r = sigstr_request(h, method, path, body, body_len, &out, &out_len);
    if (r == -ENOMEM)
        return;
    bool m_ok = ref_method(method), p_ok = ref_path(path);
    if (r == 0 && !(m_ok && p_ok))
        fail("sigstr_request accepted a bad method or path", m_ok * 10 + p_ok);
    if (r != 0) {
        if (m_ok && p_ok)
            fail("sigstr_request refused a valid method and path", r);
        if ((r == SIGSTR_E_METHOD && m_ok) || (r == SIGSTR_E_PATH && p_ok) ||
            (r != SIGSTR_E_METHOD && r != SIGSTR_E_PATH))
            fail("sigstr_request blamed the wrong field", r);
        if (out)
            fail("sigstr_request set *out on failure", r);
        return;
    }

    if (!out || out[out_len] != '\0' || strlen(out) != out_len)
        fail("request string is not a NUL-terminated string of out_len bytes", (long long)out_len);
    if (count_newlines(out, out_len) != 5)
        fail("request string does not have exactly 5 newlines", (long long)count_newlines(out, out_len));

    char digest[65];
    sha256_hex(body, body_len, digest);
    size_t want_len = h->ocid_len + h->timestamp_len + h->nonce_len + strlen(method) +
                      strlen(path) + 64 + 5;
    char *want = malloc(want_len + 1);
    if (!want)
        fail("out of memory", 0);
    int n = snprintf(want, want_len + 1, "%.*s\n%.*s\n%.*s\n%s\n%s\n%s", (int)h->ocid_len,
                     h->ocid_text, (int)h->timestamp_len, h->timestamp_text, (int)h->nonce_len,
                     h->nonce, method, path, digest);
    if (n < 0 || (size_t)n != want_len || out_len != want_len || memcmp(out, want, want_len) != 0)
        fail("request string differs from the spec's six lines", (long long)out_len);
    free(want);
    oc_free(out);
}

static void check_response(const SigHeaders *h, int status, const char *body, size_t body_len)
{
    char *out = NULL;
    size_t out_len = 0;
    int r = sigstr_response(h->ocid, h->timestamp, status, body, body_len, &out, &out_len);
    if (r == -ENOMEM)
        return;
    bool s_ok = status >= 100 && status <= 599;
    if (r != 0) {
        if (s_ok || r != SIGSTR_E_STATUS)
            fail("sigstr_response: unexpected failure", r);
        if (out)
            fail("sigstr_response set *out on failure", r);
        return;
    }
    if (!s_ok)
        fail("sigstr_response accepted a status outside 100..599", status);
    char digest[65], want[128];
    sha256_hex(body, body_len, digest);
    int n = snprintf(want, sizeof(want), "%lld\n%lld\n%d\n%s", (long long)h->ocid,
                     (long long)h->timestamp, status, digest);
    if (!out || n < 0 || out_len != (size_t)n || memcmp(out, want, out_len) != 0 ||
        out[out_len] != '\0')
        fail("response string differs from the spec's four lines", (long long)out_len);
    if (count_newlines(out, out_len) != 3)
        fail("response string does not have exactly 3 newlines", 0);
    oc_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sep = data[0];
    const uint8_t *p = data + 1, *end = data + size;

    /* Split; fields after the last separator stay NULL (a missing header). */
    const uint8_t *start[NFIELDS] = { 0 };
    size_t len[NFIELDS] = { 0 };
    for (int i = 0; i < NFIELDS; i++) {
        const uint8_t *q = i == F_BODY ? NULL : memchr(p, sep, (size_t)(end - p));
        start[i] = p;
        len[i] = (size_t)((q ? q : end) - p);
        if (!q)
            break;
        p = q + 1;
    }

    /* Missing method and path are empty strings (sigstr_request takes C strings, not NULL). */
    char *field[NFIELDS];
    for (int i = 0; i < NFIELDS; i++)
        field[i] = start[i] ? copy_exact(start[i], len[i]) : NULL;
    char *method = copy_cstr(start[F_METHOD] ? start[F_METHOD] : data, len[F_METHOD]);
    char *path = copy_cstr(start[F_PATH] ? start[F_PATH] : data, len[F_PATH]);
    char *body = field[F_BODY] ? field[F_BODY] : copy_exact(data, 0);
    if (!method || !path || !body)
        goto out;

    /* sigstr_parse_decimal against the reference (zero included, as its contract says). */
    if (field[F_OCID]) {
        int64_t got = -1, want = 0;
        int ref = ref_decimal(field[F_OCID], len[F_OCID], 16, &want);
        int r = sigstr_parse_decimal(field[F_OCID], len[F_OCID], 16, &got);
        if (ref == -1)
            ref = 1, want = 0;
        if ((r == 0) != (ref == 1) || (r == 0 && got != want) || (r != 0 && r != -EINVAL))
            fail("sigstr_parse_decimal disagrees with the reference", r);
    }

    SigHeaders h;
    int r = sigstr_parse_headers(field[F_OCID], len[F_OCID], field[F_TIMESTAMP],
                                 len[F_TIMESTAMP], field[F_NONCE], len[F_NONCE],
                                 field[F_SIGNATURE], len[F_SIGNATURE], &h);
    int64_t ocid = -1, ts = -1;
    int ocid_ok = ref_decimal(field[F_OCID], len[F_OCID], 16, &ocid);
    if (ocid_ok == 1 && ocid > MAX_SAFE_INT)
        ocid_ok = 0;
    int ts_ok = ref_decimal(field[F_TIMESTAMP], len[F_TIMESTAMP], 12, &ts);
    bool nonce_ok = ref_nonce(field[F_NONCE], len[F_NONCE]);
    bool sig_ok = ref_signature(field[F_SIGNATURE], len[F_SIGNATURE]);

    if (r != 0) {
        if (r == -ENOMEM)
            goto out;
        /* The code must name a field the reference also finds bad (or the unpinned "0"). */
        bool blame_ok = (r == SIGSTR_E_OCID && ocid_ok != 1) ||
                        (r == SIGSTR_E_TIMESTAMP && ts_ok != 1) ||
                        (r == SIGSTR_E_NONCE && !nonce_ok) ||
                        (r == SIGSTR_E_SIGNATURE && !sig_ok);
        if (!blame_ok)
            fail("sigstr_parse_headers refused valid headers or blamed the wrong one", r);
        goto out;
    }
    if (ocid_ok == 0 || ts_ok == 0 || !nonce_ok || !sig_ok)
        fail("sigstr_parse_headers accepted an invalid header",
             ocid_ok * 1000 + ts_ok * 100 + nonce_ok * 10 + sig_ok);
    if (ocid_ok == -1)
        ocid = 0;
    if (ts_ok == -1)
        ts = 0;
    if (h.ocid != ocid || h.timestamp != ts)
        fail("parsed ocid/timestamp differ from the header text", h.ocid);

    /* The signing string joins these with '\n': none may contain one, and each must be
     * the caller's bytes. */
    const struct {
        const char *got; size_t got_len; const char *want; size_t want_len;
    } hf[] = {
        { h.ocid_text, h.ocid_len, field[F_OCID], len[F_OCID] },
        { h.timestamp_text, h.timestamp_len, field[F_TIMESTAMP], len[F_TIMESTAMP] },
        { h.nonce, h.nonce_len, field[F_NONCE], len[F_NONCE] },
        { h.signature, h.signature_len, field[F_SIGNATURE], len[F_SIGNATURE] },
    };
    for (size_t i = 0; i < sizeof(hf) / sizeof(hf[0]); i++) {
        if (!hf[i].got || hf[i].got_len != hf[i].want_len ||
            memcmp(hf[i].got, hf[i].want, hf[i].want_len) != 0)
            fail("SigHeaders field differs from the header given", (long long)i);
        if (memchr(hf[i].got, '\n', hf[i].got_len))
            fail("accepted header field contains a newline", (long long)i);
    }

    check_request(&h, method, path, body, len[F_BODY]);

    int status = -1;
    if (field[F_STATUS] && len[F_STATUS] >= 1 && len[F_STATUS] <= 9) {
        status = 0;
        for (size_t i = 0; i < len[F_STATUS] && status >= 0; i++) {
            char c = field[F_STATUS][i];
            status = c >= '0' && c <= '9' ? status * 10 + (c - '0') : -1;
        }
    }
    check_response(&h, status, body, len[F_BODY]);

out:
    if (body != field[F_BODY])
        free(body);
    for (int i = 0; i < NFIELDS; i++)
        free(field[i]);
    free(method);
    free(path);
    return 0;
}
