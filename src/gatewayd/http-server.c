/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "auth-source.h"
#include "registry-logins.h"
#include "fs-util.h"
#include "hashmap.h"
#include "form-upload.h"
#include "http-server.h"
#include "http-tls.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "program.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* libmicrohttpd runs on our sd-event loop: its epoll fd is an IO source, and the timeout it
 * wants is a relative timer that we re-arm after every run. No threads, so handlers can touch the
 * Manager freely.
 *
 * One server, several listeners (HttpListener): the unix socket, and optionally a TCP (plain
 * HTTP) and a TLS listener. One libmicrohttpd daemon is either TLS or plain, so each listener has
 * a daemon of its own; routes, limits and the bookkeeping of suspended requests are shared.
 *
 * Who is asking: on the unix socket the peer's credentials (SO_PEERCRED). On TCP and TLS there
 * are none (SO_PEERCRED "succeeds" there with uid -1, so it is never called): every request
 * proves an identity with a credential that an identity source verifies (auth-source.h), or is
 * anonymous and may use only AnonymousRoutes.
 *
 * Connections are limited per peer uid (ConnectionsPerUser), per source address on TCP/TLS
 * (ConnectionsPerAddress) and in total (ConnectionsMax). When libmicrohttpd accepts a connection,
 * on_connection_notify() reads its peer credentials or address; one over a limit is shut down
 * right there: its client sees EOF at once, and libmicrohttpd, seeing the hang-up before it read
 * anything, closes it without parsing a request. (The accept policy callback cannot do this: it
 * gets an address, meaningless on a unix socket, not the socket.) A network identity is known
 * only with its first request: a connection that would put it over ConnectionsPerUser gets 429
 * and is closed. libmicrohttpd accepting stays the normal path: connections handed over with
 * MHD_add_connection() are not known to be AF_UNIX, and libmicrohttpd then retries TCP_NODELAY
 * and TCP_CORK on every response (two failing system calls, ~12% of a small request's cost).
 *
 * But libmicrohttpd stops accepting at its connection limit and, worse, on EMFILE/ENFILE until
 * one of its connections closes, so one user holding connections could wedge the socket for
 * everyone. Hence a second watch on the listen socket at idle priority (on_listen): it runs only
 * when connections wait and libmicrohttpd did not take them, accepts them itself and applies the
 * same limits; out of descriptors it closes the newest connection with the help of a reserve
 * descriptor. Accept never stalls. */

/* Connections accepted per wake-up by the fallback: a storm of connects must not starve the
 * requests on open connections (the listen socket is level-triggered: the rest comes next round). */
#define ACCEPT_BATCH 64U

/* libmicrohttpd's own connection limit lies this far above ConnectionsMax: connections that were
 * refused still count for it until its next run closes them, and at its limit it stops accepting. */
#define MHD_LIMIT_SLACK 64U

/* Descriptors kept free for the database, the bus, workers and their pipes: connections are
 * planned within RLIMIT_NOFILE minus this, so that descriptors normally never run out. */
#define FD_RESERVE 256U

/* Refused connections are logged at most this often: a flood must not flood the journal. */
#define REFUSAL_LOG_INTERVAL_USEC (10 * USEC_PER_SEC)

/* Guessing credentials: this many failed authentications from one address within the window
 * block that address (429) for AUTH_BLOCK_USEC; other addresses are not affected. */
#define AUTH_FAILURES_MAX 20U
#define AUTH_FAILURE_WINDOW_USEC (60 * USEC_PER_SEC)
#define AUTH_BLOCK_USEC (5 * 60 * USEC_PER_SEC)
/* Addresses remembered without open connections (recent failures, blocks) before stale ones are
 * swept: a scan from many addresses must not grow the table without bound. */
#define ADDRESSES_SWEEP_AT 4096U

/* The open connections of one peer uid, or of one external user acting as it (Caller.subject:
 * external users sharing a local account do not share its connections). */
typedef struct HttpUser {
        unsigned n_connections;
        char key[];     /* "<uid>" or "<uid>/<subject>", the key in HttpServer.users */
} HttpUser;

/* Long enough for a uid and the subjects identity sources hand out (longer ones are cut). */
#define HTTP_USER_KEY_MAX 320U

static void http_user_key(uid_t uid, const char *subject, char key[static HTTP_USER_KEY_MAX]) {
        if (subject)
                snprintf(key, HTTP_USER_KEY_MAX, "%u/%s", (unsigned) uid, subject);
        else
                snprintf(key, HTTP_USER_KEY_MAX, "%u", (unsigned) uid);
}

/* One source address of TCP/TLS connections: its open connections and failed authentications. */
typedef struct HttpAddress {
        char key[INET6_ADDRSTRLEN];
        unsigned n_connections;
        usec_t failures[AUTH_FAILURES_MAX];     /* ring: times of the latest failures, 0 = none */
        unsigned next_failure;
        usec_t blocked_until;
} HttpAddress;

typedef struct HttpListener {
        HttpServer *server;
        HttpListenerKind kind;
        struct MHD_Daemon *daemon;
        sd_event_source *io_source;
        sd_event_source *timer_source;
        sd_event_source *listen_source;
        sd_event_source *accept_retry_source;
        int listen_fd;
        HttpPeer *adding;       /* handed from the accept loop to on_connection_notify() */
} HttpListener;

struct HttpPeer {
        HttpListener *listener;
        Caller caller;          /* unix socket: from SO_PEERCRED */
        int fd;
        HttpUser *user;         /* counted here while the connection is open (network: once authenticated) */
        HttpAddress *address;   /* TCP/TLS: counted here while the connection is open */
        bool refused;           /* over a limit: shut down, closed by libmicrohttpd's next run */
};

struct HttpStream {
        unsigned n_ref;
        HttpServer *server;
        HttpListener *listener;
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
        HttpListener *listeners[_HTTP_LISTENER_KIND_MAX];
        HttpTls *tls;
        const HttpRoute *routes;
        size_t n_routes;
        unsigned n_connections; /* every connection libmicrohttpd has, refused ones too */
        unsigned n_counted;     /* those counted against the limits */
        unsigned connections_max, connections_per_user, connections_per_address;
        Hashmap *users;         /* HttpUser by key (uid, or uid/subject) */
        Hashmap *addresses;     /* HttpAddress by address */
        int reserve_fd;         /* given up to accept and close a connection when descriptors run out */
        bool quiesced;
        usec_t refusal_log_next;
        unsigned refusals_unlogged;
        HttpRequest *suspended_requests;
        HttpStream *suspended_streams;
};

static const char *const listener_kind_names[_HTTP_LISTENER_KIND_MAX] = {
        [HTTP_LISTENER_UNIX] = "http",
        [HTTP_LISTENER_TCP] = "tcp",
        [HTTP_LISTENER_TLS] = "tls",
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

static bool listener_is_network(const HttpListener *l) {
        return l->kind != HTTP_LISTENER_UNIX;
}

static void http_listener_arm_timer(HttpListener *l) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;
        usec_t now;

        if (MHD_get_timeout(l->daemon, &timeout_ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(l->timer_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_now(l->server->manager->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(l->timer_source, now + timeout_ms * 1000);
        (void) sd_event_source_set_enabled(l->timer_source, SD_EVENT_ONESHOT);
}

static void http_listener_run(HttpListener *l) {
        if (MHD_run(l->daemon) != MHD_YES)
                log_warning("libmicrohttpd failed to process connections.");
        http_listener_arm_timer(l);
}

/* An external-loop libmicrohttpd does not wake itself for a resumed connection: run it from the
 * loop right away (a zero timer, so the reply is sent after the current callback unwinds). */
static void http_listener_wake(HttpListener *l) {
        (void) sd_event_source_set_time(l->timer_source, 0);
        (void) sd_event_source_set_enabled(l->timer_source, SD_EVENT_ONESHOT);
}

static int on_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        http_listener_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        http_listener_run(userdata);
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

static void address_to_string(const struct sockaddr *sa, char buf[static INET6_ADDRSTRLEN]) {
        const void *a = NULL;

        if (sa && sa->sa_family == AF_INET)
                a = &((const struct sockaddr_in *) sa)->sin_addr;
        else if (sa && sa->sa_family == AF_INET6)
                a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
        if (!a || !inet_ntop(sa->sa_family, a, buf, INET6_ADDRSTRLEN))
                strcpy(buf, "unknown");
}

static HttpPeer *http_peer_new(HttpListener *l, int fd) {
        HttpPeer *p = calloc(1, sizeof(HttpPeer));

        if (!p)
                return NULL;
        p->listener = l;
        p->fd = fd;
        if (listener_is_network(l))
                /* Never SO_PEERCRED here: it would report uid 4294967295. Until a request proves
                 * otherwise the peer is nobody. */
                p->caller = (Caller) { .uid = (uid_t) 65534, .gid = (gid_t) 65534, .pidfd = -1 };
        else
                peer_read_credentials(p);
        return p;
}

static HttpPeer *http_peer_free(HttpPeer *p) {
        if (!p)
                return NULL;
        safe_close(p->caller.pidfd);
        free(p);
        return NULL;
}

static usec_t http_server_now(HttpServer *s) {
        usec_t now;

        (void) sd_event_now(s->manager->event, CLOCK_MONOTONIC, &now);
        return now;
}

static bool address_is_stale(const HttpAddress *a, usec_t now) {
        usec_t newest = a->failures[(a->next_failure + AUTH_FAILURES_MAX - 1) % AUTH_FAILURES_MAX];

        return a->n_connections == 0 && a->blocked_until <= now && (newest == 0 || newest + AUTH_FAILURE_WINDOW_USEC <= now);
}

static void http_server_sweep_addresses(HttpServer *s) {
        usec_t now = http_server_now(s);
        _cleanup_free_ HttpAddress **stale = NULL;
        size_t n = 0;
        HttpAddress *a;

        stale = calloc(hashmap_size(s->addresses) + 1, sizeof(HttpAddress *));
        if (!stale)
                return;
        HASHMAP_FOREACH(a, s->addresses)
                if (address_is_stale(a, now))
                        stale[n++] = a;
        for (size_t i = 0; i < n; i++) {
                hashmap_remove(s->addresses, stale[i]->key);
                free(stale[i]);
        }
}

static HttpAddress *http_server_get_address(HttpServer *s, const char *key, bool create) {
        HttpAddress *a = hashmap_get(s->addresses, key);

        if (a || !create)
                return a;
        if (hashmap_size(s->addresses) >= ADDRESSES_SWEEP_AT)
                http_server_sweep_addresses(s);
        a = calloc(1, sizeof(HttpAddress));
        if (!a)
                return NULL;
        snprintf(a->key, sizeof(a->key), "%s", key);
        if (hashmap_put(s->addresses, a->key, a) < 0) {
                free(a);
                return NULL;
        }
        return a;
}

static void http_server_release_address(HttpServer *s, HttpAddress *a) {
        if (a && address_is_stale(a, http_server_now(s))) {
                hashmap_remove(s->addresses, a->key);
                free(a);
        }
}

static HttpUser *http_server_get_user(HttpServer *s, uid_t uid, const char *subject, bool create) {
        char key[HTTP_USER_KEY_MAX];
        HttpUser *u;

        http_user_key(uid, subject, key);
        u = hashmap_get(s->users, key);
        if (u || !create)
                return u;
        u = calloc(1, sizeof(HttpUser) + strlen(key) + 1);
        if (!u)
                return NULL;
        strcpy(u->key, key);
        if (hashmap_put(s->users, u->key, u) < 0) {
                free(u);
                return NULL;
        }
        return u;
}

/* Out of memory is no reason to drop a connection: then it is simply not counted. */
static void http_server_count_user(HttpServer *s, HttpPeer *p, uid_t uid, const char *subject) {
        HttpUser *u = http_server_get_user(s, uid, subject, true);

        if (!u)
                return;
        u->n_connections++;
        p->user = u;
}

static void http_server_uncount_user(HttpServer *s, HttpPeer *p) {
        HttpUser *u = TAKE_PTR(p->user);

        if (!u || --u->n_connections > 0)
                return;
        hashmap_remove(s->users, u->key);
        free(u);
}

static void http_server_count_peer(HttpServer *s, HttpPeer *p, const char *address) {
        s->n_counted++;
        if (!listener_is_network(p->listener)) {
                http_server_count_user(s, p, p->caller.uid, NULL);
                return;
        }
        p->address = http_server_get_address(s, address, true);
        if (p->address)
                p->address->n_connections++;
}

static void http_server_uncount_peer(HttpServer *s, HttpPeer *p) {
        HttpAddress *a = TAKE_PTR(p->address);

        if (p->refused)
                return;
        if (s->n_counted > 0)
                s->n_counted--;
        http_server_uncount_user(s, p);
        if (a) {
                if (a->n_connections > 0)
                        a->n_connections--;
                http_server_release_address(s, a);
        }
}

/* Which limit a new connection would exceed, or NULL: of UID on the unix socket, from ADDRESS on
 * TCP/TLS. Root is held only to ConnectionsMax: it can stop or kill gatewayd anyway, so a
 * per-user limit would protect nothing from it, while the administrator's tools must keep working
 * when users fill their share. */
static const char *http_server_limit_reached(HttpServer *s, const HttpPeer *p, const char *address, unsigned *ret_limit) {
        if (s->n_counted >= s->connections_max) {
                *ret_limit = s->connections_max;
                return "ConnectionsMax";
        }
        if (listener_is_network(p->listener)) {
                HttpAddress *a = http_server_get_address(s, address, false);

                if (a && a->n_connections >= s->connections_per_address) {
                        *ret_limit = s->connections_per_address;
                        return "ConnectionsPerAddress";
                }
                return NULL;
        }
        if (p->caller.uid == 0)
                return NULL;
        HttpUser *u = http_server_get_user(s, p->caller.uid, NULL, false);
        if (u && u->n_connections >= s->connections_per_user) {
                *ret_limit = s->connections_per_user;
                return "ConnectionsPerUser";
        }
        return NULL;
}

static void http_server_log_refusal(HttpServer *s, const char *format, ...) _printf_(2, 3);
static void http_server_log_refusal(HttpServer *s, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        usec_t now = http_server_now(s);
        va_list ap;

        if (now < s->refusal_log_next) {
                s->refusals_unlogged++;
                return;
        }
        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (s->refusals_unlogged > 0)
                log_warning("%s (%u more refusals unlogged in the last %llu s)", strna(msg),
                            s->refusals_unlogged, (unsigned long long) (REFUSAL_LOG_INTERVAL_USEC / USEC_PER_SEC));
        else
                log_warning("%s", strna(msg));
        s->refusal_log_next = now + REFUSAL_LOG_INTERVAL_USEC;
        s->refusals_unlogged = 0;
}

/* Whether P's connection is over a limit; if so it is shut down, which its client sees as EOF. */
static bool http_server_refuse(HttpServer *s, HttpPeer *p, const char *address) {
        const char *limit_name;
        unsigned limit;

        limit_name = http_server_limit_reached(s, p, address, &limit);
        if (!limit_name)
                return false;
        if (listener_is_network(p->listener))
                http_server_log_refusal(s, "Closed a new HTTP connection from %s: %s=%u reached.", address, limit_name, limit);
        else
                http_server_log_refusal(s, "Closed a new HTTP connection of UID %u: %s=%u reached.",
                                        (unsigned) p->caller.uid, limit_name, limit);
        (void) shutdown(p->fd, SHUT_RDWR);
        return true;
}

static void on_connection_notify(void *cls, struct MHD_Connection *connection, void **socket_context,
                                 enum MHD_ConnectionNotificationCode toe) {
        HttpListener *l = cls;
        HttpServer *s = l->server;
        char address[INET6_ADDRSTRLEN] = "";
        HttpPeer *p;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                if (listener_is_network(l)) {
                        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
                        address_to_string(ai ? ai->client_addr : NULL, address);
                }
                /* Either accepted by the fallback (on_listen), which checked the limits already and
                 * is inside MHD_add_connection() now, or by libmicrohttpd itself. */
                p = TAKE_PTR(l->adding);
                if (!p) {
                        const union MHD_ConnectionInfo *info;

                        info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
                        p = http_peer_new(l, info ? info->connect_fd : -1);
                        if (p && http_server_refuse(s, p, address))
                                p->refused = true;
                }
                if (p && !p->refused)
                        http_server_count_peer(s, p, address);
                *socket_context = p;
                s->n_connections++;
                manager_touch(s->manager);
                return;
        }

        p = *socket_context;
        if (p) {
                http_server_uncount_peer(s, p);
                http_peer_free(p);
                *socket_context = NULL;
        }
        if (s->n_connections > 0)
                s->n_connections--;
        manager_touch(s->manager);
}

/* Something other than descriptors is short (ENOBUFS, ENOMEM): the listen socket stays readable,
 * so stop watching it for a moment instead of spinning on it. */
static void http_listener_pause_accept(HttpListener *l) {
        (void) sd_event_source_set_enabled(l->listen_source, SD_EVENT_OFF);
        (void) sd_event_source_set_time_relative(l->accept_retry_source, USEC_PER_SEC / 10);
        (void) sd_event_source_set_enabled(l->accept_retry_source, SD_EVENT_ONESHOT);
}

static int on_accept_retry(sd_event_source *es, uint64_t usec, void *userdata) {
        HttpListener *l = userdata;

        if (!l->server->quiesced)
                (void) sd_event_source_set_enabled(l->listen_source, SD_EVENT_ON);
        return 0;
}

/* Out of descriptors: the reserve descriptor makes room to accept the newest connection and close
 * it at once. Its client learns right away instead of hanging in the listen queue, and we keep
 * serving the connections we have; once some close, new ones are accepted again. */
static int http_listener_shed_one(HttpListener *l) {
        HttpServer *s = l->server;
        int fd, error;

        if (s->reserve_fd < 0)
                s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s->reserve_fd < 0) {
                log_warning("Out of file descriptors and no reserve left, pausing accept.");
                http_listener_pause_accept(l);
                return 0;
        }
        s->reserve_fd = safe_close(s->reserve_fd);
        fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        error = errno;
        safe_close(fd);
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                if (error == EAGAIN)
                        return 0;
                http_listener_pause_accept(l);
                return 0;
        }
        http_server_log_refusal(s, "Out of file descriptors (%u HTTP connections open): closed a new connection.",
                                s->n_connections);
        return 1;
}

/* Takes one connection off the listen queue. Returns 1 when there may be more, 0 when the queue
 * is empty or accepting has to pause. */
static int http_listener_accept_one(HttpListener *l) {
        HttpServer *s = l->server;
        union { struct sockaddr sa; struct sockaddr_un un; struct sockaddr_storage ss; } sa = {};
        socklen_t salen = sizeof(sa);
        char address[INET6_ADDRSTRLEN] = "";
        _cleanup_close_ int fd = -1;
        HttpPeer *p;

        fd = accept4(l->listen_fd, &sa.sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                switch (errno) {
                case EAGAIN:
                        return 0;
                case EINTR:
                case ECONNABORTED:
                case EPROTO:
                        return 1; /* that client is gone already */
                case EMFILE:
                case ENFILE:
                        return http_listener_shed_one(l);
                default:
                        log_warning("Failed to accept an HTTP connection: %m");
                        http_listener_pause_accept(l);
                        return 0;
                }

        if (listener_is_network(l))
                address_to_string(&sa.sa, address);
        p = http_peer_new(l, fd);
        if (!p) {
                log_oom();
                return 1; /* closing it is all we can do */
        }
        if (http_server_refuse(s, p, address)) {
                http_peer_free(p);
                return 1;
        }

        /* libmicrohttpd takes the socket, and closes it itself when it fails; on success
         * on_connection_notify() took the peer. */
        l->adding = p;
        (void) MHD_add_connection(l->daemon, TAKE_FD(fd), &sa.sa, salen);
        http_peer_free(TAKE_PTR(l->adding));
        return 1;
}

static int on_listen(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        HttpListener *l = userdata;

        for (unsigned i = 0; i < ACCEPT_BATCH; i++)
                if (http_listener_accept_one(l) <= 0)
                        break;
        /* A first connection brings the first timeout. */
        http_listener_arm_timer(l);
        return 0;
}

/* ---- identities on TCP/TLS ---- */

/* Whether the address is blocked for guessing credentials. */
static bool http_server_address_blocked(HttpServer *s, HttpAddress *a, usec_t *ret_left) {
        usec_t now = http_server_now(s);

        if (!a || a->blocked_until <= now)
                return false;
        *ret_left = a->blocked_until - now;
        return true;
}

static void http_server_auth_failed(HttpServer *s, HttpAddress *a) {
        usec_t now = http_server_now(s), oldest;

        if (!a)
                return;
        a->failures[a->next_failure] = now;
        a->next_failure = (a->next_failure + 1) % AUTH_FAILURES_MAX;
        /* The slot written next holds the oldest of the last AUTH_FAILURES_MAX failures. */
        oldest = a->failures[a->next_failure];
        if (oldest != 0 && now - oldest < AUTH_FAILURE_WINDOW_USEC) {
                a->blocked_until = now + AUTH_BLOCK_USEC;
                memset(a->failures, 0, sizeof(a->failures));
                log_warning("%u failed authentications from %s within %llu s: blocked for %llu s.",
                            AUTH_FAILURES_MAX, a->key, (unsigned long long) (AUTH_FAILURE_WINDOW_USEC / USEC_PER_SEC),
                            (unsigned long long) (AUTH_BLOCK_USEC / USEC_PER_SEC));
        }
}

void http_request_auth_failed(HttpRequest *req, const char *what, const char *message) {
        if (!http_request_is_network(req))
                return;
        http_server_log_refusal(req->server, "Failed %s authentication from %s: %s", what,
                                strna(http_request_address(req)), strna(message));
        http_server_auth_failed(req->server, req->peer->address);
}

bool http_request_is_network(HttpRequest *req) {
        return req->peer && listener_is_network(req->peer->listener);
}

bool http_request_is_tls(HttpRequest *req) {
        return req->peer && req->peer->listener->kind == HTTP_LISTENER_TLS;
}

const char *http_request_address(HttpRequest *req) {
        return req->peer && req->peer->address ? req->peer->address->key : NULL;
}

const Caller *http_request_caller(HttpRequest *req) {
        static const Caller nobody = { .uid = 65534, .gid = 65534, .pidfd = -1 };
        static const Caller anonymous = { .uid = 65534, .gid = 65534, .pidfd = -1, .source = "anonymous" };
        HttpPeer *p = req->peer;

        if (!p)
                return &nobody;
        if (listener_is_network(p->listener))
                /* Anonymous callers are network callers too: polkit never judges them, and no
                 * Admins entry names them. */
                return req->authenticated ? &req->identity : &anonymous;
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
        if (req->auth_source && req->auth_source->cancel)
                req->auth_source->cancel(req);
        free(req->identity_name);
        registry_logins_free(req->registry_logins);
        free(req->identity_subject);
        if (req->response)
                MHD_destroy_response(req->response);
        if (req->free_userdata)
                req->free_userdata(req->userdata);
        free(req->body);
        form_upload_free(req->form);
        safe_close(req->body_fd);
        if (req->body_path)
                (void) unlink(req->body_path);
        free(req->body_path);
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

void http_request_reply_fd(HttpRequest *req, unsigned status, const char *content_type, int fd, uint64_t size) {
        struct MHD_Response *r;

        if (req->response) {
                log_error("BUG: second reply to %s %s ignored.", req->method, req->url);
                safe_close(fd);
                return;
        }
        /* libmicrohttpd closes fd with the response; if it makes none, fd is still ours. */
        r = MHD_create_response_from_fd64(size, fd);
        if (!r) {
                safe_close(fd);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        http_request_attach_response(req, status, r);
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
                http_listener_wake(req->listener);
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

/* The serverless gateway's API answers errors as {"message": …} (docs/openapi-serverless.yaml),
 * from its handlers as from the server (401, 404 of unknown routes, 413, …). */
#define HTTP_MESSAGE_ERRORS_PREFIX "/api/v1/"

void http_request_reply_error(HttpRequest *req, const GwError *e) {
        GwErrorCode code = e && e->code != GW_ERROR_NONE ? e->code : GW_ERROR_INTERNAL;
        json_object *o, *err;

        if (req->url && strneq(req->url, HTTP_MESSAGE_ERRORS_PREFIX, strlen(HTTP_MESSAGE_ERRORS_PREFIX))) {
                o = json_object_new_object();
                json_object_object_add(o, "message", json_object_new_string(e && e->message ? e->message : "Internal server error"));
                return http_request_reply_json(req, gw_error_http_status(code), o);
        }
        o = json_object_new_object();
        err = json_object_new_object();

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
        http_listener_wake(s->listener);
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
        *s = (HttpStream) { .n_ref = 2, .server = req->server, .listener = req->listener, .connection = req->connection };

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

const char *http_request_header(HttpRequest *req, const char *name) {
        return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
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
        const char *reason;
        json_object *o;
        size_t offset;
        int r;

        if (size == 0)
                return gw_error_set(e, GW_ERROR_BAD_REQUEST, "Request body is empty; a JSON object is required.");
        r = json_parse_untrusted(body, size, &o, &offset, &reason);
        if (r == -ENOMEM)
                return gw_error_set(e, GW_ERROR_INTERNAL, "Out of memory.");
        if (r < 0)
                return gw_error_set(e, GW_ERROR_BAD_REQUEST, "Malformed JSON in request body at offset %zu: %s",
                                    offset, reason);
        if (!o)
                return gw_error_set(e, GW_ERROR_BAD_REQUEST, "Request body must be a JSON object, not null.");
        *ret = o;
        return 0;
}

int http_json_text_parse(const char *what, const char *text, json_object **ret, GwError *e) {
        const char *reason;
        size_t offset;
        int r;

        r = json_parse_untrusted(text, strlen(text), ret, &offset, &reason);
        if (r == -ENOMEM)
                return gw_error_set(e, GW_ERROR_INTERNAL, "Out of memory.");
        if (r < 0)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: not valid JSON at offset %zu: %s",
                                    what, offset, reason);
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

/* What a network caller needs for a route: its scope, "read" for GETs and every scope for other
 * routes without one; local-only routes (token management) are refused outright. */
static bool http_request_check_scope(HttpRequest *req, const HttpRoute *route) {
        bool get = streq(route->method, "GET");
        unsigned need = (route->scope & ~(HTTP_ROUTE_BODY_FILE | HTTP_ROUTE_BODY_FORM | HTTP_ROUTE_JOB_TOKEN)) ?:
                        (get ? AUTH_SCOPE_READ : AUTH_SCOPE_ALL);

        if (!http_request_is_network(req) || (route->scope & HTTP_ROUTE_JOB_TOKEN))
                return true;
        if (need & HTTP_ROUTE_LOCAL_ONLY) {
                http_request_reply_errorf(req, GW_ERROR_ACCESS_DENIED,
                                          "%s %s is only available to local users (unix socket or D-Bus).", req->method, req->url);
                return false;
        }
        if (!req->authenticated || (need & ~req->identity.scopes) == 0)
                return true;
        http_request_reply_errorf(req, GW_ERROR_ACCESS_DENIED, "The credential's scope does not cover %s %s (needs %s%s%s).",
                                  req->method, req->url,
                                  need & AUTH_SCOPE_READ ? "read " : "",
                                  need & AUTH_SCOPE_SUBMIT ? "submit " : "",
                                  need & AUTH_SCOPE_PULL ? "pull " : "");
        return false;
}

static void http_request_route(HttpRequest *req) {
        HttpServer *s = req->server;
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        const HttpRoute *route;
        char allow[128];

        switch (http_route_match(s->routes, s->n_routes, req->method, req->url, &route, captures, allow, sizeof(allow))) {
        case HTTP_ROUTE_FOUND:
                if (http_request_check_scope(req, route))
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

static bool http_request_job_token_route(HttpRequest *req) {
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        const HttpRoute *route;
        char allow[128];
        bool found;

        found = http_route_match(req->server->routes, req->server->n_routes, req->method, req->url, &route,
                                 captures, allow, sizeof(allow)) == HTTP_ROUTE_FOUND;
        http_route_captures_free(captures);
        return found && (route->scope & HTTP_ROUTE_JOB_TOKEN);
}

/* AnonymousRoutes: "METHOD /pattern", patterns as in the route table. */
static bool http_request_anonymous_allowed(HttpRequest *req) {
        char **l = req->manager->config->anonymous_routes;

        for (size_t i = 0; l && l[i]; i++) {
                const char *sp = strchr(l[i], ' ');
                size_t n = sp - l[i];

                if (!((strlen(req->method) == n && strneq(req->method, l[i], n)) ||
                      (streq(req->method, "HEAD") && n == 3 && strneq(l[i], "GET", 3))))
                        continue;
                if (http_path_matches(sp + 1, req->url))
                        return true;
        }
        return false;
}

static void http_request_reply_unauthenticated(HttpRequest *req, const char *message) {
        http_request_reply_errorf(req, GW_ERROR_UNAUTHENTICATED, "%s", message);
        for (size_t i = 0; i < auth_n_sources; i++)
                if (auth_sources[i]->challenge)
                        http_request_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, auth_sources[i]->challenge);
}

/* A network identity is known only now: count the connection for it (ConnectionsPerUser, root
 * included: over the network it is just another credential). A connection that would exceed the
 * limit is answered 429 and closed. */
static bool http_request_admit_identity(HttpRequest *req) {
        HttpServer *s = req->server;
        HttpPeer *p = req->peer;
        char key[HTTP_USER_KEY_MAX];
        HttpUser *u;

        http_user_key(req->identity.uid, req->identity.subject, key);
        if (p->refused || (p->user && streq(p->user->key, key)))
                return true;
        http_server_uncount_user(s, p);
        u = http_server_get_user(s, req->identity.uid, req->identity.subject, false);
        if (u && u->n_connections >= s->connections_per_user) {
                http_server_log_refusal(s, "Refused a request of UID %u from %s: ConnectionsPerUser=%u reached.",
                                        (unsigned) req->identity.uid, strna(http_request_address(req)), s->connections_per_user);
                http_request_reply_errorf(req, GW_ERROR_LIMIT_EXCEEDED, "Too many connections of this user (ConnectionsPerUser=%u).",
                                          s->connections_per_user);
                http_request_add_header(req, MHD_HTTP_HEADER_CONNECTION, "close");
                return false;
        }
        http_server_count_user(s, p, req->identity.uid, req->identity.subject);
        return true;
}

static void on_auth_verified(HttpRequest *req, int r, const Identity *id, const char *message) {
        const AuthSource *src = TAKE_PTR(req->auth_source);

        if (r == -EACCES) {
                /* Rate-limited like refusals: a guessing client must not flood the journal. */
                http_server_log_refusal(req->server, "Failed %s authentication from %s: %s", src->name,
                                        strna(http_request_address(req)), strna(message));
                http_server_auth_failed(req->server, req->peer->address);
                return http_request_reply_unauthenticated(req, message ?: "Invalid credential.");
        }
        if (r == -EPERM)
                return http_request_reply_errorf(req, GW_ERROR_ACCESS_DENIED, "%s", message ?: "This identity may not act here.");
        if (r < 0)
                return http_request_reply_errorf(req, GW_ERROR_UNAVAILABLE, "Cannot verify the credential now (%s): %s",
                                                 src->name, message ?: "identity source unavailable");

        free(req->identity_name);
        req->identity_name = strdup(id->name ?: "");
        free(req->identity_subject);
        req->identity_subject = id->subject ? strdup(id->subject) : NULL;
        if (!req->identity_name || (id->subject && !req->identity_subject))
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        req->identity = (Caller) {
                .uid = id->uid,
                .gid = id->gid,
                .pidfd = -1,
                .source = src->name,
                .name = req->identity_name,
                .scopes = id->scopes & AUTH_SCOPE_ALL,
                .subject = req->identity_subject,
        };
        req->authenticated = true;
        if (!http_request_admit_identity(req))
                return;
        http_request_route(req);
}

static void http_request_dispatch(HttpRequest *req) {
        const AuthSource *src;
        usec_t left;

        if (!http_request_is_network(req))
                return http_request_route(req);

        if (http_server_address_blocked(req->server, req->peer->address, &left)) {
                char retry[32];

                http_request_reply_errorf(req, GW_ERROR_LIMIT_EXCEEDED,
                                          "Too many failed authentications from %s; try again later.", req->peer->address->key);
                snprintf(retry, sizeof(retry), "%llu", (unsigned long long) ((left + USEC_PER_SEC - 1) / USEC_PER_SEC));
                http_request_add_header(req, MHD_HTTP_HEADER_RETRY_AFTER, retry);
                return;
        }

        /* A job's token is checked by its route alone: no identity source may take it. */
        if (http_request_job_token_route(req))
                return http_request_route(req);

        src = auth_source_find(req);
        if (!src) {
                if (http_request_anonymous_allowed(req))
                        return http_request_route(req);
                return http_request_reply_unauthenticated(req, "Authentication required.");
        }

        /* The source may answer at once (then the request is routed before verify() returns) or
         * later from the loop: then the request waits suspended. */
        req->auth_source = src;
        src->verify(req, on_auth_verified);
        if (req->auth_source)
                http_request_suspend(req);
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

static HttpRequest *http_request_new(HttpListener *l, struct MHD_Connection *connection, const char *method, const char *url) {
        const union MHD_ConnectionInfo *info;
        HttpServer *s = l->server;
        HttpRequest *req = calloc(1, sizeof(HttpRequest));

        if (!req)
                return NULL;
        req->server = s;
        req->listener = l;
        req->manager = s->manager;
        req->connection = connection;
        req->method = method;
        req->url = url;
        req->body_fd = -1;
        req->body_max = s->manager->config->max_request_body;
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

/* Routes with HTTP_ROUTE_BODY_FILE take their body into a file of the upload directory (on the
 * state file system, so that a handler can rename it into place), never into memory. Any local
 * user (and a network caller that presents a credential) may send one as they may send a body:
 * it is bounded by ProgramArtifactMax, the connection limits bound how many there are at once,
 * and it is removed with the request. */
static int http_request_setup_file_body(HttpRequest *req) {
        const HttpRoute *route = NULL;
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        char allow[64];
        int fd;

        /* (uploads are POSTs: other requests are not matched twice) */
        if (!streq(req->method, MHD_HTTP_METHOD_POST))
                return 0;
        if (http_route_match(req->server->routes, req->server->n_routes, req->method, req->url, &route, captures,
                             allow, sizeof(allow)) != HTTP_ROUTE_FOUND)
                return 0;
        http_route_captures_free(captures);
        if (!(route->scope & HTTP_ROUTE_BODY_FILE))
                return 0;
        /* A network caller without any credential is refused (401) when the body has been read:
         * its body must not reach the disk meanwhile, so it stays under MaxRequestBody. */
        if (http_request_is_network(req) && !auth_source_find(req))
                return 0;
        req->body_max = req->manager->config->program_artifact_max;
        if (asprintf(&req->body_path, "%s/" PROGRAM_UPLOAD_DIR "/upload-XXXXXX", req->manager->state_dir) < 0) {
                req->body_path = NULL;
                return -ENOMEM;
        }
        fd = mkostemp(req->body_path, O_CLOEXEC);
        if (fd < 0) {
                req->body_path = mfree(req->body_path);
                return log_error_errno(errno, "Cannot create a file for an upload: %m");
        }
        req->body_fd = fd;
        /* Not a form: the body goes to the file as it is, and the handler says what is wrong. */
        if ((route->scope & HTTP_ROUTE_BODY_FORM) &&
            form_upload_new(http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE), fd, &req->form) == -ENOMEM)
                return -ENOMEM;
        return 1;
}

/* Appends to the body file; past the limit the body is read and dropped, as in memory. */
static enum MHD_Result http_request_file_body(HttpRequest *req, const char *data, size_t n) {
        if (req->body_too_large || req->body_size + n > req->body_max) {
                req->body_too_large = true;
                req->body_size += n;
                if (req->body_fd >= 0 && ftruncate(req->body_fd, 0) < 0)
                        log_debug_errno(errno, "Cannot truncate %s: %m", req->body_path);
                req->body_fd = safe_close(req->body_fd);
                return req->body_size > 16 * req->body_max ? MHD_NO : MHD_YES;
        }
        if (req->form) {
                /* A refused form is read to its end (and dropped) like a body over the limit; the
                 * handler answers with the reason. */
                (void) form_upload_feed(req->form, data, n);
                req->body_size += n;
                return MHD_YES;
        }
        if (loop_write(req->body_fd, data, n) < 0) {
                log_warning_errno(errno, "Cannot write upload %s: %m", req->body_path);
                return MHD_NO;  /* a full disk: the client sees the connection end */
        }
        req->body_size += n;
        return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls) {
        HttpListener *l = cls;
        HttpServer *s = l->server;
        uint64_t max_body;
        HttpRequest *req = *req_cls;

        /* Two-phase idiom: the first call only sets up state. Queueing a response here would make
         * libmicrohttpd close the connection (it cannot know whether a body follows), killing
         * keep-alive — so only refusals that must stop a body from being read happen now. */
        if (!req) {
                req = http_request_new(l, connection, method, url);
                if (!req)
                        return MHD_NO;
                if (req->peer && req->peer->refused) {
                        /* Shut down already; libmicrohttpd normally notices before parsing. */
                        http_request_free(req);
                        return MHD_NO;
                }
                *req_cls = req;
                manager_touch(s->manager);
                if (http_request_setup_file_body(req) < 0)
                        return MHD_NO;
                max_body = req->body_max;
                if (content_length_too_large(req, max_body)) {
                        http_request_reply_errorf(req, GW_ERROR_PAYLOAD_TOO_LARGE,
                                                  "Request body exceeds the limit of %llu bytes.", (unsigned long long) max_body);
                        return queue_reply(req);
                }
                return MHD_YES;
        }

        max_body = req->body_max;
        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                char *b;

                *upload_data_size = 0;
                if (req->body_path)
                        return http_request_file_body(req, upload_data, n);
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

static int bind_unix(const char *path, int *ret_fd) {
        union { struct sockaddr sa; struct sockaddr_un un; } sa = { .un.sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

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
        return 0;
}

static int bind_inet(const char *key, const char *address, int *ret_fd) {
        struct sockaddr_storage ss;
        socklen_t len;
        _cleanup_close_ int fd = -1;
        int r;

        r = config_parse_listen_address(address, &ss, &len);
        if (r < 0)
                return log_error_errno(r, "Listen.%s: invalid address \"%s\".", key, address);
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Listen.%s: failed to create socket: %m", key);
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int) { 1 }, sizeof(int));
        if (ss.ss_family == AF_INET6)
                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int) { 1 }, sizeof(int));
        if (bind(fd, (struct sockaddr *) &ss, len) < 0)
                return log_error_errno(errno, "Listen.%s: failed to bind %s: %m", key, address);
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Listen.%s: failed to listen on %s: %m", key, address);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

HttpListenFds *http_listen_fds_free(HttpListenFds *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < _HTTP_LISTENER_KIND_MAX; i++)
                f->fd[i] = safe_close(f->fd[i]);
        return NULL;
}

int http_listen_sockets(const Config *c, const char *path, HttpListenFds *ret) {
        HttpListenFds f = { .fd = { -1, -1, -1 } };
        char **names = NULL;
        int n, r = 0;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to get listening sockets from systemd: %m");
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                size_t k;

                for (k = 0; k < _HTTP_LISTENER_KIND_MAX; k++)
                        if (streq(names[i], listener_kind_names[k]))
                                break;
                if (k == _HTTP_LISTENER_KIND_MAX || f.fd[k] >= 0) {
                        log_warning("Ignoring unexpected socket '%s' passed by the service manager.", names[i]);
                        continue;
                }
                /* Checked by kind: a unix socket where TCP is expected would take peer
                 * credentials for granted, or never have any. */
                if (k == HTTP_LISTENER_UNIX ? sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0
                                            : (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0)) {
                        r = log_error_errno(EINVAL, "Socket '%s' passed by the service manager is not a listening %s stream socket.",
                                            names[i], k == HTTP_LISTENER_UNIX ? "AF_UNIX" : "TCP");
                        break;
                }
                f.fd[k] = fd;
                f.activated[k] = true;
        }
        strv_free(names);
        if (r < 0) {
                http_listen_fds_free(&f);
                return r;
        }

        if (f.fd[HTTP_LISTENER_UNIX] < 0)
                r = bind_unix(path, &f.fd[HTTP_LISTENER_UNIX]);
        if (r >= 0 && f.fd[HTTP_LISTENER_TCP] < 0 && c->listen_tcp)
                r = bind_inet("tcp", c->listen_tcp, &f.fd[HTTP_LISTENER_TCP]);
        if (r >= 0 && f.fd[HTTP_LISTENER_TLS] < 0 && c->listen_tls)
                r = bind_inet("tls", c->listen_tls, &f.fd[HTTP_LISTENER_TLS]);
        if (r < 0) {
                http_listen_fds_free(&f);
                return r;
        }
        *ret = f;
        return 0;
}

/* Each connection holds its socket, and a pidfd while polkit needs one; FD_RESERVE also covers
 * refused connections waiting to be closed (MHD_LIMIT_SLACK). */
static unsigned connections_max_for_fd_limit(unsigned want) {
        struct rlimit rl;
        rlim_t avail;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
                return want;
        avail = rl.rlim_cur > 2 * FD_RESERVE ? (rl.rlim_cur - FD_RESERVE) / 2 : rl.rlim_cur / 4;
        avail = MAX(avail, (rlim_t) 1);
        if (avail >= want)
                return want;
        log_warning("ConnectionsMax=%u does not fit into RLIMIT_NOFILE=%llu; accepting at most %u HTTP connections.",
                    want, (unsigned long long) rl.rlim_cur, (unsigned) avail);
        return (unsigned) avail;
}

int http_server_new(Manager *m, const HttpRoute *routes, size_t n_routes, HttpServer **ret) {
        const Config *c = m->config;
        HttpServer *s;

        s = calloc(1, sizeof(HttpServer));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->routes = routes;
        s->n_routes = n_routes;
        s->connections_max = connections_max_for_fd_limit(c->connections_max);
        s->connections_per_user = c->connections_per_user;
        s->connections_per_address = c->connections_per_address;
        s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        s->users = hashmap_new();
        s->addresses = hashmap_new();
        if (s->reserve_fd < 0 || !s->users || !s->addresses) {
                int r = s->reserve_fd < 0 ? -errno : -ENOMEM;
                http_server_free(s);
                return log_error_errno(r, "Failed to set up the HTTP server: %m");
        }
        *ret = s;
        return 0;
}

static HttpListener *http_listener_free(HttpListener *l) {
        if (!l)
                return NULL;
        if (l->daemon)
                MHD_stop_daemon(l->daemon);
        sd_event_source_disable_unref(l->io_source);
        sd_event_source_disable_unref(l->timer_source);
        sd_event_source_disable_unref(l->listen_source);
        sd_event_source_disable_unref(l->accept_retry_source);
        safe_close(l->listen_fd);
        free(l);
        return NULL;
}

static void http_listener_quiesce(HttpListener *l) {
        if (!l)
                return;
        if (l->daemon)
                (void) MHD_quiesce_daemon(l->daemon);
        (void) sd_event_source_set_enabled(l->listen_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(l->accept_retry_source, SD_EVENT_OFF);
}

int http_server_add_listener(HttpServer *s, HttpListenerKind kind, int listen_fd) {
        const Config *c = s->manager->config;
        const union MHD_DaemonInfo *info;
        sd_event *e = s->manager->event;
        HttpListener *l;
        unsigned flags;
        int r;

        assert(kind >= 0 && kind < _HTTP_LISTENER_KIND_MAX && !s->listeners[kind]);

        l = calloc(1, sizeof(HttpListener));
        if (!l) {
                safe_close(listen_fd);
                return log_oom();
        }
        *l = (HttpListener) { .server = s, .kind = kind, .listen_fd = listen_fd };
        /* on_listen() accepts too; systemd passes the socket blocking. */
        (void) fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);

        if (kind == HTTP_LISTENER_TLS && !s->tls) {
                r = http_tls_new(c->tls_certificate, c->tls_key, &s->tls);
                if (r < 0) {
                        http_listener_free(l);
                        return r;
                }
        }

        /* No MHD_USE_TURBO: with it a half-closed connection was sometimes noticed only at the
         * connection timeout. */
        flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
        if (kind == HTTP_LISTENER_TLS)
                l->daemon = MHD_start_daemon(
                                flags | MHD_USE_TLS,
                                0, NULL, NULL, on_access, l,
                                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) listen_fd,
                                MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, l,
                                MHD_OPTION_NOTIFY_CONNECTION, on_connection_notify, l,
                                MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, c->connection_timeout_sec,
                                MHD_OPTION_CONNECTION_LIMIT, s->connections_max + MHD_LIMIT_SLACK,
                                /* The certificate is looked up per handshake, so that SIGHUP can
                                 * replace it without a restart (http-tls.c). */
                                MHD_OPTION_HTTPS_CERT_CALLBACK, http_tls_certificate_callback,
                                MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
                                MHD_OPTION_END);
        else
                l->daemon = MHD_start_daemon(
                                flags,
                                0, NULL, NULL, on_access, l,
                                MHD_OPTION_LISTEN_SOCKET, (MHD_socket) listen_fd,
                                MHD_OPTION_NOTIFY_COMPLETED, on_request_completed, l,
                                MHD_OPTION_NOTIFY_CONNECTION, on_connection_notify, l,
                                MHD_OPTION_UNESCAPE_CALLBACK, unescape_url, NULL,
                                /* Idle connections (keep-alive or stuck mid-request) are closed;
                                 * suspended ones (waiting for a job, following a log) are not idle. */
                                MHD_OPTION_CONNECTION_TIMEOUT, c->connection_timeout_sec,
                                MHD_OPTION_CONNECTION_LIMIT, s->connections_max + MHD_LIMIT_SLACK,
                                MHD_OPTION_END);
        if (!l->daemon) {
                http_listener_free(l);
                return log_error_errno(EIO, "Failed to start the HTTP server on the '%s' socket.", listener_kind_names[kind]);
        }

        info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                http_listener_free(l);
                return log_error_errno(EIO, "HTTP server has no epoll fd.");
        }
        r = sd_event_add_io(e, &l->io_source, info->epoll_fd, EPOLLIN, on_io, l);
        if (r >= 0)
                /* Accuracy 1 µs, not sd-event's default of 250 ms: libmicrohttpd asks for a
                 * timeout of 0 when a connection has work left (e.g. a stream that got data or
                 * ended), and the default would let the loop coalesce that wake-up up to 250 ms
                 * later. */
                r = sd_event_add_time(e, &l->timer_source, CLOCK_MONOTONIC, 0, 1, on_timer, l);
        if (r >= 0)
                r = sd_event_add_io(e, &l->listen_source, listen_fd, EPOLLIN, on_listen, l);
        if (r >= 0)
                r = sd_event_source_set_priority(l->listen_source, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_add_time(e, &l->accept_retry_source, CLOCK_MONOTONIC, 0, 0, on_accept_retry, l);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->accept_retry_source, SD_EVENT_OFF);
        if (r < 0) {
                http_listener_free(l);
                return log_error_errno(r, "Failed to hook the HTTP server into the event loop: %m");
        }
        (void) sd_event_source_set_description(l->io_source, "http-io");
        (void) sd_event_source_set_description(l->timer_source, "http-timer");
        (void) sd_event_source_set_description(l->listen_source, "http-listen");
        (void) sd_event_source_set_description(l->accept_retry_source, "http-accept-retry");
        http_listener_arm_timer(l);
        s->listeners[kind] = l;
        return 0;
}

int http_server_reload(HttpServer *s) {
        if (!s || !s->tls)
                return 0;
        return http_tls_reload(s->tls);
}

HttpServer *http_server_free(HttpServer *s) {
        HttpAddress *a;
        HttpUser *u;

        if (!s)
                return NULL;
        http_server_quiesce(s);
        /* libmicrohttpd must not be stopped with suspended connections: answer them. */
        while (s->suspended_requests)
                http_request_reply_errorf(s->suspended_requests, GW_ERROR_UNAVAILABLE, "gatewayd is shutting down.");
        while (s->suspended_streams)
                http_stream_finish(s->suspended_streams);
        for (size_t k = 0; k < _HTTP_LISTENER_KIND_MAX; k++)
                if (s->listeners[k] && s->listeners[k]->daemon)
                        MHD_run(s->listeners[k]->daemon);
        for (size_t k = 0; k < _HTTP_LISTENER_KIND_MAX; k++)
                s->listeners[k] = http_listener_free(s->listeners[k]);
        s->tls = http_tls_free(s->tls);
        safe_close(s->reserve_fd);
        /* Normally empty by now: MHD_stop_daemon() reported every connection closed. */
        HASHMAP_FOREACH(u, s->users)
                free(u);
        hashmap_free(s->users);
        HASHMAP_FOREACH(a, s->addresses)
                free(a);
        hashmap_free(s->addresses);
        free(s);
        return NULL;
}

/* No new connections from now on: they wait in the listen queue (for the next instance, with
 * socket activation). */
void http_server_quiesce(HttpServer *s) {
        if (!s)
                return;
        s->quiesced = true;
        for (size_t k = 0; k < _HTTP_LISTENER_KIND_MAX; k++)
                http_listener_quiesce(s->listeners[k]);
}

unsigned http_server_n_connections(HttpServer *s) {
        return s ? s->n_connections : 0;
}
