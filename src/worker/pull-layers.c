/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <fcntl.h>
#include <inttypes.h>

#include "cancel.h"
#include "events.h"
#include "layer-decode.h"
#include "log.h"
#include "pull-job.h"

#define PROGRESS_INTERVAL_USEC 200000
#define READ_BUFFER_SIZE (1024U * 1024U)
#define STREAMS_MEMORY (128U * 1024U * 1024U)
#define COMPARE_BUFFER_SIZE (64U * 1024U)
/* a decoder waiting for a download is woken per this many new bytes (and at its end), not per
 * write: fewer context switches, and inflate works on larger pieces */
#define FEED_STEP (64U * 1024U)

/* The pipeline: download threads fetch layers in order into the blob cache; as soon as a layer's
 * download starts, a decoder thread (one per CPU, also in order) reads the blob's file as it
 * grows and inflates it into a LayerStream (bounded memory: a decoder blocks while the applier is
 * behind); the stream ends only once the download's digest checked out. The calling thread
 * applies stream after stream. So layer N is applied while N+1 decompresses and N+2 downloads.
 * Any failure aborts every stage. */

void pull_progress(Pull *p, bool force) {
        json_object *o;
        int64_t now = now_usec();

        /* Snapshot and emission happen under the lock: otherwise a download thread's older
         * snapshot could be written after the applier's newer one, and the last event a reader
         * sees would understate the progress. */
        pthread_mutex_lock(&p->lock);
        if (!force && now - p->last_progress < PROGRESS_INTERVAL_USEC) {
                pthread_mutex_unlock(&p->lock);
                return;
        }
        p->last_progress = now;

        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "bytesDone", json_object_new_int64((int64_t) atomic_load(&p->bytes_done)));
                json_object_object_add(o, "bytesTotal", json_object_new_int64((int64_t) p->bytes_total));
                json_object_object_add(o, "layersDone", json_object_new_int((int) atomic_load(&p->layers_downloaded)));
                json_object_object_add(o, "layersApplied", json_object_new_int((int) atomic_load(&p->layers_applied)));
                json_object_object_add(o, "layersTotal", json_object_new_int((int) p->manifest->n_layers));
                (void) events_emit(WORKER_EVENT_PROGRESS, o);
        }
        pthread_mutex_unlock(&p->lock);
}

/* ---- blobs ---- */

typedef struct Download {
        Pull *pull;
        BlobWriter *writer;
        bool count;       /* layers count towards progress, the config does not */
        uint64_t counted;
        ssize_t layer;    /* fed to its decoder as it arrives, unless -1 */
        uint64_t written; /* by this attempt */
        uint64_t exposed; /* to the decoder, by any attempt */
        uint64_t announced; /* of exposed, what the decoder was told */
        char *compare;    /* a retry's buffer for the bytes the decoder may have read */
} Download;

/* A feeding blob's decoder may read what was exposed of the file (no attempt takes it back). */
static void feed_update(Download *d) {
        Pull *p = d->pull;

        if (d->layer < 0 || d->announced == d->exposed)
                return;
        d->announced = d->exposed;
        pthread_mutex_lock(&p->lock);
        p->written[d->layer] = d->exposed;
        if (p->feed_waiters > 0)
                pthread_cond_broadcast(&p->feed_cond);
        pthread_mutex_unlock(&p->lock);
}

static int download_reset(void *userdata) {
        Download *d = userdata;

        atomic_fetch_sub(&d->pull->bytes_done, d->counted);
        d->counted = 0;
        d->written = 0;
        /* A retry of a blob the decoder reads as it arrives keeps the bytes it exposed: the
         * decoder may have read them, and the retry checks that it gets the very same (the
         * digest covers what this attempt wrote, so the decoder needs no hash of its own). */
        return d->layer >= 0 ? blob_writer_rewind(d->writer) : blob_writer_reset(d->writer);
}

/* A retry's bytes where an earlier attempt's were exposed must be those. */
static int download_compare(Download *d, const void *buf, size_t n) {
        uint64_t at = d->written;
        size_t left = (size_t) MIN((uint64_t) n, d->exposed - d->written);

        if (!d->compare) {
                d->compare = malloc(COMPARE_BUFFER_SIZE);
                if (!d->compare)
                        return -ENOMEM;
        }
        while (left > 0) {
                size_t k = MIN(left, (size_t) COMPARE_BUFFER_SIZE);
                ssize_t got = pread(blob_writer_fd(d->writer), d->compare, k, (off_t) at);

                if (got < 0)
                        return worker_error_errno(errno, "Cannot read back blob %s: %m",
                                                  d->pull->manifest->layers[d->layer].digest);
                if ((size_t) got != k || memcmp(d->compare, buf, k) != 0)
                        /* explains what the decoder made of the earlier bytes: replaces that */
                        return worker_error_replace_errno(EBADMSG, "blob %s changed between download attempts",
                                                  d->pull->manifest->layers[d->layer].digest);
                buf = (const char *) buf + k;
                at += k;
                left -= k;
        }
        return 0;
}

static bool download_cancelled(void *userdata) {
        Download *d = userdata;
        return atomic_load(&d->pull->abort);
}

static int download_write(const void *buf, size_t n, void *userdata) {
        Download *d = userdata;
        int r;

        if (atomic_load(&d->pull->abort) || cancelled())
                return -ECANCELED;
        if (d->written < d->exposed) {
                r = download_compare(d, buf, n);
                if (r < 0)
                        return r;
        }
        r = blob_writer_write(d->writer, buf, n);
        if (r < 0)
                return r;
        d->written += n;
        if (d->written > d->exposed) {
                d->exposed = d->written;
                if (d->exposed - d->announced >= FEED_STEP)
                        feed_update(d);
        }
        if (!d->count)
                return 0;
        d->counted += n;
        atomic_fetch_add(&d->pull->bytes_done, n);
        pull_progress(d->pull, false);
        return 0;
}

static void pull_abort(Pull *p) {
        atomic_store(&p->abort, true);
        /* wake the applier and decoders wherever they wait */
        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; p->streams && i < p->manifest->n_layers; i++)
                if (p->streams[i])
                        layer_stream_abort(p->streams[i], -ECANCELED);
        pthread_cond_broadcast(&p->cond);
        pthread_cond_broadcast(&p->feed_cond);
        pthread_mutex_unlock(&p->lock);
}

/* Layer i's blob is verified and readable through fd (taken, -1: it was handed over while it
 * downloaded): its decoder may start, or read it to the end. */
static void publish_layer(Pull *p, ssize_t i, int fd, bool fresh) {
        if (i < 0) {
                safe_close(fd);
                return;
        }
        pthread_mutex_lock(&p->lock);
        if (fd >= 0) {
                p->blob_fds[i] = fd;
                p->fresh[i] = fresh;
        }
        p->states[i] = LAYER_DOWNLOADED;
        pthread_cond_broadcast(&p->feed_cond);
        atomic_fetch_add(&p->layers_downloaded, 1);
        if (atomic_load(&p->layers_downloaded) == p->manifest->n_layers)
                p->t_downloaded = now_usec();
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        pull_progress(p, true);
}

/* Makes sure the blob is in the cache. For a layer (index >= 0) it is published as soon as its
 * digest checks out, before the fsync and link that make it durable in the cache. */
int pull_fetch_blob(Pull *p, const char *digest, uint64_t size, ssize_t layer) {
        _cleanup_(blob_writer_freep) BlobWriter *w = NULL;
        _cleanup_free_ char *subject = NULL;
        Download d = { .pull = p, .count = layer >= 0, .layer = -1 };
        RegistrySink sink = {
                .reset = download_reset,
                .write = download_write,
                .cancelled = download_cancelled,
                .userdata = &d,
        };
        uint64_t have;
        int fd, r;

        r = blob_cache_open_blob(p->cache, digest, &fd, &have);
        if (r >= 0) {
                if (layer >= 0)
                        atomic_fetch_add(&p->bytes_done, size);
                publish_layer(p, layer, fd, false);
                return 0;
        }
        if (r != -ENOENT)
                return worker_error_errno(r, "Cannot open cached blob %s: %m", digest);

        if (asprintf(&subject, "%s/%s@%s", p->ref->registry, p->ref->repository, digest) < 0)
                return -ENOMEM;
        r = blob_writer_new(p->cache, digest, size, subject, &w);
        if (r < 0)
                return r;
        d.writer = w;
        if (layer >= 0) {
                /* The decoder inflates the layer as it arrives (reading the file being written)
                 * rather than after the last byte: the pipeline starts at once, not a whole
                 * download later. It learns the verdict before its stream ends. */
                fd = fcntl(blob_writer_fd(w), F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return -errno;
                pthread_mutex_lock(&p->lock);
                p->blob_fds[layer] = fd;
                p->feeding[layer] = true;
                p->written[layer] = 0;
                d.layer = layer;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
        }
        r = registry_get_blob(p->client, digest, &sink);
        d.compare = mfree(d.compare);
        if (r >= 0)
                r = blob_writer_verify(w);
        if (r < 0) {
                atomic_fetch_sub(&p->bytes_done, d.counted);
                return r;
        }
        if (layer >= 0) {
                feed_update(&d);   /* the rest, before the decoder learns that this is the end */
                publish_layer(p, layer, -1, true);
        }
        return blob_writer_commit(w);
}

/* The k-th layer to download, decode and apply or merge. */
static size_t layer_at(Pull *p, size_t k) {
        return p->reverse ? p->manifest->n_layers - 1 - k : k;
}

static void *download_thread(void *userdata) {
        Pull *p = userdata;

        for (;;) {
                size_t i;
                int r;

                pthread_mutex_lock(&p->lock);
                if (atomic_load(&p->abort) || p->next_layer >= p->manifest->n_layers) {
                        pthread_mutex_unlock(&p->lock);
                        break;
                }
                i = layer_at(p, p->next_layer++);
                p->states[i] = LAYER_DOWNLOADING;
                pthread_mutex_unlock(&p->lock);

                r = pull_fetch_blob(p, p->manifest->layers[i].digest, p->manifest->layers[i].size, (ssize_t) i);
                if (r < 0) {
                        pthread_mutex_lock(&p->lock);
                        p->states[i] = LAYER_FAILED;
                        pthread_mutex_unlock(&p->lock);
                        pull_abort(p);
                        break;
                }
        }
        return NULL;
}

/* Until layer i's blob can be read: verified, or downloading and fed to the decoder. */
static int wait_for_layer(Pull *p, size_t i) {
        int r = 0;

        pthread_mutex_lock(&p->lock);
        while ((p->states[i] == LAYER_PENDING || (p->states[i] == LAYER_DOWNLOADING && !p->feeding[i])) &&
               !atomic_load(&p->abort))
                pthread_cond_wait(&p->cond, &p->lock);
        if ((p->states[i] != LAYER_DOWNLOADED && p->states[i] != LAYER_DOWNLOADING) || atomic_load(&p->abort))
                r = -ECANCELED;
        pthread_mutex_unlock(&p->lock);
        return r;
}

typedef struct LayerFeed {
        Pull *pull;
        size_t layer;
} LayerFeed;

/* BlobFeed.wait() for a layer still downloading. */
static int feed_wait(void *userdata, uint64_t offset, uint64_t *ret_size) {
        LayerFeed *f = userdata;
        Pull *p = f->pull;
        int r = 0;

        pthread_mutex_lock(&p->lock);
        while (p->states[f->layer] == LAYER_DOWNLOADING && p->written[f->layer] <= offset && !atomic_load(&p->abort)) {
                p->feed_waiters++;
                pthread_cond_wait(&p->feed_cond, &p->lock);
                p->feed_waiters--;
        }
        if (atomic_load(&p->abort) || (p->states[f->layer] != LAYER_DOWNLOADING && p->states[f->layer] != LAYER_DOWNLOADED))
                r = -ECANCELED;
        else
                *ret_size = p->written[f->layer];
        pthread_mutex_unlock(&p->lock);
        return r;
}

/* Decoders take layers in order, so the applier's next layer is always the first decoded. */
static void *decode_thread(void *userdata) {
        Pull *p = userdata;

        for (;;) {
                _cleanup_free_ char *subject = NULL;
                size_t i, k;
                bool feed, verify;
                int fd, r;

                pthread_mutex_lock(&p->lock);
                if (atomic_load(&p->abort) || p->next_decode >= p->manifest->n_layers) {
                        pthread_mutex_unlock(&p->lock);
                        break;
                }
                k = p->next_decode++;
                i = layer_at(p, k);
                /* Decoders block on a full stream anyway; not starting layers far ahead of the
                 * applier keeps the streams holding data (and their memory) to max_ahead. */
                while (k >= atomic_load(&p->layers_applied) + p->max_ahead && !atomic_load(&p->abort))
                        pthread_cond_wait(&p->cond, &p->lock);
                pthread_mutex_unlock(&p->lock);

                if (wait_for_layer(p, i) < 0) {
                        layer_stream_finish(p->streams[i], -ECANCELED);
                        break;
                }
                pthread_mutex_lock(&p->lock);
                fd = p->blob_fds[i];
                p->blob_fds[i] = -1;
                /* a blob verified before the decoder came needs no feed */
                feed = p->feeding[i] && p->states[i] == LAYER_DOWNLOADING;
                /* a blob from the cache is hashed again: it may have been damaged there */
                verify = !p->fresh[i] && !p->feeding[i];
                pthread_mutex_unlock(&p->lock);

                if (asprintf(&subject, "%zu/%zu (%s)", i + 1, p->manifest->n_layers, p->manifest->layers[i].digest) < 0)
                        subject = NULL;
                r = layer_decode(fd, feed ? &p->feeds[i] : NULL, p->manifest->layers[i].compression,
                                 p->manifest->layers[i].digest, p->config->diff_ids[i], verify,
                                 strna(subject), &p->budget, p->streams[i], &p->abort);
                close(fd);
                if (r < 0) {
                        pull_abort(p);
                        break;
                }
        }
        return NULL;
}

int pull_read_blob(Pull *p, const char *digest, size_t max, char **ret) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        uint64_t size;
        char actual[72];
        ssize_t n;
        int r;

        r = blob_cache_open_blob(p->cache, digest, &fd, &size);
        if (r < 0)
                return worker_error_errno(r, "Cannot open cached blob %s: %m", digest);
        if (size > max)
                return worker_error_errno(EFBIG, "Blob %s is too large (%" PRIu64 " bytes)", digest, size);
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, size, 0);
        if (n < 0 || (uint64_t) n != size)
                return worker_error_errno(n < 0 ? errno : EIO, "Cannot read cached blob %s", digest);
        buf[size] = 0;
        r = sha256_digest_of(buf, size, actual);
        if (r < 0)
                return r;
        if (!streq(actual, digest))
                return worker_error_errno(EBADMSG, "digest mismatch: cached blob %s has digest %s", digest, actual);
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- applying ---- */

typedef struct LayerReader {
        Pull *pull;
        LayerStream *stream;
} LayerReader;

static la_ssize_t layer_read(struct archive *a, void *userdata, const void **ret) {
        LayerReader *lr = userdata;
        ssize_t n;

        if (cancelled() || atomic_load(&lr->pull->abort)) {
                archive_set_error(a, ECANCELED, "cancelled");
                return -1;
        }
        n = layer_stream_read(lr->stream, NULL, READ_BUFFER_SIZE, ret);
        if (n < 0) {
                archive_set_error(a, (int) -n, "decoding the layer failed");
                return -1;
        }
        return n;
}

static void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}

static int apply_layer(Pull *p, LayerApplier *applier, LayerMerger *merger, size_t i) {
        _cleanup_(archive_read_freep) struct archive *ar = NULL;
        _cleanup_free_ char *subject = NULL;
        LayerReader lr = { .pull = p, .stream = p->streams[i] };
        int r;

        if (asprintf(&subject, "%zu/%zu (%s)", i + 1, p->manifest->n_layers, p->manifest->layers[i].digest) < 0)
                return -ENOMEM;
        ar = archive_read_new();
        if (!ar)
                return -ENOMEM;
        archive_read_support_filter_none(ar);
        archive_read_support_format_tar(ar);
        archive_read_support_format_empty(ar);
        if (archive_read_open(ar, &lr, NULL, layer_read, NULL) != ARCHIVE_OK)
                return worker_error_errno(EBADMSG, "Layer %s is not a tar archive: %s", subject,
                                          strna(archive_error_string(ar)));
        r = merger ? layer_merger_merge(merger, ar, subject) : layer_applier_apply(applier, ar, subject);
        if (r < 0)
                return r;
        /* The tar reader stops at the end-of-archive blocks; the decoder still has to hash the
         * rest and compare the diff_id. Only a layer that checked out counts as applied. */
        return layer_stream_wait(lr.stream);
}

int pull_download_and_apply(Pull *p, LayerApplier *applier, LayerMerger *merger) {
        size_t n = p->manifest->n_layers;
        unsigned jobs = (unsigned) MIN((size_t) p->args->jobs, MAX(n, (size_t) 1));
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned decoders = (unsigned) MIN((size_t) MAX(ncpu, 1L), MAX(n, (size_t) 1));
        pthread_t threads[64];
        size_t stream_bytes;
        unsigned started = 0;
        int r = 0;

        decoders = MIN(decoders, 16U);
        p->max_ahead = decoders + 1;
        p->reverse = merger;
        /* Streams holding data: the applier's and max_ahead more. They share a fixed amount of
         * memory, so that on a small machine decoders can run well ahead of the applier (the
         * applier waiting for a decoder costs more than the memory) and on a big one the total
         * stays the same. */
        stream_bytes = STREAMS_MEMORY / (p->max_ahead + 1);
        p->states = calloc(MAX(n, (size_t) 1), sizeof(LayerState));
        p->blob_fds = calloc(MAX(n, (size_t) 1), sizeof(int));
        p->fresh = calloc(MAX(n, (size_t) 1), sizeof(bool));
        p->streams = calloc(MAX(n, (size_t) 1), sizeof(LayerStream *));
        p->feeding = calloc(MAX(n, (size_t) 1), sizeof(bool));
        p->written = calloc(MAX(n, (size_t) 1), sizeof(uint64_t));
        p->feeds = calloc(MAX(n, (size_t) 1), sizeof(BlobFeed));
        p->layer_feeds = calloc(MAX(n, (size_t) 1), sizeof(LayerFeed));
        if (!p->states || !p->blob_fds || !p->streams || !p->fresh || !p->feeding || !p->written || !p->feeds ||
            !p->layer_feeds)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                LayerFeed *f = (LayerFeed *) p->layer_feeds + i;

                *f = (LayerFeed) { .pull = p, .layer = i };
                p->feeds[i] = (BlobFeed) { .wait = feed_wait, .userdata = f };
                p->blob_fds[i] = -1;
                p->bytes_total += p->manifest->layers[i].size;
                r = layer_stream_new(stream_bytes, &p->streams[i]);
                if (r < 0)
                        return r;
        }
        pull_progress(p, true);

        for (unsigned j = 0; j < jobs + decoders; j++) {
                if (pthread_create(&threads[j], NULL, j < jobs ? download_thread : decode_thread, p) != 0) {
                        r = worker_error_errno(EAGAIN, "Cannot start a thread");
                        break;
                }
                started++;
        }

        /* Layer i is applied while i+1… download and decompress. */
        for (size_t k = 0; r >= 0 && k < n; k++) {
                size_t i = layer_at(p, k);

                r = apply_layer(p, applier, merger, i);
                if (r < 0)
                        break;
                /* drop the decoded layer now rather than hold every layer in memory */
                pthread_mutex_lock(&p->lock);
                p->streams[i] = layer_stream_free(p->streams[i]);
                atomic_fetch_add(&p->layers_applied, 1);
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
                pull_progress(p, true);
        }
        if (r < 0)
                pull_abort(p);
        for (unsigned j = 0; j < started; j++)
                pthread_join(threads[j], NULL);
        if (!p->t_downloaded)
                p->t_downloaded = now_usec();
        return r;
}

void pull_layers_reset(Pull *p) {
        for (size_t i = 0; p->manifest && i < p->manifest->n_layers; i++) {
                if (p->blob_fds)
                        safe_close(p->blob_fds[i]);
                if (p->streams)
                        layer_stream_free(p->streams[i]);
        }
        p->states = mfree(p->states);
        p->blob_fds = mfree(p->blob_fds);
        p->fresh = mfree(p->fresh);
        p->feeding = mfree(p->feeding);
        p->written = mfree(p->written);
        p->feeds = mfree(p->feeds);
        p->layer_feeds = mfree(p->layer_feeds);
        p->streams = mfree(p->streams);
        p->next_layer = p->next_decode = 0;
        atomic_store(&p->abort, false);
        atomic_store(&p->budget.used, 0);
        p->bytes_total = 0;
        atomic_store(&p->bytes_done, 0);
        atomic_store(&p->layers_downloaded, 0);
        atomic_store(&p->layers_applied, 0);
        p->t_downloaded = 0;
}
