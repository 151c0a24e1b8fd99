/* CLI database connection (db.h). */
#include "cli/db.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/pool.h"
#include "util/secret_file.h"

int cli_read_password_file(const char *path, char *out, size_t out_len)
{
    size_t got;
    /* One byte is kept for the terminating NUL. */
    int r = secret_file_read(path, out, out_len - 1, &got);
    switch (r) {
    case 0:
        break;
    case SECRET_FILE_NOT_REGULAR:
        return -EINVAL;
    case SECRET_FILE_LOOSE_MODE:
        return -EACCES;
    case SECRET_FILE_TOO_BIG:
        return -E2BIG;
    default:
        return r;
    }
    out[got] = '\0';
    if (got > 0 && out[got - 1] == '\n')
        out[got - 1] = '\0';
    return 0;
}

PGconn *cli_db_connect(const char *prog, int *usage_error)
{
    *usage_error = 0;
    const char *url = getenv("OCGATE_DATABASE_URL");
    if (!url || !*url) {
        fprintf(stderr, "%s: OCGATE_DATABASE_URL is not set\n", prog);
        *usage_error = 1;
        return NULL;
    }
    char password[512] = "";
    const char *pwfile = getenv("OCGATE_DATABASE_PASSWORD_FILE");
    if (pwfile && *pwfile) {
        int r = cli_read_password_file(pwfile, password, sizeof(password));
        if (r != 0) {
            fprintf(stderr, "%s: cannot use the password file %s: %s\n", prog, pwfile,
                    r == -EACCES ? "it is readable by group or others" : strerror(-r));
            return NULL;
        }
    }
    DbConnParams params;
    db_conn_params_init(&params, NULL, url, password, "ocgate-cli");
    PGconn *conn = PQconnectdbParams(params.keywords, params.values, 1);
    OPENSSL_cleanse(password, sizeof(password));
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "%s: cannot connect to the database: %s", prog, PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PQclear(PQexec(conn, "SET client_min_messages = warning"));
    return conn;
}

int cli_db_open(const char *prog, PGconn **conn)
{
    int usage_error;
    *conn = cli_db_connect(prog, &usage_error);
    if (!*conn)
        return usage_error ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    return CLI_EXIT_OK;
}
