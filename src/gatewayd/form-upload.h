/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stddef.h>

/* A multipart/form-data upload received as it arrives (HTTP_ROUTE_BODY_FORM routes): its one file
 * part (the part with a filename) is written to a file, its other fields are kept in memory,
 * bounded (FORM_FIELD_MAX each, FORM_FIELDS_TOTAL_MAX together; no field twice). The parsing is
 * multipart.c's, strict and bounded; the body is never held in memory nor written twice. */

#define FORM_FIELD_MAX (104U * 1024)            /* a program's arguments may be 100 KiB */
#define FORM_FIELDS_TOTAL_MAX (4U * FORM_FIELD_MAX)

typedef struct FormUpload FormUpload;

/* -EMEDIUMTYPE: content_type is not multipart/form-data; -EINVAL: no valid boundary. The file part
 * goes to file_fd (borrowed). */
int form_upload_new(const char *content_type, int file_fd, FormUpload **ret);
FormUpload *form_upload_free(FormUpload *u);

/* < 0 once the upload is refused (then for every later call): -EBADMSG malformed or over a bound,
 * or the errno of writing the file (-ENOSPC, …). */
int form_upload_feed(FormUpload *u, const void *data, size_t size);
/* The body has ended; 0 if it was a complete form. */
int form_upload_finish(FormUpload *u);
/* Why it was refused. */
const char *form_upload_error(const FormUpload *u);
/* The text fields, {"name": "value"} (borrowed); the file part's field name (NULL if none). */
json_object *form_upload_fields(const FormUpload *u);
const char *form_upload_file_field(const FormUpload *u);
