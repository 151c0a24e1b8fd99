/* Strict JSON reader: turns network bytes into jansson values, refusing everything that could
 * make two Opencharge implementations disagree about what was signed (design.md, "JSON
 * input"). One recursive-descent pass over the bytes, so every refusal names the byte offset
 * where it was detected. Pure: no I/O, no globals beyond the allocator. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define JSON_STRICT_MAX_DEPTH 32
#define JSON_STRICT_MAX_SAFE_INT 9007199254740991LL /* 2^53 - 1 */

/* Positive results of json_read_strict; every one means "the input is refused". */
typedef enum JsonReadCode {
    JSON_E_SYNTAX = 1,      /* not JSON at all: unexpected byte, truncated input, trailing data */
    JSON_E_UTF8,            /* invalid UTF-8 in the input */
    JSON_E_DUPLICATE_KEY,   /* the same key twice in one object */
    JSON_E_INT_RANGE,       /* integer outside ±(2^53−1) */
    JSON_E_REAL,            /* a number with a fraction or exponent */
    JSON_E_DEPTH,           /* objects/arrays nested deeper than JSON_STRICT_MAX_DEPTH */
    JSON_E_INDEX_KEY,       /* an object key that is an array index "0".."4294967294" */
    JSON_E_LONE_SURROGATE,  /* a \uD800-\uDFFF escape not forming a valid pair */
    JSON_E_NOT_OBJECT,      /* JSON_READ_OBJECT given and the top-level value is not an object */
} JsonReadCode;

/* Offsets: a number's refusal (REAL, INT_RANGE) names its first byte, a key's (DUPLICATE_KEY,
 * INDEX_KEY) its opening quote, LONE_SURROGATE the backslash of the offending escape, NOT_OBJECT
 * the top-level value; NOT_OBJECT is only reported for otherwise acceptable input. */
typedef struct JsonReadError {
    size_t offset;          /* byte offset in the input where the problem was detected */
    JsonReadCode code;
    const char *reason;     /* static English text, e.g. "duplicate key" */
} JsonReadError;

/* Flags for json_read_strict. */
#define JSON_READ_OBJECT 0x1u /* the top-level value must be an object */

/* Parses exactly len bytes (no NUL terminator needed; embedded NULs are a syntax error outside
 * strings). Whitespace around the value is allowed; anything else after it is refused.
 * Strings may contain U+0000 through escapes; keys are stored with their full length
 * (json_object_setn). Returns 0 and sets *out to a new reference; a JsonReadCode (> 0) and
 * fills *err; or -ENOMEM (err->code unspecified). *out is untouched on failure. err may be
 * NULL. */
OC_MUST_CHECK int json_read_strict(const char *data, size_t len, unsigned flags, json_t **out,
                                   JsonReadError *err);

/* True when key (len bytes) is a canonical array index: "0", or [1-9][0-9]* with a value
 * <= 4294967294. JavaScript engines order such keys numerically before all others, so
 * anything signed must not contain them. */
bool json_key_is_array_index(const char *key, size_t len);
