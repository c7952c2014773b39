/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A load generator for gatewayd's listeners with the same client code on each: the unix socket
 * (plain HTTP) or TCP with TLS (OpenSSL), optionally with an Authorization header. One thread
 * per connection, blocking I/O, keep-alive, one request in flight per connection; a response is
 * complete after its headers and Content-Length bytes. Comparing two runs of this same client
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
#include <pthread.h>
#include <stdatomic.h>
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
static atomic_uint_fast64_t n_ok, n_non200, n_errors, n_total;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

typedef struct Conn {
        int fd;
        SSL *ssl;
        char buf[BUF_SIZE];
} Conn;

static void conn_close(Conn *c) {
        if (c->ssl) {
                SSL_free(c->ssl);
                c->ssl = NULL;
        }
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

static int conn_open(Conn *c) {
        c->fd = -1;
        c->ssl = NULL;
        if (arg_socket) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                strncpy(sa.sun_path, arg_socket, sizeof(sa.sun_path) - 1);
                c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                        return -1;
                return 0;
        }
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
        if (SSL_connect(c->ssl) != 1)
                return -1;
        return 0;
}

static ssize_t conn_write(Conn *c, const void *p, size_t n) {
        return c->ssl ? SSL_write(c->ssl, p, (int) n) : send(c->fd, p, n, MSG_NOSIGNAL);
}

static ssize_t conn_read(Conn *c, void *p, size_t n) {
        return c->ssl ? SSL_read(c->ssl, p, (int) n) : recv(c->fd, p, n, 0);
}

/* One request and its response; returns the status or -1. */
static int conn_request(Conn *c) {
        size_t have = 0, need = 0;
        char *end;
        unsigned status;

        if (conn_write(c, request, request_len) != (ssize_t) request_len)
                return -1;
        for (;;) {
                ssize_t n = conn_read(c, c->buf + have, BUF_SIZE - 1 - have);
                if (n <= 0)
                        return -1;
                have += (size_t) n;
                c->buf[have] = 0;
                if (!need) {
                        end = strstr(c->buf, "\r\n\r\n");
                        if (!end)
                                continue;
                        const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
                        if (!cl || cl > end)
                                return -1;
                        need = (size_t) (end - c->buf) + 4 + strtoul(cl + 17, NULL, 10);
                }
                if (have >= need)
                        break;
        }
        if (sscanf(c->buf, "HTTP/1.%*d %u", &status) != 1)
                return -1;
        return (int) status;
}

static void *worker(void *userdata) {
        Conn *c = calloc(1, sizeof(Conn));

        if (!c || conn_open(c) < 0) {
                atomic_fetch_add(&n_errors, 1);
                if (c)
                        conn_close(c);
                free(c);
                return NULL;
        }
        for (double t = now(); t < t_end; t = now()) {
                int status = conn_request(c);
                bool measured = now() >= t_measure && now() < t_end;

                atomic_fetch_add(&n_total, 1);
                if (status < 0) {
                        if (measured)
                                atomic_fetch_add(&n_errors, 1);
                        conn_close(c);
                        if (conn_open(c) < 0)
                                break;
                        continue;
                }
                if (!measured)
                        continue;
                if (status == 200)
                        atomic_fetch_add(&n_ok, 1);
                else
                        atomic_fetch_add(&n_non200, 1);
        }
        conn_close(c);
        free(c);
        return NULL;
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
        pthread_t *threads;
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
        threads = calloc(arg_connections, sizeof(pthread_t));
        for (unsigned i = 0; i < arg_connections; i++)
                pthread_create(&threads[i], NULL, worker, NULL);
        for (unsigned i = 0; i < arg_connections; i++)
                pthread_join(threads[i], NULL);
        printf("requests=%llu ok=%llu non200=%llu errors=%llu seconds=%.3f rps=%.1f\n",
               (unsigned long long) n_total, (unsigned long long) n_ok, (unsigned long long) n_non200,
               (unsigned long long) n_errors, arg_duration, (double) n_ok / arg_duration);
        free(threads);
        if (arg_tls)
                SSL_CTX_free(ssl_ctx);
        return n_ok > 0 ? 0 : 1;
}
