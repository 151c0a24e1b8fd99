/* The metrics registry and its Prometheus text exposition (metrics.h). Every series is a
 * slot in a static array of atomics, indexed by its labels' positions in the fixed label
 * tables below, so an update is one or two relaxed atomic adds and never allocates. */
#include "obs/metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ocgate-config.h"
#include "util/macro.h"

static const char *const route_labels[] = {
    "/metadata.json", "/capabilities", "/payment/create", "/payment/settle",
    "/transfer/webhook", "/verify/{txid}", "/orders/checkout", "/transfer/create",
    "/metrics", "/healthz", "/readyz", "unmatched", "other",
};
#define N_ROUTES OC_ARRAY_LEN(route_labels)

static const int status_codes[] = {
    200, 201, 202, 204, 400, 401, 403, 404, 409, 410, 413, 422, 429, 500, 502, 503, 504,
    0, /* other */
};
#define N_STATUS OC_ARRAY_LEN(status_codes)

static const char *const proof_labels[] = {
    "credited", "unmatched", "amount_mismatch", "currency_mismatch", "late",
    "duplicate_payment", "refused", "other",
};
#define N_PROOF OC_ARRAY_LEN(proof_labels)

static const char *const reason_labels[] = {
    "INVALID_SIGNATURE", "TIMESTAMP_EXPIRED", "UNKNOWN_OCID", "NONCE_REUSED",
    "PROOF_SIGNATURE_INVALID", "other",
};
#define N_REASON OC_ARRAY_LEN(reason_labels)

static const char *const delivery_labels[] = { "delivered", "rejected", "dead", "retry" };
#define N_DELIVERY OC_ARRAY_LEN(delivery_labels)

static const double bucket_ms[] = { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000 };
#define N_BUCKETS OC_ARRAY_LEN(bucket_ms)

/* Non-cumulative bucket counts (the last one is +Inf); the exposition sums them. */
typedef struct Histogram {
    atomic_uint_fast64_t bucket[N_BUCKETS + 1];
    atomic_uint_fast64_t sum_us;
} Histogram;

static struct {
    atomic_uint_fast64_t requests[N_ROUTES][N_STATUS];
    Histogram request_ms[N_ROUTES];
    Histogram settlement_ms;
    atomic_uint_fast64_t proofs[N_PROOF][2];
    atomic_uint_fast64_t sig_rejects[N_REASON];
    atomic_uint_fast64_t deliveries[N_DELIVERY];
    Histogram attempt_ms;
} reg;

static size_t label_index(const char *const *labels, size_t n, const char *s)
{
    for (size_t i = 0; s && i + 1 < n; i++)
        if (strcmp(labels[i], s) == 0)
            return i;
    return n - 1;
}

static void hist_observe(Histogram *h, double ms)
{
    if (!(ms >= 0))
        ms = 0;
    size_t i = 0;
    while (i < N_BUCKETS && ms > bucket_ms[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    double us = ms * 1000.0;
    atomic_fetch_add_explicit(&h->sum_us, us < 1e18 ? (uint_fast64_t)us : (uint_fast64_t)1e18,
                              memory_order_relaxed);
}

static void inc(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void metrics_request(const char *route, int status, double duration_ms)
{
    size_t r = label_index(route_labels, N_ROUTES, route);
    size_t s = N_STATUS - 1;
    for (size_t i = 0; i + 1 < N_STATUS; i++)
        if (status_codes[i] == status)
            s = i;
    inc(&reg.requests[r][s]);
    hist_observe(&reg.request_ms[r], duration_ms);
}

void metrics_settlement(double duration_ms)
{
    hist_observe(&reg.settlement_ms, duration_ms);
}

void metrics_proof(const char *outcome, bool replay)
{
    inc(&reg.proofs[label_index(proof_labels, N_PROOF, outcome)][replay ? 1 : 0]);
}

void metrics_signature_rejected(const char *reason)
{
    inc(&reg.sig_rejects[label_index(reason_labels, N_REASON, reason)]);
}

void metrics_delivery(const char *outcome, double duration_ms)
{
    size_t i = N_DELIVERY;
    for (size_t k = 0; k < N_DELIVERY; k++)
        if (outcome && strcmp(delivery_labels[k], outcome) == 0)
            i = k;
    if (i == N_DELIVERY)
        i = N_DELIVERY - 1; /* an unknown outcome is retried, so count it so */
    inc(&reg.deliveries[i]);
    hist_observe(&reg.attempt_ms, duration_ms);
}

void metrics_reset(void)
{
    memset(&reg, 0, sizeof(reg));
}

static uint64_t load(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void head(Buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series; labels is "" or `key="value",`. The buckets are read once, so
 * the cumulative counts, +Inf and _count agree even while other threads observe. */
static void hist_write(Buf *b, const char *name, const char *labels, const Histogram *h)
{
    uint64_t counts[N_BUCKETS + 1], cum = 0;
    for (size_t i = 0; i <= N_BUCKETS; i++)
        counts[i] = load(&h->bucket[i]);
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += counts[i];
        buf_printf(b, "%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, labels, bucket_ms[i], cum);
    }
    cum += counts[N_BUCKETS];
    buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
    size_t ll = strlen(labels);
    /* labels without the trailing comma, in braces, or nothing */
    if (ll > 0) {
        buf_printf(b, "%s_sum{%.*s} %.3f\n", name, (int)(ll - 1), labels,
                   (double)load(&h->sum_us) / 1000.0);
        buf_printf(b, "%s_count{%.*s} %" PRIu64 "\n", name, (int)(ll - 1), labels, cum);
    } else {
        buf_printf(b, "%s_sum %.3f\n", name, (double)load(&h->sum_us) / 1000.0);
        buf_printf(b, "%s_count %" PRIu64 "\n", name, cum);
    }
}

static uint64_t hist_count(const Histogram *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= N_BUCKETS; i++)
        n += load(&h->bucket[i]);
    return n;
}

void metrics_write(Buf *b, const MetricsGauges *g)
{
    head(b, "ocgate_build_info", "gauge", "Build information; the value is always 1.");
    buf_printf(b, "ocgate_build_info{version=\"%s\"} 1\n", OCGATE_VERSION);

    head(b, "ocgate_http_requests_total", "counter",
         "HTTP requests answered, by route pattern and status code (0 = any other).");
    for (size_t r = 0; r < N_ROUTES; r++)
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = load(&reg.requests[r][s]);
            if (v)
                buf_printf(b, "ocgate_http_requests_total{route=\"%s\",status=\"%d\"} %" PRIu64
                           "\n", route_labels[r], status_codes[s], v);
        }

    head(b, "ocgate_http_request_duration_ms", "histogram",
         "Time from receipt to answer, by route pattern, in milliseconds.");
    for (size_t r = 0; r < N_ROUTES; r++) {
        if (hist_count(&reg.request_ms[r]) == 0)
            continue;
        char labels[64];
        snprintf(labels, sizeof(labels), "route=\"%s\",", route_labels[r]);
        hist_write(b, "ocgate_http_request_duration_ms", labels, &reg.request_ms[r]);
    }

    head(b, "ocgate_settlement_duration_ms", "histogram",
         "Time from receipt to answer of /transfer/webhook and /payment/settle, in "
         "milliseconds.");
    hist_write(b, "ocgate_settlement_duration_ms", "", &reg.settlement_ms);

    head(b, "ocgate_proofs_total", "counter",
         "Settlement proofs decided, by outcome and whether an earlier submission decided it.");
    for (size_t o = 0; o < N_PROOF; o++)
        for (int rp = 0; rp < 2; rp++)
            buf_printf(b, "ocgate_proofs_total{outcome=\"%s\",replay=\"%s\"} %" PRIu64 "\n",
                       proof_labels[o], rp ? "true" : "false", load(&reg.proofs[o][rp]));

    head(b, "ocgate_signature_rejections_total", "counter",
         "Requests and proofs refused for their signature, timestamp, nonce or signer, by "
         "error code.");
    for (size_t i = 0; i < N_REASON; i++)
        buf_printf(b, "ocgate_signature_rejections_total{reason=\"%s\"} %" PRIu64 "\n",
                   reason_labels[i], load(&reg.sig_rejects[i]));

    head(b, "ocgate_deliveries_total", "counter", "Merchant delivery attempts, by outcome.");
    for (size_t i = 0; i < N_DELIVERY; i++)
        buf_printf(b, "ocgate_deliveries_total{outcome=\"%s\"} %" PRIu64 "\n",
                   delivery_labels[i], load(&reg.deliveries[i]));

    head(b, "ocgate_delivery_attempt_duration_ms", "histogram",
         "Duration of merchant delivery attempts, in milliseconds.");
    hist_write(b, "ocgate_delivery_attempt_duration_ms", "", &reg.attempt_ms);

    if (g->have_queue) {
        head(b, "ocgate_delivery_queue_depth", "gauge",
             "Deliveries pending or in flight.");
        buf_printf(b, "ocgate_delivery_queue_depth %" PRIu64 "\n", g->queue_depth);
        head(b, "ocgate_delivery_oldest_due_age_seconds", "gauge",
             "Age of the oldest delivery due for an attempt, 0 when none is due.");
        buf_printf(b, "ocgate_delivery_oldest_due_age_seconds %.3f\n", g->oldest_due_age_s);
    }

    head(b, "ocgate_db_pool_ready", "gauge",
         "Database connections up and prepared, over every loop's pool.");
    buf_printf(b, "ocgate_db_pool_ready %u\n", g->db_ready);
    head(b, "ocgate_db_pool_in_use", "gauge", "Database connections running a query.");
    buf_printf(b, "ocgate_db_pool_in_use %u\n", g->db_in_use);
    head(b, "ocgate_db_pool_waiting", "gauge", "Queries waiting for a database connection.");
    buf_printf(b, "ocgate_db_pool_waiting %u\n", g->db_waiting);
    head(b, "ocgate_db_pool_dispatched_total", "counter", "Queries sent to the database.");
    buf_printf(b, "ocgate_db_pool_dispatched_total %" PRIu64 "\n", g->db_dispatched);
    head(b, "ocgate_db_pool_wait_seconds_total", "counter",
         "Summed time the dispatched queries waited for a connection, in seconds.");
    buf_printf(b, "ocgate_db_pool_wait_seconds_total %.6f\n", (double)g->db_wait_us / 1e6);
    head(b, "ocgate_db_pool_reconnects_total", "counter",
         "Database connections lost, timed out or refused, then retried.");
    buf_printf(b, "ocgate_db_pool_reconnects_total %" PRIu64 "\n", g->db_reconnects);
}
