/* Schema migrations: the SQL files under migrations/ are embedded in the binary at build time
 * (migrations/embed.py) and applied in order, each in its own transaction, recorded with its
 * SHA-256 in schema_migrations, under an advisory lock so that instances starting together
 * never race. Uses libpq's blocking API: it runs from the CLI or at start-up, never on an
 * event loop. */
#pragma once

#include <libpq-fe.h>
#include <stddef.h>

#include "util/macro.h"

typedef struct Migration {
    int version;          /* 1, 2, ... without gaps */
    const char *name;     /* "core" for 0001_core.sql */
    const char *sql;      /* NUL-terminated file contents */
    size_t sql_len;
} Migration;

extern const Migration migrations_embedded[];
extern const size_t migrations_embedded_count;

typedef enum MigrateCode {
    MIGRATE_E_DB = 1,         /* the database refused a statement (message says which) */
    MIGRATE_E_CHECKSUM,       /* an applied migration's file changed since it was applied */
    MIGRATE_E_UNKNOWN,        /* the database has a migration this binary does not know */
    MIGRATE_E_BEHIND,         /* migrate_check: migrations remain to be applied */
} MigrateCode;

typedef void (*MigrateAppliedFn)(const Migration *m, void *userdata);

/* Applies every migration of list[0..n) not yet recorded, in order. Verifies the checksums of
 * those already applied first and refuses (MIGRATE_E_CHECKSUM / MIGRATE_E_UNKNOWN) before
 * changing anything. on_applied (may be NULL) is called after each commit. Returns 0 or a
 * MigrateCode with a message in err (always NUL-terminated). */
OC_MUST_CHECK int migrate_apply(PGconn *conn, const Migration *list, size_t n,
                                MigrateAppliedFn on_applied, void *userdata, char *err,
                                size_t err_len);

/* Checks without changing anything that the database has exactly list[0..n) applied with
 * matching checksums. Returns 0, or MIGRATE_E_BEHIND / _CHECKSUM / _UNKNOWN / _DB with a
 * message in err. *applied (may be NULL) receives the number of applied migrations. */
OC_MUST_CHECK int migrate_check(PGconn *conn, const Migration *list, size_t n, int *applied,
                                char *err, size_t err_len);
