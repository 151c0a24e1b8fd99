/* Money as Opencharge writes it: decimal strings, never floating point (design.md, "amounts").
 * Syntax ^(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$ and greater than zero. Amounts are compared
 * numerically ("15.0" equals "15.00") and stored as PostgreSQL numeric; the text as written
 * is kept wherever it is echoed. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define AMOUNT_MAX_TEXT 37 /* 18 integer digits, '.', 18 fraction digits */

typedef struct Amount {
    uint64_t units;      /* integer part, < 10^18 */
    uint64_t frac_e18;   /* fraction scaled to 18 digits: "0.5" → 500000000000000000 */
    uint8_t scale;       /* fraction digits as written (0..18) */
} Amount;

typedef enum AmountCode {
    AMOUNT_E_SYNTAX = 1, /* does not match the pattern */
    AMOUNT_E_ZERO,       /* numerically zero */
} AmountCode;

typedef enum CurrencyCode {
    CURRENCY_E_SYNTAX = 1, /* not 3..10 of [A-Z0-9] */
} CurrencyCode;

/* Parses len bytes. Returns 0, or an AmountCode (out untouched). */
OC_MUST_CHECK int amount_parse(const char *text, size_t len, Amount *out);

/* Numeric comparison: <0, 0, >0. */
int amount_cmp(const Amount *a, const Amount *b);

/* Writes the normalised text (no trailing fraction zeros, no '.' for integers) plus a NUL into
 * out (AMOUNT_MAX_TEXT + 1 bytes). "15.50" → "15.5", "7.000" → "7". */
void amount_format_normal(const Amount *a, char out[AMOUNT_MAX_TEXT + 1]);

/* Checks a currency code of len bytes: 3..10 upper-case ASCII letters or digits. Returns 0 or
 * CURRENCY_E_SYNTAX. */
OC_MUST_CHECK int currency_check(const char *text, size_t len);
