/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A streaming parser of multipart/form-data bodies (RFC 7578, RFC 2046 §5.1), as the serverless
 * gateway's client sends its uploads (python-requests: a random boundary, "Content-Disposition:
 * form-data; name=…[; filename=…]" per part, binary bodies). The body is untrusted and may be as
 * large as ProgramArtifactMax, so nothing is buffered but one part's headers (bounded): part
 * bodies are handed to a callback as they are found, in as many pieces as it takes.
 *
 * It is strict: no preamble, CRLF line ends only, no header folding, a form-data disposition with
 * a name on every part, no Content-Transfer-Encoding but 7bit/8bit/binary, at most
 * MULTIPART_PARTS_MAX parts, and the body must end with the close delimiter (an epilogue after it
 * is ignored). tests/fuzz/fuzz-multipart.c */

#define MULTIPART_BOUNDARY_MAX 70U     /* RFC 2046 */
#define MULTIPART_HEADERS_MAX 8192U    /* one part's header block */
#define MULTIPART_NAME_MAX 256U        /* a field name or file name */
#define MULTIPART_PARTS_MAX 64U

typedef struct MultipartPart {
        const char *name;               /* the form field's name */
        const char *filename;           /* NULL if the part is not a file */
        const char *content_type;       /* NULL if not given */
} MultipartPart;

/* Each returns 0 to go on, or a negative errno to stop the parse: the feed then returns it and
 * multipart_parser_error() says what the callback set with multipart_parser_fail() (or a
 * generic message). */
typedef struct MultipartCallbacks {
        int (*begin)(const MultipartPart *part, void *userdata);
        int (*data)(const void *data, size_t size, void *userdata);
        int (*end)(void *userdata);
} MultipartCallbacks;

typedef struct MultipartParser MultipartParser;

/* The boundary of a "multipart/form-data; boundary=…" Content-Type (quoted or not). -EMEDIUMTYPE
 * if the type is another one (or absent), -EINVAL if the boundary is missing or malformed. */
int multipart_boundary_from_content_type(const char *content_type, char **ret);

int multipart_parser_new(const char *boundary, const MultipartCallbacks *cb, void *userdata, MultipartParser **ret);
MultipartParser *multipart_parser_free(MultipartParser *p);

/* Feeds the next piece of the body. < 0 once the body is malformed (and for every later call). */
int multipart_parser_feed(MultipartParser *p, const void *data, size_t size);
/* The body has ended: -EBADMSG unless it ended with the close delimiter. */
int multipart_parser_finish(MultipartParser *p);
/* Why the parse failed, for the client ("" while it has not). */
const char *multipart_parser_error(const MultipartParser *p);
/* For callbacks: sets the message multipart_parser_error() returns; returns -EBADMSG. */
int multipart_parser_fail(MultipartParser *p, const char *message);
