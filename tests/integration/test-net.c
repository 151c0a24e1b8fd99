/* Integration test of the outbound HTTP(S) client (net/client.h) against servers this program
 * starts on 127.0.0.1 and ::1 in its own event loop: an evhttp server, two evhttp HTTPS
 * servers (certificates for localhost and for wrong.example, from the throwaway CA that
 * test-net.sh makes), a raw TCP server that plays scripted, slow, silent or broken HTTP, and
 * a DNS server (evdns) that the clients' resolvers are pointed at. Every wait is bounded by a
 * timer, so a broken client fails checks instead of hanging. Usage: test-net CERT_DIR */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../unit/testlib.h"
#include "net/client.h"

#define MAX_RESP 1000
#define FAST_CONNECT_MS 300
#define FAST_TOTAL_MS 600
#define SLACK_MS 400
#define WAIT_MS 5000
#define N_CONCURRENT 200

static struct event_base *base;
static const char *cert_dir;

/* ---- bounded waiting ----------------------------------------------------------------- */

static bool deadline_hit;

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    deadline_hit = true;
    event_base_loopbreak(base);
}

/* Runs the loop until cond(arg) holds or ms pass; returns cond(arg). cond NULL: just runs. */
static bool run_until(bool (*cond)(void *), void *arg, unsigned ms)
{
    struct event *t = evtimer_new(base, on_deadline, NULL);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    deadline_hit = false;
    evtimer_add(t, &tv);
    while (!(cond && cond(arg)) && !deadline_hit)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return cond ? cond(arg) : true;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- client calls -------------------------------------------------------------------- */

typedef struct Call {
    int calls;
    NetError err;
    int status;
    char body[2048];
    size_t body_len;
    bool body_null;
    char retry_after[128];
    bool has_retry_after;
    unsigned duration_ms;
    char error_text[160];
    uint64_t done_ms;
    /* optional actions run from inside the callback */
    HttpClient *free_client;     /* http_client_free(this) */
    HttpClient *repost_client;   /* http_client_post(this) and record the result */
    int repost_rc;
} Call;

static bool in_post;
static int inline_calls;   /* callbacks from inside http_client_post: must stay 0 */
static int shape_errors;   /* status/body/error_text inconsistent with error: must stay 0 */

static void on_done(void *arg, const HttpClientResponse *r)
{
    Call *c = arg;
    if (in_post)
        inline_calls++;
    if ((r->error == NET_OK) != (r->status != 0) || (r->error == NET_OK) != !r->error_text[0] ||
        (r->body == NULL) != (r->body_len == 0))
        shape_errors++;
    c->calls++;
    c->err = r->error;
    c->status = r->status;
    c->body_null = r->body == NULL;
    c->body_len = r->body_len;
    if (r->body)
        memcpy(c->body, r->body, r->body_len < sizeof(c->body) ? r->body_len : sizeof(c->body));
    c->has_retry_after = r->retry_after != NULL;
    snprintf(c->retry_after, sizeof(c->retry_after), "%s", r->retry_after ? r->retry_after : "");
    c->duration_ms = r->duration_ms;
    snprintf(c->error_text, sizeof(c->error_text), "%s", r->error_text);
    c->done_ms = now_ms();
    if (c->repost_client)
        c->repost_rc = http_client_post(c->repost_client, "http://127.0.0.1:1/", NULL, "{}", 2,
                                        on_done, c);
    if (c->free_client) {
        HttpClient *fc = c->free_client;
        c->free_client = NULL;
        http_client_free(fc);
    }
}

static int post(HttpClient *client, const char *url, const char *const *headers,
                const char *body, size_t len, Call *c)
{
    in_post = true;
    int rc = http_client_post(client, url, headers, body, len, on_done, c);
    in_post = false;
    return rc;
}

static bool call_done(void *arg)
{
    return ((Call *)arg)->calls > 0;
}

typedef struct Calls {
    Call *c;
    size_t n;
} Calls;

static bool calls_done(void *arg)
{
    Calls *cs = arg;
    for (size_t i = 0; i < cs->n; i++)
        if (cs->c[i].calls == 0)
            return false;
    return true;
}

/* Posts "{}" to url and waits for the answer. */
static Call fetch(HttpClient *client, const char *url)
{
    Call c;
    memset(&c, 0, sizeof(c));
    int rc = post(client, url, NULL, "{}", 2, &c);
    if (rc != 0) {
        printf("# post %s returned %d\n", url, rc);
        c.err = (NetError)-1;
        return c;
    }
    run_until(call_done, &c, WAIT_MS);
    return c;
}

static const char *err_name(NetError e)
{
    static const char *const names[] = { "OK", "URL", "DNS", "BLOCKED", "CONNECT", "TLS",
                                         "TIMEOUT", "TOO_LARGE", "PROTOCOL", "CANCELLED" };
    return (unsigned)e < OC_ARRAY_LEN(names) ? names[e] : "?";
}

#define CHECK_ERR(call, want, what)                                                         \
    do {                                                                                    \
        CHECK_INT((call).err, (want), "%s: %s (%s)", what, err_name(want),                  \
                  (call).error_text);                                                       \
        CHECK_INT((call).calls, 1, "%s: exactly one callback", what);                       \
    } while (0)

/* ---- evhttp servers (plain and TLS) -------------------------------------------------- */

typedef struct Server {
    struct evhttp *http;
    SSL_CTX *ssl;
    int port;
    int port6;       /* same handler on [::1]; 0 when not bound */
    int conns;       /* TCP connections accepted */
    int requests;    /* HTTP requests that reached the handler */
    int ok_hits;
} Server;

static Server plain, tls_good, tls_wrong;

/* What /echo received last. */
static struct {
    int hits;
    bool post;
    char uri[256];
    char host[128];
    char ctype[64];
    char clen[32];
    char conn[32];
    char delivery[64];
    char custom[128];
    char body[65536];
    size_t body_len;
} echo;

static void copy_header(struct evkeyvalq *h, const char *name, char *out, size_t len)
{
    const char *v = evhttp_find_header(h, name);
    snprintf(out, len, "%s", v ? v : "(none)");
}

static void reply(struct evhttp_request *req, int code, const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Status", b);
    evbuffer_free(b);
}

static void handle(struct evhttp_request *req, void *arg)
{
    Server *s = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    s->requests++;
    if (!path)
        path = "/";

    if (strcmp(path, "/ok") == 0) {
        s->ok_hits++;
        evhttp_add_header(out, "X-Test", "yes");
        evhttp_add_header(out, "Retry-After", "7");
        reply(req, 200, "{\"status\":\"accepted\"}", 21);
    } else if (strcmp(path, "/echo") == 0) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        echo.hits++;
        echo.post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;
        snprintf(echo.uri, sizeof(echo.uri), "%s", evhttp_request_get_uri(req));
        copy_header(h, "Host", echo.host, sizeof(echo.host));
        copy_header(h, "Content-Type", echo.ctype, sizeof(echo.ctype));
        copy_header(h, "Content-Length", echo.clen, sizeof(echo.clen));
        copy_header(h, "Connection", echo.conn, sizeof(echo.conn));
        copy_header(h, "X-OC-Delivery-Id", echo.delivery, sizeof(echo.delivery));
        copy_header(h, "X-Custom", echo.custom, sizeof(echo.custom));
        echo.body_len = evbuffer_get_length(in);
        if (echo.body_len > sizeof(echo.body))
            echo.body_len = sizeof(echo.body);
        evbuffer_copyout(in, echo.body, echo.body_len);
        char n[32];
        snprintf(n, sizeof(n), "%zu", evbuffer_get_length(in));
        if (evbuffer_get_length(in) <= MAX_RESP)
            evhttp_send_reply(req, 200, "OK", in);
        else
            reply(req, 200, n, strlen(n));
    } else if (strncmp(path, "/status/", 8) == 0) {
        int code = atoi(path + 8);
        if (code == 429)
            evhttp_add_header(out, "Retry-After", "120");
        if (code == 503)
            evhttp_add_header(out, "Retry-After", "Wed, 21 Oct 2037 07:28:00 GMT");
        reply(req, code, "{\"error\":\"x\"}", 13);
    } else if (strcmp(path, "/redirect") == 0) {
        char loc[128];
        snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/ok", s->port);
        evhttp_add_header(out, "Location", loc);
        reply(req, 302, "", 0);
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/exact") == 0) {
        static char big[2 * MAX_RESP];
        memset(big, 'b', sizeof(big));
        reply(req, 200, big, path[1] == 'b' ? sizeof(big) : MAX_RESP);
    } else if (strcmp(path, "/big-chunked") == 0) {
        /* evhttp answers an HTTP/1.1 client with Transfer-Encoding: chunked here. */
        char piece[100];
        memset(piece, 'c', sizeof(piece));
        evhttp_send_reply_start(req, 200, "OK");
        for (int i = 0; i < 20; i++) {
            struct evbuffer *b = evbuffer_new();
            evbuffer_add(b, piece, sizeof(piece));
            evhttp_send_reply_chunk(req, b);
            evbuffer_free(b);
        }
        evhttp_send_reply_end(req);
    } else if (strcmp(path, "/small-chunked") == 0) {
        evhttp_send_reply_start(req, 200, "OK");
        for (int i = 0; i < 3; i++) {
            struct evbuffer *b = evbuffer_new();
            evbuffer_add_printf(b, "part%d;", i);
            evhttp_send_reply_chunk(req, b);
            evbuffer_free(b);
        }
        evhttp_send_reply_end(req);
    } else {
        reply(req, 404, "no", 2);
    }
}

static struct bufferevent *server_bev(struct event_base *b, void *arg)
{
    Server *s = arg;
    s->conns++;
    if (!s->ssl)
        return bufferevent_socket_new(b, -1, BEV_OPT_CLOSE_ON_FREE);
    return bufferevent_openssl_socket_new(b, -1, SSL_new(s->ssl), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static int bound_port(struct evhttp_bound_socket *h)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (!h || getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Binds 127.0.0.1 on a free port and, when possible, [::1] on the same port. */
static bool server_start(Server *s, const char *leaf)
{
    if (leaf) {
        char crt[1024], key[1024];
        snprintf(crt, sizeof(crt), "%s/%s.pem", cert_dir, leaf);
        snprintf(key, sizeof(key), "%s/%s.key", cert_dir, leaf);
        s->ssl = SSL_CTX_new(TLS_server_method());
        if (!s->ssl || SSL_CTX_use_certificate_chain_file(s->ssl, crt) != 1 ||
            SSL_CTX_use_PrivateKey_file(s->ssl, key, SSL_FILETYPE_PEM) != 1)
            return false;
    }
    s->http = evhttp_new(base);
    if (!s->http)
        return false;
    evhttp_set_bevcb(s->http, server_bev, s);
    evhttp_set_gencb(s->http, handle, s);
    evhttp_set_timeout(s->http, 30);
    for (int attempt = 0; attempt < 20 && !s->port6; attempt++) {
        struct evhttp_bound_socket *h4 = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
        s->port = bound_port(h4);
        if (!s->port)
            return false;
        struct evhttp_bound_socket *h6 =
            evhttp_bind_socket_with_handle(s->http, "::1", (ev_uint16_t)s->port);
        if (h6) {
            s->port6 = s->port;
            break;
        }
        evhttp_del_accept_socket(s->http, h4);
    }
    if (!s->port6) /* no IPv6 here: keep IPv4 only */
        s->port = bound_port(evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0));
    return s->port != 0;
}

static void server_stop(Server *s)
{
    if (s->http)
        evhttp_free(s->http);
    SSL_CTX_free(s->ssl);
}

/* ---- raw scripted TCP server --------------------------------------------------------- */

/* RAW_KEEP answers and reads the connection's next request; RAW_KEEP_ONCE answers the
 * first request of a connection and closes it, unanswered, on the next. */
typedef enum RawMode {
    RAW_CLOSE, RAW_KEEP, RAW_KEEP_ONCE, RAW_HANG, RAW_TRICKLE, RAW_DELAY
} RawMode;

typedef struct RawScript {
    const char *path;
    RawMode mode;
    const char *response;      /* sent at once (RAW_TRICKLE: the prefix) */
    size_t len;                /* 0: strlen(response) */
} RawScript;

#define HUGE_HEADER_LEN 20000
#define NUL_HEADER_RESPONSE "HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 0\r\n\r\n"

static char huge_headers[HUGE_HEADER_LEN + 128];
static char eof_big[64 + 2 * MAX_RESP];

static const RawScript scripts[] = {
    { "/hang", RAW_HANG, "", 0 },
    { "/trickle-body", RAW_TRICKLE, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 0 },
    { "/trickle-head", RAW_TRICKLE, "HTTP/1.1 200 OK\r\nX-Slow: ", 0 },
    { "/delay", RAW_DELAY, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0 },
    { "/chunked", RAW_CLOSE,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", 0 },
    { "/eof-body", RAW_CLOSE, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", 0 },
    { "/bare-lf", RAW_CLOSE, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 0 },
    { "/continue", RAW_CLOSE,
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0 },
    { "/204-open", RAW_KEEP, "HTTP/1.1 204 No Content\r\n\r\n", 0 },
    { "/cl-open", RAW_KEEP, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nopen", 0 },
    { "/no-reason", RAW_CLOSE, "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0 },
    { "/429", RAW_CLOSE, "HTTP/1.1 429 Too Many\r\nRetry-After:  30 \r\nContent-Length: 0\r\n\r\n",
      0 },
    { "/bad-status", RAW_CLOSE, "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", 0 },
    { "/garbage", RAW_CLOSE, "SSH-2.0-OpenSSH_9.2\r\n\r\n", 0 },
    { "/http2", RAW_CLOSE, "HTTP/2 200\r\n\r\n", 0 },
    { "/fold", RAW_CLOSE, "HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\nContent-Length: 0\r\n\r\n", 0 },
    { "/cl-conflict", RAW_CLOSE,
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", 0 },
    { "/cl-bad", RAW_CLOSE, "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nab", 0 },
    { "/te-gzip", RAW_CLOSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      0 },
    { "/huge-headers", RAW_CLOSE, huge_headers, 0 },
    { "/truncated", RAW_CLOSE, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0 },
    { "/truncated-chunk", RAW_CLOSE,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 0 },
    { "/empty", RAW_CLOSE, "", 0 },
    { "/chunk-overflow", RAW_CLOSE,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n",
      0 },
    { "/chunk-big", RAW_CLOSE,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n", 0 },
    { "/chunk-bad-end", RAW_CLOSE,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n", 0 },
    { "/nul-header", RAW_CLOSE, NUL_HEADER_RESPONSE, sizeof(NUL_HEADER_RESPONSE) - 1 },
    { "/switch", RAW_CLOSE, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", 0 },
    { "/eof-big", RAW_CLOSE, eof_big, 0 },
    { "/reset", RAW_HANG, "", 0 }, /* closed with RST right away, see raw_respond */
    { "/ka", RAW_KEEP, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nka", 0 },
    { "/ka-close", RAW_KEEP,
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nkc", 0 },
    { "/ka-10", RAW_KEEP, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nk0", 0 },
    { "/ka-once", RAW_KEEP_ONCE, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nk1", 0 },
};

typedef struct RawConn {
    struct bufferevent *bev;
    struct event *timer;
    const RawScript *script;
    size_t trickled;
    bool close_after_write;
    unsigned answered;
    struct RawConn *prev, *next;
} RawConn;

static struct evconnlistener *raw_listener;
static int raw_port;
static int raw_accepts;
static int raw_open;
static RawConn *raw_conns;

static void raw_free(RawConn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        raw_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->timer)
        event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
    raw_open--;
}

static void raw_tick(evutil_socket_t fd, short what, void *arg)
{
    RawConn *c = arg;
    if (c->script->mode == RAW_DELAY) {
        bufferevent_write(c->bev, c->script->response, strlen(c->script->response));
        c->close_after_write = true;
        return;
    }
    bufferevent_write(c->bev, "x", 1); /* one byte every 50 ms, forever */
    c->trickled++;
    struct timeval tv = { 0, 50000 };
    evtimer_add(c->timer, &tv);
}

static void raw_respond(RawConn *c, const RawScript *s)
{
    c->script = s;
    if (strcmp(s->path, "/reset") == 0) {
        struct linger lg = { 1, 0 };
        setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        raw_free(c);
        return;
    }
    size_t len = s->len ? s->len : strlen(s->response);
    if (s->mode == RAW_HANG)
        return;
    if (s->mode == RAW_TRICKLE || s->mode == RAW_DELAY) {
        struct timeval tv = { 0, 50000 };
        if (s->mode == RAW_TRICKLE)
            bufferevent_write(c->bev, s->response, len);
        c->timer = evtimer_new(base, raw_tick, c);
        evtimer_add(c->timer, &tv);
        return;
    }
    if (len == 0 && s->mode == RAW_CLOSE) {
        raw_free(c);
        return;
    }
    bufferevent_write(c->bev, s->response, len);
    c->answered++;
    c->close_after_write = s->mode == RAW_CLOSE;
}

static void raw_read(struct bufferevent *bev, void *arg)
{
    RawConn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->script && c->script->mode == RAW_KEEP_ONCE) { /* the next request: hang up */
        raw_free(c);
        return;
    }
    if (c->script && c->script->mode == RAW_KEEP) {
        c->script = NULL;
    } else if (c->script) { /* answered already: ignore anything else */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        return; /* also where a TLS ClientHello waits forever */
    size_t head = (size_t)end.pos + 4;
    char *text = malloc(head + 1); /* NUL-terminated copy for the string functions */
    evbuffer_copyout(in, text, head);
    text[head] = '\0';
    size_t body = 0;
    char *cl = strcasestr(text, "\r\nContent-Length:");
    if (cl)
        body = strtoul(cl + 17, NULL, 10);
    char path[128] = "";
    sscanf(text, "POST %127s ", path);
    free(text);
    if (evbuffer_get_length(in) < head + body)
        return; /* read the whole request first, so closing never resets the connection */
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    evbuffer_drain(in, head + body);
    for (size_t i = 0; i < OC_ARRAY_LEN(scripts); i++) {
        if (strcmp(scripts[i].path, path) == 0) {
            raw_respond(c, &scripts[i]);
            return;
        }
    }
    static const RawScript not_found = { "", RAW_CLOSE, "HTTP/1.1 404 NF\r\n\r\n", 0 };
    raw_respond(c, &not_found);
}

static void raw_write(struct bufferevent *bev, void *arg)
{
    RawConn *c = arg;
    if (c->close_after_write && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        raw_free(c);
}

static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        raw_free(arg);
}

static void raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                       int socklen, void *arg)
{
    RawConn *c = calloc(1, sizeof(*c));
    raw_accepts++;
    raw_open++;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, raw_read, raw_write, raw_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = raw_conns;
    if (raw_conns)
        raw_conns->prev = c;
    raw_conns = c;
}

static int listener_port(struct evconnlistener *l)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len);
    return ntohs(sin.sin_port);
}

static bool raw_start(void)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    raw_listener = evconnlistener_new_bind(base, raw_accept, NULL,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                           (struct sockaddr *)&sin, sizeof(sin));
    if (!raw_listener)
        return false;
    raw_port = listener_port(raw_listener);

    int n = snprintf(huge_headers, sizeof(huge_headers), "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(huge_headers + n, 'h', HUGE_HEADER_LEN);
    strcpy(huge_headers + n + HUGE_HEADER_LEN, "\r\nContent-Length: 0\r\n\r\n");
    n = snprintf(eof_big, sizeof(eof_big), "HTTP/1.1 200 OK\r\n\r\n");
    memset(eof_big + n, 'e', MAX_RESP + 1);
    return true;
}

/* ---- DNS server ---------------------------------------------------------------------- */

typedef struct DnsEntry {
    const char *name;
    const char *v4[2];
    const char *v6[2];
} DnsEntry;

static const DnsEntry dns_entries[] = {
    { "private.test", { "10.0.0.1" }, { NULL } },
    { "meta.test", { "169.254.169.254" }, { NULL } },
    { "loop.test", { "127.0.0.1" }, { NULL } },
    { "mixed.test", { "10.0.0.1", "127.0.0.1" }, { "fd00::1" } },
    { "v6loop.test", { NULL }, { "::1" } },
    { "mapped.test", { NULL }, { "::ffff:127.0.0.1" } },
    { "nat64.test", { NULL }, { "64:ff9b::a9fe:a9fe" } },
};

static struct evdns_server_port *dns_port;
static int dns_udp_port;
static int dns_queries;

static void dns_answer(struct evdns_server_request *req, void *arg)
{
    dns_queries++;
    for (int i = 0; i < req->nquestions; i++) {
        const struct evdns_server_question *q = req->questions[i];
        if (strcasecmp(q->name, "hang.test") == 0) {
            evdns_server_request_drop(req); /* a name server that never answers */
            return;
        }
        const DnsEntry *e = NULL;
        for (size_t k = 0; k < OC_ARRAY_LEN(dns_entries); k++)
            if (strcasecmp(q->name, dns_entries[k].name) == 0)
                e = &dns_entries[k];
        if (!e) {
            evdns_server_request_respond(req, DNS_ERR_NOTEXIST);
            return;
        }
        if (q->type == EVDNS_TYPE_A) {
            uint8_t a[2][4];
            int n = 0;
            for (; n < 2 && e->v4[n]; n++)
                inet_pton(AF_INET, e->v4[n], a[n]);
            if (n)
                evdns_server_request_add_a_reply(req, q->name, n, a, 5);
        } else if (q->type == EVDNS_TYPE_AAAA) {
            uint8_t a[2][16];
            int n = 0;
            for (; n < 2 && e->v6[n]; n++)
                inet_pton(AF_INET6, e->v6[n], a[n]);
            if (n)
                evdns_server_request_add_aaaa_reply(req, q->name, n, a, 5);
        }
    }
    evdns_server_request_respond(req, 0);
}

static bool dns_start(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
        return false;
    dns_udp_port = ntohs(sin.sin_port);
    dns_port = evdns_add_server_port_with_base(base, fd, 0, dns_answer, NULL);
    return dns_port != NULL;
}

/* Points a client's resolver at the test name server (the /etc/hosts entries stay). */
static void use_test_dns(HttpClient *c)
{
    struct evdns_base *dns = http_client_dns_base(c);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", dns_udp_port);
    evdns_base_clear_nameservers_and_suspend(dns);
    evdns_base_search_clear(dns);
    evdns_base_nameserver_ip_add(dns, addr);
    evdns_base_resume(dns);
}

/* ---- the cases ----------------------------------------------------------------------- */

static HttpClient *new_client(bool loopback, bool with_ca, unsigned connect_ms, unsigned total_ms)
{
    char ca[1024];
    snprintf(ca, sizeof(ca), "%s/ca.pem", cert_dir);
    HttpClientOptions o = {
        .ca_file = with_ca ? ca : NULL,
        .connect_timeout_ms = connect_ms,
        .total_timeout_ms = total_ms,
        .max_response = MAX_RESP,
        .allow_loopback = loopback,
        .allow_private = false,
    };
    HttpClient *c = http_client_new(base, &o);
    if (c)
        use_test_dns(c);
    return c;
}

static void test_address_table(void)
{
    static const struct {
        const char *addr;
        int strict, loopback, private_, both; /* expected allowed under each flag set */
    } rows[] = {
        { "8.8.8.8", 1, 1, 1, 1 },
        { "1.1.1.1", 1, 1, 1, 1 },
        { "93.184.216.34", 1, 1, 1, 1 },
        { "0.0.0.0", 0, 0, 0, 0 },
        { "0.1.2.3", 0, 0, 0, 0 },
        { "127.0.0.1", 0, 1, 0, 1 },
        { "127.255.255.254", 0, 1, 0, 1 },
        { "126.255.255.255", 1, 1, 1, 1 },
        { "128.0.0.1", 1, 1, 1, 1 },
        { "10.0.0.1", 0, 0, 1, 1 },
        { "10.255.255.255", 0, 0, 1, 1 },
        { "11.0.0.0", 1, 1, 1, 1 },
        { "172.15.255.255", 1, 1, 1, 1 },
        { "172.16.0.0", 0, 0, 1, 1 },
        { "172.31.255.255", 0, 0, 1, 1 },
        { "172.32.0.0", 1, 1, 1, 1 },
        { "192.168.0.1", 0, 0, 1, 1 },
        { "192.169.0.1", 1, 1, 1, 1 },
        { "100.63.255.255", 1, 1, 1, 1 },
        { "100.64.0.0", 0, 0, 1, 1 },
        { "100.127.255.255", 0, 0, 1, 1 },
        { "100.128.0.0", 1, 1, 1, 1 },
        { "169.254.169.254", 0, 0, 1, 1 },
        { "169.254.0.1", 0, 0, 1, 1 },
        { "169.255.0.1", 1, 1, 1, 1 },
        { "192.0.0.8", 0, 0, 1, 1 },
        { "192.0.1.1", 1, 1, 1, 1 },
        { "198.17.255.255", 1, 1, 1, 1 },
        { "198.18.0.1", 0, 0, 1, 1 },
        { "198.19.255.255", 0, 0, 1, 1 },
        { "198.20.0.0", 1, 1, 1, 1 },
        { "223.255.255.255", 1, 1, 1, 1 },
        { "224.0.0.1", 0, 0, 0, 0 },
        { "239.255.255.250", 0, 0, 0, 0 },
        { "240.0.0.1", 0, 0, 0, 0 },
        { "255.255.255.255", 0, 0, 0, 0 },
        { "2606:4700::1111", 1, 1, 1, 1 },
        { "2001:db8::1", 1, 1, 1, 1 },
        { "::", 0, 0, 0, 0 },
        { "::1", 0, 1, 0, 1 },
        { "::2", 0, 0, 0, 0 },
        { "::127.0.0.1", 0, 0, 0, 0 },
        { "fc00::1", 0, 0, 1, 1 },
        { "fd12:3456::1", 0, 0, 1, 1 },
        { "fe80::1", 0, 0, 1, 1 },
        { "febf::1", 0, 0, 1, 1 },
        { "fec0::1", 0, 0, 1, 1 },
        { "fbff::1", 1, 1, 1, 1 },
        { "ff02::1", 0, 0, 0, 0 },
        { "ff0e::1", 0, 0, 0, 0 },
        { "::ffff:8.8.8.8", 1, 1, 1, 1 },
        { "::ffff:127.0.0.1", 0, 1, 0, 1 },
        { "::ffff:10.1.2.3", 0, 0, 1, 1 },
        { "::ffff:169.254.169.254", 0, 0, 1, 1 },
        { "::ffff:0.0.0.0", 0, 0, 0, 0 },
        { "::ffff:224.0.0.1", 0, 0, 0, 0 },
        { "64:ff9b::808:808", 1, 1, 1, 1 },
        { "64:ff9b::7f00:1", 0, 1, 0, 1 },
        { "64:ff9b::a00:1", 0, 0, 1, 1 },
        { "64:ff9b::a9fe:a9fe", 0, 0, 1, 1 },
        { "64:ff9b::e000:1", 0, 0, 0, 0 },
        { "64:ff9b:1::a00:1", 0, 0, 1, 1 },
        { "2002:808:808::1", 1, 1, 1, 1 },
        { "2002:7f00:1::1", 0, 1, 0, 1 },
        { "2002:c0a8:1::1", 0, 0, 1, 1 },
    };
    HttpClientOptions flags[4] = { { 0 } };
    flags[1].allow_loopback = true;
    flags[2].allow_private = true;
    flags[3].allow_loopback = flags[3].allow_private = true;
    static const char *const flag_names[4] = { "strict", "loopback", "private", "both" };

    for (size_t i = 0; i < OC_ARRAY_LEN(rows); i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (strchr(rows[i].addr, ':')) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            in6->sin6_family = AF_INET6;
            inet_pton(AF_INET6, rows[i].addr, &in6->sin6_addr);
        } else {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            in->sin_family = AF_INET;
            inet_pton(AF_INET, rows[i].addr, &in->sin_addr);
        }
        int want[4] = { rows[i].strict, rows[i].loopback, rows[i].private_, rows[i].both };
        for (int f = 0; f < 4; f++)
            CHECK_INT(net_address_allowed((struct sockaddr *)&ss, &flags[f]), want[f],
                      "address %s under %s", rows[i].addr, flag_names[f]);
    }
    struct sockaddr_un_like {
        sa_family_t family;
        char path[32];
    } un = { AF_UNIX, "/tmp/x" };
    CHECK(!net_address_allowed((struct sockaddr *)&un, &flags[3]), "AF_UNIX refused");
    CHECK(!net_address_allowed(NULL, &flags[3]), "NULL address refused");
}

static void test_bad_arguments(HttpClient *c)
{
    static char long_url[2100];
    int n = snprintf(long_url, sizeof(long_url), "http://127.0.0.1:%d/", plain.port);
    memset(long_url + n, 'a', 2049 - (size_t)n);
    long_url[2049] = '\0';
    static const char *const bad[] = {
        "ftp://example.com/", "file:///etc/passwd", "gopher://x/", "//example.com/",
        "example.com", "", "http://", "http:///path", "http://:80/", "http://?q",
        "http://user:pw@example.com/", "http://user@example.com/", "https://@example.com/",
        "http://example.com:0/", "http://example.com:65536/", "http://example.com:8a/",
        "http://example.com:/", "http://example.com:123456/", "http://[::1/",
        "http://[::1]x/", "http://[fe80::1%25eth0]/", "http://[not-v6]/",
        "http://exa mple.com/", "http://exa_mple.com/", "http://-example.com/",
        "http://example-.com/", "http://example..com/", "http://example.com./",
        "http://127.1/", "http://0x7f.0.0.1/", "http://2130706433/", "http://017.0.0.1/",
        "http://1.2.3.4.5/", "http://example.com/pa th", "http://example.com/a\r\nX: y",
        "http://example.com/\x7f", "http://example.com/caf\xc3\xa9", "http://ex\xc3\xa4mple.com/",
        "http://example.com\\@evil.com/", long_url,
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(bad); i++) {
        Call call;
        char shown[64];
        size_t k = 0;
        memset(&call, 0, sizeof(call));
        for (; bad[i][k] && k < sizeof(shown) - 1; k++) /* keep the TAP line one line */
            shown[k] = (unsigned char)bad[i][k] < 0x20 || bad[i][k] == 0x7f ? '?' : bad[i][k];
        shown[k] = '\0';
        CHECK_INT(post(c, bad[i], NULL, "{}", 2, &call), -EINVAL, "bad URL %zu refused: %s", i,
                  shown);
    }
    long_url[2048] = '\0'; /* exactly 2048 bytes is still fine */
    Call ok2048 = fetch(c, long_url);
    CHECK_INT(ok2048.err, NET_OK, "a 2048-byte URL is accepted (%s)", ok2048.error_text);
    CHECK_INT(ok2048.status, 404, "and reaches the server");

    static const char *const hdr_crlf[] = { "X-A", "v\r\nX-Injected: 1", NULL };
    static const char *const hdr_lf[] = { "X-A", "v\nX", NULL };
    static const char *const hdr_name[] = { "X A", "v", NULL };
    static const char *const hdr_colon[] = { "X-A:", "v", NULL };
    static const char *const hdr_empty[] = { "", "v", NULL };
    static const char *const hdr_host[] = { "Host", "evil.com", NULL };
    static const char *const hdr_cl[] = { "content-length", "5", NULL };
    static const char *const hdr_te[] = { "Transfer-Encoding", "chunked", NULL };
    static const char *const hdr_odd[] = { "X-A", NULL };
    static const char *const *const bad_headers[] = {
        hdr_crlf, hdr_lf, hdr_name, hdr_colon, hdr_empty, hdr_host, hdr_cl, hdr_te, hdr_odd,
    };
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", plain.port);
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_headers); i++) {
        Call call;
        memset(&call, 0, sizeof(call));
        CHECK_INT(post(c, url, bad_headers[i], "{}", 2, &call), -EINVAL,
                  "unsafe extra header %zu refused", i);
    }
    static const char *many[2 * 70 + 1];
    for (int i = 0; i < 140; i += 2) {
        many[i] = "X-Many";
        many[i + 1] = "1";
    }
    Call call;
    memset(&call, 0, sizeof(call));
    CHECK_INT(post(c, url, many, "{}", 2, &call), -EINVAL, "more than 64 extra headers refused");
    CHECK_INT(http_client_post(NULL, url, NULL, "{}", 2, on_done, &call), -EINVAL, "NULL client");
    CHECK_INT(http_client_post(c, NULL, NULL, "{}", 2, on_done, &call), -EINVAL, "NULL url");
    CHECK_INT(http_client_post(c, url, NULL, "{}", 2, NULL, &call), -EINVAL, "NULL callback");
    CHECK_INT(http_client_post(c, url, NULL, NULL, 2, on_done, &call), -EINVAL,
              "NULL body with a length");
    CHECK_INT(call.calls, 0, "refused posts never call back");
    run_until(NULL, NULL, 20);
    CHECK_INT(call.calls, 0, "not even later");

    HttpClientOptions o = { .ca_file = "/nonexistent/ca.pem" };
    HttpClient *bad_ca = http_client_new(base, &o);
    CHECK(bad_ca == NULL, "a missing CA file fails http_client_new");
    http_client_free(bad_ca);
    http_client_free(NULL);
    CHECK(1, "http_client_free(NULL) is a no-op");
}

static void test_plain(HttpClient *c)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", plain.port);
    Call r = fetch(c, url);
    CHECK_ERR(r, NET_OK, "200 from evhttp");
    CHECK_INT(r.status, 200, "status 200");
    CHECK_BYTES(r.body, r.body_len, "{\"status\":\"accepted\"}", 21, "body received");
    CHECK_STR(r.retry_after, "7", "Retry-After captured on a 200");
    CHECK_STR(r.error_text, "", "no error text on success");
    CHECK(r.duration_ms < 2000, "duration %u ms is plausible", r.duration_ms);

    /* POST body (with NUL and high bytes) and extra headers arrive byte-exact */
    static const char body[] = "{\"proof\":\"\xe2\x82\xac\"}\0\x01\xff tail";
    static const char *const headers[] = { "X-OC-Delivery-Id", "42", "X-Custom",
                                           "a b\tc:d;e=\"f\"", NULL };
    Call e;
    memset(&e, 0, sizeof(e));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo?x=1&y=%%20z#frag", plain.port);
    CHECK_INT(post(c, url, headers, body, sizeof(body) - 1, &e), 0, "echo posted");
    run_until(call_done, &e, WAIT_MS);
    CHECK_ERR(e, NET_OK, "echo");
    CHECK(echo.post, "method is POST");
    CHECK_STR(echo.uri, "/echo?x=1&y=%20z", "request target is path and query, no fragment");
    char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", plain.port);
    CHECK_STR(echo.host, host, "Host header is the URL's host:port");
    CHECK_STR(echo.ctype, "application/json", "Content-Type");
    char clen[32];
    snprintf(clen, sizeof(clen), "%zu", sizeof(body) - 1);
    CHECK_STR(echo.clen, clen, "Content-Length");
    CHECK_STR(echo.conn, "(none)", "no Connection header (HTTP/1.1: the connection may be kept)");
    CHECK_STR(echo.delivery, "42", "extra header X-OC-Delivery-Id");
    CHECK_STR(echo.custom, "a b\tc:d;e=\"f\"", "extra header value byte-exact");
    CHECK_BYTES(echo.body, echo.body_len, body, sizeof(body) - 1, "request body byte-exact");
    CHECK_BYTES(e.body, e.body_len, body, sizeof(body) - 1, "echoed response body byte-exact");

    /* empty body */
    Call z;
    memset(&z, 0, sizeof(z));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", plain.port);
    CHECK_INT(http_client_post(c, url, NULL, NULL, 0, on_done, &z), 0, "empty body posted");
    run_until(call_done, &z, WAIT_MS);
    CHECK_ERR(z, NET_OK, "empty body");
    CHECK(z.body_null && z.body_len == 0, "empty response body is NULL, 0");
    CHECK_STR(echo.clen, "0", "Content-Length: 0");

    static const struct {
        int code;
        const char *retry_after;
    } statuses[] = {
        { 500, NULL }, { 410, NULL }, { 429, "120" }, { 503, "Wed, 21 Oct 2037 07:28:00 GMT" },
        { 404, NULL },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(statuses); i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/status/%d", plain.port,
                 statuses[i].code);
        Call s = fetch(c, url);
        CHECK_ERR(s, NET_OK, "status is not an error");
        CHECK_INT(s.status, statuses[i].code, "status %d reported", statuses[i].code);
        if (statuses[i].retry_after)
            CHECK_STR(s.retry_after, statuses[i].retry_after, "Retry-After of the %d",
                      statuses[i].code);
        else
            CHECK(!s.has_retry_after, "no Retry-After on the %d", statuses[i].code);
    }

    int ok_before = plain.ok_hits;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/redirect", plain.port);
    Call red = fetch(c, url);
    CHECK_ERR(red, NET_OK, "redirect");
    CHECK_INT(red.status, 302, "302 reported, not followed");
    run_until(NULL, NULL, 50);
    CHECK_INT(plain.ok_hits, ok_before, "the Location was never fetched");

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/small-chunked", plain.port);
    Call ch = fetch(c, url);
    CHECK_ERR(ch, NET_OK, "chunked reply from evhttp");
    CHECK_BYTES(ch.body, ch.body_len, "part0;part1;part2;", 18, "chunked body reassembled");

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/exact", plain.port);
    Call ex = fetch(c, url);
    CHECK_ERR(ex, NET_OK, "body of exactly max_response");
    CHECK_INT(ex.body_len, MAX_RESP, "all %d bytes kept", MAX_RESP);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", plain.port);
    Call big = fetch(c, url);
    CHECK_ERR(big, NET_E_TOO_LARGE, "Content-Length over max_response");
    CHECK_INT(big.status, 0, "status 0 on error");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/big-chunked", plain.port);
    Call bigc = fetch(c, url);
    CHECK_ERR(bigc, NET_E_TOO_LARGE, "chunked body over max_response");

    if (plain.port6) {
        snprintf(url, sizeof(url), "http://[::1]:%d/echo", plain.port6);
        Call v6 = fetch(c, url);
        CHECK_ERR(v6, NET_OK, "IPv6 literal");
        snprintf(host, sizeof(host), "[::1]:%d", plain.port6);
        CHECK_STR(echo.host, host, "Host header keeps the IPv6 brackets");
    } else {
        CHECK(1, "# SKIP no IPv6 loopback");
    }

    /* a port that nobody listens on */
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *tmp = evconnlistener_new_bind(
        base, raw_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 1, (struct sockaddr *)&sin, sizeof(sin));
    int dead_port = listener_port(tmp);
    evconnlistener_free(tmp);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", dead_port);
    Call ref = fetch(c, url);
    CHECK_ERR(ref, NET_E_CONNECT, "connection refused");
    CHECK(strstr(ref.error_text, "refused") != NULL, "error text says refused: %s",
          ref.error_text);
}

static void test_raw(HttpClient *c)
{
    static const struct {
        const char *path;
        NetError err;
        int status;
        const char *body;
    } cases[] = {
        { "/chunked", NET_OK, 200, "hello world" },
        { "/eof-body", NET_OK, 200, "until close" },
        { "/bare-lf", NET_OK, 200, "ok" },
        { "/continue", NET_OK, 200, "ok" },
        { "/204-open", NET_OK, 204, "" },
        { "/cl-open", NET_OK, 200, "open" },
        { "/no-reason", NET_OK, 200, "" },
        { "/delay", NET_OK, 200, "ok" },
        { "/bad-status", NET_E_PROTOCOL, 0, NULL },
        { "/garbage", NET_E_PROTOCOL, 0, NULL },
        { "/http2", NET_E_PROTOCOL, 0, NULL },
        { "/fold", NET_E_PROTOCOL, 0, NULL },
        { "/cl-conflict", NET_E_PROTOCOL, 0, NULL },
        { "/cl-bad", NET_E_PROTOCOL, 0, NULL },
        { "/te-gzip", NET_E_PROTOCOL, 0, NULL },
        { "/huge-headers", NET_E_PROTOCOL, 0, NULL },
        { "/truncated", NET_E_PROTOCOL, 0, NULL },
        { "/truncated-chunk", NET_E_PROTOCOL, 0, NULL },
        { "/empty", NET_E_PROTOCOL, 0, NULL },
        { "/chunk-overflow", NET_E_PROTOCOL, 0, NULL },
        { "/chunk-bad-end", NET_E_PROTOCOL, 0, NULL },
        { "/nul-header", NET_E_PROTOCOL, 0, NULL },
        { "/switch", NET_E_PROTOCOL, 0, NULL },
        { "/chunk-big", NET_E_TOO_LARGE, 0, NULL },
        { "/eof-big", NET_E_TOO_LARGE, 0, NULL },
        { "/reset", NET_E_CONNECT, 0, NULL },
    };
    char url[128];
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", raw_port, cases[i].path);
        uint64_t t0 = now_ms();
        Call r = fetch(c, url);
        CHECK_ERR(r, cases[i].err, cases[i].path);
        if (cases[i].err == NET_OK) {
            CHECK_INT(r.status, cases[i].status, "%s status", cases[i].path);
            CHECK_BYTES(r.body_null ? "" : r.body, r.body_len, cases[i].body,
                        strlen(cases[i].body), "%s body", cases[i].path);
            /* framed responses complete without waiting for the server to close */
            CHECK(now_ms() - t0 < 1000, "%s answered promptly", cases[i].path);
        }
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/429", raw_port);
    Call r = fetch(c, url);
    CHECK_INT(r.status, 429, "raw 429");
    CHECK_STR(r.retry_after, "30", "Retry-After value trimmed");
}

static bool no_raw_conn_open(void *arg)
{
    return raw_open == 0;
}

/* Kept connections: reused for the same host and port, never after a response that forbids
 * it, dropped when idle, and a kept connection the server hung up on is replaced without the
 * caller noticing. A client of its own, so that no other test's connections are counted. */
static void test_keepalive(void)
{
    HttpClient *c = new_client(true, true, 2000, 3000);
    char url[128];
    if (!c) {
        CHECK(false, "keep-alive client created");
        return;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ka", raw_port);
    int accepts = raw_accepts;
    for (int i = 0; i < 5; i++) {
        Call r = fetch(c, url);
        CHECK_ERR(r, NET_OK, "keep-alive request");
        CHECK_BYTES(r.body_null ? "" : r.body, r.body_len, "ka", 2, "keep-alive body %d", i + 1);
    }
    CHECK_INT(raw_accepts - accepts, 1, "five requests in a row share one connection");

    /* Two at once need two connections; both are kept and reused afterwards. */
    accepts = raw_accepts;
    Call pair[2];
    memset(pair, 0, sizeof(pair));
    CHECK_INT(post(c, url, NULL, "{}", 2, &pair[0]), 0, "first of a pair posted");
    CHECK_INT(post(c, url, NULL, "{}", 2, &pair[1]), 0, "second of a pair posted");
    Calls both = { pair, 2 };
    run_until(calls_done, &both, WAIT_MS);
    CHECK_ERR(pair[0], NET_OK, "pair 1");
    CHECK_ERR(pair[1], NET_OK, "pair 2");
    memset(pair, 0, sizeof(pair));
    CHECK_INT(post(c, url, NULL, "{}", 2, &pair[0]), 0, "first of a second pair posted");
    CHECK_INT(post(c, url, NULL, "{}", 2, &pair[1]), 0, "second of a second pair posted");
    run_until(calls_done, &both, WAIT_MS);
    CHECK(pair[0].err == NET_OK && pair[1].err == NET_OK, "second pair answered");
    CHECK_INT(raw_accepts - accepts, 1, "a pair opens one more connection, then reuses both");

    static const struct {
        const char *path, *why;
    } not_kept[] = {
        { "/ka-close", "Connection: close (listed with other tokens, any case)" },
        { "/ka-10", "an HTTP/1.0 response" },
        { "/eof-body", "a body ended by the connection's end" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(not_kept); i++) {
        /* A client with no kept connection yet, so that the first request opens one. */
        HttpClient *once = new_client(true, true, 2000, 3000);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", raw_port, not_kept[i].path);
        accepts = raw_accepts;
        Call a = fetch(once, url);
        Call b = fetch(once, url);
        CHECK(a.err == NET_OK && b.err == NET_OK, "%s answered twice", not_kept[i].path);
        CHECK_INT(raw_accepts - accepts, 2, "not kept after %s", not_kept[i].why);
        http_client_free(once);
    }

    /* The server hangs up on the kept connection when the next request comes: the request
     * is sent again on a new connection and succeeds; the caller sees one answer. */
    HttpClient *fresh = new_client(true, true, 2000, 3000);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ka-once", raw_port);
    accepts = raw_accepts;
    Call first = fetch(fresh, url);
    Call again = fetch(fresh, url);
    CHECK_ERR(first, NET_OK, "first request on a connection the server keeps once");
    CHECK_ERR(again, NET_OK, "the next request, after the server hung up on the kept "
                             "connection");
    CHECK_BYTES(again.body_null ? "" : again.body, again.body_len, "k1", 2,
                "its answer came on the new connection");
    CHECK_INT(raw_accepts - accepts, 2, "exactly one new connection for it");
    http_client_free(fresh);

    /* Unused connections are closed by the client after NET_IDLE_MS (4 s). */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ka", raw_port);
    Call last = fetch(c, url);
    CHECK_ERR(last, NET_OK, "a request that leaves a kept connection");
    CHECK(raw_open >= 1, "the server sees the kept connection open (%d)", raw_open);
    uint64_t t0 = now_ms();
    run_until(no_raw_conn_open, NULL, 7000);
    uint64_t waited = now_ms() - t0;
    CHECK_INT(raw_open, 0, "every kept connection closed by the client once idle");
    CHECK(waited >= 3000, "not before the idle time (%llu ms)", (unsigned long long)waited);
    http_client_free(c);
}

static void check_timeout(Call *r, const char *what, unsigned limit_ms)
{
    CHECK_ERR(*r, NET_E_TIMEOUT, what);
    CHECK(r->duration_ms + 20 >= limit_ms && r->duration_ms <= limit_ms + SLACK_MS,
          "%s after %u ms (limit %u)", what, r->duration_ms, limit_ms);
}

static void test_timeouts(HttpClient *fast)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", raw_port);
    Call r = fetch(fast, url);
    check_timeout(&r, "server never answers", FAST_TOTAL_MS);
    CHECK(strstr(r.error_text, "no complete response") != NULL, "total timeout text: %s",
          r.error_text);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/trickle-body", raw_port);
    r = fetch(fast, url);
    check_timeout(&r, "body trickles past the total timeout", FAST_TOTAL_MS);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/trickle-head", raw_port);
    r = fetch(fast, url);
    check_timeout(&r, "headers trickle past the total timeout", FAST_TOTAL_MS);

    /* TLS handshake that never completes: the connect timeout covers it */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", raw_port);
    r = fetch(fast, url);
    check_timeout(&r, "stalled TLS handshake", FAST_CONNECT_MS);
    CHECK(strstr(r.error_text, "TLS handshake") != NULL, "connect timeout text: %s",
          r.error_text);

    /* a name server that never answers: the connect timeout covers DNS too */
    snprintf(url, sizeof(url), "http://hang.test:%d/", raw_port);
    r = fetch(fast, url);
    check_timeout(&r, "DNS never answers", FAST_CONNECT_MS);
    CHECK(strstr(r.error_text, "resolving") != NULL, "DNS timeout text: %s", r.error_text);
}

static void test_tls(HttpClient *c, HttpClient *noca)
{
    char url[256];
    snprintf(url, sizeof(url), "https://localhost:%d/ok", tls_good.port);
    Call r = fetch(c, url);
    CHECK_ERR(r, NET_OK, "https://localhost with the test CA");
    CHECK_INT(r.status, 200, "TLS 200");
    CHECK_BYTES(r.body, r.body_len, "{\"status\":\"accepted\"}", 21, "TLS body");

    snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", tls_good.port);
    r = fetch(c, url);
    CHECK_ERR(r, NET_OK, "https://127.0.0.1 matches the IP subjectAltName");

    /* a body larger than any single TLS record, byte-exact through the server */
    static char upload[200000];
    for (size_t i = 0; i < sizeof(upload); i++)
        upload[i] = (char)('a' + i % 26);
    Call up;
    memset(&up, 0, sizeof(up));
    snprintf(url, sizeof(url), "https://localhost:%d/echo", tls_good.port);
    CHECK_INT(post(c, url, NULL, upload, sizeof(upload), &up), 0, "TLS upload posted");
    run_until(call_done, &up, WAIT_MS);
    CHECK_ERR(up, NET_OK, "TLS upload");
    CHECK_BYTES(up.body, up.body_len, "200000", 6, "server received 200000 bytes");
    CHECK_BYTES(echo.body, 1000, upload, 1000, "TLS upload content");
    char host[64];
    snprintf(host, sizeof(host), "localhost:%d", tls_good.port);
    CHECK_STR(echo.host, host, "TLS Host header");

    int before = tls_wrong.requests;
    snprintf(url, sizeof(url), "https://localhost:%d/ok", tls_wrong.port);
    r = fetch(c, url);
    CHECK_ERR(r, NET_E_TLS, "certificate for wrong.example");
    CHECK(strstr(r.error_text, "hostname mismatch") != NULL, "TLS error names the mismatch: %s",
          r.error_text);
    run_until(NULL, NULL, 30);
    CHECK_INT(tls_wrong.requests, before, "no request reached the wrong server");

    snprintf(url, sizeof(url), "https://localhost:%d/ok", tls_good.port);
    r = fetch(noca, url);
    CHECK_ERR(r, NET_E_TLS, "test CA not configured (default paths)");
    CHECK(strstr(r.error_text, "certificate verification failed") != NULL,
          "verification failure reported: %s", r.error_text);

    /* plain HTTP spoken to a TLS port and TLS spoken to a plain port */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", plain.port);
    r = fetch(c, url);
    CHECK_ERR(r, NET_E_TLS, "https to a plain HTTP server");
    CHECK(strstr(r.error_text, "wrong version number") != NULL, "OpenSSL's reason shown: %s",
          r.error_text);
}

static void test_ssrf(HttpClient *strict, HttpClient *loose)
{
    char url[256];
    int conns = plain.conns;
    int queries_before = dns_queries;
    struct {
        const char *host;
        int port;
    } blocked[] = {
        { "127.0.0.1", plain.port },
        { "localhost", plain.port },
        { "[::1]", plain.port6 ? plain.port6 : plain.port },
        { "[::ffff:127.0.0.1]", plain.port },
        { "loop.test", plain.port },
        { "v6loop.test", plain.port },
        { "mapped.test", plain.port },
        { "[::]", plain.port },
        { "0.0.0.0", plain.port },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(blocked); i++) {
        snprintf(url, sizeof(url), "http://%s:%d/ok", blocked[i].host, blocked[i].port);
        Call r = fetch(strict, url);
        CHECK_ERR(r, NET_E_BLOCKED, url);
    }
    run_until(NULL, NULL, 50);
    CHECK_INT(plain.conns, conns, "the server saw no connection from blocked requests");
    CHECK(dns_queries > queries_before, "names were resolved through the test DNS server");

    static const char *const always_blocked[] = {
        "private.test", "meta.test", "nat64.test", "10.0.0.1", "169.254.169.254",
        "[fd00::1]", "[64:ff9b::a00:1]", "224.0.0.1",
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(always_blocked); i++) {
        snprintf(url, sizeof(url), "http://%s:%d/ok", always_blocked[i], plain.port);
        Call r = fetch(loose, url);
        CHECK_ERR(r, NET_E_BLOCKED, url);
    }

    snprintf(url, sizeof(url), "http://nx.test:%d/ok", plain.port);
    Call nx = fetch(loose, url);
    CHECK_ERR(nx, NET_E_DNS, "unknown name");

    /* localhost comes from /etc/hosts, through evdns */
    snprintf(url, sizeof(url), "http://localhost:%d/echo", plain.port);
    Call lh = fetch(loose, url);
    CHECK_ERR(lh, NET_OK, "localhost resolved from /etc/hosts");
    char host[64];
    snprintf(host, sizeof(host), "localhost:%d", plain.port);
    CHECK_STR(echo.host, host, "Host is the name, not the address");

    /* 10.0.0.1 (blocked) and fd00::1 (blocked) are skipped; 127.0.0.1 is used, yet the Host
     * header is still the URL's name */
    snprintf(url, sizeof(url), "http://mixed.test:%d/echo", plain.port);
    Call mx = fetch(loose, url);
    CHECK_ERR(mx, NET_OK, "only the allowed address of mixed.test is used");
    snprintf(host, sizeof(host), "mixed.test:%d", plain.port);
    CHECK_STR(echo.host, host, "Host header is mixed.test");

    if (plain.port6) {
        snprintf(url, sizeof(url), "http://v6loop.test:%d/ok", plain.port6);
        Call v6 = fetch(loose, url);
        CHECK_ERR(v6, NET_OK, "AAAA-only name over IPv6");
    } else {
        CHECK(1, "# SKIP no IPv6 loopback");
        CHECK(1, "# SKIP no IPv6 loopback");
    }
    snprintf(url, sizeof(url), "http://mapped.test:%d/ok", plain.port);
    Call mp = fetch(loose, url);
    CHECK_ERR(mp, NET_OK, "IPv4-mapped address judged (and reached) as 127.0.0.1");
}

static void test_concurrent(HttpClient *c)
{
    static Call calls[N_CONCURRENT];
    char url[128];
    int conns = plain.conns;
    int posted = 0;
    memset(calls, 0, sizeof(calls));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", plain.port);
    for (int i = 0; i < N_CONCURRENT; i++)
        posted += post(c, url, NULL, "{}", 2, &calls[i]) == 0;
    CHECK_INT(posted, N_CONCURRENT, "%d requests posted", N_CONCURRENT);
    Calls cs = { calls, N_CONCURRENT };
    CHECK(run_until(calls_done, &cs, 10000), "all %d answered", N_CONCURRENT);
    run_until(NULL, NULL, 50); /* a second callback would show up here */
    int once = 0, ok = 0;
    for (int i = 0; i < N_CONCURRENT; i++) {
        once += calls[i].calls == 1;
        ok += calls[i].err == NET_OK && calls[i].status == 200 && calls[i].body_len == 21;
    }
    CHECK_INT(once, N_CONCURRENT, "each answered exactly once");
    CHECK_INT(ok, N_CONCURRENT, "each got 200 and its body");
    CHECK_INT(plain.conns - conns, N_CONCURRENT, "one connection per request");
}

static void test_free_in_flight(void)
{
    char url[256];
    enum { N = 8 };
    Call calls[N];
    memset(calls, 0, sizeof(calls));

    /* 1. freed before the loop ran at all: nothing has started yet */
    HttpClient *a = new_client(true, true, 2000, 3000);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", raw_port);
    CHECK_INT(post(a, url, NULL, "{}", 2, &calls[0]), 0, "posted to a silent server");
    CHECK_INT(post(a, "http://10.0.0.1/", NULL, "{}", 2, &calls[1]), 0, "posted to a blocked IP");
    calls[1].repost_client = a; /* posting from a cancel callback must be refused */
    http_client_free(a);
    CHECK_ERR(calls[0], NET_E_CANCELLED, "cancelled before it started");
    CHECK_ERR(calls[1], NET_E_CANCELLED, "blocked one cancelled too");
    CHECK_INT(calls[1].repost_rc, -EINVAL, "post from inside http_client_free refused");

    /* 2. freed with requests in every stage: DNS, connect, TLS handshake, waiting for a
     * response, reading a trickling body */
    memset(calls, 0, sizeof(calls));
    HttpClient *b = new_client(true, true, 2000, 3000);
    const char *urls[N];
    char buf[N][256];
    snprintf(buf[0], sizeof(buf[0]), "http://hang.test:%d/", raw_port);
    snprintf(buf[1], sizeof(buf[1]), "http://127.0.0.1:%d/hang", raw_port);
    snprintf(buf[2], sizeof(buf[2]), "https://127.0.0.1:%d/hang", raw_port);
    snprintf(buf[3], sizeof(buf[3]), "http://127.0.0.1:%d/trickle-body", raw_port);
    snprintf(buf[4], sizeof(buf[4]), "http://localhost:%d/hang", raw_port);
    snprintf(buf[5], sizeof(buf[5]), "https://localhost:%d/", raw_port);
    snprintf(buf[6], sizeof(buf[6]), "http://hang.test:%d/x", raw_port);
    snprintf(buf[7], sizeof(buf[7]), "https://hang.test:%d/y", raw_port);
    int accepted = 0;
    for (int i = 0; i < N; i++) {
        urls[i] = buf[i];
        accepted += post(b, urls[i], NULL, "{}", 2, &calls[i]) == 0;
    }
    CHECK_INT(accepted, N, "requests posted");
    run_until(NULL, NULL, 200); /* let them reach their stages */
    int early = 0;
    for (int i = 0; i < N; i++)
        early += calls[i].calls;
    CHECK_INT(early, 0, "none finished before the free");
    http_client_free(b);
    int cancelled = 0, once = 0;
    for (int i = 0; i < N; i++) {
        once += calls[i].calls == 1;
        cancelled += calls[i].err == NET_E_CANCELLED;
    }
    CHECK_INT(once, N, "every request called back exactly once, before http_client_free returned");
    CHECK_INT(cancelled, N, "all running ones got NET_E_CANCELLED");
    run_until(NULL, NULL, 300); /* abandoned DNS lookups drain; no second callback */
    once = 0;
    for (int i = 0; i < N; i++)
        once += calls[i].calls == 1;
    CHECK_INT(once, N, "still exactly once after the loop ran on");

    /* 3. freeing the client from inside one of its own callbacks */
    memset(calls, 0, sizeof(calls));
    HttpClient *d = new_client(true, true, 2000, 3000);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", plain.port);
    CHECK_INT(post(d, url, NULL, "{}", 2, &calls[0]), 0, "posted /ok");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", raw_port);
    CHECK_INT(post(d, url, NULL, "{}", 2, &calls[1]), 0, "posted /hang");
    calls[0].free_client = d;
    run_until(call_done, &calls[0], WAIT_MS);
    CHECK_ERR(calls[0], NET_OK, "the first request finished");
    CHECK_ERR(calls[1], NET_E_CANCELLED, "the other was cancelled by the free inside it");
    run_until(NULL, NULL, 100);
    CHECK_INT(calls[1].calls, 1, "and called back once only");
}

static void teardown_servers(void)
{
    while (raw_conns)
        raw_free(raw_conns);
    if (raw_listener)
        evconnlistener_free(raw_listener);
    if (dns_port)
        evdns_close_server_port(dns_port);
    server_stop(&plain);
    server_stop(&tls_good);
    server_stop(&tls_wrong);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("Bail out! usage: test-net CERT_DIR (test-net.sh makes one)\n");
        return 1;
    }
    cert_dir = argv[1];
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base || !raw_start() || !dns_start() || !server_start(&plain, NULL) ||
        !server_start(&tls_good, "good") || !server_start(&tls_wrong, "wrong")) {
        printf("Bail out! cannot start the test servers\n");
        return 1;
    }
    printf("# plain %d (v6 %d), tls %d, wrong %d, raw %d, dns %d\n", plain.port, plain.port6,
           tls_good.port, tls_wrong.port, raw_port, dns_udp_port);

    HttpClient *local = new_client(true, true, 2000, 3000);
    HttpClient *fast = new_client(true, true, FAST_CONNECT_MS, FAST_TOTAL_MS);
    HttpClient *strict = new_client(false, true, 2000, 3000);
    HttpClient *noca = new_client(true, false, 2000, 3000);
    if (!local || !fast || !strict || !noca) {
        printf("Bail out! http_client_new failed\n");
        return 1;
    }

    test_address_table();
    test_bad_arguments(local);
    test_plain(local);
    test_raw(local);
    test_keepalive();
    test_timeouts(fast);
    test_tls(local, noca);
    test_ssrf(strict, local);
    test_concurrent(local);
    test_free_in_flight();

    CHECK_INT(inline_calls, 0, "no callback ever ran inside http_client_post");
    CHECK_INT(shape_errors, 0, "every response had status/body/error_text consistent");

    http_client_free(local);
    http_client_free(fast);
    http_client_free(strict);
    http_client_free(noca);
    run_until(NULL, NULL, 100); /* let libevent answer abandoned lookups, then reap */
    teardown_servers();
    event_base_free(base);
    return tl_done();
}
