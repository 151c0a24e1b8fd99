/* Unit tests for proto/sigstr: the vectors' request and response signing strings reproduced
 * byte for byte, every validation code reached by several inputs (lengths explicit, so
 * embedded NULs count), newline injection refused, and allocation failure reported as
 * -ENOMEM without a leak. argv[1] is the vectors file. */
#include "testlib.h"
#include "vectorlib.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "proto/keys.h"
#include "proto/sigstr.h"
#include "util/alloc.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIG130                                                                              \
    "eb8e703768213c782314a2b527b32476c2cb7172377c474cf05f812a0ba8679c255223519c08a21051024da7" \
    "25ec8f79726666cb6e581aaf0efe85a18d5b5e761b"

static json_t *vectors;

typedef struct Text {
    const char *s;
    size_t len;
} Text;

#define T(lit) { (lit), sizeof(lit) - 1 }

/* Printable form for a TAP description: raw control bytes would break the TAP line. */
static const char *printable(const char *s, size_t len)
{
    static char bufs[2][160];
    static int next;
    char *out = bufs[next++ % 2];
    size_t n = 0;
    if (!s)
        return "(NULL)";
    for (size_t i = 0; i < len && n + 8 < sizeof(bufs[0]); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[n++] = (char)c;
        } else {
            snprintf(out + n, sizeof(bufs[0]) - n, "\\x%02x", c);
            n += 4;
        }
    }
    if (n + 8 >= sizeof(bufs[0]))
        snprintf(out + n, sizeof(bufs[0]) - n, "...");
    else
        out[n] = '\0';
    return out;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == c;
    return n;
}

/* A fixed set of valid headers to vary one at a time. */
static const char good_ocid[] = "100", good_ts[] = "1706500501",
                  good_nonce[] = "req_0f1e2d3c4b5a69788796a5b4c3d2e1f0";

static int parse_with(Text ocid, Text ts, Text nonce, Text sig, SigHeaders *h)
{
    return sigstr_parse_headers(ocid.s, ocid.len, ts.s, ts.len, nonce.s, nonce.len, sig.s,
                                sig.len, h);
}

static const Text G_OCID = T(good_ocid), G_TS = T(good_ts), G_NONCE = T(good_nonce),
                  G_SIG = T(SIG130);

static SigHeaders good_headers(void)
{
    SigHeaders h;
    if (parse_with(G_OCID, G_TS, G_NONCE, G_SIG, &h) != 0)
        bail("the fixed good headers do not parse", NULL);
    return h;
}

/* --- vectors ------------------------------------------------------------------------ */

static void test_vector_requests(void)
{
    size_t i;
    json_t *v;
    json_array_foreach(varr(vectors, "requests"), i, v) {
        const char *ocid = vstr(v, "ocid", NULL), *ts = vstr(v, "timestamp", NULL),
                   *nonce = vstr(v, "nonce", NULL), *sig = vstr(v, "signature", NULL);
        size_t body_len, want_len;
        const char *body = vstr(v, "body", &body_len);
        const char *want = vstr(v, "string_to_sign", &want_len);
        SigHeaders h;

        int r = sigstr_parse_headers(ocid, strlen(ocid), ts, strlen(ts), nonce, strlen(nonce),
                                     sig, strlen(sig), &h);
        CHECK_INT(r, 0, "requests[%zu]: headers accepted", i);
        if (r != 0)
            continue;
        CHECK_INT(h.ocid, strtoll(ocid, NULL, 10), "requests[%zu]: ocid value", i);
        CHECK_INT(h.timestamp, strtoll(ts, NULL, 10), "requests[%zu]: timestamp value", i);
        CHECK(h.ocid_text == ocid && h.ocid_len == strlen(ocid) && h.nonce == nonce &&
                  h.nonce_len == strlen(nonce) && h.timestamp_text == ts &&
                  h.signature == sig && h.signature_len == strlen(sig),
              "requests[%zu]: SigHeaders borrows the caller's strings", i);

        char *out = NULL;
        size_t out_len = 0;
        r = sigstr_request(&h, vstr(v, "method", NULL), vstr(v, "path", NULL), body, body_len,
                           &out, &out_len);
        CHECK_INT(r, 0, "requests[%zu]: sigstr_request", i);
        CHECK_BYTES(out, out_len, want, want_len, "requests[%zu]: string_to_sign exactly", i);
        CHECK(out && out[out_len] == '\0', "requests[%zu]: NUL-terminated", i);
        const char *hash = vstr(v, "body_sha256", NULL);
        CHECK(out && out_len >= 64 && memcmp(out + out_len - 64, hash, 64) == 0,
              "requests[%zu]: last line is body_sha256", i);
        oc_free(out);
    }
}

static void test_vector_responses(void)
{
    size_t i;
    json_t *v;
    json_array_foreach(varr(vectors, "responses"), i, v) {
        int64_t ocid = 0, ts = 0;
        const char *ocid_text = vstr(v, "ocid", NULL), *ts_text = vstr(v, "timestamp", NULL);
        CHECK(sigstr_parse_decimal(ocid_text, strlen(ocid_text), 16, &ocid) == 0 &&
                  sigstr_parse_decimal(ts_text, strlen(ts_text), 12, &ts) == 0,
              "responses[%zu]: ocid and timestamp parse", i);
        json_t *status = json_object_get(v, "status");
        if (!json_is_integer(status))
            bail("vectors: responses[].status is not an integer", NULL);
        size_t body_len;
        const char *body = vstr(v, "body", &body_len);
        const char *want = vstr(v, "string_to_sign", NULL);

        char *out = NULL;
        size_t out_len = 0;
        int r = sigstr_response(ocid, ts, (int)json_integer_value(status), body, body_len, &out,
                                &out_len);
        CHECK_INT(r, 0, "responses[%zu]: sigstr_response", i);
        CHECK_BYTES(out, out_len, want, strlen(want), "responses[%zu]: string_to_sign exactly",
                    i);
        oc_free(out);
    }
}

static void test_empty_body(void)
{
    SigHeaders h = good_headers();
    char *out = NULL;
    size_t len = 0;
    static const char want[] = "100\n1706500501\nreq_0f1e2d3c4b5a69788796a5b4c3d2e1f0\nGET\n"
                               "/x\n" EMPTY_SHA256;
    CHECK_INT(sigstr_request(&h, "GET", "/x", NULL, 0, &out, &len), 0,
              "empty body: NULL body accepted");
    CHECK_BYTES(out, len, want, sizeof(want) - 1, "empty body: hash of the empty string");
    oc_free(out);
    CHECK_INT(sigstr_request(&h, "GET", "/x", "", 0, &out, &len), 0, "empty body: \"\"");
    CHECK_BYTES(out, len, want, sizeof(want) - 1, "empty body: \"\" hashes the same");
    oc_free(out);

    static const char want_resp[] = "0\n0\n204\n" EMPTY_SHA256;
    CHECK_INT(sigstr_response(0, 0, 204, NULL, 0, &out, &len), 0, "empty body: response");
    CHECK_BYTES(out, len, want_resp, sizeof(want_resp) - 1, "empty body: response string");
    oc_free(out);

    /* A body with a NUL and newlines is hashed, never copied into the string. */
    static const char body[] = "a\0b\n\nc";
    char hash[65];
    sha256_hex(body, sizeof(body) - 1, hash);
    CHECK_INT(sigstr_request(&h, "PUT", "/y", body, sizeof(body) - 1, &out, &len), 0,
              "binary body accepted");
    CHECK(out && len > 64 && strcmp(out + len - 64, hash) == 0 && count_char(out, len, '\n') == 5,
          "binary body: only its hash appears, still six lines");
    oc_free(out);
}

/* --- validation --------------------------------------------------------------------- */

static void check_ocid(Text t, int want)
{
    SigHeaders h;
    int r = parse_with(t, G_TS, G_NONCE, G_SIG, &h);
    CHECK_INT(r, want, "X-OC-ID \"%s\" (%zu bytes) %s", printable(t.s, t.len), t.len,
              want ? "refused" : "accepted");
}

static void check_ts(Text t, int want)
{
    SigHeaders h;
    int r = parse_with(G_OCID, t, G_NONCE, G_SIG, &h);
    CHECK_INT(r, want, "X-OC-Timestamp \"%s\" (%zu bytes) %s", printable(t.s, t.len), t.len,
              want ? "refused" : "accepted");
}

static void check_nonce(Text t, int want)
{
    SigHeaders h;
    int r = parse_with(G_OCID, G_TS, t, G_SIG, &h);
    CHECK_INT(r, want, "X-OC-Nonce \"%s\" (%zu bytes) %s", printable(t.s, t.len), t.len,
              want ? "refused" : "accepted");
}

static void check_sig(Text t, int want)
{
    SigHeaders h;
    int r = parse_with(G_OCID, G_TS, G_NONCE, t, &h);
    CHECK_INT(r, want, "X-OC-Signature \"%s\" (%zu bytes) %s", printable(t.s, t.len), t.len,
              want ? "refused" : "accepted");
}

static void test_headers(void)
{
    static const Text ocid_bad[] = {
        { NULL, 0 }, T(""), T("01"), T("00"), T("12a"), T("9007199254740992"),
        T("12345678901234567"), T("99999999999999999999"), T("-1"), T("+1"), T(" 1"),
        T("1 "), T("1\n"), T("0x10"), T("1.0"), T("\xd9\xa1"), T("1\0"),
    };
    static const Text ocid_good[] = { T("0"), T("1"), T("100"), T("9007199254740991") };
    for (size_t i = 0; i < OC_ARRAY_LEN(ocid_bad); i++)
        check_ocid(ocid_bad[i], SIGSTR_E_OCID);
    for (size_t i = 0; i < OC_ARRAY_LEN(ocid_good); i++)
        check_ocid(ocid_good[i], 0);

    static const Text ts_bad[] = {
        { NULL, 0 }, T(""), T("01706500501"), T("00"), T("1706500501a"), T("1234567890123"),
        T("-1"), T("1.5"), T(" 1706500501"), T("1706500501\n"), T("1e9"),
    };
    static const Text ts_good[] = { T("0"), T("1706500501"), T("999999999999") };
    for (size_t i = 0; i < OC_ARRAY_LEN(ts_bad); i++)
        check_ts(ts_bad[i], SIGSTR_E_TIMESTAMP);
    for (size_t i = 0; i < OC_ARRAY_LEN(ts_good); i++)
        check_ts(ts_good[i], 0);

    char long_nonce[SIGSTR_MAX_NONCE + 2];
    memset(long_nonce, 'n', sizeof(long_nonce));
    static const Text nonce_bad[] = {
        { NULL, 0 }, T(""), T("a\nPOST"), T("a b"), T("a\r"), T("a\tb"), T("a/b"), T("a+b"),
        T("a\"b"), T("caf\xc3\xa9"), T("a\0b"), T("a,b"), T("a;b"),
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(nonce_bad); i++)
        check_nonce(nonce_bad[i], SIGSTR_E_NONCE);
    check_nonce((Text){ long_nonce, SIGSTR_MAX_NONCE + 1 }, SIGSTR_E_NONCE);
    check_nonce((Text){ long_nonce, SIGSTR_MAX_NONCE + 2 }, SIGSTR_E_NONCE);
    check_nonce((Text){ long_nonce, SIGSTR_MAX_NONCE }, 0);
    static const Text nonce_good[] = { T("a"), T("req_abc123"), T("A-Z.a:z_0-9"), T("-") };
    for (size_t i = 0; i < OC_ARRAY_LEN(nonce_good); i++)
        check_nonce(nonce_good[i], 0);

    char sig[140];
    memcpy(sig, SIG130, 130);
    sig[130] = '0';
    check_sig((Text){ NULL, 0 }, SIGSTR_E_SIGNATURE);
    check_sig((Text){ "", 0 }, SIGSTR_E_SIGNATURE);
    check_sig((Text){ sig, 129 }, SIGSTR_E_SIGNATURE);
    check_sig((Text){ sig, 131 }, SIGSTR_E_SIGNATURE);
    check_sig((Text){ sig, 127 }, SIGSTR_E_SIGNATURE);
    check_sig((Text){ sig, 64 }, SIGSTR_E_SIGNATURE);
    check_sig((Text){ sig, 128 }, 0);
    check_sig((Text){ sig, 130 }, 0);
    sig[5] = 'g';
    check_sig((Text){ sig, 130 }, SIGSTR_E_SIGNATURE);
    sig[5] = '\n';
    check_sig((Text){ sig, 130 }, SIGSTR_E_SIGNATURE);
    sig[5] = '\0';
    check_sig((Text){ sig, 128 }, SIGSTR_E_SIGNATURE);
    for (size_t i = 0; i < 130; i++)
        sig[i] = (char)toupper((unsigned char)SIG130[i]);
    check_sig((Text){ sig, 130 }, 0);

    /* A successful parse fills every field. */
    SigHeaders h = good_headers();
    CHECK(h.ocid == 100 && h.timestamp == 1706500501 && h.ocid_len == 3 &&
              h.timestamp_len == 10 && h.nonce_len == strlen(good_nonce) &&
              h.signature_len == 130,
          "headers: values and lengths filled");
}

static void check_method(const char *m, int want, const char *what)
{
    SigHeaders h = good_headers();
    char *out = NULL;
    size_t len = 0;
    int r = sigstr_request(&h, m, "/x", "", 0, &out, &len);
    CHECK_INT(r, want, "method %s (%s) %s", what, printable(m, strlen(m)),
              want ? "refused" : "accepted");
    CHECK(want ? out == NULL : out != NULL, "method %s: *out %s", what,
          want ? "untouched" : "set");
    oc_free(out);
}

static void check_path(const char *p, int want, const char *what)
{
    SigHeaders h = good_headers();
    char *out = NULL;
    size_t len = 0;
    int r = sigstr_request(&h, "GET", p, "", 0, &out, &len);
    CHECK_INT(r, want, "path %s (%s) %s", what, printable(p, strlen(p)),
              want ? "refused" : "accepted");
    CHECK(want ? out == NULL : out != NULL, "path %s: *out %s", what,
          want ? "untouched" : "set");
    if (out)
        CHECK_INT(count_char(out, len, '\n'), 5, "path %s: exactly six lines", what);
    oc_free(out);
}

static void test_method_path(void)
{
    check_method("", SIGSTR_E_METHOD, "empty");
    check_method("post", SIGSTR_E_METHOD, "lower case");
    check_method("Post", SIGSTR_E_METHOD, "mixed case");
    check_method("PO ST", SIGSTR_E_METHOD, "with a space");
    check_method("POST\n", SIGSTR_E_METHOD, "with a newline");
    check_method("GET1", SIGSTR_E_METHOD, "with a digit");
    check_method("M-SEARCH", SIGSTR_E_METHOD, "with a hyphen");
    check_method("P\xc3\x96ST", SIGSTR_E_METHOD, "with UTF-8");
    check_method("ABCDEFGHIJKLMNOPQ", SIGSTR_E_METHOD, "17 letters");
    check_method("GET", 0, "GET");
    check_method("POST", 0, "POST");
    check_method("ABCDEFGHIJKLMNOP", 0, "16 letters");

    check_path("", SIGSTR_E_PATH, "empty");
    check_path("opencharge/x", SIGSTR_E_PATH, "not starting with '/'");
    check_path("https://gw.example/x", SIGSTR_E_PATH, "absolute URL");
    check_path("*", SIGSTR_E_PATH, "asterisk form");
    check_path("/a\nb", SIGSTR_E_PATH, "with LF");
    check_path("/a\rb", SIGSTR_E_PATH, "with CR");
    check_path("/a b", SIGSTR_E_PATH, "with a space");
    check_path("/a\tb", SIGSTR_E_PATH, "with a tab");
    check_path("/a\x7f", SIGSTR_E_PATH, "with 0x7f");
    check_path("/a\x80", SIGSTR_E_PATH, "with 0x80");
    check_path("/caf\xc3\xa9", SIGSTR_E_PATH, "with raw UTF-8");
    check_path("/a\x01", SIGSTR_E_PATH, "with 0x01");
    check_path("/", 0, "root");
    check_path("/opencharge/verify/gw_pay_abc?x=1&y=%20#~!$'()*+,;=:@[]{}|^`\\\"<>", 0,
               "every printable ASCII class");

    char *p = malloc(SIGSTR_MAX_PATH + 2);
    if (!p)
        bail("out of memory", NULL);
    memset(p, 'a', SIGSTR_MAX_PATH + 1);
    p[0] = '/';
    p[SIGSTR_MAX_PATH + 1] = '\0';
    check_path(p, SIGSTR_E_PATH, "of 2049 bytes");
    p[SIGSTR_MAX_PATH] = '\0';
    check_path(p, 0, "of 2048 bytes");
    free(p);
}

/* Header fields smuggling a line must never reach the string; and sigstr_request does not
 * take a hand-filled SigHeaders on trust. */
static void test_injection(void)
{
    SigHeaders h;
    static const char nl_nonce[] = "a\nPOST";
    CHECK_INT(sigstr_parse_headers(good_ocid, 3, good_ts, strlen(good_ts), nl_nonce,
                                   sizeof(nl_nonce) - 1, SIG130, 130, &h),
              SIGSTR_E_NONCE, "injection: nonce \"a\\nPOST\" refused by the header check");

    SigHeaders base = good_headers();
    char *out = NULL;
    size_t len = 0;

    h = base;
    h.nonce = nl_nonce;
    h.nonce_len = sizeof(nl_nonce) - 1;
    CHECK_INT(sigstr_request(&h, "GET", "/x", "", 0, &out, &len), SIGSTR_E_NONCE,
              "injection: hand-filled nonce with a newline refused by sigstr_request");
    CHECK(out == NULL, "injection: *out untouched");

    h = base;
    h.ocid_text = "1\n2";
    h.ocid_len = 3;
    CHECK_INT(sigstr_request(&h, "GET", "/x", "", 0, &out, &len), SIGSTR_E_OCID,
              "injection: hand-filled ocid with a newline refused");
    h = base;
    h.timestamp_text = "1\n";
    h.timestamp_len = 2;
    CHECK_INT(sigstr_request(&h, "GET", "/x", "", 0, &out, &len), SIGSTR_E_TIMESTAMP,
              "injection: hand-filled timestamp with a newline refused");
    h = base;
    h.nonce = NULL;
    h.nonce_len = 0;
    CHECK_INT(sigstr_request(&h, "GET", "/x", "", 0, &out, &len), SIGSTR_E_NONCE,
              "injection: hand-filled NULL nonce refused");

    /* Outbound signing has no signature yet. */
    h = base;
    h.signature = NULL;
    h.signature_len = 0;
    CHECK_INT(sigstr_request(&h, "GET", "/x", "", 0, &out, &len), 0,
              "outbound: sigstr_request ignores a missing signature");
    oc_free(out);

    /* The reason for all this: without the checks these two would share one string. */
    static const char sneaky_nonce[] = "n\nGET\n/a";
    CHECK_INT(sigstr_parse_headers(good_ocid, 3, good_ts, strlen(good_ts), sneaky_nonce,
                                   sizeof(sneaky_nonce) - 1, SIG130, 130, &h),
              SIGSTR_E_NONCE, "injection: nonce carrying method and path lines refused");
}

static void test_response_limits(void)
{
    char *out = NULL;
    size_t len = 0;
    struct {
        int64_t ocid, ts;
        int status;
        int want;
        const char *what;
    } cases[] = {
        { 300, 1706500502, 99, SIGSTR_E_STATUS, "status 99" },
        { 300, 1706500502, 600, SIGSTR_E_STATUS, "status 600" },
        { 300, 1706500502, 0, SIGSTR_E_STATUS, "status 0" },
        { 300, 1706500502, -200, SIGSTR_E_STATUS, "status -200" },
        { 300, 1706500502, 2000, SIGSTR_E_STATUS, "status 2000" },
        { -1, 1706500502, 200, SIGSTR_E_OCID, "ocid -1" },
        { INT64_C(9007199254740992), 1706500502, 200, SIGSTR_E_OCID, "ocid 2^53" },
        { INT64_MIN, 1706500502, 200, SIGSTR_E_OCID, "ocid INT64_MIN" },
        { 300, -1, 200, SIGSTR_E_TIMESTAMP, "timestamp -1" },
        { 300, INT64_C(1000000000000), 200, SIGSTR_E_TIMESTAMP, "timestamp 10^12" },
        { 300, 1706500502, 100, 0, "status 100" },
        { 300, 1706500502, 599, 0, "status 599" },
        { INT64_C(9007199254740991), INT64_C(999999999999), 200, 0, "largest ocid, timestamp" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        out = NULL;
        int r = sigstr_response(cases[i].ocid, cases[i].ts, cases[i].status, "{}", 2, &out,
                                &len);
        CHECK_INT(r, cases[i].want, "response: %s %s", cases[i].what,
                  cases[i].want ? "refused" : "accepted");
        CHECK(cases[i].want ? out == NULL : (out && count_char(out, len, '\n') == 3),
              "response: %s: %s", cases[i].what,
              cases[i].want ? "*out untouched" : "four lines");
        oc_free(out);
    }
    CHECK_INT(sigstr_response(9007199254740991, 999999999999, 200, "{}", 2, &out, &len), 0,
              "response: largest values");
    static const char want[] = "9007199254740991\n999999999999\n200\n"
                               "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    CHECK_BYTES(out, len, want, sizeof(want) - 1, "response: largest values, exact text");
    oc_free(out);
}

static void test_parse_decimal(void)
{
    struct {
        const char *s;
        size_t max;
        int want;
        int64_t value;
    } cases[] = {
        { "0", 16, 0, 0 },
        { "7", 1, 0, 7 },
        { "10", 2, 0, 10 },
        { "123", 2, -EINVAL, 0 },
        { "00", 16, -EINVAL, 0 },
        { "007", 16, -EINVAL, 0 },
        { "", 16, -EINVAL, 0 },
        { "1", 0, -EINVAL, 0 },
        { "-0", 16, -EINVAL, 0 },
        { "+5", 16, -EINVAL, 0 },
        { "5 ", 16, -EINVAL, 0 },
        { "9223372036854775807", 19, 0, INT64_MAX },
        { "9223372036854775808", 19, -EINVAL, 0 },
        { "99999999999999999999", 25, -EINVAL, 0 },
        { "9007199254740992", 16, 0, INT64_C(9007199254740992) }, /* no 2^53 rule here */
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        int64_t v = -42;
        int r = sigstr_parse_decimal(cases[i].s, strlen(cases[i].s), cases[i].max, &v);
        CHECK_INT(r, cases[i].want, "parse_decimal(\"%s\", max %zu)", cases[i].s, cases[i].max);
        if (cases[i].want == 0)
            CHECK_INT(v, cases[i].value, "parse_decimal(\"%s\") value", cases[i].s);
        else
            CHECK_INT(v, -42, "parse_decimal(\"%s\") leaves *out alone", cases[i].s);
    }
    int64_t v = -42;
    CHECK_INT(sigstr_parse_decimal(NULL, 0, 16, &v), -EINVAL, "parse_decimal(NULL)");
    CHECK_INT(sigstr_parse_decimal("12", 1, 16, &v), 0, "parse_decimal honours len");
    CHECK_INT(v, 1, "parse_decimal honours len: value");
}

/* --- allocation failure ------------------------------------------------------------- */

static long alloc_calls, alloc_live;
static long alloc_fail_at; /* index of the allocation to fail; -1 = fail every one */

static void *counting_malloc(size_t size)
{
    long n = alloc_calls++;
    if (alloc_fail_at < 0 || n == alloc_fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        alloc_live++;
    return p;
}

static void counting_free(void *p)
{
    if (p) {
        alloc_live--;
        free(p);
    }
}

static void alloc_install(long fail_at)
{
    alloc_calls = 0;
    alloc_live = 0;
    alloc_fail_at = fail_at;
    oc_set_alloc_funcs(counting_malloc, counting_free);
}

static void alloc_restore(void)
{
    oc_set_alloc_funcs(NULL, NULL);
}

static void test_alloc_failure(void)
{
    SigHeaders h = good_headers();
    /* A long path makes the buffer grow several times, so later failures hit realloc. */
    char path[600];
    memset(path, 'p', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';

    char *out = (char *)"sentinel";
    size_t len = 12345;
    alloc_install(-1);
    int r = sigstr_request(&h, "POST", path, "{}", 2, &out, &len);
    long live = alloc_live;
    alloc_restore();
    CHECK_INT(r, -ENOMEM, "alloc: sigstr_request with every allocation failing -> -ENOMEM");
    CHECK(strcmp(out, "sentinel") == 0 && len == 12345, "alloc: *out and *out_len untouched");
    CHECK_INT(live, 0, "alloc: nothing leaked");

    alloc_install(-1);
    r = sigstr_response(300, 1706500502, 200, "{}", 2, &out, &len);
    live = alloc_live;
    alloc_restore();
    CHECK_INT(r, -ENOMEM, "alloc: sigstr_response with every allocation failing -> -ENOMEM");
    CHECK_INT(live, 0, "alloc: sigstr_response leaked nothing");

    /* Fail the 1st, 2nd, ... allocation in turn until a run needs no more. */
    int failures_seen = 0, bad = 0;
    for (long n = 0; n < 64; n++) {
        out = NULL;
        alloc_install(n);
        r = sigstr_request(&h, "POST", path, "{}", 2, &out, &len);
        long calls = alloc_calls;
        if (r == 0)
            oc_free(out);
        live = alloc_live;
        alloc_restore();
        if (r == -ENOMEM) {
            failures_seen++;
            if (out != NULL || live != 0)
                bad++;
        } else if (r != 0 || live != 0) {
            bad++;
        }
        if (n >= calls)
            break; /* this run never reached allocation n: every one has been failed */
    }
    CHECK(failures_seen >= 2, "alloc: %d distinct allocations failed in turn", failures_seen);
    CHECK_INT(bad, 0, "alloc: each failure gave -ENOMEM, *out untouched, no leak");
}

int main(int argc, char **argv)
{
    vectors = vectors_load(argc, argv, 0);

    test_vector_requests();
    test_vector_responses();
    test_empty_body();
    test_headers();
    test_method_path();
    test_injection();
    test_response_limits();
    test_parse_decimal();
    test_alloc_failure();

    json_decref(vectors);
    return tl_done();
}
