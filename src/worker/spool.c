/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "spool-layout.h"
#include "fs-util.h"
#include "macro.h"
#include "spool.h"

int spool_write_atomic(int dir_fd, const char *name, const char *data, size_t len) {
        return write_file_atomic_at(dir_fd, name, data, len, 0640);
}

int spool_write_atomic_deferred(int dir_fd, const char *name, const char *data, size_t len) {
        return write_file_atomic_at_full(dir_fd, name, data, len, 0640, WRITE_FILE_SYNC);
}

int spool_lock_pid_file(int dir_fd, const char *path, pid_t *ret_holder) {
        _cleanup_close_ int fd = -1;
        char buf[32];
        int n;

        fd = openat(dir_fd, path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK) {
                        ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);
                        buf[MAX(k, (ssize_t) 0)] = 0;
                        *ret_holder = (pid_t) atoi(buf);
                        return -EBUSY;
                }
                return -errno;
        }
        n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0)
                return -errno;
        if (pwrite(fd, buf, (size_t) n, 0) != n && !(errno == ENOSPC || errno == EDQUOT))
                return -errno;
        /* On a full disk the file stays empty, but the lock holds: the caller sees the size. */
        return TAKE_FD(fd);
}

static int prepare_input_file(int input_fd, const char *name, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        fd = openat(input_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 && errno == ENOENT) {
                fd = openat(input_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
                if (fd < 0)
                        return -errno;
                r = loop_write(fd, "{}\n", 3);
                if (r < 0) {
                        (void) unlinkat(input_fd, name, 0);
                        return r;
                }
        }
        if (fd < 0)
                return errno == ELOOP ? -ELOOP : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        /* The job may read its input and nothing else may: others' jobs run as other uids. */
        if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0400) < 0)
                return -errno;
        return 0;
}

int spool_prepare_input(int dir_fd, uid_t uid, gid_t gid) {
        _cleanup_close_ int input_fd = -1;
        int r;

        if (mkdirat(dir_fd, SPOOL_INPUT_DIR, 0755) < 0 && errno != EEXIST)
                return -errno;
        input_fd = openat(dir_fd, SPOOL_INPUT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (input_fd < 0)
                return -errno;
        r = prepare_input_file(input_fd, "data.json", uid, gid);
        if (r < 0)
                return r;
        r = prepare_input_file(input_fd, "params.json", uid, gid);
        if (r < 0)
                return r;
        /* A program job's arguments (gatewayd writes them; none: {}) */
        return prepare_input_file(input_fd, "arguments.json", uid, gid);
}
