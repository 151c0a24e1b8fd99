/* `ocgate delivery list|show|retry`: the operator's view of merchant notifications (the
 * outbox; design.md, "outbound retries"). `retry` replays a dead or rejected notification:
 * it becomes pending and due now, a running worker sends it within its poll interval, and a
 * failure of that one attempt makes it dead again. Exit status 0, 1 (failure, not found, not
 * replayable), 2 (usage). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "cli/cli.h"
#include "cli/db.h"
#include "cli/ops.h"
#include "proto/sigstr.h"
#include "store/deliveries.h"

#define PROG "ocgate delivery"
#define F2(o, k) k, json_object_get(o, k)
#define DELIVERY_LIST_DEFAULT 50

static void delivery_usage(FILE *out)
{
    fputs("usage: ocgate delivery <command> [options]\n"
          "  list [--state S] [--merchant OCID] [--limit N] [--json]\n"
          "      newest first; S is pending, in_flight, delivered, rejected or dead;\n"
          "      N from 1 to 10000 (default 50)\n"
          "  show ID [--json]     one delivery with every attempt\n"
          "  retry ID             replay a dead or rejected delivery\n"
          "database: OCGATE_DATABASE_URL (+ OCGATE_DATABASE_PASSWORD_FILE)\n"
          OPS_REMOTE_USAGE
          "exit status: 0 success, 1 failure (incl. not found), 2 usage error\n",
          out);
}

static int bad(const char *what)
{
    fprintf(stderr, PROG ": %s\n", what);
    return CLI_EXIT_USAGE;
}

typedef struct Args {
    const char *state;
    int64_t merchant;
    int limit;
    int json;
    const char *id;
} Args;

static int parse_args(const char *cmd, int argc, char **argv, Args *a)
{
    enum { O_STATE = 256, O_MERCHANT, O_LIMIT, O_JSON };
    static const struct option options[] = {
        { "state", required_argument, NULL, O_STATE },
        { "merchant", required_argument, NULL, O_MERCHANT },
        { "limit", required_argument, NULL, O_LIMIT },
        { "json", no_argument, NULL, O_JSON },
        { NULL, 0, NULL, 0 },
    };
    static const char *const states[] = { "pending", "in_flight", "delivered", "rejected",
                                          "dead", NULL };
    memset(a, 0, sizeof(*a));
    a->merchant = -1;
    a->limit = DELIVERY_LIST_DEFAULT;
    int is_list = strcmp(cmd, "list") == 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case O_STATE: {
            const char *const *s = states;
            while (*s && strcmp(*s, optarg) != 0)
                s++;
            if (!*s)
                return bad("--state is pending, in_flight, delivered, rejected or dead");
            a->state = *s;
            break;
        }
        case O_MERCHANT:
            if (sigstr_parse_decimal(optarg, strlen(optarg), 16, &a->merchant) != 0 ||
                a->merchant > 9007199254740991LL)
                return bad("--merchant must be a decimal OCID (0 .. 2^53-1)");
            break;
        case O_LIMIT: {
            int64_t n;
            if (sigstr_parse_decimal(optarg, strlen(optarg), 5, &n) != 0 || n < 1 ||
                n > DELIVERIES_MAX_LIST)
                return bad("--limit must be from 1 to 10000");
            a->limit = (int)n;
            break;
        }
        case O_JSON:
            a->json = 1;
            break;
        default:
            delivery_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (!is_list && (a->state || a->merchant >= 0 || a->limit != DELIVERY_LIST_DEFAULT))
        return bad("--state, --merchant and --limit are for list");
    if (strcmp(cmd, "retry") == 0 && a->json)
        return bad("retry takes no --json");
    if (is_list) {
        if (optind != argc)
            return bad("list takes no arguments besides its options");
        return 0;
    }
    if (optind + 1 != argc)
        return bad("a delivery ID is required (and only one)");
    a->id = argv[optind];
    if (!deliveries_id_valid(a->id))
        return bad("a delivery ID is a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
    return 0;
}

/* A delivery of the admin functions (oc_admin_delivery_json) in this command's --json shape,
 * key by key (the functions' objects come in jsonb's key order). */
static json_t *cli_row(const json_t *d)
{
#define F(k) k, json_object_get(d, k)
    json_t *o = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", F("id"),
                          "paymentTxid", json_object_get(d, "payment"), F("merchant"),
                          F("state"), F("attempts"), F("nextAttemptAt"), F("leaseUntil"),
                          F("lastError"), F("worker"), F("createdAt"), F("updatedAt"));
    const json_t *log = json_object_get(d, "attemptLog");
    if (o && json_is_array(log)) {
        json_t *list = json_array();
        size_t i;
        const json_t *a;
        json_array_foreach(log, i, a) {
            json_t *e = json_pack("{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", F2(a, "attempt"),
                                  F2(a, "startedAtMs"), F2(a, "durationMs"),
                                  F2(a, "httpStatus"), F2(a, "error"), "excerpt",
                                  json_object_get(a, "responseExcerpt"));
            if (!list || json_array_append_new(list, e) != 0) {
                json_decref(list);
                list = NULL;
                break;
            }
        }
        if (!list || json_object_set_new(o, "attemptLog", list) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
#undef F
    return o;
}

/* "2026-01-02 03:04:05Z" from Unix seconds, or "-". */
static const char *utc(const json_t *obj, const char *key, char *out, size_t out_len)
{
    return ops_time_cell(obj, key, out, out_len);
}

static int print_list(const json_t *rows, int json)
{
    if (json)
        return ops_print_json(PROG, rows);
    printf("%-36s %-9s %-8s %-12s %-20s %s\n", "ID", "STATE", "ATTEMPTS", "MERCHANT",
           "UPDATED", "LAST ERROR");
    size_t i;
    const json_t *d;
    char c[6][OPS_CELL_MAX];
    json_array_foreach(rows, i, d) {
        printf("%-36s %-9s %-8s %-12s %-20s %.60s\n", ops_cell(d, "id", c[0], OPS_CELL_MAX),
               ops_cell(d, "state", c[1], OPS_CELL_MAX),
               ops_cell(d, "attempts", c[2], OPS_CELL_MAX),
               ops_cell(d, "merchant", c[3], OPS_CELL_MAX),
               utc(d, "updatedAt", c[4], OPS_CELL_MAX),
               ops_cell(d, "lastError", c[5], OPS_CELL_MAX));
    }
    return CLI_EXIT_OK;
}

static int print_show(const json_t *d, int json)
{
    if (json)
        return ops_print_json(PROG, d);
    char c[6][OPS_CELL_MAX];
    printf("id           %s\n", ops_cell(d, "id", c[0], OPS_CELL_MAX));
    printf("payment      %s\n", ops_cell(d, "paymentTxid", c[0], OPS_CELL_MAX));
    printf("merchant     %s\n", ops_cell(d, "merchant", c[0], OPS_CELL_MAX));
    const char *state = ops_cell(d, "state", c[1], OPS_CELL_MAX);
    printf("state        %s\n", state);
    printf("attempts     %s\n", ops_cell(d, "attempts", c[0], OPS_CELL_MAX));
    /* An in_flight row's next attempt time is its lease end (migrations/0003_delivery.sql);
     * a final row has none. */
    printf("%s %s\n", strcmp(state, "in_flight") == 0 ? "lease until " : "next attempt",
           strcmp(state, "pending") == 0 || strcmp(state, "in_flight") == 0
               ? utc(d, "nextAttemptAt", c[0], OPS_CELL_MAX)
               : "-");
    if (json_is_string(json_object_get(d, "worker")))
        printf("worker       %s\n", ops_cell(d, "worker", c[0], OPS_CELL_MAX));
    printf("last error   %s\n", ops_cell(d, "lastError", c[0], OPS_CELL_MAX));
    printf("created      %s\n", utc(d, "createdAt", c[0], OPS_CELL_MAX));
    printf("\n%-7s %-24s %-9s %-6s %s\n", "ATTEMPT", "STARTED", "DURATION", "HTTP", "ERROR");
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(d, "attemptLog"), i, a) {
        long long ms = (long long)json_integer_value(json_object_get(a, "startedAtMs"));
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        char when[32] = "-", started[48];
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(started, sizeof(started), "%s.%03lldZ", when, ms % 1000);
        char duration[40];
        snprintf(duration, sizeof(duration), "%sms", ops_cell(a, "durationMs", c[0],
                                                              OPS_CELL_MAX));
        printf("%-7s %-24s %-9s %-6s %s\n", ops_cell(a, "attempt", c[1], OPS_CELL_MAX), started,
               duration, ops_cell(a, "httpStatus", c[2], OPS_CELL_MAX),
               ops_cell(a, "error", c[3], OPS_CELL_MAX));
        if (json_is_string(json_object_get(a, "excerpt")))
            printf("        answer: %s\n", ops_cell(a, "excerpt", c[4], OPS_CELL_MAX));
    }
    return CLI_EXIT_OK;
}

/* list (newest first, up to a->limit) and show, on the database (conn) or through the admin
 * API (remote): the same SQL functions either way. */
static int show_deliveries(PGconn *conn, const OpsRemote *remote, int is_list, const Args *a)
{
    char err[512], target[1024], cursor[800] = "", merchant[24], limit[16];
    json_t *rows = json_array(), *doc = NULL;
    int r = 0, status = CLI_EXIT_FAILURE;
    snprintf(merchant, sizeof(merchant), "%" PRId64, a->merchant);
    if (!rows) {
        fprintf(stderr, PROG ": out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    do {
        int want = a->limit - (int)json_array_size(rows);
        snprintf(limit, sizeof(limit), "%d", want > ADMIN_LIST_MAX ? ADMIN_LIST_MAX : want);
        const char *params[5] = { a->state, a->merchant >= 0 ? merchant : NULL, "t",
                                  cursor[0] ? cursor : NULL, limit };
        if (conn) {
            r = is_list ? admin_run(conn, ADMIN_STMT_DELIVERIES, params, &doc, err, sizeof(err))
                        : admin_run(conn, ADMIN_STMT_DELIVERY, (const char *[]){ a->id }, &doc,
                                    err, sizeof(err));
        } else {
            if (is_list) {
                snprintf(target, sizeof(target), "/admin/v1/deliveries?order=newest");
                r = ops_query_add(target, sizeof(target), "state", params[0]) ||
                    ops_query_add(target, sizeof(target), "merchant", params[1]) ||
                    ops_query_add(target, sizeof(target), "cursor", params[3]) ||
                    ops_query_add(target, sizeof(target), "limit", params[4]);
            } else {
                r = snprintf(target, sizeof(target), "/admin/v1/deliveries/%s", a->id) < 0;
            }
            if (r == 0)
                r = ops_remote_call(remote, "GET", target, NULL, &doc, err, sizeof(err));
            else
                snprintf(err, sizeof(err), "the filters are too long");
        }
        if (r != 0)
            break;
        size_t i;
        const json_t *d;
        if (is_list) {
            json_array_foreach(json_object_get(doc, "items"), i, d)
                r |= json_array_append_new(rows, cli_row(d));
        } else {
            r = json_array_append_new(rows, cli_row(doc));
        }
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        snprintf(cursor, sizeof(cursor), "%s", next && is_list ? next : "");
        json_decref(doc);
        doc = NULL;
        if (r != 0) {
            r = -ENOMEM;
            snprintf(err, sizeof(err), "out of memory");
            break;
        }
    } while (cursor[0] && (int)json_array_size(rows) < a->limit);
    if (r == 0)
        status = is_list ? print_list(rows, a->json) : print_show(json_array_get(rows, 0), a->json);
    else if (!is_list && r == ADMIN_E_NOT_FOUND)
        fprintf(stderr, PROG " show: no delivery has id %s\n", a->id);
    else
        status = ops_admin_failure(is_list ? PROG " list" : PROG " show", r, err);
    json_decref(rows);
    return status;
}

int cli_delivery(int argc, char **argv)
{
    int status;
    const char *cmd = ops_command(argc, argv, delivery_usage, &status);
    if (!cmd)
        return status;
    int is_list = strcmp(cmd, "list") == 0, is_show = strcmp(cmd, "show") == 0;
    int is_retry = strcmp(cmd, "retry") == 0;
    if (!is_list && !is_show && !is_retry)
        return ops_unknown_command(PROG, cmd, delivery_usage);
    OpsRemote remote;
    if ((status = ops_remote_take(PROG, &argc, argv, &remote)) >= 0)
        return status;
    Args a;
    int r = parse_args(cmd, argc - 1, argv + 1, &a);
    if (r) {
        ops_remote_deinit(&remote);
        return r;
    }
    if (remote.on && !is_retry) {
        status = show_deliveries(NULL, &remote, is_list, &a);
        ops_remote_deinit(&remote);
        return status;
    }
    if (remote.on) {
        char target[128], err[512];
        json_t *doc = NULL;
        snprintf(target, sizeof(target), "/admin/v1/deliveries/%s/retry", a.id);
        r = ops_remote_call(&remote, "POST", target, NULL, &doc, err, sizeof(err));
        ops_remote_deinit(&remote);
        const char *result = json_string_value(json_object_get(doc, "result"));
        status = CLI_EXIT_FAILURE;
        if (r != 0) {
            fprintf(stderr, PROG " retry: %s\n", err);
        } else if (result && strcmp(result, "done") == 0) {
            printf("delivery %s is pending again; a running worker sends it within a second\n",
                   a.id);
            status = CLI_EXIT_OK;
        } else {
            char msg[OPS_CELL_MAX];
            fprintf(stderr, PROG " retry: %s\n", ops_cell(doc, "message", msg, sizeof(msg)));
        }
        json_decref(doc);
        return status;
    }

    PGconn *conn;
    if ((status = cli_db_open(PROG, &conn)) != CLI_EXIT_OK)
        return status;
    char err[512];
    status = CLI_EXIT_FAILURE;
    if (is_list || is_show) {
        status = show_deliveries(conn, NULL, is_list, &a);
    } else {
        char state[32] = "";
        r = deliveries_retry(conn, a.id, state, sizeof(state), err, sizeof(err));
        if (r == 0) {
            printf("delivery %s is pending again; a running worker sends it within a second\n",
                   a.id);
            status = CLI_EXIT_OK;
        } else if (r == DELIVERIES_E_NOT_FOUND) {
            fprintf(stderr, PROG " retry: no delivery has id %s\n", a.id);
        } else if (r == DELIVERIES_E_STATE) {
            fprintf(stderr, PROG " retry: delivery %s is %s; only dead or rejected deliveries "
                    "can be retried\n", a.id, state);
        } else {
            fprintf(stderr, PROG " retry: %s\n", err);
        }
    }
    PQfinish(conn);
    return status;
}
