/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small HTTP/1.1 load generator for AF_UNIX sockets (wrk and ab speak TCP only).
 *
 * N keep-alive connections, one request in flight on each (no pipelining), all driven by epoll
 * from one thread (or T threads, each owning N/T connections). A response is complete when its
 * headers and Content-Length bytes of body have arrived; only 200s count as successes. Requests
 * completed during the warm-up are not counted. Prints one summary line:
 *
 *   requests=… ok=… non200=… errors=… seconds=… rps=…
 *
 * where rps is the number of 200 responses per second of the measured period. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

typedef struct Conn {
        int fd;
        size_t sent;       /* bytes of the current request written */
        size_t have;       /* bytes of the current response read */
        char *buf;
} Conn;

typedef struct Worker {
        pthread_t thread;
        unsigned n_conns;
        uint64_t ok, non200, errors;       /* measured period only */
        uint64_t total;                    /* including warm-up */
} Worker;

static const char *arg_socket;
static const char *arg_path = "/";
static unsigned arg_connections = 64;
static unsigned arg_threads = 1;
static double arg_duration = 5;
static double arg_warmup = 1;
static int arg_cpu = -1;

static char request[1024];
static size_t request_len;
static double t_measure_start, t_end;

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int conn_open(Conn *c, int epfd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

        strncpy(sa.sun_path, arg_socket, sizeof(sa.sun_path) - 1);
        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return -errno;
        /* Blocking connect keeps it simple; the listen backlog absorbs a burst of 64. */
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(c->fd);
                c->fd = -1;
                return r;
        }
        c->sent = c->have = 0;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
                return -errno;
        return 0;
}

static void conn_close(Conn *c, int epfd) {
        if (c->fd >= 0) {
                (void) epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
        }
        c->fd = -1;
}

/* Writes the rest of the request; the requests are small, a partial write is near impossible
 * on a unix socket, but then we just busy-retry on the next readiness. */
static int conn_send(Conn *c) {
        while (c->sent < request_len) {
                ssize_t n = send(c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                c->sent += (size_t) n;
        }
        return 0;
}

/* Returns the total length of a complete response in c->buf, 0 if incomplete, <0 if garbage.
 * Sets *status. */
static ssize_t response_length(Conn *c, unsigned *status, bool *close_after) {
        char *end, *p;
        size_t header_len, content_length = 0;
        bool have_cl = false;

        c->buf[c->have] = 0;
        end = strstr(c->buf, "\r\n\r\n");
        if (!end)
                return c->have >= BUF_SIZE - 1 ? -EMSGSIZE : 0;
        header_len = (size_t) (end - c->buf) + 4;
        if (strncmp(c->buf, "HTTP/1.", 7) != 0 || sscanf(c->buf + 8, " %u", status) != 1)
                return -EBADMSG;
        *close_after = false;
        for (p = strstr(c->buf, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
                const char *h = p + 2;
                if (strncasecmp(h, "Content-Length:", 15) == 0) {
                        content_length = strtoull(h + 15, NULL, 10);
                        have_cl = true;
                } else if (strncasecmp(h, "Connection:", 11) == 0 && strcasestr(h, "close") && strcasestr(h, "close") < strstr(h, "\r\n"))
                        *close_after = true;
        }
        if (!have_cl)
                return -EBADMSG; /* we only speak to servers that send Content-Length */
        if (c->have < header_len + content_length)
                return 0;
        return (ssize_t) (header_len + content_length);
}

static void *worker_run(void *userdata) {
        Worker *w = userdata;
        struct epoll_event events[256];
        Conn *conns = calloc(w->n_conns, sizeof(Conn));
        int epfd = epoll_create1(EPOLL_CLOEXEC);
        bool measuring = false;

        if (!conns || epfd < 0) {
                perror("setup");
                exit(EXIT_FAILURE);
        }
        for (unsigned i = 0; i < w->n_conns; i++) {
                int r;
                conns[i].buf = malloc(BUF_SIZE);
                if (!conns[i].buf)
                        exit(EXIT_FAILURE);
                r = conn_open(&conns[i], epfd);
                if (r < 0) {
                        fprintf(stderr, "connect %s: %s\n", arg_socket, strerror(-r));
                        exit(EXIT_FAILURE);
                }
                if (conn_send(&conns[i]) < 0)
                        exit(EXIT_FAILURE);
        }

        for (;;) {
                double t = now();
                int n;

                if (t >= t_end)
                        break;
                if (!measuring && t >= t_measure_start)
                        measuring = true;

                n = epoll_wait(epfd, events, (int) (sizeof(events) / sizeof(events[0])), 10);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("epoll_wait");
                        exit(EXIT_FAILURE);
                }
                for (int i = 0; i < n; i++) {
                        Conn *c = events[i].data.ptr;
                        unsigned status = 0;
                        bool close_after = false;
                        ssize_t k, len;

                        if (c->sent < request_len && conn_send(c) < 0)
                                goto broken;
                        k = recv(c->fd, c->buf + c->have, BUF_SIZE - 1 - c->have, MSG_DONTWAIT);
                        if (k < 0 && errno == EAGAIN)
                                continue;
                        if (k <= 0)
                                goto broken;
                        c->have += (size_t) k;
                        len = response_length(c, &status, &close_after);
                        if (len == 0)
                                continue;
                        if (len < 0 || (size_t) len != c->have) /* extra bytes: the server pipelined nonsense */
                                goto broken;

                        w->total++;
                        if (measuring) {
                                if (status == 200)
                                        w->ok++;
                                else
                                        w->non200++;
                        }
                        c->have = 0;
                        c->sent = 0;
                        if (close_after) {
                                conn_close(c, epfd);
                                if (conn_open(c, epfd) < 0)
                                        exit(EXIT_FAILURE);
                        }
                        if (conn_send(c) < 0)
                                goto broken;
                        continue;
                broken:
                        if (measuring)
                                w->errors++;
                        conn_close(c, epfd);
                        if (conn_open(c, epfd) < 0 || conn_send(c) < 0) {
                                fprintf(stderr, "reconnect failed\n");
                                exit(EXIT_FAILURE);
                        }
                }
        }

        for (unsigned i = 0; i < w->n_conns; i++) {
                conn_close(&conns[i], epfd);
                free(conns[i].buf);
        }
        free(conns);
        close(epfd);
        return NULL;
}

static void help(void) {
        printf("Usage: http-load --socket=PATH [--path=/v1/...] [--connections=64] [--threads=1]\n"
               "                 [--duration=SEC] [--warmup=SEC] [--cpu=N]\n");
}

static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h' },
                { "socket",      required_argument, NULL, 's' },
                { "path",        required_argument, NULL, 'p' },
                { "connections", required_argument, NULL, 'c' },
                { "threads",     required_argument, NULL, 't' },
                { "duration",    required_argument, NULL, 'd' },
                { "warmup",      required_argument, NULL, 'w' },
                { "cpu",         required_argument, NULL, 'C' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hs:p:c:t:d:w:C:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case 's': arg_socket = optarg; break;
                case 'p': arg_path = optarg; break;
                case 'c': arg_connections = (unsigned) atoi(optarg); break;
                case 't': arg_threads = (unsigned) atoi(optarg); break;
                case 'd': arg_duration = atof(optarg); break;
                case 'w': arg_warmup = atof(optarg); break;
                case 'C': arg_cpu = atoi(optarg); break;
                default:
                        return -EINVAL;
                }
        if (!arg_socket || arg_connections == 0 || arg_threads == 0 || arg_threads > arg_connections ||
            arg_duration <= 0 || arg_warmup < 0 || strlen(arg_socket) >= sizeof(((struct sockaddr_un *) NULL)->sun_path)) {
                help();
                return -EINVAL;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        uint64_t ok = 0, non200 = 0, errors = 0, total = 0;
        Worker *workers;

        if (parse_argv(argc, argv) < 0)
                return EXIT_FAILURE;
        if (arg_cpu >= 0) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(arg_cpu, &set);
                if (sched_setaffinity(0, sizeof(set), &set) < 0)
                        perror("sched_setaffinity");
        }

        request_len = (size_t) snprintf(request, sizeof(request),
                                        "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: http-load\r\n\r\n", arg_path);
        t_measure_start = now() + arg_warmup;
        t_end = t_measure_start + arg_duration;

        workers = calloc(arg_threads, sizeof(Worker));
        if (!workers)
                return EXIT_FAILURE;
        for (unsigned i = 0; i < arg_threads; i++) {
                workers[i].n_conns = arg_connections / arg_threads + (i < arg_connections % arg_threads);
                if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0)
                        return EXIT_FAILURE;
        }
        for (unsigned i = 0; i < arg_threads; i++) {
                pthread_join(workers[i].thread, NULL);
                ok += workers[i].ok;
                non200 += workers[i].non200;
                errors += workers[i].errors;
                total += workers[i].total;
        }
        free(workers);

        printf("requests=%llu ok=%llu non200=%llu errors=%llu seconds=%.2f rps=%.0f\n",
               (unsigned long long) total, (unsigned long long) ok, (unsigned long long) non200,
               (unsigned long long) errors, arg_duration, (double) ok / arg_duration);
        return ok > 0 && non200 == 0 && errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
