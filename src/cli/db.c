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

int cli_read_password_file(const char *path, char *out, size_t out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        r = -EINVAL;
    else if (st.st_mode & 077)
        r = -EACCES;
    size_t got = 0;
    while (r == 0) {
        ssize_t n = read(fd, out + got, out_len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            r = -EIO;
        else if (n == 0)
            break;
        else if ((got += (size_t)n) == out_len - 1)
            r = -E2BIG; /* the buffer is full, so the file may go on */
    }
    close(fd);
    if (r != 0) {
        OPENSSL_cleanse(out, out_len);
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
    const char *keys[] = { "dbname", "password", "application_name", NULL };
    const char *values[] = { url, *password ? password : NULL, "ocgate-cli", NULL };
    PGconn *conn = PQconnectdbParams(keys, values, 1);
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
