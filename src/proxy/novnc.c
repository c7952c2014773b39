/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy.h"

/* noVNC's console for a member's "vnc" port: the files of Debian's novnc package, read-only, under
 * /<token>/<member>/; its WebSocket goes to /<token>/<member>/websockify, which the proxy bridges
 * to the VNC port. Only plain names are served — no "..", no hidden files, no percent-escapes —
 * so a request cannot leave the directory (its own symlinks are the package's). */

#define NOVNC_FILE_MAX (8U * 1024U * 1024U)

static const struct {
        const char *suffix, *type;
} content_types[] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js",   "text/javascript; charset=utf-8" },      /* ES modules need a JavaScript type */
        { ".css",  "text/css; charset=utf-8" },
        { ".svg",  "image/svg+xml" },
        { ".png",  "image/png" },
        { ".ico",  "image/x-icon" },
        { ".json", "application/json" },
        { ".woff", "font/woff" },
        { ".woff2", "font/woff2" },
        { ".ogg",  "audio/ogg" },
        { ".mp3",  "audio/mpeg" },
};

static const char *content_type(const char *path) {
        size_t n = strlen(path);

        for (size_t i = 0; i < ELEMENTSOF(content_types); i++) {
                size_t k = strlen(content_types[i].suffix);
                if (n > k && streq(path + n - k, content_types[i].suffix))
                        return content_types[i].type;
        }
        return "application/octet-stream";
}

/* "/a/b.js" with every segment of [A-Za-z0-9_.-], not starting with a dot. */
static bool plain_path(const char *p, size_t n) {
        bool segment_start = true;

        if (n < 2 || p[0] != '/')
                return false;
        for (size_t i = 1; i < n; i++) {
                char c = p[i];
                if (c == '/') {
                        if (segment_start)
                                return false;
                        segment_start = true;
                        continue;
                }
                if (segment_start && c == '.')
                        return false;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-' || c == '.'))
                        return false;
                segment_start = false;
        }
        return !segment_start;
}

static int read_file(const char *path, char **ret, size_t *ret_size) {
        struct stat st;
        char *data;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > NOVNC_FILE_MAX) {
                close(fd);
                return -ENOENT;
        }
        data = malloc((size_t) st.st_size + 1);
        n = data ? read(fd, data, (size_t) st.st_size) : -1;
        close(fd);
        if (n != st.st_size) {
                free(data);
                return -EIO;
        }
        *ret = data;
        *ret_size = (size_t) n;
        return 0;
}

int novnc_respond(Proxy *p, const char *rest, const char *base, char **ret, size_t *ret_size) {
        _cleanup_free_ char *path = NULL, *data = NULL, *answer = NULL;
        size_t n = strcspn(rest, "?#"), size = 0;
        int r, len;

        if (n <= 1) {
                /* The console itself, connecting to this member's bridge. */
                len = asprintf(&answer, "HTTP/1.1 302 Found\r\nLocation: /%s/vnc.html?autoconnect=true&resize=scale&path=%s/websockify\r\n"
                               "Content-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", base, base);
                if (len < 0)
                        return -ENOMEM;
                *ret_size = (size_t) len;
                *ret = TAKE_PTR(answer);
                return 0;
        }
        if (!plain_path(rest, n))
                return -ENOENT;
        if (asprintf(&path, "%s%.*s", p->novnc_dir, (int) n, rest) < 0)
                return -ENOMEM;
        r = read_file(path, &data, &size);
        if (r < 0)
                return r;
        /* The files hold no secrets, but the URL holds the token: tell the browser not to send it
         * on as a Referer. */
        len = asprintf(&answer, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                       "Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n"
                       "Cache-Control: no-store\r\nConnection: close\r\n\r\n", content_type(path), size);
        if (len < 0)
                return -ENOMEM;
        {
                char *a = realloc(answer, (size_t) len + size);
                if (!a)
                        return -ENOMEM;
                answer = a;
        }
        memcpy(answer + len, data, size);
        *ret_size = (size_t) len + size;
        *ret = TAKE_PTR(answer);
        return 0;
}
