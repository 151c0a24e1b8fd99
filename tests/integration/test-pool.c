/* Integration test of the asynchronous libpq pool (store/pool.h) against the throwaway
 * PostgreSQL that test-pool.sh starts: readiness, 2,000 concurrent queries, server errors,
 * killed backends, timeouts, the queue bound, freeing, and the server stopping and coming
 * back. Every wait is bounded by a timer, so a broken pool fails checks instead of hanging.
 * Only this test uses blocking libpq calls (to kill backends), never the pool. */
#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../unit/testlib.h"
#include "store/pool.h"

#define APP_NAME "ocgate-pool-test"
#define MAIN_TIMEOUT_MS 3000

static struct event_base *base;
static bool in_submit;         /* true while db_pool_query runs */
static int inline_calls;       /* callbacks that ran inside db_pool_query: must stay 0 */
static int res_violations;     /* res present iff DB_OK / DB_E_QUERY: must stay 0 */

static const char *keywords[] = { "dbname", "application_name", NULL };
static const char *values[] = { NULL, APP_NAME, NULL };

static const DbStatement statements[] = {
    { "add_one", "SELECT $1::int + 1", 1 },
    { "slow_add", "SELECT $1::int + 1 FROM pg_sleep(0.005)", 1 },
    { "div", "SELECT 1 / $1::int", 1 },
    { "sleep", "SELECT pg_sleep($1::float8)", 1 },
};

typedef struct Call {
    int calls;
    DbError err;
    long value;
    bool has_value;
    char sqlstate[8];
    uint64_t done_us;
} Call;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void on_result(void *arg, DbError err, const PGresult *res)
{
    Call *c = arg;
    if (in_submit)
        inline_calls++;
    if ((err == DB_OK || err == DB_E_QUERY) != (res != NULL))
        res_violations++;
    c->calls++;
    c->err = err;
    c->done_us = now_us();
    if (err == DB_OK && res && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        c->value = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        c->has_value = true;
    }
    if (err == DB_E_QUERY && res) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st ? st : "");
    }
}

static int submit(DbPool *pool, const char *stmt, const char *arg, Call *c)
{
    const char *vals[1] = { arg };
    in_submit = true;
    int rc = db_pool_query(pool, stmt, 1, vals, on_result, c);
    in_submit = false;
    return rc;
}

static int submit_int(DbPool *pool, const char *stmt, int v, Call *c)
{
    char buf[16];
    snprintf(buf, sizeof(buf), "%d", v);
    return submit(pool, stmt, buf, c);
}

/* For queries the test does not look at separately: a refusal is counted and checked at the
 * end. */
static int unexpected_refusals;

static void submit_ok(DbPool *pool, const char *stmt, const char *arg, Call *c)
{
    unexpected_refusals += submit(pool, stmt, arg, c) != 0;
}

static void submit_int_ok(DbPool *pool, const char *stmt, int v, Call *c)
{
    unexpected_refusals += submit_int(pool, stmt, v, c) != 0;
}

/* ---- bounded waiting ---- */

typedef bool (*CondFn)(const void *arg);

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    *(bool *)arg = true;
}

/* Runs the loop until cond(arg) holds or timeout_ms pass; returns the final cond. */
static bool run_until(CondFn cond, const void *arg, unsigned timeout_ms)
{
    bool expired = false;
    struct event *t = evtimer_new(base, on_deadline, &expired);
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    if (!t || evtimer_add(t, &tv) < 0) {
        printf("Bail out! cannot arm a timer\n");
        exit(1);
    }
    while (!(cond && cond(arg)) && !expired)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return cond && cond(arg);
}

static void run_for(unsigned ms)
{
    (void)run_until(NULL, NULL, ms);
}

typedef struct ReadyArg {
    const DbPool *pool;
    unsigned n;
} ReadyArg;

static bool ready_is(const void *arg)
{
    const ReadyArg *r = arg;
    return db_pool_ready(r->pool) == r->n;
}

static bool wait_ready(const DbPool *pool, unsigned n, unsigned timeout_ms)
{
    ReadyArg r = { pool, n };
    return run_until(ready_is, &r, timeout_ms);
}

typedef struct Batch {
    const Call *calls;
    int n;
} Batch;

static bool batch_done(const void *arg)
{
    const Batch *b = arg;
    for (int i = 0; i < b->n; i++)
        if (b->calls[i].calls == 0)
            return false;
    return true;
}

static bool wait_calls(const Call *calls, int n, unsigned timeout_ms)
{
    Batch b = { calls, n };
    return run_until(batch_done, &b, timeout_ms);
}

static DbPool *make_pool(unsigned size, unsigned max_queue, unsigned query_timeout_ms)
{
    DbPoolOptions o = {
        .conn_keywords = keywords,
        .conn_values = values,
        .size = size,
        .statements = statements,
        .n_statements = OC_ARRAY_LEN(statements),
        .max_queue = max_queue,
        .query_timeout_ms = query_timeout_ms,
        .connect_timeout_ms = 2000,
    };
    DbPool *pool = db_pool_new(base, &o);
    if (!pool) {
        printf("Bail out! db_pool_new failed\n");
        exit(1);
    }
    return pool;
}

/* Counts calls that did not end exactly once with DB_OK and value+1 (value = index + base). */
static int count_wrong_adds(const Call *calls, int n, int first_value)
{
    int wrong = 0;
    for (int i = 0; i < n; i++)
        if (calls[i].calls != 1 || calls[i].err != DB_OK || !calls[i].has_value ||
            calls[i].value != first_value + i + 1)
            wrong++;
    return wrong;
}

/* ---- a callback that submits the next query ---- */

typedef struct Chain {
    DbPool *pool;
    int left;
    int done;
    int failures;
} Chain;

static void on_chain(void *arg, DbError err, const PGresult *res)
{
    Chain *ch = arg;
    if (in_submit)
        inline_calls++;
    if (err != DB_OK || !res || strtol(PQgetvalue(res, 0, 0), NULL, 10) != ch->done + 1)
        ch->failures++;
    ch->done++;
    if (ch->left-- > 0) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", ch->done);
        const char *vals[1] = { buf };
        in_submit = true;
        if (db_pool_query(ch->pool, "add_one", 1, vals, on_chain, ch) != 0)
            ch->failures++;
        in_submit = false;
    }
}

static bool chain_done(const void *arg)
{
    const Chain *ch = arg;
    return ch->left < 0;
}

/* ---- db_pool_free from inside a callback ---- */

typedef struct FreeCtx {
    DbPool *pool;
    const Call *others;
    int n_others;
    int delivered_before_return;
    bool freed;
} FreeCtx;

static void on_free_pool(void *arg, DbError err, const PGresult *res)
{
    (void)err;
    (void)res;
    FreeCtx *x = arg;
    db_pool_free(x->pool);
    for (int i = 0; i < x->n_others; i++)
        x->delivered_before_return += x->others[i].calls == 1 &&
                                      x->others[i].err == DB_E_UNAVAILABLE;
    x->freed = true;
}

static bool freed(const void *arg)
{
    return ((const FreeCtx *)arg)->freed;
}

/* ---- the scenarios ---- */

static void test_many(DbPool *pool)
{
    enum { N = 2000 };
    Call *calls = calloc(N, sizeof(*calls));
    if (!calls) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    int refused = 0;
    for (int i = 0; i < N; i++)
        refused += submit_int(pool, "add_one", i, &calls[i]) != 0;
    CHECK_INT(refused, 0, "(b) 2000 concurrent queries are accepted");
    bool all = wait_calls(calls, N, 30000);
    run_for(50); /* a second delivery would show up now */
    CHECK(all, "(b) all 2000 callbacks ran within 30 s");
    CHECK_INT(count_wrong_adds(calls, N, 0), 0,
              "(b) each callback ran exactly once with DB_OK and $1 + 1");
    DbPoolStats st;
    db_pool_stats(pool, &st);
    CHECK(st.dispatched >= N && st.waiting == 0 && st.in_use == 0 && st.ready == 3,
          "(b) stats: %llu dispatched, none waiting or in use, 3 ready",
          (unsigned long long)st.dispatched);
    free(calls);

    Chain ch = { pool, 99, 0, 0 };
    const char *zero[1] = { "0" };
    CHECK_INT(db_pool_query(pool, "add_one", 1, zero, on_chain, &ch), 0, "(b) chain starts");
    bool chained = run_until(chain_done, &ch, 10000);
    CHECK(chained && ch.done == 100 && ch.failures == 0,
          "(b) callbacks that submit the next query: a 100-query chain completes (%d done, "
          "%d failures)", ch.done, ch.failures);
}

static void test_query_error(DbPool *pool)
{
    Call c = { 0 }, after = { 0 };
    CHECK_INT(submit(pool, "div", "0", &c), 0, "(c) division by zero is accepted");
    wait_calls(&c, 1, 5000);
    CHECK(c.calls == 1 && c.err == DB_E_QUERY, "(c) it fails with DB_E_QUERY (got %d)", c.err);
    CHECK_STR(c.sqlstate, "22012", "(c) res carries SQLSTATE 22012");
    CHECK_INT(submit(pool, "add_one", "41", &after), 0, "(c) next query accepted");
    wait_calls(&after, 1, 5000);
    CHECK(after.err == DB_OK && after.value == 42 && db_pool_ready(pool) == 3,
          "(c) a server error does not cost the connection");
}

static void test_bad_args(DbPool *pool)
{
    Call c = { 0 };
    const char *two[2] = { "1", "2" };
    CHECK_INT(submit(pool, "no_such_statement", "1", &c), -EINVAL,
              "(d) an unknown statement name gives -EINVAL");
    CHECK_INT(db_pool_query(pool, "add_one", 2, two, on_result, &c), -EINVAL,
              "(d) a wrong parameter count gives -EINVAL");
    CHECK_INT(db_pool_query(pool, "add_one", 1, two, NULL, &c), -EINVAL,
              "(d) a NULL callback gives -EINVAL");
    run_for(100);
    CHECK_INT(c.calls, 0, "(d) refused queries never call back");
}

/* Kills the pool's backends from a separate, blocking connection; returns how many. */
static int kill_pool_backends(const char *url)
{
    PGconn *k = PQconnectdb(url);
    int killed = -1;
    if (PQstatus(k) == CONNECTION_OK) {
        PGresult *r = PQexec(k, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                                "FROM pg_stat_activity WHERE application_name = '" APP_NAME "'");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            killed = atoi(PQgetvalue(r, 0, 0));
        else
            printf("# terminate failed: %s", PQresultErrorMessage(r));
        PQclear(r);
    } else {
        printf("# killer connection failed: %s", PQerrorMessage(k));
    }
    PQfinish(k);
    return killed;
}

static void test_killed_backends(DbPool *pool, const char *url)
{
    enum { N = 200 };
    Call calls[N] = { 0 };
    int refused = 0;
    for (int i = 0; i < N; i++)
        refused += submit_int(pool, "slow_add", i, &calls[i]) != 0;
    CHECK_INT(refused, 0, "(e) 200 slow queries accepted");
    run_for(30); /* some done, three running, the rest queued */
    CHECK_INT(kill_pool_backends(url), 3, "(e) pg_terminate_backend hit the pool's 3 backends");
    bool all = wait_calls(calls, N, 15000);
    run_for(50);
    int ok = 0, unavailable = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        if (calls[i].calls != 1)
            wrong++;
        else if (calls[i].err == DB_OK && calls[i].value == i + 1)
            ok++;
        else if (calls[i].err == DB_E_UNAVAILABLE)
            unavailable++;
        else
            wrong++;
    }
    printf("# (e) %d ok, %d unavailable, %d wrong\n", ok, unavailable, wrong);
    CHECK(all && wrong == 0,
          "(e) every callback ran exactly once, with DB_OK (right value) or DB_E_UNAVAILABLE");
    CHECK(unavailable >= 1 && ok >= 1,
          "(e) some queries were lost with their connection, the others succeeded");
    CHECK(wait_ready(pool, 3, 5000), "(e) the pool reconnects by itself (3 ready)");
    Call after[10] = { 0 };
    for (int i = 0; i < 10; i++)
        submit_int_ok(pool, "add_one", 100 + i, &after[i]);
    wait_calls(after, 10, 5000);
    CHECK_INT(count_wrong_adds(after, 10, 100), 0, "(e) new queries succeed afterwards");
}

static void test_timeout(void)
{
    DbPool *pool = make_pool(1, 10, 300);
    CHECK(wait_ready(pool, 1, 5000), "(f) a 1-connection pool with a 300 ms timeout is ready");
    Call slow = { 0 }, queued = { 0 }, later = { 0 };
    uint64_t t0 = now_us();
    CHECK_INT(submit(pool, "sleep", "2", &slow), 0, "(f) pg_sleep(2) accepted");
    run_for(250);
    /* Waits behind the sleep; its deadline is after the reconnect that follows the timeout. */
    CHECK_INT(submit(pool, "add_one", "7", &queued), 0, "(f) a query queued behind it");
    wait_calls(&slow, 1, 3000);
    double ms = (double)(slow.done_us - t0) / 1000.0;
    CHECK(slow.calls == 1 && slow.err == DB_E_TIMEOUT, "(f) the slow query fails with "
          "DB_E_TIMEOUT (got %d)", slow.err);
    CHECK(slow.calls == 1 && ms >= 300 && ms <= 1000, "(f) ... after %.0f ms (300..1000)", ms);
    wait_calls(&queued, 1, 3000);
    CHECK(queued.calls == 1 && queued.err == DB_OK && queued.value == 8,
          "(f) the replacement connection serves the waiting query (got %d)", queued.err);
    CHECK(wait_ready(pool, 1, 3000), "(f) the pool recovers (1 ready)");
    submit_ok(pool, "add_one", "1", &later);
    wait_calls(&later, 1, 3000);
    CHECK(later.err == DB_OK && later.value == 2, "(f) new queries succeed");
    db_pool_free(pool);
}

static void test_queue_bound(void)
{
    DbPool *pool = make_pool(1, 10, 5000);
    CHECK(wait_ready(pool, 1, 5000), "(g) a 1-connection pool with max_queue 10 is ready");
    Call sleeper = { 0 }, q[11] = { 0 };
    submit_ok(pool, "sleep", "0.5", &sleeper);
    int refused = 0;
    for (int i = 0; i < 11; i++)
        refused += submit_int(pool, "add_one", i, &q[i]) != 0;
    CHECK_INT(refused, 0, "(g) db_pool_query returns 0 even when the queue is full");
    DbPoolStats st;
    db_pool_stats(pool, &st);
    CHECK(st.in_use == 1 && st.waiting == 10, "(g) stats: 1 in use, 10 waiting (got %u, %u)",
          st.in_use, st.waiting);
    CHECK_INT(q[10].calls, 0, "(g) the refusal is not delivered inside db_pool_query");
    wait_calls(&q[10], 1, 400);
    CHECK(q[10].calls == 1 && q[10].err == DB_E_BUSY, "(g) the 12th query gets DB_E_BUSY");
    CHECK_INT(sleeper.calls, 0, "(g) ... at once, while the sleep still runs");
    bool all = wait_calls(q, 10, 5000) && wait_calls(&sleeper, 1, 5000);
    CHECK(all && sleeper.err == DB_OK && count_wrong_adds(q, 10, 0) == 0,
          "(g) the sleep and the 10 queued queries succeed");

    /* db_pool_free from a callback: the queued queries fail before it returns. */
    Call rest[2] = { 0 };
    FreeCtx x = { pool, rest, 2, 0, false };
    const char *nap[1] = { "0.05" };
    CHECK_INT(db_pool_query(pool, "sleep", 1, nap, on_free_pool, &x), 0,
              "(g) a query whose callback frees the pool");
    submit_ok(pool, "add_one", "1", &rest[0]);
    submit_ok(pool, "add_one", "2", &rest[1]);
    CHECK(run_until(freed, &x, 3000), "(g) db_pool_free ran inside a callback");
    CHECK_INT(x.delivered_before_return, 2,
              "(g) ... and called the waiting queries back (DB_E_UNAVAILABLE) before returning");
    run_for(50);
    CHECK(rest[0].calls == 1 && rest[1].calls == 1, "(g) ... exactly once");
}

/* A statement that does not parse: connections never become ready, the reason is kept, and
 * queries fail with DB_E_UNAVAILABLE at their deadline instead of hanging. */
static void test_bad_statement(void)
{
    static const DbStatement bad[] = { { "broken_stmt", "SELEC 1", 0 } };
    DbPoolOptions o = {
        .conn_keywords = keywords, .conn_values = values, .size = 1,
        .statements = bad, .n_statements = 1, .max_queue = 10,
        .query_timeout_ms = 200, .connect_timeout_ms = 2000,
    };
    DbPool *pool = db_pool_new(base, &o);
    if (!pool) {
        printf("Bail out! db_pool_new failed\n");
        exit(1);
    }
    Call c = { 0 };
    unexpected_refusals += db_pool_query(pool, "broken_stmt", 0, NULL, on_result, &c) != 0;
    bool done = wait_calls(&c, 1, 3000);
    CHECK(done && c.err == DB_E_UNAVAILABLE && db_pool_ready(pool) == 0,
          "a pool whose statement fails to prepare is never ready; queries get DB_E_UNAVAILABLE");
    CHECK(strstr(db_pool_last_error(pool), "broken_stmt") &&
          strstr(db_pool_last_error(pool), "syntax error"),
          "... and db_pool_last_error names the statement and the reason: %s",
          db_pool_last_error(pool));
    db_pool_free(pool);
    DbPoolOptions zero = o;
    zero.size = 0;
    CHECK(db_pool_new(base, &zero) == NULL, "db_pool_new refuses a pool of 0 connections");
}

static void test_server_down(DbPool *pool)
{
    const char *stop = getenv("OCGATE_TEST_PG_STOP"), *start = getenv("OCGATE_TEST_PG_START");
    CHECK(stop && start, "(h) the harness says how to stop and start PostgreSQL");
    if (!stop || !start)
        return;
    fflush(stdout);
    CHECK_INT(system(stop), 0, "(h) PostgreSQL stopped");
    CHECK(wait_ready(pool, 0, 3000), "(h) the pool notices: no connection ready");
    DbPoolStats before;
    db_pool_stats(pool, &before);

    enum { N = 20 };
    Call calls[N] = { 0 };
    uint64_t t0 = now_us();
    for (int i = 0; i < N; i++)
        submit_int_ok(pool, "add_one", i, &calls[i]);
    bool all = wait_calls(calls, N, MAIN_TIMEOUT_MS + 3000);
    int unavailable = 0;
    uint64_t last = t0;
    for (int i = 0; i < N; i++) {
        unavailable += calls[i].calls == 1 && calls[i].err == DB_E_UNAVAILABLE;
        if (calls[i].done_us > last)
            last = calls[i].done_us;
    }
    double ms = (double)(last - t0) / 1000.0;
    CHECK(all && unavailable == N, "(h) every query fails with DB_E_UNAVAILABLE (%d of %d)",
          unavailable, N);
    CHECK(all && ms <= MAIN_TIMEOUT_MS + 1000, "(h) ... within the query timeout: %.0f ms", ms);
    DbPoolStats after;
    db_pool_stats(pool, &after);
    CHECK(after.reconnects > before.reconnects && after.ready == 0,
          "(h) it keeps trying to reconnect (%llu more attempts): %s",
          (unsigned long long)(after.reconnects - before.reconnects), db_pool_last_error(pool));

    fflush(stdout);
    CHECK_INT(system(start), 0, "(h) PostgreSQL started again");
    CHECK(wait_ready(pool, 3, 5000), "(h) the pool reconnects by itself (3 ready)");
    Call again[10] = { 0 };
    for (int i = 0; i < 10; i++)
        submit_int_ok(pool, "add_one", i, &again[i]);
    wait_calls(again, 10, 5000);
    CHECK_INT(count_wrong_adds(again, 10, 0), 0, "(h) queries succeed again");
}

static void test_free_in_flight(DbPool *pool)
{
    Call calls[5] = { 0 };
    for (int i = 0; i < 5; i++)
        submit_int_ok(pool, "add_one", i, &calls[i]);
    db_pool_free(pool);
    int unavailable = 0;
    for (int i = 0; i < 5; i++)
        unavailable += calls[i].calls == 1 && calls[i].err == DB_E_UNAVAILABLE;
    CHECK_INT(unavailable, 5, "db_pool_free calls back in-flight and queued queries "
              "(DB_E_UNAVAILABLE) before it returns");
    run_for(50);
    int twice = 0;
    for (int i = 0; i < 5; i++)
        twice += calls[i].calls != 1;
    CHECK_INT(twice, 0, "... and never again");
    db_pool_free(NULL);
}

int main(void)
{
    const char *url = getenv("OCGATE_DATABASE_URL");
    if (!url || !*url) {
        printf("Bail out! OCGATE_DATABASE_URL is not set (run through test-pool.sh)\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    values[0] = url;
    base = event_base_new();
    if (!base) {
        printf("Bail out! event_base_new failed\n");
        return 1;
    }

    DbPool *pool = make_pool(3, 5000, MAIN_TIMEOUT_MS);
    bool up = wait_ready(pool, 3, 5000);
    CHECK(up, "(a) a pool of 3 connections is ready within 5 s");
    if (!up)
        printf("#   last error: %s\n", db_pool_last_error(pool));
    test_many(pool);
    test_query_error(pool);
    test_bad_args(pool);
    test_killed_backends(pool, url);
    test_timeout();
    test_queue_bound();
    test_bad_statement();
    test_server_down(pool);
    test_free_in_flight(pool);

    CHECK_INT(unexpected_refusals, 0, "db_pool_query accepted every well-formed query");
    CHECK_INT(inline_calls, 0, "no callback ever ran inside db_pool_query");
    CHECK_INT(res_violations, 0, "res is non-NULL exactly for DB_OK and DB_E_QUERY");
    event_base_free(base);
    return tl_done();
}
