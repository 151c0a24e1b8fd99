/* libFuzzer target: amount_parse, amount_format_normal, amount_cmp and currency_check (amount.h)
 * against a plain reference written from the documented pattern
 * ^(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$, > 0. The normal form must reparse to an equal amount
 * and be a fixed point. An input holding a NUL is also split there into two amounts whose
 * comparison is checked against a textual reference. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/amount.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *text, size_t len)
{
    fprintf(stderr, "fuzz-amount: %s: \"", what);
    for (size_t i = 0; i < len && i < 80; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\"\n");
    abort();
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A valid amount split into its parts, for the reference checks. */
typedef struct RefAmount {
    const char *int_part;  size_t int_len;
    const char *frac_part; size_t frac_len;   /* frac_len 0 when there is no '.' */
} RefAmount;

/* Returns 0, AMOUNT_E_SYNTAX or AMOUNT_E_ZERO exactly as amount.h documents. */
static int ref_amount(const char *s, size_t n, RefAmount *out)
{
    size_t i = 0;
    bool nonzero = false;
    if (n == 0)
        return AMOUNT_E_SYNTAX;
    if (s[0] == '0') {
        i = 1;
    } else if (s[0] >= '1' && s[0] <= '9') {
        while (i < n && is_digit(s[i]))
            i++;
        nonzero = true;
        if (i > 18)
            return AMOUNT_E_SYNTAX;
    } else {
        return AMOUNT_E_SYNTAX;
    }
    out->int_part = s;
    out->int_len = i;
    out->frac_part = s + n;
    out->frac_len = 0;
    if (i == n)
        return nonzero ? 0 : AMOUNT_E_ZERO;
    if (s[i] != '.')
        return AMOUNT_E_SYNTAX;
    size_t start = ++i;
    while (i < n && is_digit(s[i])) {
        if (s[i] != '0')
            nonzero = true;
        i++;
    }
    if (i != n || i - start < 1 || i - start > 18)
        return AMOUNT_E_SYNTAX;
    out->frac_part = s + start;
    out->frac_len = i - start;
    return nonzero ? 0 : AMOUNT_E_ZERO;
}

/* Numeric comparison of two valid amounts from their text: integer parts have no leading
 * zeros, so longer is larger; fractions compare digit by digit, padded with zeros. */
static int ref_cmp(const RefAmount *a, const RefAmount *b)
{
    if (a->int_len != b->int_len)
        return a->int_len < b->int_len ? -1 : 1;
    int c = memcmp(a->int_part, b->int_part, a->int_len);
    if (c)
        return c < 0 ? -1 : 1;
    for (size_t i = 0; i < 18; i++) {
        char da = i < a->frac_len ? a->frac_part[i] : '0';
        char db = i < b->frac_len ? b->frac_part[i] : '0';
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

/* The normal form by hand: the fraction without trailing zeros, no '.' when nothing is left. */
static void ref_normal(const RefAmount *a, char out[AMOUNT_MAX_TEXT + 1])
{
    size_t frac = a->frac_len;
    while (frac > 0 && a->frac_part[frac - 1] == '0')
        frac--;
    memcpy(out, a->int_part, a->int_len);
    size_t n = a->int_len;
    if (frac) {
        out[n++] = '.';
        memcpy(out + n, a->frac_part, frac);
        n += frac;
    }
    out[n] = '\0';
}

/* Parses text and checks it against the reference; on success *out holds the amount. */
static bool check_one(const char *text, size_t len, Amount *out, RefAmount *ref)
{
    Amount a;
    memset(&a, 0xa5, sizeof(a));
    Amount poison = a;
    int want = ref_amount(text, len, ref);
    int r = amount_parse(text, len, &a);
    if (r != want) {
        fprintf(stderr, "amount_parse %d, reference %d\n", r, want);
        fail("amount_parse disagrees with the pattern", text, len);
    }
    if (r != 0) {
        if (memcmp(&a, &poison, sizeof(a)) != 0)
            fail("amount_parse wrote *out on failure", text, len);
        return false;
    }
    if (a.units >= 1000000000000000000ULL || a.frac_e18 >= 1000000000000000000ULL ||
        a.scale != ref->frac_len)
        fail("parsed amount out of range or with the wrong scale", text, len);
    if (amount_cmp(&a, &a) != 0)
        fail("amount_cmp(a, a) != 0", text, len);

    char normal[AMOUNT_MAX_TEXT + 1], expect[AMOUNT_MAX_TEXT + 1];
    memset(normal, 'x', sizeof(normal));
    amount_format_normal(&a, normal);
    if (!memchr(normal, '\0', sizeof(normal)))
        fail("amount_format_normal did not NUL-terminate within AMOUNT_MAX_TEXT", text, len);
    ref_normal(ref, expect);
    if (strcmp(normal, expect) != 0) {
        fprintf(stderr, "got \"%s\", want \"%s\"\n", normal, expect);
        fail("amount_format_normal differs from the reference", text, len);
    }

    Amount b;
    size_t nlen = strlen(normal);
    if (amount_parse(normal, nlen, &b) != 0)
        fail("normal form does not reparse", normal, nlen);
    if (amount_cmp(&a, &b) != 0 || amount_cmp(&b, &a) != 0)
        fail("normal form is not equal to the original", text, len);
    char normal2[AMOUNT_MAX_TEXT + 1];
    amount_format_normal(&b, normal2);
    if (strcmp(normal, normal2) != 0)
        fail("normal form is not a fixed point", normal, nlen);
    *out = a;
    return true;
}

static void check_currency(const char *text, size_t len)
{
    bool want = len >= 3 && len <= 10;
    for (size_t i = 0; want && i < len; i++)
        want = (text[i] >= 'A' && text[i] <= 'Z') || is_digit(text[i]);
    int r = currency_check(text, len);
    if (r != 0 && r != CURRENCY_E_SYNTAX)
        fail("currency_check returned an undocumented code", text, len);
    if ((r == 0) != want)
        fail("currency_check disagrees with 3..10 of [A-Z0-9]", text, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: AddressSanitizer then flags any read past len. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);

    Amount a;
    RefAmount ref;
    (void)check_one(text, size, &a, &ref);
    check_currency(text, size);

    const char *nul = memchr(text, '\0', size);
    if (nul) {
        size_t left_len = (size_t)(nul - text);
        const char *right = nul + 1;
        size_t right_len = size - left_len - 1;
        Amount x, y;
        RefAmount rx, ry;
        bool okx = check_one(text, left_len, &x, &rx);
        bool oky = check_one(right, right_len, &y, &ry);
        if (okx && oky) {
            int c = sign(amount_cmp(&x, &y)), d = sign(amount_cmp(&y, &x));
            if (c != -d)
                fail("amount_cmp is not antisymmetric", text, size);
            if (c != ref_cmp(&rx, &ry))
                fail("amount_cmp disagrees with the textual comparison", text, size);
        }
        check_currency(text, left_len);
    }
    free(text);
    return 0;
}
