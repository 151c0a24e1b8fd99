/* Asynchronous PostgreSQL connection pool on one libevent loop (design.md, "store/").
 * Each loop thread owns one pool; nothing here is thread-safe and nothing blocks: connections
 * are made with PQconnectStart/PQconnectPoll, queries sent with PQsendQueryPrepared, and
 * results read when the socket is readable. Every connection prepares the same statements
 * when it (re)connects. A lost connection is replaced in the background with backoff; while
 * no connection is usable, queries wait in a bounded queue up to a deadline and then fail
 * with DB_E_UNAVAILABLE, so callers can answer 503 instead of hanging. */
#pragma once

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

typedef struct DbPool DbPool;

/* A statement prepared on every connection under name. */
typedef struct DbStatement {
    const char *name;
    const char *sql;
    int n_params;      /* parameter types are left to the server */
} DbStatement;

/* The libpq connection parameters every ocgate connection uses: an optional connect_timeout
 * (first, so that one given in the URL wins), the configured URL or conninfo as "dbname"
 * (expanded by libpq), the password when there is one, and application_name, so that
 * pg_stat_activity shows which part of ocgate holds a connection. The arrays point at the
 * caller's strings, which must outlive every use of them. */
typedef struct DbConnParams {
    const char *keywords[5];
    const char *values[5];
} DbConnParams;

/* Fills p; connect_timeout and password may be NULL (or "" for password): left out. */
void db_conn_params_init(DbConnParams *p, const char *connect_timeout, const char *url,
                         const char *password, const char *application_name);

typedef struct DbPoolOptions {
    const char *const *conn_keywords;   /* NULL-terminated, for PQconnectStartParams */
    const char *const *conn_values;
    unsigned size;                      /* connections, >= 1 */
    const DbStatement *statements;
    size_t n_statements;
    unsigned max_queue;                 /* queries waiting for a connection; more → DB_E_BUSY */
    unsigned query_timeout_ms;          /* from submission to result, including queueing */
    unsigned connect_timeout_ms;        /* one connection attempt */
} DbPoolOptions;

typedef enum DbError {
    DB_OK = 0,
    DB_E_UNAVAILABLE,   /* no usable connection before the deadline, or the connection died
                           with the query in flight (its outcome is then unknown) */
    DB_E_TIMEOUT,       /* sent, but no result before the deadline; the connection is reset */
    DB_E_BUSY,          /* the wait queue is full */
    DB_E_QUERY,         /* the server answered with an error; res holds it */
} DbError;

/* Called exactly once per accepted query, on the pool's loop, never from inside
 * db_pool_query itself. res is owned by the pool and valid only during the call (NULL unless
 * err is DB_OK or DB_E_QUERY). */
typedef void (*DbCallback)(void *userdata, DbError err, const PGresult *res);

/* Creates the pool and starts connecting. Returns NULL on allocation failure, or when options
 * are unusable (size, query_timeout_ms or connect_timeout_ms 0, no keywords/values). Copies
 * what it keeps from options (statements and connection parameters must outlive the pool).
 * The parameters go to PQconnectStartParams with expand_dbname=1, so "dbname" may be a
 * conninfo string or URL and later keywords override it. A host name (rather than hostaddr or
 * a Unix socket) is resolved by libpq synchronously: avoid it on a busy loop. */
OC_MUST_CHECK DbPool *db_pool_new(struct event_base *base, const DbPoolOptions *options);

/* Queues statement `name` with text parameters (NULL value = SQL NULL). Returns 0 (cb will be
 * called later), or -EINVAL for an unknown statement name, an n_params different from the
 * statement's, or a NULL cb; -ENOMEM if the copy cannot be allocated. Parameter strings are
 * copied. Results are in text format. Callbacks may call db_pool_query again. */
OC_MUST_CHECK int db_pool_query(DbPool *pool, const char *name, int n_params,
                                const char *const *values, DbCallback cb, void *userdata);

/* Number of connections that are up and prepared. */
unsigned db_pool_ready(const DbPool *pool);

typedef struct DbPoolStats {
    unsigned ready;          /* as db_pool_ready */
    unsigned in_use;         /* connections running a query */
    unsigned waiting;        /* queries in the wait queue */
    uint64_t dispatched;     /* queries sent to the server so far */
    uint64_t total_wait_us;  /* summed queueing time of the dispatched queries */
    uint64_t reconnects;     /* connections lost, timed out or refused, then retried */
} DbPoolStats;

/* A snapshot for metrics; cheap (a scan of the connections). */
void db_pool_stats(const DbPool *pool, DbPoolStats *out);

/* The most recent connection or prepare failure (libpq's message, one line), or "" if none;
 * for logs and readiness probes. Valid until the loop next runs a pool event. */
const char *db_pool_last_error(const DbPool *pool);

/* Fails every queued and in-flight query with DB_E_UNAVAILABLE (callbacks run before this
 * returns), closes the connections and frees the pool. Accepts NULL. May be called from a
 * callback; queries submitted by callbacks while it runs fail with DB_E_UNAVAILABLE too. */
void db_pool_free(DbPool *pool);
