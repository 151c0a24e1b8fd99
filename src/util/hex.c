/* Hex encode/decode (hex.h). */
#include "util/hex.h"

#include <errno.h>

void hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

/* Returns 0..15, or a value with bit 8 set for a non-hex byte. The comparisons compile to
 * flag-setting instructions, not branches, so decoding a key does not branch on its digits. */
static unsigned hex_nibble(unsigned char c)
{
    unsigned d = (unsigned)c - '0';             /* wraps for c < '0': then not < 10 */
    unsigned l = ((unsigned)c | 0x20u) - 'a';   /* likewise for letters */
    unsigned is_d = d < 10u;
    unsigned is_l = l < 6u;
    unsigned val = (d & (0u - is_d)) | ((l + 10u) & (0u - is_l));
    return (val & 0x0fu) | (((is_d | is_l) ^ 1u) << 8);
}

int hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_len)
{
    if (hex_len != 2 * out_len)
        return -EINVAL;
    unsigned bad = 0;
    for (size_t i = 0; i < out_len; i++) {
        unsigned hi = hex_nibble((unsigned char)hex[2 * i]);
        unsigned lo = hex_nibble((unsigned char)hex[2 * i + 1]);
        bad |= (hi | lo) >> 8;
        out[i] = (uint8_t)(((hi & 0x0f) << 4) | (lo & 0x0f));
    }
    return bad ? -EINVAL : 0;
}

bool hex_is_valid(const char *hex, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (hex_nibble((unsigned char)hex[i]) >> 8)
            return false;
    return true;
}
