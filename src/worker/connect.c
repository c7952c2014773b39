/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "gateway-worker connect": the forced command of a node's SSH account. gatewayd's libssh2 (1.10)
 * has no streamlocal channel, so an exec channel runs this relay, which joins the channel's
 * stdin/stdout to the node socket where the root "gateway-worker serve" answers. A forced command
 * replaces every session type, SFTP included: that one is handed to sftp-server, confined to the
 * image directory. Anything else the client asks to run is refused. */
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "connect.h"
#include "log.h"
#include "macro.h"

#define DEFAULT_SOCKET "/run/gateway-worker/worker.sock"
#define SFTP_SERVER "/usr/lib/openssh/sftp-server"
#define RELAY_BUFFER (128 * 1024)

typedef struct ConnectArgs {
        const char *socket;
        const char *image_dir;
        const char *sftp_server;
} ConnectArgs;

static void help(void) {
        printf("Usage: gateway-worker connect [OPTIONS...]\n"
               "\n"
               "The forced command of a gatewayd node's SSH account (authorized_keys:\n"
               "restrict,command=\"gateway-worker connect ...\"). Relays stdin/stdout to the node\n"
               "socket, where 'gateway-worker serve' answers. When SSH_ORIGINAL_COMMAND asks for the\n"
               "SFTP subsystem (" SFTP_SERVER " or internal-sftp), runs sftp-server instead, starting\n"
               "in the image directory. Any other command is refused.\n"
               "\n"
               "Options:\n"
               "  -h --help              Show this help\n"
               "     --socket=PATH       Node socket (default: " DEFAULT_SOCKET ")\n"
               "     --image-dir=DIR     Where SFTP sessions start (sftp-server -d DIR)\n"
               "     --sftp-server=PATH  sftp-server binary (default: " SFTP_SERVER ")\n");
}

static int parse_argv(int argc, char *argv[], ConnectArgs *a) {
        enum { ARG_SOCKET = 0x100, ARG_IMAGE_DIR, ARG_SFTP_SERVER };
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h' },
                { "socket",      required_argument, NULL, ARG_SOCKET },
                { "image-dir",   required_argument, NULL, ARG_IMAGE_DIR },
                { "sftp-server", required_argument, NULL, ARG_SFTP_SERVER },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_SOCKET:
                        a->socket = optarg;
                        break;
                case ARG_IMAGE_DIR:
                        if (optarg[0] != '/')
                                return log_error_errno(EINVAL, "--image-dir= must be an absolute path.");
                        a->image_dir = optarg;
                        break;
                case ARG_SFTP_SERVER:
                        a->sftp_server = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(EINVAL, "Unhandled option.");
                }
        if (optind != argc)
                return log_error_errno(EINVAL, "connect takes no arguments. See 'gateway-worker connect --help'.");
        return 1;
}

typedef enum CommandKind {
        COMMAND_RELAY,
        COMMAND_SFTP,
        COMMAND_REFUSED,
} CommandKind;

/* SSH_ORIGINAL_COMMAND is the client's exec string, or for a subsystem the Subsystem line's
 * command (Debian: the sftp-server path; "internal-sftp" where sshd serves it itself). */
static CommandKind classify_command(const char *cmd) {
        size_t n;

        if (!cmd || cmd[strspn(cmd, " \t")] == 0)
                return COMMAND_RELAY;
        if (streq(cmd, "gateway-worker connect"))
                return COMMAND_RELAY;
        for (const char *const *p = (const char *const[]) { SFTP_SERVER, "internal-sftp", NULL }; *p; p++) {
                n = strlen(*p);
                if (strneq(cmd, *p, n) && (cmd[n] == 0 || cmd[n] == ' ' || cmd[n] == '\t'))
                        return COMMAND_SFTP;
        }
        return COMMAND_REFUSED;
}

static int exec_sftp(const ConnectArgs *a) {
        const char *argv[4] = { a->sftp_server };
        size_t i = 1;

        /* The client's arguments are ignored: only ours apply. */
        if (a->image_dir) {
                argv[i++] = "-d";
                argv[i++] = a->image_dir;
        }
        argv[i] = NULL;
        execv(a->sftp_server, (char **) argv);
        return log_error_errno(errno, "Cannot execute %s: %m", a->sftp_server);
}

static int connect_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "Socket path too long: %s", path);
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "Cannot create socket: %m");
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return log_error_errno(errno, "Cannot connect to the node socket %s: %m", path);
        return TAKE_FD(fd);
}

/* One direction of the relay: a buffer between a reader and a writer. */
typedef struct Pipe {
        int in, out;
        char *buf;
        size_t len, off;
        bool eof;       /* the reader ended; after the buffer drained, the writer is shut */
        bool done;      /* the writer was shut (or failed) */
} Pipe;

static void pipe_shut(Pipe *p, bool out_is_socket) {
        if (p->done)
                return;
        p->done = true;
        if (out_is_socket)
                (void) shutdown(p->out, SHUT_WR);
        else
                (void) close(p->out);
}

static int pipe_read(Pipe *p) {
        ssize_t k = read(p->in, p->buf, RELAY_BUFFER);
        if (k < 0) {
                if (errno == EINTR || errno == EAGAIN)
                        return 0;
                p->eof = true;  /* a reset counts as the end */
                return 0;
        }
        if (k == 0)
                p->eof = true;
        p->len = (size_t) k;
        p->off = 0;
        return 0;
}

static int pipe_write(Pipe *p) {
        ssize_t k = write(p->out, p->buf + p->off, p->len - p->off);
        if (k < 0) {
                if (errno == EINTR || errno == EAGAIN)
                        return 0;
                return -errno;
        }
        p->off += (size_t) k;
        if (p->off == p->len)
                p->len = p->off = 0;
        return 0;
}

/* Client → node and node → client until the node's side ends (it has said everything) or the
 * client's output is gone. The client's end of input is passed on as a half-close, so the node
 * can finish what it was asked and then close. */
static int relay(int sock) {
        _cleanup_free_ char *up_buf = malloc(RELAY_BUFFER), *down_buf = malloc(RELAY_BUFFER);
        Pipe up = { .in = STDIN_FILENO, .out = sock, .buf = up_buf };
        Pipe down = { .in = sock, .out = STDOUT_FILENO, .buf = down_buf };

        if (!up_buf || !down_buf)
                return log_oom();

        for (;;) {
                struct pollfd pfd[4];
                int n = 0, i_up_in = -1, i_up_out = -1, i_down_in = -1, i_down_out = -1;

                if (!up.done && !up.eof && up.len == 0)
                        pfd[i_up_in = n++] = (struct pollfd) { .fd = up.in, .events = POLLIN };
                if (!up.done && up.len > 0)
                        pfd[i_up_out = n++] = (struct pollfd) { .fd = up.out, .events = POLLOUT };
                if (!down.eof && down.len == 0)
                        pfd[i_down_in = n++] = (struct pollfd) { .fd = down.in, .events = POLLIN };
                /* stdout is always watched: when sshd closes the session (the client is gone),
                 * its hang-up ends the relay and so the node's serve, even while the node has
                 * nothing to say. The client's end of input is no hang-up of stdout. */
                pfd[i_down_out = n++] = (struct pollfd) { .fd = down.out, .events = down.len > 0 ? POLLOUT : 0 };

                if (poll(pfd, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "poll: %m");
                }

                if (i_up_in >= 0 && pfd[i_up_in].revents)
                        pipe_read(&up);
                if (i_up_out >= 0 && pfd[i_up_out].revents && pipe_write(&up) < 0) {
                        /* The node stopped reading: what the client sends goes nowhere. */
                        up.len = 0;
                        up.eof = true;
                }
                if (up.eof && up.len == 0)
                        pipe_shut(&up, true);

                if (i_down_in >= 0 && pfd[i_down_in].revents)
                        pipe_read(&down);
                if (down.len == 0 && (pfd[i_down_out].revents & (POLLERR | POLLHUP)))
                        return 0;       /* the client is gone */
                if (down.len > 0 && pfd[i_down_out].revents && pipe_write(&down) < 0)
                        return 0;       /* the client is gone */
                if (down.eof && down.len == 0) {
                        pipe_shut(&down, false);
                        return 0;
                }
        }
}

int verb_connect(int argc, char *argv[]) {
        ConnectArgs a = {
                .socket = DEFAULT_SOCKET,
                .sftp_server = SFTP_SERVER,
        };
        const char *cmd = getenv("SSH_ORIGINAL_COMMAND");
        _cleanup_close_ int sock = -1;
        int r;

        r = parse_argv(argc, argv, &a);
        if (r <= 0)
                return r < 0 ? 1 : 0;

        switch (classify_command(cmd)) {
        case COMMAND_SFTP:
                (void) exec_sftp(&a);
                return 1;
        case COMMAND_REFUSED:
                fprintf(stderr, "gateway-worker connect: this account only relays to the node agent "
                        "and serves SFTP; refusing to run '%.200s'.\n", cmd);
                return 1;
        case COMMAND_RELAY:
                break;
        }

        signal(SIGPIPE, SIG_IGN);
        sock = connect_socket(a.socket);
        if (sock < 0)
                return 1;
        return relay(sock) < 0 ? 1 : 0;
}
