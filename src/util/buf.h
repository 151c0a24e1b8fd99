/* A growable byte buffer with sticky failure: after the first allocation failure every
 * append is a no-op and buf_finish reports -ENOMEM once, so writers can append freely and
 * check a single result at the end. The contents are always NUL-terminated when non-empty. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/macro.h"

typedef struct Buf {
    char *data;   /* NULL until the first append */
    size_t len;
    size_t cap;
    size_t limit; /* 0 = unlimited; appends past it fail with -E2BIG */
    int error;    /* 0, -ENOMEM or -E2BIG: the first failure, sticky */
} Buf;

#define BUF_INIT { NULL, 0, 0, 0, 0 }

void buf_put(Buf *b, const void *data, size_t len);
void buf_putc(Buf *b, char c);
void buf_puts(Buf *b, const char *s);
void buf_printf(Buf *b, const char *fmt, ...) OC_PRINTF(2, 3);

/* Hands the contents over: on success *out (NUL-terminated, owned by the caller, free with
 * oc_free) and *out_len are set and the buffer is reset. On failure returns the sticky error,
 * frees the contents and leaves *out and *out_len untouched. */
OC_MUST_CHECK int buf_finish(Buf *b, char **out, size_t *out_len);

/* Frees the contents and resets the buffer; accepts a zeroed buffer. */
void buf_deinit(Buf *b);
