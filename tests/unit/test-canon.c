/* Unit tests for the canonical JSON writer (proto/canon.h): every canonical vector in both
 * forms with its SHA-256, key order by UTF-16 code unit, the escaping of every C0 control,
 * refusals of values built in code, and an allocation-failure loop over reader and writer.
 * Usage: test-canon <path to tests/vectors/opencharge-vectors.json> */
#include "testlib.h"
#include "vectorlib.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include "proto/canon.h"
#include "proto/json.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hex.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- helpers ------------------------------------------------------------------------- */

/* A string member of a vector, or NULL (with a failed check) when it is missing. Unlike
 * vectorlib.h's vstr, which bails out, every call here is a TAP point. */
static const char *vstr_checked(const json_t *obj, const char *key, size_t *len, const char *what)
{
    const json_t *s = json_object_get(obj, key);
    CHECK(json_is_string(s), "%s: vector has string \"%s\"", what, key);
    if (!json_is_string(s))
        return NULL;
    if (len)
        *len = json_string_length(s);
    return json_string_value(s);
}

static json_t *read_input(const char *text, size_t len, const char *what)
{
    json_t *v = NULL;
    JsonReadError err = { 0, 0, NULL };
    int r = json_read_strict(text, len, 0, &v, &err);
    CHECK(r == 0, "%s: json_read_strict accepts the input", what);
    if (r)
        printf("#   refused with %d at %zu (%s)\n", r, r > 0 ? err.offset : 0,
               r > 0 ? err.reason : "-");
    return r ? NULL : v;
}

static void check_canon(const json_t *value, CanonForm form, const char *want, size_t want_len,
                        const char *what)
{
    char *out = NULL;
    size_t out_len = 0;
    int r = canon_write(value, form, &out, &out_len);
    if (r)
        printf("#   canon_write returned %d\n", r);
    CHECK_BYTES(r == 0 ? out : NULL, out_len, want, want_len, "%s: %s form", what,
                canon_form_name(form));
    if (r == 0) {
        CHECK(out[out_len] == '\0', "%s: %s output is NUL-terminated", what,
              canon_form_name(form));
        oc_free(out);
    }
}

static void check_sha(const json_t *value, CanonForm form, const char *want_hex, const char *what)
{
    uint8_t digest[32];
    char hex[65] = "";
    int r = canon_sha256(value, form, digest);
    if (r == 0)
        hex_encode(digest, sizeof(digest), hex);
    CHECK(r == 0 && strcmp(hex, want_hex) == 0, "%s: canon_sha256 in %s form", what,
          canon_form_name(form));
    if (r || strcmp(hex, want_hex) != 0)
        printf("#   got %s (%d), want %s\n", hex, r, want_hex);
}

static void check_refused(const json_t *value, CanonForm form, int want, const char *what)
{
    char *out = (char *)"untouched";
    size_t out_len = 12345;
    int r = canon_write(value, form, &out, &out_len);
    CHECK_INT(r, want, "%s: %s form refused", what, canon_form_name(form));
    CHECK(strcmp(out, "untouched") == 0 && out_len == 12345, "%s: outputs untouched", what);
    if (r == 0)
        oc_free(out);
    uint8_t digest[32];
    CHECK_INT(canon_sha256(value, form, digest), want, "%s: canon_sha256 in %s form refused",
              what, canon_form_name(form));
}

/* ---- vectors ------------------------------------------------------------------------- */

static void test_canonical_json_vectors(const json_t *vectors)
{
    const json_t *list = json_object_get(vectors, "canonical_json");
    size_t i;
    const json_t *vec;
    json_array_foreach(list, i, vec) {
        char what[64];
        snprintf(what, sizeof(what), "canonical_json[%zu]", i);
        size_t in_len, strict_len, legacy_len;
        const char *in = vstr_checked(vec, "input", &in_len, what);
        const char *strict = vstr_checked(vec, "strict", &strict_len, what);
        const char *legacy = vstr_checked(vec, "legacy_allowlist", &legacy_len, what);
        json_t *v = in ? read_input(in, in_len, what) : NULL;
        if (!v || !strict || !legacy) {
            json_decref(v);
            continue;
        }
        check_canon(v, CANON_STRICT, strict, strict_len, what);
        check_canon(v, CANON_LEGACY, legacy, legacy_len, what);
        json_decref(v);
    }
    CHECK(json_array_size(list) >= 2, "canonical_json has its vectors");
}

/* A signed object: its canonical forms and, when the vector gives them, their hashes. */
static void check_signed_object(const json_t *vec, const char *input_field, const char *what)
{
    size_t in_len, strict_len, legacy_len;
    const char *in = vstr_checked(vec, input_field, &in_len, what);
    const char *strict = vstr_checked(vec, "strict_canonical", &strict_len, what);
    const char *legacy = NULL;
    if (json_object_get(vec, "legacy_canonical"))
        legacy = vstr_checked(vec, "legacy_canonical", &legacy_len, what);
    json_t *v = in ? read_input(in, in_len, what) : NULL;
    if (!v)
        return;
    if (strict)
        check_canon(v, CANON_STRICT, strict, strict_len, what);
    if (legacy)
        check_canon(v, CANON_LEGACY, legacy, legacy_len, what);
    if (json_object_get(vec, "strict_sha256"))
        check_sha(v, CANON_STRICT, vstr_checked(vec, "strict_sha256", NULL, what), what);
    if (json_object_get(vec, "legacy_sha256"))
        check_sha(v, CANON_LEGACY, vstr_checked(vec, "legacy_sha256", NULL, what), what);
    json_decref(v);
}

static void test_signed_vectors(const json_t *vectors)
{
    const json_t *proofs = json_object_get(vectors, "proofs");
    size_t i;
    const json_t *vec;
    json_array_foreach(proofs, i, vec) {
        char what[64];
        snprintf(what, sizeof(what), "proofs[%zu]", i);
        check_signed_object(vec, "proof_json", what);
    }
    CHECK(json_array_size(proofs) >= 3, "proofs has its vectors");
    check_signed_object(json_object_get(vectors, "gateway_proof"), "proof_json", "gateway_proof");
    check_signed_object(json_object_get(vectors, "metadata_config"), "config_json",
                        "metadata_config");

    const json_t *accepted =
        json_object_get(json_object_get(vectors, "array_index_keys"), "accepted_not_index");
    json_array_foreach(accepted, i, vec) {
        char what[64];
        snprintf(what, sizeof(what), "array_index_keys.accepted_not_index[%zu]", i);
        size_t in_len, strict_len;
        const char *in = vstr_checked(vec, "input", &in_len, what);
        const char *strict = vstr_checked(vec, "strict", &strict_len, what);
        json_t *v = in ? read_input(in, in_len, what) : NULL;
        if (v && strict)
            check_canon(v, CANON_STRICT, strict, strict_len, what);
        json_decref(v);
    }
}

/* ---- key order ----------------------------------------------------------------------- */

static void test_key_cmp(void)
{
    static const struct {
        const char *a;
        size_t a_len;
        const char *b;
        size_t b_len;
        int sign;
    } cases[] = {
        { S(""), S(""), 0 },
        { S(""), S("a"), -1 },
        { S("a"), S("a"), 0 },
        { S("a"), S("b"), -1 },
        { S("B"), S("a"), -1 },
        { S("ab"), S("a"), 1 },
        { S("a\0"), S("a"), 1 },          /* a NUL is a real code unit, not a terminator */
        { S("a\0b"), S("a\0c"), -1 },
        { S("a\0z"), S("a\x01"), -1 },
        { S("\x7f"), S("\xc2\x80"), -1 },
        { S("\xc3\xa9"), S("\xe2\x82\xac"), -1 },
        { S("\xed\x9f\xbf"), S("\xf0\x9d\x84\x9e"), -1 },   /* U+D7FF < U+1D11E (D834 DD1E) */
        { S("\xf0\x9d\x84\x9e"), S("\xee\x80\x80"), -1 },   /* U+1D11E < U+E000 */
        { S("\xf0\x9d\x84\x9e"), S("\xef\xbf\xbf"), -1 },   /* U+1D11E < U+FFFF */
        { S("\xf4\x8f\xbf\xbf"), S("\xee\x80\x80"), -1 },   /* U+10FFFF < U+E000 */
        { S("\xef\xbf\xbf"), S("\xf0\x90\x80\x80"), 1 },    /* U+FFFF > U+10000 */
        { S("\xee\x80\x80"), S("\xef\xbf\xbf"), -1 },       /* U+E000 < U+FFFF */
        { S("\xf0\x90\x80\x80"), S("\xf4\x8f\xbf\xbf"), -1 }, /* U+10000 < U+10FFFF */
        { S("x\xf0\x9f\x98\x80"), S("x\xef\xbc\xa1"), -1 }, /* U+1F600 < U+FF21 after a prefix */
        { S("\xef\xbc\xa1"), S("\xef\xbc\xa1"), 0 },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        int r = canon_key_cmp(cases[i].a, cases[i].a_len, cases[i].b, cases[i].b_len);
        int back = canon_key_cmp(cases[i].b, cases[i].b_len, cases[i].a, cases[i].a_len);
        int sign = (r > 0) - (r < 0);
        int back_sign = (back > 0) - (back < 0);
        CHECK(sign == cases[i].sign && back_sign == -cases[i].sign,
              "canon_key_cmp case %zu gives %d both ways round", i, cases[i].sign);
    }

    /* The same order in a written object, keys with NULs and the empty key included. Expected
     * bytes from Node: JSON.stringify(keys.sort()). */
    static const struct {
        const char *key;
        size_t len;
    } keys[] = {
        { S("\xef\xbf\xbf") }, { S("\xf0\x9d\x84\x9e") }, { S("\xee\x80\x80") },
        { S("\xed\x9f\xbf") }, { S("z") }, { S("a\0b") }, { S("a") }, { S("a\0") }, { S("") },
    };
    json_t *obj = json_object();
    for (size_t i = 0; i < OC_ARRAY_LEN(keys); i++)
        json_object_setn_new_nocheck(obj, keys[i].key, keys[i].len, json_integer((json_int_t)i));
    static const char want[] = "{\"\":8,\"a\":6,\"a\\u0000\":7,\"a\\u0000b\":5,\"z\":4,"
                               "\"\xed\x9f\xbf\":3,\"\xf0\x9d\x84\x9e\":1,\"\xee\x80\x80\":2,"
                               "\"\xef\xbf\xbf\":0}";
    check_canon(obj, CANON_STRICT, S(want), "keys sorted by UTF-16 code unit");
    check_canon(obj, CANON_LEGACY, S(want), "flat object, legacy equals strict");
    json_decref(obj);
}

/* ---- escaping ------------------------------------------------------------------------ */

static void test_escaping(void)
{
    static const char *const c0[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    for (unsigned c = 0; c < 32; c++) {
        char in[3] = { 'x', (char)c, 'y' };
        char want[16];
        int n = snprintf(want, sizeof(want), "\"x%sy\"", c0[c]);
        json_t *s = json_stringn_nocheck(in, sizeof(in));
        char what[32];
        snprintf(what, sizeof(what), "escape of 0x%02x", c);
        check_canon(s, CANON_STRICT, want, (size_t)n, what);
        json_decref(s);
    }

    static const struct {
        const char *in;
        size_t in_len;
        const char *want;
        size_t want_len;
    } raw[] = {
        { S("\""), S("\"\\\"\"") },
        { S("\\"), S("\"\\\\\"") },
        { S("/"), S("\"/\"") },
        { S("\x7f"), S("\"\x7f\"") },
        { S(" ~"), S("\" ~\"") },
        { S("\xe2\x80\xa8\xe2\x80\xa9"), S("\"\xe2\x80\xa8\xe2\x80\xa9\"") }, /* U+2028/9 raw */
        { S("\xc2\x80\xc3\xa9\xef\xbf\xbf\xf4\x8f\xbf\xbf"),
          S("\"\xc2\x80\xc3\xa9\xef\xbf\xbf\xf4\x8f\xbf\xbf\"") },
        { S("<tag>&'"), S("\"<tag>&'\"") },
        { S(""), S("\"\"") },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(raw); i++) {
        json_t *s = json_stringn_nocheck(raw[i].in, raw[i].in_len);
        char what[32];
        snprintf(what, sizeof(what), "raw/quoted case %zu", i);
        check_canon(s, CANON_STRICT, raw[i].want, raw[i].want_len, what);
        json_decref(s);
    }

    /* Keys use the same escaping. */
    json_t *obj = json_object();
    json_object_setn_new_nocheck(obj, "\"\n\\\x1f", 4, json_true());
    check_canon(obj, CANON_STRICT, S("{\"\\\"\\n\\\\\\u001f\":true}"), "escaped key");
    json_decref(obj);
}

/* ---- scalars, structure, legacy ------------------------------------------------------ */

static void test_values(void)
{
    json_t *v = json_pack("{s:I, s:I, s:I, s:b, s:b, s:n, s:[], s:{}}", "max",
                          (json_int_t)JSON_STRICT_MAX_SAFE_INT, "min",
                          (json_int_t)-JSON_STRICT_MAX_SAFE_INT, "zero", (json_int_t)0, "t", 1,
                          "f", 0, "n", "ea", "eo");
    check_canon(v, CANON_STRICT,
                S("{\"ea\":[],\"eo\":{},\"f\":false,\"max\":9007199254740991,"
                  "\"min\":-9007199254740991,\"n\":null,\"t\":true,\"zero\":0}"),
                "scalars and empty containers");
    json_decref(v);

    v = json_pack("[i, s, [], {}]", -1, "x");
    check_canon(v, CANON_STRICT, S("[-1,\"x\",[],{}]"), "top-level array");
    json_decref(v);
    v = json_string("top");
    check_canon(v, CANON_STRICT, S("\"top\""), "top-level string");
    json_decref(v);
    v = json_null();
    check_canon(v, CANON_STRICT, S("null"), "top-level null");

    /* Legacy: the sorted top-level keys filter every depth, objects inside arrays too.
     * Expected bytes from Node: JSON.stringify(o, Object.keys(o).sort()). */
    static const char legacy_in[] =
        "{\"b\":{\"a\":1,\"c\":2,\"b\":3},\"a\":[{\"b\":1,\"x\":2},[{\"a\":{\"z\":1}}]]}";
    v = read_input(S(legacy_in), "legacy allow-list input");
    if (v) {
        check_canon(v, CANON_LEGACY, S("{\"a\":[{\"b\":1},[{\"a\":{}}]],\"b\":{\"a\":1,\"b\":3}}"),
                    "legacy allow-list at every depth");
        check_canon(v, CANON_STRICT,
                    S("{\"a\":[{\"b\":1,\"x\":2},[{\"a\":{\"z\":1}}]],\"b\":{\"a\":1,\"b\":3,"
                      "\"c\":2}}"),
                    "the same value in strict form");
        json_decref(v);
    }
    v = read_input(S("{\"x\":{\"x\":{\"y\":1,\"x\":[]}}}"), "legacy nested input");
    if (v) {
        check_canon(v, CANON_LEGACY, S("{\"x\":{\"x\":{\"x\":[]}}}"), "legacy nested filter");
        json_decref(v);
    }
    v = json_object();
    check_canon(v, CANON_LEGACY, S("{}"), "legacy empty object");
    json_decref(v);

    /* 64 levels built in code are written; 65 are refused. */
    json_t *deep = json_integer(1);
    for (int i = 0; i < 64; i++) {
        json_t *arr = json_array();
        json_array_append_new(arr, deep);
        deep = arr;
    }
    char *out = NULL;
    size_t out_len = 0;
    CHECK(canon_write(deep, CANON_STRICT, &out, &out_len) == 0 && out_len == 129,
          "64 nested arrays are written");
    if (out)
        oc_free(out);
    json_t *deeper = json_object();
    json_object_set_new(deeper, "k", deep);
    check_refused(deeper, CANON_STRICT, CANON_E_DEPTH, "65 nested containers");
    check_refused(deeper, CANON_LEGACY, CANON_E_DEPTH, "65 nested containers");
    json_decref(deeper);
}

static void test_refusals(void)
{
    json_t *v = json_real(1.0);
    check_refused(v, CANON_STRICT, CANON_E_REAL, "json_real at the top");
    json_decref(v);
    v = json_pack("{s:[i, f]}", "a", 1, 2.5);
    check_refused(v, CANON_STRICT, CANON_E_REAL, "nested json_real");
    json_decref(v);
    /* Legacy would drop "b", but both forms refuse the same values. */
    v = json_pack("{s:{s:f}}", "a", "b", 1.5);
    check_refused(v, CANON_LEGACY, CANON_E_REAL, "json_real under a key legacy drops");
    json_decref(v);

    static const json_int_t bad_ints[] = { JSON_STRICT_MAX_SAFE_INT + 1,
                                           -JSON_STRICT_MAX_SAFE_INT - 1, LLONG_MAX, LLONG_MIN };
    for (size_t i = 0; i < OC_ARRAY_LEN(bad_ints); i++) {
        v = json_pack("{s:[I]}", "n", bad_ints[i]);
        char what[64];
        snprintf(what, sizeof(what), "integer %lld", (long long)bad_ints[i]);
        check_refused(v, CANON_STRICT, CANON_E_INT_RANGE, what);
        check_refused(v, CANON_LEGACY, CANON_E_INT_RANGE, what);
        json_decref(v);
    }

    v = json_pack("{s:i}", "7", 1);
    check_refused(v, CANON_STRICT, CANON_E_INDEX_KEY, "index key \"7\" built in code");
    check_refused(v, CANON_LEGACY, CANON_E_INDEX_KEY, "index key \"7\" built in code");
    json_decref(v);
    v = json_pack("{s:[{s:i}]}", "a", "4294967294", 1);
    check_refused(v, CANON_STRICT, CANON_E_INDEX_KEY, "index key inside an array");
    json_decref(v);
    v = json_pack("{s:i, s:i}", "4294967295", 1, "07", 2);
    check_canon(v, CANON_STRICT, S("{\"07\":2,\"4294967295\":1}"), "keys that look numeric");
    json_decref(v);

    v = json_object();
    json_object_set_new(v, "s", json_stringn_nocheck("a\xff", 2));
    check_refused(v, CANON_STRICT, CANON_E_UTF8, "invalid UTF-8 in a string");
    json_decref(v);
    v = json_object();
    json_object_set_new(v, "s", json_stringn_nocheck("\xed\xa0\x80", 3));
    check_refused(v, CANON_LEGACY, CANON_E_UTF8, "an encoded surrogate in a string");
    json_decref(v);
    v = json_object();
    json_object_setn_new_nocheck(v, "k\xc0\xaf", 3, json_true());
    check_refused(v, CANON_STRICT, CANON_E_UTF8, "invalid UTF-8 in a key");
    check_refused(v, CANON_LEGACY, CANON_E_UTF8, "invalid UTF-8 in a key");
    json_decref(v);

    v = json_pack("[{s:i}]", "a", 1);
    check_refused(v, CANON_LEGACY, CANON_E_NOT_OBJECT, "legacy on an array");
    json_decref(v);
    v = json_string("s");
    check_refused(v, CANON_LEGACY, CANON_E_NOT_OBJECT, "legacy on a string");
    json_decref(v);

    char *out = NULL;
    size_t out_len = 0;
    v = json_object();
    CHECK_INT(canon_write(NULL, CANON_STRICT, &out, &out_len), -EINVAL, "NULL value");
    CHECK_INT(canon_write(v, (CanonForm)7, &out, &out_len), -EINVAL, "unknown form");
    json_decref(v);
}

static void test_form_names(void)
{
    CanonForm f = CANON_LEGACY;
    CHECK_STR(canon_form_name(CANON_STRICT), "strict", "name of CANON_STRICT");
    CHECK_STR(canon_form_name(CANON_LEGACY), "legacy", "name of CANON_LEGACY");
    CHECK_STR(canon_form_name((CanonForm)7), "unknown", "name of an out-of-range form");
    CHECK(canon_form_parse("strict", &f) == 0 && f == CANON_STRICT, "parse \"strict\"");
    CHECK(canon_form_parse("legacy", &f) == 0 && f == CANON_LEGACY, "parse \"legacy\"");
    static const char *const bad[] = { "", "Strict", "LEGACY", "strict ", "rfc8785" };
    for (size_t i = 0; i < OC_ARRAY_LEN(bad); i++) {
        f = CANON_LEGACY;
        CHECK(canon_form_parse(bad[i], &f) == -EINVAL && f == CANON_LEGACY,
              "parse \"%s\" is -EINVAL and leaves the output", bad[i]);
    }
    CHECK_INT(canon_form_parse(NULL, &f), -EINVAL, "parse NULL");
}

/* ---- allocation failures ------------------------------------------------------------- */

/* The failing allocator's state is the only global, as in the library itself. */
static long alloc_count;
static long alloc_fail_at = -1;
static bool alloc_failed;

static void *failing_malloc(size_t size)
{
    if (alloc_count++ == alloc_fail_at) {
        alloc_failed = true;
        return NULL;
    }
    return malloc(size);
}

/* One run: every step either fails with -ENOMEM or produces exactly the expected bytes. */
static bool alloc_run(const char *in, size_t in_len, const char *strict, size_t strict_len,
                      const char *legacy, size_t legacy_len, int *nomem_read, int *nomem_canon)
{
    json_t *v = NULL;
    int r = json_read_strict(in, in_len, JSON_READ_OBJECT, &v, NULL);
    if (r == -ENOMEM) {
        ++*nomem_read;
        return true;
    }
    if (r != 0) {
        printf("#   json_read_strict returned %d\n", r);
        return false;
    }
    bool ok = true;
    static const CanonForm forms[] = { CANON_STRICT, CANON_LEGACY };
    for (size_t i = 0; i < OC_ARRAY_LEN(forms); i++) {
        const char *want = forms[i] == CANON_STRICT ? strict : legacy;
        size_t want_len = forms[i] == CANON_STRICT ? strict_len : legacy_len;
        char *out = NULL;
        size_t out_len = 0;
        r = canon_write(v, forms[i], &out, &out_len);
        if (r == -ENOMEM) {
            ++*nomem_canon;
            continue;
        }
        if (r != 0 || out_len != want_len || memcmp(out, want, want_len) != 0) {
            printf("#   canon_write(%s) returned %d\n", canon_form_name(forms[i]), r);
            ok = false;
        }
        if (r == 0)
            oc_free(out);
    }
    json_decref(v);
    return ok;
}

static void check_alloc_failures(const char *in, size_t in_len, const char *strict,
                                 size_t strict_len, const char *legacy, size_t legacy_len,
                                 const char *what)
{
    oc_set_alloc_funcs(failing_malloc, free);
    json_set_alloc_funcs(failing_malloc, free);
    long bad_runs = 0, runs = 0;
    int nomem_read = 0, nomem_canon = 0;
    bool finished = false;
    for (long n = 0; n < 100000 && !finished; n++) {
        alloc_count = 0;
        alloc_fail_at = n;
        alloc_failed = false;
        bool ok = alloc_run(in, in_len, strict, strict_len, legacy, legacy_len, &nomem_read,
                            &nomem_canon);
        runs++;
        if (!ok && bad_runs++ < 5)
            printf("#   %s: run failing allocation %ld went wrong\n", what, n);
        finished = !alloc_failed;
    }
    alloc_fail_at = -1;
    oc_set_alloc_funcs(NULL, NULL);
    json_set_alloc_funcs(malloc, free);

    CHECK(finished, "%s: allocation loop reached a run without failures (%ld runs)", what, runs);
    CHECK(bad_runs == 0, "%s: every run returned -ENOMEM or the exact bytes (%ld bad)", what,
          bad_runs);
    CHECK(nomem_read > 0 && nomem_canon > 0,
          "%s: failures were injected into both reader (%d) and writer (%d)", what, nomem_read,
          nomem_canon);
}

static void test_alloc_failures(const json_t *vectors)
{
    /* The proof with nesting, escapes, astral characters and keys legacy drops. */
    const json_t *vec = json_array_get(json_object_get(vectors, "proofs"), 2);
    size_t in_len, strict_len, legacy_len;
    const char *in = vstr_checked(vec, "proof_json", &in_len, "alloc loop");
    const char *strict = vstr_checked(vec, "strict_canonical", &strict_len, "alloc loop");
    const char *legacy = vstr_checked(vec, "legacy_canonical", &legacy_len, "alloc loop");
    if (in && strict && legacy)
        check_alloc_failures(in, in_len, strict, strict_len, legacy, legacy_len,
                             "alloc loop proofs[2]");

    /* Arrays inside objects inside arrays, and key order beyond ASCII. */
    vec = json_array_get(json_object_get(vectors, "canonical_json"), 0);
    in = vstr_checked(vec, "input", &in_len, "alloc loop");
    strict = vstr_checked(vec, "strict", &strict_len, "alloc loop");
    legacy = vstr_checked(vec, "legacy_allowlist", &legacy_len, "alloc loop");
    if (in && strict && legacy)
        check_alloc_failures(in, in_len, strict, strict_len, legacy, legacy_len,
                             "alloc loop canonical_json[0]");
}

int main(int argc, char **argv)
{
    json_t *vectors = vectors_load(argc, argv, JSON_ALLOW_NUL);
    test_canonical_json_vectors(vectors);
    test_signed_vectors(vectors);
    test_key_cmp();
    test_escaping();
    test_values();
    test_refusals();
    test_form_names();
    test_alloc_failures(vectors);
    json_decref(vectors);
    return tl_done();
}
