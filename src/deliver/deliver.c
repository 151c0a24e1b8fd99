/* The merchant delivery worker (deliver.h). One Deliverer runs on one loop: it claims due
 * outbox rows in batches (oc_delivery_claim, one round trip), starts every claimed attempt at
 * once through the asynchronous HTTP client, classifies each answer (policy.c) and records it
 * with oc_delivery_finish (one round trip), which moves the row only while this worker's claim
 * is still current. Attempts that end while a finish is in flight are recorded together in the
 * next one (oc_delivery_finish once per attempt, in one statement and one commit), so under
 * load a notification costs about one commit, not two. Claims are sized so nothing claimed ever waits in a local queue: at most
 * delivery_concurrency attempts in flight, at most delivery_per_merchant per merchant, and
 * merchants whose circuit is open are excluded in the claim itself, so a slow or dead
 * merchant holds a few slots and never the queue. The loop is woken by its own settlements
 * (deliverer_wake), by a timer at its own next retry, and by a poll every delivery_poll_ms
 * that finds work other instances scheduled. */
#include "deliver/deliver.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "deliver/policy.h"
#include "net/client.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "proto/canon.h"
#include "proto/json.h"
#include "proto/proof.h"
#include "util/alloc.h"
#include "util/buf.h"

#define DELIVER_WEBHOOK_PATH "/transfer/webhook"
#define DELIVER_MAX_URL 2048
#define DELIVER_MAX_TRACKED 65536     /* merchants with breaker state kept in memory */
#define DELIVER_FINISH_TRIES 3        /* a finish lost to a database hiccup is sent again */
#define DELIVER_FINISH_RETRY_MS 1000
#define DELIVER_PRUNE_INTERVAL_S 60   /* how often old attempt records are looked for */
#define DELIVER_PRUNE_BATCH 10000     /* attempt records deleted per statement, at most */
#define DELIVER_PRUNE_ROUNDS 10       /* statements per interval while full batches come back */

const DbStatement deliver_statements[] = {
    { "deliver_claim",
      "SELECT id, attempt, payment_txid, merchant_ocid, gateway_proof FROM "
      "oc_delivery_claim($1, $2::integer, $3::integer, $4::bigint[], $5::integer, "
      "$6::bigint[], $7::integer[])", 7 },
    /* One row per attempt: its position in the arrays and whether the row moved. */
    { "deliver_finish",
      "SELECT t.ord::integer, oc_delivery_finish(t.id, t.attempt, t.outcome, t.retry_ms, "
      "t.started_ms, t.duration_ms, t.http_status, t.error, t.excerpt) "
      "FROM unnest($1::uuid[], $2::integer[], $3::text[], $4::bigint[], $5::bigint[], "
      "$6::integer[], $7::integer[], $8::text[], $9::text[]) WITH ORDINALITY "
      "AS t(id, attempt, outcome, retry_ms, started_ms, duration_ms, http_status, error, "
      "excerpt, ord) ORDER BY t.id, t.attempt", 9 },
    /* Retention (migrations/0008): how many attempt records older than $1 s went. */
    { "deliver_prune", "SELECT oc_delivery_prune($1::bigint, $2::integer)", 2 },
};
const size_t deliver_statement_count = OC_ARRAY_LEN(deliver_statements);

/* What this worker knows about one merchant: its attempts in flight and its circuit. */
typedef struct Merchant {
    int64_t ocid;
    unsigned in_flight;       /* attempts waiting for its answer */
    unsigned failures;        /* consecutive failed attempts */
    uint64_t open_until_ms;   /* monotonic; skipped until then once failures hit the limit */
} Merchant;

typedef enum Phase {
    PHASE_HTTP,         /* waiting for the merchant (or about to record a local failure) */
    PHASE_FINISH_QUEUED,/* waiting for the finish in flight to return, to go in the next */
    PHASE_FINISH,       /* oc_delivery_finish in flight */
    PHASE_FINISH_WAIT,  /* waiting to send oc_delivery_finish again */
} Phase;

typedef struct Attempt Attempt;
struct Attempt {
    Deliverer *d;              /* NULL once the worker is freed: the pool still owes a call */
    Attempt *prev, *next;      /* d->attempts */
    Phase phase;
    char id[40];               /* delivery uuid */
    int attempt;
    int64_t merchant;
    bool holds_slot;           /* counted in its Merchant's in_flight */
    char *url;
    char *body;
    size_t body_len;
    AuthOutboundHeaders auth;
    char attempt_text[16];
    const char *headers[13];
    int64_t started_wall_ms;
    uint64_t started_mono_ms;
    /* the result, as recorded */
    DeliverOutcome outcome;
    uint64_t retry_in_ms;
    int http_status;           /* 0 = none */
    unsigned duration_ms;
    char error[200];
    char excerpt[DELIVER_EXCERPT_MAX + 1];
    bool has_excerpt;
    unsigned finish_tries;
    struct event *retry_ev;
    Attempt *fq_next;          /* d->fq while PHASE_FINISH_QUEUED */
};

/* The finish statement in flight: the attempts it records, in array order. d is cleared if
 * the worker is freed first; the attempts are then this op's to free. */
typedef struct FinishOp {
    Deliverer *d;
    size_t n;
    Attempt *items[];
} FinishOp;

/* The claim or the retention statement in flight; d is cleared if the worker is freed
 * first. */
typedef struct WorkerQuery {
    Deliverer *d;
} WorkerQuery;

struct Deliverer {
    struct event_base *base;
    DbPool *pool;
    const Config *cfg;
    const PrivateKey *key;
    Directory *dir;
    HttpClient *http;
    char worker_id[96];
    struct event *poll_ev;
    struct event *wake_ev;
    struct event *due_ev;
    struct event *prune_ev;
    WorkerQuery *prune;            /* retention statement in flight */
    unsigned prune_rounds;     /* statements run in this interval */
    uint64_t pruned;           /* attempt records deleted in this interval */
    uint64_t due_at_ms;        /* monotonic time due_ev fires; 0 = not armed */
    WorkerQuery *claim;
    unsigned claim_limit;
    bool rerun;                /* asked to look again while a claim was running */
    bool more;                 /* due rows may have been left behind for lack of room */
    bool capped;               /* the running claim excluded merchants at their cap */
    bool stopping;
    bool db_failing;           /* log a failing database once, not every poll */
    unsigned in_flight;        /* attempts claimed and not yet released */
    unsigned max_attempts;
    Attempt *attempts;
    Attempt *fq_head, *fq_tail;  /* attempts waiting to be recorded */
    FinishOp *finishing;         /* at most one finish statement in flight */
    Merchant *merchants;
    size_t n_merchants, cap_merchants;
};

static void try_claim(Deliverer *d);
static void attempt_finish(Attempt *a);

/* ---- time and randomness ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1) /* jitter only: time is good enough */
        v = mono_ms() * 0x9e3779b97f4a7c15ull;
    return v;
}

/* ---- merchants: concurrency cap and circuit breaker ---- */

static Merchant *merchant_find(Deliverer *d, int64_t ocid)
{
    for (size_t i = 0; i < d->n_merchants; i++)
        if (d->merchants[i].ocid == ocid)
            return &d->merchants[i];
    return NULL;
}

/* The merchant's entry, created when missing; NULL when memory or the table limit runs out
 * (the merchant then goes uncapped rather than undelivered). */
static Merchant *merchant_get(Deliverer *d, int64_t ocid)
{
    Merchant *m = merchant_find(d, ocid);
    if (m)
        return m;
    if (d->n_merchants == d->cap_merchants) {
        if (d->cap_merchants >= DELIVER_MAX_TRACKED)
            return NULL;
        size_t cap = d->cap_merchants ? d->cap_merchants * 2 : 16;
        Merchant *grown = oc_realloc(d->merchants, d->cap_merchants * sizeof(Merchant),
                                     cap * sizeof(Merchant));
        if (!grown)
            return NULL;
        d->merchants = grown;
        d->cap_merchants = cap;
    }
    m = &d->merchants[d->n_merchants++];
    *m = (Merchant){ .ocid = ocid };
    return m;
}

/* Records an attempt's effect on its merchant's circuit. */
static void merchant_result(Deliverer *d, int64_t ocid, bool failed)
{
    const Config *cfg = d->cfg;
    Merchant *m = merchant_get(d, ocid);
    if (!m)
        return;
    if (!failed) {
        if (m->failures >= cfg->delivery_breaker_failures)
            log_json(LOG_INFO, "merchant circuit closed", "\"merchant\":%" PRId64, ocid);
        m->failures = 0;
        m->open_until_ms = 0;
        return;
    }
    if (m->failures < UINT32_MAX)
        m->failures++;
    if (m->failures >= cfg->delivery_breaker_failures) {
        /* Opened, or re-opened by a failed trial attempt (or a late failure). */
        if (m->failures == cfg->delivery_breaker_failures || m->open_until_ms <= mono_ms())
            log_json(LOG_WARN, "merchant circuit open",
                     "\"merchant\":%" PRId64 ",\"failures\":%u,\"cooldown_s\":%u", ocid,
                     m->failures, cfg->delivery_breaker_cooldown_s);
        m->open_until_ms = mono_ms() + (uint64_t)cfg->delivery_breaker_cooldown_s * 1000;
    }
}

/* ---- attempts ---- */

static void attempt_free(Attempt *a)
{
    if (!a)
        return;
    if (a->retry_ev)
        event_free(a->retry_ev);
    oc_free(a->url);
    oc_free(a->body);
    oc_free(a);
}

static void attempt_unlink(Deliverer *d, Attempt *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        d->attempts = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
}

static void release_slot(Deliverer *d, Attempt *a)
{
    if (!a->holds_slot)
        return;
    a->holds_slot = false;
    Merchant *m = merchant_find(d, a->merchant);
    if (m && m->in_flight > 0)
        m->in_flight--;
}

/* The attempt is over (recorded, or given up to the lease): frees it and, if rows were left
 * behind for lack of room, looks for them now that there is some. */
static void attempt_release(Attempt *a)
{
    Deliverer *d = a->d;
    release_slot(d, a);
    attempt_unlink(d, a);
    d->in_flight--;
    attempt_free(a);
    if (d->more && !d->stopping)
        try_claim(d);
}

static void log_attempt(const Attempt *a)
{
    char error[300] = "null", status[16] = "null", next[48] = "";
    if (a->error[0])
        log_json_str(a->error, error, sizeof(error));
    if (a->http_status)
        snprintf(status, sizeof(status), "%d", a->http_status);
    if (a->outcome == DELIVER_RETRY)
        snprintf(next, sizeof(next), ",\"retry_in_ms\":%" PRIu64, a->retry_in_ms);
    LogLevel level = a->outcome == DELIVER_DELIVERED || a->outcome == DELIVER_REJECTED
                         ? LOG_INFO
                         : LOG_WARN;
    metrics_delivery(deliver_outcome_name(a->outcome), (double)a->duration_ms);
    log_json(level, "delivery attempt",
             "\"delivery\":\"%s\",\"attempt\":%d,\"merchant\":%" PRId64 ",\"status\":%s,"
             "\"outcome\":\"%s\",\"duration_ms\":%u,\"error\":%s%s",
             a->id, a->attempt, a->merchant, status, deliver_outcome_name(a->outcome),
             a->duration_ms, error, next);
}

/* Sets the delay before the next attempt of a retry, from the schedule or Retry-After. */
static void set_retry_delay(Deliverer *d, Attempt *a, const DeliverVerdict *v)
{
    if (a->outcome != DELIVER_RETRY)
        return;
    if (v && v->has_retry_after) {
        a->retry_in_ms = (uint64_t)v->retry_after_s * 1000;
        return;
    }
    size_t n = d->cfg->n_delivery_schedule;
    size_t i = a->attempt >= 1 ? (size_t)a->attempt - 1 : 0;
    unsigned base_s = d->cfg->delivery_schedule_s[i < n ? i : n - 1];
    a->retry_in_ms = deliver_jitter_ms(base_s, d->cfg->delivery_jitter_percent, random_u64());
}

/* An attempt that failed before reaching the network: recorded like any other. */
static void attempt_fail_local(Attempt *a, DeliverOutcome outcome, const char *error)
{
    Deliverer *d = a->d;
    a->outcome = outcome;
    if (a->outcome == DELIVER_RETRY && a->attempt >= (int)d->max_attempts)
        a->outcome = DELIVER_DEAD;
    snprintf(a->error, sizeof(a->error), "%s%s", error,
             a->outcome == DELIVER_DEAD && outcome == DELIVER_RETRY
                 ? " (last attempt of the schedule)"
                 : "");
    a->duration_ms = (unsigned)(mono_ms() - a->started_mono_ms);
    set_retry_delay(d, a, NULL);
    release_slot(d, a);
    log_attempt(a);
    attempt_finish(a);
}

static void on_http_done(void *userdata, const HttpClientResponse *resp)
{
    Attempt *a = userdata;
    Deliverer *d = a->d;
    if (d->stopping) {
        /* deliverer_free is cancelling: the row stays in_flight until its lease ends. */
        release_slot(d, a);
        attempt_unlink(d, a);
        d->in_flight--;
        attempt_free(a);
        return;
    }
    DeliverVerdict v;
    deliver_classify(resp, a->attempt, (int)d->max_attempts, (int64_t)time(NULL), &v);
    a->outcome = v.outcome;
    snprintf(a->error, sizeof(a->error), "%s", v.error);
    a->http_status = resp->error == NET_OK ? resp->status : 0;
    a->duration_ms = (unsigned)(mono_ms() - a->started_mono_ms);
    if (resp->error == NET_OK && resp->body_len > 0) {
        deliver_excerpt(resp->body, resp->body_len, a->excerpt);
        a->has_excerpt = true;
    }
    set_retry_delay(d, a, &v);
    release_slot(d, a);
    if (v.merchant_failure || resp->error == NET_OK)
        merchant_result(d, a->merchant, v.merchant_failure);
    log_attempt(a);
    oc_free(a->body);
    a->body = NULL;
    attempt_finish(a);
}

static void flush_finishes(Deliverer *d);

static void on_finish_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt_finish(arg);
}

/* Queues the attempt's result; it is sent at once unless a finish is in flight, in which
 * case it goes with the others that ended meanwhile when that one returns. */
static void attempt_finish(Attempt *a)
{
    Deliverer *d = a->d;
    a->finish_tries++;
    a->phase = PHASE_FINISH_QUEUED;
    a->fq_next = NULL;
    if (d->fq_tail)
        d->fq_tail->fq_next = a;
    else
        d->fq_head = a;
    d->fq_tail = a;
    if (!d->finishing)
        flush_finishes(d);
}

/* One element of a PostgreSQL array literal: NULL, or the text double-quoted with " and \
 * escaped (the only characters that need it inside quotes). */
static void put_array_elem(Buf *b, bool first, const char *text)
{
    if (!first)
        buf_putc(b, ',');
    if (!text) {
        buf_puts(b, "NULL");
        return;
    }
    buf_putc(b, '"');
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_putc(b, '\\');
        buf_putc(b, *p);
    }
    buf_putc(b, '"');
}

/* An attempt's result once the database has answered (or failed to) for it. */
static void finish_result(Attempt *a, DbError err, const char *moved)
{
    Deliverer *d = a->d;
    if (err == DB_OK) {
        if (moved && strcmp(moved, "t") != 0)
            log_json(LOG_WARN, "delivery claim was taken over before the attempt ended",
                     "\"delivery\":\"%s\",\"attempt\":%d", a->id, a->attempt);
        if (a->outcome == DELIVER_RETRY) {
            /* Be awake when it is due, rather than up to a poll interval later. */
            uint64_t delay = a->retry_in_ms + 5;
            uint64_t at = mono_ms() + delay;
            if (d->due_at_ms == 0 || at < d->due_at_ms) {
                struct timeval tv = { (time_t)(delay / 1000),
                                      (suseconds_t)(delay % 1000) * 1000 };
                if (event_add(d->due_ev, &tv) == 0)
                    d->due_at_ms = at;
            }
        }
        attempt_release(a);
        return;
    }
    /* Lost, busy or timed out: the result is not known to be recorded. Recording it again is
     * harmless (same attempt row, the move applies at most once), so try a few times before
     * leaving the row to its lease. A query error is a bug or a schema mismatch: no retry. */
    bool again = err != DB_E_QUERY && a->finish_tries < DELIVER_FINISH_TRIES && !d->stopping;
    log_json(again ? LOG_WARN : LOG_ERROR, "cannot record a delivery attempt",
             "\"delivery\":\"%s\",\"attempt\":%d,\"db_error\":%d,\"retrying\":%s", a->id,
             a->attempt, (int)err, again ? "true" : "false");
    if (again) {
        if (!a->retry_ev)
            a->retry_ev = event_new(d->base, -1, 0, on_finish_retry, a);
        struct timeval tv = { 0, DELIVER_FINISH_RETRY_MS * 1000 };
        if (a->retry_ev && event_add(a->retry_ev, &tv) == 0) {
            a->phase = PHASE_FINISH_WAIT;
            return;
        }
    }
    attempt_release(a);
}

static void on_finish(void *userdata, DbError err, const PGresult *res)
{
    FinishOp *op = userdata;
    Deliverer *d = op->d;
    if (!d) { /* the worker was freed while this was in flight */
        for (size_t i = 0; i < op->n; i++)
            attempt_free(op->items[i]);
        oc_free(op);
        return;
    }
    d->finishing = NULL;
    /* Rows name their attempt by its 1-based position in the arrays. */
    const char **moved = oc_calloc(op->n, sizeof(char *));
    if (err == DB_OK && moved) {
        for (int row = 0; row < PQntuples(res); row++) {
            long ord = strtol(PQgetvalue(res, row, 0), NULL, 10);
            if (ord >= 1 && (size_t)ord <= op->n)
                moved[ord - 1] = PQgetvalue(res, row, 1);
        }
    }
    for (size_t i = 0; i < op->n; i++) {
        /* A row missing from a successful answer cannot happen; if it did, the attempt's
         * fate is unknown like a lost answer's, and it is sent again. */
        DbError e = err == DB_OK && (!moved || !moved[i]) ? DB_E_UNAVAILABLE : err;
        finish_result(op->items[i], e, moved ? moved[i] : NULL);
    }
    oc_free(moved);
    oc_free(op);
    if (!d->finishing)
        flush_finishes(d);
}

/* Sends up to delivery_batch queued results as one statement. */
static void flush_finishes(Deliverer *d)
{
    if (d->finishing || !d->fq_head || d->stopping)
        return;
    size_t n = 0;
    for (Attempt *a = d->fq_head; a && n < d->cfg->delivery_batch; a = a->fq_next)
        n++;
    FinishOp *op = oc_malloc(sizeof(FinishOp) + n * sizeof(Attempt *));
    Buf cols[9] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT,
                    BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
    char *vals[9] = { NULL };
    int r = op ? 0 : -ENOMEM;
    for (size_t c = 0; c < 9; c++)
        buf_putc(&cols[c], '{');
    for (size_t i = 0; op && i < n; i++) {
        Attempt *a = d->fq_head;
        d->fq_head = a->fq_next;
        if (!d->fq_head)
            d->fq_tail = NULL;
        a->fq_next = NULL;
        a->phase = PHASE_FINISH;
        op->items[i] = a;
        char attempt[16], retry[24], started[24], duration[16], status[16];
        snprintf(attempt, sizeof(attempt), "%d", a->attempt);
        snprintf(retry, sizeof(retry), "%" PRIu64, a->retry_in_ms);
        snprintf(started, sizeof(started), "%" PRId64, a->started_wall_ms);
        snprintf(duration, sizeof(duration), "%u", a->duration_ms);
        snprintf(status, sizeof(status), "%d", a->http_status);
        const char *v[9] = {
            a->id, attempt, deliver_outcome_name(a->outcome),
            a->outcome == DELIVER_RETRY ? retry : NULL, started, duration,
            a->http_status ? status : NULL, a->error[0] ? a->error : NULL,
            a->has_excerpt ? a->excerpt : NULL,
        };
        for (size_t c = 0; c < 9; c++)
            put_array_elem(&cols[c], i == 0, v[c]);
    }
    size_t len;
    for (size_t c = 0; c < 9; c++) {
        buf_putc(&cols[c], '}');
        if (r == 0)
            r = buf_finish(&cols[c], &vals[c], &len);
        buf_deinit(&cols[c]);
    }
    if (op) {
        op->d = d;
        op->n = n;
    }
    if (r == 0 && db_pool_query(d->pool, "deliver_finish", 9, (const char *const *)vals,
                                on_finish, op) == 0) {
        d->finishing = op;
    } else if (op) {
        for (size_t i = 0; i < n; i++) {
            log_json(LOG_ERROR, "cannot record a delivery attempt",
                     "\"delivery\":\"%s\",\"attempt\":%d,\"error\":\"out of memory\"",
                     op->items[i]->id, op->items[i]->attempt);
            attempt_release(op->items[i]); /* the lease brings the row back */
        }
        oc_free(op);
    } else {
        /* Nothing was taken off the queue: give these up to their leases, as above. */
        for (size_t i = 0; i < n && d->fq_head; i++) {
            Attempt *a = d->fq_head;
            d->fq_head = a->fq_next;
            if (!d->fq_head)
                d->fq_tail = NULL;
            log_json(LOG_ERROR, "cannot record a delivery attempt",
                     "\"delivery\":\"%s\",\"attempt\":%d,\"error\":\"out of memory\"",
                     a->id, a->attempt);
            attempt_release(a);
        }
    }
    for (size_t c = 0; c < 9; c++)
        oc_free(vals[c]);
}

/* Builds <endpoint>/transfer/webhook and the request target signed in X-OC-Signature (the
 * URL's path). Returns 0, or -EINVAL for an endpoint that cannot be used as a base URL. */
static int webhook_url(const char *endpoint, char **url, const char **path)
{
    size_t len = strlen(endpoint);
    while (len > 0 && endpoint[len - 1] == '/')
        len--;
    size_t scheme = strncmp(endpoint, "https://", 8) == 0  ? 8
                    : strncmp(endpoint, "http://", 7) == 0 ? 7
                                                           : 0;
    if (!scheme || len <= scheme || len + sizeof(DELIVER_WEBHOOK_PATH) > DELIVER_MAX_URL)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)endpoint[i];
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
            return -EINVAL;
    }
    char *u = oc_malloc(len + sizeof(DELIVER_WEBHOOK_PATH));
    if (!u)
        return -ENOMEM;
    memcpy(u, endpoint, len);
    memcpy(u + len, DELIVER_WEBHOOK_PATH, sizeof(DELIVER_WEBHOOK_PATH));
    *path = strchr(u + scheme, '/');
    *url = u;
    return 0;
}

/* Signs the stored gateway proof in the merchant's form and builds the request. Returns 0;
 * a positive value when the stored proof itself is unusable (why says how; retrying cannot
 * help); or a negative errno. */
static int attempt_build(Deliverer *d, Attempt *a, const char *proof_text, size_t proof_len,
                         CanonForm form, const char **path, char *why, size_t why_len)
{
    json_t *proof = NULL, *body = NULL;
    JsonReadError jerr;
    int r = json_read_strict(proof_text, proof_len, JSON_READ_OBJECT, &proof, &jerr);
    if (r != 0) {
        if (r > 0)
            snprintf(why, why_len, "stored gateway proof is not valid JSON: %s at byte %zu",
                     jerr.reason, jerr.offset);
        return r > 0 ? 1 : r;
    }
    char sig[SIG_HEX_LEN + 1];
    r = proof_sign(proof, d->key, form, sig);
    if (r > 0) {
        snprintf(why, why_len, "stored gateway proof cannot be canonicalised (code %d)", r);
        r = 1;
        goto out;
    }
    if (r < 0)
        goto out;
    body = json_object();
    r = -ENOMEM;
    if (!body || json_object_set(body, "proof", proof) != 0 ||
        json_object_set_new(body, "signature", json_string(sig)) != 0)
        goto out;
    r = canon_write(body, CANON_STRICT, &a->body, &a->body_len);
    if (r > 0) {
        snprintf(why, why_len, "notification body cannot be canonicalised (code %d)", r);
        r = 1;
        goto out;
    }
    if (r < 0)
        goto out;
    r = auth_outbound_headers(d->key, d->cfg->ocid, (int64_t)time(NULL), "POST", *path, a->body,
                              a->body_len, &a->auth);
    if (r == -EINVAL) {
        snprintf(why, why_len, "merchant endpoint path cannot be signed");
        r = 2;
    }
out:
    json_decref(body);
    json_decref(proof);
    return r;
}

/* Starts one claimed attempt. Every path ends in attempt_finish (directly, or through the
 * HTTP client's callback), so every claimed attempt is recorded. */
static void attempt_start(Deliverer *d, const DirSnapshot *snap, const PGresult *res, int row)
{
    Attempt *a = oc_calloc(1, sizeof(*a));
    if (!a) {
        log_json(LOG_ERROR, "cannot start a delivery attempt",
                 "\"delivery\":\"%s\",\"error\":\"out of memory\"", PQgetvalue(res, row, 0));
        return; /* its lease brings it back */
    }
    a->d = d;
    a->phase = PHASE_HTTP;
    snprintf(a->id, sizeof(a->id), "%s", PQgetvalue(res, row, 0));
    a->attempt = (int)strtol(PQgetvalue(res, row, 1), NULL, 10);
    a->merchant = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    a->started_wall_ms = wall_ms();
    a->started_mono_ms = mono_ms();
    a->next = d->attempts;
    if (d->attempts)
        d->attempts->prev = a;
    d->attempts = a;
    d->in_flight++;
    Merchant *m = merchant_get(d, a->merchant);
    if (m) {
        m->in_flight++;
        a->holds_slot = true;
    }

    const Participant *p = snap ? dirsnap_find(snap, a->merchant) : NULL;
    if (!p || !p->enabled || !(p->roles & ROLE_MERCHANT) || !p->endpoint) {
        /* Retried on the schedule rather than declared dead at once: an operator may add the
         * endpoint (or re-enable the merchant) later, and a dead row can still be replayed. */
        attempt_fail_local(a, DELIVER_RETRY,
                           p && p->enabled && (p->roles & ROLE_MERCHANT)
                               ? "merchant has no endpoint"
                               : "merchant has no endpoint (unknown, disabled or not a "
                                 "merchant)");
        return;
    }
    if (PQgetisnull(res, row, 4)) {
        attempt_fail_local(a, DELIVER_DEAD, "payment has no gateway proof");
        return;
    }
    const char *path = NULL;
    int r = webhook_url(p->endpoint, &a->url, &path);
    if (r == -EINVAL) {
        attempt_fail_local(a, DELIVER_RETRY, "merchant endpoint is not a usable URL");
        return;
    }
    char why[160] = "";
    if (r == 0)
        r = attempt_build(d, a, PQgetvalue(res, row, 4), (size_t)PQgetlength(res, row, 4),
                          p->form, &path, why, sizeof(why));
    if (r == 1) {
        /* The proof was fixed at settlement: if it cannot be sent now it never can. */
        attempt_fail_local(a, DELIVER_DEAD, why);
        return;
    }
    if (r == 2) {
        attempt_fail_local(a, DELIVER_RETRY, why);
        return;
    }
    if (r < 0) {
        attempt_fail_local(a, DELIVER_RETRY, r == -ENOMEM ? "out of memory" : "signing failed");
        return;
    }
    snprintf(a->attempt_text, sizeof(a->attempt_text), "%d", a->attempt);
    const char *h[] = {
        "X-OC-ID", a->auth.ocid, "X-OC-Timestamp", a->auth.timestamp,
        "X-OC-Nonce", a->auth.nonce, "X-OC-Signature", a->auth.signature,
        "X-OC-Delivery-Id", a->id, "X-OC-Delivery-Attempt", a->attempt_text, NULL,
    };
    _Static_assert(sizeof(h) == sizeof(a->headers), "header array size");
    memcpy(a->headers, h, sizeof(h));
    r = http_client_post(d->http, a->url, a->headers, a->body, a->body_len, on_http_done, a);
    if (r != 0)
        attempt_fail_local(a, DELIVER_RETRY,
                           r == -ENOMEM ? "out of memory" : "merchant endpoint is not a usable URL");
}

/* ---- claiming ---- */

static void on_claim(void *userdata, DbError err, const PGresult *res)
{
    WorkerQuery *op = userdata;
    Deliverer *d = op->d;
    oc_free(op);
    if (!d)
        return;
    d->claim = NULL;
    if (err != DB_OK) {
        if (!d->db_failing) {
            const char *msg = err == DB_E_QUERY && res
                                  ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                  : NULL;
            char detail[300];
            log_json_str(msg ? msg : "", detail, sizeof(detail));
            log_json(LOG_WARN, "cannot claim deliveries", "\"db_error\":%d,\"detail\":%s",
                     (int)err, detail);
        }
        d->db_failing = true;
        d->more = false; /* the poll timer tries again; no hot loop against a sick database */
        return;
    }
    if (d->db_failing)
        log_json(LOG_INFO, "claiming deliveries again", "%s", "");
    d->db_failing = false;
    int n = PQntuples(res);
    if (n > 0) {
        DirSnapshot *snap = directory_acquire(d->dir);
        for (int i = 0; i < n; i++)
            attempt_start(d, snap, res, i);
        dirsnap_release(snap);
    }
    bool full = (unsigned)n >= d->claim_limit;
    d->more = full || d->capped;
    if (d->rerun || full)
        try_claim(d);
}

static void put_int64_list(Buf *b, bool *first, int64_t v)
{
    buf_printf(b, "%s%" PRId64, *first ? "" : ",", v);
    *first = false;
}

static void try_claim(Deliverer *d)
{
    if (d->stopping)
        return;
    if (d->claim) {
        d->rerun = true;
        return;
    }
    const Config *cfg = d->cfg;
    if (d->in_flight >= cfg->delivery_concurrency) {
        d->more = true; /* a release will call again */
        return;
    }
    unsigned limit = cfg->delivery_concurrency - d->in_flight;
    if (limit > cfg->delivery_batch)
        limit = cfg->delivery_batch;

    /* Merchants to leave alone (open circuit, trial attempt running, at the cap) and those
     * with only some room left; forget merchants with nothing to remember. */
    Buf exclude = BUF_INIT, room_m = BUF_INIT, room_s = BUF_INIT;
    bool ex_first = true, rm_first = true;
    bool capped = false;
    uint64_t now = mono_ms();
    buf_putc(&exclude, '{');
    buf_putc(&room_m, '{');
    buf_putc(&room_s, '{');
    size_t keep = 0;
    for (size_t i = 0; i < d->n_merchants; i++) {
        Merchant *m = &d->merchants[i];
        if (m->in_flight == 0 && m->failures == 0)
            continue; /* dropped */
        d->merchants[keep++] = *m;
        unsigned room;
        if (m->failures >= cfg->delivery_breaker_failures)
            room = now < m->open_until_ms || m->in_flight > 0 ? 0 : 1; /* half-open: one */
        else
            room = m->in_flight >= cfg->delivery_per_merchant
                       ? 0
                       : cfg->delivery_per_merchant - m->in_flight;
        if (room == 0) {
            put_int64_list(&exclude, &ex_first, m->ocid);
            capped |= m->in_flight > 0;
        } else if (room < cfg->delivery_per_merchant) {
            buf_printf(&room_s, "%s%u", rm_first ? "" : ",", room);
            put_int64_list(&room_m, &rm_first, m->ocid);
        }
    }
    d->n_merchants = keep;
    buf_putc(&exclude, '}');
    buf_putc(&room_m, '}');
    buf_putc(&room_s, '}');
    char *ex = NULL, *rm = NULL, *rs = NULL;
    size_t len;
    int r = buf_finish(&exclude, &ex, &len);
    if (r == 0)
        r = buf_finish(&room_m, &rm, &len);
    if (r == 0)
        r = buf_finish(&room_s, &rs, &len);
    buf_deinit(&exclude);
    buf_deinit(&room_m);
    buf_deinit(&room_s);

    WorkerQuery *op = r == 0 ? oc_calloc(1, sizeof(*op)) : NULL;
    if (op) {
        char limit_text[16], lease[16], per[16];
        snprintf(limit_text, sizeof(limit_text), "%u", limit);
        snprintf(lease, sizeof(lease), "%u", cfg->delivery_lease_s);
        snprintf(per, sizeof(per), "%u", cfg->delivery_per_merchant);
        const char *params[7] = { d->worker_id, limit_text, lease, ex, per, rm, rs };
        op->d = d;
        if (db_pool_query(d->pool, "deliver_claim", 7, params, on_claim, op) == 0) {
            d->claim = op;
            d->claim_limit = limit;
            d->capped = capped;
            d->rerun = false;
        } else {
            oc_free(op);
            op = NULL;
        }
    }
    if (!op)
        log_json(LOG_ERROR, "cannot claim deliveries", "\"error\":\"out of memory\"");
    oc_free(ex);
    oc_free(rm);
    oc_free(rs);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    try_claim(arg);
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Deliverer *d = arg;
    d->due_at_ms = 0;
    try_claim(d);
}

/* ---- retention ---- */

static void prune_run(Deliverer *d);

static void prune_done(Deliverer *d)
{
    if (d->pruned > 0)
        log_json(LOG_INFO, "delivery attempts pruned",
                 "\"records\":%" PRIu64 ",\"older_than_s\":%u", d->pruned,
                 d->cfg->delivery_attempt_retention_s);
    d->pruned = 0;
    d->prune_rounds = 0;
}

static void on_prune(void *userdata, DbError err, const PGresult *res)
{
    WorkerQuery *op = userdata;
    Deliverer *d = op->d;
    oc_free(op);
    if (!d)
        return;
    d->prune = NULL;
    if (err != DB_OK) {
        /* The next interval tries again; a sick database is reported by the claims. */
        log_json(LOG_WARN, "cannot prune delivery attempts", "\"db_error\":%d", (int)err);
        prune_done(d);
        return;
    }
    long deleted = PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    if (deleted > 0)
        d->pruned += (uint64_t)deleted;
    /* Something went, so more old records may wait behind: continue at once, but within a
     * bound so one interval never turns into a long stream of deletes. */
    if (deleted > 0 && d->prune_rounds < DELIVER_PRUNE_ROUNDS)
        prune_run(d);
    else
        prune_done(d);
}

static void prune_run(Deliverer *d)
{
    WorkerQuery *op = oc_calloc(1, sizeof(*op));
    if (!op) {
        log_json(LOG_ERROR, "cannot prune delivery attempts", "\"error\":\"out of memory\"");
        prune_done(d);
        return;
    }
    char keep[24], limit[16];
    snprintf(keep, sizeof(keep), "%u", d->cfg->delivery_attempt_retention_s);
    snprintf(limit, sizeof(limit), "%d", DELIVER_PRUNE_BATCH);
    const char *params[2] = { keep, limit };
    op->d = d;
    if (db_pool_query(d->pool, "deliver_prune", 2, params, on_prune, op) != 0) {
        oc_free(op);
        log_json(LOG_ERROR, "statement not prepared", "\"statement\":\"deliver_prune\"");
        prune_done(d);
        return;
    }
    d->prune = op;
    d->prune_rounds++;
}

static void on_prune_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Deliverer *d = arg;
    if (!d->prune)
        prune_run(d);
}

/* ---- lifecycle ---- */

Deliverer *deliverer_new(struct event_base *base, DbPool *pool, const Config *cfg,
                         const PrivateKey *gateway_key, Directory *directory)
{
    if (!base || !pool || !cfg || !gateway_key || !directory || cfg->n_delivery_schedule == 0)
        return NULL;
    Deliverer *d = oc_calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->base = base;
    d->pool = pool;
    d->cfg = cfg;
    d->key = gateway_key;
    d->dir = directory;
    d->max_attempts = (unsigned)cfg->n_delivery_schedule + 1;

    char host[64] = "";
    if (gethostname(host, sizeof(host)) != 0)
        host[0] = '\0';
    host[sizeof(host) - 1] = '\0';
    snprintf(d->worker_id, sizeof(d->worker_id), "%s:%ld:%08x", host[0] ? host : "?",
             (long)getpid(), (unsigned)(random_u64() & 0xffffffffu));

    HttpClientOptions ho = {
        .ca_file = cfg->delivery_ca_file,
        .connect_timeout_ms = cfg->delivery_connect_timeout_ms,
        .total_timeout_ms = cfg->delivery_timeout_ms,
        .max_response = cfg->delivery_max_response,
        .allow_loopback = cfg->outbound_allow_loopback,
        .allow_private = cfg->outbound_allow_private,
    };
    d->http = http_client_new(base, &ho);
    d->poll_ev = event_new(base, -1, EV_PERSIST, on_poll, d);
    d->wake_ev = event_new(base, -1, 0, on_poll, d);
    d->due_ev = event_new(base, -1, 0, on_due, d);
    d->prune_ev = event_new(base, -1, EV_PERSIST, on_prune_tick, d);
    struct timeval tv = { (time_t)(cfg->delivery_poll_ms / 1000),
                          (suseconds_t)(cfg->delivery_poll_ms % 1000) * 1000 };
    struct timeval prune_tv = { DELIVER_PRUNE_INTERVAL_S, 0 };
    if (!d->http || !d->poll_ev || !d->wake_ev || !d->due_ev || !d->prune_ev ||
        event_add(d->poll_ev, &tv) != 0 || event_add(d->prune_ev, &prune_tv) != 0) {
        deliverer_free(d);
        return NULL;
    }
    /* Look at once: rows may have waited, and records aged, while no worker ran. */
    event_active(d->wake_ev, EV_TIMEOUT, 0);
    event_active(d->prune_ev, EV_TIMEOUT, 0);
    log_json(LOG_INFO, "delivery worker started",
             "\"worker\":\"%s\",\"attempts\":%u,\"poll_ms\":%u,\"concurrency\":%u", d->worker_id,
             d->max_attempts, cfg->delivery_poll_ms, cfg->delivery_concurrency);
    return d;
}

void deliverer_wake(Deliverer *d)
{
    if (d)
        event_active(d->wake_ev, EV_TIMEOUT, 0);
}

void deliverer_free(Deliverer *d)
{
    if (!d)
        return;
    d->stopping = true;
    if (d->poll_ev)
        event_free(d->poll_ev);
    if (d->wake_ev)
        event_free(d->wake_ev);
    if (d->due_ev)
        event_free(d->due_ev);
    if (d->prune_ev)
        event_free(d->prune_ev);
    /* Runs on_http_done with NET_E_CANCELLED for every attempt waiting on a merchant, which
     * drops them: their rows stay in_flight and are retaken when the lease ends. */
    http_client_free(d->http);
    unsigned abandoned = 0;
    while (d->attempts) {
        Attempt *a = d->attempts;
        attempt_unlink(d, a);
        abandoned++;
        if (a->phase == PHASE_FINISH) {
            a->d = NULL; /* on_finish frees it when the pool answers or fails it */
        } else {
            attempt_free(a);
        }
    }
    if (d->claim)
        d->claim->d = NULL;
    if (d->prune)
        d->prune->d = NULL;
    if (d->finishing)
        d->finishing->d = NULL;
    if (abandoned)
        log_json(LOG_INFO, "delivery worker stopped with attempts unrecorded",
                 "\"attempts\":%u", abandoned);
    oc_free(d->merchants);
    oc_free(d);
}
