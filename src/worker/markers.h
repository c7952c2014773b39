/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The result protocol of the container runtime interface, parsed from a job's stdout.
 *
 *   PlanQK:Job:Result: <json>          one line: the result
 *   PlanQK:Job:MultilineResult         a line of its own, then lines of JSON, then the same
 *   ...                                marker line again: the result
 *   PlanQK:Job:MultilineResult
 *   PlanQK:Job:InterimResult: <json>   one line: appends an interim result
 *
 * Markers are recognised only at the start of a line; a trailing "\r" is dropped, and marker
 * lines of the multiline form may carry trailing blanks. The first result that parses wins;
 * later ones, unparsable ones, oversized ones and unterminated blocks are ignored with a
 * warning. Inside a multiline block every line is content until the closing marker. Nothing here
 * is ever fatal for the job: bad output only produces warnings.
 *
 * The parser is pure logic: it is fed stdout line by line (see line-splitter.h) and reports
 * through callbacks, so it is tested without processes. */

#define MARKER_RESULT "PlanQK:Job:Result:"
#define MARKER_MULTILINE "PlanQK:Job:MultilineResult"
#define MARKER_INTERIM "PlanQK:Job:InterimResult:"

typedef struct MarkerLimits {
        size_t result_max;      /* bytes of result JSON */
        size_t interim_max;     /* bytes of one interim result's JSON */
        size_t interim_count_max;
} MarkerLimits;

/* json/len: the raw JSON text (validated, not NUL-terminated in general, but json[len] == 0).
 * index: 0-based number of this interim result. A negative return aborts the feed call. */
typedef int (*marker_interim_cb)(const char *json, size_t len, size_t index, void *userdata);
/* A human-readable warning for the job log. */
typedef void (*marker_warning_cb)(const char *message, void *userdata);

typedef struct MarkerParser MarkerParser;

int marker_parser_new(const MarkerLimits *limits,
                      marker_interim_cb on_interim,
                      marker_warning_cb on_warning,
                      void *userdata,
                      MarkerParser **ret);
MarkerParser *marker_parser_free(MarkerParser *p);
static inline void marker_parser_freep(MarkerParser **p) {
        marker_parser_free(*p);
}
#define _cleanup_marker_parser_ __attribute__((cleanup(marker_parser_freep)))

/* Feeds one piece of a stdout line, without its "\n". A line longer than the line splitter's
 * limit arrives in pieces: continued=true on every piece but the last. */
int marker_parser_feed(MarkerParser *p, const char *data, size_t len, bool continued);

/* End of output: warns about an unterminated multiline block. */
int marker_parser_finish(MarkerParser *p);

bool marker_parser_has_result(const MarkerParser *p);
/* The winning result's JSON text (NUL-terminated), or NULL. */
const char *marker_parser_result(const MarkerParser *p, size_t *ret_len);
size_t marker_parser_interim_count(const MarkerParser *p);

