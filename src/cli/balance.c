/* `ocgate balance [--merchant OCID] [--json]`: balances read from the ledger (src/admin/):
 * what the gateway owes each merchant per currency, and what it holds in suspense (open
 * exceptions), owes as refunds and has been told each provider moved. Exit status 0, 1, 2. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/ops.h"

#define PROG "ocgate balance"

static void balance_usage(FILE *out)
{
    fputs("usage: ocgate balance [--merchant OCID] [--json]\n"
          "  per merchant and currency: the sum of its ledger account (merchant:<ocid>);\n"
          "  per currency: suspense (open exceptions), refunds payable, and per provider its\n"
          "  clearing account (negative: money it reported moving to the gateway). With\n"
          "  --merchant, suspense, refunds and clearing count only that merchant's entries.\n"
          "database: OCGATE_DATABASE_URL (+ OCGATE_DATABASE_PASSWORD_FILE)\n"
          OPS_REMOTE_USAGE
          "exit status: 0 success, 1 failure, 2 usage error\n",
          out);
}

static void print_currency_totals(const char *title, const json_t *list)
{
    char c[2][OPS_CELL_MAX];
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        printf("%-24s %-8s %24s\n", i == 0 ? title : "", ops_cell(v, "currency", c[0],
                                                                    OPS_CELL_MAX),
               ops_cell(v, "balance", c[1], OPS_CELL_MAX));
    }
    if (json_array_size(list) == 0)
        printf("%-24s %-8s %24s\n", title, "-", "0");
}

static void print_balances(const json_t *doc)
{
    char c[3][OPS_CELL_MAX];
    size_t i;
    const json_t *v;
    printf("%-24s %-8s %24s\n", "MERCHANT", "CURRENCY", "BALANCE");
    json_array_foreach(json_object_get(doc, "merchants"), i, v) {
        printf("%-24s %-8s %24s\n", ops_cell(v, "merchant", c[0], OPS_CELL_MAX),
               ops_cell(v, "currency", c[1], OPS_CELL_MAX),
               ops_cell(v, "balance", c[2], OPS_CELL_MAX));
    }
    printf("\n%-24s %-8s %24s\n", "HELD", "CURRENCY", "BALANCE");
    print_currency_totals("suspense", json_object_get(doc, "suspense"));
    print_currency_totals("refunds payable", json_object_get(doc, "refundsPayable"));
    json_array_foreach(json_object_get(doc, "clearing"), i, v) {
        char name[OPS_CELL_MAX + 16];
        snprintf(name, sizeof(name), "clearing:%s", ops_cell(v, "provider", c[0], OPS_CELL_MAX));
        printf("%-24s %-8s %24s\n", name, ops_cell(v, "currency", c[1], OPS_CELL_MAX),
               ops_cell(v, "balance", c[2], OPS_CELL_MAX));
    }
}

int cli_balance(int argc, char **argv)
{
    enum { O_MERCHANT = 256, O_JSON, O_HELP };
    static const struct option options[] = {
        { "merchant", required_argument, NULL, O_MERCHANT },
        { "json", no_argument, NULL, O_JSON },
        { "help", no_argument, NULL, O_HELP },
        { NULL, 0, NULL, 0 },
    };
    int64_t merchant = -1;
    int json = 0, opt;
    OpsRemote remote;
    int taken = ops_remote_take(PROG, &argc, argv, &remote);
    if (taken >= 0)
        return taken;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_MERCHANT:
            if (ops_parse_ocid(optarg, &merchant) != 0) {
                ops_remote_deinit(&remote);
                return ops_usage_error(PROG, "--merchant must be a decimal OCID (0 .. 2^53-1)");
            }
            break;
        case O_JSON:
            json = 1;
            break;
        case O_HELP:
            ops_remote_deinit(&remote);
            balance_usage(stdout);
            return CLI_EXIT_OK;
        default:
            ops_remote_deinit(&remote);
            balance_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        ops_remote_deinit(&remote);
        return ops_usage_error(PROG, "balance takes no arguments besides its options");
    }

    char err[512];
    json_t *doc = NULL;
    int r, status;
    if (remote.on) {
        char target[128] = "/admin/v1/balances", m[24];
        snprintf(m, sizeof(m), "%" PRId64, merchant);
        r = ops_query_add(target, sizeof(target), "merchant", merchant >= 0 ? m : NULL);
        if (r == 0)
            r = ops_remote_call(&remote, "GET", target, NULL, &doc, err, sizeof(err));
        ops_remote_deinit(&remote);
    } else {
        PGconn *conn;
        status = cli_db_open(PROG, &conn);
        if (status != CLI_EXIT_OK)
            return status;
        r = admin_balances(conn, merchant, &doc, err, sizeof(err));
        PQfinish(conn);
    }
    if (r != 0)
        return ops_admin_failure(PROG, r, err);
    status = ops_output(PROG, doc, json, print_balances);
    json_decref(doc);
    return status;
}
