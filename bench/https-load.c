/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A load generator for gatewayd's listeners with the same client code on each: the unix socket
 * (plain HTTP) or TCP with TLS (OpenSSL), optionally with an Authorization header. N keep-alive
 * connections driven by epoll from one thread (non-blocking OpenSSL), one request in flight per
 * connection; a response is complete after its headers and Content-Length bytes. Comparing two runs of this same client
 * (unix vs TLS) isolates what the network listener costs gatewayd. Prints
 *
 *   requests=… ok=… non200=… errors=… seconds=… rps=…
 *
 * like http-load, counting only the measured period (after --warmup). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

static const char *arg_socket, *arg_tls, *arg_cafile, *arg_header;
static const char *arg_path = "/";
static unsigned arg_connections = 16;
static double arg_duration = 5, arg_warmup = 1;

static SSL_CTX *ssl_ctx;
static char request[4096];
static size_t request_len;
static double t_start, t_measure, t_end;
static uint64_t n_ok, n_non200, n_errors, n_total;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

typedef struct Conn {
        int fd;
        SSL *ssl;
        bool handshaken;
        size_t sent, have, need;
        char buf[BUF_SIZE];
} Conn;

static int epfd;

static void conn_close(Conn *c) {
        if (c->ssl) {
                SSL_free(c->ssl);
                c->ssl = NULL;
        }
        if (c->fd >= 0) {
                (void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
        }
        c->fd = -1;
}

/* Connects (blocking: a burst of N connects is absorbed by the listen backlog), then switches
 * to non-blocking for the epoll loop; the TLS handshake runs in the loop. */
static int conn_open(Conn *c) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

        c->fd = -1;
        c->ssl = NULL;
        c->handshaken = false;
        c->sent = c->have = c->need = 0;
        if (arg_socket) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                strncpy(sa.sun_path, arg_socket, sizeof(sa.sun_path) - 1);
                c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        return -1;
                c->handshaken = true;
        } else {
                char host[64];
                const char *colon = strrchr(arg_tls, ':');
                struct sockaddr_in sa = { .sin_family = AF_INET };

                snprintf(host, sizeof(host), "%.*s", (int) (colon - arg_tls), arg_tls);
                sa.sin_port = htons((uint16_t) atoi(colon + 1));
                if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                        return -1;
                c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        return -1;
                (void) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));
                c->ssl = SSL_new(ssl_ctx);
                if (!c->ssl)
                        return -1;
                SSL_set_fd(c->ssl, c->fd);
                SSL_set1_host(c->ssl, host);
                SSL_set_connect_state(c->ssl);
        }
        (void) fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        return epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Wants EPOLLOUT only while TLS needs to write before it can go on. */
static void conn_want(Conn *c, bool out) {
        struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };
        (void) epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* 1: done, 0: try again on readiness, -1: failed. */
static int io_result(Conn *c, int n) {
        if (n > 0)
                return 1;
        if (c->ssl) {
                int e = SSL_get_error(c->ssl, n);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                        conn_want(c, e == SSL_ERROR_WANT_WRITE);
                        return 0;
                }
                return -1;
        }
        return n < 0 && errno == EAGAIN ? 0 : -1;
}

/* Drives one connection as far as it goes; returns the status of a completed response, 0 if
 * none completed, -1 on failure. */
static int conn_step(Conn *c) {
        int r;

        if (!c->handshaken) {
                r = io_result(c, SSL_do_handshake(c->ssl));
                if (r <= 0)
                        return r;
                c->handshaken = true;
                conn_want(c, false);
        }
        while (c->sent < request_len) {
                int n = c->ssl ? SSL_write(c->ssl, request + c->sent, (int) (request_len - c->sent))
                               : (int) send(c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL);
                r = io_result(c, n);
                if (r <= 0)
                        return r;
                c->sent += (size_t) n;
        }
        for (;;) {
                int n = c->ssl ? SSL_read(c->ssl, c->buf + c->have, (int) (BUF_SIZE - 1 - c->have))
                               : (int) recv(c->fd, c->buf + c->have, BUF_SIZE - 1 - c->have, 0);
                r = io_result(c, n);
                if (r <= 0)
                        return r;
                c->have += (size_t) n;
                c->buf[c->have] = 0;
                if (!c->need) {
                        char *end = strstr(c->buf, "\r\n\r\n");
                        const char *cl;
                        if (!end)
                                continue;
                        cl = strcasestr(c->buf, "\r\nContent-Length:");
                        if (!cl || cl > end)
                                return -1;
                        c->need = (size_t) (end - c->buf) + 4 + strtoul(cl + 17, NULL, 10);
                }
                if (c->have >= c->need) {
                        unsigned status;
                        if (c->have != c->need || sscanf(c->buf, "HTTP/1.%*d %u", &status) != 1)
                                return -1;
                        c->sent = c->have = c->need = 0;
                        return (int) status;
                }
        }
}

static void run(void) {
        Conn *conns = calloc(arg_connections, sizeof(Conn));
        struct epoll_event events[256];

        epfd = epoll_create1(EPOLL_CLOEXEC);
        for (unsigned i = 0; i < arg_connections; i++)
                if (conn_open(&conns[i]) < 0) {
                        n_errors++;
                        conn_close(&conns[i]);
                }
        /* Every connection starts by sending its first request. */
        for (unsigned i = 0; i < arg_connections; i++)
                if (conns[i].fd >= 0 && conn_step(&conns[i]) < 0)
                        conn_close(&conns[i]);

        while (now() < t_end) {
                int n = epoll_wait(epfd, events, 256, 100);

                for (int k = 0; k < n; k++) {
                        Conn *c = events[k].data.ptr;

                        for (;;) {
                                int status = conn_step(c);
                                double t = now();
                                bool measured = t >= t_measure && t < t_end;

                                if (status == 0)
                                        break;
                                n_total++;
                                if (status < 0) {
                                        if (measured)
                                                n_errors++;
                                        conn_close(c);
                                        if (conn_open(c) < 0)
                                                conn_close(c);
                                        break;
                                }
                                if (measured)
                                        *(status == 200 ? &n_ok : &n_non200) += 1;
                                /* the next request goes out at once (in conn_step) */
                        }
                }
        }
        for (unsigned i = 0; i < arg_connections; i++)
                conn_close(&conns[i]);
        free(conns);
        close(epfd);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "socket",      required_argument, NULL, 's' },
                { "tls",         required_argument, NULL, 't' },
                { "cafile",      required_argument, NULL, 'c' },
                { "header",      required_argument, NULL, 'H' },
                { "path",        required_argument, NULL, 'p' },
                { "connections", required_argument, NULL, 'n' },
                { "duration",    required_argument, NULL, 'd' },
                { "warmup",      required_argument, NULL, 'w' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 's': arg_socket = optarg; break;
                case 't': arg_tls = optarg; break;
                case 'c': arg_cafile = optarg; break;
                case 'H': arg_header = optarg; break;
                case 'p': arg_path = optarg; break;
                case 'n': arg_connections = (unsigned) atoi(optarg); break;
                case 'd': arg_duration = atof(optarg); break;
                case 'w': arg_warmup = atof(optarg); break;
                default: return 1;
                }
        if (!!arg_socket == !!arg_tls || (arg_tls && !strchr(arg_tls, ':')) || arg_connections == 0) {
                fprintf(stderr, "Usage: https-load (--socket=PATH | --tls=IP:PORT --cafile=PEM) [--header='K: V'] "
                                "[--path=P] [--connections=N] [--duration=S] [--warmup=S]\n");
                return 1;
        }
        if (arg_tls) {
                ssl_ctx = SSL_CTX_new(TLS_client_method());
                if (!ssl_ctx || !arg_cafile || SSL_CTX_load_verify_locations(ssl_ctx, arg_cafile, NULL) != 1) {
                        fprintf(stderr, "Cannot load the CA file.\n");
                        return 1;
                }
                SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
        }
        request_len = (size_t) snprintf(request, sizeof(request), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s%s\r\n",
                                        arg_path, arg_header ?: "", arg_header ? "\r\n" : "", "");

        t_start = now();
        t_measure = t_start + arg_warmup;
        t_end = t_measure + arg_duration;
        run();
        printf("requests=%llu ok=%llu non200=%llu errors=%llu seconds=%.3f rps=%.1f\n",
               (unsigned long long) n_total, (unsigned long long) n_ok, (unsigned long long) n_non200,
               (unsigned long long) n_errors, arg_duration, (double) n_ok / arg_duration);
        if (arg_tls)
                SSL_CTX_free(ssl_ctx);
        return n_ok > 0 ? 0 : 1;
}
