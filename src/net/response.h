/* The outbound client's HTTP/1.x response parser (client.c), on its own so that it can be
 * fed bytes without a socket: the fuzz target (fuzz/fuzz-http-response.c) drives it exactly
 * as the client does, in arbitrary splits followed by EOF. It reads a status line, headers,
 * a body framed by Content-Length, chunked coding or the connection's end, and trailers,
 * every part bounded; only the framing headers and Retry-After are kept. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/client.h"
#include "util/buf.h"
#include "util/macro.h"

struct evbuffer;

typedef enum HttpRespState {
    HRS_STATUS,
    HRS_HEADERS,
    HRS_BODY_LENGTH,
    HRS_BODY_EOF,
    HRS_CHUNK_SIZE,
    HRS_CHUNK_DATA,
    HRS_CHUNK_END,
    HRS_TRAILERS,
    HRS_DONE,
    HRS_FAILED,
} HttpRespState;

typedef struct HttpRespParser {
    HttpRespState ps;
    int status;                   /* the final response's status once past its status line */
    bool has_length, chunked, got_bytes;
    bool http11;                  /* the final response's status line says HTTP/1.1 */
    bool conn_close;              /* its Connection header lists "close" */
    bool eof_framed;              /* its body ran to the end of the connection */
    uint64_t length, remaining;
    size_t head_bytes;
    unsigned header_count, interim;
    size_t max_response;
    Buf body;                     /* limited to max_response */
    char *retry_after;            /* NUL-terminated copy of the first Retry-After, or NULL */
    NetError error;               /* NET_OK until the parser fails */
    char error_text[sizeof(((HttpClientResponse *)0)->error_text)];
} HttpRespParser;

/* max_response: body bytes accepted (must be > 0). */
void http_resp_init(HttpRespParser *p, size_t max_response);

/* Frees the body and Retry-After copy; accepts a zeroed parser. */
void http_resp_deinit(HttpRespParser *p);

/* Consumes what it can of in (the bytes it has parsed are drained). eof: the peer closed
 * its side, nothing more will come. Returns 0 when more bytes are needed, 1 when the
 * response is whole (status, body, retry_after are then final), -1 when it is broken:
 * p->error (NET_E_PROTOCOL or NET_E_TOO_LARGE) and p->error_text say why. After 1 or -1
 * further calls return the same result and consume nothing. */
OC_MUST_CHECK int http_resp_feed(HttpRespParser *p, struct evbuffer *in, bool eof);

/* After http_resp_feed returned 1: whether the connection may carry another request — an
 * HTTP/1.1 response, framed by its length or chunks rather than by the connection's end,
 * without "Connection: close". The caller must also check that nothing followed it. */
bool http_resp_keep_alive(const HttpRespParser *p);
