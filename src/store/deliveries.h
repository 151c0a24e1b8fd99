/* The merchant notification outbox for operators (CLI now, admin API later): listing,
 * inspection with every attempt, and replay of dead or rejected notifications. Blocking
 * libpq, never on an event loop; a replayed row is picked up by a running worker within its
 * poll interval. */
#pragma once

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

#define DELIVERIES_MAX_LIST 10000

typedef enum DeliveriesCode {
    DELIVERIES_E_NOT_FOUND = 1,  /* no delivery has that id */
    DELIVERIES_E_STATE,          /* retry: the delivery is not dead or rejected */
    DELIVERIES_E_DB,             /* anything else the database refused (message in err) */
} DeliveriesCode;

typedef struct DeliveryFilter {
    const char *state;       /* NULL = any; else pending|in_flight|delivered|rejected|dead */
    int64_t merchant;        /* < 0 = any */
    int limit;               /* 1 .. DELIVERIES_MAX_LIST */
} DeliveryFilter;

/* Columns of deliveries_select and deliveries_get, in this order. Times are Unix seconds. */
enum {
    DELIVERY_COL_ID,
    DELIVERY_COL_PAYMENT,
    DELIVERY_COL_MERCHANT,
    DELIVERY_COL_STATE,
    DELIVERY_COL_ATTEMPTS,
    DELIVERY_COL_NEXT_ATTEMPT,
    DELIVERY_COL_LEASE_UNTIL,    /* NULL unless in_flight */
    DELIVERY_COL_LAST_ERROR,     /* may be NULL */
    DELIVERY_COL_WORKER,         /* may be NULL */
    DELIVERY_COL_CREATED,
    DELIVERY_COL_UPDATED,
    DELIVERY_COL_COUNT,
};

/* Columns of deliveries_attempts: attempt, started_at (Unix milliseconds), duration_ms,
 * http_status (may be NULL), error (may be NULL), response_excerpt (may be NULL). */
enum {
    ATTEMPT_COL_NUMBER,
    ATTEMPT_COL_STARTED_MS,
    ATTEMPT_COL_DURATION_MS,
    ATTEMPT_COL_HTTP_STATUS,
    ATTEMPT_COL_ERROR,
    ATTEMPT_COL_EXCERPT,
    ATTEMPT_COL_COUNT,
};

/* True when text is a UUID in its 8-4-4-4-12 hex form (either case). */
int deliveries_id_valid(const char *text);

/* Deliveries matching f, newest first. NULL with a message in err on failure; PQclear the
 * result. */
PGresult *deliveries_select(PGconn *conn, const DeliveryFilter *f, char *err, size_t err_len);

/* The delivery with that id (zero or one row). id must satisfy deliveries_id_valid. */
PGresult *deliveries_get(PGconn *conn, const char *id, char *err, size_t err_len);

/* Its attempts in order. */
PGresult *deliveries_attempts(PGconn *conn, const char *id, char *err, size_t err_len);

/* Makes a dead or rejected delivery pending and due now (oc_delivery_retry). Returns 0;
 * DELIVERIES_E_NOT_FOUND; DELIVERIES_E_STATE with its current state in state (which holds at
 * least 16 bytes); or DELIVERIES_E_DB with a message in err. */
OC_MUST_CHECK int deliveries_retry(PGconn *conn, const char *id, char *state, size_t state_len,
                                   char *err, size_t err_len);
