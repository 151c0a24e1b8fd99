/* The admin API's blocking client (remote.h): one connection, one request, its own loop. */
#include "admin/remote.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"
#include "util/hex.h"

int admin_request_mac(const uint8_t *secret, size_t secret_len, const char *method,
                      const char *target, const char *timestamp, const char *body,
                      size_t body_len, char out[65])
{
    uint8_t body_hash[SHA256_DIGEST_LENGTH], mac[EVP_MAX_MD_SIZE];
    char body_hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const uint8_t *)(body ? body : ""), body_len, body_hash);
    hex_encode(body_hash, sizeof(body_hash), body_hex);
    size_t n = strlen(method) + strlen(target) + strlen(timestamp) + sizeof(body_hex) + 4;
    char *msg = oc_malloc(n);
    if (!msg)
        return -ENOMEM;
    int len = snprintf(msg, n, "%s\n%s\n%s\n%s", method, target, timestamp, body_hex);
    unsigned mac_len = 0;
    const uint8_t *r = HMAC(EVP_sha256(), secret, (int)secret_len, (const uint8_t *)msg,
                            (size_t)len, mac, &mac_len);
    oc_free(msg);
    if (!r || mac_len != SHA256_DIGEST_LENGTH)
        return -EIO;
    hex_encode(mac, SHA256_DIGEST_LENGTH, out);
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

typedef struct Exchange {
    struct event_base *base;
    int status;              /* 0 = no answer */
    char *body;
    size_t body_len;
    int failed;              /* -errno */
} Exchange;

static void on_done(struct evhttp_request *req, void *arg)
{
    Exchange *x = arg;
    if (!req || evhttp_request_get_response_code(req) == 0) {
        x->failed = -ECONNREFUSED;
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        x->body = malloc(len + 1);
        if (!x->body) {
            x->failed = -ENOMEM;
        } else {
            evbuffer_copyout(in, x->body, len);
            x->body[len] = '\0';
            x->body_len = len;
            x->status = evhttp_request_get_response_code(req);
        }
    }
    event_base_loopexit(x->base, NULL);
}

int admin_remote_call(const AdminRemoteRequest *rq, int *status, char **body, size_t *body_len,
                      char *err, size_t err_len)
{
    struct evhttp_uri *uri = evhttp_uri_parse(rq->base_url);
    const char *scheme = uri ? evhttp_uri_get_scheme(uri) : NULL;
    const char *host = uri ? evhttp_uri_get_host(uri) : NULL;
    int port = uri ? evhttp_uri_get_port(uri) : -1;
    const char *upath = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!uri || !scheme || strcmp(scheme, "http") != 0 || !host || !*host ||
        (upath && *upath && strcmp(upath, "/") != 0) || evhttp_uri_get_query(uri) ||
        evhttp_uri_get_userinfo(uri)) {
        if (uri)
            evhttp_uri_free(uri);
        snprintf(err, err_len, "--admin-url must be http://HOST[:PORT] (for a remote listener, "
                 "use an SSH tunnel or a TLS proxy on your side)");
        return -EINVAL;
    }
    if (port < 0)
        port = 80;

    char ts[24], mac[65];
    snprintf(ts, sizeof(ts), "%" PRId64, (int64_t)time(NULL));
    size_t blen = rq->body ? strlen(rq->body) : 0;
    int r = admin_request_mac((const uint8_t *)rq->secret, strlen(rq->secret), rq->method,
                              rq->target, ts, rq->body, blen, mac);
    if (r != 0) {
        evhttp_uri_free(uri);
        snprintf(err, err_len, "cannot sign the request");
        return r;
    }

    Exchange x = { 0 };
    x.base = event_base_new();
    struct evhttp_connection *conn =
        x.base ? evhttp_connection_base_new(x.base, NULL, host, (unsigned short)port) : NULL;
    struct evhttp_request *req = conn ? evhttp_request_new(on_done, &x) : NULL;
    if (!req) {
        if (conn)
            evhttp_connection_free(conn);
        if (x.base)
            event_base_free(x.base);
        evhttp_uri_free(uri);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    evhttp_connection_set_timeout(conn, ADMIN_REMOTE_TIMEOUT_S);
    evhttp_connection_set_retries(conn, 0);
    evhttp_connection_set_max_body_size(conn, ADMIN_REMOTE_BODY_MAX);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char hostport[300];
    snprintf(hostport, sizeof(hostport), "%s:%d", host, port);
    int hr = evhttp_add_header(h, "Host", hostport);
    hr |= evhttp_add_header(h, "X-OCG-Client", rq->client);
    hr |= evhttp_add_header(h, "X-OCG-Timestamp", ts);
    hr |= evhttp_add_header(h, "X-OCG-Signature", mac);
    hr |= evhttp_add_header(h, "Connection", "close");
    if (rq->idempotency_key)
        hr |= evhttp_add_header(h, "Idempotency-Key", rq->idempotency_key);
    if (rq->body) {
        hr |= evhttp_add_header(h, "Content-Type", "application/json");
        hr |= evbuffer_add(evhttp_request_get_output_buffer(req), rq->body, blen);
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    enum evhttp_cmd_type method = strcmp(rq->method, "POST") == 0 ? EVHTTP_REQ_POST
                                                                   : EVHTTP_REQ_GET;
    if (hr != 0 || evhttp_make_request(conn, req, method, rq->target) != 0) {
        /* evhttp_make_request frees req on failure; only the connection is left. */
        evhttp_connection_free(conn);
        event_base_free(x.base);
        evhttp_uri_free(uri);
        snprintf(err, err_len, "cannot send the request");
        return -EIO;
    }
    event_base_dispatch(x.base);
    evhttp_connection_free(conn);
    event_base_free(x.base);
    if (x.failed || x.status == 0) {
        snprintf(err, err_len, "no answer from the admin API at %s:%d (is ocgate serve running "
                 "with admin_sealing_key_file set?)", host, port);
        evhttp_uri_free(uri);
        free(x.body);
        return x.failed ? x.failed : -ECONNREFUSED;
    }
    evhttp_uri_free(uri);
    *status = x.status;
    *body = x.body;
    *body_len = x.body_len;
    return 0;
}
