/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "layer-stream.h"
#include "manifest.h"

/* How many decompressed bytes all layers of one image may produce together (ImageSizeMax).
 * Shared by the decoder threads: the layer that crosses the limit fails at that very chunk. */
typedef struct UnpackBudget {
        atomic_uint_fast64_t used;
        uint64_t max;
} UnpackBudget;

/* A blob that is still being downloaded into the file the decoder reads: wait() blocks until the
 * file holds more than offset bytes or the download has ended, then returns 0 with what the file
 * holds in *ret_size (== offset: the download ended and checked out, nothing more comes), or
 * negative when the download failed or the pull was aborted (-ECANCELED: the download reports
 * its own error). So a layer is inflated while it arrives, as "curl | gunzip" would. */
typedef struct BlobFeed {
        int (*wait)(void *userdata, uint64_t offset, uint64_t *ret_size);
        void *userdata;
} BlobFeed;

/* Decompresses a layer blob (gzip, zstd or plain tar) into a LayerStream, streaming: memory use
 * is a few buffers whatever the layer holds, the decompressed tar waits for the applier in the
 * stream's temp file. On the way it
 *   - charges every decompressed byte to budget and stops at the first chunk over its max,
 *   - hashes the decompressed stream and compares it with diff_id (the image configuration's
 *     rootfs.diff_ids entry for this layer): a layer that does not unpack to what the image
 *     says fails,
 *   - re-verifies the blob's own sha256 unless verify is false (a blob verified while it
 *     downloaded moments ago), so a blob damaged in the cache is reported as a digest mismatch.
 * With a feed (NULL: the blob is complete), blob_fd is a download in progress, which hashes the
 * bytes as it writes them (a retry rewrites only the very same bytes where the decoder may have
 * read, pull-layers.c); the decoder reads to the end of the blob and so learns the download's
 * verdict before its stream ends: the applier never sees the end of a layer whose blob did not
 * check out.
 * Runs on its own thread, so layer N+1 decompresses while layer N is being applied. Always
 * finishes the stream, with the error if there was one; stops early once *abort is set. */
int layer_decode(int blob_fd, const BlobFeed *feed, LayerCompression compression, const char *digest,
                 const char *diff_id, bool verify, const char *subject, UnpackBudget *budget, LayerStream *out,
                 atomic_bool *abort);
