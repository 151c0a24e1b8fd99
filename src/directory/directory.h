/* Participants: who may call ocgate, with which key and in which role (design.md,
 * "discovery"). The whole table is small, so each process holds it as an immutable,
 * reference-counted snapshot and swaps in a new one when the table's version changes
 * (checked on a short timer; a trigger bumps the version on every change), so every
 * instance sees a change within a second without a per-settlement NOTIFY. */
#pragma once

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/canon.h"
#include "proto/keys.h"
#include "store/pool.h"
#include "util/macro.h"

#define ROLE_SETTLEMENT_PROVIDER 0x1u
#define ROLE_PAYMENT_APP 0x2u
#define ROLE_MERCHANT 0x4u

typedef struct Participant {
    int64_t ocid;
    char *name;
    unsigned roles;          /* ROLE_* bits */
    PublicKey key;
    char public_key_hex[KEY_PUBLIC_HEX_LEN + 1];
    char *endpoint;          /* base URL or NULL */
    CanonForm form;
    bool enabled;
} Participant;

typedef struct DirSnapshot DirSnapshot;
typedef struct Directory Directory;

/* Thread-safe holder of the current snapshot. Free it after the pools that may still run its
 * queries. */
OC_MUST_CHECK Directory *directory_new(void);
void directory_free(Directory *dir);

/* Loads the table with a blocking connection (start-up and CLI only, never on a loop).
 * Returns 0, or -EIO with a message in err. */
OC_MUST_CHECK int directory_load_sync(Directory *dir, PGconn *conn, char *err, size_t err_len);

/* Starts checking the table's version every interval_ms on base through pool, reloading the
 * snapshot when it changed. The statements it needs are directory_statements[]; the pool must
 * have been created with them. */
OC_MUST_CHECK int directory_watch(Directory *dir, struct event_base *base, DbPool *pool,
                                  unsigned interval_ms);
/* Stops the watch timer; call on the watching loop's thread (or after it stopped) before
 * freeing its event_base and pool. directory_free does it too. */
void directory_unwatch(Directory *dir);
extern const DbStatement directory_statements[];
extern const size_t directory_statement_count;

/* Takes a reference to the current snapshot (never NULL after a successful load); release it
 * when done. Thread-safe. */
DirSnapshot *directory_acquire(Directory *dir);
void dirsnap_release(DirSnapshot *snap);

/* Lookups in a snapshot; the returned pointers live as long as the snapshot reference. */
const Participant *dirsnap_find(const DirSnapshot *snap, int64_t ocid);
/* Enabled participants having every bit of roles, in ascending OCID order. */
size_t dirsnap_count_with_role(const DirSnapshot *snap, unsigned roles);
const Participant *dirsnap_with_role_at(const DirSnapshot *snap, unsigned roles, size_t i);

/* "settlement_provider,merchant" ⇄ bits; parse returns -EINVAL for unknown names or none. */
OC_MUST_CHECK int roles_parse(const char *text, unsigned *out);
void roles_format(unsigned roles, char *out, size_t out_len);
