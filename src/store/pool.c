/* Asynchronous PostgreSQL connection pool (pool.h): one state machine per connection
 * (connecting → preparing → idle ⇄ busy, and on any failure back to a jittered backoff), a
 * deadline-ordered FIFO of waiting queries, and a deferred-delivery list so that callbacks
 * never run inside db_pool_query and always run from one place. libpq is only ever driven
 * through its non-blocking calls, with libevent watching PQsocket. */
#include "store/pool.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

typedef enum ConnState {
    CONN_BACKOFF,    /* down; the timer starts the next attempt */
    CONN_CONNECTING, /* PQconnectPoll in progress; the timer is the connect timeout */
    CONN_PREPARING,  /* sending the statements one by one; same timer */
    CONN_IDLE,       /* up and prepared; watching for EOF and notifications */
    CONN_BUSY,       /* one query in flight; the timer is its deadline */
} ConnState;

typedef struct DbQuery DbQuery;
struct DbQuery {
    DbQuery *next;
    const DbStatement *stmt;
    int n_params;
    char **values;       /* n_params copies, stored in the same allocation */
    DbCallback cb;
    void *userdata;
    uint64_t submit_us;
    uint64_t deadline_us;
    DbError err;         /* set on completion */
    PGresult *res;       /* owned once completed; cleared after the callback */
};

typedef struct DbConn {
    DbPool *pool;
    PGconn *pg;
    ConnState state;
    struct event *ev_sock;  /* re-created whenever the socket or the interest changes */
    int ev_fd;
    short ev_what;
    struct event *ev_timer;
    size_t prep_next;       /* next statement to prepare */
    PGresult *first;        /* first result of the current request, kept until NULL */
    DbQuery *query;         /* in flight (CONN_BUSY) */
    unsigned backoff_ms;    /* last backoff; 0 after a successful connect */
} DbConn;

typedef struct QueryList {
    DbQuery *head;
    DbQuery *tail;
    size_t len;
} QueryList;

struct DbPool {
    struct event_base *base;
    DbPoolOptions opt;
    DbConn *conns;
    QueryList queue;        /* waiting for a connection, oldest (= earliest deadline) first */
    QueryList done;         /* completed, callbacks not yet run */
    QueryList delivering;   /* being handed to callbacks right now */
    struct event *ev_queue; /* fires at the head of queue's deadline */
    struct event *ev_done;  /* activated when done becomes non-empty */
    unsigned draining;      /* depth of pool_deliver calls on the stack */
    bool closing;
    bool free_pending;      /* db_pool_free ran inside a callback: free after the delivery */
    uint64_t rng;
    uint64_t dispatched;
    uint64_t total_wait_us;
    uint64_t reconnects;
    char last_error[256];
};

static void conn_start(DbConn *c);
static void conn_on_socket(evutil_socket_t fd, short what, void *arg);

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct timeval tv_from_us(uint64_t us)
{
    struct timeval tv = { .tv_sec = (time_t)(us / 1000000u),
                          .tv_usec = (suseconds_t)(us % 1000000u) };
    return tv;
}

/* xorshift64*: only spreads reconnects of many instances apart, so no need for a CSPRNG. */
static uint64_t pool_rand(DbPool *p)
{
    p->rng ^= p->rng >> 12;
    p->rng ^= p->rng << 25;
    p->rng ^= p->rng >> 27;
    return p->rng * 0x2545F4914F6CDD1DULL;
}

static void set_last_error(DbPool *p, const char *what, const char *msg)
{
    snprintf(p->last_error, sizeof(p->last_error), "%s%s%s", what, msg && *msg ? ": " : "",
             msg ? msg : "");
    /* libpq messages span lines ("...\n\tIs the server running..."): keep one line for logs,
     * with each run of whitespace folded into one space. */
    char *out = p->last_error;
    for (const char *in = p->last_error; *in; in++) {
        bool space = *in == ' ' || (unsigned char)*in < 0x20;
        if (space && (out == p->last_error || out[-1] == ' '))
            continue;
        *out++ = space ? ' ' : *in;
    }
    while (out > p->last_error && out[-1] == ' ')
        out--;
    *out = '\0';
}

static void list_push(QueryList *l, DbQuery *q)
{
    q->next = NULL;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->len++;
}

static DbQuery *list_pop(QueryList *l)
{
    DbQuery *q = l->head;
    if (q) {
        l->head = q->next;
        if (!l->head)
            l->tail = NULL;
        l->len--;
        q->next = NULL;
    }
    return q;
}

static void list_append(QueryList *to, QueryList *from)
{
    if (!from->head)
        return;
    if (to->tail)
        to->tail->next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    to->len += from->len;
    *from = (QueryList){ NULL, NULL, 0 };
}

/* Hands q to the delivery list; its callback runs later from ev_done (or db_pool_free). */
static void query_complete(DbPool *p, DbQuery *q, DbError err, PGresult *res)
{
    q->err = err;
    q->res = res;
    list_push(&p->done, q);
    event_active(p->ev_done, 0, 0);
}

static unsigned pool_count(const DbPool *p, ConnState a, ConnState b)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->opt.size; i++)
        if (p->conns[i].state == a || p->conns[i].state == b)
            n++;
    return n;
}

/* Runs callbacks: those already in `delivering` and, when `all`, everything that completes
 * meanwhile. Each query is unlinked before its callback, so nested calls (db_pool_free from
 * a callback) never deliver anything twice. */
static void pool_deliver(DbPool *p, bool all)
{
    p->draining++;
    for (;;) {
        if (!p->delivering.head) {
            if (!all || !p->done.head)
                break;
            list_append(&p->delivering, &p->done);
        }
        DbQuery *q = list_pop(&p->delivering);
        q->cb(q->userdata, q->err, q->res);
        PQclear(q->res);
        oc_free(q);
    }
    p->draining--;
}

static void pool_destroy(DbPool *p)
{
    for (unsigned i = 0; p->conns && i < p->opt.size; i++)
        if (p->conns[i].ev_timer)
            event_free(p->conns[i].ev_timer);
    oc_free(p->conns);
    if (p->ev_queue)
        event_free(p->ev_queue);
    if (p->ev_done)
        event_free(p->ev_done);
    oc_free(p);
}

static void pool_on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    DbPool *p = arg;
    /* Only what completed before now: a callback that resubmits something that fails at
     * once (queue full) then waits for the next loop pass instead of starving the loop. */
    list_append(&p->delivering, &p->done);
    pool_deliver(p, false);
    if (p->free_pending && !p->draining)
        pool_destroy(p);
}

static DbError expired_error(const DbPool *p)
{
    return pool_count(p, CONN_IDLE, CONN_BUSY) ? DB_E_TIMEOUT : DB_E_UNAVAILABLE;
}

/* Arms ev_queue for the head's deadline. Timers may fire a little early relative to our
 * clock (libevent's coarse clock); pool_dispatch then simply re-arms. */
static void queue_rearm(DbPool *p)
{
    if (!p->queue.head) {
        evtimer_del(p->ev_queue);
        return;
    }
    uint64_t now = now_us(), dl = p->queue.head->deadline_us;
    struct timeval tv = tv_from_us(dl > now ? dl - now : 0);
    if (tv.tv_sec == 0 && tv.tv_usec < 1000)
        tv.tv_usec = 1000;
    evtimer_add(p->ev_queue, &tv);
}

/* Watches the connection's socket for `what`. `force` re-registers even if nothing seems to
 * change: while connecting libpq may close the socket and open a new one with the same
 * number, which epoll would silently have dropped. Returns 0 or a negative errno. */
static int conn_watch(DbConn *c, short what, bool force)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -EBADF;
    if (!force && c->ev_sock && c->ev_fd == fd && c->ev_what == what)
        return 0;
    if (c->ev_sock)
        event_free(c->ev_sock);
    c->ev_sock = event_new(c->pool->base, fd, (short)(what | EV_PERSIST), conn_on_socket, c);
    if (!c->ev_sock || event_add(c->ev_sock, NULL) < 0) {
        if (c->ev_sock)
            event_free(c->ev_sock);
        c->ev_sock = NULL;
        return -ENOMEM;
    }
    c->ev_fd = fd;
    c->ev_what = what;
    return 0;
}

/* The event goes before PQfinish closes its descriptor, so epoll never sees a stale fd. */
static void conn_close(DbConn *c)
{
    if (c->ev_sock)
        event_free(c->ev_sock);
    c->ev_sock = NULL;
    c->ev_fd = -1;
    c->ev_what = 0;
    PQclear(c->first);
    c->first = NULL;
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    evtimer_del(c->ev_timer);
}

/* The connection is unusable: fail its query (outcome unknown), drop it, and retry after a
 * jittered exponential backoff so that a restarting server is not hammered. */
static void conn_fail(DbConn *c, const char *why)
{
    DbPool *p = c->pool;
    if (c->pg && why)
        set_last_error(p, why, PQerrorMessage(c->pg));
    else if (why)
        set_last_error(p, why, NULL);
    if (c->query) {
        query_complete(p, c->query, DB_E_UNAVAILABLE, NULL);
        c->query = NULL;
    }
    conn_close(c);
    p->reconnects++;
    unsigned b = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    c->backoff_ms = b > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b;
    /* Uniform in [b/2, b]. */
    uint64_t delay_ms = c->backoff_ms / 2 + pool_rand(p) % (c->backoff_ms / 2 + 1);
    c->state = CONN_BACKOFF;
    struct timeval tv = tv_from_us(delay_ms * 1000u);
    evtimer_add(c->ev_timer, &tv);
}

/* Sends q on idle connection c. On a send failure q fails with DB_E_UNAVAILABLE: part of it
 * may have reached the server, so it is never retried. */
static void conn_send(DbConn *c, DbQuery *q)
{
    DbPool *p = c->pool;
    uint64_t now = now_us();
    p->dispatched++;
    p->total_wait_us += now - q->submit_us;
    c->query = q;
    c->state = CONN_BUSY;
    if (!PQsendQueryPrepared(c->pg, q->stmt->name, q->n_params,
                             (const char *const *)q->values, NULL, NULL, 0)) {
        conn_fail(c, "sending query");
        return;
    }
    struct timeval tv = tv_from_us(q->deadline_us > now ? q->deadline_us - now : 0);
    evtimer_add(c->ev_timer, &tv);
    int rc = PQflush(c->pg);
    if (rc < 0 || conn_watch(c, rc ? EV_READ | EV_WRITE : EV_READ, false) < 0)
        conn_fail(c, "sending query");
}

static DbConn *pool_find_idle(DbPool *p)
{
    for (unsigned i = 0; i < p->opt.size; i++)
        if (p->conns[i].state == CONN_IDLE)
            return &p->conns[i];
    return NULL;
}

/* Fails expired waiting queries and sends the rest to idle connections while both exist. */
static void pool_dispatch(DbPool *p)
{
    uint64_t now = now_us();
    while (p->queue.head) {
        if (p->queue.head->deadline_us <= now) {
            query_complete(p, list_pop(&p->queue), expired_error(p), NULL);
            continue;
        }
        DbConn *c = pool_find_idle(p);
        if (!c)
            break;
        conn_send(c, list_pop(&p->queue));
    }
    queue_rearm(p);
}

static void pool_on_queue_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_dispatch(arg);
}

static void conn_become_idle(DbConn *c)
{
    c->state = CONN_IDLE;
    evtimer_del(c->ev_timer);
    if (conn_watch(c, EV_READ, false) < 0) {
        conn_fail(c, "watching socket");
        return;
    }
    pool_dispatch(c->pool);
}

/* Sends the next PQsendPrepare, or finishes the connection setup. */
static void conn_prepare_next(DbConn *c)
{
    DbPool *p = c->pool;
    if (c->prep_next == p->opt.n_statements) {
        c->backoff_ms = 0;
        conn_become_idle(c);
        return;
    }
    const DbStatement *st = &p->opt.statements[c->prep_next];
    if (!PQsendPrepare(c->pg, st->name, st->sql, st->n_params, NULL)) {
        conn_fail(c, "preparing statements");
        return;
    }
    int rc = PQflush(c->pg);
    if (rc < 0 || conn_watch(c, rc ? EV_READ | EV_WRITE : EV_READ, false) < 0)
        conn_fail(c, "preparing statements");
}

/* The current request's results are all in (PQgetResult returned NULL). Only now is the
 * connection known to be in sync (ReadyForQuery seen) and an implicit transaction over. */
static void conn_request_done(DbConn *c)
{
    DbPool *p = c->pool;
    PGresult *res = c->first;
    c->first = NULL;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        PQclear(res);
        conn_fail(c, "connection lost");
        return;
    }
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (c->state == CONN_PREPARING) {
        if (st != PGRES_COMMAND_OK) {
            set_last_error(p, p->opt.statements[c->prep_next].name,
                           res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
            PQclear(res);
            conn_fail(c, NULL);
            return;
        }
        PQclear(res);
        c->prep_next++;
        conn_prepare_next(c);
        return;
    }
    DbQuery *q = c->query;
    c->query = NULL;
    if (!res) {
        /* No result at all cannot happen for a prepared statement; treat as lost. */
        query_complete(p, q, DB_E_UNAVAILABLE, NULL);
        conn_fail(c, "no result");
        return;
    }
    query_complete(p, q, st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK ? DB_OK : DB_E_QUERY,
                   res);
    conn_become_idle(c);
}

static void conn_drop_notifies(DbConn *c)
{
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
        PQfreemem(n);
}

/* Reading and writing while a request (prepare or query) is outstanding. */
static void conn_on_request_io(DbConn *c, short what)
{
    if (what & EV_READ)
        (void)PQconsumeInput(c->pg); /* a failure shows as CONNECTION_BAD below */
    if (c->ev_what & EV_WRITE) {
        int rc = PQflush(c->pg);
        if (rc < 0 || conn_watch(c, rc ? EV_READ | EV_WRITE : EV_READ, false) < 0) {
            conn_fail(c, "writing");
            return;
        }
    }
    conn_drop_notifies(c);
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r) {
            conn_request_done(c);
            return;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            /* COPY would leave the connection mid-protocol: not supported, reset it. */
            if (c->query) {
                query_complete(c->pool, c->query, DB_E_QUERY, r);
                c->query = NULL;
            } else {
                PQclear(r);
            }
            conn_fail(c, "COPY is not supported");
            return;
        }
        if (!c->first)
            c->first = r;
        else
            PQclear(r);
    }
    if (PQstatus(c->pg) == CONNECTION_BAD)
        conn_fail(c, "connection lost");
}

static void conn_connect_step(DbConn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (conn_watch(c, EV_READ, true) < 0)
            conn_fail(c, "connecting");
        return;
    case PGRES_POLLING_WRITING:
        if (conn_watch(c, EV_WRITE, true) < 0)
            conn_fail(c, "connecting");
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->pg, 1) != 0) {
            conn_fail(c, "connecting");
            return;
        }
        c->state = CONN_PREPARING;
        c->prep_next = 0;
        conn_prepare_next(c);
        return;
    case PGRES_POLLING_FAILED:
    default:
        conn_fail(c, "connecting");
        return;
    }
}

static void conn_on_socket(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    DbConn *c = arg;
    switch (c->state) {
    case CONN_CONNECTING:
        conn_connect_step(c);
        break;
    case CONN_PREPARING:
    case CONN_BUSY:
        conn_on_request_io(c, what);
        break;
    case CONN_IDLE:
        /* Nothing is expected but notifications, notices and the server going away. */
        if (!PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
            conn_fail(c, "connection lost");
            return;
        }
        conn_drop_notifies(c);
        break;
    case CONN_BACKOFF:
        break;
    }
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    DbConn *c = arg;
    switch (c->state) {
    case CONN_BACKOFF:
        conn_start(c);
        break;
    case CONN_CONNECTING:
    case CONN_PREPARING:
        conn_fail(c, "connection attempt timed out");
        break;
    case CONN_BUSY: {
        /* libevent's coarse clock may fire a millisecond or two early: never time out
         * before the deadline promised to the caller. */
        uint64_t now = now_us();
        if (now < c->query->deadline_us) {
            struct timeval tv = tv_from_us(c->query->deadline_us - now);
            evtimer_add(c->ev_timer, &tv);
            break;
        }
        /* PQcancel would block; dropping the connection stops the wait just as well (the
         * server notices the closed socket) and a fresh connection replaces it at once. */
        query_complete(c->pool, c->query, DB_E_TIMEOUT, NULL);
        c->query = NULL;
        conn_close(c);
        c->pool->reconnects++;
        conn_start(c);
        break;
    }
    case CONN_IDLE:
        break;
    }
}

/* The pool writes nothing to stderr; libpq's default would print every server notice. */
static void silent_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void conn_start(DbConn *c)
{
    DbPool *p = c->pool;
    c->state = CONN_CONNECTING;
    c->pg = PQconnectStartParams(p->opt.conn_keywords, p->opt.conn_values, 1);
    if (!c->pg) {
        conn_fail(c, "connecting: out of memory");
        return;
    }
    PQsetNoticeProcessor(c->pg, silent_notice, NULL);
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_fail(c, "connecting");
        return;
    }
    struct timeval tv = tv_from_us((uint64_t)p->opt.connect_timeout_ms * 1000u);
    evtimer_add(c->ev_timer, &tv);
    /* libpq: behave as if PQconnectPoll had just returned PGRES_POLLING_WRITING. */
    if (conn_watch(c, EV_WRITE, true) < 0)
        conn_fail(c, "connecting");
}

DbPool *db_pool_new(struct event_base *base, const DbPoolOptions *options)
{
    if (!base || !options || options->size == 0 || options->query_timeout_ms == 0 ||
        options->connect_timeout_ms == 0 || !options->conn_keywords || !options->conn_values ||
        (options->n_statements && !options->statements))
        return NULL;
    DbPool *p = oc_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->base = base;
    p->opt = *options;
    p->rng = now_us() ^ (uint64_t)(uintptr_t)p ^ 0x9E3779B97F4A7C15ULL;
    if (!p->rng)
        p->rng = 1;
    p->conns = oc_calloc(options->size, sizeof(*p->conns));
    p->ev_queue = evtimer_new(base, pool_on_queue_timer, p);
    p->ev_done = event_new(base, -1, 0, pool_on_done, p);
    if (!p->conns || !p->ev_queue || !p->ev_done)
        goto fail;
    for (unsigned i = 0; i < options->size; i++) {
        DbConn *c = &p->conns[i];
        c->pool = p;
        c->ev_fd = -1;
        c->state = CONN_BACKOFF;
        c->ev_timer = evtimer_new(base, conn_on_timer, c);
        if (!c->ev_timer)
            goto fail;
    }
    for (unsigned i = 0; i < options->size; i++)
        conn_start(&p->conns[i]);
    return p;
fail:
    pool_destroy(p);
    return NULL;
}

static const DbStatement *pool_find_statement(const DbPool *p, const char *name)
{
    for (size_t i = 0; i < p->opt.n_statements; i++)
        if (strcmp(p->opt.statements[i].name, name) == 0)
            return &p->opt.statements[i];
    return NULL;
}

/* One allocation: the query, its value pointers, then the strings. */
static DbQuery *query_new(const DbStatement *st, int n_params, const char *const *values)
{
    size_t ptrs = (size_t)n_params * sizeof(char *), total = sizeof(DbQuery) + ptrs;
    for (int i = 0; i < n_params; i++) {
        if (!values[i])
            continue;
        size_t l = strlen(values[i]) + 1;
        if (total > SIZE_MAX - l)
            return NULL;
        total += l;
    }
    DbQuery *q = oc_malloc(total);
    if (!q)
        return NULL;
    memset(q, 0, sizeof(*q));
    q->stmt = st;
    q->n_params = n_params;
    q->values = n_params ? (char **)(q + 1) : NULL;
    char *s = (char *)(q + 1) + ptrs;
    for (int i = 0; i < n_params; i++) {
        if (!values[i]) {
            q->values[i] = NULL;
            continue;
        }
        size_t l = strlen(values[i]) + 1;
        memcpy(s, values[i], l);
        q->values[i] = s;
        s += l;
    }
    return q;
}

int db_pool_query(DbPool *pool, const char *name, int n_params, const char *const *values,
                  DbCallback cb, void *userdata)
{
    if (!pool || !name || !cb || n_params < 0 || (n_params && !values))
        return -EINVAL;
    const DbStatement *st = pool_find_statement(pool, name);
    if (!st || st->n_params != n_params)
        return -EINVAL;
    DbQuery *q = query_new(st, n_params, values);
    if (!q)
        return -ENOMEM;
    q->cb = cb;
    q->userdata = userdata;
    q->submit_us = now_us();
    q->deadline_us = q->submit_us + (uint64_t)pool->opt.query_timeout_ms * 1000u;
    if (pool->closing) {
        query_complete(pool, q, DB_E_UNAVAILABLE, NULL);
        return 0;
    }
    /* The queue is only non-empty while no connection is idle (pool_dispatch keeps it so). */
    DbConn *c = pool->queue.head ? NULL : pool_find_idle(pool);
    if (c) {
        conn_send(c, q);
        return 0;
    }
    if (pool->queue.len >= pool->opt.max_queue) {
        query_complete(pool, q, DB_E_BUSY, NULL);
        return 0;
    }
    list_push(&pool->queue, q);
    if (pool->queue.head == q)
        queue_rearm(pool);
    return 0;
}

unsigned db_pool_ready(const DbPool *pool)
{
    return pool ? pool_count(pool, CONN_IDLE, CONN_BUSY) : 0;
}

void db_pool_stats(const DbPool *pool, DbPoolStats *out)
{
    memset(out, 0, sizeof(*out));
    if (!pool)
        return;
    out->ready = pool_count(pool, CONN_IDLE, CONN_BUSY);
    out->in_use = pool_count(pool, CONN_BUSY, CONN_BUSY);
    out->waiting = (unsigned)pool->queue.len;
    out->dispatched = pool->dispatched;
    out->total_wait_us = pool->total_wait_us;
    out->reconnects = pool->reconnects;
}

const char *db_pool_last_error(const DbPool *pool)
{
    return pool ? pool->last_error : "";
}

void db_pool_free(DbPool *pool)
{
    if (!pool || pool->closing)
        return;
    pool->closing = true;
    for (unsigned i = 0; i < pool->opt.size; i++) {
        DbConn *c = &pool->conns[i];
        if (c->query)
            query_complete(pool, c->query, DB_E_UNAVAILABLE, NULL);
        c->query = NULL;
        conn_close(c);
        c->state = CONN_BACKOFF; /* inert: its timer is stopped */
    }
    DbQuery *q;
    while ((q = list_pop(&pool->queue)))
        query_complete(pool, q, DB_E_UNAVAILABLE, NULL);
    evtimer_del(pool->ev_queue);
    pool_deliver(pool, true);
    if (pool->draining)
        pool->free_pending = true; /* pool_on_done is on the stack and frees it after */
    else
        pool_destroy(pool);
}

void db_conn_params_init(DbConnParams *p, const char *connect_timeout, const char *url,
                         const char *password, const char *application_name)
{
    size_t k = 0;
    if (connect_timeout) {
        p->keywords[k] = "connect_timeout";
        p->values[k++] = connect_timeout;
    }
    p->keywords[k] = "dbname";
    p->values[k++] = url;
    if (password && *password) {
        p->keywords[k] = "password";
        p->values[k++] = password;
    }
    p->keywords[k] = "application_name";
    p->values[k++] = application_name;
    p->keywords[k] = NULL;
    p->values[k] = NULL;
}
