/* Settlement decisions (settle.h). Everything that can be decided without the database —
 * JSON, proof fields, roles, signatures, recipient — is decided here first; the outcome that
 * needs the database is decided by one SQL function call per request (migrations/
 * 0002_settlement.sql), which also records the nonce. Responses are rendered from the stored
 * outcome, so a proof submitted again gets the same answer it got the first time. */
#include "settle/settle.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "obs/metrics.h"
#include "proto/amount.h"
#include "proto/canon.h"
#include "proto/json.h"
#include "proto/proof.h"
#include "util/alloc.h"
#include "util/hex.h"
#include "util/utf8.h"

#define SETTLE_MAX_IDEMPOTENCY_KEY 255
#define SETTLE_MAX_ORDER_ID 128
#define SETTLE_MAINTENANCE_INTERVAL_S 60

const DbStatement settle_statements[] = {
    { "settle_nonce", "SELECT oc_nonce($1::bigint, $2::text)", 2 },
    { "settle_create",
      "SELECT result, status, body FROM oc_payment_create($1::bigint, $2, $3, $4, $5, "
      "$6::bigint, $7::numeric, $8, $9, $10, $11, $12, $13::bigint, $14)", 14 },
    { "settle_proof",
      "SELECT result, outcome, payment_txid, gateway_proof FROM oc_settle_proof($1::bigint, "
      "$2, $3, $4, $5, $6::bigint, $7, $8, $9::numeric, $10, $11, $12, $13, $14, $15, "
      "$16::bigint, $17::bigint)", 17 },
    { "settle_verify",
      "SELECT result, status, amount_text, currency, created_at, expires_at, gateway_proof "
      "FROM oc_verify($1::bigint, $2, $3, $4::boolean)", 4 },
    { "settle_prune", "SELECT oc_prune($1::integer)", 1 },
};
const size_t settle_statement_count = OC_ARRAY_LEN(settle_statements);

static const char *const gateway_capabilities[] = {
    "payment.create", "payment.settle", "transfer.webhook", "verify.txid",
};

typedef enum CallKind {
    CALL_REFUSE,      /* nonce only, then a fixed error */
    CALL_CAPABILITIES,
    CALL_CREATE,
    CALL_PROOF,
    CALL_VERIFY,
} CallKind;

/* One request's state while its database call is in flight. */
typedef struct Call {
    SettleCtx *ctx;
    SettleDone done;
    void *ud;
    CallKind kind;
    OcErrorCode refuse_code;        /* CALL_REFUSE, or a proof refusal */
    char message[200];
    char request_id[40];
    int64_t caller;
    int64_t now;
    /* CALL_CREATE: the 200 answer prepared before the call. */
    char *create_body;
    size_t create_body_len;
    /* CALL_PROOF */
    int via_settle;
    int64_t issuer;
    char *proof_txid;
    CanonForm form;
    /* CALL_VERIFY */
    char *txid;
    /* CALL_CAPABILITIES: the answer, built before the call (it needs the snapshot). */
    char *caps_body;
    size_t caps_body_len;
} Call;

static void call_free(Call *c)
{
    if (!c)
        return;
    oc_free(c->create_body);
    oc_free(c->proof_txid);
    oc_free(c->txid);
    oc_free(c->caps_body);
    oc_free(c);
}

static Call *call_new(SettleCtx *ctx, const SettleRequest *req, CallKind kind, SettleDone done,
                      void *ud)
{
    Call *c = oc_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ctx = ctx;
    c->done = done;
    c->ud = ud;
    c->kind = kind;
    c->caller = req->caller->ocid;
    c->now = req->now;
    snprintf(c->request_id, sizeof(c->request_id), "%s", req->request_id ? req->request_id : "");
    return c;
}

static const char fallback_unavailable[] =
    "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"out of memory\"}}";

int settle_error_body(OcErrorCode code, const char *message, char **body, size_t *body_len,
                      int *owned)
{
    json_t *err = json_pack("{s:{s:s,s:s}}", "error", "code", oc_error_name(code), "message",
                            message ? message : oc_error_name(code));
    int r = err ? canon_write(err, CANON_STRICT, body, body_len) : -ENOMEM;
    json_decref(err);
    if (r != 0) {
        *body = (char *)fallback_unavailable;
        *body_len = sizeof(fallback_unavailable) - 1;
        *owned = 0;
        return 503;
    }
    *owned = 1;
    return oc_error_http_status(code);
}

static void finish_error(Call *c, OcErrorCode code, const char *message)
{
    char *body;
    size_t len;
    int owned;
    int status = settle_error_body(code, message, &body, &len, &owned);
    c->done(c->ud, status, body, len);
    if (owned)
        oc_free(body);
    call_free(c);
}

/* Serialises obj (stolen) as the answer. */
static void finish_json(Call *c, int status, json_t *obj)
{
    char *body = NULL;
    size_t len = 0;
    int r = obj ? canon_write(obj, CANON_STRICT, &body, &len) : -ENOMEM;
    json_decref(obj);
    if (r != 0) {
        finish_error(c, OC_ERR_INTERNAL, "could not encode the answer");
        return;
    }
    c->done(c->ud, status, body, len);
    oc_free(body);
    call_free(c);
}

static void finish_db_error(Call *c, DbError err, const PGresult *res)
{
    if (err == DB_E_QUERY) {
        char state[16];
        const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        snprintf(state, sizeof(state), "%s", s ? s : "?");
        log_json(LOG_ERROR, "database error", "\"request_id\":\"%s\",\"sqlstate\":\"%s\"",
                 c->request_id, state);
        finish_error(c, OC_ERR_INTERNAL, "internal error");
        return;
    }
    finish_error(c, OC_ERR_UNAVAILABLE, "the database is unavailable; retry later");
}

static void call_oom(SettleDone done, void *ud)
{
    done(ud, 503, fallback_unavailable, sizeof(fallback_unavailable) - 1);
}

static void submit(Call *c, const char *stmt, int n, const char *const *params, DbCallback cb)
{
    if (db_pool_query(c->ctx->db, stmt, n, params, cb, c) != 0) {
        /* Only an unknown statement name fails here: a programming error. */
        log_json(LOG_ERROR, "statement not prepared", "\"statement\":\"%s\"", stmt);
        SettleDone done = c->done;
        void *ud = c->ud;
        call_free(c);
        call_oom(done, ud);
    }
}

/* ---- nonce-only calls: refusals after authentication, capabilities ---- */

static void on_nonce(void *userdata, DbError err, const PGresult *res)
{
    Call *c = userdata;
    if (err != DB_OK) {
        finish_db_error(c, err, res);
        return;
    }
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        finish_error(c, OC_ERR_NONCE_REUSED, "nonce already used");
        return;
    }
    if (c->kind == CALL_CAPABILITIES) {
        c->done(c->ud, 200, c->caps_body, c->caps_body_len);
        call_free(c);
        return;
    }
    finish_error(c, c->refuse_code, c->message);
}

static void submit_nonce_only(Call *c, const SettleRequest *req)
{
    char ocid[24];
    snprintf(ocid, sizeof(ocid), "%" PRId64, req->caller->ocid);
    const char *params[2] = { ocid, req->nonce };
    submit(c, "settle_nonce", 2, params, on_nonce);
}

static void refuse(Call *c, const SettleRequest *req, OcErrorCode code, const char *fmt, ...)
    OC_PRINTF(4, 5);
static void refuse(Call *c, const SettleRequest *req, OcErrorCode code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof(c->message), fmt, ap);
    va_end(ap);
    c->kind = CALL_REFUSE;
    c->refuse_code = code;
    submit_nonce_only(c, req);
}

void settle_refuse(SettleCtx *ctx, const SettleRequest *req, OcErrorCode code,
                   const char *message, SettleDone done, void *ud)
{
    Call *c = call_new(ctx, req, CALL_REFUSE, done, ud);
    if (!c) {
        call_oom(done, ud);
        return;
    }
    refuse(c, req, code, "%s", message ? message : oc_error_name(code));
}

/* ---- small JSON helpers ---- */

static json_t *accepted_providers(const DirSnapshot *dir)
{
    json_t *arr = json_array();
    size_t n = dirsnap_count_with_role(dir, ROLE_SETTLEMENT_PROVIDER);
    for (size_t i = 0; arr && i < n; i++) {
        const Participant *p = dirsnap_with_role_at(dir, ROLE_SETTLEMENT_PROVIDER, i);
        if (json_array_append_new(arr, json_integer(p->ocid)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *string_array(char *const *items, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, json_string(items[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *capability_array(void)
{
    return string_array((char *const *)gateway_capabilities, OC_ARRAY_LEN(gateway_capabilities));
}

static json_t *settlement_object(const Config *cfg, const DirSnapshot *dir)
{
    return json_pack("{s:o,s:o}", "currencies", string_array(cfg->currencies, cfg->n_currencies),
                     "accepts", accepted_providers(dir));
}

/* A string member of at most max bytes without NUL: 1 = absent, 0 = ok, -1 = invalid. */
static int optional_string(const json_t *obj, const char *key, size_t max, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v)
        return 1;
    if (!json_is_string(v))
        return -1;
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len == 0 || len > max || memchr(s, '\0', len))
        return -1;
    *out = s;
    return 0;
}

static int currency_configured(const Config *cfg, const char *currency)
{
    for (size_t i = 0; i < cfg->n_currencies; i++)
        if (strcmp(cfg->currencies[i], currency) == 0)
            return 1;
    return 0;
}

/* Reads the body as a strict JSON object; on refusal answers BAD_REQUEST (naming the byte
 * offset and reason) through the nonce-recording path and returns NULL. */
static json_t *read_body_or_refuse(Call *c, const SettleRequest *req)
{
    JsonReadError jerr;
    json_t *root = NULL;
    int r = json_read_strict(req->body, req->body_len, JSON_READ_OBJECT, &root, &jerr);
    if (r == 0)
        return root;
    if (r < 0)
        refuse(c, req, OC_ERR_UNAVAILABLE, "out of memory");
    else
        refuse(c, req, OC_ERR_BAD_REQUEST, "body refused at byte %zu: %s", jerr.offset,
               jerr.reason);
    return NULL;
}

/* ---- capabilities ---- */

void settle_capabilities(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud)
{
    Call *c = call_new(ctx, req, CALL_CAPABILITIES, done, ud);
    if (!c) {
        call_oom(done, ud);
        return;
    }
    json_t *obj = json_pack("{s:I,s:s,s:o,s:o}", "ocid", (json_int_t)ctx->cfg->ocid, "name",
                            ctx->cfg->name, "capabilities", capability_array(), "settlement",
                            settlement_object(ctx->cfg, req->dir));
    int r = obj ? canon_write(obj, CANON_STRICT, &c->caps_body, &c->caps_body_len) : -ENOMEM;
    json_decref(obj);
    if (r != 0) {
        SettleDone d = c->done;
        call_free(c);
        call_oom(d, ud);
        return;
    }
    submit_nonce_only(c, req);
}

/* ---- metadata ---- */

int settle_metadata(const Config *cfg, const PrivateKey *key, const DirSnapshot *dir,
                    char **body, size_t *body_len)
{
    char pub[KEY_PUBLIC_HEX_LEN + 1];
    key_format_public(&key->pub, pub);
    json_t *config = json_pack("{s:s,s:s,s:o,s:o}", "publicKey", pub, "endpoint",
                               cfg->public_url, "capabilities", capability_array(), "settlement",
                               settlement_object(cfg, dir));
    if (!config)
        return -ENOMEM;
    char sig[SIG_HEX_LEN + 1];
    int r = proof_sign(config, key, CANON_STRICT, sig);
    if (r != 0) {
        json_decref(config);
        return r < 0 ? r : -EINVAL;
    }
    json_t *doc = json_pack("{s:s,s:s,s:I,s:o,s:s}", "opencharge", "0.1", "name", cfg->name,
                            "ocid", (json_int_t)cfg->ocid, "config", config, "signature", sig);
    if (!doc)
        return -ENOMEM;
    r = canon_write(doc, CANON_STRICT, body, body_len);
    json_decref(doc);
    return r == 0 ? 0 : (r < 0 ? r : -EINVAL);
}

/* ---- /payment/create ---- */

static void on_create(void *userdata, DbError err, const PGresult *res)
{
    Call *c = userdata;
    if (err != DB_OK) {
        finish_db_error(c, err, res);
        return;
    }
    const char *result = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
    if (strcmp(result, "created") == 0) {
        log_json(LOG_INFO, "payment created", "\"request_id\":\"%s\",\"app\":%" PRId64,
                 c->request_id, c->caller);
        c->done(c->ud, 200, c->create_body, c->create_body_len);
        call_free(c);
    } else if (strcmp(result, "replay") == 0) {
        log_json(LOG_INFO, "idempotent replay", "\"request_id\":\"%s\",\"app\":%" PRId64,
                 c->request_id, c->caller);
        c->done(c->ud, atoi(PQgetvalue(res, 0, 1)), PQgetvalue(res, 0, 2),
                (size_t)PQgetlength(res, 0, 2));
        call_free(c);
    } else if (strcmp(result, "nonce_reused") == 0) {
        finish_error(c, OC_ERR_NONCE_REUSED, "nonce already used");
    } else if (strcmp(result, "merchant_not_registered") == 0) {
        finish_error(c, OC_ERR_MERCHANT_NOT_REGISTERED, "the merchant is not registered");
    } else if (strcmp(result, "idempotency_conflict") == 0) {
        finish_error(c, OC_ERR_IDEMPOTENCY_CONFLICT,
                     "this Idempotency-Key was used with a different body");
    } else {
        finish_error(c, OC_ERR_INTERNAL, "internal error");
    }
}

static int new_payment_txid(char out[37])
{
    uint8_t raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    memcpy(out, "pay_", 4);
    hex_encode(raw, sizeof(raw), out + 4);
    return 0;
}

static int idempotency_key_valid(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > SETTLE_MAX_IDEMPOTENCY_KEY)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
            return 0;
    return 1;
}

void settle_payment_create(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud)
{
    const Config *cfg = ctx->cfg;
    Call *c = call_new(ctx, req, CALL_CREATE, done, ud);
    if (!c) {
        call_oom(done, ud);
        return;
    }
    if (!(req->caller->roles & ROLE_PAYMENT_APP)) {
        refuse(c, req, OC_ERR_UNAUTHORIZED, "only payment apps may create payments");
        return;
    }
    if (req->idempotency_key && !idempotency_key_valid(req->idempotency_key)) {
        refuse(c, req, OC_ERR_BAD_REQUEST,
               "Idempotency-Key must be 1..255 printable ASCII characters");
        return;
    }
    json_t *root = read_body_or_refuse(c, req);
    if (!root)
        return;

    const json_t *to = json_object_get(root, "to");
    const json_t *amount_v = json_object_get(root, "amount");
    const json_t *currency_v = json_object_get(root, "currency");
    const json_t *expires_v = json_object_get(root, "expiresAt");
    const json_t *order = json_object_get(root, "order");
    const char *reference, *memo, *order_id = NULL;
    Amount amount;
    int64_t expires_at = req->now + (int64_t)cfg->payment_lifetime_s;

    if (!json_is_integer(to) || json_integer_value(to) < 0) {
        refuse(c, req, OC_ERR_BAD_REQUEST, "to must be the merchant's OCID (an integer)");
        goto out;
    }
    if (!json_is_string(amount_v) ||
        amount_parse(json_string_value(amount_v), json_string_length(amount_v), &amount) != 0) {
        refuse(c, req, OC_ERR_BAD_REQUEST,
               "amount must be a decimal string greater than zero, e.g. \"15.00\"");
        goto out;
    }
    if (!json_is_string(currency_v) ||
        currency_check(json_string_value(currency_v), json_string_length(currency_v)) != 0 ||
        !currency_configured(cfg, json_string_value(currency_v))) {
        refuse(c, req, OC_ERR_BAD_REQUEST, "currency is not one this gateway accepts");
        goto out;
    }
    if (optional_string(root, "reference", PROOF_MAX_REFERENCE, &reference) < 0) {
        refuse(c, req, OC_ERR_BAD_REQUEST, "reference must be a string of 1..256 bytes");
        goto out;
    }
    if (optional_string(root, "memo", PROOF_MAX_MEMO, &memo) < 0) {
        refuse(c, req, OC_ERR_BAD_REQUEST, "memo must be a string of 1..1024 bytes");
        goto out;
    }
    if (expires_v) {
        if (!json_is_integer(expires_v) || json_integer_value(expires_v) <= req->now ||
            json_integer_value(expires_v) > req->now + (int64_t)cfg->max_payment_lifetime_s) {
            refuse(c, req, OC_ERR_BAD_REQUEST,
                   "expiresAt must be Unix seconds in the future, at most %u s ahead",
                   cfg->max_payment_lifetime_s);
            goto out;
        }
        expires_at = json_integer_value(expires_v);
    }
    if (order) {
        const json_t *urls = json_object_get(order, "urls");
        if (!json_is_object(order) ||
            optional_string(order, "id", SETTLE_MAX_ORDER_ID, &order_id) != 0 ||
            (urls && !json_is_array(urls))) {
            refuse(c, req, OC_ERR_BAD_REQUEST,
                   "order must be {\"id\": string of 1..128 bytes, \"urls\": [...]}");
            goto out;
        }
    }
    const Participant *merchant = dirsnap_find(req->dir, json_integer_value(to));
    if (!merchant || !merchant->enabled || !(merchant->roles & ROLE_MERCHANT)) {
        refuse(c, req, OC_ERR_MERCHANT_NOT_REGISTERED, "the merchant is not registered");
        goto out;
    }

    char txid[37];
    if (new_payment_txid(txid) != 0) {
        refuse(c, req, OC_ERR_INTERNAL, "no randomness available");
        goto out;
    }
    json_t *answer = json_pack("{s:s,s:s,s:O,s:O,s:I,s:{s:o}}", "status", "pending_settlement",
                               "txid", txid, "amount", amount_v, "currency", currency_v,
                               "expiresAt", (json_int_t)expires_at, "settlement", "accepts",
                               accepted_providers(req->dir));
    int r = answer ? canon_write(answer, CANON_STRICT, &c->create_body, &c->create_body_len)
                   : -ENOMEM;
    json_decref(answer);
    if (r != 0) {
        refuse(c, req, OC_ERR_UNAVAILABLE, "out of memory");
        goto out;
    }

    char caller[24], merchant_ocid[24], expires[24], body_sha[65];
    snprintf(caller, sizeof(caller), "%" PRId64, req->caller->ocid);
    snprintf(merchant_ocid, sizeof(merchant_ocid), "%" PRId64, merchant->ocid);
    snprintf(expires, sizeof(expires), "%" PRId64, expires_at);
    sha256_hex(req->body, req->body_len, body_sha);
    const char *params[14] = {
        caller, req->nonce, req->idempotency_key, body_sha, txid, merchant_ocid,
        json_string_value(amount_v), json_string_value(amount_v), json_string_value(currency_v),
        reference, memo, order_id, expires, c->create_body,
    };
    submit(c, "settle_create", 14, params, on_create);
out:
    json_decref(root);
}

/* ---- proofs: /transfer/webhook and /payment/settle ---- */

/* Signs the stored gateway proof for an answer. The stored text is parsed and canonicalised
 * again so that what is signed is exactly what a verifier will canonicalise. */
static json_t *signed_gateway_proof(const SettleCtx *ctx, const char *stored, const char *status)
{
    json_t *proof = NULL;
    if (json_read_strict(stored, strlen(stored), JSON_READ_OBJECT, &proof, NULL) != 0)
        return NULL;
    char sig[SIG_HEX_LEN + 1];
    if (proof_sign(proof, ctx->gateway_key, CANON_STRICT, sig) != 0) {
        json_decref(proof);
        return NULL;
    }
    return json_pack("{s:s,s:o,s:s}", "status", status, "proof", proof, "signature", sig);
}

static void render_proof_outcome(Call *c, const char *outcome, const char *gateway_proof)
{
    if (!c->via_settle) {
        if (strcmp(outcome, "amount_mismatch") == 0) {
            finish_error(c, OC_ERR_AMOUNT_MISMATCH, "the amount differs from the payment's");
        } else if (strcmp(outcome, "currency_mismatch") == 0) {
            finish_error(c, OC_ERR_CURRENCY_MISMATCH,
                         "the currency differs from the payment's");
        } else {
            /* credited, unmatched, late, duplicate_payment: the provider's job is done; what
             * could not be credited is an exception for operators. */
            finish_json(c, 200, json_pack("{s:s,s:s}", "status", "accepted", "txid",
                                          c->proof_txid));
        }
        return;
    }
    if (strcmp(outcome, "credited") == 0 && gateway_proof) {
        json_t *answer = signed_gateway_proof(c->ctx, gateway_proof, "completed");
        if (!answer) {
            log_json(LOG_ERROR, "stored gateway proof unusable",
                     "\"request_id\":\"%s\"", c->request_id);
            finish_error(c, OC_ERR_INTERNAL, "internal error");
            return;
        }
        finish_json(c, 200, answer);
    } else if (strcmp(outcome, "late") == 0) {
        finish_error(c, OC_ERR_PAYMENT_EXPIRED,
                     "the payment had expired; the proof is held for an operator");
    } else if (strcmp(outcome, "duplicate_payment") == 0) {
        finish_error(c, OC_ERR_INVALID_STATE,
                     "the payment was already completed by another proof");
    } else if (strcmp(outcome, "amount_mismatch") == 0) {
        finish_error(c, OC_ERR_AMOUNT_MISMATCH, "the amount differs from the payment's");
    } else if (strcmp(outcome, "currency_mismatch") == 0) {
        finish_error(c, OC_ERR_CURRENCY_MISMATCH, "the currency differs from the payment's");
    } else {
        finish_error(c, OC_ERR_PAYMENT_NOT_FOUND, "no such payment");
    }
}

static void on_proof(void *userdata, DbError err, const PGresult *res)
{
    Call *c = userdata;
    if (err != DB_OK) {
        finish_db_error(c, err, res);
        return;
    }
    if (PQntuples(res) != 1) {
        finish_error(c, OC_ERR_INTERNAL, "internal error");
        return;
    }
    const char *result = PQgetvalue(res, 0, 0);
    const char *outcome = PQgetvalue(res, 0, 1);
    if (strcmp(result, "nonce_reused") == 0) {
        finish_error(c, OC_ERR_NONCE_REUSED, "nonce already used");
    } else if (strcmp(result, "payment_not_found") == 0) {
        finish_error(c, OC_ERR_PAYMENT_NOT_FOUND, "no such payment");
    } else if (strcmp(result, "unauthorized") == 0) {
        finish_error(c, OC_ERR_UNAUTHORIZED,
                     "only the payment's app or the proof's issuer may settle it");
    } else if (strcmp(result, "refused") == 0) {
        metrics_proof("refused", false);
        finish_error(c, c->refuse_code, c->message);
    } else if (strcmp(result, "new") == 0 || strcmp(result, "replay") == 0) {
        metrics_proof(outcome, result[0] == 'r');
        char txid_json[160];
        log_json_str(c->proof_txid, txid_json, sizeof(txid_json));
        log_json(LOG_INFO, "proof",
                 "\"request_id\":\"%s\",\"via\":\"%s\",\"issuer\":%" PRId64 ",\"proof_txid\":%s,"
                 "\"outcome\":\"%s\",\"replay\":%s,\"form\":\"%s\"",
                 c->request_id, c->via_settle ? "settle" : "webhook", c->issuer, txid_json,
                 outcome, result[0] == 'r' ? "true" : "false", canon_form_name(c->form));
        if (result[0] == 'n' && strcmp(outcome, "credited") == 0 && c->ctx->on_enqueued)
            c->ctx->on_enqueued(c->ctx->on_enqueued_arg);
        render_proof_outcome(c, outcome,
                             PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3));
    } else {
        finish_error(c, OC_ERR_INTERNAL, "internal error");
    }
}

/* Verifies in the strict form, falling back to legacy only where allowed. Returns 0 and the
 * form that matched, or -1. */
static int verify_proof_signature(const Proof *proof, const Participant *issuer,
                                  const char *sig, size_t sig_len, int legacy_allowed,
                                  CanonForm *form)
{
    if (proof_verify(proof, &issuer->key, CANON_STRICT, sig, sig_len) == 0) {
        *form = CANON_STRICT;
        return 0;
    }
    if (legacy_allowed && issuer->form == CANON_LEGACY &&
        proof_verify(proof, &issuer->key, CANON_LEGACY, sig, sig_len) == 0) {
        *form = CANON_LEGACY;
        return 0;
    }
    return -1;
}

static void settle_proof_common(SettleCtx *ctx, const SettleRequest *req, int via_settle,
                                SettleDone done, void *ud)
{
    const Config *cfg = ctx->cfg;
    Call *c = call_new(ctx, req, CALL_PROOF, done, ud);
    if (!c) {
        call_oom(done, ud);
        return;
    }
    c->via_settle = via_settle;
    if (!via_settle && !(req->caller->roles & ROLE_SETTLEMENT_PROVIDER)) {
        refuse(c, req, OC_ERR_ISSUER_NOT_ACCEPTED,
               "only accepted settlement providers may send transfer webhooks");
        return;
    }
    json_t *root = read_body_or_refuse(c, req);
    if (!root)
        return;
    const char *body_txid = NULL;
    if (via_settle) {
        const json_t *t = json_object_get(root, "txid");
        if (!json_is_string(t) || json_string_length(t) == 0 ||
            json_string_length(t) > PROOF_MAX_TXID ||
            memchr(json_string_value(t), '\0', json_string_length(t))) {
            refuse(c, req, OC_ERR_BAD_REQUEST, "txid must be the payment's txid (a string)");
            goto out;
        }
        body_txid = json_string_value(t);
    }
    Proof proof;
    ProofError perr;
    const char *sig;
    size_t sig_len;
    if (proof_parse_envelope(root, &proof, &sig, &sig_len, &perr) != 0) {
        refuse(c, req, OC_ERR_INVALID_PROOF, "%s: %s", perr.field, perr.reason);
        goto out;
    }
    c->issuer = proof.issuer;
    c->proof_txid = oc_strndup(proof.txid, proof.txid_len);
    if (!c->proof_txid) {
        refuse(c, req, OC_ERR_UNAVAILABLE, "out of memory");
        goto out;
    }

    /* The checks that need no database, in the documented order; the first failure is
     * passed to the database call so the nonce is kept and (for settle) an unknown payment
     * still answers 404 first. */
    OcErrorCode refusal = OC_ERR_NONE;
    const Participant *issuer = dirsnap_find(req->dir, proof.issuer);
    if (!via_settle && proof.issuer != req->caller->ocid) {
        refusal = OC_ERR_INVALID_PROOF;
        snprintf(c->message, sizeof(c->message), "proof.issuer must equal X-OC-ID");
    } else if (!issuer || !issuer->enabled || !(issuer->roles & ROLE_SETTLEMENT_PROVIDER)) {
        refusal = OC_ERR_ISSUER_NOT_ACCEPTED;
        snprintf(c->message, sizeof(c->message),
                 "the issuer is not an accepted settlement provider");
    } else if (verify_proof_signature(&proof, issuer, sig, sig_len,
                                      !via_settle || req->caller->ocid == proof.issuer,
                                      &c->form) != 0) {
        refusal = OC_ERR_PROOF_SIGNATURE_INVALID;
        snprintf(c->message, sizeof(c->message), "the proof's signature does not verify");
    } else if (proof.to_ocid != cfg->ocid) {
        refusal = OC_ERR_INVALID_PROOF;
        snprintf(c->message, sizeof(c->message), "proof.to.ocid is not this gateway");
    } else if (via_settle && (!proof.to_reference || strcmp(proof.to_reference, body_txid))) {
        refusal = OC_ERR_INVALID_PROOF;
        snprintf(c->message, sizeof(c->message), "proof.to.reference must equal txid");
    } else if (proof_check_time(&proof, req->now, cfg->proof_future_skew_s, &perr) != 0) {
        refusal = OC_ERR_INVALID_PROOF;
        snprintf(c->message, sizeof(c->message), "proof.timestamp is in the future");
    }
    c->refuse_code = refusal;

    char *proof_canon = NULL, *from_canon = NULL;
    size_t canon_len;
    if (!refusal && (canon_write(proof.json, CANON_STRICT, &proof_canon, &canon_len) != 0 ||
                     canon_write(proof.from, CANON_STRICT, &from_canon, &canon_len) != 0)) {
        oc_free(proof_canon);
        refuse(c, req, OC_ERR_UNAVAILABLE, "out of memory");
        goto out;
    }
    char caller[24], issuer_text[24], gateway[24], now[24];
    snprintf(caller, sizeof(caller), "%" PRId64, req->caller->ocid);
    snprintf(issuer_text, sizeof(issuer_text), "%" PRId64, proof.issuer);
    snprintf(gateway, sizeof(gateway), "%" PRId64, cfg->ocid);
    snprintf(now, sizeof(now), "%" PRId64, req->now);
    char *amount_text = oc_strndup(proof.amount_text, proof.amount_len);
    const char *params[17] = {
        caller, req->nonce, via_settle ? "settle" : "webhook", body_txid,
        refusal ? oc_error_name(refusal) : NULL, issuer_text, c->proof_txid,
        proof.to_reference, amount_text, amount_text, proof.currency,
        proof_canon ? proof_canon : "", sig, canon_form_name(c->form),
        from_canon ? from_canon : "{}", gateway, now,
    };
    if (!amount_text)
        refuse(c, req, OC_ERR_UNAVAILABLE, "out of memory");
    else
        submit(c, "settle_proof", 17, params, on_proof);
    oc_free(amount_text);
    oc_free(proof_canon);
    oc_free(from_canon);
out:
    json_decref(root);
}

void settle_transfer_webhook(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud)
{
    settle_proof_common(ctx, req, 0, done, ud);
}

void settle_payment_settle(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud)
{
    settle_proof_common(ctx, req, 1, done, ud);
}

/* ---- /verify/{txid} ---- */

static void on_verify(void *userdata, DbError err, const PGresult *res)
{
    Call *c = userdata;
    if (err != DB_OK) {
        finish_db_error(c, err, res);
        return;
    }
    const char *result = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
    if (strcmp(result, "nonce_reused") == 0) {
        finish_error(c, OC_ERR_NONCE_REUSED, "nonce already used");
        return;
    }
    if (strcmp(result, "found") != 0) {
        finish_error(c, OC_ERR_TXID_NOT_FOUND, "no such payment");
        return;
    }
    const char *status = PQgetvalue(res, 0, 1);
    if (strcmp(status, "completed") == 0 && !PQgetisnull(res, 0, 6)) {
        json_t *answer = signed_gateway_proof(c->ctx, PQgetvalue(res, 0, 6), "completed");
        if (!answer) {
            finish_error(c, OC_ERR_INTERNAL, "internal error");
            return;
        }
        finish_json(c, 200, answer);
        return;
    }
    int64_t created = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    int64_t expires = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    if (expires < c->now) {
        finish_json(c, 200, json_pack("{s:s,s:s}", "status", "expired", "txid", c->txid));
        return;
    }
    finish_json(c, 200, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "status", "pending", "txid",
                                  c->txid, "amount", PQgetvalue(res, 0, 2), "currency",
                                  PQgetvalue(res, 0, 3), "createdAt", (json_int_t)created,
                                  "expiresAt", (json_int_t)expires));
}

void settle_verify(SettleCtx *ctx, const SettleRequest *req, SettleDone done, void *ud)
{
    Call *c = call_new(ctx, req, CALL_VERIFY, done, ud);
    if (!c) {
        call_oom(done, ud);
        return;
    }
    const char *txid = req->path_param ? req->path_param : "";
    size_t len = strlen(txid);
    if (len == 0 || len > PROOF_MAX_TXID || !utf8_validate(txid, len, NULL)) {
        refuse(c, req, OC_ERR_TXID_NOT_FOUND, "no such payment");
        return;
    }
    c->txid = oc_strndup(txid, len);
    if (!c->txid) {
        refuse(c, req, OC_ERR_UNAVAILABLE, "out of memory");
        return;
    }
    char caller[24];
    snprintf(caller, sizeof(caller), "%" PRId64, req->caller->ocid);
    const char *params[4] = { caller, req->nonce, c->txid,
                              (req->caller->roles & ROLE_SETTLEMENT_PROVIDER) ? "t" : "f" };
    submit(c, "settle_verify", 4, params, on_verify);
}

/* ---- housekeeping ---- */

static void on_prune(void *userdata, DbError err, const PGresult *res)
{
    (void)userdata;
    (void)res;
    if (err != DB_OK)
        log_json(LOG_WARN, "pruning nonces failed", "\"error\":%d", (int)err);
}

static void maintenance_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    SettleCtx *ctx = arg;
    char keep[24];
    snprintf(keep, sizeof(keep), "%u", 2 * ctx->cfg->timestamp_window_s);
    const char *params[1] = { keep };
    if (db_pool_query(ctx->db, "settle_prune", 1, params, on_prune, NULL) != 0)
        log_json(LOG_ERROR, "statement not prepared", "\"statement\":\"settle_prune\"");
}

int settle_start_maintenance(SettleCtx *ctx)
{
    struct event *ev = event_new(ctx->base, -1, EV_PERSIST, maintenance_tick, ctx);
    if (!ev)
        return -ENOMEM;
    struct timeval tv = { SETTLE_MAINTENANCE_INTERVAL_S, 0 };
    if (event_add(ev, &tv) != 0) {
        event_free(ev);
        return -ENOMEM;
    }
    ctx->maintenance = ev;
    return 0;
}

void settle_stop_maintenance(SettleCtx *ctx)
{
    if (ctx->maintenance) {
        event_free(ctx->maintenance);
        ctx->maintenance = NULL;
    }
}
