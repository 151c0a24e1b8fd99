/* UTF-8 validation and decoding per RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF. Shared by the strict JSON reader and the canonical writer. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at s (n > 0 bytes available). Returns its length in bytes (1..4)
 * and sets *cp, or returns 0 for an invalid or truncated sequence. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encodes cp (a scalar value, not a surrogate) into out (4 bytes); returns the length. */
size_t utf8_encode(uint32_t cp, unsigned char out[4]);

/* Returns true if all len bytes are valid UTF-8; otherwise false and, if bad_offset is not
 * NULL, the offset of the first invalid byte. */
bool utf8_validate(const char *s, size_t len, size_t *bad_offset);
