/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Read-only loop mounts of image squashfs files, shared by concurrent jobs of one image.
 *
 *   RUNTIME_DIR/lock                     flock()ed around every acquire/release
 *   RUNTIME_DIR/images/DEV-INO/root      the mount point (dir 0700: images may be private)
 *   RUNTIME_DIR/images/DEV-INO/refs/PID-STARTTIME   one file per worker using the mount
 *
 * The key is the squashfs file's device and inode, so a re-pulled image (a new file renamed
 * over the old) gets a mount of its own while jobs on the old one finish. The reference count is
 * the set of ref files whose process is still alive (same pid and start time): a worker killed
 * with SIGKILL leaves a stale file that the next acquire or release prunes (for any image, not
 * just its own), so a mount is never leaked for good. The last release unmounts and removes the
 * directories. Mounts are ro,nosuid,nodev on a loop device set up with LOOP_CONFIGURE and
 * autoclear. */

typedef struct ImageMount ImageMount;

int image_mount_acquire(const char *runtime_dir, const char *image_path, ImageMount **ret);
/* Drops this process's reference; unmounts if it was the last. Frees m. */
int image_mount_release(ImageMount *m);
const char *image_mount_root(const ImageMount *m);
/* Why the last image_mount_acquire() failed, as a sentence naming the file. */
const char *image_mount_last_error(void);
