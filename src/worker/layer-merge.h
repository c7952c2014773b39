/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <archive.h>
#include <stdint.h>
#include <sys/types.h>

#include "layer-apply.h"

/* The streaming alternative to LayerApplier: layers are read top-first and merged into one tar
 * stream of the image's final tree (the OCI union rules: an entry is kept unless an upper layer
 * gave its path, whited it out, made an ancestor opaque or a non-directory; whiteouts, device
 * nodes and sockets are dropped), which a squashfs writer reads. Nothing is written to disk, so
 * nothing can escape; entries are still refused as the applier refuses them (names outside the
 * image, paths through a symlink, hardlink targets outside the image) so that a hostile layer
 * fails the same way on both paths.
 *
 * What this order cannot decide without seeing a layer twice (the same path twice in one layer, a
 * whiteout after the entry it deletes in the same layer, a hardlink whose target is hidden or in
 * another layer, a lower non-directory where an upper layer has entries below it, sparse files)
 * makes layer_merger_merge() return -EAGAIN without recording an error: the caller then stages
 * the image with the applier instead. */

typedef struct LayerMerger LayerMerger;

/* Writes the merged tar to out_fd (not taken). A failed write (the reader is gone) is -EPIPE. */
int layer_merger_new(int out_fd, LayerMerger **ret);
LayerMerger *layer_merger_free(LayerMerger *m);
static inline void layer_merger_freep(LayerMerger **m) {
        layer_merger_free(*m);
}

void layer_merger_set_limits(LayerMerger *m, uint64_t size_max, uint64_t files_max);
/* Every entry written from now on is owned by uid:gid (names dropped) and loses its setuid,
 * setgid and sticky bits: for a user's own program artifact, whose headers say nothing we
 * should believe (gateway-worker program). */
void layer_merger_set_owner(LayerMerger *m, uid_t uid, gid_t gid);
/* With an owner set: every entry becomes readable by all, executable by all where its owner may
 * execute it, writable by nobody but the owner (a provider's program, run by other users). */
void layer_merger_set_shared(LayerMerger *m);

/* Merges the next layer, top-most first. */
int layer_merger_merge(LayerMerger *m, struct archive *ar, const char *subject);

/* Adds the mount points the image needs (unless a layer has them) and ends the tar stream. */
int layer_merger_finish(LayerMerger *m, const char * const *dirs, size_t n_dirs);

const LayerApplyStats *layer_merger_stats(LayerMerger *m);
