/* Unit tests for proto/amount: the decimal pattern accepted and refused byte for byte, zero
 * refused separately, numeric (not textual) comparison, the normalised text, and currency
 * codes. Lengths are explicit so that embedded NULs and multi-byte look-alikes are tested. */
#include "testlib.h"

#include "proto/amount.h"

typedef struct Text {
    const char *s;
    size_t len;
} Text;

#define T(lit) { (lit), sizeof(lit) - 1 }

/* Printable form of len bytes for a TAP description: a raw newline or NUL would break the
 * TAP line, so anything outside printable ASCII is shown as \xNN. */
static const char *printable(const char *s, size_t len)
{
    static char out[256];
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < sizeof(out); i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[n++] = (char)c;
        } else {
            snprintf(out + n, sizeof(out) - n, "\\x%02x", c);
            n += 4;
        }
    }
    out[n] = '\0';
    return out;
}

/* Fills an Amount with a pattern no parse produces, to see that failures leave it alone. */
static void amount_poison(Amount *a)
{
    a->units = UINT64_MAX;
    a->frac_e18 = UINT64_MAX;
    a->scale = 0xff;
}

static bool amount_is_poisoned(const Amount *a)
{
    return a->units == UINT64_MAX && a->frac_e18 == UINT64_MAX && a->scale == 0xff;
}

static Amount amount_must(const char *s)
{
    Amount a;
    amount_poison(&a);
    int r = amount_parse(s, strlen(s), &a);
    if (r != 0) {
        printf("Bail out! test amount \"%s\" does not parse (%d)\n", s, r);
        exit(1);
    }
    return a;
}

static void test_valid(void)
{
    static const struct {
        const char *text;
        uint64_t units;
        uint64_t frac_e18;
        unsigned scale;
        const char *normal;
    } cases[] = {
        { "0.01", 0, 10000000000000000ULL, 2, "0.01" },
        { "1", 1, 0, 0, "1" },
        { "15.00", 15, 0, 2, "15" },
        { "15.50", 15, 500000000000000000ULL, 2, "15.5" },
        { "7.000", 7, 0, 3, "7" },
        { "0.05", 0, 50000000000000000ULL, 2, "0.05" },
        { "100.10", 100, 100000000000000000ULL, 2, "100.1" },
        { "10", 10, 0, 0, "10" },
        { "10000.00", 10000, 0, 2, "10000" },
        { "999999999999999999", 999999999999999999ULL, 0, 0, "999999999999999999" },
        { "999999999999999999.999999999999999999", 999999999999999999ULL,
          999999999999999999ULL, 18, "999999999999999999.999999999999999999" },
        { "0.000000000000000001", 0, 1, 18, "0.000000000000000001" },
        { "1.000000000000000010", 1, 10, 18, "1.00000000000000001" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        Amount a;
        amount_poison(&a);
        int r = amount_parse(cases[i].text, strlen(cases[i].text), &a);
        CHECK(r == 0 && a.units == cases[i].units && a.frac_e18 == cases[i].frac_e18 &&
                  a.scale == cases[i].scale,
              "amount \"%s\" parses to %llu + %llu e-18, scale %u", cases[i].text,
              (unsigned long long)cases[i].units, (unsigned long long)cases[i].frac_e18,
              cases[i].scale);
        char out[AMOUNT_MAX_TEXT + 1];
        memset(out, 'x', sizeof(out));
        amount_format_normal(&a, out);
        CHECK_STR(out, cases[i].normal, "amount \"%s\" normalises to \"%s\"", cases[i].text,
                  cases[i].normal);
    }

    /* Only the first len bytes count: a longer buffer is not read past them. */
    Amount a;
    CHECK(amount_parse("12.5xyz", 4, &a) == 0 && a.units == 12 &&
              a.frac_e18 == 500000000000000000ULL,
          "amount parses exactly len bytes of a longer buffer");
}

static void test_syntax(void)
{
    static const Text cases[] = {
        T(""),
        T("00"),
        T("01"),
        T("00.5"),
        T("1."),
        T(".5"),
        T("."),
        T("-1"),
        T("+1"),
        T("1e3"),
        T("1E3"),
        T("1,00"),
        T(" 1"),
        T("1 "),
        T("\xef\xbc\x91"),            /* U+FF11 FULLWIDTH DIGIT ONE */
        T("\xd9\xa1"),                /* U+0661 ARABIC-INDIC DIGIT ONE */
        T("1000000000000000000"),     /* 19 integer digits */
        T("9999999999999999999.5"),   /* 19 integer digits with a fraction */
        T("0.0000000000000000001"),   /* 19 fraction digits */
        T("1.1234567890123456789"),   /* 19 fraction digits */
        T("1.2.3"),
        T("0x10"),
        T("NaN"),
        T("Infinity"),
        T("inf"),
        T("1\0"),
        T("\0" "1"),
        T("1.\0" "5"),
        T("1.5 "),
        T("1.5\n"),
        T("1_000"),
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        Amount a;
        amount_poison(&a);
        int r = amount_parse(cases[i].s, cases[i].len, &a);
        CHECK(r == AMOUNT_E_SYNTAX && amount_is_poisoned(&a),
              "amount syntax refused: \"%s\" (%zu bytes)", printable(cases[i].s, cases[i].len),
              cases[i].len);
    }
    Amount a;
    amount_poison(&a);
    CHECK(amount_parse(NULL, 0, &a) == AMOUNT_E_SYNTAX && amount_is_poisoned(&a),
          "amount NULL text refused");
}

static void test_zero(void)
{
    static const char *const cases[] = { "0", "0.0", "0.00", "0.000000000000000000" };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        Amount a;
        amount_poison(&a);
        int r = amount_parse(cases[i], strlen(cases[i]), &a);
        CHECK(r == AMOUNT_E_ZERO && amount_is_poisoned(&a), "amount \"%s\" is AMOUNT_E_ZERO",
              cases[i]);
    }
}

static void test_compare(void)
{
    static const char *const equal[][2] = {
        { "15.0", "15.00" },
        { "15.00", "15" },
        { "15", "15.0" },
        { "0.5", "0.50" },
        { "0.5", "0.500000000000000000" },
        { "1", "1.000000000000000000" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(equal); i++) {
        Amount a = amount_must(equal[i][0]), b = amount_must(equal[i][1]);
        CHECK(amount_cmp(&a, &b) == 0 && amount_cmp(&b, &a) == 0, "\"%s\" == \"%s\"",
              equal[i][0], equal[i][1]);
    }

    /* Each entry is strictly less than the next. Lexicographic order would get several of
     * these wrong ("9.9" vs "10", "0.1" vs "0.099..."). */
    static const char *const ascending[] = {
        "0.000000000000000001",
        "0.01",
        "0.099999999999999999",
        "0.1",
        "1",
        "1.5",
        "1.50000000000000001",
        "2",
        "9.9",
        "9.99999",
        "10",
        "10.01",
        "999999999999999998.999999999999999999",
        "999999999999999999",
        "999999999999999999.99999999999999999",
        "999999999999999999.999999999999999999",
    };
    for (size_t i = 0; i + 1 < OC_ARRAY_LEN(ascending); i++) {
        Amount a = amount_must(ascending[i]), b = amount_must(ascending[i + 1]);
        CHECK(amount_cmp(&a, &b) < 0 && amount_cmp(&b, &a) > 0, "\"%s\" < \"%s\"",
              ascending[i], ascending[i + 1]);
    }
    Amount max = amount_must("999999999999999999.999999999999999999");
    bool max_is_max = true;
    for (size_t i = 0; i + 1 < OC_ARRAY_LEN(ascending); i++) {
        Amount a = amount_must(ascending[i]);
        if (amount_cmp(&max, &a) <= 0)
            max_is_max = false;
    }
    CHECK(max_is_max && amount_cmp(&max, &max) == 0,
          "999999999999999999.999999999999999999 is above every other amount");
}

static void test_currency(void)
{
    static const Text valid[] = { T("USD"), T("UGX"), T("USDT"), T("ABC123XYZ0"), T("123") };
    for (size_t i = 0; i < OC_ARRAY_LEN(valid); i++)
        CHECK(currency_check(valid[i].s, valid[i].len) == 0, "currency \"%s\" accepted",
              valid[i].s);

    static const Text invalid[] = {
        T("us"),
        T("US"),
        T("USDTUSDTUSD"), /* 11 */
        T("usd"),
        T("Usd"),
        T("US D"),
        T(""),
        T("EUR\0"),
        T("\xe2\x82\xacUR"), /* "€UR" */
        T("US-D"),
        T("USD "),
        T("ÜSD"),
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(invalid); i++)
        CHECK(currency_check(invalid[i].s, invalid[i].len) == CURRENCY_E_SYNTAX,
              "currency \"%s\" (%zu bytes) refused", printable(invalid[i].s, invalid[i].len),
              invalid[i].len);
    CHECK(currency_check(NULL, 0) == CURRENCY_E_SYNTAX, "currency NULL refused");
    CHECK(currency_check("USDX", 3) == 0, "currency checks exactly len bytes");
}

int main(void)
{
    test_valid();
    test_syntax();
    test_zero();
    test_compare();
    test_currency();
    return tl_done();
}
