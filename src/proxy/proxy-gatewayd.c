/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "json-util.h"
#include "proxy-gatewayd.h"

#define ANSWER_MAX (256U * 1024U)
#define QUERY_TIMEOUT_USEC (5 * 1000000ULL)

struct GatewaydQuery {
        int fd;
        sd_event_source *io, *timer;
        char *request;
        size_t request_size, sent;
        char *answer;
        size_t answer_size;
        GatewaydAnswered done;
        void *userdata;
};

GatewaydQuery *gatewayd_query_free(GatewaydQuery *q) {
        if (!q)
                return NULL;
        sd_event_source_disable_unref(q->io);
        sd_event_source_disable_unref(q->timer);
        if (q->fd >= 0)
                close(q->fd);
        free(q->request);
        free(q->answer);
        free(q);
        return NULL;
}

/* Hands the outcome over and disarms the query (the callback may free it). */
static void query_finish(GatewaydQuery *q, int r, unsigned status, json_object *body) {
        q->io = sd_event_source_disable_unref(q->io);
        q->timer = sd_event_source_disable_unref(q->timer);
        q->done(r, status, body, q->userdata);
}

/* "HTTP/1.1 200 OK\r\n…\r\n\r\nBODY": gatewayd answers with Content-Length and closes. */
static void query_parse(GatewaydQuery *q) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *sep = q->answer ? strstr(q->answer, "\r\n\r\n") : NULL;
        unsigned status;

        if (!sep || sscanf(q->answer, "HTTP/1.%*1[01] %3u", &status) != 1)
                return query_finish(q, -EBADMSG, 0, NULL);
        body = json_tokener_parse(sep + 4);
        query_finish(q, 0, status, body);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        GatewaydQuery *q = userdata;
        ssize_t n;

        if (q->sent < q->request_size) {
                n = send(fd, q->request + q->sent, q->request_size - q->sent, MSG_NOSIGNAL);
                if (n < 0 && errno != EAGAIN)
                        return query_finish(q, -errno, 0, NULL), 0;
                if (n > 0)
                        q->sent += (size_t) n;
                if (q->sent == q->request_size)
                        (void) sd_event_source_set_io_events(s, EPOLLIN);
                return 0;
        }
        for (;;) {
                char buf[16384], *a;

                n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0)
                        return errno == EAGAIN ? 0 : (query_finish(q, -errno, 0, NULL), 0);
                if (n == 0)
                        return query_parse(q), 0;
                if (q->answer_size + (size_t) n > ANSWER_MAX)
                        return query_finish(q, -E2BIG, 0, NULL), 0;
                a = realloc(q->answer, q->answer_size + (size_t) n + 1);
                if (!a)
                        return query_finish(q, -ENOMEM, 0, NULL), 0;
                memcpy(a + q->answer_size, buf, (size_t) n);
                q->answer_size += (size_t) n;
                a[q->answer_size] = 0;
                q->answer = a;
        }
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        query_finish(userdata, -ETIMEDOUT, 0, NULL);
        return 0;
}

int gatewayd_query_start(sd_event *event, const char *socket_path, const char *path, GatewaydAnswered done,
                         void *userdata, GatewaydQuery **ret) {
        _cleanup_(gatewayd_query_freep) GatewaydQuery *q = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;

        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, socket_path);
        q = calloc(1, sizeof(GatewaydQuery));
        if (!q)
                return -ENOMEM;
        q->done = done;
        q->userdata = userdata;
        q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (q->fd < 0)
                return -errno;
        if (connect(q->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS && errno != EAGAIN)
                return -errno;
        if (asprintf(&q->request, "GET %s HTTP/1.1\r\nHost: gatewayd\r\nConnection: close\r\n\r\n", path) < 0) {
                q->request = NULL;
                return -ENOMEM;
        }
        q->request_size = strlen(q->request);
        r = sd_event_add_io(event, &q->io, q->fd, EPOLLOUT, on_io, q);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &q->timer, CLOCK_MONOTONIC, QUERY_TIMEOUT_USEC, 0, on_timeout, q);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(q);
        return 0;
}
