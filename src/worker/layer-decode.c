/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <archive_entry.h>
#include <isa-l/igzip_lib.h>
#include <inttypes.h>
#include <stdint.h>

#include "cancel.h"
#include "events.h"
#include "layer-decode.h"
#include "log.h"
#include "macro.h"
#include "sha256.h"

#define READ_BUFFER_SIZE (1024U * 1024U)

typedef struct Decoder {
        int fd;
        const BlobFeed *feed;
        off_t offset;
        bool verify;
        Sha256 blob_hash;   /* of the blob as stored: its digest */
        Sha256 diff_hash;   /* of the decompressed tar: its diff_id */
        char *buf;
        const char *subject;
        UnpackBudget *budget;
        LayerStream *out;
        atomic_bool *abort;
} Decoder;

static ssize_t blob_read(Decoder *d) {
        size_t want = READ_BUFFER_SIZE;
        ssize_t n;

        for (;;) {
                if (d->feed) {
                        uint64_t size;
                        int r = d->feed->wait(d->feed->userdata, (uint64_t) d->offset, &size);
                        if (r < 0)
                                return r;
                        if (size <= (uint64_t) d->offset)
                                return 0;
                        want = (size_t) MIN(size - (uint64_t) d->offset, (uint64_t) READ_BUFFER_SIZE);
                }
                /* pread: the fd of a fresh blob shares its offset with the cache's writer */
                do
                        n = pread(d->fd, d->buf, want, d->offset);
                while (n < 0 && errno == EINTR);
                if (n < 0)
                        return -errno;
                /* 0 from a download in progress: a retry truncated the file, wait for it again */
                if (n > 0 || !d->feed)
                        break;
        }
        d->offset += n;
        if (d->verify && sha256_update(&d->blob_hash, d->buf, (size_t) n) < 0)
                return -EIO;
        return n;
}

/* A failed download (or abort) reports its own error: the decoder only stops. */
static int read_error(Decoder *d, ssize_t n) {
        if (n == -ECANCELED)
                return -ECANCELED;
        return worker_error_errno((int) n, "Cannot read layer %s: %m", d->subject);
}

static la_ssize_t archive_blob_read(struct archive *a, void *userdata, const void **ret) {
        Decoder *d = userdata;
        ssize_t n = blob_read(d);

        if (n < 0) {
                archive_set_error(a, (int) -n, "reading the blob failed");
                return -1;
        }
        *ret = d->buf;
        return n;
}

static void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}

/* One chunk of decompressed tar, before the applier may see it: charged to the image's budget,
 * so not a byte beyond ImageSizeMax is handed on, and hashed for the diff_id. */
static int account(Decoder *d, const void *p, size_t n) {
        uint64_t used;

        if (atomic_load(d->abort) || cancelled())
                return -ECANCELED;
        used = atomic_fetch_add(&d->budget->used, n) + n;
        if (used > d->budget->max)
                return worker_error_errno(EFBIG, "Image is larger than ImageSizeMax (%" PRIu64 " bytes unpacked); "
                                          "stopped in layer %s", d->budget->max, d->subject);
        if (sha256_update(&d->diff_hash, p, n) < 0)
                return -EIO;
        return 0;
}

static int emit(Decoder *d, const void *p, size_t n) {
        int r;

        r = account(d, p, n);
        if (r < 0)
                return r;
        r = layer_stream_write(d->out, p, n);
        if (r < 0 && r != -ECANCELED)
                return worker_error_errno(r, "Cannot hand on decompressed layer %s: %m", d->subject);
        return r;
}

/* gzip with ISA-L's inflate (about twice zlib's speed, the fastest streaming inflate here), through
 * a buffer that is reused, so its pages are faulted in once. Concatenated members (pigz, appending
 * writers) are one stream, as gzip -d reads them; bytes after the last member that do not start
 * another are ignored like gzip's "trailing garbage" (they are still part of the blob's digest). */
static int inflate_gzip(Decoder *d) {
        _cleanup_free_ struct inflate_state *st = NULL;
        bool in_member = false, any = false;

        st = malloc(sizeof(struct inflate_state));
        if (!st)
                return -ENOMEM;
        isal_inflate_init(st);
        st->crc_flag = ISAL_GZIP;

        for (;;) {
                size_t produced, room;
                void *out;
                int k;

                if (st->avail_in == 0) {
                        ssize_t n = blob_read(d);
                        if (n < 0)
                                return read_error(d, n);
                        if (n == 0)
                                break;
                        st->next_in = (uint8_t *) d->buf;
                        st->avail_in = (uint32_t) n;
                }
                if (!in_member) {
                        /* a new member starts here, or only trailing bytes follow the last one */
                        uint8_t *next_in = st->next_in;
                        uint32_t avail_in = st->avail_in;

                        if (any && (next_in[0] != 0x1f || (avail_in > 1 && next_in[1] != 0x8b)))
                                return 0;
                        isal_inflate_reset(st);
                        st->crc_flag = ISAL_GZIP;
                        st->next_in = next_in;
                        st->avail_in = avail_in;
                        in_member = true;
                }
                /* straight into the stream's memory: no copy */
                k = layer_stream_reserve(d->out, &out, &room);
                if (k < 0)
                        return k;
                st->next_out = out;
                st->avail_out = (uint32_t) room;
                k = isal_inflate(st);
                if (k < 0)
                        return worker_error_errno(EBADMSG, "Layer %s is %s: bad gzip data (ISA-L error %d)", d->subject,
                                                  any || st->total_out > 0 ? "corrupt" : "not gzip compressed", k);
                produced = room - st->avail_out;
                if (produced > 0) {
                        k = account(d, out, produced);
                        if (k < 0)
                                return k;
                        k = layer_stream_commit(d->out, produced);
                        if (k < 0)
                                return k;
                }
                if (st->block_state == ISAL_BLOCK_FINISH) {
                        in_member = false;
                        any = true;
                } else if (produced == 0 && st->avail_in > 0)
                        return worker_error_errno(EBADMSG, "Layer %s is corrupt: gzip data makes no progress", d->subject);
        }
        if (in_member || !any)
                return worker_error_errno(EBADMSG, "Layer %s is %s: the gzip data ends early", d->subject,
                                          any ? "corrupt" : "not gzip compressed");
        return 0;
}

static int decompress(Decoder *d, LayerCompression compression) {
        _cleanup_(archive_read_freep) struct archive *ar = NULL;
        struct archive_entry *e;
        int k;

        if (compression == LAYER_UNCOMPRESSED)
                for (;;) {
                        ssize_t n = blob_read(d);
                        if (n < 0)
                                return read_error(d, n);
                        if (n == 0)
                                return 0;
                        k = emit(d, d->buf, (size_t) n);
                        if (k < 0)
                                return k;
                }

        if (compression == LAYER_GZIP)
                return inflate_gzip(d);

        ar = archive_read_new();
        if (!ar)
                return -ENOMEM;
        archive_read_support_filter_zstd(ar);
        archive_read_support_format_raw(ar);
        if (archive_read_open(ar, d, NULL, archive_blob_read, NULL) != ARCHIVE_OK ||
            archive_read_next_header(ar, &e) != ARCHIVE_OK)
                return worker_error_errno(EBADMSG, "Layer %s is not zstd compressed: %s", d->subject,
                                          strna(archive_error_string(ar)));

        for (;;) {
                const void *buf;
                size_t size;
                la_int64_t offset;

                k = archive_read_data_block(ar, &buf, &size, &offset);
                if (k == ARCHIVE_EOF)
                        return 0;
                if (k < ARCHIVE_WARN)
                        return worker_error_errno(EBADMSG, "Layer %s is corrupt: %s", d->subject, strna(archive_error_string(ar)));
                k = emit(d, buf, size);
                if (k < 0)
                        return k;
        }
}

/* Reads what the decompressor did not need (trailers) too: a blob still downloading to its end,
 * so that the download's verdict is known before the stream ends (an error from the feed: the
 * download failed and reports why). Verifying, hashes it and compares: the cache only holds
 * verified blobs, so a mismatch means it was damaged since, and that explains any decompression
 * error better than the error itself. */
static int finish_blob(Decoder *d, const char *digest, int r) {
        char actual[72];

        for (;;) {
                ssize_t n = blob_read(d);
                if (n < 0)
                        return r < 0 ? r : read_error(d, n);
                if (n == 0)
                        break;
        }
        if (!d->verify)
                return r;
        if (sha256_final_digest(&d->blob_hash, actual) < 0)
                return r < 0 ? r : -EIO;
        if (!streq(actual, digest))
                return worker_error_replace_errno(EBADMSG, "digest mismatch: cached layer %s has digest %s", digest, actual);
        return r;
}

int layer_decode(int blob_fd, const BlobFeed *feed, LayerCompression compression, const char *digest,
                 const char *diff_id, bool verify, const char *subject, UnpackBudget *budget, LayerStream *out,
                 atomic_bool *abort) {
        Decoder d = {
                .fd = blob_fd,
                .feed = feed,
                .verify = verify,
                .subject = subject,
                .budget = budget,
                .out = out,
                .abort = abort,
        };
        char actual[72];
        int r;

        d.buf = malloc(READ_BUFFER_SIZE);
        if (!d.buf) {
                r = -ENOMEM;
                goto finish;
        }
        r = sha256_init(&d.diff_hash);
        if (r >= 0 && d.verify)
                r = sha256_init(&d.blob_hash);
        if (r < 0)
                goto finish;

        r = decompress(&d, compression);
        if (r == -ECANCELED)
                goto finish;
        if ((d.verify || d.feed) && r != -EFBIG) {
                r = finish_blob(&d, digest, r);
                if (r < 0)
                        goto finish;
        }
        if (r < 0)
                goto finish;

        if (sha256_final_digest(&d.diff_hash, actual) < 0) {
                r = -EIO;
                goto finish;
        }
        if (!streq(actual, diff_id))
                r = worker_error_errno(EBADMSG, "diff_id mismatch: layer %s unpacks to %s, the image configuration says %s",
                                       subject, actual, diff_id);
finish:
        layer_stream_finish(out, r);
        free(d.buf);
        sha256_done(&d.diff_hash);
        sha256_done(&d.blob_hash);
        return r;
}
