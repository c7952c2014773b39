/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "http-server.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* libmicrohttpd runs on our sd-event loop: its epoll fd is an IO source, and the timeout it
 * wants is a relative timer that we re-arm after every run. No threads, so handlers can touch the
 * Manager freely. */

struct HttpPeer {
        Caller caller;
        int fd;
};

struct HttpStream {
        unsigned n_ref;
        HttpServer *server;
        struct MHD_Connection *connection;
        char *buf;
        size_t size, used;
        bool finished;  /* the producer is done: end of body once buf is drained */
        bool suspended; /* waiting for data */
        bool closed;    /* libmicrohttpd dropped the response: sent, or the client went away */
        HttpStream *suspended_prev, *suspended_next;
};

struct HttpServer {
        Manager *manager;
        struct MHD_Daemon *daemon;
        sd_event_source *io_source;
        sd_event_source *timer_source;
        const HttpRoute *routes;
        size_t n_routes;
        unsigned n_connections;
        int listen_fd;
        HttpRequest *suspended_requests;
        HttpStream *suspended_streams;
};

#define LIST_PREPEND(head, item, prefix)                                \
        do {                                                            \
                (item)->prefix##_prev = NULL;                           \
                (item)->prefix##_next = (head);                         \
                if (head)                                               \
                        (head)->prefix##_prev = (item);                 \
                (head) = (item);                                        \
        } while (0)

#define LIST_REMOVE(head, item, prefix)                                 \
        do {                                                            \
                if ((item)->prefix##_next)                              \
                        (item)->prefix##_next->prefix##_prev = (item)->prefix##_prev; \
                if ((item)->prefix##_prev)                              \
                        (item)->prefix##_prev->prefix##_next = (item)->prefix##_next; \
                else                                                    \
                        (head) = (item)->prefix##_next;                 \
                (item)->prefix##_prev = (item)->prefix##_next = NULL;   \
        } while (0)

static void http_server_arm_timer(HttpServer *s) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        usec_t now;

        if (MHD_get_timeout(s->daemon, &timeout_ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_now(s->manager->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(s->timer_source, now + timeout_ms * 1000);
        (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
}

static void http_server_run(HttpServer *s) {
        if (MHD_run(s->daemon) != MHD_YES)
                log_warning("libmicrohttpd failed to process connections.");
        http_server_arm_timer(s);
}

/* An external-loop libmicrohttpd does not wake itself for a resumed connection: run it from the
 * loop right away (a zero timer, so the reply is sent after the current callback unwinds). */
static void http_server_wake(HttpServer *s) {
        (void) sd_event_source_set_time(s->timer_source, 0);
        (void) sd_event_source_set_enabled(s->timer_source, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        http_server_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        http_server_run(userdata);
        return 0;
}

static void peer_read_credentials(HttpPeer *p) {
        struct ucred uc = {};
        socklen_t len = sizeof(uc);

        /* Without credentials the peer is nobody: it can still read public data, never act. */
        p->caller = (Caller) { .uid = (uid_t) 65534, .gid = (gid_t) 65534, .pid = 0, .pidfd = -1 };
        if (getsockopt(p->fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0) {
                log_warning("Failed to read peer credentials: %m");
                return;
        }
        p->caller.uid = uc.uid;
        p->caller.gid = uc.gid;
        p->caller.pid = uc.pid;
}

static void on_connection_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                                 enum MHD_ConnectionNotificationCode toe) {
        HttpServer *s = cls;
        HttpPeer *p;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *info;

                p = calloc(1, sizeof(HttpPeer));
                if (!p)
                        return;
                info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
                p->fd = info ? info->connect_fd : -1;
                peer_read_credentials(p);
                *socket_context = p;
                s->n_connections++;
                manager_touch(s->manager);
                return;
        }

        p = *socket_context;
        if (p) {
                safe_close(p->caller.pidfd);
                free(p);
                *socket_context = NULL;
        }
        if (s->n_connections > 0)
                s->n_connections--;
        manager_touch(s->manager);
}

const Caller *http_request_caller(HttpRequest *req) {
        static const Caller nobody = { .uid = 65534, .gid = 65534, .pidfd = -1 };
        HttpPeer *p = req->peer;

        if (!p)
                return &nobody;
        if (p->caller.pidfd < 0 && p->fd >= 0) {
                int pidfd = -1;
                socklen_t len = sizeof(pidfd);

                /* Pins the peer process for polkit checks (kernel >= 6.5). */
                if (getsockopt(p->fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) >= 0)
                        p->caller.pidfd = pidfd;
        }
        return &p->caller;
}

static void http_request_free(HttpRequest *req) {
        if (!req)
                return;
        if (req->response)
                MHD_destroy_response(req->response);
        if (req->free_userdata)
                req->free_userdata(req->userdata);
        free(req->body);
        free(req);
}

static void on_request_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                                 enum MHD_RequestTerminationCode toe) {
        http_request_free(*req_cls);
        *req_cls = NULL;
}

static void http_request_attach_response(HttpRequest *req, unsigned status, struct MHD_Response *r);

static void http_request_set_response_typed(HttpRequest *req, unsigned status, const char *content_type,
                                            const char *data, size_t size) {
        struct MHD_Response *r;

        if (req->response) {
                log_error("BUG: second reply to %s %s ignored.", req->method, req->url);
                return;
        }
        r = MHD_create_response_from_buffer(size, (void *) data, MHD_RESPMEM_MUST_COPY);
        if (!r)
                return;
        if (size > 0)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        http_request_attach_response(req, status, r);
}

static void http_request_set_response(HttpRequest *req, unsigned status, const char *data, size_t size) {
        http_request_set_response_typed(req, status, "application/json", data, size);
}

void http_request_reply_data(HttpRequest *req, unsigned status, const char *content_type, const char *data, size_t size) {
        http_request_set_response_typed(req, status, content_type, data, size);
}

static void http_request_attach_response(HttpRequest *req, unsigned status, struct MHD_Response *r) {
        req->response = r;
        req->status = status;

        if (req->suspended) {
                req->suspended = false;
                LIST_REMOVE(req->server->suspended_requests, req, suspended);
                MHD_resume_connection(req->connection);
                http_server_wake(req->server);
                manager_busy_unref(req->manager);
        }
}

void http_request_reply_text(HttpRequest *req, unsigned status, const char *json_text) {
        http_request_set_response(req, status, json_text, strlen(json_text));
}

void http_request_reply_json(HttpRequest *req, unsigned status, json_object *body) {
        const char *t;

        if (!body) {
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return;
        }
        t = json_text(body);
        http_request_set_response(req, status, t, strlen(t));
        json_object_put(body);
}

void http_request_reply_empty(HttpRequest *req, unsigned status) {
        http_request_set_response(req, status, "", 0);
}

void http_request_reply_error(HttpRequest *req, const GwError *e) {
        GwErrorCode code = e && e->code != GW_ERROR_NONE ? e->code : GW_ERROR_INTERNAL;
        json_object *o = json_object_new_object(), *err = json_object_new_object();

        json_object_object_add(err, "code", json_object_new_string(gw_error_http_code(code)));
        json_object_object_add(err, "message", json_object_new_string(e && e->message ? e->message : "Internal error."));
        json_object_object_add(o, "error", err);
        http_request_reply_json(req, gw_error_http_status(code), o);
}

void http_request_reply_errorf(HttpRequest *req, GwErrorCode code, const char *format, ...) {
        GwError e = { .code = code };
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&e.message, format, ap) < 0)
                e.message = NULL;
        va_end(ap);
        http_request_reply_error(req, &e);
        free(e.message);
}

void http_request_add_header(HttpRequest *req, const char *name, const char *value) {
        if (req->response)
                MHD_add_response_header(req->response, name, value);
}

HttpStream *http_stream_ref(HttpStream *s) {
        if (s)
                s->n_ref++;
        return s;
}

HttpStream *http_stream_unref(HttpStream *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        free(s->buf);
        free(s);
        return NULL;
}

bool http_stream_is_closed(HttpStream *s) {
        return s->closed;
}

static void http_stream_resume(HttpStream *s) {
        if (!s->suspended || s->closed)
                return;
        s->suspended = false;
        LIST_REMOVE(s->server->suspended_streams, s, suspended);
        MHD_resume_connection(s->connection);
        http_server_wake(s->server);
}

int http_stream_write(HttpStream *s, const void *data, size_t size) {
        if (s->closed || s->finished)
                return -EPIPE;
        if (s->used + size > s->size) {
                size_t ns = MAX(s->size * 2, s->used + size);
                char *b = realloc(s->buf, ns);
                if (!b)
                        return -ENOMEM;
                s->buf = b;
                s->size = ns;
        }
        memcpy(s->buf + s->used, data, size);
        s->used += size;
        http_stream_resume(s);
        return 0;
}

void http_stream_finish(HttpStream *s) {
        s->finished = true;
        http_stream_resume(s);
}

static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
        HttpStream *s = cls;
        size_t n;

        if (s->used == 0) {
                if (s->finished)
                        return MHD_CONTENT_READER_END_OF_STREAM;
                /* Nothing to send yet: park the connection until the producer writes. */
                s->suspended = true;
                LIST_PREPEND(s->server->suspended_streams, s, suspended);
                MHD_suspend_connection(s->connection);
                return 0;
        }
        n = MIN(max, s->used);
        memcpy(buf, s->buf, n);
        memmove(s->buf, s->buf + n, s->used - n);
        s->used -= n;
        return (ssize_t) n;
}

static void http_stream_response_freed(void *cls) {
        HttpStream *s = cls;

        s->closed = true;
        if (s->suspended) {
                s->suspended = false;
                LIST_REMOVE(s->server->suspended_streams, s, suspended);
        }
        http_stream_unref(s);
}

HttpStream *http_request_reply_stream(HttpRequest *req, const char *content_type) {
        struct MHD_Response *r;
        HttpStream *s;

        s = calloc(1, sizeof(HttpStream));
        if (!s) {
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return NULL;
        }
        *s = (HttpStream) { .n_ref = 2, .server = req->server, .connection = req->connection };

        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, http_stream_read, s,
                                              http_stream_response_freed);
        if (!r) {
                free(s);
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return NULL;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        /* Proxies and curl should hand lines on as they come. */
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
        http_request_attach_response(req, MHD_HTTP_OK, r);
        return s;
}

int http_request_keep_string(HttpRequest *req, const char *s) {
        if (req->free_userdata)
                req->free_userdata(req->userdata);
        req->userdata = strdup(s);
        req->free_userdata = free;
        if (!req->userdata) {
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return -ENOMEM;
        }
        return 0;
}

void http_request_suspend(HttpRequest *req) {
        /* The actual MHD_suspend_connection() happens when the handler returns (see
         * on_access); a reply that arrives before that simply cancels the suspension. */
        if (req->response || req->suspended)
                return; /* answered already (the operation completed at once) */
        req->suspended = true;
        manager_busy_ref(req->manager);
}

const char *http_request_query(HttpRequest *req, const char *key) {
        return MHD_lookup_connection_value(req->connection, MHD_GET_ARGUMENT_KIND, key);
}

static bool content_type_is_json(const char *ct) {
        size_t n = strlen("application/json");

        if (!ct || strncasecmp(ct, "application/json", n) != 0)
                return false;
        return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

int http_json_body_parse(const char *body, size_t size, json_object **ret, GwError *e) {
        json_tokener *tok;
        json_object *o;

        if (size == 0)
                return gw_error_set(e, GW_ERROR_BAD_REQUEST, "Request body is empty; a JSON object is required.");
        if (size > INT_MAX)
                return gw_error_set(e, GW_ERROR_PAYLOAD_TOO_LARGE, "Request body is too large.");

        tok = json_tokener_new();
        if (!tok)
                return gw_error_set(e, GW_ERROR_INTERNAL, "Out of memory.");
        /* JSON is UTF-8; invalid bytes would end up in D-Bus strings, which must be valid. */
        json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, body, (int) size);
        if (!o || json_tokener_get_parse_end(tok) != size) {
                enum json_tokener_error jerr = json_tokener_get_error(tok);
                size_t end = json_tokener_get_parse_end(tok);

                /* Trailing white space after a complete document is fine. */
                while (o && end < size && strchr(" \t\r\n", body[end]))
                        end++;
                if (!o || end != size) {
                        gw_error_set(e, GW_ERROR_BAD_REQUEST, "Malformed JSON in request body at offset %zu: %s",
                                     end, o ? "unexpected data after the document"
                                            : jerr == json_tokener_continue ? "unexpected end of input"
                                                                             : json_tokener_error_desc(jerr));
                        json_object_put(o);
                        json_tokener_free(tok);
                        return -EINVAL;
                }
        }
        json_tokener_free(tok);
        *ret = o;
        return 0;
}

json_object *http_request_json_body(HttpRequest *req) {
        const char *ct = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o;

        if (!content_type_is_json(ct)) {
                http_request_reply_errorf(req, GW_ERROR_UNSUPPORTED_MEDIA_TYPE,
                                          "Request body must be application/json (got %s).", ct ? ct : "no Content-Type");
                return NULL;
        }
        if (http_json_body_parse(req->body, req->body_size, &o, &e) < 0) {
                http_request_reply_error(req, &e);
                return NULL;
        }
        return o;
}

static void http_request_dispatch(HttpRequest *req) {
        HttpServer *s = req->server;
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        const HttpRoute *route;
        char allow[128];

        switch (http_route_match(s->routes, s->n_routes, req->method, req->url, &route, captures, allow, sizeof(allow))) {
        case HTTP_ROUTE_FOUND:
                route->handler(req, captures);
                http_route_captures_free(captures);
                break;
        case HTTP_ROUTE_METHOD_NOT_ALLOWED:
                http_request_reply_errorf(req, GW_ERROR_METHOD_NOT_ALLOWED, "Method %s is not allowed on %s (allowed: %s).",
                                          req->method, req->url, allow);
                http_request_add_header(req, MHD_HTTP_HEADER_ALLOW, allow);
                break;
        case HTTP_ROUTE_NOT_FOUND:
                http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No such resource: %s", req->url);
                break;
        }
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) (c | 0x20);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %HH escapes in the path and query, except %00: a NUL would silently cut the string
 * short ("/v1/services/%00" would become "/v1/services/"), so it stays as the literal text
 * "%00", which no name or id accepts. */
static size_t unescape_url(void *cls, struct MHD_Connection *c, char *s) {
        char *w = s;

        for (const char *r = s; *r; r++) {
                int hi, lo;

                if (*r == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 && (hi | lo) != 0) {
                        *w++ = (char) (hi << 4 | lo);
                        r += 2;
                } else
                        *w++ = *r;
        }
        *w = 0;
        return (size_t) (w - s);
}

static enum MHD_Result queue_reply(HttpRequest *req) {
        return MHD_queue_response(req->connection, req->status, req->response);
}

static HttpRequest *http_request_new(HttpServer *s, struct MHD_Connection *connection, const char *method, const char *url) {
        const union MHD_ConnectionInfo *info;
        HttpRequest *req = calloc(1, sizeof(HttpRequest));

        if (!req)
                return NULL;
        req->server = s;
        req->manager = s->manager;
        req->connection = connection;
        req->method = method;
        req->url = url;
        info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        req->peer = info ? info->socket_context : NULL;
        return req;
}

static bool content_length_too_large(HttpRequest *req, uint64_t max) {
        const char *cl = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        char *end;
        unsigned long long n;

        if (!cl)
                return false;
        errno = 0;
        n = strtoull(cl, &end, 10);
        return errno != 0 || *end != 0 || n > max;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls) {
        HttpServer *s = cls;
        uint64_t max_body = s->manager->config->max_request_body;
        HttpRequest *req = *req_cls;

        /* Two-phase idiom: the first call only sets up state. Queueing a response here would make
         * libmicrohttpd close the connection (it cannot know whether a body follows), killing
         * keep-alive — so only refusals that must stop a body from being read happen now. */
        if (!req) {
                req = http_request_new(s, connection, method, url);
                if (!req)
                        return MHD_NO;
                *req_cls = req;
                manager_touch(s->manager);
                if (content_length_too_large(req, max_body)) {
                        http_request_reply_errorf(req, GW_ERROR_PAYLOAD_TOO_LARGE,
                                                  "Request body exceeds the limit of %llu bytes.", (unsigned long long) max_body);
                        return queue_reply(req);
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                char *b;

                *upload_data_size = 0;
                if (req->body_size + n > max_body) {
                        /* libmicrohttpd accepts a response only before or after the body, so a
                         * body that grows past the limit (chunked, no Content-Length) is read and
                         * dropped, and answered with 413 at its end. One that keeps going far
                         * beyond the limit is cut off instead of being read forever. */
                        req->body = mfree(req->body);
                        req->body_too_large = true;
                        req->body_size += n;
                        return req->body_size > 16 * max_body ? MHD_NO : MHD_YES;
                }
                b = realloc(req->body, req->body_size + n + 1);
                if (!b)
                        return MHD_NO;
                memcpy(b + req->body_size, upload_data, n);
                req->body = b;
                req->body_size += n;
                req->body[req->body_size] = 0;
                return MHD_YES;
        }

        if (req->body_too_large && !req->response)
                http_request_reply_errorf(req, GW_ERROR_PAYLOAD_TOO_LARGE,
                                          "Request body exceeds the limit of %llu bytes.", (unsigned long long) max_body);

        if (!req->dispatched && !req->response) {
                req->dispatched = true;
                http_request_dispatch(req);
        }

        if (req->response)
                return queue_reply(req);

        if (!req->suspended) {
                log_error("BUG: handler for %s %s neither replied nor suspended.", method, url);
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Internal error.");
                return queue_reply(req);
        }
        LIST_PREPEND(s->suspended_requests, req, suspended);
        MHD_suspend_connection(connection);
        return MHD_YES;
}

int http_listen_socket(const char *path, int *ret_fd, bool *ret_activated) {
        union { struct sockaddr sa; struct sockaddr_un un; } sa = { .un.sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        char **names = NULL;
        int n, r;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to get listening sockets from systemd: %m");
        for (int i = 0; i < n; i++) {
                if (fd < 0 && streq(names[i], "http"))
                        fd = SD_LISTEN_FDS_START + i;
                else
                        log_warning("Ignoring unexpected socket '%s' passed by the service manager.", names[i]);
        }
        strv_free(names);
        if (fd >= 0) {
                r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
                if (r <= 0)
                        return log_error_errno(r < 0 ? r : EINVAL,
                                               "Socket 'http' passed by the service manager is not a listening AF_UNIX stream socket.");
                *ret_fd = TAKE_FD(fd);
                *ret_activated = true;
                return 0;
        }

        if (strlen(path) >= sizeof(sa.un.sun_path))
                return log_error_errno(ENAMETOOLONG, "Socket path too long: %s", path);
        strcpy(sa.un.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create socket: %m");
        (void) unlink(path); /* a stale socket from an earlier run */
        if (bind(fd, &sa.sa, sizeof(sa.un)) < 0)
                return log_error_errno(errno, "Failed to bind %s: %m", path);
        /* Every local user may talk to us; what they may do is decided per request. */
        if (chmod(path, 0666) < 0)
                return log_error_errno(errno, "Failed to chmod %s: %m", path);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Failed to listen on %s: %m", path);

        *ret_fd = TAKE_FD(fd);
        *ret_activated = false;
        return 0;
}

int http_server_new(Manager *m, int listen_fd, const HttpRoute *routes, size_t n_routes, HttpServer **ret) {
        const union MHD_DaemonInfo *info;
        HttpServer *s;
        int r;

        s = calloc(1, sizeof(HttpServer));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->routes = routes;
        s->n_routes = n_routes;
        s->listen_fd = listen_fd;

        s->daemon = MHD_start_daemon(
                        /* No MHD_USE_TURBO: with it a half-closed connection was sometimes
                         * noticed only at the connection timeout. */
                        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
                        0, NULL, NULL, on_access, s,
                        MHD_OPTION_LISTEN_SOCKET, (MHD_socket) listen_fd,
                        MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, s,
                        MHD_OPTION_NOTIFY_CONNECTION, on_connection_notify, s,
                        MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
                        /* Idle keep-alive connections must not keep the daemon alive forever. */
                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                        MHD_OPTION_CONNECTION_LIMIT, (unsigned) 4096,
                        MHD_OPTION_END);
        if (!s->daemon) {
                free(s);
                return log_error_errno(EIO, "Failed to start the HTTP server.");
        }

        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                http_server_free(s);
                return log_error_errno(EIO, "HTTP server has no epoll fd.");
        }
        r = sd_event_add_io(m->event, &s->io_source, info->epoll_fd, EPOLLIN, on_io, s);
        if (r >= 0)
                /* Accuracy 1 µs, not sd-event's default of 250 ms: libmicrohttpd asks for a
                 * timeout of 0 when a connection has work left (e.g. a stream that got data or
                 * ended), and the default would let the loop coalesce that wake-up up to 250 ms
                 * later. */
                r = sd_event_add_time(m->event, &s->timer_source, CLOCK_MONOTONIC, 0, 1, on_timer, s);
        if (r < 0) {
                http_server_free(s);
                return log_error_errno(r, "Failed to hook the HTTP server into the event loop: %m");
        }
        (void) sd_event_source_set_description(s->io_source, "http-io");
        (void) sd_event_source_set_description(s->timer_source, "http-timer");
        http_server_arm_timer(s);

        *ret = s;
        return 0;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;
        if (s->daemon) {
                MHD_quiesce_daemon(s->daemon);
                /* libmicrohttpd must not be stopped with suspended connections: answer them. */
                while (s->suspended_requests)
                        http_request_reply_errorf(s->suspended_requests, GW_ERROR_UNAVAILABLE, "gatewayd is shutting down.");
                while (s->suspended_streams)
                        http_stream_finish(s->suspended_streams);
                MHD_run(s->daemon);
                MHD_stop_daemon(s->daemon);
        }
        sd_event_source_disable_unref(s->io_source);
        sd_event_source_disable_unref(s->timer_source);
        safe_close(s->listen_fd);
        free(s);
        return NULL;
}

void http_server_quiesce(HttpServer *s) {
        if (s && s->daemon)
                (void) MHD_quiesce_daemon(s->daemon);
}

unsigned http_server_n_connections(HttpServer *s) {
        return s ? s->n_connections : 0;
}
