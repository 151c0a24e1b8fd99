/* ocgate configuration: one declarative table of keys (name, type, default, limits, doc)
 * read from an optional file of `key = value` lines and from OCGATE_<KEY> environment
 * variables (the environment wins), validated all at once into an immutable Config.
 * Secrets are never values: only paths to files (private key, database password). Unknown
 * keys and invalid values are refused with a message naming the key. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define CONF_MAX_CURRENCIES 32
#define CONF_MAX_SCHEDULE 32

typedef struct Config {
    /* database */
    char *database_url;             /* libpq URL or conninfo; must not contain a password */
    char *database_password_file;   /* NULL = none (trust, peer, or ~/.pgpass) */
    unsigned pool_size;             /* connections per event-loop thread */
    unsigned db_timeout_ms;         /* a query's deadline, queueing included → 503 */
    /* identity */
    int64_t ocid;                   /* the gateway's own OCID */
    char *private_key_file;         /* 0600, 64 hex digits */
    char *public_url;               /* published as metadata config.endpoint, e.g. https://gw/opencharge */
    char *name;                     /* metadata name */
    /* listener */
    char *listen;                   /* host:port, [v6]:port */
    char *tls_cert_file;            /* both or neither: TLS on the public listener */
    char *tls_key_file;
    char *base_path;                /* "/opencharge"; "" allowed = routes at the root */
    unsigned threads;               /* event loops; 0 in the file = one per core, resolved */
    unsigned max_connections;       /* per process */
    unsigned idle_timeout_s;        /* keep-alive/idle and read timeout per connection */
    size_t body_limit;              /* bytes; larger bodies → 413 PAYLOAD_TOO_LARGE */
    size_t header_limit;            /* bytes of all headers */
    unsigned rate_limit;            /* requests/s per participant and instance; 0 = off */
    unsigned rate_limit_burst;      /* bucket size */
    /* protocol */
    char *currencies[CONF_MAX_CURRENCIES];
    size_t n_currencies;
    unsigned timestamp_window_s;    /* ± for X-OC-Timestamp */
    unsigned proof_future_skew_s;   /* how far a proof timestamp may be ahead */
    unsigned payment_lifetime_s;    /* default expiry of a new payment */
    unsigned max_payment_lifetime_s;/* the furthest expiresAt a caller may ask for */
    /* logging */
    char *log_level;                /* error, warn, info, debug */
    /* merchant delivery worker (deliver/) and outbound HTTP (net/) */
    bool worker;                    /* run the delivery worker inside serve */
    unsigned delivery_schedule_s[CONF_MAX_SCHEDULE]; /* delay after attempt i+1 */
    size_t n_delivery_schedule;     /* 1..CONF_MAX_SCHEDULE; attempts = n + 1 */
    unsigned delivery_jitter_percent;
    unsigned delivery_timeout_ms;   /* one attempt, from the call to the last byte */
    unsigned delivery_connect_timeout_ms;
    size_t delivery_max_response;   /* bytes of a merchant's answer kept */
    unsigned delivery_lease_s;      /* a claim's lease; longer than delivery_timeout_ms */
    unsigned delivery_poll_ms;
    unsigned delivery_attempt_retention_s; /* attempts older than this are deleted */
    unsigned delivery_batch;        /* rows per claim */
    unsigned delivery_concurrency;  /* attempts in flight per worker */
    unsigned delivery_per_merchant; /* attempts in flight per merchant and worker */
    unsigned delivery_breaker_failures;
    unsigned delivery_breaker_cooldown_s;
    char *delivery_ca_file;         /* NULL = the system's trust store */
    bool outbound_allow_loopback;
    bool outbound_allow_private;
    /* admin API (src/admin/api.h): served only when a sealing key file is configured */
    char *admin_listen;             /* host:port, [v6]:port */
    char *admin_sealing_key_file;   /* 0600, 64 hex digits; NULL = no admin API */
} Config;

typedef enum ConfCode {
    CONF_E_UNKNOWN_KEY = 1,  /* a key in the file or an OCGATE_* variable that does not exist */
    CONF_E_INVALID,          /* a value that does not parse or is out of range */
    CONF_E_MISSING,          /* a required key has no value */
    CONF_E_FILE,             /* the config file cannot be read or has a malformed line */
} ConfCode;

/* Loads the configuration: defaults, then the file at path (NULL = none), then every
 * OCGATE_* variable in envp (NULL-terminated "NAME=value" strings; OCGATE_CONFIG itself is
 * ignored here). Returns 0 and fills *out (free with conf_deinit); or a ConfCode with a
 * one-line message naming the key (and file line) in err; or -ENOMEM. Does not open the
 * secret files (the modules that use them do, checking their permissions). */
OC_MUST_CHECK int conf_load(const char *path, char *const *envp, Config *out, char *err,
                            size_t err_len);

void conf_deinit(Config *cfg);

/* The key table, for documentation checks and `ocgate config`: iterates all keys. */
typedef struct ConfKeyInfo {
    const char *name;         /* "body_limit" */
    const char *env;          /* "OCGATE_BODY_LIMIT" */
    const char *type;         /* "string", "integer", "bytes", "seconds", "path", "list",
                                 "bool", "durations", ... */
    const char *default_text; /* as it would be written in the file; "" when none */
    bool required;
    const char *doc;          /* one sentence */
} ConfKeyInfo;

size_t conf_key_count(void);
const ConfKeyInfo *conf_key_at(size_t i);
