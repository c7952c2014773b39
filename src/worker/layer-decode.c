/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <archive_entry.h>
#include <libdeflate.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <endian.h>

#include "cancel.h"
#include "events.h"
#include "layer-decode.h"
#include "log.h"
#include "macro.h"
#include "sha256.h"

#define READ_BUFFER_SIZE (1024U * 1024U)
#define MAX_INMEMORY_LAYER (1024ULL * 1024ULL * 1024ULL)

typedef struct BlobReader {
        int fd;
        bool verify;
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
        if (b->verify && sha256_update(&b->hash, b->buf, (size_t) n) < 0)
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
                        if (atomic_load(abort) || cancelled())
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
                if (atomic_load(abort) || cancelled())
                        return -ECANCELED;
                k = layer_stream_write(out, buf, size);
                if (k < 0)
                        return worker_error_errno(k, "Cannot write decompressed layer %s: %m", subject);
        }
}

static void release_free(void *buf, size_t size) {
        free(buf);
}

static void release_munmap(void *buf, size_t size) {
        munmap(buf, size);
}

/* The fast paths: the whole blob mapped, gzip inflated by libdeflate in one call, plain tar
 * handed over as the mapping itself. Returns 1 when the layer was handled, 0 to fall back to
 * streaming (too large, several gzip members), < 0 on errors. */
static int decode_in_memory(BlobReader *b, LayerCompression compression, const char *digest, const char *subject, LayerStream *out) {
        struct libdeflate_decompressor *d = NULL;
        enum libdeflate_result res;
        size_t in_used = 0, out_used = 0;
        char actual[72];
        struct stat st;
        uint32_t isize;
        void *map, *buf = NULL;
        int r;

        if (compression == LAYER_ZSTD)
                return 0;
        if (fstat(b->fd, &st) < 0)
                return -errno;
        if (st.st_size < 18 || (uint64_t) st.st_size > MAX_INMEMORY_LAYER)
                return 0;
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, b->fd, 0);
        if (map == MAP_FAILED)
                return 0;
        if (b->verify) {
                r = sha256_digest_of(map, (size_t) st.st_size, actual);
                if (r < 0)
                        goto fail;
                if (!streq(actual, digest)) {
                        r = worker_error_errno(EBADMSG, "digest mismatch: cached layer %s has digest %s", digest, actual);
                        goto fail;
                }
        }

        if (compression == LAYER_UNCOMPRESSED) {
                layer_stream_finish_buffer(out, map, (size_t) st.st_size, release_munmap);
                return 1;
        }

        /* A gzip trailer ends with the uncompressed size mod 2^32. */
        memcpy(&isize, (const char *) map + st.st_size - 4, 4);
        isize = le32toh(isize);
        /* The trailer is the layer's word, not a fact: a lie only sends us to the streaming path
         * (libdeflate stops at the buffer's end), and a huge claim is not allocated at all. */
        if (isize > MAX_INMEMORY_LAYER)
                goto fallback;
        buf = malloc(MAX(isize, 1U));
        if (!buf)
                goto fallback;
        d = libdeflate_alloc_decompressor();
        if (!d) {
                r = -ENOMEM;
                goto fail;
        }
        res = libdeflate_gzip_decompress_ex(d, map, (size_t) st.st_size, buf, isize, &in_used, &out_used);
        libdeflate_free_decompressor(d);
        if (res == LIBDEFLATE_SUCCESS && in_used == (size_t) st.st_size && out_used == isize) {
                munmap(map, (size_t) st.st_size);
                layer_stream_finish_buffer(out, buf, isize, release_free);
                return 1;
        }
        if (res == LIBDEFLATE_BAD_DATA) {
                r = worker_error_errno(EBADMSG, "Layer %s is corrupt: bad gzip data", subject);
                goto fail;
        }
fallback:
        /* larger than 4 GiB, several members, or a trailer that lied: stream it */
        free(buf);
        munmap(map, (size_t) st.st_size);
        return 0;

fail:
        free(buf);
        munmap(map, (size_t) st.st_size);
        return r;
}

int layer_decode(int blob_fd, LayerCompression compression, const char *digest, bool verify,
                 const char *subject, LayerStream *out, atomic_bool *abort) {
        BlobReader b = { .fd = blob_fd, .verify = verify };
        char actual[72];
        int r;

        r = decode_in_memory(&b, compression, digest, subject, out);
        if (r > 0)
                return 0;
        if (r < 0)
                goto finish;

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
        if (r == -ECANCELED || !verify)
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
