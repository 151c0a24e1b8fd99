/* Structured logs: one JSON object per line on stderr, written with a single write(2) so
 * lines from several threads never interleave. Callers pass extra fields as already-encoded
 * JSON members; strings from outside must go through log_json_str. Never log secrets or
 * request bodies. */
#pragma once

#include <stddef.h>

#include "util/macro.h"

typedef enum LogLevel {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
} LogLevel;

/* Sets the most verbose level written ("error", "warn", "info", "debug"); -EINVAL for
 * anything else. Default info. */
OC_MUST_CHECK int log_set_level(const char *name);
int log_enabled(LogLevel level);

/* Writes {"ts":"<RFC 3339 UTC, ms>","level":..,"msg":<msg>[,<fields>]}. fields is a printf
 * format producing zero or more comma-separated JSON members, e.g.
 * log_json(LOG_INFO, "proof", "\"outcome\":\"%s\",\"issuer\":%lld", outcome, issuer). */
void log_json(LogLevel level, const char *msg, const char *fields, ...) OC_PRINTF(3, 4);

/* Encodes s as a JSON string (with quotes) into out, truncating to fit out_len (at least 3)
 * at a character boundary; control characters are escaped. */
void log_json_str(const char *s, char *out, size_t out_len);
