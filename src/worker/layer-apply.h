/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <archive.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Applies image layers, in order, to a root directory, with OCI semantics: ".wh.NAME" deletes
 * NAME, ".wh..wh..opq" hides the directory's lower content, a later entry replaces an earlier
 * one (directories merge). Hardlinks, symlinks, FIFOs, xattrs, modes, owners and times are kept;
 * device nodes and sockets are dropped.
 *
 * Layers are untrusted. Every write happens relative to a directory fd that was resolved with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV), files are created with
 * O_EXCL | O_NOFOLLOW, and links are made with linkat() between such fds; an entry that would
 * escape (absolute name, "..", a path through a symlink, a hardlink whose target is outside or
 * behind a symlink) fails the layer with a message naming the entry.
 *
 * Unprivileged, owners cannot be set; the real owner and mode of every path are then recorded
 * and written out as a mksquashfs pseudo file (layer_applier_write_pseudo_file()) while files on
 * disk stay readable and directories writable for us. */

typedef struct LayerApplier LayerApplier;

typedef struct LayerApplyStats {
        uint64_t entries;
        uint64_t bytes;
        uint64_t dropped; /* device nodes, sockets */
        uint64_t apparent; /* sum of regular file sizes, holes included */
} LayerApplyStats;

int layer_applier_new(int root_fd, bool privileged, LayerApplier **ret);
LayerApplier *layer_applier_free(LayerApplier *a);
static inline void layer_applier_freep(LayerApplier **a) {
        layer_applier_free(*a);
}

/* Caps over all layers applied (0 = none): entries of any kind (ImageFilesMax) and the summed
 * sizes of regular files (ImageSizeMax; holes count). The entry over a limit fails its layer. */
void layer_applier_set_limits(LayerApplier *a, uint64_t size_max, uint64_t files_max);

/* Reads every entry of an opened archive and applies it. subject names the layer in messages. */
int layer_applier_apply(LayerApplier *a, struct archive *ar, const char *subject);

/* Creates an empty directory (mount point) unless something already exists at path. */
int layer_applier_ensure_dir(LayerApplier *a, const char *path, unsigned mode);

const LayerApplyStats *layer_applier_stats(LayerApplier *a);

/* Unprivileged only: one "PATH m MODE UID GID" line per path in the tree. The root directory's
 * wanted mode/uid/gid are returned separately (mksquashfs takes them as -root-* options). */
int layer_applier_write_pseudo_file(LayerApplier *a, FILE *f, unsigned *ret_root_mode, unsigned *ret_root_uid, unsigned *ret_root_gid);
