/* Token buckets keyed by caller OCID (ratelimit.h). An open-addressing table under one mutex:
 * the critical section is a hash probe and a few arithmetic operations, far cheaper than the
 * signature verification that precedes every call, so striping the lock would buy nothing.
 * Tokens are kept in nanosecond-scaled fixed point (one token = 1e9 units) so refills never
 * lose fractions and no floating point is involved. */
#include "http/ratelimit.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"

#define RL_UNIT UINT64_C(1000000000) /* one token, in fixed point */
#define RL_MIN_CAP 64

typedef struct Bucket {
    int64_t key;
    bool used;
    uint64_t tokens;   /* fixed point, ≤ burst × RL_UNIT */
    uint64_t last_ns;  /* when tokens was computed */
} Bucket;

struct RateLimiter {
    pthread_mutex_t lock;
    uint64_t rate;      /* tokens per second */
    uint64_t cap;       /* burst × RL_UNIT */
    Bucket *slots;
    size_t n_slots;     /* a power of two */
    size_t n_used;
};

RateLimiter *ratelimit_new(unsigned rate_per_s, unsigned burst)
{
    if (rate_per_s > 0 && burst == 0)
        return NULL;
    RateLimiter *rl = oc_calloc(1, sizeof(*rl));
    if (!rl)
        return NULL;
    if (pthread_mutex_init(&rl->lock, NULL) != 0) {
        oc_free(rl);
        return NULL;
    }
    rl->rate = rate_per_s;
    rl->cap = (uint64_t)burst * RL_UNIT;
    return rl;
}

void ratelimit_free(RateLimiter *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    oc_free(rl->slots);
    oc_free(rl);
}

static size_t slot_of(int64_t key, size_t n_slots)
{
    /* splitmix64 finaliser: OCIDs are often sequential, so spread them. */
    uint64_t x = (uint64_t)key + UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return (size_t)(x & (n_slots - 1));
}

static Bucket *probe(Bucket *slots, size_t n_slots, int64_t key)
{
    size_t i = slot_of(key, n_slots);
    while (slots[i].used && slots[i].key != key)
        i = (i + 1) & (n_slots - 1);
    return &slots[i];
}

static void refill(const RateLimiter *rl, Bucket *b, uint64_t now_ns)
{
    if (now_ns <= b->last_ns)
        return;
    uint64_t elapsed = now_ns - b->last_ns;
    uint64_t room = rl->cap - b->tokens;
    /* elapsed × rate in token units (1e9 per token, elapsed in ns): the product is the
     * refill directly; guard the multiplication against overflow by capping elapsed. */
    uint64_t add = elapsed > room / rl->rate ? room : elapsed * rl->rate;
    b->tokens += add < room ? add : room;
    b->last_ns = now_ns;
}

/* Rebuilds the table, dropping every bucket that has refilled completely: a full bucket is
 * exactly what a new one would be, so the table only ever holds callers active within the
 * last burst/rate seconds, and a long-running process does not accumulate one bucket per
 * participant it ever saw. Doubles the size only if what is kept still needs it. Returns -1
 * on allocation failure, leaving the table usable as it was. */
static int grow(RateLimiter *rl, uint64_t now_ns)
{
    size_t keep = 0;
    for (size_t i = 0; i < rl->n_slots; i++) {
        Bucket *b = &rl->slots[i];
        if (!b->used)
            continue;
        refill(rl, b, now_ns);
        if (b->tokens != rl->cap)
            keep++;
    }
    size_t n = rl->n_slots ? rl->n_slots : RL_MIN_CAP;
    while (keep * 2 >= n)
        n *= 2;
    Bucket *slots = oc_calloc(n, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < rl->n_slots; i++)
        if (rl->slots[i].used && rl->slots[i].tokens != rl->cap)
            *probe(slots, n, rl->slots[i].key) = rl->slots[i];
    oc_free(rl->slots);
    rl->slots = slots;
    rl->n_slots = n;
    rl->n_used = keep;
    return 0;
}

bool ratelimit_take(RateLimiter *rl, int64_t key, uint64_t now_ns, unsigned *retry_after_s)
{
    if (!rl || rl->rate == 0)
        return true;
    bool allowed = true;
    pthread_mutex_lock(&rl->lock);
    if ((rl->n_used + 1) * 2 > rl->n_slots && grow(rl, now_ns) != 0) {
        pthread_mutex_unlock(&rl->lock);
        return true;
    }
    Bucket *b = probe(rl->slots, rl->n_slots, key);
    if (!b->used) {
        *b = (Bucket){ .key = key, .used = true, .tokens = rl->cap, .last_ns = now_ns };
        rl->n_used++;
    }
    refill(rl, b, now_ns);
    if (b->tokens >= RL_UNIT) {
        b->tokens -= RL_UNIT;
    } else {
        allowed = false;
        /* Time until one whole token, rounded up to whole seconds. */
        uint64_t missing = RL_UNIT - b->tokens;
        uint64_t ns = (missing + rl->rate - 1) / rl->rate;
        uint64_t s = (ns + RL_UNIT - 1) / RL_UNIT;
        *retry_after_s = s == 0 ? 1 : (unsigned)s;
    }
    pthread_mutex_unlock(&rl->lock);
    return allowed;
}

size_t ratelimit_size(RateLimiter *rl)
{
    if (!rl)
        return 0;
    pthread_mutex_lock(&rl->lock);
    size_t n = rl->n_used;
    pthread_mutex_unlock(&rl->lock);
    return n;
}
