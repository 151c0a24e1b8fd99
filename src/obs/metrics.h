/* The metrics registry (design.md, "obs/"): process-wide counters and histograms with small,
 * fixed label sets, updated lock-free (C11 atomics) from any thread, and the Prometheus text
 * exposition of them. Gauges that are cheaper to compute than to maintain (database pools,
 * delivery queue) are passed in by the caller at scrape time. Every metric is named
 * ocgate_*; latencies are in milliseconds, with buckets 1 .. 5000 ms and +Inf. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"

/* A request answered on `route` (a route pattern such as "/payment/create", or "unmatched";
 * unknown patterns count as "other") with `status`, after duration_ms. */
void metrics_request(const char *route, int status, double duration_ms);

/* A /transfer/webhook or /payment/settle request, from receipt to answer. */
void metrics_settlement(double duration_ms);

/* A proof the database decided: outcome "credited", "unmatched", "amount_mismatch",
 * "currency_mismatch", "late", "duplicate_payment" or "refused" (anything else: "other");
 * replay when the first submission decided it. */
void metrics_proof(const char *outcome, bool replay);

/* A signature-related refusal by its error code name ("INVALID_SIGNATURE",
 * "TIMESTAMP_EXPIRED", "UNKNOWN_OCID", "NONCE_REUSED", "PROOF_SIGNATURE_INVALID"; anything
 * else counts as "other"). */
void metrics_signature_rejected(const char *reason);

/* One merchant delivery attempt: outcome "delivered", "rejected", "dead" or "retry". */
void metrics_delivery(const char *outcome, double duration_ms);

/* What the caller measures at scrape time. */
typedef struct MetricsGauges {
    unsigned db_ready;           /* summed over every loop's pool */
    unsigned db_in_use;
    unsigned db_waiting;
    uint64_t db_dispatched;      /* counters summed over the pools */
    uint64_t db_wait_us;
    uint64_t db_reconnects;
    bool have_queue;             /* the queue query answered */
    uint64_t queue_depth;        /* deliveries pending or in flight */
    double oldest_due_age_s;     /* age of the oldest due delivery, 0 when none */
} MetricsGauges;

/* Appends the whole exposition (text format 0.0.4) to b; errors stick in b (buf.h). */
void metrics_write(Buf *b, const MetricsGauges *g);

/* Zeroes every counter and histogram; for tests only, with no writer running. */
void metrics_reset(void);
