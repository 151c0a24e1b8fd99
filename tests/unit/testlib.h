/* Minimal TAP test helpers for the unit tests. Each CHECK is one TAP point, so meson (with
 * protocol: 'tap') reports exactly which assertion failed; failures never abort, so one run
 * shows every broken case. Header-only on purpose: each test is a single binary. */
#pragma once

#undef NDEBUG
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tl_count;
static int tl_failed;

static void tl_result(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), unused));

static void tl_result(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tl_count++;
    if (!ok)
        tl_failed++;
    printf("%sok %d - ", ok ? "" : "not ", tl_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok)
        printf(" (%s:%d)", file, line);
    printf("\n");
    fflush(stdout);
}

/* CHECK(cond, "what is being checked %s", args...) */
#define CHECK(cond, ...) tl_result((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

/* Compares two byte strings, printing both on mismatch. */
#define CHECK_BYTES(got, got_len, want, want_len, ...)                                      \
    do {                                                                                    \
        size_t tl_gl_ = (got_len), tl_wl_ = (want_len);                                     \
        const void *tl_g_ = (got), *tl_w_ = (want);                                         \
        int tl_ok_ = tl_g_ && tl_gl_ == tl_wl_ && memcmp(tl_g_, tl_w_, tl_wl_) == 0;        \
        tl_result(tl_ok_, __FILE__, __LINE__, __VA_ARGS__);                                 \
        if (!tl_ok_) {                                                                      \
            printf("#   got:  %.*s\n", tl_g_ ? (int)tl_gl_ : 6,                             \
                   tl_g_ ? (const char *)tl_g_ : "(null)");                                 \
            printf("#   want: %.*s\n", (int)tl_wl_, (const char *)tl_w_);                   \
        }                                                                                   \
    } while (0)

#define CHECK_STR(got, want, ...)                                                           \
    do {                                                                                    \
        const char *tl_gs_ = (got), *tl_ws_ = (want);                                       \
        CHECK_BYTES(tl_gs_, tl_gs_ ? strlen(tl_gs_) : 0, tl_ws_, strlen(tl_ws_),            \
                    __VA_ARGS__);                                                           \
    } while (0)

#define CHECK_INT(got, want, ...)                                                           \
    do {                                                                                    \
        long long tl_gi_ = (long long)(got), tl_wi_ = (long long)(want);                    \
        tl_result(tl_gi_ == tl_wi_, __FILE__, __LINE__, __VA_ARGS__);                       \
        if (tl_gi_ != tl_wi_)                                                               \
            printf("#   got %lld, want %lld\n", tl_gi_, tl_wi_);                            \
    } while (0)

/* Prints the TAP plan and returns the process exit status. */
static inline int tl_done(void)
{
    printf("1..%d\n", tl_count);
    if (tl_failed)
        printf("# %d of %d checks failed\n", tl_failed, tl_count);
    return tl_failed ? 1 : 0;
}

/* Reads a whole file into a NUL-terminated malloc'd buffer, or exits with a TAP bail-out. */
static inline char *tl_read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            data = realloc(data, cap);
        }
    }
    fclose(f);
    if (!data) {
        printf("Bail out! out of memory reading %s\n", path);
        exit(1);
    }
    data[len] = '\0';
    if (len_out)
        *len_out = len;
    return data;
}
