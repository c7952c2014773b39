/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lab-disk.h"
#include "log.h"
#include "loop-device.h"
#include "macro.h"

_printf_(3, 4)
static int fail(char **ret_error, int error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return error;
}

static bool is_mount_point(const char *dir) {
        _cleanup_free_ char *parent = NULL;
        struct stat a, b;
        char *slash;

        parent = strdup(dir);
        if (!parent || !(slash = strrchr(parent, '/')))
                return false;
        *(slash == parent ? slash + 1 : slash) = 0;
        return stat(dir, &a) >= 0 && stat(parent, &b) >= 0 && a.st_dev != b.st_dev;
}

/* mkfs.ext4 on a new file: no journal (a layer ends with its instance; nothing of it has to
 * survive a crash), no blocks reserved for root. */
static int make_file_system(const char *path, char **ret_error) {
        int status;
        pid_t pid;

        pid = fork();
        if (pid < 0)
                return fail(ret_error, -errno, "Cannot fork for mkfs.ext4: %s", strerror(errno));
        if (pid == 0) {
                const char *argv[] = { "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "nodiscard",
                                       "-L", "gatewayd-lab", path, NULL };
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);

                /* its complaints go to the worker's stderr (the journal), not into the events */
                if (null >= 0)
                        (void) dup2(null, STDIN_FILENO);
                (void) dup2(STDERR_FILENO, STDOUT_FILENO);
                execvp(argv[0], (char **) argv);
                fprintf(stderr, "Cannot execute mkfs.ext4: %m\n");
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return fail(ret_error, -errno, "Cannot wait for mkfs.ext4: %s", strerror(errno));
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return fail(ret_error, -ENOENT, "Cannot make the member's writable layer: mkfs.ext4 is missing "
                            "(Debian: e2fsprogs), or set LabWritableMax to 0 for a plain directory.");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return fail(ret_error, -EIO, "Cannot make the member's writable layer: mkfs.ext4 %s %d (its "
                            "message is in the worker's log).", WIFEXITED(status) ? "exited with" : "was killed by signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return 0;
}

/* The formatted, empty file system of this size that every layer starts as, made once (mkfs
 * takes ~10 ms of a member's start, a copy of its ~0.6 MB of metadata ~0.2 ms). Made under a
 * temporary name and renamed, so that members starting at once never copy half of one. */
static int ensure_template(const char *template, uint64_t size, char **ret_error) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        if (access(template, F_OK) >= 0)
                return 0;
        if (asprintf(&tmp, "%s.XXXXXX", template) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return fail(ret_error, -errno, "Cannot create %s: %s", tmp, strerror(errno));
        if (ftruncate(fd, (off_t) size) < 0) {
                r = fail(ret_error, -errno, "Cannot size %s to %" PRIu64 " bytes: %s", tmp, size, strerror(errno));
                (void) unlink(tmp);
                return r;
        }
        r = make_file_system(tmp, ret_error);
        if (r >= 0 && (fsync(fd) < 0 || rename(tmp, template) < 0))
                r = fail(ret_error, -errno, "Cannot store %s: %s", template, strerror(errno));
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

/* A sparse copy: only the template's data (its metadata) is written, the holes stay holes. */
static int copy_sparse(int from, int to, uint64_t size) {
        off_t off = 0;

        if (ftruncate(to, (off_t) size) < 0)
                return -errno;
        for (;;) {
                off_t data = lseek(from, off, SEEK_DATA), hole;

                if (data < 0)
                        return errno == ENXIO ? 0 : -errno;   /* ENXIO: no data after off */
                hole = lseek(from, data, SEEK_HOLE);
                if (hole < 0)
                        return -errno;
                for (off_t pos = data; pos < hole;) {
                        loff_t in = pos, out = pos;
                        ssize_t n = copy_file_range(from, &in, to, &out, (size_t) (hole - pos), 0);

                        if (n <= 0)
                                return n < 0 ? -errno : -EIO;
                        pos += n;
                }
                off = hole;
        }
}

/* The layer's file, a copy of the template; -EEXIST: made before (the member's first start). */
static int create_image(const char *image, const char *template, uint64_t size, char **ret_error) {
        _cleanup_close_ int fd = -1, from = -1;
        int r;

        r = ensure_template(template, size, ret_error);
        if (r < 0)
                return r;
        from = open(template, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (from < 0)
                return fail(ret_error, -errno, "Cannot open %s: %s", template, strerror(errno));
        fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return errno == EEXIST ? -EEXIST :
                        fail(ret_error, -errno, "Cannot create %s for the member's writable layer: %s", image, strerror(errno));
        r = copy_sparse(from, fd, size);
        if (r < 0) {
                (void) unlink(image);
                return fail(ret_error, r, "Cannot copy %s to %s: %s", template, image, strerror(-r));
        }
        return 0;
}

int lab_disk_mount(const char *image, const char *template, uint64_t size, const char *dir, uid_t uid, gid_t gid,
                   char **ret_error) {
        _cleanup_close_ int image_fd = -1, loop_fd = -1;
        const char *step;
        char dev[64];
        int r;

        *ret_error = NULL;
        if (is_mount_point(dir))
                return 0;
        r = create_image(image, template, size, ret_error);
        if (r < 0 && r != -EEXIST)
                return r;

        image_fd = open(image, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (image_fd < 0)
                return fail(ret_error, -errno, "Cannot open %s: %s", image, strerror(errno));
        loop_fd = loop_device_attach(image_fd, false, dev, sizeof(dev), &step);
        if (loop_fd < 0)
                return fail(ret_error, loop_fd, "Cannot %s for the member's writable layer: %s", step, strerror(-loop_fd));
        /* closing loop_fd after the mount leaves the mount as the device's only user (autoclear) */
        if (mount(dev, dir, "ext4", MS_NOSUID | MS_NODEV, "errors=remount-ro") < 0)
                return fail(ret_error, -errno, "Cannot mount the member's writable layer %s (%s) on %s: %s",
                            image, dev, dir, strerror(errno));
        /* the template's root is root's, 0755: the layer is the member's alone, as the directory was */
        if (chown(dir, uid, gid) < 0 || chmod(dir, 0700) < 0) {
                r = -errno;
                (void) umount2(dir, MNT_DETACH);
                return fail(ret_error, r, "Cannot hand %s to its member: %s", dir, strerror(-r));
        }
        log_debug("Mounted the writable layer %s on %s via %s (%" PRIu64 " bytes).", image, dir, dev, size);
        return 0;
}
