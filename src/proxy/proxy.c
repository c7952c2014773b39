/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "log.h"
#include "proxy.h"

#define DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/gatewayd"
#define DEFAULT_GATEWAYD_SOCKET "/run/gatewayd/http.sock"
#define DEFAULT_NOVNC_DIR "/usr/share/novnc"
#define CONNECTIONS_MAX 4096U
#define LISTEN_MAX 8

static void help(void) {
        printf("gateway-proxy [OPTIONS...]\n\n"
               "The access proxy of gatewayd's lab instances. Forwards HTTP and WebSocket connections\n"
               "of the form /<token>/<member>/PATH to the member's port inside the instance's network\n"
               "namespace, after checking the lab access token and asking gatewayd about the\n"
               "instance; a member's \"vnc\" port gets noVNC's console. Normally started by systemd\n"
               "through gateway-proxy.socket (sockets named \"proxy\").\n\n"
               "  -h --help                 Show this help and exit\n"
               "     --version              Show the version and exit\n"
               "     --state-dir=DIR        gatewayd's state directory, where the token key is\n"
               "                            (default: %s)\n"
               "     --gatewayd-socket=PATH gatewayd's HTTP socket (default: %s)\n"
               "     --novnc-dir=DIR        noVNC's files (default: %s)\n"
               "     --listen=ADDRESS       Listen on HOST:PORT or a unix socket PATH when no socket\n"
               "                            is passed by systemd (may be repeated)\n"
               "     --log-level=LEVEL      debug, info, notice, warning or err (default: info)\n\n"
               "See gateway-proxy(8) and docs/labs.md.\n",
               DEFAULT_STATE_DIR, DEFAULT_GATEWAYD_SOCKET, DEFAULT_NOVNC_DIR);
}

typedef struct Options {
        const char *state_dir, *gatewayd_socket, *novnc_dir;
        const char *listen[LISTEN_MAX];
        size_t n_listen;
} Options;

static int parse_argv(int argc, char *argv[], Options *o) {
        enum { ARG_VERSION = 0x100, ARG_STATE_DIR, ARG_GATEWAYD_SOCKET, ARG_NOVNC_DIR, ARG_LISTEN, ARG_LOG_LEVEL };
        static const struct option options[] = {
                { "help",            no_argument,       NULL, 'h' },
                { "version",         no_argument,       NULL, ARG_VERSION },
                { "state-dir",       required_argument, NULL, ARG_STATE_DIR },
                { "gatewayd-socket", required_argument, NULL, ARG_GATEWAYD_SOCKET },
                { "novnc-dir",       required_argument, NULL, ARG_NOVNC_DIR },
                { "listen",          required_argument, NULL, ARG_LISTEN },
                { "log-level",       required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        int c, level;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("gateway-proxy %s\n", GATEWAYD_VERSION);
                        return 0;
                case ARG_STATE_DIR:
                        o->state_dir = optarg;
                        break;
                case ARG_GATEWAYD_SOCKET:
                        o->gatewayd_socket = optarg;
                        break;
                case ARG_NOVNC_DIR:
                        o->novnc_dir = optarg;
                        break;
                case ARG_LISTEN:
                        if (o->n_listen >= LISTEN_MAX)
                                return log_error_errno(EINVAL, "At most %i --listen options.", LISTEN_MAX);
                        o->listen[o->n_listen++] = optarg;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_parse_level(optarg);
                        if (level < 0)
                                return log_error_errno(EINVAL, "Unknown log level '%s'.", optarg);
                        log_set_max_level(level);
                        break;
                case '?':
                        return -EINVAL;
                }
        if (optind < argc)
                return log_error_errno(EINVAL, "This program takes no arguments. See 'gateway-proxy --help'.");
        return 1;
}

bool proxy_key_ready(Proxy *p) {
        int r;

        if (p->have_key)
                return true;
        r = lab_token_key_load(p->state_dir, /* create= */ false, p->key);
        if (r < 0) {
                if (r != -ENOENT)
                        log_warning_errno(r, "Cannot read the lab token key in %s: %m", p->state_dir);
                return false;
        }
        p->have_key = true;
        return true;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Proxy *p = userdata;
        int c;

        c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
                return errno == EAGAIN || errno == EINTR || errno == ECONNABORTED ? 0 :
                       log_warning_errno(errno, "accept() failed: %m"), 0;
        if (p->n_connections >= CONNECTIONS_MAX) {
                close(c);
                return 0;
        }
        if (proxy_connection_new(p, c) < 0)
                log_warning("Cannot take a connection: out of memory.");
        return 0;
}

/* "HOST:PORT" (numeric, "[V6]:PORT") or an absolute path of a unix socket. */
static int listen_on(const char *address) {
        union { struct sockaddr sa; struct sockaddr_in in; struct sockaddr_in6 in6; struct sockaddr_un un; } sa = {};
        socklen_t len;
        const char *colon = strrchr(address, ':');
        char host[64];
        int fd, one = 1;

        if (address[0] == '/') {
                if (strlen(address) >= sizeof(sa.un.sun_path))
                        return -ENAMETOOLONG;
                sa.un.sun_family = AF_UNIX;
                strcpy(sa.un.sun_path, address);
                len = sizeof(sa.un);
                (void) unlink(address);
        } else {
                char *e;
                unsigned long port = colon ? strtoul(colon + 1, &e, 10) : 0;
                size_t n = colon ? (size_t) (colon - address) : 0;

                if (!colon || *e || port == 0 || port > 65535 || n == 0 || n >= sizeof(host))
                        return -EINVAL;
                if (address[0] == '[' && colon[-1] == ']')
                        snprintf(host, sizeof(host), "%.*s", (int) n - 2, address + 1);
                else
                        snprintf(host, sizeof(host), "%.*s", (int) n, address);
                if (inet_pton(AF_INET, host, &sa.in.sin_addr) == 1) {
                        sa.in.sin_family = AF_INET;
                        sa.in.sin_port = htons((uint16_t) port);
                        len = sizeof(sa.in);
                } else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) {
                        sa.in6.sin6_family = AF_INET6;
                        sa.in6.sin6_port = htons((uint16_t) port);
                        len = sizeof(sa.in6);
                } else
                        return -EINVAL;
        }
        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sa.sa.sa_family != AF_UNIX)
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, &sa.sa, len) < 0 || listen(fd, SOMAXCONN) < 0 ||
            (sa.sa.sa_family == AF_UNIX && chmod(address, 0666) < 0)) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* The sockets: systemd's named "proxy", or those of --listen. */
static int proxy_listen(Proxy *p, const Options *o) {
        char **names = NULL;
        int n, added = 0, r;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Cannot take the sockets passed by systemd: %m");
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (!names || !streq(names[i], "proxy")) {
                        log_warning("Ignoring socket '%s' passed by systemd (expected FileDescriptorName=proxy).",
                                    names ? names[i] : "?");
                        close(fd);
                        continue;
                }
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                r = sd_event_add_io(p->event, NULL, fd, EPOLLIN, on_accept, p);
                if (r < 0)
                        return log_error_errno(r, "Cannot watch a socket: %m");
                added++;
        }
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
        for (size_t i = 0; added == 0 && i < o->n_listen; i++) {
                int fd = listen_on(o->listen[i]);
                if (fd < 0)
                        return log_error_errno(fd, "Cannot listen on %s: %m", o->listen[i]);
                r = sd_event_add_io(p->event, NULL, fd, EPOLLIN, on_accept, p);
                if (r < 0)
                        return log_error_errno(r, "Cannot watch %s: %m", o->listen[i]);
                log_info("Listening on %s.", o->listen[i]);
        }
        if (added == 0 && o->n_listen == 0)
                return log_error_errno(EINVAL, "No socket: none passed by systemd and no --listen.");
        return 0;
}

int main(int argc, char *argv[]) {
        Options o = {
                .state_dir = DEFAULT_STATE_DIR,
                .gatewayd_socket = DEFAULT_GATEWAYD_SOCKET,
                .novnc_dir = DEFAULT_NOVNC_DIR,
        };
        Proxy p = { .own_netns_fd = -1 };
        sigset_t mask;
        int r;

        log_setup("gateway-proxy");
        r = parse_argv(argc, argv, &o);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        p.state_dir = strdup(o.state_dir);
        p.gatewayd_socket = strdup(o.gatewayd_socket);
        p.novnc_dir = strdup(o.novnc_dir);
        if (!p.state_dir || !p.gatewayd_socket || !p.novnc_dir)
                return log_oom(), EXIT_FAILURE;
        p.own_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (p.own_netns_fd < 0)
                return log_error_errno(errno, "Cannot open our network namespace: %m"), EXIT_FAILURE;

        r = sd_event_default(&p.event);
        if (r < 0)
                return log_error_errno(r, "Cannot allocate the event loop: %m"), EXIT_FAILURE;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(p.event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(p.event, NULL, SIGINT, NULL, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = proxy_listen(&p, &o);
        if (r >= 0) {
                (void) proxy_key_ready(&p);
                (void) sd_notify(false, "READY=1\nSTATUS=Serving lab instances.");
                r = sd_event_loop(p.event);
        }
        (void) sd_notify(false, "STOPPING=1");
        proxy_connections_free(&p);
        sd_event_unref(p.event);
        close(p.own_netns_fd);
        free(p.state_dir);
        free(p.gatewayd_socket);
        free(p.novnc_dir);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
