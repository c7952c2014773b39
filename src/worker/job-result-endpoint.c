/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs-util.h"
#include "job-result-endpoint.h"
#include "log.h"
#include "macro.h"
#include "result-request.h"
#include "spool.h"
#include "spool-layout.h"

/* A job that connects and then says nothing must not hold the endpoint for long. */
#define IO_TIMEOUT_SEC 10

struct ResultEndpoint {
        pid_t pid;
        int netns_fd;
        int ready_fd;   /* until result_endpoint_wait() */
};

static int loopback_up(void) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {};

        if (fd < 0)
                return -errno;
        strcpy(ifr.ifr_name, "lo");
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        return ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static int listen_loopback(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(80),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
                return -errno;
        return TAKE_FD(fd);
}

static void reply(int fd, int status, const char *reason, const char *extra_headers, const char *message) {
        _cleanup_free_ char *text = NULL;
        int n;

        /* message is ours, never the job's: no escaping needed */
        n = asprintf(&text,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n"
                     "{\"message\": \"%s\"}",
                     status, reason, strlen(message) + 15, strempty(extra_headers), message);
        if (n > 0)
                (void) loop_write(fd, text, (size_t) n);
}

typedef struct Endpoint {
        int spool_fd;
        const char *job_id;
        const char *token;
        size_t result_max;
} Endpoint;

static void serve_one(const Endpoint *e, int fd) {
        _cleanup_(result_request_done) ResultRequest req = {};
        _cleanup_free_ char *buf = NULL, *json = NULL;
        size_t len = 0, size = RESULT_REQUEST_HEAD_MAX, body_max;
        const char *error = NULL;
        int k;

        buf = malloc(size);
        if (!buf)
                return;
        for (;;) {
                ssize_t n = read(fd, buf + len, size - len);

                if (n <= 0)
                        return;
                len += (size_t) n;
                k = result_request_parse_head(buf, len, &req);
                if (k == -E2BIG)
                        return reply(fd, 431, "Request Header Fields Too Large", NULL, "The request's head is too large.");
                if (k == -EBADMSG)
                        return reply(fd, 400, "Bad Request", NULL, "Malformed request.");
                if (k == 0)
                        break;
                if (k != -EAGAIN)
                        return;
        }

        if (!result_request_path_matches(req.path, e->job_id))
                return reply(fd, 404, "Not Found", NULL, "Not found.");
        if (!streq(req.method, "POST"))
                return reply(fd, 405, "Method Not Allowed", "Allow: POST\r\n", "Method not allowed.");
        if (!result_request_token_matches(req.authorization, e->token))
                return reply(fd, 401, "Unauthorized", "WWW-Authenticate: Bearer\r\n", "Invalid token.");
        if (req.chunked || !req.has_content_length)
                return reply(fd, 411, "Length Required", NULL, "A Content-Length is required.");
        /* URL-encoding may triple the result's size */
        body_max = 3 * e->result_max + 4096;
        if (req.content_length > body_max)
                return reply(fd, 413, "Payload Too Large", NULL, "The result is larger than the limit.");

        /* The body: what came with the head, then the rest. */
        size = req.head_len + (size_t) req.content_length;
        if (size > RESULT_REQUEST_HEAD_MAX) {
                char *b = realloc(buf, size + 1);
                if (!b)
                        return reply(fd, 500, "Internal Server Error", NULL, "Out of memory.");
                buf = b;
        }
        while (len < size) {
                ssize_t n = read(fd, buf + len, size - len);

                if (n <= 0)
                        return;
                len += (size_t) n;
        }

        k = result_request_decode_body(req.content_type, buf + req.head_len, (size_t) req.content_length,
                                       e->result_max, &json, &error);
        if (k == -EMEDIUMTYPE)
                return reply(fd, 415, "Unsupported Media Type", NULL, error);
        if (k == -E2BIG)
                return reply(fd, 413, "Payload Too Large", NULL, error);
        if (k < 0)
                return reply(fd, 400, "Bad Request", NULL, error ?: "Cannot read the body.");

        k = spool_write_atomic(e->spool_fd, SPOOL_SAVED_RESULT, json, strlen(json));
        if (k < 0)
                return reply(fd, 500, "Internal Server Error", NULL, "The result could not be stored.");
        reply(fd, 200, "OK", NULL, "Result saved.");
}

static _noreturn_ void endpoint_main(const Endpoint *e, int listen_fd) {
        struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC };

        for (;;) {
                _cleanup_close_ int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        _exit(1);
                }
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                serve_one(e, fd);
        }
}

int result_endpoint_start(int spool_fd, const char *job_id, const char *token, size_t result_max,
                          ResultEndpoint **ret) {
        _cleanup_free_ ResultEndpoint *e = calloc(1, sizeof(ResultEndpoint));
        pid_t parent = getpid();
        int ready[2], k;

        if (!e)
                return -ENOMEM;
        e->netns_fd = e->ready_fd = -1;
        if (pipe2(ready, O_CLOEXEC) < 0)
                return -errno;
        e->pid = fork();
        if (e->pid < 0) {
                k = -errno;
                safe_close(ready[0]);
                safe_close(ready[1]);
                return k;
        }
        if (e->pid == 0) {
                Endpoint ep = { .spool_fd = spool_fd, .job_id = job_id, .token = token, .result_max = result_max };
                int listen_fd;

                safe_close(ready[0]);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)        /* the worker died before we asked to follow it */
                        _exit(1);
                signal(SIGPIPE, SIG_IGN);
                k = unshare(CLONE_NEWNET) < 0 ? -errno : 0;
                if (k >= 0)
                        k = loopback_up();
                listen_fd = k >= 0 ? listen_loopback() : k;
                if (listen_fd < 0) {
                        (void) !write(ready[1], &(int) { listen_fd }, sizeof(int));
                        _exit(1);
                }
                (void) !write(ready[1], &(int) { 0 }, sizeof(int));
                safe_close(ready[1]);
                endpoint_main(&ep, listen_fd);
        }
        safe_close(ready[1]);
        e->ready_fd = ready[0];
        *ret = TAKE_PTR(e);
        return 0;
}

int result_endpoint_wait(ResultEndpoint *e) {
        char path[64];
        ssize_t n;
        int k = -EIO;

        if (e->ready_fd < 0)
                return e->netns_fd >= 0 ? 0 : -EIO;
        do
                n = read(e->ready_fd, &k, sizeof(k));
        while (n < 0 && errno == EINTR);
        e->ready_fd = safe_close(e->ready_fd);
        if (n != sizeof(k))
                return -EIO;
        if (k < 0)
                return k;
        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int) e->pid);
        e->netns_fd = open(path, O_RDONLY | O_CLOEXEC);
        return e->netns_fd < 0 ? -errno : 0;
}

int result_endpoint_netns_fd(const ResultEndpoint *e) {
        return e ? e->netns_fd : -1;
}

ResultEndpoint *result_endpoint_stop(ResultEndpoint *e) {
        if (!e)
                return NULL;
        if (e->pid > 0) {
                (void) kill(e->pid, SIGKILL);
                while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        safe_close(e->netns_fd);
        safe_close(e->ready_fd);
        free(e);
        return NULL;
}

int result_endpoint_take_result(int spool_fd, size_t result_max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = openat(spool_fd, SPOOL_SAVED_RESULT, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_free_ char *text = NULL;
        struct stat st;
        size_t len = 0;

        *ret = NULL;
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > result_max)
                return -EINVAL;
        text = malloc((size_t) st.st_size + 1);
        if (!text)
                return -ENOMEM;
        while (len < (size_t) st.st_size) {
                ssize_t n = read(fd, text + len, (size_t) st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                len += (size_t) n;
        }
        text[len] = 0;
        (void) unlinkat(spool_fd, SPOOL_SAVED_RESULT, 0);
        *ret_len = len;
        *ret = TAKE_PTR(text);
        return 1;
}
