/* ASCII character classes for protocol text (URLs, HTTP), independent of the C locale that
 * <ctype.h> would consult. */
#pragma once

#include <stdbool.h>
#include <string.h>

static inline bool ascii_is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool ascii_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline bool ascii_is_hex(unsigned char c)
{
    return ascii_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* An HTTP token character (RFC 9110 "tchar"): what header names are made of. */
static inline bool ascii_is_tchar(unsigned char c)
{
    return ascii_is_alpha(c) || ascii_is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}
