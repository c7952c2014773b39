/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Attaches the file behind image_fd to a free loop device with autoclear: the device detaches
 * once its last user goes (the fd returned here, and the mount made from it). ret_dev gets its
 * path (/dev/loopN). Returns the open device's fd, or -errno with *ret_step saying what failed
 * ("open /dev/loop-control", "configure /dev/loop7", ...) for the caller's message. */
int loop_device_attach(int image_fd, bool read_only, char *ret_dev, size_t size, const char **ret_step);
