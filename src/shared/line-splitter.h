/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Splits a byte stream (a job's stdout or stderr, a worker's events) into lines on "\n". A line
 * longer than max_line bytes is handed on in pieces of max_line bytes with continued=true, the last piece
 * with continued=false, so memory stays bounded whatever the job prints. The piece passed to the
 * callback is NUL-terminated (data[len] == 0) and excludes the "\n". */

typedef int (*line_cb)(const char *data, size_t len, bool continued, void *userdata);

typedef struct LineSplitter {
        char *buf;
        size_t len;
        size_t max_line;
        line_cb cb;
        void *userdata;
} LineSplitter;

void line_splitter_init(LineSplitter *s, size_t max_line, line_cb cb, void *userdata);
void line_splitter_done(LineSplitter *s);

int line_splitter_feed(LineSplitter *s, const char *data, size_t n);
/* End of stream: an unterminated last line is passed on as a line. */
int line_splitter_flush(LineSplitter *s);
