/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "form-upload.h"
#include "fs-util.h"
#include "macro.h"
#include "multipart.h"

struct FormUpload {
        MultipartParser *parser;
        json_object *fields;
        char *file_field;       /* the file part's name, once it began */
        bool in_file;
        int file_fd;
        char *field_name;       /* the text field being read */
        char *field;
        size_t field_len, total_len;
        int error;              /* the first failure (negative errno) */
};

static int on_begin(const MultipartPart *part, void *userdata) {
        FormUpload *u = userdata;

        if (part->filename) {
                if (u->file_field)
                        return multipart_parser_fail(u->parser, "The form has two file parts (only 'artifact' is expected).");
                u->file_field = strdup(part->name);
                u->in_file = true;
                return u->file_field ? 0 : -ENOMEM;
        }
        if (json_object_object_get_ex(u->fields, part->name, NULL) || (u->file_field && streq(u->file_field, part->name)))
                return multipart_parser_fail(u->parser, "A form field is repeated.");
        u->field_name = strdup(part->name);
        u->field = malloc(FORM_FIELD_MAX);
        u->field_len = 0;
        return u->field_name && u->field ? 0 : -ENOMEM;
}

static int on_data(const void *data, size_t n, void *userdata) {
        FormUpload *u = userdata;

        if (u->in_file)
                return loop_write(u->file_fd, data, n) < 0 ? -errno : 0;
        if (u->field_len + n > FORM_FIELD_MAX || u->total_len + n > FORM_FIELDS_TOTAL_MAX)
                return multipart_parser_fail(u->parser, "A form field is too long.");
        memcpy(u->field + u->field_len, data, n);
        u->field_len += n;
        u->total_len += n;
        return 0;
}

static int on_end(void *userdata) {
        FormUpload *u = userdata;
        json_object *v;

        if (u->in_file) {
                u->in_file = false;
                return 0;
        }
        if (memchr(u->field, 0, u->field_len))
                return multipart_parser_fail(u->parser, "A form field contains a NUL character.");
        v = json_object_new_string_len(u->field, (int) u->field_len);
        if (!v || json_object_object_add(u->fields, u->field_name, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        u->field_name = mfree(u->field_name);
        u->field = mfree(u->field);
        return 0;
}

static const MultipartCallbacks callbacks = {
        .begin = on_begin,
        .data = on_data,
        .end = on_end,
};

int form_upload_new(const char *content_type, int file_fd, FormUpload **ret) {
        _cleanup_free_ char *boundary = NULL;
        FormUpload *u;
        int r;

        r = multipart_boundary_from_content_type(content_type, &boundary);
        if (r < 0)
                return r;
        u = calloc(1, sizeof(FormUpload));
        if (!u)
                return -ENOMEM;
        u->file_fd = file_fd;
        u->fields = json_object_new_object();
        r = u->fields ? multipart_parser_new(boundary, &callbacks, u, &u->parser) : -ENOMEM;
        if (r < 0) {
                form_upload_free(u);
                return r;
        }
        *ret = u;
        return 0;
}

FormUpload *form_upload_free(FormUpload *u) {
        if (!u)
                return NULL;
        multipart_parser_free(u->parser);
        json_object_put(u->fields);
        free(u->file_field);
        free(u->field_name);
        free(u->field);
        free(u);
        return NULL;
}

int form_upload_feed(FormUpload *u, const void *data, size_t size) {
        int r;

        if (u->error < 0)
                return u->error;
        r = multipart_parser_feed(u->parser, data, size);
        if (r < 0)
                u->error = r;
        return r;
}

int form_upload_finish(FormUpload *u) {
        int r;

        if (u->error < 0)
                return u->error;
        r = multipart_parser_finish(u->parser);
        if (r < 0)
                u->error = r;
        return r;
}

const char *form_upload_error(const FormUpload *u) {
        return multipart_parser_error(u->parser);
}

json_object *form_upload_fields(const FormUpload *u) {
        return u->fields;
}

const char *form_upload_file_field(const FormUpload *u) {
        return u->file_field;
}
