/* The admin HTTP API (docs/admin-api.md): JSON endpoints for operators on their own listener
 * (admin_listen, default 127.0.0.1:8081), served by `ocgate serve` on a thread of its own with
 * its own event loop and database pool, so operator traffic never queues behind settlement.
 *
 * Callers are API clients (`ocgate client create`). Every request carries X-OCG-Client,
 * X-OCG-Timestamp (Unix seconds, within timestamp_window) and X-OCG-Signature = hex
 * HMAC-SHA256(secret, METHOD "\n" request-target "\n" timestamp "\n" sha256hex(body)). The
 * client's sealed secret is read from the database on every request (nothing is cached, so a
 * revocation takes effect with the next request), opened with the sealing key, used and
 * wiped. Each route needs one scope. Every POST is a mutation and needs an Idempotency-Key;
 * the operation and its idempotency record commit together (oc_admin_api_mutate). One JSON
 * log line per request, never with a body or a secret. Nothing blocks the loop. */
#pragma once

#include <stddef.h>

#include "conf/conf.h"
#include "util/macro.h"

typedef struct AdminApi AdminApi;

typedef struct AdminApiOptions {
    const Config *cfg;            /* borrowed; must outlive the API */
    const char *db_password;      /* NULL = none; copied, and the copy wiped on free */
} AdminApiOptions;

/* Loads the sealing key (cfg->admin_sealing_key_file, refusing a file group or others can
 * read), binds cfg->admin_listen (a host name is resolved here, blocking), and builds the
 * loop, its evhttp and its pool. Call after evthread_use_pthreads(), before any loop runs.
 * Returns 0 and *out, or a negative errno / positive SealCode with a one-line message in err. */
OC_MUST_CHECK int admin_api_new(const AdminApiOptions *options, AdminApi **out, char *err,
                                size_t err_len);

/* The bound address as "127.0.0.1:8081" or "[::1]:8081". */
void admin_api_address(const AdminApi *api, char *out, size_t out_len);

/* Starts the API's thread. Returns 0 or a negative errno. */
OC_MUST_CHECK int admin_api_start(AdminApi *api);

/* Stops accepting, ends the loop and joins the thread (from any other thread); answers still
 * owed are failed with 503 when the pool is freed. Accepts NULL and an API never started. */
void admin_api_stop(AdminApi *api);

/* Frees everything (stopping it first if needed) and wipes the sealing key. Accepts NULL. */
void admin_api_free(AdminApi *api);
