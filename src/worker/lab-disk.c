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

/* mkfs.ext4 on the new file: no journal (the layer ends with the instance; nothing of it has to
 * survive a crash), no blocks reserved for root, the root directory the member's. */
static int make_file_system(const char *image, uid_t uid, gid_t gid, char **ret_error) {
        char owner[64];
        int status;
        pid_t pid;

        snprintf(owner, sizeof(owner), "root_owner=%u:%u,nodiscard", (unsigned) uid, (unsigned) gid);
        pid = fork();
        if (pid < 0)
                return fail(ret_error, -errno, "Cannot fork for mkfs.ext4: %s", strerror(errno));
        if (pid == 0) {
                const char *argv[] = { "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", owner,
                                       "-L", "gatewayd-lab", image, NULL };
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

/* A new sparse file of the layer's size; -EEXIST: made before (the member's first start). */
static int create_image(const char *image, uint64_t size, char **ret_error) {
        _cleanup_close_ int fd = -1;

        fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return errno == EEXIST ? -EEXIST :
                        fail(ret_error, -errno, "Cannot create %s for the member's writable layer: %s", image, strerror(errno));
        if (ftruncate(fd, (off_t) size) < 0) {
                int r = -errno;
                (void) unlink(image);
                return fail(ret_error, r, "Cannot size %s to %" PRIu64 " bytes: %s", image, size, strerror(-r));
        }
        return 0;
}

int lab_disk_mount(const char *image, uint64_t size, const char *dir, uid_t uid, gid_t gid, char **ret_error) {
        _cleanup_close_ int image_fd = -1, loop_fd = -1;
        const char *step;
        char dev[64];
        int r;

        *ret_error = NULL;
        if (is_mount_point(dir))
                return 0;
        r = create_image(image, size, ret_error);
        if (r >= 0) {
                r = make_file_system(image, uid, gid, ret_error);
                if (r < 0) {
                        (void) unlink(image);
                        return r;
                }
        } else if (r != -EEXIST)
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
        /* mkfs.ext4 makes the root 0755; the layer is the member's alone, as the directory was */
        if (chmod(dir, 0700) < 0) {
                r = -errno;
                (void) umount2(dir, MNT_DETACH);
                return fail(ret_error, r, "Cannot set the mode of %s: %s", dir, strerror(-r));
        }
        log_debug("Mounted the writable layer %s on %s via %s (%" PRIu64 " bytes).", image, dir, dev, size);
        return 0;
}
