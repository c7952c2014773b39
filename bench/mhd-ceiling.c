/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ceiling for gatewayd's HTTP path: a bare libmicrohttpd server of the same shape as
 * gatewayd's (MHD_USE_EPOLL with an external loop, an AF_UNIX listening socket passed in with
 * MHD_OPTION_LISTEN_SOCKET, suspend/resume allowed, the two-phase access handler, a copied JSON
 * response with a Content-Type header) that answers every request with a fixed JSON body of a
 * given size. Whatever gatewayd does beyond this is what the benchmark measures.
 *
 * Usage: mhd-ceiling --socket=PATH --body-size=N [--cpu=N]
 * Sends READY=1 to $NOTIFY_SOCKET once it listens; exits on SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static char *body;
static size_t body_size;

static void on_completed(void *cls, struct MHD_Connection *connection, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
        free(*req_cls);
        *req_cls = NULL;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls) {
        struct MHD_Response *r;
        enum MHD_Result ret;

        /* Phase one: per-request state only, as gatewayd does (it allocates its request there). */
        if (!*req_cls) {
                *req_cls = calloc(1, 64);
                return *req_cls ? MHD_YES : MHD_NO;
        }
        if (*upload_data_size > 0) {
                *upload_data_size = 0;
                return MHD_YES;
        }

        r = MHD_create_response_from_buffer(body_size, body, MHD_RESPMEM_MUST_COPY);
        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        ret = MHD_queue_response(connection, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "socket",    required_argument, NULL, 's' },
                { "body-size", required_argument, NULL, 'b' },
                { "cpu",       required_argument, NULL, 'C' },
                {}
        };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = NULL;
        struct MHD_Daemon *d;
        const union MHD_DaemonInfo *info;
        struct epoll_event ev;
        sigset_t mask;
        int c, fd, sfd, epfd, cpu = -1;

        while ((c = getopt_long(argc, argv, "s:b:C:", options, NULL)) >= 0)
                switch (c) {
                case 's': path = optarg; break;
                case 'b': body_size = strtoul(optarg, NULL, 10); break;
                case 'C': cpu = atoi(optarg); break;
                default: return EXIT_FAILURE;
                }
        if (!path || body_size == 0 || strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "Usage: mhd-ceiling --socket=PATH --body-size=N [--cpu=N]\n");
                return EXIT_FAILURE;
        }
        if (cpu >= 0) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(cpu, &set);
                (void) sched_setaffinity(0, sizeof(set), &set);
        }

        /* A JSON object of exactly body_size bytes: {"pad":"xxxx…"}. */
        body = malloc(body_size + 1);
        if (!body || body_size < 12)
                return EXIT_FAILURE;
        memset(body, 'x', body_size);
        memcpy(body, "{\"pad\":\"", 8);
        memcpy(body + body_size - 2, "\"}", 2);
        body[body_size] = 0;

        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        (void) unlink(path);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, SOMAXCONN) < 0) {
                perror(path);
                return EXIT_FAILURE;
        }

        signal(SIGPIPE, SIG_IGN);
        d = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 0, NULL, NULL, on_access, NULL,
                             MHD_OPTION_LISTEN_SOCKET, (MHD_socket) fd,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 30,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned) 4096,
                             MHD_OPTION_END);
        if (!d) {
                fprintf(stderr, "MHD_start_daemon failed\n");
                return EXIT_FAILURE;
        }
        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);

        /* The external loop: one epoll over MHD's epoll fd and the signal fd. */
        epfd = epoll_create1(EPOLL_CLOEXEC);
        ev = (struct epoll_event) { .events = EPOLLIN, .data.fd = info->epoll_fd };
        epoll_ctl(epfd, EPOLL_CTL_ADD, info->epoll_fd, &ev);
        ev = (struct epoll_event) { .events = EPOLLIN, .data.fd = sfd };
        epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev);

        (void) sd_notify(false, "READY=1");
        for (;;) {
                MHD_UNSIGNED_LONG_LONG timeout_ms;
                struct epoll_event events[4];
                int n, timeout = -1;

                if (MHD_get_timeout(d, &timeout_ms) == MHD_YES)
                        timeout = timeout_ms > 60000 ? 60000 : (int) timeout_ms;
                n = epoll_wait(epfd, events, 4, timeout);
                if (n < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < n; i++)
                        if (events[i].data.fd == sfd)
                                goto done;
                MHD_run(d);
        }
done:
        MHD_stop_daemon(d); /* closes the listening socket too */
        close(sfd);
        close(epfd);
        (void) unlink(path);
        free(body);
        return EXIT_SUCCESS;
}
