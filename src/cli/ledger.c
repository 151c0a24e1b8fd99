/* `ocgate ledger check|entries`. check reads the whole ledger, payments, proofs, exceptions
 * and merchant notifications and reports every violation of invariants I1-I3 (design.md),
 * each naming its invariant; exit status 0 when they hold, 3 when something is violated (so
 * a cron job or a monitoring probe can alarm on it), 1 when the check could not run, 2 for a
 * usage error. entries lists ledger entries, optionally of one account. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/ops.h"

#define PROG "ocgate ledger"

static void ledger_usage(FILE *out)
{
    fputs("usage: ocgate ledger <command> [options]\n"
          "  check [--json]   verify invariants I1-I3 over the whole database:\n"
          "      I1 each payment completed at most once, credited exactly once;\n"
          "      I2 every ledger transaction balances per currency, merchant credits equal\n"
          "         the completed payments, every proof's money is credited, in suspense,\n"
          "         refunds payable or reversed;\n"
          "      I3 every completed payment has exactly one merchant notification, and\n"
          "         every notification belongs to a completed payment\n"
          "  entries [--account A] [--limit N] [--cursor X] [--json]\n"
          "      ledger entries oldest first, of account A (merchant:<ocid>,\n"
          "      clearing:<ocid>, suspense, refunds_payable) or of all; N from 1 to 1000\n"
          "database: OCGATE_DATABASE_URL (+ OCGATE_DATABASE_PASSWORD_FILE)\n"
          "exit status: 0 ok, 1 failure, 2 usage error, 3 violations found (check)\n",
          out);
}

static int ledger_check(PGconn *conn, int json)
{
    char err[512];
    json_t *violations = NULL;
    int r = admin_ledger_check(conn, &violations, err, sizeof(err));
    if (r != 0)
        return ops_admin_failure(PROG " check", r, err);
    size_t n = json_array_size(violations);
    int status = n ? CLI_EXIT_VIOLATIONS : CLI_EXIT_OK;
    if (json) {
        json_t *doc = json_pack("{s:b,s:O}", "ok", n == 0, "violations", violations);
        int pr = doc ? ops_print_json(PROG, doc) : CLI_EXIT_FAILURE;
        if (!doc)
            fputs(PROG ": out of memory\n", stderr);
        json_decref(doc);
        if (pr != CLI_EXIT_OK)
            status = pr;
    } else {
        size_t i, per[3] = { 0, 0, 0 };
        const json_t *v;
        json_array_foreach(violations, i, v) {
            char inv[OPS_CELL_MAX], rule[OPS_CELL_MAX], detail[OPS_CELL_MAX * 2];
            ops_cell(v, "invariant", inv, sizeof(inv));
            printf("%s violated (%s): %s\n", inv, ops_cell(v, "rule", rule, sizeof(rule)),
                   ops_cell(v, "detail", detail, sizeof(detail)));
            if (inv[0] == 'I' && inv[1] >= '1' && inv[1] <= '3')
                per[inv[1] - '1']++;
        }
        if (n)
            printf("ledger check: %zu violations (I1: %zu, I2: %zu, I3: %zu)\n", n, per[0],
                   per[1], per[2]);
        else
            printf("ledger check: ok (I1, I2 and I3 hold)\n");
    }
    json_decref(violations);
    return status;
}

static void print_entries(const json_t *page)
{
    char c[9][OPS_CELL_MAX];
    printf("%-10s %-8s %-10s %-24s %24s %-8s %-36s %s\n", "ENTRY", "TX", "KIND", "ACCOUNT",
           "AMOUNT", "CURRENCY", "PAYMENT", "AT");
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(page, "items"), i, e) {
        printf("%-10s %-8s %-10s %-24s %24s %-8s %-36s %s\n",
               ops_cell(e, "id", c[0], OPS_CELL_MAX), ops_cell(e, "ledgerTx", c[1], OPS_CELL_MAX),
               ops_cell(e, "kind", c[2], OPS_CELL_MAX), ops_cell(e, "account", c[3], OPS_CELL_MAX),
               ops_cell(e, "amount", c[4], OPS_CELL_MAX),
               ops_cell(e, "currency", c[5], OPS_CELL_MAX),
               ops_cell(e, "paymentTxid", c[6], OPS_CELL_MAX),
               ops_time_cell(e, "createdAt", c[7], OPS_CELL_MAX));
    }
    ops_print_next(page, "ocgate ledger entries (same account)");
}

int cli_ledger(int argc, char **argv)
{
    int status;
    const char *cmd = ops_command(argc, argv, ledger_usage, &status);
    if (!cmd)
        return status;
    int is_check = strcmp(cmd, "check") == 0;
    if (!is_check && strcmp(cmd, "entries") != 0)
        return ops_unknown_command(PROG, cmd, ledger_usage);
    enum { O_ACCOUNT = 256, O_LIMIT, O_CURSOR, O_JSON };
    static const struct option options[] = {
        { "account", required_argument, NULL, O_ACCOUNT },
        { "limit", required_argument, NULL, O_LIMIT },
        { "cursor", required_argument, NULL, O_CURSOR },
        { "json", no_argument, NULL, O_JSON },
        { NULL, 0, NULL, 0 },
    };
    const char *account = NULL, *cursor = NULL;
    int limit = 0, json = 0, list_opts = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc - 1, argv + 1, "", options, NULL)) != -1) {
        switch (opt) {
        case O_ACCOUNT:
            if (!*optarg || strlen(optarg) > 64)
                return ops_usage_error(PROG, "--account names one ledger account");
            account = optarg;
            list_opts++;
            break;
        case O_LIMIT:
            if (ops_parse_limit(optarg, &limit) != 0)
                return ops_usage_error(PROG, "--limit must be from 1 to 1000");
            list_opts++;
            break;
        case O_CURSOR:
            cursor = optarg;
            list_opts++;
            break;
        case O_JSON:
            json = 1;
            break;
        default:
            ledger_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1)
        return ops_usage_error(PROG, "unexpected argument");
    if (is_check && list_opts)
        return ops_usage_error(PROG, "check takes only --json");

    PGconn *conn;
    if ((status = cli_db_open(PROG, &conn)) != CLI_EXIT_OK)
        return status;
    if (is_check) {
        status = ledger_check(conn, json);
    } else {
        char err[512];
        json_t *doc = NULL;
        int r = admin_ledger(conn, account, cursor, limit, &doc, err, sizeof(err));
        if (r != 0) {
            status = ops_admin_failure(PROG " entries", r, err);
        } else {
            status = json ? ops_print_json(PROG, doc) : CLI_EXIT_OK;
            if (!json)
                print_entries(doc);
            json_decref(doc);
        }
    }
    PQfinish(conn);
    return status;
}
