/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "layer-stream.h"
#include "macro.h"

/* Chunks kept for reuse across streams: as many as the streams of one pull hold at most
 * (pull-layers.c's STREAMS_MEMORY), so a pull faults its stream memory in once. */
#define POOL_MAX 64U

typedef struct Chunk {
        struct Chunk *next;
        size_t len;
        char data[];
} Chunk;

struct LayerStream {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        Chunk *head, *tail;  /* full chunks, oldest first */
        size_t queued, max_queued;
        Chunk *filling;      /* the producer's */
        Chunk *reading;      /* the consumer's; *ret of the last read points into it */
        size_t read_off;
        bool finished, draining;
        int error;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static Chunk *pool;
static unsigned pool_size;

/* A chunk is one 2 MiB-aligned huge page where the kernel gives one (THP "madvise" mode, as
 * Debian's kernels run): the first touch of a fresh 4 KiB page costs 10-20 us on some VMs (a
 * decoder filling 300 MiB of fresh pages spent 0.6 CPU-s faulting), a huge page about 0.3 us per
 * 4 KiB of it. Without THP these are plain pages. */
static Chunk *chunk_alloc(void) {
        const size_t a = LAYER_STREAM_CHUNK_ALLOC;
        uint8_t *p, *aligned;
        size_t head;

        p = mmap(NULL, 2 * a, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        aligned = (uint8_t *) (((uintptr_t) p + a - 1) & ~((uintptr_t) a - 1));
        head = (size_t) (aligned - p);
        if (head > 0)
                (void) munmap(p, head);
        if (a - head > 0)
                (void) munmap(aligned + a, a - head);
        (void) madvise(aligned, a, MADV_HUGEPAGE);
        return (Chunk *) aligned;
}

static void chunk_release(Chunk *c) {
        if (c)
                (void) munmap(c, LAYER_STREAM_CHUNK_ALLOC);
}

static Chunk *chunk_get(void) {
        Chunk *c;

        pthread_mutex_lock(&pool_lock);
        c = pool;
        if (c) {
                pool = c->next;
                pool_size--;
        }
        pthread_mutex_unlock(&pool_lock);
        if (!c)
                c = chunk_alloc();
        if (c) {
                c->next = NULL;
                c->len = 0;
        }
        return c;
}

static void chunk_put(Chunk *c) {
        if (!c)
                return;
        pthread_mutex_lock(&pool_lock);
        if (pool_size < POOL_MAX) {
                c->next = pool;
                pool = c;
                pool_size++;
                c = NULL;
        }
        pthread_mutex_unlock(&pool_lock);
        chunk_release(c);
}

int layer_stream_new(size_t max_bytes, LayerStream **ret) {
        LayerStream *s;

        s = calloc(1, sizeof(LayerStream));
        if (!s)
                return -ENOMEM;
        s->max_queued = MAX(max_bytes, (size_t) LAYER_STREAM_MIN_BYTES) / LAYER_STREAM_CHUNK_SIZE - 2;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        *ret = s;
        return 0;
}

/* With the lock held. */
static void discard_queue(LayerStream *s) {
        while (s->head) {
                Chunk *c = s->head;
                s->head = c->next;
                chunk_put(c);
        }
        s->tail = NULL;
        s->queued = 0;
}

LayerStream *layer_stream_free(LayerStream *s) {
        if (!s)
                return NULL;
        discard_queue(s);
        chunk_put(s->filling);
        chunk_put(s->reading);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
        return NULL;
}

/* Hands the producer's chunk to the consumer, waiting for room. With the lock held. */
static int enqueue(LayerStream *s) {
        Chunk *c = TAKE_PTR(s->filling);

        while (s->queued >= s->max_queued && !s->finished && !s->draining)
                pthread_cond_wait(&s->cond, &s->lock);
        if (s->finished || s->draining) {
                /* aborted, or the consumer needs no more: only the producer's verdict matters */
                chunk_put(c);
                return s->finished ? (s->error < 0 ? s->error : -ECANCELED) : 0;
        }
        if (s->tail)
                s->tail->next = c;
        else
                s->head = c;
        s->tail = c;
        s->queued++;
        pthread_cond_broadcast(&s->cond);
        return 0;
}

int layer_stream_reserve(LayerStream *s, void **ret, size_t *ret_size) {
        bool aborted;
        int e;

        pthread_mutex_lock(&s->lock);
        aborted = s->finished;
        e = s->error;
        pthread_mutex_unlock(&s->lock);
        if (aborted)
                return e < 0 ? e : -ECANCELED;

        if (!s->filling) {
                s->filling = chunk_get();
                if (!s->filling)
                        return -ENOMEM;
        }
        *ret = s->filling->data + s->filling->len;
        *ret_size = LAYER_STREAM_CHUNK_SIZE - s->filling->len;
        return 0;
}

int layer_stream_commit(LayerStream *s, size_t n) {
        int r = 0;

        if (!s->filling || n > LAYER_STREAM_CHUNK_SIZE - s->filling->len)
                return -EINVAL;
        s->filling->len += n;
        if (s->filling->len == LAYER_STREAM_CHUNK_SIZE) {
                pthread_mutex_lock(&s->lock);
                r = enqueue(s);
                pthread_mutex_unlock(&s->lock);
        }
        return r;
}

int layer_stream_write(LayerStream *s, const void *p, size_t n) {
        while (n > 0) {
                void *buf;
                size_t room;
                int r;

                r = layer_stream_reserve(s, &buf, &room);
                if (r < 0)
                        return r;
                room = MIN(room, n);
                memcpy(buf, p, room);
                r = layer_stream_commit(s, room);
                if (r < 0)
                        return r;
                p = (const char *) p + room;
                n -= room;
        }
        return 0;
}

void layer_stream_finish(LayerStream *s, int error) {
        pthread_mutex_lock(&s->lock);
        if (error >= 0 && s->filling && s->filling->len > 0 && !s->finished)
                (void) enqueue(s);
        if (!s->finished) {
                /* the first word stands: an abort may have come before the producer's own end */
                s->finished = true;
                s->error = error < 0 ? error : 0;
        }
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

void layer_stream_abort(LayerStream *s, int error) {
        pthread_mutex_lock(&s->lock);
        if (!s->finished) {
                s->finished = true;
                s->error = error < 0 ? error : -ECANCELED;
        }
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

ssize_t layer_stream_read(LayerStream *s, void *scratch, size_t n, const void **ret) {
        size_t k;

        pthread_mutex_lock(&s->lock);
        if (s->reading && s->read_off >= s->reading->len) {
                chunk_put(TAKE_PTR(s->reading));
                s->read_off = 0;
        }
        if (!s->reading) {
                while (!s->head && !s->finished)
                        pthread_cond_wait(&s->cond, &s->lock);
                if (s->error < 0) {
                        int e = s->error;
                        pthread_mutex_unlock(&s->lock);
                        return e;
                }
                if (!s->head) {
                        pthread_mutex_unlock(&s->lock);
                        return 0;
                }
                s->reading = s->head;
                s->head = s->reading->next;
                if (!s->head)
                        s->tail = NULL;
                s->queued--;
                s->read_off = 0;
                pthread_cond_broadcast(&s->cond);
        } else if (s->error < 0) {
                int e = s->error;
                pthread_mutex_unlock(&s->lock);
                return e;
        }
        pthread_mutex_unlock(&s->lock);

        k = MIN(n, s->reading->len - s->read_off);
        *ret = s->reading->data + s->read_off;
        s->read_off += k;
        return (ssize_t) k;
}

int layer_stream_wait(LayerStream *s) {
        int r;

        pthread_mutex_lock(&s->lock);
        s->draining = true;
        for (;;) {
                discard_queue(s);
                pthread_cond_broadcast(&s->cond);
                if (s->finished)
                        break;
                pthread_cond_wait(&s->cond, &s->lock);
        }
        r = s->error;
        pthread_mutex_unlock(&s->lock);
        return r;
}
