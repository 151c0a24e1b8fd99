/* Strict JSON reader (json.h): a single recursive-descent pass over untrusted bytes that
 * builds jansson values directly. jansson's own parser is not used because it accepts reals,
 * integers past 2^53 and (without a flag) duplicate keys, and reports lines and columns rather
 * than the byte offsets our error bodies name. */
#include "proto/json.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "util/buf.h"
#include "util/utf8.h"

typedef struct JsonReader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    Buf scratch;        /* decoded string values; reused, so one allocation serves them all */
    JsonReadError *err;
} JsonReader;

static int reader_fail(JsonReader *r, JsonReadCode code, size_t offset, const char *reason)
{
    r->err->code = code;
    r->err->offset = offset;
    r->err->reason = reason;
    return (int)code;
}

/* A byte that cannot start or continue the expected token. Bytes that are not even UTF-8 are
 * named as such, so a mangled encoding is not reported as a grammar mistake. */
static int reader_fail_unexpected(JsonReader *r, const char *reason)
{
    if (r->pos >= r->len)
        return reader_fail(r, JSON_E_SYNTAX, r->pos, "unexpected end of input");
    if (r->p[r->pos] >= 0x80) {
        uint32_t cp;
        if (!utf8_decode(r->p + r->pos, r->len - r->pos, &cp))
            return reader_fail(r, JSON_E_UTF8, r->pos, "invalid UTF-8");
    }
    return reader_fail(r, JSON_E_SYNTAX, r->pos, reason);
}

static void reader_skip_ws(JsonReader *r)
{
    while (r->pos < r->len) {
        unsigned char c = r->p[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

/* Returned by reader_after_member when the container closed; outside JsonReadCode's range. */
#define READER_CLOSED 1000

/* After an array element or object member: consumes "," (returns 0: another follows) or
 * the closing byte (returns READER_CLOSED); anything else is refused with reason. */
static int reader_after_member(JsonReader *r, char close, const char *reason)
{
    reader_skip_ws(r);
    if (r->pos < r->len && r->p[r->pos] == ',') {
        r->pos++;
        reader_skip_ws(r);
        return 0;
    }
    if (r->pos < r->len && r->p[r->pos] == (unsigned char)close) {
        r->pos++;
        return READER_CLOSED;
    }
    return reader_fail_unexpected(r, reason);
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the four hex digits of a \u escape whose backslash is at r->pos. */
static int reader_read_u_escape(JsonReader *r, uint32_t *unit)
{
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        size_t at = r->pos + 2 + i;
        if (at >= r->len)
            return reader_fail(r, JSON_E_SYNTAX, r->len, "unexpected end of input");
        int d = hex_digit(r->p[at]);
        if (d < 0)
            return reader_fail(r, JSON_E_SYNTAX, at, "invalid \\u escape");
        v = (v << 4) | (uint32_t)d;
    }
    r->pos += 6;
    *unit = v;
    return 0;
}

/* Decodes the string whose opening quote is at r->pos into out (which the caller emptied).
 * Returns 0, a JsonReadCode or -ENOMEM. */
static int reader_read_string(JsonReader *r, Buf *out)
{
    r->pos++; /* opening quote */
    for (;;) {
        /* Copy the longest run of bytes that need no decoding in one go. */
        size_t start = r->pos;
        while (r->pos < r->len) {
            unsigned char c = r->p[r->pos];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
                break;
            r->pos++;
        }
        buf_put(out, r->p + start, r->pos - start);

        if (r->pos >= r->len)
            return reader_fail(r, JSON_E_SYNTAX, r->len, "unterminated string");
        unsigned char c = r->p[r->pos];
        if (c == '"') {
            r->pos++;
            return out->error;
        }
        if (c < 0x20)
            return reader_fail(r, JSON_E_SYNTAX, r->pos, "control character in string");
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = utf8_decode(r->p + r->pos, r->len - r->pos, &cp);
            if (!n)
                return reader_fail(r, JSON_E_UTF8, r->pos, "invalid UTF-8");
            buf_put(out, r->p + r->pos, n);
            r->pos += n;
            continue;
        }

        /* c == '\\' */
        size_t esc = r->pos;
        if (esc + 1 >= r->len)
            return reader_fail(r, JSON_E_SYNTAX, r->len, "unterminated string");
        char simple;
        switch (r->p[esc + 1]) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': simple = 0; break;
        default:
            return reader_fail(r, JSON_E_SYNTAX, esc + 1, "invalid escape");
        }
        if (simple) {
            buf_putc(out, simple);
            r->pos += 2;
            continue;
        }

        uint32_t unit;
        int rc = reader_read_u_escape(r, &unit);
        if (rc)
            return rc;
        uint32_t cp = unit;
        if (unit >= 0xdc00 && unit <= 0xdfff)
            return reader_fail(r, JSON_E_LONE_SURROGATE, esc, "lone surrogate escape");
        if (unit >= 0xd800 && unit <= 0xdbff) {
            if (r->pos + 1 >= r->len || r->p[r->pos] != '\\' || r->p[r->pos + 1] != 'u')
                return reader_fail(r, JSON_E_LONE_SURROGATE, esc, "lone surrogate escape");
            uint32_t low;
            rc = reader_read_u_escape(r, &low);
            if (rc)
                return rc;
            if (low < 0xdc00 || low > 0xdfff)
                return reader_fail(r, JSON_E_LONE_SURROGATE, esc, "lone surrogate escape");
            cp = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
        }
        unsigned char enc[4];
        buf_put(out, enc, utf8_encode(cp, enc));
    }
}

/* Integers only: the grammar is checked in full first, so "1.x" is a syntax error and "1.5"
 * a real whatever its magnitude; only then is the range looked at. */
static int reader_read_number(JsonReader *r, json_t **out)
{
    size_t start = r->pos;
    bool negative = false;
    if (r->p[r->pos] == '-') {
        negative = true;
        r->pos++;
    }
    if (r->pos >= r->len || r->p[r->pos] < '0' || r->p[r->pos] > '9')
        return reader_fail_unexpected(r, "expected a digit");

    bool too_big = false;
    long long v = 0;
    if (r->p[r->pos] == '0') {
        r->pos++;
        if (r->pos < r->len && r->p[r->pos] >= '0' && r->p[r->pos] <= '9')
            return reader_fail(r, JSON_E_SYNTAX, r->pos, "leading zero in number");
    } else {
        while (r->pos < r->len && r->p[r->pos] >= '0' && r->p[r->pos] <= '9') {
            int d = r->p[r->pos] - '0';
            if (!too_big && v > (JSON_STRICT_MAX_SAFE_INT - d) / 10)
                too_big = true;
            if (!too_big)
                v = v * 10 + d;
            r->pos++;
        }
    }

    bool real = false;
    if (r->pos < r->len && r->p[r->pos] == '.') {
        r->pos++;
        if (r->pos >= r->len || r->p[r->pos] < '0' || r->p[r->pos] > '9')
            return reader_fail_unexpected(r, "expected a digit after '.'");
        while (r->pos < r->len && r->p[r->pos] >= '0' && r->p[r->pos] <= '9')
            r->pos++;
        real = true;
    }
    if (r->pos < r->len && (r->p[r->pos] == 'e' || r->p[r->pos] == 'E')) {
        r->pos++;
        if (r->pos < r->len && (r->p[r->pos] == '+' || r->p[r->pos] == '-'))
            r->pos++;
        if (r->pos >= r->len || r->p[r->pos] < '0' || r->p[r->pos] > '9')
            return reader_fail_unexpected(r, "expected a digit in exponent");
        while (r->pos < r->len && r->p[r->pos] >= '0' && r->p[r->pos] <= '9')
            r->pos++;
        real = true;
    }
    if (real)
        return reader_fail(r, JSON_E_REAL, start, "number with a fraction or exponent");
    if (too_big)
        return reader_fail(r, JSON_E_INT_RANGE, start, "integer outside +-(2^53-1)");

    json_t *n = json_integer(negative ? -v : v);
    if (!n)
        return -ENOMEM;
    *out = n;
    return 0;
}

static int reader_read_literal(JsonReader *r, const char *word, json_t *(*make)(void),
                               json_t **out)
{
    for (size_t i = 0; word[i]; i++, r->pos++) {
        if (r->pos >= r->len || r->p[r->pos] != (unsigned char)word[i])
            return reader_fail_unexpected(r, "invalid literal");
    }
    json_t *v = make();
    if (!v)
        return -ENOMEM;
    *out = v;
    return 0;
}

static int reader_read_value(JsonReader *r, unsigned depth, json_t **out);

static int reader_read_array(JsonReader *r, unsigned depth, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    r->pos++; /* '[' */
    reader_skip_ws(r);
    int rc = 0;
    if (r->pos < r->len && r->p[r->pos] == ']') {
        r->pos++;
        goto done;
    }
    for (;;) {
        json_t *item = NULL;
        rc = reader_read_value(r, depth, &item);
        if (rc)
            goto done;
        if (json_array_append_new(arr, item)) {
            rc = -ENOMEM;
            goto done;
        }
        rc = reader_after_member(r, ']', "expected ',' or ']'");
        if (rc == 0)
            continue;
        if (rc == READER_CLOSED)
            rc = 0;
        goto done;
    }
done:
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int reader_read_object(JsonReader *r, unsigned depth, json_t **out)
{
    json_t *obj = json_object();
    if (!obj)
        return -ENOMEM;
    /* Keys get their own buffer: the scratch buffer is reused by the member's value. */
    Buf key = BUF_INIT;
    r->pos++; /* '{' */
    reader_skip_ws(r);
    int rc = 0;
    if (r->pos < r->len && r->p[r->pos] == '}') {
        r->pos++;
        goto done;
    }
    for (;;) {
        if (r->pos >= r->len || r->p[r->pos] != '"') {
            rc = reader_fail_unexpected(r, "expected a string key");
            goto done;
        }
        size_t key_at = r->pos;
        key.len = 0;
        rc = reader_read_string(r, &key);
        if (rc)
            goto done;
        const char *k = key.data ? key.data : "";
        if (json_key_is_array_index(k, key.len)) {
            rc = reader_fail(r, JSON_E_INDEX_KEY, key_at, "array-index key");
            goto done;
        }
        if (json_object_getn(obj, k, key.len)) {
            rc = reader_fail(r, JSON_E_DUPLICATE_KEY, key_at, "duplicate key");
            goto done;
        }
        reader_skip_ws(r);
        if (r->pos >= r->len || r->p[r->pos] != ':') {
            rc = reader_fail_unexpected(r, "expected ':'");
            goto done;
        }
        r->pos++;
        reader_skip_ws(r);
        json_t *member = NULL;
        rc = reader_read_value(r, depth, &member);
        if (rc)
            goto done;
        /* The key was validated above; setn_new_nocheck takes member even on failure. */
        if (json_object_setn_new_nocheck(obj, k, key.len, member)) {
            rc = -ENOMEM;
            goto done;
        }
        rc = reader_after_member(r, '}', "expected ',' or '}'");
        if (rc == 0)
            continue;
        if (rc == READER_CLOSED)
            rc = 0;
        goto done;
    }
done:
    buf_deinit(&key);
    if (rc) {
        json_decref(obj);
        return rc;
    }
    *out = obj;
    return 0;
}

/* depth is the number of containers enclosing the value; the caller skipped whitespace. */
static int reader_read_value(JsonReader *r, unsigned depth, json_t **out)
{
    if (r->pos >= r->len)
        return reader_fail(r, JSON_E_SYNTAX, r->pos, "unexpected end of input");
    switch (r->p[r->pos]) {
    case '{':
    case '[':
        if (depth + 1 > JSON_STRICT_MAX_DEPTH)
            return reader_fail(r, JSON_E_DEPTH, r->pos, "nesting too deep");
        return r->p[r->pos] == '{' ? reader_read_object(r, depth + 1, out)
                                   : reader_read_array(r, depth + 1, out);
    case '"': {
        r->scratch.len = 0;
        int rc = reader_read_string(r, &r->scratch);
        if (rc)
            return rc;
        json_t *s = json_stringn_nocheck(r->scratch.data ? r->scratch.data : "", r->scratch.len);
        if (!s)
            return -ENOMEM;
        *out = s;
        return 0;
    }
    case 't':
        return reader_read_literal(r, "true", json_true, out);
    case 'f':
        return reader_read_literal(r, "false", json_false, out);
    case 'n':
        return reader_read_literal(r, "null", json_null, out);
    default:
        if (r->p[r->pos] == '-' || (r->p[r->pos] >= '0' && r->p[r->pos] <= '9'))
            return reader_read_number(r, out);
        return reader_fail_unexpected(r, "unexpected character");
    }
}

int json_read_strict(const char *data, size_t len, unsigned flags, json_t **out,
                     JsonReadError *err)
{
    JsonReadError dummy;
    JsonReader r = {
        .p = (const unsigned char *)(data ? data : ""),
        .len = data ? len : 0,
        .pos = 0,
        .scratch = BUF_INIT,
        .err = err ? err : &dummy,
    };
    json_t *v = NULL;
    reader_skip_ws(&r);
    size_t value_at = r.pos;
    int rc = reader_read_value(&r, 0, &v);
    if (!rc) {
        reader_skip_ws(&r);
        if (r.pos < r.len)
            rc = reader_fail_unexpected(&r, "trailing data after the value");
    }
    if (!rc && (flags & JSON_READ_OBJECT) && !json_is_object(v))
        rc = reader_fail(&r, JSON_E_NOT_OBJECT, value_at, "top-level value is not an object");
    buf_deinit(&r.scratch);
    if (rc) {
        json_decref(v);
        return rc;
    }
    *out = v;
    return 0;
}

bool json_key_is_array_index(const char *key, size_t len)
{
    /* 4294967294 has ten digits; anything longer is out of range without arithmetic. */
    if (len == 0 || len > 10)
        return false;
    if (key[0] == '0')
        return len == 1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(key[i] - '0');
    }
    return v <= 4294967294u;
}
