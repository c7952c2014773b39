/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <sys/epoll.h>

#include "curl-event.h"

struct CurlEvent {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        char *description;
        curl_event_done_t done;
        void *userdata;
};

CurlEvent *curl_event_free(CurlEvent *c) {
        if (!c)
                return NULL;
        /* As slurm-rest.c did before the glue moved here: the multi handle first, its timer after. */
        if (c->multi)
                curl_multi_cleanup(c->multi);
        sd_event_source_disable_unref(c->timer);
        sd_event_unref(c->event);
        free(c->description);
        free(c);
        return NULL;
}

static void check_finished(CurlEvent *c) {
        CURLMsg *m;
        int left;

        /* Messages of handles removed by an earlier callback are dropped by libcurl. */
        while ((m = curl_multi_info_read(c->multi, &left)))
                if (m->msg == CURLMSG_DONE)
                        c->done(c, m->easy_handle, m->data.result, c->userdata);
}

static int on_curl_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlEvent *c = userdata;
        int action = 0, running;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;
        (void) curl_multi_socket_action(c->multi, fd, action, &running);
        check_finished(c);
        return 0;
}

/* libcurl tells us which sockets to watch; each gets an IO source, kept with curl_multi_assign. */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userdata, void *socketp) {
        _cleanup_free_ char *desc = NULL;
        CurlEvent *c = userdata;
        sd_event_source *s = socketp;
        uint32_t events = 0;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        sd_event_source_disable_unref(s);
                        curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }
        if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
                events |= EPOLLIN;
        if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
                events |= EPOLLOUT;

        if (s) {
                if (sd_event_source_set_io_events(s, events) < 0)
                        return -1;
                return sd_event_source_set_enabled(s, SD_EVENT_ON) < 0 ? -1 : 0;
        }
        if (sd_event_add_io(c->event, &s, fd, events, on_curl_io, c) < 0)
                return -1;
        if (asprintf(&desc, "%s-io", c->description) >= 0)
                (void) sd_event_source_set_description(s, desc);
        if (curl_multi_assign(c->multi, fd, s) != CURLM_OK) {
                sd_event_source_disable_unref(s);
                return -1;
        }
        return 0;
}

static int on_curl_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlEvent *c = userdata;
        int running;

        (void) curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_finished(c);
        return 0;
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userdata) {
        _cleanup_free_ char *desc = NULL;
        CurlEvent *c = userdata;
        uint64_t now;

        if (timeout_ms < 0)
                return c->timer ? (sd_event_source_set_enabled(c->timer, SD_EVENT_OFF) < 0 ? -1 : 0) : 0;
        if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        /* Accuracy 1 µs: sd-event's default (250 ms) would delay every request. */
        if (!c->timer) {
                if (sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, now + (uint64_t) timeout_ms * 1000, 1,
                                      on_curl_timer, c) < 0)
                        return -1;
                if (asprintf(&desc, "%s-timer", c->description) >= 0)
                        (void) sd_event_source_set_description(c->timer, desc);
                return 0;
        }
        if (sd_event_source_set_time(c->timer, now + (uint64_t) timeout_ms * 1000) < 0)
                return -1;
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int curl_event_new(sd_event *event, const char *description, curl_event_done_t done, void *userdata,
                   CurlEvent **ret) {
        _cleanup_(curl_event_freep) CurlEvent *c = NULL;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        c = calloc(1, sizeof(CurlEvent));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->done = done;
        c->userdata = userdata;
        c->description = strdup(description);
        if (!c->description)
                return -ENOMEM;
        c->multi = curl_multi_init();
        if (!c->multi)
                return -ENOMEM;
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
                return -EIO;
        *ret = TAKE_PTR(c);
        return 0;
}

int curl_event_add(CurlEvent *c, CURL *easy) {
        return curl_multi_add_handle(c->multi, easy) == CURLM_OK ? 0 : -EIO;
}

void curl_event_remove(CurlEvent *c, CURL *easy) {
        if (c && easy)
                (void) curl_multi_remove_handle(c->multi, easy);
}
