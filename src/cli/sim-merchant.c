/* `ocgate sim merchant`: plays a merchant receiving the gateway's notifications. Every POST to
 * .../transfer/webhook is checked as a merchant should: the X-OC-* request signature with the
 * gateway's public key (window, sender, nonce not seen before), then the forwarded proof's
 * signature in the merchant's canonical form, its issuer and its recipient. A valid delivery
 * is answered {"status":"accepted"} unless the merchant was told to fail on purpose (500s,
 * rejections, slow answers, dropped connections, 503 with Retry-After), for every delivery
 * or only the first N. One line per request on stdout. A test peer, not part of the gateway,
 * so it talks to evhttp directly rather than through http/. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/sim.h"
#include "proto/canon.h"
#include "proto/json.h"
#include "proto/proof.h"
#include "proto/sigstr.h"
#include "util/alloc.h"

#define PROG "ocgate sim merchant"
#define SIM_WEBHOOK_SUFFIX "/transfer/webhook"
#define SIM_MAX_BODY (1024 * 1024)
#define SIM_WINDOW_S 300
#define SIM_NONCES 4096          /* nonces remembered (far more than one window's worth here) */
#define SIM_PAID 4096            /* proof txids remembered, to tell repeats from new payments */
#define SIM_MAX_PENDING 256      /* slow or dropped answers waiting at once */

typedef enum FailMode {
    FAIL_NONE,
    FAIL_ERROR,     /* 500 */
    FAIL_REJECT,    /* 200 {"status":"rejected"}: final, the gateway does not retry */
    FAIL_SLOW,      /* answers accepted after --delay-ms */
    FAIL_DROP,      /* closes the connection without an answer */
    FAIL_BUSY,      /* 503 with Retry-After */
    FAIL_GONE,      /* 410: final, the delivery goes dead */
} FailMode;

static const struct {
    const char *name;
    FailMode mode;
    const char *what;
} fail_modes[] = {
    { "none", FAIL_NONE, "accept every valid delivery" },
    { "error", FAIL_ERROR, "answer 500 (the gateway retries)" },
    { "reject", FAIL_REJECT, "answer {\"status\":\"rejected\"} (final)" },
    { "slow", FAIL_SLOW, "answer accepted only after --delay-ms" },
    { "drop", FAIL_DROP, "close the connection without answering (the gateway retries)" },
    { "busy", FAIL_BUSY, "answer 503 with Retry-After: --retry-after seconds" },
    { "gone", FAIL_GONE, "answer 410 (final: the delivery goes dead)" },
};

typedef struct Sim Sim;

typedef struct Pending {
    Sim *sim;
    struct evhttp_request *req;
    struct event *timer;
    bool orphaned;     /* the gateway closed the connection before the answer */
    bool drop;
    char txid[PROOF_MAX_TXID + 1];
    struct Pending *next;
} Pending;

struct Sim {
    struct event_base *base;
    struct evhttp *http;
    int64_t ocid;
    int64_t gateway_ocid;
    bool have_gateway_ocid;
    PublicKey gateway_key;
    CanonForm form;
    FailMode fail;
    unsigned fail_first;       /* 0 = every valid delivery */
    unsigned delay_ms;
    unsigned retry_after_s;
    unsigned exit_after;       /* 0 = run until a signal */
    /* counters */
    unsigned requests, valid, accepted, failed_on_purpose, invalid;
    unsigned paid;             /* distinct proof txids accepted */
    char *nonces[SIM_NONCES];
    unsigned nonce_next;
    char *paid_txids[SIM_PAID];
    Pending *pending;
    unsigned n_pending;
    bool reached;
};

static void merchant_usage(FILE *out)
{
    fputs("usage: ocgate sim merchant --listen HOST:PORT --ocid N --gateway-key HEX [options]\n"
          "  Receives the gateway's notifications on HOST:PORT (PORT 0 picks a free one),\n"
          "  for any path ending in /transfer/webhook, as merchant N. Verifies the X-OC-*\n"
          "  request signature and the forwarded proof with the gateway's public key HEX\n"
          "  and answers {\"status\":\"accepted\"}, or fails on purpose.\n"
          "options:\n"
          "  --gateway-ocid N     also require X-OC-ID and proof.issuer to be N\n"
          "  --form strict|legacy the canonical form the gateway signs for this merchant\n"
          "  --fail MODE          fail valid deliveries on purpose (see below)\n"
          "  --fail-first N       fail only the first N valid deliveries, then accept\n"
          "  --delay-ms N         delay of --fail slow (default 15000)\n"
          "  --retry-after N      Retry-After seconds of --fail busy (default 1)\n"
          "  --exit-after N       exit 0 once N distinct payments were accepted\n"
          "  --timeout S          with --exit-after: exit 1 if that takes longer than S s\n"
          "exit status: 0 stopped by SIGINT/SIGTERM or --exit-after reached, 1 failure,\n"
          "2 usage error.\n"
          "fail modes:\n",
          out);
    for (size_t i = 0; i < OC_ARRAY_LEN(fail_modes); i++)
        fprintf(out, "  %-8s %s\n", fail_modes[i].name, fail_modes[i].what);
}

/* ---- answers ---- */

static void reply(struct evhttp_request *req, int status, const char *reason, const char *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    struct evbuffer *b = evbuffer_new();
    if (b)
        evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, status, reason, b);
    if (b)
        evbuffer_free(b);
}

static void reply_json(struct evhttp_request *req, int status, const char *reason, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    reply(req, text ? status : 500, text ? reason : "Internal Server Error",
          text ? text : "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"out of memory\"}}");
    free(text);
}

static void reply_error(struct evhttp_request *req, int status, const char *code,
                        const char *message)
{
    reply_json(req, status, status == 401 ? "Unauthorized" : "Bad Request",
               json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

static void reply_accepted(struct evhttp_request *req, const char *txid)
{
    reply_json(req, 200, "OK", json_pack("{s:s,s:s}", "status", "accepted", "txid", txid));
}

/* ---- memory of nonces and payments ---- */

/* True when nonce was seen; otherwise remembers it (the oldest is forgotten when full). */
static bool nonce_seen(Sim *s, const char *nonce, size_t len)
{
    for (unsigned i = 0; i < SIM_NONCES; i++)
        if (s->nonces[i] && strlen(s->nonces[i]) == len && memcmp(s->nonces[i], nonce, len) == 0)
            return true;
    char *copy = oc_strndup(nonce, len);
    if (copy) {
        oc_free(s->nonces[s->nonce_next]);
        s->nonces[s->nonce_next] = copy;
        s->nonce_next = (s->nonce_next + 1) % SIM_NONCES;
    }
    return false;
}

/* Records an accepted payment; true when it is new. */
static bool paid_new(Sim *s, const char *txid)
{
    for (unsigned i = 0; i < SIM_PAID && s->paid_txids[i]; i++)
        if (strcmp(s->paid_txids[i], txid) == 0)
            return false;
    if (s->paid < SIM_PAID)
        s->paid_txids[s->paid] = oc_strndup(txid, strlen(txid));
    s->paid++;
    return true;
}

static void on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void accepted(Sim *s, struct evhttp_request *req, const char *txid)
{
    bool fresh = paid_new(s, txid);
    s->accepted++;
    reply_accepted(req, txid);
    printf("merchant: -> 200 accepted%s\n", fresh ? "" : " (a payment already accepted: repeat)");
    if (s->exit_after && s->paid >= s->exit_after && !s->reached) {
        s->reached = true;
        printf("merchant: %u payments accepted; exiting\n", s->paid);
        /* a moment for the answer to leave */
        struct timeval tv = { 0, 200000 };
        event_base_once(s->base, -1, EV_TIMEOUT, on_exit_timer, s->base, &tv);
    }
}

/* ---- slow and dropped answers ---- */

static void pending_unlink_free(Pending *p)
{
    Sim *s = p->sim;
    for (Pending **pp = &s->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    s->n_pending--;
    if (p->timer)
        event_free(p->timer);
    oc_free(p);
}

static void on_close_pending(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    Pending *p = arg;
    p->orphaned = true;
    /* Still attached, libevent frees the request with the connection right after this;
     * detached (EOF before our answer), freeing it is ours. */
    if (evhttp_request_get_connection(p->req) != NULL)
        p->req = NULL;
}

static void on_pending_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    Pending *p = arg;
    Sim *s = p->sim;
    if (p->orphaned) {
        if (p->req)
            evhttp_request_free(p->req);
        printf("merchant: the gateway closed the connection before the %s answer for %s\n",
               p->drop ? "dropped" : "slow", p->txid);
    } else {
        struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);
        evhttp_connection_set_closecb(evcon, NULL, NULL);
        if (p->drop) {
            evhttp_connection_free(evcon); /* frees the request too */
        } else {
            printf("merchant: slow answer for %s after %u ms\n", p->txid, s->delay_ms);
            accepted(s, p->req, p->txid);
        }
    }
    pending_unlink_free(p);
}

/* Answers later (slow) or not at all (drop); false when it cannot be arranged. */
static bool defer(Sim *s, struct evhttp_request *req, const char *txid, bool drop)
{
    if (s->n_pending >= SIM_MAX_PENDING)
        return false;
    Pending *p = oc_calloc(1, sizeof(*p));
    if (!p)
        return false;
    p->sim = s;
    p->req = req;
    p->drop = drop;
    snprintf(p->txid, sizeof(p->txid), "%s", txid);
    p->timer = evtimer_new(s->base, on_pending_timer, p);
    unsigned ms = drop ? 0 : s->delay_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    if (!p->timer || evtimer_add(p->timer, &tv) != 0) {
        if (p->timer)
            event_free(p->timer);
        oc_free(p);
        return false;
    }
    p->next = s->pending;
    s->pending = p;
    s->n_pending++;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_close_pending, p);
    return true;
}

/* ---- the webhook ---- */

/* A header value as printable text for the log line (values come from the network). */
static void printable(const char *v, char *out, size_t out_len)
{
    size_t i = 0;
    for (; v && v[i] && i + 1 < out_len; i++)
        out[i] = (v[i] > 0x20 && v[i] < 0x7f) ? v[i] : '?';
    out[i] = '\0';
    if (i == 0)
        snprintf(out, out_len, "-");
}

/* Checks the X-OC-* headers; returns NULL when valid, else the reason (static). *code is the
 * error code to answer with. */
static const char *check_request(Sim *s, struct evhttp_request *req, const char *body,
                                 size_t body_len, const char **code)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *ocid = evhttp_find_header(h, "X-OC-ID");
    const char *ts = evhttp_find_header(h, "X-OC-Timestamp");
    const char *nonce = evhttp_find_header(h, "X-OC-Nonce");
    const char *sig = evhttp_find_header(h, "X-OC-Signature");
    SigHeaders sh;
    *code = "INVALID_SIGNATURE";
    if (sigstr_parse_headers(ocid, ocid ? strlen(ocid) : 0, ts, ts ? strlen(ts) : 0, nonce,
                             nonce ? strlen(nonce) : 0, sig, sig ? strlen(sig) : 0, &sh) != 0)
        return "X-OC-* headers missing or malformed";
    int64_t skew = (int64_t)time(NULL) - sh.timestamp;
    if (skew > SIM_WINDOW_S || skew < -SIM_WINDOW_S) {
        *code = "TIMESTAMP_EXPIRED";
        return "X-OC-Timestamp outside the 300 s window";
    }
    if (s->have_gateway_ocid && sh.ocid != s->gateway_ocid) {
        *code = "UNKNOWN_OCID";
        return "X-OC-ID is not the gateway";
    }
    char *msg = NULL;
    size_t msg_len = 0;
    if (sigstr_request(&sh, "POST", evhttp_request_get_uri(req), body, body_len, &msg,
                       &msg_len) != 0)
        return "the request cannot have been signed";
    int r = sig_verify(&s->gateway_key, msg, msg_len, sh.signature, sh.signature_len);
    oc_free(msg);
    if (r != 0)
        return "X-OC-Signature does not verify with the gateway key";
    /* Only after the signature verified, as the gateway itself does: otherwise anyone could
     * burn the gateway's nonces. */
    if (nonce_seen(s, sh.nonce, sh.nonce_len)) {
        *code = "NONCE_REUSED";
        return "X-OC-Nonce seen before";
    }
    return NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    Sim *s = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *q = strchr(uri, '?');
    size_t path_len = q ? (size_t)(q - uri) : strlen(uri);
    size_t sl = strlen(SIM_WEBHOOK_SUFFIX);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || path_len < sl ||
        memcmp(uri + path_len - sl, SIM_WEBHOOK_SUFFIX, sl) != 0) {
        reply(req, 404, "Not Found",
              "{\"error\":{\"code\":\"NOT_FOUND\","
              "\"message\":\"only POST .../transfer/webhook\"}}");
        return;
    }
    s->requests++;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t body_len = evbuffer_get_length(in);
    const char *body = body_len ? (const char *)evbuffer_pullup(in, -1) : "";

    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    char delivery[64], attempt[16];
    printable(evhttp_find_header(h, "X-OC-Delivery-Id"), delivery, sizeof(delivery));
    printable(evhttp_find_header(h, "X-OC-Delivery-Attempt"), attempt, sizeof(attempt));

    const char *code;
    const char *bad_request = check_request(s, req, body, body_len, &code);
    json_t *doc = NULL;
    Proof proof = { 0 };
    const char *sig = NULL;
    size_t sig_len = 0;
    const char *bad_proof = NULL, *proof_code = "INVALID_PROOF";
    const char *proof_sig = "not checked";
    JsonReadError jerr;
    ProofError perr;
    if (json_read_strict(body, body_len, JSON_READ_OBJECT, &doc, &jerr) != 0) {
        bad_proof = "the body is not a strict JSON object";
        proof_code = "BAD_REQUEST";
    } else if (proof_parse_envelope(doc, &proof, &sig, &sig_len, &perr) != 0) {
        bad_proof = perr.reason;
    } else if (proof_verify(&proof, &s->gateway_key, s->form, sig, sig_len) != 0) {
        bad_proof = "the proof signature does not verify with the gateway key";
        proof_code = "PROOF_SIGNATURE_INVALID";
        proof_sig = "INVALID";
    } else {
        proof_sig = "valid";
        if (s->have_gateway_ocid && proof.issuer != s->gateway_ocid) {
            bad_proof = "proof.issuer is not the gateway";
            proof_code = "ISSUER_NOT_ACCEPTED";
        } else if (proof.to_ocid != s->ocid) {
            bad_proof = "proof.to.ocid is not this merchant";
        }
    }
    char txid[PROOF_MAX_TXID + 1] = "-", amount[AMOUNT_MAX_TEXT + 1] = "-", currency[16] = "-";
    char reference[80] = "-";
    if (!bad_proof || sig) {
        snprintf(txid, sizeof(txid), "%.*s", (int)proof.txid_len, proof.txid);
        snprintf(amount, sizeof(amount), "%.*s", (int)proof.amount_len, proof.amount_text);
        snprintf(currency, sizeof(currency), "%.*s", (int)proof.currency_len, proof.currency);
        if (proof.to_reference)
            snprintf(reference, sizeof(reference), "%.*s", (int)proof.to_reference_len,
                     proof.to_reference);
        for (char *c = reference; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
    }
    printf("merchant: delivery %s attempt %s payment %s order %s %s %s: request signature %s, "
           "proof signature %s\n",
           delivery, attempt, txid, reference, amount, currency,
           bad_request ? "INVALID" : "valid", proof_sig);

    if (bad_request || bad_proof) {
        s->invalid++;
        printf("merchant: -> %d %s: %s\n", bad_request ? 401 : 400,
               bad_request ? code : proof_code, bad_request ? bad_request : bad_proof);
        if (bad_request)
            reply_error(req, 401, code, bad_request);
        else
            reply_error(req, 400, proof_code, bad_proof);
        json_decref(doc);
        return;
    }
    json_decref(doc);
    s->valid++;
    bool fail = s->fail != FAIL_NONE && (s->fail_first == 0 || s->valid <= s->fail_first);
    if (!fail) {
        accepted(s, req, txid);
        return;
    }
    s->failed_on_purpose++;
    switch (s->fail) {
    case FAIL_ERROR:
        printf("merchant: -> 500 on purpose\n");
        reply(req, 500, "Internal Server Error",
              "{\"error\":{\"code\":\"INTERNAL\",\"message\":\"failing on purpose\"}}");
        return;
    case FAIL_REJECT:
        printf("merchant: -> 200 rejected on purpose\n");
        reply_json(req, 200, "OK", json_pack("{s:s,s:s,s:s}", "status", "rejected", "txid", txid,
                                             "reason", "rejected on purpose"));
        return;
    case FAIL_BUSY: {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", s->retry_after_s);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        printf("merchant: -> 503 Retry-After %s on purpose\n", ra);
        reply(req, 503, "Service Unavailable",
              "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"busy on purpose\"}}");
        return;
    }
    case FAIL_GONE:
        printf("merchant: -> 410 on purpose\n");
        reply(req, 410, "Gone", "{\"error\":{\"code\":\"GONE\",\"message\":\"gone on purpose\"}}");
        return;
    case FAIL_SLOW:
    case FAIL_DROP:
        printf("merchant: -> %s on purpose\n",
               s->fail == FAIL_DROP ? "connection dropped" : "answer delayed");
        if (!defer(s, req, txid, s->fail == FAIL_DROP))
            reply(req, 503, "Service Unavailable",
                  "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"too many held\"}}");
        return;
    case FAIL_NONE:
        break;
    }
    accepted(s, req, txid);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static bool timed_out;

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    timed_out = true;
    event_base_loopbreak(arg);
}

/* HOST:PORT or [V6]:PORT into host (NUL-terminated) and port; -1 if unusable. */
static int parse_listen(const char *s, char *host, size_t host_len, unsigned *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -1;
        h++;
        hl -= 2;
    }
    if (hl >= host_len)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    int64_t p;
    if (sigstr_parse_decimal(colon + 1, strlen(colon + 1), 5, &p) != 0 || p > 65535)
        return -1;
    *port = (unsigned)p;
    return 0;
}

static int serve(Sim *s, const char *host, unsigned port, unsigned timeout_s)
{
    int status = CLI_EXIT_FAILURE;
    struct event *sigint = NULL, *sigterm = NULL, *deadline = NULL;
    s->base = event_base_new();
    s->http = s->base ? evhttp_new(s->base) : NULL;
    if (!s->http) {
        fprintf(stderr, PROG ": cannot start the event loop\n");
        goto out;
    }
    evhttp_set_max_body_size(s->http, SIM_MAX_BODY);
    evhttp_set_max_headers_size(s->http, 16384);
    evhttp_set_timeout(s->http, 60);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
    evhttp_set_gencb(s->http, on_request, s);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(s->http, host, (ev_uint16_t)port);
    if (!bound) {
        fprintf(stderr, PROG ": cannot listen on %s port %u: %s\n", host, port,
                strerror(errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &sl) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    printf("merchant: listening on %s%s%s:%u as merchant %" PRId64 "; %s%s\n",
           strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port, s->ocid,
           fail_modes[s->fail].what,
           s->fail != FAIL_NONE && s->fail_first ? " (first deliveries only)" : "");
    sigint = evsignal_new(s->base, SIGINT, on_signal, s->base);
    sigterm = evsignal_new(s->base, SIGTERM, on_signal, s->base);
    if (!sigint || !sigterm || evsignal_add(sigint, NULL) != 0 ||
        evsignal_add(sigterm, NULL) != 0)
        goto out;
    if (timeout_s) {
        deadline = evtimer_new(s->base, on_timeout, s->base);
        struct timeval tv = { (time_t)timeout_s, 0 };
        if (!deadline || evtimer_add(deadline, &tv) != 0)
            goto out;
    }
    event_base_dispatch(s->base);
    printf("merchant: %u requests, %u valid, %u accepted (%u distinct payments), %u failed on "
           "purpose, %u invalid\n",
           s->requests, s->valid, s->accepted, s->paid, s->failed_on_purpose, s->invalid);
    if (timed_out && !s->reached)
        fprintf(stderr, PROG ": %u of %u payments accepted within %u s\n", s->paid,
                s->exit_after, timeout_s);
    status = timed_out && !s->reached ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
    /* Answers still held: detach them so freeing the server does not call back into them. */
    while (s->pending) {
        Pending *p = s->pending;
        if (p->orphaned) {
            if (p->req)
                evhttp_request_free(p->req);
        } else {
            evhttp_connection_set_closecb(evhttp_request_get_connection(p->req), NULL, NULL);
        }
        pending_unlink_free(p);
    }
    if (sigint)
        event_free(sigint);
    if (sigterm)
        event_free(sigterm);
    if (deadline)
        event_free(deadline);
    if (s->http)
        evhttp_free(s->http);
    if (s->base)
        event_base_free(s->base);
    for (unsigned i = 0; i < SIM_NONCES; i++)
        oc_free(s->nonces[i]);
    for (unsigned i = 0; i < SIM_PAID; i++)
        oc_free(s->paid_txids[i]);
    fflush(stdout);
    return status;
}

int sim_merchant(int argc, char **argv)
{
    enum {
        O_LISTEN = 256, O_OCID, O_GATEWAY_KEY, O_GATEWAY_OCID, O_FORM, O_FAIL, O_FAIL_FIRST,
        O_DELAY, O_RETRY_AFTER, O_EXIT_AFTER, O_TIMEOUT, O_HELP,
    };
    static const struct option options[] = {
        { "listen", required_argument, NULL, O_LISTEN },
        { "ocid", required_argument, NULL, O_OCID },
        { "gateway-key", required_argument, NULL, O_GATEWAY_KEY },
        { "gateway-ocid", required_argument, NULL, O_GATEWAY_OCID },
        { "form", required_argument, NULL, O_FORM },
        { "fail", required_argument, NULL, O_FAIL },
        { "fail-first", required_argument, NULL, O_FAIL_FIRST },
        { "delay-ms", required_argument, NULL, O_DELAY },
        { "retry-after", required_argument, NULL, O_RETRY_AFTER },
        { "exit-after", required_argument, NULL, O_EXIT_AFTER },
        { "timeout", required_argument, NULL, O_TIMEOUT },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    static Sim s; /* large (remembered nonces); one per process */
    memset(&s, 0, sizeof(s));
    s.delay_ms = 15000;
    s.retry_after_s = 1;
    const char *listen = NULL, *gateway_key = NULL;
    bool have_ocid = false;
    unsigned timeout_s = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_LISTEN: listen = optarg; break;
        case O_OCID:
            if (sim_parse_ocid(PROG, "--ocid", optarg, &s.ocid) != 0)
                return CLI_EXIT_USAGE;
            have_ocid = true;
            break;
        case O_GATEWAY_KEY: gateway_key = optarg; break;
        case O_GATEWAY_OCID:
            if (sim_parse_ocid(PROG, "--gateway-ocid", optarg, &s.gateway_ocid) != 0)
                return CLI_EXIT_USAGE;
            s.have_gateway_ocid = true;
            break;
        case O_FORM:
            if (canon_form_parse(optarg, &s.form) != 0) {
                fprintf(stderr, PROG ": --form is strict or legacy\n");
                return CLI_EXIT_USAGE;
            }
            break;
        case O_FAIL: {
            size_t i;
            for (i = 0; i < OC_ARRAY_LEN(fail_modes); i++)
                if (strcmp(optarg, fail_modes[i].name) == 0)
                    break;
            if (i == OC_ARRAY_LEN(fail_modes)) {
                fprintf(stderr, PROG ": unknown --fail mode '%s' (--help lists them)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            s.fail = fail_modes[i].mode;
            break;
        }
        case O_FAIL_FIRST:
            if (sim_parse_uint(PROG, "--fail-first", optarg, 1000000, &s.fail_first) != 0)
                return CLI_EXIT_USAGE;
            break;
        case O_DELAY:
            if (sim_parse_uint(PROG, "--delay-ms", optarg, 600000, &s.delay_ms) != 0)
                return CLI_EXIT_USAGE;
            break;
        case O_RETRY_AFTER:
            if (sim_parse_uint(PROG, "--retry-after", optarg, 86400, &s.retry_after_s) != 0)
                return CLI_EXIT_USAGE;
            break;
        case O_EXIT_AFTER:
            if (sim_parse_uint(PROG, "--exit-after", optarg, 1000000, &s.exit_after) != 0)
                return CLI_EXIT_USAGE;
            break;
        case O_TIMEOUT:
            if (sim_parse_uint(PROG, "--timeout", optarg, 86400, &timeout_s) != 0)
                return CLI_EXIT_USAGE;
            break;
        case O_HELP:
            merchant_usage(stdout);
            return CLI_EXIT_OK;
        default:
            merchant_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    const char *missing = !listen ? "--listen" : !have_ocid ? "--ocid"
                          : !gateway_key ? "--gateway-key" : NULL;
    if (missing) {
        fprintf(stderr, PROG ": %s is required\n", missing);
        return CLI_EXIT_USAGE;
    }
    if (optind != argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    if (key_parse_public(gateway_key, strlen(gateway_key), &s.gateway_key) != 0) {
        fprintf(stderr, PROG ": --gateway-key is not a public key (128, 130 or 66 hex)\n");
        return CLI_EXIT_USAGE;
    }
    char host[256];
    unsigned port;
    if (parse_listen(listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, PROG ": --listen needs HOST:PORT or [IPV6]:PORT\n");
        return CLI_EXIT_USAGE;
    }
    if (timeout_s && !s.exit_after) {
        fprintf(stderr, PROG ": --timeout only goes with --exit-after\n");
        return CLI_EXIT_USAGE;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return serve(&s, host, port, timeout_s);
}
