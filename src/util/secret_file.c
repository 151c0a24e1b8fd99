/* Reading and creating secret files under one set of rules (secret_file.h). */
#include "util/secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

int secret_file_read(const char *path, char *buf, size_t buf_size, size_t *len)
{
    *len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ELOOP ? SECRET_FILE_NOT_REGULAR : -errno;
    int rc = 0;
    struct stat st;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = SECRET_FILE_NOT_REGULAR;
    else if (st.st_mode & 077)
        rc = SECRET_FILE_LOOSE_MODE;
    else if ((unsigned long long)st.st_size >= buf_size)
        rc = SECRET_FILE_TOO_BIG;
    /* Read until EOF even though st_size said how much: the file may change under us, and a
     * full buffer is enough to tell it grew. */
    while (rc == 0) {
        ssize_t n = read(fd, buf + *len, buf_size - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        else if (n == 0)
            break;
        else if ((*len += (size_t)n) == buf_size)
            rc = SECRET_FILE_TOO_BIG;
    }
    close(fd);
    if (rc != 0) {
        OPENSSL_cleanse(buf, buf_size);
        *len = 0;
    }
    return rc;
}

int secret_file_create(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? SECRET_FILE_EXISTS : -errno;
    /* The umask can only take bits away, but a umask such as 0277 would leave a file its
     * owner cannot read; fchmod sets exactly 0600 whatever the umask was. */
    int rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
    size_t done = 0;
    while (rc == 0 && done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = n < 0 ? -errno : -EIO;
        else
            done += (size_t)n;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        (void)unlink(path); /* a half-written secret must not be mistaken for one later */
    return rc;
}
