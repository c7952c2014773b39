/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fs-util.h"
#include "macro.h"

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int loop_write(int fd, const void *p, size_t n) {
        const char *c = p;

        while (n > 0) {
                ssize_t k = write(fd, c, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += k;
                n -= (size_t) k;
        }
        return 0;
}

int rm_rf_children(int fd) {
        DIR *d;
        struct dirent *de;
        int dfd, r = 0;

        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return -errno;
        d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        rewinddir(d);
        while ((errno = 0, de = readdir(d))) {
                int k;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                k = rm_rf_at(dirfd(d), de->d_name);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        return r;
}

int rm_rf_at(int dirfd, const char *name) {
        struct stat st;
        int fd, r;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == EACCES && fchmodat(dirfd, name, 0700, 0) >= 0)
                fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* Unprivileged, a read-only directory cannot be emptied. */
        if ((st.st_mode & 0700) != 0700)
                (void) fchmod(fd, 0700);
        r = rm_rf_children(fd);
        close(fd);
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
                r = -errno;
        return r;
}

int rm_rf(const char *path) {
        return rm_rf_at(AT_FDCWD, path);
}

int write_file_atomic_at_full(int dir_fd, const char *name, const void *data, size_t size, mode_t mode,
                              WriteFileFlags flags) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (asprintf(&tmp, ".%s.tmp-%d", name, (int) getpid()) < 0)
                return -ENOMEM;
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, data, size);
        if (r >= 0 && (flags & WRITE_FILE_SYNC) && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        /* The rename itself must be durable before anyone is told about the file. */
        if (flags & WRITE_FILE_SYNC_DIR)
                (void) fsync(dir_fd);
        return 0;
}

int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode) {
        return write_file_atomic_at_full(dir_fd, name, data, size, mode, WRITE_FILE_SYNC | WRITE_FILE_SYNC_DIR);
}

static int write_file_atomic_dir(const char *dir, const char *name, const void *data, size_t size,
                                 WriteFileFlags flags) {
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (dir_fd < 0)
                return -errno;
        return write_file_atomic_at_full(dir_fd, name, data, size, 0644, flags);
}

int write_file_atomic(const char *dir, const char *name, const void *data, size_t size) {
        return write_file_atomic_dir(dir, name, data, size, WRITE_FILE_SYNC | WRITE_FILE_SYNC_DIR);
}

int write_file_atomic_nosync(const char *dir, const char *name, const void *data, size_t size) {
        return write_file_atomic_dir(dir, name, data, size, 0);
}
