/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>

#include "fs-util.h"
#include "macro.h"
#include "spool-reserve.h"

/* Where fallocate() is not supported, writing zeros allocates the blocks just as well. */
static int fill_zeros(int fd, uint64_t from, uint64_t size) {
        static const char zeros[4096];

        while (from < size) {
                size_t n = (size_t) MIN(size - from, (uint64_t) sizeof(zeros));
                ssize_t k = pwrite(fd, zeros, n, (off_t) from);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                from += (uint64_t) k;
        }
        return 0;
}

int reserve_file_at(int dir_fd, const char *name, uint64_t size) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        fd = openat(dir_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        r = fallocate(fd, 0, 0, (off_t) size) < 0 ? -errno : 0;
        if (r == -EOPNOTSUPP)
                r = fill_zeros(fd, (uint64_t) st.st_size, size);
        if (r < 0) {
                /* A half-allocated reserve would promise what it cannot keep: give the space back. */
                (void) unlinkat(dir_fd, name, 0);
                return r;
        }
        return TAKE_FD(fd);
}

int reserve_file_commit(int dir_fd, int reserve_fd, const char *reserve_name, const char *name,
                        const void *data, size_t len) {
        const char *p = data;
        struct stat st;
        size_t done = 0;

        if (fstat(reserve_fd, &st) < 0)
                return -errno;
        if ((uint64_t) len > (uint64_t) st.st_size)
                return -EFBIG;
        while (done < len) {
                ssize_t k = pwrite(reserve_fd, p + done, len - done, (off_t) done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }
        /* Shrinking frees blocks, it never needs any. */
        if (ftruncate(reserve_fd, (off_t) len) < 0 || fsync(reserve_fd) < 0)
                return -errno;
        if (fchmod(reserve_fd, 0640) < 0)
                return -errno;
        if (renameat(dir_fd, reserve_name, dir_fd, name) < 0)
                return -errno;
        (void) fsync(dir_fd);
        return 0;
}
