/* ocgate-loadgen: the end-to-end benchmark's load generator (issue 6; bench/README in the
 * top README's "Performance" section). One process, one libevent loop:
 *   1. creates N pending payments through POST /payment/create (signed as the payment app);
 *   2. pre-signs N webhook requests as the settlement provider — proof signature, X-OC-*
 *      signature and the request bytes are all built before the measured window;
 *   3. replays them over C keep-alive connections (one request in flight per connection),
 *      for at most --duration seconds, recording each answer's latency;
 *   4. keeps receiving the merchant notifications at its built-in receiver until every
 *      settled payment was notified (or --drain-timeout), recording them untouched;
 *   5. verifies every notification's signatures and the database (check.c) and prints one
 *      summary line. Exit 0 only when every check passed and no request failed.
 * --idle K instead opens K keep-alive connections, makes one request on each, holds them
 * and reports the server's resident memory. Figures are printed, never asserted here. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "bench/loadgen.h"
#include "proto/canon.h"
#include "proto/keys.h"
#include "proto/proof.h"
#include "util/alloc.h"
#include "util/buf.h"

#define LG_MAX_N 5000000
#define LG_MAX_CONCURRENCY 4096
#define LG_MAX_IDLE 60000
#define LG_MAX_HEAD 65536
#define LG_MAX_BODY (1u << 20)
#define LG_MAX_CONNECT_FAILURES 50
#define LG_MAX_RECEIVED_FACTOR 2     /* notifications kept: twice N, then refused */
#define LG_TIMESTAMP_MARGIN_S 240    /* stop replaying before the gateway's ±300 s window */
#define NO_ITEM SIZE_MAX

typedef enum Phase { PH_CREATE, PH_CONNECT, PH_SETTLE, PH_DRAIN, PH_IDLE } Phase;

typedef struct Gen Gen;

typedef struct Conn {
    Gen *g;
    struct bufferevent *bev;
    bool connected;
    size_t item;          /* in flight, or NO_ITEM */
    size_t head_len;      /* 0 until the answer's head is parsed */
    size_t body_len;
    int status;
    bool keep_alive;
    bool answered;        /* idle mode: its one answer arrived */
} Conn;

struct Gen {
    const LgOptions *opt;
    LgRun run;
    struct event_base *base;
    Conn *conns;
    unsigned n_conns;
    Phase phase;
    size_t next;
    unsigned outstanding;
    unsigned connected;
    unsigned connect_failures;
    bool stop_sending;
    uint64_t deadline_us;
    int64_t signed_at;    /* X-OC-Timestamp of the pre-signed webhooks */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host_header[80];
    char create_path[256], webhook_path[256];
    size_t create_failed;
    char first_error[200];
    /* idle mode */
    unsigned idle_answered, idle_closed;
    bool n_conns_hold;           /* idle mode: answers are in, now only holding */
    /* receiver */
    /* The receiver runs on its own thread and loop, so that a client side saturating the
     * main loop never delays the merchant's answers (which would make the gateway time out
     * and retry, and measure the generator instead of ocgate). Until the thread is joined,
     * only the two atomics are read from the main thread. */
    struct event_base *recv_base;
    struct evhttp *recv_http;
    pthread_t recv_thread;
    bool recv_started;
    size_t recv_refused;
    atomic_size_t recv_count;
    atomic_uint_fast64_t last_recv_us;
    struct event *tick;
    uint64_t drain_start_us;
    uint64_t phase_deadline_us;  /* PH_CONNECT and PH_IDLE give up (or stop holding) then */
    bool fatal;
};

uint64_t lg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void note_error(Gen *g, const char *fmt, ...) OC_PRINTF(2, 3);
static void note_error(Gen *g, const char *fmt, ...)
{
    if (g->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->first_error, sizeof(g->first_error), fmt, ap);
    va_end(ap);
}

/* ---- server figures from /proc ---- */

static double proc_cpu_s(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name, which may itself hold spaces and parentheses. */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long utime = 0, stime = 0;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS or VmHWM in MiB, or -1. */
static double proc_mem_mib(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    double v = -1;
    size_t flen = strlen(field);
    while (fgets(line, sizeof(line), f)) {
        unsigned long kb;
        if (strncmp(line, field, flen) == 0 && line[flen] == ':' &&
            sscanf(line + flen + 1, "%lu", &kb) == 1) {
            v = (double)kb / 1024.0;
            break;
        }
    }
    fclose(f);
    return v;
}

/* ---- the client side: raw HTTP/1.1 over keep-alive bufferevents ---- */

static void conn_open(Conn *c);
static void conn_next(Conn *c);

static void maybe_phase_done(Gen *g)
{
    if (g->phase == PH_IDLE) {
        if (!g->n_conns_hold && g->idle_answered + g->idle_closed >= g->n_conns)
            event_base_loopbreak(g->base);
        return;
    }
    bool more = g->phase == PH_CREATE ? g->next < g->opt->n
                                      : !g->stop_sending && g->next < g->opt->n;
    if (!more && g->outstanding == 0)
        event_base_loopbreak(g->base);
}

/* Writes a request for items[i] on c and marks it in flight. */
static void conn_write(Conn *c, size_t i, const char *data, size_t len)
{
    Gen *g = c->g;
    c->item = i;
    g->outstanding++;
    if (bufferevent_write(c->bev, data, len) != 0) {
        note_error(g, "cannot queue a request");
        g->fatal = true;
        event_base_loopbreak(g->base);
    }
}

static int build_create(Gen *g, size_t i, char **out, size_t *out_len)
{
    const LgOptions *o = g->opt;
    char body[512];
    int bl = snprintf(body, sizeof(body),
                      "{\"amount\":\"%s\",\"currency\":\"%s\",\"reference\":\"bench-%s-%zu\","
                      "\"to\":%" PRId64 "}",
                      o->amount, o->currency, g->run.run_id, i,
                      o->merchants[g->run.items[i].merchant]);
    if (bl < 0 || (size_t)bl >= sizeof(body))
        return -EINVAL;
    AuthOutboundHeaders h;
    int r = auth_outbound_headers(&o->app_key, o->app_ocid, (int64_t)time(NULL), "POST",
                                  g->create_path, body, (size_t)bl, &h);
    if (r != 0)
        return r;
    Buf b = BUF_INIT;
    buf_printf(&b,
               "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\nX-OC-ID: %s\r\nX-OC-Timestamp: %s\r\nX-OC-Nonce: %s\r\n"
               "X-OC-Signature: %s\r\n\r\n",
               g->create_path, g->host_header, bl, h.ocid, h.timestamp, h.nonce, h.signature);
    buf_put(&b, body, (size_t)bl);
    return buf_finish(&b, out, out_len);
}

static void conn_next(Conn *c)
{
    Gen *g = c->g;
    if (!c->connected || c->item != NO_ITEM || g->fatal)
        return;
    if (g->phase == PH_CREATE) {
        if (g->next >= g->opt->n) {
            maybe_phase_done(g);
            return;
        }
        size_t i = g->next++;
        char *req;
        size_t len;
        if (build_create(g, i, &req, &len) != 0) {
            note_error(g, "cannot sign a create request");
            g->fatal = true;
            event_base_loopbreak(g->base);
            return;
        }
        conn_write(c, i, req, len);
        oc_free(req);
        return;
    }
    if (g->phase != PH_SETTLE)
        return;
    uint64_t now = lg_now_us();
    if (!g->stop_sending && ((g->deadline_us && now >= g->deadline_us) ||
                             (int64_t)time(NULL) - g->signed_at > LG_TIMESTAMP_MARGIN_S))
        g->stop_sending = true;
    while (!g->stop_sending && g->next < g->opt->n &&
           g->run.items[g->next].state != ITEM_CREATED)
        g->next++;
    if (g->stop_sending || g->next >= g->opt->n) {
        maybe_phase_done(g);
        return;
    }
    Item *it = &g->run.items[g->next];
    size_t i = g->next++;
    it->state = ITEM_SENT;
    it->t_sent_us = now;
    g->run.n_sent++;
    conn_write(c, i, it->req, it->req_len);
}

/* The answer to c's request is complete. */
static void on_answer(Conn *c, int status, const char *body, size_t len)
{
    Gen *g = c->g;
    size_t i = c->item;
    c->item = NO_ITEM;
    g->outstanding--;
    Item *it = &g->run.items[i];
    if (g->phase == PH_IDLE) {
        c->answered = true;
        g->idle_answered++;
        maybe_phase_done(g);
        return;
    }
    if (g->phase == PH_CREATE) {
        json_t *v = status == 200 ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
        const char *txid = json_string_value(json_object_get(v, "txid"));
        if (txid && strlen(txid) < sizeof(it->txid)) {
            snprintf(it->txid, sizeof(it->txid), "%s", txid);
            it->state = ITEM_CREATED;
        } else {
            it->state = ITEM_CREATE_FAILED;
            g->create_failed++;
            note_error(g, "create answered %d: %.120s", status, body);
        }
        json_decref(v);
        return;
    }
    it->t_done_us = lg_now_us();
    it->status = status;
    /* The webhook's answer is {"status":"accepted","txid":...}, canonical, so the member
     * always starts the body. */
    static const char accepted[] = "{\"status\":\"accepted\"";
    if (status == 200 && len >= sizeof(accepted) - 1 &&
        memcmp(body, accepted, sizeof(accepted) - 1) == 0) {
        it->state = ITEM_OK;
        g->run.n_ok++;
    } else {
        it->state = ITEM_FAILED;
        g->run.n_errors++;
        note_error(g, "webhook answered %d: %.120s", status, body);
    }
}

/* Parses the head of an answer: status and Content-Length are required (ocgate never
 * chunks); Connection: close ends keep-alive. Returns 0 or -1. */
static int parse_head(Conn *c, const char *h, size_t len)
{
    int status;
    if (len < 12 || sscanf(h, "HTTP/1.%*1[01] %3d", &status) != 1)
        return -1;
    bool have_len = false;
    c->keep_alive = h[7] == '1';
    const char *p = memchr(h, '\n', len), *end = h + len;
    while (p && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        size_t l = (size_t)(eol - p);
        if (l > 15 && strncasecmp(p, "Content-Length:", 15) == 0) {
            unsigned long v = strtoul(p + 15, NULL, 10);
            if (v > LG_MAX_BODY)
                return -1;
            c->body_len = v;
            have_len = true;
        } else if (l > 11 && strncasecmp(p, "Connection:", 11) == 0) {
            const char *v = p + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                c->keep_alive = false;
        }
        p = eol;
    }
    if (!have_len)
        return -1;
    c->status = status;
    c->head_len = len;
    return 0;
}

static void conn_reset(Conn *c, bool reopen)
{
    Gen *g = c->g;
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    if (c->connected && g->connected > 0)
        g->connected--;
    c->connected = false;
    c->head_len = 0;
    if (c->item != NO_ITEM) {
        /* The request may or may not have been processed: an error, never resent. */
        Item *it = &g->run.items[c->item];
        g->outstanding--;
        if (g->phase == PH_CREATE) {
            it->state = ITEM_CREATE_FAILED;
            g->create_failed++;
        } else if (g->phase == PH_SETTLE) {
            it->state = ITEM_FAILED;
            it->t_done_us = lg_now_us();
            g->run.n_errors++;
        }
        note_error(g, "connection lost with a request in flight");
        c->item = NO_ITEM;
    }
    if (reopen && !g->fatal)
        conn_open(c);
    else
        maybe_phase_done(g);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
    Conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        if (!c->head_len) {
            struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (p.pos < 0) {
                if (evbuffer_get_length(in) > LG_MAX_HEAD)
                    goto broken;
                return;
            }
            size_t hl = (size_t)p.pos + 4;
            const char *h = (const char *)evbuffer_pullup(in, (ev_ssize_t)hl);
            if (!h || parse_head(c, h, hl) != 0)
                goto broken;
        }
        if (evbuffer_get_length(in) < c->head_len + c->body_len)
            return;
        if (c->item == NO_ITEM)
            goto broken; /* an answer nobody asked for */
        evbuffer_drain(in, c->head_len);
        const char *body = c->body_len
                               ? (const char *)evbuffer_pullup(in, (ev_ssize_t)c->body_len)
                               : "";
        if (!body)
            goto broken;
        on_answer(c, c->status, body, c->body_len);
        evbuffer_drain(in, c->body_len);
        c->head_len = 0;
        if (!c->keep_alive) {
            conn_reset(c, c->g->phase != PH_IDLE);
            return;
        }
        conn_next(c);
        if (evbuffer_get_length(in) == 0)
            return;
    }
broken:
    note_error(c->g, "malformed answer from the gateway");
    conn_reset(c, c->g->phase != PH_IDLE);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
    Conn *c = arg;
    Gen *g = c->g;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->connected = true;
        g->connected++;
        g->connect_failures = 0;
        if (g->phase == PH_CONNECT) {
            if (g->connected == g->n_conns)
                event_base_loopbreak(g->base);
            return;
        }
        if (g->phase == PH_IDLE) {
            char req[512];
            int l = snprintf(req, sizeof(req), "GET %s/metadata.json HTTP/1.1\r\nHost: %s\r\n\r\n",
                             g->opt->base_path, g->host_header);
            conn_write(c, 0, req, (size_t)l);
            return;
        }
        conn_next(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!c->connected) {
            if (++g->connect_failures > LG_MAX_CONNECT_FAILURES ||
                g->phase == PH_IDLE) {
                note_error(g, "cannot connect to the gateway");
                if (g->phase != PH_IDLE)
                    g->fatal = true;
                if (g->phase == PH_IDLE)
                    g->idle_closed++;
                conn_reset(c, false);
                if (g->fatal)
                    event_base_loopbreak(g->base);
                return;
            }
        } else if (g->phase == PH_IDLE) {
            g->idle_closed++;
            if (c->answered)
                g->idle_answered--; /* it no longer counts as held open */
            conn_reset(c, false);
            return;
        }
        conn_reset(c, true);
    }
}

static void conn_open(Conn *c)
{
    Gen *g = c->g;
    c->item = NO_ITEM;
    c->head_len = 0;
    c->answered = false;
    c->bev = bufferevent_socket_new(g->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        g->fatal = true;
        note_error(g, "out of memory");
        event_base_loopbreak(g->base);
        return;
    }
    bufferevent_setcb(c->bev, conn_on_read, NULL, conn_on_event, c);
    if (bufferevent_enable(c->bev, EV_READ) != 0 ||
        bufferevent_socket_connect(c->bev, (struct sockaddr *)&g->addr, (int)g->addr_len) != 0) {
        /* An immediate refusal: reported through the event callback's path by hand. */
        bufferevent_free(c->bev);
        c->bev = NULL;
        if (++g->connect_failures > LG_MAX_CONNECT_FAILURES || g->phase == PH_IDLE) {
            note_error(g, "cannot connect to the gateway");
            if (g->phase == PH_IDLE) {
                g->idle_closed++;
                maybe_phase_done(g);
            } else {
                g->fatal = true;
                event_base_loopbreak(g->base);
            }
            return;
        }
        conn_open(c);
    }
}

static int conns_start(Gen *g, unsigned n)
{
    g->conns = oc_calloc(n, sizeof(Conn));
    if (!g->conns)
        return -ENOMEM;
    g->n_conns = n;
    g->connected = 0;
    for (unsigned i = 0; i < n; i++) {
        g->conns[i].g = g;
        g->conns[i].item = NO_ITEM;
        conn_open(&g->conns[i]);
    }
    return 0;
}

static void conns_stop(Gen *g)
{
    for (unsigned i = 0; g->conns && i < g->n_conns; i++)
        if (g->conns[i].bev)
            bufferevent_free(g->conns[i].bev);
    oc_free(g->conns);
    g->conns = NULL;
    g->n_conns = 0;
    g->connected = 0;
}

static void conns_kick(Gen *g)
{
    for (unsigned i = 0; i < g->n_conns; i++)
        conn_next(&g->conns[i]);
}

/* ---- the merchant receiver ---- */

static char *header_copy(struct evkeyvalq *h, const char *name)
{
    const char *v = evhttp_find_header(h, name);
    return v ? oc_strndup(v, strlen(v)) : NULL;
}

static void on_notification(struct evhttp_request *req, void *arg)
{
    Gen *g = arg;
    uint64_t t = lg_now_us();
    LgRun *run = &g->run;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    size_t limit = g->opt->n * LG_MAX_RECEIVED_FACTOR + 16;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || run->n_recv >= limit) {
        g->recv_refused++;
        evhttp_send_reply(req, 400, "Bad Request", NULL);
        return;
    }
    if (run->n_recv == run->cap_recv) {
        size_t cap = run->cap_recv ? run->cap_recv * 2 : 1024;
        Received *r = oc_realloc(run->recv, run->cap_recv * sizeof(Received),
                                 cap * sizeof(Received));
        if (!r) {
            g->recv_refused++;
            evhttp_send_reply(req, 503, "Service Unavailable", NULL);
            return;
        }
        run->recv = r;
        run->cap_recv = cap;
    }
    Received *r = &run->recv[run->n_recv++];
    memset(r, 0, sizeof(*r));
    r->t_us = t;
    const char *uri = evhttp_request_get_uri(req);
    r->path = oc_strndup(uri, strlen(uri));
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    r->ocid = header_copy(h, "X-OC-ID");
    r->timestamp = header_copy(h, "X-OC-Timestamp");
    r->nonce = header_copy(h, "X-OC-Nonce");
    r->signature = header_copy(h, "X-OC-Signature");
    r->delivery_id = header_copy(h, "X-OC-Delivery-Id");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    r->body_len = evbuffer_get_length(in);
    r->body = oc_malloc(r->body_len + 1);
    if (r->body) {
        evbuffer_copyout(in, r->body, r->body_len);
        r->body[r->body_len] = '\0';
    }
    atomic_store(&g->last_recv_us, t);
    atomic_store(&g->recv_count, run->n_recv);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evbuffer_add(out, "{\"status\":\"accepted\"}", 21);
    evhttp_send_reply(req, 200, "OK", out);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Gen *g = arg;
    uint64_t now = lg_now_us();
    if ((g->phase == PH_CONNECT || g->phase == PH_IDLE) && g->phase_deadline_us &&
        now >= g->phase_deadline_us) {
        g->phase_deadline_us = 0;
        event_base_loopbreak(g->base);
        return;
    }
    if (g->phase == PH_SETTLE) {
        /* A quiet gateway would otherwise leave the deadline unnoticed. */
        if (g->deadline_us && now >= g->deadline_us && !g->stop_sending) {
            g->stop_sending = true;
            maybe_phase_done(g);
        }
        return;
    }
    if (g->phase == PH_DRAIN &&
        (atomic_load(&g->recv_count) >= g->run.n_ok ||
         now - g->drain_start_us > (uint64_t)(g->opt->drain_timeout_s * 1e6)))
        event_base_loopbreak(g->base);
}

static void *receiver_main(void *arg)
{
    Gen *g = arg;
    event_base_loop(g->recv_base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Listens on 127.0.0.1:port with a deep backlog (a burst of notifications each opens a
 * connection) and starts the receiver thread. Returns 0 or -1. */
static int receiver_start(Gen *g, unsigned port)
{
    g->recv_base = event_base_new();
    g->recv_http = g->recv_base ? evhttp_new(g->recv_base) : NULL;
    if (!g->recv_http)
        return -1;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct evconnlistener *lev = evconnlistener_new_bind(
        g->recv_base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
        LEV_OPT_CLOSE_ON_EXEC, 4096, (struct sockaddr *)&sin, sizeof(sin));
    if (!lev)
        return -1;
    if (!evhttp_bind_listener(g->recv_http, lev)) {
        evconnlistener_free(lev);
        return -1;
    }
    evhttp_set_allowed_methods(g->recv_http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    evhttp_set_max_body_size(g->recv_http, 65536);
    evhttp_set_gencb(g->recv_http, on_notification, g);
    if (pthread_create(&g->recv_thread, NULL, receiver_main, g) != 0)
        return -1;
    g->recv_started = true;
    return 0;
}

static void receiver_stop(Gen *g)
{
    if (g->recv_started) {
        event_base_loopbreak(g->recv_base);
        pthread_join(g->recv_thread, NULL);
        g->recv_started = false;
    }
    if (g->recv_http)
        evhttp_free(g->recv_http);
    g->recv_http = NULL;
    if (g->recv_base)
        event_base_free(g->recv_base);
    g->recv_base = NULL;
}

/* ---- phases ---- */

static int presign(Gen *g)
{
    const LgOptions *o = g->opt;
    g->signed_at = (int64_t)time(NULL);
    for (size_t i = 0; i < o->n; i++) {
        Item *it = &g->run.items[i];
        if (it->state != ITEM_CREATED)
            continue;
        char proof_txid[64], payer_ref[48];
        snprintf(proof_txid, sizeof(proof_txid), "bt-%s-%zu", g->run.run_id, i);
        snprintf(payer_ref, sizeof(payer_ref), "payer-%zu", i);
        json_t *proof = json_pack("{s:s,s:I,s:{s:I,s:s},s:{s:I,s:s},s:s,s:s,s:I}", "txid",
                                  proof_txid, "issuer", (json_int_t)o->provider_ocid, "from",
                                  "ocid", (json_int_t)o->payer_ocid, "reference", payer_ref,
                                  "to", "ocid", (json_int_t)o->gateway_ocid, "reference",
                                  it->txid, "amount", o->amount, "currency", o->currency,
                                  "timestamp", (json_int_t)g->signed_at);
        char sig[SIG_HEX_LEN + 1];
        if (!proof || proof_sign(proof, &o->provider_key, CANON_STRICT, sig) != 0) {
            json_decref(proof);
            return -EIO;
        }
        json_t *env = json_pack("{s:o,s:s}", "proof", proof, "signature", sig);
        char *body = NULL;
        size_t body_len = 0;
        int r = env ? canon_write(env, CANON_STRICT, &body, &body_len) : -ENOMEM;
        json_decref(env);
        if (r != 0)
            return r < 0 ? r : -EINVAL;
        AuthOutboundHeaders h;
        r = auth_outbound_headers(&o->provider_key, o->provider_ocid, g->signed_at, "POST",
                                  g->webhook_path, body, body_len, &h);
        if (r != 0) {
            oc_free(body);
            return r;
        }
        Buf b = BUF_INIT;
        buf_printf(&b,
                   "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\nX-OC-ID: %s\r\nX-OC-Timestamp: %s\r\n"
                   "X-OC-Nonce: %s\r\nX-OC-Signature: %s\r\n\r\n",
                   g->webhook_path, g->host_header, body_len, h.ocid, h.timestamp, h.nonce,
                   h.signature);
        buf_put(&b, body, body_len);
        oc_free(body);
        r = buf_finish(&b, &it->req, &it->req_len);
        if (r != 0)
            return r;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of n sorted values. */
static uint64_t percentile(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static int run_idle(Gen *g)
{
    const LgOptions *o = g->opt;
    double rss_before = o->server_pid ? proc_mem_mib(o->server_pid, "VmRSS") : -1;
    g->phase = PH_IDLE;
    if (conns_start(g, o->idle) != 0)
        return 1;
    g->phase_deadline_us = lg_now_us() + 60u * 1000000u;
    event_base_dispatch(g->base);
    /* Hold them, idle, and watch for closes: only the deadline ends this wait. */
    g->phase_deadline_us = lg_now_us() + (uint64_t)(o->idle_hold_s * 1e6) + 1;
    g->n_conns_hold = true;
    event_base_dispatch(g->base);
    double rss = o->server_pid ? proc_mem_mib(o->server_pid, "VmRSS") : -1;
    double hwm = o->server_pid ? proc_mem_mib(o->server_pid, "VmHWM") : -1;
    unsigned open_now = 0;
    for (unsigned i = 0; i < g->n_conns; i++)
        open_now += g->conns[i].connected && g->conns[i].answered;
    printf("ocgate-idle label=%s connections=%u answered_and_open=%u closed=%u "
           "server_rss_before_mib=%.1f server_rss_mib=%.1f server_rss_peak_mib=%.1f\n",
           o->label, o->idle, open_now, g->idle_closed, rss_before, rss, hwm);
    conns_stop(g);
    return open_now == o->idle ? 0 : 1;
}

static int run_load(Gen *g)
{
    const LgOptions *o = g->opt;
    LgRun *run = &g->run;
    run->items = oc_calloc(o->n, sizeof(Item));
    if (!run->items)
        return 1;
    for (size_t i = 0; i < o->n; i++)
        run->items[i].merchant = (uint8_t)(i % o->n_merchants);

    /* 1. pending payments */
    uint64_t t0 = lg_now_us();
    g->phase = PH_CREATE;
    g->next = 0;
    if (conns_start(g, o->concurrency) != 0)
        return 1;
    event_base_dispatch(g->base);
    conns_stop(g);
    double create_s = (double)(lg_now_us() - t0) / 1e6;
    size_t created = o->n - g->create_failed;
    fprintf(stderr, "loadgen: created %zu payments in %.1f s (%.0f/s), %zu failed\n", created,
            create_s, (double)created / create_s, g->create_failed);
    if (g->fatal || created == 0) {
        fprintf(stderr, "loadgen: cannot create payments: %s\n", g->first_error);
        return 1;
    }

    /* 2. pre-signed webhooks */
    t0 = lg_now_us();
    if (presign(g) != 0) {
        fprintf(stderr, "loadgen: pre-signing failed\n");
        return 1;
    }
    fprintf(stderr, "loadgen: pre-signed %zu webhooks in %.1f s\n", created,
            (double)(lg_now_us() - t0) / 1e6);

    /* 3. fresh connections, then the measured window */
    g->phase = PH_CONNECT;
    if (conns_start(g, o->concurrency) != 0)
        return 1;
    g->phase_deadline_us = lg_now_us() + 30u * 1000000u;
    event_base_dispatch(g->base);
    g->phase_deadline_us = 0;
    if (g->fatal || g->connected != g->n_conns) {
        fprintf(stderr, "loadgen: only %u of %u connections came up: %s\n", g->connected,
                g->n_conns, g->first_error);
        return 1;
    }
    g->first_error[0] = '\0';
    /* Statistics are published about once a second: let the creation phase's settle. */
    double commits0 = -1, syncs0 = -1, commits1 = -1, syncs1 = -1;
    usleep(1100000);
    if (lg_db_counters(o->db_conninfo, &commits0, &syncs0) != 0)
        commits0 = syncs0 = -1;
    double cpu0 = o->server_pid ? proc_cpu_s(o->server_pid) : -1;
    uint64_t start = lg_now_us();
    g->phase = PH_SETTLE;
    g->next = 0;
    g->deadline_us = o->duration_s > 0 ? start + (uint64_t)(o->duration_s * 1e6) : 0;
    conns_kick(g);
    event_base_dispatch(g->base);
    uint64_t load_end = lg_now_us();
    conns_stop(g);
    double window_s = (double)(load_end - start) / 1e6;

    /* 4. notifications still on their way */
    g->phase = PH_DRAIN;
    g->drain_start_us = load_end;
    if (atomic_load(&g->recv_count) < run->n_ok)
        event_base_dispatch(g->base);
    uint64_t last = atomic_load(&g->last_recv_us);
    double drain_s = atomic_load(&g->recv_count)
                         ? (double)((last > load_end ? last : load_end) - load_end) / 1e6
                         : 0;
    double cpu1 = o->server_pid ? proc_cpu_s(o->server_pid) : -1;
    double rss = o->server_pid ? proc_mem_mib(o->server_pid, "VmRSS") : -1;
    double hwm = o->server_pid ? proc_mem_mib(o->server_pid, "VmHWM") : -1;

    /* 5. the outcomes recorded (the receiver still answering), then the receiver stops and
     * its records are ours; latency figures; checks */
    lg_wait_queue(run);
    receiver_stop(g);
    uint64_t *lat = oc_calloc(run->n_sent ? run->n_sent : 1, sizeof(uint64_t));
    if (!lat)
        return 1;
    size_t nl = 0;
    for (size_t i = 0; i < o->n; i++)
        if (run->items[i].state == ITEM_OK || run->items[i].state == ITEM_FAILED)
            lat[nl++] = run->items[i].t_done_us - run->items[i].t_sent_us;
    qsort(lat, nl, sizeof(uint64_t), cmp_u64);
    double lag_p99_ms = -1;
    int failed = lg_check_run(run, &lag_p99_ms);
    usleep(1100000);
    if (commits0 < 0 || lg_db_counters(o->db_conninfo, &commits1, &syncs1) != 0)
        commits1 = syncs1 = -1;
    double per = run->n_ok ? (double)run->n_ok : 1;
    if (run->n_errors)
        printf("check no error answers: FAILED (%zu errors; first: %s)\n", run->n_errors,
               g->first_error);
    else
        printf("check no error answers: ok\n");
    if (g->recv_refused) {
        printf("check receiver refused nothing: FAILED (%zu refused)\n", g->recv_refused);
        failed++;
    }
    printf("ocgate-bench label=%s c=%u n=%zu sent=%zu settled=%zu errors=%zu window_s=%.1f "
           "settled_per_s=%.0f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f delivery_lag_p99_ms=%.1f "
           "drain_s=%.2f server_rss_mib=%.1f server_rss_peak_mib=%.1f "
           "server_cpu_s_per_1k=%.3f db_commits_per_settlement=%.2f "
           "wal_syncs_per_settlement=%.3f checks=%s\n",
           o->label, o->concurrency, o->n, run->n_sent, run->n_ok, run->n_errors, window_s,
           (double)run->n_ok / window_s, (double)percentile(lat, nl, 50) / 1000.0,
           (double)percentile(lat, nl, 95) / 1000.0, (double)percentile(lat, nl, 99) / 1000.0,
           lag_p99_ms, drain_s, rss, hwm,
           cpu0 >= 0 && cpu1 >= 0 && run->n_ok ? (cpu1 - cpu0) * 1000.0 / (double)run->n_ok
                                                : -1.0,
           commits1 >= 0 ? (commits1 - commits0) / per : -1.0,
           syncs1 >= 0 ? (syncs1 - syncs0) / per : -1.0, failed ? "FAILED" : "passed");
    oc_free(lat);
    return failed || run->n_errors ? 1 : 0;
}

/* ---- options ---- */

static int usage(void)
{
    fputs("usage: ocgate-loadgen --gateway HOST:PORT --gateway-ocid N --gateway-pub HEX\n"
          "         --app-ocid N --app-key FILE --provider-ocid N --provider-key FILE\n"
          "         --merchants N[,N...] --receiver-port P --db CONNINFO\n"
          "         [-n N] [-c C] [--duration S] [--drain-timeout S] [--server-pid PID]\n"
          "         [--base-path P] [--currency C] [--amount A] [--payer-ocid N] [--label L]\n"
          "       ocgate-loadgen --idle K --gateway HOST:PORT [--server-pid PID] [--hold S]\n",
          stderr);
    return 2;
}

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int load_key(const char *path, PrivateKey *out, const char *what)
{
    int r = key_load_private_file(path, out);
    if (r != 0)
        fprintf(stderr, "ocgate-loadgen: cannot load the %s key file (code %d)\n", what, r);
    return r;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "gateway", required_argument, NULL, 'g' },
        { "base-path", required_argument, NULL, 'b' },
        { "gateway-ocid", required_argument, NULL, 'G' },
        { "gateway-pub", required_argument, NULL, 'K' },
        { "app-ocid", required_argument, NULL, 'A' },
        { "app-key", required_argument, NULL, 'a' },
        { "provider-ocid", required_argument, NULL, 'P' },
        { "provider-key", required_argument, NULL, 'p' },
        { "payer-ocid", required_argument, NULL, 'Y' },
        { "merchants", required_argument, NULL, 'm' },
        { "receiver-port", required_argument, NULL, 'r' },
        { "db", required_argument, NULL, 'D' },
        { "duration", required_argument, NULL, 'd' },
        { "drain-timeout", required_argument, NULL, 'T' },
        { "server-pid", required_argument, NULL, 's' },
        { "currency", required_argument, NULL, 'u' },
        { "amount", required_argument, NULL, 'x' },
        { "idle", required_argument, NULL, 'i' },
        { "hold", required_argument, NULL, 'h' },
        { "label", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    static LgOptions o = {
        .base_path = "/opencharge", .n = 1000, .concurrency = 16, .drain_timeout_s = 30,
        .currency = "USD", .amount = "1.00", .payer_ocid = 900, .idle_hold_s = 3,
        .label = "-", .gateway_ocid = -1, .app_ocid = -1, .provider_ocid = -1,
    };
    const char *gateway = NULL, *pub = NULL, *app_key = NULL, *provider_key = NULL;
    int64_t v;
    int ch;
    while ((ch = getopt_long(argc, argv, "n:c:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'g': gateway = optarg; break;
        case 'b': o.base_path = optarg; break;
        case 'K': pub = optarg; break;
        case 'a': app_key = optarg; break;
        case 'p': provider_key = optarg; break;
        case 'D': o.db_conninfo = optarg; break;
        case 'u': o.currency = optarg; break;
        case 'x': o.amount = optarg; break;
        case 'l': o.label = optarg; break;
        case 'G': if (parse_i64(optarg, 0, 9007199254740991LL, &o.gateway_ocid)) return usage(); break;
        case 'A': if (parse_i64(optarg, 0, 9007199254740991LL, &o.app_ocid)) return usage(); break;
        case 'P': if (parse_i64(optarg, 0, 9007199254740991LL, &o.provider_ocid)) return usage(); break;
        case 'Y': if (parse_i64(optarg, 0, 9007199254740991LL, &o.payer_ocid)) return usage(); break;
        case 'r': if (parse_i64(optarg, 1, 65535, &v)) return usage(); o.receiver_port = (unsigned)v; break;
        case 'n': if (parse_i64(optarg, 1, LG_MAX_N, &v)) return usage(); o.n = (size_t)v; break;
        case 'c': if (parse_i64(optarg, 1, LG_MAX_CONCURRENCY, &v)) return usage(); o.concurrency = (unsigned)v; break;
        case 'i': if (parse_i64(optarg, 1, LG_MAX_IDLE, &v)) return usage(); o.idle = (unsigned)v; break;
        case 's': if (parse_i64(optarg, 1, 4194304, &v)) return usage(); o.server_pid = (int)v; break;
        case 'd': o.duration_s = strtod(optarg, NULL); if (o.duration_s <= 0 || o.duration_s > 3600) return usage(); break;
        case 'T': o.drain_timeout_s = strtod(optarg, NULL); if (o.drain_timeout_s <= 0 || o.drain_timeout_s > 3600) return usage(); break;
        case 'h': o.idle_hold_s = strtod(optarg, NULL); if (o.idle_hold_s < 0 || o.idle_hold_s > 3600) return usage(); break;
        case 'm': {
            char *s = optarg;
            o.n_merchants = 0;
            while (*s) {
                char *end;
                errno = 0;
                long long m = strtoll(s, &end, 10);
                if (errno || end == s || m < 0 || o.n_merchants == LG_MAX_MERCHANTS ||
                    (*end && *end != ','))
                    return usage();
                o.merchants[o.n_merchants++] = m;
                s = *end ? end + 1 : end;
            }
            break;
        }
        default: return usage();
        }
    }
    if (optind != argc || !gateway)
        return usage();
    /* HOST:PORT with HOST 127.0.0.1 or [::1]: the benchmark never leaves this machine. */
    const char *colon = strrchr(gateway, ':');
    if (!colon || parse_i64(colon + 1, 1, 65535, &v) != 0)
        return usage();
    o.port = (unsigned)v;
    Gen g;
    memset(&g, 0, sizeof(g));
    g.opt = &o;
    if (strncmp(gateway, "127.0.0.1:", 10) == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&g.addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)o.port);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g.addr_len = sizeof(*sin);
        o.host = "127.0.0.1";
    } else if (strncmp(gateway, "[::1]:", 6) == 0) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&g.addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)o.port);
        sin6->sin6_addr = in6addr_loopback;
        g.addr_len = sizeof(*sin6);
        o.host = "[::1]";
    } else {
        fprintf(stderr, "ocgate-loadgen: --gateway must be 127.0.0.1:PORT or [::1]:PORT\n");
        return 2;
    }
    snprintf(g.host_header, sizeof(g.host_header), "%s:%u", o.host, o.port);
    snprintf(g.create_path, sizeof(g.create_path), "%s/payment/create", o.base_path);
    snprintf(g.webhook_path, sizeof(g.webhook_path), "%s/transfer/webhook", o.base_path);

    /* Every connection needs a descriptor: take what the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!o.idle) {
        if (!pub || key_parse_public(pub, strlen(pub), &o.gateway_pub) != 0 ||
            o.gateway_ocid < 0 || o.app_ocid < 0 || o.provider_ocid < 0 || !app_key ||
            !provider_key || o.n_merchants == 0 || !o.receiver_port || !o.db_conninfo)
            return usage();
        if (load_key(app_key, &o.app_key, "payment app") != 0 ||
            load_key(provider_key, &o.provider_key, "provider") != 0) {
            key_private_wipe(&o.app_key);
            return 1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int rc = 1;
    if (evthread_use_pthreads() != 0) { /* the main thread breaks the receiver's loop */
        fprintf(stderr, "ocgate-loadgen: no libevent thread support\n");
        return 1;
    }
    g.base = event_base_new();
    if (!g.base)
        goto out;
    g.tick = event_new(g.base, -1, EV_PERSIST, on_tick, &g);
    struct timeval tick = { 0, 10000 };
    if (!g.tick || event_add(g.tick, &tick) != 0)
        goto out;
    if (o.idle) {
        rc = run_idle(&g);
        goto out;
    }

    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        fprintf(stderr, "ocgate-loadgen: no randomness\n");
        goto out;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(g.run.run_id + 2 * i, 3, "%02x", rnd[i]);
    g.run.opt = &o;

    if (receiver_start(&g, o.receiver_port) != 0) {
        fprintf(stderr, "ocgate-loadgen: cannot listen on 127.0.0.1:%u\n", o.receiver_port);
        goto out;
    }

    fprintf(stderr, "loadgen: run %s, n=%zu c=%u, merchants %zu, receiver 127.0.0.1:%u\n",
            g.run.run_id, o.n, o.concurrency, o.n_merchants, o.receiver_port);
    rc = run_load(&g);

out:
    conns_stop(&g); /* after an early failure some may still be open */
    if (g.tick)
        event_free(g.tick);
    receiver_stop(&g);
    if (g.base)
        event_base_free(g.base);
    for (size_t i = 0; i < g.run.n_recv; i++) {
        Received *r = &g.run.recv[i];
        oc_free(r->path);
        oc_free(r->ocid);
        oc_free(r->timestamp);
        oc_free(r->nonce);
        oc_free(r->signature);
        oc_free(r->delivery_id);
        oc_free(r->body);
    }
    oc_free(g.run.recv);
    for (size_t i = 0; g.run.items && i < o.n; i++)
        oc_free(g.run.items[i].req);
    oc_free(g.run.items);
    key_private_wipe(&o.app_key);
    key_private_wipe(&o.provider_key);
    libevent_global_shutdown();
    return rc;
}
