/* Operator functions (admin.h): the statement table shared with the admin API and blocking
 * wrappers for the CLI. Everything that decides anything lives in the SQL functions of
 * migrations/0004_operators.sql; this file only passes parameters and parses answers. */
#include "admin/admin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const DbStatement admin_statements[] = {
    [ADMIN_STMT_PAYMENTS] = { "admin_payments",
        "SELECT oc_admin_payments($1, $2::bigint, $3, $4::timestamptz, $5::timestamptz, $6, "
        "$7::integer)", 7 },
    [ADMIN_STMT_PAYMENT] = { "admin_payment", "SELECT oc_admin_payment($1)", 1 },
    [ADMIN_STMT_BALANCES] = { "admin_balances", "SELECT oc_admin_balances($1::bigint)", 1 },
    [ADMIN_STMT_LEDGER] = { "admin_ledger", "SELECT oc_admin_ledger($1, $2, $3::integer)", 3 },
    [ADMIN_STMT_EXCEPTIONS] = { "admin_exceptions",
        "SELECT oc_admin_exceptions($1, $2, $3, $4::integer)", 4 },
    [ADMIN_STMT_RESOLVE_EXCEPTION] = { "admin_resolve_exception",
        "SELECT oc_admin_resolve_exception($1::bigint, $2, $3, $4, $5, $6::bigint, $7::bigint)",
        7 },
    [ADMIN_STMT_LEDGER_CHECK] = { "admin_ledger_check", "SELECT oc_ledger_check()", 0 },
    [ADMIN_STMT_CLIENT_SECRET] = { "admin_client_secret", "SELECT oc_admin_client_secret($1)",
        1 },
    [ADMIN_STMT_DELIVERIES] = { "admin_deliveries",
        "SELECT oc_admin_deliveries($1, $2::bigint, $3::boolean, $4, $5::integer)", 5 },
    [ADMIN_STMT_DELIVERY] = { "admin_delivery", "SELECT oc_admin_delivery($1::uuid)", 1 },
    [ADMIN_STMT_PARTICIPANTS] = { "admin_participants",
        "SELECT oc_admin_participants($1, $2::integer)", 2 },
    [ADMIN_STMT_PARTICIPANT] = { "admin_participant", "SELECT oc_admin_participant($1::bigint)",
        1 },
    [ADMIN_STMT_API_MUTATE] = { "admin_api_mutate",
        "SELECT oc_admin_api_mutate($1, $2, $3, $4, $5::jsonb, $6::bigint, $7::bigint)", 7 },
    [ADMIN_STMT_CLIENT_CREATE] = { "admin_client_create",
        "SELECT oc_admin_client_create($1, $2, string_to_array($3, ','), $4::bytea, $5)", 5 },
    [ADMIN_STMT_CLIENTS] = { "admin_clients", "SELECT oc_admin_clients()", 0 },
    [ADMIN_STMT_CLIENT_REVOKE] = { "admin_client_revoke", "SELECT oc_admin_client_revoke($1, $2)",
        2 },
    [ADMIN_STMT_DELIVERY_RETRY] = { "admin_delivery_retry",
        "SELECT oc_admin_delivery_retry($1::uuid, $2)", 2 },
    [ADMIN_STMT_PARTICIPANT_PUT] = { "admin_participant_put",
        "SELECT oc_admin_participant_put($1::bigint, $2::boolean, $3::jsonb, $4)", 4 },
};

const char *const admin_scopes[] = {
    "payments:read", "balances:read", "exceptions:read", "exceptions:write",
    "deliveries:read", "deliveries:write", "participants:read", "participants:write", NULL,
};

bool admin_client_id_valid(const char *id)
{
    if (!id || strlen(id) != ADMIN_CLIENT_ID_LEN || strncmp(id, "ocgc_", 5) != 0)
        return false;
    for (const char *p = id + 5; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}
const size_t admin_statement_count = OC_ARRAY_LEN(admin_statements);

bool admin_sqlstate_is_invalid_input(const char *sqlstate)
{
    return sqlstate && strncmp(sqlstate, "22", 2) == 0;
}

/* Text of an int64 for a parameter, or NULL (SQL NULL) when negative = "not given". */
static const char *int_param(int64_t v, char buf[static 24])
{
    if (v < 0)
        return NULL;
    snprintf(buf, 24, "%" PRId64, v);
    return buf;
}

static const char *limit_param(int limit, char buf[static 24])
{
    return limit <= 0 ? NULL : int_param(limit, buf);
}

/* Runs statement id with params and parses its one jsonb cell into *out. A NULL cell is
 * ADMIN_E_NOT_FOUND. */
int admin_run(PGconn *conn, AdminStatementId id, const char *const *params, json_t **out,
              char *err, size_t err_len)
{
    const DbStatement *st = &admin_statements[id];
    PGresult *res = PQexecParams(conn, st->sql, st->n_params, NULL, params, NULL, NULL, 0);
    if (!res) {
        snprintf(err, err_len, "no answer from the database: %s", PQerrorMessage(conn));
        return ADMIN_E_DB;
    }
    int r;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (admin_sqlstate_is_invalid_input(state)) {
            snprintf(err, err_len, "%s", msg ? msg : "invalid input");
            r = ADMIN_E_INVALID;
        } else {
            /* An unknown function or table: the operator functions' migration is missing. */
            int schema = state && (strcmp(state, "42883") == 0 || strcmp(state, "42P01") == 0);
            snprintf(err, err_len, "the database refused it: %s%s",
                     msg ? msg : PQerrorMessage(conn),
                     schema ? " (is the schema current? run `ocgate migrate`)" : "");
            r = ADMIN_E_DB;
        }
        goto out;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        snprintf(err, err_len, "unexpected answer from %s (is the schema current?)", st->name);
        r = ADMIN_E_DB;
        goto out;
    }
    if (PQgetisnull(res, 0, 0)) {
        snprintf(err, err_len, "not found");
        r = ADMIN_E_NOT_FOUND;
        goto out;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, &jerr);
    if (!doc) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            snprintf(err, err_len, "out of memory");
            r = -ENOMEM;
        } else {
            snprintf(err, err_len, "unreadable answer from %s: %s", st->name, jerr.text);
            r = ADMIN_E_DB;
        }
        goto out;
    }
    *out = doc;
    r = 0;
out:
    PQclear(res);
    return r;
}

int admin_payments(PGconn *conn, const AdminPaymentFilter *f, json_t **out, char *err,
                   size_t err_len)
{
    char merchant[24], limit[24];
    const char *params[7] = { f->status, int_param(f->merchant, merchant), f->currency, f->from,
                              f->to, f->cursor, limit_param(f->limit, limit) };
    return admin_run(conn, ADMIN_STMT_PAYMENTS, params, out, err, err_len);
}

int admin_payment(PGconn *conn, const char *txid, json_t **out, char *err, size_t err_len)
{
    const char *params[1] = { txid };
    int r = admin_run(conn, ADMIN_STMT_PAYMENT, params, out, err, err_len);
    if (r == ADMIN_E_NOT_FOUND)
        snprintf(err, err_len, "no payment has txid %s", txid);
    return r;
}

int admin_balances(PGconn *conn, int64_t merchant, json_t **out, char *err, size_t err_len)
{
    char m[24];
    const char *params[1] = { int_param(merchant, m) };
    return admin_run(conn, ADMIN_STMT_BALANCES, params, out, err, err_len);
}

int admin_ledger(PGconn *conn, const char *account, const char *cursor, int limit,
                 json_t **out, char *err, size_t err_len)
{
    char l[24];
    const char *params[3] = { account, cursor, limit_param(limit, l) };
    return admin_run(conn, ADMIN_STMT_LEDGER, params, out, err, err_len);
}

int admin_exceptions(PGconn *conn, const AdminExceptionFilter *f, json_t **out, char *err,
                     size_t err_len)
{
    char l[24];
    const char *params[4] = { f->status, f->kind, f->cursor, limit_param(f->limit, l) };
    return admin_run(conn, ADMIN_STMT_EXCEPTIONS, params, out, err, err_len);
}

int admin_resolve_exception(PGconn *conn, const AdminResolve *rq, json_t **out, char *err,
                            size_t err_len)
{
    char id[24], gateway[24], now[24];
    const char *params[7] = { int_param(rq->exception_id, id), rq->action, rq->txid,
                              rq->reason, rq->actor, int_param(rq->gateway_ocid, gateway),
                              int_param(rq->now, now) };
    json_t *doc = NULL;
    int r = admin_run(conn, ADMIN_STMT_RESOLVE_EXCEPTION, params, &doc, err, err_len);
    if (r != 0)
        return r;
    if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "result"))) {
        json_decref(doc);
        snprintf(err, err_len, "unexpected answer from admin_resolve_exception");
        return ADMIN_E_DB;
    }
    *out = doc;
    return 0;
}

int admin_ledger_check(PGconn *conn, json_t **out, char *err, size_t err_len)
{
    json_t *doc = NULL;
    int r = admin_run(conn, ADMIN_STMT_LEDGER_CHECK, NULL, &doc, err, err_len);
    if (r != 0)
        return r;
    if (!json_is_array(doc)) {
        json_decref(doc);
        snprintf(err, err_len, "unexpected answer from admin_ledger_check");
        return ADMIN_E_DB;
    }
    *out = doc;
    return 0;
}
