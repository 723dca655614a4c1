#include "file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

const char *mf_strerror(int e, char *buf, size_t n)
{
    /* The POSIX strerror_r (this file is built with _POSIX_C_SOURCE, not _GNU_SOURCE). */
    if (strerror_r(e, buf, n) != 0)
        snprintf(buf, n, "error %d", e);
    return buf;
}

morsel_status mf_open_regular(const char *path, const char *what, int *fd, morsel_error *err)
{
    char why[128];
    int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (f < 0)
        return morsel_fail(err, MORSEL_ERR_IO, "cannot open %s '%s': %s", what, path,
                           mf_strerror(errno, why, sizeof why));
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return morsel_fail(err, MORSEL_ERR_IO, "cannot stat %s '%s': %s", what, path,
                           mf_strerror(e, why, sizeof why));
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        const char *kind = S_ISDIR(st.st_mode)    ? "a directory"
                           : S_ISFIFO(st.st_mode) ? "a FIFO"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                        : "not a regular file";
        return morsel_fail(err, MORSEL_ERR_IO, "%s '%s' is %s, not a regular file", what, path,
                           kind);
    }
    int flags = fcntl(f, F_GETFL);
    if (flags >= 0)
        fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
    *fd = f;
    return MORSEL_OK;
}

morsel_status mf_read_file(const char *path, const char *what, uint64_t limit, uint8_t **buf,
                           size_t *cap, size_t *n, morsel_error *err)
{
    char why[128];
    int fd = -1;
    morsel_status s = mf_open_regular(path, what, &fd, err);
    if (s)
        return s;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 0) {
        int e = errno;
        close(fd);
        return morsel_fail(err, MORSEL_ERR_IO, "cannot stat %s '%s': %s", what, path,
                           mf_strerror(e, why, sizeof why));
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size > limit) {
        close(fd);
        return morsel_fail(err, MORSEL_ERR_LIMIT, "%s '%s' is %llu bytes, over the %llu limit",
                           what, path, (unsigned long long)size, (unsigned long long)limit);
    }
    if ((size_t)size + 1 > *cap) {
        uint8_t *p = realloc(*buf, (size_t)size + 1);
        if (!p) {
            close(fd);
            return morsel_fail(err, MORSEL_ERR_NOMEM, "out of memory reading %s '%s'", what,
                               path);
        }
        *buf = p;
        *cap = (size_t)size + 1;
    }
    size_t got = 0;
    while (got < (size_t)size) {
        ssize_t r = read(fd, *buf + got, (size_t)size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            if (!e)
                return morsel_fail(err, MORSEL_ERR_IO, "%s '%s' shrank while being read", what,
                                   path);
            return morsel_fail(err, MORSEL_ERR_IO, "cannot read %s '%s': %s", what, path,
                               mf_strerror(e, why, sizeof why));
        }
        got += (size_t)r;
    }
    close(fd);
    *n = got;
    return MORSEL_OK;
}
