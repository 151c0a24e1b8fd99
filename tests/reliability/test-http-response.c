/* Regression tests for the outbound client's response parser (net/response.h) found by
 * fuzz/fuzz-http-response: the result must not depend on how TCP cuts the bytes into reads.
 * Every case is parsed whole and then cut at every possible position (two reads), and for
 * short inputs one byte per read. TAP. */
#undef NDEBUG
#include <assert.h>
#include <event2/buffer.h>
#include <string.h>

#include "net/response.h"
#include "../unit/testlib.h"

typedef struct Outcome {
    int result;
    int status;
    NetError error;
    char body[256];
    size_t body_len;
} Outcome;

/* Feeds s in reads cut at the positions of cuts (ascending, ncuts of them), then EOF. */
static Outcome parse(const char *s, size_t n, const size_t *cuts, size_t ncuts, size_t max)
{
    Outcome o;
    memset(&o, 0, sizeof(o));
    HttpRespParser p;
    http_resp_init(&p, max);
    struct evbuffer *in = evbuffer_new();
    assert(in);
    size_t off = 0;
    int r = 0;
    for (size_t i = 0; i <= ncuts && r == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        assert(evbuffer_add(in, s + off, end - off) == 0);
        off = end;
        r = http_resp_feed(&p, in, false);
    }
    if (r == 0)
        r = http_resp_feed(&p, in, true);
    o.result = r;
    o.status = p.status;
    o.error = p.error;
    if (r == 1 && p.body.len < sizeof(o.body)) {
        memcpy(o.body, p.body.data ? p.body.data : "", p.body.len);
        o.body_len = p.body.len;
    }
    evbuffer_free(in);
    http_resp_deinit(&p);
    return o;
}

static bool same(const Outcome *a, const Outcome *b)
{
    return a->result == b->result && a->error == b->error &&
           (a->result != 1 || (a->status == b->status && a->body_len == b->body_len &&
                               memcmp(a->body, b->body, a->body_len) == 0));
}

/* Parses s whole, expects want_result (and want_body when whole), then checks every cut. */
static void check_cuts(const char *name, const char *s, int want_result, const char *want_body)
{
    size_t n = strlen(s);
    Outcome whole = parse(s, n, NULL, 0, 1u << 20);
    CHECK_INT(whole.result, want_result, "%s: parsed whole", name);
    if (want_body)
        CHECK_BYTES(whole.body, whole.body_len, want_body, strlen(want_body), "%s: body", name);
    size_t bad_at = 0;
    bool all = true;
    for (size_t c = 1; c < n; c++) {
        Outcome cut = parse(s, n, &c, 1, 1u << 20);
        if (!same(&cut, &whole)) {
            all = false;
            bad_at = c;
            break;
        }
    }
    CHECK(all, "%s: same outcome when cut into two reads at any position (first bad: %zu)",
          name, bad_at);
    size_t cuts[512];
    if (n <= OC_ARRAY_LEN(cuts)) {
        for (size_t i = 0; i + 1 < n; i++)
            cuts[i] = i + 1;
        Outcome bytewise = parse(s, n, cuts, n - 1, 1u << 20);
        CHECK(same(&bytewise, &whole), "%s: same outcome one byte per read", name);
    }
}

int main(void)
{
    /* Found by fuzz-http-response: the CRLF after chunk data cut after its CR was refused
     * as malformed chunk framing, so a merchant's accepted answer could count as failed. */
    check_cuts("chunked, CRLF after chunk data",
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "15\r\n{\"status\":\"accepted\"}\r\n0\r\n\r\n",
               1, "{\"status\":\"accepted\"}");
    check_cuts("chunked, two chunks with extensions and a trailer",
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5;a=b\r\n{\"sta\r\n10\r\ntus\":\"accepted\"}\r\n0\r\nX-T: 1\r\n\r\n",
               1, "{\"status\":\"accepted\"}");
    check_cuts("chunked, bare LF line ends", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"
               "2\nok\n0\n\n", 1, "ok");
    /* The other side of the fix: data where the CRLF must be is still refused. */
    check_cuts("chunked, data past the chunk size",
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n",
               -1, NULL);
    check_cuts("chunked, CR then a byte that is not LF",
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\rX\n0\r\n\r\n",
               -1, NULL);
    check_cuts("Content-Length", "HTTP/1.1 503 Busy\r\nRetry-After: 5\r\nContent-Length: 4\r\n\r\nbusy",
               1, "busy");
    check_cuts("body up to EOF", "HTTP/1.0 200 OK\r\n\r\n{\"status\":\"accepted\"}", 1,
               "{\"status\":\"accepted\"}");
    check_cuts("truncated Content-Length body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
               -1, NULL);
    return tl_done();
}
