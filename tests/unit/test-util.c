/* Unit tests for src/util (hex, UTF-8, buffers, the allocator hook) and the stable error codes
 * of include/ocgate/errors.h. Byte sequences are copied into exact-size heap buffers before
 * decoding so that AddressSanitizer catches any read past the length a function was given; a
 * counting allocator proves that allocation failures are reported, sticky and leak-free. */
#include "testlib.h"

#include <errno.h>
#include <stdint.h>

#include "ocgate/errors.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/hex.h"
#include "util/macro.h"
#include "util/utf8.h"

/* ---- counting, optionally failing allocator ---------------------------------------------- */

/* Allocations succeed until alloc_budget reaches zero (a negative budget never fails).
 * alloc_live counts blocks handed out and not yet freed, so a test can see a leak or a
 * double free without relying on the sanitizer alone. Fresh blocks are filled with 0xaa so
 * that a missing memset in oc_calloc shows up. */
static long alloc_budget = -1;
static long alloc_live;
static long alloc_calls;

static void *counting_malloc(size_t size)
{
    alloc_calls++;
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    void *p = malloc(size);
    if (p) {
        memset(p, 0xaa, size);
        alloc_live++;
    }
    return p;
}

static void counting_free(void *p)
{
    if (p)
        alloc_live--;
    free(p);
}

static void counting_install(long budget)
{
    alloc_budget = budget;
    alloc_live = 0;
    alloc_calls = 0;
    oc_set_alloc_funcs(counting_malloc, counting_free);
}

static void counting_remove(void)
{
    oc_set_alloc_funcs(NULL, NULL);
    alloc_budget = -1;
}

/* Exact-size heap copy so ASan flags any read beyond len. */
static unsigned char *exact_copy(const void *src, size_t len)
{
    unsigned char *p = malloc(len ? len : 1);
    if (!p) {
        printf("Bail out! out of memory\n");
        exit(1);
    }
    if (len)
        memcpy(p, src, len);
    return p;
}

/* ---- hex ---------------------------------------------------------------------------------- */

static bool ref_is_hex(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void test_hex_encode(void)
{
    static const uint8_t bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
    char out[2 * sizeof(bytes) + 1];
    memset(out, 'x', sizeof(out));
    hex_encode(bytes, sizeof(bytes), out);
    CHECK_STR(out, "00017f80abcdefff", "hex_encode writes lowercase digits and a NUL");

    char empty[1] = { 'x' };
    hex_encode(bytes, 0, empty);
    CHECK(empty[0] == '\0', "hex_encode of 0 bytes writes just the NUL");

    /* Every byte value survives encode → decode, and the encoding never uses upper case. */
    uint8_t all[256], back[256];
    char text[513];
    for (unsigned i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    hex_encode(all, sizeof(all), text);
    bool lower = true;
    for (size_t i = 0; i < 512; i++)
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
            lower = false;
    CHECK(lower && text[512] == '\0', "hex_encode of 0x00..0xff uses only [0-9a-f]");
    CHECK(hex_decode(text, 512, back, sizeof(back)) == 0 && memcmp(all, back, 256) == 0,
          "hex_decode(hex_encode(x)) == x for all 256 byte values");
}

static void test_hex_decode(void)
{
    uint8_t out[4];
    CHECK(hex_decode("abcdef01", 8, out, 4) == 0 && out[0] == 0xab && out[1] == 0xcd &&
              out[2] == 0xef && out[3] == 0x01,
          "hex_decode lowercase");
    CHECK(hex_decode("ABCDEF01", 8, out, 4) == 0 && out[0] == 0xab && out[1] == 0xcd &&
              out[2] == 0xef && out[3] == 0x01,
          "hex_decode upper case");
    CHECK(hex_decode("aBcD", 4, out, 2) == 0 && out[0] == 0xab && out[1] == 0xcd,
          "hex_decode mixed case");
    CHECK(hex_decode("", 0, out, 0) == 0, "hex_decode of nothing into nothing");

    CHECK_INT(hex_decode("abc", 3, out, 1), -EINVAL, "odd length (3 digits into 1 byte)");
    CHECK_INT(hex_decode("abc", 3, out, 2), -EINVAL, "odd length (3 digits into 2 bytes)");
    CHECK_INT(hex_decode("abcd", 4, out, 1), -EINVAL, "too many digits for out_len");
    CHECK_INT(hex_decode("ab", 2, out, 2), -EINVAL, "too few digits for out_len");
    CHECK_INT(hex_decode("0g", 2, out, 1), -EINVAL, "'g' is not hex");
    CHECK_INT(hex_decode("G0", 2, out, 1), -EINVAL, "'G' is not hex");
    CHECK_INT(hex_decode("0 ", 2, out, 1), -EINVAL, "space is not hex");
    CHECK_INT(hex_decode("0\0", 2, out, 1), -EINVAL, "NUL is not hex");
    CHECK_INT(hex_decode("00112233445566zz", 16, (uint8_t[8]){ 0 }, 8), -EINVAL,
              "a bad digit at the end is still found");

    /* Every byte value in both nibble positions, against a plain reference. The decoder is
     * branch-free arithmetic, so the neighbours of each range ('/', ':', '@', 'G', '`', 'g')
     * and high bytes whose low bits look like letters are where it could go wrong. */
    unsigned wrong = 0;
    char wrong_list[64] = "";
    for (unsigned c = 0; c < 256; c++) {
        char hi[2] = { (char)c, '0' }, lo[2] = { '0', (char)c };
        uint8_t v = 0;
        bool want = ref_is_hex(c);
        unsigned expect = c <= '9' ? c - '0' : (c | 0x20u) - 'a' + 10;
        bool ok_hi = hex_decode(hi, 2, &v, 1) == 0;
        bool good_hi = ok_hi == want && (!ok_hi || v == expect << 4);
        bool ok_lo = hex_decode(lo, 2, &v, 1) == 0;
        bool good_lo = ok_lo == want && (!ok_lo || v == expect);
        bool good_valid = hex_is_valid(hi, 1) == want;
        if (!(good_hi && good_lo && good_valid)) {
            if (wrong++ < 10) {
                size_t at = strlen(wrong_list);
                snprintf(wrong_list + at, sizeof(wrong_list) - at, " %02x", c);
            }
        }
    }
    CHECK(wrong == 0, "hex_decode/hex_is_valid agree with the reference for all 256 bytes");
    if (wrong)
        printf("#   %u bytes wrong:%s%s\n", wrong, wrong_list, wrong > 10 ? " ..." : "");
}

static void test_hex_is_valid(void)
{
    CHECK(hex_is_valid("", 0), "hex_is_valid of the empty string");
    CHECK(hex_is_valid("0123456789abcdefABCDEF", 22), "hex_is_valid of every digit");
    CHECK(!hex_is_valid("abcdefg", 7), "hex_is_valid refuses 'g'");
    CHECK(!hex_is_valid("ab\0d", 4), "hex_is_valid refuses an embedded NUL");
    CHECK(hex_is_valid("abzz", 2), "hex_is_valid looks at exactly len bytes");
    CHECK(hex_is_valid("abc", 3), "hex_is_valid does not care about odd length");
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

typedef struct Seq {
    const char *bytes;
    size_t len;
    uint32_t cp;       /* expected code point for valid sequences */
    const char *what;
} Seq;

#define SEQ(lit, cp, what) { (lit), sizeof(lit) - 1, (cp), (what) }

static void test_utf8_valid(void)
{
    static const Seq cases[] = {
        SEQ("\x00", 0x0, "U+0000"),
        SEQ("A", 0x41, "U+0041"),
        SEQ("\x7f", 0x7f, "U+007F (last 1-byte)"),
        SEQ("\xc2\x80", 0x80, "U+0080 (first 2-byte)"),
        SEQ("\xc3\xa9", 0xe9, "U+00E9"),
        SEQ("\xdf\xbf", 0x7ff, "U+07FF (last 2-byte)"),
        SEQ("\xe0\xa0\x80", 0x800, "U+0800 (first 3-byte)"),
        SEQ("\xe2\x82\xac", 0x20ac, "U+20AC"),
        SEQ("\xed\x9f\xbf", 0xd7ff, "U+D7FF (below the surrogates)"),
        SEQ("\xee\x80\x80", 0xe000, "U+E000 (above the surrogates)"),
        SEQ("\xef\xbf\xbd", 0xfffd, "U+FFFD"),
        SEQ("\xef\xbf\xbf", 0xffff, "U+FFFF (last 3-byte)"),
        SEQ("\xf0\x90\x80\x80", 0x10000, "U+10000 (first 4-byte)"),
        SEQ("\xf0\x9d\x84\x9e", 0x1d11e, "U+1D11E"),
        SEQ("\xf4\x8f\xbf\xbf", 0x10ffff, "U+10FFFF (last scalar)"),
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        unsigned char *p = exact_copy(cases[i].bytes, cases[i].len);
        uint32_t cp = 0xdeadbeef;
        size_t n = utf8_decode(p, cases[i].len, &cp);
        CHECK(n == cases[i].len && cp == cases[i].cp, "utf8_decode %s: %zu bytes", cases[i].what,
              cases[i].len);
        CHECK(utf8_validate((const char *)p, cases[i].len, NULL), "utf8_validate %s",
              cases[i].what);
        free(p);
    }

    /* A decode only consumes its own sequence, whatever follows. */
    uint32_t cp = 0;
    CHECK(utf8_decode((const unsigned char *)"\xc3\xa9z", 3, &cp) == 2 && cp == 0xe9,
          "utf8_decode stops after one code point");

    static const char mixed[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e\x00z";
    unsigned char *p = exact_copy(mixed, sizeof(mixed) - 1);
    CHECK(utf8_validate((const char *)p, sizeof(mixed) - 1, NULL),
          "utf8_validate of mixed 1-4 byte text with an embedded NUL");
    free(p);
    CHECK(utf8_validate("", 0, NULL), "utf8_validate of the empty string");
}

static void test_utf8_invalid(void)
{
    static const Seq cases[] = {
        SEQ("\xc0\x80", 0, "overlong U+0000 (C0 80)"),
        SEQ("\xc1\xbf", 0, "overlong U+007F (C1 BF)"),
        SEQ("\xe0\x80\x80", 0, "overlong U+0000 (E0 80 80)"),
        SEQ("\xe0\x9f\xbf", 0, "overlong U+07FF (E0 9F BF)"),
        SEQ("\xf0\x80\x80\x80", 0, "overlong U+0000 (F0 80 80 80)"),
        SEQ("\xf0\x8f\xbf\xbf", 0, "overlong U+FFFF (F0 8F BF BF)"),
        SEQ("\xed\xa0\x80", 0, "surrogate U+D800 (ED A0 80)"),
        SEQ("\xed\xaf\xbf", 0, "surrogate U+DBFF"),
        SEQ("\xed\xb0\x80", 0, "surrogate U+DC00"),
        SEQ("\xed\xbf\xbf", 0, "surrogate U+DFFF"),
        SEQ("\xed\xa0\xbd\xed\xb8\x80", 0, "CESU-8 surrogate pair"),
        SEQ("\xf4\x90\x80\x80", 0, "U+110000 (F4 90 80 80)"),
        SEQ("\xf5\x80\x80\x80", 0, "lead byte F5"),
        SEQ("\xf7\xbf\xbf\xbf", 0, "lead byte F7"),
        SEQ("\xf8\x88\x80\x80\x80", 0, "5-byte form"),
        SEQ("\xfc\x84\x80\x80\x80\x80", 0, "6-byte form"),
        SEQ("\xfe", 0, "byte FE"),
        SEQ("\xff", 0, "byte FF"),
        SEQ("\x80", 0, "lone continuation 80"),
        SEQ("\xbf", 0, "lone continuation BF"),
        SEQ("\xc2", 0, "truncated 2-byte (C2)"),
        SEQ("\xe0\xa0", 0, "truncated 3-byte (E0 A0)"),
        SEQ("\xe2", 0, "truncated 3-byte (E2)"),
        SEQ("\xf0\x90\x80", 0, "truncated 4-byte (F0 90 80)"),
        SEQ("\xf0", 0, "truncated 4-byte (F0)"),
        SEQ("\xc2\x41", 0, "bad continuation (C2 41)"),
        SEQ("\xc2\xc0", 0, "bad continuation (C2 C0)"),
        SEQ("\xe2\x28\xa1", 0, "bad second byte (E2 28 A1)"),
        SEQ("\xe2\x82\x28", 0, "bad third byte (E2 82 28)"),
        SEQ("\xf0\x90\x28\xbc", 0, "bad third byte (F0 90 28 BC)"),
        SEQ("\xf0\x90\x80\xc0", 0, "bad fourth byte (F0 90 80 C0)"),
        SEQ("\xc2\x00", 0, "NUL as continuation"),
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        unsigned char *p = exact_copy(cases[i].bytes, cases[i].len);
        uint32_t cp = 0xdeadbeef;
        size_t n = utf8_decode(p, cases[i].len, &cp);
        CHECK(n == 0, "utf8_decode refuses %s", cases[i].what);
        size_t bad = 12345;
        CHECK(!utf8_validate((const char *)p, cases[i].len, &bad) && bad == 0,
              "utf8_validate refuses %s at offset 0", cases[i].what);
        free(p);
    }

    /* The reported offset is that of the first bad sequence's lead byte. */
    static const Seq offsets[] = {
        SEQ("ab\xc0\x80", 2, "overlong after ASCII"),
        SEQ("abc\xed\xa0\x80" "def", 3, "surrogate in the middle"),
        SEQ("\xc3\xa9\xe2\x82", 2, "truncated at the end after a valid 2-byte"),
        SEQ("\xf0\x9d\x84\x9e" "x\x80", 5, "stray continuation after 4-byte + ASCII"),
        SEQ("ok\xf4\x90\x80\x80", 2, "above U+10FFFF after ASCII"),
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(offsets); i++) {
        unsigned char *p = exact_copy(offsets[i].bytes, offsets[i].len);
        size_t bad = 12345;
        bool ok = utf8_validate((const char *)p, offsets[i].len, &bad);
        CHECK(!ok && bad == offsets[i].cp, "utf8_validate %s: offset %u", offsets[i].what,
              (unsigned)offsets[i].cp);
        if (bad != offsets[i].cp)
            printf("#   got offset %zu\n", bad);
        CHECK(!utf8_validate((const char *)p, offsets[i].len, NULL),
              "utf8_validate %s with a NULL offset pointer", offsets[i].what);
        free(p);
    }

    /* A valid prefix is valid when the length stops before the bad part. */
    CHECK(utf8_validate("ab\xc0\x80", 2, NULL), "utf8_validate honours len");
}

/* Sweeps of whole families the RFC forbids, so no single member slips through. */
static void test_utf8_sweeps(void)
{
    unsigned accepted = 0;
    for (unsigned b1 = 0x80; b1 <= 0xbf; b1++) {
        for (unsigned lead = 0xc0; lead <= 0xc1; lead++) {
            unsigned char s[2] = { (unsigned char)lead, (unsigned char)b1 };
            uint32_t cp;
            if (utf8_decode(s, 2, &cp))
                accepted++;
        }
    }
    CHECK(accepted == 0, "every overlong 2-byte form (C0/C1 xx) is refused");

    accepted = 0;
    for (uint32_t cp = 0; cp < 0x800; cp++) {
        unsigned char s[3] = { 0xe0, (unsigned char)(0x80 | (cp >> 6)),
                               (unsigned char)(0x80 | (cp & 0x3f)) };
        uint32_t got;
        if (utf8_decode(s, 3, &got))
            accepted++;
    }
    CHECK(accepted == 0, "every overlong 3-byte form (U+0000..U+07FF) is refused");

    accepted = 0;
    for (uint32_t cp = 0; cp < 0x10000; cp += 7) {
        unsigned char s[4] = { 0xf0, (unsigned char)(0x80 | (cp >> 12)),
                               (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
                               (unsigned char)(0x80 | (cp & 0x3f)) };
        uint32_t got;
        if (utf8_decode(s, 4, &got))
            accepted++;
    }
    CHECK(accepted == 0, "overlong 4-byte forms (U+0000..U+FFFF) are refused");

    accepted = 0;
    for (uint32_t cp = 0xd800; cp <= 0xdfff; cp++) {
        unsigned char s[3] = { (unsigned char)(0xe0 | (cp >> 12)),
                               (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
                               (unsigned char)(0x80 | (cp & 0x3f)) };
        uint32_t got;
        if (utf8_decode(s, 3, &got) || utf8_validate((const char *)s, 3, NULL))
            accepted++;
    }
    CHECK(accepted == 0, "every encoded surrogate U+D800..U+DFFF is refused");

    accepted = 0;
    for (uint32_t cp = 0x110000; cp <= 0x1fffff; cp += 13) {
        unsigned char s[4] = { (unsigned char)(0xf0 | (cp >> 18)),
                               (unsigned char)(0x80 | ((cp >> 12) & 0x3f)),
                               (unsigned char)(0x80 | ((cp >> 6) & 0x3f)),
                               (unsigned char)(0x80 | (cp & 0x3f)) };
        uint32_t got;
        if (utf8_decode(s, 4, &got))
            accepted++;
    }
    CHECK(accepted == 0, "4-byte forms above U+10FFFF are refused");

    /* Every lead byte with too few bytes available, in an exact-size buffer. */
    unsigned bad_trunc = 0;
    for (unsigned lead = 0xc2; lead <= 0xf4; lead++) {
        size_t need = lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
        unsigned char full[4] = { (unsigned char)lead, 0x90, 0x90, 0x90 };
        for (size_t n = 1; n < need; n++) {
            unsigned char *p = exact_copy(full, n);
            uint32_t cp;
            if (utf8_decode(p, n, &cp))
                bad_trunc++;
            free(p);
        }
    }
    CHECK(bad_trunc == 0, "every lead byte C2..F4 with too few bytes is refused");
}

static void test_utf8_encode(void)
{
    static const struct {
        uint32_t cp;
        const char *bytes;
        size_t len;
    } cases[] = {
        { 0x0, "\x00", 1 },
        { 0x7f, "\x7f", 1 },
        { 0x80, "\xc2\x80", 2 },
        { 0x7ff, "\xdf\xbf", 2 },
        { 0x800, "\xe0\xa0\x80", 3 },
        { 0xd7ff, "\xed\x9f\xbf", 3 },
        { 0xe000, "\xee\x80\x80", 3 },
        { 0xfffd, "\xef\xbf\xbd", 3 },
        { 0xffff, "\xef\xbf\xbf", 3 },
        { 0x10000, "\xf0\x90\x80\x80", 4 },
        { 0x10ffff, "\xf4\x8f\xbf\xbf", 4 },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        unsigned char out[4] = { 0 };
        size_t n = utf8_encode(cases[i].cp, out);
        CHECK_BYTES(out, n, cases[i].bytes, cases[i].len, "utf8_encode U+%04X",
                    (unsigned)cases[i].cp);
        uint32_t back = 0xdeadbeef;
        CHECK(utf8_decode(out, n, &back) == n && back == cases[i].cp,
              "utf8_decode(utf8_encode(U+%04X)) round trip", (unsigned)cases[i].cp);
    }

    /* All 1,112,064 scalar values: encode, then decode and validate in an exact buffer. */
    unsigned bad = 0;
    uint32_t first_bad = 0;
    for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
        if (cp == 0xd800)
            cp = 0xe000;
        unsigned char out[4];
        size_t n = utf8_encode(cp, out);
        size_t want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        uint32_t back = 0;
        if (n != want || utf8_decode(out, n, &back) != n || back != cp ||
            !utf8_validate((const char *)out, n, NULL)) {
            if (!bad)
                first_bad = cp;
            bad++;
        }
    }
    CHECK(bad == 0, "utf8_encode/utf8_decode round trip every scalar value");
    if (bad)
        printf("#   %u bad, first U+%04X\n", bad, (unsigned)first_bad);
}

/* ---- buf ---------------------------------------------------------------------------------- */

static void test_buf_basic(void)
{
    Buf b = BUF_INIT;
    char *out = NULL;
    size_t len = 99;
    CHECK(buf_finish(&b, &out, &len) == 0 && out && out[0] == '\0' && len == 0,
          "buf_finish of an untouched buffer gives an empty string");
    oc_free(out);

    buf_puts(&b, "hello");
    buf_putc(&b, ',');
    buf_put(&b, " world", 6);
    buf_printf(&b, " %d-%s-%05u", 42, "x", 7u);
    CHECK(b.error == 0 && b.len == 23 && b.data && b.data[b.len] == '\0',
          "appends keep the buffer NUL-terminated");
    CHECK(buf_finish(&b, &out, &len) == 0, "buf_finish succeeds");
    CHECK_BYTES(out, len, "hello, world 42-x-00007", 23, "buf contents after put/putc/printf");
    CHECK(out && out[len] == '\0', "buf_finish result is NUL-terminated");
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0, "buf_finish resets the buffer");
    oc_free(out);

    /* A finished buffer is reusable and hands over a new, independent block. */
    buf_put(&b, "a\0b", 3);
    CHECK(buf_finish(&b, &out, &len) == 0 && len == 3 && memcmp(out, "a\0b", 4) == 0,
          "embedded NULs are kept and the buffer is reusable after finish");
    oc_free(out);

    /* printf output larger than the first allocation. */
    buf_printf(&b, "%0300d|%s", 5, "end");
    CHECK(buf_finish(&b, &out, &len) == 0 && len == 304 && out[298] == '0' && out[299] == '5' &&
              strcmp(out + 300, "|end") == 0,
          "buf_printf grows the buffer for long output");
    oc_free(out);

    Buf z;
    memset(&z, 0, sizeof(z));
    buf_deinit(&z);
    buf_deinit(&z);
    CHECK(z.data == NULL && z.len == 0, "buf_deinit accepts a zeroed buffer, twice");
    buf_puts(&z, "discard");
    buf_deinit(&z);
    CHECK(z.data == NULL && z.len == 0 && z.error == 0, "buf_deinit frees and resets");
}

static void test_buf_growth(void)
{
    /* Many small appends of varying size, checked byte for byte: every doubling of the
     * capacity must keep what was already written. */
    Buf b = BUF_INIT;
    size_t expect_len = 0;
    for (unsigned i = 0; i < 20000; i++) {
        switch (i % 3) {
        case 0:
            buf_putc(&b, (char)('a' + i % 26));
            expect_len += 1;
            break;
        case 1:
            buf_put(&b, "0123456789", i % 11);
            expect_len += i % 11;
            break;
        default:
            buf_printf(&b, "%u;", i);
            expect_len += (size_t)snprintf(NULL, 0, "%u;", i);
            break;
        }
    }
    CHECK(b.error == 0 && b.len == expect_len && b.cap > b.len, "20000 appends: length %zu",
          expect_len);
    char *out = NULL;
    size_t len = 0;
    CHECK(buf_finish(&b, &out, &len) == 0 && len == expect_len, "buf_finish after growth");

    size_t pos = 0;
    bool same = out != NULL;
    for (unsigned i = 0; same && i < 20000; i++) {
        char tmp[16];
        size_t n;
        switch (i % 3) {
        case 0:
            tmp[0] = (char)('a' + i % 26);
            n = 1;
            break;
        case 1:
            n = i % 11;
            memcpy(tmp, "0123456789", n);
            break;
        default:
            n = (size_t)snprintf(tmp, sizeof(tmp), "%u;", i);
            break;
        }
        if (pos + n > len || memcmp(out + pos, tmp, n) != 0)
            same = false;
        pos += n;
    }
    CHECK(same && pos == len && out[len] == '\0', "contents intact after 20000 appends");
    oc_free(out);
}

static void test_buf_limit(void)
{
    Buf b = BUF_INIT;
    b.limit = 10;
    buf_put(&b, "0123456789", 10);
    CHECK(b.error == 0 && b.len == 10, "appending exactly up to the limit is fine");
    buf_putc(&b, 'x');
    CHECK_INT(b.error, -E2BIG, "one byte past the limit sets -E2BIG");
    CHECK(b.len == 10, "the refused append left the contents alone");
    buf_puts(&b, "");
    buf_putc(&b, 'y');
    buf_printf(&b, "%d", 1);
    CHECK(b.error == -E2BIG && b.len == 10, "-E2BIG is sticky: later appends are no-ops");

    char *sentinel = (char *)"untouched";
    char *out = sentinel;
    size_t len = 777;
    CHECK_INT(buf_finish(&b, &out, &len), -E2BIG, "buf_finish reports -E2BIG");
    CHECK(out == sentinel && len == 777, "failed buf_finish leaves *out and *out_len alone");
    CHECK(b.data == NULL && b.len == 0, "failed buf_finish frees the contents");

    Buf p = BUF_INIT;
    p.limit = 5;
    buf_printf(&p, "%s", "123456");
    CHECK(p.error == -E2BIG && p.len == 0, "buf_printf past the limit sets -E2BIG");
    buf_deinit(&p);

    Buf big = BUF_INIT;
    big.limit = 8;
    buf_put(&big, "0123456789abcdef", 16);
    CHECK(big.error == -E2BIG && big.len == 0, "a single append larger than the limit fails");
    buf_deinit(&big);
}

static void test_buf_enomem(void)
{
    /* The first allocation fails: nothing is ever stored, finish reports -ENOMEM. */
    counting_install(0);
    Buf b = BUF_INIT;
    buf_puts(&b, "hello");
    CHECK_INT(b.error, -ENOMEM, "allocation failure sets -ENOMEM");
    alloc_budget = -1;
    buf_puts(&b, "later");
    buf_printf(&b, "%d", 5);
    CHECK(b.error == -ENOMEM && b.len == 0,
          "-ENOMEM is sticky even once memory is available again");
    char *sentinel = (char *)"untouched";
    char *out = sentinel;
    size_t len = 777;
    CHECK_INT(buf_finish(&b, &out, &len), -ENOMEM, "buf_finish reports -ENOMEM");
    CHECK(out == sentinel && len == 777, "failed buf_finish leaves *out and *out_len alone");
    CHECK_INT(alloc_live, 0, "nothing leaked after -ENOMEM");
    counting_remove();

    /* Failure during growth: the earlier block must be freed by buf_finish. */
    counting_install(1);
    Buf g = BUF_INIT;
    buf_puts(&g, "first");
    CHECK(g.error == 0, "first allocation succeeds");
    for (int i = 0; i < 100; i++)
        buf_puts(&g, "grow grow grow grow ");
    CHECK_INT(g.error, -ENOMEM, "failure while growing sets -ENOMEM");
    /* However many appends fitted in the first block, each is whole and the text ends there. */
    bool intact = g.data && g.len >= 5 && g.len < 5 + 100 * 20 && (g.len - 5) % 20 == 0 &&
                  memcmp(g.data, "first", 5) == 0 && g.data[g.len] == '\0';
    for (size_t off = 5; intact && off < g.len; off += 20)
        intact = memcmp(g.data + off, "grow grow grow grow ", 20) == 0;
    CHECK(intact, "contents written before the failure are intact");
    CHECK_INT(buf_finish(&g, &out, &len), -ENOMEM, "buf_finish reports -ENOMEM after growth");
    CHECK_INT(alloc_live, 0, "the partly grown buffer was freed");
    counting_remove();

    /* Allocation-failure loop: fail the Nth allocation for every N until one run succeeds;
     * every run must either give the full text or -ENOMEM, and leak nothing. */
    bool all_ok = true;
    long n;
    for (n = 0; n < 100; n++) {
        counting_install(n);
        Buf l = BUF_INIT;
        for (int i = 0; i < 50; i++)
            buf_printf(&l, "%02d:%s|", i, "abcdefghij");
        int r = buf_finish(&l, &out, &len);
        bool done = r == 0;
        if (done) {
            if (len != 50 * 14 || memcmp(out, "00:abcdefghij|01:", 17) != 0)
                all_ok = false;
            oc_free(out);
        } else if (r != -ENOMEM) {
            all_ok = false;
        }
        if (alloc_live != 0)
            all_ok = false;
        counting_remove();
        if (done)
            break;
    }
    CHECK(all_ok && n > 0 && n < 100, "allocation-failure loop: %ld failing runs, no leaks", n);
}

static void test_buf_ownership(void)
{
    /* buf_finish hands over a block from the ocgate allocator: oc_free is what releases it. */
    counting_install(-1);
    Buf b = BUF_INIT;
    buf_puts(&b, "owned");
    char *out = NULL;
    size_t len = 0;
    int r = buf_finish(&b, &out, &len);
    CHECK(r == 0 && alloc_live == 1, "after buf_finish the caller holds the only block");
    CHECK(b.data == NULL, "the buffer no longer points at the handed-over block");
    buf_deinit(&b);
    CHECK(alloc_live == 1, "buf_deinit after finish does not free the caller's block");
    oc_free(out);
    CHECK_INT(alloc_live, 0, "oc_free releases the block buf_finish handed over");
    counting_remove();
}

/* ---- alloc -------------------------------------------------------------------------------- */

static void test_alloc(void)
{
    void *p = oc_malloc(0);
    CHECK(p != NULL, "oc_malloc(0) returns a block");
    oc_free(p);
    oc_free(NULL);
    CHECK(1, "oc_free(NULL) is harmless");

    CHECK(oc_calloc(SIZE_MAX / 2 + 1, 2) == NULL, "oc_calloc refuses n*size overflow");
    CHECK(oc_calloc(SIZE_MAX, SIZE_MAX) == NULL, "oc_calloc refuses SIZE_MAX*SIZE_MAX");
    CHECK(oc_calloc(2, SIZE_MAX / 2 + 1) == NULL, "oc_calloc refuses overflow either way round");

    counting_install(-1);
    CHECK(oc_calloc(SIZE_MAX / 8, 16) == NULL && alloc_calls == 0,
          "an overflowing oc_calloc never reaches the allocator");
    unsigned char *z = oc_calloc(37, 3);
    bool zero = z != NULL;
    for (size_t i = 0; z && i < 37 * 3; i++)
        if (z[i])
            zero = false;
    CHECK(zero, "oc_calloc zeroes the block (the allocator filled it with 0xaa)");
    oc_free(z);
    void *z0 = oc_calloc(0, 16);
    CHECK(z0 != NULL, "oc_calloc(0, n) returns a block");
    oc_free(z0);
    CHECK_INT(alloc_live, 0, "oc_calloc blocks released through oc_free");
    counting_remove();

    /* oc_realloc keeps the old contents, growing and shrinking, and from NULL. */
    char *r = oc_realloc(NULL, 0, 8);
    CHECK(r != NULL, "oc_realloc(NULL, 0, n) allocates");
    memcpy(r, "abcdefgh", 8);
    char *g = oc_realloc(r, 8, 4096);
    CHECK(g && memcmp(g, "abcdefgh", 8) == 0, "oc_realloc growing preserves the data");
    char *s = oc_realloc(g, 4096, 3);
    CHECK(s && memcmp(s, "abc", 3) == 0, "oc_realloc shrinking keeps the first bytes");

    counting_install(0);
    char *f = oc_realloc(s, 3, 100);
    CHECK(f == NULL, "oc_realloc returns NULL when the allocator fails");
    counting_remove();
    CHECK(memcmp(s, "abc", 3) == 0, "after a failed oc_realloc the old block is intact");
    oc_free(s);

    char *d = oc_strndup("hello world", 5);
    CHECK(d && memcmp(d, "hello", 6) == 0, "oc_strndup copies len bytes and a NUL");
    oc_free(d);
    d = oc_strndup("a\0b", 3);
    CHECK(d && memcmp(d, "a\0b\0", 4) == 0, "oc_strndup copies embedded NULs");
    oc_free(d);
    d = oc_strndup("xyz", 0);
    CHECK(d && d[0] == '\0', "oc_strndup of 0 bytes is the empty string");
    oc_free(d);
    counting_install(0);
    d = oc_strndup("abc", 3);
    counting_remove();
    CHECK(d == NULL, "oc_strndup returns NULL when the allocator fails");

    /* Passing NULL restores libc: a block from oc_malloc can go to plain free(). */
    oc_set_alloc_funcs(NULL, NULL);
    void *m = oc_malloc(16);
    CHECK(m != NULL, "oc_set_alloc_funcs(NULL, NULL) restores the default");
    free(m);
}

/* ---- errors.h ----------------------------------------------------------------------------- */

static void test_errors(void)
{
#define E(name, status) { OC_ERR_##name, #name, status }
    static const struct {
        OcErrorCode code;
        const char *name;
        int status;
    } table[] = {
        /* design.md, "error codes" */
        E(NONE, 200),
        E(INVALID_SIGNATURE, 401),
        E(TIMESTAMP_EXPIRED, 401),
        E(NONCE_REUSED, 401),
        E(UNKNOWN_OCID, 401),
        E(UNAUTHORIZED, 403),
        E(BAD_REQUEST, 400),
        E(INVALID_PROOF, 400),
        E(PROOF_SIGNATURE_INVALID, 400),
        E(ISSUER_NOT_ACCEPTED, 400),
        E(AMOUNT_MISMATCH, 400),
        E(CURRENCY_MISMATCH, 400),
        E(MERCHANT_NOT_REGISTERED, 400),
        E(CAPABILITY_NOT_SUPPORTED, 400),
        E(PAYMENT_NOT_FOUND, 404),
        E(TXID_NOT_FOUND, 404),
        E(NOT_FOUND, 404),
        E(INVALID_STATE, 409),
        E(IDEMPOTENCY_CONFLICT, 409),
        E(PAYMENT_EXPIRED, 410),
        E(PAYLOAD_TOO_LARGE, 413),
        E(RATE_LIMITED, 429),
        E(INTERNAL, 500),
        E(UNAVAILABLE, 503),
    };
#undef E
    CHECK_INT(OC_ARRAY_LEN(table), OC_ERR__COUNT, "the expected table covers every code");
    for (size_t i = 0; i < OC_ARRAY_LEN(table); i++) {
        CHECK_STR(oc_error_name(table[i].code), table[i].name, "name of %s", table[i].name);
        CHECK_INT(oc_error_http_status(table[i].code), table[i].status, "%s is HTTP %d",
                  table[i].name, table[i].status);
    }

    bool named = true, distinct = true, round_trip = true;
    for (unsigned i = 0; i < OC_ERR__COUNT; i++) {
        const char *a = oc_error_name((OcErrorCode)i);
        if (!a || !*a) {
            named = false;
            continue;
        }
        for (const char *c = a; *c; c++)
            if (!((*c >= 'A' && *c <= 'Z') || *c == '_'))
                named = false;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(a, oc_error_name((OcErrorCode)j)) == 0)
                distinct = false;
        if (oc_error_from_name(a) != (OcErrorCode)i)
            round_trip = false;
    }
    CHECK(named, "every code has a non-empty upper-case name");
    CHECK(distinct, "no two codes share a name");
    CHECK(round_trip, "oc_error_from_name(oc_error_name(c)) == c for every code");

    CHECK(oc_error_from_name("NO_SUCH_CODE") == OC_ERR__COUNT, "unknown name → OC_ERR__COUNT");
    CHECK(oc_error_from_name("") == OC_ERR__COUNT, "empty name → OC_ERR__COUNT");
    CHECK(oc_error_from_name("invalid_signature") == OC_ERR__COUNT, "names are case-sensitive");
    CHECK(oc_error_from_name("INVALID_SIGNATURE ") == OC_ERR__COUNT, "names match exactly");

    CHECK_STR(oc_error_name(OC_ERR__COUNT), "INTERNAL", "out-of-range code is named INTERNAL");
    CHECK_STR(oc_error_name((OcErrorCode)-1), "INTERNAL", "negative code is named INTERNAL");
    CHECK_INT(oc_error_http_status(OC_ERR__COUNT), 500, "out-of-range code is HTTP 500");
    CHECK_INT(oc_error_http_status((OcErrorCode)-1), 500, "negative code is HTTP 500");
}

int main(void)
{
    test_hex_encode();
    test_hex_decode();
    test_hex_is_valid();
    test_utf8_valid();
    test_utf8_invalid();
    test_utf8_sweeps();
    test_utf8_encode();
    test_buf_basic();
    test_buf_growth();
    test_buf_limit();
    test_buf_enomem();
    test_buf_ownership();
    test_alloc();
    test_errors();
    return tl_done();
}
