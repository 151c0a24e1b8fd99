/* libFuzzer target: a merchant's answer to a notification, from bytes to the worker's
 * decision, as the delivery worker sees it: the response parser (net/response.h), then
 * deliver_classify, deliver_parse_retry_after and deliver_excerpt (deliver/policy.h). The
 * first two input bytes pick the attempt number and the schedule length. Checks: only a
 * parsed 2xx can be delivered or rejected, a failure on the last attempt is dead, a usable
 * Retry-After only comes with 429/503 and lies in 1 s .. 24 h, and every stored text (error,
 * excerpt) is bounded, valid UTF-8 and free of control characters. */
#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/policy.h"
#include "net/response.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1767225600 /* 2026-01-01T00:00:00Z: fixed, so a failing input replays exactly */

static void fail(const char *what)
{
    fprintf(stderr, "fuzz-deliver-answer: %s\n", what);
    abort();
}

/* Stored text: valid UTF-8, no C0, DEL or C1 control characters. */
static void check_text(const char *s, size_t len, const char *what)
{
    size_t bad;
    if (!utf8_validate(s, len, &bad))
        fail(what);
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t k = utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (k == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
            fail(what);
        i += k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int max_attempts = 1 + data[0] % 33; /* a schedule of 0..32 delays */
    int attempt = 1 + data[1] % 40;
    data += 2;
    size -= 2;

    HttpRespParser p;
    http_resp_init(&p, 64 * 1024);
    struct evbuffer *in = evbuffer_new();
    if (!in || evbuffer_add(in, data, size) < 0)
        abort();
    int r = http_resp_feed(&p, in, false);
    if (r == 0)
        r = http_resp_feed(&p, in, true);
    evbuffer_free(in);

    /* What client.c hands the worker. */
    HttpClientResponse resp;
    memset(&resp, 0, sizeof(resp));
    resp.error = r == 1 ? NET_OK : p.error;
    if (r == 1) {
        resp.status = p.status;
        resp.body = p.body.len ? p.body.data : NULL;
        resp.body_len = p.body.len;
        resp.retry_after = p.retry_after;
    } else {
        memcpy(resp.error_text, p.error_text, sizeof(resp.error_text));
    }

    DeliverVerdict v;
    deliver_classify(&resp, attempt, max_attempts, NOW, &v);
    size_t elen = strnlen(v.error, sizeof(v.error));
    if (elen == sizeof(v.error))
        fail("verdict error not NUL-terminated");
    check_text(v.error, elen, "verdict error is not clean UTF-8 text");

    bool ok2xx = r == 1 && p.status >= 200 && p.status <= 299;
    if ((v.outcome == DELIVER_DELIVERED || v.outcome == DELIVER_REJECTED) && !ok2xx)
        fail("delivered or rejected without a parsed 2xx");
    if (v.outcome == DELIVER_DELIVERED && (elen || v.merchant_failure))
        fail("delivered with an error or counted as a merchant failure");
    if (attempt >= max_attempts && v.outcome == DELIVER_RETRY)
        fail("retry after the last attempt of the schedule");
    if (r != 1 && v.outcome != DELIVER_RETRY && v.outcome != DELIVER_DEAD)
        fail("a broken answer ended other than retry or dead");
    if (r != 1 && !v.merchant_failure)
        fail("a broken answer not counted against the merchant");
    if (v.has_retry_after) {
        if (r != 1 || (p.status != 429 && p.status != 503))
            fail("Retry-After honoured without a 429 or 503");
        if (v.retry_after_s < 1 || v.retry_after_s > DELIVER_RETRY_AFTER_MAX_S)
            fail("Retry-After out of 1 s .. 24 h");
    }
    if (p.retry_after) {
        unsigned s = 0;
        for (int64_t now = NOW - 86400 * 2; now <= NOW + 86400 * 2; now += 86400) {
            if (deliver_parse_retry_after(p.retry_after, now, &s) == 0 &&
                (s < 1 || s > DELIVER_RETRY_AFTER_MAX_S))
                fail("parsed Retry-After out of 1 s .. 24 h");
        }
    }

    char ex[DELIVER_EXCERPT_MAX + 1];
    size_t n = deliver_excerpt(resp.body, resp.body_len, ex);
    if (n > DELIVER_EXCERPT_MAX || ex[n] != '\0' || strlen(ex) != n)
        fail("excerpt over its bound or not terminated");
    check_text(ex, n, "excerpt is not clean UTF-8 text");
    /* The raw bytes themselves, as a body a broken parser might have passed on. */
    n = deliver_excerpt((const char *)data, size, ex);
    if (n > DELIVER_EXCERPT_MAX || ex[n] != '\0')
        fail("raw excerpt over its bound or not terminated");
    check_text(ex, n, "raw excerpt is not clean UTF-8 text");

    http_resp_deinit(&p);
    return 0;
}
