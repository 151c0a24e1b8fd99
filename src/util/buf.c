/* Growable buffer with sticky failure (buf.h). */
#include "util/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

static bool buf_reserve(Buf *b, size_t extra)
{
    if (b->error)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->error = -ENOMEM;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (b->limit && need - 1 > b->limit) {
        b->error = -E2BIG;
        return false;
    }
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = oc_realloc(b->data, b->cap, cap);
    if (!p) {
        b->error = -ENOMEM;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void buf_put(Buf *b, const void *data, size_t len)
{
    if (!buf_reserve(b, len))
        return;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void buf_putc(Buf *b, char c)
{
    buf_put(b, &c, 1);
}

void buf_puts(Buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (!b->error)
            b->error = -EINVAL;
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int buf_finish(Buf *b, char **out, size_t *out_len)
{
    /* An untouched buffer still hands out an empty, NUL-terminated string. */
    if (buf_reserve(b, 0))
        b->data[b->len] = '\0';
    if (b->error) {
        int err = b->error;
        buf_deinit(b);
        return err;
    }
    *out = b->data;
    *out_len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return 0;
}

void buf_deinit(Buf *b)
{
    oc_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->error = 0;
}
