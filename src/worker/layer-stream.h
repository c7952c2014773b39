/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* A byte stream from one producer thread (a layer decoder) to one consumer thread (the layer
 * applier), in memory and bounded: at most max_bytes wait in it, then the producer blocks until
 * the consumer catches up. So a decoded layer never piles up in memory or on disk
 * whatever it unpacks to, and a decoder can only run that far ahead of the applier. Chunks are
 * recycled through a small pool, so their pages are faulted in once per process, not per layer.
 * The reader blocks until data arrives, the producer finishes, or the stream is aborted. */
typedef struct LayerStream LayerStream;

/* a chunk is one 2 MiB allocation, its header included */
#define LAYER_STREAM_CHUNK_ALLOC (2U * 1024U * 1024U)
#define LAYER_STREAM_CHUNK_SIZE (LAYER_STREAM_CHUNK_ALLOC - 64U)
/* the least a stream can hold: a few chunks queued, the one being filled, the one being read */
#define LAYER_STREAM_MIN_BYTES (4U * LAYER_STREAM_CHUNK_SIZE)

/* max_bytes is rounded down to whole chunks, and up to LAYER_STREAM_MIN_BYTES. */
int layer_stream_new(size_t max_bytes, LayerStream **ret);
LayerStream *layer_stream_free(LayerStream *s);

/* Producer: room to write into (1 … LAYER_STREAM_CHUNK_SIZE bytes), no copies; blocks while the
 * stream is full. -ECANCELED (or the abort's error) once the stream was aborted. */
int layer_stream_reserve(LayerStream *s, void **ret, size_t *ret_size);
/* Producer: the first n bytes of the room last reserved are data. */
int layer_stream_commit(LayerStream *s, size_t n);
/* Producer: reserve + copy + commit. */
int layer_stream_write(LayerStream *s, const void *p, size_t n);
/* Producer: error == 0: end of stream; otherwise the reader gets error. */
void layer_stream_finish(LayerStream *s, int error);

/* Any thread: ends the stream with error (< 0) for both sides; the first end stands. */
void layer_stream_abort(LayerStream *s, int error);

/* Consumer: up to n bytes at *ret, valid until the next call. 0 at the end, negative errno when
 * the producer failed or the stream was aborted. (scratch is unused; kept for the callers.) */
ssize_t layer_stream_read(LayerStream *s, void *scratch, size_t n, const void **ret);

/* Consumer: it needs no more data (a tar reader stops at the end-of-archive blocks); discards
 * whatever else comes and waits until the producer has finished: 0 if the whole stream checked
 * out, else its error. So the producer's verdict on the rest (the diff_id) is known before the
 * consumer goes on. */
int layer_stream_wait(LayerStream *s);
