/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one HTTP request a program's job may send to its result endpoint (job-result-endpoint.h):
 * the serverless gateway's in-job save_result,
 *
 *   POST /api/v1/jobs/<id>/result/ HTTP/1.1
 *   Authorization: Bearer <ENV_JOB_GATEWAY_TOKEN>
 *   Content-Type: application/x-www-form-urlencoded     result=<URL-encoded JSON text>
 *             or: application/json                      {"result": <JSON text as a string, or any value>}
 *   Content-Length: N
 *
 * Pure logic, parsed from a buffer, so that it is tested and fuzzed without sockets. The job is
 * untrusted: the head is bounded (RESULT_REQUEST_HEAD_MAX), a body needs a Content-Length (no
 * chunked encoding), and nothing here allocates more than the input's size. */

#define RESULT_REQUEST_HEAD_MAX 16384U

typedef struct ResultRequest {
        char *method;
        char *path;
        char *authorization;    /* the header's value, NULL: none */
        char *content_type;     /* likewise, lower-cased, parameters dropped */
        uint64_t content_length;
        bool has_content_length;
        bool chunked;           /* Transfer-Encoding given: refused (411) */
        size_t head_len;        /* bytes up to and including the blank line */
} ResultRequest;

void result_request_done(ResultRequest *r);

/* Parses the request line and headers at the start of buf. 0: complete (the body starts at
 * buf + head_len); -EAGAIN: incomplete, read more; -EBADMSG: not HTTP/1.x as we take it;
 * -E2BIG: no end of the head within RESULT_REQUEST_HEAD_MAX. */
int result_request_parse_head(const char *buf, size_t len, ResultRequest *ret);

/* Whether path is /api/v1/jobs/<job_id>/result (with or without the final '/'). */
bool result_request_path_matches(const char *path, const char *job_id);

/* Whether authorization is "Bearer <token>" (scheme case-insensitive), compared in constant time. */
bool result_request_token_matches(const char *authorization, const char *token);

/* The result's JSON text from the body, NUL-terminated (caller frees). -EINVAL with a message in
 * *ret_error: no result in it, not valid JSON (strict, as markers.h takes results); -E2BIG: the
 * result is longer than result_max; -EMEDIUMTYPE: neither of the two content types. */
int result_request_decode_body(const char *content_type, const char *body, size_t len, size_t result_max,
                               char **ret_json, const char **ret_error);
