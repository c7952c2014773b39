/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "image-place.h"
#include "macro.h"

/* A reflink (btrfs, XFS): another name for the same blocks, made at once. Nothing else: a copy of
 * gigabytes would hold gatewayd's event loop for as long. */
static int reflink_file_to(const char *source, int dir_fd, const char *tmp) {
        _cleanup_close_ int in = -1, out = -1;
        struct stat st;

        in = open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
                return -errno;
        if (fstat(in, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        out = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, st.st_mode & 0644);
        if (out < 0)
                return -errno;
        if (ioctl(out, FICLONE, in) < 0)
                return -EXDEV;
        return fsync(out) < 0 ? -errno : 0;
}

int image_place_file(const char *source, const char *dir, const char *name, char **ret_path) {
        _cleanup_close_ int dir_fd = -1;
        _cleanup_free_ char *tmp = NULL, *path = NULL;
        int r = 0;

        if (asprintf(&tmp, ".%s.place-%d", name, (int) getpid()) < 0 || asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        (void) unlinkat(dir_fd, tmp, 0);  /* a leftover of a crash */
        if (linkat(AT_FDCWD, source, dir_fd, tmp, 0) < 0) {
                /* EXDEV: another file system; EPERM/EMLINK: one that refuses (more) links. */
                if (errno != EXDEV && errno != EPERM && errno != EMLINK)
                        return -errno;
                r = reflink_file_to(source, dir_fd, tmp);
        }
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r >= 0 && fsync(dir_fd) < 0)
                r = -errno;
        /* Also after a rename: one onto another link of the same file does nothing (rename(2)). */
        (void) unlinkat(dir_fd, tmp, 0);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}
