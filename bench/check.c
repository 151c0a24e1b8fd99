/* The load generator's correctness checks, run after the measured window (loadgen.h):
 * every notification the receiver recorded is verified with ocgate's own protocol code (the
 * X-OC-* request signature and the gateway proof's signature, both against the gateway's
 * published key, plus every field against what was settled), and the database is asked
 * whether each settled payment was completed exactly once, credited once with a balanced
 * ledger transaction and notified once. Blocking libpq is fine here: no loop is running. */
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/loadgen.h"
#include "proto/json.h"
#include "proto/proof.h"
#include "proto/sigstr.h"
#include "util/alloc.h"

#define QUEUE_WAIT_MS 10000

static int report(const char *name, size_t bad, const char *detail)
{
    if (bad)
        printf("check %s: FAILED (%zu; %s)\n", name, bad, detail);
    else
        printf("check %s: ok\n", name);
    return bad ? 1 : 0;
}

/* Index i of "bench-<run>-<i>" (or "bt-<run>-<i>" with the other prefix), or SIZE_MAX. */
static size_t run_index(const LgRun *run, const char *prefix, const char *s, size_t len)
{
    char want[64];
    int wl = snprintf(want, sizeof(want), "%s-%s-", prefix, run->run_id);
    if (wl < 0 || len <= (size_t)wl || len - (size_t)wl > 9 || memcmp(s, want, (size_t)wl))
        return SIZE_MAX;
    size_t i = 0;
    for (size_t k = (size_t)wl; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return SIZE_MAX;
        i = i * 10 + (size_t)(s[k] - '0');
    }
    return i < run->opt->n ? i : SIZE_MAX;
}

/* Verifies one notification; returns the item it settles, or SIZE_MAX with why filled. */
static size_t verify_one(LgRun *run, const Received *r, char *why, size_t why_len)
{
    const LgOptions *o = run->opt;
    SigHeaders sh;
    if (!r->body || !r->path || !r->ocid || !r->timestamp || !r->nonce || !r->signature ||
        sigstr_parse_headers(r->ocid, strlen(r->ocid), r->timestamp, strlen(r->timestamp),
                             r->nonce, strlen(r->nonce), r->signature, strlen(r->signature),
                             &sh) != 0) {
        snprintf(why, why_len, "X-OC-* headers missing or malformed");
        return SIZE_MAX;
    }
    if (sh.ocid != o->gateway_ocid || !r->delivery_id) {
        snprintf(why, why_len, "X-OC-ID is not the gateway's, or no X-OC-Delivery-Id");
        return SIZE_MAX;
    }
    char *msg;
    size_t msg_len;
    if (sigstr_request(&sh, "POST", r->path, r->body, r->body_len, &msg, &msg_len) != 0) {
        snprintf(why, why_len, "request target cannot be signed");
        return SIZE_MAX;
    }
    int v = sig_verify(&o->gateway_pub, msg, msg_len, r->signature, strlen(r->signature));
    oc_free(msg);
    if (v != 0) {
        snprintf(why, why_len, "X-OC-Signature does not verify with the gateway key");
        return SIZE_MAX;
    }
    json_t *root = NULL;
    if (json_read_strict(r->body, r->body_len, JSON_READ_OBJECT, &root, NULL) != 0) {
        snprintf(why, why_len, "body is not strict JSON");
        return SIZE_MAX;
    }
    size_t idx = SIZE_MAX;
    Proof p;
    const char *sig;
    size_t sig_len;
    if (proof_parse_envelope(root, &p, &sig, &sig_len, NULL) != 0) {
        snprintf(why, why_len, "body is not a proof envelope");
        goto out;
    }
    if (proof_verify(&p, &o->gateway_pub, CANON_STRICT, sig, sig_len) != 0) {
        snprintf(why, why_len, "gateway proof signature does not verify");
        goto out;
    }
    size_t i = p.to_reference ? run_index(run, "bench", p.to_reference, p.to_reference_len)
                              : SIZE_MAX;
    if (i == SIZE_MAX) {
        snprintf(why, why_len, "to.reference is not one of this run's payments");
        goto out;
    }
    const Item *it = &run->items[i];
    int64_t merchant = o->merchants[it->merchant];
    char path[96], payer_ref[48];
    snprintf(path, sizeof(path), "/m/%" PRId64 "/transfer/webhook", merchant);
    snprintf(payer_ref, sizeof(payer_ref), "payer-%zu", i);
    if (p.issuer != o->gateway_ocid || p.to_ocid != merchant || strcmp(r->path, path) != 0 ||
        p.txid_len != strlen(it->txid) || memcmp(p.txid, it->txid, p.txid_len) != 0 ||
        p.amount_len != strlen(o->amount) || memcmp(p.amount_text, o->amount, p.amount_len) ||
        p.currency_len != strlen(o->currency) ||
        memcmp(p.currency, o->currency, p.currency_len) || p.from_ocid != o->payer_ocid ||
        !p.from_reference || p.from_reference_len != strlen(payer_ref) ||
        memcmp(p.from_reference, payer_ref, p.from_reference_len) != 0) {
        snprintf(why, why_len, "a proof field or the endpoint differs from what was settled");
        goto out;
    }
    idx = i;
out:
    json_decref(root);
    return idx;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int check_notifications(LgRun *run, double *lag_p99_ms)
{
    const LgOptions *o = run->opt;
    size_t bad = 0;
    char first[160] = "", why[160];
    for (size_t k = 0; k < run->n_recv; k++) {
        const Received *r = &run->recv[k];
        size_t i = verify_one(run, r, why, sizeof(why));
        if (i == SIZE_MAX) {
            if (!bad++)
                snprintf(first, sizeof(first), "%s", why);
            continue;
        }
        Item *it = &run->items[i];
        if (!it->received || r->t_us < it->t_recv_us)
            it->t_recv_us = r->t_us;
        it->received++;
    }
    int failed = report("every notification verifies (X-OC-Signature, proof signature, fields)",
                        bad, first);
    size_t missing = 0, dup = 0, stray = 0, n_lag = 0;
    uint64_t *lag = oc_calloc(run->n_ok ? run->n_ok : 1, sizeof(uint64_t));
    for (size_t i = 0; i < o->n; i++) {
        const Item *it = &run->items[i];
        if (it->state == ITEM_OK) {
            missing += it->received == 0;
            dup += it->received > 1;
            if (it->received && lag)
                lag[n_lag++] = it->t_recv_us > it->t_done_us ? it->t_recv_us - it->t_done_us : 0;
        } else if (it->state != ITEM_FAILED) {
            stray += it->received > 0;
        }
    }
    failed += report("every settled payment notified", missing, "never received");
    failed += report("no payment notified twice", dup, "received more than once");
    failed += report("no notification for an unsettled payment", stray, "stray notification");
    if (lag && n_lag) {
        qsort(lag, n_lag, sizeof(uint64_t), cmp_u64);
        size_t rank = (size_t)(0.99 * (double)n_lag + 0.999999);
        *lag_p99_ms = (double)lag[(rank ? rank : 1) - 1] / 1000.0;
    }
    oc_free(lag);
    return failed;
}

static PGresult *query(PGconn *db, const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        printf("check database query: FAILED (%s)\n", PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    return res;
}

/* One row per payment of the run: what the database holds about it. */
static const char per_payment_sql[] =
    "WITH p AS (SELECT txid, reference, status, amount, merchant_ocid FROM payments "
    "           WHERE reference LIKE $1), "
    "pr AS (SELECT payment_txid, count(*) AS n, "
    "              count(*) FILTER (WHERE outcome = 'credited') AS credited "
    "         FROM proofs WHERE payment_txid IN (SELECT txid FROM p) GROUP BY 1), "
    "lt AS (SELECT lt.payment_txid, count(DISTINCT lt.id) FILTER (WHERE lt.kind = 'settlement') "
    "              AS settlements, sum(le.amount) AS total, "
    "              sum(le.amount) FILTER (WHERE le.account = 'merchant:' || lt.merchant_ocid) "
    "              AS credit "
    "         FROM ledger_transactions lt JOIN ledger_entries le ON le.ledger_tx_id = lt.id "
    "        WHERE lt.payment_txid IN (SELECT txid FROM p) GROUP BY 1), "
    "d AS (SELECT payment_txid, count(*) AS n, "
    "             count(*) FILTER (WHERE state = 'delivered') AS delivered "
    "        FROM deliveries WHERE payment_txid IN (SELECT txid FROM p) GROUP BY 1), "
    "ex AS (SELECT pr.payment_txid, count(*) AS n FROM exceptions e "
    "         JOIN proofs pr ON pr.id = e.proof_id "
    "        WHERE pr.payment_txid IN (SELECT txid FROM p) GROUP BY 1) "
    "SELECT p.reference, p.txid, p.status, coalesce(pr.n, 0), coalesce(pr.credited, 0), "
    "       coalesce(lt.settlements, 0), coalesce(lt.total, 0) = 0, "
    "       coalesce(lt.credit, 0) = p.amount, coalesce(d.n, 0), coalesce(d.delivered, 0), "
    "       coalesce(ex.n, 0) "
    "  FROM p LEFT JOIN pr ON pr.payment_txid = p.txid LEFT JOIN lt ON lt.payment_txid = p.txid "
    "  LEFT JOIN d ON d.payment_txid = p.txid LEFT JOIN ex ON ex.payment_txid = p.txid";

void lg_wait_queue(LgRun *run)
{
    run->queue_left = -1;
    run->queue_waited_ms = 0;
    PGconn *db = PQconnectdb(run->opt->db_conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        PQfinish(db);
        return;
    }
    char like[64];
    snprintf(like, sizeof(like), "bench-%s-%%", run->run_id);
    const char *params[1] = { like };
    for (;;) {
        PGresult *res = query(db,
            "SELECT count(*) FROM deliveries d JOIN payments p ON p.txid = d.payment_txid "
            "WHERE p.reference LIKE $1 AND d.state IN ('pending', 'in_flight')", 1, params);
        if (!res)
            break;
        run->queue_left = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (run->queue_left == 0 || run->queue_waited_ms >= QUEUE_WAIT_MS)
            break;
        usleep(50000);
        run->queue_waited_ms += 50;
    }
    PQfinish(db);
}

static int check_database(LgRun *run)
{
    const LgOptions *o = run->opt;
    PGconn *db = PQconnectdb(o->db_conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        printf("check database reachable: FAILED (%s)\n", PQerrorMessage(db));
        PQfinish(db);
        return 1;
    }
    int failed = 0;
    char like[64];
    snprintf(like, sizeof(like), "bench-%s-%%", run->run_id);
    const char *params[1] = { like };

    char detail[96];
    snprintf(detail, sizeof(detail), "still queued after a further %ld ms",
             run->queue_waited_ms);
    failed += run->queue_left < 0 ? report("delivery queue empty", 1, "not asked")
                                  : report("delivery queue empty", (size_t)run->queue_left,
                                           detail);

    PGresult *res = query(db, per_payment_sql, 1, params);
    if (!res) {
        PQfinish(db);
        return failed + 1;
    }
    unsigned char *seen = oc_calloc(o->n, 1);
    size_t not_completed = 0, proofs = 0, ledger = 0, deliveries = 0, untouched = 0, foreign = 0,
           exceptions = 0, completed = 0;
    for (int row = 0; seen && row < PQntuples(res); row++) {
        const char *ref = PQgetvalue(res, row, 0);
        size_t i = run_index(run, "bench", ref, strlen(ref));
        if (i == SIZE_MAX || seen[i] || strcmp(PQgetvalue(res, row, 1), run->items[i].txid)) {
            foreign++;
            continue;
        }
        seen[i] = 1;
        const Item *it = &run->items[i];
        bool is_completed = strcmp(PQgetvalue(res, row, 2), "completed") == 0;
        completed += is_completed;
        long n_proofs = strtol(PQgetvalue(res, row, 3), NULL, 10);
        long n_credited = strtol(PQgetvalue(res, row, 4), NULL, 10);
        long n_settle = strtol(PQgetvalue(res, row, 5), NULL, 10);
        bool balanced = PQgetvalue(res, row, 6)[0] == 't';
        bool credit_ok = PQgetvalue(res, row, 7)[0] == 't';
        long n_deliv = strtol(PQgetvalue(res, row, 8), NULL, 10);
        long n_delivered = strtol(PQgetvalue(res, row, 9), NULL, 10);
        long n_exc = strtol(PQgetvalue(res, row, 10), NULL, 10);
        exceptions += n_exc != 0;
        if (it->state == ITEM_OK) {
            not_completed += !is_completed;
            proofs += n_proofs != 1 || n_credited != 1;
            ledger += n_settle != 1 || !balanced || !credit_ok;
            deliveries += n_deliv != 1 || n_delivered != 1;
        } else if (it->state == ITEM_CREATED) {
            untouched += is_completed || n_proofs || n_settle || n_deliv;
        }
    }
    size_t absent = 0;
    for (size_t i = 0; seen && i < o->n; i++)
        absent += !seen[i] && (run->items[i].state == ITEM_OK ||
                               run->items[i].state == ITEM_CREATED);
    PQclear(res);
    oc_free(seen);
    failed += report("every created payment is in the database", absent, "missing");
    failed += report("no unexpected payment for this run", foreign, "unknown reference or txid");
    failed += report("every settled payment completed", not_completed, "not completed");
    snprintf(detail, sizeof(detail), "completed in the database: %zu, settled: %zu", completed,
             run->n_ok);
    failed += report("completed exactly once (one proof, credited)", proofs, detail);
    failed += report("one balanced settlement crediting the merchant the amount", ledger,
                     "ledger differs");
    failed += report("one notification row, delivered", deliveries, "delivery row differs");
    failed += report("no exception", exceptions, "exceptions for this run's payments");
    failed += report("payments never settled are untouched", untouched, "changed");

    res = query(db,
        "SELECT count(*) FROM (SELECT ledger_tx_id FROM ledger_entries "
        "GROUP BY ledger_tx_id, currency HAVING sum(amount) <> 0) x", 0, NULL);
    if (!res) {
        failed++;
    } else {
        failed += report("the whole ledger balances",
                         (size_t)strtoul(PQgetvalue(res, 0, 0), NULL, 10),
                         "unbalanced ledger transactions");
        PQclear(res);
    }
    PQfinish(db);
    return failed;
}

int lg_db_counters(const char *conninfo, double *commits, double *wal_syncs)
{
    PGconn *db = PQconnectdb(conninfo);
    int r = -1;
    if (PQstatus(db) == CONNECTION_OK) {
        PGresult *res = PQexec(db,
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),"
            " (SELECT wal_sync FROM pg_stat_wal)");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            *commits = strtod(PQgetvalue(res, 0, 0), NULL);
            *wal_syncs = strtod(PQgetvalue(res, 0, 1), NULL);
            r = 0;
        }
        PQclear(res);
    }
    PQfinish(db);
    return r;
}

int lg_check_run(LgRun *run, double *lag_p99_ms)
{
    int failed = check_notifications(run, lag_p99_ms);
    failed += check_database(run);
    return failed;
}
