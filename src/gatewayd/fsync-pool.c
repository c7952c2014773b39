/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fsync-pool.h"
#include "log.h"
#include "macro.h"

/* Enough for the flushes of a burst of submissions to overlap; each thread waits for the disk,
 * not for a CPU. */
#define FSYNC_THREADS 4

typedef struct FsyncRequest {
        int *fds;
        size_t n_fds, next;     /* next: the first fd no thread has taken yet */
        size_t remaining;       /* taken or not, not flushed yet */
        int r;
        FsyncPoolDone done;
        void *userdata;
        struct FsyncRequest *next_request;
} FsyncRequest;

struct FsyncPool {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        pthread_t threads[FSYNC_THREADS];
        size_t n_threads;
        bool stopping;
        FsyncRequest *queue, **queue_tail;      /* with fds no thread has taken */
        FsyncRequest *finished, **finished_tail; /* all flushed, for the loop, in order */
        size_t n_requests;                      /* queued or being flushed */

        int event_fd;
        sd_event_source *event_source;
};

static void request_free(FsyncRequest *q) {
        for (size_t i = 0; i < q->n_fds; i++)
                safe_close(q->fds[i]);
        free(q->fds);
        free(q);
}

static void *fsync_thread(void *userdata) {
        FsyncPool *p = userdata;
        uint64_t one = 1;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                FsyncRequest *q;
                int fd, r;

                /* Stopping only once the queue is empty: every request ends flushed. */
                while (!p->queue && !p->stopping)
                        pthread_cond_wait(&p->wake, &p->lock);
                q = p->queue;
                if (!q)
                        break;
                fd = q->fds[q->next++];
                if (q->next == q->n_fds) {
                        p->queue = q->next_request;
                        if (!p->queue)
                                p->queue_tail = &p->queue;
                        q->next_request = NULL;
                }
                pthread_mutex_unlock(&p->lock);

                r = fsync(fd) < 0 ? -errno : 0;

                pthread_mutex_lock(&p->lock);
                if (r < 0 && q->r == 0)
                        q->r = r;
                if (--q->remaining == 0) {
                        *p->finished_tail = q;
                        p->finished_tail = &q->next_request;
                        if (write(p->event_fd, &one, sizeof(one)) < 0)
                                log_debug_errno(errno, "Failed to wake the loop for a finished fsync: %m");
                }
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

/* Calls the callbacks of finished requests, in the order they finished. */
static void fsync_pool_dispatch(FsyncPool *p) {
        FsyncRequest *list;

        pthread_mutex_lock(&p->lock);
        list = p->finished;
        p->finished = NULL;
        p->finished_tail = &p->finished;
        pthread_mutex_unlock(&p->lock);

        while (list) {
                FsyncRequest *q = list;

                list = q->next_request;
                p->n_requests--;
                q->done(q->r, q->userdata);
                request_free(q);
        }
}

static int on_event_fd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t n;

        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                log_debug_errno(errno, "Failed to read the fsync pool's eventfd: %m");
        fsync_pool_dispatch(userdata);
        return 0;
}

int fsync_pool_new(sd_event *e, FsyncPool **ret) {
        FsyncPool *p;
        int r;

        p = calloc(1, sizeof(FsyncPool));
        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        p->queue_tail = &p->queue;
        p->finished_tail = &p->finished;
        p->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->event_fd < 0) {
                r = -errno;
                fsync_pool_free(p);
                return r;
        }
        r = sd_event_add_io(e, &p->event_source, p->event_fd, EPOLLIN, on_event_fd, p);
        if (r < 0) {
                fsync_pool_free(p);
                return r;
        }
        (void) sd_event_source_set_description(p->event_source, "fsync-pool");
        *ret = p;
        return 0;
}

FsyncPool *fsync_pool_free(FsyncPool *p) {
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        for (size_t i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        fsync_pool_dispatch(p);
        sd_event_source_disable_unref(p->event_source);
        safe_close(p->event_fd);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        return mfree(p);
}

/* One more thread while there are more requests than threads, up to FSYNC_THREADS. */
static void fsync_pool_grow(FsyncPool *p) {
        sigset_t all, old;
        int r;

        if (p->n_threads >= FSYNC_THREADS || p->n_threads >= p->n_requests)
                return;
        /* Signals stay with the loop's thread (sd-event takes them by signalfd). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&p->threads[p->n_threads], NULL, fsync_thread, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot start an fsync thread, going on with %zu: %m", p->n_threads);
        else
                p->n_threads++;
}

int fsync_pool_sync(FsyncPool *p, int *fds, size_t n_fds, FsyncPoolDone done, void *userdata) {
        FsyncRequest *q;

        q = calloc(1, sizeof(FsyncRequest));
        if (!q) {
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                free(fds);
                return -ENOMEM;
        }
        *q = (FsyncRequest) { .fds = fds, .n_fds = n_fds, .remaining = n_fds, .done = done, .userdata = userdata };
        p->n_requests++;
        fsync_pool_grow(p);
        if (p->n_threads == 0) {
                /* No thread to be had: flushed here, reported from the loop as always. */
                for (size_t i = 0; i < n_fds; i++)
                        if (fsync(fds[i]) < 0 && q->r == 0)
                                q->r = -errno;
                q->remaining = 0;
                q->next = n_fds;
        }

        pthread_mutex_lock(&p->lock);
        if (q->remaining == 0) {
                *p->finished_tail = q;
                p->finished_tail = &q->next_request;
                if (write(p->event_fd, &(uint64_t) { 1 }, sizeof(uint64_t)) < 0)
                        log_debug_errno(errno, "Failed to wake the loop for a finished fsync: %m");
        } else {
                *p->queue_tail = q;
                p->queue_tail = &q->next_request;
                pthread_cond_broadcast(&p->wake);
        }
        pthread_mutex_unlock(&p->lock);
        return 0;
}
