/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

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
 * autoclear.
 *
 * A program's squashfs serves job after job of the same program: its last user may let the mount
 * linger (image_mount_release_linger()), so that the next job finds it mounted. Such an entry has
 *
 *   RUNTIME_DIR/images/DEV-INO/linger    until when (CLOCK_BOOTTIME seconds)
 *   RUNTIME_DIR/images/DEV-INO/source    the file's path, as mounted
 *
 * and is unmounted, once it has no users, by whoever sweeps after that time (any acquire or
 * release, or gatewayd's image_mounts_sweep()) — or at once when its source path no longer
 * names that file (removed, or a new upload in its place). While mounted, the loop device holds
 * the file, so its inode number cannot be reused by another file.
 *
 * Mounts made from an image's mount for all its jobs (the sandbox's root, sandbox-root.h) live
 * with it and go before it does:
 *
 *   RUNTIME_DIR/images/DEV-INO/derived-NAME/root   the derived mount
 *   RUNTIME_DIR/images/DEV-INO/derived-NAME/...    what its maker keeps there (no mounts)
 */

typedef struct ImageMount ImageMount;

int image_mount_acquire(const char *runtime_dir, const char *image_path, ImageMount **ret);
/* Drops this process's reference; unmounts if it was the last. Frees m. */
int image_mount_release(ImageMount *m);
/* The same, but the last reference leaves the mount for linger_sec more (0: as release). */
int image_mount_release_linger(ImageMount *m, unsigned linger_sec);
/* Unmounts every entry without users whose lingering is over or whose source is gone — with
 * all, every entry without users (gatewayd's shutdown). Returns how many still linger. */
int image_mounts_sweep(const char *runtime_dir, bool all);
const char *image_mount_root(const ImageMount *m);

#define IMAGE_MOUNT_DERIVED_PREFIX "derived-"
/* Makes DIR/root a mount from image_root, DIR (created empty, 0700) being its to use. */
typedef int (*ImageMountMakeFn)(const char *dir, const char *image_root, void *userdata);
/* The path of the mount NAME derived from m's: made by make() under the lock if it is not there
 * yet, then kept with m's mount (lingering with it) and unmounted right before it. If make()
 * fails, DIR/failed says so and later calls fail at once (-EOPNOTSUPP) while m's mount lasts. */
int image_mount_derived(ImageMount *m, const char *name, ImageMountMakeFn make, void *userdata, char **ret_root);
/* Why the last image_mount_acquire() failed, as a sentence naming the file. */
const char *image_mount_last_error(void);
