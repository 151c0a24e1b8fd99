/* Outbox SQL for operators (deliveries.h). */
#include "store/deliveries.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DELIVERY_COLUMNS                                                                    \
    "d.id, d.payment_txid, d.merchant_ocid, d.state, d.attempts, "                          \
    "extract(epoch FROM d.next_attempt_at)::bigint, "                                       \
    "extract(epoch FROM d.lease_until)::bigint, d.last_error, d.worker, "                   \
    "extract(epoch FROM d.created_at)::bigint, extract(epoch FROM d.updated_at)::bigint"

static int failed(PGresult *res, char *err, size_t err_len)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(err, err_len, "the database refused it: %s", msg ? msg : "unknown error");
    return DELIVERIES_E_DB;
}

static PGresult *checked(PGresult *res, char *err, size_t err_len)
{
    if (failed(res, err, err_len) != 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}

int deliveries_id_valid(const char *text)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (!text || strlen(text) != sizeof(shape) - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++) {
        char c = text[i];
        if (shape[i] == '-') {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

PGresult *deliveries_select(PGconn *conn, const DeliveryFilter *f, char *err, size_t err_len)
{
    char merchant[24], limit[16];
    snprintf(merchant, sizeof(merchant), "%" PRId64, f->merchant);
    snprintf(limit, sizeof(limit), "%d", f->limit);
    const char *params[3] = { f->state, merchant, limit };
    return checked(PQexecParams(conn,
        "SELECT " DELIVERY_COLUMNS " FROM deliveries d "
        "WHERE ($1::text IS NULL OR d.state = $1) "
        "AND ($2::bigint < 0 OR d.merchant_ocid = $2::bigint) "
        "ORDER BY d.created_at DESC, d.id LIMIT $3::integer",
        3, NULL, params, NULL, NULL, 0), err, err_len);
}

PGresult *deliveries_get(PGconn *conn, const char *id, char *err, size_t err_len)
{
    const char *params[1] = { id };
    return checked(PQexecParams(conn,
        "SELECT " DELIVERY_COLUMNS " FROM deliveries d WHERE d.id = $1::uuid",
        1, NULL, params, NULL, NULL, 0), err, err_len);
}

PGresult *deliveries_attempts(PGconn *conn, const char *id, char *err, size_t err_len)
{
    const char *params[1] = { id };
    return checked(PQexecParams(conn,
        "SELECT attempt, (extract(epoch FROM started_at) * 1000)::bigint, duration_ms, "
        "http_status, error, response_excerpt FROM delivery_attempts "
        "WHERE delivery_id = $1::uuid ORDER BY attempt",
        1, NULL, params, NULL, NULL, 0), err, err_len);
}

int deliveries_retry(PGconn *conn, const char *id, char *state, size_t state_len, char *err,
                     size_t err_len)
{
    const char *params[1] = { id };
    PGresult *res = PQexecParams(conn, "SELECT oc_delivery_retry($1::uuid)", 1, NULL, params,
                                 NULL, NULL, 0);
    int r = failed(res, err, err_len);
    int applied = r == 0 && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (r != 0 || applied)
        return r;
    /* Not replayed: say why. (A row that changed in between is reported as it is now.) */
    res = PQexecParams(conn, "SELECT state FROM deliveries WHERE id = $1::uuid", 1, NULL,
                       params, NULL, NULL, 0);
    r = failed(res, err, err_len);
    if (r == 0) {
        if (PQntuples(res) == 0) {
            r = DELIVERIES_E_NOT_FOUND;
        } else {
            snprintf(state, state_len, "%s", PQgetvalue(res, 0, 0));
            r = DELIVERIES_E_STATE;
        }
    }
    PQclear(res);
    return r;
}
