/* The settlement decisions (design.md steps 1–3): payment creation, provider webhooks,
 * payment-app settle calls, verify and capabilities. The one place that decides outcomes.
 * Callers (http/) have already authenticated the request (headers, window, known enabled
 * caller, request signature); every function here records the request's nonce in the same
 * database round trip as its own work, so a replay is refused even when the request itself
 * fails later. Completion is reported through a callback with the status and body to send;
 * http/ signs and sends them. */
#pragma once

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "directory/directory.h"
#include "ocgate/errors.h"
#include "proto/keys.h"
#include "store/pool.h"
#include "util/macro.h"

/* Per event-loop context, built once per thread by the server. */
typedef struct SettleCtx {
    struct event_base *base;      /* the loop this context belongs to */
    const Config *cfg;
    const PrivateKey *gateway_key;
    DbPool *db;
    Directory *directory;
    struct event *maintenance;    /* owned; settle_start/stop_maintenance */
    /* Called on this loop after a commit that enqueued a merchant notification (a payment
     * was completed), so the instance's own delivery worker starts at once; NULL = none.
     * Must be thread-safe towards the worker (deliverer_wake is). */
    void (*on_enqueued)(void *arg);
    void *on_enqueued_arg;
} SettleCtx;

typedef struct SettleRequest {
    const Participant *caller;    /* authenticated, enabled; valid until done() returns */
    const DirSnapshot *dir;       /* the snapshot caller came from */
    const char *nonce;            /* X-OC-Nonce, validated */
    const char *body;             /* raw bytes as received (not NUL-terminated) */
    size_t body_len;
    const char *path_param;       /* /verify/{txid}: the txid, percent-decoded; else NULL */
    const char *idempotency_key;  /* Idempotency-Key header or NULL */
    int64_t now;                  /* Unix seconds at receipt */
    const char *request_id;       /* for logs */
} SettleRequest;

/* body is valid only during the call; status is the HTTP status. Called exactly once, on the
 * loop, never from inside the settle_* call itself — except when memory is exhausted before
 * anything could be queued, when it is called at once with a 503 UNAVAILABLE. */
typedef void (*SettleDone)(void *userdata, int status, const char *body, size_t body_len);

/* The statements every loop's pool must prepare for this module. */
extern const DbStatement settle_statements[];
extern const size_t settle_statement_count;

void settle_payment_create(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud);
void settle_payment_settle(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud);
void settle_transfer_webhook(SettleCtx *ctx, const SettleRequest *req, SettleDone done,
                             void *ud);
void settle_verify(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud);
void settle_capabilities(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud);

/* Records the nonce and answers with the given error: for authenticated requests refused
 * before any settlement logic (unsupported capability, unauthorised route). */
void settle_refuse(SettleCtx *ctx, const SettleRequest *req, OcErrorCode code,
                   const char *message, SettleDone done, void *ud);

/* Starts the housekeeping timer on ctx->base (nonces older than twice the timestamp window,
 * idempotency keys older than 24 h); run it on one loop per process. Returns 0 or -ENOMEM. */
OC_MUST_CHECK int settle_start_maintenance(SettleCtx *ctx);
/* Stops and frees that timer; safe when it was never started. Call before freeing the loop. */
void settle_stop_maintenance(SettleCtx *ctx);

/* The public metadata document (nested shape, signed config). Pure; returns 0 and a body
 * to free with oc_free, or -ENOMEM. */
OC_MUST_CHECK int settle_metadata(const Config *cfg, const PrivateKey *key,
                                  const DirSnapshot *dir, char **body, size_t *body_len);

/* Formats {"error":{"code":..,"message":..}}; returns the HTTP status. *body is owned by the
 * caller (oc_free); on allocation failure a static fallback body is returned in *body with
 * *owned = 0. */
int settle_error_body(OcErrorCode code, const char *message, char **body, size_t *body_len,
                      int *owned);
