/* Blocking database connection for CLI commands (never used on an event loop). The URL comes
 * from OCGATE_DATABASE_URL, the password, if any, from the file named by
 * OCGATE_DATABASE_PASSWORD_FILE: never from the command line. */
#pragma once

#include <libpq-fe.h>

/* Connects or prints why not (prefixed with prog) and returns NULL. *usage_error is set when
 * the fault is the caller's (no URL), so the command can exit 2 rather than 1. */
PGconn *cli_db_connect(const char *prog, int *usage_error);
