/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <archive_entry.h>

#include "events.h"
#include "layer-decode.h"
#include "log.h"
#include "macro.h"
#include "sha256.h"

#define READ_BUFFER_SIZE (1024U * 1024U)

typedef struct BlobReader {
        int fd;
        Sha256 hash;
        char *buf;
} BlobReader;

static ssize_t blob_read(BlobReader *b) {
        ssize_t n;

        do
                n = read(b->fd, b->buf, READ_BUFFER_SIZE);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if (sha256_update(&b->hash, b->buf, (size_t) n) < 0)
                return -EIO;
        return n;
}

static la_ssize_t archive_blob_read(struct archive *a, void *userdata, const void **ret) {
        BlobReader *b = userdata;
        ssize_t n = blob_read(b);

        if (n < 0) {
                archive_set_error(a, (int) -n, "reading the blob failed");
                return -1;
        }
        *ret = b->buf;
        return n;
}

static void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}

static int decompress(BlobReader *b, LayerCompression compression, const char *subject, LayerStream *out, atomic_bool *abort) {
        _cleanup_(archive_read_freep) struct archive *ar = NULL;
        struct archive_entry *e;
        int k;

        if (compression == LAYER_UNCOMPRESSED) {
                for (;;) {
                        ssize_t n = blob_read(b);
                        if (n < 0)
                                return worker_error_errno(n, "Cannot read layer %s: %m", subject);
                        if (n == 0)
                                return 0;
                        if (atomic_load(abort))
                                return -ECANCELED;
                        k = layer_stream_write(out, b->buf, (size_t) n);
                        if (k < 0)
                                return worker_error_errno(k, "Cannot write decompressed layer %s: %m", subject);
                }
        }

        ar = archive_read_new();
        if (!ar)
                return -ENOMEM;
        if (compression == LAYER_GZIP)
                archive_read_support_filter_gzip(ar);
        else
                archive_read_support_filter_zstd(ar);
        archive_read_support_format_raw(ar);
        if (archive_read_open(ar, b, NULL, archive_blob_read, NULL) != ARCHIVE_OK ||
            archive_read_next_header(ar, &e) != ARCHIVE_OK)
                return worker_error_errno(EBADMSG, "Layer %s is not %s compressed: %s", subject,
                                          compression == LAYER_GZIP ? "gzip" : "zstd", strna(archive_error_string(ar)));

        for (;;) {
                const void *buf;
                size_t size;
                la_int64_t offset;

                k = archive_read_data_block(ar, &buf, &size, &offset);
                if (k == ARCHIVE_EOF)
                        return 0;
                if (k < ARCHIVE_WARN)
                        return worker_error_errno(EBADMSG, "Layer %s is corrupt: %s", subject, strna(archive_error_string(ar)));
                if (atomic_load(abort))
                        return -ECANCELED;
                k = layer_stream_write(out, buf, size);
                if (k < 0)
                        return worker_error_errno(k, "Cannot write decompressed layer %s: %m", subject);
        }
}

int layer_decode(int blob_fd, LayerCompression compression, const char *digest, const char *subject,
                 LayerStream *out, atomic_bool *abort) {
        BlobReader b = { .fd = blob_fd };
        char actual[72];
        int r;

        if (lseek(blob_fd, 0, SEEK_SET) < 0) {
                r = -errno;
                goto finish;
        }
        b.buf = malloc(READ_BUFFER_SIZE);
        if (!b.buf) {
                r = -ENOMEM;
                goto finish;
        }
        r = sha256_init(&b.hash);
        if (r < 0)
                goto finish;

        r = decompress(&b, compression, subject, out, abort);
        if (r == -ECANCELED)
                goto finish;

        /* Hash what the decompressor did not need (trailers) too, then compare: the cache only
         * holds verified blobs, so a mismatch means it was damaged since, and that explains any
         * decompression error above better than the error itself. */
        for (;;) {
                ssize_t n = blob_read(&b);
                if (n < 0) {
                        r = r < 0 ? r : worker_error_errno(n, "Cannot read layer %s: %m", subject);
                        goto finish;
                }
                if (n == 0)
                        break;
        }
        if (sha256_final_digest(&b.hash, actual) < 0) {
                r = r < 0 ? r : -EIO;
                goto finish;
        }
        if (!streq(actual, digest))
                r = worker_error_replace_errno(EBADMSG, "digest mismatch: cached layer %s has digest %s", digest, actual);
finish:
        layer_stream_finish(out, r);
        free(b.buf);
        sha256_done(&b.hash);
        return r;
}
