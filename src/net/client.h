/* Outbound HTTP(S) client on a libevent loop, for merchant notifications (design.md,
 * "outbound safety", "outbound retries"). Nothing blocks the loop: names are resolved with
 * evdns, connections made with bufferevents, TLS through libevent_openssl with certificate
 * and host-name verification on. Every resolved address is checked against the SSRF guard
 * before connecting, and the connection goes to that checked address (with the original
 * host name for SNI, verification and the Host header), so DNS cannot be used to slip past
 * the check. Redirects are never followed: a 3xx is just a status. */
#pragma once

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

typedef struct HttpClient HttpClient;
struct evdns_base;
struct sockaddr;

typedef struct HttpClientOptions {
    const char *ca_file;          /* PEM bundle; NULL = the system's default paths */
    unsigned connect_timeout_ms;  /* DNS + TCP + TLS handshake */
    unsigned total_timeout_ms;    /* whole exchange, from the call to the last byte */
    size_t max_response;          /* body bytes kept; a longer body fails NET_E_TOO_LARGE */
    bool allow_loopback;          /* 127.0.0.0/8, ::1 (tests) */
    bool allow_private;           /* RFC 1918, ULA fc00::/7, CGNAT 100.64/10, link-local */
} HttpClientOptions;
/* Zero means the default: connect 10 s, total 30 s, max_response 1 MiB. Timeouts are capped
 * at 10 min and max_response at 64 MiB. 0.0.0.0/8, multicast, 240/4 (with broadcast), ::,
 * ff00::/8 and the deprecated IPv4-compatible ::a.b.c.d are refused whatever the flags;
 * IPv4-mapped, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are judged by the IPv4
 * address they carry. */

typedef enum NetError {
    NET_OK = 0,
    NET_E_URL,          /* not an http(s) URL we can use */
    NET_E_DNS,          /* the name did not resolve */
    NET_E_BLOCKED,      /* every address was refused by the SSRF guard */
    NET_E_CONNECT,      /* TCP connection refused or reset */
    NET_E_TLS,          /* handshake or certificate/host-name verification failed */
    NET_E_TIMEOUT,      /* connect or total timeout */
    NET_E_TOO_LARGE,    /* response body over max_response */
    NET_E_PROTOCOL,     /* malformed HTTP response */
    NET_E_CANCELLED,    /* http_client_free with the request still running */
} NetError;

typedef struct HttpClientResponse {
    NetError error;
    int status;                   /* HTTP status, 0 when error != NET_OK */
    const char *body;             /* not NUL-terminated; NULL when empty */
    size_t body_len;
    const char *retry_after;      /* Retry-After header value or NULL */
    unsigned duration_ms;
    char error_text[160];         /* human-readable detail, never a secret; "" on success */
} HttpClientResponse;

/* resp and everything it points to are valid only during the call. Called exactly once per
 * accepted request, on the loop, never from inside http_client_post. */
typedef void (*HttpClientDone)(void *userdata, const HttpClientResponse *resp);

/* Creates a client for base (one per loop; needs its own evdns base, made here). NULL on
 * failure (bad CA file: message logged). */
OC_MUST_CHECK HttpClient *http_client_new(struct event_base *base,
                                          const HttpClientOptions *options);

/* POSTs body to url with the given extra headers (NULL-terminated array of name, value
 * pairs; Host, Content-Length and Content-Type: application/json are set here). Returns 0
 * (done will be called) or -EINVAL for a URL that cannot be used, -ENOMEM.
 * URLs: http or https, a DNS name, dotted-quad IPv4 or [IPv6] literal, optional port, no
 * userinfo, at most 2048 bytes, path and query in visible ASCII (the fragment is dropped).
 * -EINVAL also for extra headers that cannot be sent safely (a name that is not a token,
 * controls or CR/LF in a value, one of the framing headers set here, more than 64 pairs or
 * 16 KiB), a body over 16 MiB, or a client inside http_client_free; -EAGAIN when 4096
 * requests are already running on this client. The body and headers are copied. */
OC_MUST_CHECK int http_client_post(HttpClient *client, const char *url,
                                   const char *const *headers, const char *body, size_t len,
                                   HttpClientDone done, void *userdata);

/* True when addr (sockaddr_in / sockaddr_in6) may be connected to under the options. */
bool net_address_allowed(const struct sockaddr *addr, const HttpClientOptions *options);

/* Cancels every running request (their callbacks run with NET_E_CANCELLED before this
 * returns) and frees the client. Accepts NULL.
 * A request whose result was already fixed but not yet delivered gets that result instead.
 * If DNS lookups were in flight, the resolver itself is released on a later pass of the loop
 * (libevent 2.1 still touches it from deferred callbacks), so run the loop once more before
 * event_base_free or that memory is not returned. */
void http_client_free(HttpClient *client);

/* The client's own resolver, for tests that point it at a name server of their own. */
struct evdns_base *http_client_dns_base(HttpClient *client);
