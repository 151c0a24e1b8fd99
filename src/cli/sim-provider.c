/* `ocgate sim provider`: plays a settlement provider against a gateway. It can first create
 * the payment as a payment app (POST /payment/create), then signs a proof naming the payment
 * in to.reference and POSTs it to /transfer/webhook (or, with --settle, to /payment/settle),
 * printing every answer. --bad sends a faulty request on purpose; each fault has the answer a
 * correct gateway gives (design.md, "error codes"), and the exit status says whether the
 * gateway gave it. Requests go through the gateway's own outbound client (net/) on a private
 * event loop, one at a time. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "cli/cli.h"
#include "cli/sim.h"
#include "net/client.h"
#include "proto/amount.h"
#include "proto/canon.h"
#include "proto/proof.h"
#include "util/alloc.h"
#include "util/hex.h"

#define PROG "ocgate sim provider"
#define SIM_MAX_URL 1024
#define SIM_PRINT_MAX 4096       /* answer bytes printed */
#define SIM_STALE_S 3600         /* far outside any sane X-OC-Timestamp window */
#define SIM_FUTURE_S 3600        /* far past the proof timestamp skew the gateway allows */

typedef enum BadMode {
    BAD_NONE,
    BAD_SIGNATURE,
    BAD_REQUEST_SIGNATURE,
    BAD_AMOUNT,
    BAD_CURRENCY,
    BAD_STALE,
    BAD_REPLAY,
    BAD_REFERENCE,
    BAD_RECIPIENT,
    BAD_ISSUER,
    BAD_FUTURE,
    BAD_MALFORMED,
} BadMode;

/* What a correct gateway answers to each fault: an error code, or the "status" of a 200. */
static const struct {
    const char *name;
    BadMode mode;
    const char *webhook;
    const char *settle;
    const char *what;
} bad_modes[] = {
    { "none", BAD_NONE, "accepted", "completed", "a correct proof" },
    { "signature", BAD_SIGNATURE, "PROOF_SIGNATURE_INVALID", "PROOF_SIGNATURE_INVALID",
      "the proof is signed with a key that is not the provider's" },
    { "request-signature", BAD_REQUEST_SIGNATURE, "INVALID_SIGNATURE", "INVALID_SIGNATURE",
      "X-OC-Signature does not verify" },
    { "amount", BAD_AMOUNT, "AMOUNT_MISMATCH", "AMOUNT_MISMATCH",
      "the proof's amount is one more than --amount" },
    { "currency", BAD_CURRENCY, "CURRENCY_MISMATCH", "CURRENCY_MISMATCH",
      "the proof's currency is another than --currency" },
    { "stale", BAD_STALE, "TIMESTAMP_EXPIRED", "TIMESTAMP_EXPIRED",
      "X-OC-Timestamp is an hour old" },
    { "replay", BAD_REPLAY, "NONCE_REUSED", "NONCE_REUSED",
      "the same request (same nonce) is sent twice; the second answer counts" },
    { "reference", BAD_REFERENCE, "accepted", "INVALID_PROOF",
      "to.reference names no payment (the webhook is accepted and kept as an exception)" },
    { "recipient", BAD_RECIPIENT, "INVALID_PROOF", "INVALID_PROOF",
      "to.ocid is not the gateway" },
    { "issuer", BAD_ISSUER, "INVALID_PROOF", "ISSUER_NOT_ACCEPTED",
      "proof.issuer is not the sender" },
    { "future", BAD_FUTURE, "INVALID_PROOF", "INVALID_PROOF",
      "the proof's timestamp is an hour ahead" },
    { "malformed", BAD_MALFORMED, "BAD_REQUEST", "BAD_REQUEST",
      "the body has a duplicate key" },
};

typedef struct Options {
    const char *gateway;         /* base URL, e.g. http://127.0.0.1:8080/opencharge */
    int64_t gateway_ocid;
    bool have_gateway_ocid;
    const char *gateway_key;     /* optional 128/130/66-hex public key */
    int64_t ocid;
    bool have_ocid;
    const char *key_file;
    bool create;
    int64_t app_ocid;
    bool have_app;
    const char *app_key_file;
    int64_t merchant;
    bool have_merchant;
    const char *txid;
    const char *amount;
    const char *currency;
    const char *memo;
    const char *proof_txid;
    int64_t from_ocid;
    bool have_from;
    bool settle;
    unsigned bad;                /* index into bad_modes */
    const char *expect;
    const char *ca_file;
    unsigned timeout_ms;
} Options;

static void provider_usage(FILE *out)
{
    fputs("usage: ocgate sim provider --gateway URL --gateway-ocid N --ocid N --key FILE\n"
          "           (--txid TXID | --create --app-ocid N --app-key FILE --merchant N)\n"
          "           --amount A --currency C [options]\n"
          "  Signs a proof as settlement provider N (key in FILE, mode 0600) naming payment\n"
          "  TXID in to.reference and POSTs it to <URL>/transfer/webhook, printing the answer.\n"
          "  --create first creates the payment as payment app N (POST /payment/create).\n"
          "options:\n"
          "  --gateway URL        the gateway's public URL with its base path\n"
          "  --gateway-ocid N     the gateway's OCID (the proof's to.ocid)\n"
          "  --gateway-key HEX    check the gateway proof a settle answers with\n"
          "  --settle             submit the proof to /payment/settle instead (as the app\n"
          "                       with --app-key, else as the provider)\n"
          "  --memo TEXT          memo of the payment and the proof\n"
          "  --proof-txid ID      the provider's transaction id (default: random)\n"
          "  --from-ocid N        the proof's from.ocid (default: the app, else the provider)\n"
          "  --bad MODE           send a faulty request on purpose (see below)\n"
          "  --expect WHAT        the answer wanted: an error code or a 200 status such as\n"
          "                       accepted (default: what a correct gateway answers to MODE)\n"
          "  --ca-file FILE       CA bundle for an https gateway\n"
          "  --timeout-ms N       per request (default 10000)\n"
          "exit status: 0 the gateway answered as expected, 1 it did not or could not be\n"
          "reached, 2 usage error.\n"
          "bad modes (expected answer by webhook / by settle):\n",
          out);
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_modes); i++)
        fprintf(out, "  %-18s %s (%s / %s)\n", bad_modes[i].name, bad_modes[i].what,
                bad_modes[i].webhook, bad_modes[i].settle);
}

/* ---- one request at a time on a private loop ---- */

typedef struct Exchange {
    struct event_base *base;
    bool done;
    NetError error;
    char error_text[160];
    int status;
    char *body;
    size_t body_len;
} Exchange;

static void on_done(void *userdata, const HttpClientResponse *resp)
{
    Exchange *x = userdata;
    x->done = true;
    x->error = resp->error;
    snprintf(x->error_text, sizeof(x->error_text), "%s", resp->error_text);
    x->status = resp->status;
    if (resp->body_len > 0) {
        x->body = oc_strndup(resp->body, resp->body_len);
        x->body_len = x->body ? resp->body_len : 0;
    }
    event_base_loopbreak(x->base);
}

static void print_answer(const char *target, const Exchange *x)
{
    printf("  <- %s: HTTP %d ", target, x->status);
    size_t n = x->body_len < SIM_PRINT_MAX ? x->body_len : SIM_PRINT_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)x->body[i];
        putchar(c < 0x20 || c == 0x7f ? '?' : c);
    }
    printf("%s\n", n < x->body_len ? "..." : "");
}

/* POSTs body to url signed by (ocid, key), or with the given headers when fixed is not NULL
 * (a replay). Returns 0 with the answer in *x, or -1 after printing why not. */
static int post(HttpClient *client, struct event_base *base, const char *url,
                const char *target, const AuthOutboundHeaders *auth, const char *body,
                size_t body_len, Exchange *x)
{
    const char *headers[] = {
        "X-OC-ID", auth->ocid, "X-OC-Timestamp", auth->timestamp,
        "X-OC-Nonce", auth->nonce, "X-OC-Signature", auth->signature, NULL,
    };
    printf("  -> POST %s as %s: %.*s\n", target, auth->ocid, (int)(body_len < SIM_PRINT_MAX
                                                                   ? body_len
                                                                   : SIM_PRINT_MAX), body);
    *x = (Exchange){ .base = base };
    int r = http_client_post(client, url, headers, body, body_len, on_done, x);
    if (r != 0) {
        fprintf(stderr, PROG ": cannot send to %s: %s\n", url,
                r == -EINVAL ? "the URL cannot be used" : strerror(-r));
        return -1;
    }
    /* on_done breaks the loop; 1 (nothing pending) or -1 would otherwise spin */
    while (!x->done)
        if (event_base_dispatch(base) != 0)
            break;
    if (!x->done || x->error != NET_OK) {
        fprintf(stderr, PROG ": %s: no answer: %s\n", url,
                x->done ? x->error_text : "the event loop stopped");
        return -1;
    }
    print_answer(target, x);
    return 0;
}

static void exchange_deinit(Exchange *x)
{
    oc_free(x->body);
    x->body = NULL;
}

/* The answer's error.code, else its status, else "" (borrowed from doc). */
static const char *answer_word(const json_t *doc)
{
    const char *code = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));
    if (code)
        return code;
    const char *status = json_string_value(json_object_get(doc, "status"));
    return status ? status : "";
}

/* ---- building the requests ---- */

static int signed_headers(const PrivateKey *key, int64_t ocid, int64_t now, const char *target,
                          const char *body, size_t body_len, AuthOutboundHeaders *out)
{
    int r = auth_outbound_headers(key, ocid, now, "POST", target, body, body_len, out);
    if (r != 0)
        fprintf(stderr, PROG ": cannot sign the request to %s (%s)\n", target,
                r == -EINVAL ? "a path that cannot be signed" : strerror(-r));
    return r;
}

/* The strict canonical text of doc, which it takes. NULL (after a message) on failure. */
static char *body_text(json_t *doc, size_t *len)
{
    char *out = NULL;
    int r = doc ? canon_write(doc, CANON_STRICT, &out, len) : -ENOMEM;
    json_decref(doc);
    if (r != 0) {
        fprintf(stderr, PROG ": cannot build a request body (%s)\n",
                r == -ENOMEM ? "out of memory" : "a value that cannot be signed");
        return NULL;
    }
    return out;
}

/* "<amount + 1>" in out: a numerically different amount for --bad amount. */
static int amount_plus_one(const char *text, char out[AMOUNT_MAX_TEXT + 2])
{
    Amount a;
    if (amount_parse(text, strlen(text), &a) != 0 || a.units >= 999999999999999999ull)
        return -1;
    a.units++;
    amount_format_normal(&a, out);
    return 0;
}

static json_t *build_proof(const Options *o, const char *payment_txid, int64_t now,
                           const char *proof_txid)
{
    char amount[AMOUNT_MAX_TEXT + 2];
    snprintf(amount, sizeof(amount), "%s", o->amount);
    const char *currency = o->currency;
    BadMode bad = bad_modes[o->bad].mode;
    if (bad == BAD_AMOUNT && amount_plus_one(o->amount, amount) != 0)
        return NULL;
    if (bad == BAD_CURRENCY)
        currency = strcmp(o->currency, "XTS") == 0 ? "XXX" : "XTS"; /* ISO 4217 test codes */
    int64_t issuer = o->ocid;
    if (bad == BAD_ISSUER)
        issuer = o->ocid == 0 ? 1 : 0;
    int64_t to = o->gateway_ocid;
    if (bad == BAD_RECIPIENT)
        to = o->gateway_ocid + 1;
    char reference[64];
    if (bad == BAD_REFERENCE) {
        uint8_t rnd[16];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return NULL;
        memcpy(reference, "pay_", 4);
        hex_encode(rnd, sizeof(rnd), reference + 4);
        payment_txid = reference;
    }
    int64_t from = o->have_from ? o->from_ocid : o->have_app ? o->app_ocid : o->ocid;
    json_t *p = json_pack("{s:s, s:I, s:{s:I}, s:{s:I, s:s}, s:s, s:s, s:I}",
                          "txid", proof_txid, "issuer", (json_int_t)issuer,
                          "from", "ocid", (json_int_t)from,
                          "to", "ocid", (json_int_t)to, "reference", payment_txid,
                          "amount", amount, "currency", currency,
                          "timestamp", (json_int_t)(bad == BAD_FUTURE ? now + SIM_FUTURE_S : now));
    if (p && o->memo && json_object_set_new(p, "memo", json_string(o->memo)) != 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}

/* Creates the payment as the app; returns its txid (oc_free) or NULL after a message. */
static char *create_payment(const Options *o, HttpClient *client, struct event_base *base,
                            const PrivateKey *app_key, const char *base_url,
                            const char *base_target)
{
    char url[SIM_MAX_URL + 32], target[SIM_MAX_URL + 32];
    snprintf(url, sizeof(url), "%s/payment/create", base_url);
    snprintf(target, sizeof(target), "%s/payment/create", base_target);
    json_t *req = json_pack("{s:I, s:s, s:s}", "to", (json_int_t)o->merchant, "amount",
                            o->amount, "currency", o->currency);
    if (req && o->memo && json_object_set_new(req, "memo", json_string(o->memo)) != 0) {
        json_decref(req);
        req = NULL;
    }
    size_t len;
    char *body = body_text(req, &len);
    if (!body)
        return NULL;
    AuthOutboundHeaders auth;
    Exchange x = { 0 };
    char *txid = NULL;
    if (signed_headers(app_key, o->app_ocid, (int64_t)time(NULL), target, body, len, &auth) == 0 &&
        post(client, base, url, target, &auth, body, len, &x) == 0) {
        json_t *doc = x.body ? json_loadb(x.body, x.body_len, 0, NULL) : NULL;
        const char *t = json_string_value(json_object_get(doc, "txid"));
        if (x.status == 200 && t) {
            txid = oc_strndup(t, strlen(t));
            printf("payment %s created\n", t);
        } else {
            fprintf(stderr, PROG ": the gateway did not create the payment (HTTP %d %s)\n",
                    x.status, answer_word(doc));
        }
        json_decref(doc);
    }
    exchange_deinit(&x);
    oc_free(body);
    return txid;
}

/* Checks the gateway proof of a settle answer against --gateway-key. */
static bool gateway_proof_ok(const Options *o, const json_t *doc)
{
    PublicKey pk;
    if (key_parse_public(o->gateway_key, strlen(o->gateway_key), &pk) != 0)
        return false;
    Proof proof;
    const char *sig;
    size_t sig_len;
    ProofError perr;
    if (proof_parse_envelope(doc, &proof, &sig, &sig_len, &perr) != 0) {
        printf("the gateway proof in the answer is malformed: %s: %s\n", perr.field,
               perr.reason);
        return false;
    }
    bool ok = proof_verify(&proof, &pk, CANON_STRICT, sig, sig_len) == 0;
    printf("gateway proof signature %s\n", ok ? "valid" : "INVALID");
    return ok;
}

static int run(const Options *o, const PrivateKey *key, const PrivateKey *app_key)
{
    /* base URL without trailing slashes, and its path: the signed target prefix */
    char base_url[SIM_MAX_URL];
    size_t blen = strlen(o->gateway);
    while (blen > 0 && o->gateway[blen - 1] == '/')
        blen--;
    size_t scheme = strncmp(o->gateway, "https://", 8) == 0  ? 8
                    : strncmp(o->gateway, "http://", 7) == 0 ? 7
                                                             : 0;
    if (!scheme || blen <= scheme || blen >= sizeof(base_url) - 32) {
        fprintf(stderr, PROG ": --gateway needs an http:// or https:// URL\n");
        return CLI_EXIT_USAGE;
    }
    memcpy(base_url, o->gateway, blen);
    base_url[blen] = '\0';
    const char *slash = strchr(base_url + scheme, '/');
    const char *base_target = slash ? slash : "";

    struct event_base *base = event_base_new();
    HttpClientOptions copt = {
        .ca_file = o->ca_file,
        .connect_timeout_ms = o->timeout_ms,
        .total_timeout_ms = o->timeout_ms,
        /* The operator names the gateway on the command line; the SSRF guard protects a
         * gateway from URLs that participants supply, which is not the case here. */
        .allow_loopback = true,
        .allow_private = true,
    };
    HttpClient *client = base ? http_client_new(base, &copt) : NULL;
    int status = CLI_EXIT_FAILURE;
    char *created = NULL, *body = NULL;
    Exchange x = { 0 };
    json_t *doc = NULL;
    if (!client) {
        fprintf(stderr, PROG ": cannot start the HTTP client\n");
        goto out;
    }
    const char *payment = o->txid;
    if (o->create) {
        created = create_payment(o, client, base, app_key, base_url, base_target);
        if (!created)
            goto out;
        payment = created;
    }

    char proof_txid[64];
    if (o->proof_txid) {
        snprintf(proof_txid, sizeof(proof_txid), "%s", o->proof_txid);
    } else {
        uint8_t rnd[12];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            goto out;
        memcpy(proof_txid, "sim_", 4);
        hex_encode(rnd, sizeof(rnd), proof_txid + 4);
    }
    int64_t now = (int64_t)time(NULL);
    BadMode bad = bad_modes[o->bad].mode;
    json_t *proof = build_proof(o, payment, now, proof_txid);
    if (!proof) {
        fprintf(stderr, PROG ": cannot build the proof (is --amount below 10^18 - 1?)\n");
        goto out;
    }
    /* --bad signature: a fresh key nobody registered signs instead of the provider's. */
    PrivateKey stranger;
    const PrivateKey *signer = key;
    if (bad == BAD_SIGNATURE) {
        if (key_generate(&stranger) != 0) {
            json_decref(proof);
            goto out;
        }
        signer = &stranger;
    }
    char sig[SIG_HEX_LEN + 1];
    int r = proof_sign(proof, signer, CANON_STRICT, sig);
    if (signer == &stranger)
        key_private_wipe(&stranger);
    if (r != 0) {
        json_decref(proof);
        fprintf(stderr, PROG ": cannot sign the proof (code %d)\n", r);
        goto out;
    }
    printf("proof %s for payment %s signed by %" PRId64 "%s\n", proof_txid,
           bad == BAD_REFERENCE ? json_string_value(json_object_get(json_object_get(proof, "to"),
                                                                    "reference"))
                                : payment,
           o->ocid, bad == BAD_SIGNATURE ? " (with a stranger's key, on purpose)" : "");

    json_t *env = json_pack("{s:o, s:s}", "proof", proof, "signature", sig);
    if (env && o->settle && json_object_set_new(env, "txid", json_string(payment)) != 0) {
        json_decref(env);
        env = NULL;
    }
    size_t len;
    body = body_text(env, &len);
    if (!body)
        goto out;
    if (bad == BAD_MALFORMED) {
        /* The same member twice: a reader that keeps either copy would disagree with one
         * that keeps the other about what was signed. */
        size_t extra = strlen(sig) + 20;
        char *dup = oc_malloc(len + extra);
        if (!dup)
            goto out;
        int n = snprintf(dup, len + extra, "%.*s,\"signature\":\"%s\"}", (int)(len - 1), body,
                         sig);
        oc_free(body);
        body = dup;
        len = (size_t)n;
    }

    char url[SIM_MAX_URL + 32], target[SIM_MAX_URL + 32];
    const char *path = o->settle ? "/payment/settle" : "/transfer/webhook";
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    snprintf(target, sizeof(target), "%s%s", base_target, path);
    /* Settle as the app when its key is at hand, else as the issuer; webhooks always come
     * from the issuer. */
    const PrivateKey *sender_key = o->settle && app_key ? app_key : key;
    int64_t sender = o->settle && app_key ? o->app_ocid : o->ocid;
    AuthOutboundHeaders auth;
    if (signed_headers(sender_key, sender, bad == BAD_STALE ? now - SIM_STALE_S : now, target,
                       body, len, &auth) != 0)
        goto out;
    if (bad == BAD_REQUEST_SIGNATURE) /* one hex digit of r changed */
        auth.signature[10] = auth.signature[10] == '0' ? '1' : '0';
    if (post(client, base, url, target, &auth, body, len, &x) != 0)
        goto out;
    if (bad == BAD_REPLAY) {
        printf("sending the same request again (same nonce)\n");
        exchange_deinit(&x);
        if (post(client, base, url, target, &auth, body, len, &x) != 0)
            goto out;
    }

    doc = x.body ? json_loadb(x.body, x.body_len, 0, NULL) : NULL;
    const char *want = o->expect ? o->expect
                       : o->settle ? bad_modes[o->bad].settle
                                   : bad_modes[o->bad].webhook;
    const char *got = answer_word(doc);
    bool ok = strcmp(got, want) == 0;
    if (ok && o->gateway_key && strcmp(got, "completed") == 0)
        ok = gateway_proof_ok(o, doc);
    printf("%s: wanted %s, got HTTP %d %s\n", ok ? "as expected" : "NOT AS EXPECTED", want,
           x.status, got[0] ? got : "(no status or error code)");
    status = ok ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
out:
    json_decref(doc);
    exchange_deinit(&x);
    oc_free(body);
    oc_free(created);
    http_client_free(client);
    if (base) {
        event_base_loop(base, EVLOOP_NONBLOCK); /* lets the resolver go (net/client.h) */
        event_base_free(base);
    }
    fflush(stdout);
    return status;
}

int sim_provider(int argc, char **argv)
{
    enum {
        O_GATEWAY = 256, O_GATEWAY_OCID, O_GATEWAY_KEY, O_OCID, O_KEY, O_CREATE, O_APP_OCID,
        O_APP_KEY, O_MERCHANT, O_TXID, O_AMOUNT, O_CURRENCY, O_MEMO, O_PROOF_TXID, O_FROM,
        O_SETTLE, O_BAD, O_EXPECT, O_CA, O_TIMEOUT, O_HELP,
    };
    static const struct option options[] = {
        { "gateway", required_argument, NULL, O_GATEWAY },
        { "gateway-ocid", required_argument, NULL, O_GATEWAY_OCID },
        { "gateway-key", required_argument, NULL, O_GATEWAY_KEY },
        { "ocid", required_argument, NULL, O_OCID },
        { "key", required_argument, NULL, O_KEY },
        { "create", no_argument, NULL, O_CREATE },
        { "app-ocid", required_argument, NULL, O_APP_OCID },
        { "app-key", required_argument, NULL, O_APP_KEY },
        { "merchant", required_argument, NULL, O_MERCHANT },
        { "txid", required_argument, NULL, O_TXID },
        { "amount", required_argument, NULL, O_AMOUNT },
        { "currency", required_argument, NULL, O_CURRENCY },
        { "memo", required_argument, NULL, O_MEMO },
        { "proof-txid", required_argument, NULL, O_PROOF_TXID },
        { "from-ocid", required_argument, NULL, O_FROM },
        { "settle", no_argument, NULL, O_SETTLE },
        { "bad", required_argument, NULL, O_BAD },
        { "expect", required_argument, NULL, O_EXPECT },
        { "ca-file", required_argument, NULL, O_CA },
        { "timeout-ms", required_argument, NULL, O_TIMEOUT },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    Options o = { .timeout_ms = 10000 };
    int opt;
    optind = 1;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_GATEWAY: o.gateway = optarg; break;
        case O_GATEWAY_OCID:
            if (sim_parse_ocid(PROG, "--gateway-ocid", optarg, &o.gateway_ocid) != 0)
                return CLI_EXIT_USAGE;
            o.have_gateway_ocid = true;
            break;
        case O_GATEWAY_KEY: o.gateway_key = optarg; break;
        case O_OCID:
            if (sim_parse_ocid(PROG, "--ocid", optarg, &o.ocid) != 0)
                return CLI_EXIT_USAGE;
            o.have_ocid = true;
            break;
        case O_KEY: o.key_file = optarg; break;
        case O_CREATE: o.create = true; break;
        case O_APP_OCID:
            if (sim_parse_ocid(PROG, "--app-ocid", optarg, &o.app_ocid) != 0)
                return CLI_EXIT_USAGE;
            o.have_app = true;
            break;
        case O_APP_KEY: o.app_key_file = optarg; break;
        case O_MERCHANT:
            if (sim_parse_ocid(PROG, "--merchant", optarg, &o.merchant) != 0)
                return CLI_EXIT_USAGE;
            o.have_merchant = true;
            break;
        case O_TXID: o.txid = optarg; break;
        case O_AMOUNT: o.amount = optarg; break;
        case O_CURRENCY: o.currency = optarg; break;
        case O_MEMO: o.memo = optarg; break;
        case O_PROOF_TXID: o.proof_txid = optarg; break;
        case O_FROM:
            if (sim_parse_ocid(PROG, "--from-ocid", optarg, &o.from_ocid) != 0)
                return CLI_EXIT_USAGE;
            o.have_from = true;
            break;
        case O_SETTLE: o.settle = true; break;
        case O_BAD: {
            size_t i;
            for (i = 0; i < OC_ARRAY_LEN(bad_modes); i++)
                if (strcmp(optarg, bad_modes[i].name) == 0)
                    break;
            if (i == OC_ARRAY_LEN(bad_modes)) {
                fprintf(stderr, PROG ": unknown --bad mode '%s' (--help lists them)\n", optarg);
                return CLI_EXIT_USAGE;
            }
            o.bad = (unsigned)i;
            break;
        }
        case O_EXPECT: o.expect = optarg; break;
        case O_CA: o.ca_file = optarg; break;
        case O_TIMEOUT:
            if (sim_parse_uint(PROG, "--timeout-ms", optarg, 600000, &o.timeout_ms) != 0)
                return CLI_EXIT_USAGE;
            break;
        case O_HELP:
            provider_usage(stdout);
            return CLI_EXIT_OK;
        default:
            provider_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    const char *missing = !o.gateway              ? "--gateway"
                          : !o.have_gateway_ocid  ? "--gateway-ocid"
                          : !o.have_ocid          ? "--ocid"
                          : !o.key_file           ? "--key"
                          : !o.amount             ? "--amount"
                          : !o.currency           ? "--currency"
                          : !o.txid && !o.create  ? "--txid or --create"
                          : o.create && !o.have_app ? "--app-ocid (with --create)"
                          : o.create && !o.app_key_file ? "--app-key (with --create)"
                          : o.create && !o.have_merchant ? "--merchant (with --create)"
                          : o.app_key_file && !o.have_app ? "--app-ocid (with --app-key)"
                                                          : NULL;
    if (missing || optind != argc || (o.txid && o.create)) {
        if (missing)
            fprintf(stderr, PROG ": %s is required\n", missing);
        else if (o.txid && o.create)
            fprintf(stderr, PROG ": give --txid or --create, not both\n");
        else
            fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return CLI_EXIT_USAGE;
    }
    Amount a;
    if (amount_parse(o.amount, strlen(o.amount), &a) != 0 ||
        currency_check(o.currency, strlen(o.currency)) != 0) {
        fprintf(stderr, PROG ": --amount must be a decimal such as 15.00 and --currency 3 to 10 "
                        "of A-Z and 0-9\n");
        return CLI_EXIT_USAGE;
    }
    PublicKey check;
    if (o.gateway_key && key_parse_public(o.gateway_key, strlen(o.gateway_key), &check) != 0) {
        fprintf(stderr, PROG ": --gateway-key is not a public key (128, 130 or 66 hex)\n");
        return CLI_EXIT_USAGE;
    }
    if (o.txid && (strlen(o.txid) == 0 || strlen(o.txid) > PROOF_MAX_REFERENCE)) {
        fprintf(stderr, PROG ": --txid must be 1 to %d characters\n", PROOF_MAX_REFERENCE);
        return CLI_EXIT_USAGE;
    }
    if (o.proof_txid && (strlen(o.proof_txid) == 0 || strlen(o.proof_txid) > 63)) {
        fprintf(stderr, PROG ": --proof-txid must be 1 to 63 characters\n");
        return CLI_EXIT_USAGE;
    }

    PrivateKey key, app_key;
    if (sim_load_key(PROG, "provider", o.key_file, &key) != 0)
        return CLI_EXIT_FAILURE;
    bool have_app_key = false;
    if (o.app_key_file) {
        if (sim_load_key(PROG, "payment app", o.app_key_file, &app_key) != 0) {
            key_private_wipe(&key);
            return CLI_EXIT_FAILURE;
        }
        have_app_key = true;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int status = run(&o, &key, have_app_key ? &app_key : NULL);
    key_private_wipe(&key);
    if (have_app_key)
        key_private_wipe(&app_key);
    return status;
}
