/* Outbound HTTP(S) client (client.h): one state machine per request — URL check, evdns
 * lookup, SSRF filter on every address, non-blocking TCP connect to the checked address,
 * optional TLS through bufferevent_openssl, then a raw HTTP/1.1 exchange and a small bounded
 * response parser. A connection whose response allows it is kept for the next request to
 * the same scheme, host and port (see "idle connections" below). We speak HTTP ourselves rather
 * than through evhttp's client because evhttp re-resolves and reconnects on its own, folds
 * TCP, TLS and timeout failures into one callback and has subtle ownership rules; here every
 * failure maps to exactly one NetError and nothing outlives the request. */
#include "net/client.h"
#include "net/response.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "util/ascii.h"
#include "util/buf.h"

/* Limits. The URL, headers and body we send come from our own callers; the response comes
 * from a merchant we do not control, so everything read is bounded too. */
#define NET_MAX_URL 2048
#define NET_MAX_HOST 253
#define NET_MAX_REQ_HEADERS 64          /* extra (name, value) pairs */
#define NET_MAX_REQ_HEADER_BYTES 16384  /* their names and values together */
#define NET_MAX_REQ_BODY (16u << 20)
#define NET_MAX_IN_FLIGHT 4096          /* requests per client: each may hold a socket */
#define NET_MAX_ADDRS 8                 /* allowed addresses tried per request */
#define NET_READ_HIGH_WATER 65536

/* Idle connections. Opening and closing one TCP connection per notification cost the
 * delivery thread 39 % of its CPU at 64 clients (README, "Performance"). A kept connection
 * is dropped after NET_IDLE_MS unused (under the 5 s keep-alive timeout of Node's HTTP
 * server, so we rarely race a server closing it), after NET_CONN_MAX_AGE_MS (so that DNS
 * changes and the SSRF guard take effect within a minute) or NET_CONN_MAX_USES requests. */
#define NET_IDLE_MS 4000u
#define NET_CONN_MAX_AGE_MS 60000u
#define NET_CONN_MAX_USES 1000u
#define NET_IDLE_PER_HOST 32u
#define NET_IDLE_MAX 256u

#define NET_DEFAULT_CONNECT_MS 10000u
#define NET_DEFAULT_TOTAL_MS 30000u
#define NET_MAX_TIMEOUT_MS 600000u
#define NET_DEFAULT_MAX_RESPONSE (1u << 20)
#define NET_MAX_MAX_RESPONSE (64u << 20)

typedef enum HostKind { HOST_NAME, HOST_V4, HOST_V6 } HostKind;

typedef enum ReqState {
    RS_START,    /* accepted; the step event will start it from the loop */
    RS_DNS,
    RS_CONNECT,  /* TCP connect to addrs[next_addr - 1] */
    RS_TLS,      /* handshake */
    RS_EXCHANGE, /* request written, response being read */
    RS_DONE,     /* result fixed, network released; the step event delivers it */
} ReqState;

typedef struct HttpRequest HttpRequest;

/* A connection kept after a complete response, waiting for the next request to its
 * (tls, host, port). Its bufferevent's callbacks drop it if the server closes it, sends
 * anything, or it stays unused for NET_IDLE_MS. */
typedef struct IdleConn {
    HttpClient *client;
    struct IdleConn *prev, *next;   /* client->idle, most recently parked first */
    bool tls;
    char host[NET_MAX_HOST + 1];
    uint16_t port;
    char peer[INET6_ADDRSTRLEN + 8];
    struct bufferevent *bev;
    uint64_t born_us;
    unsigned uses;
} IdleConn;

/* The argument of one evdns_getaddrinfo. libevent calls back exactly once per lookup, maybe
 * after the request stopped waiting (timeout, cancel), so the lookup lives on its own and
 * points at the request only while the request still wants the answer. */
typedef struct DnsLookup {
    HttpClient *client;
    HttpRequest *req;                          /* NULL once abandoned */
    struct evdns_getaddrinfo_request *handle;  /* NULL when answered inside the call */
    bool cancelled;
    struct DnsLookup *prev, *next;             /* client->lookups */
} DnsLookup;

struct HttpClient {
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    unsigned connect_timeout_ms;
    unsigned total_timeout_ms;
    size_t max_response;
    HttpClientOptions guard;  /* only the allow_* flags are used (ca_file is not kept) */
    HttpRequest *head;        /* requests not yet delivered */
    size_t count;
    bool closing;
    /* evdns in 2.1.12 runs deferred sub-request callbacks that dereference the evdns_base
     * (even after evdns_getaddrinfo_cancel), and evdns_base_free does not wait for them. So
     * http_client_free leaves the resolver (and this struct) alive as a zombie until every
     * lookup has been answered and one more loop pass (settle) has run. */
    DnsLookup *lookups;       /* not yet answered */
    bool dns_busy;            /* a lookup was answered since the last settle pass */
    IdleConn *idle;           /* kept connections, most recently parked first */
    size_t n_idle;
    bool zombie;              /* http_client_free has run */
    struct event *settle;
};

struct HttpRequest {
    HttpClient *client;
    HttpRequest *prev, *next;
    ReqState state;

    bool tls;
    HostKind kind;
    char host[NET_MAX_HOST + 1]; /* lower case, IPv6 without brackets */
    uint16_t port;
    char *out;                   /* the serialized request; freed once handed to the socket */
    size_t out_len;
    HttpClientDone done;
    void *userdata;

    struct event *step;          /* deferred start and deferred delivery */
    struct event *connect_timer;
    struct event *total_timer;
    uint64_t start_us;

    DnsLookup *lookup;
    struct sockaddr_storage addrs[NET_MAX_ADDRS];
    socklen_t addr_lens[NET_MAX_ADDRS];
    size_t naddrs, next_addr;
    int fd;                      /* while connecting; then owned by bev */
    struct event *conn_ev;
    int last_errno;
    char peer[INET6_ADDRSTRLEN + 8]; /* address being tried, for error texts */
    struct bufferevent *bev;
    bool reused;                 /* bev came from the idle list */
    bool fresh_only;             /* a kept connection failed: open a new one */
    uint64_t conn_born_us;       /* when bev's connection was opened */
    unsigned conn_uses;          /* requests bev has carried, this one included */

    HttpRespParser resp;

    NetError error;
    unsigned duration_ms;
    char error_text[sizeof(((HttpClientResponse *)0)->error_text)];
};

static void req_start(HttpRequest *req);
static void conn_next(HttpRequest *req);
static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void req_complete(HttpRequest *req, NetError err, const char *fmt, ...) OC_PRINTF(3, 4);

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct timeval ms_tv(unsigned ms)
{
    struct timeval tv = { (time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u) };
    return tv;
}

/* ---- SSRF guard ---------------------------------------------------------------------- */

static bool v4_allowed(uint32_t a, const HttpClientOptions *o)
{
    static const struct {
        uint32_t net;
        unsigned bits;
    } private_nets[] = {
        { 0x0a000000u, 8 },  /* 10/8 */
        { 0xac100000u, 12 }, /* 172.16/12 */
        { 0xc0a80000u, 16 }, /* 192.168/16 */
        { 0x64400000u, 10 }, /* 100.64/10 CGNAT */
        { 0xa9fe0000u, 16 }, /* 169.254/16 link-local, cloud metadata */
        { 0xc0000000u, 24 }, /* 192.0.0/24 IETF protocol assignments */
        { 0xc6120000u, 15 }, /* 198.18/15 benchmarking */
    };
    unsigned top = a >> 24;
    /* 0/8 reaches the local host on Linux; 224/4 and 240/4 (with 255.255.255.255) are
     * multicast and reserved: never a merchant, whatever the flags say. */
    if (top == 0 || top >= 224)
        return false;
    if (top == 127)
        return o->allow_loopback;
    for (size_t i = 0; i < OC_ARRAY_LEN(private_nets); i++) {
        uint32_t mask = 0xffffffffu << (32 - private_nets[i].bits);
        if ((a & mask) == private_nets[i].net)
            return o->allow_private;
    }
    return true;
}

static uint32_t v4_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static bool v6_allowed(const uint8_t *a, const HttpClientOptions *o)
{
    static const uint8_t nat64[4] = { 0x00, 0x64, 0xff, 0x9b };
    /* Forms that carry an IPv4 address are judged by that address: the kernel or a
     * translator will deliver them there. */
    if (all_zero(a, 10) && a[10] == 0xff && a[11] == 0xff) /* ::ffff:a.b.c.d */
        return v4_allowed(v4_at(a + 12), o);
    if (memcmp(a, nat64, 4) == 0 && all_zero(a + 4, 8)) /* 64:ff9b::/96 */
        return v4_allowed(v4_at(a + 12), o);
    if (memcmp(a, nat64, 4) == 0 && a[4] == 0 && a[5] == 1) /* 64:ff9b:1::/48, local NAT64 */
        return o->allow_private;
    if (a[0] == 0x20 && a[1] == 0x02) /* 2002::/16 6to4 */
        return v4_allowed(v4_at(a + 2), o);
    if (all_zero(a, 12)) {
        /* ::1 loopback; :: and the deprecated IPv4-compatible ::a.b.c.d never */
        if (all_zero(a + 12, 3) && a[15] == 1)
            return o->allow_loopback;
        return false;
    }
    if (a[0] == 0xff) /* multicast */
        return false;
    if ((a[0] & 0xfe) == 0xfc) /* fc00::/7 unique local */
        return o->allow_private;
    if (a[0] == 0xfe && (a[1] & 0x80) == 0x80) /* fe80::/10 link-local, fec0::/10 site-local */
        return o->allow_private;
    return true;
}

bool net_address_allowed(const struct sockaddr *addr, const HttpClientOptions *options)
{
    static const HttpClientOptions strict = { 0 };
    const HttpClientOptions *o = options ? options : &strict;
    if (!addr)
        return false;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return v4_allowed(ntohl(in->sin_addr.s_addr), o);
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        return v6_allowed(in6->sin6_addr.s6_addr, o);
    }
    return false;
}

/* ---- URL and request ----------------------------------------------------------------- */

typedef struct ParsedUrl {
    bool tls;
    HostKind kind;
    char host[NET_MAX_HOST + 1];
    uint16_t port;
    bool port_given;
    const char *target; /* path and query, fragment cut; "" means "/" */
    size_t target_len;
    struct in_addr v4;
    struct in6_addr v6;
} ParsedUrl;

/* A DNS host name: labels of letters, digits and inner hyphens, 1..63 bytes each. */
static bool dns_name_valid(const char *h, size_t n)
{
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || h[i] == '.') {
            if (label == 0 || label > 63 || h[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        unsigned char c = (unsigned char)h[i];
        if (!ascii_is_alpha(c) && !ascii_is_digit(c) && !(c == '-' && label > 0))
            return false;
        label++;
    }
    return true;
}

/* True when the last label looks like a number (decimal or 0x hex). URL parsers and
 * inet_aton read such hosts as IPv4 in shorthand ("127.1", "0x7f.1", "2130706433"); we
 * accept only the dotted-quad form, so refuse these instead of sending them to DNS. */
static bool last_label_numeric(const char *h, size_t n)
{
    const char *dot = memrchr(h, '.', n);
    const char *l = dot ? dot + 1 : h;
    size_t len = (size_t)(h + n - l);
    if (len >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
        for (size_t i = 2; i < len; i++)
            if (!ascii_is_hex((unsigned char)l[i]))
                return false;
        return true;
    }
    for (size_t i = 0; i < len; i++)
        if (!ascii_is_digit((unsigned char)l[i]))
            return false;
    return len > 0;
}

static int url_parse(const char *url, ParsedUrl *u)
{
    memset(u, 0, sizeof(*u));
    size_t len = strnlen(url, NET_MAX_URL + 1);
    if (len == 0 || len > NET_MAX_URL)
        return -EINVAL;
    const char *p, *end = url + len;
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
        u->port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        u->tls = true;
        u->port = 443;
    } else {
        return -EINVAL;
    }

    const char *auth_end = p;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' && *auth_end != '#')
        auth_end++;
    if (memchr(p, '@', (size_t)(auth_end - p))) /* userinfo: never sent, never accepted */
        return -EINVAL;

    const char *host, *host_end, *port = NULL;
    if (p < auth_end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(auth_end - p));
        if (!close)
            return -EINVAL;
        host = p + 1;
        host_end = close;
        if (close + 1 < auth_end) {
            if (close[1] != ':')
                return -EINVAL;
            port = close + 2;
        }
        u->kind = HOST_V6;
    } else {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        host = p;
        host_end = colon ? colon : auth_end;
        port = colon ? colon + 1 : NULL;
        u->kind = HOST_NAME;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len > NET_MAX_HOST)
        return -EINVAL;
    for (size_t i = 0; i < host_len; i++) {
        char c = host[i];
        u->host[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    u->host[host_len] = '\0';

    if (port) {
        size_t n = (size_t)(auth_end - port);
        unsigned v = 0;
        if (n == 0 || n > 5)
            return -EINVAL;
        for (size_t i = 0; i < n; i++) {
            if (!ascii_is_digit((unsigned char)port[i]))
                return -EINVAL;
            v = v * 10 + (unsigned)(port[i] - '0');
        }
        if (v == 0 || v > 65535)
            return -EINVAL;
        u->port = (uint16_t)v;
        u->port_given = true;
    }

    if (u->kind == HOST_V6) {
        /* inet_pton refuses zone ids ("%25eth0"), which have no business in a merchant URL */
        if (inet_pton(AF_INET6, u->host, &u->v6) != 1)
            return -EINVAL;
    } else if (inet_pton(AF_INET, u->host, &u->v4) == 1) {
        u->kind = HOST_V4;
    } else if (last_label_numeric(u->host, host_len) || !dns_name_valid(u->host, host_len)) {
        return -EINVAL;
    }

    const char *t = auth_end;
    const char *t_end = memchr(t, '#', (size_t)(end - t));
    if (!t_end)
        t_end = end;
    /* Only visible ASCII goes on the request line: no spaces, controls or raw UTF-8 that
     * could split or smuggle a request. Callers percent-encode. */
    for (const char *q = t; q < t_end; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= 0x20 || c >= 0x7f)
            return -EINVAL;
    }
    u->target = t;
    u->target_len = (size_t)(t_end - t);
    return 0;
}

static bool header_reserved(const char *name)
{
    static const char *const reserved[] = {
        "host", "content-length", "content-type", "connection", "transfer-encoding",
        "te", "upgrade", "expect", "trailer", "keep-alive", "proxy-connection",
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(reserved); i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

/* Builds the whole request. -EINVAL for headers that could break the framing (bad name,
 * CR/LF/NUL or other controls in a value, a header we set ourselves) or exceed the limits. */
static int request_build(const ParsedUrl *u, const char *const *headers, const char *body,
                         size_t len, char **out, size_t *out_len)
{
    Buf b = BUF_INIT;
    size_t hbytes = 0, hcount = 0;

    buf_puts(&b, "POST ");
    if (u->target_len == 0 || u->target[0] != '/')
        buf_putc(&b, '/');
    buf_put(&b, u->target, u->target_len);
    buf_puts(&b, " HTTP/1.1\r\nHost: ");
    if (u->kind == HOST_V6)
        buf_printf(&b, "[%s]", u->host);
    else
        buf_puts(&b, u->host);
    if (u->port_given && u->port != (u->tls ? 443 : 80))
        buf_printf(&b, ":%u", (unsigned)u->port);
    buf_printf(&b, "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n", len);
    for (size_t i = 0; headers && headers[i]; i += 2) {
        const char *name = headers[i], *value = headers[i + 1];
        if (!value || ++hcount > NET_MAX_REQ_HEADERS)
            goto invalid;
        size_t nl = strlen(name), vl = strlen(value);
        hbytes += nl + vl;
        if (nl == 0 || hbytes > NET_MAX_REQ_HEADER_BYTES || header_reserved(name))
            goto invalid;
        for (size_t k = 0; k < nl; k++)
            if (!ascii_is_tchar((unsigned char)name[k]))
                goto invalid;
        for (size_t k = 0; k < vl; k++) {
            unsigned char c = (unsigned char)value[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                goto invalid;
        }
        buf_printf(&b, "%s: %s\r\n", name, value);
    }
    buf_puts(&b, "\r\n");
    if (len)
        buf_put(&b, body, len);
    return buf_finish(&b, out, out_len);

invalid:
    buf_deinit(&b);
    return -EINVAL;
}

/* ---- request lifecycle --------------------------------------------------------------- */

/* Stops waiting for a lookup. libevent still answers it (with EVUTIL_EAI_CANCEL) on a later
 * pass; on_dns then frees it. */
static void lookup_cancel(DnsLookup *lk)
{
    lk->req = NULL;
    if (lk->handle && !lk->cancelled) {
        lk->cancelled = true;
        evdns_getaddrinfo_cancel(lk->handle);
    }
}

static void client_destroy(HttpClient *c)
{
    if (c->dns)
        evdns_base_free(c->dns, 0);
    if (c->settle)
        event_free(c->settle);
    SSL_CTX_free(c->ssl_ctx);
    oc_free(c);
}

static void client_reap(HttpClient *c)
{
    if (c->zombie && !c->lookups && !c->dns_busy)
        client_destroy(c);
}

static void on_settle(evutil_socket_t fd, short what, void *arg)
{
    HttpClient *c = arg;
    c->dns_busy = false;
    client_reap(c);
}

static void req_link(HttpClient *c, HttpRequest *req)
{
    req->next = c->head;
    if (c->head)
        c->head->prev = req;
    c->head = req;
    c->count++;
}

static void req_unlink(HttpRequest *req)
{
    HttpClient *c = req->client;
    if (req->prev)
        req->prev->next = req->next;
    else
        c->head = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    c->count--;
}

/* Releases everything that talks to the network. Safe from inside any of our callbacks:
 * libevent defers the real release of a bufferevent and a non-persistent event. */
static void req_release_net(HttpRequest *req)
{
    if (req->lookup) {
        DnsLookup *lk = req->lookup;
        req->lookup = NULL;
        lookup_cancel(lk);
    }
    if (req->conn_ev) {
        event_free(req->conn_ev);
        req->conn_ev = NULL;
    }
    if (req->fd >= 0) {
        close(req->fd);
        req->fd = -1;
    }
    if (req->bev) {
        bufferevent_free(req->bev); /* closes the socket, frees the SSL */
        req->bev = NULL;
    }
    if (req->connect_timer)
        event_del(req->connect_timer);
    if (req->total_timer)
        event_del(req->total_timer);
}

/* ---- idle connections ---------------------------------------------------------------- */

static bool idle_matches(const IdleConn *ic, const HttpRequest *req)
{
    return ic->tls == req->tls && ic->port == req->port && strcmp(ic->host, req->host) == 0;
}

static void idle_unlink(IdleConn *ic)
{
    HttpClient *c = ic->client;
    if (ic->prev)
        ic->prev->next = ic->next;
    else
        c->idle = ic->next;
    if (ic->next)
        ic->next->prev = ic->prev;
    ic->prev = ic->next = NULL;
    c->n_idle--;
}

static void idle_drop(IdleConn *ic)
{
    idle_unlink(ic);
    bufferevent_free(ic->bev);
    oc_free(ic);
}

/* A server has nothing to say on a connection we are not using: whatever came (an error
 * page, a close notice) makes it unusable. */
static void on_idle_read(struct bufferevent *bev, void *arg)
{
    idle_drop(arg);
}

/* Closed by the server, failed, or unused for NET_IDLE_MS. */
static void on_idle_event(struct bufferevent *bev, short what, void *arg)
{
    idle_drop(arg);
}

static bool conn_too_old(uint64_t born_us, unsigned uses)
{
    return uses >= NET_CONN_MAX_USES || mono_us() - born_us >= NET_CONN_MAX_AGE_MS * 1000ull;
}

/* Keeps req's connection for a later request to the same place, after a complete response
 * that allows it. On success req->bev is NULL; otherwise nothing changed. */
static bool idle_park(HttpRequest *req)
{
    HttpClient *c = req->client;
    struct bufferevent *bev = req->bev;
    if (c->closing || !bev || conn_too_old(req->conn_born_us, req->conn_uses) ||
        evbuffer_get_length(bufferevent_get_output(bev)) != 0)
        return false;
    size_t same = 0;
    IdleConn *oldest = NULL;
    for (IdleConn *ic = c->idle; ic; ic = ic->next) {
        if (idle_matches(ic, req))
            same++;
        oldest = ic;
    }
    if (same >= NET_IDLE_PER_HOST)
        return false;
    IdleConn *ic = oc_calloc(1, sizeof(*ic));
    if (!ic)
        return false;
    struct timeval idle_tv = ms_tv(NET_IDLE_MS);
    if (bufferevent_set_timeouts(bev, &idle_tv, NULL) < 0) {
        oc_free(ic);
        return false;
    }
    if (c->n_idle >= NET_IDLE_MAX && oldest)
        idle_drop(oldest);
    ic->client = c;
    ic->tls = req->tls;
    memcpy(ic->host, req->host, sizeof(ic->host));
    ic->port = req->port;
    memcpy(ic->peer, req->peer, sizeof(ic->peer));
    ic->bev = bev;
    ic->born_us = req->conn_born_us;
    ic->uses = req->conn_uses;
    bufferevent_setcb(bev, on_idle_read, NULL, on_idle_event, ic);
    ic->next = c->idle;
    if (c->idle)
        c->idle->prev = ic;
    c->idle = ic;
    c->n_idle++;
    req->bev = NULL;
    return true;
}

/* Sends req on a kept connection to its (tls, host, port), if there is one. */
static bool req_reuse(HttpRequest *req)
{
    HttpClient *c = req->client;
    IdleConn *ic = c->idle;
    while (ic && !idle_matches(ic, req))
        ic = ic->next;
    if (!ic)
        return false;
    idle_unlink(ic);
    req->bev = ic->bev;
    req->conn_born_us = ic->born_us;
    req->conn_uses = ic->uses + 1;
    memcpy(req->peer, ic->peer, sizeof(req->peer));
    oc_free(ic);
    req->reused = true;
    req->state = RS_EXCHANGE;
    event_del(req->connect_timer);
    (void)bufferevent_set_timeouts(req->bev, NULL, NULL);
    bufferevent_setcb(req->bev, on_read, NULL, on_event, req);
    /* req->out stays until the end: it is sent again if this connection turns out dead. */
    if (bufferevent_write(req->bev, req->out, req->out_len) < 0)
        req_complete(req, NET_E_PROTOCOL, "out of memory");
    return true;
}

/* The kept connection closed (or reset) before a byte of the answer came: the server had
 * closed it while idle, so it never saw the request. Starts over on a new connection, once;
 * a server that does read the request and then closes is told again, which the receiver
 * deduplicates by X-OC-Delivery-Id like any other retry. */
static void req_retry_fresh(HttpRequest *req)
{
    HttpClient *c = req->client;
    bufferevent_free(req->bev);
    req->bev = NULL;
    req->reused = false;
    req->fresh_only = true;
    http_resp_deinit(&req->resp);
    http_resp_init(&req->resp, c->max_response);
    struct timeval ctv = ms_tv(c->connect_timeout_ms);
    if (evtimer_add(req->connect_timer, &ctv) < 0) {
        req_complete(req, NET_E_CONNECT, "out of memory");
        return;
    }
    req->state = RS_START;
    event_active(req->step, EV_TIMEOUT, 1);
}

/* Fixes the result and schedules its delivery; the first result wins. */
static void req_complete(HttpRequest *req, NetError err, const char *fmt, ...)
{
    if (req->state == RS_DONE)
        return;
    req->state = RS_DONE;
    req->error = err;
    req->error_text[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(req->error_text, sizeof(req->error_text), fmt, ap);
        va_end(ap);
    }
    uint64_t us = mono_us() - req->start_us;
    req->duration_ms = us / 1000u > UINT32_MAX ? UINT32_MAX : (unsigned)(us / 1000u);
    req_release_net(req);
    event_active(req->step, EV_TIMEOUT, 1);
}

static void req_free(HttpRequest *req)
{
    if (!req)
        return;
    req_release_net(req);
    if (req->step)
        event_free(req->step);
    if (req->connect_timer)
        event_free(req->connect_timer);
    if (req->total_timer)
        event_free(req->total_timer);
    http_resp_deinit(&req->resp);
    oc_free(req->out);
    oc_free(req);
}

/* Hands the result to the caller and frees the request. The request is unlinked first, so
 * the callback may post new requests or even free the client. */
static void req_deliver(HttpRequest *req)
{
    HttpClientResponse resp;
    memset(&resp, 0, sizeof(resp));
    req_unlink(req);
    resp.error = req->error;
    if (req->error == NET_OK) {
        resp.status = req->resp.status;
        resp.body = req->resp.body.len ? req->resp.body.data : NULL;
        resp.body_len = req->resp.body.len;
        resp.retry_after = req->resp.retry_after;
    }
    resp.duration_ms = req->duration_ms;
    memcpy(resp.error_text, req->error_text, sizeof(resp.error_text));
    req->done(req->userdata, &resp);
    req_free(req);
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
    HttpRequest *req = arg;
    if (req->state == RS_START)
        req_start(req);
    else if (req->state == RS_DONE)
        req_deliver(req);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    HttpRequest *req = arg;
    if (req->state == RS_DNS || req->state == RS_CONNECT || req->state == RS_TLS)
        req_complete(req, NET_E_TIMEOUT, "connect timeout after %u ms (%s)",
                     req->client->connect_timeout_ms,
                     req->state == RS_DNS ? "resolving"
                     : req->state == RS_CONNECT ? "connecting" : "TLS handshake");
}

static void on_total_timeout(evutil_socket_t fd, short what, void *arg)
{
    HttpRequest *req = arg;
    req_complete(req, NET_E_TIMEOUT, "no complete response within %u ms",
                 req->client->total_timeout_ms);
}

/* ---- response ------------------------------------------------------------------------ */

/* Feeds the response parser (response.c) and completes the request once the response is
 * whole or broken; otherwise waits for more. eof: the server closed its side. */
static void resp_feed(HttpRequest *req, struct evbuffer *in, bool eof)
{
    int r = http_resp_feed(&req->resp, in, eof);
    if (r > 0) {
        if (!eof && http_resp_keep_alive(&req->resp) && evbuffer_get_length(in) == 0)
            (void)idle_park(req);
        req_complete(req, NET_OK, NULL);
    }
    else if (r < 0)
        req_complete(req, req->resp.error, "%s", req->resp.error_text);
}

/* ---- connection ---------------------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
    HttpRequest *req = arg;
    /* Nothing is expected before the handshake is reported; if it came, it waits in the
     * input buffer for the next read or for EOF. */
    if (req->state == RS_EXCHANGE)
        resp_feed(req, bufferevent_get_input(bev), false);
}

/* Drains the bufferevent's OpenSSL error queue and returns the most recent real library
 * error, or 0. libevent 2.1.12 also queues SSL_get_error()'s own code (a small number with
 * no library), which says nothing useful. */
static unsigned long bev_ssl_error(struct bufferevent *bev)
{
    unsigned long e, found = 0;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (!found && ERR_GET_LIB(e) != 0)
            found = e;
    return found;
}

static const char *openssl_reason(unsigned long e, char *buf, size_t len)
{
    const char *r = ERR_reason_error_string(e);
    if (r)
        return r;
    ERR_error_string_n(e, buf, len);
    return buf;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    HttpRequest *req = arg;
    char ebuf[128];
    int saved = EVUTIL_SOCKET_ERROR(); /* libevent restores errno for deferred callbacks */

    if (req->state == RS_TLS) {
        if (what & BEV_EVENT_CONNECTED) {
            event_del(req->connect_timer);
            req->state = RS_EXCHANGE;
            bufferevent_setcb(bev, on_read, NULL, on_event, req);
            if (bufferevent_write(bev, req->out, req->out_len) < 0) {
                req_complete(req, NET_E_PROTOCOL, "out of memory");
                return;
            }
            oc_free(req->out);
            req->out = NULL;
            return;
        }
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        unsigned long e = bev_ssl_error(bev);
        if (vr != X509_V_OK)
            req_complete(req, NET_E_TLS, "certificate verification failed for %s: %s",
                         req->host, X509_verify_cert_error_string(vr));
        else if (e)
            req_complete(req, NET_E_TLS, "TLS handshake with %s failed: %s", req->peer,
                         openssl_reason(e, ebuf, sizeof(ebuf)));
        else if ((what & BEV_EVENT_EOF) || saved == 0)
            req_complete(req, NET_E_TLS, "%s closed the connection during the TLS handshake",
                         req->peer);
        else
            req_complete(req, NET_E_TLS, "TLS handshake with %s failed: %s", req->peer,
                         strerror(saved));
        return;
    }

    if (req->state != RS_EXCHANGE)
        return;
    if (req->reused && !req->resp.got_bytes && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
        evbuffer_get_length(bufferevent_get_input(bev)) == 0) {
        req_retry_fresh(req);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        resp_feed(req, bufferevent_get_input(bev), true);
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        /* A plain-text server may stop reading our body and still answer (an early 413,
         * say): keep reading; EOF, a reset or the total timeout ends the wait. */
        if (!req->tls && (what & BEV_EVENT_WRITING) && !(what & BEV_EVENT_READING))
            return;
        unsigned long e = req->tls ? bev_ssl_error(bev) : 0;
        if (e)
            req_complete(req, NET_E_TLS, "TLS error from %s: %s", req->peer,
                         openssl_reason(e, ebuf, sizeof(ebuf)));
        else
            req_complete(req, NET_E_CONNECT, "connection to %s failed: %s", req->peer,
                         saved ? strerror(saved) : "unknown error");
    }
}

/* The TCP connection is up: wrap it and, for plain HTTP, send the request. */
static void conn_established(HttpRequest *req)
{
    HttpClient *c = req->client;
    int fd = req->fd;
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    req->conn_born_us = mono_us();
    req->conn_uses = 1;

    if (!req->tls) {
        req->bev = bufferevent_socket_new(c->base, fd, opts);
        if (!req->bev) {
            req_complete(req, NET_E_CONNECT, "out of memory");
            return;
        }
        req->fd = -1;
        event_del(req->connect_timer);
        req->state = RS_EXCHANGE;
        bufferevent_setcb(req->bev, on_read, NULL, on_event, req);
        bufferevent_setwatermark(req->bev, EV_READ, 0, NET_READ_HIGH_WATER);
        if (bufferevent_write(req->bev, req->out, req->out_len) < 0 ||
            bufferevent_enable(req->bev, EV_READ | EV_WRITE) < 0) {
            req_complete(req, NET_E_PROTOCOL, "out of memory");
            return;
        }
        oc_free(req->out);
        req->out = NULL;
        return;
    }

    SSL *ssl = SSL_new(c->ssl_ctx);
    if (!ssl) {
        req_complete(req, NET_E_TLS, "out of memory");
        return;
    }
    /* The name we verify and announce is the URL's, never the address we connected to:
     * that is what makes connecting to a pre-checked address safe. */
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok;
    if (req->kind == HOST_NAME)
        ok = SSL_set_tlsext_host_name(ssl, req->host) == 1 &&
             X509_VERIFY_PARAM_set1_host(param, req->host, 0) == 1;
    else /* RFC 6066: no SNI for address literals; the certificate must name the IP */
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, req->host) == 1;
    if (!ok) {
        SSL_free(ssl);
        req_complete(req, NET_E_TLS, "cannot set up TLS for %s", req->host);
        return;
    }
    /* On failure libevent frees ssl (BEV_OPT_CLOSE_ON_FREE) but leaves the socket to us. */
    req->bev = bufferevent_openssl_socket_new(c->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                              opts);
    if (!req->bev) {
        req_complete(req, NET_E_TLS, "out of memory");
        return;
    }
    req->fd = -1;
    req->state = RS_TLS;
    /* Many servers close without close_notify; a body delimited by the close must still
     * count as complete. Truncation is caught by Content-Length / chunked framing. */
    bufferevent_openssl_set_allow_dirty_shutdown(req->bev, 1);
    bufferevent_setcb(req->bev, on_read, NULL, on_event, req);
    bufferevent_setwatermark(req->bev, EV_READ, 0, NET_READ_HIGH_WATER);
    if (bufferevent_enable(req->bev, EV_READ | EV_WRITE) < 0)
        req_complete(req, NET_E_TLS, "cannot start the TLS handshake");
}

static void on_connect(evutil_socket_t fd, short what, void *arg)
{
    HttpRequest *req = arg;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(req->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    event_free(req->conn_ev);
    req->conn_ev = NULL;
    if (err) {
        req->last_errno = err;
        close(req->fd);
        req->fd = -1;
        conn_next(req);
        return;
    }
    conn_established(req);
}

static void addr_text(const struct sockaddr *sa, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, len, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, len, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    }
}

/* Tries the next checked address; only when all have failed is the request failed. */
static void conn_next(HttpRequest *req)
{
    req->state = RS_CONNECT;
    while (req->next_addr < req->naddrs) {
        size_t i = req->next_addr++;
        const struct sockaddr *sa = (const struct sockaddr *)&req->addrs[i];
        addr_text(sa, req->peer, sizeof(req->peer));
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            req->last_errno = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, sa, req->addr_lens[i]) != 0 && errno != EINPROGRESS) {
            req->last_errno = errno;
            close(fd);
            continue;
        }
        /* Writable means connected or failed; a socket that connected at once is already
         * writable, so both outcomes go through on_connect from the loop. */
        req->conn_ev = event_new(req->client->base, fd, EV_WRITE, on_connect, req);
        if (!req->conn_ev || event_add(req->conn_ev, NULL) < 0) {
            close(fd);
            req_complete(req, NET_E_CONNECT, "out of memory");
            return;
        }
        req->fd = fd;
        return;
    }
    if (req->naddrs == 1)
        req_complete(req, NET_E_CONNECT, "cannot connect to %s: %s", req->peer,
                     strerror(req->last_errno));
    else
        req_complete(req, NET_E_CONNECT, "cannot connect to any of %zu addresses of %s, "
                     "last %s: %s", req->naddrs, req->host, req->peer,
                     strerror(req->last_errno));
}

static void on_dns(int result, struct evutil_addrinfo *res, void *arg)
{
    DnsLookup *lk = arg;
    HttpClient *c = lk->client;
    HttpRequest *req = lk->req;
    if (lk->prev)
        lk->prev->next = lk->next;
    else
        c->lookups = lk->next;
    if (lk->next)
        lk->next->prev = lk->prev;
    oc_free(lk);
    /* libevent may still be finishing this lookup's other half on the next pass. */
    c->dns_busy = true;
    if (c->settle) {
        static const struct timeval zero = { 0, 0 };
        evtimer_add(c->settle, &zero);
    }
    if (!req) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    req->lookup = NULL;
    if (result != 0) {
        req_complete(req, NET_E_DNS, "cannot resolve %s: %s", req->host,
                     evutil_gai_strerror(result));
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    size_t blocked = 0;
    for (struct evutil_addrinfo *ai = res; ai && req->naddrs < NET_MAX_ADDRS; ai = ai->ai_next) {
        if (!ai->ai_addr || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        if (!net_address_allowed(ai->ai_addr, &req->client->guard)) {
            blocked++;
            continue;
        }
        struct sockaddr_storage *ss = &req->addrs[req->naddrs];
        memcpy(ss, ai->ai_addr, ai->ai_addrlen);
        if (ss->ss_family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = htons(req->port);
        else
            ((struct sockaddr_in6 *)ss)->sin6_port = htons(req->port);
        req->addr_lens[req->naddrs++] = (socklen_t)ai->ai_addrlen;
    }
    if (res)
        evutil_freeaddrinfo(res);
    if (req->naddrs == 0) {
        if (blocked)
            req_complete(req, NET_E_BLOCKED, "every address of %s is in a blocked range",
                         req->host);
        else
            req_complete(req, NET_E_DNS, "%s has no usable address", req->host);
        return;
    }
    conn_next(req);
}

static void req_start(HttpRequest *req)
{
    HttpClient *c = req->client;
    if (!req->fresh_only && req_reuse(req))
        return;
    if (req->kind != HOST_NAME) {
        /* An address literal needs no lookup, but passes the same guard. */
        struct sockaddr *sa = (struct sockaddr *)&req->addrs[0];
        addr_text(sa, req->peer, sizeof(req->peer));
        if (!net_address_allowed(sa, &c->guard)) {
            req_complete(req, NET_E_BLOCKED, "address %s is in a blocked range", req->host);
            return;
        }
        req->naddrs = 1;
        conn_next(req);
        return;
    }

    DnsLookup *lk = oc_calloc(1, sizeof(*lk));
    if (!lk) {
        req_complete(req, NET_E_DNS, "out of memory");
        return;
    }
    lk->client = c;
    lk->req = req;
    lk->next = c->lookups;
    if (c->lookups)
        c->lookups->prev = lk;
    c->lookups = lk;
    req->lookup = lk;
    req->state = RS_DNS;
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* Answers from /etc/hosts ("localhost") arrive inside this call (on_dns then clears
     * req->lookup); everything else later. We are on the loop already either way. */
    struct evdns_getaddrinfo_request *h =
        evdns_getaddrinfo(c->dns, req->host, NULL, &hints, on_dns, lk);
    if (req->lookup)
        req->lookup->handle = h;
}

/* ---- public API ---------------------------------------------------------------------- */

/* Empties this thread's OpenSSL error queue into one short text: the errno of a failed
 * system call ("No such file or directory") when there was one, else the first reason. */
static const char *openssl_queue_text(char *buf, size_t len)
{
    unsigned long e;
    int sys = 0;
    const char *reason = NULL;
    while ((e = ERR_get_error()) != 0) {
        if (ERR_SYSTEM_ERROR(e)) {
            if (!sys)
                sys = ERR_GET_REASON(e);
        } else if (!reason) {
            reason = ERR_reason_error_string(e);
        }
    }
    snprintf(buf, len, "%s", sys ? strerror(sys) : reason ? reason : "unknown error");
    return buf;
}

static unsigned clamp_ms(unsigned v, unsigned dflt)
{
    if (v == 0)
        return dflt;
    return v > NET_MAX_TIMEOUT_MS ? NET_MAX_TIMEOUT_MS : v;
}

HttpClient *http_client_new(struct event_base *base, const HttpClientOptions *options)
{
    static const HttpClientOptions defaults = { 0 };
    const HttpClientOptions *o = options ? options : &defaults;
    char ebuf[128], field[600];
    if (!base)
        return NULL;
    HttpClient *c = oc_calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->base = base;
    c->connect_timeout_ms = clamp_ms(o->connect_timeout_ms, NET_DEFAULT_CONNECT_MS);
    c->total_timeout_ms = clamp_ms(o->total_timeout_ms, NET_DEFAULT_TOTAL_MS);
    c->max_response = o->max_response == 0 ? NET_DEFAULT_MAX_RESPONSE
                      : o->max_response > NET_MAX_MAX_RESPONSE ? NET_MAX_MAX_RESPONSE
                      : o->max_response;
    c->guard.allow_loopback = o->allow_loopback;
    c->guard.allow_private = o->allow_private;

    c->settle = evtimer_new(base, on_settle, c);
    if (!c->settle)
        goto oom;
    /* Reads /etc/resolv.conf and /etc/hosts once, here at start-up, never per request. */
    c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                  EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!c->dns) {
        log_json(LOG_ERROR, "cannot create the DNS resolver", NULL);
        goto fail;
    }

    c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ssl_ctx || SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION) != 1)
        goto oom;
    SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(c->ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (o->ca_file) {
        if (SSL_CTX_load_verify_locations(c->ssl_ctx, o->ca_file, NULL) != 1) {
            log_json_str(o->ca_file, field, sizeof(field));
            char reason[300];
            log_json_str(openssl_queue_text(ebuf, sizeof(ebuf)), reason, sizeof(reason));
            log_json(LOG_ERROR, "cannot load the outbound CA file", "\"path\":%s,\"error\":%s",
                     field, reason);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
        ERR_clear_error();
        log_json(LOG_ERROR, "cannot load the system CA certificates", NULL);
        goto fail;
    }
    return c;

oom:
    log_json(LOG_ERROR, "cannot create the HTTP client", "\"error\":\"out of memory\"");
fail:
    if (c)
        client_destroy(c);
    return NULL;
}

struct evdns_base *http_client_dns_base(HttpClient *client)
{
    return client ? client->dns : NULL;
}

int http_client_post(HttpClient *client, const char *url, const char *const *headers,
                     const char *body, size_t len, HttpClientDone done, void *userdata)
{
    ParsedUrl u;
    if (!client || !url || !done || (len && !body) || client->closing)
        return -EINVAL;
    if (len > NET_MAX_REQ_BODY)
        return -EINVAL;
    if (client->count >= NET_MAX_IN_FLIGHT)
        return -EAGAIN;
    int rc = url_parse(url, &u);
    if (rc < 0)
        return rc;

    HttpRequest *req = oc_calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->client = client;
    req->fd = -1;
    req->start_us = mono_us();
    req->tls = u.tls;
    req->kind = u.kind;
    req->port = u.port;
    memcpy(req->host, u.host, sizeof(req->host));
    req->done = done;
    req->userdata = userdata;
    http_resp_init(&req->resp, client->max_response);
    if (u.kind == HOST_V4) {
        struct sockaddr_in *in = (struct sockaddr_in *)&req->addrs[0];
        in->sin_family = AF_INET;
        in->sin_port = htons(u.port);
        in->sin_addr = u.v4;
        req->addr_lens[0] = sizeof(*in);
    } else if (u.kind == HOST_V6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&req->addrs[0];
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(u.port);
        in6->sin6_addr = u.v6;
        req->addr_lens[0] = sizeof(*in6);
    }

    rc = request_build(&u, headers, body, len, &req->out, &req->out_len);
    if (rc < 0) {
        req_free(req);
        return rc;
    }
    req->step = event_new(client->base, -1, 0, on_step, req);
    req->connect_timer = evtimer_new(client->base, on_connect_timeout, req);
    req->total_timer = evtimer_new(client->base, on_total_timeout, req);
    struct timeval ctv = ms_tv(client->connect_timeout_ms);
    struct timeval ttv = ms_tv(client->total_timeout_ms);
    if (!req->step || !req->connect_timer || !req->total_timer ||
        evtimer_add(req->connect_timer, &ctv) < 0 || evtimer_add(req->total_timer, &ttv) < 0) {
        req_free(req);
        return -ENOMEM;
    }
    /* Everything else happens from the loop, so done never runs inside this call. */
    event_active(req->step, EV_TIMEOUT, 1);
    req_link(client, req);
    return 0;
}

void http_client_free(HttpClient *client)
{
    if (!client)
        return;
    client->closing = true; /* posts from the callbacks below are refused */
    while (client->head) {
        HttpRequest *req = client->head;
        /* A request whose result is already fixed gets that result; the rest are
         * cancelled. Either way its callback runs now, once. */
        req_complete(req, NET_E_CANCELLED, "cancelled: the client was shut down");
        req_deliver(req);
    }
    while (client->idle)
        idle_drop(client->idle);
    for (DnsLookup *lk = client->lookups, *next; lk; lk = next) {
        next = lk->next;
        lookup_cancel(lk);
    }
    SSL_CTX_free(client->ssl_ctx);
    client->ssl_ctx = NULL;
    client->zombie = true;
    client_reap(client);
}
