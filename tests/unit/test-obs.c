/* Unit tests for obs/: the metrics registry (src/obs/metrics.h): label mapping (unknown values go
 * to "other"), histogram bucket edges (a value equal to a bound is in that bucket), the
 * cumulative buckets and +Inf = _count, the gauges, and updates from several threads. */
#include "testlib.h"

#include <pthread.h>

#include "obs/metrics.h"
#include "ocgate-config.h"
#include "util/alloc.h"

static char *scrape(const MetricsGauges *g)
{
    Buf b = BUF_INIT;
    metrics_write(&b, g);
    char *out = NULL;
    size_t len = 0;
    if (buf_finish(&b, &out, &len) != 0)
        return NULL;
    return out;
}

static int has(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++)
        metrics_request("/capabilities", 200, 3.0);
    return NULL;
}

int main(void)
{
    MetricsGauges g = { 0 };
    metrics_reset();
    metrics_request("/payment/create", 201, 1.0);
    metrics_request("/payment/create", 201, 1.5);
    metrics_request("/payment/create", 299, 7000.0);
    metrics_request("/no/such/route", 404, 0.2);
    metrics_settlement(30.0);
    metrics_proof("credited", false);
    metrics_proof("credited", true);
    metrics_proof("something new", false);
    metrics_signature_rejected("INVALID_SIGNATURE");
    metrics_signature_rejected("BAD_REQUEST");
    metrics_delivery("delivered", 120.0);
    metrics_delivery("bogus", 1.0);

    char *t = scrape(&g);
    CHECK(t != NULL, "the exposition is written");
    if (!t)
        return tl_done();
    CHECK(strstr(t, "# HELP ocgate_build_info ") && has(t, "# TYPE ocgate_build_info gauge"),
          "HELP and TYPE lines");
    CHECK(has(t, "ocgate_http_requests_total{route=\"/payment/create\",status=\"201\"} 2"),
          "requests by route and status");
    CHECK(has(t, "ocgate_http_requests_total{route=\"/payment/create\",status=\"0\"} 1"),
          "an unlisted status counts as 0 (other)");
    CHECK(has(t, "ocgate_http_requests_total{route=\"other\",status=\"404\"} 1"),
          "an unknown route counts as other");
    CHECK(has(t, "ocgate_http_request_duration_ms_bucket{route=\"/payment/create\",le=\"1\"} 1"),
          "a value equal to a bound is in that bucket");
    CHECK(has(t, "ocgate_http_request_duration_ms_bucket{route=\"/payment/create\",le=\"2\"} 2"),
          "buckets are cumulative");
    CHECK(has(t, "ocgate_http_request_duration_ms_bucket{route=\"/payment/create\",le=\"5000\"} 2"),
          "past the last bound only +Inf counts it");
    CHECK(has(t, "ocgate_http_request_duration_ms_bucket{route=\"/payment/create\",le=\"+Inf\"} 3")
              && has(t, "ocgate_http_request_duration_ms_count{route=\"/payment/create\"} 3"),
          "+Inf equals _count");
    CHECK(has(t, "ocgate_http_request_duration_ms_sum{route=\"/payment/create\"} 7002.500"),
          "_sum in milliseconds");
    CHECK(has(t, "ocgate_settlement_duration_ms_count 1") &&
              has(t, "ocgate_settlement_duration_ms_bucket{le=\"25\"} 0") &&
              has(t, "ocgate_settlement_duration_ms_bucket{le=\"50\"} 1"),
          "the settlement histogram");
    CHECK(has(t, "ocgate_proofs_total{outcome=\"credited\",replay=\"false\"} 1") &&
              has(t, "ocgate_proofs_total{outcome=\"credited\",replay=\"true\"} 1") &&
              has(t, "ocgate_proofs_total{outcome=\"other\",replay=\"false\"} 1"),
          "proofs by outcome and replay");
    CHECK(has(t, "ocgate_signature_rejections_total{reason=\"INVALID_SIGNATURE\"} 1") &&
              has(t, "ocgate_signature_rejections_total{reason=\"other\"} 1"),
          "signature rejections by reason");
    CHECK(has(t, "ocgate_deliveries_total{outcome=\"delivered\"} 1") &&
              has(t, "ocgate_deliveries_total{outcome=\"retry\"} 1") &&
              has(t, "ocgate_delivery_attempt_duration_ms_count 2"),
          "deliveries by outcome and attempt latency");
    CHECK(!strstr(t, "ocgate_delivery_queue_depth"), "no queue gauges without a queue reading");
    oc_free(t);

    g = (MetricsGauges){ .db_ready = 4, .db_in_use = 1, .db_waiting = 2, .db_wait_us = 1500000,
                         .have_queue = true, .queue_depth = 7, .oldest_due_age_s = 12.5 };
    metrics_reset();
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    t = scrape(&g);
    CHECK(t && has(t, "ocgate_http_requests_total{route=\"/capabilities\",status=\"200\"} 40000"),
          "updates from four threads all count");
    CHECK(t && has(t, "ocgate_db_pool_ready 4") && has(t, "ocgate_db_pool_in_use 1") &&
              has(t, "ocgate_db_pool_waiting 2") &&
              has(t, "ocgate_db_pool_wait_seconds_total 1.500000") &&
              has(t, "ocgate_delivery_queue_depth 7") &&
              has(t, "ocgate_delivery_oldest_due_age_seconds 12.500"),
          "gauges as given");
    CHECK(t && has(t, "ocgate_build_info{version=\"" OCGATE_VERSION "\"} 1"),
          "build info");
    oc_free(t);
    return tl_done();
}
