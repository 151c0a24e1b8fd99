/* `ocgate client create|list|revoke`: the admin API's clients (docs/admin-api.md). create makes
 * a random client id and secret, seals the secret under the sealing key (AES-256-GCM, the id
 * as associated data) and stores only the sealed form; the secret is shown once, on stdout or
 * in a new 0600 file, and never again. Every change is in the audit trail under the OS user. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/seal.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/ops.h"
#include "cli/startup.h"
#include "conf/conf.h"
#include "util/hex.h"
#include "util/secret_file.h"

#define PROG "ocgate client"

static void client_usage(FILE *out)
{
    fputs("usage: ocgate client <command> [options]\n"
          "  create --name NAME --scope S[,S...] [--sealing-key FILE] [--secret-out FILE]\n"
          "         [--json]   prints the client id and its secret (once: it is stored\n"
          "                    sealed and cannot be shown again); --secret-out writes the\n"
          "                    secret to a new 0600 file instead of stdout\n"
          "  list [--json]     every client with its scopes, revoked ones included\n"
          "  revoke ID [--json]  the client's next request is refused\n"
          "scopes: payments:read, balances:read, exceptions:read, exceptions:write,\n"
          "        deliveries:read, deliveries:write, participants:read, participants:write\n"
          "sealing key: --sealing-key FILE, else OCGATE_ADMIN_SEALING_KEY_FILE, else\n"
          "        admin_sealing_key_file of the configuration (--config FILE or OCGATE_CONFIG):\n"
          "        the file `ocgate serve` uses (`ocgate keygen --sealing-key --out FILE`)\n"
          "database: OCGATE_DATABASE_URL (+ OCGATE_DATABASE_PASSWORD_FILE)\n"
          "exit status: 0 success, 1 failure (incl. not found), 2 usage error\n",
          out);
}

typedef struct Args {
    const char *name;
    const char *scopes;
    const char *sealing_key;
    const char *secret_out;
    const char *config;
    int json;
} Args;

static int parse(int argc, char **argv, Args *a, int *first_operand)
{
    enum { O_NAME = 256, O_SCOPE, O_KEY, O_OUT, O_CONFIG, O_JSON };
    static const struct option options[] = {
        { "name", required_argument, NULL, O_NAME },
        { "scope", required_argument, NULL, O_SCOPE },
        { "sealing-key", required_argument, NULL, O_KEY },
        { "secret-out", required_argument, NULL, O_OUT },
        { "config", required_argument, NULL, O_CONFIG },
        { "json", no_argument, NULL, O_JSON },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof(*a));
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_NAME: a->name = optarg; break;
        case O_SCOPE: a->scopes = optarg; break;
        case O_KEY: a->sealing_key = optarg; break;
        case O_OUT: a->secret_out = optarg; break;
        case O_CONFIG: a->config = optarg; break;
        case O_JSON: a->json = 1; break;
        default:
            client_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    *first_operand = optind;
    return CLI_EXIT_OK;
}

/* Every comma-separated scope is known; no empty entry. */
static int scopes_valid(const char *csv)
{
    const char *p = csv;
    if (!*p)
        return 0;
    for (;;) {
        size_t n = strcspn(p, ",");
        int known = 0;
        for (const char *const *s = admin_scopes; *s; s++)
            known |= strlen(*s) == n && strncmp(*s, p, n) == 0;
        if (!known)
            return 0;
        if (!p[n])
            return 1;
        p += n + 1;
    }
}

static int cmd_create(const Args *a)
{
    if (!a->name || !*a->name || strlen(a->name) > 200)
        return ops_usage_error(PROG, "create needs --name (1 to 200 characters)");
    if (!a->scopes || !scopes_valid(a->scopes))
        return ops_usage_error(PROG, "create needs --scope with known scopes, comma-separated "
                               "(see ocgate client help)");
    char key_path[4096] = "";
    const char *env = getenv("OCGATE_ADMIN_SEALING_KEY_FILE");
    const char *config = cli_config_path(a->config);
    if (a->sealing_key) {
        snprintf(key_path, sizeof(key_path), "%s", a->sealing_key);
    } else if (env && *env) {
        snprintf(key_path, sizeof(key_path), "%s", env);
    } else if (config) {
        /* The server's own configuration names the key it opens secrets with. */
        Config cfg;
        char err[1024];
        int cr = conf_load(config, environ, &cfg, err, sizeof(err));
        if (cr != 0) {
            fprintf(stderr, PROG ": cannot load the configuration %s: %s\n", config,
                    cr < 0 ? "out of memory" : err);
            return CLI_EXIT_USAGE;
        }
        if (cfg.admin_sealing_key_file)
            snprintf(key_path, sizeof(key_path), "%s", cfg.admin_sealing_key_file);
        conf_deinit(&cfg);
    }
    if (!key_path[0])
        return ops_usage_error(PROG, "no sealing key: give --sealing-key FILE, set "
                               "OCGATE_ADMIN_SEALING_KEY_FILE, or admin_sealing_key_file in "
                               "the configuration");
    SealKey key;
    int r = seal_key_load_file(key_path, &key);
    if (r != 0) {
        fprintf(stderr, PROG ": cannot use the sealing key file %s: %s\n", key_path,
                r == SEAL_E_PERMISSIONS ? "it is readable by group or others (chmod 600)"
                : r == SEAL_E_FORMAT    ? "it does not hold 64 hex digits"
                : r == SEAL_E_FILE      ? "it is not a regular file"
                                        : strerror(r < 0 ? -r : EINVAL));
        return CLI_EXIT_FAILURE;
    }

    int status = CLI_EXIT_FAILURE;
    PGconn *conn = NULL;
    json_t *doc = NULL;
    uint8_t rnd[32], sealed[ADMIN_CLIENT_SECRET_LEN + SEAL_OVERHEAD];
    char id[ADMIN_CLIENT_ID_LEN + 1], secret[ADMIN_CLIENT_SECRET_LEN + 1];
    char sealed_text[2 + 2 * sizeof(sealed) + 1];
    if (RAND_bytes(rnd, 12) != 1)
        goto out;
    memcpy(id, "ocgc_", 5);
    hex_encode(rnd, 12, id + 5);
    if (RAND_bytes(rnd, 32) != 1)
        goto out;
    hex_encode(rnd, 32, secret);
    if (seal_seal(&key, (const uint8_t *)secret, ADMIN_CLIENT_SECRET_LEN, id, sealed) != 0) {
        fprintf(stderr, PROG ": cannot seal the secret\n");
        goto out;
    }
    memcpy(sealed_text, "\\x", 2);
    hex_encode(sealed, sizeof(sealed), sealed_text + 2);

    status = cli_db_open(PROG, &conn);
    if (status != CLI_EXIT_OK)
        goto out;
    char actor[256], err[1024];
    ops_os_actor(actor, sizeof(actor));
    const char *params[5] = { id, a->name, a->scopes, sealed_text, actor };
    r = admin_run(conn, ADMIN_STMT_CLIENT_CREATE, params, &doc, err, sizeof(err));
    if (r != 0) {
        status = ops_admin_failure(PROG, r, err);
        goto out;
    }
    if (a->secret_out) {
        char line[ADMIN_CLIENT_SECRET_LEN + 1];
        memcpy(line, secret, ADMIN_CLIENT_SECRET_LEN);
        line[ADMIN_CLIENT_SECRET_LEN] = '\n';
        r = secret_file_create(a->secret_out, line, sizeof(line));
        OPENSSL_cleanse(line, sizeof(line));
        if (r != 0) {
            /* Nobody holds the secret: the client must not stay usable. */
            json_t *gone = NULL;
            const char *rp[2] = { id, actor };
            if (admin_run(conn, ADMIN_STMT_CLIENT_REVOKE, rp, &gone, err, sizeof(err)) == 0)
                json_decref(gone);
            fprintf(stderr, PROG ": cannot write %s (%s); client %s revoked\n", a->secret_out,
                    r == SECRET_FILE_EXISTS ? "it exists" : strerror(-r), id);
            status = CLI_EXIT_FAILURE;
            goto out;
        }
    }
    if (a->json) {
        json_t *o = json_pack("{s:s,s:O,s:O}", "id", id, "name", json_object_get(doc, "name"),
                              "scopes", json_object_get(doc, "scopes"));
        if (o && !a->secret_out)
            json_object_set_new(o, "secret", json_string(secret));
        status = ops_print_json_new(PROG, o);
    } else {
        printf("client id: %s\n", id);
        if (a->secret_out) {
            printf("secret:    written to %s\n", a->secret_out);
        } else {
            printf("secret:    %s\n", secret);
            printf("(shown once: it is stored sealed and cannot be shown again)\n");
        }
        status = CLI_EXIT_OK;
    }
out:
    json_decref(doc);
    PQfinish(conn);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(rnd, sizeof(rnd));
    seal_key_wipe(&key);
    return status;
}

static void print_clients(const json_t *doc)
{
    char c[5][OPS_CELL_MAX];
    size_t i;
    const json_t *v;
    printf("%-30s %-20s %-8s %-21s %s\n", "ID", "NAME", "STATUS", "CREATED", "SCOPES");
    json_array_foreach(json_object_get(doc, "items"), i, v) {
        char scopes[512] = "";
        size_t j;
        const json_t *s;
        json_array_foreach(json_object_get(v, "scopes"), j, s) {
            size_t used = strlen(scopes);
            snprintf(scopes + used, sizeof(scopes) - used, "%s%s", j ? "," : "",
                     json_string_value(s) ? json_string_value(s) : "?");
        }
        int revoked = json_is_integer(json_object_get(v, "revokedAt"));
        printf("%-30s %-20s %-8s %-21s %s\n", ops_cell(v, "id", c[0], OPS_CELL_MAX),
               ops_cell(v, "name", c[1], OPS_CELL_MAX), revoked ? "revoked" : "active",
               ops_time_cell(v, "createdAt", c[2], OPS_CELL_MAX), scopes);
    }
}

int cli_client(int argc, char **argv)
{
    int status;
    const char *cmd = ops_command(argc, argv, client_usage, &status);
    if (!cmd)
        return status;
    Args a;
    int operand;
    status = parse(argc - 1, argv + 1, &a, &operand);
    if (status != CLI_EXIT_OK)
        return status;
    int operands = argc - 1 - operand;
    char **ops = argv + 1 + operand;

    if (strcmp(cmd, "create") == 0) {
        if (operands != 0)
            return ops_usage_error(PROG, "create takes no operands");
        return cmd_create(&a);
    }
    if (strcmp(cmd, "list") != 0 && strcmp(cmd, "revoke") != 0)
        return ops_unknown_command(PROG, cmd, client_usage);
    if (a.name || a.scopes || a.sealing_key || a.secret_out || a.config)
        return ops_usage_error(PROG, "list and revoke take only --json (and revoke an ID)");
    if (strcmp(cmd, "revoke") == 0 && (operands != 1 || !admin_client_id_valid(ops[0])))
        return ops_usage_error(PROG, "revoke needs one client id (ocgc_ and 24 hex digits)");
    if (strcmp(cmd, "list") == 0 && operands != 0)
        return ops_usage_error(PROG, "list takes no operands");

    PGconn *conn;
    status = cli_db_open(PROG, &conn);
    if (status != CLI_EXIT_OK)
        return status;
    json_t *doc = NULL;
    char err[1024];
    int r;
    if (strcmp(cmd, "list") == 0) {
        r = admin_run(conn, ADMIN_STMT_CLIENTS, NULL, &doc, err, sizeof(err));
        status = r != 0 ? ops_admin_failure(PROG, r, err)
                        : ops_output(PROG, doc, a.json, print_clients);
    } else {
        char actor[256];
        ops_os_actor(actor, sizeof(actor));
        const char *params[2] = { ops[0], actor };
        r = admin_run(conn, ADMIN_STMT_CLIENT_REVOKE, params, &doc, err, sizeof(err));
        if (r != 0) {
            status = ops_admin_failure(PROG, r, err);
        } else {
            const char *result = json_string_value(json_object_get(doc, "result"));
            if (result && strcmp(result, "not_found") == 0) {
                fprintf(stderr, PROG ": no client has id %s\n", ops[0]);
                status = CLI_EXIT_FAILURE;
            } else if (a.json) {
                status = ops_print_json(PROG, doc);
            } else {
                printf("client %s %s\n", ops[0],
                       result && strcmp(result, "done") == 0 ? "revoked" : "was already revoked");
                status = CLI_EXIT_OK;
            }
        }
    }
    json_decref(doc);
    PQfinish(conn);
    return status;
}
