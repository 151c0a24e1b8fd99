/* Per-participant request budgets for the public listener: one token bucket per
 * authenticated caller OCID, refilled at `rate` tokens a second up to `burst`. One limiter is
 * shared by every event-loop thread of a process, so the budget is per instance, not per
 * cluster: N instances behind a load balancer let a caller through at up to N times the
 * rate. Memory is bounded by the number of distinct callers, and only authenticated callers
 * (known, enabled participants whose signature verified) ever get a bucket. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/macro.h"

typedef struct RateLimiter RateLimiter;

/* A limiter granting each key `rate_per_s` requests a second on average and at most `burst`
 * at once (burst ≥ 1). rate_per_s = 0 means no limit: every call to ratelimit_take succeeds
 * and nothing is stored. Returns NULL when memory runs out or burst is 0 with a rate. */
OC_MUST_CHECK RateLimiter *ratelimit_new(unsigned rate_per_s, unsigned burst);

/* Accepts NULL. */
void ratelimit_free(RateLimiter *rl);

/* Takes one token from key's bucket at time now_ns (any monotonic clock, in nanoseconds;
 * callers must pass non-decreasing values per key or the earlier time is used). Returns true
 * when the request may go on; false when the bucket is empty, with *retry_after_s set to the
 * whole seconds (≥ 1) until a token is available. Thread-safe. A key whose bucket cannot be
 * allocated (memory exhaustion) is let through: a limiter must never refuse legitimate
 * traffic because of its own bookkeeping. */
bool ratelimit_take(RateLimiter *rl, int64_t key, uint64_t now_ns, unsigned *retry_after_s);

/* Buckets currently stored (for tests and metrics). Thread-safe. */
size_t ratelimit_size(RateLimiter *rl);
