/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs-util.h"
#include "layer-stream.h"
#include "macro.h"

/* Wake the reader once per this many bytes rather than per write. */
#define NOTIFY_BYTES (1024U * 1024U)

struct LayerStream {
        int fd;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        uint64_t written;  /* published to the reader */
        uint64_t pending;  /* written but not yet published */
        uint64_t read_pos;
        bool finished;
        int error;
};

int layer_stream_new(const char *dir, LayerStream **ret) {
        LayerStream *s;
        int fd;

        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        s = calloc(1, sizeof(LayerStream));
        if (!s) {
                close(fd);
                return -ENOMEM;
        }
        s->fd = fd;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->cond, NULL);
        *ret = s;
        return 0;
}

LayerStream *layer_stream_free(LayerStream *s) {
        if (!s)
                return NULL;
        safe_close(s->fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->cond);
        free(s);
        return NULL;
}

static void publish(LayerStream *s) {
        pthread_mutex_lock(&s->lock);
        s->written += s->pending;
        s->pending = 0;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

int layer_stream_write(LayerStream *s, const void *p, size_t n) {
        int r;

        /* Only the producer appends, so the file offset is ours without the lock. */
        r = loop_write(s->fd, p, n);
        if (r < 0)
                return r;
        s->pending += n;
        if (s->pending >= NOTIFY_BYTES)
                publish(s);
        return 0;
}

void layer_stream_finish(LayerStream *s, int error) {
        pthread_mutex_lock(&s->lock);
        if (s->finished) {
                /* the first word stands: an abort may race with the producer's own finish */
                pthread_mutex_unlock(&s->lock);
                return;
        }
        s->written += s->pending;
        s->pending = 0;
        s->finished = true;
        s->error = error < 0 ? error : 0;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
}

int layer_stream_wait(LayerStream *s) {
        int r;

        pthread_mutex_lock(&s->lock);
        while (!s->finished)
                pthread_cond_wait(&s->cond, &s->lock);
        r = s->error;
        pthread_mutex_unlock(&s->lock);
        return r;
}

ssize_t layer_stream_read(LayerStream *s, void *scratch, size_t n, const void **ret) {
        uint64_t avail;
        ssize_t k;

        pthread_mutex_lock(&s->lock);
        while (s->read_pos >= s->written && !s->finished)
                pthread_cond_wait(&s->cond, &s->lock);
        if (s->error < 0) {
                int e = s->error;
                pthread_mutex_unlock(&s->lock);
                return e;
        }
        avail = s->written - s->read_pos;
        pthread_mutex_unlock(&s->lock);

        if (avail == 0)
                return 0;
        n = (size_t) MIN((uint64_t) n, avail);
        do
                k = pread(s->fd, scratch, n, (off_t) s->read_pos);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        s->read_pos += (uint64_t) k;
        *ret = scratch;
        return k;
}
