/* Applying and checking embedded schema migrations (migrate.h). */
#include "store/migrate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keys.h"

/* Arbitrary but fixed: every ocgate instance serialises migrations on this key. */
#define MIGRATE_LOCK_KEY "7234321974856233"

typedef struct Applied {
    int version;
    char checksum[65];
} Applied;

static void set_err(char *err, size_t err_len, const char *fmt, ...) OC_PRINTF(3, 4);
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Runs a statement that returns no rows; on failure formats the server's message. */
static int exec_ok(PGconn *conn, const char *sql, const char *what, char *err, size_t err_len)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        const char *msg = PQresultErrorMessage(res);
        set_err(err, err_len, "%s: %s", what, msg && *msg ? msg : PQerrorMessage(conn));
        size_t l = strlen(err);
        while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
            err[--l] = '\0';
    }
    PQclear(res);
    return ok ? 0 : MIGRATE_E_DB;
}

/* Reads schema_migrations (which may not exist yet: then zero rows). *out is malloc'd. */
static int read_applied(PGconn *conn, Applied **out, int *count, char *err, size_t err_len)
{
    *out = NULL;
    *count = 0;
    PGresult *res = PQexec(conn,
        "SELECT version, checksum FROM schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int missing = state && strcmp(state, "42P01") == 0; /* undefined_table */
        if (!missing)
            set_err(err, err_len, "reading schema_migrations: %s", PQresultErrorMessage(res));
        PQclear(res);
        return missing ? 0 : MIGRATE_E_DB;
    }
    int rows = PQntuples(res);
    Applied *list = calloc((size_t)rows + 1, sizeof(*list));
    if (!list) {
        PQclear(res);
        set_err(err, err_len, "out of memory");
        return MIGRATE_E_DB;
    }
    for (int i = 0; i < rows; i++) {
        list[i].version = atoi(PQgetvalue(res, i, 0));
        snprintf(list[i].checksum, sizeof(list[i].checksum), "%s", PQgetvalue(res, i, 1));
    }
    PQclear(res);
    *out = list;
    *count = rows;
    return 0;
}

/* Every applied row must be a known migration with an unchanged file. */
static int verify_applied(const Applied *applied, int count, const Migration *list, size_t n,
                          char *err, size_t err_len)
{
    for (int i = 0; i < count; i++) {
        int v = applied[i].version;
        if (v < 1 || (size_t)v > n || list[v - 1].version != v) {
            set_err(err, err_len,
                    "the database has migration %04d, which this ocgate does not know "
                    "(it knows %zu); use a newer ocgate", v, n);
            return MIGRATE_E_UNKNOWN;
        }
        char sum[65];
        sha256_hex(list[v - 1].sql, list[v - 1].sql_len, sum);
        if (strcmp(sum, applied[i].checksum) != 0) {
            set_err(err, err_len,
                    "migration %04d_%s was applied with checksum %.12s… but its file now has "
                    "%.12s…; applied migrations must never change — add a new one instead",
                    v, list[v - 1].name, applied[i].checksum, sum);
            return MIGRATE_E_CHECKSUM;
        }
    }
    return 0;
}

static int apply_one(PGconn *conn, const Migration *m, char *err, size_t err_len)
{
    char what[96];
    snprintf(what, sizeof(what), "migration %04d_%s", m->version, m->name);
    int r = exec_ok(conn, "BEGIN", what, err, err_len);
    if (r)
        return r;
    r = exec_ok(conn, m->sql, what, err, err_len);
    if (!r) {
        char sum[65], version[16];
        sha256_hex(m->sql, m->sql_len, sum);
        snprintf(version, sizeof(version), "%d", m->version);
        const char *params[3] = { version, m->name, sum };
        PGresult *res = PQexecParams(conn,
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            set_err(err, err_len, "%s: recording it: %s", what, PQresultErrorMessage(res));
            r = MIGRATE_E_DB;
        }
        PQclear(res);
    }
    if (!r)
        return exec_ok(conn, "COMMIT", what, err, err_len);
    PQclear(PQexec(conn, "ROLLBACK"));
    return r;
}

int migrate_apply(PGconn *conn, const Migration *list, size_t n, MigrateAppliedFn on_applied,
                  void *userdata, char *err, size_t err_len)
{
    err[0] = '\0';
    int r = exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                    "taking the migration lock", err, err_len);
    if (r)
        return r;
    r = exec_ok(conn,
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())",
        "creating schema_migrations", err, err_len);
    Applied *applied = NULL;
    int count = 0;
    if (!r)
        r = read_applied(conn, &applied, &count, err, err_len);
    if (!r)
        r = verify_applied(applied, count, list, n, err, err_len);
    for (size_t i = (size_t)count; !r && i < n; i++) {
        r = apply_one(conn, &list[i], err, err_len);
        if (!r && on_applied)
            on_applied(&list[i], userdata);
    }
    free(applied);
    char unlock_err[256];
    if (exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", "releasing the lock",
                unlock_err, sizeof(unlock_err)) && !r) {
        set_err(err, err_len, "%s", unlock_err);
        r = MIGRATE_E_DB;
    }
    return r;
}

int migrate_check(PGconn *conn, const Migration *list, size_t n, int *applied_out, char *err,
                  size_t err_len)
{
    err[0] = '\0';
    Applied *applied = NULL;
    int count = 0;
    int r = read_applied(conn, &applied, &count, err, err_len);
    if (!r)
        r = verify_applied(applied, count, list, n, err, err_len);
    free(applied);
    if (!r && (size_t)count < n) {
        set_err(err, err_len,
                "the database schema is behind: %d of %zu migrations applied; run "
                "`ocgate migrate`", count, n);
        r = MIGRATE_E_BEHIND;
    }
    if (applied_out)
        *applied_out = count;
    return r;
}
