/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* The body of POST /api/v1/jobs/{id}/result/ (http-job-result.c), apart so that
 * tests/fuzz/fuzz-job-result-body.c can feed it what a job may send: the form field
 * result=<JSON text> (content_type application/x-www-form-urlencoded) or, with any other type, a
 * JSON object {"result": <JSON text as a string, or any value>}. Returns 0 and the result's JSON
 * text as it is saved (caller frees), -EINVAL, or -ENOMEM. */
int job_result_body_parse(const char *content_type, const char *body, size_t size, char **ret);
