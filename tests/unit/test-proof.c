/* Unit tests for proto/proof: the vectors' proofs parse to exactly their field values; every
 * way a proof or its envelope can be refused names the right field with the right code; the
 * future-timestamp check; and an allocation-failure loop over reading, parsing and verifying
 * an envelope, which must either succeed exactly or report -ENOMEM and leak nothing.
 * argv[1] is the path of tests/vectors/opencharge-vectors.json. */
#include "testlib.h"
#include "vectorlib.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/json.h"
#include "proto/proof.h"
#include "util/alloc.h"

/* A valid proof that every failure case below changes in exactly one place. */
static const char base_proof_text[] =
    "{\"txid\":\"tx_1\",\"issuer\":100,\"from\":{\"ocid\":200,\"reference\":\"f_ref\"},"
    "\"to\":{\"ocid\":300,\"reference\":\"t_ref\"},\"amount\":\"15.00\",\"currency\":\"USD\","
    "\"timestamp\":1706500500,\"memo\":\"m\"}";

static const char any_sig[] =
    "eb8e703768213c782314a2b527b32476c2cb7172377c474cf05f812a0ba8679c255223519c08a21051024da7"
    "25ec8f79726666cb6e581aaf0efe85a18d5b5e761b";

/* ---- helpers ------------------------------------------------------------------------- */

static json_t *read_strict_or_bail(const char *text, size_t len, unsigned flags)
{
    json_t *v = NULL;
    JsonReadError jerr;
    int r = json_read_strict(text, len, flags, &v, &jerr);
    if (r != 0) {
        printf("Bail out! json_read_strict refused a test input (%d at %zu): %.*s\n", r,
               r > 0 ? jerr.offset : 0, (int)len, text);
        exit(1);
    }
    return v;
}

static json_t *base_proof(void)
{
    return read_strict_or_bail(base_proof_text, strlen(base_proof_text), JSON_READ_OBJECT);
}

static json_t *base_envelope(void)
{
    json_t *env = json_object();
    if (!env || json_object_set_new(env, "proof", base_proof()) ||
        json_object_set_new(env, "signature", json_string(any_sig))) {
        printf("Bail out! out of memory building an envelope\n");
        exit(1);
    }
    return env;
}

/* Sets (value != NULL, stolen) or deletes (value == NULL) the member at a dotted path such as
 * "from.ocid"; every object on the way must exist. */
static void set_path(json_t *root, const char *path, json_t *value)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    json_t *obj = root;
    char *key = buf;
    char *dot;
    while ((dot = strchr(key, '.')) != NULL) {
        *dot = '\0';
        obj = json_object_get(obj, key);
        if (!json_is_object(obj)) {
            printf("Bail out! test path %s does not lead through objects\n", path);
            exit(1);
        }
        key = dot + 1;
    }
    int r = value ? json_object_set_new(obj, key, value) : json_object_del(obj, key);
    if (r != 0) {
        printf("Bail out! cannot change %s in a test value\n", path);
        exit(1);
    }
}

static json_t *string_of(char c, size_t len)
{
    char *s = malloc(len + 1);
    if (!s) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    memset(s, c, len);
    json_t *v = json_stringn(s, len);
    free(s);
    return v;
}

static bool err_is(int r, const ProofError *err, int code, const char *field, const char *reason)
{
    return r == code && err->code == (ProofCode)code && err->field &&
           strcmp(err->field, field) == 0 && err->reason && strcmp(err->reason, reason) == 0;
}

static void report_err(int r, const ProofError *err)
{
    if (r > 0)
        printf("#   got %d field \"%s\" reason \"%s\"\n", r, err->field ? err->field : "(null)",
               err->reason ? err->reason : "(null)");
    else
        printf("#   got %d\n", r);
}

/* Runs proof_parse on proof (taken) and checks the outcome. */
static void expect_proof(const char *what, json_t *proof, int code, const char *field,
                         const char *reason)
{
    Proof p;
    ProofError err = { 0, NULL, NULL };
    int r = proof_parse(proof, &p, &err);
    if (code == 0) {
        CHECK(r == 0, "proof_parse accepts %s", what);
        if (r != 0)
            report_err(r, &err);
    } else {
        bool ok = err_is(r, &err, code, field, reason);
        CHECK(ok, "proof_parse: %s -> code %d, %s \"%s\"", what, code, field, reason);
        if (!ok)
            report_err(r, &err);
        /* err is optional: the same refusal without it. */
        CHECK_INT(proof_parse(proof, &p, NULL), code, "proof_parse without err: %s", what);
    }
    json_decref(proof);
}

static void expect_envelope(const char *what, json_t *env, int code, const char *field,
                            const char *reason)
{
    Proof p;
    ProofError err = { 0, NULL, NULL };
    const char *sentinel = "untouched";
    const char *sig = sentinel;
    size_t sig_len = 12345;
    int r = proof_parse_envelope(env, &p, &sig, &sig_len, &err);
    if (code == 0) {
        const json_t *s = json_object_get(env, "signature");
        CHECK(r == 0 && sig == json_string_value(s) && sig_len == json_string_length(s),
              "proof_parse_envelope accepts %s and returns its signature", what);
        if (r != 0)
            report_err(r, &err);
    } else {
        bool ok = err_is(r, &err, code, field, reason) && sig == sentinel && sig_len == 12345;
        CHECK(ok, "proof_parse_envelope: %s -> code %d, %s \"%s\", outputs untouched", what,
              code, field, reason);
        if (!ok)
            report_err(r, &err);
    }
    json_decref(env);
}

static bool same_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (!a || !b)
        return a == b && a_len == 0 && b_len == 0;
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

/* The optional string member key of obj as (pointer, length), NULL/0 when absent. */
static const char *opt_str(const json_t *obj, const char *key, size_t *len)
{
    const json_t *v = json_object_get(obj, key);
    *len = v ? json_string_length(v) : 0;
    return v ? json_string_value(v) : NULL;
}

/* ---- the vectors' proofs --------------------------------------------------------------- */

static void test_vector_proofs(const json_t *vectors)
{
    size_t i;
    const json_t *vec;
    json_array_foreach(json_object_get(vectors, "proofs"), i, vec) {
        size_t len;
        const char *text = vstr(vec, "proof_json", &len);
        json_t *proof = read_strict_or_bail(text, len, JSON_READ_OBJECT);
        /* jansson's own parser gives the expected values independently of json_read_strict. */
        json_error_t jerr;
        json_t *want = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        Proof p;
        ProofError err;
        int r = proof_parse(proof, &p, &err);
        CHECK(r == 0, "proofs[%zu] parses", i);
        if (r != 0 || !want) {
            report_err(r, &err);
            json_decref(proof);
            json_decref(want);
            continue;
        }
        const json_t *wf = json_object_get(want, "from"), *wt = json_object_get(want, "to");
        size_t l1, l2, l3, l4, l5, l6;
        const char *txid = opt_str(want, "txid", &l1);
        const char *fref = opt_str(wf, "reference", &l2);
        const char *tref = opt_str(wt, "reference", &l3);
        const char *amount = opt_str(want, "amount", &l4);
        const char *currency = opt_str(want, "currency", &l5);
        const char *memo = opt_str(want, "memo", &l6);
        CHECK(p.json == proof && p.from == json_object_get(proof, "from") &&
                  same_bytes(p.txid, p.txid_len, txid, l1) &&
                  p.issuer == json_integer_value(json_object_get(want, "issuer")) &&
                  p.from_ocid == json_integer_value(json_object_get(wf, "ocid")) &&
                  same_bytes(p.from_reference, p.from_reference_len, fref, l2) &&
                  p.to_ocid == json_integer_value(json_object_get(wt, "ocid")) &&
                  same_bytes(p.to_reference, p.to_reference_len, tref, l3) &&
                  same_bytes(p.amount_text, p.amount_len, amount, l4) &&
                  same_bytes(p.currency, p.currency_len, currency, l5) &&
                  p.timestamp == json_integer_value(json_object_get(want, "timestamp")) &&
                  same_bytes(p.memo, p.memo_len, memo, l6),
              "proofs[%zu] fields equal the vector's values", i);

        if (i == 0) {
            CHECK(same_bytes(p.txid, p.txid_len, "prov_tx_0001", 12) && p.issuer == 100 &&
                      p.from_ocid == 200 &&
                      same_bytes(p.from_reference, p.from_reference_len, "wallet_tx_123", 13) &&
                      p.to_ocid == 300 &&
                      same_bytes(p.to_reference, p.to_reference_len, "gw_pay_abc", 10) &&
                      same_bytes(p.amount_text, p.amount_len, "15.00", 5) &&
                      p.amount.units == 15 && p.amount.frac_e18 == 0 && p.amount.scale == 2 &&
                      same_bytes(p.currency, p.currency_len, "USD", 3) &&
                      p.timestamp == 1706500500 &&
                      same_bytes(p.memo, p.memo_len, "Payment for ord_abc123", 22),
                  "proofs[0] is prov_tx_0001 100 200/wallet_tx_123 -> 300/gw_pay_abc 15.00 USD");
        } else if (i == 1) {
            CHECK(p.from_reference == NULL && p.from_reference_len == 0 && p.memo == NULL &&
                      p.memo_len == 0 && p.amount.units == 10000 &&
                      same_bytes(p.currency, p.currency_len, "UGX", 3),
                  "proofs[1]: absent from.reference and memo are NULL, 10000.00 UGX");
        } else if (i == 2) {
            CHECK(same_bytes(p.from_reference, p.from_reference_len, "r\x01\n\t\"\\/", 7) &&
                      p.amount.units == 0 && p.amount.frac_e18 == 10000000000000000ULL,
                  "proofs[2]: control characters kept in from.reference, 0.01");
        }
        json_decref(want);
        json_decref(proof);
    }
}

/* ---- every refusal --------------------------------------------------------------------- */

static const char r_required[] = "required";
static const char r_integer[] = "must be an integer";
static const char r_string[] = "must be a string";
static const char r_object[] = "must be an object";
static const char r_nul[] = "must not contain NUL";
static const char r_nonneg[] = "must be >= 0";
static const char r_positive[] = "must be greater than zero";
static const char r_amount[] = "invalid decimal amount";
static const char r_currency[] = "must be 3..10 of A-Z0-9";
static const char r_max_int[] = "must be at most 9007199254740991";

static void test_refusals(void)
{
    static const struct {
        const char *path;
        const char *value; /* JSON text, or NULL to delete the member */
        int code;
        const char *reason;
    } cases[] = {
        { "txid", NULL, PROOF_E_MISSING, r_required },
        { "issuer", NULL, PROOF_E_MISSING, r_required },
        { "from", NULL, PROOF_E_MISSING, r_required },
        { "from.ocid", NULL, PROOF_E_MISSING, r_required },
        { "to", NULL, PROOF_E_MISSING, r_required },
        { "to.ocid", NULL, PROOF_E_MISSING, r_required },
        { "amount", NULL, PROOF_E_MISSING, r_required },
        { "currency", NULL, PROOF_E_MISSING, r_required },
        { "timestamp", NULL, PROOF_E_MISSING, r_required },

        { "issuer", "\"100\"", PROOF_E_TYPE, r_integer },
        { "issuer", "true", PROOF_E_TYPE, r_integer },
        { "issuer", "null", PROOF_E_TYPE, r_integer },
        { "txid", "5", PROOF_E_TYPE, r_string },
        { "from", "[]", PROOF_E_TYPE, r_object },
        { "from", "[{\"ocid\":200}]", PROOF_E_TYPE, r_object },
        { "to", "null", PROOF_E_TYPE, r_object },
        { "to", "\"300\"", PROOF_E_TYPE, r_object },
        { "from.ocid", "\"200\"", PROOF_E_TYPE, r_integer },
        { "to.ocid", "{}", PROOF_E_TYPE, r_integer },
        { "amount", "15", PROOF_E_TYPE, r_string },
        { "currency", "840", PROOF_E_TYPE, r_string },
        { "timestamp", "\"1706500500\"", PROOF_E_TYPE, r_integer },
        { "memo", "5", PROOF_E_TYPE, r_string },
        { "memo", "null", PROOF_E_TYPE, r_string },
        { "to.reference", "7", PROOF_E_TYPE, r_string },
        { "from.reference", "{}", PROOF_E_TYPE, r_string },

        { "txid", "\"\"", PROOF_E_VALUE, "must be 1..128 bytes" },
        { "txid", "\"a\\u0000b\"", PROOF_E_VALUE, r_nul },
        { "txid", "\"\\u0000\"", PROOF_E_VALUE, r_nul },
        { "memo", "\"ok\\u0000\"", PROOF_E_VALUE, r_nul },
        { "to.reference", "\"\\u0000gw\"", PROOF_E_VALUE, r_nul },
        { "from.reference", "\"w\\u0000\"", PROOF_E_VALUE, r_nul },
        { "amount", "\"15\\u0000\"", PROOF_E_VALUE, r_nul },
        { "currency", "\"US\\u0000\"", PROOF_E_VALUE, r_nul },
        { "issuer", "-1", PROOF_E_VALUE, r_nonneg },
        { "from.ocid", "-1", PROOF_E_VALUE, r_nonneg },
        { "to.ocid", "-200", PROOF_E_VALUE, r_nonneg },
        { "timestamp", "0", PROOF_E_VALUE, r_positive },
        { "timestamp", "-1706500500", PROOF_E_VALUE, r_positive },
        { "amount", "\"0\"", PROOF_E_VALUE, r_positive },
        { "amount", "\"0.00\"", PROOF_E_VALUE, r_positive },
        { "amount", "\"abc\"", PROOF_E_VALUE, r_amount },
        { "amount", "\"\"", PROOF_E_VALUE, r_amount },
        { "amount", "\"15.\"", PROOF_E_VALUE, r_amount },
        { "amount", "\"-15.00\"", PROOF_E_VALUE, r_amount },
        { "amount", "\"1e3\"", PROOF_E_VALUE, r_amount },
        { "currency", "\"usd\"", PROOF_E_VALUE, r_currency },
        { "currency", "\"US\"", PROOF_E_VALUE, r_currency },
        { "currency", "\"USDTUSDTUSD\"", PROOF_E_VALUE, r_currency },
        { "currency", "\"US D\"", PROOF_E_VALUE, r_currency },

        /* The boundaries of what is accepted. */
        { "issuer", "0", 0, NULL },
        { "from.ocid", "0", 0, NULL },
        { "to.ocid", "9007199254740991", 0, NULL },
        { "memo", "\"\"", 0, NULL },
        { "memo", NULL, 0, NULL },
        { "to.reference", "\"\"", 0, NULL },
        { "to.reference", NULL, 0, NULL },
        { "from.reference", NULL, 0, NULL },
        { "timestamp", "1", 0, NULL },
        { "amount", "\"0.000000000000000001\"", 0, NULL },
        { "currency", "\"ABC123XYZ0\"", 0, NULL },
        { "extra", "{\"unknown\":[1,\"x\"]}", 0, NULL },
        { "to.extra", "true", 0, NULL },
    };

    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        char what[160];
        snprintf(what, sizeof(what), "%s %s", cases[i].path,
                 cases[i].value ? cases[i].value : "(deleted)");
        json_t *proof = base_proof();
        json_t *value = cases[i].value ? read_strict_or_bail(cases[i].value,
                                                             strlen(cases[i].value), 0)
                                       : NULL;
        set_path(proof, cases[i].path, value);
        expect_proof(what, proof, cases[i].code, cases[i].path, cases[i].reason);
    }

    /* Values the strict reader can never produce, built in code: a program assembling a proof
     * must still be refused. */
    json_t *proof = base_proof();
    set_path(proof, "issuer", json_real(1.5));
    expect_proof("issuer 1.5 (json_real)", proof, PROOF_E_TYPE, "issuer", r_integer);
    proof = base_proof();
    set_path(proof, "timestamp", json_real(1706500500.0));
    expect_proof("timestamp 1706500500.0 (json_real)", proof, PROOF_E_TYPE, "timestamp",
                 r_integer);
    proof = base_proof();
    set_path(proof, "issuer", json_integer(9007199254740992LL));
    expect_proof("issuer 2^53", proof, PROOF_E_VALUE, "issuer", r_max_int);
    proof = base_proof();
    set_path(proof, "to.ocid", json_integer(INT64_MAX));
    expect_proof("to.ocid INT64_MAX", proof, PROOF_E_VALUE, "to.ocid", r_max_int);

    /* Lengths at and past each limit. */
    static const struct {
        const char *path;
        size_t ok_len, bad_len;
        const char *reason;
    } lens[] = {
        { "txid", PROOF_MAX_TXID, PROOF_MAX_TXID + 1, "must be 1..128 bytes" },
        { "from.reference", PROOF_MAX_REFERENCE, PROOF_MAX_REFERENCE + 1,
          "must be at most 256 bytes" },
        { "to.reference", PROOF_MAX_REFERENCE, PROOF_MAX_REFERENCE + 1,
          "must be at most 256 bytes" },
        { "memo", PROOF_MAX_MEMO, PROOF_MAX_MEMO + 1, "must be at most 1024 bytes" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(lens); i++) {
        char what[96];
        snprintf(what, sizeof(what), "%s of %zu bytes", lens[i].path, lens[i].ok_len);
        proof = base_proof();
        set_path(proof, lens[i].path, string_of('a', lens[i].ok_len));
        expect_proof(what, proof, 0, NULL, NULL);
        snprintf(what, sizeof(what), "%s of %zu bytes", lens[i].path, lens[i].bad_len);
        proof = base_proof();
        set_path(proof, lens[i].path, string_of('a', lens[i].bad_len));
        expect_proof(what, proof, PROOF_E_VALUE, lens[i].path, lens[i].reason);
    }

    /* The proof itself. */
    expect_proof("an array as the proof", json_array(), PROOF_E_TYPE, "proof", r_object);
    Proof p;
    ProofError err = { 0, NULL, NULL };
    int r = proof_parse(NULL, &p, &err);
    CHECK(err_is(r, &err, PROOF_E_MISSING, "proof", r_required), "proof_parse(NULL) -> missing");

    /* Several faults: the first in the documented order is reported. */
    proof = base_proof();
    set_path(proof, "memo", json_integer(1));
    set_path(proof, "issuer", NULL);
    expect_proof("issuer missing and memo a number", proof, PROOF_E_MISSING, "issuer",
                 r_required);
}

static void test_envelope(void)
{
    expect_envelope("a valid envelope", base_envelope(), 0, NULL, NULL);
    expect_envelope("an array", json_array(), PROOF_E_TYPE, "envelope", r_object);
    expect_envelope("a string", json_string("x"), PROOF_E_TYPE, "envelope", r_object);
    expect_envelope("NULL", NULL, PROOF_E_TYPE, "envelope", r_object);

    json_t *env = base_envelope();
    set_path(env, "proof", NULL);
    expect_envelope("proof missing", env, PROOF_E_MISSING, "proof", r_required);
    env = base_envelope();
    set_path(env, "proof", json_string(base_proof_text));
    expect_envelope("proof a string", env, PROOF_E_TYPE, "proof", r_object);
    env = base_envelope();
    set_path(env, "proof", json_null());
    expect_envelope("proof null", env, PROOF_E_TYPE, "proof", r_object);
    env = base_envelope();
    set_path(env, "signature", NULL);
    expect_envelope("signature missing", env, PROOF_E_MISSING, "signature", r_required);
    env = base_envelope();
    set_path(env, "signature", json_integer(1));
    expect_envelope("signature a number", env, PROOF_E_TYPE, "signature", r_string);

    static const char r_sig[] = "must be 128 or 130 hex digits";
    char sig[256];
    /* 129, 131, 126 and 0 hex digits. */
    static const size_t bad_lens[] = { 129, 131, 126, 0 };
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_lens); i++) {
        char what[64];
        memset(sig, 'a', bad_lens[i]);
        env = base_envelope();
        set_path(env, "signature", json_stringn(sig, bad_lens[i]));
        snprintf(what, sizeof(what), "signature of %zu hex digits", bad_lens[i]);
        expect_envelope(what, env, PROOF_E_VALUE, "signature", r_sig);
    }
    memcpy(sig, any_sig, 130);
    sig[0] = 'z';
    env = base_envelope();
    set_path(env, "signature", json_stringn(sig, 130));
    expect_envelope("signature with a non-hex digit", env, PROOF_E_VALUE, "signature", r_sig);
    memcpy(sig, any_sig, 130);
    sig[64] = '\0';
    env = base_envelope();
    set_path(env, "signature", json_stringn(sig, 130));
    expect_envelope("signature with a NUL", env, PROOF_E_VALUE, "signature", r_sig);

    /* Accepted forms: 128 digits (no v) and upper case; cryptography is proof_verify's. */
    env = base_envelope();
    set_path(env, "signature", json_stringn(any_sig, 128));
    expect_envelope("a signature of 128 hex digits", env, 0, NULL, NULL);
    for (size_t i = 0; i < 130; i++)
        sig[i] = (any_sig[i] >= 'a' && any_sig[i] <= 'f') ? (char)(any_sig[i] - 32) : any_sig[i];
    env = base_envelope();
    set_path(env, "signature", json_stringn(sig, 130));
    expect_envelope("an upper-case signature", env, 0, NULL, NULL);

    /* Proof errors inside an envelope carry the "proof." prefix. */
    static const struct {
        const char *path;
        const char *value;
        int code;
        const char *field;
        const char *reason;
    } inner[] = {
        { "proof.txid", NULL, PROOF_E_MISSING, "proof.txid", r_required },
        { "proof.issuer", "\"100\"", PROOF_E_TYPE, "proof.issuer", r_integer },
        { "proof.from", "[]", PROOF_E_TYPE, "proof.from", r_object },
        { "proof.from.ocid", "-1", PROOF_E_VALUE, "proof.from.ocid", r_nonneg },
        { "proof.from.reference", "1", PROOF_E_TYPE, "proof.from.reference", r_string },
        { "proof.to", "null", PROOF_E_TYPE, "proof.to", r_object },
        { "proof.to.ocid", NULL, PROOF_E_MISSING, "proof.to.ocid", r_required },
        { "proof.to.reference", "\"\\u0000\"", PROOF_E_VALUE, "proof.to.reference", r_nul },
        { "proof.amount", "\"0\"", PROOF_E_VALUE, "proof.amount", r_positive },
        { "proof.currency", "\"usd\"", PROOF_E_VALUE, "proof.currency", r_currency },
        { "proof.timestamp", "0", PROOF_E_VALUE, "proof.timestamp", r_positive },
        { "proof.memo", "5", PROOF_E_TYPE, "proof.memo", r_string },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(inner); i++) {
        char what[160];
        snprintf(what, sizeof(what), "%s %s", inner[i].path,
                 inner[i].value ? inner[i].value : "(deleted)");
        env = base_envelope();
        json_t *value = inner[i].value ? read_strict_or_bail(inner[i].value,
                                                             strlen(inner[i].value), 0)
                                       : NULL;
        set_path(env, inner[i].path, value);
        expect_envelope(what, env, inner[i].code, inner[i].field, inner[i].reason);
    }

    /* A broken signature is reported before a broken proof. */
    env = base_envelope();
    set_path(env, "proof.txid", NULL);
    set_path(env, "signature", json_string("00"));
    expect_envelope("bad signature and missing txid", env, PROOF_E_VALUE, "signature", r_sig);
}

static void test_time(void)
{
    Proof p;
    json_t *proof = base_proof();
    ProofError err = { 0, NULL, NULL };
    int r = proof_parse(proof, &p, &err);
    if (r != 0) {
        printf("Bail out! base proof does not parse\n");
        exit(1);
    }
    const int64_t ts = p.timestamp;

    CHECK_INT(proof_check_time(&p, ts - 300, 300, &err), 0, "timestamp now+300 accepted");
    r = proof_check_time(&p, ts - 301, 300, &err);
    CHECK(err_is(r, &err, PROOF_E_FUTURE, "timestamp", "is too far in the future"),
          "timestamp now+301 refused with skew 300");
    CHECK_INT(proof_check_time(&p, ts - 301, 300, NULL), PROOF_E_FUTURE,
              "timestamp now+301 refused without err");
    CHECK_INT(proof_check_time(&p, ts, 0, &err), 0, "timestamp == now accepted with skew 0");
    CHECK_INT(proof_check_time(&p, ts - 1, 0, &err), PROOF_E_FUTURE,
              "timestamp now+1 refused with skew 0");
    CHECK_INT(proof_check_time(&p, ts + 86400 * 365, 300, &err), 0,
              "timestamp a year in the past accepted");
    CHECK_INT(proof_check_time(&p, INT64_MAX, 300, &err), 0, "now INT64_MAX accepted");
    CHECK_INT(proof_check_time(&p, INT64_MIN, 300, &err), PROOF_E_FUTURE,
              "now INT64_MIN refused without overflow");
    CHECK_INT(proof_check_time(&p, ts - 1, INT64_MAX, &err), 0, "skew INT64_MAX accepted");
    json_decref(proof);
}

/* ---- allocation failures ---------------------------------------------------------------- */

static long alloc_fail_at;   /* index of the allocation to fail, -1 = none */
static long alloc_count;     /* allocations attempted in this run */
static long alloc_live;      /* successful allocations not yet freed */

static void *failing_malloc(size_t size)
{
    if (alloc_count++ == alloc_fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        alloc_live++;
    return p;
}

static void counting_free(void *ptr)
{
    if (ptr) {
        alloc_live--;
        free(ptr);
    }
}

static void test_alloc_failures(const json_t *vectors)
{
    /* The first request body of the vectors is a webhook envelope signed by the provider. */
    const json_t *req = json_array_get(json_object_get(vectors, "requests"), 0);
    size_t body_len, pub_len;
    const char *body = vstr(req, "body", &body_len);
    const char *pub_hex = vstr(vector_key(vectors, "provider"), "public_key", &pub_len);
    PublicKey pub;
    if (key_parse_public(pub_hex, pub_len, &pub) != 0) {
        printf("Bail out! provider public key does not parse\n");
        exit(1);
    }

    /* The libsecp256k1 context is created on first use; make that happen outside the loop
     * so that the loop measures the proof path, not process start-up. */
    (void)key_context();

    const long cap = 100000;
    long n, enomem_runs = 0, bad_runs = 0;
    bool succeeded = false, leaked = false;
    for (n = 0; n < cap && !succeeded; n++) {
        alloc_fail_at = n;
        alloc_count = 0;
        alloc_live = 0;
        oc_set_alloc_funcs(failing_malloc, counting_free);
        json_set_alloc_funcs(failing_malloc, counting_free);

        json_t *env = NULL;
        const char *sig = NULL;
        size_t sig_len = 0;
        Proof p;
        ProofError perr = { 0, NULL, NULL };
        int step = 0;
        int r = json_read_strict(body, body_len, JSON_READ_OBJECT, &env, NULL);
        if (r == 0) {
            step = 1;
            r = proof_parse_envelope(env, &p, &sig, &sig_len, &perr);
        }
        if (r == 0) {
            step = 2;
            r = proof_verify(&p, &pub, CANON_STRICT, sig, sig_len);
        }
        bool values_ok = false;
        if (r == 0) {
            values_ok = same_bytes(p.txid, p.txid_len, "prov_tx_0001", 12) &&
                        p.issuer == 100 && p.from_ocid == 200 && p.to_ocid == 300 &&
                        same_bytes(p.to_reference, p.to_reference_len, "gw_pay_abc", 10) &&
                        same_bytes(p.amount_text, p.amount_len, "15.00", 5) &&
                        same_bytes(p.currency, p.currency_len, "USD", 3) &&
                        p.timestamp == 1706500500 && sig_len == 130;
        }
        json_decref(env);
        long live = alloc_live;

        oc_set_alloc_funcs(NULL, NULL);
        json_set_alloc_funcs(malloc, free);

        if (live != 0 && !leaked) {
            leaked = true;
            printf("# allocation %ld failing: %ld allocations never freed\n", n, live);
        }
        if (r == -ENOMEM) {
            enomem_runs++;
        } else if (r == 0 && values_ok) {
            succeeded = true;
        } else {
            if (bad_runs++ == 0)
                printf("# allocation %ld failing: step %d returned %d (values %s)\n", n, step,
                       r, values_ok ? "right" : "wrong");
        }
        /* Past the last allocation nothing fails: that run must be the successful one, or
         * the loop would spin to the cap. */
        if (!succeeded && alloc_count <= n) {
            printf("# allocation %ld not reached (%ld made) yet the run returned %d\n", n,
                   alloc_count, r);
            bad_runs++;
            break;
        }
    }
    CHECK(succeeded, "allocation-failure loop ends with a successful run (after %ld runs)", n);
    CHECK(bad_runs == 0,
          "every run with a failed allocation returns -ENOMEM from read, parse or verify");
    CHECK(enomem_runs > 0, "allocation failures were exercised (%ld runs saw -ENOMEM)",
          enomem_runs);
    CHECK(!leaked, "no run leaked an allocation");

    /* The restored allocators work. */
    json_t *v = NULL;
    CHECK(json_read_strict(body, body_len, JSON_READ_OBJECT, &v, NULL) == 0 && v,
          "allocators restored after the loop");
    json_decref(v);
}

int main(int argc, char **argv)
{
    json_t *vectors = vectors_load(argc, argv, JSON_REJECT_DUPLICATES);

    test_vector_proofs(vectors);
    test_refusals();
    test_envelope();
    test_time();
    test_alloc_failures(vectors);

    json_decref(vectors);
    return tl_done();
}
