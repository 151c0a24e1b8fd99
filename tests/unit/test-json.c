/* Unit tests for the strict JSON reader (proto/json.h): every refusal with its code and byte
 * offset, the accepted edge cases (escapes, NUL, surrogate pairs, safe-integer bounds, depth
 * 32), the duplicate- and array-index-key vectors, and json_key_is_array_index. Needs no
 * arguments: the few vector inputs used here are copied in below. */
#include "testlib.h"

#include <errno.h>
#include <stdint.h>

#include "proto/json.h"
#include "util/alloc.h"
#include "util/buf.h"

/* Inputs are given with explicit lengths so that embedded NULs can be tested. */
#define S(lit) lit, sizeof(lit) - 1

typedef struct RefuseCase {
    const char *input;
    size_t len;
    unsigned flags;
    JsonReadCode code;
    size_t offset;
} RefuseCase;

static const RefuseCase refuse_cases[] = {
    /* syntax */
    { S(""), 0, JSON_E_SYNTAX, 0 },
    { S("   "), 0, JSON_E_SYNTAX, 3 },
    { S("{"), 0, JSON_E_SYNTAX, 1 },
    { S("[1,]"), 0, JSON_E_SYNTAX, 3 },
    { S("[1 2]"), 0, JSON_E_SYNTAX, 3 },
    { S("[]]"), 0, JSON_E_SYNTAX, 2 },
    { S("{\"a\" 1}"), 0, JSON_E_SYNTAX, 5 },
    { S("{\"a\":1,}"), 0, JSON_E_SYNTAX, 7 },
    { S("{'a':1}"), 0, JSON_E_SYNTAX, 1 },
    { S("{a:1}"), 0, JSON_E_SYNTAX, 1 },
    { S("01"), 0, JSON_E_SYNTAX, 1 },
    { S("[-012]"), 0, JSON_E_SYNTAX, 3 },
    { S("-"), 0, JSON_E_SYNTAX, 1 },
    { S("-a"), 0, JSON_E_SYNTAX, 1 },
    { S("+1"), 0, JSON_E_SYNTAX, 0 },
    { S(".5"), 0, JSON_E_SYNTAX, 0 },
    { S("1."), 0, JSON_E_SYNTAX, 2 },
    { S("1.x"), 0, JSON_E_SYNTAX, 2 },
    { S("1e"), 0, JSON_E_SYNTAX, 2 },
    { S("1e+"), 0, JSON_E_SYNTAX, 3 },
    { S("NaN"), 0, JSON_E_SYNTAX, 0 },
    { S("Infinity"), 0, JSON_E_SYNTAX, 0 },
    { S("tru"), 0, JSON_E_SYNTAX, 3 },
    { S("trUe"), 0, JSON_E_SYNTAX, 2 },
    { S("nul1"), 0, JSON_E_SYNTAX, 3 },
    { S("1 x"), 0, JSON_E_SYNTAX, 2 },
    { S("{} {}"), 0, JSON_E_SYNTAX, 3 },
    { S("1\0"), 0, JSON_E_SYNTAX, 1 },
    { S("[\0]"), 0, JSON_E_SYNTAX, 1 },
    { S("\f1"), 0, JSON_E_SYNTAX, 0 },           /* form feed is not JSON whitespace */
    { S("\"abc"), 0, JSON_E_SYNTAX, 4 },
    { S("\"a\x01\""), 0, JSON_E_SYNTAX, 2 },     /* raw control character */
    { S("\"a\nb\""), 0, JSON_E_SYNTAX, 2 },
    { S("\"a\0b\""), 0, JSON_E_SYNTAX, 2 },
    { S("\"\\x\""), 0, JSON_E_SYNTAX, 2 },
    { S("\"\\u12G4\""), 0, JSON_E_SYNTAX, 5 },
    { S("\"\\u12"), 0, JSON_E_SYNTAX, 5 },
    { S("\"\\"), 0, JSON_E_SYNTAX, 2 },
    { S("\"\\ud800\\u12\""), 0, JSON_E_SYNTAX, 11 },
    { S("\xef\xbb\xbf{}"), 0, JSON_E_SYNTAX, 0 }, /* byte order mark */
    /* invalid UTF-8 */
    { S("\"\xff\""), 0, JSON_E_UTF8, 1 },
    { S("\"a\xc3\""), 0, JSON_E_UTF8, 2 },       /* truncated sequence */
    { S("\"\xc0\xaf\""), 0, JSON_E_UTF8, 1 },    /* overlong */
    { S("\"\xed\xa0\x80\""), 0, JSON_E_UTF8, 1 }, /* encoded surrogate */
    { S("\"\xf4\x90\x80\x80\""), 0, JSON_E_UTF8, 1 }, /* above U+10FFFF */
    { S("{\"k\xff\":1}"), 0, JSON_E_UTF8, 3 },
    { S("\xff"), 0, JSON_E_UTF8, 0 },
    { S("[1,\xfe]"), 0, JSON_E_UTF8, 3 },
    /* duplicate keys, also when spelled differently or nested */
    { S("{\"a\":1,\"a\":2}"), 0, JSON_E_DUPLICATE_KEY, 7 },
    { S("{\"a\":1,\"\\u0061\":2}"), 0, JSON_E_DUPLICATE_KEY, 7 },
    { S("{\"x\":[{\"b\":1, \"b\":1}]}"), 0, JSON_E_DUPLICATE_KEY, 14 },
    { S("{\"a\\u0000b\":1,\"a\\u0000b\":2}"), 0, JSON_E_DUPLICATE_KEY, 14 },
    /* integers outside the safe range */
    { S("9007199254740992"), 0, JSON_E_INT_RANGE, 0 },
    { S("-9007199254740992"), 0, JSON_E_INT_RANGE, 0 },
    { S("[1, 123456789012345678901234567890]"), 0, JSON_E_INT_RANGE, 4 },
    { S("{\"n\":99999999999999999999999}"), 0, JSON_E_INT_RANGE, 5 },
    /* reals, whatever their value */
    { S("1.0"), 0, JSON_E_REAL, 0 },
    { S("-0.0"), 0, JSON_E_REAL, 0 },
    { S("1e5"), 0, JSON_E_REAL, 0 },
    { S("[0, 2E-3]"), 0, JSON_E_REAL, 4 },
    { S("123456789012345678901234567890.5"), 0, JSON_E_REAL, 0 },
    { S("{\"amount\":15.00}"), 0, JSON_E_REAL, 10 },
    /* 33 levels: depth is checked when a container opens */
    { S("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["), 0, JSON_E_DEPTH, 32 },
    /* array-index keys, also escaped */
    { S("{\"0\":1}"), 0, JSON_E_INDEX_KEY, 1 },
    { S("{\"a\":{\"4294967294\":1}}"), 0, JSON_E_INDEX_KEY, 6 },
    { S("{\"\\u0031\\u0030\":1}"), 0, JSON_E_INDEX_KEY, 1 },
    /* surrogate escapes that do not form a pair */
    { S("\"\\ud800\""), 0, JSON_E_LONE_SURROGATE, 1 },
    { S("\"\\uDC00\""), 0, JSON_E_LONE_SURROGATE, 1 },
    { S("\"x\\ud800\\u0041\""), 0, JSON_E_LONE_SURROGATE, 2 },
    { S("\"\\ud800x\""), 0, JSON_E_LONE_SURROGATE, 1 },
    { S("\"\\ud800\\ud800\""), 0, JSON_E_LONE_SURROGATE, 1 },
    { S("\"\\udbff\\ue000\""), 0, JSON_E_LONE_SURROGATE, 1 },
    { S("{\"k\\udfff\":1}"), 0, JSON_E_LONE_SURROGATE, 3 },
    /* not an object at the top */
    { S("[1]"), JSON_READ_OBJECT, JSON_E_NOT_OBJECT, 0 },
    { S("  \"s\""), JSON_READ_OBJECT, JSON_E_NOT_OBJECT, 2 },
    { S("1"), JSON_READ_OBJECT, JSON_E_NOT_OBJECT, 0 },
    { S("null"), JSON_READ_OBJECT, JSON_E_NOT_OBJECT, 0 },
    { S("[1,]"), JSON_READ_OBJECT, JSON_E_SYNTAX, 3 }, /* broken input is a syntax error first */
};

/* The input made printable, so that a TAP line never breaks or hides bytes. */
static const char *show(const char *s, size_t len)
{
    static char out[512];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < sizeof(out); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", c);
    }
    out[o] = '\0';
    return out;
}

static void test_refusals(void)
{
    bool seen[JSON_E_NOT_OBJECT + 1] = { false };
    for (size_t i = 0; i < OC_ARRAY_LEN(refuse_cases); i++) {
        const RefuseCase *c = &refuse_cases[i];
        json_t *sentinel = (json_t *)&seen; /* any non-NULL pointer: *out must stay as it was */
        json_t *v = sentinel;
        JsonReadError err = { 0, 0, NULL };
        int r = json_read_strict(c->input, c->len, c->flags, &v, &err);
        bool ok = r == (int)c->code && err.code == c->code && err.offset == c->offset &&
                  err.reason && err.reason[0] && v == sentinel;
        CHECK(ok, "refuse case %zu (code %d at %zu): %s", i, c->code, c->offset,
              show(c->input, c->len));
        if (!ok)
            printf("#   got %d at %zu (%s)\n", r, r > 0 ? err.offset : 0,
                   r > 0 && err.reason ? err.reason : "-");
        if (r == 0 && v != sentinel)
            json_decref(v);
        seen[c->code] = true;
    }
    bool all = true;
    for (int code = JSON_E_SYNTAX; code <= JSON_E_NOT_OBJECT; code++)
        all = all && seen[code];
    CHECK(all, "the refusal table covers every JsonReadCode");

    json_t *v = NULL;
    CHECK_INT(json_read_strict(S("{\"a\":1,\"a\":2}"), 0, &v, NULL), JSON_E_DUPLICATE_KEY,
              "err may be NULL");
    CHECK(v == NULL, "*out untouched when err is NULL");
    if (v)
        json_decref(v);
}

/* Reads text that must be accepted; bails out otherwise so later checks do not crash. */
static json_t *accept(const char *text, size_t len, unsigned flags, const char *what)
{
    json_t *v = NULL;
    JsonReadError err = { 0, 0, NULL };
    int r = json_read_strict(text, len, flags, &v, &err);
    CHECK(r == 0 && v != NULL, "accepts %s", what);
    if (r != 0) {
        printf("#   refused with %d at %zu (%s)\n", r, r > 0 ? err.offset : 0,
               r > 0 ? err.reason : "-");
        return NULL;
    }
    return v;
}

static void check_string(const char *text, size_t len, const char *want, size_t want_len,
                         const char *what)
{
    json_t *v = accept(text, len, 0, what);
    if (!v)
        return;
    CHECK(json_is_string(v), "%s is a string", what);
    CHECK_BYTES(json_string_value(v), json_string_length(v), want, want_len, "%s decodes", what);
    json_decref(v);
}

static void check_integer(const char *text, size_t len, long long want, const char *what)
{
    json_t *v = accept(text, len, 0, what);
    if (!v)
        return;
    CHECK(json_is_integer(v), "%s is an integer", what);
    CHECK_INT(json_integer_value(v), want, "%s value", what);
    json_decref(v);
}

static void test_strings(void)
{
    check_string(S("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""), S("\"\\/\b\f\n\r\t"), "simple escapes");
    check_string(S("\"a\\u0000b\""), S("a\0b"), "\\u0000 inside a value");
    check_string(S("\"\\u0000\""), S("\0"), "a value that is only U+0000");
    check_string(S("\"\\u00e9\\u00E9\\u20ac\\uffff\""), S("\xc3\xa9\xc3\xa9\xe2\x82\xac\xef\xbf\xbf"),
                 "BMP escapes in either case");
    check_string(S("\"\\ud834\\udd1e\""), S("\xf0\x9d\x84\x9e"), "surrogate pair escape");
    check_string(S("\"\\uD83D\\uDE00x\""), S("\xf0\x9f\x98\x80x"), "upper-case surrogate pair");
    check_string(S("\"\\udbff\\udfff\""), S("\xf4\x8f\xbf\xbf"), "highest surrogate pair");
    check_string(S("\"\xf0\x9d\x84\x9e \xe2\x80\xa8 \x7f \xc3\xa9\""),
                 S("\xf0\x9d\x84\x9e \xe2\x80\xa8 \x7f \xc3\xa9"), "raw UTF-8 passes through");
    check_string(S("\"\""), S(""), "empty string");

    json_t *v = accept(S("{\"k\\u0000\":1,\"k\":2,\"\":3}"), 0, "\\u0000 inside a key");
    if (v) {
        json_t *nul_key = json_object_getn(v, "k\0", 2);
        json_t *plain = json_object_getn(v, "k", 1);
        json_t *empty = json_object_getn(v, "", 0);
        CHECK(nul_key && json_integer_value(nul_key) == 1, "key \"k\\0\" keeps its NUL");
        CHECK(plain && json_integer_value(plain) == 2, "key \"k\" is a different key");
        CHECK(empty && json_integer_value(empty) == 3, "empty key");
        CHECK_INT(json_object_size(v), 3, "three members");
        json_decref(v);
    }
}

static void test_numbers_and_literals(void)
{
    check_integer(S("9007199254740991"), 9007199254740991LL, "max safe integer");
    check_integer(S("-9007199254740991"), -9007199254740991LL, "min safe integer");
    check_integer(S("-0"), 0, "-0");
    check_integer(S("0"), 0, "0");
    check_integer(S("  -42 \n"), -42, "negative integer with whitespace");
    check_integer(S("1706500500"), 1706500500LL, "a timestamp");

    json_t *v = accept(S("[true,false,null,[],{}]"), 0, "literals and empty containers");
    if (v) {
        CHECK(json_array_size(v) == 5 && json_is_true(json_array_get(v, 0)) &&
                  json_is_false(json_array_get(v, 1)) && json_is_null(json_array_get(v, 2)) &&
                  json_array_size(json_array_get(v, 3)) == 0 &&
                  json_object_size(json_array_get(v, 4)) == 0,
              "literal and empty container values");
        json_decref(v);
    }
}

static void test_whitespace_and_flags(void)
{
    json_t *v = accept(S(" \t\n\r{ \"a\" :\t[ 1 ,\r\n2 ] ,\"b\":{ } } \r\n"), JSON_READ_OBJECT,
                       "all four whitespace bytes between tokens");
    if (v) {
        json_t *a = json_object_get(v, "a");
        CHECK(json_array_size(a) == 2 && json_integer_value(json_array_get(a, 1)) == 2,
              "whitespace does not change the value");
        json_decref(v);
    }
    v = accept(S("[1]"), 0, "a top-level array without JSON_READ_OBJECT");
    json_decref(v);
    v = accept(S("\"s\""), 0, "a top-level string without JSON_READ_OBJECT");
    json_decref(v);
    v = accept(S("{}"), JSON_READ_OBJECT, "an empty object with JSON_READ_OBJECT");
    json_decref(v);
}

/* n nested arrays, or objects {"a":...}, around 1. */
static char *nested(unsigned n, bool objects, size_t *len)
{
    Buf b = BUF_INIT;
    for (unsigned i = 0; i < n; i++)
        buf_puts(&b, objects ? "{\"a\":" : "[");
    buf_putc(&b, '1');
    for (unsigned i = 0; i < n; i++)
        buf_putc(&b, objects ? '}' : ']');
    char *out = NULL;
    if (buf_finish(&b, &out, len) != 0) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    return out;
}

static void test_depth(void)
{
    for (int objects = 0; objects <= 1; objects++) {
        const char *kind = objects ? "objects" : "arrays";
        size_t len;
        char *text = nested(JSON_STRICT_MAX_DEPTH, objects, &len);
        json_t *v = accept(text, len, 0, objects ? "32 nested objects" : "32 nested arrays");
        json_decref(v);
        oc_free(text);

        text = nested(JSON_STRICT_MAX_DEPTH + 1, objects, &len);
        v = NULL;
        JsonReadError err = { 0, 0, NULL };
        int r = json_read_strict(text, len, 0, &v, &err);
        size_t want_at = objects ? 5 * JSON_STRICT_MAX_DEPTH : JSON_STRICT_MAX_DEPTH;
        CHECK(r == JSON_E_DEPTH && err.offset == want_at && v == NULL,
              "33 nested %s refused with JSON_E_DEPTH at the 33rd opener (%zu)", kind, want_at);
        oc_free(text);

        /* Far deeper input must not recurse without bound. */
        text = nested(100000, objects, &len);
        r = json_read_strict(text, len, 0, &v, &err);
        CHECK(r == JSON_E_DEPTH && v == NULL, "100000 nested %s refused", kind);
        oc_free(text);
    }
}

/* Copies of tests/vectors/opencharge-vectors.json ("duplicate_keys", "array_index_keys"). */
static void test_vectors(void)
{
    static const char dup_body[] = "{\"proof\":{\"txid\":\"a\",\"txid\":\"b\"},\"signature\":\"00\"}";
    static const unsigned flags[] = { 0, JSON_READ_OBJECT };
    for (size_t i = 0; i < OC_ARRAY_LEN(flags); i++) {
        json_t *v = NULL;
        JsonReadError err = { 0, 0, NULL };
        int r = json_read_strict(S(dup_body), flags[i], &v, &err);
        CHECK(r == JSON_E_DUPLICATE_KEY && err.offset == 21 && v == NULL,
              "duplicate_keys vector refused at the second \"txid\" (flags %u)", flags[i]);
        if (r == 0)
            json_decref(v);
    }

    static const char *const index_refused[] = {
        "{\"10\":2,\"9\":3,\"a\":1}",
        "{\"proof\":{\"0\":\"x\",\"txid\":\"t\"}}",
    };
    static const size_t index_at[] = { 1, 10 };
    for (size_t i = 0; i < OC_ARRAY_LEN(index_refused); i++) {
        json_t *v = NULL;
        JsonReadError err = { 0, 0, NULL };
        int r = json_read_strict(index_refused[i], strlen(index_refused[i]), JSON_READ_OBJECT,
                                 &v, &err);
        CHECK(r == JSON_E_INDEX_KEY && err.offset == index_at[i] && v == NULL,
              "array_index_keys.refused[%zu] refused with JSON_E_INDEX_KEY at %zu", i,
              index_at[i]);
        if (r == 0)
            json_decref(v);
    }

    json_t *v = accept(S("{\"01\":1,\"-1\":2,\"4294967295\":3,\"1.5\":4}"), JSON_READ_OBJECT,
                       "array_index_keys.accepted_not_index[0]");
    if (v) {
        CHECK(json_object_size(v) == 4 && json_integer_value(json_object_get(v, "1.5")) == 4,
              "keys that are not array indices are kept");
        json_decref(v);
    }
}

static void test_array_index(void)
{
    static const struct {
        const char *key;
        size_t len;
        bool index;
    } cases[] = {
        { S("0"), true },
        { S("1"), true },
        { S("9"), true },
        { S("10"), true },
        { S("4294967294"), true },
        { S("4294967295"), false },
        { S("4294967296"), false },
        { S("9999999999"), false },
        { S("10000000000"), false },
        { S("01"), false },
        { S("00"), false },
        { S("-1"), false },
        { S("-0"), false },
        { S("1.5"), false },
        { S("1e3"), false },
        { S(""), false },
        { S(" 1"), false },
        { S("1 "), false },
        { S("1a"), false },
        { S("0\0"), false },
        { S("\xd9\xa1"), false }, /* ARABIC-INDIC DIGIT ONE is not a digit here */
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++)
        CHECK(json_key_is_array_index(cases[i].key, cases[i].len) == cases[i].index,
              "json_key_is_array_index(\"%s\") is %s", show(cases[i].key, cases[i].len),
              cases[i].index ? "true" : "false");
}

int main(void)
{
    test_refusals();
    test_strings();
    test_numbers_and_literals();
    test_whitespace_and_flags();
    test_depth();
    test_vectors();
    test_array_index();
    return tl_done();
}
