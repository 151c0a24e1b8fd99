/* `ocgate exception list|resolve`: proofs whose money could not be credited automatically
 * (design.md I4, "money in the ledger") and their resolution by an operator: attach to a
 * pending payment, refund, or dismiss with a reason. Resolution runs the same SQL operation
 * as the admin API (src/admin/): atomic, idempotent (the same resolution again answers
 * "already done" and changes nothing) and recorded in the audit trail under the OS user who
 * ran the command. Exit status 0 (done or already done), 1 (refused, not found, failure),
 * 2 (usage). */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/ops.h"
#include "cli/startup.h"
#include "conf/conf.h"

#define PROG "ocgate exception"

static void exception_usage(FILE *out)
{
    fputs("usage: ocgate exception <command> [options]\n"
          "  list [--status S] [--kind K] [--limit N] [--cursor X] [--json]\n"
          "      oldest first; S is open, attached, refunded or dismissed; K is unmatched,\n"
          "      amount_mismatch, currency_mismatch, late or duplicate_payment; N from 1 to\n"
          "      1000 (default 50)\n"
          "  resolve ID (--attach TXID | --refund | --dismiss) [--reason TEXT] [--json]\n"
          "          [--config FILE]\n"
          "      --attach   complete the pending (possibly expired) payment TXID of equal\n"
          "                 amount and currency with the exception's money and notify its\n"
          "                 merchant; needs the gateway's OCID from the configuration (FILE,\n"
          "                 else OCGATE_CONFIG, plus OCGATE_* variables)\n"
          "      --refund   the money is owed back to the payer (refunds payable)\n"
          "      --dismiss  reverse the suspense posting; needs --reason\n"
          "      the same resolution again changes nothing and exits 0; the OS user is\n"
          "      recorded as the actor in the audit trail\n"
          "database: OCGATE_DATABASE_URL (+ OCGATE_DATABASE_PASSWORD_FILE)\n"
          OPS_REMOTE_USAGE
          "exit status: 0 success (incl. already done), 1 refused, not found or failure,\n"
          "             2 usage error\n",
          out);
}

typedef struct Args {
    AdminExceptionFilter f;
    int json;
    int64_t id;
    const char *action;
    const char *txid;
    const char *reason;
    const char *config;
} Args;

static int set_action(Args *a, const char *action)
{
    if (a->action)
        return ops_usage_error(PROG, "give exactly one of --attach, --refund, --dismiss");
    a->action = action;
    return 0;
}

static int parse_args(const char *cmd, int argc, char **argv, Args *a)
{
    enum { O_STATUS = 256, O_KIND, O_LIMIT, O_CURSOR, O_JSON, O_ATTACH, O_REFUND, O_DISMISS,
           O_REASON, O_CONFIG };
    static const struct option options[] = {
        { "status", required_argument, NULL, O_STATUS },
        { "kind", required_argument, NULL, O_KIND },
        { "limit", required_argument, NULL, O_LIMIT },
        { "cursor", required_argument, NULL, O_CURSOR },
        { "json", no_argument, NULL, O_JSON },
        { "attach", required_argument, NULL, O_ATTACH },
        { "refund", no_argument, NULL, O_REFUND },
        { "dismiss", no_argument, NULL, O_DISMISS },
        { "reason", required_argument, NULL, O_REASON },
        { "config", required_argument, NULL, O_CONFIG },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof(*a));
    int is_list = strcmp(cmd, "list") == 0, list_opts = 0, resolve_opts = 0;
    int opt, r;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_STATUS:
            a->f.status = optarg;   /* the database says which values exist */
            list_opts++;
            break;
        case O_KIND:
            a->f.kind = optarg;
            list_opts++;
            break;
        case O_LIMIT:
            if (ops_parse_limit(optarg, &a->f.limit) != 0)
                return ops_usage_error(PROG, "--limit must be from 1 to 1000");
            list_opts++;
            break;
        case O_CURSOR:
            a->f.cursor = optarg;
            list_opts++;
            break;
        case O_JSON:
            a->json = 1;
            break;
        case O_ATTACH:
            if (!*optarg || strlen(optarg) > 200)
                return ops_usage_error(PROG, "--attach needs a payment txid");
            a->txid = optarg;
            if ((r = set_action(a, "attach")))
                return r;
            resolve_opts++;
            break;
        case O_REFUND:
            if ((r = set_action(a, "refund")))
                return r;
            resolve_opts++;
            break;
        case O_DISMISS:
            if ((r = set_action(a, "dismiss")))
                return r;
            resolve_opts++;
            break;
        case O_REASON:
            if (strlen(optarg) > ADMIN_REASON_MAX)
                return ops_usage_error(PROG, "--reason is at most 1000 bytes");
            a->reason = optarg;
            resolve_opts++;
            break;
        case O_CONFIG:
            a->config = optarg;
            resolve_opts++;
            break;
        default:
            exception_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (is_list) {
        if (resolve_opts)
            return ops_usage_error(PROG, "--attach, --refund, --dismiss, --reason and --config "
                                         "are for resolve");
        if (optind != argc)
            return ops_usage_error(PROG, "list takes no arguments besides its options");
        return 0;
    }
    if (list_opts)
        return ops_usage_error(PROG, "--status, --kind, --limit and --cursor are for list");
    if (optind + 1 != argc || ops_parse_ocid(argv[optind], &a->id) != 0)
        return ops_usage_error(PROG, "resolve needs one exception id (a decimal number)");
    if (!a->action)
        return ops_usage_error(PROG, "resolve needs --attach TXID, --refund or --dismiss");
    if (a->config && strcmp(a->action, "attach") != 0)
        return ops_usage_error(PROG, "--config is only needed for --attach");
    return 0;
}

static void print_list(const json_t *page)
{
    char c[9][OPS_CELL_MAX];
    printf("%-8s %-17s %-9s %-12s %20s %-8s %-36s %s\n", "ID", "KIND", "STATUS", "MERCHANT",
           "AMOUNT", "CURRENCY", "REFERENCE", "CREATED");
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(page, "items"), i, x) {
        printf("%-8s %-17s %-9s %-12s %20s %-8s %-36s %s\n", ops_cell(x, "id", c[0], OPS_CELL_MAX),
               ops_cell(x, "kind", c[1], OPS_CELL_MAX), ops_cell(x, "status", c[2], OPS_CELL_MAX),
               ops_cell(x, "merchant", c[3], OPS_CELL_MAX),
               ops_cell(x, "amount", c[4], OPS_CELL_MAX),
               ops_cell(x, "currency", c[5], OPS_CELL_MAX),
               ops_cell(x, "reference", c[6], OPS_CELL_MAX),
               ops_time_cell(x, "createdAt", c[7], OPS_CELL_MAX));
    }
    ops_print_next(page, "ocgate exception list (same filters)");
}

/* The gateway's OCID from the configuration, as `ocgate serve` would load it. */
static int gateway_ocid(const char *path, int64_t *out)
{
    path = cli_config_path(path);
    Config cfg;
    char err[1024];
    int r = conf_load(path, environ, &cfg, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, PROG " resolve: --attach needs the gateway's OCID from the "
                        "configuration, which cannot be loaded: %s\n",
                r < 0 ? "out of memory" : err);
        return -1;
    }
    *out = cfg.ocid;
    conf_deinit(&cfg);
    return 0;
}

/* Says what happened; returns the exit status for the answer. */
static int report(const Args *a, const json_t *doc)
{
    const char *result = json_string_value(json_object_get(doc, "result"));
    int done = strcmp(result, "done") == 0, already = strcmp(result, "already_done") == 0;
    if (a->json) {
        int r = ops_print_json(PROG, doc);
        if (r != CLI_EXIT_OK)
            return r;
    }
    if (!done && !already) {
        char msg[OPS_CELL_MAX];
        fprintf(stderr, PROG " resolve: refused (%s): %s\n", result,
                ops_cell(doc, "message", msg, sizeof(msg)));
        return CLI_EXIT_FAILURE;
    }
    if (a->json)
        return CLI_EXIT_OK;
    const json_t *x = json_object_get(doc, "exception");
    const json_t *tx = json_object_get(doc, "ledgerTx");
    char c[4][OPS_CELL_MAX];
    printf("exception %" PRId64 " %s%s", a->id, already ? "was already " : "",
           ops_cell(x, "status", c[0], OPS_CELL_MAX));
    if (strcmp(a->action, "attach") == 0)
        printf(" to payment %s (now %s; merchant notification %s)",
               ops_cell(x, "attachedTxid", c[1], OPS_CELL_MAX),
               ops_cell(json_object_get(doc, "payment"), "status", c[2], OPS_CELL_MAX),
               ops_cell(doc, "deliveryId", c[3], OPS_CELL_MAX));
    printf("; ledger transaction %s", ops_cell(tx, "id", c[1], OPS_CELL_MAX));
    printf(already ? "; nothing changed\n" : "\n");
    return CLI_EXIT_OK;
}

/* The same command through the admin API (ops.h, remote mode). */
static int remote_exception(const OpsRemote *remote, int is_list, const Args *a)
{
    char target[2048], limit[16], err[512];
    json_t *doc = NULL;
    char *body = NULL;
    int r;
    if (is_list) {
        snprintf(target, sizeof(target), "/admin/v1/exceptions");
        snprintf(limit, sizeof(limit), "%d", a->f.limit);
        if (ops_query_add(target, sizeof(target), "status", a->f.status) ||
            ops_query_add(target, sizeof(target), "kind", a->f.kind) ||
            ops_query_add(target, sizeof(target), "cursor", a->f.cursor) ||
            ops_query_add(target, sizeof(target), "limit", a->f.limit > 0 ? limit : NULL))
            return ops_usage_error(PROG, "the filters are too long");
        r = ops_remote_call(remote, "GET", target, NULL, &doc, err, sizeof(err));
    } else {
        snprintf(target, sizeof(target), "/admin/v1/exceptions/%" PRId64 "/resolve", a->id);
        json_t *o = json_pack("{s:s}", "action", a->action);
        if (o && a->txid)
            json_object_set_new(o, "txid", json_string(a->txid));
        if (o && a->reason)
            json_object_set_new(o, "reason", json_string(a->reason));
        body = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!body) {
            fprintf(stderr, PROG ": out of memory\n");
            return CLI_EXIT_FAILURE;
        }
        r = ops_remote_call(remote, "POST", target, body, &doc, err, sizeof(err));
        free(body);
    }
    if (r != 0)
        return ops_admin_failure(is_list ? PROG " list" : PROG " resolve", r, err);
    int status = is_list ? ops_output(PROG, doc, a->json, print_list) : report(a, doc);
    json_decref(doc);
    return status;
}

int cli_exception(int argc, char **argv)
{
    int status;
    const char *cmd = ops_command(argc, argv, exception_usage, &status);
    if (!cmd)
        return status;
    int is_list = strcmp(cmd, "list") == 0;
    if (!is_list && strcmp(cmd, "resolve") != 0)
        return ops_unknown_command(PROG, cmd, exception_usage);
    OpsRemote remote;
    if ((status = ops_remote_take(PROG, &argc, argv, &remote)) >= 0)
        return status;
    Args a;
    int r = parse_args(cmd, argc - 1, argv + 1, &a);
    if (r) {
        ops_remote_deinit(&remote);
        return r;
    }
    if (remote.on) {
        status = remote_exception(&remote, is_list, &a);
        ops_remote_deinit(&remote);
        return status;
    }

    AdminResolve rq = { .exception_id = a.id, .action = a.action, .txid = a.txid,
                        .reason = a.reason, .gateway_ocid = -1, .now = (int64_t)time(NULL) };
    char actor[256];
    if (!is_list) {
        ops_os_actor(actor, sizeof(actor));
        rq.actor = actor;
        if (strcmp(a.action, "attach") == 0 && gateway_ocid(a.config, &rq.gateway_ocid) != 0)
            return CLI_EXIT_FAILURE;
    }

    PGconn *conn;
    if ((status = cli_db_open(PROG, &conn)) != CLI_EXIT_OK)
        return status;
    char err[512];
    json_t *doc = NULL;
    r = is_list ? admin_exceptions(conn, &a.f, &doc, err, sizeof(err))
                : admin_resolve_exception(conn, &rq, &doc, err, sizeof(err));
    PQfinish(conn);
    if (r != 0)
        return ops_admin_failure(is_list ? PROG " list" : PROG " resolve", r, err);
    status = is_list ? ops_output(PROG, doc, a.json, print_list) : report(&a, doc);
    json_decref(doc);
    return status;
}
