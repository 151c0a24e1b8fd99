/* Helpers shared by the operator commands (ops.h). */
#include "cli/ops.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
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
