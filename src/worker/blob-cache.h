/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "sha256.h"

/* A content-addressed store of verified blobs, <cache>/blobs/sha256/<hex>, shared by concurrent
 * pulls. A blob only ever appears under its name complete and verified: it is written to an
 * anonymous O_TMPFILE (or a uniquely named temp file where that is unsupported), hashed while it
 * streams in, fsynced, and linked/renamed into place only when its digest and size match. A crash
 * leaves no torn blob behind; two pulls storing the same blob at once both succeed. */

typedef struct BlobCache BlobCache;

int blob_cache_open(const char *cache_dir, BlobCache **ret);
BlobCache *blob_cache_free(BlobCache *c);
static inline void blob_cache_freep(BlobCache **c) {
        blob_cache_free(*c);
}

/* Opens a cached blob read-only: -ENOENT if absent. */
int blob_cache_open_blob(BlobCache *c, const char *digest, int *ret_fd, uint64_t *ret_size);

typedef struct BlobWriter BlobWriter;

/* expected_size is what the manifest promised; more bytes than that is an error. */
int blob_writer_new(BlobCache *c, const char *digest, uint64_t expected_size, const char *subject, BlobWriter **ret);
BlobWriter *blob_writer_free(BlobWriter *w);
static inline void blob_writer_freep(BlobWriter **w) {
        blob_writer_free(*w);
}
int blob_writer_reset(BlobWriter *w);
/* Starts over at offset 0 like reset, but leaves the file's bytes in place: for a blob a decoder
 * already reads while it downloads, whose retry must rewrite the same bytes (the caller compares
 * them). The file may end up longer than what was written only if the size check fails. */
int blob_writer_rewind(BlobWriter *w);
int blob_writer_write(BlobWriter *w, const void *p, size_t n);
/* Checks digest and size of what was written. A digest mismatch is -EBADMSG with a message
 * naming both digests. */
int blob_writer_verify(BlobWriter *w);
/* The temp file, readable once verified (consumers need not wait for the fsync in commit). */
int blob_writer_fd(BlobWriter *w);
/* Verifies (unless done), fsyncs and publishes the blob under its name. */
int blob_writer_commit(BlobWriter *w);
