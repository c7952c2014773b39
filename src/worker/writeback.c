/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "writeback.h"

#define INTERVAL_NSEC (100 * 1000 * 1000L)

struct Writeback {
        int fd;
        bool stop;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
};

static void *writeback_thread(void *userdata) {
        Writeback *w = userdata;

        pthread_mutex_lock(&w->lock);
        while (!w->stop) {
                struct timespec until;

                clock_gettime(CLOCK_MONOTONIC, &until);
                until.tv_nsec += INTERVAL_NSEC;
                if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                }
                while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT)
                        ;
                if (w->stop)
                        break;
                pthread_mutex_unlock(&w->lock);
                /* only starts I/O on the dirty pages; errors show up in the final fsync() */
                (void) sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
                pthread_mutex_lock(&w->lock);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

Writeback *writeback_start(int fd) {
        pthread_condattr_t attr;
        Writeback *w;

        w = calloc(1, sizeof(Writeback));
        if (!w)
                return NULL;
        w->fd = fd;
        pthread_mutex_init(&w->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &attr);
        pthread_condattr_destroy(&attr);
        if (pthread_create(&w->thread, NULL, writeback_thread, w) != 0) {
                pthread_mutex_destroy(&w->lock);
                pthread_cond_destroy(&w->cond);
                free(w);
                return NULL;
        }
        return w;
}

void writeback_stop(Writeback *w) {
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
}
