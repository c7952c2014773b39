/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>

#include "layer-stream.h"
#include "manifest.h"

/* Decompresses a layer blob (gzip, zstd or plain tar) into a LayerStream and re-verifies the
 * blob's sha256 on the way, so a blob damaged in the cache is reported as a digest mismatch.
 * (verify=false skips that for a blob that was verified while it downloaded moments ago.)
 * gzip layers up to 1 GiB are inflated in one go with libdeflate (about twice zlib's speed) into
 * memory the applier reads without copies; larger, multi-member or zstd layers stream through
 * libarchive into the stream's temp file.
 * Runs on its own thread, so layer N+1 decompresses while layer N is being applied. Always
 * finishes the stream, with the error if there was one; stops early once *abort is set. */
int layer_decode(int blob_fd, LayerCompression compression, const char *digest, bool verify,
                 const char *subject, LayerStream *out, atomic_bool *abort);
