/* `ocgate participant add|list|show|update|disable`: the operator's view of who may call the
 * gateway. Every value is validated here with the same parsers the server uses (keys in any
 * accepted form are stored as 128-hex), so the table never holds something the server would
 * refuse. Running servers see a change within a second (directory version). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/ops.h"
#include "directory/directory.h"
#include "proto/canon.h"
#include "proto/keys.h"
#include "proto/sigstr.h"
#include "store/participants.h" /* ParticipantFields */

#define PROG "ocgate participant"

static void participant_usage(FILE *out)
{
    fputs("usage: ocgate participant <command> [options]\n"
          "  add --ocid N --name NAME --roles R[,R...] --public-key HEX\n"
          "      [--endpoint URL] [--form strict|legacy] [--disabled]\n"
          "  update --ocid N [--name NAME] [--roles R,...] [--public-key HEX]\n"
          "      [--endpoint URL | --no-endpoint] [--form strict|legacy] [--enable | --disable]\n"
          "  disable --ocid N\n"
          "  list [--json]\n"
          "  show --ocid N [--json]\n"
          "roles: settlement_provider, payment_app, merchant\n"
          "public keys: 128 hex (x||y), 130 hex (04||x||y) or 66 hex (compressed)\n"
          "database: OCGATE_DATABASE_URL (+ OCGATE_DATABASE_PASSWORD_FILE)\n"
          OPS_REMOTE_USAGE
          "exit status: 0 success, 1 failure (incl. not found), 2 usage error\n",
          out);
}

typedef struct Args {
    int64_t ocid;
    int have_ocid;
    ParticipantFields f;
    char public_key[KEY_PUBLIC_HEX_LEN + 1];
    int json;
} Args;

static int bad(const char *what)
{
    fprintf(stderr, PROG ": %s\n", what);
    return CLI_EXIT_USAGE;
}

static int endpoint_valid(const char *url)
{
    size_t len = strlen(url);
    if (len > 2048 || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            return 0;
    return url[len - 1] != '/';
}

/* Parses options shared by every command; returns 0 or an exit status. */
static int parse_args(int argc, char **argv, Args *a)
{
    enum { O_OCID = 256, O_NAME, O_ROLES, O_KEY, O_ENDPOINT, O_NO_ENDPOINT, O_FORM, O_ENABLE,
           O_DISABLE, O_DISABLED, O_JSON };
    static const struct option options[] = {
        { "ocid", required_argument, NULL, O_OCID },
        { "name", required_argument, NULL, O_NAME },
        { "roles", required_argument, NULL, O_ROLES },
        { "public-key", required_argument, NULL, O_KEY },
        { "endpoint", required_argument, NULL, O_ENDPOINT },
        { "no-endpoint", no_argument, NULL, O_NO_ENDPOINT },
        { "form", required_argument, NULL, O_FORM },
        { "enable", no_argument, NULL, O_ENABLE },
        { "disable", no_argument, NULL, O_DISABLE },
        { "disabled", no_argument, NULL, O_DISABLED },
        { "json", no_argument, NULL, O_JSON },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof(*a));
    a->f.enabled = -1;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_OCID:
            if (sigstr_parse_decimal(optarg, strlen(optarg), 16, &a->ocid) != 0 ||
                a->ocid > 9007199254740991LL)
                return bad("--ocid must be a decimal OCID (0 .. 2^53-1)");
            a->have_ocid = 1;
            break;
        case O_NAME:
            if (!*optarg || strlen(optarg) > 200)
                return bad("--name must be 1..200 bytes");
            a->f.name = optarg;
            break;
        case O_ROLES: {
            unsigned roles;
            if (roles_parse(optarg, &roles) != 0)
                return bad("--roles takes settlement_provider, payment_app, merchant "
                           "(comma-separated)");
            a->f.roles_csv = optarg;
            break;
        }
        case O_KEY: {
            PublicKey pk;
            if (key_parse_public(optarg, strlen(optarg), &pk) != 0)
                return bad("--public-key is not a secp256k1 public key (128, 130 or 66 hex)");
            key_format_public(&pk, a->public_key);
            a->f.public_key_hex = a->public_key;
            break;
        }
        case O_ENDPOINT:
            if (!endpoint_valid(optarg))
                return bad("--endpoint must be an http:// or https:// base URL without a "
                           "trailing slash");
            a->f.endpoint = optarg;
            break;
        case O_NO_ENDPOINT:
            a->f.clear_endpoint = 1;
            break;
        case O_FORM: {
            CanonForm form;
            if (canon_form_parse(optarg, &form) != 0)
                return bad("--form is strict or legacy");
            a->f.form = canon_form_name(form);
            break;
        }
        case O_ENABLE:
            a->f.enabled = 1;
            break;
        case O_DISABLE:
        case O_DISABLED:
            a->f.enabled = 0;
            break;
        case O_JSON:
            a->json = 1;
            break;
        default:
            participant_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc)
        return bad("unexpected argument");
    if (a->f.endpoint && a->f.clear_endpoint)
        return bad("--endpoint and --no-endpoint exclude each other");
    return 0;
}

/* Prints rows (an array of api_row objects) as --json or a table; single = `show`. */
static int print_rows(json_t *rows, int json, int single)
{
    if (json)
        return ops_print_json(PROG, single ? json_array_get(rows, 0) : rows);
    char c[7][OPS_CELL_MAX];
    if (single) {
        static const char *const labels[] = { "ocid", "name", "roles", "public key",
                                              "endpoint", "form", "enabled" };
        static const char *const keys[] = { "ocid", "name", "roles", "publicKey", "endpoint",
                                            "form", "enabled" };
        const json_t *r = json_array_get(rows, 0);
        for (int k = 0; k < 7; k++) {
            const json_t *v = json_object_get(r, keys[k]);
            printf("%-11s %s\n", labels[k],
                   json_is_boolean(v) ? (json_is_true(v) ? "t" : "f")
                                      : ops_cell(r, keys[k], c[0], OPS_CELL_MAX));
        }
        return CLI_EXIT_OK;
    }
    printf("%-12s %-24s %-40s %-7s %-8s %s\n", "OCID", "NAME", "ROLES", "FORM", "ENABLED",
           "ENDPOINT");
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r) {
        printf("%-12s %-24.24s %-40s %-7s %-8s %s\n", ops_cell(r, "ocid", c[0], OPS_CELL_MAX),
               ops_cell(r, "name", c[1], OPS_CELL_MAX), ops_cell(r, "roles", c[2], OPS_CELL_MAX),
               ops_cell(r, "form", c[3], OPS_CELL_MAX), ops_cell(r, "enabled", c[4], OPS_CELL_MAX),
               ops_cell(r, "endpoint", c[5], OPS_CELL_MAX));
    }
    return CLI_EXIT_OK;
}

/* A participant of the admin functions in the CLI's shape (roles as comma-separated text,
 * keys in this order). */
static json_t *api_row(const json_t *p)
{
    char roles[256] = "";
    size_t i;
    const json_t *r;
    json_array_foreach(json_object_get(p, "roles"), i, r) {
        size_t used = strlen(roles);
        snprintf(roles + used, sizeof(roles) - used, "%s%s", i ? "," : "",
                 json_string_value(r) ? json_string_value(r) : "?");
    }
    /* Built key by key: the functions' objects come in jsonb's key order. */
#define F(k) k, json_object_get(p, k)
    return json_pack("{s:O?,s:O?,s:s,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", F("ocid"), F("name"),
                     "roles", roles, F("publicKey"), F("endpoint"), F("form"), F("enabled"),
                     F("createdAt"), F("updatedAt"));
#undef F
}

/* The fields of add/update as the API and the SQL function take them. */
static json_t *fields_json(const Args *a)
{
    json_t *fields = json_object(), *roles = json_array();
    if (fields && roles && a->f.roles_csv) {
        for (const char *p = a->f.roles_csv; *p;) {
            size_t n = strcspn(p, ",");
            json_array_append_new(roles, json_stringn(p, n));
            p += n + (p[n] == ',');
        }
        json_object_set(fields, "roles", roles);
    }
    json_decref(roles);
    if (fields && a->f.name)
        json_object_set_new(fields, "name", json_string(a->f.name));
    if (fields && a->f.public_key_hex)
        json_object_set_new(fields, "publicKey", json_string(a->f.public_key_hex));
    if (fields && (a->f.endpoint || a->f.clear_endpoint))
        json_object_set_new(fields, "endpoint",
                            a->f.endpoint ? json_string(a->f.endpoint) : json_null());
    if (fields && a->f.form)
        json_object_set_new(fields, "form", json_string(a->f.form));
    if (fields && a->f.enabled >= 0)
        json_object_set_new(fields, "enabled", json_boolean(a->f.enabled));
    return fields;
}

/* Reports a change's answer ({result, message?}); returns the exit status. */
static int report_change(const char *cmd, const Args *a, int r, const json_t *doc,
                         const char *err)
{
    const char *result = r == 0 ? json_string_value(json_object_get(doc, "result")) : NULL;
    if (r != 0) {
        fprintf(stderr, PROG " %s: %s\n", cmd, r == -ENOMEM ? "out of memory" : err);
        return r == ADMIN_E_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    if (!result || strcmp(result, "done") != 0) {
        char msg[OPS_CELL_MAX];
        fprintf(stderr, PROG " %s: %s\n", cmd, ops_cell(doc, "message", msg, sizeof(msg)));
        return CLI_EXIT_FAILURE;
    }
    printf("participant %" PRId64 " %s\n", a->ocid,
           strcmp(cmd, "add") == 0 ? "added" : strcmp(cmd, "disable") == 0 ? "disabled"
                                                                          : "updated");
    return CLI_EXIT_OK;
}

/* `list` and `show` on the database (conn) or through the admin API (remote): the same
 * SQL functions either way (oc_admin_participants, oc_admin_participant). */
static int show_participants(PGconn *conn, const OpsRemote *remote, const char *cmd,
                             const Args *a)
{
    int single = strcmp(cmd, "show") == 0, status = CLI_EXIT_FAILURE, pages = 0, r = 0;
    char target[1024], err[512], cursor[800] = "", ocid[24];
    json_t *rows = json_array(), *doc = NULL;
    snprintf(ocid, sizeof(ocid), "%" PRId64, a->ocid);
    if (!rows) {
        fprintf(stderr, PROG ": out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    do {
        const char *params[2] = { single ? ocid : cursor[0] ? cursor : NULL, "1000" };
        if (conn) {
            r = admin_run(conn, single ? ADMIN_STMT_PARTICIPANT : ADMIN_STMT_PARTICIPANTS, params,
                          &doc, err, sizeof(err));
        } else {
            snprintf(target, sizeof(target), single ? "/admin/v1/participants/%s"
                                                    : "/admin/v1/participants?limit=1000",
                     ocid);
            r = single ? 0 : ops_query_add(target, sizeof(target), "cursor", params[0]);
            if (r == 0)
                r = ops_remote_call(remote, "GET", target, NULL, &doc, err, sizeof(err));
            else
                snprintf(err, sizeof(err), "the cursor is too long");
        }
        if (r != 0)
            break;
        size_t i;
        const json_t *p;
        if (single) {
            r = json_array_append_new(rows, api_row(doc));
        } else {
            json_array_foreach(json_object_get(doc, "items"), i, p)
                r |= json_array_append_new(rows, api_row(p));
        }
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        snprintf(cursor, sizeof(cursor), "%s", next && !single ? next : "");
        json_decref(doc);
        doc = NULL;
        if (r != 0) {
            r = -ENOMEM;
            snprintf(err, sizeof(err), "out of memory");
            break;
        }
    } while (cursor[0] && ++pages < 1000);
    if (r == 0)
        status = print_rows(rows, a->json, single);
    else if (single && r == ADMIN_E_NOT_FOUND)
        fprintf(stderr, PROG " show: no participant has OCID %" PRId64 "\n", a->ocid);
    else
        status = ops_admin_failure(PROG, r, err);
    json_decref(rows);
    return status;
}

/* add, update and disable through the admin API (ops.h, remote mode). */
static int remote_change(const OpsRemote *remote, const char *cmd, const Args *a)
{
    char target[256], err[512] = "";
    json_t *doc = NULL;
    int r;
    json_t *body = NULL;
    if (strcmp(cmd, "add") == 0) {
        body = fields_json(a);
        if (body)
            json_object_set_new(body, "ocid", json_integer(a->ocid));
        snprintf(target, sizeof(target), "/admin/v1/participants");
    } else if (strcmp(cmd, "disable") == 0) {
        body = json_object();
        snprintf(target, sizeof(target), "/admin/v1/participants/%" PRId64 "/disable", a->ocid);
    } else {
        body = fields_json(a);
        snprintf(target, sizeof(target), "/admin/v1/participants/%" PRId64, a->ocid);
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return report_change(cmd, a, -ENOMEM, NULL, err);
    r = ops_remote_call(remote, "POST", target, strcmp(cmd, "disable") == 0 ? NULL : text, &doc,
                        err, sizeof(err));
    free(text);
    int status = report_change(cmd, a, r, doc, err);
    json_decref(doc);
    return status;
}

int cli_participant(int argc, char **argv)
{
    int status;
    const char *cmd = ops_command(argc, argv, participant_usage, &status);
    if (!cmd)
        return status;
    OpsRemote remote;
    if ((status = ops_remote_take(PROG, &argc, argv, &remote)) >= 0)
        return status;
    Args a;
    int r = parse_args(argc - 1, argv + 1, &a);
    if (r) {
        ops_remote_deinit(&remote);
        return r;
    }

    int is_add = strcmp(cmd, "add") == 0, is_update = strcmp(cmd, "update") == 0;
    int is_disable = strcmp(cmd, "disable") == 0, is_list = strcmp(cmd, "list") == 0;
    int is_show = strcmp(cmd, "show") == 0;
    if (!is_add && !is_update && !is_disable && !is_list && !is_show)
        return ops_unknown_command(PROG, cmd, participant_usage);
    if (!is_list && !a.have_ocid)
        return bad("--ocid is required");
    if (is_add && (!a.f.name || !a.f.roles_csv || !a.f.public_key_hex))
        return bad("add needs --name, --roles and --public-key");
    if (is_add && a.f.clear_endpoint)
        return bad("--no-endpoint is for update");
    if (is_disable)
        a.f.enabled = 0;
    if (remote.on) {
        status = is_list || is_show ? show_participants(NULL, &remote, cmd, &a)
                                    : remote_change(&remote, cmd, &a);
        ops_remote_deinit(&remote);
        return status;
    }

    PGconn *conn;
    if ((status = cli_db_open(PROG, &conn)) != CLI_EXIT_OK)
        return status;
    char err[512];
    status = CLI_EXIT_OK;
    if (is_add || is_update || is_disable) {
        /* The same SQL function as the admin API, so the change is audited under the OS
         * user (admin_audit) like every other operator action. */
        json_t *fields = fields_json(&a), *doc = NULL;
        char *fields_text = fields ? json_dumps(fields, JSON_COMPACT) : NULL;
        json_decref(fields);
        char ocid[24], actor[256];
        snprintf(ocid, sizeof(ocid), "%" PRId64, a.ocid);
        ops_os_actor(actor, sizeof(actor));
        const char *params[4] = { ocid, is_add ? "t" : "f", fields_text, actor };
        r = fields_text ? admin_run(conn, ADMIN_STMT_PARTICIPANT_PUT, params, &doc, err,
                                    sizeof(err))
                        : -ENOMEM;
        free(fields_text);
        status = report_change(cmd, &a, r, doc, err);
        json_decref(doc);
    } else {
        status = show_participants(conn, NULL, cmd, &a);
    }
    PQfinish(conn);
    return status;
}
