/* ocgate configuration (conf.h). The static `keys` table below is the single source of truth
 * for parsing, defaults, limits, `ocgate config keys`, docs/configuration.md and the example
 * file (tests compare them). Values come from the defaults, then the file, then OCGATE_*
 * variables; cross-key checks run on the merged result. Messages name keys, variables and
 * file lines, never values: a value may be a connection string or a secret pasted by mistake. */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/utf8.h"

#define CONF_FILE_MAX (1024 * 1024) /* a config file is a few KiB; refuse anything silly */
#define CONF_VALUE_MAX 4096         /* PATH_MAX, and far beyond any sane URL or name */
#define CONF_THREADS_MAX 64

typedef enum KeyKind {
    KT_STRING,
    KT_INTEGER,
    KT_BYTES,
    KT_SECONDS,
    KT_PATH,
    KT_URL,
    KT_LIST,
    KT_ENUM,
    KT_LISTEN,
    KT_BOOL,
    KT_DURATIONS,
} KeyKind;

/* The C type of the Config field a key writes. */
typedef enum KeyStore {
    ST_STR,      /* char *, owned */
    ST_UNSIGNED, /* unsigned */
    ST_INT64,    /* int64_t */
    ST_SIZE,     /* size_t */
    ST_LIST,     /* char *[max] at offset, size_t count at count_offset */
    ST_BOOL,     /* bool */
    ST_SECONDS_LIST, /* unsigned [max] at offset, size_t count at count_offset */
} KeyStore;

/* A value check beyond the kind's own syntax: NULL when fine, else the problem as a phrase
 * that follows the key name ("must ..."). It must never quote the value. */
typedef const char *(*CheckFn)(const char *value);

typedef struct KeyDef {
    ConfKeyInfo info; /* first, so conf_key_at can hand out &keys[i].info */
    KeyKind kind;
    KeyStore store;
    size_t offset;
    size_t count_offset;         /* ST_LIST and ST_SECONDS_LIST only */
    uint64_t min, max;           /* numbers: inclusive range; lists: max entries;
                                    durations: each entry's range (max entries is
                                    CONF_MAX_SCHEDULE) */
    CheckFn check;               /* strings: extra check; lists: each entry */
    const char *const *choices;  /* KT_ENUM: NULL-terminated */
} KeyDef;

typedef struct Unit {
    char suffix;
    uint64_t factor;
} Unit;

/* Formatting picks the largest exact unit, scanning from the end: keep each table ascending,
 * with the canonical spelling of a factor after any alias. */
static const Unit units_bytes[] = {
    { 'k', 1024 }, { 'K', 1024 }, { 'm', 1024 * 1024 }, { 'M', 1024 * 1024 }, { 0, 0 },
};
static const Unit units_seconds[] = {
    { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 0, 0 },
};

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };

/* Spellings of a boolean; anything else is refused rather than guessed. */
static const char *const bool_true[] = { "true", "yes", "on", "1", NULL };
static const char *const bool_false[] = { "false", "no", "off", "0", NULL };

static const char *check_name(const char *v);
static const char *check_base_path(const char *v);
static const char *check_public_url(const char *v);
static const char *check_database_url(const char *v);
static const char *check_listen(const char *v);
static const char *check_currency(const char *v);

/* Field offsets checked against the field's C type at compile time: a _Generic without a
 * matching association does not compile, so the table cannot write the wrong width. */
#define FIELD(f, T) _Generic(((Config *)0)->f, T: offsetof(Config, f))
#define STR(f) .store = ST_STR, .offset = FIELD(f, char *)
#define UNS(f) .store = ST_UNSIGNED, .offset = FIELD(f, unsigned)
#define I64(f) .store = ST_INT64, .offset = FIELD(f, int64_t)
#define SIZE(f) .store = ST_SIZE, .offset = FIELD(f, size_t)
#define BOOL(f) .store = ST_BOOL, .offset = FIELD(f, bool)

#define KIND_TEXT_KT_STRING "string"
#define KIND_TEXT_KT_INTEGER "integer"
#define KIND_TEXT_KT_BYTES "bytes"
#define KIND_TEXT_KT_SECONDS "seconds"
#define KIND_TEXT_KT_PATH "path"
#define KIND_TEXT_KT_URL "url"
#define KIND_TEXT_KT_LIST "list"
#define KIND_TEXT_KT_ENUM "enum"
#define KIND_TEXT_KT_LISTEN "listen"
#define KIND_TEXT_KT_BOOL "bool"
#define KIND_TEXT_KT_DURATIONS "durations"

/* The environment name is spelled out (the preprocessor cannot upper-case); test-conf checks
 * that it is always "OCGATE_" + upper(name), and that a number's doc states the same range
 * as its min/max (it compares the doc with the range in the error message). */
#define KEY(nm, ENV, k, dflt, req, doc)                                                     \
    .info = { #nm, "OCGATE_" #ENV, KIND_TEXT_##k, dflt, req, doc }, .kind = k

#define SECONDS_PER_DAY 86400u

static const KeyDef keys[] = {
    /* database */
    { KEY(database_url, DATABASE_URL, KT_URL, "", true,
          "PostgreSQL connection string (libpq URL or key=value conninfo); it must not "
          "contain a password."),
      STR(database_url), .check = check_database_url },
    { KEY(database_password_file, DATABASE_PASSWORD_FILE, KT_PATH, "", false,
          "File holding the database password; unset means trust, peer or ~/.pgpass "
          "authentication."),
      STR(database_password_file) },
    { KEY(pool_size, POOL_SIZE, KT_INTEGER, "4", false,
          "Database connections per event-loop thread, 1 to 64."),
      UNS(pool_size), .min = 1, .max = 64 },
    { KEY(db_timeout_ms, DB_TIMEOUT_MS, KT_INTEGER, "5000", false,
          "Deadline in milliseconds for one database query, queueing included, 100 to 60000; "
          "past it the request is answered 503."),
      UNS(db_timeout_ms), .min = 100, .max = 60000 },
    /* identity */
    { KEY(ocid, OCID, KT_INTEGER, "", true,
          "The gateway's own Opencharge ID (OCID), 0 to 9007199254740991."),
      I64(ocid), .min = 0, .max = (UINT64_C(1) << 53) - 1 },
    { KEY(private_key_file, PRIVATE_KEY_FILE, KT_PATH, "", true,
          "File holding the gateway's secp256k1 private key as 64 hex digits; it must not be "
          "readable by group or others."),
      STR(private_key_file) },
    { KEY(public_url, PUBLIC_URL, KT_URL, "", true,
          "The gateway's public base URL, published as config.endpoint in its metadata "
          "(http:// or https://, no trailing slash)."),
      STR(public_url), .check = check_public_url },
    { KEY(name, NAME, KT_STRING, "ocgate", false,
          "Display name published in the gateway's metadata, 1 to 128 bytes."),
      STR(name), .check = check_name },
    /* listener */
    { KEY(listen, LISTEN, KT_LISTEN, "127.0.0.1:8080", false,
          "Address of the public HTTP listener, host:port or [IPv6]:port; port 0 picks a free "
          "port."),
      STR(listen), .check = check_listen },
    { KEY(tls_cert_file, TLS_CERT_FILE, KT_PATH, "", false,
          "PEM certificate chain for TLS on the public listener; set it with tls_key_file, or "
          "neither to serve plain HTTP behind a TLS-terminating proxy."),
      STR(tls_cert_file) },
    { KEY(tls_key_file, TLS_KEY_FILE, KT_PATH, "", false,
          "PEM private key for tls_cert_file; set together with it."),
      STR(tls_key_file) },
    { KEY(base_path, BASE_PATH, KT_STRING, "/opencharge", false,
          "Prefix of every protocol route: empty, or /-separated segments of A-Z, a-z, 0-9, _, "
          ". and - (not . or ..) without a trailing /."),
      STR(base_path), .check = check_base_path },
    { KEY(threads, THREADS, KT_INTEGER, "0", false,
          "Event-loop threads, 0 to 64; 0 means one per online CPU core (at most 64)."),
      UNS(threads), .min = 0, .max = CONF_THREADS_MAX },
    { KEY(max_connections, MAX_CONNECTIONS, KT_INTEGER, "10000", false,
          "Most simultaneous client connections per process, 1 to 1000000."),
      UNS(max_connections), .min = 1, .max = 1000000 },
    { KEY(idle_timeout, IDLE_TIMEOUT, KT_SECONDS, "60", false,
          "How long a client connection may sit idle or take to send a request before it is "
          "closed, 1s to 1h."),
      UNS(idle_timeout_s), .min = 1, .max = 3600 },
    { KEY(body_limit, BODY_LIMIT, KT_BYTES, "64K", false,
          "Largest request body accepted, 1K to 16M; a larger one is answered 413 "
          "PAYLOAD_TOO_LARGE."),
      SIZE(body_limit), .min = 1024, .max = 16 * 1024 * 1024 },
    { KEY(header_limit, HEADER_LIMIT, KT_BYTES, "16K", false,
          "Largest total size of a request's headers, 1K to 1M."),
      SIZE(header_limit), .min = 1024, .max = 1024 * 1024 },
    { KEY(rate_limit, RATE_LIMIT, KT_INTEGER, "1000", false,
          "Requests per second each authenticated participant may make to one instance, on "
          "average, 0 to 1000000; 0 means no limit. Past it: 429 RATE_LIMITED."),
      UNS(rate_limit), .min = 0, .max = 1000000 },
    { KEY(rate_limit_burst, RATE_LIMIT_BURST, KT_INTEGER, "2000", false,
          "Requests a participant may make at once before rate_limit applies, 1 to 1000000."),
      UNS(rate_limit_burst), .min = 1, .max = 1000000 },
    /* protocol */
    { KEY(currencies, CURRENCIES, KT_LIST, "", true,
          "Comma-separated currency codes the gateway accepts, each 3 to 10 of A-Z and 0-9, "
          "at most 32."),
      .store = ST_LIST, .offset = offsetof(Config, currencies),
      .count_offset = FIELD(n_currencies, size_t), .max = CONF_MAX_CURRENCIES,
      .check = check_currency },
    { KEY(timestamp_window, TIMESTAMP_WINDOW, KT_SECONDS, "300", false,
          "How far a request's X-OC-Timestamp may differ from the gateway's clock either "
          "way, 1s to 1h."),
      UNS(timestamp_window_s), .min = 1, .max = 3600 },
    { KEY(proof_future_skew, PROOF_FUTURE_SKEW, KT_SECONDS, "300", false,
          "How far a proof's timestamp may be ahead of the gateway's clock, 0s to 1h."),
      UNS(proof_future_skew_s), .min = 0, .max = 3600 },
    { KEY(payment_lifetime, PAYMENT_LIFETIME, KT_SECONDS, "3600", false,
          "Lifetime of a new payment whose creator asks for no expiry, 1m to 365d and at most "
          "max_payment_lifetime."),
      UNS(payment_lifetime_s), .min = 60, .max = 365 * SECONDS_PER_DAY },
    { KEY(max_payment_lifetime, MAX_PAYMENT_LIFETIME, KT_SECONDS, "30d", false,
          "The furthest ahead a payment's creator may set its expiry, 1m to 365d."),
      UNS(max_payment_lifetime_s), .min = 60, .max = 365 * SECONDS_PER_DAY },
    /* logging */
    { KEY(log_level, LOG_LEVEL, KT_ENUM, "info", false,
          "Most verbose log level written: error, warn, info or debug."),
      STR(log_level), .choices = log_levels },
    /* merchant delivery worker and outbound HTTP */
    { KEY(worker, WORKER, KT_BOOL, "true", false,
          "Run the merchant delivery worker inside ocgate serve (true or false); `ocgate "
          "worker` runs it alone."),
      BOOL(worker) },
    { KEY(delivery_schedule, DELIVERY_SCHEDULE, KT_DURATIONS, "5s,5m,30m,2h,5h,10h,10h", false,
          "Comma-separated delays before each retry of a merchant notification (1 to 32 "
          "entries, each 1s to 7d); after the last the delivery is dead."),
      .store = ST_SECONDS_LIST, .offset = offsetof(Config, delivery_schedule_s),
      .count_offset = FIELD(n_delivery_schedule, size_t), .min = 1, .max = 7 * SECONDS_PER_DAY },
    { KEY(delivery_jitter_percent, DELIVERY_JITTER_PERCENT, KT_INTEGER, "10", false,
          "Random spread applied to each retry delay, plus or minus this percentage, 0 to 50."),
      UNS(delivery_jitter_percent), .min = 0, .max = 50 },
    { KEY(delivery_timeout_ms, DELIVERY_TIMEOUT_MS, KT_INTEGER, "10000", false,
          "Deadline in milliseconds for one delivery attempt, connection and answer included, "
          "100 to 300000."),
      UNS(delivery_timeout_ms), .min = 100, .max = 300000 },
    { KEY(delivery_connect_timeout_ms, DELIVERY_CONNECT_TIMEOUT_MS, KT_INTEGER, "5000", false,
          "Deadline in milliseconds for name resolution, TCP and TLS set-up of an attempt, 100 "
          "to 300000 and at most delivery_timeout_ms."),
      UNS(delivery_connect_timeout_ms), .min = 100, .max = 300000 },
    { KEY(delivery_max_response, DELIVERY_MAX_RESPONSE, KT_BYTES, "64K", false,
          "Largest merchant answer read, 1K to 16M; a longer one fails the attempt."),
      SIZE(delivery_max_response), .min = 1024, .max = 16 * 1024 * 1024 },
    { KEY(delivery_lease, DELIVERY_LEASE, KT_SECONDS, "60", false,
          "How long a worker holds a claimed delivery before another may take it over, 2s to "
          "1h and longer than delivery_timeout_ms."),
      UNS(delivery_lease_s), .min = 2, .max = 3600 },
    { KEY(delivery_poll_ms, DELIVERY_POLL_MS, KT_INTEGER, "500", false,
          "Interval in milliseconds at which the worker looks for due deliveries besides being "
          "woken by its own settlements, 10 to 1000."),
      UNS(delivery_poll_ms), .min = 10, .max = 1000 },
    { KEY(delivery_batch, DELIVERY_BATCH, KT_INTEGER, "64", false,
          "Most deliveries claimed in one database round trip, 1 to 1000."),
      UNS(delivery_batch), .min = 1, .max = 1000 },
    { KEY(delivery_concurrency, DELIVERY_CONCURRENCY, KT_INTEGER, "256", false,
          "Most delivery attempts in flight in one worker, 1 to 10000."),
      UNS(delivery_concurrency), .min = 1, .max = 10000 },
    { KEY(delivery_per_merchant, DELIVERY_PER_MERCHANT, KT_INTEGER, "8", false,
          "Most delivery attempts in flight to one merchant in one worker, 1 to 1000."),
      UNS(delivery_per_merchant), .min = 1, .max = 1000 },
    { KEY(delivery_breaker_failures, DELIVERY_BREAKER_FAILURES, KT_INTEGER, "5", false,
          "Consecutive failed attempts after which a merchant is skipped for "
          "delivery_breaker_cooldown, 1 to 1000."),
      UNS(delivery_breaker_failures), .min = 1, .max = 1000 },
    { KEY(delivery_breaker_cooldown, DELIVERY_BREAKER_COOLDOWN, KT_SECONDS, "30", false,
          "How long a failing merchant is skipped before one trial attempt is let through, 1s "
          "to 1h."),
      UNS(delivery_breaker_cooldown_s), .min = 1, .max = 3600 },
    { KEY(delivery_attempt_retention, DELIVERY_ATTEMPT_RETENTION, KT_SECONDS, "90d", false,
          "How long the record of each delivery attempt is kept before the worker deletes it, "
          "1d to 3650d; the deliveries themselves are kept for ever."),
      UNS(delivery_attempt_retention_s), .min = SECONDS_PER_DAY, .max = 3650 * SECONDS_PER_DAY },
    { KEY(delivery_ca_file, DELIVERY_CA_FILE, KT_PATH, "", false,
          "PEM bundle of the certificate authorities trusted for https:// merchant endpoints; "
          "unset means the system's trust store."),
      STR(delivery_ca_file) },
    { KEY(outbound_allow_loopback, OUTBOUND_ALLOW_LOOPBACK, KT_BOOL, "false", false,
          "Allow merchant endpoints on loopback addresses (127.0.0.0/8, ::1); for tests only."),
      BOOL(outbound_allow_loopback) },
    { KEY(outbound_allow_private, OUTBOUND_ALLOW_PRIVATE, KT_BOOL, "false", false,
          "Allow merchant endpoints on private, link-local and CGNAT addresses (RFC 1918, "
          "fc00::/7, 169.254.0.0/16, 100.64.0.0/10)."),
      BOOL(outbound_allow_private) },
    /* admin API */
    { KEY(admin_listen, ADMIN_LISTEN, KT_LISTEN, "127.0.0.1:8081", false,
          "Address of the admin API listener (docs/admin-api.md), host:port or [IPv6]:port; "
          "keep it on loopback or a private network. Used only when admin_sealing_key_file "
          "is set."),
      STR(admin_listen), .check = check_listen },
    { KEY(admin_sealing_key_file, ADMIN_SEALING_KEY_FILE, KT_PATH, "", false,
          "File holding the 32-byte key (64 hex digits, `ocgate keygen --sealing-key`) that "
          "seals admin API client secrets; it must not be readable by group or others. Unset "
          "means no admin API."),
      STR(admin_sealing_key_file) },
};

#define N_KEYS OC_ARRAY_LEN(keys)

_Static_assert(sizeof(((Config *)0)->currencies) == CONF_MAX_CURRENCIES * sizeof(char *),
               "currencies must be an array of CONF_MAX_CURRENCIES strings");

size_t conf_key_count(void)
{
    return N_KEYS;
}

const ConfKeyInfo *conf_key_at(size_t i)
{
    return i < N_KEYS ? &keys[i].info : NULL;
}

/* ---- small helpers ---- */

static void set_err(char *err, size_t err_len, const char *fmt, ...) OC_PRINTF(3, 4);

static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || !err_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_upper_alnum(char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_upper_alnum(c) || (c >= 'a' && c <= 'z');
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* libpq's idea of whitespace in a conninfo string (isspace in the C locale). */
static bool is_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static void *field_ptr(Config *cfg, size_t offset)
{
    return (char *)cfg + offset;
}

static const KeyDef *key_by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strlen(keys[i].info.name) == len && memcmp(keys[i].info.name, name, len) == 0)
            return &keys[i];
    return NULL;
}

static const KeyDef *key_by_env(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strlen(keys[i].info.env) == len && memcmp(keys[i].info.env, name, len) == 0)
            return &keys[i];
    return NULL;
}

/* A name from outside (file key, environment variable) made safe to print: at most 64
 * characters, anything but [A-Za-z0-9_.-] shown as '?'. */
static const char *printable_name(const char *s, size_t len, char out[72])
{
    size_t n = len > 64 ? 64 : len;
    for (size_t i = 0; i < n; i++)
        out[i] = (is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-') ? s[i] : '?';
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Parses digits with at most one unit suffix (units may be NULL: digits only). No sign, no
 * spaces, no overflow. */
static bool parse_scaled(const char *s, const Unit *units, uint64_t *out)
{
    const char *p = s;
    uint64_t v = 0;
    if (!is_digit(*p))
        return false;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (*p) {
        if (!units || p[1])
            return false;
        const Unit *u = units;
        while (u->suffix && u->suffix != *p)
            u++;
        if (!u->suffix || v > UINT64_MAX / u->factor)
            return false;
        v *= u->factor;
    }
    *out = v;
    return true;
}

/* Writes v with the largest unit that divides it exactly ("64K", "30d", "90s"). */
static void format_scaled(uint64_t v, const Unit *units, const char *fallback_suffix,
                          char *out, size_t out_len)
{
    size_t n = 0;
    while (units[n].suffix)
        n++;
    while (n-- > 0) {
        if (v && v % units[n].factor == 0 && units[n].factor > 1) {
            snprintf(out, out_len, "%llu%c", (unsigned long long)(v / units[n].factor),
                     units[n].suffix);
            return;
        }
    }
    snprintf(out, out_len, "%llu%s", (unsigned long long)v, fallback_suffix);
}

/* ---- value checks (each returns NULL or a phrase that follows the key name) ---- */

static const char *check_name(const char *v)
{
    size_t len = strlen(v);
    if (len == 0 || len > 128)
        return "must be 1 to 128 bytes long";
    return NULL;
}

static const char *check_base_path(const char *v)
{
    static const char why[] =
        "must be empty, or /segment[/segment...] of A-Z a-z 0-9 _ . - without empty, . or .. "
        "segments and without a trailing /";
    if (!*v)
        return NULL;
    if (v[0] != '/' || strlen(v) > 256)
        return why;
    /* Walk the segments: each non-empty, not "." or "..", from the allowed characters. */
    const char *p = v;
    while (*p == '/') {
        const char *seg = ++p;
        while (is_alnum(*p) || *p == '_' || *p == '.' || *p == '-')
            p++;
        size_t n = (size_t)(p - seg);
        if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
            return why;
    }
    return *p ? why : NULL;
}

static const char *check_public_url(const char *v)
{
    static const char why[] =
        "must be an http:// or https:// URL with a host, without spaces, query, fragment or a "
        "trailing /";
    const char *host;
    if (strncmp(v, "https://", 8) == 0)
        host = v + 8;
    else if (strncmp(v, "http://", 7) == 0)
        host = v + 7;
    else
        return why;
    if (!*host || *host == '/' || strlen(v) > 2048 || v[strlen(v) - 1] == '/')
        return why;
    for (const char *p = host; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '"' || c == '<' || c == '>'
            || c == '\\' || c == '`' || c == '{' || c == '}' || c == '|' || c == '^')
            return why;
    }
    /* userinfo in a published endpoint is a leak waiting to happen */
    const char *slash = strchr(host, '/');
    const char *at = strchr(host, '@');
    if (at && (!slash || at < slash))
        return why;
    return NULL;
}

static const char password_why[] =
    "must not contain a password; use database_password_file";

static int hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* True when the percent-encoded URI query key k (len bytes) decodes to want (lower-case),
 * compared case-insensitively; libpq decodes keys before looking them up. */
static bool uri_key_is(const char *k, size_t len, const char *want)
{
    size_t i = 0, j = 0, wlen = strlen(want);
    while (i < len) {
        char c = k[i++];
        if (c == '%') {
            int hi = i + 1 < len ? hex_value(k[i]) : -1;
            int lo = i + 1 < len ? hex_value(k[i + 1]) : -1;
            if (hi < 0 || lo < 0)
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (j >= wlen || (char)(c | 0x20) != want[j])
            return false;
        j++;
    }
    return j == wlen;
}

/* The URI form: postgresql://[user[:password]@][hosts][/dbname][?key=value&...]. */
static const char *check_pg_uri(const char *v, size_t prefix_len)
{
    const char *auth = v + prefix_len;
    /* libpq takes everything before the first '@' (stopping at '/') as user[:password] */
    const char *p = auth;
    while (*p && *p != '@' && *p != '/')
        p++;
    if (*p == '@' && memchr(auth, ':', (size_t)(p - auth)))
        return password_why;
    const char *q = strchr(v, '?');
    while (q) {
        const char *k = q + 1;
        const char *amp = strchr(k, '&');
        const char *end = amp ? amp : k + strlen(k);
        const char *eq = memchr(k, '=', (size_t)(end - k));
        size_t klen = (size_t)((eq ? eq : end) - k);
        if (uri_key_is(k, klen, "password"))
            return password_why;
        q = amp;
    }
    return NULL;
}

/* The key=value form, tokenised like libpq's conninfo_parse: values bare (up to whitespace)
 * or single-quoted, backslash escaping the next character in both. */
static const char *check_conninfo(const char *v)
{
    static const char why[] = "must be a libpq URL (postgresql://...) or key=value conninfo";
    const char *p = v;
    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            return NULL;
        const char *kw = p;
        while (*p && *p != '=' && !is_space(*p))
            p++;
        size_t kw_len = (size_t)(p - kw);
        while (is_space(*p))
            p++;
        if (*p != '=' || kw_len == 0)
            return why;
        if (kw_len == 8 && strncasecmp(kw, "password", 8) == 0)
            return password_why;
        p++;
        while (is_space(*p))
            p++;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (*p != '\'')
                return why;
            p++;
        } else {
            while (*p && !is_space(*p)) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
        }
    }
}

static const char *check_database_url(const char *v)
{
    if (strncmp(v, "postgresql://", 13) == 0)
        return check_pg_uri(v, 13);
    if (strncmp(v, "postgres://", 11) == 0)
        return check_pg_uri(v, 11);
    return check_conninfo(v);
}

static const char *check_listen(const char *v)
{
    static const char why[] =
        "must be host:port or [IPv6]:port with a port from 0 to 65535";
    const char *port;
    if (v[0] == '[') {
        const char *end = strchr(v, ']');
        char addr[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        if (!end || end[1] != ':')
            return why;
        size_t n = (size_t)(end - v - 1);
        if (n == 0 || n >= sizeof(addr))
            return why;
        memcpy(addr, v + 1, n);
        addr[n] = '\0';
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            return why;
        port = end + 2;
    } else {
        /* the last ':' so that an unbracketed IPv6 address leaves a ':' in the host */
        const char *colon = strrchr(v, ':');
        if (!colon || colon == v || colon - v > 253)
            return why;
        for (const char *p = v; p < colon; p++)
            if (!is_alnum(*p) && *p != '.' && *p != '-')
                return why;
        port = colon + 1;
    }
    uint64_t n;
    if (strlen(port) > 5 || !parse_scaled(port, NULL, &n) || n > 65535)
        return why;
    return NULL;
}

static const char *check_currency(const char *v)
{
    size_t len = strlen(v);
    if (len < 3 || len > 10)
        return "is not a currency code (3 to 10 of A-Z and 0-9)";
    for (size_t i = 0; i < len; i++)
        if (!is_upper_alnum(v[i]))
            return "is not a currency code (3 to 10 of A-Z and 0-9)";
    return NULL;
}

/* ---- setting one key ---- */

static void list_free(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        oc_free(items[i]);
}

/* Splits a comma-separated list into fresh strings (blanks around entries trimmed). Returns
 * 0 with *n_out entries in items, CONF_E_INVALID with why, or -ENOMEM; nothing is left
 * allocated on failure. An empty value is an empty list. */
static int parse_list(const KeyDef *k, const char *value, char **items, size_t *n_out,
                      char *why, size_t why_len)
{
    size_t n = 0;
    int r = 0;
    const char *p = value;
    while (is_blank(*p))
        p++;
    if (!*p) {
        *n_out = 0;
        return 0;
    }
    for (;;) {
        const char *start = p;
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (start < end && is_blank(*start))
            start++;
        const char *stop = end;
        while (stop > start && is_blank(stop[-1]))
            stop--;
        if (n == k->max) {
            snprintf(why, why_len, "lists more than %llu entries", (unsigned long long)k->max);
            r = CONF_E_INVALID;
            goto fail;
        }
        items[n] = oc_strndup(start, (size_t)(stop - start));
        if (!items[n]) {
            r = -ENOMEM;
            goto fail;
        }
        n++;
        const char *bad = k->check ? k->check(items[n - 1]) : NULL;
        if (bad) {
            snprintf(why, why_len, "entry %zu %s", n, bad);
            r = CONF_E_INVALID;
            goto fail;
        }
        for (size_t i = 0; i + 1 < n; i++) {
            if (strcmp(items[i], items[n - 1]) == 0) {
                snprintf(why, why_len, "entries %zu and %zu are the same", i + 1, n);
                r = CONF_E_INVALID;
                goto fail;
            }
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *n_out = n;
    return 0;
fail:
    list_free(items, n);
    return r;
}

static bool in_list(const char *const *list, const char *value)
{
    for (; *list; list++)
        if (strcmp(*list, value) == 0)
            return true;
    return false;
}

/* A comma-separated list of 1..CONF_MAX_SCHEDULE durations, each within k's range; repeats
 * are the point (a schedule of "10h,10h"), so unlike parse_list nothing is refused for
 * being the same. Returns 0 or CONF_E_INVALID with why (never quoting the value). */
static int parse_durations(const KeyDef *k, const char *value, unsigned *items, size_t *n_out,
                           char *why, size_t why_len)
{
    char lo[32], hi[32];
    format_scaled(k->min, units_seconds, "s", lo, sizeof(lo));
    format_scaled(k->max, units_seconds, "s", hi, sizeof(hi));
    size_t n = 0;
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        while (p < end && is_blank(*p))
            p++;
        const char *stop = end;
        while (stop > p && is_blank(stop[-1]))
            stop--;
        char entry[32];
        size_t len = (size_t)(stop - p);
        uint64_t v = 0;
        bool good = len > 0 && len < sizeof(entry);
        if (good) {
            memcpy(entry, p, len);
            entry[len] = '\0';
            good = parse_scaled(entry, units_seconds, &v) && v >= k->min && v <= k->max;
        }
        if (!good || n == CONF_MAX_SCHEDULE) {
            snprintf(why, why_len, "must list 1 to %d durations separated by commas, each from "
                     "%s to %s (seconds, or with an s, m, h or d suffix)", CONF_MAX_SCHEDULE, lo,
                     hi);
            return CONF_E_INVALID;
        }
        items[n++] = (unsigned)v;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n_out = n;
    return 0;
}

static void range_why(const KeyDef *k, char *why, size_t why_len)
{
    char lo[32], hi[32];
    switch (k->kind) {
    case KT_BYTES:
        format_scaled(k->min, units_bytes, "", lo, sizeof(lo));
        format_scaled(k->max, units_bytes, "", hi, sizeof(hi));
        snprintf(why, why_len, "must be a size from %s to %s (bytes, or with a K or M suffix)",
                 lo, hi);
        break;
    case KT_SECONDS:
        format_scaled(k->min, units_seconds, "s", lo, sizeof(lo));
        format_scaled(k->max, units_seconds, "s", hi, sizeof(hi));
        snprintf(why, why_len,
                 "must be a duration from %s to %s (seconds, or with an s, m, h or d suffix)",
                 lo, hi);
        break;
    default:
        snprintf(why, why_len, "must be an integer from %llu to %llu",
                 (unsigned long long)k->min, (unsigned long long)k->max);
        break;
    }
}

/* Parses value for key k into cfg. Returns 0 and sets *has_value (false when an empty value
 * unsets an optional path, URL or list); CONF_E_INVALID with the problem in why, never
 * quoting the value; or -ENOMEM. On failure the field keeps its previous value. */
static int key_set(const KeyDef *k, Config *cfg, const char *value, bool *has_value,
                   char *why, size_t why_len)
{
    size_t len = strlen(value);
    if (len > CONF_VALUE_MAX) {
        snprintf(why, why_len, "is longer than %d bytes", CONF_VALUE_MAX);
        return CONF_E_INVALID;
    }
    if (!utf8_validate(value, len, NULL)) {
        snprintf(why, why_len, "is not valid UTF-8");
        return CONF_E_INVALID;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
            snprintf(why, why_len, "must not contain control characters");
            return CONF_E_INVALID;
        }
    }

    switch (k->kind) {
    case KT_INTEGER:
    case KT_BYTES:
    case KT_SECONDS: {
        const Unit *units = k->kind == KT_BYTES ? units_bytes
                            : k->kind == KT_SECONDS ? units_seconds
                                                    : NULL;
        uint64_t v;
        if (!parse_scaled(value, units, &v) || v < k->min || v > k->max) {
            range_why(k, why, why_len);
            return CONF_E_INVALID;
        }
        void *f = field_ptr(cfg, k->offset);
        if (k->store == ST_UNSIGNED) {
            assert(k->max <= UINT_MAX);
            *(unsigned *)f = (unsigned)v;
        } else if (k->store == ST_INT64) {
            assert(k->max <= INT64_MAX);
            *(int64_t *)f = (int64_t)v;
        } else {
            assert(k->store == ST_SIZE && k->max <= SIZE_MAX);
            *(size_t *)f = (size_t)v;
        }
        *has_value = true;
        return 0;
    }
    case KT_LIST: {
        char *items[CONF_MAX_CURRENCIES];
        size_t n;
        assert(k->store == ST_LIST && k->max <= CONF_MAX_CURRENCIES);
        int r = parse_list(k, value, items, &n, why, why_len);
        if (r)
            return r;
        char **dst = field_ptr(cfg, k->offset);
        size_t *count = field_ptr(cfg, k->count_offset);
        list_free(dst, *count);
        memcpy(dst, items, n * sizeof(*items));
        *count = n;
        *has_value = n > 0;
        return 0;
    }
    case KT_BOOL: {
        assert(k->store == ST_BOOL);
        bool v;
        if (in_list(bool_true, value))
            v = true;
        else if (in_list(bool_false, value))
            v = false;
        else {
            snprintf(why, why_len, "must be true or false (also yes/no, on/off, 1/0)");
            return CONF_E_INVALID;
        }
        *(bool *)field_ptr(cfg, k->offset) = v;
        *has_value = true;
        return 0;
    }
    case KT_DURATIONS: {
        assert(k->store == ST_SECONDS_LIST);
        unsigned items[CONF_MAX_SCHEDULE];
        size_t n;
        int r = parse_durations(k, value, items, &n, why, why_len);
        if (r)
            return r;
        memcpy(field_ptr(cfg, k->offset), items, n * sizeof(*items));
        *(size_t *)field_ptr(cfg, k->count_offset) = n;
        *has_value = true;
        return 0;
    }
    case KT_ENUM: {
        const char *const *c = k->choices;
        while (*c && strcmp(*c, value) != 0)
            c++;
        if (!*c) {
            size_t n = (size_t)snprintf(why, why_len, "must be one of");
            for (c = k->choices; *c && n < why_len; c++)
                n += (size_t)snprintf(why + n, why_len - n, "%s %s",
                                      c == k->choices ? "" : ",", *c);
            return CONF_E_INVALID;
        }
        break;
    }
    case KT_STRING:
    case KT_PATH:
    case KT_URL:
    case KT_LISTEN:
        if (!*value && (k->kind == KT_PATH || k->kind == KT_URL)) {
            char **f = field_ptr(cfg, k->offset);
            oc_free(*f);
            *f = NULL;
            *has_value = false;
            return 0;
        }
        if (k->check) {
            const char *bad = k->check(value);
            if (bad) {
                snprintf(why, why_len, "%s", bad);
                return CONF_E_INVALID;
            }
        }
        break;
    }

    assert(k->store == ST_STR);
    char *copy = oc_strndup(value, len);
    if (!copy)
        return -ENOMEM;
    char **f = field_ptr(cfg, k->offset);
    oc_free(*f);
    *f = copy;
    *has_value = true;
    return 0;
}

/* ---- sources ---- */

typedef struct LoadState {
    Config cfg;
    bool has_value[N_KEYS];
    bool in_file[N_KEYS];
    bool in_env[N_KEYS];
} LoadState;

static size_t key_index(const KeyDef *k)
{
    return (size_t)(k - keys);
}

static int read_file(const char *path, char **data, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, err_len, "cannot open config file %s: %s", path, strerror(errno));
        return CONF_E_FILE;
    }
    Buf b = BUF_INIT;
    b.limit = CONF_FILE_MAX;
    char chunk[4096];
    size_t n;
    /* stop at the limit: the path may name something endless, like /dev/zero */
    while (!b.error && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_put(&b, chunk, n);
    int read_errno = ferror(f) ? errno : 0;
    fclose(f);
    if (read_errno) {
        buf_deinit(&b);
        set_err(err, err_len, "cannot read config file %s: %s", path, strerror(read_errno));
        return CONF_E_FILE;
    }
    int r = buf_finish(&b, data, len);
    if (r == -E2BIG) {
        set_err(err, err_len, "config file %s is larger than %d bytes", path, CONF_FILE_MAX);
        return CONF_E_FILE;
    }
    return r;
}

/* One `key = value` line, already split off and NUL-terminated; lineno counts from 1. */
static int load_line(LoadState *st, const char *path, unsigned lineno, char *line, char *err,
                     size_t err_len)
{
    size_t len = strlen(line);
    while (len && is_blank(line[len - 1]))
        line[--len] = '\0';
    while (is_blank(*line)) {
        line++;
        len--;
    }
    if (!len || line[0] == '#')
        return 0;

    char *eq = strchr(line, '=');
    char *key_end = eq;
    while (key_end && key_end > line && is_blank(key_end[-1]))
        key_end--;
    size_t key_len = key_end ? (size_t)(key_end - line) : 0;
    for (size_t i = 0; i < key_len; i++) {
        char c = line[i];
        if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
            key_len = 0;
    }
    char *value = eq ? eq + 1 : NULL;
    while (value && is_blank(*value))
        value++;
    size_t value_len = value ? strlen(value) : 0;
    if (value && value[0] == '"') {
        if (value_len < 2 || value[value_len - 1] != '"')
            value = NULL;
        else {
            value[value_len - 1] = '\0';
            value++;
        }
    }
    if (!eq || key_len == 0 || !value) {
        set_err(err, err_len, "%s:%u: malformed line (expected key = value)", path, lineno);
        return CONF_E_FILE;
    }

    char shown[72];
    const KeyDef *k = key_by_name(line, key_len);
    if (!k) {
        set_err(err, err_len, "%s:%u: unknown key '%s'", path, lineno,
                printable_name(line, key_len, shown));
        return CONF_E_UNKNOWN_KEY;
    }
    size_t i = key_index(k);
    if (st->in_file[i]) {
        set_err(err, err_len, "%s:%u: %s is set more than once", path, lineno, k->info.name);
        return CONF_E_FILE;
    }
    st->in_file[i] = true;
    char why[256];
    int r = key_set(k, &st->cfg, value, &st->has_value[i], why, sizeof(why));
    if (r > 0)
        set_err(err, err_len, "%s:%u: %s %s", path, lineno, k->info.name, why);
    return r;
}

static int load_file(LoadState *st, const char *path, char *err, size_t err_len)
{
    char *data;
    size_t len;
    int r = read_file(path, &data, &len, err, err_len);
    if (r)
        return r;
    char *p = data, *end = data + len;
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3; /* a BOM some editors add; not part of the first key */
    unsigned lineno = 0;
    while (p < end && r == 0) {
        lineno++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl ? nl : end;
        size_t line_len = (size_t)(line_end - p);
        if (line_len && p[line_len - 1] == '\r')
            line_len--; /* CRLF files from other systems */
        if (memchr(p, '\0', line_len) || !utf8_validate(p, line_len, NULL)) {
            set_err(err, err_len, "%s:%u: line is not valid UTF-8 text", path, lineno);
            r = CONF_E_FILE;
            break;
        }
        p[line_len] = '\0';
        r = load_line(st, path, lineno, p, err, err_len);
        p = line_end + 1;
    }
    oc_free(data);
    return r;
}

static int load_env(LoadState *st, char *const *envp, char *err, size_t err_len)
{
    static const char prefix[] = "OCGATE_";
    char shown[72];
    for (; *envp; envp++) {
        const char *e = *envp;
        if (strncmp(e, prefix, sizeof(prefix) - 1) != 0)
            continue;
        const char *eq = strchr(e, '=');
        size_t name_len = eq ? (size_t)(eq - e) : strlen(e);
        if (name_len == strlen("OCGATE_CONFIG") && memcmp(e, "OCGATE_CONFIG", name_len) == 0)
            continue; /* the file's path: the caller's business */
        const KeyDef *k = key_by_env(e, name_len);
        if (!k) {
            set_err(err, err_len, "unknown environment variable %s",
                    printable_name(e, name_len, shown));
            return CONF_E_UNKNOWN_KEY;
        }
        size_t i = key_index(k);
        if (st->in_env[i]) {
            set_err(err, err_len, "%s is set more than once in the environment", k->info.env);
            return CONF_E_INVALID;
        }
        st->in_env[i] = true;
        char why[256];
        int r = key_set(k, &st->cfg, eq ? eq + 1 : "", &st->has_value[i], why, sizeof(why));
        if (r > 0)
            set_err(err, err_len, "%s: %s %s", k->info.env, k->info.name, why);
        if (r)
            return r;
    }
    return 0;
}

/* Checks that need every source merged: required keys, pairs, orderings. */
static int validate(const LoadState *st, char *err, size_t err_len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        if (keys[i].info.required && !st->has_value[i]) {
            set_err(err, err_len, "missing required key %s (set it in the config file or %s)",
                    keys[i].info.name, keys[i].info.env);
            return CONF_E_MISSING;
        }
    }
    const Config *c = &st->cfg;
    if (!c->tls_cert_file != !c->tls_key_file) {
        set_err(err, err_len, "tls_cert_file and tls_key_file must be set together, or neither");
        return CONF_E_INVALID;
    }
    if (c->payment_lifetime_s > c->max_payment_lifetime_s) {
        set_err(err, err_len, "payment_lifetime must not exceed max_payment_lifetime");
        return CONF_E_INVALID;
    }
    /* A lease shorter than an attempt would let a second worker send the same delivery
     * while the first is still waiting for the merchant. */
    if ((uint64_t)c->delivery_lease_s * 1000 <= c->delivery_timeout_ms) {
        set_err(err, err_len, "delivery_lease must be longer than delivery_timeout_ms");
        return CONF_E_INVALID;
    }
    if (c->delivery_connect_timeout_ms > c->delivery_timeout_ms) {
        set_err(err, err_len,
                "delivery_connect_timeout_ms must not exceed delivery_timeout_ms");
        return CONF_E_INVALID;
    }
    return 0;
}

int conf_load(const char *path, char *const *envp, Config *out, char *err, size_t err_len)
{
    LoadState st;
    int r = 0;
    memset(&st, 0, sizeof(st));
    set_err(err, err_len, "%s", "");

    for (size_t i = 0; i < N_KEYS && r == 0; i++) {
        if (!keys[i].info.default_text[0])
            continue;
        char why[256];
        r = key_set(&keys[i], &st.cfg, keys[i].info.default_text, &st.has_value[i], why,
                    sizeof(why));
        if (r > 0) /* a broken table; test-conf catches it before anyone sees this */
            set_err(err, err_len, "internal error: default of %s %s", keys[i].info.name, why);
    }
    if (!r && path)
        r = load_file(&st, path, err, err_len);
    if (!r && envp)
        r = load_env(&st, envp, err, err_len);
    if (!r)
        r = validate(&st, err, err_len);
    if (r) {
        if (r == -ENOMEM)
            set_err(err, err_len, "out of memory");
        conf_deinit(&st.cfg);
        return r;
    }

    if (st.cfg.threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        st.cfg.threads = cores < 1 ? 1u : cores > CONF_THREADS_MAX ? CONF_THREADS_MAX
                                                                   : (unsigned)cores;
    }
    *out = st.cfg;
    return 0;
}

void conf_deinit(Config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < N_KEYS; i++) {
        const KeyDef *k = &keys[i];
        if (k->store == ST_STR) {
            char **f = field_ptr(cfg, k->offset);
            oc_free(*f);
            *f = NULL;
        } else if (k->store == ST_LIST) {
            size_t *count = field_ptr(cfg, k->count_offset);
            list_free(field_ptr(cfg, k->offset), *count);
            *count = 0;
        }
    }
    memset(cfg, 0, sizeof(*cfg));
}
