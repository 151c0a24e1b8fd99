/* Helpers shared by the operator commands (ops.h). */
#include "cli/ops.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "admin/admin.h"
#include "admin/remote.h"
#include "cli/db.h"
#include "util/hex.h"
#include "cli/cli.h"
#include "proto/sigstr.h"

int ops_usage_error(const char *prog, const char *what)
{
    fprintf(stderr, "%s: %s\n", prog, what);
    return CLI_EXIT_USAGE;
}

int ops_admin_failure(const char *prog, int code, const char *err)
{
    fprintf(stderr, "%s: %s\n", prog, err);
    return code == ADMIN_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
}

const char *ops_command(int argc, char **argv, void (*usage)(FILE *), int *status)
{
    if (argc < 2) {
        usage(stderr);
        *status = CLI_EXIT_USAGE;
        return NULL;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
        usage(stdout);
        *status = CLI_EXIT_OK;
        return NULL;
    }
    return cmd;
}

int ops_unknown_command(const char *prog, const char *cmd, void (*usage)(FILE *))
{
    fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}

int ops_parse_ocid(const char *s, int64_t *out)
{
    int64_t v;
    if (sigstr_parse_decimal(s, strlen(s), 16, &v) != 0 || v > 9007199254740991LL)
        return -1;
    *out = v;
    return 0;
}

int ops_parse_limit(const char *s, int *out)
{
    int64_t v;
    if (sigstr_parse_decimal(s, strlen(s), 5, &v) != 0 || v < 1 || v > ADMIN_LIST_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

const char *ops_time_param(const char *s, char *buf, size_t buf_len)
{
    size_t len = strlen(s);
    if (len == 0 || len > 64)
        return NULL;
    int64_t secs;
    if (sigstr_parse_decimal(s, len, 12, &secs) == 0) {
        time_t t = (time_t)secs;
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, buf_len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            return NULL;
        return buf;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return NULL;
    return s;
}

int ops_print_json(const char *prog, const json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!text) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return CLI_EXIT_FAILURE;
    }
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

int ops_print_json_new(const char *prog, json_t *doc)
{
    int status = CLI_EXIT_FAILURE;
    if (doc)
        status = ops_print_json(prog, doc);
    else
        fprintf(stderr, "%s: out of memory\n", prog);
    json_decref(doc);
    return status;
}

int ops_output(const char *prog, const json_t *doc, int json, void (*print)(const json_t *))
{
    if (json)
        return ops_print_json(prog, doc);
    print(doc);
    return CLI_EXIT_OK;
}

const char *ops_cell(const json_t *obj, const char *key, char *buf, size_t buf_len)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s), i;
        for (i = 0; i < n && i + 1 < buf_len; i++)
            buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        buf[i] = '\0';
        if (i < n && buf_len > 4) {
            size_t at = buf_len - 4;   /* cut at a UTF-8 character boundary */
            while (at > 0 && ((unsigned char)buf[at] & 0xC0) == 0x80)
                at--;
            memcpy(buf + at, "...", 4);
        }
    } else if (json_is_integer(v)) {
        snprintf(buf, buf_len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(buf, buf_len, "%s", json_is_true(v) ? "yes" : "no");
    } else {
        snprintf(buf, buf_len, "-");
    }
    return buf;
}

const char *ops_time_cell(const json_t *obj, const char *key, char *buf, size_t buf_len)
{
    const json_t *v = json_object_get(obj, key);
    struct tm tm;
    time_t t = json_is_integer(v) ? (time_t)json_integer_value(v) : 0;
    if (!json_is_integer(v) || !gmtime_r(&t, &tm) ||
        strftime(buf, buf_len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(buf, buf_len, "-");
    return buf;
}

void ops_print_next(const json_t *page, const char *command)
{
    const char *next = json_string_value(json_object_get(page, "next_cursor"));
    if (next)
        printf("(more: %s --cursor %s)\n", command, next);
}

void ops_os_actor(char *buf, size_t buf_len)
{
    uid_t uid = geteuid();
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name && *pw->pw_name && strlen(pw->pw_name) < buf_len)
        snprintf(buf, buf_len, "%s", pw->pw_name);
    else
        snprintf(buf, buf_len, "uid:%lu", (unsigned long)uid);
}

static int take_option(const char *name, int *argc, char **argv, int i, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[i], name, n) != 0)
        return 0;
    int used;
    if (argv[i][n] == '=') {
        *value = argv[i] + n + 1;
        used = 1;
    } else if (argv[i][n] == '\0' && i + 1 < *argc) {
        *value = argv[i + 1];
        used = 2;
    } else {
        return 0;
    }
    for (int k = i; k + used <= *argc; k++)
        argv[k] = argv[k + used];
    *argc -= used;
    return 1;
}

/* Reads the client secret file into out (wiped on failure); 0 or a negative errno, -ENODATA
 * for an empty file. */
static int read_secret(const char *path, char *out, size_t out_len)
{
    int e = cli_read_password_file(path, out, out_len);
    if (e == 0 && !out[0])
        e = -ENODATA;
    return e;
}

static const char *secret_error(int e)
{
    return e == -EACCES    ? "it is readable by group or others; refusing it (chmod 600)"
           : e == -ENODATA ? "it is empty"
                           : strerror(-e);
}

int ops_remote_take(const char *prog, int *argc, char **argv, OpsRemote *r)
{
    memset(r, 0, sizeof(*r));
    for (int i = 1; i < *argc;) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (take_option("--admin-url", argc, argv, i, &r->url) ||
            take_option("--client-secret-file", argc, argv, i, &r->secret_file) ||
            take_option("--client", argc, argv, i, &r->client))
            continue;
        i++;
    }
    if (!r->url && !r->client && !r->secret_file)
        return -1;
    if (!r->url || !r->client || !r->secret_file)
        return ops_usage_error(prog, "remote mode needs --admin-url, --client and "
                               "--client-secret-file together");
    if (!admin_client_id_valid(r->client))
        return ops_usage_error(prog, "--client must be a client id (ocgc_ and 24 hex digits)");
    char secret[256];
    int e = read_secret(r->secret_file, secret, sizeof(secret));
    OPENSSL_cleanse(secret, sizeof(secret));
    if (e != 0) {
        fprintf(stderr, "%s: cannot use the client secret file %s: %s\n", prog, r->secret_file,
                secret_error(e));
        return CLI_EXIT_USAGE;
    }
    r->on = 1;
    return -1;
}

void ops_remote_deinit(OpsRemote *r)
{
    memset(r, 0, sizeof(*r));
}

int ops_url_append(char *out, size_t out_len, const char *value)
{
    static const char hexdig[] = "0123456789ABCDEF";
    size_t used = strlen(out);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
                    *p == '~';
        if (used + (plain ? 1 : 3) >= out_len)
            return -1;
        if (plain) {
            out[used++] = (char)*p;
        } else {
            out[used++] = '%';
            out[used++] = hexdig[*p >> 4];
            out[used++] = hexdig[*p & 15];
        }
    }
    out[used] = '\0';
    return 0;
}

int ops_query_add(char *target, size_t target_len, const char *key, const char *value)
{
    if (!value)
        return 0;
    size_t used = strlen(target);
    int n = snprintf(target + used, target_len - used, "%c%s=",
                     strchr(target, '?') ? '&' : '?', key);
    if (n < 0 || (size_t)n >= target_len - used)
        return -1;
    return ops_url_append(target, target_len, value);
}

int ops_remote_call(const OpsRemote *r, const char *method, const char *target, const char *body,
                    json_t **out, char *err, size_t err_len)
{
    char key[33];
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        snprintf(err, err_len, "no random bytes for the Idempotency-Key");
        return ADMIN_E_DB;
    }
    hex_encode(rnd, sizeof(rnd), key);
    char secret[256];
    int e = read_secret(r->secret_file, secret, sizeof(secret));
    if (e != 0) {
        snprintf(err, err_len, "cannot use the client secret file %s: %s", r->secret_file,
                 secret_error(e));
        return ADMIN_E_DB;
    }
    AdminRemoteRequest rq = { .base_url = r->url, .client = r->client, .secret = secret,
                              .method = method, .target = target, .body = body,
                              .idempotency_key = strcmp(method, "POST") == 0 ? key : NULL };
    int status = 0;
    char *text = NULL;
    size_t len = 0;
    e = admin_remote_call(&rq, &status, &text, &len, err, err_len);
    OPENSSL_cleanse(secret, sizeof(secret));
    if (e != 0)
        return ADMIN_E_DB;
    json_t *doc = json_loadb(text, len, 0, NULL);
    free(text);
    if (!doc) {
        snprintf(err, err_len, "the admin API answered %d with a body that is not JSON", status);
        return ADMIN_E_DB;
    }
    if (status >= 200 && status < 300) {
        *out = doc;
        return 0;
    }
    const json_t *error = json_object_get(doc, "error");
    const char *code = json_string_value(json_object_get(error, "code"));
    const char *msg = json_string_value(json_object_get(error, "message"));
    if (json_is_string(json_object_get(doc, "result"))) {
        /* A refusal of the operation itself: the same answer the database mode prints. */
        json_t *ans = json_deep_copy(doc);
        if (ans) {
            json_object_set_new(ans, "message", json_string(msg ? msg : ""));
            json_object_del(ans, "error");
        }
        json_decref(doc); /* msg pointed into it */
        if (!ans) {
            snprintf(err, err_len, "out of memory");
            return -ENOMEM;
        }
        *out = ans;
        return 0;
    }
    char m[OPS_CELL_MAX];
    snprintf(err, err_len, "%s: %s (HTTP %d)", code ? code : "ERROR",
             ops_cell(error, "message", m, sizeof(m)), status);
    json_decref(doc);
    return status == 400 ? ADMIN_E_INVALID : status == 404 ? ADMIN_E_NOT_FOUND : ADMIN_E_DB;
}
