/* `ocgate payment list|show`: the operator's view of payments, their proofs, ledger postings,
 * exceptions and merchant notification (src/admin/, the operations the admin API runs).
 * Exit status 0, 1 (failure, not found), 2 (usage, or a filter the database refused). */
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

#define PROG "ocgate payment"

static void payment_usage(FILE *out)
{
    fputs("usage: ocgate payment <command> [options]\n"
          "  list [--status S] [--merchant OCID] [--currency C] [--since T] [--until T]\n"
          "       [--limit N] [--cursor X] [--json]\n"
          "      oldest first; S is pending_settlement (every pending payment), pending (not\n"
          "      yet expired), expired or completed; T is Unix seconds or an ISO 8601 date or\n"
          "      time (--since inclusive, --until exclusive, on the creation time); N from 1 to\n"
          "      1000 (default 50); X is the cursor a previous page printed\n"
          "  show TXID [--json]   the payment with its proofs, exceptions, ledger\n"
          "      transactions and merchant notification (with every attempt)\n"
          "database: OCGATE_DATABASE_URL (+ OCGATE_DATABASE_PASSWORD_FILE)\n"
          OPS_REMOTE_USAGE
          "exit status: 0 success, 1 failure (incl. not found), 2 usage error\n",
          out);
}

typedef struct Args {
    AdminPaymentFilter f;
    char since[40], until[40];
    int json;
    const char *txid;
} Args;

static int parse_args(const char *cmd, int argc, char **argv, Args *a)
{
    enum { O_STATUS = 256, O_MERCHANT, O_CURRENCY, O_SINCE, O_UNTIL, O_LIMIT, O_CURSOR, O_JSON };
    static const struct option options[] = {
        { "status", required_argument, NULL, O_STATUS },
        { "merchant", required_argument, NULL, O_MERCHANT },
        { "currency", required_argument, NULL, O_CURRENCY },
        { "since", required_argument, NULL, O_SINCE },
        { "until", required_argument, NULL, O_UNTIL },
        { "limit", required_argument, NULL, O_LIMIT },
        { "cursor", required_argument, NULL, O_CURSOR },
        { "json", no_argument, NULL, O_JSON },
        { NULL, 0, NULL, 0 },
    };
    memset(a, 0, sizeof(*a));
    a->f.merchant = -1;
    int is_list = strcmp(cmd, "list") == 0, filters = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        filters += opt != O_JSON;
        switch (opt) {
        case O_STATUS:
            a->f.status = optarg;   /* the database says which values exist */
            break;
        case O_MERCHANT:
            if (ops_parse_ocid(optarg, &a->f.merchant) != 0)
                return ops_usage_error(PROG, "--merchant must be a decimal OCID (0 .. 2^53-1)");
            break;
        case O_CURRENCY:
            a->f.currency = optarg;
            break;
        case O_SINCE:
            if (!(a->f.from = ops_time_param(optarg, a->since, sizeof(a->since))))
                return ops_usage_error(PROG, "--since is Unix seconds or an ISO 8601 time");
            break;
        case O_UNTIL:
            if (!(a->f.to = ops_time_param(optarg, a->until, sizeof(a->until))))
                return ops_usage_error(PROG, "--until is Unix seconds or an ISO 8601 time");
            break;
        case O_LIMIT:
            if (ops_parse_limit(optarg, &a->f.limit) != 0)
                return ops_usage_error(PROG, "--limit must be from 1 to 1000");
            break;
        case O_CURSOR:
            a->f.cursor = optarg;
            break;
        case O_JSON:
            a->json = 1;
            break;
        default:
            payment_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (is_list) {
        if (optind != argc)
            return ops_usage_error(PROG, "list takes no arguments besides its options");
        return 0;
    }
    if (filters)
        return ops_usage_error(PROG, "show takes only a txid and --json");
    if (optind + 1 != argc || !*argv[optind] || strlen(argv[optind]) > 200)
        return ops_usage_error(PROG, "show needs one payment txid");
    a->txid = argv[optind];
    return 0;
}

/* "completed", "pending", "pending (expired)". */
static const char *status_cell(const json_t *p)
{
    const char *status = json_string_value(json_object_get(p, "status"));
    if (!status)
        return "-";
    if (strcmp(status, "pending_settlement") == 0)
        return json_is_true(json_object_get(p, "expired")) ? "pending (expired)" : "pending";
    return status;
}

static void print_list(const json_t *page)
{
    char c[6][OPS_CELL_MAX];
    printf("%-36s %-12s %20s %-8s %-17s %s\n", "TXID", "MERCHANT", "AMOUNT", "CURRENCY",
           "STATUS", "CREATED");
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(page, "items"), i, p) {
        printf("%-36s %-12s %20s %-8s %-17s %s\n", ops_cell(p, "txid", c[0], OPS_CELL_MAX),
               ops_cell(p, "merchant", c[1], OPS_CELL_MAX),
               ops_cell(p, "amount", c[2], OPS_CELL_MAX),
               ops_cell(p, "currency", c[3], OPS_CELL_MAX), status_cell(p),
               ops_time_cell(p, "createdAt", c[4], OPS_CELL_MAX));
    }
    ops_print_next(page, "ocgate payment list (same filters)");
}

static void print_show(const json_t *doc)
{
    char c[8][OPS_CELL_MAX];
    const json_t *p = json_object_get(doc, "payment");
    printf("txid         %s\n", ops_cell(p, "txid", c[0], OPS_CELL_MAX));
    printf("status       %s\n", status_cell(p));
    printf("merchant     %s\n", ops_cell(p, "merchant", c[0], OPS_CELL_MAX));
    printf("payment app  %s\n", ops_cell(p, "app", c[0], OPS_CELL_MAX));
    printf("amount       %s %s\n", ops_cell(p, "amount", c[0], OPS_CELL_MAX),
           ops_cell(p, "currency", c[1], OPS_CELL_MAX));
    printf("reference    %s\n", ops_cell(p, "reference", c[0], OPS_CELL_MAX));
    printf("order id     %s\n", ops_cell(p, "orderId", c[0], OPS_CELL_MAX));
    printf("memo         %s\n", ops_cell(p, "memo", c[0], OPS_CELL_MAX));
    printf("created      %s\n", ops_time_cell(p, "createdAt", c[0], OPS_CELL_MAX));
    printf("expires      %s\n", ops_time_cell(p, "expiresAt", c[0], OPS_CELL_MAX));
    printf("completed    %s (proof %s)\n", ops_time_cell(p, "completedAt", c[0], OPS_CELL_MAX),
           ops_cell(p, "completedBy", c[1], OPS_CELL_MAX));

    size_t i;
    const json_t *v;
    printf("\nproofs\n  %-8s %-12s %-36s %-17s %-8s %20s %-8s %s\n", "ID", "ISSUER", "TXID",
           "OUTCOME", "VIA", "AMOUNT", "CURRENCY", "RECEIVED");
    json_array_foreach(json_object_get(doc, "proofs"), i, v) {
        printf("  %-8s %-12s %-36s %-17s %-8s %20s %-8s %s\n",
               ops_cell(v, "id", c[0], OPS_CELL_MAX), ops_cell(v, "issuer", c[1], OPS_CELL_MAX),
               ops_cell(v, "txid", c[2], OPS_CELL_MAX),
               ops_cell(v, "outcome", c[3], OPS_CELL_MAX),
               ops_cell(v, "receivedVia", c[4], OPS_CELL_MAX),
               ops_cell(v, "amount", c[5], OPS_CELL_MAX),
               ops_cell(v, "currency", c[6], OPS_CELL_MAX),
               ops_time_cell(v, "receivedAt", c[7], OPS_CELL_MAX));
    }
    printf("\nexceptions\n  %-8s %-17s %-9s %20s %-8s %-16s %s\n", "ID", "KIND", "STATUS",
           "AMOUNT", "CURRENCY", "RESOLVED BY", "NOTE");
    json_array_foreach(json_object_get(doc, "exceptions"), i, v) {
        printf("  %-8s %-17s %-9s %20s %-8s %-16s %s\n", ops_cell(v, "id", c[0], OPS_CELL_MAX),
               ops_cell(v, "kind", c[1], OPS_CELL_MAX), ops_cell(v, "status", c[2], OPS_CELL_MAX),
               ops_cell(v, "amount", c[3], OPS_CELL_MAX),
               ops_cell(v, "currency", c[4], OPS_CELL_MAX),
               ops_cell(v, "resolvedBy", c[5], OPS_CELL_MAX),
               ops_cell(v, "resolutionNote", c[6], OPS_CELL_MAX));
    }
    printf("\nledger\n  %-8s %-10s %-24s %24s %-8s %s\n", "TX", "KIND", "ACCOUNT", "AMOUNT",
           "CURRENCY", "AT");
    json_array_foreach(json_object_get(doc, "ledger"), i, v) {
        size_t j;
        const json_t *e;
        json_array_foreach(json_object_get(v, "entries"), j, e) {
            printf("  %-8s %-10s %-24s %24s %-8s %s\n", ops_cell(v, "id", c[0], OPS_CELL_MAX),
                   ops_cell(v, "kind", c[1], OPS_CELL_MAX),
                   ops_cell(e, "account", c[2], OPS_CELL_MAX),
                   ops_cell(e, "amount", c[3], OPS_CELL_MAX),
                   ops_cell(e, "currency", c[4], OPS_CELL_MAX),
                   ops_time_cell(v, "createdAt", c[5], OPS_CELL_MAX));
        }
    }
    const json_t *d = json_object_get(doc, "delivery");
    if (!json_is_object(d)) {
        printf("\nnotification  none\n");
        return;
    }
    printf("\nnotification  %s\n", ops_cell(d, "id", c[0], OPS_CELL_MAX));
    printf("  state       %s\n", ops_cell(d, "state", c[0], OPS_CELL_MAX));
    printf("  attempts    %s\n", ops_cell(d, "attempts", c[0], OPS_CELL_MAX));
    printf("  next at     %s\n", ops_time_cell(d, "nextAttemptAt", c[0], OPS_CELL_MAX));
    printf("  last error  %s\n", ops_cell(d, "lastError", c[0], OPS_CELL_MAX));
    printf("  %-7s %-20s %-9s %-6s %s\n", "ATTEMPT", "STARTED", "DURATION", "HTTP", "ERROR");
    json_array_foreach(json_object_get(d, "attemptLog"), i, v) {
        printf("  %-7s %-20s %-9s %-6s %s\n", ops_cell(v, "attempt", c[0], OPS_CELL_MAX),
               ops_time_cell(v, "startedAt", c[1], OPS_CELL_MAX),
               ops_cell(v, "durationMs", c[2], OPS_CELL_MAX),
               ops_cell(v, "httpStatus", c[3], OPS_CELL_MAX),
               ops_cell(v, "error", c[4], OPS_CELL_MAX));
    }
}

int cli_payment(int argc, char **argv)
{
    int status;
    const char *cmd = ops_command(argc, argv, payment_usage, &status);
    if (!cmd)
        return status;
    if (strcmp(cmd, "list") != 0 && strcmp(cmd, "show") != 0)
        return ops_unknown_command(PROG, cmd, payment_usage);
    OpsRemote remote;
    if ((status = ops_remote_take(PROG, &argc, argv, &remote)) >= 0)
        return status;
    Args a;
    int r = parse_args(cmd, argc - 1, argv + 1, &a);
    if (r)
        return r;
    if (remote.on) {
        char target[2048], merchant[24], limit[16], err[512];
        json_t *doc = NULL;
        snprintf(merchant, sizeof(merchant), "%" PRId64, a.f.merchant);
        snprintf(limit, sizeof(limit), "%d", a.f.limit);
        if (a.txid) {
            snprintf(target, sizeof(target), "/admin/v1/payments/");
            if (ops_url_append(target, sizeof(target), a.txid) != 0) {
                ops_remote_deinit(&remote);
                return ops_usage_error(PROG, "the txid is too long");
            }
        } else {
            snprintf(target, sizeof(target), "/admin/v1/payments");
            if (ops_query_add(target, sizeof(target), "status", a.f.status) ||
                ops_query_add(target, sizeof(target), "merchant",
                              a.f.merchant >= 0 ? merchant : NULL) ||
                ops_query_add(target, sizeof(target), "currency", a.f.currency) ||
                ops_query_add(target, sizeof(target), "from", a.f.from) ||
                ops_query_add(target, sizeof(target), "to", a.f.to) ||
                ops_query_add(target, sizeof(target), "cursor", a.f.cursor) ||
                ops_query_add(target, sizeof(target), "limit", a.f.limit > 0 ? limit : NULL)) {
                ops_remote_deinit(&remote);
                return ops_usage_error(PROG, "the filters are too long");
            }
        }
        r = ops_remote_call(&remote, "GET", target, NULL, &doc, err, sizeof(err));
        ops_remote_deinit(&remote);
        if (r != 0)
            return ops_admin_failure(PROG, r, err);
        status = ops_output(PROG, doc, a.json, a.txid ? print_show : print_list);
        json_decref(doc);
        return status;
    }

    PGconn *conn;
    if ((status = cli_db_open(PROG, &conn)) != CLI_EXIT_OK)
        return status;
    char err[512];
    json_t *doc = NULL;
    r = a.txid ? admin_payment(conn, a.txid, &doc, err, sizeof(err))
               : admin_payments(conn, &a.f, &doc, err, sizeof(err));
    PQfinish(conn);
    if (r != 0)
        return ops_admin_failure(PROG, r, err);
    status = ops_output(PROG, doc, a.json, a.txid ? print_show : print_list);
    json_decref(doc);
    return status;
}
