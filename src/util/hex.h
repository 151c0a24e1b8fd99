/* Hex encoding (lowercase out, either case in) and constant-time-enough decoding for key
 * material: decoding does not branch on the digit values. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

/* Writes 2*len lowercase hex digits and a NUL to out (which must hold 2*len+1 bytes). */
void hex_encode(const uint8_t *data, size_t len, char *out);

/* Decodes exactly 2*out_len hex digits from hex (hex_len must equal 2*out_len). Returns 0,
 * or -EINVAL on a wrong length or a non-hex character; out is unspecified on failure. */
OC_MUST_CHECK int hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len);

/* True when every one of the len bytes is a hex digit. */
bool hex_is_valid(const char *hex, size_t len);
