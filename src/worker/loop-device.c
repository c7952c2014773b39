/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "loop-device.h"
#include "macro.h"

int loop_device_attach(int image_fd, bool read_only, char *ret_dev, size_t size, const char **ret_step) {
        _cleanup_close_ int ctl = -1;
        static char step[96];

        ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0) {
                *ret_step = "open /dev/loop-control";
                return -errno;
        }
        for (int attempt = 0; attempt < 64; attempt++) {
                struct loop_config c = {
                        .fd = (unsigned) image_fd,
                        .info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0),
                };
                int nr, fd;

                nr = ioctl(ctl, LOOP_CTL_GET_FREE);
                if (nr < 0) {
                        *ret_step = "allocate a loop device";
                        return -errno;
                }
                snprintf(ret_dev, size, "/dev/loop%d", nr);
                snprintf(step, sizeof(step), "open %s", ret_dev);
                fd = open(ret_dev, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
                if (fd < 0 && errno == ENOENT) {
                        /* a /dev without udev (containers) lacks nodes for new devices */
                        if (mknod(ret_dev, S_IFBLK | 0600, makedev(7, nr)) < 0 && errno != EEXIST) {
                                snprintf(step, sizeof(step), "create %s", ret_dev);
                                *ret_step = step;
                                return -errno;
                        }
                        fd = open(ret_dev, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
                }
                if (fd < 0) {
                        *ret_step = step;
                        return -errno;
                }
                if (ioctl(fd, LOOP_CONFIGURE, &c) >= 0)
                        return fd;
                close(fd);
                if (errno != EBUSY) {   /* EBUSY: another process took it first */
                        snprintf(step, sizeof(step), "configure %s", ret_dev);
                        *ret_step = step;
                        return -errno;
                }
        }
        *ret_step = "find a free loop device";
        return -EBUSY;
}
