/* Shared by the operator commands (`ocgate payment|balance|exception|ledger`, src/cli/
 * payment.c, balance.c, exception.c, ledger.c): option parsing, table cells and --json output.
 * The commands call src/admin/ (the same operations the admin API runs) over one blocking
 * connection. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/macro.h"

/* Exit status of `ocgate ledger check` when it found violations (cli.h has 0, 1 and 2). */
#define CLI_EXIT_VIOLATIONS 3

/* Room for one table cell (ops_cell): longer values are cut with "...". */
#define OPS_CELL_MAX 256

/* Prints "<prog>: <what>" on stderr and returns CLI_EXIT_USAGE. */
int ops_usage_error(const char *prog, const char *what);

/* Maps an admin_* failure to an exit status after printing "<prog>: <err>": 2 for input the
 * database refused (ADMIN_E_INVALID), else 1. */
int ops_admin_failure(const char *prog, int code, const char *err);

/* The command in argv[1] (`ocgate <group> <command> ...`). Returns it; or NULL with *status
 * set after printing the usage: on stderr when there is none (CLI_EXIT_USAGE), on stdout for
 * "help" or "--help" (CLI_EXIT_OK). */
const char *ops_command(int argc, char **argv, void (*usage)(FILE *), int *status);
/* Prints "<prog>: unknown command '<cmd>'" and the usage on stderr; returns CLI_EXIT_USAGE. */
int ops_unknown_command(const char *prog, const char *cmd, void (*usage)(FILE *));

/* Decimal OCID 0..2^53-1; 0 or -1. */
OC_MUST_CHECK int ops_parse_ocid(const char *s, int64_t *out);
/* Page size 1..ADMIN_LIST_MAX; 0 or -1. */
OC_MUST_CHECK int ops_parse_limit(const char *s, int *out);
/* A time bound: Unix seconds (digits) become ISO 8601 UTC text in buf; anything else up to
 * 64 bytes of printable ASCII is passed through for PostgreSQL to read as timestamptz
 * ("2026-01-31", "2026-01-31T12:00:00Z"). Returns the text to pass, or NULL if unusable. */
const char *ops_time_param(const char *s, char *buf, size_t buf_len);

/* Prints doc as one line of compact JSON (keys in the database's order) on stdout; returns
 * CLI_EXIT_OK, or CLI_EXIT_FAILURE with a message if it cannot be serialised. */
int ops_print_json(const char *prog, const json_t *doc);

/* doc as --json (ops_print_json) when json is set, else as a table (print); returns the exit
 * status. doc stays the caller's. */
int ops_output(const char *prog, const json_t *doc, int json, void (*print)(const json_t *));

/* ops_print_json for a document just built (an object or an array), which it takes and frees:
 * NULL (a failed allocation) prints "<prog>: out of memory" and returns CLI_EXIT_FAILURE. */
int ops_print_json_new(const char *prog, json_t *doc);

/* obj[key] as text for a table, in buf: strings with control characters replaced by '?'
 * (the values come from providers and payers; a terminal must not interpret them), integers
 * in decimal, booleans as yes/no, absent or null as "-". Always returns buf. */
const char *ops_cell(const json_t *obj, const char *key, char *buf, size_t buf_len);
/* obj[key] (Unix seconds) as "2026-01-02 03:04:05Z", or "-". Always returns buf. */
const char *ops_time_cell(const json_t *obj, const char *key, char *buf, size_t buf_len);

/* Prints the hint for the next page of a list answer, if there is one. */
void ops_print_next(const json_t *page, const char *command);

/* The OS user running the command, for the audit trail: the name of the effective uid, or
 * "uid:N" when it has none. */
void ops_os_actor(char *buf, size_t buf_len);

/* Remote mode: `--admin-url URL --client ID --client-secret-file PATH` on an operator command
 * sends it to an admin API (docs/admin-api.md) instead of the database, with the same output.
 * The secret is read from the file (refused if group or others may read it), never from the
 * command line, only for the moment a request is signed, and wiped right after. */
typedef struct OpsRemote {
    int on;
    const char *url;
    const char *client;
    const char *secret_file;
} OpsRemote;

/* Takes the three remote options (as "--opt value" or "--opt=value") out of argv, shifting
 * the rest down and updating *argc, and checks that the secret file is usable. Returns -1 to
 * go on (r->on set when the options were given), or an exit status after printing why:
 * CLI_EXIT_USAGE when only some of them were given, or the secret file is unusable. */
int ops_remote_take(const char *prog, int *argc, char **argv, OpsRemote *r);
/* Forgets the options (nothing secret is held). */
void ops_remote_deinit(OpsRemote *r);

/* Lines for a command's usage text. */
#define OPS_REMOTE_USAGE                                                                    \
    "remote: --admin-url http://HOST:PORT --client ID --client-secret-file PATH sends the\n" \
    "        command to an admin API instead of the database (same output)\n"

/* Appends value percent-encoded (everything but A-Z a-z 0-9 - _ . ~) to the string in out.
 * Returns 0, or -1 when it does not fit. */
int ops_url_append(char *out, size_t out_len, const char *value);
/* Appends "&key=value" (the first one as "?") to target, value URL-encoded; NULL value =
 * nothing. Returns 0, or -1 when it does not fit. */
int ops_query_add(char *target, size_t target_len, const char *key, const char *value);

/* Calls the admin API (method GET or POST; body NULL = none; a POST gets a fresh random
 * Idempotency-Key). Like the admin_* functions: 0 with *out (the answer; for a refusal that
 * names a "result", the answer with its "message", as the database mode gives it), or a
 * positive AdminCode (ADMIN_E_INVALID for 400, ADMIN_E_NOT_FOUND for 404, else ADMIN_E_DB)
 * or negative errno with "CODE: message" in err. */
int ops_remote_call(const OpsRemote *r, const char *method, const char *target, const char *body,
                    json_t **out, char *err, size_t err_len);
