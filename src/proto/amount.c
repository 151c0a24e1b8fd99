/* Decimal amounts and currency codes (amount.h). Integer arithmetic only: an amount is an
 * integer part below 10^18 and a fraction scaled to 18 digits, both exact in uint64_t, so
 * parsing, comparing and printing never touch floating point or the locale (ctype's isdigit
 * would follow it). */
#include "proto/amount.h"

#define AMOUNT_MAX_DIGITS 18

static const uint64_t pow10_table[AMOUNT_MAX_DIGITS + 1] = {
    1ULL,
    10ULL,
    100ULL,
    1000ULL,
    10000ULL,
    100000ULL,
    1000000ULL,
    10000000ULL,
    100000000ULL,
    1000000000ULL,
    10000000000ULL,
    100000000000ULL,
    1000000000000ULL,
    10000000000000ULL,
    100000000000000ULL,
    1000000000000000ULL,
    10000000000000000ULL,
    100000000000000000ULL,
    1000000000000000000ULL,
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int amount_parse(const char *text, size_t len, Amount *out)
{
    if (!text || len == 0 || len > AMOUNT_MAX_TEXT)
        return AMOUNT_E_SYNTAX;

    size_t i = 0;
    uint64_t units = 0;
    while (i < len && is_digit(text[i])) {
        if (i == AMOUNT_MAX_DIGITS)
            return AMOUNT_E_SYNTAX;
        units = units * 10 + (uint64_t)(text[i] - '0');
        i++;
    }
    size_t int_digits = i;
    /* "00", "01": one spelling per number in the integer part keeps the pattern's promise. */
    if (int_digits == 0 || (int_digits > 1 && text[0] == '0'))
        return AMOUNT_E_SYNTAX;

    uint64_t frac = 0;
    size_t scale = 0;
    if (i < len) {
        if (text[i] != '.')
            return AMOUNT_E_SYNTAX;
        i++;
        while (i < len && is_digit(text[i])) {
            if (scale == AMOUNT_MAX_DIGITS)
                return AMOUNT_E_SYNTAX;
            frac = frac * 10 + (uint64_t)(text[i] - '0');
            scale++;
            i++;
        }
        if (scale == 0 || i != len)
            return AMOUNT_E_SYNTAX;
    }

    if (units == 0 && frac == 0)
        return AMOUNT_E_ZERO;

    out->units = units;
    out->frac_e18 = frac * pow10_table[AMOUNT_MAX_DIGITS - scale];
    out->scale = (uint8_t)scale;
    return 0;
}

int amount_cmp(const Amount *a, const Amount *b)
{
    if (a->units != b->units)
        return a->units < b->units ? -1 : 1;
    if (a->frac_e18 != b->frac_e18)
        return a->frac_e18 < b->frac_e18 ? -1 : 1;
    return 0;
}

/* Writes the digits of v (< 10^18) at p and returns how many were written; never more than
 * 18, so even an Amount built by hand cannot overrun the caller's buffer. */
static size_t format_units(uint64_t v, char *p)
{
    char tmp[AMOUNT_MAX_DIGITS];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof(tmp));
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

void amount_format_normal(const Amount *a, char out[AMOUNT_MAX_TEXT + 1])
{
    size_t n = format_units(a->units, out);
    uint64_t frac = a->frac_e18;
    if (frac != 0) {
        size_t digits = AMOUNT_MAX_DIGITS;
        while (digits > 0 && frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        out[n++] = '.';
        /* Leading fraction zeros ("0.05") are digits of their own: print exactly `digits`. */
        for (size_t i = digits; i > 0; i--) {
            out[n + i - 1] = (char)('0' + frac % 10);
            frac /= 10;
        }
        n += digits;
    }
    out[n] = '\0';
}

int currency_check(const char *text, size_t len)
{
    if (!text || len < 3 || len > 10)
        return CURRENCY_E_SYNTAX;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || is_digit(c)))
            return CURRENCY_E_SYNTAX;
    }
    return 0;
}
