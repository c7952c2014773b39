/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A job's stdout as the result protocol reads it (src/worker/markers.c), through the line
 * splitter as in the runner. Input: one byte choosing the line limit, then the stream. Every
 * result and interim result handed on must be valid JSON by json_text_valid() and parse with
 * json-c as the worker's event writer (src/worker/job-output.c) and gatewayd's result readers
 * (job_result_json(), job_interim_json()) parse it. */
#include <json-c/json.h>

#include "fuzz.h"
#include "json-util.h"
#include "line-splitter.h"
#include "macro.h"
#include "markers.h"

static int on_interim(const char *json, size_t len, size_t index, void *userdata) {
        enum json_tokener_error e;
        json_object *o;

        fuzz_assert(json[len] == 0);
        fuzz_assert(len <= 1024);
        fuzz_assert(json_text_valid(json, len));
        /* (JSON null parses as NULL with success) */
        o = json_parse_deep(json, &e);
        fuzz_assert(e == json_tokener_success);
        json_object_put(o);
        return 0;
}

static void on_warning(const char *message, void *userdata) {
        fuzz_assert(message);
}

static int on_line(const char *data, size_t len, bool continued, void *userdata) {
        return marker_parser_feed(userdata, data, len, continued);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const MarkerLimits limits = {
                .result_max = 256,
                .interim_max = 1024,
                .interim_count_max = 4,
        };
        _cleanup_marker_parser_ MarkerParser *p = NULL;
        LineSplitter s;
        const char *result;
        size_t len;

        fuzz_quiet();
        if (size < 1)
                return 0;
        if (marker_parser_new(&limits, on_interim, on_warning, NULL, &p) < 0)
                abort();
        line_splitter_init(&s, 8 + data[0] * 4, on_line, p);
        (void) json_text_valid((const char *) data + 1, size - 1);
        fuzz_assert(line_splitter_feed(&s, (const char *) data + 1, size - 1) >= 0);
        fuzz_assert(line_splitter_flush(&s) >= 0);
        line_splitter_done(&s);
        fuzz_assert(marker_parser_finish(p) >= 0);

        fuzz_assert(marker_parser_interim_count(p) <= limits.interim_count_max);
        result = marker_parser_result(p, &len);
        fuzz_assert(!!result == marker_parser_has_result(p));
        if (result) {
                fuzz_assert(len <= limits.result_max);
                fuzz_assert(result[len] == 0);
                enum json_tokener_error e;

                fuzz_assert(json_text_valid(result, len));
                json_object_put(json_parse_deep(result, &e));
                fuzz_assert(e == json_tokener_success);
        }
        return 0;
}
