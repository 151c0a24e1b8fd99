/* `ocgate delivery list|show|retry`: the operator's view of merchant notifications (the
 * outbox; design.md, "outbound retries"). `retry` replays a dead or rejected notification:
 * it becomes pending and due now, a running worker sends it within its poll interval, and a
 * failure of that one attempt makes it dead again. Exit status 0, 1 (failure, not found, not
 * replayable), 2 (usage). */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/db.h"
#include "cli/ops.h"
#include "proto/sigstr.h"
#include "store/deliveries.h"

#define PROG "ocgate delivery"
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
          "        (retry only; list and show read the database)\n"
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

static json_int_t int_at(const PGresult *res, int row, int col)
{
    return (json_int_t)strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* NULL-aware helpers for json_pack's "s?" / "o?". */
static const char *text_at(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static json_t *int_or_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_integer(int_at(res, row, col));
}

static json_t *delivery_json(const PGresult *res, int i)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:i,s:I,s:o,s:s?,s:s?,s:I,s:I}",
                     "id", PQgetvalue(res, i, DELIVERY_COL_ID),
                     "paymentTxid", PQgetvalue(res, i, DELIVERY_COL_PAYMENT),
                     "merchant", int_at(res, i, DELIVERY_COL_MERCHANT),
                     "state", PQgetvalue(res, i, DELIVERY_COL_STATE),
                     "attempts", (int)int_at(res, i, DELIVERY_COL_ATTEMPTS),
                     "nextAttemptAt", int_at(res, i, DELIVERY_COL_NEXT_ATTEMPT),
                     "leaseUntil", int_or_null(res, i, DELIVERY_COL_LEASE_UNTIL),
                     "lastError", text_at(res, i, DELIVERY_COL_LAST_ERROR),
                     "worker", text_at(res, i, DELIVERY_COL_WORKER),
                     "createdAt", int_at(res, i, DELIVERY_COL_CREATED),
                     "updatedAt", int_at(res, i, DELIVERY_COL_UPDATED));
}

static json_t *attempt_json(const PGresult *res, int i)
{
    return json_pack("{s:i,s:I,s:i,s:o,s:s?,s:s?}",
                     "attempt", (int)int_at(res, i, ATTEMPT_COL_NUMBER),
                     "startedAtMs", int_at(res, i, ATTEMPT_COL_STARTED_MS),
                     "durationMs", (int)int_at(res, i, ATTEMPT_COL_DURATION_MS),
                     "httpStatus", int_or_null(res, i, ATTEMPT_COL_HTTP_STATUS),
                     "error", text_at(res, i, ATTEMPT_COL_ERROR),
                     "excerpt", text_at(res, i, ATTEMPT_COL_EXCERPT));
}

/* "2026-01-02 03:04:05Z" from Unix seconds text. */
static const char *utc(const char *unix_text, char *out, size_t out_len)
{
    time_t t = (time_t)strtoll(unix_text, NULL, 10);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, out_len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(out, out_len, "%s", unix_text);
    return out;
}

static int print_list(const PGresult *res, int json)
{
    int rows = PQntuples(res);
    if (json) {
        json_t *out = json_array();
        for (int i = 0; out && i < rows; i++)
            if (json_array_append_new(out, delivery_json(res, i)) != 0) {
                json_decref(out);
                out = NULL;
            }
        return ops_print_json_new(PROG, out);
    }
    printf("%-36s %-9s %-8s %-12s %-20s %s\n", "ID", "STATE", "ATTEMPTS", "MERCHANT",
           "UPDATED", "LAST ERROR");
    for (int i = 0; i < rows; i++) {
        char when[32];
        printf("%-36s %-9s %-8s %-12s %-20s %.60s\n", PQgetvalue(res, i, DELIVERY_COL_ID),
               PQgetvalue(res, i, DELIVERY_COL_STATE), PQgetvalue(res, i, DELIVERY_COL_ATTEMPTS),
               PQgetvalue(res, i, DELIVERY_COL_MERCHANT),
               utc(PQgetvalue(res, i, DELIVERY_COL_UPDATED), when, sizeof(when)),
               PQgetisnull(res, i, DELIVERY_COL_LAST_ERROR)
                   ? "-"
                   : PQgetvalue(res, i, DELIVERY_COL_LAST_ERROR));
    }
    return CLI_EXIT_OK;
}

static int print_show(const PGresult *d, const PGresult *att, int json)
{
    int n = PQntuples(att);
    if (json) {
        json_t *out = delivery_json(d, 0);
        json_t *list = json_array();
        for (int i = 0; out && list && i < n; i++)
            if (json_array_append_new(list, attempt_json(att, i)) != 0) {
                json_decref(list);
                list = NULL;
            }
        if (!out || !list || json_object_set_new(out, "attemptLog", list) != 0) {
            json_decref(out);
            out = NULL;
        }
        return ops_print_json_new(PROG, out);
    }
    char when[32];
    printf("id           %s\n", PQgetvalue(d, 0, DELIVERY_COL_ID));
    printf("payment      %s\n", PQgetvalue(d, 0, DELIVERY_COL_PAYMENT));
    printf("merchant     %s\n", PQgetvalue(d, 0, DELIVERY_COL_MERCHANT));
    printf("state        %s\n", PQgetvalue(d, 0, DELIVERY_COL_STATE));
    printf("attempts     %s\n", PQgetvalue(d, 0, DELIVERY_COL_ATTEMPTS));
    const char *state = PQgetvalue(d, 0, DELIVERY_COL_STATE);
    /* An in_flight row's next attempt time is its lease end (migrations/0003_delivery.sql);
     * a final row has none. */
    printf("%s %s\n", strcmp(state, "in_flight") == 0 ? "lease until " : "next attempt",
           strcmp(state, "pending") == 0 || strcmp(state, "in_flight") == 0
               ? utc(PQgetvalue(d, 0, DELIVERY_COL_NEXT_ATTEMPT), when, sizeof(when))
               : "-");
    if (!PQgetisnull(d, 0, DELIVERY_COL_WORKER))
        printf("worker       %s\n", PQgetvalue(d, 0, DELIVERY_COL_WORKER));
    printf("last error   %s\n", PQgetisnull(d, 0, DELIVERY_COL_LAST_ERROR)
                                    ? "-"
                                    : PQgetvalue(d, 0, DELIVERY_COL_LAST_ERROR));
    printf("created      %s\n", utc(PQgetvalue(d, 0, DELIVERY_COL_CREATED), when,
                                    sizeof(when)));
    printf("\n%-7s %-24s %-9s %-6s %s\n", "ATTEMPT", "STARTED", "DURATION", "HTTP", "ERROR");
    for (int i = 0; i < n; i++) {
        long long ms = strtoll(PQgetvalue(att, i, ATTEMPT_COL_STARTED_MS), NULL, 10);
        char secs[24];
        snprintf(secs, sizeof(secs), "%lld", ms / 1000);
        utc(secs, when, sizeof(when));
        when[strlen(when) - 1] = '\0'; /* drop the Z to put the milliseconds before it */
        char started[40];
        snprintf(started, sizeof(started), "%s.%03lldZ", when, ms % 1000);
        char duration[24];
        snprintf(duration, sizeof(duration), "%sms", PQgetvalue(att, i, ATTEMPT_COL_DURATION_MS));
        printf("%-7s %-24s %-9s %-6s %s\n", PQgetvalue(att, i, ATTEMPT_COL_NUMBER), started,
               duration,
               PQgetisnull(att, i, ATTEMPT_COL_HTTP_STATUS)
                   ? "-"
                   : PQgetvalue(att, i, ATTEMPT_COL_HTTP_STATUS),
               PQgetisnull(att, i, ATTEMPT_COL_ERROR) ? "-"
                                                       : PQgetvalue(att, i, ATTEMPT_COL_ERROR));
        if (!PQgetisnull(att, i, ATTEMPT_COL_EXCERPT))
            printf("        answer: %s\n", PQgetvalue(att, i, ATTEMPT_COL_EXCERPT));
    }
    return CLI_EXIT_OK;
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
    if (r || (remote.on && !is_retry)) {
        ops_remote_deinit(&remote);
        return r ? r : ops_usage_error(PROG, "remote mode offers only retry (the API's "
                                       "GET /admin/v1/deliveries lists and shows)");
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
    if (is_list) {
        DeliveryFilter f = { .state = a.state, .merchant = a.merchant, .limit = a.limit };
        PGresult *res = deliveries_select(conn, &f, err, sizeof(err));
        if (!res)
            fprintf(stderr, PROG " list: %s\n", err);
        else
            status = print_list(res, a.json);
        PQclear(res);
    } else if (is_show) {
        PGresult *res = deliveries_get(conn, a.id, err, sizeof(err));
        PGresult *att = res && PQntuples(res) == 1 ? deliveries_attempts(conn, a.id, err,
                                                                         sizeof(err))
                                                   : NULL;
        if (!res || (PQntuples(res) == 1 && !att))
            fprintf(stderr, PROG " show: %s\n", err);
        else if (PQntuples(res) == 0)
            fprintf(stderr, PROG " show: no delivery has id %s\n", a.id);
        else
            status = print_show(res, att, a.json);
        PQclear(att);
        PQclear(res);
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
