/* Participant SQL for operators (participants.h). */
#include "store/participants.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int result_code(PGresult *res, char *err, size_t err_len)
{
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return 0;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state && strcmp(state, "23505") == 0) {
        snprintf(err, err_len, "a participant with this OCID already exists");
        return PARTICIPANTS_E_EXISTS;
    }
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(err, err_len, "the database refused it: %s", msg ? msg : "unknown error");
    return PARTICIPANTS_E_DB;
}

int participants_insert(PGconn *conn, int64_t ocid, const ParticipantFields *f, char *err,
                        size_t err_len)
{
    char ocid_text[24];
    snprintf(ocid_text, sizeof(ocid_text), "%" PRId64, ocid);
    const char *params[7] = { ocid_text, f->name, f->roles_csv, f->public_key_hex, f->endpoint,
                              f->form ? f->form : "strict", f->enabled == 0 ? "f" : "t" };
    PGresult *res = PQexecParams(conn,
        "INSERT INTO participants (ocid, name, roles, public_key, endpoint, canonical_form, "
        "enabled) VALUES ($1::bigint, $2, string_to_array($3, ','), $4, $5, $6, $7::boolean)",
        7, NULL, params, NULL, NULL, 0);
    int r = result_code(res, err, err_len);
    PQclear(res);
    return r;
}

int participants_update(PGconn *conn, int64_t ocid, const ParticipantFields *f, char *err,
                        size_t err_len)
{
    char ocid_text[24];
    snprintf(ocid_text, sizeof(ocid_text), "%" PRId64, ocid);
    const char *enabled = f->enabled < 0 ? NULL : (f->enabled ? "t" : "f");
    const char *params[8] = { ocid_text, f->name, f->roles_csv, f->public_key_hex,
                              f->endpoint, f->clear_endpoint ? "t" : "f", f->form, enabled };
    PGresult *res = PQexecParams(conn,
        "UPDATE participants SET name = COALESCE($2, name), "
        "roles = COALESCE(string_to_array($3, ','), roles), "
        "public_key = COALESCE($4, public_key), "
        "endpoint = CASE WHEN $6::boolean THEN NULL ELSE COALESCE($5, endpoint) END, "
        "canonical_form = COALESCE($7, canonical_form), "
        "enabled = COALESCE($8::boolean, enabled), updated_at = now() "
        "WHERE ocid = $1::bigint",
        8, NULL, params, NULL, NULL, 0);
    int r = result_code(res, err, err_len);
    if (r == 0 && strcmp(PQcmdTuples(res), "0") == 0) {
        snprintf(err, err_len, "no participant has OCID %" PRId64, ocid);
        r = PARTICIPANTS_E_NOT_FOUND;
    }
    PQclear(res);
    return r;
}

PGresult *participants_select(PGconn *conn, int64_t ocid, char *err, size_t err_len)
{
    char ocid_text[24];
    snprintf(ocid_text, sizeof(ocid_text), "%" PRId64, ocid);
    const char *params[1] = { ocid_text };
    PGresult *res = PQexecParams(conn,
        "SELECT ocid, name, array_to_string(roles, ','), public_key, endpoint, canonical_form, "
        "enabled, extract(epoch FROM created_at)::bigint, "
        "extract(epoch FROM updated_at)::bigint FROM participants "
        "WHERE $1::bigint < 0 OR ocid = $1::bigint ORDER BY ocid",
        1, NULL, params, NULL, NULL, 0);
    if (result_code(res, err, err_len) != 0) {
        PQclear(res);
        return NULL;
    }
    return res;
}
