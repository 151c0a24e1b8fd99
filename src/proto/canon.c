/* Canonical JSON writer (canon.h): the bytes every Opencharge signature is computed over.
 * A value is first checked in full (so both forms refuse exactly the same values, including
 * ones the legacy allow-list would drop), then written without whitespace in the requested
 * form. The escaping and key order are JavaScript's, because the other side is JavaScript. */
#include "proto/canon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "proto/json.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/utf8.h"

#define CANON_MAX_DEPTH 64

typedef struct CanonMember {
    const char *key;
    size_t len;
    json_t *value;
} CanonMember;

int canon_key_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    for (size_t i = 0; i < n; i++) {
        unsigned ca = (unsigned char)a[i], cb = (unsigned char)b[i];
        if (ca == cb)
            continue;
        /* Identical prefixes mean both bytes sit at the same place in the same kind of
         * sequence, so a differing byte >= 0xC0 is a lead byte in both. UTF-8 byte order is
         * code point order; UTF-16 differs only in that surrogate pairs (lead bytes F0..F4)
         * sort before U+E000..U+FFFF (lead bytes EE, EF). Lifting EE/EF above F4 fixes that;
         * F5..FF never occur in valid UTF-8. */
        if (ca == 0xee || ca == 0xef)
            ca += 0x10;
        if (cb == 0xee || cb == 0xef)
            cb += 0x10;
        return ca < cb ? -1 : 1;
    }
    return a_len < b_len ? -1 : a_len > b_len ? 1 : 0;
}

static int canon_member_cmp(const void *pa, const void *pb)
{
    const CanonMember *a = pa, *b = pb;
    return canon_key_cmp(a->key, a->len, b->key, b->len);
}

/* Everything either form refuses, at any depth. depth counts the containers around value. */
static int canon_check(const json_t *value, unsigned depth)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        if (depth + 1 > CANON_MAX_DEPTH)
            return CANON_E_DEPTH;
        const char *key;
        size_t key_len;
        json_t *member;
        /* json_object_keylen_foreach wants a non-const object; iteration does not modify it. */
        json_object_keylen_foreach((json_t *)value, key, key_len, member) {
            if (!utf8_validate(key, key_len, NULL))
                return CANON_E_UTF8;
            if (json_key_is_array_index(key, key_len))
                return CANON_E_INDEX_KEY;
            int rc = canon_check(member, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (depth + 1 > CANON_MAX_DEPTH)
            return CANON_E_DEPTH;
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item) {
            int rc = canon_check(item, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_STRING:
        return utf8_validate(json_string_value(value), json_string_length(value), NULL)
                   ? 0
                   : CANON_E_UTF8;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(value);
        return v >= -JSON_STRICT_MAX_SAFE_INT && v <= JSON_STRICT_MAX_SAFE_INT
                   ? 0
                   : CANON_E_INT_RANGE;
    }
    case JSON_REAL:
        return CANON_E_REAL;
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return 0;
    }
    return CANON_E_REAL; /* unreachable: jansson has no other types */
}

/* JSON.stringify's QuoteJSONString for valid UTF-8: only '"', '\' and C0 controls change. */
static void canon_put_string(Buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_put(b, s + run, i - run);
        run = i + 1;
        char esc[7] = { '\\', 0 };
        size_t esc_len = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            esc_len = 6;
            break;
        }
        buf_put(b, esc, esc_len);
    }
    buf_put(b, s + run, len - run);
    buf_putc(b, '"');
}

/* The object's members sorted by key; *out is NULL for an empty object. */
static int canon_sorted_members(const json_t *obj, CanonMember **out, size_t *count)
{
    size_t n = json_object_size(obj);
    *out = NULL;
    *count = n;
    if (!n)
        return 0;
    CanonMember *m = oc_calloc(n, sizeof(*m));
    if (!m)
        return -ENOMEM;
    size_t i = 0;
    const char *key;
    size_t key_len;
    json_t *member;
    json_object_keylen_foreach((json_t *)obj, key, key_len, member) {
        m[i].key = key;
        m[i].len = key_len;
        m[i].value = member;
        i++;
    }
    qsort(m, n, sizeof(*m), canon_member_cmp);
    *out = m;
    return 0;
}

/* allow is NULL for the strict form, else the legacy allow-list in its (sorted) order. */
static int canon_put_value(Buf *b, const json_t *value, const CanonMember *allow,
                           size_t allow_n)
{
    if (b->error)
        return b->error; /* out of memory: stop walking instead of appending no-ops */
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        buf_putc(b, '{');
        bool first = true;
        if (allow) {
            for (size_t i = 0; i < allow_n; i++) {
                json_t *member = json_object_getn(value, allow[i].key, allow[i].len);
                if (!member)
                    continue;
                if (!first)
                    buf_putc(b, ',');
                first = false;
                canon_put_string(b, allow[i].key, allow[i].len);
                buf_putc(b, ':');
                int rc = canon_put_value(b, member, allow, allow_n);
                if (rc)
                    return rc;
            }
        } else {
            CanonMember *m;
            size_t n;
            int rc = canon_sorted_members(value, &m, &n);
            if (rc)
                return rc;
            for (size_t i = 0; i < n && !rc; i++) {
                if (i)
                    buf_putc(b, ',');
                canon_put_string(b, m[i].key, m[i].len);
                buf_putc(b, ':');
                rc = canon_put_value(b, m[i].value, NULL, 0);
            }
            oc_free(m);
            if (rc)
                return rc;
        }
        buf_putc(b, '}');
        return 0;
    }
    case JSON_ARRAY: {
        buf_putc(b, '[');
        size_t i;
        json_t *item;
        json_array_foreach(value, i, item) {
            if (i)
                buf_putc(b, ',');
            int rc = canon_put_value(b, item, allow, allow_n);
            if (rc)
                return rc;
        }
        buf_putc(b, ']');
        return 0;
    }
    case JSON_STRING:
        canon_put_string(b, json_string_value(value), json_string_length(value));
        return 0;
    case JSON_INTEGER:
        buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return 0;
    case JSON_TRUE:
        buf_puts(b, "true");
        return 0;
    case JSON_FALSE:
        buf_puts(b, "false");
        return 0;
    case JSON_NULL:
        buf_puts(b, "null");
        return 0;
    case JSON_REAL:
        break;
    }
    return CANON_E_REAL; /* canon_check refused it already */
}

int canon_write(const json_t *value, CanonForm form, char **out, size_t *out_len)
{
    if (!value || !out || !out_len || (form != CANON_STRICT && form != CANON_LEGACY))
        return -EINVAL;
    if (form == CANON_LEGACY && !json_is_object(value))
        return CANON_E_NOT_OBJECT;
    int rc = canon_check(value, 0);
    if (rc)
        return rc;

    Buf b = BUF_INIT;
    CanonMember *allow = NULL;
    size_t allow_n = 0;
    if (form == CANON_LEGACY) {
        /* Object.keys(obj).sort(): the allow-list, and its order, for every depth. */
        rc = canon_sorted_members(value, &allow, &allow_n);
        if (rc)
            return rc;
        /* An empty list still means "filter": pass a non-NULL pointer. */
        static const CanonMember none;
        rc = canon_put_value(&b, value, allow ? allow : &none, allow_n);
        oc_free(allow);
    } else {
        rc = canon_put_value(&b, value, NULL, 0);
    }
    if (rc) {
        buf_deinit(&b);
        return rc;
    }
    return buf_finish(&b, out, out_len);
}

int canon_sha256(const json_t *value, CanonForm form, uint8_t digest[32])
{
    char *bytes;
    size_t len;
    int rc = canon_write(value, form, &bytes, &len);
    if (rc)
        return rc;
    SHA256((const unsigned char *)bytes, len, digest);
    oc_free(bytes);
    return 0;
}

const char *canon_form_name(CanonForm form)
{
    switch (form) {
    case CANON_STRICT:
        return "strict";
    case CANON_LEGACY:
        return "legacy";
    }
    return "unknown";
}

int canon_form_parse(const char *name, CanonForm *out)
{
    if (!name)
        return -EINVAL;
    if (strcmp(name, "strict") == 0) {
        *out = CANON_STRICT;
        return 0;
    }
    if (strcmp(name, "legacy") == 0) {
        *out = CANON_LEGACY;
        return 0;
    }
    return -EINVAL;
}
