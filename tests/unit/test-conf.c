/* Unit tests for conf/: the key table itself, defaults, the file format, precedence of the
 * environment, every type's valid and invalid values (the error must name the key and must
 * not echo the value), cross-key checks, allocation failures, and that the shipped example
 * file (argv[1]) loads. */
#include "testlib.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "conf/conf.h"
#include "util/alloc.h"

static char tmpdir[256];

/* Writes text to a file in the test's directory and returns its path (static storage). */
static const char *write_conf(const char *text, size_t len)
{
    static char path[300];
    snprintf(path, sizeof(path), "%s/ocgate.conf", tmpdir);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", path);
        exit(1);
    }
    return path;
}

#define CONF_TEXT(lit) write_conf((lit), sizeof(lit) - 1)

/* Enough to load: the required keys, all through the environment. */
static const char *const required_env[] = {
    "OCGATE_DATABASE_URL=postgresql://ocgate@localhost/ocgate",
    "OCGATE_OCID=1001",
    "OCGATE_PRIVATE_KEY_FILE=/etc/ocgate/gateway.key",
    "OCGATE_PUBLIC_URL=https://gw.example/opencharge",
    "OCGATE_CURRENCIES=USD,EUR",
    NULL,
};

static bool same_name(const char *a, const char *b)
{
    size_t na = strcspn(a, "="), nb = strcspn(b, "=");
    return na == nb && memcmp(a, b, na) == 0;
}

/* Loads path (may be NULL) with the required variables, where over (NULL-terminated, may be
 * NULL) replaces a variable of the same name ("NAME=value") or drops it ("NAME" alone) or
 * adds a new one. base = false starts from an empty environment instead. */
static int load_ex(const char *path, bool base, const char *const *over, Config *cfg,
                   char *err, size_t err_len)
{
    char *envp[80];
    size_t n = 0;
    envp[n++] = (char *)"PATH=/usr/bin"; /* unrelated variables are ignored */
    envp[n++] = (char *)"OCGATE_CONFIG=/nonexistent/ignored.conf";
    for (size_t i = 0; base && required_env[i]; i++) {
        bool replaced = false;
        for (size_t j = 0; over && over[j]; j++)
            replaced |= same_name(required_env[i], over[j]);
        if (!replaced)
            envp[n++] = (char *)required_env[i];
    }
    for (size_t j = 0; over && over[j] && n + 1 < OC_ARRAY_LEN(envp); j++)
        if (strchr(over[j], '='))
            envp[n++] = (char *)over[j];
    envp[n] = NULL;
    return conf_load(path, envp, cfg, err, err_len);
}

#define OVER(...) ((const char *const[]){ __VA_ARGS__, NULL })

static int load(const char *path, const char *const *over, Config *cfg, char *err)
{
    return load_ex(path, true, over, cfg, err, 512);
}

static void upper_env(const char *key, char *out, size_t out_len)
{
    size_t n = (size_t)snprintf(out, out_len, "OCGATE_");
    for (; *key && n + 1 < out_len; key++)
        out[n++] = (*key >= 'a' && *key <= 'z') ? (char)(*key - 32) : *key;
    out[n] = '\0';
}

static void test_key_table(void)
{
    static const char *const types[] = { "string", "integer", "bytes", "seconds", "path",
                                         "url", "list", "enum", "listen", "bool",
                                         "durations" };
    size_t n = conf_key_count();
    CHECK(n == 44, "44 keys (got %zu)", n);
    CHECK(conf_key_at(n) == NULL, "conf_key_at past the end is NULL");
    for (size_t i = 0; i < n; i++) {
        const ConfKeyInfo *k = conf_key_at(i);
        char env[96];
        upper_env(k->name, env, sizeof(env));
        CHECK_STR(k->env, env, "%s: environment name is OCGATE_ + upper(name)", k->name);
        bool known = false;
        for (size_t t = 0; t < OC_ARRAY_LEN(types); t++)
            known |= strcmp(k->type, types[t]) == 0;
        CHECK(known, "%s: type '%s' is one of the documented types", k->name, k->type);
        size_t dl = strlen(k->doc);
        CHECK(dl > 10 && k->doc[dl - 1] == '.' && !strpbrk(k->doc, "|\n"),
              "%s: doc is one sentence ending in '.', without '|' or newline", k->name);
        CHECK(!k->required || !k->default_text[0], "%s: a required key has no default",
              k->name);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(conf_key_at(j)->name, k->name) != 0, "%s: name is unique", k->name);
        if (strcmp(k->type, "integer") && strcmp(k->type, "bytes") && strcmp(k->type, "seconds"))
            continue;
        /* The doc must state the range the code enforces: take "X to Y" from the message for
         * an invalid value and look for it in the doc. */
        char var[128], err[512], range[64] = "";
        Config c;
        snprintf(var, sizeof(var), "%s=x", k->env);
        int r = load_ex(NULL, true, OVER(var), &c, err, sizeof(err));
        const char *from = strstr(err, " from ");
        const char *to = from ? strstr(from + 6, " to ") : NULL;
        if (to)
            snprintf(range, sizeof(range), "%.*s to %.*s", (int)strcspn(from + 6, " "),
                     from + 6, (int)strcspn(to + 4, " ("), to + 4);
        CHECK(r == CONF_E_INVALID && range[0] && strstr(k->doc, range),
              "%s: doc states the enforced range '%s'", k->name, range);
    }
}

static void test_defaults(void)
{
    Config c;
    char err[512];
    int r = load(NULL, NULL, &c, err);
    CHECK_INT(r, 0, "required keys alone load (%s)", err);
    if (r)
        return;
    CHECK_STR(c.database_url, "postgresql://ocgate@localhost/ocgate", "database_url");
    CHECK(c.database_password_file == NULL, "database_password_file defaults to none");
    CHECK_INT(c.pool_size, 4, "pool_size default");
    CHECK_INT(c.db_timeout_ms, 5000, "db_timeout_ms default");
    CHECK_INT(c.ocid, 1001, "ocid");
    CHECK_STR(c.private_key_file, "/etc/ocgate/gateway.key", "private_key_file");
    CHECK_STR(c.public_url, "https://gw.example/opencharge", "public_url");
    CHECK_STR(c.name, "ocgate", "name default");
    CHECK_STR(c.listen, "127.0.0.1:8080", "listen default");
    CHECK(c.tls_cert_file == NULL && c.tls_key_file == NULL, "no TLS by default");
    CHECK_STR(c.base_path, "/opencharge", "base_path default");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long want = cores < 1 ? 1 : cores > 64 ? 64 : cores;
    CHECK_INT(c.threads, want, "threads 0 resolves to one per online core, at most 64");
    CHECK_INT(c.max_connections, 10000, "max_connections default");
    CHECK_INT(c.idle_timeout_s, 60, "idle_timeout default");
    CHECK_INT(c.body_limit, 64 * 1024, "body_limit default 64K");
    CHECK_INT(c.header_limit, 16 * 1024, "header_limit default 16K");
    CHECK_INT(c.rate_limit, 1000, "rate_limit default 1000");
    CHECK_INT(c.rate_limit_burst, 2000, "rate_limit_burst default 2000");
    CHECK_INT(c.n_currencies, 2, "two currencies");
    if (c.n_currencies == 2) {
        CHECK_STR(c.currencies[0], "USD", "first currency");
        CHECK_STR(c.currencies[1], "EUR", "second currency, order kept");
    }
    CHECK_INT(c.timestamp_window_s, 300, "timestamp_window default");
    CHECK_INT(c.proof_future_skew_s, 300, "proof_future_skew default");
    CHECK_INT(c.payment_lifetime_s, 3600, "payment_lifetime default");
    CHECK_INT(c.max_payment_lifetime_s, 30 * 86400, "max_payment_lifetime default 30d");
    CHECK_STR(c.log_level, "info", "log_level default");
    CHECK(c.worker, "worker on by default");
    static const unsigned schedule[] = { 5, 300, 1800, 7200, 18000, 36000, 36000 };
    CHECK_INT(c.n_delivery_schedule, 7, "delivery_schedule has 7 delays (8 attempts)");
    for (size_t i = 0; i < 7 && c.n_delivery_schedule == 7; i++)
        CHECK_INT(c.delivery_schedule_s[i], schedule[i], "delivery_schedule[%zu]", i);
    CHECK_INT(c.delivery_jitter_percent, 10, "delivery_jitter_percent default");
    CHECK_INT(c.delivery_timeout_ms, 10000, "delivery_timeout_ms default");
    CHECK_INT(c.delivery_connect_timeout_ms, 5000, "delivery_connect_timeout_ms default");
    CHECK_INT(c.delivery_max_response, 64 * 1024, "delivery_max_response default");
    CHECK_INT(c.delivery_lease_s, 60, "delivery_lease default");
    CHECK_INT(c.delivery_poll_ms, 500, "delivery_poll_ms default");
    CHECK_INT(c.delivery_batch, 64, "delivery_batch default");
    CHECK_INT(c.delivery_concurrency, 256, "delivery_concurrency default");
    CHECK_INT(c.delivery_per_merchant, 8, "delivery_per_merchant default");
    CHECK_INT(c.delivery_breaker_failures, 5, "delivery_breaker_failures default");
    CHECK_INT(c.delivery_breaker_cooldown_s, 30, "delivery_breaker_cooldown default");
    CHECK_INT(c.delivery_attempt_retention_s, 90 * 86400,
              "delivery_attempt_retention default (90 days)");
    CHECK(c.delivery_ca_file == NULL, "delivery_ca_file defaults to the system store");
    CHECK(!c.outbound_allow_loopback && !c.outbound_allow_private,
          "outbound loopback and private addresses refused by default");
    conf_deinit(&c);
    CHECK(c.database_url == NULL && c.n_currencies == 0 && c.pool_size == 0,
          "conf_deinit zeroes the config");
}

static void test_file_format(void)
{
    Config c;
    char err[512];
    const char *path = CONF_TEXT("\xef\xbb\xbf# a comment\n"
                                 "   # an indented comment\n"
                                 "\n"
                                 "   \t\n"
                                 "database_url = postgresql://ocgate@db/ocgate\n"
                                 "ocid=42\n"
                                 "  private_key_file   =\t/etc/ocgate/gw.key   \n"
                                 "public_url = \"https://gw.example/opencharge\"\n"
                                 "currencies = \"USD , EUR,USDT\"\n"
                                 "name = \"  spaced # name  \"\n"
                                 "base_path = \"\"\n"
                                 "pool_size = 8\r\n"
                                 "tls_cert_file = /etc/ocgate/cert.pem\n"
                                 "tls_key_file = /etc/ocgate/key.pem");
    int r = load_ex(path, false, NULL, &c, err, sizeof(err));
    CHECK_INT(r, 0, "file with comments, quotes, blanks, BOM, CRLF and no final newline (%s)",
              err);
    if (r)
        return;
    CHECK_STR(c.database_url, "postgresql://ocgate@db/ocgate", "unquoted value");
    CHECK_INT(c.ocid, 42, "no spaces around '='");
    CHECK_STR(c.private_key_file, "/etc/ocgate/gw.key", "surrounding whitespace trimmed");
    CHECK_STR(c.public_url, "https://gw.example/opencharge", "quotes removed");
    CHECK_INT(c.n_currencies, 3, "list of three");
    if (c.n_currencies == 3)
        CHECK(!strcmp(c.currencies[0], "USD") && !strcmp(c.currencies[1], "EUR")
                  && !strcmp(c.currencies[2], "USDT"),
              "list entries trimmed");
    CHECK_STR(c.name, "  spaced # name  ", "quoted value keeps its spaces and '#'");
    CHECK_STR(c.base_path, "", "empty quoted base_path = routes at the root");
    CHECK_INT(c.pool_size, 8, "CRLF line");
    CHECK_STR(c.tls_key_file, "/etc/ocgate/key.pem", "last line without newline");
    conf_deinit(&c);

    path = CONF_TEXT("pool_size = 8\nidle_timeout = 2m\n");
    r = load(path, OVER("OCGATE_POOL_SIZE=9"), &c, err);
    CHECK_INT(r, 0, "file and environment together");
    if (!r) {
        CHECK_INT(c.pool_size, 9, "environment wins over the file");
        CHECK_INT(c.idle_timeout_s, 120, "file value kept where the environment is silent");
        conf_deinit(&c);
    }
    path = CONF_TEXT("tls_cert_file = /c.pem\ntls_key_file = /k.pem\n");
    r = load(path, OVER("OCGATE_TLS_CERT_FILE=", "OCGATE_TLS_KEY_FILE="), &c, err);
    CHECK_INT(r, 0, "an empty variable unsets an optional path set in the file");
    if (!r) {
        CHECK(c.tls_cert_file == NULL && c.tls_key_file == NULL, "TLS unset by environment");
        conf_deinit(&c);
    }

    static const struct {
        const char *text;
        size_t len; /* 0 = strlen(text); set where the text holds a NUL */
        int code;
        const char *needle; /* must appear in the message */
    } bad[] = {
        { "# ok\njust some words\n", 0, CONF_E_FILE, "ocgate.conf:2" },
        { "= 5\n", 0, CONF_E_FILE, "ocgate.conf:1" },
        { "pool size = 5\n", 0, CONF_E_FILE, "ocgate.conf:1" },
        { "name = \"unterminated\n", 0, CONF_E_FILE, "ocgate.conf:1" },
        { "name = \"\n", 0, CONF_E_FILE, "ocgate.conf:1" },
        { "pool_size = 4\npool_size = 5\n", 0, CONF_E_FILE, "pool_size" },
        { "\n\nfrobnicate = 1\n", 0, CONF_E_UNKNOWN_KEY, "frobnicate" },
        { "\n\nfrobnicate = 1\n", 0, CONF_E_UNKNOWN_KEY, "ocgate.conf:3" },
        { "POOL_SIZE = 4\n", 0, CONF_E_UNKNOWN_KEY, "POOL_SIZE" },
        { "pool_size = 4 # inline comments are not comments\n", 0, CONF_E_INVALID, "pool_size" },
        { "\npool_size = 99\n", 0, CONF_E_INVALID, "ocgate.conf:2: pool_size" },
        { "name = caf\xc3\n", 0, CONF_E_FILE, "ocgate.conf:1" },
        { "name = a\0b\n", sizeof("name = a\0b\n") - 1, CONF_E_FILE, "ocgate.conf:1" },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(bad); i++) {
        path = write_conf(bad[i].text, bad[i].len ? bad[i].len : strlen(bad[i].text));
        memset(err, 0, sizeof(err));
        r = load(path, NULL, &c, err);
        CHECK_INT(r, bad[i].code, "bad file #%zu refused with the right code", i);
        CHECK(strstr(err, bad[i].needle) != NULL, "bad file #%zu: message names '%s' (%s)", i,
              bad[i].needle, err);
        if (!r)
            conf_deinit(&c);
    }

    char missing[300];
    snprintf(missing, sizeof(missing), "%s/does-not-exist.conf", tmpdir);
    r = load(missing, NULL, &c, err);
    CHECK_INT(r, CONF_E_FILE, "a config file that does not exist");
    CHECK(strstr(err, "does-not-exist.conf") != NULL, "message names the path (%s)", err);
    r = load(tmpdir, NULL, &c, err);
    CHECK_INT(r, CONF_E_FILE, "a directory as config file (%s)", err);
    r = load("/dev/zero", NULL, &c, err);
    CHECK_INT(r, CONF_E_FILE, "an endless config file stops at the size limit (%s)", err);
}

static void test_environment(void)
{
    Config c;
    char err[512];
    int r = load(NULL, OVER("OCGATE_FROBNICATE=1"), &c, err);
    CHECK_INT(r, CONF_E_UNKNOWN_KEY, "unknown OCGATE_ variable refused");
    CHECK(strstr(err, "OCGATE_FROBNICATE") != NULL, "message names it (%s)", err);
    r = load(NULL, OVER("OCGATE_pool_size=1"), &c, err);
    CHECK_INT(r, CONF_E_UNKNOWN_KEY, "environment names are upper-case");
    r = load(NULL, OVER("OCGATE_POOL_SIZE=2", "OCGATE_POOL_SIZE=3"), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "a variable given twice is refused");
    CHECK(strstr(err, "OCGATE_POOL_SIZE") != NULL, "and named (%s)", err);
    r = load(NULL, OVER("OCGATE_POOL_SIZE= 4"), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "environment values are taken literally (not trimmed)");
    CHECK(strstr(err, "OCGATE_POOL_SIZE") && strstr(err, "pool_size"),
          "env error names variable and key (%s)", err);
}

/* Printable form of a test value for a TAP description: a raw newline would break the TAP
 * line, so control and non-ASCII bytes are shown as \xNN. Two rotating buffers. */
static const char *shown(const char *s)
{
    static char bufs[2][256];
    static int which;
    char *out = bufs[which ^= 1];
    size_t n = 0;
    for (; *s && n + 5 < sizeof(bufs[0]); s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f)
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, sizeof(bufs[0]) - n, "\\x%02x", c);
    }
    out[n] = '\0';
    return out;
}

typedef struct Case {
    const char *key;
    const char *value;
    bool ok;
} Case;

static const Case cases[] = {
    { "pool_size", "1", true },
    { "pool_size", "64", true },
    { "pool_size", "0", false },
    { "pool_size", "65", false },
    { "pool_size", "-1", false },
    { "pool_size", "+4", false },
    { "pool_size", "4x", false },
    { "pool_size", "4K", false },
    { "pool_size", "", false },
    { "db_timeout_ms", "100", true },
    { "db_timeout_ms", "60000", true },
    { "db_timeout_ms", "99", false },
    { "db_timeout_ms", "60001", false },
    { "db_timeout_ms", "5s", false },
    { "ocid", "0", true },
    { "ocid", "9007199254740991", true },
    { "ocid", "9007199254740992", false },
    { "ocid", "99999999999999999999999999", false },
    { "ocid", "-5", false },
    { "ocid", "1e3", false },
    { "threads", "0", true },
    { "threads", "64", true },
    { "threads", "65", false },
    { "max_connections", "1", true },
    { "max_connections", "1000000", true },
    { "max_connections", "0", false },
    { "max_connections", "1000001", false },
    { "idle_timeout", "1", true },
    { "idle_timeout", "3600s", true },
    { "idle_timeout", "60m", true },
    { "idle_timeout", "1h", true },
    { "idle_timeout", "0", false },
    { "idle_timeout", "61m", false },
    { "idle_timeout", "1d", false },
    { "idle_timeout", "5 m", false },
    { "idle_timeout", "5ms", false },
    { "idle_timeout", "5M", false },
    { "idle_timeout", "m", false },
    { "body_limit", "1K", true },
    { "body_limit", "1024", true },
    { "body_limit", "16M", true },
    { "body_limit", "16m", true },
    { "body_limit", "1023", false },
    { "body_limit", "17M", false },
    { "body_limit", "16777217", false },
    { "body_limit", "1G", false },
    { "body_limit", "64KB", false },
    { "body_limit", "64 K", false },
    { "rate_limit", "0", true },
    { "rate_limit", "1000001", false },
    { "rate_limit_burst", "0", false },
    { "header_limit", "1M", true },
    { "header_limit", "1025K", false },
    { "timestamp_window", "1", true },
    { "timestamp_window", "1h", true },
    { "timestamp_window", "0", false },
    { "timestamp_window", "2h", false },
    { "proof_future_skew", "0", true },
    { "proof_future_skew", "3600", true },
    { "proof_future_skew", "3601", false },
    { "payment_lifetime", "60", true },
    { "payment_lifetime", "1m", true },
    { "payment_lifetime", "30d", true },
    { "payment_lifetime", "59", false },
    { "max_payment_lifetime", "365d", true },
    { "max_payment_lifetime", "1h", true },
    { "max_payment_lifetime", "366d", false },
    { "max_payment_lifetime", "59s", false },
    { "name", "x", true },
    { "name", "Gateway \xc3\x9c" "ber", true },
    { "name", "", false },
    { "name", "tab\there", false },
    { "name", "bad\xff" "utf8", false },
    { "name", "0123456789012345678901234567890123456789012345678901234567890123456789"
              "0123456789012345678901234567890123456789012345678901234567890", false },
    { "public_url", "http://gw", true },
    { "public_url", "https://gw.example:8443/oc/v1", true },
    { "public_url", "https://gw.example/", false },
    { "public_url", "ftp://gw.example", false },
    { "public_url", "https://", false },
    { "public_url", "https:///path", false },
    { "public_url", "https://gw.example/a b", false },
    { "public_url", "https://gw.example/x?y=1", false },
    { "public_url", "https://gw.example/x#frag", false },
    { "public_url", "https://user:s3cretpw@gw.example", false },
    { "public_url", "gw.example", false },
    { "listen", "0.0.0.0:0", true },
    { "listen", "[::1]:8443", true },
    { "listen", "[::]:80", true },
    { "listen", "localhost:65535", true },
    { "listen", "8080", false },
    { "listen", ":8080", false },
    { "listen", "localhost:", false },
    { "listen", "localhost:65536", false },
    { "listen", "localhost:-1", false },
    { "listen", "localhost:80x", false },
    { "listen", "::1:80", false },
    { "listen", "[::1]8080", false },
    { "listen", "[zz::1]:80", false },
    { "listen", "[]:80", false },
    { "listen", "under_score:80", false },
    { "base_path", "", true },
    { "base_path", "/v1/opencharge", true },
    { "base_path", "/a-b_c.d", true },
    { "base_path", "/", false },
    { "base_path", "/opencharge/", false },
    { "base_path", "opencharge", false },
    { "base_path", "/a b", false },
    { "base_path", "/a//b", false },
    { "base_path", "/a/../b", false },
    { "base_path", "/./a", false },
    { "base_path", "/a?x=1", false },
    { "base_path", "/caf\xc3\xa9", false },
    { "log_level", "error", true },
    { "log_level", "warn", true },
    { "log_level", "debug", true },
    { "log_level", "trace", false },
    { "log_level", "INFO", false },
    { "log_level", "", false },
    { "currencies", "USD", true },
    { "currencies", "USDT,EUR, GBP ", true },
    { "currencies", "ABCDEFGHIJ,XB3", true },
    { "currencies", "AB", false },
    { "currencies", "ABCDEFGHIJK", false },
    { "currencies", "usd", false },
    { "currencies", "US-D", false },
    { "currencies", "USD,,EUR", false },
    { "currencies", "USD,", false },
    { "currencies", "USD,EUR,USD", false },
    { "private_key_file", "/etc/ocgate/gateway.key", true },
    { "private_key_file", "relative/gateway.key", true },
    { "private_key_file", "/etc/new\nline", false },
    { "database_password_file", "/run/secrets/pg", true },
    { "database_url", "postgresql://ocgate@db.internal:5432/ocgate?sslmode=verify-full", true },
    { "database_url", "postgres://db/ocgate", true },
    { "database_url", "host=db user=ocgate dbname=ocgate", true },
    { "database_url", "host=db application_name='has password=inside'", true },
    { "database_url", "host=db passfile=/run/secrets/pgpass", true },
    { "database_url", "host=db 'unterminated", false },
    { "database_url", "host='db", false },
    { "database_url", "justaword", false },
    { "worker", "false", true },
    { "worker", "yes", true },
    { "worker", "0", true },
    { "worker", "True", false },
    { "worker", "maybe", false },
    { "worker", "", false },
    { "outbound_allow_loopback", "on", true },
    { "outbound_allow_private", "nope", false },
    { "delivery_schedule", "1s,1s,1s", true },
    { "delivery_schedule", " 5s , 1m,10h ", true },
    { "delivery_schedule", "7d", true },
    { "delivery_schedule", "", false },
    { "delivery_schedule", "5s,,5m", false },
    { "delivery_schedule", "5s,", false },
    { "delivery_schedule", "0s", false },
    { "delivery_schedule", "8d", false },
    { "delivery_schedule", "5x", false },
    { "delivery_schedule", "-5s", false },
    { "delivery_schedule", "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
      false },
    { "delivery_ca_file", "/etc/ocgate/merchants-ca.pem", true },
    { "delivery_jitter_percent", "51", false },
    { "delivery_poll_ms", "1001", false },
    { "delivery_attempt_retention", "86400", true },
    { "delivery_attempt_retention", "23h", false },
    { "delivery_attempt_retention", "3651d", false },
    { "delivery_attempt_retention", "0", false },
};

static void test_values(void)
{
    for (size_t i = 0; i < OC_ARRAY_LEN(cases); i++) {
        const Case *t = &cases[i];
        char var[256], env[128], err[512];
        upper_env(t->key, env, sizeof(env));
        snprintf(var, sizeof(var), "%s=%s", env, t->value);
        Config c;
        memset(err, 0, sizeof(err));
        int r = load(NULL, OVER(var), &c, err);
        const char *v = shown(t->value);
        if (t->ok) {
            CHECK_INT(r, 0, "%s = '%s' accepted (%s)", t->key, v, err);
            if (!r)
                conf_deinit(&c);
            continue;
        }
        CHECK_INT(r, CONF_E_INVALID, "%s = '%s' refused", t->key, v);
        CHECK(strstr(err, t->key) != NULL, "%s = '%s': message names the key (%s)", t->key, v,
              err);
        /* Short values (digits) may occur in a range by chance, and a bare "https://" is in
         * public_url's own explanation; everything else must not appear in the message. */
        if (strlen(t->value) >= 4 && strcmp(t->value, "https://") != 0)
            CHECK(strstr(err, t->value) == NULL, "%s = '%s': message does not echo the value",
                  t->key, v);
        if (!r)
            conf_deinit(&c);
    }

    /* The same refusals through the file name the file line as well. */
    Config c;
    char err[512];
    const char *path = CONF_TEXT("# limits\nbody_limit = 17M\n");
    int r = load(path, NULL, &c, err);
    CHECK_INT(r, CONF_E_INVALID, "invalid value in the file");
    CHECK(strstr(err, "ocgate.conf:2: body_limit") != NULL, "names file:line and key (%s)",
          err);
    CHECK(strstr(err, "16M") != NULL, "and the allowed range (%s)", err);

    /* 32 currencies fit, 33 do not. */
    char list[512] = "OCGATE_CURRENCIES=";
    for (int i = 0; i < 33; i++) {
        char code[8];
        snprintf(code, sizeof(code), "%sC%02d", i ? "," : "", i);
        strcat(list, code);
        if (i == 31) {
            r = load(NULL, OVER(list), &c, err);
            CHECK_INT(r, 0, "32 currencies accepted (%s)", err);
            if (!r) {
                CHECK_INT(c.n_currencies, 32, "all 32 kept");
                CHECK_STR(c.currencies[31], "C31", "the last one");
                conf_deinit(&c);
            }
        }
    }
    r = load(NULL, OVER(list), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "33 currencies refused");
    CHECK(strstr(err, "currencies") != NULL, "message names currencies (%s)", err);
}

static void test_suffixes(void)
{
    static const struct {
        const char *var;
        size_t off;
        uint64_t want;
        int width; /* sizeof the field */
    } t[] = {
        { "OCGATE_BODY_LIMIT=64K", offsetof(Config, body_limit), 65536, sizeof(size_t) },
        { "OCGATE_BODY_LIMIT=1M", offsetof(Config, body_limit), 1048576, sizeof(size_t) },
        { "OCGATE_BODY_LIMIT=2048", offsetof(Config, body_limit), 2048, sizeof(size_t) },
        { "OCGATE_HEADER_LIMIT=8k", offsetof(Config, header_limit), 8192, sizeof(size_t) },
        { "OCGATE_IDLE_TIMEOUT=5m", offsetof(Config, idle_timeout_s), 300, sizeof(unsigned) },
        { "OCGATE_IDLE_TIMEOUT=45s", offsetof(Config, idle_timeout_s), 45, sizeof(unsigned) },
        { "OCGATE_TIMESTAMP_WINDOW=1h", offsetof(Config, timestamp_window_s), 3600,
          sizeof(unsigned) },
        { "OCGATE_MAX_PAYMENT_LIFETIME=2d", offsetof(Config, max_payment_lifetime_s), 172800,
          sizeof(unsigned) },
        { "OCGATE_MAX_PAYMENT_LIFETIME=365d", offsetof(Config, max_payment_lifetime_s),
          31536000, sizeof(unsigned) },
        { "OCGATE_PAYMENT_LIFETIME=90", offsetof(Config, payment_lifetime_s), 90,
          sizeof(unsigned) },
        { "OCGATE_DELIVERY_ATTEMPT_RETENTION=1d", offsetof(Config, delivery_attempt_retention_s),
          86400, sizeof(unsigned) },
        { "OCGATE_DELIVERY_ATTEMPT_RETENTION=3650d",
          offsetof(Config, delivery_attempt_retention_s), 315360000, sizeof(unsigned) },
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(t); i++) {
        Config c;
        char err[512];
        int r = load(NULL, OVER(t[i].var), &c, err);
        CHECK_INT(r, 0, "%s loads (%s)", t[i].var, err);
        if (r)
            continue;
        const char *f = (const char *)&c + t[i].off;
        uint64_t got = t[i].width == sizeof(size_t) ? *(const size_t *)(const void *)f
                                                    : *(const unsigned *)(const void *)f;
        CHECK_INT(got, t[i].want, "%s = %llu", t[i].var, (unsigned long long)t[i].want);
        conf_deinit(&c);
    }
}

static void test_cross_checks(void)
{
    Config c;
    char err[512];
    size_t n = conf_key_count();
    for (size_t i = 0; i < n; i++) {
        const ConfKeyInfo *k = conf_key_at(i);
        if (!k->required)
            continue;
        int r = load(NULL, OVER(k->env), &c, err);
        CHECK_INT(r, CONF_E_MISSING, "missing %s refused", k->name);
        CHECK(strstr(err, k->name) != NULL, "message names %s (%s)", k->name, err);
        char empty[96];
        snprintf(empty, sizeof(empty), "%s=", k->env);
        if (strcmp(k->type, "path") == 0 || strcmp(k->type, "url") == 0
            || strcmp(k->type, "list") == 0) {
            r = load(NULL, OVER(empty), &c, err);
            CHECK_INT(r, CONF_E_MISSING, "empty %s counts as missing", k->name);
        }
    }
    int r = load(NULL, OVER("OCGATE_CURRENCIES= "), &c, err);
    CHECK_INT(r, CONF_E_MISSING, "blank currency list counts as missing");

    r = load(NULL, OVER("OCGATE_TLS_CERT_FILE=/etc/ocgate/cert.pem"), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "tls_cert_file without tls_key_file refused");
    CHECK(strstr(err, "tls_cert_file") && strstr(err, "tls_key_file"), "names both (%s)", err);
    r = load(NULL, OVER("OCGATE_TLS_KEY_FILE=/etc/ocgate/key.pem"), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "tls_key_file without tls_cert_file refused");
    CHECK(strstr(err, "tls_cert_file") && strstr(err, "tls_key_file"), "names both (%s)", err);
    r = load(NULL, OVER("OCGATE_TLS_KEY_FILE=/k.pem", "OCGATE_TLS_CERT_FILE=/c.pem"), &c, err);
    CHECK_INT(r, 0, "both TLS files accepted");
    if (!r) {
        CHECK_STR(c.tls_cert_file, "/c.pem", "tls_cert_file kept");
        conf_deinit(&c);
    }

    r = load(NULL, OVER("OCGATE_PAYMENT_LIFETIME=31d"), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "payment_lifetime above the default max refused");
    CHECK(strstr(err, "payment_lifetime") && strstr(err, "max_payment_lifetime"),
          "names both keys (%s)", err);
    r = load(NULL, OVER("OCGATE_PAYMENT_LIFETIME=2h", "OCGATE_MAX_PAYMENT_LIFETIME=1h"), &c,
             err);
    CHECK_INT(r, CONF_E_INVALID, "payment_lifetime > max_payment_lifetime refused");
    r = load(NULL, OVER("OCGATE_PAYMENT_LIFETIME=1h", "OCGATE_MAX_PAYMENT_LIFETIME=60m"), &c,
             err);
    CHECK_INT(r, 0, "payment_lifetime == max_payment_lifetime accepted");
    if (!r)
        conf_deinit(&c);

    r = load(NULL, OVER("OCGATE_DELIVERY_LEASE=10", "OCGATE_DELIVERY_TIMEOUT_MS=10000"), &c,
             err);
    CHECK_INT(r, CONF_E_INVALID, "delivery_lease not longer than delivery_timeout_ms refused");
    CHECK(strstr(err, "delivery_lease") && strstr(err, "delivery_timeout_ms"),
          "names both keys (%s)", err);
    r = load(NULL, OVER("OCGATE_DELIVERY_LEASE=2", "OCGATE_DELIVERY_TIMEOUT_MS=1999",
                        "OCGATE_DELIVERY_CONNECT_TIMEOUT_MS=1000"), &c, err);
    CHECK_INT(r, 0, "delivery_lease just above delivery_timeout_ms accepted (%s)", err);
    if (!r)
        conf_deinit(&c);
    r = load(NULL, OVER("OCGATE_DELIVERY_TIMEOUT_MS=3000",
                        "OCGATE_DELIVERY_CONNECT_TIMEOUT_MS=4000"), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "connect timeout above the attempt timeout refused");
    CHECK(strstr(err, "delivery_connect_timeout_ms") != NULL, "names it (%s)", err);

    r = load(NULL, OVER("OCGATE_DELIVERY_SCHEDULE=1s, 2m,1h,1h,7d", "OCGATE_WORKER=off"), &c,
             err);
    CHECK_INT(r, 0, "a schedule with repeats loads (%s)", err);
    if (!r) {
        CHECK(c.n_delivery_schedule == 5 && c.delivery_schedule_s[0] == 1 &&
                  c.delivery_schedule_s[1] == 120 && c.delivery_schedule_s[2] == 3600 &&
                  c.delivery_schedule_s[3] == 3600 && c.delivery_schedule_s[4] == 7 * 86400,
              "schedule parsed in order with units");
        CHECK(!c.worker, "worker = off");
        conf_deinit(&c);
    }
}

static void test_database_password(void)
{
    static const char *const urls[] = {
        "postgresql://ocgate:s3cretpw@db/ocgate",
        "postgres://ocgate:s3cretpw@db:5432/ocgate",
        "postgresql://ocgate:@db/ocgate",
        "postgresql://db/ocgate?password=s3cretpw",
        "postgresql://db/ocgate?sslmode=require&pass%77ord=s3cretpw",
        "postgresql://db/ocgate?PASSWORD=s3cretpw",
        "host=db user=ocgate password=s3cretpw",
        "host=db password = s3cretpw dbname=ocgate",
        "password='s3cretpw with space' host=db",
        "host=db Password=s3cretpw",
    };
    for (size_t i = 0; i < OC_ARRAY_LEN(urls); i++) {
        char var[256], err[512];
        Config c;
        snprintf(var, sizeof(var), "OCGATE_DATABASE_URL=%s", urls[i]);
        int r = load(NULL, OVER(var), &c, err);
        CHECK_INT(r, CONF_E_INVALID, "password in database_url refused: %s", urls[i]);
        CHECK(strstr(err, "database_url must not contain a password; use "
                          "database_password_file") != NULL,
              "message says why and what to use (%s)", err);
        CHECK(!strstr(err, "s3cretpw") && !strstr(err, "db/") && !strstr(err, "host="),
              "message echoes neither the password nor the URL");
        if (!r)
            conf_deinit(&c);

        /* and from a file: the line is named, the value still not echoed */
        char text[300];
        int len = snprintf(text, sizeof(text), "database_url = %s\n", urls[i]);
        const char *path = write_conf(text, (size_t)len);
        r = load_ex(path, true, OVER("OCGATE_DATABASE_URL"), &c, err, sizeof(err));
        CHECK_INT(r, CONF_E_INVALID, "password in database_url in the file refused");
        CHECK(strstr(err, "ocgate.conf:1: database_url") && !strstr(err, "s3cretpw"),
              "file message names the line, not the password (%s)", err);
        if (!r)
            conf_deinit(&c);
    }
}

static void test_failure_contract(void)
{
    Config c, poison;
    char err[512];
    memset(&poison, 0xa5, sizeof(poison));
    memcpy(&c, &poison, sizeof(c));
    int r = load(NULL, OVER("OCGATE_POOL_SIZE=0"), &c, err);
    CHECK_INT(r, CONF_E_INVALID, "refused");
    CHECK(memcmp(&c, &poison, sizeof(c)) == 0, "a failed load leaves *out untouched");

    r = load_ex(NULL, true, OVER("OCGATE_POOL_SIZE=0"), &c, NULL, 0);
    CHECK_INT(r, CONF_E_INVALID, "err may be NULL");
    char tiny[8];
    r = load_ex(NULL, true, OVER("OCGATE_POOL_SIZE=0"), &c, tiny, sizeof(tiny));
    CHECK(r == CONF_E_INVALID && strlen(tiny) == 7, "a short err buffer is truncated");
    r = load_ex(NULL, true, NULL, &c, tiny, sizeof(tiny));
    CHECK(r == 0 && tiny[0] == '\0', "success clears err");
    if (!r)
        conf_deinit(&c);

    Config zero;
    memset(&zero, 0, sizeof(zero));
    conf_deinit(&zero);
    conf_deinit(&zero);
    conf_deinit(NULL);
    CHECK(1, "conf_deinit accepts a zeroed config, twice, and NULL");
}

/* Fails the Nth allocation from now on (then every later one, as real exhaustion would). */
static long alloc_budget = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void test_alloc_failures(void)
{
    const char *path = CONF_TEXT("name = test gateway\ncurrencies = USD,EUR,GBP\n"
                                 "log_level = debug\nlisten = [::1]:0\n");
    oc_set_alloc_funcs(failing_malloc, free);
    int r = -ENOMEM;
    long n;
    bool all_enomem = true;
    for (n = 0; n < 1000 && r == -ENOMEM; n++) {
        Config c;
        char err[512];
        alloc_budget = n;
        r = load(path, OVER("OCGATE_DATABASE_PASSWORD_FILE=/run/pg"), &c, err);
        if (r == -ENOMEM)
            all_enomem &= strcmp(err, "out of memory") == 0;
        else if (r == 0)
            conf_deinit(&c);
        else
            all_enomem = false;
    }
    alloc_budget = -1;
    oc_set_alloc_funcs(NULL, NULL);
    CHECK(n > 5 && r == 0, "loads once enough allocations succeed (after %ld failures)", n - 1);
    CHECK(all_enomem, "every earlier attempt failed with -ENOMEM and 'out of memory'");
}

static void test_example(int argc, char **argv)
{
    if (argc < 2) {
        CHECK(0, "the example config path is given as argv[1]");
        return;
    }
    Config c;
    char err[512];
    int r = load_ex(argv[1], false, NULL, &c, err, sizeof(err));
    CHECK_INT(r, 0, "%s loads with an empty environment (%s)", argv[1], err);
    if (!r) {
        CHECK(c.database_url && c.private_key_file && c.public_url && c.n_currencies > 0,
              "the example sets every required key");
        conf_deinit(&c);
    }
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test-conf-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_key_table();
    test_defaults();
    test_file_format();
    test_environment();
    test_values();
    test_suffixes();
    test_cross_checks();
    test_database_password();
    test_failure_contract();
    test_alloc_failures();
    test_example(argc, argv);

    char path[300];
    snprintf(path, sizeof(path), "%s/ocgate.conf", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return tl_done();
}
