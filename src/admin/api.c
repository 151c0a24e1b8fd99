/* The admin HTTP API (api.h): routing, HMAC authentication against the sealed client secret,
 * scopes, input checks, and the statements of admin.h through an asynchronous pool. What each
 * operation does lives in SQL (migrations 0004 and 0005); this file decides who may call what
 * and turns answers into HTTP. */
#include "admin/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <event2/util.h>
#include <inttypes.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/queue.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/remote.h"
#include "admin/seal.h"
#include "obs/log.h"
#include "proto/keys.h"
#include "settle/settle.h"
#include "store/deliveries.h"
#include "store/pool.h"
#include "util/alloc.h"
#include "util/hex.h"

#define API_POOL_SIZE 2
#define API_MAX_QUEUE 256
#define API_CONNECT_TIMEOUT_MS 2000
#define API_LISTEN_BACKLOG 128
#define API_KEY_MAX 200          /* Idempotency-Key */
#define API_PARAM_MAX 128        /* a path segment */
/* Open connections at once; more are closed unanswered, so that no local process can spend
 * the descriptors the public listener needs. */
#define API_MAX_CONNECTIONS 128

typedef enum ApiRouteId {
    R_PAYMENTS,
    R_PAYMENT,
    R_BALANCES,
    R_LEDGER,
    R_EXCEPTIONS,
    R_RESOLVE,
    R_DELIVERIES,
    R_DELIVERY,
    R_RETRY,
    R_PARTICIPANTS,
    R_PARTICIPANT,
    R_PARTICIPANT_CREATE,
    R_PARTICIPANT_UPDATE,
    R_PARTICIPANT_DISABLE,
} ApiRouteId;

typedef struct ApiRoute {
    enum evhttp_cmd_type method;
    const char *prefix;          /* the whole path, or the part before the parameter */
    const char *suffix;          /* after the parameter; NULL = no parameter */
    ApiRouteId id;
    const char *scope;
    const char *pattern;         /* for the log */
    const char *const *query;    /* accepted query parameters, NULL-terminated */
} ApiRoute;

static const char *const q_none[] = { NULL };
static const char *const q_payments[] = { "status", "merchant", "currency", "from", "to",
                                          "cursor", "limit", NULL };
static const char *const q_balances[] = { "merchant", NULL };
static const char *const q_ledger[] = { "account", "cursor", "limit", NULL };
static const char *const q_exceptions[] = { "status", "kind", "cursor", "limit", NULL };
static const char *const q_deliveries[] = { "state", "merchant", "order", "cursor", "limit",
                                            NULL };
static const char *const q_page[] = { "cursor", "limit", NULL };

#define V1 "/admin/v1"
static const ApiRoute api_routes[] = {
    { EVHTTP_REQ_GET, V1 "/payments", NULL, R_PAYMENTS, "payments:read", V1 "/payments",
      q_payments },
    { EVHTTP_REQ_GET, V1 "/payments/", "", R_PAYMENT, "payments:read", V1 "/payments/{txid}",
      q_none },
    { EVHTTP_REQ_GET, V1 "/balances", NULL, R_BALANCES, "balances:read", V1 "/balances",
      q_balances },
    { EVHTTP_REQ_GET, V1 "/ledger", NULL, R_LEDGER, "balances:read", V1 "/ledger", q_ledger },
    { EVHTTP_REQ_GET, V1 "/exceptions", NULL, R_EXCEPTIONS, "exceptions:read",
      V1 "/exceptions", q_exceptions },
    { EVHTTP_REQ_POST, V1 "/exceptions/", "/resolve", R_RESOLVE, "exceptions:write",
      V1 "/exceptions/{id}/resolve", q_none },
    { EVHTTP_REQ_GET, V1 "/deliveries", NULL, R_DELIVERIES, "deliveries:read",
      V1 "/deliveries", q_deliveries },
    { EVHTTP_REQ_GET, V1 "/deliveries/", "", R_DELIVERY, "deliveries:read",
      V1 "/deliveries/{id}", q_none },
    { EVHTTP_REQ_POST, V1 "/deliveries/", "/retry", R_RETRY, "deliveries:write",
      V1 "/deliveries/{id}/retry", q_none },
    { EVHTTP_REQ_GET, V1 "/participants", NULL, R_PARTICIPANTS, "participants:read",
      V1 "/participants", q_page },
    { EVHTTP_REQ_POST, V1 "/participants", NULL, R_PARTICIPANT_CREATE, "participants:write",
      V1 "/participants", q_none },
    { EVHTTP_REQ_GET, V1 "/participants/", "", R_PARTICIPANT, "participants:read",
      V1 "/participants/{ocid}", q_none },
    { EVHTTP_REQ_POST, V1 "/participants/", "", R_PARTICIPANT_UPDATE, "participants:write",
      V1 "/participants/{ocid}", q_none },
    { EVHTTP_REQ_POST, V1 "/participants/", "/disable", R_PARTICIPANT_DISABLE,
      "participants:write", V1 "/participants/{ocid}/disable", q_none },
};

struct AdminApi {
    const Config *cfg;
    SealKey seal;
    evutil_socket_t fd;
    struct sockaddr_storage addr;
    struct event_base *base;
    struct evhttp *http;
    DbPool *pool;
    char *password;
    size_t password_len;
    DbConnParams conn;
    pthread_t thread;
    bool running;
    uint64_t id_counter;
    /* Connections (API_MAX_CONNECTIONS): counted when evhttp builds one (on_new_connection),
     * judged once it exists (on_accepted), uncounted when it closes. */
    int connections;   /* signed: a close of a connection evhttp built alone must not wrap */
    struct bufferevent **accepted;
    bool *refuse;
    size_t n_accepted, cap_accepted;
    struct event *accepted_ev;
};

/* One request from receipt to answer. The evhttp_request belongs to libevent: when the
 * connection closes first, libevent either frees it with the connection (req becomes NULL)
 * or detaches it, and then it is ours to free (req stays set). */
typedef struct ApiCall {
    AdminApi *api;
    struct evhttp_request *req;
    bool orphaned;
    const ApiRoute *route;
    const char *method;
    char request_id[17];
    struct timespec start;
    char client[ADMIN_CLIENT_ID_LEN + 1];   /* "" until the header passed its format check */
    bool authenticated;
    char timestamp[16];
    char signature[2 * SHA256_DIGEST_LENGTH + 1];   /* lower-cased */
    char *target;
    char *body;
    size_t body_len;
    char *idem_key;
    char *param;
} ApiCall;

/* ---- answers ---- */

static double ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

static void call_free(ApiCall *c)
{
    if (!c)
        return;
    oc_free(c->target);
    if (c->body) {
        OPENSSL_cleanse(c->body, c->body_len);
        oc_free(c->body);
    }
    oc_free(c->idem_key);
    oc_free(c->param);
    oc_free(c);
}

static void log_call(const ApiCall *c, int status, const char *code, bool dropped)
{
    char route[96], client[64], code_json[48];
    log_json_str(c->route ? c->route->pattern : "unmatched", route, sizeof(route));
    if (c->client[0])
        snprintf(client, sizeof(client), "\"%s\"", c->client);
    else
        snprintf(client, sizeof(client), "null");
    if (code)
        snprintf(code_json, sizeof(code_json), "\"%s\"", code);
    else
        snprintf(code_json, sizeof(code_json), "null");
    log_json(LOG_INFO, "admin request",
             "\"request_id\":\"%s\",\"method\":\"%s\",\"route\":%s,\"status\":%d,\"code\":%s,"
             "\"client\":%s,\"authenticated\":%s,\"duration_ms\":%.3f%s",
             c->request_id, c->method, route, status, code_json, client,
             c->authenticated ? "true" : "false", ms_since(&c->start),
             dropped ? ",\"dropped\":\"client gone\"" : "");
}

static void on_close_idle(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    AdminApi *api = arg;
    api->connections--;
}

static void on_close_busy(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    ApiCall *c = arg;
    c->api->connections--;
    c->orphaned = true;
    if (evhttp_request_get_connection(c->req) != NULL)
        c->req = NULL;
}

/* Sends body with status (or logs that the caller left) and frees the call. */
static void finish(ApiCall *c, int status, const char *code, const char *body, size_t len,
                   bool replayed)
{
    if (c->orphaned) {
        if (c->req)
            evhttp_request_free(c->req);
        log_call(c, status, code, true);
        call_free(c);
        return;
    }
    struct evhttp_connection *evcon = evhttp_request_get_connection(c->req);
    if (evcon)
        evhttp_connection_set_closecb(evcon, on_close_idle, c->api);
    struct evkeyvalq *out = evhttp_request_get_output_headers(c->req);
    int r = evhttp_add_header(out, "Content-Type", "application/json");
    r |= evhttp_add_header(out, "X-Request-Id", c->request_id);
    if (replayed)
        r |= evhttp_add_header(out, "Idempotent-Replayed", "true");
    r |= evbuffer_add(evhttp_request_get_output_buffer(c->req), body, len);
    if (r != 0) {
        evhttp_send_error(c->req, 503, NULL);
        log_call(c, 503, "UNAVAILABLE", false);
    } else {
        evhttp_send_reply(c->req, status, NULL, NULL);
        log_call(c, status, code, false);
    }
    call_free(c);
}

static void finish_error(ApiCall *c, OcErrorCode code, const char *message)
{
    char *body = NULL;
    size_t len = 0;
    int owned = 0;
    int status = settle_error_body(code, message, &body, &len, &owned);
    finish(c, status, oc_error_name(code), body, len, false);
    if (owned)
        oc_free(body);
}

/* A JSON document from the database, as it came (the SQL functions build every answer). */
static void finish_doc(ApiCall *c, int status, const json_t *doc, bool replayed)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!text) {
        finish_error(c, OC_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    const char *code = NULL;
    if (status >= 400)
        code = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    finish(c, status, code, text, strlen(text), replayed);
    free(text);
}

/* ---- database answers ---- */

/* The one jsonb cell of an answer, or an error answered here (NULL returned). */
static json_t *answer_doc(ApiCall *c, DbError err, const PGresult *res, bool *null_cell)
{
    *null_cell = false;
    if (err == DB_E_QUERY && res) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (admin_sqlstate_is_invalid_input(state)) {
            finish_error(c, OC_ERR_BAD_REQUEST, msg ? msg : "invalid input");
        } else {
            char m[256];
            log_json_str(msg ? msg : "?", m, sizeof(m));
            log_json(LOG_ERROR, "admin query failed", "\"request_id\":\"%s\",\"sqlstate\":\"%s\","
                     "\"error\":%s", c->request_id, state ? state : "?", m);
            finish_error(c, OC_ERR_INTERNAL, "the operation failed; see the server log");
        }
        return NULL;
    }
    if (err != DB_OK || !res) {
        finish_error(c, OC_ERR_UNAVAILABLE, "the database is unavailable; try again");
        return NULL;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        finish_error(c, OC_ERR_INTERNAL, "unexpected answer from the database");
        return NULL;
    }
    if (PQgetisnull(res, 0, 0)) {
        *null_cell = true;
        return NULL;
    }
    json_t *doc = json_loadb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, NULL);
    if (!doc)
        finish_error(c, OC_ERR_INTERNAL, "unreadable answer from the database");
    return doc;
}

static void on_read_done(void *userdata, DbError err, const PGresult *res)
{
    ApiCall *c = userdata;
    bool null_cell;
    json_t *doc = answer_doc(c, err, res, &null_cell);
    if (doc) {
        finish_doc(c, 200, doc, false);
        json_decref(doc);
    } else if (null_cell) {
        if (c->route->id == R_PAYMENT)
            finish_error(c, OC_ERR_PAYMENT_NOT_FOUND, "no payment has this txid");
        else
            finish_error(c, OC_ERR_NOT_FOUND, "no such record");
    }
}

static void on_mutate_done(void *userdata, DbError err, const PGresult *res)
{
    ApiCall *c = userdata;
    bool null_cell;
    json_t *doc = answer_doc(c, err, res, &null_cell);
    if (null_cell) {
        finish_error(c, OC_ERR_INTERNAL, "unexpected answer from the database");
        return;
    }
    if (!doc)
        return;
    json_t *status = json_object_get(doc, "status"), *body = json_object_get(doc, "body");
    json_int_t st = json_integer_value(status);
    if (!json_is_integer(status) || st < 200 || st > 599 || !body)
        finish_error(c, OC_ERR_INTERNAL, "unexpected answer from the database");
    else
        finish_doc(c, (int)st, body, json_is_true(json_object_get(doc, "replayed")));
    json_decref(doc);
}

static void query(ApiCall *c, AdminStatementId id, const char *const *params, DbCallback cb)
{
    const DbStatement *st = &admin_statements[id];
    int r = db_pool_query(c->api->pool, st->name, st->n_params, params, cb, c);
    if (r != 0)
        finish_error(c, OC_ERR_UNAVAILABLE, r == -ENOMEM ? "out of memory"
                                                         : "the database is unavailable");
}

/* ---- reads ---- */

/* Unix seconds become ISO 8601 UTC text in buf; anything else is handed to PostgreSQL as
 * timestamptz text (which refuses what it cannot read with a 22xxx error, answered 400). */
static const char *time_param(const char *s, char *buf, size_t buf_len)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (len > 0 && len <= 12 && strspn(s, "0123456789") == len) {
        time_t t = (time_t)strtoll(s, NULL, 10);
        struct tm tm;
        if (gmtime_r(&t, &tm) && strftime(buf, buf_len, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
            return buf;
    }
    return s;
}

/* Parses the query string into q (every value decoded), refusing parameters the route does
 * not take, repeated ones, empty ones and over-long ones. Returns true, or false after
 * answering 400. */
static bool parse_query(ApiCall *c, struct evkeyvalq *q)
{
    const char *mark = strchr(c->target, '?');
    if (!mark)
        return true;
    if (evhttp_parse_query_str(mark + 1, q) != 0) {
        finish_error(c, OC_ERR_BAD_REQUEST, "the query string cannot be parsed");
        return false;
    }
    for (const struct evkeyval *kv = q->tqh_first; kv; kv = kv->next.tqe_next) {
        bool known = false;
        for (const char *const *p = c->route->query; *p; p++)
            known |= strcmp(*p, kv->key) == 0;
        char msg[160];
        if (!known) {
            /* Named back only when it is plain text: anything else could be bytes that are
             * not UTF-8, which no JSON error body can carry. */
            size_t n = strlen(kv->key);
            bool plain = n > 0 && n <= 40 &&
                         strspn(kv->key, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
            snprintf(msg, sizeof(msg), plain ? "unknown query parameter '%s'"
                                             : "unknown query parameter", kv->key);
            finish_error(c, OC_ERR_BAD_REQUEST, msg);
            return false;
        }
        for (const struct evkeyval *o = kv->next.tqe_next; o; o = o->next.tqe_next) {
            if (strcmp(o->key, kv->key) == 0) {
                snprintf(msg, sizeof(msg), "query parameter '%s' is repeated", kv->key);
                finish_error(c, OC_ERR_BAD_REQUEST, msg);
                return false;
            }
        }
        if (!kv->value[0] || strlen(kv->value) > 700) {
            snprintf(msg, sizeof(msg), "query parameter '%s' is empty or too long", kv->key);
            finish_error(c, OC_ERR_BAD_REQUEST, msg);
            return false;
        }
    }
    return true;
}

static void run_read(ApiCall *c)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (!parse_query(c, &q)) {
        evhttp_clear_headers(&q);
        return;
    }
    char from[40], to[40];
    const char *p[7] = { NULL };
#define QP(name) evhttp_find_header(&q, name)
    switch (c->route->id) {
    case R_PAYMENTS: {
        const char *params[7] = { QP("status"), QP("merchant"), QP("currency"),
                                  time_param(QP("from"), from, sizeof(from)),
                                  time_param(QP("to"), to, sizeof(to)), QP("cursor"),
                                  QP("limit") };
        query(c, ADMIN_STMT_PAYMENTS, params, on_read_done);
        break;
    }
    case R_PAYMENT:
        p[0] = c->param;
        query(c, ADMIN_STMT_PAYMENT, p, on_read_done);
        break;
    case R_BALANCES:
        p[0] = QP("merchant");
        query(c, ADMIN_STMT_BALANCES, p, on_read_done);
        break;
    case R_LEDGER: {
        const char *params[3] = { QP("account"), QP("cursor"), QP("limit") };
        query(c, ADMIN_STMT_LEDGER, params, on_read_done);
        break;
    }
    case R_EXCEPTIONS: {
        const char *params[4] = { QP("status"), QP("kind"), QP("cursor"), QP("limit") };
        query(c, ADMIN_STMT_EXCEPTIONS, params, on_read_done);
        break;
    }
    case R_DELIVERIES: {
        const char *order = QP("order");
        if (order && strcmp(order, "oldest") != 0 && strcmp(order, "newest") != 0) {
            finish_error(c, OC_ERR_BAD_REQUEST, "order is oldest or newest");
            break;
        }
        const char *params[5] = { QP("state"), QP("merchant"),
                                  order && strcmp(order, "newest") == 0 ? "t" : "f",
                                  QP("cursor"), QP("limit") };
        query(c, ADMIN_STMT_DELIVERIES, params, on_read_done);
        break;
    }
    case R_DELIVERY:
        if (!deliveries_id_valid(c->param)) {
            finish_error(c, OC_ERR_NOT_FOUND, "no such record");
            break;
        }
        p[0] = c->param;
        query(c, ADMIN_STMT_DELIVERY, p, on_read_done);
        break;
    case R_PARTICIPANTS: {
        const char *params[2] = { QP("cursor"), QP("limit") };
        query(c, ADMIN_STMT_PARTICIPANTS, params, on_read_done);
        break;
    }
    case R_PARTICIPANT:
        p[0] = c->param;
        query(c, ADMIN_STMT_PARTICIPANT, p, on_read_done);
        break;
    default:
        finish_error(c, OC_ERR_INTERNAL, "unroutable");
        break;
    }
#undef QP
    evhttp_clear_headers(&q);
}

/* ---- mutations ---- */

static bool digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n > 0 && n <= max && strspn(s, "0123456789") == n && (n == 1 || s[0] != '0');
}

/* Checks a body object against allowed fields and their JSON types ('s' string, 'S' string or
 * null, 'i' integer, 'b' boolean, 'a' array of strings). Returns NULL or the problem. */
static const char *check_fields(const json_t *obj, const char *const *names, const char *types,
                                char *msg, size_t msg_len)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        size_t i = 0;
        while (names[i] && strcmp(names[i], key) != 0)
            i++;
        if (!names[i]) {
            snprintf(msg, msg_len, "unknown field '%.40s'", key);
            return msg;
        }
        bool ok;
        switch (types[i]) {
        case 's': ok = json_is_string(v); break;
        case 'S': ok = json_is_string(v) || json_is_null(v); break;
        case 'i': ok = json_is_integer(v); break;
        case 'b': ok = json_is_boolean(v); break;
        default: {
            ok = json_is_array(v);
            size_t j;
            const json_t *e;
            json_array_foreach(v, j, e) ok = ok && json_is_string(e);
            break;
        }
        }
        if (!ok) {
            snprintf(msg, msg_len, "field '%s' has the wrong type", key);
            return msg;
        }
    }
    return NULL;
}

/* The participant fields of a create or update body, with the public key normalised to the
 * 128-hex form the table holds. Returns the fields (new reference) or NULL with msg set. */
static json_t *participant_fields(json_t *body, bool create, char *msg, size_t msg_len)
{
    static const char *const names[] = { "ocid", "name", "roles", "publicKey", "endpoint",
                                         "form", "enabled", NULL };
    static const char types[] = "isasSsb";
    if (check_fields(body, create ? names : names + 1, create ? types : types + 1, msg,
                     msg_len))
        return NULL;
    if (create) {
        for (size_t i = 0; i < 4; i++) {
            if (!json_object_get(body, names[i])) {
                snprintf(msg, msg_len, "field '%s' is required", names[i]);
                return NULL;
            }
        }
    }
    json_t *fields = json_deep_copy(body);
    if (!fields) {
        snprintf(msg, msg_len, "out of memory");
        return NULL;
    }
    json_object_del(fields, "ocid");
    const char *key = json_string_value(json_object_get(body, "publicKey"));
    if (key) {
        PublicKey pk;
        char hex[KEY_PUBLIC_HEX_LEN + 1];
        if (key_parse_public(key, strlen(key), &pk) != 0) {
            json_decref(fields);
            snprintf(msg, msg_len, "publicKey is not a valid secp256k1 public key");
            return NULL;
        }
        key_format_public(&pk, hex);
        json_object_set_new(fields, "publicKey", json_string(hex));
    }
    return fields;
}

static void run_mutation(ApiCall *c)
{
    if (!c->idem_key) {
        finish_error(c, OC_ERR_BAD_REQUEST, "a mutation needs an Idempotency-Key header "
                     "(1 to 200 printable characters)");
        return;
    }
    if (strchr(c->target, '?')) {
        finish_error(c, OC_ERR_BAD_REQUEST, "this endpoint takes no query parameters");
        return;
    }
    json_t *body = NULL;
    if (c->body_len > 0) {
        json_error_t jerr;
        body = json_loadb(c->body, c->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!body || !json_is_object(body)) {
            json_decref(body);
            finish_error(c, OC_ERR_BAD_REQUEST, "the body must be a JSON object");
            return;
        }
    } else {
        body = json_object();
    }
    json_t *args = json_object();
    char msg[160] = "";
    const char *op = NULL;
    if (!body || !args) {
        snprintf(msg, sizeof(msg), "out of memory");
        goto refuse;
    }
    switch (c->route->id) {
    case R_RESOLVE: {
        static const char *const names[] = { "action", "txid", "reason", NULL };
        if (!digits(c->param, 18)) {
            json_decref(body);
            json_decref(args);
            finish_error(c, OC_ERR_NOT_FOUND, "no such exception");
            return;
        }
        if (check_fields(body, names, "sss", msg, sizeof(msg)))
            goto refuse;
        if (!json_object_get(body, "action")) {
            snprintf(msg, sizeof(msg), "field 'action' (attach, refund or dismiss) is required");
            goto refuse;
        }
        json_object_update(args, body);
        json_object_set_new(args, "id", json_integer(strtoll(c->param, NULL, 10)));
        op = "exception.resolve";
        break;
    }
    case R_RETRY:
        if (!deliveries_id_valid(c->param)) {
            json_decref(body);
            json_decref(args);
            finish_error(c, OC_ERR_NOT_FOUND, "no such delivery");
            return;
        }
        if (json_object_size(body) != 0) {
            snprintf(msg, sizeof(msg), "retry takes no fields");
            goto refuse;
        }
        json_object_set_new(args, "id", json_string(c->param));
        op = "delivery.retry";
        break;
    case R_PARTICIPANT_CREATE:
    case R_PARTICIPANT_UPDATE:
    case R_PARTICIPANT_DISABLE: {
        bool create = c->route->id == R_PARTICIPANT_CREATE;
        json_t *fields;
        json_int_t ocid;
        if (create) {
            json_t *o = json_object_get(body, "ocid");
            ocid = json_is_integer(o) ? json_integer_value(o) : -1;
            if (!json_is_integer(o) || ocid < 0 || ocid > 9007199254740991LL) {
                snprintf(msg, sizeof(msg), "field 'ocid' (0 to 2^53-1) is required");
                goto refuse;
            }
        } else {
            if (!digits(c->param, 16)) {
                json_decref(body);
                json_decref(args);
                finish_error(c, OC_ERR_NOT_FOUND, "no such participant");
                return;
            }
            ocid = strtoll(c->param, NULL, 10);
        }
        if (c->route->id == R_PARTICIPANT_DISABLE) {
            if (json_object_size(body) != 0) {
                snprintf(msg, sizeof(msg), "disable takes no fields");
                goto refuse;
            }
            fields = json_pack("{s:b}", "enabled", 0);
        } else {
            fields = participant_fields(body, create, msg, sizeof(msg));
            if (!fields)
                goto refuse;
            if (!create && json_object_size(fields) == 0) {
                json_decref(fields);
                snprintf(msg, sizeof(msg), "nothing to update");
                goto refuse;
            }
        }
        json_object_set_new(args, "ocid", json_integer(ocid));
        json_object_set_new(args, "fields", fields);
        op = create ? "participant.create" : "participant.update";
        break;
    }
    default:
        snprintf(msg, sizeof(msg), "unroutable");
        goto refuse;
    }

    /* The request's identity for the idempotency check: method, target and body bytes. */
    uint8_t digest[SHA256_DIGEST_LENGTH];
    char hash[2 * SHA256_DIGEST_LENGTH + 1];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned dlen = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, c->method, strlen(c->method)) == 1 &&
             EVP_DigestUpdate(md, "\n", 1) == 1 &&
             EVP_DigestUpdate(md, c->target, strlen(c->target)) == 1 &&
             EVP_DigestUpdate(md, "\n", 1) == 1 &&
             EVP_DigestUpdate(md, c->body ? c->body : "", c->body_len) == 1 &&
             EVP_DigestFinal_ex(md, digest, &dlen) == 1;
    EVP_MD_CTX_free(md);
    char *args_text = ok ? json_dumps(args, JSON_COMPACT) : NULL;
    json_decref(body);
    json_decref(args);
    if (!args_text) {
        finish_error(c, OC_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    hex_encode(digest, sizeof(digest), hash);
    char gateway[24], now[24];
    snprintf(gateway, sizeof(gateway), "%" PRId64, c->api->cfg->ocid);
    snprintf(now, sizeof(now), "%" PRId64, (int64_t)time(NULL));
    const char *params[7] = { c->client, c->idem_key, hash, op, args_text, gateway, now };
    query(c, ADMIN_STMT_API_MUTATE, params, on_mutate_done);
    free(args_text);
    return;

refuse:
    json_decref(body);
    json_decref(args);
    finish_error(c, OC_ERR_BAD_REQUEST, msg[0] ? msg : "out of memory");
}

/* ---- authentication ---- */

static bool has_scope(const json_t *scopes, const char *scope)
{
    size_t i;
    const json_t *s;
    json_array_foreach(scopes, i, s) {
        if (json_is_string(s) && strcmp(json_string_value(s), scope) == 0)
            return true;
    }
    return false;
}

static void on_client(void *userdata, DbError err, const PGresult *res)
{
    ApiCall *c = userdata;
    bool null_cell;
    json_t *doc = answer_doc(c, err, res, &null_cell);
    if (null_cell) {
        finish_error(c, OC_ERR_UNKNOWN_OCID, "X-OCG-Client is not a known, active client");
        return;
    }
    if (!doc)
        return;
    const char *sealed_hex = json_string_value(json_object_get(doc, "sealed"));
    const json_t *scopes = json_object_get(doc, "scopes");
    uint8_t sealed[SEAL_SECRET_MAX + SEAL_OVERHEAD], secret[SEAL_SECRET_MAX];
    size_t sealed_len = sealed_hex ? strlen(sealed_hex) / 2 : 0, secret_len = 0;
    int r = -EINVAL;
    if (sealed_hex && sealed_len <= sizeof(sealed) &&
        hex_decode(sealed_hex, strlen(sealed_hex), sealed, sealed_len) == 0)
        r = seal_open(&c->api->seal, sealed, sealed_len, c->client, secret, &secret_len);
    if (r != 0) {
        json_decref(doc);
        log_json(LOG_ERROR, "admin client secret unusable",
                 "\"request_id\":\"%s\",\"client\":\"%s\",\"reason\":\"%s\"", c->request_id,
                 c->client, r == SEAL_E_OPEN ? "it does not open with this sealing key"
                                             : "malformed sealed secret");
        finish_error(c, OC_ERR_INTERNAL, "the client's secret cannot be used; see the log");
        return;
    }
    char mac[2 * SHA256_DIGEST_LENGTH + 1];
    r = admin_request_mac(secret, secret_len, c->method, c->target, c->timestamp, c->body,
                          c->body_len, mac);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (r != 0) {
        json_decref(doc);
        finish_error(c, OC_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    bool valid = CRYPTO_memcmp(mac, c->signature, sizeof(mac) - 1) == 0;
    OPENSSL_cleanse(mac, sizeof(mac));
    if (!valid) {
        json_decref(doc);
        finish_error(c, OC_ERR_INVALID_SIGNATURE, "X-OCG-Signature does not sign this request");
        return;
    }
    c->authenticated = true;
    if (!has_scope(scopes, c->route->scope)) {
        json_decref(doc);
        char msg[96];
        snprintf(msg, sizeof(msg), "this client does not have the scope %s", c->route->scope);
        finish_error(c, OC_ERR_UNAUTHORIZED, msg);
        return;
    }
    json_decref(doc);
    if (c->route->method == EVHTTP_REQ_POST)
        run_mutation(c);
    else
        run_read(c);
}

/* ---- requests ---- */

static const char *header_once(const struct evkeyvalq *headers, const char *name,
                               bool *repeated)
{
    const char *found = NULL;
    for (const struct evkeyval *kv = headers->tqh_first; kv; kv = kv->next.tqe_next) {
        if (evutil_ascii_strcasecmp(kv->key, name) != 0)
            continue;
        if (found) {
            *repeated = true;
            return NULL;
        }
        found = kv->value;
    }
    return found;
}

/* The route for a raw request target; *param gets the parameter segment (plain characters
 * only: anything else names nothing). */
static const ApiRoute *route_match(enum evhttp_cmd_type method, const char *target,
                                   const char **param, size_t *param_len)
{
    if (!target || target[0] != '/')
        return NULL;
    size_t path_len = strcspn(target, "?");
    for (size_t i = 0; i < OC_ARRAY_LEN(api_routes); i++) {
        const ApiRoute *r = &api_routes[i];
        size_t pre = strlen(r->prefix);
        if (r->method != method || path_len < pre || memcmp(target, r->prefix, pre) != 0)
            continue;
        if (!r->suffix) {
            if (path_len == pre)
                return r;
            continue;
        }
        size_t suf = strlen(r->suffix);
        if (path_len < pre + suf + 1 ||
            memcmp(target + path_len - suf, r->suffix, suf) != 0)
            continue;
        size_t n = path_len - pre - suf;
        const char *seg = target + pre;
        if (n > API_PARAM_MAX)
            continue;
        bool plain = true;
        for (size_t k = 0; k < n; k++) {
            char ch = seg[k];
            plain &= (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        }
        if (!plain)
            continue;
        *param = seg;
        *param_len = n;
        return r;
    }
    return NULL;
}

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    AdminApi *api = arg;
    ApiCall *c = oc_calloc(1, sizeof(*c));
    if (!c) {
        evhttp_send_error(req, 503, NULL);
        return;
    }
    c->api = api;
    c->req = req;
    clock_gettime(CLOCK_MONOTONIC, &c->start);
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    c->method = method == EVHTTP_REQ_GET ? "GET" : method == EVHTTP_REQ_POST ? "POST" : "OTHER";
    uint8_t rnd[8];
    if (RAND_bytes(rnd, sizeof(rnd)) == 1)
        hex_encode(rnd, sizeof(rnd), c->request_id);
    else
        snprintf(c->request_id, sizeof(c->request_id), "a%015" PRIx64,
                 ++api->id_counter & 0xfffffffffffffffu);

    const char *target = evhttp_request_get_uri(req);
    const char *param = NULL;
    size_t param_len = 0;
    c->route = route_match(method, target, &param, &param_len);
    if (!c->route) {
        finish_error(c, OC_ERR_NOT_FOUND, "no such endpoint");
        return;
    }
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    size_t body_len = evbuffer_get_length(input);
    if (body_len > api->cfg->body_limit) {
        finish_error(c, OC_ERR_PAYLOAD_TOO_LARGE, "the body is too large");
        return;
    }
    c->target = oc_strndup(target, strlen(target));
    c->param = param ? oc_strndup(param, param_len) : NULL;
    c->body = oc_malloc(body_len + 1);
    if (!c->target || (param && !c->param) || !c->body ||
        evbuffer_copyout(input, c->body, body_len) != (ev_ssize_t)body_len) {
        finish_error(c, OC_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    c->body[body_len] = '\0';
    c->body_len = body_len;

    const struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
    bool repeated = false;
    const char *client = header_once(headers, "X-OCG-Client", &repeated);
    const char *ts = header_once(headers, "X-OCG-Timestamp", &repeated);
    const char *sig = header_once(headers, "X-OCG-Signature", &repeated);
    const char *key = header_once(headers, "Idempotency-Key", &repeated);
    if (!client || !ts || !sig || repeated) {
        finish_error(c, OC_ERR_INVALID_SIGNATURE, "X-OCG-Client, X-OCG-Timestamp and "
                     "X-OCG-Signature must each be present once (and Idempotency-Key at most "
                     "once)");
        return;
    }
    if (!admin_client_id_valid(client)) {
        finish_error(c, OC_ERR_UNKNOWN_OCID, "X-OCG-Client is not a known, active client");
        return;
    }
    memcpy(c->client, client, ADMIN_CLIENT_ID_LEN + 1);
    size_t ts_len = strlen(ts);
    int64_t now = (int64_t)time(NULL);
    int64_t when = ts_len >= 1 && ts_len <= 12 && strspn(ts, "0123456789") == ts_len
                       ? strtoll(ts, NULL, 10) : -1;
    if (when < 0 || when < now - (int64_t)api->cfg->timestamp_window_s ||
        when > now + (int64_t)api->cfg->timestamp_window_s) {
        finish_error(c, OC_ERR_TIMESTAMP_EXPIRED,
                     "X-OCG-Timestamp is not Unix seconds within the accepted window");
        return;
    }
    memcpy(c->timestamp, ts, ts_len + 1);
    if (strlen(sig) != 2 * SHA256_DIGEST_LENGTH || !hex_is_valid(sig, strlen(sig))) {
        finish_error(c, OC_ERR_INVALID_SIGNATURE, "X-OCG-Signature must be 64 hex digits");
        return;
    }
    for (size_t i = 0; i < 2 * SHA256_DIGEST_LENGTH; i++)
        c->signature[i] = (char)(sig[i] >= 'A' && sig[i] <= 'F' ? sig[i] + 32 : sig[i]);
    if (key) {
        if (!printable(key, API_KEY_MAX)) {
            finish_error(c, OC_ERR_BAD_REQUEST,
                         "Idempotency-Key must be 1 to 200 printable characters");
            return;
        }
        c->idem_key = oc_strndup(key, strlen(key));
        if (!c->idem_key) {
            finish_error(c, OC_ERR_UNAVAILABLE, "out of memory");
            return;
        }
    }

    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_close_busy, c);
    const char *params[1] = { c->client };
    query(c, ADMIN_STMT_CLIENT_SECRET, params, on_client);
}

/* ---- the connection cap ---- */

/* evhttp's hook for each accepted socket, called before it builds the connection around the
 * bufferevent returned: the connection does not exist yet, so it is judged in on_accepted,
 * which runs before the loop next reads any socket. */
static struct bufferevent *on_new_connection(struct event_base *base, void *arg)
{
    AdminApi *api = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    if (api->n_accepted == api->cap_accepted) {
        size_t cap = api->cap_accepted ? api->cap_accepted * 2 : 16;
        struct bufferevent **a = oc_realloc(api->accepted, api->cap_accepted * sizeof(*a),
                                            cap * sizeof(*a));
        if (a)
            api->accepted = a;
        bool *f = a ? oc_realloc(api->refuse, api->cap_accepted * sizeof(*f),
                                 cap * sizeof(*f)) : NULL;
        if (f)
            api->refuse = f;
        if (!a || !f) {
            bufferevent_free(bev);
            return NULL;
        }
        api->cap_accepted = cap;
    }
    api->connections++;
    bufferevent_incref(bev);
    api->refuse[api->n_accepted] = api->connections > API_MAX_CONNECTIONS;
    api->accepted[api->n_accepted++] = bev;
    event_active(api->accepted_ev, EV_TIMEOUT, 0);
    return bev;
}

static void on_accepted(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    AdminApi *api = arg;
    for (size_t i = 0; i < api->n_accepted; i++) {
        struct bufferevent *bev = api->accepted[i];
        bufferevent_data_cb readcb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
        struct evhttp_connection *evcon = cbarg;
        if (!readcb || !evcon || evhttp_connection_get_bufferevent(evcon) != bev) {
            api->connections--; /* evhttp gave up on it (memory) */
            continue;           /* and our reference stays: see server.c on_accepted */
        }
        if (api->refuse[i]) {
            api->connections--;
            evhttp_connection_free(evcon);
            log_json(LOG_WARN, "admin connection refused", "\"reason\":\"too many "
                     "connections\",\"max\":%u", API_MAX_CONNECTIONS);
        } else {
            evhttp_connection_set_closecb(evcon, on_close_idle, api);
        }
        bufferevent_decref(bev);
    }
    api->n_accepted = 0;
}

/* ---- the listener and its thread ---- */

static int fail(char *err, size_t err_len, int code, const char *fmt, ...) OC_PRINTF(4, 5);

static int fail(char *err, size_t err_len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    return code;
}

/* "host:port" or "[v6]:port" to an address; a host name is looked up (start-up only). */
static int resolve(const char *listen_on, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *port;
    size_t host_len;
    if (listen_on[0] == '[') {
        const char *end = strchr(listen_on, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        host_len = (size_t)(end - listen_on - 1);
        if (host_len >= sizeof(host))
            return -EINVAL;
        memcpy(host, listen_on + 1, host_len);
        port = end + 2;
    } else {
        const char *colon = strrchr(listen_on, ':');
        if (!colon)
            return -EINVAL;
        host_len = (size_t)(colon - listen_on);
        if (host_len >= sizeof(host))
            return -EINVAL;
        memcpy(host, listen_on, host_len);
        port = colon + 1;
    }
    if (host_len == 0 || !*port)
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

static const char *seal_error_text(int r)
{
    switch (r) {
    case SEAL_E_PERMISSIONS:
        return "it is readable by group or others; refusing it (chmod 600)";
    case SEAL_E_FORMAT:
        return "it does not hold 64 hex digits";
    case SEAL_E_FILE:
        return "it is not a regular file, or too large";
    default:
        return r < 0 ? strerror(-r) : "unusable";
    }
}

int admin_api_new(const AdminApiOptions *options, AdminApi **out, char *err, size_t err_len)
{
    const Config *cfg = options->cfg;
    AdminApi *api = oc_calloc(1, sizeof(*api));
    if (!api)
        return fail(err, err_len, -ENOMEM, "out of memory");
    api->cfg = cfg;
    api->fd = -1;
    int r = seal_key_load_file(cfg->admin_sealing_key_file, &api->seal);
    if (r != 0) {
        r = fail(err, err_len, r, "cannot use the admin sealing key file %s: %s",
                 cfg->admin_sealing_key_file, seal_error_text(r));
        goto error;
    }
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!cfg->admin_listen || resolve(cfg->admin_listen, &ss, &len) != 0) {
        r = fail(err, err_len, -EINVAL, "admin_listen: cannot resolve '%s' to an address and "
                 "port", cfg->admin_listen ? cfg->admin_listen : "");
        goto error;
    }
    api->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t alen = sizeof(api->addr);
    if (api->fd < 0 || setsockopt(api->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(api->fd, (struct sockaddr *)&ss, len) != 0 ||
        listen(api->fd, API_LISTEN_BACKLOG) != 0 ||
        getsockname(api->fd, (struct sockaddr *)&api->addr, &alen) != 0) {
        int e = errno;
        r = fail(err, err_len, -e, "cannot listen on %s (admin_listen): %s", cfg->admin_listen,
                 strerror(e));
        goto error;
    }
    api->base = event_base_new();
    api->http = api->base ? evhttp_new(api->base) : NULL;
    if (!api->http) {
        r = fail(err, err_len, -ENOMEM, "out of memory");
        goto error;
    }
    evhttp_set_max_headers_size(api->http, (ev_ssize_t)cfg->header_limit);
    /* A little above the limit, so an oversized body gets our JSON 413 rather than
     * libevent's bare one. */
    evhttp_set_max_body_size(api->http, (ev_ssize_t)(cfg->body_limit * 2));
    evhttp_set_timeout(api->http, (int)cfg->idle_timeout_s);
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(api->http, on_request, api);
    evhttp_set_bevcb(api->http, on_new_connection, api);
    api->accepted_ev = event_new(api->base, -1, 0, on_accepted, api);
    if (!api->accepted_ev) {
        r = fail(err, err_len, -ENOMEM, "out of memory");
        goto error;
    }
    struct evconnlistener *lev = evconnlistener_new(api->base, NULL, NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 0, api->fd);
    if (!lev) {
        r = fail(err, err_len, -ENOMEM, "cannot create the admin listener");
        goto error;
    }
    api->fd = -1; /* the listener owns it now */
    if (!evhttp_bind_listener(api->http, lev)) {
        evconnlistener_free(lev);
        r = fail(err, err_len, -ENOMEM, "cannot bind the admin listener");
        goto error;
    }

    if (options->db_password && *options->db_password) {
        api->password_len = strlen(options->db_password);
        api->password = oc_strndup(options->db_password, api->password_len);
        if (!api->password) {
            r = fail(err, err_len, -ENOMEM, "out of memory");
            goto error;
        }
    }
    db_conn_params_init(&api->conn, NULL, cfg->database_url, api->password, "ocgate-admin");
    DbPoolOptions po = {
        .conn_keywords = api->conn.keywords,
        .conn_values = api->conn.values,
        .size = API_POOL_SIZE,
        .statements = admin_statements,
        .n_statements = admin_statement_count,
        .max_queue = API_MAX_QUEUE,
        .query_timeout_ms = cfg->db_timeout_ms,
        .connect_timeout_ms = API_CONNECT_TIMEOUT_MS,
    };
    api->pool = db_pool_new(api->base, &po);
    if (!api->pool) {
        r = fail(err, err_len, -ENOMEM, "cannot create the admin database pool");
        goto error;
    }
    *out = api;
    return 0;
error:
    admin_api_free(api);
    return r;
}

void admin_api_address(const AdminApi *api, char *out, size_t out_len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (api->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&api->addr;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, out_len, "[%s]:%u", host, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&api->addr;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, out_len, "%s:%u", host, ntohs(a->sin_port));
    }
}

static void *api_thread(void *arg)
{
    AdminApi *api = arg;
    (void)pthread_setname_np(pthread_self(), "ocgate-admin");
    event_base_loop(api->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int admin_api_start(AdminApi *api)
{
    int r = pthread_create(&api->thread, NULL, api_thread, api);
    if (r != 0)
        return -r;
    api->running = true;
    return 0;
}

void admin_api_stop(AdminApi *api)
{
    if (!api || !api->running)
        return;
    event_base_loopbreak(api->base);
    pthread_join(api->thread, NULL);
    api->running = false;
}

void admin_api_free(AdminApi *api)
{
    if (!api)
        return;
    admin_api_stop(api);
    /* The pool first: it answers what still waits on it (503) while the connections exist. */
    db_pool_free(api->pool);
    if (api->http)
        evhttp_free(api->http);
    for (size_t i = 0; i < api->n_accepted; i++)
        bufferevent_decref(api->accepted[i]);
    oc_free(api->accepted);
    oc_free(api->refuse);
    if (api->accepted_ev)
        event_free(api->accepted_ev);
    if (api->base)
        event_base_free(api->base);
    if (api->fd >= 0)
        close(api->fd);
    if (api->password) {
        OPENSSL_cleanse(api->password, api->password_len);
        oc_free(api->password);
    }
    seal_key_wipe(&api->seal);
    oc_free(api);
}
