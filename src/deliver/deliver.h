/* The delivery worker: takes due outbox rows (deliveries), signs the gateway proof fixed at
 * settlement with the gateway's current key in the merchant's canonical form, POSTs
 * {proof, signature} to <merchant endpoint>/transfer/webhook with X-OC-* headers plus
 * X-OC-Delivery-Id and X-OC-Delivery-Attempt, records the attempt and moves the row to
 * delivered, rejected, dead or back to pending with its next attempt time (design.md,
 * "outbound retries"). Rows are claimed with FOR UPDATE SKIP LOCKED under a lease, so any
 * number of workers on one database never send a delivery twice at once, and rows held by
 * a worker that died are taken again once the lease ends. Once a minute it also deletes the
 * records of attempts older than delivery_attempt_retention (design.md, "retention"). */
#pragma once

#include <event2/event.h>

#include "conf/conf.h"
#include "directory/directory.h"
#include "proto/keys.h"
#include "store/pool.h"
#include "util/macro.h"

typedef struct Deliverer Deliverer;

extern const DbStatement deliver_statements[];
extern const size_t deliver_statement_count;

/* Creates the worker on base, using pool (which must have deliver_statements prepared) and
 * its own HTTP client. Starts polling at cfg's interval. NULL on failure. */
OC_MUST_CHECK Deliverer *deliverer_new(struct event_base *base, DbPool *pool, const Config *cfg,
                                       const PrivateKey *gateway_key, Directory *directory);

/* Asks the worker to look for due rows now. Thread-safe: settlement calls it from any loop
 * right after a commit that enqueued a delivery (no NOTIFY per transaction). */
void deliverer_wake(Deliverer *d);

/* Stops claiming; waits for nothing: in-flight attempts are cancelled and their rows are
 * left in_flight, to be retaken when their lease ends. Frees the worker. Accepts NULL. */
void deliverer_free(Deliverer *d);
