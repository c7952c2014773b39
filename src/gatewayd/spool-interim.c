/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fs-util.h"
#include "macro.h"
#include "platform.h"
#include "spool-interim.h"
#include "spool-layout.h"

#define INTERIM_READ_MAX (64 * 1024 * 1024)

static void announce_lines(Job *j, char *buf, size_t k, uint64_t *offset, unsigned *index) {
        size_t start = 0;

        for (char *nl; (nl = memchr(buf + start, '\n', k - start)); start = (size_t) (nl - buf) + 1) {
                enum json_tokener_error jerr;
                json_object *o;

                *nl = 0;
                /* The same text as the event would have carried: compact JSON. */
                o = json_tokener_parse_verbose(buf + start, &jerr);
                if (jerr == json_tokener_success)
                        j->platform_callbacks->on_interim(j, *index,
                                                          json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
                (*index)++;
        }
        *offset += start;
}

void spool_interim_announce(Job *j, const char *spool_dir, uint64_t *offset, unsigned *index) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t n;
        ssize_t k;

        /* lstat() first: a FIFO or device planted there is never opened. */
        if (!(path = spool_path(spool_dir, SPOOL_INTERIM)) || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return;
        if ((uint64_t) st.st_size <= *offset || (uint64_t) st.st_size - *offset > INTERIM_READ_MAX)
                return;
        n = (size_t) ((uint64_t) st.st_size - *offset);
        if (!(buf = malloc(n + 1)))
                return;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return;
        k = pread(fd, buf, n, (off_t) *offset);
        if (k <= 0)
                return;
        buf[k] = 0;
        announce_lines(j, buf, (size_t) k, offset, index);
}
