/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* A growing byte stream from one producer thread (a layer decoder) to one consumer thread (the
 * layer applier), backed by an unlinked temp file so that decoded layers can run ahead of the
 * applier without holding them in memory. The reader blocks until data arrives, the producer
 * finishes, or either side fails. */
typedef struct LayerStream LayerStream;

int layer_stream_new(const char *dir, LayerStream **ret);
LayerStream *layer_stream_free(LayerStream *s);

int layer_stream_write(LayerStream *s, const void *p, size_t n);
/* error == 0: end of stream; otherwise the reader gets error. */
void layer_stream_finish(LayerStream *s, int error);

/* Waits until the producer has finished: 0 if the whole stream checked out, else its error.
 * The consumer calls this when it needs no more data (a tar reader stops at the end-of-archive
 * blocks), so that the producer's verdict on the rest (the diff_id) is known before it goes on. */
int layer_stream_wait(LayerStream *s);

/* Returns up to n bytes at *ret (scratch, filled from the temp file). 0 at the end, negative errno when the producer failed. */
ssize_t layer_stream_read(LayerStream *s, void *scratch, size_t n, const void **ret);
