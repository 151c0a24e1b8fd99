/* A blocking client for the admin HTTP API (docs/admin-api.md), for the CLI's remote mode:
 * signs each request with the client's secret (X-OCG-Client, X-OCG-Timestamp,
 * X-OCG-Signature) and returns the status and body. Runs its own short-lived event loop; never
 * use it on a server loop. Plain http:// only: reach a remote admin listener through an SSH
 * tunnel or a TLS-terminating proxy on the operator's side. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define ADMIN_REMOTE_TIMEOUT_S 30
#define ADMIN_REMOTE_BODY_MAX (16 * 1024 * 1024)

/* Lowercase hex HMAC-SHA256(secret, METHOD "\n" target "\n" timestamp "\n" sha256hex(body))
 * into out (65 bytes). Returns 0 or -ENOMEM/-EIO. */
OC_MUST_CHECK int admin_request_mac(const uint8_t *secret, size_t secret_len, const char *method,
                                    const char *target, const char *timestamp, const char *body,
                                    size_t body_len, char out[65]);

typedef struct AdminRemoteRequest {
    const char *base_url;        /* "http://host:port" */
    const char *client;          /* client id */
    const char *secret;          /* the client's secret text (the HMAC key) */
    const char *method;          /* "GET" or "POST" */
    const char *target;          /* "/admin/v1/...?..." as sent and signed */
    const char *body;            /* NULL = none */
    const char *idempotency_key; /* NULL = none */
} AdminRemoteRequest;

/* Sends the request and waits (at most ADMIN_REMOTE_TIMEOUT_S) for the answer: 0 with *status
 * and *body (malloc'd, NUL-terminated; free it) set, or a negative errno with a one-line
 * message in err (bad URL, connection refused, timeout, body too large). */
OC_MUST_CHECK int admin_remote_call(const AdminRemoteRequest *rq, int *status, char **body,
                                    size_t *body_len, char *err, size_t err_len);
