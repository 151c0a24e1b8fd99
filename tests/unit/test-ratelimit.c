/* Unit tests for http/ratelimit.h: the burst is granted at once and no more, tokens come back
 * at the configured rate (fractions are not lost), Retry-After rounds up to whole seconds,
 * keys are independent, rate 0 disables, refilled buckets are dropped when the table grows,
 * an allocation failure lets requests through, and several threads share one limiter
 * without losing or double-counting a token. */
#include "testlib.h"

#include <pthread.h>
#include <stdint.h>

#include "http/ratelimit.h"
#include "util/alloc.h"

#define SEC UINT64_C(1000000000)

static unsigned count_allowed(RateLimiter *rl, int64_t key, uint64_t now, unsigned n)
{
    unsigned ok = 0, ra;
    for (unsigned i = 0; i < n; i++)
        ok += ratelimit_take(rl, key, now, &ra);
    return ok;
}

static void test_burst_and_refill(void)
{
    RateLimiter *rl = ratelimit_new(10, 5);
    CHECK(rl != NULL, "ratelimit_new(10, 5)");
    uint64_t t0 = 1000 * SEC;
    CHECK(count_allowed(rl, 7, t0, 20) == 5, "a fresh key gets exactly its burst of 5");
    unsigned ra = 0;
    CHECK(!ratelimit_take(rl, 7, t0, &ra) && ra == 1,
          "an empty bucket refuses with Retry-After 1 (got %u)", ra);
    /* 10/s: one token per 100 ms. 99 ms is not enough, 100 ms is. */
    CHECK(!ratelimit_take(rl, 7, t0 + 99 * SEC / 1000, &ra), "99 ms later: still empty");
    CHECK(ratelimit_take(rl, 7, t0 + 100 * SEC / 1000, &ra), "100 ms later: one token");
    CHECK(!ratelimit_take(rl, 7, t0 + 100 * SEC / 1000, &ra), "and only one");
    /* Fractions accumulate: ten steps of 10 ms make one token. */
    uint64_t t = t0 + 100 * SEC / 1000;
    unsigned got = 0;
    for (int i = 0; i < 10; i++) {
        t += SEC / 100;
        got += ratelimit_take(rl, 7, t, &ra);
    }
    CHECK(got == 1, "ten 10 ms steps refill exactly one token (got %u)", got);
    /* A long pause refills to the burst, not beyond. */
    CHECK(count_allowed(rl, 7, t + 3600 * SEC, 20) == 5, "an hour later: the burst again, not more");
    /* Time going backwards (another thread's earlier reading) adds nothing. */
    CHECK(count_allowed(rl, 7, t, 5) == 0, "an earlier timestamp refills nothing");
    ratelimit_free(rl);
}

static void test_retry_after(void)
{
    RateLimiter *rl = ratelimit_new(1, 1);
    unsigned ra = 0;
    CHECK(ratelimit_take(rl, 1, 0, &ra), "rate 1, burst 1: first request");
    CHECK(!ratelimit_take(rl, 1, SEC / 10, &ra) && ra == 1,
          "0.1 s later: Retry-After 1 (0.9 s rounded up), got %u", ra);
    ratelimit_free(rl);

    /* Rates under one a second are not configurable, but slow buckets still round up: with
     * rate 1 and an empty bucket right after the take, the wait is exactly 1 s. */
    rl = ratelimit_new(1, 3);
    CHECK(count_allowed(rl, 1, 0, 3) == 3, "rate 1, burst 3: three at once");
    CHECK(!ratelimit_take(rl, 1, 0, &ra) && ra == 1, "then Retry-After 1, got %u", ra);
    ratelimit_free(rl);

    rl = ratelimit_new(1000000, 1);
    CHECK(ratelimit_take(rl, 1, 0, &ra), "a million a second: first");
    CHECK(!ratelimit_take(rl, 1, 0, &ra) && ra == 1,
          "Retry-After is never 0 even when the wait is a microsecond (got %u)", ra);
    CHECK(ratelimit_take(rl, 1, 1000, &ra), "a microsecond later a token is back");
    ratelimit_free(rl);
}

static void test_keys_independent(void)
{
    RateLimiter *rl = ratelimit_new(1, 2);
    CHECK(count_allowed(rl, 100, 0, 10) == 2, "noisy key 100 gets 2 of 10");
    CHECK(count_allowed(rl, 101, 0, 2) == 2, "key 101 still gets its full burst");
    CHECK(count_allowed(rl, -1, 0, 2) == 2, "a negative key is a key like any other");
    CHECK(count_allowed(rl, INT64_MAX, 0, 2) == 2, "INT64_MAX too");
    CHECK(ratelimit_size(rl) == 4, "four buckets stored (got %zu)", ratelimit_size(rl));
    ratelimit_free(rl);
}

static void test_disabled(void)
{
    RateLimiter *rl = ratelimit_new(0, 0);
    CHECK(rl != NULL, "rate 0 (off) builds");
    CHECK(count_allowed(rl, 5, 0, 100000) == 100000, "rate 0 lets everything through");
    CHECK(ratelimit_size(rl) == 0, "and stores nothing");
    ratelimit_free(rl);
    CHECK(ratelimit_new(5, 0) == NULL, "a rate with burst 0 is refused");
    unsigned ra;
    CHECK(ratelimit_take(NULL, 1, 0, &ra), "a NULL limiter lets through");
    ratelimit_free(NULL);
    CHECK(1, "ratelimit_free(NULL) is a no-op");
}

static void test_pruning(void)
{
    /* 10,000 distinct callers, each taking one token, then all refilled: the table must not
     * keep them once it next grows. */
    RateLimiter *rl = ratelimit_new(100, 10);
    unsigned ok = 0, ra;
    for (int64_t k = 0; k < 10000; k++)
        ok += ratelimit_take(rl, k, 0, &ra);
    CHECK(ok == 10000, "10,000 first requests of distinct callers all pass");
    CHECK(ratelimit_size(rl) == 10000, "10,000 buckets while they are not full (got %zu)",
          ratelimit_size(rl));
    /* One second later every bucket is full again; new callers trigger the next growth,
     * which drops them. */
    for (int64_t k = 10000; k < 20000; k++)
        ok += ratelimit_take(rl, k, SEC, &ra);
    size_t n = ratelimit_size(rl);
    CHECK(n <= 10000, "after refill, growth dropped the idle buckets (size %zu <= 10000)", n);
    CHECK(ratelimit_take(rl, 3, SEC, &ra), "a dropped caller starts with a full bucket");
    ratelimit_free(rl);
}

static long fail_after = -1;
static void *failing_malloc(size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    return malloc(n);
}

static void test_alloc_failure(void)
{
    oc_set_alloc_funcs(failing_malloc, free);
    fail_after = 0;
    CHECK(ratelimit_new(1, 1) == NULL, "ratelimit_new returns NULL without memory");
    fail_after = 1; /* the struct, then no table */
    RateLimiter *rl = ratelimit_new(1, 1);
    CHECK(rl != NULL, "limiter built");
    unsigned ra;
    CHECK(count_allowed(rl, 1, 0, 5) == 5,
          "no memory for the table: requests are let through, not refused");
    fail_after = -1;
    CHECK(count_allowed(rl, 1, 0, 5) == 1, "memory back: limiting resumes");
    ratelimit_free(rl);
    oc_set_alloc_funcs(NULL, NULL);
    (void)ra;
}

typedef struct ThreadArg {
    RateLimiter *rl;
    unsigned allowed;
} ThreadArg;

static void *hammer(void *p)
{
    ThreadArg *a = p;
    unsigned ra;
    for (int i = 0; i < 20000; i++)
        a->allowed += ratelimit_take(a->rl, 42, 5 * SEC, &ra);
    return NULL;
}

static void test_threads(void)
{
    /* All at one instant: exactly the burst must be granted in total, whatever the
     * interleaving. */
    RateLimiter *rl = ratelimit_new(10, 1000);
    pthread_t th[4];
    ThreadArg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (ThreadArg){ rl, 0 };
        pthread_create(&th[i], NULL, hammer, &args[i]);
    }
    unsigned total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += args[i].allowed;
    }
    CHECK(total == 1000, "4 threads × 20,000 takes at one instant: exactly 1000 granted (%u)",
          total);
    ratelimit_free(rl);
}

int main(void)
{
    test_burst_and_refill();
    test_retry_after();
    test_keys_independent();
    test_disabled();
    test_pruning();
    test_alloc_failure();
    test_threads();
    return tl_done();
}
