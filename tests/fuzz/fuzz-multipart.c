/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a client uploads to POST /api/v1/programs/upload/ (src/gatewayd/http-serverless.c): a
 * multipart/form-data body, parsed as it is read (src/gatewayd/multipart.c). Input: the
 * Content-Type header line, '\n', the body. Checks the promises: the parse does not depend on how
 * the body is cut into pieces (whole, and in pieces of 1..16 bytes chosen by the input give the
 * same parts, data and verdict), part data never exceeds the body, names are NUL-free and bounded,
 * begin/end calls alternate, and a successful parse ended every part it began. The same body then
 * goes through the form upload (src/gatewayd/form-upload.c, its file part to /dev/null): it agrees
 * with the parser, and its fields stay within their bounds. */
#include <errno.h>
#include <fcntl.h>

#include "form-upload.h"
#include "fuzz.h"
#include "multipart.h"

typedef struct Trace {
        MultipartParser *parser;
        unsigned char hash[4096];      /* a rolling record of the events */
        size_t pos, data_bytes;
        unsigned parts;
        int in_part;
} Trace;

static void record(Trace *t, const void *p, size_t n) {
        const unsigned char *b = p;

        for (size_t i = 0; i < n; i++) {
                t->hash[t->pos % sizeof(t->hash)] ^= (unsigned char) (b[i] + t->pos);
                t->pos++;
        }
}

static int on_begin(const MultipartPart *part, void *userdata) {
        Trace *t = userdata;

        fuzz_assert(!t->in_part);
        fuzz_assert(part->name && part->name[0] && strlen(part->name) <= MULTIPART_NAME_MAX);
        fuzz_assert(!part->filename || strlen(part->filename) <= MULTIPART_NAME_MAX);
        t->in_part = 1;
        t->parts++;
        record(t, "B", 1);
        record(t, part->name, strlen(part->name) + 1);
        if (part->filename)
                record(t, part->filename, strlen(part->filename) + 1);
        /* a callback may refuse, as the upload refuses repeated fields */
        if (streq(part->name, "refuse"))
                return multipart_parser_fail(t->parser, "refused");
        return 0;
}

static int on_data(const void *data, size_t size, void *userdata) {
        Trace *t = userdata;

        fuzz_assert(t->in_part && size > 0);
        t->data_bytes += size;
        record(t, data, size);
        return 0;
}

static int on_end(void *userdata) {
        Trace *t = userdata;

        fuzz_assert(t->in_part);
        t->in_part = 0;
        record(t, "E", 1);
        return 0;
}

static const MultipartCallbacks callbacks = { on_begin, on_data, on_end };

static int run(const char *boundary, const uint8_t *body, size_t size, const uint8_t *cuts, size_t ncuts, Trace *t) {
        size_t off = 0, k = 0;
        int r = 0;

        memset(t, 0, sizeof(*t));
        if (multipart_parser_new(boundary, &callbacks, t, &t->parser) < 0)
                abort();
        while (off < size && r >= 0) {
                size_t n = ncuts ? (size_t) (cuts[k++ % ncuts] % 16) + 1 : size;
                n = n > size - off ? size - off : n;
                r = multipart_parser_feed(t->parser, body + off, n);
                off += n;
        }
        if (r >= 0)
                r = multipart_parser_finish(t->parser);
        fuzz_assert(r == 0 || r == -EBADMSG || r == -ENOMEM);
        fuzz_assert(r < 0 || !t->in_part);
        fuzz_assert(t->data_bytes <= size);
        fuzz_assert(r == 0 || multipart_parser_error(t->parser)[0]);
        t->parser = multipart_parser_free(t->parser);
        return r;
}

static void form_check(const char *content_type, const uint8_t *body, size_t size, int parsed) {
        static int devnull = -1;
        FormUpload *u = NULL;
        size_t total = 0;
        int r;

        if (devnull < 0 && (devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0)
                abort();
        r = form_upload_new(content_type, devnull, &u);
        fuzz_assert(r == 0 || r == -EMEDIUMTYPE || r == -EINVAL || r == -ENOMEM);
        if (r < 0)
                return;
        r = form_upload_feed(u, body, size);
        if (r >= 0)
                r = form_upload_finish(u);
        /* the form refuses more than the parser (long or repeated fields, two files), never less */
        fuzz_assert(r == 0 || r == -EBADMSG || r == -ENOMEM);
        fuzz_assert(!(r == 0 && parsed < 0 && !memmem(body, size, "refuse", 6)));
        json_object_object_foreach(form_upload_fields(u), k, v) {
                fuzz_assert(k[0] && json_object_get_string_len(v) <= (int) FORM_FIELD_MAX);
                total += (size_t) json_object_get_string_len(v);
        }
        fuzz_assert(total <= FORM_FIELDS_TOTAL_MAX);
        form_upload_free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t hsize = nl ? (size_t) (nl - data) : size;
        char *header = fuzz_strndup(data, hsize), *boundary = NULL;
        const uint8_t *body = nl ? nl + 1 : data + size;
        size_t bsize = nl ? size - hsize - 1 : 0;
        static Trace whole, pieces;
        int r, r2;

        fuzz_quiet();
        r = multipart_boundary_from_content_type(header, &boundary);
        fuzz_assert(r == 0 || r == -EMEDIUMTYPE || r == -EINVAL || r == -ENOMEM);
        if (r < 0) {
                /* the body is still worth parsing: with the boundary the seeds use */
                boundary = strdup("XyZ");
                if (!boundary)
                        abort();
        }
        fuzz_assert(strlen(boundary) >= 1 && strlen(boundary) <= MULTIPART_BOUNDARY_MAX);
        r = run(boundary, body, bsize, NULL, 0, &whole);
        r2 = run(boundary, body, bsize, data, size, &pieces);
        fuzz_assert(r == r2);
        fuzz_assert(whole.parts == pieces.parts && whole.data_bytes == pieces.data_bytes);
        /* data arrives in other pieces, so only the totals and the event bytes compare */
        fuzz_assert(whole.pos == pieces.pos && memcmp(whole.hash, pieces.hash, sizeof(whole.hash)) == 0);
        form_check(header, body, bsize, r);
        free(boundary);
        free(header);
        return 0;
}
