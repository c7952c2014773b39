/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "sandbox.h"
#include "squashfs-mount.h"

/* The root file system of the sandboxes of one image, made once per image mount (and per set of
 * SandboxRootFlags) instead of once per job.
 *
 * A job's bwrap used to build its root from scratch: a tmpfs, one read-only bind per top-level
 * entry of the image (and of its /var, and of its /etc for jobs with their own hosts and resolver
 * files), each of which makes bwrap re-read /proc/self/mountinfo, and ~45 mounts in the job's
 * namespace, which pivot_root's detach of the old root and the namespace's tear-down pay for
 * again. Now the same tree is a read-only overlayfs mounted next to the image's squashfs
 *
 *   RUNTIME_DIR/images/DEV-INO/derived-sandbox-V-FLAGS/skel   the upper lower layer
 *   RUNTIME_DIR/images/DEV-INO/derived-sandbox-V-FLAGS/root   overlay skel:image, ro,nosuid,nodev
 *
 * and kept, lingering and unmounted with it (squashfs-mount.h), so a job's bwrap does one
 * `--ro-bind ROOT /` and the few per-job mounts. The skeleton holds exactly what sandbox.c's
 * entry-by-entry root replaces or adds: mount points (/proc, /dev, /tmp, /var/input and its files,
 * /var/runtime/output, /program, the init, /etc/hosts, /etc/resolv.conf, /var/lab), opaque where
 * the image's directory of that name must not show through, and whiteouts for what the sandbox
 * must not have: the image's hosts and resolver files in jobs with their own /etc, /program and
 * /var/runtime when the job has none, and device nodes, fifos and sockets at the levels sandbox.c
 * skipped them (/, /var, and /etc when rebuilt). Deeper ones were reachable through the binds
 * before and are now: the overlay, like the squashfs under it, is mounted nodev, so a device
 * node in an image never opens (EACCES), and bwrap adds nodev and nosuid to its bind again.
 *
 * Why an overlay and not a tmpfs with the binds made once: that tree of ~40 mounts would be
 * copied into every job's namespace by its recursive bind (and into every other namespace made
 * on the host while it lingers), keeping the per-job mount count and the detach cost; an
 * overlay is one mount. An overlay with lower layers only is read-only by construction (no upper
 * directory, nothing can be written through it); redirect_dir=nofollow and metacopy=off make it
 * follow no xattr-directed lookups into other layers, whatever xattrs the image carries.
 *
 * What making one needs beyond mounting squashfs: CAP_SYS_ADMIN for the opaque directories'
 * xattr (trusted.overlay.opaque), and whiteouts (character devices 0:0), which since Linux 5.8
 * need neither CAP_MKNOD nor the device cgroup's leave (gatewayd.service has no CAP_MKNOD).
 *
 * Where overlayfs cannot be mounted (no module, an old kernel refusing an option, a
 * kernel before 5.8 refusing a whiteout) the caller falls back to the entry-by-entry root. */

/* The root for jobs with these flags on the image mounted as m (made by the first job that needs
 * it): its path, to be freed, in *ret. */
int sandbox_root_acquire(ImageMount *m, SandboxRootFlags flags, char **ret);
