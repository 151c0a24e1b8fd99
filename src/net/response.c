/* HTTP/1.x response parser of the outbound client (response.h). Moved out of client.c so it
 * can be fuzzed without a socket; client.c feeds it from the bufferevent's input buffer.
 * Every failure fixes one NetError and a text that names no secret (response bytes are
 * never echoed). */
#include "net/response.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/ascii.h"

#define NET_MAX_HEAD_BYTES 16384        /* status line + headers (and, separately, trailers) */
#define NET_MAX_RESP_HEADERS 128
#define NET_MAX_INTERIM 4               /* 1xx responses skipped before the final one */
#define NET_MAX_CHUNK_LINE 1024

void http_resp_init(HttpRespParser *p, size_t max_response)
{
    memset(p, 0, sizeof(*p));
    p->ps = HRS_STATUS;
    p->max_response = max_response;
    p->body.limit = max_response;
}

void http_resp_deinit(HttpRespParser *p)
{
    buf_deinit(&p->body);
    oc_free(p->retry_after);
    p->retry_after = NULL;
}

static void fail(HttpRespParser *p, NetError err, const char *fmt, ...) OC_PRINTF(3, 4);

static void fail(HttpRespParser *p, NetError err, const char *fmt, ...)
{
    p->ps = HRS_FAILED;
    p->error = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error_text, sizeof(p->error_text), fmt, ap);
    va_end(ap);
}

/* The next LF- or CRLF-terminated line of in: 1 with *line (contiguous, without the EOL),
 * *len and *used (with the EOL); 0 when no line is complete yet; -1 when the line is longer
 * than max; -2 when out of memory. */
static int next_line(struct evbuffer *in, size_t max, const char **line, size_t *len,
                     size_t *used)
{
    size_t eol_len = 0;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (eol.pos < 0)
        return evbuffer_get_length(in) > max ? -1 : 0;
    if ((size_t)eol.pos > max)
        return -1;
    unsigned char *data = evbuffer_pullup(in, (ev_ssize_t)((size_t)eol.pos + eol_len));
    if (!data)
        return -2;
    *line = (const char *)data;
    *len = (size_t)eol.pos;
    *used = (size_t)eol.pos + eol_len;
    return 1;
}

static bool parse_status_line(const char *s, size_t n, int *status, bool *http11)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return false;
    if (!ascii_is_digit((unsigned char)s[9]) || !ascii_is_digit((unsigned char)s[10]) ||
        !ascii_is_digit((unsigned char)s[11]))
        return false;
    int st = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (st < 100 || st > 599 || (n > 12 && s[12] != ' '))
        return false;
    for (size_t i = 13; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    *status = st;
    *http11 = s[7] == '1';
    return true;
}

/* Whether a Connection header value lists the token "close" (RFC 9110, 7.6.1). */
static bool lists_close(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (i - start == 5 && strncasecmp(v + start, "close", 5) == 0)
            return true;
    }
    return false;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* One header (or trailer) line. Returns 0, or -1 after failing the parser. Only the framing
 * headers and Retry-After matter to us. */
static int handle_header(HttpRespParser *p, const char *s, size_t n, bool trailer)
{
    if (s[0] == ' ' || s[0] == '\t') {
        fail(p, NET_E_PROTOCOL, "obsolete header line folding in response");
        return -1;
    }
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s) {
        fail(p, NET_E_PROTOCOL, "malformed response header line");
        return -1;
    }
    size_t nl = (size_t)(colon - s);
    for (size_t i = 0; i < nl; i++) {
        if (!ascii_is_tchar((unsigned char)s[i])) {
            fail(p, NET_E_PROTOCOL, "malformed response header name");
            return -1;
        }
    }
    const char *v = colon + 1, *v_end = s + n;
    while (v < v_end && (*v == ' ' || *v == '\t'))
        v++;
    while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t'))
        v_end--;
    size_t vl = (size_t)(v_end - v);
    for (size_t i = 0; i < vl; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            fail(p, NET_E_PROTOCOL, "control character in a response header");
            return -1;
        }
    }
    if (trailer)
        return 0;

    if (name_is(s, nl, "content-length")) {
        uint64_t len = 0;
        if (vl == 0 || vl > 18) {
            fail(p, NET_E_PROTOCOL, "bad Content-Length in response");
            return -1;
        }
        for (size_t i = 0; i < vl; i++) {
            if (!ascii_is_digit((unsigned char)v[i])) {
                fail(p, NET_E_PROTOCOL, "bad Content-Length in response");
                return -1;
            }
            len = len * 10 + (uint64_t)(v[i] - '0');
        }
        /* Two different lengths is the classic response-splitting signal. */
        if (p->has_length && p->length != len) {
            fail(p, NET_E_PROTOCOL, "conflicting Content-Length in response");
            return -1;
        }
        p->has_length = true;
        p->length = len;
    } else if (name_is(s, nl, "transfer-encoding")) {
        /* We send no TE header and accept no content codings, so "chunked" alone is the
         * only transfer coding a correct server may use. */
        if (p->chunked || vl != 7 || strncasecmp(v, "chunked", 7) != 0) {
            fail(p, NET_E_PROTOCOL, "unsupported Transfer-Encoding in response");
            return -1;
        }
        p->chunked = true;
    } else if (name_is(s, nl, "connection")) {
        if (lists_close(v, vl))
            p->conn_close = true;
    } else if (name_is(s, nl, "retry-after") && !p->retry_after) {
        p->retry_after = oc_strndup(v, vl);
        if (!p->retry_after) {
            fail(p, NET_E_PROTOCOL, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* After the blank line that ends a header section: decides how the body is framed. */
static int headers_done(HttpRespParser *p)
{
    size_t max = p->max_response;
    if (p->status < 200) {
        /* Interim responses (100 Continue, 103 Early Hints) precede the real one. */
        if (p->status == 101 || ++p->interim > NET_MAX_INTERIM) {
            fail(p, NET_E_PROTOCOL, "unexpected interim response %d", p->status);
            return -1;
        }
        p->has_length = p->chunked = p->conn_close = false;
        p->header_count = 0;
        oc_free(p->retry_after);
        p->retry_after = NULL;
        p->ps = HRS_STATUS;
    } else if (p->status == 204 || p->status == 304) {
        p->ps = HRS_DONE;
    } else if (p->chunked) {
        p->ps = HRS_CHUNK_SIZE;
    } else if (p->has_length) {
        if (p->length > max) {
            fail(p, NET_E_TOO_LARGE, "response body of %llu bytes is over %zu",
                 (unsigned long long)p->length, max);
            return -1;
        }
        p->remaining = p->length;
        p->ps = p->length ? HRS_BODY_LENGTH : HRS_DONE;
    } else {
        p->ps = HRS_BODY_EOF; /* delimited by the server closing the connection */
        p->eof_framed = true;
    }
    return 0;
}

/* Moves n bytes of body from in (which holds at least n) into p->body. */
static int body_take(HttpRespParser *p, struct evbuffer *in, size_t n)
{
    while (n) {
        struct evbuffer_iovec v[4];
        int k = evbuffer_peek(in, (ev_ssize_t)n, NULL, v, 4);
        size_t moved = 0;
        for (int i = 0; i < k && moved < n; i++) {
            size_t take = v[i].iov_len < n - moved ? v[i].iov_len : n - moved;
            buf_put(&p->body, v[i].iov_base, take);
            moved += take;
        }
        if (p->body.error) {
            if (p->body.error == -E2BIG)
                fail(p, NET_E_TOO_LARGE, "response body over %zu bytes", p->max_response);
            else
                fail(p, NET_E_PROTOCOL, "out of memory");
            return -1;
        }
        evbuffer_drain(in, moved);
        n -= moved;
    }
    return 0;
}

static int parse_chunk_size(HttpRespParser *p, const char *s, size_t n, uint64_t *size)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < n && ascii_is_hex((unsigned char)s[i])) {
        if (i >= 15)
            goto bad; /* 2^60 is far past any limit; stops overflow */
        unsigned char c = (unsigned char)s[i];
        v = v * 16 + (uint64_t)(ascii_is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
        i++;
    }
    if (i == 0)
        goto bad;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < n && s[i] != ';')
        goto bad;
    for (; i < n; i++) { /* chunk extensions: ignored, but no controls */
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            goto bad;
    }
    *size = v;
    return 0;
bad:
    fail(p, NET_E_PROTOCOL, "malformed chunk size in response");
    return -1;
}

int http_resp_feed(HttpRespParser *p, struct evbuffer *in, bool eof)
{
    if (p->ps == HRS_DONE)
        return 1;
    if (p->ps == HRS_FAILED)
        return -1;
    if (evbuffer_get_length(in))
        p->got_bytes = true;
    for (;;) {
        const char *line;
        size_t n, used;
        int r;
        switch (p->ps) {
        case HRS_STATUS:
        case HRS_HEADERS:
        case HRS_TRAILERS:
            r = next_line(in, NET_MAX_HEAD_BYTES - p->head_bytes, &line, &n, &used);
            if (r == 0)
                goto need_more;
            if (r == -2) {
                fail(p, NET_E_PROTOCOL, "out of memory");
                return -1;
            }
            if (r < 0 || used > NET_MAX_HEAD_BYTES - p->head_bytes) {
                fail(p, NET_E_PROTOCOL, "response %s over %d bytes",
                     p->ps == HRS_TRAILERS ? "trailers" : "headers", NET_MAX_HEAD_BYTES);
                return -1;
            }
            p->head_bytes += used;
            if (p->ps == HRS_STATUS) {
                if (!parse_status_line(line, n, &p->status, &p->http11)) {
                    fail(p, NET_E_PROTOCOL, "malformed response status line");
                    return -1;
                }
                p->ps = HRS_HEADERS;
            } else if (n == 0) {
                if (p->ps == HRS_TRAILERS)
                    p->ps = HRS_DONE;
                else if (headers_done(p) < 0)
                    return -1;
            } else {
                if (++p->header_count > NET_MAX_RESP_HEADERS) {
                    fail(p, NET_E_PROTOCOL, "more than %d response headers",
                         NET_MAX_RESP_HEADERS);
                    return -1;
                }
                if (handle_header(p, line, n, p->ps == HRS_TRAILERS) < 0)
                    return -1;
            }
            evbuffer_drain(in, used);
            break;

        case HRS_BODY_LENGTH:
        case HRS_CHUNK_DATA: {
            size_t avail = evbuffer_get_length(in);
            if (avail == 0)
                goto need_more;
            size_t take = avail < p->remaining ? avail : (size_t)p->remaining;
            if (body_take(p, in, take) < 0)
                return -1;
            p->remaining -= take;
            if (p->remaining == 0)
                p->ps = p->ps == HRS_CHUNK_DATA ? HRS_CHUNK_END : HRS_DONE;
            break;
        }

        case HRS_BODY_EOF:
            if (body_take(p, in, evbuffer_get_length(in)) < 0)
                return -1;
            if (!eof)
                return 0;
            p->ps = HRS_DONE;
            break;

        case HRS_CHUNK_SIZE:
        case HRS_CHUNK_END:
            /* The CRLF after chunk data may arrive cut after its CR, so allow one byte
             * while waiting and demand the empty line once it is complete. */
            r = next_line(in, p->ps == HRS_CHUNK_END ? 1 : NET_MAX_CHUNK_LINE, &line, &n,
                          &used);
            if (r == 0)
                goto need_more;
            if (r == -2) {
                fail(p, NET_E_PROTOCOL, "out of memory");
                return -1;
            }
            if (r < 0 || (p->ps == HRS_CHUNK_END && n != 0)) {
                fail(p, NET_E_PROTOCOL, "malformed chunk framing in response");
                return -1;
            }
            if (p->ps == HRS_CHUNK_END) {
                p->ps = HRS_CHUNK_SIZE;
            } else {
                uint64_t size;
                if (parse_chunk_size(p, line, n, &size) < 0)
                    return -1;
                if (size == 0) {
                    p->head_bytes = 0; /* trailers get a budget of their own */
                    p->header_count = 0;
                    p->ps = HRS_TRAILERS;
                } else if (size > p->max_response - p->body.len) {
                    fail(p, NET_E_TOO_LARGE, "response body over %zu bytes", p->max_response);
                    return -1;
                } else {
                    p->remaining = size;
                    p->ps = HRS_CHUNK_DATA;
                }
            }
            evbuffer_drain(in, used);
            break;

        case HRS_DONE:
            return 1;

        case HRS_FAILED:
            return -1;
        }
    }

need_more:
    if (eof) {
        fail(p, NET_E_PROTOCOL, "%s",
             p->got_bytes ? "connection closed before the response was complete"
                          : "connection closed without a response");
        return -1;
    }
    return 0;
}

bool http_resp_keep_alive(const HttpRespParser *p)
{
    return p->ps == HRS_DONE && p->http11 && !p->conn_close && !p->eof_framed;
}
