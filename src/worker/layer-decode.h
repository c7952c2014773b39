/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>

#include "layer-stream.h"
#include "manifest.h"

/* Decompresses a layer blob (gzip, zstd or plain tar) into a LayerStream and re-verifies the
 * blob's sha256 on the way, so a blob damaged in the cache is reported as a digest mismatch.
 * Runs on its own thread, so layer N+1 decompresses while layer N is being applied. Always
 * finishes the stream, with the error if there was one; stops early once *abort is set. */
int layer_decode(int blob_fd, LayerCompression compression, const char *digest, const char *subject,
                 LayerStream *out, atomic_bool *abort);
