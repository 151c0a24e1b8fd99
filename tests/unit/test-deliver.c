/* Unit tests for the delivery worker's decisions (src/deliver/policy.h), written from
 * design.md "outbound retries": what each merchant answer means on each attempt, Retry-After
 * in both forms and its bounds, the jitter range, and the stored excerpt (length, UTF-8,
 * control characters). */
#include "testlib.h"

#include <stdint.h>

#include "deliver/policy.h"

static HttpClientResponse http(int status, const char *body, const char *retry_after)
{
    HttpClientResponse r;
    memset(&r, 0, sizeof(r));
    r.error = NET_OK;
    r.status = status;
    r.body = body;
    r.body_len = body ? strlen(body) : 0;
    r.retry_after = retry_after;
    return r;
}

static HttpClientResponse neterr(NetError e, const char *text)
{
    HttpClientResponse r;
    memset(&r, 0, sizeof(r));
    r.error = e;
    snprintf(r.error_text, sizeof(r.error_text), "%s", text);
    return r;
}

#define MAX 8 /* the default schedule: 7 delays, 8 attempts */

static DeliverVerdict classify(HttpClientResponse r, int attempt)
{
    DeliverVerdict v;
    memset(&v, 0x5a, sizeof(v)); /* everything must be written */
    deliver_classify(&r, attempt, MAX, 1700000000, &v);
    return v;
}

static void test_classify(void)
{
    DeliverVerdict v = classify(http(200, "{\"status\":\"accepted\"}", NULL), 1);
    CHECK(v.outcome == DELIVER_DELIVERED && !v.merchant_failure && v.error[0] == '\0',
          "200 {\"status\":\"accepted\"} → delivered, no error");
    v = classify(http(204, "{\"txid\":\"x\",\"status\":\"accepted\"}", NULL), MAX);
    CHECK(v.outcome == DELIVER_DELIVERED, "any 2xx with accepted, even on the last attempt");
    v = classify(http(200, "{\"status\":\"rejected\"}", NULL), 1);
    CHECK(v.outcome == DELIVER_REJECTED && !v.merchant_failure && strstr(v.error, "rejected"),
          "200 rejected → rejected, not a merchant failure (%s)", v.error);
    static const char *const not_accepted[] = {
        "", "ok", "{}", "{\"status\":\"ACCEPTED\"}", "{\"status\":true}", "[\"accepted\"]",
        "{\"status\":\"accepted\",\"status\":\"accepted\"}", "{\"status\":\"accepted\"",
    };
    for (size_t i = 0; i < sizeof(not_accepted) / sizeof(*not_accepted); i++) {
        v = classify(http(200, not_accepted[i][0] ? not_accepted[i] : NULL, NULL), 1);
        CHECK(v.outcome == DELIVER_RETRY && v.merchant_failure && strstr(v.error, "HTTP 200"),
              "200 with body '%s' → retry (%s)", not_accepted[i], v.error);
    }
    v = classify(http(200, "{\"status\":\"pending\"}", NULL), MAX);
    CHECK(v.outcome == DELIVER_DEAD, "2xx without accepted on the last attempt → dead");

    v = classify(http(410, "gone", NULL), 1);
    CHECK(v.outcome == DELIVER_DEAD && !v.merchant_failure && strstr(v.error, "410"),
          "410 → dead at once (%s)", v.error);
    v = classify(http(404, NULL, NULL), 1);
    CHECK(v.outcome == DELIVER_RETRY && v.merchant_failure, "404 on attempt 1 → retry");
    v = classify(http(400, NULL, NULL), 2);
    CHECK(v.outcome == DELIVER_RETRY, "400 on attempt 2 → retry");
    v = classify(http(401, NULL, NULL), 3);
    CHECK(v.outcome == DELIVER_DEAD && strstr(v.error, "401"),
          "401 on attempt 3 → dead (%s)", v.error);
    v = classify(http(403, NULL, NULL), 5);
    CHECK(v.outcome == DELIVER_DEAD, "403 on attempt 5 → dead");

    v = classify(http(429, NULL, "7"), 1);
    CHECK(v.outcome == DELIVER_RETRY && v.has_retry_after && v.retry_after_s == 7 &&
              v.merchant_failure,
          "429 Retry-After: 7 → retry in 7 s (%s)", v.error);
    v = classify(http(503, NULL, "Tue, 14 Nov 2023 22:15:00 GMT"), 4);
    CHECK(v.outcome == DELIVER_RETRY && v.has_retry_after && v.retry_after_s == 100,
          "503 with an HTTP-date 100 s ahead → retry in 100 s (got %u)", v.retry_after_s);
    v = classify(http(429, NULL, "soon"), 1);
    CHECK(v.outcome == DELIVER_RETRY && !v.has_retry_after,
          "429 with an unusable Retry-After → retry on the schedule");
    v = classify(http(429, NULL, "99999999"), 1);
    CHECK(v.has_retry_after && v.retry_after_s == 86400, "Retry-After capped at 24 h");
    v = classify(http(429, NULL, "60"), MAX);
    CHECK(v.outcome == DELIVER_DEAD, "429 on the last attempt → dead (the attempt counts)");
    v = classify(http(429, NULL, "60"), 3);
    CHECK(v.outcome == DELIVER_RETRY, "429 on attempt 3 is not a plain 4xx: retry");

    static const int retry_statuses[] = { 500, 502, 503, 504, 599, 301, 302, 307, 308, 100 };
    for (size_t i = 0; i < sizeof(retry_statuses) / sizeof(*retry_statuses); i++) {
        v = classify(http(retry_statuses[i], "x", NULL), 2);
        CHECK(v.outcome == DELIVER_RETRY && v.merchant_failure,
              "HTTP %d → retry, merchant failure (%s)", retry_statuses[i], v.error);
        v = classify(http(retry_statuses[i], "x", NULL), MAX);
        CHECK(v.outcome == DELIVER_DEAD && strstr(v.error, "last attempt"),
              "HTTP %d on the last attempt → dead (%s)", retry_statuses[i], v.error);
    }
    v = classify(http(302, NULL, NULL), 1);
    CHECK(strstr(v.error, "redirect") != NULL, "3xx says redirects are not followed (%s)",
          v.error);

    static const struct {
        NetError e;
        const char *word;
        bool failure;
    } nets[] = {
        { NET_E_DNS, "DNS", true },         { NET_E_CONNECT, "connection", true },
        { NET_E_TLS, "TLS", true },         { NET_E_TIMEOUT, "timeout", true },
        { NET_E_TOO_LARGE, "large", true }, { NET_E_PROTOCOL, "malformed", true },
        { NET_E_BLOCKED, "blocked", false }, { NET_E_URL, "URL", false },
    };
    for (size_t i = 0; i < sizeof(nets) / sizeof(*nets); i++) {
        v = classify(neterr(nets[i].e, "detail\ttext"), 1);
        CHECK(v.outcome == DELIVER_RETRY && v.merchant_failure == nets[i].failure &&
                  strstr(v.error, nets[i].word) && strstr(v.error, "detailtext"),
              "network error %d → retry, breaker %d, error names it (%s)", (int)nets[i].e,
              nets[i].failure, v.error);
        v = classify(neterr(nets[i].e, ""), MAX);
        CHECK(v.outcome == DELIVER_DEAD, "network error %d on the last attempt → dead",
              (int)nets[i].e);
    }
}

static void test_retry_after(void)
{
    unsigned s = 12345;
    CHECK(deliver_parse_retry_after("120", 0, &s) == 0 && s == 120, "delay-seconds");
    CHECK(deliver_parse_retry_after(" 5 ", 0, &s) == 0 && s == 5, "blanks around it");
    CHECK(deliver_parse_retry_after("0", 0, &s) == 0 && s == 1, "0 → at least 1 s");
    CHECK(deliver_parse_retry_after("86401", 0, &s) == 0 && s == 86400, "capped at 24 h");
    CHECK(deliver_parse_retry_after("184467440737095516160", 0, &s) == 0 && s == 86400,
          "a huge number does not overflow");
    CHECK(deliver_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111717, &s) == 0 &&
              s == 60,
          "IMF-fixdate 60 s ahead (got %u)", s);
    CHECK(deliver_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 10, &s) == 0 &&
              s == 1,
          "a date in the past → 1 s");
    CHECK(deliver_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 0, &s) == 0 && s == 86400,
          "a date far ahead → 24 h");
    s = 777;
    static const char *const bad[] = {
        "", " ", "-5", "5s", "1.5", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 UTC", "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK(deliver_parse_retry_after(bad[i], 0, &s) == -EINVAL && s == 777,
              "'%s' refused, output untouched", bad[i]);
    CHECK(deliver_parse_retry_after(NULL, 0, &s) == -EINVAL, "NULL refused");
}

static void test_jitter(void)
{
    CHECK(deliver_jitter_ms(5, 10, 0) == 4500, "lowest: 5 s - 10 %%");
    CHECK(deliver_jitter_ms(5, 10, 1000) == 5500, "highest: 5 s + 10 %%");
    CHECK(deliver_jitter_ms(5, 0, 123456) == 5000, "no jitter: exact");
    uint64_t lo = UINT64_MAX, hi = 0, x = 88172645463325252ull;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t d = deliver_jitter_ms(36000, 10, x);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CHECK(lo >= 32400000 && hi <= 39600000 && hi - lo > 7000000,
          "10 h ± 10 %% stays in range and uses it (%llu .. %llu)", (unsigned long long)lo,
          (unsigned long long)hi);
}

static void test_excerpt(void)
{
    char out[DELIVER_EXCERPT_MAX + 1];
    size_t n = deliver_excerpt("{\"status\":\"ok\"}\r\n", 17, out);
    CHECK(n == 15 && strcmp(out, "{\"status\":\"ok\"}") == 0, "CR LF stripped (%s)", out);
    n = deliver_excerpt("a\0b\x1b[31mc\x7f\xc2\x85" "d", 13, out);
    CHECK(n == 8 && strcmp(out, "ab[31mcd") == 0, "NUL, ESC, DEL and C1 stripped (%s)", out);
    n = deliver_excerpt("\xff\xfe" "ok\xc3", 5, out);
    CHECK(n == 2 && strcmp(out, "ok") == 0, "invalid and truncated UTF-8 dropped");
    char big[1000];
    memset(big, 'x', sizeof(big));
    n = deliver_excerpt(big, sizeof(big), out);
    CHECK(n == DELIVER_EXCERPT_MAX && strlen(out) == DELIVER_EXCERPT_MAX, "256 bytes at most");
    /* 255 x then a 3-byte character: it does not fit and is not cut in half */
    memset(big, 'x', 255);
    memcpy(big + 255, "\xe2\x82\xac", 3);
    n = deliver_excerpt(big, 258, out);
    CHECK(n == 255, "a character is never cut (got %zu)", n);
    n = deliver_excerpt("caf\xc3\xa9 \xe2\x98\x95", 9, out);
    CHECK(n == 9 && strcmp(out, "caf\xc3\xa9 \xe2\x98\x95") == 0, "UTF-8 kept");
    n = deliver_excerpt(NULL, 0, out);
    CHECK(n == 0 && out[0] == '\0', "empty");
}

int main(void)
{
    CHECK(strcmp(deliver_outcome_name(DELIVER_DELIVERED), "delivered") == 0 &&
              strcmp(deliver_outcome_name(DELIVER_REJECTED), "rejected") == 0 &&
              strcmp(deliver_outcome_name(DELIVER_DEAD), "dead") == 0 &&
              strcmp(deliver_outcome_name(DELIVER_RETRY), "retry") == 0,
          "outcome names are the values oc_delivery_finish takes");
    test_classify();
    test_retry_after();
    test_jitter();
    test_excerpt();
    return tl_done();
}
