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

/* Reads a password file refused if group or others may read it; strips one newline. */
static int read_password_file(const char *path, char *out, size_t out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if (st.st_mode & 077) {
        close(fd);
        return -EACCES;
    }
    ssize_t n = read(fd, out, out_len - 1);
    close(fd);
    if (n < 0)
        return -EIO;
    out[n] = '\0';
    if (n > 0 && out[n - 1] == '\n')
        out[n - 1] = '\0';
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
        int r = read_password_file(pwfile, password, sizeof(password));
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
