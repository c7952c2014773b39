/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http-head.h"
#include "json-util.h"
#include "log.h"
#include "proxy-gatewayd.h"
#include "proxy.h"
#include "websocket.h"

/* One client connection: its request head is read (bounded, within HEAD_TIMEOUT_USEC), the
 * token in its target checked, gatewayd asked about the instance, and then it is relayed to the
 * member's port in the instance's network namespace until either side closes. Nothing reaches a
 * member before all of that has passed: a refused WebSocket upgrade gets a plain 401 before any
 * handshake. A relayed HTTP request gets "Connection: close" towards the member, so that every
 * request on a connection has to name its token again (the browser opens a new connection). */

#define HEAD_TIMEOUT_USEC (10 * 1000000ULL)
#define BUFFER_HIGH (256U * 1024U)      /* stop reading a side while its peer lags this much */
#define READ_CHUNK (64U * 1024U)
#define UP_READS_PER_WAKEUP 8U
#define SPLICE_PIPE_SIZE (256U * 1024U)

/* A byte queue: data/size are what is queued; consuming moves data forward instead of moving the
 * rest (a relay sends less than it holds all the time), and the allocation grows by doubling. */
typedef struct Buffer {
        uint8_t *data;
        size_t size;
        uint8_t *base;
        size_t allocated;
} Buffer;

typedef enum ConnectionState {
        STATE_HEAD,             /* reading the request head */
        STATE_AUTHORIZING,      /* asking gatewayd */
        STATE_RELAY,            /* bytes as they are */
        STATE_BRIDGE,           /* WebSocket frames from the client, raw bytes from the member */
        STATE_CLOSING,          /* flushing a last answer */
} ConnectionState;

typedef enum PortKind {
        PORT_HTTP,
        PORT_VNC,
        PORT_TCP,
} PortKind;

struct ProxyConnection {
        Proxy *proxy;
        ProxyConnection *prev, *next;
        ConnectionState state;
        int fd, up_fd;
        sd_event_source *io, *up_io, *timer;
        bool up_connected, client_eof, up_eof;
        int splice_pipe[2];     /* member → client in a bridge, through the kernel; empty between calls */
        Buffer in;              /* from the client, not yet handled */
        Buffer to_client, to_up;

        HttpHead *head;
        LabTokenClaims *claims;
        char *token, *member, *rest;
        unsigned port_wanted;   /* from "<member>:<port>", 0 = the member's first port */
        GatewaydQuery *query;
};

/* Room for n more bytes behind what is queued (not counted until the caller adds to size). */
static uint8_t *buffer_reserve(Buffer *b, size_t n) {
        size_t offset = (size_t) (b->data - b->base);

        if (offset + b->size + n > b->allocated) {
                if (offset > 0 && b->size + n <= b->allocated && b->size <= offset) {
                        /* Room at the front, and little to move: compact. */
                        memmove(b->base, b->data, b->size);
                } else {
                        size_t want = MAX(b->allocated * 2, MAX(b->size + n, (size_t) 4096));
                        uint8_t *d = malloc(want);
                        if (!d)
                                return NULL;
                        if (b->size > 0)
                                memcpy(d, b->data, b->size);
                        free(b->base);
                        b->base = d;
                        b->allocated = want;
                }
                b->data = b->base;
        }
        return b->data + b->size;
}

static int buffer_append(Buffer *b, const void *p, size_t n) {
        uint8_t *d;

        if (n == 0)
                return 0;
        d = buffer_reserve(b, n);
        if (!d)
                return -ENOMEM;
        memcpy(d, p, n);
        b->size += n;
        return 0;
}

static void buffer_consume(Buffer *b, size_t n) {
        b->data += n;
        b->size -= n;
        if (b->size == 0)
                b->data = b->base;
}

static void buffer_free(Buffer *b) {
        free(b->base);
        *b = (Buffer) {};
}

ProxyConnection *proxy_connection_free(ProxyConnection *c) {
        if (!c)
                return NULL;
        if (c->prev)
                c->prev->next = c->next;
        else
                c->proxy->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->proxy->n_connections--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->up_io);
        sd_event_source_disable_unref(c->timer);
        if (c->fd >= 0)
                close(c->fd);
        if (c->up_fd >= 0)
                close(c->up_fd);
        for (unsigned k = 0; k < 2; k++)
                if (c->splice_pipe[k] >= 0)
                        close(c->splice_pipe[k]);
        buffer_free(&c->in);
        buffer_free(&c->to_client);
        buffer_free(&c->to_up);
        http_head_free(c->head);
        lab_token_claims_free(c->claims);
        gatewayd_query_free(c->query);
        free(c->token);
        free(c->member);
        free(c->rest);
        free(c);
        return NULL;
}

void proxy_connections_free(Proxy *p) {
        while (p->connections)
                proxy_connection_free(p->connections);
}

/* ---- event masks ---- */

static void connection_update_events(ProxyConnection *c) {
        uint32_t client = 0, up = 0;
        bool relaying = c->state == STATE_RELAY || c->state == STATE_BRIDGE;

        if (c->state == STATE_HEAD || (relaying && !c->client_eof && c->to_up.size < BUFFER_HIGH))
                client |= EPOLLIN;
        if (c->to_client.size > 0)
                client |= EPOLLOUT;
        if (relaying && !c->up_eof && c->to_client.size < BUFFER_HIGH)
                up |= EPOLLIN;
        if (c->up_fd >= 0 && (!c->up_connected || c->to_up.size > 0))
                up |= EPOLLOUT;
        if (c->io)
                (void) sd_event_source_set_io_events(c->io, client);
        if (c->up_io)
                (void) sd_event_source_set_io_events(c->up_io, up);
}

/* ---- answers of our own ---- */

/* Ends the connection without an answer (out of memory): the I/O handlers free it. */
static void connection_abort(ProxyConnection *c) {
        buffer_free(&c->to_client);
        c->state = STATE_CLOSING;
}

static void connection_reply(ProxyConnection *c, unsigned status, const char *reason, const char *extra_headers,
                             const char *content_type, const char *body, size_t body_size) {
        char *head = NULL;
        int n;

        n = asprintf(&head, "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, content_type, body_size, extra_headers ?: "");
        if (n < 0 || buffer_append(&c->to_client, head, (size_t) n) < 0 ||
            buffer_append(&c->to_client, body, body_size) < 0) {
                free(head);
                return connection_abort(c);
        }
        free(head);
        c->state = STATE_CLOSING;
        c->timer = sd_event_source_disable_unref(c->timer);
}

static void connection_refuse(ProxyConnection *c, unsigned status, const char *reason, const char *message) {
        char body[512];

        log_debug("Refused %s %s: %u %s", c->head ? c->head->method : "?", c->member ?: "-", status, message);
        snprintf(body, sizeof(body), "%s\n", message);
        connection_reply(c, status, reason, NULL, "text/plain; charset=utf-8", body, strlen(body));
}

/* ---- the member's side ---- */

/* A socket in the instance's network namespace: made there, used from here (a socket stays in
 * the namespace it was made in). */
/* The instance's namespace file. gatewayd's unit has a mount namespace of its own
 * (PrivateMounts=yes), where the file is a bind mount nobody else sees: then it is reached
 * through gatewayd's /proc/PID/root, which resolves paths in gatewayd's mount namespace. */
static int open_netns(const char *netns_path, uint64_t gatewayd_pid) {
        char path[PATH_MAX];
        int ns;

        ns = open(netns_path, O_RDONLY | O_CLOEXEC);
        if (ns >= 0 || errno != ENOENT || gatewayd_pid == 0)
                return ns >= 0 ? ns : -errno;
        if (snprintf(path, sizeof(path), "/proc/%" PRIu64 "/root%s", gatewayd_pid, netns_path) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        ns = open(path, O_RDONLY | O_CLOEXEC);
        return ns >= 0 ? ns : -errno;
}

static int socket_in_netns(Proxy *p, const char *netns_path, uint64_t gatewayd_pid) {
        int ns, fd, saved;

        ns = open_netns(netns_path, gatewayd_pid);
        if (ns < 0)
                return ns;
        if (setns(ns, CLONE_NEWNET) < 0) {
                saved = -errno;
                close(ns);
                return saved;
        }
        close(ns);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        saved = fd < 0 ? -errno : 0;
        /* Staying in an instance's namespace would put every later connection there. */
        if (setns(p->own_netns_fd, CLONE_NEWNET) < 0) {
                log_error_errno(errno, "Cannot return to our own network namespace: %m");
                abort();
        }
        return fd < 0 ? saved : fd;
}

/* A member's bytes to the client without copying them through the proxy, while nothing is
 * queued for the client: splice() them from the member's socket into a pipe, send their frame
 * header, splice them on to the client. Whatever the client does not take at once (header or
 * data) is queued in to_client, so the pipe is empty again on return and the order is kept.
 * Same returns as read_into(); -EOPNOTSUPP: use read_framed(). */
static int splice_framed(ProxyConnection *c) {
        uint8_t header[10];
        ssize_t n, sent, moved;
        size_t hs, left;

        if (c->splice_pipe[0] < 0) {
                if (pipe2(c->splice_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                        return -EOPNOTSUPP;
                (void) fcntl(c->splice_pipe[1], F_SETPIPE_SZ, (int) SPLICE_PIPE_SIZE);
        }
        n = splice(c->up_fd, NULL, c->splice_pipe[1], NULL, SPLICE_PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0)
                return errno == EINVAL ? -EOPNOTSUPP : -errno;
        if (n == 0)
                return 0;
        hs = ws_frame_header(header, WS_BINARY, (size_t) n);
        sent = send(c->fd, header, hs, MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0)
                sent = 0;
        left = (size_t) n;
        if ((size_t) sent == hs) {
                moved = splice(c->splice_pipe[0], NULL, c->fd, NULL, left, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
                if (moved > 0)
                        left -= (size_t) moved;
        } else if (buffer_append(&c->to_client, header + sent, hs - (size_t) sent) < 0)
                return -ENOMEM;
        /* The rest goes the ordinary way. */
        while (left > 0) {
                uint8_t *p = buffer_reserve(&c->to_client, left);
                ssize_t k;
                if (!p)
                        return -ENOMEM;
                k = read(c->splice_pipe[0], p, left);
                if (k <= 0)
                        return k < 0 ? -errno : -EIO;
                c->to_client.size += (size_t) k;
                left -= (size_t) k;
        }
        return 1;
}

static int on_up_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int connection_connect_member(ProxyConnection *c, const char *netns, uint64_t gatewayd_pid, const char *address,
                                     unsigned port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };

        if (inet_pton(AF_INET, address, &sa.sin_addr) != 1)
                return -EINVAL;
        c->up_fd = socket_in_netns(c->proxy, netns, gatewayd_pid);
        if (c->up_fd < 0)
                return c->up_fd;
        if (connect(c->up_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                return -errno;
        return sd_event_add_io(c->proxy->event, &c->up_io, c->up_fd, EPOLLOUT, on_up_io, c);
}

/* The request as the member sees it: the target without /<token>/<member>, and for anything
 * but an upgrade "Connection: close" (see the top of this file). */
static int connection_forward_head(ProxyConnection *c, bool upgrade) {
        HttpHead *h = c->head;
        char *line = NULL;
        int r = 0;

        if (asprintf(&line, "%s %s %s\r\n", h->method, c->rest, h->version) < 0)
                return -ENOMEM;
        r = buffer_append(&c->to_up, line, strlen(line));
        free(line);
        for (size_t i = 0; r >= 0 && i < h->n_fields; i++) {
                const char *n = h->fields[i].name;
                if (!upgrade && (strcasecmp(n, "Connection") == 0 || strcasecmp(n, "Keep-Alive") == 0))
                        continue;
                if (asprintf(&line, "%s: %s\r\n", n, h->fields[i].value) < 0)
                        return -ENOMEM;
                r = buffer_append(&c->to_up, line, strlen(line));
                free(line);
        }
        if (r >= 0 && !upgrade)
                r = buffer_append(&c->to_up, "Connection: close\r\n", 19);
        if (r >= 0)
                r = buffer_append(&c->to_up, "\r\n", 2);
        /* What the client sent after the head (a body) follows it. */
        if (r >= 0)
                r = buffer_append(&c->to_up, c->in.data + h->size, c->in.size - h->size);
        buffer_free(&c->in);
        return r;
}

/* ---- WebSocket bridge ---- */

static int connection_accept_websocket(ProxyConnection *c) {
        const char *key = http_head_get(c->head, "Sec-WebSocket-Key"), *protocols;
        char accept[WS_ACCEPT_KEY_SIZE], *answer = NULL;
        bool binary = false;
        int r;

        if (!key || ws_accept_key(key, accept) < 0)
                return -EBADMSG;
        /* noVNC offers "binary"; websockify's old "base64" is not spoken here. */
        protocols = http_head_get(c->head, "Sec-WebSocket-Protocol");
        binary = protocols && http_head_has_token(c->head, "Sec-WebSocket-Protocol", "binary");
        if (asprintf(&answer, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s\r\n", accept, binary ? "Sec-WebSocket-Protocol: binary\r\n" : "") < 0)
                return -ENOMEM;
        r = buffer_append(&c->to_client, answer, strlen(answer));
        free(answer);
        buffer_consume(&c->in, c->head->size);
        return r;
}

/* Frames from the client: data to the member, pings answered, a close echoed. */
static int connection_bridge_client(ProxyConnection *c) {
        for (;;) {
                WsFrame f;
                uint8_t header[10];
                int n = ws_frame_parse(c->in.data, c->in.size, &f);

                if (n <= 0)
                        return n;
                switch (f.opcode) {
                case WS_CONTINUATION:
                case WS_TEXT:
                case WS_BINARY:
                        if (buffer_append(&c->to_up, c->in.data + f.header_size, f.payload_size) < 0)
                                return -ENOMEM;
                        break;
                case WS_PING:
                        if (buffer_append(&c->to_client, header, ws_frame_header(header, WS_PONG, f.payload_size)) < 0 ||
                            buffer_append(&c->to_client, c->in.data + f.header_size, f.payload_size) < 0)
                                return -ENOMEM;
                        break;
                case WS_CLOSE:
                        c->client_eof = true;
                        (void) buffer_append(&c->to_client, header, ws_frame_header(header, WS_CLOSE, 0));
                        c->state = STATE_CLOSING;
                        break;
                case WS_PONG:
                        break;
                }
                buffer_consume(&c->in, (size_t) n);
                if (c->state == STATE_CLOSING)
                        return 0;
        }
}

/* ---- after gatewayd answered ---- */

static const char *port_kind_name(PortKind k) {
        return k == PORT_HTTP ? "http" : k == PORT_VNC ? "vnc" : "tcp";
}

/* The member's port the request is for: the one named, or its first. */
static int find_port(json_object *member, unsigned wanted, unsigned *ret_port, PortKind *ret_kind) {
        json_object *ports;

        if (!json_object_object_get_ex(member, "ports", &ports) || !json_object_is_type(ports, json_type_array))
                return -ENOENT;
        for (size_t i = 0; i < json_object_array_length(ports); i++) {
                json_object *p = json_object_array_get_idx(ports, i);
                const char *kind = json_get_string(p, "kind");
                unsigned port = (unsigned) json_get_u64(p, "port");

                if (!kind || port == 0 || port > 65535 || (wanted && port != wanted))
                        continue;
                *ret_port = port;
                *ret_kind = streq(kind, "http") ? PORT_HTTP : streq(kind, "vnc") ? PORT_VNC : PORT_TCP;
                return 0;
        }
        return -ENOENT;
}

static json_object *find_member(json_object *instance, const char *name) {
        json_object *members;

        if (!json_object_object_get_ex(instance, "members", &members) || !json_object_is_type(members, json_type_array))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(members); i++) {
                json_object *m = json_object_array_get_idx(members, i);
                const char *n = json_get_string(m, "name");
                if (n && streq(n, name))
                        return m;
        }
        return NULL;
}

static void connection_serve_novnc(ProxyConnection *c) {
        _cleanup_free_ char *body = NULL, *base = NULL;
        size_t size = 0;
        int r;

        if (!streq(c->head->method, "GET") && !streq(c->head->method, "HEAD"))
                return connection_refuse(c, 405, "Method Not Allowed", "The console's files can only be read.");
        if (asprintf(&base, "%s/%s", c->token, c->member) < 0)
                return connection_abort(c);
        r = novnc_respond(c->proxy, c->rest, base, &body, &size);
        if (r == -ENOENT)
                return connection_refuse(c, 404, "Not Found", "No such file.");
        if (r < 0)
                return connection_refuse(c, 500, "Internal Server Error", "Cannot read the console's files.");
        /* novnc_respond() gives the whole answer, head included. */
        if (buffer_append(&c->to_client, body, streq(c->head->method, "HEAD") ? (size_t) (strstr(body, "\r\n\r\n") + 4 - body) : size) < 0)
                return connection_abort(c);
        c->state = STATE_CLOSING;
}

static void connection_route(ProxyConnection *c, int r, unsigned status, json_object *instance) {
        const char *netns, *state, *address;
        json_object *member;
        unsigned port = 0;
        PortKind kind = PORT_HTTP;
        bool websocket = http_head_is_websocket(c->head);

        if (r < 0) {
                log_warning_errno(r, "Cannot ask gatewayd about instance %s: %m", c->claims->instance);
                return connection_refuse(c, 503, "Service Unavailable", "The lab service cannot be reached.");
        }
        if (status == 404)
                return connection_refuse(c, 401, "Unauthorized", "The lab instance no longer exists.");
        if (status != 200 || !instance)
                return connection_refuse(c, 502, "Bad Gateway", "The lab service answered with an error.");
        netns = json_get_string(instance, "networkNamespace");
        state = json_get_string(instance, "state");
        if (json_get_u64(instance, "uid") != c->claims->uid || !netns || !state ||
            (!streq(state, "RUNNING") && !streq(state, "DEGRADED") && !streq(state, "STARTING")))
                return connection_refuse(c, 401, "Unauthorized", "The lab instance is not running.");
        member = find_member(instance, c->member);
        address = member ? json_get_string(member, "address") : NULL;
        if (!address || find_port(member, c->port_wanted, &port, &kind) < 0)
                return connection_refuse(c, 404, "Not Found", "The member has no such port.");

        if (kind == PORT_VNC && !websocket)
                return connection_serve_novnc(c);
        if (kind != PORT_HTTP && !websocket)
                return connection_refuse(c, 400, "Bad Request", "A tcp port is reached through a WebSocket.");

        r = connection_connect_member(c, netns, json_get_u64(instance, "gatewaydPid"), address, port);
        if (r < 0) {
                log_info_errno(r, "Cannot connect to member %s of instance %s (%s:%u): %m", c->member,
                               c->claims->instance, address, port);
                return connection_refuse(c, 502, "Bad Gateway", "The member does not answer.");
        }
        if (kind == PORT_HTTP)
                r = connection_forward_head(c, websocket);
        else
                r = connection_accept_websocket(c);
        if (r < 0)
                return connection_refuse(c, 400, "Bad Request", "Malformed WebSocket request.");
        log_debug("Connection to %s:%u (%s) of instance %s.", c->member, port, port_kind_name(kind), c->claims->instance);
        c->state = kind == PORT_HTTP ? STATE_RELAY : STATE_BRIDGE;
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->state == STATE_BRIDGE && connection_bridge_client(c) < 0)
                return connection_refuse(c, 400, "Bad Request", "Malformed WebSocket frame.");
}

static bool connection_finished(ProxyConnection *c);

static void on_gatewayd_answer(int r, unsigned status, json_object *instance, void *userdata) {
        ProxyConnection *c = userdata;

        c->query = gatewayd_query_free(c->query);
        connection_route(c, r, status, instance);
        if (connection_finished(c))
                return (void) proxy_connection_free(c);
        connection_update_events(c);
}

/* ---- the request head ---- */

/* "/<token>/<member>[:<port>]<rest>" → token, member, port, rest ("/" at least). */
static int split_target(ProxyConnection *c) {
        const char *t = c->head->target + 1, *slash = strchr(t, '/'), *m, *end, *colon;

        if (!slash || slash == t)
                return -EINVAL;
        m = slash + 1;
        end = m + strcspn(m, "/?");
        if (end == m)
                return -EINVAL;
        colon = memchr(m, ':', (size_t) (end - m));
        c->token = strndup(t, (size_t) (slash - t));
        c->member = strndup(m, (size_t) ((colon ?: end) - m));
        if (*end == '/')
                c->rest = strdup(end);
        else if (asprintf(&c->rest, "/%s", end) < 0)
                c->rest = NULL;
        if (!c->token || !c->member || !c->rest)
                return -ENOMEM;
        if (colon) {
                char *e;
                unsigned long port = strtoul(colon + 1, &e, 10);
                if (e != end || port == 0 || port > 65535)
                        return -EINVAL;
                c->port_wanted = (unsigned) port;
        }
        return 0;
}

static void connection_authorize(ProxyConnection *c) {
        _cleanup_free_ char *path = NULL;
        const char *reason = NULL;
        int r;

        r = split_target(c);
        if (r == -ENOMEM)
                return connection_abort(c);
        if (r < 0)
                return connection_refuse(c, 404, "Not Found", "Use /<token>/<member>/.");
        if (!proxy_key_ready(c->proxy))
                return connection_refuse(c, 401, "Unauthorized", "Invalid token.");
        r = lab_token_verify(c->proxy->key, c->token, (uint64_t) time(NULL), &c->claims, &reason);
        if (r == -ENOMEM)
                return connection_abort(c);
        if (r < 0)
                return connection_refuse(c, 401, "Unauthorized", reason);
        if (!lab_token_opens(c->claims, c->member))
                return connection_refuse(c, 401, "Unauthorized", "The token does not open this member.");
        /* An instance id is a plain name; anything else never came from gatewayd. */
        if (strspn(c->claims->instance, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") !=
            strlen(c->claims->instance) || !*c->claims->instance)
                return connection_refuse(c, 401, "Unauthorized", "Invalid token.");
        if (asprintf(&path, "/v1/lab-instances/%s/access", c->claims->instance) < 0)
                return connection_abort(c);
        r = gatewayd_query_start(c->proxy->event, c->proxy->gatewayd_socket, path, on_gatewayd_answer, c, &c->query);
        if (r < 0) {
                log_warning_errno(r, "Cannot ask gatewayd (%s): %m", c->proxy->gatewayd_socket);
                return connection_refuse(c, 503, "Service Unavailable", "The lab service cannot be reached.");
        }
        c->state = STATE_AUTHORIZING;
}

static void connection_read_head(ProxyConnection *c) {
        int r = http_head_parse((const char *) c->in.data, c->in.size, &c->head);

        if (r == 0)
                return;
        if (r == -E2BIG)
                return connection_refuse(c, 431, "Request Header Fields Too Large", "The request head is too large.");
        if (r < 0)
                return connection_refuse(c, 400, "Bad Request", "Malformed request.");
        connection_authorize(c);
}

/* ---- I/O ---- */

/* Reads what fd has into b (up to READ_CHUNK), received where it is queued. 1: got some, 0: end
 * of stream, -EAGAIN, < 0. */
static int read_into(int fd, Buffer *b) {
        uint8_t *p = buffer_reserve(b, READ_CHUNK);
        ssize_t n;

        if (!p)
                return -ENOMEM;
        n = recv(fd, p, READ_CHUNK, 0);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0;
        b->size += (size_t) n;
        return 1;
}

static int write_from(int fd, Buffer *b) {
        ssize_t n;

        if (b->size == 0)
                return 0;
        n = send(fd, b->data, b->size, MSG_NOSIGNAL);
        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        buffer_consume(b, (size_t) n);
        return 0;
}

/* Whether the connection is over: both directions done and flushed. */
static bool connection_finished(ProxyConnection *c) {
        if (c->state == STATE_CLOSING)
                return c->to_client.size == 0;
        if (c->state != STATE_RELAY && c->state != STATE_BRIDGE)
                return false;
        /* The member is done and everything it said has reached the client. */
        return c->up_eof && c->to_client.size == 0;
}

/* Reads what the member has and queues it for the client as one binary frame, received behind
 * room for its header: at most 65535 bytes, whose header is 4 bytes (2 below 126 bytes: then the
 * few bytes move up). Same returns as read_into(). */
#define FRAMED_READ 65535U
static int read_framed(int fd, Buffer *b) {
        uint8_t *p = buffer_reserve(b, 4 + FRAMED_READ), header[10];
        size_t hs;
        ssize_t n;

        if (!p)
                return -ENOMEM;
        n = recv(fd, p + 4, FRAMED_READ, 0);
        if (n < 0)
                return -errno;
        if (n == 0)
                return 0;
        hs = ws_frame_header(header, WS_BINARY, (size_t) n);
        assert(hs <= 4);
        if (hs < 4)
                memmove(p + hs, p + 4, (size_t) n);
        memcpy(p, header, hs);
        b->size += hs + (size_t) n;
        return 1;
}

static int on_up_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProxyConnection *c = userdata;
        int r;

        if (!c->up_connected && (revents & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int error = 0;
                socklen_t len = sizeof(error);
                (void) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
                if (error != 0) {
                        log_info("Member %s of instance %s refused the connection: %s", c->member, c->claims->instance,
                                 strerror(error));
                        c->up_io = sd_event_source_disable_unref(c->up_io);
                        c->up_fd = (close(c->up_fd), -1);
                        c->to_up.size = 0;
                        if (c->state != STATE_RELAY)
                                return proxy_connection_free(c), 0;
                        connection_refuse(c, 502, "Bad Gateway", "The member does not answer.");
                        connection_update_events(c);
                        return 0;
                }
                c->up_connected = true;
        }
        /* A few reads per wakeup while the member has more and the client takes it. */
        for (unsigned i = 0; (revents & EPOLLIN) && i < UP_READS_PER_WAKEUP && c->to_client.size < BUFFER_HIGH; i++) {
                r = -EOPNOTSUPP;
                if (c->state == STATE_BRIDGE && c->to_client.size == 0)
                        r = splice_framed(c);
                if (r == -EOPNOTSUPP)
                        r = c->state == STATE_BRIDGE ? read_framed(fd, &c->to_client) : read_into(fd, &c->to_client);
                if (r == 0 || (r < 0 && r != -EAGAIN))
                        c->up_eof = true;
                if (r <= 0)
                        break;
                /* Pass it on now rather than after another turn of the event loop; what the
                 * client does not take stays queued (and its error is seen there). */
                (void) write_from(c->fd, &c->to_client);
        }
        if (c->up_connected && write_from(fd, &c->to_up) < 0)
                c->up_eof = true;
        if (c->up_eof && c->state == STATE_BRIDGE && !c->client_eof) {
                /* The member hung up: say so in WebSocket terms, then close. */
                uint8_t header[10];
                (void) buffer_append(&c->to_client, header, ws_frame_header(header, WS_CLOSE, 0));
                c->state = STATE_CLOSING;
        }
        if (c->client_eof && c->to_up.size == 0 && c->up_connected)
                (void) shutdown(fd, SHUT_WR);
        if (connection_finished(c))
                return proxy_connection_free(c), 0;
        connection_update_events(c);
        return 0;
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProxyConnection *c = userdata;
        int r;

        /* Gone while gatewayd is asked: nobody left to answer. */
        if (c->state == STATE_AUTHORIZING && (revents & (EPOLLHUP | EPOLLERR)))
                return proxy_connection_free(c), 0;
        if ((revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state != STATE_CLOSING && c->state != STATE_AUTHORIZING) {
                r = read_into(fd, c->state == STATE_RELAY ? &c->to_up : &c->in);
                if (r == 0 || (r < 0 && r != -EAGAIN)) {
                        if (c->state == STATE_HEAD)
                                return proxy_connection_free(c), 0;
                        c->client_eof = true;
                }
                if (c->state == STATE_HEAD)
                        connection_read_head(c);
                else if (c->state == STATE_BRIDGE && connection_bridge_client(c) < 0)
                        return proxy_connection_free(c), 0;
        }
        if (write_from(fd, &c->to_client) < 0)
                return proxy_connection_free(c), 0;
        if (c->client_eof && c->up_fd >= 0 && c->up_connected && c->to_up.size == 0)
                (void) shutdown(c->up_fd, SHUT_WR);
        if (connection_finished(c) || (c->client_eof && c->state == STATE_CLOSING))
                return proxy_connection_free(c), 0;
        connection_update_events(c);
        return 0;
}

static int on_head_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        ProxyConnection *c = userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->state == STATE_HEAD)
                connection_refuse(c, 408, "Request Timeout", "The request took too long.");
        if (connection_finished(c))
                return proxy_connection_free(c), 0;
        connection_update_events(c);
        return 0;
}

int proxy_connection_new(Proxy *p, int fd) {
        ProxyConnection *c;
        int r;

        c = calloc(1, sizeof(ProxyConnection));
        if (!c) {
                close(fd);
                return -ENOMEM;
        }
        *c = (ProxyConnection) { .proxy = p, .fd = fd, .up_fd = -1, .splice_pipe = { -1, -1 }, .next = p->connections };
        if (c->next)
                c->next->prev = c;
        p->connections = c;
        p->n_connections++;
        r = sd_event_add_io(p->event, &c->io, fd, EPOLLIN, on_client_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(p->event, &c->timer, CLOCK_MONOTONIC, HEAD_TIMEOUT_USEC, 0, on_head_timeout, c);
        if (r < 0) {
                proxy_connection_free(c);
                return r;
        }
        return 0;
}
