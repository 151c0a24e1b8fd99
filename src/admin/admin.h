/* Operator functions (design.md "Shape of the code", admin/): payment, balance, ledger and
 * exception views, exception resolution and the ledger check. Each is one SQL function of
 * migrations/0004_operators.sql returning jsonb, so the CLI (these blocking wrappers, never
 * on an event loop) and the admin API (the same statements through the asynchronous pool,
 * admin_statements[]) run exactly the same operation.
 *
 * Lists answer {"items": [...], "next_cursor": text or null}; pass next_cursor back to get the
 * next page. Money is always a decimal string, times are Unix seconds. */
#pragma once

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/pool.h"
#include "util/macro.h"

/* Page sizes accepted by the list functions (0 in the structs below = the default). */
#define ADMIN_LIST_DEFAULT 50
#define ADMIN_LIST_MAX 1000
/* Longest resolution reason the database keeps. */
#define ADMIN_REASON_MAX 1000

typedef enum AdminCode {
    ADMIN_E_INVALID = 1,  /* the database refused an input value (bad filter, limit, cursor,
                             time): SQLSTATE class 22; the message in err is for the operator */
    ADMIN_E_NOT_FOUND,    /* admin_payment: no such payment */
    ADMIN_E_DB,           /* anything else went wrong (connection, server error, bad answer) */
} AdminCode;

/* The statements, for the API's pool: name, SQL text and parameter count. Every statement
 * answers one row with one column, the jsonb document as text (NULL only for admin_payment of
 * an unknown txid). Parameters, in order (text format; NULL = SQL NULL = "not given"):
 *   admin_payments           status, merchant OCID, currency, from (timestamptz text,
 *                            inclusive), to (exclusive), cursor, limit
 *   admin_payment            txid
 *   admin_balances           merchant OCID
 *   admin_ledger             account, cursor, limit
 *   admin_exceptions         status, kind, cursor, limit
 *   admin_resolve_exception  exception id, action (attach|refund|dismiss), payment txid
 *                            (attach), reason, actor, gateway OCID, now (Unix seconds)
 *   admin_ledger_check       (none)
 *   admin_client_secret      client id   (the API's authentication: {scopes, sealed hex})
 *   admin_deliveries         state, merchant OCID, newest first (bool), cursor, limit
 *   admin_delivery           delivery id (uuid)
 *   admin_participants       cursor, limit
 *   admin_participant        OCID
 *   admin_api_mutate         client id, Idempotency-Key, request hash, operation, arguments
 *                            (jsonb), gateway OCID, now  ({status, body, replayed})
 *   admin_client_create      client id, name, scopes (text[] literal), sealed (bytea hex
 *                            "\x..."), actor
 *   admin_clients            (none)
 *   admin_client_revoke      client id, actor
 *   admin_delivery_retry     delivery id, actor
 *   admin_participant_put    OCID, create (bool), fields (jsonb), actor
 * Input errors of the lists come back as SQLSTATE 22023 (or 22007/22008 for a timestamp);
 * resolution refusals are answers ({"result": ...}), never errors. */
typedef enum AdminStatementId {
    ADMIN_STMT_PAYMENTS,
    ADMIN_STMT_PAYMENT,
    ADMIN_STMT_BALANCES,
    ADMIN_STMT_LEDGER,
    ADMIN_STMT_EXCEPTIONS,
    ADMIN_STMT_RESOLVE_EXCEPTION,
    ADMIN_STMT_LEDGER_CHECK,
    ADMIN_STMT_CLIENT_SECRET,
    ADMIN_STMT_DELIVERIES,
    ADMIN_STMT_DELIVERY,
    ADMIN_STMT_PARTICIPANTS,
    ADMIN_STMT_PARTICIPANT,
    ADMIN_STMT_API_MUTATE,
    ADMIN_STMT_CLIENT_CREATE,
    ADMIN_STMT_CLIENTS,
    ADMIN_STMT_CLIENT_REVOKE,
    ADMIN_STMT_DELIVERY_RETRY,
    ADMIN_STMT_PARTICIPANT_PUT,
} AdminStatementId;

extern const DbStatement admin_statements[];   /* indexed by AdminStatementId */
extern const size_t admin_statement_count;

/* Whether a failed statement's SQLSTATE means the caller's input was refused (class 22). */
bool admin_sqlstate_is_invalid_input(const char *sqlstate);

typedef struct AdminPaymentFilter {
    const char *status;     /* pending_settlement | pending | expired | completed; NULL = all */
    int64_t merchant;       /* < 0 = all */
    const char *currency;   /* NULL = all */
    const char *from;       /* timestamptz text, created_at >= from; NULL = no bound */
    const char *to;         /* created_at < to; NULL = no bound */
    const char *cursor;     /* next_cursor of the previous page; NULL = first page */
    int limit;              /* 0 = ADMIN_LIST_DEFAULT */
} AdminPaymentFilter;

typedef struct AdminExceptionFilter {
    const char *status;     /* open | attached | refunded | dismissed; NULL = all */
    const char *kind;       /* unmatched | amount_mismatch | currency_mismatch | late |
                               duplicate_payment; NULL = all */
    const char *cursor;
    int limit;
} AdminExceptionFilter;

typedef struct AdminResolve {
    int64_t exception_id;
    const char *action;     /* "attach" | "refund" | "dismiss" */
    const char *txid;       /* attach: the pending payment to complete; else NULL */
    const char *reason;     /* required for dismiss; NULL = none */
    const char *actor;      /* who: the OS user (CLI), the client id (API); 1..200 chars */
    int64_t gateway_ocid;   /* attach: issuer of the gateway proof; < 0 = not known */
    int64_t now;            /* Unix seconds of the resolution */
} AdminResolve;

/* Each function runs its statement on conn (blocking) and on success returns 0 with *out set
 * to the parsed answer (a new reference: json_decref it). On failure *out is untouched and a
 * one-line message is in err: a positive AdminCode, or -ENOMEM. */

/* {"items": [payment...], "next_cursor"} ordered by (created_at, txid). */
OC_MUST_CHECK int admin_payments(PGconn *conn, const AdminPaymentFilter *f, json_t **out,
                                 char *err, size_t err_len);
/* {"payment", "proofs", "exceptions", "ledger", "delivery"}; ADMIN_E_NOT_FOUND if none. */
OC_MUST_CHECK int admin_payment(PGconn *conn, const char *txid, json_t **out, char *err,
                                size_t err_len);
/* {"merchants": [{merchant, currency, balance, entries}], "suspense": [{currency, balance}],
 *  "refundsPayable": [...], "clearing": [{provider, currency, balance}]}; merchant < 0 = all. */
OC_MUST_CHECK int admin_balances(PGconn *conn, int64_t merchant, json_t **out, char *err,
                                 size_t err_len);
/* {"items": [entry...], "next_cursor"} ordered by entry id; account NULL = every account. */
OC_MUST_CHECK int admin_ledger(PGconn *conn, const char *account, const char *cursor,
                               int limit, json_t **out, char *err, size_t err_len);
/* {"items": [exception...], "next_cursor"} ordered by id. */
OC_MUST_CHECK int admin_exceptions(PGconn *conn, const AdminExceptionFilter *f, json_t **out,
                                   char *err, size_t err_len);
/* Resolves an exception atomically and idempotently and records the call in admin_audit.
 * Returns 0 whenever the database answered, refusals included: *out is {"result": "done" |
 * "already_done" | "not_found" | "invalid_state" | "mismatch" | "reason_required" |
 * "bad_request", "message"?, "exception"?, "ledgerTx"?, "payment"?, "deliveryId"?}. */
OC_MUST_CHECK int admin_resolve_exception(PGconn *conn, const AdminResolve *r, json_t **out,
                                          char *err, size_t err_len);
/* [{"invariant": "I1".."I3", "rule", "detail"}...], empty when the ledger is consistent. */
OC_MUST_CHECK int admin_ledger_check(PGconn *conn, json_t **out, char *err, size_t err_len);

/* Runs any statement of admin_statements with its text parameters (blocking) and parses its
 * one jsonb cell, as the functions above do: 0 with *out, ADMIN_E_NOT_FOUND for a NULL cell,
 * ADMIN_E_INVALID for input the database refused, ADMIN_E_DB, -ENOMEM. */
OC_MUST_CHECK int admin_run(PGconn *conn, AdminStatementId id, const char *const *params,
                            json_t **out, char *err, size_t err_len);

/* API clients (`ocgate client`). Scopes a client may hold, NULL-terminated. */
extern const char *const admin_scopes[];
/* Client ids: "ocgc_" and 24 lowercase hex digits. Secrets: 64 lowercase hex digits, used as
 * the HMAC key exactly as printed. */
#define ADMIN_CLIENT_ID_LEN 29
#define ADMIN_CLIENT_SECRET_LEN 64
bool admin_client_id_valid(const char *id);
