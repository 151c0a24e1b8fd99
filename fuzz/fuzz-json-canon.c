/* libFuzzer target: the strict JSON reader (json.h) feeding the canonical writer (canon.h).
 * Whatever the reader accepts must be canonicalisable, canonicalising must be idempotent
 * (parse → canon → parse → canon gives the same bytes), and the legacy form must be the strict
 * form with members dropped, never reordered. Any broken property aborts with a message so
 * libFuzzer saves the input. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/canon.h"
#include "proto/json.h"
#include "proto/keys.h"
#include "util/alloc.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, int code)
{
    fprintf(stderr, "fuzz-json-canon: %s (result %d)\n", what, code);
    abort();
}

/* The reader's error contract: a known code, an offset inside (or just past) the input, and
 * a reason to show. -ENOMEM is allowed; it only happens under a memory limit. */
static void check_read_error(int r, const JsonReadError *err, size_t len)
{
    if (r == -ENOMEM)
        return;
    if (r < JSON_E_SYNTAX || r > JSON_E_NOT_OBJECT)
        fail("json_read_strict returned an undocumented code", r);
    if (err->code != (JsonReadCode)r)
        fail("JsonReadError.code differs from the returned code", r);
    if (err->offset > len)
        fail("JsonReadError.offset is past the end of the input", r);
    if (!err->reason || !err->reason[0])
        fail("JsonReadError.reason is empty", r);
}

/* Properties every canonical text has, whichever form: NUL-terminated, no NUL inside (U+0000
 * is written as \u0000), valid UTF-8, and no raw control characters (JSON.stringify escapes
 * all of U+0000..U+001F). */
static void check_canon_text(const char *text, size_t len, const char *form)
{
    if (!text)
        fail(form, -1);
    if (text[len] != '\0')
        fail("canonical text is not NUL-terminated", (int)len);
    if (memchr(text, '\0', len))
        fail("canonical text contains a NUL byte", (int)len);
    if (!utf8_validate(text, len, NULL))
        fail("canonical text is not valid UTF-8", (int)len);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20)
            fail("canonical text contains a raw control character", (int)i);
}

/* Reads text that ocgate itself wrote; refusing it would mean writer and reader disagree. */
static json_t *must_reread(const char *text, size_t len, const char *what)
{
    json_t *v = NULL;
    JsonReadError err;
    int r = json_read_strict(text, len, 0, &v, &err);
    if (r == -ENOMEM)
        return NULL;
    if (r != 0) {
        fprintf(stderr, "fuzz-json-canon: reader refuses %s at offset %zu: %s\n", what,
                err.offset, err.reason ? err.reason : "?");
        fail("canonical output is not strict JSON", r);
    }
    if (!v)
        fail("json_read_strict succeeded without a value", 0);
    return v;
}

static void check_legacy(const json_t *value, const char *strict, size_t strict_len)
{
    char *legacy = NULL;
    size_t legacy_len = 0;
    int r = canon_write(value, CANON_LEGACY, &legacy, &legacy_len);
    if (r == -ENOMEM)
        return;
    if (r != 0)
        fail("canon_write LEGACY refused an object the strict reader accepted", r);
    check_canon_text(legacy, legacy_len, "canon_write LEGACY gave no text");

    /* The legacy allow-list only removes nested members; both forms sort keys the same way
     * (JavaScript's default sort is by UTF-16 code unit). So the legacy text is never longer,
     * and when nothing was dropped it is byte for byte the strict text. */
    if (legacy_len > strict_len)
        fail("legacy text is longer than strict text", (int)legacy_len);
    if (legacy_len == strict_len && memcmp(legacy, strict, strict_len) != 0)
        fail("legacy text has the strict length but different bytes", (int)legacy_len);

    /* Being sorted and compact, the legacy text is its own strict canonical form, and the
     * allow-list applied again drops nothing more. */
    json_t *again = must_reread(legacy, legacy_len, "LEGACY output");
    if (again) {
        char *c = NULL;
        size_t c_len = 0;
        r = canon_write(again, CANON_STRICT, &c, &c_len);
        if (r != 0 && r != -ENOMEM)
            fail("canon_write STRICT refused the reread legacy text", r);
        if (r == 0 && (c_len != legacy_len || memcmp(c, legacy, legacy_len) != 0))
            fail("strict form of the legacy text differs from the legacy text", (int)c_len);
        oc_free(c);
        c = NULL;
        r = canon_write(again, CANON_LEGACY, &c, &c_len);
        if (r != 0 && r != -ENOMEM)
            fail("canon_write LEGACY refused its own reread output", r);
        if (r == 0 && (c_len != legacy_len || memcmp(c, legacy, legacy_len) != 0))
            fail("canon_write LEGACY is not idempotent", (int)c_len);
        oc_free(c);
        json_decref(again);
    }
    oc_free(legacy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *value = NULL;
    JsonReadError err;
    int r = json_read_strict((const char *)data, size, 0, &value, &err);
    if (r != 0) {
        check_read_error(r, &err, size);
        if (value)
            fail("json_read_strict set *out on failure", r);
        return 0;
    }
    if (!value)
        fail("json_read_strict succeeded without a value", 0);

    char *c1 = NULL;
    size_t c1_len = 0;
    r = canon_write(value, CANON_STRICT, &c1, &c1_len);
    if (r == -ENOMEM)
        goto out;
    if (r != 0)
        fail("canon_write STRICT refused a value the strict reader accepted", r);
    check_canon_text(c1, c1_len, "canon_write STRICT gave no text");

    /* canon_sha256 must hash exactly the bytes canon_write produces. */
    uint8_t d1[32], d2[32];
    r = canon_sha256(value, CANON_STRICT, d1);
    if (r != 0 && r != -ENOMEM)
        fail("canon_sha256 STRICT failed where canon_write succeeded", r);
    if (r == 0) {
        sha256(c1, c1_len, d2);
        if (memcmp(d1, d2, sizeof(d1)) != 0)
            fail("canon_sha256 differs from sha256(canon_write)", 0);
    }

    /* Idempotence: the canonical text, read back, canonicalises to the same bytes. */
    json_t *value2 = must_reread(c1, c1_len, "STRICT output");
    if (value2) {
        char *c2 = NULL;
        size_t c2_len = 0;
        r = canon_write(value2, CANON_STRICT, &c2, &c2_len);
        if (r != 0 && r != -ENOMEM)
            fail("canon_write STRICT refused its own reread output", r);
        if (r == 0 && (c2_len != c1_len || memcmp(c1, c2, c1_len) != 0)) {
            fprintf(stderr, "first:  %.*s\nsecond: %.*s\n", (int)c1_len, c1, (int)c2_len, c2);
            fail("canon_write STRICT is not idempotent", (int)c2_len);
        }
        oc_free(c2);
        json_decref(value2);
    }

    if (json_is_object(value)) {
        check_legacy(value, c1, c1_len);
    } else {
        char *l = NULL;
        size_t l_len = 0;
        r = canon_write(value, CANON_LEGACY, &l, &l_len);
        if (r != CANON_E_NOT_OBJECT)
            fail("canon_write LEGACY of a non-object is not CANON_E_NOT_OBJECT", r);
        if (l)
            fail("canon_write LEGACY set *out on failure", r);
    }

out:
    oc_free(c1);
    json_decref(value);
    return 0;
}
