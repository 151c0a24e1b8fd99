/* Files that hold a secret (a private key, the admin sealing key, a client secret, a database
 * password): one set of rules for reading and creating them, whoever the secret belongs to.
 *
 * Reading refuses a symlink (never followed: it could point the service at any file it can
 * read), anything but a regular file (a FIFO cannot hang the open: O_NONBLOCK), and a file
 * whose mode grants any access to group or others — judged by fstat before a byte is read, so
 * a secret others could already see is never used, even once. Creating never overwrites
 * (O_EXCL also refuses a dangling symlink), sets exactly 0600 whatever the umask, fsyncs,
 * and removes a half-written file. */
#pragma once

#include <stddef.h>

#include "util/macro.h"

typedef enum SecretFileCode {
    SECRET_FILE_NOT_REGULAR = 1,   /* a symlink, directory, FIFO, device... */
    SECRET_FILE_LOOSE_MODE,        /* readable, writable or executable by group or others */
    SECRET_FILE_TOO_BIG,           /* it holds buf_size bytes or more */
    SECRET_FILE_EXISTS,            /* secret_file_create: the path exists */
} SecretFileCode;

/* Reads the whole file into buf (not NUL-terminated) and sets *len, which is always below
 * buf_size. Returns 0, a SecretFileCode, or a negative errno; buf is wiped on failure. */
OC_MUST_CHECK int secret_file_read(const char *path, char *buf, size_t buf_size, size_t *len);

/* Creates path holding exactly the len bytes of data. Returns 0, SECRET_FILE_EXISTS or a
 * negative errno (the file is then removed). */
OC_MUST_CHECK int secret_file_create(const char *path, const char *data, size_t len);
