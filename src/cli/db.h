/* Blocking database connection for CLI commands (never used on an event loop). The URL comes
 * from OCGATE_DATABASE_URL, the password, if any, from the file named by
 * OCGATE_DATABASE_PASSWORD_FILE: never from the command line. */
#pragma once

#include <libpq-fe.h>
#include <stddef.h>

/* Connects or prints why not (prefixed with prog) and returns NULL. *usage_error is set when
 * the fault is the caller's (no URL), so the command can exit 2 rather than 1. */
PGconn *cli_db_connect(const char *prog, int *usage_error);

/* Connects like cli_db_connect. Returns CLI_EXIT_OK with *conn set, or the exit status for
 * the failure (CLI_EXIT_USAGE when the fault is the caller's, else CLI_EXIT_FAILURE) with
 * *conn NULL. */
int cli_db_open(const char *prog, PGconn **conn);

/* Reads a secret (password) file: refused if it is not a regular file or group or others have
 * any access to it; not followed if it is a symbolic link; one trailing newline stripped.
 * Returns 0, -EACCES for the permissions, -E2BIG when it does not fit in out_len - 1 bytes,
 * or another negative errno. out is wiped on failure. */
int cli_read_password_file(const char *path, char *out, size_t out_len);
