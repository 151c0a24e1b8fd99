/* The public HTTP(S) listener (design.md, "http/"): N event-loop threads, each with its own
 * event_base, evhttp and database pool, sharing one listening socket. Routes requests to
 * settle/, enforces the size, connection and time limits, authenticates X-OC-* headers
 * (auth/), signs every response it writes and logs one JSON line per request.
 *
 * Limits and what answers them:
 *   body > body_limit (and ≤ 4 × body_limit)  → our signed 413 PAYLOAD_TOO_LARGE
 *   body > 4 × body_limit                      → libevent's own bare 413 (unsigned HTML), sent
 *                                                before any handler runs; the connection closes
 *   headers > header_limit                     → libevent's own bare 4xx, connection closed
 *   a method other than GET or POST            → libevent's own bare 501
 *   connections > max_connections (process)    → the new connection is closed unanswered
 *   idle or stalled connection                 → closed after idle_timeout_s
 *   a request not complete within idle_timeout_s of the connection's start or its previous
 *   answer (slow loris: libevent's own timeout restarts with every byte) → closed unanswered,
 *                                                checked once a second
 *   an authenticated caller over its budget    → our signed 429 RATE_LIMITED + Retry-After
 *                                                (rate_limit, rate_limit_burst; per instance)
 * Everything else ocgate answers itself, signed (X-OC-ID, X-OC-Timestamp, X-OC-Signature),
 * as application/json (/metrics: Prometheus text), with an X-Request-Id.
 *
 * GET /metrics, /healthz and /readyz (at the root, unauthenticated) are served to loopback
 * peers only; any other peer gets 404 NOT_FOUND, as for an unknown path. /readyz is 200 when
 * every loop's pool has a prepared connection and every loop's listener is bound, else 503
 * {"status":"unavailable","reason":...}. Every answer is counted in obs/metrics.h. */
#pragma once

#include <event2/event.h>
#include <stddef.h>

#include "conf/conf.h"
#include "directory/directory.h"
#include "proto/keys.h"
#include "store/pool.h"
#include "util/macro.h"

typedef struct HttpServer HttpServer;

typedef struct HttpServerOptions {
    const Config *cfg;              /* borrowed; must outlive the server */
    const PrivateKey *gateway_key;  /* copied (one copy per loop, wiped on free); signs
                                       responses, metadata, gateway proofs, deliveries */
    Directory *directory;           /* borrowed; must outlive the server (free it after) */
    const char *db_password;        /* NULL = none; copied, and the copy wiped on free */
} HttpServerOptions;

/* Binds the listening socket (cfg->listen: "host:port" or "[v6]:port"; a host name is
 * resolved here, blocking, and its first address used; port 0 = chosen by the kernel), loads
 * the TLS certificate and key when configured (refusing a key file readable by group or
 * others), and builds every loop with its evhttp and database pool. When cfg->worker, also
 * creates the merchant delivery worker on a loop of its own (deliver.h; one more thread and
 * pool, no listener), which every request loop wakes after a settlement that enqueued a
 * notification; it stops (claims nothing new) as soon as draining starts. No thread runs
 * yet. Calls evthread_use_pthreads(). Returns 0 and *out, or a negative errno with a
 * one-line message in err. */
OC_MUST_CHECK int http_server_new(const HttpServerOptions *options, HttpServer **out,
                                  char *err, size_t err_len);

/* Request loop i's event_base and pool (i < cfg->threads), for work that must run on a loop,
 * such as directory_watch on loop 0. Register such work before http_server_run; stop it
 * (directory_unwatch) after http_server_run returns and before http_server_free. */
struct event_base *http_server_loop_base(HttpServer *srv, unsigned i);
DbPool *http_server_loop_pool(HttpServer *srv, unsigned i);

/* The bound address as "127.0.0.1:8080" or "[::1]:8080" (the real port when 0 was asked). */
void http_server_address(const HttpServer *srv, char *out, size_t out_len);

/* Starts the loops (and settle's housekeeping on loop 0) and serves until SIGTERM or SIGINT.
 * SIGHUP re-reads cfg->private_key_file: every answer, metadata document, gateway proof and
 * delivery attempt signed after that uses the new key (docs/key-rotation.md); a file that
 * cannot be loaded is logged and changes nothing.
 * Then: stops accepting (every loop drops its listener, the socket is closed), lets the
 * requests in flight finish for at most 10 s (answers sent meanwhile carry
 * "Connection: close"), closes every connection, stops the loops and joins them. Returns 0,
 * or a negative errno if the loops could not be started. Call once. */
OC_MUST_CHECK int http_server_run(HttpServer *srv);

/* Frees the pools (failing what they still hold), the loops and the socket. Accepts NULL.
 * Call after http_server_run returned (or instead of it), then free the directory. */
void http_server_free(HttpServer *srv);
