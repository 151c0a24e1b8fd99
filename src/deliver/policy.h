/* The delivery worker's decisions, kept free of I/O so they are unit-tested on their own
 * (design.md, "outbound retries"): what a merchant's answer means, when the next attempt is
 * due, how Retry-After is read, and the excerpt of an answer that is stored for operators. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/client.h"
#include "util/macro.h"

#define DELIVER_EXCERPT_MAX 256            /* bytes of a merchant's answer kept per attempt */
#define DELIVER_RETRY_AFTER_MAX_S 86400    /* Retry-After is honoured up to 24 h */
#define DELIVER_4XX_DEAD_AFTER 3           /* a plain 4xx on this attempt or later is final */

typedef enum DeliverOutcome {
    DELIVER_DELIVERED = 0,   /* 2xx with {"status":"accepted"} */
    DELIVER_REJECTED,        /* 2xx with {"status":"rejected"}: the merchant said no */
    DELIVER_DEAD,            /* 410, a 4xx from attempt 3 on, or the schedule is used up */
    DELIVER_RETRY,           /* anything else: try again later */
} DeliverOutcome;

typedef struct DeliverVerdict {
    DeliverOutcome outcome;
    /* The merchant's endpoint misbehaved (it counts towards its circuit breaker): transport
     * failures, timeouts, 3xx, 4xx other than 410, 5xx, and 2xx without an accepted status.
     * Not for refusals that never reached the network (bad URL, SSRF guard). */
    bool merchant_failure;
    bool has_retry_after;    /* a usable Retry-After came with a 429 or 503 */
    unsigned retry_after_s;  /* then: seconds to wait, 1 .. DELIVER_RETRY_AFTER_MAX_S */
    char error[200];         /* "" for delivered; else a short reason, never a body */
} DeliverVerdict;

/* "delivered", "rejected", "dead", "retry" (the values oc_delivery_finish takes). */
const char *deliver_outcome_name(DeliverOutcome outcome);

/* Classifies one attempt's result. attempt counts from 1; max_attempts is the schedule's
 * length + 1. A failure on attempt >= max_attempts is dead whatever it was; now (Unix
 * seconds) reads a Retry-After date. Fills *out completely. */
void deliver_classify(const HttpClientResponse *resp, int attempt, int max_attempts,
                      int64_t now, DeliverVerdict *out);

/* Reads a Retry-After value: delay-seconds (digits) or an IMF-fixdate HTTP-date
 * ("Sun, 06 Nov 1994 08:49:37 GMT") relative to now. Returns 0 and *seconds clamped to
 * 1 .. DELIVER_RETRY_AFTER_MAX_S (a date in the past gives 1), or -EINVAL (*seconds
 * untouched). */
OC_MUST_CHECK int deliver_parse_retry_after(const char *value, int64_t now, unsigned *seconds);

/* The delay in milliseconds for a scheduled delay of base_s seconds spread by ±jitter_pct
 * percent, picked uniformly from the 64-bit random value rnd. */
uint64_t deliver_jitter_ms(unsigned base_s, unsigned jitter_pct, uint64_t rnd);

/* Copies at most DELIVER_EXCERPT_MAX bytes of text into out (which holds
 * DELIVER_EXCERPT_MAX + 1 bytes) as valid UTF-8 without control characters (C0, DEL, C1):
 * those and invalid bytes are dropped, and a character is never cut in half. Returns the
 * length written (out is NUL-terminated). text may be NULL when len is 0. */
size_t deliver_excerpt(const char *text, size_t len, char out[DELIVER_EXCERPT_MAX + 1]);
