/* Participant rows for operators (CLI now, admin API later): blocking libpq, never on an
 * event loop. The running servers pick every change up through the directory version. */
#pragma once

#include <libpq-fe.h>
#include <stdint.h>

#include "util/macro.h"

typedef enum ParticipantsCode {
    PARTICIPANTS_E_EXISTS = 1,   /* add: the OCID is taken */
    PARTICIPANTS_E_NOT_FOUND,    /* update/disable: no such OCID */
    PARTICIPANTS_E_DB,           /* anything else the database refused (message in err) */
} ParticipantsCode;

/* Field values as text, already validated by the caller; NULL = not given (update: keep). */
typedef struct ParticipantFields {
    const char *name;
    const char *roles_csv;       /* "settlement_provider,merchant" */
    const char *public_key_hex;  /* normalised 128-hex */
    const char *endpoint;
    int clear_endpoint;          /* update: set endpoint to NULL */
    const char *form;            /* "strict" | "legacy" */
    int enabled;                 /* -1 = not given, 0, 1 */
} ParticipantFields;

OC_MUST_CHECK int participants_insert(PGconn *conn, int64_t ocid, const ParticipantFields *f,
                                      char *err, size_t err_len);
OC_MUST_CHECK int participants_update(PGconn *conn, int64_t ocid, const ParticipantFields *f,
                                      char *err, size_t err_len);

/* Rows (ocid, name, roles csv, public_key, endpoint, canonical_form, enabled 't'/'f',
 * created_at, updated_at as Unix seconds) ordered by ocid; ocid < 0 = all. NULL with a message
 * in err on failure. PQclear the result. */
PGresult *participants_select(PGconn *conn, int64_t ocid, char *err, size_t err_len);
