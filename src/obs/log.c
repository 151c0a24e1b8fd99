/* JSON-lines logging (log.h). */
#include "obs/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = LOG_INFO;
static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            atomic_store(&log_level, i);
            return 0;
        }
    }
    return -EINVAL;
}

int log_enabled(LogLevel level)
{
    return (int)level <= atomic_load(&log_level);
}

void log_json(LogLevel level, const char *msg, const char *fields, ...)
{
    if (!log_enabled(level))
        return;
    char line[4096];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                     "\"msg\":\"%s\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (long)(tv.tv_usec / 1000), level_names[level], msg);
    if (n < 0 || (size_t)n >= sizeof(line) - 3)
        return;
    if (fields && *fields) {
        line[n++] = ',';
        va_list ap;
        va_start(ap, fields);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fields, ap);
        va_end(ap);
        if (m < 0)
            return;
        /* A truncated line would not be JSON; drop the extra fields instead. */
        if ((size_t)m >= sizeof(line) - (size_t)n - 2)
            n--;
        else
            n += m;
    }
    line[n++] = '}';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_json_str(const char *s, char *out, size_t out_len)
{
    size_t o = 0;
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t len;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            len = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            len = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
        } else {
            esc[0] = (char)*p;
            len = 1;
        }
        /* Stop before a multi-byte character that would not fit whole. */
        size_t need = len;
        if (*p >= 0xc0)
            need = (*p >= 0xf0) ? 4 : (*p >= 0xe0) ? 3 : 2;
        if (o + need + 2 > out_len)
            break;
        memcpy(out + o, esc, len);
        o += len;
    }
    out[o++] = '"';
    out[o] = '\0';
}
