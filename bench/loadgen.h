/* The load generator's shared state (loadgen.c drives the run; check.c verifies it
 * afterwards). One generator is one process with one libevent loop: a keep-alive HTTP client
 * towards the gateway and the merchant receiver that records every notification. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/keys.h"

#define LG_MAX_MERCHANTS 64

typedef enum ItemState {
    ITEM_NEW = 0,        /* nothing sent yet */
    ITEM_CREATE_FAILED,  /* /payment/create did not give a payment */
    ITEM_CREATED,        /* pending payment exists; webhook pre-signed */
    ITEM_SENT,           /* webhook on the wire */
    ITEM_OK,             /* 200 {"status":"accepted"} */
    ITEM_FAILED,         /* any other answer, or the connection broke: outcome unknown */
} ItemState;

/* One payment of the run, index i: reference "bench-<run>-<i>", proof txid "bt-<run>-<i>". */
typedef struct Item {
    char txid[48];           /* the gateway's payment txid */
    char *req;               /* the pre-built webhook request (line, headers, body) */
    size_t req_len;
    uint64_t t_sent_us;      /* monotonic */
    uint64_t t_done_us;
    uint64_t t_recv_us;      /* first notification received for it, 0 = none */
    unsigned received;       /* notifications received that verified and named it */
    int status;              /* HTTP status of the webhook answer, 0 = none */
    uint8_t state;
    uint8_t merchant;        /* index into LgOptions.merchants */
} Item;

/* One notification as received by the merchant receiver; verified after the run. */
typedef struct Received {
    uint64_t t_us;           /* monotonic */
    char *path;              /* request target as received */
    char *ocid, *timestamp, *nonce, *signature, *delivery_id;  /* NULL when missing */
    char *body;
    size_t body_len;
} Received;

typedef struct LgOptions {
    const char *host;            /* the gateway: 127.0.0.1 or ::1 */
    unsigned port;
    const char *base_path;
    int64_t gateway_ocid;
    PublicKey gateway_pub;
    int64_t app_ocid, provider_ocid, payer_ocid;
    PrivateKey app_key, provider_key;
    int64_t merchants[LG_MAX_MERCHANTS];
    size_t n_merchants;
    unsigned receiver_port;
    size_t n;                    /* payments */
    unsigned concurrency;
    double duration_s;           /* 0 = send all n */
    double drain_timeout_s;
    const char *currency;
    const char *amount;
    const char *db_conninfo;     /* NULL: no database checks (refused unless --no-db-check) */
    int server_pid;              /* 0 = no RSS/CPU figures */
    unsigned idle;               /* > 0: the idle keep-alive RSS measurement instead */
    double idle_hold_s;
    const char *label;
} LgOptions;

typedef struct LgRun {
    const LgOptions *opt;
    char run_id[17];
    Item *items;
    Received *recv;
    size_t n_recv, cap_recv;
    size_t n_sent, n_ok, n_errors;
    long queue_left;         /* lg_wait_queue: rows still pending/in_flight, -1 = not asked */
    long queue_waited_ms;
} LgRun;

/* Waits (blocking, at most 10 s) until none of the run's notification rows is pending or in
 * flight: the last answers were received, their outcomes are recorded just after. Called
 * while the receiver still runs, so no answer is cut off. Sets queue_left and
 * queue_waited_ms. */
void lg_wait_queue(LgRun *run);

/* Verifies every recorded notification (request signature, proof signature, fields) and
 * marks the items they name; then checks the database for the run's payments. Prints one
 * "check <name>: ok|FAILED ..." line per check on stdout. Returns the number of failed
 * checks. */
int lg_check_run(LgRun *run, double *lag_p99_ms);

/* The database's transaction commits (pg_stat_database) and WAL syncs (pg_stat_wal) so far,
 * as the statistics collector last published them. Returns 0 or -1. */
int lg_db_counters(const char *conninfo, double *commits, double *wal_syncs);

/* Microseconds on the monotonic clock. */
uint64_t lg_now_us(void);
