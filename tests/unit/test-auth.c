/* Unit tests for auth/: response signatures and outbound headers verified with the proto
 * code they are built on, and the order of auth_verify_request's refusals up to the
 * participant lookup (a snapshot with participants needs the database; test-http.sh covers
 * the rest against a real one). */
#include "testlib.h"

#include <regex.h>
#include <time.h>

#include "auth/auth.h"
#include "util/alloc.h"

static int matches(const char *re, const char *s)
{
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    int ok = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static void test_sign_response(const PrivateKey *key)
{
    static const char body[] = "{\"status\":\"accepted\"}";
    AuthResponseHeaders h;
    int r = auth_sign_response(key, 100, 1706500000, 200, body, sizeof(body) - 1, &h);
    CHECK_INT(r, 0, "auth_sign_response succeeds");
    CHECK_STR(h.ocid, "100", "X-OC-ID is the decimal ocid");
    CHECK_STR(h.timestamp, "1706500000", "X-OC-Timestamp is the decimal time");
    CHECK(matches("^[0-9a-f]{128}1[bc]$", h.signature), "signature is 130 lowercase hex, v=1b/1c");
    char *msg;
    size_t len;
    r = sigstr_response(100, 1706500000, 200, body, sizeof(body) - 1, &msg, &len);
    CHECK(r == 0 && sig_verify(&key->pub, msg, len, h.signature, strlen(h.signature)) == 0,
          "the response signature verifies over sigstr_response");
    oc_free(msg);
    r = sigstr_response(100, 1706500000, 201, body, sizeof(body) - 1, &msg, &len);
    CHECK(r == 0 && sig_verify(&key->pub, msg, len, h.signature, strlen(h.signature)) != 0,
          "...and not for another status");
    oc_free(msg);
    CHECK_INT(auth_sign_response(key, 100, 1, 99, "", 0, &h), -EINVAL, "status 99 refused");
    CHECK_INT(auth_sign_response(key, 100, 1, 600, "", 0, &h), -EINVAL, "status 600 refused");
    CHECK_INT(auth_sign_response(key, -1, 1, 200, "", 0, &h), -EINVAL, "negative ocid refused");
    CHECK_INT(auth_sign_response(key, 1, -1, 200, "", 0, &h), -EINVAL, "negative time refused");
    CHECK_INT(auth_sign_response(key, 1, 1, 404, NULL, 0, &h), 0, "an empty body is signable");
}

static void test_outbound(const PrivateKey *key)
{
    static const char body[] = "{\"proof\":{}}";
    AuthOutboundHeaders a, b;
    int r = auth_outbound_headers(key, 100, 1706500000, "POST", "/opencharge/transfer/webhook",
                                  body, sizeof(body) - 1, &a);
    CHECK_INT(r, 0, "auth_outbound_headers succeeds");
    CHECK(matches("^req_[0-9a-f]{32}$", a.nonce), "nonce is req_ + 32 hex (%s)", a.nonce);
    CHECK_STR(a.ocid, "100", "X-OC-ID");
    CHECK_STR(a.timestamp, "1706500000", "X-OC-Timestamp");
    r = auth_outbound_headers(key, 100, 1706500000, "POST", "/opencharge/transfer/webhook",
                              body, sizeof(body) - 1, &b);
    CHECK(r == 0 && strcmp(a.nonce, b.nonce) != 0, "every call draws a fresh nonce");

    SigHeaders sh;
    r = sigstr_parse_headers(a.ocid, strlen(a.ocid), a.timestamp, strlen(a.timestamp), a.nonce,
                             strlen(a.nonce), a.signature, strlen(a.signature), &sh);
    CHECK_INT(r, 0, "the headers pass the inbound header parser");
    char *msg;
    size_t len;
    r = sigstr_request(&sh, "POST", "/opencharge/transfer/webhook", body, sizeof(body) - 1, &msg,
                       &len);
    CHECK(r == 0 && sig_verify(&key->pub, msg, len, a.signature, strlen(a.signature)) == 0,
          "the signature verifies over sigstr_request");
    oc_free(msg);
    r = sigstr_request(&sh, "POST", "/opencharge/transfer/webhook", "{}", 2, &msg, &len);
    CHECK(r == 0 && sig_verify(&key->pub, msg, len, a.signature, strlen(a.signature)) != 0,
          "...and not over another body");
    oc_free(msg);

    CHECK_INT(auth_outbound_headers(key, 1, 1, "post", "/x", NULL, 0, &a), -EINVAL,
              "lower-case method refused");
    CHECK_INT(auth_outbound_headers(key, 1, 1, "GET", "x", NULL, 0, &a), -EINVAL,
              "target without a leading / refused");
    CHECK_INT(auth_outbound_headers(key, 1, 1, "GET", "/a b", NULL, 0, &a), -EINVAL,
              "target with a space refused");
    CHECK_INT(auth_outbound_headers(key, -1, 1, "GET", "/x", NULL, 0, &a), -EINVAL,
              "negative ocid refused");
}

static void test_verify_order(const PrivateKey *key)
{
    int64_t now = 1706500000;
    AuthOutboundHeaders o;
    int r = auth_outbound_headers(key, 200, now, "GET", "/opencharge/capabilities", NULL, 0, &o);
    CHECK_INT(r, 0, "signed a request");
    const Participant *caller = (const Participant *)&caller; /* must stay untouched */
    const Participant *const sentinel = caller;

    AuthHeaders h = { o.ocid, o.timestamp, o.nonce, o.signature };
    AuthHeaders missing[4] = { h, h, h, h };
    missing[0].ocid = NULL;
    missing[1].timestamp = NULL;
    missing[2].nonce = NULL;
    missing[3].signature = NULL;
    for (int i = 0; i < 4; i++)
        CHECK_INT(auth_verify_request(&missing[i], "GET", "/opencharge/capabilities", NULL, 0,
                                      now, 300, NULL, &caller),
                  OC_ERR_INVALID_SIGNATURE, "header %d missing → INVALID_SIGNATURE", i);
    AuthHeaders bad = h;
    bad.ocid = "0200";
    CHECK_INT(auth_verify_request(&bad, "GET", "/x", NULL, 0, now, 300, NULL, &caller),
              OC_ERR_INVALID_SIGNATURE, "leading-zero ocid → INVALID_SIGNATURE");
    bad = h;
    bad.nonce = "req\nx";
    CHECK_INT(auth_verify_request(&bad, "GET", "/x", NULL, 0, now, 300, NULL, &caller),
              OC_ERR_INVALID_SIGNATURE, "newline in the nonce → INVALID_SIGNATURE");
    bad = h;
    bad.signature = "zz";
    CHECK_INT(auth_verify_request(&bad, "GET", "/x", NULL, 0, now, 300, NULL, &caller),
              OC_ERR_INVALID_SIGNATURE, "malformed signature → INVALID_SIGNATURE");
    /* A malformed header wins over a stale timestamp: the shape is checked first. */
    CHECK_INT(auth_verify_request(&bad, "GET", "/x", NULL, 0, now + 1000, 300, NULL, &caller),
              OC_ERR_INVALID_SIGNATURE, "malformed beats stale");
    CHECK_INT(auth_verify_request(&h, "GET", "/opencharge/capabilities", NULL, 0, now + 301, 300,
                                  NULL, &caller),
              OC_ERR_TIMESTAMP_EXPIRED, "301 s late → TIMESTAMP_EXPIRED");
    CHECK_INT(auth_verify_request(&h, "GET", "/opencharge/capabilities", NULL, 0, now - 301, 300,
                                  NULL, &caller),
              OC_ERR_TIMESTAMP_EXPIRED, "301 s early → TIMESTAMP_EXPIRED");
    CHECK_INT(auth_verify_request(&h, "GET", "/opencharge/capabilities", NULL, 0, now + 300, 300,
                                  NULL, &caller),
              OC_ERR_UNKNOWN_OCID, "300 s late is inside the window (no directory: UNKNOWN_OCID)");
    CHECK_INT(auth_verify_request(&h, "GET", "/opencharge/capabilities", NULL, 0, now - 300, 300,
                                  NULL, &caller),
              OC_ERR_UNKNOWN_OCID, "300 s early is inside the window");
    CHECK(caller == sentinel, "*caller untouched on every refusal");
}

int main(void)
{
    PrivateKey key;
    if (key_generate(&key) != 0) {
        printf("Bail out! no randomness\n");
        return 1;
    }
    test_sign_response(&key);
    test_outbound(&key);
    test_verify_order(&key);
    key_private_wipe(&key);
    return tl_done();
}
