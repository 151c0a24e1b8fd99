/* libFuzzer target: the outbound client's HTTP response parser (net/response.h), which reads
 * bytes from merchants we do not control. The first input byte picks how the rest is cut
 * into reads (as TCP may cut it), the second the body limit. Checks, beyond the sanitizers:
 * the outcome (result, status, body, Retry-After, error code) is the same whether the bytes
 * arrive in one read or cut up, a whole response is a final one (status 200..599) with a body
 * within the limit and framed as announced, and a broken one has an error code and text. */
#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what)
{
    fprintf(stderr, "fuzz-http-response: %s\n", what);
    abort();
}

/* Feeds data in reads of `step` bytes (0 = all at once), then EOF; returns the result. */
static int run(HttpRespParser *p, const uint8_t *data, size_t size, size_t step)
{
    struct evbuffer *in = evbuffer_new();
    if (!in)
        abort();
    int r = 0;
    size_t off = 0;
    while (r == 0 && off < size) {
        size_t n = step && step < size - off ? step : size - off;
        if (evbuffer_add(in, data + off, n) < 0)
            abort();
        off += n;
        r = http_resp_feed(p, in, false);
    }
    if (r == 0)
        r = http_resp_feed(p, in, true);
    /* A finished parser stays finished and consumes nothing. */
    size_t left = evbuffer_get_length(in);
    if (http_resp_feed(p, in, true) != r || evbuffer_get_length(in) != left)
        fail("result changed after the parser finished");
    evbuffer_free(in);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t step = data[0] % 17;                         /* 0: one read; else 1..16 bytes */
    size_t max = data[1] < 128 ? 1 + data[1] : 1u << 20; /* small limits reach TOO_LARGE */
    data += 2;
    size -= 2;

    HttpRespParser whole, cut;
    http_resp_init(&whole, max);
    http_resp_init(&cut, max);
    int rw = run(&whole, data, size, 0);
    int rc = step ? run(&cut, data, size, step) : rw;

    if (rw == 1) {
        if (whole.status < 200 || whole.status > 599)
            fail("whole response with a non-final status");
        if (whole.body.len > max)
            fail("body over the limit");
        if (whole.has_length && !whole.chunked && whole.status != 204 &&
            whole.status != 304 && whole.body.len != whole.length)
            fail("body length differs from Content-Length");
        if ((whole.status == 204 || whole.status == 304) && whole.body.len)
            fail("body kept for 204/304");
        if (whole.retry_after && strpbrk(whole.retry_after, "\r\n"))
            fail("CR or LF in Retry-After");
        if (whole.error != NET_OK)
            fail("error code on a whole response");
    } else if (rw == -1) {
        if (whole.error != NET_E_PROTOCOL && whole.error != NET_E_TOO_LARGE)
            fail("unexpected error code");
        if (!whole.error_text[0])
            fail("error without a text");
    } else {
        fail("unfinished after EOF");
    }

    if (step) {
        if (rc != rw)
            fail("outcome depends on how the bytes were cut into reads");
        if (rw == 1) {
            if (cut.status != whole.status || cut.body.len != whole.body.len ||
                (cut.body.len && memcmp(cut.body.data, whole.body.data, cut.body.len) != 0))
                fail("status or body depends on how the bytes were cut");
            if ((cut.retry_after == NULL) != (whole.retry_after == NULL) ||
                (cut.retry_after && strcmp(cut.retry_after, whole.retry_after) != 0))
                fail("Retry-After depends on how the bytes were cut");
        } else if (cut.error != whole.error) {
            fail("error code depends on how the bytes were cut");
        }
    }
    http_resp_deinit(&whole);
    http_resp_deinit(&cut);
    return 0;
}
