/* The evhttp server (server.h): loops, routing, limits, response signing, request logs and
 * graceful shutdown. Each loop thread owns its event_base, evhttp, database pool and
 * settle context, so nothing on the request path is shared except the refcounted
 * participants snapshot and two atomic counters (connections, requests in flight). */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "deliver/deliver.h"
#include "http/ratelimit.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "settle/settle.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hex.h"

#define HTTP_LISTEN_BACKLOG 1024
#define HTTP_DRAIN_LIMIT_MS 10000
#define HTTP_DRAIN_TICK_MS 20
#define HTTP_DB_CONNECT_TIMEOUT_MS 2000
#define HTTP_DB_MAX_QUEUE 1024
#define HTTP_TLS_KEY_MAX (1024 * 1024)
#define HTTP_REQUEST_ID_LEN 16
#define HTTP_STATS_TICK_MS 500
#define HTTP_METRICS_MAX (256 * 1024)

/* The delivery queue at scrape time: depth, and the age of the oldest due delivery. */
static const DbStatement metrics_statement = {
    "http_metrics_queue",
    "SELECT count(*)::bigint, "
    "COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at) "
    "FILTER (WHERE next_attempt_at <= now() AND (state = 'pending' OR lease_until < now()))),"
    " 0)::float8 FROM deliveries WHERE state IN ('pending', 'in_flight')",
    0,
};

typedef enum RouteId {
    ROUTE_METADATA,
    ROUTE_CAPABILITIES,
    ROUTE_PAYMENT_CREATE,
    ROUTE_PAYMENT_SETTLE,
    ROUTE_TRANSFER_WEBHOOK,
    ROUTE_VERIFY,
    ROUTE_UNSUPPORTED,
    ROUTE_METRICS,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
} RouteId;

typedef struct Route {
    enum evhttp_cmd_type method;
    const char *path;      /* after the base path */
    bool has_param;        /* path is a prefix followed by one parameter segment */
    RouteId id;
    const char *pattern;   /* what the request log calls it */
} Route;

static const Route routes[] = {
    { EVHTTP_REQ_GET, "/metadata.json", false, ROUTE_METADATA, "/metadata.json" },
    { EVHTTP_REQ_GET, "/capabilities", false, ROUTE_CAPABILITIES, "/capabilities" },
    { EVHTTP_REQ_POST, "/payment/create", false, ROUTE_PAYMENT_CREATE, "/payment/create" },
    { EVHTTP_REQ_POST, "/payment/settle", false, ROUTE_PAYMENT_SETTLE, "/payment/settle" },
    { EVHTTP_REQ_POST, "/transfer/webhook", false, ROUTE_TRANSFER_WEBHOOK, "/transfer/webhook" },
    { EVHTTP_REQ_GET, "/verify/", true, ROUTE_VERIFY, "/verify/{txid}" },
    { EVHTTP_REQ_POST, "/orders/checkout", false, ROUTE_UNSUPPORTED, "/orders/checkout" },
    { EVHTTP_REQ_POST, "/transfer/create", false, ROUTE_UNSUPPORTED, "/transfer/create" },
};

/* Operator endpoints, at the root (not under base_path) and unauthenticated (the answer is
 * signed like any other, but nobody needs to check it). They are not part of the signed
 * API: only loopback peers (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) get
 * them; anyone else gets the 404 of an unknown path, so a gateway exposed to the internet
 * shows no operational detail. A Prometheus server elsewhere scrapes through a local agent
 * or proxy. */
static const Route ops_routes[] = {
    { EVHTTP_REQ_GET, "/metrics", false, ROUTE_METRICS, "/metrics" },
    { EVHTTP_REQ_GET, "/healthz", false, ROUTE_HEALTHZ, "/healthz" },
    { EVHTTP_REQ_GET, "/readyz", false, ROUTE_READYZ, "/readyz" },
};

/* What the request log line needs, from receipt to answer. */
typedef struct LogInfo {
    char request_id[HTTP_REQUEST_ID_LEN + 1];
    const char *method;
    const char *route;
    int64_t caller;             /* -1 until authenticated */
    struct timespec start;      /* CLOCK_MONOTONIC */
} LogInfo;

typedef struct Loop Loop;

/* One per open connection: the request deadline (slow-loris defence). libevent's read
 * timeout restarts with every byte received, so a client sending one header byte a second
 * would hold its connection for ever; instead each request must arrive complete within
 * idle_timeout of the connection being accepted or of its previous answer, or the
 * connection is closed (checked once a second by on_sweep). Found from a request through
 * the socket number (guard_by_fd), which is unique among a loop's open connections. */
typedef struct ConnGuard {
    struct evhttp_connection *evcon;
    evutil_socket_t fd;
    struct timespec since;      /* CLOCK_MONOTONIC: accepted, or last answer sent */
    bool busy;                  /* a complete request is being answered */
    struct ConnGuard *prev, *next;
} ConnGuard;

/* An authenticated request waiting for settle/. The evhttp_request belongs to libevent: when
 * the connection closes first, either libevent frees it with the connection (req becomes
 * NULL) or it detaches it, and then it is ours to free (req stays set). */
typedef struct Pending {
    Loop *loop;
    struct evhttp_request *req;
    bool orphaned;              /* the connection closed before the answer */
    DirSnapshot *snap;          /* held until the answer is sent */
    char *path_param;
    LogInfo log;
} Pending;

/* A connection evhttp is setting up, until on_accepted finds its evhttp_connection. */
typedef struct Accepted {
    struct bufferevent *bev;    /* we hold a reference */
    bool refuse;                /* over max_connections */
} Accepted;

struct Loop {
    HttpServer *srv;
    unsigned index;
    /* False for the delivery loop, which has no listener and runs only the worker. */
    bool serves_http;
    pthread_t thread;
    bool thread_started;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    DbPool *pool;
    SettleCtx settle;
    struct event *accepted_ev;   /* runs on_accepted after evhttp built new connections */
    struct event *stop_accept_ev;/* made active by the main thread */
    struct event *shutdown_ev;   /* made active by the main thread */
    /* The pool's numbers, published every HTTP_STATS_TICK_MS for /metrics and /readyz on
     * other loops (the pool itself belongs to this loop's thread). */
    struct event *stats_ev;
    atomic_uint stat_ready, stat_in_use, stat_waiting;
    atomic_uint_fast64_t stat_dispatched, stat_wait_us, stat_reconnects;
    Accepted *accepted;
    size_t n_accepted, cap_accepted;
    /* This loop's copy of the gateway key: everything on this thread signs with it (answers,
     * metadata, settle's gateway proofs, the delivery loop's worker). SIGHUP replaces it from
     * this thread (on_rekey), so no signer ever sees a half-copied key. */
    PrivateKey key;
    struct event *rekey_ev;
    ConnGuard *guards;           /* every guarded connection of this loop */
    ConnGuard **guard_by_fd;
    size_t guard_slots;
    struct event *sweep_ev;
    atomic_uint in_flight;
    uint64_t id_counter;         /* request ids if the CSPRNG ever fails */
    /* The signed metadata document, rebuilt when the participants snapshot changes; the
     * reference held on meta_snap keeps its address from being reused. */
    DirSnapshot *meta_snap;
    char *meta_body;
    size_t meta_len;
};

struct HttpServer {
    const Config *cfg;
    const PrivateKey *key;
    Directory *dir;
    evutil_socket_t fd;
    struct sockaddr_storage addr;
    SSL_CTX *ssl;
    Loop *loops;
    unsigned n_loops;
    /* The pool's options point here, so they live as long as the pools. */
    DbStatement *statements;
    size_t n_statements;
    char *password;
    size_t password_len;
    DbConnParams conn;
    /* The delivery worker (cfg->worker) on its own loop and thread, the last of loops[],
     * so that signing and sending notifications never waits behind a request loop's queue
     * (README, "Performance": at 64 clients the worker on loop 0 fell 28 s behind). Every
     * loop wakes it after a settlement commit; the lock keeps a wake from racing with its
     * free at shutdown. */
    Loop *delivery_loop;
    pthread_mutex_t deliverer_lock;
    bool deliverer_lock_ready;
    Deliverer *deliverer;
    /* SIGHUP: the main thread loads the key file into next_key, each loop copies it. */
    pthread_mutex_t key_lock;
    bool key_lock_ready;
    PrivateKey next_key;
    struct event *sig_hup;
    /* Per-participant request budgets, shared by every loop (ratelimit.h). */
    RateLimiter *limiter;
    /* Process-wide state touched by several threads. */
    atomic_uint connections;
    atomic_uint listeners_closed;
    atomic_bool draining;
    /* Main thread only. */
    struct event_base *main_base;
    struct event *sig_term, *sig_int, *drain_timer;
    struct timespec drain_start;
    bool maintenance_started;
    bool ran;
};

static const char fallback_body[] =
    "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"out of memory\"}}";

/* ---- small helpers ---- */

static double ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void release_connection(HttpServer *srv)
{
    atomic_fetch_sub(&srv->connections, 1);
}

static evutil_socket_t conn_fd(struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? bufferevent_getfd(bev) : -1;
}

/* Starts guarding a new connection. Without memory the connection goes unguarded (libevent's
 * own timeouts and max_connections still bound it). */
static void guard_add(Loop *loop, struct evhttp_connection *evcon)
{
    evutil_socket_t fd = conn_fd(evcon);
    if (fd < 0)
        return;
    if ((size_t)fd >= loop->guard_slots) {
        size_t n = loop->guard_slots ? loop->guard_slots : 64;
        while (n <= (size_t)fd)
            n *= 2;
        ConnGuard **slots = oc_realloc(loop->guard_by_fd, loop->guard_slots * sizeof(*slots),
                                       n * sizeof(*slots));
        if (!slots)
            return;
        memset(slots + loop->guard_slots, 0, (n - loop->guard_slots) * sizeof(*slots));
        loop->guard_by_fd = slots;
        loop->guard_slots = n;
    }
    ConnGuard *g = oc_calloc(1, sizeof(*g));
    if (!g)
        return;
    g->evcon = evcon;
    g->fd = fd;
    clock_gettime(CLOCK_MONOTONIC, &g->since);
    g->next = loop->guards;
    if (g->next)
        g->next->prev = g;
    loop->guards = g;
    loop->guard_by_fd[fd] = g; /* a stale entry (never expected) is simply replaced */
}

/* scan: also search the list, for a connection whose socket may already be closed (only on
 * removal: the request path never pays for a walk over every connection). */
static ConnGuard *guard_find(Loop *loop, struct evhttp_connection *evcon, bool scan)
{
    evutil_socket_t fd = conn_fd(evcon);
    if (fd >= 0 && (size_t)fd < loop->guard_slots && loop->guard_by_fd[fd] &&
        loop->guard_by_fd[fd]->evcon == evcon)
        return loop->guard_by_fd[fd];
    for (ConnGuard *g = scan ? loop->guards : NULL; g; g = g->next)
        if (g->evcon == evcon)
            return g;
    return NULL;
}

static void guard_remove(Loop *loop, struct evhttp_connection *evcon)
{
    ConnGuard *g = guard_find(loop, evcon, true);
    if (!g)
        return;
    if (g->prev)
        g->prev->next = g->next;
    else
        loop->guards = g->next;
    if (g->next)
        g->next->prev = g->prev;
    if ((size_t)g->fd < loop->guard_slots && loop->guard_by_fd[g->fd] == g)
        loop->guard_by_fd[g->fd] = NULL;
    oc_free(g);
}

/* busy: a complete request arrived and is being answered (no deadline meanwhile); not busy:
 * its answer was sent, and the next request's deadline starts now. */
static void guard_mark(Loop *loop, struct evhttp_request *req, bool busy)
{
    ConnGuard *g = guard_find(loop, evhttp_request_get_connection(req), false);
    if (!g)
        return;
    g->busy = busy;
    if (!busy)
        clock_gettime(CLOCK_MONOTONIC, &g->since);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Loop *loop = arg;
    double limit_ms = (double)loop->srv->cfg->idle_timeout_s * 1e3;
    unsigned closed = 0;
    for (ConnGuard *g = loop->guards, *next; g; g = next) {
        next = g->next;
        if (!g->busy && ms_since(&g->since) > limit_ms) {
            closed++;
            evhttp_connection_free(g->evcon); /* its close callback frees g */
        }
    }
    if (closed)
        log_json(LOG_INFO, "connections closed", "\"reason\":\"request not complete within "
                 "idle_timeout\",\"count\":%u", closed);
}

/* The value of a header that must appear at most once: NULL when absent or repeated (a
 * repeated X-OC-* header is ambiguous, since a proxy might have read the other one). */
static const char *header_once(const struct evkeyvalq *headers, const char *name, bool *repeated)
{
    const char *found = NULL;
    for (const struct evkeyval *kv = headers->tqh_first; kv; kv = kv->next.tqe_next) {
        if (evutil_ascii_strcasecmp(kv->key, name) != 0)
            continue;
        if (found) {
            if (repeated)
                *repeated = true;
            return NULL;
        }
        found = kv->value;
    }
    return found;
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    default:
        return "OTHER";
    }
}

/* Finds the route for the path part of a raw request-target. *param receives the segment
 * after a has_param route's prefix (not decoded). */
static const Route *route_match(const char *base, enum evhttp_cmd_type method,
                                const char *target, const char **param, size_t *param_len)
{
    if (!target || target[0] != '/')
        return NULL; /* absolute-form and asterisk-form targets name nothing here */
    size_t path_len = strcspn(target, "?");
    static const char root_metadata[] = "/metadata.json";
    if (method == EVHTTP_REQ_GET && path_len == sizeof(root_metadata) - 1 &&
        memcmp(target, root_metadata, path_len) == 0)
        return &routes[0];
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    if (path_len < base_len || memcmp(target, base, base_len) != 0)
        return NULL;
    const char *rest = target + base_len;
    size_t rest_len = path_len - base_len;
    for (size_t i = 0; i < OC_ARRAY_LEN(routes); i++) {
        const Route *r = &routes[i];
        size_t n = strlen(r->path);
        if (r->method != method || rest_len < n || memcmp(rest, r->path, n) != 0)
            continue;
        if (r->has_param) {
            *param = rest + n;
            *param_len = rest_len - n;
            return r;
        }
        if (rest_len == n)
            return r;
    }
    return NULL;
}

/* The error code of an error body settle/ rendered, for the log: the canonical form puts
 * it first, so a prefix check is enough. */
static void error_code_of(const char *body, size_t len, char *out, size_t out_len)
{
    static const char prefix[] = "{\"error\":{\"code\":\"";
    const size_t plen = sizeof(prefix) - 1;
    snprintf(out, out_len, "null");
    if (len <= plen || memcmp(body, prefix, plen) != 0)
        return;
    size_t i = plen, o = 0;
    char code[40];
    while (i < len && o < sizeof(code) - 1 &&
           ((body[i] >= 'A' && body[i] <= 'Z') || body[i] == '_' ||
            (body[i] >= '0' && body[i] <= '9')))
        code[o++] = body[i++];
    if (i >= len || body[i] != '"' || o == 0)
        return;
    code[o] = '\0';
    snprintf(out, out_len, "\"%s\"", code);
}

/* The error codes ocgate_signature_rejections_total counts: refusals of a request's or a
 * proof's signature, its timestamp, its nonce or its signer. */
static bool is_signature_code(const char *quoted)
{
    static const char *const codes[] = {
        "\"INVALID_SIGNATURE\"", "\"TIMESTAMP_EXPIRED\"", "\"UNKNOWN_OCID\"",
        "\"NONCE_REUSED\"", "\"PROOF_SIGNATURE_INVALID\"",
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(codes); i++)
        if (strcmp(quoted, codes[i]) == 0)
            return true;
    return false;
}

/* Logs one answer and counts it in the metrics; called exactly once per request. */
static void log_request(const LogInfo *li, int status, const char *body, size_t len,
                        bool dropped)
{
    char code[48], caller[24];
    double duration = ms_since(&li->start);
    if (status >= 400)
        error_code_of(body, len, code, sizeof(code));
    else
        snprintf(code, sizeof(code), "null");
    metrics_request(li->route, status, duration);
    if (strcmp(li->route, "/transfer/webhook") == 0 || strcmp(li->route, "/payment/settle") == 0)
        metrics_settlement(duration);
    if (status >= 400 && is_signature_code(code)) {
        char name[48];
        size_t n = strlen(code);
        snprintf(name, sizeof(name), "%.*s", (int)(n - 2), code + 1);
        metrics_signature_rejected(name);
    }
    if (li->caller >= 0)
        snprintf(caller, sizeof(caller), "%" PRId64, li->caller);
    else
        snprintf(caller, sizeof(caller), "null");
    log_json(LOG_INFO, "request",
             "\"request_id\":\"%s\",\"method\":\"%s\",\"route\":\"%s\",\"status\":%d,"
             "\"code\":%s,\"caller\":%s,\"duration_ms\":%.3f%s",
             li->request_id, li->method, li->route, status, code, caller, duration,
             dropped ? ",\"dropped\":\"client gone\"" : "");
}

/* Signs and sends one answer, then logs it. Every answer ocgate writes goes through here. */
static void respond_typed(Loop *loop, struct evhttp_request *req, const LogInfo *li, int status,
                          const char *content_type, const char *body, size_t len)
{
    HttpServer *srv = loop->srv;
    AuthResponseHeaders sig;
    if (auth_sign_response(&loop->key, srv->cfg->ocid, (int64_t)time(NULL), status, body, len,
                           &sig) != 0) {
        /* Only memory exhaustion gets here; the fallback is smaller, so try it once more. */
        status = 503;
        body = fallback_body;
        len = sizeof(fallback_body) - 1;
        if (auth_sign_response(&loop->key, srv->cfg->ocid, (int64_t)time(NULL), status, body,
                               len, &sig) != 0)
            sig.ocid[0] = '\0';
    }
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    int r = evhttp_add_header(out, "Content-Type",
                              body == fallback_body ? "application/json" : content_type);
    if (sig.ocid[0]) {
        r |= evhttp_add_header(out, "X-OC-ID", sig.ocid);
        r |= evhttp_add_header(out, "X-OC-Timestamp", sig.timestamp);
        r |= evhttp_add_header(out, "X-OC-Signature", sig.signature);
    }
    r |= evhttp_add_header(out, "X-Request-Id", li->request_id);
    if (atomic_load(&srv->draining))
        r |= evhttp_add_header(out, "Connection", "close");
    r |= evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    if (r != 0) {
        /* A partial answer would carry a signature over bytes it does not contain. */
        guard_mark(loop, req, false);
        evhttp_send_error(req, 503, NULL);
        log_request(li, 503, fallback_body, sizeof(fallback_body) - 1, false);
        return;
    }
    guard_mark(loop, req, false);
    evhttp_send_reply(req, status, NULL, NULL);
    log_request(li, status, body, len, false);
}

static void respond(Loop *loop, struct evhttp_request *req, const LogInfo *li, int status,
                    const char *body, size_t len)
{
    respond_typed(loop, req, li, status, "application/json", body, len);
}

static void respond_error(Loop *loop, struct evhttp_request *req, const LogInfo *li,
                          OcErrorCode code, const char *message)
{
    char *body;
    size_t len;
    int owned;
    int status = settle_error_body(code, message, &body, &len, &owned);
    respond(loop, req, li, status, body, len);
    if (owned)
        oc_free(body);
}

static void respond_metadata(Loop *loop, struct evhttp_request *req, const LogInfo *li)
{
    HttpServer *srv = loop->srv;
    DirSnapshot *snap = directory_acquire(srv->dir);
    if (snap == loop->meta_snap && loop->meta_body) {
        dirsnap_release(snap);
    } else {
        char *body = NULL;
        size_t len = 0;
        int r = settle_metadata(srv->cfg, &loop->key, snap, &body, &len);
        if (r != 0) {
            dirsnap_release(snap);
            respond_error(loop, req, li, r == -ENOMEM ? OC_ERR_UNAVAILABLE : OC_ERR_INTERNAL,
                          "metadata unavailable");
            return;
        }
        dirsnap_release(loop->meta_snap);
        oc_free(loop->meta_body);
        loop->meta_snap = snap;
        loop->meta_body = body;
        loop->meta_len = len;
    }
    respond(loop, req, li, 200, loop->meta_body, loop->meta_len);
}

static const char *auth_message(int code)
{
    switch (code) {
    case OC_ERR_TIMESTAMP_EXPIRED:
        return "X-OC-Timestamp is outside the accepted window";
    case OC_ERR_UNKNOWN_OCID:
        return "X-OC-ID is not a known, enabled participant";
    default:
        return "X-OC-ID, X-OC-Timestamp, X-OC-Nonce and X-OC-Signature must be present once "
               "and sign this request";
    }
}

/* ---- connections: the process-wide cap and close tracking ---- */

static void on_close_idle(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    Loop *loop = arg;
    guard_remove(loop, evcon);
    release_connection(loop->srv);
}

static void on_close_busy(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    Pending *p = arg;
    guard_remove(p->loop, evcon);
    release_connection(p->loop->srv);
    p->orphaned = true;
    /* Still attached: libevent frees it right after this callback, with the connection.
     * Detached (EOF or timeout before our answer): it is ours to free later. */
    if (evhttp_request_get_connection(p->req) != NULL)
        p->req = NULL;
}

/* evhttp's bufferevent hook: called for every accepted socket, before evhttp builds the
 * connection around the bufferevent returned. The connection object does not exist yet, so
 * the count is taken here and on_accepted (made active now, run before the loop next polls
 * any socket) refuses the connection or registers its close callback. */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    Loop *loop = arg;
    HttpServer *srv = loop->srv;
    struct bufferevent *bev = NULL;
    bool refuse = false;
    if (srv->ssl) {
        SSL *ssl = SSL_new(srv->ssl);
        /* On failure libevent may or may not have freed ssl: a leak under memory
         * exhaustion is better than a double free. */
        if (ssl)
            bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
        if (bev)
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        else
            refuse = true; /* never let a TLS port fall back to plain HTTP */
    }
    if (!bev)
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    if (loop->n_accepted == loop->cap_accepted) {
        size_t cap = loop->cap_accepted * 2;
        Accepted *a = oc_realloc(loop->accepted, loop->cap_accepted * sizeof(*a),
                                 cap * sizeof(*a));
        if (!a) {
            bufferevent_free(bev);
            return NULL;
        }
        loop->accepted = a;
        loop->cap_accepted = cap;
    }
    unsigned n = atomic_fetch_add(&srv->connections, 1) + 1;
    if (n > srv->cfg->max_connections)
        refuse = true;
    bufferevent_incref(bev);
    loop->accepted[loop->n_accepted++] = (Accepted){ bev, refuse };
    event_active(loop->accepted_ev, EV_TIMEOUT, 0);
    return bev;
}

static void on_accepted(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Loop *loop = arg;
    HttpServer *srv = loop->srv;
    for (size_t i = 0; i < loop->n_accepted; i++) {
        struct bufferevent *bev = loop->accepted[i].bev;
        bufferevent_data_cb readcb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
        /* evhttp sets its callbacks with the connection as argument; bufferevent_free
         * clears them, so no callback means evhttp gave up on this socket. */
        struct evhttp_connection *evcon = cbarg;
        if (!readcb || !evcon || evhttp_connection_get_bufferevent(evcon) != bev) {
            /* Only under memory exhaustion. evhttp may already have closed the socket, so
             * keep our reference (a small leak) rather than let the destructor close a
             * descriptor number that may have been reused. */
            release_connection(srv);
            continue;
        }
        if (loop->accepted[i].refuse) {
            release_connection(srv);
            evhttp_connection_free(evcon);
            log_json(LOG_WARN, "connection refused", "\"reason\":\"max_connections\","
                     "\"max_connections\":%u", srv->cfg->max_connections);
        } else {
            evhttp_connection_set_closecb(evcon, on_close_idle, loop);
            guard_add(loop, evcon);
        }
        bufferevent_decref(bev);
    }
    loop->n_accepted = 0;
}

/* ---- requests ---- */

static void pending_free(Pending *p)
{
    dirsnap_release(p->snap);
    oc_free(p->path_param);
    atomic_fetch_sub(&p->loop->in_flight, 1);
    oc_free(p);
}

static void on_settle_done(void *userdata, int status, const char *body, size_t body_len)
{
    Pending *p = userdata;
    if (!p->orphaned) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
        if (evcon)
            evhttp_connection_set_closecb(evcon, on_close_idle, p->loop);
        respond(p->loop, p->req, &p->log, status, body, body_len);
    } else {
        if (p->req)
            evhttp_request_free(p->req);
        log_request(&p->log, status, body, body_len, true);
    }
    pending_free(p);
}

/* ---- operator endpoints: /metrics, /healthz, /readyz ---- */

static void loop_publish_stats(Loop *loop)
{
    DbPoolStats st;
    db_pool_stats(loop->pool, &st);
    atomic_store(&loop->stat_ready, st.ready);
    atomic_store(&loop->stat_in_use, st.in_use);
    atomic_store(&loop->stat_waiting, st.waiting);
    atomic_store(&loop->stat_dispatched, st.dispatched);
    atomic_store(&loop->stat_wait_us, st.total_wait_us);
    atomic_store(&loop->stat_reconnects, st.reconnects);
}

static void on_stats_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    loop_publish_stats(arg);
}

static const Route *ops_match(enum evhttp_cmd_type method, const char *target)
{
    if (!target || target[0] != '/')
        return NULL;
    size_t path_len = strcspn(target, "?");
    for (size_t i = 0; i < OC_ARRAY_LEN(ops_routes); i++) {
        const Route *r = &ops_routes[i];
        if (r->method == method && strlen(r->path) == path_len &&
            memcmp(r->path, target, path_len) == 0)
            return r;
    }
    return NULL;
}

/* Whether the peer is on this host: 127.0.0.0/8, ::1, or an IPv4-mapped 127.x address. */
static bool peer_is_loopback(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *address = NULL;
    ev_uint16_t port = 0;
    if (!evcon)
        return false;
    evhttp_connection_get_peer(evcon, &address, &port);
    if (!address)
        return false;
    return strncmp(address, "127.", 4) == 0 || strcmp(address, "::1") == 0 ||
           strncasecmp(address, "::ffff:127.", 11) == 0;
}

static void respond_readyz(Loop *loop, struct evhttp_request *req, const LogInfo *li)
{
    HttpServer *srv = loop->srv;
    const char *reason = NULL;
    loop_publish_stats(loop);
    if (atomic_load(&srv->draining))
        reason = "draining";
    for (unsigned i = 0; !reason && i < srv->n_loops; i++) {
        if (srv->loops[i].serves_http && !srv->loops[i].bound)
            reason = "listener not bound";
        else if (atomic_load(&srv->loops[i].stat_ready) == 0)
            reason = "database unavailable";
    }
    if (!reason) {
        static const char ok[] = "{\"status\":\"ok\"}";
        respond(loop, req, li, 200, ok, sizeof(ok) - 1);
        return;
    }
    char body[128];
    int n = snprintf(body, sizeof(body), "{\"status\":\"unavailable\",\"reason\":\"%s\"}",
                     reason);
    respond(loop, req, li, 503, body, (size_t)n);
}

/* Answers /metrics once the queue query answered (res) or could not be run (NULL). */
static void finish_metrics(Pending *p, const PGresult *res)
{
    Loop *loop = p->loop;
    HttpServer *srv = loop->srv;
    if (p->orphaned) {
        if (p->req)
            evhttp_request_free(p->req);
        log_request(&p->log, 200, "", 0, true);
        pending_free(p);
        return;
    }
    struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
    if (evcon)
        evhttp_connection_set_closecb(evcon, on_close_idle, loop);

    MetricsGauges g = { 0 };
    loop_publish_stats(loop);
    for (unsigned i = 0; i < srv->n_loops; i++) {
        Loop *l = &srv->loops[i];
        g.db_ready += atomic_load(&l->stat_ready);
        g.db_in_use += atomic_load(&l->stat_in_use);
        g.db_waiting += atomic_load(&l->stat_waiting);
        g.db_dispatched += atomic_load(&l->stat_dispatched);
        g.db_wait_us += atomic_load(&l->stat_wait_us);
        g.db_reconnects += atomic_load(&l->stat_reconnects);
    }
    if (res && PQntuples(res) == 1 && PQnfields(res) == 2) {
        g.have_queue = true;
        g.queue_depth = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        g.oldest_due_age_s = strtod(PQgetvalue(res, 0, 1), NULL);
        if (!(g.oldest_due_age_s > 0))
            g.oldest_due_age_s = 0;
    }
    Buf b = BUF_INIT;
    b.limit = HTTP_METRICS_MAX;
    metrics_write(&b, &g);
    char *body = NULL;
    size_t len = 0;
    if (buf_finish(&b, &body, &len) != 0) {
        respond_error(loop, p->req, &p->log, OC_ERR_UNAVAILABLE, "out of memory");
    } else {
        respond_typed(loop, p->req, &p->log, 200, "text/plain; version=0.0.4; charset=utf-8",
                      body, len);
        oc_free(body);
    }
    pending_free(p);
}

static void on_metrics_queue(void *userdata, DbError err, const PGresult *res)
{
    finish_metrics(userdata, err == DB_OK ? res : NULL);
}

/* The scrape: the delivery queue is read through this loop's pool, asynchronously, only when
 * the pool has a connection (so a database outage does not hold the scrape to the query
 * timeout); everything else is in memory. */
static void respond_metrics(Loop *loop, struct evhttp_request *req, const LogInfo *li)
{
    Pending *p = oc_calloc(1, sizeof(*p));
    if (!p) {
        respond_error(loop, req, li, OC_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    p->loop = loop;
    p->req = req;
    p->log = *li;
    atomic_fetch_add(&loop->in_flight, 1);
    if (db_pool_ready(loop->pool) == 0) {
        finish_metrics(p, NULL);
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_close_busy, p);
    if (db_pool_query(loop->pool, metrics_statement.name, 0, NULL, on_metrics_queue, p) != 0)
        finish_metrics(p, NULL);
}

static void serve_ops(Loop *loop, struct evhttp_request *req, const LogInfo *li,
                      const Route *route)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    switch (route->id) {
    case ROUTE_HEALTHZ:
        respond(loop, req, li, 200, ok, sizeof(ok) - 1);
        break;
    case ROUTE_READYZ:
        respond_readyz(loop, req, li);
        break;
    default:
        respond_metrics(loop, req, li);
        break;
    }
}

/* /verify/{txid}: the percent-decoded segment, or NULL when it cannot name a payment
 * (empty, a '/' inside, a NUL). *oom is set when memory ran out. */
static char *decode_segment(const char *seg, size_t len, bool *oom)
{
    if (len == 0 || memchr(seg, '/', len))
        return NULL;
    char *raw = oc_strndup(seg, len);
    if (!raw) {
        *oom = true;
        return NULL;
    }
    size_t dec_len = 0;
    char *dec = evhttp_uridecode(raw, 0, &dec_len);
    oc_free(raw);
    if (!dec) {
        *oom = true;
        return NULL;
    }
    char *out = NULL;
    if (dec_len > 0 && !memchr(dec, '\0', dec_len) && !memchr(dec, '/', dec_len)) {
        out = oc_strndup(dec, dec_len);
        if (!out)
            *oom = true;
    }
    free(dec); /* libevent allocates with malloc */
    return out;
}

static void loginfo_init(Loop *loop, LogInfo *li, enum evhttp_cmd_type method)
{
    clock_gettime(CLOCK_MONOTONIC, &li->start);
    uint8_t rnd[HTTP_REQUEST_ID_LEN / 2];
    if (RAND_bytes(rnd, sizeof(rnd)) == 1) {
        hex_encode(rnd, sizeof(rnd), li->request_id);
    } else {
        /* Unique within the process is all a request id needs. */
        snprintf(li->request_id, sizeof(li->request_id), "%02x%014" PRIx64,
                 loop->index & 0xffu, (uint64_t)(++loop->id_counter & 0xffffffffffffffu));
    }
    li->method = method_name(method);
    li->route = "unmatched";
    li->caller = -1;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    Loop *loop = arg;
    HttpServer *srv = loop->srv;
    const Config *cfg = srv->cfg;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    LogInfo li;
    loginfo_init(loop, &li, method);
    guard_mark(loop, req, true);

    const char *target = evhttp_request_get_uri(req);
    const char *param = NULL;
    size_t param_len = 0;
    const Route *ops = ops_match(method, target);
    if (ops) {
        if (!peer_is_loopback(req)) {
            respond_error(loop, req, &li, OC_ERR_NOT_FOUND, "no such endpoint");
            return;
        }
        li.route = ops->pattern;
        serve_ops(loop, req, &li, ops);
        return;
    }
    const Route *route = route_match(cfg->base_path, method, target, &param, &param_len);
    if (!route) {
        respond_error(loop, req, &li, OC_ERR_NOT_FOUND, "no such endpoint");
        return;
    }
    li.route = route->pattern;
    if (route->id == ROUTE_METADATA) {
        respond_metadata(loop, req, &li);
        return;
    }

    /* The configured limit, answered signed before any authentication work; libevent has
     * already refused anything past its own cap of four times this. */
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t body_len = evbuffer_get_length(input);
    if (body_len > cfg->body_limit) {
        char msg[96];
        snprintf(msg, sizeof(msg), "the body is larger than %zu bytes", cfg->body_limit);
        respond_error(loop, req, &li, OC_ERR_PAYLOAD_TOO_LARGE, msg);
        return;
    }
    const char *body = "";
    if (body_len > 0) {
        body = (const char *)evbuffer_pullup(input, -1);
        if (!body) {
            respond_error(loop, req, &li, OC_ERR_UNAVAILABLE, "out of memory");
            return;
        }
    }

    const struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    AuthHeaders ah = {
        .ocid = header_once(headers, "X-OC-ID", NULL),
        .timestamp = header_once(headers, "X-OC-Timestamp", NULL),
        .nonce = header_once(headers, "X-OC-Nonce", NULL),
        .signature = header_once(headers, "X-OC-Signature", NULL),
    };
    int64_t now = (int64_t)time(NULL);
    DirSnapshot *snap = directory_acquire(srv->dir);
    const Participant *caller = NULL;
    int r = auth_verify_request(&ah, li.method, target, body, body_len, now,
                                cfg->timestamp_window_s, snap, &caller);
    if (r != 0) {
        dirsnap_release(snap);
        if (r < 0)
            respond_error(loop, req, &li, OC_ERR_UNAVAILABLE, "out of memory");
        else
            respond_error(loop, req, &li, (OcErrorCode)r, auth_message(r));
        return;
    }
    li.caller = caller->ocid;

    /* The budget is charged only once the signature verified: keyed by an OCID nobody can
     * claim without its key, so one participant cannot spend another's. Unauthenticated
     * traffic is bounded by max_connections, idle_timeout and the size limits (and per-IP
     * limits belong in the proxy in front). A limited request is refused before settle/
     * sees it, so it writes nothing, not even its nonce: the caller may retry. */
    unsigned retry_after = 0;
    struct timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    if (!ratelimit_take(srv->limiter, caller->ocid,
                        (uint64_t)mono.tv_sec * UINT64_C(1000000000) + (uint64_t)mono.tv_nsec,
                        &retry_after)) {
        dirsnap_release(snap);
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", retry_after);
        if (evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra) != 0) {
            respond_error(loop, req, &li, OC_ERR_UNAVAILABLE, "out of memory");
            return;
        }
        respond_error(loop, req, &li, OC_ERR_RATE_LIMITED,
                      "too many requests from this participant; retry after Retry-After "
                      "seconds");
        return;
    }

    Pending *p = oc_calloc(1, sizeof(*p));
    if (!p) {
        dirsnap_release(snap);
        respond_error(loop, req, &li, OC_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    p->loop = loop;
    p->req = req;
    p->snap = snap;
    p->log = li;
    atomic_fetch_add(&loop->in_flight, 1);

    SettleRequest sr = {
        .caller = caller,
        .dir = snap,
        .nonce = ah.nonce,
        .body = body,
        .body_len = body_len,
        .now = now,
        .request_id = p->log.request_id,
    };
    OcErrorCode refusal = OC_ERR_NONE;
    const char *refusal_msg = NULL;
    if (route->id == ROUTE_VERIFY) {
        bool oom = false;
        p->path_param = decode_segment(param, param_len, &oom);
        if (oom) {
            refusal = OC_ERR_UNAVAILABLE;
            refusal_msg = "out of memory";
        } else if (!p->path_param) {
            refusal = OC_ERR_NOT_FOUND;
            refusal_msg = "no such endpoint";
        }
        sr.path_param = p->path_param;
    } else if (route->id == ROUTE_PAYMENT_CREATE) {
        bool repeated = false;
        sr.idempotency_key = header_once(headers, "Idempotency-Key", &repeated);
        if (repeated) {
            refusal = OC_ERR_BAD_REQUEST;
            refusal_msg = "Idempotency-Key appears more than once";
        }
    } else if (route->id == ROUTE_UNSUPPORTED) {
        refusal = OC_ERR_CAPABILITY_NOT_SUPPORTED;
        refusal_msg = "this gateway does not offer this endpoint";
    }

    /* From here the answer comes through on_settle_done, possibly before settle returns;
     * p must not be touched after the call. */
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_close_busy, p);
    SettleCtx *sc = &loop->settle;
    if (refusal != OC_ERR_NONE) {
        settle_refuse(sc, &sr, refusal, refusal_msg, on_settle_done, p);
        return;
    }
    switch (route->id) {
    case ROUTE_CAPABILITIES:
        settle_capabilities(sc, &sr, on_settle_done, p);
        break;
    case ROUTE_PAYMENT_CREATE:
        settle_payment_create(sc, &sr, on_settle_done, p);
        break;
    case ROUTE_PAYMENT_SETTLE:
        settle_payment_settle(sc, &sr, on_settle_done, p);
        break;
    case ROUTE_TRANSFER_WEBHOOK:
        settle_transfer_webhook(sc, &sr, on_settle_done, p);
        break;
    case ROUTE_VERIFY:
        settle_verify(sc, &sr, on_settle_done, p);
        break;
    case ROUTE_METADATA:
    case ROUTE_UNSUPPORTED:
    default:
        settle_refuse(sc, &sr, OC_ERR_INTERNAL, "unroutable", on_settle_done, p);
        break;
    }
}

/* ---- the delivery worker ---- */

/* SettleCtx.on_enqueued of every loop: wakes the worker right after a commit that enqueued a
 * notification (design.md, "wake-ups"). */
static void wake_deliverer(void *arg)
{
    HttpServer *srv = arg;
    pthread_mutex_lock(&srv->deliverer_lock);
    deliverer_wake(srv->deliverer);
    pthread_mutex_unlock(&srv->deliverer_lock);
}

/* Frees the worker; on the delivery loop's thread, or once that loop no longer runs. Its
 * attempts still in flight are cancelled and their rows retaken by any worker when their
 * lease ends. */
static void stop_deliverer(HttpServer *srv)
{
    if (!srv->deliverer_lock_ready)
        return;
    pthread_mutex_lock(&srv->deliverer_lock);
    Deliverer *d = srv->deliverer;
    srv->deliverer = NULL;
    pthread_mutex_unlock(&srv->deliverer_lock);
    deliverer_free(d);
}

/* ---- shutdown ---- */

static void on_stop_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Loop *loop = arg;
    /* Draining: claim nothing new. */
    if (loop == loop->srv->delivery_loop)
        stop_deliverer(loop->srv);
    if (loop->bound) {
        /* Frees the listener; LEV_OPT_CLOSE_ON_FREE is off, so the shared socket stays. */
        evhttp_del_accept_socket(loop->http, loop->bound);
        loop->bound = NULL;
    }
    atomic_fetch_add(&loop->srv->listeners_closed, 1);
}

static void on_shutdown(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Loop *loop = arg;
    if (loop->http) {
        /* Closes every connection; requests still waiting on settle/ become orphans. */
        evhttp_free(loop->http);
        loop->http = NULL;
        loop->bound = NULL;
    }
    if (loop->index == 0 && loop->srv->maintenance_started) {
        settle_stop_maintenance(&loop->settle);
        loop->srv->maintenance_started = false;
    }
    event_base_loopexit(loop->base, NULL);
}

static unsigned in_flight_total(HttpServer *srv)
{
    unsigned n = 0;
    for (unsigned i = 0; i < srv->n_loops; i++)
        n += atomic_load(&srv->loops[i].in_flight);
    return n;
}

static void stop_loops(HttpServer *srv)
{
    for (unsigned i = 0; i < srv->n_loops; i++)
        if (srv->loops[i].thread_started)
            event_active(srv->loops[i].shutdown_ev, EV_TIMEOUT, 0);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    HttpServer *srv = arg;
    if (srv->fd >= 0 && atomic_load(&srv->listeners_closed) == srv->n_loops) {
        evutil_closesocket(srv->fd);
        srv->fd = -1;
    }
    unsigned busy = in_flight_total(srv);
    double waited = ms_since(&srv->drain_start);
    if ((srv->fd < 0 && busy == 0) || waited >= HTTP_DRAIN_LIMIT_MS) {
        if (busy)
            log_json(LOG_WARN, "drain limit reached", "\"in_flight\":%u,\"waited_ms\":%.0f",
                     busy, waited);
        event_del(srv->drain_timer);
        stop_loops(srv);
        event_base_loopexit(srv->main_base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    HttpServer *srv = arg;
    if (atomic_exchange(&srv->draining, true))
        return; /* already draining; the bound still holds */
    log_json(LOG_INFO, "shutting down", "\"signal\":%d,\"in_flight\":%u", (int)sig,
             in_flight_total(srv));
    clock_gettime(CLOCK_MONOTONIC, &srv->drain_start);
    for (unsigned i = 0; i < srv->n_loops; i++)
        event_active(srv->loops[i].stop_accept_ev, EV_TIMEOUT, 0);
    struct timeval tick = { 0, HTTP_DRAIN_TICK_MS * 1000 };
    event_add(srv->drain_timer, &tick);
}

/* ---- gateway key reload (SIGHUP; docs/key-rotation.md) ---- */

static void on_rekey(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Loop *loop = arg;
    HttpServer *srv = loop->srv;
    pthread_mutex_lock(&srv->key_lock);
    loop->key = srv->next_key;
    pthread_mutex_unlock(&srv->key_lock);
    /* The cached metadata document carries the old key and its signature. */
    dirsnap_release(loop->meta_snap);
    loop->meta_snap = NULL;
    oc_free(loop->meta_body);
    loop->meta_body = NULL;
    loop->meta_len = 0;
}

static const char *key_load_problem(int r)
{
    switch (r) {
    case KEY_E_PERMISSIONS:
        return "readable or writable by group or others";
    case KEY_E_FORMAT:
        return "not a valid secp256k1 private key (64 hex digits)";
    case KEY_E_FILE:
        return "not a regular file, or too large";
    default:
        return r < 0 ? strerror(-r) : "unusable";
    }
}

/* Re-reads private_key_file (the path configured at start). Main thread; the file read
 * blocks only this thread, never a loop. A file that cannot be used changes nothing: the
 * gateway goes on signing with the key it has. */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    HttpServer *srv = arg;
    char file[512];
    log_json_str(srv->cfg->private_key_file, file, sizeof(file));
    PrivateKey k;
    int r = key_load_private_file(srv->cfg->private_key_file, &k);
    if (r != 0) {
        log_json(LOG_ERROR, "gateway key reload failed; keeping the current key",
                 "\"file\":%s,\"reason\":\"%s\"", file, key_load_problem(r));
        return;
    }
    char pub[KEY_PUBLIC_HEX_LEN + 1];
    key_format_public(&k.pub, pub);
    pthread_mutex_lock(&srv->key_lock);
    srv->next_key = k;
    pthread_mutex_unlock(&srv->key_lock);
    key_private_wipe(&k);
    for (unsigned i = 0; i < srv->n_loops; i++)
        event_active(srv->loops[i].rekey_ev, EV_TIMEOUT, 0);
    log_json(LOG_INFO, "gateway key reloaded", "\"file\":%s,\"public_key\":\"%s\"", file,
             pub);
}

static void *loop_main(void *arg)
{
    Loop *loop = arg;
    /* Signals belong to the main thread's loop. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* Named, so that top -H, perf and /proc tell the request loops from the delivery loop
     * (at most 15 characters). */
    char name[16];
    if (loop->serves_http)
        snprintf(name, sizeof(name), "ocgate-http%u", loop->index);
    else
        snprintf(name, sizeof(name), "ocgate-deliver");
    (void)pthread_setname_np(pthread_self(), name);
    event_base_loop(loop->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int http_server_run(HttpServer *srv)
{
    if (srv->ran)
        return -EALREADY;
    srv->ran = true;
    int r = -ENOMEM;
    srv->main_base = event_base_new();
    if (!srv->main_base)
        return -ENOMEM;
    srv->sig_term = evsignal_new(srv->main_base, SIGTERM, on_signal, srv);
    srv->sig_int = evsignal_new(srv->main_base, SIGINT, on_signal, srv);
    srv->sig_hup = evsignal_new(srv->main_base, SIGHUP, on_reload, srv);
    srv->drain_timer = event_new(srv->main_base, -1, EV_PERSIST, on_drain_tick, srv);
    if (!srv->sig_term || !srv->sig_int || !srv->sig_hup || !srv->drain_timer ||
        event_add(srv->sig_term, NULL) != 0 || event_add(srv->sig_int, NULL) != 0 ||
        event_add(srv->sig_hup, NULL) != 0)
        return -ENOMEM;

    if (settle_start_maintenance(&srv->loops[0].settle) != 0)
        return -ENOMEM;
    srv->maintenance_started = true;

    for (unsigned i = 0; i < srv->n_loops; i++) {
        int e = pthread_create(&srv->loops[i].thread, NULL, loop_main, &srv->loops[i]);
        if (e != 0) {
            r = -e;
            log_json(LOG_ERROR, "cannot start a loop thread", "\"error\":\"%s\"", strerror(e));
            stop_loops(srv);
            goto join;
        }
        srv->loops[i].thread_started = true;
    }
    r = 0;
    event_base_dispatch(srv->main_base);
join:
    for (unsigned i = 0; i < srv->n_loops; i++) {
        if (srv->loops[i].thread_started) {
            pthread_join(srv->loops[i].thread, NULL);
            srv->loops[i].thread_started = false;
        }
    }
    if (srv->maintenance_started) {
        settle_stop_maintenance(&srv->loops[0].settle);
        srv->maintenance_started = false;
    }
    return r;
}

/* ---- construction ---- */

static int fail(char *err, size_t err_len, int code, const char *fmt, ...) OC_PRINTF(4, 5);
static int fail(char *err, size_t err_len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return code;
}

static void ssl_error_text(char *out, size_t out_len)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, out_len);
    else
        snprintf(out, out_len, "unknown error");
    ERR_clear_error();
}

/* Reads the TLS private key ourselves so that its permissions are checked on the very file
 * that is read (no window between stat and open), and the bytes are wiped afterwards. */
static int load_tls_key(SSL_CTX *ctx, const char *path, char *err, size_t err_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return fail(err, err_len, -errno, "cannot open the TLS key file %s: %s", path,
                    strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > HTTP_TLS_KEY_MAX) {
        close(fd);
        return fail(err, err_len, -EINVAL, "the TLS key file %s is not a regular file of at "
                    "most 1 MiB", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return fail(err, err_len, -EACCES, "the TLS key file %s is readable by group or "
                    "others; refusing it (chmod 600)", path);
    }
    size_t size = (size_t)st.st_size;
    char *buf = oc_malloc(size + 1);
    if (!buf) {
        close(fd);
        return fail(err, err_len, -ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    int r = 0;
    BIO *bio = got == size ? BIO_new_mem_buf(buf, (int)size) : NULL;
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(buf, size + 1);
    oc_free(buf);
    if (!pkey) {
        ERR_clear_error(); /* its text could quote the file */
        return fail(err, err_len, -EINVAL, "the TLS key file %s holds no usable PEM private "
                    "key", path);
    }
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        r = fail(err, err_len, -EINVAL, "the TLS key file %s does not match the certificate",
                 path);
    }
    EVP_PKEY_free(pkey);
    return r;
}

static int setup_tls(HttpServer *srv, char *err, size_t err_len)
{
    const Config *cfg = srv->cfg;
    if (!cfg->tls_cert_file && !cfg->tls_key_file)
        return 0;
    if (!cfg->tls_cert_file || !cfg->tls_key_file)
        return fail(err, err_len, -EINVAL, "TLS needs both tls_cert_file and tls_key_file");
    srv->ssl = SSL_CTX_new(TLS_server_method());
    if (!srv->ssl)
        return fail(err, err_len, -ENOMEM, "cannot create the TLS context");
    SSL_CTX_set_min_proto_version(srv->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(srv->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                      SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(srv->ssl, cfg->tls_cert_file) != 1) {
        char e[256];
        ssl_error_text(e, sizeof(e));
        return fail(err, err_len, -EINVAL, "cannot load the TLS certificate file %s: %s",
                    cfg->tls_cert_file, e);
    }
    return load_tls_key(srv->ssl, cfg->tls_key_file, err, err_len);
}

/* Resolves cfg->listen ("host:port" or "[v6]:port"): getaddrinfo resolves numeric addresses
 * without a lookup and host names with one, which is fine at start-up, before any loop runs.
 * The first address returned is used. */
static int resolve_listen(const char *listen_on, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *port;
    size_t host_len;
    if (listen_on[0] == '[') {
        const char *end = strchr(listen_on, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        host_len = (size_t)(end - listen_on - 1);
        memcpy(host, listen_on + 1, host_len < sizeof(host) ? host_len : 0);
        port = end + 2;
    } else {
        const char *colon = strrchr(listen_on, ':');
        if (!colon)
            return -EINVAL;
        host_len = (size_t)(colon - listen_on);
        memcpy(host, listen_on, host_len < sizeof(host) ? host_len : 0);
        port = colon + 1;
    }
    if (host_len == 0 || host_len >= sizeof(host) || !*port)
        return -EINVAL;
    host[host_len] = '\0';
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                              .ai_socktype = SOCK_STREAM };
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int open_listener(HttpServer *srv, char *err, size_t err_len)
{
    const char *listen_on = srv->cfg->listen;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!listen_on || resolve_listen(listen_on, &ss, &len) != 0)
        return fail(err, err_len, -EINVAL, "listen: cannot resolve '%s' to an address and port",
                    listen_on ? listen_on : "");
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(err, err_len, -errno, "socket: %s", strerror(errno));
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        listen(fd, HTTP_LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        return fail(err, err_len, -e, "cannot listen on %s: %s", listen_on, strerror(e));
    }
    socklen_t alen = sizeof(srv->addr);
    if (getsockname(fd, (struct sockaddr *)&srv->addr, &alen) != 0) {
        int e = errno;
        close(fd);
        return fail(err, err_len, -e, "getsockname: %s", strerror(e));
    }
    srv->fd = fd;
    return 0;
}

/* The request side of a loop: its evhttp and its listener on the shared socket. */
static int setup_loop_http(HttpServer *srv, Loop *loop, char *err, size_t err_len)
{
    const Config *cfg = srv->cfg;
    loop->http = evhttp_new(loop->base);
    if (!loop->http)
        return fail(err, err_len, -ENOMEM, "out of memory");
    evhttp_set_max_headers_size(loop->http, (ev_ssize_t)cfg->header_limit);
    /* Well above the configured limit, so that bodies up to four times it reach the
     * handler and get our signed 413 (design.md, "oversized bodies"). */
    size_t hard_cap = cfg->body_limit <= (size_t)(EV_SSIZE_MAX / 4) ? cfg->body_limit * 4
                                                                      : (size_t)EV_SSIZE_MAX;
    evhttp_set_max_body_size(loop->http, (ev_ssize_t)hard_cap);
    evhttp_set_timeout(loop->http, (int)cfg->idle_timeout_s);
    evhttp_set_allowed_methods(loop->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(loop->http, on_request, loop);
    evhttp_set_bevcb(loop->http, on_new_connection, loop);

    /* Backlog 0: the socket already listens with HTTP_LISTEN_BACKLOG (-1 would call
     * listen() again with libevent's default of 128). Not LEV_OPT_CLOSE_ON_FREE: the socket
     * is shared by every loop and closed once, by the server. */
    struct evconnlistener *lev =
        evconnlistener_new(loop->base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                           0, srv->fd);
    if (!lev)
        return fail(err, err_len, -ENOMEM, "cannot create a listener");
    loop->bound = evhttp_bind_listener(loop->http, lev);
    if (!loop->bound) {
        evconnlistener_free(lev);
        return fail(err, err_len, -ENOMEM, "cannot bind the listener");
    }
    return 0;
}

static int setup_loop(HttpServer *srv, Loop *loop, bool serves_http,
                      const DbPoolOptions *pool_options, char *err, size_t err_len)
{
    const Config *cfg = srv->cfg;
    loop->srv = srv;
    loop->serves_http = serves_http;
    atomic_init(&loop->in_flight, 0);
    loop->base = event_base_new();
    if (!loop->base)
        return fail(err, err_len, -ENOMEM, "cannot create an event loop");
    loop->cap_accepted = 16;
    loop->accepted = oc_calloc(loop->cap_accepted, sizeof(*loop->accepted));
    loop->accepted_ev = event_new(loop->base, -1, 0, on_accepted, loop);
    loop->stop_accept_ev = event_new(loop->base, -1, 0, on_stop_accept, loop);
    loop->shutdown_ev = event_new(loop->base, -1, 0, on_shutdown, loop);
    loop->rekey_ev = event_new(loop->base, -1, 0, on_rekey, loop);
    loop->key = *srv->key;
    if (!loop->accepted || !loop->accepted_ev || !loop->stop_accept_ev || !loop->shutdown_ev ||
        !loop->rekey_ev)
        return fail(err, err_len, -ENOMEM, "out of memory");
    if (serves_http) {
        int r = setup_loop_http(srv, loop, err, err_len);
        if (r != 0)
            return r;
    }

    loop->pool = db_pool_new(loop->base, pool_options);
    if (!loop->pool)
        return fail(err, err_len, -ENOMEM, "cannot create the database pool");
    atomic_init(&loop->stat_ready, 0);
    atomic_init(&loop->stat_in_use, 0);
    atomic_init(&loop->stat_waiting, 0);
    atomic_init(&loop->stat_dispatched, 0);
    atomic_init(&loop->stat_wait_us, 0);
    atomic_init(&loop->stat_reconnects, 0);
    loop->stats_ev = event_new(loop->base, -1, EV_PERSIST, on_stats_tick, loop);
    struct timeval tick = { 0, HTTP_STATS_TICK_MS * 1000 };
    if (!loop->stats_ev || event_add(loop->stats_ev, &tick) != 0)
        return fail(err, err_len, -ENOMEM, "out of memory");
    loop->sweep_ev = event_new(loop->base, -1, EV_PERSIST, on_sweep, loop);
    struct timeval second = { 1, 0 };
    if (!loop->sweep_ev || event_add(loop->sweep_ev, &second) != 0)
        return fail(err, err_len, -ENOMEM, "out of memory");
    loop->settle = (SettleCtx){
        .base = loop->base,
        .cfg = cfg,
        .gateway_key = &loop->key,
        .db = loop->pool,
        .directory = srv->dir,
        .maintenance = NULL,
    };
    return 0;
}

int http_server_new(const HttpServerOptions *options, HttpServer **out, char *err,
                    size_t err_len)
{
    const Config *cfg = options->cfg;
    /* Before any event_base exists: the main thread activates events on the loops. */
    if (evthread_use_pthreads() != 0)
        return fail(err, err_len, -ENOMEM, "cannot enable libevent threading");

    HttpServer *srv = oc_calloc(1, sizeof(*srv));
    if (!srv)
        return fail(err, err_len, -ENOMEM, "out of memory");
    srv->cfg = cfg;
    srv->key = options->gateway_key;
    srv->dir = options->directory;
    srv->fd = -1;
    atomic_init(&srv->connections, 0);
    atomic_init(&srv->listeners_closed, 0);
    atomic_init(&srv->draining, false);
    int r;
    if (pthread_mutex_init(&srv->deliverer_lock, NULL) != 0) {
        oc_free(srv);
        return fail(err, err_len, -ENOMEM, "cannot create a mutex");
    }
    srv->deliverer_lock_ready = true;
    if (pthread_mutex_init(&srv->key_lock, NULL) != 0) {
        r = fail(err, err_len, -ENOMEM, "cannot create a mutex");
        goto error;
    }
    srv->key_lock_ready = true;
    srv->limiter = ratelimit_new(cfg->rate_limit, cfg->rate_limit_burst);
    if (!srv->limiter) {
        r = fail(err, err_len, -ENOMEM, "out of memory");
        goto error;
    }

    srv->n_statements = settle_statement_count + directory_statement_count +
                        deliver_statement_count + 1;
    srv->statements = oc_calloc(srv->n_statements, sizeof(DbStatement));
    if (!srv->statements) {
        r = fail(err, err_len, -ENOMEM, "out of memory");
        goto error;
    }
    memcpy(srv->statements, settle_statements, settle_statement_count * sizeof(DbStatement));
    memcpy(srv->statements + settle_statement_count, directory_statements,
           directory_statement_count * sizeof(DbStatement));
    memcpy(srv->statements + settle_statement_count + directory_statement_count,
           deliver_statements, deliver_statement_count * sizeof(DbStatement));
    srv->statements[srv->n_statements - 1] = metrics_statement;

    if (options->db_password && *options->db_password) {
        srv->password_len = strlen(options->db_password);
        srv->password = oc_strndup(options->db_password, srv->password_len);
        if (!srv->password) {
            r = fail(err, err_len, -ENOMEM, "out of memory");
            goto error;
        }
    }
    db_conn_params_init(&srv->conn, NULL, cfg->database_url, srv->password, "ocgate");
    DbPoolOptions pool_options = {
        .conn_keywords = srv->conn.keywords,
        .conn_values = srv->conn.values,
        .size = cfg->pool_size,
        .statements = srv->statements,
        .n_statements = srv->n_statements,
        .max_queue = HTTP_DB_MAX_QUEUE,
        .query_timeout_ms = cfg->db_timeout_ms,
        .connect_timeout_ms = HTTP_DB_CONNECT_TIMEOUT_MS,
    };

    r = setup_tls(srv, err, err_len);
    if (r != 0)
        goto error;
    r = open_listener(srv, err, err_len);
    if (r != 0)
        goto error;

    unsigned http_loops = cfg->threads ? cfg->threads : 1;
    srv->n_loops = http_loops + (cfg->worker ? 1 : 0);
    srv->loops = oc_calloc(srv->n_loops, sizeof(Loop));
    if (!srv->loops) {
        srv->n_loops = 0;
        r = fail(err, err_len, -ENOMEM, "out of memory");
        goto error;
    }
    for (unsigned i = 0; i < srv->n_loops; i++) {
        srv->loops[i].index = i;
        r = setup_loop(srv, &srv->loops[i], i < http_loops, &pool_options, err, err_len);
        if (r != 0)
            goto error;
    }
    if (cfg->worker) {
        srv->delivery_loop = &srv->loops[http_loops];
        srv->deliverer = deliverer_new(srv->delivery_loop->base, srv->delivery_loop->pool, cfg,
                                       &srv->delivery_loop->key, srv->dir);
        if (!srv->deliverer) {
            r = fail(err, err_len, -ENOMEM, "cannot start the delivery worker (is "
                     "delivery_ca_file a readable PEM bundle?)");
            goto error;
        }
        for (unsigned i = 0; i < srv->n_loops; i++) {
            srv->loops[i].settle.on_enqueued = wake_deliverer;
            srv->loops[i].settle.on_enqueued_arg = srv;
        }
    }
    *out = srv;
    return 0;

error:
    http_server_free(srv);
    return r;
}

struct event_base *http_server_loop_base(HttpServer *srv, unsigned i)
{
    return i < srv->n_loops ? srv->loops[i].base : NULL;
}

DbPool *http_server_loop_pool(HttpServer *srv, unsigned i)
{
    return i < srv->n_loops ? srv->loops[i].pool : NULL;
}

void http_server_address(const HttpServer *srv, char *out, size_t out_len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (srv->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&srv->addr;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, out_len, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&srv->addr;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, out_len, "%s:%u", host, ntohs(a->sin_port));
    }
}

void http_server_free(HttpServer *srv)
{
    if (!srv)
        return;
    /* Connections first, so every request still waiting on a pool is an orphan by the time
     * the pools fail it. */
    for (unsigned i = 0; i < srv->n_loops; i++) {
        Loop *loop = &srv->loops[i];
        if (loop->http) {
            evhttp_free(loop->http);
            loop->http = NULL;
        }
    }
    if (srv->maintenance_started && srv->n_loops > 0) {
        settle_stop_maintenance(&srv->loops[0].settle);
        srv->maintenance_started = false;
    }
    /* Before the pools: the worker's queries are failed by them, not run after it. */
    stop_deliverer(srv);
    for (unsigned i = 0; i < srv->n_loops; i++) {
        db_pool_free(srv->loops[i].pool);
        srv->loops[i].pool = NULL;
    }
    for (unsigned i = 0; i < srv->n_loops; i++) {
        Loop *loop = &srv->loops[i];
        for (size_t j = 0; j < loop->n_accepted; j++)
            bufferevent_decref(loop->accepted[j].bev);
        oc_free(loop->accepted);
        if (loop->accepted_ev)
            event_free(loop->accepted_ev);
        if (loop->stop_accept_ev)
            event_free(loop->stop_accept_ev);
        if (loop->shutdown_ev)
            event_free(loop->shutdown_ev);
        if (loop->stats_ev)
            event_free(loop->stats_ev);
        if (loop->rekey_ev)
            event_free(loop->rekey_ev);
        if (loop->sweep_ev)
            event_free(loop->sweep_ev);
        while (loop->guards) {
            ConnGuard *g = loop->guards;
            loop->guards = g->next;
            oc_free(g);
        }
        oc_free(loop->guard_by_fd);
        key_private_wipe(&loop->key);
        dirsnap_release(loop->meta_snap);
        oc_free(loop->meta_body);
        if (loop->base)
            event_base_free(loop->base);
    }
    oc_free(srv->loops);
    if (srv->drain_timer)
        event_free(srv->drain_timer);
    if (srv->sig_term)
        event_free(srv->sig_term);
    if (srv->sig_int)
        event_free(srv->sig_int);
    if (srv->sig_hup)
        event_free(srv->sig_hup);
    key_private_wipe(&srv->next_key);
    if (srv->key_lock_ready)
        pthread_mutex_destroy(&srv->key_lock);
    if (srv->main_base)
        event_base_free(srv->main_base);
    if (srv->fd >= 0)
        evutil_closesocket(srv->fd);
    SSL_CTX_free(srv->ssl);
    if (srv->password) {
        OPENSSL_cleanse(srv->password, srv->password_len);
        oc_free(srv->password);
    }
    oc_free(srv->statements);
    ratelimit_free(srv->limiter);
    if (srv->deliverer_lock_ready)
        pthread_mutex_destroy(&srv->deliverer_lock);
    oc_free(srv);
}
